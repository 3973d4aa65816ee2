//! Steering by measured RTT, bias, cost and idle capacity, and partner CDNs
//! (issue 11): table tests (client or ECS prefix → expected edges and
//! scope) for every rule, in-process and over real UDP and TCP, on a
//! database built with `geosteer::build_geodb` from tests/fixtures/rtt/geo.yaml; the
//! capacity share test; partner health and `all_down`; bad RTT files.
//!
//! The fixture's RTT file (tests/fixtures/rtt/zones/steer.example.rtt.csv)
//! has prefix rows narrower (81.2.1.0/24 in London's /16) and wider
//! (24.0.0.0/11 around New York's /12) than the GeoIP networks, ASN,
//! country and continent rows, and a row below `min_samples`.

use crate::support;

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use geosteer::AlwaysUp;
use geosteer::Schema;
use geosteer::ServerConfig;
use geosteer::Snapshot;
use geosteer::Transport;
use geosteer::{AdminState, Registry};
use hickory_proto::rr::RecordType;
use support::dns::{tcp_raw, udp_exchange, udp_raw};
use support::server::{AppServer, Server};
use support::steer::{self, Db, Reply};

const A: RecordType = RecordType::A;
const AAAA: RecordType = RecordType::AAAA;

/// One table row: host, type, client (`ecs:<prefix>` or `src:<ip>`),
/// expected answer (edges in order, `CNAME <target>`, `SERVFAIL`) and scope.
type Row = (
    &'static str,
    RecordType,
    &'static str,
    &'static str,
    Option<u8>,
);

const TABLE: &[Row] = &[
    // --- RTT prefix narrower than the GeoIP network: fastest first; the
    // scope is the RTT prefix.
    ("www", A, "ecs:81.2.1.0/24", "fra", Some(24)),
    ("www", A, "src:81.2.1.7", "fra", None),
    ("two", A, "ecs:81.2.1.0/24", "fra lhr", Some(24)),
    // Outside that /24, London's ASN row decides (cdg), then distance; the
    // GeoIP /16 is narrowed so it never covers the /24.
    ("www", A, "ecs:81.2.128.0/24", "cdg", Some(17)),
    ("www", A, "ecs:81.2.2.0/24", "cdg", Some(23)),
    ("www", A, "ecs:81.2.0.0/16", "cdg", Some(24)),
    ("two", A, "ecs:81.2.128.0/24", "cdg lhr", Some(17)),
    // --- RTT prefix wider than the GeoIP network: the GeoIP network's
    // scope; where GeoIP knows nothing, the source prefix.
    ("www", A, "ecs:24.1.2.0/24", "lhr", Some(12)),
    ("www", A, "ecs:24.20.0.0/16", "lhr", Some(16)),
    // --- Rows below min_samples are ignored: distance order (fra).
    ("www", A, "ecs:85.10.200.0/24", "fra", Some(18)),
    // --- Country and continent keys.
    ("www", A, "ecs:126.5.0.0/16", "syd", Some(8)),
    ("two", A, "ecs:126.5.0.0/16", "syd nrt", Some(8)),
    ("www", A, "ecs:1.121.0.0/24", "lhr", Some(13)),
    // --- No RTT for the client: distance as before.
    ("www", A, "ecs:90.84.3.0/24", "cdg", Some(16)),
    ("www", A, "ecs:203.0.113.0/24", "lhr", Some(24)),
    // --- IPv6 prefix row, and a client beside it.
    ("www", AAAA, "ecs:2a02:c7c:1::/48", "fra", Some(48)),
    ("www", AAAA, "ecs:2a02:c7c:2::/48", "lhr", Some(47)),
    // --- bias 99 pulls Reading's clients to Frankfurt (6.8 "km" < 37);
    // an RTT row still beats any distance.
    ("biased", A, "ecs:5.1.0.0/24", "frab", Some(12)),
    ("biased", A, "ecs:90.84.3.0/24", "frab", Some(16)),
    ("biased", A, "ecs:81.2.1.0/24", "lhr", Some(24)),
    // --- cost_margin_km 800: London's nearest is lhr, cheap (Paris, cost
    // 0.2) is within the margin and wins. RTT order uses cost_margin_ms.
    ("cost", A, "ecs:81.2.128.0/24", "cheap", Some(17)),
    ("cost", A, "ecs:24.1.2.0/24", "lhr", Some(12)),
    ("costms", A, "ecs:81.2.1.0/24", "cheap", Some(24)),
    ("costms", A, "ecs:81.2.128.0/24", "lhr", Some(17)),
    // --- Partners: ranked by RTT when rows have them, else after every
    // located edge.
    (
        "multi",
        A,
        "ecs:81.2.1.0/24",
        "CNAME www.cdn.example.edgekey.example.",
        Some(24),
    ),
    (
        "multi",
        AAAA,
        "ecs:81.2.1.0/24",
        "CNAME www.cdn.example.edgekey.example.",
        Some(24),
    ),
    ("multi", A, "ecs:81.2.128.0/24", "lhr", Some(17)),
    ("partner-last", A, "ecs:81.2.128.0/24", "lhr", Some(17)),
    ("partner-last", A, "ecs:203.0.113.0/24", "lhr", Some(24)),
];

