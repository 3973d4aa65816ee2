//! External peers (dig, kdig, knotd, unbound, delv, etcd, chromium,
//! dnstap-ldns ...): find them, gate a test on them, run them.
//!
//! A test that needs a peer starts with `if !need_tools(&[...]) { return; }`:
//! when one is missing it prints a loud SKIPPED and passes, unless
//! `GEOSTEER_REQUIRE_TOOLS=1` (CI), where it fails.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Which Debian package brings each tool (as .ci/run installs them).
const PACKAGES: &[(&str, &str)] = &[
    ("dig", "bind9-dnsutils"),
    ("delv", "bind9-dnsutils"),
    ("kdig", "knot-dnsutils"),
    ("knotd", "knot"),
    ("unbound", "unbound"),
    ("mmdblookup", "mmdb-bin"),
    ("dnssec-keygen", "bind9-utils"),
    ("named-checkzone", "bind9-utils"),
    ("named", "bind9"),
    ("knotc", "knot"),
    ("dnsdist", "dnsdist"),
    ("dnssec-dsfromkey", "bind9-utils"),
    ("ldns-keygen", "ldnsutils"),
    ("etcd", "etcd-server"),
    ("etcdctl", "etcd-client"),
    ("chromium", "chromium"),
    ("chromedriver", "chromium-driver"),
    ("dnstap-ldns", "dnstap-ldns"),
    ("fstrm_capture", "fstrm-bin"),
    ("promtool", "prometheus"),
];

/// Finds an executable on PATH or in the sbin directories (Debian puts
/// unbound and knotd there, often outside a test's PATH).
pub fn find_tool(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/local/sbin"].map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// The path of a tool a passed [`need_tools`] gate vouched for.
pub fn tool(name: &str) -> PathBuf {
    find_tool(name).unwrap_or_else(|| panic!("{name} not installed (need_tools first)"))
}

/// Whether CI asked for every peer to be there (`GEOSTEER_REQUIRE_TOOLS`
/// set, and not to `0`).
fn tools_required() -> bool {
    std::env::var_os("GEOSTEER_REQUIRE_TOOLS").is_some_and(|v| v != "0" && !v.is_empty())
}

/// True when every tool is installed. Otherwise fails the test under CI
/// (`GEOSTEER_REQUIRE_TOOLS=1`), or prints a loud SKIPPED naming the
/// package and returns false.
pub fn need_tools(tools: &[&str]) -> bool {
    let missing: Vec<String> = tools
        .iter()
        .filter(|t| find_tool(t).is_none())
        .map(|t| {
            let pkg = PACKAGES
                .iter()
                .find(|(tool, _)| tool == t)
                .map_or("?", |(_, p)| p);
            format!("{t} (install {pkg})")
        })
        .collect();
    if missing.is_empty() {
        return true;
    }
    let missing = missing.join(", ");
    if tools_required() {
        panic!("not installed: {missing}, and GEOSTEER_REQUIRE_TOOLS=1");
    }
    // Straight to the process's stderr: the test harness captures eprintln!.
    let _ = writeln!(
        std::io::stderr(),
        "\n********************************************************\n\
         SKIPPED: not installed: {missing} (GEOSTEER_REQUIRE_TOOLS=1 makes this fail)\n\
         ********************************************************\n"
    );
    false
}

/// Runs a command, panicking with its output if it fails; returns stdout.
pub fn run(cmd: &Path, args: &[&str]) -> String {
    let out = Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{}: {e}", cmd.display()));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{} {} failed: {}\n{stdout}\n{}",
        cmd.display(),
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}
