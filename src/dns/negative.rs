//! Pre-rendered NXDOMAIN (and NODATA) answers, for the random-subdomain
//! flood: every query a new name, so [`super::fast`]'s table of (name,
//! type) never hits.
//!
//! A negative answer's sections after the question depend only on the
//! zone: its SOA in the authority section with the negative TTL (RFC 2308
//! §3), the same for NXDOMAIN and NODATA. The
//! general path writes that SOA compressed against the question, so its
//! owner (the apex) and the apex suffixes of MNAME and RNAME become
//! pointers into the question's apex, which sits at the question's end.
//! [`build`] renders the tail once through the general path behind a
//! dummy question and records where its pointers are; per query
//! [`respond`] checks that the general path's lookup would say plain
//! NXDOMAIN or NODATA and has [`super::render`] copy header, question
//! and tail, shift the pointers by the question's length and append the
//! OPT record as for the positive fast path. Whatever it cannot prove
//! gives the same bytes goes to the general path: DO=1 on a signed zone
//! (denial needs NSECs), a name that could compress differently (see
//! [`Negative::below_apex`]), one too long to fit.
//! `tests/dns/negative_path.rs` compares both paths over generated names.

use std::sync::Arc;

use super::answer::{Answer, Item};
use super::render::{self, COMPRESS_SLOTS, Summary};
use super::request::Request;
use crate::snapshot::fast::{KeyTable, NameFilter, Negative, Negatives, same_bytes};
use crate::snapshot::{Snapshot, Zone};
use crate::wire::*;
use crate::zone::tree::{NameMap, Rdata, Tree};

/// The negative tail of every zone of `snap`: an entry for each zone
/// (`None` where the tail is not one [`respond`] can reuse).
pub(crate) fn build(snap: &Snapshot) -> Negatives {
    let mut by_apex = NameMap::default();
    let mut out = vec![0u8; 65_535];
    for zone in snap.zones.values() {
        by_apex.insert(zone.tree.apex_lower.clone(), render(zone, &mut out));
    }
    // A zone that did not load answers SERVFAIL on the general path.
    for apex in snap.unloaded.keys() {
        by_apex.insert(apex.clone(), None);
    }
    Negatives {
        apex_len: snap.apex_len(),
        by_apex: KeyTable::new(by_apex),
    }
}

/// The general path's NXDOMAIN answer (what [`answer::lookup`] returns for
/// a name that nothing in `tree` covers).
fn nxdomain(tree: &Tree) -> Answer<'_> {
    let mut ans = Answer::new(Rcode::NxDomain);
    ans.aa = true;
    ans.authority.push(Item::NegativeSoa(tree));
    ans
}

/// Renders the tail behind the dummy question `<label>.<apex>`; returns
/// the bytes after the question.
fn render_behind(tree: &Tree, label: &[u8], out: &mut [u8]) -> Option<(Vec<u8>, [u16; 3])> {
    let mut qname = label.to_vec();
    qname.extend_from_slice(&tree.apex);
    if qname.len() > MAX_NAME {
        return None;
    }
    let q = Query {
        id: 0,
        flags: 0,
        qname_raw: &qname,
        qtype: TYPE_A,
        qclass: CLASS_IN,
        edns: None,
        tsig: false,
    };
    let (len, truncated) =
        render::answer(&Request::ahead(&q, out.len()), &nxdomain(tree), out, None);
    if truncated {
        return None;
    }
    let count = |i: usize| u16::from_be_bytes([out[i], out[i + 1]]);
    Some((
        out[HEADER + qname.len() + 4..len].to_vec(),
        [count(6), count(8), count(10)],
    ))
}

/// Walks the (possibly compressed) name at `pos` of `b`: records the
/// position of its pointer in `ptrs`, counts its literal labels; returns
/// the position after it.
fn scan_name(b: &[u8], mut pos: usize, ptrs: &mut Vec<usize>, labels: &mut usize) -> Option<usize> {
    loop {
        let len = *b.get(pos)?;
        match len {
            0 => return Some(pos + 1),
            l if l & 0xC0 == 0xC0 => {
                b.get(pos + 1)?;
                ptrs.push(pos);
                return Some(pos + 2);
            }
            l if l & 0xC0 == 0 => {
                *labels += 1;
                pos += 1 + l as usize;
            }
            _ => return None,
        }
    }
}

