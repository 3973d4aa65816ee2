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
use crate::geo::GeoDb;
use crate::snapshot::{Snapshot, Zone};
use crate::wire;
use crate::zone::tree::{Node, Tree};

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

/// `zones/cdn.example.zone` → `zones/cdn.example.rtt.csv`.
pub fn rtt_path(zone_file: &Path) -> PathBuf {
    zone_file.with_extension("rtt.csv")
}

/// Loads one zone and its pools (and RTT) file into a [`Zone`].
pub fn build_zone(zone_file: &Path, health: &dyn HealthSource) -> Result<Zone, Vec<ConfigError>> {
    build_zone_with(zone_file, health, &mut FileCache::default())
}

/// [`build_zone`] reusing an unchanged RTT file's table from `cache`.
fn build_zone_with(
    zone_file: &Path,
    health: &dyn HealthSource,
    cache: &mut FileCache,
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
    let steering = if pools_file.exists() {
        let mut p = pools::load(&pools_file, &zf.origin, health)?;
        let rtt_file = rtt_path(zone_file);
        if rtt_file.exists() {
            let table = cache.rtt(&rtt_file, &p.steering, p.rtt_min_samples)?;
            p.steering = p.steering.with_rtt(table);
        }
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
                anc.len() > tree.apex_lower.len()
                    && tree
                        .nodes
                        .get(anc)
                        .is_some_and(|x| x.rrset(wire::TYPE_NS).is_some())
            });
            if occluded {
                errs.push(ConfigError::new(
                    &pools_file,
                    *line,
                    format!(
                        "hosts.{}: below a delegation",
                        p.steering.hosts[*host as usize].name
                    ),
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
        svcb = p.svcb;
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
    })
}

