//! Every record type BIND's `named-checkzone` loads, in presentation form
//! (tests/fixtures/alltypes.example.zone): named-checkzone and geosteer
//! both load the file, and geosteer serves each record with the RDATA
//! BIND's `named` serves for it, and Knot's `knotd` for the types Knot 3.2
//! knows. Bad data in the newer types is reported at its line.

use crate::support;

use std::collections::BTreeSet;
use std::path::Path;

use support::dns::{raw_query, tcp_raw};
use support::peers::{Knot, Named, answer_rdata};
use support::server::Server;
use support::tools::{need_tools, run, tool};

const ZONE: &str = "alltypes.example.";

/// Types knotd 3.2 loads (`knotc zone-check` refuses the others).
const KNOT_TYPES: &[u16] = &[
    1, 2, 5, 6, 12, 13, 14, 15, 16, 17, 18, 21, 25, 28, 29, 33, 35, 36, 37, 39, 42, 43, 44, 45, 48,
    49, 52, 53, 59, 60, 61, 62, 63, 64, 65, 99, 104, 105, 106, 107, 108, 109, 256, 257, 65280,
];

fn fixture_path() -> std::path::PathBuf {
    support::repo().join("tests/fixtures/alltypes.example.zone")
}

/// (owner, type) of every record of the fixture, as geosteer reads it.
fn records() -> BTreeSet<(String, u16)> {
    let origin = hickory_proto::rr::Name::from_ascii(ZONE).unwrap();
    let z = geosteer::load_zone_file(&fixture_path(), &origin)
        .unwrap_or_else(|e| panic!("geosteer does not load the fixture: {e:#?}"));
    z.records
        .iter()
        .map(|r| (r.record.name.to_ascii(), u16::from(r.record.record_type())))
        .collect()
}

#[test]
fn geosteer_loads_every_type_named_checkzone_loads() {
    let got: BTreeSet<u16> = records().iter().map(|r| r.1).collect();
    // Everything in the schema but what only a signer makes.
    for code in [
        1u16, 2, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26,
        27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 42, 43, 44, 45, 48, 49, 52, 53, 55,
        56, 57, 58, 59, 60, 61, 62, 63, 64, 65, 66, 67, 68, 99, 103, 104, 105, 106, 107, 108, 109,
        256, 257, 258, 259, 260, 261, 262, 32768, 32769, 65533, 65280,
    ] {
        assert!(got.contains(&code), "type {code} missing from the fixture");
    }
    if !need_tools(&["named-checkzone"]) {
        return;
    }
    let out = run(
        &tool("named-checkzone"),
        &["-i", "none", ZONE, fixture_path().to_str().unwrap()],
    );
    assert!(out.contains("OK"), "{out}");
}

/// geosteer's answer RDATA for every record equals BIND's and (for the
/// types Knot knows) Knot's.
#[test]
fn every_type_is_served_as_bind_and_knot_serve_it() {
    if !need_tools(&["named", "knotd"]) {
        return;
    }
    let text = std::fs::read_to_string(fixture_path()).unwrap();
    let gs = Server::start(&[("alltypes.example.zone".into(), text.clone())]);
    let named = Named::start(&[("alltypes.example", &text)], "", "");
    // Knot refuses a whole zone for one type it does not know.
    let knot_text: String = text
        .lines()
        .filter(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            l.starts_with(['$', ';'])
                || f.len() < 2
                || geosteer::type_code(f[1]).is_some_and(|t| KNOT_TYPES.contains(&t))
        })
        .map(|l| format!("{l}\n"))
        .collect();
    let knot = Knot::start(
        &[("alltypes.example.zone", &knot_text)],
        "template:\n  - id: default\n    storage: \"{zones}\"\n    file: \"%s.zone\"\n    zonefile-sync: -1\n    journal-content: none\nzone:\n  - domain: alltypes.example.\n",
        ZONE,
    );
    let ask = |addr, owner: &str, t: u16| -> Vec<(u16, Vec<u8>)> {
        let q = raw_query(0x7777, 0, [1, 0, 0, 0], owner, t, &[]);
        let r = tcp_raw(addr, &q).unwrap_or_else(|| panic!("no answer for {owner} {t}"));
        let mut v = answer_rdata(&r);
        v.sort();
        v
    };
    let mut compared_knot = 0;
    for (owner, t) in records() {
        let ours = ask(gs.tcp, &owner, t);
        assert!(!ours.is_empty() || t == 2, "{owner} {t}: no answer");
        let bind = ask(named.addr, &owner, t);
        assert_eq!(ours, bind, "{owner} type {t}: geosteer vs BIND");
        if KNOT_TYPES.contains(&t) {
            let k = ask(knot.addr, &owner, t);
            assert_eq!(
                ours,
                k,
                "{owner} type {t}: geosteer vs Knot\n{}",
                knot.log()
            );
            compared_knot += 1;
        }
    }
    assert!(
        compared_knot > 40,
        "only {compared_knot} compared with Knot"
    );
}

