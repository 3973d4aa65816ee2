//! A zone's override nets and RTT prefixes merged into one table of address
//! ranges per family, as gdnsd merges its nets into the GeoIP tree
//! (`nlist_merge3_tree`): one range search gives a client's most specific
//! override net, its most specific RTT prefix, and how far around it both
//! stay the same, which is what the ECS scope may cover. The database's
//! own networks are the database stage ([`crate::geo::GeoDb`]), shared by
//! every zone and searched after this, not copied into it.

use std::net::IpAddr;

use ipnet::IpNet;

use super::rtt::{NONE, RttTable, within};
use super::types::EdgeIdx;
use crate::geo::Location;
use crate::geo::table::{self, Key, Ranges, Value};

/// Where an override net sends its clients.
#[derive(Debug, Clone)]
pub enum NetTarget {
    Location(Location),
    Edges(Vec<EdgeIdx>),
}

/// Override nets, checked before the GeoIP DB; the most specific wins.
#[derive(Debug, Default)]
pub struct Nets {
    /// Sorted by prefix length, longest first, so the first hit wins.
    list: Vec<(IpNet, NetTarget)>,
}

impl Nets {
    pub fn new(mut list: Vec<(IpNet, NetTarget)>) -> Nets {
        for (n, _) in &mut list {
            *n = n.trunc();
        }
        list.sort_by_key(|(n, _)| std::cmp::Reverse(n.prefix_len()));
        Nets { list }
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// The nets, most specific first.
    pub fn list(&self) -> &[(IpNet, NetTarget)] {
        &self.list
    }

    /// The most specific net holding `ip` (a scan: for explain and the
    /// status page; queries find it in the [`Overlay`]).
    pub fn lookup(&self, ip: IpAddr) -> Option<&(IpNet, NetTarget)> {
        self.list.iter().find(|(n, _)| n.contains(&ip))
    }

    /// Net `i` of [`Nets::list`].
    pub(crate) fn get(&self, i: u32) -> &(IpNet, NetTarget) {
        &self.list[i as usize]
    }

    /// One family's nets as prefixes with their index in the list, sorted
    /// as [`table::from_prefixes`] wants them (of two equal nets, the
    /// first listed wins, as the scan's first hit does).
    fn prefixes<K: Key>(&self, v6: bool) -> Vec<(K, u8, Value)> {
        let mut out: Vec<(K, u8, Value)> = self
            .list
            .iter()
            .enumerate()
            .filter(|(_, (n, _))| n.network().is_ipv6() == v6)
            .map(|(i, (n, _))| (key(n.network()), n.prefix_len(), i as Value))
            .collect();
        out.sort_by_key(|&(s, len, i)| (s, len, i));
        out
    }
}

/// An address as a range key of its family.
fn key<K: Key>(a: IpAddr) -> K {
    K::from_u128(match a {
        IpAddr::V4(a) => u128::from(u32::from(a)),
        IpAddr::V6(a) => u128::from(a),
    })
}

/// One family's overlay.
#[derive(Debug)]
enum Side<K: Key> {
    /// Neither nets nor RTT prefixes of this family.
    Empty,
    /// RTT prefixes only: the RTT table's own ranges (shared, not copied).
    Rtt,
    /// Nets (and RTT prefixes): ranges whose values index [`Overlay::pairs`].
    Merged(Ranges<K>),
}

/// A zone's nets and RTT prefixes, per family.
#[derive(Debug)]
pub(crate) struct Overlay {
    v4: Side<u32>,
    v6: Side<u128>,
    /// (net index or [`NONE`], RTT prefix word or [`NONE`]) of a merged
    /// range.
    pairs: Box<[(u32, u32)]>,
}

/// What the overlay says about an address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Hit {
    /// The most specific override net holding it.
    pub net: Option<u32>,
    /// Its most specific RTT prefix, as the RTT table's key word
    /// ([`NONE`]: none).
    pub rtt: u32,
    /// The range it is in (its index in the side it came from).
    range: u32,
}

impl Overlay {
    /// Merges `nets` and `rtt`'s prefixes.
    pub(crate) fn build(nets: &Nets, rtt: &RttTable) -> Overlay {
        let mut pairs: Vec<(u32, u32)> = Vec::new();
        let mut ids = std::collections::HashMap::new();
        let v4 = side::<u32>(nets, rtt.prefix_ranges4(), false, &mut pairs, &mut ids);
        let v6 = side::<u128>(nets, rtt.prefix_ranges6(), true, &mut pairs, &mut ids);
        Overlay {
            v4,
            v6,
            pairs: pairs.into_boxed_slice(),
        }
    }

