//! Real third-party servers for interoperability tests: [`Squid`] (HTTP proxy, optionally
//! with Basic proxy authentication), [`Microsocks`] (SOCKS5, optionally with a user name and
//! password) and [`Apache`] httpd (Digest and Basic authentication).
//!
//! Each peer runs as a child process in its own process group, with its own configuration in
//! its own temporary directory, listening on a free `127.0.0.1` port picked at run time (a
//! `127.0.0.1:0` listener is bound, its port read and the listener dropped; if the peer then
//! fails to start, a new port is tried). `start` blocks until the port accepts connections, at
//! most [`START_TIMEOUT`]; call it from a test directly (it only blocks the calling thread) or
//! from `tokio::task::spawn_blocking`. Dropping the handle kills the whole process group (so
//! helpers and worker processes go too) and removes the directory.
//!
//! The binaries come from Debian packages that `scripts/test` installs (`squid`,
//! `microsocks`, `apache2`, `openssl`). When one is missing, `start` fails with a message such
//! as ``squid is not installed: run `apt-get install squid` (scripts/test does this)``, so a
//! test that `expect`s the result fails with that message instead of passing silently.
//!
//! ```no_run
//! use netaccess_testserver::peers::{Squid, SquidOptions};
//!
//! let squid = Squid::start(SquidOptions {
//!     basic_auth: Some(("alice".into(), "secret".into())),
//! })
//! .expect("squid");
//! let proxy_url = squid.url(); // http://127.0.0.1:PORT
//! // ... send requests through the proxy, then:
//! assert!(squid.log().contains("TCP_MISS"));
//! # let _ = proxy_url;
//! ```

use std::fmt;
use std::fs;
use std::io;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// The longest a peer may take to accept connections after being spawned.
pub const START_TIMEOUT: Duration = Duration::from_secs(10);

/// How often a starting peer's port is probed.
const POLL_INTERVAL: Duration = Duration::from_millis(20);

/// Ports tried before giving up when a peer exits right away (e.g. its port was taken).
const START_ATTEMPTS: usize = 3;

/// Where squid's authentication helpers live on Debian.
const SQUID_HELPER_DIR: &str = "/usr/lib/squid";

/// Where Apache's modules live on Debian.
const APACHE_MODULE_DIR: &str = "/usr/lib/apache2/modules";

/// The error for a missing binary, naming the Debian package to install.
fn not_installed(name: &str, package: &str) -> String {
    format!("{name} is not installed: run `apt-get install {package}` (scripts/test does this)")
}

/// The path of executable `name`, looked up in `PATH` and the sbin directories (which a
/// non-root `PATH` often lacks).
fn find_binary(name: &str, package: &str) -> Result<PathBuf, String> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(
            [
                "/usr/local/sbin",
                "/usr/local/bin",
                "/usr/sbin",
                "/usr/bin",
                "/sbin",
                "/bin",
            ]
            .map(PathBuf::from),
        )
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
        .ok_or_else(|| not_installed(name, package))
}

fn is_executable(path: &Path) -> bool {
    fs::metadata(path).is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
}

/// A file that a package installs at a fixed path.
fn require_file(path: PathBuf, package: &str) -> Result<PathBuf, String> {
    if path.is_file() {
        Ok(path)
    } else {
        Err(not_installed(&path.display().to_string(), package))
    }
}

/// A port on `127.0.0.1` that was free a moment ago.
fn free_port() -> Result<u16, String> {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .map_err(|error| format!("cannot find a free port: {error}"))
}

fn running_as_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// `(uid, gid)` of a local user, from `/etc/passwd`.
fn user_ids(user: &str) -> Option<(u32, u32)> {
    let passwd = fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|line| {
        let fields: Vec<&str> = line.split(':').collect();
        (fields.len() > 3 && fields[0] == user)
            .then(|| Some((fields[2].parse().ok()?, fields[3].parse().ok()?)))
            .flatten()
    })
}

fn write_file(path: &Path, contents: &str) -> Result<(), String> {
    fs::write(path, contents).map_err(|error| format!("cannot write {}: {error}", path.display()))
}

fn set_mode(path: &Path, mode: u32) -> Result<(), String> {
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .map_err(|error| format!("cannot chmod {}: {error}", path.display()))
}

