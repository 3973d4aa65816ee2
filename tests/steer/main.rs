//! Steering: which edges a client gets (GeoIP, rules, RTT, bias, cost,
//! capacity, partners), the orders precomputed per GeoIP record, steered
//! HTTPS/SVCB, and the GeoIP reader and writer.
//!
//! One test binary of the suite; `tests/README.md` says how they are laid out.

#[path = "../support/mod.rs"]
mod support;

mod answers;
mod decisions;
mod geo;
mod geo_walk;
mod order_table;
mod rtt;
mod steered_https;
