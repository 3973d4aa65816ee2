//! The GeoIP database's IPv4 networks and the RTT file's IPv4 prefixes
//! flattened into one table of address ranges, built with the snapshot, as
//! gdnsd flattens its nets and the GeoIP database into one tree at load.
//!
//! Without it an RTT-steered client costs two searches: the database's
//! tree walk for the place, then the RTT prefix ranges for the key. With
//! it, one range lookup gives both the record and the key, so steering by
//! measured RTT costs about what steering by distance does. Each range
//! also carries its key's first two rows (the fastest), which is all a
//! plain host reads when those edges are up: no third dependent read.

use super::EdgeIdx;
use super::rtt::{RttTable, bucket_index, hit_of};
use crate::geo::GeoDb;

/// "No record here" in [`Piece::record`] (the database has no data).
const NO_RECORD: u32 = u32::MAX;

/// Addresses `start..=end`: located alike by the database and by the RTT
/// prefixes. 32 bytes, aligned, so a lookup reads one line.
#[derive(Clone, Copy, Debug, PartialEq)]
#[repr(C, align(32))]
pub(super) struct Piece {
    start: u32,
    end: u32,
    /// The database record's index in `GeoDb::record_locations`, or
    /// [`NO_RECORD`].
    record: u32,
    /// The most specific RTT prefix's key word (as the prefix ranges keep
    /// it), or none.
    pub rtt: u32,
    /// The database network's prefix length (0 without a record).
    pub prefix: u8,
    /// How many rows the key has; the first two are `edges` and `ms`.
    pub rows: u16,
    pub edges: [EdgeIdx; 2],
    pub ms: [f32; 2],
}

const _: () = assert!(std::mem::size_of::<Piece>() == 32);

impl Piece {
    pub fn record(&self) -> Option<u32> {
        (self.record != NO_RECORD).then_some(self.record)
    }
}

/// The flattened IPv4 table of one (steering, database) pair.
pub struct Flat4 {
    /// [`GeoDb::id`] of the database it was built from.
    geo: u64,
    /// `bucket[b]`: the piece holding the first address of bucket `b` (the
    /// top `32 - shift` bits), and one more entry for the end.
    bucket: Box<[u32]>,
    shift: u32,
    pieces: Box<[Piece]>,
}

impl std::fmt::Debug for Flat4 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Flat4")
            .field("pieces", &self.pieces.len())
            .finish()
    }
}

impl Flat4 {
    /// The table for `rtt`'s IPv4 prefixes over `geo`'s IPv4 networks;
    /// `None` without IPv4 prefix rows or for a database whose records are
    /// not numbered (one paired with `geodb_asn:`).
    pub fn build(rtt: &RttTable, geo: &GeoDb) -> Option<Flat4> {
        let ranges = rtt.v4_ranges();
        if ranges.is_empty() {
            return None;
        }
        let mut pieces: Vec<Piece> = Vec::new();
        // (start, record, network length, key word); ends and rows come
        // after. Neighbouring prefix ranges never share a key word (they
        // are merged when made), so equal words mean the same range.
        let mut push = |p: (u32, u32, u8, u32)| match pieces.last() {
            // Same record, network length and range: one piece.
            Some(l) if (l.record, l.prefix, l.rtt) == (p.1, p.2, p.3) => {}
            _ => pieces.push(Piece {
                start: p.0,
                end: u32::MAX,
                record: p.1,
                rtt: p.3,
                prefix: p.2,
                rows: 0,
                edges: [0; 2],
                ms: [0.0; 2],
            }),
        };
        // Both tile the space in address order: walk them side by side.
        let mut j = 0usize;
        let whole = geo.v4_networks(|first, len, record| {
            let last = first | (u32::MAX.checked_shr(u32::from(len)).unwrap_or(0));
            let (record, prefix) = match record {
                Some(r) => (r, len),
                None => (NO_RECORD, 0),
            };
            while j + 1 < ranges.len() && ranges[j + 1].0 <= first {
                j += 1;
            }
            let mut start = first;
            loop {
                push((start, record, prefix, ranges[j].1));
                match ranges.get(j + 1) {
                    Some(&(next, _)) if next <= last => {
                        j += 1;
                        start = next;
                    }
                    _ => break,
                }
            }
        });
        if !whole || pieces.first().map(|p| p.start) != Some(0) {
            return None;
        }
        for i in 0..pieces.len() {
            let end = pieces.get(i + 1).map_or(u32::MAX, |n| n.start - 1);
            let p = &mut pieces[i];
            p.end = end;
            if let Some(hit) = hit_of(p.rtt) {
                let rows = rtt.rows_of(hit.key);
                // More than u16::MAX rows (edges) is read from the table.
                p.rows = rows.len().min(usize::from(u16::MAX)) as u16;
                for (k, &(e, ms)) in rows.iter().take(2).enumerate() {
                    (p.edges[k], p.ms[k]) = (e, ms);
                }
            }
        }
        // About a piece a bucket, at most 2^20 buckets (4 MiB).
        let bits = (pieces.len().next_power_of_two().trailing_zeros()).clamp(8, 20);
        let shift = 32 - bits;
        let bucket = bucket_index(pieces.len(), bits, |i| u128::from(pieces[i].start) << 96);
        Some(Flat4 {
            geo: geo.id(),
            bucket: crate::hugepage::boxed(&bucket),
            shift,
            pieces: crate::hugepage::boxed(&pieces),
        })
    }

    /// [`GeoDb::id`] of the database the record numbers belong to.
    pub fn geo(&self) -> u64 {
        self.geo
    }

    /// How many ranges the table holds.
    pub(super) fn len(&self) -> usize {
        self.pieces.len()
    }

    /// The piece holding `ip`, and its first and last address.
    #[inline]
    pub(super) fn find(&self, ip: u32) -> (&Piece, (u32, u32)) {
        let b = (ip >> self.shift) as usize;
        let (lo, hi) = (self.bucket[b] as usize, self.bucket[b + 1] as usize);
        // Most buckets hold a piece or two: walk them from the first, which
        // reads the line the answer is on; a crowded bucket is searched.
        let i = if hi - lo <= 4 {
            let mut i = lo;
            while self.pieces[i].end < ip {
                i += 1;
            }
            i
        } else {
            lo + self.pieces[lo..=hi].partition_point(|p| p.start <= ip) - 1
        };
        let p = &self.pieces[i];
        (p, (p.start, p.end))
    }
}
