//! A fleet on loopback for the fleet tests and the propagation bench: a
//! 3-member etcd cluster (optionally TLS with client certificates and
//! password auth), HTTP edges to probe, and `geosteer` processes joined
//! through etcd.

use std::collections::HashSet;
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::dns::{udp_exchange, wire_query as query};
use super::free_port;
use super::http::http;
use super::server::write_zone_dir;
use super::tools::tool;
use super::wait::until_true;

pub const PREFIX: &str = "/gs-test/";
pub const NEAR: &str = "127.0.0.2";
pub const FAR: &str = "127.0.0.4";

pub fn kill(child: &mut Option<Child>) {
    if let Some(mut c) = child.take() {
        let _ = c.kill();
        let _ = c.wait();
    }
}

/// One etcd member; killed on drop.
pub struct Member {
    pub name: String,
    pub client: u16,
    pub peer: u16,
    pub child: Option<Child>,
}

/// A 3-member etcd cluster on loopback with temp data dirs.
pub struct Etcd {
    pub dir: tempfile::TempDir,
    pub members: Vec<Member>,
    /// Serve clients over TLS with these files (and require client certs).
    pub tls: Option<Pki>,
    /// Authenticate the test's own client as this user once auth is on.
    pub user: Option<(String, String)>,
}

/// A CA, a server certificate for 127.0.0.1 and a client certificate,
/// written as PEM files.
pub struct Pki {
    pub ca: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
}

impl Pki {
    pub fn write(dir: &Path) -> Pki {
        use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "geosteer fleet test CA");
        let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
        let leaf = |names: Vec<String>, cn: &str| {
            let key = KeyPair::generate().unwrap();
            let mut p = CertificateParams::new(names).unwrap();
            p.distinguished_name.push(DnType::CommonName, cn);
            let cert = p.signed_by(&key, &ca).unwrap();
            (cert.pem(), key.serialize_pem())
        };
        let (sc, sk) = leaf(vec!["127.0.0.1".into(), "localhost".into()], "etcd");
        let (cc, ck) = leaf(vec![], "geosteer");
        let put = |name: &str, text: &str| {
            let p = dir.join(name);
            std::fs::write(&p, text).unwrap();
            p
        };
        Pki {
            ca: put("ca.pem", &ca.pem()),
            server_cert: put("server.pem", &sc),
            server_key: put("server.key", &sk),
            client_cert: put("client.pem", &cc),
            client_key: put("client.key", &ck),
        }
    }
}

impl Etcd {
    pub fn start(n: usize) -> Etcd {
        Etcd::start_with(n, false)
    }

    pub fn start_with(n: usize, tls: bool) -> Etcd {
        let dir = tempfile::tempdir().unwrap();
        let tls = tls.then(|| Pki::write(dir.path()));
        let members: Vec<Member> = (0..n)
            .map(|i| Member {
                name: format!("e{i}"),
                client: free_port(),
                peer: free_port(),
                child: None,
            })
            .collect();
        let mut e = Etcd {
            dir,
            members,
            tls,
            user: None,
        };
        for i in 0..n {
            e.start_member(i);
        }
        e.wait_healthy();
        e
    }

