//! Authoritative logic: which records answer a question, by RFC 1034
//! §4.3.2 with RFC 4592 wildcards, RFC 2308 negative answers, RFC 6604
//! CNAME chains and RFC 8482 ANY. Produces an [`Answer`] of references
//! into the snapshot, which [`super::render`] writes; the tree queries it
//! asks (zone cut, DNAME, wildcard) are [`crate::zone::tree::Tree`]'s.

use std::borrow::Cow;

use smallvec::SmallVec;

use super::opt::{EDE_INVALID_DATA, EDE_NETWORK_ERROR, EDE_NOT_AUTHORITATIVE, EDE_NOT_READY, Ede};
use crate::net::Transport;
use crate::snapshot::{Snapshot, Zone};
use crate::steer::{self, Client, Decision, EdgeIdx, Family, Outcome, Steering};
use crate::wire::*;
use crate::zone::tree::{Node, Rrset, Tree};

/// Longest CNAME chain we follow inside a zone.
const MAX_CHAIN: usize = 8;

/// Whose name a record carries.
#[derive(Clone, Copy, Debug)]
pub enum Owner<'a> {
    /// The question's name (written as a pointer: keeps the client's case).
    Query,
    /// A name from the zone, uncompressed wire form.
    Name(&'a [u8]),
    /// A name made by DNAME substitution: index into [`Answer::synth`].
    Synth(u8),
}

/// One RRset to write.
#[derive(Clone, Debug)]
pub enum Item<'a> {
    Set(Owner<'a>, &'a Rrset),
    /// The SOA of a negative answer, with the negative TTL (RFC 2308 §3).
    NegativeSoa(&'a Tree),
    /// Steered A or AAAA records: the addresses of these edges.
    Edges {
        owner: Owner<'a>,
        ttl: u32,
        family: Family,
        steering: &'a Steering,
        edges: SmallVec<[EdgeIdx; 8]>,
    },
    /// A synthesized CNAME (a host's fallback).
    Cname {
        owner: Owner<'a>,
        ttl: u32,
        target: &'a [u8],
    },
    /// An NSEC made for a DNSSEC answer (see [`super::secure`]).
    Nsec(Box<Nsec<'a>>),
    /// A steered host's HTTPS/SVCB record: the template with the
    /// addresses of the edges its A and AAAA answers would carry as hints.
    Svcb {
        owner: Owner<'a>,
        ttl: u32,
        template: &'a crate::zone::svcb::Template,
        steering: &'a Steering,
        v4: SmallVec<[EdgeIdx; 8]>,
        v6: SmallVec<[EdgeIdx; 8]>,
    },
    /// The CNAME synthesised from a DNAME (RFC 6672 §3.1), to the name at
    /// [`Answer::synth`]`[target]`, with the DNAME's TTL.
    DnameCname {
        owner: Owner<'a>,
        ttl: u32,
        target: u8,
    },
}

/// An NSEC made for one answer (compact denial, wildcard proofs, a
/// referral's proof that there is no DS).
#[derive(Clone, Debug)]
pub struct Nsec<'a> {
    /// Where it is written when it is a name of the answer.
    pub owner: Owner<'a>,
    /// A made-up owner (wildcard proofs), lowercased; wins over `owner`.
    pub synth: Option<Box<[u8]>>,
    pub ttl: u32,
    /// Next owner name and type bitmap.
    pub rdata: Box<[u8]>,
}

/// Which steered host answered, for metrics, logs and `explain`.
#[derive(Clone, Debug)]
pub struct Steered<'a> {
    pub zone: &'a Zone,
    pub host: u32,
    pub decision: Decision,
}

impl Steered<'_> {
    /// The edges the answer named: those of an edge or partner answer,
    /// none for the fallback CNAME or when nothing could serve.
    #[inline]
    pub fn edges(&self) -> &[EdgeIdx] {
        if matches!(self.decision.outcome, Outcome::Edges | Outcome::Partner(_)) {
            &self.decision.edges
        } else {
            &[]
        }
    }
}

