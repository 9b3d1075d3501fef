//! The TLS part of the fault matrix (issue 10), against a [`ScriptServer`] speaking real TLS
//! on loopback: a TLS failure in the middle of a body, and a close-delimited body whose end
//! has no `close_notify` (a truncation attack), which must be an error, never a short success.

use std::time::Duration;

use netaccess::{NetworkAccessManager, NetworkError, Reply, Request};
use netaccess_testserver::{ScriptServer, Step};

mod support;
use support::{done_within, kind};

const BOUND: Duration = Duration::from_secs(10);

async fn done(reply: &Reply) {
    done_within(reply, BOUND).await;
    // Shown with --nocapture, and with a failing test.
    eprintln!(
        "{} -> {:?}: {:?}",
        reply.url(),
        reply.status_code(),
        reply.error().map(|e| (e.kind(), e.message().to_owned()))
    );
}

fn trusting(server: &ScriptServer) -> NetworkAccessManager {
    NetworkAccessManager::builder()
        .add_root_certificate_pem(server.ca_cert_pem().as_bytes())
        .build()
        .unwrap()
}

/// A fatal `handshake_failure` alert record, as a peer would put it on the wire unencrypted.
const ALERT_RECORD: &[u8] = &[0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x28];

#[tokio::test]
async fn a_tls_alert_mid_body_fails_the_reply() {
    let server = ScriptServer::start_tls(vec![vec![
        Step::Read,
        Step::write(format!(
            "HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n{}",
            "x".repeat(1000)
        )),
        Step::WriteRaw(ALERT_RECORD.to_vec()),
        Step::Hang,
    ]])
    .await;
    let manager = trusting(&server);
    let reply = manager.get(Request::new(server.https_url("/alert")));
    done(&reply).await;
    let error = reply
        .error()
        .expect("the alert ends the reply with an error");
    assert_eq!(error.kind(), NetworkError::UnknownNetworkError, "{error:?}");
    assert!(error.message().contains("TLS"), "{error}");
    assert!(reply.read_all().len() <= 1000);
}

#[tokio::test]
async fn a_close_delimited_body_without_close_notify_is_an_error() {
    let server = ScriptServer::start_tls(vec![vec![
        Step::Read,
        Step::write("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nthe first half"),
        Step::CloseWithoutNotify,
    ]])
    .await;
    let manager = trusting(&server);
    let reply = manager.get(Request::new(server.https_url("/truncated")));
    done(&reply).await;
    assert_eq!(
        kind(&reply),
        Some(NetworkError::RemoteHostClosedError),
        "a truncated body is not a success: {:?}",
        reply.error()
    );
    let message = reply.error().unwrap().message().to_owned();
    assert!(message.contains("close_notify"), "{message}");
}

#[tokio::test]
async fn a_close_delimited_body_ended_by_close_notify_is_whole() {
    let server = ScriptServer::start_tls(vec![vec![
        Step::Read,
        Step::write("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nthe whole body"),
        Step::Close,
    ]])
    .await;
    let manager = trusting(&server);
    let reply = manager.get(Request::new(server.https_url("/whole")));
    done(&reply).await;
    assert_eq!(kind(&reply), None, "{:?}", reply.error());
    assert_eq!(reply.read_all(), "the whole body".as_bytes());
}

#[tokio::test]
async fn a_length_delimited_body_cut_without_close_notify_is_an_error() {
    let server = ScriptServer::start_tls(vec![vec![
        Step::Read,
        Step::write("HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\nonly ten b"),
        Step::CloseWithoutNotify,
    ]])
    .await;
    let manager = trusting(&server);
    let reply = manager.get(Request::new(server.https_url("/cut")));
    done(&reply).await;
    assert_eq!(
        kind(&reply),
        Some(NetworkError::RemoteHostClosedError),
        "{:?}",
        reply.error()
    );
}

/// The server reads the ClientHello and closes (or resets) without a TLS alert: a remote
/// close, as Qt's socket reports it, not a handshake verdict.
#[tokio::test]
async fn a_server_closing_during_the_handshake_is_a_remote_close() {
    for end in [Step::Close, Step::Reset] {
        // A plain TCP script: it never answers the ClientHello.
        let server = ScriptServer::start(vec![vec![
            Step::Sleep(Duration::from_millis(20)),
            end.clone(),
        ]])
        .await;
        let manager = trusting(&server);
        let reply = manager.get(Request::new(server.https_url("/")));
        done(&reply).await;
        assert_eq!(
            kind(&reply),
            Some(NetworkError::RemoteHostClosedError),
            "{end:?}: {:?}",
            reply.error()
        );
    }
}

/// A `close_notify` before the `Content-Length` is reached is a clean TLS close but a short
/// body: still an error.
#[tokio::test]
async fn close_notify_before_the_content_length_is_reached_is_an_error() {
    let server = ScriptServer::start_tls(vec![vec![
        Step::Read,
        Step::write("HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\nonly ten b"),
        Step::Close,
    ]])
    .await;
    let manager = trusting(&server);
    let reply = manager.get(Request::new(server.https_url("/short")));
    done(&reply).await;
    assert_eq!(
        kind(&reply),
        Some(NetworkError::RemoteHostClosedError),
        "{:?}",
        reply.error()
    );
}
