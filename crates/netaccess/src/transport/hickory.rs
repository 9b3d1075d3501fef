//! [`HickoryResolver`] (cargo feature `hickory`): a [`Resolve`] that asks DNS servers itself
//! with hickory-dns, instead of the system's `getaddrinfo` on a blocking thread. Asynchronous
//! all the way, with its own cache honouring each record's TTL (beside the manager's).

use std::io;
use std::net::{IpAddr, SocketAddr};

use hickory_resolver::config::{NameServerConfig, NameServerConfigGroup, ResolverConfig};
use hickory_resolver::name_server::TokioConnectionProvider;
use hickory_resolver::proto::xfer::Protocol;
use hickory_resolver::TokioResolver;

use super::dns::Resolve;
use crate::error::{Error, NetworkError};
use crate::interceptor::BoxFuture;

/// A DNS client resolver (hickory-dns), for
/// [`ManagerBuilder::resolver`](crate::ManagerBuilder::resolver).
///
/// ```no_run
/// # fn demo() -> Result<(), netaccess::Error> {
/// use std::sync::Arc;
/// let resolver = netaccess::HickoryResolver::from_system_conf()?;
/// let manager = netaccess::NetworkAccessManager::builder()
///     .resolver(Arc::new(resolver))
///     .build()?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct HickoryResolver {
    inner: TokioResolver,
}

impl std::fmt::Debug for HickoryResolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HickoryResolver")
            .field("name_servers", &self.inner.config().name_servers().len())
            .finish()
    }
}

impl HickoryResolver {
    /// The name servers and options of the system (`/etc/resolv.conf`).
    ///
    /// Fails with `HostNotFoundError` when the system configuration cannot be read.
    pub fn from_system_conf() -> Result<HickoryResolver, Error> {
        let builder = TokioResolver::builder_tokio().map_err(|e| {
            Error::new(
                NetworkError::HostNotFoundError,
                format!("The system's DNS configuration could not be read: {e}"),
            )
        })?;
        Ok(HickoryResolver {
            inner: builder.build(),
        })
    }

    /// These name servers, over UDP (and TCP for long answers), in order.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let resolver = netaccess::HickoryResolver::with_name_servers(&["127.0.0.1:5353".parse().unwrap()]);
    /// # drop(resolver);
    /// # }
    /// ```
    pub fn with_name_servers(servers: &[SocketAddr]) -> HickoryResolver {
        let configs: Vec<NameServerConfig> = servers
            .iter()
            .flat_map(|&addr| {
                [Protocol::Udp, Protocol::Tcp].map(|p| NameServerConfig::new(addr, p))
            })
            .collect();
        let group = NameServerConfigGroup::from(configs);
        let config = ResolverConfig::from_parts(None, Vec::new(), group);
        let builder =
            TokioResolver::builder_with_config(config, TokioConnectionProvider::default());
        HickoryResolver {
            inner: builder.build(),
        }
    }
}

impl Resolve for HickoryResolver {
    fn resolve<'a>(&'a self, host: &'a str) -> BoxFuture<'a, io::Result<Vec<IpAddr>>> {
        Box::pin(async move {
            // A final dot: the name is absolute, no search domain is tried.
            let name = if host.ends_with('.') {
                host.to_owned()
            } else {
                format!("{host}.")
            };
            let answer = self.inner.lookup_ip(name).await.map_err(io::Error::other)?;
            Ok(answer.iter().collect())
        })
    }
}
