//! Each zone loads, reloads and fails on its own (issue 29): a broken zone
//! among several is reported with file:line and answered SERVFAIL (as
//! Knot answers a zone that failed to load: no AA, EDE 24 "Invalid Data"),
//! the others are served; a broken edit keeps that zone's last good copy
//! while every other zone's edits apply; `geosteer check` still fails.

use crate::support;

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use support::dns::{Resp, raw_query, udp_raw};
use support::http::http;
use support::server::AppServer;
use support::wait::until_true;
use support::write_file;

const BIN: &str = env!("CARGO_BIN_EXE_geosteer");
const DEMO_DB: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/geodb/demo-city.mmdb");

/// A zone `name` whose `www` has address `a`, and a delegation `sub` (with
/// glue) when `with_sub`.
fn zone(a: Ipv4Addr, with_sub: bool) -> String {
    let mut z = format!(
        "$TTL 300\n@ SOA ns1 h 1 3600 600 86400 60\n@ NS ns1\nns1 A 127.0.0.1\nwww A {a}\n"
    );
    if with_sub {
        z.push_str("sub NS ns.sub\nns.sub A 192.0.2.53\n");
    }
    z
}

/// A zone file that fails at line 5.
const BROKEN: &str =
    "$TTL 300\n@ SOA ns1 h 1 3600 600 86400 60\n@ NS ns1\nns1 A 127.0.0.1\nwww A 999.0.0.1\n";

/// Steered `cdn` in `s.test`, its nearest edge at `a`.
fn pools(a: Ipv4Addr) -> String {
    format!(
        "edges:\n  near: {{ addresses: [{a}], location: [51.5, -0.1] }}\n  far: {{ addresses: [198.51.100.9], location: [40.7, -74.0] }}\n\
nets:\n  127.0.0.0/8: [51.5, -0.1]\nhosts:\n  cdn: {{ edges: [near, far] }}\n"
    )
}

const A1: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const A2: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);

/// `a.test` good, `b.test` broken, `p.test` good with a delegation to
/// `sub.p.test`, which we also serve and which is broken, `s.test` steered.
fn layout(dir: &Path, extra: &str) -> std::path::PathBuf {
    std::fs::create_dir_all(dir.join("geodb")).unwrap();
    std::fs::copy(DEMO_DB, dir.join("geodb/demo.mmdb")).unwrap();
    write_file(dir, "zones/a.test.zone", &zone(A1, false));
    write_file(dir, "zones/b.test.zone", BROKEN);
    write_file(dir, "zones/p.test.zone", &zone(A1, true));
    write_file(dir, "zones/sub.p.test.zone", BROKEN);
    write_file(dir, "zones/s.test.zone", &zone(A1, false));
    write_file(dir, "zones/s.test.pools.yaml", &pools(A1));
    write_file(
        dir,
        "geosteer.yaml",
        &format!(
            "listen: [127.0.0.1:0]\nzones: zones\ngeodb: geodb/demo.mmdb\nhttp: 127.0.0.1:0\nworkers: 1\n{extra}"
        ),
    )
}

/// One query with EDNS (so an EDE can come back).
fn ask(server: SocketAddr, name: &str, qtype: u16) -> Resp {
    let opt = support::dns::opt_rr(1232, 0, 0, 0, &[]);
    let q = raw_query(support::dns::next_id(), 0, [1, 0, 0, 1], name, qtype, &opt);
    let raw = udp_raw(server, &q).unwrap_or_else(|| panic!("no answer to {name}"));
    let msg = hickory_proto::op::Message::from_vec(&raw).unwrap();
    Resp { msg, raw }
}

/// The A records of an answer.
fn a_of(r: &Resp) -> Vec<Ipv4Addr> {
    r.msg
        .answers
        .iter()
        .filter_map(|r| match &r.data {
            hickory_proto::rr::RData::A(a) => Some(a.0),
            _ => None,
        })
        .collect()
}

