//! DNSSEC end to end, checked by real validators: the `geosteer` binary
//! serves the demo zone signed with keys made at test time (by
//! `geosteer dnssec keygen`, and once each by `dnssec-keygen` and
//! `ldns-keygen`); `delv` and Unbound (validator + subnetcache, the zone's
//! DS as trust anchor) must call every kind of answer secure — static,
//! steered with ECS, steered HTTPS, partner CNAME, wildcard, NODATA,
//! NXDOMAIN — and a wrong anchor
//! bogus. A ZSK rollover is driven only by dated key files while Unbound
//! keeps validating. `dig` and `kdig` check TC and TCP with signed
//! answers.

use crate::support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use support::dns::{opt_rr, raw_query, udp_raw_timeout};
use support::server::Fixture;
use support::tools::{need_tools, tool};
use support::{free_port, repo};

const BIN: &str = env!("CARGO_BIN_EXE_geosteer");

/// Added to the demo zone: a TXT RRset that fits 512 bytes unsigned but
/// not with its RRSIG; a DS at the `sub` delegation and a delegation
/// without one; a DNAME onto the wildcard.
fn extra_records() -> String {
    let s = "x".repeat(200);
    format!(
        "mid IN TXT \"{s}\" \"{s}\"\n\
         sub IN DS 12345 13 2 {}\n\
         nods IN NS ns.nods\n\
         ns.nods IN A 192.0.2.3\n\
         dn IN DNAME wild.cdn.example.\n",
        "AB".repeat(32)
    )
}

/// A signed copy of the demo zone served by the `geosteer` binary.
struct Signed {
    dir: tempfile::TempDir,
    port: u16,
    http: u16,
    child: Option<Child>,
}

impl Drop for Signed {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

use support::keys::keygen;

impl Signed {
    /// The zone files and GeoIP DB in a temp dir, `nets` added to the pools
    /// file; `ttl` replaces the zone's default TTL (the DNSKEY TTL too).
    fn prepare(nets: &str, ttl: u32) -> Signed {
        let port = free_port();
        let http = free_port();
        let fx = Fixture::custom(
            nets,
            &format!("listen: [127.0.0.1:{port}]\nhttp: 127.0.0.1:{http}\n"),
            "dnssec: { keys: keys }\n",
            |zone| zone.replace("$TTL 3600", &format!("$TTL {ttl}")) + &extra_records(),
        );
        std::fs::create_dir(fx.dir.path().join("keys")).unwrap();
        Signed {
            dir: fx.dir,
            port,
            http,
            child: None,
        }
    }

    fn keys(&self) -> PathBuf {
        self.dir.path().join("keys")
    }

