//! The pre-rendered NXDOMAIN answers (`dns::negative`, reached through the
//! fast path) against the general path (the same snapshot without its pre-rendered tables): random
//! non-existent names under several zones — beside and below wildcards,
//! delegations, empty non-terminals, CNAMEs and DNAMEs, below the SOA's own
//! MNAME and RNAME, in a child zone served beside its parent, long and
//! with many labels, in random letter case — asked with every kind of
//! EDNS (none, DO, CO, ECS, NSID, client, valid and foreign cookies, small
//! and large buffers), over UDP and TCP, for many types (ANY, SOA, DS...):
//! both paths must produce the same bytes. One zone is signed, so DO=1
//! there must be left to the general path (NSECs), while DO=1 on an
//! unsigned zone is answered here. Over real sockets with RRL on, a
//! random-subdomain flood is limited and a valid cookie exempts it.

use crate::support;

use std::net::{IpAddr, SocketAddr};

use geosteer::Registry;
use geosteer::Snapshot;
use geosteer::Transport;
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{RData, RecordType};
use support::paths::{fast_respond, respond_general};
use support::rng::Rng;
use support::steer as fixture;

/// neg.example: a SOA whose MNAME and RNAME sit below the apex (in mixed
/// case), and every shape a lookup must not mistake for NXDOMAIN.
const NEG_ZONE: &str = "\
$ORIGIN neg.example.
$TTL 3600
@          7200 IN SOA  ns.A.b.neg.example. Host.Master.neg.example. 1 3600 600 604800 900
@               IN NS   ns.a.b
ns.a.b          IN A    192.0.2.53
*.wild          IN A    192.0.2.1
*.wild          IN TXT  \"wild\"
deleg           IN NS   ns1.deleg
deleg           IN NS   ns.example.net.
ns1.deleg       IN A    192.0.2.54
deep.ent        IN A    192.0.2.9
alias           IN CNAME nowhere.neg.example.
out             IN CNAME www.example.net.
dn              IN DNAME elsewhere.example.
www             IN A    192.0.2.80
";

/// child.neg.example, served beside its parent: a SOA outside the zone
/// (RNAME compresses against MNAME inside the tail).
const CHILD_ZONE: &str = "\
$ORIGIN child.neg.example.
$TTL 600
@     IN SOA  ns1.elsewhere.net. hostmaster.elsewhere.net. 1 3600 600 604800 60
@     IN NS   ns1.elsewhere.net.
www   IN A    192.0.2.81
";

/// nomname.example: MNAME names a name that does not exist in the zone,
/// so a question for it is NXDOMAIN and its SOA points at the question.
const NOMNAME_ZONE: &str = "\
$ORIGIN nomname.example.
$TTL 600
@     IN SOA  primary.hidden.nomname.example. root.nomname.example. 1 3600 600 604800 120
@     IN NS   ns1.elsewhere.net.
";

fn snapshot(reg: &Registry) -> (Snapshot, tempfile::TempDir) {
    fixture::signed_snapshot(
        &fixture::TEST_AND_DEMO_ZONES,
        &[
            ("neg.example.zone", NEG_ZONE),
            ("child.neg.example.zone", CHILD_ZONE),
            ("nomname.example.zone", NOMNAME_ZONE),
        ],
        "negative-path-test",
        reg,
    )
}

