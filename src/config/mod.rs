//! Server config (`geosteer.yaml`) and steering files (`<zone>.pools.yaml`):
//! raw serde types with `deny_unknown_fields`, then validated runtime types.
//! Every error names the file, the line and the key.

pub mod hosts;
pub mod pools;
pub mod rtt;
pub mod xfr;

pub use crate::yaml::ConfigError;

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

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

/// Parses YAML into `T` (see [`crate::yaml::parse`]): errors read
/// `file:line: key.path: what was wrong`.
pub fn parse_yaml<T: for<'de> Deserialize<'de>>(text: &str, file: &Path) -> Result<T, ConfigError> {
    crate::yaml::parse(text, file)
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
    #[serde(with = "crate::duration")]
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
    /// A GeoLite2-ASN-format database for `AS` RTT keys and `asn:` rules
    /// when the main one has no ASN data.
    #[serde(default)]
    pub geodb_asn: Option<PathBuf>,
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
    /// dnstap output; off when absent.
    #[serde(default)]
    pub dnstap: Option<crate::dnstap::DnstapConfig>,
    /// Reload on file changes (default); `false` leaves SIGHUP and the API.
    #[serde(default = "yes")]
    pub watch: bool,
    /// Share overrides, load and health with other instances through etcd;
    /// off when absent.
    #[serde(default)]
    pub fleet: Option<crate::fleet::FleetRaw>,
    /// Local address health probes leave from, for checks without their own.
    #[serde(default)]
    pub probe_source: Option<std::net::IpAddr>,
    /// NSID (RFC 5001) sent to clients that ask: a string, or `hostname`.
    #[serde(default)]
    pub nsid: Option<String>,
    /// DNS cookies (RFC 7873/9018): on by default; `off`, or a table.
    #[serde(default)]
    pub cookies: Option<CookiesRaw>,
    /// Online DNSSEC signing; absent: no zone is signed.
    #[serde(default)]
    pub dnssec: Option<DnssecRaw>,
    /// Steering from real users (beacons from a snippet in the pages);
    /// off when absent.
    #[serde(default)]
    pub rum: Option<crate::rum::RumRaw>,
    /// TSIG keys (RFC 8945) by name, for transfers and NOTIFY.
    #[serde(default)]
    pub tsig: Option<indexmap::IndexMap<serde_saphyr::Spanned<String>, xfr::TsigRaw>>,
    /// Zone transfers out: who may, whom to NOTIFY.
    #[serde(default)]
    pub transfer: Option<xfr::TransferRaw>,
    /// Zones pulled from primaries.
    #[serde(default)]
    pub secondary: Option<indexmap::IndexMap<serde_saphyr::Spanned<String>, xfr::SecondaryRaw>>,
    /// Senders whose PROXY v2 header names the client.
    #[serde(default)]
    pub proxy_protocol: Option<Vec<serde_saphyr::Spanned<String>>>,
    /// What `/metrics` exports beyond the fixed series.
    #[serde(default)]
    pub metrics: crate::metrics::MetricsConfig,
}

/// `cookies:` as written: `off` (or `false`/`on`/`true`), or a table.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum CookiesRaw {
    Flag(bool),
    Word(String),
    Table(CookiesTable),
}

/// `cookies: { secret_file: ..., rotate: 1h }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CookiesTable {
    /// Hex secrets, one a line: the first makes cookies, all verify them.
    #[serde(default)]
    pub secret_file: Option<PathBuf>,
    /// How often the key derived from the secret changes (`1h`), or `off`
    /// to use the secret itself as RFC 9018's SipHash key.
    #[serde(default)]
    pub rotate: Option<RotateRaw>,
}

/// `cookies.rotate:` as written: a duration, or `off` (which YAML reads
/// as `false` unless quoted).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum RotateRaw {
    Flag(bool),
    Word(String),
}

/// Validated `cookies:`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CookieSetting {
    Off,
    /// Secret from `secret_file`, or generated per process when `None`.
    On {
        secret_file: Option<PathBuf>,
        rotate: Option<Duration>,
    },
}

/// Default key rotation of the cookie secret.
const COOKIE_ROTATE: Duration = Duration::from_secs(3600);

