//! Sharing clients among edges about as good as the best: weighted
//! rendezvous hashing of the client's /24 or /56, so a subnet keeps its edge
//! while the weights are steady.

use std::net::IpAddr;

use super::candidates::Cand;
use super::order::{chord2_of, km_of};
use super::scope::masked_bits;
use super::{Host, Steering};

/// Spreading granularity: one answer per /24 (IPv4) or /56 (IPv6), the
/// sizes resolvers send as ECS by default.
fn spread_prefix(addr: IpAddr) -> u8 {
    match addr {
        IpAddr::V4(_) => 24,
        IpAddr::V6(_) => 56,
    }
}

/// SplitMix64 finaliser: a fast, well-mixed, stable hash. Stability across
/// restarts and instances matters (a fleet must agree), so no random seed.
pub(super) fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// Moves the edge this client's subnet hashes to, among the healthy edges
/// within `spread_km` of the nearest, to the front of `list`. Returns the
/// prefix the hash used (it bounds the ECS scope) when it spread.
pub(super) fn spread(
    st: &Steering,
    host: &Host,
    list: &mut [Cand],
    addr: IpAddr,
    source: Option<u8>,
) -> Option<u8> {
    if !(host.spread_km > 0.0 && list.len() > 1 && list[0].tier == 0) {
        return None;
    }
    let limit = chord2_of(km_of(list[0].d) + host.spread_km);
    let group = list
        .iter()
        .take_while(|c| c.tier == 0 && c.d <= limit)
        .count();
    if group <= 1 {
        return None;
    }
    let prefix = spread_prefix(addr).min(source.unwrap_or(u8::MAX));
    let bits = masked_bits(addr, prefix);
    let key = mix((bits as u64) ^ mix((bits >> 64) as u64));
    let mut best = 0;
    let mut best_score = f64::INFINITY;
    for (i, c) in list[..group].iter().enumerate() {
        let h = mix(key ^ (c.idx as u64).wrapping_mul(0x9E37_79B9));
        let u = ((h >> 11) as f64 + 1.0) / (1u64 << 53) as f64;
        let w = st.edges[c.idx as usize].weight.max(1) as f64;
        let score = -u.ln() / w;
        if score < best_score {
            best_score = score;
            best = i;
        }
    }
    list[..=best].rotate_right(1);
    Some(prefix)
}
