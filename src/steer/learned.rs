//! Learned RTT rows (real-user measurements, [`crate::rum`]): the live
//! slot steering reads beside the RTT file.
//!
//! A learned cell is an RTT row keyed by the client's /24 (/56 for IPv6),
//! and it competes with the file's prefix rows as one more prefix would:
//! the longest key wins, and at the same key the file's row for an edge
//! wins over the learned one (merged in when the table is built, so a
//! query never merges). A query without ECS from a resolver whose /24 has
//! linked users is steered by those users' combined rows, keyed by the
//! resolver's /24.
//!
//! The table is immutable and swapped whole by the RUM aggregator; a query
//! reads it with one relaxed load (nothing learned: done) or one
//! `ArcSwap` load, no lock and no allocation.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use arc_swap::ArcSwapOption;
use ipnet::IpNet;

use super::rtt::{RttAt, RttKey, RttTable};
use super::{EdgeIdx, Steering};

/// Which learned rows decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Which {
    /// The client network's own cells.
    Client,
    /// The users linked to the (ECS-less) resolver's network.
    Resolver,
}

/// One learned row as the aggregator hands it over.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LearnedRow {
    /// The client's /24 or /56 (the resolver's, for resolver rows).
    pub net: IpNet,
    pub edge: EdgeIdx,
    pub ms: f32,
    /// Samples behind the estimate.
    pub samples: u32,
}

/// The learned rows of one zone, ready for lookups.
#[derive(Debug, Default)]
pub struct Learned {
    /// Client networks' rows (the file's rows at the same key merged in).
    pub clients: RttTable,
    /// Resolver networks' rows: their linked users' cells combined.
    pub resolvers: RttTable,
    /// Samples behind each row, aligned with the tables' row storage
    /// ([`RttTable::row_slot`]); 0 for a row that came from the RTT file.
    client_samples: Vec<u32>,
    resolver_samples: Vec<u32>,
    /// Linked user networks per resolver key, by key ordinal.
    resolver_users: Vec<u32>,
    /// Unix seconds the table was built.
    pub built: u64,
}

/// What a decision read of a learned key, for `explain`.
#[derive(Clone, Debug, PartialEq)]
pub struct LearnedHit {
    pub which: Which,
    pub key: RttKey,
    /// (edge, ms, samples; 0 = the RTT file's row), fastest first.
    pub rows: Vec<(EdgeIdx, f32, u32)>,
    /// Linked user networks behind a resolver's rows (0 for a client).
    pub users: u32,
}

