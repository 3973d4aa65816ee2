//! RDATA of the record types beyond RFC 1035's core, written straight to
//! wire form from master-file tokens, and the RFC 3597 generic `\# len hex`.
//!
//! Each of these types is stored as hickory's `RData::Unknown` holding the
//! wire bytes. Why not hickory's typed RDATA (`SVCB`, `TLSA`, ...): its text
//! parsers go through the lexer that mis-decodes `\DDD` (see `super`), DNAME,
//! LOC, URI and RP have no hickory type at all, DS/DNSKEY need a crypto
//! feature, and the answer tree only needs the bytes: none of these types
//! has a name that may be compressed (RFC 3597 §4), so the bytes are exactly
//! what goes on the wire. hickory's decoder still checks the generic form of
//! the types it knows (`validate_wire`).

use std::str::FromStr;

use data_encoding::{BASE64, HEXLOWER_PERMISSIVE};
use hickory_proto::rr::rdata::NULL;
use hickory_proto::rr::{RData, RecordType};
use hickory_proto::serialize::binary::{BinDecoder, Restrict};

use super::fields::{FieldError, Fields, type_name};

/// `TYPEnnn` (RFC 3597 §5). Meta types and those only a server makes
/// (OPT, TSIG, TKEY, transfers, ANY) cannot be in a zone.
pub(crate) fn generic_type(word: &str) -> Result<Option<RecordType>, String> {
    let Some(n) = word.strip_prefix("TYPE") else {
        return Ok(None);
    };
    if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(None);
    }
    let v: u16 = n
        .parse()
        .map_err(|_| format!("record type {word} is above TYPE65535"))?;
    if matches!(v, 0 | 41 | 249 | 250 | 251..=255) {
        return Err(format!(
            "record type {word} is a meta type that cannot appear in a zone"
        ));
    }
    Ok(Some(RecordType::from(v)))
}

/// Wraps wire bytes as hickory RDATA of type `rtype`.
pub(crate) fn opaque(rtype: RecordType, bytes: Vec<u8>) -> RData {
    let mut null = NULL::new();
    null.anything = bytes;
    RData::Unknown {
        code: rtype,
        rdata: null,
    }
}

/// The RFC 3597 generic form: `\# <length> <hex>...`. Returns the bytes.
pub(crate) fn generic_bytes(f: &Fields<'_>) -> Result<Vec<u8>, FieldError> {
    let len: usize = f.parse(1, "generic RDATA length", usize::from_str)?;
    if len > usize::from(u16::MAX) {
        return Err(f.err(1, format!("generic RDATA length {len} is above 65535")));
    }
    let bytes = if f.tokens.len() > 2 {
        f.hex_from(2, "generic RDATA")?
    } else {
        Vec::new()
    };
    if bytes.len() != len {
        return Err(f.err(
            1,
            format!(
                "generic RDATA says {len} bytes but has {} (RFC 3597 §5)",
                bytes.len()
            ),
        ));
    }
    Ok(bytes)
}

/// Checks that generic-form bytes are well-formed RDATA of a type we know
/// the layout of (as Knot does), with hickory's decoder for the types it
/// has and our own checks for the rest.
pub(crate) fn validate_wire(rtype: RecordType, bytes: &[u8]) -> Result<(), String> {
    let name = type_name(rtype);
    let bad = |e: String| format!("generic RDATA is not a valid {name} record: {e}");
    match u16::from(rtype) {
        39 => {
            let end = name_end(bytes, 0).ok_or_else(|| bad("bad domain name".into()))?;
            if end != bytes.len() {
                return Err(bad("trailing bytes after the name".into()));
            }
            return Ok(());
        }
        17 => {
            let a = name_end(bytes, 0).ok_or_else(|| bad("bad mailbox name".into()))?;
            let b = name_end(bytes, a).ok_or_else(|| bad("bad TXT domain name".into()))?;
            if b != bytes.len() {
                return Err(bad("trailing bytes".into()));
            }
            return Ok(());
        }
        29 => {
            if bytes.len() != 16 || bytes[0] != 0 {
                return Err(bad("LOC version 0 is 16 bytes".into()));
            }
            return Ok(());
        }
        256 => {
            if bytes.len() < 5 {
                return Err(bad("URI needs priority, weight and a target".into()));
            }
            return Ok(());
        }
        // DS, CDS, DNSKEY, CDNSKEY: fixed header and some bytes after it.
        43 | 59 => {
            if bytes.len() < 5 {
                return Err(bad(
                    "DS needs key tag, algorithm, digest type and digest".into()
                ));
            }
            return Ok(());
        }
        48 | 60 => {
            if bytes.len() < 5 {
                return Err(bad(
                    "DNSKEY needs flags, protocol, algorithm and a key".into()
                ));
            }
            return Ok(());
        }
        64 | 65 => return check_svcb_wire(bytes).map_err(bad),
        _ => {}
    }
    if matches!(rtype, RecordType::Unknown(_)) {
        return Ok(());
    }
    let mut d = BinDecoder::new(bytes);
    RData::read(&mut d, rtype, Restrict::new(bytes.len() as u16))
        .map_err(|e| bad(e.to_string()))?;
    if d.index() != bytes.len() {
        return Err(bad("trailing bytes".into()));
    }
    Ok(())
}

