//! What happens on the clock rather than on a file change: a zone is
//! signed again when one of its keys' Publish, Activate, Inactive or Delete
//! times passes (so a rollover needs only dated key files), and the memory
//! of a replaced snapshot is handed back once its last reader let go.

use std::sync::Weak;
use std::time::Duration;

use super::quiet;
use super::stages::Stages;

/// How often the clock is looked at (one atomic load of the snapshot).
const TICK: Duration = Duration::from_secs(1);

/// Starts the timer; it stops when the stages go.
pub(super) fn start(stages: Weak<Stages>) {
    let spawned = std::thread::Builder::new()
        .name("geosteer-timer".into())
        .spawn(move || {
            // A failed rebuild for an event is not asked for again every
            // tick (the old state keeps serving; fixing the files reloads).
            let mut tried = None;
            loop {
                std::thread::sleep(TICK);
                let Some(stages) = stages.upgrade() else {
                    break;
                };
                // Here rather than on a build thread: trimming holds each
                // malloc arena's lock in turn, which a thread at low
                // priority could keep from a query thread for a while.
                if stages.retired_freed() {
                    quiet::release_freed_memory();
                }
                if stages.cfg.dnssec.is_none() {
                    continue;
                }
                let now = crate::clock::unix_now();
                let due = stages
                    .shared
                    .load()
                    .zones
                    .values()
                    .filter_map(|z| z.dnssec.as_ref()?.next_event)
                    .filter(|&t| t <= now)
                    .min();
                if due.is_some() && due != tried {
                    tried = due;
                    // The files stage rebuilds the zones that are due.
                    stages.request_files("key timing");
                }
            }
        });
    if let Err(e) = spawned {
        tracing::error!("cannot start the reload timer: {e}");
    }
}
