//! The table of pre-rendered answers a snapshot carries: data only.
//! [`crate::dns::fast`] fills it when a snapshot is built (by answering
//! every (name, type) once through the general path) and reads it; the
//! NXDOMAIN and NODATA answers of each zone come from [`crate::dns::negative`].

use std::sync::Arc;

use super::zone::Zone;
use crate::steer::Family;
use crate::wire::Rcode;
use crate::zone::tree::NameHasher;
use std::hash::Hasher;

/// The sections after the question, rendered once.
#[derive(Debug)]
pub(crate) struct Static {
    pub(crate) rcode: Rcode,
    pub(crate) aa: bool,
    /// Answer, authority and additional counts (without our OPT).
    pub(crate) counts: [u16; 3],
    pub(crate) body: Box<[u8]>,
    /// The zone is signed: DO=1 queries get `secure`, or the general path.
    pub(crate) signed: bool,
    /// The DO=1 answer with its RRSIGs (and NSEC for NODATA).
    pub(crate) secure: Option<Box<Secure>>,
}

/// A signed pre-rendered answer.
#[derive(Debug)]
pub(crate) struct Secure {
    pub(crate) rcode: Rcode,
    pub(crate) aa: bool,
    pub(crate) counts: [u16; 3],
    pub(crate) body: Box<[u8]>,
    /// Unix time from which the general path answers instead: when the
    /// signature cache would make its RRSIGs again.
    pub(crate) fresh_until: u64,
}

/// What the table holds for one (name, type).
#[derive(Debug)]
pub(crate) enum Entry {
    Static(Static),
    /// A or AAAA of a steered name, asked directly (not through a CNAME).
    Steered {
        zone: Arc<Zone>,
        host: u32,
        family: Family,
    },
}

/// A zone's pre-rendered NXDOMAIN/NODATA sections after the question (its
/// SOA with the negative TTL), filled by [`crate::dns::negative::build`].
#[derive(Debug)]
pub(crate) struct Negative {
    pub(crate) zone: Arc<Zone>,
    /// `*.<apex>` exists: no name directly below the apex is NXDOMAIN.
    pub(crate) apex_wildcard: bool,
    /// As rendered behind a dummy question.
    pub(crate) tail: Box<[u8]>,
    /// Compression pointers in `tail`: (offset, target minus the question
    /// name's length), as the question's apex and the tail both move with it.
    pub(crate) patch: Box<[(u16, u16)]>,
    /// Longest question (in labels) whose pointers come out the same.
    pub(crate) max_labels: u8,
    /// Lowercased suffixes of MNAME and RNAME below the apex: a question
    /// ending in one would be compressed against, so it is not answered here.
    pub(crate) below_apex: Box<[Box<[u8]>]>,
    /// The zone's names, as a one-hash Bloom filter.
    pub(crate) names: NameFilter,
}

/// A set of names that can say "certainly not in it" without a hash-table
/// probe: one bit per hash, 16 bits per name (about 6% false positives).
/// A flood's names are all new, so the negative path's tree lookup of the
/// query name is skipped for ~94% of them; a "maybe" still asks the tree.
#[derive(Debug)]
pub(crate) struct NameFilter {
    bits: Box<[u64]>,
}

impl NameFilter {
    pub(crate) fn new<'a>(names: impl ExactSizeIterator<Item = &'a [u8]>) -> NameFilter {
        let words = (names.len() * 16).div_ceil(64).max(1).next_power_of_two();
        let mut bits = vec![0u64; words].into_boxed_slice();
        for name in names {
            let b = key_hash(name) as usize & (words * 64 - 1);
            bits[b / 64] |= 1 << (b % 64);
        }
        NameFilter { bits }
    }

    /// False if `name` is certainly not one of the names.
    #[inline(always)]
    pub(crate) fn may_contain(&self, name: &[u8]) -> bool {
        let b = key_hash(name) as usize & (self.bits.len() * 64 - 1);
        self.bits[b / 64] & (1 << (b % 64)) != 0
    }
}

/// [`Negative`]s by lowercased apex, one entry for each zone of the
/// snapshot, so the closest enclosing zone is found here as
/// [`super::Snapshot::find_zone`] finds it.
#[derive(Debug, Default)]
pub(crate) struct Negatives {
    pub(crate) by_apex: KeyTable<Option<Negative>>,
    /// Shortest and longest apex, as the snapshot keeps them.
    pub(crate) apex_len: (usize, usize),
}

