//! SOA serials of the zones we transfer out: the serial moves when what a
//! transfer would carry changes, and never goes back.
//!
//! What a transfer carries ([`super::image`]) is more than the zone file:
//! steered hosts' default answers come from the pools file, and a signed
//! zone's signatures are renewed. So each build digests the image (serial
//! left out) and compares with the digest the serial was last given for:
//! unchanged, the serial stays; changed, it becomes the file's serial if
//! that is newer (RFC 1982 arithmetic), else the last one plus one. The
//! digest and serial of each zone persist in a small JSON file
//! (`geosteer.serials.json` beside the config), written aside and renamed,
//! so a restart neither goes back nor bumps for nothing.
//!
//! A signed zone's digest also covers its signing keys and the signing
//! period (half of `dnssec.refresh`): its serial moves once a period, so a
//! secondary fetches signatures before the ones it holds expire.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::image;
use crate::snapshot::Zone;
use crate::wire::TYPE_SOA;
use crate::zone::tree::Rdata;

/// `a` is newer than `b` in serial number arithmetic (RFC 1982 §3.2).
pub fn newer(a: u32, b: u32) -> bool {
    a != b && (a.wrapping_sub(b) as i32) > 0
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
struct Entry {
    /// Hex SHA-256 of the image without the serial.
    hash: String,
    serial: u32,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct Saved {
    zones: BTreeMap<String, Entry>,
}

/// The serials given so far, by zone; written back when one changes.
#[derive(Debug)]
pub struct SerialBook {
    path: PathBuf,
    saved: Saved,
}

/// The signing period a signed zone's serial moves with, in seconds.
pub fn signing_period(signer: &crate::dnssec::ZoneSigner) -> u64 {
    u64::from(signer.policy.refresh / 2).max(60)
}

impl SerialBook {
    /// Reads the book at `path`; a missing file is an empty book, a bad
    /// one is reported and started over (serials then restart from the
    /// zone files', which only ever costs a secondary one full transfer).
    pub fn open(path: &Path) -> SerialBook {
        let saved = match std::fs::read_to_string(path) {
            Ok(text) => serde_json::from_str(&text).unwrap_or_else(|e| {
                tracing::warn!(file = %path.display(), "unreadable serial book, starting over: {e}");
                Saved::default()
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Saved::default(),
            Err(e) => {
                tracing::warn!(file = %path.display(), "cannot read the serial book: {e}");
                Saved::default()
            }
        };
        SerialBook {
            path: path.to_path_buf(),
            saved,
        }
    }

    /// Gives `zone` its serial (patched into its SOA) for what a transfer
    /// of it carries now; persists the book when that changed.
    pub fn assign(&mut self, zone: &mut Zone, now: u64) -> u32 {
        let file_serial = soa_serial(zone);
        let mut extra = Vec::new();
        if let Some(signer) = &zone.dnssec {
            for k in signer.dnskeys() {
                extra.extend_from_slice(&k.dnskey);
            }
            extra.extend_from_slice(&(now / signing_period(signer)).to_be_bytes());
        }
        let img = image::build(zone);
        let hash: String = image::content_hash(&img, &extra)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let key = zone.name.to_ascii_lowercase();
        let serial = match self.saved.zones.get(&key) {
            None => file_serial,
            Some(e) if e.hash == hash => {
                if newer(file_serial, e.serial) {
                    file_serial
                } else {
                    e.serial
                }
            }
            Some(e) => {
                if newer(file_serial, e.serial) {
                    file_serial
                } else {
                    e.serial.wrapping_add(1)
                }
            }
        };
        let entry = Entry { hash, serial };
        if self.saved.zones.get(&key) != Some(&entry) {
            if let Some(old) = self.saved.zones.get(&key)
                && old.serial != serial
            {
                tracing::info!(zone = %zone.name, from = old.serial, to = serial, "zone content changed: serial moves");
            }
            self.saved.zones.insert(key, entry);
            if let Err(e) = self.save() {
                tracing::error!(file = %self.path.display(), "cannot save serials: {e}");
            }
        }
        set_soa_serial(zone, serial);
        serial
    }

    fn save(&self) -> std::io::Result<()> {
        let tmp = self.path.with_extension("json.tmp");
        let text = serde_json::to_string_pretty(&self.saved).map_err(std::io::Error::other)?;
        std::fs::write(&tmp, text)?;
        std::fs::rename(&tmp, &self.path)
    }
}

/// The serial of the zone's SOA as the snapshot holds it.
pub fn soa_serial(zone: &Zone) -> u32 {
    match &zone.tree.soa().rdata[0] {
        Rdata::Soa { tail, .. } => u32::from_be_bytes([tail[0], tail[1], tail[2], tail[3]]),
        _ => 0,
    }
}

fn set_soa_serial(zone: &mut Zone, serial: u32) {
    let apex = zone.tree.apex_lower.clone();
    let Some(node) = zone.tree.nodes.get_mut(&apex) else {
        return;
    };
    for set in node.rrsets.iter_mut().filter(|s| s.rtype == TYPE_SOA) {
        for rd in &mut set.rdata {
            if let Rdata::Soa { tail, .. } = rd {
                tail[0..4].copy_from_slice(&serial.to_be_bytes());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serial_arithmetic() {
        assert!(newer(2, 1));
        assert!(!newer(1, 2));
        assert!(!newer(5, 5));
        assert!(newer(0, u32::MAX));
        assert!(newer(10, u32::MAX - 10));
        assert!(!newer(u32::MAX - 10, 10));
    }
}
