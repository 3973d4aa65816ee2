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

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use indexmap::IndexMap;
use serde::Deserialize;
use serde_saphyr::Spanned;

use hickory_proto::rr::Name;

use super::pools::{HealthSource, HostEntry, HostRaw, Pools, PoolsRaw, PoolsRead};
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

/// One file's hosts by the text of their lines, with their first line.
/// Hashed as zone names are (operator text, so no need of SipHash's
/// resistance, and 4 MB of it are looked up on every edit).
type Held = HashMap<Box<str>, (u32, Arc<HostEntry>), Fast>;

type Fast = std::hash::BuildHasherDefault<crate::zone::tree::NameHasher>;

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
        let read = self.parse(&text, path).map_err(|e| vec![e])?;
        super::pools::from_read(&read, path, origin, health)
    }

    /// `text` (the pools file `path`) as read, reusing the hosts whose
    /// lines are as they were at the last read.
    pub fn parse(&self, text: &str, path: &Path) -> Result<PoolsRead, ConfigError> {
        let split = split(text);
        if let Some(s) = &split
            && let Some(read) = self.reuse(s, path)
        {
            return Ok(read);
        }
        let read = PoolsRead::whole(parse_yaml(text, path)?);
        self.keep(path, split.as_ref(), &read.hosts);
        Ok(read)
    }

    /// Forgets the files not in `keep`.
    pub fn retain(&self, keep: &[PathBuf]) {
        self.lock().retain(|p, _| keep.contains(p));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<PathBuf, Held>> {
        self.held.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The file from the rest and its hosts, the unchanged ones as held;
    /// `None` when the whole file is to be parsed. The held hosts stay
    /// where they are while this reads (another build may be reading the
    /// same file: both find them).
    fn reuse(&self, s: &Split<'_>, path: &Path) -> Option<PoolsRead> {
        let (mut hosts, held_len): (Vec<Option<Arc<HostEntry>>>, usize) = {
            let all = self.lock();
            let held = all.get(path)?;
            let hosts = s
                .hosts
                .iter()
                .map(|&(line, t)| match held.get(t) {
                    Some((l, e)) if *l == line => Some(e.clone()),
                    _ => None,
                })
                .collect();
            (hosts, held.len())
        };
        let changed = hosts.iter().filter(|h| h.is_none()).count();
        if changed > MAX_CHANGED {
            return None;
        }
        let rest: PoolsRaw = parse_yaml(&s.rest, path).ok()?;
        if !rest.hosts.is_empty() {
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
                let (k, raw) = only.hosts.pop()?;
                *h = Some(HostEntry::new(k, raw));
            }
        }
        let hosts: Vec<Arc<HostEntry>> = hosts.into_iter().collect::<Option<_>>()?;
        // A name given twice: the whole file's error.
        let mut names = HashSet::with_capacity_and_hasher(hosts.len(), Fast::default());
        if !hosts.iter().all(|h| names.insert(h.key.value.as_str())) {
            return None;
        }
        if changed > 0 || held_len != hosts.len() {
            self.update(path, s, &hosts);
        }
        Some(PoolsRead { rest, hosts })
    }

    /// Puts the hosts of this read among the held ones, and forgets the
    /// held ones it no longer has.
    fn update(&self, path: &Path, s: &Split<'_>, hosts: &[Arc<HostEntry>]) {
        let mut all = self.lock();
        let held = all.entry(path.to_path_buf()).or_default();
        for (&(line, t), h) in s.hosts.iter().zip(hosts) {
            match held.get(t) {
                Some((l, e)) if *l == line && Arc::ptr_eq(e, h) => {}
                _ => {
                    held.insert(Box::from(t), (line, h.clone()));
                }
            }
        }
        if held.len() > hosts.len() {
            let now: HashSet<&str, Fast> = s.hosts.iter().map(|&(_, t)| t).collect();
            held.retain(|t, _| now.contains(&**t));
        }
    }

    /// Keeps the hosts of a whole-file read, when the split found them
    /// where the parse did.
    fn keep(&self, path: &Path, s: Option<&Split<'_>>, hosts: &[Arc<HostEntry>]) {
        let held = s
            .filter(|s| s.hosts.len() == hosts.len())
            .and_then(|s| {
                s.hosts
                    .iter()
                    .zip(hosts)
                    .map(|(&(line, t), h)| {
                        (h.key.referenced.line() as u32 == line)
                            .then(|| (Box::from(t), (line, h.clone())))
                    })
                    .collect::<Option<Held>>()
            })
            // Two hosts written alike: not held (the read gives the
            // whole file's error).
            .filter(|h| h.len() == hosts.len());
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

    fn hosts(read: &PoolsRead) -> Vec<(String, u64, Option<u32>)> {
        read.hosts
            .iter()
            .map(|h| (h.key.value.clone(), h.key.referenced.line(), h.raw.ttl))
            .collect()
    }

    fn whole(text: &str, path: &Path) -> Result<PoolsRead, ConfigError> {
        parse_yaml::<PoolsRaw>(text, path).map(PoolsRead::whole)
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
        let all = whole(&edited, path).unwrap();
        assert_eq!(hosts(&again), hosts(&all));
        assert_eq!(hosts(&again)[1], ("img".into(), 8, Some(90)));
        assert_ne!(hosts(&first), hosts(&again));
        assert_eq!(again.rest.edges.len(), 2);
        assert_eq!(again.rest.nets.len(), 1);
        // The hosts not edited are the ones read before, not copies.
        assert!(Arc::ptr_eq(&first.hosts[0], &again.hosts[0]));
        assert!(Arc::ptr_eq(&first.hosts[2], &again.hosts[2]));
        assert!(!Arc::ptr_eq(&first.hosts[1], &again.hosts[1]));
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
        let all = whole(&twice, path).map(|r| hosts(&r));
        assert_eq!(reuse.parse(&twice, path).map(|r| hosts(&r)), all);
    }

    /// An unchanged host's validation is used again only while what it
    /// refers to is as it was: its own edit, edges reordered, renamed or
    /// added, a group changed and the default TTL all validate it again.
    #[test]
    fn a_host_is_validated_again_when_what_it_names_changes() {
        let reuse = HostReuse::default();
        let path = Path::new("z.pools.yaml");
        let origin = Name::from_ascii("cdn.example.").unwrap();
        let file = |ttl: u32, edges: &str, group: &str, img: &str| {
            format!(
                "ttl: {ttl}\nedges:\n{edges}groups:\n  g: [{group}]\nhosts:\n  \
                 www: {{ edges: [a, b] }}\n  img: {{ edges: [{img}] }}\n  cdn: {{}}\n  \
                 grp: {{ edges: [g] }}\n"
            )
        };
        let ab = "  a: { addresses: [192.0.2.1], location: [1, 2] }\n  \
                  b: { addresses: [192.0.2.2], location: [3, 4] }\n";
        let load = |text: &str| {
            let read = reuse.parse(text, path).unwrap();
            let p = super::super::pools::from_read(
                &read,
                path,
                &origin,
                &super::super::pools::AlwaysUp,
            )
            .unwrap();
            let hosts: Vec<(String, Vec<u16>, u32)> = p
                .steering
                .hosts
                .iter()
                .map(|h| (h.name.clone(), h.candidates.clone(), h.ttl))
                .collect();
            (read, hosts)
        };
        let cands =
            |h: &[(String, Vec<u16>, u32)]| h.iter().map(|x| x.1.clone()).collect::<Vec<_>>();
        let (r1, h1) = load(&file(30, ab, "a", "b"));
        assert_eq!(cands(&h1), [vec![0, 1], vec![1], vec![0, 1], vec![0]]);
        let id = |r: &PoolsRead, i: usize| r.hosts[i].checked.lock().unwrap().as_ref().map(|c| c.0);
        // An edge's address edited: every host's validation is used again.
        let moved = ab.replace("192.0.2.2", "192.0.2.9");
        let (r2, h2) = load(&file(30, &moved, "a", "b"));
        assert_eq!(h2, h1);
        assert!(Arc::ptr_eq(&r1.hosts[0], &r2.hosts[0]));
        assert_eq!(id(&r1, 0), id(&r2, 0));
        // The host's own edge list edited: that host anew.
        let (_, h) = load(&file(30, &moved, "a", "a"));
        assert_eq!(cands(&h), [vec![0, 1], vec![0], vec![0, 1], vec![0]]);
        // Edges in another order: the same text names other indexes.
        let ba = "  b: { addresses: [192.0.2.2], location: [3, 4] }\n  \
                  a: { addresses: [192.0.2.1], location: [1, 2] }\n";
        let (_, h) = load(&file(30, ba, "a", "a"));
        assert_eq!(cands(&h), [vec![1, 0], vec![1], vec![0, 1], vec![1]]);
        // An edge added: a host without `edges:` has it too.
        let abc = format!("{ab}  c: {{ addresses: [192.0.2.3], location: [5, 6] }}\n");
        let (_, h) = load(&file(30, &abc, "a", "a"));
        assert_eq!(cands(&h), [vec![0, 1], vec![0], vec![0, 1, 2], vec![0]]);
        // A group changed: its hosts follow.
        let (_, h) = load(&file(30, &abc, "c, b", "a"));
        assert_eq!(cands(&h)[3], vec![2, 1]);
        // An edge renamed: a host still naming the old one is an error
        // (file:line: key), not its last good validation.
        let renamed = abc.replace("  b:", "  bb:");
        let read = reuse.parse(&file(30, &renamed, "c", "a"), path).unwrap();
        let e =
            super::super::pools::from_read(&read, path, &origin, &super::super::pools::AlwaysUp)
                .unwrap_err();
        assert!(
            e[0].to_string()
                .starts_with("z.pools.yaml:9: hosts.www.edges: unknown edge or group \"b\""),
            "{}",
            e[0]
        );
        // The default TTL: every host without its own.
        let (_, h) = load(&file(60, &abc, "c", "a"));
        assert!(h.iter().all(|x| x.2 == 60));
    }
}
