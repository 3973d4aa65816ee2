//! The pre-rendered fast path (`dns::fast`) against the general path
//! (the same snapshot without its pre-rendered tables): over many generated queries — every name of
//! five zones (types.example: HTTPS, DS, DNAME...) in random letter case, many
//! types, with and without EDNS, DO, NSID, cookies (client-only, foreign, malformed),
//! ECS from many networks, small and large buffers, UDP and TCP, and edges
//! in random health states — both must produce the same bytes. One zone is
//! DNSSEC-signed, so DO=1 answers with RRSIGs and NSECs are compared too
//! (the signature cache makes the signatures themselves repeatable).
//!
//! Also checks the reworked `geosteer::decide` (per-place cached order, early
//! stop) against a plain reference: sort every candidate by (health tier,
//! great-circle distance), keep `answers`.

use crate::support;

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use geosteer::Snapshot;
use geosteer::Transport;
use geosteer::{AdminState, Effective, Registry};
use geosteer::{Client, Family, Outcome};
use support::paths::{fast_respond, respond_general};
use support::rng::Rng;
use support::steer as fixture;

/// The fixture zone (steering) plus the repository's demo zone and the
/// static test zones (CNAME chains, wildcards, cuts with glue, big RRsets).
fn snapshot(reg: &Registry) -> (Snapshot, tempfile::TempDir) {
    fixture::signed_snapshot(
        &[
            &fixture::TEST_AND_DEMO_ZONES[..],
            &[
                (
                    "tests/fixtures/steer/zones/steer.example.zone",
                    "steer.example.zone",
                ),
                (
                    "tests/fixtures/steer/zones/steer.example.pools.yaml",
                    "steer.example.pools.yaml",
                ),
            ],
        ]
        .concat(),
        &[],
        "fast-path-test",
        reg,
    )
}

/// Every name the snapshot holds, plus names that only wildcards or
/// nothing match, and names outside every zone.
fn names(snap: &Snapshot) -> Vec<Vec<u8>> {
    let mut v: Vec<Vec<u8>> = Vec::new();
    for z in snap.zones.values() {
        for key in z.tree.nodes.keys() {
            v.push(key.to_vec());
            v.push([b"\x04miss".as_slice(), key].concat());
        }
    }
    v.push(b"\x07example\x03org\x00".to_vec());
    v.push(b"\x00".to_vec());
    v.sort();
    v.dedup();
    v
}

const QTYPES: [u16; 22] = [
    1, 28, 5, 2, 6, 15, 16, 33, 12, 257, 255, 43, 99, 65, 64, 52, 39, 48, 35, 29, 44, 65280,
];

fn query(rng: &mut Rng, name: &[u8], qtype: u16) -> Vec<u8> {
    let mut p = Vec::with_capacity(128);
    p.extend_from_slice(&(rng.next() as u16).to_be_bytes());
    // RD and CD at random; they are echoed.
    let flags: u16 = (rng.below(2) as u16) << 8 | (rng.below(2) as u16) << 4;
    p.extend_from_slice(&flags.to_be_bytes());
    p.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, 0]);
    for &b in name {
        p.push(if b.is_ascii_lowercase() && rng.below(2) == 0 {
            b.to_ascii_uppercase()
        } else {
            b
        });
    }
    p.extend_from_slice(&qtype.to_be_bytes());
    p.extend_from_slice(&[0, 1]);
    if rng.below(4) != 0 {
        p[11] = 1;
        let size: u16 = *rng.pick(&[0, 512, 900, 1232, 4096]);
        let mut opts = Vec::new();
        if rng.below(3) != 0 {
            // ECS: IPv4 or IPv6, prefixes from 0 to full.
            let v6 = rng.below(3) == 0;
            let max = if v6 { 128u8 } else { 32 };
            let src = *rng.pick(&[0u8, 8, 16, 20, 24, 32, 48, 56, 64, 128]);
            let src = src.min(max);
            let mut addr = [0u8; 16];
            let pool: &[[u8; 4]] = &[
                [81, 2, 1, 0],
                [81, 2, 69, 7],
                [10, 20, 5, 1],
                [10, 20, 9, 9],
                [99, 0, 1, 0],
                [126, 5, 0, 0],
                [5, 1, 2, 0],
                [8, 8, 8, 8],
                [77, 88, 8, 8],
                [114, 114, 114, 114],
                [203, 0, 113, 9],
            ];
            if v6 {
                let a: [[u8; 16]; 3] = [
                    "2a02:c7c:1::"
                        .parse::<std::net::Ipv6Addr>()
                        .unwrap()
                        .octets(),
                    "2001:db8:aaaa::"
                        .parse::<std::net::Ipv6Addr>()
                        .unwrap()
                        .octets(),
                    "2002:5102:100::"
                        .parse::<std::net::Ipv6Addr>()
                        .unwrap()
                        .octets(),
                ];
                addr = *rng.pick(&a);
            } else {
                let a: &[u8; 4] = rng.pick(pool);
                addr[..4].copy_from_slice(a);
            }
            let addr = if v6 {
                std::net::IpAddr::from(addr)
            } else {
                std::net::IpAddr::from([addr[0], addr[1], addr[2], addr[3]])
            };
            opts.extend_from_slice(&support::dns::ecs_option(addr, src));
        }
        if rng.below(3) == 0 {
            // NSID request (RFC 5001: empty).
            opts.extend_from_slice(&[0, 3, 0, 0]);
        }
        if rng.below(3) == 0 {
            // COOKIE: client only, with a (foreign) server cookie, or
            // malformed (FORMERR on both paths).
            let len = *rng.pick(&[8usize, 8, 24, 16, 40, 7, 12]);
            opts.extend_from_slice(&10u16.to_be_bytes());
            opts.extend_from_slice(&(len as u16).to_be_bytes());
            for _ in 0..len {
                opts.push(rng.next() as u8);
            }
        }
        p.push(0);
        p.extend_from_slice(&41u16.to_be_bytes());
        p.extend_from_slice(&size.to_be_bytes());
        let do_bit = if rng.below(2) == 0 { 0x80 } else { 0 };
        p.extend_from_slice(&[0, 0, do_bit, 0]);
        p.extend_from_slice(&(opts.len() as u16).to_be_bytes());
        p.extend_from_slice(&opts);
    }
    p
}

