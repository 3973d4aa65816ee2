//! `<zone>.pools.yaml`: the edge-pool map operators edit. Parsed strictly,
//! then validated into [`Steering`], which refers to edges by index.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};

use hickory_proto::rr::Name;
use indexmap::IndexMap;
use ipnet::IpNet;
use serde::Deserialize;
use serde_saphyr::Spanned;
use smallvec::SmallVec;

use super::{ConfigError, parse_yaml};
use crate::geo::{Code, Coords, Location};
use crate::health::{AdminState, CheckConfig, CheckSpec, EdgeHealth, EdgeState};
use crate::steer::{AllDown, Edge, EdgeIdx, Host, NetTarget, Nets, Rule, Steering};
use crate::wire;
use crate::yaml::{Codes, NameAt};

/// Default TTL of steered answers when neither the file nor the host says.
pub const DEFAULT_TTL: u32 = 30;
/// More edges than this can't be indexed by [`EdgeIdx`].
const MAX_EDGES: usize = u16::MAX as usize;

/// A scalar or a list of them (`country: US` or `country: [US, CA]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany<T> {
    One(T),
    Many(Vec<T>),
}

impl<T: Clone> OneOrMany<T> {
    fn to_vec(&self) -> Vec<T> {
        match self {
            OneOrMany::One(t) => vec![t.clone()],
            OneOrMany::Many(v) => v.clone(),
        }
    }
}

/// An `edges:` value as written: one name or a list of names, each an
/// edge or an edge group (`groups:`), with its line (a lone name has the
/// key's). Names are [`NameAt`]s, kept at the list's length.
#[derive(Debug, Default, Clone)]
pub struct EdgeList(Vec<NameAt>);

impl EdgeList {
    fn names(&self) -> &[NameAt] {
        &self.0
    }
}

impl<'de> Deserialize<'de> for EdgeList {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<EdgeList, D::Error> {
        /// The value before a lone name gets its line.
        struct Written(Vec<NameAt>);
        impl<'de> Deserialize<'de> for Written {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Written, D::Error> {
                struct V;
                impl<'de> serde::de::Visitor<'de> for V {
                    type Value = Written;
                    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                        f.write_str("an edge or group name, or a list of them")
                    }
                    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Written, E> {
                        // Line 0: the key's line, filled in below.
                        Ok(Written(vec![NameAt {
                            text: crate::yaml::intern(v),
                            line: 0,
                        }]))
                    }
                    fn visit_seq<A: serde::de::SeqAccess<'de>>(
                        self,
                        mut seq: A,
                    ) -> Result<Written, A::Error> {
                        let mut v = Vec::new();
                        while let Some(n) = seq.next_element::<NameAt>()? {
                            v.push(n);
                        }
                        Ok(Written(v))
                    }
                }
                d.deserialize_any(V)
            }
        }
        let s = Spanned::<Written>::deserialize(d)?;
        let line = s.referenced.line() as u32;
        let mut v = s.value.0;
        for n in v.iter_mut().filter(|n| n.line == 0) {
            n.line = line;
        }
        v.shrink_to_fit();
        Ok(EdgeList(v))
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EdgeRaw {
    #[serde(default)]
    pub addresses: Vec<Spanned<String>>,
    #[serde(default)]
    pub location: Option<[f64; 2]>,
    #[serde(default)]
    pub weight: Option<u32>,
    #[serde(default)]
    pub check: Option<Spanned<String>>,
    #[serde(default)]
    pub bias: Option<Spanned<i64>>,
    #[serde(default)]
    pub cost: Option<Spanned<f64>>,
    #[serde(default)]
    pub capacity: Option<Spanned<f64>>,
    /// A partner CDN: answered with this CNAME instead of addresses.
    #[serde(default)]
    pub cname: Option<Spanned<String>>,
    /// What a partner's check probes.
    #[serde(default)]
    pub probe: Vec<Spanned<String>>,
    /// A small object this edge serves, which the RUM snippet times.
    #[serde(default)]
    pub rum_url: Option<Spanned<String>>,
}