fn io_error(what: &str) -> impl FnOnce(io::Error) -> String + '_ {
    move |error| format!("{what}: {error}")
}

/// The last `max` bytes of a log file, for error messages.
fn tail(path: &Path, max: usize) -> String {
    let text = fs::read(path).unwrap_or_default();
    let start = text.len().saturating_sub(max);
    String::from_utf8_lossy(&text[start..]).trim().to_owned()
}

/// An `$apr1$` (Apache MD5) password hash from `openssl passwd -apr1`, which both Apache's
/// `AuthUserFile` and squid's `basic_ncsa_auth` accept.
fn apr1_hash(password: &str) -> Result<String, String> {
    let openssl = find_binary("openssl", "openssl")?;
    let output = Command::new(openssl)
        .args(["passwd", "-apr1", "-stdin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use io::Write as _;
            let mut stdin = child.stdin.take().expect("piped stdin");
            stdin.write_all(password.as_bytes())?;
            stdin.write_all(b"\n")?;
            drop(stdin);
            child.wait_with_output()
        })
        .map_err(io_error("cannot run openssl passwd"))?;
    let hash = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    if !output.status.success() || !hash.starts_with("$apr1$") {
        return Err(format!(
            "openssl passwd -apr1 failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    Ok(hash)
}

/// Rejects characters that would break a config or password file line.
fn check_credential(what: &str, value: &str, forbidden: &[char]) -> Result<(), String> {
    match value
        .chars()
        .find(|c| c.is_control() || forbidden.contains(c))
    {
        Some(c) => Err(format!("{what} {value:?} may not contain {c:?}")),
        None => Ok(()),
    }
}

/// A running peer process in its own process group. On drop it is asked to stop (`SIGTERM`,
/// so it reaps its workers) when its [`Cleanup`] says so, then whatever is left of the group is
/// killed (after at most [`STOP_GRACE`]), its files outside the directory are removed, and
/// finally the directory.
struct PeerProcess {
    name: &'static str,
    child: Child,
    port: u16,
    cleanup: Cleanup,
    dir: TempDir,
}

/// How a peer is stopped.
#[derive(Debug, Clone, Default)]
struct Cleanup {
    /// Send `SIGTERM` and wait before killing the group (Apache: its parent reaps its workers
    /// in a few milliseconds; squid would take a second or two, so it is killed outright).
    terminate_first: bool,
    /// Files in `/dev/shm` starting with this are the peer's (squid's shared memory segments,
    /// which a killed squid leaves behind).
    shm_prefix: Option<String>,
}

impl fmt::Debug for PeerProcess {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PeerProcess")
            .field("name", &self.name)
            .field("pid", &self.child.id())
            .field("port", &self.port)
            .field("dir", &self.dir.path())
            .finish()
    }
}

impl Drop for PeerProcess {
    fn drop(&mut self) {
        if self.cleanup.terminate_first {
            stop_gracefully(&mut self.child);
        }
        kill_group(&mut self.child);
        if let Some(prefix) = &self.cleanup.shm_prefix {
            remove_shared_memory(prefix);
        }
    }
}

/// Removes the files in `/dev/shm` whose names start with `prefix`.
fn remove_shared_memory(prefix: &str) {
    let Ok(entries) = fs::read_dir("/dev/shm") else {
        return;
    };
    for entry in entries.flatten() {
        if entry.file_name().to_string_lossy().starts_with(prefix) {
            let _ = fs::remove_file(entry.path());
        }
    }
}

/// How long a stopping peer may take to exit on `SIGTERM` before its group is killed.
const STOP_GRACE: Duration = Duration::from_secs(3);

/// Sends `SIGTERM` to the peer's main process and waits up to [`STOP_GRACE`] for it to exit.
fn stop_gracefully(child: &mut Child) {
    if !matches!(child.try_wait(), Ok(None)) {
        return;
    }
    let Ok(pid) = libc::pid_t::try_from(child.id()) else {
        return;
    };
    // SAFETY: kill has no memory-safety preconditions; `pid` is our own unreaped child.
    unsafe {
        libc::kill(pid, libc::SIGTERM);
    }
    let deadline = Instant::now() + STOP_GRACE;
    while Instant::now() < deadline {
        if !matches!(child.try_wait(), Ok(None)) {
            return;
        }
        thread::sleep(POLL_INTERVAL);
    }
}

/// Kills everything left in the child's process group, then reaps the child.
fn kill_group(child: &mut Child) {
    if let Ok(pid) = libc::pid_t::try_from(child.id()) {
        // SAFETY: kill has no memory-safety preconditions; the group is the child's own
        // (spawned with `process_group(0)`), so nothing else is signalled.
        unsafe {
            libc::kill(-pid, libc::SIGKILL);
        }
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// Why one start attempt failed.
enum AttemptError {
    /// The process exited before accepting: maybe its port was taken, so try another.
    Exited(ExitStatus),
    /// Anything else: give up.
    Fatal(String),
}

/// Starts a peer: makes a fresh temporary directory, writes its config there for a free port
/// (`configure` returns the command to run), spawns it in its own process group with output to
/// `DIR/NAME.out`, and waits until the port accepts connections. `logs` are files in the
/// directory whose tails go into error messages.
fn start_peer(
    name: &'static str,
    mut configure: impl FnMut(&Path, u16) -> Result<Command, String>,
    cleanup: impl Fn(u16) -> Cleanup,
    logs: &[&str],
) -> Result<PeerProcess, String> {
    let deadline = Instant::now() + START_TIMEOUT;
    let mut last_failure = String::new();
    for _ in 0..START_ATTEMPTS {
        let dir = tempfile::Builder::new()
            .prefix(&format!("netaccess-{name}-"))
            .tempdir()
            .map_err(io_error("cannot create a temporary directory"))?;
        let output_path = dir.path().join(format!("{name}.out"));
        let port = free_port()?;
        let mut command = configure(dir.path(), port)?;
        let output = fs::File::create(&output_path).map_err(io_error("cannot create log"))?;
        let output_err = output.try_clone().map_err(io_error("cannot clone log"))?;
        command
            .stdin(Stdio::null())
            .stdout(output)
            .stderr(output_err)
            .current_dir(dir.path())
            .process_group(0);
        let child = command
            .spawn()
            .map_err(|error| format!("cannot start {name}: {error}"))?;
        let mut process = PeerProcess {
            name,
            child,
            port,
            cleanup: cleanup(port),
            dir,
        };
        match wait_until_accepting(&mut process.child, port, deadline) {
            Ok(()) => return Ok(process),
            Err(AttemptError::Exited(status)) => {
                last_failure = format!(
                    "{name} exited ({status}) before accepting on 127.0.0.1:{port}: {}",
                    peer_logs(process.dir.path(), &output_path, logs)
                );
            }
            Err(AttemptError::Fatal(message)) => {
                return Err(format!(
                    "{name} {message}: {}",
                    peer_logs(process.dir.path(), &output_path, logs)
                ));
            }
        }
        if Instant::now() >= deadline {
            break;
        }
    }
    Err(last_failure)
}

/// Output and log tails of a peer, for error messages.
fn peer_logs(dir: &Path, output: &Path, logs: &[&str]) -> String {
    let mut text = format!("output: {:?}", tail(output, 2000));
    for log in logs {
        text.push_str(&format!("; {log}: {:?}", tail(&dir.join(log), 2000)));
    }
    text
}

fn wait_until_accepting(
    child: &mut Child,
    port: u16,
    deadline: Instant,
) -> Result<(), AttemptError> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(AttemptError::Exited(status));
        }
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            // Still ours? (Another process might have taken the port.)
            return match child.try_wait() {
                Ok(Some(status)) => Err(AttemptError::Exited(status)),
                _ => Ok(()),
            };
        }
        if Instant::now() >= deadline {
            return Err(AttemptError::Fatal(format!(
                "did not accept connections on 127.0.0.1:{port} within {START_TIMEOUT:?}"
            )));
        }
        thread::sleep(POLL_INTERVAL);
    }
}

