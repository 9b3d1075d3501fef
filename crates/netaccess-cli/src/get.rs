//! `netaccess get`: every URL to one manager at once (its per-host queue schedules them).
//!
//! Without `-o`, bodies go to stdout in the order of the URLs: the first streams straight
//! through, the later ones are read as they arrive into temporary files (never held in RAM)
//! and copied out in turn. With `-o DIR` or
//! `--json`, every reply is read as it arrives and its JSON line (if asked) is printed when it
//! finishes. Exit 0 when every reply succeeded, 1 otherwise, 2 for bad usage.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use clap::{Args, ValueEnum};
use futures_util::stream::{FuturesUnordered, StreamExt};
use netaccess::{
    Body, DefaultCookieJar, HstsStore, MultiPart, MultiPartKind, NetworkAccessManager, Part,
    Priority, RedirectPolicy, Reply, Request,
};
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use crate::output::{self, OutputDir, TempFile};
use crate::progress::{Line, Progress};

/// Examples and notes shown by `netaccess get --help`.
const AFTER_HELP: &str = "\
Output:
  Without -o, bodies go to stdout in the order of the URLs (like curl); with --json they are
  not written. With -o DIR, the file name comes from Content-Disposition (filename*, then
  filename), else the URL path's last segment, else index.html; it is sanitised so it never
  leaves DIR (directories, '..', leading dots, control characters removed; <>:\"|?* become _;
  Windows device names get a leading _). An existing or already used name gets a numeric
  suffix before the first dot: report.pdf, report.1.pdf, report.2.pdf (numbers are given in
  the order the responses arrive; --json tells which file is whose). Each file is written to
  a hidden temporary name in DIR and renamed when complete; a failed download leaves nothing.
  Bodies of replies that failed (HTTP errors included) are not saved. HEAD saves nothing.

--continue:
  Looks for DIR/<name from the URL path>. If it exists with N bytes, sends
  'Range: bytes=N-' and 'If-Range: <the file's mtime as an HTTP-date>' (a completed download
  gets the response's Last-Modified as its mtime). 206 appends, 200 rewrites the file from
  scratch, 416 means it was complete.

Progress:
  With a terminal on stderr (and TERM not dumb), a line per URL ('queued' until its request
  is sent, then a bar with rate and ETA) and a total bar. -q turns it off.

