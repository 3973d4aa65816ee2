//! Edge health: probes against real TCP, HTTP and TLS servers, rise and
//! fall, load hysteresis, overrides, end to end through DNS answers, and
//! the probes' source address.
//!
//! One test binary of the suite; `tests/README.md` says how they are laid out.

#[path = "../support/mod.rs"]
mod support;

mod checks;
mod e2e;
mod probe_source;
