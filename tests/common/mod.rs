//! Shared helpers for the DNS integration tests: a temp zones dir and
//! config, an in-process server on 127.0.0.1 port 0, UDP/TCP clients, and
//! packet builders (hickory for well-formed queries, bytes by hand for the
//! rest).
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::Duration;

use hickory_proto::op::{Edns, Message, Query};
use hickory_proto::rr::{Name, Record, RecordType};

pub const TIMEOUT: Duration = Duration::from_secs(2);

pub fn manifest() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn fixture(name: &str) -> String {
    std::fs::read_to_string(manifest().join("tests/fixtures").join(name)).unwrap()
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
            std::fs::read_to_string(manifest().join("zones/cdn.example.zone")).unwrap(),
        ),
        (
            "cdn.example.pools.yaml".into(),
            std::fs::read_to_string(manifest().join("zones/cdn.example.pools.yaml")).unwrap(),
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
    let zones = dir.join("zones");
    std::fs::create_dir_all(&zones).unwrap();
    for (name, text) in files {
        std::fs::write(zones.join(name), text).unwrap();
    }
    let cfg = dir.join("geosteer.yaml");
    std::fs::write(
        &cfg,
        format!(
            "listen: [\"{listen}\"]\nzones: zones\nworkers: 1\ntcp:\n  idle_timeout: 3s\n  max_connections: 64\n  max_per_client: 32\n{extra}"
        ),
    )
    .unwrap();
    cfg
}

/// An in-process geosteer on loopback, port 0.
pub struct TestServer {
    pub dir: tempfile::TempDir,
    pub udp: SocketAddr,
    pub tcp: SocketAddr,
    rt: tokio::runtime::Runtime,
    running: Option<geosteer::server::Running>,
}

impl TestServer {
    pub fn start(files: &[(String, String)]) -> TestServer {
        Self::start_with(files, "")
    }

    /// A server whose `geosteer.yaml` has `extra` lines too.
    pub fn start_with(files: &[(String, String)], extra: &str) -> TestServer {
        let dir = tempfile::tempdir().unwrap();
        let cfg_path = write_config_with(dir.path(), files, "127.0.0.1:0", extra);
        let cfg = geosteer::config::ServerConfig::load(&cfg_path).unwrap();
        let snap = geosteer::reload::build_snapshot(&cfg, &geosteer::config::pools::AlwaysUp, 1)
            .unwrap_or_else(|e| panic!("fixture does not load:\n{e}"));
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let running = rt.block_on(geosteer::server::start(&cfg, snap)).unwrap();
        TestServer {
            udp: running.udp_addr(),
            tcp: running.tcp_addr(),
            dir,
            rt,
            running: Some(running),
        }
    }

    pub fn udp(&self, m: &Message) -> Resp {
        udp(self.udp, m)
    }
    pub fn tcp(&self, m: &Message) -> Resp {
        tcp(self.tcp, m)
    }
    pub fn udp_raw(&self, q: &[u8]) -> Option<Vec<u8>> {
        udp_raw(self.udp, q)
    }
    pub fn tcp_raw(&self, q: &[u8]) -> Option<Vec<u8>> {
        tcp_raw(self.tcp, q)
    }
    /// Both transports; returns (udp, tcp).
    pub fn both(&self, m: &Message) -> [Resp; 2] {
        [self.udp(m), self.tcp(m)]
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(r) = self.running.take() {
            self.rt.block_on(r.shutdown());
        }
    }
}

/// One server with the default zones for every test in a binary.
pub fn shared() -> &'static TestServer {
    static S: OnceLock<TestServer> = OnceLock::new();
    S.get_or_init(|| TestServer::start(&default_zone_files()))
}

// ------------------------------------------------------------ queries

static NEXT_ID: AtomicU16 = AtomicU16::new(0x1234);

pub fn next_id() -> u16 {
    NEXT_ID.fetch_add(7919, Ordering::Relaxed)
}

/// A query without EDNS, RD clear.
pub fn query(name: &str, t: RecordType) -> Message {
    let mut m = Message::query();
    m.metadata.id = next_id();
    m.metadata.recursion_desired = false;
    m.add_query(Query::query(Name::from_ascii(name).unwrap(), t));
    m
}

