//! What RUM has learned: cells keyed by (zone, client network, edge), each
//! its newest samples and a robust estimate of them; which resolvers'
//! users are where; and the arithmetic that turns both into learned rows.
//!
//! A cell keeps its [`KEEP`] newest samples. Its estimate is their median
//! weighted by age (a sample `half_life` old weighs half a new one), so
//! one bad page view cannot move it, and the weights relative to each
//! other do not change as time passes: the estimate is worked out once
//! per sample, not per read. A cell steers once it has `min_samples`
//! samples and is dropped after `max_age` without one.
//!
//! Where several estimates meet (this instance's and other instances'
//! aggregates for one cell; a resolver's linked users for one edge), they
//! are combined by a median weighted by sample count, each capped at
//! [`CAP_FACTOR`] × `min_samples`, so no one network or instance outweighs
//! the others by volume alone.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::Arc;

use ipnet::IpNet;

use super::token::{Id, Net};
use crate::steer::{EdgeIdx, Learned, Steering};

/// Samples a cell keeps.
pub const KEEP: usize = 12;
/// A cell's weight in a combination is at most this many `min_samples`.
pub const CAP_FACTOR: u32 = 4;
/// Highest RTT a beacon may report, ms.
pub const MAX_MS: f64 = 10_000.0;
/// Client networks kept per resolver (the least recently seen go first).
pub const MAX_USERS: usize = 1024;
/// Page views waiting for their other half (probe or beacon).
pub const MAX_PENDING: usize = 200_000;
/// How long a page view waits for its other half, seconds.
pub const PENDING_SECS: u64 = 600;
/// Time stamps of samples are kept in this many seconds a unit, in 16 bits.
const TICK: u64 = 4;
/// Samples further apart than this cannot be told apart in 16 bits.
const SPAN: u64 = (1 << 15) * TICK;

/// One (network, edge) cell.
#[derive(Clone, Debug)]
pub struct Cell {
    /// The edge, as its zone's [`ZoneCells::edges`] index.
    pub edge: u16,
    len: u8,
    next: u8,
    /// Samples received (saturating).
    pub samples: u32,
    /// Unix seconds of the newest sample.
    pub last: u32,
    /// The estimate, ms.
    pub ms: f32,
    /// Samples as ms × 4 and time stamps in [`TICK`]s (both wrapping u16).
    q: [u16; KEEP],
    t: [u16; KEEP],
}

impl Cell {
    pub fn new(edge: u16) -> Cell {
        Cell {
            edge,
            len: 0,
            next: 0,
            samples: 0,
            last: 0,
            ms: 0.0,
            q: [0; KEEP],
            t: [0; KEEP],
        }
    }

    /// Adds a sample of `ms` taken at `now` (unix seconds).
    pub fn add(&mut self, ms: f64, now: u64, half_life: f64) {
        if self.len > 0 && now.saturating_sub(u64::from(self.last)) > SPAN {
            // Too old to compare stamps with; it would weigh nothing anyway.
            self.len = 0;
            self.next = 0;
        }
        let i = usize::from(self.next);
        self.q[i] = (ms.clamp(0.0, MAX_MS) * 4.0).round() as u16;
        self.t[i] = (now / TICK) as u16;
        self.next = ((i + 1) % KEEP) as u8;
        self.len = (usize::from(self.len) + 1).min(KEEP) as u8;
        self.samples = self.samples.saturating_add(1);
        self.last = self.last.max(now.min(u64::from(u32::MAX)) as u32);
        self.ms = self.estimate(half_life);
    }

