//! The live layer: what changes while a snapshot stands, read per query
//! without a lock or an allocation, and never rebuilt by a reload.
//!
//! - Health, load and admin state are per edge: each [`super::Edge`] holds
//!   the [`crate::health::EdgeHealth`] the health registry keeps by name
//!   across reloads, read with one atomic load per candidate looked at.
//! - Learned RTT rows (RUM, issue 27) are a [`Learned`] table, immutable,
//!   built aside by whoever learns them and swapped whole into the zone's
//!   [`Live`] slot; a decision reads the slot with one atomic load.
//!
//! A learned cell behaves like an RTT-file prefix row keyed by the
//! client's /24 (IPv4) or /56 (IPv6): it beats a file prefix that is
//! shorter and every ASN, country or continent key; a file prefix that is
//! longer beats it; a file prefix of the same length is merged with it
//! row by row, the file's row winning for an edge both have. While a
//! table is plugged in, every answer of its family is scoped to at least
//! the cell length, so no resolver caches one cell's answer for another.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use arc_swap::ArcSwapOption;
use ipnet::IpNet;

use super::types::EdgeIdx;

/// IPv4 learned cells are /24s.
pub const CELL_V4: u8 = 24;
/// IPv6 learned cells are /56s.
pub const CELL_V6: u8 = 56;

/// A zone's live state beyond its edges' health, kept across reloads (the
/// reloader hands the same one to every steering of the zone).
#[derive(Debug, Default)]
pub struct Live {
    learned: ArcSwapOption<Learned>,
    /// Whether `learned` holds a table: a zone that never had one (most)
    /// pays one relaxed load per decision, not arc-swap's reader protocol.
    plugged: AtomicBool,
}

impl Live {
    /// Plugs in (or, with `None`, takes out) a learned table.
    pub fn set_learned(&self, table: Option<Arc<Learned>>) {
        let some = table.is_some();
        self.learned.store(table);
        self.plugged.store(some, Ordering::Release);
    }

    /// The learned table, if one is plugged in: one atomic load when none
    /// is, a lock-free arc-swap load when one is.
    #[inline]
    pub fn learned(&self) -> Option<arc_swap::Guard<Option<Arc<Learned>>>> {
        self.plugged
            .load(Ordering::Acquire)
            .then(|| self.learned.load())
    }
}

/// Learned RTT rows by client cell, fastest (biased) first, for one edge
/// list: rows refer to edges by index, so a table is used only with the
/// steering whose [`super::Steering::edges_id`] it was made for.
#[derive(Debug, Default)]
pub struct Learned {
    edges: u64,
    /// (cell: the address's top 24 bits, where its rows start in `rows`),
    /// sorted.
    v4: Box<[(u32, u32)]>,
    /// (cell: the address's top 56 bits, start), sorted.
    v6: Box<[(u64, u32)]>,
    /// Each cell's rows, one after the other; a cell's rows end where the
    /// next cell's start.
    rows: Box<[(EdgeIdx, f32)]>,
}

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
        let (mut v4, mut v6) = (Vec::new(), Vec::new());
        let mut rows = Vec::with_capacity(all.len());
        for (i, &(fam6, cell, _, e, ms)) in all.iter().enumerate() {
            if i == 0 || (all[i - 1].0, all[i - 1].1) != (fam6, cell) {
                if fam6 {
                    v6.push((cell, rows.len() as u32));
                } else {
                    v4.push((cell as u32, rows.len() as u32));
                }
            }
            rows.push((e, ms));
        }
        Learned {
            edges,
            v4: v4.into_boxed_slice(),
            v6: v6.into_boxed_slice(),
            rows: rows.into_boxed_slice(),
        }
    }

    /// The edge list the rows refer to.
    pub fn edges_id(&self) -> u64 {
        self.edges
    }

    /// How many cells.
    pub fn cells(&self) -> usize {
        self.v4.len() + self.v6.len()
    }

    /// The rows of `addr`'s cell, fastest first; empty when it has none.
    pub fn rows(&self, addr: IpAddr) -> &[(EdgeIdx, f32)] {
        let Some((v6, cell)) = cell_of(addr) else {
            return &[];
        };
        let (at, next) = if v6 {
            match self.v6.binary_search_by_key(&cell, |c| c.0) {
                Ok(i) => (self.v6[i].1, self.v6.get(i + 1).map(|c| c.1)),
                Err(_) => return &[],
            }
        } else {
            match self.v4.binary_search_by_key(&(cell as u32), |c| c.0) {
                Ok(i) => (self.v4[i].1, self.v4.get(i + 1).map(|c| c.1)),
                Err(_) => return &[],
            }
        };
        // The next family's cells start after the last of this one's.
        let end = next.unwrap_or_else(|| {
            if v6 {
                self.rows.len() as u32
            } else {
                self.v6.first().map_or(self.rows.len() as u32, |c| c.1)
            }
        });
        &self.rows[at as usize..end as usize]
    }

    /// Whether the table has cells of `addr`'s family, and their length.
    pub fn cell_len(&self, addr: IpAddr) -> Option<u8> {
        match addr {
            IpAddr::V4(_) => (!self.v4.is_empty()).then_some(CELL_V4),
            IpAddr::V6(_) => (!self.v6.is_empty()).then_some(CELL_V6),
        }
    }
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
    fn the_slot_swaps_whole() {
        let live = Live::default();
        assert!(live.learned().is_none());
        live.set_learned(Some(Arc::new(Learned::new(1, vec![], |_| 1.0))));
        let got = live
            .learned()
            .and_then(|g| g.as_ref().map(|l| l.edges_id()));
        assert_eq!(got, Some(1));
        live.set_learned(None);
        assert!(live.learned().is_none());
    }
}
