//! The MaxMind search tree, read once when a database is opened: a walk
//! that lists every leaf (network) in address order, refusing a tree that
//! is deeper than an address, cyclic, or shared so much that listing it
//! would never end. [`super::table`] turns the leaves into ranges; nothing
//! walks the tree per query (maxminddb's own lookup stays the tests'
//! reference).

/// What the walk found at the end of a branch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Leaf {
    /// A data record, at this offset in the data section.
    Data(usize),
    /// "No data here".
    Empty,
    /// The IPv4 subtree again (the `::ffff:0:0/96`, 6to4 and Teredo aliases
    /// of an IPv6 tree, and `::/96` itself): the address's 32 bits after
    /// the leaf's prefix are looked up as IPv4.
    V4,
}

/// One search tree: the bytes of its nodes and their shape.
pub(crate) struct Tree<'a> {
    buf: &'a [u8],
    node_count: usize,
    record_size: u16,
    ip_version: u16,
    /// Told, now and then, which bytes of the tree the walk is done with
    /// (those of nodes numbered before the current one, except the nodes on
    /// the way down to it): the walk reads each node once, so they need not
    /// stay resident. (Writers number nodes depth first, so those are all
    /// behind it; with another numbering a node let go of is read back.)
    release: Option<&'a dyn Fn(std::ops::Range<usize>)>,
}

/// Nodes walked between two calls of [`Tree::release`].
const RELEASE_EVERY: usize = 1 << 16;

/// Every leaf reached more often than this many times the node count means
/// subtrees shared beyond the IPv4 aliases (a hostile file could make the
/// listing exponential).
const VISITS_PER_NODE: usize = 2;

impl<'a> Tree<'a> {
    /// The tree at the start of `buf`, already bounded by the caller (every
    /// node inside `buf`, followed by the 16-byte separator).
    pub(crate) fn new(buf: &'a [u8], node_count: u32, record_size: u16, ip_version: u16) -> Self {
        Tree {
            buf,
            node_count: node_count as usize,
            record_size,
            ip_version,
            release: None,
        }
    }

    /// The same tree, telling `release` which bytes the walk is done with.
    pub(crate) fn releasing(mut self, release: &'a dyn Fn(std::ops::Range<usize>)) -> Self {
        self.release = Some(release);
        self
    }

    /// Bytes per node.
    fn node_bytes(&self) -> usize {
        usize::from(self.record_size) / 4
    }

    /// Releases the bytes of the nodes before `current` (from `from`), but
    /// for those of the nodes on the way down to it (`path`).
    fn release_behind(&self, from: usize, current: usize, path: &[usize]) -> usize {
        let Some(release) = self.release else {
            return from;
        };
        let nb = self.node_bytes();
        let mut keep: Vec<usize> = path
            .iter()
            .filter(|&&n| n < current)
            .map(|&n| n * nb)
            .collect();
        keep.sort_unstable();
        let mut at = from;
        for k in keep {
            if k >= at {
                release(at..k);
                at = k + nb;
            }
        }
        let end = current * nb;
        if end > at {
            release(at..end);
        }
        end.max(from)
    }

    /// An IPv6 tree (with the IPv4 subtree under `::/96`).
    pub(crate) fn is_v6(&self) -> bool {
        self.ip_version == 6
    }

    /// Inlined: the walk reads two records a node, millions of nodes (as a
    /// call it was 6 % of a City database's open).
    #[inline]
    fn read(&self, node: usize, bit: usize) -> usize {
        match self.record_size {
            24 => read_at::<24>(self.buf, node, bit),
            28 => read_at::<28>(self.buf, node, bit),
            _ => read_at::<32>(self.buf, node, bit),
        }
    }

    /// What a record value leads to: a node (`Ok`), or a leaf (`Err`).
    fn classify(&self, rec: usize) -> Result<usize, Result<Leaf, String>> {
        if rec < self.node_count {
            return Ok(rec);
        }
        Err(match rec.checked_sub(self.node_count + 16) {
            Some(offset) => Ok(Leaf::Data(offset)),
            None if rec == self.node_count => Ok(Leaf::Empty),
            None => Err(format!(
                "corrupt search tree: record {rec} points into the data section separator"
            )),
        })
    }