impl Negatives {
    /// The entry of the closest enclosing zone of a lowercased wire name:
    /// the walk of [`super::Snapshot::find_zone`] over the same apexes.
    #[inline]
    pub(crate) fn find(&self, qname: &[u8]) -> Option<&Option<Negative>> {
        super::zone::closest_suffix(qname, self.apex_len, |s| self.by_apex.get(s))
    }
}

/// Pre-rendered answers of one snapshot, keyed by lowercased wire name
/// followed by the big-endian query type.
#[derive(Debug, Default)]
pub struct FastTable {
    pub(crate) map: KeyTable<Entry>,
    /// Negative answers of every zone (`None`: they are left to the
    /// general path).
    pub(crate) negative: Negatives,
    /// Bytes held by static bodies, for the status API and tests.
    pub bytes: usize,
}

impl FastTable {
    /// Number of pre-rendered (name, type) pairs.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

/// A hash table from byte keys (lowercased wire names, with or without a
/// query type) to values, built once with the snapshot and then only read:
/// every query probes it at least once, and a random-subdomain flood
/// misses it every time.
///
/// Open addressing with linear probing in a slot array at most half full,
/// so a miss usually ends at the first empty slot. A slot holds 32 bits of
/// the hash, the key's length and where its bytes are in one shared
/// buffer: a probe compares the tag and length before touching the key,
/// and the key compare is inlined (no `memcmp` call). The hash is
/// [`key_hash`], [`NameHasher`]'s mixing over the key bytes alone. As with
/// [`NameHasher`], only operator data is ever inserted, so a client's names
/// can only probe.
pub(crate) struct KeyTable<V> {
    slots: Box<[Slot]>,
    /// Every key, back to back.
    keys: Box<[u8]>,
    values: Box<[V]>,
}

/// One slot of a [`KeyTable`]; `value == EMPTY` marks a free one.
#[derive(Clone, Copy, Debug)]
struct Slot {
    tag: u32,
    len: u32,
    key_at: u32,
    value: u32,
}

const EMPTY: u32 = u32::MAX;

impl Slot {
    const FREE: Slot = Slot {
        tag: 0,
        len: 0,
        key_at: 0,
        value: EMPTY,
    };
}

impl<V> Default for KeyTable<V> {
    fn default() -> Self {
        KeyTable::new(std::iter::empty::<(&[u8], V)>())
    }
}

impl<V: std::fmt::Debug> std::fmt::Debug for KeyTable<V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

/// The hash of a key: [`NameHasher`]'s mixing, fed the length and then
/// eight bytes at a time, the last word overlapping the one before (a key
/// is then always hashed the same way, and the loop has no tail). Inlined:
/// through `Hasher::write` it was a call of ~70 instructions per query.
#[inline(always)]
pub(crate) fn key_hash(key: &[u8]) -> u64 {
    let mut h = NameHasher::default();
    let n = key.len();
    h.add(n as u64);
    if n >= 8 {
        let mut at = 0;
        loop {
            let i = at.min(n - 8);
            h.add(u64::from_le_bytes(
                key[i..i + 8].try_into().expect("8 bytes"),
            ));
            if i == n - 8 {
                break;
            }
            at += 8;
        }
    } else if n >= 4 {
        let lo = u32::from_le_bytes(key[..4].try_into().expect("4 bytes"));
        let hi = u32::from_le_bytes(key[n - 4..].try_into().expect("4 bytes"));
        h.add(u64::from(lo) | u64::from(hi) << 32);
    } else {
        h.add(key.iter().rev().fold(0u64, |w, &b| w << 8 | u64::from(b)));
    }
    h.finish()
}

/// `a == b` for slices of the same length, eight bytes at a time (the
/// last word may overlap the one before), without a `memcmp` call.
#[inline(always)]
pub(crate) fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    let n = a.len();
    debug_assert_eq!(n, b.len());
    if n < 8 {
        return a.iter().zip(b).all(|(x, y)| x == y);
    }
    let word = |s: &[u8], at: usize| u64::from_ne_bytes(s[at..at + 8].try_into().expect("8 bytes"));
    let mut at = 0;
    loop {
        let i = at.min(n - 8);
        if word(a, i) != word(b, i) {
            return false;
        }
        if i == n - 8 {
            return true;
        }
        at += 8;
    }
}

/// Distinct keys and their values gathered for a [`KeyTable`], the keys
/// back to back in one buffer (as the table keeps them).
pub(crate) struct KeyArena<V> {
    keys: Vec<u8>,
    /// Where each key ends in `keys`.
    ends: Vec<u32>,
    values: Vec<V>,
}

impl<V> KeyArena<V> {
    pub(crate) fn with_capacity(n: usize) -> Self {
        KeyArena {
            keys: Vec::with_capacity(n * 16),
            ends: Vec::with_capacity(n),
            values: Vec::with_capacity(n),
        }
    }