    /// What the overlay says about `ip`; `None` when its family has
    /// neither nets nor RTT prefixes. Always inlined: once a query, and a
    /// call returning the `Hit` cost a fifth of it (callgrind).
    #[inline(always)]
    pub(crate) fn find(&self, rtt: &RttTable, ip: IpAddr) -> Option<Hit> {
        match ip {
            IpAddr::V4(a) => self.find_in(&self.v4, rtt.prefix_ranges4(), u32::from(a)),
            IpAddr::V6(a) => self.find_in(&self.v6, rtt.prefix_ranges6(), u128::from(a)),
        }
    }

    #[inline]
    fn find_in<K: Key>(&self, side: &Side<K>, rtt: Option<&Ranges<K>>, a: K) -> Option<Hit> {
        match side {
            Side::Empty => None,
            Side::Rtt => {
                let r = rtt?;
                let i = r.find(a);
                Some(Hit {
                    net: None,
                    rtt: r.value(i),
                    range: i as u32,
                })
            }
            Side::Merged(r) => {
                let i = r.find(a);
                let (net, word) = self.pairs[r.value(i) as usize];
                Some(Hit {
                    net: (net != NONE).then_some(net),
                    rtt: word,
                    range: i as u32,
                })
            }
        }
    }

    /// Lengthens `scope` until `ip`'s block at that length lies inside the
    /// range of `hit` (`ip`'s own): a caching resolver must never hand our
    /// answer to a client another net or RTT prefix decides. The same as
    /// narrowing around every net the client is not in, then around the
    /// RTT prefix ranges.
    pub(crate) fn narrow_scope(&self, rtt: &RttTable, hit: &Hit, ip: IpAddr, scope: u8) -> u8 {
        match ip {
            IpAddr::V4(a) => {
                let (lo, hi) = match &self.v4 {
                    Side::Empty => return scope,
                    Side::Rtt => match rtt.prefix_ranges4() {
                        Some(r) => r.bounds(hit.range as usize),
                        None => return scope,
                    },
                    Side::Merged(r) => r.bounds(hit.range as usize),
                };
                within(
                    u128::from(u32::from(a)),
                    lo.into(),
                    hi.into(),
                    u32::MAX.into(),
                    32,
                    scope,
                )
            }
            IpAddr::V6(a) => {
                let (lo, hi) = match &self.v6 {
                    Side::Empty => return scope,
                    Side::Rtt => match rtt.prefix_ranges6() {
                        Some(r) => r.bounds(hit.range as usize),
                        None => return scope,
                    },
                    Side::Merged(r) => r.bounds(hit.range as usize),
                };
                within(u128::from(a), lo, hi, u128::MAX, 128, scope)
            }
        }
    }
}

