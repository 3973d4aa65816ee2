//! EDNS options and protocol details over real UDP and TCP: NSID
//! (RFC 5001), DNS cookies (RFC 7873, RFC 9018) with RRL, Extended DNS
//! Errors (RFC 8914), and the checks of ISC's EDNS compliance tester
//! (`ednscomp`), each written out here as a query and what must come back.

use crate::support;

use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use support::dns::*;
use support::server::*;
use support::steer;
use support::tools::{need_tools, tool};

/// Options of the OPT record of a response: (code, data), in order;
/// `None` when the response has no OPT.
fn options(raw: &[u8]) -> Option<Vec<(u16, Vec<u8>)>> {
    // Walk the additional section by hand: hickory's Edns drops options it
    // does not know.
    let mut pos = 12;
    let qd = u16::from_be_bytes([raw[4], raw[5]]);
    let rrs: usize = [6, 8, 10]
        .iter()
        .map(|&i| u16::from_be_bytes([raw[i], raw[i + 1]]) as usize)
        .sum();
    let skip_name = |mut p: usize| -> usize {
        loop {
            let l = raw[p];
            if l == 0 {
                return p + 1;
            }
            if l & 0xC0 == 0xC0 {
                return p + 2;
            }
            p += 1 + l as usize;
        }
    };
    for _ in 0..qd {
        pos = skip_name(pos) + 4;
    }
    for _ in 0..rrs {
        let owner = pos;
        pos = skip_name(pos);
        let rtype = u16::from_be_bytes([raw[pos], raw[pos + 1]]);
        let rdlen = u16::from_be_bytes([raw[pos + 8], raw[pos + 9]]) as usize;
        let rd = &raw[pos + 10..pos + 10 + rdlen];
        if rtype == 41 && raw[owner] == 0 {
            let mut out = Vec::new();
            let mut o = rd;
            while o.len() >= 4 {
                let code = u16::from_be_bytes([o[0], o[1]]);
                let len = u16::from_be_bytes([o[2], o[3]]) as usize;
                out.push((code, o[4..4 + len].to_vec()));
                o = &o[4 + len..];
            }
            return Some(out);
        }
        pos += 10 + rdlen;
    }
    None
}

fn option(raw: &[u8], code: u16) -> Option<Vec<u8>> {
    options(raw)?
        .into_iter()
        .find(|(c, _)| *c == code)
        .map(|(_, d)| d)
}

fn rcode(raw: &[u8]) -> u16 {
    // Header rcode plus the OPT extended bits are not needed here.
    u16::from(raw[3] & 0xF)
}

fn both(s: &Server, q: &[u8]) -> [Vec<u8>; 2] {
    [
        s.udp_raw(q).expect("UDP answer"),
        s.tcp_raw(q).expect("TCP answer"),
    ]
}

fn now() -> u32 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as u32
}

/// Queries answered by the fast path (static, steered), the general path
/// (NXDOMAIN, ANY, DNAME, REFUSED) and the error replies (NOTIMP).
const PATHS: &[(&str, u16)] = &[
    ("www.example.", 1),
    ("www.cdn.example.", 1),
    ("www.cdn.example.", 28),
    ("nx.example.", 1),
    ("example.", 255),
    ("x.dn.types.example.", 1),
    ("types.example.", 65),
    ("www.example.org.", 1),
];

