//! Errors: [`NetworkError`] carries Qt's `QNetworkReply::NetworkError` codes, [`Error`] wraps
//! a code with a human message and the underlying cause.
//!
//! The HTTP status to code table ([`NetworkError::from_http_status`]) is Qt's own
//! (`QNetworkReplyHttpImplPrivate::statusCodeToNetworkError` in qtbase).

use std::fmt;
use std::sync::Arc;

/// Qt's `QNetworkReply::NetworkError`: what went wrong with a reply.
///
/// The numeric values ([`NetworkError::code`]) are Qt's, so logs can be compared.
#[doc(alias = "QNetworkReply::NetworkError")]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum NetworkError {
    /// The remote server refused the connection.
    ConnectionRefusedError,
    /// The remote server closed the connection before the reply was complete.
    RemoteHostClosedError,
    /// The remote host name was not found.
    HostNotFoundError,
    /// The connection timed out, or the transfer stalled past its timeout.
    TimeoutError,
    /// The operation was cancelled with `abort()`.
    OperationCanceledError,
    /// The TLS handshake failed.
    SslHandshakeFailedError,
    /// The connection broke because of a temporary failure (e.g. roaming).
    TemporaryNetworkFailureError,
    /// The connection broke or could not be established (network session error).
    NetworkSessionFailedError,
    /// Background request not allowed.
    BackgroundRequestNotAllowedError,
    /// Too many redirects were followed.
    TooManyRedirectsError,
    /// A redirect went from an encrypted to an unencrypted protocol.
    InsecureRedirectError,
    /// Another transport failure.
    UnknownNetworkError,
    /// The connection to the proxy was refused.
    ProxyConnectionRefusedError,
    /// The proxy closed the connection prematurely.
    ProxyConnectionClosedError,
    /// The proxy host name was not found.
    ProxyNotFoundError,
    /// The connection to the proxy timed out.
    ProxyTimeoutError,
    /// The proxy requires authentication and none was accepted.
    ProxyAuthenticationRequiredError,
    /// Some other proxy failure.
    UnknownProxyError,
    /// Access to the content was denied (HTTP 403).
    ContentAccessDenied,
    /// The operation is not permitted on the content (HTTP 405).
    ContentOperationNotPermittedError,
    /// The content was not found (HTTP 404).
    ContentNotFoundError,
    /// The server requires authentication and none was accepted (HTTP 401).
    AuthenticationRequiredError,
    /// The request had to be sent again but its body could not be replayed.
    ContentReSendError,
    /// The request conflicts with the current state of the resource (HTTP 409).
    ContentConflictError,
    /// The resource is gone (HTTP 410).
    ContentGoneError,
    /// Some other content error (other 4xx).
    UnknownContentError,
    /// The protocol is not known (unsupported scheme).
    ProtocolUnknownError,
    /// The operation is invalid for this protocol (bad request, bad header, HTTP 400).
    ProtocolInvalidOperationError,
    /// A protocol failure: malformed response, HTTP/2 error.
    ProtocolFailure,
    /// The server hit an internal error (HTTP 500).
    InternalServerError,
    /// The server does not implement the operation (HTTP 501).
    OperationNotImplementedError,
    /// The service is unavailable (HTTP 503).
    ServiceUnavailableError,
    /// Some other server error (other 5xx).
    UnknownServerError,
}

impl NetworkError {
    /// Qt's numeric value of the code.
    pub fn code(self) -> u32 {
        use NetworkError::*;
        match self {
            ConnectionRefusedError => 1,
            RemoteHostClosedError => 2,
            HostNotFoundError => 3,
            TimeoutError => 4,
            OperationCanceledError => 5,
            SslHandshakeFailedError => 6,
            TemporaryNetworkFailureError => 7,
            NetworkSessionFailedError => 8,
            BackgroundRequestNotAllowedError => 9,
            TooManyRedirectsError => 10,
            InsecureRedirectError => 11,
            UnknownNetworkError => 99,
            ProxyConnectionRefusedError => 101,
            ProxyConnectionClosedError => 102,
            ProxyNotFoundError => 103,
            ProxyTimeoutError => 104,
            ProxyAuthenticationRequiredError => 105,
            UnknownProxyError => 199,
            ContentAccessDenied => 201,
            ContentOperationNotPermittedError => 202,
            ContentNotFoundError => 203,
            AuthenticationRequiredError => 204,
            ContentReSendError => 205,
            ContentConflictError => 206,
            ContentGoneError => 207,
            UnknownContentError => 299,
            ProtocolUnknownError => 301,
            ProtocolInvalidOperationError => 302,
            ProtocolFailure => 399,
            InternalServerError => 401,
            OperationNotImplementedError => 402,
            ServiceUnavailableError => 403,
            UnknownServerError => 499,
        }
    }

