//! The flags of `netaccess get` and its help text: parsing only, no behaviour.

use std::path::PathBuf;

use clap::{Args, ValueEnum};
use netaccess::Priority;

/// Examples and notes shown by `netaccess get --help`.
pub(super) const AFTER_HELP: &str = "\
Output:
  Without -o, bodies go to stdout in the order of the URLs (like curl): the first in line
  streams through, later ones are read as they arrive into temporary files (never held in
  memory) and copied out in turn; with --json they are not written. With -o DIR, the file
  name comes from Content-Disposition (filename*, then filename), else the URL path's last
  segment, else index.html; it is sanitised so it never leaves DIR (directories, '..',
  leading dots, control characters removed; <>:\"|?* become _; Windows device names get a
  leading _). An existing or already used name (or one with a NAME.part) gets a numeric
  suffix before the first dot: report.pdf, report.1.pdf, report.2.pdf (numbers are given in
  the order the responses arrive; --json tells which file is whose). URL -O NAME names that
  URL's file (in DIR, or the current directory without -o; an existing NAME is replaced;
  other URLs keep going to stdout). Files are requested with 'Accept-Encoding: identity'
  (as curl and wget do) unless -H sets it; either way a body is saved as sent (a gzip body
  stays gzip), so a Range counts the bytes on disk. HEAD saves nothing.

