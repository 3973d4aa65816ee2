//! Durations in configuration files and API bodies, written the way
//! operators write them: `10s`, `500ms`, `1m30s`, or a number of seconds
//! (`60`, `0.5`, `"60"`). serde `with` helpers for `geosteer.yaml`, the
//! sections other modules own (RRL, fleet, load files) and the HTTP API.

use serde::de::{self, Deserializer, Visitor};
use std::fmt;
use std::time::Duration;

/// What a duration looks like, for error messages.
const EXPECTED: &str = "a duration like \"60s\", \"2h\" or \"1m30s\", or a number of seconds";

/// Parses `60s`, `1h30m`, or a plain number of seconds (`60`, `0.5`).
pub fn parse(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    if let Ok(secs) = t.parse::<f64>() {
        return seconds(secs).ok_or_else(|| format!("invalid duration {s:?}: {EXPECTED}"));
    }
    humantime::parse_duration(t).map_err(|e| format!("invalid duration {s:?}: {e} ({EXPECTED})"))
}

/// A number of seconds as a duration; `None` when negative or not finite.
fn seconds(secs: f64) -> Option<Duration> {
    (secs.is_finite() && secs >= 0.0)
        .then(|| Duration::try_from_secs_f64(secs).ok())
        .flatten()
}

struct DurationVisitor;

impl Visitor<'_> for DurationVisitor {
    type Value = Duration;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(EXPECTED)
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Duration, E> {
        parse(v).map_err(E::custom)
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Duration, E> {
        Ok(Duration::from_secs(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Duration, E> {
        u64::try_from(v)
            .map(Duration::from_secs)
            .map_err(|_| E::custom(format!("{v} seconds: a duration cannot be negative")))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Duration, E> {
        seconds(v).ok_or_else(|| E::custom(format!("{v} seconds: not a duration ({EXPECTED})")))
    }
}

/// A duration: humantime text or a number of seconds.
pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    d.deserialize_any(DurationVisitor)
}

/// The same for an optional duration.
pub mod option {
    use serde::{Deserialize, Deserializer};
    use std::time::Duration;

    /// `Some` duration (text or seconds), or `None` for a missing value.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        #[derive(Deserialize)]
        struct Wrap(#[serde(with = "super")] Duration);
        Ok(Option::<Wrap>::deserialize(d)?.map(|w| w.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug)]
    struct T {
        #[serde(with = "super")]
        d: Duration,
        #[serde(default, with = "super::option")]
        o: Option<Duration>,
    }

    #[test]
    fn text_and_numbers() {
        let j = |s: &str| serde_json::from_str::<T>(s).map(|t| (t.d, t.o));
        assert_eq!(
            j(r#"{"d": "60s"}"#).unwrap(),
            (Duration::from_secs(60), None)
        );
        assert_eq!(j(r#"{"d": 60}"#).unwrap().0, Duration::from_secs(60));
        assert_eq!(j(r#"{"d": 0.5}"#).unwrap().0, Duration::from_millis(500));
        assert_eq!(j(r#"{"d": "90"}"#).unwrap().0, Duration::from_secs(90));
        assert_eq!(
            j(r#"{"d": "1m", "o": 7200}"#).unwrap(),
            (Duration::from_secs(60), Some(Duration::from_secs(7200)))
        );
        assert!(j(r#"{"d": -1}"#).is_err());
        assert!(
            j(r#"{"d": "soon"}"#)
                .unwrap_err()
                .to_string()
                .contains("60s")
        );
        let y = |s: &str| crate::config::parse_yaml::<T>(s, std::path::Path::new("t.yaml"));
        assert_eq!(y("d: 10\n").unwrap().d, Duration::from_secs(10));
        assert_eq!(
            y("d: 2h\no: 1.5\n").unwrap().o,
            Some(Duration::from_millis(1500))
        );
    }
}
