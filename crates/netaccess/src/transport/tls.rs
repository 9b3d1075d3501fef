//! TLS with rustls: trust roots (system store plus CAs added by the application, or the
//! operating system's verifier with the `platform-verifier` feature), ALPN (h2 and http/1.1),
//! client certificates, pinning (SHA-256 of the leaf certificate or of its public key), a
//! request's own settings ([`SslConfiguration`](crate::SslConfiguration): roots, client
//! certificate, peer verify name, minimum version, ALPN list), the negotiated session for the
//! reply, and certificate errors reported as [`SslError`]s that the application may choose to
//! ignore (Qt's `sslErrors` / `ignoreSslErrors` flow).
//!
//! Each handshake gets a verifier (`tls/verify.rs`) that records what was wrong with the peer's certificate, so
//! a failed handshake can tell the application *why*; when the errors are ignored the same
//! checks run but do not fail the handshake (signatures are still verified). Each distinct
//! request configuration has its own verifier (when it adds roots) and its own session
//! resumption cache, so no session made with one client certificate serves another.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use rustls::client::danger::ServerCertVerifier;
use rustls::client::{ClientSessionMemoryCache, Resumption, WebPkiServerVerifier};
use rustls::crypto::CryptoProvider;
use rustls::{ClientConfig, RootCertStore};
use rustls_pki_types::{CertificateDer, ServerName};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

use crate::error::{Error, NetworkError};
use crate::tls_config::{Certificate, SslSession, TlsSettings, TlsVersion};

mod verify;
use verify::RecordingVerifier;
pub(crate) use verify::{IgnoreSsl, Pins};
pub use verify::{SslError, SslErrorKind};

pub(crate) use crate::tls_config::ClientIdentity;

/// What was negotiated, for the replies (version, cipher, ALPN, the peer's chain).
pub(crate) type TlsSession = SslSession;

/// The session `conn` negotiated; `None` before the handshake ended.
fn session_of(conn: &rustls::ClientConnection) -> Option<SslSession> {
    let protocol = match conn.protocol_version()? {
        rustls::ProtocolVersion::TLSv1_3 => TlsVersion::Tls13,
        rustls::ProtocolVersion::TLSv1_2 => TlsVersion::Tls12,
        _ => return None,
    };
    let cipher = format!("{:?}", conn.negotiated_cipher_suite()?.suite());
    let alpn = conn.alpn_protocol().map(<[u8]>::to_vec);
    let chain = conn
        .peer_certificates()
        .unwrap_or_default()
        .iter()
        .map(|c| Certificate::from_rustls(c.clone().into_owned()))
        .collect();
    Some(SslSession::new(protocol, cipher, alpn, chain))
}

/// How many requests' TLS configurations a manager keeps a verifier and a resumption cache for
/// (each distinct [`SslConfiguration`](crate::SslConfiguration) is one). Past it the oldest
/// half is forgotten, and made again when used.
pub(crate) const MAX_REQUEST_CONFIGURATIONS: usize = 64;

/// A verifier, as the manager's settings choose: webpki or the platform's.
type Verifier = Arc<dyn ServerCertVerifier>;

/// The request configurations a manager knows (by fingerprint), and the last serial given.
type PerRequestMap = (HashMap<[u8; 32], Arc<PerRequest>>, u64);

/// What a manager keeps for one request TLS configuration.
struct PerRequest {
    /// The verifier, when the configuration adds roots (else the manager's is used).
    verifier: Option<Option<Verifier>>,
    /// Sessions are resumed only with the settings they were made with (a session made with
    /// one client certificate must not serve a request with another).
    resumption: Arc<ClientSessionMemoryCache>,
    /// Insertion order, for forgetting the oldest.
    serial: u64,
}

/// The manager's TLS settings, built once.
pub(crate) struct TlsConfig {
    provider: Arc<CryptoProvider>,
    /// Built at the first handshake: reading the system trust store costs hundreds of file
    /// reads, which a manager that only speaks http:// never needs.
    verifier: OnceLock<Option<Verifier>>,
    extra_roots: Vec<CertificateDer<'static>>,
    use_system_roots: bool,
    /// The operating system's verifier instead of webpki with the system roots.
    platform_verifier: bool,
    ignore_all_errors: bool,
    /// The certificates and public keys accepted per host, when pinned.
    pins: HashMap<String, Pins>,
    /// A client certificate chain and key, for servers that ask for one.
    client_identity: Option<ClientIdentity>,
    resumption: Arc<ClientSessionMemoryCache>,
    /// Per request TLS configuration (by fingerprint), at most [`MAX_REQUEST_CONFIGURATIONS`].
    per_request: Mutex<PerRequestMap>,
}

