//! Master-file loading: directives, syntax, RDATA, validation and the demo zone.

use crate::support;

use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

use geosteer::{
    MAX_INCLUDE_DEPTH, ZoneError, ZoneFile, load_zone_file, origin_from_filename, parse_zone_str,
    validate_zone as validate,
};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use support::write_file;

const ZONE_PATH: &str = "/zones/example.com.zone";

/// A valid zone head: $TTL, SOA, apex NS and its glue (lines 1-4).
const HEAD: &str =
    "$TTL 3600\n@ SOA ns1 hostmaster 1 7200 900 1209600 300\n@ NS ns1\nns1 A 192.0.2.1\n";

fn name(s: &str) -> Name {
    Name::from_ascii(s).unwrap()
}

fn origin() -> Name {
    name("example.com.")
}

fn parse(text: &str) -> Result<ZoneFile, Vec<ZoneError>> {
    parse_zone_str(text, Path::new(ZONE_PATH), &origin())
}

fn ok(text: &str) -> ZoneFile {
    match parse(text) {
        Ok(z) => z,
        Err(errors) => panic!("unexpected errors: {errors:#?}"),
    }
}

fn errors(text: &str) -> Vec<String> {
    match parse(text) {
        Ok(z) => panic!("expected errors, loaded {} records", z.records.len()),
        Err(e) => e.iter().map(ToString::to_string).collect(),
    }
}

/// The single error of `text`, which must be at ZONE_PATH:`line` and mention `needle`.
fn assert_one_error(text: &str, line: u32, needle: &str) {
    let errs = errors(text);
    assert_eq!(errs.len(), 1, "{errs:#?}");
    let prefix = format!("{ZONE_PATH}:{line}: ");
    assert!(
        errs[0].starts_with(&prefix),
        "{} should start with {prefix}",
        errs[0]
    );
    assert!(
        errs[0].contains(needle),
        "{} should mention {needle}",
        errs[0]
    );
}

fn records<'z>(zone: &'z ZoneFile, owner: &str, rtype: RecordType) -> Vec<&'z Record> {
    let owner = name(owner);
    zone.records
        .iter()
        .map(|r| &r.record)
        .filter(|r| r.name == owner && r.record_type() == rtype)
        .collect()
}

fn one<'z>(zone: &'z ZoneFile, owner: &str, rtype: RecordType) -> &'z Record {
    let found = records(zone, owner, rtype);
    assert_eq!(found.len(), 1, "{owner} {rtype}: {found:#?}");
    found[0]
}

fn a_addr(r: &Record) -> Ipv4Addr {
    match &r.data {
        RData::A(a) => a.0,
        other => panic!("not A: {other:?}"),
    }
}

fn target(r: &Record) -> String {
    match &r.data {
        RData::CNAME(n) => n.0.to_string(),
        RData::NS(n) => n.0.to_string(),
        RData::PTR(n) => n.0.to_string(),
        RData::MX(mx) => mx.exchange.to_string(),
        RData::SRV(srv) => srv.target.to_string(),
        other => panic!("no target name: {other:?}"),
    }
}

fn txt_strings(r: &Record) -> Vec<Vec<u8>> {
    match &r.data {
        RData::TXT(t) => t.txt_data.iter().map(|s| s.to_vec()).collect(),
        other => panic!("not TXT: {other:?}"),
    }
}

// ---- directives and syntax ----

#[test]
fn ttl_directive_sets_default_and_can_change() {
    let z = ok(&format!("{HEAD}a A 192.0.2.10\n$TTL 60\nb A 192.0.2.11\n"));
    assert_eq!(one(&z, "a.example.com.", RecordType::A).ttl, 3600);
    assert_eq!(one(&z, "b.example.com.", RecordType::A).ttl, 60);
}

#[test]
fn ttl_defaults_to_last_explicit_ttl_without_ttl_directive() {
    let z = ok("@ 600 SOA ns1 hm 1 2 3 4 5\n@ NS ns1\nns1 A 192.0.2.1\n");
    assert_eq!(one(&z, "ns1.example.com.", RecordType::A).ttl, 600);
}

#[test]
fn missing_ttl_is_an_error_at_its_line() {
    assert_one_error("@ SOA ns1 hm 1 2 3 4 5\n@ 60 NS ns1\n", 1, "no TTL");
}

#[test]
fn ttl_units_are_accepted() {
    let z = ok(&format!(
        "{HEAD}a 1h30m A 192.0.2.10\nb 2d A 192.0.2.11\nc 1W A 192.0.2.12\n$TTL 5m\nd A 192.0.2.13\n"
    ));
    assert_eq!(one(&z, "a.example.com.", RecordType::A).ttl, 5400);
    assert_eq!(one(&z, "b.example.com.", RecordType::A).ttl, 172_800);
    assert_eq!(one(&z, "c.example.com.", RecordType::A).ttl, 604_800);
    assert_eq!(one(&z, "d.example.com.", RecordType::A).ttl, 300);
}

#[test]
fn bad_ttl_reported() {
    assert_one_error(&format!("{HEAD}a 1x A 192.0.2.10\n"), 5, "invalid TTL '1x'");
    assert_one_error(&format!("{HEAD}a 4294967295 A 192.0.2.10\n"), 5, "2^31-1");
}