/// The same with EDNS(0) and this UDP payload size.
pub fn query_edns(name: &str, t: RecordType, size: u16) -> Message {
    let mut m = query(name, t);
    let mut e = Edns::new();
    e.set_max_payload(size);
    e.set_version(0);
    m.set_edns(e);
    m
}

/// A query by hand: header + question, `extra` appended, counts as given.
pub fn raw_query(
    id: u16,
    flags: u16,
    counts: [u16; 4],
    name: &str,
    qtype: u16,
    extra: &[u8],
) -> Vec<u8> {
    let mut p = Vec::new();
    p.extend_from_slice(&id.to_be_bytes());
    p.extend_from_slice(&flags.to_be_bytes());
    for c in counts {
        p.extend_from_slice(&c.to_be_bytes());
    }
    p.extend_from_slice(&wire_name(name));
    p.extend_from_slice(&qtype.to_be_bytes());
    p.extend_from_slice(&1u16.to_be_bytes());
    p.extend_from_slice(extra);
    p
}

pub fn wire_name(name: &str) -> Vec<u8> {
    let mut v = Vec::new();
    for l in name
        .trim_end_matches('.')
        .split('.')
        .filter(|l| !l.is_empty())
    {
        v.push(l.len() as u8);
        v.extend_from_slice(l.as_bytes());
    }
    v.push(0);
    v
}

/// An OPT RR by hand: payload size, extended rcode, version, flags, options.
pub fn opt_rr(
    size: u16,
    ext_rcode: u8,
    version: u8,
    flags: u16,
    options: &[(u16, &[u8])],
) -> Vec<u8> {
    let mut rd = Vec::new();
    for (code, data) in options {
        rd.extend_from_slice(&code.to_be_bytes());
        rd.extend_from_slice(&(data.len() as u16).to_be_bytes());
        rd.extend_from_slice(data);
    }
    let mut p = vec![0u8];
    p.extend_from_slice(&41u16.to_be_bytes());
    p.extend_from_slice(&size.to_be_bytes());
    p.push(ext_rcode);
    p.push(version);
    p.extend_from_slice(&flags.to_be_bytes());
    p.extend_from_slice(&(rd.len() as u16).to_be_bytes());
    p.extend_from_slice(&rd);
    p
}

// ------------------------------------------------------------ transports

#[derive(Debug, Clone)]
pub struct Resp {
    pub msg: Message,
    pub raw: Vec<u8>,
}

impl Resp {
    fn parse(raw: Vec<u8>) -> Resp {
        let msg = Message::from_vec(&raw)
            .unwrap_or_else(|e| panic!("unparseable response {raw:02x?}: {e}"));
        Resp { msg, raw }
    }
    pub fn len(&self) -> usize {
        self.raw.len()
    }
    pub fn rcode(&self) -> u16 {
        u16::from(self.msg.metadata.response_code)
    }
    pub fn aa(&self) -> bool {
        self.msg.metadata.authoritative
    }
    pub fn tc(&self) -> bool {
        self.msg.metadata.truncation
    }
    pub fn answers(&self) -> BTreeSet<String> {
        rrset_strings(&self.msg.answers)
    }
    pub fn authorities(&self) -> BTreeSet<String> {
        rrset_strings(&self.msg.authorities)
    }
    pub fn additionals(&self) -> BTreeSet<String> {
        rrset_strings(&self.msg.additionals)
    }
    /// The EDNS UDP size of the response's OPT, if any.
    pub fn edns_size(&self) -> Option<u16> {
        self.msg.edns.as_ref().map(|e| e.max_payload())
    }
}

/// Records as "owner ttl class type rdata" strings (exact case).
pub fn rrset_strings(rrs: &[Record]) -> BTreeSet<String> {
    rrs.iter().map(|r| r.to_string()).collect()
}

pub fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

pub fn udp_raw(addr: SocketAddr, q: &[u8]) -> Option<Vec<u8>> {
    udp_raw_timeout(addr, q, TIMEOUT)
}

