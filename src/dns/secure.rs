//! DNSSEC for queries with DO=1 to a signed zone: the denial records an
//! answer needs ([`prepare`]) and the RRSIGs of every RRset it carries
//! ([`rrsigs`], written after each by [`super::render`]).
//!
//! Denial is RFC 9824 compact denial: NODATA and NXDOMAIN get one NSEC at
//! the denied name whose next name is `\000.<name>` (nothing else lies
//! between), with the types there in its bitmap, or RRSIG NSEC NXNAME for
//! a name that does not exist; the rcode of the latter is NOERROR unless
//! the query set CO. A wildcard answer, static or steered, is signed as
//! the wildcard's RRset (its owner and label count, RFC 4035 §3.1.3.3 and
//! §5.3.4: one signature serves every name the wildcard answers) and
//! carries an NSEC that minimally covers the next closer name (RFC 4470
//! style), proving no closer match exists. A referral carries the DS
//! (signed) or the NSEC at the cut proving there is none; the NS at the
//! cut and glue stay unsigned (RFC 4035 §3.1.4).
//!
//! Every name of a signed zone, and every name compact denial says has no
//! data, has an NSEC (the one its denial would carry) and RRSIGs. So an
//! explicit NSEC query gets that NSEC as its answer, and an RRSIG query
//! the signatures of the RRsets there and of that NSEC; a NODATA for
//! either would contradict its own bitmap.

use std::sync::Arc;

use smallvec::SmallVec;

use super::answer::{Answer, Item, Nsec, Owner};
use crate::dnssec::ZoneSigner;
use crate::dnssec::sign::{Canon, TYPE_NSEC, TYPE_NXNAME, TYPE_RRSIG, nsec_rdata};
use crate::snapshot::{Snapshot, Zone};
use crate::wire::*;
use crate::zone::tree::{Node, Tree};

/// What signing needs while rendering one answer.
pub struct Ctx<'a> {
    pub signer: &'a ZoneSigner,
    pub tree: &'a Tree,
    /// The zone's steered HTTPS/SVCB templates (their types are in a
    /// steered host's NSEC bitmap).
    pub svcb: &'a [crate::zone::svcb::Template],
    /// The question name, lowercased.
    pub qname: NameBuf,
    /// The earliest expiration of the RRSIGs written (for pre-rendered
    /// answers, which must be re-made before the cache would re-sign).
    pub min_expiration: std::cell::Cell<u32>,
}

/// For a DO=1 query to a signed zone: adds the denial and DS records the
/// answer needs and returns the signing context; `None` for anything
/// else (unsigned zone, an error rcode, no zone).
pub fn prepare<'a>(
    snap: &'a Snapshot,
    qname: NameBuf,
    qtype: u16,
    compact_ok: bool,
    ans: &mut Answer<'a>,
) -> Option<Ctx<'a>> {
    if !matches!(ans.rcode, Rcode::NoError | Rcode::NxDomain) {
        return None;
    }
    let zone: &'a Zone = snap.zone_for(qname.as_bytes(), qtype)?;
    let signer = zone.dnssec.as_deref()?;
    let tree = &zone.tree;
    let ctx = Ctx {
        signer,
        tree,
        svcb: &zone.svcb,
        qname,
        min_expiration: std::cell::Cell::new(u32::MAX),
    };
    referral(tree, ans);
    if matches!(qtype, TYPE_NSEC | TYPE_RRSIG) && explicit(&ctx, qtype, compact_ok, ans) {
        return Some(ctx);
    }
    wildcard_proofs(&ctx, ans);
    if ans
        .authority
        .iter()
        .any(|i| matches!(i, Item::NegativeSoa(_)))
    {
        denial(&ctx, qtype, compact_ok, ans);
    }
    Some(ctx)
}

