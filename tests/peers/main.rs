//! Real peers against a running geosteer: dig and kdig, Knot's answers
//! compared byte for byte, Unbound as a caching ECS resolver, validators
//! (delv, Unbound) on signed zones, and dnstap readers.
//!
//! One test binary of the suite; `tests/README.md` says how they are laid out.

#[path = "../support/mod.rs"]
mod support;

mod dnssec;
mod dnstap;
mod e2e_dig;
mod kdig;
mod knot_diff;
mod unbound;
