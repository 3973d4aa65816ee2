//! Geo steering table tests (issue 3): client address or ECS prefix →
//! expected edges and ECS scope, answered in-process through
//! `dns::respond` and, for rows located by ECS or by the loopback source,
//! over real UDP and TCP as well. Plus spreading, health tiers, `all_down`
//! modes, TTLs and both database schemas.
//!
//! The fixture (tests/fixtures/steer) places networks in London, Reading,
//! Frankfurt, Paris, New York, San Francisco, Toronto, Tokyo, Sydney, São
//! Paulo and (without coordinates) South Africa; edges sit in lhr, fra,
//! cdg, iad, sjc, gru, nrt and syd.

use crate::support;

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Duration;

use geosteer::Snapshot;
use geosteer::Transport;
use geosteer::{AdminState, Registry};
use hickory_proto::rr::RecordType;
use support::dns::{tcp_raw, udp_raw};
use support::steer::{self, Db, Reply};

/// One table row.
struct Row {
    host: &'static str,
    qtype: RecordType,
    /// `ecs:<prefix>` (from loopback), `src:<ip>` (in-process only), or `-`
    /// (loopback source, no ECS).
    client: &'static str,
    /// Space-separated edges in order, or `NODATA`, `NXDOMAIN`, `REFUSED`,
    /// `SERVFAIL`, `EMPTY` (NOERROR, no records, no SOA), or a literal
    /// `CNAME <target>` / address answer.
    want: &'static str,
    /// ECS scope echoed; `None` when the query had no ECS.
    scope: Option<u8>,
}

const A: RecordType = RecordType::A;
const AAAA: RecordType = RecordType::AAAA;

const fn row(
    host: &'static str,
    qtype: RecordType,
    client: &'static str,
    want: &'static str,
    scope: Option<u8>,
) -> Row {
    Row {
        host,
        qtype,
        client,
        want,
        scope,
    }
}