/// `rtt:` settings for the zone's RTT file.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RttRaw {
    #[serde(default)]
    pub min_samples: Option<u64>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleRaw {
    #[serde(default)]
    pub continent: Option<Codes>,
    #[serde(default)]
    pub country: Option<Codes>,
    #[serde(default)]
    pub subdivision: Option<Codes>,
    #[serde(default)]
    pub asn: Option<OneOrMany<u32>>,
    pub edges: EdgeList,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostRaw {
    /// An HTTPS record whose hints follow this host's steering.
    #[serde(default)]
    pub https: Option<Spanned<SvcbRaw>>,
    /// The same as SVCB (RFC 9460 §2).
    #[serde(default)]
    pub svcb: Option<Spanned<SvcbRaw>>,
    #[serde(default)]
    pub edges: Option<EdgeList>,
    #[serde(default)]
    pub answers: Option<u8>,
    #[serde(default)]
    pub ttl: Option<u32>,
    #[serde(default)]
    pub rules: Vec<Spanned<RuleRaw>>,
    #[serde(default)]
    pub fallback: Option<String>,
    #[serde(default)]
    pub spread_km: Option<f64>,
    #[serde(default)]
    pub spread_ms: Option<f64>,
    #[serde(default)]
    pub cost_margin_km: Option<f64>,
    #[serde(default)]
    pub cost_margin_ms: Option<f64>,
    #[serde(default)]
    pub partner_share: Option<f64>,
    #[serde(default)]
    pub all_down: Option<AllDown>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetMapRaw {
    #[serde(default)]
    pub location: Option<[f64; 2]>,
    #[serde(default)]
    pub country: Option<String>,
    #[serde(default)]
    pub continent: Option<String>,
    #[serde(default)]
    pub edges: Option<EdgeList>,
}

/// `https: { priority: 1, target: ".", alpn: [h3, h2], port: 443, ech: "..." }`:
/// the SvcParams of RFC 9460 §7 by name, hints left to steering.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SvcbRaw {
    #[serde(default = "one")]
    pub priority: u16,
    #[serde(default = "dot")]
    pub target: String,
    #[serde(default)]
    pub alpn: Vec<String>,
    #[serde(default, rename = "no-default-alpn")]
    pub no_default_alpn: bool,
    #[serde(default)]
    pub port: Option<u16>,
    /// ECHConfigList, base64.
    #[serde(default)]
    pub ech: Option<String>,
    #[serde(default)]
    pub mandatory: Vec<String>,
}

fn one() -> u16 {
    1
}

fn dot() -> String {
    ".".into()
}

/// Validates a template into wire params (hints excluded).
fn svcb_template(
    raw: &SvcbRaw,
    rtype: u16,
    host: u32,
    origin: &Name,
) -> Result<crate::zone::svcb::Template, String> {
    use crate::zone::svcb::{self, Params};
    if raw.priority == 0 {
        return Err(
            "priority 0 (AliasMode) has no hints to steer; write it as a static record in the zone file".into(),
        );
    }
    let target = if raw.target == "." {
        Name::root()
    } else {
        Name::parse(&raw.target, Some(origin)).map_err(|e| format!("target: invalid name: {e}"))?
    };
    let mut params = Params::new();
    let mut put = |key: u16, value: Option<&[u8]>| -> Result<(), String> {
        params.insert(key, svcb::encode_value(key, value)?);
        Ok(())
    };
    if !raw.mandatory.is_empty() {
        put(
            svcb::KEY_MANDATORY,
            Some(raw.mandatory.join(",").as_bytes()),
        )?;
    }
    if !raw.alpn.is_empty() {
        // Commas inside an id are escaped for the value-list syntax.
        let list: Vec<String> = raw
            .alpn
            .iter()
            .map(|a| a.replace('\\', "\\\\").replace(',', "\\,"))
            .collect();
        put(svcb::KEY_ALPN, Some(list.join(",").as_bytes()))?;
    }
    if raw.no_default_alpn {
        put(svcb::KEY_NO_DEFAULT_ALPN, None)?;
    }
    if let Some(p) = raw.port {
        put(svcb::KEY_PORT, Some(p.to_string().as_bytes()))?;
    }
    if let Some(e) = &raw.ech {
        put(svcb::KEY_ECH, Some(e.as_bytes()))?;
    }
    let t = svcb::Template {
        rtype,
        host,
        priority: raw.priority,
        target: wire::from_hickory(&target),
        params,
    };
    // The same RFC 9460 checks as a zone file's (mandatory keys present,
    // no-default-alpn with alpn), on the RDATA as it goes out with hints.
    let mut bytes = Vec::new();
    t.write::<()>(
        &[std::net::Ipv4Addr::UNSPECIFIED],
        &[std::net::Ipv6Addr::UNSPECIFIED],
        |b| {
            bytes.extend_from_slice(b);
            Ok(())
        },
    )
    .ok();
    crate::zone::check_svcb_rdata(&bytes)?;
    Ok(t)
}

/// `groups:` resolved to edge indexes. A group may name edges and other
/// groups (not itself, however indirectly); its name may not be an edge's.
fn resolve_groups(
    raw: &IndexMap<Spanned<String>, EdgeList>,
    index: &HashMap<&str, EdgeIdx>,
    err: &mut dyn FnMut(u32, String),
) -> HashMap<String, Vec<EdgeIdx>> {
    /// Expands group `name`; `path` holds the groups being expanded.
    fn expand<'a>(
        name: &'a str,
        raw: &'a IndexMap<Spanned<String>, EdgeList>,
        index: &HashMap<&str, EdgeIdx>,
        done: &mut HashMap<String, Option<Vec<EdgeIdx>>>,
        path: &mut Vec<&'a str>,
        err: &mut dyn FnMut(u32, String),
    ) -> Option<Vec<EdgeIdx>> {
        if let Some(d) = done.get(name) {
            return d.clone();
        }
        let (gname, list) = raw.iter().find(|(k, _)| k.value == name)?;
        let line = gname.referenced.line() as u32;
        if let Some(at) = path.iter().position(|&p| p == name) {
            let cycle: Vec<&str> = path[at..].iter().copied().chain([name]).collect();
            err(
                line,
                format!("groups.{name}: includes itself ({})", cycle.join(" -> ")),
            );
            return None;
        }
        path.push(name);
        let mut out: Vec<EdgeIdx> = Vec::new();
        let mut ok = true;
        let members = list.names();
        if members.is_empty() {
            err(line, format!("groups.{name}: needs at least one edge"));
            ok = false;
        }
        for m in members {
            let group = raw.keys().find(|k| *k.value == *m.text);
            let idx = match (index.get(&*m.text), group) {
                (Some(&i), _) => Some(vec![i]),
                (None, Some(g)) => expand(&g.value, raw, index, done, path, err),
                (None, None) => {
                    err(
                        m.line,
                        format!("groups.{name}: unknown edge or group {:?}", &*m.text),
                    );
                    None
                }
            };
            match idx {
                Some(idx) => {
                    for i in idx {
                        if !out.contains(&i) {
                            out.push(i);
                        }
                    }
                }
                None => ok = false,
            }
        }
        path.pop();
        let result = ok.then_some(out);
        done.insert(name.to_string(), result.clone());
        result
    }
    let mut done = HashMap::new();
    let mut groups = HashMap::new();
    for name in raw.keys() {
        if index.contains_key(name.value.as_str()) {
            err(
                name.referenced.line() as u32,
                format!(
                    "groups.{0}: {0:?} is already an edge; a group needs a name of its own",
                    name.value
                ),
            );
            continue;
        }
        if let Some(idx) = expand(&name.value, raw, index, &mut done, &mut Vec::new(), err) {
            groups.insert(name.value.clone(), idx);
        }
    }
    groups
}

