//! The status page: a world map of where each host's clients go, served at
//! `GET /` (see [`crate::http`]), with the JSON it polls and the what-if.
//!
//! Each country is steered as one client at its centroid: a synthetic
//! [`Steering`] holds the zone's edges (with their live health, or a
//! what-if health for the edges the operator asks about) and one override
//! net per country placed at its centroid with its country and continent
//! codes, and [`steer::decide`] — the query path's own function — runs once
//! per country. Centroids rather than the GeoIP DB's networks: every
//! country gets an answer whatever the DB covers (the demo DB has a few
//! dozen networks, a real one millions, which would need per-reload
//! precomputation), the result is deterministic, and 175 decisions cost
//! well under a millisecond. The price: one answer per country, so a large
//! country served by several edges shows the edge nearest its centroid, and
//! rules on ASN or subdivision never match.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use ipnet::{IpNet, Ipv4Net};
use serde::Serialize;

use crate::geo::{Code, Coords, Location, continent_of};
use crate::health::{AdminState, EdgeHealth, EdgeState, EdgeStatus};
use crate::snapshot::{Snapshot, Zone};
use crate::steer::{self, Client, Edge, Family, Host, NetTarget, Nets, Outcome, Steering};

/// The page's HTML template; `<!--MAP-->` becomes the country shapes.
const TEMPLATE: &str = include_str!("page.html");
/// Natural Earth 1:110m countries, made by `assets/world-110m.py`.
const WORLD: &str = include_str!("../../assets/world-110m.json");

/// Why a view could not be computed.
#[derive(Debug, thiserror::Error)]
pub enum StatusError {
    #[error("no zone {0:?}")]
    NoZone(String),
    #[error("zone {zone} has no steered host {host:?}")]
    NoHost { zone: String, host: String },
    #[error("zone {zone} has no edge {edge:?}")]
    NoEdge { zone: String, edge: String },
    #[error("no steered host in any zone")]
    Empty,
}

/// One country of the vendored map.
#[derive(Debug, serde::Deserialize)]
pub struct Country {
    pub cc: String,
    pub name: String,
    pub lat: f64,
    pub lon: f64,
    /// SVG path on the 360 x 180 equirectangular canvas.
    pub d: String,
}

#[derive(serde::Deserialize)]
struct World {
    countries: Vec<Country>,
}

/// The map's countries, parsed once.
pub fn countries() -> &'static [Country] {
    static C: OnceLock<Vec<Country>> = OnceLock::new();
    C.get_or_init(|| {
        serde_json::from_str::<World>(WORLD)
            .expect("assets/world-110m.json is valid")
            .countries
    })
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The whole page, built once: the template with every country's shape
/// inlined, so the page makes no request but its own JSON polls.
pub fn page() -> &'static str {
    static P: OnceLock<String> = OnceLock::new();
    P.get_or_init(|| {
        let mut svg = String::with_capacity(WORLD.len() + 64 * 200);
        // Antarctica has no clients, and drawn at this projection it would
        // take a fifth of the map.
        for c in countries().iter().filter(|c| c.cc != "AQ") {
            svg.push_str(&format!(
                "<path class=\"country\" data-country=\"{}\" data-name=\"{}\" d=\"{}\"><title>{}</title></path>\n",
                escape(&c.cc),
                escape(&c.name),
                escape(&c.d),
                escape(&c.name)
            ));
        }
        TEMPLATE.replace("<!--MAP-->", &svg)
    })
}

/// The edges a what-if takes out, by name.
#[derive(Debug, Default, Clone, Serialize)]
pub struct WhatIf {
    pub down: Vec<String>,
    pub drain: Vec<String>,
}

impl WhatIf {
    /// From comma-separated query parameters; empty names are ignored.
    pub fn parse(down: Option<&str>, drain: Option<&str>) -> WhatIf {
        let list = |s: Option<&str>| {
            s.unwrap_or("")
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect()
        };
        WhatIf {
            down: list(down),
            drain: list(drain),
        }
    }

