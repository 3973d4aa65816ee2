//! Arbitrary text as a pools file → the steering config parser.
//!
//! Pools files are trusted (operator-written) but edited live and reloaded
//! on save, so a broken edit must give an error, never a panic.
#![no_main]

use std::path::Path;
use std::str::FromStr;

use geosteer::AlwaysUp;
use hickory_proto::rr::Name;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let origin = Name::from_str("cdn.example.").unwrap();
    let _ = geosteer::parse_pools(text, Path::new("/nonexistent/cdn.example.pools.yaml"), &origin, &AlwaysUp);
});
