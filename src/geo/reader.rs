//! `GeoDb`: an opened, verified database, read once into the network table
//! ([`super::table`]) and the distinct locations, then let go of: a lookup
//! is a range search, allocation-free, and no record is decoded after open.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use maxminddb::Reader;

use super::code::Code;
use super::decoder::Plain;
use super::load::load;
use super::location::{GeoError, GeoMatch, Location, normalize};
use super::record::{NestedRecord, RawRecord};
use super::table::{self, Builder, LocId, MAX_LOCATIONS, NOWHERE, Ranges, UNLOCATED, V4_AT, Value};
use super::tree::{Leaf, Tree};

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

/// An opened MaxMind-format database: the database stage of steering,
/// rebuilt only when the file changes. Immutable; `Send + Sync`.
pub struct GeoDb {
    info: GeoInfo,
    /// IPv4 networks (the IPv4 subtree of an IPv6 database).
    v4: Ranges<u32>,
    /// IPv6 networks; `None` for an IPv4-only database, which locates no
    /// IPv6 address.
    v6: Option<Ranges<u128>>,
    /// Every distinct location the networks lead to (equal records, as
    /// far as steering reads them, are one location).
    locations: Box<[Location]>,
    /// Per location, its point in `points`, or [`NO_POINT`] without
    /// coordinates.
    point_of: Box<[u32]>,
    /// Every distinct coordinate pair, as a point on the unit sphere.
    points: Box<[[f64; 3]]>,
    /// Unique per opened database (and per main + ASN pair).
    id: u64,
    /// A second, ASN-only database (`geodb_asn:`) merged into this one's
    /// networks: an address's ASN comes from it when this one has none.
    asn: Option<Arc<GeoDb>>,
}

/// [`GeoDb::point`] of a location without coordinates.
const NO_POINT: u32 = u32::MAX;

/// A location as a hash key (coordinates by their bits).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
struct LocKey {
    codes: [Option<Code>; 3],
    coords: Option<(u64, u64)>,
    asn: Option<u32>,
}

impl From<&Location> for LocKey {
    fn from(l: &Location) -> LocKey {
        LocKey {
            codes: [l.continent, l.country, l.subdivision],
            coords: l.coords.map(|c| (c.lat.to_bits(), c.lon.to_bits())),
            asn: l.asn,
        }
    }
}

/// Distinct locations as they are found (their points are found in
/// [`points`], once the database file is let go of).
#[derive(Default)]
struct Places {
    /// Ids by their key's hash (16 bytes an entry where the key itself
    /// took 60: this map is most of what open holds besides the tables).
    /// The location found is compared with the one asked for; keys whose
    /// hashes collide go to `collided`.
    ids: FxMap<u64, LocId>,
    collided: FxMap<LocKey, LocId>,
    locations: Vec<Location>,
}

impl Places {
    /// The id of `loc` (None for a location that says nothing we read).
    fn id(&mut self, loc: Location) -> Result<Option<LocId>, String> {
        if loc == Location::default() {
            return Ok(None);
        }
        let key = LocKey::from(&loc);
        let hash = std::hash::BuildHasher::hash_one(&FxBuild::default(), key);
        let held = self.ids.get(&hash).copied();
        if let Some(id) = held {
            if LocKey::from(&self.locations[id as usize]) == key {
                return Ok(Some(id));
            }
            if let Some(&id) = self.collided.get(&key) {
                return Ok(Some(id));
            }
        }
        if self.locations.len() >= MAX_LOCATIONS {
            return Err(format!("more than {MAX_LOCATIONS} distinct locations"));
        }
        let id = self.locations.len() as LocId;
        if held.is_some() {
            self.collided.insert(key, id);
        } else {
            self.ids.insert(hash, id);
        }
        self.locations.push(loc);
        Ok(Some(id))
    }

    /// The locations, by id; the maps that found them let go of.
    fn into_locations(self) -> Vec<Location> {
        self.locations
    }
}

/// Each location's point ([`NO_POINT`] without coordinates) and the
/// distinct points on the unit sphere. Done after the walk, when the file
/// and the walk's maps are gone, so this map is not held beside them at
/// the build's peak.
fn points(locations: &[Location]) -> (Box<[u32]>, Box<[[f64; 3]]>) {
    let mut ids: FxMap<(u64, u64), u32> = FxMap::default();
    let mut units = Vec::new();
    let point_of = locations
        .iter()
        .map(|l| match l.coords {
            Some(c) => *ids
                .entry((c.lat.to_bits(), c.lon.to_bits()))
                .or_insert_with(|| {
                    units.push(c.unit());
                    units.len() as u32 - 1
                }),
            None => NO_POINT,
        })
        .collect();
    (point_of, units.into_boxed_slice())
}

