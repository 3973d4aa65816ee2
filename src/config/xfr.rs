//! `tsig:`, `transfer:`, `secondary:` and `proxy_protocol:` in
//! `geosteer.yaml`: raw types, then validated into a [`XfrConfig`] whose
//! errors name the file, the line and the key.
//!
//! ```yaml
//! tsig:
//!   xfr-key: { algorithm: hmac-sha256, secret: "<base64>" }   # or secret_file:
//! transfer:
//!   allow: [{ net: 192.0.2.0/24, tsig: xfr-key }]
//!   notify: ["192.0.2.53:53"]
//! secondary:
//!   static.example: { primaries: ["192.0.2.1:53"], tsig: xfr-key }
//! proxy_protocol: [127.0.0.1/32]
//! ```
//!
//! Errors are `(line, reason)`; `config` adds the file.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use data_encoding::BASE64;
use indexmap::IndexMap;
use ipnet::IpNet;
use serde::Deserialize;
use serde_saphyr::Spanned;

use crate::tsig::{Algorithm, Key, Keyring};

/// A problem: its line (0 when it has none) and what is wrong.
pub type Bad = (u32, String);

/// One key of `tsig:` as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TsigRaw {
    pub algorithm: Spanned<String>,
    /// The shared secret, base64 (what `tsig-keygen` prints).
    #[serde(default)]
    pub secret: Option<Spanned<String>>,
    /// Or a file holding it: base64 alone, or BIND's `key "name" { ... };`.
    #[serde(default)]
    pub secret_file: Option<Spanned<PathBuf>>,
}

/// `transfer:` as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransferRaw {
    /// Who may AXFR/IXFR our zones; nobody when empty.
    #[serde(default)]
    pub allow: Vec<AllowRaw>,
    /// Told (NOTIFY) when a zone's serial changes: `address:port`.
    #[serde(default)]
    pub notify: Vec<Spanned<String>>,
}

/// One `transfer.allow` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AllowRaw {
    pub net: Spanned<String>,
    /// The key a request from `net` must be signed with; without it, the
    /// address alone is trusted.
    #[serde(default)]
    pub tsig: Option<Spanned<String>>,
}

/// One zone of `secondary:` as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecondaryRaw {
    pub primaries: Vec<Spanned<String>>,
    #[serde(default)]
    pub tsig: Option<Spanned<String>>,
}

/// Who may transfer: a network, and the key its requests must carry.
#[derive(Debug, Clone)]
pub struct Allow {
    pub net: IpNet,
    pub key: Option<Arc<Key>>,
}

/// A zone we pull from primaries.
#[derive(Debug, Clone)]
pub struct Secondary {
    /// Presentation name with the final dot (`static.example.`).
    pub zone: String,
    /// Lowercased wire name.
    pub apex: Box<[u8]>,
    pub primaries: Vec<SocketAddr>,
    pub key: Option<Arc<Key>>,
}

/// Everything about transfers, NOTIFY and TSIG, validated.
#[derive(Debug, Clone, Default)]
pub struct XfrConfig {
    pub keys: Keyring,
    pub allow: Vec<Allow>,
    pub notify: Vec<SocketAddr>,
    pub secondaries: Vec<Secondary>,
    /// Where serials (and what they were given for) persist.
    pub state_file: PathBuf,
}

impl XfrConfig {
    /// Whether anything transfers out: serials are then kept and bumped.
    pub fn serves_transfers(&self) -> bool {
        !self.allow.is_empty() || !self.notify.is_empty()
    }
}

/// A `host:port` (or bare address, port 53).
fn socket_addr(s: &str) -> Option<SocketAddr> {
    s.parse::<SocketAddr>()
        .ok()
        .or_else(|| s.parse::<std::net::IpAddr>().ok().map(|ip| (ip, 53).into()))
}

fn line<T>(s: &Spanned<T>) -> u32 {
    s.referenced.line() as u32
}

/// Reads a key's secret from `file`: base64 alone, or the `secret "...";`
/// of a BIND key file (what `tsig-keygen` writes), whose algorithm must
/// then agree with `algorithm`.
fn secret_from_file(file: &Path, algorithm: Algorithm) -> Result<String, String> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| format!("cannot read {}: {e}", file.display()))?;
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(m) = std::fs::metadata(file)
            && m.permissions().mode() & 0o077 != 0
        {
            tracing::warn!(file = %file.display(), "TSIG secret file is readable by group or others; chmod 600 it");
        }
    }
    if !text.contains("secret") {
        return Ok(text.split_whitespace().collect());
    }
    // `algorithm hmac-sha256;` and `secret "...";` inside `key "name" { }`.
    let value = |word: &str| {
        let at = text.find(word)? + word.len();
        let v = text[at..].split(';').next()?.trim().trim_matches('"');
        Some(v.to_string())
    };
    if let Some(alg) = value("algorithm")
        && Algorithm::from_name(&alg) != Some(algorithm)
    {
        return Err(format!(
            "{} says algorithm {alg}, the config {}",
            file.display(),
            algorithm.name()
        ));
    }
    value("secret").ok_or_else(|| format!("{}: no secret \"...\" in it", file.display()))
}