    /// The variant's name, as Qt spells it (`"ContentNotFoundError"`).
    pub fn name(self) -> &'static str {
        use NetworkError::*;
        match self {
            ConnectionRefusedError => "ConnectionRefusedError",
            RemoteHostClosedError => "RemoteHostClosedError",
            HostNotFoundError => "HostNotFoundError",
            TimeoutError => "TimeoutError",
            OperationCanceledError => "OperationCanceledError",
            SslHandshakeFailedError => "SslHandshakeFailedError",
            TemporaryNetworkFailureError => "TemporaryNetworkFailureError",
            NetworkSessionFailedError => "NetworkSessionFailedError",
            BackgroundRequestNotAllowedError => "BackgroundRequestNotAllowedError",
            TooManyRedirectsError => "TooManyRedirectsError",
            InsecureRedirectError => "InsecureRedirectError",
            UnknownNetworkError => "UnknownNetworkError",
            ProxyConnectionRefusedError => "ProxyConnectionRefusedError",
            ProxyConnectionClosedError => "ProxyConnectionClosedError",
            ProxyNotFoundError => "ProxyNotFoundError",
            ProxyTimeoutError => "ProxyTimeoutError",
            ProxyAuthenticationRequiredError => "ProxyAuthenticationRequiredError",
            UnknownProxyError => "UnknownProxyError",
            ContentAccessDenied => "ContentAccessDenied",
            ContentOperationNotPermittedError => "ContentOperationNotPermittedError",
            ContentNotFoundError => "ContentNotFoundError",
            AuthenticationRequiredError => "AuthenticationRequiredError",
            ContentReSendError => "ContentReSendError",
            ContentConflictError => "ContentConflictError",
            ContentGoneError => "ContentGoneError",
            UnknownContentError => "UnknownContentError",
            ProtocolUnknownError => "ProtocolUnknownError",
            ProtocolInvalidOperationError => "ProtocolInvalidOperationError",
            ProtocolFailure => "ProtocolFailure",
            InternalServerError => "InternalServerError",
            OperationNotImplementedError => "OperationNotImplementedError",
            ServiceUnavailableError => "ServiceUnavailableError",
            UnknownServerError => "UnknownServerError",
        }
    }

    /// Qt's mapping of an HTTP error status (>= 400) to a code; `None` below 400.
    pub fn from_http_status(status: u16) -> Option<NetworkError> {
        use NetworkError::*;
        Some(match status {
            0..=399 => return None,
            400 | 418 => ProtocolInvalidOperationError,
            401 => AuthenticationRequiredError,
            403 => ContentAccessDenied,
            404 => ContentNotFoundError,
            405 => ContentOperationNotPermittedError,
            407 => ProxyAuthenticationRequiredError,
            409 => ContentConflictError,
            410 => ContentGoneError,
            500 => InternalServerError,
            501 => OperationNotImplementedError,
            503 => ServiceUnavailableError,
            402..=499 => UnknownContentError,
            _ => UnknownServerError,
        })
    }
}

impl fmt::Display for NetworkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

type Source = Arc<dyn std::error::Error + Send + Sync + 'static>;

/// An error of a reply: a Qt code ([`Error::kind`]), a message for humans, and the cause.
///
/// Cheap to clone (the source is shared), so every signal handler and awaiting task can hold
/// the same error.
#[derive(Clone)]
pub struct Error {
    kind: NetworkError,
    message: String,
    source: Option<Source>,
    /// The URL of the reply the error ended (set when the reply finishes with it).
    url: Option<Box<url::Url>>,
    /// The HTTP status, when the error stands for an HTTP error status.
    status: Option<u16>,
}

impl Error {
    /// An error of `kind` with a message. A password in any URL the message quotes is
    /// removed (Qt's `toDisplayString()`): error messages end up in logs and terminals.
    ///
    /// ```
    /// use netaccess::{Error, NetworkError};
    /// let e = Error::new(NetworkError::HostNotFoundError, "http://carol:pw4cache99@host.invalid/ failed");
    /// assert_eq!(e.message(), "http://carol@host.invalid/ failed");
    /// ```
    pub fn new(kind: NetworkError, message: impl Into<String>) -> Self {
        let mut message = message.into();
        if let std::borrow::Cow::Owned(clean) = redact_passwords(&message) {
            message = clean;
        }
        Error {
            kind,
            message,
            source: None,
            url: None,
            status: None,
        }
    }

