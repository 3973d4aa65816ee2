//! The fleet link: instances share admin overrides, load readings, probe
//! verdicts and the hashes of the files they serve through etcd.
//!
//! One background task per instance, beside the query path: it writes this
//! instance's changes, watches everyone's, and feeds them into the health
//! [`Registry`](crate::health::Registry), whose atomics the query path reads
//! as before. Answering never waits for etcd; when etcd is gone the
//! registry simply stops changing (and health falls back to this
//! instance's own probes) until the link is back and has resynced.
//!
//! Keys under `<prefix>`:
//!
//! | key | value | lifetime |
//! |---|---|---|
//! | `admin/<zone>/<edge>` | `{"state":"drain","by":"ns1","at_ms":…}` | until set to `auto` (deleted) |
//! | `load/<zone>/<edge>` | `{"load":0.93,"until_ms":…,"by":"ns1"}` | read as expired after `until_ms` |
//! | `health/<zone>/<edge>/<instance>` | `{"up":true}` | the instance's lease |
//! | `instances/<instance>` | [`InstanceInfo`] | the instance's lease |

mod config;
mod files;
mod rum;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use etcd_client::{
    Client, ConnectOptions, EventType, GetOptions, KeyValue, PutOptions, Txn, TxnOp, WatchOptions,
};
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

pub use config::{FleetConfig, FleetRaw, PASSWORD_ENV, Quorum};
pub use files::fingerprint;
pub use rum::RumShare;

use crate::health::{AdminState, LocalChanges, Registry};
use crate::snapshot::Shared;

/// How often own verdicts, the snapshot generation and the quorum are
/// re-examined. Bounds how late a local probe verdict reaches etcd.
const TICK: Duration = Duration::from_millis(100);

/// Operations per etcd transaction (etcd's `--max-txn-ops` default is 128).
const TXN_OPS: usize = 100;

/// How long `/api/fleet` lists an instance after its lease ended.
const GONE_KEEP_MS: u64 = 3600 * 1000;

/// Longest wait between reconnection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Why a session with etcd ended.
#[derive(Debug, thiserror::Error)]
pub enum FleetError {
    #[error("etcd: {0}")]
    Etcd(#[from] etcd_client::Error),
    #[error("etcd: {0} timed out")]
    Timeout(&'static str),
    #[error("fleet TLS file {path}: {source}")]
    TlsFile {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("etcd watch ended: {0}")]
    WatchEnded(String),
    #[error("etcd lease {0:x} expired")]
    LeaseExpired(i64),
}

/// What an instance publishes about itself (`instances/<name>`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct InstanceInfo {
    pub version: String,
    /// Snapshot generation (counts this instance's reloads).
    pub generation: u64,
    /// Hash over every served file's hash: equal means same files.
    pub files_hash: String,
    /// Served file name (zones-relative, `geodb` for the DB) → its hash.
    pub files: BTreeMap<String, String>,
    pub started_ms: u64,
    #[serde(default)]
    pub http: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
struct AdminValue {
    state: AdminState,
    #[serde(default)]
    by: String,
    #[serde(default)]
    at_ms: u64,
}

#[derive(Debug, Serialize, Deserialize)]
struct LoadValue {
    load: f64,
    until_ms: u64,
    #[serde(default)]
    by: String,
}

#[derive(Debug, Serialize, Deserialize)]
struct VerdictValue {
    up: bool,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

type EdgeKey = (String, String);

/// A local change waiting to be written, coalesced per edge: only the
/// latest override and the latest load reading matter.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Pending {
    Admin(AdminState),
    Load { load: f64, until_ms: u64 },
}

/// Local changes on their way to etcd. Survives sessions, so a drain made
/// while etcd was down is written when it is back.
#[derive(Default)]
struct Outbox {
    pending: Mutex<BTreeMap<(EdgeKey, bool), Pending>>,
    notify: Notify,
}

impl Outbox {
    fn push(&self, zone: &str, edge: &str, p: Pending) {
        let is_load = matches!(p, Pending::Load { .. });
        self.pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(((zone.to_owned(), edge.to_owned()), is_load), p);
        self.notify.notify_one();
    }

    fn take(&self) -> Vec<(EdgeKey, Pending)> {
        std::mem::take(&mut *self.pending.lock().unwrap_or_else(|e| e.into_inner()))
            .into_iter()
            .map(|((k, _), p)| (k, p))
            .collect()
    }

    /// Puts back what could not be written, unless a newer change came in.
    fn restore(&self, items: Vec<(EdgeKey, Pending)>) {
        let mut m = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        for (k, p) in items {
            let is_load = matches!(p, Pending::Load { .. });
            m.entry((k, is_load)).or_insert(p);
        }
    }
}

impl LocalChanges for Outbox {
    fn admin(&self, zone: &str, edge: &str, admin: AdminState) {
        self.push(zone, edge, Pending::Admin(admin));
    }

    fn load(&self, zone: &str, edge: &str, load: f64, ttl: Duration) {
        let until_ms = now_ms().saturating_add(ttl.as_millis().min(u64::MAX as u128) as u64);
        self.push(zone, edge, Pending::Load { load, until_ms });
    }
}

/// The fleet as this instance last saw it.
#[derive(Debug, Default)]
struct View {
    connected: bool,
    /// When `connected` last changed.
    since_ms: u64,
    last_error: Option<String>,
    /// Live instances (their lease holds), self included once published.
    instances: BTreeMap<String, InstanceInfo>,
    /// Instances seen live earlier in this process and gone since.
    gone: BTreeMap<String, (InstanceInfo, u64)>,
    /// (zone, edge) → instance → up.
    verdicts: BTreeMap<EdgeKey, BTreeMap<String, bool>>,
    own: InstanceInfo,
    bad_values: u64,
    resyncs: u64,
}

/// A running fleet link.
pub struct Fleet {
    cfg: FleetConfig,
    registry: Arc<Registry>,
    shared: Shared,
    outbox: Arc<Outbox>,
    view: Mutex<View>,
    connected: AtomicBool,
    connected_gauge: metrics::Gauge,
    task: Mutex<Option<JoinHandle<()>>>,
    /// The current lease (0: none), for revoking it on shutdown.
    lease: std::sync::atomic::AtomicI64,
    /// Index into `cfg.etcd` of the member last used.
    endpoint: std::sync::atomic::AtomicUsize,
}

impl std::fmt::Debug for Fleet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fleet")
            .field("instance", &self.cfg.instance)
            .field("connected", &self.is_connected())
            .finish()
    }
}