#[test]
fn nsid_on_every_path_and_transport() {
    let s = Server::start_with(&default_zone_files(), "nsid: ns-test-1\n");
    for &(name, t) in PATHS {
        for raw in both(&s, &query_with_options(next_id(), name, t, &[(3, b"")])) {
            assert_eq!(
                option(&raw, 3).as_deref(),
                Some(&b"ns-test-1"[..]),
                "{name} {t}"
            );
        }
        // Not asked: not sent.
        for raw in both(&s, &query_with_options(next_id(), name, t, &[])) {
            assert_eq!(option(&raw, 3), None, "{name} {t}");
        }
    }
    // A NOTIMP (opcode 15) with EDNS carries it too.
    let mut q = query_with_options(next_id(), "www.example.", 1, &[(3, b"")]);
    q[2] |= 15 << 3;
    for raw in both(&s, &q) {
        assert_eq!(rcode(&raw), 4);
        assert_eq!(option(&raw, 3).as_deref(), Some(&b"ns-test-1"[..]));
    }
    // And it does not change the answer itself: same records as without.
    let msg = |raw: Vec<u8>| hickory_proto::op::Message::from_vec(&raw).unwrap();
    let with = msg(s
        .udp_raw(&query_with_options(7, "www.example.", 1, &[(3, b"")]))
        .unwrap());
    let without = msg(s
        .udp_raw(&query_with_options(7, "www.example.", 1, &[]))
        .unwrap());
    assert_eq!(with.answers, without.answers);
    assert_eq!(with.authorities, without.authorities);
}

#[test]
fn nsid_hostname_is_the_host_name() {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    let host = host.trim();
    let cfg = geosteer::ServerConfig::from_str(
        "nsid: hostname\n",
        std::path::Path::new("/x/geosteer.yaml"),
    )
    .unwrap();
    assert_eq!(cfg.nsid.as_deref(), Some(host.as_bytes()));
    for bad in ["nsid: \"\"\n", &format!("nsid: {}\n", "x".repeat(129))] {
        let e = geosteer::ServerConfig::from_str(bad, std::path::Path::new("g.yaml")).unwrap_err();
        assert!(e.to_string().contains("nsid"), "{e}");
    }
}

/// The server cookie of a response to client cookie `client`.
fn server_cookie(raw: &[u8], client: &[u8; 8]) -> [u8; 16] {
    let c = option(raw, 10).expect("a COOKIE option");
    assert_eq!(c.len(), 24, "client cookie and a 16-byte server cookie");
    assert_eq!(&c[..8], client, "client cookie echoed");
    assert_eq!(c[8], 1, "RFC 9018 version 1");
    assert_eq!(&c[9..12], &[0, 0, 0], "reserved");
    let ts = u32::from_be_bytes([c[12], c[13], c[14], c[15]]);
    assert!(ts.abs_diff(now()) < 30, "timestamp {ts} is now");
    c[8..].try_into().unwrap()
}

#[test]
fn cookies_on_by_default_on_every_path() {
    let s = shared();
    let client = *b"\x01\x02\x03\x04\x05\x06\x07\x08";
    for &(name, t) in PATHS {
        for raw in both(s, &query_with_options(next_id(), name, t, &[(10, &client)])) {
            let sc = server_cookie(&raw, &client);
            // Sending it back (valid) or a foreign one (treated as none)
            // both get a normal answer with a fresh cookie of ours.
            let full = [&client[..], &sc].concat();
            let foreign = [&client[..], &[9u8; 16]].concat();
            for back in [full, foreign] {
                for raw2 in both(s, &query_with_options(next_id(), name, t, &[(10, &back)])) {
                    assert_eq!(rcode(&raw2), rcode(&raw), "{name} {t}");
                    server_cookie(&raw2, &client);
                }
            }
        }
    }
}

#[test]
fn malformed_cookie_is_formerr() {
    let s = shared();
    // RFC 7873 §5.2.2: shorter than 8, 9 to 15, longer than 40.
    for len in [0usize, 1, 7, 9, 12, 15, 41, 48] {
        let c = vec![0xAB; len];
        for raw in both(
            s,
            &query_with_options(next_id(), "www.example.", 1, &[(10, &c)]),
        ) {
            assert_eq!(rcode(&raw), 1, "length {len}");
            assert_eq!(&raw[6..10], &[0, 0, 0, 0], "no records");
            assert_eq!(option(&raw, 10), None, "no cookie in a FORMERR");
        }
    }
    // Two COOKIE options.
    let c = [1u8; 8];
    let q = query_with_options(next_id(), "www.example.", 1, &[(10, &c), (10, &c)]);
    for raw in both(s, &q) {
        assert_eq!(rcode(&raw), 1);
    }
    // 8 and 16..=40 are fine.
    for len in [8usize, 16, 24, 40] {
        let c = vec![0x5A; len];
        for raw in both(
            s,
            &query_with_options(next_id(), "www.example.", 1, &[(10, &c)]),
        ) {
            assert_eq!(rcode(&raw), 0, "length {len}");
        }
    }
}

