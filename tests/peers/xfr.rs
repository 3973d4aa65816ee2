//! Zone transfers, NOTIFY and TSIG with real peers, all on loopback:
//!
//! - BIND's `dig axfr -y`: the signed transfer of the demo zone (steered
//!   hosts as the unlocated default), a wrong key (BADSIG), no key, a
//!   client `transfer.allow` does not list, AXFR over UDP, IXFR from our
//!   own serial, a request signed an hour ago (BADTIME);
//! - Knot as a TSIG secondary of geosteer: it bootstraps by AXFR, and a
//!   pools edit or a zone file edit reaches it within 5 s (serial up,
//!   NOTIFY, transfer); a restart of geosteer keeps the serial;
//! - Knot as geosteer's primary: geosteer pulls the zone with TSIG, steers
//!   in it with its own pools file, takes a Knot reload within 5 s by
//!   NOTIFY and IXFR, refuses a NOTIFY signed with another key, and serves
//!   its copy after a restart with the primary gone;
//! - the network between them breaking transfers (a relay in front of
//!   Knot cutting them short): IXFR, then AXFR fail, the last good copy
//!   keeps serving, and the next NOTIFY brings the new serial in.

use crate::support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use support::dns::{raw_query, tcp_raw, udp_raw};
use support::peers::{Knot, answer_rdata};
use support::server::{AppServer, Fixture};
use support::tools::{need_tools, tool};
use support::wait::{holds_for, until_true};
use support::{free_port, write_file};

/// A 32-byte HMAC-SHA256 secret, base64.
const SECRET: &str = "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LTEyMzQ=";
const OTHER: &str = "d3Jvbmctd3Jvbmctd3Jvbmctd3Jvbmctd3Jvbmctd3I=";

fn tsig_cfg() -> String {
    format!("tsig:\n  xfr-key: {{ algorithm: hmac-sha256, secret: \"{SECRET}\" }}\n")
}

fn knot_key(secret: &str) -> String {
    format!("key:\n  - id: xfr-key\n    algorithm: hmac-sha256\n    secret: {secret}\n")
}

/// (type, RDATA) answers of `name`/`qtype` at `addr` over UDP.
fn ask(addr: SocketAddr, name: &str, qtype: u16) -> Vec<(u16, Vec<u8>)> {
    let q = raw_query(0x4444, 0, [1, 0, 0, 0], name, qtype, &[]);
    udp_raw(addr, &q)
        .map(|r| answer_rdata(&r))
        .unwrap_or_default()
}

fn soa_serial(addr: SocketAddr, zone: &str) -> Option<u32> {
    ask(addr, zone, 6)
        .into_iter()
        .find(|(t, _)| *t == 6)
        .map(|(_, rd)| {
            let at = geosteer::soa_serial_at(&rd).unwrap();
            u32::from_be_bytes(rd[at..at + 4].try_into().unwrap())
        })
}

fn a_records(addr: SocketAddr, name: &str) -> Vec<String> {
    let mut v: Vec<String> = ask(addr, name, 1)
        .into_iter()
        .filter(|(t, _)| *t == 1)
        .map(|(_, rd)| std::net::Ipv4Addr::new(rd[0], rd[1], rd[2], rd[3]).to_string())
        .collect();
    v.sort();
    v
}

