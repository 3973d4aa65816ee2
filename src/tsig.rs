//! TSIG (RFC 8945): shared-key HMAC signatures on DNS messages, with
//! ring's HMAC-SHA256/384/512. No I/O: keys come from `geosteer.yaml`
//! (`tsig:`, see [`crate::xfr::config`]), and the transfer code calls
//! [`verify_request`], [`Signer`] and [`Verifier`].
//!
//! A request's TSIG is checked in RFC 8945 §5.2's order: the key (BADKEY),
//! the MAC (BADSIG), the time against the fudge (BADTIME), the MAC's
//! truncation (BADTRUNC). Answers to a verified request are signed; a
//! multi-message answer (a zone transfer over TCP) is signed message by
//! message, each MAC chained to the one before (§5.3.1; we sign every
//! message, where the RFC allows every hundredth). The receiving side
//! accepts up to 99 unsigned messages between signed ones, as it must.

use std::sync::Arc;

use ring::hmac;

use crate::wire::{HEADER, MAX_NAME};

pub const TYPE_TSIG: u16 = 250;
const CLASS_ANY: u16 = 255;

/// RFC 8945 §5.2 errors (in the TSIG RR's Error field; the response's
/// rcode is NOTAUTH).
pub const BADSIG: u16 = 16;
pub const BADKEY: u16 = 17;
pub const BADTIME: u16 = 18;
pub const BADTRUNC: u16 = 22;

/// The fudge we sign with and accept at most (RFC 8945 §10: 300 s).
pub const FUDGE: u16 = 300;

/// An HMAC algorithm TSIG names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Algorithm {
    HmacSha256,
    HmacSha384,
    HmacSha512,
}

impl Algorithm {
    /// From its config or wire name (`hmac-sha256`, `HMAC-SHA256.`).
    pub fn from_name(s: &str) -> Option<Algorithm> {
        Some(
            match s.trim_end_matches('.').to_ascii_lowercase().as_str() {
                "hmac-sha256" => Algorithm::HmacSha256,
                "hmac-sha384" => Algorithm::HmacSha384,
                "hmac-sha512" => Algorithm::HmacSha512,
                _ => return None,
            },
        )
    }

    pub fn name(self) -> &'static str {
        match self {
            Algorithm::HmacSha256 => "hmac-sha256",
            Algorithm::HmacSha384 => "hmac-sha384",
            Algorithm::HmacSha512 => "hmac-sha512",
        }
    }

    /// The algorithm name in (lowercase, uncompressed) wire form.
    fn wire(self) -> &'static [u8] {
        match self {
            Algorithm::HmacSha256 => b"\x0bhmac-sha256\x00",
            Algorithm::HmacSha384 => b"\x0bhmac-sha384\x00",
            Algorithm::HmacSha512 => b"\x0bhmac-sha512\x00",
        }
    }

    fn ring(self) -> hmac::Algorithm {
        match self {
            Algorithm::HmacSha256 => hmac::HMAC_SHA256,
            Algorithm::HmacSha384 => hmac::HMAC_SHA384,
            Algorithm::HmacSha512 => hmac::HMAC_SHA512,
        }
    }

    /// Full MAC length in bytes.
    pub fn mac_len(self) -> usize {
        match self {
            Algorithm::HmacSha256 => 32,
            Algorithm::HmacSha384 => 48,
            Algorithm::HmacSha512 => 64,
        }
    }
}

/// A named shared secret.
pub struct Key {
    /// The name as configured (`xfr-key`), for logs and config.
    pub label: String,
    /// Lowercased wire form of the key name (`\x07xfr-key\x00`).
    pub name: Box<[u8]>,
    pub algorithm: Algorithm,
    key: hmac::Key,
}

impl std::fmt::Debug for Key {
    // Never the secret.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Key")
            .field("name", &self.label)
            .field("algorithm", &self.algorithm)
            .finish()
    }
}

