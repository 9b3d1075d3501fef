//! The REST layer, thin over the manager (Qt 6.7's `QNetworkRequestFactory`,
//! `QRestAccessManager` and `QRestReply`): [`RequestFactory`] makes requests under one base
//! URL with shared headers, credentials, query and options; [`Body::json`] and
//! [`Reply::json`] carry JSON; [`Reply::is_success`] tells a usable answer.
//!
//! ```no_run
//! # async fn demo() -> Result<(), netaccess::Error> {
//! use netaccess::{Body, NetworkAccessManager, RequestFactory};
//! use url::Url;
//!
//! #[derive(serde::Deserialize)]
//! struct Item { id: u32, name: String }
//!
//! let manager = NetworkAccessManager::new();
//! let api = RequestFactory::new(Url::parse("https://api.example.org/v1/").unwrap())
//!     .with_bearer_token("s3cr3t");
//! let reply = manager.get(api.create_request("items/7"));
//! let item: Item = reply.json().await?;
//! let created = manager.post(
//!     api.create_request("items"),
//!     Body::json(&serde_json::json!({ "name": "new" }))?,
//! );
//! assert!(created.bytes().await.is_ok() && created.is_success());
//! # let _ = (item.id, item.name);
//! # Ok(()) }
//! ```

use std::fmt;
use std::time::Duration;

use base64::Engine as _;
use url::Url;

#[cfg(feature = "json")]
use crate::error::{Error, NetworkError};
use crate::reply::Reply;
use crate::request::{Priority, Request};
#[cfg(feature = "json")]
use crate::upload::Body;

/// Makes requests under one base URL with the same headers, credentials, query and options
/// (Qt's `QNetworkRequestFactory`).
///
/// The path given to [`create_request`](Self::create_request) is appended to the base URL's
/// path, whether or not the base ends with `/`: base `https://h/api/v1/` (or `.../v1`) and
/// path `items/7` (or `/items/7`) give `https://h/api/v1/items/7`. The base URL's own query
/// and fragment are not used: give query parameters with [`with_query`](Self::with_query) or
/// in the path. Credentials go only where
/// the base URL points: a redirect to another origin drops them, as for every request.
///
/// ```
/// use netaccess::RequestFactory;
/// let api = RequestFactory::new(url::Url::parse("http://127.0.0.1:8080/api/v1/").unwrap())
///     .with_header("Accept", "application/json")
///     .with_query([("lang", "en")]);
/// let request = api.create_request("items/7?full=1");
/// assert_eq!(
///     request.url().unwrap().as_str(),
///     "http://127.0.0.1:8080/api/v1/items/7?full=1&lang=en"
/// );
/// ```
#[doc(alias = "QNetworkRequestFactory")]
#[derive(Clone)]
#[must_use = "a factory does nothing until it creates a request"]
pub struct RequestFactory {
    base: Url,
    headers: Vec<(String, String)>,
    query: Vec<(String, String)>,
    transfer_timeout: Option<Duration>,
    priority: Option<Priority>,
}

impl fmt::Debug for RequestFactory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Header values may be credentials: only their names are shown.
        let names: Vec<&str> = self.headers.iter().map(|(n, _)| n.as_str()).collect();
        f.debug_struct("RequestFactory")
            .field("base", &crate::error::display_url(&self.base))
            .field("headers", &names)
            .field("query", &self.query)
            .field("transfer_timeout", &self.transfer_timeout)
            .field("priority", &self.priority)
            .finish()
    }
}

impl RequestFactory {
    /// A factory for requests under `base`.
    pub fn new(base: Url) -> Self {
        RequestFactory {
            base,
            headers: Vec::new(),
            query: Vec::new(),
            transfer_timeout: None,
            priority: None,
        }
    }

    /// The base URL.
    pub fn base_url(&self) -> &Url {
        &self.base
    }

    /// A header every request gets (replacing an earlier one of that name).
    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// `Authorization: Bearer <token>` on every request (Qt's `setBearerToken`).
    #[doc(alias = "setBearerToken")]
    pub fn with_bearer_token(self, token: &str) -> Self {
        self.with_header("Authorization", &format!("Bearer {token}"))
    }

    /// `Authorization: Basic ...` on every request (Qt's `setUserName` / `setPassword`).
    pub fn with_basic_auth(self, user: &str, password: &str) -> Self {
        let pair = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        self.with_header("Authorization", &format!("Basic {pair}"))
    }

    /// Query parameters added to every request's URL, after the path's own (Qt's
    /// `setQueryParameters`); names and values are percent-encoded.
    #[doc(alias = "setQueryParameters")]
    pub fn with_query<K: AsRef<str>, V: AsRef<str>>(
        mut self,
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        let pairs = pairs.into_iter();
        let pairs = pairs.map(|(k, v)| (k.as_ref().to_owned(), v.as_ref().to_owned()));
        self.query.extend(pairs);
        self
    }

    /// The transfer timeout of every request (Qt's `setTransferTimeout`).
    pub fn with_transfer_timeout(mut self, timeout: Duration) -> Self {
        self.transfer_timeout = Some(timeout);
        self
    }

    /// The priority of every request (Qt's `setPriority`).
    pub fn with_priority(mut self, priority: Priority) -> Self {
        self.priority = Some(priority);
        self
    }

