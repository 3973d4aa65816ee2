//! The answer core: authoritative answers over real UDP and TCP, EDNS and
//! protocol details, the pre-rendered paths against the general one, ECS
//! validation, rate limiting, and no allocation per query.
//!
//! One test binary of the suite; `tests/README.md` says how they are laid out.

#[path = "../support/mod.rs"]
mod support;

mod alloc;
mod answers;
mod ecs;
mod fast_path;
mod negative_path;
mod protocol;
mod rrl;
