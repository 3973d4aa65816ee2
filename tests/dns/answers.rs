//! Authoritative behaviour over real UDP and TCP against an in-process
//! server: header bits, negative answers, zones, referrals, CNAMEs,
//! wildcards (RFC 4592), ANY (RFC 8482), EDNS (RFC 6891), error rcodes,
//! hostile input, and the binary's `check`/`serve`/signals.
//!
//! Zones served (tests/fixtures + the repo's demo): `example.` (with the
//! RFC 4592 §2.2.1 zone inside), `sub.example.` beside it, `cdn.example.`.

use crate::support;

use std::net::SocketAddr;
use std::process::Command;
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{RData, RecordType};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use support::dns::*;
use support::server::*;

const SOA_EXAMPLE: &str =
    "example. 300 IN SOA ns1.example. hostmaster.example. 2024010101 3600 600 604800 300";
const SOA_SUB: &str =
    "sub.example. 30 IN SOA ns1.example. hostmaster.example. 7 3600 600 604800 60";

fn rtype(n: u16) -> RecordType {
    RecordType::from(n)
}

/// Asserts the parts every authoritative answer shares, on both transports.
#[track_caller]
fn check(r: &Resp, rcode: ResponseCode, aa: bool) {
    assert!(r.msg.metadata.message_type == hickory_proto::op::MessageType::Response);
    assert_eq!(r.msg.metadata.response_code, rcode, "rcode: {:?}", r.msg);
    assert_eq!(r.aa(), aa, "AA: {:?}", r.msg);
    assert!(!r.msg.metadata.recursion_available, "RA must never be set");
    assert!(!r.tc(), "unexpected TC");
}

// ------------------------------------------------------------ header bits

#[test]
fn aa_set_rd_copied_ra_never_case_preserved() {
    let s = shared();
    for rd in [false, true] {
        let mut q = query("WwW.ExAmPlE.", RecordType::A);
        q.metadata.recursion_desired = rd;
        for r in s.both(&q) {
            check(&r, ResponseCode::NoError, true);
            assert_eq!(r.msg.metadata.recursion_desired, rd, "RD copied");
            assert_eq!(r.msg.queries.len(), 1);
            assert_eq!(r.msg.queries[0].name.to_string(), "WwW.ExAmPlE.");
            // The question bytes come back as sent.
            let qb = wire_name("WwW.ExAmPlE.");
            assert_eq!(&r.raw[12..12 + qb.len()], &qb[..]);
            assert_eq!(r.answers(), set(&["WwW.ExAmPlE. 7200 IN A 192.0.2.80"]));
        }
    }
    // A steered name keeps the client's case too.
    let q = query("WwW.CdN.ExAmPlE.", RecordType::A);
    for r in s.both(&q) {
        check(&r, ResponseCode::NoError, true);
        assert_eq!(r.msg.queries[0].name.to_string(), "WwW.CdN.ExAmPlE.");
        assert!(!r.msg.answers.is_empty());
        for a in &r.msg.answers {
            assert_eq!(a.name.to_string(), "WwW.CdN.ExAmPlE.");
            assert_eq!(a.record_type(), RecordType::A);
        }
    }
}

#[test]
fn cd_copied_and_id_echoed() {
    let s = shared();
    let mut q = query("www.example.", RecordType::A);
    q.metadata.checking_disabled = true;
    q.metadata.id = 0xBEEF;
    for r in s.both(&q) {
        assert_eq!(r.msg.metadata.id, 0xBEEF);
        assert!(r.msg.metadata.checking_disabled);
        assert!(!r.msg.metadata.authentic_data);
    }
}

// ------------------------------------------------------------ negative answers

#[test]
fn nxdomain_carries_soa_with_negative_ttl() {
    let s = shared();
    // host1 has no wildcard child: a plain NXDOMAIN.
    for r in s.both(&query("nx.host1.example.", RecordType::A)) {
        check(&r, ResponseCode::NXDomain, true);
        assert!(r.msg.answers.is_empty());
        // min(SOA TTL 3600, MINIMUM 300)
        assert_eq!(r.authorities(), set(&[SOA_EXAMPLE]));
        assert!(r.msg.additionals.is_empty());
    }
    // SOA TTL 30 < MINIMUM 60: the TTL wins.
    for r in s.both(&query("nx.sub.example.", RecordType::A)) {
        check(&r, ResponseCode::NXDomain, true);
        assert_eq!(r.authorities(), set(&[SOA_SUB]));
    }
}

#[test]
fn nodata_carries_soa_with_negative_ttl() {
    let s = shared();
    for name in ["www.example.", "host1.example.", "ns1.example."] {
        for r in s.both(&query(name, RecordType::MX)) {
            check(&r, ResponseCode::NoError, true);
            assert!(r.msg.answers.is_empty(), "{name}: {:?}", r.msg.answers);
            assert_eq!(r.authorities(), set(&[SOA_EXAMPLE]), "{name}");
        }
    }
    for r in s.both(&query("www.sub.example.", RecordType::TXT)) {
        check(&r, ResponseCode::NoError, true);
        assert_eq!(r.authorities(), set(&[SOA_SUB]));
    }
    // The demo zone: SOA TTL 3600, MINIMUM 300.
    for r in s.both(&query("static.cdn.example.", RecordType::TXT)) {
        check(&r, ResponseCode::NoError, true);
        assert_eq!(r.msg.authorities.len(), 1);
        assert_eq!(r.msg.authorities[0].record_type(), RecordType::SOA);
        assert_eq!(r.msg.authorities[0].ttl, 300);
    }
}

// ------------------------------------------------------------ zones

#[test]
fn outside_every_zone_is_refused_without_aa() {
    let s = shared();
    for name in ["www.example.org.", "org.", ".", "example.net.", "xexample."] {
        for r in s.both(&query(name, RecordType::A)) {
            check(&r, ResponseCode::Refused, false);
            assert!(
                r.msg.answers.is_empty()
                    && r.msg.authorities.is_empty()
                    && r.msg.additionals.is_empty()
            );
            assert_eq!(r.msg.queries[0].name.to_string(), name);
        }
    }
}

