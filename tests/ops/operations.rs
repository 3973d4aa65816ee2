//! Everyday operations from the command line against a running server:
//! `geosteer drain|down|up|auto|load EDGE` (address and token from the
//! config, `--http`, or the environment), overrides with a reason and an
//! expiry shown in `/api/edges`, `/api/status` and `geosteer status`, that
//! lift themselves on time and survive a restart with pushed loads; and
//! the API taking JSON whatever the Content-Type, durations as numbers or
//! text.

use crate::support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use serde_json::Value;
use support::http::get_json;
use support::server::{AppServer, MINIMAL_ZONE, write_zone_dir};
use support::wait::until_true;

const TOKEN: &str = "s3cret-token";

const POOLS: &str = "edges:\n  lhr: { addresses: [192.0.2.10], location: [51.47, -0.45] }\n  fra: { addresses: [192.0.2.20], location: [50.03, 8.57] }\nhosts:\n  www: {}\n";

/// A server with the admin API on loopback and a token; returns the
/// directory, the server and the config's path.
fn start() -> (tempfile::TempDir, AppServer, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let port = support::free_port();
    let cfg = write_zone_dir(
        dir.path(),
        "cdn.example",
        POOLS,
        &format!(
            "listen: [127.0.0.1:0]\nzones: zones\nworkers: 1\nwatch: false\nhttp: 127.0.0.1:{port}\nhttp_token: {TOKEN}\n"
        ),
    );
    support::write_file(dir.path(), "zones/cdn.example.zone", MINIMAL_ZONE);
    let srv = AppServer::load(&cfg);
    (dir, srv, cfg)
}

