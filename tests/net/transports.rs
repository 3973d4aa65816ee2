//! Transport tests over real sockets on loopback: UDP workers and the TCP server.

use crate::support;

use std::collections::HashSet;
use std::io::ErrorKind;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use geosteer::{Handler, TcpConfig, Transport, UdpServer, serve_tcp};
use support::server::TestRecorder;
use support::wait::eventually;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

// ---------------------------------------------------------------- handler

/// Test protocol: byte 3 of the query is a command.
const ECHO: u8 = 0;
/// The handler declines (returns `None`).
const DECLINE: u8 = 1;
/// Answer of the size in bytes 4..6, filled with a position pattern.
const SIZED: u8 = 2;
/// Sleeps 300 ms, then echoes (an answer "in flight" at shutdown).
const SLOW: u8 = 3;
/// The handler panics (a bug in the answer core must not kill a worker).
const PANIC: u8 = 4;

#[derive(Default)]
struct TestHandler {
    calls: AtomicU64,
    threads: Mutex<HashSet<String>>,
}

impl Handler for TestHandler {
    fn handle(
        &self,
        query: &[u8],
        _client: SocketAddr,
        _transport: Transport,
        out: &mut [u8],
    ) -> Option<usize> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        if let Some(name) = std::thread::current().name() {
            self.threads.lock().unwrap().insert(name.to_owned());
        }
        if query.len() < 4 {
            return None;
        }
        let n = match query[3] {
            ECHO => {
                out[..query.len()].copy_from_slice(query);
                query.len()
            }
            DECLINE => return None,
            SIZED => {
                let n = u16::from_be_bytes([query[4], query[5]]) as usize;
                for (i, b) in out[..n].iter_mut().enumerate() {
                    *b = pattern(i);
                }
                out[..4].copy_from_slice(&query[..4]);
                n
            }
            SLOW => {
                std::thread::sleep(Duration::from_millis(300));
                out[..query.len()].copy_from_slice(query);
                query.len()
            }
            PANIC => panic!("test handler asked to panic"),
            _ => return None,
        };
        out[2] |= 0x80; // QR
        Some(n)
    }
}

fn pattern(i: usize) -> u8 {
    (i % 251) as u8
}

fn query(id: u16, cmd: u8) -> Vec<u8> {
    let mut q = vec![0u8; 12];
    q[..2].copy_from_slice(&id.to_be_bytes());
    q[3] = cmd;
    q
}

fn sized_query(id: u16, size: u16) -> Vec<u8> {
    let mut q = query(id, SIZED);
    q[4..6].copy_from_slice(&size.to_be_bytes());
    q
}

/// Checks an answer to [`sized_query`] byte for byte.
fn check_sized(answer: &[u8], id: u16, size: usize) {
    assert_eq!(answer.len(), size, "answer size");
    assert_eq!(&answer[..2], &id.to_be_bytes(), "answer id");
    assert_eq!(answer[2] & 0x80, 0x80, "QR bit");
    for (i, &b) in answer.iter().enumerate().skip(4) {
        assert_eq!(b, pattern(i), "byte {i} of answer {id}");
    }
}

// ---------------------------------------------------------------- UDP

struct UdpFixture {
    running: geosteer::UdpRunning,
    handler: Arc<TestHandler>,
    metrics: Arc<TestRecorder>,
}

fn udp_server(addr: &str, workers: usize) -> UdpFixture {
    let server = UdpServer::bind(addr.parse().unwrap(), workers).expect("bind");
    assert_eq!(server.workers(), workers);
    let handler = Arc::new(TestHandler::default());
    let metrics = Arc::new(TestRecorder::default());
    let h: Arc<dyn Handler> = handler.clone();
    let running = metrics::with_local_recorder(&*metrics, || server.start(h)).expect("start");
    UdpFixture {
        running,
        handler,
        metrics,
    }
}

fn udp_client(server: SocketAddr) -> UdpSocket {
    let bind = if server.is_ipv6() {
        "[::1]:0"
    } else {
        "127.0.0.1:0"
    };
    let s = UdpSocket::bind(bind).unwrap();
    s.connect(server).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    s
}

fn udp_roundtrip(s: &UdpSocket, id: u16) -> Vec<u8> {
    s.send(&query(id, ECHO)).unwrap();
    let mut buf = [0u8; 65_536];
    let n = s.recv(&mut buf).expect("answer");
    buf[..n].to_vec()
}

