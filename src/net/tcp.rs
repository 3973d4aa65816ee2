//! DNS over TCP (RFC 7766): pipelined queries, idle timeout, connection caps, graceful shutdown.
//!
//! One tokio task per connection. The handler is synchronous and cheap, so
//! a connection answers inline: it reads what has arrived, answers every
//! complete message in the buffer in order, writes all those answers with
//! one `write`, and reads again. Pipelined queries thus get coalesced
//! answers without a separate writer task, and a client that stops reading
//! stops being read (backpressure).
//!
//! # What a connection waits on
//!
//! Every wake-up of a connection task polls what it waits on, so that is
//! kept to two things that are cheap to poll again: its socket's
//! readiness and one timer. The timer is armed once and moved lazily: a
//! message only records the time it completed, and when the timer fires
//! early it is re-armed for the real deadline, so a busy connection touches
//! the timer wheel once per idle period instead of once per read. Nothing
//! else is polled: to evict a connection, or to close them all at
//! shutdown, the server shuts the socket's read side (`shutdown(SHUT_RD)`),
//! which wakes the task the way a client's FIN would; it answers what it
//! has read and closes. (The alternative, a `Notify` and a `watch` polled
//! beside the read, costs two mutex-guarded waiter registrations per
//! wake-up: about 4% of the server's CPU in the `dnsperf -m tcp` row.)
//! Answers are written with a plain non-blocking `write` first; only when
//! the socket buffer is full does the task wait, under the idle timeout.

use std::cell::RefCell;
use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::{AsRawFd, RawFd};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use metrics::{Counter, Gauge};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::handler::{Handler, MAX_MESSAGE, Reply};
use super::proxy::{Proxies, Verdict};

/// Limits for the TCP listener.
#[derive(Clone, Debug)]
pub struct TcpConfig {
    /// A connection that completes no message for this long is closed,
    /// whether it is silent or trickling bytes (slowloris). Also bounds each
    /// write of answers to a client that does not read.
    pub idle_timeout: Duration,
    /// Open connections at most. At the cap a new connection evicts the
    /// least recently active idle one, or is refused if none is idle.
    pub max_connections: usize,
    /// Open connections per client IP at most; more are refused.
    pub max_per_client: usize,
    /// After shutdown, how long connections get to finish their answers
    /// before they are aborted.
    pub shutdown_grace: Duration,
    /// Senders whose PROXY v2 header names the client (and who are not
    /// held to `max_per_client`: they carry many clients).
    pub proxies: Proxies,
}

impl Default for TcpConfig {
    fn default() -> Self {
        TcpConfig {
            idle_timeout: Duration::from_secs(10),
            max_connections: 1024,
            max_per_client: 64,
            shutdown_grace: Duration::from_secs(2),
            proxies: Proxies::default(),
        }
    }
}

/// Answers are written once this many bytes are pending, so a long
/// pipeline of queries cannot make us buffer megabytes of answers.
const FLUSH_AT: usize = 64 * 1024;

/// Bytes reserved for each read.
const READ_CHUNK: usize = 4096;

/// Buffers grown beyond this (by a large message or answer) are released
/// once empty.
const SHRINK_ABOVE: usize = 16 * 1024;

