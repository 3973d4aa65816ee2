//! EDNS Client Subnet validation (RFC 7871 §6, stricter than hickory):
//! each malformed option against its rcode, over real UDP and in-process.
//! Valid edge cases (source prefix 0) are answered by packet source.

use crate::support;

use geosteer::Transport;
use hickory_proto::op::Message;
use support::dns::udp_raw;
use support::steer::{self, Db};

/// A query for www.steer.example A whose OPT carries `options` (raw
/// option bytes: code, length, data).
fn query_with_options(id: u16, options: &[u8]) -> Vec<u8> {
    let mut p = id.to_be_bytes().to_vec();
    p.extend_from_slice(&[0x00, 0x00, 0, 1, 0, 0, 0, 0, 0, 1]);
    p.extend_from_slice(b"\x03www\x05steer\x07example\x00");
    p.extend_from_slice(&[0, 1, 0, 1]);
    p.extend_from_slice(&[0, 0, 41, 0x04, 0xD0, 0, 0, 0, 0]);
    p.extend_from_slice(&(options.len() as u16).to_be_bytes());
    p.extend_from_slice(options);
    p
}

/// An ECS option with a declared option length `len` (normally 4 + data).
fn ecs_raw(len: u16, family: u16, source: u8, scope: u8, addr: &[u8]) -> Vec<u8> {
    let mut o = vec![0, 8];
    o.extend_from_slice(&len.to_be_bytes());
    o.extend_from_slice(&family.to_be_bytes());
    o.extend_from_slice(&[source, scope]);
    o.extend_from_slice(addr);
    o
}

fn ecs(family: u16, source: u8, scope: u8, addr: &[u8]) -> Vec<u8> {
    ecs_raw(4 + addr.len() as u16, family, source, scope, addr)
}

struct Case {
    what: &'static str,
    options: Vec<u8>,
    rcode: &'static str,
    /// For NOERROR: the edge answered and the scope echoed.
    answer: Option<(&'static str, Option<u8>)>,
}

fn cases() -> Vec<Case> {
    let formerr = |what, options| Case {
        what,
        options,
        rcode: "Form Error",
        answer: None,
    };
    let v6_129 = [0x20u8, 1, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    let two = [ecs(1, 24, 0, &[81, 2, 1]), ecs(1, 24, 0, &[85, 10, 200])].concat();
    vec![
        Case {
            what: "valid IPv4 /24 (control)",
            options: ecs(1, 24, 0, &[81, 2, 1]),
            rcode: "No Error",
            answer: Some(("lhr", Some(18))),
        },
        Case {
            what: "valid IPv6 /48 (control)",
            options: ecs(2, 48, 0, &[0x2a, 0x02, 0x0c, 0x7c, 0, 1]),
            rcode: "No Error",
            answer: Some(("lhr", Some(32))),
        },
        Case {
            what: "valid /23 ending in a zero bit",
            options: ecs(1, 23, 0, &[81, 2, 2]),
            rcode: "No Error",
            answer: Some(("lhr", Some(18))),
        },
        // Source prefix 0: valid, locate by the packet source (loopback is
        // placed in Tokyo by the fixture's nets), scope 0.
        Case {
            what: "source prefix 0 (IPv4)",
            options: ecs(1, 0, 0, &[]),
            rcode: "No Error",
            answer: Some(("nrt", Some(0))),
        },
        Case {
            what: "source prefix 0 (IPv6)",
            options: ecs(2, 0, 0, &[]),
            rcode: "No Error",
            answer: Some(("nrt", Some(0))),
        },
        formerr("unknown family 3", ecs(3, 24, 0, &[81, 2, 1])),
        formerr("family 0", ecs(0, 0, 0, &[])),
        formerr("IPv4 source prefix 33", ecs(1, 33, 0, &[81, 2, 1, 0, 0])),
        formerr("IPv6 source prefix 129", ecs(2, 129, 0, &v6_129)),
        formerr(
            "bits set beyond the source prefix",
            ecs(1, 23, 0, &[81, 2, 1]),
        ),
        formerr("bits set beyond a /0", ecs(1, 0, 0, &[81])),
        formerr("non-zero scope in the query", ecs(1, 24, 16, &[81, 2, 1])),
        formerr(
            "address longer than the prefix needs",
            ecs(1, 24, 0, &[81, 2, 1, 0]),
        ),
        formerr(
            "address shorter than the prefix needs",
            ecs(1, 24, 0, &[81, 2]),
        ),
        // The option says 7 bytes of data, the OPT holds only 5.
        formerr("truncated option", ecs_raw(7, 1, 24, 0, &[81])),
        formerr(
            "option shorter than its fixed part",
            ecs_raw(2, 1, 24, 0, &[])[..6].to_vec(),
        ),
        formerr("two ECS options", two),
    ]
}

fn check(case: &Case, id: u16, reply: &[u8], snap: &geosteer::Snapshot) -> Result<(), String> {
    let msg =
        Message::from_vec(reply).map_err(|e| format!("{}: unparsable reply: {e}", case.what))?;
    let got = msg.metadata.response_code.to_string();
    if msg.metadata.id != id {
        return Err(format!("{}: id {} != {id}", case.what, msg.metadata.id));
    }
    if got != case.rcode {
        return Err(format!("{}: rcode {got}, wanted {}", case.what, case.rcode));
    }
    if msg.queries.len() != 1 {
        return Err(format!("{}: question not echoed", case.what));
    }
    if msg.edns.is_none() {
        return Err(format!(
            "{}: no OPT in the reply to an EDNS query",
            case.what
        ));
    }
    if let Some((edge, scope)) = case.answer {
        let r = steer::parse(snap, reply);
        if r.answer != [edge] || r.scope != scope {
            return Err(format!(
                "{}: wanted {edge} scope {scope:?}, got {r:?}",
                case.what
            ));
        }
    } else if !msg.answers.is_empty() {
        return Err(format!("{}: FORMERR with answers", case.what));
    }
    Ok(())
}

#[test]
fn ecs_validation_over_udp_and_in_process() {
    let snap = steer::snapshot(Db::City);
    let server = steer::server(Db::City, steer::snapshot(Db::City));
    let mut failures = Vec::new();
    for (i, case) in cases().iter().enumerate() {
        let id = 0x4000 + i as u16;
        let q = query_with_options(id, &case.options);
        match udp_raw(server.udp, &q) {
            Some(reply) => failures.extend(
                check(case, id, &reply, &snap)
                    .err()
                    .map(|e| format!("UDP {e}")),
            ),
            None => failures.push(format!("UDP {}: no answer", case.what)),
        }
        let local = steer::respond(&snap, &q, "127.0.0.1".parse().unwrap(), Transport::Udp);
        match local {
            Some(reply) => failures.extend(
                check(case, id, &reply, &snap)
                    .err()
                    .map(|e| format!("in-process {e}")),
            ),
            None => failures.push(format!("in-process {}: dropped", case.what)),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// A FORMERR for bad ECS must not echo the bad option back.
#[test]
fn formerr_does_not_echo_the_bad_option() {
    let snap = steer::snapshot(Db::City);
    let q = query_with_options(7, &ecs(1, 24, 16, &[81, 2, 1]));
    let reply = steer::respond(&snap, &q, "127.0.0.1".parse().unwrap(), Transport::Udp).unwrap();
    let r = steer::parse(&snap, &reply);
    assert_eq!(r.rcode, "Form Error");
    assert_eq!(r.scope, None, "{r:?}");
}
