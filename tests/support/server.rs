//! Servers on loopback for the tests: in process, [`Server`] runs the DNS
//! server alone on a snapshot and [`AppServer`] the whole `App` (reloads,
//! HTTP API, health checks) as `geosteer serve` does, both on port 0;
//! [`Binary`] is the `geosteer` binary itself as a child. All stop on drop.
//! Also the config directories they start from ([`Fixture`],
//! [`write_zone_dir`], [`write_config`]).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use geosteer::AlwaysUp;
use geosteer::App;
use geosteer::ServerConfig;
use geosteer::Snapshot;
use hickory_proto::op::Message;
use metrics::{Counter, Gauge, Histogram, Key, KeyName, Metadata, Recorder, SharedString, Unit};

use super::dns::{self, Resp};
use super::{KillOnDrop, fixture, free_port, repo, write_file};

/// A multi-threaded runtime with two workers, as the binary's on a small box.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

// ------------------------------------------------------------ config files

/// The smallest zone geosteer serves: apex SOA and NS, the NS's address.
/// Its pools file supplies the steered names.
pub const MINIMAL_ZONE: &str =
    "$TTL 300\n@ SOA ns1 h 1 3600 600 86400 60\n@ NS ns1\nns1 A 127.0.0.1\n";

/// A config directory for one small zone: `<dir>/zones/<zone>.zone`
/// ([`MINIMAL_ZONE`]), `<dir>/zones/<zone>.pools.yaml` (`pools`) and
/// `<dir>/geosteer.yaml` (`config`); returns the config's path.
pub fn write_zone_dir(dir: &Path, zone: &str, pools: &str, config: &str) -> PathBuf {
    write_file(dir, &format!("zones/{zone}.zone"), MINIMAL_ZONE);
    write_file(dir, &format!("zones/{zone}.pools.yaml"), pools);
    write_file(dir, "geosteer.yaml", config)
}

/// The zone files every default server serves: the test zone `example.`,
/// the child zone `sub.example.` (served too, not delegated), `types.example.`
/// (HTTPS, DS, DNAME and the other types beyond RFC 1035's), and the
/// repository's demo `cdn.example.` with its pools file.
pub fn default_zone_files() -> Vec<(String, String)> {
    vec![
        ("example.zone".into(), fixture("example.zone")),
        ("sub.example.zone".into(), fixture("sub.example.zone")),
        ("types.example.zone".into(), fixture("types.example.zone")),
        (
            "cdn.example.zone".into(),
            std::fs::read_to_string(repo().join("zones/cdn.example.zone")).unwrap(),
        ),
        (
            "cdn.example.pools.yaml".into(),
            std::fs::read_to_string(repo().join("zones/cdn.example.pools.yaml")).unwrap(),
        ),
    ]
}

/// Writes `files` into `<dir>/zones` and a config at `<dir>/geosteer.yaml`.
pub fn write_config(dir: &Path, files: &[(String, String)], listen: &str) -> PathBuf {
    write_config_with(dir, files, listen, "")
}

/// [`write_config`] with more `geosteer.yaml` lines (`nsid:`, `cookies:`...).
pub fn write_config_with(
    dir: &Path,
    files: &[(String, String)],
    listen: &str,
    extra: &str,
) -> PathBuf {
    std::fs::create_dir_all(dir.join("zones")).unwrap();
    for (name, text) in files {
        write_file(dir, &format!("zones/{name}"), text);
    }
    write_file(
        dir,
        "geosteer.yaml",
        &format!(
            "listen: [\"{listen}\"]\nzones: zones\nworkers: 1\ntcp:\n  idle_timeout: 3s\n  max_connections: 64\n  max_per_client: 32\n{extra}"
        ),
    )
}

/// A directory with `geosteer.yaml`, `zones/cdn.example.{zone,pools.yaml}`
/// (the demo zone) and `geo.mmdb` built from the demo source.
pub struct Fixture {
    pub dir: tempfile::TempDir,
}

impl Fixture {
    /// `nets` lines are added under the pools file's `nets:` (indented two
    /// spaces, like `  127.0.0.0/8: [48.85, 2.35]`); `cfg` is appended to
    /// `geosteer.yaml`, which already has `zones`, `geodb`, `listen` (an
    /// ephemeral loopback port) and `workers: 1`.
    pub fn new(nets: &str, cfg: &str) -> Fixture {
        Self::custom(nets, "listen: [127.0.0.1:0]\n", cfg, |zone| zone)
    }

