//! The ECS scope of an answer: how much of the client's address decided
//! it, never covering an override net the client is not in.

use std::net::IpAddr;

use super::rtt::{RttAt, RttTable};
use super::{Located, Steering};

/// The address steering works with, and how it relates to the one asked
/// about (for the ECS scope).
pub(super) struct Located4<'l> {
    /// The client address as given (packet source or ECS).
    pub raw: IpAddr,
    /// `raw`, or the IPv4 address embedded in it.
    pub addr: IpAddr,
    /// Bits of `raw` before the embedded IPv4 address (0: none).
    pub offset: u8,
    /// The ECS source prefix in `addr`'s bits; None without ECS.
    pub source: Option<u8>,
    /// Where `addr` falls among the RTT prefixes (None: no prefix rows).
    pub rtt: Option<RttAt>,
    /// The learned client table and where `addr` falls in it (ECS queries
    /// of a zone with learned rows): a scope must not cover a learned
    /// network the client is not in.
    pub learned: Option<(&'l RttTable, RttAt)>,
    /// The prefix length of the learned key that decided (0: none did).
    pub learned_len: u8,
}

impl Located4<'_> {
    /// The ECS scope of an answer decided by `how` (0 without ECS): the
    /// deciding network's prefix, at least the spreading prefix and the RTT
    /// prefix, narrowed around override nets and more specific RTT rows, in
    /// the bits of the address that was asked.
    #[inline(always)]
    pub fn scope(&self, st: &Steering, how: Located, spread_bits: Option<u8>) -> u8 {
        let Some(source) = self.source else {
            return 0;
        };
        let mut scope = match how {
            Located::Net(n) | Located::Db(n) => n.prefix_len(),
            Located::Unknown => source,
        };
        scope = scope
            .max(spread_bits.unwrap_or(0))
            .max(self.rtt.and_then(|r| r.hit?.prefix).unwrap_or(0))
            .max(self.learned_len);
        scope = st.nets.narrow_scope(self.addr, scope);
        if let Some(at) = &self.rtt {
            let in_network = matches!(how, Located::Db(_));
            scope = st.rtt.narrow_scope_at(at, self.addr, scope, in_network);
        }
        if let Some((learned, at)) = &self.learned {
            scope = learned.narrow_scope_at(at, self.addr, scope, false);
        }
        if self.offset > 0 {
            // Back to IPv6 bits; IPv6 override nets get their say too.
            scope = st
                .nets
                .narrow_scope(self.raw, (scope + self.offset).min(128));
            if !st.rtt.is_empty() {
                scope = st.rtt.narrow_scope(self.raw, scope);
            }
            if let Some((learned, _)) = &self.learned {
                scope = learned.narrow_scope(self.raw, scope);
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
