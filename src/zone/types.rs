//! RDATA of the record types beyond RFC 1035's core, written straight to
//! wire form from master-file tokens, and the RFC 3597 generic `\# len hex`.
//!
//! The layout of each type comes from [`super::schema`]; this module reads
//! its fields from text, with a parser of its own for the few types whose
//! text is not a list of fields (LOC, APL, WKS, SVCB...). The result is
//! checked again with the schema's wire reader, so text and transfers
//! agree on what a well-formed record is.
//!
//! Each of these types is stored as hickory's `RData::Unknown` holding the
//! wire bytes. Why not hickory's typed RDATA (`SVCB`, `TLSA`, ...): its text
//! parsers go through the lexer that mis-decodes `\DDD` (see `super`), most
//! of these types have no hickory type at all, DS/DNSKEY need a crypto
//! feature, and the answer tree only needs the bytes: none of these types
//! has a name that may be compressed (RFC 3597 §4), so the bytes are exactly
//! what goes on the wire.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use data_encoding::{BASE32HEX_NOPAD, BASE64, HEXLOWER_PERMISSIVE};
use hickory_proto::rr::rdata::NULL;
use hickory_proto::rr::{RData, RecordType};

use super::fields::{FieldError, Fields, type_name};
use super::schema::{self, Kind, Special};

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
    if matches!(v, 0 | 41 | 128 | 249 | 250 | 251..=255) {
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
/// the layout of (as Knot does); unknown types are opaque.
pub(crate) fn validate_wire(rtype: RecordType, bytes: &[u8]) -> Result<(), String> {
    schema::check_rdata(u16::from(rtype), bytes).map_err(|e| {
        format!(
            "generic RDATA is not a valid {} record: {e}",
            type_name(rtype)
        )
    })
}

/// Builds the RDATA of `rtype` (one of [`extra_type`]) from its fields.
pub(crate) fn parse_extra(
    rtype: RecordType,
    f: &Fields<'_>,
    origin: &hickory_proto::rr::Name,
) -> Result<Vec<u8>, FieldError> {
    let code = u16::from(rtype);
    let Some(spec) = schema::by_code(code) else {
        return Err(f.err(
            0,
            format!(
                "record type {} has no text form here: write its RDATA as '\\# <length> <hex>' (RFC 3597)",
                type_name(rtype)
            ),
        ));
    };
    let mut out = Vec::new();
    let mut i = 0;
    for (what, kind) in spec.fields {
        i = text_field(f, what, *kind, i, origin, &mut out)?;
    }
    if i < f.tokens.len() {
        return Err(f.err(
            i,
            format!(
                "{} record has an extra field '{}'",
                spec.name, f.tokens[i].raw
            ),
        ));
    }
    post_check(code, f, &out)?;
    // The same checks a transfer's RDATA gets.
    schema::check_rdata(code, &out).map_err(|e| f.err(0, e))?;
    Ok(out)
}

/// Rules beyond the layout, where BIND or Knot check them in text.
fn post_check(code: u16, f: &Fields<'_>, out: &[u8]) -> Result<(), FieldError> {
    match code {
        // DS, CDS, TA, DLV: RFC 4509, 6605 §2 and 4034 §5.1.4: the digest
        // lengths of the known digest types.
        43 | 59 | 32768 | 32769 => {
            let dtype = out[3];
            let want = match dtype {
                1 => Some(20),
                2 => Some(32),
                4 => Some(48),
                _ => None,
            };
            let got = out.len() - 4;
            if let Some(w) = want
                && got != w
            {
                return Err(f.err(
                    3,
                    format!(
                        "{} digest type {dtype} needs a {w}-byte digest, this one is {got} bytes",
                        type_name(RecordType::from(code))
                    ),
                ));
            }
        }
        // DNSKEY, CDNSKEY (RFC 4034 §2.1.2).
        48 | 60 if out[2] != 3 => {
            return Err(f.err(
                1,
                format!(
                    "{} protocol must be 3, not {}",
                    type_name(RecordType::from(code)),
                    out[2]
                ),
            ));
        }
        // X25 (RFC 1183 §3.1): at least four digits.
        19 if out.len() < 5 || !out[1..].iter().all(u8::is_ascii_digit) => {
            return Err(f.err(0, "X25 address must be at least 4 digits".into()));
        }
        _ => {}
    }
    Ok(())
}

/// Reads one field of `kind` from token `i` on; returns the next token.
fn text_field(
    f: &Fields<'_>,
    what: &str,
    kind: Kind,
    i: usize,
    origin: &hickory_proto::rr::Name,
    out: &mut Vec<u8>,
) -> Result<usize, FieldError> {
    let n = f.tokens.len();
    let optional = matches!(
        kind,
        Kind::StrOpt | Kind::Bitmap | Kind::OldBitmap | Kind::Special(Special::Apl)
    );
    if i >= n && !optional {
        return Err(FieldError {
            line: f.tokens.last().map_or(f.entry_line, |t| t.line),
            reason: format!("{} record is missing its {what} field", type_name(f.rtype)),
        });
    }
    Ok(match kind {
        Kind::U8 => {
            out.push(f.parse(i, what, u8::from_str)?);
            i + 1
        }
        Kind::U16 => {
            out.extend(f.parse(i, what, u16::from_str)?.to_be_bytes());
            i + 1
        }
        Kind::U32 => {
            out.extend(f.parse(i, what, u32::from_str)?.to_be_bytes());
            i + 1
        }
        Kind::Ttl => {
            let v = f.parse(i, what, hickory_proto::serialize::txt::parse_ttl)?;
            out.extend(v.to_be_bytes());
            i + 1
        }
        Kind::Alg => {
            out.push(algorithm(f, i)?);
            i + 1
        }
        Kind::Type => {
            let w = f.plain(i)?;
            let t = schema::type_code(w)
                .ok_or_else(|| f.err(i, format!("invalid record type '{w}'")))?;
            out.extend(t.to_be_bytes());
            i + 1
        }
        Kind::Time => {
            out.extend(f.parse(i, what, dnssec_time)?.to_be_bytes());
            i + 1
        }
        Kind::CertType => {
            let word = f.plain(i)?;
            let ctype = cert_type(word)
                .or_else(|| u16::from_str(word).ok())
                .ok_or_else(|| f.err(i, format!("invalid CERT type '{word}'")))?;
            out.extend(ctype.to_be_bytes());
            i + 1
        }
        Kind::Name => {
            name_wire(&f.name(i, origin)?, out);
            i + 1
        }
        Kind::Str => {
            f.char_string(i, out)?;
            i + 1
        }
        Kind::StrOpt => {
            if i < n {
                f.char_string(i, out)?;
                i + 1
            } else {
                i
            }
        }
        Kind::Strs => {
            for k in i..n {
                f.char_string(k, out)?;
            }
            n
        }
        Kind::Hex { .. } => {
            out.extend(f.hex_from(i, what)?);
            n
        }
        Kind::B64 { dash } => {
            if !(dash && n == i + 1 && f.plain(i)? == "-") {
                out.extend(f.base64_from(i, what)?);
            }
            n
        }
        Kind::Salt => {
            let w = f.plain(i)?;
            let salt = if w == "-" {
                Vec::new()
            } else {
                HEXLOWER_PERMISSIVE
                    .decode(w.as_bytes())
                    .map_err(|_| f.err(i, format!("{what} is not valid hex")))?
            };
            if salt.len() > 255 {
                return Err(f.err(i, format!("{what} is longer than 255 bytes")));
            }
            out.push(salt.len() as u8);
            out.extend(salt);
            i + 1
        }
        Kind::Hash => {
            let w = f.plain(i)?.to_ascii_uppercase();
            let h = BASE32HEX_NOPAD
                .decode(w.as_bytes())
                .map_err(|_| f.err(i, format!("{what} is not valid base32hex")))?;
            if h.is_empty() || h.len() > 255 {
                return Err(f.err(i, format!("{what} must be 1 to 255 bytes")));
            }
            out.push(h.len() as u8);
            out.extend(h);
            i + 1
        }
        Kind::Ipv4 => {
            out.extend(f.parse(i, "IPv4 address", Ipv4Addr::from_str)?.octets());
            i + 1
        }
        Kind::Ipv6 => {
            out.extend(f.parse(i, "IPv6 address", Ipv6Addr::from_str)?.octets());
            i + 1
        }
        Kind::Bitmap => {
            let mut types = Vec::new();
            for k in i..n {
                let w = f.plain(k)?;
                types.push(
                    schema::type_code(w)
                        .ok_or_else(|| f.err(k, format!("invalid record type '{w}'")))?,
                );
            }
            schema::write_bitmap(&mut types, out);
            n
        }
        Kind::OldBitmap => {
            let mut bits = [0u8; 16];
            let mut len = 0;
            for k in i..n {
                let w = f.plain(k)?;
                let t = schema::type_code(w)
                    .filter(|&t| t < 128)
                    .ok_or_else(|| f.err(k, format!("'{w}' is not a type below 128")))?;
                bits[usize::from(t / 8)] |= 0x80 >> (t % 8);
                len = len.max(usize::from(t / 8) + 1);
            }
            out.extend(&bits[..len]);
            n
        }
        Kind::Eui(bytes) => {
            let w = f.plain(i)?;
            let parts: Vec<&str> = w.split('-').collect();
            let ok = parts.len() == usize::from(bytes)
                && parts
                    .iter()
                    .all(|p| p.len() == 2 && p.bytes().all(|b| b.is_ascii_hexdigit()));
            if !ok {
                return Err(f.err(
                    i,
                    format!("invalid {what} '{w}' (want {bytes} hex pairs joined by '-')"),
                ));
            }
            for p in parts {
                out.push(u8::from_str_radix(p, 16).expect("checked hex"));
            }
            i + 1
        }
        Kind::Ilnp64 => {
            let w = f.plain(i)?;
            let parts: Vec<&str> = w.split(':').collect();
            let ok = parts.len() == 4
                && parts.iter().all(|p| {
                    (1..=4).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_hexdigit())
                });
            if !ok {
                return Err(f.err(
                    i,
                    format!(
                        "invalid {what} '{w}' (want four groups of hex like 0014:4fff:ff20:ee64)"
                    ),
                ));
            }
            for p in parts {
                out.extend(
                    u16::from_str_radix(p, 16)
                        .expect("checked hex")
                        .to_be_bytes(),
                );
            }
            i + 1
        }
        Kind::Special(s) => special(f, s, i, origin, out)?,
    })
}

