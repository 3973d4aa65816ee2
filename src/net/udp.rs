//! UDP transport: one OS thread per `SO_REUSEPORT` socket, batched `recvmmsg`/`sendmmsg`.
//!
//! # How a worker waits
//!
//! Each worker blocks in `recvmmsg(MSG_WAITFORONE)`: the call sleeps until
//! one datagram arrives, then takes whatever else is queued, up to
//! [`BATCH`], without waiting for more. It answers the batch inline and
//! sends it with one `sendmmsg`: two syscalls per batch. To stop, the
//! server sets the stop flag and shuts the sockets' receive side
//! (`shutdown(SHUT_RD)`), which wakes a blocked `recvmmsg` at once.
//!
//! Workers used to sleep in `poll(2)` on their socket and an eventfd
//! and then read with `MSG_DONTWAIT` (Knot's model): three syscalls per
//! batch. With dnsperf's 8 clients sending back to back the batches were
//! big enough that it made no difference. But paced traffic at 100k qps
//! (`bench/loadgen`) arrives about two datagrams per wake-up, and there
//! `perf stat -e 'syscalls:sys_enter_*'` counted 206k `ppoll`, 206k
//! `recvmmsg` and 206k `sendmmsg` for 450k queries, against gdnsd's 209k
//! `recvmmsg` and 209k `sendmmsg` (it blocks in `recvmmsg`). The extra call
//! was most of the 0.2–0.3 µs per query by which those rows trailed gdnsd.
//!
//! # Buffers
//!
//! Everything is allocated once per worker: [`BATCH`] receive slots of
//! [`RX_SLOT`] bytes, one transmit area, the `mmsghdr`/`iovec` arrays and the
//! peer addresses. The [`Handler`] contract promises `out` of at least
//! [`MAX_MESSAGE`] bytes; rather than a 64 KiB buffer per slot (2 MiB per
//! worker) or a scratch buffer plus a copy, the transmit area is
//! `(BATCH - 1) * TX_SLOT + MAX_MESSAGE` bytes and slot `i` is handed the
//! window starting at `i * TX_SLOT`. Slots are answered in order, so a
//! window only ever overlaps slots that have not been written yet. An
//! answer longer than [`TX_SLOT`] (it would be overwritten by the next slot)
//! is sent on its own at once; UDP answers are capped by the client's EDNS
//! size, so that path is cold.

use std::io;
use std::mem::{self, MaybeUninit};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::{AsRawFd, RawFd};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;

use metrics::Counter;
use socket2::{Domain, Protocol, Socket, Type};

use super::handler::{Handler, MAX_MESSAGE, Transport};
use super::proxy::Proxies;

/// Datagrams read per `recvmmsg` call. Knot uses 10; 32 amortises the
/// syscalls better under load and costs 128 KiB of receive buffers.
pub const BATCH: usize = 32;

/// Largest query accepted over UDP; bigger datagrams are dropped (counted as
/// `truncated`). A DNS query over UDP is rarely above a few hundred bytes.
pub const RX_SLOT: usize = 4096;

/// Per-slot answer room that can be batched; longer answers are sent alone.
pub const TX_SLOT: usize = 4096;

/// Requested socket buffer size, so bursts queue in the kernel instead of
/// being dropped. The kernel caps it at `net.core.rmem_max`/`wmem_max`.
const SOCKET_BUFFER: usize = 4 << 20;

/// Control-message room per slot for `IP_PKTINFO` / `IPV6_PKTINFO`.
const CMSG_ROOM: usize = 64;

/// Bound, not yet running, UDP sockets (one per worker).
pub struct UdpServer {
    sockets: Vec<Socket>,
    local_addr: SocketAddr,
    /// Bound to a wildcard address: answers must leave from the address the
    /// query was sent to, so workers read and echo the packet info.
    pktinfo: bool,
    /// Senders whose PROXY v2 header names the client.
    proxies: Proxies,
}