/// Bad data in the newer types: `file:line: reason`, every error reported.
#[test]
fn bad_rdata_of_newer_types_is_reported_at_its_line() {
    let head = "$TTL 300\n@ SOA ns1 h 1 3600 600 86400 60\n@ NS ns1\nns1 A 127.0.0.1\n";
    let cases: &[(&str, &str)] = &[
        ("x EUI48 00-00-5e-00-53", "want 6 hex pairs"),
        ("x EUI64 00-00-5e-00-53-2a", "want 8 hex pairs"),
        ("x AFSDB 1", "missing its hostname field"),
        ("x MINFO a.example.", "missing its emailbx field"),
        ("x X25 \"12\"", "at least 4 digits"),
        ("x NID 10 0014:4fff:ff20", "four groups of hex"),
        ("x L32 10 10.1.2", "invalid IPv4 address"),
        ("x CSYNC 66 3 A BOGUS", "invalid record type 'BOGUS'"),
        ("x ZONEMD 1 1 1 00", "at least 12 bytes"),
        ("x APL 3:1.2.3.0/24", "invalid APL item"),
        ("x NSAP 47.0005", "must start with 0x"),
        ("x A6 129 ::", "above 128"),
        ("x IPSECKEY 10 4 2 x AQID", "gateway type 4"),
        (
            "x AMTRELAY 10 2 1 192.0.2.1",
            "discovery optional must be 0 or 1",
        ),
        ("x TA 1 13 2 abcd", "32-byte digest"),
        ("x NULL 01", "no text form"),
        ("x MB", "missing its target field"),
        ("x WKS 10.0.0.1 tcp gopherish", "unknown WKS service"),
        (
            "x SIG A 5 2 3600 2030123123595 20000101000000 1 example. AAAA",
            "invalid expiration",
        ),
        ("x SPF", "missing its text field"),
        (
            "x HTTPS 1 . tls-supported-groups=x25519",
            "TLS group numbers",
        ),
        ("x MX 10 mx.example. extra", "extra 'extra'"),
        ("x KX 10 kx.example. extra", "extra field 'extra'"),
    ];
    let origin = hickory_proto::rr::Name::from_ascii("example.com.").unwrap();
    for (line, needle) in cases {
        let text = format!("{head}{line}\n");
        let errs = geosteer::parse_zone_str(&text, Path::new("t.zone"), &origin)
            .err()
            .unwrap_or_else(|| panic!("{line}: accepted"));
        assert_eq!(errs.len(), 1, "{line}: {errs:#?}");
        let e = errs[0].to_string();
        assert!(
            e.starts_with("t.zone:5: ") && e.contains(needle),
            "{line}: {e} (want {needle})"
        );
    }
}

/// SvcParam keys newer than RFC 9460 by name, and any key as `keyNNNNN`
/// (a known key's number takes that key's value syntax, as in BIND).
#[test]
fn newer_svcparam_keys_by_name_and_by_number() {
    let origin = hickory_proto::rr::Name::from_ascii("example.com.").unwrap();
    let text = "$TTL 300\n@ SOA ns1 h 1 3600 600 86400 60\n@ NS ns1\nns1 A 127.0.0.1\n\
                a HTTPS 1 . tls-supported-groups=29,23\n\
                b HTTPS 1 . key9=29,23\n\
                c HTTPS 1 . key10=\"abc\" key65000\n";
    let z = geosteer::parse_zone_str(text, Path::new("t.zone"), &origin).unwrap();
    let rd = |owner: &str| {
        use hickory_proto::serialize::binary::{BinEncodable, BinEncoder};
        let r = z
            .records
            .iter()
            .find(|r| r.record.name.to_ascii() == owner)
            .unwrap();
        let mut buf = Vec::new();
        r.record.data.emit(&mut BinEncoder::new(&mut buf)).unwrap();
        buf
    };
    assert_eq!(rd("a.example.com."), rd("b.example.com."));
    assert_eq!(
        rd("a.example.com."),
        b"\x00\x01\x00\x00\x09\x00\x04\x00\x1d\x00\x17"
    );
    assert_eq!(
        rd("c.example.com."),
        b"\x00\x01\x00\x00\x0a\x00\x03abc\xfd\xe8\x00\x00"
    );
}

/// A signer's records (RRSIG, NSEC, NSEC3, NSEC3PARAM) are parsed in their
/// presentation form, then refused with the reason: geosteer signs online.
#[test]
fn presigned_records_are_parsed_then_refused_with_the_reason() {
    let origin = hickory_proto::rr::Name::from_ascii("example.com.").unwrap();
    let head = "$TTL 300\n@ SOA ns1 h 1 3600 600 86400 60\n@ NS ns1\nns1 A 127.0.0.1\n";
    for line in [
        "x RRSIG A 13 3 300 20301231235959 20000101000000 12345 example.com. AAAA",
        "x NSEC y.example.com. A RRSIG NSEC",
        "2vptu5timamqttgl4luu9kg21e0aor3s NSEC3 1 1 12 aabbccdd 2vptu5timamqttgl4luu9kg21e0aor3s A RRSIG",
        "@ NSEC3PARAM 1 0 12 -",
    ] {
        let text = format!("{head}{line}\n");
        let errs = geosteer::parse_zone_str(&text, Path::new("t.zone"), &origin).unwrap_err();
        assert_eq!(errs.len(), 1, "{line}: {errs:#?}");
        assert!(
            errs[0].to_string().starts_with("t.zone:5: ")
                && errs[0].reason.contains("pre-signed zones are not served"),
            "{line}: {}",
            errs[0]
        );
    }
    // Malformed, it is the syntax that is reported.
    let text = format!("{head}x NSEC3 1 1 12 zz 2vptu5 A\n");
    let errs = geosteer::parse_zone_str(&text, Path::new("t.zone"), &origin).unwrap_err();
    assert!(
        errs[0].reason.contains("salt is not valid hex"),
        "{}",
        errs[0]
    );
}
