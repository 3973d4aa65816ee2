//! Pre-rendered answers: the common queries answered by copying bytes.
//!
//! When a snapshot is built, every (name, type) the zones hold is answered
//! once through the general path ([`super::answer::lookup`] and the
//! renderer) and the sections after the question are kept as bytes. A
//! steered name's A and AAAA keep only which host to steer. A query then
//! costs one hash probe on its lowercased name and type, and a copy: the
//! header is patched with the query's ID and flags, the question is copied
//! from the query (so its letter case survives; compression pointers into
//! it stay valid because case never changes a name's length), and OPT with
//! the ECS echo is written last.
//!
//! In a signed zone a DO=1 query gets a second pre-rendered body with its
//! RRSIGs (and the NSEC of a NODATA), used until the signature cache would
//! re-sign it; a steered A/AAAA gets its RRSIG from the signature cache,
//! the same one the general path writes.
//!
//! Anything else — names only a wildcard matches, NXDOMAIN and other
//! NODATA (unless [`super::negative`] has them), ANY, answers
//! that don't fit the client's size, steering that chose something other
//! than edges — returns `None` and takes the general path, which produces
//! the same bytes for everything this path answers (`tests/fast_path.rs`
//! compares the two over generated queries).
//!
//! The table itself is snapshot data ([`crate::snapshot::fast`]): [`build`]
//! fills it when the snapshot is made, and the answer path reads it.

use super::answer::{self, Question, Steered};
use super::opt::OptExtra;
use super::{Summary, header_flags, opt_len, render_answer, write_opt};
use crate::net::Transport;
use crate::snapshot::Snapshot;
use crate::snapshot::fast::{Entry, FastTable, KeyTable, Secure, Static};
use crate::steer::{self, Client, EdgeIdx, Family, Outcome};
use crate::wire::*;

/// Types rendered at every name even when absent there: A and AAAA are
/// what clients ask most, and their NODATA answers are common too.
const ALWAYS: [u16; 2] = [TYPE_A, TYPE_AAAA];

/// Renders every (name, type) of every zone of `snap` into the table the
/// snapshot carries (`snap.fast = build(&snap)`). `snap.fast` is not
/// consulted, so the general path does the rendering.
pub fn build(snap: &Snapshot) -> FastTable {
    let mut table = FastTable::default();
    let mut map = crate::zone::tree::NameMap::default();
    let mut out = vec![0u8; 65_535];
    for zone in snap.zones.values() {
        let tree = &zone.tree;
        for (key, node) in &tree.nodes {
            // A name inside a child zone we also serve is that zone's.
            if !snap
                .find_zone(key)
                .is_some_and(|z| std::ptr::eq(z, &**zone))
            {
                continue;
            }
            let direct_steer = node.host.is_some() && answer::find_cut(tree, key).is_none();
            let types = node
                .rrsets
                .iter()
                .map(|s| s.rtype)
                .chain(ALWAYS)
                .filter(|&t| t != TYPE_ANY);
            for qtype in types {
                let mut k = Vec::with_capacity(key.len() + 2);
                k.extend_from_slice(key);
                k.extend_from_slice(&qtype.to_be_bytes());
                if map.contains_key(&k[..]) {
                    continue;
                }
                let entry = if direct_steer && matches!(qtype, TYPE_A | TYPE_AAAA) {
                    Entry::Steered {
                        zone: zone.clone(),
                        host: node.host.unwrap_or_default(),
                        family: if qtype == TYPE_A {
                            Family::V4
                        } else {
                            Family::V6
                        },
                    }
                } else {
                    match render_static(snap, key, qtype, &mut out) {
                        Some(s) => {
                            table.bytes +=
                                s.body.len() + s.secure.as_ref().map_or(0, |x| x.body.len());
                            Entry::Static(s)
                        }
                        None => continue,
                    }
                };
                map.insert(k.into_boxed_slice(), entry);
            }
        }
    }
    table.map = KeyTable::new(map);
    table.negative = super::negative::build(snap);
    table
}