#[test]
fn ttl_and_class_in_either_order_and_class_optional() {
    let z = ok(&format!(
        "{HEAD}a IN 120 A 192.0.2.10\nb 130 IN A 192.0.2.11\nc 140 A 192.0.2.12\nd in a 192.0.2.13\n"
    ));
    assert_eq!(one(&z, "a.example.com.", RecordType::A).ttl, 120);
    assert_eq!(one(&z, "b.example.com.", RecordType::A).ttl, 130);
    assert_eq!(one(&z, "c.example.com.", RecordType::A).ttl, 140);
    // No explicit TTL: $TTL wins over the last explicit one (RFC 2308 §4).
    assert_eq!(one(&z, "d.example.com.", RecordType::A).ttl, 3600);
}

#[test]
fn class_other_than_in_is_an_error() {
    assert_one_error(
        &format!("{HEAD}a CH A 192.0.2.10\n"),
        5,
        "unsupported class CH",
    );
}

#[test]
fn origin_directive_absolute_and_relative() {
    let z = ok(&format!(
        "{HEAD}$ORIGIN sub.example.com.\nwww A 192.0.2.10\n$ORIGIN deeper\nx A 192.0.2.11\n@ A 192.0.2.12\n"
    ));
    assert_eq!(
        a_addr(one(&z, "www.sub.example.com.", RecordType::A)),
        Ipv4Addr::new(192, 0, 2, 10)
    );
    assert_eq!(
        a_addr(one(&z, "x.deeper.sub.example.com.", RecordType::A)),
        Ipv4Addr::new(192, 0, 2, 11)
    );
    assert_eq!(
        a_addr(one(&z, "deeper.sub.example.com.", RecordType::A)),
        Ipv4Addr::new(192, 0, 2, 12)
    );
}

#[test]
fn at_sign_is_the_origin() {
    let z = ok(&format!("{HEAD}@ TXT hello\n"));
    assert_eq!(
        txt_strings(one(&z, "example.com.", RecordType::TXT)),
        vec![b"hello".to_vec()]
    );
}

#[test]
fn blank_start_inherits_previous_owner() {
    let z = ok(&format!(
        "{HEAD}multi A 192.0.2.10\n  AAAA 2001:db8::1\n\t  TXT \"x\"\n"
    ));
    let m = "multi.example.com.";
    assert_eq!(records(&z, m, RecordType::A).len(), 1);
    assert_eq!(records(&z, m, RecordType::AAAA).len(), 1);
    assert_eq!(records(&z, m, RecordType::TXT).len(), 1);
}

#[test]
fn blank_start_without_previous_owner_is_an_error() {
    let text = format!(" A 192.0.2.10\n{HEAD}");
    let errs = errors(&text);
    assert_eq!(
        errs,
        vec![format!(
            "{ZONE_PATH}:1: line starts with a blank but there is no previous owner name to inherit"
        )]
    );
}

#[test]
fn parentheses_make_a_multi_line_soa() {
    let text = "$TTL 1h\n@ IN SOA ns1.example.com. hostmaster ( ; comment\n   2026112301 ; serial\n   1h 10m\n   1w\n   300 )\n@ NS ns1\nns1 A 192.0.2.1\nafter A 192.0.2.2\n";
    let z = ok(text);
    let soa = &z.records[0];
    assert_eq!(soa.line, 2);
    let RData::SOA(soa_data) = &soa.record.data else {
        panic!("not SOA")
    };
    assert_eq!(soa_data.mname.to_string(), "ns1.example.com.");
    assert_eq!(soa_data.rname.to_string(), "hostmaster.example.com.");
    assert_eq!(soa_data.serial, 2_026_112_301);
    assert_eq!(
        (
            soa_data.refresh,
            soa_data.retry,
            soa_data.expire,
            soa_data.minimum
        ),
        (3600, 600, 604_800, 300)
    );
    // The entry after the parenthesised one keeps correct line numbers.
    let after = z
        .records
        .iter()
        .find(|r| r.record.name == name("after.example.com."))
        .unwrap();
    assert_eq!(after.line, 9);
}

#[test]
fn quoted_txt_with_spaces_escapes_and_semicolons() {
    let z = ok(&format!(
        "{HEAD}t TXT \"hello world\" \"semi;colon\" \"say \\\"hi\\\"\" \"\\065\\255\" unquoted\\;x ; real comment\n"
    ));
    let got = txt_strings(one(&z, "t.example.com.", RecordType::TXT));
    let want: Vec<Vec<u8>> = vec![
        b"hello world".to_vec(),
        b"semi;colon".to_vec(),
        b"say \"hi\"".to_vec(),
        vec![b'A', 255],
        b"unquoted;x".to_vec(),
    ];
    assert_eq!(got, want);
}

#[test]
fn txt_string_over_255_bytes_is_an_error() {
    let long = "x".repeat(256);
    assert_one_error(&format!("{HEAD}t TXT \"{long}\"\n"), 5, "256 bytes");
}

