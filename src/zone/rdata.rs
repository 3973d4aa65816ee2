//! RDATA from master-file tokens, built as hickory-proto types (the
//! RFC 1035 types and CAA here; the rest in [`super::types`]). Relative
//! names are completed against the origin in force at the record, so RDATA
//! names come out absolute.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use hickory_proto::rr::rdata::{A, AAAA, CNAME, MX, NS, PTR, SOA, SRV, TXT};
use hickory_proto::rr::{Name, RData, RecordType};
use hickory_proto::serialize::binary::{BinDecoder, Restrict};
use hickory_proto::serialize::txt::parse_ttl;

use super::fields::{FieldError, Fields, extra_type};
use super::lexer::Token;

/// The record types this server loads, by mnemonic or RFC 3597 `TYPEnnn`;
/// anything else is refused with `unsupported record type X`.
pub(crate) fn supported_type(mnemonic: &str) -> Result<Option<RecordType>, String> {
    let upper = mnemonic.to_ascii_uppercase();
    if let Some(t) = super::types::generic_type(&upper)? {
        return Ok(Some(t));
    }
    Ok(Some(match upper.as_str() {
        "SOA" => RecordType::SOA,
        "NS" => RecordType::NS,
        "A" => RecordType::A,
        "AAAA" => RecordType::AAAA,
        "CNAME" => RecordType::CNAME,
        "MX" => RecordType::MX,
        "TXT" => RecordType::TXT,
        "SRV" => RecordType::SRV,
        "CAA" => RecordType::CAA,
        "PTR" => RecordType::PTR,
        other => return Ok(extra_type(other)),
    }))
}

/// Types RDATA is built for as hickory's typed RDATA (the answer tree
/// compresses their names); every other type is kept as wire bytes.
fn core_type(t: RecordType) -> bool {
    matches!(
        t,
        RecordType::SOA
            | RecordType::NS
            | RecordType::A
            | RecordType::AAAA
            | RecordType::CNAME
            | RecordType::MX
            | RecordType::TXT
            | RecordType::SRV
            | RecordType::CAA
            | RecordType::PTR
    )
}

/// Builds the RDATA of one record from the tokens after the type.
/// `entry_line` is used when a field is missing altogether.
pub(crate) fn parse_rdata(
    rtype: RecordType,
    tokens: &[Token],
    origin: &Name,
    entry_line: u32,
) -> Result<RData, FieldError> {
    let f = Fields {
        rtype,
        tokens,
        entry_line,
    };
    if let Some(t) = tokens.first()
        && !t.quoted
        && t.raw == "\\#"
    {
        // RFC 3597 §5: any type, known or not, in generic form.
        let bytes = super::types::generic_bytes(&f)?;
        super::types::validate_wire(rtype, &bytes).map_err(|e| f.err(0, e))?;
        if core_type(rtype) {
            let mut d = BinDecoder::new(&bytes);
            return RData::read(&mut d, rtype, Restrict::new(bytes.len() as u16))
                .map_err(|e| f.err(0, format!("invalid generic {rtype} RDATA: {e}")));
        }
        return Ok(super::types::opaque(rtype, bytes));
    }
    if !core_type(rtype) {
        let bytes = super::types::parse_extra(rtype, &f, origin)?;
        return Ok(super::types::opaque(rtype, bytes));
    }
    Ok(match rtype {
        RecordType::A => {
            f.count(&["address"])?;
            RData::A(A(f.parse(0, "IPv4 address", Ipv4Addr::from_str)?))
        }
        RecordType::AAAA => {
            f.count(&["address"])?;
            RData::AAAA(AAAA(f.parse(0, "IPv6 address", Ipv6Addr::from_str)?))
        }
        RecordType::NS => {
            f.count(&["name server"])?;
            RData::NS(NS(f.name(0, origin)?))
        }
        RecordType::CNAME => {
            f.count(&["target"])?;
            RData::CNAME(CNAME(f.name(0, origin)?))
        }
        RecordType::PTR => {
            f.count(&["target"])?;
            RData::PTR(PTR(f.name(0, origin)?))
        }
        RecordType::MX => {
            f.count(&["preference", "exchange"])?;
            RData::MX(MX::new(
                f.parse(0, "MX preference", u16::from_str)?,
                f.name(1, origin)?,
            ))
        }
        RecordType::SRV => {
            f.count(&["priority", "weight", "port", "target"])?;
            RData::SRV(SRV::new(
                f.parse(0, "SRV priority", u16::from_str)?,
                f.parse(1, "SRV weight", u16::from_str)?,
                f.parse(2, "SRV port", u16::from_str)?,
                f.name(3, origin)?,
            ))
        }
        RecordType::SOA => {
            f.count(&[
                "mname", "rname", "serial", "refresh", "retry", "expire", "minimum",
            ])?;
            // Timers accept TTL units ("1h") as BIND does; the serial does not.
            let timer = |i, what| -> Result<i32, FieldError> {
                let v = f.parse(i, what, parse_ttl)?;
                i32::try_from(v).map_err(|_| f.err(i, format!("SOA {what} {v} is above 2^31-1")))
            };
            RData::SOA(SOA::new(
                f.name(0, origin)?,
                f.name(1, origin)?,
                f.parse(2, "SOA serial", u32::from_str)?,
                timer(3, "refresh")?,
                timer(4, "retry")?,
                timer(5, "expire")?,
                f.parse(6, "SOA minimum", parse_ttl)?,
            ))
        }
        RecordType::TXT => {
            if tokens.is_empty() {
                return Err(FieldError {
                    line: entry_line,
                    reason: "TXT record needs at least one character string".into(),
                });
            }
            for t in tokens {
                if t.bytes.len() > 255 {
                    return Err(FieldError {
                        line: t.line,
                        reason: format!(
                            "TXT character string is {} bytes, the limit is 255 (split it into several quoted strings)",
                            t.bytes.len()
                        ),
                    });
                }
            }
            RData::TXT(TXT::from_bytes(
                tokens.iter().map(|t| t.bytes.as_slice()).collect(),
            ))
        }
        RecordType::CAA => caa(&f)?,
        other => {
            return Err(FieldError {
                line: entry_line,
                reason: format!("unsupported record type {other}"),
            });
        }
    })
}

/// CAA via hickory's own `RData::try_from_str`. It is safe here because we
/// hand it a value re-quoted with only `\"` and `\\` escapes, which its
/// lexer decodes correctly (it mis-decodes `\DDD`).
fn caa(f: &Fields<'_>) -> Result<RData, FieldError> {
    f.count(&["flags", "tag", "value"])?;
    let flags: u8 = f.parse(0, "CAA flags", u8::from_str)?;
    let tag = f.plain(1)?;
    // RFC 8659 §4.1: the tag is 1-15 ASCII letters and digits.
    if tag.is_empty() || tag.len() > 15 || !tag.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(f.err(1, format!("CAA tag '{tag}' must be 1-15 letters or digits")));
    }
    let value = std::str::from_utf8(f.tokens.get(2).map_or(&[][..], |t| &t.bytes))
        .map_err(|_| f.err(2, "CAA value is not valid UTF-8".into()))?;
    let quoted = value.replace('\\', "\\\\").replace('"', "\\\"");
    RData::try_from_str(RecordType::CAA, &format!("{flags} {tag} \"{quoted}\""))
        .map_err(|e| f.err(0, format!("invalid CAA record: {e}")))
}
