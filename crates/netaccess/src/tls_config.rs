//! TLS that the application controls per request and reads back per reply (Qt's
//! `QSslConfiguration` and `QSslCertificate`): [`SslConfiguration`] (extra trusted roots, a
//! client certificate, the peer verify name, a minimum version, the ALPN list) set on a
//! [`Request`](crate::Request), [`SslSession`] (the peer's chain, the negotiated ALPN protocol,
//! version and cipher) read from a [`Reply`](crate::Reply), and [`Certificate`].
//!
//! A request's configuration is fingerprinted once ([`TlsSettings`]): the fingerprint is part of
//! the pool key, so connections are shared only between requests whose TLS settings are equal.
//! The handshake that uses these settings is `transport/tls.rs`.

use std::sync::Arc;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use sha2::{Digest, Sha256};

/// Most protocols in an ALPN list ([`SslConfiguration::with_allowed_next_protocols`]).
pub const MAX_ALPN_PROTOCOLS: usize = 32;

/// A TLS protocol version (Qt's `QSsl::SslProtocol`, the versions rustls speaks).
#[doc(alias = "QSsl::SslProtocol")]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum TlsVersion {
    /// TLS 1.2 (Qt's `TlsV1_2`; as a minimum, `TlsV1_2OrLater`).
    Tls12,
    /// TLS 1.3 (Qt's `TlsV1_3`; as a minimum, `TlsV1_3OrLater`).
    Tls13,
}

impl TlsVersion {
    /// The name used in replies and messages: `"TLSv1.2"`, `"TLSv1.3"`.
    ///
    /// ```
    /// assert_eq!(netaccess::TlsVersion::Tls13.name(), "TLSv1.3");
    /// ```
    pub fn name(self) -> &'static str {
        match self {
            TlsVersion::Tls12 => "TLSv1.2",
            TlsVersion::Tls13 => "TLSv1.3",
        }
    }
}

/// A DER-encoded X.509 certificate (Qt's `QSslCertificate`, the parts network access uses).
///
/// ```
/// use netaccess::Certificate;
/// let none = Certificate::from_pem(b"not a certificate");
/// assert!(none.is_err());
/// let cert = Certificate::from_der(vec![0x30, 0x00]);
/// assert_eq!(cert.der(), &[0x30, 0x00]);
/// assert_eq!(cert.public_key_sha256(), None); // not a parsable certificate
/// ```
#[doc(alias = "QSslCertificate")]
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Certificate(CertificateDer<'static>);

impl Certificate {
    /// A certificate from its DER bytes (not checked here: a handshake that uses it does).
    pub fn from_der(der: impl Into<Vec<u8>>) -> Certificate {
        Certificate(CertificateDer::from(der.into()))
    }

    /// Every certificate of one or more PEM blocks (Qt's `QSslCertificate::fromData`). Fails
    /// with `SslHandshakeFailedError` when a block is malformed or there is none.
    pub fn from_pem(pem: &[u8]) -> Result<Vec<Certificate>, crate::Error> {
        let bad =
            |why: String| crate::Error::new(crate::NetworkError::SslHandshakeFailedError, why);
        let certs = CertificateDer::pem_slice_iter(pem)
            .map(|c| c.map(Certificate))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| bad(format!("Invalid PEM certificate: {e}")))?;
        if certs.is_empty() {
            return Err(bad("No certificate in the PEM data".into()));
        }
        Ok(certs)
    }

    /// The DER bytes (Qt's `toDer()`).
    pub fn der(&self) -> &[u8] {
        self.0.as_ref()
    }

    /// The SHA-256 digest of the DER (Qt's `digest(QCryptographicHash::Sha256)`): what
    /// [`ManagerBuilder::pin_certificate_sha256`](crate::ManagerBuilder::pin_certificate_sha256)
    /// pins.
    pub fn sha256(&self) -> [u8; 32] {
        Sha256::digest(self.der()).into()
    }

    /// The SHA-256 digest of the certificate's SubjectPublicKeyInfo (the public-key pin of
    /// RFC 7469): what
    /// [`ManagerBuilder::pin_public_key_sha256`](crate::ManagerBuilder::pin_public_key_sha256)
    /// pins. `None` when the DER is not a certificate.
    pub fn public_key_sha256(&self) -> Option<[u8; 32]> {
        let parsed = webpki::EndEntityCert::try_from(&self.0).ok()?;
        Some(Sha256::digest(parsed.subject_public_key_info().as_ref()).into())
    }

    pub(crate) fn as_der(&self) -> &CertificateDer<'static> {
        &self.0
    }

    pub(crate) fn from_rustls(der: CertificateDer<'static>) -> Certificate {
        Certificate(der)
    }
}

