//! Shared fixtures for the hardening tests (real clients, RRL, abuse,
//! fleet): a temp copy of the demo zone with a freshly built GeoIP DB, an
//! in-process server with its own metrics recorder, raw DNS queries, and
//! the "is this tool installed" gate.
//!
//! Not every test file uses every helper.
#![allow(dead_code)]

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use geosteer::config::ServerConfig;
use geosteer::config::pools::AlwaysUp;
use metrics::{Counter, Gauge, Histogram, Key, KeyName, Metadata, Recorder, SharedString, Unit};

/// The repository root (for the demo zone and GeoIP source).
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Finds an executable on PATH or in the sbin directories (Debian puts
/// unbound and knotd there, often outside a test's PATH).
pub fn find_tool(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/local/sbin"].map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// True when every tool is installed. Otherwise fails the test under CI
/// (`GEOSTEER_REQUIRE_TOOLS=1`), or prints why it is skipped.
pub fn need_tools(tools: &[&str]) -> bool {
    let missing: Vec<&str> = tools
        .iter()
        .copied()
        .filter(|t| find_tool(t).is_none())
        .collect();
    if missing.is_empty() {
        return true;
    }
    if std::env::var_os("GEOSTEER_REQUIRE_TOOLS").is_some_and(|v| v != "0" && !v.is_empty()) {
        panic!(
            "GEOSTEER_REQUIRE_TOOLS is set but {} is not installed",
            missing.join(", ")
        );
    }
    for t in missing {
        println!("SKIPPED: {t} not installed");
    }
    false
}

/// A directory with `geosteer.yaml`, `zones/cdn.example.{zone,pools.yaml}`
/// and `geo.mmdb` built from the demo source.
pub struct Fixture {
    pub dir: tempfile::TempDir,
}

impl Fixture {
    /// `nets` lines are added under the pools file's `nets:` (indented two
    /// spaces, like `  127.0.0.0/8: [48.85, 2.35]`); `cfg` is appended to
    /// `geosteer.yaml`, which already has `zones`, `geodb`, `listen` (an
    /// ephemeral loopback port) and `workers: 1`.
    pub fn new(nets: &str, cfg: &str) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let zones = dir.path().join("zones");
        std::fs::create_dir(&zones).unwrap();
        std::fs::copy(
            repo().join("zones/cdn.example.zone"),
            zones.join("cdn.example.zone"),
        )
        .unwrap();
        let pools = std::fs::read_to_string(repo().join("zones/cdn.example.pools.yaml")).unwrap();
        assert!(
            pools.contains("\nnets:\n"),
            "demo pools file has no nets: section"
        );
        let pools = pools.replacen("\nnets:\n", &format!("\nnets:\n{nets}"), 1);
        std::fs::write(zones.join("cdn.example.pools.yaml"), pools).unwrap();
        geosteer::geo::build(
            &repo().join("geodb/demo-city.yaml"),
            &dir.path().join("geo.mmdb"),
            geosteer::geo::Schema::City,
        )
        .unwrap();
        std::fs::write(
            dir.path().join("geosteer.yaml"),
            format!("zones: zones\ngeodb: geo.mmdb\nlisten: [127.0.0.1:0]\nworkers: 1\n{cfg}"),
        )
        .unwrap();
        Fixture { dir }
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("geosteer.yaml")
    }

    pub fn config(&self) -> ServerConfig {
        ServerConfig::load(&self.config_path()).unwrap()
    }

    /// Starts an in-process server on this fixture.
    pub fn start(&self) -> Server {
        Server::start(self.config())
    }
}

/// Counters and gauges by `name{label=value,...}`, for one server.
#[derive(Default)]
pub struct TestRecorder {
    values: Mutex<HashMap<String, Arc<AtomicU64>>>,
}

impl TestRecorder {
    fn slot(&self, key: &Key) -> Arc<AtomicU64> {
        let mut name = key.name().to_owned();
        let labels: Vec<String> = key
            .labels()
            .map(|l| format!("{}={}", l.key(), l.value()))
            .collect();
        if !labels.is_empty() {
            name = format!("{name}{{{}}}", labels.join(","));
        }
        self.values.lock().unwrap().entry(name).or_default().clone()
    }

    /// The sum of every counter named `name`, whatever its labels.
    pub fn sum(&self, name: &str) -> u64 {
        self.values
            .lock()
            .unwrap()
            .iter()
            .filter(|(k, _)| *k == name || k.starts_with(&format!("{name}{{")))
            .map(|(_, v)| v.load(Ordering::Relaxed))
            .sum()
    }

    pub fn gauge(&self, name: &str) -> f64 {
        self.values
            .lock()
            .unwrap()
            .get(name)
            .map_or(0.0, |v| f64::from_bits(v.load(Ordering::Relaxed)))
    }
}

impl Recorder for TestRecorder {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        Counter::from_arc(self.slot(key))
    }
    fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> Gauge {
        Gauge::from_arc(self.slot(key))
    }
    fn register_histogram(&self, _: &Key, _: &Metadata<'_>) -> Histogram {
        Histogram::noop()
    }
}