/// Reads the zone's DNSSEC keys (if `dnssec:` is configured and the zone
/// has key files) and adds DNSKEY, CDS and CDNSKEY at its apex.
pub fn sign_zone(cfg: &ServerConfig, zone: &mut Zone) -> Result<(), Vec<ConfigError>> {
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
            let line = 0;
            return Err(vec![ConfigError::new(
                &zone.zone_file,
                line,
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

/// Builds a complete snapshot from the config, or reports every problem.
pub fn build_snapshot(
    cfg: &ServerConfig,
    health: &dyn HealthSource,
    generation: u64,
) -> Result<Snapshot, ConfigErrors> {
    build_snapshot_with(cfg, health, generation, &mut FileCache::default())
}

/// Keeps what is slow to read while its file is unchanged: the opened
/// GeoIP DB, so a reload of a pools file doesn't copy and verify a 100 MB
/// database again, and each zone's RTT table, so it doesn't parse a
/// million-row file again.
#[derive(Default)]
pub struct FileCache {
    held: Option<(PathBuf, FileStamp, Arc<GeoDb>)>,
    /// The `geodb_asn` database, attached to the main one.
    asn: Option<(PathBuf, FileStamp, Arc<GeoDb>)>,
    rtt: std::collections::HashMap<PathBuf, HeldRtt>,
    /// The RTT files the build in progress read (the others are dropped).
    rtt_used: HashSet<PathBuf>,
    /// Serials of zones transferred out, when something transfers: each
    /// build gives every zone its serial (see [`crate::xfr::serial`]).
    pub serials: Option<crate::xfr::serial::SerialBook>,
}

/// A parsed RTT file and what its table depends on besides the file: the
/// edges' names (rows refer to them by index) and biases (rows are kept in
/// biased order), and `rtt.min_samples`.
struct HeldRtt {
    stamp: FileStamp,
    edges: Vec<(String, i8)>,
    min_samples: u64,
    table: Arc<crate::steer::RttTable>,
}

/// What identifies a file version without reading it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct FileStamp {
    len: u64,
    modified: Option<std::time::SystemTime>,
    ino: u64,
}

fn stamp(path: &Path) -> Option<FileStamp> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path).ok()?;
    Some(FileStamp {
        len: m.len(),
        modified: m.modified().ok(),
        ino: m.ino(),
    })
}

impl FileCache {
    /// The RTT table of `path` for steering `st`, parsed again only when the
    /// file or what the table depends on changed.
    fn rtt(
        &mut self,
        path: &Path,
        st: &crate::steer::Steering,
        min_samples: u64,
    ) -> Result<Arc<crate::steer::RttTable>, Vec<ConfigError>> {
        self.rtt_used.insert(path.to_path_buf());
        let before = stamp(path);
        let edges: Vec<(String, i8)> = st.edges.iter().map(|e| (e.name.clone(), e.bias)).collect();
        if let (Some(h), Some(now)) = (self.rtt.get(path), before)
            && h.stamp == now
            && h.min_samples == min_samples
            && h.edges == edges
        {
            return Ok(h.table.clone());
        }
        let table = Arc::new(crate::config::rtt::load(path, st, min_samples)?);
        match before {
            Some(stamp) => {
                let held = HeldRtt {
                    stamp,
                    edges,
                    min_samples,
                    table: table.clone(),
                };
                self.rtt.insert(path.to_path_buf(), held);
            }
            None => {
                self.rtt.remove(path);
            }
        }
        Ok(table)
    }

    fn open(&mut self, path: &Path) -> Result<Arc<GeoDb>, (PathBuf, String)> {
        Self::open_into(&mut self.held, path, GeoDb::open)
    }

    /// The main database with the ASN database at `asn` attached; reopened
    /// when either file changed.
    fn open_with_asn(&mut self, path: &Path, asn: &Path) -> Result<Arc<GeoDb>, (PathBuf, String)> {
        let asn_db = Self::open_into(&mut self.asn, asn, GeoDb::open)?;
        if let Some((_, _, held)) = &self.held
            && !held.asn_db().is_some_and(|a| std::ptr::eq(a, &*asn_db))
        {
            // A new ASN database: the main one is reopened to carry it.
            self.held = None;
        }
        Self::open_into(&mut self.held, path, |p| {
            GeoDb::open(p).map(|db| db.with_asn(asn_db.clone()))
        })
    }

    fn open_into(
        slot: &mut Option<(PathBuf, FileStamp, Arc<GeoDb>)>,
        path: &Path,
        open: impl FnOnce(&Path) -> Result<GeoDb, crate::geo::GeoError>,
    ) -> Result<Arc<GeoDb>, (PathBuf, String)> {
        let before = stamp(path);
        if let (Some((p, s, db)), Some(now)) = (&*slot, before)
            && p == path
            && *s == now
        {
            return Ok(db.clone());
        }
        let db = Arc::new(open(path).map_err(|e| (path.to_path_buf(), e.to_string()))?);
        if let Some(s) = before {
            *slot = Some((path.to_path_buf(), s, db.clone()));
        }
        Ok(db)
    }
}

/// [`build_snapshot`] reusing an unchanged GeoIP DB and RTT files.
pub fn build_snapshot_with(
    cfg: &ServerConfig,
    health: &dyn HealthSource,
    generation: u64,
    geo: &mut FileCache,
) -> Result<Snapshot, ConfigErrors> {
    geo.rtt_used.clear();
    let mut errs = Vec::new();
    let mut zones = Vec::new();
    match zone_files(&cfg.zones) {
        Ok(files) => {
            // A secondary-only server starts empty and fills on transfer.
            if files.is_empty() && cfg.xfr.secondaries.is_empty() {
                errs.push(ConfigError::new(
                    &cfg.zones,
                    0,
                    "no *.zone files: nothing to serve",
                ));
            }
            let mut seen = HashSet::new();
            for f in files {
                match build_zone_with(&f, health, geo).and_then(|mut z| {
                    sign_zone(cfg, &mut z)?;
                    Ok(z)
                }) {
                    Ok(mut z) => {
                        if seen.insert(z.tree.apex_lower.clone()) {
                            if let Some(book) = &mut geo.serials {
                                book.assign(&mut z, crate::clock::unix_now());
                            }
                            zones.push(z);
                        }
                    }
                    Err(e) => errs.extend(e),
                }
            }
            // A zone or RTT file gone since: its table is not kept.
            let used = std::mem::take(&mut geo.rtt_used);
            geo.rtt.retain(|p, _| used.contains(p));
        }
        Err(e) => errs.push(e),
    }
    let opened = match (&cfg.geodb, &cfg.geodb_asn) {
        (Some(p), Some(asn)) => Some((p, geo.open_with_asn(p, asn))),
        (Some(p), None) => Some((p, geo.open(p))),
        (None, Some(_)) => {
            errs.push(ConfigError::new(
                &cfg.path,
                0,
                "geodb_asn: needs geodb, the main database",
            ));
            None
        }
        (None, None) => None,
    };
    let geodb = match opened {
        Some((_, result)) => match result {
            Ok(db) => Some(db),
            Err((p, e)) => {
                let p = p.as_path();
                // GeoError already names the file.
                let prefix = format!("{}: ", p.display());
                errs.push(ConfigError::new(
                    p,
                    0,
                    e.strip_prefix(&prefix).unwrap_or(&e),
                ));
                None
            }
        },
        None => None,
    };
    let protocol = cfg.protocol().map_err(|e| errs.push(e)).ok();
    if !errs.is_empty() {
        return Err(ConfigErrors(errs));
    }
    // Every host's order per database record, as gdnsd does at load.
    for z in &mut zones {
        let t = std::time::Instant::now();
        let n = z.steering.precompute(geodb.as_deref());
        tracing::debug!(zone = %z.name, orders = n, ms = t.elapsed().as_secs_f64() * 1e3, "orders precomputed");
    }
    let mut snap = Snapshot::new(zones, geodb, generation);
    snap.fast = crate::dns::fast::build(&snap);
    Ok(snap.with_protocol(protocol.unwrap_or_default()))
}

/// `<zone>.load.yaml`: loads pushed by telemetry, as a file.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct LoadEntry {
    load: f64,
    #[serde(with = "crate::duration")]
    ttl: std::time::Duration,
}

