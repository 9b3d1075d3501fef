//! From flags to a configured manager: proxies, the disk cache, the cookie jar and HSTS files,
//! timeouts, the request body; and how URLs and credentials' origins are shown and compared.

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

/// The disk cache: `--cache-dir`, else the user's cache directory; none with `--no-cache`
/// (or when no cache directory is known, said on stderr).
pub(super) fn disk_cache(
    args: &GetArgs,
) -> Result<Option<std::sync::Arc<dyn netaccess::Cache>>, String> {
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

/// The cookie jar and HSTS store loaded from their files, saved back at the end.
#[derive(Default)]
pub(super) struct Stores {
    cookies: Option<(PathBuf, Arc<DefaultCookieJar>)>,
    hsts: Option<(PathBuf, Arc<HstsStore>)>,
}

impl Stores {
    pub(super) fn load(args: &GetArgs) -> Result<Stores, String> {
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
    pub(super) fn save(&self) -> bool {
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
        builder = builder.retry_policy(netaccess::RetryPolicy::new(args.retry));
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
    // The only setting here that can fail is the CA file's content.
    builder.build().map_err(|e| match &args.cacert {
        Some(path) => format!("{}: {}", path.display(), e.message()),
        None => e.message().to_owned(),
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
