//! GeoIP reader/writer tests: fixtures are built with `geosteer::build_geodb` in a tempdir.

use crate::support;

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use geosteer::{Code, Coords, GeoDb, GeoError, GeoMatch, Location, RecordSchema, Schema};
use support::alloc::{Counting, count};

/// Counts allocations, to prove `lookup` does not allocate.
#[global_allocator]
static GLOBAL: Counting = Counting;

const CITY_SRC: &str = r#"
description: test fixture
networks:
  - network: 81.2.69.0/24
    country: GB
    continent: EU
    subdivision: ENG
    city: London
    lat: 51.5142
    lon: -0.0931
    asn: 20712
  - network: 216.160.83.56/29
    country: us
    subdivision: WA
    city: Milton
    lat: 47.2513
    lon: -122.3149
  - network: 89.160.20.112/28
    country: SE
    continent: EU
    subdivision: E
    city: Linköping
    lat: 58.4167
    lon: 15.6167
  - network: 2001:218::/32
    country: JP
    continent: AS
    lat: 35.68536
    lon: 139.75309
  - network: 64.0.0.0/16
    asn: 64512
"#;

const NOCOORD_SRC: &str = r#"
networks:
  - network: 5.0.0.0/16
    country: DE
  - network: 2400:cb00::/32
    country: AU
    asn: 13335
"#;

fn c(s: &str) -> Option<Code> {
    Some(s.parse().unwrap())
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// Builds `src` (YAML text) with `schema` into a tempdir; returns (dir, db path).
fn fixture(src: &str, schema: Schema) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let yaml = dir.path().join("src.yaml");
    std::fs::write(&yaml, src).unwrap();
    let out = dir.path().join("db.mmdb");
    let stats = geosteer::build_geodb(&yaml, &out, schema).unwrap();
    assert!(stats.networks > 0 && stats.bytes > 0);
    (dir, out)
}

fn build_err(src: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let yaml = dir.path().join("bad.yaml");
    std::fs::write(&yaml, src).unwrap();
    let out = dir.path().join("db.mmdb");
    let err = geosteer::build_geodb(&yaml, &out, Schema::City)
        .unwrap_err()
        .to_string();
    assert!(!out.exists(), "no output on error");
    err
}

struct Case {
    ip: &'static str,
    net: &'static str,
    country: &'static str,
    continent: &'static str,
    subdivision: Option<&'static str>,
    coords: Option<(f64, f64)>,
}

const LONDON: (f64, f64) = (51.5142, -0.0931);

fn city_cases() -> Vec<Case> {
    let london = |ip| Case {
        ip,
        net: "81.2.69.0/24",
        country: "GB",
        continent: "EU",
        subdivision: Some("ENG"),
        coords: Some(LONDON),
    };
    vec![
        london("81.2.69.142"),
        london("::ffff:81.2.69.142"),
        london("2002:5102:458e::1"),
        london("2001:0:4136:e378:8000:63bf:aefd:ba71"),
        Case {
            ip: "216.160.83.60",
            net: "216.160.83.56/29",
            country: "US",
            continent: "NA",
            subdivision: Some("WA"),
            coords: Some((47.2513, -122.3149)),
        },
        Case {
            ip: "89.160.20.127",
            net: "89.160.20.112/28",
            country: "SE",
            continent: "EU",
            subdivision: Some("E"),
            coords: Some((58.4167, 15.6167)),
        },
        Case {
            ip: "2001:218:ffff::1",
            net: "2001:218::/32",
            country: "JP",
            continent: "AS",
            subdivision: None,
            coords: Some((35.68536, 139.75309)),
        },
    ]
}

fn check_cases(db: &GeoDb, cases: &[Case]) {
    for case in cases {
        let m = db
            .lookup(ip(case.ip))
            .unwrap_or_else(|| panic!("{} not found", case.ip));
        assert_eq!(m.network, case.net.parse().unwrap(), "{}", case.ip);
        let l = m.location;
        assert_eq!(l.country, c(case.country), "{}", case.ip);
        assert_eq!(l.continent, c(case.continent), "{}", case.ip);
        assert_eq!(l.subdivision, case.subdivision.and_then(c), "{}", case.ip);
        assert_eq!(
            l.coords,
            case.coords.map(|(lat, lon)| Coords { lat, lon }),
            "{}",
            case.ip
        );
    }
}

