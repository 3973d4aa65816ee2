//! Answers must not change (issue 28): a fixed set of questions, answered in
//! process and compared with `tests/fixtures/answers.txt`, which the build
//! before the steering core was rewritten (dae8810, main) answered over UDP.
//!
//! The questions: every steered host shape (plain, answers 2, rules by
//! continent, country, subdivision and ASN, partners with a share, v4-only
//! edges, spread and cost by km and by ms, capacity shares, bias, all-down
//! fallbacks, more than 16 candidates), A and AAAA, asked from ECS subnets
//! in, around and between override nets (nested, pinned, IPv6, one over
//! 6to4 space), RTT prefixes (nested, IPv4 and IPv6) and database networks
//! (adjacent ones alike, neighbours unlike), v4-mapped, 6to4 and Teredo
//! addresses, unlocated space, source prefixes from /0 to /128, and no ECS;
//! over five database shapes (City, the same as DB-IP's flat schema, a
//! Country-like one without coordinates, City with a `geodb_asn:` ASN
//! database, none) and two health states (all up; some edges down,
//! draining, overloaded or loaded, a partner down).
//!
//! The databases, zone, pools and RTT file are generated here from a fixed
//! seed, so the table stays valid as long as this file's generator does.
//! To write the table again with a build known to answer right:
//! `GEOSTEER_ANSWERS_FROM=path/to/geosteer cargo test --test answers -- --nocapture`
//! (it serves each shape with that binary and asks over UDP).

use crate::support;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::time::Duration;

use geosteer::{AdminState, Registry, Schema, ServerConfig, Transport};
use hickory_proto::op::Message;
use hickory_proto::rr::rdata::opt::{EdnsCode, EdnsOption};
use hickory_proto::rr::{Name, RData, RecordType};
use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use support::rng::Rng;
use support::write_file;

const ZONE: &str = "t.example";

/// Places databases put networks at: country, continent, subdivision, lat, lon.
const PLACES: &[(&str, &str, &str, f64, f64)] = &[
    ("US", "NA", "CA", 37.7, -122.4),
    ("US", "NA", "NY", 40.7, -74.0),
    ("US", "NA", "TX", 32.8, -96.8),
    ("CA", "NA", "ON", 43.6, -79.4),
    ("MX", "NA", "CMX", 19.4, -99.1),
    ("BR", "SA", "SP", -23.5, -46.6),
    ("AR", "SA", "B", -34.6, -58.4),
    ("GB", "EU", "ENG", 51.5, -0.1),
    ("DE", "EU", "HE", 50.1, 8.7),
    ("FR", "EU", "IDF", 48.9, 2.4),
    ("NL", "EU", "NH", 52.4, 4.9),
    ("RU", "EU", "MOW", 55.8, 37.6),
    ("ZA", "AF", "GT", -26.2, 28.0),
    ("NG", "AF", "LA", 6.5, 3.4),
    ("JP", "AS", "13", 35.7, 139.7),
    ("SG", "AS", "01", 1.4, 103.8),
    ("IN", "AS", "MH", 19.1, 72.9),
    ("CN", "AS", "BJ", 39.9, 116.4),
    ("AU", "OC", "NSW", -33.9, 151.2),
    ("NZ", "OC", "AUK", -36.8, 174.8),
];

const ASNS: [u32; 5] = [64500, 64501, 64502, 3356, 13335];

/// One network of a generated database source.
struct Net {
    net: IpNet,
    yaml: String,
}

/// Disjoint networks, checked as inclusive u128 ranges.
#[derive(Default)]
struct Taken(Vec<(u128, u128)>);

fn span(n: &IpNet) -> (u128, u128) {
    match n {
        IpNet::V4(n) => (
            u128::from(u32::from(n.network())),
            u128::from(u32::from(n.broadcast())),
        ),
        IpNet::V6(n) => (u128::from(n.network()), u128::from(n.broadcast())) as (u128, u128),
    }
}

impl Taken {
    fn take(&mut self, n: IpNet) -> bool {
        let (a, b) = span(&n);
        let v6 = n.network().is_ipv6();
        let clash = self
            .0
            .iter()
            .zip(std::iter::repeat(()))
            .any(|(&(x, y), _)| {
                (x >> 127 == 1) == v6 && a <= (y & !(1 << 127)) && (x & !(1 << 127)) <= b
            });
        if !clash {
            let tag = if v6 { 1u128 << 127 } else { 0 };
            // IPv6 keys lose their top bit; the generator stays in 2000::/3.
            self.0.push((a | tag, b | tag));
        }
        !clash
    }
}

