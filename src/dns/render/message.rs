//! What every response has around its records: the header (the query's
//! ID and flags, our counts), the question echoed as the client wrote it,
//! and our OPT record (ECS echo, NSID, cookie, Extended DNS Error); the
//! reply to a query that could not be fully parsed; and the [`Summary`]
//! of what was sent.

use std::net::IpAddr;

use super::writer::{Full, Writer};
use crate::dns::answer::Steered;
use crate::dns::mandatory::Reject;
use crate::dns::opt::{Ede, OptExtra};
use crate::dns::request::{CLASSIC_UDP, OUR_UDP_SIZE, Request};
use crate::net::Transport;
use crate::wire::*;

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
    pub steered: Option<Steered<'a>>,
    /// The query carried a valid server cookie of ours (RFC 7873 §5.2.4):
    /// its source address is not forged, so RRL lets it through.
    pub cookie_valid: bool,
    /// A RUM resolver probe was answered (see [`crate::dns::answer::Answer::rum_probe`]).
    pub rum_probe: bool,
    /// Answered from the snapshot's pre-rendered tables (the fast path),
    /// not looked up.
    pub prerendered: bool,
    /// Not answered here: a NOTIFY, a zone transfer or a TSIG-signed
    /// message, for `crate::xfr` (nothing was written).
    pub deferred: bool,
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
            prerendered: true,
            deferred: false,
        }
    }

    /// A message the mandatory checks leave to `crate::xfr`.
    pub(crate) fn deferred() -> Self {
        Summary {
            len: 0,
            rcode: Rcode::NoError,
            qtype: 0,
            truncated: false,
            ecs: false,
            scope: 0,
            steered: None,
            cookie_valid: false,
            rum_probe: false,
            prerendered: false,
            deferred: true,
        }
    }
}

/// The response's flags word. QR, opcode, RD and CD come from the query;
/// RA is never set.
pub(crate) fn header_flags(query_flags: u16, aa: bool, tc: bool, rcode: Rcode) -> u16 {
    // A NOTIMP echoes only RD: the other flags mean nothing for an opcode
    // we don't know (what Knot and gdnsd do; ISC's ednscomp "opcodeflg").
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
pub(crate) fn opt_len(edns: &Edns, extra: &OptExtra<'_>, ede: Option<&Ede<'_>>) -> usize {
    11 + edns
        .ecs
        .map_or(0, |e| 8 + (e.source_prefix as usize).div_ceil(8))
        + extra.len(ede)
}

// Inlined everywhere: on the fast path the call cost more than the work.
#[inline(always)]
pub(crate) fn write_opt(
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
        write_extra(w, extra, ede)?;
    }
    Ok(())
}

/// The options of [`OptExtra`] and the Extended DNS Error, in that order.
fn write_extra(
    w: &mut Writer<'_>,
    extra: &OptExtra<'_>,
    ede: Option<&Ede<'_>>,
) -> Result<(), Full> {
    if let Some(n) = extra.nsid {
        w.u16(OPT_NSID)?;
        w.u16(n.len() as u16)?;
        w.bytes(n)?;
    }
    if let Some(c) = &extra.cookie {
        w.u16(OPT_COOKIE)?;
        w.u16(24)?;
        w.bytes(c)?;
    }
    if let Some(e) = ede {
        w.u16(OPT_EDE)?;
        w.u16(2 + e.text.len() as u16)?;
        w.u16(e.code)?;
        w.bytes(e.text.as_bytes())?;
    }
    Ok(())
}

/// Writes the header and the client's question; returns the position
/// after it. The caller has checked the room.
#[inline(always)]
pub(crate) fn head(req: &Request<'_>, flags: u16, counts: [u16; 4], out: &mut [u8]) -> usize {
    let q = req.query;
    out[0..2].copy_from_slice(&q.id.to_be_bytes());
    out[2..4].copy_from_slice(&flags.to_be_bytes());
    for (i, c) in counts.iter().enumerate() {
        out[4 + 2 * i..6 + 2 * i].copy_from_slice(&c.to_be_bytes());
    }
    let qend = HEADER + q.qname_raw.len();
    out[HEADER..qend].copy_from_slice(q.qname_raw);
    out[qend..qend + 2].copy_from_slice(&q.qtype.to_be_bytes());
    out[qend + 2..qend + 4].copy_from_slice(&q.qclass.to_be_bytes());
    qend + 4
}

/// Appends our OPT record (if the query had EDNS) at `pos`; returns the
/// end. The caller has checked the room.
#[inline(always)]
pub(crate) fn tail(
    req: &Request<'_>,
    rcode: Rcode,
    scope: u8,
    pos: usize,
    out: &mut [u8],
) -> usize {
    match &req.query.edns {
        Some(e) => {
            let mut w = Writer::at(out, pos);
            let _ = write_opt(&mut w, e, rcode, scope, &req.extra, None);
            w.pos
        }
        None => pos,
    }
}

/// The reply to a packet the mandatory checks reject: header, the
/// question when it was readable, and OPT when EDNS was.
pub(crate) fn error_reply(
    packet: &[u8],
    reject: &Reject<'_>,
    extra: &OptExtra<'_>,
    transport: Transport,
    out: &mut [u8],
) -> Summary<'static> {
    let Reject {
        rcode,
        question,
        edns,
    } = *reject;
    let mut w = Writer::new(
        out,
        if transport == Transport::Tcp {
            65_535
        } else {
            CLASSIC_UDP
        },
    );
    let flags = u16::from_be_bytes([packet[2], packet[3]]);
    let qtype = question.map_or(0, |(_, e)| {
        u16::from_be_bytes([packet[e - 4], packet[e - 3]])
    });
    // Both fit in 512 bytes: a question is at most 259 bytes, our OPT
    // with NSID (at most 128) and cookie (28) 167.
    let _ = w.bytes(&packet[..2]);
    let _ = w.u16(header_flags(flags, false, false, rcode));
    let _ = w.u16(question.is_some() as u16);
    let _ = w.bytes(&[0, 0, 0, 0]);
    let _ = w.u16(edns.is_some() as u16);
    if let Some((s, e)) = question {
        let _ = w.bytes(&packet[s..e]);
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
        prerendered: false,
        deferred: false,
    }
}