/// Pre-renders `zone`'s NXDOMAIN tail (NODATA's is the same bytes), or
/// `None` when its shape is not one [`respond`] can patch (then its
/// negative answers take the general path).
fn render(zone: &Arc<Zone>, out: &mut [u8]) -> Option<Negative> {
    let tree = &zone.tree;
    if tree.apex_node().rrset(TYPE_DNAME).is_some() {
        // Everything below the apex is redirected.
        return None;
    }
    // A label no name of the SOA can share a suffix with: one zero byte.
    let dummy = b"\x01\x00";
    let (tail, counts) = render_behind(tree, dummy, out)?;
    if counts != [0, 1, 0] {
        return None;
    }
    // One SOA record: owner, type/class/TTL/length, MNAME, RNAME, counters.
    let (mut ptrs, mut labels) = (Vec::new(), 0usize);
    let mut pos = scan_name(&tail, 0, &mut ptrs, &mut labels)? + 10;
    pos = scan_name(&tail, pos, &mut ptrs, &mut labels)?;
    pos = scan_name(&tail, pos, &mut ptrs, &mut labels)?;
    if pos + 20 != tail.len() {
        return None;
    }
    let qname_len = dummy.len() + tree.apex.len();
    let apex_at = HEADER + dummy.len();
    let mut patch = Vec::with_capacity(ptrs.len());
    for &p in &ptrs {
        let target = usize::from(u16::from_be_bytes([tail[p], tail[p + 1]]) & 0x3FFF);
        if target < apex_at {
            // Into the dummy label: a name the question can't stand for.
            return None;
        }
        // Question apex and tail both move with the question's length.
        patch.push((p as u16, (target as u16).wrapping_sub(qname_len as u16)));
    }
    // The question's labels are remembered first; the tail's own after.
    let apex_labels = label_count(&tree.apex);
    let max_labels = COMPRESS_SLOTS.checked_sub(labels)?;
    if 1 + apex_labels > max_labels {
        return None;
    }
    // Names of the SOA strictly below the apex: a question ending in one
    // would be compressed against (see `below_apex`).
    let soa = tree.soa();
    let mut below_apex: Vec<Box<[u8]>> = Vec::new();
    for rd in &soa.rdata {
        let Rdata::Soa { mname, rname, .. } = rd else {
            return None;
        };
        for name in [mname, rname] {
            let lower = lowercase(name);
            let mut at = 0;
            while at < lower.len() && lower[at] != 0 {
                let suffix = &lower[at..];
                if suffix.len() > tree.apex_lower.len()
                    && suffix.ends_with(&tree.apex_lower)
                    && !below_apex.iter().any(|s| **s == *suffix)
                {
                    below_apex.push(suffix.into());
                }
                at += 1 + lower[at] as usize;
            }
        }
    }
    let mut wild = b"\x01*".to_vec();
    wild.extend_from_slice(&tree.apex_lower);
    let neg = Negative {
        zone: zone.clone(),
        apex_wildcard: tree.nodes.contains_key(&wild[..]),
        tail: tail.into_boxed_slice(),
        patch: patch.into_boxed_slice(),
        max_labels: max_labels as u8,
        below_apex: below_apex.into_boxed_slice(),
        names: NameFilter::new(tree.nodes.keys().map(|k| &k[..])),
    };
    // The patching must give the general path's bytes behind another
    // question length too, or it is not used at all.
    let other = b"\x05\x00\x00\x00\x00\x00";
    let (want, _) = render_behind(tree, other, out)?;
    let mut got = neg.tail.to_vec();
    render::patch_pointers(&mut got, &neg.patch, other.len() + tree.apex.len());
    (got == want).then_some(neg)
}

