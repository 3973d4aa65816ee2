//! The `checks:` entries of a pools file and their validated runtime form.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use serde::{Deserialize, Deserializer};

use super::state::{EdgeState, Thresholds};

/// Default probe interval.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(5);
/// Default end-to-end probe timeout.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);
/// Default number of consecutive successes for a down edge to come up.
pub const DEFAULT_RISE: u32 = 2;
/// Default number of consecutive failures for an up edge to go down.
pub const DEFAULT_FALL: u32 = 3;

/// Which protocol a check speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CheckKind {
    /// A TCP connect that completes is a success.
    Tcp,
    /// `GET path` over plain HTTP/1.1.
    Http,
    /// `GET path` over HTTP/1.1 in TLS.
    Https,
}

/// Which of an edge's addresses must pass for the edge to pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Require {
    /// Every address must pass.
    #[default]
    All,
    /// One passing address is enough.
    Any,
}

/// State of a new edge before its first verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Initial {
    /// Serve the edge until probes say otherwise.
    #[default]
    Up,
    /// Hold the edge back until it has passed `rise` probes.
    Down,
}

/// One `checks:` entry as written in a pools file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckConfig {
    /// `tcp`, `http` or `https`.
    #[serde(rename = "type")]
    pub kind: CheckKind,
    /// Required for tcp; defaults to 80 (http) or 443 (https).
    #[serde(default)]
    pub port: Option<u16>,
    /// Request path (http/https only), default `/`.
    #[serde(default)]
    pub path: Option<String>,
    /// Host header and TLS server name (http/https only).
    #[serde(default)]
    pub host: Option<String>,
    /// Status codes that mean healthy; default any 2xx.
    #[serde(default)]
    pub expect: Option<Vec<u16>>,
    #[serde(default, deserialize_with = "de_duration")]
    pub interval: Option<Duration>,
    #[serde(default, deserialize_with = "de_duration")]
    pub timeout: Option<Duration>,
    #[serde(default)]
    pub rise: Option<u32>,
    #[serde(default)]
    pub fall: Option<u32>,
    /// Response header carrying a load in 0..=1 (http/https only).
    #[serde(default)]
    pub load_header: Option<String>,
    #[serde(default)]
    pub overload: Option<f64>,
    #[serde(default)]
    pub recover: Option<f64>,
    #[serde(default)]
    pub require: Option<Require>,
    #[serde(default)]
    pub initial: Option<Initial>,
    /// https only: skip certificate verification.
    #[serde(default)]
    pub insecure: Option<bool>,
    /// https only: an extra trusted CA (PEM), relative to the pools file.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Local address the probes leave from (a multi-homed host probes from
    /// the address its clients' traffic uses); default: the instance's
    /// `probe_source`, else the kernel's choice.
    #[serde(default)]
    pub probe_source: Option<std::net::IpAddr>,
}

/// A validated check, ready to run. Compared by value on reload to tell
/// whether a running check must restart (the CA's contents are part of it,
/// so a rotated CA file counts as a change).
#[derive(Debug, Clone, PartialEq)]
pub struct CheckSpec {
    /// The key under `checks:`; [`CheckConfig::validate`] leaves it empty,
    /// set it with [`CheckSpec::named`].
    pub name: String,
    pub kind: CheckKind,
    pub port: u16,
    /// Always starts with `/`; unused for tcp.
    pub path: String,
    pub host: Option<String>,
    /// Healthy status codes; empty means any 2xx.
    pub expect: Vec<u16>,
    pub interval: Duration,
    pub timeout: Duration,
    pub rise: u32,
    pub fall: u32,
    pub load_header: Option<String>,
    pub thresholds: Thresholds,
    pub require: Require,
    /// [`EdgeState::Up`] or [`EdgeState::Down`].
    pub initial: EdgeState,
    pub insecure: bool,
    /// Resolved against the pools file's directory.
    pub ca_file: Option<PathBuf>,
    /// The CA file's contents when validated (PEM, at least one certificate).
    pub ca_pem: Option<Vec<u8>>,
    /// The check's own `probe_source`, if set.
    pub source: Option<std::net::IpAddr>,
}

impl CheckSpec {
    /// Sets the check's name (its key under `checks:`).
    pub fn named(mut self, name: impl Into<String>) -> CheckSpec {
        self.name = name.into();
        self
    }

    /// Whether `status` counts as healthy.
    pub fn accepts(&self, status: u16) -> bool {
        if self.expect.is_empty() {
            (200..300).contains(&status)
        } else {
            self.expect.contains(&status)
        }
    }
}

fn de_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    let s = String::deserialize(d)?;
    humantime::parse_duration(s.trim())
        .map(Some)
        .map_err(|e| serde::de::Error::custom(format!("invalid duration {s:?}: {e}")))
}

