//! Query parsing straight from the packet bytes: header, question, OPT and
//! ECS, without building a `Message` and without allocating.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Header length of every DNS message.
pub const HEADER: usize = 12;
/// Longest domain name in wire form (RFC 1035 §2.3.4).
pub const MAX_NAME: usize = 255;

pub const TYPE_A: u16 = 1;
pub const TYPE_NS: u16 = 2;
pub const TYPE_CNAME: u16 = 5;
pub const TYPE_SOA: u16 = 6;
pub const TYPE_PTR: u16 = 12;
pub const TYPE_MX: u16 = 15;
pub const TYPE_TXT: u16 = 16;
pub const TYPE_AAAA: u16 = 28;
pub const TYPE_SRV: u16 = 33;
pub const TYPE_OPT: u16 = 41;
pub const TYPE_DS: u16 = 43;
pub const TYPE_RRSIG: u16 = 46;
pub const TYPE_NSEC: u16 = 47;
pub const TYPE_TSIG: u16 = 250;
pub const TYPE_IXFR: u16 = 251;
pub const TYPE_AXFR: u16 = 252;
pub const TYPE_MAILB: u16 = 253;
pub const TYPE_MAILA: u16 = 254;
pub const TYPE_ANY: u16 = 255;
pub const TYPE_CAA: u16 = 257;
pub const TYPE_DNAME: u16 = 39;
pub const TYPE_SVCB: u16 = 64;
pub const TYPE_HTTPS: u16 = 65;
/// RFC 1996's opcode.
pub const OPCODE_NOTIFY: u8 = 4;
pub const CLASS_IN: u16 = 1;
pub const CLASS_ANY: u16 = 255;
pub const OPT_NSID: u16 = 3;
pub const OPT_ECS: u16 = 8;
pub const OPT_COOKIE: u16 = 10;
pub const OPT_EDE: u16 = 15;

/// Response codes we produce (the low 4 bits go in the header; BADVERS
/// needs the OPT extended bits).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rcode {
    NoError = 0,
    FormErr = 1,
    ServFail = 2,
    NxDomain = 3,
    NotImp = 4,
    Refused = 5,
    YxDomain = 6,
    BadVers = 16,
}

impl Rcode {
    pub fn as_str(self) -> &'static str {
        match self {
            Rcode::NoError => "NOERROR",
            Rcode::FormErr => "FORMERR",
            Rcode::ServFail => "SERVFAIL",
            Rcode::NxDomain => "NXDOMAIN",
            Rcode::NotImp => "NOTIMP",
            Rcode::Refused => "REFUSED",
            Rcode::YxDomain => "YXDOMAIN",
            Rcode::BadVers => "BADVERS",
        }
    }
}

/// A lowercased wire-format name in a fixed buffer (no allocation).
#[derive(Clone, Copy)]
pub struct NameBuf {
    pub buf: [u8; MAX_NAME],
    pub len: u8,
}

impl NameBuf {
    pub const fn empty() -> Self {
        NameBuf {
            buf: [0; MAX_NAME],
            len: 0,
        }
    }
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len as usize]
    }
}

impl std::fmt::Debug for NameBuf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&name_to_string(self.as_bytes()))
    }
}

/// The EDNS Client Subnet option of a query (RFC 7871), validated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ecs {
    pub family: u16,
    pub source_prefix: u8,
    /// The address, zero beyond the source prefix (validated).
    pub addr: IpAddr,
}

/// The COOKIE option of a query (RFC 7873 §4), well-formed: an 8-byte
/// client cookie and, if the client has one, an 8 to 32-byte server cookie.
/// It borrows the option from the packet: most queries carry none, and the
/// parsed query is moved through every layer, so it stays small.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cookie<'a>(&'a [u8]);

