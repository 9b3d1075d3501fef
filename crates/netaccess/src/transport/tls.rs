//! TLS with rustls: trust roots (system store plus CAs added by the application), ALPN (h2 and
//! http/1.1), client certificates, certificate pinning (SHA-256 of the leaf), the negotiated
//! version and cipher for the reply, and certificate errors reported as [`SslError`]s that the
//! application may choose to ignore (Qt's `sslErrors` / `ignoreSslErrors` flow).
//!
//! Each handshake gets a verifier that records what was wrong with the peer's certificate, so
//! a failed handshake can tell the application *why*; when the errors are ignored the same
//! checks run but do not fail the handshake (signatures are still verified).

use std::sync::{Arc, Mutex, OnceLock};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{ClientSessionMemoryCache, Resumption, WebPkiServerVerifier};
use rustls::crypto::CryptoProvider;
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

use crate::error::{Error, NetworkError};

/// What was wrong with a peer's certificate (Qt's `QSslError::SslError`, the cases rustls
/// reports).
#[doc(alias = "QSslError::SslError")]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SslErrorKind {
    /// The issuer is not trusted (self-signed or unknown CA).
    UnableToGetLocalIssuerCertificate,
    /// The certificate has expired.
    CertificateExpired,
    /// The certificate is not yet valid.
    CertificateNotYetValid,
    /// The certificate does not name the host.
    HostNameMismatch,
    /// The certificate was revoked.
    CertificateRevoked,
    /// The certificate may not be used for a TLS server.
    InvalidPurpose,
    /// The certificate is malformed or has a bad signature.
    CertificateSignatureFailed,
    /// The certificate is not one of those pinned for the host
    /// ([`ManagerBuilder::pin_certificate_sha256`](crate::ManagerBuilder::pin_certificate_sha256)).
    CertificateNotPinned,
    /// Another certificate problem.
    UnspecifiedError,
}

/// Which certificate errors a handshake accepts (Qt's `ignoreSslErrors()` and
/// `ignoreSslErrors(list)`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) enum IgnoreSsl {
    /// None: any error fails the handshake.
    #[default]
    Nothing,
    /// Every error.
    All,
    /// Only these kinds.
    Kinds(Vec<SslErrorKind>),
}

impl IgnoreSsl {
    pub(crate) fn covers(&self, kind: SslErrorKind) -> bool {
        match self {
            IgnoreSsl::Nothing => false,
            IgnoreSsl::All => true,
            IgnoreSsl::Kinds(kinds) => kinds.contains(&kind),
        }
    }

    /// True when every error in `errors` is ignored.
    pub(crate) fn covers_all(&self, errors: &[SslError]) -> bool {
        errors.iter().all(|e| self.covers(e.kind))
    }
}

/// A client certificate chain and its private key.
#[derive(Debug)]
pub(crate) struct ClientIdentity {
    pub chain: Vec<CertificateDer<'static>>,
    pub key: rustls_pki_types::PrivateKeyDer<'static>,
}

/// What was negotiated: for the reply's attributes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TlsSession {
    pub version: String,
    pub cipher: String,
}

impl TlsSession {
    fn of(conn: &rustls::ClientConnection) -> Option<TlsSession> {
        let version = match conn.protocol_version()? {
            rustls::ProtocolVersion::TLSv1_3 => "TLSv1.3".to_owned(),
            rustls::ProtocolVersion::TLSv1_2 => "TLSv1.2".to_owned(),
            other => format!("{other:?}"),
        };
        let cipher = format!("{:?}", conn.negotiated_cipher_suite()?.suite());
        Some(TlsSession { version, cipher })
    }
}

/// A certificate error of a TLS handshake (Qt's `QSslError`).
#[doc(alias = "QSslError")]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SslError {
    kind: SslErrorKind,
    message: String,
}

impl SslError {
    /// The kind of problem.
    pub fn kind(&self) -> SslErrorKind {
        self.kind
    }

    /// A description for humans.
    pub fn message(&self) -> &str {
        &self.message
    }

