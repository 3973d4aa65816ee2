//! Allocation-free decoding of one database record, for both the nested (GeoIP2) and the
//! flat (DB-IP Lite / ip-location-db) schemas.
//!
//! One lenient visitor reads both shapes: field names do not collide between them except
//! `continent`, which is a map in GeoIP2 and may be a string in flat databases, so every
//! interesting field accepts either. Strings are borrowed from the mapped database and
//! unknown fields are skipped with `IgnoredAny` (which does not follow pointers), so a
//! lookup never touches the heap.

use std::fmt;

use serde::de::{Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::code::{Code, continent_of, is_continent};
use super::location::{Coords, Location};

/// The raw fields of a record, still borrowed from the database.
#[derive(Default, Debug)]
pub(crate) struct RawRecord<'a> {
    pub(super) continent: Option<&'a str>,
    pub(super) country: Option<&'a str>,
    pub(super) subdivision: Option<&'a str>,
    pub(super) lat: Option<f64>,
    pub(super) lon: Option<f64>,
    pub(super) asn: Option<u64>,
    /// Saw a field only the flat schema uses (`country_code`, `latitude`, `state1`, ...).
    pub(crate) flat_shape: bool,
    /// Saw a map-valued field of the nested schema (`country: {..}`, `location: {..}`).
    pub(crate) nested_shape: bool,
}

impl RawRecord<'_> {
    /// Validates and converts to a [`Location`]. Out-of-range or malformed values are
    /// dropped rather than trusted.
    pub(crate) fn location(&self) -> Location {
        let country = self.country.and_then(Code::parse).filter(|c| c.len() == 2);
        let continent = self
            .continent
            .and_then(Code::parse)
            .filter(|c| is_continent(*c))
            .or_else(|| country.and_then(continent_of));
        let coords = match (self.lat, self.lon) {
            (Some(lat), Some(lon))
                if (-90.0..=90.0).contains(&lat) && (-180.0..=180.0).contains(&lon) =>
            {
                Some(Coords { lat, lon })
            }
            _ => None,
        };
        Location {
            continent,
            country,
            subdivision: self.subdivision.and_then(Code::parse),
            coords,
            asn: self.asn.and_then(|a| u32::try_from(a).ok()),
        }
    }
}

/// A scalar read leniently: MMDB writers disagree on float vs double vs string.
#[derive(Clone, Copy, Default)]
enum Scalar<'a> {
    Str(&'a str),
    Float(f64),
    Int(u64),
    #[default]
    Other,
}

impl<'a> Scalar<'a> {
    fn str(self) -> Option<&'a str> {
        match self {
            Scalar::Str(s) => Some(s),
            _ => None,
        }
    }

    fn float(self) -> Option<f64> {
        let v = match self {
            Scalar::Float(f) => f,
            Scalar::Int(i) => i as f64,
            Scalar::Str(s) => s.trim().parse().ok()?,
            Scalar::Other => return None,
        };
        v.is_finite().then_some(v)
    }

    fn int(self) -> Option<u64> {
        match self {
            Scalar::Int(i) => Some(i),
            Scalar::Str(s) => s.trim().trim_start_matches("AS").parse().ok(),
            _ => None,
        }
    }
}

/// Drains a map we do not care about, so the decoder stays positioned correctly.
fn drain_map<'de, A: MapAccess<'de>>(mut map: A) -> Result<(), A::Error> {
    while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
    Ok(())
}

fn drain_seq<'de, A: SeqAccess<'de>>(mut seq: A) -> Result<(), A::Error> {
    while seq.next_element::<IgnoredAny>()?.is_some() {}
    Ok(())
}

struct ScalarVisitor;

impl<'de> Visitor<'de> for ScalarVisitor {
    type Value = Scalar<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any MaxMind DB value")
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Scalar::Str(v))
    }
    // A non-borrowed string cannot outlive the call; ignore it rather than allocate.
    fn visit_str<E>(self, _v: &str) -> Result<Self::Value, E> {
        Ok(Scalar::Other)
    }
    fn visit_f64<E>(self, v: f64) -> Result<Self::Value, E> {
        Ok(Scalar::Float(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Scalar::Int(v))
    }
    fn visit_u128<E>(self, v: u128) -> Result<Self::Value, E> {
        Ok(u64::try_from(v).map_or(Scalar::Other, Scalar::Int))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
        Ok(u64::try_from(v).map_or(Scalar::Float(v as f64), Scalar::Int))
    }
    fn visit_bool<E>(self, _v: bool) -> Result<Self::Value, E> {
        Ok(Scalar::Other)
    }
    fn visit_borrowed_bytes<E>(self, _v: &'de [u8]) -> Result<Self::Value, E> {
        Ok(Scalar::Other)
    }
    fn visit_bytes<E>(self, _v: &[u8]) -> Result<Self::Value, E> {
        Ok(Scalar::Other)
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(Scalar::Other)
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        drain_map(map)?;
        Ok(Scalar::Other)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        drain_seq(seq)?;
        Ok(Scalar::Other)
    }
}

