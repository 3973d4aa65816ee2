//! Zones pulled from primaries (`secondary:`): one task per zone, beside
//! the query path.
//!
//! The task asks a primary for its SOA when the zone's refresh time comes
//! (the SOA's REFRESH after a good check, RETRY after a failed one), or at
//! once when a primary NOTIFYs. A newer serial (RFC 1982) is fetched with
//! IXFR when we hold a copy (the differences applied, RFC 1995), and AXFR
//! otherwise or when the primary answers IXFR with the whole zone; every
//! message's TSIG is checked when the zone has a key. The result is
//! checked as a zone file is (the same parser and rules), written to
//! `<zones>/<zone>.zone` aside and renamed, and loaded by a reload like
//! any zone file, so `<zone>.pools.yaml` steers in it and a restart serves
//! it before the first refresh. Anything that goes wrong leaves the last
//! good copy serving. When EXPIRE passes without a good check, the copy is
//! moved to `<zone>.zone.expired` and the zone is no longer served.
//!
//! When the copy was last checked persists in `geosteer.secondary.json`
//! beside the config, so a restart keeps counting towards EXPIRE.

use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, watch};

use super::client::{self, Tcp};
use super::image::{Rr, soa_serial_at};
use super::notify::Reload;
use super::serial::newer;
use crate::clock::unix_now;
use crate::config::xfr::Secondary;
use crate::tsig::{Signer, Verifier};
use crate::wire::{self, TYPE_AXFR, TYPE_IXFR, TYPE_SOA};

/// How long one network step (connect, a message) may take.
const STEP: Duration = Duration::from_secs(10);

/// The copy of the zone we serve.
#[derive(Clone, Debug, Default)]
struct Copy {
    /// The SOA first, then the rest.
    records: Vec<Rr>,
}

/// SOA fields a secondary acts on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Timers {
    serial: u32,
    refresh: u32,
    retry: u32,
    expire: u32,
}

fn timers(soa: &Rr) -> Option<Timers> {
    let at = soa_serial_at(&soa.rdata)?;
    let f = |i: usize| u32::from_be_bytes(soa.rdata[at + i..at + i + 4].try_into().expect("4"));
    Some(Timers {
        serial: f(0),
        refresh: f(4),
        retry: f(8),
        expire: f(12),
    })
}

impl Copy {
    fn timers(&self) -> Option<Timers> {
        timers(self.records.first().filter(|r| r.rtype == TYPE_SOA)?)
    }
}

