//! The in-memory zone: nodes by lowercased wire name, with RDATA encoded
//! once at build time so answering only copies bytes.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use hickory_proto::rr::{RData, Record};
use hickory_proto::serialize::binary::{BinEncodable, BinEncoder};

use crate::wire::{self, TYPE_NS, TYPE_SOA};

/// RDATA in wire form, split where it holds names so the renderer can
/// compress them (or, for SRV, must not).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Rdata {
    /// No compressible names inside: A, AAAA, TXT, CAA, and every type
    /// beyond RFC 1035's (HTTPS, SVCB, DS, DNAME, NAPTR...) as raw bytes.
    Opaque(Box<[u8]>),
    /// NS, CNAME, PTR: one compressible name.
    Name(Box<[u8]>),
    /// MX: preference, then a compressible name.
    Mx(u16, Box<[u8]>),
    /// SRV: priority, weight, port; the target is never compressed (RFC 2782).
    Srv([u8; 6], Box<[u8]>),
    /// SOA: two compressible names and the five counters.
    Soa {
        mname: Box<[u8]>,
        rname: Box<[u8]>,
        tail: [u8; 20],
    },
}

impl Rdata {
    /// Encodes hickory RDATA. Returns `None` for types we don't serve.
    pub fn from_hickory(data: &RData) -> Option<Rdata> {
        Some(match data {
            RData::NS(n) => Rdata::Name(wire::from_hickory(&n.0)),
            RData::CNAME(n) => Rdata::Name(wire::from_hickory(&n.0)),
            RData::PTR(n) => Rdata::Name(wire::from_hickory(&n.0)),
            RData::MX(mx) => Rdata::Mx(mx.preference, wire::from_hickory(&mx.exchange)),
            RData::SRV(srv) => {
                let mut head = [0u8; 6];
                head[0..2].copy_from_slice(&srv.priority.to_be_bytes());
                head[2..4].copy_from_slice(&srv.weight.to_be_bytes());
                head[4..6].copy_from_slice(&srv.port.to_be_bytes());
                Rdata::Srv(head, wire::from_hickory(&srv.target))
            }
            RData::SOA(soa) => {
                let mut tail = [0u8; 20];
                tail[0..4].copy_from_slice(&soa.serial.to_be_bytes());
                tail[4..8].copy_from_slice(&soa.refresh.to_be_bytes());
                tail[8..12].copy_from_slice(&soa.retry.to_be_bytes());
                tail[12..16].copy_from_slice(&soa.expire.to_be_bytes());
                tail[16..20].copy_from_slice(&soa.minimum.to_be_bytes());
                Rdata::Soa {
                    mname: wire::from_hickory(&soa.mname),
                    rname: wire::from_hickory(&soa.rname),
                    tail,
                }
            }
            RData::A(_) | RData::AAAA(_) | RData::TXT(_) | RData::CAA(_) => {
                let mut buf = Vec::new();
                let mut enc = BinEncoder::new(&mut buf);
                data.emit(&mut enc).ok()?;
                Rdata::Opaque(buf.into_boxed_slice())
            }
            // Types kept as wire bytes by the zone loader (HTTPS, SVCB,
            // DS, DNAME, ...): their names are never compressed (RFC 3597
            // §4), so the bytes are the answer.
            RData::Unknown { rdata, .. } => {
                Rdata::Opaque(rdata.anything.clone().into_boxed_slice())
            }
            _ => return None,
        })
    }

    /// The name additional-section processing looks up (RFC 1035 §3.3).
    pub fn target(&self) -> Option<&[u8]> {
        match self {
            Rdata::Name(n) | Rdata::Mx(_, n) | Rdata::Srv(_, n) => Some(n),
            _ => None,
        }
    }

    /// The bytes of opaque RDATA (a DNAME's target name, for one).
    pub fn opaque(&self) -> Option<&[u8]> {
        match self {
            Rdata::Opaque(b) => Some(b),
            _ => None,
        }
    }

    /// SvcPriority and TargetName of SVCB/HTTPS RDATA (kept opaque).
    pub fn svcb_target(&self) -> Option<(u16, &[u8])> {
        let Rdata::Opaque(b) = self else { return None };
        let priority = u16::from_be_bytes([*b.first()?, *b.get(1)?]);
        let end = wire::name_len(b.get(2..)?)?;
        Some((priority, &b[2..2 + end]))
    }

    /// SOA MINIMUM, for negative TTLs.
    pub fn soa_minimum(&self) -> Option<u32> {
        match self {
            Rdata::Soa { tail, .. } => {
                Some(u32::from_be_bytes([tail[16], tail[17], tail[18], tail[19]]))
            }
            _ => None,
        }
    }
}

/// All records of one type at one name.
#[derive(Clone, Debug)]
pub struct Rrset {
    pub rtype: u16,
    pub ttl: u32,
    pub rdata: Vec<Rdata>,
}

