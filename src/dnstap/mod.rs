//! dnstap: every sampled query and its response as `AUTH_QUERY` and
//! `AUTH_RESPONSE` messages (protobuf, [`proto`]) in Frame Streams
//! ([`fstrm`]), to a file or a Unix socket, for `dnstap-ldns`, dnscollector
//! or any other dnstap reader.
//!
//! Like the query log, the answer path pays one random draw to sample and,
//! for a sampled query, two copies into a bounded channel with `try_send`.
//! A background thread encodes and writes, flushing at least once a second.
//! A full queue, or a socket with no reader, drops messages and counts them
//! (`geosteer_dnstap_dropped_total`); an answer never waits. The socket
//! writer reconnects (and redoes the handshake) when the reader comes back.

pub mod fstrm;
pub mod proto;

use std::io::{self, BufWriter, Write};
use std::net::{IpAddr, SocketAddr};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError, TrySendError};
use std::time::{Duration, Instant, SystemTime};

use metrics::Counter;
use prost::Message as _;

use crate::net::Transport;

/// Messages waiting for the writer; beyond this they are dropped.
const QUEUE: usize = 8192;
/// The writer flushes at least this often.
const FLUSH_EVERY: Duration = Duration::from_millis(500);
/// How often the writer drains the queue: `QUEUE` must hold this long's
/// worth of sampled queries (8192 in 10 ms is 800k queries/s).
const TICK: Duration = Duration::from_millis(10);
/// A socket write may take this long before the reader counts as gone.
const WRITE_TIMEOUT: Duration = Duration::from_secs(1);
/// How long to wait between attempts to reach an absent reader.
const RECONNECT_EVERY: Duration = Duration::from_secs(1);

fn one() -> f64 {
    1.0
}

/// `dnstap:` in `geosteer.yaml`: exactly one of `socket` and `file`.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DnstapConfig {
    /// A Frame Streams reader's Unix socket (bidirectional handshake).
    #[serde(default)]
    pub socket: Option<PathBuf>,
    /// A file, truncated at start-up (unidirectional: START … STOP).
    #[serde(default)]
    pub file: Option<PathBuf>,
    /// Fraction of queries sent, 0..=1 (default 1: every query).
    #[serde(default = "one")]
    pub sample: f64,
    /// The `identity` field; default: the host name.
    #[serde(default)]
    pub identity: Option<String>,
}

impl DnstapConfig {
    /// The `dnstap:` problems `geosteer check` reports.
    pub fn validate(&self) -> Result<(), String> {
        match (&self.socket, &self.file) {
            (Some(_), Some(_)) => return Err("dnstap: give socket or file, not both".into()),
            (None, None) => return Err("dnstap: needs socket or file".into()),
            _ => {}
        }
        if !(0.0..=1.0).contains(&self.sample) {
            return Err(format!("dnstap.sample: {} is not within 0..1", self.sample));
        }
        Ok(())
    }
}

/// A sampled query and its response on their way to the writer.
struct Entry {
    client: SocketAddr,
    transport: Transport,
    query: Vec<u8>,
    response: Option<Vec<u8>>,
    query_time: SystemTime,
    response_time: SystemTime,
}

/// The answer path's side of dnstap.
pub struct Dnstap {
    threshold: u64,
    tx: SyncSender<Entry>,
    dropped: Counter,
}

/// A sampled query's arrival time, from [`Dnstap::sample`].
pub struct Sampled(SystemTime);