/// A failed handshake: the error, and the certificate errors seen (empty when the failure had
/// another cause).
pub(crate) struct TlsFailure {
    pub error: Error,
    pub ssl_errors: Vec<SslError>,
}

impl TlsFailure {
    fn new(error: Error) -> TlsFailure {
        TlsFailure {
            error,
            ssl_errors: Vec::new(),
        }
    }
}

/// A finished handshake: the stream, whether h2 was negotiated, the certificate errors
/// ignored, and the session.
pub(crate) type Handshake = (
    TlsStream<TcpStream>,
    bool,
    Vec<SslError>,
    Option<TlsSession>,
);

fn system_roots() -> &'static Vec<CertificateDer<'static>> {
    static ROOTS: OnceLock<Vec<CertificateDer<'static>>> = OnceLock::new();
    ROOTS.get_or_init(|| rustls_native_certs::load_native_certs().certs)
}

/// The manager's TLS settings, as `ManagerBuilder` collected them.
pub(crate) struct TlsOptions {
    pub extra_roots: Vec<CertificateDer<'static>>,
    pub use_system_roots: bool,
    pub platform_verifier: bool,
    pub ignore_all_errors: bool,
    pub pins: HashMap<String, Pins>,
    pub client_identity: Option<ClientIdentity>,
}

impl TlsConfig {
    pub(crate) fn new(options: TlsOptions) -> Self {
        TlsConfig {
            pins: options.pins,
            client_identity: options.client_identity,
            provider: Arc::new(ring_provider()),
            verifier: OnceLock::new(),
            extra_roots: options.extra_roots,
            use_system_roots: options.use_system_roots,
            platform_verifier: options.platform_verifier,
            ignore_all_errors: options.ignore_all_errors,
            resumption: Arc::new(ClientSessionMemoryCache::new(256)),
            per_request: Mutex::new((HashMap::new(), 0)),
        }
    }

    fn verifier(&self) -> &Option<Verifier> {
        self.verifier.get_or_init(|| self.build_verifier(&[]))
    }

    /// A verifier trusting the manager's roots and `more`.
    fn build_verifier(&self, more: &[Certificate]) -> Option<Verifier> {
        let extra = self
            .extra_roots
            .iter()
            .cloned()
            .chain(more.iter().map(|c| c.as_der().clone()));
        if self.platform_verifier {
            return platform_verifier(extra.collect(), self.provider.clone());
        }
        let mut roots = RootCertStore::empty();
        if self.use_system_roots {
            roots.add_parsable_certificates(system_roots().iter().cloned());
        }
        roots.add_parsable_certificates(extra);
        if roots.is_empty() {
            return None;
        }
        WebPkiServerVerifier::builder_with_provider(Arc::new(roots), self.provider.clone())
            .build()
            .ok()
            .map(|v| v as Verifier)
    }

    /// The verifier and resumption cache of a request's TLS configuration.
    fn per_request(&self, settings: &TlsSettings) -> Arc<PerRequest> {
        let mut guard = self.per_request.lock().unwrap_or_else(|e| e.into_inner());
        let (map, serial) = &mut *guard;
        if let Some(found) = map.get(&settings.fingerprint) {
            return found.clone();
        }
        if map.len() >= MAX_REQUEST_CONFIGURATIONS {
            let mut serials: Vec<u64> = map.values().map(|p| p.serial).collect();
            serials.sort_unstable();
            let cut = serials[serials.len() / 2];
            map.retain(|_, p| p.serial >= cut);
        }
        let roots = settings.config.ca_certificates();
        *serial += 1;
        let entry = Arc::new(PerRequest {
            verifier: (!roots.is_empty()).then(|| self.build_verifier(roots)),
            resumption: Arc::new(ClientSessionMemoryCache::new(16)),
            serial: *serial,
        });
        map.insert(settings.fingerprint, entry.clone());
        entry
    }