/// Serves DNS over TCP on `listener` until `shutdown` resolves, then stops
/// accepting, lets connections write the answers to what they have already
/// read, and returns once they are all closed (aborting stragglers after
/// [`TcpConfig::shutdown_grace`]).
///
/// Metric handles are registered when this function is called, not when
/// the future is first polled.
pub fn serve_tcp(
    listener: TcpListener,
    handler: Arc<dyn Handler>,
    cfg: TcpConfig,
    shutdown: impl Future<Output = ()>,
) -> impl Future<Output = io::Result<()>> {
    let metrics = TcpMetrics::new();
    async move {
        let shared = Arc::new(Shared {
            handler,
            cfg,
            metrics,
            epoch: Instant::now(),
            registry: Mutex::new(Registry::default()),
        });
        let mut tasks = JoinSet::new();
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                _ = &mut shutdown => break,
                // Reap finished connections so the JoinSet stays small.
                Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
                accepted = listener.accept() => match accepted {
                    Ok((stream, peer)) => {
                        if let Some(conn) = admit(&shared, peer, stream.as_raw_fd()) {
                            // Built before the task, so that it deregisters
                            // the connection even if the task is dropped
                            // before it first runs.
                            let open = Open {
                                shared: shared.clone(),
                                conn,
                                stream,
                            };
                            tasks.spawn(async move {
                                let mut open = open;
                                serve_conn(&mut open, peer).await;
                            });
                        }
                        // else: `stream` is dropped, i.e. closed at once.
                    }
                    Err(e) => {
                        // EMFILE and friends: back off instead of spinning.
                        tracing::warn!(error = %e, "tcp: accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                },
            }
        }
        drop(listener);
        // Every open connection answers what it has read, then closes.
        {
            let reg = shared.registry();
            for conn in reg.conns.values() {
                conn.shut_read();
            }
        }
        let grace = shared.cfg.shutdown_grace;
        let drained =
            tokio::time::timeout(grace, async { while tasks.join_next().await.is_some() {} }).await;
        if drained.is_err() {
            tracing::warn!(
                left = tasks.len(),
                "tcp: grace period over, aborting connections"
            );
            tasks.shutdown().await;
        }
        Ok(())
    }
}

struct Shared {
    handler: Arc<dyn Handler>,
    cfg: TcpConfig,
    metrics: TcpMetrics,
    /// Origin of the millisecond activity stamps.
    epoch: Instant,
    registry: Mutex<Registry>,
}

impl Shared {
    fn registry(&self) -> MutexGuard<'_, Registry> {
        // Nothing panics while holding the lock; if something did, the
        // bookkeeping is still usable.
        self.registry.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }
}

/// Open connections, for the caps and eviction.
#[derive(Default)]
struct Registry {
    next_id: u64,
    conns: HashMap<u64, Arc<Conn>>,
    per_ip: HashMap<IpAddr, usize>,
}

impl Registry {
    fn remove(&mut self, id: u64) -> Option<Arc<Conn>> {
        let conn = self.conns.remove(&id)?;
        if let Some(n) = self.per_ip.get_mut(&conn.ip) {
            *n -= 1;
            if *n == 0 {
                self.per_ip.remove(&conn.ip);
            }
        }
        Some(conn)
    }
}

/// What the registry knows about one connection.
struct Conn {
    id: u64,
    ip: IpAddr,
    /// The connection's socket. Only used, under the registry lock, to
    /// shut its read side; the socket stays open until [`Open`] has
    /// removed this entry, so the descriptor is never a reused one.
    fd: RawFd,
    /// Waiting for the first byte of a message with nothing to answer.
    idle: AtomicBool,
    /// [`Shared::now_ms`] of the last complete message (or the accept).
    last_active_ms: AtomicU64,
    /// Set by [`Conn::shut_read`]: after the answers in hand, close.
    closing: AtomicBool,
}

impl Conn {
    /// Tells the connection's task to close once it has answered what it
    /// has read: its next read sees end of stream, after any bytes the
    /// kernel already holds, and it reads no further than that.
    fn shut_read(&self) {
        self.closing.store(true, Ordering::Release);
        // SAFETY: plain syscall on a descriptor that is open (see `fd`);
        // an error (e.g. ENOTCONN, the peer already gone) needs no action,
        // the task sees the closed socket either way.
        unsafe { libc::shutdown(self.fd, libc::SHUT_RD) };
    }
}

/// An admitted connection: its socket and its registry entry. Dropping it
/// (however the task ends, including a panic or an abort) removes the
/// entry first and only then closes the socket.
struct Open {
    shared: Arc<Shared>,
    conn: Arc<Conn>,
    stream: TcpStream,
}

impl Drop for Open {
    fn drop(&mut self) {
        self.shared.registry().remove(self.conn.id);
        self.shared.metrics.open.decrement(1.0);
        // `stream` is closed after this, when the fields are dropped.
    }
}

#[derive(Clone)]
struct TcpMetrics {
    accepted: Counter,
    open: Gauge,
    evicted: Counter,
    refused_full: Counter,
    refused_per_client: Counter,
    idle_timeouts: Counter,
    declined: Counter,
}

impl TcpMetrics {
    fn new() -> Self {
        TcpMetrics {
            accepted: metrics::counter!("geosteer_tcp_connections_total"),
            open: metrics::gauge!("geosteer_tcp_connections_open"),
            evicted: metrics::counter!("geosteer_tcp_evicted_total"),
            refused_full: metrics::counter!("geosteer_tcp_refused_total", "reason" => "max_connections"),
            refused_per_client: metrics::counter!("geosteer_tcp_refused_total", "reason" => "max_per_client"),
            idle_timeouts: metrics::counter!("geosteer_tcp_idle_timeouts_total"),
            declined: metrics::counter!("geosteer_tcp_dropped_total", "reason" => "declined"),
        }
    }
}

