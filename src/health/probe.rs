//! Probing one address: TCP connect, or an HTTP(S) GET read within a
//! timeout, plus the shared rustls client configurations.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Once, OnceLock};
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};

use super::config::{CheckKind, CheckSpec, pem_certificates};

/// Most of a response body a probe reads: enough to let a small health page
/// finish, never a large download.
pub const BODY_CAP: usize = 64 * 1024;

/// Installs ring as the process's rustls provider (once; someone else having
/// installed one already is fine).
pub fn ensure_crypto_provider() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    ensure_crypto_provider();
    rustls::crypto::CryptoProvider::get_default()
        .cloned()
        .unwrap_or_else(|| Arc::new(rustls::crypto::ring::default_provider()))
}

/// How an https check verifies servers; also the key for sharing a built
/// rustls config among the targets using it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum TlsMode {
    /// http and tcp: no TLS, but reqwest insists on a config.
    Plain,
    /// System roots, plus the CA in this PEM if any.
    Verify(Option<Vec<u8>>),
    Insecure,
}

impl TlsMode {
    pub(crate) fn of(spec: &CheckSpec) -> TlsMode {
        match spec.kind {
            CheckKind::Https if spec.insecure => TlsMode::Insecure,
            CheckKind::Https => TlsMode::Verify(spec.ca_pem.clone()),
            _ => TlsMode::Plain,
        }
    }
}

/// Builds the rustls config for a mode. Loading the system roots is the
/// expensive part, so the plain system-roots verifier is built once per
/// process and callers share configs by [`TlsMode`].
pub(crate) fn tls_config(mode: &TlsMode) -> Result<Arc<rustls::ClientConfig>, String> {
    let provider = provider();
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("tls: {e}"))?;
    let mut config = match mode {
        TlsMode::Plain => builder
            .with_root_certificates(rustls::RootCertStore::empty())
            .with_no_client_auth(),
        TlsMode::Insecure => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerify(provider)))
            .with_no_client_auth(),
        TlsMode::Verify(None) => {
            static SYSTEM: OnceLock<Result<Arc<rustls_platform_verifier::Verifier>, String>> =
                OnceLock::new();
            let verifier = SYSTEM
                .get_or_init(|| {
                    rustls_platform_verifier::Verifier::new(provider.clone())
                        .map(Arc::new)
                        .map_err(|e| format!("tls: system roots: {e}"))
                })
                .clone()?;
            builder
                .dangerous()
                .with_custom_certificate_verifier(verifier)
                .with_no_client_auth()
        }
        TlsMode::Verify(Some(pem)) => {
            let extra = pem_certificates(pem)?;
            let verifier =
                rustls_platform_verifier::Verifier::new_with_extra_roots(extra, provider.clone())
                    .map_err(|e| format!("tls: roots: {e}"))?;
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(verifier))
                .with_no_client_auth()
        }
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// `insecure: true`: accepts any certificate, still checks handshake
/// signatures so the connection is at least well-formed TLS.
#[derive(Debug)]
struct NoVerify(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for NoVerify {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// The outcome of probing one address.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum AddrResult {
    Ok {
        load: Option<f64>,
        /// The load header was configured but unusable.
        load_error: Option<String>,
    },
    Failed(String),
    TimedOut,
}

/// Everything needed to probe one address of one edge, built once per
/// target start (not per probe).
#[derive(Debug)]
pub(crate) struct AddrProbe {
    pub addr: SocketAddr,
    /// Bind probe sockets to this local address first.
    source: Option<IpAddr>,
    kind: Kind,
}

#[derive(Debug)]
enum Kind {
    Tcp,
    Http {
        client: reqwest::Client,
        url: String,
        load_header: Option<reqwest::header::HeaderName>,
        spec: Arc<CheckSpec>,
    },
    /// The client could not be built; every probe fails with this.
    Broken(String),
}

impl AddrProbe {
    pub(crate) fn new(
        spec: &Arc<CheckSpec>,
        ip: IpAddr,
        source: Option<IpAddr>,
        tls: Result<Arc<rustls::ClientConfig>, String>,
    ) -> AddrProbe {
        let addr = SocketAddr::new(ip, spec.port);
        let kind = match source {
            Some(s) if s.is_ipv4() != ip.is_ipv4() => Kind::Broken(format!(
                "probe_source {s} cannot reach {ip} (different address family)"
            )),
            _ => match spec.kind {
                CheckKind::Tcp => Kind::Tcp,
                CheckKind::Http | CheckKind::Https => match build_http(spec, addr, source, tls) {
                    Ok(kind) => kind,
                    Err(e) => Kind::Broken(e),
                },
            },
        };
        AddrProbe { addr, source, kind }
    }

    /// Probes once, bounded by `timeout` end to end.
    pub(crate) async fn run(&self, timeout: Duration) -> AddrResult {
        match tokio::time::timeout(timeout, self.run_unbounded()).await {
            Ok(r) => r,
            Err(_) => AddrResult::TimedOut,
        }
    }

    async fn run_unbounded(&self) -> AddrResult {
        match &self.kind {
            Kind::Broken(e) => AddrResult::Failed(e.clone()),
            Kind::Tcp => match tcp_connect(self.addr, self.source).await {
                Ok(_) => AddrResult::Ok {
                    load: None,
                    load_error: None,
                },
                Err(e) => AddrResult::Failed(e),
            },
            Kind::Http {
                client,
                url,
                load_header,
                spec,
            } => http_probe(client, url, load_header.as_ref(), spec).await,
        }
    }
}

/// A TCP connect, from `source` when given.
async fn tcp_connect(
    addr: SocketAddr,
    source: Option<IpAddr>,
) -> Result<tokio::net::TcpStream, String> {
    let Some(src) = source else {
        return tokio::net::TcpStream::connect(addr)
            .await
            .map_err(|e| format!("connect: {e}"));
    };
    let sock = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()
    } else {
        tokio::net::TcpSocket::new_v6()
    }
    .map_err(|e| format!("socket: {e}"))?;
    sock.bind(SocketAddr::new(src, 0))
        .map_err(|e| format!("bind probe_source {src}: {e}"))?;
    sock.connect(addr)
        .await
        .map_err(|e| format!("connect from {src}: {e}"))
}