impl Key {
    /// A key named `label` (a domain name) with `secret` (raw bytes).
    pub fn new(label: &str, algorithm: Algorithm, secret: &[u8]) -> Result<Key, String> {
        let name = crate::dnssec::parse_name(label)?;
        Ok(Key {
            label: label.trim_end_matches('.').to_string(),
            name,
            algorithm,
            key: hmac::Key::new(algorithm.ring(), secret),
        })
    }
}

/// The keys of `tsig:`, looked up by wire name.
#[derive(Debug, Default, Clone)]
pub struct Keyring(pub Vec<Arc<Key>>);

impl Keyring {
    /// By lowercased wire name.
    pub fn get(&self, name: &[u8]) -> Option<&Arc<Key>> {
        self.0.iter().find(|k| *k.name == *name)
    }

    /// By configured name (`xfr-key`).
    pub fn named(&self, label: &str) -> Option<&Arc<Key>> {
        let l = label.trim_end_matches('.');
        self.0.iter().find(|k| k.label.eq_ignore_ascii_case(l))
    }
}

/// A TSIG RR found at the end of a message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// Where the TSIG RR starts: the message without it is `msg[..start]`.
    pub start: usize,
    /// Key name, lowercased wire form.
    pub key: Vec<u8>,
    /// Algorithm name, lowercased wire form.
    pub algorithm: Vec<u8>,
    pub time_signed: u64,
    pub fudge: u16,
    pub mac: Vec<u8>,
    pub original_id: u16,
    pub error: u16,
    pub other: Vec<u8>,
}

/// A TSIG RR that is there but malformed, or not the last record: FORMERR.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Malformed;

fn rd16(p: &[u8], i: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*p.get(i)?, *p.get(i + 1)?]))
}

/// Reads a (possibly compressed) name at `pos`, lowercased and expanded;
/// returns it and the position after it.
fn read_name(p: &[u8], mut pos: usize) -> Option<(Vec<u8>, usize)> {
    let mut out = Vec::new();
    let mut end = None;
    let mut hops = 0;
    loop {
        let len = *p.get(pos)?;
        match len {
            0 => {
                out.push(0);
                return Some((out, end.unwrap_or(pos + 1)));
            }
            l if l & 0xC0 == 0xC0 => {
                let target = usize::from(l & 0x3F) << 8 | usize::from(*p.get(pos + 1)?);
                if target >= pos || hops > 127 {
                    return None;
                }
                end.get_or_insert(pos + 2);
                hops += 1;
                pos = target;
            }
            l if l <= 63 => {
                let label = p.get(pos + 1..pos + 1 + usize::from(l))?;
                out.push(l);
                out.extend(label.iter().map(u8::to_ascii_lowercase));
                if out.len() + 1 > MAX_NAME {
                    return None;
                }
                pos += 1 + usize::from(l);
            }
            _ => return None,
        }
    }
}

fn skip_name(p: &[u8], pos: usize) -> Option<usize> {
    read_name(p, pos).map(|(_, e)| e)
}

