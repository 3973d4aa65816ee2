//! A fleet: instances serving the same files answer alike, and share
//! overrides, load and verdicts through a real etcd.
//!
//! One test binary of the suite; `tests/README.md` says how they are laid out.

#[path = "../support/mod.rs"]
mod support;

mod etcd;
mod instances;
