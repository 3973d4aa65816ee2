//! Where is the client: override nets from the pools file first, then the
//! GeoIP database. A [`Place`] also carries the key the per-place order
//! cache files it under.

use std::net::IpAddr;

use ipnet::{IpNet, Ipv4Net};

use super::rtt::{Rows, RttAt, RttTable};
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
    /// `list`'s IPv4 and IPv6 nets as bits, in the same order: every
    /// steered query tests them (to locate, then for the scope), and
    /// ipnet's `contains` on an `IpAddr` costs about 45 instructions a net
    /// where a mask and a compare do.
    v4: Vec<NetBits<u32>>,
    v6: Vec<NetBits<u128>>,
}

/// One override net as an address's bits are tested against it.
#[derive(Debug, Clone, Copy)]
struct NetBits<B> {
    net: B,
    mask: B,
    len: u8,
    /// Its position in [`Nets::list`].
    at: usize,
}

/// The integer an address family's bits are held in.
trait Bits: Copy + Eq + std::ops::BitAnd<Output = Self> + std::ops::BitXor<Output = Self> {
    fn leading(self) -> u8;
}

impl Bits for u32 {
    fn leading(self) -> u8 {
        self.leading_zeros() as u8
    }
}

impl Bits for u128 {
    fn leading(self) -> u8 {
        self.leading_zeros() as u8
    }
}

impl<B: Bits> NetBits<B> {
    fn contains(&self, addr: B) -> bool {
        addr & self.mask == self.net
    }
}

/// The first (most specific) of `nets` that holds `addr`.
fn first_net<B: Bits>(nets: &[NetBits<B>], addr: B) -> Option<usize> {
    nets.iter().find(|n| n.contains(addr)).map(|n| n.at)
}

/// [`Nets::narrow_scope`] in one family's bits.
fn narrow_in<B: Bits>(nets: &[NetBits<B>], addr: B, mut scope: u8) -> u8 {
    for n in nets {
        // Longest first, and the scope only grows: no later net is longer.
        if n.len <= scope {
            break;
        }
        if n.contains(addr) {
            continue;
        }
        let common = (addr ^ n.net).leading();
        if common >= scope {
            scope = (common + 1).min(n.len);
        }
    }
    scope
}

