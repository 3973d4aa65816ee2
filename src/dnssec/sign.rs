//! RFC 4034 signing: canonical RRset form (§6), RRSIG RDATA (§3), DS
//! digests (§5, SHA-256 per RFC 4509), NSEC type bitmaps (§4.1.2), and the
//! bounded signature cache.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use super::keys::Key;
use crate::wire;
use crate::zone::tree::Rdata;

pub const TYPE_RRSIG: u16 = crate::wire::TYPE_RRSIG;
pub const TYPE_NSEC: u16 = crate::wire::TYPE_NSEC;
pub const TYPE_DNSKEY: u16 = 48;
pub const TYPE_CDS: u16 = 59;
pub const TYPE_CDNSKEY: u16 = 60;
/// RFC 9824: the meta-type in a compact denial NSEC for a name that does
/// not exist.
pub const TYPE_NXNAME: u16 = 128;

/// Signature timing, in seconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Policy {
    /// Inception this far in the past (validators' clock skew).
    pub inception_offset: u32,
    /// Expiration this far after signing.
    pub validity: u32,
    /// A cached signature older than this is made again.
    pub refresh: u32,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            inception_offset: 3600,
            validity: 4 * 86_400,
            refresh: 2 * 86_400,
        }
    }
}

/// Appends the canonical (RFC 4034 §6.2) form of RDATA of type `rtype`:
/// the names inside lowercased for the types RFC 4034 lists (with RFC
/// 6840 §5.1), uncompressed (wire names have no letters in their length
/// octets, so a whole name lowercases at once).
pub fn canonical_rdata(rtype: u16, rd: &Rdata, out: &mut Vec<u8>) {
    let lower = |n: &[u8], out: &mut Vec<u8>| out.extend(n.iter().map(u8::to_ascii_lowercase));
    match rd {
        Rdata::Opaque(b) => crate::zone::schema::canonical(rtype, b, out),
        Rdata::Name(n) => lower(n, out),
        Rdata::Mx(p, n) => {
            out.extend_from_slice(&p.to_be_bytes());
            lower(n, out);
        }
        Rdata::Srv(h, n) => {
            out.extend_from_slice(h);
            lower(n, out);
        }
        Rdata::Soa { mname, rname, tail } => {
            lower(mname, out);
            lower(rname, out);
            out.extend_from_slice(tail);
        }
    }
}

/// An RRset in canonical form, ready to sign: built in a reusable buffer
/// so a cache hit allocates nothing.
#[derive(Default)]
pub struct Canon {
    /// labels (1 byte), then each RR: owner | type | class | TTL | RDLENGTH | RDATA,
    /// in canonical RDATA order, duplicates removed.
    buf: Vec<u8>,
    rdata: Vec<u8>,
    /// (start, len) of each RDATA in `rdata`.
    spans: Vec<(u32, u32)>,
    pub rtype: u16,
    pub ttl: u32,
    pub labels: u8,
}

impl Canon {
    /// Starts an RRset. `owner` is lowercased wire form (the wildcard's
    /// `*.` owner for a synthesised answer); `labels` its RRSIG label count.
    pub fn start(&mut self, rtype: u16, ttl: u32, labels: u8) {
        self.rdata.clear();
        self.spans.clear();
        self.rtype = rtype;
        self.ttl = ttl;
        self.labels = labels;
    }

    /// Adds one RDATA already in canonical form.
    pub fn push(&mut self, rd: &[u8]) {
        let at = self.rdata.len() as u32;
        self.rdata.extend_from_slice(rd);
        self.spans.push((at, rd.len() as u32));
    }

    pub fn push_rdata(&mut self, rd: &Rdata) {
        let at = self.rdata.len() as u32;
        canonical_rdata(self.rtype, rd, &mut self.rdata);
        self.spans.push((at, self.rdata.len() as u32 - at));
    }

