//! `geosteer check` refuses what `geosteer serve` refuses, in the same
//! words: both binaries run on the same broken configs, `serve` must exit
//! non-zero with the line `check` printed.

use crate::support;

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use support::server::{MINIMAL_ZONE, write_zone_dir};

const POOLS: &str =
    "edges:\n  a: { addresses: [192.0.2.1], location: [50, 8] }\nhosts:\n  www: {}\n";

fn dir_with(config: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    write_zone_dir(dir.path(), "example", POOLS, config);
    support::write_file(dir.path(), "zones/example.zone", MINIMAL_ZONE);
    dir
}

fn geosteer(args: &[&str], cfg: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_geosteer"));
    c.args(args)
        .arg("--config")
        .arg(cfg)
        .env_remove("GEOSTEER_HTTP_TOKEN")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
}

/// `serve`, which must give up on its own; killed (and the test failed)
/// if it is still running after a while.
fn serve(cfg: &Path) -> Output {
    let mut child = geosteer(&["serve"], cfg).spawn().unwrap();
    let t = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if t.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "serve started on a config it should refuse:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

/// Both refuse `config` (with `prepare` run on the directory first); the
/// message names `want`; returns it.
fn both_refuse(config: &str, prepare: impl Fn(&Path), want: &str) -> String {
    let dir = dir_with(config);
    prepare(dir.path());
    let cfg = dir.path().join("geosteer.yaml");
    let check = geosteer(&["check"], &cfg).output().unwrap();
    let said = String::from_utf8_lossy(&check.stdout).trim().to_owned();
    assert_eq!(check.status.code(), Some(1), "check passed:\n{said}");
    assert!(said.contains(want), "check said:\n{said}");
    let served = serve(&cfg);
    let err = String::from_utf8_lossy(&served.stderr);
    assert!(!served.status.success(), "serve exited 0:\n{err}");
    // Log lines (timestamped) may come first; none may repeat the error.
    let is_log = |l: &&str| l.len() > 11 && l.as_bytes()[4] == b'-' && l.as_bytes()[10] == b'T';
    let logs: Vec<&str> = err.lines().filter(is_log).collect();
    assert!(
        !logs.iter().any(|l| l.contains("ERROR")),
        "serve logged the error before refusing:\n{err}"
    );
    let words: Vec<&str> = err.lines().filter(|l| !is_log(l)).collect();
    assert_eq!(
        words.join("\n").trim(),
        format!("geosteer: {said}"),
        "serve's words differ from check's"
    );
    said
}

const BASE: &str = "listen: [127.0.0.1:0]\nzones: zones\nworkers: 1\nwatch: false\n";

#[test]
fn admin_api_off_loopback_without_a_token() {
    let port = support::free_port();
    let said = both_refuse(
        &format!("{BASE}http: 0.0.0.0:{port}\n"),
        |_| {},
        "needs a token",
    );
    assert!(said.contains("http_token or GEOSTEER_HTTP_TOKEN"), "{said}");
}

#[test]
fn a_state_file_that_is_not_json() {
    both_refuse(
        BASE,
        |d| {
            std::fs::write(d.join("geosteer.state.json"), "{ not json").unwrap();
        },
        "geosteer.state.json",
    );
}

#[test]
fn a_query_log_that_cannot_be_written() {
    both_refuse(
        &format!("{BASE}query_log: {{ path: no/such/dir/q.log, sample: 1 }}\n"),
        |_| {},
        "query_log.path",
    );
}

#[test]
fn a_dnstap_file_that_cannot_be_written() {
    both_refuse(
        &format!("{BASE}dnstap: {{ file: no/such/dir/tap.fstrm }}\n"),
        |_| {},
        "dnstap.file",
    );
}

#[test]
fn a_listen_address_this_host_does_not_have() {
    both_refuse(
        "listen: [192.0.2.77:5300]\nzones: zones\nworkers: 1\nwatch: false\n",
        |_| {},
        "192.0.2.77:5300: not an address of this host",
    );
}

#[test]
fn a_broken_pools_file() {
    both_refuse(
        BASE,
        |d| {
            std::fs::write(
                d.join("zones/example.pools.yaml"),
                "edges:\n  a: { addresses: [192.0.2.1], location: [50, 8] }\nhosts:\n  www: { edges: [b] }\n",
            )
            .unwrap();
        },
        "example.pools.yaml:4: hosts.www.edges: unknown edge or group \"b\"",
    );
}

#[test]
fn a_good_config_passes_check_and_nothing_is_written() {
    let port = support::free_port();
    let dir = dir_with(&format!(
        "{BASE}http: 127.0.0.1:{port}\nquery_log: {{ path: q.log, sample: 1 }}\n"
    ));
    let cfg = dir.path().join("geosteer.yaml");
    let check = geosteer(&["check"], &cfg).output().unwrap();
    let said = String::from_utf8_lossy(&check.stdout);
    assert_eq!(check.status.code(), Some(0), "{said}");
    assert!(said.starts_with("ok: 1 zone(s)"), "{said}");
    assert!(!dir.path().join("q.log").exists(), "check created the log");
    assert!(!dir.path().join("geosteer.state.json").exists());
}
