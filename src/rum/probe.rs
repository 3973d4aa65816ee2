//! The resolver probe: the browser resolves `<id>.rum.<zone>`, the query
//! reaches us from the user's resolver, and we note which resolver (and
//! ECS subnet) asked for which page view.
//!
//! The name is answered by a wildcard `*.rum.<zone>` put in the zone when
//! RUM is on (TTL 0, so every page view's query reaches us), carrying the
//! addresses of `rum.<zone>` (the RUM listener's name, so the browser's
//! request lands on our own listener, which answers it with 204), else
//! the listener's own address when it has a specific one. The DNS workers
//! only push the raw label and addresses into a bounded lock-free queue;
//! checking the label's MAC and linking happen on the aggregator thread.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};

use crossbeam_queue::ArrayQueue;

use crate::wire::{self, Query, TYPE_A, TYPE_AAAA, TYPE_CNAME};
use crate::zone::tree::{Node, Rdata, Rrset, Tree};

/// Length of a probe label: 12 bytes in hex ([`super::token`]).
pub const LABEL: usize = 24;
/// Probes the queue holds before it drops (counted).
pub const QUEUE: usize = 65_536;

/// A probe query as a DNS worker saw it.
#[derive(Clone, Copy, Debug)]
pub struct RawProbe {
    pub label: [u8; LABEL],
    pub resolver: IpAddr,
    /// The ECS address and source prefix, if the query had ECS.
    pub ecs: Option<(IpAddr, u8)>,
}

/// The queue from the DNS workers to the aggregator.
pub struct ProbeQueue {
    q: ArrayQueue<RawProbe>,
    /// Dropped because the queue was full, or not shaped like a probe.
    pub full: AtomicU64,
    pub malformed: AtomicU64,
}

impl Default for ProbeQueue {
    fn default() -> Self {
        ProbeQueue::new(QUEUE)
    }
}

impl std::fmt::Debug for ProbeQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ProbeQueue({} queued)", self.q.len())
    }
}

impl ProbeQueue {
    pub fn new(capacity: usize) -> ProbeQueue {
        ProbeQueue {
            q: ArrayQueue::new(capacity),
            full: AtomicU64::new(0),
            malformed: AtomicU64::new(0),
        }
    }

