//! DNS on the wire for the tests: queries built with hickory (well-formed)
//! or by hand (anything, malformed included), and blocking UDP and TCP
//! exchanges with a server on loopback.

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::Duration;

use hickory_proto::op::{Edns, Message, Query};
use hickory_proto::rr::{Name, RData, Record, RecordType};

/// How long an exchange waits for its answer.
pub const TIMEOUT: Duration = Duration::from_secs(2);

// ------------------------------------------------------------ queries

static NEXT_ID: AtomicU16 = AtomicU16::new(0x1234);

pub fn next_id() -> u16 {
    NEXT_ID.fetch_add(7919, Ordering::Relaxed)
}

/// A query without EDNS, RD clear.
pub fn query(name: &str, t: RecordType) -> Message {
    let mut m = Message::query();
    m.metadata.id = next_id();
    m.metadata.recursion_desired = false;
    m.add_query(Query::query(Name::from_ascii(name).unwrap(), t));
    m
}

/// The same with EDNS(0) and this UDP payload size.
pub fn query_edns(name: &str, t: RecordType, size: u16) -> Message {
    let mut m = query(name, t);
    let mut e = Edns::new();
    e.set_max_payload(size);
    e.set_version(0);
    m.set_edns(e);
    m
}

/// A query by hand: header + question, `extra` appended, counts as given.
pub fn raw_query(
    id: u16,
    flags: u16,
    counts: [u16; 4],
    name: &str,
    qtype: u16,
    extra: &[u8],
) -> Vec<u8> {
    let mut p = Vec::new();
    p.extend_from_slice(&id.to_be_bytes());
    p.extend_from_slice(&flags.to_be_bytes());
    for c in counts {
        p.extend_from_slice(&c.to_be_bytes());
    }
    p.extend_from_slice(&wire_name(name));
    p.extend_from_slice(&qtype.to_be_bytes());
    p.extend_from_slice(&1u16.to_be_bytes());
    p.extend_from_slice(extra);
    p
}

pub fn wire_name(name: &str) -> Vec<u8> {
    let mut v = Vec::new();
    for l in name
        .trim_end_matches('.')
        .split('.')
        .filter(|l| !l.is_empty())
    {
        v.push(l.len() as u8);
        v.extend_from_slice(l.as_bytes());
    }
    v.push(0);
    v
}

/// An OPT RR by hand: payload size, extended rcode, version, flags, options.
pub fn opt_rr(
    size: u16,
    ext_rcode: u8,
    version: u8,
    flags: u16,
    options: &[(u16, &[u8])],
) -> Vec<u8> {
    let mut rd = Vec::new();
    for (code, data) in options {
        rd.extend_from_slice(&code.to_be_bytes());
        rd.extend_from_slice(&(data.len() as u16).to_be_bytes());
        rd.extend_from_slice(data);
    }
    let mut p = vec![0u8];
    p.extend_from_slice(&41u16.to_be_bytes());
    p.extend_from_slice(&size.to_be_bytes());
    p.push(ext_rcode);
    p.push(version);
    p.extend_from_slice(&flags.to_be_bytes());
    p.extend_from_slice(&(rd.len() as u16).to_be_bytes());
    p.extend_from_slice(&rd);
    p
}

/// A query by hand with EDNS (UDP size 1232) carrying these options
/// (code, data).
pub fn query_with_options(id: u16, name: &str, qtype: u16, opts: &[(u16, &[u8])]) -> Vec<u8> {
    raw_query(
        id,
        0,
        [1, 0, 0, 1],
        name,
        qtype,
        &opt_rr(1232, 0, 0, 0, opts),
    )
}

/// The data of an ECS option (RFC 7871 §6): family, source prefix, scope
/// 0, the address cut to the prefix's bytes.
pub fn ecs_data(addr: IpAddr, prefix: u8) -> Vec<u8> {
    let (family, bytes) = match addr {
        IpAddr::V4(a) => (1u16, a.octets().to_vec()),
        IpAddr::V6(a) => (2u16, a.octets().to_vec()),
    };
    let mut d = family.to_be_bytes().to_vec();
    d.extend_from_slice(&[prefix, 0]);
    d.extend_from_slice(&bytes[..(prefix as usize).div_ceil(8)]);
    d
}