    fn start(&mut self) {
        let log = std::fs::File::create(self.dir.path().join("geosteer.log")).unwrap();
        self.child = Some(
            Command::new(BIN)
                .args(["serve", "-c"])
                .arg(self.dir.path().join("geosteer.yaml"))
                .env("RUST_LOG", "geosteer=info")
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .unwrap(),
        );
        let end = Instant::now() + Duration::from_secs(30);
        while !self
            .dig(&["+time=1", "+tries=1", "static.cdn.example", "A"])
            .contains("198.51.100.10")
        {
            assert!(
                Instant::now() < end,
                "geosteer not answering:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("geosteer.log")).unwrap_or_default()
    }

    /// dig straight at geosteer.
    fn dig(&self, args: &[&str]) -> String {
        let out = Command::new(tool("dig"))
            .args(["@127.0.0.1", "-p", &self.port.to_string()])
            .args(args)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// A DO=1, CO=1 query for `name` A over UDP: (rcode, EDNS flags).
    fn co_query(&self, name: &str) -> (u8, u16) {
        // OPT: size 1232, rcode/version 0, flags DO|CO, no options.
        let q = raw_query(
            0x4242,
            0,
            [1, 0, 0, 1],
            name,
            1,
            &opt_rr(1232, 0, 0, 0xC000, &[]),
        );
        let to = ([127, 0, 0, 1], self.port).into();
        let r = &udp_raw_timeout(to, &q, Duration::from_secs(5)).expect("an answer")[..];
        let n = r.len();
        // Our OPT is the last record and has no options: flags at -4..-2.
        (r[3] & 0x0F, u16::from_be_bytes([r[n - 4], r[n - 3]]))
    }

    /// `geosteer dnssec ds cdn.example` for this key directory.
    fn ds(&self) -> String {
        support::keys::ds(&self.keys())
    }

    /// delv's trust anchor file from the DS lines.
    fn delv_anchor(&self, ds: &str) -> PathBuf {
        support::keys::delv_anchor(ds, self.dir.path())
    }

    /// delv at geosteer with the zone as root of trust; its output.
    fn delv(&self, anchor: &Path, args: &[&str]) -> String {
        let out = Command::new(tool("delv"))
            .args(["@127.0.0.1", "-p", &self.port.to_string(), "-a"])
            .arg(anchor)
            .args(["+root=cdn.example"])
            .args(args)
            .output()
            .unwrap();
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    }
}

fn assert_delv_validates(s: &Signed, anchor: &Path) {
    for (q, t, want) in [
        ("static.cdn.example", "A", "198.51.100.10"),
        ("www.cdn.example", "A", "IN\tA"),
        ("www.cdn.example", "AAAA", "IN\tAAAA"),
        ("foo.wild.cdn.example", "A", "198.51.100.20"),
        ("*.wild.cdn.example", "A", "198.51.100.20"),
        ("a.b.wild.cdn.example", "TXT", "wildcard answer"),
        ("alias.cdn.example", "A", "198.51.100.10"),
        ("cdn.example", "DNSKEY", "DNSKEY"),
        ("cdn.example", "MX", "mail.cdn.example"),
        ("static.cdn.example", "MX", "NXRRSET"),
        ("foo.wild.cdn.example", "MX", "NXRRSET"),
        ("*.wild.cdn.example", "MX", "NXRRSET"),
        ("nope.cdn.example", "A", "NXRRSET"),
        ("sub.cdn.example", "DS", "12345 13 2"),
        ("nods.cdn.example", "DS", "NXRRSET"),
        ("foo.dn.cdn.example", "A", "198.51.100.20"),
        ("mail.cdn.example", "AAAA", "NXRRSET"),
    ] {
        let out = s.delv(anchor, &[q, t]);
        assert!(
            out.contains("; fully validated")
                || out.contains("; negative response, fully validated"),
            "delv {q} {t} not validated:\n{out}\n{}",
            s.log()
        );
        assert!(out.contains(want), "delv {q} {t}: no {want}:\n{out}");
    }
}

#[test]
fn delv_validates_every_answer_kind_with_dnssec_keygen_keys() {
    if !need_tools(&["delv", "dig", "dnssec-keygen", "dnssec-dsfromkey"]) {
        return;
    }
    let mut s = Signed::prepare("", 3600);
    let keys = s.keys();
    let keygen = tool("dnssec-keygen");
    for extra in [&["-f", "KSK"][..], &[]] {
        let out = Command::new(&keygen)
            .args(["-q", "-K"])
            .arg(&keys)
            .args(["-a", "ECDSAP256SHA256", "-n", "ZONE"])
            .args(extra)
            .arg("cdn.example")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // Our DS equals BIND's for the KSK.
    let ksk = std::fs::read_dir(&keys)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.extension().is_some_and(|x| x == "key")
                && std::fs::read_to_string(p).unwrap().contains("DNSKEY 257")
        })
        .unwrap();
    let bind = Command::new(tool("dnssec-dsfromkey"))
        .arg("-2")
        .arg(&ksk)
        .output()
        .unwrap();
    let ds = s.ds();
    assert_eq!(
        ds.split_whitespace().collect::<Vec<_>>(),
        String::from_utf8_lossy(&bind.stdout)
            .split_whitespace()
            .collect::<Vec<_>>()
    );
    s.start();
    let anchor = s.delv_anchor(&ds);
    assert_delv_validates(&s, &anchor);
}

#[test]
fn ldns_keygen_ed25519_csk_validates() {
    if !need_tools(&["delv", "dig", "ldns-keygen"]) {
        return;
    }
    let mut s = Signed::prepare("", 3600);
    // One Ed25519 KSK alone: a combined signing key.
    let out = Command::new(tool("ldns-keygen"))
        .current_dir(s.keys())
        .args(["-a", "ED25519", "-k", "cdn.example"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    s.start();
    let ds = s.ds();
    assert!(ds.contains(" DS ") && ds.contains(" 15 2 "), "{ds}");
    let anchor = s.delv_anchor(&ds);
    assert_delv_validates(&s, &anchor);
}

/// Unbound with validator and subnetcache in front of geosteer.
struct Unbound(support::unbound::Unbound);

impl Unbound {
    /// In `<dir>/<name>`, trusting the DS lines of `anchor`.
    fn start(dir: &Path, name: &str, authority: u16, anchor: &str) -> Unbound {
        let anchors: String = anchor
            .lines()
            .map(|l| format!("    trust-anchor: \"{l}\"\n"))
            .collect();
        let server = format!(
            r#"    module-config: "subnetcache validator iterator"
    max-client-subnet-ipv4: 24
    val-log-level: 2
    # Bogus answers are not kept around between the rollover's steps.
    val-bogus-ttl: 1
{anchors}"#
        );
        // Ready when it answers at all (a wrong anchor gives SERVFAIL).
        Unbound(support::unbound::Unbound::start(
            &dir.join(name),
            authority,
            &server,
            "status: ",
        ))
    }

    fn log(&self) -> String {
        self.0.log()
    }

    /// dig +dnssec through Unbound: its output.
    fn dig(&self, args: &[&str]) -> String {
        let mut all = vec!["+dnssec"];
        all.extend_from_slice(args);
        String::from_utf8_lossy(&self.0.dig(&all).stdout).into_owned()
    }

    /// Asks and requires AD with the given status (and `want` in the output).
    fn secure(&self, args: &[&str], status: &str, want: &str) -> String {
        let mut a = vec!["+time=5", "+tries=2"];
        a.extend_from_slice(args);
        let out = self.dig(&a);
        let flags = out
            .lines()
            .find(|l| l.starts_with(";; flags:"))
            .unwrap_or("");
        assert!(
            out.contains(&format!("status: {status}")) && flags.contains(" ad"),
            "{args:?}: not {status} with AD:\n{out}\n{}",
            self.log()
        );
        assert!(out.contains(want), "{args:?}: no {want}:\n{out}");
        out
    }
}

fn answer_addrs(out: &str) -> Vec<String> {
    let mut v: Vec<String> = out
        .lines()
        .filter(|l| !l.starts_with(';'))
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() == 5 && f[3] == "A").then(|| f[4].to_string())
        })
        .collect();
    v.sort();
    v
}

#[test]
fn unbound_validates_static_steered_wildcard_and_denials_and_rejects_a_wrong_anchor() {
    if !need_tools(&["unbound", "dig"]) {
        return;
    }
    // The client's loopback /24 is placed in Sydney.
    let mut s = Signed::prepare("  127.0.0.0/24: [-33.87, 151.21]\n", 3600);
    keygen(&s.keys(), &["--ksk"]);
    keygen(&s.keys(), &[]);
    s.start();
    let ds = s.ds();
    let ub = Unbound::start(s.dir.path(), "good", s.port, ds.trim());

    ub.secure(&["static.cdn.example", "A"], "NOERROR", "198.51.100.10");
    ub.secure(&["foo.wild.cdn.example", "A"], "NOERROR", "198.51.100.20");
    ub.secure(
        &["a.b.wild.cdn.example", "TXT"],
        "NOERROR",
        "wildcard answer",
    );
    ub.secure(&["alias.cdn.example", "A"], "NOERROR", "198.51.100.10");
    ub.secure(&["static.cdn.example", "MX"], "NOERROR", "NSEC");
    ub.secure(&["foo.wild.cdn.example", "MX"], "NOERROR", "NSEC");
    // Compact denial: NXDOMAIN is NOERROR with an NXNAME NSEC.
    ub.secure(&["nope.cdn.example", "A"], "NOERROR", "TYPE128");
    ub.secure(&["mid.cdn.example", "TXT"], "NOERROR", "xxxx");
    ub.secure(&["foo.dn.cdn.example", "A"], "NOERROR", "DNAME");
    ub.secure(&["sub.cdn.example", "DS"], "NOERROR", "12345 13 2");
    ub.secure(&["nods.cdn.example", "DS"], "NOERROR", "NSEC");

    // Steered with ECS through the subnet cache: each continent its edge,
    // validated; the repeat from the cache still AD.
    for (subnet, edge) in [
        ("8.8.8.0/24", "198.51.100.20"),
        ("77.88.8.0/24", "192.0.2.20"),
        ("114.114.114.0/24", "203.0.113.10"),
    ] {
        let sub = format!("+subnet={subnet}");
        for _ in 0..2 {
            let out = ub.secure(&[&sub, "www.cdn.example", "A"], "NOERROR", "RRSIG");
            assert_eq!(answer_addrs(&out), [edge], "{subnet}:\n{out}");
        }
    }
    let out = ub.secure(&["www.cdn.example", "A"], "NOERROR", "RRSIG");
    assert_eq!(
        answer_addrs(&out),
        ["203.0.113.30"],
        "plain client (Sydney)"
    );

    // A trust anchor for a key the zone does not use: every answer is
    // bogus, which Unbound answers SERVFAIL.
    let other = tempfile::tempdir().unwrap();
    keygen(other.path(), &["--ksk"]);
    let wrong = Command::new(BIN)
        .args(["dnssec", "ds", "cdn.example", "--dir"])
        .arg(other.path())
        .output()
        .unwrap();
    let bad = Unbound::start(
        s.dir.path(),
        "bad",
        s.port,
        String::from_utf8_lossy(&wrong.stdout).trim(),
    );
    for q in ["static.cdn.example", "www.cdn.example"] {
        let out = bad.dig(&["+time=5", "+tries=1", q, "A"]);
        assert!(
            out.contains("status: SERVFAIL"),
            "{q} with a wrong anchor:\n{out}"
        );
    }
}

/// Rewrites `Name: value` timing lines of a key's `.key` and `.private`
/// files (as `dnssec-settime` does).
fn set_times(base: &str, times: &[(&str, u64)]) {
    for (ext, comment) in [("key", true), ("private", false)] {
        let p = format!("{base}.{ext}");
        let text = std::fs::read_to_string(&p).unwrap();
        let mut lines: Vec<String> = text
            .lines()
            .filter(|l| {
                !times.iter().any(|(n, _)| {
                    l.starts_with(&format!("{n}:")) || l.starts_with(&format!("; {n}:"))
                })
            })
            .map(str::to_string)
            .collect();
        for (n, t) in times {
            let stamp = geosteer::format_time(*t);
            if comment {
                lines.insert(1, format!("; {n}: {stamp}"));
            } else {
                lines.push(format!("{n}: {stamp}"));
            }
        }
        // Write aside and rename, as an operator's tooling would.
        let tmp = format!("{p}.tmp");
        std::fs::write(&tmp, lines.join("\n") + "\n").unwrap();
        std::fs::rename(&tmp, &p).unwrap();
    }
}

fn rrsig_tags(out: &str, covered: &str) -> Vec<u16> {
    out.lines()
        .filter(|l| !l.starts_with(';'))
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() > 10 && f[3] == "RRSIG" && f[4] == covered).then(|| f[10].parse().unwrap())
        })
        .collect()
}

