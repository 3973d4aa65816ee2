//! The long-lived set of edges, keyed by (zone, edge), with admin overrides
//! persisted to a JSON state file.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::state::{AdminState, EdgeHealth, EdgeState, EdgeStatus};

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

/// On-disk form of the admin overrides.
#[derive(Debug, Default, Serialize, Deserialize)]
struct StateFile {
    version: u32,
    overrides: Vec<Override>,
}

#[derive(Debug, Serialize, Deserialize)]
struct Override {
    zone: String,
    edge: String,
    admin: AdminState,
}

/// Told about overrides and load readings made on this instance (API, load
/// file, CLI), so the fleet link can share them. Called with the registry's
/// locks released; must not block.
pub trait LocalChanges: Send + Sync {
    fn admin(&self, zone: &str, edge: &str, admin: AdminState);
    fn load(&self, zone: &str, edge: &str, load: f64, ttl: Duration);
}

/// Every edge's health, surviving config reloads.
#[derive(Default)]
pub struct Registry {
    edges: RwLock<HashMap<Key, Arc<EdgeHealth>>>,
    /// Non-`Auto` overrides, including ones for edges not currently
    /// configured (re-applied if they come back). Also serialises writes
    /// of the state file.
    overrides: Mutex<BTreeMap<Key, AdminState>>,
    state_file: Option<PathBuf>,
    sink: OnceLock<Arc<dyn LocalChanges>>,
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
        let overrides = match std::fs::read(&path) {
            Ok(bytes) => {
                let file: StateFile =
                    serde_json::from_slice(&bytes).map_err(|source| HealthError::StateFormat {
                        path: path.clone(),
                        source,
                    })?;
                file.overrides
                    .into_iter()
                    .filter(|o| o.admin != AdminState::Auto)
                    .map(|o| ((o.zone, o.edge), o.admin))
                    .collect()
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(source) => return Err(HealthError::StateFile { path, source }),
        };
        Ok(Registry {
            edges: RwLock::default(),
            overrides: Mutex::new(overrides),
            state_file: Some(path),
            sink: OnceLock::new(),
        })
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<Key, Arc<EdgeHealth>>> {
        self.edges.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<Key, Arc<EdgeHealth>>> {
        self.edges.write().unwrap_or_else(|p| p.into_inner())
    }

    fn overrides(&self) -> std::sync::MutexGuard<'_, BTreeMap<Key, AdminState>> {
        self.overrides.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The edge's health: the existing one (state and counters carried over)
    /// or a new one starting in `initial` (`Overloaded` counts as up), with
    /// any persisted admin override applied.
    pub fn edge(&self, zone: &str, edge: &str, initial: EdgeState) -> Arc<EdgeHealth> {
        let key = (zone.to_owned(), edge.to_owned());
        if let Some(h) = self.read().get(&key) {
            return h.clone();
        }
        let admin = self.overrides().get(&key).copied().unwrap_or_default();
        self.write()
            .entry(key)
            .or_insert_with(|| Arc::new(EdgeHealth::new(zone, edge, initial, admin)))
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
        let targets = self.matching(zone, edge);
        if targets.is_empty() {
            return Err(HealthError::UnknownEdge {
                zone: zone.map(str::to_owned),
                edge: edge.to_owned(),
            });
        }
        self.apply_admin(&targets, admin)?;
        if let Some(sink) = self.sink.get() {
            for h in &targets {
                sink.admin(h.zone(), h.name(), admin);
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
    ) -> Result<bool, HealthError> {
        let target = self.get(zone, edge);
        let key = (zone.to_owned(), edge.to_owned());
        if target.is_none() {
            let mut overrides = self.overrides();
            if overrides.get(&key).copied().unwrap_or_default() == admin {
                return Ok(false);
            }
            let mut next = overrides.clone();
            if admin == AdminState::Auto {
                next.remove(&key);
            } else {
                next.insert(key, admin);
            }
            if let Some(path) = &self.state_file {
                write_state(path, &next)?;
            }
            *overrides = next;
            return Ok(false);
        }
        let target = target.into_iter().collect::<Vec<_>>();
        if target[0].admin() != admin
            || self.overrides().get(&key).copied().unwrap_or_default() != admin
        {
            self.apply_admin(&target, admin)?;
        }
        Ok(true)
    }

    /// Every non-`Auto` override on file, configured edge or not.
    pub fn overrides_list(&self) -> Vec<(String, String, AdminState)> {
        self.overrides()
            .iter()
            .map(|((z, e), a)| (z.clone(), e.clone(), *a))
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
    ) -> Result<(), HealthError> {
        let mut overrides = self.overrides();
        let mut next = overrides.clone();
        for h in targets {
            let key = (h.zone().to_owned(), h.name().to_owned());
            if admin == AdminState::Auto {
                next.remove(&key);
            } else {
                next.insert(key, admin);
            }
        }
        if let Some(path) = &self.state_file {
            write_state(path, &next)?;
        }
        *overrides = next;
        for h in targets {
            h.set_admin(admin);
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
        if let Some(sink) = self.sink.get() {
            for h in &targets {
                sink.load(h.zone(), h.name(), load, ttl);
            }
        }
        Ok(targets.len())
    }

    /// Every edge's status, sorted by zone then name.
    pub fn snapshot(&self) -> Vec<EdgeStatus> {
        let edges: Vec<_> = self.read().values().cloned().collect();
        let mut v: Vec<_> = edges.iter().map(|h| h.status()).collect();
        v.sort_by(|a, b| (&a.zone, &a.name).cmp(&(&b.zone, &b.name)));
        v
    }

    /// Re-evaluates load expiry on every edge. The checker calls this every
    /// 200 ms; call it yourself if you run without a checker.
    pub fn refresh(&self) {
        let now = Instant::now();
        let edges: Vec<_> = self.read().values().cloned().collect();
        for h in edges {
            h.refresh(now);
        }
    }
}

/// Writes the overrides atomically: a temp file in the same directory,
/// synced, then renamed over the old one.
fn write_state(path: &Path, overrides: &BTreeMap<Key, AdminState>) -> Result<(), HealthError> {
    let file = StateFile {
        version: 1,
        overrides: overrides
            .iter()
            .map(|((zone, edge), admin)| Override {
                zone: zone.clone(),
                edge: edge.clone(),
                admin: *admin,
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
