//! Choosing edges: candidates (override nets, rules) → family and health
//! filter → order by great-circle distance → spread by weight.
//!
//! Like gdnsd, three jobs stay apart: *where is the client* ([`locate`]),
//! *which edges are up* ([`crate::health`]), and *failover* (walk the
//! ordered list, skip what can't serve). [`decide`] is pure CPU work and
//! allocates nothing unless a host has more than 16 candidates.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use ipnet::IpNet;
use smallvec::SmallVec;

use crate::geo::{Code, Coords, GeoDb, Location};
use crate::health::{EdgeHealth, Effective};

/// Edges are referred to by their index in [`Steering::edges`].
pub type EdgeIdx = u16;

/// Address family asked for (A or AAAA).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    V4,
    V6,
}

/// An edge server (or PoP) answers are made of.
#[derive(Debug)]
pub struct Edge {
    pub name: String,
    pub v4: SmallVec<[Ipv4Addr; 2]>,
    pub v6: SmallVec<[Ipv6Addr; 2]>,
    pub coords: Coords,
    /// Position on the unit sphere: ordering by straight-line (chord)
    /// distance equals ordering by great-circle distance, without trig.
    unit: [f64; 3],
    pub weight: u32,
    /// The health check, if any.
    pub check: Option<Arc<crate::health::CheckSpec>>,
    /// Shared with the health checker; carried over across reloads by name.
    pub health: Arc<EdgeHealth>,
}

impl Edge {
    pub fn new(
        name: String,
        v4: SmallVec<[Ipv4Addr; 2]>,
        v6: SmallVec<[Ipv6Addr; 2]>,
        coords: Coords,
        weight: u32,
        check: Option<Arc<crate::health::CheckSpec>>,
        health: Arc<EdgeHealth>,
    ) -> Edge {
        Edge {
            name,
            v4,
            v6,
            coords,
            unit: coords.unit(),
            weight,
            check,
            health,
        }
    }

    pub fn serves(&self, family: Family) -> bool {
        match family {
            Family::V4 => !self.v4.is_empty(),
            Family::V6 => !self.v6.is_empty(),
        }
    }
}

/// A rule matches when every criterion it names matches (empty = any).
#[derive(Debug, Default)]
pub struct Rule {
    pub continent: Vec<Code>,
    pub country: Vec<Code>,
    pub subdivision: Vec<Code>,
    pub asn: Vec<u32>,
    pub edges: Vec<EdgeIdx>,
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

/// What to answer when no candidate edge can serve.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AllDown {
    /// Answer as if all were up (fail open, as gdnsd does).
    #[default]
    Serve,
    /// Answer the host's `fallback` CNAME.
    Fallback,
    Servfail,
    /// NOERROR with no records (fail closed).
    Empty,
}

/// A steered name.
#[derive(Debug)]
pub struct Host {
    /// Relative name as configured (`www`), for logs, metrics and explain.
    pub name: String,
    pub candidates: Vec<EdgeIdx>,
    pub rules: Vec<Rule>,
    pub answers: u8,
    pub ttl: u32,
    pub spread_km: f64,
    /// Wire-form CNAME target.
    pub fallback: Option<Box<[u8]>>,
    pub all_down: AllDown,
}

/// Where an override net sends its clients.
#[derive(Debug, Clone)]
pub enum NetTarget {
    Location(Location),
    Edges(Vec<EdgeIdx>),
}

/// Override nets, checked before the GeoIP DB; the most specific wins.
#[derive(Debug, Default)]
pub struct Nets {
    /// Sorted by prefix length, longest first, so the first hit wins.
    list: Vec<(IpNet, NetTarget)>,
}

impl Nets {
    pub fn new(mut list: Vec<(IpNet, NetTarget)>) -> Nets {
        list.sort_by_key(|(n, _)| std::cmp::Reverse(n.prefix_len()));
        Nets { list }
    }
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }
    pub fn lookup(&self, ip: IpAddr) -> Option<&(IpNet, NetTarget)> {
        self.lookup_index(ip).map(|(_, n)| n)
    }

    /// [`Nets::lookup`] with the net's position in the list.
    fn lookup_index(&self, ip: IpAddr) -> Option<(usize, &(IpNet, NetTarget))> {
        self.list
            .iter()
            .enumerate()
            .find(|(_, (n, _))| n.contains(&ip))
    }

    /// A scope must not cover an override net the client is not in, or a
    /// caching resolver would hand that net our answer. Lengthen `scope`
    /// until the client's block at that length excludes every such net.
    pub fn narrow_scope(&self, addr: IpAddr, scope: u8) -> u8 {
        let mut scope = scope;
        for (net, _) in &self.list {
            // Nets of the other family can't overlap the client's block.
            if net.prefix_len() <= scope
                || net.contains(&addr)
                || net.network().is_ipv4() != addr.is_ipv4()
            {
                continue;
            }
            let common = common_prefix(addr, net.network());
            if common >= scope {
                scope = (common + 1).min(net.prefix_len());
            }
        }
        scope
    }
}

