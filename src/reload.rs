//! Building snapshots from files, and swapping them in.
//!
//! A build reads every zone file and pools file, opens the GeoIP DB and
//! checks cross-references, all on the side. Only a complete, valid
//! snapshot is swapped in; on any error the old one keeps serving.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::config::pools::{self, HealthSource};
use crate::config::{ConfigError, ConfigErrors, ServerConfig};
use crate::dns::tree::{Node, Tree};
use crate::dns::wire;
use crate::geo::GeoDb;
use crate::snapshot::{Snapshot, Zone};

/// The zone files (`*.zone`) in a directory, sorted for stable output.
pub fn zone_files(dir: &Path) -> Result<Vec<PathBuf>, ConfigError> {
    let rd = std::fs::read_dir(dir)
        .map_err(|e| ConfigError::new(dir, 0, format!("cannot read zones directory: {e}")))?;
    let mut files: Vec<PathBuf> = rd
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "zone") && p.is_file())
        .collect();
    files.sort();
    Ok(files)
}

/// `zones/cdn.example.zone` → `zones/cdn.example.pools.yaml`.
pub fn pools_path(zone_file: &Path) -> PathBuf {
    zone_file.with_extension("pools.yaml")
}

/// Loads one zone and its pools file into a [`Zone`].
pub fn build_zone(zone_file: &Path, health: &dyn HealthSource) -> Result<Zone, Vec<ConfigError>> {
    let origin = crate::zone::origin_from_filename(zone_file).ok_or_else(|| {
        vec![ConfigError::new(
            zone_file,
            0,
            "zone file names must be <zone>.zone, like cdn.example.zone",
        )]
    })?;
    let zf = crate::zone::load_zone_file(zone_file, &origin).map_err(|errs| {
        errs.into_iter()
            .map(|e| ConfigError {
                file: e.file,
                line: e.line,
                reason: e.reason,
            })
            .collect::<Vec<_>>()
    })?;
    for w in &zf.warnings {
        tracing::warn!("{w}");
    }
    let mut tree = Tree::build(&zf.origin, zf.records.iter().enumerate().map(|(i, r)| (i, &r.record))).map_err(
        |errs| {
            errs.into_iter()
                .map(|e| match zf.records.get(e.index) {
                    Some(r) => ConfigError::new(&r.file, r.line, e.reason),
                    None => ConfigError::new(zone_file, 0, e.reason),
                })
                .collect::<Vec<_>>()
        },
    )?;
    let pools_file = pools_path(zone_file);
    let steering = if pools_file.exists() {
        let p = pools::load(&pools_file, &zf.origin, health)?;
        let mut errs = Vec::new();
        for (owner, host, line) in &p.names {
            let key = wire::lowercase(owner);
            if let Some(n) = tree.nodes.get(&key)
                && !n.is_empty()
            {
                errs.push(ConfigError::new(
                    &pools_file,
                    *line,
                    format!(
                        "hosts.{}: {} also has records in {}; a name is either static or steered",
                        p.steering.hosts[*host as usize].name,
                        wire::name_to_string(owner),
                        zone_file.display()
                    ),
                ));
                continue;
            }
            // A steered name below a zone cut would never be reached.
            let mut offs = [0u8; 128];
            let n = wire::label_offsets(&key, &mut offs);
            let occluded = offs[1..n].iter().any(|&o| {
                let anc = &key[o as usize..];
                anc.len() > tree.apex_lower.len() && tree.nodes.get(anc).is_some_and(|x| x.rrset(wire::TYPE_NS).is_some())
            });
            if occluded {
                errs.push(ConfigError::new(
                    &pools_file,
                    *line,
                    format!("hosts.{}: below a delegation", p.steering.hosts[*host as usize].name),
                ));
                continue;
            }
            tree.nodes.insert(
                key,
                Node {
                    owner: owner.clone(),
                    host: Some(*host),
                    ..Node::default()
                },
            );
        }
        if !errs.is_empty() {
            return Err(errs);
        }
        tree.finish();
        p.steering
    } else {
        Default::default()
    };
    Ok(Zone {
        name: zf.origin.to_string(),
        tree,
        steering,
        zone_file: zone_file.to_path_buf(),
        pools_file: pools_file.exists().then_some(pools_file),
    })
}

/// Builds a complete snapshot from the config, or reports every problem.
pub fn build_snapshot(
    cfg: &ServerConfig,
    health: &dyn HealthSource,
    generation: u64,
) -> Result<Snapshot, ConfigErrors> {
    let mut errs = Vec::new();
    let mut zones = Vec::new();
    match zone_files(&cfg.zones) {
        Ok(files) => {
            if files.is_empty() {
                errs.push(ConfigError::new(&cfg.zones, 0, "no *.zone files: nothing to serve"));
            }
            let mut seen = HashSet::new();
            for f in files {
                match build_zone(&f, health) {
                    Ok(z) => {
                        if seen.insert(z.tree.apex_lower.clone()) {
                            zones.push(z);
                        }
                    }
                    Err(e) => errs.extend(e),
                }
            }
        }
        Err(e) => errs.push(e),
    }
    let geodb = match &cfg.geodb {
        Some(p) => match GeoDb::open(p) {
            Ok(db) => Some(Arc::new(db)),
            Err(e) => {
                errs.push(ConfigError::new(p, 0, e.to_string()));
                None
            }
        },
        None => None,
    };
    if !errs.is_empty() {
        return Err(ConfigErrors(errs));
    }
    Ok(Snapshot::new(zones, geodb, generation))
}
