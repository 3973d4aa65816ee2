//! The database's networks as address ranges: each family's leaves, in
//! address order, cut into ranges of one location and one prefix length
//! (neighbours alike are one range), so a lookup is one bucket read and a
//! short binary search over 16-bit keys, and the database file itself is
//! not kept.
//!
//! A range's value packs the [`LocId`] with the prefix length of the
//! database network the address is in, which an answer's ECS scope is
//! made of; an address the database does not locate is [`UNLOCATED`]
//! (its network does not matter: such an answer is scoped by the client's
//! own source prefix).

/// A location's number in [`super::GeoDb::locations`].
pub type LocId = u32;

/// A range value: a location id in the top 24 bits and the prefix length
/// of the database network in the low 8. Two ids are not locations:
/// [`NOWHERE`] (no data, or a record that says nothing we read: the
/// prefix is kept for a merge with an ASN database) and [`V4_AT`] (the
/// IPv4 subtree inside an IPv6 tree, reached after "prefix" bits).
pub(crate) type Value = u32;

/// The id of addresses the database does not locate.
pub(crate) const NOWHERE: LocId = (1 << 24) - 1;

/// The id of the IPv4 subtree (`::/96`) and its aliases in an IPv6 tree.
pub(crate) const V4_AT: LocId = (1 << 24) - 2;

/// A value the database does not locate, whatever its network.
pub(crate) const UNLOCATED: Value = value(NOWHERE, 0);

/// At most this many locations.
pub(crate) const MAX_LOCATIONS: usize = V4_AT as usize;

/// A range value.
pub(crate) const fn value(loc: LocId, prefix: u8) -> Value {
    loc << 8 | prefix as Value
}

/// What a value says: the location and the network's prefix length.
#[inline]
pub(crate) fn located(v: Value) -> Option<(LocId, u8)> {
    (v >> 8 < V4_AT).then_some((v >> 8, v as u8))
}

/// Where an IPv6 value hands over to the IPv4 subtree: after how many bits.
#[inline]
pub(crate) fn v4_at(v: Value) -> Option<u8> {
    (v >> 8 == V4_AT).then_some(v as u8)
}

/// An address family's key: the address as an unsigned integer.
pub(crate) trait Key: Copy + Ord + Default + std::fmt::Debug {
    const BITS: u32;
    const MAX: Self;
    fn to_u128(self) -> u128;
    fn from_u128(v: u128) -> Self;
}

impl Key for u32 {
    const BITS: u32 = 32;
    const MAX: u32 = u32::MAX;
    fn to_u128(self) -> u128 {
        u128::from(self)
    }
    fn from_u128(v: u128) -> Self {
        v as u32
    }
}

impl Key for u128 {
    const BITS: u32 = 128;
    const MAX: u128 = u128::MAX;
    fn to_u128(self) -> u128 {
        self
    }
    fn from_u128(v: u128) -> Self {
        v
    }
}

/// One family's ranges. Range `i` starts at its key and ends where range
/// `i + 1` starts; range 0 starts at address 0.
///
/// Keys are kept in buckets of the top `bits` address bits: `first[b]` is
/// the first range starting in bucket `b` or later, and a range's key is
/// its start's bits below the bucket. IPv4 takes 16 to 20 bucket bits, so
/// a key is 16 bits; IPv6, whose networks gather in a few /16s, takes
/// bucket bits from bit 0 and keeps 64-bit keys (the bits after the
/// bucket's), plus a full start for the rare range that starts at a
/// non-zero bit past 64 + bits.
pub(crate) struct Ranges<K: Key> {
    bits: u32,
    first: Box<[u32]>,
    keys: Keys,
    values: Box<[Value]>,
    /// Every range's full start, for tables whose ranges' bounds are read
    /// per query (a zone's nets and RTT prefixes narrow the ECS scope to
    /// them); the database's own tables keep only the keys.
    starts: Option<Box<[K]>>,
}

