//! Client networks, the HMAC secret, beacon tokens and resolver-probe ids.
//!
//! A token binds a beacon to the network that fetched the config: it is
//! signed (HMAC-SHA256, truncated to 128 bits), expires, and names the
//! client's /24 (/56 for IPv6), the zone and a random id. The same id,
//! with its own short MAC, is the first label of the resolver probe
//! `<id>.rum.<zone>`, so the DNS side can tell its probes from a
//! random-subdomain flood without keeping state.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

use data_encoding::{BASE64URL_NOPAD, HEXLOWER};
use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use ring::hmac;

/// How long a config's token is good for, seconds.
pub const TOKEN_TTL: u64 = 600;

/// A client (or resolver) network as RUM keys it: the /24 of an IPv4
/// address, the /56 of an IPv6 one. Packed in a u64: the /24's 24 bits, or
/// the /56's 56 bits with bit 56 set.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Net(u64);

const V6: u64 = 1 << 56;

impl Net {
    /// The network of `ip` (an IPv4 address inside IPv6 counts as IPv4,
    /// as steering locates it).
    pub fn of(ip: IpAddr) -> Net {
        match crate::geo::normalize(ip) {
            IpAddr::V4(a) => Net(u64::from(u32::from(a) >> 8)),
            IpAddr::V6(a) => Net((u128::from(a) >> 72) as u64 | V6),
        }
    }

    /// The network as a prefix.
    pub fn ipnet(self) -> IpNet {
        if self.0 & V6 == 0 {
            let a = Ipv4Addr::from((self.0 as u32) << 8);
            IpNet::V4(Ipv4Net::new_assert(a, 24))
        } else {
            let a = Ipv6Addr::from(u128::from(self.0 & !V6) << 72);
            IpNet::V6(Ipv6Net::new_assert(a, 56))
        }
    }

    /// The network of a /24 or /56 prefix (None for other lengths).
    pub fn from_ipnet(n: IpNet) -> Option<Net> {
        let want = if n.network().is_ipv4() { 24 } else { 56 };
        (n.prefix_len() == want && !is_mapped(n.network())).then(|| Net::of(n.network()))
    }

    pub fn is_v6(self) -> bool {
        self.0 & V6 != 0
    }

    /// The packed form (persisted, shared).
    pub fn bits(self) -> u64 {
        self.0
    }

    /// From [`Net::bits`]; None for bits no network packs to.
    pub fn from_bits(b: u64) -> Option<Net> {
        (b < 1 << 24 || b & !((V6 << 1) - 1) == 0 && b & V6 != 0).then_some(Net(b))
    }
}

/// IPv4 inside IPv6 (v4-mapped, 6to4, Teredo): keyed as IPv4.
fn is_mapped(ip: IpAddr) -> bool {
    ip.is_ipv6() && crate::geo::normalize(ip).is_ipv4()
}

impl std::fmt::Display for Net {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.ipnet())
    }
}

/// Why the secret file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}:{line}: a RUM secret is 64 hex digits (32 bytes)")]
    Format { path: PathBuf, line: usize },
    #[error("{path}: no secret in the file")]
    Empty { path: PathBuf },
}

/// The HMAC keys: the first signs, all verify (so a fleet can rotate).
pub struct Secret {
    keys: Vec<hmac::Key>,
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Secret({} keys)", self.keys.len())
    }
}

impl Secret {
    /// A secret from raw key bytes (tests).
    #[cfg(test)]
    pub fn from_bytes(keys: &[[u8; 32]]) -> Secret {
        Secret {
            keys: keys
                .iter()
                .map(|k| hmac::Key::new(hmac::HMAC_SHA256, k))
                .collect(),
        }
    }