    /// The kept samples as (ms, ticks before the newest).
    pub fn kept(&self) -> impl Iterator<Item = (f32, u32)> + '_ {
        let newest = (u64::from(self.last) / TICK) as u16;
        (0..usize::from(self.len)).map(move |i| {
            (
                f32::from(self.q[i]) / 4.0,
                u32::from(newest.wrapping_sub(self.t[i])),
            )
        })
    }

    /// The median of the kept samples weighted by age.
    fn estimate(&self, half_life: f64) -> f32 {
        let mut v: Vec<(f32, f64)> = self
            .kept()
            .map(|(ms, ago)| (ms, (-(f64::from(ago) * TICK as f64) / half_life).exp2()))
            .collect();
        weighted_median(&mut v).unwrap_or(0.0)
    }

    /// Rebuilds a cell from persisted parts (samples as (ms, unix secs),
    /// oldest first).
    pub fn restore(edge: u16, samples: u32, kept: &[(f32, u64)], half_life: f64) -> Cell {
        let mut c = Cell::new(edge);
        for &(ms, at) in kept.iter().rev().take(KEEP).rev() {
            c.add(f64::from(ms), at, half_life);
        }
        c.samples = samples.max(u32::from(c.len));
        c
    }

    /// The kept samples as (ms, unix secs), oldest first (for the state file).
    pub fn history(&self) -> Vec<(f32, u64)> {
        let mut v: Vec<(f32, u64)> = self
            .kept()
            .map(|(ms, ago)| {
                (
                    ms,
                    u64::from(self.last).saturating_sub(u64::from(ago) * TICK),
                )
            })
            .collect();
        v.sort_by_key(|s| s.1);
        v
    }
}

/// The lower weighted median of (value, weight); None when empty or
/// weightless.
pub fn weighted_median(v: &mut [(f32, f64)]) -> Option<f32> {
    v.sort_by(|a, b| a.0.total_cmp(&b.0));
    let total: f64 = v.iter().map(|x| x.1).sum();
    if total <= 0.0 || !total.is_finite() {
        return None;
    }
    let mut acc = 0.0;
    for &(x, w) in v.iter() {
        acc += w;
        if acc * 2.0 >= total {
            return Some(x);
        }
    }
    v.last().map(|x| x.0)
}

/// Another instance's aggregate of one cell (from the fleet).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Aggregate {
    pub net: Net,
    pub edge: u16,
    pub ms: f32,
    pub samples: u32,
    /// Unix seconds of its newest sample.
    pub last: u32,
}

/// One zone's cells.
#[derive(Default, Debug)]
pub struct ZoneCells {
    /// Edge names, by the ids cells use (names are stable across reloads,
    /// indices are not).
    pub edges: Vec<Arc<str>>,
    edge_ids: HashMap<Arc<str>, u16>,
    /// This instance's cells, by network.
    pub nets: HashMap<Net, Vec<Cell>>,
    /// Other instances' aggregates: instance → shard → cells.
    pub remote: HashMap<Arc<str>, HashMap<String, Vec<Aggregate>>>,
}

impl ZoneCells {
    /// The id of edge `name`, made on first use.
    pub fn edge_id(&mut self, name: &str) -> u16 {
        if let Some(&i) = self.edge_ids.get(name) {
            return i;
        }
        let i = self.edges.len() as u16;
        let name: Arc<str> = name.into();
        self.edges.push(name.clone());
        self.edge_ids.insert(name, i);
        i
    }

    /// This instance's cells and other instances' aggregates combined:
    /// (net, edge id) → (ms, samples, newest).
    pub fn combined(&self, min_samples: u32) -> HashMap<(Net, u16), (f32, u32, u32)> {
        let cap = min_samples.saturating_mul(CAP_FACTOR).max(1);
        if self.remote.values().all(|s| s.values().all(Vec::is_empty)) {
            // This instance's cells alone: nothing to combine.
            return self
                .nets
                .iter()
                .flat_map(|(net, cells)| {
                    cells
                        .iter()
                        .map(|c| ((*net, c.edge), (c.ms, c.samples, c.last)))
                })
                .collect();
        }
        // (ms, samples, newest) of every estimate of a cell.
        type Parts = Vec<(f32, u32, u32)>;
        let mut parts: HashMap<(Net, u16), Parts> = HashMap::new();
        for (net, cells) in &self.nets {
            for c in cells {
                parts
                    .entry((*net, c.edge))
                    .or_default()
                    .push((c.ms, c.samples, c.last));
            }
        }
        for shards in self.remote.values() {
            for list in shards.values() {
                for a in list {
                    parts
                        .entry((a.net, a.edge))
                        .or_default()
                        .push((a.ms, a.samples, a.last));
                }
            }
        }
        parts
            .into_iter()
            .map(|(k, list)| (k, merge(&list, cap)))
            .collect()
    }