/// End of an uncompressed wire name starting at `pos`.
fn name_end(b: &[u8], mut pos: usize) -> Option<usize> {
    let start = pos;
    loop {
        let len = *b.get(pos)? as usize;
        if len > 63 {
            return None;
        }
        pos += 1 + len;
        if pos - start > 255 || pos > b.len() {
            return None;
        }
        if len == 0 {
            return Some(pos);
        }
    }
}

/// Builds the RDATA of `rtype` (one of [`extra_type`]) from its fields.
pub(crate) fn parse_extra(
    rtype: RecordType,
    f: &Fields<'_>,
    origin: &hickory_proto::rr::Name,
) -> Result<Vec<u8>, FieldError> {
    let mut out = Vec::new();
    match u16::from(rtype) {
        // DS, CDS (RFC 4034 §5.3, RFC 7344)
        43 | 59 => {
            f.at_least(&["key tag", "algorithm", "digest type", "digest"])?;
            out.extend(f.parse(0, "key tag", u16::from_str)?.to_be_bytes());
            out.push(algorithm(f, 1)?);
            let dtype: u8 = f.parse(2, "digest type", u8::from_str)?;
            out.push(dtype);
            let digest = f.hex_from(3, "digest")?;
            // RFC 4509, 6605 §2 and 4034 §5.1.4: the digest lengths of the
            // known digest types (Knot's and BIND's loaders check them too).
            let want = match dtype {
                1 => Some(20),
                2 => Some(32),
                4 => Some(48),
                _ => None,
            };
            if let Some(w) = want
                && digest.len() != w
            {
                return Err(f.err(
                    3,
                    format!(
                        "{rtype} digest type {dtype} needs a {w}-byte digest, this one is {} bytes",
                        digest.len()
                    ),
                ));
            }
            out.extend(digest);
        }
        // DNSKEY, CDNSKEY (RFC 4034 §2.2)
        48 | 60 => {
            f.at_least(&["flags", "protocol", "algorithm", "public key"])?;
            out.extend(f.parse(0, "flags", u16::from_str)?.to_be_bytes());
            let proto: u8 = f.parse(1, "protocol", u8::from_str)?;
            if proto != 3 {
                return Err(f.err(1, format!("{rtype} protocol must be 3, not {proto}")));
            }
            out.push(proto);
            out.push(algorithm(f, 2)?);
            out.extend(f.base64_from(3, "public key")?);
        }
        // TLSA, SMIMEA (RFC 6698 §2.2, RFC 8162)
        52 | 53 => {
            f.at_least(&["usage", "selector", "matching type", "data"])?;
            out.push(f.parse(0, "certificate usage", u8::from_str)?);
            out.push(f.parse(1, "selector", u8::from_str)?);
            out.push(f.parse(2, "matching type", u8::from_str)?);
            out.extend(f.hex_from(3, "certificate association data")?);
        }
        // SSHFP (RFC 4255 §3.2)
        44 => {
            f.at_least(&["algorithm", "fingerprint type", "fingerprint"])?;
            out.push(f.parse(0, "SSHFP algorithm", u8::from_str)?);
            out.push(f.parse(1, "SSHFP fingerprint type", u8::from_str)?);
            out.extend(f.hex_from(2, "fingerprint")?);
        }
        // NAPTR (RFC 3403 §4.1)
        35 => {
            f.count(&[
                "order",
                "preference",
                "flags",
                "services",
                "regexp",
                "replacement",
            ])?;
            out.extend(f.parse(0, "NAPTR order", u16::from_str)?.to_be_bytes());
            out.extend(f.parse(1, "NAPTR preference", u16::from_str)?.to_be_bytes());
            for i in 2..5 {
                f.char_string(i, &mut out)?;
            }
            name_wire(&f.name(5, origin)?, &mut out);
        }
        // DNAME (RFC 6672 §2.1)
        39 => {
            f.count(&["target"])?;
            name_wire(&f.name(0, origin)?, &mut out);
        }
        // RP (RFC 1183 §2.2)
        17 => {
            f.count(&["mailbox", "TXT domain"])?;
            name_wire(&f.name(0, origin)?, &mut out);
            name_wire(&f.name(1, origin)?, &mut out);
        }
        // HINFO (RFC 1035 §3.3.2)
        13 => {
            f.count(&["CPU", "OS"])?;
            f.char_string(0, &mut out)?;
            f.char_string(1, &mut out)?;
        }
        // URI (RFC 7553 §4.5): the target is the rest of the RDATA, not a
        // length-prefixed character string.
        256 => {
            f.count(&["priority", "weight", "target"])?;
            out.extend(f.parse(0, "URI priority", u16::from_str)?.to_be_bytes());
            out.extend(f.parse(1, "URI weight", u16::from_str)?.to_be_bytes());
            let t = &f.tokens[2];
            if !t.quoted || t.bytes.is_empty() {
                return Err(f.err(2, "URI target must be a non-empty quoted string".into()));
            }
            out.extend(&t.bytes);
        }
        // CERT (RFC 4398 §2.2)
        37 => {
            f.at_least(&["type", "key tag", "algorithm", "certificate"])?;
            let word = f.plain(0)?;
            let ctype = cert_type(word)
                .or_else(|| u16::from_str(word).ok())
                .ok_or_else(|| f.err(0, format!("invalid CERT type '{word}'")))?;
            out.extend(ctype.to_be_bytes());
            out.extend(f.parse(1, "CERT key tag", u16::from_str)?.to_be_bytes());
            out.push(algorithm(f, 2)?);
            out.extend(f.base64_from(3, "certificate")?);
        }
        // OPENPGPKEY (RFC 7929 §2.3)
        61 => {
            f.at_least(&["public key"])?;
            out.extend(f.base64_from(0, "public key")?);
        }
        // LOC (RFC 1876 §3)
        29 => loc(f, &mut out)?,
        // SVCB, HTTPS (RFC 9460 §2.1)
        64 | 65 => {
            f.at_least(&["priority", "target"])?;
            out.extend(f.parse(0, "SvcPriority", u16::from_str)?.to_be_bytes());
            name_wire(&f.name(1, origin)?, &mut out);
            let params = super::svcb::parse_params(&f.tokens[2..])
                .map_err(|(i, reason)| f.err(i + 2, reason))?;
            out.extend(params);
            check_svcb_wire(&out).map_err(|e| f.err(0, e))?;
        }
        _ => {
            return Err(f.err(
                0,
                format!(
                    "record type {} has no text form here: write its RDATA as '\\# <length> <hex>' (RFC 3597)",
                    type_name(rtype)
                ),
            ));
        }
    }
    Ok(out)
}

