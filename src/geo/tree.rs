//! A faster walk of the MaxMind search tree: a stride table per family
//! jumps over the first 16 levels (20 for IPv4 in a big tree) in one lookup.
//!
//! A lookup is a chain of dependent memory reads, one per prefix bit. In a
//! database of millions of networks the upper levels are shared and stay in
//! cache, but the chain is still 24 reads for an IPv4 /24 and 48 for an
//! IPv6 /48. The tables (64 Ki entries × 8 bytes per family, or 1 Mi
//! entries, 8 MiB, for IPv4 in a big tree) replace the first 16 (20) reads
//! with one, built once at open. Records keep maxminddb's
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

/// An address as the walk reads it: one bit per level, most significant first.
trait Address: Copy {
    const BITS: u8;
    fn bit(self, depth: u8) -> usize;
}

impl Address for u32 {
    const BITS: u8 = 32;
    #[inline(always)]
    fn bit(self, depth: u8) -> usize {
        ((self >> (31 - depth)) & 1) as usize
    }
}

impl Address for u128 {
    const BITS: u8 = 128;
    #[inline(always)]
    fn bit(self, depth: u8) -> usize {
        ((self >> (127 - depth)) & 1) as usize
    }
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
    /// IPv4 entries, one per prefix of 16 bits (20 in a big tree: the
    /// length says which).
    v4: Box<[Entry]>,
    /// Empty for IPv4-only databases.
    v6: Box<[Entry]>,
}

/// Trees of at least this many nodes get a 20-bit IPv4 table (8 MiB): in a
/// City-size tree levels 17 to 20 no longer stay in cache, and one read of
/// the table replaces four dependent reads of the tree.
const V4_WIDE_FROM: usize = 1 << 18;

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
        let v4_bits = if t.node_count >= V4_WIDE_FROM { 20 } else { 16 };
        t.v4 = t.stride(v4_start, v4_bits);
        if ip_version == 6 {
            t.v6 = t.stride(0, 16);
        }
        t
    }

    /// The entry after `bits` levels for every `bits`-bit prefix, from a
    /// walk that reads each node of those levels once; a branch that ends
    /// sooner fills all the entries below it.
    fn stride(&self, start: usize, bits: u8) -> Box<[Entry]> {
        let mut out = vec![Entry { node: 0, depth: 0 }; 1 << bits];
        let mut stack = vec![(start, 0u8, 0usize)];
        while let Some((node, depth, path)) = stack.pop() {
            if depth == bits || node >= self.node_count {
                let first = path << (bits - depth);
                out[first..first + (1 << (bits - depth))].fill(Entry {
                    node: node as u32,
                    depth,
                });
                continue;
            }
            stack.push((self.read(node, 1), depth + 1, path << 1 | 1));
            stack.push((self.read(node, 0), depth + 1, path << 1));
        }
        out.into_boxed_slice()
    }

    #[inline(always)]
    fn read(&self, node: usize, bit: usize) -> usize {
        let buf = self.bytes.as_ref().as_ref();
        match self.record_size {
            24 => read_at::<24>(buf, node, bit),
            28 => read_at::<28>(buf, node, bit),
            _ => read_at::<32>(buf, node, bit),
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
        let bits = self.v4.len().trailing_zeros();
        let e = self.v4[(ip >> (32 - bits)) as usize];
        match self.record_size {
            24 => self.descend::<24, u32>(e, ip),
            28 => self.descend::<28, u32>(e, ip),
            _ => self.descend::<32, u32>(e, ip),
        }
    }

    /// Walks an IPv6 address; `None` for an IPv4-only database.
    #[inline]
    pub(crate) fn v6(&self, ip: u128) -> Option<Walk> {
        let e = *self.v6.get((ip >> 112) as usize)?;
        Some(match self.record_size {
            24 => self.descend::<24, u128>(e, ip),
            28 => self.descend::<28, u128>(e, ip),
            _ => self.descend::<32, u128>(e, ip),
        })
    }

    /// Every IPv4 network the tree holds, in address order: (first address,
    /// prefix length, data offset or `None` for "no data"), exactly where
    /// [`Tree::v4`] ends for each address in it. The networks tile the
    /// whole IPv4 space.
    pub(crate) fn v4_leaves(&self, mut f: impl FnMut(u32, u8, Option<usize>)) {
        let bits = self.v4.len().trailing_zeros() as u8;
        let mut stack: Vec<(usize, u8, u32)> = Vec::with_capacity(64);
        let mut slot = 0usize;
        while let Some(&e) = self.v4.get(slot) {
            // Slots are aligned runs: an entry that ended above the stride
            // fills the 2^(bits - depth) slots below it, walked once.
            let first = (slot as u32) << (32 - u32::from(bits));
            slot += 1 << (bits - e.depth.min(bits));
            stack.push((e.node as usize, e.depth, first));
            while let Some((node, depth, first)) = stack.pop() {
                if depth >= 32 || node >= self.node_count {
                    f(first, depth, self.finish(node, depth).offset);
                    continue;
                }
                // Right pushed first, so the lower half comes out first.
                stack.push((self.read(node, 1), depth + 1, first | 1 << (31 - depth)));
                stack.push((self.read(node, 0), depth + 1, first));
            }
        }
    }

    /// Every distinct data offset the tree points to, each with the first
    /// address of one network that leads there (`ip_version` 4 or 6). A
    /// depth-first walk that visits each node once, so IPv4 aliases in an
    /// IPv6 tree (::ffff:0:0/96, 2002::/16) and any shared subtree are
    /// read once, and no tree can make it loop. Refuses, as maxminddb's
    /// `verify()` does, a tree deeper than the address and a cycle (a node
    /// that leads back to one above it).
    pub(crate) fn records(
        &self,
        ip_version: u16,
    ) -> Result<Vec<(usize, std::net::IpAddr)>, String> {
        let bits: u8 = if ip_version == 6 { 128 } else { 32 };
        match self.record_size {
            24 => self.records_of::<24>(bits),
            28 => self.records_of::<28>(bits),
            _ => self.records_of::<32>(bits),
        }
    }

    /// [`Tree::records`] with the record size fixed at compile time (this
    /// walk visits every node of a 100 MB database at each open).
    fn records_of<const RS: u16>(
        &self,
        bits: u8,
    ) -> Result<Vec<(usize, std::net::IpAddr)>, String> {
        let buf = self.bytes.as_ref().as_ref();
        // Each node's height (levels of nodes from it down), known once its
        // subtree is done; 0 until it is first entered. A node reached again
        // (the IPv4 aliases, at another depth) must still fit in the address.
        let mut height = vec![0u8; self.node_count];
        const OPEN: u8 = u8::MAX;
        let mut seen = vec![0u64; buf.len() / 64 + 1];
        let mut out = Vec::new();
        // (node, depth, path bits so far right-aligned, leaving it)
        let mut stack: Vec<(usize, u8, u128, bool)> = vec![(0, 0, 0, false)];
        while let Some((node, depth, path, leaving)) = stack.pop() {
            if node < self.node_count {
                if leaving {
                    let h = |child: usize| height.get(child).copied().unwrap_or(0);
                    height[node] =
                        1 + h(read_at::<RS>(buf, node, 0)).max(h(read_at::<RS>(buf, node, 1)));
                    continue;
                }
                let known = height[node];
                let fits = if known == OPEN {
                    // Still being walked: this way leads back up to it.
                    return Err(format!("corrupt search tree: a cycle through node {node}"));
                } else if known > 0 {
                    u16::from(depth) + u16::from(known) <= u16::from(bits)
                } else {
                    depth < bits
                };
                if !fits {
                    return Err(format!(
                        "corrupt search tree: node {node} reaches deeper than {bits} bits"
                    ));
                }
                if known > 0 {
                    continue;
                }
                height[node] = OPEN;
                stack.push((node, depth, path, true));
                // Right first, so the left (lower) half is walked first.
                stack.push((
                    read_at::<RS>(buf, node, 1),
                    depth + 1,
                    (path << 1) | 1,
                    false,
                ));
                stack.push((read_at::<RS>(buf, node, 0), depth + 1, path << 1, false));
                continue;
            }
            let Some(offset) = self.finish(node, depth).offset else {
                continue;
            };
            if offset / 64 >= seen.len() || seen[offset / 64] & (1 << (offset % 64)) != 0 {
                continue;
            }
            seen[offset / 64] |= 1 << (offset % 64);
            let first = path << (bits - depth);
            let ip = if bits == 128 {
                std::net::IpAddr::V6(std::net::Ipv6Addr::from(first))
            } else {
                std::net::IpAddr::V4(std::net::Ipv4Addr::from(first as u32))
            };
            out.push((offset, ip));
        }
        Ok(out)
    }

    /// Continues a walk from a stride entry; the loop has no dispatch.
    #[inline(always)]
    fn descend<const RS: u16, A: Address>(&self, e: Entry, ip: A) -> Walk {
        let buf = self.bytes.as_ref().as_ref();
        let (mut node, mut depth) = (e.node as usize, e.depth);
        while depth < A::BITS && node < self.node_count {
            node = read_at::<RS>(buf, node, ip.bit(depth));
            depth += 1;
        }
        self.finish(node, depth)
    }
}

