//! Zone-level checks (apex, CNAME, delegation rules) and RRset normalisation.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use hickory_proto::rr::{LowerName, Name, RData, RecordType};

use super::fields::type_name;
use super::source::{SourcedRecord, ZoneError, ZoneFile};

fn at(r: &SourcedRecord, reason: String) -> ZoneError {
    ZoneError {
        file: r.file.to_path_buf(),
        line: r.line,
        reason,
    }
}

fn loc(r: &SourcedRecord) -> String {
    format!("{}:{}", r.file.display(), r.line)
}

/// Indices of records grouped by (owner, type), groups in order of first
/// appearance.
fn rrsets(records: &[SourcedRecord]) -> Vec<Vec<usize>> {
    let mut index: HashMap<(LowerName, RecordType), usize> = HashMap::new();
    let mut groups: Vec<Vec<usize>> = Vec::new();
    for (i, r) in records.iter().enumerate() {
        let key = (LowerName::new(&r.record.name), r.record.record_type());
        let g = *index.entry(key).or_insert_with(|| {
            groups.push(Vec::new());
            groups.len() - 1
        });
        groups[g].push(i);
    }
    groups
}

/// Gives every RRset the TTL of its first record, warning about each record
/// that said otherwise (RFC 2181 §5.2), then drops records identical to an
/// earlier one (RFC 2181 §5: an RRset has no duplicates). File order is kept.
pub(crate) fn normalise(records: &mut Vec<SourcedRecord>, warnings: &mut Vec<ZoneError>) {
    let mut drop = vec![false; records.len()];
    for group in rrsets(records) {
        let Some((&first, rest)) = group.split_first() else {
            continue;
        };
        let ttl = records[first].record.ttl;
        for &i in rest {
            if records[i].record.ttl != ttl {
                warnings.push(at(
                    &records[i],
                    format!(
                        "TTL {} differs from TTL {ttl} of the {} {} RRset first defined at {}; using {ttl} (RFC 2181 §5.2)",
                        records[i].record.ttl,
                        records[i].record.name,
                        type_name(records[i].record.record_type()),
                        loc(&records[first]),
                    ),
                ));
                records[i].record.ttl = ttl;
            }
        }
        // RData's Hash, like its Eq, ignores case in embedded names.
        let mut seen: HashSet<&RData> = HashSet::with_capacity(group.len());
        for &i in &group {
            if !seen.insert(&records[i].record.data) {
                drop[i] = true;
            }
        }
    }
    let mut keep = drop.iter().map(|d| !d);
    records.retain(|_| keep.next().unwrap_or(true));
}