/// Zeroes the server cookie after the query's client cookie in a response
/// (its timestamp may differ between two answers); returns the length.
fn mask_cookie(q: &[u8], out: &mut [u8]) -> usize {
    let n = out.len();
    let Some(at) = q
        .windows(4)
        .rposition(|w| w[0] == 0 && w[1] == 10 && w[2] == 0)
    else {
        return n;
    };
    let Some(client) = q.get(at + 4..at + 12) else {
        return n;
    };
    if let Some(pos) = out
        .windows(12)
        .position(|w| w[..4] == [0, 10, 0, 24] && &w[4..] == client)
    {
        out[pos + 12..pos + 28].fill(0);
    }
    n
}

/// Sets every edge of the fixture zones to a random health state.
fn shuffle_health(rng: &mut Rng, reg: &Registry) {
    for e in reg.snapshot() {
        let a = *rng.pick(&[
            AdminState::Auto,
            AdminState::Auto,
            AdminState::Auto,
            AdminState::Down,
            AdminState::Drain,
        ]);
        reg.set_admin(Some(&e.zone), &e.name, a).unwrap();
        if rng.below(5) == 0 {
            reg.feed_load(Some(&e.zone), &e.name, 0.99, Duration::from_secs(600))
                .unwrap();
        } else {
            reg.feed_load(Some(&e.zone), &e.name, 0.0, Duration::from_secs(600))
                .unwrap();
        }
    }
    reg.refresh();
}