/// The outcome of the authoritative lookup.
#[derive(Debug)]
pub struct Answer<'a> {
    pub rcode: Rcode,
    pub aa: bool,
    pub answer: SmallVec<[Item<'a>; 4]>,
    pub authority: SmallVec<[Item<'a>; 2]>,
    pub additional: SmallVec<[Item<'a>; 4]>,
    /// ECS scope prefix to echo (0 unless location decided the answer).
    pub scope: u8,
    pub steered: Option<Steered<'a>>,
    /// Names made by DNAME substitution, in chain order (empty, and not
    /// allocated, unless a DNAME applied).
    pub synth: Vec<Box<[u8]>>,
    /// Extended DNS Error for the OPT record (RFC 8914).
    pub ede: Option<Ede<'a>>,
    /// The question is a RUM resolver probe (`<id>.rum.<zone>`), which the
    /// server records beside the answer.
    pub rum_probe: bool,
    /// An explicit RRSIG query to a signed zone: the answer section's
    /// items are written as their RRSIGs only (see [`super::secure`]).
    pub sigs_only: bool,
}

impl<'a> Answer<'a> {
    pub fn new(rcode: Rcode) -> Answer<'a> {
        Answer {
            rcode,
            aa: false,
            answer: SmallVec::new(),
            authority: SmallVec::new(),
            additional: SmallVec::new(),
            scope: 0,
            steered: None,
            synth: Vec::new(),
            ede: None,
            rum_probe: false,
            sigs_only: false,
        }
    }
}

/// The question as the lookup sees it.
#[derive(Clone, Copy, Debug)]
pub struct Question<'q> {
    /// Lowercased wire name.
    pub name: &'q [u8],
    pub qtype: u16,
    pub transport: Transport,
    pub client: Client,
}

