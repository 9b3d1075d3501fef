//! The examples run against the test servers: the seed's two snippets, ported, and the
//! cookbook (a REST client, 1,000 downloads, a UI channel, retries and timeouts, a token refresh).

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

/// Runs example `name` with `args` and returns its stdout, asserting it succeeded.
fn run_example(name: &str, args: &[String]) -> String {
    let out = Command::new(example(name)).args(args).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{name}: {stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[cfg(feature = "json")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cookbook_rest_client() {
    let server = TestServer::http1().await;
    let out = run_example("rest_client", &[server.url("/")]);
    assert!(
        out.contains("GET /echo answered for GET with a bearer token: true"),
        "{out}"
    );
    assert!(
        out.contains(r#""name":"new item""#) && out.contains("success: true"),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cookbook_many_downloads() {
    let server = TestServer::http1().await;
    let out = run_example(
        "many_downloads",
        &[server.url("/bytes/1024"), "1000".into()],
    );
    assert!(
        out.contains("1000 downloads, 0 failed, 1024000 bytes reported by progress"),
        "{out}"
    );
    assert!(server.stats().connections_accepted <= 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cookbook_ui_channel() {
    let server = TestServer::http1().await;
    let out = run_example(
        "ui_channel",
        &[server.url("/hello"), server.url("/bytes/100")],
    );
    assert!(out.contains("2 rows shown for 2 replies"), "{out}");
    assert!(out.contains("bytes/100: Some(200), 100 bytes"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cookbook_retry_and_timeouts() {
    let server = TestServer::http1().await;
    let out = run_example("retry_and_timeouts", &[server.url("/")]);
    assert!(out.contains("503: Some(ServiceUnavailableError)"), "{out}");
    assert_eq!(server.requests_for("/status/503"), 4, "three retries");
    assert!(out.contains("deadline: Some(TimeoutError)"), "{out}");
    assert!(out.contains(r#"hello: Ok("hello")"#), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cookbook_token_refresh() {
    let server = TestServer::http1().await;
    let out = run_example("token_refresh", &[server.url("/basic-auth/user/pass")]);
    assert!(out.contains("401 on attempt 1: token refreshed"), "{out}");
    assert!(out.contains("status Some(200)"), "{out}");
}