    fn from_rustls(e: &rustls::Error) -> SslError {
        let kind = match e {
            rustls::Error::InvalidCertificate(c) => match c {
                CertificateError::UnknownIssuer => SslErrorKind::UnableToGetLocalIssuerCertificate,
                CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                    SslErrorKind::CertificateExpired
                }
                CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                    SslErrorKind::CertificateNotYetValid
                }
                CertificateError::NotValidForName
                | CertificateError::NotValidForNameContext { .. } => SslErrorKind::HostNameMismatch,
                CertificateError::Revoked => SslErrorKind::CertificateRevoked,
                CertificateError::InvalidPurpose
                | CertificateError::InvalidPurposeContext { .. } => SslErrorKind::InvalidPurpose,
                CertificateError::BadSignature | CertificateError::BadEncoding => {
                    SslErrorKind::CertificateSignatureFailed
                }
                _ => SslErrorKind::UnspecifiedError,
            },
            _ => SslErrorKind::UnspecifiedError,
        };
        SslError {
            kind,
            message: e.to_string(),
        }
    }
}

impl std::fmt::Display for SslError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// The manager's TLS settings, built once.
pub(crate) struct TlsConfig {
    provider: Arc<CryptoProvider>,
    /// Built at the first handshake: reading the system trust store costs hundreds of file
    /// reads, which a manager that only speaks http:// never needs.
    verifier: OnceLock<Option<Arc<WebPkiServerVerifier>>>,
    extra_roots: Vec<CertificateDer<'static>>,
    use_system_roots: bool,
    ignore_all_errors: bool,
    /// SHA-256 digests of the certificates accepted per host, when pinned.
    pins: std::collections::HashMap<String, Vec<[u8; 32]>>,
    /// A client certificate chain and key, for servers that ask for one.
    client_identity: Option<ClientIdentity>,
    resumption: Arc<ClientSessionMemoryCache>,
}

/// A failed handshake: the error, and the certificate errors seen (empty when the failure had
/// another cause).
pub(crate) struct TlsFailure {
    pub error: Error,
    pub ssl_errors: Vec<SslError>,
}

fn system_roots() -> &'static Vec<CertificateDer<'static>> {
    static ROOTS: OnceLock<Vec<CertificateDer<'static>>> = OnceLock::new();
    ROOTS.get_or_init(|| rustls_native_certs::load_native_certs().certs)
}