    /// Reads `path` (one key a line, 64 hex digits, `#` comments), or
    /// writes a new random key there (mode 0600) when it does not exist.
    pub fn load_or_create(path: &Path) -> Result<Secret, SecretError> {
        let io = |source| SecretError::Io {
            path: path.to_path_buf(),
            source,
        };
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                use std::io::Write;
                use std::os::unix::fs::OpenOptionsExt;
                let key: [u8; 32] = rand::random();
                let line = format!("{}\n", HEXLOWER.encode(&key));
                // create_new: two instances starting at once agree on one.
                match std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(path)
                {
                    Ok(mut f) => {
                        f.write_all(line.as_bytes()).map_err(io)?;
                        f.sync_all().map_err(io)?;
                        tracing::info!(file = %path.display(), "rum: generated a new token secret (share it across a fleet)");
                        line
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                        std::fs::read_to_string(path).map_err(io)?
                    }
                    Err(e) => return Err(io(e)),
                }
            }
            Err(e) => return Err(io(e)),
        };
        {
            use std::os::unix::fs::PermissionsExt;
            if let Ok(m) = std::fs::metadata(path)
                && m.permissions().mode() & 0o077 != 0
            {
                tracing::warn!(file = %path.display(), "rum secret file is readable by group or others; chmod 600 it");
            }
        }
        let mut keys = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let bytes = HEXLOWER
                .decode(line.to_ascii_lowercase().as_bytes())
                .ok()
                .filter(|b| b.len() == 32)
                .ok_or(SecretError::Format {
                    path: path.to_path_buf(),
                    line: i + 1,
                })?;
            keys.push(hmac::Key::new(hmac::HMAC_SHA256, &bytes));
        }
        if keys.is_empty() {
            return Err(SecretError::Empty {
                path: path.to_path_buf(),
            });
        }
        Ok(Secret { keys })
    }

    fn sign(&self, parts: &[&[u8]]) -> [u8; MAC] {
        mac_with(&self.keys[0], parts)
    }

    /// Whether `mac` is some key's MAC of `parts` (compared in constant time).
    fn verify(&self, parts: &[&[u8]], mac: &[u8]) -> bool {
        self.keys.iter().any(|k| {
            let want = mac_with(k, parts);
            want.len() == mac.len() && want.iter().zip(mac).fold(0u8, |a, (x, y)| a | (x ^ y)) == 0
        })
    }
}

/// Bytes of a token's MAC.
const MAC: usize = 16;
/// Bytes of a probe id's MAC.
const PROBE_MAC: usize = 4;
const VERSION: u8 = 1;

fn mac_with(key: &hmac::Key, parts: &[&[u8]]) -> [u8; MAC] {
    let mut ctx = hmac::Context::with_key(key);
    for p in parts {
        ctx.update(p);
    }
    let tag = ctx.sign();
    let mut out = [0u8; MAC];
    out.copy_from_slice(&tag.as_ref()[..MAC]);
    out
}

/// A page view's id: in its token and in its resolver probe name.
pub type Id = [u8; 8];

/// What a valid token says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Claims {
    pub net: Net,
    /// Unix seconds after which the token is refused.
    pub expires: u64,
    pub id: Id,
    /// The zone (presentation form, with the final dot).
    pub zone: String,
}

/// Why a token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("malformed token")]
    Malformed,
    #[error("bad signature")]
    Signature,
    #[error("token expired")]
    Expired,
    #[error("token issued to another network")]
    OtherNetwork,
}

impl Secret {
    /// A signed token for `claims`.
    pub fn token(&self, c: &Claims) -> String {
        let mut payload = Vec::with_capacity(22 + c.zone.len() + MAC);
        payload.push(VERSION);
        payload.extend_from_slice(&c.net.bits().to_be_bytes());
        payload.extend_from_slice(&c.expires.to_be_bytes());
        payload.extend_from_slice(&c.id);
        payload.push(c.zone.len().min(255) as u8);
        payload.extend_from_slice(&c.zone.as_bytes()[..c.zone.len().min(255)]);
        let mac = self.sign(&[b"token", &payload]);
        payload.extend_from_slice(&mac);
        BASE64URL_NOPAD.encode(&payload)
    }

