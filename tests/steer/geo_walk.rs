//! Our stride-table tree walk against maxminddb's own lookup: the same data
//! offset and the same network for every address tried.

use crate::support;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use geosteer::{GeoDb, Schema, build_geodb as build, synth_geodb as synth};
use support::rng::Rng;

fn compare(db: &GeoDb, ip: IpAddr) -> bool {
    let (want_off, want_net) = db.reference_lookup(ip);
    let (got_off, got_prefix) = db.walk(ip);
    assert_eq!(got_off, want_off, "{ip}: data offset");
    if let (Some(_), Some(net)) = (want_off, want_net) {
        assert_eq!(
            got_prefix,
            net.prefix_len(),
            "{ip}: prefix (reference {net})"
        );
        let m = db.lookup(ip);
        if let Some(m) = m {
            assert_eq!(m.network.prefix_len(), net.prefix_len(), "{ip}");
            assert!(
                m.network.contains(&geosteer::normalize(ip)),
                "{ip} not in {}",
                m.network
            );
        }
    }
    want_off.is_some()
}

#[test]
fn walk_matches_maxminddb_on_a_synthetic_db() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("synth.mmdb");
    synth(&path, 40_000, 11).unwrap();
    let db = GeoDb::open(&path).unwrap();
    // Big enough for the 20-bit IPv4 table (the demo DB below takes the
    // 16-bit one).
    assert!(db.info().node_count >= 1 << 18, "{}", db.info().node_count);
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let (mut hits4, mut hits6) = (0, 0);
    for _ in 0..100_000 {
        let r = rng.next();
        hits4 += compare(&db, IpAddr::V4(Ipv4Addr::from(r as u32))) as usize;
        // Mostly inside 2000::/3, where synthetic IPv6 networks live.
        let hi = (0x2000u128 | (r as u128 & 0x1FFF)) << 112;
        let v6 = hi | (u128::from(rng.next()) << 48) | u128::from(rng.next() as u16);
        hits6 += compare(&db, IpAddr::V6(Ipv6Addr::from(v6))) as usize;
        // Embedded IPv4 forms take the IPv4 path.
        compare(&db, IpAddr::V6(Ipv4Addr::from(r as u32).to_ipv6_mapped()));
    }
    // Synthetic IPv6 /48s are too sparse for random hits; the demo DB test
    // covers IPv6 hits. Misses must still agree (checked above).
    assert!(
        hits4 > 100,
        "the sample must hit data: v4 {hits4} (v6 {hits6})"
    );
}

#[test]
fn walk_matches_maxminddb_on_both_schemas() {
    let dir = tempfile::tempdir().unwrap();
    let src = concat!(env!("CARGO_MANIFEST_DIR"), "/geodb/demo-city.yaml");
    for schema in [Schema::City, Schema::Flat] {
        let path = dir.path().join(format!("{schema:?}.mmdb"));
        build(std::path::Path::new(src), &path, schema).unwrap();
        let db = GeoDb::open(&path).unwrap();
        let mut rng = Rng(7);
        let mut hits = 0;
        for a in [
            "8.8.8.8",
            "77.88.8.1",
            "1.1.1.1",
            "2001:4860::8888",
            "10.0.0.1",
            "255.255.255.255",
            "::",
            "::1",
        ] {
            compare(&db, a.parse().unwrap());
        }
        // Around the demo's networks: a known base, then random low bits
        // (inside it, or just beside it).
        let v4_bases: [u32; 8] = [
            0x0808_0800,
            0x4D58_0800,
            0x0101_0100,
            0x7272_7200,
            0xB44C_4C00,
            0xC000_0200,
            0xC633_6400,
            0xCB00_7100,
        ];
        let v6_bases: [u128; 3] = [0x2001_4860 << 96, 0x2606_4700 << 96, 0x2001_0db8_0001 << 80];
        for _ in 0..20_000 {
            let r = rng.next();
            let v4 = v4_bases[(r % 8) as usize] ^ ((r >> 8) as u32 & 0x1FF);
            hits += compare(&db, IpAddr::V4(Ipv4Addr::from(v4))) as usize;
            let v6 = v6_bases[(r % 3) as usize]
                ^ (u128::from(rng.next()) << 16)
                ^ (u128::from((r >> 20) as u8) << 80);
            hits += compare(&db, IpAddr::V6(Ipv6Addr::from(v6))) as usize;
        }
        assert!(hits > 1000, "{schema:?}: {hits}");
    }
}

/// Re-encodes a 24-bit-record database with 28- or 32-bit records: the
/// same tree and data, so both readers must still agree everywhere. (Our
/// writer picks 24 bits for anything under 16M nodes, so this is how the
/// other two sizes get tested without a giant file.)
fn widen(bytes: &[u8], nodes: usize, to: u16) -> Vec<u8> {
    let marker = b"\xab\xcd\xefMaxMind.com";
    let meta_at = bytes
        .windows(marker.len())
        .rposition(|w| w == marker)
        .expect("metadata marker");
    // "record_size" then its uint16 value 24: control byte 0xa1, 0x18.
    let key = b"record_size";
    let k = bytes[meta_at..]
        .windows(key.len())
        .position(|w| w == key)
        .expect("record_size key")
        + meta_at
        + key.len();
    assert_eq!(&bytes[k..k + 2], &[0xa1, 24], "a 24-bit source");
    let rec = |i: usize, bit: usize| {
        let o = i * 6 + bit * 3;
        (u32::from(bytes[o]) << 16) | (u32::from(bytes[o + 1]) << 8) | u32::from(bytes[o + 2])
    };
    let mut out = Vec::with_capacity(bytes.len() + nodes * 2);
    for i in 0..nodes {
        let (l, r) = (rec(i, 0), rec(i, 1));
        if to == 28 {
            out.extend_from_slice(&l.to_be_bytes()[1..]);
            out.push((((l >> 24) & 0x0F) << 4 | ((r >> 24) & 0x0F)) as u8);
            out.extend_from_slice(&r.to_be_bytes()[1..]);
        } else {
            out.extend_from_slice(&l.to_be_bytes());
            out.extend_from_slice(&r.to_be_bytes());
        }
    }
    out.extend_from_slice(&bytes[nodes * 6..]);
    let k = k + out.len() - bytes.len();
    out[k + 1] = to as u8;
    out
}

#[test]
fn walk_matches_maxminddb_with_28_and_32_bit_records() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("synth.mmdb");
    synth(&src, 20_000, 5).unwrap();
    let bytes = std::fs::read(&src).unwrap();
    let nodes = GeoDb::open(&src).unwrap().info().node_count as usize;
    for to in [28u16, 32] {
        let path = dir.path().join(format!("synth{to}.mmdb"));
        std::fs::write(&path, widen(&bytes, nodes, to)).unwrap();
        let db = GeoDb::open(&path).unwrap();
        assert_eq!(db.info().record_size, to);
        let mut rng = Rng(to as u64);
        let mut hits = 0;
        for _ in 0..200_000 {
            let r = rng.next();
            hits += usize::from(compare(&db, IpAddr::V4(Ipv4Addr::from(r as u32))));
            compare(
                &db,
                IpAddr::V6(Ipv6Addr::from(u128::from(r) << 64 | 0x2000 << 112)),
            );
        }
        // The synthetic networks are sparse: a few dozen random hits.
        assert!(hits > 20, "{to}-bit: {hits} hits");
    }
}