#[test]
fn closest_enclosing_zone_answers() {
    let s = shared();
    // sub.example. is its own zone: not the *.example. wildcard of the parent.
    for r in s.both(&query("www.sub.example.", RecordType::A)) {
        check(&r, ResponseCode::NoError, true);
        assert_eq!(r.answers(), set(&["www.sub.example. 600 IN A 192.0.2.200"]));
    }
    for r in s.both(&query("sub.example.", RecordType::SOA)) {
        check(&r, ResponseCode::NoError, true);
        assert_eq!(
            r.answers(),
            set(&["sub.example. 30 IN SOA ns1.example. hostmaster.example. 7 3600 600 604800 60"])
        );
    }
    for r in s.both(&query("sub.example.", RecordType::TXT)) {
        check(&r, ResponseCode::NoError, true);
        assert!(
            r.msg.answers.is_empty(),
            "wildcard of the parent must not answer"
        );
        assert_eq!(r.authorities(), set(&[SOA_SUB]));
    }
    for r in s.both(&query("example.", RecordType::SOA)) {
        check(&r, ResponseCode::NoError, true);
        assert_eq!(
            r.answers(),
            set(&[
                "example. 3600 IN SOA ns1.example. hostmaster.example. 2024010101 3600 600 604800 300"
            ])
        );
    }
    for r in s.both(&query("cdn.example.", RecordType::SOA)) {
        check(&r, ResponseCode::NoError, true);
        assert_eq!(r.msg.answers.len(), 1);
        assert_eq!(r.msg.answers[0].name.to_string(), "cdn.example.");
    }
}

#[test]
fn apex_ns_with_glue() {
    let s = shared();
    for r in s.both(&query("example.", RecordType::NS)) {
        check(&r, ResponseCode::NoError, true);
        assert_eq!(
            r.answers(),
            set(&[
                "example. 3600 IN NS ns1.example.",
                "example. 3600 IN NS ns.example.net."
            ])
        );
        assert_eq!(
            r.additionals(),
            set(&[
                "ns1.example. 3600 IN A 192.0.2.53",
                "ns1.example. 3600 IN AAAA 2001:db8::53"
            ])
        );
    }
}

// ------------------------------------------------------------ delegations

fn deleg_ns() -> std::collections::BTreeSet<String> {
    set(&[
        "deleg.example. 3600 IN NS ns1.deleg.example.",
        "deleg.example. 3600 IN NS ns.example.net.",
    ])
}
fn deleg_glue() -> std::collections::BTreeSet<String> {
    set(&[
        "ns1.deleg.example. 3600 IN A 192.0.2.54",
        "ns1.deleg.example. 3600 IN AAAA 2001:db8::54",
    ])
}

#[test]
fn referral_below_the_cut() {
    let s = shared();
    for (name, t) in [
        ("host.deleg.example.", RecordType::A),
        ("a.b.deleg.example.", RecordType::TXT),
        ("ns1.deleg.example.", RecordType::A), // glue is not authoritative data
    ] {
        for r in s.both(&query(name, t)) {
            check(&r, ResponseCode::NoError, false);
            assert!(r.msg.answers.is_empty(), "{name}");
            assert_eq!(r.authorities(), deleg_ns(), "{name}");
            assert_eq!(r.additionals(), deleg_glue(), "{name}");
        }
    }
    // Out-of-zone NS only: no glue.
    for r in s.both(&query("host.subdel.example.", RecordType::A)) {
        check(&r, ResponseCode::NoError, false);
        assert_eq!(
            r.authorities(),
            set(&[
                "subdel.example. 3600 IN NS ns.example.com.",
                "subdel.example. 3600 IN NS ns.example.net."
            ])
        );
        assert!(r.msg.additionals.is_empty());
    }
}

#[test]
fn referral_glue_that_does_not_fit_sets_tc() {
    // RFC 9471 §3: glue for in-domain name servers is not optional; when it
    // doesn't fit, TC tells the resolver to retry over TCP.
    let s = shared();
    for q in [
        query("x.fat.example.", RecordType::A),
        query_edns("x.fat.example.", RecordType::A, 512),
    ] {
        let u = s.udp(&q);
        assert!(u.tc(), "TC when glue is cut");
        assert!(!u.aa());
        assert!(u.len() <= 512);
        assert_eq!(u.msg.authorities.len(), 10, "the NS RRset is whole");
        assert!(u.msg.additionals.len() < 20);
        let t = s.tcp(&q);
        check(&t, ResponseCode::NoError, false);
        assert_eq!(t.msg.additionals.len(), 20, "all glue over TCP");
    }
    // With room for it all (EDNS 1232), no TC.
    let u = s.udp(&query_edns("x.fat.example.", RecordType::A, 1232));
    check(&u, ResponseCode::NoError, false);
    assert_eq!(u.msg.additionals.len(), 20);
}

#[test]
fn referral_at_the_cut() {
    let s = shared();
    for t in [
        RecordType::A,
        RecordType::NS,
        RecordType::SOA,
        RecordType::MX,
    ] {
        for r in s.both(&query("deleg.example.", t)) {
            check(&r, ResponseCode::NoError, false);
            assert!(r.msg.answers.is_empty(), "{t}");
            assert_eq!(r.authorities(), deleg_ns(), "{t}");
            assert_eq!(r.additionals(), deleg_glue(), "{t}");
        }
    }
}

#[test]
fn ds_at_the_cut_is_answered_by_the_parent() {
    let s = shared();
    // RFC 4035 §3.1.4.1 / RFC 3658: the parent is authoritative for DS.
    for r in s.both(&query("deleg.example.", rtype(43))) {
        check(&r, ResponseCode::NoError, true);
        assert!(r.msg.answers.is_empty());
        assert_eq!(r.authorities(), set(&[SOA_EXAMPLE]));
    }
    // DS below the cut is the child's business: a referral.
    for r in s.both(&query("x.deleg.example.", rtype(43))) {
        check(&r, ResponseCode::NoError, false);
        assert_eq!(r.authorities(), deleg_ns());
    }
}