/// The data of a network: a place, sometimes only a country or an ASN.
fn data(rng: &mut Rng, place: usize, asn: bool) -> String {
    let (cc, cont, sub, lat, lon) = PLACES[place];
    let jitter = |r: u64| (r % 400) as f64 / 100.0 - 2.0;
    let asn_part = if asn {
        format!(", asn: {}", ASNS[rng.below(ASNS.len())])
    } else {
        String::new()
    };
    match rng.below(12) {
        0 => format!("country: {cc}{asn_part}"),
        1 => format!("continent: {cont}"),
        2 => format!("asn: {}", ASNS[rng.below(ASNS.len())]),
        _ => format!(
            "country: {cc}, continent: {cont}, subdivision: \"{sub}\", lat: {:.4}, lon: {:.4}{asn_part}",
            lat + jitter(rng.next()),
            lon + jitter(rng.next())
        ),
    }
}

/// The City source: random IPv4 and IPv6 networks, runs of adjacent
/// networks with one place (of different lengths), and networks next to
/// the override nets and RTT prefixes the pools and RTT files use.
fn city_source(rng: &mut Rng) -> Vec<Net> {
    let mut taken = Taken::default();
    let mut out = Vec::new();
    let push = |net: IpNet, yaml: String, taken: &mut Taken, out: &mut Vec<Net>| {
        if taken.take(net) {
            out.push(Net { net, yaml });
        }
    };
    // Fixed ones around the nets and prefixes of the pools and RTT files.
    for (n, place) in [
        ("20.0.0.0/16", 7),
        ("20.1.0.0/24", 8),
        ("20.1.1.0/24", 9),
        ("20.1.2.0/23", 9),
        ("20.2.0.0/15", 0),
        ("30.0.0.0/12", 14),
        ("40.10.0.0/16", 5),
        ("40.11.0.0/16", 5),
        ("50.0.0.0/8", 18),
        ("60.1.0.0/16", 11),
        ("2400:1000::/24", 15),
        ("2600:1000::/28", 1),
        ("2a00:1000::/32", 10),
        ("2a00:1001::/32", 10),
    ] {
        let d = data(rng, place, true);
        push(n.parse().unwrap(), d, &mut taken, &mut out);
    }
    // Runs: one place over a /16 cut into unequal adjacent networks.
    for _ in 0..12 {
        let base = (70 + rng.below(100) as u32) << 24 | (rng.below(256) as u32) << 16;
        let place = rng.below(PLACES.len());
        let with_asn = rng.below(2) == 0;
        let d = data(rng, place, with_asn);
        for (off, len) in [(0u32, 17u8), (0x8000, 18), (0xC000, 19), (0xE000, 19)] {
            let n = IpNet::V4(Ipv4Net::new(Ipv4Addr::from(base | off), len).unwrap());
            push(n, d.clone(), &mut taken, &mut out);
        }
    }
    // Random IPv4 networks, /10 to /30.
    for _ in 0..260 {
        let len = 10 + rng.below(21) as u8;
        let a = (1 + rng.below(222) as u32) << 24 | (rng.next() as u32 & 0x00FF_FFFF);
        let n = Ipv4Net::new(Ipv4Addr::from(a), len).unwrap().trunc();
        if n.network().is_private() || n.network().octets()[0] == 127 {
            continue;
        }
        let place = rng.below(PLACES.len());
        let with_asn = rng.below(3) == 0;
        let d = data(rng, place, with_asn);
        push(IpNet::V4(n), d, &mut taken, &mut out);
    }
    // Random IPv6 networks in 2400::/8 .. 2a00::/8, /20 to /64.
    for _ in 0..90 {
        let len = 20 + rng.below(45) as u8;
        let top = [0x2400u128, 0x2600, 0x2800, 0x2a00][rng.below(4)];
        let a = top << 112 | (u128::from(rng.next()) << 48 & ((1u128 << 112) - 1));
        let n = Ipv6Net::new(Ipv6Addr::from(a), len).unwrap().trunc();
        let place = rng.below(PLACES.len());
        let with_asn = rng.below(3) == 0;
        let d = data(rng, place, with_asn);
        push(IpNet::V6(n), d, &mut taken, &mut out);
    }
    out
}

