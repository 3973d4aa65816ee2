//! End to end: the built binary on a free port, queried with `dig`
//! (bind9-dnsutils), as an operator would.

use crate::support;

use std::process::Command;

use support::server::*;
use support::tools::{need_tools, tool};

fn dig(s: &Binary, args: &[&str]) -> String {
    let out = Command::new(tool("dig"))
        .arg("@127.0.0.1")
        .args([
            "-p",
            &s.port.to_string(),
            "+time=2",
            "+tries=1",
            "+norecurse",
        ])
        .args(args)
        .output()
        .expect("run dig");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "dig {args:?} failed:\n{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

/// The `;; flags: ...;` part of dig's header comment.
fn flags(out: &str) -> Vec<String> {
    let line = out
        .lines()
        .find(|l| l.starts_with(";; flags:"))
        .unwrap_or_else(|| panic!("no flags in\n{out}"));
    let f = line
        .trim_start_matches(";; flags:")
        .split(';')
        .next()
        .unwrap();
    f.split_whitespace().map(str::to_string).collect()
}

fn answer_lines(out: &str) -> Vec<String> {
    out.lines()
        .skip_while(|l| !l.starts_with(";; ANSWER SECTION:"))
        .skip(1)
        .take_while(|l| !l.is_empty())
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect()
}

#[test]
fn dig_against_the_binary() {
    if !need_tools(&["dig"]) {
        return;
    }
    let s = Binary::spawn();

    // Static A, over UDP.
    let out = dig(&s, &["www.example.", "A"]);
    assert!(out.contains("status: NOERROR"), "{out}");
    let f = flags(&out);
    assert!(
        f.contains(&"qr".into()) && f.contains(&"aa".into()),
        "{f:?}"
    );
    assert!(
        !f.contains(&"ra".into()) && !f.contains(&"rd".into()),
        "{f:?}"
    );
    assert_eq!(
        answer_lines(&out),
        vec!["www.example. 7200 IN A 192.0.2.80"]
    );
    assert!(
        out.contains("; EDNS: version: 0") && out.contains("udp: 1232"),
        "{out}"
    );

    // The demo zone's static name.
    let out = dig(&s, &["static.cdn.example.", "A"]);
    assert_eq!(
        answer_lines(&out),
        vec!["static.cdn.example. 300 IN A 198.51.100.10"]
    );

    // NXDOMAIN with the SOA.
    let out = dig(&s, &["nx.host1.example.", "A"]);
    assert!(out.contains("status: NXDOMAIN"), "{out}");
    assert!(out.contains("AUTHORITY: 1"), "{out}");
    assert!(
        out.contains("example.\t\t300\tIN\tSOA") || out.contains("example. 300 IN SOA"),
        "{out}"
    );

    // TC over UDP with a 512-byte buffer, not retried.
    let out = dig(&s, &["big.example.", "TXT", "+bufsize=512", "+ignore"]);
    assert!(flags(&out).contains(&"tc".into()), "{out}");
    assert!(answer_lines(&out).is_empty(), "{out}");

    // Without EDNS: truncated, and dig retries over TCP by itself.
    let out = dig(&s, &["big.example.", "TXT", "+noedns"]);
    assert!(out.contains("Truncated, retrying in TCP mode"), "{out}");
    assert!(!flags(&out).contains(&"tc".into()), "{out}");
    let a = answer_lines(&out);
    assert_eq!(a.len(), 1, "{out}");
    assert!(a[0].contains("part3-"), "{out}");

    // +tcp from the start.
    let out = dig(&s, &["bigtxt.cdn.example.", "TXT", "+tcp"]);
    assert!(
        out.contains("status: NOERROR") && out.contains("(TCP)"),
        "{out}"
    );
    assert_eq!(answer_lines(&out).len(), 1, "{out}");
    let out = dig(&s, &["WwW.ExAmPlE.", "A", "+tcp"]);
    assert_eq!(
        answer_lines(&out),
        vec!["WwW.ExAmPlE. 7200 IN A 192.0.2.80"]
    );

    // Refused outside our zones.
    let out = dig(&s, &["example.org.", "A"]);
    assert!(out.contains("status: REFUSED"), "{out}");
    assert!(!flags(&out).contains(&"aa".into()), "{out}");
}
