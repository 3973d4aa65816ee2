//! `GeoDb`: an opened, verified, immutable database and its allocation-free lookup.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use maxminddb::Reader;

use super::load::{Snapshot, load};
use super::record::{NestedRecord, RawRecord};
use super::tree::Tree;
use super::{GeoError, GeoMatch, Location, normalize};
use std::sync::Arc;

/// Record layout detected in a database.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum RecordSchema {
    /// GeoIP2/GeoLite2 City, Country, ASN: `country.iso_code`, `location.latitude`, ...
    Nested,
    /// DB-IP Lite / ip-location-db: `country_code`, `latitude`, `state1`, ...
    Flat,
}

/// Facts about an opened database, for logs, metrics and `geosteer geodb info`.
#[derive(Clone, Debug, serde::Serialize)]
pub struct GeoInfo {
    pub path: PathBuf,
    pub database_type: String,
    /// Unix seconds at which the database was built.
    pub build_epoch: u64,
    pub node_count: u32,
    pub record_size: u16,
    /// 4 or 6.
    pub ip_version: u16,
    pub schema: RecordSchema,
    pub languages: Vec<String>,
    /// The English description, if any.
    pub description: Option<String>,
    pub file_size: u64,
}

/// An opened MaxMind-format database. Immutable after [`GeoDb::open`]; `Send + Sync`.
pub struct GeoDb {
    /// Decodes records (on a cache miss) and serves `verify`/`within`.
    reader: Reader<Shared>,
    /// Walks the tree for every lookup (stride tables, see [`Tree`]).
    tree: Tree<Snapshot>,
    info: GeoInfo,
    /// Every distinct record's location, decoded once at open, as gdnsd
    /// computes its answers per network at load: a query walks the tree and
    /// probes this table, and never runs the serde decoder, so a client
    /// seen for the first time costs what a known one does.
    locations: Locations,
    /// Unique per opened DB, so record identities never mix DBs.
    id: u64,
    /// A second, ASN-only database (`geodb_asn:`) consulted for the ASN
    /// when this one's record has none.
    asn: Option<Arc<GeoDb>>,
}

/// Data offset → decoded location: open addressing with linear probing over
/// offsets (u32, 0 = empty slot since offset 0 is stored as 1), values in a
/// dense side array so empty slots cost 8 bytes, not a whole `Location`.
struct Locations {
    /// (offset + 1, index into `values`); a power-of-two length, at most
    /// half full.
    slots: Box<[(u32, u32)]>,
    values: Box<[Location]>,
}

impl Locations {
    fn build(found: Vec<(usize, Location)>) -> Locations {
        let cap = (found.len() * 2).next_power_of_two().max(16);
        let mut slots = vec![(0u32, 0u32); cap].into_boxed_slice();
        let mut values = Vec::with_capacity(found.len());
        for (offset, loc) in found {
            let key = offset as u32 + 1;
            let mut i = Self::home(key, cap);
            while slots[i].0 != 0 {
                i = (i + 1) & (cap - 1);
            }
            slots[i] = (key, values.len() as u32);
            values.push(loc);
        }
        Locations {
            slots,
            values: values.into_boxed_slice(),
        }
    }

    /// Fibonacci hashing: record offsets are often multiples of a record
    /// size, and the top bits of the product spread them over the slots.
    #[inline]
    fn home(key: u32, cap: usize) -> usize {
        (u64::from(key).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - cap.trailing_zeros())) as usize
    }

    #[inline]
    fn get(&self, offset: usize) -> Option<&Location> {
        self.index(offset).map(|v| &self.values[v as usize])
    }

    /// The record's position in `values`.
    #[inline]
    fn index(&self, offset: usize) -> Option<u32> {
        let key = offset as u32 + 1;
        let cap = self.slots.len();
        let mut i = Self::home(key, cap);
        loop {
            let (k, v) = self.slots[i];
            if k == key {
                return Some(v);
            }
            if k == 0 {
                return None;
            }
            i = (i + 1) & (cap - 1);
        }
    }
}

/// The snapshot bytes, shared by the reader and our own tree walker.
pub(crate) struct Shared(Arc<Snapshot>);

