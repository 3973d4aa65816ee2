//! Steering from real users (RUM): beacons moving their client networks
//! through the whole server, the guards against bad or hostile beacons,
//! the snippet in headless Chromium, and learned cells shared by a fleet
//! through a real etcd.
//!
//! One test binary of the suite; `tests/README.md` says how they are laid out.

#[path = "../support/mod.rs"]
mod support;

mod browser;
mod fleet;
mod guards;
mod learning;
mod threads;

use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

/// The RUM counters in `/metrics` are the process's (every `AppServer`
/// shares one Prometheus recorder). `guards` counts them exactly, so it
/// runs alone; the other tests run together.
static COUNTERS: RwLock<()> = RwLock::new(());

/// Held by a test that posts beacons but does not count them exactly.
fn shared_counters() -> RwLockReadGuard<'static, ()> {
    COUNTERS.read().unwrap_or_else(|e| e.into_inner())
}

/// Held by the test that counts them.
fn exact_counters() -> RwLockWriteGuard<'static, ()> {
    COUNTERS.write().unwrap_or_else(|e| e.into_inner())
}