// ------------------------------------------------------------ CNAME

#[test]
fn cname_followed_in_zone() {
    let s = shared();
    for r in s.both(&query("alias.example.", RecordType::A)) {
        check(&r, ResponseCode::NoError, true);
        assert_eq!(
            r.answers(),
            set(&[
                "alias.example. 3600 IN CNAME www.example.",
                "www.example. 7200 IN A 192.0.2.80"
            ])
        );
    }
    for r in s.both(&query("CHAIN.example.", RecordType::AAAA)) {
        check(&r, ResponseCode::NoError, true);
        assert_eq!(
            r.answers(),
            set(&[
                "CHAIN.example. 3600 IN CNAME alias.example.",
                "alias.example. 3600 IN CNAME www.example.",
                "www.example. 3600 IN AAAA 2001:db8::80",
            ])
        );
        // Order matters for a chain: CNAME first, target after.
        assert_eq!(r.msg.answers[0].record_type(), RecordType::CNAME);
        assert_eq!(r.msg.answers[2].record_type(), RecordType::AAAA);
    }
    // The target has no such type: the CNAME and a NODATA SOA.
    for r in s.both(&query("alias.example.", RecordType::MX)) {
        check(&r, ResponseCode::NoError, true);
        assert_eq!(
            r.answers(),
            set(&["alias.example. 3600 IN CNAME www.example."])
        );
        assert_eq!(r.authorities(), set(&[SOA_EXAMPLE]));
    }
}

#[test]
fn cname_to_nonexistent_in_zone_name_is_nxdomain() {
    // RFC 6604 §2.1: the rcode is that of the last name in the chain.
    for r in shared().both(&query("dangling.example.", RecordType::A)) {
        check(&r, ResponseCode::NXDomain, true);
        assert_eq!(
            r.answers(),
            set(&["dangling.example. 3600 IN CNAME nowhere.host1.example."])
        );
        assert_eq!(r.authorities(), set(&[SOA_EXAMPLE]));
    }
}

#[test]
fn cname_out_of_zone_is_just_the_cname() {
    for r in shared().both(&query("outside.example.", RecordType::A)) {
        check(&r, ResponseCode::NoError, true);
        assert_eq!(
            r.answers(),
            set(&["outside.example. 3600 IN CNAME www.example.net."])
        );
        assert!(r.msg.authorities.is_empty());
    }
}

#[test]
fn qtype_cname_returns_the_cname_only() {
    let s = shared();
    for r in s.both(&query("chain.example.", RecordType::CNAME)) {
        check(&r, ResponseCode::NoError, true);
        assert_eq!(
            r.answers(),
            set(&["chain.example. 3600 IN CNAME alias.example."])
        );
    }
    for r in s.both(&query("www.example.", RecordType::CNAME)) {
        check(&r, ResponseCode::NoError, true);
        assert!(r.msg.answers.is_empty());
        assert_eq!(r.authorities(), set(&[SOA_EXAMPLE]));
    }
}

// ------------------------------------------------------------ wildcards

#[test]
fn wildcard_synthesis_uses_the_query_name() {
    let s = shared();
    // RFC 4592 §2.2.1: host3.example. MX is synthesised from *.example.
    for r in s.both(&query("HoSt3.example.", RecordType::MX)) {
        check(&r, ResponseCode::NoError, true);
        assert_eq!(
            r.answers(),
            set(&["HoSt3.example. 3600 IN MX 10 host1.example."])
        );
        assert_eq!(
            r.additionals(),
            set(&["host1.example. 3600 IN A 192.0.2.1"])
        );
    }
    for r in s.both(&query("foo.bar.example.", RecordType::TXT)) {
        check(&r, ResponseCode::NoError, true);
        assert_eq!(
            r.answers(),
            set(&["foo.bar.example. 3600 IN TXT this is a wildcard"])
        );
    }
    // host3.example. A: the wildcard matches but has no A: NODATA.
    for r in s.both(&query("host3.example.", RecordType::A)) {
        check(&r, ResponseCode::NoError, true);
        assert!(r.msg.answers.is_empty());
        assert_eq!(r.authorities(), set(&[SOA_EXAMPLE]));
    }
    // Asking for the wildcard owner itself.
    for r in s.both(&query("*.example.", RecordType::TXT)) {
        check(&r, ResponseCode::NoError, true);
        assert_eq!(
            r.answers(),
            set(&["*.example. 3600 IN TXT this is a wildcard"])
        );
    }
}

#[test]
fn wildcard_not_used_for_existing_names_or_empty_non_terminals() {
    let s = shared();
    // Existing names (RFC 4592 §2.2.1): host1.example. MX,
    // and the empty non-terminals _tcp.host1, host2 and ent2.
    for name in [
        "host1.example.",
        "_tcp.host1.example.",
        "host2.example.",
        "ent2.example.",
    ] {
        for r in s.both(&query(name, RecordType::MX)) {
            check(&r, ResponseCode::NoError, true);
            assert!(
                r.msg.answers.is_empty(),
                "{name} must not be synthesised: {:?}",
                r.msg.answers
            );
            assert_eq!(r.authorities(), set(&[SOA_EXAMPLE]), "{name}");
        }
    }
    for r in s.both(&query("ent2.example.", RecordType::TXT)) {
        check(&r, ResponseCode::NoError, true);
        assert!(r.msg.answers.is_empty());
    }
    // ent.host1.example.: an ENT below a name without a wildcard.
    for r in s.both(&query("ent.host1.example.", RecordType::A)) {
        check(&r, ResponseCode::NoError, true);
        assert!(r.msg.answers.is_empty());
    }
}