#[test]
fn cookies_off_sends_none() {
    let s = Server::start_with(&default_zone_files(), "cookies: off\n");
    for &(name, t) in PATHS {
        for raw in both(
            &s,
            &query_with_options(next_id(), name, t, &[(10, &[1; 8])]),
        ) {
            assert_eq!(option(&raw, 10), None, "{name} {t}");
        }
    }
    // A malformed one is still malformed.
    let raw = s
        .udp_raw(&query_with_options(
            next_id(),
            "www.example.",
            1,
            &[(10, &[1; 5])],
        ))
        .unwrap();
    assert_eq!(rcode(&raw), 1);
}

/// Sends `n` copies of `q` over UDP from one socket; returns (full answers,
/// slipped stubs). Slipped stubs must carry nothing but header and question.
fn burst(to: SocketAddr, q: &[u8], n: u16) -> (u32, u32) {
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let mut q = q.to_vec();
    for i in 0..n {
        q[..2].copy_from_slice(&i.to_be_bytes());
        sock.send_to(&q, to).unwrap();
    }
    let (mut full, mut stubs) = (0, 0);
    let mut buf = [0u8; 4096];
    while let Ok(len) = sock.recv(&mut buf) {
        let r = &buf[..len];
        if r[2] & 0x02 != 0 && r[6..12] == [0; 6] {
            // RFC 8914 §3 / RRL: a slip has no OPT, so no EDE or cookie.
            let question = 12 + wire_name("www.example.").len() + 4;
            assert_eq!(len, question, "stub is header+question only: {r:02x?}");
            stubs += 1;
        } else {
            full += 1;
        }
    }
    (full, stubs)
}

#[test]
fn valid_cookie_exempts_from_rrl_and_is_shared_by_a_fleet() {
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("cookie.secret");
    std::fs::write(
        &secret,
        "# shared by the fleet\n0123456789abcdef0123456789abcdef\n",
    )
    .unwrap();
    let extra = format!(
        "rrl: {{ rate: 1, slip: 1, window: 15s }}\ncookies: {{ secret_file: {}, rotate: 1h }}\n",
        secret.display()
    );
    let a = Server::start_with(&default_zone_files(), &extra);
    let b = Server::start_with(&default_zone_files(), &extra);
    let client = [0x42u8; 8];
    // A's server cookie, learned over TCP (never rate limited).
    let first = a
        .tcp_raw(&query_with_options(1, "www.example.", 1, &[(10, &client)]))
        .unwrap();
    let sc = server_cookie(&first, &client);
    let full = [&client[..], &sc].concat();

    // Without a cookie: rate 1/s, so most of a burst is slipped.
    let plain = query_with_options(2, "www.example.", 1, &[]);
    let (f, stubs) = burst(a.udp, &plain, 40);
    assert!(stubs >= 30 && f <= 5, "limited: {f} full, {stubs} slipped");

    // A bad server cookie is treated as none: limited as well.
    let bad = [&client[..], &[7u8; 16]].concat();
    let (f, stubs) = burst(
        a.udp,
        &query_with_options(3, "www.example.", 1, &[(10, &bad)]),
        40,
    );
    assert!(
        stubs >= 30 && f <= 5,
        "bad cookie limited: {f} full, {stubs} slipped"
    );

    // A valid one is exempt, on A and on B (same secret file).
    for (srv, label) in [(&a, "a"), (&b, "b")] {
        let (f, stubs) = burst(
            srv.udp,
            &query_with_options(4, "www.example.", 1, &[(10, &full)]),
            40,
        );
        assert_eq!((f, stubs), (40, 0), "valid cookie on {label}");
    }
}

