//! Protocol backends: HTTP/1.1 and HTTP/2 over hyper's low-level connections ([`http`]).
//! (`data:` and `file:` URLs are planned; see `docs/qt-mapping.md`.)

pub(crate) mod http;