/// A multiply-rotate hasher (FxHash's): the build hashes a data offset per
/// leaf (millions) and a location per record, where SipHash was a third of
/// the time. Keys come from the file, but a collision only costs time, and
/// the table is rebuilt per open.
#[derive(Default, Clone, Copy)]
struct Fx(u64);

impl std::hash::Hasher for Fx {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for c in bytes.chunks(8) {
            let mut w = [0u8; 8];
            w[..c.len()].copy_from_slice(c);
            self.write_u64(u64::from_le_bytes(w));
        }
    }
    fn write_u8(&mut self, i: u8) {
        self.write_u64(u64::from(i));
    }
    fn write_u32(&mut self, i: u32) {
        self.write_u64(u64::from(i));
    }
    fn write_u64(&mut self, i: u64) {
        self.0 = (self.0.rotate_left(5) ^ i).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
    fn write_usize(&mut self, i: usize) {
        self.write_u64(i as u64);
    }
}

type FxBuild = std::hash::BuildHasherDefault<Fx>;
type FxMap<K, V> = HashMap<K, V, FxBuild>;

/// Hands out [`GeoDb::id`]s.
static NEXT_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

impl std::fmt::Debug for GeoDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GeoDb").field("info", &self.info).finish()
    }
}

/// How many records the schema detection samples.
const SCHEMA_SAMPLE: usize = 256;

/// A leaf's value: its location (an empty leaf, or a record that says
/// nothing we read, keeps only its prefix, which a merge with an ASN
/// database needs).
fn leaf_value(loc: Option<LocId>, prefix: u8) -> Value {
    table::value(loc.unwrap_or(NOWHERE), prefix)
}