/// Answers a question from a snapshot. `trace` observes steering.
pub fn lookup<'a, T: steer::Trace>(
    snap: &'a Snapshot,
    q: &Question<'_>,
    trace: &mut T,
) -> Answer<'a> {
    let Some(zone) = snap.zone_for(q.name, q.qtype) else {
        if let Some(u) = snap.unloaded_zone(q.name) {
            // Ours, but its files did not load (what Knot answers), or a
            // secondary zone without a copy.
            let mut ans = Answer::new(Rcode::ServFail);
            ans.ede = Some(Ede {
                code: if u.awaiting_transfer {
                    EDE_NOT_READY
                } else {
                    EDE_INVALID_DATA
                },
                text: Cow::Borrowed(""),
            });
            return ans;
        }
        let mut ans = Answer::new(Rcode::Refused);
        ans.ede = Some(Ede {
            code: EDE_NOT_AUTHORITATIVE,
            text: Cow::Borrowed(""),
        });
        return ans;
    };
    let mut ans = Answer::new(Rcode::NoError);
    ans.aa = true;
    let tree = &zone.tree;
    let mut name = NameBuf::empty();
    name.buf[..q.name.len()].copy_from_slice(q.name);
    name.len = q.name.len() as u8;
    let mut owner = Owner::Query;

    for step in 0..MAX_CHAIN {
        let lname = name.as_bytes();
        if step > 0 && !tree.contains_name(lname) {
            // The chain left the zone: the resolver follows it.
            return ans;
        }
        // A zone cut above (or at) the name: refer, unless this is DS at
        // the cut itself, which the parent answers (RFC 4035 §3.1.4.1).
        if tree.has_cuts
            && let Some((cut, at)) = tree.find_cut(lname)
            && !(at && q.qtype == TYPE_DS)
        {
            if step == 0 {
                ans.aa = false;
            }
            if let Some(ns) = cut.rrset(TYPE_NS) {
                ans.authority.push(Item::Set(Owner::Name(&cut.owner), ns));
                add_glue(tree, ns, &mut ans);
            }
            return ans;
        }
        // A DNAME above the name redirects its whole subtree (RFC 6672 §3.2).
        if tree.has_dnames
            && let Some((dnode, dname)) = tree.find_dname(lname)
        {
            ans.answer.push(Item::Set(Owner::Name(&dnode.owner), dname));
            let target = dname.rdata[0].opaque().unwrap_or(&[0]);
            let keep = lname.len() - dnode.owner.len();
            if keep + target.len() > MAX_NAME || ans.synth.len() >= MAX_CHAIN {
                // The substituted name is too long (RFC 6672 §2.2).
                ans.rcode = Rcode::YxDomain;
                return ans;
            }
            let mut new = Vec::with_capacity(keep + target.len());
            new.extend_from_slice(&lname[..keep]);
            new.extend_from_slice(target);
            let idx = ans.synth.len() as u8;
            ans.synth.push(new.into_boxed_slice());
            ans.answer.push(Item::DnameCname {
                owner,
                ttl: dname.ttl,
                target: idx,
            });
            if q.qtype == TYPE_CNAME {
                return ans;
            }
            let synth = &ans.synth[idx as usize];
            let mut next = NameBuf::empty();
            set_name(&mut next, synth);
            name = next;
            owner = Owner::Synth(idx);
            // A chain into another zone we serve stops at our zone's edge
            // as for a CNAME: the resolver follows it.
            continue;
        }
        let node = match tree.nodes.get(lname) {
            Some(n) => n,
            None => match tree.wildcard(lname) {
                Some(w) => {
                    ans.rum_probe |= step == 0 && w.rum_probe;
                    w
                }
                None => {
                    ans.rcode = Rcode::NxDomain;
                    negative(tree, &mut ans);
                    return ans;
                }
            },
        };
        if node.host.is_some() && matches!(q.qtype, TYPE_A | TYPE_AAAA | TYPE_ANY) {
            match steer_answer(Here { snap, zone, q }, node, owner, trace, &mut ans) {
                Some(target) => {
                    // Fallback CNAME: follow it if it stays in the zone.
                    set_name(&mut name, target);
                    owner = Owner::Name(target);
                    continue;
                }
                None => return ans,
            }
        }
        if let Some(h) = node.host
            && matches!(q.qtype, TYPE_HTTPS | TYPE_SVCB)
            && let Some(t) = zone.svcb_template(h, q.qtype)
        {
            match steer_svcb(Here { snap, zone, q }, node, t, owner, trace, &mut ans) {
                Some(target) => {
                    // Steered to a CNAME: the HTTPS answer follows it.
                    set_name(&mut name, target);
                    owner = Owner::Name(target);
                    continue;
                }
                None => return ans,
            }
        }
        // ANY matches the CNAME itself (RFC 1034 §4.3.2), so only other
        // types follow the chain; in a signed zone so do the RRSIG and NSEC
        // that live beside a CNAME (RFC 4035 §2.5).
        let beside_cname = zone.dnssec.is_some() && matches!(q.qtype, TYPE_RRSIG | TYPE_NSEC);
        if q.qtype != TYPE_CNAME
            && q.qtype != TYPE_ANY
            && !beside_cname
            && let Some(cname) = node.rrset(TYPE_CNAME)
        {
            ans.answer.push(Item::Set(owner, cname));
            let Some(target) = cname.rdata[0].target() else {
                return ans;
            };
            set_name(&mut name, target);
            owner = Owner::Name(target);
            continue;
        }
        if q.qtype == TYPE_ANY {
            any(node, q.transport, owner, tree, &mut ans);
            return ans;
        }
        match node.rrset(q.qtype) {
            Some(set) => {
                ans.answer.push(Item::Set(owner, set));
                add_additional(tree, set, &mut ans);
            }
            None => negative(tree, &mut ans),
        }
        return ans;
    }
    ans
}

fn set_name(name: &mut NameBuf, target: &[u8]) {
    let n = target.len().min(MAX_NAME);
    for (d, s) in name.buf[..n].iter_mut().zip(target) {
        *d = s.to_ascii_lowercase();
    }
    name.len = n as u8;
}

/// NXDOMAIN and NODATA carry the SOA (RFC 2308 §3) with the negative TTL.
fn negative<'a>(tree: &'a Tree, ans: &mut Answer<'a>) {
    ans.authority.push(Item::NegativeSoa(tree));
}

