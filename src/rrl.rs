//! Response rate limiting (RRL) for UDP, after BIND's and Knot's design.
//!
//! An authoritative server answers anyone, and UDP sources can be forged, so
//! without limits it can be used to reflect (and amplify) traffic at a
//! victim. RRL counts responses per (client prefix, answer kind): a /24 for
//! IPv4 and a /56 for IPv6, and the kinds BIND and Knot tell apart
//! (positive, NXDOMAIN, NODATA, referral, error). Each counter is a credit
//! balance: it gains `rate` per second up to `rate`, loses one per response,
//! and may fall to `-rate × window`, so a source that keeps flooding stays
//! limited until it has been quiet for up to `window` seconds (BIND's
//! `window`). A limited response is dropped, except every `slip`-th, which
//! is sent as an empty truncated answer (TC=1) so a real resolver behind
//! the forged prefix retries over TCP, which is never limited.
//!
//! The table is fixed-size and set-associative, split into shards each
//! behind its own mutex: the query path does one hash, one uncontended
//! lock and a scan of a few entries, with no allocation. A flood of forged
//! sources can only evict entries, never grow the table; eviction prefers
//! entries that are not in debt, so a prefix being limited stays limited.

use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Duration;

use serde::Deserialize;

use crate::metrics::RrlMetrics;
use crate::wire::Rcode;

/// `rrl:` in `geosteer.yaml`. Absent means off.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RrlConfig {
    /// Responses per second per (prefix, kind).
    pub rate: u32,
    /// Every Nth limited response goes out truncated; 0: drop them all.
    #[serde(default = "default_slip")]
    pub slip: u32,
    /// How long a flooding source's debt can last.
    #[serde(default = "default_window", with = "crate::duration")]
    pub window: Duration,
    /// Entries in the table (rounded up to a power of two); bounds memory.
    #[serde(default = "default_table_size")]
    pub table_size: usize,
}

fn default_slip() -> u32 {
    2
}
fn default_window() -> Duration {
    Duration::from_secs(15)
}
fn default_table_size() -> usize {
    65_536
}

impl RrlConfig {
    /// A config with the defaults for everything but `rate`.
    pub fn with_rate(rate: u32) -> RrlConfig {
        RrlConfig {
            rate,
            slip: default_slip(),
            window: default_window(),
            table_size: default_table_size(),
        }
    }

    /// Range checks; the message names the key.
    pub fn validate(&self) -> Result<(), String> {
        if self.rate == 0 || self.rate > 1_000_000 {
            return Err("rrl.rate: must be 1..=1000000 responses per second".into());
        }
        if self.slip > 10 {
            return Err("rrl.slip: must be 0..=10".into());
        }
        if self.window < Duration::from_secs(1) || self.window > Duration::from_secs(3600) {
            return Err("rrl.window: must be 1s..=1h".into());
        }
        if !(WAYS..=1 << 24).contains(&self.table_size) {
            return Err(format!("rrl.table_size: must be {WAYS}..=16777216"));
        }
        Ok(())
    }
}

/// The answer classes BIND and Knot count separately: a flood of one kind
/// (say NXDOMAIN for random names) does not use up another's budget.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Positive = 0,
    NxDomain = 1,
    NoData = 2,
    Referral = 3,
    Error = 4,
}

impl Kind {
    /// Classifies a rendered response: `rcode` from the answer core (it
    /// knows the extended rcode), counts and AA from the header.
    pub fn of(rcode: Rcode, resp: &[u8]) -> Kind {
        if resp.len() < 12 {
            return Kind::Error;
        }
        let ancount = u16::from_be_bytes([resp[6], resp[7]]);
        let nscount = u16::from_be_bytes([resp[8], resp[9]]);
        let aa = resp[2] & 0x04 != 0;
        match rcode {
            Rcode::NoError if ancount > 0 => Kind::Positive,
            // Not authoritative, nothing in the answer, NS in authority.
            Rcode::NoError if !aa && nscount > 0 => Kind::Referral,
            Rcode::NoError => Kind::NoData,
            Rcode::NxDomain => Kind::NxDomain,
            _ => Kind::Error,
        }
    }
}

/// What to do with one UDP response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Send,
    /// Send an empty truncated response instead.
    Slip,
    Drop,
}