    /// The same error with an underlying cause attached.
    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(Arc::new(source));
        self
    }

    /// The Qt code.
    pub fn kind(&self) -> NetworkError {
        self.kind
    }

    /// The human-readable message (Qt's `errorString()`).
    #[doc(alias = "errorString")]
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The URL of the reply this error ended (the last hop of a redirect chain). Shown
    /// without its password by `Display` and `Debug`.
    pub fn url(&self) -> Option<&url::Url> {
        self.url.as_deref()
    }

    pub(crate) fn with_url(mut self, url: &url::Url) -> Self {
        if self.url.is_none() {
            self.url = Some(Box::new(url.clone()));
        }
        self
    }

    pub(crate) fn with_status(mut self, status: u16) -> Self {
        self.status = Some(status);
        self
    }

    /// The HTTP status this error stands for: `Some` exactly when [`is_http_status`](Self::is_http_status).
    pub fn status(&self) -> Option<u16> {
        self.status
    }

    /// True when the server answered with an HTTP error status (4xx, 5xx): the reply still
    /// has the status, headers and body.
    ///
    /// ```
    /// use netaccess::{Error, NetworkError};
    /// let e = Error::new(NetworkError::HostNotFoundError, "no such host");
    /// assert!(e.is_connect() && !e.is_http_status() && !e.is_tls());
    /// ```
    pub fn is_http_status(&self) -> bool {
        self.status.is_some()
    }

    /// True when no connection could be made to the server: refused, host not found, or a
    /// network failure before any byte was exchanged.
    pub fn is_connect(&self) -> bool {
        matches!(
            self.kind,
            NetworkError::ConnectionRefusedError
                | NetworkError::HostNotFoundError
                | NetworkError::TemporaryNetworkFailureError
                | NetworkError::NetworkSessionFailedError
        )
    }

    /// True for a TLS failure: the handshake, the certificate, or the TLS layer mid-transfer.
    pub fn is_tls(&self) -> bool {
        self.kind == NetworkError::SslHandshakeFailedError
    }

    /// True for a failure of, or a refusal by, the proxy.
    pub fn is_proxy(&self) -> bool {
        matches!(
            self.kind,
            NetworkError::ProxyConnectionRefusedError
                | NetworkError::ProxyConnectionClosedError
                | NetworkError::ProxyNotFoundError
                | NetworkError::ProxyTimeoutError
                | NetworkError::ProxyAuthenticationRequiredError
                | NetworkError::UnknownProxyError
        ) && self.status.is_none()
    }

    /// True when following redirects failed: too many, or one the policy refused.
    pub fn is_redirect(&self) -> bool {
        matches!(
            self.kind,
            NetworkError::TooManyRedirectsError | NetworkError::InsecureRedirectError
        )
    }

    /// True for [`NetworkError::TimeoutError`].
    pub fn is_timeout(&self) -> bool {
        self.kind == NetworkError::TimeoutError
    }

    /// True for [`NetworkError::OperationCanceledError`].
    pub fn is_canceled(&self) -> bool {
        self.kind == NetworkError::OperationCanceledError
    }

    pub(crate) fn canceled() -> Self {
        Error::new(NetworkError::OperationCanceledError, "Operation canceled")
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Error");
        d.field("kind", &self.kind).field("message", &self.message);
        if let Some(url) = &self.url {
            d.field("url", &display_url(url));
        }
        if let Some(status) = self.status {
            d.field("status", &status);
        }
        if let Some(s) = &self.source {
            d.field("source", s);
        }
        d.finish()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind, self.message)
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|s| s as &(dyn std::error::Error + 'static))
    }
}

impl From<Error> for std::io::Error {
    fn from(e: Error) -> Self {
        let kind = match e.kind {
            NetworkError::TimeoutError => std::io::ErrorKind::TimedOut,
            NetworkError::ConnectionRefusedError => std::io::ErrorKind::ConnectionRefused,
            NetworkError::OperationCanceledError => std::io::ErrorKind::Interrupted,
            NetworkError::RemoteHostClosedError => std::io::ErrorKind::UnexpectedEof,
            _ => std::io::ErrorKind::Other,
        };
        std::io::Error::new(kind, e)
    }
}

