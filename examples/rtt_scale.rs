//! Measures loading a large `<zone>.rtt.csv`: generates N rows, then times
//! `config::rtt::load` (parse + validate + build the lookup) and reports
//! the RSS it adds, and the lookup speed. Used for BENCHMARKS.md.
//!
//! `cargo run --release --example rtt_scale -- [rows] [edges_per_key]`
//! (default 1,000,000 rows, 4 edges per prefix: 250,000 prefixes; use 1 for
//! a million distinct prefixes, the worst case for memory).

use std::hint::black_box;
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;
use std::time::Instant;

use geosteer::AlwaysUp;

const EDGES: [&str; 11] = [
    "lhr", "fra", "cdg", "iad", "sjc", "gru", "jnb", "nrt", "sin", "syd", "bom",
];

fn rss_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| {
            l.strip_prefix(field)?
                .trim()
                .strip_suffix(" kB")?
                .trim()
                .parse()
                .ok()
        })
        .unwrap_or(0)
}

fn main() {
    let mut args = std::env::args().skip(1);
    let rows: usize = args.next().map_or(1_000_000, |a| a.parse().expect("rows"));
    let per_key: usize = args.next().map_or(4, |a| a.parse().expect("edges per key"));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bench.example.rtt.csv");

    // Three quarters IPv4 /24s, a quarter IPv6 /48s, and a few hundred
    // ASN, country and continent rows, spread over the address space.
    let keys = rows / per_key;
    let t = Instant::now();
    let mut out = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
    writeln!(out, "client,edge,rtt_ms,samples").unwrap();
    let mut x = 0x2545_F491_4F6C_DD1Du64;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut written = 0;
    for k in 0..keys {
        let key = if k % 1000 == 999 {
            format!("AS{}", 64_512 + k / 1000)
        } else if k % 4 == 3 {
            // Distinct /48s: the key index in bits 16..48 keeps them unique.
            let v6 = Ipv6Addr::from((0x2001_0000_0000_0000_0000u128 | (k as u128)) << 80);
            format!("{v6}/48")
        } else {
            // Distinct /24s: index times an odd stride, mod 2^24.
            let n = ((k as u64).wrapping_mul(2_654_435_761) & 0xFF_FFFF) as u32;
            format!("{}/24", Ipv4Addr::from(n << 8))
        };
        let first = (next() % EDGES.len() as u64) as usize;
        for e in 0..per_key {
            let edge = EDGES[(first + e) % EDGES.len()];
            let ms = 5 + next() % 200;
            writeln!(
                out,
                "{key},{edge},{ms}.{},{}",
                next() % 10,
                10 + next() % 5000
            )
            .unwrap();
            written += 1;
        }
    }
    out.flush().unwrap();
    drop(out);
    let size = std::fs::metadata(&path).unwrap().len();
    eprintln!(
        "generated {written} rows ({keys} keys, {} MB) in {:.1?}",
        size / 1_000_000,
        t.elapsed()
    );

    let mut pools = String::from("edges:\n");
    for (i, e) in EDGES.iter().enumerate() {
        pools += &format!(
            "  {e}: {{ addresses: [192.0.2.{}], location: [{}, {}] }}\n",
            i + 1,
            -60 + 11 * i as i32,
            -170 + 30 * i as i32
        );
    }
    pools += "hosts:\n  www: {}\n";
    let origin = hickory_proto::rr::Name::from_ascii("bench.example.").unwrap();
    let st = geosteer::parse_pools(
        &pools,
        Path::new("bench.example.pools.yaml"),
        &origin,
        &AlwaysUp,
    )
    .unwrap()
    .steering;

    let before = rss_kib("VmRSS:");
    let t = Instant::now();
    let table = geosteer::load_rtt(&path, &st, 1).expect("valid file");
    let load = t.elapsed();
    let after = rss_kib("VmRSS:");
    let added = (after.saturating_sub(before)) * 1024;
    println!(
        "load+validate {written} rows ({} keys): {:.3} s; RSS +{:.1} MB = {:.0} bytes/row (peak RSS {} MB)",
        table.keys(),
        load.as_secs_f64(),
        added as f64 / 1e6,
        added as f64 / written as f64,
        rss_kib("VmHWM:") / 1024,
    );

    // Lookup speed over addresses the table covers and doesn't.
    let probes: Vec<IpAddr> = (0..1_000_000u32)
        .map(|i| IpAddr::V4(Ipv4Addr::from(i.wrapping_mul(2_654_435_761))))
        .collect();
    let t = Instant::now();
    let mut hits = 0usize;
    for &a in &probes {
        hits += black_box(table.prefix(black_box(a))).is_some() as usize;
    }
    println!(
        "prefix lookup: {:.1} ns each ({hits} of {} hit)",
        t.elapsed().as_nanos() as f64 / probes.len() as f64,
        probes.len()
    );
}
