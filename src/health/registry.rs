//! The long-lived set of edges, keyed by (zone, edge), with admin overrides
//! (their reason and expiry) and pushed loads persisted to a JSON state
//! file, so both survive a restart.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::state::{AdminNote, AdminState, EdgeHealth, EdgeState, EdgeStatus, unix_ms};

type Key = (String, String);

/// Errors of the health registry.
#[derive(Debug, thiserror::Error)]
pub enum HealthError {
    /// No edge of that name (in that zone).
    #[error("no edge {edge:?}{}", zone.as_deref().map(|z| format!(" in zone {z:?}")).unwrap_or_default())]
    UnknownEdge { zone: Option<String>, edge: String },
    /// A fed load outside 0..=1 (or NaN).
    #[error("load {0} is not within 0..=1")]
    InvalidLoad(f64),
    /// Reading or writing the admin state file failed.
    #[error("health state file {}: {source}", path.display())]
    StateFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The admin state file is not valid JSON of the expected shape.
    #[error("health state file {}: {source}", path.display())]
    StateFormat {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
}

/// On-disk form of the overrides and pushed loads. Version 1 files (no
/// notes, no loads) read as they are.
#[derive(Debug, Default, Serialize, Deserialize)]
struct StateFile {
    version: u32,
    overrides: Vec<Override>,
    #[serde(default)]
    loads: Vec<LoadRecord>,
}

#[derive(Debug, Serialize, Deserialize)]
struct Override {
    zone: String,
    edge: String,
    admin: AdminState,
    #[serde(flatten)]
    note: AdminNote,
}

/// A pushed load and when it stops counting (Unix ms).
#[derive(Debug, Serialize, Deserialize)]
struct LoadRecord {
    zone: String,
    edge: String,
    load: f64,
    until_ms: u64,
}

/// An override on file: the state and why/until when.
type Held = (AdminState, AdminNote);

/// Told about overrides and load readings made on this instance (API, load
/// file, CLI), so the fleet link can share them. Called with the registry's
/// locks released; must not block.
pub trait LocalChanges: Send + Sync {
    fn admin(&self, zone: &str, edge: &str, admin: AdminState, note: &AdminNote);
    fn load(&self, zone: &str, edge: &str, load: f64, ttl: Duration);
}

/// One non-`auto` override, configured edge or not.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OverrideStatus {
    pub zone: String,
    pub edge: String,
    pub state: AdminState,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// RFC 3339, when it lifts itself.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub until: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_in_secs: Option<f64>,
}

/// Every edge's health, surviving config reloads.
#[derive(Default)]
pub struct Registry {
    edges: RwLock<HashMap<Key, Arc<EdgeHealth>>>,
    /// Non-`Auto` overrides, including ones for edges not currently
    /// configured (re-applied if they come back). Also serialises writes
    /// of the state file.
    overrides: Mutex<BTreeMap<Key, Held>>,
    /// Pushed loads (value, until Unix ms), for the state file: a restart
    /// picks them up until they run out.
    loads: Mutex<BTreeMap<Key, (f64, u64)>>,
    /// `loads` changed since the state file was written ([`Registry::refresh`]
    /// writes it, so a busy load feed costs at most one write a tick).
    loads_dirty: AtomicBool,
    state_file: Option<PathBuf>,
    sink: OnceLock<Arc<dyn LocalChanges>>,
    /// Per zone, live state other layers keep across reloads (steering's
    /// learned RTT slot), by type.
    zone_state: Mutex<HashMap<(String, std::any::TypeId), Arc<dyn std::any::Any + Send + Sync>>>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("edges", &self.len())
            .field("state_file", &self.state_file)
            .field("shared", &self.sink.get().is_some())
            .finish()
    }
}

impl Registry {
    /// A registry whose admin overrides live only in memory.
    pub fn new() -> Registry {
        Registry::default()
    }

