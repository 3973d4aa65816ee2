//! `/metrics` of a running `geosteer serve`, as Prometheus reads it:
//! `promtool check metrics` finds nothing to say (every family has HELP
//! and TYPE, names and types agree), `geosteer_edge_state` tells up,
//! overloaded, drain and down apart, overrides show with their reason and
//! expiry, and a zone of 2,000 hosts exports only its busiest
//! `metrics.top_hosts` host series.

use crate::support;

use std::collections::{BTreeMap, BTreeSet};
use std::net::{SocketAddr, TcpListener};
use std::process::{Command, Stdio};
use std::time::Duration;

use hickory_proto::rr::RecordType;
use support::KillOnDrop;
use support::dns::{query, tcp, udp};
use support::http::{get, http_with};
use support::server::MINIMAL_ZONE;
use support::tools::{need_tools, tool};
use support::wait::until_true;

const HOSTS: usize = 2_000;
const TOP: usize = 3;

struct Served {
    _dir: tempfile::TempDir,
    _child: KillOnDrop,
    _edge: TcpListener,
    dns: SocketAddr,
    http: SocketAddr,
}

/// The binary on a zone of [`HOSTS`] hosts over three edges (one probed
/// over TCP), RRL on, `metrics.top_hosts: 3`.
fn serve() -> Served {
    let dir = tempfile::tempdir().unwrap();
    let edge = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = edge.local_addr().unwrap().port();
    let mut pools = [
        "checks:".to_string(),
        format!("  tcp: {{ type: tcp, port: {port}, interval: 200ms, timeout: 100ms }}"),
        "edges:".into(),
        "  lhr: { addresses: [127.0.0.1], location: [51.47, -0.45], check: tcp }".into(),
        "  fra: { addresses: [192.0.2.20], location: [50.03, 8.57] }".into(),
        "  iad: { addresses: [192.0.2.30], location: [38.95, -77.45] }".into(),
        "hosts:\n".into(),
    ]
    .join("\n");
    for i in 0..HOSTS {
        pools.push_str(&format!("  h{i}: {{}}\n"));
    }
    support::write_file(dir.path(), "zones/m.example.zone", MINIMAL_ZONE);
    support::write_file(dir.path(), "zones/m.example.pools.yaml", &pools);
    let dns: SocketAddr = ([127, 0, 0, 1], support::free_port()).into();
    let http: SocketAddr = ([127, 0, 0, 1], support::free_port()).into();
    let cfg = support::write_file(
        dir.path(),
        "geosteer.yaml",
        &format!(
            "listen: [\"{dns}\"]\nzones: zones\nworkers: 1\nhttp: {http}\nrrl: {{ rate: 1000 }}\nmetrics: {{ top_hosts: {TOP} }}\ngeodb: {}\n",
            support::repo().join("geodb/demo-city.mmdb").display()
        ),
    );
    let log = dir.path().join("geosteer.log");
    let child = KillOnDrop(
        Command::new(env!("CARGO_BIN_EXE_geosteer"))
            .args(["serve", "--config"])
            .arg(&cfg)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap(),
    );
    until_true("the server", Duration::from_secs(30), || {
        std::net::TcpStream::connect(http).is_ok() || {
            let t = std::fs::read_to_string(&log).unwrap_or_default();
            assert!(!t.contains("geosteer: "), "did not start: {t}");
            false
        }
    });
    Served {
        _dir: dir,
        _child: child,
        _edge: edge,
        dns,
        http,
    }
}

/// A scrape read back: every sample as (name, labels), and the families
/// with HELP and with TYPE (name → type).
struct Scrape {
    samples: Vec<(String, String)>,
    help: BTreeSet<String>,
    types: BTreeMap<String, String>,
}

fn families(text: &str) -> Scrape {
    let mut s = Scrape {
        samples: Vec::new(),
        help: BTreeSet::new(),
        types: BTreeMap::new(),
    };
    for l in text.lines() {
        if let Some(r) = l.strip_prefix("# HELP ") {
            s.help.insert(r.split(' ').next().unwrap().to_owned());
        } else if let Some(r) = l.strip_prefix("# TYPE ") {
            let (n, t) = r.split_once(' ').unwrap();
            s.types.insert(n.to_owned(), t.to_owned());
        } else if !l.is_empty() && !l.starts_with('#') {
            let (series, _) = l.rsplit_once(' ').unwrap();
            let (name, labels) = series.split_once('{').unwrap_or((series, ""));
            s.samples
                .push((name.to_owned(), labels.trim_end_matches('}').to_owned()));
        }
    }
    s
}

/// A histogram's or summary's samples belong to its family.
fn family_of<'a>(name: &'a str, types: &BTreeMap<String, String>) -> &'a str {
    for suffix in ["_bucket", "_sum", "_count"] {
        if let Some(base) = name.strip_suffix(suffix)
            && types.contains_key(base)
        {
            return base;
        }
    }
    name
}