/// An override net: `[lat, lon]` or a map.
#[derive(Debug)]
pub enum NetRaw {
    At([f64; 2]),
    Map(NetMapRaw),
}

/// By the value's shape, read in place: serde's untagged enums buffer the
/// value first, which turns `country: NO` into `false` and every mistake
/// into "did not match any variant".
impl<'de> Deserialize<'de> for NetRaw {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<NetRaw, D::Error> {
        use serde::de::value::{MapAccessDeserializer, SeqAccessDeserializer};
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = NetRaw;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str(
                    "[latitude, longitude], or a map of location, country, continent or edges",
                )
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, a: A) -> Result<NetRaw, A::Error> {
                <[f64; 2]>::deserialize(SeqAccessDeserializer::new(a)).map(NetRaw::At)
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, a: A) -> Result<NetRaw, A::Error> {
                NetMapRaw::deserialize(MapAccessDeserializer::new(a)).map(NetRaw::Map)
            }
        }
        d.deserialize_any(V)
    }
}

/// The whole file as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoolsRaw {
    #[serde(default)]
    pub ttl: Option<u32>,
    #[serde(default)]
    pub edges: IndexMap<Spanned<String>, EdgeRaw>,
    /// Edge groups: a name for a list of edges (and groups), used in
    /// `edges:` like an edge's name.
    #[serde(default)]
    pub groups: IndexMap<Spanned<String>, EdgeList>,
    #[serde(default)]
    pub nets: IndexMap<Spanned<String>, NetRaw>,
    #[serde(default)]
    pub hosts: IndexMap<Spanned<String>, HostRaw>,
    #[serde(default)]
    pub checks: IndexMap<Spanned<String>, CheckConfig>,
    #[serde(default)]
    pub rtt: RttRaw,
}

/// One host as written: its key (name and line) and what it parsed to.
/// Shared by every read that finds its lines unchanged, so an edit neither
/// copies nor frees the hosts it did not touch; it also keeps what the host
/// last validated to (below), which an edit that leaves the
/// edges' names as they were uses again.
#[derive(Debug)]
pub struct HostEntry {
    pub key: Spanned<String>,
    pub raw: HostRaw,
    /// The last validation: the [`HostEnv`] id it was made
    /// in, and its result.
    pub(super) checked: Mutex<Option<(u64, Checked)>>,
}

impl HostEntry {
    pub(super) fn new(key: Spanned<String>, raw: HostRaw) -> Arc<HostEntry> {
        Arc::new(HostEntry {
            key,
            raw,
            checked: Mutex::new(None),
        })
    }
}

/// A pools file as read: everything but the hosts, and the hosts.
#[derive(Debug)]
pub struct PoolsRead {
    /// The file with `hosts:` empty.
    pub rest: PoolsRaw,
    pub hosts: Vec<Arc<HostEntry>>,
}

impl PoolsRead {
    /// A whole file's parse, its hosts moved out into entries.
    pub(super) fn whole(mut raw: PoolsRaw) -> PoolsRead {
        let hosts = std::mem::take(&mut raw.hosts)
            .into_iter()
            .map(|(k, h)| HostEntry::new(k, h))
            .collect();
        PoolsRead { rest: raw, hosts }
    }
}

/// What a pools file adds to its zone.
#[derive(Debug)]
pub struct Pools {
    /// Steered HTTPS/SVCB templates (`hosts.<name>.https`, `.svcb`).
    pub svcb: Vec<crate::zone::svcb::Template>,
    pub steering: Steering,
    /// Each host's owner name (wire form, case kept), the host index, and
    /// its line, for conflict errors.
    pub names: Vec<(Box<[u8]>, u32, u32)>,
    /// RTT rows with fewer samples are ignored (`rtt.min_samples`).
    pub rtt_min_samples: u64,
    /// Each edge's `rum_url`, by edge index.
    pub rum_urls: Vec<Option<Box<str>>>,
}

