//! The `serve` command: build the first snapshot, start listeners and the
//! jobs beside the query path, wait for a signal, shut down in order.

use anyhow::{Context, Result};

use crate::config::ServerConfig;
use crate::config::pools::AlwaysUp;

/// Serves until SIGINT or SIGTERM; in-flight answers finish first.
pub async fn serve(cfg: ServerConfig) -> Result<()> {
    let snap = crate::reload::build_snapshot(&cfg, &AlwaysUp, 1).map_err(|e| anyhow::anyhow!("{e}"))?;
    tracing::info!(zones = snap.zones.len(), geodb = snap.geodb.is_some(), "snapshot built");
    let running = crate::server::start(&cfg, snap)
        .await
        .with_context(|| format!("binding {:?}", cfg.listen))?;
    shutdown_signal().await;
    tracing::info!("shutting down");
    running.shutdown().await;
    Ok(())
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
