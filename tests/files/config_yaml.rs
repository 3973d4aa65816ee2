//! Pools files as operators write them: country and continent codes
//! unquoted whatever YAML 1.1 makes of them (`NO` is Norway, not false),
//! and mistakes reported as `file:line: key.path: what was expected`.

use std::path::Path;

use geosteer::NetTarget;
use geosteer::{AlwaysUp, Pools, parse_pools as from_str};
use hickory_proto::rr::Name;

/// ISO 3166-1 alpha-2, every officially assigned code (249), and XK
/// (Kosovo), which MaxMind uses.
const ISO_3166: [&str; 13] = [
    "AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE",
    "BF BG BH BI BJ BL BM BN BO BQ BR BS BT BV BW BY BZ CA CC CD",
    "CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM",
    "DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF",
    "GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM HN HR HT HU",
    "ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN",
    "KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME",
    "MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ NA",
    "NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM",
    "PN PR PS PT PW PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI",
    "SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK",
    "TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI",
    "VN VU WF WS YE YT ZA ZM ZW XK",
];

const CONTINENTS: [&str; 7] = ["AF", "AN", "AS", "EU", "NA", "OC", "SA"];

fn iso() -> Vec<&'static str> {
    ISO_3166.iter().flat_map(|l| l.split(' ')).collect()
}

/// Every two-letter code there could be, AA to ZZ: the ISO ones and any
/// YAML might mistake for something else.
fn all_pairs() -> Vec<String> {
    let mut v = Vec::new();
    for a in b'A'..=b'Z' {
        for b in b'A'..=b'Z' {
            v.push(String::from_utf8(vec![a, b]).unwrap());
        }
    }
    v
}

fn load(text: &str) -> Result<Pools, String> {
    from_str(
        text,
        Path::new("zones/cdn.example.pools.yaml"),
        &Name::from_ascii("cdn.example.").unwrap(),
        &AlwaysUp,
    )
    .map_err(|errs| {
        errs.iter()
            .map(|e| e.to_string())
            .collect::<Vec<_>>()
            .join("\n")
    })
}

const EDGES: &str = "edges:\n  a: { addresses: [192.0.2.1], location: [50, 8] }\n  b: { addresses: [192.0.2.2], location: [10, 10] }\n";

/// The codes of every rule of the first host, in order.
fn rule_codes(p: &Pools, f: impl Fn(&geosteer::Rule) -> &Vec<geosteer::Code>) -> Vec<Vec<String>> {
    p.steering.hosts[0]
        .rules
        .iter()
        .map(|r| f(r).iter().map(|c| c.to_string()).collect())
        .collect()
}

#[test]
fn the_iso_list_is_complete() {
    let codes = iso();
    assert_eq!(codes.len(), 250);
    let mut sorted = codes.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), 250, "duplicates");
    for c in ["NO", "NA", "ON", "SE", "XK"] {
        assert_eq!(codes.contains(&c), c != "ON", "{c}");
    }
}

#[test]
fn every_code_unquoted_in_rules_as_scalars_and_lists() {
    let pairs = all_pairs();
    let mut text = format!("{EDGES}hosts:\n  h:\n    edges: [a]\n    rules:\n");
    for c in &pairs {
        text.push_str(&format!("      - {{ country: {c}, edges: [b] }}\n"));
    }
    // Block style too, and lower case, which YAML reads as booleans
    // (`no`, `n`, `y`, `on`) just the same.
    for c in &pairs {
        text.push_str(&format!(
            "      - country: {}\n        edges: [b]\n",
            c.to_lowercase()
        ));
    }
    // One list of them all, flow style, and the continents.
    text.push_str(&format!(
        "      - {{ country: [{}], edges: [b] }}\n",
        pairs.join(", ")
    ));
    for c in CONTINENTS {
        text.push_str(&format!("      - {{ continent: {c}, edges: [b] }}\n"));
    }
    text.push_str(&format!(
        "      - {{ continent: [{}], edges: [b] }}\n",
        CONTINENTS.join(", ")
    ));
    text.push_str("      - continent:\n");
    for c in CONTINENTS {
        text.push_str(&format!("          - {c}\n"));
    }
    text.push_str("        edges: [b]\n");
    let p = load(&text).unwrap_or_else(|e| panic!("{e}"));
    let countries = rule_codes(&p, |r| &r.country);
    let n = pairs.len();
    for (i, c) in pairs.iter().enumerate() {
        assert_eq!(countries[i], std::slice::from_ref(c), "scalar {c}");
        assert_eq!(
            countries[n + i],
            std::slice::from_ref(c),
            "block, lower case {c}"
        );
    }
    assert_eq!(countries[2 * n], pairs, "the list");
    let continents = rule_codes(&p, |r| &r.continent);
    for (i, c) in CONTINENTS.iter().enumerate() {
        assert_eq!(continents[2 * n + 1 + i], [c.to_string()], "continent {c}");
    }
    let all: Vec<String> = CONTINENTS.iter().map(|c| c.to_string()).collect();
    assert_eq!(continents[2 * n + 1 + CONTINENTS.len()], all);
    assert_eq!(continents[2 * n + 2 + CONTINENTS.len()], all);
    // The ISO codes are among them, Norway included.
    for c in iso() {
        assert!(pairs.iter().any(|p| p == c), "{c}");
    }
}