impl Nets {
    pub fn new(mut list: Vec<(IpNet, NetTarget)>) -> Nets {
        list.sort_by_key(|(n, _)| std::cmp::Reverse(n.prefix_len()));
        let (mut v4, mut v6) = (Vec::new(), Vec::new());
        for (at, (net, _)) in list.iter().enumerate() {
            let len = net.prefix_len();
            match net.trunc() {
                IpNet::V4(n) => v4.push(NetBits {
                    net: u32::from(n.network()),
                    mask: u32::from(n.netmask()),
                    len,
                    at,
                }),
                IpNet::V6(n) => v6.push(NetBits {
                    net: u128::from(n.network()),
                    mask: u128::from(n.netmask()),
                    len,
                    at,
                }),
            }
        }
        Nets { list, v4, v6 }
    }
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }
    pub fn lookup(&self, ip: IpAddr) -> Option<&(IpNet, NetTarget)> {
        self.lookup_index(ip).map(|(_, n)| n)
    }

    /// [`Nets::lookup`] with the net's position in the list.
    #[inline]
    fn lookup_index(&self, ip: IpAddr) -> Option<(usize, &(IpNet, NetTarget))> {
        let at = match ip {
            IpAddr::V4(a) => first_net(&self.v4, u32::from(a)),
            IpAddr::V6(a) => first_net(&self.v6, u128::from(a)),
        }?;
        Some((at, &self.list[at]))
    }

    /// A scope must not cover an override net the client is not in, or a
    /// caching resolver would hand that net our answer. Lengthen `scope`
    /// until the client's block at that length excludes every such net
    /// (nets of the other family can't overlap the client's block).
    pub fn narrow_scope(&self, addr: IpAddr, scope: u8) -> u8 {
        match addr {
            IpAddr::V4(a) => narrow_in(&self.v4, u32::from(a), scope),
            IpAddr::V6(a) => narrow_in(&self.v6, u128::from(a), scope),
        }
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

    /// A client `geo` does not locate (no network, or one without data).
    /// Numbered as the record one past the last, where the precomputed
    /// orders keep the order of such a client.
    fn unlocated(geo: &GeoDb) -> Place<'static> {
        Place {
            record: Some(super::table::unlocated(geo)),
            ..Place::unknown()
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
            None => Place::unlocated(g),
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
        None => Place::unlocated(g),
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

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng, rngs::StdRng};
    use std::net::{Ipv4Addr, Ipv6Addr};

    /// The lookup and scope narrowing as they were written on `IpNet`
    /// before the nets were kept as bits.
    fn by_ipnet(list: &[(IpNet, NetTarget)], addr: IpAddr, scope: u8) -> (Option<usize>, u8) {
        let at = list.iter().position(|(n, _)| n.contains(&addr));
        let mut scope = scope;
        for (net, _) in list {
            if net.prefix_len() <= scope
                || net.contains(&addr)
                || net.network().is_ipv4() != addr.is_ipv4()
            {
                continue;
            }
            let common = match (addr, net.network()) {
                (IpAddr::V4(a), IpAddr::V4(b)) => (u32::from(a) ^ u32::from(b)).leading_zeros(),
                (IpAddr::V6(a), IpAddr::V6(b)) => (u128::from(a) ^ u128::from(b)).leading_zeros(),
                _ => 0,
            } as u8;
            if common >= scope {
                scope = (common + 1).min(net.prefix_len());
            }
        }
        (at, scope)
    }

    /// Nested and neighbouring nets of both families (drawn near one
    /// another so that they overlap and share leading bits), against
    /// addresses around them.
    #[test]
    fn bits_match_the_ipnet_loop() {
        let mut rng = StdRng::seed_from_u64(11);
        for _ in 0..2_000 {
            let base4: u32 = rng.random();
            let base6: u128 = rng.random();
            let list: Vec<(IpNet, NetTarget)> = (0..rng.random_range(0..8))
                .map(|_| {
                    let net = if rng.random_bool(0.5) {
                        let a = base4 ^ (rng.random::<u32>() >> rng.random_range(0..32));
                        IpNet::V4(Ipv4Net::new_assert(
                            Ipv4Addr::from(a),
                            rng.random_range(0..=32),
                        ))
                    } else {
                        let a = base6 ^ (rng.random::<u128>() >> rng.random_range(0..128));
                        IpNet::V6(ipnet::Ipv6Net::new_assert(
                            Ipv6Addr::from(a),
                            rng.random_range(0..=128),
                        ))
                    };
                    (net.trunc(), NetTarget::Edges(vec![0]))
                })
                .collect();
            let nets = Nets::new(list);
            for _ in 0..20 {
                let addr = if rng.random_bool(0.5) {
                    IpAddr::V4(Ipv4Addr::from(
                        base4 ^ (rng.random::<u32>() >> rng.random_range(0..32)),
                    ))
                } else {
                    IpAddr::V6(Ipv6Addr::from(
                        base6 ^ (rng.random::<u128>() >> rng.random_range(0..128)),
                    ))
                };
                let scope = rng.random_range(0..=if addr.is_ipv4() { 32 } else { 128 });
                let (at, narrowed) = by_ipnet(&nets.list, addr, scope);
                assert_eq!(
                    nets.lookup_index(addr).map(|(i, _)| i),
                    at,
                    "{addr} in {:?}",
                    nets.list
                );
                assert_eq!(
                    nets.narrow_scope(addr, scope),
                    narrowed,
                    "{addr}/{scope} around {:?}",
                    nets.list
                );
            }
        }
    }
}
