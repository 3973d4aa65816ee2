//! Writes a zone of CDN shape for benchmarks: EDGES dual-stack edges at
//! metros around the world, HOSTS steered hosts (one line each in the pools file, as an
//! operator writes one per customer property), drawn from GROUPS distinct
//! edge groups (regional and tiered subsets, all-edges among them).
//!
//! `cargo run --release --example cdn_shape -- OUT EDGES HOSTS GROUPS [SEED]`
//!
//! Writes `OUT/zones/cdn.example.{zone,pools.yaml}` for geosteer, and for
//! gdnsd `OUT/gdnsd/config` (one geoip map and resource per group) and
//! `OUT/gdnsd/zones/cdn.example` (one DYNA name per host), the same edges,
//! coordinates and addresses. Host `hN` answers `hN.cdn.example`; two more,
//! `all` (every edge) and `four` (London, Ashburn, Singapore, Sydney), are
//! the two ends of "candidates don't cost".

use std::fmt::Write as _;
use std::path::Path;

/// Metros edges are placed around: (name, lat, lon, region).
const METROS: &[(&str, f64, f64, u8)] = &[
    ("lon", 51.5, -0.1, 0),
    ("fra", 50.1, 8.7, 0),
    ("par", 48.9, 2.4, 0),
    ("ams", 52.4, 4.9, 0),
    ("mad", 40.4, -3.7, 0),
    ("mil", 45.5, 9.2, 0),
    ("sto", 59.3, 18.1, 0),
    ("waw", 52.2, 21.0, 0),
    ("vie", 48.2, 16.4, 0),
    ("dub", 53.3, -6.3, 0),
    ("mos", 55.8, 37.6, 0),
    ("ist", 41.0, 29.0, 0),
    ("nyc", 40.7, -74.0, 1),
    ("iad", 38.9, -77.4, 1),
    ("atl", 33.7, -84.4, 1),
    ("mia", 25.8, -80.2, 1),
    ("chi", 41.9, -87.6, 1),
    ("dfw", 32.8, -96.8, 1),
    ("den", 39.7, -105.0, 1),
    ("lax", 34.1, -118.2, 1),
    ("sjc", 37.3, -121.9, 1),
    ("sea", 47.6, -122.3, 1),
    ("yyz", 43.7, -79.4, 1),
    ("yvr", 49.3, -123.1, 1),
    ("mex", 19.4, -99.1, 1),
    ("gru", -23.5, -46.6, 2),
    ("eze", -34.6, -58.4, 2),
    ("scl", -33.4, -70.7, 2),
    ("bog", 4.7, -74.1, 2),
    ("lim", -12.0, -77.0, 2),
    ("jnb", -26.2, 28.0, 3),
    ("cpt", -33.9, 18.4, 3),
    ("los", 6.5, 3.4, 3),
    ("nbo", -1.3, 36.8, 3),
    ("cai", 30.0, 31.2, 3),
    ("dxb", 25.2, 55.3, 4),
    ("bom", 19.1, 72.9, 4),
    ("del", 28.6, 77.2, 4),
    ("maa", 13.1, 80.3, 4),
    ("sin", 1.4, 103.8, 4),
    ("hkg", 22.3, 114.2, 4),
    ("tyo", 35.7, 139.7, 4),
    ("osa", 34.7, 135.5, 4),
    ("sel", 37.6, 127.0, 4),
    ("tpe", 25.0, 121.6, 4),
    ("bkk", 13.8, 100.5, 4),
    ("cgk", -6.2, 106.8, 4),
    ("mnl", 14.6, 121.0, 4),
    ("syd", -33.9, 151.2, 5),
    ("mel", -37.8, 145.0, 5),
    ("akl", -36.8, 174.8, 5),
    ("per", -31.9, 115.9, 5),
];

/// SplitMix64.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// An edge's IPv6 address (edges are dual-stack, as a CDN's are).
fn v6(e: &Edge) -> String {
    format!("2001:db8:{:x}:{:x}::1", e.v4[1], e.v4[2])
}

