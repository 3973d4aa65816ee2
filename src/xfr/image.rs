//! What a zone transfer carries: every record of the zone, with each
//! steered host as the records an unlocated client gets while every edge
//! is up, in canonical order (RFC 4034 §6.1) after the SOA.
//!
//! A secondary (Knot, BIND, another provider) cannot steer: it serves a
//! sane default. Health is left out on purpose: the image is a function
//! of the files alone, so its serial moves only when they change, and two
//! instances of a fleet give a secondary the same zone.
//!
//! A signed zone's image also carries what a secondary serving it
//! statically needs ([`sign`]): an NSEC chain over the image's names and
//! an RRSIG over every authoritative RRset (NS at a cut and glue stay
//! unsigned, RFC 4035 §2.2). The signatures come from the signature
//! cache, so a transfer signs only what changed.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use sha2::{Digest, Sha256};
use smallvec::SmallVec;

use crate::dnssec::ZoneSigner;
use crate::dnssec::sign::Canon;
use crate::health::{AdminState, EdgeHealth, EdgeState};
use crate::snapshot::Zone;
use crate::steer::{self, Client, Decision, Family, Outcome, Steering};
use crate::wire::{self, TYPE_A, TYPE_AAAA, TYPE_CNAME, TYPE_DS, TYPE_NS, TYPE_SOA};
use crate::zone::tree::{Node, Rdata};

/// One record of a transfer, RDATA uncompressed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rr {
    /// Wire form, case as written.
    pub owner: Box<[u8]>,
    pub rtype: u16,
    pub ttl: u32,
    pub rdata: Vec<u8>,
}

/// A zone as transferred: the SOA first, then every other record in
/// canonical name order, RRsets together.
#[derive(Clone, Debug, Default)]
pub struct Image {
    pub records: Vec<Rr>,
}

/// The canonical order key of a wire name (RFC 4034 §6.1): labels from
/// the right, lowercased, each byte shifted up so a label's end sorts
/// before any byte.
pub fn canonical_key(name: &[u8]) -> Vec<u16> {
    let mut offs = [0u8; 128];
    let n = wire::label_offsets(name, &mut offs);
    let mut key = Vec::with_capacity(name.len() + n);
    for &o in offs[..n].iter().rev() {
        let o = usize::from(o);
        let len = usize::from(name[o]);
        key.extend(
            name[o + 1..o + 1 + len]
                .iter()
                .map(|b| u16::from(b.to_ascii_lowercase()) + 1),
        );
        key.push(0);
    }
    key
}

/// Uncompressed wire RDATA of a tree record.
pub fn rdata_wire(rd: &Rdata) -> Vec<u8> {
    match rd {
        Rdata::Opaque(b) | Rdata::Name(b) => b.to_vec(),
        Rdata::Mx(p, n) => [&p.to_be_bytes()[..], n].concat(),
        Rdata::Srv(h, n) => [&h[..], n].concat(),
        Rdata::Soa { mname, rname, tail } => [&mname[..], rname, tail].concat(),
    }
}

/// The zone's steering with every edge up and no admin override: what
/// the image's steered records are decided on.
fn all_up(zone: &Zone) -> Steering {
    let edges = zone
        .steering
        .edges
        .iter()
        .map(|e| {
            // Under a no-op recorder: never the real edge's gauges.
            let health = metrics::with_local_recorder(&metrics::NoopRecorder, || {
                Arc::new(EdgeHealth::new(
                    &zone.name,
                    &e.name,
                    EdgeState::Up,
                    AdminState::Auto,
                ))
            });
            e.with_health(health)
        })
        .collect();
    // The zone's hosts, so that their candidate groups exist in this steering.
    Steering::new(
        edges,
        zone.steering.hosts.clone(),
        steer::Nets::new(Vec::new()),
    )
}

/// The unlocated client: no database, no override net, no ECS.
const NOWHERE: Client = Client {
    addr: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
    ecs_source: None,
};

/// Builds the image of `zone` (its SOA as the snapshot serves it).
pub fn build(zone: &Zone) -> Image {
    let tree = &zone.tree;
    let up = (!zone.steering.hosts.is_empty()).then(|| all_up(zone));
    let mut nodes: Vec<(Vec<u16>, &Node)> = tree
        .nodes
        .iter()
        .map(|(k, n)| (canonical_key(k), n))
        .collect();
    nodes.sort_by(|a, b| a.0.cmp(&b.0));
    let soa = tree.soa();
    let mut records = vec![Rr {
        owner: tree.apex.clone(),
        rtype: TYPE_SOA,
        ttl: soa.ttl,
        rdata: rdata_wire(&soa.rdata[0]),
    }];
    for (_, node) in nodes {
        let mut sets: Vec<_> = node.rrsets.iter().filter(|s| s.rtype != TYPE_SOA).collect();
        sets.sort_by_key(|s| s.rtype);
        for set in sets {
            for rd in &set.rdata {
                records.push(Rr {
                    owner: node.owner.clone(),
                    rtype: set.rtype,
                    ttl: set.ttl,
                    rdata: rdata_wire(rd),
                });
            }
        }
        if let (Some(h), Some(up)) = (node.host, &up) {
            steered(zone, up, node, h, &mut records);
        }
    }
    Image { records }
}

