//! The link's life: connecting to one etcd member at a time, sessions
//! (lease, flush, publish, resync, watch), and writing this instance's
//! changes, verdicts and info.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use etcd_client::{
    Client, ConnectOptions, EventType, GetOptions, PutOptions, Txn, TxnOp, WatchOptions,
};

use super::config::{FleetConfig, PASSWORD_ENV};
use super::files::fingerprint;
use super::outbox::Pending;
use super::values::{AdminValue, EdgeKey, LoadValue, VerdictValue};
use super::view::Fleet;
use crate::clock::unix_now_ms;
use crate::health::AdminState;

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

/// How often own verdicts, the snapshot generation and the quorum are
/// re-examined. Bounds how late a local probe verdict reaches etcd.
const TICK: Duration = Duration::from_millis(100);

/// Operations per etcd transaction (etcd's `--max-txn-ops` default is 128).
const TXN_OPS: usize = 100;

/// Longest wait between reconnection attempts.
pub(super) const MAX_BACKOFF: Duration = Duration::from_secs(5);

pub(super) async fn within<T, E: Into<FleetError>>(
    limit: Duration,
    what: &'static str,
    f: impl std::future::Future<Output = Result<T, E>>,
) -> Result<T, FleetError> {
    match tokio::time::timeout(limit, f).await {
        Ok(r) => r.map_err(Into::into),
        Err(_) => Err(FleetError::Timeout(what)),
    }
}

/// Connects to one endpoint. etcd-client's own multi-endpoint channel
/// fails every call while any one endpoint is down (etcd-client issue
/// #39), which is exactly when a fleet needs etcd, so the link talks to one
/// member at a time and moves to the next when a session fails.
pub(super) async fn connect(cfg: &FleetConfig, endpoint: &str) -> Result<Client, FleetError> {
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
pub(super) async fn run(fleet: Arc<Fleet>) {
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
            // Lifted, or run out before it could be written.
            Pending::Admin(state, note)
                if *state == AdminState::Auto || note.expired(unix_now_ms()) =>
            {
                within(
                    t,
                    "write",
                    client.delete(fleet.key(&format!("admin/{zone}/{edge}")), None),
                )
                .await
                .map(drop)
            }
            Pending::Admin(state, note) => {
                let v = serde_json::to_vec(&AdminValue {
                    state: *state,
                    by: fleet.cfg.instance.clone(),
                    at_ms: unix_now_ms(),
                    note: note.clone(),
                })
                .unwrap_or_default();
                // An override with an end goes under a lease of its length,
                // so etcd deletes it then, for instances that do not read
                // `until_ms` too.
                let lease = match note.until_ms {
                    Some(until) => {
                        let secs = until.saturating_sub(unix_now_ms()).div_ceil(1000).max(1);
                        within(
                            t,
                            "lease grant",
                            client.lease_grant(secs.min(i64::MAX as u64) as i64, None),
                        )
                        .await
                        .map(|l| Some(l.id()))
                    }
                    None => Ok(None),
                };
                match lease {
                    Ok(lease) => {
                        let opts = lease.map(|id| PutOptions::new().with_lease(id));
                        within(
                            t,
                            "write",
                            client.put(fleet.key(&format!("admin/{zone}/{edge}")), v, opts),
                        )
                        .await
                        .map(drop)
                    }
                    Err(e) => Err(e),
                }
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