/// Why a value read from etcd was ignored (the metric's `reason`).
#[derive(Debug, Clone, Copy)]
enum Bad {
    NotJson,
    UnknownEdge,
    OutOfRange,
    Foreign,
}

impl Bad {
    fn label(self) -> &'static str {
        match self {
            Bad::NotJson => "not_json",
            Bad::UnknownEdge => "unknown_edge",
            Bad::OutOfRange => "out_of_range",
            Bad::Foreign => "unknown_key",
        }
    }
}

/// One key under the prefix, decoded.
enum Key<'a> {
    Admin(&'a str, &'a str),
    Load(&'a str, &'a str),
    Health(&'a str, &'a str, &'a str),
    Instance(&'a str),
}

fn parse_key(rest: &str) -> Option<Key<'_>> {
    let (kind, rest) = rest.split_once('/')?;
    let parts: Vec<&str> = rest.split('/').collect();
    match (kind, parts.as_slice()) {
        ("admin", [z, e]) => Some(Key::Admin(z, e)),
        ("load", [z, e]) => Some(Key::Load(z, e)),
        ("health", [z, e, i]) => Some(Key::Health(z, e, i)),
        ("instances", [i]) => Some(Key::Instance(i)),
        _ => None,
    }
}

async fn within<T, E: Into<FleetError>>(
    limit: Duration,
    what: &'static str,
    f: impl std::future::Future<Output = Result<T, E>>,
) -> Result<T, FleetError> {
    match tokio::time::timeout(limit, f).await {
        Ok(r) => r.map_err(Into::into),
        Err(_) => Err(FleetError::Timeout(what)),
    }
}

impl Fleet {
    /// Starts the link on the current tokio runtime. Returns at once: the
    /// first connection is made in the background, so an instance starts
    /// (with its state file's overrides) when etcd is unreachable.
    pub fn start(
        cfg: FleetConfig,
        registry: Arc<Registry>,
        shared: Shared,
        http: Option<std::net::SocketAddr>,
    ) -> Arc<Fleet> {
        let outbox = Arc::new(Outbox::default());
        registry.set_sink(outbox.clone());
        let gauge = metrics::gauge!("geosteer_fleet_connected");
        gauge.set(0.0);
        let fleet = Arc::new(Fleet {
            view: Mutex::new(View {
                own: InstanceInfo {
                    version: env!("CARGO_PKG_VERSION").into(),
                    started_ms: now_ms(),
                    http: http.map(|a| a.to_string()),
                    ..InstanceInfo::default()
                },
                since_ms: now_ms(),
                ..View::default()
            }),
            cfg,
            registry,
            shared,
            outbox,
            connected: AtomicBool::new(false),
            connected_gauge: gauge,
            task: Mutex::new(None),
            lease: Default::default(),
            endpoint: Default::default(),
        });
        let task = tokio::spawn(run(fleet.clone()));
        *fleet.task.lock().unwrap_or_else(|e| e.into_inner()) = Some(task);
        fleet
    }

