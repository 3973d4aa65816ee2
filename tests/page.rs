//! The status page in a real browser: headless Chromium driven through
//! chromedriver (WebDriver, with `fantoccini`), against a server on the
//! demo zone and DB.
//!
//! One test, in steps, so Chromium starts once: the page loads with no
//! console error and no request outside the server; one marker per edge
//! with its state; countries coloured as the server's `decide` says (GB →
//! lhr, JP → nrt, …); an edge set down through the API shows on the marker
//! and the countries within 3 s; a what-if matches `explain` for the same
//! clients once made real; and a screenshot that is not blank.
//!
//! `GEOSTEER_SCREENSHOT=path.png` also writes the screenshot there (how
//! docs/status-page.png is made).

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use fantoccini::Client;
use serde_json::{Value, json};
use support::browser::log;
use support::dns::udp_raw;
use support::http::get_json;
use support::server::AppServer;
use support::tools::need_tools;

/// Patience on a loaded 2-core machine (the 3 s budget below is separate).
const PATIENCE: Duration = Duration::from_secs(30);

fn set_admin(addr: SocketAddr, edge: &str, state: &str) {
    let (code, _, body) = support::http::http_with(
        addr,
        "POST",
        &format!("/api/edges/{edge}/admin"),
        "",
        &json!({ "state": state }).to_string(),
    );
    assert_eq!(code, 200, "{body}");
}

async fn js(c: &Client, script: &str) -> Value {
    c.execute(script, vec![]).await.unwrap()
}

