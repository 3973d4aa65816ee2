//! The YAML layer under every file geosteer reads (`geosteer.yaml`, pools
//! files, `geodb build` sources), and the `file:line: reason` error they
//! all report: serde-saphyr with a budget
//! sized for real files (a pools file of 200,000 hosts loads) that still
//! stops hostile ones (alias bombs, absurd nesting), errors in the
//! operator's words (file, line, key path, what was expected; never a
//! library's type names or hints), and [`Codes`] that stay the codes they
//! are whatever YAML 1.1 makes of them (`NO` is Norway, not false).

use std::cell::{Cell, RefCell};
use std::collections::HashSet;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::de::{self, Deserialize, Deserializer, Visitor};
use serde_saphyr::budget::BudgetBreach;
use serde_saphyr::granit_parser::{Event, Parser};
use serde_saphyr::{Budget, Error, Location, Options, Spanned};

/// One problem in one input file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    pub file: PathBuf,
    /// 1-based; 0 when the problem has no single line (a missing file).
    pub line: u32,
    pub reason: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line > 0 {
            write!(f, "{}:{}: {}", self.file.display(), self.line, self.reason)
        } else {
            write!(f, "{}: {}", self.file.display(), self.reason)
        }
    }
}

impl ConfigError {
    pub fn new(file: &Path, line: u32, reason: impl Into<String>) -> ConfigError {
        ConfigError {
            file: file.to_path_buf(),
            line,
            reason: reason.into(),
        }
    }
}

/// Environment variable raising [`DEFAULT_ALIAS_NODES`].
pub const ALIAS_NODES_ENV: &str = "GEOSTEER_YAML_MAX_ALIAS_NODES";
/// Environment variable raising [`DEFAULT_DEPTH`].
pub const DEPTH_ENV: &str = "GEOSTEER_YAML_MAX_DEPTH";

/// Nodes that aliases (`*name`) may replay in one file. Each replayed node
/// costs memory without costing file bytes, so this is the one limit that
/// does not grow with the file: 200,000 hosts each naming a 150-edge list
/// through an alias replay 30 million; a billion-laughs file of a few
/// lines asks for billions.
pub const DEFAULT_ALIAS_NODES: usize = 40_000_000;

/// Nesting (maps and lists inside each other). geosteer's files need
/// fewer than ten levels; hundreds only come from broken or hostile files,
/// and each level costs stack.
pub const DEFAULT_DEPTH: usize = 64;

/// The limits in force: the defaults, or what the environment says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub alias_nodes: usize,
    pub depth: usize,
}

impl Limits {
    /// The defaults, raised (or lowered) by [`ALIAS_NODES_ENV`] and
    /// [`DEPTH_ENV`] when they hold a number.
    pub fn from_env() -> Limits {
        let read = |var: &str, default: usize| {
            std::env::var(var)
                .ok()
                .and_then(|v| v.trim().replace('_', "").parse().ok())
                .unwrap_or(default)
        };
        Limits {
            alias_nodes: read(ALIAS_NODES_ENV, DEFAULT_ALIAS_NODES),
            depth: read(DEPTH_ENV, DEFAULT_DEPTH),
        }
    }

    /// serde-saphyr's options for a text of `len` bytes. Its counts of
    /// values, events and scalar bytes include what aliases replay, so
    /// they are allowed what the file can hold plus the replay cap: a real
    /// file never meets them, and the replay cap (with depth) is what
    /// stops a hostile one.
    fn options(self, len: usize) -> Options {
        let mut b = Budget::default();
        let room = len.saturating_add(SMALL_FILE);
        let nodes = room.saturating_add(self.alias_nodes);
        b.max_nodes = b.max_nodes.max(nodes);
        b.max_events = b.max_events.max(nodes.saturating_mul(2));
        // Replayed scalars are short names in real files; long ones
        // replayed millions of times are a bomb of their own.
        b.max_total_scalar_bytes = b
            .max_total_scalar_bytes
            .max(len.saturating_add(self.alias_nodes.saturating_mul(8)));
        b.max_aliases = b.max_aliases.max(room);
        b.max_anchors = b.max_anchors.max(room);
        b.max_merge_keys = b.max_merge_keys.max(room);
        b.max_recorded_anchor_events = b.max_recorded_anchor_events.max(room);
        b.max_recorded_anchor_bytes = b.max_recorded_anchor_bytes.max(room);
        // Many aliases of few anchors is exactly a shared edge list used
        // by many hosts; the replay cap below is what stops bombs.
        b.enforce_alias_anchor_ratio = false;
        b.max_depth = self.depth;
        let mut o = Options::default();
        o.budget = Some(b);
        o.alias_limits.max_total_replayed_events = self.alias_nodes;
        o.with_snippet = false;
        o.emit_comments = false;
        o
    }
}