/// Splits a row's client into (packet source, ECS).
fn client(c: &str) -> (IpAddr, Option<&str>) {
    let loopback: IpAddr = "127.0.0.1".parse().unwrap();
    match c.split_once(':') {
        Some(("ecs", e)) => (loopback, Some(e)),
        Some(("src", s)) => (s.parse().unwrap(), None),
        _ => (loopback, None),
    }
}

fn ask(snap: &Snapshot, host: &str, qtype: RecordType, who: &str) -> Reply {
    let (src, ecs) = client(who);
    let q = steer::query(host, qtype, ecs);
    let bytes = steer::respond(snap, &q, src, Transport::Udp).expect("an answer");
    steer::parse(snap, &bytes)
}

fn check(row: &Row, got: &Reply, how: &str) -> Result<(), String> {
    let (host, qtype, who, want, scope) = *row;
    let answer: Vec<String> = match want {
        "SERVFAIL" => vec![],
        w if w.starts_with("CNAME ") => w.split(" + ").map(str::to_owned).collect(),
        w => w.split(' ').map(str::to_owned).collect(),
    };
    let rcode = if want == "SERVFAIL" {
        "Server Failure"
    } else {
        "No Error"
    };
    if got.rcode != rcode || got.answer != answer || got.scope != scope {
        return Err(format!(
            "{how}: {host} {qtype} from {who}: want {answer:?} scope {scope:?} ({rcode}), got {got:?}"
        ));
    }
    Ok(())
}

