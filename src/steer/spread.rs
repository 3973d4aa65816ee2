//! Near-equal candidates: the standing partner split, the cost margin, and
//! sharing clients by capacity. Every split hashes the client's /24 or /56
//! (stable, unseeded), so a subnet keeps its edge while loads are steady.

use std::net::IpAddr;

use super::candidates::{Cand, stable_sort_by_key};
use super::host::Host;
use super::scope::masked_bits;
use super::steering::Steering;
use super::types::{Class, EdgeIdx, Trace};

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

/// The client's subnet (at most the ECS source prefix) and its hash.
fn subnet(addr: IpAddr, source: Option<u8>) -> (u8, u64) {
    let prefix = spread_prefix(addr).min(source.unwrap_or(u8::MAX));
    let bits = masked_bits(addr, prefix);
    (prefix, mix((bits as u64) ^ mix((bits >> 64) as u64)))
}

/// A uniform draw in (0, 1] from a hash.
fn unit(h: u64) -> f64 {
    ((h >> 11) as f64 + 1.0) / (1u64 << 53) as f64
}

/// `partner_share`: a fraction of subnets go to healthy partners first even
/// while own edges are up; the rest keep partners behind every up edge of
/// our own. Returns the prefix the hash used when the split decided.
pub(super) fn partner_split<T: Trace>(
    st: &Steering,
    host: &Host,
    list: &mut [Cand],
    addr: IpAddr,
    source: Option<u8>,
    trace: &mut T,
) -> Option<u8> {
    let share = host.partner_share?;
    let partner = |c: &Cand| st.edges[c.idx as usize].is_partner();
    let up = |want: bool| list.iter().any(|c| c.tier == 0 && partner(c) == want);
    // Nothing to split unless both sides can serve; otherwise health order
    // already says it (no own edge up: partners first).
    if !(up(true) && up(false)) {
        return None;
    }
    let (prefix, key) = subnet(addr, source);
    let draw = unit(mix(key ^ 0x5041_5254_4E45_5253));
    let to_partner = draw <= share;
    stable_sort_by_key(list, |c| (c.tier, partner(c) != to_partner));
    trace.partner_split(share, draw, to_partner);
    Some(prefix)
}

/// `cost_margin_km` / `cost_margin_ms`: among the healthy candidates within
/// the margin of the best (same metric), the cheapest go first; equal costs
/// keep metric order.
pub(super) fn cost_first<T: Trace>(st: &Steering, host: &Host, list: &mut [Cand], trace: &mut T) {
    let Some(first) = list.first().copied() else {
        return;
    };
    let margin = match first.class {
        Class::Rtt => host.cost_margin_ms,
        Class::Distance => host.cost_margin_km,
        Class::Partner => 0.0,
    };
    if first.tier != 0 || margin <= 0.0 {
        return;
    }
    let group = list
        .iter()
        .take_while(|c| c.tier == 0 && c.class == first.class && c.metric <= first.metric + margin)
        .count();
    if group > 1 {
        let cost = |c: &Cand| st.edges[c.idx as usize].cost;
        stable_sort_by_key(&mut list[..group], cost);
        if T::DETAILED {
            let mut ids: smallvec::SmallVec<[EdgeIdx; 16]> = smallvec::SmallVec::new();
            ids.extend(list[..group].iter().map(|c| c.idx));
            trace.cost(margin, &ids);
        }
    }
}