/// One zone's steering data, from `<zone>.pools.yaml`.
#[derive(Debug)]
pub struct Steering {
    pub edges: Vec<Edge>,
    pub hosts: Vec<Host>,
    pub nets: Nets,
    /// Unique per instance, so cached orders never outlive their steering.
    uid: u64,
}

impl Steering {
    pub fn new(edges: Vec<Edge>, hosts: Vec<Host>, nets: Nets) -> Steering {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        Steering {
            edges,
            hosts,
            nets,
            uid: NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        }
    }
}

impl Default for Steering {
    fn default() -> Steering {
        Steering::new(Vec::new(), Vec::new(), Nets::default())
    }
}

/// The address being located and how we got it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Client {
    pub addr: IpAddr,
    /// The ECS source prefix when `addr` came from ECS; None for the
    /// packet's source address.
    pub ecs_source: Option<u8>,
}

/// What kind of answer steering wants.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Addresses of `Decision::edges`.
    Edges,
    /// No candidate has an address of this family.
    NoData,
    /// CNAME to the host's fallback.
    Fallback,
    ServFail,
    Empty,
}

/// The result of [`decide`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    pub outcome: Outcome,
    /// Chosen edges, best first; at most `answers` of them.
    pub edges: SmallVec<[EdgeIdx; 8]>,
    /// ECS scope prefix for the response.
    pub scope: u8,
}

/// Where the location came from, for `explain`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Located {
    /// An override net from the pools file.
    Net(IpNet),
    /// The GeoIP database's matched network.
    Db(IpNet),
    /// Neither knows this address.
    Unknown,
}

/// Observes a decision; `()` observes nothing and costs nothing. `explain`
/// records everything through this, so it runs the server's code path.
pub trait Trace {
    /// Whether [`Trace::candidate`] wants kilometres; computing them costs
    /// an `asin` per edge that the query path doesn't need.
    const DETAILED: bool = false;
    fn located(&mut self, _how: Located, _loc: Option<&Location>) {}
    fn rule(&mut self, _rule: Option<usize>) {}
    fn candidate(&mut self, _edge: EdgeIdx, _km: Option<f64>, _state: Effective) {}
}

impl Trace for () {}

/// Where the client is, as [`locate`] found it.
pub struct Place<'s> {
    pub how: Located,
    /// The decoded location. `None` for an unknown client, a pinned net,
    /// or a database match not decoded yet ([`Place::is_lazy`]).
    pub location: Option<Location>,
    /// Edges an override net pins, instead of a location.
    pub pinned: Option<&'s [EdgeIdx]>,
    /// Identifies where the location came from (a database record, an
    /// override net, or nowhere) for the per-thread order cache: equal keys
    /// within one [`Steering`] mean equal locations.
    pub key: u64,
}

/// [`Place::key`] tags, in the top two bits.
const KEY_DB: u64 = 1 << 62;
const KEY_NET: u64 = 2 << 62;

impl Place<'_> {
    fn unknown() -> Place<'static> {
        Place {
            how: Located::Unknown,
            location: None,
            pinned: None,
            key: 0,
        }
    }

    /// A database match whose record is `record` ([`crate::geo::GeoMatch::record`]).
    fn db(network: IpNet, location: Option<Location>, record: u64) -> Place<'static> {
        Place {
            how: Located::Db(network),
            location,
            pinned: None,
            key: KEY_DB | (record & !(3 << 62)),
        }
    }

    /// Located by the database but not decoded yet.
    fn is_lazy(&self) -> bool {
        matches!(self.how, Located::Db(_)) && self.location.is_none()
    }

    /// The location's point on the unit sphere, when it has coordinates.
    fn unit(&self) -> Option<[f64; 3]> {
        self.location.and_then(|l| l.coords).map(Coords::unit)
    }
}

/// The override net `addr` is in, as a place.
fn locate_net<'s>(st: &'s Steering, addr: IpAddr) -> Option<Place<'s>> {
    let (i, (net, target)) = st.nets.lookup_index(addr)?;
    let (location, pinned) = match target {
        NetTarget::Location(l) => (Some(*l), None),
        NetTarget::Edges(e) => (None, Some(&e[..])),
    };
    Some(Place {
        how: Located::Net(*net),
        location,
        pinned,
        key: KEY_NET | i as u64,
    })
}

