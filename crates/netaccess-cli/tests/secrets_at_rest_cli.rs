//! The CLI's state files (issue 10, fixes 8 and 10): `--cookie-jar` and `--hsts-store` files
//! are 0600, `--cache-dir` folders 0700 and files 0600; `--insecure` cannot erase a stored
//! HSTS policy; two runs saving one jar at the same time keep both runs' cookies
//! (CVE-2023-23915).

#![cfg(unix)]

mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Output;

use netaccess_testserver::TestServer;

async fn run(args: &[&str], cache_home: &Path) -> Output {
    support::output_of(support::command(args, cache_home)).await
}

fn mode(path: &Path) -> u32 {
    std::fs::symlink_metadata(path)
        .unwrap()
        .permissions()
        .mode()
        & 0o777
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        }
        out.push(path);
    }
    out
}

fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn ok(out: &Output) {
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_state_files_are_private_and_insecure_cannot_erase_hsts() {
    let server = TestServer::tls().await;
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, server.ca_cert_pem().unwrap()).unwrap();
    let (jar, hsts, cache) = (
        dir.path().join("jar.json"),
        dir.path().join("hsts.json"),
        dir.path().join("cache"),
    );
    let url = format!(
        "{}/header?Set-Cookie={}&Strict-Transport-Security={}&Cache-Control={}",
        server.base_url_for_host("localhost"),
        enc("sid=s3cret; Max-Age=3600"),
        enc("max-age=3600"),
        enc("max-age=3600")
    );
    let args = [
        "get",
        "--cacert",
        ca.to_str().unwrap(),
        "--cookie-jar",
        jar.to_str().unwrap(),
        "--hsts-store",
        hsts.to_str().unwrap(),
        "--cache-dir",
        cache.to_str().unwrap(),
        &url,
    ];
    ok(&run(&args, dir.path()).await);
    assert_eq!(mode(&jar), 0o600);
    assert_eq!(mode(&hsts), 0o600);
    assert_eq!(mode(&cache), 0o700);
    let entries = walk(&cache);
    assert!(entries.iter().any(|p| p.is_file()), "{entries:?}");
    for path in entries {
        let want = if path.is_dir() { 0o700 } else { 0o600 };
        assert_eq!(mode(&path), want, "{}", path.display());
    }
    assert!(std::fs::read_to_string(&hsts)
        .unwrap()
        .contains("localhost"));

    // --insecure (no CA given: the certificate is untrusted and its errors are ignored):
    // a max-age=0 from that connection does not erase the stored policy.
    let erase = format!(
        "{}/header?Strict-Transport-Security={}",
        server.base_url_for_host("localhost"),
        enc("max-age=0")
    );
    let out = run(
        &[
            "get",
            "--insecure",
            "--hsts-store",
            hsts.to_str().unwrap(),
            &erase,
        ],
        dir.path(),
    )
    .await;
    ok(&out);
    assert!(
        std::fs::read_to_string(&hsts)
            .unwrap()
            .contains("localhost"),
        "--insecure erased the policy"
    );
    // Over a verified connection it does.
    let out = run(
        &[
            "get",
            "--cacert",
            ca.to_str().unwrap(),
            "--hsts-store",
            hsts.to_str().unwrap(),
            &erase,
        ],
        dir.path(),
    )
    .await;
    ok(&out);
    assert!(!std::fs::read_to_string(&hsts)
        .unwrap()
        .contains("localhost"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cve_2023_23915_two_cli_runs_saving_one_jar_keep_both_cookies() {
    let server = TestServer::http1().await;
    let dir = tempfile::tempdir().unwrap();
    let jar = dir.path().join("jar.json");
    // Each run gets its cookie from a redirect to a slow page, so both runs have loaded the
    // (empty) jar and are still running when the other saves.
    let url_for = |name: &str| {
        server.url(&format!(
            "/redirect-to?url={}&set_cookie={}",
            enc(&server.url("/delay/1500")),
            enc(&format!("{name}=1; Max-Age=3600"))
        ))
    };
    let (a, b) = (url_for("alpha"), url_for("beta"));
    let jar_arg = jar.to_str().unwrap();
    let args_a = ["get", "--cookie-jar", jar_arg, &a];
    let args_b = ["get", "--cookie-jar", jar_arg, &b];
    let (ra, rb) = tokio::join!(run(&args_a, dir.path()), run(&args_b, dir.path()));
    ok(&ra);
    ok(&rb);
    let saved = std::fs::read_to_string(&jar).unwrap();
    assert!(
        saved.contains("\"alpha\"") && saved.contains("\"beta\""),
        "{saved}"
    );
    assert_eq!(mode(&jar), 0o600);
}