/// Finds the TSIG RR of a message: `Ok(None)` when there is none; an
/// error when one is there but malformed or not the last record
/// (RFC 8945 §5.1).
pub fn find(msg: &[u8]) -> Result<Option<Record>, Malformed> {
    if msg.len() < HEADER {
        return Err(Malformed);
    }
    let count = |i| u16::from_be_bytes([msg[i], msg[i + 1]]) as usize;
    let (qd, an, ns, ar) = (count(4), count(6), count(8), count(10));
    let mut pos = HEADER;
    for _ in 0..qd {
        pos = skip_name(msg, pos).ok_or(Malformed)? + 4;
    }
    let total = an + ns + ar;
    for i in 0..total {
        let start = pos;
        let (owner, after) = read_name(msg, pos).ok_or(Malformed)?;
        let rtype = rd16(msg, after).ok_or(Malformed)?;
        let rdlen = usize::from(rd16(msg, after + 8).ok_or(Malformed)?);
        let rdata = after + 10;
        let end = rdata + rdlen;
        if end > msg.len() {
            return Err(Malformed);
        }
        if rtype == TYPE_TSIG {
            // Only as the last additional record, once (§5.1).
            if i + 1 != total || i < an + ns || end != msg.len() {
                return Err(Malformed);
            }
            let class = rd16(msg, after + 2).ok_or(Malformed)?;
            if class != CLASS_ANY {
                return Err(Malformed);
            }
            let (algorithm, p) = read_name(msg, rdata).ok_or(Malformed)?;
            let field = |at: usize, n: usize| msg.get(at..at + n).ok_or(Malformed);
            let t = field(p, 6)?;
            let time_signed = t.iter().fold(0u64, |a, &b| a << 8 | u64::from(b));
            let fudge = rd16(msg, p + 6).ok_or(Malformed)?;
            let mac_len = usize::from(rd16(msg, p + 8).ok_or(Malformed)?);
            let mac = field(p + 10, mac_len)?.to_vec();
            let q = p + 10 + mac_len;
            let original_id = rd16(msg, q).ok_or(Malformed)?;
            let error = rd16(msg, q + 2).ok_or(Malformed)?;
            let other_len = usize::from(rd16(msg, q + 4).ok_or(Malformed)?);
            let other = field(q + 6, other_len)?.to_vec();
            if q + 6 + other_len != end {
                return Err(Malformed);
            }
            return Ok(Some(Record {
                start,
                key: owner,
                algorithm,
                time_signed,
                fudge,
                mac,
                original_id,
                error,
                other,
            }));
        }
        pos = end;
    }
    Ok(None)
}

/// Feeds the TSIG variables (RFC 8945 §4.3.3) to `ctx`.
fn variables(ctx: &mut hmac::Context, key: &Key, time: u64, fudge: u16, error: u16, other: &[u8]) {
    ctx.update(&key.name);
    ctx.update(&CLASS_ANY.to_be_bytes());
    ctx.update(&0u32.to_be_bytes());
    ctx.update(key.algorithm.wire());
    timers(ctx, time, fudge);
    ctx.update(&error.to_be_bytes());
    ctx.update(&(other.len() as u16).to_be_bytes());
    ctx.update(other);
}

fn timers(ctx: &mut hmac::Context, time: u64, fudge: u16) {
    ctx.update(&time.to_be_bytes()[2..]);
    ctx.update(&fudge.to_be_bytes());
}

/// Feeds a message (without its TSIG) with its ID replaced by the TSIG's
/// Original ID and ARCOUNT less the TSIG (§4.3.2).
fn message(ctx: &mut hmac::Context, msg: &[u8], original_id: u16, had_tsig: bool) {
    ctx.update(&original_id.to_be_bytes());
    ctx.update(&msg[2..10]);
    let ar = u16::from_be_bytes([msg[10], msg[11]]) - u16::from(had_tsig);
    ctx.update(&ar.to_be_bytes());
    ctx.update(&msg[12..]);
}

fn prior(ctx: &mut hmac::Context, mac: &[u8]) {
    ctx.update(&(mac.len() as u16).to_be_bytes());
    ctx.update(mac);
}

/// Constant-time comparison of `mac` with the start of `full`.
fn mac_matches(full: &[u8], mac: &[u8]) -> bool {
    mac.len() <= full.len() && full.iter().zip(mac).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
}

/// The outcome of checking a request's TSIG.
#[derive(Debug)]
pub enum Checked {
    /// No TSIG: an unsigned request.
    Unsigned,
    /// Signed with this key, MAC and time good: sign the answer.
    Good { key: Arc<Key>, request_mac: Vec<u8> },
    /// A TSIG error: answer NOTAUTH with this error in a TSIG RR, signed
    /// (BADTIME, BADTRUNC) when `key` is set, unsigned otherwise.
    Error {
        error: u16,
        key: Option<Arc<Key>>,
        record: Record,
    },
}