impl std::fmt::Debug for Certificate {
    /// The SHA-256 digest, in hex (the DER is long and says little to a reader).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let hex: String = self.sha256().iter().map(|b| format!("{b:02x}")).collect();
        write!(f, "Certificate(sha256:{hex})")
    }
}

/// A client certificate chain (leaf first) and its private key.
pub(crate) struct ClientIdentity {
    pub chain: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
}

impl ClientIdentity {
    /// Parses a PEM chain (leaf first) and a PEM key (PKCS#8, PKCS#1 or SEC1).
    pub(crate) fn from_pem(chain_pem: &[u8], key_pem: &[u8]) -> Result<Self, String> {
        let chain = CertificateDer::pem_slice_iter(chain_pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("Invalid client certificate: {e}"))?;
        if chain.is_empty() {
            return Err("Invalid client certificate: no certificate in the PEM data".into());
        }
        let key = PrivateKeyDer::from_pem_slice(key_pem)
            .map_err(|e| format!("Invalid client key: {e}"))?;
        Ok(ClientIdentity { chain, key })
    }
}

impl std::fmt::Debug for ClientIdentity {
    /// The chain's length only: the key is a secret.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientIdentity")
            .field("chain", &self.chain.len())
            .field("key", &"<redacted>")
            .finish()
    }
}

/// The TLS settings of one request (Qt's `QSslConfiguration` set with
/// `QNetworkRequest::setSslConfiguration`, and `setPeerVerifyName`). Each one left unset keeps
/// the manager's.
///
/// Requests whose settings differ never share a connection (the settings are part of the pool
/// key); requests with equal settings do.
///
/// ```
/// use netaccess::{Request, SslConfiguration, TlsVersion};
/// let tls = SslConfiguration::new()
///     .with_peer_verify_name("service.internal")
///     .with_minimum_version(TlsVersion::Tls13)
///     .with_allowed_next_protocols(["http/1.1"]);
/// let request = Request::new("https://10.0.0.7:8443/health").with_ssl_configuration(tls);
/// let tls = request.ssl_configuration().unwrap();
/// assert_eq!(tls.peer_verify_name(), Some("service.internal"));
/// assert_eq!(tls.minimum_version(), Some(TlsVersion::Tls13));
/// ```
#[doc(alias = "QSslConfiguration")]
#[derive(Clone, Default)]
#[must_use = "a configuration does nothing until it is set on a request"]
pub struct SslConfiguration {
    ca_certificates: Vec<Certificate>,
    client_identity: Option<Arc<ClientIdentity>>,
    peer_verify_name: Option<String>,
    minimum_version: Option<TlsVersion>,
    alpn: Option<Vec<Vec<u8>>>,
    /// The first setting that was invalid: the request fails with it (as
    /// `SslHandshakeFailedError`) when it connects over TLS.
    error: Option<String>,
}

impl SslConfiguration {
    /// Every setting left to the manager.
    pub fn new() -> Self {
        SslConfiguration::default()
    }

    /// Trusts `certificate` as a root for this request, besides the manager's roots (Qt's
    /// `addCaCertificate`).
    #[doc(alias = "addCaCertificate")]
    pub fn with_ca_certificate(mut self, certificate: Certificate) -> Self {
        self.ca_certificates.push(certificate);
        self
    }

