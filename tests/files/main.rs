//! The files operators edit: zone files (every record type BIND loads,
//! served as BIND and Knot serve it), pools files as YAML, pushed load
//! files, and `geosteer check` refusing what `serve` refuses.
//!
//! One test binary of the suite; `tests/README.md` says how they are laid out.

#[path = "../support/mod.rs"]
mod support;

mod check_serve;
mod config_yaml;
mod load_file;
mod rrtypes;
mod zone_file;
mod zone_isolation;