impl GeoDb {
    /// Snapshots `path` into private memory, verifies the whole database and
    /// reads its networks and locations; the snapshot is let go of before
    /// this returns. Never uses a file that changed during the copy, and
    /// rejects corrupt trees, bad pointers, cyclic or too-deep data with
    /// [`GeoError::Invalid`].
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
            let bytes = snapshot.as_ref();
            let reader = Reader::from_source(bytes).map_err(|e| e.to_string())?;
            let m = reader.metadata().clone();
            let release = |r: std::ops::Range<usize>| snapshot.release(r);
            let data = scan_tree(bytes, &m, &release)?;
            let scanned = cpu_now();
            let tree =
                Tree::new(bytes, m.node_count, m.record_size, m.ip_version).releasing(&release);
            let schema = detect_schema(&reader, &tree)?;
            let mut records = Records::new(&reader, &bytes[data], schema);
            let read = read_networks(&mut records, &tree, m.node_count as usize)?;
            let done = cpu_now();
            tracing::debug!(
                path = %path.display(),
                wall_ms = started.elapsed().as_millis() as u64,
                scan_cpu_ms = (scanned - started_cpu) * 1e3,
                read_cpu_ms = (done - scanned) * 1e3,
                locations = read.places.locations.len(),
                v4_ranges = read.v4.len(),
                v6_ranges = read.v6.as_ref().map_or(0, Ranges::len),
                "geodb opened"
            );
            Ok((m, schema, read))
        }));
        let (m, schema, read) = match opened {
            Ok(Ok(v)) => v,
            Ok(Err(reason)) => return Err(invalid(reason)),
            Err(_) => return Err(invalid("reader panicked while verifying".into())),
        };
        drop(snapshot);
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
        Ok(GeoDb::from_parts(info, read.v4, read.v6, read.places, None))
    }

    fn from_parts(
        info: GeoInfo,
        v4: Ranges<u32>,
        v6: Option<Ranges<u128>>,
        places: Places,
        asn: Option<Arc<GeoDb>>,
    ) -> GeoDb {
        let locations = places.into_locations();
        let (point_of, points) = points(&locations);
        GeoDb {
            info,
            v4,
            v6,
            locations: locations.into_boxed_slice(),
            point_of,
            points,
            id: NEXT_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            asn,
        }
    }

    /// This database with `asn` (a GeoLite2-ASN-format database) merged in:
    /// its networks cut this one's, an address's ASN comes from it when
    /// this one's record has none, and the network is the narrower of the
    /// two (both decided).
    pub fn with_asn(self, asn: Arc<GeoDb>) -> GeoDb {
        let mut places = Places::default();
        let mut pairs: FxMap<(LocId, LocId), Option<LocId>> = FxMap::default();
        let mut merge = |a: Value, b: Value, places: &mut Places| -> Value {
            if table::v4_at(a).is_some() || table::v4_at(b).is_some() {
                // The IPv4 subtree inside IPv6: both look up IPv4.
                return if table::v4_at(a).is_some() { a } else { b };
            }
            let (la, pa) = (a >> 8, a as u8);
            let (lb, pb) = (b >> 8, b as u8);
            let id = *pairs.entry((la, lb)).or_insert_with(|| {
                let mut loc = self.location_of(la).copied().unwrap_or_default();
                loc.asn = loc.asn.or(asn.location_of(lb).and_then(|l| l.asn));
                places
                    .id(loc)
                    .expect("no more locations than the two databases have pairs")
            });
            leaf_value(id, pa.max(pb))
        };
        let mut v4 = Builder::with_capacity(self.v4.len() + asn.v4.len());
        table::overlay(&self.v4, &asn.v4, |s, a, b| {
            v4.push(s, merge(a, b, &mut places))
        });
        let none = Builder::<u128>::empty(leaf_value(None, 0));
        let v6 = match (&self.v6, &asn.v6) {
            (None, None) => None,
            (a, b) => {
                let (a, b) = (a.as_ref().unwrap_or(&none), b.as_ref().unwrap_or(&none));
                let mut v6 = Builder::with_capacity(a.len() + b.len());
                table::overlay(a, b, |s, x, y| v6.push(s, merge(x, y, &mut places)));
                Some(v6.finish())
            }
        };
        let info = self.info.clone();
        GeoDb::from_parts(info, v4.finish(), v6, places, Some(asn))
    }

    /// The attached ASN database, if any.
    pub fn asn_db(&self) -> Option<&GeoDb> {
        self.asn.as_deref()
    }

    /// Unique per opened database (and per main + ASN pair).
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Where `ip` is (after [`normalize`]): its location and the prefix
    /// length of the database network that says so; `None` when the
    /// database does not locate it. One range search, no allocation.
    #[inline]
    pub fn locate(&self, ip: IpAddr) -> Option<(LocId, u8)> {
        table::located(self.value(normalize(ip)))
    }

    /// The value of the range holding `ip` (already normalized). Always
    /// inlined, like [`table::Ranges::find`] it wraps (a call a query).
    #[inline(always)]
    fn value(&self, ip: IpAddr) -> Value {
        match ip {
            IpAddr::V4(a) => self.v4.get(u32::from(a)),
            IpAddr::V6(a) => {
                let Some(v6) = &self.v6 else {
                    return UNLOCATED;
                };
                let a = u128::from(a);
                let v = v6.get(a);
                let Some(at) = table::v4_at(v) else {
                    return v;
                };
                // The IPv4 subtree after `at` bits: its 32 bits from there.
                let Some(shift) = 96u32.checked_sub(u32::from(at)) else {
                    return UNLOCATED;
                };
                let v4 = self.v4.get((a >> shift) as u32);
                match table::located(v4) {
                    Some((loc, p)) => table::value(loc, p + at),
                    None => v4,
                }
            }
        }
    }

    /// Location `id`.
    #[inline]
    pub fn location(&self, id: LocId) -> &Location {
        &self.locations[id as usize]
    }

    fn location_of(&self, id: LocId) -> Option<&Location> {
        self.locations.get(id as usize)
    }

    /// Every distinct location, by id.
    pub fn locations(&self) -> &[Location] {
        &self.locations
    }

    /// Location `id`'s point (an index into [`GeoDb::points`]), if it has
    /// coordinates.
    #[inline]
    pub fn point(&self, id: LocId) -> Option<u32> {
        let p = self.point_of[id as usize];
        (p != NO_POINT).then_some(p)
    }

    /// Every distinct coordinate pair, as a point on the unit sphere
    /// ([`Coords::unit`]).
    pub fn points(&self) -> &[[f64; 3]] {
        &self.points
    }

    /// Locates `ip` (after [`normalize`]) with the network that matched.
    /// `None` when the address is not in the database or its record
    /// carries nothing we understand. Does not allocate.
    pub fn lookup(&self, ip: IpAddr) -> Option<GeoMatch> {
        let ip = normalize(ip);
        let (loc, prefix) = table::located(self.value(ip))?;
        Some(GeoMatch {
            location: self.locations[loc as usize],
            network: network(ip, prefix),
            loc,
        })
    }

    /// How many ranges each family's table holds and their bytes, for logs
    /// and benchmarks.
    pub fn table_stats(&self) -> (usize, usize, usize) {
        let v6 = self.v6.as_ref();
        (
            self.v4.len(),
            v6.map_or(0, Ranges::len),
            self.v4.bytes() + v6.map_or(0, Ranges::bytes),
        )
    }

    /// Metadata and file facts.
    pub fn info(&self) -> &GeoInfo {
        &self.info
    }
}

