//! The RUM snippet in a real browser: headless Chromium (through
//! chromedriver) loads a page from another origin that includes the
//! snippet twice; the "edges" are HTTP servers on loopback, the nearest
//! one (lhr) slow, fra fast, the rest in between. The snippet fetches the
//! config, times each edge's object by Resource Timing (the edges send
//! `Timing-Allow-Origin`), requests the resolver probe name and posts one
//! beacon per page view, with no console error; the slower, nearer edge
//! loses the browser's network to fra, and the status page's RUM panel
//! shows the move.
//!
//! Needs `chromium` and `chromedriver`; prints SKIPPED without them unless
//! GEOSTEER_REQUIRE_TOOLS=1.

use crate::support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::browser::{self, log};
use support::http::get_json;
use support::rum::{site, www_edge};
use support::server::AppServer;
use support::tools::need_tools;

const PATIENCE: Duration = Duration::from_secs(60);

/// A tiny HTTP server on loopback: answers every request with `body` after
/// `delay`, with the headers given; keeps the request lines it saw.
struct Origin {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<String>>>,
}

fn origin(
    delay: Duration,
    content_type: &'static str,
    headers: &'static str,
    body: String,
) -> Origin {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            let (log, body) = (log.clone(), body.clone());
            std::thread::spawn(move || {
                let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
                let mut buf = Vec::new();
                let mut b = [0u8; 1024];
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut b) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&b[..n]),
                    }
                }
                let head = String::from_utf8_lossy(&buf).to_string();
                log.lock()
                    .unwrap()
                    .push(head.lines().next().unwrap_or("").to_string());
                std::thread::sleep(delay);
                let _ = write!(
                    s,
                    "HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nCache-Control: no-store\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            });
        }
    });
    Origin { addr, seen }
}