impl<'a> Cookie<'a> {
    /// RFC 7873 §5.2.2: 8 bytes (client cookie) or 16 to 40 (client and
    /// server cookie); anything else is FORMERR.
    pub fn parse(b: &'a [u8]) -> Result<Cookie<'a>, BadOption> {
        if b.len() != 8 && !(16..=40).contains(&b.len()) {
            return Err(BadOption);
        }
        Ok(Cookie(b))
    }
    pub fn client(&self) -> &'a [u8; 8] {
        self.0[..8].try_into().expect("checked by parse")
    }
    /// Empty (client cookie only) or 8..=32 bytes.
    pub fn server(&self) -> &'a [u8] {
        &self.0[8..]
    }
}

/// What the OPT record of a query said.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Edns<'a> {
    pub udp_size: u16,
    pub version: u8,
    pub dnssec_ok: bool,
    /// Compact Answers OK (RFC 9824 §4): NXDOMAIN may keep its rcode.
    pub compact_ok: bool,
    pub ecs: Option<Ecs>,
    /// The query asked for our NSID (RFC 5001 §2.1: an empty NSID option).
    pub nsid: bool,
    pub cookie: Option<Cookie<'a>>,
}

/// A parsed query. `qname_raw` keeps the client's letter case for echoing;
/// lookups want it lowercased ([`Query::lower_qname`]), which the caller
/// does into its own buffer so the query itself stays small to move.
#[derive(Clone, Copy, Debug)]
pub struct Query<'a> {
    pub id: u16,
    /// Header bytes 2..4 as sent (opcode, RD, CD...).
    pub flags: u16,
    pub qname_raw: &'a [u8],
    pub qtype: u16,
    pub qclass: u16,
    pub edns: Option<Edns<'a>>,
    /// The message carries a TSIG RR (RFC 8945): `crate::xfr` checks it.
    pub tsig: bool,
}

impl Query<'_> {
    pub fn opcode(&self) -> u8 {
        ((self.flags >> 11) & 0xF) as u8
    }
    pub fn rd(&self) -> bool {
        self.flags & 0x0100 != 0
    }
    pub fn cd(&self) -> bool {
        self.flags & 0x0010 != 0
    }

    /// The query has ECS with a non-zero source prefix: the answer's scope
    /// is echoed, and the ECS address is the client (RFC 7871 §7.1.2).
    pub fn ecs_scoped(&self) -> bool {
        self.edns
            .and_then(|e| e.ecs)
            .is_some_and(|e| e.source_prefix > 0)
    }

    /// Writes the question name, lowercased, to the start of `out` (at
    /// least [`MAX_NAME`] bytes); returns its length.
    #[inline(always)]
    pub fn lower_qname(&self, out: &mut [u8]) -> usize {
        lower_copy(self.qname_raw, &mut out[..self.qname_raw.len()]);
        self.qname_raw.len()
    }

    /// The question name, lowercased.
    pub fn qname(&self) -> NameBuf {
        let mut name = NameBuf::empty();
        name.len = self.lower_qname(&mut name.buf) as u8;
        name
    }
}

/// ASCII-lowercases wire-form bytes. Length octets (0..=63) are never
/// letters, so a whole name can be done at once; branch-free, so the
/// compiler vectorises it.
#[inline]
pub fn lowercase_in_place(b: &mut [u8]) {
    for c in b {
        *c |= u8::from(c.wrapping_sub(b'A') < 26) << 5;
    }
}

/// `dst = src` ASCII-lowercased (same lengths), as [`lowercase_in_place`]
/// does, eight bytes at a time: every query's name goes through here.
/// Names of eight bytes or more end with the last eight bytes, which may
/// overlap the chunk before (lowercasing twice changes nothing).
#[inline(always)]
pub fn lower_copy(src: &[u8], dst: &mut [u8]) {
    let n = src.len();
    if n < 8 {
        dst.copy_from_slice(src);
        lowercase_in_place(dst);
        return;
    }
    let mut i = 0;
    loop {
        let at = i.min(n - 8);
        let x = u64::from_ne_bytes(src[at..at + 8].try_into().expect("8 bytes"));
        dst[at..at + 8].copy_from_slice(&lower8(x).to_ne_bytes());
        if at == n - 8 {
            return;
        }
        i += 8;
    }
}