impl TlsConfig {
    pub(crate) fn new(
        extra_roots: &[CertificateDer<'static>],
        use_system_roots: bool,
        ignore_all_errors: bool,
        pins: std::collections::HashMap<String, Vec<[u8; 32]>>,
        client_identity: Option<ClientIdentity>,
    ) -> Self {
        TlsConfig {
            pins,
            client_identity,
            provider: Arc::new(ring_provider()),
            verifier: OnceLock::new(),
            extra_roots: extra_roots.to_vec(),
            use_system_roots,
            ignore_all_errors,
            resumption: Arc::new(ClientSessionMemoryCache::new(256)),
        }
    }

    fn verifier(&self) -> &Option<Arc<WebPkiServerVerifier>> {
        self.verifier.get_or_init(|| {
            let mut roots = RootCertStore::empty();
            if self.use_system_roots {
                roots.add_parsable_certificates(system_roots().iter().cloned());
            }
            roots.add_parsable_certificates(self.extra_roots.iter().cloned());
            if roots.is_empty() {
                return None;
            }
            WebPkiServerVerifier::builder_with_provider(Arc::new(roots), self.provider.clone())
                .build()
                .ok()
        })
    }

    /// True when the manager accepts every certificate (`danger_ignore_tls_errors`).
    pub(crate) fn ignores_all(&self) -> bool {
        self.ignore_all_errors
    }

    /// Runs the handshake for `host`. `http2` offers h2 by ALPN. Returns the stream, whether
    /// h2 was negotiated, and the certificate errors that were ignored.
    pub(crate) async fn handshake(
        &self,
        tcp: TcpStream,
        host: &str,
        http2: bool,
        ignore: &IgnoreSsl,
    ) -> Result<
        (
            TlsStream<TcpStream>,
            bool,
            Vec<SslError>,
            Option<TlsSession>,
        ),
        TlsFailure,
    > {
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let name = ServerName::try_from(bare.to_string()).map_err(|e| TlsFailure {
            error: Error::new(
                NetworkError::SslHandshakeFailedError,
                format!("Invalid TLS server name {host:?}: {e}"),
            ),
            ssl_errors: Vec::new(),
        })?;
        let recorder = Arc::new(RecordingVerifier {
            inner: self.verifier().clone(),
            provider: self.provider.clone(),
            errors: Mutex::new(Vec::new()),
            ignore: if self.ignore_all_errors {
                IgnoreSsl::All
            } else {
                ignore.clone()
            },
            pins: self.pins.get(&bare.to_ascii_lowercase()).cloned(),
        });
        // Invariant: the provider supports the default protocol versions.
        #[allow(clippy::expect_used)]
        let config = ClientConfig::builder_with_provider(self.provider.clone())
            .with_safe_default_protocol_versions()
            .expect("ring supports the default protocol versions")
            .dangerous()
            .with_custom_certificate_verifier(recorder.clone());
        let mut config = match &self.client_identity {
            None => config.with_no_client_auth(),
            Some(identity) => config
                .with_client_auth_cert(identity.chain.clone(), identity.key.clone_key())
                .map_err(|e| TlsFailure {
                    error: Error::new(
                        NetworkError::SslHandshakeFailedError,
                        format!("Unusable client certificate: {e}"),
                    ),
                    ssl_errors: Vec::new(),
                })?,
        };
        config.alpn_protocols = if http2 {
            vec![b"h2".to_vec(), b"http/1.1".to_vec()]
        } else {
            vec![b"http/1.1".to_vec()]
        };
        config.resumption = Resumption::store(self.resumption.clone());
        let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
        match connector.connect(name, tcp).await {
            Ok(stream) => {
                let h2 = stream.get_ref().1.alpn_protocol() == Some(b"h2");
                let ignored = recorder
                    .errors
                    .lock()
                    .map(|v| v.clone())
                    .unwrap_or_default();
                let session = TlsSession::of(stream.get_ref().1);
                Ok((stream, h2, ignored, session))
            }
            Err(e) => {
                let ssl_errors = recorder
                    .errors
                    .lock()
                    .map(|v| v.clone())
                    .unwrap_or_default();
                let message = match ssl_errors.first() {
                    Some(first) => format!("TLS handshake with {host} failed: {first}"),
                    None => format!("TLS handshake with {host} failed: {e}"),
                };
                // The peer (or a proxy's tunnel) went away mid-handshake without a TLS alert:
                // Qt's socket reports that as RemoteHostClosedError.
                let closed = ssl_errors.is_empty()
                    && e.get_ref().is_none_or(|inner| !inner.is::<rustls::Error>())
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
                Err(TlsFailure {
                    error: Error::new(kind, message).with_source(e),
                    ssl_errors,
                })
            }
        }
    }
}

#[derive(Debug)]
struct RecordingVerifier {
    inner: Option<Arc<WebPkiServerVerifier>>,
    provider: Arc<CryptoProvider>,
    errors: Mutex<Vec<SslError>>,
    ignore: IgnoreSsl,
    pins: Option<Vec<[u8; 32]>>,
}

impl RecordingVerifier {
    /// Records `error`; true when it is ignored.
    fn record(&self, error: SslError) -> bool {
        let ignored = self.ignore.covers(error.kind);
        if let Ok(mut errors) = self.errors.lock() {
            errors.push(error);
        }
        ignored
    }
}

impl ServerCertVerifier for RecordingVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let result = match &self.inner {
            Some(v) => {
                v.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
            }
            None => Err(rustls::Error::InvalidCertificate(
                CertificateError::UnknownIssuer,
            )),
        };
        if let Err(e) = result {
            if !self.record(SslError::from_rustls(&e)) {
                return Err(e);
            }
        }
        if let Some(pins) = &self.pins {
            use sha2::Digest;
            let digest: [u8; 32] = sha2::Sha256::digest(end_entity.as_ref()).into();
            if !pins.contains(&digest) {
                let error = SslError {
                    kind: SslErrorKind::CertificateNotPinned,
                    message: "The server's certificate is not one of those pinned for this host"
                        .into(),
                };
                if !self.record(error) {
                    return Err(rustls::Error::InvalidCertificate(
                        CertificateError::ApplicationVerificationFailure,
                    ));
                }
            }
        }
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
            &self.provider.signature_verification_algorithms,
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
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// rustls's *ring* provider. rustls 0.23.48 deprecates it because *ring* has no post-quantum key
/// exchange; we keep *ring* (no C toolchain or cmake needed, unlike aws-lc-rs) until a pure-Rust
/// post-quantum provider is available, see docs/dependencies.md.
#[allow(deprecated)]
fn ring_provider() -> rustls::crypto::CryptoProvider {
    rustls::crypto::ring::default_provider()
}
