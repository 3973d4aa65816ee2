//! Server-wide EDNS settings, from `geosteer.yaml` and held by the
//! snapshot: our NSID (RFC 5001) and the DNS cookie secret, with the
//! RFC 9018 interoperable server cookie it makes and verifies.
//!
//! Per-response options are worked out from these in [`crate::dns::opt`].

use std::net::IpAddr;
use std::sync::OnceLock;
use std::time::Duration;

use crate::wire::Cookie;

/// Server-wide protocol settings, from `geosteer.yaml`.
#[derive(Debug, Clone, Default)]
pub struct Protocol {
    /// Sent to clients that ask (RFC 5001).
    pub nsid: Option<Box<[u8]>>,
    /// DNS cookies; `None` when `cookies: off`.
    pub cookies: Option<Cookies>,
}

/// Longest NSID we accept in the config: it rides on every answer that
/// asks for it, and 128 bytes names any host.
pub const MAX_NSID: usize = 128;

/// RFC 9018 §4.3: a server cookie is good for an hour, and a timestamp up
/// to five minutes ahead of our clock is accepted (clock skew in a fleet).
const COOKIE_PAST: u32 = 3600;
const COOKIE_FUTURE: u32 = 300;

/// The server cookie secret (RFC 9018 §4.4).
///
/// With `rotate`, the SipHash key of a cookie is derived from the secret
/// and the rotation period its timestamp falls in (`key = SipHash(secret,
/// period)`, two halves): the key changes every period, every instance
/// sharing the secret derives the same keys with no coordination, and a
/// cookie is checked with the key of its own timestamp, so one made just
/// before a rotation stays valid for its hour. Without rotation the secret
/// is the key itself, byte for byte RFC 9018 (what BIND and Knot do with
/// a shared `cookie-secret`).
///
/// Earlier secrets (`previous`) still verify the cookies they made, so an
/// operator rolls a shared secret over as RFC 9018 §5 describes.
#[derive(Clone)]
pub struct Cookies {
    secret: [u8; 16],
    previous: Vec<[u8; 16]>,
    rotate: Option<u32>,
}

impl std::fmt::Debug for Cookies {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the secret.
        f.debug_struct("Cookies")
            .field("rotate", &self.rotate)
            .finish_non_exhaustive()
    }
}

impl Cookies {
    pub fn new(secret: [u8; 16], rotate: Option<Duration>) -> Cookies {
        Cookies::with_previous(secret, Vec::new(), rotate)
    }

    /// `secret` makes cookies; it and every one of `previous` verify them.
    pub fn with_previous(
        secret: [u8; 16],
        previous: Vec<[u8; 16]>,
        rotate: Option<Duration>,
    ) -> Cookies {
        Cookies {
            secret,
            previous,
            rotate: rotate.map(|d| (d.as_secs().clamp(1, u64::from(u32::MAX))) as u32),
        }
    }

    /// A per-process random secret, the same for every snapshot (so a
    /// reload does not invalidate the cookies clients hold).
    pub fn generated(rotate: Option<Duration>) -> Cookies {
        static SECRET: OnceLock<[u8; 16]> = OnceLock::new();
        let secret = *SECRET.get_or_init(rand::random);
        Cookies::new(secret, rotate)
    }

    fn key(&self, timestamp: u32) -> [u8; 16] {
        self.key_from(&self.secret, timestamp)
    }

    fn key_from(&self, secret: &[u8; 16], timestamp: u32) -> [u8; 16] {
        match self.rotate {
            None => *secret,
            Some(period) => {
                let n = u64::from(timestamp / period);
                let mut key = [0u8; 16];
                for (half, out) in key.chunks_exact_mut(8).enumerate() {
                    let mut input = [0u8; 9];
                    input[..8].copy_from_slice(&n.to_be_bytes());
                    input[8] = half as u8;
                    out.copy_from_slice(&siphash24(secret, &input).to_le_bytes());
                }
                key
            }
        }
    }

    /// RFC 9018 §4.2: Version 1 | Reserved | Timestamp | Hash, where Hash
    /// is SipHash-2-4 over client cookie, version, reserved, timestamp and
    /// the client's address.
    #[inline]
    pub fn server_cookie(&self, client: &[u8; 8], ip: IpAddr, now: u32) -> [u8; 16] {
        Self::make(&self.key(now), client, ip, now)
    }

    fn make(key: &[u8; 16], client: &[u8; 8], ip: IpAddr, now: u32) -> [u8; 16] {
        let mut out = [0u8; 16];
        out[0] = 1;
        out[4..8].copy_from_slice(&now.to_be_bytes());
        let mut input = [0u8; 8 + 8 + 16];
        input[..8].copy_from_slice(client);
        input[8..16].copy_from_slice(&out[..8]);
        let n = match ip {
            IpAddr::V4(a) => {
                input[16..20].copy_from_slice(&a.octets());
                20
            }
            IpAddr::V6(a) => {
                input[16..32].copy_from_slice(&a.octets());
                32
            }
        };
        let hash = siphash24(key, &input[..n]);
        out[8..].copy_from_slice(&hash.to_le_bytes());
        out
    }

    /// Is the query's server cookie one we made for this client, less than
    /// an hour ago?
    #[inline]
    pub fn verify(&self, c: &Cookie<'_>, ip: IpAddr, now: u32) -> bool {
        let s = c.server();
        if s.len() != 16 || s[0] != 1 {
            return false;
        }
        let ts = u32::from_be_bytes([s[4], s[5], s[6], s[7]]);
        // Serial-number arithmetic (RFC 1982), as RFC 9018 §4.3 says.
        let age = now.wrapping_sub(ts) as i32;
        if age > COOKIE_PAST as i32 || age < -(COOKIE_FUTURE as i32) {
            return false;
        }
        if s[1..4] != [0, 0, 0] {
            return false;
        }
        std::iter::once(&self.secret)
            .chain(&self.previous)
            .any(|secret| {
                let expect = Self::make(&self.key_from(secret, ts), c.client(), ip, ts);
                // Constant-time compare of the hash.
                expect[8..]
                    .iter()
                    .zip(&s[8..])
                    .fold(0u8, |d, (a, b)| d | (a ^ b))
                    == 0
            })
    }
}

