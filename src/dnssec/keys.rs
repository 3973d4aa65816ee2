//! BIND key files: `K<zone>.+<alg>+<tag>.key` (the DNSKEY record, timing
//! metadata in comments) and `.private` (the private key and the same
//! timing metadata), as `dnssec-keygen` and `ldns-keygen` write them.
//!
//! Timing metadata is read from the `.private` file when it has it (BIND
//! keeps both files in step and reads that one); otherwise from the
//! `; Publish: ...` comments of the `.key` file.

use std::fmt;
use std::path::{Path, PathBuf};

use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair};

use super::error::DnssecError;
use crate::wire;

/// DNSKEY algorithm numbers we sign with (RFC 8624).
pub const ALG_ECDSAP256SHA256: u8 = 13;
pub const ALG_ED25519: u8 = 15;

/// DNSKEY flags: ZONE, and SEP for a key-signing key.
pub const FLAG_ZONE: u16 = 0x0100;
pub const FLAG_SEP: u16 = 0x0001;

/// BIND's timing metadata, as Unix seconds. Unset means "already
/// happened" for Publish and Activate (a key without dates is live, as
/// BIND and ldns treat it) and "never" for Inactive and Delete.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Timing {
    pub created: Option<u64>,
    pub publish: Option<u64>,
    pub activate: Option<u64>,
    pub inactive: Option<u64>,
    pub delete: Option<u64>,
}

/// Where a key is in its life at one moment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyState {
    /// Publish is in the future: not in the DNSKEY RRset yet.
    Unpublished,
    /// In the DNSKEY RRset, not signing (pre-published, or before Activate).
    Published,
    /// In the DNSKEY RRset and signing.
    Active,
    /// Past Inactive: still in the DNSKEY RRset (until Delete), not signing.
    Retired,
    /// Past Delete: gone.
    Deleted,
}

impl Timing {
    pub fn state(&self, now: u64) -> KeyState {
        let past = |t: Option<u64>| t.is_some_and(|t| t <= now);
        let unset_or_past = |t: Option<u64>| t.is_none_or(|t| t <= now);
        if past(self.delete) {
            KeyState::Deleted
        } else if !unset_or_past(self.publish) {
            KeyState::Unpublished
        } else if past(self.inactive) {
            KeyState::Retired
        } else if unset_or_past(self.activate) {
            KeyState::Active
        } else {
            KeyState::Published
        }
    }

    /// The earliest timing event after `now`, when the key's state changes.
    pub fn next_event(&self, now: u64) -> Option<u64> {
        [self.publish, self.activate, self.inactive, self.delete]
            .into_iter()
            .flatten()
            .filter(|&t| t > now)
            .min()
    }
}

/// The signing half of a key. Its `Debug` never shows key material.
pub(crate) enum Secret {
    Ecdsa(EcdsaKeyPair),
    Ed25519(Ed25519KeyPair),
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// One DNSSEC key read from a `.key`/`.private` pair.
#[derive(Debug)]
pub struct Key {
    /// The `.key` file it came from.
    pub file: PathBuf,
    /// The zone, lowercased wire form.
    pub zone: Box<[u8]>,
    pub flags: u16,
    pub algorithm: u8,
    pub tag: u16,
    /// DNSKEY RDATA: flags, protocol 3, algorithm, public key.
    pub dnskey: Box<[u8]>,
    pub timing: Timing,
    pub(crate) secret: Secret,
}

impl Key {
    /// A key-signing key (SEP flag; 257).
    pub fn is_ksk(&self) -> bool {
        self.flags & FLAG_SEP != 0
    }

    pub fn role(&self) -> &'static str {
        if self.is_ksk() { "ksk" } else { "zsk" }
    }