const UNLOCATED: [&str; 6] = [
    "10.1.2.3",
    "127.0.0.1",
    "81.2.70.1",
    "2001:db8::1",
    "::1",
    "::ffff:192.168.1.1",
];

#[test]
fn city_schema_lookups() {
    let (_d, path) = fixture(CITY_SRC, Schema::City);
    let db = GeoDb::open(&path).unwrap();
    check_cases(&db, &city_cases());
    for a in UNLOCATED {
        assert_eq!(db.lookup(ip(a)), None, "{a}");
    }
}

#[test]
fn flat_schema_lookups() {
    let (_d, path) = fixture(CITY_SRC, Schema::Flat);
    let db = GeoDb::open(&path).unwrap();
    assert_eq!(db.info().schema, RecordSchema::Flat);
    // The flat writer omits derivable continents, so these also exercise continent_of.
    check_cases(&db, &city_cases());
    for a in UNLOCATED {
        assert_eq!(db.lookup(ip(a)), None, "{a}");
    }
}

#[test]
fn flat_without_coordinates_gives_country_and_continent() {
    let (_d, path) = fixture(NOCOORD_SRC, Schema::Flat);
    let db = GeoDb::open(&path).unwrap();
    let m = db.lookup(ip("5.0.200.1")).unwrap();
    assert_eq!(
        m.location,
        Location {
            continent: c("EU"),
            country: c("DE"),
            ..Location::default()
        }
    );
    assert_eq!(m.network, "5.0.0.0/16".parse().unwrap());
    let m = db.lookup(ip("2400:cb00:1::1")).unwrap();
    assert_eq!(m.location.continent, c("OC"));
    assert_eq!(m.location.coords, None);
    assert_eq!(m.location.asn, Some(13335));
}

#[test]
fn asn_in_both_schemas() {
    for schema in [Schema::City, Schema::Flat] {
        let (_d, path) = fixture(CITY_SRC, schema);
        let db = GeoDb::open(&path).unwrap();
        assert_eq!(
            db.lookup(ip("81.2.69.1")).unwrap().location.asn,
            Some(20712)
        );
        assert_eq!(db.lookup(ip("216.160.83.57")).unwrap().location.asn, None);
        // An ASN-only record is still a match.
        let m = db.lookup(ip("64.0.1.1")).unwrap();
        assert_eq!(
            m.location,
            Location {
                asn: Some(64512),
                ..Location::default()
            },
            "{schema:?}"
        );
    }
}

#[test]
fn info_fields() {
    let (_d, path) = fixture(CITY_SRC, Schema::City);
    let db = GeoDb::open(&path).unwrap();
    let info = db.info();
    assert_eq!(info.path, path);
    assert_eq!(info.database_type, "GeoIP2-City");
    assert_eq!(info.schema, RecordSchema::Nested);
    assert_eq!(info.ip_version, 6);
    assert_eq!(info.languages, vec!["en".to_string()]);
    assert_eq!(info.description.as_deref(), Some("test fixture"));
    assert_eq!(info.file_size, std::fs::metadata(&path).unwrap().len());
    assert!(info.node_count > 96, "IPv4 subtree sits below 96 levels");
    assert!(matches!(info.record_size, 24 | 28 | 32));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(info.build_epoch > 1_600_000_000 && info.build_epoch <= now + 1);
    let (_d2, flat) = fixture(CITY_SRC, Schema::Flat);
    assert_eq!(
        GeoDb::open(&flat).unwrap().info().database_type,
        "DBIP-City-Lite"
    );
}

#[test]
fn describe_output() {
    let (_d, path) = fixture(CITY_SRC, Schema::City);
    let db = GeoDb::open(&path).unwrap();
    let v = geosteer::describe_match(&db.lookup(ip("81.2.69.142")).unwrap());
    assert_eq!(
        v,
        serde_json::json!({
            "network": "81.2.69.0/24", "country": "GB", "continent": "EU",
            "subdivision": "ENG", "lat": 51.5142, "lon": -0.0931, "asn": 20712
        })
    );
}

#[test]
fn lookup_does_not_allocate() {
    let (_d, path) = fixture(CITY_SRC, Schema::City);
    let db = GeoDb::open(&path).unwrap();
    let addrs: Vec<IpAddr> = [
        "81.2.69.142",
        "2001:218::1",
        "2002:5102:458e::1",
        "10.0.0.1",
    ]
    .iter()
    .map(|s| ip(s))
    .collect();
    let mut found = 0;
    let allocs = count(|| {
        for _ in 0..1000 {
            for a in &addrs {
                found += usize::from(db.lookup(*a).is_some());
            }
        }
    });
    assert_eq!(found, 3000);
    assert_eq!(allocs, 0, "lookup allocated");
}

