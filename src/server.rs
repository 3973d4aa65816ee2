//! Assembles a running server: binds the listeners, connects the
//! transports to the answer core, and shuts everything down in order.

use std::net::SocketAddr;
use std::sync::Arc;

use std::cell::RefCell;

use arc_swap::{ArcSwap, Cache};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::ServerConfig;
use crate::dns;
use crate::dnstap::Dnstap;
use crate::metrics::{self, QueryMetrics};
use crate::net::{Handler, Reply, TcpConfig, Transport, UdpRunning, UdpServer, serve_tcp};
use crate::querylog::QueryLog;
use crate::rrl::{Rrl, RrlConfig};
use crate::snapshot::{Shared, Snapshot};
use crate::xfr::{Deferred, Estate};

/// The bridge from transports to the answer core: loads the current
/// snapshot and answers.
pub struct Responder {
    shared: Shared,
    metrics: QueryMetrics,
    query_log: Option<QueryLog>,
    dnstap: Option<Dnstap>,
    /// UDP response rate limiting, when configured.
    rrl: Option<Rrl>,
    /// Where RUM resolver probes are noted, when RUM is on.
    rum: Option<Arc<crate::rum::ProbeQueue>>,
    /// Transfers, NOTIFY and TSIG: what the answer core defers.
    estate: Option<Arc<Estate>>,
}

impl Responder {
    pub fn new(shared: Shared) -> Responder {
        Responder {
            shared,
            metrics: QueryMetrics::new(),
            query_log: None,
            dnstap: None,
            rrl: None,
            rum: None,
            estate: None,
        }
    }

    /// Notes RUM resolver probes (see [`crate::rum::probe`]).
    pub fn with_rum(mut self, probes: Option<Arc<crate::rum::ProbeQueue>>) -> Responder {
        self.rum = probes;
        self
    }

    /// Answers NOTIFY, zone transfers and TSIG-signed messages.
    pub fn with_estate(mut self, estate: Option<Arc<Estate>>) -> Responder {
        self.estate = estate;
        self
    }

    /// Logs a sample of queries (see [`crate::querylog`]).
    pub fn with_query_log(mut self, log: Option<QueryLog>) -> Responder {
        self.query_log = log;
        self
    }

    /// Sends a sample of queries and responses as dnstap (see [`crate::dnstap`]).
    pub fn with_dnstap(mut self, tap: Option<Dnstap>) -> Responder {
        self.dnstap = tap;
        self
    }

    /// Limits UDP responses per client prefix (see [`crate::rrl`]).
    pub fn with_rrl(mut self, cfg: Option<&RrlConfig>) -> Responder {
        self.rrl = cfg.map(Rrl::new);
        self
    }
}

impl Handler for Responder {
    fn handle(
        &self,
        query: &[u8],
        client: SocketAddr,
        transport: Transport,
        out: &mut [u8],
    ) -> Option<usize> {
        match self.answer(query, client, transport, out) {
            Reply::One(n) => Some(n),
            // A stream never comes over UDP; `handle_tcp` takes TCP's.
            Reply::None | Reply::Stream(_) => None,
        }
    }

    fn handle_tcp(&self, query: &[u8], client: SocketAddr, out: &mut [u8]) -> Reply {
        self.answer(query, client, Transport::Tcp, out)
    }

    fn idle(&self) {
        // Drop this thread's snapshot: a reload may be waiting to free it.
        SNAPSHOT.with(|c| c.borrow_mut().take());
    }
}

impl Responder {
    #[inline(always)]
    fn answer(
        &self,
        query: &[u8],
        client: SocketAddr,
        transport: Transport,
        out: &mut [u8],
    ) -> Reply {
        let sampled = self.query_log.as_ref().and_then(|l| l.sample());
        let tapped = self.dnstap.as_ref().and_then(|t| t.sample());
        let mut deferred = None;
        let len = self.with_snapshot(transport, |snap| {
            let summary = dns::respond_traced(snap, query, client.ip(), transport, out, &mut ());
            if summary.as_ref().is_some_and(|s| s.deferred) {
                // Not a plain query: NOTIFY, a transfer, TSIG.
                let estate = self.estate.as_ref()?;
                return match estate.answer(snap, query, client, transport, out) {
                    Deferred::One(n) => Some(n),
                    Deferred::Drop => None,
                    Deferred::Stream(rx) => {
                        deferred = Some(rx);
                        None
                    }
                };
            }
            self.metrics
                .record(transport, summary.as_ref().map(answered));
            if let (Some(log), Some(t), Some(s)) = (&self.query_log, sampled, &summary) {
                log.record(t, query, client.ip(), transport, s);
            }
            let s = summary?;
            if s.rum_probe
                && let Some(p) = &self.rum
            {
                p.record(query, client.ip());
            }
            match &self.rrl {
                // TCP needs a real handshake, so its source is not forged;
                // nor is that of a valid server cookie (as BIND exempts it).
                Some(rrl) if transport == Transport::Udp && !s.cookie_valid => {
                    rrl.limit(client.ip(), s.rcode, out, s.len)
                }
                _ => Some(s.len),
            }
        });
        if let (Some(tap), Some(t)) = (&self.dnstap, tapped) {
            tap.record(t, query, len.map(|n| &out[..n]), client, transport);
        }
        match (deferred, len) {
            (Some(rx), _) => Reply::Stream(rx),
            (None, Some(n)) => Reply::One(n),
            (None, None) => Reply::None,
        }
    }
}

/// What the query counters read of a response's summary.
#[inline]
fn answered<'a>(s: &'a dns::Summary<'_>) -> metrics::Answered<'a> {
    metrics::Answered {
        qtype: s.qtype,
        rcode: s.rcode,
        truncated: s.truncated,
        ecs: s.ecs,
        steered: s
            .steered
            .as_ref()
            .map(|st| (&st.zone.counters, st.host, st.edges())),
    }
}

