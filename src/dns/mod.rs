//! The answer core: from query bytes, client and snapshot to response
//! bytes. No I/O, no allocation on the common path.
//!
//! [`respond`] = [`crate::wire::parse_query`] → [`answer::lookup`] (which calls
//! [`crate::steer`] for steered names) → render into the caller's buffer.

pub mod answer;
pub mod fast;
pub mod negative;
pub mod opt;
pub mod render;
pub mod secure;

use std::net::{IpAddr, SocketAddr};

use crate::wire::*;
use crate::zone::tree::Rrset;
use answer::{Answer, Item, Owner, Question};
use opt::{Ede, OptExtra};
use render::{Full, Writer};

use crate::net::Transport;
use crate::snapshot::Snapshot;
use crate::steer::{self, Client, Family};

/// The UDP payload size we advertise and never exceed (DNS flag day 2020).
pub const OUR_UDP_SIZE: u16 = 1232;
/// Plain DNS over UDP without EDNS (RFC 1035 §4.2.1).
const CLASSIC_UDP: usize = 512;

/// A summary of one response, for metrics and the query log.
#[derive(Clone, Debug)]
pub struct Summary<'a> {
    pub len: usize,
    pub rcode: Rcode,
    pub qtype: u16,
    pub truncated: bool,
    pub ecs: bool,
    /// ECS scope prefix sent (0 without ECS).
    pub scope: u8,
    /// The zone, host and decision of a steered answer.
    pub steered: Option<answer::Steered<'a>>,
    /// The query carried a valid server cookie of ours (RFC 7873 §5.2.4):
    /// its source address is not forged, so RRL lets it through.
    pub cookie_valid: bool,
    /// A RUM resolver probe was answered ([`answer::Answer::rum_probe`]).
    pub rum_probe: bool,
}

impl Summary<'_> {
    /// A pre-rendered answer's summary: not steered, not truncated, no
    /// ECS scope.
    #[inline(always)]
    pub(crate) fn prerendered(q: &Query<'_>, len: usize, rcode: Rcode, cookie_valid: bool) -> Self {
        Summary {
            len,
            rcode,
            qtype: q.qtype,
            truncated: false,
            ecs: q.edns.is_some_and(|e| e.ecs.is_some()),
            scope: 0,
            steered: None,
            cookie_valid,
            rum_probe: false,
        }
    }
}

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
            return Some(error_reply(
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
    let (len, truncated) = render_answer(&q, &ans, &extra, max, out, sec.as_ref());
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
        rum_probe: ans.rum_probe,
    })
}

fn header_flags(query_flags: u16, aa: bool, tc: bool, rcode: Rcode) -> u16 {
    // QR, opcode, RD and CD come from the query; RA is never set. A NOTIMP
    // echoes only RD: the other flags mean nothing for an opcode we don't
    // know (what Knot and gdnsd do; ISC's ednscomp "opcodeflg" test).
    let cd = if rcode == Rcode::NotImp {
        0
    } else {
        query_flags & 0x0010
    };
    let mut f = 0x8000 | (query_flags & 0x7800) | (query_flags & 0x0100) | cd;
    if aa {
        f |= 0x0400;
    }
    if tc {
        f |= 0x0200;
    }
    f | (rcode as u16 & 0xF)
}

/// Length of our OPT record for this query's EDNS.
fn opt_len(edns: &Edns, extra: &OptExtra<'_>, ede: Option<&Ede<'_>>) -> usize {
    11 + edns
        .ecs
        .map_or(0, |e| 8 + (e.source_prefix as usize).div_ceil(8))
        + extra.len(ede)
}

// Inlined everywhere: on the fast path the call cost more than the work.
#[inline(always)]
fn write_opt(
    w: &mut Writer<'_>,
    edns: &Edns,
    rcode: Rcode,
    scope: u8,
    extra: &OptExtra<'_>,
    ede: Option<&Ede<'_>>,
) -> Result<(), Full> {
    // Assembled on the stack and written with one bounds check.
    let mut b = [0u8; 11 + 8 + 16];
    b[1..3].copy_from_slice(&TYPE_OPT.to_be_bytes());
    b[3..5].copy_from_slice(&OUR_UDP_SIZE.to_be_bytes());
    // Extended rcode, version 0, and of the flags only DO (RFC 3225 says
    // echo it); unknown flags are cleared.
    b[5] = (rcode as u8) >> 4;
    // CO is echoed too: we honour it (RFC 9824 §4).
    b[7] = u8::from(edns.dnssec_ok) << 7 | u8::from(edns.dnssec_ok && edns.compact_ok) << 6;
    let more = extra.len(ede);
    let len = match edns.ecs {
        Some(ecs) => {
            let alen = (ecs.source_prefix as usize).div_ceil(8);
            b[9..11].copy_from_slice(&((8 + alen + more) as u16).to_be_bytes());
            b[11..13].copy_from_slice(&OPT_ECS.to_be_bytes());
            b[13..15].copy_from_slice(&((4 + alen) as u16).to_be_bytes());
            b[15..17].copy_from_slice(&ecs.family.to_be_bytes());
            b[17] = ecs.source_prefix;
            b[18] = scope;
            match ecs.addr {
                IpAddr::V4(a) => b[19..19 + alen].copy_from_slice(&a.octets()[..alen]),
                IpAddr::V6(a) => b[19..19 + alen].copy_from_slice(&a.octets()[..alen]),
            }
            19 + alen
        }
        None => {
            b[9..11].copy_from_slice(&(more as u16).to_be_bytes());
            11
        }
    };
    w.bytes(&b[..len])?;
    if more > 0 {
        extra.write(w, ede)?;
    }
    Ok(())
}