JSON (--json), one object per finished reply, one per line, in the order replies finish:
  url, final_url, status, error (Qt's error name or null), error_message, headers (repeated
  ones joined with \", \"), bytes, sha256, from_cache, http_version, redirects, encrypted,
  elapsed_ms (from the start to this reply's end), output (path or null)

Credentials:
  -u USER:PASS answers a 401 only from the origin (scheme, host and port) of the URL it was
  given with, never from a redirect target: a target that asks makes that URL fail. Passwords
  (of -u, --proxy-user and URLs) never appear in messages, progress lines or --json.

Proxies:
  --proxy, else the environment (http_proxy, https_proxy, all_proxy and their upper-case
  forms, with no_proxy exceptions); --no-proxy ignores both.

Exit status: 0 when every reply finished without error, 1 when any failed, 2 for bad usage
(numbers out of range included). A cookie jar or HSTS file that is not valid is bad usage
too; one that cannot be saved at the end makes the exit status 1.

Examples:
  netaccess get http://127.0.0.1:8080/hello
  netaccess get -o downloads http://127.0.0.1:8080/a.iso http://127.0.0.1:8080/b.iso
  netaccess get -o downloads --continue http://127.0.0.1:8080/a.iso
  netaccess get --priority high URL1 --priority low URL2 URL3   # URL2 and URL3 are low
  netaccess get -X PUT -d @body.json -H 'Content-Type: application/json' URL
  netaccess get -F name=value -F upload=@photo.jpg URL           # multipart/form-data POST
  netaccess get --json --max-per-host 2 --timeout 10 URL...
  netaccess get --cacert ca.pem https://127.0.0.1:8443/   (or --insecure)
  netaccess get --redirect-policy same-origin --max-redirects 5 URL";

/// `--priority` values.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum PriorityArg {
    /// Before normal and low requests to the same host
    High,
    /// The default
    Normal,
    /// After high and normal requests to the same host
    Low,
}

impl From<PriorityArg> for Priority {
    fn from(p: PriorityArg) -> Priority {
        match p {
            PriorityArg::High => Priority::High,
            PriorityArg::Normal => Priority::Normal,
            PriorityArg::Low => Priority::Low,
        }
    }
}

/// `--redirect-policy` values.
#[derive(ValueEnum, Clone, Copy, Debug)]
pub enum RedirectArg {
    /// Do not follow: the 3xx response is the reply
    Manual,
    /// Follow, except from https to http (the default)
    NoLessSafe,
    /// Follow only to the same scheme, host and port
    SameOrigin,
}

/// `--cache-load` values.
#[derive(ValueEnum, Clone, Copy, Debug)]
pub enum CacheLoadArg {
    /// Always the network
    AlwaysNetwork,
    /// The network, revalidating cached entries (the default)
    PreferNetwork,
    /// The cache when it has an entry, even stale
    PreferCache,
    /// Only the cache
    AlwaysCache,
}

/// Arguments of `netaccess get`.
#[derive(Args, Debug)]
#[command(after_help = AFTER_HELP)]
pub struct GetArgs {
    /// URLs to download, all at once through one manager
    #[arg(required = true, value_name = "URL")]
    pub urls: Vec<String>,
    /// Write each body to DIR (created if missing) instead of stdout
    #[arg(short = 'o', long = "output-dir", value_name = "DIR")]
    output_dir: Option<PathBuf>,
    /// With -o: resume a partial file with Range and If-Range
    #[arg(long = "continue", requires = "output_dir")]
    resume: bool,
    /// Extra request header 'Name: value' (repeatable)
    #[arg(short = 'H', long = "header", value_name = "'Name: value'")]
    headers: Vec<String>,
    /// The verb: GET, HEAD, POST, PUT, DELETE or any custom verb
    #[arg(short = 'X', long = "method", value_name = "VERB")]
    method: Option<String>,
    /// Request body (POST unless -X says otherwise); @FILE streams a file
    #[arg(short = 'd', long = "data", value_name = "STRING|@FILE")]
    data: Option<String>,
    /// multipart/form-data part name=value, or name=@FILE for a file (repeatable; POST unless -X)
    #[arg(
        short = 'F',
        long = "form",
        value_name = "NAME=VALUE|NAME=@FILE",
        conflicts_with = "data"
    )]
    form: Vec<String>,
    /// Parallel connections per host:port
    #[arg(long, default_value_t = 6, value_name = "N")]
    max_per_host: usize,
    /// Priority of the URLs given after it (repeatable)
    #[arg(long, value_enum, value_name = "PRIORITY")]
    pub priority: Vec<PriorityArg>,
    /// Redirect policy
    #[arg(
        long,
        value_enum,
        default_value = "no-less-safe",
        value_name = "POLICY"
    )]
    redirect_policy: RedirectArg,
    /// Redirects followed at most per request
    #[arg(long, default_value_t = 50, value_name = "N")]
    max_redirects: u32,
    /// Transfer timeout in seconds: abort when no byte moves for that long
    #[arg(long, value_name = "SECONDS")]
    timeout: Option<f64>,
    /// Extra trusted CA certificate (PEM)
    #[arg(long, value_name = "FILE")]
    cacert: Option<PathBuf>,
    /// Ignore TLS certificate errors
    #[arg(long)]
    insecure: bool,
    /// One JSON object per finished reply on stdout, one per line (bodies are not written)
    #[arg(long)]
    json: bool,
    /// No progress bars (they are drawn on stderr only when it is a terminal)
    #[arg(short = 'q', long)]
    quiet: bool,
    /// Disk cache directory (default: netaccess in the user's cache directory,
    /// $XDG_CACHE_HOME or ~/.cache)
    #[arg(long, value_name = "DIR")]
    cache_dir: Option<PathBuf>,
    /// No disk cache
    #[arg(long, conflicts_with = "cache_dir")]
    no_cache: bool,
    /// Cache load control (default prefer-network)
    #[arg(long, value_enum, value_name = "MODE")]
    cache_load: Option<CacheLoadArg>,
    /// Load cookies from FILE before, save them (session cookies too) after; created if missing
    #[arg(long, value_name = "FILE")]
    cookie_jar: Option<PathBuf>,
    /// Load HSTS policies from FILE before (and honour Strict-Transport-Security), save after
    #[arg(long, value_name = "FILE")]
    hsts_store: Option<PathBuf>,
    /// http://, socks5:// or socks5h:// proxy (user:password@ in the URL, or --proxy-user)
    #[arg(long, value_name = "URL")]
    proxy: Option<String>,
    /// No proxy, not even from the environment
    #[arg(long)]
    no_proxy: bool,
    /// Credentials USER:PASS given when the server of the URL asks (never a redirect target)
    #[arg(short = 'u', long = "user", value_name = "USER:PASS")]
    user: Option<String>,
    /// Credentials USER:PASS given when a proxy asks
    #[arg(long, value_name = "USER:PASS")]
    proxy_user: Option<String>,
}

