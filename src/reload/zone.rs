//! Building one zone from its files: the zone file, `<zone>.pools.yaml`,
//! `<zone>.rtt.csv`, `<zone>.load.yaml` and its DNSSEC keys, against one
//! database stage. Zones are built, and fail, one by one.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use super::files::{Stamps, companions, load_path, pools_path, rtt_path};
use crate::config::pools::{self, HealthSource};
use crate::config::{ConfigError, ServerConfig};
use crate::geo::GeoDb;
use crate::snapshot::Zone;
use crate::wire;
use crate::zone::tree::{Node, Tree};

/// (zone, edge, load, ttl) from a load file.
pub(super) type FedLoad = (String, String, f64, std::time::Duration);

/// A zone built from its files, and what it was built from.
#[derive(Clone)]
pub(super) struct Built {
    pub(super) zone: Arc<Zone>,
    /// Loads from `<zone>.load.yaml`, fed to health after every swap.
    pub(super) loads: Arc<[FedLoad]>,
    /// Every file read (the zone file, its `$INCLUDE`s and companions).
    pub(super) inputs: Stamps,
    /// The database stage the steering was computed against.
    pub(super) db: u64,
    /// The key files as they were (empty without `dnssec:`).
    pub(super) keys: Arc<Stamps>,
    /// When it was built, in build order: of two copies of one zone, the
    /// later one is the newer.
    pub(super) seq: u64,
    /// When it was built, in Unix seconds.
    pub(super) at: u64,
}

/// The serials of zones transferred out (see [`crate::xfr::serial`]), kept
/// by whichever build thread builds a zone.
pub(super) type Serials = std::sync::Mutex<crate::xfr::serial::SerialBook>;

/// A zone whose files don't build, and which files those were.
#[derive(Clone)]
pub(super) struct Failed {
    pub(super) errors: Arc<[ConfigError]>,
    pub(super) inputs: Stamps,
    pub(super) db: u64,
    pub(super) keys: Arc<Stamps>,
}

/// Loads one zone and its pools (and RTT) file into a [`Zone`], without
/// the orders a database stage adds or the keys that sign it.
pub fn build_zone(zone_file: &Path, health: &dyn HealthSource) -> Result<Zone, Vec<ConfigError>> {
    build_unplaced(zone_file, health, &Parsed::default(), &mut Vec::new())
}

/// What building a zone came to.
pub(super) enum Outcome {
    Built(Built),
    Failed(Failed),
    /// A file changed while it was read: build again.
    Torn,
}

/// Builds the zone of `zone_file` against `db`, signed with `cfg`'s keys;
/// its stamps are taken before anything is read. `keys` are the key files'
/// stamps (see [`super::files::key_stamps`]), taken before this build.
/// Its orders are shared with any steering in use whose edges sit where
/// these do ([`crate::steer::Steering::precompute`]).
pub(super) fn build(
    cfg: &ServerConfig,
    zone_file: &Path,
    health: &dyn HealthSource,
    db: Option<&Arc<GeoDb>>,
    keys: &Arc<Stamps>,
    parsed: &Parsed,
    serials: Option<&Serials>,
) -> Outcome {
    let companions = companions(zone_file);
    let mut inputs = Stamps::of(
        [zone_file]
            .into_iter()
            .chain(companions.iter().map(PathBuf::as_path)),
    );
    let db_id = db.map_or(0, |d| d.id());
    let now = crate::clock::unix_now();
    let mut included = Vec::new();
    let built = build_unplaced(zone_file, health, parsed, &mut included).and_then(|mut z| {
        // RUM's resolver probe name, when RUM is on.
        if let Some(r) = &cfg.rum
            && let Some(w) = crate::rum::probe::add_probe_node(&mut z.tree, r.listen)
        {
            tracing::warn!("{w}");
        }
        // Every host's order per database record, as gdnsd does at load.
        let t = std::time::Instant::now();
        let n = z.steering.precompute(db.map(|d| &**d));
        tracing::debug!(zone = %z.name, orders = n, ms = t.elapsed().as_secs_f64() * 1e3, "orders precomputed");
        sign_zone(cfg, &mut z)?;
        if let Some(book) = serials {
            book.lock().unwrap_or_else(|e| e.into_inner()).assign(&mut z, now);
        }
        let loads = read_loads(&z)?;
        Ok((z, loads))
    });
    // Included files are stamped after the read: an edit between the two
    // is seen as a change again, which costs a rebuild, never a miss.
    for f in &included {
        inputs.add(f);
    }
    static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    match built {
        // Written while we read it: what we read may be half a file.
        _ if !inputs.unchanged() => Outcome::Torn,
        Ok((zone, loads)) => Outcome::Built(Built {
            zone: Arc::new(zone),
            loads: loads.into(),
            inputs,
            db: db_id,
            keys: keys.clone(),
            seq: SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            at: now,
        }),
        Err(errors) => {
            // An error in a file the zone includes: that file is an input
            // too, so fixing it rebuilds the zone.
            for e in &errors {
                inputs.add(&e.file);
            }
            Outcome::Failed(Failed {
                errors: errors.into(),
                inputs,
                db: db_id,
                keys: keys.clone(),
            })
        }
    }
}

