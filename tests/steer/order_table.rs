//! The edges ranked per database point at snapshot build
//! (`Steering::precompute`) decide exactly what orders computed per query
//! decide: every host shape (plain, rules, partners, bias, RTT keys by
//! country and continent, spread and cost hosts), both families, random
//! clients and random edge health, on a City database of ~4,000 records
//! built here; and explain's detailed trace takes the same decision.

use crate::support;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;

use geosteer::build_zone;
use geosteer::{AdminState, Registry};
use geosteer::{Client, Family, Trace, decide};
use geosteer::{GeoDb, Schema, build_geodb as build};
use support::rng::Rng;
use support::server::MINIMAL_ZONE;
use support::write_file;

/// Explain's view: orders computed afresh with every candidate's km.
struct Detailed;
impl Trace for Detailed {
    const DETAILED: bool = true;
}

const POOLS: &str = r#"
edges:
  lhr: { addresses: [192.0.2.10, "2001:db8:10::1"], location: [51.47, -0.45], weight: 2 }
  fra: { addresses: [192.0.2.20, "2001:db8:20::1"], location: [50.03, 8.57], bias: 30 }
  cdg: { addresses: [192.0.2.30], location: [49.01, 2.55] }
  iad: { addresses: [198.51.100.10, "2001:db8:110::1"], location: [38.95, -77.45] }
  sjc: { addresses: [198.51.100.20], location: [37.36, -121.93], bias: -20 }
  gru: { addresses: [198.51.100.30], location: [-23.43, -46.47] }
  nrt: { addresses: ["2001:db8:210::1"], location: [35.76, 140.39] }
  sin: { addresses: [203.0.113.20, "2001:db8:220::1"], location: [1.36, 103.99] }
  syd: { addresses: [203.0.113.30], location: [-33.95, 151.18] }
  akamai: { cname: www.t.example.edgekey.example. }
  fastly: { cname: t.example.fastly.example. }
nets:
  10.20.0.0/16: [48.85, 2.35]
  10.30.0.0/16: { edges: [fra] }
hosts:
  www: {}
  two: { answers: 2 }
  rules:
    rules:
      - { continent: EU, edges: [fra, lhr, akamai] }
      - { country: [US, CA], edges: [iad, sjc] }
      - { country: JP, edges: [nrt, fastly] }
    edges: [iad, fra, sin]
  multi: { edges: [iad, gru, fra, akamai, fastly], partner_share: 0.3 }
  onlyv4: { edges: [cdg, gru, syd] }
  spread: { spread_km: 800, answers: 2 }
  cost: { cost_margin_km: 500 }
  alsowww: {}
"#;

const RTT: &str = "client,edge,rtt_ms,samples
country:JP,sin,5,900
country:DE,lhr,9,100
continent:OC,sin,80,300
continent:SA,akamai,20,50
1.0.0.0/8,syd,3,10
";

/// [`RTT`] and IPv4 prefix rows of every length from /8 to /32, nested
/// and not, narrower and wider than the database's /16s (some inside the
/// override nets): the flattened table cuts the networks at all of them.
fn rtt_file(seed: u64) -> (String, Vec<(u32, u8)>) {
    const EDGES: [&str; 11] = [
        "lhr", "fra", "cdg", "iad", "sjc", "gru", "nrt", "sin", "syd", "akamai", "fastly",
    ];
    let mut rng = Rng(seed);
    let mut csv = String::from(RTT);
    let mut prefixes = vec![(0x0100_0000, 8)];
    let fixed = [
        (0x0A14_0500, 24),
        (0x0A1E_0000, 17),
        (0x0202_0000, 15),
        (0x0203_0405, 32),
    ];
    for i in 0..400 {
        let (net, len) = match fixed.get(i) {
            Some(&f) => f,
            None => {
                let len = 8 + rng.below(25) as u8;
                // Half of them inside an earlier prefix.
                let base = if i % 2 == 0 {
                    rng.pick(&prefixes).0 | (rng.next() as u32 & 0x00FF_FFFF)
                } else {
                    rng.next() as u32
                };
                (base & (u32::MAX << (32 - len)), len)
            }
        };
        if prefixes.contains(&(net, len)) {
            continue;
        }
        prefixes.push((net, len));
        let mut edges = EDGES.to_vec();
        for _ in 0..1 + rng.below(4) {
            let e = edges.remove(rng.below(edges.len()));
            csv += &format!(
                "{}/{len},{e},{},10\n",
                Ipv4Addr::from(net),
                1 + rng.below(150)
            );
        }
    }
    (csv, prefixes)
}

