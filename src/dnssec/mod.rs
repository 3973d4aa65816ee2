//! DNSSEC online signing: zone keys from BIND key files ([`keys`]), RRSIG,
//! DS and NSEC construction with a bounded signature cache ([`sign`]).
//!
//! A zone with key files in the configured directory is signed; one
//! without is not. [`ZoneSigner`] is built at reload with the rest of the
//! snapshot and decides which keys sign what: active KSKs (SEP flag) sign
//! the DNSKEY, CDS and CDNSKEY RRsets, active ZSKs everything else; a zone
//! with only KSKs (a CSK) signs everything with them.

mod error;
pub mod keys;
pub mod sign;

pub use error::DnssecError;
pub use keys::parse_name;

use std::sync::Arc;

use keys::{Key, KeyState};
use sign::{Canon, Policy, SigCache};

use crate::wire;
use crate::zone::tree::Rrset;

/// A zone's keys and what they sign, at the moment the snapshot was built.
#[derive(Debug)]
pub struct ZoneSigner {
    /// Unique per signer made in this process (never reused, unlike an
    /// address): per-thread caches key on it.
    pub id: u64,
    /// Lowercased wire apex: the signer name of every RRSIG.
    pub apex: Box<[u8]>,
    /// Every key file of the zone, with its state at build time.
    pub keys: Vec<(Arc<Key>, KeyState)>,
    /// Indices into `keys`: who signs DNSKEY/CDS/CDNSKEY, who signs the rest.
    ksk: Vec<usize>,
    zsk: Vec<usize>,
    pub policy: Policy,
    /// The next key timing event (Unix seconds): the snapshot must be
    /// rebuilt then.
    pub next_event: Option<u64>,
    /// TTL of DNSKEY, CDS and CDNSKEY (the SOA's).
    pub key_ttl: u32,
}

impl ZoneSigner {
    /// Reads the zone's keys from `dir`; `None` when it has none (unsigned).
    pub fn load(
        dir: &std::path::Path,
        apex: &[u8],
        policy: Policy,
        key_ttl: u32,
        now: u64,
    ) -> Result<Option<ZoneSigner>, Vec<DnssecError>> {
        let keys = keys::read_zone_keys(dir, apex)?;
        if keys.is_empty() {
            return Ok(None);
        }
        Self::from_keys(keys, apex, policy, key_ttl, now, dir).map(Some)
    }

    pub fn from_keys(
        keys: Vec<Key>,
        apex: &[u8],
        policy: Policy,
        key_ttl: u32,
        now: u64,
        dir: &std::path::Path,
    ) -> Result<ZoneSigner, Vec<DnssecError>> {
        let keys: Vec<(Arc<Key>, KeyState)> = keys
            .into_iter()
            .map(|k| {
                let st = k.timing.state(now);
                (Arc::new(k), st)
            })
            .collect();
        let active = |ksk: bool| -> Vec<usize> {
            keys.iter()
                .enumerate()
                .filter(|(_, (k, st))| *st == KeyState::Active && k.is_ksk() == ksk)
                .map(|(i, _)| i)
                .collect()
        };
        let (mut ksk, mut zsk) = (active(true), active(false));
        if ksk.is_empty() && zsk.is_empty() {
            return Err(vec![DnssecError::NoActiveKey {
                dir: dir.display().to_string(),
                zone: wire::name_to_string(apex),
            }]);
        }
        if zsk.is_empty() {
            zsk = ksk.clone();
        }
        if ksk.is_empty() {
            ksk = zsk.clone();
        }
        let next_event = keys
            .iter()
            .filter_map(|(k, _)| k.timing.next_event(now))
            .min();
        static IDS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        Ok(ZoneSigner {
            id: IDS.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            apex: apex.into(),
            keys,
            ksk,
            zsk,
            policy,
            next_event,
            key_ttl,
        })
    }

    /// The DNSKEY RDATAs to publish: every key published, active or retired.
    pub fn dnskeys(&self) -> impl Iterator<Item = &Key> {
        self.keys
            .iter()
            .filter(|(_, st)| {
                matches!(
                    st,
                    KeyState::Published | KeyState::Active | KeyState::Retired
                )
            })
            .map(|(k, _)| &**k)
    }