    /// Adds the key made of `parts`, one after the other.
    pub(crate) fn push(&mut self, parts: &[&[u8]], value: V) {
        for p in parts {
            self.keys.extend_from_slice(p);
        }
        self.ends.push(self.keys.len() as u32);
        self.values.push(value);
    }

    /// The table of these keys (which must be distinct).
    pub(crate) fn into_table(self) -> KeyTable<V> {
        let size = (self.values.len() * 2).max(1).next_power_of_two();
        let mut slots = vec![Slot::FREE; size];
        let mut start = 0u32;
        for (i, &end) in self.ends.iter().enumerate() {
            let key = &self.keys[start as usize..end as usize];
            let h = key_hash(key);
            let mut at = h as usize & (size - 1);
            while slots[at].value != EMPTY {
                at = (at + 1) & (size - 1);
            }
            slots[at] = Slot {
                tag: (h >> 32) as u32,
                len: end - start,
                key_at: start,
                value: i as u32,
            };
            start = end;
        }
        KeyTable {
            slots: slots.into_boxed_slice(),
            keys: self.keys.into_boxed_slice(),
            values: self.values.into_boxed_slice(),
        }
    }
}

impl<V> KeyTable<V> {
    /// Builds the table from distinct keys.
    pub(crate) fn new<K: AsRef<[u8]>>(entries: impl IntoIterator<Item = (K, V)>) -> Self {
        let entries = entries.into_iter();
        let mut arena = KeyArena::with_capacity(entries.size_hint().0);
        for (key, value) in entries {
            arena.push(&[key.as_ref()], value);
        }
        arena.into_table()
    }

    /// The value of `key`.
    #[inline(always)]
    pub(crate) fn get(&self, key: &[u8]) -> Option<&V> {
        let h = key_hash(key);
        let mask = self.slots.len() - 1;
        let tag = (h >> 32) as u32;
        let mut i = h as usize & mask;
        loop {
            let s = self.slots[i];
            if s.value == EMPTY {
                return None;
            }
            if s.tag == tag && s.len as usize == key.len() {
                let at = s.key_at as usize;
                if same_bytes(&self.keys[at..at + key.len()], key) {
                    return Some(&self.values[s.value as usize]);
                }
            }
            i = (i + 1) & mask;
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.values.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// Every (key, value), in slot order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&[u8], &V)> {
        self.slots.iter().filter(|s| s.value != EMPTY).map(|s| {
            let at = s.key_at as usize;
            (
                &self.keys[at..at + s.len as usize],
                &self.values[s.value as usize],
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_table_finds_every_key_and_nothing_else() {
        for n in [0usize, 1, 2, 7, 100, 1000] {
            let keys: Vec<Vec<u8>> = (0..n)
                .map(|i| {
                    let len = i % 40;
                    (0..len)
                        .map(|j| (i * 31 + j * 7) as u8)
                        .chain([(i >> 8) as u8, i as u8])
                        .collect()
                })
                .collect();
            let t = KeyTable::new(
                keys.iter()
                    .enumerate()
                    .map(|(i, k)| (k.clone().into_boxed_slice(), i)),
            );
            assert_eq!(t.len(), n);
            for (i, k) in keys.iter().enumerate() {
                assert_eq!(t.get(k), Some(&i), "{k:?}");
                // Same length, one byte different, at every position.
                for p in 0..k.len() {
                    let mut other = k.clone();
                    other[p] ^= 0x40;
                    if !keys.contains(&other) {
                        assert_eq!(t.get(&other), None);
                    }
                }
                let mut longer = k.clone();
                longer.push(0);
                if !keys.contains(&longer) {
                    assert_eq!(t.get(&longer), None);
                }
            }
            assert_eq!(t.iter().count(), n);
        }
    }

    #[test]
    fn name_filter_never_forgets_a_name() {
        let names: Vec<Vec<u8>> = (0..5000u32)
            .map(|i| format!("\x05h{i:04}\x03cdn\x07example\x00").into_bytes())
            .collect();
        let f = NameFilter::new(names.iter().map(|n| &n[..]));
        assert!(names.iter().all(|n| f.may_contain(n)));
        // About 1/16 of other names pass; far from all of them.
        let others = (0..5000u32)
            .filter(|i| f.may_contain(format!("\x05x{i:04}\x03cdn\x07example\x00").as_bytes()))
            .count();
        assert!(others < 1000, "{others} false positives in 5000");
        assert!(!NameFilter::new(std::iter::empty()).may_contain(b"\x00"));
    }
}
