//! PROXY protocol v2 in front of geosteer: dnsdist 1.7 with
//! `useProxyProtocol=true` forwards clients on two loopback addresses,
//! and each is steered to the edge of its own place, not dnsdist's, over
//! UDP and TCP. By hand: a header from an untrusted sender and a
//! malformed one are dropped and counted, a trusted sender without a
//! header is served as itself, a LOCAL header keeps the sender, and the
//! header's client is who RRL limits, whose address the sampled query
//! log and dnstap (read by `dnstap-ldns`) record, and whom a DNS cookie
//! is made for (RFC 9018's hash over the client's address, recomputed
//! here).

use crate::support;

use std::net::{SocketAddr, UdpSocket};
use std::process::{Command, Stdio};
use std::time::Duration;

use support::dns::{opt_rr, raw_query};
use support::server::{AppServer, Fixture, Server};
use support::tools::{need_tools, tool};
use support::wait::until;
use support::{KillOnDrop, free_port};

/// Placed by the pools file: dnsdist's address (127.0.0.1) in London,
/// two clients in Sydney and Tokyo.
const NETS: &str = "  127.0.0.1/32: [51.5, -0.12]\n  127.0.0.2/32: [-33.87, 151.21]\n  127.0.0.3/32: [35.68, 139.69]\n";
const LONDON: &str = "192.0.2.10";
const SYDNEY: &str = "203.0.113.30";
const TOKYO: &str = "203.0.113.10";

fn server(extra: &str) -> (Fixture, Server) {
    let fx = Fixture::new(NETS, &format!("proxy_protocol: [127.0.0.1/32]\n{extra}"));
    let s = fx.start();
    (fx, s)
}

/// A PROXY v2 header for `src` (as dnsdist sends before each datagram).
fn header(src: &str, dst: SocketAddr, command: u8) -> Vec<u8> {
    let src: SocketAddr = src.parse().unwrap();
    let (SocketAddr::V4(s), SocketAddr::V4(d)) = (src, dst) else {
        panic!("v4 only here")
    };
    let mut h = b"\r\n\r\n\0\r\nQUIT\n".to_vec();
    h.push(0x20 | command);
    h.push(0x12); // INET, DGRAM
    h.extend_from_slice(&12u16.to_be_bytes());
    h.extend_from_slice(&s.ip().octets());
    h.extend_from_slice(&d.ip().octets());
    h.extend_from_slice(&s.port().to_be_bytes());
    h.extend_from_slice(&d.port().to_be_bytes());
    h
}

/// Sends `packet` from `from` to `to`; the A records of the answer, or
/// `None` when nothing came back within half a second.
fn a_from(from: &str, to: SocketAddr, packet: &[u8]) -> Option<Vec<String>> {
    let sock = UdpSocket::bind((from, 0)).unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    sock.send_to(packet, to).unwrap();
    let mut buf = [0u8; 1500];
    let n = sock.recv(&mut buf).ok()?;
    Some(
        support::peers::answer_rdata(&buf[..n])
            .into_iter()
            .filter(|(t, _)| *t == 1)
            .map(|(_, rd)| format!("{}.{}.{}.{}", rd[0], rd[1], rd[2], rd[3]))
            .collect(),
    )
}

fn www() -> Vec<u8> {
    raw_query(0x3131, 0, [1, 0, 0, 0], "www.cdn.example", 1, &[])
}

