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
//! the same bytes for everything this path answers (`tests/dns/fast_path.rs`
//! compares the two over generated queries).
//!
//! The table itself is snapshot data ([`crate::snapshot::fast`]): [`build`]
//! fills it when the snapshot is made, and the answer path reads it.

use super::answer::{self, Question, Steered};
use super::render::{self, Body, Summary};
use super::request::Request;
use crate::net::Transport;
use crate::snapshot::Snapshot;
use crate::snapshot::fast::{Entry, FastTable, Secure, Static};
use crate::steer::{self, Client, Family, Outcome};
use crate::wire::*;

/// Types rendered at every name even when absent there: A and AAAA are
/// what clients ask most, and their NODATA answers are common too.
const ALWAYS: [u16; 2] = [TYPE_A, TYPE_AAAA];

/// Renders every (name, type) of every zone of `snap` into the table the
/// snapshot carries (`snap.fast = build(&snap)`). `snap.fast` is not
/// consulted, so the general path does the rendering.
pub fn build(snap: &Snapshot) -> FastTable {
    let mut table = FastTable::default();
    // Keys go back to back into one buffer and straight into the table:
    // a key is never boxed on its own, and no map is grown on the way (a
    // zone of 50,000 steered hosts has 100,000 keys, made on every edit).
    // A key is in the table once: tree names are distinct within a zone, a
    // name is taken only from its closest zone, and a node's types are
    // made distinct below.
    let nodes: usize = snap.zones.values().map(|z| z.tree.nodes.len()).sum();
    let mut keys = crate::snapshot::fast::KeyArena::with_capacity(nodes * ALWAYS.len());
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
            let direct_steer = node.host.is_some() && tree.find_cut(key).is_none();
            let types = node
                .rrsets
                .iter()
                .map(|s| s.rtype)
                .chain(ALWAYS)
                .filter(|&t| t != TYPE_ANY);
            let mut done: smallvec::SmallVec<[u16; 8]> = smallvec::SmallVec::new();
            for qtype in types {
                if done.contains(&qtype) {
                    continue;
                }
                done.push(qtype);
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
                keys.push(&[key, &qtype.to_be_bytes()[..]], entry);
            }
        }
    }
    table.map = keys.into_table();
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
        tsig: false,
    };
    let signed = snap
        .zone_for(key, qtype)
        .is_some_and(|z| z.dnssec.is_some());
    let mut name = NameBuf::empty();
    name.buf[..key.len()].copy_from_slice(key);
    name.len = key.len() as u8;
    let sec = if dnssec {
        Some(super::secure::prepare(snap, name, qtype, false, &mut ans)?)
    } else {
        None
    };
    let (len, truncated) = render::answer(&Request::ahead(&q, out.len()), &ans, out, sec.as_ref());
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

/// Answers `req` from the pre-rendered table (a name not in it may be a
/// pre-rendered NXDOMAIN: [`super::negative`]), or `None` for the general
/// path. Of the transport only the size limit matters, as ANY (which
/// differs over TCP) is never here. Inlined into its one caller, so the
/// summary is built where it is returned.
#[inline(always)]
pub(super) fn respond<'s, T: steer::Trace>(
    snap: &'s Snapshot,
    req: &Request<'_>,
    out: &mut [u8],
    trace: &mut T,
) -> Option<Summary<'s>> {
    let q = req.query;
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
        return super::negative::respond(snap, req, &key[..n], out);
    };
    let dnssec = q.edns.is_some_and(|e| e.dnssec_ok);
    match entry {
        Entry::Static(s) => {
            let body = match &s.secure {
                _ if !(dnssec && s.signed) => Body {
                    rcode: s.rcode,
                    aa: s.aa,
                    counts: s.counts,
                    bytes: &s.body,
                },
                Some(sec) if crate::clock::unix_now() < sec.fresh_until => Body {
                    rcode: sec.rcode,
                    aa: sec.aa,
                    counts: sec.counts,
                    bytes: &sec.body,
                },
                // Signatures due for renewal: the general path signs anew.
                _ => return None,
            };
            render::body(req, body, out)
        }
        Entry::Steered { zone, host, family } => {
            let st = &zone.steering;
            let h = &st.hosts[*host as usize];
            let d = steer::decide(st, h, snap.geodb.as_deref(), req.client, *family, trace);
            if d.outcome != Outcome::Edges {
                return None;
            }
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
            let steered = Steered {
                zone,
                host: *host,
                decision: d,
            };
            render::steered(req, steered, *family, sigs, out)
        }
    }
}