#[test]
fn snippet_in_chromium_moves_the_browsers_network() {
    let _counters = crate::shared_counters();
    if !need_tools(&["chromium", "chromedriver"]) {
        return;
    }
    // The edges' objects: lhr slow, fra fast, every other edge in between.
    let tao = "Timing-Allow-Origin: *\r\nAccess-Control-Allow-Origin: *\r\n";
    let slow = origin(Duration::from_millis(400), "text/plain", tao, "ok".into());
    let fast = origin(Duration::ZERO, "text/plain", tao, "ok".into());
    let mid = origin(Duration::from_millis(200), "text/plain", tao, "ok".into());
    let dir = tempfile::tempdir().unwrap();
    // The browser's network, 127.0.0.0/24, is in London: lhr is nearest.
    let cfg = site(
        dir.path(),
        "  min_samples: 2\n",
        "  127.0.0.0/24: [51.5, -0.12]\n",
    );
    let pools = dir.path().join("zones/cdn.example.pools.yaml");
    let text = std::fs::read_to_string(&pools).unwrap();
    let text = text.replace(
        "http://lhr.edges.test/",
        &format!("http://lhr.edges.test:{}/", slow.addr.port()),
    );
    let text = text.replace(
        "http://fra.edges.test/",
        &format!("http://fra.edges.test:{}/", fast.addr.port()),
    );
    let text = text.replace(
        ".edges.test/rum-object",
        &format!(".edges.test:{}/rum-object", mid.addr.port()),
    );
    std::fs::write(&pools, text).unwrap();
    let app = AppServer::load(&cfg);
    let (dns, http) = (app.dns(), app.http());
    let rum = app.app().rum.as_ref().unwrap().addr;
    assert_eq!(www_edge(dns, "127.0.0.1", Some(("127.0.0.0", 24))).0, "lhr");

    // The customer's page, on another origin, with the snippet twice (it
    // must still run once).
    let tag = format!(
        r#"<script async src="http://rum.cdn.example:{}/rum.js?host=www.cdn.example"></script>"#,
        rum.port()
    );
    let page = origin(
        Duration::ZERO,
        "text/html; charset=utf-8",
        "",
        format!(
            "<!doctype html><html><head><title>shop</title>{tag}</head><body><p>hello</p>{tag}</body></html>"
        ),
    );

    let (driver, port) = browser::driver();
    let caps = browser::caps(
        &dir.path().join("chromium-profile"),
        // Names resolve to loopback, the rest nowhere.
        &["--host-resolver-rules=MAP *.edges.test 127.0.0.1, MAP rum.cdn.example 127.0.0.1, MAP *.rum.cdn.example 127.0.0.1, MAP www.shop.test 127.0.0.1, MAP admin.test 127.0.0.1, MAP * ~NOTFOUND".to_string()],
    );
    let page_url = format!("http://www.shop.test:{}/", page.addr.port());
    app.rt.block_on(async {
        let c = browser::connect(port, caps, PATIENCE).await;
        let c2 = c.clone();
        let r = tokio::spawn(async move {
            // Two page views, each a beacon.
            for view in 1..=2u64 {
                c2.goto(&page_url).await.unwrap();
                let t = Instant::now();
                loop {
                    let s = tokio::task::spawn_blocking(move || get_json(http, "/api/rum")).await.unwrap();
                    if s["beacons"].as_u64() == Some(view) {
                        break;
                    }
                    if t.elapsed() > PATIENCE {
                        let entries = c2
                            .execute("return performance.getEntries().map(e => [e.entryType, e.name, e.duration])", vec![])
                            .await
                            .unwrap();
                        panic!(
                            "no beacon for view {view}: {s}\nconsole: {:?}\nentries: {entries}",
                            log(&c2, "browser").await
                        );
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                // The page is still the page: nothing global, nothing broken.
                let v = c2
                    .execute(
                        "return [document.querySelector('p').textContent, typeof window.host, performance.getEntriesByName('geosteer-rum', 'mark').length, performance.getEntriesByType('resource').some(e => /^http:\\/\\/[0-9a-f]{24}\\.rum\\.cdn\\.example:[0-9]+\\/rum\\/probe$/.test(e.name))]",
                        vec![],
                    )
                    .await
                    .unwrap();
                // The resolver probe name was requested (and landed on the
                // listener, which answered 204).
                assert_eq!(v, json!(["hello", "undefined", 1, true]));
            }
            let console = log(&c2, "browser").await;
            let bad: Vec<&Value> = console
                .iter()
                .filter(|e| e["level"] == "SEVERE" || e["level"] == "WARNING")
                .collect();
            assert!(bad.is_empty(), "console: {bad:?}");
            // The status page's RUM panel shows the network that moved.
            let t = Instant::now();
            while tokio::task::spawn_blocking(move || www_edge(dns, "127.0.0.1", Some(("127.0.0.0", 24))).0)
                .await
                .unwrap()
                != "fra"
            {
                assert!(t.elapsed() < PATIENCE, "fra never won");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            c2.goto(&format!("http://admin.test:{}/", http.port())).await.unwrap();
            let t = Instant::now();
            let row = loop {
                let v = c2
                    .execute(
                        "const r = document.querySelector('#rum-moved tr[data-network=\"127.0.0.0/24\"]'); return !document.getElementById('rum').hidden && r ? Array.from(r.cells).map(c => c.textContent) : null",
                        vec![],
                    )
                    .await
                    .unwrap();
                if !v.is_null() {
                    break v;
                }
                assert!(t.elapsed() < PATIENCE, "no RUM panel row");
                tokio::time::sleep(Duration::from_millis(200)).await;
            };
            assert_eq!(row[1], "lhr");
            assert_eq!(row[2], "fra");
            assert_eq!(row[3], "2");
            let summary = c2
                .execute("return document.getElementById('rum-summary').textContent", vec![])
                .await
                .unwrap();
            assert!(summary.as_str().unwrap().contains("1 client networks steer"), "{summary}");
            let console = log(&c2, "browser").await;
            assert!(
                console.iter().all(|e| e["level"] != "SEVERE"),
                "status page console: {console:?}"
            );
        })
        .await;
        let _ = c.close().await;
        if let Err(e) = r {
            std::panic::resume_unwind(e.into_panic());
        }
    });
    drop(driver);

    // One beacon per view, though the page has the snippet twice.
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(get_json(http, "/api/rum")["beacons"], 2);
    // The edges were fetched with a cache-buster.
    for o in [&slow, &fast] {
        let seen = o.seen.lock().unwrap().clone();
        assert_eq!(seen.len(), 2, "{seen:?}");
        assert!(
            seen.iter().all(|l| l.starts_with("GET /rum-object?gsrum=")),
            "{seen:?}"
        );
    }
    // What the browser measured: lhr's 400 ms delay shows, fra's absence too.
    let c = get_json(http, "/api/rum?client=127.0.0.0/24");
    let edges = c["networks"][0]["zones"][0]["edges"]
        .as_array()
        .unwrap()
        .clone();
    let ms = |name: &str| {
        edges
            .iter()
            .find(|e| e["edge"] == name)
            .and_then(|e| e["rtt_ms"].as_f64())
            .unwrap_or_else(|| panic!("{name} measured: {c}"))
    };
    assert!(ms("lhr") >= 350.0, "{c}");
    assert!(ms("fra") < 150.0, "{c}");
    // The slower, nearer edge has lost the network (checked above, before
    // the status page showed it).
    assert_eq!(www_edge(dns, "127.0.0.1", Some(("127.0.0.0", 24))).0, "fra");
    app.shutdown();
}
