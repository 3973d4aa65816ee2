//! The general path's writer: an [`Answer`] (and, for a signed one, its
//! RRSIGs) into the sections of a response, with truncation as RFC 1035,
//! RFC 2181 §9 and RFC 9471 want it.

use super::message::{header_flags, opt_len, write_opt};
use super::writer::{Full, Writer};
use crate::dns::answer::{Answer, Item, Owner};
use crate::dns::request::Request;
use crate::dns::secure;
use crate::steer::Family;
use crate::wire::*;
use crate::zone::tree::Rrset;

/// Renders the answer to `req`; returns (length, truncated).
pub(crate) fn answer(
    req: &Request<'_>,
    ans: &Answer<'_>,
    out: &mut [u8],
    sec: Option<&secure::Ctx<'_>>,
) -> (usize, bool) {
    let (q, extra, max) = (req.query, &req.extra, req.max);
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
            match write_signed(&mut w, item, &ans.synth, sec, ans.sigs_only && i == 0) {
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
            match write_signed(&mut w, item, &ans.synth, sec, false) {
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

fn owner(w: &mut Writer<'_>, o: Owner<'_>, synth: &[Box<[u8]>]) -> Result<(), Full> {
    match o {
        Owner::Query => w.qname_ptr(),
        Owner::Name(n) => w.name(n, true),
        Owner::Synth(i) => w.name(&synth[i as usize], true),
    }
}

fn write_item(w: &mut Writer<'_>, item: &Item<'_>, synth: &[Box<[u8]>]) -> Result<u16, Full> {
    let set = |w: &mut Writer<'_>, o: Owner<'_>, set: &Rrset, ttl: u32| -> Result<u16, Full> {
        for rd in &set.rdata {
            owner(w, o, synth)?;
            w.u16(set.rtype)?;
            w.u16(CLASS_IN)?;
            w.u32(ttl)?;
            w.rdata(rd)?;
        }
        Ok(set.rdata.len() as u16)
    };
    let cname = |w: &mut Writer<'_>, o: Owner<'_>, ttl: u32, target: &[u8]| -> Result<u16, Full> {
        owner(w, o, synth)?;
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
                            owner(w, *o, synth)?;
                            w.bytes(&[0, TYPE_A as u8, 0, 1])?;
                            w.u32(*ttl)?;
                            w.u16(4)?;
                            w.bytes(&a.octets())?;
                            n += 1;
                        }
                    }
                    Family::V6 => {
                        for a in &edge.v6 {
                            owner(w, *o, synth)?;
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
                None => owner(w, n.owner, synth)?,
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
            owner(w, *o, synth)?;
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

/// An item and, for a signed answer, its RRSIGs: written whole or not at
/// all. `sigs_only` (an explicit RRSIG query) writes just the RRSIGs.
fn write_signed(
    w: &mut Writer<'_>,
    item: &Item<'_>,
    synth: &[Box<[u8]>],
    sec: Option<&secure::Ctx<'_>>,
    sigs_only: bool,
) -> Result<u16, Full> {
    if let (true, Some(ctx)) = (sigs_only, sec) {
        return write_rrsigs(w, ctx, item, synth);
    }
    let n = write_item(w, item, synth)?;
    match sec {
        Some(ctx) => Ok(n + write_rrsigs(w, ctx, item, synth)?),
        None => Ok(n),
    }
}

/// Writes the RRSIGs of `item`, just written, when it is to be signed;
/// returns how many records that was.
fn write_rrsigs(
    w: &mut Writer<'_>,
    ctx: &secure::Ctx<'_>,
    item: &Item<'_>,
    synth: &[Box<[u8]>],
) -> Result<u16, Full> {
    let s = secure::rrsigs(ctx, item, synth);
    for sig in &s.sigs {
        match s.made {
            Some(made) => w.name(made, true)?,
            None => owner(w, s.owner, synth)?,
        }
        w.u16(crate::dnssec::sign::TYPE_RRSIG)?;
        w.u16(CLASS_IN)?;
        w.u32(s.ttl)?;
        w.u16(sig.len() as u16)?;
        w.bytes(sig)?;
    }
    Ok(s.sigs.len() as u16)
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