/// The types whose text is not a list of fields.
fn special(
    f: &Fields<'_>,
    s: Special,
    i: usize,
    origin: &hickory_proto::rr::Name,
    out: &mut Vec<u8>,
) -> Result<usize, FieldError> {
    let n = f.tokens.len();
    Ok(match s {
        Special::Generic => {
            return Err(f.err(
                0,
                format!(
                    "record type {} has no text form: write its RDATA as '\\# <length> <hex>' (RFC 3597)",
                    type_name(f.rtype)
                ),
            ));
        }
        Special::Loc => {
            loc(f, out)?;
            n
        }
        Special::Uri => {
            // RFC 7553 §4.5: the target is the rest of the RDATA, not a
            // length-prefixed character string.
            f.count(&["priority", "weight", "target"])?;
            out.extend(f.parse(0, "URI priority", u16::from_str)?.to_be_bytes());
            out.extend(f.parse(1, "URI weight", u16::from_str)?.to_be_bytes());
            let t = &f.tokens[2];
            if !t.quoted || t.bytes.is_empty() {
                return Err(f.err(2, "URI target must be a non-empty quoted string".into()));
            }
            out.extend(&t.bytes);
            n
        }
        Special::Svcb => {
            // RFC 9460 §2.1
            f.at_least(&["priority", "target"])?;
            out.extend(f.parse(0, "SvcPriority", u16::from_str)?.to_be_bytes());
            name_wire(&f.name(1, origin)?, out);
            let params = super::svcb::parse_params(&f.tokens[2..])
                .map_err(|(i, reason)| f.err(i + 2, reason))?;
            out.extend(params);
            super::svcb::check_wire(out).map_err(|e| f.err(0, e))?;
            n
        }
        // Parsed by hickory (a core type); never reaches here.
        Special::Caa => return Err(f.err(0, "CAA is parsed elsewhere".into())),
        Special::Wks => {
            // RFC 1035 §3.4.2: address, protocol, services as a bitmap.
            f.at_least(&["address", "protocol"])?;
            out.extend(f.parse(i, "IPv4 address", Ipv4Addr::from_str)?.octets());
            let proto = f.plain(i + 1)?;
            out.push(match proto.to_ascii_lowercase().as_str() {
                "tcp" => 6,
                "udp" => 17,
                p => u8::from_str(p)
                    .map_err(|_| f.err(i + 1, format!("invalid WKS protocol '{proto}'")))?,
            });
            let mut bits = Vec::new();
            for k in i + 2..n {
                let w = f.plain(k)?;
                let port = service_port(w).ok_or_else(|| {
                    f.err(
                        k,
                        format!("unknown WKS service '{w}' (give its port number)"),
                    )
                })?;
                let byte = usize::from(port / 8);
                if bits.len() <= byte {
                    bits.resize(byte + 1, 0);
                }
                bits[byte] |= 0x80 >> (port % 8);
            }
            out.extend(bits);
            n
        }
        Special::Nsap => {
            // RFC 1706 §5: "0x" and hex digits, dots anywhere.
            let w = f.plain(i)?;
            let hex: String = w
                .strip_prefix("0x")
                .or_else(|| w.strip_prefix("0X"))
                .ok_or_else(|| f.err(i, "NSAP address must start with 0x".into()))?
                .chars()
                .filter(|&c| c != '.')
                .collect();
            if hex.is_empty() || !hex.len().is_multiple_of(2) {
                return Err(f.err(i, "NSAP address needs an even number of hex digits".into()));
            }
            out.extend(
                HEXLOWER_PERMISSIVE
                    .decode(hex.as_bytes())
                    .map_err(|_| f.err(i, "NSAP address is not valid hex".into()))?,
            );
            i + 1
        }
        Special::Atma => {
            // ATM Forum AF-DANS-0152: "+" and E.164 digits (format 1),
            // else hex AESA (format 0).
            let w = f.plain(i)?;
            if let Some(digits) = w.strip_prefix('+') {
                if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(f.err(i, format!("invalid E.164 ATMA address '{w}'")));
                }
                out.push(1);
                out.extend(digits.bytes());
            } else {
                let hex: String = w.chars().filter(|&c| c != '.').collect();
                out.push(0);
                out.extend(
                    HEXLOWER_PERMISSIVE
                        .decode(hex.as_bytes())
                        .map_err(|_| f.err(i, format!("invalid ATMA address '{w}'")))?,
                );
            }
            i + 1
        }
        Special::A6 => {
            // RFC 2874 §3.1.1: prefix length, address suffix, prefix name.
            let p: u8 = f.parse(i, "A6 prefix length", u8::from_str)?;
            if p > 128 {
                return Err(f.err(i, format!("A6 prefix length {p} is above 128")));
            }
            out.push(p);
            let mut k = i + 1;
            if p < 128 {
                let a = f
                    .parse(k, "A6 address suffix", Ipv6Addr::from_str)?
                    .octets();
                out.extend(&a[16 - schema::a6_suffix_len(p)..]);
                k += 1;
            }
            if p > 0 {
                name_wire(&f.name(k, origin)?, out);
                k += 1;
            }
            k
        }
        Special::Apl => {
            // RFC 3123 §4: [!]afi:address/prefix ...
            for k in i..n {
                let w = f.plain(k)?;
                let bad = || {
                    f.err(
                        k,
                        format!(
                            "invalid APL item '{w}' (want [!]1:192.0.2.0/24 or [!]2:2001:db8::/32)"
                        ),
                    )
                };
                let (neg, rest) = match w.strip_prefix('!') {
                    Some(r) => (true, r),
                    None => (false, w),
                };
                let (afi, rest) = rest.split_once(':').ok_or_else(bad)?;
                let (addr, prefix) = rest.split_once('/').ok_or_else(bad)?;
                let prefix: u8 = prefix.parse().map_err(|_| bad())?;
                let mut bytes = match afi {
                    "1" if prefix <= 32 => addr
                        .parse::<Ipv4Addr>()
                        .map_err(|_| bad())?
                        .octets()
                        .to_vec(),
                    "2" if prefix <= 128 => addr
                        .parse::<Ipv6Addr>()
                        .map_err(|_| bad())?
                        .octets()
                        .to_vec(),
                    _ => return Err(bad()),
                };
                while bytes.last() == Some(&0) {
                    bytes.pop();
                }
                out.extend(afi.parse::<u16>().expect("1 or 2").to_be_bytes());
                out.push(prefix);
                out.push(u8::from(neg) << 7 | bytes.len() as u8);
                out.extend(bytes);
            }
            n
        }
        Special::IpsecKey => {
            // RFC 4025 §3.1: precedence, gateway type, algorithm, gateway, key.
            f.at_least(&["precedence", "gateway type", "algorithm", "gateway"])?;
            out.push(f.parse(i, "IPSECKEY precedence", u8::from_str)?);
            let gw: u8 = f.parse(i + 1, "IPSECKEY gateway type", u8::from_str)?;
            out.push(gw);
            out.push(f.parse(i + 2, "IPSECKEY algorithm", u8::from_str)?);
            gateway(f, gw, i + 3, origin, out, "IPSECKEY gateway")?;
            if n > i + 4 {
                out.extend(f.base64_from(i + 4, "public key")?);
            }
            n
        }
        Special::AmtRelay => {
            // RFC 8777 §4.3: precedence, discovery-optional, type, relay.
            f.at_least(&["precedence", "discovery optional", "type", "relay"])?;
            out.push(f.parse(i, "AMTRELAY precedence", u8::from_str)?);
            let d: u8 = f.parse(i + 1, "AMTRELAY discovery optional", u8::from_str)?;
            if d > 1 {
                return Err(f.err(i + 1, "AMTRELAY discovery optional must be 0 or 1".into()));
            }
            let t: u8 = f.parse(i + 2, "AMTRELAY type", u8::from_str)?;
            if t > 0x7F {
                return Err(f.err(i + 2, "AMTRELAY type is above 127".into()));
            }
            out.push(d << 7 | t);
            gateway(f, t, i + 3, origin, out, "AMTRELAY relay")?;
            i + 4
        }
        Special::Hip => {
            // RFC 8005 §5: algorithm, HIT (hex), public key (base64), servers.
            f.at_least(&["algorithm", "HIT", "public key"])?;
            let alg: u8 = f.parse(i, "HIP algorithm", u8::from_str)?;
            let hit = HEXLOWER_PERMISSIVE
                .decode(f.plain(i + 1)?.as_bytes())
                .map_err(|_| f.err(i + 1, "HIP HIT is not valid hex".into()))?;
            let pk = BASE64
                .decode(f.plain(i + 2)?.as_bytes())
                .map_err(|_| f.err(i + 2, "HIP public key is not valid base64".into()))?;
            if hit.is_empty() || hit.len() > 255 || pk.is_empty() || pk.len() > 65535 {
                return Err(f.err(i + 1, "HIP HIT or public key empty or too long".into()));
            }
            out.push(hit.len() as u8);
            out.push(alg);
            out.extend((pk.len() as u16).to_be_bytes());
            out.extend(hit);
            out.extend(pk);
            for k in i + 3..n {
                name_wire(&f.name(k, origin)?, out);
            }
            n
        }
    })
}