/// A whole ECS option (code 8, length, [`ecs_data`]) with the address bits
/// past the prefix cleared, as RFC 7871 §6 requires of a resolver.
pub fn ecs_option(addr: IpAddr, prefix: u8) -> Vec<u8> {
    let masked = match addr {
        IpAddr::V4(a) => IpAddr::V4(
            (u32::from(a)
                & u32::MAX
                    .checked_shl(32 - u32::from(prefix.min(32)))
                    .unwrap_or(0))
            .into(),
        ),
        IpAddr::V6(a) => IpAddr::V6(
            (u128::from(a)
                & u128::MAX
                    .checked_shl(128 - u32::from(prefix.min(128)))
                    .unwrap_or(0))
            .into(),
        ),
    };
    let data = ecs_data(masked, prefix);
    let mut o = 8u16.to_be_bytes().to_vec();
    o.extend_from_slice(&(data.len() as u16).to_be_bytes());
    o.extend_from_slice(&data);
    o
}

/// A query by hand with RD clear. `edns`: the advertised UDP size; `ecs`:
/// a client subnet option (address, source prefix), which implies EDNS
/// with 1232.
pub fn wire_query(
    id: u16,
    name: &str,
    qtype: u16,
    edns: Option<u16>,
    ecs: Option<(IpAddr, u8)>,
) -> Vec<u8> {
    let Some(size) = edns.or(ecs.map(|_| 1232)) else {
        return raw_query(id, 0, [1, 0, 0, 0], name, qtype, &[]);
    };
    let data = ecs.map(|(addr, prefix)| ecs_data(addr, prefix));
    let opts: Vec<(u16, &[u8])> = data.iter().map(|d| (8, d.as_slice())).collect();
    raw_query(
        id,
        0,
        [1, 0, 0, 1],
        name,
        qtype,
        &opt_rr(size, 0, 0, 0, &opts),
    )
}

// ------------------------------------------------------------ transports

#[derive(Debug, Clone)]
pub struct Resp {
    pub msg: Message,
    pub raw: Vec<u8>,
}

impl Resp {
    fn parse(raw: Vec<u8>) -> Resp {
        let msg = Message::from_vec(&raw)
            .unwrap_or_else(|e| panic!("unparseable response {raw:02x?}: {e}"));
        Resp { msg, raw }
    }
    pub fn len(&self) -> usize {
        self.raw.len()
    }
    pub fn rcode(&self) -> u16 {
        u16::from(self.msg.metadata.response_code)
    }
    pub fn aa(&self) -> bool {
        self.msg.metadata.authoritative
    }
    pub fn tc(&self) -> bool {
        self.msg.metadata.truncation
    }
    pub fn answers(&self) -> BTreeSet<String> {
        rrset_strings(&self.msg.answers)
    }
    pub fn authorities(&self) -> BTreeSet<String> {
        rrset_strings(&self.msg.authorities)
    }
    pub fn additionals(&self) -> BTreeSet<String> {
        rrset_strings(&self.msg.additionals)
    }
}

/// Records as "owner ttl class type rdata" strings (exact case).
pub fn rrset_strings(rrs: &[Record]) -> BTreeSet<String> {
    rrs.iter().map(|r| r.to_string()).collect()
}

pub fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

pub fn udp_raw(addr: SocketAddr, q: &[u8]) -> Option<Vec<u8>> {
    udp_raw_timeout(addr, q, TIMEOUT)
}

pub fn udp_raw_timeout(addr: SocketAddr, q: &[u8], t: Duration) -> Option<Vec<u8>> {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.set_read_timeout(Some(t)).unwrap();
    s.send_to(q, addr).unwrap();
    let mut buf = vec![0u8; 65_535];
    loop {
        match s.recv_from(&mut buf) {
            Ok((n, from)) if from == addr => return Some(buf[..n].to_vec()),
            Ok(_) => continue,
            Err(_) => return None,
        }
    }
}

