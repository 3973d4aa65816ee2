//! The fleet story: two geosteer instances serving the same files must give
//! the same answer to the same question, so it does not matter which one
//! anycast or a resolver's server selection reaches. One instance runs in
//! this process, the other is the `geosteer` binary (its own hash seeds,
//! its own start time); their responses must match byte for byte after the
//! ID for every steered name, across many client subnets on every
//! continent, IPv4 and IPv6.

use crate::support;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::dns::{udp_exchange, wire_query as query};
use support::server::Fixture;
use support::{KillOnDrop, free_port, repo};

/// ECS subnets: every network of the demo GeoIP source, then
/// pseudo-random /24s and /48s all over the address space.
fn subnets() -> Vec<(IpAddr, u8)> {
    let src = std::fs::read_to_string(repo().join("geodb/demo-city.yaml")).unwrap();
    let mut out: Vec<(IpAddr, u8)> = src
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- network:"))
        .map(|n| {
            let n = n.split('#').next().unwrap().trim();
            let (a, p) = n.split_once('/').unwrap();
            let a: IpAddr = a.parse().unwrap();
            let p: u8 = p.parse().unwrap();
            (
                a,
                if a.is_ipv4() {
                    p.clamp(8, 24)
                } else {
                    p.clamp(16, 56)
                },
            )
        })
        .collect();
    assert!(out.len() >= 10, "demo GeoIP source has too few networks");
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    for i in 0..300 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        if i % 4 == 3 {
            let a = Ipv6Addr::from(
                ((0x2000u128 | (x as u128 & 0x0fff)) << 112) | ((x as u128 >> 12) << 80),
            );
            out.push((IpAddr::V6(a), 48));
        } else {
            let a = Ipv4Addr::from((x as u32 % 0xDF00_0000 + 0x0100_0000) & 0xFFFF_FF00);
            out.push((IpAddr::V4(a), 24));
        }
    }
    out
}

#[test]
fn two_instances_answer_identically_for_the_same_ecs() {
    let fx = Fixture::new("", "");
    let a = fx.start();
    let port = free_port();
    let b_addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let _b = KillOnDrop(
        Command::new(env!("CARGO_BIN_EXE_geosteer"))
            .args(["serve", "-c"])
            .arg(fx.config_path())
            .args(["--listen", &b_addr.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start geosteer binary"),
    );
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    let ready = query(1, "static.cdn.example", 1, None, None);
    let end = Instant::now() + Duration::from_secs(20);
    while udp_exchange(&sock, b_addr, &ready).is_none() {
        assert!(
            Instant::now() < end,
            "geosteer binary not answering on {b_addr}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    let questions: [(&str, u16); 8] = [
        ("www.cdn.example", 1),
        ("www.cdn.example", 28),
        ("img.cdn.example", 1),
        ("img.cdn.example", 28),
        ("video.cdn.example", 1),
        ("video.cdn.example", 28),
        ("static.cdn.example", 1),
        ("nope.cdn.example", 1),
    ];
    let mut compared = 0;
    let mut answers = std::collections::HashSet::new();
    for (i, (addr, prefix)) in subnets().into_iter().enumerate() {
        for (j, (name, qtype)) in questions.iter().enumerate() {
            let id = (i * questions.len() + j) as u16;
            let q = query(id, name, *qtype, Some(1232), Some((addr, prefix)));
            let ra = udp_exchange(&sock, a.udp, &q)
                .unwrap_or_else(|| panic!("in-process: no answer {name} {addr}"));
            let rb = udp_exchange(&sock, b_addr, &q)
                .unwrap_or_else(|| panic!("binary: no answer {name} {addr}"));
            assert_eq!(
                ra[2..],
                rb[2..],
                "{name} type {qtype} for {addr}/{prefix}: instances differ\n{ra:02x?}\n{rb:02x?}"
            );
            let msg = hickory_proto::op::Message::from_vec(&ra).expect("response parses");
            let rdata: Vec<String> = msg.answers.iter().map(|r| r.data.to_string()).collect();
            answers.insert((j, rdata));
            compared += 1;
        }
    }
    // Make sure the comparison covered real steering variety, not one
    // answer repeated.
    println!(
        "{compared} responses compared, {} distinct (question, answer) pairs",
        answers.len()
    );
    assert!(
        answers.len() >= 20,
        "only {} distinct answers",
        answers.len()
    );
}
