//! `geosteer explain` as the operator runs it on the demo: it asks the
//! running server (so a drain counts) and says so, falls back to the files
//! with a note when no server answers, says "not located" rather than
//! "0 km" for a client it cannot place, and follows a CNAME to the steered
//! host's decision and TTL.

use crate::support;

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use support::server::AppServer;

/// The demo zone (plus a CNAME to a steered host) and DB, with the admin
/// API on a free loopback port.
fn demo() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let root = support::repo();
    let zone = std::fs::read_to_string(root.join("zones/cdn.example.zone")).unwrap()
        + "customer 600 IN CNAME www\n";
    support::write_file(dir.path(), "zones/cdn.example.zone", &zone);
    std::fs::copy(
        root.join("zones/cdn.example.pools.yaml"),
        dir.path().join("zones/cdn.example.pools.yaml"),
    )
    .unwrap();
    let cfg = support::write_file(
        dir.path(),
        "geosteer.yaml",
        &format!(
            "listen: [127.0.0.1:0]\nzones: zones\ngeodb: {}\nhttp: 127.0.0.1:{}\nworkers: 1\nwatch: false\n",
            root.join("geodb/demo-city.mmdb").display(),
            support::free_port()
        ),
    );
    (dir, cfg)
}

fn explain(cfg: &Path, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_geosteer"))
        .arg("explain")
        .args(args)
        .arg("--config")
        .arg(cfg)
        .env_remove("GEOSTEER_HTTP")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "explain {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn json(cfg: &Path, args: &[&str]) -> Value {
    let mut a = args.to_vec();
    a.push("--json");
    serde_json::from_str(&explain(cfg, &a)).unwrap()
}

/// A London client (the demo DB's 192.0.2.0/24).
const LONDON: &str = "192.0.2.1";

#[test]
fn asks_the_running_server_and_says_so() {
    let (_dir, cfg) = demo();
    // No server yet: from the files, with the note.
    let t = explain(&cfg, &["www.cdn.example", "--client", LONDON]);
    let first = t.lines().next().unwrap();
    assert!(
        first.starts_with("answered  from the files (the server at http://127.0.0.1:"),
        "{t}"
    );
    assert!(
        first.contains("live state (health checks, drains, pushed loads) is not applied"),
        "{t}"
    );
    assert!(t.contains("edges     lhr\n"), "{t}");

    let srv = AppServer::load(&cfg);
    let http = srv.http();
    let (code, body) = support::http::http(
        http,
        "POST",
        "/api/edges/lhr/admin",
        r#"{"state":"drain","reason":"fibre cut"}"#,
    );
    assert_eq!(code, 200, "{body}");
    // As the server answers: lhr drained, so not lhr; dig agrees.
    let t = explain(&cfg, &["www.cdn.example", "--client", LONDON]);
    assert!(
        t.starts_with(&format!("answered  by the running server at http://{http}, with its live health, drains and loads")),
        "{t}"
    );
    let v = json(&cfg, &["www.cdn.example", "--client", LONDON]);
    assert_eq!(v["answered_by"]["live"], true);
    let edges = v["edges"].as_array().unwrap();
    assert!(!edges.contains(&"lhr".into()), "{v}");
    let lhr = v["candidates"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["edge"] == "lhr")
        .unwrap();
    assert_eq!(lhr["state"], "drain");
    // --files still answers from the files, saying live state is not in it.
    let v = json(&cfg, &["www.cdn.example", "--client", LONDON, "--files"]);
    assert_eq!(v["answered_by"]["live"], false);
    assert_eq!(v["edges"], serde_json::json!(["lhr"]));
    assert!(
        v["answered_by"]["note"]
            .as_str()
            .unwrap()
            .contains("--files")
    );
    // A question the server refuses is an error, not a fallback.
    let out = Command::new(env!("CARGO_BIN_EXE_geosteer"))
        .args([
            "explain",
            "www.cdn.example",
            "--client",
            LONDON,
            "--type",
            "NOPE",
            "--config",
        ])
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("/api/explain"));
    srv.shutdown();
}

#[test]
fn a_client_it_cannot_locate() {
    let (_dir, cfg) = demo();
    // 10.99.0.0/16: no override net, not in the demo DB.
    let t = explain(
        &cfg,
        &["www.cdn.example", "--client", "10.99.1.1", "--files"],
    );
    assert!(t.contains("location  not located"), "{t}");
    assert!(!t.contains("0.0 km") && !t.contains(" 0 km"), "{t}");
    assert!(t.contains("not located  bias"), "{t}");
    assert!(t.contains("why       the client is not located"), "{t}");
    let v = json(
        &cfg,
        &["www.cdn.example", "--client", "10.99.1.1", "--files"],
    );
    assert_eq!(v["location"]["located"], false);
    assert!(v["steering"]["order"][0]["metric"].is_null(), "{v}");
    assert!(v["candidates"][0]["km"].is_null(), "{v}");
}

#[test]
fn a_cname_to_a_steered_host_is_followed() {
    let (_dir, cfg) = demo();
    let v = json(
        &cfg,
        &["customer.cdn.example", "--client", LONDON, "--files"],
    );
    assert_eq!(v["host"], "www", "{v}");
    assert_eq!(v["cname"][0]["target"], "www.cdn.example.");
    assert_eq!(v["cname"][0]["ttl"], 600);
    // The steered answer's TTL (www: 20), not the CNAME's.
    assert_eq!(v["ttl"], 20, "{v}");
    assert_eq!(v["edges"], serde_json::json!(["lhr"]));
    assert!(
        !v["steering"]["order"].as_array().unwrap().is_empty(),
        "{v}"
    );
    let t = explain(
        &cfg,
        &["customer.cdn.example", "--client", LONDON, "--files"],
    );
    assert!(
        t.contains("cname     customer.cdn.example. -> www.cdn.example. (ttl 600)"),
        "{t}"
    );
    assert!(t.contains("host      www (steered, via CNAME)"), "{t}");
    assert!(t.contains("ttl       20\n"), "{t}");
}