/// `ip`'s network of `prefix` bits.
pub(crate) fn network(ip: IpAddr, prefix: u8) -> IpNet {
    match ip {
        IpAddr::V4(a) => IpNet::V4(Ipv4Net::new_assert(a, prefix.min(32)).trunc()),
        IpAddr::V6(a) => IpNet::V6(Ipv6Net::new_assert(a, prefix.min(128)).trunc()),
    }
}

/// What one pass over the tree read.
struct Read {
    v4: Ranges<u32>,
    v6: Option<Ranges<u128>>,
    places: Places,
}

/// Walks both families' leaves once: every distinct record is verified
/// (decoded whole, every pointer followed) and decoded into a location
/// the first time a leaf leads to it; neighbouring leaves alike become
/// one range.
fn read_networks(
    records: &mut Records<'_>,
    tree: &Tree<'_>,
    node_count: usize,
) -> Result<Read, String> {
    let mut places = Places::default();
    // Data offset -> location ([`NOWHERE`]: it says nothing we read); only
    // while reading. Neighbouring leaves often share a record: the last
    // one is kept at hand.
    let mut seen: FxMap<u32, LocId> = FxMap::default();
    // A small direct-mapped cache in front of it: leaves near each other
    // come back to a few records, and the map's probes are cache misses
    // (they were most of the walk's time).
    const NEAR: usize = 4096;
    let mut near = vec![(u32::MAX, NOWHERE); NEAR];
    let slot = |o: u32| (u64::from(o).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 52) as usize;
    let mut last: Option<(usize, LocId)> = None;
    let mut error = None;
    let mut value = |ip: IpAddr, prefix: u8, leaf: Leaf, places: &mut Places| -> Option<Value> {
        let offset = match leaf {
            Leaf::Empty => return Some(leaf_value(None, prefix)),
            Leaf::V4 => return Some(table::value(V4_AT, prefix)),
            Leaf::Data(o) => o,
        };
        if let Some((o, loc)) = last
            && o == offset
        {
            return Some(table::value(loc, prefix));
        }
        let Ok(key) = u32::try_from(offset) else {
            error = Some(format!("data offset {offset} does not fit 32 bits"));
            return None;
        };
        let at = slot(key);
        let loc = match near[at] {
            (k, loc) if k == key => loc,
            _ => match seen.get(&key) {
                Some(&loc) => loc,
                None => match records.location(ip, offset).and_then(|l| places.id(l)) {
                    Ok(loc) => {
                        let loc = loc.unwrap_or(NOWHERE);
                        seen.insert(key, loc);
                        loc
                    }
                    Err(e) => {
                        error = Some(e);
                        return None;
                    }
                },
            },
        };
        near[at] = (key, loc);
        last = Some((offset, loc));
        Some(table::value(loc, prefix))
    };
    // At most one range per node and one more: capacity never touched
    // is never resident.
    let mut v4 = Builder::with_capacity(node_count + 1);
    tree.v4_leaves(|first, len, leaf| {
        match value(IpAddr::V4(Ipv4Addr::from(first)), len, leaf, &mut places) {
            Some(v) => {
                v4.push(first, v);
                true
            }
            None => false,
        }
    })?;
    let v4 = v4.finish();
    let v6 = if tree.is_v6() {
        let mut v6 = Builder::with_capacity(node_count + 1);
        tree.v6_leaves(|first, len, leaf| {
            match value(IpAddr::V6(Ipv6Addr::from(first)), len, leaf, &mut places) {
                Some(v) => {
                    v6.push(first, v);
                    true
                }
                None => false,
            }
        })?;
        Some(v6.finish())
    } else {
        None
    };
    if let Some(e) = error {
        return Err(e);
    }
    Ok(Read { v4, v6, places })
}