    /// Stops the link and revokes this instance's lease, so the others
    /// drop its verdicts now rather than after `lease_ttl`. Bounded by
    /// `timeout`; if etcd does not answer, the lease simply expires.
    pub async fn stop(&self) {
        if let Some(t) = self.task.lock().unwrap_or_else(|e| e.into_inner()).take() {
            t.abort();
        }
        let lease = self.lease.swap(0, Ordering::AcqRel);
        if lease == 0 {
            return;
        }
        let endpoint =
            self.cfg.etcd[self.endpoint.load(Ordering::Acquire) % self.cfg.etcd.len()].clone();
        let revoke = async {
            let mut c = connect(&self.cfg, &endpoint).await?;
            within(self.cfg.timeout, "lease revoke", c.lease_revoke(lease)).await?;
            Ok::<_, FleetError>(())
        };
        let revoke = async {
            tokio::time::timeout(self.cfg.timeout, revoke)
                .await
                .unwrap_or(Err(FleetError::Timeout("lease revoke")))
        };
        match revoke.await {
            Ok(()) => tracing::info!(instance = %self.cfg.instance, "fleet: left (lease revoked)"),
            Err(e) => {
                tracing::debug!(error = %e, "fleet: lease not revoked; it expires on its own")
            }
        }
    }

    /// This instance's name in the fleet.
    pub fn instance(&self) -> &str {
        &self.cfg.instance
    }

    /// Whether the link to etcd is up.
    pub fn is_connected(&self) -> bool {
        self.connected.load(Ordering::Acquire)
    }

    fn view(&self) -> std::sync::MutexGuard<'_, View> {
        self.view.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn key(&self, tail: &str) -> String {
        format!("{}{tail}", self.cfg.prefix)
    }

