//! The one helper module of the integration tests: every `tests/*.rs`
//! includes it with `mod support;` and uses the parts it needs.
//!
//! - [`server`]: in-process servers (the DNS server alone, or the whole
//!   `App` with its HTTP listener), their config directories, and a
//!   metrics recorder per server;
//! - [`browser`]: headless Chromium through chromedriver;
//! - [`dns`]: queries (hickory messages and bytes by hand) and the UDP and
//!   TCP exchanges that send them;
//! - [`fleet`]: an etcd cluster, edges and `geosteer` processes joined
//!   through it;
//! - [`http`]: a small blocking HTTP/1.1 client for `/api/*` and `/metrics`;
//! - [`paths`]: the answer core's fast and general paths, to compare them;
//! - [`probe`]: health-check specs and probe targets;
//! - [`steer`]: the steering fixtures (tests/fixtures/steer and
//!   tests/fixtures/rtt): GeoIP databases built once per binary, snapshots,
//!   in-process answers, replies parsed into edge names;
//! - [`tools`]: external peers (dig, knotd, unbound ...): find them, skip
//!   or fail when they are missing, run them;
//! - [`keys`]: DNSSEC keys made by the binary, their DS, delv's anchor;
//! - [`peers`]: BIND's `named` and Knot's `knotd` as primaries,
//!   secondaries or comparisons;
//! - [`unbound`]: Unbound as a resolver in front of the server under test;
//! - [`wait`]: poll until something holds (never a fixed sleep);
//! - [`alloc`]: a counting global allocator, for "allocates nothing";
//! - [`rng`]: a deterministic generator for randomized tests;
//! - [`rum`]: a RUM site and clients on many loopback source addresses;
//! - here: paths, files, free ports, child processes killed on drop, RSS.
// Each test binary uses a different subset.
#![allow(dead_code)]

pub mod alloc;
pub mod browser;
pub mod dns;
pub mod fleet;
pub mod http;
pub mod keys;
pub mod paths;
pub mod peers;
pub mod probe;
pub mod rng;
pub mod rum;
pub mod server;
pub mod steer;
pub mod tools;
pub mod unbound;
pub mod wait;

use std::net::{TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::Child;

/// The repository root (demo zone, GeoIP sources, fixtures).
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The text of `tests/fixtures/<name>`.
pub fn fixture(name: &str) -> String {
    std::fs::read_to_string(repo().join("tests/fixtures").join(name)).unwrap()
}

/// Writes `text` to `<dir>/<rel>`, making the directories on the way;
/// returns the path.
pub fn write_file(dir: &Path, rel: &str, text: &str) -> PathBuf {
    let p = dir.join(rel);
    if let Some(parent) = p.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    std::fs::write(&p, text).unwrap();
    p
}

/// A port free on loopback for both UDP and TCP right now (best effort:
/// bound, then released).
pub fn free_port() -> u16 {
    for _ in 0..50 {
        let u = UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = u.local_addr().unwrap().port();
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port");
}

/// A child process (the geosteer binary, chromedriver, a peer server),
/// killed and reaped on drop so a failed assertion leaks nothing.
pub struct KillOnDrop(pub Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Seconds since the Unix epoch (key timing in fixtures).
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// This process's resident set size in KiB.
pub fn vm_rss_kib() -> u64 {
    rss_kib("/proc/self/status")
}

/// VmRSS from a `/proc/PID/status` file.
pub fn rss_kib(status_file: &str) -> u64 {
    let status = std::fs::read_to_string(status_file).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/self/status")
}
