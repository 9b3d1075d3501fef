//! Known client CVEs about cookies and HSTS, as named regression tests (issue 10), each
//! against the real jar or HSTS store and, where the CVE is about requests, a real server on
//! 127.0.0.1 (host names are mapped to it with the manager's resolver hook). Also RFC 6797 §8.1
//! (fix 10): HSTS headers are ignored on a connection whose certificate errors were ignored.
// The file tests need the `cookies` and `hsts` features; without them, their helpers go unused.
#![cfg_attr(
    not(all(feature = "cookies", feature = "hsts")),
    allow(unused_imports, dead_code)
)]

mod support;

use support::TempDir;

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use netaccess::url::Url;
use netaccess::{
    Cookie, CookieJar, DefaultCookieJar, HstsPolicy, HstsStore, NetworkAccessManager, Reply,
    Request,
};
use netaccess_testserver::TestServer;
use serde_json::Value;

const LOCAL: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

fn url(s: &str) -> Url {
    Url::parse(s).unwrap()
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

async fn done(reply: &Reply) {
    tokio::time::timeout(Duration::from_secs(30), reply.finished())
        .await
        .expect("finished in time");
}

async fn echo(reply: &Reply) -> Value {
    done(reply).await;
    assert!(reply.error().is_none(), "{:?}", reply.error());
    serde_json::from_slice(&reply.bytes().await.unwrap()).unwrap()
}

async fn tls_server() -> TestServer {
    TestServer::builder()
        .tls()
        .tls_hostnames(&["example.test", "sub.example.test"])
        .start()
        .await
}

/// A manager that trusts `tls`'s CA, maps the test names to 127.0.0.1, and has HSTS on.
fn hsts_manager(tls: &TestServer, store: Arc<HstsStore>) -> NetworkAccessManager {
    NetworkAccessManager::builder()
        .add_root_certificate_pem(tls.ca_cert_pem().unwrap().as_bytes())
        .resolve("example.test", [LOCAL])
        .resolve("example.test.", [LOCAL])
        .resolve("sub.example.test", [LOCAL])
        .resolve("badexample.test", [LOCAL])
        .strict_transport_security(true)
        .hsts_store(store)
        .build()
        .unwrap()
}

/// An https URL on `tls` answering with a `Strict-Transport-Security: value` header.
fn sts(tls: &TestServer, host: &str, value: &str) -> String {
    format!(
        "https://{host}:{}/header?Strict-Transport-Security={}",
        tls.port(),
        enc(value)
    )
}

async fn learn(manager: &NetworkAccessManager, url: String) {
    let reply = manager.get(Request::new(url));
    done(&reply).await;
    assert!(reply.error().is_none(), "{:?}", reply.error());
}

/// Asks for `http_url` (to `plain`, a plain-http server) and checks it was upgraded: the
/// reply's URL is https and not one plaintext request reached `plain`.
async fn assert_upgraded(manager: &NetworkAccessManager, plain: &TestServer, http_url: String) {
    let before = plain.stats().requests_total;
    let reply = manager.get(Request::new(http_url.clone()));
    done(&reply).await;
    assert_eq!(reply.url().scheme(), "https", "{http_url} was not upgraded");
    assert_eq!(
        plain.stats().requests_total,
        before,
        "{http_url} reached the server in plaintext"
    );
}

// ----- HSTS ------------------------------------------------------------------------------------

#[tokio::test]
async fn cve_2022_30115_hsts_trailing_dot() {
    // The store: a trailing dot names the same host, whether learned or asked.
    let store = HstsStore::new();
    assert!(store.process_header(&url("https://dot.test./"), "max-age=3600"));
    assert!(store.is_known_host("dot.test"));
    assert!(store.is_known_host("dot.test."));
    assert!(store.upgrade(&url("http://dot.test./x")).is_some());
    assert_eq!(store.policies()[0].host, "dot.test");
    // Through the manager: a policy learned for example.test upgrades http://example.test./.
    let tls = tls_server().await;
    let plain = TestServer::http1().await;
    let store = Arc::new(HstsStore::new());
    let manager = hsts_manager(&tls, store.clone());
    learn(&manager, sts(&tls, "example.test", "max-age=3600")).await;
    assert_upgraded(
        &manager,
        &plain,
        format!("http://example.test.:{}/hello", plain.port()),
    )
    .await;
}

#[tokio::test]
async fn cve_2022_42916_and_cve_2022_43551_hsts_idn_full_width_dot() {
    let store = HstsStore::new();
    assert!(store.process_header(&url("https://example.test/"), "max-age=3600"));
    // U+3002 IDEOGRAPHIC FULL STOP, U+FF0E FULLWIDTH FULL STOP, U+FF61 HALFWIDTH IDEOGRAPHIC
    // FULL STOP: IDNA maps each to '.', so each names example.test.
    for host in [
        "example\u{3002}test",
        "example\u{FF0E}test",
        "example\u{FF61}test",
        "example.test\u{3002}",
        "EXAMPLE\u{FF0E}TEST",
    ] {
        assert!(store.is_known_host(host), "{host}");
        let http = url(&format!("http://{host}/a"));
        assert!(store.upgrade(&http).is_some(), "{host}");
    }
    // Learned through a full-width dot, it is stored under the ASCII name.
    let other = HstsStore::new();
    assert!(other.process_header(&url("https://learned\u{FF0E}test/"), "max-age=3600"));
    assert_eq!(other.policies()[0].host, "learned.test");
    // Through the manager.
    let tls = tls_server().await;
    let plain = TestServer::http1().await;
    let manager = hsts_manager(&tls, Arc::new(HstsStore::new()));
    learn(&manager, sts(&tls, "example.test", "max-age=3600")).await;
    for host in ["example\u{3002}test", "example\u{FF0E}test"] {
        assert_upgraded(
            &manager,
            &plain,
            format!("http://{host}:{}/hello", plain.port()),
        )
        .await;
    }
}

#[tokio::test]
async fn cve_2023_23914_a_policy_learned_earlier_in_a_run_applies_to_later_urls() {
    let tls = tls_server().await;
    let plain = TestServer::http1().await;
    let manager = hsts_manager(&tls, Arc::new(HstsStore::new()));
    let target = format!("http://example.test:{}/hello", tls.port());
    learn(
        &manager,
        sts(&tls, "example.test", "max-age=3600; includeSubDomains"),
    )
    .await;
    // Later URLs of the run, one after another and several at once, all go over https.
    let reply = manager.get(Request::new(target.clone()));
    assert_eq!(reply.text().await.unwrap(), "hello");
    assert!(reply.is_encrypted());
    let urls: Vec<String> = (0..4)
        .map(|i| {
            let host = if i % 2 == 0 {
                "example.test"
            } else {
                "sub.example.test"
            };
            format!("http://{host}:{}/hello", plain.port())
        })
        .collect();
    let replies: Vec<Reply> = urls
        .iter()
        .map(|u| manager.get(Request::new(u.clone())))
        .collect();
    for reply in &replies {
        done(reply).await;
        assert_eq!(reply.url().scheme(), "https");
    }
    assert_eq!(plain.stats().requests_total, 0);
    // A redirect from a plain server to http://example.test is upgraded too.
    let via = manager.get(Request::new(
        plain.url(&format!("/redirect-to?url={}", enc(&target))),
    ));
    assert_eq!(via.text().await.unwrap(), "hello");
    assert!(via.is_encrypted());
}

#[tokio::test]
async fn cve_2024_9681_a_subdomain_max_age_zero_keeps_the_parent_policy() {
    let tls = tls_server().await;
    let plain = TestServer::http1().await;
    let store = Arc::new(HstsStore::new());
    let manager = hsts_manager(&tls, store.clone());
    learn(
        &manager,
        sts(&tls, "example.test", "max-age=100000; includeSubDomains"),
    )
    .await;
    let parent_expiry = store.policies()[0].expiry;
    // The subdomain says max-age=0, then a short max-age: the parent's policy and its expiry
    // stay as they were, and the subdomain stays covered by it.
    learn(&manager, sts(&tls, "sub.example.test", "max-age=0")).await;
    assert!(store.is_known_host("sub.example.test"));
    learn(&manager, sts(&tls, "sub.example.test", "max-age=1")).await;
    let policies = store.policies();
    let parent = policies.iter().find(|p| p.host == "example.test").unwrap();
    assert_eq!(parent.expiry, parent_expiry);
    assert!(parent.include_subdomains);
    learn(&manager, sts(&tls, "sub.example.test", "max-age=0")).await;
    assert_eq!(store.policies().len(), 1);
    assert_upgraded(
        &manager,
        &plain,
        format!("http://sub.example.test:{}/hello", plain.port()),
    )
    .await;
    // The parent's own max-age=0 is what ends it.
    learn(&manager, sts(&tls, "example.test", "max-age=0")).await;
    assert!(!store.is_known_host("sub.example.test"));
}

#[cfg(all(feature = "cookies", feature = "hsts"))] // both files: the child does either
/// The child side of the two-process tests: saves one entry into the file named by the
/// environment, after loading it (both children load before either saves).
#[test]
fn cve_2023_23915_child_process() {
    let (Ok(path), Ok(what), Ok(name)) = (
        std::env::var("NETACCESS_CVE_FILE"),
        std::env::var("NETACCESS_CVE_KIND"),
        std::env::var("NETACCESS_CVE_NAME"),
    ) else {
        return;
    };
    let barrier = PathBuf::from(std::env::var("NETACCESS_CVE_BARRIER").unwrap());
    let go = barrier.join("go");
    match what.as_str() {
        "hsts" => {
            let store = HstsStore::load_or_new(&path).unwrap();
            std::fs::write(barrier.join(&name), b"loaded").unwrap();
            wait_for(&go);
            store.add_policies([HstsPolicy::new(&format!("{name}.test"), None, true)]);
            store.save(&path).unwrap();
        }
        _ => {
            let jar = DefaultCookieJar::load_or_new(&path).unwrap();
            std::fs::write(barrier.join(&name), b"loaded").unwrap();
            wait_for(&go);
            jar.set_cookies_from_url(
                Cookie::parse_cookies(&format!("{name}=1; Max-Age=3600")),
                &url("http://example.test/"),
            );
            jar.save(&path, true).unwrap();
        }
    }
}

#[cfg(all(feature = "cookies", feature = "hsts"))] // both files: the child does either
/// Waits (bounded) for a file another process creates: a hang guard, not a timing guess.
fn wait_for(path: &std::path::Path) {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !path.exists() {
        assert!(std::time::Instant::now() < deadline, "{path:?} never came");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[cfg(all(feature = "cookies", feature = "hsts"))] // both files: the child does either
/// Two processes load `file`, each adds one entry, both save: both entries survive.
fn two_processes_save(kind: &str, file: &std::path::Path, dir: &std::path::Path) {
    let exe = std::env::current_exe().unwrap();
    let barrier = dir.join("barrier");
    std::fs::create_dir_all(&barrier).unwrap();
    let children: Vec<_> = ["alpha", "beta"]
        .iter()
        .map(|name| {
            Command::new(&exe)
                .args(["--exact", "cve_2023_23915_child_process", "--nocapture"])
                .env("NETACCESS_CVE_FILE", file)
                .env("NETACCESS_CVE_KIND", kind)
                .env("NETACCESS_CVE_NAME", name)
                .env("NETACCESS_CVE_BARRIER", &barrier)
                .spawn()
                .unwrap()
        })
        .collect();
    // Both have loaded the file (as it was) before either saves.
    wait_for(&barrier.join("alpha"));
    wait_for(&barrier.join("beta"));
    std::fs::write(barrier.join("go"), b"go").unwrap();
    for mut child in children {
        assert!(child.wait().unwrap().success());
    }
}

#[cfg(all(feature = "cookies", feature = "hsts"))] // both files: the child does either
#[test]
fn cve_2023_23915_two_processes_saving_one_hsts_file_keep_both_entries() {
    let dir = TempDir::new("hsts-two");
    let file = dir.0.join("hsts.json");
    // An entry already there survives too.
    let first = HstsStore::new();
    first.add_policies([HstsPolicy::new("earlier.test", None, false)]);
    first.save(&file).unwrap();
    two_processes_save("hsts", &file, &dir.0);
    let hosts: Vec<String> = HstsStore::load(&file)
        .unwrap()
        .policies()
        .into_iter()
        .map(|p| p.host)
        .collect();
    assert_eq!(hosts, ["alpha.test", "beta.test", "earlier.test"]);
}

#[cfg(all(feature = "cookies", feature = "hsts"))] // both files: the child does either
#[test]
fn cve_2023_23915_two_processes_saving_one_cookie_jar_keep_both_entries() {
    let dir = TempDir::new("jar-two");
    let file = dir.0.join("jar.json");
    two_processes_save("jar", &file, &dir.0);
    let jar = DefaultCookieJar::load(&file).unwrap();
    let mut names: Vec<String> = jar.all_cookies().into_iter().map(|c| c.name).collect();
    names.sort();
    assert_eq!(names, ["alpha", "beta"]);
}

#[cfg(feature = "hsts")] // save and load
#[test]
fn cve_2023_23915_two_stores_in_one_process_merge_and_respect_removals() {
    let dir = TempDir::new("stores");
    let file = dir.0.join("hsts.json");
    let a = HstsStore::new();
    a.add_policies([
        HstsPolicy::new("a.test", None, false),
        HstsPolicy::new("gone.test", None, false),
    ]);
    a.save(&file).unwrap();
    let b = HstsStore::load(&file).unwrap();
    // a removes gone.test and adds a2; b, which loaded both, adds b.test.
    a.add_policies([HstsPolicy::new(
        "gone.test",
        Some(SystemTime::UNIX_EPOCH),
        false,
    )]);
    a.add_policies([HstsPolicy::new("a2.test", None, false)]);
    b.add_policies([HstsPolicy::new("b.test", None, false)]);
    a.save(&file).unwrap();
    b.save(&file).unwrap();
    let hosts =
        |s: &HstsStore| -> Vec<String> { s.policies().into_iter().map(|p| p.host).collect() };
    let on_disk = HstsStore::load(&file).unwrap();
    assert_eq!(hosts(&on_disk), ["a.test", "a2.test", "b.test"]);
    // Each store now holds the merged set too.
    assert_eq!(hosts(&b), ["a.test", "a2.test", "b.test"]);
    // Many threads saving at once lose nothing.
    let stores: Vec<_> = (0..6)
        .map(|i| {
            let file = file.clone();
            std::thread::spawn(move || {
                let s = HstsStore::new();
                s.add_policies([HstsPolicy::new(&format!("t{i}.test"), None, false)]);
                s.save(&file).unwrap();
            })
        })
        .collect();
    for t in stores {
        t.join().unwrap();
    }
    assert_eq!(HstsStore::load(&file).unwrap().policies().len(), 9);
}

// ----- RFC 6797 §8.1: no HSTS from a connection with ignored certificate errors ---------------

/// A TLS server whose certificate the manager does not trust (its CA is not added).
fn untrusting_manager(store: Arc<HstsStore>, insecure: bool) -> NetworkAccessManager {
    NetworkAccessManager::builder()
        .resolve("example.test", [LOCAL])
        .strict_transport_security(true)
        .hsts_store(store)
        .danger_ignore_tls_errors(insecure)
        .build()
        .unwrap()
}

#[tokio::test]
async fn hsts_headers_are_ignored_when_certificate_errors_were_ignored() {
    let tls = tls_server().await;
    let store = Arc::new(HstsStore::new());
    // --insecure (the manager ignores every certificate error): the header cannot set one.
    let insecure = untrusting_manager(store.clone(), true);
    learn(&insecure, sts(&tls, "example.test", "max-age=3600")).await;
    assert!(
        store.policies().is_empty(),
        "learned over an untrusted connection"
    );
    // Ignored for one request from its ssl_errors slot: the same.
    let per_request = untrusting_manager(store.clone(), false);
    let reply = per_request.get_with(
        Request::new(sts(&tls, "example.test", "max-age=3600")),
        |r| r.ignore_ssl_errors(),
    );
    done(&reply).await;
    assert!(reply.error().is_none(), "{:?}", reply.error());
    assert!(store.policies().is_empty());
    // A stored policy cannot be erased (max-age=0) or weakened that way either.
    store.add_policies([HstsPolicy::new("example.test", None, true)]);
    learn(&insecure, sts(&tls, "example.test", "max-age=0")).await;
    learn(&insecure, sts(&tls, "example.test", "max-age=5")).await;
    let policies = store.policies();
    assert_eq!(policies.len(), 1);
    assert_eq!(policies[0].expiry, None);
    assert!(policies[0].include_subdomains);
    // Over a trusted connection the same header is honoured.
    let trusted = hsts_manager(&tls, store.clone());
    learn(&trusted, sts(&tls, "example.test", "max-age=0")).await;
    assert!(store.policies().is_empty());
}

// ----- cookies ---------------------------------------------------------------------------------

fn jar_with(url_str: &str, set_cookies: &[&str]) -> DefaultCookieJar {
    let jar = DefaultCookieJar::new();
    let cookies = set_cookies
        .iter()
        .flat_map(|c| Cookie::parse_cookies(c))
        .collect();
    jar.set_cookies_from_url(cookies, &url(url_str));
    jar
}

#[cfg(feature = "cookies")] // domain cookies and the public-suffix list
#[tokio::test]
async fn cve_2013_1944_cookie_domains_match_only_at_a_dot() {
    let jar = jar_with(
        "http://example.test/",
        &["host=1", "dom=2; Domain=example.test"],
    );
    assert_eq!(
        jar.cookie_header(&url("http://example.test/")).as_deref(),
        Some("host=1; dom=2")
    );
    assert_eq!(
        jar.cookie_header(&url("http://www.example.test/"))
            .as_deref(),
        Some("dom=2")
    );
    for other in [
        "http://badexample.test/",
        "http://xample.test/",
        "http://example.test.evil.test/",
        "http://test/",
    ] {
        assert_eq!(jar.cookie_header(&url(other)), None, "{other}");
    }
    // A cookie for a longer name is not accepted from the shorter one either.
    let jar = jar_with("http://example.test/", &["x=1; Domain=badexample.test"]);
    assert!(jar.is_empty());
    // Through the manager and a server: example.test's cookies never go to badexample.test.
    let server = TestServer::http1().await;
    let manager = NetworkAccessManager::builder()
        .resolve("example.test", [LOCAL])
        .resolve("badexample.test", [LOCAL])
        .build()
        .unwrap();
    let set = format!(
        "http://example.test:{}/header?Set-Cookie={}&Set-Cookie={}",
        server.port(),
        enc("host=1"),
        enc("dom=2; Domain=example.test")
    );
    done(&manager.get(Request::new(set))).await;
    let bad = echo(&manager.get(Request::new(format!(
        "http://badexample.test:{}/echo",
        server.port()
    ))))
    .await;
    assert_eq!(bad["headers"]["cookie"], Value::Null, "{bad}");
    let good = echo(&manager.get(Request::new(format!(
        "http://example.test:{}/echo",
        server.port()
    ))))
    .await;
    assert_eq!(good["headers"]["cookie"], "host=1; dom=2");
}

#[tokio::test]
async fn cve_2014_3613_ip_address_cookie_domains() {
    // An IP host takes Domain only when it is that very address, as a host-only cookie.
    for bad in [
        "a=1; Domain=0.0.1",
        "a=1; Domain=.0.0.1",
        "a=1; Domain=0.1",
        "a=1; Domain=1",
        "a=1; Domain=127.0.0.2",
    ] {
        assert!(jar_with("http://127.0.0.1/", &[bad]).is_empty(), "{bad}");
    }
    let jar = jar_with("http://127.0.0.1/", &["a=1; Domain=127.0.0.1", "b=2"]);
    assert_eq!(jar.len(), 2);
    assert!(jar.all_cookies().iter().all(|c| c.domain == "127.0.0.1"));
    for other in ["http://127.0.0.2/", "http://127.0.0.10/", "http://0.0.1/"] {
        assert_eq!(jar.cookie_header(&url(other)), None, "{other}");
    }
    // A name that looks like the tail of an address gets no cookie of the address.
    let jar = jar_with("http://1.2.3.4/", &["a=1; Domain=2.3.4", "b=2; Domain=3.4"]);
    assert!(jar.is_empty());
    let jar = jar_with("http://1.2.3.4/", &["a=1"]);
    assert_eq!(jar.cookie_header(&url("http://11.2.3.4/")), None);
    assert_eq!(jar.cookie_header(&url("http://1.2.3.44/")), None);
    // IPv6 too.
    assert!(jar_with("http://[::1]/", &["a=1; Domain=1"]).is_empty());
    // Through the manager: 127.0.0.1's Domain=0.0.1 cookie is not stored, the host-only one is.
    let server = TestServer::http1().await;
    let manager = NetworkAccessManager::new();
    let set = server.url(&format!(
        "/header?Set-Cookie={}&Set-Cookie={}",
        enc("bad=1; Domain=0.0.1"),
        enc("good=2")
    ));
    done(&manager.get(Request::new(set))).await;
    let json = echo(&manager.get(Request::new(server.url("/echo")))).await;
    assert_eq!(json["headers"]["cookie"], "good=2");
}

#[cfg(feature = "cookies")] // domain cookies and the public-suffix list
#[test]
fn cve_2014_3620_cookies_for_top_level_domains_are_refused() {
    for (site, set) in [
        ("http://example.test/", "a=1; Domain=test"),
        ("http://example.test/", "a=1; Domain=.test"),
        ("http://example.com/", "a=1; Domain=com"),
        ("http://www.example.co.uk/", "a=1; Domain=co.uk"),
        ("http://www.example.co.uk/", "a=1; Domain=uk"),
        ("http://a.b.example.test/", "a=1; Domain=test"),
    ] {
        let jar = jar_with(site, &[set]);
        assert!(jar.is_empty(), "{site} {set}");
    }
    // Such a cookie, if stored, would go to every site of the TLD: nothing goes.
    let jar = jar_with("http://example.com/", &["a=1; Domain=com"]);
    assert_eq!(jar.cookie_header(&url("http://other.com/")), None);
}

#[cfg(feature = "cookies")] // domain cookies and the public-suffix list
#[test]
fn cve_2022_27779_cookies_with_a_trailing_dot_are_not_for_a_public_suffix() {
    for (site, set) in [
        ("http://example.co.uk./", "a=1; Domain=co.uk."),
        ("http://example.co.uk/", "a=1; Domain=co.uk."),
        ("http://example.com./", "a=1; Domain=com."),
        ("http://example.com/", "a=1; Domain=.com."),
        ("http://example.test./", "a=1; Domain=test."),
    ] {
        let jar = jar_with(site, &[set]);
        assert!(jar.is_empty(), "{site} {set}: {:?}", jar.all_cookies());
    }
    // A host-only cookie of a name with a trailing dot stays with that exact name.
    let jar = jar_with("http://example.com./", &["a=1"]);
    assert_eq!(jar.len(), 1);
    for other in ["http://other.com./", "http://other.com/", "http://com./"] {
        assert_eq!(jar.cookie_header(&url(other)), None, "{other}");
    }
}

#[cfg(feature = "cookies")] // load
#[tokio::test]
async fn cve_2022_35252_control_characters_never_reach_a_cookie_header() {
    // Parsed: rejected whole.
    for bad in [
        "a=b\u{1}c",
        "a=b\u{7f}",
        "a\u{1f}=b",
        "a=b; Path=/\u{2}",
        "a=b; Domain=exa\u{0}mple.test",
    ] {
        assert!(Cookie::parse_set_cookie(bad).is_err(), "{bad:?}");
        assert!(
            jar_with("http://example.test/", &[bad]).is_empty(),
            "{bad:?}"
        );
    }
    // Given through the API: refused too.
    let jar = DefaultCookieJar::new();
    let mut evil = Cookie::new("evil", "x\u{1}y");
    evil.domain = "example.test".into();
    assert!(!jar.insert_cookie(evil.clone()));
    assert!(!jar.set_cookies_from_url(vec![evil], &url("http://example.test/")));
    let mut smuggler = Cookie::new("a", "1; admin=true");
    smuggler.domain = "example.test".into();
    assert!(!jar.insert_cookie(smuggler));
    assert!(jar.is_empty());
    // From a jar file: an error naming the problem.
    let dir = TempDir::new("control");
    let file = dir.0.join("jar.json");
    std::fs::write(
        &file,
        r#"{"format": "netaccess-cookie-jar", "version": 1, "cookies": [{"name": "a",
           "value": "b\u0001c", "domain": "example.test", "path": "/", "creation": 0,
           "last_access": 0}]}"#,
    )
    .unwrap();
    let e = DefaultCookieJar::load(&file).unwrap_err();
    assert!(e.to_string().contains("control character"), "{e}");
    // Through the manager: a tab inside a value is kept as is (a valid header byte), and the
    // requests that follow still go out.
    let server = TestServer::http1().await;
    let manager = NetworkAccessManager::new();
    let set = server.url(&format!("/header?Set-Cookie={}", enc("t=a\tb")));
    done(&manager.get(Request::new(set))).await;
    let json = echo(&manager.get(Request::new(server.url("/echo")))).await;
    assert_eq!(json["headers"]["cookie"], "t=a\tb");
}

