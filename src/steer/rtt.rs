//! Measured round-trip times (`<zone>.rtt.csv`) as steering reads them:
//! rows grouped by client key, and a lookup that finds the most specific
//! key a client has rows for (longest prefix, then ASN, country, continent).
//!
//! Prefixes are flattened into disjoint address ranges, each tagged with
//! its most specific prefix, so a lookup is one bucket read and a short
//! binary search, and the range's bounds tell the ECS scope how far the
//! answer holds.

use std::net::IpAddr;

use ipnet::IpNet;

use super::types::{EdgeIdx, RttKey};
use crate::geo::table::{self, Ranges};
use crate::geo::{Code, Location};

/// Marks "no prefix" (and, in the overlay, "no net") in a range table.
pub(crate) const NONE: u32 = u32::MAX;
/// The key bits of a range's key word (the top 8 hold the prefix length).
const KEY_MASK: u32 = (1 << 24) - 1;

/// Keys are indices into the row groups, 24 bits: about 16 million rows
/// and headers.
pub const MAX_ROWS: usize = KEY_MASK as usize - 1;

/// Left-aligns an address of either family.
fn aligned(addr: IpAddr) -> u128 {
    match addr {
        IpAddr::V4(a) => u128::from(u32::from(a)) << 96,
        IpAddr::V6(a) => u128::from(a),
    }
}

/// A range's key word as the prefix hit it stands for.
#[inline]
pub(super) fn hit_of(word: u32) -> Option<RttHit> {
    (word != NONE).then_some(RttHit {
        key: word & KEY_MASK,
        prefix: Some((word >> 24) as u8),
    })
}

/// The RTT rows of one zone, ready for lookups.
#[derive(Debug, Default)]
pub struct RttTable {
    /// Every key with rows, sorted, and where its group starts in `rows`.
    keys: Vec<RttKey>,
    heads: Vec<u32>,
    /// Groups of rows, one per key: a header `(count, 0)` then `count`
    /// rows (edge, ms), fastest first. A key is known by its header's
    /// index, so a lookup reads its rows from one place (one cache line
    /// for a few edges) instead of an offsets table first.
    rows: Vec<(EdgeIdx, f32)>,
    /// Rows kept (headers not counted).
    row_count: usize,
    /// Each family's prefixes flattened into ranges of one most specific
    /// prefix: values are key words (key, prefix length in the top 8
    /// bits) or [`NONE`]; `None` without prefix rows of the family.
    v4: Option<Ranges<u32>>,
    v6: Option<Ranges<u128>>,
    /// (asn, key) sorted by asn; likewise countries and continents.
    asn: Vec<(u32, u32)>,
    country: Vec<(Code, u32)>,
    continent: Vec<(Code, u32)>,
}

/// A key's rows (best biased ms first), as the RTT merge reads them.
#[derive(Clone, Copy, Default)]
pub(super) struct Rows<'a> {
    all: &'a [(EdgeIdx, f32)],
}

impl<'a> Rows<'a> {
    /// Key `key`'s rows, read from the table.
    pub fn of_key(table: &'a RttTable, key: u32) -> Rows<'a> {
        Rows {
            all: table.rows_of(key),
        }
    }

    /// Rows kept elsewhere (learned ones).
    pub fn of(all: &'a [(EdgeIdx, f32)]) -> Rows<'a> {
        Rows { all }
    }

    pub fn is_empty(&self) -> bool {
        self.all.is_empty()
    }

    /// Every row.
    pub fn all(&self) -> &'a [(EdgeIdx, f32)] {
        self.all
    }
}

/// The RTT key a client matched.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RttHit {
    /// The key, as [`RttTable::rows_of`] and [`RttTable::key`] take it.
    pub key: u32,
    /// The prefix's length when the key is a prefix (it bounds the scope).
    pub prefix: Option<u8>,
}

