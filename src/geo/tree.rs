//! A faster walk of the MaxMind search tree: a 16-bit stride table per
//! family jumps over the first 16 levels in one lookup.
//!
//! A lookup is a chain of dependent memory reads, one per prefix bit. In a
//! database of millions of networks the upper levels are shared and stay in
//! cache, but the chain is still 24 reads for an IPv4 /24 and 48 for an
//! IPv6 /48. The tables (two × 64 Ki entries × 8 bytes, 1 MiB) replace the
//! first 16 reads with one, built once at open. Records keep maxminddb's
//! meaning, so data offsets match [`maxminddb::LookupResult::offset`].

use std::sync::Arc;

/// Where a walk ended: a data offset and the prefix length that led there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Walk {
    /// Offset in the data section, or `None` for "no data here".
    pub offset: Option<usize>,
    /// Bits consumed, in the looked-up address's family.
    pub prefix: u8,
}

/// One stride entry: the node (or record) after `depth` bits.
#[derive(Clone, Copy, Debug)]
struct Entry {
    node: u32,
    depth: u8,
}

/// The tree of one opened database, read through the same bytes the
/// maxminddb reader holds.
pub(crate) struct Tree<B: AsRef<[u8]>> {
    bytes: Arc<B>,
    node_count: usize,
    record_size: u16,
    v4: Box<[Entry]>,
    /// Empty for IPv4-only databases.
    v6: Box<[Entry]>,
}

impl<B: AsRef<[u8]>> Tree<B> {
    /// Builds the stride tables. The tree must already be verified (every
    /// record points inside the tree, at "no data", or into the data
    /// section), as [`super::reader`] does before calling this.
    pub(crate) fn new(
        bytes: Arc<B>,
        node_count: u32,
        record_size: u16,
        ip_version: u16,
    ) -> Tree<B> {
        let mut t = Tree {
            bytes,
            node_count: node_count as usize,
            record_size,
            v4: Box::new([]),
            v6: Box::new([]),
        };
        // IPv4 lives under ::/96 in an IPv6 tree.
        let v4_start = if ip_version == 6 {
            let mut node = 0usize;
            for _ in 0..96 {
                if node >= t.node_count {
                    break;
                }
                node = t.read(node, 0);
            }
            node
        } else {
            0
        };
        t.v4 = t.stride(v4_start);
        if ip_version == 6 {
            t.v6 = t.stride(0);
        }
        t
    }

    fn stride(&self, start: usize) -> Box<[Entry]> {
        (0..1u32 << 16)
            .map(|i| {
                let mut node = start;
                let mut depth = 0u8;
                while depth < 16 && node < self.node_count {
                    node = self.read(node, ((i >> (15 - depth)) & 1) as usize);
                    depth += 1;
                }
                Entry {
                    node: node as u32,
                    depth,
                }
            })
            .collect()
    }

    #[inline(always)]
    fn read(&self, node: usize, bit: usize) -> usize {
        let buf = self.bytes.as_ref().as_ref();
        match self.record_size {
            24 => {
                let o = node * 6 + bit * 3;
                (usize::from(buf[o]) << 16)
                    | (usize::from(buf[o + 1]) << 8)
                    | usize::from(buf[o + 2])
            }
            28 => {
                let o = node * 7;
                let mid = usize::from(buf[o + 3]);
                if bit == 0 {
                    ((mid & 0xF0) << 20)
                        | (usize::from(buf[o]) << 16)
                        | (usize::from(buf[o + 1]) << 8)
                        | usize::from(buf[o + 2])
                } else {
                    ((mid & 0x0F) << 24)
                        | (usize::from(buf[o + 4]) << 16)
                        | (usize::from(buf[o + 5]) << 8)
                        | usize::from(buf[o + 6])
                }
            }
            _ => {
                let o = node * 8 + bit * 4;
                u32::from_be_bytes([buf[o], buf[o + 1], buf[o + 2], buf[o + 3]]) as usize
            }
        }
    }

    #[inline]
    fn finish(&self, node: usize, prefix: u8) -> Walk {
        // node == node_count means "no data"; above it, a pointer past the
        // 16-byte separator into the data section.
        let offset = node.checked_sub(self.node_count + 16);
        Walk { offset, prefix }
    }

    /// Walks an IPv4 address (in the IPv4 subtree of an IPv6 database).
    #[inline]
    pub(crate) fn v4(&self, ip: u32) -> Walk {
        let e = self.v4[(ip >> 16) as usize];
        let (mut node, mut depth) = (e.node as usize, e.depth);
        while depth < 32 && node < self.node_count {
            node = self.read(node, ((ip >> (31 - depth)) & 1) as usize);
            depth += 1;
        }
        self.finish(node, depth)
    }

    /// Walks an IPv6 address; `None` for an IPv4-only database.
    #[inline]
    pub(crate) fn v6(&self, ip: u128) -> Option<Walk> {
        let e = *self.v6.get((ip >> 112) as usize)?;
        let (mut node, mut depth) = (e.node as usize, e.depth);
        while depth < 128 && node < self.node_count {
            node = self.read(node, ((ip >> (127 - depth)) & 1) as usize);
            depth += 1;
        }
        Some(self.finish(node, depth))
    }
}
