//! RUM across a fleet: each instance writes compact aggregates of its own
//! learned cells to etcd and reads everyone else's, so beacons sent to any
//! instance steer them all (the aggregator combines them with its own
//! cells, see [`crate::rum::cells`]). Raw beacons never leave the
//! instance.
//!
//! Keys live beside the fleet's, under `<prefix>` with `-rum` appended
//! (`/geosteer-rum/` by default), so the fleet link's own watch does not
//! carry them:
//!
//! | key | value |
//! |---|---|
//! | `<zone>/<instance>/<shard>` | `v1` then one line per cell: `<net> <edge> <ms> <samples> <newest unix secs>` |
//!
//! A shard is the first octet of an IPv4 /24 (`4-198`) or the first 16
//! bits of an IPv6 /56 (`6-2001`): a shard changes as a whole, so a busy
//! instance rewrites a few hundred small values, not one big one nor a key
//! per cell. Shards whose networks changed are written every [`PUSH`];
//! all of them every [`FULL`] (expiry included). Values carry no lease:
//! what an instance learned outlives it, until `max_age` says otherwise.
//!
//! Losing etcd stops the sharing, never the answering: the last aggregates
//! read keep steering (and expire as any cell does), and the session is
//! retried with a capped backoff.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use etcd_client::{Client, EventType, GetOptions, WatchOptions};
use tokio::task::JoinHandle;

use super::config::FleetConfig;
use super::session::{FleetError, MAX_BACKOFF, connect, within};
use crate::rum::Rum;
use crate::rum::cells::Aggregate;
use crate::rum::token::Net;

/// How often changed shards are written.
pub const PUSH: Duration = Duration::from_secs(2);
/// How often every shard is written (and vanished ones deleted).
const FULL: Duration = Duration::from_secs(300);

/// The RUM link to etcd.
pub struct RumShare {
    task: std::sync::Mutex<Option<JoinHandle<()>>>,
    connected: Arc<AtomicBool>,
}

impl std::fmt::Debug for RumShare {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RumShare")
            .field("connected", &self.is_connected())
            .finish()
    }
}

impl RumShare {
    /// Starts sharing `rum`'s aggregates through the fleet's etcd.
    pub fn start(cfg: FleetConfig, rum: Arc<Rum>) -> Arc<RumShare> {
        let connected = Arc::new(AtomicBool::new(false));
        let task = tokio::spawn(run(cfg, rum, connected.clone()));
        Arc::new(RumShare {
            task: std::sync::Mutex::new(Some(task)),
            connected,
        })
    }

    pub fn is_connected(&self) -> bool {
        self.connected.load(Ordering::Acquire)
    }

    /// Stops the link (what is in etcd stays).
    pub fn stop(&self) {
        if let Some(t) = self.task.lock().unwrap_or_else(|e| e.into_inner()).take() {
            t.abort();
        }
    }
}

