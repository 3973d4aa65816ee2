//! `Code`: a tiny inline uppercase ASCII code (country, continent, subdivision) and the
//! static country → continent table.

use std::fmt;
use std::str::FromStr;

/// A small inline uppercase ASCII code of 1 to 3 bytes ("EU", "GB", "ENG").
///
/// `Copy` and allocation-free so a [`Location`](super::location::Location) can be returned by value
/// from the lookup hot path. Input is accepted in any case and stored uppercase.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Code {
    bytes: [u8; 3],
    len: u8,
}

/// Why a string is not a valid [`Code`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid code {0:?}: expected 1 to 3 ASCII letters or digits")]
pub struct InvalidCode(pub String);

impl Code {
    /// Parses without allocating; `None` when `s` is empty, longer than 3 bytes, or not
    /// ASCII alphanumeric. Used on the lookup path where the error text is never needed.
    pub fn parse(s: &str) -> Option<Code> {
        let b = s.as_bytes();
        if b.is_empty() || b.len() > 3 || !b.iter().all(u8::is_ascii_alphanumeric) {
            return None;
        }
        let mut bytes = [0u8; 3];
        for (dst, src) in bytes.iter_mut().zip(b) {
            *dst = src.to_ascii_uppercase();
        }
        Some(Code {
            bytes,
            len: b.len() as u8,
        })
    }

    /// The code as an uppercase string slice.
    pub fn as_str(&self) -> &str {
        // Only ASCII alphanumerics are ever stored, so this cannot fail; the fallback keeps
        // the function panic-free regardless.
        std::str::from_utf8(&self.bytes[..usize::from(self.len)]).unwrap_or("")
    }

    /// Number of bytes (1..=3).
    pub fn len(&self) -> usize {
        usize::from(self.len)
    }

    /// Always false: a `Code` holds at least one byte. Present for clippy's `len` rule.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl FromStr for Code {
    type Err = InvalidCode;

    fn from_str(s: &str) -> Result<Code, InvalidCode> {
        Code::parse(s).ok_or_else(|| InvalidCode(s.to_owned()))
    }
}

impl TryFrom<&str> for Code {
    type Error = InvalidCode;

    fn try_from(s: &str) -> Result<Code, InvalidCode> {
        s.parse()
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Code({:?})", self.as_str())
    }
}

