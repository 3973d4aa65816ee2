//! Arbitrary text as a zone file → the zone parser and validator.
//!
//! Zone files are trusted input (the operator writes them), but a typo must
//! give an error, never a panic or a hang. `$INCLUDE` is filtered out: it
//! reads other files, which is the operator's business, not the fuzzer's.
#![no_main]

use std::path::Path;
use std::str::FromStr;

use hickory_proto::rr::Name;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if text.to_ascii_lowercase().contains("$include") {
        return;
    }
    let origin = Name::from_str("cdn.example.").unwrap();
    if let Ok(z) = geosteer::parse_zone_str(text, Path::new("/nonexistent/fuzz.zone"), &origin) {
        // A zone that parsed must also build an answer tree or say why.
        let _ = geosteer::Tree::build(&z.origin, z.records.iter().enumerate().map(|(i, r)| (i, &r.record)));
    }
});
