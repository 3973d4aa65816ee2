//! `geosteer explain`: answer one question through the server's own code
//! path ([`crate::dns::respond_traced`]), recording every steering step.
//! A name that is a CNAME to a steered host is followed to that host's
//! decision. The report renders as JSON ([`Report::to_json`]) and as text
//! from that JSON ([`text`]), so the CLI prints a running server's
//! `/api/explain` answer the same way as one made from the files.

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr};
use std::str::FromStr;

use hickory_proto::op::Message;
use hickory_proto::rr::{Name, RData, RecordType};
use ipnet::IpNet;
use serde_json::json;

use crate::dns;
use crate::geo::Location;
use crate::health::Effective;
use crate::net::Transport;
use crate::rum::{LearnedDetail, Rum};
use crate::snapshot::Snapshot;
use crate::steer::{Class, EdgeIdx, Located, Ranked, RttKey, Steering, Trace};
use crate::wire;

/// Why a question could not be explained.
#[derive(Debug, thiserror::Error)]
pub enum ExplainError {
    #[error("invalid name {0:?}: {1}")]
    Name(String, String),
    #[error("invalid type {0:?}: {1}")]
    Type(String, String),
    #[error("the answer core dropped the query")]
    Dropped,
    #[error("the response does not parse: {0}")]
    Response(String),
}

/// Everything steering saw, in order.
#[derive(Default, Debug)]
pub struct Recorder {
    pub located: Option<(Located, Option<Location>)>,
    pub rule: Option<usize>,
    pub candidates: Vec<(EdgeIdx, Option<f64>, Effective)>,
    /// The RTT key that matched, with its rows (edge, ms), fastest first.
    pub rtt: Option<(RttKey, Vec<(EdgeIdx, f32)>)>,
    /// The candidates in metric order, before health.
    pub ranked: Vec<Ranked>,
    /// `partner_share`: (share, this subnet's draw, went to a partner).
    pub partner_split: Option<(f64, f64, bool)>,
    /// A cost margin's reordering: (margin, group cheapest first).
    pub cost: Option<(f64, Vec<EdgeIdx>)>,
    /// Capacity shares: (edge, weight) and the edge the subnet hashed to.
    pub shares: Option<(Vec<(EdgeIdx, f64)>, EdgeIdx)>,
    /// The learned cell (RUM) whose rows decided.
    pub learned: Option<IpNet>,
    /// Whether the RTT trace was seen (the first decision is recorded).
    seen_rtt: bool,
}

impl Trace for Recorder {
    const DETAILED: bool = true;
    fn located(&mut self, how: Located, loc: Option<&Location>) {
        // ANY over TCP decides twice; the first is representative.
        if self.located.is_none() {
            self.located = Some((how, loc.copied()));
        }
    }
    fn rule(&mut self, rule: Option<usize>) {
        self.rule = rule;
    }
    fn candidate(&mut self, edge: EdgeIdx, km: Option<f64>, state: Effective) {
        if !self.candidates.iter().any(|c| c.0 == edge) {
            self.candidates.push((edge, km, state));
        }
    }
    fn rtt(&mut self, key: Option<(&RttKey, &[(EdgeIdx, f32)])>) {
        if !self.seen_rtt {
            self.seen_rtt = true;
            self.rtt = key.map(|(k, rows)| (*k, rows.to_vec()));
        }
    }
    fn learned(&mut self, cell: IpNet) {
        self.learned.get_or_insert(cell);
    }
    fn ranked(&mut self, order: &[Ranked]) {
        if self.ranked.is_empty() {
            self.ranked = order.to_vec();
        }
    }
    fn partner_split(&mut self, share: f64, draw: f64, to_partner: bool) {
        self.partner_split.get_or_insert((share, draw, to_partner));
    }
    fn cost(&mut self, margin: f64, group: &[EdgeIdx]) {
        self.cost.get_or_insert((margin, group.to_vec()));
    }
    fn shares(&mut self, weights: &[(EdgeIdx, f64)], chosen: EdgeIdx) {
        self.shares.get_or_insert((weights.to_vec(), chosen));
    }
}