fn dig(port: u16, args: &[&str]) -> String {
    let out = Command::new(tool("dig"))
        .args(["@127.0.0.1", "-p", &port.to_string()])
        .args(args)
        .output()
        .unwrap();
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The demo zone served by the whole app on `port`, with `cfg` added.
fn primary(port: u16, cfg: &str) -> (Fixture, AppServer) {
    let fx = Fixture::custom("", &format!("listen: [127.0.0.1:{port}]\n"), cfg, |z| z);
    let app = AppServer::load(&fx.config_path());
    (fx, app)
}

#[test]
fn dig_axfr_with_tsig_and_everything_that_must_be_refused() {
    if !need_tools(&["dig"]) {
        return;
    }
    let port = free_port();
    let (_fx, _app) = primary(
        port,
        &format!(
            "{}transfer:\n  allow: [{{ net: 127.0.0.1/32, tsig: xfr-key }}]\n",
            tsig_cfg()
        ),
    );
    let key = format!("hmac-sha256:xfr-key:{SECRET}");
    let out = dig(port, &["cdn.example", "AXFR", "-y", &key]);
    let records: Vec<&str> = out
        .lines()
        .filter(|l| !l.starts_with(';') && !l.trim().is_empty())
        .collect();
    assert!(!out.contains("failed"), "{out}");
    // SOA first and last, then the TSIG (dig checked it, or it would say
    // so), static records, and steered hosts as the unlocated default:
    // every edge up, the listed order (www: lhr first).
    assert!(records[0].contains("\tSOA\t"), "{out}");
    assert!(records[records.len() - 2].contains("\tSOA\t"), "{out}");
    assert!(records.last().unwrap().contains("TSIG"), "{out}");
    for want in [
        "static.cdn.example.\t300\tIN\tA\t198.51.100.10",
        "www.cdn.example.\t20\tIN\tA\t192.0.2.10",
        "www.cdn.example.\t20\tIN\tHTTPS\t1 . alpn=\"h3,h2\" port=443 ipv4hint=192.0.2.10",
        "*.wild.cdn.example.\t3600\tIN\tA\t198.51.100.20",
        "ns1.sub.cdn.example.\t3600\tIN\tA\t192.0.2.1",
    ] {
        assert!(out.contains(want), "no {want}:\n{out}");
    }
    // A wrong secret: BADSIG, nothing transferred.
    let bad = dig(
        port,
        &[
            "cdn.example",
            "AXFR",
            "-y",
            &format!("hmac-sha256:xfr-key:{OTHER}"),
        ],
    );
    assert!(bad.contains("BADSIG") && !bad.contains("\tSOA\t"), "{bad}");
    // An unknown key name: BADKEY.
    let unknown = dig(
        port,
        &[
            "cdn.example",
            "AXFR",
            "-y",
            &format!("hmac-sha256:other-key:{SECRET}"),
        ],
    );
    assert!(
        unknown.contains("BADKEY") && !unknown.contains("\tSOA\t"),
        "{unknown}"
    );
    // No key: REFUSED (allow names a key).
    let unsigned = dig(port, &["cdn.example", "AXFR"]);
    assert!(
        unsigned.contains("Transfer failed") && !unsigned.contains("\tSOA\t"),
        "{unsigned}"
    );
    // The right key from an address allow does not list.
    let elsewhere = dig(
        port,
        &["-b", "127.0.0.2", "cdn.example", "AXFR", "-y", &key],
    );
    assert!(!elsewhere.contains("\tSOA\t"), "{elsewhere}");
    // IXFR from our own serial: the SOA alone; over UDP likewise.
    let serial = soa_serial(([127, 0, 0, 1], port).into(), "cdn.example").unwrap();
    let ixfr = dig(
        port,
        &["cdn.example", &format!("IXFR={serial}"), "-y", &key],
    );
    assert_eq!(ixfr.matches("\tSOA\t").count(), 1, "{ixfr}");
    let udp = dig(
        port,
        &[
            "+notcp",
            "cdn.example",
            &format!("IXFR={}", serial - 1),
            "-y",
            &key,
        ],
    );
    assert_eq!(udp.matches("\tSOA\t").count(), 1, "{udp}");
    // A zone we do not serve: NOTAUTH.
    let other = dig(port, &["example.org", "AXFR", "-y", &key]);
    assert!(
        other.contains("NOTAUTH") || other.contains("Transfer failed"),
        "{other}"
    );
}

#[test]
fn a_request_signed_long_ago_gets_badtime_and_a_signed_query_a_signed_answer() {
    let port = free_port();
    let (_fx, _app) = primary(
        port,
        &format!(
            "{}transfer:\n  allow: [{{ net: 127.0.0.1/32, tsig: xfr-key }}]\n",
            tsig_cfg()
        ),
    );
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let secret = data_encoding::BASE64.decode(SECRET.as_bytes()).unwrap();
    let key = std::sync::Arc::new(
        geosteer::TsigKey::new("xfr-key", geosteer::TsigAlgorithm::HmacSha256, &secret).unwrap(),
    );
    let now = now_secs();
    for (age, want_error) in [(3600u64, geosteer::BADTIME), (0, 0)] {
        let mut q = raw_query(0x5555, 0, [1, 0, 0, 0], "cdn.example", 6, &[]);
        let mut signer = geosteer::TsigSigner::request(key.clone());
        signer.sign_vec(&mut q, now - age);
        let r = tcp_raw(addr, &q).expect("an answer");
        let rec = geosteer::find_tsig(&r).unwrap().expect("a signed answer");
        assert_eq!(rec.error, want_error, "age {age}");
        if want_error == 0 {
            // NOERROR with the SOA, and the signature checks out.
            assert_eq!(r[3] & 0x0F, 0);
            let mut v = geosteer::TsigVerifier::new(&signer);
            v.check(&r, now).unwrap();
            assert!(answer_rdata(&r).iter().any(|(t, _)| *t == 6));
        } else {
            assert_eq!(r[3] & 0x0F, 9, "NOTAUTH");
            // Our clock is in Other Data.
            assert_eq!(rec.other.len(), 6);
        }
    }
}

/// Knot's secondary config for `zone` from geosteer at `port`.
fn knot_secondary_conf(port: u16, zone: &str) -> String {
    format!(
        "{}remote:\n  - id: geosteer\n    address: 127.0.0.1@{port}\n    key: xfr-key\n\
         acl:\n  - id: from-geosteer\n    address: 127.0.0.1\n    key: xfr-key\n    action: notify\n  \
         - id: local-axfr\n    address: 127.0.0.1\n    action: transfer\n\
         template:\n  - id: default\n    storage: \"{{zones}}\"\n    file: \"%s.zone\"\n\
         zone:\n  - domain: {zone}\n    master: geosteer\n    acl: [from-geosteer, local-axfr]\n",
        knot_key(SECRET)
    )
}

#[test]
fn knot_as_tsig_secondary_follows_pools_and_zone_edits_within_5s() {
    if !need_tools(&["knotd", "knotc"]) {
        return;
    }
    let (gport, kport) = (free_port(), free_port());
    let cfg = format!(
        "{}transfer:\n  allow: [{{ net: 127.0.0.1/32, tsig: xfr-key }}]\n  notify: [\"127.0.0.1:{kport}\"]\n",
        tsig_cfg()
    );
    let (fx, app) = primary(gport, &cfg);
    let gs: SocketAddr = ([127, 0, 0, 1], gport).into();
    let knot = Knot::start_on(
        kport,
        &[],
        &knot_secondary_conf(gport, "cdn.example."),
        "cdn.example.",
    );
    let ks = knot.addr;
    let serial0 = soa_serial(gs, "cdn.example").unwrap();
    assert_eq!(
        soa_serial(ks, "cdn.example"),
        Some(serial0),
        "{}",
        knot.log()
    );
    assert_eq!(
        a_records(ks, "www.cdn.example"),
        ["192.0.2.10"],
        "the unlocated default"
    );
    assert_eq!(a_records(ks, "static.cdn.example"), ["198.51.100.10"]);

    // A pools edit that changes www's default: the serial moves (the zone
    // file's does not), Knot is told and has it within 5 s.
    let pools = fx.dir.path().join("zones/cdn.example.pools.yaml");
    let text = std::fs::read_to_string(&pools).unwrap();
    let text = text.replace(
        "  www:\n    # every edge is a candidate; the nearest answers\n",
        "  www:\n    edges: [fra, lhr]\n",
    );
    assert!(
        text.contains("edges: [fra, lhr]"),
        "demo pools file changed"
    );
    std::fs::write(&pools, text).unwrap();
    until_true(
        "Knot to serve www's new default",
        Duration::from_secs(5),
        || a_records(ks, "www.cdn.example") == ["192.0.2.20"],
    );
    let serial1 = soa_serial(gs, "cdn.example").unwrap();
    assert_eq!(serial1, serial0 + 1);
    assert_eq!(soa_serial(ks, "cdn.example"), Some(serial1));

    // A zone file edit without a serial change: moved for it, at Knot in 5 s.
    let zone = fx.dir.path().join("zones/cdn.example.zone");
    let text = std::fs::read_to_string(&zone).unwrap() + "fresh IN A 192.0.2.99\n";
    std::fs::write(&zone, text).unwrap();
    until_true(
        "Knot to serve the new record",
        Duration::from_secs(5),
        || a_records(ks, "fresh.cdn.example") == ["192.0.2.99"],
    );
    let serial2 = soa_serial(gs, "cdn.example").unwrap();
    assert_eq!(serial2, serial1 + 1);

    // A restart does not go back, nor bump for nothing.
    app.shutdown();
    let app = AppServer::load(&fx.config_path());
    assert_eq!(soa_serial(gs, "cdn.example"), Some(serial2));
    drop(app);
}

#[test]
fn knot_as_primary_geosteer_follows_by_notify_and_ixfr_and_keeps_its_copy() {
    if !need_tools(&["knotd", "knotc"]) {
        return;
    }
    let (gport, kport) = (free_port(), free_port());
    let zone_v1 = "$TTL 300\n@ SOA ns1 hostmaster 1 2 2 600 60\n@ NS ns1\nns1 A 192.0.2.53\nwww A 192.0.2.80\nmail MX 10 www\n";
    let knot_conf = format!(
        "{}remote:\n  - id: geosteer\n    address: 127.0.0.1@{gport}\n    key: xfr-key\n\
         acl:\n  - id: to-geosteer\n    address: 127.0.0.1\n    key: xfr-key\n    action: transfer\n\
         template:\n  - id: default\n    storage: \"{{zones}}\"\n    file: \"%s.zone\"\n    zonefile-load: difference\n    journal-content: changes\n    zonefile-sync: -1\n\
         zone:\n  - domain: static.example.\n    notify: geosteer\n    acl: to-geosteer\n",
        knot_key(SECRET)
    );
    let knot = Knot::start_on(
        kport,
        &[("static.example.zone", zone_v1)],
        &knot_conf,
        "static.example.",
    );
    let http = free_port();
    let cfg = format!(
        "{}http: 127.0.0.1:{http}\nsecondary:\n  static.example: {{ primaries: [\"127.0.0.1:{kport}\"], tsig: xfr-key }}\n",
        tsig_cfg()
    );
    let fx = Fixture::custom("", &format!("listen: [127.0.0.1:{gport}]\n"), &cfg, |z| z);
    // Steering inside the transferred zone, from our own pools file.
    write_file(
        fx.dir.path(),
        "zones/static.example.pools.yaml",
        "edges:\n  a: { addresses: [198.51.100.1], location: [51.5, -0.1] }\nhosts:\n  cdn: {}\n",
    );
    let app = AppServer::load(&fx.config_path());
    let gs: SocketAddr = ([127, 0, 0, 1], gport).into();
    until_true("the first transfer", Duration::from_secs(10), || {
        soa_serial(gs, "static.example") == Some(1)
    });
    assert_eq!(a_records(gs, "www.static.example"), ["192.0.2.80"]);
    assert_eq!(
        a_records(gs, "cdn.static.example"),
        ["198.51.100.1"],
        "steered from our pools file"
    );
    let copy = fx.dir.path().join("zones/static.example.zone");
    assert!(copy.exists(), "the copy is on disk");

    // Knot reloads an edited zone: NOTIFY, and geosteer has it in 5 s, by
    // IXFR (Knot keeps the differences).
    let zone_v2 = zone_v1
        .replace(" 1 2 2 600 60", " 2 2 2 600 60")
        .replace("192.0.2.80", "192.0.2.81");
    std::fs::write(knot.zones().join("static.example.zone"), zone_v2).unwrap();
    let out = knot.knotc(&["zone-reload", "static.example."]);
    assert!(out.contains("OK"), "{out}");
    until_true(
        "geosteer to serve the reloaded zone",
        Duration::from_secs(5),
        || a_records(gs, "www.static.example") == ["192.0.2.81"],
    );
    assert_eq!(soa_serial(gs, "static.example"), Some(2));
    let ixfr = support::http::metric(
        ([127, 0, 0, 1], http).into(),
        "geosteer_secondary_refresh_total{result=\"ixfr\"}",
    );
    assert!(ixfr >= 1.0, "no IXFR counted: {ixfr}");
    assert_eq!(a_records(gs, "cdn.static.example"), ["198.51.100.1"]);

    // A NOTIFY signed with another key is refused.
    let other = data_encoding::BASE64.decode(OTHER.as_bytes()).unwrap();
    let key = std::sync::Arc::new(
        geosteer::TsigKey::new("xfr-key", geosteer::TsigAlgorithm::HmacSha256, &other).unwrap(),
    );
    let mut n = raw_query(0x6666, 4 << 11, [1, 0, 0, 0], "static.example", 6, &[]);
    geosteer::TsigSigner::request(key).sign_vec(&mut n, now_secs());
    let r = udp_raw(gs, &n).expect("an answer");
    assert_eq!(r[3] & 0x0F, 9, "NOTAUTH (BADSIG)");

    // The primary gone and geosteer restarted: the copy on disk serves.
    drop(knot);
    app.shutdown();
    let _app = AppServer::load(&fx.config_path());
    assert_eq!(a_records(gs, "www.static.example"), ["192.0.2.81"]);
    assert!(Path::new(&copy).exists());
}

/// A signed zone transferred to Knot carries what a secondary needs to
/// serve it signed on its own: the RRSIGs of every RRset (the steered
/// defaults' too) and an NSEC chain. delv, trusting our DS, validates
/// Knot's static, steered, wildcard and negative answers.
#[test]
fn knot_serves_our_signed_zone_and_delv_validates_it() {
    if !need_tools(&["knotd", "knotc", "delv"]) {
        return;
    }
    let (gport, kport) = (free_port(), free_port());
    let cfg = format!(
        "{}dnssec: {{ keys: keys }}\ntransfer:\n  allow: [{{ net: 127.0.0.1/32, tsig: xfr-key }}]\n  notify: [\"127.0.0.1:{kport}\"]\n",
        tsig_cfg()
    );
    let fx = Fixture::custom("", &format!("listen: [127.0.0.1:{gport}]\n"), &cfg, |z| z);
    let keys = fx.dir.path().join("keys");
    std::fs::create_dir(&keys).unwrap();
    support::keys::keygen(&keys, &["--ksk"]);
    support::keys::keygen(&keys, &[]);
    let _app = AppServer::load(&fx.config_path());
    let knot = Knot::start_on(
        kport,
        &[],
        &knot_secondary_conf(gport, "cdn.example."),
        "cdn.example.",
    );
    // The zone as Knot has it: signatures and the chain.
    let axfr = Command::new(tool("kdig"))
        .args([
            "@127.0.0.1",
            "-p",
            &kport.to_string(),
            "cdn.example",
            "AXFR",
        ])
        .output()
        .unwrap();
    let axfr = String::from_utf8_lossy(&axfr.stdout).into_owned();
    for want in [
        "RRSIG\tSOA",
        "RRSIG\tA",
        "RRSIG\tDNSKEY",
        "\tNSEC\t",
        "RRSIG\tNSEC",
        "RRSIG\tHTTPS",
    ] {
        assert!(axfr.contains(want), "no {want} at Knot:\n{axfr}");
    }
    // No signature over the NS at a cut or its glue.
    assert!(
        !axfr
            .lines()
            .any(|l| l.starts_with("sub.cdn.example.") && l.contains("RRSIG\tNS ")),
        "{axfr}"
    );
    let anchor_file = support::keys::delv_anchor(&support::keys::ds(&keys), fx.dir.path());
    for (q, t, want) in [
        ("static.cdn.example", "A", "198.51.100.10"),
        ("www.cdn.example", "A", "192.0.2.10"),
        ("www.cdn.example", "HTTPS", "ipv4hint"),
        ("foo.wild.cdn.example", "A", "198.51.100.20"),
        ("nope.cdn.example", "A", "NXDOMAIN"),
        ("static.cdn.example", "MX", "NXRRSET"),
    ] {
        let out = Command::new(tool("delv"))
            .args(["@127.0.0.1", "-p", &kport.to_string(), "-a"])
            .arg(&anchor_file)
            .args(["+root=cdn.example", q, t])
            .output()
            .unwrap();
        let out = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            out.contains("; fully validated")
                || out.contains("; negative response, fully validated"),
            "delv via Knot {q} {t}:\n{out}\n{}",
            knot.log()
        );
        assert!(
            out.contains(want),
            "delv via Knot {q} {t}: no {want}:\n{out}"
        );
    }
}

