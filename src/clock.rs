//! The wall clock as DNS and the fleet read it: Unix time.

use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch (RRSIG and key timing, cookie timestamps,
/// the signature caches' freshness).
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Milliseconds since the Unix epoch (the fleet's timestamps in etcd).
pub fn unix_now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
