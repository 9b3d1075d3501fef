//! TLS material for TLS-mode servers: a freshly generated CA, a leaf certificate it
//! signs (SANs: the requested host names plus IP `127.0.0.1`), and the rustls server
//! configuration (ring provider, ALPN `h2` + `http/1.1` or `http/1.1` only).

use std::io;
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use rustls::ServerConfig;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// The IP address every generated leaf certificate is valid for.
const LOOPBACK_IP: &str = "127.0.0.1";

/// Host names used when the builder does not override them.
pub(crate) const DEFAULT_HOSTNAMES: &[&str] = &["localhost", "127.0.0.1", "example.test"];

/// Everything a TLS-mode server needs, plus what clients must trust.
#[derive(Debug)]
pub(crate) struct TlsMaterial {
    /// PEM of the CA certificate clients must trust.
    pub(crate) ca_cert_pem: String,
    /// DER of the same CA certificate.
    pub(crate) ca_cert_der: Vec<u8>,
    /// DER of the leaf certificate the server presents.
    pub(crate) leaf_cert_der: Vec<u8>,
    /// A client certificate and key (PEM) the server accepts, when it requires one.
    pub(crate) client_identity: Option<(String, String)>,
    /// rustls configuration serving the leaf certificate.
    pub(crate) server_config: Arc<ServerConfig>,
}

/// Generates a CA and a leaf for `hostnames`, and a server config offering `h2` if `offer_h2`.
/// The validity period of the leaf certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Validity {
    /// Valid now (from a day ago, for a year).
    Current,
    /// Expired in 2001.
    Expired,
    /// Valid only from 2090.
    NotYetValid,
}

pub(crate) fn generate(
    hostnames: &[String],
    offer_h2: bool,
    validity: Validity,
    require_client_cert: bool,
) -> io::Result<TlsMaterial> {
    let ca_key = KeyPair::generate().map_err(io::Error::other)?;
    let ca_cert = ca_params()?
        .self_signed(&ca_key)
        .map_err(io::Error::other)?;
    let leaf_key = KeyPair::generate().map_err(io::Error::other)?;
    let mut leaf = leaf_params(hostnames)?;
    match validity {
        Validity::Current => {}
        Validity::Expired => {
            leaf.not_before = rcgen::date_time_ymd(2000, 1, 1);
            leaf.not_after = rcgen::date_time_ymd(2001, 1, 1);
        }
        Validity::NotYetValid => {
            leaf.not_before = rcgen::date_time_ymd(2090, 1, 1);
            leaf.not_after = rcgen::date_time_ymd(2091, 1, 1);
        }
    }
    let leaf_cert = leaf
        .signed_by(&leaf_key, &ca_cert, &ca_key)
        .map_err(io::Error::other)?;
    let private_key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der()));
    let chain = vec![leaf_cert.der().clone(), ca_cert.der().clone()];
    // A client identity signed by the same CA, which the server then requires.
    let client_identity = if require_client_cert {
        let client_key = KeyPair::generate().map_err(io::Error::other)?;
        let mut params = CertificateParams::new(Vec::<String>::new()).map_err(io::Error::other)?;
        params.distinguished_name = distinguished_name("netaccess test client");
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        let client_cert = params
            .signed_by(&client_key, &ca_cert, &ca_key)
            .map_err(io::Error::other)?;
        Some((client_cert.pem(), client_key.serialize_pem()))
    } else {
        None
    };
    let client_ca = require_client_cert.then(|| ca_cert.der().clone());
    Ok(TlsMaterial {
        ca_cert_pem: ca_cert.pem(),
        ca_cert_der: ca_cert.der().to_vec(),
        leaf_cert_der: leaf_cert.der().to_vec(),
        client_identity,
        server_config: Arc::new(server_config(chain, private_key, offer_h2, client_ca)?),
    })
}

fn ca_params() -> io::Result<CertificateParams> {
    let mut params = CertificateParams::new(Vec::<String>::new()).map_err(io::Error::other)?;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name = distinguished_name("netaccess test CA");
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    Ok(params)
}

fn leaf_params(hostnames: &[String]) -> io::Result<CertificateParams> {
    let mut names = hostnames.to_vec();
    if !names.iter().any(|name| name == LOOPBACK_IP) {
        names.push(LOOPBACK_IP.to_owned());
    }
    let mut params = CertificateParams::new(names).map_err(io::Error::other)?;
    params.is_ca = IsCa::NoCa;
    params.distinguished_name = distinguished_name("netaccess test server");
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.use_authority_key_identifier_extension = true;
    Ok(params)
}

fn distinguished_name(common_name: &str) -> DistinguishedName {
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, common_name);
    name
}

fn server_config(
    chain: Vec<CertificateDer<'static>>,
    private_key: PrivateKeyDer<'static>,
    offer_h2: bool,
    client_ca: Option<CertificateDer<'static>>,
) -> io::Result<ServerConfig> {
    let provider = Arc::new(ring_provider());
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(io::Error::other)?;
    let builder = match client_ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            roots.add(ca).map_err(io::Error::other)?;
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                provider,
            )
            .build()
            .map_err(io::Error::other)?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder
        .with_single_cert(chain, private_key)
        .map_err(io::Error::other)?;
    config.alpn_protocols = if offer_h2 {
        vec![b"h2".to_vec(), b"http/1.1".to_vec()]
    } else {
        vec![b"http/1.1".to_vec()]
    };
    Ok(config)
}

/// rustls's *ring* provider. rustls 0.23.48 deprecates it because *ring* has no post-quantum key
/// exchange; we keep *ring* (no C toolchain or cmake needed, unlike aws-lc-rs) until a pure-Rust
/// post-quantum provider is available, see docs/dependencies.md.
#[allow(deprecated)]
fn ring_provider() -> rustls::crypto::CryptoProvider {
    rustls::crypto::ring::default_provider()
}
