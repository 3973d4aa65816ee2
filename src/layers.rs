//! Imports go one way, between files as between modules: no file of
//! `src/` reaches itself through the paths it names, no top-level module
//! does, and the answer core keeps its layering (the snapshot is data,
//! `dns` reads it, metrics observe the answers).
//!
//! It reads `src/` as text. A file's edges are the module files its paths
//! name: `crate::a::b`, `super::x`, `self::y`, a child module's name
//! (`fast::respond` in `dns/mod.rs`), an alias a `use` made of a module
//! (`use crate::steer; steer::decide`), grouped `use` trees, and serde's
//! `with = "crate::..."`; each resolves to the longest module prefix that
//! is a file (`crate::zone::tree::Node` is `src/zone/tree.rs`). A parent
//! declaring `mod child;` is no edge; a parent re-exporting or calling its
//! child is, and so is a child taking a name its parent defines: both at
//! once are a circle. Comments and `#[cfg(test)]` modules are left out.
//!
//! `cargo test --lib layers -- --nocapture` prints both graphs.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// A module path from the crate root (`["dns", "fast"]`; `[]` is lib.rs).
type ModPath = Vec<String>;
/// from -> to -> what the first names of the second.
type Graph = BTreeMap<String, BTreeMap<String, BTreeSet<String>>>;

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).expect("readable src/") {
        let p = e.expect("dir entry").path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The module path of a file under `src/` (`None` for the binary root).
fn module_of(rel: &Path) -> Option<ModPath> {
    let mut parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    let last = parts.pop()?;
    let stem = last.strip_suffix(".rs")?;
    match stem {
        "main" if parts.is_empty() => None,
        "lib" if parts.is_empty() => Some(parts),
        "mod" => Some(parts),
        s => {
            parts.push(s.to_string());
            Some(parts)
        }
    }
}

/// Skips a string or char literal starting at `i` (`"..."`, `'x'`,
/// `'\n'`); returns the index after it, or `i + 1` for a lifetime.
fn skip_literal(b: &[u8], i: usize) -> usize {
    match b[i] {
        b'"' => {
            let mut j = i + 1;
            while j < b.len() && b[j] != b'"' {
                j += if b[j] == b'\\' { 2 } else { 1 };
            }
            j + 1
        }
        b'\'' if b.get(i + 1) == Some(&b'\\') => {
            let mut j = i + 2;
            while j < b.len() && b[j] != b'\'' {
                j += 1;
            }
            j + 1
        }
        b'\'' if b.get(i + 2) == Some(&b'\'') => i + 3,
        _ => i + 1,
    }
}

/// The code of a file without `//` comments (doc links are no imports)
/// and without its `#[cfg(test)]` modules (tests may reach anything).
fn code_of(text: &str) -> String {
    let text: String = text
        .lines()
        .map(|l| {
            // A `//` inside a string ("http://...") ends the line early;
            // no path lives there.
            l.find("//").map_or(l, |at| &l[..at])
        })
        .collect::<Vec<_>>()
        .join("\n");
    let mut out = String::with_capacity(text.len());
    let mut rest = text.as_str();
    while let Some(at) = rest.find("#[cfg(test)]") {
        out.push_str(&rest[..at]);
        let after = &rest[at + "#[cfg(test)]".len()..];
        let trimmed = after.trim_start();
        let is_mod = trimmed.starts_with("mod ") || trimmed.starts_with("pub mod ");
        let (Some(open), true) = (after.find('{'), is_mod) else {
            rest = after;
            continue;
        };
        if after[..open].contains(';') {
            // `#[cfg(test)] mod tests;`: a file of its own.
            rest = &after[after.find(';').unwrap() + 1..];
            continue;
        }
        let b = after.as_bytes();
        let (mut i, mut depth) = (open, 0usize);
        while i < b.len() {
            match b[i] {
                b'{' => depth += 1,
                b'}' => {
                    depth -= 1;
                    if depth == 0 {
                        break;
                    }
                }
                b'"' | b'\'' => {
                    i = skip_literal(b, i);
                    continue;
                }
                _ => {}
            }
            i += 1;
        }
        rest = &after[(i + 1).min(after.len())..];
    }
    out.push_str(rest);
    out
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Tok {
    Ident(String),
    Sep,
    Open,
    Close,
    Comma,
    Semi,
    Star,
    Other,
}

/// Identifiers, `::` and the punctuation of `use` trees. A string's
/// content is read as code too, for serde's `with = "crate::..."`.
fn tokens(code: &str) -> Vec<Tok> {
    let b = code.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_alphabetic() || c == b'_' {
            let start = i;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                i += 1;
            }
            out.push(Tok::Ident(code[start..i].to_string()));
            continue;
        }
        if c.is_ascii_digit() {
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                i += 1;
            }
            out.push(Tok::Other);
            continue;
        }
        if c == b'\'' {
            // A char literal ('{') must not open a group; a lifetime is
            // an identifier.
            let j = skip_literal(b, i);
            if j > i + 1 {
                out.push(Tok::Other);
            }
            i = j;
            continue;
        }
        let t = match c {
            b':' if b.get(i + 1) == Some(&b':') => {
                i += 1;
                Tok::Sep
            }
            b'{' => Tok::Open,
            b'}' => Tok::Close,
            b',' => Tok::Comma,
            b';' => Tok::Semi,
            b'*' => Tok::Star,
            c if c.is_ascii_whitespace() || c == b'"' => {
                i += 1;
                continue;
            }
            _ => Tok::Other,
        };
        out.push(t);
        i += 1;
    }
    out
}