/// Moves the edge this client's subnet hashes to, among the cheapest
/// healthy edges within `spread_km` / `spread_ms` of the first (partners
/// without RTT: among all of them), to the front of `list`. Shares are
/// proportional to [`super::Edge::share_weight`] (weighted rendezvous
/// hashing). Returns the prefix the hash used when it spread.
pub(super) fn spread<T: Trace>(
    st: &Steering,
    host: &Host,
    list: &mut [Cand],
    addr: IpAddr,
    source: Option<u8>,
    trace: &mut T,
) -> Option<u8> {
    let first = *list.first()?;
    let width = match first.class {
        Class::Rtt => host.spread_ms,
        Class::Distance => host.spread_km,
        Class::Partner => f64::INFINITY,
    };
    if !(width > 0.0 && list.len() > 1 && first.tier == 0) {
        return None;
    }
    let cost = st.edges[first.idx as usize].cost;
    let group = list
        .iter()
        .take_while(|c| {
            c.tier == 0
                && c.class == first.class
                && c.metric <= first.metric + width
                && st.edges[c.idx as usize].cost == cost
        })
        .count();
    if group <= 1 {
        return None;
    }
    let (prefix, key) = subnet(addr, source);
    let mut best = 0;
    let mut best_score = f64::INFINITY;
    for (i, c) in list[..group].iter().enumerate() {
        let u = unit(mix(key ^ (c.idx as u64).wrapping_mul(0x9E37_79B9)));
        let w = st.edges[c.idx as usize].share_weight();
        let score = -u.ln() / w;
        if score < best_score {
            best_score = score;
            best = i;
        }
    }
    if T::DETAILED {
        let mut shares: smallvec::SmallVec<[(EdgeIdx, f64); 16]> = smallvec::SmallVec::new();
        shares.extend(
            list[..group]
                .iter()
                .map(|c| (c.idx, st.edges[c.idx as usize].share_weight())),
        );
        trace.shares(&shares, list[best].idx);
    }
    list[..=best].rotate_right(1);
    Some(prefix)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::pools::{AlwaysUp, from_str};
    use std::path::Path;

    const POOLS: &str = "
edges:
  a: { addresses: [192.0.2.1], location: [51.5, -0.1], weight: 1 }
  b: { addresses: [192.0.2.2], location: [50.0, 8.6], weight: 3 }
  c: { addresses: [192.0.2.3], location: [48.9, 2.4], cost: 0.5 }
  d: { addresses: [192.0.2.4], location: [40.7, -74.0] }
  p: { cname: cdn.partner.example. }
hosts:
  www: {}
";

    fn steering() -> Steering {
        let origin = hickory_proto::rr::Name::from_ascii("t.example.").unwrap();
        from_str(POOLS, Path::new("t.example.pools.yaml"), &origin, &AlwaysUp)
            .unwrap()
            .steering
    }

    /// Up candidates `names` at the given km.
    fn list(st: &Steering, names: &[(&str, f64)]) -> Vec<Cand> {
        names
            .iter()
            .map(|&(n, km)| Cand {
                idx: st.edges.iter().position(|e| e.name == n).unwrap() as EdgeIdx,
                class: if n == "p" {
                    Class::Partner
                } else {
                    Class::Distance
                },
                metric: km,
                tier: 0,
            })
            .collect()
    }

    fn first<'s>(st: &'s Steering, list: &[Cand]) -> &'s str {
        &st.edges[list[0].idx as usize].name
    }

    /// The /24 number `i` in 10.0.0.0/8.
    fn client(i: u32) -> IpAddr {
        IpAddr::from((10 << 24 | i << 8).to_be_bytes())
    }

    #[test]
    fn spreading_shares_subnets_by_weight_and_keeps_each_subnet_on_its_edge() {
        let st = steering();
        let host = Host {
            spread_km: 500.0,
            ..st.hosts[0].clone()
        };
        let mut to_b = 0;
        for i in 0..4000 {
            let mut l = list(&st, &[("a", 0.0), ("b", 300.0), ("d", 900.0)]);
            assert_eq!(
                spread(&st, &host, &mut l, client(i), Some(24), &mut ()),
                Some(24)
            );
            let got = first(&st, &l).to_string();
            assert_ne!(got, "d", "d is beyond the spread");
            to_b += usize::from(got == "b");
            // Another address of the same /24 gets the same edge.
            let mut again = list(&st, &[("a", 0.0), ("b", 300.0), ("d", 900.0)]);
            let addr = IpAddr::from((10 << 24 | i << 8 | 77).to_be_bytes());
            spread(&st, &host, &mut again, addr, None, &mut ());
            assert_eq!(first(&st, &again), got);
        }
        // b has weight 3 to a's 1: about three quarters of the subnets.
        assert!((2800..3200).contains(&to_b), "{to_b} of 4000 to b");
        // No spread configured, or one candidate in reach: nothing moves.
        let mut l = list(&st, &[("a", 0.0), ("b", 300.0)]);
        assert_eq!(
            spread(&st, &st.hosts[0], &mut l, client(1), None, &mut ()),
            None
        );
        let mut l = list(&st, &[("a", 0.0), ("d", 900.0)]);
        assert_eq!(spread(&st, &host, &mut l, client(1), None, &mut ()), None);
        assert_eq!(first(&st, &l), "a");
    }

    #[test]
    fn within_the_cost_margin_the_cheapest_goes_first() {
        let st = steering();
        let host = Host {
            cost_margin_km: 400.0,
            ..st.hosts[0].clone()
        };
        let mut l = list(&st, &[("a", 0.0), ("b", 100.0), ("c", 350.0), ("d", 900.0)]);
        cost_first(&st, &host, &mut l, &mut ());
        let got: Vec<&str> = l
            .iter()
            .map(|c| st.edges[c.idx as usize].name.as_str())
            .collect();
        assert_eq!(got, ["c", "a", "b", "d"]);
        // Out of the margin, the cheaper edge stays where it is.
        let mut l = list(&st, &[("a", 0.0), ("b", 100.0), ("c", 450.0)]);
        cost_first(&st, &host, &mut l, &mut ());
        assert_eq!(first(&st, &l), "a");
    }

    #[test]
    fn the_partner_split_sends_its_share_of_subnets_to_partners() {
        let st = steering();
        let host = Host {
            partner_share: Some(0.2),
            ..st.hosts[0].clone()
        };
        let mut to_partner = 0;
        for i in 0..4000 {
            let mut l = list(&st, &[("a", 0.0), ("b", 100.0), ("p", 0.0)]);
            assert_eq!(
                partner_split(&st, &host, &mut l, client(i), Some(24), &mut ()),
                Some(24)
            );
            to_partner += usize::from(first(&st, &l) == "p");
        }
        assert!((600..1000).contains(&to_partner), "{to_partner} of 4000");
        // Without an own edge up there is nothing to split.
        let mut l = list(&st, &[("p", 0.0)]);
        assert_eq!(
            partner_split(&st, &host, &mut l, client(1), None, &mut ()),
            None
        );
    }
}
