//! Which edges may answer: the edges an override net pins, else the first
//! matching rule's, else the host's own; then the health filter that keeps
//! the ones that can serve, healthy first, reading the order only as far
//! as the answer can depend on it.

use smallvec::SmallVec;

use super::host::Host;
use super::steering::Steering;
use super::types::{Class, EdgeIdx, Place, Ranked};
use crate::health::Effective;

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::pools::{AlwaysUp, from_str};
    use crate::health::{AdminState, EdgeHealth, EdgeState};
    use std::path::Path;
    use std::sync::Arc;

    const POOLS: &str = "
edges:
  a: { addresses: [192.0.2.1], location: [51.5, -0.1] }
  b: { addresses: [192.0.2.2], location: [50.0, 8.6] }
  c: { addresses: [192.0.2.3], location: [48.9, 2.4] }
  d: { addresses: [192.0.2.4], location: [40.7, -74.0] }
  p: { cname: cdn.partner.example. }
hosts:
  www: {}
";

    /// The edges above, each in the state given (by name; the rest up).
    fn steering(states: &[(&str, EdgeState, AdminState)]) -> Steering {
        let origin = hickory_proto::rr::Name::from_ascii("t.example.").unwrap();
        let mut st = from_str(POOLS, Path::new("t.example.pools.yaml"), &origin, &AlwaysUp)
            .unwrap()
            .steering;
        for &(name, state, admin) in states {
            let e = st.edges.iter().position(|e| e.name == name).unwrap();
            let health = Arc::new(EdgeHealth::new("t.example.", name, state, admin));
            if state == EdgeState::Overloaded {
                // Overloaded is a load above the threshold, not a start state.
                health.feed_load(1.0, std::time::Duration::from_secs(600));
            }
            st.edges[e] = st.edges[e].with_health(health);
        }
        st
    }

    /// `names` in order, as distance-ranked candidates 100 km apart.
    fn order(st: &Steering, names: &[&str]) -> Vec<Ranked> {
        names
            .iter()
            .enumerate()
            .map(|(i, n)| Ranked {
                idx: st.edges.iter().position(|e| e.name == *n).unwrap() as EdgeIdx,
                class: Class::Distance,
                metric: 100.0 * i as f64,
            })
            .collect()
    }

    fn names(st: &Steering, list: &[Cand]) -> Vec<String> {
        list.iter()
            .map(|c| st.edges[c.idx as usize].name.clone())
            .collect()
    }

    #[test]
    fn health_orders_up_then_overloaded_and_drains_only_when_nothing_else_can() {
        use AdminState::{Auto, Drain};
        use EdgeState::{Down, Overloaded, Up};
        let st = steering(&[("a", Overloaded, Auto), ("b", Up, Drain), ("c", Down, Auto)]);
        let got = by_health(&st, order(&st, &["a", "b", "c", "d"]), None);
        assert_eq!(names(&st, &got), ["d", "a"]);
        assert_eq!(got.iter().map(|c| c.tier).collect::<Vec<_>>(), [0, 1]);
        // Only a draining edge left: it serves.
        let st = steering(&[("a", Down, Auto), ("b", Up, Drain), ("d", Down, Auto)]);
        let got = by_health(&st, order(&st, &["a", "b", "c", "d"]), None);
        assert_eq!(names(&st, &got), ["c"]);
        let got = by_health(&st, order(&st, &["a", "b", "d"]), None);
        assert_eq!(names(&st, &got), ["b"]);
        assert!(by_health(&st, order(&st, &["a", "d"]), None).is_empty());
    }

    #[test]
    fn health_stops_reading_once_later_candidates_cannot_change_the_answer() {
        let st = steering(&[]);
        let host = |spread: f64| Host {
            spread_km: spread,
            ..st.hosts[0].clone()
        };
        let all = order(&st, &["a", "b", "c", "d"]);
        // One answer, no spread: the first two up edges decide it.
        let got = by_health(&st, all.clone(), enough(&host(0.0)));
        assert_eq!(names(&st, &got), ["a", "b"]);
        // Spreading over 150 km reads on to the first edge beyond it.
        let got = by_health(&st, all.clone(), enough(&host(150.0)));
        assert_eq!(names(&st, &got), ["a", "b", "c"]);
        // A partner split reads everything.
        let split = Host {
            partner_share: Some(0.5),
            ..st.hosts[0].clone()
        };
        assert_eq!(by_health(&st, all, enough(&split)).len(), 4);
    }

    #[test]
    fn the_all_up_prefix_answers_only_when_health_beyond_it_cannot_matter() {
        use EdgeState::{Down, Overloaded, Up};
        let ask = |st: &Steering, names: &[&str], wanted| {
            let mut out = SmallVec::new();
            let ok = all_up_prefix(st, order(st, names), wanted, &mut out);
            let got: Vec<&str> = out
                .iter()
                .map(|&e| st.edges[e as usize].name.as_str())
                .collect();
            (ok, got.join(" "))
        };
        let st = steering(&[("a", Down, AdminState::Auto)]);
        assert_eq!(ask(&st, &["a", "b", "c"], 1), (true, "b".into()));
        assert_eq!(ask(&st, &["a", "b", "c", "d"], 2), (true, "b c".into()));
        // Fewer than two live ones: the scope depends on health, so no.
        assert_eq!(ask(&st, &["a", "b"], 1), (false, String::new()));
        // An overloaded or partner edge before enough up ones: the full filter.
        let st = steering(&[
            ("b", Overloaded, AdminState::Auto),
            ("c", Up, AdminState::Auto),
        ]);
        assert_eq!(ask(&st, &["a", "b", "c"], 1), (false, String::new()));
        assert_eq!(ask(&st, &["p", "a", "c"], 1), (false, String::new()));
        assert_eq!(ask(&st, &["a", "c", "b"], 1), (true, "a".into()));
    }

    #[test]
    fn the_sort_is_stable() {
        let c = |idx, tier| Cand {
            idx,
            class: Class::Distance,
            metric: 0.0,
            tier,
        };
        let mut list = [c(0, 2), c(1, 0), c(2, 1), c(3, 0), c(4, 2), c(5, 1)];
        stable_sort_by_key(&mut list, |c| c.tier);
        let got: Vec<EdgeIdx> = list.iter().map(|c| c.idx).collect();
        assert_eq!(got, [1, 3, 2, 5, 0, 4]);
    }
}