/// Sets bit 5 of every byte of `x` that is an ASCII capital ('A'..='Z').
/// Each byte's low seven bits plus a constant carries into its high bit
/// when the byte is at least 'A' (resp. beyond 'Z'); no sum leaves its byte.
#[inline(always)]
fn lower8(x: u64) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    let low7 = x & (0x7F * ONES);
    let from_a = low7 + (0x80 - u64::from(b'A')) * ONES;
    let past_z = low7 + (0x80 - u64::from(b'Z') - 1) * ONES;
    let upper = from_a & !past_z & !x & (0x80 * ONES);
    x | (upper >> 2)
}

/// Why a packet could not be answered normally.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParseError<'a> {
    /// Not worth answering: too short for a header, or a response.
    Drop,
    /// Answer with this rcode, echoing what of the query was readable.
    /// `question` is the byte range of a well-formed question, if any.
    Reply {
        rcode: Rcode,
        question: Option<(usize, usize)>,
        edns: Option<Edns<'a>>,
    },
}

fn rd16(p: &[u8], i: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*p.get(i)?, *p.get(i + 1)?]))
}

/// The end of an uncompressed name at `pos`. Question names are never
/// compressed in practice; a pointer there is a FORMERR.
#[inline]
fn plain_name_end(p: &[u8], mut pos: usize) -> Option<usize> {
    let start = pos;
    loop {
        let len = *p.get(pos)? as usize;
        if len & 0xC0 != 0 {
            return None;
        }
        pos += len + 1;
        if pos - start > MAX_NAME {
            return None;
        }
        if len == 0 {
            return Some(pos);
        }
    }
}

/// Skips a possibly compressed name; returns the position after it.
fn skip_name(p: &[u8], mut pos: usize) -> Option<usize> {
    loop {
        let len = *p.get(pos)?;
        match len & 0xC0 {
            0x00 if len == 0 => return Some(pos + 1),
            0x00 => pos += 1 + len as usize,
            0xC0 => {
                p.get(pos + 1)?;
                return Some(pos + 2);
            }
            _ => return None,
        }
    }
}

/// Parses a DNS message sent to us: header, question, OPT and its
/// options. Never panics; every malformed shape maps to a [`ParseError`].
/// The opcode is not judged here: what the RFCs say of it (and of the
/// class and type asked) is `dns::mandatory`'s, which also echoes what
/// was readable of a message it refuses.
#[inline]
pub fn parse_query(p: &[u8]) -> Result<Query<'_>, ParseError<'_>> {
    let mut q = Query::EMPTY;
    parse_query_into(p, &mut q).map(|()| q)
}

impl Query<'_> {
    /// What [`parse_query_into`] starts from.
    pub const EMPTY: Query<'static> = Query {
        id: 0,
        flags: 0,
        qname_raw: &[],
        qtype: 0,
        qclass: 0,
        edns: None,
        tsig: false,
    };
}

/// [`parse_query`] into the caller's `q` (its contents are undefined after
/// an error). Always inlined, and writing in place: the answer path's
/// `match parse_query(..) { Ok(q) => q, .. }` copied the 72-byte query out
/// of the `Result` (~30 instructions a query).
#[inline(always)]
pub fn parse_query_into<'a>(p: &'a [u8], q: &mut Query<'a>) -> Result<(), ParseError<'a>> {
    if p.len() < HEADER {
        return Err(ParseError::Drop);
    }
    let flags = u16::from_be_bytes([p[2], p[3]]);
    if flags & 0x8000 != 0 {
        // A response sent to us: answering could loop two servers forever.
        return Err(ParseError::Drop);
    }
    parse_message(p, flags, q)
}