/// Checks the TSIG of a request at time `now` (Unix seconds) against
/// `keys`. `Err(Malformed)` is a FORMERR.
pub fn verify_request(msg: &[u8], keys: &Keyring, now: u64) -> Result<Checked, Malformed> {
    let Some(rec) = find(msg)? else {
        return Ok(Checked::Unsigned);
    };
    let key = keys
        .get(&rec.key)
        .filter(|k| *k.algorithm.wire() == *rec.algorithm);
    let Some(key) = key else {
        return Ok(Checked::Error {
            error: BADKEY,
            key: None,
            record: rec,
        });
    };
    let full = key.algorithm.mac_len();
    // §5.2.2.1: a MAC longer than the hash, or shorter than both 10 bytes
    // and half of it, is malformed.
    if rec.mac.len() > full || rec.mac.len() < 10.max(full / 2) {
        return Err(Malformed);
    }
    let mut ctx = hmac::Context::with_key(&key.key);
    message(&mut ctx, &msg[..rec.start], rec.original_id, true);
    variables(
        &mut ctx,
        key,
        rec.time_signed,
        rec.fudge,
        rec.error,
        &rec.other,
    );
    let tag = ctx.sign();
    if !mac_matches(tag.as_ref(), &rec.mac) {
        return Ok(Checked::Error {
            error: BADSIG,
            key: None,
            record: rec,
        });
    }
    if now.abs_diff(rec.time_signed) > u64::from(rec.fudge) {
        return Ok(Checked::Error {
            error: BADTIME,
            key: Some(key.clone()),
            record: rec,
        });
    }
    // Our policy: full-length MACs only (§5.2.2.1 allows refusing less).
    if rec.mac.len() < full {
        return Ok(Checked::Error {
            error: BADTRUNC,
            key: Some(key.clone()),
            record: rec,
        });
    }
    Ok(Checked::Good {
        key: key.clone(),
        request_mac: rec.mac,
    })
}

/// Appends a TSIG RR to the message in `buf[..len]` (ARCOUNT bumped);
/// returns the new length, `None` when `buf` is too small.
#[allow(clippy::too_many_arguments)]
fn append(
    buf: &mut [u8],
    len: usize,
    key_name: &[u8],
    alg: &[u8],
    time: u64,
    fudge: u16,
    mac: &[u8],
    original_id: u16,
    error: u16,
    other: &[u8],
) -> Option<usize> {
    let rdlen = alg.len() + 10 + mac.len() + 6 + other.len();
    let total = key_name.len() + 10 + rdlen;
    let out = buf.get_mut(len..len + total)?;
    let mut w = 0;
    let mut put = |b: &[u8]| {
        out[w..w + b.len()].copy_from_slice(b);
        w += b.len();
    };
    put(key_name);
    put(&TYPE_TSIG.to_be_bytes());
    put(&CLASS_ANY.to_be_bytes());
    put(&0u32.to_be_bytes());
    put(&(rdlen as u16).to_be_bytes());
    put(alg);
    put(&time.to_be_bytes()[2..]);
    put(&fudge.to_be_bytes());
    put(&(mac.len() as u16).to_be_bytes());
    put(mac);
    put(&original_id.to_be_bytes());
    put(&error.to_be_bytes());
    put(&(other.len() as u16).to_be_bytes());
    put(other);
    let ar = u16::from_be_bytes([buf[10], buf[11]]) + 1;
    buf[10..12].copy_from_slice(&ar.to_be_bytes());
    Some(len + total)
}

/// Signs the messages of one answer (or of one request and then checks
/// nothing): the first with the request's MAC, each later one chained to
/// the MAC before it.
pub struct Signer {
    key: Arc<Key>,
    /// The MAC the next message's covers first: the request's, then ours.
    prior: Vec<u8>,
    /// A first message (full variables) or a later one (timers only).
    first: bool,
}

impl Signer {
    /// For the answer to a request whose MAC was `request_mac`.
    pub fn response(key: Arc<Key>, request_mac: Vec<u8>) -> Signer {
        Signer {
            key,
            prior: request_mac,
            first: true,
        }
    }

    /// For a request we send (NOTIFY, SOA, AXFR/IXFR): no prior MAC.
    pub fn request(key: Arc<Key>) -> Signer {
        Signer {
            key,
            prior: Vec::new(),
            first: true,
        }
    }

    /// The key in use.
    pub fn key(&self) -> &Arc<Key> {
        &self.key
    }