/// SipHash-2-4 with a 128-bit key, as RFC 9018 uses it. std's `SipHasher`
/// is exactly SipHash-2-4 over the bytes written (deprecated only because
/// std does not promise which hash `Hash` uses; here we call `write`
/// directly and pin the output with RFC 9018's test vectors).
#[allow(deprecated)]
fn siphash24(key: &[u8; 16], data: &[u8]) -> u64 {
    use std::hash::Hasher;
    let k0 = u64::from_le_bytes(key[..8].try_into().expect("8 bytes"));
    let k1 = u64::from_le_bytes(key[8..].try_into().expect("8 bytes"));
    let mut h = std::hash::SipHasher::new_with_keys(k0, k1);
    h.write(data);
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    fn rfc_secret() -> [u8; 16] {
        hex("e5e973e5a6b2a43f48e7dc849e37bfcf").try_into().unwrap()
    }

    /// RFC 9018 Appendix A: the published server cookies.
    #[test]
    fn rfc9018_test_vectors() {
        let c = Cookies::new(rfc_secret(), None);
        let client: [u8; 8] = hex("2464c4abcf10c957").try_into().unwrap();
        let ip: IpAddr = "198.51.100.100".parse().unwrap();
        assert_eq!(
            c.server_cookie(&client, ip, 1559731985).to_vec(),
            hex("010000005cf79f111f8130c3eee29480")
        );
        assert_eq!(
            c.server_cookie(&client, ip, 1559734385).to_vec(),
            hex("010000005cf7a871d4a564a1442aca77")
        );
        let client: [u8; 8] = hex("fc93fc62807ddb86").try_into().unwrap();
        let ip: IpAddr = "203.0.113.203".parse().unwrap();
        assert_eq!(
            c.server_cookie(&client, ip, 1559734700).to_vec(),
            hex("010000005cf7a9acf73a7810aca2381e")
        );
        // A.4: IPv6, and a secret rolled over: the new one makes cookies,
        // the old one still verifies the cookie it made.
        let old: [u8; 16] = hex("dd3bdf9344b678b185a6f5cb60fca715").try_into().unwrap();
        let new: [u8; 16] = hex("445536bcd2513298075a5d379663c962").try_into().unwrap();
        let c = Cookies::with_previous(new, vec![old], None);
        let client: [u8; 8] = hex("22681ab97d52c298").try_into().unwrap();
        let ip: IpAddr = "2001:db8:220:1:59de:d0f4:8769:82b8".parse().unwrap();
        let sent = hex("010000005cf7c57926556bd0934c72f8");
        assert!(c.verify(&ck(&cookie(client, &sent)), ip, 1559741961));
        assert!(!Cookies::new(new, None).verify(&ck(&cookie(client, &sent)), ip, 1559741961));
        assert_eq!(
            c.server_cookie(&client, ip, 1559741961).to_vec(),
            hex("010000005cf7c609a6bb79d16625507a")
        );
    }

    /// The COOKIE option's body: client cookie, then server cookie.
    fn cookie(client: [u8; 8], server: &[u8]) -> Vec<u8> {
        [&client[..], server].concat()
    }

    fn ck(body: &[u8]) -> Cookie<'_> {
        Cookie::parse(body).unwrap()
    }

    #[test]
    fn verify_window_address_and_rotation() {
        for rotate in [None, Some(Duration::from_secs(3600))] {
            let c = Cookies::new(rfc_secret(), rotate);
            let ip: IpAddr = "192.0.2.1".parse().unwrap();
            let client = [7u8; 8];
            let t = 1_800_000_000u32;
            let s = c.server_cookie(&client, ip, t);
            let q = cookie(client, &s);
            let q = ck(&q);
            assert!(c.verify(&q, ip, t));
            assert!(c.verify(&q, ip, t + 3600), "an hour old is still good");
            assert!(!c.verify(&q, ip, t + 3601), "older is not");
            assert!(c.verify(&q, ip, t - 300), "five minutes ahead of us");
            assert!(!c.verify(&q, ip, t - 301));
            assert!(
                !c.verify(&q, "192.0.2.2".parse().unwrap(), t),
                "other address"
            );
            assert!(
                !c.verify(&ck(&cookie([8; 8], &s)), ip, t),
                "other client cookie"
            );
            let mut bad = s;
            bad[15] ^= 1;
            assert!(!c.verify(&ck(&cookie(client, &bad)), ip, t));
            assert!(!c.verify(&ck(&cookie(client, &s[..8])), ip, t), "short");
            // Another instance with the same secret accepts it.
            assert!(Cookies::new(rfc_secret(), rotate).verify(&q, ip, t + 10));
            // Another secret does not.
            assert!(!Cookies::new([1; 16], rotate).verify(&q, ip, t));
        }
        // With rotation, the key changes from one period to the next.
        let c = Cookies::new(rfc_secret(), Some(Duration::from_secs(3600)));
        let raw = Cookies::new(rfc_secret(), None);
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        assert_ne!(
            c.server_cookie(&[1; 8], ip, 7200)[8..],
            raw.server_cookie(&[1; 8], ip, 7200)[8..]
        );
        assert_ne!(c.key(7199), c.key(7200));
        assert_eq!(c.key(7200), c.key(10799));
    }
}
