//! DNS as a client, for NOTIFY out and the secondary: requests built and
//! TSIG-signed, exchanges over UDP and TCP with timeouts, and the records
//! of an answer read with names uncompressed.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

use super::image::Rr;
use crate::tsig::{Signer, Verifier};
use crate::wire::{CLASS_IN, HEADER};

/// Skips a possibly compressed name; the position after it.
pub(crate) fn skip_name(p: &[u8], mut pos: usize) -> Option<usize> {
    loop {
        let len = *p.get(pos)?;
        match len {
            0 => return Some(pos + 1),
            l if l & 0xC0 == 0xC0 => {
                p.get(pos + 1)?;
                return Some(pos + 2);
            }
            l if l <= 63 => pos += 1 + usize::from(l),
            _ => return None,
        }
    }
}

/// Reads a possibly compressed name, expanded (case kept).
fn read_name(p: &[u8], pos: usize) -> Option<Vec<u8>> {
    // The schema's reader of a one-name RDATA does the pointer checks.
    let end = skip_name(p, pos)?;
    crate::zone::schema::from_wire(crate::wire::TYPE_NS, p, pos, end - pos).ok()
}

/// A request: header with `opcode` and a fresh ID, one question, `answer`
/// records (a NOTIFY's SOA) and `authority` ones (an IXFR's SOA).
pub(crate) fn request(
    opcode: u16,
    qname: &[u8],
    qtype: u16,
    answer: &[Rr],
    authority: &[Rr],
) -> Vec<u8> {
    let id: u16 = rand::random();
    let mut m = Vec::with_capacity(512);
    m.extend_from_slice(&id.to_be_bytes());
    m.extend_from_slice(&((opcode & 0xF) << 11).to_be_bytes());
    m.extend_from_slice(&1u16.to_be_bytes());
    m.extend_from_slice(&(answer.len() as u16).to_be_bytes());
    m.extend_from_slice(&(authority.len() as u16).to_be_bytes());
    m.extend_from_slice(&0u16.to_be_bytes());
    m.extend_from_slice(qname);
    m.extend_from_slice(&qtype.to_be_bytes());
    m.extend_from_slice(&CLASS_IN.to_be_bytes());
    for rr in answer.iter().chain(authority) {
        m.extend_from_slice(&rr.owner);
        m.extend_from_slice(&rr.rtype.to_be_bytes());
        m.extend_from_slice(&CLASS_IN.to_be_bytes());
        m.extend_from_slice(&rr.ttl.to_be_bytes());
        m.extend_from_slice(&(rr.rdata.len() as u16).to_be_bytes());
        m.extend_from_slice(&rr.rdata);
    }
    m
}

/// The rcode of a message (extended bits not needed here).
pub(crate) fn rcode(m: &[u8]) -> u8 {
    m.get(3).map_or(2, |b| b & 0x0F)
}

/// One exchange over UDP: sends `msg` (signed by `signer` if given) and
/// waits up to `timeout` for the answer with its ID, TSIG checked.
pub(crate) async fn udp(
    server: SocketAddr,
    mut msg: Vec<u8>,
    signer: Option<&mut Signer>,
    timeout: Duration,
) -> io::Result<Vec<u8>> {
    let now = crate::clock::unix_now();
    let verifier = signer.map(|s| {
        s.sign_vec(&mut msg, now);
        Verifier::new(s)
    });
    let bind: SocketAddr = if server.is_ipv4() {
        ([0, 0, 0, 0], 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let sock = UdpSocket::bind(bind).await?;
    sock.connect(server).await?;
    sock.send(&msg).await?;
    let mut buf = vec![0u8; 65_535];
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let n = tokio::time::timeout_at(deadline, sock.recv(&mut buf))
            .await
            .map_err(|_| {
                io::Error::new(io::ErrorKind::TimedOut, format!("no answer from {server}"))
            })??;
        let r = &buf[..n];
        if n >= HEADER && r[0..2] == msg[0..2] && r[2] & 0x80 != 0 {
            if let Some(mut v) = verifier {
                v.check(r, crate::clock::unix_now()).map_err(|e| {
                    io::Error::new(io::ErrorKind::InvalidData, format!("{server}: {e}"))
                })?;
            }
            return Ok(r.to_vec());
        }
    }
}

/// A TCP connection to a server, for a transfer (RFC 7766 framing).
pub(crate) struct Tcp {
    stream: TcpStream,
    timeout: Duration,
    server: SocketAddr,
}

impl Tcp {
    pub(crate) async fn connect(server: SocketAddr, timeout: Duration) -> io::Result<Tcp> {
        let stream = tokio::time::timeout(timeout, TcpStream::connect(server))
            .await
            .map_err(|_| {
                io::Error::new(io::ErrorKind::TimedOut, format!("connecting to {server}"))
            })??;
        let _ = stream.set_nodelay(true);
        Ok(Tcp {
            stream,
            timeout,
            server,
        })
    }

    pub(crate) async fn send(&mut self, msg: &[u8]) -> io::Result<()> {
        let mut framed = Vec::with_capacity(msg.len() + 2);
        framed.extend_from_slice(&(msg.len() as u16).to_be_bytes());
        framed.extend_from_slice(msg);
        tokio::time::timeout(self.timeout, self.stream.write_all(&framed))
            .await
            .map_err(|_| {
                io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("writing to {}", self.server),
                )
            })?
    }

    /// The next message, within the timeout.
    pub(crate) async fn recv(&mut self) -> io::Result<Vec<u8>> {
        let t = self.timeout;
        let server = self.server;
        tokio::time::timeout(t, async {
            let mut len = [0u8; 2];
            self.stream.read_exact(&mut len).await?;
            let mut m = vec![0u8; usize::from(u16::from_be_bytes(len))];
            self.stream.read_exact(&mut m).await?;
            Ok(m)
        })
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, format!("waiting for {server}")))?
    }
}

/// The records of a message's answer section (uncompressed), and its rcode.
pub(crate) fn answers(m: &[u8]) -> Result<Vec<Rr>, String> {
    let bad = || "malformed message".to_string();
    if m.len() < HEADER {
        return Err(bad());
    }
    let count = |i: usize| usize::from(u16::from_be_bytes([m[i], m[i + 1]]));
    let mut pos = HEADER;
    for _ in 0..count(4) {
        pos = skip_name(m, pos).ok_or_else(bad)? + 4;
    }
    let mut out = Vec::with_capacity(count(6));
    for _ in 0..count(6) {
        let owner = read_name(m, pos).ok_or_else(bad)?;
        let after = skip_name(m, pos).ok_or_else(bad)?;
        let f = m.get(after..after + 10).ok_or_else(bad)?;
        let rtype = u16::from_be_bytes([f[0], f[1]]);
        let class = u16::from_be_bytes([f[2], f[3]]);
        let ttl = u32::from_be_bytes([f[4], f[5], f[6], f[7]]);
        let len = usize::from(u16::from_be_bytes([f[8], f[9]]));
        if class != CLASS_IN {
            return Err(format!("record of class {class} (only IN is served)"));
        }
        let rdata = crate::zone::schema::from_wire(rtype, m, after + 10, len).map_err(|e| {
            format!(
                "{} {}: {e}",
                crate::wire::name_to_string(&owner),
                crate::zone::schema::type_name(rtype)
            )
        })?;
        out.push(Rr {
            owner: owner.into(),
            rtype,
            ttl,
            rdata,
        });
        pos = after + 10 + len;
    }
    Ok(out)
}