/// Validates `tsig:`; keys keep their file order.
pub fn keys(raw: Option<IndexMap<Spanned<String>, TsigRaw>>, base: &Path) -> Result<Keyring, Bad> {
    let mut ring = Keyring::default();
    for (name, k) in raw.unwrap_or_default() {
        let at =
            |l: u32, what: &str, why: String| (l, format!("tsig.{}.{what}: {why}", name.value));
        let algorithm = Algorithm::from_name(&k.algorithm.value).ok_or_else(|| {
            at(
                line(&k.algorithm),
                "algorithm",
                format!(
                    "'{}' is not hmac-sha256, hmac-sha384 or hmac-sha512",
                    k.algorithm.value
                ),
            )
        })?;
        let (text, l, what) = match (&k.secret, &k.secret_file) {
            (Some(s), None) => (s.value.clone(), line(s), "secret"),
            (None, Some(f)) => (
                secret_from_file(&base.join(&f.value), algorithm)
                    .map_err(|e| at(line(f), "secret_file", e))?,
                line(f),
                "secret_file",
            ),
            _ => {
                return Err(at(
                    line(&name),
                    "secret",
                    "give one of secret (base64) and secret_file".into(),
                ));
            }
        };
        let secret = BASE64
            .decode(text.trim().as_bytes())
            .map_err(|_| at(l, what, "not valid base64".into()))?;
        // RFC 8945 §6: at least as long as the hash's output is wise;
        // fewer than 16 bytes is a mistake.
        if secret.len() < 16 {
            return Err(at(
                l,
                what,
                format!(
                    "{} bytes is too short (use tsig-keygen, or openssl rand -base64 32)",
                    secret.len()
                ),
            ));
        }
        if ring.named(&name.value).is_some() {
            return Err(at(line(&name), "", "defined twice".into()));
        }
        let key = Key::new(&name.value, algorithm, &secret)
            .map_err(|e| (line(&name), format!("tsig.{}: {e}", name.value)))?;
        ring.0.push(Arc::new(key));
    }
    Ok(ring)
}

fn key_ref(
    keys: &Keyring,
    r: &Option<Spanned<String>>,
    what: &str,
) -> Result<Option<Arc<Key>>, Bad> {
    let Some(r) = r else { return Ok(None) };
    keys.named(&r.value).cloned().map(Some).ok_or_else(|| {
        (
            line(r),
            format!("{what}.tsig: no key '{}' under tsig:", r.value),
        )
    })
}

/// Validates `transfer:` and `secondary:` against the keys.
pub fn validate(
    keys: Keyring,
    transfer: Option<TransferRaw>,
    secondary: Option<IndexMap<Spanned<String>, SecondaryRaw>>,
    base: &Path,
) -> Result<XfrConfig, Bad> {
    let transfer = transfer.unwrap_or_default();
    let mut allow = Vec::new();
    for (i, a) in transfer.allow.iter().enumerate() {
        let what = format!("transfer.allow[{i}]");
        let net = a
            .net
            .value
            .parse::<IpNet>()
            .or_else(|_| a.net.value.parse::<std::net::IpAddr>().map(IpNet::from))
            .map_err(|_| {
                (
                    line(&a.net),
                    format!(
                        "{what}.net: '{}' is not a network (192.0.2.0/24)",
                        a.net.value
                    ),
                )
            })?;
        allow.push(Allow {
            net: net.trunc(),
            key: key_ref(&keys, &a.tsig, &what)?,
        });
    }
    let mut notify = Vec::new();
    for n in &transfer.notify {
        notify.push(socket_addr(&n.value).ok_or_else(|| {
            (
                line(n),
                format!("transfer.notify: '{}' is not address:port", n.value),
            )
        })?);
    }
    let mut secondaries = Vec::new();
    for (zone, s) in secondary.unwrap_or_default() {
        let what = format!("secondary.{}", zone.value);
        let apex = crate::dnssec::parse_name(&zone.value)
            .map_err(|e| (line(&zone), format!("{what}: {e}")))?;
        if s.primaries.is_empty() {
            return Err((
                line(&zone),
                format!("{what}.primaries: at least one address:port"),
            ));
        }
        let mut primaries = Vec::new();
        for p in &s.primaries {
            primaries.push(socket_addr(&p.value).ok_or_else(|| {
                (
                    line(p),
                    format!("{what}.primaries: '{}' is not address:port", p.value),
                )
            })?);
        }
        if secondaries.iter().any(|x: &Secondary| x.apex == apex) {
            return Err((line(&zone), format!("{what}: listed twice")));
        }
        secondaries.push(Secondary {
            zone: crate::wire::name_to_string(&apex),
            apex,
            primaries,
            key: key_ref(&keys, &s.tsig, &what)?,
        });
    }
    Ok(XfrConfig {
        keys,
        allow,
        notify,
        secondaries,
        state_file: base.join("geosteer.serials.json"),
    })
}

