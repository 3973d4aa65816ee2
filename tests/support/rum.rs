//! RUM from the outside: a site (the demo zone with `rum_url`s, override
//! nets that place loopback networks in cities, `rum:` and `http:` on
//! loopback), and clients that fetch configs, post beacons and ask DNS
//! from any 127.x.y.z source address, as real users behind many networks
//! would.

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use super::dns::{ecs_option, query_with_options, udp_exchange};
use super::{repo, write_file};

/// Where the site's override nets put loopback networks (pools `nets:`).
pub const NETS: &str = "  127.1.0.0/16: [51.5, -0.12]\n  127.2.0.0/16: [35.68, 139.69]\n  127.3.0.0/16: [51.5, -0.12]\n  127.4.0.0/14: [40.7, -74.0]\n  127.8.0.0/13: [40.7, -74.0]\n";

/// A config directory: the demo zone, its pools file (whose `rum_url`s
/// become `http://<edge>.edges.test/rum-object`) with [`NETS`] (plus `nets`), and `geosteer.yaml` with the
/// demo database, `http:` and `rum:` (`rum` lines appended to the section;
/// `min_samples` is 5 unless they say).
pub fn site(dir: &Path, rum: &str, nets: &str) -> PathBuf {
    let zone = std::fs::read_to_string(repo().join("zones/cdn.example.zone")).unwrap();
    write_file(dir, "zones/cdn.example.zone", &zone);
    let pools = std::fs::read_to_string(repo().join("zones/cdn.example.pools.yaml")).unwrap();
    // The demo's rum_urls, on names the browser test maps to loopback.
    assert!(pools.contains("https://lhr.edge.cdn.example/rum.gif"));
    let pools = pools
        .replace("https://", "http://")
        .replace(".edge.cdn.example/rum.gif", ".edges.test/rum-object");
    let pools = pools.replacen("\nnets:\n", &format!("\nnets:\n{NETS}{nets}"), 1);
    write_file(dir, "zones/cdn.example.pools.yaml", &pools);
    geosteer::build_geodb(
        &repo().join("geodb/demo-city.yaml"),
        &dir.join("geo.mmdb"),
        geosteer::Schema::City,
    )
    .unwrap();
    let min = if rum.contains("min_samples:") {
        ""
    } else {
        "  min_samples: 5\n"
    };
    write_file(
        dir,
        "geosteer.yaml",
        &format!(
            "listen: [127.0.0.1:0]\nzones: zones\ngeodb: geo.mmdb\nworkers: 1\nhttp: 127.0.0.1:0\nstate_file: state.json\nrum:\n  listen: 127.0.0.1:0\n{min}{rum}"
        ),
    )
}

/// One HTTP/1.1 request from source address `from`: (status, head, body).
pub fn http_from(
    from: IpAddr,
    to: SocketAddr,
    method: &str,
    path: &str,
    headers: &str,
    body: &[u8],
) -> (u16, String, String) {
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    sock.bind(&SocketAddr::new(from, 0).into()).unwrap();
    sock.connect_timeout(&to.into(), Duration::from_secs(5))
        .unwrap();
    let mut s: TcpStream = sock.into();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: rum.cdn.example\r\nConnection: close\r\n{headers}Content-Length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    // The server may answer (413) and close before reading a big body.
    let _ = s.write_all(body);
    let mut resp = Vec::new();
    let _ = s.read_to_end(&mut resp);
    let resp = String::from_utf8_lossy(&resp).to_string();
    let code = resp.get(9..12).and_then(|c| c.parse().ok()).unwrap_or(0);
    let (head, body) = resp.split_once("\r\n\r\n").unwrap_or((&resp, ""));
    (code, head.to_string(), body.to_string())
}

/// A RUM client on one source address.
pub struct Client {
    pub from: IpAddr,
    pub rum: SocketAddr,
}

impl Client {
    pub fn new(from: &str, rum: SocketAddr) -> Client {
        Client {
            from: from.parse().unwrap(),
            rum,
        }
    }

    /// `GET /rum/config?host=`: (status, JSON or Null).
    pub fn config(&self, host: &str) -> (u16, Value) {
        let (code, _, body) = http_from(
            self.from,
            self.rum,
            "GET",
            &format!("/rum/config?host={host}"),
            "",
            b"",
        );
        (code, serde_json::from_str(&body).unwrap_or(Value::Null))
    }

