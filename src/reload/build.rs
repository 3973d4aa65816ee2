//! The files stage: every zone built against one database stage, each zone
//! whose files, keys and database are unchanged reused as it was, and the
//! snapshot assembled from them.
//!
//! A zone that fails keeps its last good copy; one that never built is
//! served as unloaded (SERVFAIL) until its files are fixed. The other
//! zones do not wait for it, nor fail with it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::files::{Stamps, key_stamps, zone_files};
use super::geodb::DbStage;
use super::zone::{self, Built, Failed, Outcome, Parsed, Serials};
use crate::config::pools::HealthSource;
use crate::config::{ConfigError, ConfigErrors, ServerConfig};
use crate::snapshot::{Snapshot, Unloaded, Zone};

/// One zone file's latest good build and latest failure (when the files
/// on disk now are broken).
#[derive(Clone, Default)]
pub(super) struct Slot {
    pub(super) good: Option<Built>,
    pub(super) failed: Option<Failed>,
}

/// Every zone's slot, by zone file: the files stage's state between builds.
#[derive(Clone, Default)]
pub(super) struct Zones {
    slots: BTreeMap<PathBuf, Slot>,
    /// Could not list the zones: nothing else was looked at.
    dir_error: Option<ConfigError>,
}

/// What one pass over the zones did.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Pass {
    pub(super) rebuilt: usize,
    pub(super) reused: usize,
    /// Zones left as they were because a file changed while being read.
    pub(super) torn: usize,
}

impl Zones {
    /// Brings every zone up to date with its files and `db`: zones whose
    /// inputs changed are built again, the others kept.
    pub(super) fn build(
        &mut self,
        cfg: &ServerConfig,
        health: &dyn HealthSource,
        db: &DbStage,
        parsed: &Parsed,
        serials: Option<&Serials>,
    ) -> Pass {
        let mut pass = Pass::default();
        let files = match zone_files(&cfg.zones) {
            // A secondary-only server starts empty and fills on transfer.
            Ok(f) if f.is_empty() && cfg.xfr.secondaries.is_empty() => Err(ConfigError::new(
                &cfg.zones,
                0,
                "no *.zone files: nothing to serve",
            )),
            other => other,
        };
        let files = match files {
            Ok(f) => f,
            Err(e) => {
                // A zones directory being replaced, or gone: keep serving
                // what was there.
                self.dir_error = Some(e);
                return pass;
            }
        };
        self.dir_error = None;
        let keys = Arc::new(match &cfg.dnssec {
            Some(d) => key_stamps(&d.keys),
            None => Stamps::default(),
        });
        let now = crate::clock::unix_now();
        // The first pass's failures are told once, by whoever started the
        // server: as its reason to refuse, or as zones answering SERVFAIL.
        let first = self.slots.is_empty();
        let mut slots = BTreeMap::new();
        for f in &files {
            let mut slot = self.slots.remove(f).unwrap_or_default();
            let good_holds = slot
                .good
                .as_ref()
                .is_some_and(|g| g.db == db.id() && g.keys == keys && !due(g, now, serials))
                && slot.good.as_ref().is_some_and(|g| g.inputs.unchanged());
            let failure_holds = !good_holds
                && slot
                    .failed
                    .as_ref()
                    .is_some_and(|x| x.db == db.id() && x.keys == keys && x.inputs.unchanged());
            if good_holds {
                // The files went back to the good version.
                slot.failed = None;
                pass.reused += 1;
            } else if failure_holds {
                pass.reused += 1;
            } else {
                pass.rebuilt += 1;
                match zone::build(cfg, f, health, db.db.as_ref(), &keys, parsed, serials) {
                    Outcome::Built(b) => {
                        slot.good = Some(b);
                        slot.failed = None;
                    }
                    Outcome::Failed(x) => {
                        for e in x.errors.iter().filter(|_| !first) {
                            tracing::error!(
                                "zone not reloaded, {}: {e}",
                                if slot.good.is_some() {
                                    "still serving its last good copy"
                                } else {
                                    "answering SERVFAIL"
                                }
                            );
                        }
                        slot.failed = Some(x);
                    }
                    Outcome::Torn => pass.torn += 1,
                }
            }
            slots.insert(f.clone(), slot);
        }
        // Zone files gone since are no longer served.
        self.slots = slots;
        parsed.retain(&files);
        pass
    }

