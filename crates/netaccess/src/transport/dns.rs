//! Name resolution for a manager: the application's fixed addresses first
//! (`ManagerBuilder::resolve`, like curl's `--resolve`), then a per-manager cache of answers,
//! bounded by a time to live and a count, then the resolver: the system's (`getaddrinfo`)
//! or the application's own ([`Resolve`]).

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::error::{Error, NetworkError};
use crate::interceptor::BoxFuture;

/// A resolver of host names, for [`ManagerBuilder::resolver`](crate::ManagerBuilder::resolver):
/// a custom DNS client, a service registry, a test fixture.
///
/// ```
/// use std::net::IpAddr;
/// use netaccess::{BoxFuture, Resolve};
///
/// /// Every name is the loopback address.
/// struct Loopback;
///
/// impl Resolve for Loopback {
///     fn resolve<'a>(&'a self, _host: &'a str) -> BoxFuture<'a, std::io::Result<Vec<IpAddr>>> {
///         Box::pin(async { Ok(vec![IpAddr::from([127, 0, 0, 1])]) })
///     }
/// }
/// ```
pub trait Resolve: Send + Sync + 'static {
    /// The addresses of `host` (a name, never an IP literal), best first. An empty list or an
    /// error makes the host unknown (`HostNotFoundError`).
    fn resolve<'a>(&'a self, host: &'a str) -> BoxFuture<'a, io::Result<Vec<IpAddr>>>;
}

/// The system's resolver (`getaddrinfo`, on a blocking thread).
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemResolver;

impl Resolve for SystemResolver {
    fn resolve<'a>(&'a self, host: &'a str) -> BoxFuture<'a, io::Result<Vec<IpAddr>>> {
        Box::pin(async move {
            let addrs = tokio::net::lookup_host((host, 0)).await?;
            Ok(addrs.map(|a| a.ip()).collect())
        })
    }
}

/// How long an answer is reused when the manager sets nothing else.
pub const DEFAULT_DNS_CACHE_TTL: Duration = Duration::from_secs(60);
/// The most host names a manager's DNS cache holds.
pub const DNS_CACHE_MAX_NAMES: usize = 1024;

/// Cached answers: the addresses of each name and when they expire.
type Answers = HashMap<String, (Arc<[IpAddr]>, Instant)>;

/// The resolution settings and cache of one manager.
#[derive(Clone)]
pub(crate) struct Dns {
    overrides: HashMap<String, Vec<IpAddr>>,
    resolver: Arc<dyn Resolve>,
    ttl: Duration,
    cache: Arc<Mutex<Answers>>,
}

impl Default for Dns {
    fn default() -> Self {
        Dns {
            overrides: HashMap::new(),
            resolver: Arc::new(SystemResolver),
            ttl: DEFAULT_DNS_CACHE_TTL,
            cache: Arc::default(),
        }
    }
}

impl Dns {
    /// Fixes the addresses of `host` (lowercase).
    pub(crate) fn insert(&mut self, host: String, addrs: Vec<IpAddr>) {
        self.overrides.insert(host, addrs);
    }

    /// The fixed addresses of `host`, if the application gave some (SOCKS5 resolves
    /// through them).
    #[cfg_attr(not(feature = "socks"), allow(dead_code))]
    pub(crate) fn get(&self, host: &str) -> Option<&Vec<IpAddr>> {
        self.overrides.get(host)
    }

    pub(crate) fn set_resolver(&mut self, resolver: Arc<dyn Resolve>) {
        self.resolver = resolver;
    }

    /// How long answers are reused (`Duration::ZERO`: never).
    pub(crate) fn set_ttl(&mut self, ttl: Duration) {
        self.ttl = ttl;
    }

    /// The socket addresses of `host:port`: an IP literal as it is, fixed addresses, a
    /// cached answer, or the resolver's (then cached); and whether the resolver was spared
    /// (a literal, a fixed or a cached answer).
    pub(crate) async fn lookup(
        &self,
        host: &str,
        port: u16,
    ) -> Result<(Vec<SocketAddr>, bool), Error> {
        let with_port = |ips: &[IpAddr]| ips.iter().map(|ip| SocketAddr::new(*ip, port)).collect();
        let not_found = || {
            Error::new(
                NetworkError::HostNotFoundError,
                format!("Host {host} not found"),
            )
        };
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        if let Ok(ip) = bare.parse::<IpAddr>() {
            return Ok((vec![SocketAddr::new(ip, port)], true));
        }
        if let Some(ips) = self.overrides.get(host) {
            return if ips.is_empty() {
                Err(not_found())
            } else {
                Ok((with_port(ips), true))
            };
        }
        if let Some(ips) = self.cached(bare, Instant::now()) {
            return Ok((with_port(&ips), true));
        }
        let ips = match self.resolver.resolve(bare).await {
            Ok(ips) if !ips.is_empty() => ips,
            Ok(_) => return Err(not_found()),
            Err(e) => return Err(not_found().with_source(e)),
        };
        self.remember(bare, &ips, Instant::now());
        Ok((with_port(&ips), false))
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, Answers> {
        self.cache.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn cached(&self, host: &str, now: Instant) -> Option<Arc<[IpAddr]>> {
        let cache = self.cache();
        let (ips, expires) = cache.get(host)?;
        (now < *expires).then(|| ips.clone())
    }

    fn remember(&self, host: &str, ips: &[IpAddr], now: Instant) {
        if self.ttl.is_zero() {
            return;
        }
        let mut cache = self.cache();
        if cache.len() >= DNS_CACHE_MAX_NAMES && !cache.contains_key(host) {
            cache.retain(|_, (_, expires)| *expires > now);
            if cache.len() >= DNS_CACHE_MAX_NAMES {
                // Still full of live answers: the one that expires first goes.
                let first = cache
                    .iter()
                    .min_by_key(|(_, (_, e))| *e)
                    .map(|(k, _)| k.clone());
                if let Some(first) = first {
                    cache.remove(&first);
                }
            }
        }
        cache.insert(host.to_owned(), (ips.into(), now + self.ttl));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_expire_after_the_ttl_and_the_cache_stays_bounded() {
        let mut dns = Dns::default();
        dns.set_ttl(Duration::from_secs(10));
        let now = Instant::now();
        let ip = [IpAddr::from([127, 0, 0, 1])];
        dns.remember("a.test", &ip, now);
        assert!(dns.cached("a.test", now + Duration::from_secs(9)).is_some());
        assert!(dns
            .cached("a.test", now + Duration::from_secs(10))
            .is_none());
        for i in 0..DNS_CACHE_MAX_NAMES + 10 {
            dns.remember(
                &format!("h{i}.test"),
                &ip,
                now + Duration::from_millis(i as u64),
            );
        }
        assert_eq!(dns.cache().len(), DNS_CACHE_MAX_NAMES);
        let mut off = Dns::default();
        off.set_ttl(Duration::ZERO);
        off.remember("a.test", &ip, now);
        assert!(off.cached("a.test", now).is_none());
    }
}