    /// The claims of a token presented from network `from` at `now`.
    pub fn verify_token(&self, token: &str, from: Net, now: u64) -> Result<Claims, TokenError> {
        if token.len() > 512 {
            return Err(TokenError::Malformed);
        }
        let raw = BASE64URL_NOPAD
            .decode(token.as_bytes())
            .map_err(|_| TokenError::Malformed)?;
        if raw.len() < 26 + MAC || raw[0] != VERSION {
            return Err(TokenError::Malformed);
        }
        let (payload, mac) = raw.split_at(raw.len() - MAC);
        let zlen = usize::from(payload[25]);
        if payload.len() != 26 + zlen {
            return Err(TokenError::Malformed);
        }
        if !self.verify(&[b"token", payload], mac) {
            return Err(TokenError::Signature);
        }
        let u64_at = |i: usize| u64::from_be_bytes(payload[i..i + 8].try_into().expect("8 bytes"));
        let net = Net::from_bits(u64_at(1)).ok_or(TokenError::Malformed)?;
        let expires = u64_at(9);
        let id: Id = payload[17..25].try_into().expect("8 bytes");
        let zone = std::str::from_utf8(&payload[26..])
            .map_err(|_| TokenError::Malformed)?
            .to_string();
        if now > expires {
            return Err(TokenError::Expired);
        }
        if net != from {
            return Err(TokenError::OtherNetwork);
        }
        Ok(Claims {
            net,
            expires,
            id,
            zone,
        })
    }

    /// The first label of the resolver probe for page view `id`: the id
    /// and a short MAC, in lowercase hex (resolvers may change the case).
    pub fn probe_label(&self, id: &Id) -> String {
        let mac = self.sign(&[b"probe", id]);
        let mut b = [0u8; 8 + PROBE_MAC];
        b[..8].copy_from_slice(id);
        b[8..].copy_from_slice(&mac[..PROBE_MAC]);
        HEXLOWER.encode(&b)
    }

    /// The id in a probe label, if the label is one of ours.
    pub fn probe_id(&self, label: &[u8]) -> Option<Id> {
        if label.len() != 2 * (8 + PROBE_MAC) {
            return None;
        }
        let b = HEXLOWER.decode(&label.to_ascii_lowercase()).ok()?;
        let id: Id = b[..8].try_into().ok()?;
        let ok = self.keys.iter().any(|k| {
            let m = mac_with(k, &[b"probe", &id]);
            m[..PROBE_MAC]
                .iter()
                .zip(&b[8..])
                .fold(0u8, |a, (x, y)| a | (x ^ y))
                == 0
        });
        ok.then_some(id)
    }
}

