//! Durations in configuration files, written the way operators write
//! them (`10s`, `500ms`, `1m`): serde `with` helpers for `geosteer.yaml`
//! and the sections other modules own (RRL, fleet, state file).

use serde::{Deserialize, Deserializer};
use std::time::Duration;

/// A duration in humantime syntax (`10s`, `1m30s`).
pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let s = String::deserialize(d)?;
    humantime::parse_duration(&s)
        .map_err(|e| serde::de::Error::custom(format!("invalid duration {s:?}: {e}")))
}

/// The same for an optional duration.
pub mod option {
    use serde::{Deserialize, Deserializer};
    use std::time::Duration;

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        Option::<String>::deserialize(d)?
            .map(|s| {
                humantime::parse_duration(&s)
                    .map_err(|e| serde::de::Error::custom(format!("invalid duration {s:?}: {e}")))
            })
            .transpose()
    }
}
