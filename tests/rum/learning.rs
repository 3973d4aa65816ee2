//! Steering from real users, end to end through the whole server: clients
//! on many loopback networks (placed in cities by the pools file's `nets:`)
//! fetch configs and post beacons to the RUM listener, resolvers ask for
//! the probe names over DNS, and the answers, `/api/rum`, `/api/explain`,
//! the export and the metrics say what was learned; a restart keeps it.

use crate::support;

use std::time::Duration;

use support::http::{get, get_json, http_with};
use support::rum::{Client, answer, ask_from, rum_addr, start, www_edge};
use support::server::AppServer;
use support::wait::until_true;

const WAIT: Duration = Duration::from_secs(20);

/// Five page views from London network 127.1.1.0/24 say fra is fast and
/// lhr slow: that network moves to fra (scope /24), its neighbours stay,
/// a network with fewer than min_samples views stays, and explain, the
/// API, the export and the metrics all say so. Then a restart keeps it.
#[test]
fn beacons_move_their_network_and_survive_a_restart() {
    let _counters = crate::shared_counters();
    let (dir, cfg, app) = start("", "");
    let (dns, http, rum) = (app.dns(), app.http(), rum_addr(&app));
    let london = Some(("127.1.1.0", 24));
    assert_eq!(www_edge(dns, "127.0.0.1", london).0, "lhr");

    for i in 0..5 {
        let c = Client::new(&format!("127.1.1.{}", 10 + i), rum);
        let (cfg, status) = c.view(&[("lhr", 300.0), ("fra", 20.0)]);
        assert_eq!(status, 204);
        // The nearest candidates, and one other.
        let edges: Vec<&str> = cfg["edges"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["edge"].as_str().unwrap())
            .collect();
        assert_eq!(edges.len(), 4, "{cfg}");
        assert_eq!(edges[0], "lhr", "nearest first: {cfg}");
        assert!(
            cfg["edges"][0]["url"]
                .as_str()
                .unwrap()
                .starts_with("http://lhr.edges.test/")
        );
        assert!(
            cfg["resolver_probe"]
                .as_str()
                .unwrap()
                .ends_with(".rum.cdn.example"),
            "{cfg}"
        );
    }
    // Four views from another London network: below min_samples.
    for i in 0..4 {
        let c = Client::new(&format!("127.1.3.{}", 10 + i), rum);
        assert_eq!(c.view(&[("lhr", 300.0), ("fra", 20.0)]).1, 204);
    }
    until_true("the learned cell to steer", WAIT, || {
        www_edge(dns, "127.0.0.1", london).0 == "fra"
    });
    assert_eq!(www_edge(dns, "127.0.0.1", london), ("fra".into(), Some(24)));
    // Its neighbour and the network with too few samples: as before.
    assert_eq!(www_edge(dns, "127.0.0.1", Some(("127.1.2.0", 24))).0, "lhr");
    assert_eq!(www_edge(dns, "127.0.0.1", Some(("127.1.3.0", 24))).0, "lhr");
    // A query from inside the network (no ECS) is steered alike.
    assert_eq!(www_edge(dns, "127.1.1.99", None).0, "fra");

    // explain says a learned cell decided, with the samples behind it.
    let ex = get_json(http, "/api/explain?name=www.cdn.example&ecs=127.1.1.0/24");
    assert_eq!(ex["edges"][0], "fra", "{ex}");
    let learned = &ex["steering"]["learned"];
    assert_eq!(learned["source"], "client network", "{ex}");
    assert_eq!(learned["key"], "127.1.1.0/24", "{ex}");
    assert_eq!(learned["rows"][0]["edge"], "fra", "{ex}");
    assert_eq!(learned["rows"][0]["samples"], 5, "{ex}");
    assert!(
        ex["why"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w.as_str().unwrap().contains("learned")),
        "{ex}"
    );

    // The API.
    let c = get_json(http, "/api/rum?client=127.1.1.0/24");
    let edges = &c["networks"][0]["zones"][0]["edges"];
    assert_eq!(edges[0]["edge"], "fra", "{c}");
    assert_eq!(edges[0]["rtt_ms"], 20.0, "{c}");
    assert_eq!(edges[0]["samples"], 5, "{c}");
    assert_eq!(edges[0]["steers"], true, "{c}");
    assert_eq!(edges[0]["own"]["kept"].as_array().unwrap().len(), 5, "{c}");
    let wide = get_json(http, "/api/rum?client=127.1.0.0/16");
    assert_eq!(wide["networks"].as_array().unwrap().len(), 2, "{wide}");
    let s = get_json(http, "/api/rum");
    assert_eq!(s["cells"], 4, "{s}");
    assert_eq!(s["zones"][0]["steering_networks"], 1, "{s}");
    let moved = &s["moved"]["clients"];
    assert_eq!(moved[0]["network"], "127.1.1.0/24", "{s}");
    assert_eq!(moved[0]["from"], "lhr", "{s}");
    assert_eq!(moved[0]["to"], "fra", "{s}");

    // The export is an rtt.csv the server itself loads.
    let (code, csv) = get(http, "/api/rum/export");
    assert_eq!(code, 200, "{csv}");
    assert!(csv.starts_with("client,edge,rtt_ms,samples\n"), "{csv}");
    assert!(csv.contains("\n127.1.1.0/24,fra,20,5\n"), "{csv}");
    assert!(csv.contains("\n127.1.1.0/24,lhr,300,5\n"), "{csv}");
    assert!(!csv.contains("127.1.3.0"), "below min_samples: {csv}");

    // Metrics, with HELP and TYPE.
    let (_, m) = get(http, "/metrics");
    for name in [
        "geosteer_rum_beacons_total",
        "geosteer_rum_cells",
        "geosteer_rum_linked_resolvers",
        "geosteer_rum_table_age_seconds",
    ] {
        assert!(m.contains(&format!("# HELP {name} ")), "{name}");
        assert!(m.contains(&format!("# TYPE {name} ")), "{name}");
    }
    let accepted: f64 = m
        .lines()
        .find_map(|l| l.strip_prefix("geosteer_rum_beacons_total{result=\"accepted\"} "))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    assert!(accepted >= 9.0, "{accepted}");

    // A restart keeps what was learned (written on shutdown, read at start).
    app.shutdown();
    assert!(dir.path().join("rum.state").exists());
    let app = AppServer::load(&cfg);
    assert_eq!(
        www_edge(app.dns(), "127.0.0.1", london),
        ("fra".into(), Some(24))
    );
    assert_eq!(
        www_edge(app.dns(), "127.0.0.1", Some(("127.1.3.0", 24))).0,
        "lhr"
    );
    // And keeps learning: one more view makes the second network count.
    let c = Client::new("127.1.3.50", rum_addr(&app));
    assert_eq!(c.view(&[("lhr", 300.0), ("fra", 20.0)]).1, 204);
    until_true("the second network to reach min_samples", WAIT, || {
        www_edge(app.dns(), "127.0.0.1", Some(("127.1.3.0", 24))).0 == "fra"
    });

    // `geosteer rum export`, from the server and from the state file; the
    // result is an rtt.csv that steers the same way without RUM.
    let bin = env!("CARGO_BIN_EXE_geosteer");
    let http = app.http().to_string();
    let out = std::process::Command::new(bin)
        .args(["rum", "export", "--http", &http, "--zone", "cdn.example"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let live = String::from_utf8(out.stdout).unwrap();
    assert!(live.contains("\n127.1.3.0/24,fra,20,5\n"), "{live}");
    app.shutdown();
    let file = dir.path().join("export.csv");
    let out = std::process::Command::new(bin)
        .args(["rum", "export", "--offline", "-o"])
        .arg(&file)
        .arg("-c")
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let offline = std::fs::read_to_string(&file).unwrap();
    let rows = |t: &str| {
        t.lines()
            .filter(|l| !l.starts_with('#'))
            .map(String::from)
            .collect::<Vec<_>>()
    };
    assert_eq!(rows(&offline), rows(&live));
    std::fs::copy(&file, dir.path().join("zones/cdn.example.rtt.csv")).unwrap();
    // The same files without `rum:` (it is the config's last section).
    let text = std::fs::read_to_string(&cfg).unwrap();
    let plain = dir.path().join("plain.yaml");
    std::fs::write(&plain, &text[..text.find("\nrum:\n").unwrap() + 1]).unwrap();
    for (net, edge) in [
        ("127.1.1.0/24", "fra"),
        ("127.1.3.0/24", "fra"),
        ("127.1.2.0/24", "lhr"),
    ] {
        let out = std::process::Command::new(bin)
            .args([
                "explain",
                "www.cdn.example",
                "--files",
                "--json",
                "--ecs",
                net,
                "-c",
            ])
            .arg(&plain)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(
            r["edges"],
            serde_json::json!([edge]),
            "{net} from the exported rtt.csv: {r}"
        );
    }
}

/// A reload that reorders the zone's edges (learned rows refer to edges
/// by index) keeps the learned cell steering: the new snapshot gets a
/// table for its own edge list before it serves, so no query in between
/// falls back to the map.
#[test]
fn a_reload_that_reorders_the_edges_keeps_learned_cells() {
    let _counters = crate::shared_counters();
    let (dir, _, app) = start("", "");
    let (dns, http, rum) = (app.dns(), app.http(), rum_addr(&app));
    let net = Some(("127.1.5.0", 24));
    for i in 0..5 {
        let c = Client::new(&format!("127.1.5.{}", 10 + i), rum);
        assert_eq!(c.view(&[("lhr", 300.0), ("fra", 20.0)]).1, 204);
    }
    until_true("the learned cell to steer", WAIT, || {
        www_edge(dns, "127.0.0.1", net).0 == "fra"
    });
    // Asked all along from another thread.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let asker = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut got = Vec::new();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                got.push(www_edge(dns, "127.0.0.1", net).0);
            }
            got
        })
    };
    // fra before lhr now: every index moves.
    let pools = dir.path().join("zones/cdn.example.pools.yaml");
    let text = std::fs::read_to_string(&pools).unwrap();
    let (lhr, fra) = (
        text.lines()
            .find(|l| l.trim_start().starts_with("lhr:"))
            .unwrap(),
        text.lines()
            .find(|l| l.trim_start().starts_with("fra:"))
            .unwrap(),
    );
    let swapped = text
        .replacen(lhr, "@@LHR@@", 1)
        .replacen(fra, lhr, 1)
        .replacen("@@LHR@@", fra, 1);
    assert_ne!(swapped, text);
    std::fs::write(&pools, swapped).unwrap();
    let (code, _, body) = http_with(http, "POST", "/api/reload", "", "");
    assert_eq!(code, 200, "{body}");
    assert_eq!(
        www_edge(dns, "127.0.0.1", net).0,
        "fra",
        "right after the reload"
    );
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let got = asker.join().unwrap();
    let wrong: Vec<_> = got.iter().filter(|e| *e != "fra").collect();
    assert!(
        wrong.is_empty(),
        "{} of {} answers: {wrong:?}",
        wrong.len(),
        got.len()
    );
    // The neighbours still get the map's edge, now at another index.
    assert_eq!(www_edge(dns, "127.0.0.1", Some(("127.1.6.0", 24))).0, "lhr");
}