pub fn tcp_raw(addr: SocketAddr, q: &[u8]) -> Option<Vec<u8>> {
    let mut s = TcpStream::connect_timeout(&addr, TIMEOUT).unwrap();
    s.set_read_timeout(Some(TIMEOUT)).unwrap();
    s.set_nodelay(true).unwrap();
    let mut framed = (q.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(q);
    s.write_all(&framed).ok()?;
    read_frame(&mut s)
}

pub fn read_frame(s: &mut TcpStream) -> Option<Vec<u8>> {
    let mut len = [0u8; 2];
    s.read_exact(&mut len).ok()?;
    let mut buf = vec![0u8; u16::from_be_bytes(len) as usize];
    s.read_exact(&mut buf).ok()?;
    Some(buf)
}

/// One UDP query on `sock` and its answer: the first datagram whose ID
/// matches (late answers to earlier queries are skipped); None after 2 s.
pub fn udp_exchange(sock: &UdpSocket, to: SocketAddr, q: &[u8]) -> Option<Vec<u8>> {
    sock.set_read_timeout(Some(TIMEOUT)).unwrap();
    sock.send_to(q, to).unwrap();
    let mut buf = vec![0u8; 65_535];
    loop {
        let (n, _) = sock.recv_from(&mut buf).ok()?;
        if n >= 2 && buf[..2] == q[..2] {
            return Some(buf[..n].to_vec());
        }
    }
}

/// `Message::to_vec` lowercases names; put the question's letter case back
/// (the point of the case-preservation tests).
pub fn to_wire(m: &Message) -> Vec<u8> {
    let mut q = m.to_vec().unwrap();
    if let Some(question) = m.queries.first() {
        let want = wire_name(&question.name.to_string());
        let have = q.get(12..12 + want.len());
        if have.is_some_and(|h| h.eq_ignore_ascii_case(&want)) {
            q[12..12 + want.len()].copy_from_slice(&want);
        }
    }
    q
}

pub fn udp(addr: SocketAddr, m: &Message) -> Resp {
    let q = to_wire(m);
    let raw =
        udp_raw(addr, &q).unwrap_or_else(|| panic!("no UDP answer from {addr} to {:?}", m.queries));
    let r = Resp::parse(raw);
    assert_eq!(r.msg.metadata.id, m.metadata.id, "UDP response ID");
    r
}

pub fn tcp(addr: SocketAddr, m: &Message) -> Resp {
    let q = to_wire(m);
    let raw =
        tcp_raw(addr, &q).unwrap_or_else(|| panic!("no TCP answer from {addr} to {:?}", m.queries));
    let r = Resp::parse(raw);
    assert_eq!(r.msg.metadata.id, m.metadata.id, "TCP response ID");
    r
}

/// One UDP query and its parsed answer; fails the test when none comes.
pub fn ask(addr: SocketAddr, q: &[u8]) -> Message {
    let raw = udp_raw(addr, q).unwrap_or_else(|| panic!("no UDP answer from {addr}"));
    Message::from_vec(&raw).unwrap_or_else(|e| panic!("unparseable response {raw:02x?}: {e}"))
}

/// The A and AAAA addresses in the answer section, in order.
pub fn addresses(m: &Message) -> Vec<IpAddr> {
    m.answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::A(a) => Some(IpAddr::V4(a.0)),
            RData::AAAA(a) => Some(IpAddr::V6(a.0)),
            _ => None,
        })
        .collect()
}

/// Like a stub resolver: UDP, and TCP again when the answer is truncated.
pub fn resolve(udp_addr: SocketAddr, tcp_addr: SocketAddr, m: &Message) -> (Resp, bool) {
    let r = udp(udp_addr, m);
    if r.tc() {
        (tcp(tcp_addr, m), true)
    } else {
        (r, false)
    }
}

/// Waits until something answers DNS over UDP and TCP at this port.
pub fn wait_dns(port: u16, t: Duration) -> bool {
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let deadline = std::time::Instant::now() + t;
    let q = query("example.", RecordType::SOA).to_vec().unwrap();
    while std::time::Instant::now() < deadline {
        if udp_raw_timeout(addr, &q, Duration::from_millis(200)).is_some()
            && TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
        {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}