fn loopback_url(scheme: &str, port: u16) -> String {
    format!("{scheme}://127.0.0.1:{port}")
}

// ---------------------------------------------------------------------------------------------
// squid

/// How to configure a [`Squid`].
#[derive(Debug, Clone, Default)]
pub struct SquidOptions {
    /// `Some((user, password))`: every request (CONNECT included) needs
    /// `Proxy-Authorization: Basic` with these credentials, else `407` with
    /// `Proxy-Authenticate: Basic realm="netaccess-squid"`. The user may not contain `:` or
    /// whitespace.
    pub basic_auth: Option<(String, String)>,
}

/// The Basic realm of a [`Squid`] with authentication.
pub const SQUID_REALM: &str = "netaccess-squid";

/// A squid HTTP proxy (`squid -N`, no daemon, no cache) on `127.0.0.1`.
///
/// It forwards absolute-form requests and tunnels `CONNECT` to any port. It resolves host names
/// with `/etc/hosts` and, failing that, a DNS server on `127.0.0.1` only, so it never contacts
/// another machine. When run as root it works as user `proxy`.
#[derive(Debug)]
pub struct Squid {
    process: PeerProcess,
}

impl Squid {
    /// Starts squid; blocks until it accepts connections (at most [`START_TIMEOUT`]).
    pub fn start(options: SquidOptions) -> Result<Squid, String> {
        let squid = find_binary("squid", "squid")?;
        let password_file_line = match &options.basic_auth {
            Some((user, password)) => {
                check_credential("squid user", user, &[':', ' ', '\t'])?;
                check_credential("squid password", password, &[])?;
                Some(format!("{user}:{}\n", apr1_hash(password)?))
            }
            None => None,
        };
        let helper = match password_file_line {
            Some(_) => Some(require_file(
                Path::new(SQUID_HELPER_DIR).join("basic_ncsa_auth"),
                "squid",
            )?),
            None => None,
        };
        // squid refuses to work as root: when root, it switches to `proxy`, which must be able
        // to write the logs and read the password file.
        let effective_user = if running_as_root() {
            Some(user_ids("proxy").ok_or_else(|| {
                "user `proxy` does not exist: run `apt-get install squid` (scripts/test does this)"
                    .to_owned()
            })?)
        } else {
            None
        };
        let process = start_peer(
            "squid",
            |dir, port| {
                let mut config = format!(
                    "http_port 127.0.0.1:{port}\n\
                     visible_hostname netaccess-test-squid\n\
                     pid_filename {dir}/squid.pid\n\
                     cache_log {dir}/cache.log\n\
                     access_log stdio:{dir}/access.log\n\
                     buffered_logs off\n\
                     cache_store_log none\n\
                     logfile_rotate 0\n\
                     coredump_dir {dir}\n\
                     netdb_filename none\n\
                     pinger_enable off\n\
                     shutdown_lifetime 0 seconds\n\
                     max_filedescriptors 1024\n\
                     dns_nameservers 127.0.0.1\n\
                     cache deny all\n\
                     cache_mem 8 MB\n\
                     acl SSL_ports port 1-65535\n\
                     acl Safe_ports port 1-65535\n\
                     acl CONNECT method CONNECT\n\
                     http_access deny !Safe_ports\n\
                     http_access deny CONNECT !SSL_ports\n",
                    dir = dir.display()
                );
                if let (Some(line), Some(helper)) = (&password_file_line, &helper) {
                    let passwd = dir.join("passwd");
                    write_file(&passwd, line)?;
                    set_mode(&passwd, 0o644)?;
                    config.push_str(&format!(
                        "auth_param basic program {} {}\n\
                         auth_param basic children 2 startup=1 idle=1\n\
                         auth_param basic realm {SQUID_REALM}\n\
                         acl authed proxy_auth REQUIRED\n\
                         http_access allow authed\n\
                         http_access deny all\n",
                        helper.display(),
                        passwd.display()
                    ));
                } else {
                    config.push_str("http_access allow all\n");
                }
                if let Some((uid, gid)) = effective_user {
                    config.push_str("cache_effective_user proxy\ncache_effective_group proxy\n");
                    std::os::unix::fs::chown(dir, Some(uid), Some(gid))
                        .map_err(io_error("cannot hand the squid directory to `proxy`"))?;
                }
                let config_path = dir.join("squid.conf");
                write_file(&config_path, &config)?;
                let mut command = Command::new(&squid);
                command
                    .arg("-N")
                    .arg("-n")
                    .arg(squid_service_name(port))
                    .arg("-f")
                    .arg(config_path);
                Ok(command)
            },
            |port| Cleanup {
                terminate_first: false,
                shm_prefix: Some(format!("{}-", squid_service_name(port))),
            },
            &["cache.log"],
        )?;
        Ok(Squid { process })
    }

