//! The database read the slow way, for tests: maxminddb's own tree walk
//! per address, and a decode of the record it lands on. What [`GeoDb`]
//! answers from its ranges must be what this answers, address by address
//! (`tests/geo_walk.rs`), with and without an ASN database.

use std::net::IpAddr;
use std::path::Path;

use ipnet::IpNet;
use maxminddb::Reader;

use super::location::{GeoError, GeoMatch, Location, normalize};
use super::reader::{GeoDb, RecordSchema};
use super::record::{NestedRecord, RawRecord};

/// One database file, looked up address by address.
#[doc(hidden)]
pub struct Reference {
    reader: Reader<Vec<u8>>,
    schema: RecordSchema,
}

impl Reference {
    /// Reads `path` (whose schema [`GeoDb::open`] detects).
    pub fn open(path: &Path) -> Result<Reference, GeoError> {
        let schema = GeoDb::open(path)?.info().schema;
        let reader = Reader::open_readfile(path).map_err(|e| GeoError::Invalid {
            path: path.to_owned(),
            reason: e.to_string(),
        })?;
        Ok(Reference { reader, schema })
    }

    /// Where maxminddb's walk for `ip` (normalized) ends: the network
    /// (whether or not there is data) and the location there, if any.
    pub fn walk(&self, ip: IpAddr) -> (Option<IpNet>, Option<Location>) {
        let ip = normalize(ip);
        let Ok(r) = self.reader.lookup(ip) else {
            return (None, None);
        };
        let net = r
            .network()
            .ok()
            .and_then(|n| IpNet::new(n.ip(), n.prefix()).ok());
        let raw: Option<RawRecord<'_>> = match self.schema {
            RecordSchema::Nested => r.decode::<NestedRecord<'_>>().ok().flatten().map(|n| n.0),
            RecordSchema::Flat => r.decode().ok().flatten(),
        };
        let loc = raw
            .map(|raw| raw.location())
            .filter(|l| *l != Location::default());
        (net, loc)
    }

    /// [`GeoDb::lookup`], the slow way.
    pub fn lookup(&self, ip: IpAddr) -> Option<GeoMatch> {
        match self.walk(ip) {
            (Some(network), Some(location)) => Some(GeoMatch {
                location,
                network,
                loc: 0,
            }),
            _ => None,
        }
    }

    /// [`GeoDb::lookup`] of this database with `asn` merged in, the slow
    /// way: the ASN from `asn` when this one's record has none, the
    /// narrower of the two networks (both walks decided, data or not).
    pub fn lookup_with_asn(&self, asn: &Reference, ip: IpAddr) -> Option<GeoMatch> {
        let (n1, own) = self.walk(ip);
        let (n2, other) = asn.walk(ip);
        let network = match (n1, n2) {
            (Some(a), Some(b)) => {
                if b.prefix_len() > a.prefix_len() {
                    b
                } else {
                    a
                }
            }
            (Some(a), None) | (None, Some(a)) => a,
            (None, None) => return None,
        };
        let mut location = own.unwrap_or_default();
        location.asn = location.asn.or(other.and_then(|a| a.asn));
        (location != Location::default()).then_some(GeoMatch {
            location,
            network,
            loc: 0,
        })
    }
}