/// The general path's answer to `key`/`qtype`, if it doesn't depend on
/// who asks or how.
fn render_static(snap: &Snapshot, key: &[u8], qtype: u16, out: &mut [u8]) -> Option<Static> {
    let mut s = render_one(snap, key, qtype, out, false)?;
    if s.signed {
        s.secure = render_one(snap, key, qtype, out, true).and_then(|x| x.secure);
    }
    Some(s)
}

/// One rendering of the general path's answer; with `dnssec`, the DO=1
/// answer goes in `secure`.
fn render_one(
    snap: &Snapshot,
    key: &[u8],
    qtype: u16,
    out: &mut [u8],
    dnssec: bool,
) -> Option<Static> {
    let question = Question {
        name: key,
        qtype,
        transport: Transport::Udp,
        // Only steering reads the client, and steered answers are skipped.
        client: Client {
            addr: std::net::Ipv4Addr::UNSPECIFIED.into(),
            ecs_source: None,
        },
    };
    let mut ans = answer::lookup(snap, &question, &mut ());
    if ans.steered.is_some() {
        // Reached steering through a CNAME: the client decides.
        return None;
    }
    let q = Query {
        id: 0,
        flags: 0,
        qname_raw: key,
        qtype,
        qclass: CLASS_IN,
        edns: None,
    };
    let signed = answer::zone_for(snap, key, qtype).is_some_and(|z| z.dnssec.is_some());
    let mut name = NameBuf::empty();
    name.buf[..key.len()].copy_from_slice(key);
    name.len = key.len() as u8;
    let sec = if dnssec {
        Some(super::secure::prepare(snap, name, qtype, false, &mut ans)?)
    } else {
        None
    };
    let (len, truncated) =
        render_answer(&q, &ans, &OptExtra::default(), out.len(), out, sec.as_ref());
    if truncated {
        return None;
    }
    let count = |i: usize| u16::from_be_bytes([out[i], out[i + 1]]);
    let (rcode, aa, counts) = (ans.rcode, ans.aa, [count(6), count(8), count(10)]);
    let body: Box<[u8]> = out[HEADER + key.len() + 4..len].into();
    if let Some(ctx) = sec {
        let p = ctx.signer.policy;
        let fresh_until =
            u64::from(ctx.min_expiration.get()).saturating_sub(u64::from(p.validity - p.refresh));
        return Some(Static {
            rcode,
            aa,
            counts,
            body: Box::new([]),
            signed,
            secure: Some(Box::new(Secure {
                rcode,
                aa,
                counts,
                body,
                fresh_until,
            })),
        });
    }
    Some(Static {
        signed,
        secure: None,
        rcode,
        aa,
        counts,
        body,
    })
}

