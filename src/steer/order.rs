//! Candidates in metric order. The distance order depends only on the
//! place, so it is computed once per place and kept in a small per-thread
//! cache; the RTT rows of the client's key (often one per /24, too many to
//! cache orders for) are merged in front of it per query, which costs a
//! few comparisons. Edges with an RTT come first by measured ms, then
//! located edges by great-circle km, then partners; bias scales both.

use std::net::IpAddr;

use smallvec::SmallVec;

use super::candidates::{candidates, matching_rule};
use super::locate::Place;
use super::rtt::Rows;
use super::{EdgeIdx, Family, Host, Located, Steering};
use crate::geo::GeoDb;

/// Mean Earth radius, km.
const EARTH_KM: f64 = 6371.0;

/// Squared chord length between two unit vectors: monotonic in the
/// great-circle distance, so it orders edges exactly as haversine would.
pub(super) fn chord2(a: &[f64; 3], b: &[f64; 3]) -> f64 {
    let (x, y, z) = (a[0] - b[0], a[1] - b[1], a[2] - b[2]);
    x * x + y * y + z * z
}

/// Great-circle km from a squared chord (the haversine result).
pub(super) fn km_of(chord2: f64) -> f64 {
    2.0 * EARTH_KM * (chord2.sqrt() / 2.0).min(1.0).asin()
}

/// What a candidate's metric measures; candidates order by class first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Class {
    /// Measured RTT for the client's key, ms.
    Rtt,
    /// Great-circle distance, km (0 for a client with no coordinates).
    Distance,
    /// A partner CDN without RTT data: after every located edge.
    Partner,
}

/// A candidate in order: its class and metric (ms or km, times the bias
/// factor).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Ranked {
    pub idx: EdgeIdx,
    pub class: Class,
    pub metric: f64,
}

const NO_RANK: Ranked = Ranked {
    idx: 0,
    class: Class::Partner,
    metric: 0.0,
};

/// Candidates that can serve a family, best first (stable: equal
/// distances keep the configured order). Depends only on the steering, the
/// host, the family and the place, so it is computed once per place and
/// cached.
#[derive(Clone, Copy)]
pub(super) struct Order {
    /// The rule that chose the candidates.
    pub(super) rule: Option<u32>,
    /// The RTT key the place's location implies (ASN, country or
    /// continent), for clients no RTT prefix covers.
    pub(super) rtt: Option<u32>,
    /// Some candidate has an address of the family (else NODATA).
    pub(super) any_family: bool,
    /// The place's database record located anything (else the client
    /// counts as unknown).
    pub(super) known: bool,
    /// Which edges the list holds ([`Base::members`]).
    members: Option<u64>,
    len: u8,
    list: [Ranked; ORDER_MAX],
}

/// Longest cached order; hosts with more candidates compute theirs per query.
pub(super) const ORDER_MAX: usize = 16;

impl Order {
    pub(super) fn list(&self) -> &[Ranked] {
        &self.list[..self.len as usize]
    }

    /// The order without its metrics, for hosts that never read them.
    pub(super) fn zero_metrics(&mut self) {
        self.list.iter_mut().for_each(|r| r.metric = 0.0);
    }

    /// This order with every located candidate's km from `here` (biased),
    /// as [`compute_order`] gives it when the km are wanted: the order
    /// itself is the same either way.
    pub(super) fn with_km(&self, st: &Steering, here: Option<[f64; 3]>) -> Fresh {
        let mut list: SmallVec<[Ranked; ORDER_MAX]> = SmallVec::from_slice(self.list());
        for r in &mut list {
            let edge = &st.edges[r.idx as usize];
            if let (Class::Distance, Some(e), Some(h)) = (r.class, edge.unit, here) {
                r.metric = km_of(chord2(&e, &h)) * edge.scale();
            }
        }
        Fresh {
            rule: self.rule,
            rtt: self.rtt,
            any_family: self.any_family,
            members: self.members,
            list,
        }
    }

    /// A fresh order as kept (None when it is too long to keep).
    pub(super) fn of(fresh: &Fresh, known: bool) -> Option<Order> {
        if fresh.list.len() > ORDER_MAX {
            return None;
        }
        let mut o = Order {
            rule: fresh.rule,
            rtt: fresh.rtt,
            any_family: fresh.any_family,
            known,
            members: fresh.members,
            len: fresh.list.len() as u8,
            list: [NO_RANK; ORDER_MAX],
        };
        o.list[..fresh.list.len()].copy_from_slice(&fresh.list);
        Some(o)
    }
}

/// (steering uid, host, family, place key) of a cached order.
type OrderKey = (u64, u32, bool, u64);

/// Slots in the per-thread order cache (about 70 KiB a thread). Keys are
/// few (hosts × families × the cities clients come from) and skewed.
const ORDER_SLOTS: usize = 256;

