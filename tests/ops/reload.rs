//! Hot reload end to end: real files in a temp dir, a real server (in
//! process, or the binary for SIGHUP), answers checked over UDP.
//!
//! Every trigger (file write, editor rename, directory symlink flip,
//! ConfigMap `..data` flip, SIGHUP, the API, `geosteer reload`) must switch
//! the answer within 1 s; every bad change must leave the old answer in
//! place and report `file:line: reason` the way `geosteer check` does.

use crate::support;

use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use support::dns::wire_query;
use support::http::http;
use support::server::{AppServer, MINIMAL_ZONE};
use support::{KillOnDrop, free_port, vm_rss_kib};

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::RData;

const V1: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const V2: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);
/// Edge `b`, farther from the client than `a`.
const B: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 99);
const DEMO_DB: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/geodb/demo-city.mmdb");
const BIN: &str = env!("CARGO_BIN_EXE_geosteer");

/// A pools file whose nearest edge `a` (the client is placed in London by
/// `nets`) has address `a`, with `ttl` for the host.
fn pools(a: Ipv4Addr, ttl: u32) -> String {
    format!(
        "edges:\n  a: {{ addresses: [{a}], location: [51.5, -0.1] }}\n  b: {{ addresses: [{B}], location: [50.1, 8.7] }}\n\
nets:\n  127.0.0.0/8: [51.5, -0.1]\n\
hosts:\n  www: {{ edges: [a, b], ttl: {ttl} }}\n"
    )
}

/// A temp dir holding `geosteer.yaml`, `zones/` and `geodb/demo.mmdb`.
struct Fx {
    _dir: tempfile::TempDir,
    root: PathBuf,
}

impl Fx {
    /// `zones` is created unless `layout` makes it itself.
    fn new(extra_cfg: &str) -> Fx {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        std::fs::create_dir_all(root.join("geodb")).unwrap();
        std::fs::copy(DEMO_DB, root.join("geodb/demo.mmdb")).unwrap();
        std::fs::write(
            root.join("geosteer.yaml"),
            format!(
                "listen: [127.0.0.1:0]\nzones: zones\ngeodb: geodb/demo.mmdb\nhttp: 127.0.0.1:0\nworkers: 1\n{extra_cfg}"
            ),
        )
        .unwrap();
        Fx { _dir: dir, root }
    }

    fn with_plain_zones(extra_cfg: &str) -> Fx {
        let fx = Fx::new(extra_cfg);
        std::fs::create_dir_all(fx.root.join("zones")).unwrap();
        fx.write("zones/t.example.zone", MINIMAL_ZONE);
        fx.write("zones/t.example.pools.yaml", &pools(V1, 5));
        fx
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }

    fn write(&self, rel: &str, text: &str) {
        std::fs::write(self.path(rel), text).unwrap();
    }

    /// Write to a temp name in the same directory, then rename over.
    fn replace(&self, rel: &str, bytes: &[u8]) {
        let p = self.path(rel);
        let tmp = p.with_file_name(format!(".{}.tmp", p.file_name().unwrap().to_string_lossy()));
        std::fs::write(&tmp, bytes).unwrap();
        std::fs::rename(&tmp, &p).unwrap();
    }

    fn config(&self) -> PathBuf {
        self.path("geosteer.yaml")
    }

    fn start(&self) -> AppServer {
        AppServer::load(&self.config())
    }
}

/// One A query for www.t.example. over UDP: (rcode, addresses).
fn ask_on(
    sock: &UdpSocket,
    server: SocketAddr,
    id: u16,
) -> Result<(ResponseCode, Vec<Ipv4Addr>), String> {
    sock.send_to(&wire_query(id, "www.t.example.", 1, None, None), server)
        .map_err(|e| e.to_string())?;
    let mut buf = [0u8; 2048];
    loop {
        let n = sock.recv(&mut buf).map_err(|e| format!("no answer: {e}"))?;
        let m = Message::from_vec(&buf[..n]).map_err(|e| e.to_string())?;
        if m.id != id {
            continue; // a late answer to an earlier query
        }
        let addrs = m
            .answers
            .iter()
            .filter_map(|r| match &r.data {
                RData::A(a) => Some(a.0),
                _ => None,
            })
            .collect();
        return Ok((m.response_code, addrs));
    }
}

