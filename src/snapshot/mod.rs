//! The immutable runtime state (zones, steering, GeoIP DB), swapped whole.
//!
//! Readers load the current [`Snapshot`] once per query (or per batch) from
//! the [`Shared`] handle. Writers build a complete new snapshot on the
//! side, validate it, and swap it in; in-flight queries finish on the old
//! one, which is freed when its last reader drops it.

pub mod fast;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::SystemTime;

use arc_swap::ArcSwap;

use fast::FastTable;

use crate::geo::GeoDb;
use crate::protocol::Protocol;
use crate::steer::Steering;
use crate::wire;
use crate::zone::tree::{NameMap, Tree};

/// One authoritative zone with its steering data.
#[derive(Debug)]
pub struct Zone {
    /// Presentation name, `cdn.example.`.
    pub name: String,
    pub tree: Tree,
    pub steering: Steering,
    /// Keys and signing policy, for a signed zone.
    pub dnssec: Option<Arc<crate::dnssec::ZoneSigner>>,
    /// The zone file it came from (and the pools file, if any).
    pub zone_file: PathBuf,
    pub pools_file: Option<PathBuf>,
    /// Steered-answer counters, made with the zone.
    pub counters: crate::metrics::SteerCounters,
    /// HTTPS/SVCB templates of steered hosts (pools file).
    pub svcb: Vec<crate::zone::svcb::Template>,
    /// Each edge's `rum_url` (pools file), by edge index.
    pub rum_urls: Vec<Option<Box<str>>>,
}

impl Zone {
    /// The steered HTTPS (65) or SVCB (64) template of host `host`.
    pub fn svcb_template(&self, host: u32, rtype: u16) -> Option<&crate::zone::svcb::Template> {
        self.svcb
            .iter()
            .find(|t| t.host == host && t.rtype == rtype)
    }
}

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
        closest_suffix(qname, self.apex_len, |s| self.zones.get(s)).map(|z| &**z)
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

/// What `get` knows for the longest suffix of the wire name `qname` (the
/// closest enclosing zone). `apex_len` bounds the apex lengths: suffixes
/// longer than every apex are skipped without hashing, and past the
/// shortest one the walk stops.
#[inline]
pub(crate) fn closest_suffix<'a, T>(
    qname: &[u8],
    (min, max): (usize, usize),
    get: impl Fn(&[u8]) -> Option<&'a T>,
) -> Option<&'a T> {
    // Walk the labels from the left: the first suffix that is an apex is
    // the closest enclosing zone.
    let mut pos = 0usize;
    while pos < qname.len() {
        let suffix = &qname[pos..];
        if suffix.len() < min {
            break;
        }
        if suffix.len() <= max
            && let Some(v) = get(suffix)
        {
            return Some(v);
        }
        if qname[pos] == 0 {
            break;
        }
        pos += 1 + qname[pos] as usize;
    }
    None
}