/// The same networks with only a country and continent (a Country database).
fn country_source(city: &[Net]) -> String {
    let mut y = String::from("networks:\n");
    for n in city {
        let cc = n
            .yaml
            .split(", ")
            .find_map(|kv| kv.strip_prefix("country: "))
            .map(str::to_owned);
        let cont = n
            .yaml
            .split(", ")
            .find_map(|kv| kv.strip_prefix("continent: "))
            .map(str::to_owned);
        let d = match (cc, cont) {
            (Some(cc), Some(c)) => format!("country: {cc}, continent: {c}"),
            (Some(cc), None) => format!("country: {cc}"),
            (None, Some(c)) => format!("continent: {c}"),
            // ASN only: a Country database has none of it.
            (None, None) => continue,
        };
        let _ = writeln!(y, "  - {{ network: {}, {d} }}", n.net);
    }
    y
}

/// An ASN database whose networks cut across the City ones.
fn asn_source(rng: &mut Rng) -> String {
    let mut taken = Taken::default();
    let mut y = String::from("networks:\n");
    let mut nets: Vec<IpNet> = [
        "20.1.0.0/23",
        "20.2.0.0/16",
        "40.10.128.0/17",
        "2a00:1000::/31",
    ]
    .iter()
    .map(|s| s.parse().unwrap())
    .collect();
    for _ in 0..120 {
        let len = 9 + rng.below(16) as u8;
        let a = (1 + rng.below(222) as u32) << 24 | (rng.next() as u32 & 0x00FF_FFFF);
        nets.push(IpNet::V4(
            Ipv4Net::new(Ipv4Addr::from(a), len).unwrap().trunc(),
        ));
    }
    for _ in 0..30 {
        let len = 16 + rng.below(30) as u8;
        let top = [0x2400u128, 0x2600, 0x2a00][rng.below(3)];
        let a = top << 112 | (u128::from(rng.next()) << 48 & ((1u128 << 112) - 1));
        nets.push(IpNet::V6(
            Ipv6Net::new(Ipv6Addr::from(a), len).unwrap().trunc(),
        ));
    }
    for n in nets {
        let private =
            matches!(n, IpNet::V4(v) if v.network().is_private() || v.network().octets()[0] == 127);
        if !private && taken.take(n) {
            let _ = writeln!(
                y,
                "  - {{ network: {n}, asn: {} }}",
                ASNS[rng.below(ASNS.len())]
            );
        }
    }
    y
}

const POOLS: &str = r#"
ttl: 30
edges:
  lhr: { addresses: [192.0.2.10, "2001:db8:10::1"], location: [51.47, -0.45], weight: 2 }
  lhr2: { addresses: [192.0.2.11], location: [51.47, -0.45], capacity: 3 }
  fra: { addresses: [192.0.2.20, "2001:db8:20::1"], location: [50.03, 8.57], bias: 30 }
  cdg: { addresses: [192.0.2.30], location: [49.01, 2.55], cost: 2 }
  ams: { addresses: [192.0.2.40, "2001:db8:40::1"], location: [52.31, 4.76], cost: 0.5 }
  waw: { addresses: ["2001:db8:50::1"], location: [52.17, 20.97] }
  iad: { addresses: [198.51.100.10, "2001:db8:110::1"], location: [38.95, -77.45] }
  ord: { addresses: [198.51.100.11, "2001:db8:111::1"], location: [41.98, -87.90], capacity: 0.5 }
  dfw: { addresses: [198.51.100.12], location: [32.90, -97.04], cost: 3 }
  sjc: { addresses: [198.51.100.20], location: [37.36, -121.93], bias: -20 }
  yyz: { addresses: [198.51.100.21, "2001:db8:121::1"], location: [43.68, -79.63] }
  mex: { addresses: [198.51.100.22], location: [19.44, -99.07] }
  gru: { addresses: [198.51.100.30], location: [-23.43, -46.47] }
  eze: { addresses: [198.51.100.31, "2001:db8:131::1"], location: [-34.82, -58.54] }
  jnb: { addresses: [198.51.100.40], location: [-26.14, 28.24] }
  los: { addresses: [198.51.100.41], location: [6.58, 3.32], bias: 50 }
  nrt: { addresses: ["2001:db8:210::1"], location: [35.76, 140.39] }
  hnd: { addresses: [203.0.113.11, "2001:db8:211::1"], location: [35.55, 139.78] }
  sin: { addresses: [203.0.113.20, "2001:db8:220::1"], location: [1.36, 103.99] }
  bom: { addresses: [203.0.113.40], location: [19.09, 72.87] }
  pek: { addresses: [203.0.113.50, "2001:db8:250::1"], location: [40.08, 116.58] }
  syd: { addresses: [203.0.113.30], location: [-33.95, 151.18] }
  akl: { addresses: [203.0.113.31, "2001:db8:231::1"], location: [-37.01, 174.79] }
  akamai: { cname: www.t.example.edgekey.example. }
  fastly: { cname: t.example.fastly.example. }
