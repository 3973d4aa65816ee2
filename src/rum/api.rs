//! What the admin API and the CLI show of RUM: `GET /api/rum` (a summary,
//! or `?client=<cidr>` / `?resolver=<ip>`), the status page's panel, and
//! the learned table in the `rtt.csv` format (`geosteer rum export`).

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::net::IpAddr;

use ipnet::IpNet;
use serde_json::{Value, json};

use super::cells::State;
use super::engine::Rum;
use super::token::Net;
use crate::clock::unix_now;
use crate::snapshot::Snapshot;
use crate::steer::{self, Client, Family, Trace};

/// Most networks `?client=` lists for a wide prefix.
const MAX_LISTED: usize = 256;

fn ago(now: u64, t: u32) -> u64 {
    now.saturating_sub(u64::from(t))
}

impl Rum {
    /// `GET /api/rum`: counts, freshness, per zone.
    pub fn summary(&self) -> Value {
        let now = unix_now();
        let p = self.published();
        let st = self.state();
        let (cells, pending) = st.counts();
        let newest = st
            .zones
            .values()
            .flat_map(|z| z.nets.values().flatten())
            .map(|c| c.last)
            .max();
        let zones: Vec<Value> = p
            .zones
            .iter()
            .map(|(name, clients, resolvers)| {
                let z = st.zones.get(name);
                json!({
                    "zone": name,
                    "steering_networks": clients,
                    "resolver_networks": resolvers,
                    "own_networks": z.map_or(0, |z| z.nets.len()),
                    "fleet_instances": z.map_or(0, |z| z.remote.len()),
                })
            })
            .collect();
        json!({
            "enabled": true,
            "listen": self.addr.to_string(),
            "min_samples": self.cfg.min_samples,
            "half_life_secs": self.cfg.half_life.as_secs(),
            "max_age_secs": self.cfg.max_age.as_secs(),
            "cells": cells,
            "pending_views": pending,
            "linked_resolvers": st.links.len(),
            "beacons": st.beacons,
            "samples": st.samples,
            "links_made": st.linked,
            "newest_sample_age_secs": newest.map(|t| ago(now, t)),
            "table_built_age_secs": (p.at > 0).then(|| now.saturating_sub(p.at)),
            "table_build_ms": p.build_ms,
            "zones": zones,
        })
    }

    /// `GET /api/rum?client=<cidr>`: the cells of the networks in `net`.
    pub fn client(&self, net: IpNet) -> Value {
        let now = unix_now();
        let st = self.state();
        let nets = nets_in(&st, net);
        let mut out = Vec::new();
        for n in nets.iter().take(MAX_LISTED) {
            let mut zones = Vec::new();
            for (zname, z) in &st.zones {
                let combined = z.combined(st.min_samples);
                let mut edges: Vec<Value> = combined
                    .iter()
                    .filter(|((m, _), _)| m == n)
                    .map(|((_, e), (ms, samples, last))| {
                        let own = z
                            .nets
                            .get(n)
                            .and_then(|cells| cells.iter().find(|c| c.edge == *e));
                        json!({
                            "edge": z.edges[usize::from(*e)].as_ref(),
                            "rtt_ms": ms,
                            "samples": samples,
                            "steers": *samples >= st.min_samples,
                            "last_sample_age_secs": ago(now, *last),
                            "own": own.map(|c| json!({
                                "rtt_ms": c.ms,
                                "samples": c.samples,
                                "kept": c.history().iter().map(|(ms, at)| json!([ms, now.saturating_sub(*at)])).collect::<Vec<_>>(),
                            })),
                        })
                    })
                    .collect();
                if edges.is_empty() {
                    continue;
                }
                edges.sort_by(|a, b| {
                    a["rtt_ms"]
                        .as_f64()
                        .partial_cmp(&b["rtt_ms"].as_f64())
                        .unwrap_or(std::cmp::Ordering::Equal)
                });
                zones.push(json!({ "zone": zname, "edges": edges }));
            }
            let resolvers: Vec<String> = st
                .links
                .iter()
                .filter(|(_, l)| l.clients.contains_key(n))
                .map(|(r, _)| r.to_string())
                .collect();
            out.push(json!({ "network": n.to_string(), "zones": zones, "resolvers": resolvers }));
        }
        json!({
            "client": net.to_string(),
            "networks": out,
            "more": nets.len().saturating_sub(MAX_LISTED),
        })
    }