fn run(snap: &Snapshot, rows: &[Row], how: &str) {
    let failures: Vec<String> = rows
        .iter()
        .filter_map(|r| check(r, &ask(snap, r.0, r.1, r.2), how).err())
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn table_in_process_udp_tcp() {
    let snap = steer::snapshot_with(Db::Rtt, &AlwaysUp);
    run(&snap, TABLE, "in-process");
    // The same over the network, ECS rows only (the source is loopback).
    let server = Server::with_snapshot(
        &steer::config(Db::Rtt),
        steer::snapshot_with(Db::Rtt, &AlwaysUp),
    );
    let mut failures = Vec::new();
    for r in TABLE.iter().filter(|r| r.2.starts_with("ecs:")) {
        let q = steer::query(r.0, r.1, client(r.2).1);
        for (how, reply) in [
            ("UDP", udp_raw(server.udp, &q)),
            ("TCP", tcp_raw(server.tcp, &q)),
        ] {
            let reply = steer::parse(&snap, &reply.expect("a reply"));
            failures.extend(check(r, &reply, how).err());
        }
    }
    drop(server);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Health applies as without RTT: down skipped, overloaded behind every up
/// edge; a partner takes every client when no own edge can serve, and
/// `all_down` decides when the partners are down too.
#[test]
fn health_and_partners() {
    let reg = Registry::new();
    let snap = steer::snapshot_with(Db::Rtt, &reg);
    let set = |edge: &str, a: AdminState| reg.set_admin(None, edge, a).unwrap();
    reg.feed_load(None, "fra", 0.95, Duration::from_secs(60))
        .unwrap();
    run(
        &snap,
        &[
            ("www", A, "ecs:81.2.1.0/24", "lhr", Some(24)),
            ("two", A, "ecs:81.2.1.0/24", "lhr cdg", Some(24)),
        ],
        "fra overloaded",
    );
    reg.feed_load(None, "fra", 0.1, Duration::from_secs(60))
        .unwrap();
    set("lhr", AdminState::Down);
    run(
        &snap,
        &[
            ("multi", A, "ecs:81.2.128.0/24", "fra", Some(17)),
            (
                "chain",
                A,
                "ecs:81.2.128.0/24",
                "CNAME backup.steer.example. + 198.51.100.77",
                // One edge can serve: nothing about the client decided.
                Some(0),
            ),
        ],
        "lhr down",
    );
    set("fra", AdminState::Down);
    run(
        &snap,
        &[(
            "multi",
            A,
            "ecs:81.2.128.0/24",
            "CNAME www.cdn.example.edgekey.example.",
            Some(0),
        )],
        "own edges down",
    );
    set("akamai", AdminState::Down);
    run(
        &snap,
        &[("multi", A, "ecs:81.2.128.0/24", "SERVFAIL", Some(0))],
        "partners down too",
    );
}

/// Shares of `host`'s answers over `n` ECS /24s in 10.0.0.0/8 (one RTT
/// prefix, so every subnet ranks the same edges).
fn shares(snap: &Snapshot, host: &str, n: u32) -> std::collections::HashMap<String, u32> {
    let mut count = std::collections::HashMap::new();
    for i in 0..n {
        let ecs = format!("10.{}.{}.0/24", i / 256, i % 256);
        let q = steer::query(host, A, Some(&ecs));
        let r =
            steer::respond(snap, &q, "127.0.0.1".parse().unwrap(), Transport::Udp).expect("answer");
        let r = steer::parse(snap, &r);
        *count.entry(r.answer[0].clone()).or_insert(0) += 1;
    }
    count
}

/// Two edges in one spread set, equal capacity, loads 0.2 and 0.6: the idle
/// one takes 2/3 of the subnets (±5%), and a subnet keeps its edge while
/// loads are steady. Without loads the split is even.
#[test]
fn capacity_shares_follow_idle_capacity() {
    const N: u32 = 4000;
    let reg = Registry::new();
    let snap = steer::snapshot_with(Db::Rtt, &reg);
    let even = shares(&snap, "shares", N);
    let s1 = f64::from(even["s1"]) / f64::from(N);
    assert!((s1 - 0.5).abs() < 0.05, "no load: s1 took {s1}");
    reg.feed_load(None, "s1", 0.2, Duration::from_secs(600))
        .unwrap();
    reg.feed_load(None, "s2", 0.6, Duration::from_secs(600))
        .unwrap();
    let loaded = shares(&snap, "shares", N);
    let s1 = f64::from(loaded["s1"]) / f64::from(N);
    assert!(
        (s1 - 2.0 / 3.0).abs() < 0.05,
        "loads 0.2/0.6: s1 took {s1} ({loaded:?})"
    );
    assert_eq!(
        shares(&snap, "shares", N),
        loaded,
        "stable while loads hold"
    );
    // The shares are by /24: a scope of at least 24 tells resolvers so.
    run(
        &snap,
        &[("shares", A, "ecs:10.1.2.0/24", loaded_edge(&snap), Some(24))],
        "scope",
    );
}

fn loaded_edge(snap: &Snapshot) -> &'static str {
    match ask(snap, "shares", A, "ecs:10.1.2.0/24").answer[0].as_str() {
        "s1" => "s1",
        _ => "s2",
    }
}

/// `partner_share: 0.3` sends about 30% of subnets to the partner while the
/// own edge is up; all of them once it is down.
#[test]
fn partner_share_splits_by_subnet() {
    const N: u32 = 3000;
    let reg = Registry::new();
    let snap = steer::snapshot_with(Db::Rtt, &reg);
    let got = shares(&snap, "split", N);
    let partner = f64::from(got["CNAME www.cdn.example.edgekey.example."]) / f64::from(N);
    assert!((partner - 0.3).abs() < 0.04, "partner took {partner}");
    reg.set_admin(None, "lhr", AdminState::Down).unwrap();
    let got = shares(&snap, "split", 500);
    assert_eq!(got.len(), 1, "{got:?}");
    reg.set_admin(None, "lhr", AdminState::Auto).unwrap();
    reg.set_admin(None, "akamai", AdminState::Down).unwrap();
    let got = shares(&snap, "split", 500);
    assert_eq!(got.keys().collect::<Vec<_>>(), ["lhr"], "{got:?}");
}

/// A copy of the fixture zones in a temp dir, with `rtt` as the RTT file.
fn zones_with(rtt: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for f in ["steer.example.zone", "steer.example.pools.yaml"] {
        std::fs::copy(steer::rtt_dir().join("zones").join(f), dir.path().join(f)).unwrap();
    }
    std::fs::write(dir.path().join("steer.example.rtt.csv"), rtt).unwrap();
    dir
}

/// A bad RTT file is rejected whole with file:line: reason.
#[test]
fn bad_rtt_files_are_rejected_with_file_and_line() {
    let head = "client,edge,rtt_ms,samples\n81.2.1.0/24,fra,8,500\n";
    for (body, line, reason) in [
        (
            "81.2.1.0/24,nowhere,8,500\n",
            3,
            "edge \"nowhere\": unknown edge",
        ),
        (
            "81.2.1.0/33,fra,8,500\n",
            3,
            "client \"81.2.1.0/33\": not a prefix",
        ),
        (
            "81.2.3.0/24,fra,-4,500\n",
            3,
            "rtt_ms \"-4\": must be a number >= 0",
        ),
    ] {
        let dir = zones_with(&format!("{head}{body}"));
        let e = geosteer::build_snapshot(&steer::config_in(dir.path(), Db::Rtt), &AlwaysUp, 1)
            .expect_err("rejected")
            .to_string();
        let want = format!(
            "{}:{line}: {reason}",
            dir.path().join("steer.example.rtt.csv").display()
        );
        assert!(e.starts_with(&want), "got {e:?}, want {want:?}");
    }
    let dir = zones_with("81.2.1.0/24,fra,8,500\n");
    let e = geosteer::build_snapshot(&steer::config_in(dir.path(), Db::Rtt), &AlwaysUp, 1)
        .expect_err("rejected")
        .to_string();
    assert!(e.contains("steer.example.rtt.csv:1: "), "{e}");
    assert!(e.contains("missing header"), "{e}");
}

/// `geosteer explain --json` shows every step: the RTT key and its rows,
/// bias, the cost margin, capacity shares, the partner split, and why.
#[test]
fn explain_shows_each_step() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("geosteer.yaml");
    std::fs::write(
        &cfg,
        format!(
            "zones: {}\ngeodb: {}\n",
            steer::rtt_dir().join("zones").display(),
            steer::geodb(Db::Rtt).display()
        ),
    )
    .unwrap();
    let explain = |name: &str, ecs: &str| -> serde_json::Value {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_geosteer"))
            .args(["explain", name, "--ecs", ecs, "--json", "--config"])
            .arg(&cfg)
            .output()
            .expect("run geosteer");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("JSON")
    };
    let v = explain("multi.steer.example", "81.2.1.0/24");
    let st = &v["steering"];
    assert_eq!(st["rtt"]["key"], "81.2.1.0/24", "{v:#}");
    assert_eq!(st["rtt"]["rows"][0]["edge"], "akamai", "{v:#}");
    assert_eq!(st["rtt"]["rows"][0]["rtt_ms"], 3.0, "{v:#}");
    assert_eq!(st["order"][0]["edge"], "akamai", "{v:#}");
    assert_eq!(st["order"][0]["by"], "rtt_ms", "{v:#}");
    assert_eq!(v["edges"], serde_json::json!(["akamai"]), "{v:#}");
    assert!(
        v["why"][0]
            .as_str()
            .unwrap()
            .starts_with("RTT key 81.2.1.0/24 matched"),
        "{v:#}"
    );

    let v = explain("biased.steer.example", "5.1.0.0/24");
    let order = v["steering"]["order"].as_array().unwrap();
    assert_eq!(order[0]["edge"], "frab", "{v:#}");
    assert_eq!(order[0]["bias"], 99, "{v:#}");
    assert!(v["why"].to_string().contains("bias 99 on frab"), "{v:#}");

    let v = explain("cost.steer.example", "81.2.128.0/24");
    assert_eq!(v["steering"]["cost_margin"]["margin"], 800.0, "{v:#}");
    assert_eq!(v["steering"]["cost_margin"]["order"][0], "cheap", "{v:#}");
    assert_eq!(v["steering"]["rtt"]["key"], "AS64501", "{v:#}");

    let v = explain("shares.steer.example", "10.1.2.0/24");
    let shares = &v["steering"]["shares"];
    assert_eq!(shares["edges"].as_array().unwrap().len(), 2, "{v:#}");
    assert_eq!(shares["edges"][0]["share"], 0.5, "{v:#}");
    assert_eq!(v["edges"][0], shares["chosen"], "{v:#}");

    let v = explain("split.steer.example", "81.2.128.0/24");
    let p = &v["steering"]["partner_share"];
    assert_eq!(p["share"], 0.3, "{v:#}");
    let to_partner = p["to_partner"].as_bool().unwrap();
    assert_eq!(
        v["edges"][0],
        if to_partner { "akamai" } else { "lhr" },
        "{v:#}"
    );
}