/// Hands out the health handle of an edge; the reloader passes one that
/// keeps state by edge name across reloads.
pub trait HealthSource {
    fn edge(&self, zone: &str, edge: &str, check: Option<&CheckSpec>) -> Arc<EdgeHealth>;

    /// The zone's live steering state (learned RTT rows), the same across
    /// reloads when the source is long-lived.
    fn live(&self, _zone: &str) -> Arc<crate::steer::Live> {
        Arc::default()
    }
}

/// Every edge always up: for `check`, `explain` and tests without a checker.
pub struct AlwaysUp;

impl HealthSource for AlwaysUp {
    fn edge(&self, zone: &str, edge: &str, _check: Option<&CheckSpec>) -> Arc<EdgeHealth> {
        Arc::new(EdgeHealth::new(zone, edge, EdgeState::Up, AdminState::Auto))
    }
}

/// Health kept by edge name in a long-lived registry, so state and
/// counters survive reloads.
impl HealthSource for crate::health::Registry {
    fn edge(&self, zone: &str, edge: &str, check: Option<&CheckSpec>) -> Arc<EdgeHealth> {
        crate::health::Registry::edge(self, zone, edge, check.map_or(EdgeState::Up, |c| c.initial))
    }

    fn live(&self, zone: &str) -> Arc<crate::steer::Live> {
        self.zone_state(zone)
    }
}

fn check_coords(lat: f64, lon: f64) -> Result<Coords, String> {
    if !(-90.0..=90.0).contains(&lat) || !(-180.0..=180.0).contains(&lon) {
        return Err(format!(
            "location [{lat}, {lon}] is not [latitude -90..90, longitude -180..180]"
        ));
    }
    Ok(Coords { lat, lon })
}

fn codes(v: &Option<Codes>, what: &str) -> Result<Vec<Code>, String> {
    v.iter()
        .flat_map(Codes::texts)
        .map(|s| s.parse::<Code>().map_err(|e| format!("{what}: {e}")))
        .collect()
}

/// A pools file's text, validated against its zone's origin (the server
/// reads files through [`super::hosts::HostReuse::load`]).
pub fn from_str(
    text: &str,
    path: &Path,
    origin: &Name,
    health: &dyn HealthSource,
) -> Result<Pools, Vec<ConfigError>> {
    let raw: PoolsRaw = parse_yaml(text, path).map_err(|e| vec![e])?;
    from_read(&PoolsRead::whole(raw), path, origin, health)
}