    /// The keys the parent's DS should point at: active KSKs (all active
    /// keys of a zone without KSKs).
    pub fn ds_keys(&self) -> impl Iterator<Item = &Key> {
        self.ksk.iter().map(|&i| &*self.keys[i].0)
    }

    /// The apex RRsets this signer adds to the zone: DNSKEY, CDS, CDNSKEY.
    pub fn apex_rrsets(&self) -> Vec<Rrset> {
        use crate::zone::tree::Rdata;
        let dnskey = self
            .dnskeys()
            .map(|k| Rdata::Opaque(k.dnskey.clone()))
            .collect();
        let cds = self
            .ds_keys()
            .map(|k| Rdata::Opaque(sign::ds_rdata(&self.apex, k).into()))
            .collect();
        let cdnskey = self
            .ds_keys()
            .map(|k| Rdata::Opaque(k.dnskey.clone()))
            .collect();
        [
            (sign::TYPE_DNSKEY, dnskey),
            (sign::TYPE_CDS, cds),
            (sign::TYPE_CDNSKEY, cdnskey),
        ]
        .into_iter()
        .map(|(rtype, rdata)| Rrset {
            rtype,
            ttl: self.key_ttl,
            rdata,
        })
        .collect()
    }

    /// RRSIG RDATAs over the finished `canon` RRset at `owner` (lowercased;
    /// the `*.` name for a wildcard), one per signing key, from the cache
    /// when fresh.
    pub fn rrsigs(
        &self,
        owner: &[u8],
        canon: &mut Canon,
        out: &mut smallvec::SmallVec<[Arc<[u8]>; 2]>,
    ) {
        let signers = if matches!(
            canon.rtype,
            sign::TYPE_DNSKEY | sign::TYPE_CDS | sign::TYPE_CDNSKEY
        ) {
            &self.ksk
        } else {
            &self.zsk
        };
        let (rtype, ttl, labels) = (canon.rtype, canon.ttl, canon.labels);
        let rrs = canon.finish(owner);
        let now = crate::clock::unix_now();
        let p = self.policy;
        let cache = SigCache::global();
        thread_local! {
            static KEY: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
        }
        KEY.with_borrow_mut(|ck| {
            for &i in signers {
                let key = &self.keys[i].0;
                ck.clear();
                // The key's DNSKEY RDATA identifies it across reloads.
                ck.extend_from_slice(&key.dnskey);
                ck.extend_from_slice(&rtype.to_be_bytes());
                ck.extend_from_slice(rrs);
                let made = cache.get_or_sign(ck, now, p.refresh, || {
                    let inception = now.saturating_sub(u64::from(p.inception_offset));
                    let expiration = now + u64::from(p.validity);
                    let fields = sign::RrsigFields {
                        rtype,
                        labels,
                        ttl,
                        inception: inception as u32,
                        expiration: expiration as u32,
                    };
                    sign::make_rrsig(key, &self.apex, fields, &rrs[1..])
                        .ok()
                        .map(|v| (Arc::from(v), expiration))
                });
                if let Some(sig) = made {
                    out.push(sig);
                }
            }
        });
    }

    /// The DS records (presentation form) for the parent.
    pub fn ds_text(&self) -> Vec<String> {
        self.ds_keys()
            .map(|k| {
                let rd = sign::ds_rdata(&self.apex, k);
                format!(
                    "{} IN DS {} {} 2 {}",
                    wire::name_to_string(&self.apex),
                    k.tag,
                    k.algorithm,
                    data_encoding::HEXUPPER.encode(&rd[4..])
                )
            })
            .collect()
    }

    /// For the status API: tag, algorithm, role, state and file of each key.
    /// No key material.
    pub fn describe(&self) -> serde_json::Value {
        serde_json::json!({
            "keys": self.keys.iter().map(|(k, st)| serde_json::json!({
                "tag": k.tag,
                "algorithm": k.algorithm,
                "algorithm_name": keys::algorithm_name(k.algorithm),
                "role": k.role(),
                "state": st,
                "signs": self.ksk.iter().chain(&self.zsk).any(|&i| Arc::ptr_eq(&self.keys[i].0, k)),
                "file": k.file.display().to_string(),
                "timing": k.timing,
            })).collect::<Vec<_>>(),
            "ds": self.ds_text(),
            "next_key_event": self.next_event,
        })
    }
}