    /// A request for `path` (which may carry its own `?query`) under the base URL, with the
    /// factory's headers and options (Qt's `createRequest`).
    #[doc(alias = "createRequest")]
    pub fn create_request(&self, path: &str) -> Request {
        let (path, own_query) = match path.split_once('?') {
            Some((path, query)) => (path, Some(query)),
            None => (path, None),
        };
        let mut url = self.base.clone();
        let joined = format!(
            "{}/{}",
            self.base.path().trim_end_matches('/'),
            path.trim_start_matches('/')
        );
        url.set_path(&joined);
        url.set_query(own_query);
        if !self.query.is_empty() {
            url.query_pairs_mut().extend_pairs(&self.query);
        }
        let mut request = Request::new(url.as_str());
        for (name, value) in &self.headers {
            request = request.with_header(name, value);
        }
        if let Some(timeout) = self.transfer_timeout {
            request = request.with_transfer_timeout(timeout);
        }
        if let Some(priority) = self.priority {
            request = request.with_priority(priority);
        }
        request
    }
}

#[cfg(feature = "json")]
impl Body {
    /// `value` as a JSON body, sent with `Content-Type: application/json` unless the request
    /// sets a `Content-Type` of its own (Qt's `QRestAccessManager::post` with a JSON document).
    ///
    /// ```
    /// let body = netaccess::Body::json(&serde_json::json!({ "name": "new" })).unwrap();
    /// assert_eq!(body.len(), Some(14));
    /// ```
    pub fn json<T: serde::Serialize + ?Sized>(value: &T) -> Result<Body, Error> {
        let bytes = serde_json::to_vec(value).map_err(|e| {
            Error::new(
                NetworkError::ProtocolInvalidOperationError,
                format!("The request body cannot be written as JSON: {e}"),
            )
        })?;
        Ok(Body::from(bytes).marked_json())
    }
}

impl Reply {
    /// Waits for the end and parses the body as JSON (Qt's `QRestReply::readJson`). A body
    /// that is not valid JSON for `T` is an `UnknownContentError`; when the reply also has an
    /// HTTP error status (a 404 page), that error is returned instead, as it says more.
    ///
    /// ```no_run
    /// # async fn demo(reply: netaccess::Reply) -> Result<(), netaccess::Error> {
    /// let value: serde_json::Value = reply.json().await?;
    /// # Ok(()) }
    /// ```
    #[doc(alias = "readJson")]
    #[cfg(feature = "json")]
    pub async fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, Error> {
        let bytes = self.bytes().await?;
        serde_json::from_slice(&bytes).map_err(|e| match self.error() {
            Some(http_error) => http_error,
            None => Error::new(
                NetworkError::UnknownContentError,
                format!(
                    "The body of {} is not the JSON expected: {e}",
                    crate::error::display_url(&self.url())
                ),
            ),
        })
    }

    /// The request succeeded (Qt's `QRestReply::isSuccess`): the reply finished without a
    /// network error and with a 2xx status (or with no status, for `data:` and `file:`).
    #[doc(alias = "isSuccess")]
    pub fn is_success(&self) -> bool {
        self.is_finished() && self.error().is_none() && self.status().is_none_or(|s| s.is_success())
    }

    /// The response has a 2xx status (Qt's `QRestReply::isHttpStatusSuccess`), whether or not
    /// its body arrived whole.
    #[doc(alias = "isHttpStatusSuccess")]
    pub fn is_http_status_success(&self) -> bool {
        self.status().is_some_and(|s| s.is_success())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn factory(base: &str) -> RequestFactory {
        RequestFactory::new(Url::parse(base).unwrap())
    }

    fn url_of(request: &Request) -> String {
        request.url().unwrap().to_string()
    }

    #[test]
    fn paths_join_the_base_with_exactly_one_slash() {
        for base in ["http://h/api/v1/", "http://h/api/v1"] {
            for path in ["items/7", "/items/7"] {
                let request = factory(base).create_request(path);
                assert_eq!(
                    url_of(&request),
                    "http://h/api/v1/items/7",
                    "{base} + {path}"
                );
            }
        }
        assert_eq!(
            url_of(&factory("http://h").create_request("x")),
            "http://h/x"
        );
        assert_eq!(
            url_of(&factory("http://h/").create_request("")),
            "http://h/"
        );
    }

    #[test]
    fn the_query_of_the_path_comes_first_then_the_factorys_encoded() {
        let api = factory("http://h/a/?ignored=1").with_query([("q", "a b&c"), ("n", "1")]);
        let request = api.create_request("s?x=1");
        assert_eq!(url_of(&request), "http://h/a/s?x=1&q=a+b%26c&n=1");
    }

    #[test]
    fn credentials_and_options_reach_each_request_and_stay_out_of_debug() {
        let api = factory("http://h/")
            .with_basic_auth("u", "p")
            .with_bearer_token("tok")
            .with_priority(Priority::High)
            .with_transfer_timeout(Duration::from_secs(3));
        let request = api.create_request("x");
        assert_eq!(request.headers()["authorization"], "Bearer tok");
        assert_eq!(request.priority(), Priority::High);
        assert_eq!(request.transfer_timeout(), Some(Duration::from_secs(3)));
        assert!(!format!("{api:?}").contains("tok"));
    }

    #[test]
    #[cfg(feature = "json")]
    fn json_bodies_serialize() {
        let body = Body::json(&serde_json::json!({"a": [1, 2]})).unwrap();
        assert_eq!(body.in_memory().unwrap(), r#"{"a":[1,2]}"#);
        let mut not_json = std::collections::HashMap::new();
        not_json.insert(vec![1u8], 1); // a map key JSON cannot hold
        let e = Body::json(&not_json).unwrap_err();
        assert_eq!(e.kind(), NetworkError::ProtocolInvalidOperationError);
    }
}