/// The result of an explain run.
#[derive(Debug)]
pub struct Report {
    pub name: String,
    pub qtype: RecordType,
    pub client: IpAddr,
    pub via_ecs: Option<u8>,
    pub rcode: String,
    pub trace: Recorder,
    /// Candidate names, aligned with `trace.candidates`.
    pub candidate_names: Vec<String>,
    pub chosen: Vec<String>,
    pub rule: Option<String>,
    pub answers: Vec<String>,
    pub scope: Option<u8>,
    pub ttl: Option<u32>,
    pub steered_host: Option<String>,
    /// The CNAMEs followed to the steered host: (owner, target, TTL).
    pub cname_chain: Vec<(String, String, u32)>,
    /// RTT, bias, cost, shares and partner steps, for `--json`.
    pub steps: serde_json::Value,
    /// Why the answer is what it is, one step a line.
    pub why: Vec<String>,
}

/// Builds a query packet (with ECS if given).
pub fn query_bytes(name: &Name, qtype: RecordType, ecs: Option<IpNet>) -> Vec<u8> {
    let mut p = vec![
        0xBE,
        0xEF,
        0x00,
        0x00,
        0,
        1,
        0,
        0,
        0,
        0,
        0,
        u8::from(ecs.is_some()),
    ];
    p.extend_from_slice(&wire::from_hickory(name));
    p.extend_from_slice(&u16::from(qtype).to_be_bytes());
    p.extend_from_slice(&1u16.to_be_bytes());
    if let Some(net) = ecs {
        let (family, octets): (u16, Vec<u8>) = match net.network() {
            IpAddr::V4(a) => (1, a.octets().to_vec()),
            IpAddr::V6(a) => (2, a.octets().to_vec()),
        };
        let alen = (net.prefix_len() as usize).div_ceil(8);
        p.extend_from_slice(&[0, 0, 41, 0x04, 0xD0, 0, 0, 0, 0]);
        p.extend_from_slice(&((8 + alen) as u16).to_be_bytes());
        p.extend_from_slice(&8u16.to_be_bytes());
        p.extend_from_slice(&((4 + alen) as u16).to_be_bytes());
        p.extend_from_slice(&family.to_be_bytes());
        p.extend_from_slice(&[net.prefix_len(), 0]);
        p.extend_from_slice(&octets[..alen]);
    }
    p
}