/// A resolver in London (127.3.0.53, no ECS) whose users are in Tokyo:
/// once their page views link it to them, its queries get Tokyo's best
/// edge; another resolver in London keeps London's.
#[test]
fn resolvers_are_steered_for_their_linked_users() {
    let _counters = crate::shared_counters();
    let (_dir, _, app) = start("", "");
    let (dns, http, rum) = (app.dns(), app.http(), rum_addr(&app));
    let resolver = "127.3.0.53";
    assert_eq!(www_edge(dns, resolver, None).0, "lhr");
    for net in 1..=2 {
        for i in 0..5 {
            let c = Client::new(&format!("127.2.{net}.{}", 10 + i), rum);
            let (code, cfg) = c.config("www.cdn.example");
            assert_eq!(code, 200);
            // The browser resolves the probe name through its resolver.
            let probe = cfg["resolver_probe"].as_str().unwrap().to_string();
            let resp = ask_from(resolver, dns, &probe, None);
            let (addrs, ttls, _) = answer(&resp);
            assert_eq!(addrs, vec!["127.0.0.1"], "the RUM listener's address");
            assert_eq!(ttls, vec![0]);
            let body = serde_json::json!({
                "token": cfg["token"],
                "rtt": {"nrt": 30.0 + f64::from(i), "sin": 80.0, "lhr": 250.0},
            });
            assert_eq!(c.post(body.to_string().as_bytes()), 204);
        }
    }
    // Beacon first, probe after: linked all the same.
    let c = Client::new("127.2.3.10", rum);
    let (_, cfg) = c.config("www.cdn.example");
    let body = serde_json::json!({"token": cfg["token"], "rtt": {"nrt": 31.0}});
    assert_eq!(c.post(body.to_string().as_bytes()), 204);
    ask_from(
        resolver,
        dns,
        cfg["resolver_probe"].as_str().unwrap(),
        Some(("127.2.3.0", 24)),
    );

    until_true("the resolver's users to steer it", WAIT, || {
        www_edge(dns, resolver, None).0 == "nrt"
    });
    // Its /24 shares the link; another resolver network does not.
    assert_eq!(www_edge(dns, "127.3.0.54", None).0, "nrt");
    assert_eq!(www_edge(dns, "127.3.1.53", None).0, "lhr");
    // ECS queries through it are steered by the client subnet as ever.
    assert_eq!(www_edge(dns, resolver, Some(("127.1.9.0", 24))).0, "lhr");

    let r = get_json(http, &format!("/api/rum?resolver={resolver}"));
    assert_eq!(r["network"], "127.3.0.0/24", "{r}");
    assert_eq!(r["user_count"], 3, "{r}");
    assert_eq!(r["ecs"]["subnet"], "127.2.3.0/24", "{r}");
    assert_eq!(r["zones"][0]["rows"][0]["edge"], "nrt", "{r}");
    let ex = get_json(
        http,
        &format!("/api/explain?name=www.cdn.example&client={resolver}"),
    );
    assert_eq!(
        ex["steering"]["learned"]["source"], "resolver's users",
        "{ex}"
    );
    assert_eq!(ex["steering"]["learned"]["users"], 2, "{ex}");
    assert_eq!(get_json(http, "/api/rum")["linked_resolvers"], 1);
}