#[test]
fn bad_secret_file_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("cookie.secret");
    std::fs::write(&secret, "0123456789abcdef0123456789abcdef\nnot-hex\n").unwrap();
    let cfg_path = write_config_with(
        dir.path(),
        &default_zone_files(),
        "127.0.0.1:0",
        &format!("cookies: {{ secret_file: {} }}\n", secret.display()),
    );
    let cfg = geosteer::ServerConfig::load(&cfg_path).unwrap();
    let e = geosteer::build_snapshot(&cfg, &geosteer::AlwaysUp, 1)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains(&format!(
            "{}:2: a cookie secret is 32 hex digits",
            secret.display()
        )),
        "{e}"
    );
    for bad in [
        "cookies: maybe\n",
        "cookies: { rotate: 5s }\n",
        "cookies: { secret: x }\n",
    ] {
        assert!(
            geosteer::ServerConfig::from_str(bad, std::path::Path::new("g.yaml")).is_err(),
            "{bad}"
        );
    }
}

#[test]
fn refused_carries_ede_not_authoritative() {
    let s = shared();
    for raw in both(
        s,
        &query_with_options(next_id(), "www.example.org.", 1, &[]),
    ) {
        assert_eq!(rcode(&raw), 5);
        assert_eq!(option(&raw, 15), Some(vec![0, 20]), "EDE 20, no text");
    }
    // Without EDNS there is nowhere to put it.
    for raw in both(
        s,
        &raw_query(next_id(), 0, [1, 0, 0, 0], "www.example.org.", 1, &[]),
    ) {
        assert_eq!(rcode(&raw), 5);
        assert_eq!(options(&raw), None);
    }
    // Answers in our zones carry no EDE.
    for &(name, t) in &PATHS[..7] {
        for raw in both(s, &query_with_options(next_id(), name, t, &[])) {
            assert_eq!(option(&raw, 15), None, "{name}");
        }
    }
}

/// `dig +cookie` and `kdig +cookie` see a good cookie, and a second query
/// with the learned server cookie is good too.
#[test]
fn dig_and_kdig_see_good_cookies_and_nsid() {
    let s = Server::start_with(&default_zone_files(), "nsid: dig-test\n");
    let port = s.udp.port().to_string();
    if need_tools(&["dig"]) {
        for tcp in ["+notcp", "+tcp"] {
            let out = std::process::Command::new(tool("dig"))
                .args([
                    "@127.0.0.1",
                    "-p",
                    &port,
                    "www.example.",
                    "A",
                    "+cookie",
                    "+nsid",
                    tcp,
                ])
                .output()
                .unwrap();
            let text = String::from_utf8_lossy(&out.stdout);
            assert!(text.contains("(good)"), "{text}");
            assert!(
                text.contains("NSID: 64 69 67 2d 74 65 73 74 (\"dig-test\")"),
                "{text}"
            );
            let cookie = text
                .lines()
                .find_map(|l| l.strip_prefix("; COOKIE: "))
                .and_then(|l| l.split_whitespace().next())
                .unwrap()
                .to_string();
            let out = std::process::Command::new(tool("dig"))
                .args([
                    "@127.0.0.1",
                    "-p",
                    &port,
                    "www.example.",
                    "A",
                    &format!("+cookie={cookie}"),
                    tcp,
                ])
                .output()
                .unwrap();
            let text = String::from_utf8_lossy(&out.stdout);
            assert!(
                text.contains("(good)") && text.contains("status: NOERROR"),
                "{text}"
            );
        }
    }
    if need_tools(&["kdig"]) {
        for tcp in ["+notcp", "+tcp"] {
            let out = std::process::Command::new(tool("kdig"))
                .args([
                    "@127.0.0.1",
                    "-p",
                    &port,
                    "www.example.",
                    "A",
                    "+cookie",
                    "+nsid",
                    tcp,
                ])
                .output()
                .unwrap();
            let text = String::from_utf8_lossy(&out.stdout);
            let err = String::from_utf8_lossy(&out.stderr);
            // kdig checks the echoed client cookie and warns when it is wrong.
            assert!(
                !text.contains("WARNING") && !err.contains("WARNING"),
                "{text}{err}"
            );
            let cookie = text
                .lines()
                .find_map(|l| l.strip_prefix(";; COOKIE: "))
                .unwrap_or_else(|| panic!("no cookie: {text}"))
                .trim()
                .to_string();
            assert_eq!(cookie.len(), 48, "{text}");
            assert!(text.contains("dig-test"), "{text}");
            let out = std::process::Command::new(tool("kdig"))
                .args([
                    "@127.0.0.1",
                    "-p",
                    &port,
                    "www.example.",
                    "A",
                    &format!("+cookie={cookie}"),
                    tcp,
                ])
                .output()
                .unwrap();
            let text = String::from_utf8_lossy(&out.stdout);
            assert!(
                text.contains("status: NOERROR") && !text.contains("WARNING"),
                "{text}"
            );
        }
    }
}