/// Validates `proxy_protocol:`: the senders whose PROXY v2 headers are
/// believed.
pub fn proxy_senders(raw: Option<Vec<Spanned<String>>>) -> Result<Vec<IpNet>, Bad> {
    raw.unwrap_or_default()
        .iter()
        .map(|s| {
            s.value
                .parse::<IpNet>()
                .or_else(|_| s.value.parse::<std::net::IpAddr>().map(IpNet::from))
                .map(|n| n.trunc())
                .map_err(|_| {
                    (
                        line(s),
                        format!(
                            "proxy_protocol: '{}' is not a network (127.0.0.1/32)",
                            s.value
                        ),
                    )
                })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use crate::config::ServerConfig;
    use std::path::Path;

    fn err(yaml: &str) -> String {
        ServerConfig::from_str(yaml, Path::new("g.yaml"))
            .unwrap_err()
            .to_string()
    }

    const KEY: &str = "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LTEyMzQ=";

    #[test]
    fn keys_transfers_and_secondaries_validate() {
        let c = ServerConfig::from_str(
            &format!(
                "tsig:\n  xfr-key: {{ algorithm: hmac-sha256, secret: \"{KEY}\" }}\n\
                 transfer:\n  allow: [{{ net: 192.0.2.0/24, tsig: xfr-key }}, {{ net: 127.0.0.1 }}]\n  notify: [\"192.0.2.53:53\", \"192.0.2.54\"]\n\
                 secondary:\n  static.example: {{ primaries: [\"192.0.2.1:5300\"], tsig: xfr-key }}\n\
                 proxy_protocol: [127.0.0.1/32, \"::1\"]\n"
            ),
            Path::new("/etc/g/g.yaml"),
        )
        .unwrap();
        let x = &c.xfr;
        assert_eq!(x.keys.0.len(), 1);
        assert_eq!(x.allow.len(), 2);
        assert!(x.allow[0].key.is_some() && x.allow[1].key.is_none());
        assert_eq!(x.notify[1].port(), 53);
        assert_eq!(x.secondaries[0].zone, "static.example.");
        assert_eq!(x.state_file, Path::new("/etc/g/geosteer.serials.json"));
        assert_eq!(c.proxy_protocol.len(), 2);
        assert!(x.serves_transfers());
    }

    #[test]
    fn errors_name_the_line_and_the_key() {
        let e = err("tsig:\n  k1: { algorithm: hmac-md5, secret: \"x\" }\n");
        assert!(
            e.starts_with("g.yaml:2: tsig.k1.algorithm: 'hmac-md5'"),
            "{e}"
        );
        let e = err("tsig:\n  k1:\n    algorithm: hmac-sha256\n    secret: \"not base64!\"\n");
        assert!(
            e.starts_with("g.yaml:4: tsig.k1.secret: not valid base64"),
            "{e}"
        );
        let e = err("tsig:\n  k1: { algorithm: hmac-sha256, secret: \"c2hvcnQ=\" }\n");
        assert!(e.contains("tsig.k1.secret: 5 bytes is too short"), "{e}");
        let e = err("tsig:\n  k1: { algorithm: hmac-sha256 }\n");
        assert!(
            e.starts_with("g.yaml:2: tsig.k1.secret: give one of"),
            "{e}"
        );
        let e = err(&format!(
            "tsig:\n  k1: {{ algorithm: hmac-sha256, secret: \"{KEY}\" }}\ntransfer:\n  allow:\n    - {{ net: 10.0.0.0/8, tsig: k2 }}\n"
        ));
        assert!(
            e.starts_with("g.yaml:5: transfer.allow[0].tsig: no key 'k2'"),
            "{e}"
        );
        let e = err("transfer:\n  allow:\n    - { net: 10.0.0/8 }\n");
        assert!(e.starts_with("g.yaml:3: transfer.allow[0].net"), "{e}");
        let e = err("secondary:\n  s.example: { primaries: [] }\n");
        assert!(
            e.starts_with("g.yaml:2: secondary.s.example.primaries"),
            "{e}"
        );
        let e = err("proxy_protocol: [127.0.0.1/33]\n");
        assert!(
            e.starts_with("g.yaml:1: proxy_protocol: '127.0.0.1/33'"),
            "{e}"
        );
        let e = err("tsig:\n  k1: { algorithm: hmac-sha256, secret_file: nope.key }\n");
        assert!(
            e.starts_with("g.yaml:2: tsig.k1.secret_file: cannot read"),
            "{e}"
        );
    }

    #[test]
    fn a_bind_key_file_is_read() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("xfr.key"),
            format!("key \"xfr-key\" {{\n\talgorithm hmac-sha256;\n\tsecret \"{KEY}\";\n}};\n"),
        )
        .unwrap();
        let cfg = dir.path().join("g.yaml");
        let c = ServerConfig::from_str(
            "tsig:\n  xfr-key: { algorithm: hmac-sha256, secret_file: xfr.key }\n",
            &cfg,
        )
        .unwrap();
        assert_eq!(c.xfr.keys.0[0].label, "xfr-key");
        let e = ServerConfig::from_str(
            "tsig:\n  xfr-key: { algorithm: hmac-sha512, secret_file: xfr.key }\n",
            &cfg,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("says algorithm hmac-sha256"), "{e}");
    }
}