/// Polls `script` until it returns something truthy.
async fn until_js(c: &Client, what: &str, script: &str, limit: Duration) -> (Value, Duration) {
    let t = Instant::now();
    loop {
        let v = js(c, script).await;
        if !(v.is_null() || v == json!(false) || v == json!("")) {
            return (v, t.elapsed());
        }
        assert!(
            t.elapsed() < limit,
            "timed out ({limit:?}) waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// data-edge of every country shape, by code.
async fn page_countries(c: &Client) -> BTreeMap<String, String> {
    let v = js(
        c,
        "const o = {}; document.querySelectorAll('.country').forEach(p => o[p.dataset.country] = p.dataset.edge || ''); return o;",
    )
    .await;
    serde_json::from_value(v).unwrap()
}

fn api_countries(v: &Value) -> BTreeMap<String, String> {
    v["countries"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(cc, _)| cc.as_str() != "AQ")
        .map(|(cc, a)| (cc.clone(), a["edge"].as_str().unwrap_or("").to_owned()))
        .collect()
}

/// A server on a copy of the demo zone (so a test can break it) and the
/// demo DB; watching off, reloads by the API.
fn demo() -> (tempfile::TempDir, AppServer) {
    let dir = tempfile::tempdir().unwrap();
    let root = support::repo();
    std::fs::create_dir(dir.path().join("zones")).unwrap();
    for f in ["cdn.example.zone", "cdn.example.pools.yaml"] {
        std::fs::copy(root.join("zones").join(f), dir.path().join("zones").join(f)).unwrap();
    }
    let cfg = dir.path().join("geosteer.yaml");
    std::fs::write(
        &cfg,
        format!(
            "listen: [127.0.0.1:0]\nzones: zones\ngeodb: {}\nhttp: 127.0.0.1:0\nworkers: 1\nwatch: false\n",
            root.join("geodb/demo-city.mmdb").display()
        ),
    )
    .unwrap();
    (dir, AppServer::load(&cfg))
}

/// Runs `steps` in headless Chromium (through chromedriver, both ended
/// when it returns, a failing step included), with its profile in `dir`.
fn in_chromium<F, Fut>(rt: &tokio::runtime::Runtime, dir: &std::path::Path, steps: F)
where
    F: FnOnce(Client) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (driver, port) = support::browser::driver();
    let caps = support::browser::caps(
        &dir.join("chromium-profile"),
        &["--window-size=1400,1000".to_string()],
    );
    rt.block_on(async {
        let c = support::browser::connect(port, caps, PATIENCE).await;
        // The steps run as a task so that a failing one still ends the
        // session (and so Chromium) before the panic goes on.
        let r = tokio::spawn(steps(c.clone())).await;
        let _ = c.close().await;
        if let Err(e) = r {
            std::panic::resume_unwind(e.into_panic());
        }
    });
    drop(driver);
}

#[test]
fn status_page_in_chromium() {
    if !need_tools(&["chromium", "chromedriver"]) {
        return;
    }
    let (dir, srv) = demo();
    let http = srv.http();
    let dns = srv.dns();
    let root = dir.path().to_path_buf();
    in_chromium(&srv.rt, dir.path(), move |c| async move {
        steps(&c, http, dns, &root).await
    });
    srv.shutdown();
}

async fn steps(c: &Client, http: SocketAddr, dns: SocketAddr, root: &std::path::Path) {
    let origin = format!("http://{http}");
    c.goto(&format!("{origin}/")).await.unwrap();
    until_js(
        c,
        "the first update",
        "return document.body.dataset.updated",
        PATIENCE,
    )
    .await;

    // 1. One marker per located edge, with its state; partner CDNs have no
    // place on the map and are listed beside it.
    let edges = get_json(http, "/api/edges");
    let view = get_json(http, "/api/view");
    let partners: BTreeSet<String> = view["edges"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["cname"].is_string())
        .map(|e| e["name"].as_str().unwrap().to_owned())
        .collect();
    assert!(
        partners.contains("akamai"),
        "the demo's partner: {partners:?}"
    );
    let want: BTreeSet<(String, String)> = edges
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| !partners.contains(e["name"].as_str().unwrap()))
        .map(|e| {
            (
                e["name"].as_str().unwrap().to_owned(),
                e["effective"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let markers = js(
        c,
        "return Array.from(document.querySelectorAll('.marker')).map(m => [m.dataset.edge, m.dataset.state, m.getAttribute('tabindex'), m.getAttribute('aria-label')]);",
    )
    .await;
    let markers = markers.as_array().unwrap();
    assert_eq!(markers.len(), want.len(), "{markers:?}");
    let have: BTreeSet<(String, String)> = markers
        .iter()
        .map(|m| (m[0].as_str().unwrap().into(), m[1].as_str().unwrap().into()))
        .collect();
    assert_eq!(have, want);
    for m in markers {
        assert_eq!(m[2], "0", "markers are keyboard-focusable: {m:?}");
        assert!(m[3].as_str().unwrap().starts_with("edge "), "{m:?}");
    }
    // A plain table of every edge, partners included, under the map.
    let rows = js(
        c,
        "return document.querySelectorAll('#edge-rows tr[data-edge]').length",
    )
    .await;
    assert_eq!(rows, json!(edges.as_array().unwrap().len()));
    let listed = js(c, "return document.getElementById('partners').textContent").await;
    assert!(
        listed.as_str().unwrap().contains("akamai"),
        "partners listed beside the map: {listed}"
    );

    // 2. Countries coloured as the server's decide says, for the first host
    // (www: every edge a candidate, the nearest answers).
    let view = get_json(http, "/api/view");
    assert_eq!(view["host"], "www");
    let page = page_countries(c).await;
    assert_eq!(page, api_countries(&view));
    for (cc, edge) in [
        ("GB", "lhr"),
        ("JP", "nrt"),
        ("DE", "fra"),
        ("FR", "cdg"),
        ("US", "iad"),
        ("BR", "gru"),
        ("ZA", "jnb"),
        ("AU", "syd"),
        ("IN", "bom"),
        ("TH", "sin"),
    ] {
        assert_eq!(page[cc], edge, "{cc}");
    }
    // Hovering or focusing a marker shows its details.
    js(
        c,
        "document.querySelector('.marker[data-edge=lhr]').dispatchEvent(new FocusEvent('focus'));",
    )
    .await;
    let tip = js(c, "return document.getElementById('tip').textContent").await;
    let tip = tip.as_str().unwrap();
    assert!(
        tip.contains("192.0.2.10") && tip.contains("state: up"),
        "{tip}"
    );
    js(
        c,
        "document.querySelector('.marker[data-edge=lhr]').dispatchEvent(new FocusEvent('blur'));",
    )
    .await;

    // 3. lhr down through the API: its marker and its countries change
    // within 3 s (the page polls once a second).
    let t = Instant::now();
    set_admin(http, "lhr", "down");
    until_js(
        c,
        "lhr's marker to show down",
        "return document.querySelector('.marker[data-edge=lhr]').dataset.state === 'down'",
        Duration::from_secs(3),
    )
    .await;
    until_js(
        c,
        "GB to move off lhr",
        "const e = document.querySelector('[data-country=GB]').dataset.edge; return e && e !== 'lhr'",
        Duration::from_secs(3),
    )
    .await;
    let took = t.elapsed();
    eprintln!("status page: edge down → marker and countries changed in {took:?}");
    assert!(took < Duration::from_secs(3), "{took:?}");
    let page = page_countries(c).await;
    assert!(!page.values().any(|e| e == "lhr"), "{page:?}");
    assert_eq!(page, api_countries(&get_json(http, "/api/view")));
    set_admin(http, "lhr", "auto");
    until_js(
        c,
        "GB back on lhr",
        "return document.querySelector('[data-country=GB]').dataset.edge === 'lhr'",
        PATIENCE,
    )
    .await;

    // 4. What-if: fra down, chosen on the page. Nothing changes for real…
    js(
        c,
        "const s = document.getElementById('wi-edge'); s.value = 'fra'; s.dispatchEvent(new Event('change'));",
    )
    .await;
    until_js(
        c,
        "the what-if to show",
        "return document.body.dataset.whatif === JSON.stringify({down: 'fra'}) && document.querySelector('[data-country=DE]').dataset.edge !== 'fra'",
        PATIENCE,
    )
    .await;
    let whatif = get_json(http, "/api/whatif?zone=cdn.example&host=www&down=fra");
    let predicted = api_countries(&whatif);
    // The page may be one poll behind its own what-if fetch; wait for it.
    let t = Instant::now();
    while page_countries(c).await != predicted {
        assert!(
            t.elapsed() < PATIENCE,
            "the page's what-if never matched the API's"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let banner = js(
        c,
        "return document.getElementById('whatif-banner').textContent",
    )
    .await;
    assert!(
        banner
            .as_str()
            .unwrap()
            .contains("nothing has been changed"),
        "{banner}"
    );
    let fra = get_json(http, "/api/edges");
    let fra = fra
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "fra")
        .unwrap();
    assert_eq!(fra["effective"], "up", "a what-if changes nothing");
    assert_eq!(
        js(
            c,
            "return document.querySelector('.marker[data-edge=fra]').dataset.state"
        )
        .await,
        "up"
    );

    // …and made real, explain agrees for clients of those countries. (Each
    // country is steered at its centroid, so clients are taken from the
    // demo DB's cities that sit well inside theirs; a city far from its
    // country's centroid — Moscow, Mountain View — can differ.)
    set_admin(http, "fra", "down");
    for (ecs, cc) in [
        ("198.51.100.0/24", "DE"),  // Frankfurt
        ("203.0.113.0/24", "FR"),   // Paris
        ("192.0.2.0/24", "GB"),     // London
        ("198.18.7.0/24", "JP"),    // Tokyo
        ("198.18.2.0/24", "US"),    // Ashburn
        ("114.114.114.0/24", "CN"), // Nanjing
    ] {
        let e = get_json(
            http,
            &format!("/api/explain?name=www.cdn.example&ecs={ecs}"),
        );
        assert_eq!(e["location"]["country"], cc, "{e}");
        assert_eq!(
            e["edges"][0].as_str().unwrap(),
            predicted[cc],
            "what-if said {cc} → {}, explain for {ecs} says {}",
            predicted[cc],
            e["edges"]
        );
    }
    assert_eq!(predicted["DE"], "cdg");
    set_admin(http, "fra", "auto");
    js(
        c,
        "const s = document.getElementById('wi-edge'); s.value = ''; s.dispatchEvent(new Event('change'));",
    )
    .await;
    until_js(
        c,
        "the live map back",
        "return document.body.dataset.whatif === '' && document.querySelector('[data-country=DE]').dataset.edge === 'fra' && document.querySelector('.marker[data-edge=fra]').dataset.state === 'up'",
        PATIENCE,
    )
    .await;

    // 5. A load reading arrives: syd goes overloaded, its dot grows.
    let r0 = js(
        c,
        "return +document.querySelector('.marker[data-edge=syd]').getAttribute('r')",
    )
    .await;
    let (code, _, body) = support::http::http_with(
        http,
        "PUT",
        "/api/edges/syd/load",
        "",
        r#"{"load": 0.95, "ttl": "60s"}"#,
    );
    assert_eq!(code, 200, "{body}");
    let (_, took) = until_js(
        c,
        "syd overloaded",
        "return document.querySelector('.marker[data-edge=syd]').dataset.state === 'overloaded'",
        Duration::from_secs(3),
    )
    .await;
    eprintln!("status page: load reading → marker changed in {took:?}");
    let r1 = js(
        c,
        "return +document.querySelector('.marker[data-edge=syd]').getAttribute('r')",
    )
    .await;
    assert!(r1.as_f64().unwrap() > r0.as_f64().unwrap(), "{r0} → {r1}");

    // Answers per second per edge, from the metrics: Paris clients → cdg.
    let q = geosteer::query_bytes(
        &"www.cdn.example.".parse().unwrap(),
        hickory_proto::rr::RecordType::A,
        Some("203.0.113.0/24".parse().unwrap()),
    );
    let t = Instant::now();
    loop {
        for _ in 0..20 {
            udp_raw(dns, &q).expect("an answer");
        }
        let rate = js(
            c,
            "const r = document.querySelector('#edge-rows tr[data-edge=cdg]'); return r ? +r.children[5].textContent || 0 : 0",
        )
        .await;
        if rate.as_f64().unwrap_or(0.0) > 0.0 {
            break;
        }
        assert!(t.elapsed() < PATIENCE, "cdg's answers/s never rose");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // A rejected reload shows at the top with file:line: reason.
    let pools = root.join("zones/cdn.example.pools.yaml");
    let good = std::fs::read_to_string(&pools).unwrap();
    std::fs::write(
        &pools,
        good.replace("edges: [iad, fra]", "edges: [iad, ams]"),
    )
    .unwrap();
    let (code, _, body) = support::http::http_with(http, "POST", "/api/reload", "", "");
    assert_eq!(code, 422, "{body}");
    let (text, took) = until_js(
        c,
        "the rejected reload on the page",
        "const r = document.getElementById('reload'); return r.dataset.ok === 'false' && r.textContent",
        Duration::from_secs(3),
    )
    .await;
    eprintln!("status page: rejected reload shown in {took:?}");
    let text = text.as_str().unwrap();
    assert!(
        text.contains("cdn.example.pools.yaml:") && text.contains("unknown edge or group \"ams\""),
        "{text}"
    );
    std::fs::write(&pools, good).unwrap();
    let (code, _, body) = support::http::http_with(http, "POST", "/api/reload", "", "");
    assert_eq!(code, 200, "{body}");
    until_js(
        c,
        "the good reload on the page",
        "return document.getElementById('reload').dataset.ok === 'true'",
        PATIENCE,
    )
    .await;

    // 6. A screenshot that is not blank: the browser decodes it and counts
    // its colours.
    let png = c.screenshot().await.unwrap();
    assert!(png.starts_with(b"\x89PNG"), "not a PNG");
    if let Ok(path) = std::env::var("GEOSTEER_SCREENSHOT") {
        std::fs::write(path, &png).unwrap();
    }
    let b64 = base64_encode(&png);
    let colours = c
        .execute_async(
            "const [data, done] = arguments; const img = new Image();
             img.onload = () => { const cv = document.createElement('canvas'); cv.width = img.width; cv.height = img.height;
               const g = cv.getContext('2d'); g.drawImage(img, 0, 0);
               const px = g.getImageData(0, 0, cv.width, cv.height).data; const seen = new Set();
               for (let i = 0; i < px.length; i += 4 * 97) seen.add((px[i] << 16) | (px[i + 1] << 8) | px[i + 2]);
               done([img.width, img.height, seen.size]); };
             img.onerror = () => done('bad image'); img.src = 'data:image/png;base64,' + data;",
            vec![json!(b64)],
        )
        .await
        .unwrap();
    let (w, h, n) = (
        colours[0].as_u64().unwrap(),
        colours[1].as_u64().unwrap(),
        colours[2].as_u64().unwrap(),
    );
    assert!(w >= 800 && h >= 600, "{colours}");
    assert!(n >= 12, "a near-blank screenshot: {n} colours");

    // 7. No console errors, and no request left the server.
    let console = log(c, "browser").await;
    let errors: Vec<_> = console
        .iter()
        .filter(|e| e["level"] == "SEVERE" || e["level"] == "WARNING")
        .collect();
    assert!(errors.is_empty(), "console: {errors:?}");
    let mut urls = BTreeSet::new();
    for e in log(c, "performance").await {
        let m: Value = serde_json::from_str(e["message"].as_str().unwrap()).unwrap();
        if m["message"]["method"] == "Network.requestWillBeSent" {
            urls.insert(
                m["message"]["params"]["request"]["url"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
            );
        }
    }
    assert!(
        urls.iter()
            .any(|u| u.starts_with(&format!("{origin}/api/view"))),
        "{urls:?}"
    );
    // Chromium's own chrome:// pages (its new-tab favicon) are not network.
    for u in urls
        .iter()
        .filter(|u| u.contains("://") && !u.starts_with("chrome://"))
    {
        assert!(
            u.starts_with(&format!("{origin}/")),
            "a request outside the server: {u}"
        );
    }
    let resources = js(
        c,
        "return performance.getEntriesByType('resource').map(r => r.name).filter(n => !n.startsWith(location.origin + '/'))",
    )
    .await;
    assert_eq!(
        resources,
        json!([]),
        "the page loaded something from elsewhere"
    );

    // 8. A link preselects host and what-if: /?host=video&drain=fra.
    c.goto(&format!("{origin}/?host=video&drain=fra"))
        .await
        .unwrap();
    until_js(
        c,
        "the linked what-if",
        "return document.body.dataset.whatif === JSON.stringify({drain: 'fra'})",
        PATIENCE,
    )
    .await;
    let want = api_countries(&get_json(http, "/api/whatif?host=video&drain=fra"));
    let t = Instant::now();
    while page_countries(c).await != want {
        assert!(
            t.elapsed() < PATIENCE,
            "the linked what-if never matched the API's"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        js(c, "return document.getElementById('host').value").await,
        "video"
    );
    let console = log(c, "browser").await;
    assert!(
        !console.iter().any(|e| e["level"] == "SEVERE"),
        "console: {console:?}"
    );
}

fn base64_encode(b: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut s = String::with_capacity(b.len().div_ceil(3) * 4);
    for chunk in b.chunks(3) {
        let n = (u32::from(chunk[0]) << 16)
            | (u32::from(*chunk.get(1).unwrap_or(&0)) << 8)
            | u32::from(*chunk.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= chunk.len() {
                s.push(T[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                s.push('=');
            }
        }
    }
    s
}

/// The page and its JSON without a browser (runs where Chromium is absent).
#[test]
fn page_and_whatif_api() {
    let (_dir, srv) = demo();
    let http = srv.http();
    let (code, head, body) = support::http::http_with(http, "GET", "/", "", "");
    assert_eq!(code, 200);
    let head = head.to_ascii_lowercase();
    assert!(head.contains("content-type: text/html"), "{head}");
    assert!(
        head.contains("content-security-policy: default-src 'none'"),
        "{head}"
    );
    assert!(body.contains("data-country=\"GB\"") && body.contains("data-country=\"JP\""));
    for attr in ["src=\"http", "href=\"http", "url(http", "@import"] {
        assert!(!body.contains(attr), "an external resource: {attr}");
    }

    let live = api_countries(&get_json(http, "/api/whatif"));
    assert_eq!(live, api_countries(&get_json(http, "/api/view")));
    assert_eq!((live["GB"].as_str(), live["JP"].as_str()), ("lhr", "nrt"));

    // Down: GB goes elsewhere; drain: the same while others can serve.
    let down = api_countries(&get_json(http, "/api/whatif?down=lhr"));
    assert_ne!(down["GB"], "lhr");
    assert!(!down.values().any(|e| e == "lhr"));
    let drain = api_countries(&get_json(
        http,
        "/api/whatif?zone=cdn.example.&host=www&drain=lhr",
    ));
    assert_eq!(drain, down);
    // Several at once; and the video host's rules apply (EU → fra, lhr).
    let v = get_json(http, "/api/whatif?host=video&down=fra");
    assert_eq!(v["countries"]["DE"]["edge"], "lhr");
    assert_eq!(v["countries"]["US"]["edge"], "iad");
    // Every European country on video with fra and lhr gone: fallback.
    let v = get_json(http, "/api/whatif?host=video&down=fra,lhr");
    assert_eq!(v["countries"]["DE"]["outcome"], "fallback");
    assert_eq!(v["countries"]["DE"]["edge"], Value::Null);
    // img answers two edges.
    let v = get_json(http, "/api/whatif?host=img");
    assert_eq!(v["countries"]["FR"]["edges"].as_array().unwrap().len(), 2);

    // Nothing changed for real.
    for e in get_json(http, "/api/edges").as_array().unwrap() {
        assert_eq!(e["admin"], "auto", "{e}");
    }
    // Bad parameters are clear errors.
    for (path, code, msg) in [
        ("/api/whatif?down=ams", 404, "has no edge"),
        ("/api/whatif?host=nope", 404, "no steered host"),
        ("/api/whatif?zone=nope.example", 404, "no zone"),
        ("/api/whatif?bogus=1", 400, "bogus"),
        ("/api/explain?name=www.cdn.example", 400, "client= or ecs="),
    ] {
        let (c, _, body) = support::http::http_with(http, "GET", path, "", "");
        assert_eq!(c, code, "{path}: {body}");
        assert!(body.contains(msg), "{path}: {body}");
    }
    let e = get_json(http, "/api/explain?name=www.cdn.example&ecs=77.88.8.0/24");
    assert_eq!(e["edges"][0], "fra");
    // The live map agrees with explain for the demo DB's clients in those
    // countries (London, Frankfurt, Paris, Tokyo, Sydney, São Paulo, …).
    for (ecs, cc) in [
        ("192.0.2.0/24", "GB"),
        ("198.51.100.0/24", "DE"),
        ("203.0.113.0/24", "FR"),
        ("198.18.7.0/24", "JP"),
        ("198.18.6.0/24", "AU"),
        ("198.18.4.0/24", "BR"),
        ("198.18.5.0/24", "ZA"),
        ("198.18.9.0/24", "IN"),
        ("198.18.2.0/24", "US"),
    ] {
        let e = get_json(
            http,
            &format!("/api/explain?name=www.cdn.example&ecs={ecs}"),
        );
        assert_eq!(e["location"]["country"], cc, "{e}");
        assert_eq!(e["edges"][0].as_str().unwrap(), live[cc], "{cc}: {e}");
    }
    srv.shutdown();
}

/// Edges at the first 150 countries' centroids (so each of those countries
/// has its own nearest edge) and 5,000 hosts: a CDN's shape.
fn cdn_scale() -> (tempfile::TempDir, AppServer, Vec<String>) {
    let dir = tempfile::tempdir().unwrap();
    let mut edges = Vec::new();
    let mut pools = String::from("edges:\n");
    // The page's own map (the same file the server embeds).
    let world: Value = serde_json::from_str(
        &std::fs::read_to_string(support::repo().join("assets/world-110m.json")).unwrap(),
    )
    .unwrap();
    for (i, c) in world["countries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["cc"] != "AQ")
        .take(150)
        .enumerate()
    {
        let name = format!("e-{}", c["cc"].as_str().unwrap().to_lowercase());
        pools.push_str(&format!(
            "  {name}: {{ addresses: [10.{}.{}.1], location: [{:.3}, {:.3}] }}\n",
            i / 200,
            i % 200,
            c["lat"].as_f64().unwrap(),
            c["lon"].as_f64().unwrap()
        ));
        edges.push(name);
    }
    pools.push_str("hosts:\n");
    for i in 0..5000 {
        pools.push_str(&format!("  h{i:04}: {{}}\n"));
    }
    support::server::write_zone_dir(
        dir.path(),
        "cdn.example",
        &pools,
        "listen: [127.0.0.1:0]\nzones: zones\nhttp: 127.0.0.1:0\nworkers: 1\nwatch: false\n",
    );
    support::write_file(
        dir.path(),
        "zones/cdn.example.zone",
        support::server::MINIMAL_ZONE,
    );
    let srv = AppServer::load(&dir.path().join("geosteer.yaml"));
    (dir, srv, edges)
}

/// The page at 150 edges and 5,000 hosts: every edge on the map has its
/// own colour, a country names its edge on hover, the legend's search
/// lights one edge's countries up, the host picker finds any of the 5,000,
/// an override's reason shows; and a screenshot to look at
/// (`target/tmp/status-page-150.png`, or `GEOSTEER_SCREENSHOT_150=path`).
#[test]
fn status_page_at_cdn_scale() {
    if !need_tools(&["chromium", "chromedriver"]) {
        return;
    }
    let (dir, srv, edges) = cdn_scale();
    let http = srv.http();
    assert_eq!(edges.len(), 150);
    in_chromium(&srv.rt, dir.path(), move |c| async move {
        let c = &c;
        c.goto(&format!("http://{http}/")).await.unwrap();
        until_js(
            c,
            "the first update",
            "return document.body.dataset.updated",
            PATIENCE,
        )
        .await;

        // Same edge, same colour; different edges, different colours.
        let fills: BTreeMap<String, (String, String)> = serde_json::from_value(
            js(
                c,
                "const o = {}; document.querySelectorAll('.country').forEach(p => { if (p.dataset.edge) o[p.dataset.country] = [p.dataset.edge, getComputedStyle(p).fill]; }); return o;",
            )
            .await,
        )
        .unwrap();
        let mut colour_of: BTreeMap<&str, &str> = BTreeMap::new();
        let mut edge_of: BTreeMap<&str, &str> = BTreeMap::new();
        for (cc, (edge, fill)) in &fills {
            assert_eq!(
                *colour_of.entry(edge).or_insert(fill),
                fill,
                "{cc}: {edge} in two colours"
            );
            assert_eq!(
                *edge_of.entry(fill).or_insert(edge),
                edge,
                "{cc}: {fill} for two edges"
            );
        }
        assert!(
            colour_of.len() >= 140,
            "only {} edges on the map",
            colour_of.len()
        );
        eprintln!(
            "status page: {} edges on the map, {} colours",
            colour_of.len(),
            edge_of.len()
        );

        // Hovering a country names its edge.
        js(c, "document.querySelector('.country[data-country=FR]').dispatchEvent(new MouseEvent('mouseenter'));").await;
        let tip = js(c, "return document.getElementById('tip').textContent").await;
        assert!(tip.as_str().unwrap().contains("→ e-fr"), "{tip}");
        js(c, "document.querySelector('.country[data-country=FR]').dispatchEvent(new MouseEvent('mouseleave'));").await;

        // The legend lists the edges on the map; its search finds one and
        // lights exactly its countries.
        let listed = js(
            c,
            "return document.querySelectorAll('#edge-legend li').length",
        )
        .await;
        assert_eq!(listed, json!(150));
        js(c, "const s = document.getElementById('edge-search'); s.value = 'e-br'; s.dispatchEvent(new Event('input'));").await;
        let (lit, _) = until_js(
            c,
            "e-br's countries lit",
            "const g = document.getElementById('countries'); if (!g.classList.contains('focus')) return null; return Array.from(document.querySelectorAll('.country.lit')).map(p => p.dataset.country);",
            PATIENCE,
        )
        .await;
        let want: Vec<&String> = fills
            .iter()
            .filter(|(_, (e, _))| e == "e-br")
            .map(|(cc, _)| cc)
            .collect();
        let mut lit: Vec<String> = serde_json::from_value(lit).unwrap();
        lit.sort();
        assert_eq!(lit.iter().collect::<Vec<_>>(), want);
        assert!(lit.contains(&"BR".to_string()));
        assert_eq!(
            js(
                c,
                "return document.querySelectorAll('#edge-legend li').length"
            )
            .await,
            json!(1)
        );
        js(c, "const s = document.getElementById('edge-search'); s.value = ''; s.dispatchEvent(new Event('input'));").await;

        // The host picker: 5,000 suggestions; typing a name picks it.
        let n = js(
            c,
            "return document.querySelectorAll('#host-options option').length",
        )
        .await;
        assert_eq!(n, json!(5000));
        js(c, "const h = document.getElementById('host'); h.focus(); h.value = 'h4321'; h.dispatchEvent(new Event('input')); h.blur();").await;
        until_js(
            c,
            "h4321 picked",
            "return document.body.dataset.host === 'h4321'",
            PATIENCE,
        )
        .await;
        assert!(
            js(c, "return location.search")
                .await
                .as_str()
                .unwrap()
                .contains("host=h4321")
        );

        // An override's reason and end, in the table and the marker.
        let (code, _, body) = support::http::http_with(
            http,
            "POST",
            "/api/edges/e-fr/admin",
            "",
            r#"{"state":"drain","for":"2h","reason":"fibre cut"}"#,
        );
        assert_eq!(code, 200, "{body}");
        until_js(
            c,
            "the reason in the table",
            "const r = document.querySelector('#edge-rows tr[data-edge=\"e-fr\"]'); return r && r.textContent.includes('drain: fibre cut (1h 59m left');",
            PATIENCE,
        )
        .await;
        // Screenshots to look at: France hovered (it now goes elsewhere),
        // then one edge's countries lit from the legend.
        let shot = |name: &str| {
            std::env::var("GEOSTEER_SCREENSHOT_150")
                .map(|p| PathBuf::from(p).with_file_name(name))
                .unwrap_or_else(|_| PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name))
        };
        js(c, "document.querySelector('.country[data-country=FR]').dispatchEvent(new MouseEvent('mouseenter'));").await;
        let png = c.screenshot().await.unwrap();
        std::fs::write(shot("status-page-150.png"), &png).unwrap();
        js(c, "document.querySelector('.country[data-country=FR]').dispatchEvent(new MouseEvent('mouseleave'));").await;
        js(c, "const s = document.getElementById('edge-search'); s.value = 'e-ru'; s.dispatchEvent(new Event('input'));").await;
        let png = c.screenshot().await.unwrap();
        std::fs::write(shot("status-page-150-search.png"), &png).unwrap();
        eprintln!(
            "status page at 150 edges: screenshots {}",
            shot("status-page-150*.png").display()
        );
        let console = log(c, "browser").await;
        let errors: Vec<_> = console.iter().filter(|e| e["level"] == "SEVERE").collect();
        assert!(errors.is_empty(), "console: {errors:?}");
    });
    srv.shutdown();
}