/// Where is the client: override nets first, then the database.
pub fn locate<'s>(st: &'s Steering, geo: Option<&GeoDb>, addr: IpAddr) -> Place<'s> {
    locate_net(st, addr).unwrap_or_else(|| match geo.and_then(|g| g.lookup(addr)) {
        Some(m) => Place::db(m.network, Some(m.location), m.record),
        None => Place::unknown(),
    })
}

/// [`locate`] without decoding a database record: the tree walk gives the
/// network and the record's identity, which is all a cached order needs.
/// [`with_order`] decodes on a cache miss.
fn locate_lazy<'s>(st: &'s Steering, geo: Option<&GeoDb>, addr: IpAddr) -> Place<'s> {
    locate_net(st, addr).unwrap_or_else(|| match geo.and_then(|g| g.find(addr)) {
        Some((record, network)) => Place::db(network, None, record),
        None => Place::unknown(),
    })
}

/// Mean Earth radius, km.
const EARTH_KM: f64 = 6371.0;

/// Squared chord length between two unit vectors: monotonic in the
/// great-circle distance, so it orders edges exactly as haversine would.
fn chord2(a: &[f64; 3], b: &[f64; 3]) -> f64 {
    let (x, y, z) = (a[0] - b[0], a[1] - b[1], a[2] - b[2]);
    x * x + y * y + z * z
}

/// Great-circle km from a squared chord (the haversine result).
fn km_of(chord2: f64) -> f64 {
    2.0 * EARTH_KM * (chord2.sqrt() / 2.0).min(1.0).asin()
}

/// Squared chord of a great-circle distance in km (capped at antipodes).
fn chord2_of(km: f64) -> f64 {
    let c = 2.0
        * (km / (2.0 * EARTH_KM))
            .min(std::f64::consts::FRAC_PI_2)
            .sin();
    c * c
}

/// Spreading granularity: one answer per /24 (IPv4) or /56 (IPv6), the
/// sizes resolvers send as ECS by default.
fn spread_prefix(addr: IpAddr) -> u8 {
    match addr {
        IpAddr::V4(_) => 24,
        IpAddr::V6(_) => 56,
    }
}

fn masked_bits(addr: IpAddr, prefix: u8) -> u128 {
    match addr {
        IpAddr::V4(a) => {
            let v = u32::from(a) as u128;
            if prefix == 0 {
                0
            } else {
                v & (u32::MAX << (32 - prefix.min(32))) as u128
            }
        }
        IpAddr::V6(a) => {
            let v = u128::from(a);
            if prefix == 0 {
                0
            } else {
                v & (u128::MAX << (128 - prefix.min(128)))
            }
        }
    }
}

/// Length of the common leading bits of two addresses of one family.
fn common_prefix(a: IpAddr, b: IpAddr) -> u8 {
    match (a, b) {
        (IpAddr::V4(a), IpAddr::V4(b)) => (u32::from(a) ^ u32::from(b)).leading_zeros() as u8,
        (IpAddr::V6(a), IpAddr::V6(b)) => (u128::from(a) ^ u128::from(b)).leading_zeros() as u8,
        _ => 0,
    }
}

/// SplitMix64 finaliser: a fast, well-mixed, stable hash. Stability across
/// restarts and instances matters (a fleet must agree), so no random seed.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

#[derive(Clone, Copy)]
struct Cand {
    idx: EdgeIdx,
    /// Squared chord distance to the client (0 without a location).
    d: f64,
    /// 0 up, 1 overloaded, 2 drain.
    tier: u8,
}