impl AsRef<[u8]> for Shared {
    fn as_ref(&self) -> &[u8] {
        self.0.as_ref().as_ref()
    }
}

/// One record identity for a (main, ASN) record pair, either missing: both
/// data offsets (the low 40 bits of a record id) plus one, packed side by
/// side, exact for data sections under 4 GiB and 1 GiB; beyond that a hash.
fn pair_id(main: Option<u64>, asn: Option<u64>) -> u64 {
    let part = |r: Option<u64>| r.map_or(0, |r| (r & ((1 << 40) - 1)) + 1);
    let (m, a) = (part(main), part(asn));
    if m < 1 << 32 && a < 1 << 30 {
        m | (a << 32)
    } else {
        (m.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ a).rotate_left(7) & ((1 << 62) - 1)
    }
}

/// The narrower of two walks' networks, or the one there is.
fn both(a: Option<(Option<u64>, IpNet)>, b: Option<(Option<u64>, IpNet)>) -> Option<IpNet> {
    match (a, b) {
        (Some((_, x)), Some((_, y))) => Some(narrower(x, y)),
        (Some((_, x)), None) | (None, Some((_, x))) => Some(x),
        (None, None) => None,
    }
}

/// The more specific of two networks holding the same address.
fn narrower(a: IpNet, b: IpNet) -> IpNet {
    if b.prefix_len() > a.prefix_len() && a.network().is_ipv4() == b.network().is_ipv4() {
        b
    } else {
        a
    }
}

/// Hands out [`GeoDb::id`]s.
static NEXT_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

impl std::fmt::Debug for GeoDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GeoDb").field("info", &self.info).finish()
    }
}

/// How many records the schema detection samples.
const SCHEMA_SAMPLE: usize = 256;

impl GeoDb {
    /// Snapshots `path` into private memory, verifies the whole database and detects its
    /// schema. Never uses a file that changed during the copy, and rejects corrupt trees,
    /// bad pointers, cyclic or too-deep data with [`GeoError::Invalid`].
    pub fn open(path: &Path) -> Result<GeoDb, GeoError> {
        let started = std::time::Instant::now();
        let started_cpu = cpu_now();
        let (snapshot, file_size) = load(path)?;
        let invalid = |reason: String| GeoError::Invalid {
            path: path.to_owned(),
            reason,
        };
        // maxminddb is meant to return errors on hostile input; catch_unwind is a second
        // line of defence so a reader bug on a corrupt file cannot take the server down.
        let opened = catch_unwind(AssertUnwindSafe(|| -> Result<_, String> {
            // A borrowed reader first, so the tree scan can see the raw bytes.
            let meta = Reader::from_source(snapshot.as_ref())
                .map_err(|e| e.to_string())?
                .metadata()
                .clone();
            scan_tree(snapshot.as_ref(), &meta)?;
            let scanned = cpu_now();
            let bytes = Arc::new(snapshot);
            let reader = Reader::from_source(Shared(bytes.clone())).map_err(|e| e.to_string())?;
            let m = reader.metadata();
            let tree = Tree::new(bytes, m.node_count, m.record_size, m.ip_version);
            // What maxminddb's `verify()` checks, in one visit of each node
            // instead of an iteration over every network (0.4 s of a 128 MB
            // file's open): the scan bounded every record, this walk finds
            // each distinct data record, and `decode_all` decodes each one
            // whole, following every pointer.
            let records = tree.records(m.ip_version)?;
            let verified = cpu_now();
            let schema = detect_schema(&reader, &records).map_err(|e| e.to_string())?;
            let strided = cpu_now();
            let locations = decode_all(&reader, &records, schema)?;
            let decoded = cpu_now();
            tracing::debug!(
                path = %path.display(),
                wall_ms = started.elapsed().as_millis() as u64,
                scan_cpu_ms = (scanned - started_cpu) * 1e3,
                walk_cpu_ms = (verified - scanned) * 1e3,
                schema_cpu_ms = (strided - verified) * 1e3,
                decode_cpu_ms = (decoded - strided) * 1e3,
                records = locations.values.len(),
                "geodb opened"
            );
            Ok((reader, tree, schema, locations))
        }));
        let (reader, tree, schema, locations) = match opened {
            Ok(Ok(v)) => v,
            Ok(Err(reason)) => return Err(invalid(reason)),
            Err(_) => return Err(invalid("reader panicked while verifying".into())),
        };
        let m = reader.metadata();
        let info = GeoInfo {
            path: path.to_owned(),
            database_type: m.database_type.clone(),
            build_epoch: m.build_epoch,
            node_count: m.node_count,
            record_size: m.record_size,
            ip_version: m.ip_version,
            schema,
            languages: m.languages.clone(),
            description: m.description.get("en").cloned(),
            file_size,
        };
        Ok(GeoDb {
            reader,
            tree,
            info,
            locations,
            id: NEXT_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            asn: None,
        })
    }

