//! PROXY protocol v2 (HAProxy's, as dnsdist, HAProxy and load balancers
//! send it) in front of DNS over UDP and TCP: the header's source address
//! becomes the client, for steering, ECS absence, RRL, cookies, logs and
//! dnstap alike, because the transport hands it to the handler as the
//! client.
//!
//! Only senders in `proxy_protocol:` are believed. A header from anyone
//! else, or a malformed one, is dropped (the datagram, or the TCP
//! connection) and counted in `geosteer_proxy_dropped_total`. A packet
//! from a trusted sender without a header is served as it would be
//! without the proxy list (the proxy's own health checks, a resolver
//! talking directly). A `LOCAL` header (the proxy speaking for itself)
//! keeps the sender as the client.
//!
//! The header is parsed by the `ppp` crate (maintained, no allocation on
//! borrowed input, its parser checked against HAProxy's specification);
//! this module only decides who is believed and what counts as the
//! client. UDP datagrams carry the header in front of each message (what
//! dnsdist's `useProxyProtocol` sends); a TCP connection carries it once,
//! before its first message.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use ipnet::IpNet;
use metrics::Counter;
use ppp::v2;

/// The 12 bytes every v2 header starts with.
pub const SIGNATURE: &[u8; 12] = b"\r\n\r\n\0\r\nQUIT\n";

/// Who may send headers, and the counters of what was done with them.
#[derive(Clone, Debug)]
pub struct Proxies {
    trusted: Arc<[IpNet]>,
    metrics: ProxyMetrics,
}

#[derive(Clone, Debug)]
struct ProxyMetrics {
    accepted: Counter,
    untrusted: Counter,
    malformed: Counter,
}

impl Default for Proxies {
    fn default() -> Self {
        Proxies::new(Vec::new())
    }
}

/// What to do with a datagram (or a connection's first bytes).
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// No header: serve as it came.
    Plain,
    /// A header from a trusted sender: this client, the message after
    /// `len` bytes.
    Proxied { client: SocketAddr, len: usize },
    /// Not enough bytes yet to tell (TCP: read more).
    Incomplete,
    /// Drop it: a header from an untrusted sender, or a malformed one.
    Drop,
}

impl Proxies {
    /// Metric handles are registered here, with whatever recorder is
    /// installed at this point.
    pub fn new(trusted: Vec<IpNet>) -> Proxies {
        Proxies {
            trusted: trusted.into(),
            metrics: ProxyMetrics {
                accepted: metrics::counter!("geosteer_proxy_accepted_total"),
                untrusted: metrics::counter!("geosteer_proxy_dropped_total", "reason" => "untrusted"),
                malformed: metrics::counter!("geosteer_proxy_dropped_total", "reason" => "malformed"),
            },
        }
    }

    /// Whether `ip` may send headers.
    pub fn trusts(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.trusted.iter().any(|n| n.contains(&ip))
    }

    /// Looks at the start of `bytes` from `peer`. Cheap when there is no
    /// header: one comparison of the first byte.
    #[inline]
    pub fn check(&self, peer: SocketAddr, bytes: &[u8]) -> Verdict {
        if bytes.first() != Some(&SIGNATURE[0]) {
            return Verdict::Plain;
        }
        self.check_slow(peer, bytes)
    }

    #[cold]
    fn check_slow(&self, peer: SocketAddr, bytes: &[u8]) -> Verdict {
        let n = bytes.len().min(SIGNATURE.len());
        if bytes[..n] != SIGNATURE[..n] {
            return Verdict::Plain;
        }
        if !self.trusts(peer.ip()) {
            if n < SIGNATURE.len() {
                return Verdict::Incomplete;
            }
            self.metrics.untrusted.increment(1);
            return Verdict::Drop;
        }
        match v2::Header::try_from(bytes) {
            Ok(h) => {
                let client = match (h.command, h.addresses) {
                    (v2::Command::Local, _) => peer,
                    (_, v2::Addresses::IPv4(a)) => (a.source_address, a.source_port).into(),
                    (_, v2::Addresses::IPv6(a)) => (a.source_address, a.source_port).into(),
                    // PROXY over Unix sockets or with no address: nobody
                    // to steer for.
                    _ => {
                        self.metrics.malformed.increment(1);
                        return Verdict::Drop;
                    }
                };
                self.metrics.accepted.increment(1);
                Verdict::Proxied {
                    client,
                    len: h.len(),
                }
            }
            Err(v2::ParseError::Incomplete(_) | v2::ParseError::Partial(..)) => Verdict::Incomplete,
            Err(_) => {
                self.metrics.malformed.increment(1);
                Verdict::Drop
            }
        }
    }