    /// Signs `data`: r||s (64 bytes) for ECDSA (RFC 6605), 64 bytes for
    /// Ed25519 (RFC 8080).
    pub(crate) fn sign(&self, data: &[u8]) -> Result<Vec<u8>, DnssecError> {
        match &self.secret {
            Secret::Ecdsa(k) => k
                .sign(&SystemRandom::new(), data)
                .map(|s| s.as_ref().to_vec())
                .map_err(|_| DnssecError::Sign),
            Secret::Ed25519(k) => Ok(k.sign(data).as_ref().to_vec()),
        }
    }
}

/// RFC 4034 Appendix B: the key tag of DNSKEY RDATA.
pub fn key_tag(rdata: &[u8]) -> u16 {
    let mut ac: u32 = 0;
    for (i, &b) in rdata.iter().enumerate() {
        ac += if i & 1 == 1 {
            u32::from(b)
        } else {
            u32::from(b) << 8
        };
    }
    ac += (ac >> 16) & 0xFFFF;
    (ac & 0xFFFF) as u16
}

pub fn algorithm_name(alg: u8) -> &'static str {
    match alg {
        ALG_ECDSAP256SHA256 => "ECDSAP256SHA256",
        ALG_ED25519 => "ED25519",
        _ => "unsupported",
    }
}

fn err(file: &Path, line: u32, reason: impl Into<String>) -> DnssecError {
    DnssecError::KeyFile {
        file: file.to_path_buf(),
        line,
        reason: reason.into(),
    }
}

/// `20261201211826` (BIND's UTC timestamp) to Unix seconds.
fn parse_time(s: &str) -> Option<u64> {
    let s = s.trim();
    if s.len() != 14 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let iso = format!(
        "{}-{}-{}T{}:{}:{}Z",
        &s[0..4],
        &s[4..6],
        &s[6..8],
        &s[8..10],
        &s[10..12],
        &s[12..14]
    );
    humantime::parse_rfc3339(&iso)
        .ok()?
        .duration_since(std::time::UNIX_EPOCH)
        .ok()
        .map(|d| d.as_secs())
}

/// Unix seconds to BIND's `YYYYMMDDHHMMSS`.
pub fn format_time(t: u64) -> String {
    let s = humantime::format_rfc3339_seconds(
        std::time::UNIX_EPOCH + std::time::Duration::from_secs(t),
    )
    .to_string();
    s.chars().filter(char::is_ascii_digit).collect()
}

/// Sets a timing field from a `Name: value` pair; false if `name` is no
/// timing field.
fn set_timing(t: &mut Timing, name: &str, value: &str) -> Result<bool, String> {
    let slot = match name {
        "Created" => &mut t.created,
        "Publish" => &mut t.publish,
        "Activate" => &mut t.activate,
        "Inactive" => &mut t.inactive,
        "Delete" => &mut t.delete,
        _ => return Ok(false),
    };
    let stamp = value.split_whitespace().next().unwrap_or("");
    *slot = Some(
        parse_time(stamp)
            .ok_or_else(|| format!("{name}: '{stamp}' is not a YYYYMMDDHHMMSS time"))?,
    );
    Ok(true)
}

/// What the `.key` file says: the DNSKEY record and comment timing.
struct PublicPart {
    owner: Box<[u8]>,
    flags: u16,
    algorithm: u8,
    public: Vec<u8>,
    timing: Timing,
}