fn socket() -> UdpSocket {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
    s
}

fn answer(server: SocketAddr) -> Vec<Ipv4Addr> {
    let (rcode, addrs) = ask_on(&socket(), server, 7).unwrap();
    assert_eq!(rcode, ResponseCode::NoError);
    addrs
}

/// Polls until the answer is `[want]`; returns how long that took.
fn wait_answer(server: SocketAddr, want: Ipv4Addr, within: Duration) -> Duration {
    let start = Instant::now();
    let sock = socket();
    let mut id = 1u16;
    loop {
        id = id.wrapping_add(1);
        let got = ask_on(&sock, server, id);
        if let Ok((_, a)) = &got
            && a == &[want]
        {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < within,
            "answer did not become {want} within {within:?}; last: {got:?}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn status(srv: &AppServer) -> serde_json::Value {
    serde_json::from_str(&http(srv.http(), "GET", "/api/status", "").1).unwrap()
}

/// The value of an unlabelled series in `/metrics`.
fn metric(srv: &AppServer, name: &str) -> f64 {
    support::http::metric(srv.http(), name)
}

#[test]
fn plain_write_triggers_reload() {
    let fx = Fx::with_plain_zones("");
    let srv = fx.start();
    assert_eq!(answer(srv.dns()), [V1]);
    let gen0 = status(&srv)["generation"].as_u64().unwrap();
    fx.write("zones/t.example.pools.yaml", &pools(V2, 5));
    let took = wait_answer(srv.dns(), V2, Duration::from_secs(1));
    eprintln!("plain write: switched in {took:?}");
    let st = status(&srv);
    assert!(st["generation"].as_u64().unwrap() > gen0);
    assert_eq!(st["last_reload"]["trigger"], "file change");
}

#[test]
fn editor_rename_triggers_reload() {
    let fx = Fx::with_plain_zones("");
    let srv = fx.start();
    assert_eq!(answer(srv.dns()), [V1]);
    fx.replace("zones/t.example.pools.yaml", pools(V2, 5).as_bytes());
    let took = wait_answer(srv.dns(), V2, Duration::from_secs(1));
    eprintln!("write + rename: switched in {took:?}");
}

/// Points `link` at `target` atomically (symlink beside it, renamed over).
fn flip_symlink(target: &Path, link: &Path) {
    let tmp = link.with_file_name(format!(
        "{}.flip",
        link.file_name().unwrap().to_string_lossy()
    ));
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(target, &tmp).unwrap();
    std::fs::rename(&tmp, link).unwrap();
}

#[test]
fn directory_symlink_flip_triggers_reload() {
    let fx = Fx::new("");
    for (d, a) in [("zones-a", V1), ("zones-b", V2)] {
        std::fs::create_dir_all(fx.path(d)).unwrap();
        fx.write(&format!("{d}/t.example.zone"), MINIMAL_ZONE);
        fx.write(&format!("{d}/t.example.pools.yaml"), &pools(a, 5));
    }
    std::os::unix::fs::symlink("zones-a", fx.path("zones")).unwrap();
    let srv = fx.start();
    assert_eq!(answer(srv.dns()), [V1]);

    flip_symlink(Path::new("zones-b"), &fx.path("zones"));
    let took = wait_answer(srv.dns(), V2, Duration::from_secs(1));
    eprintln!("zones symlink flip: switched in {took:?}");

    // The watch follows the new target: an edit inside zones-b is seen,
    // and one inside the old zones-a is not acted on.
    let generation = status(&srv)["generation"].as_u64().unwrap();
    fx.write("zones-b/t.example.pools.yaml", &pools(V1, 5));
    wait_answer(srv.dns(), V1, Duration::from_secs(1));
    // And back again.
    flip_symlink(Path::new("zones-a"), &fx.path("zones"));
    fx.write("zones-a/t.example.pools.yaml", &pools(V2, 5));
    wait_answer(srv.dns(), V2, Duration::from_secs(1));
    assert!(status(&srv)["generation"].as_u64().unwrap() >= generation + 2);
}

/// Kubernetes mounts a ConfigMap as `..<timestamp>/` directories, a
/// `..data` symlink to the current one, and per-key symlinks through
/// `..data`. An update writes a new timestamped dir, flips `..data`, and
/// deletes the old dir.
#[test]
fn configmap_data_flip_triggers_reload() {
    let fx = Fx::new("");
    let z = fx.path("zones");
    std::fs::create_dir_all(z.join("..2026_01_01_v1")).unwrap();
    fx.write("zones/..2026_01_01_v1/t.example.zone", MINIMAL_ZONE);
    fx.write("zones/..2026_01_01_v1/t.example.pools.yaml", &pools(V1, 5));
    std::os::unix::fs::symlink("..2026_01_01_v1", z.join("..data")).unwrap();
    for f in ["t.example.zone", "t.example.pools.yaml"] {
        std::os::unix::fs::symlink(format!("..data/{f}"), z.join(f)).unwrap();
    }
    let srv = fx.start();
    assert_eq!(answer(srv.dns()), [V1]);

    std::fs::create_dir_all(z.join("..2026_01_02_v2")).unwrap();
    fx.write("zones/..2026_01_02_v2/t.example.zone", MINIMAL_ZONE);
    fx.write("zones/..2026_01_02_v2/t.example.pools.yaml", &pools(V2, 5));
    flip_symlink(Path::new("..2026_01_02_v2"), &z.join("..data"));
    std::fs::remove_dir_all(z.join("..2026_01_01_v1")).unwrap();
    let took = wait_answer(srv.dns(), V2, Duration::from_secs(1));
    eprintln!("ConfigMap ..data flip: switched in {took:?}");
}

#[test]
fn sighup_triggers_reload() {
    let fx = Fx::with_plain_zones("");
    let (dns, web) = (free_port(), free_port());
    // Own config: fixed ports, and no watcher, so only SIGHUP can reload.
    fx.write(
        "geosteer.yaml",
        &format!(
            "listen: [127.0.0.1:{dns}]\nzones: zones\ngeodb: geodb/demo.mmdb\nhttp: 127.0.0.1:{web}\nworkers: 1\nwatch: false\n"
        ),
    );
    let child = KillOnDrop(
        Command::new(BIN)
            .args(["serve", "-c"])
            .arg(fx.config())
            .env("RUST_LOG", "warn")
            .spawn()
            .unwrap(),
    );
    let server: SocketAddr = ([127, 0, 0, 1], dns).into();
    wait_answer(server, V1, Duration::from_secs(10));

    fx.write("zones/t.example.pools.yaml", &pools(V2, 5));
    assert!(
        support::wait::holds_for(Duration::from_millis(500), || answer(server) == [V1]),
        "watch: false, yet it reloaded"
    );
    let pid = child.0.id() as libc::pid_t;
    assert_eq!(unsafe { libc::kill(pid, libc::SIGHUP) }, 0);
    let took = wait_answer(server, V2, Duration::from_secs(1));
    eprintln!("SIGHUP: switched in {took:?}");
    let (_, body) = http(([127, 0, 0, 1], web).into(), "GET", "/api/status", "");
    let st: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(st["last_reload"]["trigger"], "SIGHUP");
}

#[test]
fn api_and_cli_trigger_reload() {
    let fx = Fx::with_plain_zones("watch: false\n");
    let srv = fx.start();
    assert_eq!(answer(srv.dns()), [V1]);

    fx.write("zones/t.example.pools.yaml", &pools(V2, 5));
    assert!(
        support::wait::holds_for(Duration::from_millis(400), || answer(srv.dns()) == [V1]),
        "watch: false, yet it reloaded"
    );
    let (code, body) = http(srv.http(), "POST", "/api/reload", "");
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("\"ok\":true"), "{body}");
    let took = wait_answer(srv.dns(), V2, Duration::from_secs(1));
    eprintln!("POST /api/reload: switched in {took:?}");

    fx.write("zones/t.example.pools.yaml", &pools(V1, 5));
    let out = Command::new(BIN)
        .args([
            "reload",
            "--http",
            &srv.http().to_string(),
            "-c",
            "/nonexistent.yaml",
        ])
        .env_remove("GEOSTEER_HTTP_TOKEN")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.starts_with("reloaded: generation "), "{stdout}");
    let took = wait_answer(srv.dns(), V1, Duration::from_secs(1));
    eprintln!("geosteer reload: switched in {took:?}");

    // A rejected reload: exit 1 and the file:line message.
    fx.write("zones/t.example.pools.yaml", "edges: [\n");
    let out = Command::new(BIN)
        .args([
            "reload",
            "--http",
            &srv.http().to_string(),
            "-c",
            "/nonexistent.yaml",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("t.example.pools.yaml:"), "{stdout}");
    assert_eq!(answer(srv.dns()), [V1]);
}

/// `geosteer check`'s output, one problem per line.
fn check(cfg: &Path) -> (bool, String) {
    let out = Command::new(BIN)
        .args(["check", "-c"])
        .arg(cfg)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).trim_end().to_string(),
    )
}