#[test]
fn wildcard_closest_encloser_rules() {
    let s = shared();
    // RFC 4592 §2.2.1: the closest encloser is _tcp.host1.example., which has
    // no wildcard child: NXDOMAIN.
    for r in s.both(&query("_telnet._tcp.host1.example.", RecordType::SRV)) {
        check(&r, ResponseCode::NXDomain, true);
        assert!(r.msg.answers.is_empty());
        assert_eq!(r.authorities(), set(&[SOA_EXAMPLE]));
    }
    // ghost.*.example.: the closest encloser is *.example. itself and
    // *.*.example. does not exist.
    for r in s.both(&query("ghost.*.example.", RecordType::MX)) {
        check(&r, ResponseCode::NXDomain, true);
        assert!(r.msg.answers.is_empty());
    }
    // A name below a deeper existing name: a.deep.ent2.example. has the
    // closest encloser deep.ent2.example. (no wildcard): NXDOMAIN, not *.example.
    for r in s.both(&query("a.deep.ent2.example.", RecordType::TXT)) {
        check(&r, ResponseCode::NXDomain, true);
    }
    // host.subdel.example.: below a cut, a referral (no synthesis).
    for r in s.both(&query("host.subdel.example.", RecordType::MX)) {
        check(&r, ResponseCode::NoError, false);
        assert!(r.msg.answers.is_empty());
    }
}

/// RFC 4592 §2.2.1's own example zone has `sub.*.example.`: an asterisk
/// that is not the leftmost label is an ordinary label (§2.1.1), and Knot
/// loads the zone. geosteer's zone loader (src/zone/validate.rs, not part of
/// the answer core) rejects it.
#[test]
fn rfc4592_asterisk_inside_a_name_is_an_ordinary_label() {
    // The fixture zone holds RFC 4592's `sub.*.example.`.
    let s = shared();
    for r in s.both(&query("sub.*.example.", RecordType::TXT)) {
        check(&r, ResponseCode::NoError, true);
        assert_eq!(
            r.answers(),
            set(&["sub.*.example. 3600 IN TXT this is not a wildcard"])
        );
    }
    for r in s.both(&query("sub.*.example.", RecordType::MX)) {
        check(&r, ResponseCode::NoError, true);
        assert!(
            r.msg.answers.is_empty(),
            "an existing name is never synthesised"
        );
    }
}

#[test]
fn wildcard_with_cname() {
    for r in shared().both(&query("Any.Wc.host1.example.", RecordType::A)) {
        check(&r, ResponseCode::NoError, true);
        assert_eq!(
            r.answers(),
            set(&[
                "Any.Wc.host1.example. 3600 IN CNAME www.example.",
                "www.example. 7200 IN A 192.0.2.80"
            ])
        );
    }
    for r in shared().both(&query("x.wc.host1.example.", RecordType::CNAME)) {
        check(&r, ResponseCode::NoError, true);
        assert_eq!(
            r.answers(),
            set(&["x.wc.host1.example. 3600 IN CNAME www.example."])
        );
    }
}

// ------------------------------------------------------------ ANY

#[test]
fn any_over_udp_is_minimal_and_over_tcp_complete() {
    let s = shared();
    let q = query("www.example.", RecordType::ANY);
    let full = set(&[
        "www.example. 7200 IN A 192.0.2.80",
        "www.example. 3600 IN AAAA 2001:db8::80",
    ]);
    let t = s.tcp(&q);
    check(&t, ResponseCode::NoError, true);
    assert_eq!(t.answers(), full);
    let u = s.udp(&q);
    check(&u, ResponseCode::NoError, true);
    // RFC 8482 §4.2: one RRset (a subset of the data) is enough.
    assert!(!u.msg.answers.is_empty());
    assert!(u.answers().is_subset(&full), "{:?}", u.answers());
    let types: std::collections::BTreeSet<_> =
        u.msg.answers.iter().map(|r| r.record_type()).collect();
    assert_eq!(types.len(), 1, "one RRset over UDP: {:?}", u.answers());
    // ANY at an empty non-terminal: NODATA; at a missing name: NXDOMAIN.
    for r in s.both(&query("ent2.example.", RecordType::ANY)) {
        check(&r, ResponseCode::NoError, true);
        assert!(r.msg.answers.is_empty());
        assert_eq!(r.authorities(), set(&[SOA_EXAMPLE]));
    }
    for r in s.both(&query("nx.host1.example.", RecordType::ANY)) {
        check(&r, ResponseCode::NXDomain, true);
    }
}

#[test]
fn any_at_a_cname_is_the_cname_alone() {
    // RFC 1034 §4.3.2: ANY matches the CNAME, so the chain is not followed
    // (as Knot and BIND answer).
    for r in shared().both(&query("alias.example.", RecordType::ANY)) {
        check(&r, ResponseCode::NoError, true);
        assert_eq!(
            r.answers(),
            set(&["alias.example. 3600 IN CNAME www.example."])
        );
    }
}

// ------------------------------------------------------------ EDNS

#[test]
fn edns_opt_echoed_with_our_size() {
    let s = shared();
    for size in [512, 1232, 4096, 65535] {
        for r in s.both(&query_edns("www.example.", RecordType::A, size)) {
            check(&r, ResponseCode::NoError, true);
            let e = r.msg.edns.as_ref().expect("OPT echoed");
            assert_eq!(e.max_payload(), 1232);
            assert_eq!(e.version(), 0);
            assert_eq!(r.msg.additionals.len(), 0);
        }
    }
    for r in s.both(&query("www.example.", RecordType::A)) {
        assert!(r.msg.edns.is_none(), "no OPT without EDNS in the query");
    }
    // Error replies carry OPT too (RFC 6891 §7).
    for r in s.both(&query_edns("www.example.org.", RecordType::A, 1232)) {
        check(&r, ResponseCode::Refused, false);
        assert!(r.msg.edns.is_some());
    }
}

