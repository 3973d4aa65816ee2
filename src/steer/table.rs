//! Every host's candidate order for every GeoIP record, computed when the
//! snapshot is built, as gdnsd computes its answers per network when it
//! loads the database. Behind public resolvers almost every query carries
//! a client subnet not seen before; with the table such a client costs a
//! tree walk and two array reads, not a candidate sort, and no per-thread
//! cache has to hold 100,000+ records.
//!
//! Orders depend on (host's candidates and rules, family, record), so hosts
//! with the same candidates and rules share one map. Distinct orders are few
//! (the cells of the edges' bisectors on the sphere), so each map holds a
//! `u32` per record and family, and the orders themselves are kept once,
//! without metrics: a host that spreads or weighs cost by km has its
//! candidates' kilometres worked out from the record's point per query.

use std::collections::HashMap;

use super::locate::Place;
use super::order::{ORDER_MAX, Order, compute_order};
use super::{Family, Host, Located, Steering};
use crate::geo::{Coords, GeoDb, Location};

/// Precomputed orders for one (steering, database) pair.
pub struct OrderTable {
    /// [`GeoDb::id`] of the database the record numbers belong to.
    geo: u64,
    /// Per host: its map in `maps`, or [`NO_MAP`] for a host whose order
    /// the table does not keep (more candidates than an order holds).
    host_map: Box<[u32]>,
    /// Per map, for V4 and V6: every record's order, an index into
    /// `orders`, and one past the last record the order of a client the
    /// database does not locate ([`unlocated`]).
    maps: Box<[[Box<[u32]>; 2]]>,
    orders: Box<[Order]>,
    /// Every record's point on the unit sphere (None: no coordinates, or
    /// not located), for hosts that read the candidates' kilometres; empty
    /// when no host does.
    units: Box<[Option<[f64; 3]>]>,
}

const NO_MAP: u32 = u32::MAX;

impl std::fmt::Debug for OrderTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OrderTable")
            .field("maps", &self.maps.len())
            .field("orders", &self.orders.len())
            .finish()
    }
}

impl OrderTable {
    /// The table for `st` over `geo`; `None` when no host can use one (or
    /// with a `geodb_asn:` database, whose record pairs are not numbered).
    pub fn build(st: &Steering, geo: &GeoDb) -> Option<OrderTable> {
        if geo.asn_db().is_some() {
            return None;
        }
        let mut host_map = vec![NO_MAP; st.hosts.len()];
        // One representative host per map.
        let mut reps: Vec<&Host> = Vec::new();
        for (i, h) in st.hosts.iter().enumerate() {
            let longest = h.rules.iter().map(|r| r.edges.len()).max().unwrap_or(0);
            if h.candidates.len().max(longest) > ORDER_MAX {
                continue;
            }
            let m = match reps.iter().position(|r| same_candidates(r, h)) {
                Some(m) => m,
                None => {
                    reps.push(h);
                    reps.len() - 1
                }
            };
            host_map[i] = m as u32;
        }
        if reps.is_empty() {
            return None;
        }
        let locs = geo.record_locations();
        let units: Vec<Option<[f64; 3]>> =
            locs.iter().map(|l| l.coords.map(Coords::unit)).collect();
        // Records in slices, one thread per (map, slice): a 150k-record
        // database takes tens of ms a map. Each slice keeps its own
        // distinct orders, renumbered when the slices are put together.
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        let chunk = locs.len().div_ceil(threads.div_ceil(reps.len())).max(4096);
        let built: Vec<Vec<Option<Map>>> = std::thread::scope(|s| {
            let jobs: Vec<Vec<_>> = reps
                .iter()
                .map(|&host| {
                    locs.chunks(chunk)
                        .zip(units.chunks(chunk))
                        .map(|(l, u)| s.spawn(move || build_map(st, host, l, u)))
                        .collect()
                })
                .collect();
            jobs.into_iter()
                .map(|m| {
                    m.into_iter()
                        .map(|j| j.join().expect("order table thread"))
                        .collect()
                })
                .collect()
        });
        let mut orders = Vec::new();
        let mut maps = Vec::with_capacity(built.len());
        for (slices, &host) in built.into_iter().zip(&reps) {
            let mut ids = [
                Vec::with_capacity(locs.len() + 1),
                Vec::with_capacity(locs.len() + 1),
            ];
            for slice in slices {
                let (part, own) = slice?;
                let base = orders.len() as u32;
                orders.extend(own);
                for (all, part) in ids.iter_mut().zip(part) {
                    all.extend(part.into_iter().map(|i| i + base));
                }
            }
            for (ids, family) in ids.iter_mut().zip([Family::V4, Family::V6]) {
                ids.push(orders.len() as u32);
                orders.push(bare_order(st, host, family, &table_place(None), None)?);
            }
            maps.push(ids.map(Vec::into_boxed_slice));
        }
        let reads_km = st
            .hosts
            .iter()
            .zip(&host_map)
            .any(|(h, &m)| m != NO_MAP && h.reads_km);
        let units = if reads_km {
            locs.iter()
                .zip(units)
                .map(|(l, u)| u.filter(|_| *l != Location::default()))
                .collect()
        } else {
            Box::default()
        };
        Some(OrderTable {
            geo: geo.id(),
            host_map: host_map.into_boxed_slice(),
            maps: maps.into_boxed_slice(),
            orders: orders.into_boxed_slice(),
            units,
        })
    }