#[test]
fn missing_file_error_names_path() {
    let p = Path::new("/nonexistent/geosteer/test.mmdb");
    let err = GeoDb::open(p).unwrap_err();
    assert!(matches!(err, GeoError::Io { .. }), "{err:?}");
    assert!(
        err.to_string().contains("/nonexistent/geosteer/test.mmdb"),
        "{err}"
    );
}

#[test]
fn empty_and_garbage_files_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.mmdb");
    std::fs::write(&empty, b"").unwrap();
    let err = GeoDb::open(&empty).unwrap_err().to_string();
    assert!(err.contains("empty.mmdb") && err.contains("empty"), "{err}");
    let junk = dir.path().join("junk.mmdb");
    std::fs::write(&junk, b"hello, this is not a database").unwrap();
    let err = GeoDb::open(&junk).unwrap_err().to_string();
    assert!(
        err.contains("junk.mmdb") && err.contains("metadata"),
        "{err}"
    );
}

#[test]
fn truncated_db_is_rejected() {
    let (dir, path) = fixture(CITY_SRC, Schema::City);
    let bytes = std::fs::read(&path).unwrap();
    let cut = dir.path().join("cut.mmdb");
    // Every truncation point must fail cleanly (the metadata lives at the end).
    for len in (1..bytes.len()).step_by(7) {
        std::fs::write(&cut, &bytes[..len]).unwrap();
        let err = GeoDb::open(&cut).unwrap_err();
        assert!(err.to_string().contains("cut.mmdb"), "{err}");
    }
}

#[test]
fn byte_flips_never_panic() {
    let (dir, path) = fixture(CITY_SRC, Schema::City);
    let bytes = std::fs::read(&path).unwrap();
    let flipped = dir.path().join("flip.mmdb");
    let probes: Vec<IpAddr> = city_cases().iter().map(|c| ip(c.ip)).collect();
    let info = GeoDb::open(&path).unwrap().info().clone();
    // Nodes, then the 16-byte separator; the data section after.
    let data_start = info.node_count as usize * usize::from(info.record_size) / 4 + 16;
    let (mut rejected, mut accepted) = (0, 0);
    for pos in 0..bytes.len() {
        for mask in [0x01u8, 0x80, 0xff] {
            let mut b = bytes.clone();
            b[pos] ^= mask;
            std::fs::write(&flipped, &b).unwrap();
            // Whatever maxminddb's own verify() refuses in the search tree
            // and the separator, open refuses too. The data section's
            // records are decoded at open as far as steering reads them (a
            // corrupt field read is refused), and nothing reads them after:
            // fields never read are not verified. The metadata is left out
            // too: verify() also walks unknown metadata fields.
            let refused = pos < data_start
                && maxminddb::Reader::from_source(&b[..])
                    .and_then(|r| r.verify())
                    .is_err();
            match GeoDb::open(&flipped) {
                Ok(_) if refused => {
                    let why = maxminddb::Reader::from_source(&b[..]).and_then(|r| r.verify());
                    panic!("flip at {pos} ^ {mask:#x}: verify() refuses ({why:?}), open accepts")
                }
                Err(e) => {
                    rejected += 1;
                    assert!(e.to_string().contains("flip.mmdb"), "{e}");
                }
                Ok(db) => {
                    accepted += 1;
                    for p in &probes {
                        let _ = db.lookup(*p);
                    }
                }
            }
        }
    }
    // Both outcomes must occur: flips in the tree are mostly caught, flips inside a
    // coordinate's mantissa are valid-but-different.
    assert!(
        rejected > 0 && accepted > 0,
        "{rejected} rejected, {accepted} accepted"
    );
}

