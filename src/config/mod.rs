//! Server config (`geosteer.yaml`) and steering files (`<zone>.pools.yaml`):
//! raw serde types with `deny_unknown_fields`, then validated runtime types.
//! Every error names the file, the line and the key.

pub mod pools;

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

/// One problem in one input file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    pub file: PathBuf,
    /// 1-based; 0 when the problem has no single line (a missing file).
    pub line: u32,
    pub reason: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line > 0 {
            write!(f, "{}:{}: {}", self.file.display(), self.line, self.reason)
        } else {
            write!(f, "{}: {}", self.file.display(), self.reason)
        }
    }
}

impl ConfigError {
    pub fn new(file: &Path, line: u32, reason: impl Into<String>) -> ConfigError {
        ConfigError {
            file: file.to_path_buf(),
            line,
            reason: reason.into(),
        }
    }
}

/// A list of problems, printed one per line (`geosteer check`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

/// Parses YAML into `T`, turning serde-saphyr's error into `file:line: reason`.
pub fn parse_yaml<T: for<'de> Deserialize<'de>>(text: &str, file: &Path) -> Result<T, ConfigError> {
    serde_saphyr::from_str(text).map_err(|e| {
        let line = e.location().map_or(0, |l| l.line() as u32);
        // The Display form carries a source snippet; keep the message only.
        let full = e.to_string();
        let first = full.lines().next().unwrap_or("invalid YAML");
        let msg = first.strip_prefix("error: ").unwrap_or(first);
        let msg = match msg.split_once(": ") {
            Some((pos, rest)) if pos.starts_with("line ") => rest,
            _ => msg,
        };
        ConfigError::new(file, line, msg.to_string())
    })
}

fn read(file: &Path) -> Result<String, ConfigError> {
    std::fs::read_to_string(file)
        .map_err(|e| ConfigError::new(file, 0, format!("cannot read: {e}")))
}

fn default_listen() -> Vec<SocketAddr> {
    vec![SocketAddr::from(([127, 0, 0, 1], 5300))]
}

fn default_zones() -> PathBuf {
    PathBuf::from("zones")
}

/// TCP limits (RFC 7766 §6.2 leaves them to the server).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct TcpRaw {
    #[serde(with = "humantime_serde")]
    pub idle_timeout: Duration,
    pub max_connections: usize,
    pub max_per_client: usize,
}

impl Default for TcpRaw {
    fn default() -> Self {
        TcpRaw {
            idle_timeout: Duration::from_secs(10),
            max_connections: 1024,
            max_per_client: 64,
        }
    }
}

/// `geosteer.yaml` as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerRaw {
    #[serde(default = "default_listen")]
    pub listen: Vec<SocketAddr>,
    #[serde(default = "default_zones")]
    pub zones: PathBuf,
    #[serde(default)]
    pub geodb: Option<PathBuf>,
    #[serde(default)]
    pub http: Option<SocketAddr>,
    #[serde(default)]
    pub http_token: Option<String>,
    /// UDP worker threads; default: one per core.
    #[serde(default)]
    pub workers: Option<usize>,
    #[serde(default)]
    pub tcp: TcpRaw,
    /// Response rate limiting for UDP; absent: off.
    #[serde(default)]
    pub rrl: Option<crate::rrl::RrlConfig>,
    /// Where admin overrides persist; default `geosteer.state.json` beside the config.
    #[serde(default)]
    pub state_file: Option<PathBuf>,
    /// Sampled query log; off when absent.
    #[serde(default)]
    pub query_log: Option<crate::querylog::QueryLogConfig>,
    /// Reload on file changes (default); `false` leaves SIGHUP and the API.
    #[serde(default = "yes")]
    pub watch: bool,
    /// Online DNSSEC signing; absent: no zone is signed.
    #[serde(default)]
    pub dnssec: Option<DnssecRaw>,
}