fn write(dir: &Path, rtt: &str) -> std::path::PathBuf {
    write_file(dir, "zones/t.example.rtt.csv", rtt);
    write_file(dir, "zones/t.example.pools.yaml", POOLS);
    write_file(dir, "zones/t.example.zone", MINIMAL_ZONE)
}

/// Countries (with continent) and a point in each, jittered per network.
const PLACES: &[(&str, &str, f64, f64)] = &[
    ("US", "NA", 37.7, -122.4),
    ("US", "NA", 40.7, -74.0),
    ("CA", "NA", 43.6, -79.4),
    ("BR", "SA", -23.5, -46.6),
    ("GB", "EU", 51.5, -0.1),
    ("DE", "EU", 50.1, 8.7),
    ("FR", "EU", 48.9, 2.4),
    ("RU", "EU", 55.8, 37.6),
    ("ZA", "AF", -26.2, 28.0),
    ("JP", "AS", 35.7, 139.7),
    ("SG", "AS", 1.4, 103.8),
    ("IN", "AS", 19.1, 72.9),
    ("AU", "OC", -33.9, 151.2),
    ("NZ", "OC", -36.8, 174.8),
];

/// A City database of ~3,600 IPv4 /16s and 512 IPv6 /32s (2a00::/23), each
/// its own record: most with coordinates, some country-only, some with
/// only an ASN (located, but nowhere on the map).
fn database(dir: &Path, seed: u64) -> GeoDb {
    let mut rng = Rng(seed);
    let mut y = String::from("networks:\n");
    let mut entry = |net: String, rng: &mut Rng| {
        let (cc, cont, lat, lon) = PLACES[(rng.next() % PLACES.len() as u64) as usize];
        let jitter = |r: u64| (r % 2000) as f64 / 100.0 - 10.0;
        y += &match rng.next() % 20 {
            0 => format!("  - {{ network: {net}, asn: 64500 }}\n"),
            1 => format!("  - {{ network: {net}, country: {cc}, continent: {cont} }}\n"),
            _ => format!(
                "  - {{ network: {net}, country: {cc}, continent: {cont}, lat: {:.3}, lon: {:.3} }}\n",
                (lat + jitter(rng.next())).clamp(-89.0, 89.0),
                (lon + jitter(rng.next())).clamp(-179.0, 179.0),
            ),
        };
    };
    for a in (1u8..224).filter(|a| ![10, 127].contains(a)) {
        for b in 0..16u8 {
            entry(format!("{a}.{}.0.0/16", b * 16), &mut rng);
        }
    }
    for x in 0..512u32 {
        entry(format!("2a00:{x:x}::/32"), &mut rng);
    }
    let src = dir.join(format!("db-{seed}.yaml"));
    let out = dir.join(format!("db-{seed}.mmdb"));
    std::fs::write(&src, y).unwrap();
    build(&src, &out, Schema::City).unwrap();
    GeoDb::open(&out).unwrap()
}

/// A random client: mostly IPv4, anywhere or at the edges of and inside
/// the RTT `prefixes`, some in the override nets, some IPv6 and v4-mapped.
fn client(rng: &mut Rng, prefixes: &[(u32, u8)]) -> Client {
    let r = rng.next();
    let addr = match r % 10 {
        0..=3 => IpAddr::V4(Ipv4Addr::from(rng.next() as u32)),
        4..=6 => {
            let &(net, len) = rng.pick(prefixes);
            let last = net | u32::MAX.checked_shr(u32::from(len)).unwrap_or(0);
            let inside = net
                | (rng.next() as u32 & !(u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0)));
            let a = *rng.pick(&[net.wrapping_sub(1), net, inside, last, last.wrapping_add(1)]);
            IpAddr::V4(Ipv4Addr::from(a))
        }
        7 => IpAddr::V4(Ipv4Addr::new(10, 20 + (r >> 8) as u8 % 11, 1, 1)),
        // In the database's 2a00::/23, or (one in four) outside it.
        8 if r >> 8 & 3 == 0 => IpAddr::V6(Ipv6Addr::from(u128::from(rng.next()) << 64)),
        8 => IpAddr::V6(Ipv6Addr::from(
            (0x2a00u128 << 112) | (u128::from(rng.next()) << 64) & ((1 << 105) - 1),
        )),
        _ => IpAddr::V6(Ipv4Addr::from(rng.next() as u32).to_ipv6_mapped()),
    };
    let ecs_source = match (r >> 16) % 6 {
        0 => None,
        n if addr.is_ipv4() => Some([24, 16, 32, 20, 26][n as usize - 1]),
        _ => Some(56),
    };
    Client { addr, ecs_source }
}