/// EDE info-codes in the response's OPT (option 15).
fn ede_codes(r: &Resp) -> Vec<u16> {
    let raw = &r.raw;
    // The OPT RR is the last record: root name, type 41. Walk its options.
    let Some(at) = (0..raw.len().saturating_sub(11))
        .rev()
        .find(|&i| raw[i] == 0 && raw[i + 1..i + 3] == [0, 41])
    else {
        return Vec::new();
    };
    let rdlen = u16::from_be_bytes([raw[at + 9], raw[at + 10]]) as usize;
    let mut opts = &raw[at + 11..(at + 11 + rdlen).min(raw.len())];
    let mut codes = Vec::new();
    while opts.len() >= 4 {
        let code = u16::from_be_bytes([opts[0], opts[1]]);
        let len = u16::from_be_bytes([opts[2], opts[3]]) as usize;
        if code == 15 && len >= 2 {
            codes.push(u16::from_be_bytes([opts[4], opts[5]]));
        }
        opts = &opts[(4 + len).min(opts.len())..];
    }
    codes
}

/// SERVFAIL, not authoritative, EDE 24: what Knot 3.2 answers for a zone
/// that failed to load.
fn assert_unloaded(r: &Resp, what: &str) {
    assert_eq!(r.rcode(), 2, "{what}: SERVFAIL");
    assert!(!r.aa(), "{what}: no AA");
    assert!(r.msg.answers.is_empty(), "{what}: no answer records");
    assert_eq!(ede_codes(r), [24], "{what}: EDE 24 Invalid Data");
}

fn status(srv: &AppServer) -> serde_json::Value {
    serde_json::from_str(&http(srv.http(), "GET", "/api/status", "").1).unwrap()
}

fn zone_status<'a>(st: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    st["zones"]
        .as_array()
        .unwrap()
        .iter()
        .find(|z| z["name"] == name)
        .unwrap_or_else(|| panic!("{name} not in {st}"))
}

#[test]
fn start_up_serves_the_good_zones_and_servfails_the_broken_one() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().canonicalize().unwrap();
    let cfg = layout(&root, "");
    let srv = AppServer::load(&cfg);
    let dns = srv.dns();

    assert_eq!(a_of(&ask(dns, "www.a.test.", 1)), [A1]);
    assert_eq!(a_of(&ask(dns, "cdn.s.test.", 1)), [A1], "steering works");
    assert_unloaded(&ask(dns, "www.b.test.", 1), "name in a broken zone");
    assert_unloaded(&ask(dns, "b.test.", 6), "apex SOA of a broken zone");
    assert_unloaded(&ask(dns, "nx.b.test.", 1), "NXDOMAIN-to-be");
    // A broken child of a served parent: not the parent's referral.
    assert_unloaded(&ask(dns, "www.sub.p.test.", 1), "below a broken child");
    // DS at the child's apex is the parent's data (Knot answers it too).
    let ds = ask(dns, "sub.p.test.", 43);
    assert_eq!(ds.rcode(), 0, "DS from the parent");
    assert!(ds.aa());
    // Not ours at all: still REFUSED.
    assert_eq!(ask(dns, "www.other.test.", 1).rcode(), 5);

    // The status API says which zone failed, why, and that nothing serves it.
    let st = status(&srv);
    assert_eq!(st["last_reload"]["ok"], false, "{st}");
    let b = zone_status(&st, "b.test.");
    assert_eq!(b["loaded"], false, "{b}");
    let errs = b["load_errors"].as_array().unwrap();
    let want = format!("{}:5: ", root.join("zones/b.test.zone").display());
    assert!(
        errs.iter().any(|e| e.as_str().unwrap().starts_with(&want)),
        "{want} in {errs:?}"
    );
    assert_eq!(
        zone_status(&st, "a.test.")["load_errors"],
        serde_json::Value::Null
    );
    assert_eq!(zone_status(&st, "a.test.")["loaded"], true);

    // `geosteer check` still fails on it, naming file:line.
    let out = Command::new(BIN)
        .args(["check", "-c"])
        .arg(&cfg)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains(&want), "{stdout}");
    assert!(stdout.contains(&format!(
        "{}:5: ",
        root.join("zones/sub.p.test.zone").display()
    )));

    // Fixed on disk: it loads, and the others are untouched.
    write_file(&root, "zones/b.test.zone", &zone(A2, false));
    until_true("b.test. loads once fixed", Duration::from_secs(5), || {
        a_of(&ask(dns, "www.b.test.", 1)) == [A2]
    });
    assert_eq!(zone_status(&status(&srv), "b.test.")["loaded"], true);
}