/// `dnssec:` in `geosteer.yaml`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DnssecRaw {
    /// Directory of BIND key files (`K<zone>.+<alg>+<tag>.key/.private`).
    pub keys: PathBuf,
    /// Signature inception this far in the past (validators' clock skew).
    #[serde(default = "default_inception_offset", with = "humantime_serde")]
    pub inception_offset: Duration,
    /// Signature expiration this far after signing.
    #[serde(default = "default_validity", with = "humantime_serde")]
    pub validity: Duration,
    /// Cached signatures older than this are made again; default half the validity.
    #[serde(default, with = "humantime_serde::option")]
    pub refresh: Option<Duration>,
    /// Most signatures kept in the cache.
    #[serde(default = "default_sig_cache")]
    pub cache_size: usize,
}

fn default_inception_offset() -> Duration {
    Duration::from_secs(3600)
}

fn default_validity() -> Duration {
    Duration::from_secs(4 * 86_400)
}

fn default_sig_cache() -> usize {
    crate::dnssec::sign::DEFAULT_CACHE_ENTRIES
}

/// The validated `dnssec:` section.
#[derive(Debug, Clone, PartialEq)]
pub struct DnssecConfig {
    pub keys: PathBuf,
    pub policy: crate::dnssec::sign::Policy,
    pub cache_size: usize,
}

impl DnssecRaw {
    fn validate(self, base: &Path, path: &Path) -> Result<DnssecConfig, ConfigError> {
        let secs = |d: Duration, what: &str| {
            u32::try_from(d.as_secs())
                .ok()
                .filter(|&s| s > 0 || what == "inception_offset")
                .ok_or_else(|| {
                    ConfigError::new(path, 0, format!("dnssec.{what}: must be 1s..136 years"))
                })
        };
        let validity = secs(self.validity, "validity")?;
        let refresh = match self.refresh {
            Some(r) => secs(r, "refresh")?,
            None => validity / 2,
        };
        if refresh >= validity {
            return Err(ConfigError::new(
                path,
                0,
                "dnssec.refresh: must be shorter than dnssec.validity",
            ));
        }
        if self.cache_size == 0 {
            return Err(ConfigError::new(
                path,
                0,
                "dnssec.cache_size: must be at least 1",
            ));
        }
        Ok(DnssecConfig {
            keys: base.join(self.keys),
            policy: crate::dnssec::sign::Policy {
                inception_offset: secs(self.inception_offset, "inception_offset")?,
                validity,
                refresh: refresh.max(1),
            },
            cache_size: self.cache_size,
        })
    }
}

fn yes() -> bool {
    true
}

/// The validated server config, paths resolved against the config's directory.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub path: PathBuf,
    pub listen: Vec<SocketAddr>,
    pub zones: PathBuf,
    pub geodb: Option<PathBuf>,
    pub http: Option<SocketAddr>,
    pub http_token: Option<String>,
    pub workers: usize,
    pub tcp: TcpRaw,
    pub rrl: Option<crate::rrl::RrlConfig>,
    pub state_file: PathBuf,
    pub query_log: Option<crate::querylog::QueryLogConfig>,
    pub watch: bool,
    pub dnssec: Option<DnssecConfig>,
}

impl ServerConfig {
    /// Reads `geosteer.yaml`. Relative paths in it are relative to its directory.
    pub fn load(path: &Path) -> Result<ServerConfig, ConfigError> {
        let text = read(path)?;
        Self::from_str(&text, path)
    }

    pub fn from_str(text: &str, path: &Path) -> Result<ServerConfig, ConfigError> {
        let raw: ServerRaw = parse_yaml(text, path)?;
        let base = path.parent().unwrap_or(Path::new("."));
        let base = if base.as_os_str().is_empty() {
            Path::new(".")
        } else {
            base
        };
        let workers = match raw.workers {
            Some(0) => return Err(ConfigError::new(path, 0, "workers: must be at least 1")),
            Some(n) => n,
            None => std::thread::available_parallelism().map_or(1, |n| n.get()),
        };
        if raw.listen.is_empty() {
            return Err(ConfigError::new(
                path,
                0,
                "listen: at least one address is needed",
            ));
        }
        if raw.tcp.max_connections == 0 || raw.tcp.max_per_client == 0 {
            return Err(ConfigError::new(
                path,
                0,
                "tcp: connection limits must be at least 1",
            ));
        }
        if let Some(r) = &raw.rrl {
            r.validate().map_err(|e| ConfigError::new(path, 0, e))?;
        }
        if let Some(q) = &raw.query_log
            && !(0.0..=1.0).contains(&q.sample)
        {
            return Err(ConfigError::new(
                path,
                0,
                format!("query_log.sample: {} is not within 0..1", q.sample),
            ));
        }
        let query_log = raw.query_log.map(|mut q| {
            q.path = q.path.map(|p| base.join(p));
            q
        });
        let dnssec = raw.dnssec.map(|d| d.validate(base, path)).transpose()?;
        Ok(ServerConfig {
            dnssec,
            query_log,
            watch: raw.watch,
            path: path.to_path_buf(),
            listen: raw.listen,
            zones: base.join(raw.zones),
            geodb: raw.geodb.map(|p| base.join(p)),
            http: raw.http,
            http_token: raw.http_token,
            workers,
            tcp: raw.tcp,
            rrl: raw.rrl,
            state_file: base.join(
                raw.state_file
                    .unwrap_or_else(|| PathBuf::from("geosteer.state.json")),
            ),
        })
    }
}