#[test]
fn edns_version_1_is_badvers() {
    let s = shared();
    let q = raw_query(
        0x4242,
        0,
        [1, 0, 0, 1],
        "www.example.",
        1,
        &opt_rr(1232, 0, 1, 0, &[]),
    );
    for raw in [s.udp_raw(&q).unwrap(), s.tcp_raw(&q).unwrap()] {
        let m = Message::from_vec(&raw).unwrap();
        assert_eq!(m.metadata.id, 0x4242);
        assert_eq!(u16::from(m.metadata.response_code), 16, "BADVERS");
        // Header has the low 4 bits (0), the OPT the high 8 (1).
        assert_eq!(raw[3] & 0x0F, 0);
        let e = m.edns.as_ref().expect("OPT in a BADVERS reply");
        assert_eq!(e.rcode_high(), 1);
        assert_eq!(e.version(), 0, "we answer with the version we speak");
        assert!(m.answers.is_empty());
    }
}

#[test]
fn unknown_edns_options_ignored_flags_cleared_do_echoed() {
    let s = shared();
    let opts: [(u16, &[u8]); 2] = [(65001, b"hello"), (3, b"")]; // an unknown one and NSID
    // DO plus undefined flag bits (0x4000 is CO, RFC 9824: echoed).
    let q = raw_query(
        7,
        0,
        [1, 0, 0, 1],
        "www.example.",
        1,
        &opt_rr(1232, 0, 0, 0x8000 | 0x2000 | 0x0001, &opts),
    );
    for raw in [s.udp_raw(&q).unwrap(), s.tcp_raw(&q).unwrap()] {
        let m = Message::from_vec(&raw).unwrap();
        assert_eq!(m.metadata.response_code, ResponseCode::NoError);
        assert_eq!(
            rrset_strings(&m.answers),
            set(&["www.example. 7200 IN A 192.0.2.80"])
        );
        let e = m.edns.as_ref().expect("OPT");
        assert!(e.flags().dnssec_ok, "DO echoed (RFC 3225)");
        assert_eq!(e.flags().z, 0, "unknown flags cleared (RFC 6891 §6.1.4)");
        assert!(
            e.option(hickory_proto::rr::rdata::opt::EdnsCode::Unknown(65001))
                .is_none()
        );
        // Find the OPT's RDLENGTH by hand: nothing we don't speak is echoed.
        let opt = &raw[raw.len() - 11..];
        assert_eq!(&opt[..3], &[0, 0, 41]);
        assert_eq!(&opt[9..], &[0, 0], "no options echoed");
    }
    // Without DO, DO stays clear.
    let q = raw_query(
        8,
        0,
        [1, 0, 0, 1],
        "www.example.",
        1,
        &opt_rr(1232, 0, 0, 0x4000, &[]),
    );
    let m = Message::from_vec(&s.udp_raw(&q).unwrap()).unwrap();
    assert!(!m.edns.unwrap().flags().dnssec_ok);
}

#[test]
fn big_answer_truncated_over_udp_whole_over_tcp() {
    let s = shared();
    for name in ["big.example.", "bigtxt.cdn.example."] {
        // No EDNS: 512 bytes.
        let u = s.udp(&query(name, RecordType::TXT));
        assert!(u.tc(), "{name}: TC without EDNS");
        assert!(u.len() <= 512);
        assert!(u.aa());
        assert!(u.msg.answers.is_empty(), "no partial RRset");
        assert_eq!(u.msg.queries.len(), 1, "question kept");
        // EDNS 512 is 512.
        let u = s.udp(&query_edns(name, RecordType::TXT, 512));
        assert!(u.tc() && u.len() <= 512, "{name}: TC with EDNS 512");
        assert!(u.msg.edns.is_some(), "OPT kept in a truncated reply");
        // EDNS 4096: limited to our 1232, and the TXT fits.
        let u = s.udp(&query_edns(name, RecordType::TXT, 4096));
        assert!(!u.tc(), "{name}: fits in 1232");
        assert!(u.len() > 512 && u.len() <= 1232, "{}", u.len());
        assert_eq!(u.msg.answers.len(), 1);
        // EDNS 600: smaller than the answer: TC, and never above 600.
        let u = s.udp(&query_edns(name, RecordType::TXT, 600));
        assert!(u.tc() && u.len() <= 600, "{name}: {} bytes", u.len());
        // TCP: whole, with or without EDNS.
        for q in [
            query(name, RecordType::TXT),
            query_edns(name, RecordType::TXT, 512),
        ] {
            let t = s.tcp(&q);
            check(&t, ResponseCode::NoError, true);
            assert_eq!(t.msg.answers.len(), 1);
            assert!(t.len() > 512);
        }
    }
}

#[test]
fn tc_then_tcp_fallback_like_a_client() {
    let s = shared();
    let q = query("big.example.", RecordType::TXT);
    let (r, retried) = resolve(s.udp, s.tcp, &q);
    assert!(retried, "UDP answer should have been truncated");
    check(&r, ResponseCode::NoError, true);
    let RData::TXT(txt) = &r.msg.answers[0].data else {
        panic!()
    };
    assert_eq!(txt.txt_data.len(), 4);
    assert!(txt.txt_data[3].starts_with(b"part3-"));
    // A small answer needs no retry.
    let (_, retried) = resolve(s.udp, s.tcp, &query("www.example.", RecordType::A));
    assert!(!retried);
}

#[test]
fn edns_size_below_512_is_treated_as_512() {
    // RFC 6891 §6.2.5: values below 512 are treated as 512.
    let s = shared();
    let r = s.udp(&query_edns("example.", RecordType::NS, 100));
    check(&r, ResponseCode::NoError, true);
    assert_eq!(r.msg.answers.len(), 2);
}

// ------------------------------------------------------------ error rcodes