    pub fn start_member(&mut self, i: usize) {
        let cluster = self
            .members
            .iter()
            .map(|m| format!("{}=http://127.0.0.1:{}", m.name, m.peer))
            .collect::<Vec<_>>()
            .join(",");
        let m = &self.members[i];
        let scheme = self.scheme();
        let mut tls_args: Vec<std::ffi::OsString> = Vec::new();
        if let Some(p) = &self.tls {
            for (flag, path) in [
                ("--cert-file", &p.server_cert),
                ("--key-file", &p.server_key),
                ("--trusted-ca-file", &p.ca),
            ] {
                tls_args.push(flag.into());
                tls_args.push(path.into());
            }
            tls_args.push("--client-cert-auth".into());
        }
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join(format!("{}.log", m.name)))
            .unwrap();
        let child = Command::new(tool("etcd"))
            .args(["--name", &m.name])
            .arg("--data-dir")
            .arg(self.dir.path().join(&m.name))
            .args([
                "--listen-client-urls",
                &format!("{scheme}://127.0.0.1:{}", m.client),
                "--advertise-client-urls",
                &format!("{scheme}://127.0.0.1:{}", m.client),
                "--listen-peer-urls",
                &format!("http://127.0.0.1:{}", m.peer),
                "--initial-advertise-peer-urls",
                &format!("http://127.0.0.1:{}", m.peer),
                "--initial-cluster",
                &cluster,
                "--initial-cluster-state",
                "new",
                "--initial-cluster-token",
                "geosteer-test",
                "--heartbeat-interval",
                "50",
                "--election-timeout",
                "500",
                "--logger",
                "zap",
                "--log-level",
                "warn",
            ])
            .args(tls_args)
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .spawn()
            .expect("start etcd");
        self.members[i].child = Some(child);
    }

    pub fn scheme(&self) -> &'static str {
        if self.tls.is_some() { "https" } else { "http" }
    }

    pub fn endpoints(&self) -> Vec<String> {
        self.members
            .iter()
            .map(|m| format!("{}://127.0.0.1:{}", self.scheme(), m.client))
            .collect()
    }

    /// Runs `f` with a client on the live members.
    pub fn with_client<T>(
        &self,
        f: impl AsyncFnOnce(&mut etcd_client::Client) -> Result<T, etcd_client::Error>,
    ) -> Result<T, etcd_client::Error> {
        let eps: Vec<String> = self
            .members
            .iter()
            .filter(|m| m.child.is_some())
            .map(|m| format!("{}://127.0.0.1:{}", self.scheme(), m.client))
            .collect();
        let mut opts = etcd_client::ConnectOptions::new()
            .with_connect_timeout(Duration::from_secs(2))
            .with_timeout(Duration::from_secs(3));
        if let Some(p) = &self.tls {
            let read = |p: &PathBuf| std::fs::read(p).unwrap();
            opts = opts.with_tls(
                etcd_client::TlsOptions::new()
                    .ca_certificate(etcd_client::Certificate::from_pem(read(&p.ca)))
                    .identity(etcd_client::Identity::from_pem(
                        read(&p.client_cert),
                        read(&p.client_key),
                    )),
            );
        }
        if let Some((u, pw)) = &self.user {
            opts = opts.with_user(u.clone(), pw.clone());
        }
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(async move {
                let mut c = etcd_client::Client::connect(eps, Some(opts)).await?;
                f(&mut c).await
            })
    }

    pub fn wait_healthy(&self) {
        let end = Instant::now() + Duration::from_secs(30);
        loop {
            let ok = self.with_client(async |c| {
                c.put("/gs-health", "x", None).await?;
                Ok(())
            });
            if ok.is_ok() {
                return;
            }
            assert!(Instant::now() < end, "etcd cluster not healthy: {ok:?}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The index of the current leader.
    pub fn leader(&self) -> usize {
        for (i, m) in self.members.iter().enumerate() {
            if m.child.is_none() {
                continue;
            }
            let ep = format!("http://127.0.0.1:{}", m.client);
            let r = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(async move {
                    let mut c = etcd_client::Client::connect([ep], None).await?;
                    let s = c.status().await?;
                    Ok::<_, etcd_client::Error>((
                        s.header().map(|h| h.member_id()).unwrap_or(0),
                        s.leader(),
                    ))
                });
            if let Ok((id, leader)) = r
                && id == leader
            {
                return i;
            }
        }
        panic!("no etcd leader");
    }

    pub fn kill(&mut self, i: usize) {
        kill(&mut self.members[i].child);
    }

    pub fn signal_all(&self, sig: libc::c_int) {
        for m in &self.members {
            if let Some(c) = &m.child {
                // SAFETY: signalling our own child by its pid.
                unsafe { libc::kill(c.id() as libc::pid_t, sig) };
            }
        }
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        for m in &mut self.members {
            kill(&mut m.child);
        }
        if std::thread::panicking() {
            for m in &self.members {
                let log = std::fs::read_to_string(self.dir.path().join(format!("{}.log", m.name)))
                    .unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(10).collect();
                eprintln!("--- etcd {} (last lines) ---", m.name);
                for l in tail.into_iter().rev() {
                    eprintln!("{l}");
                }
            }
        }
    }
}

/// Two HTTP edges on one port (`near` on 127.0.0.2, `far` on 127.0.0.4);
/// `near` answers 503 to probes from the source addresses in `near_fails`.
pub struct Edges {
    pub port: u16,
    pub near_fails: Arc<Mutex<HashSet<IpAddr>>>,
}

impl Edges {
    pub fn start() -> Edges {
        let (near, far, port) = (|| {
            for _ in 0..50 {
                let a = TcpListener::bind((NEAR, 0)).unwrap();
                let port = a.local_addr().unwrap().port();
                if let Ok(b) = TcpListener::bind((FAR, port)) {
                    return (a, b, port);
                }
            }
            panic!("no common free port on {NEAR} and {FAR}");
        })();
        let near_fails = Arc::new(Mutex::new(HashSet::new()));
        for (l, fails) in [(near, Some(near_fails.clone())), (far, None)] {
            std::thread::spawn(move || {
                for s in l.incoming() {
                    let Ok(mut s) = s else { continue };
                    let fails = fails.clone();
                    std::thread::spawn(move || {
                        let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
                        let mut buf = [0u8; 1024];
                        let _ = s.read(&mut buf);
                        let from = s.peer_addr().map(|a| a.ip()).ok();
                        let bad = fails.is_some_and(|f| {
                            from.is_some_and(|ip| f.lock().unwrap().contains(&ip))
                        });
                        let status = if bad { "503 Unavailable" } else { "200 OK" };
                        let _ = write!(
                            s,
                            "HTTP/1.1 {status}\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
                        );
                    });
                }
            });
        }
        Edges { port, near_fails }
    }

    pub fn fail_near_for(&self, sources: &[&str]) {
        let mut f = self.near_fails.lock().unwrap();
        f.clear();
        f.extend(sources.iter().map(|s| s.parse::<IpAddr>().unwrap()));
    }
}

/// One geosteer process with its own directory (config, zones, state file).
pub struct Instance {
    pub name: String,
    pub dir: PathBuf,
    pub dns: SocketAddr,
    pub http: SocketAddr,
    pub env: Vec<(String, String)>,
    pub child: Option<Child>,
}

pub fn pools(port: u16, extra: &str) -> String {
    format!(
        "checks:\n  web: {{ type: http, port: {port}, path: /health, interval: 200ms, timeout: 150ms, rise: 2, fall: 2 }}\n\
edges:\n  near: {{ addresses: [{NEAR}], location: [51.5, -0.1], check: web }}\n  far: {{ addresses: [{FAR}], location: [50.1, 8.7], check: web }}\n\
nets:\n  10.0.0.0/8: [51.5, -0.1]\n\
hosts:\n  www: {{ edges: [near, far], ttl: 5 }}\n{extra}"
    )
}

impl Instance {
    pub fn new(root: &Path, name: &str, source: &str, etcd: &[String], edge_port: u16) -> Instance {
        Instance::new_with(root, name, source, etcd, edge_port, "", Vec::new())
    }

    /// `fleet_extra`: more `fleet:` lines (indented two spaces); `env`: the
    /// process's extra environment.
    pub fn new_with(
        root: &Path,
        name: &str,
        source: &str,
        etcd: &[String],
        edge_port: u16,
        fleet_extra: &str,
        env: Vec<(String, String)>,
    ) -> Instance {
        let dir = root.join(name);
        let dns: SocketAddr = ([127, 0, 0, 1], free_port()).into();
        let http: SocketAddr = ([127, 0, 0, 1], free_port()).into();
        write_zone_dir(
            &dir,
            "t.example",
            &pools(edge_port, ""),
            &format!(
                "listen: [\"{dns}\"]\nzones: zones\nhttp: {http}\nworkers: 1\nprobe_source: {source}\n\
fleet:\n  etcd: [{}]\n  prefix: {PREFIX}\n  instance: {name}\n  lease_ttl: 2s\n{}{fleet_extra}",
                etcd.iter()
                    .map(|e| format!("\"{e}\""))
                    .collect::<Vec<_>>()
                    .join(", "),
                if fleet_extra.contains("  timeout:") {
                    ""
                } else {
                    "  timeout: 1s\n"
                }
            ),
        );
        let mut i = Instance {
            name: name.into(),
            dir,
            dns,
            http,
            env,
            child: None,
        };
        i.start();
        i
    }

    pub fn start(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("geosteer.log"))
            .unwrap();
        self.child = Some(
            Command::new(env!("CARGO_BIN_EXE_geosteer"))
                .args(["serve", "-c"])
                .arg(self.dir.join("geosteer.yaml"))
                .env("RUST_LOG", "geosteer=info,geosteer::fleet=debug")
                .envs(self.env.iter().map(|(k, v)| (k, v)))
                .stdout(Stdio::null())
                .stderr(Stdio::from(log))
                .spawn()
                .expect("start geosteer"),
        );
        let end = Instant::now() + Duration::from_secs(30);
        // The HTTP port refuses at once while the process starts (a UDP
        // query would wait out its timeout); DNS is bound before HTTP.
        while std::net::TcpStream::connect(self.http).is_err() {
            assert!(Instant::now() < end, "{} not listening", self.name);
            std::thread::sleep(Duration::from_millis(20));
        }
        while first_answer(self.dns).is_none() {
            assert!(Instant::now() < end, "{} not answering", self.name);
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn stop(&mut self) {
        kill(&mut self.child);
    }

    pub fn get(&self, path: &str) -> serde_json::Value {
        let (code, body) = http(self.http, "GET", path, "");
        assert_eq!(code, 200, "{} GET {path}: {body}", self.name);
        serde_json::from_str(&body).unwrap()
    }

    pub fn call(&self, method: &str, path: &str, body: &str) {
        let (code, resp) = http(self.http, method, path, body);
        assert_eq!(code, 200, "{} {method} {path}: {resp}", self.name);
    }

    pub fn connected(&self) -> bool {
        self.get("/api/status")["fleet"]["connected"] == true
    }

    pub fn metric(&self, name: &str) -> f64 {
        let (_, body) = http(self.http, "GET", "/metrics", "");
        body.lines()
            .filter(|l| l.starts_with(name))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        self.stop();
        if std::thread::panicking() {
            let log = std::fs::read_to_string(self.dir.join("geosteer.log")).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(15).collect();
            eprintln!("--- {} (last lines) ---", self.name);
            for l in tail.into_iter().rev() {
                eprintln!("{l}");
            }
        }
    }
}

/// The first A record for www.t.example from a London client (ECS).
pub fn first_answer(dns: SocketAddr) -> Option<String> {
    thread_local! {
        static SOCK: UdpSocket = UdpSocket::bind("127.0.0.1:0").unwrap();
    }
    static ID: AtomicU64 = AtomicU64::new(1);
    let id = ID.fetch_add(1, Ordering::Relaxed) as u16;
    let q = query(
        id,
        "www.t.example",
        1,
        Some(1232),
        Some(("10.1.2.0".parse().unwrap(), 24)),
    );
    let resp = SOCK.with(|s| udp_exchange(s, dns, &q))?;
    let msg = hickory_proto::op::Message::from_vec(&resp).ok()?;
    msg.answers.iter().find_map(|r| match &r.data {
        hickory_proto::rr::RData::A(a) => Some(a.0.to_string()),
        _ => None,
    })
}

/// Polls every instance until all answer `want` first; returns how long
/// that took, failing after `limit`.
pub fn wait_all(insts: &[&Instance], want: &str, limit: Duration) -> Duration {
    let start = Instant::now();
    let mut done = vec![false; insts.len()];
    loop {
        for (i, inst) in insts.iter().enumerate() {
            if !done[i] {
                done[i] = first_answer(inst.dns).as_deref() == Some(want);
            }
        }
        if done.iter().all(|d| *d) {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < limit,
            "after {limit:?}: not all answer {want}: {:?}",
            insts
                .iter()
                .map(|i| (i.name.clone(), first_answer(i.dns)))
                .collect::<Vec<_>>()
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Answers stay `want` on every instance for `d`.
pub fn holds(insts: &[&Instance], want: &str, d: Duration) {
    let end = Instant::now() + d;
    while Instant::now() < end {
        for i in insts {
            assert_eq!(
                first_answer(i.dns).as_deref(),
                Some(want),
                "{} changed its answer",
                i.name
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Dropped in field order: instances, then etcd, then the directory.
pub struct Fleet {
    pub insts: Vec<Instance>,
    pub etcd: Etcd,
    pub edges: Edges,
    pub root: tempfile::TempDir,
}

/// The sources instances probe from; ns3's is the one the quorum test
/// breaks first.
pub const SOURCES: [&str; 3] = ["127.0.0.11", "127.0.0.12", "127.0.0.3"];

pub fn start_fleet() -> Fleet {
    start_fleet_of(3, 3)
}

/// `instances` geosteer processes over an etcd of `members`, connected and
/// seeing each other live.
pub fn start_fleet_of(members: usize, instances: usize) -> Fleet {
    let etcd = Etcd::start(members);
    let edges = Edges::start();
    let root = tempfile::tempdir().unwrap();
    let eps = etcd.endpoints();
    let insts: Vec<Instance> = (0..instances)
        .map(|i| {
            Instance::new(
                root.path(),
                &format!("ns{}", i + 1),
                SOURCES[i],
                &eps,
                edges.port,
            )
        })
        .collect();
    for i in &insts {
        until_true(
            &format!("{} connected", i.name),
            Duration::from_secs(20),
            || i.connected(),
        );
    }
    for i in &insts {
        until_true(
            &format!("{} sees {instances} live instances", i.name),
            Duration::from_secs(20),
            || {
                i.get("/api/fleet")["instances"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter(|x| x["live"] == true)
                    .count()
                    == instances
            },
        );
    }
    Fleet {
        root,
        etcd,
        edges,
        insts,
    }
}

impl Fleet {
    pub fn all(&self) -> Vec<&Instance> {
        self.insts.iter().collect()
    }
}