/// Runs the question through the answer core and records what happened;
/// `rum` (the running server's) says what stands behind a learned cell.
pub fn explain(
    snap: &Snapshot,
    name: &str,
    client: Option<IpAddr>,
    ecs: Option<IpNet>,
    qtype: &str,
    rum: Option<&Rum>,
) -> Result<Report, ExplainError> {
    let bad_name =
        |e: hickory_proto::ProtoError| ExplainError::Name(name.to_string(), e.to_string());
    let qname = Name::from_str(name).map_err(bad_name)?;
    let qname = if qname.is_fqdn() {
        qname
    } else {
        Name::from_str(&format!("{name}.")).map_err(bad_name)?
    };
    let rtype = RecordType::from_str(&qtype.to_ascii_uppercase())
        .map_err(|e| ExplainError::Type(qtype.to_string(), e.to_string()))?;
    let ecs = ecs.map(|n| n.trunc());
    let source = client.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    let packet = query_bytes(&qname, rtype, ecs);
    let mut out = vec![0u8; crate::net::MAX_MESSAGE];
    let mut rec = Recorder::default();
    // UDP, as most resolvers ask; explain shows what they would get.
    let summary = dns::respond_traced(snap, &packet, source, Transport::Udp, &mut out, &mut rec)
        .ok_or(ExplainError::Dropped)?;
    let msg = Message::from_vec(&out[..summary.len])
        .map_err(|e| ExplainError::Response(e.to_string()))?;

    let mut lower = wire::NameBuf::empty();
    let w = wire::from_hickory(&qname);
    for (d, s) in lower.buf.iter_mut().zip(w.iter()) {
        *d = s.to_ascii_lowercase();
    }
    lower.len = w.len() as u8;
    let zone = snap.find_zone(lower.as_bytes());

    let mut answers = Vec::new();
    let mut ttl = None;
    let mut chosen = Vec::new();
    // A name that is not steered itself but a CNAME (chain) to one: the
    // answer is the last target's, so explain that one.
    let steered_here = zone.is_some_and(|z| {
        z.tree
            .nodes
            .get(lower.as_bytes())
            .is_some_and(|n| n.host.is_some())
    });
    let mut cname_chain = Vec::new();
    let mut owner = qname.clone();
    for r in msg.answers.iter() {
        match &r.data {
            // hickory compares names case-insensitively.
            RData::CNAME(c) if !steered_here && r.name == owner => {
                cname_chain.push((r.name.to_string(), c.0.to_string(), r.ttl));
                owner = c.0.clone();
                answers.push(format!("CNAME {}", c.0));
                continue;
            }
            _ => {}
        }
        ttl.get_or_insert(r.ttl);
        match &r.data {
            RData::A(a) => answers.push(a.0.to_string()),
            RData::AAAA(a) => answers.push(a.0.to_string()),
            other => answers.push(format!("{} {}", r.record_type(), other)),
        }
    }
    if ttl.is_none() {
        // Only CNAMEs (the target has nothing of this type): their TTL.
        ttl = cname_chain.first().map(|c| c.2);
    }
    // Where the steering happened: the last CNAME target, or the name.
    let mut target = wire::NameBuf::empty();
    let tw = wire::from_hickory(&owner);
    for (d, s) in target.buf.iter_mut().zip(tw.iter()) {
        *d = s.to_ascii_lowercase();
    }
    target.len = tw.len() as u8;
    let zone = if cname_chain.is_empty() {
        zone
    } else {
        snap.find_zone(target.as_bytes())
    };
    let edge_name = |i: EdgeIdx| {
        zone.map_or_else(
            || i.to_string(),
            |z| z.steering.edges[i as usize].name.clone(),
        )
    };
    let candidate_names = rec.candidates.iter().map(|c| edge_name(c.0)).collect();
    let mut steered_host = None;
    let mut rule = None;
    let mut steps = serde_json::Value::Null;
    let mut why = Vec::new();
    if let Some(z) = zone {
        // Map answer addresses back to edges, in answer order.
        for a in &answers {
            if let Ok(ip) = a.parse::<IpAddr>()
                && let Some(e) = z.steering.edges.iter().find(|e| match ip {
                    IpAddr::V4(x) => e.v4.contains(&x),
                    IpAddr::V6(x) => e.v6.contains(&x),
                })
                && !chosen.contains(&e.name)
            {
                chosen.push(e.name.clone());
            }
        }
        // A partner CDN answers with its CNAME.
        if let Some(RData::CNAME(c)) = msg.answers.first().map(|r| &r.data)
            && let Some(e) = z.steering.edges.iter().find(|e| {
                e.cname
                    .as_deref()
                    .is_some_and(|t| wire::name_to_string(t).eq_ignore_ascii_case(&c.0.to_string()))
            })
        {
            chosen.push(e.name.clone());
        }
        if let Some(node) = z.tree.nodes.get(target.as_bytes())
            && let Some(h) = node.host
        {
            let host = &z.steering.hosts[h as usize];
            steered_host = Some(host.name.clone());
            rule = rec.rule.map(|i| format!("rules[{i}]"));
            let detail = rec
                .learned
                .zip(rum)
                .and_then(|(cell, rum)| rum.learned_detail(&z.name, cell));
            (steps, why) = steering_steps(&z.steering, h as usize, &rec, detail);
        }
    }
    let scope = msg.edns.as_ref().and_then(|e| {
        match e.option(hickory_proto::rr::rdata::opt::EdnsCode::Subnet) {
            Some(hickory_proto::rr::rdata::opt::EdnsOption::Subnet(s)) => Some(s.scope_prefix()),
            _ => None,
        }
    });
    Ok(Report {
        name: qname.to_string(),
        qtype: rtype,
        client: ecs.map_or(source, |n| n.network()),
        via_ecs: ecs.map(|n| n.prefix_len()),
        rcode: msg.metadata.response_code.to_string(),
        trace: rec,
        candidate_names,
        chosen,
        rule,
        answers,
        scope: if ecs.is_some() { scope } else { Some(0) },
        ttl,
        steered_host,
        cname_chain,
        steps,
        why,
    })
}

/// Rounds for display.
fn r1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

