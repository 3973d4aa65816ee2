//! Which edges may answer: the edges an override net pins, else the first
//! matching rule's, else the host's own; then the health filter that keeps
//! the ones that can serve, healthy first, reading the order only as far
//! as the answer can depend on it.

use smallvec::SmallVec;

use super::types::{Class, EdgeIdx, Place, Ranked};
use super::{Host, Steering};
use crate::geo::{Code, Location};
use crate::health::Effective;

/// A rule matches when every criterion it names matches (empty = any).
#[derive(Debug, Default, PartialEq, Clone)]
pub struct Rule {
    pub continent: Vec<Code>,
    pub country: Vec<Code>,
    pub subdivision: Vec<Code>,
    pub asn: Vec<u32>,
    pub edges: Vec<EdgeIdx>,
    /// Its edges' group in the steering, set by [`Steering::new`].
    pub(crate) group: u32,
}

impl Rule {
    pub fn matches(&self, loc: &Location) -> bool {
        fn one<T: PartialEq + Copy>(want: &[T], have: Option<T>) -> bool {
            want.is_empty() || have.is_some_and(|h| want.contains(&h))
        }
        one(&self.continent, loc.continent)
            && one(&self.country, loc.country)
            && one(&self.subdivision, loc.subdivision)
            && one(&self.asn, loc.asn)
    }
}

/// The first of `host`'s rules that matches the place (none for a pinned
/// or unlocated client).
pub(super) fn matching_rule(host: &Host, place: &Place<'_>) -> Option<u32> {
    match (place.pinned, place.location) {
        (None, Some(l)) if !host.rules.is_empty() => host
            .rules
            .iter()
            .position(|r| r.matches(l))
            .map(|i| i as u32),
        _ => None,
    }
}

/// The candidate group of a host for a client: the edges an override net
/// pins, else the first matching rule's, else the host's own.
pub(super) fn group_of(host: &Host, place: &Place<'_>, rule: Option<u32>) -> u32 {
    match (place.pinned, rule) {
        (Some(g), _) => g,
        (None, Some(i)) => host.rules[i as usize].group,
        (None, None) => host.group,
    }
}

/// A candidate that can serve, with its ordering metric and health tier.
#[derive(Clone, Copy)]
pub(super) struct Cand {
    pub idx: EdgeIdx,
    pub class: Class,
    /// The ordering metric (ms or km, biased).
    pub metric: f64,
    /// 0 up, 1 overloaded, 2 drain.
    pub tier: u8,
}

impl Cand {
    pub fn new(r: &Ranked, tier: u8) -> Cand {
        Cand {
            idx: r.idx,
            class: r.class,
            metric: r.metric,
            tier,
        }
    }
}

/// The common case of a plain host: when the first live candidates in
/// `order` are all up edges of our own, the answer is `answers` of them and
/// no health beyond them matters. Pushes them into `out` and returns true
/// then; leaves `out` empty and returns false when the full filter is
/// needed.
pub(super) fn all_up_prefix(
    st: &Steering,
    order: impl IntoIterator<Item = Ranked>,
    wanted: usize,
    out: &mut SmallVec<[EdgeIdx; 8]>,
) -> bool {
    let mut live = 0;
    for r in order {
        let edge = &st.edges[r.idx as usize];
        match edge.health.effective() {
            Effective::Down => continue,
            Effective::Up if !edge.is_partner() => live += 1,
            _ => break,
        }
        if out.len() < wanted {
            out.push(r.idx);
        }
        // Once `answers` of them are up and a second live one is known (it
        // makes the scope matter), the rest cannot change the answer.
        if live >= wanted.max(2) {
            return true;
        }
    }
    out.clear();
    false
}

/// Where [`by_health`] may stop reading the order: once `answers` + 1 up
/// edges of our own are in hand and the last one is out of reach of
/// the first up edge's spread and cost margin, no later candidate can
/// change the answer (every later up edge comes after it, every later
/// overloaded or draining one after every up edge). `None`: read all (a
/// partner split, which moves partners from anywhere to the front).
pub(super) fn enough(host: &Host) -> Option<Enough> {
    host.partner_share.is_none().then_some(Enough {
        wanted: usize::from(host.answers.max(1)),
        km: host.spread_km.max(host.cost_margin_km),
        ms: host.spread_ms.max(host.cost_margin_ms),
    })
}

/// [`enough`]'s bounds.
#[derive(Clone, Copy)]
pub(super) struct Enough {
    wanted: usize,
    km: f64,
    ms: f64,
}

/// The candidates that can serve, by (tier, order): down edges skipped,
/// overloaded ones behind every up edge, draining ones only when nothing
/// else can serve. One atomic load per candidate read; with `stop`, the
/// order is read only as far as [`enough`] says the answer can depend on.
pub(super) fn by_health(
    st: &Steering,
    order: impl IntoIterator<Item = Ranked>,
    stop: Option<Enough>,
) -> SmallVec<[Cand; 16]> {
    let mut list: SmallVec<[Cand; 16]> = SmallVec::new();
    let mut mixed = false;
    let mut first_up: Option<Ranked> = None;
    let mut up_own = 0usize;
    for r in order {
        let edge = &st.edges[r.idx as usize];
        let tier = match edge.health.effective() {
            Effective::Up => 0,
            Effective::Overloaded => 1,
            Effective::Drain => 2,
            Effective::Down => continue,
        };
        mixed |= tier != 0;
        list.push(Cand::new(&r, tier));
        if tier != 0 {
            continue;
        }
        let f = *first_up.get_or_insert(r);
        if edge.is_partner() {
            continue;
        }
        up_own += 1;
        if let Some(e) = stop {
            let width = match f.class {
                Class::Rtt => e.ms,
                Class::Distance => e.km,
                Class::Partner => f64::INFINITY,
            };
            let beyond = r.class != f.class || width <= 0.0 || r.metric > f.metric + width;
            if up_own > e.wanted && beyond {
                break;
            }
        }
    }
    if mixed {
        if list.iter().any(|c| c.tier < 2) {
            list.retain(|c| c.tier < 2);
        }
        // `order` is sorted by metric, so a stable sort by tier orders by
        // (tier, metric).
        stable_sort_by_key(&mut list, |c| c.tier);
    }
    list
}

/// Insertion sort: short lists, stable, allocation-free.
pub(super) fn stable_sort_by_key<K: PartialOrd>(list: &mut [Cand], key: impl Fn(&Cand) -> K) {
    for i in 1..list.len() {
        let mut j = i;
        while j > 0 && key(&list[j - 1]) > key(&list[j]) {
            list.swap(j - 1, j);
            j -= 1;
        }
    }
}