/// The zone, its steering and RTT data; `included` gets the files its
/// records came from.
fn build_unplaced(
    zone_file: &Path,
    health: &dyn HealthSource,
    parsed: &Parsed,
    included: &mut Vec<PathBuf>,
) -> Result<Zone, Vec<ConfigError>> {
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
    for r in &zf.records {
        if *r.file != *zone_file && !included.iter().any(|f| **f == *r.file) {
            included.push(r.file.to_path_buf());
        }
    }
    let mut tree = Tree::build(
        &zf.origin,
        zf.records.iter().enumerate().map(|(i, r)| (i, &r.record)),
    )
    .map_err(|errs| {
        errs.into_iter()
            .map(|e| match zf.records.get(e.index) {
                Some(r) => ConfigError::new(&r.file, r.line, e.reason),
                None => ConfigError::new(zone_file, 0, e.reason),
            })
            .collect::<Vec<_>>()
    })?;
    let pools_file = pools_path(zone_file);
    let mut svcb = Vec::new();
    let mut rum_urls = Vec::new();
    let steering = if pools_file.exists() {
        let mut p = parsed.hosts.load(&pools_file, &zf.origin, health)?;
        let rtt_file = rtt_path(zone_file);
        if rtt_file.exists() {
            let table = parsed.rtt.get(&rtt_file, &p.steering, p.rtt_min_samples)?;
            p.steering = p.steering.with_rtt(table);
        }
        add_steered_names(&mut tree, &p, zone_file, &pools_file)?;
        svcb = p.svcb;
        rum_urls = p.rum_urls;
        p.steering
    } else {
        if rtt_path(zone_file).exists() {
            tracing::warn!(
                "{}: ignored: no {} to steer with",
                rtt_path(zone_file).display(),
                pools_file.display()
            );
        }
        Default::default()
    };
    let name = zf.origin.to_string();
    Ok(Zone {
        counters: crate::metrics::SteerCounters::new(&name, &steering),
        name,
        tree,
        steering,
        dnssec: None,
        zone_file: zone_file.to_path_buf(),
        pools_file: pools_file.exists().then_some(pools_file),
        svcb,
        rum_urls,
    })
}

