//! Transports over real sockets on loopback (UDP workers, TCP), and the
//! abuse limits of a running server (connection caps, slow clients,
//! floods).
//!
//! One test binary of the suite; `tests/README.md` says how they are laid out.

#[path = "../support/mod.rs"]
mod support;

mod abuse;
mod transports;