/// An explicit NSEC or RRSIG query the lookup answered with NODATA (or
/// NXDOMAIN) at the question: answers it with the NSEC at that name, or
/// the RRSIGs of what is there and of that NSEC. `false` when the answer
/// is anything else (a referral, a chain).
fn explicit<'a>(ctx: &Ctx<'a>, qtype: u16, compact_ok: bool, ans: &mut Answer<'a>) -> bool {
    let negative = ans
        .authority
        .iter()
        .any(|i| matches!(i, Item::NegativeSoa(_)));
    if !negative || !ans.answer.is_empty() {
        return false;
    }
    let lname = ctx.qname.as_bytes();
    let node = ctx
        .tree
        .nodes
        .get(lname)
        .or_else(|| ctx.tree.wildcard(lname));
    let mut types = match node {
        Some(n) if ans.rcode == Rcode::NoError => node_types(Some(n), 0, ctx.svcb),
        _ => vec![TYPE_RRSIG, TYPE_NSEC, TYPE_NXNAME],
    };
    if ans.rcode == Rcode::NxDomain && !compact_ok {
        ans.rcode = Rcode::NoError;
    }
    ans.authority.clear();
    if qtype == TYPE_RRSIG {
        if let Some(n) = node.filter(|_| ans.rcode == Rcode::NoError) {
            ans.answer
                .extend(n.rrsets.iter().map(|s| Item::Set(Owner::Query, s)));
        }
        ans.sigs_only = true;
    }
    ans.answer.push(Item::Nsec(Box::new(Nsec {
        owner: Owner::Query,
        synth: None,
        ttl: ctx.tree.neg_ttl,
        rdata: nsec_rdata(&next_of(lname), &mut types).into(),
    })));
    true
}

/// Who signs an RRset at `lname` (lowercased) and with which RRSIG label
/// count: the name itself, or for a name only a wildcard answers, the
/// wildcard (RFC 4035 §3.1.3.3), whose signature is then the same for
/// every name it answers.
fn signer_of(ctx: &Ctx<'_>, lname: NameBuf) -> (NameBuf, u8) {
    if ctx.tree.nodes.contains_key(lname.as_bytes()) {
        return (lname, rrsig_labels(lname.as_bytes()) as u8);
    }
    match ctx.tree.wildcard(lname.as_bytes()) {
        Some(wild) => (lower_buf(&wild.owner), (label_count(&wild.owner) - 1) as u8),
        None => (lname, label_count(lname.as_bytes()) as u8),
    }
}

/// The lowercased name an owner stands for.
fn lower_owner(ctx: &Ctx<'_>, o: Owner<'_>, synth: &[Box<[u8]>]) -> NameBuf {
    match o {
        Owner::Query => ctx.qname,
        Owner::Name(n) => lower_buf(n),
        Owner::Synth(i) => lower_buf(&synth[i as usize]),
    }
}

fn lower_buf(n: &[u8]) -> NameBuf {
    let mut b = NameBuf::empty();
    let len = n.len().min(MAX_NAME);
    b.buf[..len].copy_from_slice(&n[..len]);
    lowercase_in_place(&mut b.buf[..len]);
    b.len = len as u8;
    b
}

/// The RRSIG Labels field for an owner: its labels, not counting a
/// leftmost `*` (RFC 4034 §3.1.3), so `*.wild` asked literally is signed
/// as the wildcard it is.
fn rrsig_labels(name: &[u8]) -> usize {
    label_count(name) - usize::from(name.starts_with(b"\x01*"))
}

/// `\000.<name>`: the next name of a compact-denial NSEC. A name too long
/// for the extra label uses itself (an NSEC covering nothing else).
fn next_of(name: &[u8]) -> Vec<u8> {
    if name.len() + 2 > MAX_NAME {
        return name.to_vec();
    }
    let mut v = Vec::with_capacity(name.len() + 2);
    v.extend_from_slice(&[1, 0]);
    v.extend_from_slice(name);
    v
}

/// The types a node holds, for an NSEC bitmap, without `except`: a
/// steered host has A, AAAA and the types of its `svcb` templates.
fn node_types(node: Option<&Node>, except: u16, svcb: &[crate::zone::svcb::Template]) -> Vec<u16> {
    let mut t = vec![TYPE_RRSIG, TYPE_NSEC];
    if let Some(n) = node {
        t.extend(n.rrsets.iter().map(|s| s.rtype));
        if let Some(h) = n.host {
            t.extend([TYPE_A, TYPE_AAAA]);
            t.extend(svcb.iter().filter(|s| s.host == h).map(|s| s.rtype));
        }
    }
    // RRSIG and NSEC are there whatever was asked (this NSEC has them).
    t.retain(|&x| x != except || x == TYPE_RRSIG || x == TYPE_NSEC);
    t.sort_unstable();
    t.dedup();
    t
}