/// Seconds since the Unix epoch.
fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A loopback relay in front of a primary, UDP and TCP on one port, that
/// can cut TCP answers short (half the first message, then close): the
/// broken transfer a secondary must survive; or be down (nothing
/// forwarded, connections closed at once): a primary out of reach.
struct Relay {
    port: u16,
    cut: Arc<AtomicBool>,
    down: Arc<AtomicBool>,
    /// TCP connections cut so far.
    cuts: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

impl Relay {
    fn start(to: SocketAddr) -> Relay {
        let (udp, tcp) = loop {
            let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
            let port = udp.local_addr().unwrap().port();
            if let Ok(tcp) = TcpListener::bind(("127.0.0.1", port)) {
                break (udp, tcp);
            }
        };
        let port = tcp.local_addr().unwrap().port();
        let relay = Relay {
            port,
            cut: Arc::default(),
            down: Arc::default(),
            cuts: Arc::default(),
            stop: Arc::default(),
        };
        let (stop, down) = (relay.stop.clone(), relay.down.clone());
        std::thread::spawn(move || {
            let mut buf = [0u8; 65535];
            while let Ok((n, from)) = udp.recv_from(&mut buf) {
                if stop.load(Ordering::Acquire) {
                    return;
                }
                if down.load(Ordering::Acquire) {
                    continue;
                }
                let up = UdpSocket::bind("127.0.0.1:0").unwrap();
                up.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
                let _ = up.send_to(&buf[..n], to);
                let mut answer = [0u8; 65535];
                if let Ok(m) = up.recv(&mut answer) {
                    let _ = udp.send_to(&answer[..m], from);
                }
            }
        });
        let (stop, cut, cuts) = (relay.stop.clone(), relay.cut.clone(), relay.cuts.clone());
        let down = relay.down.clone();
        std::thread::spawn(move || {
            for client in tcp.incoming() {
                if stop.load(Ordering::Acquire) {
                    return;
                }
                if down.load(Ordering::Acquire) {
                    continue;
                }
                let (Ok(mut client), Ok(mut up)) = (client, TcpStream::connect(to)) else {
                    continue;
                };
                let (cut, cuts) = (cut.load(Ordering::Acquire), cuts.clone());
                let (mut c2, mut up2) = (client.try_clone().unwrap(), up.try_clone().unwrap());
                std::thread::spawn(move || std::io::copy(&mut c2, &mut up2));
                std::thread::spawn(move || {
                    if !cut {
                        let _ = std::io::copy(&mut up, &mut client);
                        return;
                    }
                    let mut len = [0u8; 2];
                    if up.read_exact(&mut len).is_ok() {
                        let mut half = vec![0u8; usize::from(u16::from_be_bytes(len)) / 2];
                        let _ = up.read_exact(&mut half);
                        let _ = client.write_all(&len);
                        let _ = client.write_all(&half);
                    }
                    let _ = client.shutdown(std::net::Shutdown::Both);
                    let _ = up.shutdown(std::net::Shutdown::Both);
                    cuts.fetch_add(1, Ordering::AcqRel);
                });
            }
        });
        relay
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        // Wake both loops so they see `stop`.
        self.stop.store(true, Ordering::Release);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Ok(u) = UdpSocket::bind("127.0.0.1:0") {
            let _ = u.send_to(b"stop", ("127.0.0.1", self.port));
        }
    }
}

#[test]
fn a_broken_transfer_keeps_the_last_good_copy_and_notify_brings_the_next() {
    if !need_tools(&["knotd", "knotc"]) {
        return;
    }
    let (gport, kport, http) = (free_port(), free_port(), free_port());
    // REFRESH and RETRY an hour: only a NOTIFY makes geosteer look again.
    let zone_v1 = "$TTL 300\n@ SOA ns1 hostmaster 1 3600 3600 86400 60\n@ NS ns1\nns1 A 192.0.2.53\nwww A 192.0.2.80\n";
    let knot_conf = format!(
        "{}remote:\n  - id: geosteer\n    address: 127.0.0.1@{gport}\n    key: xfr-key\n\
         acl:\n  - id: to-geosteer\n    address: 127.0.0.1\n    key: xfr-key\n    action: transfer\n\
         template:\n  - id: default\n    storage: \"{{zones}}\"\n    file: \"%s.zone\"\n    zonefile-load: difference\n    journal-content: changes\n    zonefile-sync: -1\n\
         zone:\n  - domain: broken.example.\n    notify: geosteer\n    acl: to-geosteer\n",
        knot_key(SECRET)
    );
    let knot = Knot::start_on(
        kport,
        &[("broken.example.zone", zone_v1)],
        &knot_conf,
        "broken.example.",
    );
    let relay = Relay::start(([127, 0, 0, 1], kport).into());
    let cfg = format!(
        "{}http: 127.0.0.1:{http}\nsecondary:\n  broken.example: {{ primaries: [\"127.0.0.1:{}\"], tsig: xfr-key }}\n",
        tsig_cfg(),
        relay.port
    );
    let fx = Fixture::custom("", &format!("listen: [127.0.0.1:{gport}]\n"), &cfg, |z| z);
    let _app = AppServer::load(&fx.config_path());
    let gs: SocketAddr = ([127, 0, 0, 1], gport).into();
    let web: SocketAddr = ([127, 0, 0, 1], http).into();
    until_true("the first transfer", Duration::from_secs(10), || {
        soa_serial(gs, "broken.example") == Some(1)
    });
    let copy = fx.dir.path().join("zones/broken.example.zone");
    let failed =
        || support::http::metric(web, "geosteer_secondary_refresh_total{result=\"failed\"}");
    let failed_before = failed();

    // Serial 2 on Knot, its NOTIFY reaches geosteer, and both the IXFR
    // and the AXFR it falls back to are cut halfway.
    relay.cut.store(true, Ordering::Release);
    let zone_v2 = zone_v1
        .replace("hostmaster 1 ", "hostmaster 2 ")
        .replace("192.0.2.80", "192.0.2.81");
    std::fs::write(knot.zones().join("broken.example.zone"), &zone_v2).unwrap();
    assert!(
        knot.knotc(&["zone-reload", "broken.example."])
            .contains("OK")
    );
    until_true("IXFR and AXFR cut", Duration::from_secs(10), || {
        relay.cuts.load(Ordering::Acquire) >= 2
    });
    until_true("the failure counted", Duration::from_secs(5), || {
        failed() > failed_before
    });
    assert!(
        holds_for(Duration::from_secs(1), || {
            soa_serial(gs, "broken.example") == Some(1)
                && a_records(gs, "www.broken.example") == ["192.0.2.80"]
        }),
        "the last good copy stopped serving"
    );
    let on_disk = std::fs::read_to_string(&copy).unwrap();
    assert!(on_disk.contains("serial 1,"), "{on_disk}");
    let gauge =
        |name: &str| support::http::metric(web, &format!("{name}{{zone=\"broken.example.\"}}"));
    assert_eq!(gauge("geosteer_secondary_serial"), 1.0);
    // EXPIRE counts from the last good check: the first transfer.
    let expires = gauge("geosteer_secondary_expires_timestamp_seconds");
    let ok = gauge("geosteer_secondary_last_ok_timestamp_seconds");
    assert_eq!(expires - ok, 86400.0);
    assert!((now_secs() as f64 - ok).abs() < 60.0, "{ok}");

    // The network mended: the next NOTIFY brings serial 2 in.
    relay.cut.store(false, Ordering::Release);
    let t0 = Instant::now();
    assert!(
        knot.knotc(&["zone-notify", "broken.example."])
            .contains("OK")
    );
    until_true("serial 2 after NOTIFY", Duration::from_secs(5), || {
        a_records(gs, "www.broken.example") == ["192.0.2.81"]
    });
    println!(
        "NOTIFY to the new copy serving: {} ms",
        t0.elapsed().as_millis()
    );
    assert_eq!(soa_serial(gs, "broken.example"), Some(2));
    assert!(
        std::fs::read_to_string(&copy)
            .unwrap()
            .contains("serial 2,")
    );
    until_true("the serial gauge", Duration::from_secs(5), || {
        gauge("geosteer_secondary_serial") == 2.0
    });
}

/// The README's AXFR line, run as written (but on a free port) against
/// the committed demo: `geosteer.yaml` with its demo TSIG key, `zones/`
/// and `geodb/`, prints what the README says it prints.
#[test]
fn the_readme_axfr_line_works_on_the_committed_demo() {
    if !need_tools(&["dig", "grep", "sh"]) {
        return;
    }
    let repo = support::repo();
    let readme = std::fs::read_to_string(repo.join("README.md")).unwrap();
    let lines: Vec<&str> = readme.lines().collect();
    let at = lines
        .iter()
        .position(|l| l.starts_with("$ dig @127.0.0.1 -p 5300 ") && l.contains(" AXFR -y "))
        .expect("an AXFR line in the README");
    let expected: Vec<&str> = lines[at + 1..]
        .iter()
        .take_while(|l| !l.starts_with("```") && !l.starts_with('$'))
        .copied()
        .collect();
    assert!(!expected.is_empty());

    let (port, http) = (free_port(), free_port());
    let dir = tempfile::tempdir().unwrap();
    let cfg = std::fs::read_to_string(repo.join("geosteer.yaml"))
        .unwrap()
        .replace("127.0.0.1:5300", &format!("127.0.0.1:{port}"))
        .replace("127.0.0.1:8053", &format!("127.0.0.1:{http}"))
        .replace(
            "zones: zones",
            &format!("zones: {}", repo.join("zones").display()),
        )
        .replace(
            "geodb: geodb/",
            &format!("geodb: {}/", repo.join("geodb").display()),
        );
    let path = dir.path().join("geosteer.yaml");
    std::fs::write(&path, cfg).unwrap();
    let _app = AppServer::load(&path);
    let cmd = lines[at]
        .trim_start_matches("$ ")
        .replace("-p 5300", &format!("-p {port}"));
    let out = Command::new(tool("sh"))
        .args(["-c", &cmd])
        .output()
        .unwrap();
    let got = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        got.lines().collect::<Vec<_>>(),
        expected,
        "{cmd}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// SOA EXPIRE honoured: with the primary out of reach for longer than
/// EXPIRE, the copy is set aside (`<zone>.zone.expired`) and the zone is
/// no longer answered from it; when the primary is back, a new transfer
/// serves it again.
#[test]
fn a_copy_expires_when_the_primary_stays_away_and_comes_back_with_it() {
    if !need_tools(&["knotd", "knotc"]) {
        return;
    }
    let (gport, kport) = (free_port(), free_port());
    // REFRESH 1 s, RETRY 1 s, EXPIRE 4 s.
    let zone =
        "$TTL 300\n@ SOA ns1 hostmaster 7 1 1 4 60\n@ NS ns1\nns1 A 192.0.2.53\nwww A 192.0.2.80\n";
    let knot_conf = format!(
        "{}acl:\n  - id: to-geosteer\n    address: 127.0.0.1\n    key: xfr-key\n    action: transfer\n\
         template:\n  - id: default\n    storage: \"{{zones}}\"\n    file: \"%s.zone\"\n\
         zone:\n  - domain: static.example.\n    acl: to-geosteer\n",
        knot_key(SECRET)
    );
    let _knot = Knot::start_on(
        kport,
        &[("static.example.zone", zone)],
        &knot_conf,
        "static.example.",
    );
    let relay = Relay::start(([127, 0, 0, 1], kport).into());
    let cfg = format!(
        "{}secondary:\n  static.example: {{ primaries: [\"127.0.0.1:{}\"], tsig: xfr-key }}\n",
        tsig_cfg(),
        relay.port
    );
    let fx = Fixture::custom("", &format!("listen: [127.0.0.1:{gport}]\n"), &cfg, |z| z);
    let _app = AppServer::load(&fx.config_path());
    let gs: SocketAddr = ([127, 0, 0, 1], gport).into();
    until_true("the first transfer", Duration::from_secs(10), || {
        soa_serial(gs, "static.example") == Some(7)
    });
    let copy = fx.dir.path().join("zones/static.example.zone");
    let expired = fx.dir.path().join("zones/static.example.zone.expired");

    relay.down.store(true, Ordering::Release);
    let t0 = Instant::now();
    until_true("the zone to expire", Duration::from_secs(20), || {
        a_records(gs, "www.static.example").is_empty()
    });
    let took = t0.elapsed();
    assert!(
        took >= Duration::from_secs(3),
        "expired after {took:?}, before EXPIRE"
    );
    assert!(expired.exists() && !copy.exists());
    let opt = support::dns::opt_rr(1232, 0, 0, 0, &[]);
    let q = raw_query(0x7777, 0, [1, 0, 0, 1], "www.static.example", 1, &opt);
    let r = udp_raw(gs, &q).expect("an answer");
    assert_eq!(r[3] & 0x0F, 2, "an expired zone answers SERVFAIL");
    // RFC 8914 EDE 14, Not Ready: the option's code after its length.
    assert!(
        r.windows(6).any(|w| w == [0, 15, 0, 2, 0, 14]),
        "no EDE 14: {r:?}"
    );

    relay.down.store(false, Ordering::Release);
    until_true("a new copy", Duration::from_secs(20), || {
        a_records(gs, "www.static.example") == ["192.0.2.80"]
    });
    assert!(copy.exists());
}
