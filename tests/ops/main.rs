//! Operating a server: the HTTP API and metrics (as Prometheus reads them),
//! the operations of the CLI (drain, load, status...) against a running
//! server, `geosteer explain` offline and live, hot reload, and the logs.
//!
//! One test binary of the suite; `tests/README.md` says how they are laid out.

#[path = "../support/mod.rs"]
mod support;

mod explain;
mod explain_live;
mod http_api;
mod logs;
mod metrics_text;
mod operations;
mod reload;