    /// The port squid listens on (on `127.0.0.1`).
    pub fn port(&self) -> u16 {
        self.process.port
    }

    /// `127.0.0.1:PORT`.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.port()))
    }

    /// `http://127.0.0.1:PORT`, the proxy URL.
    pub fn url(&self) -> String {
        loopback_url("http", self.port())
    }

    /// The access log so far (one line per finished transaction, written when it ends: poll
    /// for a line rather than reading once right after a response).
    pub fn log(&self) -> String {
        fs::read_to_string(self.process.dir.path().join("access.log")).unwrap_or_default()
    }

    /// Waits until the access log holds `needle` (squid writes a line when its transaction
    /// ends, which may be after the client has the whole response; a tunnel's when it
    /// closes), for at most `limit`. Returns whether it did.
    pub async fn wait_for_log(&self, needle: &str, limit: std::time::Duration) -> bool {
        let deadline = std::time::Instant::now() + limit;
        loop {
            if self.log().contains(needle) {
                return true;
            }
            if std::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    /// squid's own log (`cache_log`: startup, helper and error messages).
    pub fn cache_log(&self) -> String {
        fs::read_to_string(self.process.dir.path().join("cache.log")).unwrap_or_default()
    }
}

/// squid's service name (`-n`): it prefixes the shared memory segments squid creates in
/// `/dev/shm` even with `-N`, so instances running side by side must not share it.
fn squid_service_name(port: u16) -> String {
    format!("netaccess{port}")
}

// ---------------------------------------------------------------------------------------------
// microsocks

/// A microsocks SOCKS5 server on `127.0.0.1`.
///
/// Without credentials it offers the "no authentication" method; with them it requires the
/// username/password method (RFC 1929). It accepts IPv4, IPv6 and domain-name targets
/// (resolving names itself, as `socks5h://` expects).
#[derive(Debug)]
pub struct Microsocks {
    process: PeerProcess,
}

impl Microsocks {
    /// Starts microsocks, requiring `auth` (user, password) when given; blocks until it accepts
    /// connections (at most [`START_TIMEOUT`]).
    pub fn start(auth: Option<(&str, &str)>) -> Result<Microsocks, String> {
        let microsocks = find_binary("microsocks", "microsocks")?;
        if let Some((user, password)) = auth {
            check_credential("microsocks user", user, &[])?;
            check_credential("microsocks password", password, &[])?;
            if user.is_empty() || user.len() > 255 || password.is_empty() || password.len() > 255 {
                return Err("SOCKS5 user names and passwords have 1 to 255 bytes".into());
            }
        }
        let process = start_peer(
            "microsocks",
            |_dir, port| {
                let mut command = Command::new(&microsocks);
                command.args(["-i", "127.0.0.1", "-p", &port.to_string()]);
                if let Some((user, password)) = auth {
                    command.args(["-u", user, "-P", password]);
                }
                Ok(command)
            },
            |_| Cleanup::default(),
            &[],
        )?;
        Ok(Microsocks { process })
    }

    /// The port microsocks listens on (on `127.0.0.1`).
    pub fn port(&self) -> u16 {
        self.process.port
    }

    /// `127.0.0.1:PORT`.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.port()))
    }

    /// `socks5://127.0.0.1:PORT`, the proxy URL.
    pub fn url(&self) -> String {
        loopback_url("socks5", self.port())
    }
}