/// How long this test waits for a verdict: generous, since it asserts what
/// is served, not how fast (the timing targets are measured elsewhere), and
/// CI machines are loaded.
const PATIENCE: Duration = Duration::from_secs(10);

#[test]
fn bad_changes_keep_the_old_answers() {
    let fx = Fx::with_plain_zones("");
    let srv = fx.start();
    assert_eq!(answer(srv.dns()), [V1]);
    let good_db = std::fs::read(DEMO_DB).unwrap();
    let truncated = &good_db[..good_db.len() / 2];
    let pools_v2 = pools(V2, 5);
    // A pools file that would switch the answer, if it were accepted.
    let dangling = pools_v2.replace("edges: [a, b]", "edges: [a, nope]");
    let bad_yaml = format!("{pools_v2}  img: [oops\n");

    type Apply<'a> = Box<dyn Fn(&Fx) + 'a>;
    // (what, change, error wanted, answer after): a broken zone keeps its
    // last good copy whole (its pools edit too); a broken database keeps
    // the last good database while the good pools edit is served.
    let cases: Vec<(&str, Apply, &str, Ipv4Addr)> = vec![
        (
            "bad zone",
            Box::new(|fx: &Fx| {
                fx.write("zones/t.example.pools.yaml", &pools_v2);
                fx.write(
                    "zones/t.example.zone",
                    &format!("{MINIMAL_ZONE}www2 IN A 999.1.1.1\n"),
                );
            }),
            "t.example.zone:5:",
            V1,
        ),
        (
            "bad yaml",
            Box::new(|fx: &Fx| fx.write("zones/t.example.pools.yaml", &bad_yaml)),
            "t.example.pools.yaml:",
            V1,
        ),
        (
            "dangling edge",
            Box::new(|fx: &Fx| fx.write("zones/t.example.pools.yaml", &dangling)),
            "t.example.pools.yaml:7:",
            V1,
        ),
        (
            "truncated mmdb, renamed over",
            Box::new(|fx: &Fx| {
                fx.write("zones/t.example.pools.yaml", &pools_v2);
                fx.replace("geodb/demo.mmdb", truncated);
            }),
            "demo.mmdb:",
            V2,
        ),
        (
            "truncated mmdb, overwritten in place",
            Box::new(|fx: &Fx| {
                fx.write("zones/t.example.pools.yaml", &pools_v2);
                fx.write_bytes_in_place("geodb/demo.mmdb", truncated);
            }),
            "demo.mmdb:",
            V2,
        ),
    ];
    for (what, apply, want, after) in cases {
        let failures = metric(&srv, "geosteer_reload_failures_total");
        apply(&fx);
        // The watcher reloads after 300 ms of quiet; wait for the verdict.
        let start = Instant::now();
        let st = loop {
            let st = status(&srv);
            if st["last_reload"]["ok"] == false
                && metric(&srv, "geosteer_reload_failures_total") > failures
            {
                break st;
            }
            assert!(
                start.elapsed() < PATIENCE,
                "{what}: no failed reload seen: {st}"
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        wait_answer(srv.dns(), after, PATIENCE);
        assert_eq!(answer(srv.dns()), [after], "{what}");
        let errors: Vec<String> = st["last_reload"]["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e.as_str().unwrap().to_string())
            .collect();
        assert!(
            errors.iter().any(|e| e.contains(want)),
            "{what}: want {want:?} in {errors:?}"
        );
        let (ok, printed) = check(&fx.config());
        assert!(!ok, "{what}: check passed");
        assert_eq!(
            printed,
            errors.join("\n"),
            "{what}: check and /api/status differ"
        );
        eprintln!("{what}: {}", errors.join(" | "));

        // Restore the good state (DB in place too), then expect V1 again.
        fx.write("zones/t.example.zone", MINIMAL_ZONE);
        fx.write("zones/t.example.pools.yaml", &pools(V1, 5));
        fx.write_bytes_in_place("geodb/demo.mmdb", &good_db);
        let start = Instant::now();
        while status(&srv)["last_reload"]["ok"] != true {
            assert!(
                start.elapsed() < PATIENCE,
                "{what}: good files not reloaded"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        // The database written again is opened again, and every zone built
        // against it: wait for that too before the next case edits files.
        srv.app().reloader.reload("test").unwrap();
        wait_answer(srv.dns(), V1, PATIENCE);
    }
}

impl Fx {
    fn write_bytes_in_place(&self, rel: &str, bytes: &[u8]) {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(self.path(rel))
            .unwrap();
        f.write_all(bytes).unwrap();
    }
}

#[test]
fn admin_drain_survives_a_pools_edit() {
    let fx = Fx::with_plain_zones("");
    let srv = fx.start();
    assert_eq!(answer(srv.dns()), [V1]);
    let (code, body) = http(
        srv.http(),
        "POST",
        "/api/edges/a/admin",
        r#"{"state":"drain"}"#,
    );
    assert_eq!(code, 200, "{body}");
    wait_answer(srv.dns(), B, Duration::from_secs(1));

    let generation = status(&srv)["generation"].as_u64().unwrap();
    fx.replace("zones/t.example.pools.yaml", pools(V1, 9).as_bytes());
    let start = Instant::now();
    while status(&srv)["generation"].as_u64().unwrap() == generation {
        assert!(start.elapsed() < Duration::from_secs(2), "no reload");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(answer(srv.dns()), [B], "the drain was lost in the reload");
    let edges: serde_json::Value =
        serde_json::from_str(&http(srv.http(), "GET", "/api/edges", "").1).unwrap();
    let a = edges
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "a")
        .unwrap();
    assert_eq!(a["admin"], "drain", "{a}");
    assert_eq!(a["effective"], "drain", "{a}");
}

#[test]
fn concurrent_queries_across_reloads() {
    let fx = Fx::with_plain_zones("");
    let srv = fx.start();
    assert_eq!(answer(srv.dns()), [V1]);
    let stop = Arc::new(AtomicBool::new(false));
    let counts = Arc::new([(); 5].map(|_| AtomicU64::new(0))); // v1, v2, servfail, other, failed
    let server = srv.dns();
    let threads: Vec<_> = (0..3)
        .map(|t| {
            let (stop, counts) = (stop.clone(), counts.clone());
            std::thread::spawn(move || {
                let sock = socket();
                let mut id = (t as u16) << 12;
                let mut failures = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    id = id.wrapping_add(1);
                    let slot = match ask_on(&sock, server, id) {
                        Ok((ResponseCode::NoError, a)) if a == [V1] => 0,
                        Ok((ResponseCode::NoError, a)) if a == [V2] => 1,
                        Ok((ResponseCode::ServFail, _)) => 2,
                        Ok(other) => {
                            failures.push(format!("{other:?}"));
                            3
                        }
                        Err(e) => {
                            failures.push(e);
                            4
                        }
                    };
                    counts[slot].fetch_add(1, Ordering::Relaxed);
                }
                failures
            })
        })
        .collect();

    let other_db = fx.path("geodb/other.mmdb");
    let db = std::fs::read(DEMO_DB).unwrap();
    let started = Instant::now();
    for i in 0..100u32 {
        let v = if i % 2 == 0 { V2 } else { V1 };
        fx.replace("zones/t.example.pools.yaml", pools(v, 5).as_bytes());
        if i % 10 == 5 {
            // A DB swap: a new inode each time, so the cache can't reuse it.
            std::fs::write(&other_db, &db).unwrap();
            std::fs::rename(&other_db, fx.path("geodb/demo.mmdb")).unwrap();
        }
        srv.app().reloader.reload("test").unwrap();
    }
    let reload_time = started.elapsed();
    std::thread::sleep(Duration::from_millis(100));
    stop.store(true, Ordering::Relaxed);
    let failures: Vec<String> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    let c: Vec<u64> = counts.iter().map(|c| c.load(Ordering::Relaxed)).collect();
    eprintln!(
        "100 reloads in {reload_time:?}; answers: v1 {} v2 {} servfail {} other {} failed {}",
        c[0], c[1], c[2], c[3], c[4]
    );
    assert!(failures.is_empty(), "{failures:?}");
    assert_eq!(c[2], 0, "SERVFAIL during reloads");
    assert!(
        c[0] > 0 && c[1] > 0,
        "both versions should have been seen: {c:?}"
    );
    assert!(c[0] + c[1] > 300, "too few queries to mean anything: {c:?}");
}

/// RSS is per process, and the other tests run in threads of this one: run
/// the measurement in a child process of this test binary, alone.
#[test]
fn rss_stays_flat_over_100_reloads() {
    if std::env::var_os("GEOSTEER_RSS_CHILD").is_none() {
        // The harness names it by module path without the crate's name.
        let name = module_path!()
            .split_once("::")
            .map_or("", |(_, m)| m)
            .to_string()
            + "::rss_stays_flat_over_100_reloads";
        let out = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", &name, "--nocapture", "--test-threads=1"])
            .env("GEOSTEER_RSS_CHILD", "1")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stderr);
        eprintln!(
            "{}",
            text.lines()
                .filter(|l| l.starts_with("rss"))
                .collect::<Vec<_>>()
                .join("\n")
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{text}\n{stdout}");
        assert!(
            stdout.contains("1 passed") && text.contains("rss before"),
            "the child did not run {name}: {stdout}"
        );
        return;
    }
    // A zone big enough (~1600 records) that keeping every old snapshot
    // would add tens of MB.
    let fx = Fx::with_plain_zones("watch: false\n");
    let mut zone = MINIMAL_ZONE.to_string();
    for i in 0..800 {
        zone.push_str(&format!(
            "h{i} IN A 198.51.100.{}\nh{i} IN TXT \"padding padding padding {i}\"\n",
            i % 250
        ));
    }
    fx.write("zones/t.example.zone", &zone);
    let srv = fx.start();
    let reloader = srv.app().reloader.clone();
    let db = std::fs::read(DEMO_DB).unwrap();
    let swap_db = |i: u32| {
        let tmp = fx.path(&format!("geodb/tmp{i}.mmdb"));
        std::fs::write(&tmp, &db).unwrap();
        std::fs::rename(&tmp, fx.path("geodb/demo.mmdb")).unwrap();
    };
    let run = |n: u32| {
        for i in 0..n {
            let v = if i % 2 == 0 { V2 } else { V1 };
            fx.write("zones/t.example.pools.yaml", &pools(v, 5));
            if i % 10 == 0 {
                swap_db(i);
            }
            reloader.reload("test").unwrap();
        }
    };
    run(20); // warm up allocator arenas
    let first = Arc::downgrade(&reloader.shared().load_full());
    let first_db = Arc::downgrade(reloader.shared().load().geodb.as_ref().unwrap());
    // Queries over UDP and TCP: the threads that answer them keep the
    // snapshot they used for the next query, and must let go when idle.
    answer(srv.dns());
    let tcp = support::dns::tcp_raw(srv.tcp(), &wire_query(9, "www.t.example.", 1, None, None));
    assert!(tcp.is_some(), "no TCP answer");
    let before = vm_rss_kib();
    run(100);
    support::wait::until_true(
        "the first snapshot and its GeoIP DB freed",
        Duration::from_secs(5),
        || first.upgrade().is_none() && first_db.upgrade().is_none(),
    );
    let after = vm_rss_kib();
    eprintln!("rss before {before} kB, after 100 reloads {after} kB");
    assert!(
        after < before + 8 * 1024,
        "RSS grew from {before} kB to {after} kB"
    );
}

// ---------------------------------------------------------------- stages

/// Makes a FIFO at `path`: a build that reads it blocks in `open` until a
/// writer comes, which is how these tests hold a build in progress.
fn mkfifo(path: &Path) {
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0, "mkfifo");
}

/// Is this process's thread named `name` blocked opening `path`? (Other
/// tests' servers run in this process too: their threads have the same
/// names, so the file being opened is what tells ours apart.)
fn thread_opening(name: &str, path: &Path) -> bool {
    use std::io::{Read, Seek};
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return false;
    };
    tasks.filter_map(|t| t.ok()).any(|t| {
        let comm = std::fs::read_to_string(t.path().join("comm")).unwrap_or_default();
        let syscall = std::fs::read_to_string(t.path().join("syscall")).unwrap_or_default();
        let f: Vec<&str> = syscall.split(' ').collect();
        if comm.trim_end() != name || f.len() < 3 || f[0] != libc::SYS_openat.to_string() {
            return false;
        }
        // openat(dirfd, pathname, ...): read the name it is opening.
        let Ok(at) = u64::from_str_radix(f[2].trim_start_matches("0x"), 16) else {
            return false;
        };
        let mut buf = vec![0u8; 4096];
        let Ok(mut mem) = std::fs::File::open("/proc/self/mem") else {
            return false;
        };
        if mem.seek(std::io::SeekFrom::Start(at)).is_err() || mem.read(&mut buf).is_err() {
            return false;
        }
        let end = buf.iter().position(|&b| b == 0).unwrap_or(0);
        Path::new(<std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(&buf[..end]))
            == path
    })
}

/// Lets a build blocked on the FIFO `link` go on: opens it for writing and
/// writes `text` (what the build reads).
fn release(link: &Path, text: &str) {
    std::fs::OpenOptions::new()
        .write(true)
        .open(link)
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
}

/// A pools edit is served while a GeoIP DB swap is still in progress: the
/// database stage is held in `open` (the new DB file is a FIFO nobody
/// writes yet), and the edit is built against the database in service.
#[test]
fn pools_edit_is_served_while_a_database_swap_is_in_progress() {
    let fx = Fx::with_plain_zones("");
    let srv = fx.start();
    assert_eq!(answer(srv.dns()), [V1]);

    // The "new database": a FIFO, linked outside the watched directory
    // too, so the test can open it after the path moved on.
    let fifo = fx.path("held.fifo");
    mkfifo(&fifo);
    std::fs::hard_link(&fifo, fx.path("geodb/.next.mmdb")).unwrap();
    std::fs::rename(fx.path("geodb/.next.mmdb"), fx.path("geodb/demo.mmdb")).unwrap();
    support::wait::until_true(
        "the database stage opening the new DB",
        Duration::from_secs(5),
        || thread_opening("geosteer-geodb", &fx.path("geodb/demo.mmdb")),
    );

    fx.write("zones/t.example.pools.yaml", &pools(V2, 5));
    let took = wait_answer(srv.dns(), V2, Duration::from_secs(5));
    eprintln!("pools edit during a DB swap: served in {took:?}");
    assert!(
        thread_opening("geosteer-geodb", &fx.path("geodb/demo.mmdb")),
        "the DB swap was over before the edit was served: the test proved nothing"
    );

    // The swap goes on: this "database" is no regular file (refused, the
    // old one keeps serving), then a real one renamed over is taken.
    let db = std::fs::read(DEMO_DB).unwrap();
    fx.replace("geodb/demo.mmdb", &db);
    release(&fifo, "");
    let start = Instant::now();
    while status(&srv)["last_reload"]["ok"] != true {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "the good DB was not taken: {}",
            status(&srv)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    srv.app().reloader.reload("test").unwrap();
    assert_eq!(answer(srv.dns()), [V2]);
}

/// No edit is lost: a change made while a build is in progress (start-up
/// included) is served once the build it triggers is done. The build is
/// held reading zone `z.example`'s pools file (a FIFO) after it has read
/// `t.example`'s, which is then edited.
#[test]
fn an_edit_made_during_a_build_is_not_lost() {
    for at_start in [true, false] {
        let fx = Fx::with_plain_zones("");
        fx.write("zones/z.example.zone", MINIMAL_ZONE);
        let fifo = fx.path("held.fifo");
        let pools_z = fx.path("zones/z.example.pools.yaml");
        let z_pools = pools(V1, 5);
        let srv = if at_start {
            mkfifo(&fifo);
            std::fs::hard_link(&fifo, &pools_z).unwrap();
            let cfg = fx.config();
            let starting = std::thread::spawn(move || AppServer::load(&cfg));
            support::wait::until_true(
                "the first build reading z.example's pools",
                Duration::from_secs(10),
                || thread_opening("geosteer-geodb", &pools_z),
            );
            fx.write("zones/t.example.pools.yaml", &pools(V2, 5));
            fx.replace("zones/z.example.pools.yaml", z_pools.as_bytes());
            release(&fifo, &z_pools);
            starting.join().unwrap()
        } else {
            fx.write("zones/z.example.pools.yaml", &z_pools);
            let srv = fx.start();
            assert_eq!(answer(srv.dns()), [V1]);
            mkfifo(&fifo);
            std::fs::hard_link(&fifo, fx.path("zones/.z.tmp")).unwrap();
            std::fs::rename(fx.path("zones/.z.tmp"), &pools_z).unwrap();
            support::wait::until_true(
                "a build reading z.example's pools",
                Duration::from_secs(10),
                || thread_opening("geosteer-build", &pools_z),
            );
            fx.write("zones/t.example.pools.yaml", &pools(V2, 5));
            fx.replace("zones/z.example.pools.yaml", z_pools.as_bytes());
            release(&fifo, &z_pools);
            srv
        };
        let took = wait_answer(srv.dns(), V2, Duration::from_secs(5));
        eprintln!("edit during a build (at start: {at_start}): served {took:?} after the build");
        let st = status(&srv);
        assert_eq!(st["last_reload"]["ok"], true, "{st}");
    }
}
