//! `<zone>.rtt.csv`: measured round-trip times from real-user monitoring,
//! validated into a [`RttTable`]. A file with any bad row is rejected whole.
//!
//! ```csv
//! client,edge,rtt_ms,samples
//! 81.2.69.0/24,nrt,9.5,500
//! AS3320,fra,11,4000
//! country:JP,lhr,5,900
//! continent:OC,sin,80,300
//! ```

use std::collections::HashMap;
use std::path::Path;

use ipnet::IpNet;

use super::ConfigError;
use crate::geo::{Code, is_continent};
use crate::steer::{EdgeIdx, RttKey, RttTable, Steering};

/// At most this many errors are listed; the rest are counted.
const MAX_ERRORS: usize = 20;

/// The columns, in any order; more are an error (a typo would be ignored).
const COLUMNS: [&str; 4] = ["client", "edge", "rtt_ms", "samples"];

/// Parses a `client` cell.
fn parse_key(s: &str) -> Result<RttKey, String> {
    if let Some(c) = s.strip_prefix("country:") {
        let code: Code = c
            .parse()
            .map_err(|e| format!("client {s:?}: country: {e}"))?;
        return Ok(RttKey::Country(code));
    }
    if let Some(c) = s.strip_prefix("continent:") {
        let code: Code = c
            .parse()
            .map_err(|e| format!("client {s:?}: continent: {e}"))?;
        if !is_continent(code) {
            return Err(format!(
                "client {s:?}: not a continent code (AF, AN, AS, EU, NA, OC, SA)"
            ));
        }
        return Ok(RttKey::Continent(code));
    }
    if let Some(n) = s.strip_prefix("AS").or_else(|| s.strip_prefix("as")) {
        return n
            .parse::<u32>()
            .map(RttKey::Asn)
            .map_err(|_| format!("client {s:?}: not an AS number like AS3320"));
    }
    let net: IpNet = s.parse().map_err(|_| {
        format!(
            "client {s:?}: not a prefix (81.2.69.0/24), AS<number>, country:<ISO> or continent:<code>"
        )
    })?;
    if net.trunc() != net {
        return Err(format!(
            "client {s:?}: host bits set (did you mean {}?)",
            net.trunc()
        ));
    }
    Ok(RttKey::Prefix(net))
}

/// Reads and validates an RTT file against the zone's edges.
pub fn load(path: &Path, st: &Steering, min_samples: u64) -> Result<RttTable, Vec<ConfigError>> {
    let bytes = std::fs::read(path)
        .map_err(|e| vec![ConfigError::new(path, 0, format!("cannot read: {e}"))])?;
    from_bytes(&bytes, path, st, min_samples)
}

/// The line a record starts on. The csv crate skips blank lines before a
/// record but reports the position where they start.
fn line_of(input: &[u8], pos: &csv::Position) -> u64 {
    let from = (pos.byte() as usize).min(input.len());
    let blank = input[from..]
        .iter()
        .take_while(|&&b| b == b'\n' || b == b'\r')
        .filter(|&&b| b == b'\n')
        .count();
    pos.line() + blank as u64
}

