//! The listener's guards: a rate per client network, and one beacon per
//! token.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use super::token::{Id, Net};

/// Token buckets per client network: `rate` a minute, bursts of `rate`.
pub struct Limiter {
    per_sec: f64,
    burst: f64,
    shards: Vec<Mutex<HashMap<Net, (f64, Instant)>>>,
}

/// Entries a shard holds before idle ones are swept.
const SWEEP_AT: usize = 16_384;

impl Limiter {
    pub fn new(per_minute: u32) -> Limiter {
        Limiter {
            per_sec: f64::from(per_minute) / 60.0,
            burst: f64::from(per_minute),
            shards: (0..16).map(|_| Mutex::new(HashMap::new())).collect(),
        }
    }

    /// Takes a token for `net` if it has one.
    pub fn allow(&self, net: Net, now: Instant) -> bool {
        let shard = &self.shards[(net.bits().wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 60) as usize];
        let mut m = shard.lock().unwrap_or_else(|e| e.into_inner());
        if m.len() >= SWEEP_AT {
            let (per_sec, burst) = (self.per_sec, self.burst);
            m.retain(|_, (t, at)| *t + now.duration_since(*at).as_secs_f64() * per_sec < burst);
        }
        let (tokens, at) = m.entry(net).or_insert((self.burst, now));
        *tokens = (*tokens + now.duration_since(*at).as_secs_f64() * self.per_sec).min(self.burst);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// Ids of page views whose beacon was taken, until their token expires:
/// a token is good for one beacon.
#[derive(Default)]
pub struct Seen {
    shards: [Mutex<HashMap<Id, u64>>; 16],
}

/// Ids a shard remembers at most (beyond that, expired ones are swept and
/// then the oldest go).
const SEEN_MAX: usize = 1 << 16;

impl Seen {
    /// Marks `id` taken; false if it already was.
    pub fn take(&self, id: Id, expires: u64, now: u64) -> bool {
        let mut m = self.shards[usize::from(id[0] & 15)]
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if m.len() >= SEEN_MAX {
            m.retain(|_, e| *e >= now);
            if m.len() >= SEEN_MAX
                && let Some(k) = m.iter().min_by_key(|(_, e)| **e).map(|(k, _)| *k)
            {
                m.remove(&k);
            }
        }
        m.insert(id, expires).is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn limiter_allows_rate_per_minute() {
        let l = Limiter::new(60);
        let net = Net::of("192.0.2.1".parse().unwrap());
        let other = Net::of("192.0.3.1".parse().unwrap());
        let t = Instant::now();
        assert_eq!((0..100).filter(|_| l.allow(net, t)).count(), 60);
        assert!(l.allow(other, t), "another /24 has its own bucket");
        assert!(!l.allow(net, t + Duration::from_millis(500)));
        assert!(l.allow(net, t + Duration::from_millis(1100)));
    }

    #[test]
    fn seen_takes_each_id_once() {
        let s = Seen::default();
        assert!(s.take([1; 8], 100, 0));
        assert!(!s.take([1; 8], 100, 0));
        assert!(s.take([2; 8], 100, 0));
    }
}
