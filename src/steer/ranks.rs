//! Candidates in metric order, as the files stage keeps them. It ranks the
//! zone's edges once for every point of the database (each distinct pair
//! of coordinates), nearest first, and keeps the first [`RANK_DEPTH`]; a
//! query ([`super::order`]) walks its point's list and keeps the edges of
//! its candidate [`Group`]. So orders cost
//! memory per point, whatever the number of hosts and groups, and a query
//! reads as far down the list as its group's nearest live edges are: a
//! host of 150 candidates stops after the first few, as gdnsd's
//! `auto_dc_limit` keeps only the nearest few, and reads on only when those
//! are down. A client without coordinates takes the group's configured
//! order; one the lists do not cover (an override net's location, a list
//! too short) has its group's order computed, as the ranking would have it.

use std::sync::{Arc, Mutex, Weak};

use super::edge::Edge;
use super::types::{EdgeIdx, Family};
use crate::geo::GeoDb;

/// Mean Earth radius, km.
const EARTH_KM: f64 = 6371.0;

/// Edges ranked per point: a host finds its answer among the first few of
/// its own group; deeper, its order is computed.
pub(crate) const RANK_DEPTH: usize = 64;

/// A rank entry: the edge in the low 14 bits, and whether its metric
/// equals the previous entry's, biased (bit 15) and as a chord (bit 14):
/// equal metrics keep the group's configured order.
pub(super) const TIE_BIASED: u16 = 1 << 15;
pub(super) const TIE_CHORD: u16 = 1 << 14;
pub(super) const EDGE_BITS: u16 = TIE_CHORD - 1;
/// Pads a point's list that was cut short (at the start of a tie run).
pub(super) const END: u16 = EDGE_BITS;

/// At most this many build threads: ranking is a few hundred ms of work,
/// and a reload must stay a quiet neighbour of the query threads.
const MAX_THREADS: usize = 4;

/// Squared chord length between two unit vectors: monotonic in the
/// great-circle distance, so it orders edges exactly as haversine would.
pub(crate) fn chord2(a: &[f64; 3], b: &[f64; 3]) -> f64 {
    let (x, y, z) = (a[0] - b[0], a[1] - b[1], a[2] - b[2]);
    x * x + y * y + z * z
}

/// Great-circle km from a squared chord (the haversine result).
pub(crate) fn km_of(chord2: f64) -> f64 {
    2.0 * EARTH_KM * (chord2.sqrt() / 2.0).min(1.0).asin()
}

/// A set of edges as bits.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct EdgeSet(Box<[u64]>);

impl EdgeSet {
    fn new(edges: usize) -> EdgeSet {
        EdgeSet(vec![0; edges.div_ceil(64)].into_boxed_slice())
    }

    fn insert(&mut self, e: EdgeIdx) {
        self.0[usize::from(e) >> 6] |= 1 << (e & 63);
    }

    #[inline]
    pub(crate) fn contains(&self, e: EdgeIdx) -> bool {
        self.0
            .get(usize::from(e) >> 6)
            .is_some_and(|w| w >> (e & 63) & 1 != 0)
    }
}

/// One family's view of a candidate group.
#[derive(Debug, Default)]
pub(crate) struct Members {
    /// Some candidate serves the family (else NODATA).
    pub any: bool,
    /// Candidates serving the family, own edges and partners.
    pub all: EdgeSet,
    /// Own edges serving the family.
    pub(super) own: EdgeSet,
    /// `own` in configured order.
    pub(super) order: Box<[EdgeIdx]>,
    /// Partners, in configured order (all serve every family).
    pub(super) partners: Box<[EdgeIdx]>,
    /// Some own member has a bias: its order is by biased km.
    pub(super) biased: bool,
}

/// A distinct list of candidate edges (a host's, a rule's, or the edges
/// an override net pins), in configured order.
#[derive(Debug)]
pub(crate) struct Group {
    pub edges: Box<[EdgeIdx]>,
    /// By [`Family::index`].
    pub fam: [Members; 2],
}