/// A per-thread [`Cache`] of the current snapshot. `ArcSwap::load` costs
/// about a hundred instructions (a debt slot claimed and released); the
/// cache is one atomic load and a compare while nothing changed. Keyed by
/// the `ArcSwap` it reads, so threads serving several servers (tests) stay
/// correct. An idle thread would keep the snapshot it last used (and with
/// it a replaced GeoIP DB) until its next query: UDP workers drop it when
/// idle ([`Handler::idle`]), and TCP, whose threads are the runtime's and
/// never idle as such, loads per query (its syscalls cost far more).
type SnapshotCache = Cache<Shared, Arc<Snapshot>>;

thread_local! {
    static SNAPSHOT: RefCell<Option<SnapshotCache>> = const { RefCell::new(None) };
}

impl Responder {
    #[inline(always)]
    fn with_snapshot<R>(&self, transport: Transport, f: impl FnOnce(&Snapshot) -> R) -> R {
        if transport == Transport::Tcp {
            return f(&self.shared.load());
        }
        SNAPSHOT.with(|c| {
            let mut c = c.borrow_mut();
            let cache = match &mut *c {
                Some(cache) if std::ptr::eq(cache.arc_swap(), &*self.shared) => cache,
                slot => slot.insert(Cache::new(self.shared.clone())),
            };
            f(cache.load())
        })
    }
}

/// A server with its listeners bound and running.
pub struct Running {
    pub shared: Shared,
    udp: Vec<UdpRunning>,
    tcp: Vec<JoinHandle<std::io::Result<()>>>,
    /// (UDP, TCP) bound addresses, one pair per `listen` entry.
    pub addrs: Vec<(SocketAddr, SocketAddr)>,
    /// What answers transfers and NOTIFY (secondary zones wait on it).
    pub estate: Arc<Estate>,
    stop: watch::Sender<bool>,
}

impl Running {
    /// The first listener's UDP address.
    pub fn udp_addr(&self) -> SocketAddr {
        self.addrs[0].0
    }
    /// The first listener's TCP address.
    pub fn tcp_addr(&self) -> SocketAddr {
        self.addrs[0].1
    }

    /// Stops accepting, lets in-flight answers finish, then returns.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        for t in self.tcp {
            let _ = t.await;
        }
        let udp = self.udp;
        let _ = tokio::task::spawn_blocking(move || {
            for u in udp {
                u.shutdown();
            }
        })
        .await;
    }
}

/// Binds one address for UDP and TCP on the same port. With port 0 the UDP
/// socket picks the port; if TCP can't have it, try another.
async fn bind_pair(addr: SocketAddr, workers: usize) -> std::io::Result<(UdpServer, TcpListener)> {
    let mut last = None;
    for _ in 0..16 {
        let udp = UdpServer::bind(addr, workers)?;
        match TcpListener::bind(udp.local_addr()).await {
            Ok(tcp) => return Ok((udp, tcp)),
            Err(e) if addr.port() == 0 => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| std::io::Error::other("no free port")))
}

/// Starts serving `snapshot` on every `listen` address of `cfg`.
pub async fn start(cfg: &ServerConfig, snapshot: Snapshot) -> std::io::Result<Running> {
    let shared: Shared = Arc::new(ArcSwap::from_pointee(snapshot));
    start_shared(cfg, shared, None).await
}

/// [`start`] with a snapshot handle the caller keeps (for reloads), and
/// RUM's probe queue when RUM is on.
pub async fn start_shared(
    cfg: &ServerConfig,
    shared: Shared,
    rum: Option<Arc<crate::rum::ProbeQueue>>,
) -> std::io::Result<Running> {
    let query_log = match &cfg.query_log {
        Some(q) => QueryLog::start(q)?,
        None => None,
    };
    let dnstap = match &cfg.dnstap {
        Some(d) => Dnstap::start(d)?,
        None => None,
    };
    let estate = Arc::new(Estate::new(&cfg.xfr));
    let handler: Arc<dyn Handler> = Arc::new(
        Responder::new(shared.clone())
            .with_query_log(query_log)
            .with_dnstap(dnstap)
            .with_rrl(cfg.rrl.as_ref())
            .with_rum(rum)
            .with_estate(Some(estate.clone())),
    );
    let (stop, _) = watch::channel(false);
    let mut running = Running {
        shared,
        udp: Vec::new(),
        tcp: Vec::new(),
        addrs: Vec::new(),
        estate,
        stop,
    };
    let proxies = crate::net::Proxies::new(cfg.proxy_protocol.clone());
    let tcp_cfg = TcpConfig {
        proxies: proxies.clone(),
        idle_timeout: cfg.tcp.idle_timeout,
        max_connections: cfg.tcp.max_connections,
        max_per_client: cfg.tcp.max_per_client,
        ..TcpConfig::default()
    };
    for &addr in &cfg.listen {
        let (udp, tcp) = bind_pair(addr, cfg.workers).await?;
        let tcp_addr = tcp.local_addr()?;
        let udp = udp.with_proxies(proxies.clone()).start(handler.clone())?;
        running.addrs.push((udp.local_addr(), tcp_addr));
        running.udp.push(udp);
        let mut rx = running.stop.subscribe();
        let shutdown = async move {
            let _ = rx.wait_for(|s| *s).await;
        };
        running.tcp.push(tokio::spawn(serve_tcp(
            tcp,
            handler.clone(),
            tcp_cfg.clone(),
            shutdown,
        )));
        tracing::info!(udp = %running.addrs.last().map(|a| a.0).unwrap_or(addr), tcp = %tcp_addr, "listening");
    }
    Ok(running)
}