    /// A registry persisting admin overrides to `path` (JSON), loading the
    /// ones already there. A missing file is an empty one.
    pub fn with_state_file(path: impl Into<PathBuf>) -> Result<Registry, HealthError> {
        let path = path.into();
        let file = match std::fs::read(&path) {
            Ok(bytes) => {
                serde_json::from_slice(&bytes).map_err(|source| HealthError::StateFormat {
                    path: path.clone(),
                    source,
                })?
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => StateFile::default(),
            Err(source) => return Err(HealthError::StateFile { path, source }),
        };
        let now = unix_ms();
        let overrides = file
            .overrides
            .into_iter()
            .filter(|o| o.admin != AdminState::Auto && !o.note.expired(now))
            .map(|o| ((o.zone, o.edge), (o.admin, o.note)))
            .collect();
        let loads = file
            .loads
            .into_iter()
            .filter(|l| l.until_ms > now && (0.0..=1.0).contains(&l.load))
            .map(|l| ((l.zone, l.edge), (l.load, l.until_ms)))
            .collect();
        Ok(Registry {
            edges: RwLock::default(),
            overrides: Mutex::new(overrides),
            loads: Mutex::new(loads),
            loads_dirty: AtomicBool::new(false),
            state_file: Some(path),
            sink: OnceLock::new(),
            zone_state: Mutex::default(),
        })
    }

    /// `zone`'s `T`, made on first use and the same one every reload after:
    /// live state of other layers that must outlive a snapshot.
    pub fn zone_state<T: Default + Send + Sync + 'static>(&self, zone: &str) -> Arc<T> {
        let key = (zone.to_owned(), std::any::TypeId::of::<T>());
        let mut map = self.zone_state.lock().unwrap_or_else(|p| p.into_inner());
        let any = map
            .entry(key)
            .or_insert_with(|| Arc::new(T::default()))
            .clone();
        any.downcast::<T>().expect("keyed by its type")
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<Key, Arc<EdgeHealth>>> {
        self.edges.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<Key, Arc<EdgeHealth>>> {
        self.edges.write().unwrap_or_else(|p| p.into_inner())
    }

    fn overrides(&self) -> std::sync::MutexGuard<'_, BTreeMap<Key, Held>> {
        self.overrides.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn loads(&self) -> std::sync::MutexGuard<'_, BTreeMap<Key, (f64, u64)>> {
        self.loads.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The edge's health: the existing one (state and counters carried over)
    /// or a new one starting in `initial` (`Overloaded` counts as up), with
    /// any persisted admin override and pushed load applied.
    pub fn edge(&self, zone: &str, edge: &str, initial: EdgeState) -> Arc<EdgeHealth> {
        let key = (zone.to_owned(), edge.to_owned());
        if let Some(h) = self.read().get(&key) {
            return h.clone();
        }
        let (admin, note) = self.overrides().get(&key).cloned().unwrap_or_default();
        let load = self.loads().get(&key).copied();
        self.write()
            .entry(key)
            .or_insert_with(|| {
                let h = EdgeHealth::new(zone, edge, initial, admin);
                if admin != AdminState::Auto {
                    h.set_admin(admin, note);
                }
                if let Some((load, until_ms)) = load {
                    let left = until_ms.saturating_sub(unix_ms());
                    if left > 0 {
                        h.feed_load(load, Duration::from_millis(left));
                    }
                }
                Arc::new(h)
            })
            .clone()
    }

    /// The edge's health if it exists.
    pub fn get(&self, zone: &str, edge: &str) -> Option<Arc<EdgeHealth>> {
        self.read()
            .get(&(zone.to_owned(), edge.to_owned()))
            .cloned()
    }

    /// Drops edges not in `live` (after a reload removed them). Their admin
    /// overrides stay on file, for when they come back.
    pub fn retain(&self, live: &HashSet<(String, String)>) {
        self.write().retain(|k, _| live.contains(k));
    }

    /// How many edges there are.
    pub fn len(&self) -> usize {
        self.read().len()
    }

    /// Whether there are no edges.
    pub fn is_empty(&self) -> bool {
        self.read().is_empty()
    }

    fn matching(&self, zone: Option<&str>, edge: &str) -> Vec<Arc<EdgeHealth>> {
        let mut v: Vec<_> = self
            .read()
            .iter()
            .filter(|((z, e), _)| e == edge && zone.is_none_or(|zone| zone == z))
            .map(|(_, h)| h.clone())
            .collect();
        v.sort_by(|a, b| a.zone().cmp(b.zone()));
        v
    }

    /// Sets the admin override of `edge` in `zone` (or in every zone having
    /// an edge of that name) and persists it. Returns how many edges matched;
    /// none is [`HealthError::UnknownEdge`]. If the state file cannot be
    /// written nothing changes.
    pub fn set_admin(
        &self,
        zone: Option<&str>,
        edge: &str,
        admin: AdminState,
    ) -> Result<usize, HealthError> {
        self.set_admin_with(zone, edge, admin, AdminNote::default())
    }

    /// [`Registry::set_admin`] with a reason and an expiry: at
    /// `note.until_ms` the override lifts itself (see [`Registry::refresh`]).
    pub fn set_admin_with(
        &self,
        zone: Option<&str>,
        edge: &str,
        admin: AdminState,
        note: AdminNote,
    ) -> Result<usize, HealthError> {
        let targets = self.matching(zone, edge);
        if targets.is_empty() {
            return Err(HealthError::UnknownEdge {
                zone: zone.map(str::to_owned),
                edge: edge.to_owned(),
            });
        }
        let note = if admin == AdminState::Auto {
            AdminNote::default()
        } else {
            note
        };
        self.apply_admin(&targets, admin, &note)?;
        if let Some(sink) = self.sink.get() {
            for h in &targets {
                sink.admin(h.zone(), h.name(), admin, &note);
            }
        }
        Ok(targets.len())
    }

    /// Sends later local overrides and load readings to `sink` (the fleet
    /// link). Only the first call counts.
    pub fn set_sink(&self, sink: Arc<dyn LocalChanges>) {
        let _ = self.sink.set(sink);
    }

    /// Applies an override that came from the fleet: persisted to the state
    /// file (the cache for a start without etcd) and applied, but not sent
    /// back to the sink. An edge not configured here keeps the override on
    /// file, for when it appears. Returns whether the edge is configured.
    pub fn apply_shared_admin(
        &self,
        zone: &str,
        edge: &str,
        admin: AdminState,
        note: AdminNote,
    ) -> Result<bool, HealthError> {
        let (admin, note) = if admin == AdminState::Auto || note.expired(unix_ms()) {
            (AdminState::Auto, AdminNote::default())
        } else {
            (admin, note)
        };
        let target = self.get(zone, edge);
        let key = (zone.to_owned(), edge.to_owned());
        let held = (admin, note.clone());
        if target.is_none() {
            let mut overrides = self.overrides();
            if overrides.get(&key).cloned().unwrap_or_default() == held {
                return Ok(false);
            }
            let mut next = overrides.clone();
            if admin == AdminState::Auto {
                next.remove(&key);
            } else {
                next.insert(key, held);
            }
            if let Some(path) = &self.state_file {
                write_state(path, &next, &self.loads())?;
            }
            *overrides = next;
            return Ok(false);
        }
        let target = target.into_iter().collect::<Vec<_>>();
        if target[0].admin() != admin
            || target[0].admin_note() != note
            || self.overrides().get(&key).cloned().unwrap_or_default() != held
        {
            self.apply_admin(&target, admin, &note)?;
        }
        Ok(true)
    }

    /// Every non-`Auto` override on file, configured edge or not.
    pub fn overrides_list(&self) -> Vec<(String, String, AdminState)> {
        self.overrides()
            .iter()
            .map(|((z, e), (a, _))| (z.clone(), e.clone(), *a))
            .collect()
    }

    /// Every non-`Auto` override with its reason and expiry, by zone and
    /// edge.
    pub fn overrides_status(&self) -> Vec<OverrideStatus> {
        let now = unix_ms();
        self.overrides()
            .iter()
            .map(|((zone, edge), (state, note))| OverrideStatus {
                zone: zone.clone(),
                edge: edge.clone(),
                state: *state,
                reason: note.reason.clone(),
                until: note.until_rfc3339(),
                expires_in_secs: note.expires_in_secs(now),
            })
            .collect()
    }

    /// Every configured edge's health.
    pub fn edges(&self) -> Vec<Arc<EdgeHealth>> {
        self.read().values().cloned().collect()
    }

    /// Sets `admin` on `targets`: state file first, then memory.
    fn apply_admin(
        &self,
        targets: &[Arc<EdgeHealth>],
        admin: AdminState,
        note: &AdminNote,
    ) -> Result<(), HealthError> {
        let mut overrides = self.overrides();
        let mut next = overrides.clone();
        for h in targets {
            let key = (h.zone().to_owned(), h.name().to_owned());
            if admin == AdminState::Auto {
                next.remove(&key);
            } else {
                next.insert(key, (admin, note.clone()));
            }
        }
        if let Some(path) = &self.state_file {
            write_state(path, &next, &self.loads())?;
        }
        *overrides = next;
        for h in targets {
            h.set_admin(admin, note.clone());
        }
        Ok(())
    }

    /// Feeds a load (0..=1) valid for `ttl` to `edge` in `zone` (or in every
    /// zone having it). Returns how many edges matched.
    pub fn feed_load(
        &self,
        zone: Option<&str>,
        edge: &str,
        load: f64,
        ttl: Duration,
    ) -> Result<usize, HealthError> {
        if !(0.0..=1.0).contains(&load) {
            return Err(HealthError::InvalidLoad(load));
        }
        let targets = self.matching(zone, edge);
        if targets.is_empty() {
            return Err(HealthError::UnknownEdge {
                zone: zone.map(str::to_owned),
                edge: edge.to_owned(),
            });
        }
        for h in &targets {
            h.feed_load(load, ttl);
        }
        self.remember_load(&targets, load, ttl);
        if let Some(sink) = self.sink.get() {
            for h in &targets {
                sink.load(h.zone(), h.name(), load, ttl);
            }
        }
        Ok(targets.len())
    }

    /// Applies a load reading that came from the fleet (valid until
    /// `until_ms`), kept for the state file like a local one but not sent
    /// back. Returns whether the edge is configured here.
    pub fn apply_shared_load(&self, zone: &str, edge: &str, load: f64, until_ms: u64) -> bool {
        let Some(h) = self.get(zone, edge) else {
            return false;
        };
        let left = until_ms.saturating_sub(unix_ms());
        if left > 0 {
            let ttl = Duration::from_millis(left);
            h.feed_load(load, ttl);
            self.remember_load(&[h], load, ttl);
        }
        true
    }

    /// Notes a pushed load for the state file (written by the next
    /// [`Registry::refresh`]).
    fn remember_load(&self, targets: &[Arc<EdgeHealth>], load: f64, ttl: Duration) {
        if self.state_file.is_none() || !load.is_finite() {
            return;
        }
        let until = unix_ms().saturating_add(ttl.as_millis().min(u128::from(u64::MAX)) as u64);
        let mut loads = self.loads();
        for h in targets {
            loads.insert(
                (h.zone().to_owned(), h.name().to_owned()),
                (load.clamp(0.0, 1.0), until),
            );
        }
        self.loads_dirty.store(true, Ordering::Release);
    }

    /// Every edge's status, sorted by zone then name.
    pub fn snapshot(&self) -> Vec<EdgeStatus> {
        let edges: Vec<_> = self.read().values().cloned().collect();
        let mut v: Vec<_> = edges.iter().map(|h| h.status()).collect();
        v.sort_by(|a, b| (&a.zone, &a.name).cmp(&(&b.zone, &b.name)));
        v
    }

    /// Re-evaluates load expiry on every edge, lifts overrides whose time
    /// is up, and writes pushed loads to the state file when they changed.
    /// The checker calls this every 200 ms; call it yourself if you run
    /// without a checker.
    pub fn refresh(&self) {
        let now = Instant::now();
        let edges: Vec<_> = self.read().values().cloned().collect();
        for h in edges {
            h.refresh(now);
        }
        self.expire_overrides(unix_ms());
        if self.loads_dirty.swap(false, Ordering::AcqRel)
            && let Some(path) = &self.state_file
        {
            let overrides = self.overrides();
            let mut loads = self.loads();
            let now = unix_ms();
            loads.retain(|_, (_, until)| *until > now);
            if let Err(e) = write_state(path, &overrides, &loads) {
                self.loads_dirty.store(true, Ordering::Release);
                tracing::warn!("pushed loads not saved: {e}");
            }
        }
    }

    /// Lifts the overrides whose `until` has passed: `auto` again, on file
    /// and in memory. Not sent to the fleet: every instance lifts it at the
    /// same time, and etcd drops the key when its lease ends.
    fn expire_overrides(&self, now_ms: u64) {
        let expired: Vec<(Key, Held)> = self
            .overrides()
            .iter()
            .filter(|(_, (_, note))| note.expired(now_ms))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        if expired.is_empty() {
            return;
        }
        for ((zone, edge), (state, note)) in &expired {
            tracing::info!(
                zone = %zone,
                edge = %edge,
                was = ?state,
                reason = note.reason.as_deref().unwrap_or(""),
                "admin override expired; the edge is auto again"
            );
        }
        let configured: Vec<Arc<EdgeHealth>> = expired
            .iter()
            .filter_map(|((z, e), _)| self.get(z, e))
            .collect();
        let mut overrides = self.overrides();
        let mut next = overrides.clone();
        for (k, _) in &expired {
            // Only if nobody replaced it meanwhile.
            if next.get(k).is_some_and(|(_, n)| n.expired(now_ms)) {
                next.remove(k);
            }
        }
        if let Some(path) = &self.state_file
            && let Err(e) = write_state(path, &next, &self.loads())
        {
            tracing::warn!("expired override not saved (lifted in memory): {e}");
        }
        *overrides = next;
        drop(overrides);
        for h in configured {
            if h.admin_note().expired(now_ms) {
                h.set_admin(AdminState::Auto, AdminNote::default());
            }
        }
    }
}

/// Writes the overrides and loads atomically: a temp file in the same
/// directory, synced, then renamed over the old one.
fn write_state(
    path: &Path,
    overrides: &BTreeMap<Key, Held>,
    loads: &BTreeMap<Key, (f64, u64)>,
) -> Result<(), HealthError> {
    let file = StateFile {
        version: 2,
        overrides: overrides
            .iter()
            .map(|((zone, edge), (admin, note))| Override {
                zone: zone.clone(),
                edge: edge.clone(),
                admin: *admin,
                note: note.clone(),
            })
            .collect(),
        loads: loads
            .iter()
            .map(|((zone, edge), (load, until_ms))| LoadRecord {
                zone: zone.clone(),
                edge: edge.clone(),
                load: *load,
                until_ms: *until_ms,
            })
            .collect(),
    };
    let err = |source| HealthError::StateFile {
        path: path.to_owned(),
        source,
    };
    let json = serde_json::to_vec_pretty(&file).map_err(|e| err(std::io::Error::other(e)))?;
    let mut tmp_name = path.file_name().unwrap_or_default().to_owned();
    tmp_name.push(format!(".tmp.{}", std::process::id()));
    let tmp = path.with_file_name(tmp_name);
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&json)?;
        f.write_all(b"\n")?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(err(e));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::health::Effective;

    fn note(reason: &str, secs: u64) -> AdminNote {
        AdminNote::new(Some(reason.into()), Some(Duration::from_secs(secs)))
    }

    #[test]
    fn notes_and_loads_survive_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("state.json");
        {
            let reg = Registry::with_state_file(&file).unwrap();
            let lhr = reg.edge("z.", "lhr", EdgeState::Up);
            reg.edge("z.", "fra", EdgeState::Up);
            reg.set_admin_with(
                Some("z."),
                "lhr",
                AdminState::Drain,
                note("fibre cut", 7200),
            )
            .unwrap();
            assert_eq!(lhr.effective(), Effective::Drain);
            let st = lhr.status();
            assert_eq!(st.admin_reason.as_deref(), Some("fibre cut"));
            assert!(st.admin_until.is_some());
            assert!(st.admin_expires_in_secs.unwrap() > 7100.0);
            reg.feed_load(Some("z."), "fra", 0.95, Duration::from_secs(600))
                .unwrap();
            // Loads are written by the ticker, not by the feed.
            reg.refresh();
        }
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(
            text.contains("fibre cut") && text.contains("\"loads\""),
            "{text}"
        );
        let reg = Registry::with_state_file(&file).unwrap();
        let lhr = reg.edge("z.", "lhr", EdgeState::Up);
        assert_eq!(lhr.effective(), Effective::Drain);
        assert_eq!(lhr.admin_note().reason.as_deref(), Some("fibre cut"));
        let fra = reg.edge("z.", "fra", EdgeState::Up);
        assert_eq!(fra.load(), Some(0.95));
        assert_eq!(fra.effective(), Effective::Overloaded);
        let list = reg.overrides_status();
        assert_eq!(list.len(), 1);
        assert_eq!(list[0].reason.as_deref(), Some("fibre cut"));
    }