/// A family's range keys below the bucket bits.
enum Keys {
    /// IPv4: the 32 - bits (at most 16) bits below the bucket.
    Short(Vec<u16>),
    /// IPv6: the 64 bits below the bucket, and for the ranges starting at a
    /// non-zero bit further down, their full starts (sorted, with index).
    Long(Vec<u64>, Vec<(u32, u128)>),
}

impl<K: Key> std::fmt::Debug for Ranges<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ranges")
            .field("ranges", &self.values.len())
            .field("bits", &self.bits)
            .finish()
    }
}

/// Ranges as they are read from the tree, indexed as they come (starts
/// arrive in address order), so the table is built in its final, compact
/// form: no list of full addresses is held on the way.
pub(crate) struct Builder<K: Key> {
    bits: u32,
    /// `first[b]` for the buckets up to the last start's.
    first: Vec<u32>,
    keys: Keys,
    values: Vec<Value>,
    /// The last range's start, and the one's before it.
    last: Option<K>,
    prev: Option<K>,
    /// Full starts too ([`Ranges::starts`]).
    starts: Option<Vec<K>>,
}

impl<K: Key> Builder<K> {
    /// Room for `hint` ranges (an upper bound: pages past the ones written
    /// are never touched, so never resident), which also sizes the IPv4
    /// buckets (16 to 20 bits, about a range per bucket; IPv6 takes 16).
    pub(crate) fn with_capacity(hint: usize) -> Self {
        let bits = if K::BITS == 32 {
            (usize::BITS - hint.leading_zeros()).clamp(16, 20)
        } else {
            16
        };
        Builder {
            bits,
            first: Vec::with_capacity((1 << bits) + 1),
            keys: if K::BITS == 32 {
                Keys::Short(Vec::with_capacity(hint))
            } else {
                Keys::Long(Vec::with_capacity(hint), Vec::new())
            },
            values: Vec::with_capacity(hint),
            last: None,
            prev: None,
            starts: None,
        }
    }

    /// [`Builder::with_capacity`], keeping every range's full start, so
    /// [`Ranges::bounds`] is two reads.
    pub(crate) fn with_bounds(hint: usize) -> Self {
        Builder {
            starts: Some(Vec::with_capacity(hint)),
            ..Builder::with_capacity(hint)
        }
    }

    /// Appends the range starting at `start` (in address order, the first
    /// at 0), merged into the previous one when its value is the same; a
    /// range starting where the last one did replaces it.
    pub(crate) fn push(&mut self, start: K, value: Value) {
        if self.values.last() == Some(&value) {
            return;
        }
        if self.last == Some(start) {
            // The last range was empty (never from a tree; from a merge).
            self.pop();
            if self.values.last() == Some(&value) {
                return;
            }
        }
        let shift = K::BITS - self.bits;
        let a = start.to_u128();
        let b = (a >> shift) as usize;
        while self.first.len() <= b {
            self.first.push(self.values.len() as u32);
        }
        let low = a & ((1u128 << shift) - 1);
        match &mut self.keys {
            Keys::Short(k) => k.push(low as u16),
            Keys::Long(k, deep) => {
                let down = shift - 64;
                if low & ((1u128 << down) - 1) != 0 {
                    deep.push((self.values.len() as u32, a));
                }
                k.push((low >> down) as u64);
            }
        }
        self.values.push(value);
        if let Some(s) = &mut self.starts {
            s.push(start);
        }
        (self.prev, self.last) = (self.last, Some(start));
    }

    /// Drops the last range (the buckets' firsts that point at it then
    /// point at whatever comes next, as they should).
    fn pop(&mut self) {
        self.values.pop();
        if let Some(s) = &mut self.starts {
            s.pop();
        }
        let n = self.values.len() as u32;
        match &mut self.keys {
            Keys::Short(k) => {
                k.pop();
            }
            Keys::Long(k, deep) => {
                k.pop();
                if deep.last().is_some_and(|d| d.0 == n) {
                    deep.pop();
                }
            }
        }
        (self.last, self.prev) = (self.prev, None);
    }

    /// One range over the whole family, of `value`.
    pub(crate) fn empty(value: Value) -> Ranges<K> {
        let mut b = Builder::with_bounds(1);
        b.push(K::default(), value);
        b.finish()
    }