/// What any file may hold beyond its size-bound counts (serde-saphyr's own
/// default for values).
const SMALL_FILE: usize = 250_000;

thread_local! {
    /// The text being parsed, while [`parse`] runs on this thread, so a
    /// [`Codes`] scalar can be read as written.
    static SOURCE: Cell<Option<(*const u8, usize)>> = const { Cell::new(None) };
    /// The [`NameAt`]s seen by the parse running on this thread.
    static NAMES: RefCell<HashSet<Arc<str>>> = RefCell::new(HashSet::new());
}

/// Restores the previous [`SOURCE`] (parses do not nest today, but may)
/// and, for the outermost parse, empties [`NAMES`].
struct SourceGuard(Option<(*const u8, usize)>);

impl Drop for SourceGuard {
    fn drop(&mut self) {
        SOURCE.with(|s| s.set(self.0));
        if self.0.is_none() {
            NAMES.with(|n| *n.borrow_mut() = HashSet::new());
        }
    }
}

/// One shared copy of `s` while a parse runs (a fresh one otherwise).
pub(crate) fn intern(s: &str) -> Arc<str> {
    if SOURCE.with(Cell::get).is_none() {
        return Arc::from(s);
    }
    NAMES.with(|n| {
        let mut n = n.borrow_mut();
        if let Some(a) = n.get(s) {
            return a.clone();
        }
        let a: Arc<str> = Arc::from(s);
        n.insert(a.clone());
        a
    })
}

/// A name in a list (an edge a host or rule names) and its line. While a
/// file is parsed equal names share one string, and a list is kept at its
/// length: 200,000 hosts naming 40 edges each are 8 million of these at 24
/// bytes, where `Spanned<String>` in a growing `Vec` took about 160.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameAt {
    pub text: Arc<str>,
    /// 1-based; where the name is written (for an alias, where it is used).
    pub line: u32,
}

/// The string half of a [`NameAt`].
struct Interned(Arc<str>);

impl<'de> Deserialize<'de> for Interned {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Interned, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Interned;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a name")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Interned, E> {
                Ok(Interned(intern(v)))
            }
        }
        d.deserialize_str(V)
    }
}

impl<'de> Deserialize<'de> for NameAt {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<NameAt, D::Error> {
        let s = Spanned::<Interned>::deserialize(d)?;
        Ok(NameAt {
            text: s.value.0,
            line: s.referenced.line() as u32,
        })
    }
}

/// The bytes of the source text at `loc`'s span, while a parse runs.
fn source_at(loc: &Location) -> Option<String> {
    let span = loc.span();
    let (start, len) = (span.byte_offset()? as usize, span.byte_len()? as usize);
    SOURCE.with(|s| {
        let (ptr, total) = s.get()?;
        // SAFETY: `parse` sets SOURCE to its `text` argument and resets it
        // (SourceGuard) before returning, so while it is set the pointer
        // and length describe a live `&str` borrowed for the whole parse.
        let text = unsafe { std::str::from_utf8_unchecked(std::slice::from_raw_parts(ptr, total)) };
        text.get(start..start.checked_add(len)?).map(str::to_owned)
    })
}

/// The source text of `loc`'s span, when short enough to quote.
fn span_text(text: &str, loc: &Location) -> Option<String> {
    let span = loc.span();
    let start = span.byte_offset()? as usize;
    let raw = text.get(start..start.checked_add(span.byte_len()? as usize)?)?;
    // A plain scalar folds its line breaks into spaces; show it so.
    let raw = raw.split_whitespace().collect::<Vec<_>>().join(" ");
    (!raw.is_empty() && raw.len() <= 80).then(|| format!("`{raw}`"))
}

/// Parses YAML into `T` with the limits of [`Limits::from_env`]; errors
/// read `file:line: key.path: what was wrong`.
pub fn parse<T: for<'de> Deserialize<'de>>(text: &str, file: &Path) -> Result<T, ConfigError> {
    parse_with(text, file, Limits::from_env())
}

/// [`parse`] with explicit limits.
pub fn parse_with<T: for<'de> Deserialize<'de>>(
    text: &str,
    file: &Path,
    limits: Limits,
) -> Result<T, ConfigError> {
    let _guard = SourceGuard(SOURCE.with(|s| s.replace(Some((text.as_ptr(), text.len())))));
    serde_saphyr::from_str_with_options(text, limits.options(text.len()))
        .map_err(|e| explain(&e, text, file, limits))
}

