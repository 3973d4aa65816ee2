//! Key timing: a zone is signed again when one of its keys' Publish,
//! Activate, Inactive or Delete times passes, so a rollover needs only
//! dated key files.

use std::sync::Weak;
use std::time::Duration;

use super::stages::Stages;

/// How often the key times are looked at (one atomic load of the snapshot).
const TICK: Duration = Duration::from_secs(2);

/// Starts the timer; it stops when the stages go.
pub(super) fn start(stages: Weak<Stages>) {
    let spawned = std::thread::Builder::new()
        .name("geosteer-keytimer".into())
        .spawn(move || {
            // A failed rebuild for an event is not asked for again every
            // tick (the old state keeps serving; fixing the files reloads).
            let mut tried = None;
            loop {
                std::thread::sleep(TICK);
                let Some(stages) = stages.upgrade() else {
                    break;
                };
                let now = crate::dnssec::unix_now();
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
        tracing::error!("cannot start the key timer: {e}");
    }
}