    #[test]
    fn overrides_lift_themselves_on_time() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("state.json");
        let reg = Registry::with_state_file(&file).unwrap();
        let lhr = reg.edge("z.", "lhr", EdgeState::Up);
        let soon = AdminNote::new(Some("maintenance".into()), Some(Duration::from_millis(300)));
        reg.set_admin_with(None, "lhr", AdminState::Down, soon)
            .unwrap();
        // An override for an edge not configured here expires too.
        let gone = AdminNote::new(None, Some(Duration::from_millis(300)));
        reg.apply_shared_admin("z.", "gone", AdminState::Drain, gone)
            .unwrap();
        assert_eq!(reg.overrides_status().len(), 2);
        reg.refresh();
        assert_eq!(lhr.effective(), Effective::Down, "lifted early");
        std::thread::sleep(Duration::from_millis(350));
        reg.refresh();
        assert_eq!(lhr.effective(), Effective::Up);
        assert_eq!(lhr.admin(), AdminState::Auto);
        assert_eq!(lhr.status().admin_reason, None);
        assert!(reg.overrides_status().is_empty());
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(!text.contains("maintenance"), "{text}");
        // An expired override read from a file does not apply.
        std::fs::write(
            &file,
            r#"{"version":2,"overrides":[{"zone":"z.","edge":"lhr","admin":"down","until_ms":1}]}"#,
        )
        .unwrap();
        let reg = Registry::with_state_file(&file).unwrap();
        assert_eq!(
            reg.edge("z.", "lhr", EdgeState::Up).admin(),
            AdminState::Auto
        );
    }

    #[test]
    fn version_one_state_files_still_read() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("state.json");
        std::fs::write(
            &file,
            r#"{"version":1,"overrides":[{"zone":"z.","edge":"lhr","admin":"drain"}]}"#,
        )
        .unwrap();
        let reg = Registry::with_state_file(&file).unwrap();
        let lhr = reg.edge("z.", "lhr", EdgeState::Up);
        assert_eq!(lhr.admin(), AdminState::Drain);
        assert_eq!(lhr.admin_note(), AdminNote::default());
    }
}
