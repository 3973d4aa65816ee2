//! Locating a client: MaxMind-format database reader and writer.
//! (Placeholder on main until the geo branch lands; same API.)

use std::net::IpAddr;
use std::path::Path;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Hash)]
pub struct Code {
    bytes: [u8; 3],
    len: u8,
}

impl Code {
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.bytes[..self.len as usize]).unwrap_or("")
    }
}

impl std::str::FromStr for Code {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if s.is_empty() || s.len() > 3 || !s.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(format!("invalid code {s:?}"));
        }
        let mut bytes = [0u8; 3];
        bytes[..s.len()].copy_from_slice(s.to_ascii_uppercase().as_bytes());
        Ok(Code { bytes, len: s.len() as u8 })
    }
}

impl std::fmt::Display for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub struct Coords {
    pub lat: f64,
    pub lon: f64,
}

#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub struct Location {
    pub continent: Option<Code>,
    pub country: Option<Code>,
    pub subdivision: Option<Code>,
    pub coords: Option<Coords>,
    pub asn: Option<u32>,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GeoMatch {
    pub location: Location,
    pub network: ipnet::IpNet,
}

#[derive(Debug, thiserror::Error)]
#[error("{path}: {reason}")]
pub struct GeoError {
    pub path: String,
    pub reason: String,
}

pub struct GeoDb;

impl GeoDb {
    pub fn open(path: &Path) -> Result<GeoDb, GeoError> {
        Err(GeoError { path: path.display().to_string(), reason: "not implemented".into() })
    }
    pub fn lookup(&self, _ip: IpAddr) -> Option<GeoMatch> {
        None
    }
}

#[derive(Debug, Clone, Copy)]
pub enum Schema {
    City,
    Flat,
}

pub fn build(_s: &Path, out: &Path, _schema: Schema) -> Result<(), GeoError> {
    Err(GeoError { path: out.display().to_string(), reason: "not implemented".into() })
}

pub fn describe(m: &GeoMatch) -> serde_json::Value {
    serde_json::json!({ "network": m.network.to_string() })
}