    /// Sorts and writes the RRs; returns the bytes (the cache key's tail).
    pub fn finish(&mut self, owner: &[u8]) -> &[u8] {
        let rdata = &self.rdata;
        let get = |s: &(u32, u32)| &rdata[s.0 as usize..(s.0 + s.1) as usize];
        // RFC 4034 §6.3: RDATA as left-justified unsigned octet sequences.
        self.spans.sort_by(|a, b| get(a).cmp(get(b)));
        self.spans.dedup_by(|a, b| get(a) == get(b));
        self.buf.clear();
        self.buf.push(self.labels);
        for s in &self.spans {
            self.buf.extend(owner.iter().map(u8::to_ascii_lowercase));
            self.buf.extend_from_slice(&self.rtype.to_be_bytes());
            self.buf.extend_from_slice(&wire::CLASS_IN.to_be_bytes());
            self.buf.extend_from_slice(&self.ttl.to_be_bytes());
            self.buf.extend_from_slice(&(s.1 as u16).to_be_bytes());
            self.buf.extend_from_slice(get(s));
        }
        &self.buf
    }
}

/// The RRSIG fields that are not the key's.
#[derive(Clone, Copy, Debug)]
pub struct RrsigFields {
    pub rtype: u16,
    pub labels: u8,
    /// Original TTL.
    pub ttl: u32,
    pub inception: u32,
    pub expiration: u32,
}

/// Makes RRSIG RDATA (signer name uncompressed) over `rrs` (a finished
/// [`Canon`]'s bytes without the leading labels byte).
pub fn make_rrsig(
    key: &Key,
    signer: &[u8],
    h: RrsigFields,
    rrs: &[u8],
) -> Result<Vec<u8>, super::error::DnssecError> {
    let mut rd = Vec::with_capacity(18 + signer.len() + 64);
    rd.extend_from_slice(&h.rtype.to_be_bytes());
    rd.push(key.algorithm);
    rd.push(h.labels);
    rd.extend_from_slice(&h.ttl.to_be_bytes());
    rd.extend_from_slice(&h.expiration.to_be_bytes());
    rd.extend_from_slice(&h.inception.to_be_bytes());
    rd.extend_from_slice(&key.tag.to_be_bytes());
    rd.extend_from_slice(signer);
    let mut data = Vec::with_capacity(rd.len() + rrs.len());
    data.extend_from_slice(&rd);
    data.extend_from_slice(rrs);
    let sig = key.sign(&data)?;
    rd.extend_from_slice(&sig);
    Ok(rd)
}

/// DS RDATA with a SHA-256 digest (RFC 4509) for a key of `owner`.
pub fn ds_rdata(owner: &[u8], key: &Key) -> Vec<u8> {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    ctx.update(owner);
    ctx.update(&key.dnskey);
    let mut rd = key.tag.to_be_bytes().to_vec();
    rd.push(key.algorithm);
    rd.push(2);
    rd.extend_from_slice(ctx.finish().as_ref());
    rd
}

/// NSEC RDATA: next owner name (canonical, uncompressed), then the type
/// bitmap of `types` (any order, duplicates allowed).
pub fn nsec_rdata(next: &[u8], types: &mut [u16]) -> Vec<u8> {
    let mut rd = next.to_vec();
    crate::zone::schema::write_bitmap(types, &mut rd);
    rd
}

/// One cached signature.
struct Entry {
    rrsig: Arc<[u8]>,
    signed_at: u64,
    expires: u64,
}

const SHARDS: usize = 16;

/// Signatures by (key, labels, canonical RRset). Bounded: a full shard
/// drops an entry before taking a new one, so wildcard or NXDOMAIN names
/// chosen by clients cannot grow it. Shared by every snapshot, so a
/// reload does not re-sign what did not change.
pub struct SigCache {
    shards: [Mutex<HashMap<Box<[u8]>, Entry>>; SHARDS],
    per_shard: AtomicU64,
    hasher: std::collections::hash_map::RandomState,
}

/// Process-wide counters, read by the metrics endpoint.
#[derive(Default)]
pub struct SignStats {
    pub signatures: AtomicU64,
    pub hits: AtomicU64,
    pub misses: AtomicU64,
}

pub fn stats() -> &'static SignStats {
    static S: OnceLock<SignStats> = OnceLock::new();
    S.get_or_init(SignStats::default)
}

static EPOCH: AtomicU64 = AtomicU64::new(0);

/// Changes whenever the cache is emptied: caches in front of it compare it.
pub fn epoch() -> u64 {
    EPOCH.load(Ordering::Relaxed)
}

/// Default bound on cached signatures (a few hundred bytes each).
pub const DEFAULT_CACHE_ENTRIES: usize = 100_000;

