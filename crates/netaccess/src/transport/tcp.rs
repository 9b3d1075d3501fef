//! TCP connections to a host name: resolution ([`super::dns`]), then
//! Happy Eyeballs v2 (RFC 8305): the addresses interleaved by family, a new attempt started
//! every [`ATTEMPT_DELAY`] while earlier ones are still pending (at once when one fails), the
//! first connection wins and the others are dropped (closed). One overall timeout covers it.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use futures_util::stream::{FuturesUnordered, StreamExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

use super::{connect_error, Observe, ResolveOverrides};
use crate::error::{Error, NetworkError};
use crate::events::Event;

/// RFC 8305's recommended "Connection Attempt Delay".
pub(crate) const ATTEMPT_DELAY: Duration = Duration::from_millis(250);

/// Resolves `host` and connects to the first address that accepts, within `timeout`,
/// telling `observe` about each step.
pub(crate) async fn connect_tcp(
    host: &str,
    port: u16,
    timeout: Duration,
    overrides: &ResolveOverrides,
    observe: Observe<'_>,
) -> Result<TcpStream, Error> {
    let attempt = async {
        observe(Event::DnsStart { host });
        let (addrs, resolver_spared) = overrides.lookup(host, port).await?;
        let addrs = interleave(addrs);
        observe(Event::DnsEnd {
            host,
            addrs: &addrs,
            resolver_spared,
        });
        race(addrs, ATTEMPT_DELAY, observe)
            .await
            .map_err(|e| connect_error(host, &e).with_source(e))
    };
    match tokio::time::timeout(timeout, attempt).await {
        Ok(result) => result,
        Err(_) => Err(Error::new(
            NetworkError::TimeoutError,
            format!("Connecting to {host}:{port} timed out after {timeout:?}"),
        )),
    }
}

/// The addresses in the order they are tried: families alternating, starting with the
/// family of the first address (the resolver's preference, RFC 6724), each family's own
/// order kept.
pub(crate) fn interleave(addrs: Vec<SocketAddr>) -> Vec<SocketAddr> {
    let Some(first) = addrs.first() else {
        return addrs;
    };
    let first_v6 = first.is_ipv6();
    let (mut preferred, mut other): (Vec<_>, Vec<_>) =
        addrs.into_iter().partition(|a| a.is_ipv6() == first_v6);
    let mut out = Vec::with_capacity(preferred.len() + other.len());
    preferred.reverse();
    other.reverse();
    loop {
        match (preferred.pop(), other.pop()) {
            (None, None) => return out,
            (a, b) => out.extend(a.into_iter().chain(b)),
        }
    }
}

/// Connects to the addresses in order, starting the next one `delay` after the last one
/// started, or at once when an attempt fails; the first connection wins.
async fn race(
    addrs: Vec<SocketAddr>,
    delay: Duration,
    observe: Observe<'_>,
) -> io::Result<TcpStream> {
    let mut waiting = addrs.into_iter();
    let mut running = FuturesUnordered::new();
    let mut last_error = None;
    let mut next_start = Instant::now();
    loop {
        if running.is_empty() || Instant::now() >= next_start {
            match waiting.next() {
                Some(addr) => {
                    observe(Event::ConnectStart { addr });
                    running.push(async move { (addr, TcpStream::connect(addr).await) });
                    next_start = Instant::now() + delay;
                }
                None if running.is_empty() => {
                    let none = || io::Error::new(io::ErrorKind::NotFound, "no address");
                    return Err(last_error.unwrap_or_else(none));
                }
                None => next_start = Instant::now() + Duration::from_secs(86_400),
            }
        }
        tokio::select! {
            Some((addr, result)) = running.next() => match result {
                Ok(stream) => {
                    let _ = stream.set_nodelay(true);
                    observe(Event::ConnectEnd { addr });
                    return Ok(stream); // the others are dropped: their sockets close
                }
                Err(e) => {
                    observe(Event::ConnectFailed { addr, error: &e });
                    last_error = Some(e);
                    next_start = Instant::now(); // start the next one now
                }
            },
            _ = tokio::time::sleep_until(next_start) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn families_alternate_from_the_first_ones() {
        let addrs = vec![
            addr("[::1]:1"),
            addr("[::2]:1"),
            addr("[::3]:1"),
            addr("127.0.0.1:1"),
            addr("127.0.0.2:1"),
        ];
        let order: Vec<String> = interleave(addrs).iter().map(|a| a.to_string()).collect();
        assert_eq!(
            order,
            [
                "[::1]:1",
                "127.0.0.1:1",
                "[::2]:1",
                "127.0.0.2:1",
                "[::3]:1"
            ]
        );
        let v4_first = interleave(vec![addr("127.0.0.1:1"), addr("[::1]:1")]);
        assert!(v4_first[0].is_ipv4());
        assert!(interleave(Vec::new()).is_empty());
    }

    /// A loopback address that never answers a SYN: a listener with a full accept queue
    /// (backlog 0, one connection queued and never accepted) drops further SYNs.
    fn black_hole(ip: &str) -> (std::net::TcpListener, std::net::TcpStream) {
        let socket = socket_listening(ip);
        let port = socket.local_addr().unwrap().port();
        let filler = std::net::TcpStream::connect((ip, port)).unwrap();
        (socket, filler)
    }

    fn socket_listening(ip: &str) -> std::net::TcpListener {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind(format!("{ip}:0").parse().unwrap()).unwrap();
        let listener = socket.listen(0).unwrap();
        listener.into_std().unwrap()
    }

    #[tokio::test]
    async fn a_black_holed_first_address_does_not_hold_up_the_second() {
        let (hole, _filler) = black_hole("127.0.0.2");
        let port = hole.local_addr().unwrap().port();
        let good = tokio::net::TcpListener::bind(("127.0.0.3", port))
            .await
            .unwrap();
        let addrs = vec![
            addr(&format!("127.0.0.2:{port}")),
            good.local_addr().unwrap(),
        ];
        let stream = race(addrs, ATTEMPT_DELAY, &crate::transport::unobserved)
            .await
            .unwrap();
        assert_eq!(stream.peer_addr().unwrap(), good.local_addr().unwrap());
    }

    #[tokio::test]
    async fn a_refused_address_moves_on_at_once_and_all_failing_reports_the_last() {
        let closed = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap()
        };
        let good = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        // With a delay of an hour, only "start the next at once on failure" can get there.
        let hour = Duration::from_secs(3600);
        let stream = race(
            vec![closed, good.local_addr().unwrap()],
            hour,
            &crate::transport::unobserved,
        )
        .await
        .unwrap();
        assert_eq!(stream.peer_addr().unwrap(), good.local_addr().unwrap());
        let e = race(vec![closed, closed], hour, &crate::transport::unobserved)
            .await
            .unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::ConnectionRefused);
    }
}