    /// [`Fixture::new`] listening as `listen` says (a `listen:` line, and
    /// `http:` if wanted), with the demo zone file's text passed through
    /// `zone` (to change its TTL or add records).
    pub fn custom(
        nets: &str,
        listen: &str,
        cfg: &str,
        zone: impl FnOnce(String) -> String,
    ) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let zones = dir.path().join("zones");
        std::fs::create_dir(&zones).unwrap();
        let text = std::fs::read_to_string(repo().join("zones/cdn.example.zone")).unwrap();
        std::fs::write(zones.join("cdn.example.zone"), zone(text)).unwrap();
        let pools = std::fs::read_to_string(repo().join("zones/cdn.example.pools.yaml")).unwrap();
        assert!(
            pools.contains("\nnets:\n"),
            "demo pools file has no nets: section"
        );
        let pools = pools.replacen("\nnets:\n", &format!("\nnets:\n{nets}"), 1);
        std::fs::write(zones.join("cdn.example.pools.yaml"), pools).unwrap();
        geosteer::build_geodb(
            &repo().join("geodb/demo-city.yaml"),
            &dir.path().join("geo.mmdb"),
            geosteer::Schema::City,
        )
        .unwrap();
        std::fs::write(
            dir.path().join("geosteer.yaml"),
            format!("zones: zones\ngeodb: geo.mmdb\n{listen}workers: 1\n{cfg}"),
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
        Server::from_config(&self.config())
    }
}

// ------------------------------------------------------------ metrics

/// Counters and gauges by `name{label=value,...}`, for one server.
/// Installed with `metrics::with_local_recorder` around the call that
/// registers the server's handles.
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

    /// The counter keyed exactly `series` (`name` or `name{label=value}`).
    pub fn counter(&self, series: &str) -> u64 {
        // Servers count queries per thread until asked.
        geosteer::publish_query_counts();
        self.values
            .lock()
            .unwrap()
            .get(series)
            .map_or(0, |v| v.load(Ordering::Relaxed))
    }

    /// The sum of every counter named `name`, whatever its labels.
    pub fn sum(&self, name: &str) -> u64 {
        geosteer::publish_query_counts();
        self.values
            .lock()
            .unwrap()
            .iter()
            .filter(|(k, _)| *k == name || k.starts_with(&format!("{name}{{")))
            .map(|(_, v)| v.load(Ordering::Relaxed))
            .sum()
    }

    /// The gauge keyed exactly `series`.
    pub fn gauge(&self, series: &str) -> f64 {
        f64::from_bits(self.counter(series))
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

// ------------------------------------------------------------ DNS server

/// The DNS server alone, in process on loopback port 0, with its own
/// runtime and metrics recorder; shut down on drop.
pub struct Server {
    pub udp: SocketAddr,
    pub tcp: SocketAddr,
    pub metrics: Arc<TestRecorder>,
    /// The config directory, when the server made its own.
    dir: Option<tempfile::TempDir>,
    rt: tokio::runtime::Runtime,
    running: Option<geosteer::Running>,
}

impl Server {
    /// A server on these zone files (see [`write_config`]).
    pub fn start(files: &[(String, String)]) -> Server {
        Self::start_with(files, "")
    }

    /// A server on these zone files whose `geosteer.yaml` has `extra` lines too.
    pub fn start_with(files: &[(String, String)], extra: &str) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let cfg_path = write_config_with(dir.path(), files, "127.0.0.1:0", extra);
        let mut s = Self::from_config(&ServerConfig::load(&cfg_path).unwrap());
        s.dir = Some(dir);
        s
    }

    /// A server on `cfg`, every edge up.
    pub fn from_config(cfg: &ServerConfig) -> Server {
        let snap = geosteer::build_snapshot(cfg, &AlwaysUp, 1)
            .unwrap_or_else(|e| panic!("fixture does not load:\n{e}"));
        Self::with_snapshot(cfg, snap)
    }

    /// A server on `cfg` answering from `snap` (built by the test, to set
    /// health or hand-made state).
    pub fn with_snapshot(cfg: &ServerConfig, snap: Snapshot) -> Server {
        let rt = runtime();
        let metrics = Arc::new(TestRecorder::default());
        // The server registers its metric handles while starting, on this
        // thread, so they land in this server's recorder.
        let running =
            metrics::with_local_recorder(&*metrics, || rt.block_on(geosteer::start(cfg, snap)))
                .expect("server starts");
        Server {
            udp: running.udp_addr(),
            tcp: running.tcp_addr(),
            metrics,
            dir: None,
            rt,
            running: Some(running),
        }
    }

    /// The snapshot being served.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.running.as_ref().expect("running").shared.load_full()
    }

    /// Queries answered or refused so far, both transports.
    pub fn queries(&self) -> u64 {
        self.metrics.sum("geosteer_queries_total")
    }

    pub fn udp(&self, m: &Message) -> Resp {
        dns::udp(self.udp, m)
    }
    pub fn tcp(&self, m: &Message) -> Resp {
        dns::tcp(self.tcp, m)
    }
    pub fn udp_raw(&self, q: &[u8]) -> Option<Vec<u8>> {
        dns::udp_raw(self.udp, q)
    }
    pub fn tcp_raw(&self, q: &[u8]) -> Option<Vec<u8>> {
        dns::tcp_raw(self.tcp, q)
    }
    /// Both transports; returns (udp, tcp).
    pub fn both(&self, m: &Message) -> [Resp; 2] {
        [self.udp(m), self.tcp(m)]
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(r) = self.running.take() {
            self.rt.block_on(r.shutdown());
        }
    }
}