#[test]
fn zsk_rollover_by_dated_key_files_keeps_validating() {
    if !need_tools(&["unbound", "dig"]) {
        return;
    }
    // Short TTLs so Unbound refetches the DNSKEY RRset during the test.
    let mut s = Signed::prepare("", 2);
    keygen(&s.keys(), &["--ksk"]);
    let old = keygen(&s.keys(), &[]);
    s.start();
    let tag = |base: &str| -> u16 { base.rsplit('+').next().unwrap().parse().unwrap() };
    let old_tag = tag(&old);
    let ub = Unbound::start(s.dir.path(), "roll", s.port, s.ds().trim());
    let out = ub.secure(&["static.cdn.example", "A"], "NOERROR", "198.51.100.10");
    assert_eq!(rrsig_tags(&out, "A"), [old_tag]);

    // Pre-publish: the new ZSK is published now and signs from T; the old
    // one stops signing at T and leaves the DNSKEY RRset at T + 8.
    let now = support::unix_now();
    let t = now + 8;
    // Made aside and dated, then moved in: the server never sees it undated.
    let staging = s.dir.path().join("staging");
    std::fs::create_dir(&staging).unwrap();
    let staged = keygen(&staging, &[]);
    set_times(&staged, &[("Publish", now), ("Activate", t)]);
    let file = Path::new(&staged)
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    let new = s.keys().join(&file).display().to_string();
    for ext in ["private", "key"] {
        std::fs::rename(format!("{staged}.{ext}"), format!("{new}.{ext}")).unwrap();
    }
    set_times(&old, &[("Inactive", t), ("Delete", t + 8)]);
    let new_tag = tag(&new);

    let end = Instant::now() + Duration::from_secs(24);
    let mut seen = std::collections::BTreeSet::new();
    let mut i = 0;
    while Instant::now() < end {
        i += 1;
        // A fresh wildcard name each time, so Unbound asks geosteer.
        let q = format!("r{i}.wild.cdn.example");
        let out = ub.secure(&[&q, "A"], "NOERROR", "198.51.100.20");
        seen.extend(rrsig_tags(&out, "A"));
        std::thread::sleep(Duration::from_millis(400));
    }
    assert!(
        seen.contains(&old_tag) && seen.contains(&new_tag),
        "both ZSKs signed during the rollover: {seen:?}\n{}",
        s.log()
    );
    let keys = s.dig(&["+dnssec", "cdn.example", "DNSKEY"]);
    assert!(
        rrsig_tags(&s.dig(&["+dnssec", "static.cdn.example", "A"]), "A") == [new_tag],
        "the new ZSK signs at the end"
    );
    let tags: Vec<String> = keys
        .lines()
        .filter(|l| l.contains("DNSKEY\t256"))
        .map(|l| l.to_string())
        .collect();
    assert_eq!(
        tags.len(),
        1,
        "old ZSK deleted from the DNSKEY RRset:\n{keys}"
    );
}

