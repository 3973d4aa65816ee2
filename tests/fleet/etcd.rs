//! A fleet through a real etcd: a 3-member etcd cluster on loopback and
//! three `geosteer` processes sharing overrides, load and health verdicts
//! through it, then the faults (leader killed, etcd hung, all of etcd
//! killed, an instance restarted while etcd is down, etcd back) and drift;
//! and the link over TLS with a client certificate and password auth.
//!
//! Needs `etcd` (Debian etcd-server); prints SKIPPED without it unless
//! GEOSTEER_REQUIRE_TOOLS=1.

use crate::support;

use std::net::SocketAddr;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use support::fleet::*;
use support::tools::need_tools;
use support::wait::until_true;

#[test]
fn a_fleet_through_etcd() {
    if !need_tools(&["etcd"]) {
        return;
    }
    let t0 = Instant::now();
    let mut f = start_fleet();
    println!("fleet up in {:?}", t0.elapsed());
    wait_all(&f.all(), NEAR, Duration::from_secs(10));

    // A drain through ns1 reaches every instance's answers within 1 s;
    // `auto` through ns2 undoes it everywhere.
    f.insts[0].call("POST", "/api/edges/near/admin", r#"{"state":"drain"}"#);
    let took = wait_all(&f.all(), FAR, Duration::from_secs(1));
    println!("drain reached all three in {took:?}");
    f.insts[1].call("POST", "/api/edges/near/admin", r#"{"state":"auto"}"#);
    let took = wait_all(&f.all(), NEAR, Duration::from_secs(1));
    println!("auto reached all three in {took:?}");

    // A load reading sent to ns2 overloads the edge on all three.
    f.insts[1].call(
        "PUT",
        "/api/edges/near/load",
        r#"{"load":0.95,"ttl":"60s"}"#,
    );
    wait_all(&f.all(), FAR, Duration::from_secs(1));
    let e = f.insts[2].get("/api/edges");
    let near = e
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["name"] == "near")
        .unwrap();
    assert_eq!(near["effective"], "overloaded", "{near}");
    assert_eq!(near["last_load"], 0.95, "{near}");
    f.insts[2].call("PUT", "/api/edges/near/load", r#"{"load":0.1,"ttl":"60s"}"#);
    wait_all(&f.all(), NEAR, Duration::from_secs(1));

    // Quorum: only ns3 (probing from 127.0.0.3) sees near fail. It
    // publishes `down`, the majority keeps the edge up, and all three
    // keep answering with it.
    f.edges.fail_near_for(&["127.0.0.3"]);
    until_true(
        "ns1 sees ns3's down verdict",
        Duration::from_secs(10),
        || {
            let r = f.insts[0].get("/api/fleet");
            r["edges"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["edge"] == "near" && e["verdicts"]["ns3"] == "down")
        },
    );
    let e = f.insts[2].get("/api/edges");
    let near = e
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["name"] == "near")
        .unwrap();
    assert_eq!(near["probe_healthy"], false, "{near}");
    assert_eq!(near["fleet_healthy"], true, "{near}");
    holds(&f.all(), NEAR, Duration::from_millis(1500));
    // Two of three see it down: the fleet takes it out everywhere.
    f.edges.fail_near_for(&["127.0.0.3", "127.0.0.12"]);
    wait_all(&f.all(), FAR, Duration::from_secs(10));
    let e = f.insts[0].get("/api/edges");
    let near = e
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["name"] == "near")
        .unwrap();
    assert_eq!(near["probe_healthy"], true, "ns1's own probes pass: {near}");
    assert_eq!(near["fleet_healthy"], false, "{near}");
    f.edges.fail_near_for(&[]);
    wait_all(&f.all(), NEAR, Duration::from_secs(10));

    // Bad values in etcd are ignored, logged and counted.
    let before = f.insts[0].metric("geosteer_fleet_bad_values_total");
    f.etcd
        .with_client(async |c| {
            c.put(format!("{PREFIX}admin/t.example./near"), "{not json", None)
                .await?;
            c.put(
                format!("{PREFIX}load/t.example./near"),
                r#"{"load": 7, "until_ms": 99999999999999}"#,
                None,
            )
            .await?;
            c.put(
                format!("{PREFIX}load/t.example./nosuchedge"),
                r#"{"load": 0.99, "until_ms": 99999999999999}"#,
                None,
            )
            .await?;
            c.put(format!("{PREFIX}health/t.example./near/ns9"), "down!", None)
                .await?;
            Ok(())
        })
        .unwrap();
    until_true("bad values counted", Duration::from_secs(5), || {
        f.insts[0].metric("geosteer_fleet_bad_values_total") >= before + 4.0
    });
    holds(&f.all(), NEAR, Duration::from_millis(300));
    f.etcd
        .with_client(async |c| {
            c.delete(format!("{PREFIX}admin/t.example./near"), None)
                .await?;
            c.delete(format!("{PREFIX}health/t.example./near/ns9"), None)
                .await?;
            Ok(())
        })
        .unwrap();

    // Kill the etcd leader: answers do not change, a new leader takes
    // over, and a drain still reaches everyone.
    let leader = f.etcd.leader();
    let stop = Arc::new(AtomicBool::new(false));
    let loop_handle = query_loop(&f.all(), stop.clone());
    f.etcd.kill(leader);
    holds(&f.all(), NEAR, Duration::from_secs(1));
    f.insts[0].call("POST", "/api/edges/near/admin", r#"{"state":"drain"}"#);
    let took = wait_all(&f.all(), FAR, Duration::from_secs(10));
    println!("drain after a leader loss reached all three in {took:?}");
    f.etcd.start_member(leader);
    f.etcd.wait_healthy();

    // etcd hangs (every member stopped: connections stay open, nothing
    // answers), as behind a partition that drops packets: the instances
    // notice by their timeouts, keep answering, and reconnect when it
    // resumes.
    f.etcd.signal_all(libc::SIGSTOP);
    for i in &f.insts {
        until_true(
            &format!("{} notices the hang", i.name),
            Duration::from_secs(10),
            || !i.connected(),
        );
    }
    holds(&f.all(), FAR, Duration::from_millis(300));
    f.etcd.signal_all(libc::SIGCONT);
    for i in &f.insts {
        until_true(
            &format!("{} back after the hang", i.name),
            Duration::from_secs(15),
            || i.connected(),
        );
    }

    // Kill all of etcd under a running query loop: every instance keeps
    // answering (the drain still in force), none loses a query, each says
    // it is disconnected.
    for i in 0..3 {
        f.etcd.kill(i);
    }
    for i in &f.insts {
        until_true(
            &format!("{} disconnected", i.name),
            Duration::from_secs(10),
            || !i.connected(),
        );
        assert_eq!(i.metric("geosteer_fleet_connected"), 0.0);
    }
    holds(&f.all(), FAR, Duration::from_secs(1));
    stop.store(true, Ordering::SeqCst);
    let (sent, lost) = loop_handle.join().unwrap();
    println!("query loop: {sent} queries, {lost} lost");
    assert!(sent > 100, "query loop barely ran: {sent}");
    assert_eq!(lost, 0, "{lost} of {sent} queries lost");

    // Restart ns3 while etcd is down: it starts with its state file's
    // overrides (the drain it learned through etcd).
    f.insts[2].stop();
    f.insts[2].start();
    assert_eq!(first_answer(f.insts[2].dns).as_deref(), Some(FAR));
    assert!(!f.insts[2].connected());

    // `auto` on ns1 while etcd is down is applied there and written when
    // etcd is back; everyone catches up (resync, then the watch).
    f.insts[0].call("POST", "/api/edges/near/admin", r#"{"state":"auto"}"#);
    wait_all(&[&f.insts[0]], NEAR, Duration::from_secs(1));
    holds(&[&f.insts[1], &f.insts[2]], FAR, Duration::from_millis(300));
    for i in 0..3 {
        f.etcd.start_member(i);
    }
    f.etcd.wait_healthy();
    for i in &f.insts {
        until_true(
            &format!("{} reconnected", i.name),
            Duration::from_secs(15),
            || i.connected(),
        );
    }
    wait_all(&f.all(), NEAR, Duration::from_secs(5));
    assert_eq!(f.insts[1].metric("geosteer_fleet_connected"), 1.0);

    // Drift: ns3 serves an older pools file; `geosteer fleet status` on
    // ns1 names it and the file, and exits 1.
    let old = pools(f.edges.port, "# an older revision\n");
    std::fs::write(f.insts[2].dir.join("zones/t.example.pools.yaml"), old).unwrap();
    let mut out = String::new();
    until_true(
        "drift shows in fleet status",
        Duration::from_secs(10),
        || {
            let o = Command::new(env!("CARGO_BIN_EXE_geosteer"))
                .args(["fleet", "status", "--http", &f.insts[0].http.to_string()])
                .args(["-c", "/nonexistent.yaml"])
                .output()
                .unwrap();
            out = String::from_utf8_lossy(&o.stdout).into_owned();
            o.status.code() == Some(1)
                && out.lines().any(|l| {
                    l.starts_with("ns3") && l.contains("DIFFERENT FILES: t.example.pools.yaml")
                })
        },
    );
    println!("{out}");
    assert!(out.contains("etcd connected"), "{out}");
    for l in out
        .lines()
        .filter(|l| l.starts_with("ns1") || l.starts_with("ns2"))
    {
        assert!(!l.contains("DIFFERENT"), "{l}");
    }
    let _ = &f.root;
    println!("whole test: {:?}", t0.elapsed());
}

/// Queries every instance in a loop until `stop`; returns (sent, lost).
fn query_loop(insts: &[&Instance], stop: Arc<AtomicBool>) -> std::thread::JoinHandle<(u64, u64)> {
    let addrs: Vec<SocketAddr> = insts.iter().map(|i| i.dns).collect();
    std::thread::spawn(move || {
        let (mut sent, mut lost) = (0u64, 0u64);
        while !stop.load(Ordering::SeqCst) {
            for a in &addrs {
                sent += 1;
                if first_answer(*a).is_none() {
                    lost += 1;
                }
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        (sent, lost)
    })
}

/// The link over TLS with a client certificate and etcd's password auth
/// (the password from the environment): a drain is written where an
/// authenticated reader sees it; a wrong password stays disconnected and
/// says why.
#[test]
fn etcd_over_tls_with_client_cert_and_password() {
    if !need_tools(&["etcd"]) {
        return;
    }
    let mut etcd = Etcd::start_with(1, true);
    etcd.with_client(async |c| {
        let _ = c.role_add("root").await;
        c.user_add("root", "s3cret", None).await?;
        c.user_grant_role("root", "root").await?;
        c.auth_enable().await?;
        Ok(())
    })
    .unwrap();
    etcd.user = Some(("root".into(), "s3cret".into()));
    let edges = Edges::start();
    let root = tempfile::tempdir().unwrap();
    let p = etcd.tls.as_ref().unwrap();
    let tls = format!(
        // Password auth costs the server a bcrypt per connection: leave
        // room for it on a loaded machine.
        "  ca_file: {}\n  cert_file: {}\n  key_file: {}\n  username: root\n  timeout: 5s\n",
        p.ca.display(),
        p.client_cert.display(),
        p.client_key.display()
    );
    let eps = etcd.endpoints();
    let good = Instance::new_with(
        root.path(),
        "tls1",
        "127.0.0.11",
        &eps,
        edges.port,
        &tls,
        vec![("GEOSTEER_ETCD_PASSWORD".into(), "s3cret".into())],
    );
    let bad = Instance::new_with(
        root.path(),
        "tls2",
        "127.0.0.12",
        &eps,
        edges.port,
        &tls,
        vec![("GEOSTEER_ETCD_PASSWORD".into(), "wrong".into())],
    );
    until_true("tls1 connected", Duration::from_secs(15), || {
        good.connected()
    });
    good.call("POST", "/api/edges/near/admin", r#"{"state":"drain"}"#);
    until_true("drain written to etcd", Duration::from_secs(5), || {
        etcd.with_client(async |c| {
            let r = c
                .get(format!("{PREFIX}admin/t.example./near"), None)
                .await?;
            Ok(r.kvs().first().map(|kv| kv.value().to_vec()))
        })
        .ok()
        .flatten()
        .is_some_and(|v| String::from_utf8_lossy(&v).contains("drain"))
    });
    until_true("tls2 reports its error", Duration::from_secs(10), || {
        let st = bad.get("/api/status");
        st["fleet"]["connected"] == false
            && st["fleet"]["last_error"]
                .as_str()
                .is_some_and(|e| e.contains("authentication failed"))
    });
    assert_eq!(
        first_answer(bad.dns).as_deref(),
        Some(NEAR),
        "tls2 never heard of the drain"
    );
    assert_eq!(first_answer(good.dns).as_deref(), Some(FAR));
}

/// An override's reason and expiry go through etcd: set on ns1 with
/// `for`, ns2 shows them and both lift it on time; etcd drops the key
/// itself (it is written under a lease of that length), so instances that
/// do not read `until_ms` lift it too. A value an older version wrote (no
/// reason, no expiry) still applies.
#[test]
fn overrides_carry_reason_and_expiry_through_etcd() {
    if !need_tools(&["etcd"]) {
        return;
    }
    let f = start_fleet_of(1, 2);
    let (etcd, insts) = (&f.etcd, &f.insts);
    let all: Vec<&Instance> = insts.iter().collect();
    wait_all(&all, NEAR, Duration::from_secs(10));
    let near = |i: &Instance| {
        i.get("/api/edges")
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["name"] == "near")
            .cloned()
            .unwrap()
    };
    insts[0].call(
        "POST",
        "/api/edges/near/admin",
        r#"{"state":"drain","for":"4s","reason":"fibre cut"}"#,
    );
    wait_all(&all, FAR, Duration::from_secs(2));
    let seen = near(&insts[1]);
    assert_eq!(seen["admin"], "drain", "{seen}");
    assert_eq!(seen["admin_reason"], "fibre cut", "{seen}");
    assert_eq!(
        seen["admin_until"],
        near(&insts[0])["admin_until"],
        "{seen}"
    );
    let key = format!("{PREFIX}admin/t.example./near");
    let lease = etcd
        .with_client(async |c| {
            let r = c.get(key.clone(), None).await?;
            Ok(r.kvs().first().map(|kv| kv.lease()))
        })
        .unwrap();
    assert!(
        lease.is_some_and(|l| l != 0),
        "written under a lease: {lease:?}"
    );
    // On time, everywhere, and gone from etcd.
    wait_all(&all, NEAR, Duration::from_secs(8));
    for i in insts {
        assert_eq!(near(i)["admin"], "auto");
    }
    until_true("etcd dropped the key", Duration::from_secs(10), || {
        etcd.with_client(async |c| Ok(c.get(key.clone(), None).await?.kvs().is_empty()))
            .unwrap()
    });
    // A value without a note, as older versions write it.
    etcd.with_client(async |c| {
        c.put(
            key.clone(),
            r#"{"state":"down","by":"old","at_ms":1}"#,
            None,
        )
        .await?;
        Ok(())
    })
    .unwrap();
    wait_all(&all, FAR, Duration::from_secs(2));
    let seen = near(&insts[1]);
    assert_eq!(seen["admin"], "down", "{seen}");
    assert!(seen.get("admin_reason").is_none(), "{seen}");
    etcd.with_client(async |c| {
        c.delete(key.clone(), None).await?;
        Ok(())
    })
    .unwrap();
    wait_all(&all, NEAR, Duration::from_secs(2));
}
