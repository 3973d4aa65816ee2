//! Writing databases: `build` from a YAML/CSV source and `synth` for benchmarks.
//!
//! Uses the `mmdb-writer` crate: it writes the standard IPv6 tree with IPv4 under
//! `::/96` plus the IPv4-mapped/6to4/Teredo aliases (as MaxMind does), deduplicates
//! values, and its output passes `maxminddb`'s `verify()` and `mmdblookup`.

use std::fs::{self, File};
use std::io::Write;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use mmdb_writer::{Value, Writer};
use serde::Deserialize;
use serde_saphyr::Spanned;

use super::code::{Code, continent_of, is_continent};
use super::location::GeoError;

/// Which record layout [`build`] writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Schema {
    /// GeoIP2-City nested schema (`country.iso_code`, `location.latitude`, ...).
    City,
    /// DB-IP Lite / ip-location-db flat schema (`country_code`, `latitude`, `state1`, ...).
    Flat,
}

impl Schema {
    fn database_type(self) -> &'static str {
        match self {
            Schema::City => "GeoIP2-City",
            Schema::Flat => "DBIP-City-Lite",
        }
    }
}

/// What a build produced.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct BuildStats {
    pub networks: usize,
    pub ipv4_networks: usize,
    pub ipv6_networks: usize,
    /// Size of the written file in bytes.
    pub bytes: u64,
    pub elapsed: Duration,
}

/// One validated source entry.
#[derive(Clone, Debug)]
struct Entry {
    line: Option<u64>,
    net: IpNet,
    country: Option<Code>,
    continent: Option<Code>,
    subdivision: Option<Code>,
    city: Option<String>,
    coords: Option<(f64, f64)>,
    asn: Option<u32>,
}

/// The YAML source document.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SourceDoc {
    #[serde(default)]
    description: Option<String>,
    networks: Vec<Spanned<SourceEntry>>,
}

/// One network in the YAML (and, by column name, CSV) source.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct SourceEntry {
    network: String,
    #[serde(default)]
    country: Option<String>,
    #[serde(default)]
    continent: Option<String>,
    #[serde(default)]
    subdivision: Option<String>,
    #[serde(default)]
    city: Option<String>,
    #[serde(default)]
    lat: Option<f64>,
    #[serde(default)]
    lon: Option<f64>,
    #[serde(default)]
    asn: Option<u32>,
}

/// Builds `out` from a YAML source (or CSV when `source` ends in `.csv`), atomically
/// (temp file in the same directory, fsync, rename).
///
/// Rejects, with `file:line: reason`: unparsable networks or networks with host bits,
/// overlapping networks, IPv6 networks inside the IPv4/alias ranges, unknown country or
/// continent codes, coordinates out of range or given without their pair, and entries
/// that carry no data at all.
pub fn build(source: &Path, out: &Path, schema: Schema) -> Result<BuildStats, GeoError> {
    let start = Instant::now();
    let text = fs::read_to_string(source).map_err(|e| GeoError::Io {
        path: source.to_owned(),
        op: "read",
        source: e,
    })?;
    let is_csv = source
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("csv"));
    let (description, raw) = if is_csv {
        (None, parse_csv(source, &text)?)
    } else {
        parse_yaml(source, &text)?
    };
    let mut entries = raw
        .into_iter()
        .map(|(line, e)| validate(source, line, e))
        .collect::<Result<Vec<_>, _>>()?;
    check_overlaps(source, &mut entries)?;

    let description = description.unwrap_or_else(|| {
        format!(
            "geosteer build of {}",
            source.file_name().unwrap_or_default().to_string_lossy()
        )
    });
    let mut writer = new_writer(schema.database_type(), &description);
    let (mut v4, mut v6) = (0, 0);
    for e in &entries {
        match e.net {
            IpNet::V4(_) => v4 += 1,
            IpNet::V6(_) => v6 += 1,
        }
        writer
            .insert_value(e.net, record(schema, e))
            .map_err(|err| GeoError::Source {
                path: source.to_owned(),
                line: e.line,
                reason: format!("{}: {err}", e.net),
            })?;
    }
    let bytes = write_db(&writer, out)?;
    Ok(BuildStats {
        networks: entries.len(),
        ipv4_networks: v4,
        ipv6_networks: v6,
        bytes,
        elapsed: start.elapsed(),
    })
}