fn parse_public(file: &Path, text: &str) -> Result<PublicPart, DnssecError> {
    let mut timing = Timing::default();
    let mut found: Option<PublicPart> = None;
    for (i, raw) in text.lines().enumerate() {
        let line = i as u32 + 1;
        let trimmed = raw.trim();
        if let Some(comment) = trimmed.strip_prefix(';') {
            if let Some((name, value)) = comment.trim().split_once(':') {
                set_timing(&mut timing, name.trim(), value).map_err(|e| err(file, line, e))?;
            }
            continue;
        }
        let body = trimmed.split(';').next().unwrap_or("").trim();
        if body.is_empty() {
            continue;
        }
        if found.is_some() {
            return Err(err(file, line, "more than one record in a key file"));
        }
        let f: Vec<&str> = body.split_whitespace().collect();
        // owner [ttl] [class] DNSKEY flags protocol algorithm key...
        let Some(at) = f.iter().position(|t| t.eq_ignore_ascii_case("DNSKEY")) else {
            return Err(err(file, line, "expected a DNSKEY record"));
        };
        if at == 0 || f.len() < at + 5 {
            return Err(err(
                file,
                line,
                "DNSKEY record needs owner, flags, protocol, algorithm and key",
            ));
        }
        let owner = parse_name(f[0]).map_err(|e| err(file, line, format!("owner: {e}")))?;
        let flags: u16 = f[at + 1]
            .parse()
            .map_err(|_| err(file, line, format!("invalid flags '{}'", f[at + 1])))?;
        if f[at + 2] != "3" {
            return Err(err(
                file,
                line,
                format!("protocol must be 3, not {}", f[at + 2]),
            ));
        }
        let algorithm: u8 = f[at + 3]
            .parse()
            .map_err(|_| err(file, line, format!("invalid algorithm '{}'", f[at + 3])))?;
        let b64: String = f[at + 4..].concat();
        let public = data_encoding::BASE64
            .decode(b64.as_bytes())
            .map_err(|e| err(file, line, format!("public key is not base64: {e}")))?;
        if flags & FLAG_ZONE == 0 {
            return Err(err(
                file,
                line,
                format!("flags {flags}: not a zone key (256 or 257 expected)"),
            ));
        }
        found = Some(PublicPart {
            owner,
            flags,
            algorithm,
            public,
            timing: Timing::default(),
        });
    }
    let mut p = found.ok_or_else(|| err(file, 0, "no DNSKEY record in the key file"))?;
    p.timing = timing;
    Ok(p)
}