/// The main table, valid for the City and Flat databases alike.
const TABLE: &[Row] = &[
    // --- IPv4 ECS, nearest edge; scope = matched DB network, narrowed so it
    // never covers the override net 81.2.69.0/24 inside London's /16.
    row("www", A, "ecs:81.2.1.0/24", "lhr", Some(18)),
    row("www", A, "ecs:81.2.128.0/24", "lhr", Some(17)),
    row("www", A, "ecs:81.2.69.0/24", "cdg", Some(24)),
    row("www", A, "ecs:85.10.200.0/24", "fra", Some(18)),
    row("www", A, "ecs:90.84.3.0/24", "cdg", Some(16)),
    row("www", A, "ecs:24.1.2.0/24", "iad", Some(12)),
    row("www", A, "ecs:64.0.9.0/24", "sjc", Some(16)),
    row("www", A, "ecs:126.5.0.0/16", "nrt", Some(8)),
    row("www", A, "ecs:1.121.0.0/24", "syd", Some(13)),
    row("www", A, "ecs:177.1.0.0/24", "gru", Some(12)),
    // A shorter source prefix than the DB network: scope is still the DB's.
    row("www", A, "ecs:24.0.0.0/8", "iad", Some(12)),
    // Unknown: listed order, scope = source prefix.
    row("www", A, "ecs:203.0.113.0/24", "lhr", Some(24)),
    row("www", A, "ecs:203.0.112.0/20", "lhr", Some(20)),
    // --- IPv6 ECS.
    row("www", AAAA, "ecs:2a02:c7c:1::/48", "lhr", Some(32)),
    row("www", A, "ecs:2a02:c7c:1::/48", "lhr", Some(32)),
    row("www", AAAA, "ecs:2400:4000:100::/40", "nrt", Some(22)),
    row("www", AAAA, "ecs:2600:1000:ab00::/40", "iad", Some(24)),
    row("www", AAAA, "ecs:2001:db8:aaaa::/48", "sjc", Some(48)),
    row("www", AAAA, "ecs:2001:db8:aaab::/48", "lhr", Some(48)),
    // Unknown /32 containing a pinned /48: scope lengthened to exclude it.
    row("www", AAAA, "ecs:2001:db8::/32", "lhr", Some(33)),
    // --- Override nets: a located net, a more specific pinned net inside.
    row("www", A, "ecs:10.20.0.0/16", "cdg", Some(22)),
    row("www", A, "ecs:10.20.6.0/24", "cdg", Some(23)),
    row("www", A, "ecs:10.20.5.0/24", "nrt", Some(24)),
    row("www", A, "src:10.20.5.7", "nrt", None),
    row("www", A, "src:10.20.6.1", "cdg", None),
    // Pinned nets pin every host, whatever its own candidates.
    row("v4only", A, "ecs:10.20.5.0/24", "nrt", Some(24)),
    // --- Packet source (no ECS): no OPT in the query, none in the reply.
    row("www", A, "-", "nrt", None), // loopback is placed in Tokyo
    row("www", A, "src:81.2.1.1", "lhr", None),
    row("www", A, "src:2a02:c7c::1", "lhr", None),
    row("www", A, "src:203.0.113.7", "lhr", None),
    // v4-mapped and 6to4 packet sources locate as their IPv4 address.
    row("www", A, "src:::ffff:81.2.1.1", "lhr", None),
    row("www", A, "src:::ffff:126.1.2.3", "nrt", None),
    row("www", A, "src:2002:5102:0101::1", "lhr", None),
    row("www", A, "src:::ffff:10.20.5.7", "nrt", None),
    row("www", A, "src:::ffff:127.0.0.1", "nrt", None),
    // 6to4 ECS: located as 81.2.1.0/24; the scope counts IPv6 bits (16 + 18).
    row("www", A, "ecs:2002:5102:100::/40", "lhr", Some(34)),
    // --- Rules: asn first, continent, country, shadowed rule, fallback to host edges.
    row("video", A, "ecs:99.0.1.0/24", "gru", Some(16)),
    row("video", A, "ecs:81.2.1.0/24", "lhr", Some(18)),
    row("video", A, "ecs:85.10.200.0/24", "fra", Some(18)),
    row("video", A, "ecs:90.84.3.0/24", "lhr", Some(16)),
    row("video", A, "ecs:24.1.2.0/24", "iad", Some(12)),
    row("video", A, "ecs:64.0.9.0/24", "sjc", Some(16)),
    row("video", A, "ecs:126.5.0.0/16", "nrt", Some(8)),
    row("video", A, "ecs:177.1.0.0/24", "iad", Some(12)),
    // No coordinates: the continent rule applies, listed order stands.
    row("video", A, "ecs:41.0.1.0/24", "syd", Some(16)),
    row("video", A, "ecs:203.0.113.0/24", "nrt", Some(24)),
    // --- answers: 2.
    row("two", A, "ecs:81.2.1.0/24", "lhr cdg", Some(18)),
    row("two", A, "ecs:126.5.0.0/16", "nrt syd", Some(8)),
    row("two", A, "ecs:203.0.113.0/24", "lhr fra", Some(24)),
    row("two", AAAA, "ecs:81.2.1.0/24", "lhr fra", Some(18)),
    // --- Families with no addresses: NODATA with the SOA.
    row("v4only", A, "ecs:81.2.1.0/24", "cdg", Some(18)),
    row("v4only", AAAA, "-", "NODATA", None),
    row("v4only", AAAA, "ecs:81.2.1.0/24", "NODATA", Some(18)),
    // A rule picks an IPv4-only set for Europe: that NODATA depends on the
    // client's location, so it must carry the scope too.
    row("mixed", AAAA, "ecs:81.2.1.0/24", "NODATA", Some(18)),
    row("mixed", AAAA, "ecs:24.1.2.0/24", "iad", Some(12)),
    // --- Static records and NXDOMAIN: scope 0 even with ECS.
    row("static", A, "ecs:81.2.1.0/24", "198.51.100.99", Some(0)),
    row("nothing-here", A, "ecs:81.2.1.0/24", "NXDOMAIN", Some(0)),
    row("static", A, "-", "198.51.100.99", None),
];

