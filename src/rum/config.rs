//! The `rum:` section of `geosteer.yaml` and its validated form.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ipnet::IpNet;
use serde::Deserialize;

/// `rum:` as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RumRaw {
    /// The public beacon listener (HTTP; TLS goes in front).
    pub listen: SocketAddr,
    /// HMAC key for tokens; generated (0600) when missing.
    #[serde(default = "default_secret_file")]
    pub secret_file: PathBuf,
    /// Samples a (client network, edge) cell needs before it steers.
    #[serde(default = "default_min_samples")]
    pub min_samples: u32,
    /// Older samples weigh less: a sample this old counts half.
    #[serde(default = "default_half_life", with = "crate::duration")]
    pub half_life: Duration,
    /// Cells with no new sample this long are dropped.
    #[serde(default = "default_max_age", with = "crate::duration")]
    pub max_age: Duration,
    /// Beacons (and configs) per minute per client /24 (/56); more get 429.
    #[serde(default = "default_rate")]
    pub rate: u32,
    /// Proxies whose `X-Forwarded-For` is believed.
    #[serde(default)]
    pub trust_forwarded: Vec<String>,
    /// Where learned data persists; default `rum.state` beside the config.
    #[serde(default)]
    pub state_file: Option<PathBuf>,
    /// CPUs the listener and the aggregator run on (default: wherever the
    /// process may run).
    #[serde(default)]
    pub cpus: Option<Vec<usize>>,
}

fn default_secret_file() -> PathBuf {
    PathBuf::from("rum.secret")
}
fn default_min_samples() -> u32 {
    20
}
fn default_half_life() -> Duration {
    Duration::from_secs(30 * 60)
}
fn default_max_age() -> Duration {
    Duration::from_secs(24 * 3600)
}
fn default_rate() -> u32 {
    60
}

/// The validated `rum:` section, paths resolved against the config's
/// directory.
#[derive(Debug, Clone, PartialEq)]
pub struct RumConfig {
    pub listen: SocketAddr,
    pub secret_file: PathBuf,
    pub min_samples: u32,
    pub half_life: Duration,
    pub max_age: Duration,
    pub rate: u32,
    pub trust_forwarded: Vec<IpNet>,
    pub state_file: PathBuf,
    /// CPUs the RUM threads are pinned to; empty: not pinned.
    pub cpus: Vec<usize>,
}

/// CPU numbers a `cpus` list may name (the kernel's `CPU_SETSIZE`).
pub const MAX_CPUS: usize = libc::CPU_SETSIZE as usize;

impl RumRaw {
    /// Checks the values; `base` is the config's directory. Errors name
    /// the key.
    pub fn validate(self, base: &Path) -> Result<RumConfig, String> {
        if self.min_samples == 0 {
            return Err("rum.min_samples: must be at least 1".into());
        }
        if self.half_life < Duration::from_secs(1) {
            return Err("rum.half_life: must be at least 1s".into());
        }
        if self.max_age < Duration::from_secs(1) {
            return Err("rum.max_age: must be at least 1s".into());
        }
        if self.rate == 0 {
            return Err("rum.rate: must be at least 1 (beacons per minute per /24)".into());
        }
        let mut trust = Vec::new();
        for t in &self.trust_forwarded {
            let net = t
                .parse::<IpNet>()
                .or_else(|_| t.parse::<std::net::IpAddr>().map(IpNet::from))
                .map_err(|_| {
                    format!("rum.trust_forwarded: {t:?} is not an address or a network (like 10.0.0.0/8)")
                })?;
            if net.trunc() != net {
                return Err(format!(
                    "rum.trust_forwarded: {net} has host bits set (did you mean {}?)",
                    net.trunc()
                ));
            }
            trust.push(net);
        }
        if self.cpus.as_ref().is_some_and(Vec::is_empty) {
            return Err("rum.cpus: name at least one CPU (or leave the key out)".into());
        }
        let cpus = self.cpus.unwrap_or_default();
        if let Some(c) = cpus.iter().find(|&&c| c >= MAX_CPUS) {
            return Err(format!(
                "rum.cpus: {c} is not a CPU number (0 to {})",
                MAX_CPUS - 1
            ));
        }
        if let Some(c) = cpus
            .iter()
            .enumerate()
            .find_map(|(i, c)| cpus[..i].contains(c).then_some(c))
        {
            return Err(format!("rum.cpus: CPU {c} is listed twice"));
        }
        Ok(RumConfig {
            listen: self.listen,
            secret_file: base.join(self.secret_file),
            min_samples: self.min_samples,
            half_life: self.half_life,
            max_age: self.max_age,
            rate: self.rate,
            trust_forwarded: trust,
            state_file: base.join(
                self.state_file
                    .unwrap_or_else(|| PathBuf::from("rum.state")),
            ),
            cpus,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<RumConfig, String> {
        let raw: RumRaw =
            crate::config::parse_yaml(text, Path::new("g.yaml")).map_err(|e| e.to_string())?;
        raw.validate(Path::new("/etc/g"))
    }

    #[test]
    fn defaults_and_paths() {
        let c = parse("listen: 127.0.0.1:8054\n").unwrap();
        assert_eq!(c.min_samples, 20);
        assert_eq!(c.half_life, Duration::from_secs(1800));
        assert_eq!(c.max_age, Duration::from_secs(86400));
        assert_eq!(c.rate, 60);
        assert_eq!(c.secret_file, Path::new("/etc/g/rum.secret"));
        assert_eq!(c.state_file, Path::new("/etc/g/rum.state"));
        assert!(c.trust_forwarded.is_empty());
        assert!(c.cpus.is_empty());
        let c = parse("listen: 127.0.0.1:8054\ncpus: [1, 3]\n").unwrap();
        assert_eq!(c.cpus, vec![1, 3]);
    }

    #[test]
    fn bad_values_name_their_key() {
        for (text, key) in [
            ("listen: 127.0.0.1:1\nmin_samples: 0\n", "rum.min_samples"),
            ("listen: 127.0.0.1:1\nrate: 0\n", "rum.rate"),
            ("listen: 127.0.0.1:1\nhalf_life: 0s\n", "rum.half_life"),
            (
                "listen: 127.0.0.1:1\ntrust_forwarded: [nope]\n",
                "rum.trust_forwarded",
            ),
            (
                "listen: 127.0.0.1:1\ntrust_forwarded: [10.0.0.1/8]\n",
                "host bits",
            ),
            ("listen: 127.0.0.1:1\nbogus: 1\n", "unknown key `bogus`"),
            (
                "listen: 127.0.0.1:1\ncpus: []\n",
                "rum.cpus: name at least one",
            ),
            (
                "listen: 127.0.0.1:1\ncpus: [1024]\n",
                "rum.cpus: 1024 is not",
            ),
            (
                "listen: 127.0.0.1:1\ncpus: [0, 1, 0]\n",
                "CPU 0 is listed twice",
            ),
            ("listen: 127.0.0.1:1\ncpus: [-1]\n", "cpus"),
        ] {
            let e = parse(text).unwrap_err();
            assert!(e.contains(key), "{text}: {e}");
        }
        let c = parse("listen: 127.0.0.1:1\ntrust_forwarded: [10.0.0.0/8, 192.0.2.1]\n").unwrap();
        assert_eq!(c.trust_forwarded.len(), 2);
        assert_eq!(c.trust_forwarded[1].prefix_len(), 32);
    }
}