/// The fixture zones copied into a temp dir with a config, for a running
/// server whose RTT file the test edits.
struct Live {
    srv: AppServer,
    zones: PathBuf,
    _dir: tempfile::TempDir,
}

impl Live {
    fn start() -> Live {
        let dir = tempfile::tempdir().unwrap();
        let zones = dir.path().canonicalize().unwrap().join("zones");
        std::fs::create_dir_all(&zones).unwrap();
        for f in [
            "steer.example.zone",
            "steer.example.pools.yaml",
            "steer.example.rtt.csv",
        ] {
            std::fs::copy(steer::rtt_dir().join("zones").join(f), zones.join(f)).unwrap();
        }
        let cfg_path = dir.path().join("geosteer.yaml");
        std::fs::write(
            &cfg_path,
            format!(
                "listen: [127.0.0.1:0]\nzones: zones\ngeodb: {}\nworkers: 1\n",
                steer::geodb(Db::Rtt).display()
            ),
        )
        .unwrap();
        Live {
            srv: AppServer::load(&cfg_path),
            zones,
            _dir: dir,
        }
    }

    fn app(&self) -> &geosteer::App {
        self.srv.app()
    }

    fn dns(&self) -> std::net::SocketAddr {
        self.srv.dns()
    }

    /// Replaces the RTT file the way a deploy does: write aside, rename over.
    fn put_rtt(&self, text: &str) {
        let p = self.zones.join("steer.example.rtt.csv");
        let tmp = self.zones.join(".steer.example.rtt.csv.tmp");
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(&tmp, &p).unwrap();
    }
}