impl Drop for RumShare {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The key prefix of RUM's aggregates for a fleet prefix.
pub fn prefix(cfg: &FleetConfig) -> String {
    format!("{}-rum/", cfg.prefix.trim_end_matches('/'))
}

/// The shard a network's aggregate is written in.
pub fn shard(net: Net) -> String {
    match net.ipnet().network() {
        std::net::IpAddr::V4(a) => format!("4-{}", a.octets()[0]),
        std::net::IpAddr::V6(a) => format!("6-{:x}", a.segments()[0]),
    }
}

async fn run(cfg: FleetConfig, rum: Arc<Rum>, connected: Arc<AtomicBool>) {
    // From now on the aggregator notes which networks changed, for push.
    rum.state().track = true;
    let mut backoff = Duration::from_millis(200);
    let mut next = 0usize;
    let n = cfg.etcd.len().max(1);
    loop {
        let endpoint = cfg.etcd[next % n].clone();
        let err = session(&cfg, &rum, &endpoint, &connected)
            .await
            .unwrap_err();
        next += 1;
        if connected.swap(false, Ordering::AcqRel) {
            tracing::warn!(error = %err, "fleet: RUM sharing lost etcd; steering with what was learned until it is back");
            backoff = Duration::from_millis(200);
        } else {
            tracing::debug!(endpoint, error = %err, "fleet: RUM sharing: etcd unreachable");
        }
        if next.is_multiple_of(n) {
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }
}

/// One connection: read everyone's aggregates, write ours, then watch and
/// write changes until something fails.
async fn session(
    cfg: &FleetConfig,
    rum: &Arc<Rum>,
    endpoint: &str,
    connected: &AtomicBool,
) -> Result<std::convert::Infallible, FleetError> {
    let t = cfg.timeout;
    let pre = prefix(cfg);
    let mut client = connect(cfg, endpoint).await?;
    let resp = within(
        t,
        "read",
        client.get(pre.as_bytes(), Some(GetOptions::new().with_prefix())),
    )
    .await?;
    let revision = resp.header().map_or(0, |h| h.revision());
    resync(cfg, rum, resp.kvs());
    let mut watch = within(
        t,
        "watch",
        client.watch(
            pre.as_bytes(),
            Some(
                WatchOptions::new()
                    .with_prefix()
                    .with_start_revision(revision + 1),
            ),
        ),
    )
    .await?;
    // What we wrote: (zone, shard) → value, so unchanged shards are skipped.
    let mut written: HashMap<(String, String), u64> = resp
        .kvs()
        .iter()
        .filter_map(|kv| {
            let (zone, inst, shard) = parse_key(&pre, kv.key_str().ok()?)?;
            (inst == cfg.instance).then(|| ((zone.to_string(), shard.to_string()), 0))
        })
        .collect();
    push(cfg, rum, &mut client, &mut written, true).await?;
    connected.store(true, Ordering::Release);
    tracing::info!(instance = %cfg.instance, "fleet: RUM sharing connected");
    let mut tick = tokio::time::interval(PUSH);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_full = Instant::now();
    loop {
        tokio::select! {
            msg = watch.message() => {
                let Some(resp) = msg? else {
                    return Err(FleetError::WatchEnded("stream closed".into()));
                };
                if resp.canceled() {
                    return Err(FleetError::WatchEnded(resp.cancel_reason().to_string()));
                }
                let mut changed = false;
                for ev in resp.events() {
                    let Some(kv) = ev.kv() else { continue };
                    let Ok(key) = kv.key_str() else { continue };
                    changed |= match ev.event_type() {
                        EventType::Put => apply(cfg, rum, key, Some(kv.value())),
                        EventType::Delete => apply(cfg, rum, key, None),
                    };
                }
                if changed {
                    rum.poke();
                }
            }
            _ = tick.tick() => {
                let full = last_full.elapsed() >= FULL;
                if full {
                    last_full = Instant::now();
                }
                push(cfg, rum, &mut client, &mut written, full).await?;
            }
        }
    }
}

/// `<zone>/<instance>/<shard>` of a key under `pre`.
fn parse_key<'k>(pre: &str, key: &'k str) -> Option<(&'k str, &'k str, &'k str)> {
    let mut parts = key.strip_prefix(pre)?.split('/');
    let (z, i, s) = (parts.next()?, parts.next()?, parts.next()?);
    (parts.next().is_none() && !z.is_empty() && !i.is_empty() && !s.is_empty()).then_some((z, i, s))
}

/// Replaces every other instance's aggregates with what etcd holds.
fn resync(cfg: &FleetConfig, rum: &Rum, kvs: &[etcd_client::KeyValue]) {
    {
        let mut st = rum.state();
        for z in st.zones.values_mut() {
            z.remote.clear();
        }
    }
    for kv in kvs {
        if let Ok(key) = kv.key_str() {
            apply(cfg, rum, key, Some(kv.value()));
        }
    }
    rum.poke();
}

/// Applies one key of another instance (None: deleted). Returns whether
/// anything changed; a bad value is logged, counted and skipped.
fn apply(cfg: &FleetConfig, rum: &Rum, key: &str, value: Option<&[u8]>) -> bool {
    let pre = prefix(cfg);
    let Some((zone, inst, shard)) = parse_key(&pre, key) else {
        return false;
    };
    if inst == cfg.instance {
        return false;
    }
    let mut st = rum.state();
    let Some(bytes) = value else {
        let Some(z) = st.zones.get_mut(zone) else {
            return false;
        };
        let gone = z
            .remote
            .get_mut(inst)
            .and_then(|s| s.remove(shard))
            .is_some();
        return gone;
    };
    let max_age = st.max_age;
    if !st.zones.contains_key(zone) {
        st.zones.insert(zone.to_string(), Default::default());
    }
    let z = st.zones.get_mut(zone).expect("inserted");
    match decode(bytes, |name| z.edge_id(name), max_age) {
        Ok(list) => {
            z.remote
                .entry(Arc::from(inst))
                .or_default()
                .insert(shard.to_string(), list);
            true
        }
        Err(e) => {
            drop(st);
            metrics::counter!("geosteer_fleet_bad_values_total", "reason" => "rum").increment(1);
            tracing::warn!(key, "fleet: ignoring RUM aggregates from etcd: {e}");
            false
        }
    }
}

/// A cell as a shard's value lists it: network, edge, ms, samples, newest.
pub type Line<'a> = (Net, &'a str, f32, u32, u32);