#[test]
fn qdcount_not_one_is_formerr() {
    let s = shared();
    let none = raw_query(11, 0, [0, 0, 0, 0], "", 0, &[])[..12].to_vec();
    let mut two = raw_query(12, 0, [2, 0, 0, 0], "www.example.", 1, &[]);
    two.extend_from_slice(&wire_name("example."));
    two.extend_from_slice(&[0, 6, 0, 1]);
    for (q, id) in [(none, 11u16), (two, 12)] {
        for raw in [
            s.udp_raw(&q).expect("an answer"),
            s.tcp_raw(&q).expect("an answer"),
        ] {
            let m = Message::from_vec(&raw).unwrap();
            assert_eq!(m.metadata.id, id);
            assert_eq!(m.metadata.response_code, ResponseCode::FormErr);
            assert!(m.answers.is_empty() && !m.metadata.authoritative);
        }
    }
}

#[test]
fn unknown_opcode_is_notimp() {
    let s = shared();
    for opcode in [1u16, 2, 3, 7, 15] {
        let q = raw_query(
            20 + opcode,
            opcode << 11,
            [1, 0, 0, 0],
            "www.example.",
            1,
            &[],
        );
        for raw in [
            s.udp_raw(&q).expect("an answer"),
            s.tcp_raw(&q).expect("an answer"),
        ] {
            assert_eq!(raw[2] & 0x80, 0x80, "QR");
            assert_eq!((raw[2] >> 3) & 0xF, opcode as u8, "opcode echoed");
            assert_eq!(raw[3] & 0xF, 4, "NOTIMP for opcode {opcode}");
            assert_eq!(raw[2] & 0x04, 0, "no AA");
            assert_eq!(&raw[6..12], &[0; 6], "no records");
        }
    }
}

/// ISC ednscomp's "opcode" and "opcodeflg": opcode 15 with no question
/// (header only) and every flag set; NOTIFY and UPDATE too. The answer is
/// NOTIMP with only RD echoed (Knot and gdnsd do the same).
#[test]
fn unknown_opcode_without_question_and_all_flags() {
    let s = shared();
    // TC, RD, RA, Z, AD, CD and AA all set.
    let all_flags = 0x0200 | 0x0100 | 0x0080 | 0x0040 | 0x0020 | 0x0010 | 0x0400;
    for opcode in [4u16, 5, 15] {
        for flags in [0u16, 0x0100, all_flags] {
            let header_only =
                raw_query(40 + opcode, opcode << 11 | flags, [0, 0, 0, 0], "", 0, &[]);
            let with_q = raw_query(
                60 + opcode,
                opcode << 11 | flags,
                [1, 0, 0, 0],
                "www.example.",
                1,
                &[],
            );
            for (q, qd) in [(&header_only[..12], 0u8), (&with_q[..], 1)] {
                for raw in [
                    s.udp_raw(q).expect("an answer"),
                    s.tcp_raw(q).expect("an answer"),
                ] {
                    assert_eq!(
                        raw[3] & 0xF,
                        4,
                        "NOTIMP for opcode {opcode} flags {flags:#x}"
                    );
                    assert_eq!(
                        raw[2],
                        0x80 | (opcode as u8) << 3 | ((flags & 0x0100) >> 8) as u8,
                        "QR, opcode, RD only"
                    );
                    assert_eq!(raw[3] & 0xF0, 0, "no RA, Z, AD or CD");
                    assert_eq!(raw[5], qd, "question echoed when there was one");
                    assert_eq!(&raw[6..12], &[0; 6], "no records");
                }
            }
        }
    }
}

#[test]
fn zone_transfers_refused() {
    let s = shared();
    for t in [RecordType::AXFR, RecordType::IXFR] {
        for r in s.both(&query("example.", t)) {
            assert_eq!(r.msg.metadata.response_code, ResponseCode::Refused, "{t}");
            assert!(r.msg.answers.is_empty());
        }
    }
}

#[test]
fn responses_to_us_are_dropped() {
    let s = shared();
    let q = raw_query(99, 0x8000, [1, 0, 0, 0], "www.example.", 1, &[]);
    assert!(
        udp_raw_timeout(s.udp, &q, Duration::from_millis(300)).is_none(),
        "never answer a response"
    );
}

#[test]
fn other_classes_refused() {
    let s = shared();
    let q = raw_query(5, 0, [1, 0, 0, 0], "www.example.", 1, &[])
        .into_iter()
        .enumerate()
        .map(|(i, b)| if i == 12 + 13 + 3 { 3 } else { b }) // class CH
        .collect::<Vec<_>>();
    let m = Message::from_vec(&s.udp_raw(&q).unwrap()).unwrap();
    assert_eq!(m.metadata.response_code, ResponseCode::Refused);
}

// ------------------------------------------------------------ hostile input