struct Edge {
    name: String,
    lat: f64,
    lon: f64,
    region: u8,
    v4: [u8; 4],
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 5 {
        eprintln!("usage: cdn_shape OUT EDGES HOSTS GROUPS [SEED]");
        std::process::exit(2);
    }
    let out = Path::new(&args[1]);
    let num = |i: usize| -> usize { args[i].parse().expect("a number") };
    let (edges_n, hosts_n, groups_n) = (num(2), num(3), num(4));
    let mut rng = Rng(args.get(5).map_or(1, |s| s.parse().expect("SEED")));

    // Edges: metros in turn (spread over the list when there are fewer
    // edges than metros), jittered by up to ~1 degree after the first round.
    let edges: Vec<Edge> = (0..edges_n)
        .map(|i| {
            let at = if edges_n < METROS.len() {
                i * METROS.len() / edges_n
            } else {
                i % METROS.len()
            };
            let (m, lat, lon, region) = METROS[at];
            let round = i / METROS.len();
            let j = |r: &mut Rng| {
                if round == 0 {
                    0.0
                } else {
                    (r.below(200) as f64 - 100.0) / 100.0
                }
            };
            Edge {
                name: format!("{m}{round}"),
                lat: lat + j(&mut rng),
                lon: lon + j(&mut rng),
                region,
                v4: [10, (i >> 8) as u8 + 100, (i & 255) as u8, 1],
            }
        })
        .collect();

    // Groups: all edges, four, then regional unions and random tiers, distinct.
    let four: Vec<usize> = ["lon0", "iad0", "sin0", "syd0"]
        .iter()
        .filter_map(|n| edges.iter().position(|e| e.name == *n))
        .collect();
    let mut groups: Vec<Vec<usize>> = vec![(0..edges_n).collect()];
    if four.len() == 4 && edges_n > 4 {
        groups.push(four.clone());
    }
    let mut seen: std::collections::HashSet<Vec<usize>> = groups.iter().cloned().collect();
    let mut tries = 0;
    while groups.len() < groups_n {
        tries += 1;
        assert!(
            tries < groups_n * 1000,
            "cannot draw {groups_n} distinct groups"
        );
        let mut g: Vec<usize> = match rng.below(3) {
            // Some regions (EU only, Americas, no APAC ...).
            0 => {
                let mask = 1 + rng.below(63) as u8;
                (0..edges_n)
                    .filter(|&e| mask >> edges[e].region & 1 != 0)
                    .collect()
            }
            // A tier: every k-th edge.
            1 => {
                let k = 2 + rng.below(8);
                let off = rng.below(k);
                (0..edges_n).filter(|e| e % k == off).collect()
            }
            // A random subset of 4 to 64 edges.
            _ => {
                let n = 4 + rng.below(61).min(edges_n.saturating_sub(4));
                let mut all: Vec<usize> = (0..edges_n).collect();
                for i in 0..n.min(edges_n) {
                    let j = i + rng.below(edges_n - i);
                    all.swap(i, j);
                }
                let mut s = all[..n.min(edges_n)].to_vec();
                s.sort();
                s
            }
        };
        // Drop a random edge or two, so regional draws stay distinct.
        for _ in 0..rng.below(3) {
            if g.len() > 2 {
                g.remove(rng.below(g.len()));
            }
        }
        if !g.is_empty() && seen.insert(g.clone()) {
            groups.push(g);
        }
    }

    let write = |rel: &str, text: &str| {
        let p = out.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    };
    let zone = "$TTL 3600\n@ IN SOA ns1.cdn.example. hostmaster.cdn.example. ( 1 3600 600 604800 300 )\n  IN NS ns1\nns1 IN A 127.0.0.1\nstatic IN A 198.51.100.99\n";
    write("zones/cdn.example.zone", zone);