// ---------------------------------------------------------------------------------------------
// Apache httpd

/// How to configure an [`Apache`].
#[derive(Debug, Clone)]
pub struct ApacheOptions {
    /// `(user, password)` accepted by both protected areas. The user may not contain `:`.
    pub digest_user: (String, String),
    /// The realm of both areas (`AuthName`). May not contain `"`, `:` or `\`.
    pub realm: String,
}

impl Default for ApacheOptions {
    /// User `alice`, password `secret`, realm `netaccess-apache`.
    fn default() -> Self {
        ApacheOptions {
            digest_user: ("alice".into(), "secret".into()),
            realm: "netaccess-apache".into(),
        }
    }
}

/// Body of `/` (and `/index.html`) on an [`Apache`].
pub const APACHE_DIGEST_BODY: &str = "digest ok\n";
/// Body of `/basic/` (and `/basic/index.html`) on an [`Apache`].
pub const APACHE_BASIC_BODY: &str = "basic ok\n";

/// The Apache modules an [`Apache`] loads: `(module name, file)`.
const APACHE_MODULES: [(&str, &str); 9] = [
    ("mpm_prefork_module", "mod_mpm_prefork.so"),
    ("authz_core_module", "mod_authz_core.so"),
    ("authz_user_module", "mod_authz_user.so"),
    ("authn_core_module", "mod_authn_core.so"),
    ("authn_file_module", "mod_authn_file.so"),
    ("auth_basic_module", "mod_auth_basic.so"),
    ("auth_digest_module", "mod_auth_digest.so"),
    ("dir_module", "mod_dir.so"),
    ("mime_module", "mod_mime.so"),
];

