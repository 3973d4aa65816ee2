//! RFC 1035 master-file loading with file:line errors, and the compiled
//! in-memory zone answers are read from ([`tree`]).
//!
//! Reading is split in three steps, each reporting every problem it finds
//! as `file:line: reason` and carrying on at the next entry:
//!
//! 1. `lexer` splits text into entries (`;` comments, `( )` continuation,
//!    quoted strings, `\X`/`\DDD` escapes), keeping each token's line;
//! 2. `parse` applies the directives (`$ORIGIN`, `$TTL`, `$INCLUDE`), owner
//!    inheritance and TTL/class defaults, and `rdata` builds hickory-proto
//!    `RData` for SOA, NS, A, AAAA, CNAME, MX, TXT, SRV, CAA and PTR with
//!    relative names completed against the `$ORIGIN` in force; `types`
//!    writes every other type BIND's `named-checkzone` loads straight to
//!    wire bytes, field by field as [`schema`] lays them out (with `svcb`
//!    for SvcParams), and reads RFC 3597's `TYPEnnn`, `CLASS1` and
//!    `\# len hex` for any type;
//! 3. `validate` normalises RRsets (one TTL, no duplicates) and checks the
//!    zone as a whole (SOA/NS at the apex, CNAME rules, delegations, and
//!    kzonecheck's DS, DNAME and SVCB/HTTPS rules; a signer's RRSIG, NSEC,
//!    NSEC3 and NSEC3PARAM are refused: geosteer signs online).
//!
//! hickory-proto's zone `Parser` is not used: it reports no line numbers, and
//! its lexer and name parser decode `\DDD` escapes wrongly (as
//! `(d1<<16)+(d2<<8)+d3` and as octal respectively, where RFC 1035 §5.1 says
//! decimal). RDATA is built from hickory's types directly; CAA goes through
//! `RData::try_from_str` with a re-quoted value that avoids `\DDD`.
//!
//! Choices where the RFCs leave room (all as BIND or Knot do, or stricter):
//! - a record without a TTL takes `$TTL`, else the last explicit TTL in the
//!   file; with neither it is an error (no silent SOA-minimum fallback);
//! - only class IN (or `CLASS1`) is accepted; any other class is an error;
//! - a raw newline inside a quoted string is an error (use `\010` or several
//!   strings), so a forgotten quote does not swallow the rest of the file;
//! - `$INCLUDE` paths are relative to the including file; the included file
//!   starts with the given (or current) origin, the current `$TTL` and last
//!   TTL, and no owner to inherit; nothing it sets leaks back to the
//!   includer; nesting is limited to [`MAX_INCLUDE_DEPTH`] and cycles are
//!   errors;
//! - a problem concerning the whole zone (no SOA, no NS) or the whole file
//!   (unreadable) is reported at line 0.

mod fields;
mod lexer;
mod parse;
mod rdata;
pub mod schema;
mod source;
pub mod svcb;
pub mod tree;
mod types;
mod validate;

use std::path::{Path, PathBuf};

use hickory_proto::rr::Name;

pub use parse::MAX_INCLUDE_DEPTH;
pub use source::{ZoneError, ZoneFile};

/// Reads and parses, collecting every error (continue at the next entry after an error) so `geosteer check` can print one line per problem.
///
/// Runs [`validate`] too, so callers get parse and zone-level errors at
/// once. Warnings are only returned with a successful load.
pub fn load_zone_file(path: &Path, origin: &Name) -> Result<ZoneFile, Vec<ZoneError>> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        vec![ZoneError {
            file: path.to_path_buf(),
            line: 0,
            reason: format!("cannot read zone file: {e}"),
        }]
    })?;
    parse_zone_str(&text, path, origin)
}

/// Same as [`load_zone_file`] for text already in memory; `path` is used in
/// errors and to resolve relative `$INCLUDE` paths.
pub fn parse_zone_str(text: &str, path: &Path, origin: &Name) -> Result<ZoneFile, Vec<ZoneError>> {
    let mut origin = origin.clone();
    // A relative origin would make every name in the zone relative.
    origin.set_fqdn(true);
    let mut loader = parse::Loader::new();
    loader.load_top(text, path, &origin);
    let mut errors = loader.errors;
    let mut zone = ZoneFile {
        origin,
        records: loader.records,
        warnings: Vec::new(),
    };
    validate::normalise(&mut zone.records, &mut zone.warnings);
    let partial = !errors.is_empty();
    errors.extend(validate::check(&zone, path, partial));
    if errors.is_empty() {
        Ok(zone)
    } else {
        Err(errors)
    }
}

/// zones/cdn.example.zone -> "cdn.example."; None for files not ending in ".zone".
pub fn origin_from_filename(path: &Path) -> Option<Name> {
    let file = path.file_name()?.to_str()?;
    let stem = file.strip_suffix(".zone")?;
    if stem.is_empty() || stem.ends_with('.') {
        return None;
    }
    fields::parse_name(&format!("{stem}."), &Name::root()).ok()
}

/// Zone-level checks, every problem reported with file:line. Run by load_zone_file too (so callers get all errors at once).
///
/// Checks: exactly one SOA, at the apex; at least one NS at the apex; every
/// owner at or below the origin; CNAME alone at its name, at most one, not at
/// the apex (RFC 2181 §10.1); nothing but glue A/AAAA below a delegation and
/// nothing but NS and glue at it; `*` only as a whole leftmost label.
/// Zone-wide problems are reported against the first record's file (this
/// function does not know the top-level path), at line 0.
pub fn validate(zone: &ZoneFile) -> Result<(), Vec<ZoneError>> {
    let top = zone
        .records
        .first()
        .map_or_else(PathBuf::new, |r| r.file.to_path_buf());
    let errors = validate::check(zone, &top, false);
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

/// RFC 9460 checks on SVCB/HTTPS wire RDATA (key order, mandatory keys
/// present, value shapes), as zone files get them; `Err` says what is wrong.
pub fn check_svcb_rdata(rdata: &[u8]) -> Result<(), String> {
    svcb::check_wire(rdata)
}