    /// True when the manager accepts every certificate (`danger_ignore_tls_errors`).
    pub(crate) fn ignores_all(&self) -> bool {
        self.ignore_all_errors
    }

    /// Runs the handshake for `host` with the manager's settings and the request's
    /// `settings`. `http2` offers h2 by ALPN.
    pub(crate) async fn handshake(
        &self,
        tcp: TcpStream,
        host: &str,
        http2: bool,
        ignore: &IgnoreSsl,
        settings: Option<&TlsSettings>,
    ) -> Result<Handshake, TlsFailure> {
        let failed = |message: String| {
            TlsFailure::new(Error::new(NetworkError::SslHandshakeFailedError, message))
        };
        let request = settings.map(|s| &s.config);
        if let Some(error) = request.and_then(|c| c.error()) {
            return Err(failed(format!(
                "Invalid TLS configuration of the request: {error}"
            )));
        }
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let verify_name = request.and_then(|c| c.peer_verify_name()).unwrap_or(bare);
        let name = ServerName::try_from(verify_name.to_string())
            .map_err(|e| failed(format!("Invalid TLS server name {verify_name:?}: {e}")))?;
        let per_request = settings.map(|s| self.per_request(s));
        let verifier = match per_request.as_ref().and_then(|p| p.verifier.as_ref()) {
            Some(own) => own.clone(),
            None => self.verifier().clone(),
        };
        let recorder = Arc::new(RecordingVerifier {
            inner: verifier,
            provider: self.provider.clone(),
            errors: Mutex::new(Vec::new()),
            ignore: if self.ignore_all_errors {
                IgnoreSsl::All
            } else {
                ignore.clone()
            },
            pins: self.pins.get(&bare.to_ascii_lowercase()).cloned(),
        });
        let minimum = request.and_then(|c| c.minimum_version());
        let versions: &[&'static rustls::SupportedProtocolVersion] = match minimum {
            Some(TlsVersion::Tls13) => &[&rustls::version::TLS13],
            _ => rustls::DEFAULT_VERSIONS,
        };
        let config = ClientConfig::builder_with_provider(self.provider.clone())
            .with_protocol_versions(versions)
            .map_err(|e| failed(format!("Unusable TLS versions: {e}")))?
            .dangerous()
            .with_custom_certificate_verifier(recorder.clone());
        let identity = request
            .and_then(|c| c.client_identity())
            .or(self.client_identity.as_ref());
        let mut config = match identity {
            None => config.with_no_client_auth(),
            Some(identity) => config
                .with_client_auth_cert(identity.chain.clone(), identity.key.clone_key())
                .map_err(|e| failed(format!("Unusable client certificate: {e}")))?,
        };
        config.alpn_protocols = match request.and_then(|c| c.allowed_next_protocols()) {
            Some(list) => list
                .iter()
                .filter(|p| http2 || p.as_slice() != b"h2")
                .cloned()
                .collect(),
            None if http2 => vec![b"h2".to_vec(), b"http/1.1".to_vec()],
            None => vec![b"http/1.1".to_vec()],
        };
        let resumption = match &per_request {
            Some(p) => p.resumption.clone(),
            None => self.resumption.clone(),
        };
        config.resumption = Resumption::store(resumption);
        let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
        let result = connector.connect(name, tcp).await;
        let seen = recorder
            .errors
            .lock()
            .map(|v| v.clone())
            .unwrap_or_default();
        match result {
            Ok(stream) => {
                let h2 = stream.get_ref().1.alpn_protocol() == Some(b"h2");
                let session = session_of(stream.get_ref().1);
                Ok((stream, h2, seen, session))
            }
            Err(e) => Err(handshake_failure(host, e, seen, minimum)),
        }
    }
}