/// Apache httpd (`apache2 -D FOREGROUND`, prefork) on `127.0.0.1` serving two protected
/// areas with the credentials of [`ApacheOptions`]:
///
/// | Path | Protection | Body |
/// |---|---|---|
/// | `/`, `/index.html` | `AuthType Digest` (mod_auth_digest: `algorithm=MD5`, `qop="auth"`) | [`APACHE_DIGEST_BODY`] |
/// | `/basic/`, `/basic/index.html` | `AuthType Basic` | [`APACHE_BASIC_BODY`] |
///
/// When run as root, its workers run as `www-data`.
#[derive(Debug)]
pub struct Apache {
    process: PeerProcess,
}

impl Apache {
    /// Starts Apache; blocks until it accepts connections (at most [`START_TIMEOUT`]).
    pub fn start(options: ApacheOptions) -> Result<Apache, String> {
        let apache = find_binary("apache2", "apache2")?;
        let modules = APACHE_MODULES
            .iter()
            .map(|(name, file)| {
                require_file(Path::new(APACHE_MODULE_DIR).join(file), "apache2")
                    .map(|path| format!("LoadModule {name} {}\n", path.display()))
            })
            .collect::<Result<String, String>>()?;
        let (user, password) = &options.digest_user;
        let realm = &options.realm;
        check_credential("Apache user", user, &[':'])?;
        check_credential("Apache password", password, &[])?;
        check_credential("Apache realm", realm, &['"', ':', '\\'])?;
        let digest_line = format!(
            "{user}:{realm}:{}\n",
            md5_hex(format!("{user}:{realm}:{password}").as_bytes())
        );
        let basic_line = format!("{user}:{}\n", apr1_hash(password)?);
        let worker_user = if running_as_root() {
            user_ids("www-data").ok_or_else(|| {
                "user `www-data` does not exist: run `apt-get install apache2` (scripts/test does \
                 this)"
                    .to_owned()
            })?;
            "User www-data\nGroup www-data\n"
        } else {
            ""
        };
        let process = start_peer(
            "apache2",
            |dir, port| {
                // Workers (www-data when root) read the documents and password files.
                set_mode(dir, 0o755)?;
                let htdocs = dir.join("htdocs");
                let basic = htdocs.join("basic");
                fs::create_dir_all(&basic).map_err(io_error("cannot create htdocs"))?;
                write_file(&htdocs.join("index.html"), APACHE_DIGEST_BODY)?;
                write_file(&basic.join("index.html"), APACHE_BASIC_BODY)?;
                write_file(&dir.join("htdigest"), &digest_line)?;
                write_file(&dir.join("htpasswd"), &basic_line)?;
                let config = format!(
                    "ServerRoot \"{dir}\"\n\
                     ServerName 127.0.0.1\n\
                     Listen 127.0.0.1:{port}\n\
                     PidFile \"{dir}/httpd.pid\"\n\
                     DefaultRuntimeDir \"{dir}\"\n\
                     Mutex file:{dir} default\n\
                     ErrorLog \"{dir}/error.log\"\n\
                     LogLevel warn\n\
                     {modules}\
                     {worker_user}\
                     StartServers 2\n\
                     MinSpareServers 1\n\
                     MaxSpareServers 4\n\
                     MaxRequestWorkers 16\n\
                     KeepAliveTimeout 5\n\
                     TypesConfig /dev/null\n\
                     AddType text/html .html\n\
                     DirectoryIndex index.html\n\
                     LogFormat \"%h %l %u %t \\\"%r\\\" %>s %b\" common\n\
                     CustomLog \"{dir}/access.log\" common\n\
                     DocumentRoot \"{dir}/htdocs\"\n\
                     <Directory \"{dir}/htdocs\">\n\
                     \x20   AuthType Digest\n\
                     \x20   AuthName \"{realm}\"\n\
                     \x20   AuthDigestProvider file\n\
                     \x20   AuthUserFile \"{dir}/htdigest\"\n\
                     \x20   Require valid-user\n\
                     </Directory>\n\
                     <Directory \"{dir}/htdocs/basic\">\n\
                     \x20   AuthType Basic\n\
                     \x20   AuthName \"{realm}\"\n\
                     \x20   AuthBasicProvider file\n\
                     \x20   AuthUserFile \"{dir}/htpasswd\"\n\
                     \x20   Require valid-user\n\
                     </Directory>\n",
                    dir = dir.display()
                );
                let config_path = dir.join("httpd.conf");
                write_file(&config_path, &config)?;
                let mut command = Command::new(&apache);
                command
                    .args(["-D", "FOREGROUND", "-f"])
                    .arg(&config_path)
                    .env_remove("APACHE_CONFDIR")
                    .env_remove("APACHE_ARGUMENTS");
                Ok(command)
            },
            |_| Cleanup {
                terminate_first: true,
                shm_prefix: None,
            },
            &["error.log"],
        )?;
        Ok(Apache { process })
    }

