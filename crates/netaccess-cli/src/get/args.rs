//! The flags of `netaccess get` and its help text: parsing only, no behaviour.

use std::path::PathBuf;

use clap::{Args, ValueEnum};
use netaccess::Priority;

/// Examples and notes shown by `netaccess get --help`.
pub(super) const AFTER_HELP: &str = "\
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

Rates and segments:
  --limit-rate and --limit-rate-per-host pace how fast bodies are read off their connections
  (the server is slowed down by TCP or HTTP/2 flow control; nothing piles up in memory), with
  a burst of at most 1/8 s. While a higher-priority URL waits for bytes, lower ones get none.
  -x N (with -o) first asks for the first MiB with a Range. A 206 with a strong ETag (not W/)
  splits the rest into N ranged requests with If-Range, written into place in a preallocated
  hidden file; the length is checked and the file renamed at the end. A part answered with
  anything but the expected 206 (the file changed) fails the download. A server that ignores
  the Range gives the whole file in that one request; one without a strong ETag is fetched
  again in one request. The requests share the per-host connection limit and the priority;
  on HTTP/2 they are streams of one connection. With -x, the JSON status is the first
  request's (206 when split).

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

Retries and verbose output:
  --retry N sends a failed request again up to N times, after an exponential backoff with
  jitter (100 ms doubling, at most 10 s) or the Retry-After the server asked for (60 s at
  most; a longer one is not waited for). -v prints every request and response head on stderr,
  redirects and retries included, with credential and cookie values shown as [redacted].

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
  netaccess get -o downloads -x 4 --limit-rate 2M http://127.0.0.1:8080/a.iso
  netaccess get --priority high URL1 --priority low URL2 URL3   # URL2 and URL3 are low
  netaccess get -X PUT -d @body.json -H 'Content-Type: application/json' URL
  netaccess get -F name=value -F upload=@photo.jpg URL           # multipart/form-data POST
  netaccess get --json --max-per-host 2 --timeout 10 URL...
  netaccess get -v --retry 3 --connect-timeout 5 --max-time 60 URL
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
    pub(super) output_dir: Option<PathBuf>,
    /// With -o: resume a partial file with Range and If-Range
    #[arg(long = "continue", requires = "output_dir")]
    pub(super) resume: bool,
    /// Extra request header 'Name: value' (repeatable)
    #[arg(short = 'H', long = "header", value_name = "'Name: value'")]
    pub(super) headers: Vec<String>,
    /// The verb: GET, HEAD, POST, PUT, DELETE or any custom verb
    #[arg(short = 'X', long = "method", value_name = "VERB")]
    pub(super) method: Option<String>,
    /// Request body (POST unless -X says otherwise); @FILE streams a file
    #[arg(short = 'd', long = "data", value_name = "STRING|@FILE")]
    pub(super) data: Option<String>,
    /// multipart/form-data part name=value, or name=@FILE for a file (repeatable; POST unless -X)
    #[arg(
        short = 'F',
        long = "form",
        value_name = "NAME=VALUE|NAME=@FILE",
        conflicts_with = "data"
    )]
    pub(super) form: Vec<String>,
    /// Parallel connections per host:port
    #[arg(long, default_value_t = 6, value_name = "N")]
    pub(super) max_per_host: usize,
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
    pub(super) redirect_policy: RedirectArg,
    /// Redirects followed at most per request
    #[arg(long, default_value_t = 50, value_name = "N")]
    pub(super) max_redirects: u32,
    /// Transfer timeout in seconds: abort when no byte moves for that long
    #[arg(long, value_name = "SECONDS")]
    pub(super) timeout: Option<f64>,
    /// The most seconds each URL may take in all (redirects and retries included)
    #[arg(long, value_name = "SECONDS")]
    pub(super) max_time: Option<f64>,
    /// Connect timeout in seconds, TCP and TLS together (default 30)
    #[arg(long, value_name = "SECONDS")]
    pub(super) connect_timeout: Option<f64>,
    /// Retry a failed request up to N times: connection failures before any response, and
    /// 408, 429, 500, 502, 503, 504 (waiting Retry-After, up to 60 s); GET, HEAD, PUT and
    /// DELETE only, and never a body read from stdin
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub(super) retry: u32,
    /// Print each request and response head on stderr (credentials shown as [redacted])
    #[arg(short = 'v', long)]
    pub(super) verbose: bool,
    /// Extra trusted CA certificate (PEM)
    #[arg(long, value_name = "FILE")]
    pub(super) cacert: Option<PathBuf>,
    /// Ignore TLS certificate errors
    #[arg(long)]
    pub(super) insecure: bool,
    /// One JSON object per finished reply on stdout, one per line (bodies are not written)
    #[arg(long)]
    pub(super) json: bool,
    /// No progress bars (they are drawn on stderr only when it is a terminal)
    #[arg(short = 'q', long)]
    pub(super) quiet: bool,
    /// Disk cache directory (default: netaccess in the user's cache directory,
    /// $XDG_CACHE_HOME or ~/.cache)
    #[arg(long, value_name = "DIR")]
    pub(super) cache_dir: Option<PathBuf>,
    /// No disk cache
    #[arg(long, conflicts_with = "cache_dir")]
    pub(super) no_cache: bool,
    /// Cache load control (default prefer-network)
    #[arg(long, value_enum, value_name = "MODE")]
    pub(super) cache_load: Option<CacheLoadArg>,
    /// Load cookies from FILE before, save them (session cookies too) after; created if missing
    #[arg(long, value_name = "FILE")]
    pub(super) cookie_jar: Option<PathBuf>,
    /// Load HSTS policies from FILE before (and honour Strict-Transport-Security), save after
    #[arg(long, value_name = "FILE")]
    pub(super) hsts_store: Option<PathBuf>,
    /// http://, socks5:// or socks5h:// proxy (user:password@ in the URL, or --proxy-user)
    #[arg(long, value_name = "URL")]
    pub(super) proxy: Option<String>,
    /// No proxy, not even from the environment
    #[arg(long)]
    pub(super) no_proxy: bool,
    /// Credentials USER:PASS given when the server of the URL asks (never a redirect target)
    #[arg(short = 'u', long = "user", value_name = "USER:PASS")]
    pub(super) user: Option<String>,
    /// Credentials USER:PASS given when a proxy asks
    #[arg(long, value_name = "USER:PASS")]
    pub(super) proxy_user: Option<String>,
    // --- rates and segmented downloads (segmented.rs) ---
    /// Read response bodies at most RATE bytes per second in all (K, M, G are 1024
    /// multiples: 2M is 2 MiB/s); high-priority URLs get their share before low ones
    #[arg(long, value_name = "RATE", value_parser = parse_rate)]
    pub(super) limit_rate: Option<u64>,
    /// Read response bodies at most RATE bytes per second from each host:port
    #[arg(long, value_name = "RATE", value_parser = parse_rate)]
    pub(super) limit_rate_per_host: Option<u64>,
    /// With -o: fetch each file in N ranged requests at once (1 to 16) when the server
    /// answers a range with a strong ETag; one request otherwise
    #[arg(short = 'x', long = "split", value_name = "N", default_value_t = 1,
          value_parser = clap::value_parser!(u16).range(1..=16))]
    pub(super) split: u16,
}