#[test]
fn precomputed_orders_decide_as_fresh_ones() {
    let (rtt, prefixes) = rtt_file(3);
    decide_as_fresh(&rtt, &prefixes);
}

/// Without RTT rows: the nets alone in the overlay.
#[test]
fn precomputed_orders_decide_as_fresh_ones_without_rtt_rows() {
    let (_, prefixes) = rtt_file(3);
    decide_as_fresh("client,edge,rtt_ms,samples\n", &prefixes);
}

/// Random clients (around `prefixes`) decide alike with and without the
/// precomputed orders, with the RTT file `rtt`.
fn decide_as_fresh(rtt: &str, prefixes: &[(u32, u8)]) {
    let dir = tempfile::tempdir().unwrap();
    let zone_file = write(dir.path(), rtt);
    let db = database(dir.path(), 7);
    // One registry: both steerings share every edge's health.
    let registry = Registry::new();
    let mut table = build_zone(&zone_file, &registry).unwrap().steering;
    let fresh = build_zone(&zone_file, &registry).unwrap().steering;
    let kept = table.precompute(Some(&db), None);
    assert!(kept > 0, "no edges ranked");

    let names: Vec<&str> = fresh.edges.iter().map(|e| e.name.as_str()).collect();
    let mut rng = Rng(0x5eed);
    let mut compared = 0;
    for round in 0..8 {
        // Random health: mostly up, some down, overloaded-by-admin, drained.
        for name in &names {
            let admin = match rng.next() % 8 {
                0 => AdminState::Down,
                1 => AdminState::Drain,
                _ => AdminState::Auto,
            };
            registry.set_admin(None, name, admin).unwrap();
        }
        for _ in 0..2500 {
            let c = client(&mut rng, prefixes);
            for (h, (a, b)) in table.hosts.iter().zip(&fresh.hosts).enumerate() {
                for family in [Family::V4, Family::V6] {
                    let want = decide(&fresh, b, Some(&db), c, family, &mut ());
                    let got = decide(&table, a, Some(&db), c, family, &mut ());
                    let explained = decide(&fresh, b, Some(&db), c, family, &mut Detailed);
                    assert_eq!(want, explained, "host {}, {family:?}, client {c:?}", b.name);
                    assert_eq!(
                        got, want,
                        "round {round}, host {} ({h}), {family:?}, client {c:?}",
                        a.name
                    );
                    compared += 1;
                }
            }
        }
    }
    assert_eq!(compared, 8 * 2500 * 8 * 2);
}

/// A steering ranked over one database never uses those ranks with
/// another: point numbers differ between databases.
#[test]
fn orders_of_another_database_are_not_used() {
    let dir = tempfile::tempdir().unwrap();
    let (rtt, prefixes) = rtt_file(4);
    let zone_file = write(dir.path(), &rtt);
    let (da, dbb) = (database(dir.path(), 1), database(dir.path(), 2));
    let registry = Registry::new();
    let mut table = build_zone(&zone_file, &registry).unwrap().steering;
    let fresh = build_zone(&zone_file, &registry).unwrap().steering;
    table.precompute(Some(&da), None);
    let mut rng = Rng(9);
    for _ in 0..5000 {
        let c = client(&mut rng, &prefixes);
        for (x, y) in table.hosts.iter().zip(&fresh.hosts) {
            for family in [Family::V4, Family::V6] {
                assert_eq!(
                    decide(&table, x, Some(&dbb), c, family, &mut ()),
                    decide(&fresh, y, Some(&dbb), c, family, &mut ()),
                    "host {}, client {c:?}",
                    x.name
                );
            }
        }
    }
}
