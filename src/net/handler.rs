//! What a transport hands each message to, and what it tells about it.

use std::net::SocketAddr;

/// Which transport a query arrived on; the answer core needs it for the
/// response size limit (UDP truncates, TCP does not).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Transport {
    Udp,
    Tcp,
}

impl Transport {
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
        }
    }
}

/// The largest DNS message any transport carries (TCP's 16-bit length).
pub const MAX_MESSAGE: usize = 65_535;

/// How long a UDP worker waits for a datagram before it calls
/// [`Handler::idle`] (and then waits again).
pub const IDLE: std::time::Duration = std::time::Duration::from_secs(1);

/// What a transport calls for each received message.
pub trait Handler: Send + Sync + 'static {
    /// Answers `query` from `client` into `out` (at least [`MAX_MESSAGE`]
    /// bytes long) and returns the response length, or `None` to send
    /// nothing (the packet was not worth an answer).
    ///
    /// Transports call this inline on their I/O thread: it must not block.
    /// `out` is scratch space with stale contents, not zeroed. A returned
    /// length of 0 or above `out.len()`, or a panic, is treated as a
    /// handler bug: that message gets no answer and is counted. Over UDP,
    /// answers up to [`super::udp::TX_SLOT`] bytes are batched; longer ones (beyond
    /// any sane EDNS size) cost one extra `sendmsg`.
    fn handle(
        &self,
        query: &[u8],
        client: SocketAddr,
        transport: Transport,
        out: &mut [u8],
    ) -> Option<usize>;

    /// Called on a transport thread that has been idle for [`IDLE`]: let go
    /// of what is kept for the next query. (The answer core keeps the
    /// current snapshot per thread; an idle thread would otherwise hold an
    /// old one, and its GeoIP DB, long after a reload.)
    fn idle(&self) {}

    /// A message over TCP, where the answer may also be a stream of
    /// messages (a zone transfer): the transport writes them in order
    /// before it reads the next query. By default, [`Handler::handle`].
    fn handle_tcp(&self, query: &[u8], client: SocketAddr, out: &mut [u8]) -> Reply {
        match self.handle(query, client, Transport::Tcp, out) {
            Some(n) => Reply::One(n),
            None => Reply::None,
        }
    }
}

/// What [`Handler::handle_tcp`] answers with.
pub enum Reply {
    /// Nothing.
    None,
    /// One message of this length in `out`.
    One(usize),
    /// Messages to send in order until the sender closes (each a whole
    /// DNS message, unframed).
    Stream(tokio::sync::mpsc::Receiver<Vec<u8>>),
}