    /// Notes a probe query (the answer core said it was one): no lock, no
    /// allocation, never waits.
    pub fn record(&self, query: &[u8], source: IpAddr) {
        let mut q = Query::EMPTY;
        if wire::parse_query_into(query, &mut q).is_err() {
            return;
        }
        let name = q.qname_raw;
        if name.first().map(|&l| usize::from(l)) != Some(LABEL) || name.len() < 1 + LABEL {
            self.malformed.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let mut label = [0u8; LABEL];
        label.copy_from_slice(&name[1..1 + LABEL]);
        let ecs = q
            .edns
            .and_then(|e| e.ecs)
            .filter(|e| e.source_prefix > 0)
            .map(|e| (e.addr, e.source_prefix));
        if self
            .q
            .push(RawProbe {
                label,
                resolver: source,
                ecs,
            })
            .is_err()
        {
            self.full.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn pop(&self) -> Option<RawProbe> {
        self.q.pop()
    }
}

/// Puts the probe wildcard `*.rum.<apex>` into `tree` (see the module
/// docs). Returns a warning for the log when the probe has no address to
/// answer with.
pub fn add_probe_node(tree: &mut Tree, listen: SocketAddr) -> Option<String> {
    let mut rum = b"\x03rum".to_vec();
    rum.extend_from_slice(&tree.apex_lower);
    let mut key = b"\x01*".to_vec();
    key.extend_from_slice(&rum);
    let zone = wire::name_to_string(&tree.apex);
    if let Some(n) = tree.nodes.get(&rum[..])
        && n.cut
    {
        return Some(format!(
            "rum: rum.{zone} is delegated, so resolver probes are not answered here"
        ));
    }
    if let Some(n) = tree.nodes.get_mut(&key[..]) {
        // The operator's own wildcard answers; we only listen.
        n.rum_probe = true;
        return None;
    }
    let mut rrsets: Vec<Rrset> = Vec::new();
    if let Some(n) = tree.nodes.get(&rum[..]) {
        for t in [TYPE_CNAME, TYPE_A, TYPE_AAAA] {
            if let Some(set) = n.rrset(t) {
                rrsets.push(Rrset {
                    rtype: t,
                    ttl: 0,
                    rdata: set.rdata.clone(),
                });
            }
        }
    }
    let mut warning = None;
    if rrsets.is_empty() {
        match listen.ip() {
            IpAddr::V4(a) if !a.is_unspecified() => rrsets.push(Rrset {
                rtype: TYPE_A,
                ttl: 0,
                rdata: vec![Rdata::Opaque(a.octets().to_vec().into_boxed_slice())],
            }),
            IpAddr::V6(a) if !a.is_unspecified() => rrsets.push(Rrset {
                rtype: TYPE_AAAA,
                ttl: 0,
                rdata: vec![Rdata::Opaque(a.octets().to_vec().into_boxed_slice())],
            }),
            _ => {
                warning = Some(format!(
                    "rum: rum.{zone} has no address and rum.listen is {listen}, so resolver probes get no address (browsers log a failed request); add `rum A <the RUM listener's public address>` to the zone"
                ));
            }
        }
    }
    let mut owner = b"\x01*\x03rum".to_vec();
    owner.extend_from_slice(&tree.apex);
    tree.nodes.insert(
        key.into_boxed_slice(),
        Node {
            owner: owner.into_boxed_slice(),
            rrsets,
            rum_probe: true,
            ..Node::default()
        },
    );
    tree.finish();
    warning
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(name: &str, ecs: Option<([u8; 4], u8)>) -> Vec<u8> {
        let mut p = vec![0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, u8::from(ecs.is_some())];
        for l in name.split('.').filter(|l| !l.is_empty()) {
            p.push(l.len() as u8);
            p.extend_from_slice(l.as_bytes());
        }
        p.extend_from_slice(&[0, 0, 1, 0, 1]);
        if let Some((a, len)) = ecs {
            let alen = usize::from(len).div_ceil(8);
            p.extend_from_slice(&[0, 0, 41, 0x04, 0xD0, 0, 0, 0, 0]);
            p.extend_from_slice(&((8 + alen) as u16).to_be_bytes());
            p.extend_from_slice(&[0, 8]);
            p.extend_from_slice(&((4 + alen) as u16).to_be_bytes());
            p.extend_from_slice(&[0, 1, len, 0]);
            p.extend_from_slice(&a[..alen]);
        }
        p
    }

    fn tree(text: &str) -> Tree {
        let origin = hickory_proto::rr::Name::from_ascii("cdn.example.").unwrap();
        let zf = crate::zone::parse_zone_str(text, std::path::Path::new("z"), &origin).unwrap();
        Tree::build(
            &zf.origin,
            zf.records.iter().enumerate().map(|(i, r)| (i, &r.record)),
        )
        .unwrap()
    }

    const SOA: &str = "$TTL 300\n@ SOA ns h 1 3600 600 86400 60\n@ NS ns\nns A 192.0.2.53\n";

    fn probe_node(t: &Tree) -> &Node {
        t.nodes
            .get(&b"\x01*\x03rum\x03cdn\x07example\x00"[..])
            .unwrap()
    }

    #[test]
    fn probe_wildcard_answers_with_the_listeners_name() {
        // rum.<zone> exists: its addresses, TTL 0.
        let mut t = tree(&format!("{SOA}rum A 198.51.100.7\nrum AAAA 2001:db8::7\n"));
        assert_eq!(
            add_probe_node(&mut t, "0.0.0.0:8054".parse().unwrap()),
            None
        );
        let n = probe_node(&t);
        assert!(n.rum_probe && t.has_wildcards);
        assert_eq!(n.rrsets.len(), 2);
        assert!(n.rrsets.iter().all(|s| s.ttl == 0));
        // A CNAME there is followed the same way.
        let mut t = tree(&format!("{SOA}rum CNAME lb.example.net.\n"));
        add_probe_node(&mut t, "0.0.0.0:8054".parse().unwrap());
        assert_eq!(probe_node(&t).rrsets[0].rtype, TYPE_CNAME);
        // No rum name: the listener's own address, else nothing and a warning.
        let mut t = tree(SOA);
        assert_eq!(
            add_probe_node(&mut t, "192.0.2.80:8054".parse().unwrap()),
            None
        );
        assert_eq!(probe_node(&t).rrsets[0].rtype, TYPE_A);
        let mut t = tree(SOA);
        let w = add_probe_node(&mut t, "[::]:8054".parse().unwrap()).unwrap();
        assert!(
            w.contains("rum A <the RUM listener's public address>"),
            "{w}"
        );
        assert!(probe_node(&t).rrsets.is_empty());
        // The operator's own wildcard stays as written.
        let mut t = tree(&format!("{SOA}*.rum TXT \"mine\"\n"));
        add_probe_node(&mut t, "192.0.2.80:8054".parse().unwrap());
        let n = probe_node(&t);
        assert!(n.rum_probe);
        assert_eq!(n.rrsets[0].ttl, 300);
        // A delegated rum: not answered here.
        let mut t = tree(&format!("{SOA}rum NS ns.elsewhere.example.\n"));
        assert!(
            add_probe_node(&mut t, "192.0.2.80:8054".parse().unwrap())
                .unwrap()
                .contains("delegated")
        );
    }

    #[test]
    fn records_label_resolver_and_ecs() {
        let q = ProbeQueue::new(2);
        let label = "0123456789abcdef01234567";
        let src: IpAddr = "192.0.2.53".parse().unwrap();
        q.record(&query(&format!("{label}.rum.cdn.example"), None), src);
        q.record(
            &query(
                &format!("{label}.rum.cdn.example"),
                Some(([198, 51, 100, 0], 24)),
            ),
            src,
        );
        q.record(&query("short.rum.cdn.example", None), src);
        q.record(&query(&format!("{label}.rum.cdn.example"), None), src);
        let a = q.pop().unwrap();
        assert_eq!(&a.label, label.as_bytes());
        assert_eq!(a.resolver, src);
        assert_eq!(a.ecs, None);
        let b = q.pop().unwrap();
        assert_eq!(b.ecs, Some(("198.51.100.0".parse().unwrap(), 24)));
        assert!(q.pop().is_none());
        assert_eq!(q.malformed.load(Ordering::Relaxed), 1);
        assert_eq!(q.full.load(Ordering::Relaxed), 1);
        // Junk never panics.
        q.record(&[1, 2, 3], src);
        q.record(&[0u8; 40], src);
    }
}