const EMPTY_ORDER: (OrderKey, Order) = (
    (0, 0, false, 0),
    Order {
        rule: None,
        rtt: None,
        any_family: false,
        known: false,
        members: Some(0),
        len: 0,
        list: [NO_RANK; ORDER_MAX],
    },
);

thread_local! {
    static ORDERS: std::cell::RefCell<[(OrderKey, Order); ORDER_SLOTS]> =
        const { std::cell::RefCell::new([EMPTY_ORDER; ORDER_SLOTS]) };
}

/// Empties this thread's order cache, so the next decisions compute their
/// orders afresh (benchmarks of the cold path).
#[doc(hidden)]
pub fn forget_cached_orders() {
    ORDERS.with(|c| c.borrow_mut().fill(EMPTY_ORDER));
}

/// Runs `f` on the order of `host`'s candidates for `place`, from the
/// per-thread cache when it has it, and on the place as resolved. Uid 0
/// never occurs, so empty slots never match.
///
/// `detailed` (explain) wants the kilometres of every candidate, which the
/// precomputed and cached orders of most hosts leave out: it always
/// computes afresh.
#[allow(clippy::too_many_arguments)]
// Inlined into `decide`: when a change elsewhere tips the compiler into a
// call, every steered query pays about 70 instructions more.
#[inline(always)]
pub(super) fn with_order<'s, R>(
    st: &'s Steering,
    host: &Host,
    family: Family,
    mut place: Place<'s>,
    geo: Option<&GeoDb>,
    addr: IpAddr,
    detailed: bool,
    f: impl FnOnce(&OrderRef<'_>, &Place<'s>) -> R,
) -> R {
    let hidx = host_index(st, host);
    let cacheable = !detailed && hidx.is_some();
    let hidx = hidx.unwrap_or(usize::MAX);
    // A host that reads no kilometres took the snapshot's order for the
    // record ([`precomputed`]) before it got here. One that does looks in
    // the per-thread cache first (it keeps them); on a miss the table's
    // order saves the sort.
    let mut table = None;
    if cacheable
        && host.reads_km
        && let (Some(r), Some(t), Some(g)) = (place.record, st.orders.as_deref(), geo)
        && let Some(o) = t.get(g, hidx, family, r)
    {
        if !o.known {
            place.how = Located::Unknown;
        }
        table = Some((o, t.unit(r)));
    }
    let key: OrderKey = (st.uid, hidx as u32, family == Family::V6, place.key);
    // Multiply-xor is mixing enough for a direct-mapped slot: the place
    // key varies in its low bits, the rest rarely.
    let h = (key.3 ^ key.0.rotate_left(29) ^ (u64::from(key.1) << 1 | u64::from(key.2)))
        .wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let slot = (h >> (64 - ORDER_SLOTS.trailing_zeros())) as usize;
    let mut f = Some(f);
    if cacheable {
        // Used in place: an order is a few hundred bytes, not worth a copy.
        let hit = ORDERS.with(|c| {
            let c = c.borrow();
            let (k, o) = &c[slot];
            (*k == key).then(|| {
                if !o.known {
                    place.how = Located::Unknown;
                }
                f.take().map(|f| f(&OrderRef::Cached(o), &place))
            })
        });
        if let Some(Some(r)) = hit {
            return r;
        }
    }
    let f = f.take().expect("not called on a miss");
    let fresh = match table {
        Some((o, here)) => o.with_km(st, here),
        None => {
            if place.is_lazy() {
                match geo.and_then(|g| g.lookup(addr)) {
                    Some(m) => place.location = Some(m.location),
                    // The record says nothing we understand.
                    None => place.how = Located::Unknown,
                }
            }
            compute_order(
                st,
                host,
                family,
                &place,
                place.unit(),
                detailed || host.reads_km,
            )
        }
    };
    if cacheable && let Some(o) = Order::of(&fresh, !matches!(place.how, Located::Unknown)) {
        ORDERS.with(|c| c.borrow_mut()[slot] = (key, o));
    }
    f(&OrderRef::Fresh(&fresh), &place)
}

/// The index of `host` among `st`'s hosts; None for a host that is not
/// one of them (a caller's own), which is never cached.
#[inline]
fn host_index(st: &Steering, host: &Host) -> Option<usize> {
    let hidx = (host as *const Host as usize).wrapping_sub(st.hosts.as_ptr() as usize)
        / std::mem::size_of::<Host>().max(1);
    st.hosts
        .get(hidx)
        .is_some_and(|h| std::ptr::eq(h, host))
        .then_some(hidx)
}

