//! `geosteer explain`: answer one question through the server's own code
//! path ([`crate::dns::respond_traced`]), recording every steering step.

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr};
use std::str::FromStr;

use anyhow::{Result, anyhow};
use hickory_proto::op::Message;
use hickory_proto::rr::{Name, RData, RecordType};
use ipnet::IpNet;
use serde_json::json;

use crate::dns::{self, wire};
use crate::geo::Location;
use crate::health::Effective;
use crate::net::Transport;
use crate::snapshot::Snapshot;
use crate::steer::{EdgeIdx, Located, Trace};

/// Everything steering saw, in order.
#[derive(Default, Debug)]
pub struct Recorder {
    pub located: Option<(Located, Option<Location>)>,
    pub rule: Option<usize>,
    pub candidates: Vec<(EdgeIdx, Option<f64>, Effective)>,
}

impl Trace for Recorder {
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

/// Runs the question through the answer core and records what happened.
pub fn explain(
    snap: &Snapshot,
    name: &str,
    client: Option<IpAddr>,
    ecs: Option<IpNet>,
    qtype: &str,
) -> Result<Report> {
    let qname = Name::from_str(name).map_err(|e| anyhow!("invalid name {name:?}: {e}"))?;
    let qname = if qname.is_fqdn() {
        qname
    } else {
        Name::from_str(&format!("{name}."))?
    };
    let rtype = RecordType::from_str(&qtype.to_ascii_uppercase())
        .map_err(|e| anyhow!("invalid type {qtype:?}: {e}"))?;
    let ecs = ecs.map(|n| n.trunc());
    let source = client.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    let packet = query_bytes(&qname, rtype, ecs);
    let mut out = vec![0u8; crate::net::MAX_MESSAGE];
    let mut rec = Recorder::default();
    // UDP, as most resolvers ask; explain shows what they would get.
    let summary = dns::respond_traced(snap, &packet, source, Transport::Udp, &mut out, &mut rec)
        .ok_or_else(|| anyhow!("the query was dropped"))?;
    let msg = Message::from_vec(&out[..summary.len])
        .map_err(|e| anyhow!("response does not parse: {e}"))?;

    let mut lower = wire::NameBuf::empty();
    let w = wire::from_hickory(&qname);
    for (d, s) in lower.buf.iter_mut().zip(w.iter()) {
        *d = s.to_ascii_lowercase();
    }
    lower.len = w.len() as u8;
    let zone = snap.find_zone(lower.as_bytes());
    let edge_name = |i: EdgeIdx| {
        zone.map_or_else(
            || i.to_string(),
            |z| z.steering.edges[i as usize].name.clone(),
        )
    };
    let candidate_names = rec.candidates.iter().map(|c| edge_name(c.0)).collect();

    let mut answers = Vec::new();
    let mut ttl = None;
    let mut chosen = Vec::new();
    for r in msg.answers.iter() {
        ttl.get_or_insert(r.ttl);
        match &r.data {
            RData::A(a) => answers.push(a.0.to_string()),
            RData::AAAA(a) => answers.push(a.0.to_string()),
            other => answers.push(format!("{} {}", r.record_type(), other)),
        }
    }
    let mut steered_host = None;
    let mut rule = None;
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
        if let Some(node) = z.tree.nodes.get(lower.as_bytes())
            && let Some(h) = node.host
        {
            let host = &z.steering.hosts[h as usize];
            steered_host = Some(host.name.clone());
            rule = rec.rule.map(|i| format!("rules[{i}]"));
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
    })
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
        let candidates: Vec<_> = self
            .trace
            .candidates
            .iter()
            .zip(&self.candidate_names)
            .map(|((_, km, st), name)| json!({"edge": name, "km": km.map(|k| (k * 10.0).round() / 10.0), "state": state_str(*st)}))
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
            "host": self.steered_host,
            "rule": self.rule,
            "location": self.location_json(),
            "candidates": candidates,
            "edges": self.chosen,
            "answers": self.answers,
            "scope": self.scope,
            "ttl": self.ttl,
        })
    }

    pub fn to_text(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "question  {} {}", self.name, self.qtype);
        match self.via_ecs {
            Some(p) => {
                let _ = writeln!(
                    s,
                    "client    {}/{} (from ECS: the resolver said where its client is)",
                    self.client, p
                );
            }
            None => {
                let _ = writeln!(
                    s,
                    "client    {} (packet source: no ECS, so the resolver's own address)",
                    self.client
                );
            }
        }
        if let Some(h) = &self.steered_host {
            let _ = writeln!(
                s,
                "host      {h} (steered){}",
                self.rule
                    .as_ref()
                    .map_or(String::new(), |r| format!(", matched {r}"))
            );
        }
        let l = self.location_json();
        if !l.is_null() {
            let _ = writeln!(
                s,
                "location  {} country={} continent={} lat={} lon={} network={}",
                l["source"].as_str().unwrap_or("-"),
                l["country"].as_str().unwrap_or("-"),
                l["continent"].as_str().unwrap_or("-"),
                l["lat"],
                l["lon"],
                l["network"].as_str().unwrap_or("-"),
            );
        }
        if !self.trace.candidates.is_empty() {
            let _ = writeln!(s, "candidates");
            for ((_, km, st), name) in self.trace.candidates.iter().zip(&self.candidate_names) {
                let km = km.map_or("-".to_string(), |k| format!("{k:.0} km"));
                let _ = writeln!(s, "  {name:<12} {km:>10}  {}", state_str(*st));
            }
        }
        let _ = writeln!(s, "rcode     {}", self.rcode);
        let _ = writeln!(
            s,
            "edges     {}",
            if self.chosen.is_empty() {
                "-".into()
            } else {
                self.chosen.join(", ")
            }
        );
        let _ = writeln!(
            s,
            "answers   {}",
            if self.answers.is_empty() {
                "-".into()
            } else {
                self.answers.join(", ")
            }
        );
        let _ = writeln!(
            s,
            "ttl       {}",
            self.ttl.map_or("-".into(), |t| t.to_string())
        );
        let _ = writeln!(
            s,
            "scope     {}",
            self.scope.map_or("-".into(), |t| t.to_string())
        );
        s
    }
}