/// `zones/cdn.example.zone` → `zones/cdn.example.load.yaml`.
pub fn load_path(zone_file: &Path) -> PathBuf {
    zone_file.with_extension("load.yaml")
}

/// (zone, edge, load, ttl) from a load file.
pub type FedLoad = (String, String, f64, std::time::Duration);

/// Sets the reload gauges to a snapshot about to go live.
fn observe(metrics: &crate::metrics::ReloadMetrics, snap: &Snapshot) {
    let db_epoch = snap.geodb.as_ref().map(|db| db.info().build_epoch);
    metrics.observe(snap.generation, snap.built_at, db_epoch);
}

/// Reads every zone's load file; errors name file and line.
pub fn read_loads(snap: &Snapshot) -> Result<Vec<FedLoad>, Vec<ConfigError>> {
    let mut out = Vec::new();
    let mut errs = Vec::new();
    for zone in snap.zones.values() {
        let path = load_path(&zone.zone_file);
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        let parsed: Result<indexmap::IndexMap<serde_saphyr::Spanned<String>, LoadEntry>, _> =
            crate::config::parse_yaml(&text, &path);
        match parsed {
            Ok(map) => {
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
            }
            Err(e) => errs.push(e),
        }
    }
    if errs.is_empty() { Ok(out) } else { Err(errs) }
}

/// The outcome of the last reload, for `/api/status` and logs.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ReloadStatus {
    pub ok: bool,
    /// Unix time of the attempt.
    pub at: u64,
    pub trigger: String,
    pub generation: u64,
    pub duration_ms: f64,
    pub errors: Vec<String>,
}