    /// The ranges, indexed.
    pub(crate) fn finish(mut self) -> Ranges<K> {
        assert!(!self.values.is_empty(), "ranges start at 0");
        assert_eq!(self.first.first(), Some(&0), "ranges start at 0");
        while self.first.len() <= 1 << self.bits {
            self.first.push(self.values.len() as u32);
        }
        // Exact sizes (untouched capacity was never resident, but the
        // allocator would keep it).
        let keys = match self.keys {
            Keys::Short(mut k) => {
                k.shrink_to_fit();
                Keys::Short(k)
            }
            Keys::Long(mut k, mut d) => {
                k.shrink_to_fit();
                d.shrink_to_fit();
                Keys::Long(k, d)
            }
        };
        Ranges {
            bits: self.bits,
            first: self.first.into_boxed_slice(),
            keys,
            values: self.values.into_boxed_slice(),
            starts: self.starts.map(Vec::into_boxed_slice),
        }
    }
}

impl<K: Key> Ranges<K> {
    /// How many ranges.
    pub(crate) fn len(&self) -> usize {
        self.values.len()
    }

    /// The index of the range holding `a`. Always inlined: it is read once
    /// or twice a query, and as a call its register saves were a quarter
    /// of its cost (callgrind, `bench/profile.sh ecs`).
    #[inline(always)]
    pub(crate) fn find(&self, a: K) -> usize {
        // Ranges starting in the address's bucket at or before it; none
        // means the range started in an earlier bucket.
        match &self.keys {
            Keys::Short(k) => {
                // IPv4 in 32-bit arithmetic (the key type is u32).
                let a = a.to_u128() as u32;
                let shift = 32 - self.bits;
                let b = (a >> shift) as usize;
                let (lo, hi) = (self.first[b] as usize, self.first[b + 1] as usize);
                let l = (a & ((1 << shift) - 1)) as u16;
                let keys = &k[lo..hi];
                // Most buckets hold a range or two: a scan reads the one
                // line the binary search would.
                let n = if keys.len() <= 8 {
                    keys.iter().take_while(|&&x| x <= l).count()
                } else {
                    keys.partition_point(|&x| x <= l)
                };
                lo + n - 1
            }
            Keys::Long(k, deep) => self.find_long(k, deep, a.to_u128()),
        }
    }

    /// [`Ranges::find`] over 64-bit keys (IPv6).
    fn find_long(&self, k: &[u64], deep: &[(u32, u128)], a: u128) -> usize {
        let shift = K::BITS - self.bits;
        let b = (a >> shift) as usize;
        let (lo, hi) = (self.first[b] as usize, self.first[b + 1] as usize);
        let low = a & ((1u128 << shift) - 1);
        let down = shift - 64;
        let l = (low >> down) as u64;
        let mut i = lo + k[lo..hi].partition_point(|&x| x <= l);
        // A range that starts inside the address's 64-bit key block but
        // after the address itself: step back over such.
        while i > lo && k[i - 1] == l && !deep.is_empty() {
            match deep.get(deep.partition_point(|&(j, _)| (j as usize) < i - 1)) {
                Some(&(j, s)) if j as usize == i - 1 && s > a => i -= 1,
                _ => break,
            }
        }
        i - 1
    }

    /// The value of the range holding `a`.
    #[inline]
    pub(crate) fn get(&self, a: K) -> Value {
        self.values[self.find(a)]
    }

    /// Range `i`'s start: a read when the full starts are kept (the
    /// overlay's, read for every ECS scope), else a search for its bucket.
    #[inline]
    pub(crate) fn start(&self, i: usize) -> K {
        match &self.starts {
            Some(s) => s[i],
            None => self.start_of_bucket(i),
        }
    }

