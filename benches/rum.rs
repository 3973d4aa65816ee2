//! RUM on the query path: `steer::decide` with 1,000,000 learned cells
//! (250,000 client /24s × 4 edges) against the same rows from `rtt.csv`,
//! over the synthetic 1.2M-network database of `benches/steer.rs`, ECS
//! located, 11 edges; a plain host and one with rules, spreading and two
//! answers. Also: a client with no learned cell in a zone that has them
//! (the cost every other query pays), and an ECS-less query from a resolver
//! with linked users.
//!
//! Run: `cargo bench --bench rum`. `GEOSTEER_BENCH_REUSE=1` keeps the
//! database of an earlier run (`steer-bench-synth.mmdb`, shared with the
//! steer bench). `GEOSTEER_BENCH_ONLY=file|learned|distance` builds only
//! that snapshot (for callgrind, whose start-up is slow), without the
//! cross-check that both decide alike.
//!
//! `GEOSTEER_BENCH_CALLGRIND=N` runs each case's clients N times through
//! `callgrind_window` instead of criterion, printing the cases in order:
//! under `valgrind --tool=callgrind --collect-atstart=no
//! --toggle-collect='*callgrind_window*' --dump-after=rum::callgrind_window`
//! each case's instructions are one dump (`bench/rum-decide-callgrind.sh`).

use std::collections::HashMap;
use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use criterion::{Criterion, criterion_group, criterion_main};
use geosteer::{Client, EdgeIdx, Family, LearnedRow, LearnedRows, Snapshot, Steering, decide};

const CLIENTS: usize = 4096;
const ROWS: usize = 1_000_000;
const EDGES: [&str; 11] = [
    "lhr", "fra", "cdg", "iad", "sjc", "gru", "jnb", "nrt", "sin", "syd", "bom",
];

#[path = "fixture/mod.rs"]
mod fixture;
use fixture::{located, synthetic_db};

/// The bench zone, with `rtt` as its RTT file when given.
fn snapshot(db: &Path, dir: &Path, rtt: Option<&str>) -> Snapshot {
    std::fs::create_dir_all(dir.join("zones")).unwrap();
    if let Some(csv) = rtt {
        std::fs::write(dir.join("zones/bench.example.rtt.csv"), csv).unwrap();
    }
    fixture::snapshot(db, dir)
}

/// The 1M rows: four edges for every bench client's /24, then other /24s.
fn rows(clients: &[IpAddr]) -> Vec<(u32, usize, u32)> {
    let mut seen = std::collections::HashSet::new();
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut out = Vec::with_capacity(ROWS);
    let mut k = 0u64;
    let mut nets = clients.iter().map(|a| match a {
        IpAddr::V4(v) => u32::from(*v) >> 8,
        IpAddr::V6(_) => unreachable!(),
    });
    while out.len() < ROWS {
        let net = nets
            .next()
            .unwrap_or_else(|| (k.wrapping_mul(2_654_435_761) & 0xFF_FFFF) as u32);
        k += 1;
        if !seen.insert(net) {
            continue;
        }
        let first = next() as usize % EDGES.len();
        for e in 0..4 {
            out.push((net, (first + e) % EDGES.len(), 5 + (next() % 200) as u32));
        }
    }
    out
}

fn csv(rows: &[(u32, usize, u32)]) -> String {
    use std::fmt::Write;
    let mut s = String::from("client,edge,rtt_ms,samples\n");
    for (net, e, ms) in rows {
        let _ = writeln!(s, "{}/24,{},{ms},100", Ipv4Addr::from(net << 8), EDGES[*e]);
    }
    s
}

