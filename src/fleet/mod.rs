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
//! | `admin/<zone>/<edge>` | `{"state":"drain","by":"ns1","at_ms":…,"reason":"fibre cut","until_ms":…}` | until set to `auto` (deleted), or until `until_ms` (a lease of that length deletes it) |
//! | `load/<zone>/<edge>` | `{"load":0.93,"until_ms":…,"by":"ns1"}` | read as expired after `until_ms` |
//! | `health/<zone>/<edge>/<instance>` | `{"up":true}` | the instance's lease |
//! | `instances/<instance>` | [`InstanceInfo`] | the instance's lease |

mod config;
mod files;
mod outbox;
mod report;
mod rum;
mod session;
mod values;
mod view;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

pub use config::{FleetConfig, FleetRaw};
pub use session::FleetError;
pub use values::InstanceInfo;
pub use view::Fleet;

pub use rum::RumShare;

use crate::clock::unix_now_ms;
use crate::health::Registry;
use crate::snapshot::Shared;
use outbox::Outbox;
use session::{connect, run, within};
use view::View;

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
                    started_ms: unix_now_ms(),
                    http: http.map(|a| a.to_string()),
                    ..InstanceInfo::default()
                },
                since_ms: unix_now_ms(),
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
}
