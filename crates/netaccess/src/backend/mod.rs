//! Protocol backends: HTTP/1.1 and HTTP/2 over hyper's low-level connections ([`http`]),
//! `data:` URLs ([`data`]) and local files ([`file`]).

pub(crate) mod data;
pub(crate) mod file;
pub(crate) mod h2settings;
pub(crate) mod http;
