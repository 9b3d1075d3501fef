//! Secrets at rest (issue 10, fix 8): the cookie jar and HSTS files are private and replaced
//! through `O_EXCL` temporaries, the disk cache's folders and files are private, no URL
//! password or credential value is ever written into a cache entry, and `Vary: Cookie` is
//! matched with the cookies the jar adds, so one user's page is never served to the next.
//!
//! The requests go to a small HTTP/1.1 server on 127.0.0.1 written here: its pages depend on
//! the request's `Cookie` and `Authorization`, which the shared test server's routes do not.
// Most tests need the `disk-cache`, `cookies` or `hsts` feature; without them, helpers and
// imports go unused.
#![cfg_attr(
    not(all(feature = "disk-cache", feature = "cookies", feature = "hsts")),
    allow(unused_imports, dead_code)
)]

mod support;

use support::TempDir;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use netaccess::cache::CacheKey;
#[cfg(feature = "disk-cache")]
use netaccess::DiskCache;
use netaccess::{
    Cache, DefaultCookieJar, HstsPolicy, HstsStore, MemoryCache, NetworkAccessManager, Reply,
    Request,
};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::symlink_metadata(path)
        .unwrap()
        .permissions()
        .mode()
        & 0o777
}

/// Every file and folder under `dir` (not `dir` itself).
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

/// Whether any file under `dir` contains `needle`.
fn any_file_contains(dir: &Path, needle: &[u8]) -> Option<PathBuf> {
    walk(dir).into_iter().find(|p| {
        p.is_file()
            && std::fs::read(p)
                .unwrap_or_default()
                .windows(needle.len())
                .any(|w| w == needle)
    })
}

async fn done(reply: &Reply) {
    tokio::time::timeout(Duration::from_secs(30), reply.finished())
        .await
        .expect("finished in time");
}

async fn text(reply: &Reply) -> String {
    done(reply).await;
    assert!(reply.error().is_none(), "{:?}", reply.error());
    reply.text().await.unwrap()
}

/// The little origin server: per-path request counts.
struct Origin {
    port: u16,
    hits: Arc<Mutex<HashMap<String, u32>>>,
}

impl Origin {
    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn hits(&self, path: &str) -> u32 {
        self.hits.lock().unwrap().get(path).copied().unwrap_or(0)
    }
}