impl<'de> Deserialize<'de> for Scalar<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ScalarVisitor)
    }
}

/// The interesting keys of a nested sub-map (`continent`, `country`, `location`,
/// `traits`, a subdivision). Key names are distinct across those maps, so one struct
/// serves them all.
#[derive(Default, Clone, Copy)]
struct Sub<'a> {
    code: Option<&'a str>,
    latitude: Option<f64>,
    longitude: Option<f64>,
    asn: Option<u64>,
    /// True when the value was a map (nested schema), false for a bare scalar.
    was_map: bool,
    /// First element of an array (`subdivisions`).
    first: Option<&'a str>,
}

struct SubVisitor;

impl<'de> Visitor<'de> for SubVisitor {
    type Value = Sub<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a map, array or scalar")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut sub = Sub {
            was_map: true,
            ..Sub::default()
        };
        while let Some(key) = map.next_key::<&'de str>()? {
            match key {
                "code" | "iso_code" => sub.code = map.next_value::<Scalar>()?.str(),
                "latitude" => sub.latitude = map.next_value::<Scalar>()?.float(),
                "longitude" => sub.longitude = map.next_value::<Scalar>()?.float(),
                "autonomous_system_number" => sub.asn = map.next_value::<Scalar>()?.int(),
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(sub)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let first = seq.next_element::<Sub>()?;
        drain_seq(seq)?;
        Ok(Sub {
            was_map: true,
            first: first.and_then(|s| s.code),
            ..Sub::default()
        })
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Sub {
            code: Some(v),
            ..Sub::default()
        })
    }
    fn visit_str<E>(self, _v: &str) -> Result<Self::Value, E> {
        Ok(Sub::default())
    }
    fn visit_f64<E>(self, _v: f64) -> Result<Self::Value, E> {
        Ok(Sub::default())
    }
    fn visit_u64<E>(self, _v: u64) -> Result<Self::Value, E> {
        Ok(Sub::default())
    }
    fn visit_u128<E>(self, _v: u128) -> Result<Self::Value, E> {
        Ok(Sub::default())
    }
    fn visit_i64<E>(self, _v: i64) -> Result<Self::Value, E> {
        Ok(Sub::default())
    }
    fn visit_bool<E>(self, _v: bool) -> Result<Self::Value, E> {
        Ok(Sub::default())
    }
    fn visit_borrowed_bytes<E>(self, _v: &'de [u8]) -> Result<Self::Value, E> {
        Ok(Sub::default())
    }
    fn visit_bytes<E>(self, _v: &[u8]) -> Result<Self::Value, E> {
        Ok(Sub::default())
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(Sub::default())
    }
}

impl<'de> Deserialize<'de> for Sub<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(SubVisitor)
    }
}

/// A sub-map known to be a map (nested schema). `deserialize_map` lets maxminddb skip
/// the per-key budget precharge of its dynamic `deserialize_any` path, which measured
/// as a large share of lookup time.
struct SubMap<'a>(Sub<'a>);

impl<'de> Deserialize<'de> for SubMap<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(SubVisitor).map(SubMap)
    }
}

/// Decodes a sub-value: strictly as a map for nested databases, leniently otherwise.
fn sub_value<'de, A: MapAccess<'de>, const NESTED: bool>(
    map: &mut A,
) -> Result<Sub<'de>, A::Error> {
    if NESTED {
        map.next_value::<SubMap>().map(|s| s.0)
    } else {
        map.next_value::<Sub>()
    }
}

/// `NESTED`: the database was detected as nested, so sub-values are decoded as maps.
struct RecordVisitor<const NESTED: bool>;