impl Dnstap {
    /// Starts the writer thread. `None` when sampling nothing. A file that
    /// can't be created is an error; an absent socket reader is not (the
    /// writer keeps trying).
    pub fn start(cfg: &DnstapConfig) -> io::Result<Option<Dnstap>> {
        if cfg.sample <= 0.0 || cfg.sample.is_nan() {
            return Ok(None);
        }
        let identity = cfg.identity.clone().unwrap_or_else(hostname).into_bytes();
        let sink = match (&cfg.file, &cfg.socket) {
            (Some(path), _) => Sink::File(BufWriter::new(std::fs::File::create(path)?)),
            (None, Some(path)) => Sink::Socket {
                path: path.clone(),
                conn: None,
                next_try: Instant::now(),
            },
            (None, None) => return Err(io::Error::other("dnstap: needs socket or file")),
        };
        let (tx, rx) = std::sync::mpsc::sync_channel(QUEUE);
        let dropped = metrics::counter!("geosteer_dnstap_dropped_total");
        let writer = Writer {
            sink,
            identity,
            written: metrics::counter!("geosteer_dnstap_messages_total"),
            dropped: dropped.clone(),
            pending: 0,
        };
        std::thread::Builder::new()
            .name("geosteer-dnstap".into())
            .spawn(move || writer.run(rx))?;
        let threshold = if cfg.sample >= 1.0 {
            u64::MAX
        } else {
            (cfg.sample * u64::MAX as f64) as u64
        };
        Ok(Some(Dnstap {
            threshold,
            tx,
            dropped,
        }))
    }

    /// Decides whether to send this query; call before answering, so the
    /// query time is the arrival time.
    #[inline]
    pub fn sample(&self) -> Option<Sampled> {
        (self.threshold == u64::MAX || crate::querylog::draw() < self.threshold)
            .then(|| Sampled(SystemTime::now()))
    }

    /// Queues the query and its response (`None` when none was sent);
    /// drops both, counted, when the writer is behind.
    pub fn record(
        &self,
        started: Sampled,
        query: &[u8],
        response: Option<&[u8]>,
        client: SocketAddr,
        transport: Transport,
    ) {
        let entry = Entry {
            client,
            transport,
            query: query.to_vec(),
            response: response.map(<[u8]>::to_vec),
            query_time: started.0,
            response_time: SystemTime::now(),
        };
        let n = 1 + u64::from(response.is_some());
        match self.tx.try_send(entry) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                self.dropped.increment(n)
            }
        }
    }
}

fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname NUL-terminates
    // within it on success (or truncates, which we cut at the first NUL).
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return "geosteer".into();
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

enum Sink {
    File(BufWriter<std::fs::File>),
    Socket {
        path: PathBuf,
        conn: Option<BufWriter<UnixStream>>,
        next_try: Instant,
    },
}

/// The background thread's state.
struct Writer {
    sink: Sink,
    identity: Vec<u8>,
    written: Counter,
    dropped: Counter,
    /// Messages in the write buffer since the last successful flush: they
    /// count as written once flushed, as dropped if the flush fails.
    pending: u64,
}

/// READY → ACCEPT → START on a fresh connection.
fn handshake(path: &std::path::Path) -> io::Result<BufWriter<UnixStream>> {
    let mut s = UnixStream::connect(path)?;
    s.set_write_timeout(Some(WRITE_TIMEOUT))?;
    s.set_read_timeout(Some(WRITE_TIMEOUT))?;
    fstrm::write_control(&mut s, fstrm::Control::Ready)?;
    match fstrm::read_frame(&mut s)? {
        fstrm::Frame::Control(fstrm::Control::Accept, types)
            if types.is_empty() || types.iter().any(|t| t == fstrm::CONTENT_TYPE) => {}
        other => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "dnstap reader did not ACCEPT {:?}: {other:?}",
                    "protobuf:dnstap.Dnstap"
                ),
            ));
        }
    }
    let mut w = BufWriter::new(s);
    fstrm::write_control(&mut w, fstrm::Control::Start)?;
    w.flush()?;
    Ok(w)
}