/// One path a file names: its segments (a glob ends in `*`), the name a
/// `use` binds it to, and whether it came from a `use`.
#[derive(Debug)]
struct Named {
    path: Vec<String>,
    alias: Option<String>,
    from_use: bool,
}

/// Expands the `use` tree at `toks[*i]` under `prefix` into `out`.
fn use_tree(toks: &[Tok], i: &mut usize, prefix: &[String], out: &mut Vec<Named>) {
    let mut path = prefix.to_vec();
    loop {
        match toks.get(*i) {
            Some(Tok::Ident(s)) => {
                path.push(s.clone());
                *i += 1;
            }
            Some(Tok::Star) => {
                path.push("*".into());
                *i += 1;
                break;
            }
            Some(Tok::Open) => {
                *i += 1;
                loop {
                    match toks.get(*i) {
                        Some(Tok::Close) => {
                            *i += 1;
                            return;
                        }
                        Some(Tok::Comma) => *i += 1,
                        None => return,
                        _ => use_tree(toks, i, &path, out),
                    }
                }
            }
            _ => break,
        }
        if toks.get(*i) == Some(&Tok::Sep) {
            *i += 1;
        } else {
            break;
        }
    }
    let mut alias = None;
    if toks.get(*i) == Some(&Tok::Ident("as".into())) {
        if let Some(Tok::Ident(a)) = toks.get(*i + 1) {
            alias = Some(a.clone());
        }
        *i += 2;
    }
    if path.len() > prefix.len() || path.last().is_some_and(|s| s == "self") {
        out.push(Named {
            path,
            alias,
            from_use: true,
        });
    }
}

/// Every path of two or more segments `code` names, `use` trees expanded.
fn paths(code: &str) -> Vec<Named> {
    let toks = tokens(code);
    let mut out = Vec::new();
    let mut i = 0;
    while i < toks.len() {
        let prev = i.checked_sub(1).map(|p| &toks[p]);
        match &toks[i] {
            Tok::Ident(s) if s == "use" => {
                i += 1;
                use_tree(&toks, &mut i, &[], &mut out);
            }
            // `pub(in crate::x)` names a visibility, not an import.
            Tok::Ident(s) if s == "in" => i += 2,
            Tok::Ident(_) if prev != Some(&Tok::Sep) && toks.get(i + 1) == Some(&Tok::Sep) => {
                let mut path = Vec::new();
                while let Some(Tok::Ident(s)) = toks.get(i) {
                    path.push(s.clone());
                    if toks.get(i + 1) == Some(&Tok::Sep) {
                        i += 2;
                    } else {
                        i += 1;
                        break;
                    }
                }
                out.push(Named {
                    path,
                    alias: None,
                    from_use: false,
                });
            }
            _ => i += 1,
        }
    }
    out
}

/// Child modules a file declares (`mod x;`, `pub(crate) mod x;`), leaving
/// out `#[cfg(test)]` ones (already cut from `code`).
fn declared_mods(code: &str) -> BTreeSet<String> {
    let toks = tokens(code);
    let mut out = BTreeSet::new();
    for w in toks.windows(3) {
        if let [Tok::Ident(m), Tok::Ident(name), Tok::Semi] = w
            && m == "mod"
        {
            out.insert(name.clone());
        }
    }
    out
}