#[test]
fn relative_and_absolute_names_in_rdata() {
    let z = ok(&format!(
        "{HEAD}c1 CNAME target\nc2 CNAME target.other.net.\nc3 CNAME @\n\
         @ NS ns2.other.net.\n@ MX 10 mail\n_sip._tcp SRV 1 2 5060 sip\np PTR host.example.com.\n\
         $ORIGIN sub.example.com.\nc4 CNAME rel\n"
    ));
    assert_eq!(
        target(one(&z, "c1.example.com.", RecordType::CNAME)),
        "target.example.com."
    );
    assert_eq!(
        target(one(&z, "c2.example.com.", RecordType::CNAME)),
        "target.other.net."
    );
    assert_eq!(
        target(one(&z, "c3.example.com.", RecordType::CNAME)),
        "example.com."
    );
    let ns: Vec<String> = records(&z, "example.com.", RecordType::NS)
        .into_iter()
        .map(target)
        .collect();
    assert_eq!(ns, ["ns1.example.com.", "ns2.other.net."]);
    assert_eq!(
        target(one(&z, "example.com.", RecordType::MX)),
        "mail.example.com."
    );
    assert_eq!(
        target(one(&z, "_sip._tcp.example.com.", RecordType::SRV)),
        "sip.example.com."
    );
    assert_eq!(
        target(one(&z, "p.example.com.", RecordType::PTR)),
        "host.example.com."
    );
    assert_eq!(
        target(one(&z, "c4.sub.example.com.", RecordType::CNAME)),
        "rel.sub.example.com."
    );
    for r in &z.records {
        assert!(r.record.name.is_fqdn());
    }
}

#[test]
fn escaped_names_decode_in_decimal() {
    let z = ok(&format!("{HEAD}a\\046b A 192.0.2.10\nc CNAME x\\065y\n"));
    // "a\046b" is one label "a.b"; \065 is 'A' (decimal, not octal).
    let a = z
        .records
        .iter()
        .find(|r| r.record.record_type() == RecordType::A && r.line == 5)
        .unwrap();
    assert_eq!(a.record.name.iter().next().unwrap(), b"a.b");
    assert_eq!(
        target(one(&z, "c.example.com.", RecordType::CNAME)),
        "xAy.example.com."
    );
}

#[test]
fn owner_names_keep_their_case() {
    let z = ok(&format!("{HEAD}MiXeD A 192.0.2.10\n"));
    let r = one(&z, "mixed.example.com.", RecordType::A);
    assert_eq!(r.name.to_string(), "MiXeD.example.com.");
}

// ---- each type ----

#[test]
fn soa_record() {
    let z = ok(HEAD);
    let RData::SOA(s) = &one(&z, "example.com.", RecordType::SOA).data else {
        panic!()
    };
    assert_eq!(s.mname.to_string(), "ns1.example.com.");
    assert_eq!(
        (s.serial, s.refresh, s.retry, s.expire, s.minimum),
        (1, 7200, 900, 1_209_600, 300)
    );
}

#[test]
fn ns_record() {
    let z = ok(HEAD);
    assert_eq!(
        target(one(&z, "example.com.", RecordType::NS)),
        "ns1.example.com."
    );
}

#[test]
fn a_record() {
    let z = ok(HEAD);
    assert_eq!(
        a_addr(one(&z, "ns1.example.com.", RecordType::A)),
        Ipv4Addr::new(192, 0, 2, 1)
    );
}

#[test]
fn aaaa_record() {
    let z = ok(&format!("{HEAD}v6 AAAA 2001:db8::5\n"));
    let RData::AAAA(a) = &one(&z, "v6.example.com.", RecordType::AAAA).data else {
        panic!()
    };
    assert_eq!(a.0, "2001:db8::5".parse::<Ipv6Addr>().unwrap());
}

#[test]
fn cname_record() {
    let z = ok(&format!("{HEAD}c CNAME ns1\n"));
    assert!(matches!(
        one(&z, "c.example.com.", RecordType::CNAME).data,
        RData::CNAME(_)
    ));
}

#[test]
fn mx_record() {
    let z = ok(&format!("{HEAD}@ MX 20 mx.other.net.\n"));
    let RData::MX(mx) = &one(&z, "example.com.", RecordType::MX).data else {
        panic!()
    };
    assert_eq!(mx.preference, 20);
    assert_eq!(mx.exchange.to_string(), "mx.other.net.");
}

#[test]
fn txt_record() {
    let z = ok(&format!("{HEAD}t TXT \"v=spf1 -all\"\n"));
    assert_eq!(
        txt_strings(one(&z, "t.example.com.", RecordType::TXT)),
        vec![b"v=spf1 -all".to_vec()]
    );
}

#[test]
fn srv_record() {
    let z = ok(&format!("{HEAD}_sip._udp SRV 10 60 5060 sip.other.net.\n"));
    let RData::SRV(s) = &one(&z, "_sip._udp.example.com.", RecordType::SRV).data else {
        panic!()
    };
    assert_eq!((s.priority, s.weight, s.port), (10, 60, 5060));
    assert_eq!(s.target.to_string(), "sip.other.net.");
}

#[test]
fn caa_record() {
    let z = ok(&format!(
        "{HEAD}@ CAA 128 issue \"ca.example.net; account=42\"\n"
    ));
    let RData::CAA(c) = &one(&z, "example.com.", RecordType::CAA).data else {
        panic!()
    };
    assert!(c.issuer_critical);
    assert_eq!(c.tag, "issue");
    assert_eq!(c.value, b"ca.example.net; account=42");
}

#[test]
fn caa_bad_tag_is_an_error() {
    assert_one_error(&format!("{HEAD}@ CAA 0 is-sue \"x\"\n"), 5, "CAA tag");
}

#[test]
fn ptr_record() {
    let z = ok(&format!("{HEAD}p PTR @\n"));
    assert_eq!(
        target(one(&z, "p.example.com.", RecordType::PTR)),
        "example.com."
    );
}

// ---- $INCLUDE ----