impl Writer {
    fn run(mut self, rx: Receiver<Entry>) {
        if let Sink::File(f) = &mut self.sink
            && let Err(e) = fstrm::write_control(f, fstrm::Control::Start)
        {
            tracing::warn!("dnstap: writing START failed: {e}");
        }
        let mut last_flush = Instant::now();
        let mut dirty = false;
        let mut buf = Vec::with_capacity(1024);
        loop {
            // Wake on a timer and drain, rather than block on the channel:
            // a blocked receiver makes every `try_send` on the answer path
            // wake it (a futex call and a context switch per message, which
            // measured as most of dnstap's cost even at sample 0.1).
            std::thread::sleep(TICK);
            let mut closed = false;
            loop {
                let e = match rx.try_recv() {
                    Ok(e) => e,
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => {
                        closed = true;
                        break;
                    }
                };
                for kind in [
                    proto::MessageType::AuthQuery,
                    proto::MessageType::AuthResponse,
                ] {
                    if kind == proto::MessageType::AuthResponse && e.response.is_none() {
                        continue;
                    }
                    buf.clear();
                    self.encode(&e, kind, &mut buf);
                    if self.write(&buf) {
                        self.pending += 1;
                        dirty = true;
                    } else {
                        self.dropped.increment(1);
                    }
                }
            }
            if closed {
                break;
            }
            if dirty && last_flush.elapsed() >= FLUSH_EVERY {
                self.flush();
                dirty = false;
                last_flush = Instant::now();
            } else if !dirty {
                last_flush = Instant::now();
            }
        }
        self.finish();
    }

    fn encode(&self, e: &Entry, kind: proto::MessageType, out: &mut Vec<u8>) {
        let (family, addr) = match e.client.ip() {
            IpAddr::V4(a) => (proto::SocketFamily::Inet, a.octets().to_vec()),
            IpAddr::V6(a) => (proto::SocketFamily::Inet6, a.octets().to_vec()),
        };
        let protocol = match e.transport {
            Transport::Udp => proto::SocketProtocol::Udp,
            Transport::Tcp => proto::SocketProtocol::Tcp,
        };
        let split = |t: SystemTime| {
            let d = t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
            (Some(d.as_secs()), Some(d.subsec_nanos()))
        };
        let (qs, qn) = split(e.query_time);
        let mut m = proto::Message {
            r#type: kind as i32,
            socket_family: Some(family as i32),
            socket_protocol: Some(protocol as i32),
            query_address: Some(addr),
            query_port: Some(u32::from(e.client.port())),
            query_time_sec: qs,
            query_time_nsec: qn,
            ..Default::default()
        };
        if kind == proto::MessageType::AuthQuery {
            m.query_message = Some(e.query.clone());
        } else {
            let (rs, rn) = split(e.response_time);
            m.response_time_sec = rs;
            m.response_time_nsec = rn;
            m.response_message = e.response.clone();
        }
        let d = proto::Dnstap {
            identity: Some(self.identity.clone()),
            version: Some(concat!("geosteer ", env!("CARGO_PKG_VERSION")).into()),
            extra: None,
            message: Some(m),
            r#type: proto::DnstapType::Message as i32,
        };
        d.encode(out).expect("a Vec grows");
    }

    /// Writes one data frame; false when it was dropped (no reader).
    fn write(&mut self, payload: &[u8]) -> bool {
        match &mut self.sink {
            Sink::File(f) => match fstrm::write_data(f, payload) {
                Ok(()) => true,
                Err(e) => {
                    tracing::warn!("dnstap: file write failed: {e}");
                    false
                }
            },
            Sink::Socket {
                path,
                conn,
                next_try,
            } => {
                if conn.is_none() && Instant::now() >= *next_try {
                    match handshake(path) {
                        Ok(c) => {
                            tracing::info!(socket = %path.display(), "dnstap: reader connected");
                            *conn = Some(c);
                        }
                        Err(e) => {
                            tracing::debug!(socket = %path.display(), "dnstap: no reader: {e}");
                            *next_try = Instant::now() + RECONNECT_EVERY;
                        }
                    }
                }
                let Some(c) = conn else {
                    return false;
                };
                match fstrm::write_data(c, payload) {
                    Ok(()) => true,
                    Err(e) => {
                        // The buffer's earlier messages went down with it.
                        tracing::warn!(socket = %path.display(), "dnstap: reader gone: {e}");
                        *conn = None;
                        *next_try = Instant::now();
                        self.dropped.increment(std::mem::take(&mut self.pending));
                        false
                    }
                }
            }
        }
    }