    fn admin_for(&self, edge: &str) -> Option<AdminState> {
        if self.down.iter().any(|e| e == edge) {
            Some(AdminState::Down)
        } else if self.drain.iter().any(|e| e == edge) {
            Some(AdminState::Drain)
        } else {
            None
        }
    }
}

/// Where one country's clients go.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct CountryAnswer {
    /// The first chosen edge, the one the map paints; `None` without edges.
    pub edge: Option<String>,
    /// Every chosen edge, best first.
    pub edges: Vec<String>,
    /// `edges`, `nodata`, `fallback`, `servfail` or `empty`.
    pub outcome: &'static str,
    /// The point steered for this country.
    pub lat: f64,
    pub lon: f64,
}

/// The zone and host a view is about: the named ones, or the first host of
/// the first zone.
pub fn pick<'s>(
    snap: &'s Snapshot,
    zone: Option<&str>,
    host: Option<&str>,
) -> Result<(&'s Zone, &'s Host), StatusError> {
    let z = match zone {
        Some(name) => {
            let key = if name.ends_with('.') {
                name.to_owned()
            } else {
                format!("{name}.")
            };
            snap.zone_named(&key)
                .ok_or_else(|| StatusError::NoZone(name.to_owned()))?
        }
        None => sorted_zones(snap)
            .into_iter()
            .find(|z| !z.steering.hosts.is_empty())
            .ok_or(StatusError::Empty)?,
    };
    let h = match host {
        Some(name) => z
            .steering
            .hosts
            .iter()
            .find(|h| h.name == name)
            .ok_or_else(|| StatusError::NoHost {
                zone: z.name.clone(),
                host: name.to_owned(),
            })?,
        None => z
            .steering
            .hosts
            .first()
            .ok_or_else(|| StatusError::NoHost {
                zone: z.name.clone(),
                host: String::new(),
            })?,
    };
    Ok((z, h))
}

/// Zones by name.
pub fn sorted_zones(snap: &Snapshot) -> Vec<&Zone> {
    let mut v: Vec<&Zone> = snap.zones.values().map(|z| &**z).collect();
    v.sort_by(|a, b| a.name.cmp(&b.name));
    v
}

/// The synthetic client address of country `i`: one /24 per country in
/// 240.0.0.0/4 (reserved), where no real client is.
fn country_net(i: usize) -> Ipv4Net {
    Ipv4Net::new(Ipv4Addr::from(0xF000_0000u32 | ((i as u32) << 8)), 24).expect("prefix 24")
}

/// A health record steering reads but nobody else sees (not in the
/// registry, so not in `/api/edges` or the metrics).
fn whatif_health(zone: &str, edge: &str, admin: AdminState) -> Arc<EdgeHealth> {
    Arc::new(EdgeHealth::new(zone, edge, EdgeState::Up, admin))
}