fn cookies_setting(
    raw: Option<CookiesRaw>,
    base: &Path,
    path: &Path,
) -> Result<CookieSetting, ConfigError> {
    let on = |secret_file: Option<PathBuf>, rotate: Option<Duration>| CookieSetting::On {
        secret_file,
        rotate,
    };
    Ok(match raw {
        None | Some(CookiesRaw::Flag(true)) => on(None, Some(COOKIE_ROTATE)),
        Some(CookiesRaw::Flag(false)) => CookieSetting::Off,
        Some(CookiesRaw::Word(w)) => match w.as_str() {
            "off" | "false" | "no" => CookieSetting::Off,
            "on" | "true" | "yes" => on(None, Some(COOKIE_ROTATE)),
            other => {
                return Err(ConfigError::new(
                    path,
                    0,
                    format!(
                        "cookies: '{other}' is not on, off or a table {{ secret_file, rotate }}"
                    ),
                ));
            }
        },
        Some(CookiesRaw::Table(t)) => {
            let rotate = match t.rotate {
                None | Some(RotateRaw::Flag(true)) => Some(COOKIE_ROTATE),
                Some(RotateRaw::Flag(false)) => None,
                Some(RotateRaw::Word(w)) if matches!(w.as_str(), "off" | "never") => None,
                Some(RotateRaw::Word(d)) => {
                    let d = humantime::parse_duration(&d).map_err(|e| {
                        ConfigError::new(
                            path,
                            0,
                            format!("cookies.rotate: invalid duration {d:?}: {e}"),
                        )
                    })?;
                    // RFC 9018 §4.3: a cookie lives an hour; keys that change
                    // faster than a minute only cost hashing.
                    if d < Duration::from_secs(60) {
                        return Err(ConfigError::new(
                            path,
                            0,
                            "cookies.rotate: must be at least 1m (or off)",
                        ));
                    }
                    Some(d)
                }
            };
            on(t.secret_file.map(|f| base.join(f)), rotate)
        }
    })
}

/// `nsid: hostname` means this machine's host name.
fn nsid_value(raw: Option<String>, path: &Path) -> Result<Option<Box<[u8]>>, ConfigError> {
    let Some(v) = raw else { return Ok(None) };
    let bytes: Vec<u8> = if v == "hostname" {
        let mut buf = [0u8; 256];
        // SAFETY: the buffer is valid for its length; gethostname writes a
        // NUL-terminated name into it (truncated names are cut at the end).
        let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
        if rc != 0 {
            return Err(ConfigError::new(
                path,
                0,
                "nsid: hostname: cannot read the host name",
            ));
        }
        let n = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
        buf[..n].to_vec()
    } else {
        v.into_bytes()
    };
    if bytes.is_empty() || bytes.len() > crate::protocol::MAX_NSID {
        return Err(ConfigError::new(
            path,
            0,
            format!("nsid: must be 1 to {} bytes", crate::protocol::MAX_NSID),
        ));
    }
    Ok(Some(bytes.into_boxed_slice()))
}

/// Reads a cookie secret file: one secret a line as 32 hex digits
/// (`openssl rand -hex 16`), `#` comments; the first makes cookies.
pub fn read_cookie_secrets(file: &Path) -> Result<Vec<[u8; 16]>, ConfigError> {
    let text = read(file)?;
    // Whoever reads the secret can mint cookies that bypass RRL.
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(m) = std::fs::metadata(file)
            && m.permissions().mode() & 0o077 != 0
        {
            tracing::warn!(
                file = %file.display(),
                "cookie secret file is readable by group or others; chmod 600 it"
            );
        }
    }
    let mut secrets = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let bytes = (line.len() == 32)
            .then(|| {
                (0..16)
                    .map(|k| u8::from_str_radix(line.get(2 * k..2 * k + 2)?, 16).ok())
                    .collect::<Option<Vec<u8>>>()
            })
            .flatten()
            .ok_or_else(|| {
                ConfigError::new(
                    file,
                    i as u32 + 1,
                    "a cookie secret is 32 hex digits (16 bytes)",
                )
            })?;
        secrets.push(bytes.try_into().expect("16 bytes"));
    }
    if secrets.is_empty() {
        return Err(ConfigError::new(file, 0, "no cookie secret in the file"));
    }
    Ok(secrets)
}

/// `dnssec:` in `geosteer.yaml`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DnssecRaw {
    /// Directory of BIND key files (`K<zone>.+<alg>+<tag>.key/.private`).
    pub keys: PathBuf,
    /// Signature inception this far in the past (validators' clock skew).
    #[serde(default = "default_inception_offset", with = "crate::duration")]
    pub inception_offset: Duration,
    /// Signature expiration this far after signing.
    #[serde(default = "default_validity", with = "crate::duration")]
    pub validity: Duration,
    /// Cached signatures older than this are made again; default half the validity.
    #[serde(default, with = "crate::duration::option")]
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
    pub geodb_asn: Option<PathBuf>,
    pub http: Option<SocketAddr>,
    pub http_token: Option<String>,
    pub workers: usize,
    pub tcp: TcpRaw,
    pub rrl: Option<crate::rrl::RrlConfig>,
    pub state_file: PathBuf,
    pub query_log: Option<crate::querylog::QueryLogConfig>,
    pub dnstap: Option<crate::dnstap::DnstapConfig>,
    pub watch: bool,
    pub fleet: Option<crate::fleet::FleetConfig>,
    pub probe_source: Option<std::net::IpAddr>,
    pub nsid: Option<Box<[u8]>>,
    pub cookies: CookieSetting,
    pub dnssec: Option<DnssecConfig>,
    pub rum: Option<crate::rum::RumConfig>,
    /// TSIG keys, transfers out, NOTIFY, secondary zones.
    pub xfr: xfr::XfrConfig,
    /// Senders trusted to prepend a PROXY v2 header.
    pub proxy_protocol: Vec<ipnet::IpNet>,
    pub metrics: crate::metrics::MetricsConfig,
}