impl RttTable {
    /// Builds the table from rows (key, edge, ms), in any order; rows of one
    /// key and edge must not repeat. `scale` is each edge's bias factor
    /// ([`Edge::scale`](super::Edge)): a key's rows are kept best biased ms
    /// first, so a query merges them in without sorting.
    pub fn new(mut rows: Vec<(RttKey, EdgeIdx, f32)>, scale: impl Fn(EdgeIdx) -> f64) -> RttTable {
        let metric = |r: &(RttKey, EdgeIdx, f32)| f64::from(r.2) * scale(r.1);
        rows.sort_unstable_by(|a, b| {
            a.0.cmp(&b.0)
                .then(metric(a).total_cmp(&metric(b)))
                .then(a.1.cmp(&b.1))
        });
        let mut t = RttTable::default();
        let mut v4 = Vec::new();
        let mut v6 = Vec::new();
        let mut head = 0usize;
        for (key, edge, ms) in rows {
            if t.keys.last() != Some(&key) {
                head = t.rows.len();
                let k = head as u32;
                t.keys.push(key);
                t.heads.push(k);
                t.rows.push((0, 0.0));
                match key {
                    RttKey::Prefix(IpNet::V4(n)) => {
                        v4.push((aligned(IpAddr::V4(n.network())), n.prefix_len(), k))
                    }
                    RttKey::Prefix(IpNet::V6(n)) => {
                        v6.push((aligned(IpAddr::V6(n.network())), n.prefix_len(), k))
                    }
                    RttKey::Asn(a) => t.asn.push((a, k)),
                    RttKey::Country(c) => t.country.push((c, k)),
                    RttKey::Continent(c) => t.continent.push((c, k)),
                }
            }
            t.rows.push((edge, ms));
            t.rows[head].0 += 1;
            t.row_count += 1;
        }
        // IpNet orders by network then length: parents before children.
        let word = |k: u32, len: u8| k | u32::from(len) << 24;
        let v4: Vec<(u32, u8, u32)> = v4
            .iter()
            .map(|&(a, len, k)| ((a >> 96) as u32, len, word(k, len)))
            .collect();
        let v6: Vec<(u128, u8, u32)> = v6
            .iter()
            .map(|&(a, len, k)| (a, len, word(k, len)))
            .collect();
        t.v4 = (!v4.is_empty()).then(|| table::from_prefixes(&v4, NONE));
        t.v6 = (!v6.is_empty()).then(|| table::from_prefixes(&v6, NONE));
        t.keys.shrink_to_fit();
        t.heads.shrink_to_fit();
        // Random reads over MBs of rows: on huge pages where the kernel has them.
        t.rows = crate::hugepage::boxed(&t.rows).into_vec();
        t
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// How many keys have rows.
    pub fn keys(&self) -> usize {
        self.keys.len()
    }

    /// How many rows are kept.
    pub fn rows(&self) -> usize {
        self.row_count
    }

    /// The client key `k` stands for (a search: for explain, not queries).
    pub fn key(&self, k: u32) -> &RttKey {
        let i = self.heads.partition_point(|&h| h < k);
        &self.keys[i]
    }

    /// Key `k`'s rows, best first (by ms times the edge's bias factor).
    #[inline]
    pub fn rows_of(&self, k: u32) -> &[(EdgeIdx, f32)] {
        let k = k as usize;
        let n = usize::from(self.rows[k].0);
        &self.rows[k + 1..k + 1 + n]
    }

    /// The IPv4 prefix ranges (None without IPv4 prefix rows), which the
    /// zone's [`super::overlay`] searches.
    pub(crate) fn prefix_ranges4(&self) -> Option<&Ranges<u32>> {
        self.v4.as_ref()
    }

    /// The IPv6 prefix ranges, likewise.
    pub(crate) fn prefix_ranges6(&self) -> Option<&Ranges<u128>> {
        self.v6.as_ref()
    }

    /// The key word of the range holding `addr`, its first and last
    /// address, its family's last address and width; None without prefix
    /// rows of its family.
    fn range_of(&self, addr: IpAddr) -> Option<(u32, u128, u128, u128, u8)> {
        match addr {
            IpAddr::V4(a) => {
                let r = self.v4.as_ref()?;
                let i = r.find(u32::from(a));
                let (lo, hi) = r.bounds(i);
                Some((r.value(i), lo.into(), hi.into(), u32::MAX.into(), 32))
            }
            IpAddr::V6(a) => {
                let r = self.v6.as_ref()?;
                let i = r.find(u128::from(a));
                let (lo, hi) = r.bounds(i);
                Some((r.value(i), lo, hi, u128::MAX, 128))
            }
        }
    }

    /// The most specific prefix holding `addr`, if any.
    pub fn prefix(&self, addr: IpAddr) -> Option<RttHit> {
        hit_of(self.range_of(addr)?.0)
    }

    /// The key for a client no prefix covers: its ASN, else country, else
    /// continent, as located.
    pub fn by_location(&self, loc: &Location) -> Option<RttHit> {
        fn find<K: Ord + Copy>(list: &[(K, u32)], k: Option<K>) -> Option<u32> {
            let k = k?;
            list.binary_search_by(|e| e.0.cmp(&k))
                .ok()
                .map(|i| list[i].1)
        }
        find(&self.asn, loc.asn)
            .or_else(|| find(&self.country, loc.country))
            .or_else(|| find(&self.continent, loc.continent))
            .map(|key| RttHit { key, prefix: None })
    }

    /// Lengthens `scope` until the client's block at that length holds only
    /// addresses with the same most specific prefix (or none) as `addr`, so
    /// a caching resolver never hands our answer to a client another RTT
    /// row decides.
    pub fn narrow_scope(&self, addr: IpAddr, scope: u8) -> u8 {
        match self.range_of(addr) {
            Some((_, lo, hi, max, width)) => within(unaligned(addr), lo, hi, max, width, scope),
            None => scope,
        }
    }
}

/// The shortest block of at least `scope` bits around `a` (of a family of
/// `width` bits, whose last address is `max`) inside `[lo, hi]`: longer
/// than the bits `a` shares with the address before `lo` and the one after
/// `hi`.
pub(super) fn within(a: u128, lo: u128, hi: u128, max: u128, width: u8, scope: u8) -> u8 {
    let pad = 128 - u32::from(width);
    let beyond = |b: u128| ((a ^ b).leading_zeros() - pad) as u8 + 1;
    let below = if lo > 0 { beyond(lo - 1) } else { 0 };
    let above = if hi < max { beyond(hi + 1) } else { 0 };
    scope.min(width).max(below).max(above).min(width)
}

/// An address of either family as an integer.
fn unaligned(addr: IpAddr) -> u128 {
    match addr {
        IpAddr::V4(a) => u128::from(u32::from(a)),
        IpAddr::V6(a) => u128::from(a),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }
    fn net(s: &str) -> RttKey {
        RttKey::Prefix(s.parse().unwrap())
    }

    #[test]
    fn longest_prefix_and_scope() {
        let t = RttTable::new(
            vec![
                (net("10.0.0.0/8"), 0, 20.0),
                (net("10.1.0.0/16"), 1, 10.0),
                (net("10.1.2.0/24"), 0, 5.0),
                (net("10.1.2.0/24"), 1, 3.0),
                (net("2001:db8::/32"), 0, 9.0),
                (RttKey::Country("JP".parse().unwrap()), 1, 7.0),
            ],
            |_| 1.0,
        );
        let key = |a: &str| t.prefix(ip(a)).map(|h| t.key(h.key).to_string());
        assert_eq!(key("10.1.2.9").as_deref(), Some("10.1.2.0/24"));
        assert_eq!(key("10.1.3.9").as_deref(), Some("10.1.0.0/16"));
        assert_eq!(key("10.2.0.1").as_deref(), Some("10.0.0.0/8"));
        assert_eq!(key("11.0.0.1"), None);
        assert_eq!(key("9.255.255.255"), None);
        assert_eq!(key("2001:db8:5::1").as_deref(), Some("2001:db8::/32"));
        assert_eq!(key("2001:db9::1"), None);
        let h = t.prefix(ip("10.1.2.9")).unwrap();
        assert_eq!(t.rows_of(h.key), &[(1, 3.0), (0, 5.0)]);
        // A /16 answer must not cover the /24 inside it.
        assert_eq!(t.narrow_scope(ip("10.1.3.9"), 16), 24);
        assert_eq!(t.narrow_scope(ip("10.1.128.1"), 16), 17);
        assert_eq!(t.narrow_scope(ip("10.1.2.9"), 16), 24);
        assert_eq!(t.narrow_scope(ip("10.1.2.9"), 26), 26);
        // Outside every prefix: never cover one.
        assert_eq!(t.narrow_scope(ip("11.0.0.1"), 0), 8);
        assert_eq!(t.narrow_scope(ip("12.0.0.1"), 4), 6);
        let jp = Location {
            country: Some("JP".parse().unwrap()),
            ..Location::default()
        };
        assert_eq!(
            t.by_location(&jp)
                .map(|h| t.key(h.key).to_string())
                .as_deref(),
            Some("country:JP")
        );
    }

    #[test]
    fn rows_are_kept_best_biased_first() {
        let rows = || {
            vec![
                (net("10.0.0.0/8"), 0, 8.0),
                (net("10.0.0.0/8"), 1, 50.0),
                (net("10.0.0.0/8"), 2, 9.0),
            ]
        };
        let t = RttTable::new(rows(), |_| 1.0);
        let k = t.prefix(ip("10.1.1.1")).unwrap().key;
        assert_eq!(t.rows_of(k), &[(0, 8.0), (2, 9.0), (1, 50.0)]);
        // Edge 1 with bias 90 (x 0.1): its 50 ms ranks as 5.
        let t = RttTable::new(rows(), |e| if e == 1 { 0.1 } else { 1.0 });
        let k = t.prefix(ip("10.1.1.1")).unwrap().key;
        assert_eq!(t.rows_of(k), &[(1, 50.0), (0, 8.0), (2, 9.0)]);
    }

    /// The scope by definition: the shortest block around the address
    /// (at least `scope` bits) inside its range.
    fn scope_by_search(t: &RttTable, addr: IpAddr, scope: u8) -> u8 {
        let Some((_, lo, hi, _, width)) = t.range_of(addr) else {
            return scope;
        };
        let a = unaligned(addr);
        let mut len = scope.min(width);
        while len < width {
            let host = u32::from(width - len);
            let mask = if host >= 128 {
                u128::MAX
            } else {
                (1u128 << host) - 1
            };
            let (first, last) = (a & !mask, a | mask);
            if first >= lo && last <= hi {
                break;
            }
            len += 1;
        }
        len
    }

    #[test]
    fn scope_matches_the_search_it_replaces() {
        let mut x = 0x2545_F491_4F6C_DD1Du64;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for round in 0..20 {
            let mut rows = Vec::new();
            for _ in 0..(1 + round * 10) {
                let r = next();
                // Few distinct top bits, so prefixes nest and touch.
                let v4 = Ipv4Addr::from((r as u32) & 0xC3FF_FFFF);
                let n4 = ipnet::Ipv4Net::new(v4, (r >> 32) as u8 % 33)
                    .unwrap()
                    .trunc();
                rows.push((RttKey::Prefix(IpNet::V4(n4)), 0, 1.0));
                let v6 = std::net::Ipv6Addr::from(u128::from(r) << 64 | u128::from(next()));
                let n6 = ipnet::Ipv6Net::new(v6, (r >> 40) as u8 % 129)
                    .unwrap()
                    .trunc();
                rows.push((RttKey::Prefix(IpNet::V6(n6)), 0, 1.0));
            }
            rows.sort_by_key(|r| r.0);
            rows.dedup_by(|a, b| a.0 == b.0);
            let t = RttTable::new(rows, |_| 1.0);
            for _ in 0..2000 {
                let r = next();
                let a = if r & 1 == 0 {
                    IpAddr::V4(Ipv4Addr::from(((r >> 8) as u32) & 0xC3FF_FFFF))
                } else {
                    IpAddr::V6(std::net::Ipv6Addr::from(
                        u128::from(r) << 64 | u128::from(next()),
                    ))
                };
                let scope = (r >> 48) as u8 % if a.is_ipv4() { 33 } else { 129 };
                assert_eq!(
                    t.narrow_scope(a, scope),
                    scope_by_search(&t, a, scope),
                    "{a} from /{scope}"
                );
            }
        }
    }

    #[test]
    fn whole_space_and_host_prefixes() {
        let t = RttTable::new(
            vec![
                (net("0.0.0.0/0"), 0, 50.0),
                (net("255.255.255.255/32"), 1, 1.0),
                (net("::/0"), 0, 50.0),
            ],
            |_| 1.0,
        );
        let key = |a: &str| t.prefix(ip(a)).map(|h| t.key(h.key).to_string());
        assert_eq!(key("1.2.3.4").as_deref(), Some("0.0.0.0/0"));
        assert_eq!(
            key("255.255.255.255").as_deref(),
            Some("255.255.255.255/32")
        );
        assert_eq!(key("255.255.255.254").as_deref(), Some("0.0.0.0/0"));
        assert_eq!(key("ffff::1").as_deref(), Some("::/0"));
        assert_eq!(t.narrow_scope(ip("1.2.3.4"), 0), 1);
        assert_eq!(t.narrow_scope(ip("255.255.255.254"), 24), 32);
    }
}