fn new_writer(database_type: &str, description: &str) -> Writer {
    // SOURCE_DATE_EPOCH makes rebuilds byte-identical (reproducible-builds convention).
    let epoch = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .map(|s| UNIX_EPOCH + Duration::from_secs(s))
        .unwrap_or_else(SystemTime::now);
    Writer::builder(database_type)
        .description(&[("en", description)])
        .languages(["en"])
        .build_epoch(epoch)
        .build()
}

/// Source entries paired with their line number, when known.
type Lines = Vec<(Option<u64>, SourceEntry)>;

fn parse_yaml(path: &Path, text: &str) -> Result<(Option<String>, Lines), GeoError> {
    let doc: SourceDoc = crate::yaml::parse(text, path).map_err(|e| GeoError::Source {
        path: path.to_owned(),
        line: (e.line > 0).then_some(u64::from(e.line)),
        reason: e.reason,
    })?;
    let entries = doc
        .networks
        .into_iter()
        .map(|s| (Some(s.referenced.line()), s.value))
        .collect();
    Ok((doc.description, entries))
}

/// Minimal CSV: a header naming the columns (same names as the YAML keys), comma
/// separated, fields optionally double-quoted (no embedded quotes), `#` comments.
fn parse_csv(path: &Path, text: &str) -> Result<Lines, GeoError> {
    let err = |line: usize, reason: String| GeoError::Source {
        path: path.to_owned(),
        line: Some(line as u64),
        reason,
    };
    let mut header: Option<Vec<String>> = None;
    let mut out = Vec::new();
    for (i, raw_line) in text.lines().enumerate() {
        let n = i + 1;
        let line = raw_line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = line
            .split(',')
            .map(|f| f.trim().trim_matches('"').trim())
            .collect();
        let Some(cols) = &header else {
            header = Some(fields.iter().map(|f| f.to_ascii_lowercase()).collect());
            continue;
        };
        if fields.len() != cols.len() {
            return Err(err(
                n,
                format!("expected {} fields, found {}", cols.len(), fields.len()),
            ));
        }
        let mut e = SourceEntry::default();
        for (col, val) in cols.iter().zip(&fields) {
            let val = *val;
            if val.is_empty() {
                continue;
            }
            let num = |what: &str| -> Result<f64, GeoError> {
                val.parse()
                    .map_err(|_| err(n, format!("{what}: not a number: {val:?}")))
            };
            match col.as_str() {
                "network" => e.network = val.to_owned(),
                "country" => e.country = Some(val.to_owned()),
                "continent" => e.continent = Some(val.to_owned()),
                "subdivision" => e.subdivision = Some(val.to_owned()),
                "city" => e.city = Some(val.to_owned()),
                "lat" => e.lat = Some(num("lat")?),
                "lon" => e.lon = Some(num("lon")?),
                "asn" => {
                    e.asn = Some(
                        val.parse()
                            .map_err(|_| err(n, format!("asn: not a 32-bit number: {val:?}")))?,
                    )
                }
                other => return Err(err(n, format!("unknown column {other:?}"))),
            }
        }
        out.push((Some(n as u64), e));
    }
    Ok(out)
}