/// Runs every zone-level check. `top` is where zone-wide problems (no SOA,
/// no NS) are reported, at line 0. `partial` says some entries failed to
/// parse; the missing-SOA/NS checks are skipped then because the missing
/// record is most likely the one that failed, already reported.
pub(crate) fn check(zone: &ZoneFile, top: &Path, partial: bool) -> Vec<ZoneError> {
    let apex = &zone.origin;
    let records = &zone.records;
    // (record index, error) so the result follows file order.
    let mut errors: Vec<(usize, ZoneError)> = Vec::new();

    let in_zone: Vec<bool> = records
        .iter()
        .map(|r| apex.zone_of(&r.record.name))
        .collect();
    let apex_label_count = apex.iter().count();

    for (i, r) in records.iter().enumerate() {
        let name = &r.record.name;
        if !in_zone[i] {
            errors.push((
                i,
                at(
                    r,
                    format!("out-of-zone record: {name} is not at or below the origin {apex}"),
                ),
            ));
            continue;
        }
        // RFC 4592 §2.1.1: '*' makes a wildcard only as the whole leftmost
        // label; anywhere else ('sub.*.example.', 'a*b') it is an ordinary
        // character, and Knot and BIND load such names as they are.

        // A pre-signed zone's signatures and denial chain would go out
        // beside answers signed online (or unsigned), and stale once a
        // steered answer changes: geosteer signs as it answers instead.
        let t = u16::from(r.record.record_type());
        if matches!(t, 46 | 47 | 50 | 51) {
            errors.push((
                i,
                at(
                    r,
                    format!(
                        "{} record at {name}: pre-signed zones are not served; geosteer signs online with the keys in dnssec.keys (remove the RRSIG, NSEC, NSEC3 and NSEC3PARAM records)",
                        type_name(r.record.record_type())
                    ),
                ),
            ));
        }
    }

    // SOA: exactly one, at the apex.
    let mut first_soa: Option<usize> = None;
    for (i, r) in records.iter().enumerate() {
        if !in_zone[i] || r.record.record_type() != RecordType::SOA {
            continue;
        }
        if r.record.name != *apex {
            errors.push((
                i,
                at(
                    r,
                    format!(
                        "SOA record must be at the zone apex {apex}, not {}",
                        r.record.name
                    ),
                ),
            ));
        } else if let Some(f) = first_soa {
            errors.push((
                i,
                at(
                    r,
                    format!(
                        "second SOA record at the apex (first at {})",
                        loc(&records[f])
                    ),
                ),
            ));
        } else {
            first_soa = Some(i);
        }
    }
    let apex_ns = records
        .iter()
        .any(|r| r.record.record_type() == RecordType::NS && r.record.name == *apex);
    let zone_wide = |reason: String| ZoneError {
        file: top.to_path_buf(),
        line: 0,
        reason,
    };
    if first_soa.is_none() && !partial {
        errors.push((
            usize::MAX,
            zone_wide(format!("no SOA record at the zone apex {apex}")),
        ));
    }
    if !apex_ns && !partial {
        errors.push((
            usize::MAX,
            zone_wide(format!("no NS records at the zone apex {apex}")),
        ));
    }

    // CNAME: RFC 2181 §10.1 - alone at its name, at most one, not at the apex.
    let mut by_name: HashMap<LowerName, Vec<usize>> = HashMap::new();
    for (i, r) in records.iter().enumerate() {
        if in_zone[i] {
            by_name
                .entry(LowerName::new(&r.record.name))
                .or_default()
                .push(i);
        }
    }
    for idxs in by_name.values() {
        let (cnames, others): (Vec<usize>, Vec<usize>) = idxs
            .iter()
            .partition(|&&i| records[i].record.record_type() == RecordType::CNAME);
        let Some((&first, extra)) = cnames.split_first() else {
            continue;
        };
        if records[first].record.name == *apex {
            for &c in &cnames {
                errors.push((
                    c,
                    at(
                        &records[c],
                        format!("CNAME not allowed at the zone apex {apex}"),
                    ),
                ));
            }
            continue;
        }
        for &c in extra {
            errors.push((
                c,
                at(
                    &records[c],
                    format!(
                        "more than one CNAME at {} (first at {}; RFC 2181 §10.1)",
                        records[c].record.name,
                        loc(&records[first])
                    ),
                ),
            ));
        }
        if !others.is_empty() {
            let list: Vec<String> = others
                .iter()
                .map(|&o| {
                    format!(
                        "{} at {}",
                        type_name(records[o].record.record_type()),
                        loc(&records[o])
                    )
                })
                .collect();
            errors.push((
                first,
                at(
                    &records[first],
                    format!(
                        "CNAME at {} cannot coexist with other data: {} (RFC 2181 §10.1)",
                        records[first].record.name,
                        list.join(", ")
                    ),
                ),
            ));
        }
    }

    // Delegations: NS below the apex cuts the zone; below a cut only glue
    // addresses may appear, at the cut only NS and glue.
    let cuts: HashSet<LowerName> = records
        .iter()
        .enumerate()
        .filter(|&(i, r)| {
            in_zone[i] && r.record.record_type() == RecordType::NS && r.record.name != *apex
        })
        .map(|(_, r)| LowerName::new(&r.record.name))
        .collect();
    if !cuts.is_empty() {
        for (i, r) in records.iter().enumerate() {
            if !in_zone[i] {
                continue;
            }
            let Some(cut) = highest_cut(&r.record.name, apex_label_count, &cuts) else {
                continue;
            };
            let rtype = r.record.record_type();
            let rname = type_name(rtype);
            let at_cut = cut == r.record.name;
            let allowed = match rtype {
                RecordType::A | RecordType::AAAA => true,
                // CNAME at a cut is already reported as CNAME and other data.
                // DS belongs to the parent side of the cut (RFC 4035 §2.4).
                RecordType::NS | RecordType::CNAME | RecordType::DS => at_cut,
                _ => false,
            };
            if !allowed {
                errors.push((
                    i,
                    at(
                        r,
                        format!(
                            "{rname} record at {} is occluded by delegation at {cut}",
                            r.record.name
                        ),
                    ),
                ));
            }
        }
    }

    // DS (and nothing else of the parent side) only at a delegation: at
    // the apex it belongs to the parent zone, elsewhere to no zone at all
    // (RFC 4035 §2.4; Knot's kzonecheck says the same).
    for (i, r) in records.iter().enumerate() {
        if !in_zone[i] || r.record.record_type() != RecordType::DS {
            continue;
        }
        let name = &r.record.name;
        if name == apex {
            errors.push((
                i,
                at(
                    r,
                    format!("DS record at the zone apex {apex}: DS belongs in the parent zone (RFC 4035 §2.4)"),
                ),
            ));
        } else if !cuts.contains(&LowerName::new(name)) {
            errors.push((
                i,
                at(
                    r,
                    format!("DS record at {name}, which is not a delegation (no NS records there)"),
                ),
            ));
        }
    }

    // DNAME (RFC 6672 §2.4): one per name, not beside a CNAME, and no
    // data below it (the DNAME redirects the whole subtree).
    let dnames: HashMap<LowerName, usize> = records
        .iter()
        .enumerate()
        .filter(|&(i, r)| in_zone[i] && r.record.record_type() == RecordType::DNAME)
        .map(|(i, r)| (LowerName::new(&r.record.name), i))
        .collect();
    if !dnames.is_empty() {
        let mut first_at: HashMap<LowerName, usize> = HashMap::new();
        for (i, r) in records.iter().enumerate() {
            if !in_zone[i] {
                continue;
            }
            let name = &r.record.name;
            let rtype = r.record.record_type();
            let rname = type_name(rtype);
            if rtype == RecordType::DNAME {
                let key = LowerName::new(name);
                match first_at.get(&key) {
                    Some(&f) => errors.push((
                        i,
                        at(
                            r,
                            format!(
                                "more than one DNAME at {name} (first at {}; RFC 6672 §2.4)",
                                loc(&records[f])
                            ),
                        ),
                    )),
                    None => {
                        first_at.insert(key, i);
                    }
                }
                if let Some(c) = by_name.get(&LowerName::new(name)).and_then(|v| {
                    v.iter()
                        .find(|&&o| records[o].record.record_type() == RecordType::CNAME)
                }) {
                    errors.push((
                        i,
                        at(
                            r,
                            format!(
                                "DNAME at {name} beside the CNAME at {} (RFC 6672 §2.4)",
                                loc(&records[*c])
                            ),
                        ),
                    ));
                }
            }
            // Any proper ancestor (down to the apex) owning a DNAME?
            let total = name.iter().count();
            if let Some((anc, &d)) = (apex_label_count..total)
                .map(|n| name.trim_to(n))
                .find_map(|a| dnames.get_key_value(&LowerName::new(&a)))
            {
                errors.push((
                    i,
                    at(
                        r,
                        format!(
                            "{rname} record at {name} is below the DNAME at {anc} ({}); nothing may exist below a DNAME (RFC 6672 §2.4)",
                            loc(&records[d])
                        ),
                    ),
                ));
            }
        }
    }

    // SVCB/HTTPS in generic form skip the text parser's checks.
    for (i, r) in records.iter().enumerate() {
        let rtype = r.record.record_type();
        if !matches!(rtype, RecordType::SVCB | RecordType::HTTPS) {
            continue;
        }
        if let RData::Unknown { rdata, .. } = &r.record.data
            && let Err(e) = super::svcb::check_wire(&rdata.anything)
        {
            errors.push((
                i,
                at(r, format!("{rtype} record at {}: {e}", r.record.name)),
            ));
        }
    }

    errors.sort_by_key(|(i, _)| *i);
    errors.into_iter().map(|(_, e)| e).collect()
}

/// The delegation point closest to the apex at or above `name`, if any.
fn highest_cut(name: &Name, apex_labels: usize, cuts: &HashSet<LowerName>) -> Option<Name> {
    let total = name.iter().count();
    (apex_labels + 1..=total)
        .map(|n| name.trim_to(n))
        .find(|a| cuts.contains(&LowerName::new(a)))
}
