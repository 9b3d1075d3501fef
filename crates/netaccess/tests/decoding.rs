//! Content decoding through the manager: every coding, stacked codings, raw deflate, the
//! application's own Accept-Encoding, corrupt and truncated data, and the bomb threshold.
#![cfg(all(feature = "brotli", feature = "zstd"))]

mod support;

use support::done;

use netaccess::{NetworkAccessManager, NetworkError, Reply, Request};
use netaccess_testserver::TestServer;
use tokio::io::AsyncReadExt;

pub async fn encode(coding: &str, data: &[u8]) -> Vec<u8> {
    use async_compression::tokio::bufread::{
        BrotliEncoder, DeflateEncoder, GzipEncoder, ZlibEncoder, ZstdEncoder,
    };
    let mut out = Vec::new();
    match coding {
        "gzip" => GzipEncoder::new(data).read_to_end(&mut out).await,
        "deflate" => ZlibEncoder::new(data).read_to_end(&mut out).await,
        "raw-deflate" => DeflateEncoder::new(data).read_to_end(&mut out).await,
        "br" => BrotliEncoder::new(data).read_to_end(&mut out).await,
        "zstd" => ZstdEncoder::new(data).read_to_end(&mut out).await,
        other => panic!("unknown coding {other}"),
    }
    .unwrap();
    out
}

/// The server sends `body` back labelled with `content_encoding`.
fn echo(
    server: &TestServer,
    manager: &NetworkAccessManager,
    body: Vec<u8>,
    content_encoding: &str,
) -> Reply {
    manager.post(
        Request::new(server.url("/echo-body"))
            .with_header("X-Response-Content-Encoding", content_encoding),
        body,
    )
}

fn sample() -> Vec<u8> {
    (0..300_000u32)
        .map(|i| (i % 97) as u8 ^ (i / 1000) as u8)
        .collect()
}

#[tokio::test]
async fn every_coding_is_decoded_transparently() {
    let server = TestServer::http1().await;
    let manager = NetworkAccessManager::new();
    let data = sample();
    for (coding, label) in [
        ("gzip", "gzip"),
        ("deflate", "deflate"),
        ("raw-deflate", "deflate"),
        ("br", "br"),
        ("zstd", "zstd"),
    ] {
        let encoded = encode(coding, &data).await;
        let encoded_len = encoded.len() as u64;
        let reply = echo(&server, &manager, encoded, label);
        let body = reply.bytes().await.unwrap();
        assert_eq!(reply.error().map(|e| e.to_string()), None, "{coding}");
        assert!(body == data, "{coding}: decoded body differs");
        assert!(reply.header("content-encoding").is_none(), "{coding}");
        assert!(reply.header("content-length").is_none(), "{coding}");
        assert_eq!(
            reply.original_content_length(),
            Some(encoded_len),
            "{coding}"
        );
    }
}

#[tokio::test]
async fn accept_encoding_is_sent_unless_the_application_set_one() {
    let server = TestServer::http1().await;
    let manager = NetworkAccessManager::new();
    let reply = manager.get(Request::new(server.url("/echo")));
    let json: serde_json::Value = serde_json::from_slice(&reply.bytes().await.unwrap()).unwrap();
    assert_eq!(
        json["headers"]["accept-encoding"],
        "gzip, deflate, br, zstd"
    );

    // The application asked itself: it gets the body as sent, with its headers.
    let encoded = encode("gzip", b"hello").await;
    let reply = manager.post(
        Request::new(server.url("/echo-body"))
            .with_header("Accept-Encoding", "gzip")
            .with_header("X-Response-Content-Encoding", "gzip"),
        encoded.clone(),
    );
    assert_eq!(reply.bytes().await.unwrap().to_vec(), encoded);
    assert_eq!(reply.header("content-encoding").unwrap(), "gzip");
}

#[tokio::test]
async fn stacked_codings_are_undone_in_reverse_order() {
    let server = TestServer::http1().await;
    let manager = NetworkAccessManager::new();
    let data = sample();
    let twice = encode("br", &encode("gzip", &data).await).await;
    let reply = echo(&server, &manager, twice, "gzip, br");
    assert!(reply.bytes().await.unwrap() == data);
    assert_eq!(reply.error().map(|e| e.to_string()), None);
}

#[tokio::test]
async fn corrupt_and_truncated_data_are_errors_not_short_bodies() {
    let server = TestServer::http1().await;
    let manager = NetworkAccessManager::new();
    let garbage: Vec<u8> = (0..5000u32).map(|i| (i * 7919 % 251) as u8).collect();
    for coding in ["gzip", "deflate", "br", "zstd"] {
        let reply = echo(&server, &manager, garbage.clone(), coding);
        done(&reply).await;
        assert_eq!(
            reply.error().map(|e| e.kind()),
            Some(NetworkError::ProtocolFailure),
            "{coding}"
        );
        assert!(reply.bytes().await.is_err(), "{coding}");
    }
    for coding in ["gzip", "deflate", "br", "zstd"] {
        let mut encoded = encode(coding, &sample()).await;
        encoded.truncate(encoded.len() / 2);
        let label = if coding == "deflate" {
            "deflate"
        } else {
            coding
        };
        let reply = echo(&server, &manager, encoded, label);
        done(&reply).await;
        let error = reply
            .error()
            .unwrap_or_else(|| panic!("{coding}: a truncated body must fail"));
        assert_eq!(
            error.kind(),
            NetworkError::ProtocolFailure,
            "{coding}: {error}"
        );
    }
}

#[tokio::test]
async fn high_ratios_are_fine_below_the_threshold_and_when_disabled() {
    let server = TestServer::http1().await;
    let manager = NetworkAccessManager::new();
    let zeros = vec![0u8; 8 << 20];
    let encoded = encode("gzip", &zeros).await;
    assert!(zeros.len() / encoded.len() > 40);
    let reply = echo(&server, &manager, encoded.clone(), "gzip");
    assert_eq!(
        reply.bytes().await.unwrap().len(),
        8 << 20,
        "8 MiB is under the 10 MiB threshold"
    );

    let zeros = vec![0u8; 24 << 20];
    let encoded = encode("gzip", &zeros).await;
    let reply = echo(&server, &manager, encoded.clone(), "gzip");
    done(&reply).await;
    let error = reply.error().expect("a bomb past the threshold");
    assert_eq!(error.kind(), NetworkError::ProtocolFailure);
    assert!(error.message().contains("Decompression bomb"), "{error}");

    let request = Request::new(server.url("/echo-body"))
        .with_header("X-Response-Content-Encoding", "gzip")
        .with_decompressed_safety_check_threshold(None);
    let reply = manager.post(request, encoded);
    assert_eq!(
        reply.bytes().await.unwrap().len(),
        24 << 20,
        "check disabled"
    );
}