/// The address a request really came from: the peer, or when the peer is
/// a trusted proxy, the right-most `X-Forwarded-For` address that is not
/// itself a trusted proxy (the left-most ones are the client's to forge).
pub fn client_addr(peer: IpAddr, forwarded: Option<&str>, trusted: &[IpNet]) -> IpAddr {
    let trusts = |a: &IpAddr| trusted.iter().any(|n| n.contains(a));
    if !trusts(&peer) {
        return peer;
    }
    let Some(list) = forwarded else { return peer };
    let mut last = peer;
    for part in list.rsplit(',') {
        let Ok(a) = part.trim().parse::<IpAddr>() else {
            // Garbage in the chain: stop at what we know.
            return last;
        };
        if !trusts(&a) {
            return a;
        }
        last = a;
    }
    last
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn nets() {
        let n = Net::of(ip("198.51.100.77"));
        assert_eq!(n.to_string(), "198.51.100.0/24");
        assert_eq!(Net::of(ip("::ffff:198.51.100.1")), n);
        let v6 = Net::of(ip("2001:db8:aa:bbcc::1"));
        assert_eq!(v6.to_string(), "2001:db8:aa:bb00::/56");
        assert!(v6.is_v6() && !n.is_v6());
        assert_eq!(Net::from_bits(n.bits()), Some(n));
        assert_eq!(Net::from_bits(v6.bits()), Some(v6));
        assert_eq!(Net::from_bits(1 << 30), None);
        assert_eq!(Net::from_ipnet("198.51.100.0/24".parse().unwrap()), Some(n));
        assert_eq!(Net::from_ipnet("198.51.0.0/16".parse().unwrap()), None);
        assert_eq!(
            Net::from_ipnet("2001:db8:aa:bb00::/56".parse().unwrap()),
            Some(v6)
        );
    }

    #[test]
    fn tokens_bind_network_and_expire() {
        let s = Secret::from_bytes(&[[7; 32]]);
        let c = Claims {
            net: Net::of(ip("192.0.2.9")),
            expires: 1000,
            id: [1, 2, 3, 4, 5, 6, 7, 8],
            zone: "cdn.example.".into(),
        };
        let t = s.token(&c);
        assert_eq!(s.verify_token(&t, c.net, 999), Ok(c.clone()));
        assert_eq!(s.verify_token(&t, c.net, 1001), Err(TokenError::Expired));
        assert_eq!(
            s.verify_token(&t, Net::of(ip("192.0.3.9")), 999),
            Err(TokenError::OtherNetwork)
        );
        // Another fleet's secret, a flipped bit, junk.
        let other = Secret::from_bytes(&[[8; 32]]);
        assert_eq!(
            other.verify_token(&t, c.net, 999),
            Err(TokenError::Signature)
        );
        let mut raw = BASE64URL_NOPAD.decode(t.as_bytes()).unwrap();
        raw[5] ^= 1;
        let forged = BASE64URL_NOPAD.encode(&raw);
        assert_eq!(
            s.verify_token(&forged, c.net, 999),
            Err(TokenError::Signature)
        );
        for junk in ["", "x", "!!!!", &"A".repeat(600)] {
            assert_eq!(
                s.verify_token(junk, c.net, 0),
                Err(TokenError::Malformed),
                "{junk}"
            );
        }
        // A rotated secret still verifies tokens of the old key.
        let rotated = Secret::from_bytes(&[[9; 32], [7; 32]]);
        assert!(rotated.verify_token(&t, c.net, 999).is_ok());
    }

    #[test]
    fn probe_labels() {
        let s = Secret::from_bytes(&[[7; 32]]);
        let id = [9u8; 8];
        let label = s.probe_label(&id);
        assert_eq!(label.len(), 24);
        assert_eq!(s.probe_id(label.as_bytes()), Some(id));
        assert_eq!(s.probe_id(label.to_uppercase().as_bytes()), Some(id));
        let mut bad = label.clone().into_bytes();
        bad[23] = if bad[23] == b'0' { b'1' } else { b'0' };
        assert_eq!(s.probe_id(&bad), None);
        assert_eq!(s.probe_id(b"www"), None);
    }

    #[test]
    fn forwarded_only_from_trusted_proxies() {
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let peer = ip("10.1.1.1");
        assert_eq!(
            client_addr(ip("192.0.2.1"), Some("1.2.3.4"), &trusted),
            ip("192.0.2.1")
        );
        assert_eq!(client_addr(peer, Some("1.2.3.4"), &trusted), ip("1.2.3.4"));
        // The client prepends a forgery; the proxy appends the real one.
        assert_eq!(
            client_addr(peer, Some("6.6.6.6, 1.2.3.4, 10.2.2.2"), &trusted),
            ip("1.2.3.4")
        );
        assert_eq!(client_addr(peer, Some("junk"), &trusted), peer);
        assert_eq!(client_addr(peer, None, &trusted), peer);
    }

    #[test]
    fn secret_file_is_made_private_and_read_back() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("rum.secret");
        let a = Secret::load_or_create(&p).unwrap();
        let mode = std::fs::metadata(&p).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let b = Secret::load_or_create(&p).unwrap();
        let c = Claims {
            net: Net::of(ip("192.0.2.1")),
            expires: 10,
            id: [0; 8],
            zone: "z.".into(),
        };
        assert!(b.verify_token(&a.token(&c), c.net, 1).is_ok());
        std::fs::write(&p, "not hex\n").unwrap();
        let e = Secret::load_or_create(&p).unwrap_err().to_string();
        assert!(e.contains(":1: a RUM secret is 64 hex digits"), "{e}");
    }
}
