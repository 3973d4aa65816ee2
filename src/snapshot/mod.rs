//! The immutable runtime state (zones, steering, GeoIP DB), swapped whole.
//!
//! Readers load the current [`Snapshot`] once per query (or per batch) from
//! the [`Shared`] handle. Writers build a complete new snapshot on the
//! side, validate it, and swap it in; in-flight queries finish on the old
//! one, which is freed when its last reader drops it.

pub mod fast;
mod zone;

pub use zone::Zone;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::SystemTime;

use arc_swap::ArcSwap;

use fast::FastTable;

use crate::geo::GeoDb;
use crate::protocol::Protocol;
use crate::wire::{self, TYPE_DS};
use crate::zone::tree::NameMap;

/// A zone whose files have never loaded: queries in it are answered
/// SERVFAIL (as Knot answers for a zone that failed to load) until they do.
#[derive(Debug, Clone)]
pub struct Unloaded {
    /// Lowercased wire apex.
    pub apex: Box<[u8]>,
    /// Presentation name, `cdn.example.`.
    pub name: String,
    pub zone_file: PathBuf,
    /// A secondary zone without a copy (none transferred yet, or expired):
    /// "not ready" rather than "invalid data".
    pub awaiting_transfer: bool,
}

/// Everything a query needs, immutable once built.
pub struct Snapshot {
    /// Keyed by the lowercased wire apex.
    pub zones: NameMap<Arc<Zone>>,
    /// Zones configured but not loaded, by lowercased wire apex.
    pub unloaded: NameMap<Unloaded>,
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
        let zones = zones.into_iter().map(Arc::new).collect();
        Snapshot::assemble(zones, Vec::new(), geodb, generation)
    }

    /// A snapshot of zones built (or kept) by the reloader, and of zones
    /// that did not load; of two zones with one apex the first is served.
    pub fn assemble(
        zones: Vec<Arc<Zone>>,
        unloaded: Vec<Unloaded>,
        geodb: Option<Arc<GeoDb>>,
        generation: u64,
    ) -> Snapshot {
        let lens = zones
            .iter()
            .map(|z| z.tree.apex_lower.len())
            .chain(unloaded.iter().map(|u| u.apex.len()));
        let apex_len = (lens.clone().min().unwrap_or(0), lens.max().unwrap_or(0));
        let mut map = NameMap::default();
        for z in zones {
            map.entry(z.tree.apex_lower.clone()).or_insert(z);
        }
        let unloaded = unloaded
            .into_iter()
            .filter(|u| !map.contains_key(&u.apex))
            .map(|u| (u.apex.clone(), u))
            .collect();
        Snapshot {
            zones: map,
            unloaded,
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

    /// The closest enclosing zone of a lowercased wire name; `None` also
    /// when the closest is one that did not load ([`Snapshot::unloaded_zone`]).
    pub fn find_zone(&self, qname: &[u8]) -> Option<&Zone> {
        if self.unloaded.is_empty() {
            return zone::closest_suffix(qname, self.apex_len, |s| self.zones.get(s)).map(|z| &**z);
        }
        self.closest(qname)?.ok()
    }

    /// The closest enclosing zone of a lowercased wire name, when it is
    /// one that did not load.
    pub fn unloaded_zone(&self, qname: &[u8]) -> Option<&Unloaded> {
        if self.unloaded.is_empty() {
            return None;
        }
        self.closest(qname)?.err()
    }

    /// The closest enclosing zone, loaded or not.
    fn closest(&self, qname: &[u8]) -> Option<Result<&Zone, &Unloaded>> {
        // closest_suffix hands back a reference to what it found: the key.
        #[allow(clippy::borrowed_box)]
        let apex: &Box<[u8]> = zone::closest_suffix(qname, self.apex_len, |s| {
            match self.zones.get_key_value(s) {
                Some((k, _)) => Some(k),
                None => self.unloaded.get_key_value(s).map(|(k, _)| k),
            }
        })?;
        Some(match self.zones.get(&**apex) {
            Some(z) => Ok(&**z),
            None => Err(self.unloaded.get(&**apex)?),
        })
    }

    /// The zone that answers `name`/`qtype` (lowercased wire name): the
    /// closest enclosing one, except that DS at a zone's apex is the
    /// parent's data (RFC 4035 §3.1.4.1), answered from the parent zone
    /// when we serve it too (even when the child did not load, as Knot).
    pub fn zone_for(&self, name: &[u8], qtype: u16) -> Option<&Zone> {
        let apex_len = match self.find_zone(name) {
            Some(zone) => zone.tree.apex_lower.len(),
            None => self.unloaded_zone(name)?.apex.len(),
        };
        if qtype == TYPE_DS
            && name.len() == apex_len
            && name.len() > 1
            && let Some(parent) = self.find_zone(&name[1 + name[0] as usize..])
        {
            return Some(parent);
        }
        self.find_zone(name)
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
