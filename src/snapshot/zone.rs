//! One authoritative zone as a snapshot holds it, and how a name finds
//! its closest enclosing zone.

use std::path::PathBuf;
use std::sync::Arc;

use crate::steer::Steering;
use crate::zone::tree::Tree;

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