/// The learned rows a decision uses, and where the client falls among the
/// learned client keys (for the ECS scope).
pub(super) struct Pick<'l> {
    /// The table and key whose rows decide, and the key's prefix length,
    /// if learned rows win.
    pub rows: Option<(&'l RttTable, u32, Which, u8)>,
    /// The client table and the client's place in it, for an ECS query.
    pub scope_at: Option<(&'l RttTable, RttAt)>,
}

impl Learned {
    /// Builds the table for steering `st` (whose edges the rows index and
    /// whose RTT file they merge with). `users`: linked user networks per
    /// resolver network.
    pub fn build(
        st: &Steering,
        clients: Vec<LearnedRow>,
        resolvers: Vec<LearnedRow>,
        users: &HashMap<IpNet, u32>,
        built: u64,
    ) -> Learned {
        let (clients, client_samples) = Self::table(st, clients);
        let (resolvers, resolver_samples) = Self::table(st, resolvers);
        let resolver_users = resolvers
            .groups()
            .map(|(_, key, _)| match key {
                RttKey::Prefix(n) => users.get(n).copied().unwrap_or(0),
                _ => 0,
            })
            .collect();
        Learned {
            clients,
            resolvers,
            client_samples,
            resolver_samples,
            resolver_users,
            built,
        }
    }

    /// One table: the learned rows, with the file's rows at the same key
    /// taking their edge's place; and the samples aligned with its rows.
    fn table(st: &Steering, rows: Vec<LearnedRow>) -> (RttTable, Vec<u32>) {
        let mut by_net: HashMap<IpNet, Vec<(EdgeIdx, f32, u32)>> = HashMap::new();
        for r in rows {
            if (r.edge as usize) < st.edges.len() && r.ms.is_finite() && r.ms >= 0.0 {
                by_net
                    .entry(r.net)
                    .or_default()
                    .push((r.edge, r.ms, r.samples));
            }
        }
        let mut samples: HashMap<(IpNet, EdgeIdx), u32> = HashMap::new();
        let mut flat = Vec::new();
        for (net, mut list) in by_net {
            let key = RttKey::Prefix(net);
            // The operator's file is the word at its own key.
            if let Some(file) = st.rtt.rows_for(&key) {
                list.retain(|r| !file.iter().any(|f| f.0 == r.0));
                list.extend(file.iter().map(|&(e, ms)| (e, ms, 0)));
            }
            list.sort_by_key(|r| r.0);
            list.dedup_by_key(|r| r.0);
            for (e, ms, n) in list {
                samples.insert((net, e), n);
                flat.push((key, e, ms));
            }
        }
        let table = RttTable::new(flat, |e| st.edges[e as usize].scale());
        let mut aligned = vec![0u32; table.storage_len()];
        for (k, key, rows) in table.groups() {
            let RttKey::Prefix(net) = key else { continue };
            for (i, (e, _)) in rows.iter().enumerate() {
                aligned[RttTable::row_slot(k, i)] = samples.get(&(*net, *e)).copied().unwrap_or(0);
            }
        }
        (table, aligned)
    }

    pub fn is_empty(&self) -> bool {
        self.clients.is_empty() && self.resolvers.is_empty()
    }

    /// The learned rows that decide for `addr` (the address steering
    /// located), given the length of the RTT file's most specific prefix
    /// holding it: a file prefix longer than the learned key wins.
    #[inline]
    pub(super) fn pick(&self, addr: IpAddr, ecs: bool, file_len: Option<u8>) -> Pick<'_> {
        let wins = |at: &RttAt| {
            at.hit
                .map(|h| (h.key, h.prefix.unwrap_or(0)))
                .filter(|&(_, len)| file_len.is_none_or(|f| f <= len))
        };
        // Without ECS the source is the resolver: its users decide.
        if !ecs
            && !self.resolvers.is_empty()
            && let Some((key, len)) = self.resolvers.at(addr).as_ref().and_then(wins)
        {
            return Pick {
                rows: Some((&self.resolvers, key, Which::Resolver, len)),
                scope_at: None,
            };
        }
        let at = self.clients.at(addr);
        Pick {
            rows: at
                .as_ref()
                .and_then(wins)
                .map(|(k, len)| (&self.clients, k, Which::Client, len)),
            scope_at: if ecs {
                at.map(|a| (&self.clients, a))
            } else {
                None
            },
        }
    }

    /// What `explain` shows of key `key` of the `which` table.
    pub fn hit(&self, which: Which, key: u32) -> LearnedHit {
        let (table, samples) = match which {
            Which::Client => (&self.clients, &self.client_samples),
            Which::Resolver => (&self.resolvers, &self.resolver_samples),
        };
        LearnedHit {
            which,
            key: *table.key(key),
            rows: table
                .rows_of(key)
                .iter()
                .enumerate()
                .map(|(i, &(e, ms))| {
                    let n = samples.get(RttTable::row_slot(key, i)).copied();
                    (e, ms, n.unwrap_or(0))
                })
                .collect(),
            users: match which {
                Which::Client => 0,
                Which::Resolver => self
                    .resolver_users
                    .get(table.key_ordinal(key))
                    .copied()
                    .unwrap_or(0),
            },
        }
    }
}

/// A steering's slot for its learned rows: empty until the RUM aggregator
/// publishes a table built for this steering (the slot is per steering
/// instance, so its edge indices always match).
#[derive(Default)]
pub struct Slot {
    /// Set once a table is published: zones without RUM never pay the
    /// `ArcSwap` load.
    on: AtomicBool,
    table: ArcSwapOption<Learned>,
}

impl std::fmt::Debug for Slot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Slot")
            .field("on", &self.on.load(Ordering::Relaxed))
            .finish()
    }
}