/// The RTT, bias, cost, share and partner steps of one decision, as JSON
/// and as sentences.
fn steering_steps(
    st: &Steering,
    host: usize,
    rec: &Recorder,
    detail: Option<LearnedDetail>,
) -> (serde_json::Value, Vec<String>) {
    let host = &st.hosts[host];
    let name = |i: EdgeIdx| st.edges[i as usize].name.clone();
    let mut why = Vec::new();
    // Without coordinates there is no distance: a 0 km would read as
    // "right next to every edge".
    let placed = located_at(rec);
    if !placed {
        why.push(
            "the client is not located (no override net places it and the GeoIP database has no coordinates for it): there are no distances, so the edges keep their configured order"
                .into(),
        );
    }
    let learned = rec.learned.zip(rec.rtt.as_ref()).map(|(cell, (_, rows))| {
        // Rows of a file prefix of the cell's own length win over the
        // learned ones for their edges.
        let file: &[(EdgeIdx, f32)] = match st.rtt.prefix(cell.network()) {
            Some(hit) if hit.prefix == Some(cell.prefix_len()) => st.rtt.rows_of(hit.key),
            _ => &[],
        };
        let samples = |e: EdgeIdx| -> Option<u32> {
            detail
                .as_ref()?
                .samples
                .get(&st.edges[e as usize].name)
                .copied()
        };
        let from_file = |e: EdgeIdx| file.iter().any(|f| f.0 == e);
        let text: Vec<String> = rows
            .iter()
            .map(|&(e, ms)| match (from_file(e), samples(e)) {
                (true, _) => format!("{} {ms} ms (RTT file)", name(e)),
                (false, Some(n)) => format!("{} {ms} ms from {n} samples", name(e)),
                (false, None) => format!("{} {ms} ms", name(e)),
            })
            .collect();
        let users = detail.as_ref().and_then(|d| d.resolver_users);
        let (source, whose) = match (&detail, users) {
            (Some(_), Some(n)) => (
                "resolver's users",
                format!("the {n} user networks linked to resolver network {cell}"),
            ),
            (Some(_), None) => ("client network", format!("client network {cell}")),
            (None, _) => ("learned cell", format!("cell {cell}")),
        };
        why.push(format!(
            "learned from real users (RUM): {whose}: {}",
            text.join(", ")
        ));
        json!({
            "source": source,
            "key": cell.to_string(),
            "users": users,
            "rows": rows.iter().map(|&(e, ms)| json!({
                "edge": name(e),
                "rtt_ms": ms,
                "samples": if from_file(e) { Some(0) } else { samples(e) },
                "from": if from_file(e) { "rtt file" } else { "rum" },
            })).collect::<Vec<_>>(),
        })
    });
    let rtt = match &rec.rtt {
        Some(_) if learned.is_some() => serde_json::Value::Null,
        Some((key, rows)) => {
            why.push(format!(
                "RTT key {key} matched ({} rows): candidates measured for it are ordered by ms, the rest follow by distance",
                rows.len()
            ));
            json!({
                "key": key.to_string(),
                "rows": rows.iter().map(|(e, ms)| json!({"edge": name(*e), "rtt_ms": ms})).collect::<Vec<_>>(),
            })
        }
        None if st.rtt.is_empty() => {
            why.push("no RTT file for this zone: distance order".into());
            serde_json::Value::Null
        }
        None => {
            why.push(
                "no RTT rows for this client (prefix, ASN, country or continent): distance order"
                    .into(),
            );
            serde_json::Value::Null
        }
    };
    let order: Vec<_> = rec
        .ranked
        .iter()
        .map(|r| {
            let e = &st.edges[r.idx as usize];
            if e.bias != 0 {
                why.push(format!(
                    "bias {} on {}: its metric is multiplied by {}",
                    e.bias,
                    e.name,
                    r1(100.0 - f64::from(e.bias)) / 100.0
                ));
            }
            let metric = match r.class {
                Class::Distance if !placed => serde_json::Value::Null,
                _ => r1(r.metric).into(),
            };
            json!({
                "edge": e.name,
                "by": match r.class { Class::Rtt => "rtt_ms", Class::Distance => "km", Class::Partner => "partner" },
                "metric": metric,
                "bias": e.bias,
                "cost": e.cost,
                "partner": e.is_partner(),
            })
        })
        .collect();
    let cost = rec.cost.as_ref().map(|(margin, group)| {
        why.push(format!(
            "cost margin {margin}: among {} the cheapest goes first",
            group
                .iter()
                .map(|&e| format!("{} (cost {})", name(e), st.edges[e as usize].cost))
                .collect::<Vec<_>>()
                .join(", ")
        ));
        json!({"margin": margin, "order": group.iter().map(|&e| name(e)).collect::<Vec<_>>()})
    });
    let partner = rec.partner_split.map(|(share, draw, to)| {
        why.push(format!(
            "partner_share {share}: this subnet draws {:.3}, so {}",
            draw,
            if to {
                "a partner CDN answers"
            } else {
                "own edges answer"
            }
        ));
        json!({"share": share, "draw": draw, "to_partner": to})
    });
    let shares = rec.shares.as_ref().map(|(weights, chosen)| {
        let total: f64 = weights.iter().map(|w| w.1).sum();
        why.push(format!(
            "shared by capacity x (1 - load): {}; this subnet hashes to {}",
            weights
                .iter()
                .map(|&(e, w)| format!("{} {:.0}%", name(e), 100.0 * w / total))
                .collect::<Vec<_>>()
                .join(", "),
            name(*chosen)
        ));
        json!({
            "edges": weights.iter().map(|&(e, w)| json!({
                "edge": name(e),
                "weight": w,
                "share": w / total,
                "load": st.edges[e as usize].health.load(),
            })).collect::<Vec<_>>(),
            "chosen": name(*chosen),
        })
    });
    let down: Vec<String> = rec
        .candidates
        .iter()
        .filter(|c| c.2 != Effective::Up)
        .map(|c| format!("{} is {}", name(c.0), state_str(c.2)))
        .collect();
    if !down.is_empty() {
        why.push(format!(
            "health: {} (down skipped, overloaded behind every up edge, drained last)",
            down.join(", ")
        ));
    }
    let steps = json!({
        "rtt": rtt,
        "learned": learned,
        "order": order,
        "cost_margin": cost,
        "partner_share": partner,
        "shares": shares,
        "spread_km": host.spread_km,
        "spread_ms": host.spread_ms,
    });
    (steps, why)
}