fn usage(message: &str) -> i32 {
    eprintln!("netaccess: {message}");
    2
}

/// `USER:PASS` of `-u` / `--proxy-user`.
fn credentials(value: &str, flag: &str) -> Result<(String, String), String> {
    value
        .split_once(':')
        .map(|(u, p)| (u.to_owned(), p.to_owned()))
        .ok_or_else(|| format!("{flag} wants USER:PASS, got {value:?}"))
}

/// The proxies: `--proxy URL`, none with `--no-proxy`, else the environment (http_proxy,
/// https_proxy, all_proxy, no_proxy); `--proxy-user` gives the credentials of any of them.
fn proxy_factory(args: &GetArgs) -> Result<std::sync::Arc<dyn netaccess::ProxyFactory>, String> {
    let proxy_user = args
        .proxy_user
        .as_deref()
        .map(|v| credentials(v, "--proxy-user"))
        .transpose()?;
    let with_user = move |mut proxy: netaccess::Proxy| {
        if let Some((user, password)) = &proxy_user {
            proxy.set_user(user.clone());
            proxy.set_password(password.clone());
        }
        proxy
    };
    if args.no_proxy {
        return Ok(std::sync::Arc::new(netaccess::Proxy::no_proxy()));
    }
    if let Some(url) = &args.proxy {
        let proxy = netaccess::Proxy::parse(url).map_err(|e| format!("--proxy {url}: {e}"))?;
        return Ok(std::sync::Arc::new(with_user(proxy)));
    }
    let env = netaccess::EnvProxyFactory::from_env();
    Ok(std::sync::Arc::new(move |url: &url::Url| {
        netaccess::ProxyFactory::query(&env, url)
            .into_iter()
            .map(&with_user)
            .collect::<Vec<_>>()
    }))
}

/// The disk cache: `--cache-dir`, else the user's cache directory; none with `--no-cache`
/// (or when no cache directory is known, said on stderr).
fn disk_cache(args: &GetArgs) -> Result<Option<std::sync::Arc<dyn netaccess::Cache>>, String> {
    if args.no_cache {
        return Ok(None);
    }
    let dir = match &args.cache_dir {
        Some(dir) => dir.clone(),
        None => match default_cache_dir() {
            Some(dir) => dir,
            None => {
                eprintln!("netaccess: no cache directory (set XDG_CACHE_HOME or HOME, or use --cache-dir); caching is off");
                return Ok(None);
            }
        },
    };
    let cache = netaccess::DiskCache::new(&dir)
        .map_err(|e| format!("cache directory {}: {e}", dir.display()))?;
    Ok(Some(std::sync::Arc::new(cache)))
}

fn default_cache_dir() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|v| !v.is_empty())
                .map(|h| PathBuf::from(h).join(".cache"))
        })?;
    Some(base.join("netaccess"))
}

fn cache_load(arg: Option<CacheLoadArg>) -> netaccess::CacheLoadControl {
    use netaccess::CacheLoadControl as C;
    match arg.unwrap_or(CacheLoadArg::PreferNetwork) {
        CacheLoadArg::AlwaysNetwork => C::AlwaysNetwork,
        CacheLoadArg::PreferNetwork => C::PreferNetwork,
        CacheLoadArg::PreferCache => C::PreferCache,
        CacheLoadArg::AlwaysCache => C::AlwaysCache,
    }
}

/// The request body and whether one was given.
enum Payload {
    None,
    Body(Body),
    Form(MultiPart),
}

fn payload(args: &GetArgs) -> Result<Payload, String> {
    if let Some(d) = &args.data {
        return Ok(Payload::Body(match d.strip_prefix('@') {
            Some(file) => Body::from_file(file).map_err(|e| format!("cannot read {file}: {e}"))?,
            None => Body::from(d.clone()),
        }));
    }
    if args.form.is_empty() {
        return Ok(Payload::None);
    }
    let mut multipart = MultiPart::new(MultiPartKind::FormData);
    for field in &args.form {
        let Some((name, value)) = field.split_once('=') else {
            return Err(format!(
                "bad form field {field:?}: expected name=value or name=@FILE"
            ));
        };
        let part = match value.strip_prefix('@') {
            Some(file) => {
                let body = Body::from_file(file).map_err(|e| format!("cannot read {file}: {e}"))?;
                let file_name = Path::new(file)
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_else(|| file.to_owned());
                Part::form_file(name, &file_name, body)
            }
            None => Part::form_field(name, value.to_owned()),
        };
        multipart.append(part);
    }
    // Reports an invalid part now rather than once per URL.
    multipart
        .clone()
        .into_body()
        .map_err(|e| format!("bad form: {}", e.message()))?;
    Ok(Payload::Form(multipart))
}

