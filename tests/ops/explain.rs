//! `geosteer explain`: the built binary against a temporary config over the
//! steering fixture; JSON keys and values, and the text form's account of
//! where the client address came from.

use crate::support;

use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;
use support::steer::{self, Db};

/// Writes a config for the fixture zone and City DB; returns its path
/// (the tempdir lives as long as the test binary).
fn config_file() -> &'static PathBuf {
    static CFG: std::sync::OnceLock<(tempfile::TempDir, PathBuf)> = std::sync::OnceLock::new();
    &CFG.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("geosteer.yaml");
        let yaml = format!(
            "zones: {}\ngeodb: {}\n",
            steer::fixture_dir().join("zones").display(),
            steer::geodb(Db::City).display()
        );
        std::fs::write(&path, yaml).unwrap();
        (dir, path)
    })
    .1
}

fn explain(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_geosteer"))
        .arg("explain")
        .args(args)
        .arg("--config")
        .arg(config_file())
        .output()
        .expect("run geosteer");
    assert!(
        out.status.success(),
        "geosteer explain {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn explain_json(args: &[&str]) -> Value {
    let mut a = args.to_vec();
    a.push("--json");
    let text = explain(&a);
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

fn km(v: &Value, edge: &str) -> f64 {
    v["candidates"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["edge"] == edge)
        .unwrap_or_else(|| panic!("no candidate {edge}: {v}"))["km"]
        .as_f64()
        .unwrap()
}

#[test]
fn json_for_an_ecs_client() {
    let v = explain_json(&["www.steer.example", "--ecs", "81.2.1.0/24"]);
    assert_eq!(v["client"]["address"], "81.2.1.0", "{v}");
    assert_eq!(v["client"]["source"], "ecs");
    assert_eq!(v["client"]["ecs_prefix"], 24);
    let l = &v["location"];
    assert_eq!(l["country"], "GB", "{v}");
    assert_eq!(l["continent"], "EU");
    assert_eq!(l["lat"], 51.51);
    assert_eq!(l["lon"], -0.13);
    assert_eq!(l["network"], "81.2.0.0/16");
    let cands = v["candidates"].as_array().unwrap();
    let names: Vec<&str> = cands.iter().map(|c| c["edge"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        ["lhr", "fra", "cdg", "iad", "sjc", "gru", "nrt", "syd"],
        "{v}"
    );
    assert!(cands.iter().all(|c| c["state"] == "up"), "{v}");
    assert!(
        (15.0..30.0).contains(&km(&v, "lhr")),
        "London→lhr {}",
        km(&v, "lhr")
    );
    assert!(
        (5800.0..6000.0).contains(&km(&v, "iad")),
        "London→iad {}",
        km(&v, "iad")
    );
    assert_eq!(v["edges"], serde_json::json!(["lhr"]));
    assert_eq!(v["answers"], serde_json::json!(["192.0.2.10"]));
    assert_eq!(v["scope"], 18);
    assert_eq!(v["ttl"], 20);
}

#[test]
fn json_for_a_packet_source_client() {
    let v = explain_json(&[
        "www.steer.example.",
        "--client",
        "126.1.2.3",
        "--type",
        "AAAA",
    ]);
    assert_eq!(v["client"]["address"], "126.1.2.3", "{v}");
    assert_eq!(v["client"]["source"], "packet source");
    assert_eq!(v["client"]["ecs_prefix"], Value::Null);
    assert_eq!(v["location"]["country"], "JP");
    assert_eq!(v["location"]["network"], "126.0.0.0/8");
    assert_eq!(v["edges"], serde_json::json!(["nrt"]));
    assert_eq!(v["answers"], serde_json::json!(["2001:db8:210::1"]));
    assert_eq!(v["scope"], 0, "located by packet source: scope 0");
    assert_eq!(v["ttl"], 20);
}

#[test]
fn json_for_override_nets_and_rules() {
    let v = explain_json(&["www.steer.example", "--ecs", "10.20.5.0/24"]);
    assert_eq!(v["location"]["network"], "10.20.5.0/24", "{v}");
    assert_eq!(v["location"]["source"], "override net");
    assert_eq!(
        v["candidates"].as_array().unwrap().len(),
        1,
        "pinned to one edge: {v}"
    );
    assert_eq!(v["edges"], serde_json::json!(["nrt"]));
    assert_eq!(v["scope"], 24);

    let v = explain_json(&["video.steer.example", "--ecs", "24.1.2.0/24"]);
    assert_eq!(v["rule"], "rules[2]", "{v}");
    assert_eq!(v["edges"], serde_json::json!(["iad"]));
    assert_eq!(v["ttl"], 30);
    assert_eq!(v["scope"], 12);
}

#[test]
fn text_says_where_the_address_came_from() {
    let t = explain(&["www.steer.example", "--ecs", "81.2.1.0/24"]);
    assert!(t.contains("from ECS"), "{t}");
    assert!(t.contains("81.2.0.0/16"), "{t}");
    assert!(t.contains("lhr"), "{t}");
    assert!(t.contains("scope     18"), "{t}");
    let t = explain(&["www.steer.example", "--client", "126.1.2.3"]);
    assert!(t.contains("packet source"), "{t}");
    assert!(!t.contains("from ECS"), "{t}");
}