/// A steered host's default records: A and AAAA (or the CNAME of a
/// fallback or partner), and its HTTPS/SVCB templates with those hints.
fn steered(zone: &Zone, up: &Steering, node: &Node, h: u32, out: &mut Vec<Rr>) {
    let host = &up.hosts[h as usize];
    let d4 = steer::decide(up, host, None, NOWHERE, Family::V4, &mut ());
    let d6 = steer::decide(up, host, None, NOWHERE, Family::V6, &mut ());
    let rr = |rtype, rdata| Rr {
        owner: node.owner.clone(),
        rtype,
        ttl: host.ttl,
        rdata,
    };
    let cname = [&d4, &d6]
        .into_iter()
        .find_map(|d| up.cname_for(host, d.outcome));
    if let Some(target) = cname {
        out.push(rr(TYPE_CNAME, target.to_vec()));
        return;
    }
    let edges = |d: &Decision| -> SmallVec<[steer::EdgeIdx; 8]> {
        if d.outcome == Outcome::Edges {
            d.edges.clone()
        } else {
            SmallVec::new()
        }
    };
    let (v4, v6) = (edges(&d4), edges(&d6));
    let (a4, a6) = up.hint_addresses(&v4, &v6);
    let mut a4s: Vec<_> = a4.iter().map(|a| a.octets().to_vec()).collect();
    let mut a6s: Vec<_> = a6.iter().map(|a| a.octets().to_vec()).collect();
    a4s.sort();
    a4s.dedup();
    a6s.sort();
    a6s.dedup();
    out.extend(a4s.into_iter().map(|a| rr(TYPE_A, a)));
    out.extend(a6s.into_iter().map(|a| rr(TYPE_AAAA, a)));
    if v4.is_empty() && v6.is_empty() {
        return;
    }
    let mut templates: Vec<_> = zone.svcb.iter().filter(|t| t.host == h).collect();
    templates.sort_by_key(|t| t.rtype);
    for t in templates {
        let mut rdata = Vec::with_capacity(t.rdata_len(a4.len(), a6.len()));
        t.write(&a4, &a6, |b| {
            rdata.extend_from_slice(b);
            Ok::<(), std::convert::Infallible>(())
        })
        .expect("writing to a Vec cannot fail");
        out.push(rr(t.rtype, rdata));
    }
}

/// A digest of the image with the SOA serial left out: what decides
/// whether the serial must move. `extra` is mixed in (a signed zone's
/// keys and signing period).
pub fn content_hash(image: &Image, extra: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(extra);
    for r in &image.records {
        h.update(wire::lowercase(&r.owner));
        h.update(r.rtype.to_be_bytes());
        h.update(r.ttl.to_be_bytes());
        let mut rd = Vec::with_capacity(r.rdata.len());
        crate::zone::schema::canonical(r.rtype, &r.rdata, &mut rd);
        if r.rtype == TYPE_SOA {
            // The serial is what this digest decides.
            if let Some(at) = soa_serial_at(&rd) {
                rd[at..at + 4].fill(0);
            }
        }
        h.update((rd.len() as u32).to_be_bytes());
        h.update(&rd);
    }
    h.finalize().into()
}

/// Where the serial sits in SOA RDATA (after the two names).
pub fn soa_serial_at(rd: &[u8]) -> Option<usize> {
    let m = wire::name_len(rd)?;
    let r = wire::name_len(rd.get(m..)?)?;
    (rd.len() >= m + r + 20).then_some(m + r)
}

