//! The library's fixed limits and defaults in one place: connections, timeouts and the
//! `User-Agent` (the builder's defaults), retries and interceptor re-runs, content decoding (the
//! decompression-bomb checks) and the read buffer of a streamed body. Each is defined next to the code that applies it and re-exported here;
//! the builder and [`Request`](crate::Request) methods named in each item's doc change the
//! defaults.
//!
//! ```
//! use std::time::Duration;
//! use netaccess::limits;
//!
//! assert_eq!(limits::DEFAULT_MAX_CONNECTIONS_PER_HOST, 6); // Qt's
//! assert_eq!(limits::DEFAULT_IDLE_TIMEOUT, Duration::from_secs(120));
//! assert_eq!(limits::MAX_CODINGS, 5);
//! let manager = netaccess::NetworkAccessManager::builder()
//!     .max_connections_per_host(2 * limits::DEFAULT_MAX_CONNECTIONS_PER_HOST)
//!     .build();
//! # drop(manager);
//! ```

pub use crate::context::{
    DEFAULT_CONNECT_TIMEOUT, DEFAULT_IDLE_TIMEOUT, DEFAULT_MAX_CONNECTIONS_PER_HOST,
    DEFAULT_USER_AGENT,
};
pub use crate::decode::{
    DEFAULT_DECOMPRESSED_SAFETY_CHECK_THRESHOLD, DEFAULT_MAX_DECODED_SIZE, MAX_CODINGS,
};
pub use crate::interceptor::MAX_INTERCEPTOR_RETRIES;
pub use crate::pipeline::resume::MAX_RESUMES;
pub use crate::reply::DEFAULT_STREAM_READ_BUFFER;
pub use crate::retry::{DEFAULT_RETRY_STATUSES, RETRY_BUDGET_RESERVE};
pub use crate::transport::dns::{DEFAULT_DNS_CACHE_TTL, DNS_CACHE_MAX_NAMES};
