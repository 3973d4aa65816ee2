//! Steering speed (issue 3 "Speed"): `geosteer::decide` against a synthetic
//! GeoIP database of more than 1M networks, ECS-located, 11 edges, with and
//! without rules and spreading; and `dns::respond` end to end for a steered
//! A with ECS and for a static A. Target: < 500 ns per decision.
//!
//! Run: `cargo bench --bench steer`. The database is generated into
//! `CARGO_TARGET_TMPDIR` once per run (set `GEOSTEER_BENCH_REUSE=1` to keep
//! an existing one); generation and loading times are printed.

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::time::Instant;

use criterion::{Criterion, criterion_group, criterion_main};
use geosteer::Snapshot;
use geosteer::Transport;
use geosteer::{Client, Family};

#[path = "fixture/mod.rs"]
mod fixture;
use fixture::{located, snapshot, synthetic_db};

/// Distinct client /24s the decision benches cycle through, so lookups
/// aren't served from one hot cache line.
const CLIENTS: usize = 4096;

/// Rows in the benchmark's RTT file, as the scale target.
const RTT_ROWS: usize = 1_000_000;

/// A 1M-row RTT file: four edges' RTTs for every benchmark client's /24,
/// then other /24s (four rows each) up to [`RTT_ROWS`], so lookups search
/// a table of realistic size.
fn write_rtt(path: &Path, clients: &[IpAddr]) {
    use std::io::Write;
    const EDGES: [&str; 11] = [
        "lhr", "fra", "cdg", "iad", "sjc", "gru", "jnb", "nrt", "sin", "syd", "bom",
    ];
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    writeln!(out, "client,edge,rtt_ms,samples").unwrap();
    let mut seen = std::collections::HashSet::new();
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut rows = 0;
    let mut k = 0u64;
    let mut nets = clients.iter().map(|a| match a {
        IpAddr::V4(v) => u32::from(*v) >> 8,
        IpAddr::V6(_) => unreachable!(),
    });
    while rows < RTT_ROWS {
        let net = nets
            .next()
            .unwrap_or_else(|| (k.wrapping_mul(2_654_435_761) & 0xFF_FFFF) as u32);
        k += 1;
        if !seen.insert(net) {
            continue;
        }
        let first = next() as usize % EDGES.len();
        for e in 0..4 {
            let ms = 5 + next() % 200;
            writeln!(
                out,
                "{}/24,{},{ms},100",
                Ipv4Addr::from(net << 8),
                EDGES[(first + e) % EDGES.len()]
            )
            .unwrap();
            rows += 1;
        }
    }
}

/// IPv4 /24s the database locates, found by probing pseudo-random ones.
fn located_clients(snap: &Snapshot) -> Vec<IpAddr> {
    located(snap, CLIENTS, 0x2545_F491_4F6C_DD1D)
}

fn benches(c: &mut Criterion) {
    let tmp = tempfile::tempdir().unwrap();
    let db = synthetic_db();
    let snap = snapshot(&db, tmp.path());
    let zone = snap.zone_named("bench.example").unwrap();
    let st = &zone.steering;
    let geo = snap.geodb.as_deref();
    let host = |n: &str| st.hosts.iter().find(|h| h.name == n).unwrap();
    let clients: Vec<Client> = located_clients(&snap)
        .into_iter()
        .map(|addr| Client {
            addr,
            ecs_source: Some(24),
        })
        .collect();

    // The same zone with a 1M-row RTT file covering every client's /24.
    let rtt_dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(rtt_dir.path().join("zones")).unwrap();
    let addrs: Vec<IpAddr> = clients.iter().map(|c| c.addr).collect();
    write_rtt(&rtt_dir.path().join("zones/bench.example.rtt.csv"), &addrs);
    let t = Instant::now();
    let rtt_snap = snapshot(&db, rtt_dir.path());
    eprintln!("snapshot with {RTT_ROWS} RTT rows: {:.1?}", t.elapsed());
    let rtt_st = &rtt_snap.zone_named("bench.example").unwrap().steering;
    let rtt_host = |n: &str| rtt_st.hosts.iter().find(|h| h.name == n).unwrap();

    // Each steering with the database of its own snapshot: the edges are
    // ranked for that database's points only.
    let rtt_geo = rtt_snap.geodb.as_deref();
    // The RTT rows must be what decides (random edges at random ms), not
    // distance: a bench that silently missed them would flatter the ratio.
    let by_rtt = clients
        .iter()
        .filter(|&&c| {
            let d = |st, h, geo| geosteer::decide(st, h, geo, c, Family::V4, &mut ()).edges;
            d(st, host("plain"), geo) != d(rtt_st, rtt_host("plain"), rtt_geo)
        })
        .count();
    eprintln!("clients steered elsewhere by their RTT rows: {by_rtt} of {CLIENTS}");
    assert!(by_rtt > CLIENTS / 2, "the RTT rows are not deciding");
    let mut g = c.benchmark_group("decide");
    for (name, st, geo, h) in [
        ("ecs_11_edges", st, geo, host("plain")),
        (
            "ecs_11_edges_rtt_1m_rows",
            rtt_st,
            rtt_geo,
            rtt_host("plain"),
        ),
        ("ecs_rules_spread_answers2", st, geo, host("steered")),
        (
            "ecs_rules_spread_answers2_rtt_1m_rows",
            rtt_st,
            rtt_geo,
            rtt_host("steered"),
        ),
    ] {
        let mut i = 0;
        g.bench_function(name, |b| {
            b.iter(|| {
                i = (i + 1) % clients.len();
                black_box(geosteer::decide(
                    st,
                    h,
                    geo,
                    black_box(clients[i]),
                    Family::V4,
                    &mut (),
                ))
            })
        });
    }
    // The GeoIP lookup alone, for comparison.
    let mut i = 0;
    g.bench_function("geodb_lookup_only", |b| {
        b.iter(|| {
            i = (i + 1) % clients.len();
            black_box(geo.unwrap().lookup(black_box(clients[i].addr)))
        })
    });
    g.finish();

    let mut g = c.benchmark_group("respond");
    let from: SocketAddr = "127.0.0.1:5353".parse().unwrap();
    let mut out = vec![0u8; 65_535];
    let name = |s: &str| hickory_proto::rr::Name::from_ascii(s).unwrap();
    let steered: Vec<Vec<u8>> = clients
        .iter()
        .take(256)
        .map(|c| {
            let net = ipnet::IpNet::new(c.addr, 24).unwrap();
            geosteer::query_bytes(
                &name("steered.bench.example."),
                hickory_proto::rr::RecordType::A,
                Some(net),
            )
        })
        .collect();
    let mut i = 0;
    g.bench_function("steered_a_ecs", |b| {
        b.iter(|| {
            i = (i + 1) % steered.len();
            black_box(geosteer::respond(
                &snap,
                black_box(&steered[i]),
                from,
                Transport::Udp,
                &mut out,
            ))
        })
    });
    let stat = geosteer::query_bytes(
        &name("static.bench.example."),
        hickory_proto::rr::RecordType::A,
        None,
    );
    g.bench_function("static_a", |b| {
        b.iter(|| {
            black_box(geosteer::respond(
                &snap,
                black_box(&stat),
                from,
                Transport::Udp,
                &mut out,
            ))
        })
    });
    g.finish();
}

criterion_group! {
    name = steer;
    config = Criterion::default()
        .warm_up_time(std::time::Duration::from_secs(1))
        .measurement_time(std::time::Duration::from_secs(3));
    targets = benches
}
criterion_main!(steer);
