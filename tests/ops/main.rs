//! Operating a server: the HTTP API and metrics, `geosteer explain`, hot
//! reload, and the logs.
//!
//! One test binary of the suite; `tests/README.md` says how they are laid out.

#[path = "../support/mod.rs"]
mod support;

mod explain;
mod http_api;
mod logs;
mod reload;