/// A random label: letters of both cases, digits, hyphens, and now and
/// then any byte at all (dots, zeros, 0xC0 are legal inside a label).
fn label(rng: &mut Rng) -> Vec<u8> {
    let len = match rng.below(10) {
        0 => 1 + rng.below(63),
        1 => 63,
        _ => 1 + rng.below(16),
    };
    let binary = rng.below(8) == 0;
    let mut l = vec![len as u8];
    for _ in 0..len {
        let b = if binary {
            rng.next() as u8
        } else {
            *rng.pick(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-")
        };
        l.push(b);
    }
    l
}

/// Flips the case of random letters of a wire name.
fn recase(rng: &mut Rng, name: &[u8]) -> Vec<u8> {
    name.iter()
        .map(|&b| {
            if b.is_ascii_alphabetic() && rng.below(2) == 0 {
                b ^ 0x20
            } else {
                b
            }
        })
        .collect()
}

/// Names to ask: random labels in front of every name of every zone (most
/// of them do not exist), the SOA names and names below them, names of
/// many labels and names close to 255 bytes.
fn names(snap: &Snapshot, rng: &mut Rng) -> Vec<Vec<u8>> {
    let mut bases: Vec<Vec<u8>> = Vec::new();
    for z in snap.zones.values() {
        for key in z.tree.nodes.keys() {
            bases.push(key.to_vec());
        }
    }
    for n in [
        "ns.a.b.neg.example.",
        "host.master.neg.example.",
        "master.neg.example.",
        "a.b.neg.example.",
        "primary.hidden.nomname.example.",
        "hidden.nomname.example.",
        "root.nomname.example.",
        "hostmaster.cdn.example.",
        "ns1.elsewhere.net.child.neg.example.",
        "elsewhere.net.child.neg.example.",
        "hostmaster.example.",
        "hostmaster.sub.example.",
        "example.net.neg.example.",
    ] {
        bases.push(support::dns::wire_name(n));
    }
    bases.sort();
    bases.dedup();
    let mut v = Vec::new();
    for base in &bases {
        for _ in 0..3 {
            let mut name = Vec::new();
            for _ in 0..1 + rng.below(3) {
                name.extend(label(rng));
            }
            name.extend_from_slice(base);
            if name.len() <= 255 {
                v.push(recase(rng, &name));
            }
        }
        v.push(recase(rng, base));
    }
    for apex in [
        "neg.example.",
        "cdn.example.",
        "nomname.example.",
        "child.neg.example.",
    ] {
        let apex = support::dns::wire_name(apex);
        // Many one-byte labels: past what name compression remembers.
        for labels in [20, 40, 44, 45, 46, 47, 48, 60, 100] {
            let mut name: Vec<u8> = (0..labels)
                .flat_map(|i| [1, b'a' + (i % 26) as u8])
                .collect();
            name.extend_from_slice(&apex);
            if name.len() <= 255 {
                v.push(name);
            }
        }
        // As long as a name can be.
        let mut name = Vec::new();
        while name.len() + apex.len() + 64 <= 255 {
            name.push(63);
            name.extend((0..63).map(|_| b'x'));
        }
        let fill = 255 - apex.len() - name.len() - 1;
        name.push(fill as u8);
        name.extend((0..fill).map(|_| b'y'));
        name.extend_from_slice(&apex);
        assert_eq!(name.len(), 255);
        v.push(name);
    }
    v
}

const QTYPES: [u16; 16] = [
    1, 28, 255, 6, 43, 2, 5, 15, 16, 65, 64, 39, 48, 47, 12, 65280,
];

/// A query for `name`: random id, RD and CD, class IN (now and then ANY),
/// and three times in four EDNS with a random mix of options. `cookie` is
/// a full client+server cookie to send instead of a made-up one.
fn query(rng: &mut Rng, name: &[u8], qtype: u16, cookie: Option<&[u8]>) -> Vec<u8> {
    let mut p = Vec::with_capacity(300);
    p.extend_from_slice(&(rng.next() as u16).to_be_bytes());
    let flags: u16 = (rng.below(2) as u16) << 8 | (rng.below(2) as u16) << 4;
    p.extend_from_slice(&flags.to_be_bytes());
    p.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, 0]);
    p.extend_from_slice(name);
    p.extend_from_slice(&qtype.to_be_bytes());
    let class: u16 = if rng.below(10) == 0 { 255 } else { 1 };
    p.extend_from_slice(&class.to_be_bytes());
    if rng.below(4) == 0 && cookie.is_none() {
        return p;
    }
    p[11] = 1;
    let size: u16 = *rng.pick(&[0, 512, 600, 1232, 4096]);
    let mut opts = Vec::new();
    if rng.below(2) == 0 {
        let v6 = rng.below(3) == 0;
        let max = if v6 { 128u8 } else { 32 };
        let src = (*rng.pick(&[0u8, 8, 20, 24, 32, 48, 56, 128])).min(max);
        let mut addr = [0u8; 16];
        for b in &mut addr {
            *b = rng.next() as u8;
        }
        let addr = if v6 {
            IpAddr::from(addr)
        } else {
            IpAddr::from([addr[0], addr[1], addr[2], addr[3]])
        };
        opts.extend_from_slice(&support::dns::ecs_option(addr, src));
    }
    if rng.below(3) == 0 {
        opts.extend_from_slice(&[0, 3, 0, 0]);
    }
    match cookie {
        Some(c) => {
            opts.extend_from_slice(&10u16.to_be_bytes());
            opts.extend_from_slice(&(c.len() as u16).to_be_bytes());
            opts.extend_from_slice(c);
        }
        None if rng.below(3) == 0 => {
            // Client only, a foreign server cookie, or malformed.
            let len = *rng.pick(&[8usize, 8, 24, 16, 7]);
            opts.extend_from_slice(&10u16.to_be_bytes());
            opts.extend_from_slice(&(len as u16).to_be_bytes());
            for _ in 0..len {
                opts.push(rng.next() as u8);
            }
        }
        None => {}
    }
    p.push(0);
    p.extend_from_slice(&41u16.to_be_bytes());
    p.extend_from_slice(&size.to_be_bytes());
    let do_bit = if rng.below(2) == 0 { 0x80 } else { 0 };
    let co_bit = if rng.below(4) == 0 { 0x40 } else { 0 };
    p.extend_from_slice(&[0, 0, do_bit | co_bit, 0]);
    p.extend_from_slice(&(opts.len() as u16).to_be_bytes());
    p.extend_from_slice(&opts);
    p
}