/// One server with the default zones for every test in a binary.
pub fn shared() -> &'static Server {
    static S: OnceLock<Server> = OnceLock::new();
    S.get_or_init(|| Server::start(&default_zone_files()))
}

// ------------------------------------------------------------ the binary

/// The `geosteer` binary serving the default zones on a free loopback port
/// (given by `--listen` over the config's 5300, as an operator would);
/// killed on drop.
pub struct Binary {
    pub child: KillOnDrop,
    pub port: u16,
    _dir: tempfile::TempDir,
}

impl Binary {
    /// Starts it and waits until it answers over UDP and TCP.
    pub fn spawn() -> Binary {
        let dir = tempfile::tempdir().unwrap();
        let cfg = write_config(dir.path(), &default_zone_files(), "127.0.0.1:5300");
        Binary::serve(dir, &cfg)
    }

    /// Serves `cfg` (written inside `dir`, which lives as long as the
    /// server), with `--listen` on a free port.
    pub fn serve(dir: tempfile::TempDir, cfg: &Path) -> Binary {
        let port = free_port();
        let child = Command::new(env!("CARGO_BIN_EXE_geosteer"))
            .args(["serve", "--config"])
            .arg(cfg)
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let b = Binary {
            child: KillOnDrop(child),
            port,
            _dir: dir,
        };
        assert!(
            dns::wait_dns(port, Duration::from_secs(10)),
            "geosteer did not come up on {port}"
        );
        b
    }

    pub fn addr(&self) -> SocketAddr {
        ([127, 0, 0, 1], self.port).into()
    }

    /// The server process's resident memory.
    pub fn rss_kib(&self) -> u64 {
        super::rss_kib(&format!("/proc/{}/status", self.child.0.id()))
    }
}

// ------------------------------------------------------------ whole app

/// The whole `App` in process, as `geosteer serve` runs it: file watcher,
/// HTTP API, health checks, fleet link; shut down on drop or by
/// [`AppServer::shutdown`].
pub struct AppServer {
    pub rt: tokio::runtime::Runtime,
    app: Option<App>,
}

impl AppServer {
    /// Loads `geosteer.yaml` from `cfg_path` and starts.
    pub fn load(cfg_path: &Path) -> AppServer {
        Self::start(ServerConfig::load(cfg_path).unwrap())
    }

    pub fn start(cfg: ServerConfig) -> AppServer {
        let rt = runtime();
        let app = rt.block_on(App::start(cfg)).unwrap();
        AppServer { rt, app: Some(app) }
    }

    pub fn app(&self) -> &App {
        self.app.as_ref().expect("running")
    }

    pub fn dns(&self) -> SocketAddr {
        self.app().running.udp_addr()
    }

    pub fn tcp(&self) -> SocketAddr {
        self.app().running.tcp_addr()
    }

    /// The HTTP listener (the config must have `http:`).
    pub fn http(&self) -> SocketAddr {
        self.app().http_addr.expect("http: configured")
    }

    /// Stops the server now (what a test of shutdown looks at).
    pub fn shutdown(mut self) {
        if let Some(app) = self.app.take() {
            self.rt.block_on(app.shutdown());
        }
    }
}

impl Drop for AppServer {
    fn drop(&mut self) {
        if let Some(app) = self.app.take() {
            self.rt.block_on(app.shutdown());
        }
    }
}