    /// [`Ranges::start`] without the full starts: the bucket is found
    /// from `first`. Out of line so the read above inlines.
    #[inline(never)]
    fn start_of_bucket(&self, i: usize) -> K {
        let shift = K::BITS - self.bits;
        // The bucket is the last whose first range is at or before `i`.
        let b = self.first.partition_point(|&f| f as usize <= i) - 1;
        let high = (b as u128) << shift;
        match &self.keys {
            Keys::Short(k) => K::from_u128(high | u128::from(k[i])),
            Keys::Long(k, deep) => {
                let at = deep.partition_point(|&(j, _)| (j as usize) < i);
                match deep.get(at) {
                    Some(&(j, s)) if j as usize == i => K::from_u128(s),
                    _ => K::from_u128(high | u128::from(k[i]) << (shift - 64)),
                }
            }
        }
    }

    /// Range `i`'s value.
    #[inline]
    pub(crate) fn value(&self, i: usize) -> Value {
        self.values[i]
    }

    /// Range `i`'s first and last address.
    #[inline]
    pub(crate) fn bounds(&self, i: usize) -> (K, K) {
        let last = if i + 1 < self.len() {
            K::from_u128(self.start(i + 1).to_u128() - 1)
        } else {
            K::MAX
        };
        (self.start(i), last)
    }

    /// Every range as (start, value), in address order.
    #[cfg(test)]
    pub(crate) fn iter(&self) -> impl Iterator<Item = (K, Value)> + '_ {
        (0..self.len()).map(|i| (self.start(i), self.values[i]))
    }

    /// Bytes held, for logs.
    pub(crate) fn bytes(&self) -> usize {
        let keys = match &self.keys {
            Keys::Short(k) => k.len() * 2,
            Keys::Long(k, d) => k.len() * 8 + d.len() * 32,
        };
        self.first.len() * 4 + keys + self.values.len() * 4
    }
}

/// Ranges from nested prefixes: each address gets the value of the most
/// specific prefix holding it, `none` outside them all. `prefixes` are
/// (network, prefix length, value), sorted by network then length
/// (parents first); of two equal networks the first counts.
pub(crate) fn from_prefixes<K: Key>(prefixes: &[(K, u8, Value)], none: Value) -> Ranges<K> {
    let mut b = Builder::with_bounds(2 * prefixes.len() + 1);
    b.push(K::default(), none);
    // Open prefixes: (network, length, last address, value).
    let mut open: Vec<(K, u8, K, Value)> = Vec::new();
    let last_of = |start: K, len: u8| {
        let host = K::BITS - u32::from(len).min(K::BITS);
        let low = if host >= 128 {
            u128::MAX
        } else {
            (1u128 << host) - 1
        };
        K::from_u128(start.to_u128() | low)
    };
    let close = |open: &mut Vec<(K, u8, K, Value)>, before: Option<K>, b: &mut Builder<K>| {
        while let Some(&(_, _, end, _)) = open.last() {
            if before.is_some_and(|s| end >= s) {
                break;
            }
            open.pop();
            let parent = open.last().map_or(none, |t| t.3);
            if end < K::MAX {
                b.push(K::from_u128(end.to_u128() + 1), parent);
            }
        }
    };
    for &(start, len, v) in prefixes {
        close(&mut open, Some(start), &mut b);
        if open.last().is_some_and(|t| (t.0, t.1) == (start, len)) {
            continue;
        }
        open.push((start, len, last_of(start, len), v));
        b.push(start, v);
    }
    close(&mut open, None, &mut b);
    b.finish()
}

