//! Arbitrary bytes as a GeoIP database → open (copy, verify, detect the
//! schema) → lookups. A corrupt database must be refused with an error,
//! never a panic, a hang or an out-of-bounds read.
#![no_main]

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;

fn path() -> &'static PathBuf {
    static P: OnceLock<PathBuf> = OnceLock::new();
    P.get_or_init(|| std::env::temp_dir().join(format!("geosteer-fuzz-mmdb-{}.mmdb", std::process::id())))
}

const PROBES: [&str; 6] = ["8.8.8.8", "1.1.1.1", "77.88.8.8", "0.0.0.0", "2001:4860::1", "::"];

fuzz_target!(|data: &[u8]| {
    let p = path();
    std::fs::write(p, data).unwrap();
    if let Ok(db) = geosteer::GeoDb::open(p) {
        for ip in PROBES {
            let _ = db.lookup(ip.parse::<IpAddr>().unwrap());
        }
        let _ = db.info();
    }
});