/// Puts the pools file's steered hosts into the zone's tree: a name is
/// either static (zone file) or steered (pools file), never below a cut.
fn add_steered_names(
    tree: &mut Tree,
    p: &pools::Pools,
    zone_file: &Path,
    pools_file: &Path,
) -> Result<(), Vec<ConfigError>> {
    let mut errs = Vec::new();
    tree.nodes.reserve(p.names.len());
    for (owner, host, line) in &p.names {
        let key = wire::lowercase(owner);
        let host_name = &p.steering.hosts[*host as usize].name;
        if let Some(n) = tree.nodes.get(&key)
            && !n.is_empty()
        {
            errs.push(ConfigError::new(
                pools_file,
                *line,
                format!(
                    "hosts.{host_name}: {} also has records in {}; a name is either static or steered",
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
            anc.len() > tree.apex_lower.len()
                && tree
                    .nodes
                    .get(anc)
                    .is_some_and(|x| x.rrset(wire::TYPE_NS).is_some())
        });
        if occluded {
            errs.push(ConfigError::new(
                pools_file,
                *line,
                format!("hosts.{host_name}: below a delegation"),
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
    Ok(())
}

/// Reads the zone's DNSSEC keys (if `dnssec:` is configured and the zone
/// has key files) and adds DNSKEY, CDS and CDNSKEY at its apex.
pub(super) fn sign_zone(cfg: &ServerConfig, zone: &mut Zone) -> Result<(), Vec<ConfigError>> {
    let Some(d) = &cfg.dnssec else {
        return Ok(());
    };
    let now = crate::clock::unix_now();
    let key_ttl = zone.tree.soa().ttl;
    let signer =
        crate::dnssec::ZoneSigner::load(&d.keys, &zone.tree.apex_lower, d.policy, key_ttl, now)
            .map_err(|errs| {
                errs.iter()
                    .map(|e| {
                        let (file, line, reason) = e.parts();
                        ConfigError::new(&file, line, reason)
                    })
                    .collect::<Vec<_>>()
            })?;
    let Some(signer) = signer else {
        return Ok(());
    };
    let apex = zone.tree.apex_lower.clone();
    let node = zone.tree.nodes.get_mut(&apex).expect("tree has its apex");
    for set in signer.apex_rrsets() {
        if node.rrset(set.rtype).is_some() {
            return Err(vec![ConfigError::new(
                &zone.zone_file,
                0,
                format!(
                    "{} at the apex comes from the keys in {}; remove it from the zone file",
                    match set.rtype {
                        crate::dnssec::sign::TYPE_DNSKEY => "DNSKEY",
                        crate::dnssec::sign::TYPE_CDS => "CDS",
                        _ => "CDNSKEY",
                    },
                    d.keys.display()
                ),
            )]);
        }
        if !set.rdata.is_empty() {
            node.rrsets.push(set);
        }
    }
    zone.dnssec = Some(Arc::new(signer));
    Ok(())
}

/// `<zone>.load.yaml`: loads pushed by telemetry, as a file.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct LoadEntry {
    load: f64,
    #[serde(with = "crate::duration")]
    ttl: std::time::Duration,
}

/// Reads the zone's load file (none: no loads); errors name file and line.
pub(super) fn read_loads(zone: &Zone) -> Result<Vec<FedLoad>, Vec<ConfigError>> {
    let path = load_path(&zone.zone_file);
    let Ok(text) = std::fs::read_to_string(&path) else {
        return Ok(Vec::new());
    };
    let map: indexmap::IndexMap<serde_saphyr::Spanned<String>, LoadEntry> =
        crate::config::parse_yaml(&text, &path).map_err(|e| vec![e])?;
    let mut out = Vec::new();
    let mut errs = Vec::new();
    for (edge, e) in map {
        let line = edge.referenced.line() as u32;
        if !zone.steering.edges.iter().any(|x| x.name == edge.value) {
            errs.push(ConfigError::new(
                &path,
                line,
                format!("{}: unknown edge", edge.value),
            ));
        } else if !(0.0..=1.0).contains(&e.load) {
            errs.push(ConfigError::new(
                &path,
                line,
                format!("{}.load: {} is not within 0..1", edge.value, e.load),
            ));
        } else {
            out.push((zone.name.clone(), edge.value, e.load, e.ttl));
        }
    }
    if errs.is_empty() { Ok(out) } else { Err(errs) }
}

/// What builds keep of the files they parsed, so that an unchanged file
/// (or part of one) is not parsed again: the RTT tables, and the hosts of
/// the pools files ([`crate::config::hosts`]).
#[derive(Default)]
pub(super) struct Parsed {
    rtt: RttCache,
    hosts: crate::config::hosts::HostReuse,
}

impl Parsed {
    /// Forgets what the zones of `zone_files` no longer read.
    pub(super) fn retain(&self, zone_files: &[PathBuf]) {
        self.rtt.retain(zone_files);
        let pools: Vec<PathBuf> = zone_files.iter().map(|z| pools_path(z)).collect();
        self.hosts.retain(&pools);
    }
}

/// Parsed RTT files, kept while the file and what its table depends on
/// are unchanged: a zone rebuilt for a pools edit does not parse a
/// million-row file again.
#[derive(Default)]
struct RttCache {
    held: Mutex<HashMap<PathBuf, HeldRtt>>,
}

/// A parsed RTT file and what its table depends on besides the file: the
/// edges' names (rows refer to them by index) and biases (rows are kept in
/// biased order), and `rtt.min_samples`.
struct HeldRtt {
    stamps: Stamps,
    edges: Vec<(String, i8)>,
    min_samples: u64,
    table: Arc<crate::steer::RttTable>,
}

impl RttCache {
    /// The RTT table of `path` for steering `st`, parsed again only when the
    /// file or what the table depends on changed.
    fn get(
        &self,
        path: &Path,
        st: &crate::steer::Steering,
        min_samples: u64,
    ) -> Result<Arc<crate::steer::RttTable>, Vec<ConfigError>> {
        let stamps = Stamps::of([path]);
        let edges: Vec<(String, i8)> = st.edges.iter().map(|e| (e.name.clone(), e.bias)).collect();
        if let Some(h) = self.lock().get(path)
            && h.stamps.unchanged()
            && h.min_samples == min_samples
            && h.edges == edges
        {
            return Ok(h.table.clone());
        }
        // Parsed unlocked: another zone's build need not wait for it.
        let table = Arc::new(crate::config::rtt::load(path, st, min_samples)?);
        let held = HeldRtt {
            stamps,
            edges,
            min_samples,
            table: table.clone(),
        };
        self.lock().insert(path.to_path_buf(), held);
        Ok(table)
    }

    /// Forgets the tables of files no zone reads any more.
    fn retain(&self, zone_files: &[PathBuf]) {
        let keep: std::collections::HashSet<PathBuf> =
            zone_files.iter().map(|z| rtt_path(z)).collect();
        self.lock().retain(|p, _| keep.contains(p));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<PathBuf, HeldRtt>> {
        self.held.lock().unwrap_or_else(|e| e.into_inner())
    }
}