/// The fixture's RTT file with London's /24 measured fastest on `fast`.
fn rtt_file(fast: &str) -> String {
    let text =
        std::fs::read_to_string(steer::rtt_dir().join("zones/steer.example.rtt.csv")).unwrap();
    let slow = if fast == "fra" { "lhr" } else { "fra" };
    text.replace("81.2.1.0/24,fra,8,", &format!("81.2.1.0/24,{fast},8,"))
        .replace("81.2.1.0/24,lhr,12,", &format!("81.2.1.0/24,{slow},12,"))
}

/// www from ECS 81.2.1.0/24 over UDP: the answer's edge name, "SERVFAIL",
/// or an error.
fn ask_udp(
    sock: &std::net::UdpSocket,
    server: std::net::SocketAddr,
    id: u16,
) -> Result<String, String> {
    let mut q = steer::query("www", A, Some("81.2.1.0/24"));
    q[0..2].copy_from_slice(&id.to_be_bytes());
    let raw = udp_exchange(sock, server, &q).ok_or("lost: no answer within 2 s")?;
    let m = hickory_proto::op::Message::from_vec(&raw).map_err(|e| e.to_string())?;
    if m.metadata.response_code != hickory_proto::op::ResponseCode::NoError {
        return Ok(m.metadata.response_code.to_string());
    }
    Ok(match m.answers.first().map(|r| &r.data) {
        Some(hickory_proto::rr::RData::A(a)) if a.0.to_string() == "192.0.2.20" => "fra".into(),
        Some(hickory_proto::rr::RData::A(a)) if a.0.to_string() == "192.0.2.10" => "lhr".into(),
        other => format!("{other:?}"),
    })
}

/// A client socket (`udp_exchange` sets its timeout).
fn udp_socket() -> std::net::UdpSocket {
    std::net::UdpSocket::bind("127.0.0.1:0").unwrap()
}