    /// Host number `host`'s order for record `record` of `geo`, if kept.
    #[inline]
    pub(super) fn get(
        &self,
        geo: &GeoDb,
        host: usize,
        family: Family,
        record: u32,
    ) -> Option<&Order> {
        if geo.id() != self.geo {
            return None;
        }
        let m = *self.host_map.get(host)?;
        if m == NO_MAP {
            return None;
        }
        let id = *self.maps[m as usize][usize::from(family == Family::V6)].get(record as usize)?;
        self.orders.get(id as usize)
    }

    /// Record `record`'s point on the unit sphere, for a host that reads
    /// kilometres.
    #[inline]
    pub(super) fn unit(&self, record: u32) -> Option<[f64; 3]> {
        self.units.get(record as usize).copied().flatten()
    }

    /// How many distinct orders the table keeps.
    pub fn orders(&self) -> usize {
        self.orders.len()
    }
}

/// The record number locating gives a client `geo`
/// does not locate (no network, or one without data): one past the last
/// record, where the table keeps that client's order.
pub(super) fn unlocated(geo: &GeoDb) -> u32 {
    geo.record_locations().len() as u32
}

/// One map's order ids per record (V4, V6) and its distinct orders.
type Map = ([Vec<u32>; 2], Vec<Order>);

/// Every record's order for `host` (None if some order is too long).
fn build_map(
    st: &Steering,
    host: &Host,
    locs: &[Location],
    units: &[Option<[f64; 3]>],
) -> Option<Map> {
    let mut orders = Vec::new();
    // Distinct orders by (rule, RTT key, flags, edges and classes) as
    // bytes: probing with a reused buffer allocates only for a new one.
    let mut seen: HashMap<Box<[u8]>, u32> = HashMap::new();
    let mut id = Vec::with_capacity(64);
    let mut ids = [vec![0u32; locs.len()], vec![0u32; locs.len()]];
    for (r, loc) in locs.iter().enumerate() {
        // A record that says nothing we understand is an unknown client, as
        // `GeoDb::lookup` reports it.
        let known = *loc != Location::default();
        let place = table_place(known.then_some(*loc));
        let here = if known { units[r] } else { None };
        for (f, family) in [Family::V4, Family::V6].into_iter().enumerate() {
            let o = bare_order(st, host, family, &place, here)?;
            id.clear();
            for v in [o.rule, o.rtt] {
                id.extend_from_slice(&v.map_or(u32::MAX, |v| v).to_le_bytes());
            }
            id.extend_from_slice(&[u8::from(o.any_family), u8::from(o.known)]);
            for x in o.list() {
                id.extend_from_slice(&x.idx.to_le_bytes());
                id.push(x.class as u8);
            }
            ids[f][r] = match seen.get(&id[..]) {
                Some(&i) => i,
                None => {
                    orders.push(o);
                    let i = (orders.len() - 1) as u32;
                    seen.insert(id.clone().into_boxed_slice(), i);
                    i
                }
            };
        }
    }
    Some((ids, orders))
}

/// A database place at `location` (None: a client the database does not
/// locate), as the table's orders are computed for it.
fn table_place(location: Option<Location>) -> Place<'static> {
    Place {
        how: if location.is_some() {
            Located::Db(Default::default())
        } else {
            Located::Unknown
        },
        location,
        pinned: None,
        key: 0,
        record: None,
    }
}

/// `host`'s order at `place` as the table keeps it: without metrics (None
/// when it is too long to keep).
fn bare_order(
    st: &Steering,
    host: &Host,
    family: Family,
    place: &Place<'_>,
    here: Option<[f64; 3]>,
) -> Option<Order> {
    let fresh = compute_order(st, host, family, place, here, false);
    let mut o = Order::of(&fresh, place.location.is_some())?;
    o.zero_metrics();
    Some(o)
}

/// Whether two hosts choose their candidates alike everywhere.
fn same_candidates(a: &Host, b: &Host) -> bool {
    a.candidates == b.candidates && a.rules == b.rules
}
