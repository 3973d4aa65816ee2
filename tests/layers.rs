//! Imports go one way: no cycle among the crate's top-level modules, and
//! the answer core keeps its layering (the snapshot is data, `dns` reads
//! it, metrics observe the answers). Reads `src/` as text: an edge A -> B
//! is any `crate::B` path in a file of module A (`use`, a full path, a
//! serde `with = "crate::B"`), outside comments and `mod tests`.
//!
//! `cargo test --test layers -- --nocapture` prints the graph.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// from -> to -> files making the edge.
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

/// The code of a file without `//` comments (doc links are no imports) and
/// without its unit tests (they sit above every module).
fn code_of(text: &str) -> String {
    let text = match text.find("\n#[cfg(test)]\nmod tests") {
        Some(at) => &text[..at],
        None => text,
    };
    text.lines()
        .map(|l| l.find("//").map_or(l, |at| &l[..at]))
        .collect::<Vec<_>>()
        .join("\n")
}

fn ident(s: &str) -> &str {
    let end = s
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(s.len());
    &s[..end]
}

/// The top-level modules `code` names: `crate::a::..` and each item of
/// `crate::{a, b::c, d::{e}}`.
fn referenced(code: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (at, _) in code.match_indices("crate::") {
        let rest = &code[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let mut depth = 1;
            let mut item_start = true;
            for (i, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' => {
                        depth -= 1;
                        if depth == 0 {
                            break;
                        }
                    }
                    ',' if depth == 1 => item_start = true,
                    c if c.is_whitespace() => {}
                    _ if item_start && depth == 1 => {
                        out.insert(ident(&group[i..]).to_string());
                        item_start = false;
                    }
                    _ => {}
                }
            }
        } else {
            out.insert(ident(rest).to_string());
        }
    }
    out
}

fn graph() -> Graph {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let top = |p: &Path| -> String {
        let rel = p.strip_prefix(&src).expect("under src/");
        let first = rel.components().next().expect("non-empty");
        let name = first.as_os_str().to_string_lossy();
        name.strip_suffix(".rs").unwrap_or(&name).to_string()
    };
    let modules: BTreeSet<String> = files
        .iter()
        .map(|p| top(p))
        .filter(|m| m != "lib" && m != "main")
        .collect();
    let mut g = Graph::new();
    for p in &files {
        let from = top(p);
        if !modules.contains(&from) {
            continue;
        }
        let text = std::fs::read_to_string(p).expect("readable source");
        let rel = p.strip_prefix(&src).unwrap().display().to_string();
        for to in referenced(&code_of(&text)) {
            if to != from && modules.contains(&to) {
                g.entry(from.clone())
                    .or_default()
                    .entry(to)
                    .or_default()
                    .insert(rel.clone());
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

#[test]
fn top_level_modules_import_one_way() {
    let g = graph();
    for (from, to) in &g {
        println!(
            "{from} -> {}",
            to.keys().cloned().collect::<Vec<_>>().join(", ")
        );
    }
    let mut back = Vec::new();
    for (from, tos) in &g {
        for (to, files) in tos {
            if reaches(&g, to, from) {
                back.push(format!(
                    "{from} -> {to} ({}) is on a cycle",
                    files.iter().cloned().collect::<Vec<_>>().join(", ")
                ));
            }
        }
    }
    assert!(
        back.is_empty(),
        "imports go both ways:\n{}",
        back.join("\n")
    );
}

#[test]
fn snapshot_is_data_dns_reads_it_metrics_observe() {
    let g = graph();
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
fn the_parser_sees_grouped_and_nested_paths() {
    let code = code_of(
        "use crate::{a, b::c, d::{e, f}};\n\
         // crate::commented\n\
         #[serde(with = \"crate::g\")]\n\
         let x = crate::h::y();\n\
         #[cfg(test)]\nmod tests { use crate::t; }\n",
    );
    let found: Vec<String> = referenced(&code).into_iter().collect();
    assert_eq!(found, ["a", "b", "d", "g", "h"]);
}
