//! Candidates in metric order (great-circle distance), computed once per
//! place and kept in a small per-thread cache, so the per-query work is
//! health, spreading and the scope.

use std::net::IpAddr;

use smallvec::SmallVec;

use super::candidates::{candidates, matching_rule};
use super::locate::Place;
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

/// Squared chord of a great-circle distance in km (capped at antipodes).
pub(super) fn chord2_of(km: f64) -> f64 {
    let c = 2.0
        * (km / (2.0 * EARTH_KM))
            .min(std::f64::consts::FRAC_PI_2)
            .sin();
    c * c
}

/// Candidates that can serve a family, nearest first (stable: equal
/// distances keep the configured order). Depends only on the steering, the
/// host, the family and the place, so it is computed once per place and
/// cached.
#[derive(Clone, Copy)]
pub(super) struct Order {
    /// The rule that chose the candidates.
    rule: Option<u32>,
    /// Some candidate has an address of the family (else NODATA).
    any_family: bool,
    /// The place's database record located anything (else the client
    /// counts as unknown).
    known: bool,
    len: u8,
    list: [(EdgeIdx, f64); ORDER_MAX],
}

/// Longest cached order; hosts with more candidates compute theirs per query.
const ORDER_MAX: usize = 16;

impl Order {
    fn list(&self) -> &[(EdgeIdx, f64)] {
        &self.list[..self.len as usize]
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
        any_family: false,
        known: false,
        len: 0,
        list: [(0, 0.0); ORDER_MAX],
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
pub(super) fn with_order<'s, R>(
    st: &'s Steering,
    host: &Host,
    family: Family,
    mut place: Place<'s>,
    geo: Option<&GeoDb>,
    addr: IpAddr,
    f: impl FnOnce(&OrderRef<'_>, &Place<'s>) -> R,
) -> R {
    // The host's index identifies it in the key; a host that is not one of
    // `st`'s (a caller's own) is never cached.
    let hidx = (host as *const Host as usize).wrapping_sub(st.hosts.as_ptr() as usize)
        / std::mem::size_of::<Host>().max(1);
    let cacheable = st.hosts.get(hidx).is_some_and(|h| std::ptr::eq(h, host));
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
    if place.is_lazy() {
        match geo.and_then(|g| g.lookup(addr)) {
            Some(m) => place.location = Some(m.location),
            // The record says nothing we understand.
            None => place.how = Located::Unknown,
        }
    }
    let fresh = compute_order(st, host, family, &place);
    if fresh.list.len() <= ORDER_MAX && cacheable {
        let mut o = Order {
            rule: fresh.rule,
            any_family: fresh.any_family,
            known: !matches!(place.how, Located::Unknown),
            len: fresh.list.len() as u8,
            list: [(0, 0.0); ORDER_MAX],
        };
        o.list[..fresh.list.len()].copy_from_slice(&fresh.list);
        ORDERS.with(|c| c.borrow_mut()[slot] = (key, o));
    }
    f(&OrderRef::Fresh(&fresh), &place)
}

/// An order just computed (possibly longer than a cache slot holds).
pub(super) struct Fresh {
    rule: Option<u32>,
    any_family: bool,
    list: SmallVec<[(EdgeIdx, f64); ORDER_MAX]>,
}

/// An order from the cache or just computed.
pub(super) enum OrderRef<'a> {
    Cached(&'a Order),
    Fresh(&'a Fresh),
}

impl OrderRef<'_> {
    pub fn rule(&self) -> Option<u32> {
        match self {
            OrderRef::Cached(o) => o.rule,
            OrderRef::Fresh(o) => o.rule,
        }
    }
    pub fn any_family(&self) -> bool {
        match self {
            OrderRef::Cached(o) => o.any_family,
            OrderRef::Fresh(o) => o.any_family,
        }
    }
    pub fn list(&self) -> &[(EdgeIdx, f64)] {
        match self {
            OrderRef::Cached(o) => o.list(),
            OrderRef::Fresh(o) => &o.list,
        }
    }
}

/// The candidates for `place` that serve `family`, nearest first.
fn compute_order(st: &Steering, host: &Host, family: Family, place: &Place<'_>) -> Fresh {
    let rule = matching_rule(host, place);
    let here = place.unit();
    let mut list: SmallVec<[(EdgeIdx, f64); ORDER_MAX]> = SmallVec::new();
    for &idx in candidates(host, place, rule) {
        let edge = &st.edges[idx as usize];
        if edge.serves(family) {
            list.push((idx, here.map_or(0.0, |h| chord2(&edge.unit, &h))));
        }
    }
    // Insertion sort: short, stable, allocation-free.
    for i in 1..list.len() {
        let mut j = i;
        while j > 0 && list[j - 1].1 > list[j].1 {
            list.swap(j - 1, j);
            j -= 1;
        }
    }
    Fresh {
        rule,
        any_family: !list.is_empty(),
        list,
    }
}
