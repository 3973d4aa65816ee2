//! Where is the client: override nets from the pools file first, then the
//! GeoIP database. A [`Place`] also carries the key the per-place order
//! cache files it under.

use std::net::IpAddr;

use ipnet::{IpNet, Ipv4Net};

use super::rtt::{Rows, RttAt, RttTable};
use super::scope::common_prefix;
use super::{EdgeIdx, Located, Steering};
use crate::geo::{Coords, GeoDb, Location};

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
    /// The database record's position in [`GeoDb::record_locations`],
    /// where the snapshot's precomputed orders are kept.
    pub record: Option<u32>,
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
            record: None,
        }
    }

    /// A database match whose record is `record` ([`crate::geo::GeoMatch::record`]).
    fn db(network: IpNet, location: Option<Location>, record: u64) -> Place<'static> {
        Place {
            how: Located::Db(network),
            location,
            pinned: None,
            key: KEY_DB | (record & !(3 << 62)),
            record: None,
        }
    }

    /// Located by the database but not decoded yet.
    pub(super) fn is_lazy(&self) -> bool {
        matches!(self.how, Located::Db(_)) && self.location.is_none()
    }

    /// The location's point on the unit sphere, when it has coordinates.
    pub(super) fn unit(&self) -> Option<[f64; 3]> {
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
        record: None,
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
/// network and the record's identity, which is all a precomputed or cached
/// order needs. [`super::order::with_order`] decodes when it has neither.
pub(super) fn locate_lazy<'s>(st: &'s Steering, geo: Option<&GeoDb>, addr: IpAddr) -> Place<'s> {
    locate_net(st, addr).unwrap_or_else(|| {
        let Some(g) = geo else {
            return Place::unknown();
        };
        match g.find_indexed(addr) {
            // Keyed by the record's number, as the flattened table knows it.
            Some((_, Some(index), network)) => Place {
                record: Some(index),
                ..Place::db(network, None, g.index_key(index))
            },
            Some((record, None, network)) => Place::db(network, None, record),
            None => Place::unknown(),
        }
    })
}

/// What locating the client found among the RTT prefixes.
#[derive(Default)]
pub(super) struct RttSide<'s> {
    /// Where the address falls among the prefixes (None: no prefix rows
    /// for its family).
    pub at: Option<RttAt>,
    /// The prefix key's rows, as far as the flattened table keeps them.
    pub rows: Option<Rows<'s>>,
}

/// [`locate_lazy`] and the RTT prefix from one lookup in the snapshot's
/// flattened table, for an IPv4 client of the database the table was built
/// on; fills `rtt` (not for a client in an override net). `None` where
/// the table does not apply: the caller locates as without it.
#[inline]
pub(super) fn locate_flat<'s>(
    st: &'s Steering,
    geo: Option<&GeoDb>,
    addr: IpAddr,
    rtt: &mut RttSide<'s>,
) -> Option<Place<'s>> {
    let (Some(flat), Some(g), IpAddr::V4(a)) = (st.flat(), geo, addr) else {
        return None;
    };
    if flat.geo() != g.id() {
        return None;
    }
    if let Some(place) = locate_net(st, addr) {
        return Some(place);
    }
    let (piece, span) = flat.find(u32::from(a));
    let at = RttTable::at_piece(piece.rtt, span);
    rtt.rows = at
        .hit
        .map(|h| Rows::of_head(&st.rtt, h.key, piece.rows, piece.edges, piece.ms));
    rtt.at = Some(at);
    Some(match piece.record() {
        Some(index) => Place {
            record: Some(index),
            ..Place::db(
                IpNet::V4(Ipv4Net::new_assert(a, piece.prefix).trunc()),
                None,
                g.index_key(index),
            )
        },
        None => Place::unknown(),
    })
}

/// The IPv4 address inside a v4-mapped, 6to4 or Teredo address (as
/// [`crate::geo::normalize`] finds it) and how many bits precede it; the
/// address itself and 0 otherwise. Teredo's obfuscated client address is
/// the last 32 bits, so its prefixes line up from bit 96 like v4-mapped.
pub(super) fn embedded_v4(addr: IpAddr) -> (IpAddr, u8) {
    match (addr, crate::geo::normalize(addr)) {
        (IpAddr::V6(a), v4 @ IpAddr::V4(_)) => {
            (v4, if a.segments()[0] == 0x2002 { 16 } else { 96 })
        }
        _ => (addr, 0),
    }
}
