//! The link's state: the running [`Fleet`], the fleet as this instance
//! last saw it ([`View`]), and what a key read from etcd changes in it and
//! in the health registry.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use etcd_client::KeyValue;
use tokio::task::JoinHandle;

use super::config::FleetConfig;
use super::outbox::Outbox;
use super::values::{AdminValue, EdgeKey, InstanceInfo, Key, LoadValue, VerdictValue, parse_key};
use crate::clock::unix_now_ms;
use crate::health::{AdminNote, AdminState, Registry};
use crate::snapshot::Shared;

/// How long `/api/fleet` lists an instance after its lease ended.
const GONE_KEEP_MS: u64 = 3600 * 1000;

/// The fleet as this instance last saw it.
#[derive(Debug, Default)]
pub(super) struct View {
    pub(super) connected: bool,
    /// When `connected` last changed.
    pub(super) since_ms: u64,
    pub(super) last_error: Option<String>,
    /// Live instances (their lease holds), self included once published.
    pub(super) instances: BTreeMap<String, InstanceInfo>,
    /// Instances seen live earlier in this process and gone since.
    pub(super) gone: BTreeMap<String, (InstanceInfo, u64)>,
    /// (zone, edge) → instance → up.
    pub(super) verdicts: BTreeMap<EdgeKey, BTreeMap<String, bool>>,
    pub(super) own: InstanceInfo,
    pub(super) bad_values: u64,
    pub(super) resyncs: u64,
}

/// A running fleet link.
pub struct Fleet {
    pub(super) cfg: FleetConfig,
    pub(super) registry: Arc<Registry>,
    pub(super) shared: Shared,
    pub(super) outbox: Arc<Outbox>,
    pub(super) view: Mutex<View>,
    pub(super) connected: AtomicBool,
    pub(super) connected_gauge: metrics::Gauge,
    pub(super) task: Mutex<Option<JoinHandle<()>>>,
    /// The current lease (0: none), for revoking it on shutdown.
    pub(super) lease: std::sync::atomic::AtomicI64,
    /// Index into `cfg.etcd` of the member last used.
    pub(super) endpoint: std::sync::atomic::AtomicUsize,
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
pub(super) enum Bad {
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

impl Fleet {
    /// This instance's name in the fleet.
    pub fn instance(&self) -> &str {
        &self.cfg.instance
    }

    /// Whether the link to etcd is up.
    pub fn is_connected(&self) -> bool {
        self.connected.load(Ordering::Acquire)
    }

    pub(super) fn view(&self) -> std::sync::MutexGuard<'_, View> {
        self.view.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(super) fn key(&self, tail: &str) -> String {
        format!("{}{tail}", self.cfg.prefix)
    }

    pub(super) fn set_connected(&self, up: bool, error: Option<String>) {
        let was = self.connected.swap(up, Ordering::AcqRel);
        {
            let mut v = self.view();
            if was != up || v.since_ms == 0 {
                v.since_ms = unix_now_ms();
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

    pub(super) fn bad(&self, key: &str, why: Bad, detail: impl std::fmt::Display) {
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
    pub(super) fn apply(&self, key: &str, value: Option<&[u8]>) {
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
                let (admin, note) = match value {
                    None => (AdminState::Auto, AdminNote::default()),
                    Some(b) => match serde_json::from_slice::<AdminValue>(b) {
                        Ok(a) => (a.state, a.note),
                        Err(e) => return self.bad(key, Bad::NotJson, e),
                    },
                };
                match self.registry.apply_shared_admin(zone, edge, admin, note) {
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
                if !self
                    .registry
                    .apply_shared_load(zone, edge, l.load, l.until_ms)
                {
                    self.bad(key, Bad::UnknownEdge, "no such edge here");
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
                            let now = unix_now_ms();
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
    pub(super) fn apply_quorum(&self) {
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
    pub(super) fn resync(&self, kvs: &[KeyValue]) {
        {
            let mut v = self.view();
            v.verdicts.clear();
            let old = std::mem::take(&mut v.instances);
            for (name, i) in old {
                v.gone.insert(name, (i, unix_now_ms()));
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
                if let Err(err) =
                    self.registry
                        .apply_shared_admin(&z, &e, AdminState::Auto, AdminNote::default())
                {
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