/// The snippet and the small endpoints: what a browser and a proxy see.
#[test]
fn snippet_probe_and_preflight() {
    let _counters = crate::shared_counters();
    let (_dir, _, app) = start("", "");
    let rum = rum_addr(&app);
    let from = "127.0.0.1".parse().unwrap();
    let http = |method: &str, path: &str, headers: &str| {
        support::rum::http_from(from, rum, method, path, headers, b"")
    };
    let (code, head, body) = http("GET", "/rum.js?host=www.cdn.example", "");
    assert_eq!(code, 200);
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: application/javascript"),
        "{head}"
    );
    assert!(body.contains("(\"www.cdn.example\")"));
    assert_eq!(http("GET", "/rum.js?host=nope.cdn.example", "").0, 404);
    assert_eq!(
        http("GET", "/rum.js?host=static.cdn.example", "").0,
        404,
        "not steered"
    );
    assert_eq!(http("GET", "/rum.js", "").0, 400);
    assert_eq!(http("GET", "/rum/config?host=nope.example", "").0, 404);
    let (code, head, _) = http("GET", "/rum/probe", "");
    assert_eq!(code, 204);
    assert!(
        head.to_ascii_lowercase()
            .contains("access-control-allow-origin: *"),
        "{head}"
    );
    let (code, head, _) = http(
        "OPTIONS",
        "/rum/beacon",
        "Origin: https://www.example.com\r\nAccess-Control-Request-Method: POST\r\nAccess-Control-Request-Headers: content-type\r\n",
    );
    assert_eq!(code, 204);
    let head = head.to_ascii_lowercase();
    assert!(
        head.contains("access-control-allow-methods:") && head.contains("post"),
        "{head}"
    );
    assert!(
        head.contains("access-control-allow-headers: content-type"),
        "{head}"
    );
    // The probe wildcard answers AAAA with no data, and only under rum.
    let q = ask_from("127.0.0.1", app.dns(), "x.www.cdn.example", None);
    assert_eq!(q[3] & 0xF, 3, "NXDOMAIN outside the probe wildcard");
}

