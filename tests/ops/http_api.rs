//! The HTTP listener: `/metrics` is valid Prometheus text and its counters
//! move, `/api/status` and `/healthz` answer, tokens are enforced,
//! `geosteer status` prints its table, and the sampled query log writes
//! (or, off, doesn't).

use crate::support;

use std::collections::HashMap;
use std::net::{SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use support::dns::{self, wire_query};
use support::http::{get, http_with};
use support::server::{AppServer, write_zone_dir};

use hickory_proto::op::Message;
use hickory_proto::rr::RecordType;

const DEMO_DB: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/geodb/demo-city.mmdb");
const BIN: &str = env!("CARGO_BIN_EXE_geosteer");
const POOLS: &str = "edges:\n  lon: { addresses: [192.0.2.1], location: [51.5, -0.1] }\n  fra: { addresses: [192.0.2.2], location: [50.1, 8.7] }\n\
nets:\n  127.0.0.0/8: [51.5, -0.1]\n\
hosts:\n  www: { edges: [lon, fra] }\n  img: { answers: 2 }\n";

/// A running server and its directory (removed after the server stops).
struct Server {
    _app: AppServer,
    root: PathBuf,
    dns: SocketAddr,
    http: SocketAddr,
    _dir: tempfile::TempDir,
}

fn start(extra_cfg: &str) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    std::fs::copy(DEMO_DB, root.join("demo.mmdb")).unwrap();
    let cfg_path = write_zone_dir(
        &root,
        "h.example",
        POOLS,
        &format!(
            "listen: [127.0.0.1:0]\nzones: zones\ngeodb: demo.mmdb\nhttp: 127.0.0.1:0\nworkers: 1\n{extra_cfg}"
        ),
    );
    let app = AppServer::load(&cfg_path);
    Server {
        root,
        dns: app.dns(),
        http: app.http(),
        _app: app,
        _dir: dir,
    }
}

/// One query over UDP, optionally with an ECS /24.
fn ask(server: SocketAddr, name: &str, qtype: RecordType, ecs: Option<&str>) -> Message {
    let ecs = ecs.map(|net| (net.parse().unwrap(), 24));
    dns::ask(
        server,
        &wire_query(0x1234, name, u16::from(qtype), None, ecs),
    )
}

/// Checks Prometheus text exposition format line by line and returns the
/// samples as `name{labels}` → value.
fn parse_prometheus(text: &str) -> HashMap<String, f64> {
    fn is_name(s: &str) -> bool {
        let mut c = s.chars();
        c.next()
            .is_some_and(|f| f.is_ascii_alphabetic() || f == '_' || f == ':')
            && c.all(|x| x.is_ascii_alphanumeric() || x == '_' || x == ':')
    }
    let mut out = HashMap::new();
    let mut typed = HashMap::new();
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        if line.is_empty() {
            continue;
        }
        if let Some(rest) = line.strip_prefix("# ") {
            let mut parts = rest.splitn(3, ' ');
            let kind = parts.next().unwrap();
            let name = parts.next().unwrap_or("");
            let arg = parts.next().unwrap_or("");
            match kind {
                "HELP" => assert!(
                    is_name(name) && !arg.is_empty(),
                    "line {n}: bad HELP: {line}"
                ),
                "TYPE" => {
                    assert!(is_name(name), "line {n}: bad TYPE name: {line}");
                    assert!(
                        ["counter", "gauge", "histogram", "summary", "untyped"].contains(&arg),
                        "line {n}: bad TYPE: {line}"
                    );
                    assert!(
                        typed.insert(name.to_string(), arg.to_string()).is_none(),
                        "line {n}: TYPE twice: {line}"
                    );
                }
                _ => {}
            }
            continue;
        }
        // name{labels} value
        let (series, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("line {n}: no value: {line}"));
        let v: f64 = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            "NaN" => f64::NAN,
            v => v
                .parse()
                .unwrap_or_else(|_| panic!("line {n}: bad value: {line}")),
        };
        let name = match series.split_once('{') {
            Some((name, labels)) => {
                let labels = labels
                    .strip_suffix('}')
                    .unwrap_or_else(|| panic!("line {n}: unclosed labels: {line}"));
                // label="value" pairs, values quoted, separated by commas.
                let mut rest = labels;
                while !rest.is_empty() {
                    let (k, after) = rest
                        .split_once("=\"")
                        .unwrap_or_else(|| panic!("line {n}: bad label: {line}"));
                    assert!(is_name(k), "line {n}: bad label name {k:?}");
                    let mut end = None;
                    let mut esc = false;
                    for (j, ch) in after.char_indices() {
                        match (esc, ch) {
                            (true, _) => esc = false,
                            (false, '\\') => esc = true,
                            (false, '"') => {
                                end = Some(j);
                                break;
                            }
                            _ => {}
                        }
                    }
                    let end =
                        end.unwrap_or_else(|| panic!("line {n}: unterminated label value: {line}"));
                    rest = &after[end + 1..];
                    rest = rest.strip_prefix(',').unwrap_or(rest);
                }
                name
            }
            None => series,
        };
        assert!(is_name(name), "line {n}: bad metric name: {line}");
        out.insert(series.to_string(), v);
    }
    assert!(!out.is_empty(), "no samples");
    out
}