    /// This database with `asn` (a GeoLite2-ASN-format database) attached:
    /// lookups take the ASN from it when this one's record has none, and
    /// report the narrower of the two networks, since both decided.
    pub fn with_asn(mut self, asn: Arc<GeoDb>) -> GeoDb {
        self.asn = Some(asn);
        self
    }

    /// The attached ASN database, if any.
    pub fn asn_db(&self) -> Option<&GeoDb> {
        self.asn.as_deref()
    }

    /// Where `ip` falls in the tree, without decoding the record: (record
    /// identity as in [`GeoMatch::record`], matched network). `None` when
    /// the tree has no data for it. The steering path uses this and decodes
    /// only when it has not seen the record before.
    pub fn find(&self, ip: IpAddr) -> Option<(u64, IpNet)> {
        let Some(asn) = &self.asn else {
            return self.find_own(ip);
        };
        let (main, other) = (self.span(ip), asn.span(ip));
        let (mr, ar) = (main.and_then(|s| s.0), other.and_then(|s| s.0));
        if mr.is_none() && ar.is_none() {
            return None;
        }
        Some((pair_id(mr, ar), both(main, other)?))
    }

    /// [`GeoDb::find`] with the record's position in
    /// [`GeoDb::record_locations`] (None with a `geodb_asn:` database,
    /// whose record pairs have no such position).
    #[inline]
    pub fn find_indexed(&self, ip: IpAddr) -> Option<(u64, Option<u32>, IpNet)> {
        if self.asn.is_some() {
            return self.find(ip).map(|(r, n)| (r, None, n));
        }
        let (walk, network) = self.walk_net(normalize(ip))?;
        let offset = walk.offset?;
        Some((
            self.record_id(offset),
            self.locations.index(offset),
            network,
        ))
    }

    /// Every IPv4 network of the database in address order, as (first
    /// address, prefix length, the record's index in
    /// [`GeoDb::record_locations`] or `None` for no data): what
    /// [`GeoDb::find_indexed`] answers for every address in it. `false`
    /// (having called `f` for some networks, or none) for a database
    /// paired with a `geodb_asn:` one, whose records are not numbered.
    pub fn v4_networks(&self, mut f: impl FnMut(u32, u8, Option<u32>)) -> bool {
        if self.asn.is_some() {
            return false;
        }
        let mut whole = true;
        self.tree.v4_leaves(|first, len, offset| match offset {
            None => f(first, len, None),
            Some(o) => match self.locations.index(o) {
                Some(i) => f(first, len, Some(i)),
                // Every record the tree points to was decoded at open.
                None => whole = false,
            },
        });
        whole
    }

    /// The order cache's identity for record number `index`: unique per
    /// database, and apart from [`GeoDb::find_indexed`]'s offset-based ids
    /// (bit 39).
    pub fn index_key(&self, index: u32) -> u64 {
        (self.id << 40) ^ (1 << 39) ^ u64::from(index)
    }

    /// Every distinct record's location, decoded at open, in the order
    /// [`GeoDb::find_indexed`] numbers them; a record that says nothing we
    /// understand is `Location::default()`.
    pub fn record_locations(&self) -> &[Location] {
        &self.locations.values
    }