/// [`load`] from memory.
pub fn from_bytes(
    input: &[u8],
    path: &Path,
    st: &Steering,
    min_samples: u64,
) -> Result<RttTable, Vec<ConfigError>> {
    let mut errs = Vec::new();
    let mut more = 0usize;
    let mut err = |line: u64, msg: String| {
        if errs.len() < MAX_ERRORS {
            errs.push(ConfigError::new(path, line as u32, msg));
        } else {
            more += 1;
        }
    };
    let mut rd = csv::ReaderBuilder::new()
        .has_headers(true)
        .trim(csv::Trim::All)
        .comment(Some(b'#'))
        .from_reader(input);
    let header = match rd.headers() {
        Ok(h) => h.clone(),
        Err(e) => return Err(vec![ConfigError::new(path, 1, format!("cannot read: {e}"))]),
    };
    let mut col = [usize::MAX; 4];
    for (i, h) in header.iter().enumerate() {
        match COLUMNS.iter().position(|c| c.eq_ignore_ascii_case(h)) {
            Some(c) if col[c] == usize::MAX => col[c] = i,
            Some(_) => err(1, format!("header: column {h:?} appears twice")),
            None => err(
                1,
                format!("header: unknown column {h:?} (want client,edge,rtt_ms,samples)"),
            ),
        }
    }
    if col.contains(&usize::MAX) {
        err(
            1,
            format!(
                "missing header: the first line must be client,edge,rtt_ms,samples (got {:?})",
                header.iter().collect::<Vec<_>>().join(",")
            ),
        );
        return Err(errs);
    }
    let index: HashMap<&str, EdgeIdx> = st
        .edges
        .iter()
        .enumerate()
        .map(|(i, e)| (e.name.as_str(), i as EdgeIdx))
        .collect();
    // (key, edge, ms, line); `line` finds duplicates' first occurrence.
    let mut rows: Vec<(RttKey, EdgeIdx, f32, u32)> = Vec::new();
    let mut rec = csv::StringRecord::new();
    loop {
        match rd.read_record(&mut rec) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => {
                let line = e.position().map_or(0, |p| line_of(input, p));
                err(line, format!("{e}"));
                // A broken record (bad quoting, wrong field count) says
                // nothing about the next; keep going for more errors.
                if matches!(e.kind(), csv::ErrorKind::Io(_)) {
                    break;
                }
                continue;
            }
        }
        let line = rec.position().map_or(0, |p| line_of(input, p));
        let cell = |c: usize| rec.get(col[c]).unwrap_or("");
        let key = match parse_key(cell(0)) {
            Ok(k) => k,
            Err(m) => {
                err(line, m);
                continue;
            }
        };
        let edge = match index.get(cell(1)) {
            Some(&e) => e,
            None => {
                err(line, format!("edge {:?}: unknown edge", cell(1)));
                continue;
            }
        };
        let ms = match cell(2).parse::<f32>() {
            Ok(v) if v.is_finite() && v >= 0.0 => v,
            Ok(_) => {
                err(line, format!("rtt_ms {:?}: must be a number >= 0", cell(2)));
                continue;
            }
            Err(_) => {
                err(line, format!("rtt_ms {:?}: not a number", cell(2)));
                continue;
            }
        };
        let samples = match cell(3).parse::<u64>() {
            Ok(v) => v,
            Err(_) => {
                err(
                    line,
                    format!("samples {:?}: not a whole number >= 0", cell(3)),
                );
                continue;
            }
        };
        if samples >= min_samples {
            rows.push((key, edge, ms, line as u32));
        }
    }
    // The same client and edge twice is a mistake an export makes when it
    // is concatenated; which row counts would be a guess.
    rows.sort_unstable_by_key(|r| (r.0, r.1, r.3));
    for w in rows.windows(2) {
        if w[0].0 == w[1].0 && w[0].1 == w[1].1 {
            err(
                u64::from(w[1].3),
                format!(
                    "client {} edge {}: duplicate of line {}",
                    w[1].0, st.edges[w[1].1 as usize].name, w[0].3
                ),
            );
        }
    }
    // Keys index the row groups in 24 bits (rows plus one header a key).
    if rows.len() * 2 > crate::steer::rtt::MAX_ROWS {
        err(
            0,
            format!(
                "{} rows: at most {} are supported",
                rows.len(),
                crate::steer::rtt::MAX_ROWS / 2
            ),
        );
    }
    if more > 0 {
        errs.push(ConfigError::new(
            path,
            0,
            format!("... and {more} more errors"),
        ));
    }
    if !errs.is_empty() {
        return Err(errs);
    }
    Ok(RttTable::new(
        rows.into_iter().map(|(k, e, ms, _)| (k, e, ms)).collect(),
        |e| st.edges[e as usize].scale(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::pools::{self, AlwaysUp};

    fn steering() -> Steering {
        let yaml = "edges:\n  lhr: { addresses: [192.0.2.1], location: [51.5, -0.1] }\n  nrt: { addresses: [192.0.2.2], location: [35.7, 140.4] }\nhosts:\n  www: {}\n";
        let origin = hickory_proto::rr::Name::from_ascii("cdn.example.").unwrap();
        pools::from_str(yaml, Path::new("z.pools.yaml"), &origin, &AlwaysUp)
            .unwrap()
            .steering
    }

    fn load_str(text: &str, min: u64) -> Result<RttTable, Vec<ConfigError>> {
        from_bytes(text.as_bytes(), Path::new("z.rtt.csv"), &steering(), min)
    }

    fn first_error(text: &str) -> String {
        load_str(text, 1).unwrap_err()[0].to_string()
    }

    #[test]
    fn parses_every_key_kind() {
        let t = load_str(
            "client,edge,rtt_ms,samples\n81.2.69.0/24,nrt,9.5,500\n2001:db8:42::/48,lhr,22,120\nAS3320,lhr,11,4000\ncountry:JP,lhr,5,900\ncontinent:OC,nrt,80,300\n# a comment\n10.0.0.0/8,lhr,1,0\n",
            1,
        )
        .unwrap();
        // The 0-sample row is below min_samples.
        assert_eq!(t.rows(), 5);
        assert_eq!(t.keys(), 5);
    }

    #[test]
    fn min_samples_drops_rows() {
        let t = load_str(
            "client,edge,rtt_ms,samples\n81.2.69.0/24,nrt,9.5,500\n81.2.69.0/24,lhr,9.5,50\n",
            100,
        )
        .unwrap();
        assert_eq!(t.rows(), 1);
    }

    #[test]
    fn bad_rows_name_file_and_line() {
        for (text, want) in [
            (
                "client,edge,rtt_ms,samples\n81.2.69.0/24,nrt,9.5,500\n81.2.69.0/24,xxx,9,1\n",
                "z.rtt.csv:3: edge \"xxx\": unknown edge",
            ),
            (
                "client,edge,rtt_ms,samples\n81.2.69.0/33,nrt,9.5,500\n",
                "z.rtt.csv:2: client \"81.2.69.0/33\": not a prefix",
            ),
            (
                "client,edge,rtt_ms,samples\n81.2.69.1/24,nrt,9.5,500\n",
                "z.rtt.csv:2: client \"81.2.69.1/24\": host bits set (did you mean 81.2.69.0/24?)",
            ),
            (
                "client,edge,rtt_ms,samples\n\n81.2.69.0/24,nrt,-1,500\n",
                "z.rtt.csv:3: rtt_ms \"-1\": must be a number >= 0",
            ),
            (
                "81.2.69.0/24,nrt,9.5,500\n",
                "z.rtt.csv:1: header: unknown column \"81.2.69.0/24\"",
            ),
            (
                "client,edge,rtt_ms\n81.2.69.0/24,nrt,9.5\n",
                "z.rtt.csv:1: missing header: the first line must be client,edge,rtt_ms,samples",
            ),
            (
                "client,edge,rtt_ms,samples\nAS3320,nrt,1,1\nAS3320,nrt,2,1\n",
                "z.rtt.csv:3: client AS3320 edge nrt: duplicate of line 2",
            ),
            (
                "client,edge,rtt_ms,samples\ncontinent:XX,nrt,1,1\n",
                "z.rtt.csv:2: client \"continent:XX\": not a continent code",
            ),
            (
                "client,edge,rtt_ms,samples\n81.2.69.0/24,nrt,9.5\n",
                "z.rtt.csv:2: ",
            ),
        ] {
            let e = first_error(text);
            assert!(e.starts_with(want), "{text:?}: got {e:?}, want {want:?}");
        }
    }
}
