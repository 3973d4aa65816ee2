//! DNSSEC keys for the tests: made by `geosteer dnssec keygen` (the binary
//! under test), their DS from `geosteer dnssec ds`, and delv's trust
//! anchor from that DS.

use std::path::{Path, PathBuf};
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_geosteer");

/// A key for `cdn.example` in `dir` (`--ksk` in `args` for a KSK); its
/// file name without extension.
pub fn keygen(dir: &Path, args: &[&str]) -> String {
    let out = Command::new(BIN)
        .args(["dnssec", "keygen", "cdn.example", "--dir"])
        .arg(dir)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "keygen: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// The DS lines of `cdn.example`'s keys in `dir`.
pub fn ds(dir: &Path) -> String {
    let out = Command::new(BIN)
        .args(["dnssec", "ds", "cdn.example", "--dir"])
        .arg(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// delv's trust anchor file, `<dir>/anchor.conf`, from DS lines.
pub fn delv_anchor(ds: &str, dir: &Path) -> PathBuf {
    let mut text = String::from("trust-anchors {\n");
    for l in ds.lines() {
        let f: Vec<&str> = l.split_whitespace().collect();
        text += &format!(
            "  {} static-ds {} {} {} \"{}\";\n",
            f[0], f[3], f[4], f[5], f[6]
        );
    }
    text += "};\n";
    let p = dir.join("anchor.conf");
    std::fs::write(&p, text).unwrap();
    p
}