/// The cookie jar and HSTS store loaded from their files, saved back at the end.
#[derive(Default)]
struct Stores {
    cookies: Option<(PathBuf, Arc<DefaultCookieJar>)>,
    hsts: Option<(PathBuf, Arc<HstsStore>)>,
}

impl Stores {
    fn load(args: &GetArgs) -> Result<Stores, String> {
        let mut stores = Stores::default();
        if let Some(path) = &args.cookie_jar {
            let jar = DefaultCookieJar::load_or_new(path)
                .map_err(|e| format!("cannot load the cookie jar {}: {e}", path.display()))?;
            stores.cookies = Some((path.clone(), Arc::new(jar)));
        }
        if let Some(path) = &args.hsts_store {
            let store = HstsStore::load_or_new(path)
                .map_err(|e| format!("cannot load the HSTS store {}: {e}", path.display()))?;
            stores.hsts = Some((path.clone(), Arc::new(store)));
        }
        Ok(stores)
    }

    /// Saves both files; false (after a message) when one could not be written.
    fn save(&self) -> bool {
        let mut ok = true;
        if let Some((path, jar)) = &self.cookies {
            if let Err(e) = jar.save(path, true) {
                eprintln!(
                    "netaccess: cannot save the cookie jar {}: {e}",
                    path.display()
                );
                ok = false;
            }
        }
        if let Some((path, store)) = &self.hsts {
            if let Err(e) = store.save(path) {
                eprintln!(
                    "netaccess: cannot save the HSTS store {}: {e}",
                    path.display()
                );
                ok = false;
            }
        }
        ok
    }
}

fn build_manager(args: &GetArgs, stores: &Stores) -> Result<NetworkAccessManager, String> {
    if args.max_per_host == 0 {
        return Err("--max-per-host must be at least 1".into());
    }
    let policy = match args.redirect_policy {
        RedirectArg::Manual => RedirectPolicy::Manual,
        RedirectArg::NoLessSafe => RedirectPolicy::NoLessSafe,
        RedirectArg::SameOrigin => RedirectPolicy::SameOrigin,
    };
    let mut builder = NetworkAccessManager::builder()
        .max_connections_per_host(args.max_per_host)
        .redirect_policy(policy)
        .danger_ignore_tls_errors(args.insecure);
    if let Some((_, jar)) = &stores.cookies {
        builder = builder.cookie_jar(jar.clone());
    }
    if let Some((_, store)) = &stores.hsts {
        builder = builder
            .strict_transport_security(true)
            .hsts_store(store.clone());
    }
    if let Some(cache) = disk_cache(args)? {
        builder = builder.cache(cache);
    }
    builder = builder.proxy_factory(proxy_factory(args)?);
    if let Some(path) = &args.cacert {
        let pem =
            std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        builder = builder
            .add_root_certificate_pem(&pem)
            .map_err(|e| format!("{}: {}", path.display(), e.message()))?;
    }
    if let Some(secs) = args.timeout {
        builder = builder.transfer_timeout(seconds(secs, "--timeout")?);
    }
    Ok(builder.build())
}

/// A duration flag: a positive, finite number of seconds that a `Duration` can hold.
fn seconds(value: f64, flag: &str) -> Result<Duration, String> {
    if !(value.is_finite() && value > 0.0) {
        return Err(format!(
            "{flag} must be a positive number of seconds, not {value}"
        ));
    }
    Duration::try_from_secs_f64(value).map_err(|_| format!("{flag} {value} is out of range"))
}

/// A URL argument as shown in messages, progress lines and JSON: as given, unless it holds a
/// password, which is then removed.
fn shown_url(text: &str) -> String {
    match url::Url::parse(text) {
        Ok(url) if url.password().is_some() => netaccess::display_url(&url),
        _ => text.to_owned(),
    }
}