/// What [`Slot::load`] hands a decision: the table, kept alive while it
/// decides.
pub type Loaded = arc_swap::Guard<Option<Arc<Learned>>>;

impl Slot {
    /// Swaps a new table in (None: nothing learned).
    pub fn publish(&self, table: Option<Arc<Learned>>) {
        let on = table.as_ref().is_some_and(|t| !t.is_empty());
        self.table.store(table);
        self.on.store(on, Ordering::Release);
    }

    /// The current table, if anything is learned.
    #[inline(always)]
    pub fn load(&self) -> Option<Loaded> {
        if !self.on.load(Ordering::Relaxed) {
            return None;
        }
        let g = self.table.load();
        g.is_some().then_some(g)
    }

    /// The current table (off the query path: status, API).
    pub fn current(&self) -> Option<Arc<Learned>> {
        self.table.load_full()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::steer::{Client, Family, Trace, decide};
    use std::path::Path;

    const POOLS: &str = "edges:
  a: {addresses: [192.0.2.1], location: [0, 0]}
  b: {addresses: [192.0.2.2], location: [0, 10]}
  c: {addresses: [192.0.2.3], location: [0, 20]}
nets:
  10.0.0.0/8: [0, 1]
hosts:
  www: {}
";

    fn idx(st: &Steering, e: &str) -> EdgeIdx {
        st.edges.iter().position(|x| x.name == e).unwrap() as EdgeIdx
    }

    /// No database: 10.0.0.0/8 is placed by an override net near a, so the
    /// order is a, b, c there unless RTT rows say otherwise.
    fn steering(file: &[(&str, &str, f32)]) -> Steering {
        let origin = hickory_proto::rr::Name::from_ascii("t.").unwrap();
        let p = crate::config::pools::from_str(
            POOLS,
            Path::new("t.pools.yaml"),
            &origin,
            &crate::config::pools::AlwaysUp,
        )
        .unwrap();
        let st = p.steering;
        let rows = file
            .iter()
            .map(|(k, e, ms)| (RttKey::Prefix(k.parse().unwrap()), idx(&st, e), *ms))
            .collect();
        st.with_rtt(Arc::new(RttTable::new(rows, |_| 1.0)))
    }

    fn learn(st: &Steering, clients: &[(&str, &str, f32)], resolvers: &[(&str, &str, f32)]) {
        let rows = |list: &[(&str, &str, f32)]| {
            list.iter()
                .map(|(n, e, ms)| LearnedRow {
                    net: n.parse().unwrap(),
                    edge: idx(st, e),
                    ms: *ms,
                    samples: 30,
                })
                .collect()
        };
        let users = resolvers
            .iter()
            .map(|(n, _, _)| (n.parse().unwrap(), 2))
            .collect();
        let l = Learned::build(st, rows(clients), rows(resolvers), &users, 0);
        st.learned.publish(Some(Arc::new(l)));
    }

    /// The first edge and the ECS scope for a client (ECS /24 when `ecs`).
    fn answer<T: Trace>(st: &Steering, addr: &str, ecs: bool, trace: &mut T) -> (String, u8) {
        let d = decide(
            st,
            &st.hosts[0],
            None,
            Client {
                addr: addr.parse().unwrap(),
                ecs_source: ecs.then_some(24),
            },
            Family::V4,
            trace,
        );
        (st.edges[d.edges[0] as usize].name.clone(), d.scope)
    }

    fn first(st: &Steering, addr: &str, ecs: bool) -> (String, u8) {
        answer(st, addr, ecs, &mut ())
    }

    #[test]
    fn learned_cells_are_prefix_rows() {
        let st = steering(&[
            ("10.0.0.0/16", "c", 5.0),
            ("10.0.1.128/25", "a", 1.0),
            ("10.200.3.0/24", "a", 50.0),
        ]);
        assert_eq!(first(&st, "10.0.1.5", true), ("c".into(), 25));
        assert_eq!(first(&st, "10.0.8.5", true), ("c".into(), 21));
        learn(
            &st,
            &[
                ("10.0.1.0/24", "b", 3.0),
                ("10.0.9.0/24", "b", 3.0),
                ("10.200.3.0/24", "a", 5.0),
                ("10.200.3.0/24", "b", 20.0),
                ("10.7.0.0/24", "c", 9.0),
            ],
            &[],
        );
        // The learned /24 beats the file's /16; the scope is the key's
        // (25 here: the file's /25 in its upper half is not covered).
        assert_eq!(first(&st, "10.0.1.5", true), ("b".into(), 25));
        assert_eq!(first(&st, "10.0.9.5", true), ("b".into(), 24));
        // The file's /25 inside it is longer and wins.
        assert_eq!(first(&st, "10.0.1.200", true), ("a".into(), 25));
        // Outside learned cells the /16 decides, but its scope must not
        // cover a learned /24: 10.0.9.0/24 shares 23 bits with 10.0.8.0.
        assert_eq!(first(&st, "10.0.8.5", true), ("c".into(), 24));
        // At the same key the file's row for an edge is the operator's word:
        // a = 50 (file) and b = 20 (learned), so b.
        assert_eq!(first(&st, "10.200.3.9", true), ("b".into(), 24));
        // A learned cell with no file rows around it, and its neighbour.
        assert_eq!(first(&st, "10.7.0.1", true), ("c".into(), 24));
        assert_eq!(first(&st, "10.7.1.1", true), ("a".into(), 24));
        assert_eq!(first(&st, "10.7.128.1", true), ("a".into(), 17));
        // Learned rows left out (the status page's "before").
        struct Without;
        impl Trace for Without {
            const LEARNED: bool = false;
        }
        assert_eq!(answer(&st, "10.0.1.5", true, &mut Without).0, "c");
        assert_eq!(answer(&st, "10.7.0.1", true, &mut Without).0, "a");
    }

    #[test]
    fn ipv6_cells_are_56s() {
        let st = steering(&[]);
        learn(&st, &[("2001:db8:1:100::/56", "c", 4.0)], &[]);
        let six = |a: &str| {
            let d = decide(
                &st,
                &st.hosts[0],
                None,
                Client {
                    addr: a.parse().unwrap(),
                    ecs_source: Some(56),
                },
                Family::V4,
                &mut (),
            );
            (st.edges[d.edges[0] as usize].name.clone(), d.scope)
        };
        assert_eq!(six("2001:db8:1:100::"), ("c".into(), 56));
        assert_eq!(six("2001:db8:1:200::"), ("a".into(), 56));
    }

    #[test]
    fn resolvers_steer_for_their_users_without_ecs() {
        let st = steering(&[]);
        learn(&st, &[], &[("192.0.2.0/24", "c", 40.0)]);
        // No ECS: the source is the resolver, its users decide.
        assert_eq!(first(&st, "192.0.2.53", false), ("c".into(), 0));
        // With ECS the client is known: the resolver's users don't matter.
        assert_eq!(first(&st, "10.9.9.0", true).0, "a");
        assert_eq!(first(&st, "192.0.3.53", false).0, "a");
        // Nothing learned: nothing changes.
        st.learned.publish(None);
        assert_eq!(first(&st, "192.0.2.53", false).0, "a");
    }

    #[test]
    fn explain_sees_the_learned_key_and_its_samples() {
        let st = steering(&[("10.0.1.0/24", "a", 50.0)]);
        learn(&st, &[("10.0.1.0/24", "b", 3.0)], &[]);
        #[derive(Default)]
        struct Rec(Option<LearnedHit>);
        impl Trace for Rec {
            const DETAILED: bool = true;
            fn learned(&mut self, l: &Learned, which: Which, key: u32) {
                self.0 = Some(l.hit(which, key));
            }
        }
        let mut rec = Rec::default();
        assert_eq!(answer(&st, "10.0.1.1", true, &mut rec).0, "b");
        let hit = rec.0.unwrap();
        assert_eq!(hit.which, Which::Client);
        assert_eq!(hit.key.to_string(), "10.0.1.0/24");
        // b learned from 30 samples, a from the file (0).
        assert_eq!(
            hit.rows,
            vec![(idx(&st, "b"), 3.0, 30), (idx(&st, "a"), 50.0, 0)]
        );
    }
}