#[test]
fn every_code_unquoted_in_nets() {
    let codes = iso();
    let mut text = format!("{EDGES}nets:\n");
    for (i, c) in codes.iter().enumerate() {
        text.push_str(&format!(
            "  10.{}.{}.0/24: {{ country: {c} }}\n",
            i / 256,
            i % 256
        ));
    }
    for (i, c) in CONTINENTS.iter().enumerate() {
        text.push_str(&format!("  10.200.{i}.0/24: {{ continent: {c} }}\n"));
    }
    text.push_str(
        "  10.201.0.0/24:\n    country: NO\n    continent: EU\n    location: [59.9, 10.7]\n",
    );
    text.push_str("hosts:\n  h: {}\n");
    let p = load(&text).unwrap_or_else(|e| panic!("{e}"));
    let loc = |ip: [u8; 4]| match p.steering.nets.lookup(ip.into()) {
        Some((_, NetTarget::Location(l))) => *l,
        other => panic!("{ip:?}: {other:?}"),
    };
    for (i, c) in codes.iter().enumerate() {
        let l = loc([10, (i / 256) as u8, (i % 256) as u8, 1]);
        assert_eq!(l.country.map(|x| x.to_string()).as_deref(), Some(*c));
    }
    for (i, c) in CONTINENTS.iter().enumerate() {
        let l = loc([10, 200, i as u8, 1]);
        assert_eq!(l.continent.map(|x| x.to_string()).as_deref(), Some(*c));
    }
    let l = loc([10, 201, 0, 1]);
    assert_eq!(l.country.unwrap().to_string(), "NO");
    assert_eq!(l.continent.unwrap().to_string(), "EU");
}

#[test]
fn subdivision_codes_keep_their_leading_zeros() {
    let text = format!(
        "{EDGES}hosts:\n  h:\n    edges: [a]\n    rules:\n      - {{ subdivision: 01, edges: [b] }}\n      - {{ subdivision: [03, 13, N, 'Y', ENG], edges: [b] }}\n"
    );
    let p = load(&text).unwrap_or_else(|e| panic!("{e}"));
    let subs = rule_codes(&p, |r| &r.subdivision);
    assert_eq!(subs[0], ["01"]);
    assert_eq!(subs[1], ["03", "13", "N", "Y", "ENG"]);
}

#[test]
fn a_code_that_is_not_one_is_still_an_error() {
    let text = format!(
        "{EDGES}hosts:\n  h:\n    rules:\n      - {{ country: [NO, Norway], edges: [b] }}\n"
    );
    let e = load(&text).unwrap_err();
    assert!(
        e.starts_with(
            "zones/cdn.example.pools.yaml:7: hosts.h.rules[0].country: invalid code \"Norway\""
        ),
        "{e}"
    );
}

/// The edits issue 31 tripped over, as one line each: file, line, key path
/// and what was expected.
#[test]
fn edit_mistakes_in_the_operators_words() {
    let cases: &[(&str, &str)] = &[
        // A duplicate key.
        (
            "hosts:\n  www: {}\n  img: {}\n  www: { edges: [a] }\n",
            "zones/cdn.example.pools.yaml:7: hosts: `www` is given twice in the same map; keep one",
        ),
        // A rule's `edges:` indented too far: read as part of the country.
        (
            "hosts:\n  www:\n    rules:\n      - country: NO\n          edges: [a]\n",
            "zones/cdn.example.pools.yaml:8: hosts.www.rules[0].country: invalid YAML",
        ),
        // `answers` not a small number.
        (
            "hosts:\n  www:\n    answers: 300\n",
            "zones/cdn.example.pools.yaml:6: hosts.www.answers: expected a whole number from 0 to 255, found `300`",
        ),
        // A host's keys at the host's own level.
        (
            "hosts:\n  www:\n  edges: [a]\n",
            "zones/cdn.example.pools.yaml:5: hosts.www: expected keys (`key: value` lines, or { key: value }) here; check the indentation",
        ),
        // A typo'd key.
        (
            "hosts:\n  www:\n    edgse: [a]\n",
            "zones/cdn.example.pools.yaml:6: hosts.www: unknown key `edgse`; the keys here are ",
        ),
        // A net that is neither [lat, lon] nor a map.
        (
            "nets:\n  10.0.0.0/8: fra\nhosts:\n  www: {}\n",
            "zones/cdn.example.pools.yaml:5: nets.10.0.0.0/8: expected [latitude, longitude], or a map of location, country, continent or edges, found the text \"fra\"",
        ),
    ];
    for (tail, want) in cases {
        let e = load(&format!("{EDGES}{tail}")).unwrap_err();
        eprintln!("{e}");
        assert!(e.starts_with(want), "{tail:?}\n got: {e}\nwant: {want}");
        for leak in [
            "DuplicateKeyPolicy",
            "Options",
            "invalid u8",
            "mapping start",
            "untagged",
            "OneOrMany",
            "Nodes {",
            "budget breached",
        ] {
            assert!(!e.contains(leak), "{tail:?}: {e}");
        }
    }
}
