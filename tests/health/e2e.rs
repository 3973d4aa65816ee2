//! End to end: real HTTP edges on loopback go down, come back, get
//! overloaded and drained, and the answer seen over real UDP follows.

use crate::support;

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use geosteer::App;
use geosteer::ServerConfig;
use hickory_proto::op::Message;
use hickory_proto::rr::{Name, RData};
use support::dns::{self, addresses, wire_query};
use support::server::write_zone_dir;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// A tiny HTTP edge: answers 200 with an `X-Edge-Load` header while up.
struct EdgeServer {
    load: Arc<AtomicU64>,
    up: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl EdgeServer {
    fn spawn(listener: TcpListener) -> EdgeServer {
        let load = Arc::new(AtomicU64::new(0.1f64.to_bits()));
        let up = Arc::new(AtomicBool::new(true));
        let (l, u) = (load.clone(), up.clone());
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut s, _)) = listener.accept().await else {
                    return;
                };
                let (l, u) = (l.clone(), u.clone());
                tokio::spawn(async move {
                    let mut buf = [0u8; 1024];
                    let _ = s.read(&mut buf).await;
                    if !u.load(Ordering::SeqCst) {
                        return; // dead edge: hang up without a reply
                    }
                    let load = f64::from_bits(l.load(Ordering::SeqCst));
                    let resp = format!(
                        "HTTP/1.1 200 OK\r\nX-Edge-Load: {load}\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
                    );
                    let _ = s.write_all(resp.as_bytes()).await;
                });
            }
        });
        EdgeServer { load, up, task }
    }
    fn set_load(&self, l: f64) {
        self.load.store(l.to_bits(), Ordering::SeqCst);
    }
}

/// Binds the same port on two loopback addresses (edges differ by address,
/// a check has one port).
async fn bind_two() -> (TcpListener, TcpListener, u16) {
    for _ in 0..50 {
        let a = TcpListener::bind("127.0.0.2:0").await.unwrap();
        let port = a.local_addr().unwrap().port();
        if let Ok(b) = TcpListener::bind(("127.0.0.3", port)).await {
            return (a, b, port);
        }
    }
    panic!("no common free port on 127.0.0.2 and 127.0.0.3");
}

fn write_files(dir: &Path, port: u16, extra_hosts: &str) {
    write_zone_dir(
        dir,
        "t.example",
        &format!(
            "checks:\n  web: {{ type: http, port: {port}, path: /health, interval: 200ms, timeout: 150ms, rise: 2, fall: 2, load_header: X-Edge-Load }}\n\
edges:\n  near: {{ addresses: [127.0.0.2], location: [51.5, -0.1], check: web }}\n  far: {{ addresses: [127.0.0.3], location: [50.1, 8.7], check: web }}\n\
nets:\n  10.0.0.0/8: [51.5, -0.1]\n\
hosts:\n  www: {{ edges: [near, far], ttl: 5 }}\n{extra_hosts}"
        ),
        "listen: [127.0.0.1:0]\nzones: zones\nhttp: 127.0.0.1:0\nworkers: 1\n",
    );
}

/// One UDP query with ECS 10.1.2.0/24 (placed in London by `nets`).
/// Blocking: the server runs on this test's runtime, so in place.
fn ask(server: SocketAddr, name: &str) -> Message {
    let q = wire_query(
        0x4242,
        name,
        1,
        None,
        Some(("10.1.2.0".parse().unwrap(), 24)),
    );
    tokio::task::block_in_place(|| dns::ask(server, &q))
}