#[test]
fn include_without_origin_uses_current_origin_relative_to_including_file() {
    let dir = tempfile::tempdir().unwrap();
    write_file(dir.path(), "parts/hosts.inc", "h1 A 192.0.2.10\n");
    let top = write_file(
        dir.path(),
        "example.com.zone",
        &format!("{HEAD}$INCLUDE parts/hosts.inc\n"),
    );
    let z = load_zone_file(&top, &origin()).unwrap();
    let h1 = z
        .records
        .iter()
        .find(|r| r.record.name == name("h1.example.com."))
        .unwrap();
    assert_eq!(&*h1.file, dir.path().join("parts/hosts.inc").as_path());
    assert_eq!(h1.line, 1);
}

#[test]
fn include_with_origin_does_not_change_parent_origin() {
    let dir = tempfile::tempdir().unwrap();
    write_file(
        dir.path(),
        "lab.inc",
        "h A 192.0.2.10\n$ORIGIN elsewhere.example.com.\n",
    );
    let top = write_file(
        dir.path(),
        "example.com.zone",
        &format!("{HEAD}$INCLUDE \"lab.inc\" lab ; comment\nafter A 192.0.2.11\n"),
    );
    let z = load_zone_file(&top, &origin()).unwrap();
    assert_eq!(records(&z, "h.lab.example.com.", RecordType::A).len(), 1);
    assert_eq!(records(&z, "after.example.com.", RecordType::A).len(), 1);
}

#[test]
fn nested_includes_resolve_relative_to_each_file() {
    let dir = tempfile::tempdir().unwrap();
    write_file(
        dir.path(),
        "a/one.inc",
        "one A 192.0.2.1\n$INCLUDE b/two.inc\n",
    );
    write_file(dir.path(), "a/b/two.inc", "two A 192.0.2.2\n");
    let top = write_file(
        dir.path(),
        "example.com.zone",
        &format!("{HEAD}$INCLUDE a/one.inc\n"),
    );
    let z = load_zone_file(&top, &origin()).unwrap();
    let two = z
        .records
        .iter()
        .find(|r| r.record.name == name("two.example.com."))
        .unwrap();
    assert_eq!(&*two.file, dir.path().join("a/b/two.inc").as_path());
}

#[test]
fn include_cycle_is_an_error_at_the_include_line() {
    let dir = tempfile::tempdir().unwrap();
    let b = write_file(
        dir.path(),
        "b.inc",
        "b A 192.0.2.2\n$INCLUDE example.com.zone\n",
    );
    let top = write_file(
        dir.path(),
        "example.com.zone",
        &format!("{HEAD}$INCLUDE b.inc\n"),
    );
    let errs = load_zone_file(&top, &origin()).unwrap_err();
    assert_eq!(errs.len(), 1, "{errs:#?}");
    assert_eq!(errs[0].file, b);
    assert_eq!(errs[0].line, 2);
    assert!(errs[0].reason.contains("cycle"), "{}", errs[0]);
}

#[test]
fn include_depth_is_limited() {
    let dir = tempfile::tempdir().unwrap();
    let levels = MAX_INCLUDE_DEPTH + 2;
    for i in 0..levels {
        write_file(
            dir.path(),
            &format!("l{i}.inc"),
            &format!("l{i} A 192.0.2.1\n$INCLUDE l{}.inc\n", i + 1),
        );
    }
    write_file(dir.path(), &format!("l{levels}.inc"), "last A 192.0.2.1\n");
    let top = write_file(
        dir.path(),
        "example.com.zone",
        &format!("{HEAD}$INCLUDE l0.inc\n"),
    );
    let errs = load_zone_file(&top, &origin()).unwrap_err();
    assert_eq!(errs.len(), 1, "{errs:#?}");
    assert!(errs[0].reason.contains("nested deeper"), "{}", errs[0]);
    // The top file is depth 0, so the last file that may be read is l{MAX-1}.
    let limit = MAX_INCLUDE_DEPTH - 1;
    assert_eq!(errs[0].file, dir.path().join(format!("l{limit}.inc")));
}

#[test]
fn include_of_missing_file_is_an_error_at_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let top = write_file(
        dir.path(),
        "example.com.zone",
        &format!("{HEAD}a A 192.0.2.10\n$INCLUDE nope.inc\n"),
    );
    let errs = load_zone_file(&top, &origin()).unwrap_err();
    assert_eq!(errs.len(), 1, "{errs:#?}");
    assert_eq!((errs[0].file.as_path(), errs[0].line), (top.as_path(), 6));
    assert!(
        errs[0].reason.contains("cannot read $INCLUDE file"),
        "{}",
        errs[0]
    );
}

#[test]
fn errors_inside_an_included_file_name_that_file() {
    let dir = tempfile::tempdir().unwrap();
    let inc = write_file(dir.path(), "bad.inc", "ok A 192.0.2.1\nbad A 300.0.0.1\n");
    let top = write_file(
        dir.path(),
        "example.com.zone",
        &format!("{HEAD}$INCLUDE bad.inc\n"),
    );
    let errs = load_zone_file(&top, &origin()).unwrap_err();
    assert_eq!(errs.len(), 1, "{errs:#?}");
    assert_eq!((errs[0].file.as_path(), errs[0].line), (inc.as_path(), 2));
}

// ---- errors with file:line ----

