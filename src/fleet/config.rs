//! The `fleet:` section of `geosteer.yaml` and its validated form.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Deserializer};

/// Where the etcd password comes from when `password:` is not in the file.
pub const PASSWORD_ENV: &str = "GEOSTEER_ETCD_PASSWORD";

/// How many live instances must see an edge down for the fleet to take it
/// out (`health_quorum`). Counted over the live instances that probe the
/// edge, this one included.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Quorum {
    /// More than half.
    Majority,
    /// Every one of them.
    All,
    /// Any one of them.
    Any,
    /// At least this many.
    Count(u32),
    /// At least this share (0 < f <= 1).
    Fraction(f64),
}

impl Quorum {
    /// Whether `down` of `voters` instances seeing the edge down takes it out.
    pub fn is_down(self, down: usize, voters: usize) -> bool {
        if voters == 0 {
            return false;
        }
        match self {
            Quorum::Majority => down * 2 > voters,
            Quorum::All => down == voters,
            Quorum::Any => down >= 1,
            Quorum::Count(n) => down >= n as usize,
            Quorum::Fraction(f) => down as f64 >= f * voters as f64,
        }
    }

    fn parse(s: &str) -> Result<Quorum, String> {
        let s = s.trim();
        match s {
            "majority" => return Ok(Quorum::Majority),
            "all" => return Ok(Quorum::All),
            "any" => return Ok(Quorum::Any),
            _ => {}
        }
        if let Ok(n) = s.parse::<u32>() {
            return if n == 0 {
                Err("health_quorum: a count must be at least 1".into())
            } else {
                Ok(Quorum::Count(n))
            };
        }
        match s.parse::<f64>() {
            Ok(f) if f > 0.0 && f <= 1.0 => Ok(Quorum::Fraction(f)),
            Ok(f) => Err(format!("health_quorum: fraction {f} is not within (0, 1]")),
            Err(_) => Err(format!(
                "health_quorum: {s:?} is not majority, all, any, a count or a fraction"
            )),
        }
    }
}

impl std::fmt::Display for Quorum {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Quorum::Majority => f.write_str("majority"),
            Quorum::All => f.write_str("all"),
            Quorum::Any => f.write_str("any"),
            Quorum::Count(n) => write!(f, "{n}"),
            Quorum::Fraction(x) => write!(f, "{x}"),
        }
    }
}

/// Accepts `majority`, `2` or `0.66` (YAML gives the last two as numbers).
fn de_quorum<'de, D: Deserializer<'de>>(d: D) -> Result<Quorum, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        N(u64),
        F(f64),
        S(String),
    }
    let s = match Raw::deserialize(d)? {
        Raw::N(n) => n.to_string(),
        Raw::F(f) => f.to_string(),
        Raw::S(s) => s,
    };
    Quorum::parse(&s).map_err(serde::de::Error::custom)
}

fn default_prefix() -> String {
    "/geosteer/".into()
}

fn default_quorum() -> Quorum {
    Quorum::Majority
}

fn default_lease_ttl() -> Duration {
    Duration::from_secs(10)
}

fn default_timeout() -> Duration {
    Duration::from_secs(2)
}

/// `fleet:` as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FleetRaw {
    /// etcd client URLs (`http://` or, with TLS, `https://`).
    pub etcd: Vec<String>,
    #[serde(default = "default_prefix")]
    pub prefix: String,
    /// Unique in the fleet; default: the host name.
    #[serde(default)]
    pub instance: Option<String>,
    #[serde(default = "default_quorum", deserialize_with = "de_quorum")]
    pub health_quorum: Quorum,
    /// TTL of this instance's lease: its verdicts stop counting this long
    /// after it was last heard from.
    #[serde(default = "default_lease_ttl", with = "crate::duration")]
    pub lease_ttl: Duration,
    /// Bound on every etcd call (connect, read, write).
    #[serde(default = "default_timeout", with = "crate::duration")]
    pub timeout: Duration,
    /// CA bundle (PEM) that signed the etcd servers' certificates.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Client certificate (PEM) for etcd's `--client-cert-auth`.
    #[serde(default)]
    pub cert_file: Option<PathBuf>,
    #[serde(default)]
    pub key_file: Option<PathBuf>,
    #[serde(default)]
    pub username: Option<String>,
    /// Default: the `GEOSTEER_ETCD_PASSWORD` environment variable.
    #[serde(default)]
    pub password: Option<String>,
}

/// The validated `fleet:` section, paths resolved against the config's
/// directory.
#[derive(Debug, Clone, PartialEq)]
pub struct FleetConfig {
    pub etcd: Vec<String>,
    /// Always ends with `/`.
    pub prefix: String,
    pub instance: String,
    pub health_quorum: Quorum,
    pub lease_ttl: Duration,
    pub timeout: Duration,
    pub ca_file: Option<PathBuf>,
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
    pub username: Option<String>,
    pub password: Option<String>,
}

/// The host name, for the default instance name.
fn hostname() -> Option<String> {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname NUL-terminates
    // or truncates within it.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return None;
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8(buf[..end].to_vec())
        .ok()
        .filter(|s| !s.is_empty())
}