    /// The short form for `/api/status`.
    pub fn status_json(&self) -> serde_json::Value {
        let v = self.view();
        serde_json::json!({
            "instance": self.cfg.instance,
            "connected": v.connected,
            "since": humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_millis(v.since_ms)).to_string(),
            "last_error": v.last_error,
            "live_instances": v.instances.len(),
            "bad_values": v.bad_values,
            "resyncs": v.resyncs,
        })
    }

    /// Everything `GET /api/fleet` shows: instances, liveness, verdicts per
    /// edge, and which instances serve different files.
    pub fn report(&self) -> serde_json::Value {
        let v = self.view();
        let mut live = v.instances.clone();
        // Self is live for this instance's own view even before (or
        // without) its key round-tripping through etcd.
        live.entry(self.cfg.instance.clone())
            .or_insert_with(|| v.own.clone());
        if let Some(me) = live.get_mut(&self.cfg.instance) {
            *me = v.own.clone();
        }
        // The reference file set is the one most live instances serve
        // (ties go to this instance's).
        let mut counts: HashMap<&str, usize> = HashMap::new();
        for i in live.values() {
            *counts.entry(i.files_hash.as_str()).or_default() += 1;
        }
        let reference = counts
            .iter()
            .max_by_key(|(h, n)| (**n, **h == v.own.files_hash))
            .map(|(h, _)| h.to_string())
            .unwrap_or_default();
        let ref_files = live
            .values()
            .find(|i| i.files_hash == reference)
            .map(|i| i.files.clone())
            .unwrap_or_default();
        let mut instances = Vec::new();
        let describe = |name: &str, i: &InstanceInfo, is_live: bool| {
            let differs: Vec<&String> = ref_files
                .keys()
                .chain(i.files.keys())
                .filter(|f| ref_files.get(*f) != i.files.get(*f))
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .collect();
            serde_json::json!({
                "name": name,
                "self": name == self.cfg.instance,
                "live": is_live,
                "version": i.version,
                "generation": i.generation,
                "files_hash": i.files_hash,
                "drift": is_live && i.files_hash != reference,
                "differs": differs,
                "http": i.http,
                "started": humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_millis(i.started_ms)).to_string(),
            })
        };
        for (name, i) in &live {
            instances.push(describe(name, i, true));
        }
        for (name, (i, _)) in &v.gone {
            if !live.contains_key(name) {
                instances.push(describe(name, i, false));
            }
        }
        let mut edges = Vec::new();
        let mut local: BTreeMap<EdgeKey, _> = self
            .registry
            .edges()
            .into_iter()
            .map(|h| ((h.zone().to_owned(), h.name().to_owned()), h))
            .collect();
        let mut keys: Vec<EdgeKey> = v.verdicts.keys().cloned().collect();
        keys.extend(local.keys().cloned());
        keys.sort();
        keys.dedup();
        for k in keys {
            let mut verdicts: BTreeMap<String, &str> = v
                .verdicts
                .get(&k)
                .into_iter()
                .flatten()
                .filter(|(i, _)| live.contains_key(*i) && **i != self.cfg.instance)
                .map(|(i, up)| (i.clone(), if *up { "up" } else { "down" }))
                .collect();
            let h = local.remove(&k);
            if let Some(own) = h.as_ref().and_then(|h| h.own_verdict()) {
                verdicts.insert(self.cfg.instance.clone(), if own { "up" } else { "down" });
            }
            if verdicts.is_empty() && h.as_ref().is_none_or(|h| h.own_verdict().is_none()) {
                // An edge without a check anywhere: nothing to vote on.
                continue;
            }
            let status = h.as_ref().map(|h| h.status());
            edges.push(serde_json::json!({
                "zone": k.0,
                "edge": k.1,
                "verdicts": verdicts,
                "fleet": status.as_ref().and_then(|s| s.fleet_healthy).map(|up| if up { "up" } else { "down" }),
                "effective": status.as_ref().map(|s| s.effective),
                "configured": h.is_some(),
            }));
        }
        serde_json::json!({
            "instance": self.cfg.instance,
            "prefix": self.cfg.prefix,
            "health_quorum": self.cfg.health_quorum.to_string(),
            "connected": v.connected,
            "last_error": v.last_error,
            "bad_values": v.bad_values,
            "files_hash": reference,
            "instances": instances,
            "edges": edges,
        })
    }

    fn set_connected(&self, up: bool, error: Option<String>) {
        let was = self.connected.swap(up, Ordering::AcqRel);
        {
            let mut v = self.view();
            if was != up || v.since_ms == 0 {
                v.since_ms = now_ms();
            }
            v.connected = up;
            if error.is_some() {
                v.last_error = error.clone();
            }
        }
        self.connected_gauge.set(if up { 1.0 } else { 0.0 });
        match (was, up) {
            (false, true) => tracing::info!(
                instance = %self.cfg.instance,
                "fleet: connected to etcd and resynced"
            ),
            (true, false) => tracing::warn!(
                instance = %self.cfg.instance,
                error = error.as_deref().unwrap_or(""),
                "fleet: lost etcd; serving the last known overrides and load, health from own probes, until it is back"
            ),
            _ => {}
        }
    }

    fn bad(&self, key: &str, why: Bad, detail: impl std::fmt::Display) {
        metrics::counter!("geosteer_fleet_bad_values_total", "reason" => why.label()).increment(1);
        self.view().bad_values += 1;
        tracing::warn!(
            key,
            reason = why.label(),
            "fleet: ignoring value from etcd: {detail}"
        );
    }

    /// Applies one key's current value (`None`: deleted) to the registry
    /// and the view. Never fails: bad values are logged and counted.
    fn apply(&self, key: &str, value: Option<&[u8]>) {
        let Some(rest) = key.strip_prefix(&self.cfg.prefix) else {
            return;
        };
        let Some(k) = parse_key(rest) else {
            if value.is_some() {
                self.bad(key, Bad::Foreign, "not a key geosteer writes");
            }
            return;
        };
        match k {
            Key::Admin(zone, edge) => {
                let admin = match value {
                    None => AdminState::Auto,
                    Some(b) => match serde_json::from_slice::<AdminValue>(b) {
                        Ok(a) => a.state,
                        Err(e) => return self.bad(key, Bad::NotJson, e),
                    },
                };
                match self.registry.apply_shared_admin(zone, edge, admin) {
                    Ok(true) => {}
                    Ok(false) => {
                        if admin != AdminState::Auto {
                            self.bad(
                                key,
                                Bad::UnknownEdge,
                                "no such edge here; kept on file for when it is configured",
                            );
                        }
                    }
                    Err(e) => tracing::warn!(key, "fleet: override not saved: {e}"),
                }
            }
            Key::Load(zone, edge) => {
                let Some(b) = value else { return };
                let l = match serde_json::from_slice::<LoadValue>(b) {
                    Ok(l) => l,
                    Err(e) => return self.bad(key, Bad::NotJson, e),
                };
                if !(0.0..=1.0).contains(&l.load) {
                    return self.bad(
                        key,
                        Bad::OutOfRange,
                        format!("load {} not within 0..=1", l.load),
                    );
                }
                let Some(h) = self.registry.get(zone, edge) else {
                    return self.bad(key, Bad::UnknownEdge, "no such edge here");
                };
                let left = l.until_ms.saturating_sub(now_ms());
                if left > 0 {
                    h.feed_load(l.load, Duration::from_millis(left));
                }
            }
            Key::Health(zone, edge, inst) => {
                let mut v = self.view();
                let k = (zone.to_owned(), edge.to_owned());
                match value {
                    None => {
                        if let Some(m) = v.verdicts.get_mut(&k) {
                            m.remove(inst);
                            if m.is_empty() {
                                v.verdicts.remove(&k);
                            }
                        }
                    }
                    Some(b) => match serde_json::from_slice::<VerdictValue>(b) {
                        Ok(x) => {
                            v.verdicts
                                .entry(k)
                                .or_default()
                                .insert(inst.to_owned(), x.up);
                        }
                        Err(e) => {
                            drop(v);
                            self.bad(key, Bad::NotJson, e);
                        }
                    },
                }
            }
            Key::Instance(inst) => {
                let mut v = self.view();
                match value {
                    None => {
                        if let Some(i) = v.instances.remove(inst) {
                            tracing::info!(instance = inst, "fleet: instance left (lease ended)");
                            let now = now_ms();
                            // Pods named after their host come and go; keep
                            // the departed for a while, not forever.
                            v.gone
                                .retain(|_, (_, at)| now.saturating_sub(*at) < GONE_KEEP_MS);
                            v.gone.insert(inst.to_owned(), (i, now));
                        }
                    }
                    Some(b) => match serde_json::from_slice::<InstanceInfo>(b) {
                        Ok(i) => {
                            v.gone.remove(inst);
                            if v.instances.insert(inst.to_owned(), i).is_none()
                                && inst != self.cfg.instance
                            {
                                tracing::info!(instance = inst, "fleet: instance joined");
                            }
                        }
                        Err(e) => {
                            drop(v);
                            self.bad(key, Bad::NotJson, e);
                        }
                    },
                }
            }
        }
    }

    /// Sets every edge's fleet verdict from the live instances' verdicts,
    /// or clears it (own probes decide) without fleet data.
    fn apply_quorum(&self) {
        let v = self.view();
        let connected = v.connected;
        for h in self.registry.edges() {
            let Some(own) = h.own_verdict() else {
                h.set_fleet_verdict(None);
                continue;
            };
            let others: Vec<bool> = if connected {
                v.verdicts
                    .get(&(h.zone().to_owned(), h.name().to_owned()))
                    .into_iter()
                    .flatten()
                    .filter(|(i, _)| **i != self.cfg.instance && v.instances.contains_key(*i))
                    .map(|(_, up)| *up)
                    .collect()
            } else {
                Vec::new()
            };
            if others.is_empty() {
                h.set_fleet_verdict(None);
                continue;
            }
            let voters = others.len() + 1;
            let down = others.iter().filter(|up| !**up).count() + usize::from(!own);
            h.set_fleet_verdict(Some(!self.cfg.health_quorum.is_down(down, voters)));
        }
    }

    /// Rebuilds the view from a full read of the prefix: overrides set
    /// there are applied, ones gone from it are lifted.
    fn resync(&self, kvs: &[KeyValue]) {
        {
            let mut v = self.view();
            v.verdicts.clear();
            let old = std::mem::take(&mut v.instances);
            for (name, i) in old {
                v.gone.insert(name, (i, now_ms()));
            }
            v.resyncs += 1;
        }
        let mut admin_keys = std::collections::HashSet::new();
        for kv in kvs {
            let Ok(key) = kv.key_str() else { continue };
            if let Some(Key::Admin(z, e)) = key.strip_prefix(&self.cfg.prefix).and_then(parse_key) {
                admin_keys.insert((z.to_owned(), e.to_owned()));
            }
            self.apply(key, Some(kv.value()));
        }
        for (z, e, _) in self.registry.overrides_list() {
            if !admin_keys.contains(&(z.clone(), e.clone())) {
                tracing::info!(zone = %z, edge = %e, "fleet: override lifted elsewhere while disconnected");
                if let Err(err) = self.registry.apply_shared_admin(&z, &e, AdminState::Auto) {
                    tracing::warn!("fleet: override not saved: {err}");
                }
            }
        }
        let mut v = self.view();
        let live: Vec<String> = v.instances.keys().cloned().collect();
        for name in live {
            v.gone.remove(&name);
        }
    }
}