/// What one refresh did.
enum Refreshed {
    Unchanged,
    New { copy: Copy, how: &'static str },
}

/// When each zone's copy was last confirmed good, persisted.
fn state_path(serials: &Path) -> PathBuf {
    serials.with_file_name("geosteer.secondary.json")
}

fn read_state(path: &Path) -> BTreeMap<String, u64> {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default()
}

fn write_state(path: &Path, zone: &str, at: u64) {
    let mut st = read_state(path);
    st.insert(zone.to_string(), at);
    let tmp = path.with_extension("json.tmp");
    let ok = serde_json::to_string_pretty(&st)
        .map_err(std::io::Error::other)
        .and_then(|t| std::fs::write(&tmp, t))
        .and_then(|()| std::fs::rename(&tmp, path));
    if let Err(e) = ok {
        tracing::warn!(file = %path.display(), "cannot save secondary state: {e}");
    }
}

/// The zone file of a secondary zone in `zones`.
pub fn zone_path(zones: &Path, zone: &Secondary) -> PathBuf {
    zones.join(format!("{}zone", zone.zone))
}

/// Reads our copy back from its zone file (written by [`render`]).
fn load(path: &Path, zone: &Secondary) -> Option<Copy> {
    let origin = hickory_proto::rr::Name::from_ascii(&zone.zone).ok()?;
    let zf = match crate::zone::load_zone_file(path, &origin) {
        Ok(z) => z,
        Err(errs) if errs.iter().any(|e| e.reason.contains("cannot read")) => return None,
        Err(errs) => {
            for e in errs {
                tracing::warn!(zone = %zone.zone, "secondary copy on disk: {e}");
            }
            return None;
        }
    };
    let mut records: Vec<Rr> = zf
        .records
        .iter()
        .filter_map(|r| {
            let rd = crate::zone::tree::Rdata::from_hickory(&r.record.data)?;
            Some(Rr {
                owner: wire::from_hickory(&r.record.name),
                rtype: u16::from(r.record.record_type()),
                ttl: r.record.ttl,
                rdata: super::image::rdata_wire(&rd),
            })
        })
        .collect();
    let soa = records.iter().position(|r| r.rtype == TYPE_SOA)?;
    let soa = records.remove(soa);
    records.insert(0, soa);
    Some(Copy { records })
}

/// A copy as a zone file: RFC 3597 generic RDATA, which every loader
/// reads back byte for byte.
fn render(zone: &Secondary, from: SocketAddr, copy: &Copy) -> String {
    let serial = copy.timers().map_or(0, |t| t.serial);
    let mut s = format!(
        "; Secondary copy of {} from {from}, serial {serial}, written by geosteer.\n\
         ; Every transfer replaces it: edit the zone on its primary.\n",
        zone.zone
    );
    for r in &copy.records {
        s.push_str(&format!(
            "{} {} IN TYPE{} \\# {} ",
            wire::name_to_string(&r.owner),
            r.ttl,
            r.rtype,
            r.rdata.len()
        ));
        for b in &r.rdata {
            s.push_str(&format!("{b:02x}"));
        }
        s.push('\n');
    }
    s
}

/// Checks a transferred copy as a zone file is checked; `Err` lists why.
fn check(zone: &Secondary, path: &Path, text: &str) -> Result<(), String> {
    let origin = hickory_proto::rr::Name::from_ascii(&zone.zone).map_err(|e| e.to_string())?;
    let zf = crate::zone::parse_zone_str(text, path, &origin).map_err(|errs| {
        errs.iter()
            .take(5)
            .map(|e| e.reason.clone())
            .collect::<Vec<_>>()
            .join("; ")
    })?;
    crate::zone::tree::Tree::build(
        &zf.origin,
        zf.records.iter().enumerate().map(|(i, r)| (i, &r.record)),
    )
    .map(drop)
    .map_err(|errs| {
        errs.iter()
            .map(|e| e.reason.clone())
            .collect::<Vec<_>>()
            .join("; ")
    })
}

/// The identity of a record for IXFR's deletions: owner, type, RDATA in
/// canonical form (names compare without case).
fn identity(r: &Rr) -> (Box<[u8]>, u16, Vec<u8>) {
    let mut rd = Vec::with_capacity(r.rdata.len());
    crate::zone::schema::canonical(r.rtype, &r.rdata, &mut rd);
    (wire::lowercase(&r.owner), r.rtype, rd)
}

/// Runs one secondary zone until `stop`.
pub async fn run(
    zone: Secondary,
    zones: PathBuf,
    serials: PathBuf,
    wake: Arc<Notify>,
    reload: Reload,
    mut stop: watch::Receiver<bool>,
) {
    let path = zone_path(&zones, &zone);
    let state = state_path(&serials);
    let mut copy = load(&path, &zone);
    let mut last_ok = read_state(&state).get(&zone.zone).copied().unwrap_or(0);
    if copy.is_some() && last_ok == 0 {
        last_ok = std::fs::metadata(&path)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_secs());
    }
    // Refresh at once on start: the copy on disk may be old.
    let mut wait = Duration::ZERO;
    loop {
        tokio::select! {
            _ = stop.changed() => return,
            _ = wake.notified() => {}
            _ = tokio::time::sleep(wait) => {}
        }
        if *stop.borrow() {
            return;
        }
        match refresh(&zone, copy.as_ref()).await {
            Ok((from, Refreshed::Unchanged)) => {
                tracing::debug!(zone = %zone.zone, primary = %from, "up to date");
                last_ok = unix_now();
                write_state(&state, &zone.zone, last_ok);
                metrics::counter!("geosteer_secondary_refresh_total", "result" => "unchanged")
                    .increment(1);
            }
            Ok((from, Refreshed::New { copy: new, how })) => {
                let text = render(&zone, from, &new);
                match check(&zone, &path, &text) {
                    Ok(()) => {
                        let serial = new.timers().map_or(0, |t| t.serial);
                        if let Err(e) = write_aside(&path, &text) {
                            tracing::error!(zone = %zone.zone, file = %path.display(), "cannot write the secondary copy: {e}");
                        } else {
                            tracing::info!(zone = %zone.zone, primary = %from, serial, records = new.records.len(), "{how}: new copy");
                            copy = Some(new);
                            last_ok = unix_now();
                            write_state(&state, &zone.zone, last_ok);
                            metrics::counter!("geosteer_secondary_refresh_total", "result" => if how == "IXFR" { "ixfr" } else { "axfr" }).increment(1);
                            let reload = reload.clone();
                            let _ =
                                tokio::task::spawn_blocking(move || reload("zone transfer")).await;
                        }
                    }
                    Err(e) => {
                        tracing::error!(zone = %zone.zone, primary = %from, "transferred zone refused, keeping the last good copy: {e}");
                        metrics::counter!("geosteer_secondary_refresh_total", "result" => "refused").increment(1);
                    }
                }
            }
            Err(e) => {
                tracing::warn!(zone = %zone.zone, "refresh failed, keeping the last good copy: {e}");
                metrics::counter!("geosteer_secondary_refresh_total", "result" => "failed")
                    .increment(1);
            }
        }
        let t = copy.as_ref().and_then(Copy::timers);
        let now = unix_now();
        if let Some(t) = t
            && now.saturating_sub(last_ok) > u64::from(t.expire)
        {
            tracing::error!(zone = %zone.zone, expire = t.expire, "no good refresh within EXPIRE: the zone expires and is no longer served");
            let _ = std::fs::rename(&path, path.with_extension("zone.expired"));
            copy = None;
            let reload = reload.clone();
            let _ = tokio::task::spawn_blocking(move || reload("zone expired")).await;
        }
        gauges(&zone.zone, copy.as_ref(), last_ok);
        let ok_recently = last_ok >= now.saturating_sub(1);
        wait = match t {
            // RFC 1035 §3.3.13: REFRESH after a good check, RETRY after a
            // failed one; never below a second.
            Some(t) if ok_recently => Duration::from_secs(u64::from(t.refresh).max(1)),
            Some(t) => Duration::from_secs(u64::from(t.retry).max(1)),
            None => Duration::from_secs(5),
        };
    }
}