/// Scheme, host and port: what `-u` credentials are bound to.
fn origin_of(url: &url::Url) -> (String, Option<String>, Option<u16>) {
    (
        url.scheme().to_owned(),
        url.host_str().map(str::to_ascii_lowercase),
        url.port_or_known_default(),
    )
}

/// What is tracked of one reply from before it starts.
struct Tracked {
    url: String,
    reply: Reply,
    redirects: Arc<AtomicU32>,
    finished_after: Arc<OnceLock<Duration>>,
    line: Line,
    /// `--continue`: the existing file and its length.
    resume: Option<(String, u64)>,
}

impl Tracked {
    fn elapsed_ms(&self, started: Instant) -> u64 {
        let elapsed = self
            .finished_after
            .get()
            .copied()
            .unwrap_or_else(|| started.elapsed());
        u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX)
    }
}

/// The result of reading one reply.
#[derive(Default)]
struct Outcome {
    bytes: u64,
    sha256: String,
    output: Option<PathBuf>,
    /// A local failure (writing the file, an unexpected Content-Range): the reply was aborted.
    local_error: Option<String>,
    /// A 416 to a resume: the file was complete.
    resumed_complete: bool,
}

/// Runs `get`; returns the exit status. `priorities` has one entry per URL.
pub async fn run(args: GetArgs, priorities: Vec<Priority>) -> i32 {
    let stores = match Stores::load(&args) {
        Ok(s) => s,
        Err(e) => return usage(&e),
    };
    let manager = match build_manager(&args, &stores) {
        Ok(m) => m,
        Err(e) => return usage(&e),
    };
    if let Some(user) = &args.user {
        let (user, password) = match credentials(user, "--user") {
            Ok(c) => c,
            Err(e) => return usage(&e),
        };
        // Given once per reply, and only to the origin of the URL the user gave: never to a
        // redirect target (curl's rule without --location-trusted; CVE-2018-1000007). Asked
        // again means they were refused.
        let answered = std::sync::Mutex::new(std::collections::HashSet::new());
        manager
            .authentication_required()
            .connect(move |(reply, request)| {
                let given = reply.request().url().map(origin_of);
                let same_origin = given.is_some() && given == Some(origin_of(&reply.url()));
                if same_origin
                    && answered
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .insert(reply.clone())
                {
                    request.answer(&user, &password);
                } else {
                    request.refuse();
                }
            });
    }
    let payload = match payload(&args) {
        Ok(p) => p,
        Err(e) => return usage(&e),
    };
    let mut headers = Vec::new();
    for h in &args.headers {
        match h.split_once(':') {
            Some((name, value)) if http_token(name.trim()) => {
                headers.push((name.trim().to_owned(), value.trim().to_owned()));
            }
            _ => return usage(&format!("bad header {h:?}: expected 'Name: value'")),
        }
    }
    let verb = args.method.clone().unwrap_or_else(|| {
        match payload {
            Payload::None => "GET",
            _ => "POST",
        }
        .to_owned()
    });
    let out_dir = match &args.output_dir {
        Some(dir) => match OutputDir::create(dir) {
            Ok(d) => Some(Arc::new(d)),
            Err(e) => {
                return usage(&format!(
                    "cannot use {} as output directory: {e}",
                    dir.display()
                ))
            }
        },
        None => None,
    };

    let progress = Progress::new(
        !args.quiet && std::io::IsTerminal::is_terminal(&std::io::stderr()),
        args.urls.len(),
    );
    let started = Instant::now();
    let mut tracked = Vec::with_capacity(args.urls.len());
    for (index, url) in args.urls.iter().enumerate() {
        let mut request = Request::new(url)
            .with_priority(priorities.get(index).copied().unwrap_or(Priority::Normal))
            .with_max_redirects(args.max_redirects)
            .with_cache_load_control(cache_load(args.cache_load));
        for (n, v) in &headers {
            request.set_header(n, v);
        }
        let resume = match (&out_dir, args.resume) {
            (Some(dir), true) => resume_target(dir, url),
            _ => None,
        };
        if let Some((name, len)) = &resume {
            let path = out_dir.as_ref().expect("resume needs -o").path(name);
            request.set_header("Range", &format!("bytes={len}-"));
            request.set_header("Accept-Encoding", "identity");
            if let Ok(mtime) = std::fs::metadata(&path).and_then(|m| m.modified()) {
                request.set_header("If-Range", &httpdate::fmt_http_date(mtime));
            }
        }
        let body = match &payload {
            Payload::None => Body::empty(),
            Payload::Body(b) => b.clone(),
            Payload::Form(mp) => match mp.clone().apply(request.clone()) {
                Ok((r, b)) => {
                    request = r;
                    b
                }
                Err(e) => return usage(&format!("bad form: {}", e.message())),
            },
        };
        let shown = shown_url(url);
        let line = progress.add(index, &shown);
        let redirects = Arc::new(AtomicU32::new(0));
        let finished_after = Arc::new(OnceLock::new());
        let reply = manager.send_with(request, &verb, body, |reply| {
            let counter = redirects.clone();
            reply.redirected().connect(move |_| {
                counter.fetch_add(1, Ordering::Relaxed);
            });
            let done = finished_after.clone();
            reply.finished().connect(move |_| {
                let _ = done.set(started.elapsed());
            });
            line.connect(reply);
        });
        tracked.push(Tracked {
            url: shown,
            reply,
            redirects,
            finished_after,
            line,
            resume,
        });
    }
    let replies: Vec<Reply> = tracked.iter().map(|t| t.reply.clone()).collect();
    let interrupt = tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            for reply in &replies {
                reply.abort();
            }
        }
    });

    let mut failed = false;
    let quiet = args.quiet;
    let mut report = |t: &Tracked, outcome: Outcome, stdout: &mut dyn Write| {
        let reply = &t.reply;
        let error = if outcome.resumed_complete {
            None
        } else {
            reply.error()
        };
        let error_message = outcome
            .local_error
            .clone()
            .or_else(|| error.as_ref().map(|e| e.message().to_owned()));
        failed |= error.is_some() || outcome.local_error.is_some();
        t.line.finish(error_message.as_deref());
        progress.download_done();
        if args.json {
            let line = json!({
                "url": t.url,
                "final_url": netaccess::display_url(&reply.url()),
                "status": reply.status_code(),
                "error": error.as_ref().map(|e| e.kind().name()),
                "error_message": error_message,
                "headers": headers_json(reply),
                "bytes": outcome.bytes,
                "sha256": outcome.sha256,
                "from_cache": reply.source_is_from_cache(),
                "http_version": if reply.http2_was_used() { "HTTP/2" } else { "HTTP/1.1" },
                "redirects": t.redirects.load(Ordering::Relaxed),
                "encrypted": reply.is_encrypted(),
                "elapsed_ms": t.elapsed_ms(started),
                "output": outcome.output.as_ref().map(|p| p.display().to_string()),
            });
            let _ = writeln!(stdout, "{line}");
            let _ = stdout.flush();
        }
        if let Some(message) = &error_message {
            progress.println(&format!("netaccess: {}: {message}", t.url));
        } else if let (Some(path), false, false) = (&outcome.output, quiet, args.json) {
            let note = if outcome.resumed_complete {
                " (already complete)"
            } else {
                ""
            };
            progress.println(&format!("{} -> {}{note}", t.url, path.display()));
        }
    };

    let mut stdout = std::io::stdout().lock();
    match &out_dir {
        None if !args.json => {
            // Bodies to stdout, in URL order. The first streams straight through; the later
            // ones are read as they arrive into temporary files, so a large body behind a
            // slow one is never held in memory.
            let mut spools: Vec<_> = tracked
                .iter()
                .skip(1)
                .map(|t| Some(tokio::spawn(spool(t.reply.clone()))))
                .collect();
            for (index, t) in tracked.iter().enumerate() {
                let outcome = match index.checked_sub(1).and_then(|i| spools[i].take()) {
                    None => to_stdout(&t.reply, &mut stdout).await,
                    Some(spooled) => match spooled.await {
                        Ok(spooled) => spooled.copy_to(&t.reply, &mut stdout),
                        Err(e) => Outcome {
                            local_error: Some(format!("reading the body failed: {e}")),
                            ..Outcome::default()
                        },
                    },
                };
                let broken = outcome.local_error.is_some();
                report(t, outcome, &mut stdout);
                if broken {
                    // stdout is gone (a closed pipe): nothing more can be delivered.
                    for t in &tracked {
                        t.reply.abort();
                    }
                    failed = true;
                    break;
                }
            }
        }
        _ => {
            // Every reply read as it arrives (into its file, or only hashed); JSON lines as
            // they finish.
            let mut pending = FuturesUnordered::new();
            let head = verb.eq_ignore_ascii_case("HEAD");
            for (index, t) in tracked.iter().enumerate() {
                let dir = out_dir.clone();
                pending.push(async move {
                    let outcome = match dir {
                        Some(dir) if !head => save(t, index, &dir).await,
                        _ => digest_only(&t.reply).await,
                    };
                    (t, outcome)
                });
            }
            while let Some((t, outcome)) = pending.next().await {
                report(t, outcome, &mut stdout);
            }
        }
    }
    interrupt.abort();
    progress.finish();
    let _ = stdout.flush();
    failed |= !stores.save();
    i32::from(failed)
}

