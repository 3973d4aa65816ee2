//! `GeoDb`: an opened, verified, immutable database and its allocation-free lookup.

use std::net::IpAddr;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use maxminddb::{Reader, WithinOptions};

use super::load::{Snapshot, load};
use super::record::RawRecord;
use super::{GeoError, GeoMatch, Location, normalize};

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
    reader: Reader<Snapshot>,
    info: GeoInfo,
}

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
        let (snapshot, file_size) = load(path)?;
        let invalid = |reason: String| GeoError::Invalid {
            path: path.to_owned(),
            reason,
        };
        // maxminddb is meant to return errors on hostile input; catch_unwind is a second
        // line of defence so a reader bug on a corrupt file cannot take the server down.
        let opened = catch_unwind(AssertUnwindSafe(|| -> Result<_, String> {
            let reader = Reader::from_source(snapshot).map_err(|e| e.to_string())?;
            reader.verify().map_err(|e| e.to_string())?;
            let schema = detect_schema(&reader).map_err(|e| e.to_string())?;
            Ok((reader, schema))
        }));
        let (reader, schema) = match opened {
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
        Ok(GeoDb { reader, info })
    }

    /// Locates `ip` (after [`normalize`]). `None` when the address is not in the database
    /// or its record carries nothing we understand. Does not allocate.
    pub fn lookup(&self, ip: IpAddr) -> Option<GeoMatch> {
        let ip = normalize(ip);
        let result = self.reader.lookup(ip).ok()?;
        if !result.has_data() {
            return None;
        }
        let raw: RawRecord<'_> = result.decode().ok()??;
        let location = raw.location();
        if location == Location::default() {
            return None;
        }
        let net = result.network().ok()?;
        let network = match net.ip() {
            IpAddr::V4(a) => IpNet::V4(Ipv4Net::new(a, net.prefix()).ok()?),
            IpAddr::V6(a) => IpNet::V6(Ipv6Net::new(a, net.prefix()).ok()?),
        };
        Some(GeoMatch { location, network })
    }

    /// Metadata and file facts.
    pub fn info(&self) -> &GeoInfo {
        &self.info
    }
}

/// Samples the first records: flat-only keys make it `Flat`, anything else `Nested`
/// (including empty databases and ASN-only ones, whose key is shared by both).
fn detect_schema(reader: &Reader<Snapshot>) -> Result<RecordSchema, maxminddb::MaxMindDbError> {
    let (mut flat, mut nested) = (0usize, 0usize);
    for item in reader.networks(WithinOptions::default())?.take(SCHEMA_SAMPLE) {
        let Some(raw) = item?.decode::<RawRecord<'_>>()? else {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn geodb_is_send_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<GeoDb>();
    }
}