impl UdpServer {
    /// Binds `workers` sockets to `addr` with `SO_REUSEPORT` (`workers == 0`
    /// means one per available core). With port 0 the first socket picks
    /// the port and the others join it. IPv6 sockets are `IPV6_V6ONLY`, so
    /// an IPv4 and an IPv6 server can share a port number.
    pub fn bind(addr: SocketAddr, workers: usize) -> io::Result<UdpServer> {
        let workers = if workers == 0 {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        } else {
            workers
        };
        let pktinfo = addr.ip().is_unspecified();
        let first = bind_one(addr, pktinfo)?;
        let local_addr = first
            .local_addr()?
            .as_socket()
            .ok_or_else(|| io::Error::other("bound socket has no IP address"))?;
        let mut sockets = Vec::with_capacity(workers);
        sockets.push(first);
        for _ in 1..workers {
            sockets.push(bind_one(local_addr, pktinfo)?);
        }
        Ok(UdpServer {
            sockets,
            local_addr,
            pktinfo,
            proxies: Proxies::default(),
        })
    }

    /// The bound address, with the real port when bound to port 0.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Number of worker sockets (and threads once started).
    pub fn workers(&self) -> usize {
        self.sockets.len()
    }

    /// Starts one worker thread per socket. Metric handles are registered
    /// here, with whatever recorder is installed at this point.
    /// Believes PROXY v2 headers from these senders (see [`super::proxy`]).
    pub fn with_proxies(mut self, proxies: Proxies) -> UdpServer {
        self.proxies = proxies;
        self
    }

    pub fn start(self, handler: Arc<dyn Handler>) -> io::Result<UdpRunning> {
        let stop = Arc::new(AtomicBool::new(false));
        let metrics = UdpMetrics::new();
        let mut running = UdpRunning {
            threads: Vec::with_capacity(self.sockets.len()),
            stop: stop.clone(),
            sockets: Vec::with_capacity(self.sockets.len()),
            local_addr: self.local_addr,
        };
        for (i, socket) in self.sockets.into_iter().enumerate() {
            let socket = Arc::new(socket);
            running.sockets.push(socket.clone());
            let worker = Worker {
                socket,
                handler: handler.clone(),
                stop: stop.clone(),
                metrics: metrics.clone(),
                pktinfo: self.pktinfo,
                proxies: self.proxies.clone(),
            };
            // On failure `running` is dropped, which stops the threads
            // already started.
            let thread = std::thread::Builder::new()
                .name(format!("geosteer-udp-{i}"))
                .spawn(move || worker.run())?;
            running.threads.push(thread);
        }
        Ok(running)
    }
}

fn bind_one(addr: SocketAddr, pktinfo: bool) -> io::Result<Socket> {
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    socket.set_reuse_port(true)?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    // Best effort: a smaller buffer only means earlier drops under bursts.
    let _ = socket.set_recv_buffer_size(SOCKET_BUFFER);
    // A worker blocked this long wakes up to tell the handler it is idle.
    socket.set_read_timeout(Some(super::handler::IDLE))?;
    let _ = socket.set_send_buffer_size(SOCKET_BUFFER);
    if pktinfo {
        let (level, name) = if addr.is_ipv6() {
            (libc::IPPROTO_IPV6, libc::IPV6_RECVPKTINFO)
        } else {
            (libc::IPPROTO_IP, libc::IP_PKTINFO)
        };
        setsockopt_one(socket.as_raw_fd(), level, name)?;
    }
    socket.bind(&addr.into())?;
    Ok(socket)
}

