//! [`Meta`]: the response metadata and Qt's reply attributes, as one snapshot.

use http::header::HeaderMap;
use http::{StatusCode, Version};

/// The response status, headers and attributes of a reply (Qt's `QNetworkRequest::Attribute`
/// values, typed).
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct Meta {
    /// `HttpStatusCodeAttribute`.
    pub status: Option<StatusCode>,
    /// `HttpReasonPhraseAttribute`.
    pub reason: Option<String>,
    /// The response headers.
    pub headers: HeaderMap,
    /// HTTP version of the response.
    pub version: Option<Version>,
    /// `ConnectionEncryptedAttribute`.
    pub encrypted: bool,
    /// `Http2WasUsedAttribute`.
    pub http2: bool,
    /// `SourceIsFromCacheAttribute`.
    pub from_cache: bool,
    /// `RedirectionTargetAttribute` (the `Location` of a 3xx, as sent).
    pub redirection_target: Option<String>,
    /// `OriginalContentLengthAttribute`.
    pub original_content_length: Option<u64>,
    /// The TLS version negotiated, for a reply over TLS.
    pub tls_version: Option<String>,
    /// The TLS cipher suite negotiated.
    pub tls_cipher: Option<String>,
    /// The whole TLS session (Qt's `sslConfiguration()`): the peer's certificate chain, the
    /// ALPN protocol, the version and cipher.
    pub ssl_session: Option<crate::SslSession>,
    /// The reply's phase timings (the same as [`Reply::timings`](crate::Reply::timings)) as of
    /// the snapshot taken by [`Reply::meta`](crate::Reply::meta): with the other attributes, for
    /// code that reads a reply's attributes all in one place, as Qt code does. Complete once the
    /// reply finished.
    pub timings: crate::events::Timings,
}