    fn flush(&mut self) {
        let r = match &mut self.sink {
            Sink::File(f) => f.flush(),
            Sink::Socket { conn: Some(c), .. } => c.flush(),
            Sink::Socket { conn: None, .. } => Ok(()),
        };
        let pending = std::mem::take(&mut self.pending);
        match r {
            Ok(()) => self.written.increment(pending),
            Err(e) => {
                tracing::warn!("dnstap: flush failed: {e}");
                self.dropped.increment(pending);
                if let Sink::Socket { conn, .. } = &mut self.sink {
                    *conn = None;
                }
            }
        }
    }

    /// STOP, and on a socket wait briefly for the reader's FINISH.
    fn finish(mut self) {
        self.flush();
        match &mut self.sink {
            Sink::File(f) => {
                let _ = fstrm::write_control(f, fstrm::Control::Stop);
                let _ = f.flush();
            }
            Sink::Socket { conn: Some(c), .. } => {
                let _ = fstrm::write_control(c, fstrm::Control::Stop);
                if c.flush().is_ok() {
                    let _ = fstrm::read_frame(c.get_mut());
                }
            }
            Sink::Socket { conn: None, .. } => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_needs_one_sink_and_a_sane_sample() {
        let c = |s: &str| {
            serde_saphyr::from_str::<DnstapConfig>(s)
                .unwrap()
                .validate()
        };
        assert!(c("file: /tmp/x.fstrm\n").is_ok());
        assert!(c("socket: /tmp/x.sock\nsample: 0.5\n").is_ok());
        assert!(c("sample: 0.5\n").unwrap_err().contains("socket or file"));
        assert!(c("file: a\nsocket: b\n").unwrap_err().contains("not both"));
        assert!(
            c("file: a\nsample: 2\n")
                .unwrap_err()
                .contains("dnstap.sample")
        );
        assert!(serde_saphyr::from_str::<DnstapConfig>("fille: a\n").is_err());
    }

    #[test]
    fn samples_about_the_configured_fraction() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = DnstapConfig {
            socket: None,
            file: Some(dir.path().join("t.fstrm")),
            sample: 0.25,
            identity: None,
        };
        let tap = Dnstap::start(&cfg).unwrap().unwrap();
        let n = (0..100_000).filter(|_| tap.sample().is_some()).count();
        assert!((22_000..28_000).contains(&n), "{n} of 100000 at 0.25");
        let off = DnstapConfig { sample: 0.0, ..cfg };
        assert!(Dnstap::start(&off).unwrap().is_none());
    }

    #[test]
    fn message_decodes_back() {
        let w = Writer {
            sink: Sink::Socket {
                path: "/nonexistent".into(),
                conn: None,
                next_try: Instant::now(),
            },
            identity: b"ns1".to_vec(),
            written: Counter::noop(),
            dropped: Counter::noop(),
            pending: 0,
        };
        let e = Entry {
            client: "192.0.2.1:5353".parse().unwrap(),
            transport: Transport::Tcp,
            query: vec![1, 2, 3],
            response: Some(vec![4, 5]),
            query_time: SystemTime::UNIX_EPOCH + Duration::new(10, 5),
            response_time: SystemTime::UNIX_EPOCH + Duration::new(11, 6),
        };
        let mut buf = Vec::new();
        w.encode(&e, proto::MessageType::AuthResponse, &mut buf);
        let d = proto::Dnstap::decode(&buf[..]).unwrap();
        let m = d.message.unwrap();
        assert_eq!(m.r#type, proto::MessageType::AuthResponse as i32);
        assert_eq!(m.query_address.as_deref(), Some(&[192, 0, 2, 1][..]));
        assert_eq!(m.query_port, Some(5353));
        assert_eq!(m.socket_protocol, Some(proto::SocketProtocol::Tcp as i32));
        assert_eq!(m.query_message, None, "the query is in AUTH_QUERY");
        assert_eq!(m.response_message.as_deref(), Some(&[4, 5][..]));
        assert_eq!(
            (m.response_time_sec, m.response_time_nsec),
            (Some(11), Some(6))
        );
        assert_eq!(d.identity.as_deref(), Some(&b"ns1"[..]));
    }
}