#[test]
fn signed_answers_truncate_exactly_and_come_whole_over_tcp() {
    if !need_tools(&["dig", "kdig"]) {
        return;
    }
    let mut s = Signed::prepare("", 3600);
    keygen(&s.keys(), &["--ksk"]);
    keygen(&s.keys(), &[]);
    s.start();
    // Unsigned it fits 512 bytes; signed it does not.
    let plain = s.dig(&["+bufsize=512", "mid.cdn.example", "TXT"]);
    assert!(
        !plain.contains(" tc") && plain.contains("ANSWER: 1"),
        "{plain}"
    );
    let udp = s.dig(&[
        "+dnssec",
        "+bufsize=512",
        "+ignore",
        "mid.cdn.example",
        "TXT",
    ]);
    assert!(
        udp.lines()
            .any(|l| l.starts_with(";; flags:") && l.contains(" tc")),
        "{udp}"
    );
    assert!(
        udp.contains("ANSWER: 0"),
        "TC answers carry no partial RRset:\n{udp}"
    );
    // dig falls back to TCP itself.
    let tcp = s.dig(&["+dnssec", "+bufsize=512", "mid.cdn.example", "TXT"]);
    assert!(tcp.contains("(TCP)") && tcp.contains("RRSIG\tTXT"), "{tcp}");
    // Big enough buffer: whole over UDP.
    let big = s.dig(&["+dnssec", "+bufsize=1232", "mid.cdn.example", "TXT"]);
    assert!(big.contains("RRSIG\tTXT") && big.contains("(UDP)"), "{big}");

    let kdig = |args: &[&str]| {
        let out = Command::new(tool("kdig"))
            .args(["@127.0.0.1", "-p", &s.port.to_string(), "+dnssec"])
            .args(args)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let out = kdig(&[
        "+bufsize=512",
        "+notcp",
        "+ignore",
        "mid.cdn.example",
        "TXT",
    ]);
    assert!(
        out.lines()
            .any(|l| l.starts_with(";; Flags:") && l.contains(" tc")),
        "kdig UDP:\n{out}"
    );
    let out = kdig(&["+tcp", "mid.cdn.example", "TXT"]);
    assert!(
        out.contains("RRSIG\tTXT") && out.contains("TCP"),
        "kdig TCP:\n{out}"
    );
    // The NXDOMAIN compact answer over TCP: NSEC and its RRSIG.
    let out = kdig(&["+tcp", "nope.cdn.example", "A"]);
    assert!(
        out.contains("NOERROR") && out.contains("RRSIG\tNSEC"),
        "{out}"
    );

    // Referrals: the DS (signed) or the NSEC proving there is none; the
    // NS at the cut and the glue unsigned (RFC 4035 §3.1.4).
    let sub = s.dig(&["+dnssec", "+norec", "x.sub.cdn.example", "A"]);
    assert!(
        sub.contains("status: NOERROR") && !sub.contains("flags: qr aa"),
        "{sub}"
    );
    assert!(
        sub.contains("IN\tDS\t12345 13 2") && sub.contains("RRSIG\tDS"),
        "{sub}"
    );
    assert!(
        !sub.contains("RRSIG\tNS ") && !sub.contains("RRSIG\tA"),
        "{sub}"
    );
    let nods = s.dig(&["+dnssec", "+norec", "x.nods.cdn.example", "A"]);
    assert!(
        nods.contains("NSEC\t\\000.nods.cdn.example. NS RRSIG NSEC")
            && nods.contains("RRSIG\tNSEC"),
        "{nods}"
    );
    assert!(
        !nods.contains("RRSIG\tNS ") && !nods.contains("RRSIG\tA"),
        "{nods}"
    );
    // An explicit NXNAME query is a FORMERR (RFC 9824 §3.5).
    let nx = s.dig(&["+dnssec", "nope.cdn.example", "TYPE128"]);
    assert!(nx.contains("status: FORMERR"), "{nx}");
    // CO set: the compact NXDOMAIN keeps its rcode, and CO is echoed.
    let co = s.co_query("nope.cdn.example");
    assert_eq!(co.0, 3, "NXDOMAIN rcode with CO");
    assert_eq!(co.1 & 0xC000, 0xC000, "DO and CO echoed");
    assert_eq!(s.co_query("static.cdn.example").0, 0);
    // DO=0 gets no DNSSEC records at all.
    let plain = s.dig(&["+norec", "x.sub.cdn.example", "A"]);
    assert!(
        !plain.contains("RRSIG") && !plain.contains("\tDS\t"),
        "{plain}"
    );

    // Metrics and status show the signer at work, and no key material.
    let status = reqwest_get(s.http, "/api/status");
    assert!(
        status.contains("\"ds\"") && status.contains("\"ksk\""),
        "{status}"
    );
    let private = std::fs::read_dir(s.keys())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "private"))
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect::<Vec<_>>();
    for p in private {
        let secret = p
            .lines()
            .find_map(|l| l.strip_prefix("PrivateKey: "))
            .unwrap();
        assert!(!status.contains(secret) && !s.log().contains(secret));
    }
    let metrics = reqwest_get(s.http, "/metrics");
    assert!(
        metrics.contains("geosteer_dnssec_signatures_total"),
        "{metrics}"
    );
}