    /// `GET /api/rum?resolver=<ip>`: the users linked to a resolver's
    /// network and the rows they give it, per zone.
    pub fn resolver(&self, ip: IpAddr, snap: &Snapshot) -> Value {
        let now = unix_now();
        let net = Net::of(ip);
        let (users, ecs) = {
            let st = self.state();
            match st.links.get(&net) {
                Some(l) => {
                    let mut u: Vec<(Net, u32)> = l.clients.iter().map(|(n, t)| (*n, *t)).collect();
                    u.sort_by_key(|x| std::cmp::Reverse(x.1));
                    (u, l.ecs)
                }
                None => (Vec::new(), None),
            }
        };
        let mut zones = Vec::new();
        for z in crate::status::sorted_zones(snap) {
            let Some(l) = z.steering.live().learned() else {
                continue;
            };
            // What the zone's table steers the resolver's network with:
            // its users' rows, or its own network's if those measured.
            let rows = l.rows(net.ipnet().network());
            if rows.is_empty() {
                continue;
            }
            zones.push(json!({
                "zone": z.name,
                "rows": rows.iter().map(|(e, ms)| json!({"edge": z.steering.edges[*e as usize].name, "rtt_ms": ms})).collect::<Vec<_>>(),
            }));
        }
        json!({
            "resolver": ip.to_string(),
            "network": net.to_string(),
            "ecs": ecs.map(|(n, t)| json!({"subnet": n.to_string(), "age_secs": ago(now, t)})),
            "users": users.iter().take(MAX_LISTED).map(|(n, t)| json!({"network": n.to_string(), "age_secs": ago(now, *t)})).collect::<Vec<_>>(),
            "user_count": users.len(),
            "zones": zones,
        })
    }

    /// What stands behind learned cell `cell` of `zone`, for explain: its
    /// own users' samples per edge, or (a resolver's network) the user
    /// networks linked to it and theirs. None when nothing does (any more).
    pub fn learned_detail(&self, zone: &str, cell: IpNet) -> Option<LearnedDetail> {
        let st = self.state();
        let z = st.zones.get(zone)?;
        let net = Net::of(cell.network());
        let counting = |n: Net| -> Vec<(u16, u32)> {
            z.combined_for(n, st.min_samples)
                .into_iter()
                .filter(|(_, (_, samples, _))| *samples >= st.min_samples)
                .map(|(e, (_, samples, _))| (e, samples))
                .collect()
        };
        let name = |e: u16| z.edges[usize::from(e)].to_string();
        let own = counting(net);
        if !own.is_empty() {
            return Some(LearnedDetail {
                resolver_users: None,
                samples: own.into_iter().map(|(e, n)| (name(e), n)).collect(),
            });
        }
        let link = st.links.get(&net)?;
        let cap = st
            .min_samples
            .saturating_mul(super::cells::CAP_FACTOR)
            .max(1);
        let mut samples: HashMap<String, u32> = HashMap::new();
        let mut users = 0;
        for client in link.clients.keys() {
            let rows = counting(*client);
            users += u32::from(!rows.is_empty());
            for (e, n) in rows {
                *samples.entry(name(e)).or_default() += n.min(cap);
            }
        }
        (users > 0).then_some(LearnedDetail {
            resolver_users: Some(users),
            samples,
        })
    }

    /// The learned table of `zone` in the `rtt.csv` format.
    pub fn export(&self, zone: &str) -> Option<String> {
        export(&self.state(), zone)
    }
}

/// What stands behind a learned cell ([`Rum::learned_detail`]).
#[derive(Debug, Clone, PartialEq)]
pub struct LearnedDetail {
    /// The cell is a resolver's network, steered by this many linked user
    /// networks; None: the cell's own users measured it.
    pub resolver_users: Option<u32>,
    /// Samples behind each edge's row, by edge name.
    pub samples: HashMap<String, u32>,
}

