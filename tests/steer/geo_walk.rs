//! The database's ranges against maxminddb's own tree walk: for every
//! address tried, `GeoDb::lookup` (a range search over the table built in
//! one pass at open) gives the location and network that a walk of the
//! file and a decode of the record it lands on give.

use crate::support;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;

use geosteer::{
    GeoDb, GeoReference as Reference, Schema, build_geodb as build, synth_geodb as synth,
};
use support::rng::Rng;

/// The database at `path` and its reference.
fn open(path: &Path) -> (GeoDb, Reference) {
    (GeoDb::open(path).unwrap(), Reference::open(path).unwrap())
}

fn compare(db: &(GeoDb, Reference), ip: IpAddr) -> bool {
    let (db, reference) = db;
    let want = reference.lookup(ip);
    let got = db.lookup(ip);
    assert_eq!(got, want, "{ip}");
    assert_eq!(
        db.locate(ip)
            .map(|(loc, prefix)| (*db.location(loc), prefix)),
        want.map(|m| (m.location, m.network.prefix_len())),
        "{ip}: locate"
    );
    if let Some(m) = got {
        assert!(
            m.network.contains(&geosteer::normalize(ip)),
            "{ip} not in {}",
            m.network
        );
    }
    want.is_some()
}

#[test]
fn walk_matches_maxminddb_on_a_synthetic_db() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("synth.mmdb");
    synth(&path, 40_000, 11).unwrap();
    let db = open(&path);
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
        let db = open(&path);
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
        let db = open(&path);
        assert_eq!(db.0.info().record_size, to);
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

/// A City database with an ASN database merged in: the merged ranges give
/// what the two walks give together (the ASN where the City record has
/// none, the narrower network), including where one has data and the
/// other none.
#[test]
fn asn_merge_matches_both_walks() {
    let dir = tempfile::tempdir().unwrap();
    let city = dir.path().join("city.mmdb");
    let asn_src = dir.path().join("asn.yaml");
    let asn = dir.path().join("asn.mmdb");
    let src = concat!(env!("CARGO_MANIFEST_DIR"), "/geodb/demo-city.yaml");
    build(Path::new(src), &city, Schema::City).unwrap();
    // ASN networks that cut across the demo's: wider, narrower, beside.
    std::fs::write(
        &asn_src,
        "networks:
  - { network: 8.8.0.0/21, asn: 64500 }
  - { network: 8.8.8.128/25, asn: 64501 }
  - { network: 77.88.8.0/26, asn: 64502 }
  - { network: 1.1.0.0/23, asn: 64503 }
  - { network: 2001:4860::/33, asn: 64504 }
  - { network: 2606:4700::/31, asn: 64505 }
",
    )
    .unwrap();
    build(&asn_src, &asn, Schema::City).unwrap();
    let merged = GeoDb::open(&city)
        .unwrap()
        .with_asn(std::sync::Arc::new(GeoDb::open(&asn).unwrap()));
    let (rc, ra) = (
        Reference::open(&city).unwrap(),
        Reference::open(&asn).unwrap(),
    );
    let mut rng = Rng(28);
    let mut hits = 0;
    let bases: [u32; 4] = [0x0808_0800, 0x4D58_0800, 0x0101_0100, 0x0808_0000];
    for _ in 0..50_000 {
        let r = rng.next();
        let v4 = IpAddr::V4(Ipv4Addr::from(
            bases[(r % 4) as usize] ^ ((r >> 8) as u32 & 0x3FFF),
        ));
        let v6 = IpAddr::V6(Ipv6Addr::from(
            [0x2001_4860u128 << 96, 0x2606_4700 << 96][(r >> 40) as usize % 2]
                ^ u128::from(rng.next()) << 64,
        ));
        for ip in [v4, v6] {
            let want = rc.lookup_with_asn(&ra, ip);
            assert_eq!(merged.lookup(ip), want, "{ip}");
            hits += usize::from(want.is_some_and(|m| m.location.asn.is_some()));
        }
    }
    assert!(hits > 1000, "{hits}");
}

/// A real database (GEOSTEER_GEODB=path/to/GeoLite2-City.mmdb), a million
/// random addresses and the edges of its networks; skipped without one.
#[test]
fn a_real_database_matches_its_walk() {
    let Some(path) = std::env::var_os("GEOSTEER_GEODB") else {
        eprintln!("SKIPPED: set GEOSTEER_GEODB to a real database");
        return;
    };
    let db = open(Path::new(&path));
    let mut rng = Rng(2828);
    let mut hits = 0;
    for _ in 0..1_000_000 {
        let r = rng.next();
        hits += usize::from(compare(&db, IpAddr::V4(Ipv4Addr::from(r as u32))));
        if r.is_multiple_of(4) {
            let top = [0x2001u128, 0x2400, 0x2600, 0x2800, 0x2a00, 0x2c00][(r >> 32) as usize % 6];
            let a = top << 112 | u128::from(rng.next()) << 48 | u128::from(rng.next() as u16);
            compare(&db, IpAddr::V6(Ipv6Addr::from(a)));
        }
    }
    assert!(hits > 500_000, "{hits}");
}
