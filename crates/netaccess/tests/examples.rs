//! The two examples (the seed's snippets, ported) run against the test servers.

use std::path::PathBuf;
use std::process::Command;

use netaccess_testserver::TestServer;

fn example(name: &str) -> PathBuf {
    // target/<profile>/deps/<this test> -> target/<profile>/examples/<name>
    let exe = std::env::current_exe().unwrap();
    let path = exe
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("examples")
        .join(name);
    assert!(
        path.exists(),
        "{} not built (cargo test builds examples)",
        path.display()
    );
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simple_download_prints_the_reply() {
    let server = TestServer::http1().await;
    let out = Command::new(example("simple_download"))
        .arg(server.url("/bytes/1234"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("-> 200 (1234 bytes)"), "{stdout}");
    let out = Command::new(example("simple_download"))
        .arg(server.url("/status/404"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("ContentNotFoundError"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn involved_sends_the_raw_header_and_reports_ssl_errors() {
    let server = TestServer::tls().await;
    let dir = std::env::temp_dir().join(format!("netaccess-example-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ca = dir.join("ca.pem");
    std::fs::write(&ca, server.ca_cert_pem().unwrap()).unwrap();

    let out = Command::new(example("involved"))
        .arg(server.url("/echo"))
        .arg(&ca)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.starts_with("status 200 read "), "{stdout}");
    assert_eq!(server.requests_for("/echo"), 1, "{:?}", server.stats());

    // Without the CA: the ssl_errors handler prints the certificate error, the error handler
    // the failure.
    let out = Command::new(example("involved"))
        .arg(server.url("/echo"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("ssl error: UnableToGetLocalIssuerCertificate"),
        "{stderr}"
    );
    assert!(
        stderr.contains("error: SslHandshakeFailedError"),
        "{stderr}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