/// A plain HTTP GET on loopback (no client crate needed for one call).
fn reqwest_get(port: u16, path: &str) -> String {
    use std::io::{Read, Write};
    let mut c = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        c,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut s = String::new();
    c.read_to_string(&mut s).unwrap();
    s
}

#[test]
fn a_bad_key_file_is_rejected_with_file_and_line_and_the_last_good_state_serves() {
    if !need_tools(&["dig"]) {
        return;
    }
    let mut s = Signed::prepare("", 3600);
    keygen(&s.keys(), &["--ksk"]);
    let zsk = keygen(&s.keys(), &[]);
    let cfg = s.dir.path().join("geosteer.yaml");
    let check = || {
        let out = Command::new(BIN)
            .args(["check", "-c"])
            .arg(&cfg)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    let (code, out) = check();
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("signed: cdn.example. keys") && out.contains("zsk active"),
        "{out}"
    );
    s.start();
    let before = s.dig(&["+dnssec", "static.cdn.example", "A"]);
    assert!(before.contains("RRSIG\tA"), "{before}");

    // A key pair whose private half is damaged (the public half is fine).
    let secret = "c2VjcmV0IHRoYXQgbXVzdCBub3QgbGVhaw==";
    let bad = s
        .keys()
        .join("Kcdn.example.+013+00001")
        .display()
        .to_string();
    let bad_private = format!("{bad}.private");
    std::fs::write(
        &bad_private,
        format!(
            "Private-key-format: v1.3\nAlgorithm: 13 (ECDSAP256SHA256)\nPrivateKey: {secret}\n"
        ),
    )
    .unwrap();
    std::fs::copy(format!("{zsk}.key"), format!("{bad}.key")).unwrap();
    let want = format!("{bad_private}:3: PrivateKey");
    let end = Instant::now() + Duration::from_secs(20);
    loop {
        let st = reqwest_get(s.http, "/api/status");
        if st.contains("\"ok\":false") {
            assert!(st.contains(&want), "{want} not in {st}");
            assert!(!st.contains(secret), "the private key leaked into the API");
            break;
        }
        assert!(Instant::now() < end, "reload did not fail:\n{st}");
        std::thread::sleep(Duration::from_millis(200));
    }
    let (code, out) = check();
    assert_eq!(code, Some(1));
    assert!(out.contains(&want) && !out.contains(secret), "{out}");
    assert!(
        !s.log().contains(secret),
        "the private key leaked into the log"
    );
    // Still signing with the last good keys.
    let after = s.dig(&["+dnssec", "static.cdn.example", "A"]);
    assert_eq!(rrsig_tags(&after, "A"), rrsig_tags(&before, "A"), "{after}");
}