    /// Trusts the certificates of `pem` (one or more PEM blocks) as roots for this request.
    /// Malformed PEM is remembered: the request then fails with `SslHandshakeFailedError`.
    ///
    /// ```
    /// let tls = netaccess::SslConfiguration::new().with_ca_certificates_pem(b"junk");
    /// assert!(tls.error().unwrap().contains("PEM"));
    /// ```
    pub fn with_ca_certificates_pem(mut self, pem: &[u8]) -> Self {
        match Certificate::from_pem(pem) {
            Ok(certs) => self.ca_certificates.extend(certs),
            Err(e) => self.fail(e.message().to_owned()),
        }
        self
    }

    /// The roots this request trusts besides the manager's (Qt's `caCertificates`, less the
    /// manager's).
    pub fn ca_certificates(&self) -> &[Certificate] {
        &self.ca_certificates
    }

    /// A client certificate chain (PEM, leaf first) and its private key (PEM: PKCS#8, PKCS#1 or
    /// SEC1), presented to a server that asks for one, instead of the manager's (Qt's
    /// `setLocalCertificateChain` and `setPrivateKey`). Malformed PEM is remembered: the
    /// request then fails with `SslHandshakeFailedError`.
    #[doc(alias = "setLocalCertificateChain")]
    #[doc(alias = "setPrivateKey")]
    pub fn with_client_certificate_pem(mut self, chain_pem: &[u8], key_pem: &[u8]) -> Self {
        match ClientIdentity::from_pem(chain_pem, key_pem) {
            Ok(identity) => self.client_identity = Some(Arc::new(identity)),
            Err(e) => self.fail(e),
        }
        self
    }

    /// The client certificate chain set on this configuration (Qt's `localCertificateChain`).
    pub fn client_certificate_chain(&self) -> Vec<Certificate> {
        self.client_identity
            .iter()
            .flat_map(|i| i.chain.iter().cloned().map(Certificate))
            .collect()
    }

    /// Qt's `QNetworkRequest::setPeerVerifyName`: the server's certificate is verified against
    /// `name` instead of the URL's host. As in Qt, `name` is also the server name sent (SNI),
    /// so a server hosting several names presents the right certificate; the connection still
    /// goes to the URL's host. Certificate pins are still looked up by the URL's host.
    #[doc(alias = "setPeerVerifyName")]
    pub fn with_peer_verify_name(mut self, name: impl Into<String>) -> Self {
        let name = name.into();
        let bare = name.trim_start_matches('[').trim_end_matches(']');
        match rustls_pki_types::ServerName::try_from(bare) {
            Ok(_) => self.peer_verify_name = Some(bare.to_ascii_lowercase()),
            Err(e) => self.fail(format!("Invalid peer verify name {name:?}: {e}")),
        }
        self
    }

    /// The name verified instead of the URL's host (Qt's `peerVerifyName`).
    #[doc(alias = "peerVerifyName")]
    pub fn peer_verify_name(&self) -> Option<&str> {
        self.peer_verify_name.as_deref()
    }

    /// The oldest TLS version accepted (Qt's `setProtocol(QSsl::TlsV1_3OrLater)`); by default
    /// TLS 1.2 and 1.3 are. A server that speaks only older versions fails the handshake with
    /// `SslHandshakeFailedError`, whose message names the minimum.
    #[doc(alias = "setProtocol")]
    pub fn with_minimum_version(mut self, version: TlsVersion) -> Self {
        self.minimum_version = Some(version);
        self
    }

    /// The oldest TLS version accepted, if set.
    pub fn minimum_version(&self) -> Option<TlsVersion> {
        self.minimum_version
    }