nets:
  20.1.1.0/24: [48.85, 2.35]
  20.1.1.128/25: { edges: [fra, ams] }
  20.2.0.0/16: { edges: [gru, iad, akamai] }
  20.2.64.0/18: { country: JP, continent: AS }
  100.64.0.0/16: [-33.9, 151.2]
  100.64.3.0/24: { edges: [syd] }
  40.10.200.0/22: { location: [35.7, 139.7], country: JP }
  2a00:1000:8000::/33: [40.7, -74.0]
  2a00:1000:8000::/48: { edges: [lhr, fra] }
  2002:1401:0100::/40: { edges: [sin] }
  fd00::/16: [1.3, 103.8]
hosts:
  www: {}
  two: { answers: 2 }
  rules:
    rules:
      - { asn: [64501], edges: [iad, fastly] }
      - { continent: EU, edges: [fra, lhr, akamai] }
      - { country: [US, CA], edges: [iad, sjc] }
      - { country: JP, edges: [nrt, fastly] }
      - { subdivision: [SP, NSW], edges: [gru, syd] }
    edges: [iad, fra, sin]
  multi: { edges: [iad, gru, fra, akamai, fastly], partner_share: 0.3 }
  partners: { edges: [akamai, fastly, cdg] }
  onlyv4: { edges: [cdg, gru, syd, dfw] }
  onlyv6: { edges: [waw, nrt, lhr] }
  spread: { spread_km: 800, answers: 2 }
  wide: { spread_km: 3000, edges: [lhr, lhr2, fra, cdg, ams, waw, iad, ord, yyz] }
  cost: { cost_margin_km: 900 }
  ms: { spread_ms: 15, cost_margin_ms: 10, answers: 2 }
  down:
    edges: [dfw, mex]
    fallback: down.othercdn.example.
    all_down: fallback
  fail: { edges: [dfw, mex], all_down: servfail }
  empty: { edges: [dfw, mex], all_down: empty }
  small: { edges: [syd, akl, sin] }
"#;

/// RTT rows: nested IPv4 and IPv6 prefixes (some over override nets and
/// database networks, some partner rows), and location keys.
fn rtt_csv() -> String {
    let rows = [
        ("20.1.0.0/16", "lhr", 30),
        ("20.1.0.0/16", "fra", 12),
        ("20.1.0.0/16", "akamai", 20),
        ("20.1.1.0/24", "cdg", 8),
        ("20.1.1.0/24", "lhr", 9),
        ("20.1.1.192/26", "ams", 3),
        ("20.1.2.0/24", "ord", 40),
        ("20.2.128.0/17", "iad", 70),
        ("20.2.128.0/17", "gru", 90),
        ("40.10.0.0/15", "sjc", 25),
        ("40.10.0.0/15", "iad", 28),
        ("40.10.0.0/15", "ord", 31),
        ("40.10.64.0/18", "dfw", 6),
        ("100.64.0.0/10", "syd", 14),
        ("2600:1000::/24", "iad", 11),
        ("2600:1000::/24", "yyz", 13),
        ("2600:1000:8000::/33", "ord", 7),
        ("2a00:1000::/31", "ams", 9),
        ("country:JP", "hnd", 5),
        ("country:JP", "sin", 60),
        ("country:DE", "lhr", 9),
        ("country:BR", "eze", 22),
        ("continent:OC", "sin", 80),
        ("continent:OC", "akl", 30),
        ("continent:SA", "akamai", 20),
        ("AS3356", "ord", 4),
        ("AS3356", "fastly", 6),
        ("AS13335", "waw", 15),
    ];
    let mut csv = String::from("client,edge,rtt_ms,samples\n");
    for (k, e, ms) in rows {
        let _ = writeln!(csv, "{k},{e},{ms},10");
    }
    csv
}

const ZONE_FILE: &str = "$TTL 300
@ IN SOA ns1.t.example. hostmaster.t.example. ( 1 3600 600 604800 300 )
  IN NS ns1
ns1 IN A 192.0.2.53
";

/// The database shapes the questions are asked over.
const SHAPES: [&str; 5] = ["city", "flat", "country", "asn", "nodb"];

