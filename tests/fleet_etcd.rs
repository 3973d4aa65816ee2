//! A fleet through a real etcd: a 3-member etcd cluster on loopback and
//! three `geosteer` processes sharing overrides, load and health verdicts
//! through it, then the faults (leader killed, etcd hung, all of etcd
//! killed, an instance restarted while etcd is down, etcd back) and drift;
//! and the link over TLS with a client certificate and password auth.
//!
//! Needs `etcd` (Debian etcd-server); prints SKIPPED without it unless
//! GEOSTEER_REQUIRE_TOOLS=1.

mod support;

use std::collections::HashSet;
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use support::dns::{udp_exchange, wire_query as query};
use support::free_port;
use support::http::http;
use support::server::write_zone_dir;
use support::tools::{need_tools, tool};
use support::wait::until_true;

const PREFIX: &str = "/gs-test/";
const NEAR: &str = "127.0.0.2";
const FAR: &str = "127.0.0.4";

fn kill(child: &mut Option<Child>) {
    if let Some(mut c) = child.take() {
        let _ = c.kill();
        let _ = c.wait();
    }
}

/// One etcd member; killed on drop.
struct Member {
    name: String,
    client: u16,
    peer: u16,
    child: Option<Child>,
}

/// A 3-member etcd cluster on loopback with temp data dirs.
struct Etcd {
    dir: tempfile::TempDir,
    members: Vec<Member>,
    /// Serve clients over TLS with these files (and require client certs).
    tls: Option<Pki>,
    /// Authenticate the test's own client as this user once auth is on.
    user: Option<(String, String)>,
}

/// A CA, a server certificate for 127.0.0.1 and a client certificate,
/// written as PEM files.
struct Pki {
    ca: PathBuf,
    server_cert: PathBuf,
    server_key: PathBuf,
    client_cert: PathBuf,
    client_key: PathBuf,
}

impl Pki {
    fn write(dir: &Path) -> Pki {
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
    fn start(n: usize) -> Etcd {
        Etcd::start_with(n, false)
    }

    fn start_with(n: usize, tls: bool) -> Etcd {
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

    fn start_member(&mut self, i: usize) {
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

    fn scheme(&self) -> &'static str {
        if self.tls.is_some() { "https" } else { "http" }
    }

    fn endpoints(&self) -> Vec<String> {
        self.members
            .iter()
            .map(|m| format!("{}://127.0.0.1:{}", self.scheme(), m.client))
            .collect()
    }

    /// Runs `f` with a client on the live members.
    fn with_client<T>(
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

    fn wait_healthy(&self) {
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
    fn leader(&self) -> usize {
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

    fn kill(&mut self, i: usize) {
        kill(&mut self.members[i].child);
    }

    fn signal_all(&self, sig: libc::c_int) {
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
struct Edges {
    port: u16,
    near_fails: Arc<Mutex<HashSet<IpAddr>>>,
}

impl Edges {
    fn start() -> Edges {
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

    fn fail_near_for(&self, sources: &[&str]) {
        let mut f = self.near_fails.lock().unwrap();
        f.clear();
        f.extend(sources.iter().map(|s| s.parse::<IpAddr>().unwrap()));
    }
}

/// One geosteer process with its own directory (config, zones, state file).
struct Instance {
    name: String,
    dir: PathBuf,
    dns: SocketAddr,
    http: SocketAddr,
    env: Vec<(String, String)>,
    child: Option<Child>,
}

fn pools(port: u16, extra: &str) -> String {
    format!(
        "checks:\n  web: {{ type: http, port: {port}, path: /health, interval: 200ms, timeout: 150ms, rise: 2, fall: 2 }}\n\
edges:\n  near: {{ addresses: [{NEAR}], location: [51.5, -0.1], check: web }}\n  far: {{ addresses: [{FAR}], location: [50.1, 8.7], check: web }}\n\
nets:\n  10.0.0.0/8: [51.5, -0.1]\n\
hosts:\n  www: {{ edges: [near, far], ttl: 5 }}\n{extra}"
    )
}

impl Instance {
    fn new(root: &Path, name: &str, source: &str, etcd: &[String], edge_port: u16) -> Instance {
        Instance::new_with(root, name, source, etcd, edge_port, "", Vec::new())
    }

    /// `fleet_extra`: more `fleet:` lines (indented two spaces); `env`: the
    /// process's extra environment.
    fn new_with(
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

    fn start(&mut self) {
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

    fn stop(&mut self) {
        kill(&mut self.child);
    }

    fn get(&self, path: &str) -> serde_json::Value {
        let (code, body) = http(self.http, "GET", path, "");
        assert_eq!(code, 200, "{} GET {path}: {body}", self.name);
        serde_json::from_str(&body).unwrap()
    }

    fn call(&self, method: &str, path: &str, body: &str) {
        let (code, resp) = http(self.http, method, path, body);
        assert_eq!(code, 200, "{} {method} {path}: {resp}", self.name);
    }

    fn connected(&self) -> bool {
        self.get("/api/status")["fleet"]["connected"] == true
    }

    fn metric(&self, name: &str) -> f64 {
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
fn first_answer(dns: SocketAddr) -> Option<String> {
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
fn wait_all(insts: &[&Instance], want: &str, limit: Duration) -> Duration {
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
fn holds(insts: &[&Instance], want: &str, d: Duration) {
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
struct Fleet {
    insts: Vec<Instance>,
    etcd: Etcd,
    edges: Edges,
    root: tempfile::TempDir,
}

/// The sources instances probe from; ns3's is the one the quorum test
/// breaks first.
const SOURCES: [&str; 3] = ["127.0.0.11", "127.0.0.12", "127.0.0.3"];

fn start_fleet() -> Fleet {
    start_fleet_of(3, 3)
}

/// `instances` geosteer processes over an etcd of `members`, connected and
/// seeing each other live.
fn start_fleet_of(members: usize, instances: usize) -> Fleet {
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
    fn all(&self) -> Vec<&Instance> {
        self.insts.iter().collect()
    }
}

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

/// How long a drain takes to reach every instance's answers: 100 drains
/// (alternating with `auto`) sent to ns1, each timed until all three
/// answer accordingly. `cargo test --test fleet_etcd -- --ignored --nocapture`
#[test]
#[ignore]
fn drain_propagation_latency() {
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