struct Source {
    rel: String,
    module: ModPath,
    code: String,
}

fn sources() -> Vec<Source> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut out = Vec::new();
    for p in files {
        let rel = p.strip_prefix(&src).expect("under src/");
        let Some(module) = module_of(rel) else {
            continue;
        };
        let text = std::fs::read_to_string(&p).expect("readable source");
        out.push(Source {
            rel: rel.display().to_string(),
            module,
            code: code_of(&text),
        });
    }
    // Files of `#[cfg(test)] mod x;` declarations are tests, not modules:
    // only modules some file declares outside its tests are kept.
    let declared: BTreeSet<ModPath> = out
        .iter()
        .flat_map(|s| {
            declared_mods(&s.code).into_iter().map(|m| {
                let mut p = s.module.clone();
                p.push(m);
                p
            })
        })
        .collect();
    out.retain(|s| s.module.is_empty() || declared.contains(&s.module));
    out
}

/// The file a full path lands in: its longest prefix that is a module.
fn resolve<'a>(full: &[String], files: &'a BTreeMap<ModPath, String>) -> Option<&'a String> {
    (0..=full.len())
        .rev()
        .find_map(|n| files.get(&full[..n].to_vec()))
}

/// The file graph: file -> file -> the names that make the edge.
fn file_graph() -> Graph {
    let srcs = sources();
    let files: BTreeMap<ModPath, String> = srcs
        .iter()
        .map(|s| (s.module.clone(), s.rel.clone()))
        .collect();
    let mut g = Graph::new();
    for s in &srcs {
        let children = declared_mods(&s.code);
        let mut aliases: BTreeMap<String, ModPath> = BTreeMap::new();
        // `use` lines first: they make the aliases later paths go through.
        let mut named = paths(&s.code);
        named.sort_by_key(|n| !n.from_use);
        for n in named {
            let Some((base, rest)) = anchor(&n.path, &s.module, &children, &aliases) else {
                continue;
            };
            let mut full = base;
            let glob = rest.last().is_some_and(|r| r == "*");
            full.extend(rest.iter().filter(|r| *r != "*" && *r != "self").cloned());
            if n.from_use && !glob && files.contains_key(&full) {
                // `use crate::steer;`: only what goes through it counts.
                let name = n.alias.clone().or_else(|| full.last().cloned());
                if let Some(name) = name {
                    aliases.insert(name, full);
                }
                continue;
            }
            let Some(to) = resolve(&full, &files) else {
                continue;
            };
            if *to != s.rel {
                g.entry(s.rel.clone())
                    .or_default()
                    .entry(to.clone())
                    .or_default()
                    .insert(n.path.join("::"));
            }
        }
    }
    g
}

/// Where a path starts: the module its first segment stands for, and the
/// segments after it. `None` for paths outside the crate.
fn anchor(
    path: &[String],
    here: &ModPath,
    children: &BTreeSet<String>,
    aliases: &BTreeMap<String, ModPath>,
) -> Option<(ModPath, Vec<String>)> {
    let first = path.first()?;
    let mut base = match first.as_str() {
        "crate" => Vec::new(),
        "self" => here.clone(),
        "super" => here.clone(),
        c if children.contains(c) => {
            let mut b = here.clone();
            b.push(c.to_string());
            b
        }
        a => aliases.get(a)?.clone(),
    };
    let mut rest = &path[1..];
    if first == "super" {
        base.pop()?;
        while rest.first().is_some_and(|s| s == "super") {
            base.pop()?;
            rest = &rest[1..];
        }
    }
    Some((base, rest.to_vec()))
}

/// Top-level modules (`dns`, `steer`...) and their edges, from the files'.
fn module_graph(files: &Graph) -> Graph {
    let top = |rel: &str| -> Option<String> {
        let first = rel.split('/').next()?;
        let name = first.strip_suffix(".rs").unwrap_or(first);
        (name != "lib").then(|| name.to_string())
    };
    let mut g = Graph::new();
    for (from, tos) in files {
        for to in tos.keys() {
            if let (Some(a), Some(b)) = (top(from), top(to))
                && a != b
            {
                g.entry(a)
                    .or_default()
                    .entry(b)
                    .or_default()
                    .insert(from.clone());
            }
        }
    }
    g
}