fn st_of(s: &Snapshot) -> &Steering {
    &s.zone_named("bench.example").unwrap().steering
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn benches(c: &mut Criterion) {
    let only = std::env::var("GEOSTEER_BENCH_ONLY").ok();
    let want = |k: &str| only.as_deref().is_none_or(|o| o == k);
    let db = synthetic_db();
    let tmp = tempfile::tempdir().unwrap();
    let base = snapshot(&db, &tmp.path().join("base"), None);
    let clients = located(&base, CLIENTS, 0x2545_F491_4F6C_DD1D);
    // Located clients with no row: what a query outside every cell pays.
    let others: Vec<IpAddr> = located(&base, CLIENTS * 2, 0x1234_5678_9ABC_DEF1)
        .into_iter()
        .filter(|a| !clients.contains(a))
        .take(CLIENTS)
        .collect();
    let rows = rows(&clients);
    let file = want("file").then(|| {
        let t = Instant::now();
        let s = snapshot(&db, &tmp.path().join("file"), Some(&csv(&rows)));
        eprintln!("snapshot with {ROWS} rtt.csv rows: {:.1?}", t.elapsed());
        s
    });
    let learned = want("learned").then(|| {
        let s = snapshot(&db, &tmp.path().join("learned"), None);
        let st = &s.zone_named("bench.example").unwrap().steering;
        let idx: HashMap<&str, EdgeIdx> = st
            .edges
            .iter()
            .enumerate()
            .map(|(i, e)| (e.name.as_str(), i as EdgeIdx))
            .collect();
        let learned_rows: Vec<LearnedRow> = rows
            .iter()
            .map(|(net, e, ms)| LearnedRow {
                net: ipnet::IpNet::new(IpAddr::V4(Ipv4Addr::from(net << 8)), 24).unwrap(),
                edge: idx[EDGES[*e]],
                ms: *ms as f32,
                samples: 100,
            })
            .collect();
        // One resolver /24 (192.0.2.0/24) whose users are the first 100 clients.
        let resolver: Vec<LearnedRow> = learned_rows
            .iter()
            .take(400)
            .map(|r| LearnedRow {
                net: "192.0.2.0/24".parse().unwrap(),
                ..*r
            })
            .collect();
        let mut combined: HashMap<(ipnet::IpNet, EdgeIdx), LearnedRow> = HashMap::new();
        for r in resolver {
            combined.entry((r.net, r.edge)).or_insert(r);
        }
        let rss = rss_kib();
        let t = Instant::now();
        let table = LearnedRows {
            clients: learned_rows,
            resolvers: combined.into_values().collect(),
            users: HashMap::from([("192.0.2.0/24".parse().unwrap(), 100)]),
        }
        .table(st);
        let took = t.elapsed();
        st.live().set_learned(Some(Arc::new(table)));
        eprintln!(
            "learned table of {ROWS} cells built in {took:.1?}, {} MiB more resident ({:.0} bytes a cell)",
            (rss_kib().saturating_sub(rss)) / 1024,
            (rss_kib().saturating_sub(rss)) as f64 * 1024.0 / ROWS as f64
        );
        s
    });
    let ecs = |a: &IpAddr| Client {
        addr: *a,
        ecs_source: Some(24),
    };
    if let (Some(f), Some(l)) = (&file, &learned) {
        // Same rows, same answers: the learned path is the file's. Scopes
        // too, except that while a learned table is in, every answer is
        // scoped to at least the cell (/24).
        let (fs, ls) = (st_of(f), st_of(l));
        for host in ["plain", "steered"] {
            let (fh, lh) = (
                fs.hosts.iter().find(|h| h.name == host).unwrap(),
                ls.hosts.iter().find(|h| h.name == host).unwrap(),
            );
            for a in clients.iter().chain(&others) {
                let d = |st, h, s: &Snapshot| {
                    decide(st, h, s.geodb.as_deref(), ecs(a), Family::V4, &mut ())
                };
                let (mut from_file, learned) = (d(fs, fh, f), d(ls, lh, l));
                from_file.scope = from_file.scope.max(24);
                assert_eq!(from_file, learned, "{host} {a}");
            }
        }
        let moved = clients
            .iter()
            .filter(|a| {
                let d = |s: &Snapshot| {
                    let st = st_of(s);
                    decide(
                        st,
                        &st.hosts[0],
                        s.geodb.as_deref(),
                        ecs(a),
                        Family::V4,
                        &mut (),
                    )
                    .edges
                };
                d(&base) != d(l)
            })
            .count();
        eprintln!(
            "file and learned decide alike for {} clients; {moved} of {CLIENTS} moved off the map",
            2 * CLIENTS
        );
        assert!(moved > CLIENTS / 2, "the rows are not deciding");
    }
    let mut g = c.benchmark_group("rum");
    let mut cases: Vec<(&str, &Snapshot, &str, Vec<Client>)> = Vec::new();
    let with = |a: &[IpAddr]| a.iter().map(ecs).collect::<Vec<_>>();
    if want("distance") {
        cases.push(("ecs_plain_distance", &base, "plain", with(&clients)));
        cases.push(("ecs_steered_distance", &base, "steered", with(&clients)));
    }
    if let Some(f) = &file {
        cases.push(("ecs_plain_rtt_file_1m", f, "plain", with(&clients)));
        cases.push(("ecs_steered_rtt_file_1m", f, "steered", with(&clients)));
        cases.push(("ecs_plain_rtt_file_1m_miss", f, "plain", with(&others)));
    }
    if let Some(l) = &learned {
        cases.push(("ecs_plain_learned_1m", l, "plain", with(&clients)));
        cases.push(("ecs_steered_learned_1m", l, "steered", with(&clients)));
        cases.push(("ecs_plain_learned_1m_miss", l, "plain", with(&others)));
        let resolver = vec![Client {
            addr: "192.0.2.53".parse().unwrap(),
            ecs_source: None,
        }];
        cases.push(("resolver_users_plain_learned_1m", l, "plain", resolver));
    }
    if let Some(n) = std::env::var("GEOSTEER_BENCH_CALLGRIND")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
    {
        callgrind_start_instrumentation();
        for (name, s, host, list) in &cases {
            let st = st_of(s);
            let h = st.hosts.iter().find(|x| x.name == *host).unwrap();
            eprintln!("callgrind case {name}: {} decisions", n * list.len());
            callgrind_window(st, h, s.geodb.as_deref(), list, n);
        }
        return;
    }
    for (name, s, host, list) in cases {
        let st = st_of(s);
        let h = st.hosts.iter().find(|x| x.name == host).unwrap();
        let geo = s.geodb.as_deref();
        let mut i = 0;
        g.bench_function(name, |b| {
            b.iter(|| {
                i = (i + 1) % list.len();
                black_box(decide(st, h, geo, black_box(list[i]), Family::V4, &mut ()))
            })
        });
    }
    g.finish();
}

/// Callgrind's START_INSTRUMENTATION client request (`callgrind.h`), so
/// that under `--instr-atstart=no` the minutes of set-up run at full
/// speed; a no-op outside valgrind.
fn callgrind_start_instrumentation() {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: valgrind's client-request preamble: the four rotations
    // leave rdi as it was, `xchg rbx, rbx` changes nothing, and rdx (the
    // result) is declared.
    unsafe {
        let args: [u64; 6] = [
            ((u64::from(b'C') << 24) | (u64::from(b'T') << 16)) + 4,
            0,
            0,
            0,
            0,
            0,
        ];
        std::arch::asm!(
            "rol rdi, 3", "rol rdi, 13", "rol rdi, 61", "rol rdi, 51", "xchg rbx, rbx",
            in("rax") args.as_ptr(),
            inout("rdx") 0u64 => _,
            inout("rdi") 0u64 => _,
            options(nostack),
        );
    }
}

/// Every client of `list`, `n` times: what callgrind counts, one dump a
/// case.
#[inline(never)]
fn callgrind_window(
    st: &Steering,
    h: &geosteer::Host,
    geo: Option<&geosteer::GeoDb>,
    list: &[Client],
    n: usize,
) {
    for _ in 0..n {
        for c in list {
            black_box(decide(st, h, geo, black_box(*c), Family::V4, &mut ()));
        }
    }
}

criterion_group! {
    name = rum;
    config = Criterion::default()
        .warm_up_time(std::time::Duration::from_secs(1))
        .measurement_time(std::time::Duration::from_secs(3));
    targets = benches
}
criterion_main!(rum);