/// Polls until www answers `want` for the London /24.
fn wait_for(live: &Live, want: &str, within: Duration) {
    let sock = udp_socket();
    let start = std::time::Instant::now();
    let mut id = 1u16;
    loop {
        id = id.wrapping_add(1);
        if ask_udp(&sock, live.dns(), id).as_deref() == Ok(want) {
            return;
        }
        assert!(start.elapsed() < within, "answer did not become {want}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Reloading the RTT file under load: zero lost, zero SERVFAIL, both
/// versions seen; the file watcher picks edits up; a bad file is rejected
/// with file:line and the old answers stay.
#[test]
fn rtt_reload_under_load_and_bad_files() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    let live = Live::start();
    wait_for(&live, "fra", Duration::from_secs(5));
    // The watcher: an edit switches the answer.
    live.put_rtt(&rtt_file("lhr"));
    wait_for(&live, "lhr", Duration::from_secs(10));

    let stop = Arc::new(AtomicBool::new(false));
    let server = live.dns();
    let threads: Vec<_> = (0..3u16)
        .map(|t| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let sock = udp_socket();
                let mut id = t << 12;
                let mut seen = std::collections::HashMap::<String, u64>::new();
                while !stop.load(Ordering::Relaxed) {
                    id = id.wrapping_add(1);
                    let k = ask_udp(&sock, server, id).unwrap_or_else(|e| e);
                    *seen.entry(k).or_insert(0) += 1;
                }
                seen
            })
        })
        .collect();
    for i in 0..40 {
        live.put_rtt(&rtt_file(if i % 2 == 0 { "fra" } else { "lhr" }));
        live.app().reloader.reload("test").expect("good RTT file");
    }
    std::thread::sleep(Duration::from_millis(200));
    stop.store(true, Ordering::Relaxed);
    let mut seen = std::collections::HashMap::<String, u64>::new();
    for t in threads {
        for (k, v) in t.join().unwrap() {
            *seen.entry(k).or_insert(0) += v;
        }
    }
    eprintln!("answers during 40 RTT reloads: {seen:?}");
    let total: u64 = seen.values().sum();
    assert_eq!(
        seen.get("fra").copied().unwrap_or(0) + seen.get("lhr").copied().unwrap_or(0),
        total,
        "lost or SERVFAIL answers: {seen:?}"
    );
    assert!(
        seen.contains_key("fra") && seen.contains_key("lhr"),
        "{seen:?}"
    );
    assert!(total > 100, "too few queries to mean anything: {seen:?}");

    // The last reload put "lhr" fastest. Bad files keep it.
    let path = live.zones.join("steer.example.rtt.csv");
    let next = rtt_file("fra").lines().count() + 1;
    for (bad, want) in [
        (
            rtt_file("fra") + "81.2.9.0/24,nowhere,3,100\n",
            format!("{}:{next}: edge \"nowhere\": unknown edge", path.display()),
        ),
        (
            rtt_file("fra") + "81.2.9.0/24,fra,-3,100\n",
            format!(
                "{}:{next}: rtt_ms \"-3\": must be a number >= 0",
                path.display()
            ),
        ),
        (
            rtt_file("fra") + "81.2.9.0/99,fra,3,100\n",
            format!(
                "{}:{next}: client \"81.2.9.0/99\": not a prefix",
                path.display()
            ),
        ),
        (
            rtt_file("fra").replacen("client,edge,rtt_ms,samples\n", "", 1),
            format!("{}:1: ", path.display()),
        ),
    ] {
        live.put_rtt(&bad);
        let e = live
            .app()
            .reloader
            .reload("test")
            .expect_err("bad RTT file")
            .to_string();
        assert!(e.starts_with(&want), "got {e:?}, want {want:?}");
        assert_eq!(ask_udp(&udp_socket(), live.dns(), 9).as_deref(), Ok("lhr"));
    }
}