/// Address ranges a source may not write into: the IPv4 subtree and the aliases that
/// point at it.
fn forbidden_v6() -> [(Ipv6Net, &'static str); 4] {
    let net = |s: &str| s.parse::<Ipv6Net>().unwrap_or_default();
    [
        (
            net("::/96"),
            "IPv4 subtree; write IPv4 networks in IPv4 notation",
        ),
        (
            net("::ffff:0:0/96"),
            "IPv4-mapped range, aliased to the IPv4 subtree",
        ),
        (
            net("2001::/32"),
            "Teredo range, aliased to the IPv4 subtree",
        ),
        (net("2002::/16"), "6to4 range, aliased to the IPv4 subtree"),
    ]
}

fn validate(path: &Path, line: Option<u64>, e: SourceEntry) -> Result<Entry, GeoError> {
    let fail = |reason: String| GeoError::Source {
        path: path.to_owned(),
        line,
        reason,
    };
    let net: IpNet = e
        .network
        .trim()
        .parse()
        .map_err(|_| fail(format!("invalid network {:?}", e.network)))?;
    if net.trunc() != net {
        return Err(fail(format!(
            "network {net} has host bits set (did you mean {}?)",
            net.trunc()
        )));
    }
    if let IpNet::V6(v6) = net {
        for (bad, why) in forbidden_v6() {
            if bad.contains(&v6) || v6.contains(&bad) {
                return Err(fail(format!("network {net} overlaps {bad}: {why}")));
            }
        }
    }
    let code = |what: &str, v: &Option<String>| -> Result<Option<Code>, GeoError> {
        v.as_deref()
            .map(|s| {
                Code::parse(s.trim()).ok_or_else(|| fail(format!("invalid {what} code {s:?}")))
            })
            .transpose()
    };
    let country = code("country", &e.country)?;
    let continent = code("continent", &e.continent)?;
    let subdivision = code("subdivision", &e.subdivision)?;
    if let Some(c) = country
        && continent_of(c).is_none()
    {
        return Err(fail(format!(
            "unknown country code {c:?}: expected ISO 3166-1 alpha-2"
        )));
    }
    if let Some(c) = continent
        && !is_continent(c)
    {
        return Err(fail(format!(
            "unknown continent code {c}: expected one of AF AN AS EU NA OC SA"
        )));
    }
    let coords = match (e.lat, e.lon) {
        (None, None) => None,
        (Some(lat), Some(lon)) => {
            if !(-90.0..=90.0).contains(&lat) {
                return Err(fail(format!("latitude {lat} not in -90..90")));
            }
            if !(-180.0..=180.0).contains(&lon) {
                return Err(fail(format!("longitude {lon} not in -180..180")));
            }
            Some((lat, lon))
        }
        _ => return Err(fail("lat and lon must be given together".into())),
    };
    if country.is_none() && continent.is_none() && coords.is_none() && e.asn.is_none() {
        return Err(fail(format!(
            "network {net} has no country, continent, coordinates or asn"
        )));
    }
    Ok(Entry {
        line,
        net,
        country,
        continent: continent.or_else(|| country.and_then(continent_of)),
        subdivision,
        city: e.city.filter(|c| !c.trim().is_empty()),
        coords,
        asn: e.asn,
    })
}

/// Sorts entries and rejects any two that overlap (CIDRs either nest or are disjoint,
/// so comparing each with the furthest-reaching earlier one suffices).
fn check_overlaps(path: &Path, entries: &mut [Entry]) -> Result<(), GeoError> {
    fn span(n: &IpNet) -> (bool, u128, u128) {
        match n {
            IpNet::V4(v) => (
                false,
                u128::from(u32::from(v.network())),
                u128::from(u32::from(v.broadcast())),
            ),
            IpNet::V6(v) => (true, u128::from(v.network()), u128::from(v.broadcast())),
        }
    }
    entries.sort_by_key(|e| {
        let (v6, lo, _) = span(&e.net);
        (v6, lo, e.net.prefix_len())
    });
    let mut widest: Option<usize> = None;
    for i in 0..entries.len() {
        let (fam, lo, hi) = span(&entries[i].net);
        if let Some(w) = widest {
            let (wfam, _, whi) = span(&entries[w].net);
            if wfam == fam && lo <= whi {
                let (a, b) = (&entries[w], &entries[i]);
                let other = a.line.map(|l| format!(" (line {l})")).unwrap_or_default();
                return Err(GeoError::Source {
                    path: path.to_owned(),
                    line: b.line,
                    reason: format!("network {} overlaps {}{other}", b.net, a.net),
                });
            }
            if wfam == fam && hi <= whi {
                continue;
            }
        }
        widest = Some(i);
    }
    Ok(())
}

fn names_en(name: &str) -> Value {
    Value::map([("names", Value::map([("en", Value::from(name))]))])
}

/// The record for one entry in the chosen schema.
fn record(schema: Schema, e: &Entry) -> Value {
    let mut m: Vec<(&str, Value)> = Vec::new();
    match schema {
        Schema::City => {
            if let Some(c) = e.continent {
                m.push(("continent", Value::map([("code", Value::from(c.as_str()))])));
            }
            if let Some(c) = e.country {
                m.push((
                    "country",
                    Value::map([("iso_code", Value::from(c.as_str()))]),
                ));
            }
            if let Some(s) = e.subdivision {
                m.push((
                    "subdivisions",
                    Value::array([Value::map([("iso_code", Value::from(s.as_str()))])]),
                ));
            }
            if let Some(city) = &e.city {
                m.push(("city", names_en(city)));
            }
            if let Some((lat, lon)) = e.coords {
                m.push((
                    "location",
                    Value::map([
                        ("latitude", Value::from(lat)),
                        ("longitude", Value::from(lon)),
                    ]),
                ));
            }
            if let Some(asn) = e.asn {
                // GeoIP2 Enterprise/ISP style.
                m.push((
                    "traits",
                    Value::map([("autonomous_system_number", Value::from(asn))]),
                ));
            }
        }
        Schema::Flat => {
            if let Some(c) = e.country {
                m.push(("country_code", Value::from(c.as_str())));
            }
            // Flat databases usually omit the continent; write it only when it is not
            // derivable from the country, so readers exercise `continent_of`.
            if let Some(k) = e.continent
                && e.country.and_then(continent_of) != Some(k)
            {
                m.push(("continent_code", Value::from(k.as_str())));
            }
            if let Some(s) = e.subdivision {
                m.push(("state1", Value::from(s.as_str())));
            }
            if let Some(city) = &e.city {
                m.push(("city", Value::from(city.as_str())));
            }
            if let Some((lat, lon)) = e.coords {
                m.push(("latitude", Value::from(lat)));
                m.push(("longitude", Value::from(lon)));
            }
            if let Some(asn) = e.asn {
                m.push(("autonomous_system_number", Value::from(asn)));
            }
        }
    }
    Value::map(m)
}

/// Serializes and writes atomically; returns the file size.
fn write_db(writer: &Writer, out: &Path) -> Result<u64, GeoError> {
    let bytes = writer.to_bytes().map_err(|e| GeoError::Build {
        path: out.to_owned(),
        reason: e.to_string(),
    })?;
    write_atomic(out, &bytes)?;
    Ok(bytes.len() as u64)
}

/// Temp file in the same directory, fsync, rename, fsync the directory: readers see
/// either the old file or the complete new one.
fn write_atomic(out: &Path, bytes: &[u8]) -> Result<(), GeoError> {
    let io = |op: &'static str, path: &Path| {
        let path = path.to_owned();
        move |source| GeoError::Io { path, op, source }
    };
    let dir = match out.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
        _ => PathBuf::from("."),
    };
    let name = out.file_name().unwrap_or_default().to_string_lossy();
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let tmp = dir.join(format!(".{name}.tmp.{}.{nanos}", std::process::id()));
    let result = (|| {
        let mut f = File::options()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .map_err(io("create", &tmp))?;
        f.write_all(bytes).map_err(io("write", &tmp))?;
        f.sync_all().map_err(io("fsync", &tmp))?;
        fs::rename(&tmp, out).map_err(io("rename into place", out))?;
        // Best effort: persist the rename itself.
        if let Ok(d) = File::open(&dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Cities used by [`synth`]: (country, continent, subdivision, name, lat, lon).
const SYNTH_CITIES: &[(&str, &str, &str, &str, f64, f64)] = &[
    ("US", "NA", "CA", "San Francisco", 37.7749, -122.4194),
    ("US", "NA", "VA", "Ashburn", 39.0438, -77.4874),
    ("US", "NA", "TX", "Dallas", 32.7767, -96.7970),
    ("US", "NA", "NY", "New York", 40.7128, -74.0060),
    ("CA", "NA", "ON", "Toronto", 43.6532, -79.3832),
    ("MX", "NA", "CMX", "Mexico City", 19.4326, -99.1332),
    ("BR", "SA", "SP", "Sao Paulo", -23.5505, -46.6333),
    ("AR", "SA", "C", "Buenos Aires", -34.6037, -58.3816),
    ("GB", "EU", "ENG", "London", 51.5074, -0.1278),
    ("DE", "EU", "HE", "Frankfurt", 50.1109, 8.6821),
    ("FR", "EU", "IDF", "Paris", 48.8566, 2.3522),
    ("NL", "EU", "NH", "Amsterdam", 52.3676, 4.9041),
    ("SE", "EU", "AB", "Stockholm", 59.3293, 18.0686),
    ("RU", "EU", "MOW", "Moscow", 55.7558, 37.6173),
    ("ZA", "AF", "GP", "Johannesburg", -26.2041, 28.0473),
    ("NG", "AF", "LA", "Lagos", 6.5244, 3.3792),
    ("KE", "AF", "30", "Nairobi", -1.2921, 36.8219),
    ("JP", "AS", "13", "Tokyo", 35.6762, 139.6503),
    ("SG", "AS", "01", "Singapore", 1.3521, 103.8198),
    ("IN", "AS", "MH", "Mumbai", 19.0760, 72.8777),
    ("CN", "AS", "BJ", "Beijing", 39.9042, 116.4074),
    ("KR", "AS", "11", "Seoul", 37.5665, 126.9780),
    ("AU", "OC", "NSW", "Sydney", -33.8688, 151.2093),
    ("NZ", "OC", "AUK", "Auckland", -36.8485, 174.7633),
];

/// A City record in the country, continent and subdivision of
/// `SYNTH_CITIES[base % len]`, with its own name and coordinates.
fn synth_city(base: usize, city: String, coords: (f64, f64)) -> Value {
    let (country, continent, sub, ..) = SYNTH_CITIES[base % SYNTH_CITIES.len()];
    let e = Entry {
        line: None,
        net: IpNet::default(),
        country: Code::parse(country),
        continent: Code::parse(continent),
        subdivision: Code::parse(sub),
        city: Some(city),
        coords: Some(coords),
        asn: None,
    };
    record(Schema::City, &e)
}

/// SplitMix64: tiny, deterministic across platforms and crate versions.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

/// First octets synth may use: public unicast, avoiding 0, 10, 100, 127, 169, 172, 192,
/// 198, 203 (private, shared, documentation) and multicast/reserved (>= 224).
const SYNTH_AVOID: [u8; 9] = [0, 10, 100, 127, 169, 172, 192, 198, 203];

fn synth_v4_first_octet(r: u64) -> u8 {
    let mut o = (r % 223) as u8 + 1;
    while SYNTH_AVOID.contains(&o) {
        o += 1;
    }
    o
}

/// Writes a deterministic synthetic City database shaped like a real one for
/// many-client benchmarks: it covers every public IPv4 /8 that [`synth`] uses
/// and all of 2000::/3 with networks of random length (IPv4 /16../24, IPv6
/// /20../22), and spreads them over `records` distinct cities (jittered
/// copies of a fixed table), so a random client subnet is located and lands
/// on one of many records, as with GeoLite2 City's ~100k locations.
pub fn synth_dense(out: &Path, records: usize, seed: u64) -> Result<BuildStats, GeoError> {
    let start = Instant::now();
    let mut rng = SplitMix(seed);
    let records = records.max(1);
    let values: Vec<Value> = (0..records)
        .map(|i| {
            let (.., name, lat, lon) = SYNTH_CITIES[i % SYNTH_CITIES.len()];
            // Up to ±2° around the base city: distinct coordinates, same country.
            let jitter = |r: u64| (r % 4001) as f64 / 1000.0 - 2.0;
            let coords = (
                (lat + jitter(rng.next())).clamp(-89.0, 89.0),
                lon + jitter(rng.next()),
            );
            synth_city(i, format!("{name} {i}"), coords)
        })
        .collect();
    let mut writer = new_writer("GeoIP2-City", "geosteer synthetic dense benchmark database");
    let build_err = |e: mmdb_writer::Error| GeoError::Build {
        path: out.to_owned(),
        reason: e.to_string(),
    };
    let (mut n4, mut n6) = (0usize, 0usize);
    for first in (1u8..224).filter(|o| !SYNTH_AVOID.contains(o)) {
        let mut addr = u64::from(first) << 24;
        let end = (u64::from(first) + 1) << 24;
        while addr < end {
            let mut len = 16 + (rng.next() % 9) as u8;
            while addr % (1u64 << (32 - len)) != 0 {
                len += 1;
            }
            let net = Ipv4Net::new(Ipv4Addr::from(addr as u32), len).expect("len <= 24");
            let v = values[(rng.next() % records as u64) as usize].clone();
            writer.insert_value(IpNet::V4(net), v).map_err(build_err)?;
            n4 += 1;
            addr += 1u64 << (32 - len);
        }
    }
    // 2000::/3 is 2^17 /20 blocks; each is cut into /20, /21 or /22 networks.
    for block in 0u128..(1 << 17) {
        let base = (0x2u128 << 124) | (block << 108);
        // 2001::/32 (Teredo) and 2002::/16 (6to4) alias IPv4 in the writer.
        if base >> 108 == 0x20010 || base >> 112 == 0x2002 {
            continue;
        }
        let len = 20 + (rng.next() % 3) as u8;
        for part in 0..(1u128 << (len - 20)) {
            let a = base | (part << (128 - u32::from(len)));
            let net = Ipv6Net::new(Ipv6Addr::from(a), len).expect("len <= 22");
            let v = values[(rng.next() % records as u64) as usize].clone();
            writer.insert_value(IpNet::V6(net), v).map_err(build_err)?;
            n6 += 1;
        }
    }
    let bytes = write_db(&writer, out)?;
    Ok(BuildStats {
        networks: n4 + n6,
        ipv4_networks: n4,
        ipv6_networks: n6,
        bytes,
        elapsed: start.elapsed(),
    })
}

/// Writes a deterministic synthetic City database with `networks` distinct networks:
/// half IPv4 /24s, half IPv6 /48s under 2400::/6-ish global unicast prefixes, each
/// assigned a random city from a fixed table. For benchmarks and size tests.
pub fn synth(out: &Path, networks: usize, seed: u64) -> Result<BuildStats, GeoError> {
    let start = Instant::now();
    let mut rng = SplitMix(seed);
    let want_v4 = networks / 2;
    let want_v6 = networks - want_v4;
    // There are ~13M usable /24 keys; refuse requests that could never finish.
    if want_v4 > 8_000_000 {
        return Err(GeoError::Build {
            path: out.to_owned(),
            reason: format!("synth supports at most 16000000 networks, asked for {networks}"),
        });
    }
    let mut v4: Vec<u32> = Vec::with_capacity(want_v4);
    while v4.len() < want_v4 {
        let missing = want_v4 - v4.len();
        for _ in 0..missing + missing / 8 + 16 {
            let r = rng.next();
            let first = u32::from(synth_v4_first_octet(r >> 40));
            v4.push((first << 24) | ((r as u32) & 0x00ff_ff00));
        }
        v4.sort_unstable();
        v4.dedup();
        v4.truncate(want_v4);
    }
    const V6_TOPS: [u16; 5] = [0x2400, 0x2600, 0x2800, 0x2a00, 0x2c00];
    let mut v6: Vec<u128> = Vec::with_capacity(want_v6);
    while v6.len() < want_v6 {
        let missing = want_v6 - v6.len();
        for _ in 0..missing + missing / 8 + 16 {
            let r = rng.next();
            let top = V6_TOPS[(r % V6_TOPS.len() as u64) as usize];
            // /48: 16 fixed bits + 32 random bits, host part zero.
            v6.push((u128::from(top) << 112) | (u128::from((r >> 8) as u32) << 80));
        }
        v6.sort_unstable();
        v6.dedup();
        v6.truncate(want_v6);
    }
    let values: Vec<Value> = (0..SYNTH_CITIES.len())
        .map(|i| {
            let (.., name, lat, lon) = SYNTH_CITIES[i];
            synth_city(i, name.to_owned(), (lat, lon))
        })
        .collect();
    let mut writer = new_writer("GeoIP2-City", "geosteer synthetic benchmark database");
    let build_err = |e: mmdb_writer::Error| GeoError::Build {
        path: out.to_owned(),
        reason: e.to_string(),
    };
    let pick = |rng: &mut SplitMix| values[(rng.next() % values.len() as u64) as usize].clone();
    let prefix_err = |e: ipnet::PrefixLenError| GeoError::Build {
        path: out.to_owned(),
        reason: e.to_string(),
    };
    // IPv4 /24s, then IPv6 /48s, each with a random record.
    let nets = v4
        .iter()
        .map(|&a| Ipv4Net::new(a.into(), 24).map(IpNet::V4))
        .chain(
            v6.iter()
                .map(|&a| Ipv6Net::new(a.into(), 48).map(IpNet::V6)),
        );
    for net in nets {
        writer
            .insert_value(net.map_err(prefix_err)?, pick(&mut rng))
            .map_err(build_err)?;
    }
    let bytes = write_db(&writer, out)?;
    Ok(BuildStats {
        networks: v4.len() + v6.len(),
        ipv4_networks: v4.len(),
        ipv6_networks: v6.len(),
        bytes,
        elapsed: start.elapsed(),
    })
}
