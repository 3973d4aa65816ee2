//! The one decision: locate the client, pick its candidate group, read the
//! group's order at its place (RTT rows first), keep what can serve, and
//! share among near-equal edges. The query path, `explain` (through a
//! detailed [`Trace`]) and the status page all run it.

use std::net::IpAddr;

use smallvec::SmallVec;

use super::candidates::{self, Cand};
use super::host::Host;
use super::live::Learned;
use super::order::{Order, RttFirst};
use super::overlay::Hit;
use super::overlay::NetTarget;
use super::ranks::{Members, chord2, km_of};
use super::rtt::{Rows, hit_of};
use super::scope::Located4;
use super::spread;
use super::steering::{NO_GROUP, Steering};
use super::types::{
    AllDown, Client, Decision, EdgeIdx, Family, Located, Outcome, Place, Ranked, RttKey, Trace,
};
use crate::geo::{Coords, GeoDb};

/// Where is the client: the most specific override net holding `addr`,
/// else the database. The one locating path (the decision below takes it
/// too).
pub fn locate<'s>(st: &'s Steering, geo: Option<&'s GeoDb>, addr: IpAddr) -> Place<'s> {
    place(st, geo, addr, st.overlay.find(&st.rtt, addr))
}

/// [`locate`], the overlay already searched. Always inlined: a call
/// returning the large `Place` cost ~30 instructions a query (callgrind).
#[inline(always)]
fn place<'s>(
    st: &'s Steering,
    geo: Option<&'s GeoDb>,
    addr: IpAddr,
    hit: Option<Hit>,
) -> Place<'s> {
    if let Some(n) = hit.and_then(|h| h.net) {
        let (net, target) = st.nets.get(n);
        let g = st.net_groups[n as usize];
        return Place {
            how: Located::Net(*net),
            location: match target {
                NetTarget::Location(l) => Some(l),
                NetTarget::Edges(_) => None,
            },
            loc: None,
            pinned: (g != NO_GROUP).then_some(g),
        };
    }
    let Some((g, (loc, prefix))) = geo.and_then(|g| Some((g, g.locate(addr)?))) else {
        return Place::UNKNOWN;
    };
    Place {
        how: Located::Db(crate::geo::network(crate::geo::normalize(addr), prefix)),
        location: Some(g.location(loc)),
        loc: Some(loc),
        pinned: None,
    }
}

/// The IPv4 address inside a v4-mapped, 6to4 or Teredo address (as
/// [`crate::geo::normalize`] finds it) and how many bits precede it; the
/// address itself and 0 otherwise. Teredo's obfuscated client address is
/// the last 32 bits, so its prefixes line up from bit 96 like v4-mapped.
fn embedded_v4(addr: IpAddr) -> (IpAddr, u8) {
    match (addr, crate::geo::normalize(addr)) {
        (IpAddr::V6(a), v4 @ IpAddr::V4(_)) => {
            (v4, if a.segments()[0] == 0x2002 { 16 } else { 96 })
        }
        _ => (addr, 0),
    }
}