impl Group {
    pub(crate) fn new(edges: &[EdgeIdx], all: &[Edge]) -> Group {
        let fam = [Family::V4, Family::V6].map(|f| {
            let mut m = Members {
                all: EdgeSet::new(all.len()),
                own: EdgeSet::new(all.len()),
                ..Members::default()
            };
            let (mut order, mut partners) = (Vec::new(), Vec::new());
            for &e in edges {
                let edge = &all[e as usize];
                if !edge.serves(f) || m.all.contains(e) {
                    continue;
                }
                m.all.insert(e);
                if edge.unit().is_some() {
                    m.own.insert(e);
                    order.push(e);
                    m.biased |= edge.bias != 0;
                } else {
                    partners.push(e);
                }
            }
            m.any = !order.is_empty() || !partners.is_empty();
            m.order = order.into_boxed_slice();
            m.partners = partners.into_boxed_slice();
            m
        });
        Group {
            edges: edges.into(),
            fam,
        }
    }
}

/// The zone's own edges ranked for every point of one database.
pub(crate) struct Ranks {
    /// [`GeoDb::id`] of the database whose points these are.
    geo: u64,
    /// What they were ranked from, so that a build from the same can share them.
    inputs: Inputs,
    /// Entries per point.
    depth: usize,
    list: Box<[u16]>,
}

impl std::fmt::Debug for Ranks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ranks")
            .field("depth", &self.depth)
            .field("points", &(self.list.len() / self.depth.max(1)))
            .finish()
    }
}

/// What a ranking depends on: the database, and per edge index its place
/// and bias scale (none for a partner), compared bit for bit.
#[derive(PartialEq, Eq)]
struct Inputs {
    geo: u64,
    edges: Box<[Option<EdgePlace>]>,
}

/// An edge's unit vector and bias scale, as bits.
type EdgePlace = ([u64; 3], u64);

impl Inputs {
    fn of(geo: &GeoDb, edges: &[Edge]) -> Inputs {
        let bits = |e: &Edge| Some((e.unit()?.map(f64::to_bits), e.scale().to_bits()));
        Inputs {
            geo: geo.id(),
            edges: edges.iter().map(bits).collect(),
        }
    }
}

/// Ranks in use, so that a build whose edges did not move (a pools edit
/// of hosts, groups or addresses; another zone with the same edges) shares
/// them instead of ranking again. Weak: ranks go with the last steering
/// that holds them. Read only while building, never per query.
static SHARED: Mutex<Vec<Weak<Ranks>>> = Mutex::new(Vec::new());

impl Ranks {
    /// The ranks of `edges` over `geo`: ones already in use for the same
    /// inputs, else [`Ranks::build`]'s, kept for the next build to share.
    pub(crate) fn shared(geo: &GeoDb, edges: &[Edge]) -> Option<Arc<Ranks>> {
        let inputs = Inputs::of(geo, edges);
        let found = {
            let mut live = SHARED.lock().unwrap_or_else(|e| e.into_inner());
            live.retain(|w| w.strong_count() > 0);
            live.iter()
                .filter_map(Weak::upgrade)
                .find(|r| r.inputs == inputs)
        };
        if found.is_some() {
            return found;
        }
        // Built outside the lock: two builds at once may both rank; the
        // second simply keeps its own.
        let built = Arc::new(Ranks::build(geo, edges)?);
        SHARED
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(Arc::downgrade(&built));
        Some(built)
    }

