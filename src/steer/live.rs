//! The live layer: what changes while a snapshot stands, read per query
//! without a lock or an allocation, and never rebuilt by a reload.
//!
//! - Health, load and admin state are per edge: each [`super::Edge`] holds
//!   the [`crate::health::EdgeHealth`] the health registry keeps by name
//!   across reloads, read with one atomic load per candidate looked at.
//! - Learned RTT rows (RUM, issue 27) are a [`Learned`] table, immutable,
//!   built aside by whoever learns them and swapped whole into the zone's
//!   [`Live`] slot; a decision reads the slot with one load and names the
//!   table in its thread's hazard while it reads it ([`slot`]).
//!
//! A learned cell behaves like an RTT-file prefix row keyed by the
//! client's /24 (IPv4) or /56 (IPv6): it beats a file prefix that is
//! shorter and every ASN, country or continent key; a file prefix that is
//! longer beats it; a file prefix of the same length is merged with it
//! row by row, the file's row winning for an edge both have. While a
//! table is plugged in, every answer of its family is scoped to at least
//! the cell length, so no resolver caches one cell's answer for another.

mod slot;

use std::net::IpAddr;
use std::sync::Arc;

use ipnet::IpNet;

use super::types::EdgeIdx;
use crate::geo::table::{Builder, Key, Ranges, Value};
pub use slot::Read;
use slot::Slot;

/// IPv4 learned cells are /24s.
pub const CELL_V4: u8 = 24;
/// IPv6 learned cells are /56s.
pub const CELL_V6: u8 = 56;

/// A zone's live state beyond its edges' health, kept across reloads (the
/// reloader hands the same one to every steering of the zone).
#[derive(Debug, Default)]
pub struct Live {
    learned: Slot<Learned>,
}

impl Live {
    /// Plugs in (or, with `None`, takes out) a learned table.
    pub fn set_learned(&self, table: Option<Arc<Learned>>) {
        self.learned.write().set(table);
    }

    /// [`Live::set_learned`] for a table built aside for the steering of
    /// edge list `edges`, unless the slot already holds a table for another
    /// edge list: only the reloader's hook moves a slot to a new list, just
    /// before the new snapshot serves, so a table built meanwhile for the
    /// snapshot it replaces must not land over it. Returns whether it was
    /// plugged in.
    pub fn set_learned_for(&self, edges: u64, table: Option<Arc<Learned>>) -> bool {
        let w = self.learned.write();
        if w.get().is_some_and(|c| c.edges_id() != edges) {
            return false;
        }
        w.set(table);
        true
    }

    /// Plugs in `table`, made for a new edge list by the reloader's hook
    /// just before the snapshot with that list serves. The table it
    /// replaces is kept behind it ([`Learned::for_edges`] finds it): until
    /// the swap, the snapshot being replaced still answers, and without its
    /// own table its learned clients would get the map's edge meanwhile.
    pub fn move_to(&self, mut table: Learned) {
        let w = self.learned.write();
        // A chain only as long as the reloads between two aggregator ticks:
        // the tick's table (`set_learned_for`) holds no previous one.
        table.previous = w.get();
        let some = table.cells() > 0 || table.previous.is_some();
        w.set(some.then(|| Arc::new(table)));
    }

    /// The learned table, if one is plugged in: one load when none is, a
    /// hazard-protected read ([`slot`]) when one is. Hold it briefly: a
    /// table being replaced is dropped once no read holds it.
    #[inline]
    pub fn learned(&self) -> Option<Read<'_, Learned>> {
        self.learned.read()
    }
}