/// Connects to one endpoint. etcd-client's own multi-endpoint channel
/// fails every call while any one endpoint is down (etcd-client issue
/// #39), which is exactly when a fleet needs etcd, so the link talks to one
/// member at a time and moves to the next when a session fails.
async fn connect(cfg: &FleetConfig, endpoint: &str) -> Result<Client, FleetError> {
    let mut opts = ConnectOptions::new()
        .with_connect_timeout(cfg.timeout)
        .with_timeout(cfg.timeout)
        .with_keep_alive(Duration::from_secs(5), cfg.timeout)
        // A member cut off from its cluster's leader refuses watches
        // instead of serving a silent, stale one.
        .with_require_leader(true);
    if let Some(user) = &cfg.username {
        let password = cfg
            .password
            .clone()
            .or_else(|| std::env::var(PASSWORD_ENV).ok())
            .unwrap_or_default();
        opts = opts.with_user(user.clone(), password);
    }
    if cfg.ca_file.is_some() || cfg.cert_file.is_some() {
        let read = |p: &std::path::PathBuf| {
            std::fs::read(p).map_err(|source| FleetError::TlsFile {
                path: p.display().to_string(),
                source,
            })
        };
        let mut tls = etcd_client::TlsOptions::new();
        if let Some(ca) = &cfg.ca_file {
            tls = tls.ca_certificate(etcd_client::Certificate::from_pem(read(ca)?));
        }
        if let (Some(c), Some(k)) = (&cfg.cert_file, &cfg.key_file) {
            tls = tls.identity(etcd_client::Identity::from_pem(read(c)?, read(k)?));
        }
        opts = opts.with_tls(tls);
    }
    within(
        cfg.timeout,
        "connect",
        Client::connect([endpoint], Some(opts)),
    )
    .await
}