#[test]
fn promtool_finds_nothing_and_states_are_distinct() {
    if !need_tools(&["promtool"]) {
        return;
    }
    let s = serve();
    // Traffic on both transports, to a few hosts more than others.
    for i in 0..40 {
        let host = format!("h{}.m.example.", [7, 7, 7, 42, 42, 1999][i % 6]);
        udp(s.dns, &query(&host, RecordType::A));
    }
    tcp(s.dns, &query("h5.m.example.", RecordType::A));
    // Probes ran; an override with a reason and an end; a pushed load.
    until_true("a probe", Duration::from_secs(20), || {
        get(s.http, "/metrics").1.contains("geosteer_probe_total{")
    });
    let (code, _, body) = http_with(
        s.http,
        "POST",
        "/api/edges/fra/admin",
        "",
        r#"{"state":"drain","for":"2h","reason":"fibre \"cut\""}"#,
    );
    assert_eq!(code, 200, "{body}");
    let (code, _, body) = http_with(
        s.http,
        "PUT",
        "/api/edges/iad/load",
        "",
        r#"{"load":0.97,"ttl":600}"#,
    );
    assert_eq!(code, 200, "{body}");

    let text = get(s.http, "/metrics").1;
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), &text).unwrap();
    let out = Command::new(tool("promtool"))
        .args(["check", "metrics"])
        .stdin(std::fs::File::open(file.path()).unwrap())
        .output()
        .unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && said.trim().is_empty(),
        "promtool:\n{said}"
    );

    // Our own reading of the same: HELP and TYPE for every family.
    let Scrape {
        samples,
        help,
        types,
    } = families(&text);
    for (name, _) in &samples {
        let f = family_of(name, &types);
        assert!(help.contains(f), "{f}: no HELP");
        assert!(types.contains_key(f), "{f}: no TYPE");
    }

    // One series per state per edge, exactly one of them 1.
    let state = |edge: &str, st: &str| {
        let series =
            format!("geosteer_edge_state{{zone=\"m.example.\",edge=\"{edge}\",state=\"{st}\"}} ");
        text.lines()
            .find_map(|l| l.strip_prefix(&series))
            .unwrap_or_else(|| panic!("no {series}"))
            .trim()
            .to_owned()
    };
    for (edge, is) in [("lhr", "up"), ("fra", "drain"), ("iad", "overloaded")] {
        for st in ["up", "overloaded", "drain", "down"] {
            assert_eq!(
                state(edge, st),
                if st == is { "1" } else { "0" },
                "{edge} {st}"
            );
        }
    }
    assert!(
        text.contains(
            "geosteer_edge_admin_override{zone=\"m.example.\",edge=\"fra\",state=\"drain\",reason=\"fibre \\\"cut\\\"\"} 1"
        ),
        "{text}"
    );
    assert!(text.contains(
        "geosteer_edge_admin_override_expiry_timestamp_seconds{zone=\"m.example.\",edge=\"fra\"} "
    ));
    assert!(text.contains("geosteer_edge_load{zone=\"m.example.\",edge=\"iad\"} 0.97"));

    // 2,000 hosts, three host series: the busiest.
    let hosts: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("geosteer_steered_answers_total{"))
        .collect();
    assert_eq!(hosts.len(), TOP, "{hosts:?}");
    for h in ["h7", "h42", "h1999"] {
        assert!(
            hosts.iter().any(|l| l.contains(&format!("host=\"{h}\""))),
            "{h} not among {hosts:?}"
        );
    }
    assert!(text.contains("geosteer_steered_zone_answers_total{zone=\"m.example.\"} 41"));
    let series = samples.len();
    assert!(series < 600, "{series} series for {HOSTS} hosts");

    // The examples ask only for what is exported (the fleet's series need
    // `fleet:`), and promtool takes the rules.
    let exported: BTreeSet<&str> = samples.iter().map(|(n, _)| n.as_str()).collect();
    let root = support::repo().join("examples");
    for f in ["prometheus-alerts.yaml", "grafana-dashboard.json"] {
        let t = std::fs::read_to_string(root.join(f)).unwrap();
        let mut names: Vec<&str> = t
            .match_indices("geosteer_")
            .map(|(i, _)| {
                let rest = &t[i..];
                let end = rest
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .unwrap_or(rest.len());
                &rest[..end]
            })
            .collect();
        names.sort();
        names.dedup();
        for n in names {
            if !n.starts_with("geosteer_fleet_") {
                assert!(
                    exported.contains(n),
                    "{f} uses {n}, which /metrics does not have"
                );
            }
        }
    }
    let out = Command::new(tool("promtool"))
        .args(["check", "rules"])
        .arg(root.join("prometheus-alerts.yaml"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}