    /// [`ZoneCells::combined`] for one network: (edge id, (ms, samples,
    /// newest)), off the query path (explain).
    pub fn combined_for(&self, net: Net, min_samples: u32) -> Vec<(u16, (f32, u32, u32))> {
        let cap = min_samples.saturating_mul(CAP_FACTOR).max(1);
        let mut parts: HashMap<u16, Vec<(f32, u32, u32)>> = HashMap::new();
        for c in self.nets.get(&net).into_iter().flatten() {
            parts
                .entry(c.edge)
                .or_default()
                .push((c.ms, c.samples, c.last));
        }
        for a in self.remote.values().flat_map(|s| s.values().flatten()) {
            if a.net == net {
                parts
                    .entry(a.edge)
                    .or_default()
                    .push((a.ms, a.samples, a.last));
            }
        }
        parts
            .into_iter()
            .map(|(e, list)| (e, merge(&list, cap)))
            .collect()
    }
}

/// Estimates of one cell (this instance's, other instances'): (ms,
/// samples, newest) combined, each weighing at most `cap` samples.
fn merge(list: &[(f32, u32, u32)], cap: u32) -> (f32, u32, u32) {
    if let [one] = list {
        return *one;
    }
    let samples = list.iter().fold(0u32, |a, p| a.saturating_add(p.1));
    let last = list.iter().map(|p| p.2).max().unwrap_or(0);
    let mut v: Vec<(f32, f64)> = list
        .iter()
        .map(|p| (p.0, f64::from(p.1.min(cap))))
        .collect();
    let ms = weighted_median(&mut v).unwrap_or(list[0].0);
    (ms, samples, last)
}

/// A resolver network and the client networks seen behind it.
#[derive(Default, Debug, Clone)]
pub struct Link {
    /// Client network → unix seconds last linked.
    pub clients: HashMap<Net, u32>,
    /// The ECS subnet its probes carried, if any, and when.
    pub ecs: Option<(IpNet, u32)>,
    pub last: u32,
}

/// A beacon as the aggregator takes it: validated by the listener.
#[derive(Debug, Clone)]
pub struct Beacon {
    /// The zone (presentation form).
    pub zone: Arc<str>,
    pub net: Net,
    pub id: Id,
    /// (edge name, ms), edges known to the zone, ms within 0..=10,000.
    pub rtt: Vec<(Arc<str>, f32)>,
    /// Unix seconds.
    pub at: u64,
}

/// A resolver probe's DNS query as the aggregator takes it.
#[derive(Debug, Clone, Copy)]
pub struct Probe {
    pub id: Id,
    pub resolver: IpAddr,
    /// The ECS subnet the query carried.
    pub ecs: Option<IpNet>,
    pub at: u64,
}

/// Everything learned, owned by the aggregator (readers lock it briefly).
#[derive(Debug)]
pub struct State {
    pub min_samples: u32,
    /// Seconds.
    pub half_life: f64,
    pub max_age: u64,
    pub zones: HashMap<String, ZoneCells>,
    /// Resolver network → its users.
    pub links: HashMap<Net, Link>,
    /// Page views whose probe came first: id → (resolver, ECS, at).
    probes: HashMap<Id, (Net, Option<IpNet>, u64)>,
    /// Page views whose beacon came first: id → (client network, at).
    views: HashMap<Id, (Net, u64)>,
    /// Changed since the tables were last built / the file last written.
    pub dirty: bool,
    pub unsaved: bool,
    /// Networks whose cells changed since the fleet last heard: zone → nets
    /// (kept only while `track` is on: a fleet link takes them).
    pub changed: HashMap<String, std::collections::HashSet<Net>>,
    pub track: bool,
    /// This instance's cells.
    cells: usize,
    /// Counters for the API.
    pub beacons: u64,
    pub samples: u64,
    pub linked: u64,
}