/// `geodb_asn:` adds a GeoLite2-ASN-format database's ASN to a main
/// database without ASN data, for `AS` RTT keys and `asn:` rules; the scope
/// is the narrower of the two databases' networks.
#[test]
fn geodb_asn_feeds_as_keys_and_asn_rules() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::write(
        root.join("asn.yaml"),
        "description: ASN test\nnetworks:\n  - { network: 85.10.200.0/21, asn: 3320 }\n",
    )
    .unwrap();
    geosteer::build_geodb(&root.join("asn.yaml"), &root.join("asn.mmdb"), Schema::Flat).unwrap();
    let zones = root.join("zones");
    std::fs::create_dir(&zones).unwrap();
    std::fs::copy(
        steer::rtt_dir().join("zones/steer.example.zone"),
        zones.join("steer.example.zone"),
    )
    .unwrap();
    let pools = std::fs::read_to_string(steer::rtt_dir().join("zones/steer.example.pools.yaml"))
        .unwrap()
        + "  asnrule: { rules: [ { asn: 3320, edges: [nrt] } ], edges: [lhr] }\n";
    std::fs::write(zones.join("steer.example.pools.yaml"), pools).unwrap();
    std::fs::write(
        zones.join("steer.example.rtt.csv"),
        "client,edge,rtt_ms,samples\nAS3320,syd,4,100\n",
    )
    .unwrap();
    let yaml = format!(
        "zones: zones\ngeodb: {}\ngeodb_asn: asn.mmdb\n",
        steer::geodb(Db::Rtt).display()
    );
    let cfg = ServerConfig::from_str(&yaml, &root.join("geosteer.yaml")).unwrap();
    let snap = geosteer::build_snapshot(&cfg, &AlwaysUp, 1).expect("snapshot");
    run(
        &snap,
        &[
            ("www", A, "ecs:85.10.200.0/24", "syd", Some(21)),
            ("www", A, "ecs:85.10.193.0/24", "fra", Some(21)),
            ("asnrule", A, "ecs:85.10.201.0/24", "nrt", Some(21)),
            ("asnrule", A, "ecs:85.10.193.0/24", "lhr", Some(21)),
            // Elsewhere the main database alone decides, as before.
            ("www", A, "ecs:126.5.0.0/16", "nrt", Some(8)),
            ("www", A, "ecs:90.84.3.0/24", "cdg", Some(16)),
        ],
        "geodb_asn",
    );
    // Without the main database the ASN one is refused.
    let cfg = ServerConfig::from_str("zones: zones\ngeodb_asn: asn.mmdb\n", &root.join("g.yaml"))
        .unwrap();
    let e = geosteer::build_snapshot(&cfg, &AlwaysUp, 1)
        .expect_err("refused")
        .to_string();
    assert!(e.contains("geodb_asn: needs geodb"), "{e}");
}

/// A reload does not parse an unchanged RTT file again (a 1M-row file takes
/// most of a second): the snapshot keeps the same table, even when the
/// pools file changed in a way the table does not depend on. Rewriting the
/// file, or changing what the table depends on in the pools file (an
/// edge's bias orders the rows), parses it again.
#[test]
fn unchanged_rtt_file_is_kept_across_reloads() {
    use std::sync::Arc;
    let dir = tempfile::tempdir().unwrap();
    let zones = dir.path().join("zones");
    std::fs::create_dir(&zones).unwrap();
    for f in [
        "steer.example.zone",
        "steer.example.pools.yaml",
        "steer.example.rtt.csv",
    ] {
        std::fs::copy(steer::rtt_dir().join("zones").join(f), zones.join(f)).unwrap();
    }
    let mut cfg = steer::config_in(&zones, Db::Rtt);
    cfg.watch = false;
    let registry = Arc::new(geosteer::Registry::new());
    let reloader = geosteer::Reloader::new(cfg, registry, None).unwrap();
    let build = || {
        reloader.reload("test").unwrap();
        let snap = reloader.shared().load_full();
        snap.zone_named("steer.example")
            .unwrap()
            .steering
            .rtt
            .clone()
    };
    let first = build();
    assert!(first.rows() > 0);
    let again = build();
    assert!(Arc::ptr_eq(&first, &again), "unchanged file parsed again");

    let pools = zones.join("steer.example.pools.yaml");
    let yaml = std::fs::read_to_string(&pools).unwrap();
    std::fs::write(&pools, format!("{yaml}# an edit the table does not read\n")).unwrap();
    let repooled = build();
    assert!(
        Arc::ptr_eq(&first, &repooled),
        "a pools edit parsed the unchanged RTT file again"
    );

    let csv = zones.join("steer.example.rtt.csv");
    let mut text = std::fs::read_to_string(&csv).unwrap();
    text.push_str("# an edit\n");
    std::fs::write(&csv, &text).unwrap();
    let edited = build();
    assert!(
        !Arc::ptr_eq(&again, &edited),
        "edited file not parsed again"
    );
    assert!(Arc::ptr_eq(&edited, &build()));

    let yaml = std::fs::read_to_string(&pools).unwrap();
    assert!(yaml.contains("bias: 99"));
    std::fs::write(&pools, yaml.replace("bias: 99", "bias: 50")).unwrap();
    let rebiased = build();
    assert!(
        !Arc::ptr_eq(&edited, &rebiased),
        "bias changed, rows not re-ordered"
    );
}