/// An in-process server, its runtime and its metrics.
pub struct Server {
    pub rt: tokio::runtime::Runtime,
    running: Option<geosteer::server::Running>,
    pub metrics: Arc<TestRecorder>,
}

impl Server {
    pub fn start(cfg: ServerConfig) -> Server {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let snap = geosteer::reload::build_snapshot(&cfg, &AlwaysUp, 1).unwrap();
        let metrics = Arc::new(TestRecorder::default());
        // The server registers its metric handles while starting, on this
        // thread, so they land in this server's recorder.
        let running = metrics::with_local_recorder(&*metrics, || {
            rt.block_on(geosteer::server::start(&cfg, snap))
        })
        .expect("server starts");
        Server {
            rt,
            running: Some(running),
            metrics,
        }
    }

    pub fn udp(&self) -> SocketAddr {
        self.running.as_ref().unwrap().udp_addr()
    }

    pub fn tcp(&self) -> SocketAddr {
        self.running.as_ref().unwrap().tcp_addr()
    }

    /// Queries answered or refused so far, both transports.
    pub fn queries(&self) -> u64 {
        self.metrics.sum("geosteer_queries_total")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(r) = self.running.take() {
            self.rt.block_on(r.shutdown());
        }
    }
}

/// A port free on loopback for both UDP and TCP right now.
pub fn free_port() -> u16 {
    loop {
        let u = UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = u.local_addr().unwrap().port();
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// Encodes a presentation name (no trailing dot needed) as wire labels.
pub fn wire_name(name: &str) -> Vec<u8> {
    let mut out = Vec::new();
    for l in name
        .trim_end_matches('.')
        .split('.')
        .filter(|l| !l.is_empty())
    {
        out.push(l.len() as u8);
        out.extend_from_slice(l.as_bytes());
    }
    out.push(0);
    out
}

/// A query with RD clear. `edns`: the advertised UDP size; `ecs`: a
/// client subnet option (address, source prefix), which implies EDNS.
pub fn query(
    id: u16,
    name: &str,
    qtype: u16,
    edns: Option<u16>,
    ecs: Option<(IpAddr, u8)>,
) -> Vec<u8> {
    let edns = edns.or(ecs.map(|_| 1232));
    let mut q = Vec::with_capacity(64);
    q.extend_from_slice(&id.to_be_bytes());
    q.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0, edns.is_some() as u8]);
    q.extend_from_slice(&wire_name(name));
    q.extend_from_slice(&qtype.to_be_bytes());
    q.extend_from_slice(&1u16.to_be_bytes());
    if let Some(size) = edns {
        let mut opt = Vec::new();
        if let Some((addr, prefix)) = ecs {
            let (family, bytes) = match addr {
                IpAddr::V4(a) => (1u16, a.octets().to_vec()),
                IpAddr::V6(a) => (2u16, a.octets().to_vec()),
            };
            let n = (prefix as usize).div_ceil(8);
            opt.extend_from_slice(&8u16.to_be_bytes());
            opt.extend_from_slice(&((4 + n) as u16).to_be_bytes());
            opt.extend_from_slice(&family.to_be_bytes());
            opt.extend_from_slice(&[prefix, 0]);
            opt.extend_from_slice(&bytes[..n]);
        }
        q.push(0);
        q.extend_from_slice(&41u16.to_be_bytes());
        q.extend_from_slice(&size.to_be_bytes());
        q.extend_from_slice(&[0, 0, 0, 0]);
        q.extend_from_slice(&(opt.len() as u16).to_be_bytes());
        q.extend_from_slice(&opt);
    }
    q
}

/// One UDP query and its answer (None on timeout).
pub fn udp_exchange(sock: &UdpSocket, to: SocketAddr, q: &[u8]) -> Option<Vec<u8>> {
    sock.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    sock.send_to(q, to).unwrap();
    let mut buf = vec![0u8; 65_535];
    loop {
        let (n, _) = sock.recv_from(&mut buf).ok()?;
        if n >= 2 && buf[..2] == q[..2] {
            return Some(buf[..n].to_vec());
        }
    }
}

/// Runs a command, panicking with its output if it fails; returns stdout.
pub fn run(cmd: &Path, args: &[&str]) -> String {
    let out = Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{}: {e}", cmd.display()));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{} {} failed: {}\n{stdout}\n{}",
        cmd.display(),
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// This process's resident set size in KiB.
pub fn vm_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/self/status")
}
