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

pub use checker::{Checker, ProbeTarget};
pub use config::{CheckConfig, CheckSpec};
pub use probe::ensure_crypto_provider;
pub use registry::{HealthError, LocalChanges, Registry};
pub use state::{AdminNote, AdminState, EdgeHealth, EdgeState, EdgeStatus, Effective, unix_ms};