/// The file as read, validated.
pub(super) fn from_read(
    read: &PoolsRead,
    path: &Path,
    origin: &Name,
    health: &dyn HealthSource,
) -> Result<Pools, Vec<ConfigError>> {
    let raw = &read.rest;
    let mut errs = Vec::new();
    let mut err = |line: u32, msg: String| errs.push(ConfigError::new(path, line, msg));
    let default_ttl = raw.ttl.unwrap_or(DEFAULT_TTL);
    let zone_name = origin.to_string();
    let base = path.parent().unwrap_or(Path::new("."));

    let mut svcb = Vec::new();

    // Checks, by name.
    let mut checks: HashMap<&str, Arc<CheckSpec>> = HashMap::new();
    for (name, c) in &raw.checks {
        match c.validate(base) {
            Ok(spec) => {
                checks.insert(
                    name.value.as_str(),
                    Arc::new(spec.named(name.value.clone())),
                );
            }
            Err(m) => err(
                name.referenced.line() as u32,
                format!("checks.{}: {m}", name.value),
            ),
        }
    }

    // Edges, by index.
    if raw.edges.len() > MAX_EDGES {
        err(0, format!("edges: at most {MAX_EDGES} edges per zone"));
    }
    let mut index: HashMap<&str, EdgeIdx> = HashMap::new();
    let mut edges = Vec::with_capacity(raw.edges.len());
    let mut rum_urls = Vec::with_capacity(raw.edges.len());
    for (name, e) in &raw.edges {
        let line = name.referenced.line() as u32;
        let key = format!("edges.{}", name.value);
        let mut v4 = SmallVec::new();
        let mut v6 = SmallVec::new();
        for a in &e.addresses {
            match a.value.parse::<IpAddr>() {
                Ok(IpAddr::V4(x)) => v4.push(x),
                Ok(IpAddr::V6(x)) => v6.push(x),
                Err(_) => err(
                    a.referenced.line() as u32,
                    format!("{key}.addresses: {:?} is not an IP address", a.value),
                ),
            }
        }
        let mut probe = Vec::new();
        for a in &e.probe {
            match a.value.parse::<IpAddr>() {
                Ok(x) => probe.push(x),
                Err(_) => err(
                    a.referenced.line() as u32,
                    format!("{key}.probe: {:?} is not an IP address", a.value),
                ),
            }
        }
        let cname = match &e.cname {
            Some(c) => {
                let cl = c.referenced.line() as u32;
                if !e.addresses.is_empty() || e.location.is_some() {
                    err(
                        cl,
                        format!("{key}: a partner (cname) has neither addresses nor a location"),
                    );
                }
                match Name::parse(&c.value, Some(origin)) {
                    Ok(n) => Some(wire::from_hickory(&n)),
                    Err(x) => {
                        err(cl, format!("{key}.cname: invalid name {:?}: {x}", c.value));
                        None
                    }
                }
            }
            None => {
                if e.addresses.is_empty() {
                    err(
                        line,
                        format!(
                            "{key}.addresses: an edge needs at least one address (or a cname, for a partner CDN)"
                        ),
                    );
                }
                if e.location.is_none() {
                    err(line, format!("{key}.location: an edge needs [lat, lon]"));
                }
                if !e.probe.is_empty() {
                    err(
                        line,
                        format!("{key}.probe: only a partner (cname) names what to probe"),
                    );
                }
                None
            }
        };
        let coords = e.location.map_or(Coords::default(), |[lat, lon]| {
            check_coords(lat, lon).unwrap_or_else(|m| {
                err(line, format!("{key}.location: {m}"));
                Coords::default()
            })
        });
        let weight = e.weight.unwrap_or(1);
        if weight == 0 {
            err(line, format!("{key}.weight: must be at least 1"));
        }
        let bias = match &e.bias {
            Some(b) if !(-99..=99).contains(&b.value) => {
                err(
                    b.referenced.line() as u32,
                    format!("{key}.bias: {} is not within -99..99", b.value),
                );
                0
            }
            Some(b) => b.value as i8,
            None => 0,
        };
        let cost = match &e.cost {
            Some(c) if !(c.value >= 0.0 && c.value.is_finite()) => {
                err(
                    c.referenced.line() as u32,
                    format!("{key}.cost: must be a number >= 0"),
                );
                1.0
            }
            Some(c) => c.value,
            None => 1.0,
        };
        let capacity = match &e.capacity {
            Some(c) if !(c.value > 0.0 && c.value.is_finite()) => {
                err(
                    c.referenced.line() as u32,
                    format!("{key}.capacity: must be a number > 0"),
                );
                None
            }
            Some(c) => Some(c.value),
            None => None,
        };
        let check = match &e.check {
            Some(c) => match checks.get(c.value.as_str()) {
                Some(spec) => Some(spec.clone()),
                None => {
                    if !raw.checks.keys().any(|k| k.value == c.value) {
                        err(
                            c.referenced.line() as u32,
                            format!("{key}.check: unknown check {:?}", c.value),
                        );
                    }
                    None
                }
            },
            None => None,
        };
        if e.cname.is_some() && e.check.is_some() && probe.is_empty() {
            err(
                line,
                format!(
                    "{key}.probe: a partner's check needs addresses to probe (probe: [address, ...])"
                ),
            );
        }
        let h = health.edge(&zone_name, &name.value, check.as_deref());
        index.insert(name.value.as_str(), edges.len() as EdgeIdx);
        let mut edge = match cname {
            Some(target) => Edge::partner(name.value.clone(), target, weight, check, h),
            None => Edge::new(name.value.clone(), v4, v6, coords, weight, check, h),
        };
        edge.bias = bias;
        edge.cost = cost;
        edge.capacity = capacity;
        edge.probe = probe;
        edges.push(edge);
        rum_urls.push(
            e.rum_url
                .as_ref()
                .and_then(|u| match check_rum_url(&u.value) {
                    Ok(()) => Some(u.value.clone().into_boxed_str()),
                    Err(m) => {
                        err(u.referenced.line() as u32, format!("{key}.rum_url: {m}"));
                        None
                    }
                }),
        );
    }
    let groups = resolve_groups(&raw.groups, &index, &mut err);
    // Names in an `edges:` list: edges and groups, each edge once, in the
    // order written.
    let resolve = |list: &EdgeList, key: &str, err: &mut dyn FnMut(u32, String)| {
        let mut out = Vec::new();
        for e in list.names() {
            let found = match index.get(&*e.text) {
                Some(i) => Some(std::slice::from_ref(i)),
                None => groups.get(&*e.text).map(Vec::as_slice),
            };
            match found {
                Some(idx) => {
                    for i in idx {
                        if !out.contains(i) {
                            out.push(*i);
                        }
                    }
                }
                None => err(
                    e.line,
                    format!("{key}: unknown edge or group {:?}", &*e.text),
                ),
            }
        }
        out
    };

    // Override nets.
    let mut nets = Vec::new();
    for (net, target) in &raw.nets {
        let line = net.referenced.line() as u32;
        let parsed: IpNet = match net.value.parse::<IpNet>() {
            Ok(n) => n,
            Err(_) => match net.value.parse::<IpAddr>() {
                Ok(a) => IpNet::from(a),
                Err(_) => {
                    err(
                        line,
                        format!("nets: {:?} is not a network (like 10.20.0.0/16)", net.value),
                    );
                    continue;
                }
            },
        };
        if parsed.trunc() != parsed {
            err(
                line,
                format!(
                    "nets: {} has host bits set (did you mean {}?)",
                    parsed,
                    parsed.trunc()
                ),
            );
            continue;
        }
        let key = format!("nets.{}", net.value);
        let t = match target {
            NetRaw::At([lat, lon]) => match check_coords(*lat, *lon) {
                Ok(c) => NetTarget::Location(Location {
                    coords: Some(c),
                    ..Location::default()
                }),
                Err(m) => {
                    err(line, format!("{key}: {m}"));
                    continue;
                }
            },
            NetRaw::Map(m) => {
                if let Some(list) = &m.edges {
                    if m.location.is_some() || m.country.is_some() || m.continent.is_some() {
                        err(
                            line,
                            format!("{key}: give either edges or a location, not both"),
                        );
                    }
                    let idx = resolve(list, &format!("{key}.edges"), &mut err);
                    if idx.is_empty() {
                        err(line, format!("{key}: edges: needs at least one edge"));
                    }
                    NetTarget::Edges(idx)
                } else {
                    let mut loc = Location::default();
                    if let Some([lat, lon]) = m.location {
                        match check_coords(lat, lon) {
                            Ok(c) => loc.coords = Some(c),
                            Err(msg) => err(line, format!("{key}: {msg}")),
                        }
                    }
                    for (field, val, slot) in [
                        ("country", &m.country, &mut loc.country),
                        ("continent", &m.continent, &mut loc.continent),
                    ] {
                        if let Some(v) = val {
                            match v.parse::<Code>() {
                                Ok(c) => *slot = Some(c),
                                Err(e) => err(line, format!("{key}.{field}: {e}")),
                            }
                        }
                    }
                    if loc == Location::default() {
                        err(
                            line,
                            format!("{key}: needs a location, a country, a continent or edges"),
                        );
                    }
                    NetTarget::Location(loc)
                }
            }
        };
        nets.push((parsed, t));
    }

    // Hosts. A host validates to the same thing while its text and what
    // it refers to (the origin, the default TTL, the edges' names and
    // which are partners, the groups) are as they were: an edit of a few
    // hosts, or of an edge's addresses, validates only what it changed.
    let mut hosts = Vec::with_capacity(read.hosts.len());
    let mut names = Vec::with_capacity(read.hosts.len());
    // Partners join a host only when named: a host without `edges:` is
    // served by every edge of our own.
    let all: Vec<EdgeIdx> = (0..edges.len() as EdgeIdx)
        .filter(|&i| !edges[i as usize].is_partner())
        .collect();
    let env = HostEnv {
        origin,
        default_ttl,
        all: &all,
    };
    let env_id = env.id(&edges, &raw.groups, &groups);
    for entry in &read.hosts {
        let line = entry.key.referenced.line() as u32;
        let h = &entry.raw;
        // Steered HTTPS/SVCB templates name the host by its index: such a
        // host is validated again each time.
        let cacheable = h.https.is_none() && h.svcb.is_none();
        let held = cacheable
            .then(|| {
                let c = entry.checked.lock().unwrap_or_else(|e| e.into_inner());
                c.as_ref()
                    .filter(|(id, _)| *id == env_id)
                    .map(|(_, c)| c.clone())
            })
            .flatten();
        let checked = match held {
            Some(c) => c,
            None => {
                let before = errs.len();
                let mut err = |line: u32, msg: String| errs.push(ConfigError::new(path, line, msg));
                let Some(c) = check_host(&entry.key, h, &env, &resolve, &mut err) else {
                    continue;
                };
                for (field, rtype) in [(&h.https, 65u16), (&h.svcb, 64)] {
                    let Some(raw) = field else { continue };
                    let which = if rtype == 65 { "https" } else { "svcb" };
                    match svcb_template(&raw.value, rtype, hosts.len() as u32, origin) {
                        Ok(t) => svcb.push(t),
                        Err(m) => err(
                            raw.referenced.line() as u32,
                            format!("hosts.{}.{which}: {m}", entry.key.value),
                        ),
                    }
                }
                if cacheable && errs.len() == before {
                    *entry.checked.lock().unwrap_or_else(|e| e.into_inner()) =
                        Some((env_id, c.clone()));
                }
                c
            }
        };
        names.push((checked.owner, hosts.len() as u32, line));
        hosts.push(checked.host);
    }
    let min_samples = raw.rtt.min_samples.unwrap_or(1);
    if !errs.is_empty() {
        return Err(errs);
    }
    Ok(Pools {
        svcb,
        steering: Steering::new(edges, hosts, Nets::new(nets)).with_live(health.live(&zone_name)),
        names,
        rtt_min_samples: min_samples,
        rum_urls,
    })
}

