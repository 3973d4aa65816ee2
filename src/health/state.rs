//! Per-edge health: the lock-free effective state read by the query path and
//! the details behind it (rise/fall counting, load hysteresis, admin override).

use std::sync::Mutex;
use std::sync::atomic::{AtomicU8, AtomicU16, Ordering};
use std::time::{Duration, Instant, SystemTime};

use serde::{Deserialize, Serialize};

/// Load thresholds with hysteresis: `load >= overload` makes an edge
/// overloaded, and it stays so until `load <= recover`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Thresholds {
    /// Load at or above which an edge becomes overloaded.
    pub overload: f64,
    /// Load at or below which an overloaded edge recovers.
    pub recover: f64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            overload: 0.9,
            recover: 0.75,
        }
    }
}

/// What probes and load say about an edge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EdgeState {
    Up,
    Overloaded,
    Down,
}

/// An operator's override.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AdminState {
    /// Follow probes and load.
    #[default]
    Auto,
    /// Serve regardless of probes and load.
    Up,
    /// Never serve.
    Down,
    /// Stop sending new clients (steering decides how).
    Drain,
}

/// Why an override was set and when it lifts itself: `geosteer drain lhr
/// --for 2h --reason "fibre cut"`. Kept with the override in the state
/// file and in etcd, shown wherever the override is.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdminNote {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Unix time in milliseconds after which the override is `auto` again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until_ms: Option<u64>,
}

/// Unix time now, in milliseconds.
pub fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis().min(u128::from(u64::MAX)) as u64)
}

impl AdminNote {
    /// A note lifting the override `ttl` from now (none: until lifted).
    pub fn new(reason: Option<String>, ttl: Option<Duration>) -> AdminNote {
        AdminNote {
            reason: reason.filter(|r| !r.trim().is_empty()),
            until_ms: ttl
                .map(|t| unix_ms().saturating_add(t.as_millis().min(u128::from(u64::MAX)) as u64)),
        }
    }

    /// Whether the override has run out at `now_ms`.
    pub fn expired(&self, now_ms: u64) -> bool {
        self.until_ms.is_some_and(|u| u <= now_ms)
    }

    /// When it lifts, RFC 3339 (UTC).
    pub fn until_rfc3339(&self) -> Option<String> {
        self.until_ms.map(|ms| {
            humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + Duration::from_millis(ms))
                .to_string()
        })
    }

    /// Seconds left until it lifts (0 when past).
    pub fn expires_in_secs(&self, now_ms: u64) -> Option<f64> {
        self.until_ms
            .map(|u| u.saturating_sub(now_ms) as f64 / 1000.0)
    }
}

/// The state steering acts on: the admin override applied to [`EdgeState`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Effective {
    Up,
    Overloaded,
    Drain,
    Down,
}

impl Effective {
    fn to_bits(self) -> u8 {
        match self {
            Effective::Up => 0,
            Effective::Overloaded => 1,
            Effective::Drain => 2,
            Effective::Down => 3,
        }
    }

    fn from_bits(b: u8) -> Effective {
        match b & 3 {
            0 => Effective::Up,
            1 => Effective::Overloaded,
            2 => Effective::Drain,
            _ => Effective::Down,
        }
    }
}

impl EdgeState {
    fn to_bits(self) -> u8 {
        match self {
            EdgeState::Up => 0,
            EdgeState::Overloaded => 1,
            EdgeState::Down => 2,
        }
    }

    fn from_bits(b: u8) -> EdgeState {
        match b & 3 {
            0 => EdgeState::Up,
            1 => EdgeState::Overloaded,
            _ => EdgeState::Down,
        }
    }
}