/// The client+server cookie a response carries, if any.
fn response_cookie(resp: &[u8]) -> Option<Vec<u8>> {
    let at = resp.windows(4).rposition(|w| w == [0, 10, 0, 24])?;
    resp.get(at + 4..at + 28).map(<[u8]>::to_vec)
}

/// Zeroes the timestamp-dependent server cookie of a response.
fn mask_cookie(out: &mut [u8]) {
    if let Some(at) = out.windows(4).rposition(|w| w == [0, 10, 0, 24]) {
        out[at + 12..at + 28].fill(0);
    }
}

#[test]
fn negative_answers_match_general_path() {
    let reg = Registry::new();
    let (mut snap, _dir) = snapshot(&reg);
    let mut rng = Rng(0x0BAD_5EED);
    let names = names(&snap, &mut rng);
    let sources: [SocketAddr; 3] = [
        "127.0.0.1:53".parse().unwrap(),
        "198.51.100.7:53".parse().unwrap(),
        "[2001:db8::7]:53".parse().unwrap(),
    ];
    let (mut a, mut b, mut c) = (vec![0u8; 65_535], vec![0u8; 65_535], vec![0u8; 65_535]);
    let (mut compared, mut nx, mut fast_nx, mut fallback_nx) = (0usize, 0usize, 0usize, 0usize);
    let mut valid_cookie_nx = 0usize;
    let (mut nodata, mut nodata_fast) = (0usize, 0usize);
    for round in 0..8 {
        for name in &names {
            for &qtype in &QTYPES {
                let source = *rng.pick(&sources);
                let transport = if rng.below(5) == 0 {
                    Transport::Tcp
                } else {
                    Transport::Udp
                };
                let mut q = query(&mut rng, name, qtype, None);
                // Every other round, a second query with the server cookie
                // the first got: valid, so RRL would let it through.
                if round % 2 == 1
                    && let Some(n) = geosteer::respond(&snap, &q, source, transport, &mut a)
                    && let Some(cookie) = response_cookie(&a[..n])
                {
                    q = query(&mut rng, name, qtype, Some(&cookie));
                }
                let fast = geosteer::respond(&snap, &q, source, transport, &mut a);
                let general = respond_general(&mut snap, &q, source, transport, &mut b);
                let fast = fast.map(|n| {
                    mask_cookie(&mut a[..n]);
                    &a[..n]
                });
                let general = general.map(|n| {
                    mask_cookie(&mut b[..n]);
                    &b[..n]
                });
                assert_eq!(
                    fast, general,
                    "query {q:02x?} from {source} over {transport:?}"
                );
                compared += 1;
                let Some(resp) = general else { continue };
                let rcode = resp[3] & 0xF;
                let counts = &resp[6..10];
                if rcode == 0 && counts == [0, 0, 0, 1] {
                    nodata += 1;
                    nodata_fast += usize::from(
                        fast_respond(&snap, &q, source.ip(), transport, &mut c).is_some(),
                    );
                }
                if rcode != 3 {
                    continue;
                }
                nx += 1;
                let only_fast = fast_respond(&snap, &q, source.ip(), transport, &mut c);
                match only_fast {
                    Some(n) => {
                        fast_nx += 1;
                        mask_cookie(&mut c[..n]);
                        assert_eq!(&c[..n], resp, "fast-only answer of {q:02x?}");
                        let s = geosteer::respond_traced(
                            &snap,
                            &q,
                            source.ip(),
                            transport,
                            &mut c,
                            &mut (),
                        )
                        .unwrap();
                        assert_eq!(s.rcode, geosteer::Rcode::NxDomain);
                        assert!(!s.truncated && s.scope == 0 && s.steered.is_none());
                        valid_cookie_nx += usize::from(s.cookie_valid);
                    }
                    None => fallback_nx += 1,
                }
            }
        }
    }
    eprintln!(
        "{compared} compared, {nx} NXDOMAIN: {fast_nx} pre-rendered, {fallback_nx} general, \
         {valid_cookie_nx} with a valid cookie; {nodata_fast} of {nodata} NODATA on the fast path"
    );
    assert!(compared > 50_000, "{compared} queries compared");
    // Most NXDOMAINs are pre-rendered; the rest (signed DO=1, names below
    // MNAME/RNAME, too many labels, truncated) fall back.
    assert!(
        fast_nx * 10 > nx * 6 && fallback_nx > 0,
        "{fast_nx} of {nx} NXDOMAIN on the fast path, {fallback_nx} general"
    );
    // NODATA of the types at hand: most on a fast path (the table has A
    // and AAAA, the negative path the rest).
    assert!(nodata_fast * 2 > nodata, "{nodata_fast} of {nodata} NODATA");
    assert!(
        valid_cookie_nx > 100,
        "{valid_cookie_nx} with a valid cookie"
    );
}