    /// The node (or leaf) where the IPv4 subtree of an IPv6 tree starts:
    /// 96 left branches from the root.
    fn v4_root(&self) -> usize {
        let mut node = 0usize;
        for _ in 0..96 {
            if node >= self.node_count {
                break;
            }
            node = self.read(node, 0);
        }
        node
    }

    /// Every IPv4 leaf in address order: `f(first address, prefix length,
    /// leaf)`, the prefix counted from the start of the IPv4 space (as
    /// maxminddb reports an IPv4 lookup). The leaves tile the space. The
    /// walk stops early when `f` returns false.
    pub(crate) fn v4_leaves(&self, mut f: impl FnMut(u32, u8, Leaf) -> bool) -> Result<(), String> {
        let root = if self.ip_version == 6 {
            self.v4_root()
        } else {
            0
        };
        self.walk(root, 32, None, |first, len, leaf| {
            f((first >> 96) as u32, len, leaf)
        })
    }

    /// Every IPv6 leaf in address order, the IPv4 subtree and its aliases
    /// reported as [`Leaf::V4`] rather than walked again; nothing for an
    /// IPv4-only tree. Stops early when `f` returns false.
    pub(crate) fn v6_leaves(&self, f: impl FnMut(u128, u8, Leaf) -> bool) -> Result<(), String> {
        if self.ip_version != 6 {
            return Ok(());
        }
        let v4 = self.v4_root();
        // A tree whose ::/96 branch ends in a leaf has no IPv4 subtree.
        let alias = (v4 < self.node_count).then_some(v4);
        self.walk(0, 128, alias, f)
    }

    /// Depth-first, left first, from `root` over addresses of `bits` bits
    /// (left-aligned in a u128); `alias` is a node reported as
    /// [`Leaf::V4`] instead of entered.
    fn walk(
        &self,
        root: usize,
        bits: u8,
        alias: Option<usize>,
        mut f: impl FnMut(u128, u8, Leaf) -> bool,
    ) -> Result<(), String> {
        let mut budget = self.node_count.saturating_mul(VISITS_PER_NODE) + 1024;
        // (record value, depth, first address).
        let mut stack: Vec<(usize, u8, u128)> = Vec::with_capacity(2 * usize::from(bits) + 2);
        stack.push((root, 0, 0));
        // The nodes on the way down to the current one, by depth.
        let mut path = [0usize; 129];
        let (mut walked, mut released) = (0usize, 0usize);
        while let Some((rec, depth, first)) = stack.pop() {
            let node = match self.classify(rec) {
                Ok(node) if Some(node) == alias => {
                    if !f(first, depth, Leaf::V4) {
                        return Ok(());
                    }
                    continue;
                }
                Ok(node) => node,
                Err(leaf) => {
                    if !f(first, depth, leaf?) {
                        return Ok(());
                    }
                    continue;
                }
            };
            if depth >= bits {
                return Err(format!(
                    "corrupt search tree: node {node} reaches deeper than {bits} bits"
                ));
            }
            budget = budget.checked_sub(1).ok_or_else(|| {
                "corrupt search tree: subtrees shared beyond the IPv4 aliases".to_string()
            })?;
            path[usize::from(depth)] = node;
            walked += 1;
            if walked % RELEASE_EVERY == 0 {
                released = self.release_behind(released, node, &path[..usize::from(depth)]);
            }
            // Right pushed first, so the lower half comes out first.
            let half = 1u128 << (127 - depth);
            stack.push((self.read(node, 1), depth + 1, first | half));
            stack.push((self.read(node, 0), depth + 1, first));
        }
        Ok(())
    }
}