/// The rcode of the general path's answer to `lname` (lowercased, labels
/// starting at `offs`) if that answer is the zone's SOA alone: NXDOMAIN,
/// or NODATA at a name that exists. `None` for anything else.
///
/// [`super::answer::lookup`] asks, in turn: a zone cut at or above the
/// name (`find_cut`), a DNAME above it (`find_dname`), the name itself, a
/// wildcard at its closest encloser (`wildcard`). Every ancestor of a node
/// exists in the tree (empty non-terminals), so one walk down from the
/// apex answers all four: it stops at the first missing name, the closest
/// encloser's child.
#[inline]
fn negative_rcode(neg: &Negative, lname: &[u8], offs: &[u8], qtype: u16) -> Option<Rcode> {
    let tree = &neg.zone.tree;
    let apex = tree.apex_lower.len();
    if lname.len() == apex {
        return nodata(tree.apex_node(), qtype);
    }
    let mut encloser = apex;
    for (i, &off) in offs.iter().enumerate().rev() {
        let key = &lname[usize::from(off)..];
        if key.len() <= apex {
            continue;
        }
        if !neg.names.may_contain(key) {
            break;
        }
        let Some(node) = tree.nodes.get(key) else {
            break;
        };
        if node.cut {
            // A referral.
            return None;
        }
        if i == 0 {
            return nodata(node, qtype);
        }
        if tree.has_dnames && node.rrset(TYPE_DNAME).is_some() {
            return None;
        }
        encloser = key.len();
    }
    if !tree.has_wildcards {
        return Some(Rcode::NxDomain);
    }
    if encloser == apex {
        return (!neg.apex_wildcard).then_some(Rcode::NxDomain);
    }
    // `*.<closest encloser>` (RFC 4592 §3.3.1).
    let encloser = &lname[lname.len() - encloser..];
    if encloser.len() + 2 > MAX_NAME {
        return Some(Rcode::NxDomain);
    }
    let mut key = [0u8; MAX_NAME];
    key[..2].copy_from_slice(b"\x01*");
    key[2..2 + encloser.len()].copy_from_slice(encloser);
    (!tree.nodes.contains_key(&key[..2 + encloser.len()])).then_some(Rcode::NxDomain)
}

/// NOERROR if `qtype` at this (existing, not a cut) node gets NODATA: none
/// of the records, steering, CNAME or ANY that [`super::answer::lookup`]
/// answers a name with applies. A and AAAA are in the positive table at
/// every name, DS is the parent's at an apex, ANY has its own rules: all
/// three are left to the other paths.
#[inline]
fn nodata(node: &crate::zone::tree::Node, qtype: u16) -> Option<Rcode> {
    let steered = node.host.is_some() && matches!(qtype, TYPE_HTTPS | TYPE_SVCB);
    let skip = matches!(qtype, TYPE_A | TYPE_AAAA | TYPE_ANY | TYPE_DS);
    (!steered && !skip && node.rrset(TYPE_CNAME).is_none() && node.rrset(qtype).is_none())
        .then_some(Rcode::NoError)
}

/// Answers `q` (lowercased name `lname`) with its zone's pre-rendered
/// NXDOMAIN or NODATA, or `None` for the general path.
#[inline]
pub(super) fn respond<'s>(
    snap: &'s Snapshot,
    req: &Request<'_>,
    lname: &[u8],
    out: &mut [u8],
) -> Option<Summary<'s>> {
    let q = req.query;
    // DS at a zone's apex is the parent's (`answer::zone_for`): an apex
    // exists in its own zone, so that goes to the general path below.
    let neg = snap.fast.negative.find(lname)?.as_ref()?;
    if neg.zone.dnssec.is_some() && q.edns.is_some_and(|e| e.dnssec_ok) {
        // Denial of existence is signed: the general path.
        return None;
    }
    let mut offs = [0u8; 128];
    let labels = label_offsets(lname, &mut offs);
    if labels > usize::from(neg.max_labels) {
        return None;
    }
    if neg
        .below_apex
        .iter()
        .any(|s| lname.len() >= s.len() && same_bytes(&lname[lname.len() - s.len()..], s))
    {
        // Part of the question matches MNAME or RNAME below the apex: the
        // general path would point there.
        return None;
    }
    let rcode = negative_rcode(neg, lname, &offs[..labels], q.qtype)?;
    render::negative(req, rcode, &neg.tail, &neg.patch, out)
}