/// What a host's validation reads besides the host itself.
struct HostEnv<'a> {
    origin: &'a Name,
    default_ttl: u32,
    /// Every edge of our own (a host without `edges:` has them all).
    all: &'a [EdgeIdx],
}

impl HostEnv<'_> {
    /// An identity of everything a host's validation reads besides the
    /// host: the origin, the default TTL, the edges' names in order and
    /// which are partners (what `edges:` lists resolve to), and the groups
    /// as resolved. Equal ids, equal validations.
    fn id(
        &self,
        edges: &[Edge],
        group_order: &IndexMap<Spanned<String>, EdgeList>,
        groups: &HashMap<String, Vec<EdgeIdx>>,
    ) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        self.origin.to_string().hash(&mut h);
        self.default_ttl.hash(&mut h);
        edges.len().hash(&mut h);
        for e in edges {
            (&e.name, e.is_partner()).hash(&mut h);
        }
        for k in group_order.keys() {
            (&k.value, groups.get(&k.value)).hash(&mut h);
        }
        h.finish()
    }
}

/// A host validated: the steered host and its owner name (wire form, case
/// kept). Its HTTPS/SVCB templates are made apart (they carry its index).
#[derive(Debug, Clone)]
pub(super) struct Checked {
    host: Host,
    owner: Box<[u8]>,
}