#[cfg(feature = "cookies")] // domain cookies and the public-suffix list
#[test]
fn cve_2023_46218_mixed_case_public_suffixes_are_refused() {
    for (site, set) in [
        ("http://www.example.co.uk/", "a=1; Domain=CO.UK"),
        ("http://www.example.co.uk/", "a=1; Domain=Co.Uk"),
        ("http://www.example.co.uk/", "a=1; Domain=.cO.uK"),
        ("http://example.com/", "a=1; Domain=COM"),
        ("http://WWW.EXAMPLE.CO.UK/", "a=1; Domain=CO.UK"),
        ("http://example.github.io/", "a=1; Domain=GitHub.IO"),
    ] {
        let jar = jar_with(site, &[set]);
        assert!(jar.is_empty(), "{site} {set}: {:?}", jar.all_cookies());
    }
    // The site's own registrable domain, in any case, is fine and is stored lowercase.
    let jar = jar_with("http://www.example.co.uk/", &["a=1; Domain=Example.CO.uk"]);
    assert_eq!(jar.all_cookies()[0].domain, ".example.co.uk");
    assert_eq!(
        jar.cookie_header(&url("http://shop.example.co.uk/"))
            .as_deref(),
        Some("a=1")
    );
    assert_eq!(jar.cookie_header(&url("http://other.co.uk/")), None);
}