    /// Ranks `edges` (those with a place on the map) for every point of
    /// `geo`, on at most [`MAX_THREADS`] threads started here (so they run
    /// at the caller's priority). `None` without such edges, or with more
    /// than an entry holds.
    pub(crate) fn build(geo: &GeoDb, edges: &[Edge]) -> Option<Ranks> {
        let own: Vec<(EdgeIdx, [f64; 3], f64)> = edges
            .iter()
            .enumerate()
            .filter_map(|(i, e)| Some((i as EdgeIdx, e.unit()?, e.scale())))
            .collect();
        if own.is_empty() || edges.len() >= usize::from(EDGE_BITS) {
            return None;
        }
        let biased = edges.iter().any(|e| e.unit().is_some() && e.bias != 0);
        let depth = own.len().min(RANK_DEPTH);
        let points = geo.points();
        let mut list = vec![END; points.len() * depth];
        let threads = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(MAX_THREADS);
        let per = points.len().div_ceil(threads).max(1024);
        std::thread::scope(|s| {
            for (out, pts) in list.chunks_mut(per * depth).zip(points.chunks(per)) {
                let own = &own;
                s.spawn(move || {
                    let mut m: Vec<(f64, f64, EdgeIdx)> = Vec::with_capacity(own.len());
                    for (out, p) in out.chunks_mut(depth).zip(pts) {
                        rank_point(own, biased, p, &mut m, out);
                    }
                });
            }
        });
        Some(Ranks {
            geo: geo.id(),
            inputs: Inputs::of(geo, edges),
            depth,
            list: list.into_boxed_slice(),
        })
    }

    /// Point `p`'s list, if these ranks are `geo`'s.
    #[inline]
    pub(crate) fn of(&self, geo: &GeoDb, p: u32) -> Option<&[u16]> {
        if geo.id() != self.geo {
            return None;
        }
        let at = p as usize * self.depth;
        self.list.get(at..at + self.depth)
    }

    /// Bytes held.
    pub(crate) fn bytes(&self) -> usize {
        self.list.len() * 2
    }
}