fn metrics(srv: &Server) -> HashMap<String, f64> {
    let (code, text) = get(srv.http, "/metrics");
    assert_eq!(code, 200);
    parse_prometheus(&text)
}

fn val(m: &HashMap<String, f64>, series: &str) -> f64 {
    m.get(series).copied().unwrap_or(0.0)
}

#[test]
fn prometheus_parser_rejects_garbage() {
    for bad in [
        "foo{a=\"1\" 1",
        "foo bar",
        "# TYPE foo nonsense",
        "9foo 1",
        "foo{a=1} 1",
    ] {
        assert!(
            std::panic::catch_unwind(|| parse_prometheus(bad)).is_err(),
            "{bad:?} accepted"
        );
    }
    assert_eq!(
        parse_prometheus("# HELP a_b x y\n# TYPE a_b counter\na_b{x=\"q\\\"z\",y=\"\"} 3\n")["a_b{x=\"q\\\"z\",y=\"\"}"],
        3.0
    );
}

#[test]
fn metrics_parse_and_move() {
    let srv = start("");
    // Names every series the issue asks for, present from the start.
    let m0 = metrics(&srv);
    let text = get(srv.http, "/metrics").1;
    for name in [
        "geosteer_queries_total",
        "geosteer_steered_answers_total",
        "geosteer_steered_edge_answers_total",
        "geosteer_ecs_queries_total",
        "geosteer_truncated_total",
        "geosteer_dropped_total",
        "geosteer_tcp_connections_total",
        "geosteer_edge_state",
        "geosteer_reloads_total",
        "geosteer_reload_failures_total",
        "geosteer_snapshot_age_seconds",
        "geosteer_geodb_build_epoch_seconds",
    ] {
        assert!(
            text.contains(&format!("\n{name}")) || text.starts_with(name),
            "{name} missing from /metrics"
        );
    }
    assert!(val(&m0, "geosteer_geodb_build_epoch_seconds") > 1.0e9);

    let www = "geosteer_steered_answers_total{zone=\"h.example.\",host=\"www\"}";
    let lon = "geosteer_steered_edge_answers_total{zone=\"h.example.\",edge=\"lon\"}";
    let noerr_a = "geosteer_queries_total{transport=\"udp\",qtype=\"A\",rcode=\"NOERROR\"}";
    let nx_a = "geosteer_queries_total{transport=\"udp\",qtype=\"A\",rcode=\"NXDOMAIN\"}";
    let ecs = "geosteer_ecs_queries_total{transport=\"udp\"}";
    for _ in 0..3 {
        ask(srv.dns, "www.h.example.", RecordType::A, None);
    }
    ask(srv.dns, "www.h.example.", RecordType::A, Some("192.0.2.0"));
    ask(srv.dns, "nope.h.example.", RecordType::A, None);
    // A malformed packet: header only, QDCOUNT 1 but no question.
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    sock.send_to(&[0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0], srv.dns)
        .unwrap();
    let mut buf = [0u8; 512];
    let _ = sock.recv(&mut buf);

    let r = Command::new(BIN)
        .args([
            "reload",
            "--http",
            &srv.http.to_string(),
            "-c",
            "/nonexistent",
        ])
        .output()
        .unwrap();
    assert!(r.status.success());
    let m1 = metrics(&srv);
    // Other tests in this process share the recorder: counters only grow,
    // so check growth by at least what this test did.
    assert!(val(&m1, noerr_a) - val(&m0, noerr_a) >= 4.0);
    assert!(val(&m1, nx_a) - val(&m0, nx_a) >= 1.0);
    assert!(
        val(&m1, www) - val(&m0, www) >= 4.0,
        "steered by host did not move"
    );
    assert!(
        val(&m1, lon) - val(&m0, lon) >= 4.0,
        "steered by edge did not move"
    );
    assert!(val(&m1, ecs) - val(&m0, ecs) >= 1.0);
    assert!(val(&m1, "geosteer_reloads_total") - val(&m0, "geosteer_reloads_total") >= 1.0);
    let formerr: f64 = m1
        .iter()
        .filter(|(k, _)| k.contains("rcode=\"FORMERR\"") && k.contains("transport=\"udp\""))
        .map(|(_, v)| v)
        .sum();
    let dropped = val(&m1, "geosteer_dropped_total{transport=\"udp\"}");
    assert!(
        formerr + dropped >= 1.0,
        "the malformed packet was not counted"
    );
}