#[test]
fn udp_many_queries_across_two_workers() {
    let f = udp_server("127.0.0.1:0", 2);
    let addr = f.running.local_addr();
    assert_ne!(addr.port(), 0);
    // Many source ports, so SO_REUSEPORT spreads them over both workers.
    let threads: Vec<_> = (0..16u16)
        .map(|c| {
            std::thread::spawn(move || {
                let s = udp_client(addr);
                for i in 0..50u16 {
                    let id = c * 1000 + i;
                    let a = udp_roundtrip(&s, id);
                    assert_eq!(&a[..2], &id.to_be_bytes());
                    assert_eq!(a[2] & 0x80, 0x80);
                    assert_eq!(a.len(), 12);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(f.handler.calls.load(Ordering::Relaxed), 800);
    let used = f.handler.threads.lock().unwrap().clone();
    assert_eq!(used.len(), 2, "both workers answered: {used:?}");
    assert_eq!(f.metrics.counter("geosteer_udp_received_total"), 800);
    // The worker counts an answer after sendmmsg returns, which can be
    // after the client already read it: give the count a moment.
    let deadline = Instant::now() + Duration::from_secs(2);
    while f.metrics.counter("geosteer_udp_answered_total") < 800 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(f.metrics.counter("geosteer_udp_answered_total"), 800);
}

#[test]
fn udp_declined_query_gets_nothing_and_server_keeps_answering() {
    let f = udp_server("127.0.0.1:0", 1);
    let s = udp_client(f.running.local_addr());
    s.send(&query(7, DECLINE)).unwrap();
    s.send(&[1, 2]).unwrap(); // too short: also declined
    s.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut buf = [0u8; 512];
    let e = s.recv(&mut buf).expect_err("no answer to a declined query");
    assert!(matches!(
        e.kind(),
        ErrorKind::WouldBlock | ErrorKind::TimedOut
    ));
    s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let a = udp_roundtrip(&s, 8);
    assert_eq!(&a[..2], &8u16.to_be_bytes());
    assert_eq!(
        f.metrics
            .counter("geosteer_udp_dropped_total{reason=declined}"),
        2
    );
}

#[test]
fn udp_oversized_query_and_panicking_handler_are_dropped_and_counted() {
    let f = udp_server("127.0.0.1:0", 1);
    let s = udp_client(f.running.local_addr());
    let mut big = query(1, ECHO);
    big.resize(5000, 0); // above the 4096-byte receive slot
    s.send(&big).unwrap();
    s.send(&query(2, PANIC)).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut buf = [0u8; 8192];
    assert!(s.recv(&mut buf).is_err(), "no answer expected");
    s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    assert_eq!(&udp_roundtrip(&s, 3)[..2], &3u16.to_be_bytes());
    assert_eq!(
        f.metrics
            .counter("geosteer_udp_dropped_total{reason=truncated}"),
        1
    );
    assert_eq!(
        f.metrics
            .counter("geosteer_udp_dropped_total{reason=handler_error}"),
        1
    );
}

#[test]
fn udp_bursts_of_2000_queries_all_answered() {
    // 20 back-to-back bursts of 100: each burst fills recvmmsg batches, and
    // stays under the kernel's default socket buffer (rmem_default), so a
    // loaded 2-core machine cannot drop queries before the server sees them
    // (one blast of 2,000 sometimes lost a few dozen in the kernel).
    let f = udp_server("127.0.0.1:0", 2);
    let s = udp_client(f.running.local_addr());
    let sock = socket2::SockRef::from(&s);
    sock.set_recv_buffer_size(4 << 20).unwrap();
    const N: u16 = 2000;
    const BURST: u16 = 100;
    let mut seen = HashSet::new();
    let mut buf = [0u8; 512];
    s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    for start in (0..N).step_by(BURST as usize) {
        for id in start..start + BURST {
            s.send(&query(id, ECHO)).unwrap();
        }
        while seen.len() < (start + BURST) as usize {
            match s.recv(&mut buf) {
                Ok(n) => {
                    assert_eq!(n, 12);
                    seen.insert(u16::from_be_bytes([buf[0], buf[1]]));
                }
                Err(_) => break,
            }
        }
    }
    let received = f.metrics.counter("geosteer_udp_received_total");
    assert_eq!(
        seen.len(),
        N as usize,
        "answers received (server saw {received})"
    );
    // The worker counts a batch after sending it, so the last answers can
    // arrive before their count: wait for it.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while f.metrics.counter("geosteer_udp_answered_total") < N as u64
        && std::time::Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(f.metrics.counter("geosteer_udp_answered_total"), N as u64);
}

#[test]
fn udp_large_answers_mixed_into_a_batch_stay_intact() {
    // Answers above the 4 KiB batch slot are sent on their own; the small
    // answers around them in the same batch must not be corrupted, and the
    // large ones must not be overwritten by the next slot.
    let f = udp_server("127.0.0.1:0", 1);
    let s = udp_client(f.running.local_addr());
    socket2::SockRef::from(&s)
        .set_recv_buffer_size(4 << 20)
        .unwrap();
    let sizes: Vec<u16> = (0..60)
        .map(|i| match i % 4 {
            0 => 9000,
            1 => 40,
            2 => 4096,
            _ => 1500,
        })
        .collect();
    for (id, &size) in sizes.iter().enumerate() {
        s.send(&sized_query(id as u16, size)).unwrap();
    }
    let mut buf = vec![0u8; 65_536];
    for _ in 0..sizes.len() {
        let n = s.recv(&mut buf).expect("answer");
        let id = u16::from_be_bytes([buf[0], buf[1]]);
        check_sized(&buf[..n], id, sizes[id as usize] as usize);
    }
}

#[test]
fn udp_ipv6_loopback() {
    if std::net::UdpSocket::bind("[::1]:0").is_err() {
        eprintln!("no IPv6 loopback here; skipping");
        return;
    }
    let f = udp_server("[::1]:0", 2);
    assert!(f.running.local_addr().is_ipv6());
    let s = udp_client(f.running.local_addr());
    for id in 0..20 {
        assert_eq!(&udp_roundtrip(&s, id)[..2], &id.to_be_bytes());
    }
}

#[test]
fn udp_wildcard_bind_answers_from_the_queried_address() {
    // Bound to 0.0.0.0 the workers use IP_PKTINFO; a connected client only
    // accepts answers whose source is the address it queried.
    let f = udp_server("0.0.0.0:0", 2);
    let port = f.running.local_addr().port();
    let s = udp_client(SocketAddr::from(([127, 0, 0, 1], port)));
    for id in 0..20 {
        assert_eq!(&udp_roundtrip(&s, id)[..2], &id.to_be_bytes());
    }
    if std::net::UdpSocket::bind("[::1]:0").is_ok() {
        // IPV6_V6ONLY: a v6 server can share the port number with the v4 one.
        let f6 = udp_server(&format!("[::]:{port}"), 1);
        let s6 = udp_client(SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, port)));
        for id in 0..20 {
            assert_eq!(&udp_roundtrip(&s6, id)[..2], &id.to_be_bytes());
        }
        assert_eq!(f6.handler.calls.load(Ordering::Relaxed), 20);
    }
    assert_eq!(f.handler.calls.load(Ordering::Relaxed), 20);
}

#[test]
fn udp_shutdown_is_prompt_and_joins() {
    let f = udp_server("127.0.0.1:0", 2);
    let addr = f.running.local_addr();
    let s = udp_client(addr);
    udp_roundtrip(&s, 1);
    // Let the workers go back to sleep in recvmmsg.
    std::thread::sleep(Duration::from_millis(50));
    let t = Instant::now();
    f.running.shutdown();
    let took = t.elapsed();
    assert!(took < Duration::from_millis(200), "shutdown took {took:?}");
    // The sockets are closed: nothing answers any more.
    s.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let _ = s.send(&query(2, ECHO));
    let mut buf = [0u8; 64];
    assert!(s.recv(&mut buf).is_err());
    assert_eq!(f.handler.calls.load(Ordering::Relaxed), 1);
}

// ---------------------------------------------------------------- TCP

struct TcpFixture {
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
    metrics: Arc<TestRecorder>,
}

impl TcpFixture {
    async fn shutdown(mut self) -> Duration {
        let t = Instant::now();
        let _ = self.stop.take().unwrap().send(());
        self.server.await.unwrap().unwrap();
        t.elapsed()
    }
}

async fn tcp_server(cfg: TcpConfig) -> TcpFixture {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let metrics = Arc::new(TestRecorder::default());
    let handler: Arc<dyn Handler> = Arc::new(TestHandler::default());
    let fut = metrics::with_local_recorder(&*metrics, || {
        serve_tcp(listener, handler, cfg, async {
            let _ = rx.await;
        })
    });
    let server = tokio::spawn(fut);
    TcpFixture {
        addr,
        stop: Some(tx),
        server,
        metrics,
    }
}

fn short_idle() -> TcpConfig {
    TcpConfig {
        idle_timeout: Duration::from_millis(300),
        ..TcpConfig::default()
    }
}

fn framed(msg: &[u8]) -> Vec<u8> {
    let mut v = (msg.len() as u16).to_be_bytes().to_vec();
    v.extend_from_slice(msg);
    v
}

async fn read_msg(s: &mut TcpStream) -> Vec<u8> {
    let fut = async {
        let len = s.read_u16().await? as usize;
        let mut buf = vec![0u8; len];
        s.read_exact(&mut buf).await?;
        Ok::<_, std::io::Error>(buf)
    };
    tokio::time::timeout(Duration::from_secs(2), fut)
        .await
        .expect("answer in time")
        .expect("answer")
}

/// Waits for the server to close `s`; returns how long that took.
async fn closed_within(s: &mut TcpStream, within: Duration) -> Duration {
    let t = Instant::now();
    let mut buf = [0u8; 64];
    match tokio::time::timeout(within, s.read(&mut buf)).await {
        Err(_) => panic!("connection still open after {within:?}"),
        Ok(Ok(0)) | Ok(Err(_)) => t.elapsed(),
        Ok(Ok(n)) => panic!("unexpected {n} bytes"),
    }
}

/// Asserts `s` stays open (no EOF, no data) for `d`.
async fn stays_open(s: &mut TcpStream, d: Duration) {
    let mut buf = [0u8; 64];
    if let Ok(r) = tokio::time::timeout(d, s.read(&mut buf)).await {
        panic!("connection not open: {r:?}");
    }
}

async fn tcp_roundtrip(s: &mut TcpStream, id: u16) {
    s.write_all(&framed(&query(id, ECHO))).await.unwrap();
    let a = read_msg(s).await;
    assert_eq!(&a[..2], &id.to_be_bytes());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_pipelined_queries_answered_in_order() {
    let f = tcp_server(TcpConfig::default()).await;
    let mut s = TcpStream::connect(f.addr).await.unwrap();
    let mut all = Vec::new();
    for id in 0..10u16 {
        all.extend(framed(&query(id, ECHO)));
    }
    s.write_all(&all).await.unwrap(); // one write, ten queries
    for id in 0..10u16 {
        let a = read_msg(&mut s).await;
        assert_eq!(&a[..2], &id.to_be_bytes(), "answer order");
        assert_eq!(a[2] & 0x80, 0x80);
    }
    // A declined query is skipped; the next one is still answered.
    let mut two = framed(&query(99, DECLINE));
    two.extend(framed(&query(100, ECHO)));
    s.write_all(&two).await.unwrap();
    assert_eq!(&read_msg(&mut s).await[..2], &100u16.to_be_bytes());
    assert_eq!(f.metrics.counter("geosteer_tcp_connections_total"), 1);
    assert_eq!(f.metrics.gauge("geosteer_tcp_connections_open"), 1.0);
    drop(s);
    f.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_panicking_handler_skips_that_query_only() {
    let f = tcp_server(TcpConfig::default()).await;
    let mut s = TcpStream::connect(f.addr).await.unwrap();
    let mut w = framed(&query(1, PANIC));
    w.extend(framed(&query(2, ECHO)));
    s.write_all(&w).await.unwrap();
    assert_eq!(&read_msg(&mut s).await[..2], &2u16.to_be_bytes());
    f.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_large_answers() {
    let f = tcp_server(TcpConfig::default()).await;
    let mut s = TcpStream::connect(f.addr).await.unwrap();
    for (id, size) in [(1u16, 513u16), (2, 4000), (3, 65_535), (4, 700)] {
        s.write_all(&framed(&sized_query(id, size))).await.unwrap();
        check_sized(&read_msg(&mut s).await, id, size as usize);
    }
    // Pipelined big answers are written back to back, intact.
    let mut all = Vec::new();
    for id in 10..14u16 {
        all.extend(framed(&sized_query(id, 30_000)));
    }
    s.write_all(&all).await.unwrap();
    for id in 10..14u16 {
        check_sized(&read_msg(&mut s).await, id, 30_000);
    }
    f.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_idle_timeout_closes_silent_connection_but_not_active_one() {
    let f = tcp_server(short_idle()).await;
    let mut silent = TcpStream::connect(f.addr).await.unwrap();
    let mut active = TcpStream::connect(f.addr).await.unwrap();
    // Active: a query every 150 ms for 750 ms keeps it open.
    let keep = tokio::spawn(async move {
        for id in 0..5 {
            tcp_roundtrip(&mut active, id).await;
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
        active
    });
    let took = closed_within(&mut silent, Duration::from_secs(2)).await;
    assert!(took >= Duration::from_millis(250), "closed early: {took:?}");
    assert!(took < Duration::from_millis(700), "closed late: {took:?}");
    let mut active = keep.await.unwrap();
    tcp_roundtrip(&mut active, 50).await;
    assert!(f.metrics.counter("geosteer_tcp_idle_timeouts_total") >= 1);
    f.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_half_length_prefix_then_stall_is_closed() {
    let f = tcp_server(short_idle()).await;
    let mut s = TcpStream::connect(f.addr).await.unwrap();
    tcp_roundtrip(&mut s, 1).await;
    s.write_all(&[0]).await.unwrap();
    let took = closed_within(&mut s, Duration::from_secs(2)).await;
    assert!(took < Duration::from_millis(700), "closed late: {took:?}");
    f.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_trickled_half_message_is_closed_at_the_timeout() {
    // Slowloris: bytes keep coming but no message completes.
    let f = tcp_server(short_idle()).await;
    let mut s = TcpStream::connect(f.addr).await.unwrap();
    let t = Instant::now();
    s.write_all(&[0, 40, 1, 2, 3]).await.unwrap();
    let mut closed = false;
    for _ in 0..10 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if s.write_all(&[7]).await.is_err() {
            closed = true;
            break;
        }
        let mut buf = [0u8; 8];
        if let Ok(Ok(0) | Err(_)) =
            tokio::time::timeout(Duration::from_millis(1), s.read(&mut buf)).await
        {
            closed = true;
            break;
        }
    }
    let took = t.elapsed();
    assert!(closed, "trickling connection still open after {took:?}");
    assert!(took >= Duration::from_millis(250), "closed early: {took:?}");
    assert!(took < Duration::from_millis(800), "closed late: {took:?}");
    f.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_connection_cap_evicts_oldest_idle() {
    let cfg = TcpConfig {
        max_connections: 2,
        ..TcpConfig::default()
    };
    let f = tcp_server(cfg).await;
    let mut a = TcpStream::connect(f.addr).await.unwrap();
    tcp_roundtrip(&mut a, 1).await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    let mut b = TcpStream::connect(f.addr).await.unwrap();
    tcp_roundtrip(&mut b, 2).await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    // A is older than B: A goes.
    let mut c = TcpStream::connect(f.addr).await.unwrap();
    tcp_roundtrip(&mut c, 3).await;
    closed_within(&mut a, Duration::from_secs(1)).await;
    tcp_roundtrip(&mut b, 4).await;
    tcp_roundtrip(&mut c, 5).await;
    // B was active again after C: now C is the oldest idle.
    tokio::time::sleep(Duration::from_millis(20)).await;
    tcp_roundtrip(&mut b, 6).await;
    let mut d = TcpStream::connect(f.addr).await.unwrap();
    tcp_roundtrip(&mut d, 7).await;
    closed_within(&mut c, Duration::from_secs(1)).await;
    tcp_roundtrip(&mut b, 8).await;
    assert_eq!(f.metrics.counter("geosteer_tcp_evicted_total"), 2);
    f.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_connection_cap_refuses_when_nobody_is_idle() {
    let cfg = TcpConfig {
        max_connections: 1,
        ..TcpConfig::default()
    };
    let f = tcp_server(cfg).await;
    let mut busy = TcpStream::connect(f.addr).await.unwrap();
    let q = framed(&query(1, ECHO));
    busy.write_all(&q[..5]).await.unwrap(); // mid-message: not idle
    tokio::time::sleep(Duration::from_millis(50)).await;
    let mut refused = TcpStream::connect(f.addr).await.unwrap();
    closed_within(&mut refused, Duration::from_millis(500)).await;
    busy.write_all(&q[5..]).await.unwrap();
    assert_eq!(&read_msg(&mut busy).await[..2], &1u16.to_be_bytes());
    assert_eq!(
        f.metrics
            .counter("geosteer_tcp_refused_total{reason=max_connections}"),
        1
    );
    assert_eq!(f.metrics.counter("geosteer_tcp_evicted_total"), 0);
    f.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_per_client_cap() {
    let cfg = TcpConfig {
        max_per_client: 2,
        ..TcpConfig::default()
    };
    let f = tcp_server(cfg).await;
    let mut a = TcpStream::connect(f.addr).await.unwrap();
    let mut b = TcpStream::connect(f.addr).await.unwrap();
    tcp_roundtrip(&mut a, 1).await;
    tcp_roundtrip(&mut b, 2).await;
    let mut c = TcpStream::connect(f.addr).await.unwrap();
    closed_within(&mut c, Duration::from_millis(500)).await;
    tcp_roundtrip(&mut a, 3).await;
    assert_eq!(
        f.metrics
            .counter("geosteer_tcp_refused_total{reason=max_per_client}"),
        1
    );
    // A slot frees up when a connection closes.
    drop(b);
    let m = f.metrics.clone();
    assert!(eventually(Duration::from_secs(1), || m
        .gauge("geosteer_tcp_connections_open")
        == 1.0));
    let mut d = TcpStream::connect(f.addr).await.unwrap();
    tcp_roundtrip(&mut d, 4).await;
    f.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_zero_length_message_closes_after_earlier_answers() {
    let f = tcp_server(TcpConfig::default()).await;
    let mut s = TcpStream::connect(f.addr).await.unwrap();
    let mut w = framed(&query(1, ECHO));
    w.extend([0, 0]);
    w.extend(framed(&query(2, ECHO))); // after the close: never answered
    s.write_all(&w).await.unwrap();
    assert_eq!(&read_msg(&mut s).await[..2], &1u16.to_be_bytes());
    closed_within(&mut s, Duration::from_millis(500)).await;
    f.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_graceful_shutdown_delivers_in_flight_answer() {
    let f = tcp_server(TcpConfig::default()).await;
    let addr = f.addr;
    let mut slow = TcpStream::connect(addr).await.unwrap();
    let mut idle = TcpStream::connect(addr).await.unwrap();
    tcp_roundtrip(&mut idle, 1).await;
    slow.write_all(&framed(&query(9, SLOW))).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await; // handler is busy
    let stopping = tokio::spawn(f.shutdown());
    // The idle connection is closed promptly...
    let took = closed_within(&mut idle, Duration::from_secs(1)).await;
    assert!(
        took < Duration::from_millis(150),
        "idle close took {took:?}"
    );
    // ...the in-flight answer is still delivered, then the connection closes.
    assert_eq!(&read_msg(&mut slow).await[..2], &9u16.to_be_bytes());
    closed_within(&mut slow, Duration::from_secs(1)).await;
    let took = stopping.await.unwrap();
    assert!(
        took < Duration::from_secs(1),
        "serve_tcp returned after {took:?}"
    );
    // No longer accepting.
    assert!(TcpStream::connect(addr).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_shutdown_closes_a_connection_that_keeps_sending() {
    // A client that never pauses (its queries always queued in the kernel)
    // must not hold the server open until the grace period aborts it: the
    // connection answers what it has read and closes by itself.
    let f = tcp_server(TcpConfig::default()).await;
    let mut s = TcpStream::connect(f.addr).await.unwrap();
    tcp_roundtrip(&mut s, 1).await;
    let (mut rd, mut wr) = s.into_split();
    let writer = tokio::spawn(async move {
        let mut burst = Vec::new();
        for id in 0..20u16 {
            burst.extend(framed(&query(id, ECHO)));
        }
        while wr.write_all(&burst).await.is_ok() {}
    });
    let reader = tokio::spawn(async move {
        let mut got = 0usize;
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            match tokio::time::timeout(Duration::from_secs(5), rd.read(&mut buf)).await {
                Ok(Ok(n)) if n > 0 => got += n,
                _ => return got,
            }
        }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let took = f.shutdown().await;
    // The default grace period is 2 s; an abort would take that long.
    assert!(
        took < Duration::from_millis(1500),
        "serve_tcp returned after {took:?}"
    );
    let got = tokio::time::timeout(Duration::from_secs(5), reader)
        .await
        .expect("the client sees the connection close")
        .unwrap();
    assert!(got > 0, "no answers before the close");
    let _ = tokio::time::timeout(Duration::from_secs(5), writer).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_partial_message_not_closed_before_timeout() {
    let f = tcp_server(short_idle()).await;
    let mut s = TcpStream::connect(f.addr).await.unwrap();
    let q = framed(&query(5, ECHO));
    s.write_all(&q[..1]).await.unwrap();
    stays_open(&mut s, Duration::from_millis(150)).await;
    s.write_all(&q[1..6]).await.unwrap();
    stays_open(&mut s, Duration::from_millis(50)).await;
    s.write_all(&q[6..]).await.unwrap();
    assert_eq!(&read_msg(&mut s).await[..2], &5u16.to_be_bytes());
    f.shutdown().await;
}