/// Owns the live snapshot handle and rebuilds it on demand.
pub struct Reloader {
    pub cfg: ServerConfig,
    shared: crate::snapshot::Shared,
    pub registry: Arc<crate::health::Registry>,
    checker: Option<crate::health::Checker>,
    /// Serialises reloads; holds the GeoIP DB and RTT caches.
    geo: std::sync::Mutex<FileCache>,
    status: std::sync::Mutex<ReloadStatus>,
    metrics: crate::metrics::ReloadMetrics,
}

impl Reloader {
    /// Builds the first snapshot; fails if it can't (a server with nothing
    /// valid to serve should not start).
    pub fn new(
        cfg: ServerConfig,
        registry: Arc<crate::health::Registry>,
        checker: Option<crate::health::Checker>,
    ) -> Result<Arc<Reloader>, ConfigErrors> {
        let mut geo = FileCache::default();
        if cfg.xfr.serves_transfers() {
            geo.serials = Some(crate::xfr::serial::SerialBook::open(&cfg.xfr.state_file));
        }
        let started = std::time::Instant::now();
        if let Some(d) = &cfg.dnssec {
            crate::dnssec::sign::SigCache::global().set_capacity(d.cache_size);
        }
        let snap = build_snapshot_with(&cfg, &*registry, 1, &mut geo)?;
        let loads = read_loads(&snap).map_err(ConfigErrors)?;
        let metrics = crate::metrics::ReloadMetrics::new();
        observe(&metrics, &snap);
        let r = Reloader {
            shared: Arc::new(arc_swap::ArcSwap::from_pointee(snap)),
            cfg,
            registry,
            checker,
            geo: std::sync::Mutex::new(geo),
            status: std::sync::Mutex::new(ReloadStatus {
                ok: true,
                at: crate::clock::unix_now(),
                trigger: "start".into(),
                generation: 1,
                duration_ms: started.elapsed().as_secs_f64() * 1e3,
                errors: Vec::new(),
            }),
            metrics,
        };
        r.after_swap(loads);
        Ok(Arc::new(r))
    }

    pub fn shared(&self) -> &crate::snapshot::Shared {
        &self.shared
    }