    let mut pools = String::from("ttl: 20\nedges:\n");
    for e in &edges {
        let [a, b, c, d] = e.v4;
        let _ = writeln!(
            pools,
            "  {}: {{ addresses: [{a}.{b}.{c}.{d}, \"{}\"], location: [{:.3}, {:.3}] }}",
            e.name,
            v6(e),
            e.lat,
            e.lon
        );
    }
    pools.push_str("hosts:\n");
    let host_group: Vec<usize> = (0..hosts_n)
        .map(|h| {
            if h < groups.len() {
                h
            } else {
                rng.below(groups.len())
            }
        })
        .collect();
    let names = |g: usize| -> String {
        let list: Vec<&str> = groups[g].iter().map(|&e| edges[e].name.as_str()).collect();
        list.join(", ")
    };
    for (h, &g) in host_group.iter().enumerate() {
        let _ = writeln!(pools, "  h{h}: {{ edges: [{}] }}", names(g));
    }
    let _ = writeln!(pools, "  all: {{ edges: [{}] }}", names(0));
    let four_group = groups.iter().position(|g| *g == four);
    if let Some(g) = four_group {
        let _ = writeln!(pools, "  four: {{ edges: [{}] }}", names(g));
    }
    write("zones/cdn.example.pools.yaml", &pools);

    // gdnsd: a map and a resource per group, a DYNA name per host.
    let mut cfg = String::from(
        "options => {\n  listen => [ 127.0.0.1:5301 ]\n  udp_threads => 1\n  tcp_threads => 1\n}\nplugins => {\n  geoip => {\n    maps => {\n",
    );
    for (i, g) in groups.iter().enumerate() {
        let names: Vec<&str> = g.iter().map(|&e| edges[e].name.as_str()).collect();
        let _ = writeln!(
            cfg,
            "      g{i} => {{\n        geoip2_db => city.mmdb\n        datacenters => [{}]",
            names.join(", ")
        );
        let coords: Vec<String> = g
            .iter()
            .map(|&e| {
                format!(
                    "{} => [{:.3}, {:.3}]",
                    edges[e].name, edges[e].lat, edges[e].lon
                )
            })
            .collect();
        let _ = writeln!(
            cfg,
            "        auto_dc_coords => {{ {} }}\n      }}",
            coords.join(", ")
        );
    }
    cfg.push_str("    }\n    resources => {\n");
    for (i, g) in groups.iter().enumerate() {
        let dcs: Vec<String> = g
            .iter()
            .map(|&e| {
                let [a, b, c, d] = edges[e].v4;
                format!(
                    "{} => {{ addrs_v4 => [{a}.{b}.{c}.{d}], addrs_v6 => [{}] }}",
                    edges[e].name,
                    v6(&edges[e])
                )
            })
            .collect();
        let _ = writeln!(
            cfg,
            "      g{i} => {{ map => g{i}, dcmap => {{ {} }} }}",
            dcs.join(", ")
        );
    }
    cfg.push_str("    }\n  }\n}\n");
    write("gdnsd/config", &cfg);
    let mut gz = zone.to_string();
    for (h, &g) in host_group.iter().enumerate() {
        let _ = writeln!(gz, "h{h} 20 DYNA geoip!g{g}");
    }
    let _ = writeln!(gz, "all 20 DYNA geoip!g0");
    if let Some(g) = four_group {
        let _ = writeln!(gz, "four 20 DYNA geoip!g{g}");
    }
    write("gdnsd/zones/cdn.example", &gz);
    let sizes: Vec<usize> = groups.iter().map(Vec::len).collect();
    println!(
        "{edges_n} edges, {hosts_n} hosts, {} groups (sizes {}..{}, mean {:.1})",
        groups.len(),
        sizes.iter().min().unwrap(),
        sizes.iter().max().unwrap(),
        sizes.iter().sum::<usize>() as f64 / sizes.len() as f64
    );
}
