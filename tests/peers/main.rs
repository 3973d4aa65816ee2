//! Real peers against a running geosteer: dig and kdig, Knot's answers
//! compared byte for byte, Unbound as a caching ECS resolver, validators
//! (delv, Unbound) on signed zones, dnstap readers, zone transfers, NOTIFY
//! and TSIG with dig and Knot (as secondary and as primary), and dnsdist
//! sending PROXY v2.
//!
//! One test binary of the suite; `tests/README.md` says how they are laid out.

#[path = "../support/mod.rs"]
mod support;

mod dnssec;
mod dnstap;
mod e2e_dig;
mod kdig;
mod knot_diff;
mod proxy;
mod unbound;
mod xfr;