impl FleetRaw {
    /// Checks the section; `base` is the config file's directory.
    pub fn validate(self, base: &Path) -> Result<FleetConfig, String> {
        if self.etcd.is_empty() {
            return Err("fleet.etcd: at least one etcd URL is needed".into());
        }
        let tls = self.ca_file.is_some() || self.cert_file.is_some();
        for url in &self.etcd {
            let ok = url.starts_with("http://") || url.starts_with("https://");
            if !ok {
                return Err(format!(
                    "fleet.etcd: {url:?} must start with http:// or https://"
                ));
            }
            if tls && url.starts_with("http://") {
                return Err(format!(
                    "fleet.etcd: {url:?} is plain http but ca_file/cert_file are set; use https://"
                ));
            }
        }
        if self.cert_file.is_some() != self.key_file.is_some() {
            return Err("fleet: cert_file and key_file go together".into());
        }
        if self.password.is_some() && self.username.is_none() {
            return Err("fleet: password without username".into());
        }
        let mut prefix = self.prefix;
        if prefix.is_empty() {
            return Err("fleet.prefix: must not be empty".into());
        }
        if !prefix.ends_with('/') {
            prefix.push('/');
        }
        let instance = match self.instance.or_else(hostname) {
            Some(i) => i,
            None => return Err("fleet.instance: not set and the host name is unknown".into()),
        };
        if instance.is_empty()
            || instance.len() > 128
            || !instance
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
        {
            return Err(format!(
                "fleet.instance: {instance:?} must be 1-128 characters of letters, digits, '-', '_', '.', ':'"
            ));
        }
        if self.lease_ttl < Duration::from_secs(2) {
            return Err("fleet.lease_ttl: must be at least 2s (etcd's minimum lease)".into());
        }
        if self.timeout.is_zero() {
            return Err("fleet.timeout: must be greater than zero".into());
        }
        Ok(FleetConfig {
            etcd: self.etcd,
            prefix,
            instance,
            health_quorum: self.health_quorum,
            lease_ttl: self.lease_ttl,
            timeout: self.timeout,
            ca_file: self.ca_file.map(|p| base.join(p)),
            cert_file: self.cert_file.map(|p| base.join(p)),
            key_file: self.key_file.map(|p| base.join(p)),
            username: self.username,
            password: self.password,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quorum_rules() {
        use Quorum::*;
        assert!(!Majority.is_down(1, 3));
        assert!(Majority.is_down(2, 3));
        assert!(!Majority.is_down(1, 2));
        assert!(Majority.is_down(1, 1));
        assert!(!All.is_down(2, 3));
        assert!(All.is_down(3, 3));
        assert!(Any.is_down(1, 3));
        assert!(!Any.is_down(0, 3));
        assert!(Count(2).is_down(2, 5));
        assert!(!Count(2).is_down(1, 5));
        assert!(Fraction(0.5).is_down(2, 4));
        assert!(!Fraction(0.5).is_down(1, 4));
        assert!(!Majority.is_down(0, 0));
    }

    #[test]
    fn fleet_section_parses_and_validates() {
        use crate::config::ServerConfig;
        let c = ServerConfig::from_str(
            "fleet:\n  etcd: [\"http://10.0.0.1:2379\"]\n  instance: ns1\n  health_quorum: 2\n  prefix: /gs\n",
            Path::new("/etc/geosteer/geosteer.yaml"),
        )
        .unwrap();
        let f = c.fleet.unwrap();
        assert_eq!(f.health_quorum, Quorum::Count(2));
        assert_eq!(f.prefix, "/gs/");
        assert_eq!(f.lease_ttl, Duration::from_secs(10));
        let c = ServerConfig::from_str(
            "fleet:\n  etcd: [\"https://e:2379\"]\n  instance: a\n  health_quorum: 0.5\n  ca_file: ca.pem\n",
            Path::new("/etc/geosteer/geosteer.yaml"),
        )
        .unwrap();
        let f = c.fleet.unwrap();
        assert_eq!(f.health_quorum, Quorum::Fraction(0.5));
        assert_eq!(
            f.ca_file.as_deref(),
            Some(Path::new("/etc/geosteer/ca.pem"))
        );
        assert!(
            ServerConfig::from_str("{}\n", Path::new("g.yaml"))
                .unwrap()
                .fleet
                .is_none()
        );
        for (bad, why) in [
            ("fleet:\n  etcd: []\n  instance: a\n", "at least one"),
            (
                "fleet:\n  etcd: [\"http://e:1\"]\n  instance: a\n  ca_file: x\n",
                "plain http",
            ),
            ("fleet:\n  etcd: [\"e:1\"]\n  instance: a\n", "http://"),
            (
                "fleet:\n  etcd: [\"http://e:1\"]\n  instance: a/b\n",
                "fleet.instance",
            ),
            (
                "fleet:\n  etcd: [\"http://e:1\"]\n  instance: a\n  health_quorum: most\n",
                "health_quorum",
            ),
            (
                "fleet:\n  etcd: [\"http://e:1\"]\n  instance: a\n  lease_ttl: 1s\n",
                "lease_ttl",
            ),
            (
                "fleet:\n  etcd: [\"http://e:1\"]\n  instance: a\n  password: x\n",
                "username",
            ),
            (
                "fleet:\n  etcd: [\"http://e:1\"]\n  instance: a\n  colour: red\n",
                "unknown key `colour`",
            ),
        ] {
            let e = ServerConfig::from_str(bad, Path::new("g.yaml")).unwrap_err();
            assert!(e.to_string().contains(why), "{bad}: {e}");
        }
    }

    #[test]
    fn quorum_parse() {
        assert_eq!(Quorum::parse("majority"), Ok(Quorum::Majority));
        assert_eq!(Quorum::parse("2"), Ok(Quorum::Count(2)));
        assert_eq!(Quorum::parse("0.66"), Ok(Quorum::Fraction(0.66)));
        assert!(Quorum::parse("0").is_err());
        assert!(Quorum::parse("1.5").is_err());
        assert!(Quorum::parse("most").is_err());
    }
}
