//! The immutable runtime state (zones, steering, GeoIP DB), swapped whole.
//!
//! Readers load the current [`Snapshot`] once per query (or per batch) from
//! the [`Shared`] handle. Writers build a complete new snapshot on the
//! side, validate it, and swap it in; in-flight queries finish on the old
//! one, which is freed when its last reader drops it.

pub mod fast;
mod zone;

pub use zone::Zone;

use std::sync::Arc;
use std::time::SystemTime;

use arc_swap::ArcSwap;

use fast::FastTable;

use crate::geo::GeoDb;
use crate::protocol::Protocol;
use crate::wire::{self, TYPE_DS};
use crate::zone::tree::NameMap;

/// Everything a query needs, immutable once built.
pub struct Snapshot {
    /// Keyed by the lowercased wire apex.
    pub zones: NameMap<Arc<Zone>>,
    pub geodb: Option<Arc<GeoDb>>,
    /// Increments with every swap; shown in the status API.
    pub generation: u64,
    pub built_at: SystemTime,
    /// Pre-rendered answers, filled by [`crate::dns::fast::build`].
    pub fast: FastTable,
    /// NSID and cookie secret (from `geosteer.yaml`).
    pub protocol: Protocol,
    /// Shortest and longest apex (wire bytes): [`Snapshot::find_zone`]
    /// only probes suffixes of a length some zone has.
    apex_len: (usize, usize),
}

impl std::fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Snapshot")
            .field(
                "zones",
                &self
                    .zones
                    .keys()
                    .map(|k| wire::name_to_string(k))
                    .collect::<Vec<_>>(),
            )
            .field("generation", &self.generation)
            .finish()
    }
}

impl Snapshot {
    /// A snapshot of `zones` with an empty pre-rendered table: it answers
    /// everything on the general path (the same bytes) until
    /// `snap.fast = dns::fast::build(&snap)` fills it.
    pub fn new(zones: Vec<Zone>, geodb: Option<Arc<GeoDb>>, generation: u64) -> Snapshot {
        let lens = zones.iter().map(|z| z.tree.apex_lower.len());
        let apex_len = (lens.clone().min().unwrap_or(0), lens.max().unwrap_or(0));
        Snapshot {
            zones: zones
                .into_iter()
                .map(|z| (z.tree.apex_lower.clone(), Arc::new(z)))
                .collect(),
            geodb,
            generation,
            built_at: SystemTime::now(),
            apex_len,
            fast: FastTable::default(),
            protocol: Protocol::default(),
        }
    }

    /// Sets the NSID and cookie settings answers use.
    pub fn with_protocol(mut self, protocol: Protocol) -> Snapshot {
        self.protocol = protocol;
        self
    }

    /// The shortest and the longest apex (lowercased wire names), which
    /// bound a closest-suffix walk.
    pub(crate) fn apex_len(&self) -> (usize, usize) {
        self.apex_len
    }

    /// The closest enclosing zone of a lowercased wire name.
    pub fn find_zone(&self, qname: &[u8]) -> Option<&Zone> {
        zone::closest_suffix(qname, self.apex_len, |s| self.zones.get(s)).map(|z| &**z)
    }

    /// The zone that answers `name`/`qtype` (lowercased wire name): the
    /// closest enclosing one, except that DS at a zone's apex is the
    /// parent's data (RFC 4035 §3.1.4.1), answered from the parent zone
    /// when we serve it too.
    pub fn zone_for(&self, name: &[u8], qtype: u16) -> Option<&Zone> {
        let zone = self.find_zone(name)?;
        if qtype == TYPE_DS
            && name.len() == zone.tree.apex_lower.len()
            && name.len() > 1
            && let Some(parent) = self.find_zone(&name[1 + name[0] as usize..])
        {
            return Some(parent);
        }
        Some(zone)
    }

    /// Looks a zone up by presentation name (`cdn.example` or `cdn.example.`).
    pub fn zone_named(&self, name: &str) -> Option<&Zone> {
        self.zones
            .values()
            .find(|z| {
                z.name
                    .trim_end_matches('.')
                    .eq_ignore_ascii_case(name.trim_end_matches('.'))
            })
            .map(|z| &**z)
    }
}

/// The handle every transport and the reloader share.
pub type Shared = Arc<ArcSwap<Snapshot>>;
