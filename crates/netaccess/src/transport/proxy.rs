//! Reaching an origin through a proxy: a TCP connection to an HTTP proxy (the caller then
//! sends absolute-form requests), a CONNECT tunnel through it, or a SOCKS5 connection
//! (username/password method; remote DNS for `socks5h`; cargo feature `socks`, without which a
//! SOCKS5 proxy fails at once with `UnknownProxyError`). Failures map to Qt's proxy codes.

use std::io;
use std::time::Duration;

use http::header::{HeaderMap, HeaderValue};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::{connect_tcp, Observe, ResolveOverrides};
use crate::error::{Error, NetworkError};
use crate::proxy::Proxy;

/// Turns an error of connecting to the proxy itself into Qt's proxy codes.
fn proxy_error(proxy: &Proxy, e: Error) -> Error {
    let kind = match e.kind() {
        NetworkError::ConnectionRefusedError => NetworkError::ProxyConnectionRefusedError,
        NetworkError::HostNotFoundError => NetworkError::ProxyNotFoundError,
        NetworkError::TimeoutError => NetworkError::ProxyTimeoutError,
        NetworkError::RemoteHostClosedError => NetworkError::ProxyConnectionClosedError,
        _ => NetworkError::UnknownProxyError,
    };
    Error::new(
        kind,
        format!("Proxy {}:{}: {}", proxy.host(), proxy.port(), e.message()),
    )
}

/// A TCP connection to the proxy.
pub(crate) async fn connect_proxy(
    proxy: &Proxy,
    timeout: Duration,
    overrides: &ResolveOverrides,
    observe: Observe<'_>,
) -> Result<TcpStream, Error> {
    connect_tcp(proxy.host(), proxy.port(), timeout, overrides, observe)
        .await
        .map_err(|e| proxy_error(proxy, e))
}

/// Largest answer head to CONNECT read from a proxy.
const MAX_CONNECT_HEAD: usize = 64 * 1024;
/// Interim (1xx) answers to CONNECT skipped before the final one; one more is the answer
/// (refused as an unexpected status).
const MAX_INTERIM_HEADS: usize = 8;

/// An interim `HTTP/1.x 1xx` head other than `101` (which would switch protocols).
fn is_interim(head: &[u8]) -> bool {
    head.starts_with(b"HTTP/1.")
        && head
            .get(9..12)
            .is_some_and(|code| code.starts_with(b"1") && code != b"101")
}

/// What a CONNECT attempt gave.
pub(crate) enum Tunnel {
    /// The tunnel is open: speak TLS (or anything) to the origin over it.
    Open(TcpStream),
    /// The proxy wants credentials: its 407 headers.
    AuthRequired(HeaderMap),
}