/// Learned RTT rows by client cell, fastest (biased) first, for one edge
/// list: rows refer to edges by index, so a table is used only with the
/// steering whose [`super::Steering::edges_id`] it was made for.
///
/// Laid out as an RTT file's prefix rows are ([`super::rtt::RttTable`]):
/// each family's cells are address ranges ([`Ranges`], a bucket read and
/// a short search over 16-bit keys, the very search the file's prefixes
/// take), whose values are where a cell's rows start; a client in no
/// cell stops at the same search. A binary search over the sorted cells
/// cost about twice the file path with 1M cells (a 2 MB array, a cache
/// miss per step).
#[derive(Debug, Default)]
pub struct Learned {
    edges: u64,
    /// Cells as ranges: values are a cell's header index in `rows`,
    /// [`NONE`] between cells; `None` without cells of the family.
    v4: Option<Ranges<u32>>,
    v6: Option<Ranges<u128>>,
    cells: usize,
    /// Groups of rows, one per cell: a header `(count, 0)` then `count`
    /// rows (edge, ms), so a cell's rows are read from one place.
    rows: Box<[(EdgeIdx, f32)]>,
    /// The table this one replaced for another edge list, while the
    /// snapshot made with that list may still be answering (see
    /// [`Live::move_to`]); the aggregator's next table drops it.
    previous: Option<Arc<Learned>>,
}

/// The value of the ranges between cells.
const NONE: Value = Value::MAX;

impl Learned {
    /// A table of `cells` (a /24 or /56 network — a longer one stands for
    /// the cell holding it —, an edge, ms) for the steering whose edge list
    /// is `edges` ([`super::Steering::edges_id`]); `scale` is each edge's
    /// bias factor, by which rows are ordered. A cell and edge given twice
    /// keeps the fastest.
    pub fn new(
        edges: u64,
        cells: impl IntoIterator<Item = (IpNet, EdgeIdx, f32)>,
        scale: impl Fn(EdgeIdx) -> f64,
    ) -> Learned {
        // (family, cell, biased ms, edge, ms)
        let mut all: Vec<(bool, u64, f64, EdgeIdx, f32)> = cells
            .into_iter()
            .filter_map(|(net, e, ms)| {
                let (v6, cell) = cell_of(net.network())?;
                let short = net.prefix_len() < if v6 { CELL_V6 } else { CELL_V4 };
                (!short && ms.is_finite() && ms >= 0.0)
                    .then(|| (v6, cell, f64::from(ms) * scale(e), e, ms))
            })
            .collect();
        all.sort_by(|a, b| {
            (a.0, a.1, a.3)
                .cmp(&(b.0, b.1, b.3))
                .then(a.2.total_cmp(&b.2))
        });
        all.dedup_by(|b, a| (a.0, a.1, a.3) == (b.0, b.1, b.3));
        all.sort_by(|a, b| {
            (a.0, a.1)
                .cmp(&(b.0, b.1))
                .then(a.2.total_cmp(&b.2))
                .then(a.3.cmp(&b.3))
        });
        // (family, cell, header index), in address order.
        let mut heads: Vec<(bool, u64, u32)> = Vec::new();
        let mut rows: Vec<(EdgeIdx, f32)> = Vec::with_capacity(all.len() * 5 / 4 + 1);
        for (i, &(fam6, cell, _, e, ms)) in all.iter().enumerate() {
            if i == 0 || (all[i - 1].0, all[i - 1].1) != (fam6, cell) {
                heads.push((fam6, cell, rows.len() as u32));
                rows.push((0, 0.0));
            }
            let h = heads.last().expect("a head was pushed").2 as usize;
            rows[h].0 = rows[h].0.saturating_add(1);
            rows.push((e, ms));
        }
        let split = heads.partition_point(|h| !h.0);
        let v4 = ranges::<u32>(&heads[..split], 32 - u32::from(CELL_V4));
        let v6 = ranges::<u128>(&heads[split..], 128 - u32::from(CELL_V6));
        Learned {
            edges,
            v4,
            v6,
            cells: heads.len(),
            rows: rows.into_boxed_slice(),
            previous: None,
        }
    }

    /// This table if it was made for edge list `edges`, else the one it
    /// replaced if that was (a snapshot still answering during a reload).
    #[inline]
    pub fn for_edges(&self, edges: u64) -> Option<&Learned> {
        if self.edges == edges {
            return Some(self);
        }
        let mut at = self.previous.as_deref();
        while let Some(t) = at {
            if t.edges == edges {
                return Some(t);
            }
            at = t.previous.as_deref();
        }
        None
    }

    /// The edge list the rows refer to.
    pub fn edges_id(&self) -> u64 {
        self.edges
    }

    /// How many cells.
    pub fn cells(&self) -> usize {
        self.cells
    }

