//! The RUM listener faces the internet: a stolen token, a flood from one
//! client, a thousand networks each claiming an edge is 1 ms, and junk
//! bodies, from loopback networks as real clients would send them. Each
//! is refused or contained, counted in the metrics, and the DNS side
//! answers as before. One test, run alone (`crate::exact_counters`), so the
//! process-wide counters are exact.

use crate::support;

use std::time::Duration;

use support::http::get;
use support::rum::{Client, ask_from, rum_addr, start, www_edge};
use support::wait::until_true;

/// A labelled series in a `/metrics` text (0 when absent).
fn value(metrics: &str, name: &str, label: &str) -> f64 {
    let want = format!("{name}{{{label}}} ");
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(&want)?.trim().parse().ok())
        .unwrap_or(0.0)
}

#[test]
fn guards() {
    let _counters = crate::exact_counters();
    let (_dir, _, app) = start("", "");
    let (dns, http, rum) = (app.dns(), app.http(), rum_addr(&app));
    // The counters are the process's, earlier tests' beacons included:
    // what this test did is the growth since now.
    let at_start = get(http, "/metrics").1;
    let series = |name: &str, label: &str| {
        value(&get(http, "/metrics").1, name, label) - value(&at_start, name, label)
    };
    let beacons = |r: &str| series("geosteer_rum_beacons_total", &format!("result=\"{r}\""));
    let samples = |r: &str| series("geosteer_rum_samples_total", &format!("result=\"{r}\""));

    // --- A stolen token: used from another /24 it is refused; from its
    // own network it is taken once.
    let owner = Client::new("127.4.1.1", rum);
    let (code, cfg) = owner.config("www.cdn.example");
    assert_eq!(code, 200);
    let body = serde_json::json!({"token": cfg["token"], "rtt": {"iad": 10.0}}).to_string();
    let thief = Client::new("127.4.2.1", rum);
    assert_eq!(thief.post(body.as_bytes()), 403);
    assert_eq!(Client::new("127.4.1.2", rum).post(body.as_bytes()), 204);
    assert_eq!(
        owner.post(body.as_bytes()),
        403,
        "a token is good for one beacon"
    );
    let mut forged = cfg["token"].as_str().unwrap().to_string();
    let last = forged.pop().unwrap();
    forged.push(if last == 'A' { 'B' } else { 'A' });
    let f = serde_json::json!({"token": forged, "rtt": {"iad": 10.0}}).to_string();
    assert_eq!(owner.post(f.as_bytes()), 403);
    assert_eq!(beacons("forbidden"), 3.0);
    assert_eq!(beacons("accepted"), 1.0);

    // --- A flood from one client /24: `rate` (60) a minute, then 429,
    // for configs and beacons alike; other networks are not affected.
    let flood = |n: usize| -> Vec<u16> {
        (0..n)
            .map(|i| {
                Client::new(&format!("127.5.0.{}", 1 + i % 200), rum)
                    .post(br#"{"token":"x","rtt":{}}"#)
            })
            .collect()
    };
    // The bucket refills one a second: allow for the time the flood took.
    let t = std::time::Instant::now();
    let codes = flood(100);
    let slack = t.elapsed().as_secs() as usize + 1;
    let passed = codes.iter().filter(|&&c| c == 403).count();
    let limited = codes.iter().filter(|&&c| c == 429).count();
    assert!((60..=60 + slack).contains(&passed), "{codes:?}");
    assert_eq!(passed + limited, 100, "{codes:?}");
    assert_eq!(beacons("rate_limited"), limited as f64);
    let t = std::time::Instant::now();
    let configs: Vec<u16> = (0..70)
        .map(|i| {
            Client::new(&format!("127.5.1.{}", 1 + i), rum)
                .config("www.cdn.example")
                .0
        })
        .collect();
    let slack = t.elapsed().as_secs() as usize + 1;
    let served = configs.iter().filter(|&&c| c == 200).count();
    assert!((60..=60 + slack).contains(&served), "{configs:?}");
    assert_eq!(
        configs.iter().filter(|&&c| c == 429).count(),
        70 - served,
        "{configs:?}"
    );
    let bystander = Client::new("127.5.2.1", rum);
    assert_eq!(bystander.view(&[("iad", 10.0)]).1, 204);

    // --- Junk bodies: 400 (413 when too big), never a crash.
    let junk = Client::new("127.6.0.1", rum);
    let too_big = vec![b'x'; 5000];
    let many: serde_json::Map<String, serde_json::Value> =
        (0..33).map(|i| (format!("e{i}"), 1.0.into())).collect();
    let many = serde_json::json!({"token": "t", "rtt": many}).to_string();
    // Under the size cap, past serde_json's nesting limit.
    let deep = format!("{{\"token\":{}{}}}", "[".repeat(1500), "]".repeat(1500));
    let cases: Vec<(&[u8], u16)> = vec![
        (b"", 400),
        (b"hello", 400),
        (b"{}", 400),
        (br#"{"token": 1, "rtt": {}}"#, 400),
        (br#"{"token": "t", "rtt": [1, 2]}"#, 400),
        (b"\xff\xfe{\"token\"", 400),
        (deep.as_bytes(), 400),
        (&too_big, 413),
        (many.as_bytes(), 400),
    ];
    for (body, want) in &cases {
        assert_eq!(
            junk.post(body),
            *want,
            "{:?}",
            String::from_utf8_lossy(&body[..body.len().min(40)])
        );
    }
    assert_eq!(beacons("bad_request"), cases.len() as f64);
    // Out-of-range RTTs and unknown edges in a good beacon: dropped, counted.
    let (_, status) = junk.view(&[("iad", -1.0), ("jnb", 1e9), ("nope", 5.0), ("sjc", 12.0)]);
    assert_eq!(status, 204);
    let (code, cfg) = junk.config("www.cdn.example");
    assert_eq!(code, 200);
    let nan = format!(
        r#"{{"token": {}, "rtt": {{"iad": "x", "gru": null, "fra": 1e400}}}}"#,
        cfg["token"]
    );
    assert_eq!(
        junk.post(nan.as_bytes()),
        400,
        "1e400 is not a JSON number serde takes"
    );
    assert_eq!(samples("out_of_range"), 2.0);
    assert_eq!(samples("unknown_edge"), 1.0);
    let accepted_before = samples("accepted");
    assert!(accepted_before >= 3.0);

    // --- A thousand networks each claiming sin is 1 ms from New York: each
    // is one sample in its own cell, below min_samples, so nobody moves;
    // even linked to a resolver they do not count there. Two honest New
    // York networks behind the same resolver steer it.
    let resolver = "127.11.0.53";
    assert_eq!(
        www_edge(dns, "127.0.0.1", Some(("127.10.1.0", 24))).0,
        "iad"
    );
    for i in 0..1000u32 {
        let from = format!("127.{}.{}.7", 12 + i / 256, i % 256);
        let c = Client::new(&from, rum);
        let (code, cfg) = c.config("www.cdn.example");
        assert_eq!(code, 200, "{from}");
        ask_from(resolver, dns, cfg["resolver_probe"].as_str().unwrap(), None);
        let body = serde_json::json!({"token": cfg["token"], "rtt": {"sin": 1.0}}).to_string();
        assert_eq!(c.post(body.as_bytes()), 204, "{from}");
    }
    for net in [1, 2] {
        for i in 0..5 {
            let c = Client::new(&format!("127.10.{net}.{}", 10 + i), rum);
            let (_, cfg) = c.config("www.cdn.example");
            ask_from(resolver, dns, cfg["resolver_probe"].as_str().unwrap(), None);
            let body = serde_json::json!({"token": cfg["token"], "rtt": {"iad": 12.0, "sin": 220.0, "sjc": 70.0}}).to_string();
            assert_eq!(c.post(body.as_bytes()), 204);
        }
    }
    until_true(
        "the honest networks to count",
        Duration::from_secs(30),
        || support::http::get_json(http, "/api/rum")["zones"][0]["steering_networks"] == 2,
    );
    let s = support::http::get_json(http, "/api/rum");
    assert!(s["cells"].as_u64().unwrap() >= 1000 + 6, "{s}");
    // Nobody went to sin: not the liars, not their neighbours, not the resolver.
    for probe in ["127.12.0.0", "127.15.231.0", "127.10.1.0", "127.10.3.0"] {
        assert_eq!(
            www_edge(dns, "127.0.0.1", Some((probe, 24))).0,
            "iad",
            "{probe}"
        );
    }
    assert_eq!(www_edge(dns, resolver, None).0, "iad");
    let r = support::http::get_json(http, &format!("/api/rum?resolver={resolver}"));
    assert_eq!(r["user_count"], 1002, "{r}");
    let rows = &r["zones"][0]["rows"];
    assert!(
        rows.as_array()
            .unwrap()
            .iter()
            .all(|x| x["edge"] != "sin" || x["rtt_ms"].as_f64().unwrap() > 100.0),
        "only the honest networks' sin (220 ms) counts: {r}"
    );
    // Liars who do reach min_samples steer themselves, and only themselves.
    for i in 0..5 {
        let c = Client::new(&format!("127.12.0.{}", 20 + i), rum);
        assert_eq!(c.view(&[("sin", 1.0)]).1, 204);
    }
    until_true(
        "the persistent liar to steer itself",
        Duration::from_secs(30),
        || www_edge(dns, "127.0.0.1", Some(("127.12.0.0", 24))).0 == "sin",
    );
    assert_eq!(
        www_edge(dns, "127.0.0.1", Some(("127.12.1.0", 24))).0,
        "iad"
    );
    assert_eq!(www_edge(dns, resolver, None).0, "iad");
    // The DNS side never noticed any of it.
    assert_eq!(www_edge(dns, "127.0.0.1", Some(("127.1.1.0", 24))).0, "lhr");
    assert_eq!(
        series("geosteer_rum_dropped_total", "queue=\"beacons\""),
        0.0
    );
}