/// Associativity: a key may live in any of this many neighbouring slots.
const WAYS: usize = 8;
/// Upper bound on shards; fewer for small tables.
const MAX_SHARDS: usize = 64;

#[derive(Clone, Copy, Default)]
struct Entry {
    /// Prefix, family and kind packed exactly (no collisions); 0 = empty.
    key: u64,
    /// Credit: responses still allowed; negative is debt.
    balance: i32,
    /// Seconds since the table's epoch at the last response.
    last: u32,
    /// Limited responses since the last slip.
    slipped: u32,
}

/// The rate limiter. One per server, shared by every UDP worker.
pub struct Rrl {
    rate: i64,
    window: u32,
    slip: u32,
    shards: Box<[Mutex<Box<[Entry]>>]>,
    /// log2 of sets per shard.
    set_bits: u32,
    /// Per-process hash key, so forged sources can't aim at one set.
    seed: u64,
    /// [`coarse_secs`] when the table was made.
    epoch: u64,
    metrics: RrlMetrics,
}

/// The exact key: IPv4 /24 or IPv6 /56, a family bit, and the kind.
fn key(ip: IpAddr, kind: Kind) -> u64 {
    let (family, prefix) = match ip {
        IpAddr::V4(a) => (1u64, (u32::from(a) >> 8) as u64),
        IpAddr::V6(a) => match a.to_ipv4_mapped() {
            Some(v4) => (1, (u32::from(v4) >> 8) as u64),
            None => (2, (u128::from(a) >> 72) as u64),
        },
    };
    // 56 prefix bits, 2 family bits, 3 kind bits: at most 61 bits, never 0.
    (prefix << 5) | (family << 3) | kind as u64
}

/// Whole seconds of `CLOCK_MONOTONIC_COARSE`: RRL counts in seconds, and
/// the coarse clock is read from the vDSO without the TSC read and
/// scaling of `Instant::now()` (which cost ~65 of RRL's ~236 instructions
/// per response under callgrind). Its resolution (a few ms) is far below
/// a second.
fn coarse_secs() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid out-pointer; the clock id exists on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC_COARSE, &mut ts) };
    ts.tv_sec as u64
}

