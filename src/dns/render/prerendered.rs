//! The fast paths' writers: a pre-rendered body copied behind the
//! client's header and question, a steered A/AAAA written record by
//! record, a zone's negative tail with its compression pointers moved.
//! Each checks the room first and returns `None` when the answer would not
//! fit (the general path then truncates), so nothing here ever sets TC.

use std::sync::Arc;

use super::message::{Summary, head, header_flags, opt_len, tail};
use crate::dns::answer::Steered;
use crate::dns::request::Request;
use crate::steer::{EdgeIdx, Family};
use crate::wire::*;

/// A pre-rendered answer's sections after the question.
pub(crate) struct Body<'a> {
    pub rcode: Rcode,
    pub aa: bool,
    /// Answer, authority and additional counts (without our OPT).
    pub counts: [u16; 3],
    pub bytes: &'a [u8],
}

/// Writes a pre-rendered answer to `req`, or `None` when it doesn't fit.
#[inline(always)]
pub(crate) fn body(req: &Request<'_>, b: Body<'_>, out: &mut [u8]) -> Option<Summary<'static>> {
    let (q, extra, max) = (req.query, &req.extra, req.max);
    let opt = q.edns.as_ref().map_or(0, |e| opt_len(e, extra, None));
    let end = HEADER + q.qname_raw.len() + 4 + b.bytes.len();
    if end + opt > max.min(out.len()) {
        return None;
    }
    let ar = b.counts[2] + u16::from(q.edns.is_some());
    let flags = header_flags(q.flags, b.aa, false, b.rcode);
    let pos = head(req, flags, [1, b.counts[0], b.counts[1], ar], out);
    out[pos..end].copy_from_slice(b.bytes);
    let len = tail(req, b.rcode, 0, end, out);
    Some(Summary::prerendered(q, len, b.rcode, extra.cookie_valid))
}

/// Writes a steered A or AAAA answer: the addresses of the decision's
/// edges, each record a pointer to the question, then the RRSIGs `sigs`
/// (of a signed zone, for DO=1). `None` when it doesn't fit.
#[inline(always)]
pub(crate) fn steered<'s>(
    req: &Request<'_>,
    steered: Steered<'s>,
    family: Family,
    sigs: &[Arc<[u8]>],
    out: &mut [u8],
) -> Option<Summary<'s>> {
    let (q, extra, max) = (req.query, &req.extra, req.max);
    let st = &steered.zone.steering;
    let ttl = st.hosts[steered.host as usize].ttl;
    let d = &steered.decision;
    let (rtype, rdlen) = match family {
        Family::V4 => (TYPE_A, 4usize),
        Family::V6 => (TYPE_AAAA, 16),
    };
    let addrs = |e: &EdgeIdx| {
        let edge = &st.edges[*e as usize];
        match family {
            Family::V4 => edge.v4.len(),
            Family::V6 => edge.v6.len(),
        }
    };
    let records: usize = d.edges.iter().map(addrs).sum();
    let sig_bytes: usize = sigs.iter().map(|s| 12 + s.len()).sum();
    let opt = q.edns.as_ref().map_or(0, |e| opt_len(e, extra, None));
    let end = HEADER + q.qname_raw.len() + 4 + records * (12 + rdlen) + sig_bytes;
    if end + opt > max.min(out.len()) || records + sigs.len() > usize::from(u16::MAX) {
        return None;
    }
    let flags = header_flags(q.flags, true, false, Rcode::NoError);
    let ar = u16::from(q.edns.is_some());
    let an = (records + sigs.len()) as u16;
    let mut pos = head(req, flags, [1, an, 0, ar], out);
    // Every record: pointer to the question, type, class, TTL, RDATA.
    let mut fixed = [0u8; 12];
    fixed[0..2].copy_from_slice(&(0xC000 | HEADER as u16).to_be_bytes());
    fixed[2..4].copy_from_slice(&rtype.to_be_bytes());
    fixed[4..6].copy_from_slice(&CLASS_IN.to_be_bytes());
    fixed[6..10].copy_from_slice(&ttl.to_be_bytes());
    fixed[10..12].copy_from_slice(&(rdlen as u16).to_be_bytes());
    for &e in &d.edges {
        let edge = &st.edges[e as usize];
        match family {
            Family::V4 => {
                for a in &edge.v4 {
                    out[pos..pos + 12].copy_from_slice(&fixed);
                    out[pos + 12..pos + 16].copy_from_slice(&a.octets());
                    pos += 16;
                }
            }
            Family::V6 => {
                for a in &edge.v6 {
                    out[pos..pos + 12].copy_from_slice(&fixed);
                    out[pos + 12..pos + 28].copy_from_slice(&a.octets());
                    pos += 28;
                }
            }
        }
    }
    for sig in sigs {
        fixed[2..4].copy_from_slice(&crate::dnssec::sign::TYPE_RRSIG.to_be_bytes());
        fixed[10..12].copy_from_slice(&(sig.len() as u16).to_be_bytes());
        out[pos..pos + 12].copy_from_slice(&fixed);
        out[pos + 12..pos + 12 + sig.len()].copy_from_slice(sig);
        pos += 12 + sig.len();
    }
    let scope = if q.ecs_scoped() { d.scope } else { 0 };
    let len = tail(req, Rcode::NoError, scope, pos, out);
    Some(Summary {
        len,
        rcode: Rcode::NoError,
        qtype: q.qtype,
        truncated: false,
        ecs: q.edns.is_some_and(|e| e.ecs.is_some()),
        scope,
        steered: Some(steered),
        cookie_valid: extra.cookie_valid,
        rum_probe: false,
        prerendered: true,
        deferred: false,
    })
}

/// Writes a zone's NXDOMAIN or NODATA: its pre-rendered `tail` (the SOA)
/// with the compression pointers `patch` moved for this question, or
/// `None` when it doesn't fit.
#[inline(always)]
pub(crate) fn negative(
    req: &Request<'_>,
    rcode: Rcode,
    neg_tail: &[u8],
    patch: &[(u16, u16)],
    out: &mut [u8],
) -> Option<Summary<'static>> {
    let (q, extra, max) = (req.query, &req.extra, req.max);
    let qlen = q.qname_raw.len();
    let opt = q.edns.as_ref().map_or(0, |e| opt_len(e, extra, None));
    let pos = HEADER + qlen + 4;
    let end = pos + neg_tail.len();
    if end + opt > max.min(out.len()) {
        // Would be truncated: the general path sets TC.
        return None;
    }
    let flags = header_flags(q.flags, true, false, rcode);
    let ar = u16::from(q.edns.is_some());
    head(req, flags, [1, 0, 1, ar], out);
    out[pos..end].copy_from_slice(neg_tail);
    patch_pointers(&mut out[pos..end], patch, qlen);
    let len = tail(req, rcode, 0, end, out);
    Some(Summary::prerendered(q, len, rcode, extra.cookie_valid))
}

/// Rewrites the compression pointers of a copied negative tail for a
/// question name of `qname_len` bytes: each `(offset, base)` of `patch`
/// points at `base + qname_len`.
#[inline]
pub(crate) fn patch_pointers(tail: &mut [u8], patch: &[(u16, u16)], qname_len: usize) {
    for &(at, base) in patch {
        let at = usize::from(at);
        let ptr = 0xC000 | base.wrapping_add(qname_len as u16);
        tail[at..at + 2].copy_from_slice(&ptr.to_be_bytes());
    }
}
