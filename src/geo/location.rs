//! What a lookup says: a [`Location`] and its [`Coords`], the [`GeoMatch`]
//! that carries it, the errors of opening or writing a database, and the
//! address normalization every lookup starts with.

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;

use super::code::Code;
use super::table::LocId;

/// Latitude and longitude in degrees (WGS84).
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub struct Coords {
    pub lat: f64,
    pub lon: f64,
}

impl Coords {
    /// The point on the unit sphere. Ordering edges by straight-line
    /// (chord) distance between such points equals ordering by
    /// great-circle distance, with no trigonometry per comparison.
    pub fn unit(self) -> [f64; 3] {
        let (slat, clat) = self.lat.to_radians().sin_cos();
        let (slon, clon) = self.lon.to_radians().sin_cos();
        [clat * clon, clat * slon, slat]
    }
}

/// Where an address is, as far as the database knows. Every field is optional: an ASN-only
/// database fills `asn`, a country database fills `continent`/`country`.
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub struct Location {
    /// Continent code: "AF", "AN", "AS", "EU", "NA", "OC", "SA".
    pub continent: Option<Code>,
    /// ISO 3166-1 alpha-2, uppercase.
    pub country: Option<Code>,
    /// First subdivision's ISO 3166-2 code without the country prefix ("ENG", "WA").
    pub subdivision: Option<Code>,
    pub coords: Option<Coords>,
    pub asn: Option<u32>,
}

/// A successful lookup: the location and the database network that matched.
/// Two matches are equal when they say the same (location and network),
/// whichever database or record they came from.
#[derive(Clone, Copy, Debug)]
pub struct GeoMatch {
    pub location: Location,
    /// The matched network, in the family of the normalized address: an IPv4 address found
    /// in an IPv6 database's IPv4 subtree reports an IPv4 net.
    pub network: ipnet::IpNet,
    /// The location's id in the database that answered
    /// ([`super::GeoDb::location`]).
    pub loc: LocId,
}

impl PartialEq for GeoMatch {
    fn eq(&self, other: &GeoMatch) -> bool {
        self.location == other.location && self.network == other.network
    }
}

/// Errors from opening, building or synthesizing a database. Every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum GeoError {
    /// An I/O operation on `path` failed.
    #[error("{}: cannot {op}: {source}", path.display())]
    Io {
        path: PathBuf,
        op: &'static str,
        #[source]
        source: std::io::Error,
    },
    /// Size or mtime differed before and after copying: someone is writing the file.
    #[error("{}: file changed while reading, retry", path.display())]
    Changed { path: PathBuf },
    /// The file is not a usable MaxMind DB (truncated, corrupt, unsupported).
    #[error("{}: invalid MaxMind DB: {reason}", path.display())]
    Invalid { path: PathBuf, reason: String },
    /// A problem in a source file given to [`super::build`]; `line` when known.
    #[error("{}{}: {reason}", path.display(), line.map(|l| format!(":{l}")).unwrap_or_default())]
    Source {
        path: PathBuf,
        line: Option<u64>,
        reason: String,
    },
    /// The database writer refused the data.
    #[error("{}: cannot build database: {reason}", path.display())]
    Build { path: PathBuf, reason: String },
}

/// Maps addresses that embed an IPv4 client onto that IPv4 address, so they locate like
/// the client: IPv4-mapped `::ffff:a.b.c.d`, 6to4 `2002:AABB:CCDD::/16` and Teredo
/// `2001:0000::/32` (client = last 32 bits XOR `0xffffffff`). Other addresses are returned
/// unchanged.
pub fn normalize(ip: IpAddr) -> IpAddr {
    let IpAddr::V6(v6) = ip else {
        return ip;
    };
    if let Some(v4) = v6.to_ipv4_mapped() {
        return IpAddr::V4(v4);
    }
    let bits = u128::from(v6);
    let seg = v6.segments();
    if seg[0] == 0x2002 {
        // 6to4: the IPv4 address is bits 16..48.
        return IpAddr::V4(Ipv4Addr::from((bits >> 80) as u32));
    }
    if seg[0] == 0x2001 && seg[1] == 0 {
        // Teredo: the client's public address is obfuscated in the low 32 bits.
        return IpAddr::V4(Ipv4Addr::from(!(bits as u32)));
    }
    ip
}

/// JSON for `geosteer geodb lookup`: country, continent, subdivision, lat, lon, asn,
/// network (absent fields are `null`).
pub fn describe(m: &GeoMatch) -> serde_json::Value {
    let l = &m.location;
    serde_json::json!({
        "network": m.network.to_string(),
        "continent": l.continent.map(|c| c.to_string()),
        "country": l.country.map(|c| c.to_string()),
        "subdivision": l.subdivision.map(|c| c.to_string()),
        "lat": l.coords.map(|c| c.lat),
        "lon": l.coords.map(|c| c.lon),
        "asn": l.asn,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn normalize_table() {
        for (input, want) in [
            ("192.0.2.1", "192.0.2.1"),
            ("::ffff:81.2.69.142", "81.2.69.142"),
            ("2002:5102:458e::1", "81.2.69.142"),
            // RFC 4380 example: client 192.0.2.45 is stored as 3fff:fdd2.
            ("2001:0:4136:e378:8000:63bf:3fff:fdd2", "192.0.2.45"),
            ("2001:db8::1", "2001:db8::1"),
            ("2001:1::1", "2001:1::1"),
            ("::1", "::1"),
        ] {
            assert_eq!(normalize(ip(input)), ip(want), "{input}");
        }
    }

    #[test]
    fn error_messages_name_the_file() {
        let e = GeoError::Source {
            path: "a.yaml".into(),
            line: Some(7),
            reason: "bad".into(),
        };
        assert_eq!(e.to_string(), "a.yaml:7: bad");
        let e = GeoError::Changed {
            path: "/x/db.mmdb".into(),
        };
        assert_eq!(
            e.to_string(),
            "/x/db.mmdb: file changed while reading, retry"
        );
    }
}