#[inline(always)]
fn parse_message<'a>(p: &'a [u8], flags: u16, q: &mut Query<'a>) -> Result<(), ParseError<'a>> {
    let qd = u16::from_be_bytes([p[4], p[5]]);
    let an = u16::from_be_bytes([p[6], p[7]]);
    let ns = u16::from_be_bytes([p[8], p[9]]);
    let ar = u16::from_be_bytes([p[10], p[11]]);
    let formerr = |question, edns| ParseError::Reply {
        rcode: Rcode::FormErr,
        question,
        edns,
    };
    if qd != 1 {
        return Err(formerr(None, None));
    }
    let qend = plain_name_end(p, HEADER).ok_or(formerr(None, None))?;
    let (Some(qtype), Some(qclass)) = (rd16(p, qend), rd16(p, qend + 2)) else {
        return Err(formerr(None, None));
    };
    let question = Some((HEADER, qend + 4));
    let mut pos = qend + 4;
    // Answer and authority records have no business in a query, but NOTIFY
    // and UPDATE carry them; skip them so the OPT record can still be found.
    for _ in 0..(an as u32 + ns as u32) {
        pos = skip_name(p, pos).ok_or(formerr(question, None))?;
        let rdlen = rd16(p, pos + 8).ok_or(formerr(question, None))? as usize;
        pos += 10 + rdlen;
        if pos > p.len() {
            return Err(formerr(question, None));
        }
    }
    q.edns = None;
    q.tsig = false;
    for _ in 0..ar {
        let owner = pos;
        pos = skip_name(p, pos).ok_or(formerr(question, q.edns))?;
        let (Some(rtype), Some(rdlen)) = (rd16(p, pos), rd16(p, pos + 8)) else {
            return Err(formerr(question, q.edns));
        };
        let rdata = pos + 10;
        let end = rdata + rdlen as usize;
        if end > p.len() {
            return Err(formerr(question, q.edns));
        }
        if rtype == TYPE_TSIG {
            // Where it must be and whether it verifies is the TSIG code's.
            q.tsig = true;
        }
        if rtype == TYPE_OPT {
            // RFC 6891 §6.1.1: one OPT, owned by the root.
            if q.edns.is_some() || pos != owner + 1 || p[owner] != 0 {
                return Err(formerr(question, q.edns));
            }
            let udp_size = u16::from_be_bytes([p[pos + 2], p[pos + 3]]);
            let version = p[pos + 5];
            let dnssec_ok = p[pos + 6] & 0x80 != 0;
            let e = q.edns.insert(Edns {
                udp_size,
                version,
                dnssec_ok,
                compact_ok: p[pos + 6] & 0x40 != 0,
                ecs: None,
                nsid: false,
                cookie: None,
            });
            // A version we don't speak is answered BADVERS before we look
            // at options we might not understand (RFC 6891 §6.1.3).
            if version == 0 {
                parse_options(&p[rdata..end], e).map_err(|BadOption| formerr(question, q.edns))?;
            }
        }
        pos = end;
    }
    if let Some(e) = q.edns
        && e.version > 0
    {
        return Err(ParseError::Reply {
            rcode: Rcode::BadVers,
            question,
            edns: Some(e),
        });
    }
    q.id = u16::from_be_bytes([p[0], p[1]]);
    q.flags = flags;
    q.qname_raw = &p[HEADER..qend];
    q.qtype = qtype;
    q.qclass = qclass;
    Ok(())
}

/// Walks the OPT options into `e`: ECS, NSID and COOKIE, each at most once
/// and well formed. Unknown options are skipped (and will not be echoed).
#[inline(always)]
fn parse_options<'a>(mut o: &'a [u8], e: &mut Edns<'a>) -> Result<(), BadOption> {
    while !o.is_empty() {
        let (Some(code), Some(len)) = (rd16(o, 0), rd16(o, 2)) else {
            return Err(BadOption);
        };
        let body = o.get(4..4 + len as usize).ok_or(BadOption)?;
        match code {
            OPT_ECS => {
                if e.ecs.is_some() {
                    return Err(BadOption);
                }
                e.ecs = Some(parse_ecs(body)?);
            }
            // RFC 5001 §2.1: the query's NSID option is empty. A non-empty
            // one is ignored, as Knot and BIND do.
            OPT_NSID if body.is_empty() => e.nsid = true,
            OPT_COOKIE => {
                if e.cookie.is_some() {
                    return Err(BadOption);
                }
                e.cookie = Some(Cookie::parse(body)?);
            }
            _ => {}
        }
        o = &o[4 + len as usize..];
    }
    Ok(())
}