    /// The MAC of the last message signed (what its answer is chained to).
    pub fn mac(&self) -> &[u8] {
        &self.prior
    }

    /// Signs `buf[..len]` at `now`, appending the TSIG; returns the new
    /// length (`None`: no room in `buf`).
    pub fn sign(&mut self, buf: &mut [u8], len: usize, now: u64) -> Option<usize> {
        self.sign_with(buf, len, now, 0, &[])
    }

    /// [`Signer::sign`] with a TSIG error and other data (BADTIME).
    pub fn sign_with(
        &mut self,
        buf: &mut [u8],
        len: usize,
        now: u64,
        error: u16,
        other: &[u8],
    ) -> Option<usize> {
        let msg = &buf[..len];
        let id = u16::from_be_bytes([msg[0], msg[1]]);
        let mut ctx = hmac::Context::with_key(&self.key.key);
        if !self.prior.is_empty() {
            prior(&mut ctx, &self.prior);
        }
        message(&mut ctx, msg, id, false);
        if self.first {
            variables(&mut ctx, &self.key, now, FUDGE, error, other);
        } else {
            timers(&mut ctx, now, FUDGE);
        }
        let mac = ctx.sign();
        let n = append(
            buf,
            len,
            &self.key.name,
            self.key.algorithm.wire(),
            now,
            FUDGE,
            mac.as_ref(),
            id,
            error,
            other,
        )?;
        self.prior = mac.as_ref().to_vec();
        self.first = false;
        Some(n)
    }

    /// [`Signer::sign`] on a growable message.
    pub fn sign_vec(&mut self, msg: &mut Vec<u8>, now: u64) {
        let len = msg.len();
        msg.resize(len + 512, 0);
        let n = self.sign(msg, len, now).expect("512 bytes hold a TSIG RR");
        msg.truncate(n);
    }
}

/// Appends an unsigned TSIG RR carrying `error` (BADKEY, BADSIG) for the
/// request's key and algorithm, with an empty MAC (§5.3.2); returns the
/// new length.
pub fn append_unsigned(buf: &mut [u8], len: usize, rec: &Record, error: u16) -> Option<usize> {
    append(
        buf,
        len,
        &rec.key,
        &rec.algorithm,
        rec.time_signed,
        rec.fudge,
        &[],
        rec.original_id,
        error,
        &[],
    )
}

/// Why an answer's TSIG does not check out.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("answer is not signed (TSIG expected)")]
    Unsigned,
    #[error("malformed TSIG record")]
    Malformed,
    #[error("answer signed with another key or algorithm")]
    WrongKey,
    #[error("bad TSIG signature (BADSIG): wrong key secret?")]
    BadSig,
    #[error("TSIG time {0} is outside the fudge (BADTIME): check the clocks")]
    BadTime(u64),
    #[error("the server said TSIG error {}", error_name(*.0))]
    Error(u16),
    #[error("more than 99 unsigned messages in a row")]
    TooManyUnsigned,
}

/// RFC 8945's names of the TSIG errors.
pub fn error_name(e: u16) -> String {
    match e {
        BADSIG => "BADSIG".into(),
        BADKEY => "BADKEY".into(),
        BADTIME => "BADTIME".into(),
        BADTRUNC => "BADTRUNC".into(),
        n => n.to_string(),
    }
}

/// Checks the answer(s) to a request we signed: the first message must be
/// signed, later ones may skip up to 99 (§5.3.1).
pub struct Verifier {
    key: Arc<Key>,
    prior: Vec<u8>,
    first: bool,
    /// Messages since the last signed one (their bytes, for the next MAC).
    pending: Vec<u8>,
    unsigned: usize,
}

impl Verifier {
    /// For the answer to a request signed by `signer`.
    pub fn new(signer: &Signer) -> Verifier {
        Verifier {
            key: signer.key.clone(),
            prior: signer.prior.clone(),
            first: true,
            pending: Vec::new(),
            unsigned: 0,
        }
    }