/// Seeds for mutation: well-formed queries of many shapes.
fn seeds() -> Vec<Vec<u8>> {
    let ecs4: &[u8] = &[0, 1, 24, 0, 10, 20, 30];
    let ecs6: &[u8] = &[0, 2, 48, 0, 0x20, 1, 0x0d, 0xb8, 0, 0];
    let mut v = vec![
        raw_query(1, 0x0100, [1, 0, 0, 0], "www.example.", 1, &[]),
        raw_query(
            2,
            0,
            [1, 0, 0, 1],
            "big.example.",
            16,
            &opt_rr(4096, 0, 0, 0x8000, &[]),
        ),
        raw_query(
            3,
            0,
            [1, 0, 0, 1],
            "www.cdn.example.",
            1,
            &opt_rr(1232, 0, 0, 0, &[(8, ecs4)]),
        ),
        raw_query(
            4,
            0,
            [1, 0, 0, 1],
            "img.cdn.example.",
            28,
            &opt_rr(1232, 0, 0, 0, &[(8, ecs6)]),
        ),
        raw_query(
            5,
            0,
            [1, 0, 0, 1],
            "video.cdn.example.",
            255,
            &opt_rr(512, 0, 0, 0, &[(8, ecs4)]),
        ),
        raw_query(6, 0, [1, 0, 0, 0], "host.deleg.example.", 1, &[]),
        raw_query(7, 0, [1, 0, 0, 0], "x.wc.host1.example.", 1, &[]),
        raw_query(
            8,
            0,
            [1, 0, 0, 1],
            "bigtxt.cdn.example.",
            255,
            &opt_rr(1232, 0, 1, 0, &[]),
        ),
        raw_query(9, 0, [1, 0, 0, 0], "dangling.example.", 1, &[]),
    ];
    // A compression loop in the question, and in an additional owner.
    let mut p = raw_query(10, 0, [1, 0, 0, 0], "", 1, &[]);
    p.truncate(12);
    p.extend_from_slice(&[0xC0, 12, 0, 1, 0, 1]);
    v.push(p);
    let mut p = raw_query(11, 0, [1, 0, 0, 2], "www.example.", 1, &[]);
    let at = p.len() as u8;
    p.extend_from_slice(&[0xC0, at, 0, 41, 4, 0, 0, 0, 0, 0, 0, 0]);
    v.push(p);
    // Huge counts.
    v.push(raw_query(
        12,
        0,
        [1, 0xFFFF, 0xFFFF, 0xFFFF],
        "www.example.",
        1,
        &[],
    ));
    // OPT claiming more rdata than sent; OPT with a bad option length; two OPTs.
    v.push(raw_query(
        13,
        0,
        [1, 0, 0, 1],
        "www.example.",
        1,
        &[0, 0, 41, 4, 0, 0, 0, 0, 0, 0xFF, 0xFF],
    ));
    v.push(raw_query(
        14,
        0,
        [1, 0, 0, 1],
        "www.example.",
        1,
        &[0, 0, 41, 4, 0, 0, 0, 0, 0, 0, 4, 0, 8, 0, 99],
    ));
    let mut two = opt_rr(1232, 0, 0, 0, &[]);
    two.extend(opt_rr(1232, 0, 0, 0, &[]));
    v.push(raw_query(15, 0, [1, 0, 0, 2], "www.example.", 1, &two));
    // Bad ECS: family 3, prefix too long, bits beyond the prefix, scope set.
    for ecs in [
        &[0, 3, 8, 0, 1][..],
        &[0, 1, 33, 0, 1, 2, 3, 4, 5],
        &[0, 1, 8, 0, 0xFF, 1],
        &[0, 1, 4, 0, 0x1F],
        &[0, 1, 8, 8, 1],
    ] {
        v.push(raw_query(
            16,
            0,
            [1, 0, 0, 1],
            "www.cdn.example.",
            1,
            &opt_rr(1232, 0, 0, 0, &[(8, ecs)]),
        ));
    }
    // A 255-byte name and one label too long.
    let long = std::iter::repeat_n("a".repeat(62), 4)
        .collect::<Vec<_>>()
        .join(".")
        + ".example.";
    v.push(raw_query(17, 0, [1, 0, 0, 0], &long, 1, &[]));
    v
}

fn mutate(rng: &mut StdRng, seeds: &[Vec<u8>]) -> Vec<u8> {
    match rng.random_range(0..6) {
        0 => {
            let n = rng.random_range(0..600);
            (0..n).map(|_| rng.random()).collect()
        }
        1 => {
            let s = &seeds[rng.random_range(0..seeds.len())];
            s[..rng.random_range(0..=s.len())].to_vec()
        }
        2 | 3 => {
            let mut s = seeds[rng.random_range(0..seeds.len())].clone();
            for _ in 0..rng.random_range(1..6) {
                let i = rng.random_range(0..s.len());
                s[i] = rng.random();
            }
            if rng.random_bool(0.5) {
                s[2] &= 0x7F; // keep it a query so it gets past the QR check
            }
            s
        }
        4 => {
            let mut s = seeds[rng.random_range(0..seeds.len())].clone();
            let n = rng.random_range(0..40);
            s.extend((0..n).map(|_| rng.random::<u8>()));
            s
        }
        _ => {
            // Valid header, random counts, random body.
            let mut s = vec![
                rng.random(),
                rng.random(),
                rng.random::<u8>() & 0x7F,
                rng.random(),
            ];
            for _ in 0..4 {
                let c: u16 = if rng.random_bool(0.5) {
                    rng.random_range(0..3)
                } else {
                    rng.random()
                };
                s.extend_from_slice(&c.to_be_bytes());
            }
            let n = rng.random_range(0..100);
            s.extend((0..n).map(|_| rng.random::<u8>()));
            s
        }
    }
}

#[test]
fn hostile_packets_over_udp_and_tcp() {
    // Its own server: a wedged or dead worker must not hide behind other tests.
    let s = Server::start(&default_zone_files());
    let seeds = seeds();
    let mut rng = StdRng::seed_from_u64(0x6e05_7ee7);
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut buf = vec![0u8; 65_535];
    let mut replies = 0;
    for batch in 0..40 {
        for _ in 0..100 {
            let p = mutate(&mut rng, &seeds);
            sock.send_to(&p, s.udp).unwrap();
        }
        // Drain; every reply must be a parseable response.
        sock.set_read_timeout(Some(Duration::from_millis(if batch == 39 {
            300
        } else {
            20
        })))
        .unwrap();
        while let Ok((n, _)) = sock.recv_from(&mut buf) {
            replies += 1;
            assert!(
                n >= 12 && buf[2] & 0x80 != 0,
                "reply without QR: {:02x?}",
                &buf[..n]
            );
            assert!(n <= 1232, "UDP reply of {n} bytes");
            Message::from_vec(&buf[..n])
                .unwrap_or_else(|e| panic!("bad reply {:02x?}: {e}", &buf[..n]));
        }
    }
    assert!(replies > 100, "only {replies} replies to 4000 packets");
    let r = s.udp(&query("www.example.", RecordType::A));
    check(&r, ResponseCode::NoError, true);

    // TCP: many frames on one connection, and odd framing on others.
    use std::io::Write;
    let mut conn = std::net::TcpStream::connect(s.tcp).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    for _ in 0..300 {
        let p = mutate(&mut rng, &seeds);
        let mut f = (p.len() as u16).to_be_bytes().to_vec();
        f.extend_from_slice(&p);
        if conn.write_all(&f).is_err() {
            conn = std::net::TcpStream::connect(s.tcp).unwrap();
        }
    }
    drop(conn);
    for frame in [
        vec![0u8, 0],
        vec![0xFF, 0xFF, 1, 2, 3],
        vec![0, 1],
        vec![0, 12, 0, 0, 0, 0],
    ] {
        let mut c = std::net::TcpStream::connect(s.tcp).unwrap();
        let _ = c.write_all(&frame);
        drop(c);
    }
    let r = s.tcp(&query("www.example.", RecordType::A));
    check(&r, ResponseCode::NoError, true);
    let r = s.udp(&query("big.example.", RecordType::TXT));
    assert!(r.tc());
}

