//! A candidate group's order at the client's place, read lazily as far as
//! the answer needs: the point's ranked list (or the configured order, or
//! one computed), partners last, and the candidates the client's RTT rows
//! name moved in front.

use smallvec::SmallVec;

use super::ranks::{EDGE_BITS, END, EdgeSet, Members, TIE_BIASED, TIE_CHORD, chord2, km_of};
use super::rtt::Rows;
use super::steering::Steering;
use super::types::{Class, EdgeIdx, Ranked};

/// Where an [`Order`] takes its own edges from.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Source {
    /// The point's ranked list (`Order::list`), from `Order::pos`.
    Ranked,
    /// The group's configured order, from `Order::pos` (a client without
    /// coordinates).
    Configured,
    /// Computed into the buffer.
    Computed,
}

/// A group's candidates for one family at one place, best first: own
/// edges by distance, then partners in configured order. Lazy: a plain
/// host that finds its answer in the first entries reads no further.
/// Kept under 128 bytes: a query makes one or two and moves them by value,
/// and a larger one is moved with a call to `memcpy`.
pub(crate) struct Order<'a> {
    st: &'a Steering,
    m: &'a Members,
    /// The client's point on the unit sphere.
    here: Option<&'a [f64; 3]>,
    /// The point's ranked list (empty unless `source` is `Ranked`).
    list: &'a [u16],
    /// Where `source` goes on.
    pos: u32,
    source: Source,
    /// Whether kilometres are wanted (else distance metrics are 0).
    km: bool,
    /// Own members yielded (or buffered).
    own_done: u32,
    next_buf: u32,
    next_partner: u32,
    /// Own members in order, not yet yielded: a tie run, or the computed
    /// rest (edges only, so the order stays small to move).
    buf: SmallVec<[EdgeIdx; 8]>,
}

impl<'a> Order<'a> {
    /// The order of `m` for a client at `here` (its database point `point`
    /// when the ranks cover it).
    pub(crate) fn new(
        st: &'a Steering,
        m: &'a Members,
        here: Option<&'a [f64; 3]>,
        list: Option<&'a [u16]>,
        km: bool,
    ) -> Order<'a> {
        let (source, list) = match (here, list) {
            (None, _) => (Source::Configured, &[][..]),
            (Some(_), Some(list)) => (Source::Ranked, list),
            (Some(_), None) => (Source::Computed, &[][..]),
        };
        let mut o = Order {
            st,
            m,
            here,
            list,
            pos: 0,
            source,
            km,
            own_done: 0,
            next_buf: 0,
            next_partner: 0,
            buf: SmallVec::new(),
        };
        if source == Source::Computed {
            o.compute();
        }
        o
    }

    /// Own edge `e` as ranked.
    fn ranked(&self, e: EdgeIdx) -> Ranked {
        let edge = &self.st.edges[e as usize];
        let metric = match (self.km, self.here, edge.unit()) {
            (true, Some(h), Some(u)) => km_of(chord2(&u, h)) * edge.scale(),
            _ => 0.0,
        };
        Ranked {
            idx: e,
            class: Class::Distance,
            metric,
        }
    }

    /// The rest of the own members, in order, computed (as the ranking
    /// orders them: biased km when the group has a bias, else chord;
    /// equal metrics in configured order). Cold: only clients whose point
    /// has no ranks, or whose list ends before the group does, get here.
    #[cold]
    fn compute(&mut self) {
        let mut all: SmallVec<[(f64, EdgeIdx); 16]> = self
            .m
            .order
            .iter()
            .map(|&e| {
                let edge = &self.st.edges[e as usize];
                let c = match (self.here, edge.unit()) {
                    (Some(h), Some(u)) => chord2(&u, h),
                    _ => 0.0,
                };
                let key = if self.m.biased {
                    km_of(c) * edge.scale()
                } else {
                    c
                };
                (key, e)
            })
            .collect();
        // Stable: equal metrics keep the configured order.
        all.sort_by(|a, b| a.0.total_cmp(&b.0));
        self.buf.clear();
        self.buf
            .extend(all.into_iter().skip(self.own_done as usize).map(|(_, e)| e));
        self.next_buf = 0;
        self.own_done = self.m.order.len() as u32;
        self.source = Source::Computed;
    }

    /// The members of the tie run starting with `first` at `pos - 1` of
    /// the list, in configured order, into the buffer; where the list goes
    /// on after it. Cold: ties are rare (edges at one place).
    #[cold]
    fn tie_run(&mut self, first: EdgeIdx, mut pos: usize) -> usize {
        let tie = if self.m.biased { TIE_BIASED } else { TIE_CHORD };
        let mut run: SmallVec<[EdgeIdx; 8]> = SmallVec::new();
        run.push(first);
        while let Some(&x) = self.list.get(pos) {
            if x == END || x & tie == 0 {
                break;
            }
            pos += 1;
            if self.m.own.contains(x & EDGE_BITS) {
                run.push(x & EDGE_BITS);
            }
        }
        let at = |e: &EdgeIdx| self.m.order.iter().position(|x| x == e);
        run.sort_by_key(at);
        self.own_done += run.len() as u32;
        self.buf = run;
        self.next_buf = 0;
        pos
    }
}