#[test]
fn ds_at_a_child_apex_we_also_serve_comes_signed_from_the_parent() {
    if !need_tools(&["delv", "dig"]) {
        return;
    }
    let mut s = Signed::prepare("", 3600);
    // The child of the `sub` delegation, served here too, unsigned.
    std::fs::write(
        s.dir.path().join("zones/sub.cdn.example.zone"),
        "$TTL 300\n@ IN SOA ns1 hostmaster 1 3600 600 604800 300\n@ IN NS ns1\nns1 IN A 192.0.2.1\nwww IN A 192.0.2.99\n",
    )
    .unwrap();
    keygen(&s.keys(), &["--ksk"]);
    keygen(&s.keys(), &[]);
    s.start();
    let anchor = s.delv_anchor(&s.ds());
    let out = s.delv(&anchor, &["sub.cdn.example", "DS"]);
    assert!(
        out.contains("; fully validated") && out.contains("12345 13 2"),
        "{out}"
    );
    // The child itself is unsigned: its answers carry no RRSIG.
    let child = s.dig(&["+dnssec", "www.sub.cdn.example", "A"]);
    assert!(
        child.contains("192.0.2.99") && !child.contains("RRSIG"),
        "{child}"
    );
}

/// A partner CDN's CNAME (`Outcome::Partner`) and a steered HTTPS record
/// (hints from the steering decision) are signed like the steered A and
/// the fallback CNAME: delv validates them, the HTTPS answer of a host
/// steered to a partner (its CNAME), and NODATA at a steered host whose
/// NSEC bitmap lists HTTPS. The demo's out-of-zone partner (`dl` from
/// Brazil) carries an RRSIG over its CNAME.
#[test]
fn partner_cname_and_steered_https_validate() {
    if !need_tools(&["delv", "dig"]) {
        return;
    }
    let mut s = Signed::prepare("", 3600);
    // A partner whose CNAME target is in the zone, so delv can follow it.
    let pools = s.dir.path().join("zones/cdn.example.pools.yaml");
    let text = std::fs::read_to_string(&pools).unwrap();
    let partner = "  akamai: { cname: www.cdn.example.edgekey.example. }\n";
    assert!(text.contains(partner), "demo pools file changed");
    let text = text.replace(
        partner,
        &format!("{partner}  inpartner: {{ cname: static.cdn.example. }}\n"),
    ) + "  pdl: { edges: [inpartner] }\n  phttps:\n    edges: [inpartner]\n    https: { priority: 1, target: \".\", alpn: [h2] }\n";
    std::fs::write(&pools, text).unwrap();
    // The demo's RTT file: Brazil measures the out-of-zone partner fastest.
    std::fs::copy(
        repo().join("zones/cdn.example.rtt.csv"),
        s.dir.path().join("zones/cdn.example.rtt.csv"),
    )
    .unwrap();
    keygen(&s.keys(), &["--ksk"]);
    keygen(&s.keys(), &[]);
    s.start();
    let anchor = s.delv_anchor(&s.ds());
    for (q, t, want) in [
        ("www.cdn.example", "HTTPS", "ipv4hint="),
        ("pdl.cdn.example", "A", "198.51.100.10"),
        ("pdl.cdn.example", "A", "CNAME\tstatic.cdn.example."),
        ("phttps.cdn.example", "HTTPS", "CNAME\tstatic.cdn.example."),
        ("www.cdn.example", "TXT", "NXRRSET"),
    ] {
        let out = s.delv(&anchor, &[q, t]);
        assert!(
            out.contains("; fully validated")
                || out.contains("; negative response, fully validated"),
            "delv {q} {t} not validated:\n{out}\n{}",
            s.log()
        );
        assert!(out.contains(want), "delv {q} {t}: no {want}:\n{out}");
    }
    // NODATA at a steered host with a template: HTTPS is in the bitmap.
    let out = s.dig(&["+dnssec", "+norec", "www.cdn.example", "TXT"]);
    let nsec = out
        .lines()
        .find(|l| l.contains("\tNSEC\t"))
        .unwrap_or_else(|| panic!("no NSEC:\n{out}"));
    assert!(
        nsec.contains(" A ") && nsec.contains("AAAA") && nsec.contains("HTTPS"),
        "{nsec}"
    );
    // The demo's partner from Brazil (RTT file): its CNAME is signed.
    let out = s.dig(&[
        "+dnssec",
        "+norec",
        "+subnet=198.18.4.0/24",
        "dl.cdn.example",
        "A",
    ]);
    assert!(
        out.contains("CNAME\twww.cdn.example.edgekey.example."),
        "{out}"
    );
    assert!(out.contains("RRSIG\tCNAME 13 3 "), "{out}");
}