    /// Unique per opened database (and per main + ASN pair).
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Where `ip` falls in this database's own tree: the record, if any,
    /// and the network the walk ended in (data or not).
    fn span(&self, ip: IpAddr) -> Option<(Option<u64>, IpNet)> {
        let (walk, network) = self.walk_net(normalize(ip))?;
        Some((walk.offset.map(|o| self.record_id(o)), network))
    }

    fn find_own(&self, ip: IpAddr) -> Option<(u64, IpNet)> {
        let ip = normalize(ip);
        let (walk, network) = self.walk_net(ip)?;
        Some((self.record_id(walk.offset?), network))
    }

    fn record_id(&self, offset: usize) -> u64 {
        (self.id << 40) ^ offset as u64
    }

    /// The walk for a normalized address and the network it matched.
    fn walk_net(&self, ip: IpAddr) -> Option<(super::tree::Walk, IpNet)> {
        let walk = match ip {
            IpAddr::V4(a) => self.tree.v4(u32::from(a)),
            IpAddr::V6(a) => self.tree.v6(u128::from(a))?,
        };
        let network = match ip {
            IpAddr::V4(a) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(walk.prefix))
                    .unwrap_or(0);
                IpNet::V4(Ipv4Net::new(Ipv4Addr::from(u32::from(a) & mask), walk.prefix).ok()?)
            }
            IpAddr::V6(a) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(walk.prefix))
                    .unwrap_or(0);
                IpNet::V6(Ipv6Net::new(Ipv6Addr::from(u128::from(a) & mask), walk.prefix).ok()?)
            }
        };
        Some((walk, network))
    }

    /// Locates `ip` (after [`normalize`]). `None` when the address is not in the database
    /// or its record carries nothing we understand. Does not allocate.
    pub fn lookup(&self, ip: IpAddr) -> Option<GeoMatch> {
        let Some(asn) = &self.asn else {
            return self.lookup_own(ip);
        };
        let (own, other) = (self.lookup_own(ip), asn.lookup_own(ip));
        // Both databases decided, so the network is the narrower of where
        // each walk ended, whether or not it found data there.
        let network = both(self.span(ip), asn.span(ip))?;
        let record = pair_id(own.map(|m| m.record), other.map(|m| m.record));
        let mut location = own.map(|m| m.location).unwrap_or_default();
        location.asn = location.asn.or(other.and_then(|a| a.location.asn));
        (location != Location::default()).then_some(GeoMatch {
            location,
            network,
            record,
        })
    }

    fn lookup_own(&self, ip: IpAddr) -> Option<GeoMatch> {
        let ip = normalize(ip);
        let (walk, network) = self.walk_net(ip)?;
        let offset = walk.offset?;
        // Every record the tree points to was decoded at open.
        let location = *self.locations.get(offset)?;
        if location == Location::default() {
            return None;
        }
        Some(GeoMatch {
            location,
            network,
            record: self.record_id(offset),
        })
    }

    /// The maxminddb reader's own lookup: (data offset, network), for
    /// checking our walker against it.
    #[doc(hidden)]
    pub fn reference_lookup(&self, ip: IpAddr) -> (Option<usize>, Option<IpNet>) {
        let ip = normalize(ip);
        let Ok(r) = self.reader.lookup(ip) else {
            return (None, None);
        };
        let net = r
            .network()
            .ok()
            .and_then(|n| IpNet::new(n.ip(), n.prefix()).ok());
        (r.offset(), net)
    }

    /// Our walker's (data offset, prefix), for the same check.
    #[doc(hidden)]
    pub fn walk(&self, ip: IpAddr) -> (Option<usize>, u8) {
        let w = match normalize(ip) {
            IpAddr::V4(a) => self.tree.v4(u32::from(a)),
            IpAddr::V6(a) => match self.tree.v6(u128::from(a)) {
                Some(w) => w,
                None => return (None, 0),
            },
        };
        (w.offset, w.prefix)
    }

    /// Metadata and file facts.
    pub fn info(&self) -> &GeoInfo {
        &self.info
    }
}

/// The metadata marker; the spec limits the metadata section to the last 128 KiB.
const METADATA_MARKER: &[u8] = b"\xab\xcd\xefMaxMind.com";
const METADATA_MAX: usize = 128 * 1024;

