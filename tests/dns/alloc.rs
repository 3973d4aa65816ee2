//! The answer path allocates nothing per query (issue 3 "Speed"): a
//! counting global allocator watches `geosteer::decide` and `dns::respond`
//! (steered with ECS, by packet source, static, NXDOMAIN, NODATA) after a
//! warm-up.
//!
//! Counting is per thread, so the test harness's own threads don't count.

use crate::support;

use std::net::{IpAddr, SocketAddr};

use geosteer::Transport;
use geosteer::{Client, Family};
use hickory_proto::rr::RecordType;
use support::alloc::{Counting, count};
use support::steer::{self as fixture, Db};

#[global_allocator]
static GLOBAL: Counting = Counting;

const ROUNDS: usize = 2000;

/// The counter itself works (else the zero assertions prove nothing).
#[test]
fn counter_sees_allocations() {
    let n = count(|| {
        let v = std::hint::black_box(vec![1u8; 64]);
        drop(v);
    });
    assert_eq!(n, 1);
}

#[test]
fn decide_allocates_nothing() {
    let snap = fixture::snapshot(Db::City);
    let zone = snap.zone_named("steer.example").unwrap();
    let st = &zone.steering;
    let host = |name: &str| st.hosts.iter().find(|h| h.name == name).unwrap();
    let geo = snap.geodb.as_deref();
    let ecs = |a: &str, p: u8| Client {
        addr: a.parse().unwrap(),
        ecs_source: Some(p),
    };
    let src = |a: &str| Client {
        addr: a.parse().unwrap(),
        ecs_source: None,
    };
    let cases = [
        (host("www"), ecs("81.2.1.0", 24), Family::V4),
        (host("www"), ecs("2a02:c7c:1::", 48), Family::V6),
        (host("www"), ecs("10.20.5.0", 24), Family::V4),
        (host("www"), ecs("2002:5102:100::", 40), Family::V4),
        (host("www"), src("::ffff:81.2.1.1"), Family::V4),
        (host("www"), src("203.0.113.9"), Family::V4),
        (host("video"), ecs("99.0.1.0", 24), Family::V4),
        (host("two"), ecs("126.5.0.0", 16), Family::V4),
        (host("spread"), ecs("5.1.2.0", 24), Family::V4),
        (host("mixed"), ecs("81.2.1.0", 24), Family::V6),
    ];
    for (h, c, f) in cases {
        let first = geosteer::decide(st, h, geo, c, f, &mut ());
        let n = count(|| {
            for _ in 0..ROUNDS {
                let d = geosteer::decide(st, h, geo, c, f, &mut ());
                assert_eq!(d.edges.len(), first.edges.len());
            }
        });
        assert_eq!(
            n, 0,
            "decide({}, {c:?}, {f:?}) allocated {n} times in {ROUNDS} runs",
            h.name
        );
    }
}

#[test]
fn respond_allocates_nothing() {
    let snap = fixture::snapshot(Db::City);
    let from: SocketAddr = "127.0.0.1:5353".parse().unwrap();
    let v6: SocketAddr = SocketAddr::new("2a02:c7c::1".parse::<IpAddr>().unwrap(), 5353);
    let queries = [
        (
            "steered A with ECS",
            fixture::query("www", RecordType::A, Some("81.2.1.0/24")),
            from,
        ),
        (
            "steered AAAA, IPv6 ECS",
            fixture::query("two", RecordType::AAAA, Some("2a02:c7c:1::/48")),
            from,
        ),
        (
            "steered A by packet source",
            fixture::query("video", RecordType::A, None),
            v6,
        ),
        (
            "spread A with ECS",
            fixture::query("spread", RecordType::A, Some("5.1.2.0/24")),
            from,
        ),
        (
            "NODATA with ECS",
            fixture::query("mixed", RecordType::AAAA, Some("81.2.1.0/24")),
            from,
        ),
        (
            "static A",
            fixture::query("static", RecordType::A, None),
            from,
        ),
        (
            "static A with ECS",
            fixture::query("static", RecordType::A, Some("81.2.1.0/24")),
            from,
        ),
        (
            "NXDOMAIN",
            fixture::query("nothing-here", RecordType::A, Some("81.2.1.0/24")),
            from,
        ),
    ];
    let mut out = vec![0u8; 65_535];
    for (what, q, client) in &queries {
        let len = geosteer::respond(&snap, q, *client, Transport::Udp, &mut out).expect(what);
        let n = count(|| {
            for _ in 0..ROUNDS {
                let l = geosteer::respond(&snap, q, *client, Transport::Udp, &mut out);
                assert_eq!(l, Some(len));
            }
        });
        assert_eq!(n, 0, "respond({what}) allocated {n} times in {ROUNDS} runs");
    }
}