/// Answers, by path (query ignored for routing):
/// - `/login?user=U`: sets `sid=U`, not cacheable;
/// - `/page`: `Vary: Cookie`, fresh for an hour, the body names the cookie it was sent;
/// - `/vary-auth`: `Vary: Authorization`, fresh for an hour;
/// - `/private`: 401 Basic without `Authorization`, else a page fresh for an hour.
async fn origin() -> Origin {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let hits: Arc<Mutex<HashMap<String, u32>>> = Arc::default();
    let counter = hits.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let counter = counter.clone();
            tokio::spawn(async move {
                let (read, mut write) = stream.into_split();
                let mut read = BufReader::new(read);
                loop {
                    let mut line = String::new();
                    if read.read_line(&mut line).await.unwrap_or(0) == 0 {
                        return;
                    }
                    let target = line.split(' ').nth(1).unwrap_or("/").to_owned();
                    let mut headers = HashMap::new();
                    loop {
                        let mut h = String::new();
                        if read.read_line(&mut h).await.unwrap_or(0) == 0 {
                            return;
                        }
                        let h = h.trim_end();
                        if h.is_empty() {
                            break;
                        }
                        if let Some((n, v)) = h.split_once(':') {
                            headers.insert(n.trim().to_ascii_lowercase(), v.trim().to_owned());
                        }
                    }
                    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
                    *counter.lock().unwrap().entry(path.to_owned()).or_default() += 1;
                    let cookie = headers.get("cookie").cloned();
                    let auth = headers.get("authorization").cloned();
                    let (status, extra, body) = match path {
                        "/login" => {
                            let user = query.strip_prefix("user=").unwrap_or("nobody");
                            (
                                "200 OK",
                                format!(
                                    "Set-Cookie: sid={user}; Path=/\r\nCache-Control: no-store\r\n"
                                ),
                                "logged in".to_owned(),
                            )
                        }
                        "/page" => (
                            "200 OK",
                            "Cache-Control: max-age=3600\r\nVary: Cookie\r\n".to_owned(),
                            // The user's name, not the cookie: the body is stored as it is.
                            format!(
                                "page for {}",
                                cookie
                                    .as_deref()
                                    .and_then(|c| c.split("sid=").nth(1))
                                    .unwrap_or("anonymous")
                            ),
                        ),
                        "/vary-auth" => (
                            "200 OK",
                            "Cache-Control: max-age=3600\r\nVary: Authorization\r\n".to_owned(),
                            format!("hello {}", if auth.is_some() { "user" } else { "stranger" }),
                        ),
                        "/private" if auth.is_none() => (
                            "401 Unauthorized",
                            "WWW-Authenticate: Basic realm=\"r\"\r\n".to_owned(),
                            "who are you".to_owned(),
                        ),
                        "/private" => (
                            "200 OK",
                            "Cache-Control: max-age=3600\r\n".to_owned(),
                            "private page".to_owned(),
                        ),
                        _ => ("404 Not Found", String::new(), "not found".to_owned()),
                    };
                    let response = format!(
                        "HTTP/1.1 {status}\r\nContent-Length: {}\r\n{extra}\r\n{body}",
                        body.len()
                    );
                    if write.write_all(response.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    Origin { port, hits }
}

// ----- Vary: Cookie with the jar's cookies ---------------------------------------------------

async fn vary_cookie_never_serves_one_users_page_to_the_next(cache: Arc<dyn Cache>) {
    let server = origin().await;
    let manager = NetworkAccessManager::builder()
        .cache(cache)
        .build()
        .unwrap();
    let page = server.url("/page");
    assert_eq!(
        text(&manager.get(Request::new(&page))).await,
        "page for anonymous"
    );
    text(&manager.get(Request::new(server.url("/login?user=alice")))).await;
    // The jar now sends sid=alice: the anonymous copy does not match.
    let alice = manager.get(Request::new(&page));
    assert_eq!(text(&alice).await, "page for alice");
    assert!(!alice.source_is_from_cache());
    assert_eq!(server.hits("/page"), 2);
    // Alice again: from the cache.
    let again = manager.get(Request::new(&page));
    assert_eq!(text(&again).await, "page for alice");
    assert!(again.source_is_from_cache());
    // Bob logs in on the same manager: never Alice's page.
    text(&manager.get(Request::new(server.url("/login?user=bob")))).await;
    let bob = manager.get(Request::new(&page));
    assert_eq!(text(&bob).await, "page for bob");
    assert!(!bob.source_is_from_cache());
    assert_eq!(server.hits("/page"), 3);
    // The application's own Cookie is merged with the jar's, as on the wire.
    let both = manager.get(Request::new(&page).with_header("Cookie", "theme=dark"));
    assert_eq!(text(&both).await, "page for bob");
    assert!(
        !both.source_is_from_cache(),
        "another Cookie header, another variant"
    );
    assert_eq!(server.hits("/page"), 4);
}

#[tokio::test]
async fn vary_cookie_is_matched_with_the_jar_cookies_in_memory() {
    vary_cookie_never_serves_one_users_page_to_the_next(Arc::new(MemoryCache::default())).await;
}

#[cfg(feature = "disk-cache")]
#[tokio::test]
async fn vary_cookie_is_matched_with_the_jar_cookies_on_disk() {
    let dir = TempDir::new("vary-cookie");
    let disk = Arc::new(DiskCache::new(dir.0.join("cache")).unwrap());
    vary_cookie_never_serves_one_users_page_to_the_next(disk).await;
    assert_eq!(any_file_contains(&dir.0, b"sid=alice"), None);
    assert_eq!(any_file_contains(&dir.0, b"sid=bob"), None);
}

// ----- no credential in a cache entry ----------------------------------------------------------

#[cfg(feature = "disk-cache")]
#[tokio::test]
async fn vary_authorization_stores_a_keyed_hash_not_the_credential() {
    let server = origin().await;
    let dir = TempDir::new("vary-auth");
    let disk = Arc::new(DiskCache::new(dir.0.join("cache")).unwrap());
    let manager = NetworkAccessManager::builder()
        .cache(disk.clone())
        .build()
        .unwrap();
    let url = server.url("/vary-auth");
    let alice = "Basic YWxpY2U6czNjcmV0"; // alice:s3cret
    let bob = "Basic Ym9iOmh1bnRlcjI="; // bob:hunter2
    let get = |auth: &str| manager.get(Request::new(&url).with_header("Authorization", auth));
    assert_eq!(text(&get(alice)).await, "hello user");
    let hit = get(alice);
    assert_eq!(text(&hit).await, "hello user");
    assert!(hit.source_is_from_cache(), "the same credentials match");
    let other = get(bob);
    assert_eq!(text(&other).await, "hello user");
    assert!(
        !other.source_is_from_cache(),
        "other credentials never match"
    );
    assert_eq!(server.hits("/vary-auth"), 2);
    for secret in ["YWxpY2U6czNjcmV0", "Ym9iOmh1bnRlcjI=", "s3cret", "hunter2"] {
        assert_eq!(
            any_file_contains(&dir.0, secret.as_bytes()),
            None,
            "{secret} written to the cache"
        );
    }
    // Another cache on the same folder (another process) shares the key: still a hit.
    let second = Arc::new(DiskCache::new(dir.0.join("cache")).unwrap());
    let mut request_headers = netaccess::http::HeaderMap::new();
    request_headers.insert(
        netaccess::http::header::AUTHORIZATION,
        netaccess::http::HeaderValue::from_static("Basic YWxpY2U6czNjcmV0"),
    );
    let key = CacheKey::get(&url.parse().unwrap());
    let found = second.lookup(&key, &request_headers).await;
    let found = found.expect("the entry is found with the same credentials");
    assert_eq!(
        found.metadata.request_headers["authorization"], "Basic YWxpY2U6czNjcmV0",
        "a hit carries the request's own value, not the hash"
    );
}

#[cfg(feature = "disk-cache")]
#[tokio::test]
async fn url_passwords_never_reach_the_cache_and_users_stay_apart() {
    let server = origin().await;
    let dir = TempDir::new("userinfo");
    let disk = Arc::new(DiskCache::new(dir.0.join("cache")).unwrap());
    let manager = NetworkAccessManager::builder()
        .cache(disk.clone())
        .build()
        .unwrap();
    let carol = format!("http://carol:pw4cache99@127.0.0.1:{}/private", server.port);
    assert_eq!(
        text(&manager.get(Request::new(&carol))).await,
        "private page"
    );
    let hit = manager.get(Request::new(&carol));
    assert_eq!(text(&hit).await, "private page");
    assert!(hit.source_is_from_cache());
    assert_eq!(any_file_contains(&dir.0, b"pw4cache99"), None);
    assert_eq!(any_file_contains(&dir.0, b"carol"), None);
    // Carol's entry is not served to a request without her user info (a new manager on the
    // same cache: this one would reuse her credentials for the origin, as Qt does).
    let manager = NetworkAccessManager::builder()
        .cache(disk.clone())
        .build()
        .unwrap();
    let anonymous = manager.get(Request::new(server.url("/private")));
    done(&anonymous).await;
    assert!(!anonymous.source_is_from_cache());
    assert_eq!(anonymous.status_code(), Some(401));
    // Nor to another user.
    let dave = format!("http://dave:other@127.0.0.1:{}/private", server.port);
    let reply = manager.get(Request::new(&dave));
    assert_eq!(text(&reply).await, "private page");
    assert!(!reply.source_is_from_cache());
}

#[cfg(feature = "disk-cache")]
#[tokio::test]
async fn a_cache_directory_from_before_the_key_is_purged_on_open() {
    // A directory as an older version left it: no key file, an entry holding a credential.
    let dir = TempDir::new("purge");
    let root = dir.0.join("cache");
    let fan = root.join("data").join("ab");
    std::fs::create_dir_all(&fan).unwrap();
    std::fs::write(
        fan.join("ab0123456789abcdef0123456789abcd"),
        b"NACACHE\0\x01\0 authorization: Basic YWxpY2U6czNjcmV0",
    )
    .unwrap();
    let cache = DiskCache::new(&root).unwrap();
    assert_eq!(any_file_contains(&root, b"YWxpY2U6czNjcmV0"), None);
    assert_eq!(cache.size(), 0);
    // Opening it again (the key exists now) keeps what the new version stored.
    let key = CacheKey::get(&"http://h.test/".parse().unwrap());
    let now = SystemTime::now();
    let mut response = netaccess::http::HeaderMap::new();
    response.insert(
        "cache-control",
        netaccess::http::HeaderValue::from_static("max-age=60"),
    );
    let meta = netaccess::cache::CacheMetadata::new(
        netaccess::http::StatusCode::OK,
        &response,
        &netaccess::http::HeaderMap::new(),
        now,
        now,
    );
    let mut w = cache.begin_store(&key, meta);
    w.write(b"kept").unwrap();
    w.commit().await.unwrap();
    let reopened = DiskCache::new(&root).unwrap();
    let entry = reopened
        .lookup(&key, &netaccess::http::HeaderMap::new())
        .await
        .unwrap();
    assert_eq!(&entry.body.bytes().await.unwrap()[..], b"kept");
}

// ----- modes -----------------------------------------------------------------------------------

#[cfg(unix)]
#[cfg(feature = "disk-cache")]
#[tokio::test]
async fn disk_cache_folders_are_0700_and_files_0600() {
    let server = origin().await;
    let dir = TempDir::new("cache-modes");
    let root = dir.0.join("cache");
    let disk = Arc::new(DiskCache::new(&root).unwrap());
    let manager = NetworkAccessManager::builder().cache(disk).build().unwrap();
    text(&manager.get(Request::new(server.url("/page")))).await;
    text(&manager.get(Request::new(server.url("/vary-auth")))).await;
    assert_eq!(mode(&root), 0o700);
    let all = walk(&root);
    assert!(all.iter().filter(|p| p.is_file()).count() >= 3, "{all:?}");
    for path in all {
        let want = if path.is_dir() { 0o700 } else { 0o600 };
        assert_eq!(mode(&path), want, "{}", path.display());
    }
    // Folders of an older version (0755) are tightened when the cache opens.
    use std::os::unix::fs::PermissionsExt;
    let data = root.join("data");
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
    DiskCache::new(&root).unwrap();
    assert_eq!(mode(&data), 0o700);
}

#[cfg(unix)]
#[cfg(all(feature = "cookies", feature = "hsts"))]
#[test]
fn jar_and_hsts_files_are_0600_and_keep_a_stricter_mode() {
    use std::os::unix::fs::PermissionsExt;
    let dir = TempDir::new("state-modes");
    let jar_path = dir.0.join("jar.json");
    let hsts_path = dir.0.join("hsts.json");
    use netaccess::CookieJar;
    let jar = DefaultCookieJar::new();
    jar.set_cookies_from_url(
        netaccess::Cookie::parse_cookies("sid=1; Max-Age=3600"),
        &"http://example.test/".parse().unwrap(),
    );
    let hsts = HstsStore::new();
    hsts.add_policies([HstsPolicy::new("example.test", None, false)]);
    for round in 0..2 {
        jar.save(&jar_path, true).unwrap();
        hsts.save(&hsts_path).unwrap();
        assert_eq!(mode(&jar_path), 0o600, "round {round}");
        assert_eq!(mode(&hsts_path), 0o600, "round {round}");
        // A world-readable file is tightened on the next save.
        for p in [&jar_path, &hsts_path] {
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o644)).unwrap();
        }
    }
    for p in [&jar_path, &hsts_path] {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o400)).unwrap();
    }
    jar.save(&jar_path, true).unwrap();
    hsts.save(&hsts_path).unwrap();
    assert_eq!(mode(&jar_path), 0o400);
    assert_eq!(mode(&hsts_path), 0o400);
    // What is left besides the two files: only their lock files, private too.
    for path in walk(&dir.0) {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        assert!(
            ["jar.json", "hsts.json", ".jar.json.lock", ".hsts.json.lock"].contains(&name.as_str()),
            "left behind: {name}"
        );
        if name.ends_with(".lock") {
            assert_eq!(mode(&path), 0o600);
        }
    }
}

#[cfg(unix)]
#[cfg(feature = "cookies")]
#[test]
fn a_symlink_planted_at_the_lock_is_not_followed() {
    let dir = TempDir::new("planted");
    let victim = dir.0.join("victim");
    std::fs::write(&victim, b"untouched").unwrap();
    let jar_path = dir.0.join("jar.json");
    std::os::unix::fs::symlink(&victim, dir.0.join(".jar.json.lock")).unwrap();
    let jar = DefaultCookieJar::new();
    assert!(jar.save(&jar_path, true).is_err());
    assert_eq!(std::fs::read(&victim).unwrap(), b"untouched");
    assert!(!jar_path.exists());
}