/// Opens a CONNECT tunnel to `host:port` through an HTTP proxy, sending `authorization` as
/// `Proxy-Authorization` and the proxy's extra headers.
pub(crate) async fn connect_tunnel(
    proxy: &Proxy,
    host: &str,
    port: u16,
    authorization: Option<&HeaderValue>,
    timeout: Duration,
    overrides: &ResolveOverrides,
    observe: Observe<'_>,
) -> Result<Tunnel, Error> {
    let mut stream = connect_proxy(proxy, timeout, overrides, observe).await?;
    let authority = if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    let mut head = format!("CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n");
    for (name, value) in proxy.headers() {
        head.push_str(&format!(
            "{}: {}\r\n",
            name,
            String::from_utf8_lossy(value.as_bytes())
        ));
    }
    if let Some(auth) = authorization {
        head.push_str(&format!(
            "Proxy-Authorization: {}\r\n",
            String::from_utf8_lossy(auth.as_bytes())
        ));
    }
    head.push_str("\r\n");
    let exchange = async {
        stream.write_all(head.as_bytes()).await?;
        // Interim (1xx) answers before the final one are skipped, a few at most.
        let mut interim = 0;
        loop {
            let head = read_head(&mut stream).await?;
            if !is_interim(&head) || interim == MAX_INTERIM_HEADS {
                return Ok::<_, io::Error>(head);
            }
            interim += 1;
        }
    };
    let response = match tokio::time::timeout(timeout, exchange).await {
        Err(_) => {
            return Err(Error::new(
                NetworkError::ProxyTimeoutError,
                format!(
                    "CONNECT through {}:{} timed out",
                    proxy.host(),
                    proxy.port()
                ),
            ))
        }
        Ok(Err(e)) if e.kind() == io::ErrorKind::InvalidData => {
            return Err(Error::new(
                NetworkError::UnknownProxyError,
                format!(
                    "The proxy {}:{} answered CONNECT with a head too large (over {} KiB)",
                    proxy.host(),
                    proxy.port(),
                    MAX_CONNECT_HEAD / 1024
                ),
            ))
        }
        Ok(Err(e)) => {
            return Err(Error::new(
                NetworkError::ProxyConnectionClosedError,
                format!(
                    "The proxy {}:{} closed the connection during CONNECT: {e}",
                    proxy.host(),
                    proxy.port()
                ),
            ))
        }
        Ok(Ok(head)) => head,
    };
    match parse_connect_reply(&response) {
        Some(ConnectReply::Open) => Ok(Tunnel::Open(stream)),
        Some(ConnectReply::AuthRequired(map)) => Ok(Tunnel::AuthRequired(map)),
        Some(ConnectReply::Refused(status)) => Err(Error::new(
            NetworkError::UnknownProxyError,
            format!(
                "The proxy {}:{} refused CONNECT to {authority}: status {status}",
                proxy.host(),
                proxy.port()
            ),
        )),
        None => Err(Error::new(
            NetworkError::UnknownProxyError,
            "Malformed answer to CONNECT",
        )),
    }
}

/// A proxy's answer to CONNECT, from its response head.
#[derive(Debug)]
pub(crate) enum ConnectReply {
    /// A 2xx: the tunnel is open.
    Open,
    /// A 407 with its headers (those whose name or value `http` refuses are left out).
    AuthRequired(HeaderMap),
    /// Any other status.
    Refused(u16),
}

/// Parses the response head read by [`read_head`]; `None` when it is not a complete, valid
/// HTTP/1.x response head (at most 64 headers).
pub(crate) fn parse_connect_reply(head: &[u8]) -> Option<ConnectReply> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut parsed = httparse::Response::new(&mut headers);
    let status = match parsed.parse(head) {
        Ok(httparse::Status::Complete(_)) => parsed.code.unwrap_or(0),
        _ => return None,
    };
    Some(match status {
        200..=299 => ConnectReply::Open,
        407 => {
            let mut map = HeaderMap::new();
            for h in parsed.headers.iter() {
                if let (Ok(n), Ok(v)) = (
                    http::header::HeaderName::from_bytes(h.name.as_bytes()),
                    HeaderValue::from_bytes(h.value),
                ) {
                    map.append(n, v);
                }
            }
            ConnectReply::AuthRequired(map)
        }
        other => ConnectReply::Refused(other),
    })
}

/// Reads a response head (up to the blank line, at most 64 KiB), byte by byte so that nothing
/// of the tunnelled stream is consumed.
pub(crate) async fn read_head<R: AsyncRead + Unpin>(stream: &mut R) -> io::Result<Vec<u8>> {
    let mut head = Vec::with_capacity(256);
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if head.len() > MAX_CONNECT_HEAD {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "response head too large",
            ));
        }
        if stream.read(&mut byte).await? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "connection closed",
            ));
        }
        head.push(byte[0]);
    }
    Ok(head)
}

/// A build without the `socks` feature: every SOCKS5 proxy fails before anything is
/// connected, saying why.
#[cfg(not(feature = "socks"))]
pub(crate) async fn connect_socks5(
    proxy: &Proxy,
    _host: &str,
    _port: u16,
    _timeout: Duration,
    _overrides: &ResolveOverrides,
    _observe: Observe<'_>,
) -> Result<TcpStream, Error> {
    Err(Error::new(
        NetworkError::UnknownProxyError,
        format!(
            "SOCKS5 proxy {}:{}: this build of netaccess has no SOCKS support (cargo feature `socks` is off)",
            proxy.host(),
            proxy.port()
        ),
    ))
}