#[test]
fn syntax_errors_report_their_line() {
    assert_one_error(
        &format!("{HEAD}t TXT \"unterminated\n"),
        5,
        "unterminated quoted string",
    );
    assert_one_error(
        &format!("{HEAD}x A 192.0.2.1 )\n"),
        5,
        "')' without a matching '('",
    );
    assert_one_error(
        &format!("{HEAD}a A 192.0.2.1\nx MX ( 10\n mail\n"),
        6,
        "unclosed '('",
    );
    assert_one_error(&format!("{HEAD}x A\n"), 5, "missing its address field");
    assert_one_error(&format!("{HEAD}x MX 10 mail extra\n"), 5, "extra 'extra'");
    assert_one_error(
        &format!("{HEAD}$GENERATE 1-2 a$ A 1.2.3.$\n"),
        5,
        "unsupported directive $GENERATE",
    );
}

#[test]
fn bad_field_in_multi_line_record_reports_the_field_line() {
    assert_one_error(
        "$TTL 1h\n@ SOA ns1 hm (\n 1\n 2\n bogus\n 4 5 )\n@ NS ns1\n",
        5,
        "invalid retry 'bogus'",
    );
}

#[test]
fn bad_ip_addresses() {
    assert_one_error(
        &format!("{HEAD}x A 192.0.2.300\n"),
        5,
        "invalid IPv4 address '192.0.2.300'",
    );
    assert_one_error(
        &format!("{HEAD}x AAAA 2001:db8::zz\n"),
        5,
        "invalid IPv6 address",
    );
}

#[test]
fn unknown_type_is_unsupported() {
    // MD and MF are obsolete (RFC 973); BIND refuses them too.
    assert_one_error(
        &format!("{HEAD}x MD madname.example.\n"),
        5,
        "unsupported record type MD",
    );
    assert_one_error(
        &format!("{HEAD}x 300 IN bogus data\n"),
        5,
        "unsupported record type BOGUS",
    );
}

#[test]
fn missing_soa() {
    let errs = errors("$TTL 1h\n@ NS ns1\nns1 A 192.0.2.1\n");
    assert_eq!(
        errs,
        vec![format!(
            "{ZONE_PATH}:0: no SOA record at the zone apex example.com."
        )]
    );
}

#[test]
fn missing_apex_ns() {
    let errs = errors("$TTL 1h\n@ SOA ns1 hm 1 2 3 4 5\n");
    assert_eq!(
        errs,
        vec![format!(
            "{ZONE_PATH}:0: no NS records at the zone apex example.com."
        )]
    );
}

#[test]
fn soa_away_from_apex_and_second_soa() {
    let errs = errors(&format!(
        "{HEAD}sub SOA ns1 hm 1 2 3 4 5\n@ SOA ns1 hm 2 2 3 4 5\n"
    ));
    assert_eq!(errs.len(), 2, "{errs:#?}");
    assert!(errs[0].starts_with(&format!(
        "{ZONE_PATH}:5: SOA record must be at the zone apex"
    )));
    assert!(errs[1].starts_with(&format!("{ZONE_PATH}:6: second SOA record")));
}

#[test]
fn cname_and_other_data() {
    assert_one_error(
        &format!("{HEAD}x A 192.0.2.10\nx CNAME y\n"),
        6,
        "cannot coexist with other data: A at",
    );
}

#[test]
fn two_cnames_at_one_name() {
    assert_one_error(
        &format!("{HEAD}x CNAME y\nx CNAME z\n"),
        6,
        "more than one CNAME",
    );
}

#[test]
fn cname_at_apex() {
    assert_one_error(
        &format!("{HEAD}@ CNAME other.net.\n"),
        5,
        "CNAME not allowed at the zone apex",
    );
}

#[test]
fn out_of_zone_owner() {
    assert_one_error(
        &format!("{HEAD}www.other.net. A 192.0.2.10\n"),
        5,
        "out-of-zone record",
    );
}

#[test]
fn data_below_delegation_is_occluded_but_glue_is_not() {
    let text = format!(
        "{HEAD}sub NS ns.sub\nns.sub A 192.0.2.20\nns.sub AAAA 2001:db8::20\nwww.sub TXT hidden\nsub MX 10 mail\n"
    );
    let errs = errors(&text);
    assert_eq!(
        errs,
        vec![
            format!(
                "{ZONE_PATH}:8: TXT record at www.sub.example.com. is occluded by delegation at sub.example.com."
            ),
            format!(
                "{ZONE_PATH}:9: MX record at sub.example.com. is occluded by delegation at sub.example.com."
            ),
        ]
    );
}

#[test]
fn asterisk_elsewhere_is_an_ordinary_label() {
    // RFC 4592 §2.1.1: only a whole leftmost '*' label makes a wildcard;
    // 'a*' and 'sub.*' are ordinary names that Knot and BIND load.
    ok(&format!("{HEAD}*.w A 192.0.2.10\n"));
    ok(&format!("{HEAD}a*.w A 192.0.2.10\n"));
    ok(&format!("{HEAD}a.*.w A 192.0.2.10\n"));
}

#[test]
fn several_errors_in_one_file_are_all_reported_in_order() {
    let text = format!(
        "{HEAD}a A 1.2.3\nb FOO x\nc TXT \"open\nd 1q A 192.0.2.1\ngood A 192.0.2.2\ne CNAME x\ne TXT y\n"
    );
    let errs = errors(&text);
    let lines: Vec<&str> = errs.iter().map(|e| e.split(": ").next().unwrap()).collect();
    let want: Vec<String> = [5, 6, 7, 8, 10]
        .iter()
        .map(|l| format!("{ZONE_PATH}:{l}"))
        .collect();
    assert_eq!(lines, want, "{errs:#?}");
}