/// Reads one record with the record size fixed at compile time, and one
/// bounds check: a record is read as the big-endian word it starts, which
/// stays inside the file because the 16-byte data section separator
/// follows the last node.
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
        let t = Tree::new(&bytes, 1, 28, 4);
        assert_eq!(t.read(0, 0), 0x0A12_3456);
        assert_eq!(t.read(0, 1), 0x0B78_9ABC);
    }

    /// 24-bit nodes from (left, right) pairs, then the separator.
    fn tree_bytes(nodes: &[(u32, u32)]) -> Vec<u8> {
        let mut b = Vec::new();
        for &(l, r) in nodes {
            b.extend_from_slice(&l.to_be_bytes()[1..]);
            b.extend_from_slice(&r.to_be_bytes()[1..]);
        }
        b.extend_from_slice(&[0; 16]);
        b
    }

    #[test]
    fn leaves_tile_the_space_in_order() {
        // 3 nodes, IPv4: 0/1 -> node 1, 128/1 -> data at 0; node 1:
        // 0/2 -> no data, 64/2 -> node 2; node 2: both data at 5.
        let n = 3u32;
        let data = |o: u32| n + 16 + o;
        let b = tree_bytes(&[(1, data(0)), (n, 2), (data(5), data(5))]);
        let t = Tree::new(&b, n, 24, 4);
        let mut got = Vec::new();
        t.v4_leaves(|a, len, leaf| {
            got.push((a, len, leaf));
            true
        })
        .unwrap();
        assert_eq!(
            got,
            vec![
                (0, 2, Leaf::Empty),
                (0x4000_0000, 3, Leaf::Data(5)),
                (0x6000_0000, 3, Leaf::Data(5)),
                (0x8000_0000, 1, Leaf::Data(0)),
            ]
        );
        let mut none = 0;
        t.v6_leaves(|_, _, _| {
            none += 1;
            true
        })
        .unwrap();
        assert_eq!(none, 0, "an IPv4 tree has no IPv6 leaves");
    }

    #[test]
    fn cycles_depth_and_bad_pointers_are_refused() {
        // A node pointing back at itself: deeper than any address.
        let b = tree_bytes(&[(0, 1)]);
        let e = Tree::new(&b, 1, 24, 4)
            .v4_leaves(|_, _, _| true)
            .unwrap_err();
        assert!(e.contains("deeper than 32 bits"), "{e}");
        // A record into the 16-byte separator.
        let b = tree_bytes(&[(3, 1)]);
        let e = Tree::new(&b, 1, 24, 4)
            .v4_leaves(|_, _, _| true)
            .unwrap_err();
        assert!(e.contains("separator"), "{e}");
    }

    #[test]
    fn ipv4_aliases_are_reported_not_walked() {
        // IPv6 tree: node 0..95 a chain of left branches to node 96 (the
        // IPv4 root, both halves data), right branches empty, except the
        // root's right half, which aliases the IPv4 root.
        let mut nodes: Vec<(u32, u32)> = Vec::new();
        let n = 97u32;
        for i in 0..96u32 {
            nodes.push((i + 1, if i == 0 { 96 } else { n }));
        }
        nodes.push((n + 16, n + 16 + 7));
        let b = tree_bytes(&nodes);
        let t = Tree::new(&b, n, 24, 6);
        let mut v4 = Vec::new();
        t.v4_leaves(|a, len, leaf| {
            v4.push((a, len, leaf));
            true
        })
        .unwrap();
        assert_eq!(
            v4,
            vec![(0, 1, Leaf::Data(0)), (0x8000_0000, 1, Leaf::Data(7))]
        );
        let mut v6 = Vec::new();
        t.v6_leaves(|a, len, leaf| {
            v6.push((a, len, leaf));
            true
        })
        .unwrap();
        assert_eq!(v6.first(), Some(&(0, 96, Leaf::V4)));
        assert_eq!(v6.last(), Some(&(1 << 127, 1, Leaf::V4)));
        assert!(v6[1..v6.len() - 1].iter().all(|l| l.2 == Leaf::Empty));
    }
}
