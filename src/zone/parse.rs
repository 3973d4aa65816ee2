//! Turns entries into records: owners, TTL/class defaults and the `$` directives.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use hickory_proto::rr::{DNSClass, Name, Record};
use hickory_proto::serialize::txt::parse_ttl;

use super::fields::parse_name;
use super::lexer::{Entry, Token, split_entries};
use super::rdata::{parse_rdata, supported_type};
use super::source::{SourcedRecord, ZoneError};

/// Deepest `$INCLUDE` nesting accepted (files below the top-level one); deeper is almost certainly a mistake
/// and the limit bounds work on hostile input.
pub const MAX_INCLUDE_DEPTH: usize = 10;

/// RFC 2181 §8: TTLs are 31-bit; BIND and Knot refuse larger values.
const MAX_TTL: u32 = i32::MAX as u32;

/// Collects the records and errors of a zone file and everything it includes.
pub(crate) struct Loader {
    pub records: Vec<SourcedRecord>,
    pub errors: Vec<ZoneError>,
    /// Files being read, outermost first, for cycle detection.
    stack: Vec<PathBuf>,
}

/// Per-file parsing state. `$INCLUDE` starts a fresh one and the including
/// file's state is untouched afterwards (RFC 1035 §5.1 says so for the
/// origin; we do the same for the TTL defaults and the owner).
#[derive(Clone)]
struct FileState {
    path: Arc<Path>,
    origin: Name,
    /// From `$TTL` (RFC 2308 §4).
    default_ttl: Option<u32>,
    /// The last TTL written on a record (RFC 1035 §5.1 default).
    last_ttl: Option<u32>,
    /// Owner for entries starting with a blank.
    last_owner: Option<Name>,
}

impl Loader {
    pub fn new() -> Self {
        Self {
            records: Vec::new(),
            errors: Vec::new(),
            stack: Vec::new(),
        }
    }

    /// Loads the top-level text of a zone.
    pub fn load_top(&mut self, text: &str, path: &Path, origin: &Name) {
        self.stack.push(identity(path));
        let state = FileState {
            path: Arc::from(path),
            origin: origin.clone(),
            default_ttl: None,
            last_ttl: None,
            last_owner: None,
        };
        self.load_text(text, state);
        self.stack.pop();
    }

    fn error(&mut self, path: &Arc<Path>, line: u32, reason: impl Into<String>) {
        self.errors.push(ZoneError {
            file: path.to_path_buf(),
            line,
            reason: reason.into(),
        });
    }

    fn load_text(&mut self, text: &str, mut st: FileState) {
        for entry in split_entries(text) {
            match entry {
                Err(e) => {
                    let path = st.path.clone();
                    self.error(&path, e.line, e.reason);
                }
                Ok(entry) => {
                    if let Err((line, reason)) = self.entry(&entry, &mut st) {
                        let path = st.path.clone();
                        self.error(&path, line, reason);
                    }
                }
            }
        }
    }

    fn entry(&mut self, entry: &Entry, st: &mut FileState) -> Result<(), (u32, String)> {
        let Some(first) = entry.tokens.first() else {
            return Ok(());
        };
        if !entry.blank_start && !first.quoted && first.raw.starts_with('$') {
            return self.directive(entry, st);
        }
        let rest;
        let owner = if entry.blank_start {
            rest = &entry.tokens[..];
            st.last_owner.clone().ok_or((
                entry.line,
                "line starts with a blank but there is no previous owner name to inherit"
                    .to_string(),
            ))?
        } else {
            rest = entry.tokens.get(1..).unwrap_or_default();
            // Forget the old owner first so a bad owner is not silently
            // replaced by the previous one on following blank-start lines.
            st.last_owner = None;
            let owner = owner_name(first, &st.origin)?;
            st.last_owner = Some(owner.clone());
            owner
        };
        let record = self.record(owner, rest, entry.line, st)?;
        self.records.push(SourcedRecord {
            record,
            file: st.path.clone(),
            line: entry.line,
        });
        Ok(())
    }

    /// `[<TTL>] [<class>] <type> <RDATA>` or `[<class>] [<TTL>] <type> <RDATA>`.
    fn record(
        &mut self,
        owner: Name,
        tokens: &[Token],
        line: u32,
        st: &mut FileState,
    ) -> Result<Record, (u32, String)> {
        let mut ttl: Option<u32> = None;
        let mut class_seen = false;
        let mut i = 0;
        let rtype = loop {
            let Some(t) = tokens.get(i) else {
                return Err((line, "missing record type".into()));
            };
            if t.quoted {
                return Err((
                    t.line,
                    format!(
                        "expected TTL, class or type, found quoted string \"{}\"",
                        t.raw
                    ),
                ));
            }
            let word = t.raw.as_str();
            if word.starts_with(|c: char| c.is_ascii_digit()) {
                if ttl.is_some() {
                    return Err((t.line, format!("second TTL '{word}' in one record")));
                }
                ttl = Some(ttl_value(word).map_err(|r| (t.line, r))?);
            } else if is_class(word) {
                if class_seen {
                    return Err((t.line, format!("second class '{word}' in one record")));
                }
                if !word.eq_ignore_ascii_case("IN") && !word.eq_ignore_ascii_case("CLASS1") {
                    return Err((
                        t.line,
                        format!("unsupported class {word} (only IN is served)"),
                    ));
                }
                class_seen = true;
            } else {
                break supported_type(word)
                    .map_err(|e| (t.line, e))?
                    .ok_or_else(|| {
                        (
                            t.line,
                            format!("unsupported record type {}", word.to_ascii_uppercase()),
                        )
                    })?;
            }
            i += 1;
        };
        let rdata = parse_rdata(rtype, &tokens[i + 1..], &st.origin, line)
            .map_err(|e| (e.line, e.reason))?;

        // RFC 1035 §5.1 / RFC 2308 §4, as BIND: explicit TTL, else $TTL,
        // else the last explicit TTL. With none of them it is an error rather
        // than BIND's "use the SOA minimum": a guessed TTL is a silent bug.
        let ttl = match ttl {
            Some(t) => {
                st.last_ttl = Some(t);
                t
            }
            None => st.default_ttl.or(st.last_ttl).ok_or((
                line,
                "no TTL for this record and no $TTL or earlier TTL to default to".to_string(),
            ))?,
        };
        let mut record = Record::from_rdata(owner, ttl, rdata);
        record.dns_class = DNSClass::IN;
        Ok(record)
    }