/// Whether the trace placed the client somewhere (has coordinates).
fn located_at(rec: &Recorder) -> bool {
    rec.located
        .as_ref()
        .is_some_and(|(_, loc)| loc.is_some_and(|l| l.coords.is_some()))
}

fn state_str(s: Effective) -> &'static str {
    match s {
        Effective::Up => "up",
        Effective::Overloaded => "overloaded",
        Effective::Drain => "drain",
        Effective::Down => "down",
    }
}

impl Report {
    fn location_json(&self) -> serde_json::Value {
        let Some((how, loc)) = &self.trace.located else {
            return serde_json::Value::Null;
        };
        let network = match how {
            Located::Net(n) | Located::Db(n) => Some(n.to_string()),
            Located::Unknown => None,
        };
        let source = match how {
            Located::Net(_) => "override net",
            Located::Db(_) => "geodb",
            Located::Unknown => "unknown",
        };
        let loc = loc.unwrap_or_default();
        json!({
            "source": source,
            "located": loc.coords.is_some(),
            "country": loc.country.map(|c| c.to_string()),
            "continent": loc.continent.map(|c| c.to_string()),
            "subdivision": loc.subdivision.map(|c| c.to_string()),
            "asn": loc.asn,
            "lat": loc.coords.map(|c| c.lat),
            "lon": loc.coords.map(|c| c.lon),
            "network": network,
        })
    }

    pub fn to_json(&self) -> serde_json::Value {
        let placed = located_at(&self.trace);
        let candidates: Vec<_> = self
            .trace
            .candidates
            .iter()
            .zip(&self.candidate_names)
            .map(|((_, km, st), name)| {
                let km = km.filter(|_| placed).map(|k| (k * 10.0).round() / 10.0);
                json!({"edge": name, "km": km, "state": state_str(*st)})
            })
            .collect();
        json!({
            "name": self.name,
            "type": self.qtype.to_string(),
            "rcode": self.rcode,
            "client": {
                "address": self.client.to_string(),
                "source": if self.via_ecs.is_some() { "ecs" } else { "packet source" },
                "ecs_prefix": self.via_ecs,
            },
            "cname": self.cname_chain.iter().map(|(name, target, ttl)| json!({
                "name": name, "target": target, "ttl": ttl,
            })).collect::<Vec<_>>(),
            "host": self.steered_host,
            "rule": self.rule,
            "location": self.location_json(),
            "candidates": candidates,
            "edges": self.chosen,
            "answers": self.answers,
            "scope": self.scope,
            "ttl": self.ttl,
            "steering": self.steps,
            "why": self.why,
        })
    }

    pub fn to_text(&self) -> String {
        text(&self.to_json())
    }
}