/// Connects to `host:port` through a SOCKS5 proxy: the proxy resolves the name when
/// `remote_dns` (socks5h), otherwise it is resolved here first.
#[cfg(feature = "socks")]
pub(crate) async fn connect_socks5(
    proxy: &Proxy,
    host: &str,
    port: u16,
    timeout: Duration,
    overrides: &ResolveOverrides,
    observe: Observe<'_>,
) -> Result<TcpStream, Error> {
    let socket = connect_proxy(proxy, timeout, overrides, observe).await?;
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let target: tokio_socks::TargetAddr<'static> = match bare.parse::<std::net::IpAddr>() {
        Ok(ip) => tokio_socks::TargetAddr::Ip((ip, port).into()),
        Err(_) if proxy.remote_dns() => {
            tokio_socks::TargetAddr::Domain(bare.to_owned().into(), port)
        }
        Err(_) => {
            let ip = match overrides.get(bare).and_then(|ips| ips.first()) {
                Some(ip) => *ip,
                None => tokio::net::lookup_host((bare, port))
                    .await
                    .ok()
                    .and_then(|mut a| a.next())
                    .map(|a| a.ip())
                    .ok_or_else(|| {
                        Error::new(
                            NetworkError::HostNotFoundError,
                            format!("Host {host} not found"),
                        )
                    })?,
            };
            tokio_socks::TargetAddr::Ip((ip, port).into())
        }
    };
    let handshake = async {
        if proxy.user().is_empty() {
            tokio_socks::tcp::Socks5Stream::connect_with_socket(socket, target).await
        } else {
            tokio_socks::tcp::Socks5Stream::connect_with_password_and_socket(
                socket,
                target,
                proxy.user(),
                proxy.password(),
            )
            .await
        }
    };
    match tokio::time::timeout(timeout, handshake).await {
        Err(_) => Err(Error::new(
            NetworkError::ProxyTimeoutError,
            format!(
                "SOCKS5 handshake with {}:{} timed out",
                proxy.host(),
                proxy.port()
            ),
        )),
        Ok(Ok(stream)) => Ok(stream.into_inner()),
        Ok(Err(e)) => {
            use tokio_socks::Error as S;
            let kind = match &e {
                S::PasswordAuthFailure(_)
                | S::NoAcceptableAuthMethods
                | S::AuthorizationRequired => NetworkError::ProxyAuthenticationRequiredError,
                S::ConnectionRefused => NetworkError::ConnectionRefusedError,
                S::HostUnreachable | S::NetworkUnreachable => NetworkError::HostNotFoundError,
                S::Io(_) => NetworkError::ProxyConnectionClosedError,
                _ => NetworkError::UnknownProxyError,
            };
            Err(Error::new(
                kind,
                format!("SOCKS5 proxy {}:{}: {e}", proxy.host(), proxy.port()),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interim_heads_are_recognised() {
        assert!(is_interim(b"HTTP/1.1 100 Continue\r\n\r\n"));
        assert!(is_interim(b"HTTP/1.1 103 Early Hints\r\n\r\n"));
        assert!(!is_interim(b"HTTP/1.1 101 Switching\r\n\r\n"));
        assert!(!is_interim(b"HTTP/1.1 200 OK\r\n\r\n"));
        assert!(!is_interim(b"HTTP/1.1 1"));
    }

    #[cfg(not(feature = "socks"))]
    #[tokio::test]
    async fn socks5_without_the_socks_feature_fails_at_once_naming_it() {
        // Port 9 on loopback: nothing is connected, so nothing needs to listen.
        let proxy = Proxy::socks5("127.0.0.1", 9);
        let overrides = ResolveOverrides::default();
        let e = connect_socks5(
            &proxy,
            "127.0.0.1",
            80,
            Duration::from_secs(5),
            &overrides,
            &super::super::unobserved,
        )
        .await
        .expect_err("no SOCKS support in this build");
        assert_eq!(e.kind(), NetworkError::UnknownProxyError);
        assert!(e.message().contains("`socks` is off"), "{e}");
    }
}