/// The link's life: sessions, with a capped backoff between them.
async fn run(fleet: Arc<Fleet>) {
    let mut backoff = Duration::from_millis(200);
    let mut lease: Option<i64> = None;
    let mut failures = 0u64;
    // Failed sessions in a row: a full round over the endpoints backs off.
    let mut in_a_row = 0usize;
    let mut next = 0usize;
    let n = fleet.cfg.etcd.len().max(1);
    loop {
        let endpoint = fleet.cfg.etcd[next % n].clone();
        fleet.endpoint.store(next % n, Ordering::Release);
        let err = session(&fleet, &endpoint, &mut lease).await.unwrap_err();
        failures += 1;
        next += 1;
        if fleet.is_connected() {
            backoff = Duration::from_millis(200);
            in_a_row = 0;
        } else if failures > 1 {
            tracing::debug!(endpoint, error = %err, "fleet: etcd still unreachable");
        } else {
            tracing::warn!(endpoint, error = %err, "fleet: etcd unreachable; serving from the state file until it is");
        }
        fleet.set_connected(false, Some(format!("{endpoint}: {err}")));
        fleet.apply_quorum();
        in_a_row += 1;
        if in_a_row >= n {
            in_a_row = 0;
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }
}

/// One connection: lease, flush, publish, resync, then watch until
/// something fails.
async fn session(
    fleet: &Arc<Fleet>,
    endpoint: &str,
    lease_slot: &mut Option<i64>,
) -> Result<std::convert::Infallible, FleetError> {
    let cfg = &fleet.cfg;
    let t = cfg.timeout;
    let mut client = connect(cfg, endpoint).await?;
    let ttl = cfg.lease_ttl.as_secs().max(2) as i64;
    // Keep the lease of the last session if it is still alive, so a short
    // blip does not make the other instances drop this one.
    let mut lease = None;
    if let Some(id) = lease_slot.take() {
        let revived = async {
            let (mut k, mut s) = within(t, "lease keep-alive", client.lease_keep_alive(id)).await?;
            within(t, "lease keep-alive", k.keep_alive()).await?;
            let r = within(t, "lease keep-alive", s.message()).await?;
            Ok::<_, FleetError>(r.filter(|r| r.ttl() > 0).map(|_| (id, k, s)))
        };
        // An expired or unknown lease ("lease not found") means a new one.
        match revived.await {
            Ok(l) => lease = l,
            Err(e) => tracing::debug!(error = %e, "fleet: previous lease is gone"),
        }
    }
    let (lease, mut keeper, mut ka) = match lease {
        Some(l) => l,
        None => {
            let id = within(t, "lease grant", client.lease_grant(ttl, None))
                .await?
                .id();
            let (k, s) = within(t, "lease keep-alive", client.lease_keep_alive(id)).await?;
            (id, k, s)
        }
    };
    *lease_slot = Some(lease);
    fleet.lease.store(lease, Ordering::Release);

    // Another live process under this name would overwrite this one's
    // verdicts and info; say so loudly (the config must make names unique).
    let me = fleet.key(&format!("instances/{}", cfg.instance));
    let mine = within(t, "read", client.get(me.as_bytes(), None)).await?;
    if let Some(kv) = mine.kvs().first()
        && kv.lease() != lease
        && kv.lease() != 0
    {
        tracing::warn!(
            instance = %cfg.instance,
            "fleet: this name is held by another lease: either this instance restarted within lease_ttl (harmless) or another instance uses the same name (fleet.instance must be unique, or their verdicts mix)"
        );
    }
    flush(fleet, &mut client).await?;
    let mut generation = 0u64;
    publish_info(fleet, &mut client, lease, &mut generation).await?;

    let resp = within(
        t,
        "read",
        client.get(cfg.prefix.as_bytes(), Some(GetOptions::new().with_prefix())),
    )
    .await?;
    let revision = resp.header().map_or(0, |h| h.revision());
    fleet.resync(resp.kvs());
    let mut watch = within(
        t,
        "watch",
        client.watch(
            cfg.prefix.as_bytes(),
            Some(
                WatchOptions::new()
                    .with_prefix()
                    .with_start_revision(revision + 1),
            ),
        ),
    )
    .await?;
    // What etcd holds of this instance's verdicts (from the resync): the
    // forced publish below rewrites the current ones under this session's
    // lease and deletes those of edges no longer probed here.
    let mut published: HashMap<EdgeKey, bool> = fleet
        .view()
        .verdicts
        .iter()
        .filter_map(|(k, m)| m.get(&cfg.instance).map(|up| (k.clone(), *up)))
        .collect();
    publish_verdicts(fleet, &mut client, lease, &mut published, true).await?;
    fleet.set_connected(true, None);
    fleet.apply_quorum();

    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut renew = tokio::time::interval(cfg.lease_ttl / 3);
    renew.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    renew.tick().await;
    loop {
        tokio::select! {
            msg = watch.message() => {
                let Some(resp) = msg? else {
                    return Err(FleetError::WatchEnded("stream closed".into()));
                };
                if resp.canceled() {
                    return Err(FleetError::WatchEnded(resp.cancel_reason().to_string()));
                }
                for ev in resp.events() {
                    let Some(kv) = ev.kv() else { continue };
                    let Ok(key) = kv.key_str() else { continue };
                    match ev.event_type() {
                        EventType::Put => fleet.apply(key, Some(kv.value())),
                        EventType::Delete => fleet.apply(key, None),
                    }
                }
                fleet.apply_quorum();
            }
            _ = fleet.outbox.notify.notified() => flush(fleet, &mut client).await?,
            _ = tick.tick() => {
                publish_verdicts(fleet, &mut client, lease, &mut published, false).await?;
                publish_info(fleet, &mut client, lease, &mut generation).await?;
                fleet.apply_quorum();
            }
            _ = renew.tick() => {
                within(t, "lease keep-alive", keeper.keep_alive()).await?;
                match within(t, "lease keep-alive", ka.message()).await? {
                    Some(r) if r.ttl() > 0 => {}
                    _ => {
                        *lease_slot = None;
                        return Err(FleetError::LeaseExpired(lease));
                    }
                }
            }
        }
    }
}

/// Writes the outbox. What fails goes back in for the next session.
async fn flush(fleet: &Fleet, client: &mut Client) -> Result<(), FleetError> {
    let items = fleet.outbox.take();
    let t = fleet.cfg.timeout;
    for (i, ((zone, edge), p)) in items.iter().enumerate() {
        let r = match p {
            Pending::Admin(AdminState::Auto) => within(
                t,
                "write",
                client.delete(fleet.key(&format!("admin/{zone}/{edge}")), None),
            )
            .await
            .map(drop),
            Pending::Admin(state) => {
                let v = serde_json::to_vec(&AdminValue {
                    state: *state,
                    by: fleet.cfg.instance.clone(),
                    at_ms: now_ms(),
                })
                .unwrap_or_default();
                within(
                    t,
                    "write",
                    client.put(fleet.key(&format!("admin/{zone}/{edge}")), v, None),
                )
                .await
                .map(drop)
            }
            Pending::Load { load, until_ms } => {
                let v = serde_json::to_vec(&LoadValue {
                    load: *load,
                    until_ms: *until_ms,
                    by: fleet.cfg.instance.clone(),
                })
                .unwrap_or_default();
                within(
                    t,
                    "write",
                    client.put(fleet.key(&format!("load/{zone}/{edge}")), v, None),
                )
                .await
                .map(drop)
            }
        };
        if let Err(e) = r {
            metrics::counter!("geosteer_fleet_writes_total", "result" => "failed").increment(1);
            fleet.outbox.restore(items[i..].to_vec());
            return Err(e);
        }
        metrics::counter!("geosteer_fleet_writes_total", "result" => "ok").increment(1);
    }
    Ok(())
}

/// Publishes own verdicts that changed (all with `force`), and deletes the
/// ones of edges this instance no longer probes.
async fn publish_verdicts(
    fleet: &Fleet,
    client: &mut Client,
    lease: i64,
    published: &mut HashMap<EdgeKey, bool>,
    force: bool,
) -> Result<(), FleetError> {
    let t = fleet.cfg.timeout;
    let inst = &fleet.cfg.instance;
    let mut current: HashMap<EdgeKey, bool> = HashMap::new();
    for h in fleet.registry.edges() {
        if let Some(up) = h.own_verdict() {
            current.insert((h.zone().to_owned(), h.name().to_owned()), up);
        }
    }
    // Batched, so a fresh session publishing hundreds of verdicts over a
    // WAN costs a few round trips, not one per edge.
    let mut ops: Vec<(EdgeKey, Option<bool>, TxnOp)> = Vec::new();
    for (k, up) in &current {
        if !force && published.get(k) == Some(up) {
            continue;
        }
        let v = serde_json::to_vec(&VerdictValue { up: *up }).unwrap_or_default();
        let key = fleet.key(&format!("health/{}/{}/{inst}", k.0, k.1));
        ops.push((
            k.clone(),
            Some(*up),
            TxnOp::put(key, v, Some(PutOptions::new().with_lease(lease))),
        ));
    }
    for k in published.keys().filter(|k| !current.contains_key(*k)) {
        let key = fleet.key(&format!("health/{}/{}/{inst}", k.0, k.1));
        ops.push((k.clone(), None, TxnOp::delete(key, None)));
    }
    while !ops.is_empty() {
        let rest = ops.split_off(ops.len().min(TXN_OPS));
        let batch = std::mem::replace(&mut ops, rest);
        let (done, txn_ops): (Vec<_>, Vec<_>) =
            batch.into_iter().map(|(k, up, op)| ((k, up), op)).unzip();
        within(t, "write", client.txn(Txn::new().and_then(txn_ops))).await?;
        for (k, up) in done {
            match up {
                Some(up) => published.insert(k, up),
                None => published.remove(&k),
            };
        }
    }
    Ok(())
}

/// Publishes this instance's info when its snapshot generation changed.
async fn publish_info(
    fleet: &Fleet,
    client: &mut Client,
    lease: i64,
    generation: &mut u64,
) -> Result<(), FleetError> {
    let snap = fleet.shared.load_full();
    if snap.generation == *generation {
        return Ok(());
    }
    let geodb = snap.geodb.as_ref().map(|db| {
        let i = db.info();
        format!("{}:{}:{}", i.database_type, i.build_epoch, i.file_size)
    });
    let zones: Vec<_> = snap
        .zones
        .values()
        .map(|z| (z.zone_file.clone(), z.pools_file.clone()))
        .collect();
    let gen_now = snap.generation;
    drop(snap);
    let (files, files_hash) =
        tokio::task::spawn_blocking(move || fingerprint(&zones, geodb.as_deref()))
            .await
            .unwrap_or_default();
    let info = {
        let mut v = fleet.view();
        v.own.generation = gen_now;
        v.own.files = files;
        v.own.files_hash = files_hash;
        v.own.clone()
    };
    let body = serde_json::to_vec(&info).unwrap_or_default();
    within(
        fleet.cfg.timeout,
        "write",
        client.put(
            fleet.key(&format!("instances/{}", fleet.cfg.instance)),
            body,
            Some(PutOptions::new().with_lease(lease)),
        ),
    )
    .await?;
    *generation = gen_now;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_parse() {
        assert!(matches!(
            parse_key("admin/cdn.example./fra1"),
            Some(Key::Admin("cdn.example.", "fra1"))
        ));
        assert!(matches!(
            parse_key("health/z./e/ns1"),
            Some(Key::Health("z.", "e", "ns1"))
        ));
        assert!(matches!(
            parse_key("instances/ns1"),
            Some(Key::Instance("ns1"))
        ));
        assert!(parse_key("admin/onlyzone").is_none());
        assert!(parse_key("other/x").is_none());
    }

    #[test]
    fn outbox_coalesces_and_keeps_newer_on_restore() {
        let o = Outbox::default();
        o.admin("z.", "e", AdminState::Drain);
        o.admin("z.", "e", AdminState::Auto);
        o.load("z.", "e", 0.5, Duration::from_secs(60));
        let items = o.take();
        assert_eq!(items.len(), 2);
        assert!(
            items
                .iter()
                .any(|(_, p)| *p == Pending::Admin(AdminState::Auto))
        );
        o.admin("z.", "e", AdminState::Down);
        o.restore(items);
        let again = o.take();
        assert!(
            again
                .iter()
                .any(|(_, p)| *p == Pending::Admin(AdminState::Down))
        );
        assert_eq!(again.len(), 2);
    }
}