/// The order the snapshot precomputed for `place`'s database record, for a
/// host that reads no kilometres: the common case of a steered query, taken
/// before [`with_order`] so that the decision after it is not a closure
/// called from three places (a call that cost about 50 instructions).
/// Marks `place` unknown when the record locates nothing.
#[inline(always)]
pub(super) fn precomputed<'s>(
    st: &'s Steering,
    host: &Host,
    family: Family,
    place: &mut Place<'s>,
    geo: Option<&GeoDb>,
) -> Option<&'s Order> {
    if host.reads_km {
        return None;
    }
    let (Some(r), Some(t), Some(g)) = (place.record, st.orders.as_deref(), geo) else {
        return None;
    };
    let o = t.get(g, host_index(st, host)?, family, r)?;
    if !o.known {
        place.how = Located::Unknown;
    }
    Some(o)
}

/// An order just computed (possibly longer than a cache slot holds).
pub(super) struct Fresh {
    rule: Option<u32>,
    rtt: Option<u32>,
    any_family: bool,
    members: Option<u64>,
    list: SmallVec<[Ranked; ORDER_MAX]>,
}

/// An order from the cache or just computed.
pub(super) enum OrderRef<'a> {
    Cached(&'a Order),
    Fresh(&'a Fresh),
}

impl OrderRef<'_> {
    #[inline]
    pub fn rule(&self) -> Option<u32> {
        match self {
            OrderRef::Cached(o) => o.rule,
            OrderRef::Fresh(o) => o.rule,
        }
    }
    #[inline]
    pub fn rtt(&self) -> Option<u32> {
        match self {
            OrderRef::Cached(o) => o.rtt,
            OrderRef::Fresh(o) => o.rtt,
        }
    }
    #[inline]
    pub fn any_family(&self) -> bool {
        match self {
            OrderRef::Cached(o) => o.any_family,
            OrderRef::Fresh(o) => o.any_family,
        }
    }
    #[inline]
    pub fn list(&self) -> &[Ranked] {
        match self {
            OrderRef::Cached(o) => o.list(),
            OrderRef::Fresh(o) => &o.list,
        }
    }
    /// The list with its members, for the RTT merge.
    #[inline]
    pub fn base(&self) -> Base<'_> {
        let members = match self {
            OrderRef::Cached(o) => o.members,
            OrderRef::Fresh(o) => o.members,
        };
        Base {
            list: self.list(),
            members,
        }
    }
}

/// A place's order as the RTT merge reads it: the list, and which edges it
/// holds, kept with the order so a query tests a row's edge with one bit.
#[derive(Clone, Copy)]
pub(super) struct Base<'a> {
    pub list: &'a [Ranked],
    /// Bit `i` set when edge `i` is in `list`; None when an edge's index
    /// is past 63 (the merge then scans).
    pub members: Option<u64>,
}

impl<'a> Base<'a> {
    /// `list` with its members worked out.
    #[cfg(test)]
    pub fn of(list: &'a [Ranked]) -> Base<'a> {
        Base {
            list,
            members: members(list),
        }
    }
}

/// [`Base::members`] of a list.
fn members(list: &[Ranked]) -> Option<u64> {
    list.iter()
        .try_fold(0u64, |m, r| (r.idx < 64).then(|| m | 1 << r.idx))
}

/// The candidates for `place` (whose point on the unit sphere is `here`)
/// that serve `family`, nearest first. Without `need_km` the distance
/// metrics are left at 0: the chord orders edges as great-circle distance
/// does, and a host that neither spreads nor weighs cost by km never reads
/// them, so the arcsine per candidate is saved.
pub(super) fn compute_order(
    st: &Steering,
    host: &Host,
    family: Family,
    place: &Place<'_>,
    here: Option<[f64; 3]>,
    need_km: bool,
) -> Fresh {
    let rule = matching_rule(host, place);
    let rtt = if st.rtt.is_empty() {
        None
    } else {
        place
            .location
            .and_then(|l| st.rtt.by_location(&l))
            .map(|h| h.key)
    };
    let mut list: SmallVec<[Ranked; ORDER_MAX]> = SmallVec::new();
    let mut biased = false;
    for &idx in candidates(host, place, rule) {
        let edge = &st.edges[idx as usize];
        if !edge.serves(family) {
            continue;
        }
        let (class, chord) = match (edge.unit, here) {
            (Some(e), Some(h)) => (Class::Distance, chord2(&e, &h)),
            (Some(_), None) => (Class::Distance, 0.0),
            (None, _) => (Class::Partner, 0.0),
        };
        biased |= class == Class::Distance && edge.bias != 0;
        list.push(Ranked {
            idx,
            class,
            metric: chord,
        });
    }
    let km = |r: &mut Ranked| {
        if r.class == Class::Distance {
            r.metric = km_of(r.metric) * st.edges[r.idx as usize].scale();
        }
    };
    if biased {
        // Bias scales kilometres, not chords: order by biased km.
        list.iter_mut().for_each(km);
        sort_ranked(&mut list);
    } else {
        sort_ranked(&mut list);
        if need_km {
            list.iter_mut().for_each(km);
        } else {
            list.iter_mut().for_each(|r| r.metric = 0.0);
        }
    }
    Fresh {
        rule,
        rtt,
        any_family: !list.is_empty(),
        members: members(&list),
        list,
    }
}

/// Insertion sort by (class, metric): short, stable, allocation-free.
fn sort_ranked(list: &mut [Ranked]) {
    let before = |a: &Ranked, b: &Ranked| (a.class, a.metric) > (b.class, b.metric);
    for i in 1..list.len() {
        let mut j = i;
        while j > 0 && before(&list[j - 1], &list[j]) {
            list.swap(j - 1, j);
            j -= 1;
        }
    }
}

/// `base` (a place's distance order) with the candidates that have a row
/// in `rows` (a key's RTT rows, best biased ms first, as [`RttTable`] keeps
/// them) moved in front, in row order. Lazy, so a plain host that finds its
/// live edges among the first rows never reads the rest nor builds a list.
///
/// [`RttTable`]: super::RttTable
pub(super) struct RttFirst<'a> {
    st: &'a Steering,
    base: Base<'a>,
    rows: &'a Rows<'a>,
    /// The next row to read.
    row: usize,
    /// Edges already yielded from a row (a bit per edge, as
    /// [`Base::members`]); without members, the rows are scanned instead.
    moved: u64,
    /// Next position in `base` once the rows are done.
    next: usize,
}

