//! `probe_source`: probes leave from the configured local address, the
//! check's own over the instance's, for TCP and HTTP checks alike.

use crate::support;

use std::collections::HashSet;
use std::net::IpAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use geosteer::{Checker, ProbeTarget, Registry};
use support::probe;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// An HTTP/TCP edge on 127.0.0.2 recording which source addresses
/// connected to it.
async fn edge() -> (u16, Arc<Mutex<HashSet<IpAddr>>>) {
    let l = tokio::net::TcpListener::bind("127.0.0.2:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(HashSet::new()));
    let s2 = seen.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut s, peer)) = l.accept().await else {
                return;
            };
            s2.lock().unwrap().insert(peer.ip());
            tokio::spawn(async move {
                let mut buf = [0u8; 512];
                let _ = tokio::time::timeout(Duration::from_millis(300), s.read(&mut buf)).await;
                let _ = s
                    .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                    .await;
            });
        }
    });
    (port, seen)
}

fn target(reg: &Registry, edge: &str, yaml: &str) -> ProbeTarget {
    let check = probe::check(yaml, Path::new("."), "c");
    probe::target(
        reg,
        "t.example.",
        edge,
        &["127.0.0.2".parse().unwrap()],
        &check,
    )
}

#[tokio::test]
async fn probes_leave_from_probe_source() {
    let (port, seen) = edge().await;
    let reg = Arc::new(Registry::new());
    let checker = Checker::start_from(reg.clone(), 8, Some("127.0.0.7".parse().unwrap()));
    checker.reconcile(vec![
        target(
            &reg,
            "tcp-default",
            &format!("{{ type: tcp, port: {port}, interval: 100ms, timeout: 50ms }}"),
        ),
        target(
            &reg,
            "http-own",
            &format!(
                "{{ type: http, port: {port}, interval: 100ms, timeout: 80ms, probe_source: 127.0.0.8 }}"
            ),
        ),
    ]);
    let want: HashSet<IpAddr> = ["127.0.0.7", "127.0.0.8"]
        .iter()
        .map(|s| s.parse().unwrap())
        .collect();
    let end = Instant::now() + Duration::from_secs(10);
    while *seen.lock().unwrap() != want {
        assert!(
            Instant::now() < end,
            "sources seen: {:?}",
            seen.lock().unwrap()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for e in ["tcp-default", "http-own"] {
        let h = reg.get("t.example.", e).unwrap();
        let end = Instant::now() + Duration::from_secs(5);
        while h.status().probes_ok == 0 {
            assert!(Instant::now() < end, "{e}: {:?}", h.status());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

#[tokio::test]
async fn a_source_of_the_wrong_family_is_a_clear_failure() {
    let (port, _) = edge().await;
    let reg = Arc::new(Registry::new());
    let checker = Checker::start_from(reg.clone(), 8, Some("::1".parse().unwrap()));
    checker.reconcile(vec![target(
        &reg,
        "e",
        &format!("{{ type: tcp, port: {port}, interval: 100ms, timeout: 50ms }}"),
    )]);
    let h = reg.get("t.example.", "e").unwrap();
    let end = Instant::now() + Duration::from_secs(5);
    loop {
        let st = h.status();
        if st.probes_failed > 0 {
            let err = st.last_error.unwrap_or_default();
            assert!(err.contains("different address family"), "{err}");
            break;
        }
        assert!(Instant::now() < end, "{st:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