/// The ranges of two tables of one family together, cut where either
/// changes: `f(start, value of a, value of b)` for each piece, in order.
pub(crate) fn overlay<K: Key>(a: &Ranges<K>, b: &Ranges<K>, mut f: impl FnMut(K, Value, Value)) {
    let (mut i, mut j) = (0usize, 0usize);
    let (na, nb) = (a.len(), b.len());
    let start_a = |i: usize| (i < na).then(|| a.start(i));
    let start_b = |j: usize| (j < nb).then(|| b.start(j));
    let (mut next_a, mut next_b) = (start_a(1), start_b(1));
    let mut at = K::default();
    loop {
        f(at, a.values[i], b.values[j]);
        // The next boundary of either.
        let next = match (next_a, next_b) {
            (None, None) => return,
            (Some(x), None) => x,
            (None, Some(y)) => y,
            (Some(x), Some(y)) => x.min(y),
        };
        if next_a == Some(next) {
            i += 1;
            next_a = start_a(i + 1);
        }
        if next_b == Some(next) {
            j += 1;
            next_b = start_b(j + 1);
        }
        at = next;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build<K: Key>(ranges: &[(K, Value)]) -> Ranges<K> {
        let mut b = Builder::with_capacity(ranges.len());
        for &(s, v) in ranges {
            b.push(s, v);
        }
        b.finish()
    }

    /// The same ranges with their starts kept: the same answers and bounds.
    fn check_bounded<K: Key>(t: &Ranges<K>, ranges: &[(K, Value)]) {
        let mut b = Builder::with_bounds(ranges.len());
        for &(s, v) in ranges {
            b.push(s, v);
        }
        let bt = b.finish();
        assert!(bt.starts.is_some() && t.starts.is_none());
        for i in (0..t.len()).step_by(1 + t.len() / 3000) {
            assert_eq!(bt.bounds(i), t.bounds(i), "range {i}");
            let (lo, hi) = t.bounds(i);
            assert_eq!((bt.find(lo), bt.find(hi)), (i, i));
        }
    }

    /// The range of `a` by definition: the last start at or before it.
    fn reference<K: Key>(ranges: &[(K, Value)], a: K) -> Value {
        ranges[ranges.partition_point(|r| r.0 <= a) - 1].1
    }

    fn rng(seed: u64) -> impl FnMut() -> u64 {
        let mut x = seed;
        move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        }
    }

    #[test]
    fn v4_lookups_match_the_definition() {
        let mut next = rng(0x2545_F491_4F6C_DD1D);
        for round in 0..30 {
            let n = 1 + (next() % if round % 3 == 0 { 100_000 } else { 300 }) as usize;
            let mut starts: Vec<u32> = (0..n).map(|_| next() as u32).collect();
            // Crowd some into one bucket and at its edges.
            starts.extend((0..50).map(|i| 0x0A0B_0000 + i * 3));
            starts.extend([0x0A0C_0000, 0x0A0B_FFFF, u32::MAX]);
            starts.push(0);
            starts.sort();
            starts.dedup();
            let ranges: Vec<(u32, Value)> = starts
                .iter()
                .enumerate()
                .map(|(i, &s)| (s, i as Value))
                .collect();
            let t = build(&ranges);
            for &(s, _) in ranges.iter().take(2000) {
                for a in [s, s.wrapping_sub(1), s.wrapping_add(1)] {
                    assert_eq!(t.get(a), reference(&ranges, a), "{a:#x}");
                }
            }
            for _ in 0..2000 {
                let a = next() as u32;
                assert_eq!(t.get(a), reference(&ranges, a), "{a:#x}");
            }
            let back: Vec<(u32, Value)> = t.iter().collect();
            assert_eq!(back, ranges);
            check_bounded(&t, &ranges);
        }
    }

    #[test]
    fn v6_lookups_match_the_definition_deep_starts_included() {
        let mut next = rng(7);
        for _ in 0..30 {
            let mut starts: Vec<u128> = Vec::new();
            for _ in 0..1 + next() % 500 {
                let top = [0x2001u128, 0x2a00, 0x2400, 0x2600][(next() % 4) as usize];
                let len = (next() % 129) as u32;
                let a = top << 112 | u128::from(next()) << 48 | u128::from(next());
                starts.push(if len == 0 {
                    0
                } else {
                    a & (u128::MAX << (128 - len))
                });
            }
            // Host routes: starts past bit 80 (16 bucket bits + 64).
            let h = 0x2a00_0001_0002_0003_0004_0000_0000_0000u128;
            starts.extend([h, h | 1, h | 0x8000, h | 0xFFFF_FFFF, h + (1 << 47)]);
            starts.push(0);
            starts.sort();
            starts.dedup();
            let ranges: Vec<(u128, Value)> = starts
                .iter()
                .enumerate()
                .map(|(i, &s)| (s, i as Value))
                .collect();
            let t = build(&ranges);
            for &(s, _) in &ranges {
                for a in [s, s.wrapping_sub(1), s.wrapping_add(1), s | 0xFF] {
                    assert_eq!(t.get(a), reference(&ranges, a), "{a:#x}");
                }
            }
            for _ in 0..2000 {
                let a = u128::from(next()) << 64 | u128::from(next());
                assert_eq!(t.get(a), reference(&ranges, a), "{a:#x}");
            }
            let back: Vec<(u128, Value)> = t.iter().collect();
            assert_eq!(back, ranges);
            check_bounded(&t, &ranges);
        }
    }

    #[test]
    fn prefixes_flatten_most_specific_first() {
        let p = |s: &str| {
            let n: ipnet::Ipv4Net = s.parse().unwrap();
            (u32::from(n.network()), n.prefix_len())
        };
        let list = [
            (p("0.0.0.0/0"), 1),
            (p("10.0.0.0/8"), 2),
            (p("10.0.0.0/8"), 9),
            (p("10.1.0.0/16"), 3),
            (p("10.1.2.0/24"), 4),
            (p("10.1.3.0/24"), 3),
            (p("255.255.255.255/32"), 5),
        ];
        let prefixes: Vec<(u32, u8, Value)> = list.iter().map(|&((a, l), v)| (a, l, v)).collect();
        let t = from_prefixes(&prefixes, 0);
        let at = |s: &str| t.get(u32::from(s.parse::<std::net::Ipv4Addr>().unwrap()));
        assert_eq!(at("9.0.0.1"), 1);
        assert_eq!(at("10.0.0.1"), 2, "the first of two equal networks");
        assert_eq!(at("10.1.0.1"), 3);
        assert_eq!(at("10.1.2.1"), 4);
        // 10.1.3.0/24 says what its parent says: one range with it.
        assert_eq!(at("10.1.3.1"), 3);
        assert_eq!(at("10.2.0.0"), 2);
        assert_eq!(at("255.255.255.254"), 1);
        assert_eq!(at("255.255.255.255"), 5);
        let i = t.find(u32::from(std::net::Ipv4Addr::new(10, 1, 3, 1)));
        assert_eq!(t.bounds(i), (0x0A01_0300, 0x0A01_FFFF));
        let none = from_prefixes::<u128>(&[], 7);
        assert_eq!((none.len(), none.get(12345)), (1, 7));
    }

    #[test]
    fn builder_merges_neighbours_alike() {
        let mut b = Builder::<u32>::with_capacity(8);
        for (s, v) in [(0, 1), (10, 1), (20, 2), (30, 2), (40, 1)] {
            b.push(s, v);
        }
        let t = b.finish();
        assert_eq!(t.iter().collect::<Vec<_>>(), vec![(0, 1), (20, 2), (40, 1)]);
    }

    #[test]
    fn overlay_cuts_where_either_changes() {
        let a = build(&[(0u32, 1), (100, 2), (200, 3)]);
        let b = build(&[(0u32, 7), (150, 8), (200, 9), (250, 7)]);
        let mut got = Vec::new();
        overlay(&a, &b, |s, x, y| got.push((s, x, y)));
        assert_eq!(
            got,
            vec![
                (0, 1, 7),
                (100, 2, 7),
                (150, 2, 8),
                (200, 3, 9),
                (250, 3, 7)
            ]
        );
    }

    #[test]
    fn values_pack_location_and_prefix() {
        assert_eq!(located(value(12345, 24)), Some((12345, 24)));
        assert_eq!(
            located(value(MAX_LOCATIONS as LocId - 1, 128)),
            Some((MAX_LOCATIONS as LocId - 1, 128))
        );
        assert_eq!(located(UNLOCATED), None);
        assert_eq!(located(value(NOWHERE, 20)), None);
        assert_eq!(located(value(V4_AT, 96)), None);
        assert_eq!(v4_at(value(V4_AT, 96)), Some(96));
        assert_eq!(v4_at(value(7, 96)), None);
    }
}