/// Polls until the answer for `name` is `want`; returns how long it took.
async fn wait_for(server: SocketAddr, name: &str, want: &str, limit: Duration) -> Duration {
    let start = Instant::now();
    loop {
        let got = addresses(&ask(server, name));
        if got.first().map(|a| a.to_string()).as_deref() == Some(want) {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < limit,
            "{name}: still {got:?} after {limit:?}, want {want}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// An API call (blocking, in place, like [`ask`]): (status, body).
fn http(addr: SocketAddr, method: &str, path: &str, body: &str) -> (u16, String) {
    tokio::task::block_in_place(|| support::http::http(addr, method, path, body))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_follow_edge_health() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, port) = bind_two().await;
    let near = EdgeServer::spawn(a);
    let far = EdgeServer::spawn(b);
    write_files(dir.path(), port, "");
    let cfg = ServerConfig::load(&dir.path().join("geosteer.yaml")).unwrap();
    let app = App::start(cfg).await.unwrap();
    let dns = app.running.udp_addr();
    let api = app.http_addr.unwrap();

    // Healthy: the nearest edge answers, with the host's TTL.
    let m = ask(dns, "www.t.example.");
    assert_eq!(addresses(&m), vec!["127.0.0.2".parse::<IpAddr>().unwrap()]);
    assert!(m.answers[0].ttl <= 5);

    // Kill the near edge (it hangs up without replying): gone within
    // fall × interval + timeout = 2 × 200 + 150 ms (plus jitter and slack).
    near.up.store(false, Ordering::SeqCst);
    let t = wait_for(dns, "www.t.example.", "127.0.0.3", Duration::from_secs(3)).await;
    assert!(t < Duration::from_millis(1500), "took {t:?}");
    let (_, edges) = http(api, "GET", "/api/edges", "");
    assert!(edges.contains("\"down\""), "{edges}");

    // Recovery after rise successes.
    near.up.store(true, Ordering::SeqCst);
    wait_for(dns, "www.t.example.", "127.0.0.2", Duration::from_secs(3)).await;

    // Overload via the probe's load header sheds clients; between the
    // thresholds nothing moves; below recover they come back.
    near.set_load(0.95);
    wait_for(dns, "www.t.example.", "127.0.0.3", Duration::from_secs(3)).await;
    near.set_load(0.80);
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(
        addresses(&ask(dns, "www.t.example."))[0].to_string(),
        "127.0.0.3",
        "hysteresis: 0.80 is above recover"
    );
    near.set_load(0.50);
    wait_for(dns, "www.t.example.", "127.0.0.2", Duration::from_secs(3)).await;

    // A fed load drives overload and expires after its TTL.
    let (code, body) = http(
        api,
        "PUT",
        "/api/edges/near/load",
        r#"{"load": 0.97, "ttl": "1s"}"#,
    );
    assert_eq!(code, 200, "{body}");
    wait_for(dns, "www.t.example.", "127.0.0.3", Duration::from_secs(1)).await;
    wait_for(dns, "www.t.example.", "127.0.0.2", Duration::from_secs(3)).await;

    // Admin drain moves clients away and survives a restart.
    let (code, body) = http(
        api,
        "POST",
        "/api/edges/near/admin",
        r#"{"state": "drain"}"#,
    );
    assert_eq!(code, 200, "{body}");
    wait_for(dns, "www.t.example.", "127.0.0.3", Duration::from_secs(1)).await;
    app.shutdown().await;

    let cfg = ServerConfig::load(&dir.path().join("geosteer.yaml")).unwrap();
    let app = App::start(cfg).await.unwrap();
    let dns = app.running.udp_addr();
    let api = app.http_addr.unwrap();
    assert_eq!(
        addresses(&ask(dns, "www.t.example."))[0].to_string(),
        "127.0.0.3",
        "drain persisted"
    );
    let (code, _) = http(api, "POST", "/api/edges/near/admin", r#"{"state": "auto"}"#);
    assert_eq!(code, 200);
    wait_for(dns, "www.t.example.", "127.0.0.2", Duration::from_secs(1)).await;
    let (code, _) = http(api, "POST", "/api/edges/nope/admin", r#"{"state": "down"}"#);
    assert_eq!(code, 404);
    let (code, _) = http(
        api,
        "POST",
        "/api/edges/near/admin",
        r#"{"state": "sideways"}"#,
    );
    assert!(code == 400 || code == 422, "{code}");
    app.shutdown().await;
    near.task.abort();
    far.task.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_down_modes() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, port) = bind_two().await;
    let near = EdgeServer::spawn(a);
    let far = EdgeServer::spawn(b);
    let hosts = concat!(
        "  serve: { edges: [near, far], all_down: serve }\n",
        "  fb: { edges: [near, far], all_down: fallback, fallback: elsewhere.example.net. }\n",
        "  sf: { edges: [near, far], all_down: servfail }\n",
        "  empty: { edges: [near, far], all_down: empty }\n",
    );
    write_files(dir.path(), port, hosts);
    let cfg = ServerConfig::load(&dir.path().join("geosteer.yaml")).unwrap();
    let app = App::start(cfg).await.unwrap();
    let dns = app.running.udp_addr();

    near.up.store(false, Ordering::SeqCst);
    far.up.store(false, Ordering::SeqCst);
    let start = Instant::now();
    loop {
        let m = ask(dns, "sf.t.example.");
        if m.metadata.response_code == hickory_proto::op::ResponseCode::ServFail {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(3),
            "edges never went down"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // serve: fail open, nearest first.
    assert_eq!(
        addresses(&ask(dns, "serve.t.example."))[0].to_string(),
        "127.0.0.2"
    );
    // fallback: the CNAME.
    let m = ask(dns, "fb.t.example.");
    assert_eq!(m.answers.len(), 1);
    assert_eq!(
        m.answers[0].data,
        RData::CNAME(hickory_proto::rr::rdata::CNAME(
            Name::from_ascii("elsewhere.example.net.").unwrap()
        ))
    );
    // empty: NOERROR, nothing at all.
    let m = ask(dns, "empty.t.example.");
    assert_eq!(
        m.metadata.response_code,
        hickory_proto::op::ResponseCode::NoError
    );
    assert!(m.answers.is_empty() && m.authorities.is_empty());
    app.shutdown().await;
    near.task.abort();
    far.task.abort();
}