impl ServerConfig {
    /// The NSID and cookie settings answers use; reads the cookie secret
    /// file (so a new secret is picked up on reload).
    pub fn protocol(&self) -> Result<crate::protocol::Protocol, ConfigError> {
        use crate::protocol::{Cookies, Protocol};
        let cookies = match &self.cookies {
            CookieSetting::Off => None,
            CookieSetting::On {
                secret_file: None,
                rotate,
            } => Some(Cookies::generated(*rotate)),
            CookieSetting::On {
                secret_file: Some(f),
                rotate,
            } => {
                let mut secrets = read_cookie_secrets(f)?;
                let first = secrets.remove(0);
                Some(Cookies::with_previous(first, secrets, *rotate))
            }
        };
        Ok(Protocol {
            nsid: self.nsid.clone(),
            cookies,
        })
    }

    /// Reads `geosteer.yaml`. Relative paths in it are relative to its directory.
    pub fn load(path: &Path) -> Result<ServerConfig, ConfigError> {
        let text = read(path)?;
        Self::from_str(&text, path)
    }

    pub fn from_str(text: &str, path: &Path) -> Result<ServerConfig, ConfigError> {
        // Problems found after parsing name their key; find its line.
        Self::validate(text, path).map_err(|e| crate::yaml::with_line(e, text))
    }

    fn validate(text: &str, path: &Path) -> Result<ServerConfig, ConfigError> {
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
        let fleet = raw
            .fleet
            .map(|f| f.validate(base))
            .transpose()
            .map_err(|e| ConfigError::new(path, 0, e))?;
        let query_log = raw.query_log.map(|mut q| {
            q.path = q.path.map(|p| base.join(p));
            q
        });
        let nsid = nsid_value(raw.nsid, path)?;
        let cookies = cookies_setting(raw.cookies, base, path)?;
        if let Some(d) = &raw.dnstap {
            d.validate().map_err(|e| ConfigError::new(path, 0, e))?;
        }
        let dnstap = raw.dnstap.map(|mut d| {
            d.socket = d.socket.map(|p| base.join(p));
            d.file = d.file.map(|p| base.join(p));
            d
        });
        let dnssec = raw.dnssec.map(|d| d.validate(base, path)).transpose()?;
        let rum = raw
            .rum
            .map(|r| r.validate(base))
            .transpose()
            .map_err(|e| ConfigError::new(path, 0, e))?;
        let at = |(line, reason)| ConfigError::new(path, line, reason);
        let keys = xfr::keys(raw.tsig, base).map_err(at)?;
        let xfr = xfr::validate(keys, raw.transfer, raw.secondary, base).map_err(at)?;
        let proxy_protocol = xfr::proxy_senders(raw.proxy_protocol).map_err(at)?;
        Ok(ServerConfig {
            rum,
            metrics: raw.metrics,
            dnssec,
            xfr,
            proxy_protocol,
            fleet,
            probe_source: raw.probe_source,
            nsid,
            cookies,
            query_log,
            dnstap,
            watch: raw.watch,
            path: path.to_path_buf(),
            listen: raw.listen,
            zones: base.join(raw.zones),
            geodb: raw.geodb.map(|p| base.join(p)),
            geodb_asn: raw.geodb_asn.map(|p| base.join(p)),
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
        let e = ServerConfig::from_str(
            "listen: [127.0.0.1:53]\nrrl: {rate: 0}\n",
            Path::new("g.yaml"),
        )
        .unwrap_err();
        assert!(e.to_string().starts_with("g.yaml:2: rrl.rate"), "{e}");
        let e = ServerConfig::from_str("workers: 0\n", Path::new("g.yaml")).unwrap_err();
        assert_eq!(e.to_string(), "g.yaml:1: workers: must be at least 1");
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
    fn cookie_rotation_off_as_written_in_the_docs() {
        for off in ["off", "\"off\"", "never", "false"] {
            let c = ServerConfig::from_str(
                &format!("cookies: {{ secret_file: s, rotate: {off} }}\n"),
                Path::new("/g/g.yaml"),
            )
            .unwrap();
            assert_eq!(
                c.cookies,
                CookieSetting::On {
                    secret_file: Some("/g/s".into()),
                    rotate: None
                },
                "{off}"
            );
        }
        let c = ServerConfig::from_str("cookies: { rotate: 2h }\n", Path::new("g.yaml")).unwrap();
        assert!(
            matches!(c.cookies, CookieSetting::On { rotate: Some(d), .. } if d.as_secs() == 7200)
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
                .starts_with("g.yaml:2: unknown key `listen_udp`; the keys here are `listen`, "),
            "{e}"
        );
    }
}