/// What an operator's alert watches: the serial served (0 without a
/// copy), the last good check, and when the copy expires without another.
fn gauges(zone: &str, copy: Option<&Copy>, last_ok: u64) {
    let t = copy.and_then(Copy::timers);
    let z = zone.to_string();
    metrics::gauge!("geosteer_secondary_serial", "zone" => z.clone())
        .set(t.map_or(0.0, |t| f64::from(t.serial)));
    metrics::gauge!("geosteer_secondary_last_ok_timestamp_seconds", "zone" => z.clone())
        .set(last_ok as f64);
    metrics::gauge!("geosteer_secondary_expires_timestamp_seconds", "zone" => z)
        .set(t.map_or(0.0, |t| (last_ok + u64::from(t.expire)) as f64));
}

fn write_aside(path: &Path, text: &str) -> std::io::Result<()> {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("zone");
    let tmp = path.with_file_name(format!(".{name}.tmp"));
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, path)
}

/// Asks the primaries in turn; the first that answers decides.
async fn refresh(zone: &Secondary, copy: Option<&Copy>) -> Result<(SocketAddr, Refreshed), String> {
    let mut errors = Vec::new();
    for &p in &zone.primaries {
        match from_primary(zone, p, copy).await {
            Ok(r) => return Ok((p, r)),
            Err(e) => errors.push(format!("{p}: {e}")),
        }
    }
    Err(errors.join("; "))
}

async fn from_primary(
    zone: &Secondary,
    primary: SocketAddr,
    copy: Option<&Copy>,
) -> Result<Refreshed, String> {
    let ours = copy.and_then(Copy::timers);
    // The primary's serial (UDP, TCP when truncated).
    let q = client::request(0, &zone.apex, TYPE_SOA, &[], &[]);
    let mut signer = zone.key.clone().map(Signer::request);
    let r = client::udp(primary, q.clone(), signer.as_mut(), Duration::from_secs(3))
        .await
        .map_err(|e| e.to_string())?;
    let r = if r[2] & 0x02 != 0 {
        let mut tcp = Tcp::connect(primary, STEP)
            .await
            .map_err(|e| e.to_string())?;
        let mut q = q;
        let mut signer = zone.key.clone().map(Signer::request);
        let mut v = signer.as_mut().map(|s| {
            s.sign_vec(&mut q, unix_now());
            Verifier::new(s)
        });
        tcp.send(&q).await.map_err(|e| e.to_string())?;
        let r = tcp.recv().await.map_err(|e| e.to_string())?;
        if let Some(v) = &mut v {
            v.check(&r, unix_now()).map_err(|e| e.to_string())?;
        }
        r
    } else {
        r
    };
    if client::rcode(&r) != 0 || r[2] & 0x04 == 0 {
        return Err(format!(
            "SOA query answered rcode {} (aa {})",
            client::rcode(&r),
            r[2] & 0x04 != 0
        ));
    }
    let soa = client::answers(&r)?
        .into_iter()
        .find(|rr| rr.rtype == TYPE_SOA && wire::lowercase(&rr.owner) == zone.apex)
        .ok_or("no SOA in the answer")?;
    let theirs = timers(&soa).ok_or("malformed SOA")?.serial;
    if let Some(o) = ours
        && !newer(theirs, o.serial)
    {
        return Ok(Refreshed::Unchanged);
    }
    match transfer(zone, primary, copy, theirs).await {
        // An IXFR that fails (differences that do not fit our copy, a
        // broken stream) is retried at once as AXFR, as BIND and Knot do.
        Err(e) if copy.is_some() => {
            tracing::warn!(zone = %zone.zone, primary = %primary, "IXFR failed ({e}): trying AXFR");
            transfer(zone, primary, None, theirs)
                .await
                .map_err(|a| format!("IXFR: {e}; AXFR: {a}"))
        }
        r => r,
    }
}