/// Applies the caps to a new connection from `peer`; `None` means refuse.
fn admit(shared: &Shared, peer: SocketAddr, fd: RawFd) -> Option<Arc<Conn>> {
    let ip = peer.ip().to_canonical();
    let cfg = &shared.cfg;
    let mut reg = shared.registry();
    if reg.per_ip.get(&ip).copied().unwrap_or(0) >= cfg.max_per_client && !cfg.proxies.trusts(ip) {
        shared.metrics.refused_per_client.increment(1);
        return None;
    }
    if reg.conns.len() >= cfg.max_connections {
        let victim = reg
            .conns
            .values()
            .filter(|c| c.idle.load(Ordering::Acquire))
            .min_by_key(|c| c.last_active_ms.load(Ordering::Relaxed))
            .map(|c| c.id);
        match victim.and_then(|id| reg.remove(id)) {
            Some(victim) => {
                // Still under the lock: the victim's socket is open until
                // its task has deregistered, which needs this lock.
                victim.shut_read();
                shared.metrics.evicted.increment(1);
            }
            None => {
                shared.metrics.refused_full.increment(1);
                return None;
            }
        }
    }
    let id = reg.next_id;
    reg.next_id += 1;
    let conn = Arc::new(Conn {
        id,
        ip,
        fd,
        idle: AtomicBool::new(true),
        last_active_ms: AtomicU64::new(shared.now_ms()),
        closing: AtomicBool::new(false),
    });
    reg.conns.insert(id, conn.clone());
    *reg.per_ip.entry(ip).or_insert(0) += 1;
    shared.metrics.accepted.increment(1);
    shared.metrics.open.increment(1.0);
    Some(conn)
}

thread_local! {
    /// The handler's output buffer. The handler runs synchronously, so one
    /// per runtime thread serves every connection on it.
    static SCRATCH: RefCell<Box<[u8]>> = RefCell::new(vec![0u8; MAX_MESSAGE].into_boxed_slice());
}

/// Why [`answer_buffered`] stopped.
enum Parsed {
    /// Consumed this many bytes of the read buffer.
    Consumed(usize),
    /// Consumed this many bytes, then met a zero-length message.
    Close(usize),
    /// Consumed this many bytes, the last of which asked for a stream of
    /// answers (a zone transfer), sent before anything else is read.
    Stream(usize, tokio::sync::mpsc::Receiver<Vec<u8>>),
}

/// Answers the complete messages at the front of `buf` into `out` (each
/// with its length prefix) until `out` holds [`FLUSH_AT`] bytes.
fn answer_buffered(shared: &Shared, client: SocketAddr, buf: &[u8], out: &mut Vec<u8>) -> Parsed {
    let mut pos = 0;
    while out.len() < FLUSH_AT {
        let Some(prefix) = buf.get(pos..pos + 2) else {
            break;
        };
        let len = u16::from_be_bytes([prefix[0], prefix[1]]) as usize;
        if len == 0 {
            return Parsed::Close(pos);
        }
        let Some(query) = buf.get(pos + 2..pos + 2 + len) else {
            break;
        };
        pos += 2 + len;
        let mut stream = None;
        let answered = SCRATCH.with_borrow_mut(|scratch| {
            let handled = catch_unwind(AssertUnwindSafe(|| {
                shared.handler.handle_tcp(query, client, scratch)
            }));
            match handled {
                Ok(Reply::One(n)) if n > 0 && n <= MAX_MESSAGE => {
                    out.extend_from_slice(&(n as u16).to_be_bytes());
                    out.extend_from_slice(&scratch[..n]);
                    true
                }
                Ok(Reply::Stream(rx)) => {
                    stream = Some(rx);
                    true
                }
                _ => false,
            }
        });
        if let Some(rx) = stream {
            return Parsed::Stream(pos, rx);
        }
        if !answered {
            shared.metrics.declined.increment(1);
        }
    }
    Parsed::Consumed(pos)
}

/// True if `buf` starts with a whole message (or a zero-length one).
fn has_message(buf: &[u8]) -> bool {
    match buf {
        [a, b, rest @ ..] => rest.len() >= u16::from_be_bytes([*a, *b]) as usize,
        _ => false,
    }
}