    /// The protocols offered by ALPN, in order of preference (Qt's `setAllowedNextProtocols`),
    /// instead of `h2` and `http/1.1`. The connection speaks HTTP/2 when the server picks `h2`
    /// and HTTP/1.1 otherwise; `h2` is left out for a request that does not allow HTTP/2. An
    /// empty list offers no ALPN. At most [`MAX_ALPN_PROTOCOLS`] protocols of 1 to 255 bytes:
    /// others are remembered as an error that fails the request.
    ///
    /// ```
    /// let tls = netaccess::SslConfiguration::new().with_allowed_next_protocols(["http/1.1"]);
    /// assert_eq!(tls.allowed_next_protocols(), Some(&[b"http/1.1".to_vec()][..]));
    /// let bad = netaccess::SslConfiguration::new().with_allowed_next_protocols([""]);
    /// assert!(bad.error().is_some());
    /// ```
    #[doc(alias = "setAllowedNextProtocols")]
    pub fn with_allowed_next_protocols<I, P>(mut self, protocols: I) -> Self
    where
        I: IntoIterator<Item = P>,
        P: AsRef<[u8]>,
    {
        let list: Vec<Vec<u8>> = protocols
            .into_iter()
            .take(MAX_ALPN_PROTOCOLS + 1)
            .map(|p| p.as_ref().to_vec())
            .collect();
        if list.len() > MAX_ALPN_PROTOCOLS {
            self.fail(format!("More than {MAX_ALPN_PROTOCOLS} ALPN protocols"));
        } else if let Some(bad) = list.iter().find(|p| p.is_empty() || p.len() > 255) {
            self.fail(format!(
                "An ALPN protocol must have 1 to 255 bytes, not {}",
                bad.len()
            ));
        } else {
            self.alpn = Some(list);
        }
        self
    }

    /// The ALPN list set (Qt's `allowedNextProtocols`); `None`: `h2` and `http/1.1`.
    pub fn allowed_next_protocols(&self) -> Option<&[Vec<u8>]> {
        self.alpn.as_deref()
    }

    /// The first invalid setting, which fails the request when it connects over TLS.
    pub fn error(&self) -> Option<&str> {
        self.error.as_deref()
    }

    fn fail(&mut self, error: String) {
        self.error.get_or_insert(error);
    }

    pub(crate) fn client_identity(&self) -> Option<&ClientIdentity> {
        self.client_identity.as_deref()
    }

    /// True when nothing is set: the request uses the manager's settings only.
    fn is_default(&self) -> bool {
        self.ca_certificates.is_empty()
            && self.client_identity.is_none()
            && self.peer_verify_name.is_none()
            && self.minimum_version.is_none()
            && self.alpn.is_none()
            && self.error.is_none()
    }

    /// A digest of every setting: equal settings, equal fingerprints.
    fn fingerprint(&self) -> [u8; 32] {
        let mut h = Sha256::new();
        let mut field = |tag: u8, bytes: &[u8]| {
            h.update([tag]);
            h.update((bytes.len() as u64).to_be_bytes());
            h.update(bytes);
        };
        for ca in &self.ca_certificates {
            field(1, ca.der());
        }
        if let Some(identity) = &self.client_identity {
            for cert in &identity.chain {
                field(2, cert.as_ref());
            }
            field(3, identity.key.secret_der());
        }
        if let Some(name) = &self.peer_verify_name {
            field(4, name.as_bytes());
        }
        if let Some(version) = self.minimum_version {
            field(5, version.name().as_bytes());
        }
        if let Some(alpn) = &self.alpn {
            field(6, &[]);
            for protocol in alpn {
                field(7, protocol);
            }
        }
        if let Some(error) = &self.error {
            field(8, error.as_bytes());
        }
        h.finalize().into()
    }
}

impl std::fmt::Debug for SslConfiguration {
    /// Every setting but the client key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SslConfiguration")
            .field("ca_certificates", &self.ca_certificates)
            .field("client_identity", &self.client_identity)
            .field("peer_verify_name", &self.peer_verify_name)
            .field("minimum_version", &self.minimum_version)
            .field("alpn", &self.alpn)
            .field("error", &self.error)
            .finish()
    }
}