/// One serde-saphyr error as a [`ConfigError`] in the operator's words.
fn explain(e: &Error, text: &str, file: &Path, limits: Limits) -> ConfigError {
    let e = innermost(e);
    let loc = e.location().filter(|l| l.line() > 0);
    let line = loc.map_or(0, |l| l.line() as u32);
    let mut path = loc.map(|l| key_path(text, l.line() as usize, l.column() as usize));
    // These name the key themselves: the path says where it sits.
    if matches!(
        e,
        Error::SerdeUnknownField { .. } | Error::DuplicateMappingKey { .. }
    ) {
        path = path.map(|p| parent(&p).to_owned());
    }
    let mut what = describe(e, limits);
    // A scalar the target type could not read: say what it was.
    if let (Error::InvalidScalar { .. }, Some(l)) = (e, loc)
        && let Some(raw) = span_text(text, &l)
    {
        what.push_str(&format!(", found {raw}"));
    }
    let reason = match path.as_deref() {
        Some(p) if !p.is_empty() => format!("{p}: {what}"),
        _ => what,
    };
    ConfigError::new(file, line, reason)
}

/// `hosts.www` of `hosts.www.edges`, `hosts.www.rules` of
/// `hosts.www.rules[0]`, nothing of `ttl`.
fn parent(path: &str) -> &str {
    match path.rfind(['.', '[']) {
        Some(i) => &path[..i],
        None => "",
    }
}

/// The error under snippet and alias wrappers.
fn innermost(e: &Error) -> &Error {
    match e {
        Error::WithSnippet { error, .. } | Error::AliasError { error, .. } => innermost(error),
        other => other,
    }
}

