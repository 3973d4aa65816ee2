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

use super::EdgeIdx;
use crate::geo::{Code, Location};

/// A client key of the RTT file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RttKey {
    Prefix(IpNet),
    Asn(u32),
    Country(Code),
    Continent(Code),
}

impl std::fmt::Display for RttKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RttKey::Prefix(n) => write!(f, "{n}"),
            RttKey::Asn(a) => write!(f, "AS{a}"),
            RttKey::Country(c) => write!(f, "country:{c}"),
            RttKey::Continent(c) => write!(f, "continent:{c}"),
        }
    }
}

/// Marks "no prefix" in a range table.
const NONE: u32 = u32::MAX;
/// The key bits of a range's key (the top 8 hold the prefix length).
const KEY_MASK: u32 = (1 << 24) - 1;

/// Keys are indices into the row groups, 24 bits: about 16 million rows
/// and headers.
pub const MAX_ROWS: usize = KEY_MASK as usize - 1;

/// Disjoint ranges covering a family's address space: `starts[i]..starts[i+1]`
/// maps to key `keys[i]` (or [`NONE`]), with a direct index on the top 16
/// bits so a lookup searches only the ranges of its bucket.
#[derive(Debug, Default)]
struct Ranges {
    /// Addresses left-aligned in a u128 (IPv4 in the top 32 bits), so one
    /// type serves both families. Empty for IPv4, which keeps `starts4`.
    starts: Vec<u128>,
    /// IPv4 (start as u32, key) pairs: a quarter of the memory the binary
    /// search walks, and the key on the line the search ends on.
    starts4: Vec<(u32, u32)>,
    /// Each range's key with its prefix length in the top 8 bits (the scope
    /// needs it), or [`NONE`].
    keys: Vec<u32>,
    /// `bucket[b]`: the range holding the first address of bucket `b`
    /// (65,537 entries; empty when there are no prefixes).
    bucket: Vec<u32>,
}

/// Left-aligns an address of either family.
fn aligned(addr: IpAddr) -> u128 {
    match addr {
        IpAddr::V4(a) => u128::from(u32::from(a)) << 96,
        IpAddr::V6(a) => u128::from(a),
    }
}

/// The last address of a left-aligned prefix of `len` bits in a family of
/// `width` bits.
fn last_of(start: u128, len: u8, width: u8) -> u128 {
    let host = 128 - u32::from(len.min(width));
    let low = if host >= 128 {
        u128::MAX
    } else {
        (1u128 << host) - 1
    };
    // IPv4 keeps its low 96 bits zero.
    let pad = if width == 32 { (1u128 << 96) - 1 } else { 0 };
    (start | low) & !pad
}

impl Ranges {
    /// Builds from (left-aligned network, prefix length, key) sorted by
    /// network then length: nested prefixes come after their parents.
    fn build(prefixes: &[(u128, u8, u32)], width: u8) -> Ranges {
        if prefixes.is_empty() {
            return Ranges::default();
        }
        let step = if width == 32 { 1u128 << 96 } else { 1 };
        let mut starts: Vec<u128> = vec![0];
        let mut keys: Vec<u32> = vec![NONE];
        // Open prefixes: (last address, key).
        let mut stack: Vec<(u128, u32)> = Vec::new();
        for &(start, len, key) in prefixes.iter().chain([&(u128::MAX, 0, NONE)]) {
            let sentinel = key == NONE;
            // Close the prefixes that end before this one starts.
            while let Some(&(end, _)) = stack.last() {
                if !sentinel && end >= start {
                    break;
                }
                stack.pop();
                let parent = stack.last().map_or(NONE, |t| t.1);
                if let Some(next) = end.checked_add(step) {
                    emit(next, parent, &mut starts, &mut keys);
                }
            }
            if !sentinel {
                stack.push((last_of(start, len, width), key));
                emit(start, key, &mut starts, &mut keys);
            }
        }
        let bucket = bucket_index(starts.len(), 16, |i| starts[i]);
        keys.shrink_to_fit();
        let mut len_of = vec![0u8; prefixes.iter().map(|p| p.2 as usize + 1).max().unwrap_or(0)];
        for &(_, len, key) in prefixes {
            len_of[key as usize] = len;
        }
        let keys: Vec<u32> = keys
            .iter()
            .map(|&k| {
                if k == NONE {
                    NONE
                } else {
                    k | u32::from(len_of[k as usize]) << 24
                }
            })
            .collect();
        if width == 32 {
            return Ranges {
                starts4: starts
                    .iter()
                    .zip(&keys)
                    .map(|(&s, &k)| ((s >> 96) as u32, k))
                    .collect(),
                starts: Vec::new(),
                keys: Vec::new(),
                bucket,
            };
        }
        starts.shrink_to_fit();
        Ranges {
            starts,
            starts4: Vec::new(),
            keys,
            bucket,
        }
    }