/// Resolves an `edges:` list (edges and groups) to edge indexes, telling
/// `err` of unknown names; the second argument is the key for errors.
type Resolve<'a> = dyn Fn(&EdgeList, &str, &mut dyn FnMut(u32, String)) -> Vec<EdgeIdx> + 'a;

/// Validates one host (`hname: h`); `None` when its name is unusable
/// (reported through `err`), else the host (whose other mistakes `err`
/// has been told of).
fn check_host(
    hname: &Spanned<String>,
    h: &HostRaw,
    env: &HostEnv<'_>,
    resolve: &Resolve<'_>,
    mut err: &mut dyn FnMut(u32, String),
) -> Option<Checked> {
    let default_ttl = env.default_ttl;
    let line = hname.referenced.line() as u32;
    let key = format!("hosts.{}", hname.value);
    let owner = if hname.value == "@" {
        Ok(env.origin.clone())
    } else {
        Name::parse(&hname.value, Some(env.origin))
    };
    let owner = match owner {
        Ok(n) if env.origin.zone_of(&n) => n,
        Ok(n) => {
            err(
                line,
                format!("{key}: {n} is not inside zone {}", env.origin),
            );
            return None;
        }
        Err(e) => {
            err(line, format!("{key}: invalid name: {e}"));
            return None;
        }
    };
    let candidates = match &h.edges {
        Some(list) => resolve(list, &format!("{key}.edges"), &mut err),
        None => env.all.to_vec(),
    };
    if candidates.is_empty() && h.rules.is_empty() {
        err(line, format!("{key}: no candidate edges"));
    }
    let mut rules = Vec::new();
    for (i, r) in h.rules.iter().enumerate() {
        let rl = r.referenced.line() as u32;
        let rkey = format!("{key}.rules[{i}]");
        let r = &r.value;
        let mut rule = Rule {
            edges: resolve(&r.edges, &format!("{rkey}.edges"), &mut err),
            asn: r.asn.as_ref().map(|a| a.to_vec()).unwrap_or_default(),
            ..Rule::default()
        };
        match (
            codes(&r.continent, "continent"),
            codes(&r.country, "country"),
            codes(&r.subdivision, "subdivision"),
        ) {
            (Ok(a), Ok(b), Ok(c)) => {
                rule.continent = a;
                rule.country = b;
                rule.subdivision = c;
            }
            (Err(m), _, _) | (_, Err(m), _) | (_, _, Err(m)) => err(rl, format!("{rkey}.{m}")),
        }
        if rule.continent.is_empty()
            && rule.country.is_empty()
            && rule.subdivision.is_empty()
            && rule.asn.is_empty()
        {
            err(
                rl,
                format!("{rkey}: a rule needs continent, country, subdivision or asn"),
            );
        }
        if rule.edges.is_empty() {
            err(rl, format!("{rkey}.edges: needs at least one edge"));
        }
        rules.push(rule);
    }
    let answers = h.answers.unwrap_or(1);
    if answers == 0 {
        err(line, format!("{key}.answers: must be at least 1"));
    }
    let mut nonneg = |v: Option<f64>, what: &str| {
        let v = v.unwrap_or(0.0);
        if !(v >= 0.0 && v.is_finite()) {
            err(line, format!("{key}.{what}: must be a number >= 0"));
        }
        v
    };
    let spread_km = nonneg(h.spread_km, "spread_km");
    let spread_ms = nonneg(h.spread_ms, "spread_ms");
    let cost_margin_km = nonneg(h.cost_margin_km, "cost_margin_km");
    let cost_margin_ms = nonneg(h.cost_margin_ms, "cost_margin_ms");
    if let Some(p) = h.partner_share
        && !(0.0..=1.0).contains(&p)
    {
        err(line, format!("{key}.partner_share: {p} is not within 0..1"));
    }
    let fallback = match &h.fallback {
        Some(f) => match Name::parse(f, Some(env.origin)) {
            Ok(n) => Some(wire::from_hickory(&n)),
            Err(e) => {
                err(line, format!("{key}.fallback: invalid name {f:?}: {e}"));
                None
            }
        },
        None => None,
    };
    let all_down = h.all_down.unwrap_or_default();
    if all_down == AllDown::Fallback && fallback.is_none() {
        err(
            line,
            format!("{key}.all_down: `fallback` needs a fallback name"),
        );
    }
    Some(Checked {
        owner: wire::from_hickory(&owner),
        host: Host {
            name: hname.value.clone(),
            candidates,
            rules,
            answers: answers.max(1),
            ttl: h.ttl.unwrap_or(default_ttl),
            spread_km,
            spread_ms,
            cost_margin_km,
            cost_margin_ms,
            partner_share: h.partner_share,
            fallback,
            all_down,
            plain: false,
            reads_km: false,
            group: 0,
        }
        .finish(),
    })
}