impl<'de, const NESTED: bool> Visitor<'de> for RecordVisitor<NESTED> {
    type Value = RawRecord<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a record map")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut r = RawRecord::default();
        // Flat-schema values, used only when the nested ones are absent.
        let mut flat_continent = None;
        let mut flat_country = None;
        while let Some(key) = map.next_key::<&'de str>()? {
            match key {
                "continent" => {
                    let s = sub_value::<_, NESTED>(&mut map)?;
                    if s.was_map {
                        r.nested_shape = true;
                        r.continent = s.code;
                    } else {
                        r.flat_shape = true;
                        flat_continent = s.code;
                    }
                }
                "country" => {
                    let s = sub_value::<_, NESTED>(&mut map)?;
                    if s.was_map {
                        r.nested_shape = true;
                        r.country = s.code;
                    } else {
                        flat_country = s.code;
                    }
                }
                "subdivisions" => {
                    r.nested_shape = true;
                    r.subdivision = map.next_value::<Sub>()?.first;
                }
                "location" => {
                    let s = sub_value::<_, NESTED>(&mut map)?;
                    r.nested_shape |= s.was_map;
                    r.lat = s.latitude;
                    r.lon = s.longitude;
                }
                "traits" => {
                    let s = sub_value::<_, NESTED>(&mut map)?;
                    r.asn = r.asn.or(s.asn);
                }
                "autonomous_system_number" => {
                    r.asn = map.next_value::<Scalar>()?.int();
                }
                "country_code" => {
                    r.flat_shape = true;
                    flat_country = map.next_value::<Scalar>()?.str();
                }
                "continent_code" => {
                    r.flat_shape = true;
                    flat_continent = map.next_value::<Scalar>()?.str();
                }
                "state1" => {
                    r.flat_shape = true;
                    // ip-location-db stores a region *name* here; Code::parse later keeps
                    // it only if it looks like a code.
                    if r.subdivision.is_none() {
                        r.subdivision = map.next_value::<Scalar>()?.str();
                    } else {
                        map.next_value::<IgnoredAny>()?;
                    }
                }
                "latitude" => {
                    r.flat_shape = true;
                    let v = map.next_value::<Scalar>()?.float();
                    r.lat = r.lat.or(v);
                }
                "longitude" => {
                    r.flat_shape = true;
                    let v = map.next_value::<Scalar>()?.float();
                    r.lon = r.lon.or(v);
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        r.continent = r.continent.or(flat_continent);
        r.country = r.country.or(flat_country);
        Ok(r)
    }

    // A record that is not a map (some custom databases store a bare string) carries no
    // location we understand.
    fn visit_borrowed_str<E>(self, _v: &'de str) -> Result<Self::Value, E> {
        Ok(RawRecord::default())
    }
    fn visit_str<E>(self, _v: &str) -> Result<Self::Value, E> {
        Ok(RawRecord::default())
    }
    fn visit_f64<E>(self, _v: f64) -> Result<Self::Value, E> {
        Ok(RawRecord::default())
    }
    fn visit_u64<E>(self, _v: u64) -> Result<Self::Value, E> {
        Ok(RawRecord::default())
    }
    fn visit_u128<E>(self, _v: u128) -> Result<Self::Value, E> {
        Ok(RawRecord::default())
    }
    fn visit_i64<E>(self, _v: i64) -> Result<Self::Value, E> {
        Ok(RawRecord::default())
    }
    fn visit_bool<E>(self, _v: bool) -> Result<Self::Value, E> {
        Ok(RawRecord::default())
    }
    fn visit_borrowed_bytes<E>(self, _v: &'de [u8]) -> Result<Self::Value, E> {
        Ok(RawRecord::default())
    }
    fn visit_bytes<E>(self, _v: &[u8]) -> Result<Self::Value, E> {
        Ok(RawRecord::default())
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(RawRecord::default())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        drain_seq(seq)?;
        Ok(RawRecord::default())
    }
}

/// Lenient decoding for any shape: used for flat databases and schema detection.
impl<'de> Deserialize<'de> for RawRecord<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(RecordVisitor::<false>)
    }
}

/// Faster decoding for nested databases: the record and its sub-records must be maps
/// (a non-map there makes the lookup return `None`).
pub(crate) struct NestedRecord<'a>(pub(crate) RawRecord<'a>);

impl<'de> Deserialize<'de> for NestedRecord<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(RecordVisitor::<true>).map(NestedRecord)
    }
}