/// One name in a zone. Empty non-terminals exist as nodes without data so
/// that NXDOMAIN vs NODATA and wildcard matching follow RFC 4592.
#[derive(Clone, Debug, Default)]
pub struct Node {
    /// The owner as written in the zone (case kept).
    pub owner: Box<[u8]>,
    pub rrsets: Vec<Rrset>,
    /// Index into the zone's steered hosts, for names answered by steering.
    pub host: Option<u32>,
    /// NS records here, and this is not the apex: a zone cut.
    pub cut: bool,
    /// The RUM resolver-probe wildcard (`*.rum.<zone>`): a query it
    /// answers is recorded ([`crate::rum`]).
    pub rum_probe: bool,
}

impl Node {
    pub fn rrset(&self, rtype: u16) -> Option<&Rrset> {
        self.rrsets.iter().find(|s| s.rtype == rtype)
    }
    pub fn is_empty(&self) -> bool {
        self.rrsets.is_empty() && self.host.is_none()
    }
}

/// Zone nodes by lowercased wire name.
pub type NameMap<V> = HashMap<Box<[u8]>, V, BuildHasherDefault<NameHasher>>;

/// The hasher of [`NameMap`]: FxHash's multiply-rotate over 8-byte words.
///
/// Why not the default SipHash: it cost ~25% of a static answer's
/// instructions (two lookups per query, a few hundred instructions each);
/// this costs a few dozen. SipHash's keyed flooding resistance is not
/// needed here: only the operator's zone data is ever inserted, so a client
/// choosing query names cannot lengthen any bucket, only probe one.
#[derive(Default, Clone, Copy)]
pub struct NameHasher(u64);

impl NameHasher {
    const K: u64 = 0xf135_7aea_2e62_a9c5;

    /// Mixes one word in; [`crate::snapshot::fast::key_hash`] feeds it
    /// words directly.
    #[inline(always)]
    pub(crate) fn add(&mut self, w: u64) {
        self.0 = (self.0.rotate_left(26) ^ w).wrapping_mul(Self::K);
    }
}

impl Hasher for NameHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            self.add(u64::from_le_bytes(c.try_into().expect("8 bytes")));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut w = [0u8; 8];
            w[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(w));
        }
    }

    #[inline]
    fn write_usize(&mut self, n: usize) {
        self.add(n as u64);
    }

    #[inline]
    fn finish(&self) -> u64 {
        // hashbrown takes the top 7 bits as the control tag: fold the
        // well-mixed high half down so both halves carry entropy.
        self.0 ^ (self.0 >> 32)
    }
}

/// A zone's names. `S` is the per-zone steering data.
#[derive(Debug)]
pub struct Tree {
    pub apex: Box<[u8]>,
    pub apex_lower: Box<[u8]>,
    pub nodes: NameMap<Node>,
    /// TTL of the SOA in negative answers: min(SOA TTL, MINIMUM) (RFC 2308).
    pub neg_ttl: u32,
    pub has_cuts: bool,
    pub has_wildcards: bool,
    /// Some node has a DNAME, so lookups check the ancestors for one.
    pub has_dnames: bool,
}

/// A record that could not go into the tree.
#[derive(Debug, Clone)]
pub struct TreeError {
    pub index: usize,
    pub reason: String,
}