/// A `rum_url`: an absolute http(s) URL the snippet can fetch as it is
/// (it adds a cache-buster parameter).
fn check_rum_url(u: &str) -> Result<(), String> {
    let rest = u
        .strip_prefix("https://")
        .or_else(|| u.strip_prefix("http://"))
        .ok_or_else(|| format!("{u:?} is not an http:// or https:// URL"))?;
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    if host.is_empty() || host.contains('@') {
        return Err(format!("{u:?} has no host"));
    }
    if u.contains('#')
        || u.bytes()
            .any(|b| b <= b' ' || b == b'"' || b == b'\\' || b >= 0x7f)
    {
        return Err(format!(
            "{u:?}: no spaces, quotes, backslashes, fragments or non-ASCII"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<Pools, Vec<String>> {
        let origin = Name::from_ascii("cdn.example.").unwrap();
        from_str(text, Path::new("p.yaml"), &origin, &AlwaysUp)
            .map_err(|e| e.iter().map(|e| e.to_string()).collect())
    }

    const EDGES: &str = "edges:\n  lhr: { addresses: [192.0.2.1], location: [51.5, -0.1] }\n  fra: { addresses: [192.0.2.2], location: [50.1, 8.7] }\n  iad: { addresses: [192.0.2.3], location: [38.9, -77.4] }\n  akamai: { cname: x.akamai.example. }\n";

    #[test]
    fn edge_lists_share_names_and_keep_their_lines() {
        #[derive(Deserialize)]
        struct L {
            a: EdgeList,
            b: EdgeList,
            c: EdgeList,
        }
        let l: L = crate::yaml::parse(
            "a: [fra, lhr]\nb:\n  - fra\n  - iad\nc: eu\n",
            Path::new("p"),
        )
        .unwrap();
        let (a, b, c) = (l.a.names(), l.b.names(), l.c.names());
        assert_eq!(a[0].text.as_ref(), "fra");
        assert!(Arc::ptr_eq(&a[0].text, &b[0].text), "one fra");
        assert_eq!((a[1].line, b[0].line, b[1].line), (1, 3, 4));
        assert_eq!(
            (c[0].text.as_ref(), c[0].line),
            ("eu", 5),
            "a lone name has the key's line"
        );
        assert_eq!(l.a.0.capacity(), 2);
    }

    fn names(p: &Pools, host: &str) -> Vec<String> {
        let h = p.steering.hosts.iter().find(|h| h.name == host).unwrap();
        h.candidates
            .iter()
            .map(|&i| p.steering.edges[i as usize].name.clone())
            .collect()
    }

    #[test]
    fn a_group_is_named_once_and_used_where_edges_are() {
        let p = load(&format!(
            "{EDGES}groups:\n  eu: [lhr, fra]\n  world: [eu, iad]\n  backup: akamai\n\
             nets:\n  10.0.0.0/8: {{ edges: eu }}\n\
             hosts:\n  www: {{ edges: eu }}\n  img: {{ edges: [world, akamai, lhr] }}\n\
             \x20 dl: {{ edges: [iad, backup] }}\n\
             \x20 video:\n    edges: [iad]\n    rules:\n      - {{ continent: EU, edges: eu }}\n"
        ))
        .unwrap();
        assert_eq!(names(&p, "www"), ["lhr", "fra"]);
        // Groups nest; an edge named twice counts once, in first-seen order.
        assert_eq!(names(&p, "img"), ["lhr", "fra", "iad", "akamai"]);
        assert_eq!(names(&p, "dl"), ["iad", "akamai"]);
        let video = p.steering.hosts.iter().find(|h| h.name == "video").unwrap();
        assert_eq!(video.rules[0].edges, [0, 1]);
    }

    #[test]
    fn group_mistakes_name_file_line_and_key() {
        let cases = [
            (
                "groups:\n  eu: [lhr, frx]\n",
                "p.yaml:7: groups.eu: unknown edge or group \"frx\"",
            ),
            (
                "groups:\n  lhr: [fra]\n",
                "p.yaml:7: groups.lhr: \"lhr\" is already an edge",
            ),
            (
                "groups:\n  a: [b]\n  b: [a]\n",
                "groups.a: includes itself (a -> b -> a)",
            ),
            (
                "groups:\n  a: []\n",
                "p.yaml:7: groups.a: needs at least one edge",
            ),
            (
                "groups:\n  eu: [lhr]\nhosts:\n  www: { edges: eux }\n",
                "p.yaml:9: hosts.www.edges: unknown edge or group \"eux\"",
            ),
            (
                "hosts:\n  www:\n    edges:\n      - lhr\n      - nope\n",
                "p.yaml:10: hosts.www.edges: unknown edge or group \"nope\"",
            ),
        ];
        for (tail, want) in cases {
            let errs = load(&format!("{EDGES}{tail}")).map(|_| ()).unwrap_err();
            assert!(
                errs.iter().any(|e| e.contains(want)),
                "{want} not in {errs:?}"
            );
        }
    }
}