#[test]
fn headers_are_believed_only_from_trusted_senders_and_only_whole() {
    let (_fx, gs) = server("");
    let to = gs.udp;
    // No header: the sender is the client (dnsdist's place, London).
    assert_eq!(a_from("127.0.0.1", to, &www()).unwrap(), [LONDON]);
    // A header from the trusted sender: its client (Sydney).
    let mut p = header("127.0.0.2:5353", to, 1);
    p.extend_from_slice(&www());
    assert_eq!(a_from("127.0.0.1", to, &p).unwrap(), [SYDNEY]);
    // LOCAL: the proxy speaks for itself.
    let mut local = header("127.0.0.2:5353", to, 0);
    local.extend_from_slice(&www());
    assert_eq!(a_from("127.0.0.1", to, &local).unwrap(), [LONDON]);
    // The same header from an untrusted sender: dropped, counted.
    assert_eq!(a_from("127.0.0.3", to, &p), None);
    assert_eq!(
        gs.metrics
            .counter("geosteer_proxy_dropped_total{reason=untrusted}"),
        1
    );
    // Malformed (version 3, or cut short) from the trusted one: dropped.
    let mut bad = p.clone();
    bad[12] = 0x31;
    assert_eq!(a_from("127.0.0.1", to, &bad), None);
    assert_eq!(a_from("127.0.0.1", to, &p[..20]), None);
    assert_eq!(
        gs.metrics
            .counter("geosteer_proxy_dropped_total{reason=malformed}"),
        2
    );
    assert_eq!(gs.metrics.counter("geosteer_proxy_accepted_total"), 2);

    // Over TCP: the header once, then the messages.
    let tcp = |pre: &[u8]| -> Vec<String> {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(gs.tcp).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let q = www();
        let mut out = pre.to_vec();
        for _ in 0..2 {
            out.extend_from_slice(&(q.len() as u16).to_be_bytes());
            out.extend_from_slice(&q);
        }
        // Trickled: the header in two pieces.
        let (a, b) = out.split_at(7);
        s.write_all(a).unwrap();
        std::thread::sleep(Duration::from_millis(20));
        s.write_all(b).unwrap();
        let mut got = Vec::new();
        for _ in 0..2 {
            let mut len = [0u8; 2];
            s.read_exact(&mut len).unwrap();
            let mut m = vec![0u8; u16::from_be_bytes(len) as usize];
            s.read_exact(&mut m).unwrap();
            for (t, rd) in support::peers::answer_rdata(&m) {
                if t == 1 {
                    got.push(format!("{}.{}.{}.{}", rd[0], rd[1], rd[2], rd[3]));
                }
            }
        }
        got
    };
    let mut stream_hdr = header("127.0.0.3:4444", gs.tcp, 1);
    stream_hdr[13] = 0x11; // INET, STREAM
    assert_eq!(tcp(&stream_hdr), [TOKYO, TOKYO]);
    assert_eq!(tcp(&[]), [LONDON, LONDON]);
}

/// RRL counts the header's client, not the proxy: two clients behind one
/// proxy have a budget each.
#[test]
fn rrl_limits_the_proxied_client() {
    let (_fx, gs) = server("rrl: { rate: 5, slip: 0 }\n");
    let to = gs.udp;
    let sock = UdpSocket::bind(("127.0.0.1", 0)).unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let ask = |client: &str| -> bool {
        let mut p = header(client, to, 1);
        p.extend_from_slice(&www());
        sock.send_to(&p, to).unwrap();
        let mut buf = [0u8; 1500];
        sock.recv(&mut buf).is_ok()
    };
    // One client spends its budget...
    let first = (0..20).filter(|_| ask("10.0.0.1:53")).count();
    assert!(first < 20, "RRL never limited the first client");
    assert!(!ask("10.0.0.1:53"), "the first client is limited now");
    // ...and another behind the same proxy still has its own.
    let second = (0..3).filter(|_| ask("10.1.0.1:53")).count();
    assert!(second > 0, "the second client was limited with the first");
}