/// The text form of a report's JSON ([`Report::to_json`], or what a
/// running server's `/api/explain` sent).
pub fn text(r: &serde_json::Value) -> String {
    let str_or = |v: &serde_json::Value, d: &'static str| v.as_str().unwrap_or(d).to_owned();
    let list = |v: &serde_json::Value| {
        let items: Vec<String> = v
            .as_array()
            .into_iter()
            .flatten()
            .map(|x| x.as_str().map_or_else(|| x.to_string(), str::to_owned))
            .collect();
        if items.is_empty() {
            "-".to_owned()
        } else {
            items.join(", ")
        }
    };
    let mut s = String::new();
    let _ = writeln!(
        s,
        "question  {} {}",
        str_or(&r["name"], "?"),
        str_or(&r["type"], "?")
    );
    let c = &r["client"];
    match c["ecs_prefix"].as_u64() {
        Some(p) => {
            let _ = writeln!(
                s,
                "client    {}/{p} (from ECS: the resolver said where its client is)",
                str_or(&c["address"], "?")
            );
        }
        None => {
            let _ = writeln!(
                s,
                "client    {} (packet source: no ECS, so the resolver's own address)",
                str_or(&c["address"], "?")
            );
        }
    }
    for link in r["cname"].as_array().into_iter().flatten() {
        let _ = writeln!(
            s,
            "cname     {} -> {} (ttl {})",
            str_or(&link["name"], "?"),
            str_or(&link["target"], "?"),
            link["ttl"]
        );
    }
    if let Some(h) = r["host"].as_str() {
        let via = if r["cname"].as_array().is_some_and(|a| !a.is_empty()) {
            ", via CNAME"
        } else {
            ""
        };
        let _ = writeln!(
            s,
            "host      {h} (steered{via}){}",
            r["rule"]
                .as_str()
                .map_or(String::new(), |r| format!(", matched {r}"))
        );
    }
    let l = &r["location"];
    if !l.is_null() {
        if l["source"] == "unknown" {
            let _ = writeln!(
                s,
                "location  not located (no override net matched, and the GeoIP database does not know this address)"
            );
        } else {
            let coords = if l["located"] == false {
                "no coordinates".to_owned()
            } else {
                format!("lat={} lon={}", l["lat"], l["lon"])
            };
            let _ = writeln!(
                s,
                "location  {} country={} continent={} {coords} network={}",
                str_or(&l["source"], "-"),
                str_or(&l["country"], "-"),
                str_or(&l["continent"], "-"),
                str_or(&l["network"], "-"),
            );
        }
    }
    let placed = l["located"] == true;
    if let Some(cands) = r["candidates"].as_array().filter(|a| !a.is_empty()) {
        let _ = writeln!(s, "candidates");
        for c in cands {
            let km = match c["km"].as_f64() {
                Some(k) => format!("{k:.0} km"),
                None if !placed => "not located".into(),
                None => "-".into(),
            };
            let _ = writeln!(
                s,
                "  {:<12} {km:>11}  {}",
                str_or(&c["edge"], "?"),
                str_or(&c["state"], "?")
            );
        }
    }
    if let Some(order) = r["steering"]["order"].as_array().filter(|a| !a.is_empty()) {
        let _ = writeln!(s, "order");
        for o in order {
            let metric = match (o["by"].as_str().unwrap_or(""), o["metric"].as_f64()) {
                ("rtt_ms", Some(m)) => format!("{m} ms"),
                ("km", Some(m)) => format!("{m} km"),
                ("km", None) => "not located".into(),
                _ => "partner".into(),
            };
            let _ = writeln!(
                s,
                "  {:<12} {metric:>12}  bias {} cost {}",
                str_or(&o["edge"], ""),
                o["bias"],
                o["cost"]
            );
        }
    }
    for w in r["why"].as_array().into_iter().flatten() {
        let _ = writeln!(s, "why       {}", str_or(w, ""));
    }
    let _ = writeln!(s, "rcode     {}", str_or(&r["rcode"], "?"));
    let _ = writeln!(s, "edges     {}", list(&r["edges"]));
    let _ = writeln!(s, "answers   {}", list(&r["answers"]));
    let num = |v: &serde_json::Value| v.as_u64().map_or("-".into(), |t| t.to_string());
    let _ = writeln!(s, "ttl       {}", num(&r["ttl"]));
    let _ = writeln!(s, "scope     {}", num(&r["scope"]));
    s
}
