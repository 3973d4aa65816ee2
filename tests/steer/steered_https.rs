//! Steered HTTPS and SVCB records (pools file `https:`/`svcb:`): the hints
//! of each answer come from the same steering decision as the A and AAAA
//! answers for that client (same edges, same order, same ECS scope and
//! TTL); a host steered to a CNAME answers HTTPS with the CNAME; over UDP
//! and TCP; bad templates are refused with file:line.

use crate::support;

use std::net::IpAddr;

use geosteer::Transport;
use geosteer::{AdminState, Registry};
use hickory_proto::op::Message;
use hickory_proto::rr::{RData, RecordType};
use hickory_proto::serialize::binary::{BinEncodable, BinEncoder};
use support::dns::{addresses, tcp_raw, udp_raw};
use support::steer::{Db, query, respond, server, snapshot, snapshot_with};

/// (priority, target, params by key) of an SVCB/HTTPS record.
type Svcb = (u16, Vec<u8>, Vec<(u16, Vec<u8>)>);

fn svcb_of(data: &RData) -> Svcb {
    let mut b = Vec::new();
    data.emit(&mut BinEncoder::new(&mut b)).unwrap();
    let prio = u16::from_be_bytes([b[0], b[1]]);
    let mut p = 2;
    while b[p] != 0 {
        p += 1 + b[p] as usize;
    }
    let target = b[2..=p].to_vec();
    p += 1;
    let mut params = Vec::new();
    while p < b.len() {
        let k = u16::from_be_bytes([b[p], b[p + 1]]);
        let l = u16::from_be_bytes([b[p + 2], b[p + 3]]) as usize;
        params.push((k, b[p + 4..p + 4 + l].to_vec()));
        p += 4 + l;
    }
    (prio, target, params)
}

fn hint_addrs(params: &[(u16, Vec<u8>)], key: u16) -> Vec<IpAddr> {
    let Some((_, v)) = params.iter().find(|(k, _)| *k == key) else {
        return Vec::new();
    };
    if key == 4 {
        v.chunks(4)
            .map(|c| IpAddr::from(<[u8; 4]>::try_from(c).unwrap()))
            .collect()
    } else {
        v.chunks(16)
            .map(|c| IpAddr::from(<[u8; 16]>::try_from(c).unwrap()))
            .collect()
    }
}

fn ecs_scope(m: &Message) -> Option<u8> {
    use hickory_proto::rr::rdata::opt::{EdnsCode, EdnsOption};
    m.edns
        .as_ref()
        .and_then(|e| match e.option(EdnsCode::Subnet) {
            Some(EdnsOption::Subnet(s)) => Some(s.scope_prefix()),
            _ => None,
        })
}

const CLIENTS: &[Option<&str>] = &[
    None,
    Some("81.2.1.0/24"),
    Some("10.20.5.0/24"),
    Some("10.20.9.0/24"),
    Some("8.8.8.0/24"),
    Some("203.0.113.0/24"),
    Some("2001:db8:aaaa::/48"),
    Some("2a02:c7c:1::/48"),
];

/// For every client: HTTPS hints = A and AAAA answers, in order, with the
/// A/AAAA TTL and the wider of their ECS scopes.
fn check_like_a_aaaa(snap: &geosteer::Snapshot, rtype: RecordType, tp: Transport) {
    let src: IpAddr = "127.0.0.1".parse().unwrap();
    for ecs in CLIENTS {
        let ask = |t| {
            Message::from_vec(&respond(snap, &query("www", t, *ecs), src, tp).unwrap()).unwrap()
        };
        let (a, aaaa, h) = (ask(RecordType::A), ask(RecordType::AAAA), ask(rtype));
        assert_eq!(h.answers.len(), 1, "{ecs:?}: {h:?}");
        let rr = &h.answers[0];
        assert_eq!(rr.record_type(), rtype);
        assert_eq!(rr.ttl, a.answers[0].ttl, "TTL of the A answer");
        let (_, _, params) = svcb_of(&rr.data);
        assert_eq!(
            hint_addrs(&params, 4),
            addresses(&a),
            "{ecs:?}: ipv4hint = A"
        );
        assert_eq!(
            hint_addrs(&params, 6),
            addresses(&aaaa),
            "{ecs:?}: ipv6hint = AAAA"
        );
        let scopes = [ecs_scope(&a), ecs_scope(&aaaa)];
        assert_eq!(
            ecs_scope(&h),
            scopes.iter().copied().max().flatten(),
            "{ecs:?}: scope"
        );
        // Keys strictly increasing on the wire (RFC 9460 §2.2).
        assert!(params.windows(2).all(|w| w[0].0 < w[1].0), "{params:?}");
    }
}

#[test]
fn https_hints_follow_the_a_and_aaaa_decisions() {
    let reg = Registry::new();
    let snap = snapshot_with(Db::City, &reg);
    for tp in [Transport::Udp, Transport::Tcp] {
        check_like_a_aaaa(&snap, RecordType::HTTPS, tp);
        check_like_a_aaaa(&snap, RecordType::SVCB, tp);
    }
    // Edges going down move the hints with the A/AAAA answers.
    for e in ["lhr", "nrt", "sjc"] {
        reg.set_admin(None, e, AdminState::Down).unwrap();
    }
    reg.refresh();
    check_like_a_aaaa(&snap, RecordType::HTTPS, Transport::Udp);
}