pub fn udp_raw_timeout(addr: SocketAddr, q: &[u8], t: Duration) -> Option<Vec<u8>> {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.set_read_timeout(Some(t)).unwrap();
    s.send_to(q, addr).unwrap();
    let mut buf = vec![0u8; 65_535];
    loop {
        match s.recv_from(&mut buf) {
            Ok((n, from)) if from == addr => return Some(buf[..n].to_vec()),
            Ok(_) => continue,
            Err(_) => return None,
        }
    }
}

pub fn tcp_raw(addr: SocketAddr, q: &[u8]) -> Option<Vec<u8>> {
    let mut s = TcpStream::connect_timeout(&addr, TIMEOUT).unwrap();
    s.set_read_timeout(Some(TIMEOUT)).unwrap();
    s.set_nodelay(true).unwrap();
    let mut framed = (q.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(q);
    s.write_all(&framed).ok()?;
    read_frame(&mut s)
}

pub fn read_frame(s: &mut TcpStream) -> Option<Vec<u8>> {
    let mut len = [0u8; 2];
    s.read_exact(&mut len).ok()?;
    let mut buf = vec![0u8; u16::from_be_bytes(len) as usize];
    s.read_exact(&mut buf).ok()?;
    Some(buf)
}

/// `Message::to_vec` lowercases names; put the question's letter case back
/// (the point of the case-preservation tests).
pub fn to_wire(m: &Message) -> Vec<u8> {
    let mut q = m.to_vec().unwrap();
    if let Some(question) = m.queries.first() {
        let want = wire_name(&question.name.to_string());
        let have = q.get(12..12 + want.len());
        if have.is_some_and(|h| h.eq_ignore_ascii_case(&want)) {
            q[12..12 + want.len()].copy_from_slice(&want);
        }
    }
    q
}

pub fn udp(addr: SocketAddr, m: &Message) -> Resp {
    let q = to_wire(m);
    let raw =
        udp_raw(addr, &q).unwrap_or_else(|| panic!("no UDP answer from {addr} to {:?}", m.queries));
    let r = Resp::parse(raw);
    assert_eq!(r.msg.metadata.id, m.metadata.id, "UDP response ID");
    r
}

pub fn tcp(addr: SocketAddr, m: &Message) -> Resp {
    let q = to_wire(m);
    let raw =
        tcp_raw(addr, &q).unwrap_or_else(|| panic!("no TCP answer from {addr} to {:?}", m.queries));
    let r = Resp::parse(raw);
    assert_eq!(r.msg.metadata.id, m.metadata.id, "TCP response ID");
    r
}

/// Like a stub resolver: UDP, and TCP again when the answer is truncated.
pub fn resolve(udp_addr: SocketAddr, tcp_addr: SocketAddr, m: &Message) -> (Resp, bool) {
    let r = udp(udp_addr, m);
    if r.tc() {
        (tcp(tcp_addr, m), true)
    } else {
        (r, false)
    }
}

/// Whether an external tool is installed; if not, fail when
/// GEOSTEER_REQUIRE_TOOLS=1, else print a loud skip and return false.
pub fn tool_available(tool: &str, pkg: &str) -> bool {
    let found = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool}"))
        .output()
        .is_ok_and(|o| o.status.success());
    if found {
        return true;
    }
    if std::env::var("GEOSTEER_REQUIRE_TOOLS").as_deref() == Ok("1") {
        panic!("{tool} not installed ({pkg}) and GEOSTEER_REQUIRE_TOOLS=1");
    }
    // Straight to the process's stderr: the test harness captures eprintln!.
    let _ = writeln!(
        std::io::stderr(),
        "\n********************************************************\n\
         SKIPPED: {tool} not installed (install {pkg}; GEOSTEER_REQUIRE_TOOLS=1 makes this fail)\n\
         ********************************************************\n"
    );
    false
}

/// A free TCP+UDP port on loopback (best effort: bound, then released).
pub fn free_port() -> u16 {
    for _ in 0..50 {
        let u = UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = u.local_addr().unwrap().port();
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port");
}

/// Waits until something answers DNS over UDP and TCP at this port.
pub fn wait_dns(port: u16, t: Duration) -> bool {
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let deadline = std::time::Instant::now() + t;
    let q = query("example.", RecordType::SOA).to_vec().unwrap();
    while std::time::Instant::now() < deadline {
        if udp_raw_timeout(addr, &q, Duration::from_millis(200)).is_some()
            && TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
        {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}