impl Iterator for Order<'_> {
    type Item = Ranked;

    /// A loop, not recursion, and always inlined where a query reads the
    /// order (the ties and the computed rest are out of line): as a call it
    /// cost ~40 instructions an edge read (callgrind, `bench/profile.sh ecs`).
    #[inline(always)]
    fn next(&mut self) -> Option<Ranked> {
        loop {
            if let Some(&e) = self.buf.get(self.next_buf as usize) {
                self.next_buf += 1;
                return Some(self.ranked(e));
            }
            if self.own_done as usize >= self.m.order.len() {
                break;
            }
            let pos = self.pos as usize;
            match self.source {
                Source::Ranked => {
                    let Some(&x) = self.list.get(pos).filter(|&&x| x != END) else {
                        // The list ends before the group does.
                        self.compute();
                        continue;
                    };
                    self.pos += 1;
                    let e = x & EDGE_BITS;
                    if !self.m.own.contains(e) {
                        continue;
                    }
                    let tie = if self.m.biased { TIE_BIASED } else { TIE_CHORD };
                    if self
                        .list
                        .get(pos + 1)
                        .is_some_and(|&n| n != END && n & tie != 0)
                    {
                        self.pos = self.tie_run(e, pos + 1) as u32;
                        continue;
                    }
                    self.own_done += 1;
                    return Some(self.ranked(e));
                }
                Source::Configured => {
                    self.pos += 1;
                    self.own_done += 1;
                    return Some(self.ranked(self.m.order[pos]));
                }
                Source::Computed => break,
            }
        }
        let &p = self.m.partners.get(self.next_partner as usize)?;
        self.next_partner += 1;
        Some(Ranked {
            idx: p,
            class: Class::Partner,
            metric: 0.0,
        })
    }
}

/// An order (a place's candidates, nearest first) with the candidates
/// that have a row in `rows` moved in front, in row order. Lazy, so a
/// plain host that finds its live edges among the first rows never reads
/// the rest nor builds a list.
pub(super) struct RttFirst<'a, I> {
    st: &'a Steering,
    /// The rows, best biased ms first.
    rows: &'a [(EdgeIdx, f32)],
    row: usize,
    base: I,
    /// The candidates (serving the family), which rows may name.
    members: &'a EdgeSet,
    /// Edges moved to the front (below 256; beyond, the rows are scanned).
    moved: [u64; 4],
}

impl<'a, I: Iterator<Item = Ranked>> RttFirst<'a, I> {
    pub(super) fn new(st: &'a Steering, rows: Rows<'a>, base: I, members: &'a EdgeSet) -> Self {
        RttFirst {
            st,
            rows: rows.all(),
            row: 0,
            base,
            members,
            moved: [0; 4],
        }
    }
}