#[test]
fn overwrite_in_place_does_not_change_open_db() {
    let (dir, path) = fixture(CITY_SRC, Schema::City);
    let db = GeoDb::open(&path).unwrap();
    let before: Vec<Option<GeoMatch>> = city_cases().iter().map(|c| db.lookup(ip(c.ip))).collect();
    // Overwrite the same inode with a different database, then with garbage, then truncate.
    let other_src = dir.path().join("other.yaml");
    std::fs::write(&other_src, NOCOORD_SRC).unwrap();
    let other = dir.path().join("other.mmdb");
    geosteer::build_geodb(&other_src, &other, Schema::City).unwrap();
    std::fs::write(&path, std::fs::read(&other).unwrap()).unwrap();
    let after: Vec<_> = city_cases().iter().map(|c| db.lookup(ip(c.ip))).collect();
    assert_eq!(before, after);
    std::fs::write(&path, vec![0xa5u8; 100]).unwrap();
    std::fs::File::options()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(3)
        .unwrap();
    let after: Vec<_> = city_cases().iter().map(|c| db.lookup(ip(c.ip))).collect();
    assert_eq!(before, after);
    assert!(before.iter().all(Option::is_some));
    // And the new contents are what a fresh open sees.
    assert!(GeoDb::open(&path).is_err());
}

#[test]
fn source_errors_have_file_and_line() {
    let cases = [
        (
            "networks:\n  - network: 10.0.0.0/8\n    country: US\n  - network: 10.1.0.0/16\n    country: US\n",
            ":4:",
            "overlaps",
        ),
        (
            "networks:\n  - network: 1.2.3.0/24\n    country: US\n  - network: 1.2.3.0/24\n    country: DE\n",
            ":4:",
            "overlaps",
        ),
        (
            "networks:\n  - network: 1.2.3.0/24\n    country: US\n    lat: 91\n    lon: 0\n",
            ":2:",
            "latitude",
        ),
        (
            "networks:\n  - network: 1.2.3.0/24\n    country: US\n    lat: 10\n    lon: -181\n",
            ":2:",
            "longitude",
        ),
        (
            "networks:\n  - network: 1.2.3.0/24\n    lat: 10\n",
            ":2:",
            "together",
        ),
        (
            "networks:\n  - network: 1.2.3.0/24\n    country: QQ\n",
            ":2:",
            "unknown country",
        ),
        (
            "networks:\n  - network: 1.2.3.0/24\n    country: USA1\n",
            ":2:",
            "invalid country",
        ),
        (
            "networks:\n  - network: 1.2.3.0/24\n    country: US\n    continent: XX\n",
            ":2:",
            "continent",
        ),
        (
            "networks:\n  - network: 1.2.3.4/24\n    country: US\n",
            ":2:",
            "host bits",
        ),
        (
            "networks:\n  - network: 1.2.3.0/33\n    country: US\n",
            ":2:",
            "invalid network",
        ),
        (
            "networks:\n  - network: ::ffff:0:0/104\n    country: US\n",
            ":2:",
            "IPv4-mapped",
        ),
        ("networks:\n  - network: 1.2.3.0/24\n", ":2:", "no country"),
        (
            "networks:\n  - network: 1.2.3.0/24\n    colour: red\n",
            "bad.yaml",
            "colour",
        ),
    ];
    for (src, line, reason) in cases {
        let err = build_err(src);
        assert!(err.contains("bad.yaml"), "{err}");
        assert!(err.contains(line), "want {line} in: {err}");
        assert!(err.contains(reason), "want {reason:?} in: {err}");
    }
}

#[test]
fn csv_source() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("src.csv");
    std::fs::write(
        &csv,
        "# comment\nnetwork,country,subdivision,city,lat,lon,asn\n\
         81.2.69.0/24,GB,ENG,\"London\",51.5142,-0.0931,20712\n\
         2001:218::/32,JP,,,35.68536,139.75309,\n",
    )
    .unwrap();
    let out = dir.path().join("db.mmdb");
    let stats = geosteer::build_geodb(&csv, &out, Schema::City).unwrap();
    assert_eq!((stats.ipv4_networks, stats.ipv6_networks), (1, 1));
    let db = GeoDb::open(&out).unwrap();
    check_cases(&db, &city_cases()[..1]);
    check_cases(&db, &city_cases()[6..]);
    std::fs::write(&csv, "network,country\n1.2.3.0/24,US\n1.2.3.0/25,US\n").unwrap();
    let err = geosteer::build_geodb(&csv, &out, Schema::City)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("src.csv:3:") && err.contains("overlaps"),
        "{err}"
    );
}

