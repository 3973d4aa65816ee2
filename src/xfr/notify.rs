//! The primary's side jobs: NOTIFY (RFC 1996) to `transfer.notify` when a
//! zone's serial changes (and at start-up), retried with backoff until a
//! response comes back or a newer serial supersedes it; and a reload at
//! each signing period of a signed zone, so its serial (and the
//! signatures a secondary holds) move on.
//!
//! A NOTIFY is signed with the key of the `transfer.allow` entry whose
//! network holds the target: the secondary we notify is the one we let in.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use tokio::sync::watch;

use super::image::{Rr, rdata_wire};
use super::{client, serial};
use crate::config::xfr::XfrConfig;
use crate::snapshot::{Shared, Zone};
use crate::tsig::{Key, Signer};
use crate::wire::{OPCODE_NOTIFY, TYPE_SOA};

/// Reloads the snapshot, blocking (`Reloader::reload`), named for logs.
pub type Reload = Arc<dyn Fn(&'static str) + Send + Sync>;

/// How often the current snapshot is looked at for new serials.
const POLL: Duration = Duration::from_millis(200);
/// First and longest wait between NOTIFY attempts.
const FIRST_RETRY: Duration = Duration::from_secs(1);
const LONGEST_RETRY: Duration = Duration::from_secs(60);
/// How long one attempt waits for the response.
const ANSWER_WAIT: Duration = Duration::from_secs(2);

/// The key to sign a NOTIFY to `target` with.
fn key_for(cfg: &XfrConfig, target: SocketAddr) -> Option<Arc<Key>> {
    let ip = target.ip().to_canonical();
    cfg.allow
        .iter()
        .find(|a| a.key.is_some() && a.net.contains(&ip))
        .and_then(|a| a.key.clone())
}

fn soa_rr(zone: &Zone) -> Rr {
    Rr {
        owner: zone.tree.apex.clone(),
        rtype: TYPE_SOA,
        ttl: zone.tree.soa().ttl,
        rdata: rdata_wire(&zone.tree.soa().rdata[0]),
    }
}

/// Runs until `stop`: notifies on serial changes, reloads at signing
/// periods. Does nothing without `transfer.notify` and signed zones.
pub async fn run(
    cfg: Arc<XfrConfig>,
    shared: Shared,
    reload: Reload,
    mut stop: watch::Receiver<bool>,
) {
    // The serial each zone was last notified for; the latest, shared with
    // its running NOTIFY jobs so an old one stops retrying.
    let mut latest: HashMap<String, Arc<AtomicU32>> = HashMap::new();
    let mut generation = 0;
    let mut next_period: Option<u64> = None;
    loop {
        tokio::select! {
            _ = stop.changed() => return,
            _ = tokio::time::sleep(POLL) => {}
        }
        let snap = shared.load_full();
        if snap.generation != generation {
            generation = snap.generation;
            for zone in snap.zones.values() {
                let s = serial::soa_serial(zone);
                let slot = latest
                    .entry(zone.name.clone())
                    .or_insert_with(|| Arc::new(AtomicU32::new(s.wrapping_sub(1))));
                if slot.swap(s, Ordering::AcqRel) == s {
                    continue;
                }
                for &target in &cfg.notify {
                    let job = Job {
                        target,
                        zone: zone.name.clone(),
                        apex: zone.tree.apex.clone(),
                        soa: soa_rr(zone),
                        serial: s,
                        key: key_for(&cfg, target),
                        latest: slot.clone(),
                    };
                    let stop = stop.clone();
                    tokio::spawn(job.run(stop));
                }
            }
            next_period = cfg
                .serves_transfers()
                .then(|| {
                    snap.zones
                        .values()
                        .filter_map(|z| {
                            let p = serial::signing_period(z.dnssec.as_deref()?);
                            Some((crate::clock::unix_now() / p + 1) * p)
                        })
                        .min()
                })
                .flatten();
        }
        if let Some(t) = next_period
            && crate::clock::unix_now() >= t
        {
            next_period = None;
            let reload = reload.clone();
            let _ = tokio::task::spawn_blocking(move || reload("signing period")).await;
        }
    }
}

/// One zone's NOTIFY to one target.
struct Job {
    target: SocketAddr,
    zone: String,
    apex: Box<[u8]>,
    soa: Rr,
    serial: u32,
    key: Option<Arc<Key>>,
    latest: Arc<AtomicU32>,
}

impl Job {
    async fn run(self, mut stop: watch::Receiver<bool>) {
        let mut wait = FIRST_RETRY;
        for attempt in 1u32.. {
            if self.latest.load(Ordering::Acquire) != self.serial || *stop.borrow() {
                return;
            }
            let msg = client::request(
                u16::from(OPCODE_NOTIFY),
                &self.apex,
                TYPE_SOA,
                std::slice::from_ref(&self.soa),
                &[],
            );
            let mut signer = self.key.clone().map(Signer::request);
            match client::udp(self.target, msg, signer.as_mut(), ANSWER_WAIT).await {
                Ok(r) => {
                    let rcode = client::rcode(&r);
                    if rcode == 0 {
                        tracing::info!(zone = %self.zone, target = %self.target, serial = self.serial, "NOTIFY answered");
                    } else {
                        tracing::warn!(zone = %self.zone, target = %self.target, rcode, "NOTIFY answered with an error");
                    }
                    metrics::counter!("geosteer_notify_sent_total", "result" => if rcode == 0 { "ok" } else { "error" }).increment(1);
                    return;
                }
                Err(e) => {
                    let level_warn = attempt == 3;
                    if level_warn {
                        tracing::warn!(zone = %self.zone, target = %self.target, attempt, "NOTIFY not answered yet, still retrying: {e}");
                    } else {
                        tracing::debug!(zone = %self.zone, target = %self.target, attempt, "NOTIFY: {e}");
                    }
                    metrics::counter!("geosteer_notify_sent_total", "result" => "retry")
                        .increment(1);
                }
            }
            tokio::select! {
                _ = stop.changed() => return,
                _ = tokio::time::sleep(wait) => {}
            }
            wait = (wait * 2).min(LONGEST_RETRY);
        }
    }
}