/// Through Unbound's subnet cache: a learned /24 inside a London /16 gets
/// its own cache entry, and the entries of its neighbours never cover it,
/// whichever client asks first.
#[test]
fn unbound_subnet_cache_with_learned_cells() {
    let _counters = crate::shared_counters();
    if !support::tools::need_tools(&["unbound", "dig"]) {
        return;
    }
    let (dir, _, app) = start("", "");
    let (dns, rum) = (app.dns(), rum_addr(&app));
    for i in 0..5 {
        let c = Client::new(&format!("127.1.1.{}", 10 + i), rum);
        assert_eq!(c.view(&[("lhr", 300.0), ("fra", 20.0)]).1, 204);
    }
    until_true("the learned cell to steer", WAIT, || {
        www_edge(dns, "127.0.0.1", Some(("127.1.1.0", 24))).0 == "fra"
    });
    let ub = support::unbound::Unbound::start(
        &dir.path().join("unbound"),
        dns.port(),
        "    module-config: \"subnetcache iterator\"\n    max-client-subnet-ipv4: 24\n    outgoing-interface: 127.0.1.1\n",
        "198.51.100.10",
    );
    let a = |subnet: &str| -> String {
        let out = ub.dig(&[
            "+noall",
            "+answer",
            "+time=3",
            "+tries=1",
            &format!("+subnet={subnet}"),
            "www.cdn.example",
            "A",
        ]);
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        let addr = text
            .lines()
            .filter_map(|l| l.split_whitespace().nth(4))
            .next()
            .unwrap_or_else(|| panic!("no answer for {subnet}: {text}"))
            .to_string();
        support::rum::edge_of(&addr).to_string()
    };
    // A neighbour first: its entry must not cover the learned /24.
    assert_eq!(a("127.1.2.5/32"), "lhr");
    assert_eq!(a("127.1.1.5/32"), "fra");
    assert_eq!(a("127.1.0.5/32"), "lhr");
    assert_eq!(a("127.1.1.200/32"), "fra");
    assert_eq!(a("127.1.3.5/32"), "lhr");
    assert_eq!(a("127.1.200.5/32"), "lhr");
    assert_eq!(a("127.1.1.9/32"), "fra");
}