impl State {
    pub fn new(min_samples: u32, half_life: f64, max_age: u64) -> State {
        State {
            min_samples,
            half_life,
            max_age,
            zones: HashMap::new(),
            links: HashMap::new(),
            probes: HashMap::new(),
            views: HashMap::new(),
            dirty: false,
            unsaved: false,
            changed: HashMap::new(),
            track: false,
            cells: 0,
            beacons: 0,
            samples: 0,
            linked: 0,
        }
    }

    /// Takes a beacon's samples and links its page view to its probe.
    pub fn add_beacon(&mut self, b: &Beacon) {
        if !self.zones.contains_key(&*b.zone) {
            self.zones.insert(b.zone.to_string(), ZoneCells::default());
        }
        let z = self.zones.get_mut(&*b.zone).expect("inserted");
        for (edge, ms) in &b.rtt {
            let id = z.edge_id(edge);
            let cells = z.nets.entry(b.net).or_default();
            let at = match cells.iter().position(|c| c.edge == id) {
                Some(i) => i,
                None => {
                    cells.push(Cell::new(id));
                    self.cells += 1;
                    cells.len() - 1
                }
            };
            cells[at].add(f64::from(*ms), b.at, self.half_life);
            self.samples += 1;
        }
        if self.track {
            match self.changed.get_mut(&*b.zone) {
                Some(set) => {
                    set.insert(b.net);
                }
                None => {
                    self.changed
                        .insert(b.zone.to_string(), std::iter::once(b.net).collect());
                }
            }
        }
        self.beacons += 1;
        self.dirty = true;
        self.unsaved = true;
        match self.probes.remove(&b.id) {
            Some((resolver, ecs, _)) => self.link(resolver, ecs, b.net, b.at),
            None => {
                if self.views.len() < MAX_PENDING {
                    self.views.insert(b.id, (b.net, b.at));
                }
            }
        }
    }

    /// Takes a resolver probe whose id checked out; returns whether it
    /// linked a page view.
    pub fn add_probe(&mut self, p: &Probe) -> bool {
        let resolver = Net::of(p.resolver);
        match self.views.remove(&p.id) {
            Some((client, _)) => {
                self.link(resolver, p.ecs, client, p.at);
                true
            }
            None => {
                if self.probes.len() < MAX_PENDING {
                    self.probes.insert(p.id, (resolver, p.ecs, p.at));
                }
                false
            }
        }
    }

    fn link(&mut self, resolver: Net, ecs: Option<IpNet>, client: Net, at: u64) {
        let at32 = at.min(u64::from(u32::MAX)) as u32;
        let l = self.links.entry(resolver).or_default();
        l.clients.insert(client, at32);
        if l.clients.len() > MAX_USERS
            && let Some(old) = l.clients.iter().min_by_key(|(_, t)| **t).map(|(n, _)| *n)
        {
            l.clients.remove(&old);
        }
        if let Some(e) = ecs {
            l.ecs = Some((e, at32));
        }
        l.last = l.last.max(at32);
        self.linked += 1;
        self.dirty = true;
        self.unsaved = true;
    }

