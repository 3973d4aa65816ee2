//! The ECS scope of an answer: how much of the client's address decided
//! it, never covering an override net or RTT prefix the client is not in.

use std::net::IpAddr;

use super::overlay::Hit;
use super::steering::Steering;
use super::types::Located;

/// The address steering works with, and how it relates to the one asked
/// about (for the ECS scope).
pub(super) struct Located4 {
    /// The client address as given (packet source or ECS).
    pub raw: IpAddr,
    /// `raw`, or the IPv4 address embedded in it.
    pub addr: IpAddr,
    /// Bits of `raw` before the embedded IPv4 address (0: none).
    pub offset: u8,
    /// The ECS source prefix in `addr`'s bits; None without ECS.
    pub source: Option<u8>,
    /// What the zone's overlay (nets, RTT prefixes) says about `addr`.
    pub hit: Option<Hit>,
}

impl Located4 {
    /// The ECS scope of an answer decided by `how` (0 without ECS): the
    /// deciding network's prefix, at least the spreading prefix and the RTT
    /// prefix (and `floor`), narrowed around override nets and more
    /// specific RTT rows, in the bits of the address that was asked.
    pub fn scope(&self, st: &Steering, how: Located, spread_bits: Option<u8>, floor: u8) -> u8 {
        let Some(source) = self.source else {
            return 0;
        };
        let mut scope = match how {
            Located::Net(n) | Located::Db(n) => n.prefix_len(),
            Located::Unknown => source,
        };
        let prefix = self
            .hit
            .and_then(|h| super::rtt::hit_of(h.rtt)?.prefix)
            .unwrap_or(0);
        scope = scope.max(spread_bits.unwrap_or(0)).max(prefix).max(floor);
        if let Some(h) = &self.hit {
            scope = st.overlay.narrow_scope(&st.rtt, h, self.addr, scope);
        }
        if self.offset > 0 {
            // Back to IPv6 bits; IPv6 nets and prefixes get their say too.
            scope = (scope + self.offset).min(128);
            if let Some(h) = st.overlay.find(&st.rtt, self.raw) {
                scope = st.overlay.narrow_scope(&st.rtt, &h, self.raw, scope);
            }
        }
        scope
    }
}

/// The first `prefix` bits of an address, as an integer.
pub(super) fn masked_bits(addr: IpAddr, prefix: u8) -> u128 {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::steer::{NetTarget, Nets, RttKey, RttTable};
    use std::sync::Arc;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn at(st: &Steering, raw: &str, addr: &str, offset: u8, source: Option<u8>) -> Located4 {
        let addr = ip(addr);
        Located4 {
            raw: ip(raw),
            addr,
            offset,
            source,
            hit: st.overlay.find(&st.rtt, addr),
        }
    }

    fn steering() -> Steering {
        let nets = Nets::new(vec![
            ("10.1.0.0/16".parse().unwrap(), NetTarget::Edges(vec![])),
            ("2002:0a02::/32".parse().unwrap(), NetTarget::Edges(vec![])),
        ]);
        let rtt = RttTable::new(
            vec![(RttKey::Prefix("10.2.3.0/24".parse().unwrap()), 0, 1.0)],
            |_| 1.0,
        );
        Steering::new(Vec::new(), Vec::new(), nets).with_rtt(Arc::new(rtt))
    }

    #[test]
    fn scope_from_how_spread_and_rtt_narrowed_around_nets() {
        let st = steering();
        let db = |n: &str| Located::Db(n.parse().unwrap());
        // Without ECS: 0, whatever decided.
        assert_eq!(
            at(&st, "10.0.0.1", "10.0.0.1", 0, None).scope(&st, db("10.0.0.0/8"), None, 0),
            0
        );
        // A /8 network holding the /16 net: narrowed until it excludes it.
        let a = at(&st, "10.0.0.1", "10.0.0.1", 0, Some(24));
        assert_eq!(a.scope(&st, db("10.0.0.0/8"), None, 0), 16);
        // Unknown: the source prefix; spreading lengthens it.
        let u = at(&st, "11.0.0.1", "11.0.0.1", 0, Some(20));
        assert_eq!(u.scope(&st, Located::Unknown, None, 0), 20);
        assert_eq!(u.scope(&st, Located::Unknown, Some(24), 0), 24);
        // Inside the RTT /24: at least its length.
        let r = at(&st, "10.2.3.4", "10.2.3.4", 0, Some(16));
        assert_eq!(r.scope(&st, db("10.2.0.0/16"), None, 0), 24);
        // A floor (learned rows) lengthens it too.
        assert_eq!(u.scope(&st, Located::Unknown, None, 28), 28);
    }

    #[test]
    fn embedded_ipv4_scopes_in_ipv6_bits() {
        let st = steering();
        // 6to4 2002:0b00:0001:: embeds 11.0.0.1, 16 bits in.
        let a = at(&st, "2002:0b00:0001::", "11.0.0.1", 16, Some(8));
        assert_eq!(
            a.scope(&st, Located::Db("11.0.0.0/8".parse().unwrap()), None, 0),
            24
        );
        // Next to the IPv6 net 2002:0a02::/32: narrowed around it.
        let b = at(&st, "2002:0a03:0001::", "10.3.0.1", 16, Some(8));
        assert_eq!(
            b.scope(&st, Located::Db("10.0.0.0/8".parse().unwrap()), None, 0),
            32
        );
    }

    #[test]
    fn masks() {
        assert_eq!(masked_bits(ip("10.1.2.3"), 16), 0x0A01_0000);
        assert_eq!(masked_bits(ip("10.1.2.3"), 0), 0);
        assert_eq!(masked_bits(ip("2001:db8::1"), 32), 0x2001_0db8 << 96);
    }
}
