//! The EDNS options we answer with beyond ECS: NSID (RFC 5001), COOKIE
//! (RFC 7873 with RFC 9018's interoperable server cookie) and Extended DNS
//! Errors (RFC 8914).
//!
//! The server-wide part (our NSID, the cookie secret) is
//! [`crate::protocol`], held by the snapshot. [`OptExtra`] is what one
//! response adds to its OPT record, worked out once per query so the fast
//! and the general path write the same bytes ([`super::render`] writes
//! them).

use std::net::IpAddr;

use crate::protocol::Protocol;
use crate::wire::Edns;

/// What one response adds to its OPT record besides ECS.
#[derive(Clone, Copy, Debug, Default)]
pub struct OptExtra<'a> {
    pub nsid: Option<&'a [u8]>,
    /// Client cookie and our fresh server cookie.
    pub cookie: Option<[u8; 24]>,
    /// The query's server cookie verified (exempts it from RRL).
    pub cookie_valid: bool,
    /// Bytes NSID and cookie take, worked out once: both paths ask twice
    /// (room for OPT, then its RDLENGTH).
    opts_len: u16,
}

impl<'a> OptExtra<'a> {
    /// NSID if asked for, and a cookie if the query sent one (cookies on).
    /// `source` is the packet's address, never the ECS one: the cookie
    /// binds the client we talk to.
    #[inline]
    pub fn for_query(p: &'a Protocol, edns: &Edns<'_>, source: IpAddr) -> OptExtra<'a> {
        // Most queries ask for neither: no call, no clock read.
        if !edns.nsid && edns.cookie.is_none() {
            return OptExtra::default();
        }
        Self::asked(p, edns, source)
    }

    #[inline(never)]
    fn asked(p: &'a Protocol, edns: &Edns<'_>, source: IpAddr) -> OptExtra<'a> {
        let mut x = OptExtra {
            nsid: if edns.nsid { p.nsid.as_deref() } else { None },
            ..OptExtra::default()
        };
        if let (Some(c), Some(cookies)) = (&edns.cookie, &p.cookies) {
            // Cookie timestamps are 32-bit serial numbers (RFC 9018 §4.3).
            let now = crate::clock::unix_now() as u32;
            x.cookie_valid = !c.server().is_empty() && cookies.verify(c, source, now);
            let mut v = [0u8; 24];
            v[..8].copy_from_slice(c.client());
            v[8..].copy_from_slice(&cookies.server_cookie(c.client(), source, now));
            x.cookie = Some(v);
        }
        x.opts_len = (x.nsid.map_or(0, |n| 4 + n.len()) + x.cookie.map_or(0, |_| 4 + 24)) as u16;
        x
    }

    /// Bytes these options take in the OPT RDATA.
    #[inline]
    pub fn len(&self, ede: Option<&Ede<'_>>) -> usize {
        usize::from(self.opts_len) + ede.map_or(0, |e| 4 + 2 + e.text.len())
    }
}

/// An Extended DNS Error (RFC 8914 §2): info code and a short text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ede<'a> {
    pub code: u16,
    pub text: std::borrow::Cow<'a, str>,
}

/// RFC 8914 §4.15: not ready (a secondary zone with no copy yet, or expired).
pub const EDE_NOT_READY: u16 = 14;
/// RFC 8914 §4.21: the server is not authoritative for the name.
pub const EDE_NOT_AUTHORITATIVE: u16 = 20;
/// RFC 8914 §4.23: the server cannot answer (here: no edge can serve).
pub const EDE_NETWORK_ERROR: u16 = 23;
/// RFC 8914 §4.25: invalid data (a zone whose files did not load, as Knot says).
pub const EDE_INVALID_DATA: u16 = 24;