/// Chooses the edges for one query. Pure: the same inputs give the same
/// decision, on every instance of a fleet.
pub fn decide<T: Trace>(
    st: &Steering,
    host: &Host,
    geo: Option<&GeoDb>,
    client: Client,
    family: Family,
    trace: &mut T,
) -> Decision {
    // An IPv4 client inside an IPv6 address (v4-mapped, 6to4, Teredo) is
    // steered as that IPv4 address, as the GeoIP lookup already locates it:
    // override nets, spreading and the scope then work in its IPv4 bits, and
    // the scope is put back into IPv6 bits at the end. An override net
    // written for the IPv6 address itself still wins.
    let (mut addr, mut offset) = embedded_v4(client.addr);
    if offset != 0 && st.nets.lookup(client.addr).is_some() {
        (addr, offset) = (client.addr, 0);
    }
    let source = client.ecs_source.map(|s| {
        if offset > 0 {
            s.saturating_sub(offset).min(32)
        } else {
            s
        }
    });
    let at = Located4 {
        raw: client.addr,
        addr,
        offset,
        source,
    };
    // explain's trace wants the decoded location, the query path doesn't.
    let place = if T::DETAILED {
        locate(st, geo, addr)
    } else {
        locate_lazy(st, geo, addr)
    };
    with_order(st, host, family, place, geo, addr, |order, place| {
        trace.located(place.how, place.location.as_ref());
        trace.rule(order.rule().map(|r| r as usize));
        if T::DETAILED {
            // Every candidate with its distance and state, for explain.
            let here = place.unit();
            for &idx in candidates(host, place, order.rule()) {
                let edge = &st.edges[idx as usize];
                let km = here.map(|h| km_of(chord2(&edge.unit, &h)));
                trace.candidate(idx, km, edge.health.effective());
            }
        }
        choose(
            st,
            host,
            order.list(),
            order.any_family(),
            addr,
            source,
            &at,
            place.how,
        )
    })
}

/// The candidates of a host for a client: the edges an override net pins,
/// else the first matching rule's, else the host's own.
fn candidates<'s>(host: &'s Host, place: &Place<'s>, rule: Option<u32>) -> &'s [EdgeIdx] {
    match (place.pinned, rule) {
        (Some(p), _) => p,
        (None, Some(i)) => &host.rules[i as usize].edges,
        (None, None) => &host.candidates,
    }
}

/// Picks from the candidates in distance order: health first, then the
/// spreading hash, then `answers` of them.
#[allow(clippy::too_many_arguments)]
fn choose(
    st: &Steering,
    host: &Host,
    order: &[(EdgeIdx, f64)],
    any_family: bool,
    addr: IpAddr,
    source: Option<u8>,
    at: &Located4,
    how: Located,
) -> Decision {
    let mut decision = Decision {
        outcome: Outcome::Edges,
        edges: SmallVec::new(),
        scope: 0,
    };
    if !any_family {
        decision.outcome = Outcome::NoData;
        // NODATA depends on where the client is when a net or a rule chose
        // the candidates: elsewhere the same name may have addresses.
        if !st.nets.is_empty() || !host.rules.is_empty() {
            decision.scope = at.scope(st, how, None);
        }
        return decision;
    }
    // 2. Health: one atomic load per candidate.
    let wanted = usize::from(host.answers.max(1));
    // The common case first: no spreading, and the nearest live candidates
    // all up. Once `answers` of them are up and a second live one is known
    // (it makes the scope matter), the rest cannot change the answer.
    if host.spread_km <= 0.0 {
        let mut live = 0;
        for &(idx, _) in order {
            match st.edges[idx as usize].health.effective() {
                Effective::Up => live += 1,
                Effective::Down => continue,
                _ => break,
            }
            if decision.edges.len() < wanted {
                decision.edges.push(idx);
            }
            if live >= wanted.max(2) {
                decision.scope = at.scope(st, how, None);
                return decision;
            }
        }
        decision.edges.clear();
    }
    let mut list: SmallVec<[Cand; 16]> = SmallVec::new();
    let mut mixed = false;
    for &(idx, d) in order {
        let tier = match st.edges[idx as usize].health.effective() {
            Effective::Up => 0,
            Effective::Overloaded => 1,
            Effective::Drain => 2,
            Effective::Down => continue,
        };
        mixed |= tier != 0;
        list.push(Cand { idx, d, tier });
    }
    if mixed {
        // A draining edge takes new clients only when nothing else can serve.
        if list.iter().any(|c| c.tier < 2) {
            list.retain(|c| c.tier < 2);
        }
        // 3. Healthy first. `order` is by distance, so a stable sort by
        // tier orders by (tier, distance).
        for i in 1..list.len() {
            let mut j = i;
            while j > 0 && list[j - 1].tier > list[j].tier {
                list.swap(j - 1, j);
                j -= 1;
            }
        }
    }
    if list.is_empty() {
        match host.all_down {
            AllDown::Serve => list.extend(order.iter().map(|&(idx, d)| Cand { idx, d, tier: 0 })),
            AllDown::Fallback => decision.outcome = Outcome::Fallback,
            AllDown::Servfail => decision.outcome = Outcome::ServFail,
            AllDown::Empty => decision.outcome = Outcome::Empty,
        }
    }
    let list = &mut list[..];

    // 4. Spread among the healthy edges within spread_km of the nearest,
    // by weighted rendezvous hashing of the client's network.
    let mut spread_bits = None;
    if host.spread_km > 0.0 && list.len() > 1 && list[0].tier == 0 {
        let limit = chord2_of(km_of(list[0].d) + host.spread_km);
        let group = list
            .iter()
            .take_while(|c| c.tier == 0 && c.d <= limit)
            .count();
        if group > 1 {
            let prefix = spread_prefix(addr).min(source.unwrap_or(u8::MAX));
            let bits = masked_bits(addr, prefix);
            let key = mix((bits as u64) ^ mix((bits >> 64) as u64));
            let mut best = 0;
            let mut best_score = f64::INFINITY;
            for (i, c) in list[..group].iter().enumerate() {
                let h = mix(key ^ (c.idx as u64).wrapping_mul(0x9E37_79B9));
                let u = ((h >> 11) as f64 + 1.0) / (1u64 << 53) as f64;
                let w = st.edges[c.idx as usize].weight.max(1) as f64;
                let score = -u.ln() / w;
                if score < best_score {
                    best_score = score;
                    best = i;
                }
            }
            list[..=best].rotate_right(1);
            spread_bits = Some(prefix);
        }
    }

    for c in list.iter().take(host.answers.max(1) as usize) {
        decision.edges.push(c.idx);
    }

    // 5. ECS scope: how much of the client's address decided this answer.
    // With one possible edge and nothing keyed on location, none of it.
    if !st.nets.is_empty() || !host.rules.is_empty() || list.len() > 1 {
        decision.scope = at.scope(st, how, spread_bits);
    }
    decision
}