/// RFC 8482: over UDP one RRset is enough (the smallest, to deny
/// amplification); TCP gets them all.
fn any<'a>(
    node: &'a Node,
    transport: Transport,
    owner: Owner<'a>,
    tree: &'a Tree,
    ans: &mut Answer<'a>,
) {
    if node.rrsets.is_empty() {
        negative(tree, ans);
        return;
    }
    match transport {
        Transport::Udp => {
            let smallest = node
                .rrsets
                .iter()
                .min_by_key(|s| s.rdata.len())
                .expect("non-empty");
            ans.answer.push(Item::Set(owner, smallest));
        }
        Transport::Tcp => {
            for set in &node.rrsets {
                ans.answer.push(Item::Set(owner, set));
            }
        }
    }
}

/// Address records of in-zone targets (NS, MX, SRV, SVCB, HTTPS), as Knot
/// adds them; an AliasMode SVCB/HTTPS also brings the target's own RRset
/// of that type (RFC 9460 §4.1).
fn add_additional<'a>(tree: &'a Tree, set: &'a Rrset, ans: &mut Answer<'a>) {
    if matches!(set.rtype, TYPE_NS | TYPE_MX | TYPE_SRV) {
        add_glue(tree, set, ans);
    }
    if matches!(set.rtype, TYPE_SVCB | TYPE_HTTPS) {
        for rd in &set.rdata {
            let Some((priority, target)) = rd.svcb_target() else {
                continue;
            };
            // "." means the owner itself (RFC 9460 §2.5): nothing to add.
            if target == [0] {
                continue;
            }
            let mut lower = NameBuf::empty();
            set_name(&mut lower, target);
            let Some(node) = tree.nodes.get(lower.as_bytes()) else {
                continue;
            };
            let mut types: SmallVec<[u16; 3]> = SmallVec::new();
            if priority == 0 {
                types.push(set.rtype);
            }
            types.extend([TYPE_A, TYPE_AAAA]);
            for t in types {
                if let Some(s) = node.rrset(t) {
                    ans.additional.push(Item::Set(Owner::Name(&node.owner), s));
                }
            }
        }
    }
}

fn add_glue<'a>(tree: &'a Tree, set: &'a Rrset, ans: &mut Answer<'a>) {
    for rd in &set.rdata {
        let Some(target) = rd.target() else { continue };
        let mut lower = NameBuf::empty();
        set_name(&mut lower, target);
        let Some(node) = tree.nodes.get(lower.as_bytes()) else {
            continue;
        };
        for t in [TYPE_A, TYPE_AAAA] {
            if let Some(s) = node.rrset(t) {
                ans.additional.push(Item::Set(Owner::Name(&node.owner), s));
            }
        }
    }
}

/// Where a steered name is answered: the snapshot (with the GeoIP
/// database), the zone and the question.
#[derive(Clone, Copy)]
struct Here<'a, 'q> {
    snap: &'a Snapshot,
    zone: &'a Zone,
    q: &'q Question<'q>,
}

/// Steering's decision for one family of a steered host; the answer's ECS
/// scope grows to cover it.
fn decide<T: steer::Trace>(
    here: Here<'_, '_>,
    host: &steer::Host,
    family: Family,
    trace: &mut T,
    ans: &mut Answer<'_>,
) -> steer::Decision {
    let d = steer::decide(
        &here.zone.steering,
        host,
        here.snap.geodb.as_deref(),
        here.q.client,
        family,
        trace,
    );
    ans.scope = ans.scope.max(d.scope);
    d
}

