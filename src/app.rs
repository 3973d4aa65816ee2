//! The `serve` command: build the first snapshot, start the listeners and
//! the jobs beside the query path (health checker, file watcher, HTTP),
//! wait for signals, shut down in order.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result, anyhow};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::ServerConfig;
use crate::health::{Checker, Registry};
use crate::reload::{Reloader, Watch};
use crate::server::Running;

/// How many probes may be in flight at once, across all edges.
const PROBE_CONCURRENCY: usize = 256;

/// A started server with everything around it.
pub struct App {
    pub reloader: Arc<Reloader>,
    pub running: Running,
    pub http_addr: Option<SocketAddr>,
    http: Option<JoinHandle<std::io::Result<()>>>,
    _watch: Option<Watch>,
    stop: watch::Sender<bool>,
}

impl App {
    /// Starts listeners, the health checker, the file watcher and the HTTP
    /// API. Fails if the files don't make a valid snapshot.
    pub async fn start(cfg: ServerConfig) -> Result<App> {
        let prometheus = crate::metrics::install();
        crate::health::ensure_crypto_provider();
        let registry =
            Arc::new(Registry::with_state_file(&cfg.state_file).map_err(|e| anyhow!("{e}"))?);
        let checker = Checker::start(registry.clone(), PROBE_CONCURRENCY);
        let token = match cfg.http {
            Some(addr) => crate::http::resolve_token(addr, cfg.http_token.as_deref())
                .map_err(|e| anyhow!("{e}"))?,
            None => None,
        };
        let reloader = {
            let cfg = cfg.clone();
            tokio::task::spawn_blocking(move || Reloader::new(cfg, registry, Some(checker)))
                .await?
                .map_err(|e| anyhow!("{e}"))?
        };
        let snap = reloader.shared().load();
        tracing::info!(
            zones = snap.zones.len(),
            geodb = snap.geodb.is_some(),
            generation = snap.generation,
            "snapshot built"
        );
        drop(snap);
        let running = crate::server::start_shared(&cfg, reloader.shared().clone())
            .await
            .with_context(|| format!("binding {:?}", cfg.listen))?;
        let watch = match reloader.watch() {
            Ok(w) => Some(w),
            Err(e) => {
                tracing::warn!("file watching is off: {e}; reload with SIGHUP or the API");
                None
            }
        };
        let (stop, _) = watch::channel(false);
        let (http_addr, http) = match cfg.http {
            Some(addr) => {
                let listener = tokio::net::TcpListener::bind(addr)
                    .await
                    .with_context(|| format!("binding http {addr}"))?;
                let bound = listener.local_addr()?;
                let api = crate::http::Api {
                    reloader: reloader.clone(),
                    prometheus,
                    started: Instant::now(),
                    token,
                };
                let mut rx = stop.subscribe();
                let task = tokio::spawn(crate::http::serve(listener, api, async move {
                    let _ = rx.wait_for(|s| *s).await;
                }));
                tracing::info!(http = %bound, "admin API listening");
                (Some(bound), Some(task))
            }
            None => (None, None),
        };
        Ok(App {
            reloader,
            running,
            http_addr,
            http,
            _watch: watch,
            stop,
        })
    }

    /// Reloads on a blocking thread.
    pub async fn reload(&self, trigger: &'static str) {
        let r = self.reloader.clone();
        let _ = tokio::task::spawn_blocking(move || r.reload(trigger)).await;
    }

    /// Stops everything; in-flight answers finish first.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        self.running.shutdown().await;
        if let Some(h) = self.http {
            let _ = h.await;
        }
    }
}

/// Serves until SIGINT or SIGTERM; SIGHUP reloads.
pub async fn serve(cfg: ServerConfig) -> Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut hup = signal(SignalKind::hangup())?;
    let app = App::start(cfg).await?;
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            _ = term.recv() => break,
            _ = hup.recv() => app.reload("SIGHUP").await,
        }
    }
    tracing::info!("shutting down");
    app.shutdown().await;
    Ok(())
}