/// RFC 9110 token characters (a header name).
fn http_token(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// `--continue`: the file named after the URL path in DIR, if it exists as a file.
fn resume_target(dir: &OutputDir, url: &str) -> Option<(String, u64)> {
    let name = output::choose_name(None, url);
    let meta = std::fs::metadata(dir.path(&name)).ok()?;
    if !meta.is_file() || !dir.reserve_exact(&name) {
        return None;
    }
    Some((name, meta.len()))
}

/// A body read ahead into an anonymous temporary file, waiting for its turn on stdout.
struct Spooled {
    file: Option<std::fs::File>,
    outcome: Outcome,
}

impl Spooled {
    /// Copies the spooled body to stdout; a failure to write aborts nothing (the reply is
    /// over) but is reported.
    fn copy_to(mut self, reply: &Reply, stdout: &mut dyn Write) -> Outcome {
        use std::io::{Seek, SeekFrom};
        if let Some(mut file) = self.file.take() {
            let copied = file
                .seek(SeekFrom::Start(0))
                .and_then(|_| std::io::copy(&mut file, stdout));
            if let Err(e) = copied {
                reply.abort();
                self.outcome.local_error = Some(format!("cannot write to stdout: {e}"));
            }
        }
        let _ = stdout.flush();
        self.outcome
    }
}

/// Reads a body into a temporary file (deleted when closed), hashing it.
async fn spool(reply: Reply) -> Spooled {
    let mut outcome = Outcome::default();
    let mut file = match tempfile::tempfile() {
        Ok(file) => file,
        Err(e) => {
            reply.abort();
            outcome.local_error = Some(format!("cannot create a temporary file: {e}"));
            return Spooled {
                file: None,
                outcome,
            };
        }
    };
    let mut hasher = Sha256::new();
    let mut stream = reply.body_stream();
    while let Some(chunk) = stream.next().await {
        let Ok(chunk) = chunk else { break };
        hasher.update(&chunk);
        outcome.bytes += chunk.len() as u64;
        // A page-cache write of one chunk: short enough not to need a blocking thread.
        if let Err(e) = file.write_all(&chunk) {
            reply.abort();
            outcome.local_error = Some(format!("cannot write a temporary file: {e}"));
            break;
        }
    }
    outcome.sha256 = hex::encode(hasher.finalize());
    Spooled {
        file: Some(file),
        outcome,
    }
}

/// Reads a body into stdout, hashing it.
async fn to_stdout(reply: &Reply, stdout: &mut dyn Write) -> Outcome {
    let mut outcome = Outcome::default();
    let mut hasher = Sha256::new();
    let mut stream = reply.body_stream();
    while let Some(chunk) = stream.next().await {
        let Ok(chunk) = chunk else { break };
        hasher.update(&chunk);
        outcome.bytes += chunk.len() as u64;
        if let Err(e) = stdout.write_all(&chunk) {
            reply.abort();
            outcome.local_error = Some(format!("cannot write to stdout: {e}"));
            break;
        }
    }
    let _ = stdout.flush();
    outcome.sha256 = hex::encode(hasher.finalize());
    outcome
}

/// Reads a body without keeping it, hashing it.
async fn digest_only(reply: &Reply) -> Outcome {
    let mut outcome = Outcome::default();
    let mut hasher = Sha256::new();
    let mut stream = reply.body_stream();
    while let Some(Ok(chunk)) = stream.next().await {
        hasher.update(&chunk);
        outcome.bytes += chunk.len() as u64;
    }
    outcome.sha256 = hex::encode(hasher.finalize());
    outcome
}

/// `Last-Modified` of a reply, for the file's mtime.
fn last_modified(reply: &Reply) -> Option<SystemTime> {
    let value = reply.header("last-modified")?;
    httpdate::parse_http_date(value.to_str().ok()?).ok()
}

/// The start of `Content-Range: bytes START-END/TOTAL`.
fn content_range_start(reply: &Reply) -> Option<u64> {
    let value = reply.header("content-range")?;
    let rest = value.to_str().ok()?.trim().strip_prefix("bytes ")?;
    rest.split('-').next()?.trim().parse().ok()
}

/// Where the body of a reply goes.
enum Sink {
    /// A new file, committed under a fresh name.
    New(TempFile, String),
    /// A resume answered with 200: the existing file is replaced.
    Replace(TempFile, PathBuf),
    /// A resume answered with 206: appended.
    Append(std::fs::File, PathBuf),
    /// Nothing is saved (a failed reply, a 416).
    Discard,
}

/// Reads a reply into a file of DIR, named when its response head arrives.
async fn save(t: &Tracked, index: usize, dir: &OutputDir) -> Outcome {
    let reply = &t.reply;
    let mut outcome = Outcome::default();
    let mut hasher = Sha256::new();
    let mut stream = reply.body_stream();
    // The first chunk (or the end): the response head is known by then.
    let first = stream.next().await;
    let failed_early = matches!(first, Some(Err(_))) || reply.error().is_some();
    let status = reply.status_code();
    let mut sink = if failed_early && !(t.resume.is_some() && status == Some(416)) {
        Sink::Discard
    } else if let Some((name, len)) = &t.resume {
        let path = dir.path(name);
        match status {
            Some(416) => {
                outcome.resumed_complete = true;
                outcome.output = Some(path);
                Sink::Discard
            }
            Some(206) if content_range_start(reply) == Some(*len) => {
                match std::fs::OpenOptions::new().append(true).open(&path) {
                    Ok(file) => Sink::Append(file, path),
                    Err(e) => {
                        outcome.local_error = Some(format!("cannot open {}: {e}", path.display()));
                        Sink::Discard
                    }
                }
            }
            Some(206) => {
                outcome.local_error = Some(format!(
                    "unexpected Content-Range {:?} for a resume at byte {len}",
                    reply.header("content-range")
                ));
                Sink::Discard
            }
            _ => match dir.temp_file(name, index) {
                Ok(temp) => Sink::Replace(temp, path),
                Err(e) => {
                    outcome.local_error = Some(format!("cannot create a file in DIR: {e}"));
                    Sink::Discard
                }
            },
        }
    } else {
        let disposition = reply.header("content-disposition");
        let name = output::choose_name(disposition.as_ref().map(|v| v.as_bytes()), &t.url);
        let name = dir.reserve(&name);
        match dir.temp_file(&name, index) {
            Ok(temp) => Sink::New(temp, name),
            Err(e) => {
                outcome.local_error =
                    Some(format!("cannot create {}: {e}", dir.path(&name).display()));
                Sink::Discard
            }
        }
    };
    if outcome.local_error.is_some() {
        reply.abort();
    }
    let mut next = first;
    while let Some(Ok(chunk)) = next {
        hasher.update(&chunk);
        outcome.bytes += chunk.len() as u64;
        let written = match &mut sink {
            Sink::New(temp, _) | Sink::Replace(temp, _) => temp.write_all(&chunk),
            Sink::Append(file, _) => file.write_all(&chunk),
            Sink::Discard => Ok(()),
        };
        if let Err(e) = written {
            outcome.local_error = Some(format!("cannot write: {e}"));
            reply.abort();
            sink = Sink::Discard;
        }
        next = stream.next().await;
    }
    outcome.sha256 = hex::encode(hasher.finalize());
    // A failed transfer (or HTTP error) drops the temporary file.
    if reply.error().is_some() || outcome.local_error.is_some() {
        return outcome;
    }
    let mtime = last_modified(reply);
    let done = match sink {
        Sink::New(mut temp, name) => {
            output::set_mtime(temp.file(), mtime);
            dir.commit(temp, &name)
        }
        Sink::Replace(mut temp, path) => {
            output::set_mtime(temp.file(), mtime);
            dir.replace(temp, &path)
        }
        Sink::Append(file, path) => file
            .sync_all()
            .map(|()| output::set_mtime(&file, mtime))
            .map(|()| path),
        Sink::Discard => return outcome,
    };
    match done {
        Ok(path) => outcome.output = Some(path),
        Err(e) => outcome.local_error = Some(format!("cannot save: {e}")),
    }
    outcome
}

fn headers_json(reply: &Reply) -> Value {
    let mut map = Map::new();
    let headers = reply.headers();
    for name in headers.keys() {
        let joined: Vec<String> = headers
            .get_all(name)
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .collect();
        map.insert(name.as_str().to_owned(), Value::String(joined.join(", ")));
    }
    Value::Object(map)
}
