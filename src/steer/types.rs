//! The words steering's modules share: edges by index, the RTT file's
//! client keys, the client and where it was found, candidates in order, the decision, and the trace
//! `explain` records through. Data only; every module imports from here,
//! nothing here imports them.

use std::net::IpAddr;

use ipnet::IpNet;
use smallvec::SmallVec;

use crate::geo::{Code, LocId, Location};
use crate::health::Effective;

/// Edges are referred to by their index in [`super::Steering::edges`].
pub type EdgeIdx = u16;

/// A client key of the RTT file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RttKey {
    Prefix(IpNet),
    Asn(u32),
    Country(Code),
    Continent(Code),
}

impl std::fmt::Display for RttKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RttKey::Prefix(n) => write!(f, "{n}"),
            RttKey::Asn(a) => write!(f, "AS{a}"),
            RttKey::Country(c) => write!(f, "country:{c}"),
            RttKey::Continent(c) => write!(f, "continent:{c}"),
        }
    }
}

/// Address family asked for (A or AAAA).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    V4,
    V6,
}

impl Family {
    /// 0 for V4, 1 for V6: an index into per-family arrays.
    pub(crate) fn index(self) -> usize {
        usize::from(self == Family::V6)
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

/// Where the location came from, for `explain` and the ECS scope.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Located {
    /// An override net from the pools file.
    Net(IpNet),
    /// The GeoIP database's matched network.
    Db(IpNet),
    /// Neither knows this address.
    Unknown,
}

/// Where the client is, as [`super::locate`] found it.
#[derive(Clone, Copy, Debug)]
pub struct Place<'a> {
    pub how: Located,
    /// The location, when the database or an override net has one.
    pub location: Option<&'a Location>,
    /// The database location's id, whose point the snapshot ranked edges
    /// for (None for a net, or an unlocated client).
    pub loc: Option<LocId>,
    /// The candidate group an override net pins, instead of a location.
    pub pinned: Option<u32>,
}

impl Place<'_> {
    /// A client nobody locates.
    pub const UNKNOWN: Place<'static> = Place {
        how: Located::Unknown,
        location: None,
        loc: None,
        pinned: None,
    };
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
/// factor; 0 where nothing reads it).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Ranked {
    pub idx: EdgeIdx,
    pub class: Class,
    pub metric: f64,
}

/// What kind of answer steering wants.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Addresses of `Decision::edges`.
    Edges,
    /// CNAME to this partner CDN's target (`Edge::cname`); `edges` holds it
    /// alone.
    Partner(EdgeIdx),
    /// No candidate has an address of this family.
    NoData,
    /// CNAME to the host's fallback.
    Fallback,
    ServFail,
    Empty,
}

/// The result of [`super::decide`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    pub outcome: Outcome,
    /// Chosen edges, best first; at most `answers` of them.
    pub edges: SmallVec<[EdgeIdx; 8]>,
    /// ECS scope prefix for the response.
    pub scope: u8,
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

/// Observes a decision; `()` observes nothing and costs nothing. `explain`
/// records everything through this, so it runs the server's code path.
pub trait Trace {
    /// Whether the trace wants the detail the query path doesn't need
    /// (every candidate in order with its kilometres, share weights):
    /// computing it costs.
    const DETAILED: bool = false;
    fn located(&mut self, _how: Located, _loc: Option<&Location>) {}
    fn rule(&mut self, _rule: Option<usize>) {}
    fn candidate(&mut self, _edge: EdgeIdx, _km: Option<f64>, _state: Effective) {}
    /// The RTT key that matched and its rows (fastest first), if any.
    fn rtt(&mut self, _key: Option<(&RttKey, &[(EdgeIdx, f32)])>) {}
    /// Whether the live layer's learned rows take part: the RUM panel
    /// decides without them to see which clients they moved.
    const LEARNED: bool = true;
    /// The learned cell (RUM) whose rows decided, merged with the file's
    /// rows of the same prefix if it has one (a detailed trace only).
    fn learned(&mut self, _cell: IpNet) {}
    /// The candidates in order, before health.
    fn ranked(&mut self, _order: &[Ranked]) {}
    /// `partner_share` decided: the subnet's draw in (0, 1] against it.
    fn partner_split(&mut self, _share: f64, _draw: f64, _to_partner: bool) {}
    /// A cost margin reordered these candidates (cheapest first).
    fn cost(&mut self, _margin: f64, _group: &[EdgeIdx]) {}
    /// Near-equal edges shared clients with these weights; `chosen` won.
    fn shares(&mut self, _weights: &[(EdgeIdx, f64)], _chosen: EdgeIdx) {}
}

impl Trace for () {}