    /// The rows of `addr`'s cell, fastest first; empty when it has none.
    #[inline]
    pub fn rows(&self, addr: IpAddr) -> &[(EdgeIdx, f32)] {
        let head = match addr {
            IpAddr::V4(a) => self.v4.as_ref().map(|r| r.get(u32::from(a))),
            IpAddr::V6(a) => self.v6.as_ref().map(|r| r.get(u128::from(a))),
        };
        match head {
            Some(h) if h != NONE => {
                let h = h as usize;
                &self.rows[h + 1..h + 1 + usize::from(self.rows[h].0)]
            }
            _ => &[],
        }
    }

    /// Whether the table has cells of `addr`'s family, and their length.
    pub fn cell_len(&self, addr: IpAddr) -> Option<u8> {
        match addr {
            IpAddr::V4(_) => self.v4.is_some().then_some(CELL_V4),
            IpAddr::V6(_) => self.v6.is_some().then_some(CELL_V6),
        }
    }
}

/// One family's cells `(_, cell, header)` (sorted, each the address's top
/// bits above `host` bits) as ranges valued by their header; `None`
/// without cells.
fn ranges<K: Key>(heads: &[(bool, u64, u32)], host: u32) -> Option<Ranges<K>> {
    if heads.is_empty() {
        return None;
    }
    let mut b = Builder::with_capacity(2 * heads.len() + 1);
    b.push(K::default(), NONE);
    for &(_, cell, head) in heads {
        let start = u128::from(cell) << host;
        b.push(K::from_u128(start), head);
        // A cell right after this one replaces this gap.
        let end = start | ((1u128 << host) - 1);
        if end < K::MAX.to_u128() {
            b.push(K::from_u128(end + 1), NONE);
        }
    }
    Some(b.finish())
}