/// Fills the answer of a steered name. Returns a CNAME target to chase, if
/// steering chose the fallback or a partner CDN.
fn steer_answer<'a, T: steer::Trace>(
    here: Here<'a, '_>,
    node: &'a Node,
    owner: Owner<'a>,
    trace: &mut T,
    ans: &mut Answer<'a>,
) -> Option<&'a [u8]> {
    let Here { zone, q, .. } = here;
    let hidx = node.host? as usize;
    let host = &zone.steering.hosts[hidx];
    let families: &[Family] = match (q.qtype, q.transport) {
        (TYPE_A, _) | (TYPE_ANY, Transport::Udp) => &[Family::V4],
        (TYPE_AAAA, _) => &[Family::V6],
        _ => &[Family::V4, Family::V6],
    };
    let mut fallback = None;
    for &family in families {
        let d = decide(here, host, family, trace, ans);
        match d.outcome {
            Outcome::Edges => ans.answer.push(Item::Edges {
                owner,
                ttl: host.ttl,
                family,
                steering: &zone.steering,
                edges: d.edges.clone(),
            }),
            Outcome::NoData => {
                if families.len() == 1 {
                    negative(&zone.tree, ans);
                }
            }
            // The host's fallback or a partner CDN: its CNAME, chased.
            Outcome::Fallback | Outcome::Partner(_) => {
                if let Some(target) = zone.steering.cname_for(host, d.outcome) {
                    ans.answer.push(Item::Cname {
                        owner,
                        ttl: host.ttl,
                        target,
                    });
                    fallback = Some(target);
                }
            }
            Outcome::ServFail => {
                ans.rcode = Rcode::ServFail;
                ans.answer.clear();
                ans.authority.clear();
                // `all_down: servfail` and nothing up: say so (RFC 8914).
                ans.ede = Some(Ede {
                    code: EDE_NETWORK_ERROR,
                    text: Cow::Owned(format!("no edge can serve {}", host.name)),
                });
            }
            Outcome::Empty => {}
        }
        ans.steered = Some(Steered {
            zone,
            host: hidx as u32,
            decision: d,
        });
        if fallback.is_some() || ans.rcode != Rcode::NoError {
            break;
        }
    }
    if families.len() > 1
        && ans.answer.is_empty()
        && ans.rcode == Rcode::NoError
        && fallback.is_none()
    {
        negative(&zone.tree, ans);
    }
    fallback
}

/// Fills the HTTPS/SVCB answer of a steered host from its template: one
/// decision per family, exactly as its A and AAAA answers make them (same
/// edges in the same order, the larger ECS scope of the two, the host's
/// TTL). A decision for a CNAME (fallback) is answered with that CNAME,
/// whose target the caller follows; SERVFAIL stays SERVFAIL.
fn steer_svcb<'a, T: steer::Trace>(
    here: Here<'a, '_>,
    node: &'a Node,
    template: &'a crate::zone::svcb::Template,
    owner: Owner<'a>,
    trace: &mut T,
    ans: &mut Answer<'a>,
) -> Option<&'a [u8]> {
    let zone = here.zone;
    let hidx = node.host? as usize;
    let host = &zone.steering.hosts[hidx];
    let mut hints: [SmallVec<[EdgeIdx; 8]>; 2] = Default::default();
    let mut empty = 0;
    for (i, family) in [Family::V4, Family::V6].into_iter().enumerate() {
        let d = decide(here, host, family, trace, ans);
        let outcome = d.outcome;
        let edges = d.edges.clone();
        ans.steered = Some(Steered {
            zone,
            host: hidx as u32,
            decision: d,
        });
        match outcome {
            Outcome::Edges => hints[i] = edges,
            Outcome::NoData => {}
            Outcome::Empty => empty += 1,
            // Steered to a CNAME (the fallback or a partner CDN): the
            // HTTPS answer follows it instead of carrying hints.
            Outcome::Fallback | Outcome::Partner(_) => {
                let target = zone.steering.cname_for(host, outcome)?;
                ans.answer.push(Item::Cname {
                    owner,
                    ttl: host.ttl,
                    target,
                });
                return Some(target);
            }
            Outcome::ServFail => {
                ans.rcode = Rcode::ServFail;
                ans.ede = Some(Ede {
                    code: EDE_NETWORK_ERROR,
                    text: Cow::Owned(format!("no edge can serve {}", host.name)),
                });
                return None;
            }
        }
    }
    if empty == 2 {
        // `all_down: empty`: the same empty answer as A and AAAA get.
        negative(&zone.tree, ans);
        return None;
    }
    let [v4, v6] = hints;
    ans.answer.push(Item::Svcb {
        owner,
        ttl: host.ttl,
        template,
        steering: &zone.steering,
        v4,
        v6,
    });
    None
}
