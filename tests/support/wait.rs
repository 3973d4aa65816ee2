//! Poll until something holds: a loaded 2-core machine makes every fixed
//! sleep either too short or too slow.

use std::time::{Duration, Instant};

/// How often [`until`] and [`until_true`] look again.
const POLL: Duration = Duration::from_millis(50);

/// Polls `f` every 5 ms until it holds or `within` passes; then one last
/// try decides.
pub fn eventually(within: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + within;
    while Instant::now() < end {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    f()
}

/// [`eventually`] for async tests: sleeps on the runtime between tries
/// (every 2 ms), so the tasks under test keep running.
pub async fn eventually_async(within: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + within;
    while Instant::now() < end {
        if f() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    f()
}

/// Polls `f` until it gives a value; fails the test naming `what` after
/// `within`.
pub fn until<T>(what: &str, within: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + within;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {within:?} waiting for {what}"
        );
        std::thread::sleep(POLL);
    }
}

/// Whether `f` holds every time it is asked during `window` (asked every
/// 5 ms): for what must not happen, where there is nothing to wait for.
/// Returns at the first failure.
pub fn holds_for(window: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + window;
    while Instant::now() < end {
        if !f() {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    f()
}

/// [`holds_for`] for async tests: the runtime keeps running in between.
pub async fn holds_for_async(window: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + window;
    while Instant::now() < end {
        if !f() {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    f()
}

/// [`until`] for a condition.
pub fn until_true(what: &str, within: Duration, mut f: impl FnMut() -> bool) {
    until(what, within, || f().then_some(()))
}