/// NXDOMAIN or NODATA: one NSEC at the denied name (the last CNAME's
/// target, else the question).
fn denial<'a>(ctx: &Ctx<'a>, qtype: u16, compact_ok: bool, ans: &mut Answer<'a>) {
    let owner = ans
        .answer
        .iter()
        .rev()
        .find_map(|i| match i {
            Item::Set(_, s) if s.rtype == TYPE_CNAME => s.rdata[0].target().map(Owner::Name),
            Item::Cname { target, .. } => Some(Owner::Name(target)),
            Item::DnameCname { target, .. } => Some(Owner::Synth(*target)),
            _ => None,
        })
        .unwrap_or(Owner::Query);
    let lname = lower_owner(ctx, owner, &ans.synth);
    let mut types = if ans.rcode == Rcode::NxDomain {
        vec![TYPE_RRSIG, TYPE_NSEC, TYPE_NXNAME]
    } else {
        let node = ctx
            .tree
            .nodes
            .get(lname.as_bytes())
            .or_else(|| ctx.tree.wildcard(lname.as_bytes()));
        node_types(node, qtype, ctx.svcb)
    };
    if ans.rcode == Rcode::NxDomain && !compact_ok {
        ans.rcode = Rcode::NoError;
    }
    ans.authority.push(Item::Nsec(Box::new(Nsec {
        owner,
        synth: None,
        ttl: ctx.tree.neg_ttl,
        rdata: nsec_rdata(&next_of(lname.as_bytes()), &mut types).into(),
    })));
}

/// A referral gets the cut's DS, or the NSEC proving it has none.
fn referral<'a>(tree: &'a Tree, ans: &mut Answer<'a>) {
    let cut = ans.authority.iter().find_map(|i| match i {
        Item::Set(Owner::Name(n), s) if s.rtype == TYPE_NS && n.len() != tree.apex.len() => {
            Some(*n)
        }
        _ => None,
    });
    let Some(cut) = cut else { return };
    let Some(node) = tree.nodes.get(lower_buf(cut).as_bytes()) else {
        return;
    };
    match node.rrset(TYPE_DS) {
        Some(ds) => ans.authority.push(Item::Set(Owner::Name(&node.owner), ds)),
        None => {
            let mut types = node_types(Some(node), TYPE_DS, &[]);
            ans.authority.push(Item::Nsec(Box::new(Nsec {
                owner: Owner::Name(&node.owner),
                synth: None,
                ttl: tree.neg_ttl,
                rdata: nsec_rdata(&next_of(&wire_lower(&node.owner)), &mut types).into(),
            })));
        }
    }
}

fn wire_lower(n: &[u8]) -> Vec<u8> {
    n.iter().map(u8::to_ascii_lowercase).collect()
}

/// For each answer RRset synthesised from a wildcard: the NSEC covering
/// the next closer name, from just before it to just after it and its
/// descendants (`<label>\000`), so the closest encloser a validator
/// derives from it is the wildcard's parent.
fn wildcard_proofs<'a>(ctx: &Ctx<'a>, ans: &mut Answer<'a>) {
    let mut proofs: SmallVec<[Item<'a>; 1]> = SmallVec::new();
    for item in &ans.answer {
        let owner = match item {
            Item::Set(o, _)
            | Item::Edges { owner: o, .. }
            | Item::Svcb { owner: o, .. }
            | Item::Cname { owner: o, .. } => o,
            _ => continue,
        };
        let lname = lower_owner(ctx, *owner, &ans.synth);
        if ctx.tree.nodes.contains_key(lname.as_bytes()) {
            continue;
        }
        let Some(wild) = ctx.tree.wildcard(lname.as_bytes()) else {
            continue;
        };
        // Closest encloser: the wildcard minus `*`; next closer: the
        // question's suffix one label longer.
        let ce_labels = label_count(&wild.owner) - 1;
        let mut offs = [0u8; 128];
        let n = label_offsets(lname.as_bytes(), &mut offs);
        let nc = &lname.as_bytes()[offs[n - ce_labels - 1] as usize..];
        let (pred, succ) = around(nc);
        if proofs
            .iter()
            .any(|p| matches!(p, Item::Nsec(x) if x.synth.as_deref() == Some(&pred[..])))
        {
            continue;
        }
        proofs.push(Item::Nsec(Box::new(Nsec {
            owner: Owner::Query,
            synth: Some(pred.into()),
            ttl: ctx.tree.neg_ttl,
            rdata: nsec_rdata(&succ, &mut [TYPE_RRSIG, TYPE_NSEC]).into(),
        })));
    }
    ans.authority.extend(proofs);
}