    /// Takes `other`'s copy of each zone where it is the newer one: a full
    /// build against a new database stage, made while this state went on
    /// taking edits, is adopted without undoing those edits (they are
    /// built again against the new stage by the next pass).
    pub(super) fn adopt(&mut self, mut newer: Zones) {
        for (f, slot) in &mut newer.slots {
            if let Some(mine) = self.slots.get(f)
                && let (Some(g), Some(m)) = (&slot.good, &mine.good)
                && m.seq > g.seq
                && slot.failed.is_some()
            {
                slot.good = Some(m.clone());
            }
        }
        *self = newer;
    }

    /// Every problem now, in file order, as `geosteer check` prints them.
    pub(super) fn errors(&self) -> Vec<ConfigError> {
        let mut errs: Vec<ConfigError> = self.dir_error.iter().cloned().collect();
        for slot in self.slots.values() {
            if let Some(f) = &slot.failed {
                errs.extend(f.errors.iter().cloned());
            }
        }
        errs
    }

    /// Per zone file: its errors, and whether a last good copy serves.
    pub(super) fn failures(&self) -> Vec<(PathBuf, bool, Vec<String>)> {
        self.slots
            .iter()
            .filter_map(|(f, s)| {
                let x = s.failed.as_ref()?;
                Some((
                    f.clone(),
                    s.good.is_some(),
                    x.errors.iter().map(|e| e.to_string()).collect(),
                ))
            })
            .collect()
    }

    /// The zones to serve, the zones to answer SERVFAIL for, and the loads
    /// of the served ones' load files.
    pub(super) fn served(&self) -> (Vec<Arc<Zone>>, Vec<Unloaded>, Vec<zone::FedLoad>) {
        let mut zones = Vec::new();
        let mut unloaded = Vec::new();
        let mut loads = Vec::new();
        for (f, s) in &self.slots {
            match &s.good {
                Some(g) => {
                    zones.push(g.zone.clone());
                    loads.extend(g.loads.iter().cloned());
                }
                None => unloaded.extend(self::unloaded(f)),
            }
        }
        (zones, unloaded, loads)
    }

    /// Is there nothing at all this state can serve?
    pub(super) fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }
}

/// Is a zone to be built again though its files are unchanged? When a key
/// of it has reached a Publish, Activate, Inactive or Delete time since it
/// was signed, or, for a signed zone transferred out, when its serial's
/// signing period is over (the serial moves with the signatures).
fn due(built: &zone::Built, now: u64, serials: Option<&Serials>) -> bool {
    let Some(signer) = built.zone.dnssec.as_deref() else {
        return false;
    };
    let period = crate::xfr::serial::signing_period(signer);
    signer.next_event.is_some_and(|t| t <= now)
        || (serials.is_some() && built.at / period != now / period)
}

/// Puts a snapshot together from built zones.
pub(super) fn assemble(
    zones: Vec<Arc<Zone>>,
    unloaded: Vec<Unloaded>,
    db: &DbStage,
    protocol: crate::protocol::Protocol,
    generation: u64,
) -> Snapshot {
    let mut snap = Snapshot::assemble(zones, unloaded, db.db.clone(), generation);
    snap.fast = crate::dns::fast::build(&snap);
    snap.with_protocol(protocol)
}

/// Builds a complete snapshot from the config in one go, or reports every
/// problem (zones in file order, then the databases, then the rest of the
/// config), as `geosteer check` prints them.
pub fn build_snapshot(
    cfg: &ServerConfig,
    health: &dyn HealthSource,
    generation: u64,
) -> Result<Snapshot, ConfigErrors> {
    let mut errs = Vec::new();
    let db = DbStage::default().open(cfg).unwrap_or_else(|e| {
        errs.extend(e);
        DbStage::default()
    });
    let mut zones = Zones::default();
    zones.build(cfg, health, &db, &Parsed::default(), None);
    errs.splice(0..0, zones.errors());
    let protocol = cfg.protocol().map_err(|e| errs.push(e)).ok();
    if !errs.is_empty() {
        return Err(ConfigErrors(errs));
    }
    let (served, mut unloaded, _) = zones.served();
    add_awaiting_transfer(cfg, &served, &mut unloaded);
    Ok(assemble(
        served,
        unloaded,
        &db,
        protocol.unwrap_or_default(),
        generation,
    ))
}

