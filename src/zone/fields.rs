//! The vocabulary of master-file records: domain names from text, the
//! record types by mnemonic, and field access whose errors name the field
//! and its line. [`super::rdata`] (RFC 1035 types) and [`super::types`]
//! (the rest) build RDATA with it.

use hickory_proto::rr::{Name, RecordType};

use super::lexer::Token;

/// An RDATA problem and the line it is on (a multi-line SOA reports the
/// line of the bad field, not of the owner).
pub(crate) struct FieldError {
    pub line: u32,
    pub reason: String,
}

/// Parses a domain name as written in a master file: `@` is the origin, a
/// name without a trailing dot is relative to `origin`. Case is preserved.
/// Not `Name::parse`: hickory decodes `\DDD` as octal (RFC 1035 §5.1 says
/// decimal) and would not preserve the bytes of the escape.
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

/// Types whose RDATA [`super::types`] builds, by mnemonic: every type of
/// the schema (the RFC 1035 ones are matched before, by `rdata`).
pub(crate) fn extra_type(mnemonic: &str) -> Option<RecordType> {
    super::schema::by_name(mnemonic).map(|s| RecordType::from(s.code))
}

/// A type's mnemonic for messages: hickory calls most of them `Unknown`;
/// we say `LOC` or `TYPE65280` (RFC 3597 §5).
pub(crate) fn type_name(t: RecordType) -> String {
    super::schema::type_name(u16::from(t))
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
                    type_name(self.rtype)
                ),
            });
        }
        if self.tokens.len() > names.len() {
            return Err(self.err(
                names.len(),
                format!(
                    "{} record has {} fields, expected {}; extra '{}'",
                    type_name(self.rtype),
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
                format!("{} record is missing a field", type_name(self.rtype)),
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