/// Health states: (name, edges set down / drain, (edge, load) fed).
const HEALTH: [&str; 2] = ["up", "mixed"];
const MIXED_ADMIN: [(&str, &str); 6] = [
    ("lhr", "down"),
    ("dfw", "down"),
    ("mex", "down"),
    ("sin", "drain"),
    ("fastly", "down"),
    ("syd", "drain"),
];
const MIXED_LOAD: [(&str, f64); 4] = [("fra", 0.95), ("iad", 0.5), ("ams", 0.97), ("akl", 0.3)];

/// Writes the zone directory and every database; returns the config file
/// of each shape.
fn write_fixture(dir: &Path) -> BTreeMap<&'static str, PathBuf> {
    let mut rng = Rng(28);
    let city = city_source(&mut rng);
    let mut y = String::from("networks:\n");
    for n in &city {
        let _ = writeln!(y, "  - {{ network: {}, {} }}", n.net, n.yaml);
    }
    let city_yaml = write_file(dir, "src/city.yaml", &y);
    let country_yaml = write_file(dir, "src/country.yaml", &country_source(&city));
    let asn_yaml = write_file(dir, "src/asn.yaml", &asn_source(&mut rng));
    let db = |name: &str, src: &Path, schema| {
        let out = dir.join(name);
        geosteer::build_geodb(src, &out, schema).expect("fixture database");
        out
    };
    let city_db = db("city.mmdb", &city_yaml, Schema::City);
    let flat_db = db("flat.mmdb", &city_yaml, Schema::Flat);
    let country_db = db("country.mmdb", &country_yaml, Schema::City);
    let asn_db = db("asn.mmdb", &asn_yaml, Schema::City);
    write_file(dir, &format!("zones/{ZONE}.zone"), ZONE_FILE);
    write_file(dir, &format!("zones/{ZONE}.pools.yaml"), POOLS);
    write_file(dir, &format!("zones/{ZONE}.rtt.csv"), &rtt_csv());
    let mut out = BTreeMap::new();
    for shape in SHAPES {
        let dbs = match shape {
            "city" => format!("geodb: {}\n", city_db.display()),
            "flat" => format!("geodb: {}\n", flat_db.display()),
            "country" => format!("geodb: {}\n", country_db.display()),
            "asn" => format!(
                "geodb: {}\ngeodb_asn: {}\n",
                city_db.display(),
                asn_db.display()
            ),
            _ => String::new(),
        };
        let yaml = format!(
            "listen: [\"127.0.0.1:0\"]\nzones: {}\n{dbs}workers: 1\n",
            dir.join("zones").display()
        );
        out.insert(shape, write_file(dir, &format!("{shape}.yaml"), &yaml));
    }
    out
}