#[test]
fn status_and_healthz() {
    let srv = start("");
    let (code, body) = get(srv.http, "/healthz");
    assert_eq!(code, 200);
    assert!(body.starts_with("ok generation="), "{body}");

    let (code, body) = get(srv.http, "/api/status");
    assert_eq!(code, 200);
    let st: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(st["version"], env!("CARGO_PKG_VERSION"));
    assert!(st["uptime_secs"].is_u64());
    assert!(st["config"].as_str().unwrap().ends_with("geosteer.yaml"));
    assert!(st["geodb"]["path"].as_str().unwrap().ends_with("demo.mmdb"));
    assert!(st["geodb"]["build_epoch"].as_u64().unwrap() > 1_000_000_000);
    assert!(st["geodb"]["node_count"].as_u64().unwrap() > 0);
    assert!(st["geodb"]["build_date"].as_str().unwrap().ends_with('Z'));
    assert_eq!(st["last_reload"]["ok"], true);
    assert_eq!(st["last_reload"]["trigger"], "start");
    let zone = &st["zones"][0];
    assert_eq!(zone["name"], "h.example.");
    assert_eq!(zone["edges"], 2);
    assert_eq!(zone["hosts"], serde_json::json!(["www", "img"]));

    let (code, _) = get(srv.http, "/nope");
    assert_eq!(code, 404);

    // geosteer status renders both tables.
    let out = Command::new(BIN)
        .args([
            "status",
            "--http",
            &srv.http.to_string(),
            "-c",
            "/nonexistent",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("last reload: ok (start"), "{text}");
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines
            .iter()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["h.example.", "2", "2", "4"]),
        "{text}"
    );
    assert!(
        lines.iter().any(|l| l.starts_with("h.example.")
            && l.split_whitespace().nth(1) == Some("lon")
            && l.contains(" up ")),
        "{text}"
    );
    // A server that isn't there: non-zero exit.
    let out = Command::new(BIN)
        .args(["status", "--http", "127.0.0.1:1", "-c", "/nonexistent"])
        .output()
        .unwrap();
    assert!(!out.status.success());
}

#[test]
fn token_guards_mutations() {
    let srv = start("http_token: s3cret\n");
    let (code, _, _) = http_with(srv.http, "POST", "/api/reload", "", "");
    assert_eq!(code, 401);
    let (code, _, _) = http_with(
        srv.http,
        "POST",
        "/api/reload",
        "Authorization: Bearer wrong\r\n",
        "",
    );
    assert_eq!(code, 401);
    let (code, _, body) = http_with(
        srv.http,
        "POST",
        "/api/reload",
        "Authorization: Bearer s3cret\r\n",
        "",
    );
    assert_eq!(code, 200, "{body}");
    // Reads stay open.
    assert_eq!(get(srv.http, "/api/status").0, 200);
    // The CLI takes the token from the environment.
    let run = |token: Option<&str>| {
        let mut c = Command::new(BIN);
        c.args([
            "reload",
            "--http",
            &srv.http.to_string(),
            "-c",
            "/nonexistent",
        ]);
        match token {
            Some(t) => c.env("GEOSTEER_HTTP_TOKEN", t),
            None => c.env_remove("GEOSTEER_HTTP_TOKEN"),
        };
        c.output().unwrap()
    };
    assert!(run(Some("s3cret")).status.success());
    assert!(!run(None).status.success());
}

fn read_lines(path: &std::path::Path, want: usize) -> Vec<serde_json::Value> {
    let start = Instant::now();
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        if lines.len() >= want || start.elapsed() > Duration::from_secs(2) {
            return lines;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn query_log_sampled_all() {
    let srv = start("query_log: { sample: 1.0, path: q.log }\n");
    ask(srv.dns, "www.h.example.", RecordType::A, Some("192.0.2.0"));
    ask(srv.dns, "nope.h.example.", RecordType::AAAA, None);
    let lines = read_lines(&srv.root.join("q.log"), 2);
    assert_eq!(lines.len(), 2, "{lines:?}");
    let www = lines
        .iter()
        .find(|l| l["name"] == "www.h.example.")
        .expect("www line");
    assert_eq!(www["type"], "A");
    assert_eq!(www["rcode"], "NOERROR");
    assert_eq!(www["client"], "127.0.0.1");
    assert_eq!(www["ecs"], "192.0.2.0/24");
    assert_eq!(www["host"], "www");
    assert!(
        www["edges"].as_array().is_some_and(|e| !e.is_empty()),
        "{www}"
    );
    assert!(www["scope"].is_u64());
    assert!(www["latency_us"].as_f64().unwrap() > 0.0);
    let nx = lines
        .iter()
        .find(|l| l["name"] == "nope.h.example.")
        .expect("nx line");
    assert_eq!(nx["rcode"], "NXDOMAIN");
    assert_eq!(nx["type"], "AAAA");
    assert_eq!(nx["edges"], serde_json::json!([]));
}

#[test]
fn query_log_off_writes_nothing() {
    // Sample 0 starts no writer at all; a configured path stays absent.
    let srv = start("query_log: { sample: 0.0, path: q.log }\n");
    for _ in 0..20 {
        ask(srv.dns, "www.h.example.", RecordType::A, None);
    }
    assert!(support::wait::holds_for(Duration::from_millis(200), || {
        !srv.root.join("q.log").exists()
    }));
}