impl<'a> RttFirst<'a> {
    pub(super) fn new(st: &'a Steering, base: Base<'a>, rows: &'a Rows<'a>) -> RttFirst<'a> {
        RttFirst {
            st,
            base,
            rows,
            row: 0,
            moved: 0,
            next: 0,
        }
    }
}

impl Iterator for RttFirst<'_> {
    type Item = Ranked;

    // Inlined into its two loops, where the metric a plain host never
    // reads is dropped.
    #[inline(always)]
    fn next(&mut self) -> Option<Ranked> {
        while self.row < self.rows.len() {
            let (idx, ms) = self.rows.get(self.row);
            self.row += 1;
            let candidate = match self.base.members {
                Some(m) => idx < 64 && m & (1 << idx) != 0,
                None => self.base.list.iter().any(|r| r.idx == idx),
            };
            if candidate {
                if idx < 64 {
                    self.moved |= 1 << idx;
                }
                return Some(Ranked {
                    idx,
                    class: Class::Rtt,
                    metric: f64::from(ms) * self.st.edges[idx as usize].scale(),
                });
            }
        }
        while let Some(r) = self.base.list.get(self.next) {
            self.next += 1;
            let gone = match self.base.members {
                // Every index is below 64 here.
                Some(_) => self.moved & (1 << r.idx) != 0,
                None => self.rows.all().iter().any(|x| x.0 == r.idx),
            };
            if !gone {
                return Some(*r);
            }
        }
        None
    }
}

/// [`RttFirst`] as a list, for the steps that read every candidate.
pub(super) fn merge_rtt(
    st: &Steering,
    base: Base<'_>,
    rows: &Rows<'_>,
) -> SmallVec<[Ranked; ORDER_MAX]> {
    RttFirst::new(st, base, rows).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geo::Coords;
    use crate::health::{AdminState, EdgeHealth, EdgeState};
    use crate::steer::{Edge, RttKey};
    use std::sync::Arc;

    /// What [`RttFirst`] must give, said the long way: the candidates with a
    /// row, by biased ms (ties by row order), then the rest of `base`.
    fn reference(st: &Steering, base: &[Ranked], rows: &[(EdgeIdx, f32)]) -> Vec<Ranked> {
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
        let mut x = 0x2545_F491_4F6C_DD1Du64;
        let mut next = move |n: u64| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % n
        };
        for round in 0..300 {
            // Up to 200 edges, so hosts past the 64 bits of `moved` are covered.
            let count = 1 + next(if round % 3 == 0 { 200 } else { 12 }) as usize;
            let edges = (0..count)
                .map(|i| {
                    let health =
                        Arc::new(EdgeHealth::new("z", "e", EdgeState::Up, AdminState::Auto));
                    let mut e = Edge::new(
                        format!("e{i}"),
                        SmallVec::new(),
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
            let table = super::super::RttTable::new(raw, |e| st.edges[e as usize].scale());
            let key = table.prefix("10.1.2.3".parse().unwrap()).unwrap().key;
            let rows = Rows::of_key(&table, key);
            let got: Vec<Ranked> = RttFirst::new(&st, Base::of(&base), &rows).collect();
            assert_eq!(got, reference(&st, &base, rows.all()), "round {round}");
            assert_eq!(merge_rtt(&st, Base::of(&base), &rows).to_vec(), got);
        }
    }
}