Partial downloads and --continue:
  A file is written as NAME.part and renamed to NAME only when complete (length and
  --checksum right). Once more than one read of its body has come, a small sidecar
  NAME.part.json beside it holds the URL, the response's ETag and Last-Modified and the full
  length. A download that fails or is interrupted keeps NAME.part and its sidecar (an empty
  one is removed). --fsync flushes each file to the disk before it gets its name, so a power
  loss cannot leave a short file under NAME; it costs about 4 ms a file on a virtual disk,
  which is why it is off by default, as in curl, wget and aria2.
  With --continue, NAME.part of the URL (found by the URL's name, -O NAME, or any sidecar
  naming the URL) is resumed with 'Range: bytes=LEN-' and 'If-Range: <the stored ETag>'
  (the stored Last-Modified when the ETag is weak or missing; with neither the download
  starts again). A 206 must say 'Content-Range: bytes LEN-...' with the stored length; a 200
  (the server ignored the range, or the file changed) rewrites NAME.part from byte 0; a wrong
  206 is dropped and the URL sent again without a range. Without --continue a NAME.part is
  never touched: a new download takes another name, and -O NAME with a NAME.part is an error.
  An existing NAME without a sidecar (another tool's file, or a finished download) is resumed
  in place with its mtime as the If-Range date (a finished download gets the response's
  Last-Modified as its mtime); 416 means complete.

Errors and checksums:
  The body of an HTTP error (status 400 and above) never becomes the output: no file, not a
  byte on stdout. --fail-with-body keeps it as NAME.error in DIR (the current directory
  without -o). URL --checksum sha256=HEX: the file is published only when its sha256 is
  HEX; on stdout such a body is spooled and checked before any byte of it is written; a
  mismatch publishes nothing (no file, no .part) and the exit status is 1.

Input lists (-i FILE, -i - for stdin):
  One URL per line, then optional fields: out=NAME priority=high|normal|low
  checksum=sha256=HEX (a value may be double-quoted). Empty lines and '#' lines are skipped;
  a line that is not valid (or longer than 64 KiB) fails on its own. Lists are read as a
  stream after the command-line URLs: at most --max-queued URLs are started ahead of the
  finished ones, so a list of any length runs in constant memory.

Rates and segments:
  --limit-rate and --limit-rate-per-host pace how fast bodies are read off their connections
  (the server is slowed down by TCP or HTTP/2 flow control; nothing piles up in memory), with
  a burst of at most 1/8 s. While a higher-priority URL waits for bytes, lower ones get none.
  -x N (for files: -o DIR or -O NAME) first asks for the first MiB with a Range. A 206
  with a strong ETag (not W/) splits the rest into N ranged requests with If-Range, written
  into place in NAME.part (preallocated); the length is checked, --checksum applies, and the
  file gets its name at the end. A part answered with anything but the expected 206 (the
  file changed) fails the download and removes NAME.part. A download that stops otherwise
  (an error, Ctrl-C) keeps NAME.part cut to the bytes complete from its start, with its
  sidecar: --continue then asks for the rest in one ranged request (a crash leaves no
  sidecar, so that NAME.part is left alone and the file is downloaded again). A server that
  ignores the Range gives the whole file in that one request; one without a strong ETag is
  asked again in one plain request; an empty file (416, length 0) is saved empty. The
  requests share the per-host connection limit, the priority and the rate limits; on HTTP/2
  they are streams of one connection; the progress line counts all of them. With -x, the
  JSON status is the first request's (206 when split, 416 for an empty file). --continue
  with a NAME.part resumes it in one request, whatever -x says.

Progress:
  With a terminal on stderr (and TERM not dumb), a line per URL ('queued' until its request
  is sent, then a bar with rate and ETA; the last 20 finished lines stay) and a total line:
  finished/known URLs ('+' while a list is read), bytes, rate, ETA, and how many requests are
  queued, were retried and failed. At the end (also with -v) a summary on stderr: files,
  bytes, time, rate, failures. -q turns both off.

JSON (--json), one object per finished reply, one per line, in the order replies finish:
  url, final_url, status, error (Qt's error name, UsageError for a list line or -O that
  could not be used, or null; a local failure such as a checksum mismatch has error null and
  an error_message), error_message, headers (repeated ones joined with \", \"), bytes (of this
  reply's body), sha256 (of this reply's body), from_cache, http_version, redirects,
  encrypted, elapsed_ms (from the start to this reply's end), output (path or null), kept
  (the .part kept for --continue, or null), timings (curl's
  time_namelookup, time_connect, time_appconnect, time_pretransfer, time_starttransfer and
  time_total in seconds from when the request was queued, 0 for a phase it skipped, as with
  -w; time_queue, num_connects, remote_ip)

Credentials:
  -u USER:PASS answers a 401 only from the origin (scheme, host and port) of the URL it was
  given with, never from a redirect target: a target that asks makes that URL fail. --netrc
  (~/.netrc, or $NETRC) and --netrc-file FILE follow the same rule, with the 'machine' entry
  of the URL's host ('default' entries are never used); -u wins over them. Passwords (of -u,
  --proxy-user, .netrc and URLs) never appear in messages, progress lines or --json.

Cookies:
  --cookie-jar FILE is netaccess's own JSON jar (loaded before, saved after). --load-cookies
  FILE imports a Netscape cookies.txt (curl -c, wget --save-cookies, browser exporters);
  --save-cookies FILE exports every cookie (session ones with expiry 0) in that format.

Cache:
  Off by default, as with curl and wget2: a download tool fetches what it is asked, and a
  cache would keep a second copy of every file. --cache turns it on in
  $XDG_CACHE_HOME/netaccess (else ~/.cache/netaccess), --cache-dir DIR in DIR; it holds at
  most 50 MiB (least recently used entries are evicted), owner-only.

Retries and verbose output:
  --retry N sends a failed request again up to N times, after an exponential backoff with
  jitter (100 ms doubling, at most 10 s) or the Retry-After the server asked for (60 s at
  most; a longer one is not waited for); --retry-delay SECONDS waits that long instead. -v
  prints every request and response head on stderr, redirects and retries included, with
  credential and cookie values shown as [redacted]. -w TEMPLATE prints curl's variables
  after each transfer, e.g. -w '%{http_code} %{time_total}\n', or %{json}.

Proxies:
  --proxy, else the environment (http_proxy, https_proxy, all_proxy and their upper-case
  forms, with no_proxy exceptions); --no-proxy ignores both.

Response heads and User-Agent:
  -D FILE writes every response head (redirects, 401s and retries included) as '# URL',
  'HTTP STATUS REASON', the header lines and an empty line. Requests carry
  'User-Agent: netaccess/VERSION' unless -A (or -H 'User-Agent: ...') says otherwise.

Config file:
  Defaults come from $NETACCESS_CONFIG, else $XDG_CONFIG_HOME/netaccess/config, else
  ~/.config/netaccess/config (TOML; a missing file is fine): keys are the long flag names,
  e.g. 'retry = 3', 'max-per-host = 4', 'cache = true', 'header = [\"Accept-Language: en\"]'.
  The command line wins: a flag given there replaces the file's value, a repeatable one adds
  to it. output, checksum and input-file cannot be set there; an unknown key or a value of
  the wrong kind is bad usage. --no-config skips the file.

Exit status: 0 when every reply finished without error, 1 when any failed (a bad list line,
a checksum mismatch included), 2 for bad usage (numbers out of range included), 130 after
Ctrl-C (every transfer is aborted, partial files are kept for --continue; a second Ctrl-C
exits at once). A cookie jar or HSTS file that is not valid, and a cookies.txt, .netrc or
config file that cannot be read or is too large (16 MiB, 1 MiB, 1 MiB), are bad usage too (a
cookies.txt line that is not a cookie is skipped, with a note); a file that cannot be saved
at the end makes the exit status 1.

Examples:
  netaccess get http://127.0.0.1:8080/hello
  netaccess get -o downloads http://127.0.0.1:8080/a.iso http://127.0.0.1:8080/b.iso
  netaccess get -o downloads --continue http://127.0.0.1:8080/a.iso
  netaccess get URL -O name.iso --checksum sha256=9f86d081884c7d65...
  netaccess get -o downloads -i urls.txt --max-queued 16     # or: producer | netaccess get -i -
  netaccess get --netrc --load-cookies cookies.txt -D heads.txt -A 'MyTool/1.0' URL
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
#[command(after_help = AFTER_HELP, args_override_self = true)]
pub struct GetArgs {
    /// URLs to download through one manager (see -i for a list)
    #[arg(required_unless_present = "input", value_name = "URL")]
    pub urls: Vec<String>,
    /// Write each body to DIR (created if missing) instead of stdout
    #[arg(short = 'o', long = "output-dir", value_name = "DIR")]
    pub(super) output_dir: Option<PathBuf>,
    /// Resume NAME.part (or an existing NAME) with Range and If-Range (needs -o or -O)
    #[arg(long = "continue")]
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
    /// Wait this many seconds between retries instead of the exponential backoff
    #[arg(long, value_name = "SECONDS", requires = "retry")]
    pub(super) retry_delay: Option<f64>,
    /// After each transfer, print TEMPLATE on stdout with curl's %{variables}
    /// (time_namelookup, time_connect, time_appconnect, time_starttransfer, time_total,
    /// http_code, num_connects, remote_ip, ...; %{json} for all) and \n escapes
    #[arg(short = 'w', long = "write-out", value_name = "TEMPLATE")]
    pub(super) write_out: Option<String>,
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
    /// Turn the disk cache on, in DIR
    #[arg(long, value_name = "DIR")]
    pub(super) cache_dir: Option<PathBuf>,
    /// No disk cache (the default; conflicts with --cache and --cache-dir)
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

    // ----- download manager flags (issue 14: lists, names, integrity, interop) -----
    /// Read URLs from FILE ('-' for stdin), one per line, with optional per-URL options
    /// (repeatable; read as a stream after the URLs of the command line)
    #[arg(short = 'i', long = "input-file", value_name = "FILE")]
    pub(super) input: Vec<PathBuf>,
    /// At most N URLs started ahead of the finished ones (requests in flight or queued, and
    /// bodies waiting for their turn on stdout)
    #[arg(long, default_value_t = 64, value_name = "N")]
    pub(super) max_queued: usize,
    /// File NAME for the URL just before it (in --output-dir, else the current directory)
    #[arg(short = 'O', long = "output", value_name = "NAME")]
    pub(super) output: Vec<String>,
    /// sha256=HEX the body of the URL just before it must have; a mismatch publishes nothing
    #[arg(long, value_name = "sha256=HEX")]
    pub(super) checksum: Vec<String>,
    /// Keep the body of an HTTP error reply as NAME.error (never as NAME, never on stdout)
    #[arg(long)]
    pub(super) fail_with_body: bool,
    /// Write every response head (redirects and retries included) to FILE
    #[arg(short = 'D', long = "dump-header", value_name = "FILE")]
    pub(super) dump_header: Option<PathBuf>,
    /// The User-Agent header (default netaccess/VERSION)
    #[arg(short = 'A', long = "user-agent", value_name = "STRING")]
    pub(super) user_agent: Option<String>,
    /// Turn the disk cache on, in its default directory
    #[arg(long, conflicts_with = "no_cache")]
    pub(super) cache: bool,
    /// Answer a server's 401 with the credentials ~/.netrc holds for its host
    #[arg(long)]
    pub(super) netrc: bool,
    /// Like --netrc, from FILE
    #[arg(long, value_name = "FILE")]
    pub(super) netrc_file: Option<PathBuf>,
    /// Import cookies from a Netscape cookies.txt FILE (curl, wget and browser exports)
    #[arg(long, value_name = "FILE")]
    pub(super) load_cookies: Option<PathBuf>,
    /// Export every cookie at the end to a Netscape cookies.txt FILE
    #[arg(long, value_name = "FILE")]
    pub(super) save_cookies: Option<PathBuf>,
    /// Flush each file to the disk before it gets its name (survives a power loss; slower)
    #[arg(long)]
    pub(super) fsync: bool,
    /// Do not read the config file (see "Config file" below)
    #[arg(long)]
    pub(super) no_config: bool,
    // ----- end of download manager flags -----

    // --- rates and segmented downloads (segmented.rs) ---
    /// Read response bodies at most RATE bytes per second in all (K, M, G are 1024
    /// multiples: 2M is 2 MiB/s); high-priority URLs get their share before low ones
    #[arg(long, value_name = "RATE", value_parser = parse_rate)]
    pub(super) limit_rate: Option<u64>,
    /// Read response bodies at most RATE bytes per second from each host:port
    #[arg(long, value_name = "RATE", value_parser = parse_rate)]
    pub(super) limit_rate_per_host: Option<u64>,
    /// Fetch each file (-o, -O) in N ranged requests at once (1 to 16) when the server
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
