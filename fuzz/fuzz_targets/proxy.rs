//! Arbitrary bytes as a datagram or a TCP stream's start, from a trusted
//! and an untrusted sender → the PROXY v2 check. A header must be
//! believed, refused or passed through, never a panic; a believed one
//! never claims more bytes than the packet has.
#![no_main]

use std::net::SocketAddr;
use std::sync::OnceLock;

use geosteer::{Proxies, ProxyVerdict as Verdict};
use libfuzzer_sys::fuzz_target;

fn proxies() -> &'static Proxies {
    static P: OnceLock<Proxies> = OnceLock::new();
    P.get_or_init(|| Proxies::new(vec!["127.0.0.1/32".parse().unwrap()]))
}

fuzz_target!(|data: &[u8]| {
    let p = proxies();
    for peer in ["127.0.0.1:5300", "192.0.2.1:5300"] {
        let peer: SocketAddr = peer.parse().unwrap();
        if let Verdict::Proxied { len, .. } = p.check(peer, data) {
            assert!(len <= data.len());
        }
        if let Some((_, msg)) = p.datagram(peer, data) {
            assert!(msg.len() <= data.len());
        }
    }
});