/// `all_down: servfail` with every edge down: SERVFAIL with EDE 23 and a
/// short text naming the host, over UDP and TCP, from the general path
/// (the fast path hands steering that is not edges over).
#[test]
fn all_down_servfail_carries_ede_with_text() {
    use geosteer::Transport;
    use geosteer::{AdminState, Registry};
    let reg = Registry::new();
    let snap = steer::snapshot_with(steer::Db::City, &reg);
    for e in ["d1", "d2"] {
        reg.set_admin(None, e, AdminState::Down).unwrap();
    }
    reg.refresh();
    let q = query_with_options(9, "down-servfail.steer.example.", 1, &[(3, b"")]);
    let src: std::net::SocketAddr = "127.0.0.1:5353".parse().unwrap();
    for t in [Transport::Udp, Transport::Tcp] {
        let mut out = vec![0u8; 65_535];
        let n = geosteer::respond(&snap, &q, src, t, &mut out).unwrap();
        let raw = &out[..n];
        assert_eq!(rcode(raw), 2, "SERVFAIL");
        let ede = option(raw, 15).expect("EDE");
        assert_eq!(&ede[..2], &[0, 23], "Network Error");
        assert_eq!(&ede[2..], b"no edge can serve down-servfail");
        let mut again = vec![0u8; 65_535];
        let s = geosteer::respond_traced(&snap, &q, src.ip(), t, &mut again, &mut ()).unwrap();
        assert!(!s.prerendered, "looked up, not pre-rendered");
        assert_eq!(raw, &again[..s.len]);
    }
    // Edges up again: no EDE.
    for e in ["d1", "d2"] {
        reg.set_admin(None, e, AdminState::Auto).unwrap();
    }
    reg.refresh();
    let mut out = vec![0u8; 65_535];
    let n = geosteer::respond(&snap, &q, src, Transport::Udp, &mut out).unwrap();
    assert_eq!(rcode(&out[..n]), 0);
    assert_eq!(option(&out[..n], 15), None);
}

/// One probe of ISC's EDNS compliance tester (genreport), as it sends it.
struct Probe {
    name: &'static str,
    /// Header flag bits to set (AA 0x0400, TC 0x0200, RD 0x0100, RA 0x0080,
    /// Z 0x0040, AD 0x0020, CD 0x0010).
    flags: u16,
    opcode: u16,
    qtype: u16,
    /// (UDP size, version, EDNS flags); `None`: no EDNS.
    edns: Option<(u16, u8, u16)>,
    options: &'static [(u16, &'static [u8])],
    tcp: bool,
}

const NSID: (u16, &[u8]) = (3, b"");
const COOKIE: (u16, &[u8]) = (10, b"\x01\x02\x03\x04\x05\x06\x07\x08");
const EXPIRE: (u16, &[u8]) = (9, b"");
const SUBNET: (u16, &[u8]) = (8, b"\x00\x01\x00\x00");