impl<I: Iterator<Item = Ranked>> Iterator for RttFirst<'_, I> {
    type Item = Ranked;

    #[inline]
    fn next(&mut self) -> Option<Ranked> {
        while let Some(&(idx, ms)) = self.rows.get(self.row) {
            self.row += 1;
            if self.members.contains(idx) {
                if let Some(w) = self.moved.get_mut(usize::from(idx) >> 6) {
                    *w |= 1 << (idx & 63);
                }
                return Some(Ranked {
                    idx,
                    class: Class::Rtt,
                    metric: f64::from(ms) * self.st.edges[idx as usize].scale(),
                });
            }
        }
        for r in self.base.by_ref() {
            let gone = match self.moved.get(usize::from(r.idx) >> 6) {
                Some(w) => w >> (r.idx & 63) & 1 != 0,
                None => self.rows.iter().any(|x| x.0 == r.idx),
            };
            if !gone {
                return Some(r);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::steer::{RttKey, RttTable};

    /// What [`RttFirst`] must give, said the long way: the candidates with
    /// a row, by biased ms (ties by row order), then the rest of `base`.
    fn merged_by_definition(
        st: &Steering,
        base: &[Ranked],
        rows: &[(EdgeIdx, f32)],
    ) -> Vec<Ranked> {
        let mut with: Vec<Ranked> = rows
            .iter()
            .filter(|r| base.iter().any(|b| b.idx == r.0))
            .map(|&(idx, ms)| Ranked {
                idx,
                class: Class::Rtt,
                metric: f64::from(ms) * st.edges[idx as usize].scale(),
            })
            .collect();
        with.sort_by(|a, b| a.metric.total_cmp(&b.metric));
        let rest = base.iter().filter(|b| !rows.iter().any(|r| r.0 == b.idx));
        with.into_iter().chain(rest.copied()).collect()
    }

    #[test]
    fn rtt_first_is_rows_by_biased_ms_then_the_rest() {
        use crate::geo::Coords;
        use crate::health::{AdminState, EdgeHealth, EdgeState};
        use crate::steer::Edge;
        use crate::steer::ranks::Group;
        use smallvec::SmallVec;
        use std::sync::Arc;
        let mut x = 0x2545_F491_4F6C_DD1Du64;
        let mut next = move |n: u64| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % n
        };
        for round in 0..300 {
            // Up to 300 edges, so indices past the 256 bits of `moved`
            // are covered.
            let count = 1 + next(if round % 3 == 0 { 300 } else { 12 }) as usize;
            let edges = (0..count)
                .map(|i| {
                    let health =
                        Arc::new(EdgeHealth::new("z", "e", EdgeState::Up, AdminState::Auto));
                    let mut e = Edge::new(
                        format!("e{i}"),
                        smallvec::smallvec!["192.0.2.1".parse().unwrap()],
                        SmallVec::new(),
                        Coords::default(),
                        1,
                        None,
                        health,
                    );
                    e.bias = next(3) as i8 * 40 - 40;
                    e
                })
                .collect::<Vec<_>>();
            let st = Steering::new(edges, Vec::new(), Default::default());
            // A candidate subset in some distance order.
            let mut base: Vec<Ranked> = Vec::new();
            for idx in 0..count as EdgeIdx {
                if next(4) != 0 {
                    let metric = next(10_000) as f64;
                    base.push(Ranked {
                        idx,
                        class: Class::Distance,
                        metric,
                    });
                }
            }
            base.sort_by(|a, b| a.metric.total_cmp(&b.metric));
            let ids: Vec<EdgeIdx> = base.iter().map(|r| r.idx).collect();
            let group = Group::new(&ids, &st.edges);
            // Rows for some edges, candidates or not, as the table keeps them.
            let mut raw: Vec<(RttKey, EdgeIdx, f32)> = Vec::new();
            for e in 0..count as EdgeIdx {
                if next(3) == 0 {
                    let key = RttKey::Prefix("10.0.0.0/8".parse().unwrap());
                    raw.push((key, e, 1.0 + next(50) as f32));
                }
            }
            if raw.is_empty() {
                continue;
            }
            let table = RttTable::new(raw, |e| st.edges[e as usize].scale());
            let key = table.prefix("10.1.2.3".parse().unwrap()).unwrap().key;
            let rows = Rows::of_key(&table, key);
            let got: Vec<Ranked> =
                RttFirst::new(&st, rows, base.iter().copied(), &group.fam[0].all).collect();
            assert_eq!(
                got,
                merged_by_definition(&st, &base, rows.all()),
                "round {round}"
            );
        }
    }
}