/// Durations written the way operators write them: `10s`, `500ms`, `1m`.
pub mod humantime_serde {
    use serde::{Deserialize, Deserializer};
    use std::time::Duration;

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let s = String::deserialize(d)?;
        humantime::parse_duration(&s)
            .map_err(|e| serde::de::Error::custom(format!("invalid duration {s:?}: {e}")))
    }

    /// The same for an optional duration.
    pub mod option {
        use serde::{Deserialize, Deserializer};
        use std::time::Duration;

        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
            Option::<String>::deserialize(d)?
                .map(|s| {
                    humantime::parse_duration(&s).map_err(|e| {
                        serde::de::Error::custom(format!("invalid duration {s:?}: {e}"))
                    })
                })
                .transpose()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_paths() {
        let c = ServerConfig::from_str(
            "geodb: geodb/x.mmdb\n",
            Path::new("/etc/geosteer/geosteer.yaml"),
        )
        .unwrap();
        assert_eq!(c.listen, default_listen());
        assert_eq!(c.zones, Path::new("/etc/geosteer/zones"));
        assert_eq!(
            c.geodb.as_deref(),
            Some(Path::new("/etc/geosteer/geodb/x.mmdb"))
        );
        assert_eq!(c.tcp.idle_timeout, Duration::from_secs(10));
    }

    #[test]
    fn rrl_off_by_default_and_parsed() {
        let c = ServerConfig::from_str("{}\n", Path::new("g.yaml")).unwrap();
        assert_eq!(c.rrl, None);
        let c = ServerConfig::from_str(
            "rrl: {rate: 100, slip: 2, window: 15s}\n",
            Path::new("g.yaml"),
        )
        .unwrap();
        assert_eq!(c.rrl, Some(crate::rrl::RrlConfig::with_rate(100)));
        let e = ServerConfig::from_str("rrl: {rate: 0}\n", Path::new("g.yaml")).unwrap_err();
        assert!(e.to_string().contains("rrl.rate"), "{e}");
    }

    #[test]
    fn dnssec_section() {
        let c =
            ServerConfig::from_str("dnssec: {keys: keys}\n", Path::new("/etc/g/g.yaml")).unwrap();
        let d = c.dnssec.unwrap();
        assert_eq!(d.keys, Path::new("/etc/g/keys"));
        assert_eq!(d.policy.refresh, d.policy.validity / 2);
        let e = ServerConfig::from_str(
            "dnssec: {keys: k, validity: 1d, refresh: 2d}\n",
            Path::new("g.yaml"),
        )
        .unwrap_err();
        assert!(e.to_string().contains("dnssec.refresh"), "{e}");
        assert!(
            ServerConfig::from_str("dnssec: {keys: k, ttl: 1}\n", Path::new("g.yaml")).is_err()
        );
    }

    #[test]
    fn unknown_key_names_line() {
        let e = ServerConfig::from_str(
            "listen: [127.0.0.1:53]\nlisten_udp: 1\n",
            Path::new("g.yaml"),
        )
        .unwrap_err();
        assert_eq!(e.line, 2, "{e}");
        assert!(
            e.to_string()
                .starts_with("g.yaml:2: unknown field `listen_udp`"),
            "{e}"
        );
    }
}
