//! Edge health: probes, state machine, admin overrides and load feed.
//!
//! - [`CheckConfig`] is a `checks:` entry of a pools file; [`CheckConfig::validate`]
//!   turns it into a [`CheckSpec`].
//! - [`Registry`] holds one [`EdgeHealth`] per (zone, edge) across reloads,
//!   and persists admin overrides.
//! - [`Checker`] probes the [`ProbeTarget`]s it is given and feeds verdicts
//!   into their [`EdgeHealth`].
//! - Steering reads [`EdgeHealth::effective`]: one atomic load per call.

mod checker;
mod config;
mod probe;
mod registry;
mod state;

use std::path::PathBuf;

pub use checker::{Checker, ProbeTarget, REFRESH_EVERY};
pub use config::{
    CheckConfig, CheckKind, CheckSpec, DEFAULT_FALL, DEFAULT_INTERVAL, DEFAULT_RISE,
    DEFAULT_TIMEOUT, Initial, Require, Thresholds,
};
pub use probe::{BODY_CAP, ensure_crypto_provider};
pub use registry::{LocalChanges, OverrideStatus, Registry};
pub use state::{AdminNote, AdminState, EdgeHealth, EdgeState, EdgeStatus, Effective, unix_ms};

/// Errors of the health registry.
#[derive(Debug, thiserror::Error)]
pub enum HealthError {
    /// No edge of that name (in that zone).
    #[error("no edge {edge:?}{}", zone.as_deref().map(|z| format!(" in zone {z:?}")).unwrap_or_default())]
    UnknownEdge { zone: Option<String>, edge: String },
    /// A fed load outside 0..=1 (or NaN).
    #[error("load {0} is not within 0..=1")]
    InvalidLoad(f64),
    /// Reading or writing the admin state file failed.
    #[error("health state file {}: {source}", path.display())]
    StateFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The admin state file is not valid JSON of the expected shape.
    #[error("health state file {}: {source}", path.display())]
    StateFormat {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
}