/// One family's side of the overlay.
fn side<K: Key>(
    nets: &Nets,
    rtt: Option<&Ranges<K>>,
    v6: bool,
    pairs: &mut Vec<(u32, u32)>,
    ids: &mut std::collections::HashMap<(u32, u32), u32>,
) -> Side<K> {
    let prefixes = nets.prefixes::<K>(v6);
    if prefixes.is_empty() {
        return match rtt {
            Some(_) => Side::Rtt,
            None => Side::Empty,
        };
    }
    let nets = table::from_prefixes(&prefixes, NONE);
    let none = table::from_prefixes::<K>(&[], NONE);
    let rtt = rtt.unwrap_or(&none);
    let mut b = table::Builder::with_bounds(nets.len() + rtt.len() + 1);
    table::overlay(&nets, rtt, |start, net, word| {
        let next = pairs.len() as u32;
        let id = *ids.entry((net, word)).or_insert(next);
        if id == next {
            pairs.push((net, word));
        }
        b.push(start, id);
    });
    Side::Merged(b.finish())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::steer::RttKey;
    use rand::{Rng, SeedableRng, rngs::StdRng};
    use std::net::{Ipv4Addr, Ipv6Addr};

    /// The net lookup and the two scope narrowings as they were written
    /// before the overlay: a scan for the first (most specific) net, then
    /// lengthening the scope around every longer net the address is not
    /// in, then to the RTT table's own range.
    fn by_scan(nets: &Nets, rtt: &RttTable, addr: IpAddr, scope: u8) -> (Option<usize>, u8) {
        let list = nets.list();
        let at = list.iter().position(|(n, _)| n.contains(&addr));
        let mut scope = scope;
        for (net, _) in list {
            if net.prefix_len() <= scope
                || net.contains(&addr)
                || net.network().is_ipv4() != addr.is_ipv4()
            {
                continue;
            }
            let common = match (addr, net.network()) {
                (IpAddr::V4(a), IpAddr::V4(b)) => (u32::from(a) ^ u32::from(b)).leading_zeros(),
                (IpAddr::V6(a), IpAddr::V6(b)) => (u128::from(a) ^ u128::from(b)).leading_zeros(),
                _ => 0,
            } as u8;
            if common >= scope {
                scope = (common + 1).min(net.prefix_len());
            }
        }
        (at, rtt.narrow_scope(addr, scope))
    }

    /// Nested and neighbouring nets and RTT prefixes of both families
    /// (drawn near one another so that they overlap and share leading
    /// bits), against addresses around them.
    #[test]
    fn overlay_matches_the_scans_it_replaces() {
        let mut rng = StdRng::seed_from_u64(11);
        for round in 0..600 {
            let base4: u32 = rng.random();
            let base6: u128 = rng.random();
            let draw = |rng: &mut StdRng| {
                if rng.random_bool(0.5) {
                    let a = base4 ^ (rng.random::<u32>() >> rng.random_range(0..32));
                    IpNet::V4(ipnet::Ipv4Net::new_assert(
                        Ipv4Addr::from(a),
                        rng.random_range(0..=32),
                    ))
                } else {
                    let a = base6 ^ (rng.random::<u128>() >> rng.random_range(0..128));
                    IpNet::V6(ipnet::Ipv6Net::new_assert(
                        Ipv6Addr::from(a),
                        rng.random_range(0..=128),
                    ))
                }
                .trunc()
            };
            let list: Vec<(IpNet, NetTarget)> = (0..rng.random_range(0..8))
                .map(|_| (draw(&mut rng), NetTarget::Edges(vec![0])))
                .collect();
            let nets = Nets::new(list);
            let mut rows: Vec<(RttKey, EdgeIdx, f32)> = (0..if round % 3 == 0 {
                0
            } else {
                rng.random_range(0..8)
            })
                .map(|_| (RttKey::Prefix(draw(&mut rng)), 0, 1.0))
                .collect();
            rows.sort_by_key(|r| r.0);
            rows.dedup_by_key(|r| r.0);
            let rtt = RttTable::new(rows, |_| 1.0);
            let overlay = Overlay::build(&nets, &rtt);
            for _ in 0..20 {
                let addr = if rng.random_bool(0.5) {
                    IpAddr::V4(Ipv4Addr::from(
                        base4 ^ (rng.random::<u32>() >> rng.random_range(0..32)),
                    ))
                } else {
                    IpAddr::V6(Ipv6Addr::from(
                        base6 ^ (rng.random::<u128>() >> rng.random_range(0..128)),
                    ))
                };
                // As located: at least the prefix of the net it is in.
                let scope = rng.random_range(0..=if addr.is_ipv4() { 32 } else { 128 });
                let own = nets.lookup(addr).map_or(0, |(n, _)| n.prefix_len());
                let scope = scope.max(own);
                let (at, narrowed) = by_scan(&nets, &rtt, addr, scope);
                let hit = overlay.find(&rtt, addr);
                assert_eq!(
                    hit.and_then(|h| h.net).map(|n| n as usize),
                    at,
                    "{addr} in {:?}",
                    nets.list()
                );
                let word = hit.map_or(NONE, |h| h.rtt);
                assert_eq!(
                    super::super::rtt::hit_of(word),
                    rtt.prefix(addr),
                    "{addr}: RTT prefix"
                );
                // Narrowing as the query path does: from the located scope.
                let got = hit.map_or(scope, |h| overlay.narrow_scope(&rtt, &h, addr, scope));
                assert_eq!(got, narrowed, "{addr}/{scope} around {:?}", nets.list());
            }
        }
    }
}