    /// A datagram: its message and client, or `None` to drop it (an
    /// incomplete header is malformed: a datagram is all there is).
    #[inline]
    pub fn datagram<'a>(
        &self,
        peer: SocketAddr,
        packet: &'a [u8],
    ) -> Option<(SocketAddr, &'a [u8])> {
        match self.check(peer, packet) {
            Verdict::Plain => Some((peer, packet)),
            Verdict::Proxied { client, len } => Some((client, &packet[len..])),
            Verdict::Incomplete => {
                if self.trusts(peer.ip()) {
                    self.metrics.malformed.increment(1);
                } else {
                    self.metrics.untrusted.increment(1);
                }
                None
            }
            Verdict::Drop => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(src: &str, dst: &str, proto: v2::Protocol) -> Vec<u8> {
        let s: SocketAddr = src.parse().unwrap();
        let d: SocketAddr = dst.parse().unwrap();
        v2::Builder::with_addresses(v2::Version::Two | v2::Command::Proxy, proto, (s, d))
            .build()
            .unwrap()
    }

    fn proxies() -> Proxies {
        Proxies::new(vec![
            "127.0.0.1/32".parse().unwrap(),
            "2001:db8::/32".parse().unwrap(),
        ])
    }

    #[test]
    fn a_trusted_header_names_the_client() {
        let p = proxies();
        let peer: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        let mut pkt = header("198.51.100.7:4242", "127.0.0.1:53", v2::Protocol::Datagram);
        let hl = pkt.len();
        pkt.extend_from_slice(b"\x12\x34dns");
        let (client, msg) = p.datagram(peer, &pkt).unwrap();
        assert_eq!(client, "198.51.100.7:4242".parse::<SocketAddr>().unwrap());
        assert_eq!(msg, b"\x12\x34dns");
        assert_eq!(p.check(peer, &pkt), Verdict::Proxied { client, len: hl });
        let v6 = header("[2001:db8::7]:53", "[2001:db8::1]:53", v2::Protocol::Stream);
        assert!(matches!(
            p.check("[2001:db8::2]:9".parse().unwrap(), &v6),
            Verdict::Proxied { .. }
        ));
    }

    #[test]
    fn untrusted_malformed_and_plain() {
        let p = proxies();
        let stranger: SocketAddr = "192.0.2.1:5000".parse().unwrap();
        let peer: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        let pkt = header("198.51.100.7:4242", "127.0.0.1:53", v2::Protocol::Datagram);
        assert_eq!(p.datagram(stranger, &pkt), None);
        // Cut short, or a bad version.
        assert_eq!(p.datagram(peer, &pkt[..20]), None);
        let mut bad = pkt.clone();
        bad[12] = 0x31;
        assert_eq!(p.datagram(peer, &bad), None);
        // No header: as it came, trusted or not.
        let dns = b"\x00\x01\x00\x00\x00\x01";
        assert_eq!(p.datagram(peer, dns), Some((peer, &dns[..])));
        assert_eq!(p.datagram(stranger, dns), Some((stranger, &dns[..])));
        // A TCP stream's first bytes: wait for more.
        assert_eq!(p.check(peer, &pkt[..5]), Verdict::Incomplete);
        assert_eq!(p.check(peer, b"\r\n\r\nX"), Verdict::Plain);
    }

    #[test]
    fn random_bytes_never_panic() {
        let p = proxies();
        let peer: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let base = header("198.51.100.7:4242", "127.0.0.1:53", v2::Protocol::Datagram);
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let mut pkt = base.clone();
            let n = (x % pkt.len() as u64) as usize;
            let at = 12 + (x >> 8) as usize % (pkt.len() - 12);
            pkt[at] = (x >> 16) as u8;
            pkt.truncate(n.max(12));
            let _ = p.check(peer, &pkt);
            let _ = p.datagram(peer, &pkt);
        }
    }
}
