//! The answer core: from a packet, its source and a snapshot to response
//! bytes. No I/O, no allocation on the common path.
//!
//! One query, one direction ([`respond`]):
//!
//! 1. [`crate::wire`] parses the packet and [`mandatory`] applies the RFC
//!    MUST checks (drop, FORMERR, BADVERS, NOTIMP, REFUSED);
//! 2. a [`Request`] is built once: source, transport, size limit, EDNS
//!    extras (NSID, cookies), the client to locate;
//! 3. dispatch: [`fast`] answers from the snapshot's pre-rendered tables
//!    ([`negative`] for NXDOMAIN/NODATA), else [`answer`] looks the name up
//!    (asking [`crate::steer`] for steered names) and [`secure`] adds what
//!    DNSSEC needs;
//! 4. [`render`] writes the response into the caller's buffer.

mod answer;
pub(crate) mod fast;
mod mandatory;
mod negative;
mod opt;
mod render;
mod request;
mod secure;

pub use render::Summary;
pub use request::OUR_UDP_SIZE;
use request::Request;

use std::net::{IpAddr, SocketAddr};

use answer::{Answer, Question};
use mandatory::{Check, Reject};
use opt::OptExtra;

use crate::net::Transport;
use crate::snapshot::Snapshot;
use crate::steer;
use crate::wire::{Query, parse_query_into};

/// Answers one query. Returns `None` when the packet deserves no answer.
pub fn respond(
    snap: &Snapshot,
    packet: &[u8],
    client: SocketAddr,
    transport: Transport,
    out: &mut [u8],
) -> Option<usize> {
    respond_traced(snap, packet, client.ip(), transport, out, &mut ())
        .filter(|s| !s.deferred)
        .map(|s| s.len)
}

/// [`respond`] with a steering trace and a summary of what was sent.
///
/// This and [`respond_inner`] are always inlined into the server's handler:
/// left to itself the compiler stopped inlining them when the crate grew
/// (the fleet merge cost every query ~100 instructions that way).
#[inline(always)]
pub fn respond_traced<'s, T: steer::Trace>(
    snap: &'s Snapshot,
    packet: &[u8],
    source: IpAddr,
    transport: Transport,
    out: &mut [u8],
    trace: &mut T,
) -> Option<Summary<'s>> {
    respond_inner(snap, packet, source, transport, out, trace)
}

/// Parse, the mandatory checks, the request, dispatch: the one place a
/// request is routed.
#[inline(always)]
fn respond_inner<'s, T: steer::Trace>(
    snap: &'s Snapshot,
    packet: &[u8],
    source: IpAddr,
    transport: Transport,
    out: &mut [u8],
    trace: &mut T,
) -> Option<Summary<'s>> {
    let mut q = Query::EMPTY;
    let refused = match mandatory::check(packet, parse_query_into(packet, &mut q), &q) {
        Check::Pass => None,
        Check::Drop => return None,
        // NOTIFY, transfers, TSIG: handed back for `crate::xfr`.
        Check::Defer => return Some(Summary::deferred()),
        Check::Reject(r) => return Some(reject(snap, packet, &r, source, transport, out)),
        Check::Refuse(rcode) => Some(rcode),
    };
    let req = Request::new(&snap.protocol, &q, source, transport, out.len());
    // Dispatch: a query, or a refusal of one. (NOTIFY, zone transfers and
    // TSIG-signed messages were deferred above, to `crate::xfr`.)
    match refused {
        None => query(snap, &req, out, trace),
        Some(rcode) => Some(answered(snap, &req, Answer::new(rcode), out)),
    }
}

/// A QUERY: from the pre-rendered tables when they have the answer, else
/// looked up.
#[inline(always)]
fn query<'s, T: steer::Trace>(
    snap: &'s Snapshot,
    req: &Request<'_>,
    out: &mut [u8],
    trace: &mut T,
) -> Option<Summary<'s>> {
    // explain's detailed trace must see one decision, so it stays on the
    // general path (same `decide`, same answer).
    if !T::DETAILED
        && let Some(s) = fast::respond(snap, req, out, trace)
    {
        return Some(s);
    }
    let qname = req.query.qname();
    let question = Question {
        name: qname.as_bytes(),
        qtype: req.query.qtype,
        transport: req.transport,
        client: req.client,
    };
    let ans = answer::lookup(snap, &question, trace);
    Some(answered(snap, req, ans, out))
}

/// Renders an answer of the general path, signed when the query asks
/// for DNSSEC.
#[inline(always)]
fn answered<'s>(
    snap: &'s Snapshot,
    req: &Request<'_>,
    mut ans: Answer<'s>,
    out: &mut [u8],
) -> Summary<'s> {
    let q = req.query;
    let sec = match q.edns {
        Some(e) if e.dnssec_ok => secure::prepare(snap, q.qname(), q.qtype, e.compact_ok, &mut ans),
        _ => None,
    };
    let (len, truncated) = render::answer(req, &ans, out, sec.as_ref());
    let scope = if q.ecs_scoped() { ans.scope } else { 0 };
    Summary {
        len,
        rcode: ans.rcode,
        qtype: q.qtype,
        truncated,
        ecs: q.edns.is_some_and(|e| e.ecs.is_some()),
        scope,
        steered: ans.steered,
        cookie_valid: req.extra.cookie_valid,
        rum_probe: ans.rum_probe,
        prerendered: false,
        deferred: false,
    }
}

/// The error reply to a packet the mandatory checks reject, with NSID and
/// cookie when its EDNS was readable.
fn reject(
    snap: &Snapshot,
    packet: &[u8],
    r: &Reject<'_>,
    source: IpAddr,
    transport: Transport,
    out: &mut [u8],
) -> Summary<'static> {
    let extra = r.edns.map_or_else(OptExtra::default, |e| {
        OptExtra::for_query(&snap.protocol, &e, source)
    });
    render::error_reply(packet, r, &extra, transport, out)
}