fn name_wire(n: &hickory_proto::rr::Name, out: &mut Vec<u8>) {
    out.extend_from_slice(&crate::wire::from_hickory(n));
}

/// DNSSEC algorithm number or mnemonic (RFC 8624 §3.1 names).
fn algorithm(f: &Fields<'_>, i: usize) -> Result<u8, FieldError> {
    let word = f.plain(i)?;
    if let Ok(v) = u8::from_str(word) {
        return Ok(v);
    }
    Ok(match word.to_ascii_uppercase().as_str() {
        "RSAMD5" => 1,
        "DH" => 2,
        "DSA" => 3,
        "RSASHA1" => 5,
        "DSA-NSEC3-SHA1" => 6,
        "RSASHA1-NSEC3-SHA1" => 7,
        "RSASHA256" => 8,
        "RSASHA512" => 10,
        "ECC-GOST" => 12,
        "ECDSAP256SHA256" => 13,
        "ECDSAP384SHA384" => 14,
        "ED25519" => 15,
        "ED448" => 16,
        "INDIRECT" => 252,
        "PRIVATEDNS" => 253,
        "PRIVATEOID" => 254,
        _ => return Err(f.err(i, format!("invalid algorithm '{word}'"))),
    })
}

/// RFC 4398 §2.2 certificate type mnemonics.
fn cert_type(word: &str) -> Option<u16> {
    Some(match word.to_ascii_uppercase().as_str() {
        "PKIX" => 1,
        "SPKI" => 2,
        "PGP" => 3,
        "IPKIX" => 4,
        "ISPKI" => 5,
        "IPGP" => 6,
        "ACPKIX" => 7,
        "IACPKIX" => 8,
        "URI" => 253,
        "OID" => 254,
        _ => return None,
    })
}