#[test]
fn respond_fuzz_in_process() {
    use geosteer::Transport;
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), &default_zone_files(), "127.0.0.1:0");
    let cfg = geosteer::ServerConfig::load(&cfg).unwrap();
    let snap = geosteer::build_snapshot(&cfg, &geosteer::AlwaysUp, 1).unwrap();
    let seeds = seeds();
    let mut rng = StdRng::seed_from_u64(42);
    let mut out = vec![0u8; 65_535];
    let client: SocketAddr = "198.51.100.7:5353".parse().unwrap();
    let mut answered = 0;
    let mut inputs: Vec<Vec<u8>> = seeds.clone();
    for _ in 0..30_000 {
        inputs.push(mutate(&mut rng, &seeds));
    }
    for q in &inputs {
        for transport in [Transport::Udp, Transport::Tcp] {
            let Some(n) = geosteer::respond(&snap, q, client, transport, &mut out) else {
                continue;
            };
            answered += 1;
            let r = &out[..n];
            let m = Message::from_vec(r)
                .unwrap_or_else(|e| panic!("query {q:02x?} -> unparseable {r:02x?}: {e}"));
            assert_eq!(&r[..2], &q[..2], "ID");
            assert!(r[2] & 0x80 != 0, "QR");
            if transport == Transport::Udp {
                let limit = match (&m.edns, Message::from_vec(q).ok().and_then(|m| m.edns)) {
                    (Some(_), Some(e)) => e.max_payload().clamp(512, 1232) as usize,
                    (Some(_), None) => 1232,
                    (None, _) => 512,
                };
                assert!(n <= limit, "{n} > {limit} for {q:02x?}");
            }
        }
    }
    assert!(answered > 10_000, "{answered}");
}

// ------------------------------------------------------------ the binary

const BIN: &str = env!("CARGO_BIN_EXE_geosteer");

#[test]
fn check_reports_bad_zone_file() {
    let dir = tempfile::tempdir().unwrap();
    let mut files = default_zone_files();
    files[1].1 = "$TTL 600\n@ IN SOA ns1.example. h.example. 1 2 3 4 5\n@ IN NS ns1.example.\nwww IN A 999.1.2.3\n".into();
    let cfg = write_config(dir.path(), &files, "127.0.0.1:0");
    let out = Command::new(BIN)
        .args(["check", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "check must fail: {stdout}");
    let want = format!(
        "{}:4: ",
        dir.path().join("zones/sub.example.zone").display()
    );
    let line = stdout
        .lines()
        .find(|l| l.starts_with(&want))
        .unwrap_or_else(|| panic!("no `{want}` in {stdout:?}"));
    assert!(line.len() > want.len(), "a reason after file:line");

    // The good set passes.
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), &default_zone_files(), "127.0.0.1:0");
    let out = Command::new(BIN)
        .args(["check", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn sigterm_and_sigint_exit_zero() {
    for sig in [libc::SIGTERM, libc::SIGINT] {
        let mut server = Binary::spawn();
        let r = udp(server.addr(), &query("www.example.", RecordType::A));
        check(&r, ResponseCode::NoError, true);
        let child = &mut server.child.0;
        unsafe { libc::kill(child.id() as i32, sig) };
        let t0 = Instant::now();
        let status = loop {
            if let Some(s) = child.try_wait().unwrap() {
                break s;
            }
            if t0.elapsed() > Duration::from_secs(10) {
                let _ = child.kill();
                panic!("no exit after signal {sig}");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        assert_eq!(status.code(), Some(0), "signal {sig}: {status:?}");
    }
}

// ------------------------------------------------------------ steered names

#[test]
fn steered_names_answer_like_static_ones() {
    let s = shared();
    // No TXT at a steered name: NODATA with the negative SOA, not NXDOMAIN.
    for r in s.both(&query("www.cdn.example.", RecordType::TXT)) {
        check(&r, ResponseCode::NoError, true);
        assert!(r.msg.answers.is_empty());
        assert_eq!(r.msg.authorities.len(), 1);
        assert_eq!(r.msg.authorities[0].record_type(), RecordType::SOA);
        assert_eq!(r.msg.authorities[0].ttl, 300);
    }
    for r in s.both(&query("www.cdn.example.", RecordType::AAAA)) {
        check(&r, ResponseCode::NoError, true);
        assert!(!r.msg.answers.is_empty());
        assert!(
            r.msg
                .answers
                .iter()
                .all(|a| a.record_type() == RecordType::AAAA && a.ttl == 20)
        );
    }
    // Over TCP, ANY at a steered name gives both families.
    let t = s.tcp(&query("www.cdn.example.", RecordType::ANY));
    check(&t, ResponseCode::NoError, true);
    let types: std::collections::BTreeSet<_> =
        t.msg.answers.iter().map(|r| r.record_type()).collect();
    assert_eq!(
        types,
        [RecordType::A, RecordType::AAAA].into_iter().collect()
    );
    // Below a steered name: NXDOMAIN.
    for r in s.both(&query("x.www.cdn.example.", RecordType::A)) {
        check(&r, ResponseCode::NXDomain, true);
    }
}
