//! Certificate verification for a handshake: [`SslError`] and [`SslErrorKind`] (Qt's
//! `QSslError`), which errors a reply ignores ([`IgnoreSsl`]), host pins ([`Pins`]: whole
//! certificates or public keys), and the verifier that runs the manager's (or a request's)
//! verifier and the pins, recording every problem so a failed handshake can say why.

use std::sync::{Arc, Mutex};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::{CertificateError, DigitallySignedStruct, SignatureScheme};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};

use super::Verifier;
use crate::tls_config::Certificate;

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

/// A certificate error of a TLS handshake (Qt's `QSslError`).
#[doc(alias = "QSslError")]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SslError {
    kind: SslErrorKind,
    message: String,
    certificate: Option<Certificate>,
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

    /// The certificate the error is about: the server's own (Qt's `QSslError::certificate`).
    pub fn certificate(&self) -> Option<&Certificate> {
        self.certificate.as_ref()
    }

    pub(super) fn from_rustls(e: &rustls::Error, certificate: Certificate) -> SslError {
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
            certificate: Some(certificate),
        }
    }
}

impl std::fmt::Display for SslError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// The pins of one host: SHA-256 digests of whole certificates and of public keys
/// (SubjectPublicKeyInfo). The server's certificate must match one of either.
#[derive(Debug, Clone, Default)]
pub(crate) struct Pins {
    pub certificates: Vec<[u8; 32]>,
    pub public_keys: Vec<[u8; 32]>,
}

impl Pins {
    /// Whether `leaf` matches a pin.
    fn accept(&self, leaf: &Certificate) -> bool {
        self.certificates.contains(&leaf.sha256())
            || leaf
                .public_key_sha256()
                .is_some_and(|key| self.public_keys.contains(&key))
    }
}

/// Verifies with the manager's (or the request's) verifier and records what was wrong.
#[derive(Debug)]
pub(super) struct RecordingVerifier {
    pub inner: Option<Verifier>,
    pub provider: Arc<CryptoProvider>,
    pub errors: Mutex<Vec<SslError>>,
    pub ignore: IgnoreSsl,
    pub pins: Option<Pins>,
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
        let leaf = Certificate::from_rustls(end_entity.clone().into_owned());
        if let Err(e) = result {
            if !self.record(SslError::from_rustls(&e, leaf.clone())) {
                return Err(e);
            }
        }
        if let Some(pins) = &self.pins {
            if !pins.accept(&leaf) {
                let error = SslError {
                    kind: SslErrorKind::CertificateNotPinned,
                    message: "Neither the server's certificate nor its public key is one of \
                              those pinned for this host"
                        .into(),
                    certificate: Some(leaf),
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