    /// Checks one message of the answer at time `now`.
    pub fn check(&mut self, msg: &[u8], now: u64) -> Result<(), VerifyError> {
        let rec = find(msg).map_err(|_| VerifyError::Malformed)?;
        let Some(rec) = rec else {
            if self.first {
                return Err(VerifyError::Unsigned);
            }
            self.unsigned += 1;
            if self.unsigned > 99 {
                return Err(VerifyError::TooManyUnsigned);
            }
            // Kept with its real ID and counts: they are what is digested.
            self.pending.extend_from_slice(msg);
            return Ok(());
        };
        if rec.key != *self.key.name || rec.algorithm != self.key.algorithm.wire() {
            return Err(VerifyError::WrongKey);
        }
        if rec.error != 0 && rec.mac.is_empty() {
            return Err(VerifyError::Error(rec.error));
        }
        let mut ctx = hmac::Context::with_key(&self.key.key);
        prior(&mut ctx, &self.prior);
        ctx.update(&self.pending);
        message(&mut ctx, &msg[..rec.start], rec.original_id, true);
        if self.first {
            variables(
                &mut ctx,
                &self.key,
                rec.time_signed,
                rec.fudge,
                rec.error,
                &rec.other,
            );
        } else {
            timers(&mut ctx, rec.time_signed, rec.fudge);
        }
        let tag = ctx.sign();
        if rec.mac.len() != self.key.algorithm.mac_len() || !mac_matches(tag.as_ref(), &rec.mac) {
            return Err(VerifyError::BadSig);
        }
        if rec.error != 0 {
            return Err(VerifyError::Error(rec.error));
        }
        if now.abs_diff(rec.time_signed) > u64::from(rec.fudge) {
            return Err(VerifyError::BadTime(rec.time_signed));
        }
        self.prior = rec.mac;
        self.first = false;
        self.pending.clear();
        self.unsigned = 0;
        Ok(())
    }