/// One shard's value: this instance's cells in it.
pub fn encode(cells: &[Line<'_>]) -> String {
    use std::fmt::Write as _;
    let mut s = String::from("v1\n");
    for (net, edge, ms, samples, last) in cells {
        let _ = writeln!(s, "{net} {edge} {ms} {samples} {last}");
    }
    s
}

/// Parses a shard's value (edges named by `edge_id`'s interning); cells
/// older than `max_age` seconds are left out.
pub fn decode(
    bytes: &[u8],
    mut edge_id: impl FnMut(&str) -> u16,
    max_age: u64,
) -> Result<Vec<Aggregate>, String> {
    let text = std::str::from_utf8(bytes).map_err(|_| "not UTF-8".to_string())?;
    let mut lines = text.lines();
    if lines.next() != Some("v1") {
        return Err("not a v1 RUM aggregate".into());
    }
    let now = crate::clock::unix_now();
    let mut out = Vec::new();
    for (i, line) in lines.enumerate() {
        let bad = || format!("line {}: {line:?}", i + 2);
        let f: Vec<&str> = line.split(' ').collect();
        let [net, edge, ms, samples, last] = f[..] else {
            return Err(bad());
        };
        let net = net
            .parse::<ipnet::IpNet>()
            .ok()
            .and_then(Net::from_ipnet)
            .ok_or_else(bad)?;
        let ms: f32 = ms.parse().map_err(|_| bad())?;
        if !(0.0..=crate::rum::cells::MAX_MS as f32).contains(&ms) || edge.is_empty() {
            return Err(bad());
        }
        let samples: u32 = samples.parse().map_err(|_| bad())?;
        let last: u32 = last.parse().map_err(|_| bad())?;
        if now.saturating_sub(u64::from(last)) > max_age {
            continue;
        }
        out.push(Aggregate {
            net,
            edge: edge_id(edge),
            ms,
            samples,
            last,
        });
    }
    Ok(out)
}

/// Writes this instance's shards: those whose networks changed (all with
/// `full`, deleting the ones that emptied).
async fn push(
    cfg: &FleetConfig,
    rum: &Rum,
    client: &mut Client,
    written: &mut HashMap<(String, String), u64>,
    full: bool,
) -> Result<(), FleetError> {
    let pre = prefix(cfg);
    // Built under the lock, written after it.
    let mut puts: Vec<((String, String), String)> = Vec::new();
    let mut live: HashSet<(String, String)> = HashSet::new();
    {
        let mut st = rum.state();
        let changed = std::mem::take(&mut st.changed);
        for (zname, z) in &st.zones {
            let dirty: HashSet<String> = if full {
                z.nets.keys().map(|n| shard(*n)).collect()
            } else {
                changed
                    .get(zname)
                    .map(|nets| nets.iter().map(|n| shard(*n)).collect())
                    .unwrap_or_default()
            };
            if dirty.is_empty() {
                continue;
            }
            let mut by_shard: HashMap<String, Vec<Line<'_>>> = HashMap::new();
            for (net, cells) in &z.nets {
                let s = shard(*net);
                if !dirty.contains(&s) {
                    continue;
                }
                let list = by_shard.entry(s).or_default();
                for c in cells {
                    list.push((*net, &z.edges[usize::from(c.edge)], c.ms, c.samples, c.last));
                }
            }
            for s in dirty {
                let k = (zname.clone(), s.clone());
                // A shard that emptied is deleted below (with `full`).
                if let Some(mut cells) = by_shard.remove(&s) {
                    cells.sort_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
                    live.insert(k.clone());
                    puts.push((k, encode(&cells)));
                }
            }
        }
    }
    let t = cfg.timeout;
    for (k, v) in puts {
        let hash = fnv(&v);
        if written.get(&k) == Some(&hash) {
            continue;
        }
        let key = format!("{pre}{}/{}/{}", k.0, cfg.instance, k.1);
        within(t, "write", client.put(key, v, None)).await?;
        metrics::counter!("geosteer_fleet_writes_total", "result" => "ok").increment(1);
        written.insert(k, hash);
    }
    if full {
        let gone: Vec<(String, String)> = written
            .keys()
            .filter(|k| !live.contains(*k))
            .cloned()
            .collect();
        for k in gone {
            let key = format!("{pre}{}/{}/{}", k.0, cfg.instance, k.1);
            within(t, "write", client.delete(key, None)).await?;
            written.remove(&k);
        }
    }
    Ok(())
}

/// A cheap hash of a value, to skip writing what is already there.
fn fnv(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aggregates_round_trip_and_junk_is_refused() {
        let net = Net::of("198.51.100.7".parse().unwrap());
        let now = crate::clock::unix_now() as u32;
        let v = encode(&[(net, "lhr", 23.5, 40, now), (net, "nrt", 180.0, 3, now)]);
        assert_eq!(v.lines().count(), 3);
        let mut names = Vec::new();
        let got = decode(
            v.as_bytes(),
            |n| {
                names.push(n.to_string());
                names.len() as u16 - 1
            },
            3600,
        )
        .unwrap();
        assert_eq!(names, ["lhr", "nrt"]);
        assert_eq!(got[0].net, net);
        assert_eq!((got[0].ms, got[0].samples, got[0].last), (23.5, 40, now));
        assert_eq!(shard(net), "4-198");
        assert_eq!(shard(Net::of("2001:db8::1".parse().unwrap())), "6-2001");
        for junk in [
            "",
            "v2\n",
            "v1\n198.51.100.0/24 lhr",
            "v1\n198.51.100.0/23 lhr 1 1 1",
            "v1\n198.51.100.0/24 lhr -1 1 1",
            "v1\n198.51.100.0/24 lhr NaN 1 1",
            "v1\n198.51.100.0/24 lhr 1 x 1",
        ] {
            assert!(decode(junk.as_bytes(), |_| 0, 3600).is_err(), "{junk:?}");
        }
        // Too old: left out, not an error.
        let old = encode(&[(net, "lhr", 1.0, 1, now - 7200)]);
        assert!(decode(old.as_bytes(), |_| 0, 3600).unwrap().is_empty());
    }

    #[test]
    fn keys() {
        assert_eq!(
            parse_key("/g-rum/", "/g-rum/cdn.example./ns1/4-198"),
            Some(("cdn.example.", "ns1", "4-198"))
        );
        assert_eq!(parse_key("/g-rum/", "/g-rum/cdn.example./ns1"), None);
        assert_eq!(parse_key("/g-rum/", "/other/cdn.example./ns1/4-1"), None);
    }
}