/// The error of a failed handshake with `host`.
fn handshake_failure(
    host: &str,
    e: std::io::Error,
    ssl_errors: Vec<SslError>,
    minimum: Option<TlsVersion>,
) -> TlsFailure {
    let rustls_error = e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>());
    let mut message = match ssl_errors.first() {
        Some(first) => format!("TLS handshake with {host} failed: {first}"),
        None => format!("TLS handshake with {host} failed: {e}"),
    };
    // A server without the versions the request requires answers protocol_version (or, for
    // a TLS 1.2 server, may pick a version that was not offered).
    let version_refused = matches!(
        rustls_error,
        Some(rustls::Error::AlertReceived(
            rustls::AlertDescription::ProtocolVersion
        )) | Some(rustls::Error::PeerIncompatible(_))
            | Some(rustls::Error::PeerMisbehaved(_))
    );
    if let (Some(minimum), true) = (minimum, version_refused) {
        message.push_str(&format!(
            " (this request accepts {} or later only)",
            minimum.name()
        ));
    }
    // The peer (or a proxy's tunnel) went away mid-handshake without a TLS alert: Qt's socket
    // reports that as RemoteHostClosedError.
    let closed = ssl_errors.is_empty()
        && rustls_error.is_none()
        && matches!(
            e.kind(),
            std::io::ErrorKind::UnexpectedEof
                | std::io::ErrorKind::ConnectionReset
                | std::io::ErrorKind::ConnectionAborted
                | std::io::ErrorKind::BrokenPipe
        );
    let (kind, message) = if closed {
        (
            NetworkError::RemoteHostClosedError,
            format!("The connection closed during the TLS handshake with {host}: {e}"),
        )
    } else {
        (NetworkError::SslHandshakeFailedError, message)
    };
    TlsFailure {
        error: Error::new(kind, message).with_source(e),
        ssl_errors,
    }
}

/// The operating system's verifier, trusting `extra` too.
#[cfg(feature = "platform-verifier")]
fn platform_verifier(
    extra: Vec<CertificateDer<'static>>,
    provider: Arc<CryptoProvider>,
) -> Option<Verifier> {
    match rustls_platform_verifier::Verifier::new_with_extra_roots(extra, provider) {
        Ok(v) => Some(Arc::new(v)),
        Err(e) => {
            tracing::warn!(error = %e, "the platform's certificate verifier is unavailable");
            None
        }
    }
}

/// Without the `platform-verifier` feature the builder cannot ask for it.
#[cfg(not(feature = "platform-verifier"))]
fn platform_verifier(
    _extra: Vec<CertificateDer<'static>>,
    _provider: Arc<CryptoProvider>,
) -> Option<Verifier> {
    None
}

/// rustls's *ring* provider. rustls 0.23.48 deprecates it because *ring* has no post-quantum key
/// exchange; we keep *ring* (no C toolchain or cmake needed, unlike aws-lc-rs) until a pure-Rust
/// post-quantum provider is available, see docs/dependencies.md.
#[allow(deprecated)]
fn ring_provider() -> rustls::crypto::CryptoProvider {
    rustls::crypto::ring::default_provider()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tls_config::SslConfiguration;

    fn options() -> TlsOptions {
        TlsOptions {
            extra_roots: Vec::new(),
            use_system_roots: false,
            platform_verifier: false,
            ignore_all_errors: false,
            pins: HashMap::new(),
            client_identity: None,
        }
    }

    fn settings(i: usize) -> Arc<TlsSettings> {
        let config = SslConfiguration::new().with_peer_verify_name(format!("h{i}.test"));
        TlsSettings::new(config).unwrap()
    }

    #[test]
    fn request_configurations_kept_are_bounded_and_the_newest_stay() {
        let tls = TlsConfig::new(options());
        let first = tls.per_request(&settings(0));
        assert!(Arc::ptr_eq(&first, &tls.per_request(&settings(0))));
        for i in 1..MAX_REQUEST_CONFIGURATIONS * 3 {
            tls.per_request(&settings(i));
            let kept = tls.per_request.lock().unwrap().0.len();
            assert!(kept <= MAX_REQUEST_CONFIGURATIONS, "{kept}");
        }
        let newest = tls.per_request(&settings(MAX_REQUEST_CONFIGURATIONS * 3 - 1));
        let again = tls.per_request(&settings(MAX_REQUEST_CONFIGURATIONS * 3 - 1));
        assert!(Arc::ptr_eq(&newest, &again));
        // The first was forgotten: it is made again (a fresh resumption cache).
        assert!(!Arc::ptr_eq(&first, &tls.per_request(&settings(0))));
    }
}
