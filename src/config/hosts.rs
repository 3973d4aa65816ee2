//! A pools file's `hosts:` read again only where it changed. A file of
//! 50,000 hosts is mostly YAML parsing (4 MB), and an edit touches a few
//! lines: each host's lines (from its key to the next host's) are kept with
//! what they parsed to, by their text and first line, so a file whose hosts
//! are mostly unchanged parses the rest of the file (its hosts blanked out,
//! lines kept) and the changed hosts, each at its own lines, so what they
//! say and the lines they report are the whole file's.
//!
//! Whatever this cannot split plainly (anchors or aliases among the hosts,
//! tabs, a flow-style `hosts:`), many changed hosts, or any error reads the
//! whole file as before, so errors are always the whole file's.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use indexmap::IndexMap;
use serde::Deserialize;
use serde_saphyr::Spanned;

use hickory_proto::rr::Name;

use super::pools::{HealthSource, HostRaw, Pools, PoolsRaw};
use super::{ConfigError, parse_yaml};

/// Hosts changed since the last read up to which they are parsed one by
/// one (each with the lines above it as blank lines); more, and the whole
/// file is parsed.
const MAX_CHANGED: usize = 64;

/// The hosts of each pools file as last read, by file.
#[derive(Default)]
pub struct HostReuse {
    held: Mutex<HashMap<PathBuf, Held>>,
}

/// One file's hosts: by (first line, text of its lines), the key as
/// written and what it parsed to.
type Held = HashMap<(u32, Box<str>), (Spanned<String>, HostRaw)>;

/// Only the hosts, for parsing one host's lines.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HostsOnly {
    hosts: IndexMap<Spanned<String>, HostRaw>,
}