/// Splits a row's client into (packet source, ECS).
fn client(r: &Row) -> (IpAddr, Option<&'static str>) {
    let loopback: IpAddr = "127.0.0.1".parse().unwrap();
    match r.client.split_once(':') {
        Some(("ecs", e)) => (loopback, Some(e)),
        Some(("src", s)) => (s.parse().unwrap(), None),
        _ => (loopback, None),
    }
}

/// Checks a reply against a row's expectation; returns a message on mismatch.
fn check(r: &Row, got: &Reply, how: &str, ttl: u32) -> Result<(), String> {
    let ctx = || {
        format!(
            "{how}: {} {} from {}: got {got:?}",
            r.host, r.qtype, r.client
        )
    };
    let (rcode, answer, soa): (&str, Vec<&str>, bool) = match r.want {
        "NODATA" => ("No Error", vec![], true),
        "NXDOMAIN" => ("Non-Existent Domain", vec![], true),
        "SERVFAIL" => ("Server Failure", vec![], false),
        "EMPTY" => ("No Error", vec![], false),
        w if w.starts_with("CNAME ") => ("No Error", vec![w], false),
        w => ("No Error", w.split(' ').collect(), false),
    };
    if got.rcode != rcode {
        return Err(format!("rcode {rcode} wanted; {}", ctx()));
    }
    if got.answer != answer {
        return Err(format!("answer {answer:?} wanted; {}", ctx()));
    }
    if got.soa != soa {
        return Err(format!("SOA in authority: {soa} wanted; {}", ctx()));
    }
    if got.scope != r.scope {
        return Err(format!("scope {:?} wanted; {}", r.scope, ctx()));
    }
    if !answer.is_empty() && got.ttls.iter().any(|&t| t != ttl) {
        return Err(format!("ttl {ttl} wanted; {}", ctx()));
    }
    Ok(())
}

/// The TTL a row's answers must carry: the host's (static: the record's).
fn ttl_of(host: &str) -> u32 {
    match host {
        "www" => 20,
        "static" => 300,
        _ => 30,
    }
}