/// The ECS subnets asked from (None: no ECS), the same every run.
fn subnets(dir: &Path) -> Vec<Option<IpNet>> {
    let mut rng = Rng(2828);
    let mut out: Vec<Option<IpNet>> = vec![None];
    let add = |addr: IpAddr, len: u8, out: &mut Vec<Option<IpNet>>| {
        out.push(Some(IpNet::new(addr, len).unwrap().trunc()));
    };
    let v4 = |s: &str| s.parse::<Ipv4Addr>().unwrap();
    // In, at the edges of and next to every override net and RTT prefix.
    let mut edges4: Vec<Ipv4Net> = Vec::new();
    let mut edges6: Vec<Ipv6Net> = Vec::new();
    for line in POOLS.lines().chain(rtt_csv().lines()) {
        let first = line.trim().split([':', ',']).next().unwrap_or("");
        let key = line.trim().split(": ").next().unwrap_or("");
        for cand in [first, key] {
            if let Ok(n) = cand.parse::<Ipv4Net>() {
                edges4.push(n);
            } else if let Ok(n) = cand.parse::<Ipv6Net>() {
                edges6.push(n);
            }
        }
    }
    edges4.sort();
    edges4.dedup();
    edges6.sort();
    edges6.dedup();
    for n in &edges4 {
        let (a, b) = (u32::from(n.network()), u32::from(n.broadcast()));
        for (x, len) in [
            (a, 32),
            (b, 32),
            (a.wrapping_sub(1), 32),
            (b.wrapping_add(1), 24),
            (a + (b - a) / 2, 24),
            (a, n.prefix_len()),
        ] {
            add(IpAddr::V4(Ipv4Addr::from(x)), len, &mut out);
        }
    }
    for n in &edges6 {
        let (a, b) = (u128::from(n.network()), u128::from(n.broadcast()));
        for (x, len) in [
            (a, 128),
            (b, 56),
            (a.wrapping_sub(1), 64),
            (b.wrapping_add(1), 56),
            (a + (b - a) / 3, 48),
        ] {
            add(IpAddr::V6(Ipv6Addr::from(x)), len, &mut out);
        }
    }
    // Inside database networks (every third), at several source lengths.
    let src = std::fs::read_to_string(dir.join("src/city.yaml")).unwrap();
    let nets: Vec<IpNet> = src
        .lines()
        .filter_map(|l| l.split("network: ").nth(1))
        .filter_map(|l| l.split(',').next())
        .filter_map(|s| s.parse().ok())
        .collect();
    for (i, n) in nets.iter().enumerate().filter(|(i, _)| i % 3 == 0) {
        let (a, b) = span(n);
        let x = a + u128::from(rng.next()) % (b - a + 1);
        match n {
            IpNet::V4(_) => {
                let len = [24, 24, 32, 16, 20, 25, 8, 0][i % 8];
                let addr = Ipv4Addr::from(x as u32);
                add(IpAddr::V4(addr), len, &mut out);
                // The same client inside IPv6: v4-mapped, 6to4, Teredo.
                let o = u128::from(u32::from(addr));
                match i % 9 {
                    0 => add(
                        IpAddr::V6(Ipv6Addr::from(0xffffu128 << 32 | o)),
                        120,
                        &mut out,
                    ),
                    3 => add(
                        IpAddr::V6(Ipv6Addr::from(0x2002u128 << 112 | o << 80)),
                        48,
                        &mut out,
                    ),
                    6 => add(
                        IpAddr::V6(Ipv6Addr::from(
                            0x2001_0000_4136_e378_8000_63bf_0000_0000u128 | u128::from(!(x as u32)),
                        )),
                        128,
                        &mut out,
                    ),
                    _ => {}
                }
            }
            IpNet::V6(_) => {
                let len = [56, 48, 64, 128, 32, 0][i % 6];
                add(IpAddr::V6(Ipv6Addr::from(x)), len, &mut out);
            }
        }
    }
    // 6to4 over the IPv6 override net, and the nets' own 6to4 client.
    add(
        IpAddr::V6("2002:1401:0105::".parse().unwrap()),
        48,
        &mut out,
    );
    add(
        IpAddr::V6("2002:1401:0205::".parse().unwrap()),
        48,
        &mut out,
    );
    add(
        IpAddr::V6("::ffff:20.1.1.200".parse().unwrap()),
        128,
        &mut out,
    );
    add(
        IpAddr::V6("::ffff:20.2.70.1".parse().unwrap()),
        104,
        &mut out,
    );
    // Unlocated: private, reserved, unallocated IPv6.
    for (a, len) in [
        (IpAddr::V4(v4("10.1.2.3")), 24),
        (IpAddr::V4(v4("192.168.7.9")), 32),
        (IpAddr::V4(v4("240.0.0.1")), 16),
        (IpAddr::V4(v4("127.0.0.1")), 32),
        (IpAddr::V6("fc00::1".parse().unwrap()), 56),
        (IpAddr::V6("fd00:1::".parse().unwrap()), 48),
        (IpAddr::V6("3fff:1234::".parse().unwrap()), 48),
        (IpAddr::V6("::1".parse().unwrap()), 128),
    ] {
        add(a, len, &mut out);
    }
    let mut seen = std::collections::HashSet::new();
    out.retain(|s| seen.insert(*s));
    out
}

/// The steered names asked.
fn hosts() -> Vec<&'static str> {
    POOLS
        .split("\nhosts:\n")
        .nth(1)
        .unwrap()
        .lines()
        .filter(|l| l.starts_with("  ") && !l.starts_with("   "))
        .map(|l| l.trim().split(':').next().unwrap())
        .collect()
}

/// Edge names by address, from the pools text.
fn edge_names() -> BTreeMap<IpAddr, String> {
    let mut m = BTreeMap::new();
    let section = POOLS.split("\nnets:").next().unwrap();
    for line in section.lines() {
        let Some((name, rest)) = line.trim().split_once(": { addresses: [") else {
            continue;
        };
        let list = rest.split(']').next().unwrap();
        for a in list.split(',') {
            let a = a.trim().trim_matches('"');
            m.insert(a.parse().unwrap(), name.to_string());
        }
    }
    m
}