/// Chooses the edges for one query. Pure: the same inputs (and live
/// state) give the same decision, on every instance of a fleet.
pub fn decide<T: Trace>(
    st: &Steering,
    host: &Host,
    geo: Option<&GeoDb>,
    client: Client,
    family: Family,
    trace: &mut T,
) -> Decision {
    // An IPv4 client inside an IPv6 address (v4-mapped, 6to4, Teredo) is
    // steered as that IPv4 address, as the database locates it: nets,
    // spreading and the scope then work in its IPv4 bits, and the scope is
    // put back into IPv6 bits at the end. An override net written for the
    // IPv6 address itself still wins.
    let (mut addr, mut offset) = embedded_v4(client.addr);
    let mut hit = st.overlay.find(&st.rtt, addr);
    if offset != 0
        && let Some(h) = st.overlay.find(&st.rtt, client.addr)
        && h.net.is_some()
    {
        (addr, offset, hit) = (client.addr, 0, Some(h));
    }
    let source = client.ecs_source.map(|s| {
        if offset > 0 {
            s.saturating_sub(offset).min(32)
        } else {
            s
        }
    });
    let place = place(st, geo, addr, hit);
    trace.located(place.how, place.location);
    let rule = candidates::matching_rule(host, &place);
    trace.rule(rule.map(|r| r as usize));
    let group = st.group(candidates::group_of(host, &place, rule));
    let m = &group.fam[family.index()];
    let at = Located4 {
        raw: client.addr,
        addr,
        offset,
        source,
        hit,
    };

    // RTT rows: the most specific prefix, else what the location implies
    // (ASN, country, continent); a learned cell as a /24 or /56 prefix.
    let prefix = hit.and_then(|h| hit_of(h.rtt));
    let key = match prefix {
        Some(p) => Some(p.key),
        None if st.rtt.is_empty() => None,
        None => place
            .location
            .and_then(|l| st.rtt.by_location(l))
            .map(|h| h.key),
    };
    let mut rows = key.map_or_else(Rows::default, |k| Rows::of_key(&st.rtt, k));
    let guard = if T::LEARNED { st.live.learned() } else { None };
    let learned: Option<&Learned> = guard
        .as_deref()
        .and_then(|l| l.for_edges(st.edges_id))
        .filter(|l| l.cells() > 0);
    let mut floor = 0;
    let mut union: SmallVec<[(EdgeIdx, f32); 16]> = SmallVec::new();
    let mut learned_key = None;
    if let Some(l) = learned {
        let cell = l.rows(addr);
        floor = l.cell_len(addr).unwrap_or(0);
        let file_len = prefix.and_then(|p| p.prefix).unwrap_or(0);
        if !cell.is_empty() && file_len <= floor {
            // The cell's own rows unless a file prefix of its length has
            // rows too (a copy per query cost ~60 instructions).
            rows = if file_len == floor {
                learned_merge(st, rows.all(), cell, &mut union);
                Rows::of(&union)
            } else {
                Rows::of(cell)
            };
            if T::DETAILED {
                learned_key = Some(RttKey::Prefix(crate::geo::network(addr, floor)));
            }
        }
    }

    // The client's point, and the ranks kept for it.
    let unplaced;
    let (here, list) = match (place.loc, geo) {
        (Some(loc), Some(g)) => match g.point(loc) {
            Some(p) => (
                Some(&g.points()[p as usize]),
                st.ranks.as_deref().and_then(|r| r.of(g, p)),
            ),
            None => (None, None),
        },
        _ => {
            unplaced = place.location.and_then(|l| l.coords).map(Coords::unit);
            (unplaced.as_ref(), None)
        }
    };
    let km = T::DETAILED || host.reads_km;
    let order = || Order::new(st, m, here, list, km);
    if T::DETAILED {
        // Every candidate with its distance and state, for explain.
        for &idx in &group.edges {
            let edge = &st.edges[idx as usize];
            let km = here.zip(edge.unit()).map(|(h, e)| km_of(chord2(&e, h)));
            trace.candidate(idx, km, edge.health.effective());
        }
        if let Some(RttKey::Prefix(cell)) = learned_key {
            trace.learned(cell);
        }
        let shown = learned_key.as_ref().or(key.map(|k| st.rtt.key(k)));
        trace.rtt(shown.map(|k| (k, rows.all())));
        let all: Vec<Ranked> = RttFirst::new(st, rows, order(), &m.all).collect();
        trace.ranked(&all);
    }
    let ctx = Chooser {
        st,
        host,
        m,
        at: &at,
        how: place.how,
        floor,
    };
    if rows.is_empty() {
        ctx.choose(order, trace)
    } else {
        ctx.choose(|| RttFirst::new(st, rows, order(), &m.all), trace)
    }
}

/// A file prefix's rows and learned rows of the same cell, one list: the
/// file's row wins for an edge both have; best biased ms first.
fn learned_merge(
    st: &Steering,
    file: &[(EdgeIdx, f32)],
    cell: &[(EdgeIdx, f32)],
    out: &mut SmallVec<[(EdgeIdx, f32); 16]>,
) {
    out.extend_from_slice(file);
    out.extend(
        cell.iter()
            .filter(|c| !file.iter().any(|f| f.0 == c.0))
            .copied(),
    );
    let biased = |r: &(EdgeIdx, f32)| f64::from(r.1) * st.edges[r.0 as usize].scale();
    out.sort_by(|a, b| biased(a).total_cmp(&biased(b)).then(a.0.cmp(&b.0)));
}