fn setsockopt_one(fd: RawFd, level: libc::c_int, name: libc::c_int) -> io::Result<()> {
    let one: libc::c_int = 1;
    // SAFETY: the option value points to a live c_int of the given size.
    let r = unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (&raw const one).cast(),
            mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Running UDP workers. Dropping it also stops and joins them.
pub struct UdpRunning {
    threads: Vec<JoinHandle<()>>,
    stop: Arc<AtomicBool>,
    /// The workers' sockets, kept open here so that a stop never shuts a
    /// descriptor a finished worker closed and someone else reused.
    sockets: Vec<Arc<Socket>>,
    local_addr: SocketAddr,
}

impl UdpRunning {
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stops the workers and waits for them. Each worker sends the batch it
    /// is answering, then exits; an idle worker wakes up at once.
    pub fn shutdown(self) {
        drop(self);
    }

    fn stop_and_join(&mut self) {
        self.stop.store(true, Ordering::Release);
        // Shutting the receive side wakes a worker blocked in recvmmsg, and
        // makes every later one return at once. On an unconnected UDP socket
        // Linux does it and then reports ENOTCONN, so the result says nothing.
        for socket in &self.sockets {
            let _ = socket.shutdown(std::net::Shutdown::Read);
        }
        for thread in self.threads.drain(..) {
            if thread.join().is_err() {
                tracing::error!("udp: a worker thread panicked");
            }
        }
    }
}

impl Drop for UdpRunning {
    fn drop(&mut self) {
        self.stop_and_join();
    }
}

/// Counter handles, registered once at start-up.
#[derive(Clone)]
struct UdpMetrics {
    received: Counter,
    batches: Counter,
    answered: Counter,
    declined: Counter,
    truncated: Counter,
    bad_answer: Counter,
    bad_address: Counter,
    send_errors: Counter,
    recv_errors: Counter,
}

impl UdpMetrics {
    fn new() -> Self {
        UdpMetrics {
            received: metrics::counter!("geosteer_udp_received_total"),
            // received / batches = average datagrams per recvmmsg.
            batches: metrics::counter!("geosteer_udp_batches_total"),
            answered: metrics::counter!("geosteer_udp_answered_total"),
            declined: metrics::counter!("geosteer_udp_dropped_total", "reason" => "declined"),
            truncated: metrics::counter!("geosteer_udp_dropped_total", "reason" => "truncated"),
            bad_answer: metrics::counter!("geosteer_udp_dropped_total", "reason" => "handler_error"),
            bad_address: metrics::counter!("geosteer_udp_dropped_total", "reason" => "bad_address"),
            send_errors: metrics::counter!("geosteer_udp_send_errors_total"),
            recv_errors: metrics::counter!("geosteer_udp_recv_errors_total"),
        }
    }
}

struct Worker {
    socket: Arc<Socket>,
    handler: Arc<dyn Handler>,
    stop: Arc<AtomicBool>,
    metrics: UdpMetrics,
    pktinfo: bool,
    proxies: Proxies,
}

/// A control-message buffer aligned for `cmsghdr`.
#[derive(Clone, Copy)]
#[repr(C, align(8))]
struct Cmsg([u8; CMSG_ROOM]);

/// The per-worker buffers and syscall arrays. Boxed and never moved after
/// [`Batch::new`], because the headers hold pointers into it.
struct Batch {
    rx: Box<[u8]>,
    tx: Box<[u8]>,
    names: Box<[libc::sockaddr_storage]>,
    cmsgs: Box<[Cmsg]>,
    rx_iov: Box<[libc::iovec]>,
    tx_iov: Box<[libc::iovec]>,
    rx_msgs: Box<[libc::mmsghdr]>,
    tx_msgs: Box<[libc::mmsghdr]>,
}

impl Batch {
    fn new() -> Batch {
        // SAFETY: all-zero is a valid sockaddr_storage/iovec/mmsghdr (null
        // pointers, zero lengths); every pointer is set below before use.
        let zeroed = || unsafe { MaybeUninit::<libc::mmsghdr>::zeroed().assume_init() };
        let zero_iov = libc::iovec {
            iov_base: std::ptr::null_mut(),
            iov_len: 0,
        };
        let mut b = Batch {
            rx: vec![0u8; BATCH * RX_SLOT].into_boxed_slice(),
            tx: vec![0u8; (BATCH - 1) * TX_SLOT + MAX_MESSAGE].into_boxed_slice(),
            // SAFETY: as above.
            names: vec![unsafe { mem::zeroed::<libc::sockaddr_storage>() }; BATCH]
                .into_boxed_slice(),
            cmsgs: vec![Cmsg([0; CMSG_ROOM]); BATCH].into_boxed_slice(),
            rx_iov: vec![zero_iov; BATCH].into_boxed_slice(),
            tx_iov: vec![zero_iov; BATCH].into_boxed_slice(),
            rx_msgs: (0..BATCH).map(|_| zeroed()).collect(),
            tx_msgs: (0..BATCH).map(|_| zeroed()).collect(),
        };
        let rx = b.rx.as_mut_ptr();
        for i in 0..BATCH {
            // SAFETY: i * RX_SLOT + RX_SLOT <= rx.len().
            b.rx_iov[i].iov_base = unsafe { rx.add(i * RX_SLOT) }.cast();
            b.rx_iov[i].iov_len = RX_SLOT;
            let h = &mut b.rx_msgs[i].msg_hdr;
            h.msg_iov = &raw mut b.rx_iov[i];
            h.msg_iovlen = 1;
            h.msg_name = (&raw mut b.names[i]).cast();
        }
        b
    }

    /// Resets the fields `recvmmsg` overwrote in the first `n` headers
    /// (the kernel writes only the headers of the datagrams it returned).
    fn arm_rx(&mut self, n: usize, pktinfo: bool) {
        for i in 0..n {
            let h = &mut self.rx_msgs[i].msg_hdr;
            h.msg_namelen = mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            if pktinfo {
                h.msg_control = (&raw mut self.cmsgs[i]).cast();
                h.msg_controllen = CMSG_ROOM as _;
            }
            h.msg_flags = 0;
        }
    }
}

impl Worker {
    fn run(self) {
        let mut batch = Box::new(Batch::new());
        let fd = self.socket.as_raw_fd();
        // Headers the last `recvmmsg` wrote into: only those are re-armed,
        // not all BATCH of them (at light load a batch is one datagram, and
        // re-arming 32 headers per query cost more than the rest of the loop).
        let mut dirty = BATCH;
        loop {
            if self.stop.load(Ordering::Acquire) {
                return;
            }
            batch.arm_rx(dirty, self.pktinfo);
            // SAFETY: rx_msgs holds BATCH headers whose pointers refer to
            // buffers owned by `batch`, which outlives the call.
            let n = unsafe {
                sys::recvmmsg(fd, batch.rx_msgs.as_mut_ptr(), BATCH, libc::MSG_WAITFORONE)
            };
            if n < 0 {
                // Whatever the kernel did to the headers, re-arm them all.
                dirty = BATCH;
                let e = io::Error::last_os_error();
                match e.kind() {
                    io::ErrorKind::WouldBlock => self.handler.idle(),
                    io::ErrorKind::Interrupted => {}
                    _ => {
                        // E.g. ENOMEM; don't spin on it.
                        self.metrics.recv_errors.increment(1);
                        tracing::debug!(error = %e, "udp: recvmmsg failed");
                        std::thread::sleep(std::time::Duration::from_millis(1));
                    }
                }
                continue;
            }
            // After a stop the shut receive side returns empty reads: what
            // was received with them is not answered, as a stop while
            // asleep would not have read it.
            if self.stop.load(Ordering::Acquire) {
                return;
            }
            let n = n as usize;
            dirty = n;
            self.metrics.received.increment(n as u64);
            self.metrics.batches.increment(1);
            self.answer(&mut batch, n);
        }
    }

    /// Runs the handler on the `n` received datagrams and sends the answers.
    fn answer(&self, b: &mut Batch, n: usize) {
        let fd = self.socket.as_raw_fd();
        let tx = b.tx.as_mut_ptr();
        let tx_len = b.tx.len();
        let mut out_count = 0usize;
        for i in 0..n {
            let (len, flags, namelen, controllen) = {
                let m = &b.rx_msgs[i];
                (
                    m.msg_len as usize,
                    m.msg_hdr.msg_flags,
                    m.msg_hdr.msg_namelen,
                    m.msg_hdr.msg_controllen,
                )
            };
            if flags & libc::MSG_TRUNC != 0 {
                self.metrics.truncated.increment(1);
                continue;
            }
            let Some(client) = sockaddr_to_std(&b.names[i], namelen) else {
                self.metrics.bad_address.increment(1);
                continue;
            };
            let query = &b.rx[i * RX_SLOT..i * RX_SLOT + len.min(RX_SLOT)];
            // A PROXY v2 header names the client; the answer still goes
            // back to the sender (the proxy).
            let Some((client, query)) = self.proxies.datagram(client, query) else {
                continue;
            };
            // SAFETY: the window [i * TX_SLOT, i * TX_SLOT + MAX_MESSAGE)
            // lies inside `tx` (its length is (BATCH-1)*TX_SLOT+MAX_MESSAGE),
            // and no other reference into `tx` is alive during the call.
            let out = unsafe {
                std::slice::from_raw_parts_mut(
                    tx.add(i * TX_SLOT),
                    MAX_MESSAGE.min(tx_len - i * TX_SLOT),
                )
            };
            let out_len = out.len();
            let handled = catch_unwind(AssertUnwindSafe(|| {
                self.handler.handle(query, client, Transport::Udp, out)
            }));
            let answer_len = match handled {
                Ok(Some(l)) if l > 0 && l <= out_len => l,
                Ok(None) => {
                    self.metrics.declined.increment(1);
                    continue;
                }
                Ok(Some(_)) | Err(_) => {
                    // A handler bug (bad length or panic): drop this packet,
                    // keep serving the others.
                    self.metrics.bad_answer.increment(1);
                    continue;
                }
            };
            let control = if controllen > 0 {
                // msg_controllen is size_t on glibc but socklen_t on musl.
                #[allow(clippy::unnecessary_cast)]
                prepare_pktinfo_reply(&mut b.cmsgs[i], controllen as usize);
                Some(((&raw mut b.cmsgs[i]).cast::<libc::c_void>(), controllen))
            } else {
                None
            };
            let j = out_count;
            // SAFETY: same in-bounds window start as `out` above.
            b.tx_iov[j].iov_base = unsafe { tx.add(i * TX_SLOT) }.cast();
            b.tx_iov[j].iov_len = answer_len;
            let h = &mut b.tx_msgs[j].msg_hdr;
            h.msg_name = (&raw mut b.names[i]).cast();
            h.msg_namelen = namelen;
            h.msg_iov = &raw mut b.tx_iov[j];
            h.msg_iovlen = 1;
            (h.msg_control, h.msg_controllen) = match control {
                Some((p, l)) => (p, l),
                None => (std::ptr::null_mut(), 0),
            };
            h.msg_flags = 0;
            if answer_len > TX_SLOT {
                // The next slot's answer would overwrite the tail: send now.
                self.send(fd, &mut b.tx_msgs[j..j + 1]);
            } else {
                out_count += 1;
            }
        }
        if out_count > 0 {
            self.send(fd, &mut b.tx_msgs[..out_count]);
        }
    }

    /// Sends every message in `msgs`, skipping (and counting) any the
    /// kernel rejects, e.g. an unroutable client address.
    fn send(&self, fd: RawFd, msgs: &mut [libc::mmsghdr]) {
        let mut sent = 0usize;
        while sent < msgs.len() {
            let rest = &mut msgs[sent..];
            // SAFETY: `rest` headers point into the worker's live Batch.
            let r = unsafe { sys::sendmmsg(fd, rest.as_mut_ptr(), rest.len()) };
            if r < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                // sendmmsg fails only when the first message fails; skip it.
                tracing::debug!(error = %e, "udp: send failed");
                self.metrics.send_errors.increment(1);
                sent += 1;
            } else {
                self.metrics.answered.increment(r as u64);
                sent += (r as usize).max(1);
            }
        }
    }
}