/// A response in a few characters: edges (or CNAME targets) in answer
/// order and the ECS scope, with the rcode when it is not NOERROR.
fn token(bytes: Option<&[u8]>, names: &BTreeMap<IpAddr, String>) -> String {
    let Some(bytes) = bytes else {
        return "TIMEOUT".into();
    };
    let msg = Message::from_vec(bytes).expect("response parses");
    let mut t = String::new();
    let rcode = msg.metadata.response_code.to_string();
    if rcode != "No Error" {
        t.push_str(&rcode.replace(' ', ""));
        t.push(':');
    }
    let parts: Vec<String> = msg
        .answers
        .iter()
        .map(|r| match &r.data {
            RData::A(a) => names
                .get(&IpAddr::V4(a.0))
                .cloned()
                .unwrap_or_else(|| a.0.to_string()),
            RData::AAAA(a) => names
                .get(&IpAddr::V6(a.0))
                .cloned()
                .unwrap_or_else(|| a.0.to_string()),
            // Partner CDNs by edge name, the host's fallback as such.
            RData::CNAME(c) => match c.0.to_string().as_str() {
                "www.t.example.edgekey.example." => "=akamai".into(),
                "t.example.fastly.example." => "=fastly".into(),
                "down.othercdn.example." => "=fallback".into(),
                other => format!("={other}"),
            },
            other => format!("{}", other.record_type()),
        })
        .collect();
    t.push_str(if parts.is_empty() { "-" } else { "" });
    t.push_str(&parts.join("+"));
    let scope = msg
        .edns
        .as_ref()
        .and_then(|e| match e.option(EdnsCode::Subnet) {
            Some(EdnsOption::Subnet(s)) => Some(s.scope_prefix()),
            _ => None,
        });
    if let Some(s) = scope {
        let _ = write!(t, "/{s}");
    }
    t
}

fn query(host: &str, qtype: RecordType, ecs: Option<IpNet>) -> Vec<u8> {
    let name = Name::from_ascii(format!("{host}.{ZONE}.")).unwrap();
    geosteer::query_bytes(&name, qtype, ecs)
}

/// One table line: its key and the tokens, one per subnet.
type Lines = BTreeMap<String, Vec<String>>;

fn key(shape: &str, health: &str, qtype: RecordType, host: &str) -> String {
    format!("{shape} {health} {qtype} {host}")
}

/// Every answer of this build, in process.
fn answer_here(configs: &BTreeMap<&'static str, PathBuf>, subnets: &[Option<IpNet>]) -> Lines {
    let names = edge_names();
    let from: SocketAddr = "127.0.0.1:5353".parse().unwrap();
    let mut out = vec![0u8; 65535];
    let mut lines = Lines::new();
    for (shape, cfg) in configs {
        for health in HEALTH {
            let registry = Registry::new();
            let cfg = ServerConfig::load(cfg).expect("config");
            let snap = geosteer::build_snapshot(&cfg, &registry, 1).expect("snapshot");
            if health == "mixed" {
                for (edge, state) in MIXED_ADMIN {
                    let state = match state {
                        "down" => AdminState::Down,
                        _ => AdminState::Drain,
                    };
                    registry
                        .set_admin(Some(&format!("{ZONE}.")), edge, state)
                        .expect("edge");
                }
                for (edge, load) in MIXED_LOAD {
                    registry
                        .feed_load(
                            Some(&format!("{ZONE}.")),
                            edge,
                            load,
                            Duration::from_secs(3600),
                        )
                        .expect("edge");
                }
            }
            for qtype in [RecordType::A, RecordType::AAAA] {
                for host in hosts() {
                    let tokens = subnets
                        .iter()
                        .map(|&ecs| {
                            let q = query(host, qtype, ecs);
                            let n = geosteer::respond(&snap, &q, from, Transport::Udp, &mut out);
                            token(n.map(|n| &out[..n]), &names)
                        })
                        .collect();
                    lines.insert(key(shape, health, qtype, host), tokens);
                }
            }
        }
    }
    lines
}