/// A name just before `name` in canonical order and one just after it and
/// all its descendants (same parent, first label changed).
fn around(name: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let l = name[0] as usize;
    let label = &name[1..1 + l];
    let rest = &name[1 + l..];
    // Successor: the label with \000 appended sorts after the label and
    // everything below it.
    let succ = if l < 63 && name.len() < MAX_NAME {
        let mut v = vec![(l + 1) as u8];
        v.extend_from_slice(label);
        v.push(0);
        v.extend_from_slice(rest);
        v
    } else {
        next_of(name)
    };
    // Predecessor: a shorter label if it ends in \000, else the last octet
    // decremented (never onto an upper-case letter, which sorts as lower
    // case) and padded with \255.
    let pred = if label.last() == Some(&0) {
        if l == 1 {
            rest.to_vec()
        } else {
            let mut v = vec![(l - 1) as u8];
            v.extend_from_slice(&label[..l - 1]);
            v.extend_from_slice(rest);
            v
        }
    } else {
        let mut lab = label.to_vec();
        let last = lab.last_mut().expect("labels are not empty");
        *last -= 1;
        if last.is_ascii_uppercase() {
            *last = b'@';
        }
        let room = (MAX_NAME - rest.len() - 1).min(63);
        while lab.len() < room {
            lab.push(0xFF);
        }
        let mut v = vec![lab.len() as u8];
        v.extend_from_slice(&lab);
        v.extend_from_slice(rest);
        v
    };
    (pred, succ)
}

/// The RRSIGs an item of a signed answer gets, and how to write them.
pub struct Rrsigs<'i> {
    /// Whose name they carry (that of the RRset they sign)...
    pub owner: Owner<'i>,
    /// ...unless the NSEC they sign has a made-up owner.
    pub made: Option<&'i [u8]>,
    /// The TTL of the records they sign, as written.
    pub ttl: u32,
    /// RRSIG RDATA, one per signing key; none for what stays unsigned.
    pub sigs: SmallVec<[Arc<[u8]>; 2]>,
}

/// The RRSIGs of `item` (written just before them, see
/// [`super::render`]), from the signature cache; records the earliest
/// expiration in `ctx`.
pub fn rrsigs<'i>(ctx: &Ctx<'_>, item: &'i Item<'_>, synth: &[Box<[u8]>]) -> Rrsigs<'i> {
    thread_local! {
        static CANON: std::cell::RefCell<Canon> = std::cell::RefCell::new(Canon::default());
    }
    let mut sigs: SmallVec<[Arc<[u8]>; 2]> = SmallVec::new();
    let tree = ctx.tree;
    // (how the owner is written, TTL of the written records)
    let (owner, made, ttl): (Owner<'_>, Option<&[u8]>, u32) =
        CANON.with_borrow_mut(|c| match item {
            Item::Set(o, set) => {
                let lname = lower_owner(ctx, *o, synth);
                // NS at a cut and glue below it are the child's (unsigned);
                // DS at a cut is the parent's.
                if set.rtype != TYPE_DS && tree.find_cut(lname.as_bytes()).is_some() {
                    return (*o, None, 0);
                }
                let (sign_owner, labels) = signer_of(ctx, lname);
                c.start(set.rtype, set.ttl, labels);
                for rd in &set.rdata {
                    c.push_rdata(rd);
                }
                ctx.signer.rrsigs(sign_owner.as_bytes(), c, &mut sigs);
                (*o, None, set.ttl)
            }
            Item::NegativeSoa(t) => {
                let soa = t.soa();
                c.start(TYPE_SOA, soa.ttl, label_count(&t.apex_lower) as u8);
                c.push_rdata(&soa.rdata[0]);
                ctx.signer.rrsigs(&t.apex_lower, c, &mut sigs);
                (Owner::Name(&t.apex_node().owner), None, t.neg_ttl)
            }
            Item::Edges {
                owner,
                ttl,
                family,
                steering,
                edges,
            } => {
                let (sign_owner, _) = signer_of(ctx, lower_owner(ctx, *owner, synth));
                sigs = edge_rrsigs(
                    ctx.signer,
                    sign_owner.as_bytes(),
                    *family,
                    *ttl,
                    steering,
                    edges,
                );
                (*owner, None, *ttl)
            }
            Item::Cname { owner, ttl, target } => {
                let (sign_owner, labels) = signer_of(ctx, lower_owner(ctx, *owner, synth));
                c.start(TYPE_CNAME, *ttl, labels);
                c.push(&wire_lower(target));
                ctx.signer.rrsigs(sign_owner.as_bytes(), c, &mut sigs);
                (*owner, None, *ttl)
            }
            // One record: the template with this answer's hints, which the
            // steered-RRSIG path signs like the A and AAAA it mirrors.
            Item::Svcb {
                owner,
                ttl,
                template,
                steering,
                v4,
                v6,
            } => {
                let (sign_owner, _) = signer_of(ctx, lower_owner(ctx, *owner, synth));
                sigs = svcb_rrsigs(
                    ctx.signer,
                    sign_owner.as_bytes(),
                    *ttl,
                    template,
                    steering,
                    v4,
                    v6,
                );
                (*owner, None, *ttl)
            }
            // Validators make this CNAME from the signed DNAME themselves
            // (RFC 6672 §5.3.1): it is sent unsigned.
            Item::DnameCname { owner, .. } => (*owner, None, 0),
            Item::Nsec(n) => {
                let lname = match &n.synth {
                    Some(s) => lower_buf(s),
                    None => lower_owner(ctx, n.owner, synth),
                };
                c.start(TYPE_NSEC, n.ttl, rrsig_labels(lname.as_bytes()) as u8);
                c.push(&n.rdata);
                ctx.signer.rrsigs(lname.as_bytes(), c, &mut sigs);
                (n.owner, n.synth.as_deref(), n.ttl)
            }
        });
    for sig in &sigs {
        if let Some(exp) = sig.get(8..12) {
            let exp = u32::from_be_bytes(exp.try_into().expect("4 bytes"));
            ctx.min_expiration.set(ctx.min_expiration.get().min(exp));
        }
    }
    Rrsigs {
        owner,
        made,
        ttl,
        sigs,
    }
}

