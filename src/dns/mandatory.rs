//! The RFC MUST checks, one step before dispatch (NLnet Labs' `domain`
//! runs them as its `mandatory` middleware): what to do with a packet
//! before anything looks a name up.
//!
//! | what | answer | why |
//! |---|---|---|
//! | shorter than a header, or a response (QR) | nothing | RFC 1035 §4.1.1; answering a response could loop two servers |
//! | not one well-formed question, a second OPT, a bad ECS or COOKIE option | FORMERR | RFC 1035 §4.1.2, RFC 6891 §6.1.1, RFC 7871 §6, RFC 7873 §5.2.2 |
//! | EDNS version above 0 | BADVERS | RFC 6891 §6.1.3 |
//! | any opcode but QUERY | NOTIMP | RFC 1035 §4.1.1 (wins over the two above, as in Knot and gdnsd) |
//! | a class other than IN (or ANY) | REFUSED | we serve IN zones only |
//! | NOTIFY, AXFR or IXFR, a TSIG RR | deferred | `crate::xfr` answers them (transfers, RFC 1996, RFC 8945) |
//! | OPT, MAILA, MAILB or NXNAME as the type | FORMERR | meta-types nobody may ask (RFC 6891 §6.1.1, RFC 9824 §3.5) |
//!
//! The first three are the packet's form, found by [`crate::wire`]'s
//! parser: they are answered with what of the packet was readable
//! ([`Reject`]). The rest are answered as a normal response with that
//! rcode and no records. Cookies are checked where the request is built
//! ([`super::request`]): an invalid server cookie is answered as if only
//! the client cookie had been sent (RFC 7873 §5.2.3).
//!
//! UPDATE and the other opcodes get their NOTIMP here. NOTIFY, zone
//! transfers and TSIG-signed messages are deferred: [`super::respond`]
//! hands them back (`Summary::deferred`) for `crate::xfr`.

use crate::wire::*;

/// What the checks decided.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Check<'a> {
    /// Not worth an answer.
    Drop,
    /// Answer with an error, echoing what was readable.
    Reject(Reject<'a>),
    /// A well-formed query answered with this rcode and no records.
    Refuse(Rcode),
    /// Not the answer core's: a NOTIFY, AXFR/IXFR, or a TSIG-signed
    /// message (`crate::xfr`).
    Defer,
    /// A query to dispatch.
    Pass,
}

/// A packet answered with an error about its form or its opcode.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Reject<'a> {
    pub rcode: Rcode,
    /// The byte range of a well-formed question, if any.
    pub question: Option<(usize, usize)>,
    /// The query's EDNS, if it was readable.
    pub edns: Option<Edns<'a>>,
}

/// The checks on `packet`, which [`crate::wire::parse_query_into`] read
/// into `q` with the result `parsed`.
#[inline(always)]
pub(crate) fn check<'a>(
    packet: &[u8],
    parsed: Result<(), ParseError<'a>>,
    q: &Query<'a>,
) -> Check<'a> {
    let reject = match parsed {
        Err(ParseError::Drop) => return Check::Drop,
        Err(ParseError::Reply {
            rcode,
            question,
            edns,
        }) => Reject {
            rcode,
            question,
            edns,
        },
        Ok(()) if q.tsig || q.opcode() == OPCODE_NOTIFY => return Check::Defer,
        Ok(()) if q.opcode() == 0 => return question(q),
        Ok(()) => Reject {
            rcode: Rcode::NotImp,
            question: Some((HEADER, HEADER + q.qname_raw.len() + 4)),
            edns: q.edns,
        },
    };
    // A packet that is no well-formed QUERY: the opcode is judged first.
    let opcode = (u16::from_be_bytes([packet[2], packet[3]]) >> 11) & 0xF;
    Check::Reject(Reject {
        rcode: if opcode != 0 {
            Rcode::NotImp
        } else {
            reject.rcode
        },
        ..reject
    })
}

/// The class and type a well-formed QUERY asks for.
#[inline(always)]
fn question(q: &Query<'_>) -> Check<'static> {
    if q.qclass != CLASS_IN && q.qclass != CLASS_ANY {
        Check::Refuse(Rcode::Refused)
    } else if matches!(q.qtype, TYPE_AXFR | TYPE_IXFR) {
        // Transfers (and IXFR's SOA over UDP) are `crate::xfr`'s.
        Check::Defer
    } else if matches!(
        q.qtype,
        TYPE_OPT | TYPE_MAILA | TYPE_MAILB | crate::dnssec::sign::TYPE_NXNAME
    ) {
        // NXNAME only ever appears in compact-denial bitmaps (RFC 9824 §3.5).
        Check::Refuse(Rcode::FormErr)
    } else {
        Check::Pass
    }
}