/// What an edge looks like to the admin API.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EdgeStatus {
    /// The edge's name.
    pub name: String,
    pub zone: String,
    /// What probes and load say.
    pub state: EdgeState,
    pub admin: AdminState,
    /// Why the override was set, when the operator said.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub admin_reason: Option<String>,
    /// When the override lifts itself (RFC 3339), if it does.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub admin_until: Option<String>,
    /// Seconds until then.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub admin_expires_in_secs: Option<f64>,
    /// What steering uses.
    pub effective: Effective,
    /// The load currently in force (highest unexpired of probe and fed load).
    pub last_load: Option<f64>,
    /// When the last probe verdict came in (RFC 3339, UTC).
    pub last_check: Option<String>,
    pub last_error: Option<String>,
    /// Seconds since the effective state last changed.
    pub in_state_for_secs: f64,
    /// The check's name, `None` for an edge without a check.
    pub check: Option<String>,
    pub probes_ok: u64,
    pub probes_failed: u64,
    /// Consecutive verdicts disagreeing with the current up/down state
    /// (the rise or fall counter).
    pub consecutive: u32,
    /// How many times the effective state changed.
    pub transitions: u64,
    /// This instance's own probes say up (rise/fall applied).
    pub probe_healthy: bool,
    /// The fleet's quorum verdict when it decides (see `fleet.health_quorum`);
    /// absent when this instance goes by its own probes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fleet_healthy: Option<bool>,
}

/// `now + ttl`, saturating at a year out instead of panicking on overflow
/// (a TTL comes from the admin API, so it can be anything).
fn deadline(now: Instant, ttl: Duration) -> Instant {
    const FAR: Duration = Duration::from_secs(365 * 24 * 3600);
    now + ttl.min(FAR)
}

/// One load reading and when it stops counting.
#[derive(Debug, Clone, Copy)]
struct TimedLoad {
    load: f64,
    until: Instant,
}

/// A probe round's result for one edge (all its addresses combined).
#[derive(Debug, Clone)]
pub struct Verdict {
    pub success: bool,
    /// A valid load reading, if the check reads one and it parsed.
    pub load: Option<f64>,
    /// Why the round (or part of it) failed, or why the load was ignored.
    pub error: Option<String>,
}

#[derive(Debug)]
struct Details {
    admin: AdminState,
    note: AdminNote,
    /// Up/down as decided by rise/fall on this instance's probes.
    healthy: bool,
    /// The fleet's quorum verdict, which overrides `healthy` while set.
    fleet_healthy: Option<bool>,
    /// Consecutive verdicts that disagree with `healthy`.
    consecutive: u32,
    overloaded: bool,
    thresholds: Thresholds,
    probe_load: Option<TimedLoad>,
    fed_load: Option<TimedLoad>,
    current_load: Option<f64>,
    check: Option<String>,
    last_check: Option<SystemTime>,
    last_error: Option<String>,
    since: Instant,
    probes_ok: u64,
    probes_failed: u64,
    transitions: u64,
}

/// Health of one edge, shared between the registry, the checker and steering.
#[derive(Debug)]
pub struct EdgeHealth {
    zone: String,
    name: String,
    /// Effective in bits 0..2, EdgeState in bits 2..4: the query path's one load.
    packed: AtomicU8,
    /// The load in force, in permille, or [`NO_LOAD`]: steering's
    /// capacity shares read it with one atomic load.
    load_permille: AtomicU16,
    details: Mutex<Details>,
}

/// [`EdgeHealth::load_permille`] when no load is known.
const NO_LOAD: u16 = u16::MAX;

fn pack(e: Effective, s: EdgeState) -> u8 {
    e.to_bits() | (s.to_bits() << 2)
}

impl EdgeHealth {
    pub(crate) fn new(zone: &str, name: &str, initial: EdgeState, admin: AdminState) -> Self {
        let now = Instant::now();
        let d = Details {
            admin,
            note: AdminNote::default(),
            healthy: initial != EdgeState::Down,
            fleet_healthy: None,
            consecutive: 0,
            overloaded: false,
            thresholds: Thresholds::default(),
            probe_load: None,
            fed_load: None,
            current_load: None,
            check: None,
            last_check: None,
            last_error: None,
            since: now,
            probes_ok: 0,
            probes_failed: 0,
            transitions: 0,
        };
        let state = if d.healthy {
            EdgeState::Up
        } else {
            EdgeState::Down
        };
        let eff = effective_of(admin, state);
        EdgeHealth {
            zone: zone.to_owned(),
            name: name.to_owned(),
            packed: AtomicU8::new(pack(eff, state)),
            load_permille: AtomicU16::new(NO_LOAD),
            details: Mutex::new(d),
        }
    }