async fn serve_conn(open: &mut Open, peer: SocketAddr) {
    // The client the messages are answered for: the peer, or the source
    // of a PROXY v2 header at the start of the stream.
    let mut client = peer;
    let mut proxy_pending = true;
    let Open {
        shared,
        conn,
        stream,
    } = open;
    let (shared, conn) = (&**shared, &**conn);
    // We coalesce answers ourselves; Nagle would only delay them.
    let _ = stream.set_nodelay(true);
    let idle = shared.cfg.idle_timeout;
    // When the last message completed; the deadline is `idle` after it.
    let mut last_message = Instant::now();
    // Armed once; moved only when it fires before the real deadline.
    let timer = tokio::time::sleep_until(last_message + idle);
    tokio::pin!(timer);
    let mut rbuf: Vec<u8> = Vec::with_capacity(READ_CHUNK);
    let mut out: Vec<u8> = Vec::new();
    loop {
        if proxy_pending && !rbuf.is_empty() {
            match shared.cfg.proxies.check(peer, &rbuf) {
                Verdict::Plain => proxy_pending = false,
                Verdict::Proxied { client: c, len } => {
                    client = c;
                    rbuf.drain(..len);
                    proxy_pending = false;
                }
                Verdict::Incomplete => {}
                Verdict::Drop => return,
            }
        }
        let parsed = if proxy_pending {
            // A header's start: nothing is answered before it is whole.
            Parsed::Consumed(0)
        } else {
            answer_buffered(shared, client, &rbuf, &mut out)
        };
        let (consumed, close, transfer) = match parsed {
            Parsed::Consumed(n) => (n, false, None),
            Parsed::Close(n) => (n, true, None),
            Parsed::Stream(n, rx) => (n, false, Some(rx)),
        };
        if consumed > 0 {
            rbuf.drain(..consumed);
            // Only complete messages count as activity: trickled bytes do
            // not push the deadline back.
            last_message = Instant::now();
            conn.last_active_ms.store(
                last_message.duration_since(shared.epoch).as_millis() as u64,
                Ordering::Relaxed,
            );
        }
        if !out.is_empty() {
            if write_answers(stream, &out, idle).await.is_err() {
                return;
            }
            out.clear();
        }
        if let Some(mut rx) = transfer {
            // A zone transfer: its messages, framed, as they are made.
            let mut framed = Vec::new();
            while let Some(m) = rx.recv().await {
                framed.clear();
                framed.extend_from_slice(&(m.len() as u16).to_be_bytes());
                framed.extend_from_slice(&m);
                if write_answers(stream, &framed, idle).await.is_err() {
                    return;
                }
            }
            last_message = Instant::now();
        }
        if close {
            return;
        }
        if !proxy_pending && has_message(&rbuf) {
            // Stopped at FLUSH_AT with more to answer.
            continue;
        }
        if conn.closing.load(Ordering::Acquire) {
            // A client still sending after our SHUT_RD is not read on.
            return;
        }
        if rbuf.is_empty() && rbuf.capacity() > SHRINK_ABOVE {
            // One large message must not pin 64+ KiB on an idle connection.
            rbuf = Vec::with_capacity(READ_CHUNK);
        }
        if out.capacity() > SHRINK_ABOVE {
            out = Vec::new();
        }
        conn.idle.store(rbuf.is_empty(), Ordering::Release);
        rbuf.reserve(READ_CHUNK);
        tokio::select! {
            biased;
            read = stream.read_buf(&mut rbuf) => match read {
                // End of stream: the client's FIN, or our own shutdown of
                // the read side (eviction, server shutdown).
                Ok(0) | Err(_) => return,
                Ok(_) => conn.idle.store(false, Ordering::Release),
            },
            () = &mut timer => {
                let deadline = last_message + idle;
                if Instant::now() >= deadline {
                    shared.metrics.idle_timeouts.increment(1);
                    return;
                }
                timer.as_mut().reset(deadline);
            }
        }
    }
}

/// Writes `out` whole: at once when the socket buffer has room (the usual
/// case, one `write` and no timer), else waiting for the client to read,
/// for at most `idle`.
async fn write_answers(stream: &mut TcpStream, out: &[u8], idle: Duration) -> io::Result<()> {
    let done = match stream.try_write(out) {
        Ok(n) => n,
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => 0,
        Err(e) => return Err(e),
    };
    if done == out.len() {
        return Ok(());
    }
    match tokio::time::timeout(idle, stream.write_all(&out[done..])).await {
        Ok(r) => r,
        Err(_) => Err(io::ErrorKind::TimedOut.into()),
    }
}