/// IPSECKEY's gateway and AMTRELAY's relay: none (`.`), IPv4, IPv6 or a name.
fn gateway(
    f: &Fields<'_>,
    kind: u8,
    i: usize,
    origin: &hickory_proto::rr::Name,
    out: &mut Vec<u8>,
    what: &str,
) -> Result<(), FieldError> {
    match kind {
        0 => {
            if f.plain(i)? != "." {
                return Err(f.err(i, format!("{what} of type 0 must be '.'")));
            }
        }
        1 => out.extend(f.parse(i, what, Ipv4Addr::from_str)?.octets()),
        2 => out.extend(f.parse(i, what, Ipv6Addr::from_str)?.octets()),
        3 => name_wire(&f.name(i, origin)?, out),
        t => return Err(f.err(i, format!("{what} type {t} is not 0, 1, 2 or 3"))),
    }
    Ok(())
}

/// A few well-known service names for WKS (BIND reads /etc/services).
fn service_port(w: &str) -> Option<u16> {
    if let Ok(p) = u16::from_str(w) {
        return Some(p);
    }
    Some(match w.to_ascii_lowercase().as_str() {
        "ftp" => 21,
        "ssh" => 22,
        "telnet" => 23,
        "smtp" => 25,
        "domain" => 53,
        "http" | "www" => 80,
        "pop3" => 110,
        "ntp" => 123,
        "imap" => 143,
        "snmp" => 161,
        "ldap" => 389,
        "https" => 443,
        _ => return None,
    })
}

/// RRSIG/SIG time (RFC 4034 §3.2): `YYYYMMDDHHmmSS` in UTC, or seconds.
fn dnssec_time(s: &str) -> Result<u32, ()> {
    if s.len() != 14 {
        return u32::from_str(s).map_err(drop);
    }
    if !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(());
    }
    let n = |a: usize, b: usize| -> i64 { s[a..b].parse().expect("digits") };
    let (y, mo, d, h, mi, se) = (n(0, 4), n(4, 6), n(6, 8), n(8, 10), n(10, 12), n(12, 14));
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 60 {
        return Err(());
    }
    // Days since the epoch (Howard Hinnant's civil-from-days inverse).
    let yy = if mo <= 2 { y - 1 } else { y };
    let era = yy.div_euclid(400);
    let yoe = yy - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    // Serial arithmetic: the value is taken modulo 2^32 (RFC 4034 §3.1.5).
    Ok((days * 86_400 + h * 3600 + mi * 60 + se) as u32)
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
