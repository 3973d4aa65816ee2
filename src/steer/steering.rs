//! One zone's steering data, the files stage: its edges and hosts, the
//! override nets and RTT rows merged into one range table, the distinct
//! candidate groups, the ranks over one database stage, and the live layer
//! decisions read.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use smallvec::SmallVec;

use super::edge::Edge;
use super::host::Host;
use super::live::Live;
use super::overlay::{NetTarget, Nets, Overlay};
use super::ranks::{Group, Ranks};
use super::rtt::RttTable;
use super::types::{EdgeIdx, Outcome};
use crate::geo::GeoDb;

/// One zone's steering data, from `<zone>.pools.yaml` and `<zone>.rtt.csv`:
/// the files stage, built against one database stage.
#[derive(Debug)]
pub struct Steering {
    pub edges: Vec<Edge>,
    pub hosts: Vec<Host>,
    pub nets: Nets,
    /// Measured RTTs (empty without an RTT file). Shared: the reloader
    /// keeps a table while its file is unchanged, and a what-if copy of
    /// the steering (the status page) costs no copy of a 1M-row table.
    pub rtt: Arc<RttTable>,
    /// Every distinct candidate list (hosts', rules', pinning nets').
    groups: Vec<Group>,
    /// Per net of [`Nets::list`]: the group it pins, or [`NO_GROUP`].
    pub(super) net_groups: Box<[u32]>,
    /// The nets and the RTT prefixes in one range table per family.
    pub(super) overlay: Overlay,
    /// The edges ranked for every point of the database the steering was
    /// made for ([`Steering::precompute`]).
    pub(super) ranks: Option<Arc<Ranks>>,
    /// Live state beyond each edge's own health: learned RTT rows.
    pub(super) live: Arc<Live>,
    /// [`Steering::edges_id`].
    pub(super) edges_id: u64,
}

/// [`Steering::net_groups`] of a net that places clients rather than
/// pinning edges.
pub(super) const NO_GROUP: u32 = u32::MAX;

impl Steering {
    pub fn new(edges: Vec<Edge>, mut hosts: Vec<Host>, nets: Nets) -> Steering {
        let mut groups: Vec<Group> = Vec::new();
        let mut ids: std::collections::HashMap<
            Vec<EdgeIdx>,
            u32,
            std::hash::BuildHasherDefault<crate::zone::tree::NameHasher>,
        > = Default::default();
        // Looked up before inserting: most hosts share a list already seen,
        // and a key made for every host is an allocation each.
        let mut group = |list: &[EdgeIdx]| -> u32 {
            if let Some(&g) = ids.get(list) {
                return g;
            }
            groups.push(Group::new(list, &edges));
            ids.insert(list.to_vec(), groups.len() as u32 - 1);
            groups.len() as u32 - 1
        };
        for h in &mut hosts {
            h.group = group(&h.candidates);
            for r in &mut h.rules {
                r.group = group(&r.edges);
            }
        }
        let net_groups = nets
            .list()
            .iter()
            .map(|(_, t)| match t {
                NetTarget::Edges(e) => group(e),
                NetTarget::Location(_) => NO_GROUP,
            })
            .collect();
        let rtt = Arc::<RttTable>::default();
        Steering {
            overlay: Overlay::build(&nets, &rtt),
            edges_id: edges_id(&edges),
            edges,
            hosts,
            nets,
            rtt,
            groups,
            net_groups,
            ranks: None,
            live: Arc::default(),
        }
    }

    /// The CNAME a steered answer with `outcome` is made of: the host's
    /// fallback, or a partner CDN's target; `None` for other outcomes.
    pub fn cname_for<'s>(&'s self, host: &'s Host, outcome: Outcome) -> Option<&'s [u8]> {
        match outcome {
            Outcome::Fallback => host.fallback.as_deref(),
            Outcome::Partner(e) => self.edges[e as usize].cname.as_deref(),
            _ => None,
        }
    }

    /// The addresses of `v4` and `v6` edges, in order: an HTTPS/SVCB
    /// record's `ipv4hint` and `ipv6hint`.
    pub fn hint_addresses(
        &self,
        v4: &[EdgeIdx],
        v6: &[EdgeIdx],
    ) -> (SmallVec<[Ipv4Addr; 8]>, SmallVec<[Ipv6Addr; 8]>) {
        let a4 = v4
            .iter()
            .flat_map(|&e| self.edges[e as usize].v4.iter().copied())
            .collect();
        let a6 = v6
            .iter()
            .flat_map(|&e| self.edges[e as usize].v6.iter().copied())
            .collect();
        (a4, a6)
    }

    /// Ranks the edges for every point of `geo` (see [`ranks`]): the part
    /// of the files stage that depends on the database stage and the
    /// edges' places, shared with any steering in use ranked from the same
    /// (a pools edit that moves no edge ranks nothing). Decisions
    /// with another database compute their orders per query. Returns the
    /// bytes the ranks hold.
    pub fn precompute(&mut self, geo: Option<&GeoDb>) -> usize {
        self.ranks = geo.and_then(|g| Ranks::shared(g, &self.edges));
        self.ranks.as_ref().map_or(0, |r| r.bytes())
    }

    /// Whether both steerings read the same ranks (one was lent the
    /// other's: no edge moved between them).
    pub fn shares_ranks(&self, other: &Steering) -> bool {
        match (&self.ranks, &other.ranks) {
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }

    /// The same steering with RTT data: its prefixes merged with the nets.
    pub fn with_rtt(mut self, rtt: Arc<RttTable>) -> Steering {
        self.overlay = Overlay::build(&self.nets, &rtt);
        self.rtt = rtt;
        self
    }

    /// The same steering reading `live` (a zone's live layer, kept across
    /// reloads by whoever builds the steering).
    pub fn with_live(mut self, live: Arc<Live>) -> Steering {
        self.live = live;
        self
    }

    /// The live layer decisions read: where learned RTT rows are plugged in.
    pub fn live(&self) -> &Arc<Live> {
        &self.live
    }

    /// An identity of the edge list (names, in order): learned rows refer
    /// to edges by index, valid only for the list they were learned with.
    pub fn edges_id(&self) -> u64 {
        self.edges_id
    }

    /// Candidate group `g`.
    pub(super) fn group(&self, g: u32) -> &Group {
        &self.groups[g as usize]
    }
}

/// [`Steering::edges_id`] of `edges`.
fn edges_id(edges: &[Edge]) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    for e in edges {
        e.name.hash(&mut h);
    }
    h.finish()
}

impl Default for Steering {
    fn default() -> Steering {
        Steering::new(Vec::new(), Vec::new(), Nets::default())
    }
}