/// Reads one key from its `.key` path (the `.private` beside it).
pub fn read_key(key_path: &Path) -> Result<Key, DnssecError> {
    let text = std::fs::read_to_string(key_path)
        .map_err(|e| err(key_path, 0, format!("cannot read: {e}")))?;
    let public = parse_public(key_path, &text)?;
    let line_of = |needle: &str| {
        text.lines()
            .position(|l| l.contains(needle))
            .map_or(0, |i| i as u32 + 1)
    };
    let rr_line = line_of("DNSKEY");
    match public.algorithm {
        ALG_ECDSAP256SHA256 if public.public.len() != 64 => {
            return Err(err(
                key_path,
                rr_line,
                format!(
                    "ECDSAP256SHA256 public key is {} bytes, expected 64",
                    public.public.len()
                ),
            ));
        }
        ALG_ED25519 if public.public.len() != 32 => {
            return Err(err(
                key_path,
                rr_line,
                format!(
                    "ED25519 public key is {} bytes, expected 32",
                    public.public.len()
                ),
            ));
        }
        ALG_ECDSAP256SHA256 | ALG_ED25519 => {}
        a => {
            return Err(err(
                key_path,
                rr_line,
                format!("algorithm {a} is not supported (13 ECDSAP256SHA256 or 15 ED25519)"),
            ));
        }
    }
    let priv_path = key_path.with_extension("private");
    let ptext = std::fs::read_to_string(&priv_path)
        .map_err(|e| err(&priv_path, 0, format!("cannot read: {e}")))?;
    let mut timing = Timing::default();
    let mut has_timing = false;
    let mut secret_b64: Option<(u32, String)> = None;
    let mut algorithm_seen = None;
    for (i, raw) in ptext.lines().enumerate() {
        let line = i as u32 + 1;
        let l = raw.trim();
        if l.is_empty() || l.starts_with(';') {
            continue;
        }
        let Some((name, value)) = l.split_once(':') else {
            return Err(err(&priv_path, line, "expected 'Field: value'"));
        };
        let (name, value) = (name.trim(), value.trim());
        match name {
            "Private-key-format" => {
                if !value.starts_with("v1.") {
                    return Err(err(
                        &priv_path,
                        line,
                        format!("unknown Private-key-format {value}"),
                    ));
                }
            }
            "Algorithm" => {
                let a: u8 = value
                    .split_whitespace()
                    .next()
                    .and_then(|v| v.parse().ok())
                    .ok_or_else(|| err(&priv_path, line, "invalid Algorithm"))?;
                if a != public.algorithm {
                    return Err(err(
                        &priv_path,
                        line,
                        format!(
                            "Algorithm {a} does not match the .key file's {}",
                            public.algorithm
                        ),
                    ));
                }
                algorithm_seen = Some(a);
            }
            // Never echo the value: it is the secret.
            "PrivateKey" => secret_b64 = Some((line, value.to_string())),
            _ => {
                has_timing |=
                    set_timing(&mut timing, name, value).map_err(|e| err(&priv_path, line, e))?;
            }
        }
    }
    if algorithm_seen.is_none() {
        return Err(err(&priv_path, 0, "no Algorithm field"));
    }
    let (sline, b64) = secret_b64.ok_or_else(|| err(&priv_path, 0, "no PrivateKey field"))?;
    let raw = data_encoding::BASE64
        .decode(b64.as_bytes())
        .map_err(|_| err(&priv_path, sline, "PrivateKey is not valid base64"))?;
    let secret = match public.algorithm {
        ALG_ECDSAP256SHA256 => {
            let mut point = Vec::with_capacity(65);
            point.push(4);
            point.extend_from_slice(&public.public);
            Secret::Ecdsa(
                EcdsaKeyPair::from_private_key_and_public_key(
                    &ECDSA_P256_SHA256_FIXED_SIGNING,
                    &raw,
                    &point,
                    &SystemRandom::new(),
                )
                .map_err(|e| {
                    err(
                        &priv_path,
                        sline,
                        format!("PrivateKey does not match the public key in the .key file ({e})"),
                    )
                })?,
            )
        }
        _ => Secret::Ed25519(
            Ed25519KeyPair::from_seed_and_public_key(&raw, &public.public).map_err(|e| {
                err(
                    &priv_path,
                    sline,
                    format!("PrivateKey does not match the public key in the .key file ({e})"),
                )
            })?,
        ),
    };
    let mut dnskey = Vec::with_capacity(4 + public.public.len());
    dnskey.extend_from_slice(&public.flags.to_be_bytes());
    dnskey.push(3);
    dnskey.push(public.algorithm);
    dnskey.extend_from_slice(&public.public);
    Ok(Key {
        file: key_path.to_path_buf(),
        zone: public.owner,
        flags: public.flags,
        algorithm: public.algorithm,
        tag: key_tag(&dnskey),
        dnskey: dnskey.into_boxed_slice(),
        timing: if has_timing { timing } else { public.timing },
        secret,
    })
}

/// Reads every key of `zone` (lowercased wire) in `dir`: files named
/// `K<zone>.+<alg>+<tag>.key`. A file named for the zone whose record is
/// for another owner is an error.
pub fn read_zone_keys(dir: &Path, zone: &[u8]) -> Result<Vec<Key>, Vec<DnssecError>> {
    let name = wire::name_to_string(zone);
    let prefix = format!("k{}+", name.to_ascii_lowercase());
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) => {
            return Err(vec![err(
                dir,
                0,
                format!("cannot read keys directory: {e}"),
            )]);
        }
    };
    let mut paths: Vec<PathBuf> = rd
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| {
            p.extension().is_some_and(|x| x == "key")
                && p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.to_ascii_lowercase().starts_with(&prefix))
        })
        .collect();
    paths.sort();
    let mut keys = Vec::new();
    let mut errs = Vec::new();
    for p in paths {
        match read_key(&p) {
            Ok(k) if !named_for(&p, &k) => errs.push(err(
                &p,
                0,
                format!(
                    "the file name does not match the key (algorithm {}, tag {})",
                    k.algorithm, k.tag
                ),
            )),
            Ok(k) if *k.zone != *zone => errs.push(err(
                &p,
                0,
                format!("key is for {}, not {name}", wire::name_to_string(&k.zone)),
            )),
            Ok(k) => keys.push(k),
            Err(e) => errs.push(e),
        }
    }
    if errs.is_empty() { Ok(keys) } else { Err(errs) }
}

