//! The immutable runtime state (zones, steering, GeoIP DB), swapped whole.
//!
//! Readers load the current [`Snapshot`] once per query (or per batch) from
//! the [`Shared`] handle. Writers build a complete new snapshot on the
//! side, validate it, and swap it in; in-flight queries finish on the old
//! one, which is freed when its last reader drops it.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::SystemTime;

use arc_swap::ArcSwap;

use crate::dns::tree::Tree;
use crate::dns::wire;
use crate::geo::GeoDb;
use crate::steer::Steering;

/// One authoritative zone with its steering data.
#[derive(Debug)]
pub struct Zone {
    /// Presentation name, `cdn.example.`.
    pub name: String,
    pub tree: Tree,
    pub steering: Steering,
    /// The zone file it came from (and the pools file, if any).
    pub zone_file: PathBuf,
    pub pools_file: Option<PathBuf>,
}

/// Everything a query needs, immutable once built.
pub struct Snapshot {
    /// Keyed by the lowercased wire apex.
    pub zones: HashMap<Box<[u8]>, Arc<Zone>>,
    pub geodb: Option<Arc<GeoDb>>,
    /// Increments with every swap; shown in the status API.
    pub generation: u64,
    pub built_at: SystemTime,
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
    pub fn new(zones: Vec<Zone>, geodb: Option<Arc<GeoDb>>, generation: u64) -> Snapshot {
        Snapshot {
            zones: zones
                .into_iter()
                .map(|z| (z.tree.apex_lower.clone(), Arc::new(z)))
                .collect(),
            geodb,
            generation,
            built_at: SystemTime::now(),
        }
    }

    /// The closest enclosing zone of a lowercased wire name.
    pub fn find_zone(&self, qname: &[u8]) -> Option<&Zone> {
        let mut offs = [0u8; 128];
        let n = wire::label_offsets(qname, &mut offs);
        offs[..n]
            .iter()
            .map(|&o| &qname[o as usize..])
            .chain(std::iter::once(&b"\0"[..]))
            .find_map(|suffix| self.zones.get(suffix))
            .map(|z| &**z)
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