/// One query with EDNS: DO as given, 4096 bytes.
fn edns_query(name: &str, qtype: RecordType, dnssec_ok: bool) -> Vec<u8> {
    let mut m = support::dns::query_edns(name, qtype, 4096);
    if let Some(e) = m.edns.as_mut() {
        e.set_dnssec_ok(dnssec_ok);
    }
    m.to_vec().unwrap()
}

/// Which NXDOMAINs the pre-rendered path takes and which it leaves, and
/// that what it sends is an NXDOMAIN with the SOA at min(TTL, MINIMUM).
#[test]
fn negative_path_takes_plain_nxdomain_only() {
    let reg = Registry::new();
    let (snap, _dir) = snapshot(&reg);
    let src: IpAddr = "127.0.0.1".parse().unwrap();
    let mut out = vec![0u8; 65_535];
    let fast = |name: &str, t: RecordType, dnssec_ok: bool, out: &mut [u8]| {
        fast_respond(
            &snap,
            &edns_query(name, t, dnssec_ok),
            src,
            Transport::Udp,
            out,
        )
    };
    for (name, t, dnssec_ok, soa_ttl, apex) in [
        (
            "nothing.neg.example.",
            RecordType::A,
            false,
            900,
            "neg.example.",
        ),
        (
            "NoThInG.Neg.Example.",
            RecordType::MX,
            true,
            900,
            "neg.example.",
        ),
        (
            "x.y.neg.example.",
            RecordType::ANY,
            false,
            900,
            "neg.example.",
        ),
        (
            "x.deep.ent.neg.example.",
            RecordType::DS,
            false,
            900,
            "neg.example.",
        ),
        (
            "nothing.child.neg.example.",
            RecordType::SOA,
            false,
            60,
            "child.neg.example.",
        ),
        (
            "nothing.sub.example.",
            RecordType::A,
            false,
            30,
            "sub.example.",
        ),
        // Unsigned: DO=1 is answered without NSECs here too.
        (
            "nothing.nomname.example.",
            RecordType::AAAA,
            true,
            120,
            "nomname.example.",
        ),
        (
            "nothing.cdn.example.",
            RecordType::A,
            false,
            300,
            "cdn.example.",
        ),
    ] {
        let n = fast(name, t, dnssec_ok, &mut out)
            .unwrap_or_else(|| panic!("{name} {t} not pre-rendered"));
        let msg = Message::from_vec(&out[..n]).unwrap();
        assert_eq!(msg.metadata.response_code, ResponseCode::NXDomain, "{name}");
        assert!(msg.metadata.authoritative, "{name}");
        assert!(msg.answers.is_empty(), "{name}");
        assert_eq!(msg.authorities.len(), 1, "{name}: {msg:?}");
        let soa = &msg.authorities[0];
        assert!(matches!(soa.data, RData::SOA(_)), "{name}: {soa:?}");
        assert_eq!(soa.ttl, soa_ttl, "{name}: negative TTL");
        assert!(
            soa.name.to_ascii().eq_ignore_ascii_case(apex),
            "{name}: SOA owner {}",
            soa.name
        );
        // The question keeps the client's case.
        assert_eq!(msg.queries[0].name().to_ascii(), name);
    }
    for (name, t, dnssec_ok) in [
        // Signed zone, DO=1: the denial needs NSECs.
        ("nothing.cdn.example.", RecordType::A, true),
        // Below the SOA's MNAME/RNAME: compressed against the question.
        ("x.ns.a.b.neg.example.", RecordType::A, false),
        ("x.host.master.neg.example.", RecordType::A, false),
        ("primary.hidden.nomname.example.", RecordType::A, false),
        // Not NXDOMAIN: wildcard, delegation, DNAME, CNAME, empty
        // non-terminal, existing name.
        ("x.wild.neg.example.", RecordType::MX, false),
        ("x.deleg.neg.example.", RecordType::A, false),
        ("x.dn.neg.example.", RecordType::A, false),
        ("alias.neg.example.", RecordType::MX, false),
        // The NODATA of a name that equals MNAME: compressed against.
        ("ns.a.b.neg.example.", RecordType::TXT, false),
        // Steered HTTPS, ANY at a name, DS at a child apex.
        ("www.cdn.example.", RecordType::HTTPS, false),
        ("www.neg.example.", RecordType::ANY, false),
        ("child.neg.example.", RecordType::DS, false),
        // Outside every zone.
        ("nothing.example.org.", RecordType::A, false),
    ] {
        assert_eq!(
            fast(name, t, dnssec_ok, &mut out),
            None,
            "{name} {t} must take the general path"
        );
    }
    // NODATA: at a name, an empty non-terminal, the apex, a child apex.
    for (name, t, soa_ttl) in [
        ("www.neg.example.", RecordType::MX, 900),
        ("ent.neg.example.", RecordType::TXT, 900),
        ("neg.example.", RecordType::TXT, 900),
        ("Child.Neg.Example.", RecordType::MX, 60),
        ("static.cdn.example.", RecordType::CNAME, 300),
    ] {
        let n = fast(name, t, false, &mut out)
            .unwrap_or_else(|| panic!("{name} {t} NODATA not pre-rendered"));
        let msg = Message::from_vec(&out[..n]).unwrap();
        assert_eq!(msg.metadata.response_code, ResponseCode::NoError, "{name}");
        assert!(
            msg.metadata.authoritative && msg.answers.is_empty(),
            "{name}"
        );
        assert_eq!(msg.authorities.len(), 1, "{name}: {msg:?}");
        assert!(matches!(msg.authorities[0].data, RData::SOA(_)), "{name}");
        assert_eq!(msg.authorities[0].ttl, soa_ttl, "{name}");
    }
    // Past what name compression remembers: the general path.
    let many = format!("{}neg.example.", "a.".repeat(60));
    assert_eq!(
        fast(&many, RecordType::A, false, &mut out),
        None,
        "60 labels"
    );
}

