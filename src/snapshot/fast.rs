//! The table of pre-rendered answers a snapshot carries: data only.
//! [`crate::dns::fast`] fills it when a snapshot is built (by answering
//! every (name, type) once through the general path) and reads it; the
//! NXDOMAIN and NODATA answers of each zone come from [`crate::dns::negative`].

use std::collections::HashMap;
use std::hash::BuildHasherDefault;
use std::sync::Arc;

use super::Zone;
use crate::steer::Family;
use crate::wire::Rcode;
use crate::zone::tree::NameHasher;

/// The sections after the question, rendered once.
#[derive(Debug)]
pub(crate) struct Static {
    pub(crate) rcode: Rcode,
    pub(crate) aa: bool,
    /// Answer, authority and additional counts (without our OPT).
    pub(crate) counts: [u16; 3],
    pub(crate) body: Box<[u8]>,
    /// The zone is signed: DO=1 queries get `secure`, or the general path.
    pub(crate) signed: bool,
    /// The DO=1 answer with its RRSIGs (and NSEC for NODATA).
    pub(crate) secure: Option<Box<Secure>>,
}

/// A signed pre-rendered answer.
#[derive(Debug)]
pub(crate) struct Secure {
    pub(crate) rcode: Rcode,
    pub(crate) aa: bool,
    pub(crate) counts: [u16; 3],
    pub(crate) body: Box<[u8]>,
    /// Unix time from which the general path answers instead: when the
    /// signature cache would make its RRSIGs again.
    pub(crate) fresh_until: u64,
}

/// What the table holds for one (name, type).
#[derive(Debug)]
pub(crate) enum Entry {
    Static(Static),
    /// A or AAAA of a steered name, asked directly (not through a CNAME).
    Steered {
        zone: Arc<Zone>,
        host: u32,
        family: Family,
    },
}

/// A zone's pre-rendered NXDOMAIN/NODATA sections after the question (its
/// SOA with the negative TTL), filled by [`crate::dns::negative::build`].
#[derive(Debug)]
pub(crate) struct Negative {
    pub(crate) zone: Arc<Zone>,
    /// `*.<apex>` exists: no name directly below the apex is NXDOMAIN.
    pub(crate) apex_wildcard: bool,
    /// As rendered behind a dummy question.
    pub(crate) tail: Box<[u8]>,
    /// Compression pointers in `tail`: (offset, target minus the question
    /// name's length), as the question's apex and the tail both move with it.
    pub(crate) patch: Box<[(u16, u16)]>,
    /// Longest question (in labels) whose pointers come out the same.
    pub(crate) max_labels: u8,
    /// Lowercased suffixes of MNAME and RNAME below the apex: a question
    /// ending in one would be compressed against, so it is not answered here.
    pub(crate) below_apex: Box<[Box<[u8]>]>,
}

/// [`Negative`]s by lowercased apex, one entry for each zone of the
/// snapshot, so the closest enclosing zone is found here as
/// [`super::Snapshot::find_zone`] finds it.
#[derive(Debug, Default)]
pub(crate) struct Negatives {
    pub(crate) by_apex: HashMap<Box<[u8]>, Option<Negative>, BuildHasherDefault<NameHasher>>,
    /// Shortest and longest apex, as the snapshot keeps them.
    pub(crate) apex_len: (usize, usize),
}

impl Negatives {
    /// The entry of the closest enclosing zone of a lowercased wire name:
    /// the walk of [`super::Snapshot::find_zone`] over the same apexes.
    #[inline]
    pub(crate) fn find(&self, qname: &[u8]) -> Option<&Option<Negative>> {
        super::closest_suffix(qname, self.apex_len, |s| self.by_apex.get(s))
    }
}

/// Pre-rendered answers of one snapshot, keyed by lowercased wire name
/// followed by the big-endian query type.
#[derive(Debug, Default)]
pub struct FastTable {
    pub(crate) map: HashMap<Box<[u8]>, Entry, BuildHasherDefault<NameHasher>>,
    /// Negative answers of every zone (`None`: they are left to the
    /// general path).
    pub(crate) negative: Negatives,
    /// Bytes held by static bodies, for the status API and tests.
    pub bytes: usize,
}

impl FastTable {
    /// Number of pre-rendered (name, type) pairs.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}
