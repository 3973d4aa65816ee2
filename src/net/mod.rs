//! Transports: UDP worker threads and TCP (RFC 7766). No DNS logic here.
//!
//! A transport owns sockets, buffers and timeouts. For every DNS message it
//! receives it calls [`Handler::handle`] and sends back whatever the handler
//! wrote, so the answer core never sees a socket.

mod handler;
pub mod proxy;
pub mod tcp;
pub mod udp;

pub use handler::{Handler, MAX_MESSAGE, Reply, Transport};
pub use proxy::Proxies;
pub use tcp::{TcpConfig, serve_tcp};
pub use udp::{UdpRunning, UdpServer};