#[test]
fn template_params_are_on_the_wire() {
    let snap = snapshot(Db::City);
    let src: IpAddr = "127.0.0.1".parse().unwrap();
    let m = Message::from_vec(
        &respond(
            &snap,
            &query("www", RecordType::HTTPS, Some("81.2.1.0/24")),
            src,
            Transport::Udp,
        )
        .unwrap(),
    )
    .unwrap();
    let (prio, target, params) = svcb_of(&m.answers[0].data);
    assert_eq!((prio, target), (1, vec![0]));
    let keys: Vec<u16> = params.iter().map(|p| p.0).collect();
    assert_eq!(keys, [1, 3, 4, 5, 6], "alpn, port, ipv4hint, ech, ipv6hint");
    assert_eq!(params[0].1, b"\x02h3\x02h2");
    assert_eq!(params[1].1, 443u16.to_be_bytes());
    let m = Message::from_vec(
        &respond(
            &snap,
            &query("www", RecordType::SVCB, None),
            src,
            Transport::Udp,
        )
        .unwrap(),
    )
    .unwrap();
    let (prio, target, params) = svcb_of(&m.answers[0].data);
    assert_eq!(prio, 2);
    assert_eq!(
        target, b"\x03svc\x07example\x03net\x00",
        "target not compressed"
    );
    assert_eq!(params[0], (0, vec![0, 3]), "mandatory=port");
    // A host without a template: NODATA for HTTPS, as before.
    let m = Message::from_vec(
        &respond(
            &snap,
            &query("two", RecordType::HTTPS, None),
            src,
            Transport::Udp,
        )
        .unwrap(),
    )
    .unwrap();
    assert!(m.answers.is_empty());
    assert_eq!(m.metadata.response_code.to_string(), "No Error");
    assert_eq!(m.authorities[0].record_type(), RecordType::SOA);
}

#[test]
fn steered_to_a_cname_https_follows_it() {
    let reg = Registry::new();
    let snap = snapshot_with(Db::City, &reg);
    for e in ["d1", "d2"] {
        reg.set_admin(None, e, AdminState::Down).unwrap();
    }
    reg.refresh();
    let src: IpAddr = "127.0.0.1".parse().unwrap();
    for tp in [Transport::Udp, Transport::Tcp] {
        let m = Message::from_vec(
            &respond(
                &snap,
                &query("down-fallback", RecordType::HTTPS, None),
                src,
                tp,
            )
            .unwrap(),
        )
        .unwrap();
        assert_eq!(m.answers.len(), 1, "{m:?}");
        match &m.answers[0].data {
            RData::CNAME(c) => assert_eq!(c.0.to_string(), "backup.othercdn.example."),
            other => panic!("expected the fallback CNAME, got {other:?}"),
        }
        // all_down: servfail is SERVFAIL for HTTPS as for A.
        let m = Message::from_vec(
            &respond(
                &snap,
                &query("down-servfail", RecordType::HTTPS, None),
                src,
                tp,
            )
            .unwrap(),
        )
        .unwrap();
        assert_eq!(m.metadata.response_code.to_string(), "Server Failure");
    }
}

#[test]
fn over_real_udp_and_tcp() {
    let srv = server(Db::City, snapshot(Db::City));
    let q = query("www", RecordType::HTTPS, Some("81.2.1.0/24"));
    let qa = query("www", RecordType::A, Some("81.2.1.0/24"));
    for (h, a) in [
        (
            udp_raw(srv.udp, &q).unwrap(),
            udp_raw(srv.udp, &qa).unwrap(),
        ),
        (
            tcp_raw(srv.tcp, &q).unwrap(),
            tcp_raw(srv.tcp, &qa).unwrap(),
        ),
    ] {
        let (h, a) = (
            Message::from_vec(&h).unwrap(),
            Message::from_vec(&a).unwrap(),
        );
        let (_, _, params) = svcb_of(&h.answers[0].data);
        assert_eq!(hint_addrs(&params, 4), addresses(&a));
    }
}

#[test]
fn bad_templates_name_file_and_line() {
    let origin = hickory_proto::rr::Name::from_ascii("t.example.").unwrap();
    let path = std::path::Path::new("/z/t.example.pools.yaml");
    let head = "edges:\n  a: { addresses: [192.0.2.1], location: [0, 0] }\nhosts:\n  www:\n";
    for (tpl, needle) in [
        ("    https: { priority: 0, target: x }\n", "AliasMode"),
        (
            "    https: { mandatory: [port] }\n",
            "mandatory SvcParam port is missing",
        ),
        (
            "    https: { no-default-alpn: true }\n",
            "no-default-alpn needs alpn",
        ),
        ("    https: { ech: \"!!\" }\n", "not valid base64"),
        (
            "    https: { ipv4hint: [192.0.2.1] }\n",
            "unknown key `ipv4hint`",
        ),
        ("    svcb: { alpn: [\"\"] }\n", "alpn ids"),
    ] {
        let text = format!("{head}{tpl}");
        let errs = geosteer::parse_pools(&text, path, &origin, &geosteer::AlwaysUp).unwrap_err();
        let all: Vec<String> = errs.iter().map(ToString::to_string).collect();
        assert!(
            all.iter()
                .any(|e| e.starts_with("/z/t.example.pools.yaml:5:") && e.contains(needle)),
            "{tpl}: {all:#?}"
        );
    }
}