    pub fn status(&self) -> ReloadStatus {
        self.status
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Rebuilds from files and swaps the new snapshot in, or keeps the old
    /// one and reports why. Blocking (file I/O): call from a blocking thread.
    pub fn reload(&self, trigger: &str) -> Result<u64, ConfigErrors> {
        let mut geo = self.geo.lock().unwrap_or_else(|e| e.into_inner());
        let started = std::time::Instant::now();
        let generation = self.shared.load().generation + 1;
        let built = build_snapshot_with(&self.cfg, &*self.registry, generation, &mut geo)
            .and_then(|snap| read_loads(&snap).map(|l| (snap, l)).map_err(ConfigErrors));
        let ms = started.elapsed().as_secs_f64() * 1e3;
        let result = match built {
            Ok((snap, loads)) => {
                observe(&self.metrics, &snap);
                self.shared.store(Arc::new(snap));
                self.after_swap(loads);
                self.metrics.reloaded();
                tracing::info!(trigger, generation, ms, "reloaded");
                Ok(generation)
            }
            Err(errs) => {
                self.metrics.failed();
                for e in &errs.0 {
                    tracing::error!(
                        trigger,
                        "reload rejected, still serving the last good state: {e}"
                    );
                }
                Err(errs)
            }
        };
        *self.status.lock().unwrap_or_else(|e| e.into_inner()) = ReloadStatus {
            ok: result.is_ok(),
            at: crate::clock::unix_now(),
            trigger: trigger.to_string(),
            generation: self.shared.load().generation,
            duration_ms: ms,
            errors: result
                .as_ref()
                .err()
                .map(|e| e.0.iter().map(|x| x.to_string()).collect())
                .unwrap_or_default(),
        };
        result
    }

    /// Health bookkeeping for the snapshot just swapped in: feed file loads,
    /// forget removed edges, probe the current set.
    fn after_swap(&self, loads: Vec<FedLoad>) {
        let snap = self.shared.load();
        for (zone, edge, load, ttl) in loads {
            let _ = self.registry.feed_load(Some(&zone), &edge, load, ttl);
        }
        let mut live = HashSet::new();
        let mut targets = Vec::new();
        for zone in snap.zones.values() {
            for e in &zone.steering.edges {
                live.insert((zone.name.clone(), e.name.clone()));
                if let Some(check) = &e.check {
                    targets.push(crate::health::ProbeTarget {
                        zone: zone.name.clone(),
                        edge: e.name.clone(),
                        addresses: e.probe_addresses(),
                        check: check.clone(),
                        health: e.health.clone(),
                    });
                }
            }
        }
        self.registry.retain(&live);
        if let Some(c) = &self.checker {
            c.reconcile(targets);
        }
    }

    /// The paths whose changes trigger a reload: the zones directory (and
    /// its parent, to see the directory itself being replaced, e.g. a
    /// symlink flip) and the GeoIP DB's directory.
    fn watch_dirs(&self) -> Vec<PathBuf> {
        let mut dirs = vec![self.cfg.zones.clone()];
        if let Some(parent) = self.cfg.zones.parent() {
            dirs.push(if parent.as_os_str().is_empty() {
                PathBuf::from(".")
            } else {
                parent.to_path_buf()
            });
        }
        for db in self.cfg.geodb.iter().chain(&self.cfg.geodb_asn) {
            if let Some(parent) = db.parent() {
                dirs.push(if parent.as_os_str().is_empty() {
                    PathBuf::from(".")
                } else {
                    parent.to_path_buf()
                });
            }
        }
        if let Some(d) = &self.cfg.dnssec
            && d.keys.is_dir()
        {
            dirs.push(d.keys.clone());
        }
        dirs.sort();
        dirs.dedup();
        dirs
    }

    /// Is a change at `path` one we care about?
    fn relevant(&self, path: &Path) -> bool {
        let canon = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
        let zones = canon(&self.cfg.zones);
        let parent_is = |dir: &Path| path.parent().is_some_and(|p| canon(p) == dir);
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        // Anything in the zones dir except editor droppings; the zones dir
        // entry itself; the DB file.
        let keys = self.cfg.dnssec.as_ref().map(|d| canon(&d.keys));
        (keys.as_ref().is_some_and(|k| parent_is(k))
            && (name.ends_with(".key") || name.ends_with(".private")))
            || (parent_is(&zones)
                && !name.ends_with('~')
                && !name.ends_with(".swp")
                && !name.starts_with(".#"))
            || path.file_name() == self.cfg.zones.file_name()
                && self
                    .cfg
                    .zones
                    .parent()
                    .is_some_and(|p| parent_is(&canon(p)))
            || self.cfg.geodb.iter().chain(&self.cfg.geodb_asn).any(|db| {
                path.file_name() == db.file_name()
                    && db.parent().is_some_and(|p| parent_is(&canon(p)))
            })
    }

    /// Watches the files and reloads after [`QUIET`] (at most [`MAX_WAIT`]). The returned
    /// handle stops watching when dropped.
    ///
    /// Raw notify plus our own debounce rather than a debouncer crate:
    /// reloading *reads* the files, and the read (access) events must be
    /// filtered out by kind, or every reload would trigger the next one.
    pub fn watch(self: &Arc<Self>) -> Result<Watch, notify::Error> {
        use notify::{EventKind, RecursiveMode, Watcher};
        let (tx, rx) = std::sync::mpsc::channel::<notify::Result<notify::Event>>();
        let mut watcher = notify::recommended_watcher(tx)?;
        for d in self.watch_dirs() {
            watcher.watch(&d, RecursiveMode::NonRecursive)?;
        }
        let watcher = Arc::new(std::sync::Mutex::new(watcher));
        let weak_watcher = Arc::downgrade(&watcher);
        let me = Arc::downgrade(self);
        let relevant = move |me: &Reloader, ev: &notify::Result<notify::Event>| match ev {
            Ok(ev) => {
                !matches!(ev.kind, EventKind::Access(_)) && ev.paths.iter().any(|p| me.relevant(p))
            }
            Err(e) => {
                tracing::warn!("file watch error: {e}");
                false
            }
        };
        let spawned = std::thread::Builder::new()
            .name("geosteer-watch".into())
            .spawn(move || {
                use std::sync::mpsc::RecvTimeoutError;
                use std::time::Instant;
                while let Ok(ev) = rx.recv() {
                    let Some(me) = me.upgrade() else { break };
                    if !relevant(&me, &ev) {
                        continue;
                    }
                    // Debounce: reload after QUIET without *relevant*
                    // events (an rsync of many files is one reload), but
                    // no later than MAX_WAIT after the first one, so a
                    // file rewritten every 100 ms still gets loaded.
                    // Irrelevant events (the state file, other files in
                    // the parent directory) neither trigger nor delay.
                    let first = Instant::now();
                    let mut last = first;
                    loop {
                        let deadline = (last + QUIET).min(first + MAX_WAIT);
                        let Some(left) = deadline.checked_duration_since(Instant::now()) else {
                            break;
                        };
                        match rx.recv_timeout(left) {
                            Ok(ev) if relevant(&me, &ev) => last = Instant::now(),
                            Ok(_) => {}
                            Err(RecvTimeoutError::Timeout) => break,
                            Err(RecvTimeoutError::Disconnected) => return,
                        }
                    }
                    // Re-arm first: a replaced directory (symlink flip)
                    // needs a fresh watch, and a change made while the
                    // reload runs must not be missed.
                    let Some(w) = weak_watcher.upgrade() else {
                        break;
                    };
                    {
                        let mut w = w.lock().unwrap_or_else(|e| e.into_inner());
                        for dir in me.watch_dirs() {
                            let _ = w.unwatch(&dir);
                            if let Err(e) = w.watch(&dir, RecursiveMode::NonRecursive) {
                                tracing::warn!(dir = %dir.display(), "cannot watch: {e}");
                            }
                        }
                    }
                    let _ = me.reload("file change");
                }
            });
        if let Err(e) = spawned {
            tracing::error!("cannot start the file watcher: {e}");
        }
        Ok(Watch { _watcher: watcher })
    }
}

impl Reloader {
    /// Rebuilds the snapshot when a key's Publish, Activate, Inactive or
    /// Delete time passes, so a rollover needs only dated key files. Checks
    /// every few seconds (one atomic load); stops when the reloader goes.
    pub fn key_timer(self: &Arc<Self>) {
        if self.cfg.dnssec.is_none() {
            return;
        }
        let me = Arc::downgrade(self);
        let spawned = std::thread::Builder::new()
            .name("geosteer-keytimer".into())
            .spawn(move || {
                // A failed rebuild for an event is not retried every tick
                // (the old state keeps serving; fixing the files reloads).
                let mut tried = None;
                loop {
                    std::thread::sleep(std::time::Duration::from_secs(2));
                    let Some(me) = me.upgrade() else { break };
                    let now = crate::clock::unix_now();
                    let due = me
                        .shared
                        .load()
                        .zones
                        .values()
                        .filter_map(|z| z.dnssec.as_ref()?.next_event)
                        .filter(|&t| t <= now)
                        .min();
                    if due.is_some() && due != tried {
                        tried = due;
                        let _ = me.reload("key timing");
                    }
                }
            });
        if let Err(e) = spawned {
            tracing::error!("cannot start the key timer: {e}");
        }
    }
}

/// How long the files must be quiet before a reload.
const QUIET: std::time::Duration = std::time::Duration::from_millis(300);
/// The longest a reload waits for quiet after the first change.
const MAX_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// Keeps the file watcher alive.
pub struct Watch {
    _watcher: Arc<std::sync::Mutex<notify::RecommendedWatcher>>,
}