/// IXFR (with a copy) or AXFR, then the new copy.
async fn transfer(
    zone: &Secondary,
    primary: SocketAddr,
    copy: Option<&Copy>,
    theirs: u32,
) -> Result<Refreshed, String> {
    let ixfr = copy.filter(|c| c.timers().is_some());
    let (qtype, authority) = match ixfr {
        Some(c) => (TYPE_IXFR, vec![c.records[0].clone()]),
        None => (TYPE_AXFR, Vec::new()),
    };
    let mut q = client::request(0, &zone.apex, qtype, &[], &authority);
    let mut signer = zone.key.clone().map(Signer::request);
    let mut verifier = signer.as_mut().map(|s| {
        s.sign_vec(&mut q, unix_now());
        Verifier::new(s)
    });
    let mut tcp = Tcp::connect(primary, STEP)
        .await
        .map_err(|e| e.to_string())?;
    tcp.send(&q).await.map_err(|e| e.to_string())?;
    let mut reader = Reader::default();
    loop {
        let m = tcp.recv().await.map_err(|e| e.to_string())?;
        if m.len() < 12 || m[0..2] != q[0..2] {
            return Err("answer with another ID".into());
        }
        if let Some(v) = &mut verifier {
            v.check(&m, unix_now()).map_err(|e| e.to_string())?;
        }
        if client::rcode(&m) != 0 {
            return Err(format!(
                "{} answered rcode {}",
                if qtype == TYPE_AXFR { "AXFR" } else { "IXFR" },
                client::rcode(&m)
            ));
        }
        for rr in client::answers(&m)? {
            if reader.push(rr, ixfr.map(|c| c.timers().map_or(0, |t| t.serial)))? {
                if let Some(v) = &verifier
                    && !v.settled()
                {
                    return Err("the transfer's last message is not signed".into());
                }
                return reader.finish(ixfr, theirs);
            }
        }
        if reader.single_soa() {
            // IXFR answered with our SOA alone (or theirs, unchanged).
            return Ok(Refreshed::Unchanged);
        }
    }
}

/// Reads a transfer record by record (RFC 5936 §2.2, RFC 1995 §4).
#[derive(Default)]
struct Reader {
    first: Option<Rr>,
    /// AXFR form: every record after the first SOA.
    all: Vec<Rr>,
    /// IXFR form: (deleted, added) per difference.
    diffs: Vec<(Vec<Rr>, Vec<Rr>)>,
    incremental: Option<bool>,
    /// In a difference: reading additions (after its second SOA).
    adding: bool,
    /// The serial the difference being read leads to.
    to: u32,
    records: usize,
}

impl Reader {
    /// Takes one record; `true` when the transfer is complete.
    fn push(&mut self, rr: Rr, ours: Option<u32>) -> Result<bool, String> {
        self.records += 1;
        let Some(first) = &self.first else {
            if rr.rtype != TYPE_SOA {
                return Err("transfer does not start with the SOA".into());
            }
            self.first = Some(rr);
            return Ok(false);
        };
        let new = timers(first).ok_or("malformed SOA")?.serial;
        let is_soa = rr.rtype == TYPE_SOA;
        let serial = if is_soa {
            timers(&rr).map(|t| t.serial)
        } else {
            None
        };
        if self.incremental.is_none() {
            // IXFR's second record is our old SOA when it sends differences.
            let inc = is_soa && ours.is_some() && serial == ours && self.records == 2;
            self.incremental = Some(inc);
            if !inc {
                if is_soa {
                    // SOA, SOA: an empty zone, or AXFR form's end.
                    return Ok(true);
                }
                self.all.push(rr);
                return Ok(false);
            }
            self.diffs.push((vec![rr], Vec::new()));
            self.adding = false;
            return Ok(false);
        }
        if self.incremental == Some(false) {
            if is_soa {
                return Ok(true);
            }
            self.all.push(rr);
            return Ok(false);
        }
        let (del, add) = self.diffs.last_mut().expect("a difference");
        match (is_soa, self.adding) {
            (false, false) => del.push(rr),
            (false, true) => add.push(rr),
            (true, false) => {
                self.to = serial.unwrap_or(0);
                add.push(rr);
                self.adding = true;
            }
            (true, true) => {
                if self.to == new && serial == Some(new) {
                    return Ok(true);
                }
                self.diffs.push((vec![rr], Vec::new()));
                self.adding = false;
            }
        }
        Ok(false)
    }