    fn directive(&mut self, entry: &Entry, st: &mut FileState) -> Result<(), (u32, String)> {
        let [directive, args @ ..] = entry.tokens.as_slice() else {
            return Ok(());
        };
        let name = directive.raw.to_ascii_uppercase();
        let line = entry.line;
        match name.as_str() {
            "$ORIGIN" => {
                let [arg] = args else {
                    return Err((line, "$ORIGIN takes exactly one domain name".into()));
                };
                st.origin = parse_name(&arg.raw, &st.origin)
                    .map_err(|r| (arg.line, format!("invalid $ORIGIN: {r}")))?;
            }
            "$TTL" => {
                let [arg] = args else {
                    return Err((line, "$TTL takes exactly one TTL".into()));
                };
                st.default_ttl = Some(ttl_value(&arg.raw).map_err(|r| (arg.line, r))?);
            }
            "$INCLUDE" => {
                let (file, origin) = match args {
                    [file] => (file, st.origin.clone()),
                    [file, origin] => (
                        file,
                        parse_name(&origin.raw, &st.origin)
                            .map_err(|r| (origin.line, format!("invalid $INCLUDE origin: {r}")))?,
                    ),
                    _ => {
                        return Err((
                            line,
                            "$INCLUDE takes a file name and an optional origin".into(),
                        ));
                    }
                };
                self.include(file, origin, line, st)?;
            }
            other => return Err((line, format!("unsupported directive {other}"))),
        }
        Ok(())
    }

    fn include(
        &mut self,
        file: &Token,
        origin: Name,
        line: u32,
        st: &FileState,
    ) -> Result<(), (u32, String)> {
        let rel = std::str::from_utf8(&file.bytes)
            .map_err(|_| (line, "$INCLUDE file name is not valid UTF-8".to_string()))?;
        // Relative to the including file, not the working directory, so a
        // zone tree can be moved as a whole.
        let target = match st.path.parent() {
            Some(dir) => dir.join(rel),
            None => PathBuf::from(rel),
        };
        if self.stack.len() > MAX_INCLUDE_DEPTH {
            return Err((
                line,
                format!("$INCLUDE nested deeper than {MAX_INCLUDE_DEPTH} files"),
            ));
        }
        let id = identity(&target);
        if self.stack.contains(&id) {
            return Err((
                line,
                format!("$INCLUDE cycle: {} is already being read", target.display()),
            ));
        }
        let text = std::fs::read_to_string(&target).map_err(|e| {
            (
                line,
                format!("cannot read $INCLUDE file {}: {e}", target.display()),
            )
        })?;
        self.stack.push(id);
        let child = FileState {
            path: Arc::from(target.as_path()),
            origin,
            default_ttl: st.default_ttl,
            last_ttl: st.last_ttl,
            last_owner: None,
        };
        self.load_text(&text, child);
        self.stack.pop();
        Ok(())
    }
}

/// A path's identity for cycle detection: canonical when the file exists,
/// so `a/../b.zone` and `b.zone` are the same file.
fn identity(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
}

fn owner_name(tok: &Token, origin: &Name) -> Result<Name, (u32, String)> {
    if tok.quoted {
        return Err((
            tok.line,
            format!("owner name cannot be a quoted string \"{}\"", tok.raw),
        ));
    }
    parse_name(&tok.raw, origin).map_err(|r| (tok.line, format!("invalid owner name: {r}")))
}

fn ttl_value(text: &str) -> Result<u32, String> {
    let v = parse_ttl(text).map_err(|_| format!("invalid TTL '{text}'"))?;
    if v > MAX_TTL {
        return Err(format!("TTL {v} is above 2^31-1 (RFC 2181 §8)"));
    }
    Ok(v)
}

/// Class mnemonics (RFC 1035 §3.2.4, RFC 3597 `CLASSnnn`); disjoint from
/// type mnemonics, which is what makes TTL/class order free.
fn is_class(word: &str) -> bool {
    let upper = word.to_ascii_uppercase();
    matches!(upper.as_str(), "IN" | "CH" | "CS" | "HS" | "NONE" | "ANY")
        || upper
            .strip_prefix("CLASS")
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}
