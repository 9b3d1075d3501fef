//! [`ServerBuilder`]: choosing the protocol (or raw fault) and TLS host names of a
//! [`TestServer`] before starting it.

use crate::raw::RawFault;
use crate::server::TestServer;
use crate::tls::DEFAULT_HOSTNAMES;

/// What a server speaks on its connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Protocol {
    /// Cleartext HTTP/1.1.
    Http1,
    /// Cleartext HTTP/1.1 and HTTP/2 with prior knowledge.
    H2c,
    /// TLS; ALPN offers `h2` too if `offer_h2`.
    Tls { offer_h2: bool },
    /// Hand-written responder acting out a fault.
    Raw(RawFault),
}

/// Configures and starts a [`TestServer`]; get one from [`TestServer::builder`].
///
/// The protocol methods ([`http1`](Self::http1), [`h2c`](Self::h2c), [`tls`](Self::tls),
/// [`tls_http1_only`](Self::tls_http1_only), [`raw`](Self::raw)) replace each other;
/// the last one called wins.
#[derive(Debug, Clone)]
pub struct ServerBuilder {
    pub(crate) protocol: Protocol,
    pub(crate) tls_hostnames: Vec<String>,
    pub(crate) tls_validity: crate::tls::Validity,
    pub(crate) tls_client_auth: bool,
}

impl Default for ServerBuilder {
    fn default() -> Self {
        Self {
            protocol: Protocol::Http1,
            tls_hostnames: DEFAULT_HOSTNAMES
                .iter()
                .map(|name| name.to_string())
                .collect(),
            tls_validity: crate::tls::Validity::Current,
            tls_client_auth: false,
        }
    }
}

impl ServerBuilder {
    /// Cleartext HTTP/1.1 only, keep-alive on (the default).
    pub fn http1(mut self) -> Self {
        self.protocol = Protocol::Http1;
        self
    }

    /// Cleartext HTTP/1.1 and HTTP/2 with prior knowledge, detected per connection.
    pub fn h2c(mut self) -> Self {
        self.protocol = Protocol::H2c;
        self
    }

    /// TLS with ALPN offering `h2` and `http/1.1`; serves whichever is negotiated.
    pub fn tls(mut self) -> Self {
        self.protocol = Protocol::Tls { offer_h2: true };
        self
    }

    /// TLS with ALPN offering only `http/1.1`.
    pub fn tls_http1_only(mut self) -> Self {
        self.protocol = Protocol::Tls { offer_h2: false };
        self
    }

    /// TLS that requires a client certificate signed by the server's CA; the one to use is
    /// [`TestServer::client_identity_pem`](crate::TestServer::client_identity_pem).
    pub fn tls_require_client_certificate(mut self) -> Self {
        self.tls_client_auth = true;
        self
    }

    /// TLS with a leaf certificate that expired in 2001 (for certificate-error tests).
    pub fn tls_expired(mut self) -> Self {
        self.tls_validity = crate::tls::Validity::Expired;
        self
    }

    /// TLS with a leaf certificate valid only from 2090 (for certificate-error tests).
    pub fn tls_not_yet_valid(mut self) -> Self {
        self.tls_validity = crate::tls::Validity::NotYetValid;
        self
    }

    /// Subject alternative names of the generated certificate (IP addresses become IP
    /// SANs). IP `127.0.0.1` is always added. Default: `localhost`, `127.0.0.1`,
    /// `example.test`. Only used by TLS servers.
    pub fn tls_hostnames(mut self, names: &[&str]) -> Self {
        self.tls_hostnames = names.iter().map(|name| name.to_string()).collect();
        self
    }

    /// Answers every connection with a hand-written HTTP/1.1 responder that acts out
    /// `fault` (cleartext only; hyper is not involved).
    pub fn raw(mut self, fault: RawFault) -> Self {
        self.protocol = Protocol::Raw(fault);
        self
    }

    /// Binds `127.0.0.1:0` and starts serving.
    ///
    /// # Panics
    ///
    /// If binding or certificate generation fails; use [`try_start`](Self::try_start)
    /// to handle that instead.
    pub async fn start(self) -> TestServer {
        match self.try_start().await {
            Ok(server) => server,
            Err(error) => panic!("netaccess test server failed to start: {error}"),
        }
    }

    /// Like [`start`](Self::start), but reports bind or certificate errors.
    ///
    /// Must be called inside a Tokio runtime with the time driver enabled.
    pub async fn try_start(self) -> std::io::Result<TestServer> {
        TestServer::launch(self).await
    }
}