/// Unbound validates every kind of answer of a signed zone holding one
/// record of every type (tests/fixtures/alltypes.example.zone, moved into
/// cdn.example) and a steered wildcard `*.edge`: each type at its name;
/// explicit NSEC and RRSIG queries at a static name, a CNAME, a steered
/// host, the apex, a wildcard expansion and a name that does not exist;
/// the steered wildcard asked literally and through an expansion (A, AAAA,
/// HTTPS, NODATA). delv agrees on the steered wildcard.
#[test]
fn unbound_validates_every_answer_kind_of_a_zone_with_every_type() {
    if !need_tools(&["unbound", "dig", "delv"]) {
        return;
    }
    let all = std::fs::read_to_string(repo().join("tests/fixtures/alltypes.example.zone")).unwrap();
    // The fixture's records below its apex, with names relative to it.
    let body: String = all
        .lines()
        .filter(|l| !l.starts_with(['$', ';', '@']) && !l.starts_with("ns1 "))
        .map(|l| format!("{l}\n"))
        .collect();
    let mut s = Signed::prepare("  127.0.0.0/24: [-33.87, 151.21]\n", 3600);
    let zone = s.dir.path().join("zones/cdn.example.zone");
    let text = std::fs::read_to_string(&zone).unwrap() + "$ORIGIN cdn.example.\n" + &body;
    std::fs::write(&zone, text).unwrap();
    let pools = s.dir.path().join("zones/cdn.example.pools.yaml");
    let text = std::fs::read_to_string(&pools).unwrap()
        + "  \"*.edge\":\n    edges: [lhr, fra, syd]\n    https: { priority: 1, target: \".\", alpn: [h2] }\n";
    std::fs::write(&pools, text).unwrap();
    keygen(&s.keys(), &["--ksk"]);
    keygen(&s.keys(), &[]);
    s.start();
    let ds = s.ds();
    let ub = Unbound::start(s.dir.path(), "alltypes", s.port, ds.trim());

    // Every record of the fixture, at its name (DS and NS at the `ds`
    // delegation are the referral's, asked below).
    let mut asked = 0;
    for l in body.lines() {
        let f: Vec<&str> = l.split_whitespace().collect();
        let (owner, t) = (f[0], f[1]);
        if owner == "ds" {
            continue;
        }
        let q = format!("{owner}.cdn.example");
        // dig prints KEYDATA, BIND's private type, as TYPE65533.
        let shown = if t == "KEYDATA" { "TYPE65533" } else { t };
        ub.secure(&[&q, t], "NOERROR", &format!("IN\t{shown}"));
        asked += 1;
    }
    assert!(asked > 80, "{asked}");
    ub.secure(&["ds.cdn.example", "DS"], "NOERROR", "12345 13 2");

    // Explicit NSEC: the NSEC at the name, listing what is there.
    for (q, want) in [
        (
            "static.cdn.example",
            "NSEC\t\\000.static.cdn.example. A AAAA RRSIG NSEC",
        ),
        ("cname.cdn.example", "CNAME RRSIG NSEC"),
        ("www.cdn.example", "A AAAA RRSIG NSEC HTTPS"),
        ("cdn.example", "DNSKEY"),
        (
            "foo.wild.cdn.example",
            "NSEC\t\\000.foo.wild.cdn.example. A TXT RRSIG NSEC",
        ),
        ("nope.cdn.example", "RRSIG NSEC TYPE128"),
        ("x.edge.cdn.example", "A AAAA RRSIG NSEC HTTPS"),
    ] {
        ub.secure(&[q, "NSEC"], "NOERROR", want);
    }
    // Explicit RRSIG: the signatures of what is there and of the NSEC.
    for (q, want) in [
        ("static.cdn.example", "RRSIG\tA 13 3 300"),
        ("static.cdn.example", "RRSIG\tNSEC 13 3"),
        ("cname.cdn.example", "RRSIG\tCNAME"),
        ("cdn.example", "RRSIG\tDNSKEY 13 2"),
        ("nope.cdn.example", "RRSIG\tNSEC 13 3"),
        ("www.cdn.example", "RRSIG\tNSEC 13 3"),
    ] {
        let out = ub.0.dig(&["+dnssec", "+time=5", "+tries=2", q, "RRSIG"]);
        let out = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.contains("status: NOERROR") && out.contains(want),
            "{q} RRSIG: no {want}:\n{out}\n{}",
            ub.log()
        );
    }

    // The steered wildcard: literal and expanded, each continent its edge.
    for q in [
        "*.edge.cdn.example",
        "img1.edge.cdn.example",
        "a.b.edge.cdn.example",
    ] {
        let out = ub.secure(&[q, "A"], "NOERROR", "203.0.113.30");
        // Signed as the wildcard: 3 labels (the `*` does not count), not 4 or 5.
        assert!(out.contains("RRSIG\tA 13 3 "), "{q}:\n{out}");
        ub.secure(&[q, "AAAA"], "NOERROR", "IN\tAAAA\t2001:db8:");
        ub.secure(&[q, "HTTPS"], "NOERROR", "ipv4hint=203.0.113.30");
        ub.secure(&[q, "TXT"], "NOERROR", "NSEC");
    }
    let out = ub.secure(
        &["+subnet=77.88.8.0/24", "e2.edge.cdn.example", "A"],
        "NOERROR",
        "192.0.2.20",
    );
    assert!(out.contains("RRSIG\tA 13 3 "), "{out}");
    let anchor = s.delv_anchor(&ds);
    for (q, t) in [
        ("*.edge.cdn.example", "A"),
        ("img2.edge.cdn.example", "A"),
        ("img2.edge.cdn.example", "HTTPS"),
        ("img2.edge.cdn.example", "MX"),
        ("static.cdn.example", "NSEC"),
        ("eui48.cdn.example", "EUI48"),
    ] {
        let out = s.delv(&anchor, &[q, t]);
        assert!(
            out.contains("; fully validated")
                || out.contains("; negative response, fully validated"),
            "delv {q} {t}:\n{out}\n{}",
            s.log()
        );
    }
    // Straight from geosteer: the expansion carries the NSEC covering the
    // next closer name, as a static wildcard's does.
    let out = s.dig(&["+dnssec", "+norec", "img3.edge.cdn.example", "A"]);
    assert!(
        out.contains("RRSIG\tA 13 3 ") && out.contains("img3\\000.edge.cdn.example. RRSIG NSEC"),
        "{out}"
    );
}

