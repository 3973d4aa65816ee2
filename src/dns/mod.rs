//! The answer core: from query bytes, client and snapshot to response
//! bytes. No I/O, no allocation on the common path.
//!
//! [`respond`] = [`crate::wire::parse_query`] → [`answer::lookup`] (which calls
//! [`crate::steer`] for steered names) → render into the caller's buffer.

mod answer;
pub(crate) mod fast;
mod negative;
mod opt;
mod render;
mod secure;

pub use render::{OUR_UDP_SIZE, Summary};

use std::net::{IpAddr, SocketAddr};

use crate::wire::*;
use answer::{Answer, Question};
use opt::OptExtra;
use render::CLASSIC_UDP;

use crate::net::Transport;
use crate::snapshot::Snapshot;
use crate::steer::{self, Client};

/// Answers one query. Returns `None` when the packet deserves no answer.
pub fn respond(
    snap: &Snapshot,
    query: &[u8],
    client: SocketAddr,
    transport: Transport,
    out: &mut [u8],
) -> Option<usize> {
    respond_traced(snap, query, client.ip(), transport, out, &mut ()).map(|s| s.len)
}

/// [`respond`] with a steering trace and a summary of what was sent.
///
/// This and [`respond_inner`] are always inlined into the server's handler:
/// left to itself the compiler stopped inlining them when the crate grew
/// (the fleet merge cost every query ~100 instructions that way).
#[inline(always)]
pub fn respond_traced<'s, T: steer::Trace>(
    snap: &'s Snapshot,
    query: &[u8],
    source: IpAddr,
    transport: Transport,
    out: &mut [u8],
    trace: &mut T,
) -> Option<Summary<'s>> {
    respond_inner(snap, query, source, transport, out, trace, Paths::Both)
}

/// [`respond`] without the pre-rendered answers of [`fast`]: what the fast
/// path is checked against.
#[doc(hidden)]
pub fn respond_general(
    snap: &Snapshot,
    query: &[u8],
    client: SocketAddr,
    transport: Transport,
    out: &mut [u8],
) -> Option<usize> {
    respond_inner(
        snap,
        query,
        client.ip(),
        transport,
        out,
        &mut (),
        Paths::General,
    )
    .map(|s| s.len)
}

/// Only the fast path: `None` when it would hand the query to the general
/// path. For tests that must know which path answered.
#[doc(hidden)]
pub fn fast_respond(
    snap: &Snapshot,
    query: &[u8],
    source: IpAddr,
    transport: Transport,
    out: &mut [u8],
) -> Option<usize> {
    respond_inner(snap, query, source, transport, out, &mut (), Paths::Fast).map(|s| s.len)
}

/// Which answer paths [`respond_inner`] may take.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Paths {
    /// The fast path, else the general one: what serves queries.
    Both,
    /// Only the general path (to check the fast one against).
    General,
    /// Only the fast path; `None` where the general one would answer.
    Fast,
}

/// The largest response the transport and the query's EDNS allow.
fn response_max(q: &Query<'_>, transport: Transport, buf: usize) -> usize {
    match transport {
        Transport::Tcp => buf.min(65_535),
        Transport::Udp => match q.edns {
            Some(e) => (e.udp_size.clamp(CLASSIC_UDP as u16, OUR_UDP_SIZE)) as usize,
            None => CLASSIC_UDP,
        },
    }
}

/// Who to locate: the ECS address when the query has a non-zero source
/// prefix (RFC 7871 §7.1.2), else the packet's source.
fn client_of(q: &Query<'_>, source: IpAddr) -> Client {
    match q.edns.and_then(|e| e.ecs) {
        Some(ecs) if ecs.source_prefix > 0 => Client {
            addr: ecs.addr,
            ecs_source: Some(ecs.source_prefix),
        },
        _ => Client {
            addr: source,
            ecs_source: None,
        },
    }
}

#[inline(always)]
fn respond_inner<'s, T: steer::Trace>(
    snap: &'s Snapshot,
    query: &[u8],
    source: IpAddr,
    transport: Transport,
    out: &mut [u8],
    trace: &mut T,
    paths: Paths,
) -> Option<Summary<'s>> {
    let mut q = Query::EMPTY;
    match parse_query_into(query, &mut q) {
        Ok(()) => {}
        Err(ParseError::Drop) => return None,
        Err(_) if paths == Paths::Fast => return None,
        Err(ParseError::Reply {
            rcode,
            question,
            edns,
        }) => {
            let extra = edns.map_or_else(OptExtra::default, |e| {
                OptExtra::for_query(&snap.protocol, &e, source)
            });
            return Some(render::error_reply(
                query, rcode, question, edns, &extra, transport, out,
            ));
        }
    };
    let max = response_max(&q, transport, out.len());
    // NSID and cookie, the same whichever path answers.
    let extra = match &q.edns {
        Some(e) => OptExtra::for_query(&snap.protocol, e, source),
        None => OptExtra::default(),
    };
    // Opcodes other than QUERY never get here (parse_query says NOTIMP).
    let rcode = if q.qclass != CLASS_IN && q.qclass != CLASS_ANY {
        Some(Rcode::Refused)
    } else if matches!(q.qtype, TYPE_AXFR | TYPE_IXFR) {
        // Zone transfers are not offered (and never over UDP).
        Some(Rcode::Refused)
    } else if matches!(
        q.qtype,
        TYPE_OPT | TYPE_MAILA | TYPE_MAILB | crate::dnssec::sign::TYPE_NXNAME
    ) {
        // NXNAME only ever appears in compact-denial bitmaps (RFC 9824 §3.5).
        Some(Rcode::FormErr)
    } else {
        None
    };
    let ans = match rcode {
        Some(_) if paths == Paths::Fast => return None,
        Some(r) => Answer::new(r),
        None => {
            let client = client_of(&q, source);
            // explain's detailed trace must see one decision, so it stays
            // on the general path (same `decide`, same answer).
            if paths != Paths::General && !T::DETAILED {
                let fast = fast::respond(snap, &q, &extra, client, max, out, trace);
                if fast.is_some() || paths == Paths::Fast {
                    return fast;
                }
            }
            let qname = q.qname();
            let question = Question {
                name: qname.as_bytes(),
                qtype: q.qtype,
                transport,
                client,
            };
            answer::lookup(snap, &question, trace)
        }
    };
    let mut ans = ans;
    let sec = match q.edns {
        Some(e) if e.dnssec_ok => secure::prepare(snap, q.qname(), q.qtype, e.compact_ok, &mut ans),
        _ => None,
    };
    let (len, truncated) = render::answer(&q, &ans, &extra, max, out, sec.as_ref());
    let scope = if q.ecs_scoped() { ans.scope } else { 0 };
    Some(Summary {
        len,
        rcode: ans.rcode,
        qtype: q.qtype,
        truncated,
        ecs: q.edns.is_some_and(|e| e.ecs.is_some()),
        scope,
        steered: ans.steered,
        cookie_valid: extra.cookie_valid,
    })
}