/// Writes the header and the client's question; returns the position after it.
#[inline(always)]
pub(super) fn head(q: &Query<'_>, flags: u16, counts: [u16; 4], out: &mut [u8]) -> usize {
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

/// Appends our OPT record (if the query had EDNS) at `pos`; returns the end.
#[inline(always)]
pub(super) fn tail(
    q: &Query<'_>,
    extra: &OptExtra<'_>,
    rcode: Rcode,
    scope: u8,
    pos: usize,
    out: &mut [u8],
) -> usize {
    match &q.edns {
        Some(e) => {
            let mut w = super::render::Writer::at(out, pos);
            // Room was checked by the caller.
            let _ = write_opt(&mut w, e, rcode, scope, extra, None);
            w.pos
        }
        None => pos,
    }
}

/// Answers `q` from the pre-rendered table (a name not in it may be a
/// pre-rendered NXDOMAIN: [`super::negative`]), or `None` for the general path.
/// `max` is the response size the transport allows; nothing else about the
/// transport matters, as ANY (which differs over TCP) is never here.
/// Inlined into its one caller, so the summary is built where it is returned.
#[inline(always)]
pub(super) fn respond<'s, T: steer::Trace>(
    snap: &'s Snapshot,
    q: &Query<'_>,
    extra: &OptExtra<'_>,
    client: Client,
    max: usize,
    out: &mut [u8],
    trace: &mut T,
) -> Option<Summary<'s>> {
    // Most names are short: a small key buffer saves zeroing 257 bytes.
    let mut small = [0u8; 64];
    let mut big;
    let key: &mut [u8] = if q.qname_raw.len() + 2 <= small.len() {
        &mut small
    } else {
        big = [0u8; MAX_NAME + 2];
        &mut big
    };
    let n = q.lower_qname(key);
    key[n..n + 2].copy_from_slice(&q.qtype.to_be_bytes());
    let Some(entry) = snap.fast.map.get(&key[..n + 2]) else {
        return super::negative::respond(snap, q, extra, &key[..n], max, out);
    };
    let dnssec = q.edns.is_some_and(|e| e.dnssec_ok);
    let opt = q.edns.as_ref().map_or(0, |e| opt_len(e, extra, None));
    let qlen = HEADER + q.qname_raw.len() + 4;
    match entry {
        Entry::Static(s) => {
            let (rcode, aa, counts, body) = match &s.secure {
                _ if !(dnssec && s.signed) => (s.rcode, s.aa, s.counts, &s.body),
                Some(sec) if crate::dnssec::unix_now() < sec.fresh_until => {
                    (sec.rcode, sec.aa, sec.counts, &sec.body)
                }
                // Signatures due for renewal: the general path signs anew.
                _ => return None,
            };
            let end = qlen + body.len();
            if end + opt > max.min(out.len()) {
                return None;
            }
            let ar = counts[2] + u16::from(q.edns.is_some());
            let flags = header_flags(q.flags, aa, false, rcode);
            let pos = head(q, flags, [1, counts[0], counts[1], ar], out);
            out[pos..end].copy_from_slice(body);
            let len = tail(q, extra, rcode, 0, end, out);
            Some(Summary::prerendered(q, len, rcode, extra.cookie_valid))
        }
        Entry::Steered { zone, host, family } => {
            let st = &zone.steering;
            let h = &st.hosts[*host as usize];
            let d = steer::decide(st, h, snap.geodb.as_deref(), client, *family, trace);
            if d.outcome != Outcome::Edges {
                return None;
            }
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
            // Unsigned answers (most) skip building and dropping a vector.
            let signed;
            let sigs: &[std::sync::Arc<[u8]>] = match (&zone.dnssec, dnssec) {
                (Some(signer), true) => {
                    signed =
                        super::secure::edge_rrsigs(signer, &key[..n], *family, h.ttl, st, &d.edges);
                    &signed
                }
                _ => &[],
            };
            let sig_bytes: usize = sigs.iter().map(|s| 12 + s.len()).sum();
            let end = qlen + records * (12 + rdlen) + sig_bytes;
            if end + opt > max.min(out.len()) || records + sigs.len() > usize::from(u16::MAX) {
                return None;
            }
            let flags = header_flags(q.flags, true, false, Rcode::NoError);
            let ar = u16::from(q.edns.is_some());
            let an = (records + sigs.len()) as u16;
            let mut pos = head(q, flags, [1, an, 0, ar], out);
            // Every record: pointer to the question, type, class, TTL, RDATA.
            let mut fixed = [0u8; 12];
            fixed[0..2].copy_from_slice(&(0xC000 | HEADER as u16).to_be_bytes());
            fixed[2..4].copy_from_slice(&rtype.to_be_bytes());
            fixed[4..6].copy_from_slice(&CLASS_IN.to_be_bytes());
            fixed[6..10].copy_from_slice(&h.ttl.to_be_bytes());
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
            let len = tail(q, extra, Rcode::NoError, scope, pos, out);
            Some(Summary {
                len,
                rcode: Rcode::NoError,
                qtype: q.qtype,
                truncated: false,
                ecs: q.edns.is_some_and(|e| e.ecs.is_some()),
                scope,
                steered: Some(Steered {
                    zone,
                    host: *host,
                    decision: d,
                }),
                cookie_valid: extra.cookie_valid,
                rum_probe: false,
            })
        }
    }
}