    /// The zone this edge belongs to.
    pub fn zone(&self) -> &str {
        &self.zone
    }

    /// The edge's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The state steering acts on. One atomic load: no lock, no clock.
    #[inline]
    pub fn effective(&self) -> Effective {
        Effective::from_bits(self.packed.load(Ordering::Acquire))
    }

    /// What probes and load say, ignoring the admin override. Lock-free.
    #[inline]
    pub fn state(&self) -> EdgeState {
        EdgeState::from_bits(self.packed.load(Ordering::Acquire) >> 2)
    }

    /// The load in force (0..=1), if any is known. One atomic load.
    #[inline]
    pub fn load(&self) -> Option<f64> {
        match self.load_permille.load(Ordering::Relaxed) {
            NO_LOAD => None,
            p => Some(f64::from(p) / 1000.0),
        }
    }

    /// The current admin override.
    pub fn admin(&self) -> AdminState {
        self.lock().admin
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Details> {
        // A panic while holding this lock cannot leave Details inconsistent
        // in a way that matters more than losing health data, so go on.
        self.details.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Feeds an externally measured load (0..=1) valid for `ttl`. Uses the
    /// edge's thresholds (the check's, or 0.9/0.75 without a check).
    /// Non-finite loads are ignored; others are clamped into 0..=1.
    pub fn feed_load(&self, load: f64, ttl: Duration) {
        if !load.is_finite() {
            return;
        }
        let now = Instant::now();
        let mut d = self.lock();
        d.fed_load = Some(TimedLoad {
            load: load.clamp(0.0, 1.0),
            until: deadline(now, ttl),
        });
        self.recompute(&mut d, now);
    }

    pub(crate) fn set_admin(&self, admin: AdminState, note: AdminNote) {
        let mut d = self.lock();
        d.admin = admin;
        d.note = if admin == AdminState::Auto {
            AdminNote::default()
        } else {
            note
        };
        self.recompute(&mut d, Instant::now());
    }

    /// Why and until when the override holds.
    pub fn admin_note(&self) -> AdminNote {
        self.lock().note.clone()
    }

    /// Re-evaluates load expiry. Called by the background ticker so that a
    /// fed load's TTL takes effect without the query path reading a clock.
    pub fn refresh(&self, now: Instant) {
        let mut d = self.lock();
        if d.fed_load.is_some() || d.probe_load.is_some() || d.overloaded {
            self.recompute(&mut d, now);
        }
    }

    /// A check starts probing this edge: take its thresholds and restart the
    /// rise/fall count (a new check's verdicts are not comparable).
    pub(crate) fn attach_check(&self, name: &str, thresholds: Thresholds) {
        let mut d = self.lock();
        d.check = Some(name.to_owned());
        d.thresholds = thresholds;
        d.consecutive = 0;
        self.recompute(&mut d, Instant::now());
    }

    /// No check probes this edge any more: it counts as up (an edge without
    /// a check is always up) with default thresholds for fed load.
    pub(crate) fn detach_check(&self) {
        let mut d = self.lock();
        d.check = None;
        d.thresholds = Thresholds::default();
        d.healthy = true;
        d.fleet_healthy = None;
        d.consecutive = 0;
        d.probe_load = None;
        d.last_error = None;
        self.recompute(&mut d, Instant::now());
    }

    /// This instance's own probe verdict (rise/fall applied), `None` for an
    /// edge without a check: what the fleet link publishes.
    pub fn own_verdict(&self) -> Option<bool> {
        let d = self.lock();
        d.check.as_ref().map(|_| d.healthy)
    }

    /// Sets (or, with `None`, clears) the fleet's quorum verdict, which
    /// replaces this instance's own up/down while set. Ignored for an edge
    /// without a check: it is always up.
    pub fn set_fleet_verdict(&self, healthy: Option<bool>) {
        let mut d = self.lock();
        let healthy = healthy.filter(|_| d.check.is_some());
        if d.fleet_healthy != healthy {
            d.fleet_healthy = healthy;
            self.recompute(&mut d, Instant::now());
        }
    }

    /// Applies one probe round's verdict, counting consecutive results the
    /// pingora way: a verdict agreeing with the current state resets the
    /// count; `fall` (or `rise`) disagreeing ones in a row flip it.
    pub(crate) fn observe(&self, v: Verdict, rise: u32, fall: u32, load_ttl: Duration) {
        let now = Instant::now();
        let mut d = self.lock();
        d.last_check = Some(SystemTime::now());
        d.last_error = v.error;
        if v.success {
            d.probes_ok += 1;
        } else {
            d.probes_failed += 1;
        }
        if v.success == d.healthy {
            d.consecutive = 0;
        } else {
            d.consecutive += 1;
            let needed = if d.healthy { fall } else { rise };
            if d.consecutive >= needed.max(1) {
                d.healthy = v.success;
                d.consecutive = 0;
            }
        }
        if let Some(load) = v.load {
            d.probe_load = Some(TimedLoad {
                load,
                until: deadline(now, load_ttl),
            });
        }
        self.recompute(&mut d, now);
    }

    /// Derives the states from the details and publishes them.
    fn recompute(&self, d: &mut Details, now: Instant) {
        for slot in [&mut d.probe_load, &mut d.fed_load] {
            if slot.is_some_and(|l| l.until <= now) {
                *slot = None;
            }
        }
        let load = [d.probe_load, d.fed_load]
            .into_iter()
            .flatten()
            .map(|l| l.load)
            .reduce(f64::max);
        d.current_load = load;
        self.load_permille.store(
            load.map_or(NO_LOAD, |l| (l.clamp(0.0, 1.0) * 1000.0).round() as u16),
            Ordering::Relaxed,
        );
        d.overloaded = match load {
            None => false,
            // Hysteresis: between recover and overload the state holds.
            Some(l) if d.overloaded => l > d.thresholds.recover,
            Some(l) => l >= d.thresholds.overload,
        };
        let state = if !d.fleet_healthy.unwrap_or(d.healthy) {
            EdgeState::Down
        } else if d.overloaded {
            EdgeState::Overloaded
        } else {
            EdgeState::Up
        };
        let eff = effective_of(d.admin, state);
        let new = pack(eff, state);
        let old = self.packed.swap(new, Ordering::AcqRel);
        if Effective::from_bits(old) != eff {
            d.since = now;
            d.transitions += 1;
            tracing::info!(
                zone = %self.zone,
                edge = %self.name,
                from = ?Effective::from_bits(old),
                to = ?eff,
                error = d.last_error.as_deref().unwrap_or(""),
                "edge state changed"
            );
        }
    }

    /// The edge as the admin API shows it.
    pub fn status(&self) -> EdgeStatus {
        let d = self.lock();
        let packed = self.packed.load(Ordering::Acquire);
        EdgeStatus {
            name: self.name.clone(),
            zone: self.zone.clone(),
            state: EdgeState::from_bits(packed >> 2),
            admin: d.admin,
            admin_reason: d.note.reason.clone(),
            admin_until: d.note.until_rfc3339(),
            admin_expires_in_secs: d.note.expires_in_secs(unix_ms()),
            effective: Effective::from_bits(packed),
            last_load: d.current_load,
            last_check: d
                .last_check
                .map(|t| humantime::format_rfc3339_millis(t).to_string()),
            last_error: d.last_error.clone(),
            in_state_for_secs: d.since.elapsed().as_secs_f64(),
            check: d.check.clone(),
            probes_ok: d.probes_ok,
            probes_failed: d.probes_failed,
            consecutive: d.consecutive,
            transitions: d.transitions,
            probe_healthy: d.healthy,
            fleet_healthy: d.fleet_healthy,
        }
    }
}

fn effective_of(admin: AdminState, state: EdgeState) -> Effective {
    match admin {
        AdminState::Down => Effective::Down,
        AdminState::Up => Effective::Up,
        AdminState::Drain => Effective::Drain,
        AdminState::Auto => match state {
            EdgeState::Up => Effective::Up,
            EdgeState::Overloaded => Effective::Overloaded,
            EdgeState::Down => Effective::Down,
        },
    }
}