#[test]
fn serve_binary_starts_and_logs_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().canonicalize().unwrap();
    let cfg = layout(&root, "");
    let port = support::free_port();
    let mut child = support::KillOnDrop(
        Command::new(BIN)
            .args(["serve", "-c"])
            .arg(&cfg)
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .env("RUST_LOG", "warn")
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let dns: SocketAddr = ([127, 0, 0, 1], port).into();
    until_true("serve answers", Duration::from_secs(20), || {
        let q = support::dns::wire_query(1, "www.a.test.", 1, None, None);
        udp_raw(dns, &q).is_some()
    });
    assert_eq!(a_of(&ask(dns, "www.a.test.", 1)), [A1]);
    assert_unloaded(&ask(dns, "www.b.test.", 1), "broken zone");
    // The log names the file and line; read what is there by now.
    unsafe { libc::kill(child.0.id() as i32, libc::SIGTERM) };
    let out = child.0.wait().map(|_| ()).and_then(|_| {
        use std::io::Read;
        let mut s = String::new();
        child.0.stderr.take().unwrap().read_to_string(&mut s)?;
        Ok(s)
    });
    let log = out.unwrap();
    let want = format!("{}:5: ", root.join("zones/b.test.zone").display());
    assert!(log.contains(&want), "{want} not in the log: {log}");
}

#[test]
fn a_broken_edit_keeps_that_zones_last_good_copy_and_others_apply() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().canonicalize().unwrap();
    let cfg = layout(&root, "");
    let srv = AppServer::load(&cfg);
    let dns = srv.dns();
    assert_eq!(a_of(&ask(dns, "www.a.test.", 1)), [A1]);

    // At once: a.test broken, p.test and s.test's pools edited (good).
    write_file(
        &root,
        "zones/a.test.zone",
        &format!("{}bad A 300.1.1.1\n", zone(A2, false)),
    );
    write_file(&root, "zones/p.test.zone", &zone(A2, true));
    write_file(&root, "zones/s.test.pools.yaml", &pools(A2));
    until_true("the good edits are served", Duration::from_secs(5), || {
        a_of(&ask(dns, "www.p.test.", 1)) == [A2] && a_of(&ask(dns, "cdn.s.test.", 1)) == [A2]
    });
    // a.test keeps its last good copy, whole.
    assert_eq!(a_of(&ask(dns, "www.a.test.", 1)), [A1]);
    let st = status(&srv);
    let a = zone_status(&st, "a.test.");
    assert_eq!(a["loaded"], true, "{a}");
    let errs = a["load_errors"].as_array().expect("a.test's errors");
    let want = format!("{}:6: ", root.join("zones/a.test.zone").display());
    assert!(
        errs.iter().any(|e| e.as_str().unwrap().starts_with(&want)),
        "{want} in {errs:?}"
    );
    let failure = st["last_reload"]["zones"]
        .as_array()
        .unwrap()
        .iter()
        .find(|z| z["zone_file"] == root.join("zones/a.test.zone").to_str().unwrap())
        .unwrap_or_else(|| panic!("a.test in {st}"))
        .clone();
    assert_eq!(failure["serving_last_good"], true, "{failure}");

    // An explicit reload reports it too, and exits non-zero from the CLI.
    let out = Command::new(BIN)
        .args(["reload", "--http", &srv.http().to_string()])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains(&want), "{stdout}");

    // Broken pools for the steered zone: its last good copy stays too,
    // while a.test, fixed, loads.
    write_file(&root, "zones/s.test.pools.yaml", "edges: {near: {}\n");
    write_file(&root, "zones/a.test.zone", &zone(A2, false));
    until_true("a.test. fixed", Duration::from_secs(5), || {
        a_of(&ask(dns, "www.a.test.", 1)) == [A2]
    });
    until_true("s.test.'s error reported", Duration::from_secs(5), || {
        zone_status(&status(&srv), "s.test.")["load_errors"].is_array()
    });
    assert_eq!(a_of(&ask(dns, "cdn.s.test.", 1)), [A2]);
    assert_eq!(
        zone_status(&status(&srv), "a.test.")["load_errors"],
        serde_json::Value::Null
    );
}
