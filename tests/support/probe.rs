//! Health-check fixtures: a check spec from its YAML, and the probe target
//! that points a checker at an edge's addresses.

use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;

use geosteer::{CheckConfig, CheckSpec, ProbeTarget, Registry};

/// The check `name` from its YAML (`{ type: http, port: ... }`); relative
/// paths in it (CA files) resolve against `dir`.
pub fn check(yaml: &str, dir: &Path, name: &str) -> Arc<CheckSpec> {
    let cfg: CheckConfig = serde_saphyr::from_str(yaml).expect("check yaml");
    Arc::new(cfg.validate(dir).expect("valid check").named(name))
}

/// Probes of `check` against `addrs` for `zone`/`edge`, reporting into `reg`.
pub fn target(
    reg: &Registry,
    zone: &str,
    edge: &str,
    addrs: &[IpAddr],
    check: &Arc<CheckSpec>,
) -> ProbeTarget {
    ProbeTarget {
        zone: zone.into(),
        edge: edge.into(),
        addresses: addrs.to_vec(),
        check: check.clone(),
        health: reg.edge(zone, edge, check.initial),
    }
}