/// `--limit-rate` values: bytes per second, with an optional K, M or G suffix (1024
/// multiples, as curl); a fraction is allowed with a suffix (1.5M). At least 1 byte/s.
pub(super) fn parse_rate(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let (number, unit) = match t.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => (&t[..i], c.to_ascii_uppercase()),
        _ => (t, ' '),
    };
    let multiplier: f64 = match unit {
        ' ' => 1.0,
        'K' => 1024.0,
        'M' => 1024.0 * 1024.0,
        'G' => 1024.0 * 1024.0 * 1024.0,
        _ => return Err(format!("{text:?}: the unit must be K, M or G")),
    };
    let value: f64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a rate (e.g. 500K, 2M)"))?;
    let bytes = (value * multiplier).floor();
    if !(1.0..=1e15).contains(&bytes) {
        return Err(format!("{text:?}: a rate is 1 byte/s to 1e15 bytes/s"));
    }
    Ok(bytes as u64)
}

pub(super) fn usage(message: &str) -> i32 {
    eprintln!("netaccess: {message}");
    2
}

/// `USER:PASS` of `-u` / `--proxy-user`.
pub(super) fn credentials(value: &str, flag: &str) -> Result<(String, String), String> {
    value
        .split_once(':')
        .map(|(u, p)| (u.to_owned(), p.to_owned()))
        .ok_or_else(|| format!("{flag} wants USER:PASS, got {value:?}"))
}