/// The three syscalls of the loop, made directly. glibc's `poll`,
/// `recvmmsg` and `sendmmsg` are thread-cancellation points: each wraps the
/// call in `__pthread_enable_asynccancel`/`__pthread_disable_asynccancel`,
/// about 90 instructions per query at light load under callgrind (as much
/// as parsing the query). Rust never cancels threads, so the wrappers buy
/// nothing here; `libc::syscall` sets `errno` the same way.
mod sys {
    use std::os::fd::RawFd;

    /// `recvmmsg(fd, msgs, n, flags, NULL)`.
    ///
    /// # Safety
    /// As `recvmmsg(2)`: `msgs` points to `n` armed headers whose buffers
    /// stay valid for the call.
    #[inline]
    pub(super) unsafe fn recvmmsg(
        fd: RawFd,
        msgs: *mut libc::mmsghdr,
        n: usize,
        flags: libc::c_int,
    ) -> isize {
        // SAFETY: the caller's contract is recvmmsg(2)'s.
        unsafe {
            libc::syscall(
                libc::SYS_recvmmsg,
                fd,
                msgs,
                n as libc::c_uint,
                flags,
                std::ptr::null_mut::<libc::timespec>(),
            ) as isize
        }
    }

    /// `sendmmsg(fd, msgs, n, 0)`.
    ///
    /// # Safety
    /// As `sendmmsg(2)`: `msgs` points to `n` headers whose buffers stay
    /// valid for the call.
    #[inline]
    pub(super) unsafe fn sendmmsg(fd: RawFd, msgs: *mut libc::mmsghdr, n: usize) -> isize {
        // SAFETY: the caller's contract is sendmmsg(2)'s.
        unsafe { libc::syscall(libc::SYS_sendmmsg, fd, msgs, n as libc::c_uint, 0) as isize }
    }
}