#[test]
fn failed_soa_does_not_also_report_missing_soa() {
    let errs = errors("$TTL 1h\n@ SOA ns1 hm 1 2 3 4\n@ NS ns1\n");
    assert_eq!(errs.len(), 1, "{errs:#?}");
    assert!(
        errs[0].contains(":2: SOA record is missing its minimum field"),
        "{errs:#?}"
    );
}

// ---- RRset normalisation ----

#[test]
fn rrset_ttl_mismatch_warns_and_normalises() {
    let z = ok(&format!("{HEAD}m 300 A 192.0.2.10\nm 600 A 192.0.2.11\n"));
    let ttls: Vec<u32> = records(&z, "m.example.com.", RecordType::A)
        .iter()
        .map(|r| r.ttl)
        .collect();
    assert_eq!(ttls, [300, 300]);
    assert_eq!(z.warnings.len(), 1, "{:#?}", z.warnings);
    assert_eq!(z.warnings[0].line, 6);
    assert!(
        z.warnings[0]
            .reason
            .contains("TTL 600 differs from TTL 300")
    );
}

#[test]
fn duplicate_records_are_dropped_silently() {
    let z = ok(&format!(
        "{HEAD}d A 192.0.2.10\nD A 192.0.2.10\nd A 192.0.2.11\n"
    ));
    assert_eq!(records(&z, "d.example.com.", RecordType::A).len(), 2);
    assert!(z.warnings.is_empty());
}

// ---- API helpers ----

#[test]
fn origin_from_file_name() {
    assert_eq!(
        origin_from_filename(Path::new("zones/cdn.example.zone"))
            .unwrap()
            .to_string(),
        "cdn.example."
    );
    assert!(origin_from_filename(Path::new("zones/cdn.example.txt")).is_none());
    assert!(origin_from_filename(Path::new("zones/.zone")).is_none());
}

#[test]
fn error_display_is_file_line_reason() {
    let e = ZoneError {
        file: PathBuf::from("z/a.zone"),
        line: 7,
        reason: "bad".into(),
    };
    assert_eq!(e.to_string(), "z/a.zone:7: bad");
}

#[test]
fn unreadable_zone_file_is_reported_at_line_0() {
    let errs = load_zone_file(Path::new("/nonexistent/x.zone"), &origin()).unwrap_err();
    assert_eq!(errs.len(), 1);
    assert_eq!(errs[0].line, 0);
    assert!(errs[0].reason.contains("cannot read zone file"));
}

#[test]
fn validate_reports_problems_in_a_hand_built_zone() {
    let mut z = ok(&format!("{HEAD}x A 192.0.2.10\n"));
    assert!(validate(&z).is_ok());
    let mut cname = z.records[0].clone();
    cname.line = 99;
    cname.record = Record::from_rdata(
        name("x.example.com."),
        3600,
        RData::CNAME(hickory_proto::rr::rdata::CNAME(name("y.example.com."))),
    );
    z.records.push(cname);
    let errs = validate(&z).unwrap_err();
    assert_eq!(errs.len(), 1);
    assert_eq!(errs[0].line, 99);
}

// ---- the demo zone ----

#[test]
fn demo_zone_loads_and_validates() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("zones/cdn.example.zone");
    let origin = origin_from_filename(&path).unwrap();
    let z = load_zone_file(&path, &origin).unwrap_or_else(|e| panic!("{e:#?}"));
    assert!(validate(&z).is_ok());
    assert!(z.warnings.is_empty(), "{:#?}", z.warnings);
    assert_eq!(z.origin.to_string(), "cdn.example.");
    let count = |owner: &str, t| records(&z, owner, t).len();
    assert_eq!(count("cdn.example.", RecordType::SOA), 1);
    assert_eq!(count("cdn.example.", RecordType::NS), 2);
    assert_eq!(count("cdn.example.", RecordType::MX), 1);
    assert_eq!(count("cdn.example.", RecordType::CAA), 2);
    assert_eq!(count("static.cdn.example.", RecordType::A), 1);
    assert_eq!(count("static.cdn.example.", RecordType::AAAA), 1);
    assert_eq!(
        target(one(&z, "alias.cdn.example.", RecordType::CNAME)),
        "static.cdn.example."
    );
    assert_eq!(count("*.wild.cdn.example.", RecordType::A), 1);
    assert_eq!(count("*.wild.cdn.example.", RecordType::TXT), 1);
    assert_eq!(count("_sip._udp.cdn.example.", RecordType::SRV), 1);
    assert_eq!(count("sub.cdn.example.", RecordType::NS), 2);
    assert_eq!(count("ns1.sub.cdn.example.", RecordType::A), 1);
    assert_eq!(count("ptr.cdn.example.", RecordType::PTR), 1);
    let big: usize = txt_strings(one(&z, "bigtxt.cdn.example.", RecordType::TXT))
        .iter()
        .map(|s| s.len() + 1)
        .sum();
    assert!(big > 512, "bigtxt RDATA is only {big} bytes");
    let RData::SOA(soa) = &one(&z, "cdn.example.", RecordType::SOA).data else {
        panic!()
    };
    assert_eq!(
        (soa.serial, soa.refresh, soa.retry, soa.expire, soa.minimum),
        (2_026_112_301, 3600, 600, 604_800, 300)
    );
    // Steered names belong to the pools file, not the zone.
    for steered in ["www", "video", "img"] {
        let n = name(&format!("{steered}.cdn.example."));
        assert!(
            z.records.iter().all(|r| r.record.name != n),
            "{steered} must not be in the zone file"
        );
    }
}

// ------------------------------------------------ types beyond RFC 1035's

