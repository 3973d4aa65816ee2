//! The RUM threads run on the CPUs `rum.cpus` names (an operator keeps
//! them off the DNS workers' cores), and a CPU the process cannot use
//! stops the start with an error naming the key.

use crate::support;

use geosteer::ServerConfig;
use support::rum::{site, start};

/// The CPUs each of this process's threads named `prefix…` may run on.
fn cpus_of_threads(prefix: &str) -> Vec<String> {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .flatten()
        .filter(|t| {
            std::fs::read_to_string(t.path().join("comm")).is_ok_and(|c| c.starts_with(prefix))
        })
        .filter_map(|t| {
            let status = std::fs::read_to_string(t.path().join("status")).ok()?;
            let l = status
                .lines()
                .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))?;
            Some(l.trim().to_string())
        })
        .collect()
}

/// The last CPU this thread may run on.
fn last_cpu() -> usize {
    let status = std::fs::read_to_string("/proc/thread-self/status").unwrap();
    let list = status
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
        .unwrap();
    let last = list.trim().rsplit([',', '-']).next().unwrap();
    last.parse().unwrap()
}

#[test]
fn rum_threads_run_on_the_cpus_given() {
    // Alone: no other test's server (and RUM threads) runs meanwhile.
    let _alone = crate::exact_counters();
    let cpu = last_cpu();
    let (_dir, _cfg, app) = start(&format!("  cpus: [{cpu}]\n"), "");
    // The aggregator (`geosteer-rum`) and the listener (`geosteer-rum-http`).
    assert_eq!(
        cpus_of_threads("geosteer-rum"),
        vec![cpu.to_string(); 2],
        "the process may run on CPUs up to {cpu}"
    );
    app.shutdown();

    let dir = tempfile::tempdir().unwrap();
    let cfg = site(dir.path(), "  cpus: [1023]\n", "");
    let rt = support::server::runtime();
    let e = rt
        .block_on(geosteer::App::start(ServerConfig::load(&cfg).unwrap()))
        .err()
        .expect("CPU 1023 is not online here");
    let text = e.to_string();
    assert!(text.contains("rum.cpus: CPUs [1023]"), "{text}");
}