/// The demo zone signed, as a CDN's zone is: Unbound asked for every name
/// in it (static, CNAME, wildcard literal and expanded, DNAME, MX/SRV
/// targets, the apex, steered hosts, a steered wildcard, names that do not
/// exist, empty non-terminals) with every common type, explicit NSEC and
/// RRSIG included, must answer each one validated (AD) and never SERVFAIL.
/// Names below the delegations (whose servers are not on loopback) and
/// the out-of-zone partner are left out; their DS is asked.
#[test]
fn unbound_validates_every_name_of_the_demo_zone_with_every_type() {
    if !need_tools(&["unbound", "dig"]) {
        return;
    }
    let mut s = Signed::prepare("  127.0.0.0/24: [-33.87, 151.21]\n", 3600);
    let pools = s.dir.path().join("zones/cdn.example.pools.yaml");
    let text = std::fs::read_to_string(&pools).unwrap()
        + "  \"*.edge\":\n    edges: [lhr, fra, syd]\n    https: { priority: 1, target: \".\", alpn: [h2] }\n  a.deep:\n    edges: [syd]\n";
    std::fs::write(&pools, text).unwrap();
    keygen(&s.keys(), &["--ksk"]);
    keygen(&s.keys(), &[]);
    s.start();
    let ub = Unbound::start(s.dir.path(), "sweep", s.port, s.ds().trim());

    let names = [
        "cdn.example",
        "ns1.cdn.example",
        "ns2.cdn.example",
        "static.cdn.example",
        "alias.cdn.example",
        "*.wild.cdn.example",
        "x.wild.cdn.example",
        "a.b.wild.cdn.example",
        "wild.cdn.example",
        "mail.cdn.example",
        "_sip._udp.cdn.example",
        "_udp.cdn.example",
        "bigtxt.cdn.example",
        "ptr.cdn.example",
        "mid.cdn.example",
        "dn.cdn.example",
        "foo.dn.cdn.example",
        "www.cdn.example",
        "img.cdn.example",
        "video.cdn.example",
        "*.edge.cdn.example",
        "e1.edge.cdn.example",
        "edge.cdn.example",
        "a.deep.cdn.example",
        "deep.cdn.example",
        "nope.cdn.example",
        "a.nope.cdn.example",
        "zzz.cdn.example",
        "0.cdn.example",
    ];
    let types = [
        "A", "AAAA", "HTTPS", "TXT", "MX", "NS", "SOA", "CAA", "SRV", "PTR", "CNAME", "DNAME",
        "DNSKEY", "DS", "NSEC", "RRSIG", "SVCB",
    ];
    let mut failed = Vec::new();
    let mut asked = 0;
    for name in names.iter().chain(&["sub.cdn.example", "nods.cdn.example"]) {
        let only_ds = name.starts_with("sub.") || name.starts_with("nods.");
        for t in types {
            // The apex's DS is its parent's, which is not on loopback.
            // CNAME and DNAME asked below a DNAME: Unbound looks for the
            // signer of the RRset owned by the name asked, the synthesised
            // CNAME that RFC 6672 §5.3.1 leaves unsigned, and fails to
            // build a chain of trust down to it (as it does for Knot's
            // answer, which is the same).
            if (only_ds && t != "DS")
                || (*name == "cdn.example" && t == "DS")
                || (*name == "foo.dn.cdn.example" && (t == "CNAME" || t == "DNAME"))
            {
                continue;
            }
            asked += 1;
            let out = ub.dig(&["+time=5", "+tries=2", name, t]);
            let flags = out
                .lines()
                .find(|l| l.starts_with(";; flags:"))
                .unwrap_or("");
            let status_ok = out.contains("status: NOERROR") || out.contains("status: NXDOMAIN");
            // RRSIGs alone are not validated (no validator sets AD on
            // them), but they must come.
            let secure = if t == "RRSIG" {
                out.contains("\tRRSIG\t")
            } else {
                flags.contains(" ad")
            };
            if !status_ok || !secure {
                let status = out
                    .lines()
                    .find(|l| l.contains("status:"))
                    .unwrap_or("no answer")
                    .to_string();
                failed.push(format!("{name} {t}: {status} [{flags}]"));
            }
        }
    }
    assert!(asked > 450, "{asked}");
    assert!(
        failed.is_empty(),
        "{} of {asked} not validated:\n{}\n{}",
        failed.len(),
        failed.join("\n"),
        ub.log()
    );
}