/// An option that breaks its RFC (ECS: RFC 7871 §6; COOKIE: RFC 7873
/// §5.2.2), answered with FORMERR.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BadOption;

/// RFC 7871 §6 validation, stricter than hickory: the address must be
/// exactly as long as the source prefix needs, carry no bits beyond it, and
/// the query's scope must be zero.
// Always inlined into the option walk: as a call it cost ~50 instructions
// an ECS query.
#[inline(always)]
pub fn parse_ecs(b: &[u8]) -> Result<Ecs, BadOption> {
    if b.len() < 4 {
        return Err(BadOption);
    }
    let family = u16::from_be_bytes([b[0], b[1]]);
    let source = b[2];
    let scope = b[3];
    let addr = &b[4..];
    let max = match family {
        1 => 32,
        2 => 128,
        _ => return Err(BadOption),
    };
    if source > max || scope != 0 || addr.len() != (source as usize).div_ceil(8) {
        return Err(BadOption);
    }
    let mut full = [0u8; 16];
    full[..addr.len()].copy_from_slice(addr);
    if !source.is_multiple_of(8) {
        let last = addr.len() - 1;
        let mask = 0xFFu8 >> (source % 8);
        if addr[last] & mask != 0 {
            return Err(BadOption);
        }
    }
    let ip = if family == 1 {
        IpAddr::V4(Ipv4Addr::new(full[0], full[1], full[2], full[3]))
    } else {
        IpAddr::V6(Ipv6Addr::from(full))
    };
    Ok(Ecs {
        family,
        source_prefix: source,
        addr: ip,
    })
}

/// Iterates the label start offsets of a wire name, so that `&name[off..]`
/// is each ancestor, from the name itself up to (excluding) the root.
pub fn label_offsets(name: &[u8], out: &mut [u8; 128]) -> usize {
    let mut n = 0;
    let mut pos = 0usize;
    while pos < name.len() && name[pos] != 0 && n < 128 {
        out[n] = pos as u8;
        n += 1;
        pos += 1 + name[pos] as usize;
    }
    n
}

/// Length of the uncompressed wire name at the start of `b` (root label
/// included), if it is one.
pub fn name_len(b: &[u8]) -> Option<usize> {
    let mut pos = 0;
    loop {
        let len = *b.get(pos)? as usize;
        if len > 63 {
            return None;
        }
        pos += 1 + len;
        if pos > MAX_NAME || pos > b.len() {
            return None;
        }
        if len == 0 {
            return Some(pos);
        }
    }
}

/// Number of labels in a wire name, root excluded.
pub fn label_count(name: &[u8]) -> usize {
    let mut offs = [0u8; 128];
    label_offsets(name, &mut offs)
}

/// Presentation form of a wire name, for logs and `explain`.
pub fn name_to_string(name: &[u8]) -> String {
    let mut s = String::new();
    let mut pos = 0;
    while pos < name.len() {
        let len = name[pos] as usize;
        if len == 0 {
            break;
        }
        for &c in name.get(pos + 1..pos + 1 + len).unwrap_or(&[]) {
            match c {
                b'.' | b'\\' | b'"' | b'(' | b')' | b';' | b'@' | b'$' => {
                    s.push('\\');
                    s.push(c as char);
                }
                0x21..=0x7E => s.push(c as char),
                _ => s.push_str(&format!("\\{c:03}")),
            }
        }
        s.push('.');
        pos += 1 + len;
    }
    if s.is_empty() {
        s.push('.');
    }
    s
}

/// Lowercase copy of a wire name.
pub fn lowercase(name: &[u8]) -> Box<[u8]> {
    name.iter().map(u8::to_ascii_lowercase).collect()
}