/// What went wrong, without position (the caller adds file, line and
/// key path).
fn describe(e: &Error, limits: Limits) -> String {
    match e {
        Error::DuplicateMappingKey { key, .. } => match key {
            Some(k) => {
                format!("`{k}` is given twice in the same map; keep one (YAML keeps no duplicates)")
            }
            None => "a key is given twice in the same map; keep one".into(),
        },
        Error::SerdeUnknownField {
            field, expected, ..
        } => {
            if expected.is_empty() {
                format!("unknown key `{field}`: nothing is allowed here")
            } else {
                format!(
                    "unknown key `{field}`; the keys here are {}",
                    expected
                        .iter()
                        .map(|k| format!("`{k}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            }
        }
        Error::SerdeMissingField { field, .. } => format!("missing key `{field}`"),
        Error::SerdeInvalidType {
            unexpected,
            expected,
            ..
        }
        | Error::SerdeInvalidValue {
            unexpected,
            expected,
            ..
        } => format!(
            "expected {}, found {}",
            expected_words(expected),
            found_words(unexpected)
        ),
        Error::SerdeInvalidLength { len, expected, .. } => format!(
            "expected {}, found {len} item{}",
            expected_words(expected),
            if *len == 1 { "" } else { "s" }
        ),
        Error::SerdeUnknownVariant {
            variant, expected, ..
        } => format!(
            "`{variant}` is not one of {}",
            expected
                .iter()
                .map(|k| format!("`{k}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Error::InvalidScalar { ty, .. } => format!("expected {}", expected_words(ty)),
        Error::NullIntoString { .. } => "expected a value, found nothing".into(),
        Error::Unexpected { expected, .. } => structure(expected),
        Error::UnexpectedSequenceEnd { .. }
        | Error::UnexpectedMappingEnd { .. }
        | Error::ContainerEndMismatch { .. } => {
            "the structure ends where a value was expected; check the indentation above".into()
        }
        Error::Eof { .. } => {
            "the file ends where a value was expected (an unclosed [, { or quote?)".into()
        }
        Error::MultipleDocuments { .. } => {
            "a second YAML document (`---`) starts here; a config file holds one".into()
        }
        Error::UnknownAnchor { .. } => {
            "this alias (*name) names no anchor (&name) defined above it".into()
        }
        Error::RecursiveReferencesRequireWeakTypes { .. } => {
            "this alias (*name) refers to a value it is inside of".into()
        }
        Error::MergeValueNotMapOrSeqOfMaps { .. } => {
            "a merge key (<<) takes an alias of a map, or a list of them".into()
        }
        Error::InvalidUtf8Input => "the file is not UTF-8 text".into(),
        Error::NonFiniteFloat { value, .. } => format!("{value} is not a finite number"),
        Error::AliasReplayLimitExceeded { .. } | Error::AliasExpansionLimitExceeded { .. } => {
            format!(
                "{} (the anchor being replayed is defined here)",
                alias_limit(limits)
            )
        }
        Error::AliasReplayStackDepthExceeded { max_depth, .. } => format!(
            "aliases nest inside aliases more than {max_depth} deep, as an alias bomb does; \
             refer to shared lists directly"
        ),
        Error::Budget { breach, .. } => budget(breach, limits),
        Error::ExternalMessage { msg, .. } => syntax(msg),
        Error::Message { msg, .. } => message(msg),
        other => {
            // Anything else: serde-saphyr's own sentence, without its
            // position prefix (we give file and line).
            let full = other.to_string();
            let first = full.lines().next().unwrap_or("invalid YAML").to_owned();
            match first.split_once(": ") {
                Some((pos, rest)) if pos.starts_with("line ") => rest.to_owned(),
                _ => first,
            }
        }
    }
}

/// The alias-replay limit, and how to raise it.
fn alias_limit(limits: Limits) -> String {
    format!(
        "aliases (*name) in this file expand to more than {} nodes, the limit against \
         alias bombs; if the file really is that large, raise it with the environment \
         variable {ALIAS_NODES_ENV} (for example {ALIAS_NODES_ENV}={})",
        thousands(limits.alias_nodes),
        limits.alias_nodes.saturating_mul(2)
    )
}

fn budget(b: &BudgetBreach, limits: Limits) -> String {
    match b {
        BudgetBreach::Depth { .. } => format!(
            "maps and lists nest more than {} levels deep, the limit against hostile files \
             (geosteer's files need fewer than 10); check the indentation, or raise it with \
             the environment variable {DEPTH_ENV}",
            limits.depth
        ),
        // The limits below grow with the file; meeting one means the
        // counting disagrees with the file's size (a bug), so name it.
        BudgetBreach::Events { events } => format!("more than {} YAML events", thousands(*events)),
        BudgetBreach::Nodes { nodes } => format!("more than {} YAML values", thousands(*nodes)),
        BudgetBreach::Aliases { aliases } => format!("more than {} aliases", thousands(*aliases)),
        BudgetBreach::Anchors { anchors } => format!("more than {} anchors", thousands(*anchors)),
        BudgetBreach::ScalarBytes { total_scalar_bytes } => format!(
            "more than {} bytes of values",
            thousands(*total_scalar_bytes)
        ),
        BudgetBreach::MergeKeys { merge_keys } => {
            format!("more than {} merge keys (<<)", thousands(*merge_keys))
        }
        BudgetBreach::Documents { documents } => {
            format!("{documents} YAML documents; a config file holds one")
        }
        BudgetBreach::SequenceUnbalanced => {
            "the file's lists and maps do not close properly".into()
        }
        _ => alias_limit(limits),
    }
}

/// 40000000 → 40,000,000.
fn thousands(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The parser's structural complaints, as where the structure broke.
fn structure(expected: &str) -> String {
    match expected {
        "mapping start" => {
            "expected keys (`key: value` lines, or { key: value }) here; check the indentation"
                .into()
        }
        "sequence start" => "expected a list ([a, b], or `- item` lines) here".into(),
        "scalar" | "string" | "string scalar" => {
            "expected a single value here, not a list or a map".into()
        }
        other => format!("expected {} here", expected_words(other)),
    }
}

/// A syntax error from the YAML scanner, with the parser's phrasing
/// turned into advice where we know it.
fn syntax(msg: &str) -> String {
    let m = msg.trim();
    let lower = m.to_ascii_lowercase();
    let advice = if lower.contains("tab") {
        "a tab in the indentation; YAML indents with spaces"
    } else if lower.contains("mapping values are not allowed") {
        "a `key: value` where none can start: a missing space after a colon above, \
         a value that needs quotes, or indentation that does not line up"
    } else if lower.contains("did not find expected key")
        || lower.contains("invalid indentation")
        || lower.contains("indent")
    {
        "the indentation does not line up with the keys above it"
    } else if lower.contains("did not find expected ',' or ']'")
        || lower.contains("did not find expected ',' or '}'")
    {
        "an unclosed [ or {, or a missing comma between items"
    } else if lower.contains("quoted scalar") || lower.contains("found unexpected end of stream") {
        "an unclosed quote or bracket"
    } else {
        return format!("invalid YAML: {m}");
    };
    format!("invalid YAML: {advice}")
}

/// A message made by a visitor (ours, serde's or a field type's).
fn message(msg: &str) -> String {
    if let Some(rest) = msg.strip_prefix("data did not match any variant of untagged enum ") {
        return format!("this value has none of the forms a {rest} takes");
    }
    if let Some((pre, post)) = msg.split_once("invalid type: ")
        && pre.is_empty()
        && let Some((found, expected)) = post.split_once(", expected ")
    {
        return format!(
            "expected {}, found {}",
            expected_words(expected),
            found_words(found)
        );
    }
    if let Some(post) = msg.strip_prefix("invalid value: ")
        && let Some((found, expected)) = post.split_once(", expected ")
    {
        return format!(
            "expected {}, found {}",
            expected_words(expected),
            found_words(found)
        );
    }
    msg.to_owned()
}

/// serde's "expected" phrases (visitor `expecting` texts) in plain words.
fn expected_words(e: &str) -> String {
    let e = e.trim();
    let range = |lo: &str, hi: &str| format!("a whole number from {lo} to {hi}");
    match e {
        "u8" => range("0", "255"),
        "u16" => range("0", "65535"),
        "u32" => range("0", "4294967295"),
        "u64" | "usize" | "u128" => "a whole number, 0 or more".into(),
        "i8" => range("-128", "127"),
        "i16" => range("-32768", "32767"),
        "i32" | "i64" | "isize" | "i128" => "a whole number".into(),
        "f32" | "f64" | "floating point" => "a number".into(),
        "a boolean" | "bool" => "true or false".into(),
        "a string" | "string" | "a borrowed string" => "text".into(),
        "a character" | "char" => "a single character".into(),
        "a sequence" | "sequence" => "a list ([a, b], or `- item` lines)".into(),
        "a map" | "map" => "a map (`key: value` lines)".into(),
        "socket address" => "an address and port, like 127.0.0.1:5300".into(),
        "IP address" => "an IP address".into(),
        "IP network" | "IP network address" => "a network like 192.0.2.0/24".into(),
        _ => {
            if let Some(n) = e.strip_prefix("struct ") {
                let _ = n;
                "a map (`key: value` lines)".into()
            } else if let Some(rest) = e.strip_prefix("an array of length ") {
                format!("a list of exactly {rest} items, like [a, b]")
            } else if let Some(rest) = e.strip_prefix("a tuple of size ") {
                format!("a list of exactly {rest} items")
            } else if e.starts_with("enum ") || e.starts_with("variant identifier") {
                "one of the words listed for this key".into()
            } else {
                e.to_owned()
            }
        }
    }
}

/// serde's "found" phrases (`string "x"`, `integer `3``) in plain words.
fn found_words(u: &str) -> String {
    let u = u.trim();
    if let Some(s) = u.strip_prefix("string ") {
        return format!("the text {s}");
    }
    for (pre, what) in [
        ("integer ", "the number "),
        ("floating point ", "the number "),
        ("boolean ", ""),
    ] {
        if let Some(v) = u.strip_prefix(pre) {
            return format!("{what}{}", v.trim_matches('`'));
        }
    }
    match u {
        "sequence" => "a list".into(),
        "map" => "a map".into(),
        "unit value" | "null" => "nothing (an empty value)".into(),
        "newtype struct" | "unit variant" | "newtype variant" => "a tagged value".into(),
        other => other.to_owned(),
    }
}

/// One step of a key path.
enum Frame {
    /// A map: the key being read (`None` while a key is expected next).
    Map(Option<String>),
    /// A list: the index of the next item.
    Seq(usize),
}

/// `["hosts", "www", "rules", "[0]"]` as `hosts.www.rules[0]`.
fn render_path(path: &[String]) -> String {
    let mut s = String::new();
    for p in path {
        if !(p.starts_with('[') || s.is_empty()) {
            s.push('.');
        }
        s.push_str(p);
    }
    s
}

/// Walks the file's nodes in order, calling `f` with each node's key path,
/// its position (1-based line, 0-based column) and whether it is a key,
/// until `f` returns false or the text ends (or stops parsing). Only runs
/// to explain errors, so it need not be fast.
fn walk(text: &str, mut f: impl FnMut(&[String], (usize, usize), bool) -> bool) {
    let mut parser = Parser::new_from_str(text);
    let mut stack: Vec<Frame> = Vec::new();
    let mut path: Vec<String> = Vec::new();
    while let Some(Ok((ev, span))) = parser.next_event() {
        let at = (span.start.line(), span.start.col());
        let node = matches!(
            ev,
            Event::Scalar(..)
                | Event::SequenceStart(..)
                | Event::MappingStart(..)
                | Event::Alias(..)
        );
        if node {
            // Where this node sits: a key, a key's value, or a list item.
            let mut is_key = false;
            let seg = match stack.last_mut() {
                Some(Frame::Map(None)) => {
                    is_key = true;
                    match &ev {
                        Event::Scalar(v, ..) => Some(v.to_string()),
                        _ => Some("?".into()),
                    }
                }
                Some(Frame::Map(Some(k))) => Some(k.clone()),
                Some(Frame::Seq(i)) => {
                    let s = format!("[{i}]");
                    *i += 1;
                    Some(s)
                }
                None => None,
            };
            let here: Vec<String> = path.iter().cloned().chain(seg.clone()).collect();
            if !f(&here, at, is_key) {
                return;
            }
            if is_key {
                if let Some(Frame::Map(slot)) = stack.last_mut() {
                    *slot = seg;
                }
                continue;
            }
            match ev {
                Event::SequenceStart(..) => {
                    path = here;
                    stack.push(Frame::Seq(0));
                }
                Event::MappingStart(..) => {
                    path = here;
                    stack.push(Frame::Map(None));
                }
                _ => {
                    if let Some(Frame::Map(slot)) = stack.last_mut() {
                        *slot = None;
                    }
                }
            }
        } else if matches!(ev, Event::SequenceEnd | Event::MappingEnd) {
            stack.pop();
            path.pop();
            if let Some(Frame::Map(slot)) = stack.last_mut() {
                *slot = None;
            }
        }
    }
}

/// The dotted key path (`hosts.dl.rules[0].country`) of the value at
/// `line`:`column` (1-based), read by walking the file's events up to
/// there. A key's own position names the key; a value's names the key it
/// belongs to.
pub fn key_path(text: &str, line: usize, column: usize) -> String {
    let target = (line, column.saturating_sub(1));
    let mut best = String::new();
    walk(text, |path, at, _| {
        if at > target {
            return false;
        }
        best = render_path(path);
        true
    });
    best
}

/// The line of the key at `key_path` (`tcp.max_connections`,
/// `fleet.etcd`), for errors found after parsing; 0 when the file does not
/// have it (a default was used).
pub fn line_of(text: &str, key_path: &str) -> u32 {
    let mut line = 0;
    walk(text, |path, at, is_key| {
        if is_key && render_path(path) == key_path {
            line = at.0 as u32;
            return false;
        }
        true
    });
    line
}

/// Fills in the line of an error found after parsing whose reason starts
/// with a key path (`workers: must be at least 1`), from `text`.
pub fn with_line(mut e: ConfigError, text: &str) -> ConfigError {
    if e.line == 0
        && let Some((key, _)) = e.reason.split_once(": ")
        && !key.is_empty()
        && !key.contains(' ')
    {
        // The longest prefix of the path that the file spells out.
        let mut k = key;
        loop {
            let l = line_of(text, k);
            if l > 0 {
                e.line = l;
                break;
            }
            match k.rfind('.') {
                Some(i) => k = &k[..i],
                None => break,
            }
        }
    }
    e
}

/// Country, continent or subdivision codes as written: one
/// (`country: NO`) or a list (`country: [NO, SE]`), each kept as its
/// source text with its line. YAML 1.1 reads `NO`, `N`, `OFF` or `Y` as
/// booleans and `01` as a number; these stay the codes they are written
/// as, quoted or not.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Codes(pub Vec<(String, u32)>);

impl Codes {
    /// The codes as written.
    pub fn texts(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|(t, _)| t.as_str())
    }
}

/// One scalar as a visitor saw it: text, or something YAML typed (a
/// boolean, a number) whose source text is read back.
enum Scalar {
    Text(String),
    Typed(String),
}

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Scalar, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Scalar;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a code like NO, EU or ENG")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Scalar, E> {
                Ok(Scalar::Text(v.to_owned()))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Scalar, E> {
                Ok(Scalar::Typed(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Scalar, E> {
                Ok(Scalar::Typed(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Scalar, E> {
                Ok(Scalar::Typed(v.to_string()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Scalar, E> {
                Ok(Scalar::Typed(v.to_string()))
            }
        }
        d.deserialize_any(V)
    }
}

/// The code a scalar was written as: its source text when YAML typed it.
fn code_text(s: Spanned<Scalar>) -> (String, u32) {
    let line = s.referenced.line() as u32;
    let text = match s.value {
        Scalar::Text(t) => t,
        Scalar::Typed(fallback) => source_at(&s.referenced)
            .map(|t| t.trim().trim_matches(['"', '\'']).to_owned())
            .filter(|t| !t.is_empty())
            .unwrap_or(fallback),
    };
    (text, line)
}

/// A scalar or a list of them, before their texts are read back.
enum OneOrList {
    One(Scalar),
    List(Vec<(String, u32)>),
}

impl<'de> Deserialize<'de> for OneOrList {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<OneOrList, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = OneOrList;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a code like NO, or a list of them like [NO, SE]")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<OneOrList, E> {
                Ok(OneOrList::One(Scalar::Text(v.to_owned())))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<OneOrList, E> {
                Ok(OneOrList::One(Scalar::Typed(v.to_string())))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<OneOrList, E> {
                Ok(OneOrList::One(Scalar::Typed(v.to_string())))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<OneOrList, E> {
                Ok(OneOrList::One(Scalar::Typed(v.to_string())))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<OneOrList, E> {
                Ok(OneOrList::One(Scalar::Typed(v.to_string())))
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<OneOrList, A::Error> {
                let mut out = Vec::new();
                while let Some(s) = seq.next_element::<Spanned<Scalar>>()? {
                    out.push(code_text(s));
                }
                Ok(OneOrList::List(out))
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for Codes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Codes, D::Error> {
        let s = Spanned::<OneOrList>::deserialize(d)?;
        Ok(Codes(match s.value {
            OneOrList::One(v) => vec![code_text(Spanned::new(v, s.referenced, s.defined))],
            OneOrList::List(v) => v,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Rule {
        #[serde(default)]
        country: Option<Codes>,
        #[serde(default)]
        answers: Option<u8>,
        #[serde(default)]
        edges: Vec<String>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Doc {
        #[serde(default)]
        hosts: indexmap::IndexMap<String, Host>,
        #[serde(default)]
        ttl: Option<u32>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Host {
        #[serde(default)]
        rules: Vec<Rule>,
        #[serde(default)]
        edges: Vec<String>,
        #[serde(default)]
        answers: Option<u8>,
    }

    fn err(text: &str) -> String {
        parse::<Doc>(text, Path::new("p.yaml"))
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn codes_as_written() {
        let d: Doc = parse(
            "hosts:\n  a:\n    rules:\n      - { country: NO }\n      - country: [no, SE, 'ON', Off, N, y, 01]\n",
            Path::new("p.yaml"),
        )
        .unwrap();
        let r = &d.hosts["a"].rules;
        assert_eq!(r[0].country.as_ref().unwrap().0, [("NO".to_owned(), 4)]);
        let got: Vec<&str> = r[1].country.as_ref().unwrap().texts().collect();
        assert_eq!(got, ["no", "SE", "ON", "Off", "N", "y", "01"]);
    }

    #[test]
    fn key_paths() {
        let t = "ttl: 3\nhosts:\n  www:\n    edges: [a, b]\n    rules:\n      - country: NO\n        edges: [x]\n      - answers: 3\n";
        assert_eq!(key_path(t, 1, 1), "ttl");
        assert_eq!(key_path(t, 1, 6), "ttl");
        assert_eq!(key_path(t, 3, 3), "hosts.www");
        assert_eq!(key_path(t, 4, 13), "hosts.www.edges[0]");
        assert_eq!(key_path(t, 4, 16), "hosts.www.edges[1]");
        assert_eq!(key_path(t, 6, 18), "hosts.www.rules[0].country");
        assert_eq!(key_path(t, 7, 9), "hosts.www.rules[0].edges");
        assert_eq!(key_path(t, 8, 18), "hosts.www.rules[1].answers");
        assert_eq!(line_of(t, "hosts.www.rules"), 5);
        assert_eq!(line_of(t, "hosts.www.rules[1].answers"), 8);
        assert_eq!(line_of(t, "nope"), 0);
        let e = with_line(
            ConfigError::new(Path::new("p"), 0, "hosts.www.edges.x: bad"),
            t,
        );
        assert_eq!(e.line, 4);
    }

    #[test]
    fn duplicate_key_in_operator_words() {
        let e = err("hosts:\n  www: {}\n  www: {}\n");
        assert_eq!(
            e,
            "p.yaml:3: hosts: `www` is given twice in the same map; keep one (YAML keeps no duplicates)"
        );
        assert!(!e.contains("DuplicateKeyPolicy"), "{e}");
    }

    #[test]
    fn wrong_type_names_key_and_range() {
        let e = err("hosts:\n  www:\n    answers: 300\n");
        assert!(
            e.starts_with("p.yaml:3: hosts.www.answers: expected a whole number from 0 to 255"),
            "{e}"
        );
        let e = err("hosts:\n  www:\n    edges: fra\n");
        assert!(
            e.starts_with("p.yaml:3: hosts.www.edges: expected a list"),
            "{e}"
        );
        let e = err("ttl: soon\n");
        assert!(
            e.starts_with(
                "p.yaml:1: ttl: expected a whole number from 0 to 4294967295, found `soon`"
            ),
            "{e}"
        );
    }

    #[test]
    fn bad_indentation_names_the_key() {
        // `edges` one space too far in: a list item of rules is expected.
        let e = err("hosts:\n  www:\n    rules:\n    - country: NO\n       edges: [a]\n");
        assert!(e.starts_with("p.yaml:5: hosts.www.rules[0]"), "{e}");
        assert!(
            e.contains("invalid YAML") || e.contains("indentation"),
            "{e}"
        );
        // A host's keys under a scalar.
        let e = err("hosts:\n  www: x\n    edges: [a]\n");
        assert!(e.starts_with("p.yaml:"), "{e}");
        assert!(e.contains("hosts.www"), "{e}");
    }

    #[test]
    fn unknown_key_lists_the_keys() {
        let e = err("hosts:\n  www:\n    edgse: [a]\n");
        assert_eq!(
            e,
            "p.yaml:3: hosts.www: unknown key `edgse`; the keys here are `rules`, `edges`, `answers`"
        );
    }

    #[test]
    fn no_debug_text_anywhere() {
        for bad in [
            "hosts:\n  www: {}\n  www: {}\n",
            "hosts:\n  www:\n    answers: -1\n",
            "hosts: [\n",
            "hosts:\n\twww: {}\n",
            "ttl: 1\n---\nttl: 2\n",
            "hosts:\n  www: { edges: *nothing }\n",
        ] {
            let e = err(bad);
            for leak in ["Policy", "Breach", "Error", "Some(", "None", "::", "nodes:"] {
                assert!(!e.contains(leak), "{bad:?} -> {e}");
            }
            assert!(e.starts_with("p.yaml:"), "{bad:?} -> {e}");
        }
    }

    /// A file of `hosts` hosts, one line each, sharing `edges` through one
    /// anchor.
    fn anchored(hosts: usize, edges: usize) -> String {
        let list: Vec<String> = (0..edges).map(|i| format!("e{i}")).collect();
        let mut s = format!(
            "ttl: 30\nhosts:\n  h0: {{ edges: &all [{}] }}\n",
            list.join(", ")
        );
        for i in 1..hosts {
            s.push_str(&format!("  h{i}: {{ edges: *all }}\n"));
        }
        s
    }

    #[test]
    fn many_aliases_of_one_anchor_load() {
        // Beyond the old ratio heuristic (at most 10 aliases per anchor),
        // and replaying more values than the file holds bytes plus
        // SMALL_FILE (the budget counts replayed values too).
        let text = anchored(20_000, 40);
        assert!(20_000 * 40 > text.len() + SMALL_FILE);
        let d: Doc = parse(&text, Path::new("p.yaml")).unwrap();
        assert_eq!(d.hosts.len(), 20_000);
        assert_eq!(d.hosts["h19999"].edges.len(), 40);
    }

    #[test]
    fn more_values_than_the_old_budget_load() {
        // Beyond the old node budget (250,000 values, ~5,000 hosts):
        // 10,000 hosts of 25 edges, written out.
        let list: Vec<String> = (0..25).map(|i| format!("e{i}")).collect();
        let line = format!("{{ edges: [{}] }}", list.join(", "));
        let mut s = String::from("hosts:\n");
        for i in 0..10_000 {
            s.push_str(&format!("  h{i}: {line}\n"));
        }
        let d: Doc = parse(&s, Path::new("p.yaml")).unwrap();
        assert_eq!(d.hosts.len(), 10_000);
    }

    #[test]
    fn alias_bomb_is_refused_with_the_knob() {
        // Billion laughs shaped as hosts, so every replayed node would be
        // kept: 10^6 hosts' worth of edges from a dozen lines.
        let mut bomb = String::from("l0: &l0 [e, e, e, e, e, e, e, e, e, e]\n");
        for i in 1..6 {
            let prev = format!("*l{}", i - 1);
            bomb.push_str(&format!("l{i}: &l{i} [{}]\n", vec![prev; 10].join(", ")));
        }
        bomb.push_str("x: *l5\n");
        let limits = Limits {
            alias_nodes: 100_000,
            depth: DEFAULT_DEPTH,
        };
        let e = parse_with::<serde_json::Value>(&bomb, Path::new("p.yaml"), limits)
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("p.yaml:"), "{e}");
        assert!(e.contains("more than 100,000 nodes"), "{e}");
        assert!(e.contains("alias bombs"), "{e}");
        assert!(e.contains(ALIAS_NODES_ENV), "{e}");
        // Within the limit, the same construction loads.
        let small: String = bomb.lines().take(4).map(|l| format!("{l}\n")).collect();
        parse_with::<serde_json::Value>(&(small + "x: *l3\n"), Path::new("p.yaml"), limits)
            .unwrap();
    }

    #[test]
    fn limits_from_the_environment() {
        assert_eq!(
            Limits::from_env(),
            Limits {
                alias_nodes: std::env::var(ALIAS_NODES_ENV)
                    .ok()
                    .and_then(|v| v.replace('_', "").parse().ok())
                    .unwrap_or(DEFAULT_ALIAS_NODES),
                depth: std::env::var(DEPTH_ENV)
                    .ok()
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(DEFAULT_DEPTH),
            }
        );
    }

    #[test]
    fn absurd_depth_is_refused() {
        let deep = format!("x: {}1{}\n", "[".repeat(200), "]".repeat(200));
        let e = parse::<serde_json::Value>(&deep, Path::new("p.yaml"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("nest more than 64 levels"), "{e}");
        assert!(e.contains(DEPTH_ENV), "{e}");
    }

    #[test]
    fn thousands_separators() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(40_000_000), "40,000,000");
    }
}
