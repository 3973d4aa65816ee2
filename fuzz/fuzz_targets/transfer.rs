//! Arbitrary bytes as what a transfer peer sends → the TSIG reader and
//! verifier, and the RDATA reader (decompression and checks) of every
//! record type. Peers are configured, but a broken or hostile one must
//! give an error, never a panic or a loop.
#![no_main]

use std::sync::{Arc, OnceLock};

use geosteer::{TsigAlgorithm as Algorithm, TsigKey as Key, TsigKeyring as Keyring, find_tsig as find, verify_tsig as verify_request};
use libfuzzer_sys::fuzz_target;

fn keys() -> &'static Keyring {
    static K: OnceLock<Keyring> = OnceLock::new();
    K.get_or_init(|| {
        Keyring(vec![Arc::new(
            Key::new("xfr-key", Algorithm::HmacSha256, b"0123456789abcdef0123456789abcdef").unwrap(),
        )])
    })
}

fuzz_target!(|data: &[u8]| {
    let _ = find(data);
    let _ = verify_request(data, keys(), 1_700_000_000);
    if data.len() > 2 {
        let code = u16::from_be_bytes([data[0], data[1]]);
        let _ = geosteer::rdata_from_wire(code, data, 2, data.len() - 2);
        let _ = geosteer::check_rdata(code, &data[2..]);
        let mut out = Vec::new();
        geosteer::canonical_rdata(code, &data[2..], &mut out);
    }
});