#[test]
fn dnsdist_with_proxy_protocol_steers_each_client_to_its_own_edge() {
    if !need_tools(&["dnsdist", "dig"]) {
        return;
    }
    let (fx, gs) = server("");
    let port = free_port();
    let conf = fx.dir.path().join("dnsdist.conf");
    std::fs::write(
        &conf,
        format!(
            r#"-- Loopback only: no security poll over DNS, no console.
setSecurityPollSuffix("")
setLocal("127.0.0.1:{port}")
newServer({{address="127.0.0.1:{backend}", useProxyProtocol=true, healthCheckMode="lazy"}})
"#,
            backend = gs.udp.port()
        ),
    )
    .unwrap();
    let child = Command::new(tool("dnsdist"))
        .args(["--supervised", "--disable-syslog", "-C"])
        .arg(&conf)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start dnsdist");
    let _dnsdist = KillOnDrop(child);
    let dig = |from: &str, tcp: bool| -> String {
        let mut args = vec![
            "@127.0.0.1".to_string(),
            "-p".into(),
            port.to_string(),
            "-b".into(),
            from.into(),
            "+short".into(),
            "+time=1".into(),
            "+tries=1".into(),
            "www.cdn.example".into(),
            "A".into(),
        ];
        if tcp {
            args.push("+tcp".into());
        }
        let out = Command::new(tool("dig")).args(&args).output().unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    until("dnsdist forwarding", Duration::from_secs(20), || {
        (dig("127.0.0.2", false) == SYDNEY).then_some(())
    });
    for tcp in [false, true] {
        assert_eq!(dig("127.0.0.2", tcp), SYDNEY, "Sydney's client, tcp {tcp}");
        assert_eq!(dig("127.0.0.3", tcp), TOKYO, "Tokyo's client, tcp {tcp}");
    }
    assert!(gs.metrics.counter("geosteer_proxy_accepted_total") >= 4);
    assert_eq!(gs.metrics.sum("geosteer_proxy_dropped_total"), 0);
}

/// RFC 9018's server cookie for `client` at `ip`, made at `ts` with
/// `secret` as the SipHash key (`rotate: off`).
#[allow(deprecated)]
fn rfc9018_cookie(
    secret: &[u8; 16],
    client: &[u8; 8],
    ip: std::net::Ipv4Addr,
    ts: u32,
) -> [u8; 16] {
    use std::hash::Hasher;
    let mut out = [0u8; 16];
    out[0] = 1;
    out[4..8].copy_from_slice(&ts.to_be_bytes());
    let k0 = u64::from_le_bytes(secret[..8].try_into().unwrap());
    let k1 = u64::from_le_bytes(secret[8..].try_into().unwrap());
    let mut h = std::hash::SipHasher::new_with_keys(k0, k1);
    h.write(client);
    h.write(&out[..8]);
    h.write(&ip.octets());
    out[8..].copy_from_slice(&h.finish().to_le_bytes());
    out
}

#[test]
fn query_log_dnstap_and_cookies_see_the_proxied_client() {
    let secret: [u8; 16] = *b"0123456789abcdef";
    let fx = Fixture::new(
        NETS,
        "proxy_protocol: [127.0.0.1/32]\nquery_log: { sample: 1, path: queries.log }\n\
         dnstap: { file: tap.fstrm }\ncookies: { secret_file: cookie.secret, rotate: off }\n",
    );
    let hex: String = secret.iter().map(|b| format!("{b:02x}")).collect();
    std::fs::write(fx.dir.path().join("cookie.secret"), hex + "\n").unwrap();
    let app = AppServer::load(&fx.config_path());
    let to = app.dns();
    let sock = UdpSocket::bind(("127.0.0.1", 0)).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let client_cookie = *b"clientck";
    let q = raw_query(
        0x5151,
        0,
        [1, 0, 0, 1],
        "www.cdn.example",
        1,
        &opt_rr(1232, 0, 0, 0, &[(10, &client_cookie)]),
    );
    // The same query, from the proxy itself and through it for 127.0.0.2.
    let mut answers = Vec::new();
    for proxied in [None, Some("127.0.0.2:5353")] {
        let mut p = proxied.map_or_else(Vec::new, |c| header(c, to, 1));
        p.extend_from_slice(&q);
        sock.send_to(&p, to).unwrap();
        let mut buf = [0u8; 1500];
        let n = sock.recv(&mut buf).expect("an answer");
        answers.push(buf[..n].to_vec());
    }
    let server_cookie = |r: &[u8]| -> [u8; 16] {
        let mut want = vec![0, 10, 0, 24];
        want.extend_from_slice(&client_cookie);
        let at = r
            .windows(want.len())
            .position(|w| w == want)
            .expect("a COOKIE option with our client cookie");
        r[at + 12..at + 28].try_into().unwrap()
    };
    for (r, ip) in answers.iter().zip(["127.0.0.1", "127.0.0.2"]) {
        let got = server_cookie(r);
        let ts = u32::from_be_bytes(got[4..8].try_into().unwrap());
        assert_eq!(
            got,
            rfc9018_cookie(&secret, &client_cookie, ip.parse().unwrap(), ts),
            "the server cookie is not made for {ip}"
        );
    }

    // The query log names the header's client.
    let log = fx.dir.path().join("queries.log");
    let text = until("two query-log lines", Duration::from_secs(10), || {
        let t = std::fs::read_to_string(&log).unwrap_or_default();
        (t.lines().count() >= 2).then_some(t)
    });
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].contains("\"127.0.0.1\""), "{text}");
    assert!(lines[1].contains("\"127.0.0.2\""), "{text}");

    // dnstap too, as Debian's reader prints it.
    if need_tools(&["dnstap-ldns"]) {
        let tap = until("four dnstap messages", Duration::from_secs(20), || {
            let out = Command::new(tool("dnstap-ldns"))
                .arg("-r")
                .arg(fx.dir.path().join("tap.fstrm"))
                .output()
                .unwrap();
            let t = String::from_utf8_lossy(&out.stdout).into_owned();
            (t.lines().count() >= 4).then_some(t)
        });
        let who: Vec<&str> = tap
            .lines()
            .filter_map(|l| l.split_whitespace().nth(3))
            .collect();
        assert_eq!(
            who,
            ["127.0.0.1", "127.0.0.1", "127.0.0.2", "127.0.0.2"],
            "{tap}"
        );
    }
    app.shutdown();
}