thread_local! {
    static EDGE_CANON: std::cell::RefCell<Canon> = std::cell::RefCell::new(Canon::default());
}

/// The RRSIGs of a steered A or AAAA RRset: the addresses of `edges` at
/// `lname` (lowercased; a wildcard's `*.` owner for the names it answers,
/// signed with the wildcard's label count). Shared by the general and the
/// fast path, so both write the same (cached) signature.
pub fn edge_rrsigs(
    signer: &ZoneSigner,
    lname: &[u8],
    family: crate::steer::Family,
    ttl: u32,
    steering: &crate::steer::Steering,
    edges: &[crate::steer::EdgeIdx],
) -> SmallVec<[Arc<[u8]>; 2]> {
    // A per-thread front for the shared cache: steered answers are few
    // distinct RRsets, and this skips building the canonical form, hashing
    // it and taking a shard lock. A slot holds what the shared cache gave,
    // until that would be re-signed; a collision is only a miss.
    use std::hash::Hasher;
    let mut h = crate::zone::tree::NameHasher::default();
    h.write(lname);
    h.write_u64(signer.id);
    h.write_u32(ttl);
    h.write_u8(family as u8);
    for &e in edges {
        h.write_u16(e);
    }
    let slot = (h.finish() as usize) % EDGE_SLOTS;
    let now = crate::clock::unix_now();
    let epoch = crate::dnssec::sign::epoch();
    let hit = EDGE_FRONT.with_borrow(|front| {
        let s = front.get(slot)?.as_ref()?;
        (s.signer == signer.id
            && s.epoch == epoch
            && s.ttl == ttl
            && s.family == family as u8
            && *s.lname == *lname
            && s.edges[..] == *edges
            && now < s.fresh_until)
            .then(|| s.sigs.clone())
    });
    if let Some(sigs) = hit {
        return sigs;
    }
    let mut sigs = SmallVec::new();
    let rtype = match family {
        crate::steer::Family::V4 => TYPE_A,
        crate::steer::Family::V6 => TYPE_AAAA,
    };
    EDGE_CANON.with_borrow_mut(|c| {
        c.start(rtype, ttl, rrsig_labels(lname) as u8);
        for &e in edges {
            let edge = &steering.edges[e as usize];
            match family {
                crate::steer::Family::V4 => edge.v4.iter().for_each(|a| c.push(&a.octets())),
                crate::steer::Family::V6 => edge.v6.iter().for_each(|a| c.push(&a.octets())),
            }
        }
        signer.rrsigs(lname, c, &mut sigs);
    });
    let p = signer.policy;
    let fresh_until = sigs
        .iter()
        .filter_map(|s: &Arc<[u8]>| s.get(8..12))
        .map(|e| u64::from(u32::from_be_bytes(e.try_into().expect("4 bytes"))))
        .min()
        .unwrap_or(0)
        .saturating_sub(u64::from(p.validity - p.refresh));
    EDGE_FRONT.with_borrow_mut(|front| {
        if front.is_empty() {
            front.resize_with(EDGE_SLOTS, || None);
        }
        front[slot] = Some(EdgeSlot {
            signer: signer.id,
            epoch,
            ttl,
            family: family as u8,
            lname: lname.into(),
            edges: edges.into(),
            sigs: sigs.clone(),
            fresh_until,
        });
    });
    sigs
}