    /// The range holding `a`: (its index).
    #[inline]
    fn find(&self, a: u128) -> Option<usize> {
        if self.bucket.is_empty() {
            return None;
        }
        let b = (a >> 112) as usize;
        let (lo, hi) = (self.bucket[b] as usize, self.bucket[b + 1] as usize);
        if !self.starts4.is_empty() {
            let a = (a >> 96) as u32;
            return Some(lo + self.starts4[lo..=hi].partition_point(|s| s.0 <= a) - 1);
        }
        Some(lo + self.starts[lo..=hi].partition_point(|&s| s <= a) - 1)
    }

    /// The left-aligned start of range `i`.
    fn start(&self, i: usize) -> u128 {
        match self.starts4.get(i) {
            Some(&(s, _)) => u128::from(s) << 96,
            None => self.starts[i],
        }
    }

    /// First and last address of range `i`.
    fn bounds(&self, i: usize, step: u128) -> (u128, u128) {
        let end = if i + 1 < self.len() {
            self.start(i + 1) - step
        } else {
            u128::MAX
        };
        (self.start(i), end)
    }

    fn len(&self) -> usize {
        self.starts.len().max(self.starts4.len())
    }

    /// Range `i`'s key word (key and prefix length, or [`NONE`]).
    #[inline]
    fn key(&self, i: usize) -> u32 {
        match self.starts4.get(i) {
            Some(&(_, k)) => k,
            None => self.keys[i],
        }
    }
}

/// A direct index over sorted, left-aligned range starts (the first at 0):
/// entry `b` is the range holding the first address of bucket `b` (the top
/// `bits` bits), and one more entry ends it, so a lookup searches only
/// `index[b]..=index[b + 1]`.
pub(super) fn bucket_index(len: usize, bits: u32, start: impl Fn(usize) -> u128) -> Vec<u32> {
    let mut index = Vec::with_capacity((1 << bits) + 1);
    let mut i = 0usize;
    for b in 0..1u128 << bits {
        let at = b << (128 - bits);
        while i + 1 < len && start(i + 1) <= at {
            i += 1;
        }
        index.push(i as u32);
    }
    index.push((len - 1) as u32);
    index
}

/// A range's key word as the prefix hit it stands for.
#[inline]
pub(super) fn hit_of(word: u32) -> Option<RttHit> {
    (word != NONE).then_some(RttHit {
        key: word & KEY_MASK,
        prefix: Some((word >> 24) as u8),
    })
}

/// Starts range `key` at `at`, merging with the range before when it maps
/// to the same key.
fn emit(at: u128, key: u32, starts: &mut Vec<u128>, keys: &mut Vec<u32>) {
    if *starts.last().expect("never empty") == at {
        *keys.last_mut().expect("never empty") = key;
        if keys.len() > 1 && keys[keys.len() - 2] == key {
            starts.pop();
            keys.pop();
        }
    } else if *keys.last().expect("never empty") != key {
        starts.push(at);
        keys.push(key);
    }
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
    v4: Ranges,
    v6: Ranges,
    /// (asn, key) sorted by asn; likewise countries and continents.
    asn: Vec<(u32, u32)>,
    country: Vec<(Code, u32)>,
    continent: Vec<(Code, u32)>,
}

/// Where an address falls in the prefix ranges: the range (for the scope)
/// and the prefix key holding it, if any.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RttAt {
    pub hit: Option<RttHit>,
    span: Span,
}

/// Which addresses around the client an [`RttAt`] knows are located alike.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Span {
    /// The range's index among its family's prefix ranges.
    Range(u32),
    /// From the flattened table: the IPv4 span around the address that has
    /// both its database network and its prefix range. Narrowing the scope
    /// of a database-located answer to it is narrowing to the range (the
    /// scope already holds the network), without reading the range.
    Piece(u32, u32),
}