    /// Drops cells, aggregates and links older than `max_age`, and page
    /// views nobody completed.
    pub fn expire(&mut self, now: u64) {
        let old = |t: u32| now.saturating_sub(u64::from(t)) > self.max_age;
        let mut gone = false;
        for z in self.zones.values_mut() {
            z.nets.retain(|_, cells| {
                let before = cells.len();
                cells.retain(|c| !old(c.last));
                gone |= cells.len() != before;
                !cells.is_empty()
            });
            for shards in z.remote.values_mut() {
                for list in shards.values_mut() {
                    let before = list.len();
                    list.retain(|a| !old(a.last));
                    gone |= list.len() != before;
                }
                shards.retain(|_, l| !l.is_empty());
            }
            z.remote.retain(|_, s| !s.is_empty());
        }
        for l in self.links.values_mut() {
            let before = l.clients.len();
            l.clients.retain(|_, t| !old(*t));
            gone |= l.clients.len() != before;
        }
        self.links.retain(|_, l| !l.clients.is_empty());
        let stale = |t: u64| now.saturating_sub(t) > PENDING_SECS;
        self.probes.retain(|_, p| !stale(p.2));
        self.views.retain(|_, v| !stale(v.1));
        // A burst of page views leaves big, mostly empty tables behind.
        if self.views.capacity() > 4 * self.views.len() + 1024 {
            self.views.shrink_to_fit();
        }
        if self.probes.capacity() > 4 * self.probes.len() + 1024 {
            self.probes.shrink_to_fit();
        }
        if gone {
            self.dirty = true;
            self.unsaved = true;
            self.recount();
        }
    }

    /// Cells of this instance, and the page views waiting (kept count:
    /// the aggregator asks every tick).
    pub fn counts(&self) -> (usize, usize) {
        (self.cells, self.probes.len() + self.views.len())
    }

    /// Counts the cells again (after a load or an expiry).
    pub fn recount(&mut self) {
        self.cells = self
            .zones
            .values()
            .map(|z| z.nets.values().map(Vec::len).sum::<usize>())
            .sum();
    }

    /// The learned rows of `zone` for steering `st`: client rows (cells
    /// with `min_samples`), resolver rows (their linked users' counting
    /// cells per edge, combined), and linked users per resolver network.
    pub fn rows(&self, zone: &str, st: &Steering) -> Rows {
        let mut out = Rows::default();
        let Some(z) = self.zones.get(zone) else {
            return out;
        };
        // Edge ids → this steering's indices (an edge gone from the pools
        // file learns nothing any more, but its cells wait for it).
        let index: Vec<Option<EdgeIdx>> = z
            .edges
            .iter()
            .map(|n| {
                st.edges
                    .iter()
                    .position(|e| *e.name == **n)
                    .map(|i| i as EdgeIdx)
            })
            .collect();
        let combined = z.combined(self.min_samples);
        let mut by_net: HashMap<Net, Vec<(EdgeIdx, f32, u32)>> = HashMap::new();
        for (&(net, edge), &(ms, samples, _)) in &combined {
            if samples < self.min_samples {
                continue;
            }
            let Some(Some(e)) = index.get(usize::from(edge)) else {
                continue;
            };
            out.clients.push(LearnedRow {
                net: net.ipnet(),
                edge: *e,
                ms,
                samples,
            });
            by_net.entry(net).or_default().push((*e, ms, samples));
        }
        let cap = self.min_samples.saturating_mul(CAP_FACTOR).max(1);
        for (resolver, link) in &self.links {
            let mut per_edge: HashMap<EdgeIdx, Vec<(f32, f64)>> = HashMap::new();
            let mut users = 0u32;
            for client in link.clients.keys() {
                let Some(rows) = by_net.get(client) else {
                    continue;
                };
                users += 1;
                for &(e, ms, samples) in rows {
                    per_edge
                        .entry(e)
                        .or_default()
                        .push((ms, f64::from(samples.min(cap))));
                }
            }
            if users == 0 {
                continue;
            }
            out.users.insert(resolver.ipnet(), users);
            for (e, mut v) in per_edge {
                let samples = v.iter().map(|x| x.1).sum::<f64>() as u32;
                if let Some(ms) = weighted_median(&mut v) {
                    out.resolvers.push(LearnedRow {
                        net: resolver.ipnet(),
                        edge: e,
                        ms,
                        samples,
                    });
                }
            }
        }
        out
    }
}

/// One learned row: a network's estimate for an edge.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LearnedRow {
    /// The client's /24 or /56 (the resolver's, for resolver rows).
    pub net: IpNet,
    pub edge: EdgeIdx,
    pub ms: f32,
    /// Samples behind the estimate.
    pub samples: u32,
}