/// The TLS setters of [`Request`](crate::Request) (kept here, beside the configuration).
impl crate::Request {
    /// Qt's `setSslConfiguration`: this request's own TLS settings (extra roots, client
    /// certificate, peer verify name, minimum version, ALPN list); what it leaves unset is the
    /// manager's. Requests with different settings never share a connection. Plain `http`
    /// requests ignore them.
    ///
    /// ```
    /// use netaccess::{Request, SslConfiguration};
    /// let tls = SslConfiguration::new().with_allowed_next_protocols(["http/1.1"]);
    /// let request = Request::new("https://127.0.0.1:8443/").with_ssl_configuration(tls);
    /// assert!(request.ssl_configuration().is_some());
    /// ```
    #[doc(alias = "setSslConfiguration")]
    pub fn with_ssl_configuration(mut self, config: SslConfiguration) -> Self {
        self.set_ssl_configuration(config);
        self
    }

    /// Sets this request's TLS settings (see
    /// [`with_ssl_configuration`](Self::with_ssl_configuration)).
    pub fn set_ssl_configuration(&mut self, config: SslConfiguration) {
        self.set_tls_settings(TlsSettings::new(config));
    }

    /// This request's own TLS settings (Qt's `sslConfiguration`); `None`: the manager's.
    #[doc(alias = "sslConfiguration")]
    pub fn ssl_configuration(&self) -> Option<&SslConfiguration> {
        self.tls_settings().map(|s| &s.config)
    }

    /// Qt's `setPeerVerifyName`: the server's certificate is verified against `name` instead
    /// of the URL's host (and `name` is the server name sent), as
    /// [`SslConfiguration::with_peer_verify_name`].
    ///
    /// ```
    /// let request = netaccess::Request::new("https://127.0.0.1:8443/")
    ///     .with_peer_verify_name("service.test");
    /// assert_eq!(request.peer_verify_name(), Some("service.test"));
    /// ```
    #[doc(alias = "setPeerVerifyName")]
    pub fn with_peer_verify_name(self, name: impl Into<String>) -> Self {
        let config = self.ssl_configuration().cloned().unwrap_or_default();
        self.with_ssl_configuration(config.with_peer_verify_name(name))
    }

    /// The name verified instead of the URL's host (Qt's `peerVerifyName`).
    #[doc(alias = "peerVerifyName")]
    pub fn peer_verify_name(&self) -> Option<&str> {
        self.ssl_configuration().and_then(|c| c.peer_verify_name())
    }
}

/// A request's [`SslConfiguration`] with its fingerprint, computed once: shared (by `Arc`)
/// between the request, its pool key and the connector.
#[derive(Debug)]
pub(crate) struct TlsSettings {
    pub config: SslConfiguration,
    pub fingerprint: [u8; 32],
}

impl TlsSettings {
    /// The settings of `config`; `None` when it sets nothing (the manager's settings apply,
    /// and the request shares connections with requests that set nothing).
    pub(crate) fn new(config: SslConfiguration) -> Option<Arc<TlsSettings>> {
        if config.is_default() {
            return None;
        }
        let fingerprint = config.fingerprint();
        Some(Arc::new(TlsSettings {
            config,
            fingerprint,
        }))
    }
}

impl PartialEq for TlsSettings {
    fn eq(&self, other: &Self) -> bool {
        self.fingerprint == other.fingerprint
    }
}

impl Eq for TlsSettings {}

impl std::hash::Hash for TlsSettings {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.fingerprint.hash(state);
    }
}

/// What a TLS handshake negotiated, for a reply (Qt's `QNetworkReply::sslConfiguration()`:
/// `sessionProtocol`, `sessionCipher`, `nextNegotiatedProtocol`, `peerCertificateChain`).
/// Cheap to clone.
///
/// ```no_run
/// # async fn demo(manager: netaccess::NetworkAccessManager) {
/// let reply = manager.get(netaccess::Request::new("https://example.org/"));
/// reply.bytes().await.ok();
/// if let Some(session) = reply.ssl_session() {
///     println!("{} {:?}", session.protocol().name(), session.negotiated_protocol());
///     for cert in session.peer_certificate_chain() {
///         println!("{cert:?}");
///     }
/// }
/// # }
/// ```
#[doc(alias = "sslConfiguration")]
#[derive(Clone)]
pub struct SslSession(Arc<SessionInner>);

struct SessionInner {
    protocol: TlsVersion,
    cipher: String,
    alpn: Option<Vec<u8>>,
    chain: Vec<Certificate>,
}