/// Turns the received `IP_PKTINFO`/`IPV6_PKTINFO` into a send-side one: the
/// answer leaves from the address the query was sent to, on whatever
/// interface routing picks (ifindex 0), as Knot does.
fn prepare_pktinfo_reply(cmsg: &mut Cmsg, len: usize) {
    let len = len.min(CMSG_ROOM);
    let hdr = mem::size_of::<libc::cmsghdr>();
    if len < hdr {
        return;
    }
    let base = cmsg.0.as_mut_ptr();
    // SAFETY: `base` is 8-aligned and at least `hdr` bytes are in bounds.
    let c = unsafe { &*(base as *const libc::cmsghdr) };
    // SAFETY: CMSG_DATA is pointer arithmetic within the buffer.
    let data = unsafe { libc::CMSG_DATA(base as *const libc::cmsghdr) };
    if c.cmsg_level == libc::IPPROTO_IP
        && c.cmsg_type == libc::IP_PKTINFO
        && len >= hdr + mem::size_of::<libc::in_pktinfo>()
    {
        // SAFETY: size checked above; read/write unaligned to be safe.
        unsafe {
            let p = data as *mut libc::in_pktinfo;
            let mut info = p.read_unaligned();
            info.ipi_spec_dst = info.ipi_addr;
            info.ipi_ifindex = 0;
            p.write_unaligned(info);
        }
    } else if c.cmsg_level == libc::IPPROTO_IPV6
        && c.cmsg_type == libc::IPV6_PKTINFO
        && len >= hdr + mem::size_of::<libc::in6_pktinfo>()
    {
        // SAFETY: as above.
        unsafe {
            let p = data as *mut libc::in6_pktinfo;
            let mut info = p.read_unaligned();
            info.ipi6_ifindex = 0;
            p.write_unaligned(info);
        }
    }
}

/// Converts a kernel-filled peer address; `None` for unexpected families.
fn sockaddr_to_std(ss: &libc::sockaddr_storage, len: libc::socklen_t) -> Option<SocketAddr> {
    let len = len as usize;
    match ss.ss_family as libc::c_int {
        libc::AF_INET if len >= mem::size_of::<libc::sockaddr_in>() => {
            // SAFETY: family and length say this is a sockaddr_in, and
            // sockaddr_storage is aligned for it.
            let a = unsafe { &*(ss as *const _ as *const libc::sockaddr_in) };
            Some(SocketAddr::V4(SocketAddrV4::new(
                Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr)),
                u16::from_be(a.sin_port),
            )))
        }
        libc::AF_INET6 if len >= mem::size_of::<libc::sockaddr_in6>() => {
            // SAFETY: as above, for sockaddr_in6.
            let a = unsafe { &*(ss as *const _ as *const libc::sockaddr_in6) };
            Some(SocketAddr::V6(SocketAddrV6::new(
                Ipv6Addr::from(a.sin6_addr.s6_addr),
                u16::from_be(a.sin6_port),
                a.sin6_flowinfo,
                a.sin6_scope_id,
            )))
        }
        _ => None,
    }
}