/// RFC 1876 §3: `d [m [s]] N|S d [m [s]] E|W alt[m] [siz[m] [hp[m] [vp[m]]]]`.
fn loc(f: &Fields<'_>, out: &mut Vec<u8>) -> Result<(), FieldError> {
    let n = f.tokens.len();
    let mut i = 0;
    // One coordinate: degrees, optional minutes and seconds, hemisphere.
    let mut coord = |max_deg: u32, hemis: [&str; 2]| -> Result<u32, FieldError> {
        let deg: u32 = f.parse(i, "LOC degrees", u32::from_str)?;
        i += 1;
        let mut min = 0u32;
        let mut msec = 0u32;
        if i < n && f.plain(i)?.bytes().all(|b| b.is_ascii_digit()) {
            min = f.parse(i, "LOC minutes", u32::from_str)?;
            i += 1;
            if i < n && f.plain(i)?.starts_with(|c: char| c.is_ascii_digit()) {
                msec = f.parse(i, "LOC seconds", |s| decimal(s, 3))? as u32;
                i += 1;
            }
        }
        if deg > max_deg || min > 59 || msec > 59_999 {
            return Err(f.err(i.saturating_sub(1), "LOC coordinate out of range".into()));
        }
        let h = f.plain(i)?.to_ascii_uppercase();
        let sign = if h == hemis[0] {
            true
        } else if h == hemis[1] {
            false
        } else {
            return Err(f.err(
                i,
                format!("expected {} or {}, found '{h}'", hemis[0], hemis[1]),
            ));
        };
        i += 1;
        let v = (deg * 3600 + min * 60) * 1000 + msec;
        if v > max_deg * 3_600_000 {
            return Err(f.err(i - 1, "LOC coordinate out of range".into()));
        }
        Ok(if sign {
            (1u32 << 31) + v
        } else {
            (1u32 << 31) - v
        })
    };
    let lat = coord(90, ["N", "S"])?;
    let lon = coord(180, ["E", "W"])?;
    let meters = |i: usize, what: &str| -> Result<i64, FieldError> {
        f.parse(i, what, |s| {
            decimal(s.strip_suffix(['m', 'M']).unwrap_or(s), 2)
        })
    };
    let alt = meters(i, "LOC altitude")?;
    let alt = alt + 10_000_000;
    if !(0..=i64::from(u32::MAX)).contains(&alt) {
        return Err(f.err(i, "LOC altitude out of range".into()));
    }
    i += 1;
    // Defaults of RFC 1876 §3: size 1 m, 10 km horizontal, 10 m vertical.
    let mut prec = [100i64, 1_000_000, 1_000];
    for (k, what) in [
        "LOC size",
        "LOC horizontal precision",
        "LOC vertical precision",
    ]
    .iter()
    .enumerate()
    {
        if i < n {
            prec[k] = meters(i, what)?;
            if !(0..=9_000_000_000).contains(&prec[k]) {
                return Err(f.err(i, format!("{what} out of range")));
            }
            i += 1;
        }
    }
    if i < n {
        return Err(f.err(i, format!("extra LOC field '{}'", f.tokens[i].raw)));
    }
    out.push(0);
    for p in prec {
        out.push(loc_size(p));
    }
    out.extend(lat.to_be_bytes());
    out.extend(lon.to_be_bytes());
    out.extend((alt as u32).to_be_bytes());
    Ok(())
}

/// RFC 1876's size encoding: mantissa and power of ten of centimetres.
fn loc_size(mut cm: i64) -> u8 {
    let mut exp = 0u8;
    while cm > 9 && exp < 9 {
        cm /= 10;
        exp += 1;
    }
    ((cm as u8) << 4) | exp
}