fn run_table(db: Db, network: bool) {
    let snap = steer::snapshot(db);
    let server = network.then(|| steer::server(db, steer::snapshot(db)));
    let mut failures = Vec::new();
    for r in TABLE {
        let (src, ecs) = client(r);
        let q = steer::query(r.host, r.qtype, ecs);
        let local = steer::respond(&snap, &q, src, Transport::Udp).expect("an answer");
        let local = steer::parse(&snap, &local);
        failures.extend(check(r, &local, &format!("{db:?} in-process"), ttl_of(r.host)).err());
        // Network rows: ECS or the loopback source, so the packet's real
        // source (127.0.0.1) is what the row says.
        if let Some(server) = &server
            && !r.client.starts_with("src:")
        {
            for (how, reply) in [
                ("UDP", udp_raw(server.udp, &q)),
                ("TCP", tcp_raw(server.tcp, &q)),
            ] {
                let reply =
                    steer::parse(&snap, &reply.unwrap_or_else(|| panic!("{how}: no answer")));
                failures.extend(check(r, &reply, &format!("{db:?} {how}"), ttl_of(r.host)).err());
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn table_city_in_process_udp_tcp() {
    run_table(Db::City, true);
}

#[test]
fn table_flat_schema() {
    run_table(Db::Flat, false);
}

/// A database without coordinates still drives continent and country
/// rules; everything else keeps its listed order.
#[test]
fn no_coordinates_still_drives_rules() {
    let snap = steer::snapshot(Db::NoCoords);
    let rows = [
        row("video", A, "ecs:85.10.200.0/24", "fra", Some(18)), // EU → [fra, lhr] listed
        row("video", A, "ecs:81.2.1.0/24", "fra", Some(18)),
        row("video", A, "ecs:64.0.9.0/24", "iad", Some(16)), // US → [iad, sjc] listed
        row("video", A, "ecs:99.0.1.0/24", "gru", Some(16)), // asn
        row("video", A, "ecs:126.5.0.0/16", "nrt", Some(8)), // no rule: host edges
        row("two", A, "ecs:126.5.0.0/16", "lhr fra", Some(8)),
        row("www", A, "src:126.1.2.3", "lhr", None),
    ];
    let mut failures = Vec::new();
    for r in &rows {
        let (src, ecs) = client(r);
        let reply = steer::respond(
            &snap,
            &steer::query(r.host, r.qtype, ecs),
            src,
            Transport::Udp,
        )
        .unwrap();
        failures.extend(check(r, &steer::parse(&snap, &reply), "nocoords", ttl_of(r.host)).err());
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Answers one A query for `host` with ECS `ecs`, returning the edge names.
fn edges(snap: &Snapshot, host: &str, ecs: &str) -> Reply {
    let q = steer::query(host, A, Some(ecs));
    steer::parse(
        snap,
        &steer::respond(snap, &q, "127.0.0.1".parse().unwrap(), Transport::Udp).unwrap(),
    )
}

/// Reading is 36 km from lhr and ~680 km from fra, both within
/// `spread_km: 1000`; lhr has weight 2, so it gets about 2/3 of the /24s.
#[test]
fn spreading_by_weight_is_stable() {
    let snap = steer::snapshot(Db::City);
    let other = steer::snapshot(Db::City);
    let mut count: HashMap<String, usize> = HashMap::new();
    let n = 3000;
    for i in 0..n {
        // 5.0.0.0/12 spans 4096 /24s.
        let ecs = format!("5.{}.{}.0/24", i / 256, i % 256);
        let a = edges(&snap, "spread", &ecs);
        assert_eq!(a.answer.len(), 1, "{ecs}: {a:?}");
        assert_eq!(a.scope, Some(24), "{ecs}: spreading keys on the /24");
        // Same subnet again, and on another instance: same answer.
        assert_eq!(
            edges(&snap, "spread", &ecs).answer,
            a.answer,
            "{ecs} repeat"
        );
        assert_eq!(
            edges(&other, "spread", &ecs).answer,
            a.answer,
            "{ecs} other snapshot"
        );
        *count.entry(a.answer[0].clone()).or_default() += 1;
    }
    let share = |e: &str| count.get(e).copied().unwrap_or(0) as f64 / n as f64;
    assert!(
        (share("lhr") - 2.0 / 3.0).abs() < 0.10,
        "lhr share {} ({count:?})",
        share("lhr")
    );
    assert!(
        (share("fra") - 1.0 / 3.0).abs() < 0.10,
        "fra share {} ({count:?})",
        share("fra")
    );
    assert_eq!(share("nrt"), 0.0, "nrt is far beyond spread_km ({count:?})");
}

/// By packet source, every address of one /24 gets the same answer, and
/// different /24s do spread.
#[test]
fn spreading_by_source_address_keys_on_the_24() {
    let snap = steer::snapshot(Db::City);
    let mut seen = std::collections::HashSet::new();
    for net in 0..64u32 {
        let mut answers = std::collections::HashSet::new();
        for host in [1u32, 77, 254] {
            let ip: IpAddr = format!("5.1.{net}.{host}").parse().unwrap();
            let q = steer::query("spread", A, None);
            let r = steer::parse(
                &snap,
                &steer::respond(&snap, &q, ip, Transport::Udp).unwrap(),
            );
            answers.insert(r.answer.clone());
            seen.insert(r.answer);
        }
        assert_eq!(answers.len(), 1, "5.1.{net}.0/24 split: {answers:?}");
    }
    assert_eq!(
        seen.len(),
        2,
        "64 /24s should use both lhr and fra: {seen:?}"
    );
}

/// Health tiers: down is skipped, overloaded and drain go behind up edges,
/// drain serves only when nothing else can. `tiers` lists [lhr, cdg, fra]
/// with answers: 3; from London they order lhr, cdg, fra.
#[test]
fn health_tiers() {
    let reg = Registry::new();
    let snap = steer::snapshot_with(Db::City, &reg);
    let london = "81.2.1.0/24";
    let order = |snap: &Snapshot| edges(snap, "tiers", london).answer.join(" ");
    let admin = |edge: &str, a: AdminState| {
        reg.set_admin(None, edge, a).unwrap();
    };
    assert_eq!(order(&snap), "lhr cdg fra");

    reg.feed_load(None, "lhr", 0.95, Duration::from_secs(60))
        .unwrap();
    reg.refresh();
    assert_eq!(order(&snap), "cdg fra lhr", "overloaded goes last");
    reg.feed_load(None, "lhr", 0.1, Duration::from_secs(60))
        .unwrap();
    reg.refresh();
    assert_eq!(order(&snap), "lhr cdg fra", "recovered");

    admin("cdg", AdminState::Down);
    assert_eq!(order(&snap), "lhr fra", "down is skipped");
    admin("cdg", AdminState::Auto);

    admin("lhr", AdminState::Drain);
    assert_eq!(
        order(&snap),
        "cdg fra",
        "drain takes no clients while others can"
    );
    admin("cdg", AdminState::Down);
    admin("fra", AdminState::Down);
    assert_eq!(order(&snap), "lhr", "drain when nothing else");
    admin("cdg", AdminState::Auto);
    reg.feed_load(None, "cdg", 0.95, Duration::from_secs(60))
        .unwrap();
    assert_eq!(order(&snap), "cdg", "overloaded beats drain");
    // Admin up overrides load.
    admin("cdg", AdminState::Up);
    admin("lhr", AdminState::Auto);
    admin("fra", AdminState::Auto);
    assert_eq!(order(&snap), "lhr cdg fra");
}

/// `all_down`: serve (fail open, nearest first), fallback CNAME, SERVFAIL,
/// or an empty NOERROR; over UDP too.
#[test]
fn all_down_modes() {
    let reg = Registry::new();
    let snap = steer::snapshot_with(Db::City, &reg);
    for e in ["d1", "d2"] {
        reg.set_admin(None, e, AdminState::Down).unwrap();
    }
    let ny = "24.1.2.0/24";
    let cases = [
        row("down-serve", A, "ecs:24.1.2.0/24", "d2 d1", Some(12)),
        row(
            "down-fallback",
            A,
            "ecs:24.1.2.0/24",
            "CNAME backup.othercdn.example.",
            Some(12),
        ),
        row("down-servfail", A, "ecs:24.1.2.0/24", "SERVFAIL", Some(12)),
        row("down-empty", A, "ecs:24.1.2.0/24", "EMPTY", Some(12)),
    ];
    // `down-serve` answers 1 edge: the nearest of the two, d2.
    let cases: Vec<Row> = cases
        .into_iter()
        .map(|r| {
            if r.host == "down-serve" {
                row(r.host, A, r.client, "d2", r.scope)
            } else {
                r
            }
        })
        .collect();
    let server = steer::server(Db::City, steer::snapshot_with(Db::City, &reg));
    let mut failures = Vec::new();
    for r in &cases {
        let q = steer::query(r.host, A, Some(ny));
        let local = steer::parse(
            &snap,
            &steer::respond(&snap, &q, "127.0.0.1".parse().unwrap(), Transport::Udp).unwrap(),
        );
        failures.extend(check(r, &local, "in-process", 30).err());
        let udp = steer::parse(&snap, &udp_raw(server.udp, &q).expect("UDP answer"));
        failures.extend(check(r, &udp, "UDP", 30).err());
    }
    // Back up: normal answers.
    reg.set_admin(None, "d1", AdminState::Auto).unwrap();
    assert_eq!(edges(&snap, "down-servfail", ny).answer, ["d1"]);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
