//! Real clients against a running geosteer: dig (BIND) and kdig (Knot) over
//! UDP and TCP, with ECS, a 512-byte buffer that forces TC and a TCP retry,
//! and several queries pipelined on one kept-open TCP connection.

use crate::support;

use support::server::{Fixture, Server};
use support::tools::{need_tools, run, tool};

/// (ECS subnet, the edge address geosteer must pick for www): San Jose for
/// Mountain View, Frankfurt for Moscow, Tokyo for Nanjing.
const CLIENTS: [(&str, &str); 3] = [
    ("8.8.8.0/24", "198.51.100.20"),
    ("77.88.8.0/24", "192.0.2.20"),
    ("114.114.114.0/24", "203.0.113.10"),
];

fn server() -> Option<Server> {
    need_tools(&["dig", "kdig"]).then(|| Fixture::new("", "").start())
}

fn at(s: &Server) -> [String; 3] {
    ["@127.0.0.1".into(), "-p".into(), s.udp.port().to_string()]
}

/// Runs the tool `name` against the server with `args`.
fn ask(s: &Server, name: &str, args: &[&str]) -> String {
    let a = at(s);
    let mut all: Vec<&str> = a.iter().map(String::as_str).collect();
    all.extend_from_slice(args);
    run(&tool(name), &all)
}

#[test]
fn ecs_answers_over_udp_and_tcp_with_both_clients() {
    let Some(s) = server() else { return };
    for tool in ["dig", "kdig"] {
        for transport in ["+notcp", "+tcp"] {
            for (subnet, edge) in CLIENTS {
                let sub = format!("+subnet={subnet}");
                let short = ask(
                    &s,
                    tool,
                    &[transport, &sub, "+short", "www.cdn.example", "A"],
                );
                assert_eq!(short.trim(), edge, "{tool} {transport} {subnet}");
                // The full answer echoes the subnet with scope /24, and is
                // authoritative.
                let full = ask(&s, tool, &[transport, &sub, "www.cdn.example", "A"]);
                let echo = format!("CLIENT-SUBNET: {subnet}/24");
                assert!(
                    full.contains(&echo),
                    "{tool} {transport} {subnet}: no ECS echo in\n{full}"
                );
                assert!(
                    full.to_lowercase().contains("flags: qr aa"),
                    "{tool}: not authoritative\n{full}"
                );
                let proto = if transport == "+tcp" {
                    "(TCP)"
                } else {
                    "(UDP)"
                };
                if tool == "kdig" {
                    assert!(
                        full.contains(proto),
                        "kdig {transport}: wrong transport\n{full}"
                    );
                }
            }
        }
    }
    // Both transports were really used.
    assert!(s.metrics.sum("geosteer_tcp_connections_total") >= 6);
    assert!(s.metrics.sum("geosteer_ecs_queries_total") >= 24);
}

#[test]
fn bufsize_512_truncates_then_tcp_retry_gets_the_answer() {
    let Some(s) = server() else { return };
    for tool in ["dig", "kdig"] {
        // Without the retry: TC and an empty answer section.
        let trunc = ask(
            &s,
            tool,
            &["+bufsize=512", "+ignore", "bigtxt.cdn.example", "TXT"],
        );
        let flags = trunc
            .lines()
            .find(|l| l.to_lowercase().contains("flags: qr"))
            .unwrap_or_default()
            .to_lowercase();
        assert!(flags.contains(" tc"), "{tool}: no TC in\n{trunc}");
        assert!(
            !trunc.contains("chunk4-delta-end"),
            "{tool}: a truncated answer carried records"
        );
        // Default behaviour: notice TC and retry over TCP.
        let full = ask(&s, tool, &["+bufsize=512", "bigtxt.cdn.example", "TXT"]);
        let retried = match tool {
            "dig" => full.contains("Truncated, retrying in TCP mode"),
            // kdig warns on stderr; stdout names the transport that answered.
            _ => full.contains("(TCP)"),
        };
        assert!(retried, "{tool}: no TCP retry\n{full}");
        assert!(
            full.contains("chunk1-alpha") && full.contains("chunk4-delta-end"),
            "{tool}: TXT incomplete\n{full}"
        );
        // Plain DNS (no EDNS) is truncated at 512 too.
        let plain = ask(
            &s,
            tool,
            &["+noedns", "+ignore", "bigtxt.cdn.example", "TXT"],
        );
        assert!(
            plain.to_lowercase().contains(" tc"),
            "{tool} +noedns: no TC\n{plain}"
        );
    }
    assert!(s.metrics.sum("geosteer_truncated_total") >= 4);
}

#[test]
fn keepopen_pipelines_several_queries_on_one_tcp_connection() {
    let Some(s) = server() else { return };
    let before = s.metrics.sum("geosteer_tcp_connections_total");
    let out = ask(
        &s,
        "kdig",
        &[
            "+tcp",
            "+keepopen",
            "+subnet=8.8.8.0/24",
            "www.cdn.example",
            "A",
            "static.cdn.example",
            "AAAA",
            "bigtxt.cdn.example",
            "TXT",
            "nope.cdn.example",
            "A",
            "alias.cdn.example",
            "A",
        ],
    );
    for want in [
        "198.51.100.20",
        "2001:db8::10",
        "chunk4-delta-end",
        "NXDOMAIN",
        "static.cdn.example.",
    ] {
        assert!(out.contains(want), "missing {want} in\n{out}");
    }
    let conns = s.metrics.sum("geosteer_tcp_connections_total") - before;
    let queries = s.metrics.sum("geosteer_queries_total");
    assert_eq!(conns, 1, "kdig +keepopen opened {conns} connections\n{out}");
    assert_eq!(queries, 5, "all five queries answered over that connection");
}