/// The RRSIGs of a steered HTTPS/SVCB record: the template with the hints
/// of `v4` and `v6` at `lname` (lowercased). SVCB RDATA keeps its target's
/// case in canonical form (RFC 9460 adds no type to RFC 4034 §6.2).
fn svcb_rrsigs(
    signer: &ZoneSigner,
    lname: &[u8],
    ttl: u32,
    template: &crate::zone::svcb::Template,
    steering: &crate::steer::Steering,
    v4: &[crate::steer::EdgeIdx],
    v6: &[crate::steer::EdgeIdx],
) -> SmallVec<[Arc<[u8]>; 2]> {
    let (a4, a6) = steering.hint_addresses(v4, v6);
    let mut rdata = Vec::with_capacity(template.rdata_len(a4.len(), a6.len()));
    template
        .write(&a4, &a6, |b| {
            rdata.extend_from_slice(b);
            Ok::<(), std::convert::Infallible>(())
        })
        .expect("writing to a Vec cannot fail");
    let mut sigs = SmallVec::new();
    EDGE_CANON.with_borrow_mut(|c| {
        c.start(template.rtype, ttl, rrsig_labels(lname) as u8);
        c.push(&rdata);
        signer.rrsigs(lname, c, &mut sigs);
    });
    sigs
}

/// Slots of the per-thread steered-RRSIG front cache.
const EDGE_SLOTS: usize = 256;

struct EdgeSlot {
    signer: u64,
    /// [`crate::dnssec::sign::epoch`] when filled.
    epoch: u64,
    ttl: u32,
    family: u8,
    lname: Box<[u8]>,
    edges: SmallVec<[crate::steer::EdgeIdx; 8]>,
    sigs: SmallVec<[Arc<[u8]>; 2]>,
    fresh_until: u64,
}

thread_local! {
    static EDGE_FRONT: std::cell::RefCell<Vec<Option<EdgeSlot>>> = const { std::cell::RefCell::new(Vec::new()) };
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 4034 §6.1 order of two wire names.
    fn canonical_cmp(a: &[u8], b: &[u8]) -> std::cmp::Ordering {
        let labels = |n: &[u8]| {
            let mut offs = [0u8; 128];
            let k = label_offsets(n, &mut offs);
            offs[..k]
                .iter()
                .rev()
                .map(|&o| {
                    let o = o as usize;
                    n[o + 1..o + 1 + n[o] as usize].to_ascii_lowercase()
                })
                .collect::<Vec<_>>()
        };
        labels(a).cmp(&labels(b))
    }

    #[test]
    fn around_brackets_the_name_and_its_subtree() {
        for name in [
            &b"\x03foo\x04wild\x00"[..],
            b"\x01a\x04wild\x00",
            b"\x02a\x00\x04wild\x00",
            b"\x01[\x04wild\x00",
        ] {
            let (p, s) = around(name);
            assert_eq!(canonical_cmp(&p, name), std::cmp::Ordering::Less, "{p:?}");
            assert_eq!(canonical_cmp(name, &s), std::cmp::Ordering::Less);
            let child = [b"\x01z".as_slice(), name].concat();
            assert_eq!(canonical_cmp(&child, &s), std::cmp::Ordering::Less);
            assert!(p.len() <= MAX_NAME && s.len() <= MAX_NAME);
            assert_eq!(&p[p.len() - 6..], b"\x04wild\x00");
        }
    }
}