/// Does `K<zone>.+<alg>+<tag>.key` carry the key's algorithm and tag?
fn named_for(path: &Path, k: &Key) -> bool {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let stem = name.strip_suffix(".key").unwrap_or(name);
    let mut parts = stem.rsplitn(3, '+');
    let tag = parts.next().and_then(|t| t.parse::<u16>().ok());
    let alg = parts.next().and_then(|a| a.parse::<u8>().ok());
    tag == Some(k.tag) && alg == Some(k.algorithm)
}

/// A new key pair written as `dnssec-keygen` would; returns the `.key` path.
pub fn generate(
    dir: &Path,
    zone: &str,
    ksk: bool,
    algorithm: u8,
    now: u64,
) -> Result<PathBuf, DnssecError> {
    let owner = parse_name(zone).map_err(|e| DnssecError::Generate(format!("{zone}: {e}")))?;
    let rng = SystemRandom::new();
    let (private, public): (Vec<u8>, Vec<u8>) = match algorithm {
        ALG_ECDSAP256SHA256 => {
            let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
                .map_err(|_| DnssecError::Generate("key generation failed".into()))?;
            let doc = pkcs8.as_ref();
            // ring exposes no raw scalar, and BIND's format wants it: ring's
            // P-256 PKCS#8 v1 document is fixed-layout, the 32-byte private
            // key after this DER prefix (RFC 5915 ECPrivateKey inside).
            const PREFIX: [u8; 36] = [
                0x30, 0x81, 0x87, 0x02, 0x01, 0x00, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce,
                0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x04,
                0x6d, 0x30, 0x6b, 0x02, 0x01, 0x01, 0x04, 0x20,
            ];
            if doc.len() < 68 || doc[..36] != PREFIX {
                return Err(DnssecError::Generate(
                    "unexpected PKCS#8 layout from ring".into(),
                ));
            }
            let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, doc, &rng)
                .map_err(|_| DnssecError::Generate("key generation failed".into()))?;
            (
                doc[36..68].to_vec(),
                pair.public_key().as_ref()[1..].to_vec(),
            )
        }
        ALG_ED25519 => {
            let mut seed = [0u8; 32];
            ring::rand::SecureRandom::fill(&rng, &mut seed)
                .map_err(|_| DnssecError::Generate("no randomness".into()))?;
            let pair = Ed25519KeyPair::from_seed_unchecked(&seed)
                .map_err(|_| DnssecError::Generate("key generation failed".into()))?;
            (seed.to_vec(), pair.public_key().as_ref().to_vec())
        }
        a => {
            return Err(DnssecError::Generate(format!(
                "algorithm {a} is not supported (13 or 15)"
            )));
        }
    };
    let flags = FLAG_ZONE | if ksk { FLAG_SEP } else { 0 };
    let mut rdata = flags.to_be_bytes().to_vec();
    rdata.push(3);
    rdata.push(algorithm);
    rdata.extend_from_slice(&public);
    let tag = key_tag(&rdata);
    let zname = wire::name_to_string(&owner);
    let base = format!("K{zname}+{algorithm:03}+{tag:05}");
    let stamp = format_time(now);
    let human = humantime::format_rfc3339_seconds(
        std::time::UNIX_EPOCH + std::time::Duration::from_secs(now),
    );
    let kind = if ksk { "key-signing" } else { "zone-signing" };
    let key_text = format!(
        "; This is a {kind} key, keyid {tag}, for {zname}\n\
         ; Created: {stamp} ({human})\n\
         ; Publish: {stamp} ({human})\n\
         ; Activate: {stamp} ({human})\n\
         {zname} IN DNSKEY {flags} 3 {algorithm} {}\n",
        data_encoding::BASE64.encode(&public)
    );
    let priv_text = format!(
        "Private-key-format: v1.3\n\
         Algorithm: {algorithm} ({})\n\
         PrivateKey: {}\n\
         Created: {stamp}\n\
         Publish: {stamp}\n\
         Activate: {stamp}\n",
        algorithm_name(algorithm),
        data_encoding::BASE64.encode(&private)
    );
    // Not `with_extension`: the zone's dots would be taken for one.
    let key_path = dir.join(format!("{base}.key"));
    let priv_path = dir.join(format!("{base}.private"));
    if key_path.exists() || priv_path.exists() {
        return Err(DnssecError::Generate(format!(
            "{} already exists",
            key_path.display()
        )));
    }
    write_private(&priv_path, &priv_text)
        .map_err(|e| DnssecError::Generate(format!("{}: {e}", priv_path.display())))?;
    std::fs::write(&key_path, key_text)
        .map_err(|e| DnssecError::Generate(format!("{}: {e}", key_path.display())))?;
    Ok(key_path)
}