/// The probes of `ednscomp` (names as it reports them), against `example.`.
fn probes() -> Vec<Probe> {
    let p = |name, flags, opcode, qtype, edns, options, tcp| Probe {
        name,
        flags,
        opcode,
        qtype,
        edns,
        options,
        tcp,
    };
    let e = |v: u8| Some((4096u16, v, 0u16));
    vec![
        p("dns", 0, 0, 6, None, &[], false),
        p("aa", 0x0400, 0, 6, None, &[], false),
        p("ad", 0x0020, 0, 6, None, &[], false),
        p("cd", 0x0010, 0, 6, None, &[], false),
        p("ra", 0x0080, 0, 6, None, &[], false),
        p("rd", 0x0100, 0, 6, None, &[], false),
        p("tc", 0x0200, 0, 6, None, &[], false),
        p("zflag", 0x0040, 0, 6, None, &[], false),
        p("opcode", 0, 15, 0, None, &[], false),
        p("opcodeflg", 0x07F0, 15, 0, None, &[], false),
        p("type666", 0, 0, 666, None, &[], false),
        p("tcp", 0, 0, 6, None, &[], true),
        p("edns", 0, 0, 6, e(0), &[], false),
        p("edns1", 0, 0, 6, e(1), &[], false),
        p("edns@512", 0, 0, 48, Some((512, 0, 0)), &[], false),
        p("ednsopt", 0, 0, 6, e(0), &[(100, b"")], false),
        p("edns1opt", 0, 0, 6, e(1), &[(100, b"")], false),
        p("do", 0, 0, 6, Some((4096, 0, 0x8000)), &[], false),
        p("docd", 0x0010, 0, 6, Some((4096, 0, 0x8000)), &[], false),
        p("edns1do", 0, 0, 6, Some((4096, 1, 0x8000)), &[], false),
        p("ednsflags", 0, 0, 6, Some((4096, 0, 0x0080)), &[], false),
        p(
            "optlist",
            0,
            0,
            6,
            e(0),
            &[NSID, SUBNET, EXPIRE, COOKIE],
            false,
        ),
        p("ednsnsid", 0, 0, 6, e(0), &[NSID], false),
        p("ednscookie", 0, 0, 6, e(0), &[COOKIE], false),
        p("ednsexpire", 0, 0, 6, e(0), &[EXPIRE], false),
        p("ednssubnet", 0, 0, 6, e(0), &[SUBNET], false),
        p("edns1nsid", 0, 0, 6, e(1), &[NSID], false),
        p("edns1cookie", 0, 0, 6, e(1), &[COOKIE], false),
        p("edns1expire", 0, 0, 6, e(1), &[EXPIRE], false),
        p("edns1subnet", 0, 0, 6, e(1), &[SUBNET], false),
        p("ednstcp", 0, 0, 48, Some((512, 0, 0x8000)), &[], true),
    ]
}

fn probe_bytes(p: &Probe) -> Vec<u8> {
    let opt = p
        .edns
        .map(|(size, v, f)| opt_rr(size, 0, v, f, p.options))
        .unwrap_or_default();
    let ar = u16::from(p.edns.is_some());
    if p.opcode != 0 {
        // Header only (plus OPT), as genreport sends it.
        let mut q =
            raw_query(1, p.opcode << 11 | p.flags, [0, 0, 0, ar], "", 0, &[])[..12].to_vec();
        q.extend_from_slice(&opt);
        return q;
    }
    raw_query(next_id(), p.flags, [1, 0, 0, ar], "example.", p.qtype, &opt)
}