/// Linear scan of every tree node, catching what a reachability walk cannot: a record
/// pointing back to the root (always a cycle), into the 16-byte separator, or past the
/// data section. With [`Tree::records`] (which visits each reachable node once) and the
/// whole-record decodes of `decode_all`, this is what maxminddb's `verify()` checks,
/// plus the nodes no walk reaches. O(node_count), a few ms per million nodes.
fn scan_tree(buf: &[u8], m: &maxminddb::Metadata) -> Result<(), String> {
    let node_count = m.node_count as usize;
    let node_bytes = usize::from(m.record_size) / 4;
    let tree_len = node_count
        .checked_mul(node_bytes)
        .filter(|&l| l <= buf.len())
        .ok_or("search tree extends beyond the file")?;
    let tail_start = buf
        .len()
        .saturating_sub(METADATA_MAX + METADATA_MARKER.len());
    let marker = buf[tail_start..]
        .windows(METADATA_MARKER.len())
        .rposition(|w| w == METADATA_MARKER)
        .map(|p| p + tail_start)
        .ok_or("no metadata marker in the last 128 KiB")?;
    let data_len = marker
        .checked_sub(tree_len + 16)
        .ok_or("search tree overlaps the metadata")?;
    if buf[tree_len..tree_len + 16].iter().any(|&b| b != 0) {
        return Err("the data section separator is not 16 zero bytes".into());
    }
    if m.database_type.is_empty() {
        return Err("metadata: database_type is empty".into());
    }
    let tree = &buf[..tree_len];
    // A record is bad unless it is a node other than the root, "no data"
    // (== node_count) or inside the data section.
    let ok = |rec: usize| {
        rec != 0
            && (rec <= node_count
                || rec
                    .checked_sub(node_count + 16)
                    .is_some_and(|d| d < data_len))
    };
    let bad = match m.record_size {
        24 => scan_records::<6>(tree, ok, |c| (be3(&c[0..3]), be3(&c[3..6]))),
        28 => scan_records::<7>(tree, ok, |c| {
            (
                be3(&c[0..3]) | (usize::from(c[3]) & 0xf0) << 20,
                be3(&c[4..7]) | (usize::from(c[3]) & 0x0f) << 24,
            )
        }),
        32 => scan_records::<8>(tree, ok, |c| {
            let w = |b: &[u8]| u32::from_be_bytes(b.try_into().expect("4 bytes")) as usize;
            (w(&c[0..4]), w(&c[4..8]))
        }),
        other => return Err(format!("unsupported record size {other}")),
    };
    let Some((node, rec)) = bad else {
        return Ok(());
    };
    let why = if rec == 0 {
        "points back to the root node (cycle)"
    } else if rec < node_count + 16 {
        "points into the data section separator"
    } else {
        "points beyond the data section"
    };
    Err(format!(
        "corrupt search tree: node {node} record {rec} {why}"
    ))
}

/// The first (node, record) of `tree` that `ok` rejects, nodes of `N` bytes
/// read by `split` into their two records. Generic over the size so the
/// loop has no dispatch; it only tests, and says why once.
fn scan_records<const N: usize>(
    tree: &[u8],
    ok: impl Fn(usize) -> bool,
    split: impl Fn(&[u8; N]) -> (usize, usize),
) -> Option<(usize, usize)> {
    let (nodes, _) = tree.as_chunks::<N>();
    nodes.iter().enumerate().find_map(|(node, c)| {
        let (left, right) = split(c);
        if !ok(left) {
            Some((node, left))
        } else if !ok(right) {
            Some((node, right))
        } else {
            None
        }
    })
}

fn be3(b: &[u8]) -> usize {
    usize::from(b[0]) << 16 | usize::from(b[1]) << 8 | usize::from(b[2])
}

/// Decodes and discards a whole value, following every pointer (unlike `IgnoredAny`).
struct DeepSkip;

impl<'de> serde::Deserialize<'de> for DeepSkip {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(DeepSkip)
    }
}