impl SigCache {
    pub fn new(entries: usize) -> SigCache {
        SigCache {
            shards: std::array::from_fn(|_| Mutex::new(HashMap::new())),
            per_shard: AtomicU64::new((entries / SHARDS).max(1) as u64),
            hasher: Default::default(),
        }
    }

    /// The process's cache.
    pub fn global() -> &'static SigCache {
        static C: OnceLock<SigCache> = OnceLock::new();
        C.get_or_init(|| SigCache::new(DEFAULT_CACHE_ENTRIES))
    }

    pub fn set_capacity(&self, entries: usize) {
        self.per_shard
            .store((entries / SHARDS).max(1) as u64, Ordering::Relaxed);
    }

    fn shard(&self, key: &[u8]) -> &Mutex<HashMap<Box<[u8]>, Entry>> {
        use std::hash::BuildHasher;
        &self.shards[(self.hasher.hash_one(key) as usize) % SHARDS]
    }

    /// The cached signature for `key` if younger than `refresh`, else
    /// one made by `make` (and cached).
    pub fn get_or_sign(
        &self,
        key: &[u8],
        now: u64,
        refresh: u32,
        make: impl FnOnce() -> Option<(Arc<[u8]>, u64)>,
    ) -> Option<Arc<[u8]>> {
        let shard = self.shard(key);
        {
            let map = shard.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(e) = map.get(key)
                && now < e.signed_at + u64::from(refresh)
                && now < e.expires
            {
                stats().hits.fetch_add(1, Ordering::Relaxed);
                return Some(e.rrsig.clone());
            }
        }
        stats().misses.fetch_add(1, Ordering::Relaxed);
        // Signed outside the lock: another worker may sign the same set at
        // once, which costs a signature, not correctness.
        let (rrsig, expires) = make()?;
        stats().signatures.fetch_add(1, Ordering::Relaxed);
        let mut map = shard.lock().unwrap_or_else(|e| e.into_inner());
        let cap = self.per_shard.load(Ordering::Relaxed) as usize;
        if map.len() >= cap && !map.contains_key(key) {
            // Drop an expired-soonest-ish victim: any entry; the shard is
            // full so iteration finds one at once.
            if let Some(victim) = map.keys().next().cloned() {
                map.remove(&victim);
            }
        }
        map.insert(
            key.into(),
            Entry {
                rrsig: rrsig.clone(),
                signed_at: now,
                expires,
            },
        );
        Some(rrsig)
    }

    /// (entries, earliest expiration) for metrics and the status API.
    pub fn summary(&self) -> (usize, Option<u64>) {
        let mut n = 0;
        let mut first: Option<u64> = None;
        for s in &self.shards {
            let map = s.lock().unwrap_or_else(|e| e.into_inner());
            n += map.len();
            for e in map.values() {
                first = Some(first.map_or(e.expires, |f| f.min(e.expires)));
            }
        }
        (n, first)
    }

    /// Empties the cache, and (through [`epoch`]) the per-thread fronts
    /// that hold its signatures.
    pub fn clear(&self) {
        EPOCH.fetch_add(1, Ordering::Relaxed);
        for s in &self.shards {
            s.lock().unwrap_or_else(|e| e.into_inner()).clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bitmap_windows() {
        // RFC 4034 §4.3 example: A MX RRSIG NSEC TYPE1234.
        let rd = nsec_rdata(b"\x00", &mut [1, 15, 46, 47, 1234]);
        assert_eq!(
            rd,
            [
                0x00, 0x00, 0x06, 0x40, 0x01, 0x00, 0x00, 0x00, 0x03, 0x04, 0x1b, 0x00, 0x00, 0x00,
                0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
                0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x20
            ]
        );
    }

    #[test]
    fn cache_is_bounded_and_refreshes() {
        let c = SigCache::new(SHARDS * 2);
        for i in 0..1000u32 {
            let k = i.to_be_bytes();
            c.get_or_sign(&k, 100, 50, || Some((Arc::from(&k[..]), 1000)));
        }
        assert!(c.summary().0 <= SHARDS * 2);
        let mut made = 0;
        for now in [100, 120, 149, 150] {
            c.get_or_sign(b"x", now, 50, || {
                made += 1;
                Some((Arc::from(&b"s"[..]), 1000))
            });
        }
        assert_eq!(made, 2, "signed at 100, reused until 150, signed again");
    }
}