/// Runs `geosteer ARGS`; no token in the environment unless `env` says.
fn geosteer(args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_geosteer"))
        .args(args)
        .env_remove("GEOSTEER_HTTP_TOKEN")
        .env_remove("GEOSTEER_HTTP")
        .envs(env.iter().copied())
        .output()
        .unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Runs it with `--config CFG`, expecting exit 0; returns stdout.
fn ok(cfg: &Path, args: &[&str]) -> String {
    let mut a: Vec<&str> = args.to_vec();
    let c = cfg.to_str().unwrap();
    a.extend(["--config", c]);
    let o = geosteer(&a, &[]);
    assert_eq!(o.status.code(), Some(0), "{args:?}: {}", text(&o));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn edge(http: SocketAddr, name: &str) -> Value {
    get_json(http, "/api/edges")
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == name)
        .cloned()
        .unwrap_or_else(|| panic!("no edge {name}"))
}

/// A raw request, so the Content-Type is whatever the test says (or none).
fn raw(http: SocketAddr, method: &str, path: &str, headers: &str, body: &str) -> (u16, String) {
    let mut s = TcpStream::connect(http).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: Bearer {TOKEN}\r\n{headers}Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    let code = resp[9..12].parse().unwrap();
    (code, resp.split_once("\r\n\r\n").unwrap().1.to_owned())
}

#[test]
fn drain_with_reason_and_expiry_from_the_cli() {
    let (_dir, srv, cfg) = start();
    let http = srv.http();

    let out = ok(
        &cfg,
        &["drain", "lhr", "--for", "2h", "--reason", "fibre cut"],
    );
    assert!(out.starts_with("lhr: drain in 1 zone for 2h"), "{out}");
    assert!(out.trim_end().ends_with(": fibre cut"), "{out}");
    let e = edge(http, "lhr");
    assert_eq!(e["admin"], "drain");
    assert_eq!(e["effective"], "drain");
    assert_eq!(e["admin_reason"], "fibre cut");
    assert!(e["admin_until"].as_str().unwrap().ends_with('Z'), "{e}");
    let left = e["admin_expires_in_secs"].as_f64().unwrap();
    assert!((7000.0..=7200.0).contains(&left), "{left}");
    // /api/status lists it; `geosteer status` shows why and for how long.
    let st = get_json(http, "/api/status");
    let o = &st["overrides"][0];
    assert_eq!(
        (&o["edge"], &o["state"], &o["reason"]),
        (&"lhr".into(), &"drain".into(), &"fibre cut".into())
    );
    let status = ok(&cfg, &["status"]);
    let line = status.lines().find(|l| l.contains(" lhr ")).unwrap();
    assert!(
        line.contains("drain (fibre cut; 1h 59m") && line.contains(" left)"),
        "{status}"
    );

    // down, up, auto; --zone picks the zone.
    let out = ok(&cfg, &["down", "fra", "--zone", "cdn.example"]);
    assert_eq!(out.trim(), "fra: down in 1 zone");
    assert_eq!(edge(http, "fra")["effective"], "down");
    ok(&cfg, &["up", "fra"]);
    assert_eq!(edge(http, "fra")["admin"], "up");
    let out = ok(&cfg, &["auto", "lhr"]);
    assert_eq!(out.trim(), "lhr: auto in 1 zone");
    let e = edge(http, "lhr");
    assert_eq!(e["admin"], "auto");
    assert!(e.get("admin_reason").is_none(), "{e}");

    // Pushed load, the TTL as the operator writes it.
    let out = ok(&cfg, &["load", "lhr", "0.95", "--ttl", "2m"]);
    assert_eq!(out.trim(), "lhr: load 0.95 for 2m in 1 zone");
    let e = edge(http, "lhr");
    assert_eq!(e["last_load"], 0.95);
    assert_eq!(e["effective"], "overloaded");
}

#[test]
fn an_override_lifts_itself_on_time() {
    let (_dir, srv, cfg) = start();
    let http = srv.http();
    ok(&cfg, &["down", "lhr", "--for", "1s", "--reason", "reboot"]);
    assert_eq!(edge(http, "lhr")["effective"], "down");
    until_true("lhr back to auto", Duration::from_secs(10), || {
        edge(http, "lhr")["admin"] == "auto"
    });
    let e = edge(http, "lhr");
    assert_eq!(e["effective"], "up");
    assert!(e.get("admin_reason").is_none(), "{e}");
    assert_eq!(
        get_json(http, "/api/status")["overrides"],
        serde_json::json!([])
    );
}

#[test]
fn overrides_and_loads_survive_a_restart() {
    let (dir, srv, cfg) = start();
    ok(
        &cfg,
        &["drain", "lhr", "--for", "3h", "--reason", "fibre cut"],
    );
    ok(&cfg, &["load", "fra", "0.97", "--ttl", "10m"]);
    let state = dir.path().join("geosteer.state.json");
    until_true("the load on file", Duration::from_secs(10), || {
        std::fs::read_to_string(&state).is_ok_and(|t| t.contains("0.97"))
    });
    let until = edge(srv.http(), "lhr")["admin_until"].clone();
    srv.shutdown();

    let srv = AppServer::load(&cfg);
    let http = srv.http();
    let e = edge(http, "lhr");
    assert_eq!(e["admin"], "drain");
    assert_eq!(e["admin_reason"], "fibre cut");
    assert_eq!(e["admin_until"], until);
    let e = edge(http, "fra");
    assert_eq!(e["last_load"], 0.97);
    assert_eq!(e["effective"], "overloaded");
}

#[test]
fn token_and_address_from_the_environment_or_flags() {
    let (dir, srv, _cfg) = start();
    let http = srv.http().to_string();
    // A config without `http:` or a token: the flags and the environment
    // say where and with what.
    let bare = dir.path().join("client.yaml");
    std::fs::write(&bare, "zones: zones\n").unwrap();
    let c = bare.to_str().unwrap();
    let o = geosteer(&["drain", "lhr", "--http", &http, "--config", c], &[]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("wants its token"), "{}", text(&o));
    let o = geosteer(
        &["drain", "lhr", "--config", c],
        &[("GEOSTEER_HTTP_TOKEN", TOKEN), ("GEOSTEER_HTTP", &http)],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let o = geosteer(
        &[
            "auto", "lhr", "--http", &http, "--token", TOKEN, "--config", c,
        ],
        &[],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    // An unknown edge, a bad duration: refused, saying why.
    let o = geosteer(
        &[
            "drain", "nope", "--http", &http, "--token", TOKEN, "--config", c,
        ],
        &[],
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).contains("no edge \"nope\""), "{}", text(&o));
    let o = geosteer(&["drain", "lhr", "--for", "soon", "--config", c], &[]);
    assert_ne!(o.status.code(), Some(0));
    assert!(text(&o).contains("--for"), "{}", text(&o));
    // Nothing listening: exit 2.
    let port = support::free_port();
    let o = geosteer(
        &[
            "drain",
            "lhr",
            "--http",
            &format!("127.0.0.1:{port}"),
            "--config",
            c,
        ],
        &[],
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("cannot reach"), "{}", text(&o));
}

#[test]
fn the_api_takes_json_without_a_content_type_and_durations_either_way() {
    let (_dir, srv, _cfg) = start();
    let http = srv.http();
    // curl -d without -H: form-encoded by its header, JSON by its body.
    let form = "Content-Type: application/x-www-form-urlencoded\r\n";
    let (code, body) = raw(
        http,
        "POST",
        "/api/edges/lhr/admin",
        form,
        r#"{"state":"drain"}"#,
    );
    assert_eq!(code, 200, "{body}");
    assert_eq!(edge(http, "lhr")["admin"], "drain");
    let (code, body) = raw(
        http,
        "POST",
        "/api/edges/lhr/admin",
        "",
        r#"{"state":"auto"}"#,
    );
    assert_eq!(code, 200, "{body}");
    // ttl as seconds or as text; `for` likewise.
    for ttl in ["60", "\"60s\"", "90.5", "\"2m\""] {
        let (code, body) = raw(
            http,
            "PUT",
            "/api/edges/fra/load",
            "",
            &format!(r#"{{"load": 0.5, "ttl": {ttl}}}"#),
        );
        assert_eq!(code, 200, "ttl {ttl}: {body}");
    }
    let (code, body) = raw(
        http,
        "POST",
        "/api/edges/lhr/admin",
        "",
        r#"{"state":"down","for":7200,"reason":"fibre cut"}"#,
    );
    assert_eq!(code, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["reason"], "fibre cut");
    assert!(v["expires_in_secs"].as_f64().unwrap() > 7100.0, "{v}");
    // What is wrong is said, with an example of what is right.
    for (path, body, want) in [
        (
            "/api/edges/fra/load",
            r#"{"load": 0.5, "ttl": "soon"}"#,
            "60s",
        ),
        (
            "/api/edges/fra/load",
            r#"{"load": 0.5}"#,
            "missing field `ttl`",
        ),
        (
            "/api/edges/lhr/admin",
            "state=drain",
            r#"send JSON like {"state": "drain""#,
        ),
        ("/api/edges/lhr/admin", "", "no body"),
        (
            "/api/edges/lhr/admin",
            r#"{"state":"auto","for":"1h"}"#,
            "auto lifts the override",
        ),
    ] {
        let method = if path.ends_with("load") {
            "PUT"
        } else {
            "POST"
        };
        let (code, resp) = raw(http, method, path, form, body);
        assert_eq!(code, 400, "{body}: {resp}");
        let err: Value = serde_json::from_str(&resp).unwrap();
        let err = err["error"].as_str().unwrap();
        assert!(err.contains(want), "{body}: {err}");
    }
}

/// The API tables (README.md and docs/) name each route once, and the
/// README says how to do the everyday operations from the CLI.
#[test]
fn docs_list_each_route_once_and_the_cli_operations() {
    let root = support::repo();
    let mut files = vec![root.join("README.md")];
    for e in std::fs::read_dir(root.join("docs")).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "md") {
            files.push(p);
        }
    }
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        let mut seen = std::collections::BTreeSet::new();
        for line in text.lines() {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            if cells.len() > 3 && ["GET", "POST", "PUT", "DELETE"].contains(&cells[1]) {
                let route = (cells[1].to_owned(), cells[2].to_owned());
                assert!(
                    seen.insert(route.clone()),
                    "{}: {route:?} listed twice",
                    f.display()
                );
            }
        }
    }
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    for cmd in [
        "-- drain fra --for 2h",
        "-- auto fra",
        "docs/operations.md#everyday-operations",
    ] {
        assert!(readme.contains(cmd), "README: no {cmd:?}");
    }
    let ops = std::fs::read_to_string(root.join("docs/operations.md")).unwrap();
    for cmd in [
        "## Everyday operations",
        "geosteer drain",
        "geosteer auto",
        "geosteer load",
    ] {
        assert!(ops.contains(cmd), "docs/operations.md: no {cmd:?}");
    }
}