/// genreport's verdict on one response, as its `ok` rules read: the
/// problems it would tag, empty for `ok`.
fn verdict(p: &Probe, raw: &[u8]) -> Vec<String> {
    let mut bad = Vec::new();
    let m = hickory_proto::op::Message::from_vec(raw).expect("parses");
    let flags = u16::from_be_bytes([raw[2], raw[3]]);
    let version = p.edns.map_or(0, |e| e.1);
    let opt = options(raw);
    let rcode = u16::from(m.metadata.response_code);
    let want = if p.opcode != 0 {
        4
    } else if version != 0 {
        16
    } else {
        0
    };
    if rcode != want {
        bad.push(format!("rcode {rcode}, want {want}"));
    }
    if opt.is_some() != p.edns.is_some() {
        bad.push("OPT presence".into());
    }
    if let Some(e) = &m.edns {
        if e.version() != 0 {
            bad.push("version-not-zero".into());
        }
        // The raw OPT flags: only DO may be set, and only if asked.
        let oflags = raw_opt_flags(raw);
        if oflags & 0x7FFF != 0 {
            bad.push("mbz".into());
        }
        let asked_do = p.edns.is_some_and(|e| e.2 & 0x8000 != 0);
        if (oflags & 0x8000 != 0) != asked_do {
            bad.push("DO echo".into());
        }
    }
    let soa = m
        .answers
        .iter()
        .any(|r| r.record_type() == hickory_proto::rr::RecordType::SOA);
    if p.qtype == 6 && version == 0 && rcode == 0 && !soa {
        bad.push("nosoa".into());
    }
    if p.qtype == 6 && soa && (version != 0 || rcode != 0) {
        bad.push("soa".into());
    }
    if let Some(o) = &opt {
        for (code, _) in o {
            if ![3u16, 8, 10].contains(code) {
                bad.push(format!("echoed option {code}"));
            }
        }
    }
    let aa = flags & 0x0400 != 0;
    if !aa && version == 0 && rcode == 0 && p.opcode == 0 {
        bad.push("noaa".into());
    }
    if aa && p.opcode != 0 {
        bad.push("aa".into());
    }
    if flags & 0x0080 != 0 {
        bad.push("ra".into());
    }
    let rd = flags & 0x0100 != 0;
    if rd != (p.flags & 0x0100 != 0) {
        // opcodeflg=rd: RD echoed on an unknown opcode, as Knot and gdnsd.
        if !(p.opcode != 0 && rd) {
            bad.push("rd".into());
        }
    }
    if flags & 0x0020 != 0 {
        bad.push("ad".into());
    }
    if flags & 0x0010 != 0 && (p.opcode != 0 || p.flags & 0x0010 == 0) {
        bad.push("cd".into());
    }
    if flags & 0x0040 != 0 {
        bad.push("z".into());
    }
    if p.opcode != 0 && raw[4..6] != [0, 0] {
        bad.push("non-empty-question-section".into());
    }
    if !p.tcp && raw.len() > p.edns.map_or(512, |e| usize::from(e.0)) {
        bad.push("toobig".into());
    }
    // What it notes beside ok: NSID, cookie and subnet only when asked,
    // and never on a BADVERS (we read no options of a version we lack).
    let asked = |code: u16| version == 0 && p.options.iter().any(|(c, _)| *c == code);
    for code in [3u16, 8, 10] {
        let seen = opt
            .as_ref()
            .is_some_and(|o| o.iter().any(|(c, _)| *c == code));
        if seen != asked(code) {
            bad.push(format!("option {code} seen={seen}"));
        }
    }
    if asked(10) {
        let c = option(raw, 10).unwrap();
        if c[..8] != COOKIE.1[..] {
            bad.push("cookie-mismatch".into());
        }
    }
    bad
}

/// The OPT record's flags field (DO and the must-be-zero bits).
fn raw_opt_flags(raw: &[u8]) -> u16 {
    let pos = raw
        .windows(3)
        .rposition(|w| w == [0, 0, 41])
        .expect("an OPT record");
    u16::from_be_bytes([raw[pos + 7], raw[pos + 8]])
}

/// Every check of ISC's `ednscomp` against geosteer comes out `ok` (its
/// own run is recorded in SECURITY.md; the tool is not part of the tests).
#[test]
fn ednscomp_checks_are_ok() {
    let s = Server::start_with(&default_zone_files(), "nsid: ednscomp\n");
    for p in probes() {
        let q = probe_bytes(&p);
        let raw = if p.tcp { s.tcp_raw(&q) } else { s.udp_raw(&q) }
            .unwrap_or_else(|| panic!("{}: no answer", p.name));
        let bad = verdict(&p, &raw);
        assert!(bad.is_empty(), "{}: {bad:?} in {raw:02x?}", p.name);
    }
}