/// Sends one query per name from one socket, each a new random name below
/// `host1.example.` (a plain NXDOMAIN); `cookie` is appended as a COOKIE
/// option. Returns (NXDOMAIN answers, slipped stubs).
fn nx_burst(to: SocketAddr, rng: &mut Rng, n: u16, cookie: Option<&[u8]>) -> (u32, u32) {
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(std::time::Duration::from_millis(500)))
        .unwrap();
    let mut questions = std::collections::HashSet::new();
    for i in 0..n {
        let name = format!("r{:016x}.host1.example.", rng.next());
        let opts: Vec<(u16, &[u8])> = cookie.iter().map(|c| (10u16, *c)).collect();
        let q = support::dns::query_with_options(i, &name, 1, &opts);
        questions.insert(support::dns::wire_name(&name));
        sock.send_to(&q, to).unwrap();
    }
    let (mut full, mut stubs) = (0, 0);
    let mut buf = [0u8; 4096];
    while let Ok(len) = sock.recv(&mut buf) {
        let r = &buf[..len];
        // Every name sent has the same length.
        let qlen = questions.iter().next().unwrap().len();
        let qname = &r[12..len.min(12 + qlen)];
        assert!(
            questions.iter().any(|q| q.eq_ignore_ascii_case(qname)),
            "an answer to a question we sent: {r:02x?}"
        );
        if r[2] & 0x02 != 0 && r[6..12] == [0; 6] {
            // A slip: header and question, no OPT.
            assert_eq!(len, 12 + qname.len() + 4, "stub {r:02x?}");
            stubs += 1;
        } else {
            assert_eq!(r[3] & 0xF, 3, "NXDOMAIN: {r:02x?}");
            full += 1;
        }
    }
    (full, stubs)
}