#[test]
fn fast_path_matches_general_path() {
    let reg = Registry::new();
    let (mut snap, _dir) = snapshot(&reg);
    assert!(
        snap.fast.len() > 100,
        "the table holds the zones' names ({})",
        snap.fast.len()
    );
    let names = names(&snap);
    let mut rng = Rng(0x5EED);
    let sources: [SocketAddr; 4] = [
        "127.0.0.1:53".parse().unwrap(),
        "81.2.1.9:53".parse().unwrap(),
        "[2a02:c7c:1::9]:53".parse().unwrap(),
        "[::ffff:81.2.1.1]:53".parse().unwrap(),
    ];
    let (mut fast_out, mut general_out) = (vec![0u8; 65_535], vec![0u8; 65_535]);
    let mut scratch = vec![0u8; 65_535];
    let (mut compared, mut fast) = (0, 0);
    for round in 0..40 {
        if round % 4 == 3 {
            shuffle_health(&mut rng, &reg);
        }
        for name in &names {
            for &qtype in &QTYPES {
                let q = query(&mut rng, name, qtype);
                let source = *rng.pick(&sources);
                let transport = if rng.below(5) == 0 {
                    Transport::Tcp
                } else {
                    Transport::Udp
                };
                let a = geosteer::respond(&snap, &q, source, transport, &mut fast_out);
                let b = respond_general(&mut snap, &q, source, transport, &mut general_out);
                // The server cookie carries the second it was made in; the
                // rest of the bytes must be equal.
                let a = a.map(|n| mask_cookie(&q, &mut fast_out[..n]));
                let b = b.map(|n| mask_cookie(&q, &mut general_out[..n]));
                assert_eq!(
                    a.map(|n| &fast_out[..n]),
                    b.map(|n| &general_out[..n]),
                    "query {q:02x?} from {source} over {transport:?}"
                );
                compared += 1;
                fast += usize::from(
                    fast_respond(&snap, &q, source.ip(), transport, &mut scratch).is_some(),
                );
            }
        }
    }
    assert!(compared > 50_000, "{compared} queries compared");
    // Half the names are misses and most of the types asked for are
    // absent, so about one in twenty is pre-rendered (A, AAAA and the types
    // present); the rest (ANY, wildcards, NXDOMAIN, too big, partner CNAMEs)
    // is general on both sides.
    assert!(
        fast * 25 > compared,
        "{fast} of {compared} on the fast path"
    );
}

/// Signed answers come from the fast path too, with their RRSIGs, and
/// equal the general path's bytes.
#[test]
fn signed_answers_on_the_fast_path() {
    let reg = Registry::new();
    let (mut snap, _dir) = snapshot(&reg);
    let src: IpAddr = "81.2.1.9".parse().unwrap();
    let (mut a, mut b) = (vec![0u8; 65_535], vec![0u8; 65_535]);
    for (name, qtype) in [
        (&b"\x06static\x03cdn\x07example\x00"[..], 1u16),
        (b"\x03www\x03cdn\x07example\x00", 1),
        (b"\x03www\x03cdn\x07example\x00", 28),
        // NODATA: NSEC and its RRSIG.
        (b"\x04mail\x03cdn\x07example\x00", 28),
        (b"\x03cdn\x07example\x00", 48),
    ] {
        let mut q = vec![0x12, 0x34, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1];
        q.extend_from_slice(name);
        q.extend_from_slice(&qtype.to_be_bytes());
        q.extend_from_slice(&[0, 1, 0, 0, 41, 4, 0xD0, 0, 0, 0x80, 0, 0, 0]);
        let n = fast_respond(&snap, &q, src, Transport::Udp, &mut a)
            .unwrap_or_else(|| panic!("{name:?}/{qtype} not on the fast path"));
        let m = respond_general(
            &mut snap,
            &q,
            SocketAddr::new(src, 53),
            Transport::Udp,
            &mut b,
        )
        .unwrap();
        assert_eq!(&a[..n], &b[..m], "{name:?}/{qtype}");
        let msg = hickory_proto::op::Message::from_vec(&a[..n]).unwrap();
        let sigs = msg
            .answers
            .iter()
            .chain(&msg.authorities)
            .filter(|r| r.record_type() == hickory_proto::rr::RecordType::RRSIG)
            .count();
        assert!(sigs >= 1, "{name:?}/{qtype}: no RRSIG in {msg:?}");
    }
}

/// A response from the fast path really is one (not the general path
/// every time): the table answers a static and a steered name.
#[test]
fn fast_path_answers_common_queries() {
    let reg = Registry::new();
    let (snap, _dir) = snapshot(&reg);
    let mut out = vec![0u8; 1232];
    for name in [
        "static.cdn.example.",
        "www.cdn.example.",
        "www.steer.example.",
    ] {
        let q = fixture::query(name, hickory_proto::rr::RecordType::A, Some("81.2.1.0/24"));
        let n = fast_respond(
            &snap,
            &q,
            "127.0.0.1".parse().unwrap(),
            Transport::Udp,
            &mut out,
        );
        assert!(n.is_some(), "{name} is answered by the fast path");
    }
}