impl SslSession {
    pub(crate) fn new(
        protocol: TlsVersion,
        cipher: String,
        alpn: Option<Vec<u8>>,
        chain: Vec<Certificate>,
    ) -> SslSession {
        SslSession(Arc::new(SessionInner {
            protocol,
            cipher,
            alpn,
            chain,
        }))
    }

    /// The TLS version negotiated (Qt's `sessionProtocol`).
    #[doc(alias = "sessionProtocol")]
    pub fn protocol(&self) -> TlsVersion {
        self.0.protocol
    }

    /// The cipher suite negotiated (Qt's `sessionCipher`), e.g. `"TLS13_AES_256_GCM_SHA384"`.
    #[doc(alias = "sessionCipher")]
    pub fn cipher(&self) -> &str {
        &self.0.cipher
    }

    /// The protocol ALPN chose (Qt's `nextNegotiatedProtocol`): `b"h2"`, `b"http/1.1"`, or
    /// `None` when the server chose none.
    #[doc(alias = "nextNegotiatedProtocol")]
    pub fn negotiated_protocol(&self) -> Option<&[u8]> {
        self.0.alpn.as_deref()
    }

    /// The certificates the server presented, its own first (Qt's `peerCertificateChain`).
    #[doc(alias = "peerCertificateChain")]
    pub fn peer_certificate_chain(&self) -> &[Certificate] {
        &self.0.chain
    }

    /// The server's own certificate (Qt's `peerCertificate`).
    #[doc(alias = "peerCertificate")]
    pub fn peer_certificate(&self) -> Option<&Certificate> {
        self.0.chain.first()
    }
}

impl std::fmt::Debug for SslSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SslSession")
            .field("protocol", &self.0.protocol)
            .field("cipher", &self.0.cipher)
            .field("alpn", &self.0.alpn.as_deref().map(String::from_utf8_lossy))
            .field("peer_certificates", &self.0.chain.len())
            .finish()
    }
}

impl PartialEq for SslSession {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
            || (self.0.protocol == other.0.protocol
                && self.0.cipher == other.0.cipher
                && self.0.alpn == other.0.alpn
                && self.0.chain == other.0.chain)
    }
}

impl Eq for SslSession {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_settings_have_equal_fingerprints_and_nothing_set_is_none() {
        assert!(TlsSettings::new(SslConfiguration::new()).is_none());
        let a = TlsSettings::new(SslConfiguration::new().with_peer_verify_name("a.test")).unwrap();
        let b = TlsSettings::new(SslConfiguration::new().with_peer_verify_name("A.test")).unwrap();
        assert_eq!(a, b);
        let c = TlsSettings::new(SslConfiguration::new().with_peer_verify_name("c.test")).unwrap();
        assert_ne!(a, c);
        // An empty ALPN list differs from none.
        let empty = SslConfiguration::new().with_allowed_next_protocols(Vec::<&str>::new());
        let empty = TlsSettings::new(empty).unwrap();
        let h1 =
            TlsSettings::new(SslConfiguration::new().with_allowed_next_protocols(["http/1.1"]));
        assert_ne!(empty, h1.unwrap());
    }

    #[test]
    fn invalid_settings_are_remembered() {
        let too_many = SslConfiguration::new()
            .with_allowed_next_protocols((0..=MAX_ALPN_PROTOCOLS).map(|i| format!("p{i}")));
        assert!(too_many.error().unwrap().contains("ALPN"));
        let long = SslConfiguration::new().with_allowed_next_protocols([vec![b'x'; 256]]);
        assert!(long.error().is_some());
        let ok = SslConfiguration::new().with_allowed_next_protocols([vec![b'x'; 255]]);
        assert!(ok.error().is_none());
        let name = SslConfiguration::new().with_peer_verify_name("bad name!");
        assert!(name.error().unwrap().contains("peer verify name"));
        let identity = SslConfiguration::new().with_client_certificate_pem(b"x", b"y");
        assert!(identity.error().unwrap().contains("client certificate"));
        assert!(TlsSettings::new(identity).is_some());
    }
}