/// The wire RDATA of the single record at `owner` of type `t`.
fn rdata_of(z: &ZoneFile, owner: &str, t: RecordType) -> Vec<u8> {
    use hickory_proto::serialize::binary::{BinEncodable, BinEncoder};
    let r = z
        .records
        .iter()
        .find(|r| r.record.name == name(owner) && r.record.record_type() == t)
        .unwrap_or_else(|| panic!("no {t} at {owner}"));
    let mut buf = Vec::new();
    r.record.data.emit(&mut BinEncoder::new(&mut buf)).unwrap();
    buf
}

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.split_whitespace().collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

#[test]
fn fixture_with_every_new_type_loads() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/types.example.zone");
    let z = load_zone_file(&path, &name("types.example.")).unwrap_or_else(|e| panic!("{e:#?}"));
    let types: std::collections::BTreeSet<u16> = z
        .records
        .iter()
        .map(|r| u16::from(r.record.record_type()))
        .collect();
    for t in [
        65, 64, 52, 53, 44, 35, 43, 59, 48, 60, 39, 29, 256, 13, 17, 37, 61, 65280, 65281,
    ] {
        assert!(types.contains(&t), "type {t} missing");
    }
}

#[test]
fn new_types_wire_form() {
    let z = ok(&format!(
        "{HEAD}\
         h HTTPS 1 . alpn=\"h3,h2\" port=443 ipv4hint=192.0.2.1,192.0.2.2\n\
         a HTTPS 0 www.example.net.\n\
         s SVCB 16 svc mandatory=port,alpn alpn=h2 port=8443 key65000=\"a b\"\n\
         d DNAME other.example.\n\
         t TLSA 3 1 1 ( 0102 0304 )\n\
         f SSHFP 4 2 abcd\n\
         n NAPTR 100 10 \"S\" \"SIP+D2U\" \"\" _sip._udp\n\
         u URI 10 1 \"https://x/\"\n\
         i HINFO \"PC\" Linux\n\
         r RP admin.example.com. .\n\
         l LOC 52 22 23.000 N 4 53 32.000 E -2.00m 0.00m 10000m 10m\n\
         k DNSKEY 257 3 ECDSAP256SHA256 AQID\n\
         g TYPE65280 \\# 4 0a000001\n\
         g2 CLASS1 TYPE1 \\# 4 c0000201\n\
         g3 A \\# 4 c0000202\n\
         e TYPE65281 \\# 0\n"
    ));
    assert_eq!(
        rdata_of(&z, "h.example.com.", RecordType::HTTPS),
        hex("0001 00 0001 0006 02683302683 2 0003 0002 01bb 0004 0008 c0000201 c0000202")
    );
    assert_eq!(
        rdata_of(&z, "a.example.com.", RecordType::HTTPS),
        hex("0000 03777777 076578616d706c65 036e6574 00")
    );
    // mandatory keys sorted on the wire whatever the text order.
    assert_eq!(
        rdata_of(&z, "s.example.com.", RecordType::SVCB),
        hex(
            "0010 03737663 076578616d706c65 03636f6d 00 0000 0004 0001 0003 0001 0003 026832 0003 0002 20fb fde8 0003 612062"
        )
    );
    assert_eq!(
        rdata_of(&z, "d.example.com.", RecordType::DNAME),
        hex("056f74686572 076578616d706c65 00")
    );
    assert_eq!(
        rdata_of(&z, "t.example.com.", RecordType::TLSA),
        hex("030101 01020304")
    );
    assert_eq!(
        rdata_of(&z, "f.example.com.", RecordType::SSHFP),
        hex("0402 abcd")
    );
    assert_eq!(
        rdata_of(&z, "n.example.com.", RecordType::NAPTR),
        hex(
            "0064 000a 0153 075349502b443255 00 045f736970 045f756470 076578616d706c65 03636f6d 00"
        )
    );
    assert_eq!(
        rdata_of(&z, "u.example.com.", RecordType::Unknown(256)),
        hex("000a 0001 68747470733a2f2f782f")
    );
    assert_eq!(
        rdata_of(&z, "i.example.com.", RecordType::HINFO),
        hex("025043 054c696e7578")
    );
    assert_eq!(
        rdata_of(&z, "r.example.com.", RecordType::Unknown(17)),
        hex("0561646d696e 076578616d706c65 03636f6d 00 00")
    );
    // The same LOC as tests/fixtures/types.example.zone, where
    // tests/peers/knot_diff.rs checks Knot gives these bytes too.
    assert_eq!(
        rdata_of(&z, "l.example.com.", RecordType::Unknown(29)),
        hex("00 00 16 13 8b3cf018 810cbce0 009895b8")
    );
    assert_eq!(
        rdata_of(&z, "k.example.com.", RecordType::DNSKEY),
        hex("0101 03 0d 010203")
    );
    assert_eq!(
        rdata_of(&z, "g.example.com.", RecordType::Unknown(65280)),
        hex("0a000001")
    );
    assert_eq!(
        rdata_of(&z, "g2.example.com.", RecordType::A),
        hex("c0000201"),
        "CLASS1 and TYPE1 are IN and A"
    );
    assert!(matches!(
        z.records
            .iter()
            .find(|r| r.record.name == name("g3.example.com."))
            .unwrap()
            .record
            .data,
        RData::A(_)
    ));
    assert_eq!(
        rdata_of(&z, "e.example.com.", RecordType::Unknown(65281)),
        Vec::<u8>::new()
    );
}