impl HostReuse {
    /// Reads and validates a pools file against its zone's origin, parsing
    /// again only the hosts that changed since this last read it.
    pub fn load(
        &self,
        path: &Path,
        origin: &Name,
        health: &dyn HealthSource,
    ) -> Result<Pools, Vec<ConfigError>> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| vec![ConfigError::new(path, 0, format!("cannot read: {e}"))])?;
        let raw = self.parse(&text, path).map_err(|e| vec![e])?;
        super::pools::from_raw(&raw, path, origin, health)
    }

    /// `text` (the pools file `path`) as [`PoolsRaw`], reusing the hosts
    /// whose lines are as they were at the last read.
    pub fn parse(&self, text: &str, path: &Path) -> Result<PoolsRaw, ConfigError> {
        let split = split(text);
        if let Some(s) = &split
            && let Some(raw) = self.reuse(s, path)
        {
            return Ok(raw);
        }
        let raw: PoolsRaw = parse_yaml(text, path)?;
        self.keep(path, split.as_ref(), &raw);
        Ok(raw)
    }

    /// Forgets the files not in `keep`.
    pub fn retain(&self, keep: &[PathBuf]) {
        self.lock().retain(|p, _| keep.contains(p));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<PathBuf, Held>> {
        self.held.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The file from the rest and its hosts, the unchanged ones as held;
    /// `None` when the whole file is to be parsed.
    fn reuse(&self, s: &Split<'_>, path: &Path) -> Option<PoolsRaw> {
        // Taken out (a read that gives up leaves the next one to read the
        // whole file, which keeps its hosts again).
        let mut held = self.lock().remove(path)?;
        let mut hosts: Vec<Option<(Spanned<String>, HostRaw)>> = s
            .hosts
            .iter()
            .map(|&(line, t)| held.remove(&(line, Box::from(t))))
            .collect();
        drop(held);
        let changed = hosts.iter().filter(|h| h.is_none()).count();
        if changed > MAX_CHANGED {
            return None;
        }
        let mut raw: PoolsRaw = parse_yaml(&s.rest, path).ok()?;
        if !raw.hosts.is_empty() {
            return None;
        }
        for (h, &(line, t)) in hosts.iter_mut().zip(&s.hosts) {
            if h.is_none() {
                // The host's lines at their own lines, under `hosts:`.
                let one = format!("{}hosts:\n{t}", "\n".repeat(line as usize - 2));
                let mut only: HostsOnly = parse_yaml(&one, path).ok()?;
                if only.hosts.len() != 1 {
                    return None;
                }
                *h = only.hosts.pop();
            }
        }
        let mut fresh = Held::with_capacity(hosts.len());
        let mut names = std::collections::HashSet::with_capacity(hosts.len());
        for (h, &(line, t)) in hosts.into_iter().zip(&s.hosts) {
            let (key, host) = h?;
            // A name given twice: the whole file's error.
            if !names.insert(key.value.clone()) {
                return None;
            }
            fresh.insert((line, Box::from(t)), (key.clone(), host.clone()));
            raw.hosts.insert(key, host);
        }
        self.lock().insert(path.to_path_buf(), fresh);
        Some(raw)
    }

    /// Keeps the hosts of a whole-file read, when the split found them
    /// where the parse did.
    fn keep(&self, path: &Path, s: Option<&Split<'_>>, raw: &PoolsRaw) {
        let held = s
            .filter(|s| s.hosts.len() == raw.hosts.len())
            .and_then(|s| {
                s.hosts
                    .iter()
                    .zip(&raw.hosts)
                    .map(|(&(line, t), (k, h))| {
                        (k.referenced.line() as u32 == line)
                            .then(|| ((line, Box::from(t)), (k.clone(), h.clone())))
                    })
                    .collect::<Option<Held>>()
            });
        let mut all = self.lock();
        match held {
            Some(h) => {
                all.insert(path.to_path_buf(), h);
            }
            None => {
                all.remove(path);
            }
        }
    }
}

/// A pools file cut into its hosts and the rest.
struct Split<'a> {
    /// The file with the hosts' lines blank and `hosts: {}`.
    rest: String,
    /// Each host's first line (1-based) and the text of its lines.
    hosts: Vec<(u32, &'a str)>,
}

/// Cuts `text` at its hosts: one top-level `hosts:` line, then host keys
/// indented by two spaces, each with the more indented lines after it.
/// `None` for anything else.
fn split(text: &str) -> Option<Split<'_>> {
    let mut lines = Vec::new();
    let mut at = 0;
    for l in text.split_inclusive('\n') {
        lines.push((at, l));
        at += l.len();
    }
    let blank = |l: &str| {
        let t = l.trim_start_matches(' ');
        t.trim().is_empty() || t.starts_with('#')
    };
    let is_hosts = |l: &str| {
        l.strip_prefix("hosts:")
            .is_some_and(|r| r.trim().is_empty() || r.trim_start().starts_with('#'))
    };
    let mut found = lines.iter().enumerate().filter(|(_, (_, l))| is_hosts(l));
    let (h, _) = found.next()?;
    if found.next().is_some() {
        return None;
    }
    let end = (h + 1..lines.len())
        .find(|&i| !lines[i].1.starts_with(' ') && !blank(lines[i].1))
        .unwrap_or(lines.len());
    let mut starts: Vec<usize> = Vec::new();
    for (i, &(_, l)) in lines.iter().enumerate().take(end).skip(h + 1) {
        if l.contains(['\t', '&', '*']) {
            return None;
        }
        if blank(l) {
            continue;
        }
        let indent = l.len() - l.trim_start_matches(' ').len();
        match indent {
            2 if !l[2..].starts_with(['-', '?', '{', '[', '"', '\'']) => starts.push(i),
            i if i > 2 && !starts.is_empty() => {}
            _ => return None,
        }
    }
    let byte = |i: usize| lines.get(i).map_or(text.len(), |l| l.0);
    let hosts = starts
        .iter()
        .enumerate()
        .map(|(k, &i)| {
            let next = starts.get(k + 1).copied().unwrap_or(end);
            (i as u32 + 1, &text[byte(i)..byte(next)])
        })
        .collect();
    let mut rest = String::with_capacity(text.len() / 8);
    for (i, &(_, l)) in lines.iter().enumerate() {
        if i == h {
            rest.push_str("hosts: {}\n");
        } else if i > h && i < end {
            rest.push('\n');
        } else {
            rest.push_str(l);
        }
    }
    Some(Split { rest, hosts })
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "ttl: 30\nedges:\n  a: { addresses: [192.0.2.1], location: [1, 2] }\n  \
                        b: { addresses: [192.0.2.2], location: [3, 4] }\nhosts:\n  # the web\n  \
                        www: { edges: [a, b] }\n  img:\n    edges: [b]\n    ttl: 60\n\n  \
                        cdn: {}\nnets:\n  10.0.0.0/8: [1, 2]\n";

    fn hosts(raw: &PoolsRaw) -> Vec<(String, u64, Option<u32>)> {
        raw.hosts
            .iter()
            .map(|(k, h)| (k.value.clone(), k.referenced.line(), h.ttl))
            .collect()
    }

    #[test]
    fn splits_hosts_from_the_rest_lines_kept() {
        let s = split(FILE).unwrap();
        let firsts: Vec<u32> = s.hosts.iter().map(|h| h.0).collect();
        assert_eq!(firsts, vec![7, 8, 12]);
        assert_eq!(s.hosts[1].1, "  img:\n    edges: [b]\n    ttl: 60\n\n");
        assert_eq!(s.rest.lines().count(), FILE.lines().count());
        assert!(s.rest.contains("hosts: {}\n") && s.rest.contains("10.0.0.0/8"));
        for odd in [
            "hosts: { www: {} }\n",
            "hosts:\n  www: &x {}\n  img: *x\n",
            "hosts:\n - www\n",
            "hosts:\n  www: {}\n  \timg: {}\n",
            "hosts:\n  www: {}\nhosts:\n  img: {}\n",
        ] {
            assert!(split(odd).is_none(), "{odd}");
        }
    }

    /// An edit of one host parses that host and the rest, and reads as the
    /// whole file does; a broken one gives the whole file's error.
    #[test]
    fn an_edited_host_reads_as_the_whole_file() {
        let reuse = HostReuse::default();
        let path = Path::new("z.pools.yaml");
        let first = reuse.parse(FILE, path).unwrap();
        assert_eq!(reuse.lock()[path].len(), 3);
        let edited = FILE.replace("ttl: 60", "ttl: 90");
        let again = reuse.parse(&edited, path).unwrap();
        let whole: PoolsRaw = parse_yaml(&edited, path).unwrap();
        assert_eq!(hosts(&again), hosts(&whole));
        assert_eq!(hosts(&again)[1], ("img".into(), 8, Some(90)));
        assert_ne!(hosts(&first), hosts(&again));
        assert_eq!(again.edges.len(), 2);
        assert_eq!(again.nets.len(), 1);
        // A mistake in one host: the whole file's error, file:line: key.
        let broken = FILE.replace("ttl: 60", "ttl: sixty");
        let e = reuse.parse(&broken, path).unwrap_err();
        let want = parse_yaml::<PoolsRaw>(&broken, path).unwrap_err();
        assert_eq!(e, want);
        assert!(
            e.to_string().starts_with("z.pools.yaml:10: hosts.img.ttl"),
            "{e}"
        );
        // A host given twice: read as the whole file reads it.
        let twice = FILE.replace("  cdn: {}", "  www: {}");
        reuse.parse(FILE, path).unwrap();
        let whole = parse_yaml::<PoolsRaw>(&twice, path).map(|r| hosts(&r));
        assert_eq!(reuse.parse(&twice, path).map(|r| hosts(&r)), whole);
    }
}