/// A hostname usable as Host header and SNI: LDH labels, no port, no IP
/// literal brackets.
fn valid_host(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

impl CheckConfig {
    /// Checks the entry and fills in defaults. `base_dir` is the directory of
    /// the pools file, for a relative `ca_file`.
    pub fn validate(&self, base_dir: &Path) -> Result<CheckSpec, String> {
        let web = matches!(self.kind, CheckKind::Http | CheckKind::Https);
        if !web {
            for (set, key) in [
                (self.path.is_some(), "path"),
                (self.host.is_some(), "host"),
                (self.expect.is_some(), "expect"),
                (self.load_header.is_some(), "load_header"),
            ] {
                if set {
                    return Err(format!("`{key}` applies to http and https checks only"));
                }
            }
        }
        if self.kind != CheckKind::Https {
            if self.insecure.is_some() {
                return Err("`insecure` applies to https checks only".into());
            }
            if self.ca_file.is_some() {
                return Err("`ca_file` applies to https checks only".into());
            }
        }

        let port = match (self.kind, self.port) {
            (_, Some(0)) => return Err("port must be 1..=65535".into()),
            (_, Some(p)) => p,
            (CheckKind::Tcp, None) => return Err("tcp checks need a `port`".into()),
            (CheckKind::Http, None) => 80,
            (CheckKind::Https, None) => 443,
        };

        let path = self.path.clone().unwrap_or_else(|| "/".into());
        if !path.starts_with('/') {
            return Err(format!("path {path:?} must start with '/'"));
        }
        if path.bytes().any(|b| b.is_ascii_control() || b == b' ') {
            return Err(format!(
                "path {path:?} contains spaces or control characters"
            ));
        }

        if let Some(host) = &self.host
            && !valid_host(host)
        {
            return Err(format!("host {host:?} is not a valid host name"));
        }

        let expect = self.expect.clone().unwrap_or_default();
        if self.expect.as_ref().is_some_and(|e| e.is_empty()) {
            return Err("`expect` must list at least one status code".into());
        }
        if let Some(bad) = expect.iter().find(|c| !(100..=599).contains(*c)) {
            return Err(format!(
                "expect: {bad} is not an HTTP status code (100..=599)"
            ));
        }

        let interval = self.interval.unwrap_or(DEFAULT_INTERVAL);
        let timeout = self.timeout.unwrap_or(DEFAULT_TIMEOUT);
        if interval.is_zero() || timeout.is_zero() {
            return Err("interval and timeout must be greater than zero".into());
        }
        if timeout >= interval {
            return Err(format!(
                "timeout ({}) must be shorter than interval ({})",
                humantime::format_duration(timeout),
                humantime::format_duration(interval)
            ));
        }

        let rise = self.rise.unwrap_or(DEFAULT_RISE);
        let fall = self.fall.unwrap_or(DEFAULT_FALL);
        if rise == 0 || fall == 0 {
            return Err("rise and fall must be at least 1".into());
        }

        if let Some(h) = &self.load_header
            && reqwest::header::HeaderName::from_bytes(h.as_bytes()).is_err()
        {
            return Err(format!("load_header {h:?} is not a valid header name"));
        }

        let defaults = Thresholds::default();
        let thresholds = Thresholds {
            overload: self.overload.unwrap_or(defaults.overload),
            recover: self.recover.unwrap_or(defaults.recover),
        };
        for (v, key) in [
            (thresholds.overload, "overload"),
            (thresholds.recover, "recover"),
        ] {
            if !(0.0..=1.0).contains(&v) {
                return Err(format!("{key} ({v}) must be within 0..=1"));
            }
        }
        if thresholds.recover >= thresholds.overload {
            return Err(format!(
                "recover ({}) must be below overload ({})",
                thresholds.recover, thresholds.overload
            ));
        }

        let insecure = self.insecure.unwrap_or(false);
        let (ca_file, ca_pem) = match &self.ca_file {
            None => (None, None),
            Some(rel) => {
                let path = base_dir.join(rel);
                let pem =
                    std::fs::read(&path).map_err(|e| format!("ca_file {}: {e}", path.display()))?;
                let count = pem_certificates(&pem)
                    .map_err(|e| format!("ca_file {}: {e}", path.display()))?
                    .len();
                if count == 0 {
                    return Err(format!(
                        "ca_file {}: no PEM certificate found",
                        path.display()
                    ));
                }
                (Some(path), Some(pem))
            }
        };

        Ok(CheckSpec {
            name: String::new(),
            kind: self.kind,
            port,
            path,
            host: self.host.clone(),
            expect,
            interval,
            timeout,
            rise,
            fall,
            load_header: self.load_header.clone(),
            thresholds,
            require: self.require.unwrap_or_default(),
            initial: match self.initial.unwrap_or_default() {
                Initial::Up => EdgeState::Up,
                Initial::Down => EdgeState::Down,
            },
            insecure,
            ca_file,
            ca_pem,
            source: self.probe_source,
        })
    }
}

/// Parses every certificate in a PEM bundle.
pub(crate) fn pem_certificates(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, String> {
    CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("bad PEM: {e}"))
}