    fn single_soa(&self) -> bool {
        self.records == 1
    }

    /// The new copy.
    fn finish(self, copy: Option<&Copy>, theirs: u32) -> Result<Refreshed, String> {
        let first = self.first.ok_or("empty transfer")?;
        if self.incremental != Some(true) {
            let mut records = vec![first];
            records.extend(self.all);
            let _ = theirs;
            return Ok(Refreshed::New {
                copy: Copy { records },
                how: "AXFR",
            });
        }
        let copy = copy.ok_or("IXFR differences without a copy")?;
        let mut records: Vec<Rr> = copy.records.clone();
        for (del, add) in self.diffs {
            let gone: HashSet<_> = del.iter().map(identity).collect();
            let before = records.len();
            records.retain(|r| !gone.contains(&identity(r)));
            if before - records.len() != gone.len() {
                return Err(
                    "IXFR deletes records the copy does not have: falling back needs AXFR".into(),
                );
            }
            records.extend(add);
        }
        let soa = records
            .iter()
            .position(|r| r.rtype == TYPE_SOA)
            .ok_or("no SOA after the differences")?;
        let soa = records.remove(soa);
        records.insert(0, soa);
        Ok(Refreshed::New {
            copy: Copy { records },
            how: "IXFR",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn soa(serial: u32) -> Rr {
        let mut rdata = b"\x02ns\x00\x01h\x00".to_vec();
        for v in [serial, 3600, 600, 86400, 60] {
            rdata.extend_from_slice(&v.to_be_bytes());
        }
        Rr {
            owner: b"\x01z\x00".as_slice().into(),
            rtype: TYPE_SOA,
            ttl: 300,
            rdata,
        }
    }

    fn a(last: u8) -> Rr {
        Rr {
            owner: b"\x01a\x01z\x00".as_slice().into(),
            rtype: 1,
            ttl: 300,
            rdata: vec![192, 0, 2, last],
        }
    }

    #[test]
    fn ixfr_differences_apply_in_order() {
        let copy = Copy {
            records: vec![soa(1), a(1), a(2)],
        };
        let mut r = Reader::default();
        // 1 -> 2: a(1) out, a(3) in; 2 -> 3: a(2) out.
        let stream = [
            soa(3),
            soa(1),
            a(1),
            soa(2),
            a(3),
            soa(2),
            a(2),
            soa(3),
            soa(3),
        ];
        let mut done = false;
        for rr in stream {
            assert!(!done);
            done = r.push(rr, Some(1)).unwrap();
        }
        assert!(done);
        let Refreshed::New { copy: new, how } = r.finish(Some(&copy), 3).unwrap() else {
            panic!()
        };
        assert_eq!(how, "IXFR");
        assert_eq!(new.records, vec![soa(3), a(3)]);
    }

    #[test]
    fn an_ixfr_answered_as_axfr_replaces_the_copy() {
        let copy = Copy {
            records: vec![soa(1), a(1)],
        };
        let mut r = Reader::default();
        let mut done = false;
        for rr in [soa(2), a(7), a(8), soa(2)] {
            done = r.push(rr, Some(1)).unwrap();
        }
        assert!(done);
        let Refreshed::New { copy: new, how } = r.finish(Some(&copy), 2).unwrap() else {
            panic!()
        };
        assert_eq!(how, "AXFR");
        assert_eq!(new.records, vec![soa(2), a(7), a(8)]);
    }

    #[test]
    fn deleting_what_is_not_there_is_refused() {
        let copy = Copy {
            records: vec![soa(1)],
        };
        let mut r = Reader::default();
        for rr in [soa(2), soa(1), a(9), soa(2), soa(2)] {
            r.push(rr, Some(1)).unwrap();
        }
        assert!(r.finish(Some(&copy), 2).is_err());
    }
}