/// A response to a query we could not fully parse: header, the question
/// when it was readable, and OPT when EDNS was.
#[allow(clippy::too_many_arguments)]
fn error_reply(
    query: &[u8],
    rcode: Rcode,
    question: Option<(usize, usize)>,
    edns: Option<Edns>,
    extra: &OptExtra<'_>,
    transport: Transport,
    out: &mut [u8],
) -> Summary<'static> {
    let mut w = Writer::new(
        out,
        if transport == Transport::Tcp {
            65_535
        } else {
            CLASSIC_UDP
        },
    );
    let flags = u16::from_be_bytes([query[2], query[3]]);
    let qtype = question.map_or(0, |(_, e)| u16::from_be_bytes([query[e - 4], query[e - 3]]));
    // Both fit in 512 bytes: a question is at most 259 bytes, our OPT
    // with NSID (at most 128) and cookie (28) 167.
    let _ = w.bytes(&query[..2]);
    let _ = w.u16(header_flags(flags, false, false, rcode));
    let _ = w.u16(question.is_some() as u16);
    let _ = w.bytes(&[0, 0, 0, 0]);
    let _ = w.u16(edns.is_some() as u16);
    if let Some((s, e)) = question {
        let _ = w.bytes(&query[s..e]);
    }
    if let Some(e) = edns {
        let e = Edns { ecs: None, ..e };
        let _ = write_opt(&mut w, &e, rcode, 0, extra, None);
    }
    Summary {
        len: w.pos,
        rcode,
        qtype,
        truncated: false,
        ecs: false,
        scope: 0,
        steered: None,
        cookie_valid: extra.cookie_valid,
        rum_probe: false,
    }
}

fn write_item(w: &mut Writer<'_>, item: &Item<'_>, synth: &[Box<[u8]>]) -> Result<u16, Full> {
    let owner = |w: &mut Writer<'_>, o: Owner<'_>| -> Result<(), Full> {
        match o {
            Owner::Query => w.qname_ptr(),
            Owner::Name(n) => w.name(n, true),
            Owner::Synth(i) => w.name(&synth[i as usize], true),
        }
    };
    let set = |w: &mut Writer<'_>, o: Owner<'_>, set: &Rrset, ttl: u32| -> Result<u16, Full> {
        for rd in &set.rdata {
            owner(w, o)?;
            w.u16(set.rtype)?;
            w.u16(CLASS_IN)?;
            w.u32(ttl)?;
            w.rdata(rd)?;
        }
        Ok(set.rdata.len() as u16)
    };
    let cname = |w: &mut Writer<'_>, o: Owner<'_>, ttl: u32, target: &[u8]| -> Result<u16, Full> {
        owner(w, o)?;
        w.u16(TYPE_CNAME)?;
        w.u16(CLASS_IN)?;
        w.u32(ttl)?;
        let at = w.pos;
        w.u16(0)?;
        w.name(target, true)?;
        let len = w.pos - at - 2;
        w.put_u16_at(at, len as u16);
        Ok(1)
    };
    match item {
        Item::Set(o, s) => set(w, *o, s, s.ttl),
        Item::NegativeSoa(tree) => set(
            w,
            Owner::Name(&tree.apex_node().owner),
            tree.soa(),
            tree.neg_ttl,
        ),
        Item::Edges {
            owner: o,
            ttl,
            family,
            steering,
            edges,
        } => {
            let mut n = 0u16;
            for &e in edges {
                let edge = &steering.edges[e as usize];
                match family {
                    Family::V4 => {
                        for a in &edge.v4 {
                            owner(w, *o)?;
                            w.bytes(&[0, TYPE_A as u8, 0, 1])?;
                            w.u32(*ttl)?;
                            w.u16(4)?;
                            w.bytes(&a.octets())?;
                            n += 1;
                        }
                    }
                    Family::V6 => {
                        for a in &edge.v6 {
                            owner(w, *o)?;
                            w.bytes(&[0, TYPE_AAAA as u8, 0, 1])?;
                            w.u32(*ttl)?;
                            w.u16(16)?;
                            w.bytes(&a.octets())?;
                            n += 1;
                        }
                    }
                }
            }
            Ok(n)
        }
        Item::Cname {
            owner: o,
            ttl,
            target,
        } => cname(w, *o, *ttl, target),
        Item::DnameCname {
            owner: o,
            ttl,
            target,
        } => cname(w, *o, *ttl, &synth[*target as usize]),
        Item::Nsec(n) => {
            match &n.synth {
                Some(s) => w.name(s, true)?,
                None => owner(w, n.owner)?,
            }
            w.u16(crate::dnssec::sign::TYPE_NSEC)?;
            w.u16(CLASS_IN)?;
            w.u32(n.ttl)?;
            w.u16(n.rdata.len() as u16)?;
            // The next name is never compressed (RFC 4034 §4.1.1).
            w.bytes(&n.rdata)?;
            Ok(1)
        }
        Item::Svcb {
            owner: o,
            ttl,
            template,
            steering,
            v4,
            v6,
        } => {
            let (a4, a6) = steering.hint_addresses(v4, v6);
            owner(w, *o)?;
            w.u16(template.rtype)?;
            w.u16(CLASS_IN)?;
            w.u32(*ttl)?;
            let len = template.rdata_len(a4.len(), a6.len());
            w.u16(u16::try_from(len).map_err(|_| Full)?)?;
            // The target is never compressed (RFC 9460 §2.2).
            template.write(&a4, &a6, |b| w.bytes(b))?;
            Ok(1)
        }
    }
}