/// Candidates that can serve a family, nearest first (stable: equal
/// distances keep the configured order). Depends only on the steering, the
/// host, the family and the place, so it is computed once per place and
/// cached; the per-query work is then health, spreading and the scope.
#[derive(Clone, Copy)]
struct Order {
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
fn with_order<'s, R>(
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
struct Fresh {
    rule: Option<u32>,
    any_family: bool,
    list: SmallVec<[(EdgeIdx, f64); ORDER_MAX]>,
}

/// An order from the cache or just computed.
enum OrderRef<'a> {
    Cached(&'a Order),
    Fresh(&'a Fresh),
}

impl OrderRef<'_> {
    fn rule(&self) -> Option<u32> {
        match self {
            OrderRef::Cached(o) => o.rule,
            OrderRef::Fresh(o) => o.rule,
        }
    }
    fn any_family(&self) -> bool {
        match self {
            OrderRef::Cached(o) => o.any_family,
            OrderRef::Fresh(o) => o.any_family,
        }
    }
    fn list(&self) -> &[(EdgeIdx, f64)] {
        match self {
            OrderRef::Cached(o) => o.list(),
            OrderRef::Fresh(o) => &o.list,
        }
    }
}

/// The candidates for `place` that serve `family`, nearest first.
fn compute_order(st: &Steering, host: &Host, family: Family, place: &Place<'_>) -> Fresh {
    let rule = match (place.pinned, &place.location) {
        (None, Some(l)) => host
            .rules
            .iter()
            .position(|r| r.matches(l))
            .map(|i| i as u32),
        _ => None,
    };
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

/// The address steering works with, and how it relates to the one asked
/// about (for the ECS scope).
struct Located4 {
    /// The client address as given (packet source or ECS).
    raw: IpAddr,
    /// `raw`, or the IPv4 address embedded in it.
    addr: IpAddr,
    /// Bits of `raw` before the embedded IPv4 address (0: none).
    offset: u8,
    /// The ECS source prefix in `addr`'s bits; None without ECS.
    source: Option<u8>,
}

impl Located4 {
    /// The ECS scope of an answer decided by `how` (0 without ECS): the
    /// deciding network's prefix, at least the spreading prefix, narrowed
    /// around override nets, in the bits of the address that was asked.
    fn scope(&self, st: &Steering, how: Located, spread_bits: Option<u8>) -> u8 {
        let Some(source) = self.source else {
            return 0;
        };
        let mut scope = match how {
            Located::Net(n) | Located::Db(n) => n.prefix_len(),
            Located::Unknown => source,
        };
        if let Some(p) = spread_bits {
            scope = scope.max(p);
        }
        scope = st.nets.narrow_scope(self.addr, scope);
        if self.offset > 0 {
            // Back to IPv6 bits; IPv6 override nets get their say too.
            scope = st
                .nets
                .narrow_scope(self.raw, (scope + self.offset).min(128));
        }
        scope
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