/// RRL on: a random-subdomain flood answered by the pre-rendered path is
/// limited like any other (NXDOMAIN is its own RRL kind), and a valid
/// server cookie still exempts the client.
#[test]
fn rrl_limits_a_random_subdomain_flood_and_cookies_exempt() {
    let extra = "rrl: { rate: 1, slip: 1, window: 15s }\n";
    let s = support::server::Server::start_with(&support::server::default_zone_files(), extra);
    let mut rng = Rng(99);
    // These names are answered by the pre-rendered path.
    let probe = support::dns::query_with_options(1, "r0123.host1.example.", 1, &[]);
    let mut out = vec![0u8; 4096];
    assert!(
        fast_respond(
            &s.snapshot(),
            &probe,
            "127.0.0.1".parse().unwrap(),
            Transport::Udp,
            &mut out
        )
        .is_some(),
        "a random name below host1.example. is a pre-rendered NXDOMAIN"
    );
    let (f, stubs) = nx_burst(s.udp, &mut rng, 40, None);
    assert!(stubs >= 30 && f <= 5, "limited: {f} full, {stubs} slipped");
    // A server cookie learned over TCP (never limited) makes it exempt.
    let client = [0x42u8; 8];
    let first = s
        .tcp_raw(&support::dns::query_with_options(
            2,
            "r4567.host1.example.",
            1,
            &[(10, &client)],
        ))
        .unwrap();
    let full = response_cookie(&first).expect("a cookie in the TCP answer");
    assert_eq!(&full[..8], &client);
    let (f, stubs) = nx_burst(s.udp, &mut rng, 40, Some(&full));
    assert_eq!((f, stubs), (40, 0), "valid cookie");
}