/// Every answer of the binary at `bin`, served per shape and asked over UDP.
fn answer_by(
    bin: &Path,
    dir: &Path,
    configs: &BTreeMap<&'static str, PathBuf>,
    subnets: &[Option<IpNet>],
) -> Lines {
    let names = edge_names();
    let mut lines = Lines::new();
    for (shape, cfg) in configs {
        for health in HEALTH {
            let port = support::free_port();
            let http = support::free_port();
            let text = std::fs::read_to_string(cfg)
                .unwrap()
                .replace("127.0.0.1:0", &format!("127.0.0.1:{port}"));
            let cfg = write_file(
                dir,
                &format!("served-{shape}-{health}.yaml"),
                // Its own state file: admin overrides persist across restarts.
                &format!("{text}http: 127.0.0.1:{http}\nstate_file: state-{shape}-{health}.json\n"),
            );
            let child = std::process::Command::new(bin)
                .args(["serve", "--config"])
                .arg(&cfg)
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .expect("the reference binary starts");
            let _child = support::KillOnDrop(child);
            let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
            sock.set_read_timeout(Some(Duration::from_millis(500)))
                .unwrap();
            let server: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
            let ask = |q: &[u8]| -> Option<Vec<u8>> {
                let mut buf = vec![0u8; 65535];
                for _ in 0..4 {
                    sock.send_to(q, server).ok()?;
                    if let Ok((n, _)) = sock.recv_from(&mut buf) {
                        return Some(buf[..n].to_vec());
                    }
                }
                None
            };
            let probe = query("www", RecordType::A, None);
            support::wait::until_true(
                "the reference server answers",
                Duration::from_secs(120),
                || ask(&probe).is_some(),
            );
            let h: SocketAddr = format!("127.0.0.1:{http}").parse().unwrap();
            if health == "mixed" {
                for (edge, state) in MIXED_ADMIN {
                    let (code, body) = support::http::http(
                        h,
                        "POST",
                        &format!("/api/edges/{edge}/admin?zone={ZONE}"),
                        &format!("{{\"state\":\"{state}\"}}"),
                    );
                    assert_eq!(code, 200, "{body}");
                }
                for (edge, load) in MIXED_LOAD {
                    let (code, body) = support::http::http(
                        h,
                        "PUT",
                        &format!("/api/edges/{edge}/load?zone={ZONE}"),
                        &format!("{{\"load\":{load},\"ttl\":\"1h\"}}"),
                    );
                    assert_eq!(code, 200, "{body}");
                }
            }
            for qtype in [RecordType::A, RecordType::AAAA] {
                for host in hosts() {
                    let tokens = subnets
                        .iter()
                        .map(|&ecs| {
                            let r = ask(&query(host, qtype, ecs));
                            token(r.as_deref(), &names)
                        })
                        .collect();
                    lines.insert(key(shape, health, qtype, host), tokens);
                }
            }
        }
    }
    lines
}

fn table_path() -> PathBuf {
    support::repo().join("tests/fixtures/answers.txt")
}

fn subnet_str(s: &Option<IpNet>) -> String {
    s.map_or("none".into(), |n| n.to_string())
}

#[test]
fn answers_are_the_reference_builds() {
    let dir = tempfile::tempdir().unwrap();
    let configs = write_fixture(dir.path());
    let subnets = subnets(dir.path());
    let header: Vec<String> = subnets.iter().map(subnet_str).collect();
    if let Some(bin) = std::env::var_os("GEOSTEER_ANSWERS_FROM") {
        let lines = answer_by(Path::new(&bin), dir.path(), &configs, &subnets);
        let mut text = format!(
            "# Answers of {} to tests/answers.rs's questions: one line per (database shape, health, type, host),\n# one token per subnet of the `subnets` line: edges or CNAME targets in answer order / ECS scope.\nsubnets {}\n",
            Path::new(&bin).display(),
            header.join(" ")
        );
        for (k, tokens) in &lines {
            let _ = writeln!(text, "{k} {}", tokens.join(" "));
        }
        std::fs::write(table_path(), text).unwrap();
        println!("wrote {} lines to {}", lines.len(), table_path().display());
        return;
    }
    let text = std::fs::read_to_string(table_path()).expect("tests/fixtures/answers.txt");
    let mut want = Lines::new();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let mut words = line.split(' ');
        let first = words.next().unwrap();
        if first == "subnets" {
            let listed: Vec<&str> = words.collect();
            assert_eq!(
                listed, header,
                "the questions changed; regenerate the table"
            );
            continue;
        }
        let k: Vec<&str> = std::iter::once(first)
            .chain(words.by_ref().take(3))
            .collect();
        want.insert(k.join(" "), words.map(str::to_owned).collect());
    }
    let got = answer_here(&configs, &subnets);
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        want.keys().collect::<Vec<_>>(),
        "the same questions"
    );
    let mut diffs = Vec::new();
    for (k, tokens) in &got {
        for ((t, w), s) in tokens.iter().zip(&want[k]).zip(&header) {
            if t != w {
                diffs.push(format!("{k} from {s}: reference {w}, now {t}"));
            }
        }
    }
    let n: usize = got.values().map(Vec::len).sum();
    assert!(
        diffs.is_empty(),
        "{} of {n} answers changed:\n{}",
        diffs.len(),
        diffs
            .iter()
            .take(60)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
    println!("{n} answers as the reference build gave them");
}