    /// The port Apache listens on (on `127.0.0.1`).
    pub fn port(&self) -> u16 {
        self.process.port
    }

    /// `127.0.0.1:PORT`.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.port()))
    }

    /// `http://127.0.0.1:PORT` followed by `path` (a leading `/` is added if missing).
    pub fn url(&self, path: &str) -> String {
        let separator = if path.starts_with('/') { "" } else { "/" };
        format!("{}{separator}{path}", loopback_url("http", self.port()))
    }

    /// The access log so far (common log format; written when a request ends).
    pub fn log(&self) -> String {
        fs::read_to_string(self.process.dir.path().join("access.log")).unwrap_or_default()
    }

    /// Apache's error log.
    pub fn error_log(&self) -> String {
        fs::read_to_string(self.process.dir.path().join("error.log")).unwrap_or_default()
    }
}

/// Lowercase hex MD5, as in htdigest files.
fn md5_hex(data: &[u8]) -> String {
    crate::auth::md5(data)
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_binaries_say_how_to_install_them() {
        assert_eq!(
            find_binary("netaccess-no-such-peer", "some-package").unwrap_err(),
            "netaccess-no-such-peer is not installed: run `apt-get install some-package` \
             (scripts/test does this)"
        );
    }

    #[test]
    fn htdigest_hash_matches_htdigest() {
        // `htdigest` writes MD5("user:realm:password").
        assert_eq!(
            md5_hex(b"Mufasa:testrealm@host.com:Circle Of Life"),
            "939e7578ed9e3c518a452acee763bce9"
        );
    }

    #[test]
    fn squid_leaves_no_shared_memory() {
        let squid = Squid::start(SquidOptions::default()).expect("squid");
        let prefix = format!("{}-", squid_service_name(squid.port()));
        let segments = || {
            fs::read_dir("/dev/shm")
                .map(|entries| {
                    entries
                        .flatten()
                        .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
                        .count()
                })
                .unwrap_or(0)
        };
        assert!(segments() > 0, "squid 5 creates shared memory even with -N");
        drop(squid);
        assert_eq!(segments(), 0);
    }
}