impl Tree {
    /// Builds the tree from records already validated by [`crate::zone`].
    /// `records` yields (index for error reporting, record).
    pub fn build<'a>(
        apex: &hickory_proto::rr::Name,
        records: impl IntoIterator<Item = (usize, &'a Record)>,
    ) -> Result<Tree, Vec<TreeError>> {
        let apex_wire = wire::from_hickory(apex);
        let apex_lower = wire::lowercase(&apex_wire);
        let mut nodes: NameMap<Node> = NameMap::default();
        let mut errors = Vec::new();
        for (index, rec) in records {
            let Some(rdata) = Rdata::from_hickory(&rec.data) else {
                errors.push(TreeError {
                    index,
                    reason: format!("unsupported record type {}", rec.record_type()),
                });
                continue;
            };
            let owner = wire::from_hickory(&rec.name);
            let key = wire::lowercase(&owner);
            let node = nodes.entry(key).or_insert_with(|| Node {
                owner: owner.clone(),
                ..Node::default()
            });
            let rtype = u16::from(rec.record_type());
            match node.rrsets.iter_mut().find(|s| s.rtype == rtype) {
                Some(set) => {
                    if !set.rdata.contains(&rdata) {
                        set.rdata.push(rdata);
                    }
                }
                None => node.rrsets.push(Rrset {
                    rtype,
                    ttl: rec.ttl,
                    rdata: vec![rdata],
                }),
            }
        }
        let mut tree = Tree {
            apex: apex_wire,
            apex_lower,
            nodes,
            neg_ttl: 0,
            has_cuts: false,
            has_wildcards: false,
            has_dnames: false,
        };
        match tree
            .nodes
            .get(&tree.apex_lower)
            .and_then(|n| n.rrset(TYPE_SOA))
        {
            Some(soa) => {
                let min = soa.rdata[0].soa_minimum().unwrap_or(0);
                tree.neg_ttl = soa.ttl.min(min);
            }
            None => errors.push(TreeError {
                index: usize::MAX,
                reason: "no SOA record at the zone apex".into(),
            }),
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        tree.finish();
        Ok(tree)
    }

    /// Marks cuts and wildcards and adds empty non-terminals. Call again
    /// after adding nodes (steered hosts).
    pub fn finish(&mut self) {
        let apex_len = self.apex_lower.len();
        // (lowercased key, owner as written) of each missing ancestor.
        type Missing = (Box<[u8]>, Box<[u8]>);
        let mut missing: Vec<Missing> = Vec::new();
        self.has_cuts = false;
        self.has_wildcards = false;
        self.has_dnames = false;
        for (key, node) in self.nodes.iter_mut() {
            node.cut = key.len() != apex_len && node.rrset(TYPE_NS).is_some();
            self.has_cuts |= node.cut;
            self.has_wildcards |= key.starts_with(b"\x01*");
            self.has_dnames |= node.rrset(wire::TYPE_DNAME).is_some();
            let mut offs = [0u8; 128];
            let n = wire::label_offsets(key, &mut offs);
            for &off in &offs[1..n] {
                let anc = &key[off as usize..];
                if anc.len() <= apex_len {
                    break;
                }
                missing.push((anc.into(), node.owner[off as usize..].into()));
            }
        }
        for (key, owner) in missing {
            self.nodes.entry(key).or_insert_with(|| Node {
                owner,
                ..Node::default()
            });
        }
    }

    pub fn apex_node(&self) -> &Node {
        &self.nodes[&self.apex_lower]
    }

    pub fn soa(&self) -> &Rrset {
        // `build` refuses a zone without an apex SOA.
        self.apex_node()
            .rrset(TYPE_SOA)
            .expect("tree built without apex SOA")
    }

    /// Is the lowercased `lname` the apex or a name below it?
    pub fn contains_name(&self, lname: &[u8]) -> bool {
        let apex = &self.apex_lower;
        lname.len() >= apex.len()
            && lname.ends_with(apex)
            && (lname.len() == apex.len() || is_label_boundary(lname, lname.len() - apex.len()))
    }

    /// The topmost zone cut at or above `lname` (below the apex), and
    /// whether it is `lname` itself.
    pub fn find_cut(&self, lname: &[u8]) -> Option<(&Node, bool)> {
        let mut offs = [0u8; 128];
        let n = wire::label_offsets(lname, &mut offs);
        let apex = self.apex_lower.len();
        for &off in offs[..n].iter().rev() {
            let key = &lname[off as usize..];
            if key.len() <= apex {
                continue;
            }
            // Ancestors of every node exist (empty non-terminals), so a
            // missing node means nothing deeper exists either.
            let node = self.nodes.get(key)?;
            if node.cut {
                return Some((node, off == 0));
            }
        }
        None
    }

    /// The DNAME at a proper ancestor of `lname` inside the zone, if any.
    /// Validation leaves nothing below a DNAME, so there is at most one and
    /// a missing node on the way down means there is none.
    pub fn find_dname(&self, lname: &[u8]) -> Option<(&Node, &Rrset)> {
        let mut offs = [0u8; 128];
        let n = wire::label_offsets(lname, &mut offs);
        let apex = self.apex_lower.len();
        for &off in offs[1..n].iter().rev() {
            let key = &lname[off as usize..];
            if key.len() < apex {
                continue;
            }
            let node = self.nodes.get(key)?;
            if let Some(d) = node.rrset(wire::TYPE_DNAME) {
                return Some((node, d));
            }
        }
        None
    }

    /// RFC 4592: the wildcard that is the source of synthesis for the
    /// lowercased `lname`, `*.<closest encloser>`, if the zone has it.
    pub fn wildcard(&self, lname: &[u8]) -> Option<&Node> {
        if !self.has_wildcards {
            return None;
        }
        let mut offs = [0u8; 128];
        let n = wire::label_offsets(lname, &mut offs);
        let encloser = offs[1..n]
            .iter()
            .map(|&o| &lname[o as usize..])
            .find(|k| self.nodes.contains_key(*k))
            .unwrap_or(&self.apex_lower);
        if encloser.len() + 2 > wire::MAX_NAME {
            return None;
        }
        let mut key = wire::NameBuf::empty();
        key.buf[..2].copy_from_slice(b"\x01*");
        key.buf[2..2 + encloser.len()].copy_from_slice(encloser);
        key.len = (2 + encloser.len()) as u8;
        self.nodes.get(key.as_bytes())
    }
}

/// Does a label start at byte `at` of the wire name?
fn is_label_boundary(name: &[u8], at: usize) -> bool {
    let mut p = 0;
    while p < at {
        p += 1 + name[p] as usize;
    }
    p == at
}