/// The records of one database, read at open.
struct Records<'a> {
    reader: &'a Reader<&'a [u8]>,
    /// The data section's records read where they are (nested schema).
    plain: Plain<'a>,
    schema: RecordSchema,
}

impl<'a> Records<'a> {
    /// The records of `data` (the data section) that `reader` reads too.
    fn new(reader: &'a Reader<&'a [u8]>, data: &'a [u8], schema: RecordSchema) -> Self {
        Records {
            reader,
            plain: Plain::new(data),
            schema,
        }
    }

    /// Record `offset`, which a lookup of `ip` leads to, read as the
    /// schema. A corrupt record (a bad pointer, a bad type code, data past
    /// the section) refuses the database; one that decodes but not into
    /// our shape (a field of another type) locates nothing, as one we
    /// understand nothing of.
    ///
    /// A nested record is read where it is ([`super::decoder`]); only one
    /// that is not plain is looked up again through maxminddb, whose
    /// decoder decides. The fields steering does not read are skipped, not
    /// verified: a record is read once, here, and nothing reads it again.
    fn location(&mut self, ip: IpAddr, offset: usize) -> Result<Location, String> {
        match self.plain(offset) {
            Some(l) => Ok(l),
            None => self.careful(ip, offset),
        }
    }

    /// A nested record read where it is, if it is plain.
    fn plain(&mut self, offset: usize) -> Option<Location> {
        if self.schema != RecordSchema::Nested {
            return None;
        }
        self.plain.record(offset).ok().map(|r| r.location())
    }

    /// The record looked up and decoded by maxminddb.
    fn careful(&self, ip: IpAddr, offset: usize) -> Result<Location, String> {
        let item = self.reader.lookup(ip).map_err(|e| e.to_string())?;
        if item.offset() != Some(offset) {
            return Err(format!(
                "tree walk and reader disagree for {ip}: {:?} vs {offset}",
                item.offset()
            ));
        }
        let raw: Result<Option<RawRecord<'_>>, _> = match self.schema {
            RecordSchema::Nested => item.decode::<NestedRecord<'_>>().map(|r| r.map(|n| n.0)),
            RecordSchema::Flat => item.decode(),
        };
        match raw {
            Ok(raw) => Ok(raw.map(|r| r.location()).unwrap_or_default()),
            Err(maxminddb::MaxMindDbError::Decoding { .. }) => Ok(Location::default()),
            Err(e) => Err(format!("record for {ip}: {e}")),
        }
    }
}