#[cfg(feature = "cookies")] // domain cookies and the public-suffix list
#[tokio::test]
async fn cve_2022_32205_a_cookie_bomb_is_capped() {
    const LIMIT: usize = DefaultCookieJar::MAX_COOKIE_HEADER_LEN;
    assert_eq!(LIMIT, 8190);
    let server = TestServer::http1().await;
    let manager = NetworkAccessManager::builder()
        .resolve("bomb.test", [LOCAL])
        .resolve("a.bomb.test", [LOCAL])
        .resolve("b.bomb.test", [LOCAL])
        .build()
        .unwrap();
    // Two subdomains each set 40 cookies of 4,000 bytes for the parent domain (and the
    // parent 40 of its own): 120 cookies, 480 KB, all due on every request to bomb.test.
    let value = "v".repeat(3990);
    for (host, prefix) in [
        ("a.bomb.test", "a"),
        ("b.bomb.test", "b"),
        ("bomb.test", "p"),
    ] {
        for batch in 0..4 {
            let query: Vec<String> = (0..10)
                .map(|i| {
                    let n = batch * 10 + i;
                    format!(
                        "Set-Cookie={}",
                        enc(&format!("{prefix}{n}={value}; Domain=bomb.test"))
                    )
                })
                .collect();
            let set = format!("http://{host}:{}/header?{}", server.port(), query.join("&"));
            done(&manager.get(Request::new(set))).await;
        }
    }
    assert_eq!(
        manager.cookie_jar().all_cookies().len(),
        50,
        "50 per domain"
    );
    let json = echo(&manager.get(Request::new(format!(
        "http://bomb.test:{}/echo",
        server.port()
    ))))
    .await;
    let cookie = json["headers"]["cookie"].as_str().unwrap();
    assert!(cookie.len() <= LIMIT, "{} bytes", cookie.len());
    assert_eq!(cookie.split("; ").count(), 2, "two 4 KB cookies fit");
    // Small cookies still fit beside the bomb: the header is filled in §5.4 order.
    let small = jar_with("http://small.test/", &[]);
    for i in 0..3 {
        small.set_cookies_from_url(
            Cookie::parse_cookies(&format!("big{i}={}", "x".repeat(4000))),
            &url("http://small.test/"),
        );
    }
    small.set_cookies_from_url(Cookie::parse_cookies("tiny=1"), &url("http://small.test/"));
    let header = small.cookie_header(&url("http://small.test/")).unwrap();
    assert!(header.len() <= LIMIT);
    assert!(
        header.ends_with("tiny=1"),
        "{}",
        &header[header.len() - 20..]
    );
}
