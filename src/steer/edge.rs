//! An edge answers are made of: a server (or PoP) of our own, with its
//! addresses, place, weight, bias, cost and capacity, or a partner CDN
//! answered with a CNAME; and the health record it is steered by.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use smallvec::SmallVec;

use super::types::Family;
use crate::geo::Coords;
use crate::health::EdgeHealth;

/// An edge server (or PoP) answers are made of, or a partner CDN answered
/// with a CNAME.
#[derive(Debug)]
pub struct Edge {
    pub name: String,
    pub v4: SmallVec<[Ipv4Addr; 2]>,
    pub v6: SmallVec<[Ipv6Addr; 2]>,
    /// None for a partner CDN, which has no place on the map.
    pub coords: Option<Coords>,
    /// Position on the unit sphere: ordering by straight-line (chord)
    /// distance equals ordering by great-circle distance, without trig.
    unit: Option<[f64; 3]>,
    pub weight: u32,
    /// Route 53's geoproximity bias, -99..99: the ordering metric (km or
    /// ms) is multiplied by `1 - bias/100`.
    pub bias: i8,
    /// What serving from here costs (default 1); see `cost_margin_*`.
    pub cost: f64,
    /// Relative capacity for shares among near-equal edges (None: `weight`).
    pub capacity: Option<f64>,
    /// A partner CDN's CNAME target (wire form); such an edge has no
    /// addresses of its own.
    pub cname: Option<Box<[u8]>>,
    /// Addresses a partner's health check probes (a CNAME has none).
    pub probe: Vec<IpAddr>,
    /// The health check, if any.
    pub check: Option<Arc<crate::health::CheckSpec>>,
    /// Shared with the health checker; carried over across reloads by name.
    pub health: Arc<EdgeHealth>,
}

impl Edge {
    /// The same edge with another health record and no check: what-if
    /// views decide with it without touching the real state.
    pub fn with_health(&self, health: Arc<EdgeHealth>) -> Edge {
        Edge {
            name: self.name.clone(),
            v4: self.v4.clone(),
            v6: self.v6.clone(),
            coords: self.coords,
            unit: self.unit,
            weight: self.weight,
            bias: self.bias,
            cost: self.cost,
            capacity: self.capacity,
            cname: self.cname.clone(),
            probe: self.probe.clone(),
            check: None,
            health,
        }
    }

    /// An edge of our own at `coords`, unbiased, cost 1, capacity by weight.
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
            coords: Some(coords),
            unit: Some(coords.unit()),
            weight,
            bias: 0,
            cost: 1.0,
            capacity: None,
            cname: None,
            probe: Vec::new(),
            check,
            health,
        }
    }

    /// A partner CDN answered with a CNAME to `target` (wire form).
    pub fn partner(
        name: String,
        target: Box<[u8]>,
        weight: u32,
        check: Option<Arc<crate::health::CheckSpec>>,
        health: Arc<EdgeHealth>,
    ) -> Edge {
        Edge {
            coords: None,
            unit: None,
            cname: Some(target),
            ..Edge::new(
                name,
                SmallVec::new(),
                SmallVec::new(),
                Coords::default(),
                weight,
                check,
                health,
            )
        }
    }

    pub fn is_partner(&self) -> bool {
        self.cname.is_some()
    }

    /// Whether the edge can answer a family: an address of it, or a CNAME.
    pub fn serves(&self, family: Family) -> bool {
        self.is_partner()
            || match family {
                Family::V4 => !self.v4.is_empty(),
                Family::V6 => !self.v6.is_empty(),
            }
    }

    /// The addresses its health check probes.
    pub fn probe_addresses(&self) -> Vec<IpAddr> {
        if self.is_partner() {
            return self.probe.clone();
        }
        self.v4
            .iter()
            .map(|a| IpAddr::from(*a))
            .chain(self.v6.iter().map(|a| IpAddr::from(*a)))
            .collect()
    }

    /// Its point on the unit sphere (None for a partner).
    pub(crate) fn unit(&self) -> Option<[f64; 3]> {
        self.unit
    }

    /// The factor bias puts on the ordering metric.
    pub(crate) fn scale(&self) -> f64 {
        // A product, not `/ 100`: this is read per RTT row on the query path.
        1.0 - f64::from(self.bias) * 0.01
    }

    /// The weight of a share among near-equal edges: capacity (or weight)
    /// times the idle fraction when the load is known, so an idle edge
    /// takes clients from a busy one before it overloads.
    pub fn share_weight(&self) -> f64 {
        let base = self.capacity.unwrap_or(f64::from(self.weight.max(1)));
        match self.health.load() {
            Some(load) => base * (1.0 - load).max(0.001),
            None => base,
        }
    }
}