/// Wire form of a hickory name (case kept).
pub fn from_hickory(name: &hickory_proto::rr::Name) -> Box<[u8]> {
    let mut v = Vec::with_capacity(name.len() + 1);
    for label in name.iter() {
        v.push(label.len() as u8);
        v.extend_from_slice(label);
    }
    v.push(0);
    v.into_boxed_slice()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lower_copy_is_lowercase_in_place() {
        // Every byte value in every position, at lengths around the chunk size.
        let bytes: Vec<u8> = (0..=255u8).collect();
        for len in 0..=40 {
            for start in 0..256 {
                let src: Vec<u8> = (0..len).map(|i| bytes[(start + i * 37) % 256]).collect();
                let mut want = src.clone();
                lowercase_in_place(&mut want);
                let mut got = vec![0xAA; len];
                lower_copy(&src, &mut got);
                assert_eq!(got, want, "{src:02x?}");
            }
        }
    }

    fn q(name: &[u8], opt: &[u8]) -> Vec<u8> {
        let mut p = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
        if !opt.is_empty() {
            p[11] = 1;
        }
        p.extend_from_slice(name);
        p.extend_from_slice(&[0, 1, 0, 1]);
        p.extend_from_slice(opt);
        p
    }

    fn opt(options: &[u8]) -> Vec<u8> {
        let mut o = vec![0, 0, 41, 0x04, 0xD0, 0, 0, 0, 0];
        o.extend_from_slice(&(options.len() as u16).to_be_bytes());
        o.extend_from_slice(options);
        o
    }

    #[test]
    fn parses_case_and_ecs() {
        let ecs = [0, 8, 0, 7, 0, 1, 24, 0, 192, 0, 2];
        let p = q(b"\x03WwW\x07example\x00", &opt(&ecs));
        let q = parse_query(&p).unwrap();
        assert_eq!(q.qname().as_bytes(), b"\x03www\x07example\x00");
        assert_eq!(q.qname_raw, b"\x03WwW\x07example\x00");
        let e = q.edns.unwrap();
        assert_eq!(e.udp_size, 1232);
        assert_eq!(
            e.ecs,
            Some(Ecs {
                family: 1,
                source_prefix: 24,
                addr: "192.0.2.0".parse().unwrap()
            })
        );
    }

    #[test]
    fn ecs_validation() {
        assert!(parse_ecs(&[0, 3, 0, 0]).is_err(), "unknown family");
        assert!(
            parse_ecs(&[0, 1, 33, 0, 1, 2, 3, 4, 5]).is_err(),
            "prefix too long"
        );
        assert!(
            parse_ecs(&[0, 1, 23, 0, 192, 0, 3]).is_err(),
            "bits beyond prefix"
        );
        assert!(parse_ecs(&[0, 1, 24, 8, 192, 0, 2]).is_err(), "scope set");
        assert!(
            parse_ecs(&[0, 1, 24, 0, 192, 0, 2, 0]).is_err(),
            "address too long"
        );
        assert!(parse_ecs(&[0, 1, 0, 0]).is_ok());
        assert!(parse_ecs(&[0, 2, 56, 0, 0x20, 1, 0xd, 0xb8, 0, 0, 1]).is_ok());
    }

    #[test]
    fn rejects_shapes() {
        assert_eq!(parse_query(&[0; 5]).unwrap_err(), ParseError::Drop);
        let mut p = q(b"\x01a\x00", &[]);
        p[4..6].copy_from_slice(&[0, 2]);
        assert!(matches!(
            parse_query(&p),
            Err(ParseError::Reply {
                rcode: Rcode::FormErr,
                ..
            })
        ));
        // version 1 -> BADVERS
        let mut o = opt(&[]);
        o[6] = 1;
        let p = q(b"\x01a\x00", &o);
        assert!(matches!(
            parse_query(&p),
            Err(ParseError::Reply {
                rcode: Rcode::BadVers,
                ..
            })
        ));
    }

    #[test]
    fn never_panics_on_prefixes() {
        let ecs = [0, 8, 0, 7, 0, 1, 24, 0, 192, 0, 2];
        let p = q(b"\x03www\x07example\x00", &opt(&ecs));
        for n in 0..p.len() {
            let _ = parse_query(&p[..n]);
        }
    }
}