/// Samples the first records: flat-only keys make it `Flat`, anything else `Nested`
/// (including empty databases and ASN-only ones, whose key is shared by both).
fn detect_schema(reader: &Reader<&[u8]>, tree: &Tree<'_>) -> Result<RecordSchema, String> {
    let mut sample: Vec<IpAddr> = Vec::new();
    let mut offsets = std::collections::HashSet::new();
    let mut take = |ip: IpAddr, leaf: Leaf| {
        if let Leaf::Data(o) = leaf
            && offsets.insert(o)
        {
            sample.push(ip);
        }
        offsets.len() < SCHEMA_SAMPLE
    };
    let mut more = true;
    tree.v4_leaves(|a, _, leaf| {
        more = take(IpAddr::V4(Ipv4Addr::from(a)), leaf);
        more
    })?;
    if more {
        tree.v6_leaves(|a, _, leaf| take(IpAddr::V6(Ipv6Addr::from(a)), leaf))?;
    }
    let (mut flat, mut nested) = (0usize, 0usize);
    for ip in sample {
        let item = reader.lookup(ip).map_err(|e| e.to_string())?;
        let Some(raw) = item.decode::<RawRecord<'_>>().map_err(|e| e.to_string())? else {
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

const METADATA_MARKER: &[u8] = b"\xab\xcd\xefMaxMind.com";
const METADATA_MAX: usize = 128 * 1024;

/// Linear scan of every tree node, catching what a reachability walk cannot: a record
/// pointing back to the root (always a cycle), into the 16-byte separator, or past the
/// data section. With [`Tree::records`] (which visits each reachable node once) and the
/// whole-record decodes of `decode_all`, this is what maxminddb's `verify()` checks,
/// plus the nodes no walk reaches. O(node_count), a few ms per million nodes.
/// The data section's byte range when the tree is sound.
fn scan_tree(
    buf: &[u8],
    m: &maxminddb::Metadata,
    release: &dyn Fn(std::ops::Range<usize>),
) -> Result<std::ops::Range<usize>, String> {
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
        24 => scan_records::<6>(tree, ok, release, |c| (be3(&c[0..3]), be3(&c[3..6]))),
        28 => scan_records::<7>(tree, ok, release, |c| {
            (
                be3(&c[0..3]) | (usize::from(c[3]) & 0xf0) << 20,
                be3(&c[4..7]) | (usize::from(c[3]) & 0x0f) << 24,
            )
        }),
        32 => scan_records::<8>(tree, ok, release, |c| {
            let w = |b: &[u8]| u32::from_be_bytes(b.try_into().expect("4 bytes")) as usize;
            (w(&c[0..4]), w(&c[4..8]))
        }),
        other => return Err(format!("unsupported record size {other}")),
    };
    let Some((node, rec)) = bad else {
        return Ok(tree_len + 16..marker);
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
/// The bytes behind it are let go of as the scan goes (`release`).
fn scan_records<const N: usize>(
    tree: &[u8],
    ok: impl Fn(usize) -> bool,
    release: &dyn Fn(std::ops::Range<usize>),
    split: impl Fn(&[u8; N]) -> (usize, usize),
) -> Option<(usize, usize)> {
    let (nodes, _) = tree.as_chunks::<N>();
    const CHUNK: usize = 1 << 16;
    for (k, chunk) in nodes.chunks(CHUNK).enumerate() {
        let bad = chunk.iter().enumerate().find_map(|(i, c)| {
            let (left, right) = split(c);
            let node = k * CHUNK + i;
            if !ok(left) {
                Some((node, left))
            } else if !ok(right) {
                Some((node, right))
            } else {
                None
            }
        });
        if bad.is_some() {
            return bad;
        }
        release(k * CHUNK * N..(k + 1) * CHUNK * N);
    }
    None
}

fn be3(b: &[u8]) -> usize {
    usize::from(b[0]) << 16 | usize::from(b[1]) << 8 | usize::from(b[2])
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

    /// Every record of a database read both ways: where the lean decoder
    /// reads one, it says what maxminddb's says. The demo database, and a
    /// real one with GEOSTEER_GEODB=path.
    #[test]
    fn plain_records_read_as_maxminddb_reads_them() {
        let mut paths = vec![std::path::PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/geodb/demo-city.mmdb"
        ))];
        paths.extend(std::env::var_os("GEOSTEER_GEODB").map(Into::into));
        for path in paths {
            let bytes = std::fs::read(&path).unwrap();
            let reader = Reader::from_source(&bytes[..]).unwrap();
            let m = reader.metadata().clone();
            let data = scan_tree(&bytes, &m, &|_| ()).unwrap();
            let tree = Tree::new(&bytes, m.node_count, m.record_size, m.ip_version);
            let mut records = Records::new(&reader, &bytes[data], RecordSchema::Nested);
            let mut seen = std::collections::HashSet::new();
            let (mut plain, mut located) = (0, 0);
            let mut check = |ip: IpAddr, leaf: Leaf| {
                if let Leaf::Data(o) = leaf
                    && seen.insert(o)
                    && let Some(fast) = records.plain(o)
                {
                    assert_eq!(Ok(fast), records.careful(ip, o), "{ip} at {o}");
                    plain += 1;
                    located += usize::from(fast != Location::default());
                }
                true
            };
            tree.v4_leaves(|a, _, l| check(IpAddr::V4(Ipv4Addr::from(a)), l))
                .unwrap();
            tree.v6_leaves(|a, _, l| check(IpAddr::V6(Ipv6Addr::from(a)), l))
                .unwrap();
            assert!(
                plain == seen.len() && located > 0,
                "{}: {plain} of {} plain",
                path.display(),
                seen.len()
            );
        }
    }

    #[test]
    fn geodb_is_send_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<GeoDb>();
    }
}