/// One point's entries: the edges by (biased km, chord, index), ties
/// marked, cut before a tie run the depth would split.
fn rank_point(
    own: &[(EdgeIdx, [f64; 3], f64)],
    biased: bool,
    p: &[f64; 3],
    m: &mut Vec<(f64, f64, EdgeIdx)>,
    out: &mut [u16],
) {
    m.clear();
    for &(i, unit, scale) in own {
        let c = chord2(&unit, p);
        let primary = if biased { km_of(c) * scale } else { c };
        m.push((primary, c, i));
    }
    let cmp = |a: &(f64, f64, EdgeIdx), b: &(f64, f64, EdgeIdx)| {
        a.0.total_cmp(&b.0)
            .then(a.1.total_cmp(&b.1))
            .then(a.2.cmp(&b.2))
    };
    let mut len = out.len();
    // Only the first `len` (and the one after, for a tie across the cut)
    // are kept: with 150 edges, selecting them first halves the work.
    if m.len() > len {
        m.select_nth_unstable_by(len, cmp);
        m[..len].sort_unstable_by(cmp);
    } else {
        m.sort_unstable_by(cmp);
    }
    if let Some(next) = m.get(len)
        && (next.0 == m[len - 1].0 || next.1 == m[len - 1].1)
    {
        // A tie run across the cut: keep it whole or not at all.
        while len > 0 && (m[len].0 == m[len - 1].0 || m[len].1 == m[len - 1].1) {
            len -= 1;
        }
    }
    for k in 0..len {
        let mut e = m[k].2;
        if k > 0 {
            if m[k].0 == m[k - 1].0 {
                e |= TIE_BIASED;
            }
            if m[k].1 == m[k - 1].1 {
                e |= TIE_CHORD;
            }
        }
        out[k] = e;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geo::Coords;
    use crate::health::{AdminState, EdgeHealth, EdgeState};
    use crate::steer::order::Order;
    use crate::steer::{Ranked, Steering};
    use smallvec::smallvec;
    use std::sync::Arc;

    fn edge(i: usize, lat: f64, lon: f64, bias: i8, v6: bool) -> Edge {
        let health = Arc::new(EdgeHealth::new("z", "e", EdgeState::Up, AdminState::Auto));
        let v6s = if v6 {
            smallvec!["2001:db8::1".parse().unwrap()]
        } else {
            smallvec![]
        };
        let mut e = Edge::new(
            format!("e{i}"),
            smallvec!["192.0.2.1".parse().unwrap()],
            v6s,
            Coords { lat, lon },
            1,
            None,
            health,
        );
        e.bias = bias;
        e
    }

    /// The order by definition, as `compute_order` sorted before the
    /// ranks: the group's members serving the family, stable sorted by
    /// (class, metric), the metric biased km when a member is biased,
    /// else the chord; partners last.
    fn reference(
        st: &Steering,
        group: &[EdgeIdx],
        family: Family,
        here: Option<[f64; 3]>,
    ) -> Vec<EdgeIdx> {
        let mut seen = Vec::new();
        let members: Vec<EdgeIdx> = group
            .iter()
            .copied()
            .filter(|&e| st.edges[e as usize].serves(family))
            .filter(|e| {
                let new = !seen.contains(e);
                seen.push(*e);
                new
            })
            .collect();
        let biased = members.iter().any(|&e| {
            let x = &st.edges[e as usize];
            x.unit().is_some() && x.bias != 0
        });
        let mut keyed: Vec<(u8, f64, EdgeIdx)> = members
            .iter()
            .map(|&e| {
                let x = &st.edges[e as usize];
                match (x.unit(), here) {
                    (Some(u), Some(h)) => {
                        let c = chord2(&u, &h);
                        (0, if biased { km_of(c) * x.scale() } else { c }, e)
                    }
                    (Some(_), None) => (0, 0.0, e),
                    (None, _) => (1, 0.0, e),
                }
            })
            .collect();
        keyed.sort_by(|a, b| (a.0, a.1).partial_cmp(&(b.0, b.1)).unwrap());
        keyed.into_iter().map(|k| k.2).collect()
    }

    #[test]
    fn builds_from_the_same_places_share_ranks() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("geodb/demo-city.mmdb");
        let db = GeoDb::open(&path).unwrap();
        let edges = |lat: f64| vec![edge(0, 51.5, -0.1, 0, true), edge(1, lat, 2.4, 0, false)];
        let a = Ranks::shared(&db, &edges(48.9)).unwrap();
        let b = Ranks::shared(&db, &edges(48.9)).unwrap();
        assert!(Arc::ptr_eq(&a, &b));
        // An edge moved or biased, or another database: ranked again.
        let moved = Ranks::shared(&db, &edges(40.0)).unwrap();
        assert!(!Arc::ptr_eq(&a, &moved));
        let mut biased = edges(48.9);
        biased[1].bias = 20;
        assert!(!Arc::ptr_eq(&a, &Ranks::shared(&db, &biased).unwrap()));
        let again = GeoDb::open(&path).unwrap();
        let other = Ranks::shared(&again, &edges(48.9)).unwrap();
        assert!(!Arc::ptr_eq(&a, &other));
        assert_eq!(a.list, other.list);
        // Gone with the last steering that held them.
        let weak = Arc::downgrade(&a);
        drop((a, b));
        assert_eq!(weak.strong_count(), 0);
        assert!(Ranks::shared(&db, &edges(48.9)).is_some());
    }

    #[test]
    fn orders_from_ranks_match_the_sort_they_replace() {
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = move |n: u64| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % n
        };
        for round in 0..40 {
            // Up to 90 edges, so lists deeper than RANK_DEPTH are cut;
            // some at equal coordinates (ties), some biased, some v4 only.
            let n = 2 + next(if round % 4 == 0 { 90 } else { 12 }) as usize;
            let mut edges: Vec<Edge> = (0..n)
                .map(|i| {
                    let (lat, lon) = if i > 0 && next(4) == 0 {
                        let c = edges_coords(i - 1);
                        (c.0, c.1)
                    } else {
                        ((next(180) as f64) - 90.0, (next(360) as f64) - 180.0)
                    };
                    let bias = if round % 2 == 0 && next(5) == 0 {
                        next(3) as i8 * 30 - 30
                    } else {
                        0
                    };
                    edge(i, lat, lon, bias, next(3) != 0)
                })
                .collect();
            if next(2) == 0 {
                let health = Arc::new(EdgeHealth::new("z", "p", EdgeState::Up, AdminState::Auto));
                edges.push(Edge::partner(
                    "p".into(),
                    b"\x01p\x00".to_vec().into(),
                    1,
                    None,
                    health,
                ));
            }
            let st = Steering::new(edges, Vec::new(), Default::default());
            // Points: every edge's own place (ties with it) and random ones.
            let mut here: Vec<[f64; 3]> = st.edges.iter().filter_map(Edge::unit).collect();
            here.extend((0..30).map(|_| {
                Coords {
                    lat: next(180) as f64 - 90.0,
                    lon: next(360) as f64 - 180.0,
                }
                .unit()
            }));
            let own: Vec<(EdgeIdx, [f64; 3], f64)> = st
                .edges
                .iter()
                .enumerate()
                .filter_map(|(i, e)| Some((i as EdgeIdx, e.unit()?, e.scale())))
                .collect();
            let biased = st.edges.iter().any(|e| e.unit().is_some() && e.bias != 0);
            let depth = own.len().min(RANK_DEPTH);
            for h in &here {
                let mut list = vec![END; depth];
                rank_point(&own, biased, h, &mut Vec::new(), &mut list);
                for _ in 0..6 {
                    let mut g: Vec<EdgeIdx> = (0..st.edges.len() as EdgeIdx)
                        .filter(|_| next(3) == 0)
                        .collect();
                    if g.is_empty() {
                        g.push(0);
                    }
                    // Shuffled: configured order is not index order.
                    for i in (1..g.len()).rev() {
                        g.swap(i, next(i as u64 + 1) as usize);
                    }
                    let group = Group::new(&g, &st.edges);
                    for family in [Family::V4, Family::V6] {
                        let m = &group.fam[family.index()];
                        let want = reference(&st, &g, family, Some(*h));
                        let got: Vec<EdgeIdx> = Order::new(&st, m, Some(h), Some(&list), false)
                            .map(|r| r.idx)
                            .collect();
                        assert_eq!(got, want, "round {round}, group {g:?}");
                        let computed: Vec<EdgeIdx> = Order::new(&st, m, Some(h), None, false)
                            .map(|r| r.idx)
                            .collect();
                        assert_eq!(computed, want, "computed, round {round}");
                        let unplaced: Vec<EdgeIdx> = Order::new(&st, m, None, Some(&list), false)
                            .map(|r| r.idx)
                            .collect();
                        assert_eq!(unplaced, reference(&st, &g, family, None), "no coordinates");
                    }
                }
            }
        }

        fn edges_coords(_i: usize) -> (f64, f64) {
            (48.85, 2.35)
        }
    }

    #[test]
    fn kilometres_when_asked() {
        let st = Steering::new(
            vec![edge(0, 51.5, -0.1, 0, true), edge(1, 48.85, 2.35, 20, true)],
            Vec::new(),
            Default::default(),
        );
        let g = Group::new(&[0, 1], &st.edges);
        let here = Coords {
            lat: 50.0,
            lon: 1.0,
        }
        .unit();
        let got: Vec<Ranked> = Order::new(&st, &g.fam[0], Some(&here), None, true).collect();
        // Paris (bias 20: its km x 0.8) ranks first.
        let km = |e: usize| km_of(chord2(&st.edges[e].unit().unwrap(), &here));
        assert_eq!(got[0].idx, 1);
        assert_eq!(got[0].metric, km(1) * 0.8);
        assert_eq!(got[1].metric, km(0));
        assert!(
            (km(0) - 184.0).abs() < 1.0,
            "London is ~184 km away: {}",
            km(0)
        );
        let bare: Vec<Ranked> = Order::new(&st, &g.fam[0], Some(&here), None, false).collect();
        assert!(bare.iter().all(|r| r.metric == 0.0));
    }

    #[test]
    fn edge_sets() {
        let mut s = EdgeSet::new(130);
        for e in [0, 63, 64, 129] {
            s.insert(e);
        }
        assert!(s.contains(63) && s.contains(64) && s.contains(129));
        assert!(!s.contains(1) && !s.contains(128) && !s.contains(500));
    }
}