/// splitmix64's finaliser: cheap and mixes every input bit.
fn mix(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

impl Rrl {
    /// Builds the table; `cfg` must have passed [`RrlConfig::validate`].
    pub fn new(cfg: &RrlConfig) -> Rrl {
        let slots = cfg.table_size.max(WAYS).next_power_of_two();
        let shards = (slots / WAYS).clamp(1, MAX_SHARDS);
        let per_shard = slots / shards;
        Rrl {
            rate: cfg.rate as i64,
            window: cfg.window.as_secs().max(1) as u32,
            slip: cfg.slip,
            shards: (0..shards)
                .map(|_| Mutex::new(vec![Entry::default(); per_shard].into_boxed_slice()))
                .collect(),
            set_bits: (per_shard / WAYS).trailing_zeros(),
            seed: rand::random(),
            epoch: coarse_secs(),
            metrics: RrlMetrics::new(),
        }
    }

    /// Bytes the table holds; fixed at construction.
    #[cfg(test)]
    fn table_bytes(&self) -> usize {
        self.shards.len() * (WAYS << self.set_bits) * std::mem::size_of::<Entry>()
    }

    /// Counts one response to `client` and says whether to send it.
    pub fn decide(&self, client: IpAddr, kind: Kind) -> Verdict {
        let now = coarse_secs().saturating_sub(self.epoch);
        self.decide_at(client, kind, now as u32)
    }

    /// [`Rrl::decide`] at a given second, for tests of the time behaviour.
    pub fn decide_at(&self, client: IpAddr, kind: Kind, now: u32) -> Verdict {
        let k = key(client, kind);
        let h = mix(k ^ self.seed);
        let shard = &self.shards[(h >> 32) as usize % self.shards.len()];
        let set = (h as usize) & ((1 << self.set_bits) - 1);
        // A poisoned lock only means another worker panicked mid-update;
        // the entries are plain numbers and still usable.
        let mut table = shard.lock().unwrap_or_else(|p| p.into_inner());
        let ways = &mut table[set * WAYS..(set + 1) * WAYS];
        let i = match ways.iter().position(|e| e.key == k) {
            Some(i) => i,
            None => {
                let i = self.victim(ways, now);
                ways[i] = Entry {
                    key: k,
                    balance: self.rate as i32,
                    last: now,
                    slipped: 0,
                };
                i
            }
        };
        let e = &mut ways[i];
        let age = now.saturating_sub(e.last);
        if age > self.window {
            e.balance = self.rate as i32;
        } else if age > 0 {
            e.balance = (e.balance as i64 + age as i64 * self.rate).min(self.rate) as i32;
        }
        e.last = now;
        e.balance -= 1;
        if e.balance >= 0 {
            return Verdict::Send;
        }
        let floor = -(self.rate * self.window as i64).min(i32::MAX as i64) as i32;
        e.balance = e.balance.max(floor);
        if self.slip == 0 {
            return Verdict::Drop;
        }
        e.slipped += 1;
        if e.slipped >= self.slip {
            e.slipped = 0;
            Verdict::Slip
        } else {
            Verdict::Drop
        }
    }

    /// The slot to reuse in a full set: an empty one, else the one with
    /// the most credit (idle sources first, never a source in debt while
    /// another is not), the least recently used among equals.
    fn victim(&self, ways: &[Entry], now: u32) -> usize {
        if let Some(i) = ways.iter().position(|e| e.key == 0) {
            return i;
        }
        let credit = |e: &Entry| {
            let age = now.saturating_sub(e.last) as i64;
            if age > self.window as i64 {
                self.rate
            } else {
                (e.balance as i64 + age * self.rate).min(self.rate)
            }
        };
        ways.iter()
            .enumerate()
            .max_by_key(|(_, e)| (credit(e), std::cmp::Reverse(e.last)))
            .map_or(0, |(i, _)| i)
    }

    /// Applies RRL to a rendered UDP response of `len` bytes in `out`:
    /// returns the length to send (the same, or a truncated stub's) or
    /// `None` to drop it. Counts drops and slips in the metrics.
    pub fn limit(&self, client: IpAddr, rcode: Rcode, out: &mut [u8], len: usize) -> Option<usize> {
        match self.decide(client, Kind::of(rcode, &out[..len])) {
            Verdict::Send => Some(len),
            Verdict::Drop => {
                self.metrics.dropped.increment(1);
                None
            }
            Verdict::Slip => {
                self.metrics.slipped.increment(1);
                Some(truncate_to_stub(out, len))
            }
        }
    }
}

/// Cuts a response down to its header and question with TC set and no
/// records: the smallest thing that makes a resolver retry over TCP.
pub fn truncate_to_stub(out: &mut [u8], len: usize) -> usize {
    if len < 12 {
        return len;
    }
    let mut end = 12;
    if u16::from_be_bytes([out[4], out[5]]) > 0 {
        // Our own rendering: the question name is uncompressed labels.
        let mut i = 12;
        while i < len && out[i] != 0 && out[i] & 0xC0 == 0 {
            i += 1 + out[i] as usize;
        }
        end = if i < len && out[i] == 0 && i + 5 <= len {
            i + 5
        } else {
            12
        };
    }
    out[2] |= 0x02;
    out[4..6].copy_from_slice(&((end > 12) as u16).to_be_bytes());
    out[6..12].fill(0);
    end
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rrl(rate: u32, slip: u32, window: u64) -> Rrl {
        Rrl::new(&RrlConfig {
            rate,
            slip,
            window: Duration::from_secs(window),
            table_size: 1024,
        })
    }

    fn run(r: &Rrl, ip: &str, kind: Kind, n: usize, now: u32) -> [usize; 3] {
        let ip: IpAddr = ip.parse().unwrap();
        let mut c = [0; 3];
        for _ in 0..n {
            c[r.decide_at(ip, kind, now) as usize] += 1;
        }
        c
    }

    #[test]
    fn rate_per_second_then_slip_every_other() {
        let r = rrl(10, 2, 5);
        assert_eq!(run(&r, "192.0.2.1", Kind::Positive, 30, 0), [10, 10, 10]);
        // The same /24, same kind: same bucket.
        assert_eq!(run(&r, "192.0.2.200", Kind::Positive, 2, 0), [0, 1, 1]);
        // Another kind and another prefix are separate.
        assert_eq!(run(&r, "192.0.2.1", Kind::NxDomain, 10, 0)[0], 10);
        assert_eq!(run(&r, "192.0.3.1", Kind::Positive, 10, 0)[0], 10);
    }

    #[test]
    fn debt_lasts_up_to_the_window() {
        let r = rrl(10, 0, 3);
        // A flood of 1000 in one second: 10 sent, debt floored at -30.
        assert_eq!(run(&r, "192.0.2.1", Kind::Positive, 1000, 0), [10, 0, 990]);
        // Two quiet seconds pay back 20 of the 30: still nothing.
        assert_eq!(run(&r, "192.0.2.1", Kind::Positive, 1, 2)[0], 0);
        // Past the window the source starts afresh.
        assert_eq!(run(&r, "192.0.2.1", Kind::Positive, 20, 6), [10, 0, 10]);
    }

    #[test]
    fn ipv6_by_56_and_mapped_v4() {
        let r = rrl(5, 0, 5);
        assert_eq!(run(&r, "2001:db8:0:ff::1", Kind::Positive, 5, 0)[0], 5);
        // Same /56, different /64.
        assert_eq!(run(&r, "2001:db8:0:1::1", Kind::Positive, 1, 0)[0], 0);
        assert_eq!(run(&r, "2001:db8:0:100::1", Kind::Positive, 1, 0)[0], 1);
        assert_eq!(run(&r, "192.0.2.1", Kind::Positive, 5, 0)[0], 5);
        assert_eq!(run(&r, "::ffff:192.0.2.9", Kind::Positive, 1, 0)[0], 0);
    }

    #[test]
    fn limited_prefix_survives_a_forged_source_flood() {
        let r = rrl(10, 0, 15);
        run(&r, "192.0.2.1", Kind::Positive, 100, 0);
        let bytes = r.table_bytes();
        // 200,000 forged /24s, each sending once: they fill the table, but
        // the limited entry is not the one evicted.
        for i in 0..200_000u32 {
            let ip = std::net::Ipv4Addr::from((i << 8) | 0x0100_0000);
            r.decide_at(IpAddr::V4(ip), Kind::Positive, 1);
        }
        assert_eq!(r.table_bytes(), bytes);
        assert_eq!(
            run(&r, "192.0.2.1", Kind::Positive, 1, 1)[0],
            0,
            "victim's entry was evicted"
        );
    }

    #[test]
    fn classify_and_stub() {
        // id, flags (QR AA), qd=1, an=1, ns=0, ar=0, www.x A IN, one A record.
        let mut resp = vec![
            0, 1, 0x84, 0, 0, 1, 0, 1, 0, 0, 0, 0, 3, b'w', b'w', b'w', 1, b'x', 0, 0, 1, 0, 1,
        ];
        resp.extend_from_slice(&[0xC0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 1]);
        assert_eq!(Kind::of(Rcode::NoError, &resp), Kind::Positive);
        assert_eq!(Kind::of(Rcode::NxDomain, &resp), Kind::NxDomain);
        assert_eq!(Kind::of(Rcode::Refused, &resp), Kind::Error);
        let mut nodata = resp.clone();
        nodata[7] = 0;
        assert_eq!(Kind::of(Rcode::NoError, &nodata), Kind::NoData);
        nodata[2] = 0x80;
        nodata[9] = 2;
        assert_eq!(Kind::of(Rcode::NoError, &nodata), Kind::Referral);
        let len = resp.len();
        let n = truncate_to_stub(&mut resp, len);
        assert_eq!(n, 23);
        assert_eq!(resp[2], 0x86);
        assert_eq!(&resp[4..12], &[0, 1, 0, 0, 0, 0, 0, 0]);
    }

    #[test]
    fn config_checks() {
        assert!(RrlConfig::with_rate(100).validate().is_ok());
        assert!(
            RrlConfig::with_rate(0)
                .validate()
                .unwrap_err()
                .contains("rrl.rate")
        );
        let mut c = RrlConfig::with_rate(1);
        c.window = Duration::from_millis(10);
        assert!(c.validate().unwrap_err().contains("rrl.window"));
    }
}