/// What choosing needs besides the order.
struct Chooser<'a> {
    st: &'a Steering,
    host: &'a Host,
    m: &'a Members,
    at: &'a Located4,
    how: Located,
    /// The least ECS scope (learned cells).
    floor: u8,
}

impl Chooser<'_> {
    /// Picks from the candidates in metric order (`order` gives a fresh
    /// iterator over them, read as far as needed): health first, then the
    /// partner split, the cost margin and the capacity shares, then
    /// `answers` of them (a partner answers alone, with its CNAME).
    fn choose<I: Iterator<Item = Ranked>, T: Trace>(
        &self,
        order: impl Fn() -> I,
        trace: &mut T,
    ) -> Decision {
        let (st, host, at) = (self.st, self.host, self.at);
        let mut decision = Decision {
            outcome: Outcome::Edges,
            edges: SmallVec::new(),
            scope: 0,
        };
        if !self.m.any {
            decision.outcome = Outcome::NoData;
            // NODATA depends on where the client is when a net or a rule
            // chose the candidates: elsewhere the same name may have
            // addresses.
            if !st.nets.is_empty() || !host.rules.is_empty() {
                decision.scope = at.scope(st, self.how, None, self.floor);
            }
            return decision;
        }
        let wanted = usize::from(host.answers.max(1));
        if host.plain && candidates::all_up_prefix(st, order(), wanted, &mut decision.edges) {
            decision.scope = at.scope(st, self.how, None, self.floor);
            return decision;
        }
        let mut list = candidates::by_health(st, order(), candidates::enough(host));
        if list.is_empty() {
            match host.all_down {
                AllDown::Serve => list.extend(order().map(|r| Cand::new(&r, 0))),
                AllDown::Fallback => decision.outcome = Outcome::Fallback,
                AllDown::Servfail => decision.outcome = Outcome::ServFail,
                AllDown::Empty => decision.outcome = Outcome::Empty,
            }
        }
        let (addr, source) = (at.addr, at.source);
        let split_bits = spread::partner_split(st, host, &mut list, addr, source, trace);
        spread::cost_first(st, host, &mut list, trace);
        let spread_bits = spread::spread(st, host, &mut list, addr, source, trace);
        match list.first() {
            Some(c) if st.edges[c.idx as usize].is_partner() => {
                decision.outcome = Outcome::Partner(c.idx);
                decision.edges.push(c.idx);
            }
            _ => decision.edges.extend(
                list.iter()
                    .filter(|c| !st.edges[c.idx as usize].is_partner())
                    .take(wanted)
                    .map(|c| c.idx),
            ),
        }
        // ECS scope: how much of the client's address decided this answer.
        // With one possible edge and nothing keyed on location, none of it.
        if !st.nets.is_empty() || !host.rules.is_empty() || list.len() > 1 {
            decision.scope = at.scope(st, self.how, split_bits.max(spread_bits), self.floor);
        }
        decision
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::pools::{AlwaysUp, from_str};
    use crate::steer::Learned;
    use ipnet::IpNet;
    use std::path::Path;
    use std::sync::Arc;

    const POOLS: &str = "
edges:
  lhr: { addresses: [192.0.2.10], location: [51.47, -0.45] }
  fra: { addresses: [192.0.2.20], location: [50.03, 8.57] }
  iad: { addresses: [198.51.100.10], location: [38.95, -77.45] }
nets:
  10.0.0.0/8: [51.5, -0.1]
hosts:
  www: {}
";

    /// The pools above with `rtt` (an RTT file) and a learned table of
    /// `cells`.
    fn steering(rtt: &str, cells: &[(&str, &str, f32)]) -> Steering {
        let origin = hickory_proto::rr::Name::from_ascii("t.example.").unwrap();
        let p = from_str(POOLS, Path::new("t.example.pools.yaml"), &origin, &AlwaysUp).unwrap();
        let table =
            crate::config::rtt::from_bytes(rtt.as_bytes(), Path::new("t.rtt.csv"), &p.steering, 1)
                .unwrap();
        let st = p.steering.with_rtt(Arc::new(table));
        let idx = |n: &str| st.edges.iter().position(|e| e.name == n).unwrap() as EdgeIdx;
        let learned = Learned::new(
            st.edges_id(),
            cells
                .iter()
                .map(|&(c, e, ms)| (c.parse().unwrap(), idx(e), ms)),
            |_| 1.0,
        );
        st.live().set_learned(Some(Arc::new(learned)));
        st
    }

    fn ask(st: &Steering, addr: &str, source: u8) -> (String, u8) {
        let client = Client {
            addr: addr.parse().unwrap(),
            ecs_source: Some(source),
        };
        let d = decide(st, &st.hosts[0], None, client, Family::V4, &mut ());
        (st.edges[d.edges[0] as usize].name.clone(), d.scope)
    }

    const HEADER: &str = "client,edge,rtt_ms,samples\n";

    #[test]
    fn learned_cells_rank_like_prefix_rows() {
        // In the London net, lhr is nearest; a learned cell says iad.
        let st = steering(HEADER, &[("10.1.2.0/24", "iad", 5.0)]);
        assert_eq!(ask(&st, "10.1.2.3", 24), ("iad".into(), 24));
        // Another /24 of the net: no cell, nearest, but scoped to the cell
        // length so it is not cached for the learned one.
        assert_eq!(ask(&st, "10.1.3.3", 16), ("lhr".into(), 24));
    }

    #[test]
    fn file_prefixes_longer_win_equal_merge_shorter_lose() {
        let rtt =
            format!("{HEADER}10.1.2.0/25,fra,9,1\n10.1.3.0/24,fra,50,1\n10.1.0.0/16,lhr,1,1\n");
        let st = steering(
            &rtt,
            &[
                ("10.1.2.0/24", "iad", 5.0),
                ("10.1.3.0/24", "iad", 20.0),
                ("10.1.3.0/24", "fra", 1.0),
                ("10.1.4.0/24", "iad", 5.0),
            ],
        );
        // A /25 file row beats the learned /24.
        assert_eq!(ask(&st, "10.1.2.3", 24).0, "fra");
        // The same /24: merged, the file's fra (50 ms) over the learned 1 ms.
        assert_eq!(ask(&st, "10.1.3.3", 24).0, "iad");
        // A /16 file row loses to the learned /24.
        assert_eq!(ask(&st, "10.1.4.3", 24).0, "iad");
        assert_eq!(ask(&st, "10.1.5.3", 24).0, "lhr");
    }

    #[test]
    fn learned_rows_of_another_edge_list_are_ignored() {
        let st = steering(HEADER, &[]);
        st.live().set_learned(Some(Arc::new(Learned::new(
            st.edges_id() ^ 1,
            [("10.1.2.0/24".parse().unwrap(), 2, 5.0)],
            |_| 1.0,
        ))));
        assert_eq!(ask(&st, "10.1.2.3", 24), ("lhr".into(), 8));
    }

    /// A trace that turns learned rows off and sees which cell decided.
    #[derive(Default)]
    struct Cells {
        seen: Option<IpNet>,
    }

    impl Trace for Cells {
        const DETAILED: bool = true;
        fn learned(&mut self, cell: IpNet) {
            self.seen = Some(cell);
        }
    }

    struct Without;

    impl Trace for Without {
        const LEARNED: bool = false;
    }

    #[test]
    fn traces_see_the_deciding_cell_or_turn_learned_rows_off() {
        let st = steering(HEADER, &[("10.1.2.0/24", "iad", 5.0)]);
        let client = Client {
            addr: "10.1.2.3".parse().unwrap(),
            ecs_source: Some(24),
        };
        let mut t = Cells::default();
        let d = decide(&st, &st.hosts[0], None, client, Family::V4, &mut t);
        assert_eq!(st.edges[d.edges[0] as usize].name, "iad");
        assert_eq!(t.seen, Some("10.1.2.0/24".parse().unwrap()));
        let d = decide(&st, &st.hosts[0], None, client, Family::V4, &mut Without);
        assert_eq!(st.edges[d.edges[0] as usize].name, "lhr");
        // Another /24: no cell decided.
        let mut t = Cells::default();
        let other = Client {
            addr: "10.1.3.3".parse().unwrap(),
            ..client
        };
        decide(&st, &st.hosts[0], None, other, Family::V4, &mut t);
        assert_eq!(t.seen, None);
    }
}