/// What [`State::rows`] finds for one steering: what the zone's learned
/// table ([`crate::steer::Learned`]) is made of.
#[derive(Default, Debug)]
pub struct Rows {
    pub clients: Vec<LearnedRow>,
    pub resolvers: Vec<LearnedRow>,
    pub users: HashMap<IpNet, u32>,
}

impl Rows {
    /// The zone's learned table for `st`: the client cells, and each
    /// linked resolver's users' rows in the resolver's own cell unless
    /// users of that network measured it themselves (their rows win).
    pub fn table(&self, st: &Steering) -> Learned {
        let own: HashSet<IpNet> = self.clients.iter().map(|c| c.net).collect();
        let cells = self
            .clients
            .iter()
            .chain(self.resolvers.iter().filter(|row| !own.contains(&row.net)));
        Learned::new(
            st.edges_id(),
            cells.map(|row| (row.net, row.edge, row.ms)),
            |e| st.edges[usize::from(e)].scale(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HL: f64 = 1800.0;

    fn beacon(zone: &str, ip: &str, id: u8, rtt: &[(&str, f32)], at: u64) -> Beacon {
        Beacon {
            zone: zone.into(),
            net: Net::of(ip.parse().unwrap()),
            id: [id; 8],
            rtt: rtt.iter().map(|(e, ms)| (Arc::from(*e), *ms)).collect(),
            at,
        }
    }

    #[test]
    fn median_resists_outliers() {
        let mut c = Cell::new(0);
        for i in 0..11 {
            c.add(20.0 + (i % 3) as f64, 1000 + i, HL);
        }
        // One page view on a bad day.
        c.add(9000.0, 1011, HL);
        assert!((20.0..=22.0).contains(&c.ms), "{}", c.ms);
        assert_eq!(c.samples, 12);
        // A plain mean would have said ~770.
        let mean: f32 = c.kept().map(|k| k.0).sum::<f32>() / 12.0;
        assert!(mean > 700.0);
    }

    #[test]
    fn newer_samples_weigh_more() {
        let mut c = Cell::new(0);
        // Six old samples at 100 ms, then six at 30 ms two half-lives later.
        for i in 0..6 {
            c.add(100.0, 10_000 + i, HL);
        }
        for i in 0..6 {
            c.add(30.0, 10_000 + 2 * 1800 + i, HL);
        }
        assert_eq!(c.ms, 30.0);
        // Only the newest KEEP are kept.
        for i in 0..KEEP as u64 {
            c.add(50.0, 20_000 + i, HL);
        }
        assert_eq!(c.ms, 50.0);
        assert_eq!(c.samples, 12 + KEEP as u32);
        let h = c.history();
        assert_eq!(h.len(), KEEP);
        let r = Cell::restore(0, c.samples, &h, HL);
        assert_eq!(r.ms, c.ms);
        assert_eq!(r.samples, c.samples);
        assert_eq!(r.last, c.last);
    }

    #[test]
    fn weighted_median_edges() {
        assert_eq!(weighted_median(&mut []), None);
        assert_eq!(weighted_median(&mut [(5.0, 0.0)]), None);
        assert_eq!(weighted_median(&mut [(5.0, 1.0)]), Some(5.0));
        assert_eq!(weighted_median(&mut [(1.0, 1.0), (9.0, 3.0)]), Some(9.0));
        assert_eq!(weighted_median(&mut [(1.0, 3.0), (9.0, 1.0)]), Some(1.0));
    }

    #[test]
    fn probe_and_beacon_link_in_either_order() {
        let mut s = State::new(1, HL, 86400);
        let probe = |id: u8, resolver: &str| Probe {
            id: [id; 8],
            resolver: resolver.parse().unwrap(),
            ecs: None,
            at: 100,
        };
        assert!(!s.add_probe(&probe(1, "192.0.2.53")));
        s.add_beacon(&beacon("z.", "198.51.100.7", 1, &[("a", 10.0)], 100));
        s.add_beacon(&beacon("z.", "203.0.113.7", 2, &[("a", 10.0)], 100));
        assert!(s.add_probe(&probe(2, "192.0.2.54")));
        let l = &s.links[&Net::of("192.0.2.1".parse().unwrap())];
        assert_eq!(l.clients.len(), 2);
        // A probe nobody completes waits, then goes.
        s.add_probe(&probe(3, "192.0.2.53"));
        assert_eq!(s.counts().1, 1);
        s.expire(100 + PENDING_SECS + 1);
        assert_eq!(s.counts().1, 0);
    }

    #[test]
    fn expiry_drops_old_cells_and_links() {
        let mut s = State::new(1, HL, 3600);
        s.add_beacon(&beacon("z.", "198.51.100.7", 1, &[("a", 10.0)], 1000));
        s.add_beacon(&beacon("z.", "198.51.101.7", 2, &[("a", 10.0)], 4000));
        s.expire(4700);
        assert_eq!(s.counts().0, 1);
        s.expire(7601);
        assert_eq!(s.counts().0, 0);
    }

    #[test]
    fn instances_combine_by_capped_count() {
        let mut z = ZoneCells::default();
        let e = z.edge_id("a");
        let net = Net::of("198.51.100.1".parse().unwrap());
        let mut c = Cell::new(e);
        for i in 0..30 {
            c.add(10.0, 100 + i, HL);
        }
        z.nets.insert(net, vec![c]);
        let agg = |ms: f32, samples: u32| Aggregate {
            net,
            edge: e,
            ms,
            samples,
            last: 200,
        };
        // Another instance with a huge count is capped at 4 x min_samples.
        z.remote.insert(
            "b".into(),
            HashMap::from([("4-198".to_string(), vec![agg(90.0, 1_000_000)])]),
        );
        z.remote.insert(
            "c".into(),
            HashMap::from([("4-198".to_string(), vec![agg(12.0, 60)])]),
        );
        let m = z.combined(20);
        let (ms, samples, last) = m[&(net, e)];
        // 10 ms (30) and 12 ms (60) against 90 ms (1M, capped at 80).
        assert_eq!(ms, 12.0);
        assert_eq!(samples, 1_000_090);
        assert_eq!(last, 200);
    }

    #[test]
    fn a_resolvers_users_fill_its_cell_unless_its_own_users_measured() {
        let origin = hickory_proto::rr::Name::from_ascii("t.example.").unwrap();
        let pools = "edges:\n  lhr: { addresses: [192.0.2.10], location: [51.47, -0.45] }\n  nrt: { addresses: [192.0.2.20], location: [35.76, 140.39] }\nhosts:\n  www: {}\n";
        let st = crate::config::pools::from_str(
            pools,
            std::path::Path::new("t.example.pools.yaml"),
            &origin,
            &crate::config::pools::AlwaysUp,
        )
        .unwrap()
        .steering;
        let row = |net: &str, edge: EdgeIdx, ms: f32| LearnedRow {
            net: net.parse().unwrap(),
            edge,
            ms,
            samples: 5,
        };
        let rows = Rows {
            clients: vec![row("192.0.2.0/24", 0, 50.0), row("203.0.113.0/24", 0, 9.0)],
            // Two resolvers' users say nrt; the second resolver's network
            // has users of its own, who say lhr.
            resolvers: vec![
                row("198.51.100.0/24", 1, 20.0),
                row("203.0.113.0/24", 1, 1.0),
            ],
            users: HashMap::new(),
        };
        let t = rows.table(&st);
        assert_eq!(t.edges_id(), st.edges_id());
        assert_eq!(t.cells(), 3);
        let at = |a: &str| t.rows(a.parse().unwrap()).to_vec();
        assert_eq!(at("192.0.2.1"), [(0, 50.0)]);
        assert_eq!(at("198.51.100.53"), [(1, 20.0)]);
        assert_eq!(at("203.0.113.53"), [(0, 9.0)]);
    }
}