/// Every network of `st` inside `net` (the /24 or /56 holding it when
/// `net` is narrower), sorted.
fn nets_in(st: &State, net: IpNet) -> Vec<Net> {
    let width = if net.network().is_ipv4() { 24 } else { 56 };
    if net.prefix_len() >= width {
        return vec![Net::of(net.network())];
    }
    let mut all: Vec<Net> = st
        .zones
        .values()
        .flat_map(|z| {
            z.nets.keys().copied().chain(
                z.remote
                    .values()
                    .flat_map(|s| s.values().flatten().map(|a| a.net)),
            )
        })
        .filter(|n| net.contains(&n.ipnet()))
        .collect();
    all.sort();
    all.dedup();
    all
}

/// The learned rows of `zone` (cells with `min_samples`, this instance's
/// and the fleet's combined) as `rtt.csv`; None for a zone with none.
pub fn export(st: &State, zone: &str) -> Option<String> {
    let z = st.zones.get(zone)?;
    let combined = z.combined(st.min_samples);
    let mut rows: BTreeMap<(Net, &str), (f32, u32)> = BTreeMap::new();
    for ((net, e), (ms, samples, _)) in combined {
        if samples >= st.min_samples {
            rows.insert((net, &z.edges[usize::from(e)]), (ms, samples));
        }
    }
    let mut out = String::from("client,edge,rtt_ms,samples\n");
    let _ = writeln!(
        out,
        "# Learned by geosteer RUM for {zone} at {}: per client network, the median RTT weighted by age.",
        humantime::format_rfc3339_seconds(std::time::SystemTime::now())
    );
    for ((net, edge), (ms, samples)) in rows {
        let _ = writeln!(out, "{net},{edge},{},{samples}", (ms * 10.0).round() / 10.0);
    }
    Some(out)
}

/// A trace that leaves learned rows out: what steering did before RUM.
struct WithoutLearned;

impl Trace for WithoutLearned {
    const LEARNED: bool = false;
}

/// The client networks of `zone` that learned rows steer elsewhere than
/// the RTT file and the map would, for `host` (of `top`, the best-sampled
/// networks, most first; at most `limit`): (network, edge without, edge
/// with, samples).
pub fn moved(
    snap: &Snapshot,
    zone: &crate::snapshot::Zone,
    host: &steer::Host,
    top: &[(IpNet, u32)],
    limit: usize,
) -> Vec<Value> {
    let st = &zone.steering;
    let mut out = Vec::new();
    for &(net, samples) in top {
        let family = if net.network().is_ipv4() {
            Family::V4
        } else {
            Family::V6
        };
        let client = Client {
            addr: net.network(),
            ecs_source: Some(net.prefix_len()),
        };
        let with = steer::decide(st, host, snap.geodb.as_deref(), client, family, &mut ());
        let without = steer::decide(
            st,
            host,
            snap.geodb.as_deref(),
            client,
            family,
            &mut WithoutLearned,
        );
        let name =
            |d: &steer::Decision| d.edges.first().map(|&e| st.edges[e as usize].name.clone());
        if name(&with) != name(&without) {
            out.push(json!({
                "network": net.to_string(),
                "from": name(&without),
                "to": name(&with),
                "samples": samples,
            }));
            if out.len() >= limit {
                break;
            }
        }
    }
    out
}

/// `GET /api/rum` without a question: the summary, and for the status
/// page's panel the client networks learning moved for one host (the
/// first steered one unless `zone`/`host` say).
pub fn panel(rum: &Rum, snap: &Snapshot, zone: Option<&str>, host: Option<&str>) -> Value {
    let mut v = rum.summary();
    if let Ok((z, h)) = crate::status::pick(snap, zone, host) {
        let top = rum.published().top.remove(&z.name).unwrap_or_default();
        v["moved"] = json!({
            "zone": z.name,
            "host": h.name,
            "clients": moved(snap, z, h, &top, 20),
        });
    }
    v
}