/// Reads one record with the record size fixed at compile time, and one
/// bounds check: a record is read as the big-endian word it starts, which
/// stays inside the file because the 16-byte data section separator
/// follows the last node. Takes the bytes, so a walk fetches them once.
#[inline(always)]
fn read_at<const RS: u16>(buf: &[u8], node: usize, bit: usize) -> usize {
    match RS {
        24 => {
            let o = node * 6 + bit * 3;
            let w: [u8; 4] = buf[o..o + 4].try_into().expect("4 bytes");
            (u32::from_be_bytes(w) >> 8) as usize
        }
        28 => {
            let o = node * 7;
            let w: [u8; 8] = buf[o..o + 8].try_into().expect("8 bytes");
            let w = u64::from_be_bytes(w);
            // Bytes 0-2 the left record, 4-6 the right; byte 3 holds
            // the top nibble of each.
            if bit == 0 {
                (((w >> 12) & 0x0F00_0000) | ((w >> 40) & 0x00FF_FFFF)) as usize
            } else {
                (((w >> 8) & 0x0F00_0000) | ((w >> 8) & 0x00FF_FFFF)) as usize
            }
        }
        _ => {
            let o = node * 8 + bit * 4;
            let w: [u8; 4] = buf[o..o + 4].try_into().expect("4 bytes");
            u32::from_be_bytes(w) as usize
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The top nibbles of 28-bit records (only set in trees of over 16M
    /// nodes, so no test database reaches them): left in byte 3's high
    /// half, right in its low half (MaxMind DB spec, "Node Layout").
    #[test]
    fn reads_28_bit_nibbles() {
        let node = [0x12, 0x34, 0x56, 0xAB, 0x78, 0x9A, 0xBC];
        let mut bytes = node.to_vec();
        bytes.extend_from_slice(&[0; 16]);
        let t = Tree {
            bytes: Arc::new(bytes),
            node_count: 1,
            record_size: 28,
            v4: Box::new([]),
            v6: Box::new([]),
        };
        assert_eq!(t.read(0, 0), 0x0A12_3456);
        assert_eq!(t.read(0, 1), 0x0B78_9ABC);
    }
}