/// Runs `decide` for every country on `zone`'s `host`, with the live health
/// except for the edges `whatif` names. Pure CPU work (a few hundred
/// microseconds); call it off the async workers, since `decide`'s
/// per-thread cache is shared with the TCP tasks there.
pub fn assign(
    zone: &Zone,
    host: &Host,
    whatif: &WhatIf,
) -> Result<BTreeMap<String, CountryAnswer>, StatusError> {
    let st = &zone.steering;
    for name in whatif.down.iter().chain(&whatif.drain) {
        if !st.edges.iter().any(|e| &e.name == name) {
            return Err(StatusError::NoEdge {
                zone: zone.name.clone(),
                edge: name.clone(),
            });
        }
    }
    let edges: Vec<Edge> = st
        .edges
        .iter()
        .map(|e| {
            let health = match whatif.admin_for(&e.name) {
                Some(admin) => whatif_health(&zone.name, &e.name, admin),
                None => e.health.clone(),
            };
            e.with_health(health)
        })
        .collect();
    let world = countries();
    let nets = world
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let cc = Code::parse(&c.cc);
            let loc = Location {
                country: cc,
                continent: cc.and_then(continent_of),
                coords: Some(Coords {
                    lat: c.lat,
                    lon: c.lon,
                }),
                ..Location::default()
            };
            (IpNet::V4(country_net(i)), NetTarget::Location(loc))
        })
        .collect();
    // The host is the synthetic steering's own (its candidate groups are
    // made with it); its edge indices are the zone's, which `edges` keeps.
    let synthetic = Steering::new(edges, vec![host.clone()], Nets::new(nets))
        .with_rtt(st.rtt.clone())
        .with_live(st.live().clone());
    let host = &synthetic.hosts[0];
    let v4 = host
        .candidates
        .iter()
        .any(|&i| st.edges[i as usize].serves(Family::V4))
        || host.rules.iter().any(|r| {
            r.edges
                .iter()
                .any(|&i| st.edges[i as usize].serves(Family::V4))
        });
    let family = if v4 { Family::V4 } else { Family::V6 };
    let mut out = BTreeMap::new();
    for (i, c) in world.iter().enumerate() {
        let addr = IpAddr::V4(country_net(i).network() | Ipv4Addr::new(0, 0, 0, 1));
        let client = Client {
            addr,
            ecs_source: Some(24),
        };
        let d = steer::decide(&synthetic, host, None, client, family, &mut ());
        let edges: Vec<String> = if d.outcome == Outcome::Edges {
            d.edges
                .iter()
                .map(|&e| st.edges[e as usize].name.clone())
                .collect()
        } else {
            Vec::new()
        };
        out.insert(
            c.cc.clone(),
            CountryAnswer {
                edge: edges.first().cloned(),
                edges,
                outcome: outcome_str(d.outcome),
                lat: c.lat,
                lon: c.lon,
            },
        );
    }
    Ok(out)
}

fn outcome_str(o: Outcome) -> &'static str {
    match o {
        Outcome::Edges => "edges",
        Outcome::NoData => "nodata",
        Outcome::Fallback => "fallback",
        Outcome::Partner(_) => "partner",
        Outcome::ServFail => "servfail",
        Outcome::Empty => "empty",
    }
}

/// One edge as the page shows it.
#[derive(Debug, Serialize)]
pub struct EdgeView {
    pub zone: String,
    pub name: String,
    pub addresses: Vec<String>,
    /// `[lat, lon]`; `None` for an edge without a location.
    pub location: Option<[f64; 2]>,
    /// A partner CDN's CNAME target; such an edge has no location.
    pub cname: Option<String>,
    pub weight: u32,
    /// `up`, `overloaded`, `drain` or `down`.
    pub state: crate::health::Effective,
    pub health: EdgeStatus,
    /// Steered answers per second naming this edge, from the metrics.
    pub answers_per_sec: Option<f64>,
}

/// Every edge of every zone, with its health and answer rate.
pub fn edges(snap: &Snapshot, rates: &PerEdge) -> Vec<EdgeView> {
    let mut out = Vec::new();
    for z in sorted_zones(snap) {
        for e in &z.steering.edges {
            let health = e.health.status();
            let addresses =
                e.v4.iter()
                    .map(|a| a.to_string())
                    .chain(e.v6.iter().map(|a| a.to_string()))
                    .collect();
            out.push(EdgeView {
                zone: z.name.clone(),
                name: e.name.clone(),
                addresses,
                location: e.coords.map(|c| [c.lat, c.lon]),
                cname: e.cname.as_deref().map(crate::wire::name_to_string),
                weight: e.weight,
                state: health.effective,
                answers_per_sec: rates.get(&(z.name.clone(), e.name.clone())).copied(),
                health,
            });
        }
    }
    out
}

/// A value per (zone, edge).
pub type PerEdge = HashMap<(String, String), f64>;

/// Per-edge answer rates, from `geosteer_steered_edge_answers_total`
/// sampled once a second while someone looks: rendering every metric costs
/// the server CPU that nobody needs when no page is open.
#[derive(Default)]
pub struct Rates {
    samples: Mutex<VecDeque<(Instant, PerEdge)>>,
    /// When the page (or `/api/view`) last asked for rates.
    wanted: Mutex<Option<Instant>>,
}

