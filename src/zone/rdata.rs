//! Domain names and RDATA from master-file tokens, built as hickory-proto types.
//!
//! Names are parsed here rather than by `Name::parse` because hickory decodes
//! `\DDD` as octal (RFC 1035 §5.1 says decimal) and would not preserve the
//! bytes of the escape. Relative names are completed against the origin in
//! force at the record, so RDATA names come out absolute.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use hickory_proto::rr::rdata::{A, AAAA, CNAME, MX, NS, PTR, SOA, SRV, TXT};
use hickory_proto::rr::{Name, RData, RecordType};
use hickory_proto::serialize::binary::{BinDecoder, Restrict};
use hickory_proto::serialize::txt::parse_ttl;

use super::lexer::Token;

/// An RDATA problem and the line it is on (a multi-line SOA reports the
/// line of the bad field, not of the owner).
pub(crate) struct FieldError {
    pub line: u32,
    pub reason: String,
}

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
        other => return Ok(super::types::extra_type(other)),
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

/// Parses a domain name as written in a master file: `@` is the origin, a
/// name without a trailing dot is relative to `origin`. Case is preserved.
pub(crate) fn parse_name(text: &str, origin: &Name) -> Result<Name, String> {
    if text == "@" {
        return Ok(origin.clone());
    }
    if text == "." {
        return Ok(Name::root());
    }
    if text.is_empty() {
        return Err("empty domain name".into());
    }
    let src = text.as_bytes();
    let mut labels: Vec<Vec<u8>> = Vec::new();
    let mut label = Vec::new();
    let mut absolute = false;
    let mut i = 0;
    while i < src.len() {
        match src[i] {
            b'.' => {
                if label.is_empty() {
                    return Err(format!("empty label in '{text}'"));
                }
                labels.push(std::mem::take(&mut label));
                if i + 1 == src.len() {
                    absolute = true;
                }
                i += 1;
            }
            b'\\' => {
                let digits = src.get(i + 1..i + 4).unwrap_or(&[]);
                if digits.len() == 3 && digits.iter().all(u8::is_ascii_digit) {
                    let v = digits
                        .iter()
                        .fold(0u32, |acc, d| acc * 10 + u32::from(d - b'0'));
                    let byte = u8::try_from(v)
                        .map_err(|_| format!("escape '\\{v:03}' is larger than 255"))?;
                    label.push(byte);
                    i += 4;
                } else if let Some(&c) = src.get(i + 1) {
                    if c.is_ascii_digit() {
                        return Err("escape '\\DDD' needs exactly three decimal digits".into());
                    }
                    label.push(c);
                    i += 2;
                } else {
                    return Err(format!("trailing '\\' in '{text}'"));
                }
            }
            c => {
                label.push(c);
                i += 1;
            }
        }
    }
    if !label.is_empty() {
        labels.push(label);
    }
    let name =
        Name::from_labels(labels).map_err(|e| format!("invalid domain name '{text}': {e}"))?;
    if absolute {
        Ok(name)
    } else {
        name.append_domain(origin)
            .map_err(|e| format!("'{text}' with origin {origin} is not a valid name: {e}"))
    }
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

/// Field access for one record's RDATA tokens, with errors naming the field.
pub(crate) struct Fields<'a> {
    pub(crate) rtype: RecordType,
    pub(crate) tokens: &'a [Token],
    pub(crate) entry_line: u32,
}

impl Fields<'_> {
    pub(crate) fn err(&self, i: usize, reason: String) -> FieldError {
        FieldError {
            line: self.tokens.get(i).map_or(self.entry_line, |t| t.line),
            reason,
        }
    }

    /// Checks the number of fields, naming the first missing one.
    pub(crate) fn count(&self, names: &[&str]) -> Result<(), FieldError> {
        if let Some(missing) = names.get(self.tokens.len()) {
            return Err(FieldError {
                line: self.tokens.last().map_or(self.entry_line, |t| t.line),
                reason: format!(
                    "{} record is missing its {missing} field",
                    super::types::type_name(self.rtype)
                ),
            });
        }
        if self.tokens.len() > names.len() {
            return Err(self.err(
                names.len(),
                format!(
                    "{} record has {} fields, expected {}; extra '{}'",
                    super::types::type_name(self.rtype),
                    self.tokens.len(),
                    names.len(),
                    self.tokens[names.len()].raw
                ),
            ));
        }
        Ok(())
    }

    /// An unquoted field's text.
    pub(crate) fn plain(&self, i: usize) -> Result<&str, FieldError> {
        let Some(t) = self.tokens.get(i) else {
            return Err(self.err(
                i,
                format!(
                    "{} record is missing a field",
                    super::types::type_name(self.rtype)
                ),
            ));
        };
        if t.quoted {
            return Err(self.err(i, format!("unexpected quoted string \"{}\"", t.raw)));
        }
        Ok(&t.raw)
    }

    pub(crate) fn parse<T, E>(
        &self,
        i: usize,
        what: &str,
        p: impl Fn(&str) -> Result<T, E>,
    ) -> Result<T, FieldError> {
        let text = self.plain(i)?;
        p(text).map_err(|_| self.err(i, format!("invalid {what} '{text}'")))
    }

    pub(crate) fn name(&self, i: usize, origin: &Name) -> Result<Name, FieldError> {
        let text = self.plain(i)?;
        parse_name(text, origin).map_err(|e| self.err(i, e))
    }
}