/// A URL as it may be shown to people (Qt's `QUrl::toDisplayString()`): without its password.
///
/// ```
/// let url = url::Url::parse("https://alice:s3cret@127.0.0.1:8443/a?b").unwrap();
/// assert_eq!(netaccess::display_url(&url), "https://alice@127.0.0.1:8443/a?b");
/// ```
pub fn display_url(url: &url::Url) -> String {
    if url.password().is_none() {
        return url.to_string();
    }
    let mut shown = url.clone();
    // Only URLs that cannot have a password fail here, and they have none.
    let _ = shown.set_password(None);
    shown.to_string()
}

/// A URL for `tracing` fields and messages: displays as [`display_url`] (no password).
pub(crate) struct ShownUrl<'a>(pub(crate) &'a url::Url);

impl fmt::Display for ShownUrl<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.password().is_none() {
            return fmt::Display::fmt(self.0, f);
        }
        f.write_str(&display_url(self.0))
    }
}

/// [`display_url`], cut to at most 256 bytes (a URL can be 64 KiB long), for messages.
pub(crate) fn url_for_message(url: &url::Url) -> String {
    const MAX: usize = 256;
    let mut shown = display_url(url);
    if shown.len() > MAX {
        let mut cut = MAX;
        while !shown.is_char_boundary(cut) {
            cut -= 1;
        }
        shown.truncate(cut);
        shown.push('…');
    }
    shown
}

/// `text` with the password removed from every `scheme://user:password@host` in it.
/// `Cow::Borrowed` when there was none.
pub(crate) fn redact_passwords(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.contains("://") {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    let mut changed = false;
    while let Some(at) = rest.find("://") {
        let authority_start = at + 3;
        out.push_str(&rest[..authority_start]);
        let after = &rest[authority_start..];
        let end = after
            .find(|c: char| {
                matches!(c, '/' | '?' | '#' | '"' | '\'' | '<' | '>') || c.is_whitespace()
            })
            .unwrap_or(after.len());
        let authority = &after[..end];
        match authority.rfind('@') {
            Some(userinfo_end) if authority[..userinfo_end].contains(':') => {
                let user_end = authority.find(':').unwrap_or(userinfo_end);
                out.push_str(&authority[..user_end]);
                out.push_str(&authority[userinfo_end..]);
                changed = true;
            }
            _ => out.push_str(authority),
        }
        rest = &after[end..];
    }
    if !changed {
        return std::borrow::Cow::Borrowed(text);
    }
    out.push_str(rest);
    std::borrow::Cow::Owned(out)
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_in_messages_are_removed() {
        for (text, shown) in [
            ("no url here", "no url here"),
            ("http://host/a:b@c", "http://host/a:b@c"),
            (
                "GET http://u:p@h:1/x and https://v:q@[::1]/ failed",
                "GET http://u@h:1/x and https://v@[::1]/ failed",
            ),
            (
                "Invalid URL \"http://a:b:c@@x/\"",
                "Invalid URL \"http://a@x/\"",
            ),
            (
                "socks5h://user:pw@127.0.0.1:1080",
                "socks5h://user@127.0.0.1:1080",
            ),
            ("http://user@host/", "http://user@host/"),
            ("x://", "x://"),
        ] {
            assert_eq!(redact_passwords(text), shown, "{text}");
            assert_eq!(
                Error::new(NetworkError::UnknownNetworkError, text).message(),
                shown
            );
        }
    }

    #[test]
    fn status_table_matches_qt() {
        use NetworkError::*;
        let table = [
            (400, ProtocolInvalidOperationError),
            (418, ProtocolInvalidOperationError),
            (401, AuthenticationRequiredError),
            (403, ContentAccessDenied),
            (404, ContentNotFoundError),
            (405, ContentOperationNotPermittedError),
            (407, ProxyAuthenticationRequiredError),
            (409, ContentConflictError),
            (410, ContentGoneError),
            (422, UnknownContentError),
            (500, InternalServerError),
            (501, OperationNotImplementedError),
            (502, UnknownServerError),
            (503, ServiceUnavailableError),
            (599, UnknownServerError),
        ];
        for (status, code) in table {
            assert_eq!(
                NetworkError::from_http_status(status),
                Some(code),
                "{status}"
            );
        }
        assert_eq!(NetworkError::from_http_status(399), None);
        assert_eq!(NetworkError::from_http_status(200), None);
    }
}