/// The zone a zone file would serve (by its file name), answered SERVFAIL
/// while it has never loaded.
fn unloaded(zone_file: &Path) -> Option<Unloaded> {
    let origin = crate::zone::origin_from_filename(zone_file)?;
    Some(Unloaded {
        apex: crate::wire::lowercase(&crate::wire::from_hickory(&origin)),
        name: origin.to_string(),
        zone_file: zone_file.to_path_buf(),
        awaiting_transfer: false,
    })
}

/// Adds to `unloaded` the secondary zones of `cfg` that have no copy
/// among `zones` (none transferred yet, or expired): answered SERVFAIL
/// until one is.
pub(super) fn add_awaiting_transfer(
    cfg: &ServerConfig,
    zones: &[Arc<Zone>],
    unloaded: &mut Vec<Unloaded>,
) {
    for s in &cfg.xfr.secondaries {
        let apex = &s.apex;
        if zones.iter().any(|z| z.tree.apex_lower == *apex)
            || unloaded.iter().any(|u| u.apex == *apex)
        {
            continue;
        }
        unloaded.push(Unloaded {
            apex: apex.clone(),
            name: s.zone.clone(),
            zone_file: crate::xfr::secondary::zone_path(&cfg.zones, s),
            awaiting_transfer: true,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::pools::AlwaysUp;

    fn zone(a: &str) -> String {
        format!("$TTL 300\n@ SOA ns1 h 1 3600 600 86400 60\n@ NS ns1\nns1 A 127.0.0.1\nwww A {a}\n")
    }

    fn setup() -> (tempfile::TempDir, ServerConfig) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("zones")).unwrap();
        let cfg = ServerConfig::from_str(
            "listen: [127.0.0.1:0]\nzones: zones\n",
            &dir.path().join("geosteer.yaml"),
        )
        .unwrap();
        (dir, cfg)
    }

    /// The address of www in the served copy of `file`'s zone.
    fn www(z: &Zones) -> Option<String> {
        let (zones, _, _) = z.served();
        let zone = zones.first()?;
        let node = zone
            .tree
            .nodes
            .values()
            .find(|n| crate::wire::name_to_string(&n.owner).starts_with("www"))?;
        let set = node.rrset(crate::wire::TYPE_A)?;
        match &set.rdata[0] {
            crate::zone::tree::Rdata::Opaque(b) if b.len() == 4 => {
                Some(std::net::Ipv4Addr::new(b[0], b[1], b[2], b[3]).to_string())
            }
            _ => None,
        }
    }

    #[test]
    fn unchanged_zones_are_reused_and_broken_ones_keep_their_copy() {
        let (dir, cfg) = setup();
        let f = dir.path().join("zones/a.test.zone");
        let g = dir.path().join("zones/b.test.zone");
        std::fs::write(&f, zone("192.0.2.1")).unwrap();
        std::fs::write(&g, zone("192.0.2.9")).unwrap();
        let (db, rtt) = (DbStage::default(), Parsed::default());
        let mut z = Zones::default();
        let p = z.build(&cfg, &AlwaysUp, &db, &rtt, None);
        assert_eq!((p.rebuilt, p.reused), (2, 0));
        let first = z.served().0;
        let p = z.build(&cfg, &AlwaysUp, &db, &rtt, None);
        assert_eq!((p.rebuilt, p.reused), (0, 2));
        assert!(Arc::ptr_eq(&first[0], &z.served().0[0]), "reused as built");

        std::fs::write(
            &f,
            "$TTL 300\n@ SOA ns1 h 1 3600 600 86400 60\nwww A 999.1.1.1\n",
        )
        .unwrap();
        let p = z.build(&cfg, &AlwaysUp, &db, &rtt, None);
        assert_eq!((p.rebuilt, p.reused), (1, 1), "only the edited zone");
        assert!(
            Arc::ptr_eq(&first[0], &z.served().0[0]),
            "the last good copy"
        );
        assert!(!z.errors().is_empty());
        // Not built again while its files stay as they are.
        let p = z.build(&cfg, &AlwaysUp, &db, &rtt, None);
        assert_eq!((p.rebuilt, p.reused), (0, 2));
        assert!(!z.errors().is_empty());
    }

    /// A pools edit that moves no edge keeps the zone's orders (ranking
    /// every database point again is most of a big zone's build); one that
    /// moves an edge, or a new database, ranks again.
    #[test]
    fn orders_are_kept_while_no_edge_moves() {
        let (dir, _) = setup();
        std::fs::copy(
            concat!(env!("CARGO_MANIFEST_DIR"), "/geodb/demo-city.mmdb"),
            dir.path().join("city.mmdb"),
        )
        .unwrap();
        let cfg = ServerConfig::from_str(
            "listen: [127.0.0.1:0]\nzones: zones\ngeodb: city.mmdb\n",
            &dir.path().join("geosteer.yaml"),
        )
        .unwrap();
        let pools = |ttl: u32, lat: f64| {
            format!(
                "ttl: {ttl}\nedges:\n  a: {{ addresses: [192.0.2.1], location: [{lat}, 8] }}\n  \
                 b: {{ addresses: [192.0.2.2], location: [40, -74] }}\nhosts:\n  www: {{}}\n"
            )
        };
        let zones = dir.path().join("zones");
        std::fs::write(
            zones.join("a.test.zone"),
            "$TTL 300\n@ SOA ns1 h 1 3600 600 86400 60\n@ NS ns1\nns1 A 127.0.0.1\n",
        )
        .unwrap();
        std::fs::write(zones.join("a.test.pools.yaml"), pools(30, 50.0)).unwrap();
        let db = DbStage::default().open(&cfg).unwrap();
        let rtt = Parsed::default();
        let mut z = Zones::default();
        z.build(&cfg, &AlwaysUp, &db, &rtt, None);
        let steering = |z: &Zones| z.served().0[0].clone();
        let first = steering(&z);
        // Stamps tell edits apart by content within the same second.
        std::fs::write(zones.join("a.test.pools.yaml"), pools(60, 50.0)).unwrap();
        let p = z.build(&cfg, &AlwaysUp, &db, &rtt, None);
        assert_eq!(p.rebuilt, 1);
        let second = steering(&z);
        assert!(
            second.steering.shares_ranks(&first.steering),
            "no edge moved: orders kept"
        );
        std::fs::write(zones.join("a.test.pools.yaml"), pools(60, 51.0)).unwrap();
        z.build(&cfg, &AlwaysUp, &db, &rtt, None);
        let third = steering(&z);
        assert!(
            !third.steering.shares_ranks(&second.steering),
            "edge a moved: ranked again"
        );
        let newer = DbStage::default().open(&cfg).unwrap();
        z.build(&cfg, &AlwaysUp, &newer, &rtt, None);
        assert!(
            !steering(&z).steering.shares_ranks(&third.steering),
            "another database: ranked again"
        );
    }

    /// A full build against a new database stage started from an older
    /// state: adopting it keeps an edit the files stage served meanwhile.
    #[test]
    fn adopting_a_database_build_keeps_newer_edits() {
        let (dir, cfg) = setup();
        let f = dir.path().join("zones/a.test.zone");
        std::fs::write(&f, zone("192.0.2.1")).unwrap();
        let (db, rtt) = (DbStage::default(), Parsed::default());
        let mut mine = Zones::default();
        mine.build(&cfg, &AlwaysUp, &db, &rtt, None);
        // The database thread starts from this state...
        let mut newer = mine.clone();
        // ...the files stage serves an edit...
        std::fs::write(&f, zone("192.0.2.2")).unwrap();
        mine.build(&cfg, &AlwaysUp, &db, &rtt, None);
        assert!(www(&mine).unwrap().contains("192.0.2.2"));
        // ...which is broken by the time the database thread reads it.
        std::fs::write(&f, zone("300.0.2.3")).unwrap();
        newer.build(&cfg, &AlwaysUp, &db, &rtt, None);
        assert!(www(&newer).unwrap().contains("192.0.2.1"));
        mine.adopt(newer);
        assert!(
            www(&mine).unwrap().contains("192.0.2.2"),
            "the edit served before the adoption stays"
        );
        assert!(!mine.errors().is_empty());
    }
}
