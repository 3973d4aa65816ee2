//! The `serve` command: build the first snapshot, start the listeners and
//! the jobs beside the query path (health checker, file watcher, HTTP,
//! fleet link),
//! wait for signals, shut down in order.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::ServerConfig;
use crate::health::{Checker, Registry};
use crate::reload::Reloader;
use crate::server::Running;

/// How many probes may be in flight at once, across all edges.
const PROBE_CONCURRENCY: usize = 256;

/// Why the server could not start (or stopped).
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The files don't make a valid snapshot: one `file:line: reason` per line.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigErrors),
    #[error(transparent)]
    Health(#[from] crate::health::HealthError),
    /// The HTTP listener's settings are unsafe (e.g. no token off loopback).
    #[error("{0}")]
    Http(String),
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("start-up task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
    #[error("{0}")]
    Rum(#[from] crate::rum::RumError),
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> AppError {
    let what = what.into();
    move |source| AppError::Io { what, source }
}

/// What [`preflight`] hands to a start.
pub struct Preflight {
    /// Edge health with the admin overrides and loads of the state file.
    pub registry: Registry,
    /// The admin API's token, when one is set.
    pub token: Option<String>,
}

/// Everything `serve` refuses to start with, short of building the
/// snapshot (which `check` and `serve` share too): an unreadable state file,
/// an admin API off loopback without a token, a query log or dnstap file
/// that cannot be written, an address this host does not have. `serve`
/// runs it first and `geosteer check` runs it too, so both refuse the same
/// things with the same words. Binds nothing and writes nothing.
pub fn preflight(cfg: &ServerConfig) -> Result<Preflight, AppError> {
    let registry = Registry::with_state_file(&cfg.state_file)?;
    let token = match cfg.http {
        Some(addr) => {
            crate::http::resolve_token(addr, cfg.http_token.as_deref()).map_err(AppError::Http)?
        }
        None => None,
    };
    if let Some(q) = &cfg.query_log
        && let Some(p) = &q.path
    {
        writable(p, "query_log.path")?;
    }
    if let Some(d) = &cfg.dnstap
        && let Some(p) = &d.file
    {
        writable(p, "dnstap.file")?;
    }
    for addr in cfg.listen.iter().chain(cfg.http.iter()) {
        local_address(*addr)?;
    }
    Ok(Preflight { registry, token })
}

/// The file can be opened for writing: it is writable, or it does not
/// exist and its directory is. Creates nothing.
fn writable(path: &std::path::Path, key: &str) -> Result<(), AppError> {
    use std::os::unix::ffi::OsStrExt;
    let target = if path.exists() {
        path.to_path_buf()
    } else {
        match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => std::path::PathBuf::from("."),
        }
    };
    let c = std::ffi::CString::new(target.as_os_str().as_bytes()).map_err(|_| AppError::Io {
        what: format!("{key}: {}", path.display()),
        source: std::io::Error::from(std::io::ErrorKind::InvalidInput),
    })?;
    // SAFETY: `c` is a valid NUL-terminated path for the call's duration.
    if unsafe { libc::access(c.as_ptr(), libc::W_OK) } != 0 {
        return Err(AppError::Io {
            what: format!("{key}: {} cannot be written", path.display()),
            source: std::io::Error::last_os_error(),
        });
    }
    Ok(())
}

/// `addr`'s IP belongs to this host (a wildcard does): bound with an
/// ephemeral port and released at once, so a running server on the real
/// port does not get in the way.
fn local_address(addr: SocketAddr) -> Result<(), AppError> {
    if addr.ip().is_unspecified() {
        return Ok(());
    }
    std::net::UdpSocket::bind(SocketAddr::new(addr.ip(), 0))
        .map(drop)
        .map_err(io(format!("{addr}: not an address of this host")))
}

/// A started server with everything around it.
pub struct App {
    pub reloader: Arc<Reloader>,
    pub running: Running,
    pub http_addr: Option<SocketAddr>,
    /// The etcd link, when `fleet:` is configured.
    pub fleet: Option<Arc<crate::fleet::Fleet>>,
    /// Steering from real users, when `rum:` is configured.
    pub rum: Option<Arc<crate::rum::Rum>>,
    /// RUM's aggregates through etcd, with both `rum:` and `fleet:`.
    rum_share: Option<Arc<crate::fleet::RumShare>>,
    http: Option<JoinHandle<std::io::Result<()>>>,
    /// NOTIFY out and secondary zones' refreshes (see [`crate::xfr`]).
    xfr: Vec<JoinHandle<()>>,
    stop: watch::Sender<bool>,
}

impl App {
    /// Starts listeners, the health checker, the file watcher and the HTTP
    /// API. Fails if the files don't make a valid snapshot.
    pub async fn start(cfg: ServerConfig) -> Result<App, AppError> {
        let Preflight { registry, token } = preflight(&cfg)?;
        let prometheus = crate::metrics::install();
        crate::health::ensure_crypto_provider();
        let registry = Arc::new(registry);
        let checker = Checker::start_from(registry.clone(), PROBE_CONCURRENCY, cfg.probe_source);
        let reloader = {
            let cfg = cfg.clone();
            tokio::task::spawn_blocking(move || Reloader::new(cfg, registry, Some(checker)))
                .await??
        };
        let snap = reloader.shared().load();
        tracing::info!(
            zones = snap.zones.len(),
            geodb = snap.geodb.is_some(),
            generation = snap.generation,
            "snapshot built"
        );
        drop(snap);
        // RUM before the listeners: its learned tables attach to each
        // snapshot before it serves, the first one included.
        let rum = match &cfg.rum {
            Some(r) => {
                let rum = crate::rum::Rum::start(r.clone(), reloader.shared().clone()).await?;
                let hook = rum.clone();
                reloader.set_attach(Some(Arc::new(move |snap| hook.attach_changed(snap))));
                Some(rum)
            }
            None => None,
        };
        let running = crate::server::start_shared(
            &cfg,
            reloader.shared().clone(),
            rum.as_ref().map(|r| r.probes.clone()),
        )
        .await
        .map_err(io(format!("binding {:?}", cfg.listen)))?;
        let (stop, _) = watch::channel(false);
        let xfr = start_xfr(&cfg, &reloader, &running, &stop);
        let listener = match cfg.http {
            Some(addr) => {
                let l = tokio::net::TcpListener::bind(addr)
                    .await
                    .map_err(io(format!("binding http {addr}")))?;
                let bound = l.local_addr().map_err(io("http listener"))?;
                Some((l, bound))
            }
            None => None,
        };
        // Beside the query path: started, never awaited.
        let fleet = cfg.fleet.clone().map(|f| {
            crate::fleet::Fleet::start(
                f,
                reloader.registry.clone(),
                reloader.shared().clone(),
                listener.as_ref().map(|(_, a)| *a),
            )
        });
        let rum_share = cfg
            .fleet
            .clone()
            .zip(rum.clone())
            .map(|(f, r)| crate::fleet::RumShare::start(f, r));
        let (http_addr, http) = match listener {
            Some((listener, bound)) => {
                let api = crate::http::Api {
                    reloader: reloader.clone(),
                    prometheus,
                    started: Instant::now(),
                    token,
                    rates: Default::default(),
                    fleet: fleet.clone(),
                    rum: rum.clone(),
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
            rum,
            rum_share,
            fleet,
            reloader,
            running,
            http_addr,
            http,
            xfr,
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
        if let Some(f) = &self.fleet {
            f.stop().await;
        }
        if let Some(s) = &self.rum_share {
            s.stop();
        }
        self.running.shutdown().await;
        if let Some(h) = self.http {
            let _ = h.await;
        }
        if let Some(r) = &self.rum {
            self.reloader.set_attach(None);
            r.stop().await;
        }
        for j in self.xfr {
            let _ = j.await;
        }
    }
}

/// Starts the jobs beside the query path that transfers need: NOTIFY out
/// (and a signed zone's serial moving each signing period), and one
/// refresh task per secondary zone. They stop with `stop`.
fn start_xfr(
    cfg: &ServerConfig,
    reloader: &Arc<Reloader>,
    running: &Running,
    stop: &watch::Sender<bool>,
) -> Vec<JoinHandle<()>> {
    let reload: crate::xfr::notify::Reload = {
        let r = Arc::downgrade(reloader);
        Arc::new(move |why| {
            if let Some(r) = r.upgrade() {
                let _ = r.reload(why);
            }
        })
    };
    let xcfg = Arc::new(cfg.xfr.clone());
    let mut jobs = Vec::new();
    if xcfg.serves_transfers() {
        jobs.push(tokio::spawn(crate::xfr::notify::run(
            xcfg.clone(),
            reloader.shared().clone(),
            reload.clone(),
            stop.subscribe(),
        )));
    }
    for zone in &xcfg.secondaries {
        let Some(wake) = running.estate.waker(&zone.apex) else {
            continue;
        };
        tracing::info!(zone = %zone.zone, primaries = ?zone.primaries, "secondary zone");
        jobs.push(tokio::spawn(crate::xfr::secondary::run(
            zone.clone(),
            cfg.zones.clone(),
            xcfg.state_file.clone(),
            wake,
            reload.clone(),
            stop.subscribe(),
        )));
    }
    jobs
}

/// Serves until SIGINT or SIGTERM; SIGHUP reloads.
pub async fn serve(cfg: ServerConfig) -> Result<(), AppError> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).map_err(io("SIGTERM handler"))?;
    let mut hup = signal(SignalKind::hangup()).map_err(io("SIGHUP handler"))?;
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