#[test]
fn new_type_errors_name_the_line() {
    let cases: &[(&str, &str)] = &[
        ("x TYPE65280 \\# 3 0a000001", "says 3 bytes but has 4"),
        ("x TYPE65280 0a000001", "\\# <length> <hex>"),
        ("x TYPE0 \\# 0", "meta type"),
        ("x TYPE41 \\# 0", "meta type"),
        ("x A \\# 3 0a0000", "not a valid A"),
        ("x HTTPS 1 . alpn=h2 alpn=h3", "appears twice"),
        (
            "x HTTPS 1 . mandatory=port alpn=h2",
            "mandatory SvcParam port is missing",
        ),
        ("x HTTPS 1 . mandatory=mandatory", "cannot list itself"),
        ("x HTTPS 1 . port=99999", "port"),
        ("x HTTPS 1 . ipv4hint=::1", "not an IPv4 address"),
        ("x HTTPS 1 . bogus=1", "unknown SvcParam key"),
        ("x HTTPS 1 . no-default-alpn", "needs alpn"),
        // generic form: key 3 (port) before key 1 (alpn)
        (
            "x HTTPS \\# 16 0001 00 0003 0002 01bb 0001 0003 026832",
            "out of order",
        ),
        (
            "x HTTPS \\# 9 0001 00 0000 0002 0003",
            "mandatory SvcParam port is missing",
        ),
        ("x DS 1 8 2 abcd", "32-byte digest"),
        ("x DS 1 NOPE 2 abcd", "invalid algorithm"),
        ("x DNSKEY 257 2 13 AQID", "protocol must be 3"),
        ("x DNSKEY 257 3 13 !!!", "not valid base64"),
        ("x TLSA 3 1 1 abc", "odd number of hex digits"),
        ("x LOC 91 0 0 N 0 0 0 E 0m", "out of range"),
        ("x LOC 52 22 23 X 4 53 32 E 0m", "expected N or S"),
        ("x URI 1 1 unquoted", "quoted string"),
    ];
    for (line, needle) in cases {
        assert_one_error(&format!("{HEAD}{line}\n"), 5, needle);
    }
}

#[test]
fn kzonecheck_rules_for_ds_and_dname() {
    // DS at the apex belongs to the parent.
    assert_one_error(
        &format!("{HEAD}@ DS 1 13 2 {}\n", "ab".repeat(32)),
        5,
        "DS record at the zone apex",
    );
    // DS where there is no delegation.
    assert_one_error(
        &format!("{HEAD}x DS 1 13 2 {}\n", "ab".repeat(32)),
        5,
        "not a delegation",
    );
    // DS at a delegation is fine.
    ok(&format!(
        "{HEAD}x NS ns.example.net.\nx DS 1 13 2 {}\n",
        "ab".repeat(32)
    ));
    // DNAME beside a CNAME (both rules report it, at their own lines).
    let errs = errors(&format!(
        "{HEAD}x DNAME y.example.net.\nx CNAME z.example.net.\n"
    ));
    assert!(
        errs.iter()
            .any(|e| e.contains(":5: DNAME at x.example.com. beside the CNAME")),
        "{errs:#?}"
    );
    // Data below a DNAME.
    assert_one_error(
        &format!("{HEAD}x DNAME y.example.net.\na.x A 192.0.2.1\n"),
        6,
        "below the DNAME at x.example.com.",
    );
    // A DNAME at the apex makes every other name an error.
    let errs = errors(&format!("{HEAD}@ DNAME y.example.net.\n"));
    assert!(
        errs.iter()
            .any(|e| e.contains(":4: A record at ns1.example.com. is below the DNAME")),
        "{errs:#?}"
    );
    assert_one_error(
        &format!("{HEAD}x DNAME y.example.net.\nx DNAME z.example.net.\n"),
        6,
        "more than one DNAME",
    );
}

#[test]
fn svcb_quoted_values_keep_blanks_and_escapes() {
    let z = ok(&format!(
        "{HEAD}s SVCB 1 . alpn=\"h2,with\\\\,comma\" key65000=\"a b\\059\"\n"
    ));
    assert_eq!(
        rdata_of(&z, "s.example.com.", RecordType::SVCB),
        hex("0001 00 0001 000e 026832 0a776974682c636f6d6d61 fde8 0004 6120623b")
    );
}

#[test]
fn messages_name_newer_types_by_mnemonic() {
    assert_one_error(
        &format!("{HEAD}x LOC 52\n"),
        5,
        "LOC record is missing a field",
    );
    assert_one_error(
        &format!("{HEAD}x URI 1 2\n"),
        5,
        "URI record is missing its target field",
    );
    assert_one_error(
        &format!("{HEAD}x RP a.b.\n"),
        5,
        "RP record is missing its TXT domain field",
    );
    assert_one_error(
        &format!("{HEAD}x TYPE65280 01\n"),
        5,
        "record type TYPE65280 has no text form here",
    );
    assert_one_error(
        &format!("{HEAD}x TYPE39 \\# 1 05\n"),
        5,
        "not a valid DNAME record",
    );
    assert_one_error(
        &format!("{HEAD}d NS ns.example.net.\nx.d LOC 52 N 4 E 0m\n"),
        6,
        "LOC record at x.d.example.com. is occluded",
    );
    // A quote inside a word is only special right after '=' (SvcParams).
    let z = ok(&format!("{HEAD}t TXT a\"b\n"));
    assert!(
        z.records
            .iter()
            .any(|r| r.record.record_type() == RecordType::TXT)
    );
}
