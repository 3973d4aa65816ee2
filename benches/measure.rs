//! Two measurements that print numbers and assert nothing, on the tests'
//! own fixtures (`tests/support`):
//!
//! - `udp`: CPU per query of the UDP transport alone (an echo handler, no
//!   DNS) under dnsperf at a fixed rate. Needs `dnsperf`.
//!   `GEOSTEER_BENCH_QPS` (100000), `GEOSTEER_BENCH_SECS` (5) and
//!   `GEOSTEER_BENCH_WORKERS` (2) set the load and the worker threads.
//! - `drain`: how long a drain takes to reach every instance's answers in
//!   a fleet of three through a 3-member etcd on loopback: 100 drains,
//!   alternating with `auto`, sent to one instance, each timed until all
//!   three answer accordingly. Needs `etcd`.
//!
//! `cargo bench --bench measure` runs both; `cargo bench --bench measure --
//! udp` (or `drain`) one.

#[path = "../tests/support/mod.rs"]
mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use geosteer::{Handler, Transport, UdpServer};
use support::fleet::{FAR, NEAR, start_fleet, wait_all};
use support::server::TestRecorder;
use support::tools::need_tools;

fn main() {
    let asked: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let wants = |name: &str| asked.is_empty() || asked.iter().any(|a| a == name);
    if wants("udp") {
        udp_cpu_per_query();
    }
    if wants("drain") {
        drain_propagation();
    }
}

fn env_or<T: std::str::FromStr>(var: &str, default: T) -> T {
    std::env::var(var)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Echoes every datagram with QR set.
struct Echo;

impl Handler for Echo {
    fn handle(
        &self,
        query: &[u8],
        _client: SocketAddr,
        _transport: Transport,
        out: &mut [u8],
    ) -> Option<usize> {
        if query.len() < 4 {
            return None;
        }
        out[..query.len()].copy_from_slice(query);
        out[2] |= 0x80;
        Some(query.len())
    }
}

/// This process's CPU time (the workers; the main thread only waits for
/// dnsperf) divided by the queries answered.
fn udp_cpu_per_query() {
    if !need_tools(&["dnsperf"]) {
        return;
    }
    let qps: u64 = env_or("GEOSTEER_BENCH_QPS", 100_000);
    let secs: u64 = env_or("GEOSTEER_BENCH_SECS", 5);
    let workers: usize = env_or("GEOSTEER_BENCH_WORKERS", 2);
    let server = UdpServer::bind("127.0.0.1:0".parse().unwrap(), workers).expect("bind");
    let metrics = Arc::new(TestRecorder::default());
    let handler: Arc<dyn Handler> = Arc::new(Echo);
    let running = metrics::with_local_recorder(&*metrics, || server.start(handler)).expect("start");
    let port = running.local_addr().port();
    let qfile = std::env::temp_dir().join(format!("geosteer-bench-{port}.txt"));
    std::fs::write(&qfile, "www.example.com A\n").unwrap();
    let cpu = || {
        // SAFETY: getrusage fills the struct it is given.
        let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
        unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
        let t = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
        (t(ru.ru_utime), t(ru.ru_stime))
    };
    let (u0, s0) = cpu();
    let q0 = metrics.counter("geosteer_udp_answered_total");
    let r0 = metrics.counter("geosteer_udp_received_total");
    let b0 = metrics.counter("geosteer_udp_batches_total");
    let out = std::process::Command::new("dnsperf")
        .args(["-s", "127.0.0.1", "-p", &port.to_string(), "-d"])
        .arg(&qfile)
        .args(["-c", "16", "-l", &secs.to_string()])
        .args(["-Q", &qps.to_string(), "-q", "1000"])
        .output()
        .expect("dnsperf");
    let (u1, s1) = cpu();
    let _ = std::fs::remove_file(&qfile);
    let q = metrics.counter("geosteer_udp_answered_total") - q0;
    let r = metrics.counter("geosteer_udp_received_total") - r0;
    let batches = metrics.counter("geosteer_udp_batches_total") - b0;
    let (user, sys) = (u1 - u0, s1 - s0);
    let text = String::from_utf8_lossy(&out.stdout);
    for line in text
        .lines()
        .filter(|l| l.contains("Queries") || l.contains("lost"))
    {
        println!("dnsperf: {}", line.trim());
    }
    println!(
        "udp: workers={workers} answered={q} ({:.0}/s) datagrams/batch={:.2} user={user:.2}s sys={sys:.2}s cpu/query={:.2} us",
        q as f64 / secs as f64,
        r as f64 / batches.max(1) as f64,
        (user + sys) * 1e6 / q.max(1) as f64
    );
    running.shutdown();
}

fn drain_propagation() {
    if !need_tools(&["etcd"]) {
        return;
    }
    let f = start_fleet();
    wait_all(&f.all(), NEAR, Duration::from_secs(10));
    let mut drains = Vec::new();
    let mut undo = Vec::new();
    for _ in 0..100 {
        let t = Instant::now();
        f.insts[0].call("POST", "/api/edges/near/admin", r#"{"state":"drain"}"#);
        wait_all(&f.all(), FAR, Duration::from_secs(5));
        drains.push(t.elapsed());
        let t = Instant::now();
        f.insts[0].call("POST", "/api/edges/near/admin", r#"{"state":"auto"}"#);
        wait_all(&f.all(), NEAR, Duration::from_secs(5));
        undo.push(t.elapsed());
    }
    for (what, mut v) in [("drain", drains), ("auto", undo)] {
        v.sort();
        println!(
            "{what}: n={} p50={:.1} ms p90={:.1} ms max={:.1} ms",
            v.len(),
            v[v.len() / 2].as_secs_f64() * 1e3,
            v[v.len() * 9 / 10].as_secs_f64() * 1e3,
            v[v.len() - 1].as_secs_f64() * 1e3
        );
    }
}