/// An item and, for a signed answer, its RRSIGs: written whole or not at all.
fn write_signed(
    w: &mut Writer<'_>,
    item: &Item<'_>,
    synth: &[Box<[u8]>],
    sec: Option<&secure::Ctx<'_>>,
) -> Result<u16, Full> {
    let n = write_item(w, item, synth)?;
    match sec {
        Some(ctx) => Ok(n + secure::write_rrsigs(w, ctx, item, synth)?),
        None => Ok(n),
    }
}

/// Whether `item` is glue for a name server at or below the cut of a
/// referral (not sibling glue, which stays optional).
fn in_domain_glue(ans: &Answer<'_>, item: &Item<'_>) -> bool {
    let (Some(Item::Set(Owner::Name(cut), ns)), Item::Set(Owner::Name(owner), _)) =
        (ans.authority.first(), item)
    else {
        return false;
    };
    if ans.aa || ns.rtype != TYPE_NS || owner.len() < cut.len() {
        return false;
    }
    let at = owner.len() - cut.len();
    let mut p = 0;
    while p < at {
        p += 1 + owner[p] as usize;
    }
    p == at && owner[at..].eq_ignore_ascii_case(cut)
}

/// Renders an answer; returns (length, truncated).
fn render_answer(
    q: &Query<'_>,
    ans: &Answer<'_>,
    extra: &OptExtra<'_>,
    max: usize,
    out: &mut [u8],
    sec: Option<&secure::Ctx<'_>>,
) -> (usize, bool) {
    let ede = ans.ede.as_ref();
    let opt = q.edns.as_ref().map_or(0, |e| opt_len(e, extra, ede));
    let mut w = Writer::new(out, max.saturating_sub(opt));
    let qlen = q.qname_raw.len() + 4;
    // Header and question always fit: max >= 512 and a question <= 259.
    let _ = w.bytes(&q.id.to_be_bytes());
    let _ = w.bytes(&[0; 10]);
    let _ = w.bytes(q.qname_raw);
    let _ = w.u16(q.qtype);
    let _ = w.u16(q.qclass);
    w.remember_name(HEADER);
    let after_question = HEADER + qlen;

    let mut counts = [0u16; 3];
    let mut truncated = false;
    'sections: for (i, section) in [&ans.answer[..], &ans.authority[..]]
        .into_iter()
        .enumerate()
    {
        for item in section.iter() {
            match write_signed(&mut w, item, &ans.synth, sec) {
                Ok(n) => counts[i] += n,
                Err(Full) => {
                    // An answer or authority RRset that doesn't fit: send
                    // the question with TC so the client retries over TCP.
                    truncated = true;
                    counts = [0; 3];
                    w.truncate(after_question);
                    break 'sections;
                }
            }
        }
    }
    if !truncated {
        for item in ans.additional.iter() {
            let mark = w.pos;
            match write_signed(&mut w, item, &ans.synth, sec) {
                Ok(n) => counts[2] += n,
                Err(Full) => {
                    // Additional data is optional: stop adding, no TC,
                    // except glue of in-domain name servers in a referral
                    // (RFC 9471 §3: TC MUST be set when it doesn't fit).
                    w.truncate(mark);
                    truncated = in_domain_glue(ans, item);
                    break;
                }
            }
        }
    }
    // Give back the room kept for OPT.
    w.set_limit(max);
    let mut arcount = counts[2];
    if let Some(e) = &q.edns {
        let scope = if q.ecs_scoped() { ans.scope } else { 0 };
        if write_opt(&mut w, e, ans.rcode, scope, extra, ede).is_ok() {
            arcount += 1;
        }
    }
    let len = w.pos;
    let flags = header_flags(q.flags, ans.aa, truncated, ans.rcode);
    w.put_u16_at(2, flags);
    w.put_u16_at(4, 1);
    w.put_u16_at(6, counts[0]);
    w.put_u16_at(8, counts[1]);
    w.put_u16_at(10, arcount);
    (len, truncated)
}