/// How long after the last view the sampler keeps sampling.
const WANTED_FOR: std::time::Duration = std::time::Duration::from_secs(30);

/// Samples kept: the rate is over the last two seconds, short enough that
/// a drain shows within the page's refresh, long enough to smooth bursts.
const RATE_SAMPLES: usize = 3;

impl Rates {
    /// Whether a page asked for rates lately (the sampler skips otherwise).
    pub fn wanted(&self) -> bool {
        let w = self.wanted.lock().unwrap_or_else(|e| e.into_inner());
        w.is_some_and(|t| t.elapsed() < WANTED_FOR)
    }

    /// Adds a reading of the Prometheus text.
    pub fn sample(&self, prometheus_text: &str) {
        let counts = parse_edge_answers(prometheus_text);
        let mut s = self.samples.lock().unwrap_or_else(|e| e.into_inner());
        s.push_back((Instant::now(), counts));
        while s.len() > RATE_SAMPLES {
            s.pop_front();
        }
    }

    /// Answers per second per (zone, edge) between the oldest and newest
    /// sample; empty until two samples exist.
    pub fn current(&self) -> PerEdge {
        *self.wanted.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
        let s = self.samples.lock().unwrap_or_else(|e| e.into_inner());
        let (Some((t0, old)), Some((t1, new))) = (s.front(), s.back()) else {
            return HashMap::new();
        };
        let dt = t1.duration_since(*t0).as_secs_f64();
        if dt <= 0.0 {
            return HashMap::new();
        }
        new.iter()
            .map(|(k, &v)| {
                let before = old.get(k).copied().unwrap_or(0.0);
                (
                    k.clone(),
                    ((v - before).max(0.0) / dt * 10.0).round() / 10.0,
                )
            })
            .collect()
    }
}

/// `geosteer_steered_edge_answers_total{edge="fra",zone="cdn.example."} 12`
/// lines, by (zone, edge).
fn parse_edge_answers(text: &str) -> PerEdge {
    let mut out = HashMap::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("geosteer_steered_edge_answers_total{") else {
            continue;
        };
        let Some((labels, value)) = rest.rsplit_once("} ") else {
            continue;
        };
        let Ok(v) = value.trim().parse::<f64>() else {
            continue;
        };
        let mut zone = None;
        let mut edge = None;
        for kv in labels.split(',') {
            if let Some((k, v)) = kv.split_once('=') {
                let v = v.trim_matches('"').to_owned();
                match k {
                    "zone" => zone = Some(v),
                    "edge" => edge = Some(v),
                    _ => {}
                }
            }
        }
        if let (Some(z), Some(e)) = (zone, edge) {
            out.insert((z, e), v);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn map_has_the_countries_and_unique_codes() {
        let c = countries();
        assert!(c.len() > 170, "{}", c.len());
        let mut codes: Vec<_> = c.iter().map(|c| c.cc.as_str()).collect();
        codes.dedup();
        assert_eq!(codes.len(), c.len());
        for cc in ["GB", "JP", "US", "DE", "FR", "BR", "ZA", "AU", "IN", "RU"] {
            assert!(c.iter().any(|c| c.cc == cc), "{cc}");
        }
        assert!(page().contains("data-country=\"GB\""));
    }

    #[test]
    fn parses_edge_answer_counters() {
        let t = "# TYPE x counter\ngeosteer_steered_edge_answers_total{zone=\"cdn.example.\",edge=\"fra\"} 12\n\
                 geosteer_steered_answers_total{zone=\"cdn.example.\",host=\"www\"} 3\n";
        let m = parse_edge_answers(t);
        assert_eq!(m.len(), 1);
        assert_eq!(m[&("cdn.example.".into(), "fra".into())], 12.0);
    }

    #[test]
    fn whatif_lists() {
        let w = WhatIf::parse(Some("fra, lhr"), Some(""));
        assert_eq!(w.down, ["fra", "lhr"]);
        assert!(w.drain.is_empty());
        assert_eq!(w.admin_for("lhr"), Some(AdminState::Down));
        assert_eq!(w.admin_for("cdg"), None);
    }
}