fn reaches(g: &Graph, from: &str, to: &str) -> bool {
    let mut seen = BTreeSet::new();
    let mut stack = vec![from.to_string()];
    while let Some(m) = stack.pop() {
        if m == to {
            return true;
        }
        if seen.insert(m.clone()) {
            stack.extend(g.get(&m).into_iter().flat_map(|e| e.keys().cloned()));
        }
    }
    false
}

/// Every edge of `g` that lies on a cycle, with what makes it.
fn edges_on_cycles(g: &Graph) -> Vec<(String, String, String)> {
    let mut back = Vec::new();
    for (from, tos) in g {
        for (to, why) in tos {
            if reaches(g, to, from) {
                let why = why.iter().cloned().collect::<Vec<_>>().join(", ");
                back.push((from.clone(), to.clone(), why));
            }
        }
    }
    back
}

fn print(g: &Graph) {
    for (from, to) in g {
        println!(
            "{from} -> {}",
            to.keys().cloned().collect::<Vec<_>>().join(", ")
        );
    }
}

#[test]
fn files_import_one_way() {
    let g = file_graph();
    print(&g);
    let bad: Vec<String> = edges_on_cycles(&g)
        .into_iter()
        .map(|(from, to, why)| format!("{from} -> {to} ({why})"))
        .collect();
    assert!(
        bad.is_empty(),
        "files import each other:\n{}",
        bad.join("\n")
    );
}

#[test]
fn top_level_modules_import_one_way() {
    let g = module_graph(&file_graph());
    print(&g);
    let back: Vec<String> = edges_on_cycles(&g)
        .into_iter()
        .map(|(from, to, _)| format!("{from} -> {to} ({:?}) is on a cycle", g[&from][&to]))
        .collect();
    assert!(
        back.is_empty(),
        "imports go both ways:\n{}",
        back.join("\n")
    );
}

#[test]
fn snapshot_is_data_dns_reads_it_metrics_observe() {
    let g = module_graph(&file_graph());
    let imports = |a: &str, b: &str| g.get(a).is_some_and(|e| e.contains_key(b));
    assert!(
        imports("dns", "snapshot"),
        "the parser saw dns read the snapshot"
    );
    for (a, b) in [
        ("snapshot", "dns"),
        ("metrics", "dns"),
        ("metrics", "snapshot"),
        ("wire", "dns"),
        ("zone", "dns"),
        ("dnssec", "dns"),
    ] {
        assert!(!imports(a, b), "{a} must not import {b}: {:?}", g[a][b]);
    }
}

#[test]
fn the_parser_sees_every_kind_of_path() {
    let code = code_of(
        "use crate::{a, b::c, d::{e, f as g}};\n\
         use super::sib::{self, Thing};\n\
         use child::Item;\n\
         use crate::m;\n\
         // crate::commented\n\
         #[serde(with = \"crate::h\")]\n\
         pub(in crate::vis) fn f() { let x = crate::i::y(); m::z(); sib::w(); kid::v(); }\n\
         pub(super) struct S;\n\
         mod kid;\n\
         #[cfg(test)]\nmod tests { use crate::t; fn f() { let c = '}'; } }\n\
         const X: u8 = 1;\n",
    );
    assert!(!code.contains("crate::t") && code.contains("const X"));
    let found: Vec<String> = paths(&code).iter().map(|n| n.path.join("::")).collect();
    assert_eq!(
        found,
        [
            "crate::a",
            "crate::b::c",
            "crate::d::e",
            "crate::d::f",
            "super::sib::self",
            "super::sib::Thing",
            "child::Item",
            "crate::m",
            "crate::h",
            "crate::i::y",
            "m::z",
            "sib::w",
            "kid::v",
        ]
    );
    assert_eq!(declared_mods(&code), BTreeSet::from(["kid".to_string()]));
    let here = vec!["dns".to_string(), "fast".to_string()];
    let (base, rest) = anchor(
        &["super".into(), "render".into(), "Writer".into()],
        &here,
        &BTreeSet::new(),
        &BTreeMap::new(),
    )
    .unwrap();
    assert_eq!(
        (base, rest),
        (
            vec!["dns".to_string()],
            vec!["render".into(), "Writer".into()]
        )
    );
}