    /// `POST /rum/beacon` with `body`: the status.
    pub fn post(&self, body: &[u8]) -> u16 {
        http_from(
            self.from,
            self.rum,
            "POST",
            "/rum/beacon",
            "Content-Type: text/plain;charset=UTF-8\r\n",
            body,
        )
        .0
    }

    /// A page view: a config for `www.cdn.example`, then a beacon with these
    /// RTTs. Returns the config and the beacon's status.
    pub fn view(&self, rtt: &[(&str, f64)]) -> (Value, u16) {
        let (code, cfg) = self.config("www.cdn.example");
        assert_eq!(code, 200, "config from {}: {cfg}", self.from);
        let rtt: serde_json::Map<String, Value> = rtt
            .iter()
            .map(|(e, ms)| (e.to_string(), (*ms).into()))
            .collect();
        let body = serde_json::json!({ "token": cfg["token"], "rtt": rtt }).to_string();
        let status = self.post(body.as_bytes());
        (cfg, status)
    }
}

/// Asks `server` for `name` A from source `from` (with ECS when given):
/// the response bytes.
pub fn ask_from(from: &str, server: SocketAddr, name: &str, ecs: Option<(&str, u8)>) -> Vec<u8> {
    let sock = UdpSocket::bind((from.parse::<IpAddr>().unwrap(), 0)).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut opts = Vec::new();
    let ecs_data;
    if let Some((a, len)) = ecs {
        ecs_data = ecs_option(a.parse().unwrap(), len);
        opts.push((8u16, &ecs_data[4..]));
    }
    let q = query_with_options(0x4242, name, 1, &opts);
    udp_exchange(&sock, server, &q).expect("an answer")
}

/// The A addresses, TTLs and ECS scope of a response.
pub fn answer(resp: &[u8]) -> (Vec<String>, Vec<u32>, Option<u8>) {
    let m = hickory_proto::op::Message::from_vec(resp).unwrap();
    let addrs = m
        .answers
        .iter()
        .filter_map(|r| match &r.data {
            hickory_proto::rr::RData::A(a) => Some(a.0.to_string()),
            _ => None,
        })
        .collect();
    let ttls = m.answers.iter().map(|r| r.ttl).collect();
    let scope = m.edns.as_ref().and_then(|e| {
        match e.option(hickory_proto::rr::rdata::opt::EdnsCode::Subnet) {
            Some(hickory_proto::rr::rdata::opt::EdnsOption::Subnet(s)) => Some(s.scope_prefix()),
            _ => None,
        }
    });
    (addrs, ttls, scope)
}

/// The demo edges' first IPv4 addresses, by name.
pub fn edge_of(addr: &str) -> &'static str {
    match addr {
        "192.0.2.10" => "lhr",
        "192.0.2.20" => "fra",
        "192.0.2.30" => "cdg",
        "198.51.100.10" => "iad",
        "198.51.100.20" => "sjc",
        "198.51.100.30" => "gru",
        "198.51.100.40" => "jnb",
        "203.0.113.10" => "nrt",
        "203.0.113.20" => "sin",
        "203.0.113.30" => "syd",
        "203.0.113.40" => "bom",
        _ => "?",
    }
}

/// The edge `www.cdn.example` gets for a client (and the ECS scope).
pub fn www_edge(dns: SocketAddr, from: &str, ecs: Option<(&str, u8)>) -> (String, Option<u8>) {
    let (addrs, _, scope) = answer(&ask_from(from, dns, "www.cdn.example", ecs));
    (
        edge_of(addrs.first().map_or("", |a| a.as_str())).to_string(),
        scope,
    )
}

/// A [`site`] in a fresh directory, served by the whole `App`:
/// (directory, config path, server).
pub fn start(rum: &str, nets: &str) -> (tempfile::TempDir, PathBuf, super::server::AppServer) {
    let dir = tempfile::tempdir().unwrap();
    let cfg = site(dir.path(), rum, nets);
    let app = super::server::AppServer::load(&cfg);
    (dir, cfg, app)
}

/// The RUM listener of a running `App`.
pub fn rum_addr(app: &super::server::AppServer) -> SocketAddr {
    app.app().rum.as_ref().expect("rum: configured").addr
}