impl<'de> serde::de::Visitor<'de> for DeepSkip {
    type Value = DeepSkip;
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any value")
    }
    fn visit_bool<E>(self, _: bool) -> Result<DeepSkip, E> {
        Ok(DeepSkip)
    }
    fn visit_i64<E>(self, _: i64) -> Result<DeepSkip, E> {
        Ok(DeepSkip)
    }
    fn visit_u64<E>(self, _: u64) -> Result<DeepSkip, E> {
        Ok(DeepSkip)
    }
    fn visit_u128<E>(self, _: u128) -> Result<DeepSkip, E> {
        Ok(DeepSkip)
    }
    fn visit_f64<E>(self, _: f64) -> Result<DeepSkip, E> {
        Ok(DeepSkip)
    }
    fn visit_str<E>(self, _: &str) -> Result<DeepSkip, E> {
        Ok(DeepSkip)
    }
    fn visit_bytes<E>(self, _: &[u8]) -> Result<DeepSkip, E> {
        Ok(DeepSkip)
    }
    fn visit_unit<E>(self) -> Result<DeepSkip, E> {
        Ok(DeepSkip)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<DeepSkip, A::Error> {
        while seq.next_element::<DeepSkip>()?.is_some() {}
        Ok(DeepSkip)
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<DeepSkip, A::Error> {
        while map.next_entry::<DeepSkip, DeepSkip>()?.is_some() {}
        Ok(DeepSkip)
    }
}

/// Decodes every distinct record the tree points to, once (see
/// [`GeoDb::locations`]): `records` is [`Tree::records`], each record with
/// one address that leads to it; maxminddb decodes it through a lookup of
/// that address, first whole (every pointer followed, under the decoder's
/// depth and size limits: the verification) and then into our shape.
fn decode_all(
    reader: &Reader<Shared>,
    records: &[(usize, IpAddr)],
    schema: RecordSchema,
) -> Result<Locations, String> {
    let mut found = Vec::with_capacity(records.len());
    for &(offset, ip) in records {
        if offset >= u32::MAX as usize {
            return Err(format!("data offset {offset} does not fit 32 bits"));
        }
        let item = reader.lookup(ip).map_err(|e| e.to_string())?;
        if item.offset() != Some(offset) {
            return Err(format!(
                "tree walk and reader disagree for {ip}: {:?} vs {offset}",
                item.offset()
            ));
        }
        item.decode::<DeepSkip>()
            .map_err(|e| format!("record for {ip}: {e}"))?;
        // A record that does not decode into our shape (a field of another
        // type) locates nothing, as one we understand nothing of.
        let raw: Option<RawRecord<'_>> = match schema {
            RecordSchema::Nested => item
                .decode::<NestedRecord<'_>>()
                .ok()
                .flatten()
                .map(|n| n.0),
            RecordSchema::Flat => item.decode().ok().flatten(),
        };
        found.push((offset, raw.map(|r| r.location()).unwrap_or_default()));
    }
    Ok(Locations::build(found))
}

/// Samples the first records: flat-only keys make it `Flat`, anything else `Nested`
/// (including empty databases and ASN-only ones, whose key is shared by both).
fn detect_schema(
    reader: &Reader<Shared>,
    records: &[(usize, IpAddr)],
) -> Result<RecordSchema, maxminddb::MaxMindDbError> {
    let (mut flat, mut nested) = (0usize, 0usize);
    for &(_, ip) in records.iter().take(SCHEMA_SAMPLE) {
        let Some(raw) = reader.lookup(ip)?.decode::<RawRecord<'_>>()? else {
            continue;
        };
        flat += usize::from(raw.flat_shape && !raw.nested_shape);
        nested += usize::from(raw.nested_shape);
    }
    Ok(if flat > nested {
        RecordSchema::Flat
    } else {
        RecordSchema::Nested
    })
}

/// This thread's CPU time in seconds, for the open-time log line (wall
/// time on a busy machine says little).
fn cpu_now() -> f64 {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes the timespec we pass and nothing else.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut t) };
    t.tv_sec as f64 + t.tv_nsec as f64 / 1e9
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn geodb_is_send_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<GeoDb>();
    }
}