#[test]
fn synth_is_deterministic_and_valid() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, c2) = (
        dir.path().join("a.mmdb"),
        dir.path().join("b.mmdb"),
        dir.path().join("c.mmdb"),
    );
    let sa = geosteer::synth_geodb(&a, 2000, 7).unwrap();
    let sb = geosteer::synth_geodb(&b, 2000, 7).unwrap();
    geosteer::synth_geodb(&c2, 2000, 8).unwrap();
    assert_eq!(
        (sa.networks, sa.ipv4_networks, sa.ipv6_networks),
        (2000, 1000, 1000)
    );
    assert_eq!(sa.bytes, sb.bytes);
    let (da, db, dc) = (
        GeoDb::open(&a).unwrap(),
        GeoDb::open(&b).unwrap(),
        GeoDb::open(&c2).unwrap(),
    );
    assert_eq!(da.info().node_count, db.info().node_count);
    assert_ne!(da.info().node_count, dc.info().node_count);
    // Probe a spread of addresses: identical answers, and a healthy hit rate.
    let mut hits = 0;
    for i in 0..20_000u32 {
        let v4 = IpAddr::from(std::net::Ipv4Addr::from(i.wrapping_mul(2_654_435_761)));
        assert_eq!(da.lookup(v4), db.lookup(v4));
        hits += usize::from(da.lookup(v4).is_some());
    }
    assert!(hits > 0);
}

#[test]
fn demo_db_is_current_and_correct() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let db = GeoDb::open(&root.join("geodb/demo-city.mmdb")).unwrap();
    let cont = |a: &str| {
        db.lookup(ip(a))
            .map(|m| m.location.continent.unwrap().to_string())
    };
    assert_eq!(cont("8.8.8.8").as_deref(), Some("NA"));
    assert_eq!(cont("2606:4700:4700::1111").as_deref(), Some("NA"));
    assert_eq!(cont("77.88.8.8").as_deref(), Some("EU"));
    assert_eq!(cont("114.114.114.114").as_deref(), Some("AS"));
    assert_eq!(cont("198.18.4.1").as_deref(), Some("SA"));
    assert_eq!(cont("198.18.5.1").as_deref(), Some("AF"));
    assert_eq!(cont("2001:db8:9::1").as_deref(), Some("OC"));
    assert_eq!(cont("10.0.0.1"), None);
    assert_eq!(cont("127.0.0.1"), None);
    assert_eq!(cont("192.168.0.1"), None);
    // The committed mmdb matches its YAML source.
    let dir = tempfile::tempdir().unwrap();
    let fresh = dir.path().join("demo.mmdb");
    geosteer::build_geodb(&root.join("geodb/demo-city.yaml"), &fresh, Schema::City).unwrap();
    let fresh = GeoDb::open(&fresh).unwrap();
    for a in [
        "8.8.8.8",
        "1.0.0.1",
        "9.9.9.9",
        "208.67.222.222",
        "180.76.76.76",
        "2001:db8:c::1",
    ] {
        assert_eq!(db.lookup(ip(a)), fresh.lookup(ip(a)), "{a}");
    }
}

/// Cross-check with libmaxminddb's `mmdblookup` when it is installed.
#[test]
fn mmdblookup_agrees_when_available() {
    let Ok(out) = std::process::Command::new("mmdblookup")
        .arg("--version")
        .output()
    else {
        eprintln!("mmdblookup not on PATH; skipping");
        return;
    };
    assert!(out.status.success());
    for (schema, path_expr) in [
        (Schema::City, vec!["country", "iso_code"]),
        (Schema::Flat, vec!["country_code"]),
    ] {
        let (_d, path) = fixture(CITY_SRC, schema);
        let out = std::process::Command::new("mmdblookup")
            .arg("--file")
            .arg(&path)
            .args(["--ip", "81.2.69.142"])
            .args(&path_expr)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{text}");
        assert!(text.contains("\"GB\""), "{schema:?}: {text}");
        let out = std::process::Command::new("mmdblookup")
            .arg("--file")
            .arg(&path)
            .args(["--ip", "2001:218::1"])
            .output()
            .unwrap();
        assert!(String::from_utf8_lossy(&out.stdout).contains("35.68536"));
    }
}

/// The file is read into the tables at open (through a sealed memfd copy,
/// so a concurrent writer never shows through) and not kept mapped.
#[test]
fn the_file_is_not_kept_mapped() {
    let (_d, path) = fixture(CITY_SRC, Schema::City);
    let db = GeoDb::open(&path).unwrap();
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
    assert!(
        !maps.lines().any(|l| l.ends_with("db.mmdb")),
        "the database file itself must not be mapped"
    );
    std::fs::remove_file(&path).unwrap();
    assert!(db.lookup(ip("81.2.69.142")).is_some());
}
