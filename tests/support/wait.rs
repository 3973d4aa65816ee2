//! Poll until something holds: a loaded 2-core machine makes every fixed
//! sleep either too short or too slow.

use std::time::{Duration, Instant};

/// Polls `f` every `every` until it holds or `within` passes; then one last
/// try decides.
pub fn eventually_every(within: Duration, every: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + within;
    while Instant::now() < end {
        if f() {
            return true;
        }
        std::thread::sleep(every);
    }
    f()
}

/// [`eventually_every`] polling every 5 ms.
pub fn eventually(within: Duration, f: impl FnMut() -> bool) -> bool {
    eventually_every(within, Duration::from_millis(5), f)
}

/// Polls `f` every `every` until it gives a value; fails the test naming
/// `what` after `within`.
pub fn until<T>(
    what: &str,
    within: Duration,
    every: Duration,
    mut f: impl FnMut() -> Option<T>,
) -> T {
    let deadline = Instant::now() + within;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(every);
    }
}