    /// Whether the last message checked was signed (a transfer must end
    /// on a signed message).
    pub fn settled(&self) -> bool {
        self.unsigned == 0 && !self.first
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(secret: &[u8]) -> Arc<Key> {
        Arc::new(Key::new("xfr-key", Algorithm::HmacSha256, secret).unwrap())
    }

    fn ring(k: &Arc<Key>) -> Keyring {
        Keyring(vec![k.clone()])
    }

    /// A SOA query for example. with ID 0x1234.
    fn query() -> Vec<u8> {
        let mut q = vec![0x12, 0x34, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        q.extend_from_slice(b"\x07example\x00\x00\x06\x00\x01");
        q
    }

    fn signed(k: &Arc<Key>, now: u64) -> Vec<u8> {
        let mut q = query();
        Signer::request(k.clone()).sign_vec(&mut q, now);
        q
    }

    #[test]
    fn a_signed_request_verifies_and_its_answer_too() {
        let k = key(b"0123456789abcdef0123456789abcdef");
        let q = signed(&k, 1_000_000);
        let Checked::Good { key, request_mac } = verify_request(&q, &ring(&k), 1_000_100).unwrap()
        else {
            panic!("not good");
        };
        // The answer: the query with QR set, signed against the request.
        let mut r = query();
        r[2] |= 0x80;
        let mut client = Signer::request(k.clone());
        let mut q2 = query();
        client.sign_vec(&mut q2, 1_000_000);
        assert_eq!(client.mac(), &request_mac[..]);
        Signer::response(key, request_mac).sign_vec(&mut r, 1_000_001);
        let mut v = Verifier::new(&client);
        v.check(&r, 1_000_002).unwrap();
        assert!(v.settled());
    }

    #[test]
    fn wrong_secret_time_and_key_are_told_apart() {
        let k = key(b"0123456789abcdef0123456789abcdef");
        let other = key(b"not the same secret at all......");
        let q = signed(&other, 1_000_000);
        assert!(matches!(
            verify_request(&q, &ring(&k), 1_000_000),
            Ok(Checked::Error {
                error: BADSIG,
                key: None,
                ..
            })
        ));
        let q = signed(&k, 1_000_000);
        assert!(matches!(
            verify_request(&q, &ring(&k), 1_000_301),
            Ok(Checked::Error {
                error: BADTIME,
                key: Some(_),
                ..
            })
        ));
        let stranger = Arc::new(Key::new("other", Algorithm::HmacSha256, b"x").unwrap());
        assert!(matches!(
            verify_request(&q, &ring(&stranger), 1_000_000),
            Ok(Checked::Error { error: BADKEY, .. })
        ));
        // The question's type changed after signing.
        let mut tampered = q.clone();
        tampered[HEADER + 10] = 2;
        assert!(matches!(
            verify_request(&tampered, &ring(&k), 1_000_000),
            Ok(Checked::Error { error: BADSIG, .. })
        ));
        assert!(matches!(
            verify_request(&query(), &ring(&k), 0),
            Ok(Checked::Unsigned)
        ));
    }

    #[test]
    fn a_stream_chains_macs_and_tolerates_unsigned_messages() {
        let k = key(b"secret-secret-secret-secret-1234");
        let mut client = Signer::request(k.clone());
        let mut q = query();
        client.sign_vec(&mut q, 5000);
        let Checked::Good { key, request_mac } = verify_request(&q, &ring(&k), 5000).unwrap()
        else {
            panic!()
        };
        let mut server = Signer::response(key, request_mac);
        let mut v = Verifier::new(&client);
        for i in 0..5 {
            let mut m = query();
            m[2] |= 0x80;
            m[HEADER + 1] = b'a' + i;
            if i == 2 {
                // Unsigned in the middle (allowed, §5.3.1): the next MAC
                // covers it. Our signer signs every message, so the gap is
                // made by hand.
                v.check(&m, 5000).unwrap();
                let mut next = query();
                next[2] |= 0x80;
                let mut ctx = hmac::Context::with_key(&k.key);
                prior(&mut ctx, &server.prior);
                ctx.update(&m);
                message(&mut ctx, &next, 0x1234, false);
                timers(&mut ctx, 5000, FUDGE);
                let mac = ctx.sign();
                let len = next.len();
                next.resize(len + 200, 0);
                let n = append(
                    &mut next,
                    len,
                    &k.name,
                    k.algorithm.wire(),
                    5000,
                    FUDGE,
                    mac.as_ref(),
                    0x1234,
                    0,
                    &[],
                )
                .unwrap();
                next.truncate(n);
                server.prior = mac.as_ref().to_vec();
                assert!(!v.settled());
                v.check(&next, 5000).unwrap();
                continue;
            }
            server.sign_vec(&mut m, 5000);
            v.check(&m, 5000).unwrap();
        }
        assert!(v.settled());
        // A message signed out of order breaks the chain.
        let mut m = query();
        Signer::response(k.clone(), vec![1; 32]).sign_vec(&mut m, 5000);
        assert_eq!(v.check(&m, 5000), Err(VerifyError::BadSig));
    }

    #[test]
    fn tsig_not_last_is_malformed() {
        let k = key(b"0123456789abcdef0123456789abcdef");
        let mut q = signed(&k, 1);
        // Add an OPT after the TSIG.
        q.extend_from_slice(&[0, 0, 41, 4, 0xd0, 0, 0, 0, 0, 0, 0]);
        let ar = u16::from_be_bytes([q[10], q[11]]) + 1;
        q[10..12].copy_from_slice(&ar.to_be_bytes());
        assert_eq!(find(&q), Err(Malformed));
    }

    /// What the `transfer` fuzz target does: a signed request cut and
    /// flipped at random gives errors, never a panic.
    #[test]
    fn damaged_messages_never_panic() {
        let k = key(b"0123456789abcdef0123456789abcdef");
        let good = signed(&k, 7);
        let mut x = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let mut m = good.clone();
            let at = (x % m.len() as u64) as usize;
            m[at] = (x >> 32) as u8;
            m.truncate(((x >> 16) as usize % (m.len() + 1)).max(at.min(m.len())));
            let _ = find(&m);
            let _ = verify_request(&m, &ring(&k), 7);
        }
    }
}
