//! `HickoryResolver` (cargo feature `hickory`) against a small DNS server on loopback: a
//! name resolves and the request reaches the test server, an unknown name is
//! `HostNotFoundError`, and the manager's DNS cache spares the second question.
#![cfg(feature = "hickory")]

mod support;

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use netaccess::{HickoryResolver, NetworkAccessManager, NetworkError, Request};
use netaccess_testserver::TestServer;
use support::{done, kind};

/// A DNS server on UDP loopback that knows one name (`named.test`, an A record for
/// 127.0.0.1) and counts the questions.
async fn dns_server() -> (SocketAddr, Arc<AtomicUsize>) {
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = socket.local_addr().unwrap();
    let asked = Arc::new(AtomicUsize::new(0));
    let count = asked.clone();
    tokio::spawn(async move {
        let mut buf = [0u8; 512];
        while let Ok((n, peer)) = socket.recv_from(&mut buf).await {
            count.fetch_add(1, Ordering::SeqCst);
            if let Some(answer) = answer(&buf[..n]) {
                let _ = socket.send_to(&answer, peer).await;
            }
        }
    });
    (addr, asked)
}

/// The response to one query: the question copied, an A record for `named.test`, NXDOMAIN
/// for other names, no record for other types.
fn answer(query: &[u8]) -> Option<Vec<u8>> {
    let mut at = 12;
    let mut labels = Vec::new();
    loop {
        let len = *query.get(at)? as usize;
        at += 1;
        if len == 0 {
            break;
        }
        labels.push(String::from_utf8_lossy(query.get(at..at + len)?).to_lowercase());
        at += len;
    }
    let question = query.get(12..at + 4)?;
    let qtype = u16::from_be_bytes([query[at], query[at + 1]]);
    let known = labels == ["named", "test"];
    let with_record = known && qtype == 1;
    let mut out = Vec::new();
    out.extend_from_slice(&query[..2]); // id
    out.extend_from_slice(&[0x81, if known { 0x80 } else { 0x83 }]); // QR RD RA, rcode
    out.extend_from_slice(&[0, 1, 0, u8::from(with_record), 0, 0, 0, 0]);
    out.extend_from_slice(question);
    if with_record {
        out.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4]);
        out.extend_from_slice(&Ipv4Addr::LOCALHOST.octets());
    }
    Some(out)
}

#[tokio::test]
async fn hickory_resolves_through_the_configured_name_server() {
    let (dns, asked) = dns_server().await;
    let server = TestServer::http1().await;
    let manager = NetworkAccessManager::builder()
        .resolver(Arc::new(HickoryResolver::with_name_servers(&[dns])))
        .build()
        .unwrap();
    let url = format!("http://named.test:{}/hello", server.port());
    let reply = manager.get(Request::new(url.as_str()));
    assert_eq!(reply.text().await.unwrap(), "hello");
    let after_first = asked.load(Ordering::SeqCst);
    assert!(after_first >= 1);
    manager.clear_connection_cache();
    let again = manager.get(Request::new(url.as_str()));
    assert_eq!(again.text().await.unwrap(), "hello");
    assert_eq!(
        asked.load(Ordering::SeqCst),
        after_first,
        "the manager's cache answered"
    );

    let missing = manager.get(Request::new(format!(
        "http://missing.test:{}/",
        server.port()
    )));
    done(&missing).await;
    assert_eq!(kind(&missing), Some(NetworkError::HostNotFoundError));
}