/// The cell holding `addr`: (IPv6, its top 24 or 56 bits).
fn cell_of(addr: IpAddr) -> Option<(bool, u64)> {
    Some(match addr {
        IpAddr::V4(a) => (false, u64::from(u32::from(a) >> 8)),
        IpAddr::V6(a) => (true, (u128::from(a) >> 72) as u64),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    #[test]
    fn cells_rows_fastest_biased_first() {
        let t = Learned::new(
            7,
            vec![
                (net("192.0.2.0/24"), 1, 30.0),
                (net("192.0.2.0/24"), 0, 20.0),
                (net("192.0.2.77/32"), 2, 25.0),
                (net("192.0.2.0/24"), 0, 15.0),
                (net("198.51.100.0/24"), 1, 5.0),
                (net("2001:db8:0:100::/56"), 3, 9.0),
                // Shorter than a cell: not a cell.
                (net("203.0.113.0/23"), 1, 1.0),
            ],
            |e| if e == 1 { 0.5 } else { 1.0 },
        );
        assert_eq!(t.cells(), 3);
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        // Edge 1's 30 ms counts as 15 (bias); edge 0 twice: the fastest.
        assert_eq!(
            t.rows(ip("192.0.2.200")),
            &[(0, 15.0), (1, 30.0), (2, 25.0)]
        );
        assert_eq!(t.rows(ip("198.51.100.1")), &[(1, 5.0)]);
        assert_eq!(t.rows(ip("2001:db8:0:1ff::1")), &[(3, 9.0)]);
        assert!(t.rows(ip("2001:db8:0:200::1")).is_empty());
        assert!(t.rows(ip("203.0.113.1")).is_empty());
        assert_eq!(t.cell_len(ip("10.0.0.1")), Some(24));
        assert_eq!(Learned::default().cell_len(ip("::1")), None);
    }

    #[test]
    fn every_address_finds_its_own_cell_or_none() {
        // Neighbouring cells, the first and last of each family, gaps.
        let v4 = [0u32, 1, 2, 5, 0x7f_0000, 0x7f_0001, 0xff_fffe, 0xff_ffff];
        let v6 = [
            0u64,
            1,
            3,
            0x20_0100_0db8_0000,
            0x20_0100_0db8_0001,
            (1 << 56) - 1,
        ];
        let mut cells = Vec::new();
        for (i, &c) in v4.iter().enumerate() {
            let net = IpNet::new(IpAddr::from((c << 8).to_be_bytes()), 24).unwrap();
            cells.push((net, i as EdgeIdx, 1.0));
        }
        for (i, &c) in v6.iter().enumerate() {
            let a = (u128::from(c) << 72).to_be_bytes();
            cells.push((
                IpNet::new(IpAddr::from(a), 56).unwrap(),
                100 + i as EdgeIdx,
                2.0,
            ));
        }
        let t = Learned::new(1, cells, |_| 1.0);
        assert_eq!(t.cells(), v4.len() + v6.len());
        for c in 0u32..8 {
            for cell in [c, 0x7f_0000 + c, 0xff_fff8 + c] {
                for low in [0u32, 1, 128, 255] {
                    let a = IpAddr::from(((cell << 8) | low).to_be_bytes());
                    let want: &[(EdgeIdx, f32)] = match v4.iter().position(|&x| x == cell) {
                        Some(i) => &[(i as EdgeIdx, 1.0)][..],
                        None => &[],
                    };
                    assert_eq!(t.rows(a).to_vec(), want.to_vec(), "{a}");
                }
            }
        }
        for c in [
            0u64,
            1,
            2,
            3,
            4,
            0x20_0100_0db8_0000,
            0x20_0100_0db8_0001,
            0x20_0100_0db8_0002,
        ]
        .into_iter()
        .chain([(1 << 56) - 2, (1 << 56) - 1])
        {
            for low in [0u128, 1, u128::from(u64::MAX), (1 << 72) - 1] {
                let a = IpAddr::from(((u128::from(c) << 72) | low).to_be_bytes());
                let got = t.rows(a).to_vec();
                match v6.iter().position(|&x| x == c) {
                    Some(i) => assert_eq!(got, vec![(100 + i as EdgeIdx, 2.0)], "{a}"),
                    None => assert!(got.is_empty(), "{a}"),
                }
            }
        }
    }

    #[test]
    fn the_slot_swaps_whole() {
        let live = Live::default();
        assert!(live.learned().is_none());
        live.set_learned(Some(Arc::new(Learned::new(1, vec![], |_| 1.0))));
        let got = live.learned().map(|l| l.edges_id());
        assert_eq!(got, Some(1));
        live.set_learned(None);
        assert!(live.learned().is_none());
        // A table for edge list 2 lands on an empty slot, one for list 1
        // then does not, one for list 2 does.
        let table = |edges| Some(Arc::new(Learned::new(edges, vec![], |_| 1.0)));
        assert!(live.set_learned_for(2, table(2)));
        assert!(!live.set_learned_for(1, table(1)));
        let id = || live.learned().map(|l| l.edges_id());
        assert_eq!(id(), Some(2));
        assert!(live.set_learned_for(2, None));
        assert!(live.learned().is_none());
    }

    /// The reloader's hook moves a slot to a new edge list and keeps the
    /// table it replaces findable for the snapshot still answering with
    /// the old list; the aggregator's next table drops it.
    #[test]
    fn a_moved_slot_keeps_the_table_it_replaced() {
        let cell = |edge| vec![("192.0.2.0/24".parse::<IpNet>().unwrap(), edge, 5.0)];
        let a: IpAddr = "192.0.2.9".parse().unwrap();
        let live = Live::default();
        live.set_learned(Some(Arc::new(Learned::new(1, cell(3), |_| 1.0))));
        live.move_to(Learned::new(2, cell(7), |_| 1.0));
        let rows = |edges| {
            let g = live.learned()?;
            let l = g.for_edges(edges)?;
            Some(l.rows(a).to_vec())
        };
        assert_eq!(rows(1), Some(vec![(3, 5.0)]), "the old list's table");
        assert_eq!(rows(2), Some(vec![(7, 5.0)]), "the new list's table");
        assert_eq!(rows(9), None);
        // A second move before the aggregator's tick still finds both.
        live.move_to(Learned::new(3, vec![], |_| 1.0));
        assert_eq!(rows(2), Some(vec![(7, 5.0)]));
        assert_eq!(rows(3), Some(vec![]));
        assert!(live.set_learned_for(3, Some(Arc::new(Learned::new(3, cell(1), |_| 1.0)))));
        assert_eq!(rows(2), None, "the tick's table holds no previous one");
        assert_eq!(rows(3), Some(vec![(1, 5.0)]));
    }
}
