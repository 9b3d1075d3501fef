//! From flags to a configured manager: proxies, the disk cache, the cookie jar, cookies.txt and
//! HSTS files, timeouts, the request body, who answers a 401 (`-u`, `.netrc`); and how URLs
//! and credentials' origins are shown and compared.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use netaccess::{
    Body, DefaultCookieJar, HstsStore, MultiPart, MultiPartKind, NetworkAccessManager, Part,
    RedirectPolicy,
};

use super::args::{credentials, CacheLoadArg, GetArgs, RedirectArg};

/// The proxies: `--proxy URL`, none with `--no-proxy`, else the environment (http_proxy,
/// https_proxy, all_proxy, no_proxy); `--proxy-user` gives the credentials of any of them.
pub(super) fn proxy_factory(
    args: &GetArgs,
) -> Result<std::sync::Arc<dyn netaccess::ProxyFactory>, String> {
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

/// The disk cache, off unless asked for (as with curl and wget2): `--cache-dir DIR`, or
/// `--cache` for the user's cache directory (said on stderr when none is known).
pub(super) fn disk_cache(
    args: &GetArgs,
) -> Result<Option<std::sync::Arc<dyn netaccess::Cache>>, String> {
    if args.no_cache || !(args.cache || args.cache_dir.is_some()) {
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

pub(super) fn default_cache_dir() -> Option<PathBuf> {
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

pub(super) fn cache_load(arg: Option<CacheLoadArg>) -> netaccess::CacheLoadControl {
    use netaccess::CacheLoadControl as C;
    match arg.unwrap_or(CacheLoadArg::PreferNetwork) {
        CacheLoadArg::AlwaysNetwork => C::AlwaysNetwork,
        CacheLoadArg::PreferNetwork => C::PreferNetwork,
        CacheLoadArg::PreferCache => C::PreferCache,
        CacheLoadArg::AlwaysCache => C::AlwaysCache,
    }
}

/// The request body and whether one was given.
pub(super) enum Payload {
    None,
    Body(Body),
    Form(MultiPart),
}

pub(super) fn payload(args: &GetArgs) -> Result<Payload, String> {
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

/// The cookie jar and HSTS store loaded from their files, saved back at the end; and the
/// Netscape cookies.txt files imported into the jar and exported from it.
#[derive(Default)]
pub(super) struct Stores {
    /// The `--cookie-jar` file (if any) and the jar, which exists whenever a cookie flag was
    /// given.
    cookies: Option<(Option<PathBuf>, Arc<DefaultCookieJar>)>,
    hsts: Option<(PathBuf, Arc<HstsStore>)>,
    export: Option<PathBuf>,
}

impl Stores {
    pub(super) fn load(args: &GetArgs) -> Result<Stores, String> {
        let mut stores = Stores::default();
        if let Some(path) = &args.cookie_jar {
            let jar = DefaultCookieJar::load_or_new(path)
                .map_err(|e| format!("cannot load the cookie jar {}: {e}", path.display()))?;
            stores.cookies = Some((Some(path.clone()), Arc::new(jar)));
        }
        if args.load_cookies.is_some() || args.save_cookies.is_some() {
            let (_, jar) = stores
                .cookies
                .get_or_insert_with(|| (None, Arc::new(DefaultCookieJar::new())));
            if let Some(path) = &args.load_cookies {
                let (imported, skipped) = super::cookies_txt::load(path)?;
                if skipped > 0 {
                    eprintln!(
                        "netaccess: {}: {skipped} lines are not cookies.txt cookies and were skipped",
                        path.display()
                    );
                }
                let mut all = netaccess::CookieJar::all_cookies(&**jar);
                all.extend(imported);
                jar.set_all_cookies(all);
            }
            stores.export = args.save_cookies.clone();
        }
        if let Some(path) = &args.hsts_store {
            let store = HstsStore::load_or_new(path)
                .map_err(|e| format!("cannot load the HSTS store {}: {e}", path.display()))?;
            stores.hsts = Some((path.clone(), Arc::new(store)));
        }
        Ok(stores)
    }

    /// Saves both files; false (after a message) when one could not be written.
    pub(super) fn save(&self) -> bool {
        let mut ok = true;
        if let (Some(path), Some((_, jar))) = (&self.export, &self.cookies) {
            let cookies = netaccess::CookieJar::all_cookies(&**jar);
            if let Err(e) = super::cookies_txt::save(path, &cookies) {
                eprintln!(
                    "netaccess: cannot save the cookies to {}: {e}",
                    path.display()
                );
                ok = false;
            }
        }
        if let Some((Some(path), jar)) = &self.cookies {
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

pub(super) fn build_manager(
    args: &GetArgs,
    stores: &Stores,
) -> Result<NetworkAccessManager, String> {
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
        builder = builder.add_root_certificate_pem(&pem);
    }
    if let Some(secs) = args.timeout {
        builder = builder.transfer_timeout(seconds(secs, "--timeout")?);
    }
    if let Some(secs) = args.connect_timeout {
        builder = builder.connect_timeout(seconds(secs, "--connect-timeout")?);
    }
    if args.retry > 0 {
        let mut policy = netaccess::RetryPolicy::new(args.retry);
        if let Some(secs) = args.retry_delay {
            let delay = seconds(secs, "--retry-delay")?;
            policy = policy.with_fixed_delay(delay);
        }
        builder = builder.retry_policy(policy);
    }
    if args.verbose {
        builder = builder.interceptor(std::sync::Arc::new(super::verbose::Verbose));
    }
    if let Some(rate) = args.limit_rate {
        builder = builder.max_download_rate(rate);
    }
    if let Some(rate) = args.limit_rate_per_host {
        builder = builder.max_download_rate_per_host(rate);
    }
    if let Some(path) = &args.dump_header {
        let dump = super::verbose::DumpHeads::create(path)
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        builder = builder.interceptor(std::sync::Arc::new(dump));
    }
    if let Some(agent) = &args.user_agent {
        builder = builder.user_agent(Some(agent));
    }
    // The settings here that can fail: the CA file's content, the User-Agent.
    builder.build().map_err(|e| match &args.cacert {
        Some(path) if args.user_agent.is_none() => format!("{}: {}", path.display(), e.message()),
        _ => e.message().to_owned(),
    })
}

/// A duration flag: a positive, finite number of seconds that a `Duration` can hold.
pub(super) fn seconds(value: f64, flag: &str) -> Result<Duration, String> {
    if !(value.is_finite() && value > 0.0) {
        return Err(format!(
            "{flag} must be a positive number of seconds, not {value}"
        ));
    }
    Duration::try_from_secs_f64(value).map_err(|_| format!("{flag} {value} is out of range"))
}

/// A URL argument as shown in messages, progress lines and JSON: as given, unless it holds a
/// password, which is then removed.
pub(super) fn shown_url(text: &str) -> String {
    match url::Url::parse(text) {
        Ok(url) if url.password().is_some() => netaccess::display_url(&url),
        _ => text.to_owned(),
    }
}

/// Scheme, host and port: what `-u` credentials are bound to.
pub(super) fn origin_of(url: &url::Url) -> (String, Option<String>, Option<u16>) {
    (
        url.scheme().to_owned(),
        url.host_str().map(str::to_ascii_lowercase),
        url.port_or_known_default(),
    )
}

/// Answers 401s with `-u` and `.netrc` credentials: once per reply, and only from the origin
/// (scheme, host and port) of the URL the user gave, never from a redirect target
/// (curl's rule without --location-trusted; CVE-2018-1000007). Asked again means refused.
pub(super) fn connect_credentials(
    manager: &NetworkAccessManager,
    user: Option<(String, String)>,
    netrc: Option<super::netrc::Netrc>,
) {
    if user.is_none() && netrc.is_none() {
        return;
    }
    let answered = std::sync::Mutex::new(std::collections::HashSet::new());
    manager
        .authentication_required()
        .connect(move |(reply, request)| {
            let given = reply.request().url().map(origin_of);
            let url = reply.url();
            let same_origin = given.is_some() && given == Some(origin_of(&url));
            let credentials = user.clone().or_else(|| {
                let host = url.host_str()?;
                let (login, password) = netrc.as_ref()?.lookup(host)?;
                Some((login.to_owned(), password.to_owned()))
            });
            match credentials {
                Some((user, password))
                    if same_origin
                        && answered
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .insert(reply.clone()) =>
                {
                    request.answer(&user, &password);
                }
                _ => request.refuse(),
            }
        });
}
