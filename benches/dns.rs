//! Criterion benches of the answer path without sockets: the query parse,
//! the steering decision, and `respond` end to end (parse, lookup, render)
//! for a static A (also with a cookie and NSID), a steered A without ECS,
//! a steered A with ECS, and a steered HTTPS record; the same with DO=1
//! against the zone signed (signature cache warm), and a cold signature
//! (cache emptied before each answer).
//!
//! Run: `cargo bench --bench dns`. Numbers go in BENCHMARKS.md.

use std::hint::black_box;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;

use criterion::{Criterion, criterion_group, criterion_main};
use geosteer::AlwaysUp;
use geosteer::ServerConfig;
use geosteer::Transport;
use geosteer::{Client, Family};

/// A query for `name` (presentation, no trailing dot) with EDNS and,
/// optionally, ECS for an IPv4 /24.
fn query(name: &str, ecs: Option<[u8; 3]>) -> Vec<u8> {
    query_do(name, ecs, false)
}

fn query_do(name: &str, ecs: Option<[u8; 3]>, dnssec_ok: bool) -> Vec<u8> {
    let mut p = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 1];
    for label in name.split('.') {
        p.push(label.len() as u8);
        p.extend_from_slice(label.as_bytes());
    }
    p.extend_from_slice(&[0, 0, 1, 0, 1]);
    let opts: Vec<u8> = match ecs {
        Some(a) => [&[0, 8, 0, 7, 0, 1, 24, 0][..], &a[..]].concat(),
        None => Vec::new(),
    };
    p.extend_from_slice(&[
        0,
        0,
        41,
        0x04,
        0xD0,
        0,
        0,
        if dnssec_ok { 0x80 } else { 0 },
        0,
    ]);
    p.extend_from_slice(&(opts.len() as u16).to_be_bytes());
    p.extend_from_slice(&opts);
    p
}

fn benches(c: &mut Criterion) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let cfg = ServerConfig::load(&root.join("geosteer.yaml")).expect("demo config");
    let snap = geosteer::build_snapshot(&cfg, &AlwaysUp, 0).expect("demo snapshot");
    let client: SocketAddr = "127.0.0.1:5353".parse().unwrap();
    let mut out = vec![0u8; 65_535];

    // The same static A with a client cookie (a server cookie is made:
    // two SipHash-2-4 runs) and an NSID request.
    let mut cookie = query("static.cdn.example", None);
    cookie.truncate(cookie.len() - 2);
    cookie.extend_from_slice(&[0, 16, 0, 3, 0, 0, 0, 10, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8]);
    // A steered HTTPS record (two decisions, hints) for a US resolver.
    let mut https = query("www.cdn.example", Some([8, 8, 8]));
    let qt = 12 + "www.cdn.example".len() + 2;
    https[qt..qt + 2].copy_from_slice(&65u16.to_be_bytes());
    let cases = [
        ("static A", query("static.cdn.example", None)),
        ("static A, cookie + NSID", cookie),
        ("steered HTTPS, ECS 8.8.8.0/24", https),
        ("geo A, no ECS", query("www.cdn.example", None)),
        (
            "geo A, ECS 8.8.8.0/24",
            query("www.cdn.example", Some([8, 8, 8])),
        ),
        (
            "geo A, ECS 77.88.8.0/24",
            query("www.cdn.example", Some([77, 88, 8])),
        ),
    ];

    let mut g = c.benchmark_group("parse");
    for (name, q) in &cases {
        g.bench_function(*name, |b| {
            b.iter(|| geosteer::parse_query(black_box(q)).is_ok())
        });
    }
    g.finish();

    let mut g = c.benchmark_group("respond");
    for (name, q) in &cases {
        assert!(geosteer::respond(&snap, q, client, Transport::Udp, &mut out).is_some());
        g.bench_function(*name, |b| {
            b.iter(|| geosteer::respond(&snap, black_box(q), client, Transport::Udp, &mut out))
        });
    }
    g.finish();

    // The demo zone signed with a KSK and a ZSK made now.
    let keys = tempfile::tempdir().expect("tempdir");
    for ksk in [true, false] {
        geosteer::generate_key(
            keys.path(),
            "cdn.example",
            ksk,
            13,
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs(),
        )
        .expect("keygen");
    }
    let mut signed_cfg = cfg.clone();
    signed_cfg.dnssec = Some(geosteer::DnssecConfig {
        keys: keys.path().to_path_buf(),
        policy: Default::default(),
        cache_size: geosteer::DEFAULT_CACHE_ENTRIES,
    });
    let signed = geosteer::build_snapshot(&signed_cfg, &AlwaysUp, 0).expect("signed snapshot");
    let mut g = c.benchmark_group("respond DO=1 signed");
    let signed_cases = [
        ("static A", query_do("static.cdn.example", None, true)),
        (
            "geo A, ECS 8.8.8.0/24",
            query_do("www.cdn.example", Some([8, 8, 8]), true),
        ),
    ];
    for (name, q) in &signed_cases {
        assert!(geosteer::respond(&signed, q, client, Transport::Udp, &mut out).is_some());
        g.bench_function(*name, |b| {
            b.iter(|| geosteer::respond(&signed, black_box(q), client, Transport::Udp, &mut out))
        });
    }
    // A cache miss: the steered RRset signed for this answer.
    let cache = geosteer::SigCache::global();
    g.bench_function("geo A, ECS 8.8.8.0/24, cold signature", |b| {
        b.iter(|| {
            cache.clear();
            geosteer::respond(
                &signed,
                black_box(&signed_cases[1].1),
                client,
                Transport::Udp,
                &mut out,
            )
        })
    });
    g.finish();

    // The steering decision alone, for the ECS address of a US resolver.
    let zone = snap.zone_named("cdn.example").expect("demo zone");
    let host = zone
        .steering
        .hosts
        .iter()
        .find(|h| h.name == "www")
        .expect("www");
    let addr: IpAddr = "8.8.8.0".parse().unwrap();
    let who = Client {
        addr,
        ecs_source: Some(24),
    };
    c.bench_function("geosteer::decide www ECS 8.8.8.0/24", |b| {
        b.iter(|| {
            geosteer::decide(
                &zone.steering,
                host,
                snap.geodb.as_deref(),
                black_box(who),
                Family::V4,
                &mut (),
            )
        })
    });
    if let Some(db) = snap.geodb.as_deref() {
        c.bench_function("geo lookup 8.8.8.0", |b| {
            b.iter(|| db.lookup(black_box(addr)))
        });
    }
}

criterion_group!(dns_benches, benches);
criterion_main!(dns_benches);