fn build_http(
    spec: &Arc<CheckSpec>,
    addr: SocketAddr,
    source: Option<IpAddr>,
    tls: Result<Arc<rustls::ClientConfig>, String>,
) -> Result<Kind, String> {
    let tls = tls?;
    let scheme = if spec.kind == CheckKind::Https {
        "https"
    } else {
        "http"
    };
    let mut builder = reqwest::Client::builder()
        .tls_backend_preconfigured((*tls).clone())
        // Health checks measure fresh connections, and an idle pooled socket
        // would be an open socket the in-flight limit does not see.
        .pool_max_idle_per_host(0)
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .timeout(spec.timeout)
        .connect_timeout(spec.timeout)
        .user_agent(concat!("geosteer-health/", env!("CARGO_PKG_VERSION")))
        .local_address(source);
    let authority = match &spec.host {
        // The URL names the host (Host header, SNI, certificate name) and the
        // resolver override pins the connection to this address.
        Some(host) => {
            builder = builder.resolve(host, addr);
            format!("{host}:{}", addr.port())
        }
        None => addr.to_string(),
    };
    let client = builder.build().map_err(|e| format!("http client: {e}"))?;
    let load_header = spec
        .load_header
        .as_deref()
        .map(|h| reqwest::header::HeaderName::from_bytes(h.as_bytes()))
        .transpose()
        .map_err(|e| format!("load_header: {e}"))?;
    Ok(Kind::Http {
        client,
        url: format!("{scheme}://{authority}{}", spec.path),
        load_header,
        spec: spec.clone(),
    })
}

/// The full error chain, so "error sending request" says why.
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(cause) = src {
        let c = cause.to_string();
        if !s.contains(&c) {
            s.push_str(": ");
            s.push_str(&c);
        }
        src = cause.source();
    }
    s
}

async fn http_probe(
    client: &reqwest::Client,
    url: &str,
    load_header: Option<&reqwest::header::HeaderName>,
    spec: &CheckSpec,
) -> AddrResult {
    let mut resp = match client.get(url).send().await {
        Ok(r) => r,
        Err(e) if e.is_timeout() => return AddrResult::TimedOut,
        Err(e) => return AddrResult::Failed(chain(&e)),
    };
    let status = resp.status().as_u16();
    let (load, load_error) = match load_header {
        None => (None, None),
        Some(name) => match parse_load(resp.headers().get(name)) {
            Ok(l) => (Some(l), None),
            Err(e) => (None, Some(format!("{name}: {e}"))),
        },
    };
    // Let a small body complete so the server sees an orderly exchange, but
    // never read more than BODY_CAP; errors here do not change the verdict.
    let mut read = 0usize;
    while read < BODY_CAP {
        match resp.chunk().await {
            Ok(Some(c)) => read += c.len(),
            _ => break,
        }
    }
    if !spec.accepts(status) {
        return AddrResult::Failed(format!("unexpected status {status}"));
    }
    AddrResult::Ok { load, load_error }
}

/// Parses a load header: a number in 0..=1.
fn parse_load(value: Option<&reqwest::header::HeaderValue>) -> Result<f64, String> {
    let value = value.ok_or("header missing")?;
    let text = value.to_str().map_err(|_| "not text".to_string())?.trim();
    let load: f64 = text
        .parse()
        .map_err(|_| format!("{text:?} is not a number"))?;
    if !(0.0..=1.0).contains(&load) {
        return Err(format!("{load} is outside 0..=1"));
    }
    Ok(load)
}