/// The reference decision: every candidate serving the family, stable
/// sorted by (tier, distance), draining ones only when nothing else is
/// left, all-down handling, then `answers` of them.
fn reference(
    st: &geosteer::Steering,
    host: &geosteer::Host,
    geo: Option<&geosteer::GeoDb>,
    addr: IpAddr,
    family: Family,
) -> (Outcome, Vec<u16>) {
    let place = geosteer::locate(st, geo, addr);
    let pinned = match place.how {
        geosteer::Located::Net(_) => match st.nets.lookup(addr) {
            Some((_, geosteer::NetTarget::Edges(e))) => Some(e.clone()),
            _ => None,
        },
        _ => None,
    };
    let cands: Vec<u16> = match pinned {
        Some(p) => p,
        None => place
            .location
            .and_then(|l| host.rules.iter().find(|r| r.matches(l)))
            .map_or(host.candidates.clone(), |r| r.edges.clone()),
    };
    let coords = place.location.and_then(|l| l.coords);
    let km = |e: u16| {
        // A partner CDN (no location) ranks after every located edge.
        let Some(ec) = st.edges[e as usize].coords else {
            return f64::INFINITY;
        };
        coords.map_or(0.0, |c| {
            let (la1, la2) = (c.lat.to_radians(), ec.lat.to_radians());
            let dlat = la2 - la1;
            let dlon = (ec.lon - c.lon).to_radians();
            let h = (dlat / 2.0).sin().powi(2) + la1.cos() * la2.cos() * (dlon / 2.0).sin().powi(2);
            2.0 * h.sqrt().asin()
        })
    };
    let serving: Vec<u16> = cands
        .into_iter()
        .filter(|&e| st.edges[e as usize].serves(family))
        .collect();
    if serving.is_empty() {
        return (Outcome::NoData, vec![]);
    }
    let tier = |e: u16| match st.edges[e as usize].health.effective() {
        Effective::Up => Some(0),
        Effective::Overloaded => Some(1),
        Effective::Drain => Some(2),
        Effective::Down => None,
    };
    let mut live: Vec<(u8, f64, u16)> = serving
        .iter()
        .filter_map(|&e| tier(e).map(|t| (t, km(e), e)))
        .collect();
    if live.iter().any(|c| c.0 < 2) {
        live.retain(|c| c.0 < 2);
    }
    if live.is_empty() {
        match host.all_down {
            geosteer::AllDown::Serve => live = serving.iter().map(|&e| (0, km(e), e)).collect(),
            geosteer::AllDown::Fallback => return (Outcome::Fallback, vec![]),
            geosteer::AllDown::Servfail => return (Outcome::ServFail, vec![]),
            geosteer::AllDown::Empty => return (Outcome::Empty, vec![]),
        }
    }
    live.sort_by(|a, b| (a.0, a.1).partial_cmp(&(b.0, b.1)).unwrap());
    let partner = |e: u16| st.edges[e as usize].is_partner();
    if partner(live[0].2) {
        return (Outcome::Partner(live[0].2), vec![live[0].2]);
    }
    let n = usize::from(host.answers.max(1));
    (
        Outcome::Edges,
        live.iter()
            .filter(|c| !partner(c.2))
            .take(n)
            .map(|c| c.2)
            .collect(),
    )
}

#[test]
fn decide_matches_reference_under_random_health() {
    let reg = Registry::new();
    let (snap, _dir) = snapshot(&reg);
    let geo = snap.geodb.as_deref();
    let mut rng = Rng(7);
    let addrs: Vec<IpAddr> = [
        "81.2.1.9",
        "81.2.69.7",
        "10.20.5.1",
        "10.20.9.9",
        "99.0.1.1",
        "126.5.0.1",
        "8.8.8.8",
        "77.88.8.8",
        "114.114.114.114",
        "203.0.113.9",
        "127.0.0.1",
        "2a02:c7c:1::1",
        "2001:db8:aaaa::1",
        "::ffff:81.2.1.1",
    ]
    .iter()
    .map(|a| a.parse().unwrap())
    .collect();
    let mut checked = 0;
    for round in 0..200 {
        if round % 2 == 1 {
            shuffle_health(&mut rng, &reg);
        }
        for zone in snap.zones.values() {
            let st = &zone.steering;
            for host in st.hosts.iter().filter(|h| h.spread_km <= 0.0) {
                for &addr in &addrs {
                    for family in [Family::V4, Family::V6] {
                        let client = Client {
                            addr,
                            ecs_source: None,
                        };
                        let d = geosteer::decide(st, host, geo, client, family, &mut ());
                        let (outcome, edges) = reference(st, host, geo, addr, family);
                        assert_eq!(d.outcome, outcome, "{} from {addr} {family:?}", host.name);
                        if matches!(outcome, Outcome::Edges | Outcome::Partner(_)) {
                            assert_eq!(d.edges.to_vec(), edges, "{} from {addr}", host.name);
                        }
                        checked += 1;
                    }
                }
            }
        }
    }
    assert!(checked > 10_000, "{checked}");
}