impl serde::Serialize for Code {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// The seven continent codes used by MaxMind and GeoNames.
pub const CONTINENTS: [&str; 7] = ["AF", "AN", "AS", "EU", "NA", "OC", "SA"];

/// ISO 3166-1 alpha-2 country → continent, following the GeoNames/MaxMind convention
/// (e.g. RU and CY are EU, TR and the Caucasus are AS). Includes XK (Kosovo), which
/// MaxMind uses although it is user-assigned. Sorted by country for binary search.
#[rustfmt::skip]
const COUNTRY_CONTINENT: &[(&str, &str)] = &[
    ("AD", "EU"), ("AE", "AS"), ("AF", "AS"), ("AG", "NA"), ("AI", "NA"), ("AL", "EU"),
    ("AM", "AS"), ("AO", "AF"), ("AQ", "AN"), ("AR", "SA"), ("AS", "OC"), ("AT", "EU"),
    ("AU", "OC"), ("AW", "NA"), ("AX", "EU"), ("AZ", "AS"), ("BA", "EU"), ("BB", "NA"),
    ("BD", "AS"), ("BE", "EU"), ("BF", "AF"), ("BG", "EU"), ("BH", "AS"), ("BI", "AF"),
    ("BJ", "AF"), ("BL", "NA"), ("BM", "NA"), ("BN", "AS"), ("BO", "SA"), ("BQ", "NA"),
    ("BR", "SA"), ("BS", "NA"), ("BT", "AS"), ("BV", "AN"), ("BW", "AF"), ("BY", "EU"),
    ("BZ", "NA"), ("CA", "NA"), ("CC", "AS"), ("CD", "AF"), ("CF", "AF"), ("CG", "AF"),
    ("CH", "EU"), ("CI", "AF"), ("CK", "OC"), ("CL", "SA"), ("CM", "AF"), ("CN", "AS"),
    ("CO", "SA"), ("CR", "NA"), ("CU", "NA"), ("CV", "AF"), ("CW", "NA"), ("CX", "AS"),
    ("CY", "EU"), ("CZ", "EU"), ("DE", "EU"), ("DJ", "AF"), ("DK", "EU"), ("DM", "NA"),
    ("DO", "NA"), ("DZ", "AF"), ("EC", "SA"), ("EE", "EU"), ("EG", "AF"), ("EH", "AF"),
    ("ER", "AF"), ("ES", "EU"), ("ET", "AF"), ("FI", "EU"), ("FJ", "OC"), ("FK", "SA"),
    ("FM", "OC"), ("FO", "EU"), ("FR", "EU"), ("GA", "AF"), ("GB", "EU"), ("GD", "NA"),
    ("GE", "AS"), ("GF", "SA"), ("GG", "EU"), ("GH", "AF"), ("GI", "EU"), ("GL", "NA"),
    ("GM", "AF"), ("GN", "AF"), ("GP", "NA"), ("GQ", "AF"), ("GR", "EU"), ("GS", "AN"),
    ("GT", "NA"), ("GU", "OC"), ("GW", "AF"), ("GY", "SA"), ("HK", "AS"), ("HM", "AN"),
    ("HN", "NA"), ("HR", "EU"), ("HT", "NA"), ("HU", "EU"), ("ID", "AS"), ("IE", "EU"),
    ("IL", "AS"), ("IM", "EU"), ("IN", "AS"), ("IO", "AS"), ("IQ", "AS"), ("IR", "AS"),
    ("IS", "EU"), ("IT", "EU"), ("JE", "EU"), ("JM", "NA"), ("JO", "AS"), ("JP", "AS"),
    ("KE", "AF"), ("KG", "AS"), ("KH", "AS"), ("KI", "OC"), ("KM", "AF"), ("KN", "NA"),
    ("KP", "AS"), ("KR", "AS"), ("KW", "AS"), ("KY", "NA"), ("KZ", "AS"), ("LA", "AS"),
    ("LB", "AS"), ("LC", "NA"), ("LI", "EU"), ("LK", "AS"), ("LR", "AF"), ("LS", "AF"),
    ("LT", "EU"), ("LU", "EU"), ("LV", "EU"), ("LY", "AF"), ("MA", "AF"), ("MC", "EU"),
    ("MD", "EU"), ("ME", "EU"), ("MF", "NA"), ("MG", "AF"), ("MH", "OC"), ("MK", "EU"),
    ("ML", "AF"), ("MM", "AS"), ("MN", "AS"), ("MO", "AS"), ("MP", "OC"), ("MQ", "NA"),
    ("MR", "AF"), ("MS", "NA"), ("MT", "EU"), ("MU", "AF"), ("MV", "AS"), ("MW", "AF"),
    ("MX", "NA"), ("MY", "AS"), ("MZ", "AF"), ("NA", "AF"), ("NC", "OC"), ("NE", "AF"),
    ("NF", "OC"), ("NG", "AF"), ("NI", "NA"), ("NL", "EU"), ("NO", "EU"), ("NP", "AS"),
    ("NR", "OC"), ("NU", "OC"), ("NZ", "OC"), ("OM", "AS"), ("PA", "NA"), ("PE", "SA"),
    ("PF", "OC"), ("PG", "OC"), ("PH", "AS"), ("PK", "AS"), ("PL", "EU"), ("PM", "NA"),
    ("PN", "OC"), ("PR", "NA"), ("PS", "AS"), ("PT", "EU"), ("PW", "OC"), ("PY", "SA"),
    ("QA", "AS"), ("RE", "AF"), ("RO", "EU"), ("RS", "EU"), ("RU", "EU"), ("RW", "AF"),
    ("SA", "AS"), ("SB", "OC"), ("SC", "AF"), ("SD", "AF"), ("SE", "EU"), ("SG", "AS"),
    ("SH", "AF"), ("SI", "EU"), ("SJ", "EU"), ("SK", "EU"), ("SL", "AF"), ("SM", "EU"),
    ("SN", "AF"), ("SO", "AF"), ("SR", "SA"), ("SS", "AF"), ("ST", "AF"), ("SV", "NA"),
    ("SX", "NA"), ("SY", "AS"), ("SZ", "AF"), ("TC", "NA"), ("TD", "AF"), ("TF", "AN"),
    ("TG", "AF"), ("TH", "AS"), ("TJ", "AS"), ("TK", "OC"), ("TL", "AS"), ("TM", "AS"),
    ("TN", "AF"), ("TO", "OC"), ("TR", "AS"), ("TT", "NA"), ("TV", "OC"), ("TW", "AS"),
    ("TZ", "AF"), ("UA", "EU"), ("UG", "AF"), ("UM", "OC"), ("US", "NA"), ("UY", "SA"),
    ("UZ", "AS"), ("VA", "EU"), ("VC", "NA"), ("VE", "SA"), ("VG", "NA"), ("VI", "NA"),
    ("VN", "AS"), ("VU", "OC"), ("WF", "OC"), ("WS", "OC"), ("XK", "EU"), ("YE", "AS"),
    ("YT", "AF"), ("ZA", "AF"), ("ZM", "AF"), ("ZW", "AF"),
];

/// The continent of an ISO 3166-1 alpha-2 country, from a static table. Used for flat
/// databases that carry only a country code.
pub fn continent_of(country: Code) -> Option<Code> {
    COUNTRY_CONTINENT
        .binary_search_by(|(c, _)| (*c).cmp(country.as_str()))
        .ok()
        .and_then(|i| Code::parse(COUNTRY_CONTINENT[i].1))
}

/// True when `code` is one of the seven continent codes.
pub fn is_continent(code: Code) -> bool {
    CONTINENTS.contains(&code.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_sorted_unique_and_valid() {
        assert!(COUNTRY_CONTINENT.windows(2).all(|w| w[0].0 < w[1].0));
        // 249 ISO 3166-1 entries plus XK.
        assert_eq!(COUNTRY_CONTINENT.len(), 250);
        for (c, k) in COUNTRY_CONTINENT {
            assert_eq!(c.len(), 2);
            assert!(CONTINENTS.contains(k), "{c} -> {k}");
        }
    }

    #[test]
    fn lookups() {
        let c = |s: &str| Code::parse(s).unwrap();
        assert_eq!(continent_of(c("gb")), Some(c("EU")));
        assert_eq!(continent_of(c("US")), Some(c("NA")));
        assert_eq!(continent_of(c("BR")), Some(c("SA")));
        assert_eq!(continent_of(c("ZA")), Some(c("AF")));
        assert_eq!(continent_of(c("AU")), Some(c("OC")));
        assert_eq!(continent_of(c("JP")), Some(c("AS")));
        assert_eq!(continent_of(c("ZZ")), None);
    }

    #[test]
    fn code_parsing() {
        assert_eq!("eng".parse::<Code>().unwrap().as_str(), "ENG");
        assert_eq!(Code::try_from("W").unwrap().to_string(), "W");
        assert!("".parse::<Code>().is_err());
        assert!("ABCD".parse::<Code>().is_err());
        assert!("A-".parse::<Code>().is_err());
        assert!("é".parse::<Code>().is_err());
    }
}
