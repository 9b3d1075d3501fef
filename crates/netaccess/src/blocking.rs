//! A blocking facade for programs without an async runtime: the same manager and standard
//! functions, returning a [`Reply`] whose body is read with blocking calls (`bytes`, `text`,
//! `wait`, `std::io::Read`). Requests run on a runtime this manager owns.
//!
//! ```no_run
//! let manager = netaccess::blocking::NetworkAccessManager::new();
//! let reply = manager.get(netaccess::Request::new("http://127.0.0.1:8080/"));
//! let body = reply.text().unwrap();
//! println!("{:?} {}", reply.status(), body.len());
//! ```
//!
//! Do not call the blocking methods from inside an async task: they block the thread.

use std::io;
use std::ops::Deref;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures_util::StreamExt;
use tokio::runtime::Runtime;

use crate::error::Error;
use crate::reply::BodyStream;
use crate::request::Request;
use crate::upload::Body;
use crate::ManagerBuilder;

/// The owned runtime; shut down without blocking, wherever its last handle goes.
struct OwnedRuntime(Option<Runtime>);

impl Drop for OwnedRuntime {
    fn drop(&mut self) {
        if let Some(rt) = self.0.take() {
            rt.shutdown_background();
        }
    }
}

impl OwnedRuntime {
    #[allow(clippy::expect_used)] // taken only in Drop
    fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        self.0
            .as_ref()
            .expect("runtime present until dropped")
            .block_on(f)
    }
}

/// The blocking [`NetworkAccessManager`](crate::NetworkAccessManager).
#[derive(Clone)]
pub struct NetworkAccessManager {
    inner: crate::NetworkAccessManager,
    runtime: Arc<OwnedRuntime>,
}

impl std::fmt::Debug for NetworkAccessManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("blocking::NetworkAccessManager")
            .field("inner", &self.inner)
            .finish()
    }
}

impl Default for NetworkAccessManager {
    fn default() -> Self {
        Self::new()
    }
}

impl NetworkAccessManager {
    /// A manager with the default configuration, on a runtime of its own.
    pub fn new() -> Self {
        let runtime = Self::runtime();
        let inner = crate::NetworkAccessManager::builder()
            .runtime(runtime.handle().clone())
            .build_checked();
        Self::on(inner, runtime)
    }

    /// A manager configured by `builder` (its `runtime` setting is replaced by this manager's);
    /// fails as [`ManagerBuilder::build`] does.
    pub fn with_builder(builder: ManagerBuilder) -> Result<Self, crate::Error> {
        let runtime = Self::runtime();
        let inner = builder.runtime(runtime.handle().clone()).build()?;
        Ok(Self::on(inner, runtime))
    }

    /// The runtime a blocking manager owns.
    #[allow(clippy::expect_used)] // without threads there is nothing to run requests on
    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("netaccess-blocking")
            .enable_all()
            .build()
            .expect("netaccess could not start its runtime")
    }

    fn on(inner: crate::NetworkAccessManager, runtime: tokio::runtime::Runtime) -> Self {
        NetworkAccessManager {
            inner,
            runtime: Arc::new(OwnedRuntime(Some(runtime))),
        }
    }

    /// The async manager underneath (its signals, settings and functions).
    pub fn as_async(&self) -> &crate::NetworkAccessManager {
        &self.inner
    }

    fn wrap(&self, reply: crate::Reply) -> Reply {
        Reply {
            inner: reply,
            runtime: self.runtime.clone(),
            reader: Mutex::new(None),
        }
    }

    /// GET.
    pub fn get(&self, request: Request) -> Reply {
        self.wrap(self.inner.get(request))
    }

    /// HEAD.
    pub fn head(&self, request: Request) -> Reply {
        self.wrap(self.inner.head(request))
    }

    /// POST.
    pub fn post(&self, request: Request, body: impl Into<Body>) -> Reply {
        self.wrap(self.inner.post(request, body))
    }

    /// PUT.
    pub fn put(&self, request: Request, body: impl Into<Body>) -> Reply {
        self.wrap(self.inner.put(request, body))
    }

    /// DELETE.
    pub fn delete(&self, request: Request) -> Reply {
        self.wrap(self.inner.delete(request))
    }

    /// Any verb.
    pub fn send_custom_request(
        &self,
        request: Request,
        verb: &str,
        body: impl Into<Body>,
    ) -> Reply {
        self.wrap(self.inner.send_custom_request(request, verb, body))
    }

    /// GET, with `setup` run before the request starts (connect signals there).
    pub fn get_with(&self, request: Request, setup: impl FnOnce(&crate::Reply)) -> Reply {
        self.wrap(self.inner.get_with(request, setup))
    }
}

/// A reply read with blocking calls. Everything of the async [`Reply`](crate::Reply) (status,
/// headers, attributes, error, signals, `abort`) is reachable through `Deref`.
pub struct Reply {
    inner: crate::Reply,
    runtime: Arc<OwnedRuntime>,
    reader: Mutex<Option<(BodyStream, Bytes)>>,
}

impl std::fmt::Debug for Reply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.inner.fmt(f)
    }
}

impl Deref for Reply {
    type Target = crate::Reply;

    fn deref(&self) -> &crate::Reply {
        &self.inner
    }
}

impl Reply {
    /// Blocks until the reply finished.
    pub fn wait(&self) {
        self.runtime.block_on(self.inner.finished().next());
    }

    /// Blocks until the end and returns the body not yet read (see
    /// [`Reply::bytes`](crate::Reply::bytes)).
    pub fn bytes(&self) -> Result<Bytes, Error> {
        self.runtime.block_on(self.inner.bytes())
    }

    /// [`bytes`](Self::bytes) as UTF-8 text (invalid sequences replaced).
    pub fn text(&self) -> Result<String, Error> {
        self.runtime.block_on(self.inner.text())
    }

    /// The async reply.
    pub fn as_async(&self) -> &crate::Reply {
        &self.inner
    }
}

impl io::Read for Reply {
    /// Reads the body as it arrives (bounded buffer, back-pressure), blocking for more.
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let reader = self.reader.get_mut().unwrap_or_else(|e| e.into_inner());
        let (stream, pending) =
            reader.get_or_insert_with(|| (self.inner.body_stream(), Bytes::new()));
        while pending.is_empty() {
            match self.runtime.block_on(stream.next()) {
                None => return Ok(0),
                Some(Ok(chunk)) => *pending = chunk,
                Some(Err(e)) => return Err(e.into()),
            }
        }
        let n = pending.len().min(buf.len());
        buf[..n].copy_from_slice(&pending.split_to(n));
        Ok(n)
    }
}