/// The private file is created readable by its owner only, as BIND does.
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(text.as_bytes())
}

/// A presentation name (`cdn.example` or `cdn.example.`) to lowercased wire form.
pub fn parse_name(text: &str) -> Result<Box<[u8]>, String> {
    let mut name = hickory_proto::rr::Name::from_ascii(text)
        .map_err(|e| format!("invalid name '{text}': {e}"))?;
    name.set_fqdn(true);
    Ok(wire::lowercase(&wire::from_hickory(&name)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timing_states() {
        let t = Timing {
            publish: Some(100),
            activate: Some(200),
            inactive: Some(300),
            delete: Some(400),
            ..Timing::default()
        };
        assert_eq!(t.state(50), KeyState::Unpublished);
        assert_eq!(t.state(150), KeyState::Published);
        assert_eq!(t.state(250), KeyState::Active);
        assert_eq!(t.state(350), KeyState::Retired);
        assert_eq!(t.state(450), KeyState::Deleted);
        assert_eq!(t.next_event(150), Some(200));
        assert_eq!(Timing::default().state(0), KeyState::Active);
    }

    #[test]
    fn times_round_trip() {
        assert_eq!(parse_time("20261201211826"), Some(1_796_159_906));
        assert_eq!(format_time(1_796_159_906), "20261201211826");
        assert_eq!(parse_time("2026120121182"), None);
    }

    #[test]
    fn keygen_reads_back_and_signs() {
        let dir = tempfile::tempdir().unwrap();
        for (alg, ksk) in [(13, false), (15, true)] {
            let p = generate(dir.path(), "Example.COM", ksk, alg, 1_796_159_906).unwrap();
            let k = read_key(&p).unwrap();
            assert_eq!(&*k.zone, b"\x07example\x03com\x00");
            assert_eq!(k.algorithm, alg);
            assert_eq!(k.is_ksk(), ksk);
            assert_eq!(k.timing.activate, Some(1_796_159_906));
            let name = p.file_name().unwrap().to_str().unwrap().to_string();
            assert!(name.ends_with(&format!("+{:05}.key", k.tag)), "{name}");
            assert_eq!(k.sign(b"data").unwrap().len(), 64);
            assert!(!format!("{k:?}").contains("PrivateKey"));
        }
        let keys = read_zone_keys(dir.path(), b"\x07example\x03com\x00").unwrap();
        assert_eq!(keys.len(), 2);
    }

    #[test]
    fn key_tag_rfc_example() {
        // dnssec-keygen output: "cdn.example. IN DNSKEY 256 3 13 nKBW..." is tag 2831.
        let public = data_encoding::BASE64
            .decode(b"nKBWlhC5iVaAI7eOTu3+nNXx9xerVr6tvaQ7bNJwM+nFyOQ4jMiCeTwrbdw83sZVvQSR/cGla4U+z93scKlN8w==")
            .unwrap();
        let mut rd = vec![1, 0, 3, 13];
        rd.extend_from_slice(&public);
        assert_eq!(key_tag(&rd), 2831);
    }
}
