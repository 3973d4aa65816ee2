//! RUM at scale, in one process: 1,000,000 learned cells (250,000 client
//! /24s × 4 edges). Prints the memory a cell costs in the aggregator's
//! state and in the published table, how long a table build, a state-file
//! write and read take, and the file's size.
//!
//! `cargo run --release --example rum_scale [-- --write DIR]`: with
//! `--write`, also leaves `DIR/rum.state` (the cells, as a server's state
//! file) and `DIR/cdn.example.rtt.csv` (the same rows as an RTT file) for
//! `bench/profile.sh`'s learned-versus-file comparison (`RUM_STATE=`).

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Instant;

use geosteer::{Beacon, ClientNet as Net, RumState as State};

const NETS: u32 = 250_000;
const EDGES: [&str; 11] = [
    "lhr", "fra", "cdg", "iad", "sjc", "gru", "jnb", "nrt", "sin", "syd", "bom",
];

/// CPU seconds this process used so far (user + system).
fn cpu() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    let f: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap()
        .split_whitespace()
        .collect();
    (f[11].parse::<f64>().unwrap() + f[12].parse::<f64>().unwrap()) / 100.0
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let write = args
        .iter()
        .position(|a| a == "--write")
        .and_then(|i| args.get(i + 1))
        .map(std::path::PathBuf::from);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    // The nets: 8.8.8.0/24 first (bench/profile.sh's default ECS subnet),
    // then /24s spread over the space.
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut nets = vec![u32::from(Ipv4Addr::new(8, 8, 8, 0)) >> 8];
    let mut seen: std::collections::HashSet<u32> = nets.iter().copied().collect();
    let mut k = 1u64;
    while nets.len() < NETS as usize {
        let n = (k.wrapping_mul(2_654_435_761) & 0xFF_FFFF) as u32;
        k += 1;
        if seen.insert(n) {
            nets.push(n);
        }
    }
    drop(seen);

    let before = rss_kib();
    let t = Instant::now();
    let c0 = cpu();
    let mut st = State::new(1, 1800.0, 86_400);
    let mut rows = Vec::with_capacity(4 * NETS as usize);
    for (i, &n) in nets.iter().enumerate() {
        let first = if i == 0 {
            0
        } else {
            next() as usize % EDGES.len()
        };
        let rtt: Vec<(Arc<str>, f32)> = (0..4)
            .map(|e| {
                let ms = if i == 0 && e == 0 {
                    3.0
                } else {
                    5.0 + (next() % 200) as f32
                };
                (Arc::from(EDGES[(first + e) % EDGES.len()]), ms)
            })
            .collect();
        for (e, ms) in &rtt {
            rows.push((n, e.clone(), *ms));
        }
        st.add_beacon(&Beacon {
            zone: "cdn.example.".into(),
            net: Net::of(IpAddr::V4(Ipv4Addr::from(n << 8))),
            id: (i as u64).to_be_bytes(),
            rtt,
            at: now,
        });
    }
    st.expire(now + 1_000); // drops the pending page views, keeps the cells
    let (cells, _) = st.counts();
    let state_kib = rss_kib().saturating_sub(before);
    println!(
        "state: {cells} cells in {:.1?} ({:.2} s CPU), {} MiB resident: {:.0} bytes a cell (Cell is {} bytes)",
        t.elapsed(),
        cpu() - c0,
        state_kib / 1024,
        state_kib as f64 * 1024.0 / cells as f64,
        std::mem::size_of::<geosteer::RumCell>()
    );

    // A steering with the demo's edges (no database needed for the table).
    let pools = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("zones/cdn.example.pools.yaml"),
    )
    .unwrap();
    let origin = hickory_proto::rr::Name::from_ascii("cdn.example.").unwrap();
    let p = geosteer::parse_pools(
        &pools,
        std::path::Path::new("cdn.example.pools.yaml"),
        &origin,
        &geosteer::AlwaysUp,
    )
    .unwrap();
    let steering = p.steering;
    let before = rss_kib();
    let t = Instant::now();
    let c0 = cpu();
    let r = st.rows("cdn.example.", &steering);
    let rows_took = t.elapsed();
    let rows_cpu = cpu() - c0;
    let t = Instant::now();
    let c0 = cpu();
    let table = r.table(&steering);
    let build_took = t.elapsed();
    let build_cpu = cpu() - c0;
    let table_kib = rss_kib().saturating_sub(before);
    println!(
        "published table: {} cells, gathered in {rows_took:.1?} ({rows_cpu:.2} s CPU), built in {build_took:.1?} ({build_cpu:.2} s CPU); {} MiB resident: {:.0} bytes a cell",
        table.cells(),
        table_kib / 1024,
        table_kib as f64 * 1024.0 / cells as f64
    );
    steering.live().set_learned(Some(Arc::new(table)));

    if let Some(dir) = write {
        std::fs::create_dir_all(&dir).unwrap();
        let one = geosteer::encode_rum_state(&st, now);
        geosteer::write_rum_state(&dir.join("rum.state"), &one).unwrap();
        use std::fmt::Write as _;
        let mut csv = String::from("client,edge,rtt_ms,samples\n");
        let mut by: HashMap<(u32, &str), f32> = HashMap::new();
        for (n, e, ms) in &rows {
            by.insert((*n, e), *ms);
        }
        for ((n, e), ms) in by {
            let _ = writeln!(csv, "{}/24,{e},{ms},100", Ipv4Addr::from(n << 8));
        }
        std::fs::write(dir.join("cdn.example.rtt.csv"), csv).unwrap();
        println!(
            "wrote {}/rum.state and {}/cdn.example.rtt.csv",
            dir.display(),
            dir.display()
        );
    }
    // Full reservoirs: eleven more page views for every network.
    let c0 = cpu();
    for round in 1..12u64 {
        for (i, &n) in nets.iter().enumerate() {
            st.add_beacon(&Beacon {
                zone: "cdn.example.".into(),
                net: Net::of(IpAddr::V4(Ipv4Addr::from(n << 8))),
                id: (round << 40 | i as u64).to_be_bytes(),
                rtt: rows[4 * i..4 * i + 4]
                    .iter()
                    .map(|r| (r.1.clone(), r.2 + round as f32))
                    .collect(),
                at: now + round,
            });
        }
    }
    let adds = 11.0 * f64::from(NETS) * 4.0;
    println!(
        "{adds} more samples taken in {:.2} s CPU ({:.2} µs a sample, its cell's weighted median included)",
        cpu() - c0,
        (cpu() - c0) * 1e6 / adds
    );
    st.expire(now + 1_000);
    let t = Instant::now();
    let bytes = geosteer::encode_rum_state(&st, now);
    let enc = t.elapsed();
    let t = Instant::now();
    let mut back = State::new(1, 1800.0, 86_400);
    geosteer::decode_rum_state(&bytes, &mut back).unwrap();
    println!(
        "state file: {} MB ({:.0} bytes a cell), written in {enc:.1?}, read in {:.1?}",
        bytes.len() / 1_000_000,
        bytes.len() as f64 / cells as f64,
        t.elapsed()
    );
}