/// A decimal number with at most `places` fraction digits, scaled by
/// 10^places (`"1.5"`, 2 → 150). A leading `-` is allowed.
fn decimal(s: &str, places: u32) -> Result<i64, ()> {
    let (neg, s) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s),
    };
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    if int.is_empty()
        || frac.len() > places as usize
        || !int.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
        || int.len() > 12
    {
        return Err(());
    }
    let mut v: i64 = int.parse().map_err(|_| ())?;
    for k in 0..places as usize {
        v = v * 10 + frac.as_bytes().get(k).map_or(0, |d| i64::from(d - b'0'));
    }
    Ok(if neg { -v } else { v })
}

/// RFC 9460 checks on SVCB/HTTPS wire RDATA (Knot's `kzonecheck` rules):
/// keys in strictly increasing order, every `mandatory` key present and
/// `mandatory` not listing itself, values of the known keys well formed.
pub(crate) fn check_svcb_wire(b: &[u8]) -> Result<(), String> {
    let end = name_end(b, 2).ok_or("bad SvcPriority or TargetName")?;
    let mut pos = end;
    let mut keys: Vec<u16> = Vec::new();
    let mut mandatory: Vec<u16> = Vec::new();
    while pos < b.len() {
        let (Some(k), Some(l)) = (rd16(b, pos), rd16(b, pos + 2)) else {
            return Err("truncated SvcParam".into());
        };
        let v = b
            .get(pos + 4..pos + 4 + l as usize)
            .ok_or("SvcParam value runs past the RDATA")?;
        if let Some(&last) = keys.last()
            && k <= last
        {
            return Err(format!(
                "SvcParam keys out of order: {} after {} (RFC 9460 §2.2 wants strictly increasing keys)",
                super::svcb::key_name(k),
                super::svcb::key_name(last)
            ));
        }
        super::svcb::check_value(k, v)?;
        if k == 0 {
            mandatory = v
                .chunks_exact(2)
                .map(|c| u16::from_be_bytes([c[0], c[1]]))
                .collect();
        }
        keys.push(k);
        pos += 4 + l as usize;
    }
    for m in mandatory {
        if !keys.contains(&m) {
            return Err(format!(
                "mandatory SvcParam {} is missing (RFC 9460 §8)",
                super::svcb::key_name(m)
            ));
        }
    }
    if keys.contains(&2) && !keys.contains(&1) {
        return Err("no-default-alpn needs alpn (RFC 9460 §7.1.1)".into());
    }
    Ok(())
}

fn rd16(b: &[u8], i: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(i)?, *b.get(i + 1)?]))
}

impl Fields<'_> {
    /// Like `count`, for types whose last field may be split into several
    /// tokens (hex and base64 may contain spaces).
    pub(crate) fn at_least(&self, names: &[&str]) -> Result<(), FieldError> {
        if let Some(missing) = names.get(self.tokens.len()) {
            return Err(FieldError {
                line: self.tokens.last().map_or(self.entry_line, |t| t.line),
                reason: format!(
                    "{} record is missing its {missing} field",
                    type_name(self.rtype)
                ),
            });
        }
        Ok(())
    }

    /// Tokens from `i` on, joined: the text of a hex or base64 field.
    fn joined(&self, i: usize) -> Result<String, FieldError> {
        let mut s = String::new();
        for k in i..self.tokens.len() {
            s.push_str(self.plain(k)?);
        }
        Ok(s)
    }

    pub(crate) fn hex_from(&self, i: usize, what: &str) -> Result<Vec<u8>, FieldError> {
        let s = self.joined(i)?;
        if !s.len().is_multiple_of(2) {
            return Err(self.err(i, format!("{what} has an odd number of hex digits")));
        }
        HEXLOWER_PERMISSIVE
            .decode(s.as_bytes())
            .map_err(|_| self.err(i, format!("{what} is not valid hex")))
    }

    fn base64_from(&self, i: usize, what: &str) -> Result<Vec<u8>, FieldError> {
        let s = self.joined(i)?;
        let v = BASE64
            .decode(s.as_bytes())
            .map_err(|_| self.err(i, format!("{what} is not valid base64")))?;
        if v.is_empty() {
            return Err(self.err(i, format!("{what} is empty")));
        }
        Ok(v)
    }

    /// A `<character-string>` (RFC 1035 §3.3), quoted or not.
    fn char_string(&self, i: usize, out: &mut Vec<u8>) -> Result<(), FieldError> {
        let t = &self.tokens[i];
        if t.bytes.len() > 255 {
            return Err(self.err(i, "character string is longer than 255 bytes".into()));
        }
        out.push(t.bytes.len() as u8);
        out.extend_from_slice(&t.bytes);
        Ok(())
    }
}