/// The image of a signed zone as a secondary serves it: with the NSEC
/// chain and the RRSIGs of every authoritative RRset, each after its
/// RRset, and the SOA's RRSIG after the SOA.
pub fn sign(image: &Image, signer: &ZoneSigner, nsec_ttl: u32) -> Image {
    // Owners of the RRsets, in order, with their types.
    let recs = &image.records;
    let mut names: Vec<(Box<[u8]>, Vec<u16>)> = Vec::new();
    let apex = wire::lowercase(&recs[0].owner);
    for r in recs {
        let l = wire::lowercase(&r.owner);
        match names.last_mut() {
            Some((n, types)) if *n == l => types.push(r.rtype),
            _ => names.push((l, vec![r.rtype])),
        }
    }
    // The SOA came first; the apex's other records come again later.
    if names.len() > 1 && names[1].0 == names[0].0 {
        let rest = names.remove(1).1;
        names[0].1.extend(rest);
    }
    // Cuts (NS below the apex); names below one are glue, not signed and
    // without NSEC.
    let cuts: Vec<Box<[u8]>> = names
        .iter()
        .filter(|(n, t)| *n != apex && t.contains(&TYPE_NS))
        .map(|(n, _)| n.clone())
        .collect();
    let below_cut = |n: &[u8]| {
        cuts.iter()
            .any(|c| n.len() > c.len() && n.ends_with(c) && is_boundary(n, n.len() - c.len()))
    };
    let chain: Vec<&(Box<[u8]>, Vec<u16>)> = names.iter().filter(|(n, _)| !below_cut(n)).collect();
    let mut out = Vec::with_capacity(recs.len() * 2 + chain.len() * 2);
    let mut canon = Canon::default();
    let mut sigs = SmallVec::<[Arc<[u8]>; 2]>::new();
    let mut sign_set = |owner: &[u8], rtype: u16, ttl: u32, rdatas: &[&[u8]], out: &mut Vec<Rr>| {
        let l = wire::lowercase(owner);
        let labels = wire::label_count(&l) - usize::from(l.starts_with(b"\x01*"));
        canon.start(rtype, ttl, labels as u8);
        for rd in rdatas {
            let mut c = Vec::with_capacity(rd.len());
            crate::zone::schema::canonical(rtype, rd, &mut c);
            canon.push(&c);
        }
        sigs.clear();
        signer.rrsigs(&l, &mut canon, &mut sigs);
        for s in &sigs {
            out.push(Rr {
                owner: owner.into(),
                rtype: wire::TYPE_RRSIG,
                ttl,
                rdata: s.to_vec(),
            });
        }
    };
    // The records, RRset by RRset, each followed by its RRSIGs.
    let mut i = 0;
    while i < recs.len() {
        let r = &recs[i];
        let mut j = i + 1;
        while j < recs.len()
            && recs[j].rtype == r.rtype
            && recs[j].owner.eq_ignore_ascii_case(&r.owner)
        {
            j += 1;
        }
        out.extend(recs[i..j].iter().cloned());
        let l = wire::lowercase(&r.owner);
        let at_cut = cuts.contains(&l);
        // NS at a cut and glue below it are the child's: unsigned.
        let signed = !(below_cut(&l) || at_cut && r.rtype != TYPE_DS);
        if signed {
            let rdatas: Vec<&[u8]> = recs[i..j].iter().map(|r| &r.rdata[..]).collect();
            sign_set(&r.owner, r.rtype, r.ttl, &rdatas, &mut out);
        }
        i = j;
    }
    // The NSEC chain, each signed.
    for (k, (name, types)) in chain.iter().enumerate() {
        let next = &chain[(k + 1) % chain.len()].0;
        let owner = recs
            .iter()
            .find(|r| wire::lowercase(&r.owner) == *name)
            .map_or_else(|| name.clone(), |r| r.owner.clone());
        let mut t = types.clone();
        t.extend([wire::TYPE_RRSIG, wire::TYPE_NSEC]);
        t.dedup();
        let rdata = crate::dnssec::sign::nsec_rdata(next, &mut t);
        out.push(Rr {
            owner: owner.clone(),
            rtype: wire::TYPE_NSEC,
            ttl: nsec_ttl,
            rdata: rdata.clone(),
        });
        sign_set(&owner, wire::TYPE_NSEC, nsec_ttl, &[&rdata], &mut out);
    }
    Image { records: out }
}

fn is_boundary(name: &[u8], at: usize) -> bool {
    let mut p = 0;
    while p < at {
        p += 1 + usize::from(name[p]);
    }
    p == at
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_order_is_rfc4034s() {
        // RFC 4034 §6.1's example, shuffled.
        let mut names: Vec<Vec<u8>> = [
            &b"\x01z\x07example\x00"[..],
            b"\x07example\x00",
            b"\x01a\x07example\x00",
            b"\x01\x01\x01z\x07example\x00",
            b"\x08yljkjljk\x01a\x07example\x00",
            b"\x01Z\x01a\x07example\x00",
            b"\x04zABC\x01a\x07EXAMPLE\x00",
            b"\x01*\x01z\x07example\x00",
            b"\x01\xc8\x01z\x07example\x00",
        ]
        .iter()
        .map(|n| n.to_vec())
        .collect();
        names.sort_by_key(|n| canonical_key(n));
        let shown: Vec<String> = names.iter().map(|n| wire::name_to_string(n)).collect();
        assert_eq!(
            shown,
            [
                "example.",
                "a.example.",
                "yljkjljk.a.example.",
                "Z.a.example.",
                "zABC.a.EXAMPLE.",
                "z.example.",
                "\\001.z.example.",
                "*.z.example.",
                "\\200.z.example.",
            ]
        );
    }
}
