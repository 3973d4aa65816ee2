//! What the HTTP API shows of the fleet: `/api/status`'s line and
//! `/api/fleet`'s instances, drift and verdicts per edge.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, UNIX_EPOCH};

use super::values::{EdgeKey, InstanceInfo};
use super::view::Fleet;

impl Fleet {
    /// The short form for `/api/status`.
    pub fn status_json(&self) -> serde_json::Value {
        let v = self.view();
        serde_json::json!({
            "instance": self.cfg.instance,
            "connected": v.connected,
            "since": humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_millis(v.since_ms)).to_string(),
            "last_error": v.last_error,
            "live_instances": v.instances.len(),
            "bad_values": v.bad_values,
            "resyncs": v.resyncs,
        })
    }

    /// Everything `GET /api/fleet` shows: instances, liveness, verdicts per
    /// edge, and which instances serve different files.
    pub fn report(&self) -> serde_json::Value {
        let v = self.view();
        let mut live = v.instances.clone();
        // Self is live for this instance's own view even before (or
        // without) its key round-tripping through etcd.
        live.entry(self.cfg.instance.clone())
            .or_insert_with(|| v.own.clone());
        if let Some(me) = live.get_mut(&self.cfg.instance) {
            *me = v.own.clone();
        }
        // The reference file set is the one most live instances serve
        // (ties go to this instance's).
        let mut counts: HashMap<&str, usize> = HashMap::new();
        for i in live.values() {
            *counts.entry(i.files_hash.as_str()).or_default() += 1;
        }
        let reference = counts
            .iter()
            .max_by_key(|(h, n)| (**n, **h == v.own.files_hash))
            .map(|(h, _)| h.to_string())
            .unwrap_or_default();
        let ref_files = live
            .values()
            .find(|i| i.files_hash == reference)
            .map(|i| i.files.clone())
            .unwrap_or_default();
        let mut instances = Vec::new();
        let describe = |name: &str, i: &InstanceInfo, is_live: bool| {
            let differs: Vec<&String> = ref_files
                .keys()
                .chain(i.files.keys())
                .filter(|f| ref_files.get(*f) != i.files.get(*f))
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .collect();
            serde_json::json!({
                "name": name,
                "self": name == self.cfg.instance,
                "live": is_live,
                "version": i.version,
                "generation": i.generation,
                "files_hash": i.files_hash,
                "drift": is_live && i.files_hash != reference,
                "differs": differs,
                "http": i.http,
                "started": humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_millis(i.started_ms)).to_string(),
            })
        };
        for (name, i) in &live {
            instances.push(describe(name, i, true));
        }
        for (name, (i, _)) in &v.gone {
            if !live.contains_key(name) {
                instances.push(describe(name, i, false));
            }
        }
        let mut edges = Vec::new();
        let mut local: BTreeMap<EdgeKey, _> = self
            .registry
            .edges()
            .into_iter()
            .map(|h| ((h.zone().to_owned(), h.name().to_owned()), h))
            .collect();
        let mut keys: Vec<EdgeKey> = v.verdicts.keys().cloned().collect();
        keys.extend(local.keys().cloned());
        keys.sort();
        keys.dedup();
        for k in keys {
            let mut verdicts: BTreeMap<String, &str> = v
                .verdicts
                .get(&k)
                .into_iter()
                .flatten()
                .filter(|(i, _)| live.contains_key(*i) && **i != self.cfg.instance)
                .map(|(i, up)| (i.clone(), if *up { "up" } else { "down" }))
                .collect();
            let h = local.remove(&k);
            if let Some(own) = h.as_ref().and_then(|h| h.own_verdict()) {
                verdicts.insert(self.cfg.instance.clone(), if own { "up" } else { "down" });
            }
            if verdicts.is_empty() && h.as_ref().is_none_or(|h| h.own_verdict().is_none()) {
                // An edge without a check anywhere: nothing to vote on.
                continue;
            }
            let status = h.as_ref().map(|h| h.status());
            edges.push(serde_json::json!({
                "zone": k.0,
                "edge": k.1,
                "verdicts": verdicts,
                "fleet": status.as_ref().and_then(|s| s.fleet_healthy).map(|up| if up { "up" } else { "down" }),
                "effective": status.as_ref().map(|s| s.effective),
                "configured": h.is_some(),
            }));
        }
        serde_json::json!({
            "instance": self.cfg.instance,
            "prefix": self.cfg.prefix,
            "health_quorum": self.cfg.health_quorum.to_string(),
            "connected": v.connected,
            "last_error": v.last_error,
            "bad_values": v.bad_values,
            "files_hash": reference,
            "instances": instances,
            "edges": edges,
        })
    }
}