/// A key's rows (best biased ms first) as the RTT merge reads them: the
/// first two at hand, from the flattened table's range when it had them,
/// and the rest read from the table only when the merge gets past them.
#[derive(Clone, Copy)]
pub(super) struct Rows<'a> {
    table: &'a RttTable,
    key: u32,
    len: usize,
    head: [(EdgeIdx, f32); 2],
}

impl<'a> Rows<'a> {
    /// No rows.
    pub fn none(table: &'a RttTable) -> Rows<'a> {
        Rows {
            table,
            key: 0,
            len: 0,
            head: [(0, 0.0); 2],
        }
    }

    /// Key `key`'s rows, read from the table.
    pub fn of_key(table: &'a RttTable, key: u32) -> Rows<'a> {
        let all = table.rows_of(key);
        let mut head = [(0, 0.0); 2];
        for (h, r) in head.iter_mut().zip(all) {
            *h = *r;
        }
        Rows {
            table,
            key,
            len: all.len(),
            head,
        }
    }

    /// The rows of prefix key `key` whose count and first two rows the
    /// flattened table keeps.
    #[inline]
    pub fn of_head(
        table: &'a RttTable,
        key: u32,
        len: u16,
        edges: [EdgeIdx; 2],
        ms: [f32; 2],
    ) -> Rows<'a> {
        let len = if len == u16::MAX {
            table.rows_of(key).len()
        } else {
            usize::from(len)
        };
        Rows {
            table,
            key,
            len,
            head: [(edges[0], ms[0]), (edges[1], ms[1])],
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Row `i` (< [`Rows::len`]).
    #[inline]
    pub fn get(&self, i: usize) -> (EdgeIdx, f32) {
        match self.head.get(i) {
            Some(&r) => r,
            None => self.table.rows_of(self.key)[i],
        }
    }

    /// Starts fetching the rows past the head from memory, so a merge that
    /// reads them all (a host that spreads or weighs cost) finds them in
    /// cache by then instead of waiting at the end of a dependent chain.
    #[inline]
    pub fn prefetch(&self) {
        if self.len <= self.head.len() {
            return;
        }
        let group = &self.table.rows[self.key as usize..];
        for r in [group.first(), group.get(self.len)].into_iter().flatten() {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: a prefetch is a hint; it reads nothing we use and
            // cannot fault, and `r` is a valid reference anyway.
            unsafe {
                std::arch::x86_64::_mm_prefetch(
                    (r as *const (EdgeIdx, f32)).cast::<i8>(),
                    std::arch::x86_64::_MM_HINT_T0,
                );
            }
            #[cfg(not(target_arch = "x86_64"))]
            let _ = r;
        }
    }

    /// Every row, from the table.
    pub fn all(&self) -> &'a [(EdgeIdx, f32)] {
        if self.len == 0 {
            &[]
        } else {
            self.table.rows_of(self.key)
        }
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
        t.v4 = Ranges::build(&v4, 32);
        t.v6 = Ranges::build(&v6, 128);
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
        &self.keys[self.key_ordinal(k)]
    }

    /// The position of key `k` among the keys, in key order.
    pub fn key_ordinal(&self, k: u32) -> usize {
        self.heads.partition_point(|&h| h < k)
    }

    /// The rows of exactly `key`, if it has any (a search: for building
    /// tables that merge with this one, not queries).
    pub fn rows_for(&self, key: &RttKey) -> Option<&[(EdgeIdx, f32)]> {
        let i = self.keys.binary_search(key).ok()?;
        Some(self.rows_of(self.heads[i]))
    }

    /// Every key in key order, with the key word [`RttTable::rows_of`]
    /// takes and its rows.
    pub fn groups(&self) -> impl Iterator<Item = (u32, &RttKey, &[(EdgeIdx, f32)])> {
        self.keys
            .iter()
            .zip(&self.heads)
            .map(|(key, &k)| (k, key, self.rows_of(k)))
    }

    /// Where row `i` of key `k` is stored, below [`RttTable::storage_len`]:
    /// data kept beside the rows (learned sample counts) is aligned by it.
    pub fn row_slot(k: u32, i: usize) -> usize {
        k as usize + 1 + i
    }

    /// The length of the row storage (rows and one header per key).
    pub fn storage_len(&self) -> usize {
        self.rows.len()
    }

    /// Key `k`'s rows, best first (by ms times the edge's bias factor).
    #[inline]
    pub fn rows_of(&self, k: u32) -> &[(EdgeIdx, f32)] {
        let k = k as usize;
        let n = usize::from(self.rows[k].0);
        &self.rows[k + 1..k + 1 + n]
    }

    fn ranges(&self, addr: IpAddr) -> (&Ranges, u128, u8) {
        match addr {
            IpAddr::V4(_) => (&self.v4, 1u128 << 96, 32),
            IpAddr::V6(_) => (&self.v6, 1, 128),
        }
    }

    /// Where `addr` falls in the prefix ranges; None when its family has
    /// no prefix rows.
    #[inline]
    pub fn at(&self, addr: IpAddr) -> Option<RttAt> {
        let (r, _, _) = self.ranges(addr);
        let i = r.find(aligned(addr))?;
        Some(RttAt {
            hit: hit_of(r.key(i)),
            span: Span::Range(i as u32),
        })
    }

    /// What [`RttTable::at`] gives for an IPv4 address whose prefix key
    /// word is `word`, known to the flattened table together with the
    /// `span` of addresses around it located alike (the range itself is
    /// looked up only if the scope needs it).
    #[inline]
    pub(super) fn at_piece(word: u32, span: (u32, u32)) -> RttAt {
        RttAt {
            hit: hit_of(word),
            span: Span::Piece(span.0, span.1),
        }
    }

    /// The IPv4 prefix ranges in address order: (first address, key word),
    /// tiling the space; empty without IPv4 prefix rows.
    pub(super) fn v4_ranges(&self) -> &[(u32, u32)] {
        &self.v4.starts4
    }

    /// The most specific prefix holding `addr`, if any.
    pub fn prefix(&self, addr: IpAddr) -> Option<RttHit> {
        self.at(addr)?.hit
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
        match self.at(addr) {
            Some(at) => self.narrow_scope_at(&at, addr, scope, false),
            None => scope,
        }
    }

    /// [`RttTable::narrow_scope`] for an address already located with
    /// [`RttTable::at`]. `in_network`: `scope` is at least the prefix of
    /// the database network the client was located in, so a flattened
    /// table's span serves for the range.
    #[inline(always)]
    pub fn narrow_scope_at(&self, at: &RttAt, addr: IpAddr, scope: u8, in_network: bool) -> u8 {
        // The client's block at `len` bits stays inside [lo, hi] once it
        // no longer holds the address before `lo` nor the one after `hi`:
        // once `len` exceeds the bits `a` shares with each of them.
        if let (Span::Piece(lo, hi), true, IpAddr::V4(a)) = (at.span, in_network, addr) {
            // The flattened table's span, in 32 bits: inline, as this is
            // per query.
            let a = u32::from(a);
            let beyond = |b: u32| (a ^ b).leading_zeros() as u8 + 1;
            let below = lo.checked_sub(1).map_or(0, beyond);
            let above = hi.checked_add(1).map_or(0, beyond);
            return scope.min(32).max(below).max(above).min(32);
        }
        self.narrow_scope_in_range(at, addr, scope)
    }

    /// [`RttTable::narrow_scope_at`] by the prefix range's own bounds.
    #[inline(never)]
    fn narrow_scope_in_range(&self, at: &RttAt, addr: IpAddr, scope: u8) -> u8 {
        let (r, step, width) = self.ranges(addr);
        if r.len() == 1 {
            return scope;
        }
        let range = match at.span {
            // An answer the database did not decide: the range's own bounds.
            Span::Piece(..) => r.find(aligned(addr)).unwrap_or(0),
            Span::Range(i) => i as usize,
        };
        let (lo, hi) = r.bounds(range, step);
        let a = aligned(addr);
        let beyond = |b: u128| (a ^ b).leading_zeros() as u8 + 1;
        let below = if lo > 0 { beyond(lo - step) } else { 0 };
        let above = hi.checked_add(step).map_or(0, beyond);
        scope.min(width).max(below).max(above).min(width)
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
        let (r, step, width) = t.ranges(addr);
        let Some(i) = r.find(aligned(addr)) else {
            return scope;
        };
        if r.len() == 1 {
            return scope;
        }
        let (lo, hi) = r.bounds(i, step);
        let a = aligned(addr);
        let mut len = scope.min(width);
        while len < width {
            let first = if len == 0 { 0 } else { a & !(u128::MAX >> len) };
            if first >= lo && last_of(first, len, width) <= hi {
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
