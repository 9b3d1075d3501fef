//! `file:` URLs: local files read with GET and HEAD, written with PUT.
//!
//! Follows Qt's `QNetworkReplyFileImpl` (GET, HEAD) and `QNetworkAccessFileBackend` (PUT): no
//! HTTP status, `Content-Length` and `Last-Modified` headers, and the same error codes and
//! messages ("Error opening %1: %2", "Cannot open %1: Path is a directory", "Read error
//! reading from %1: %2", "Write error writing to %1: %2", "Request for opening non-local file
//! %1"). Unlike Qt, a PUT replaces the file atomically: the body goes to a temporary file in
//! the same directory, which is synced and then renamed over the target.

use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{ready, Context, Poll};

use bytes::{Bytes, BytesMut};
use http::header::{CONTENT_LENGTH, LAST_MODIFIED};
use http::{HeaderMap, HeaderValue};
use tokio::io::AsyncWriteExt;
use url::Url;

use crate::error::{Error, NetworkError};
use crate::reply::Meta;
use crate::request::Operation;

/// Size of the chunks a [`FileBody`] yields.
const CHUNK: usize = 64 * 1024;

/// The body of a `file:` GET: the file's bytes in chunks of up to 64 KiB, until end of file.
pub(crate) struct FileBody {
    file: Option<tokio::fs::File>,
    buf: BytesMut,
    url: String,
}

impl FileBody {
    fn new(file: tokio::fs::File, url: &Url) -> Self {
        FileBody {
            file: Some(file),
            buf: BytesMut::new(),
            url: url.to_string(),
        }
    }
}

impl std::fmt::Debug for FileBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileBody")
            .field("url", &self.url)
            .field("done", &self.file.is_none())
            .finish()
    }
}

impl futures_core::Stream for FileBody {
    type Item = Result<Bytes, Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        let Some(file) = this.file.as_mut() else {
            return Poll::Ready(None);
        };
        if this.buf.capacity() < CHUNK {
            this.buf.reserve(CHUNK);
        }
        let res = ready!(tokio_util::io::poll_read_buf(
            Pin::new(file),
            cx,
            &mut this.buf
        ));
        match res {
            Ok(0) => {
                this.file = None;
                Poll::Ready(None)
            }
            Ok(_) => Poll::Ready(Some(Ok(this.buf.split().freeze()))),
            Err(e) => {
                this.file = None;
                Poll::Ready(Some(Err(Error::new(
                    NetworkError::ProtocolFailure,
                    format!("Read error reading from {}: {e}", this.url),
                )
                .with_source(e))))
            }
        }
    }
}

impl futures_core::FusedStream for FileBody {
    fn is_terminated(&self) -> bool {
        self.file.is_none()
    }
}

/// Serves a `file:` URL.
///
/// GET and HEAD open the file at `url.to_file_path()` and return a [`Meta`] without status,
/// with `Content-Length` (regular files), `Last-Modified` (an HTTP-date) and
/// `original_content_length`, and, for GET, the body stream. PUT writes `body` to the path
/// atomically and returns a [`Meta`] without headers and no body. Errors, as in Qt:
/// a missing file is [`NetworkError::ContentNotFoundError`], one that exists but cannot be
/// opened (permissions) and a directory read with GET/HEAD [`NetworkError::ContentAccessDenied`]
/// (Qt says `ContentOperationNotPermittedError` for a directory; we group it with access
/// problems, as our issue specifies), a failed write
/// [`NetworkError::ProtocolFailure`]; POST, DELETE, custom verbs and a non-local host are
/// [`NetworkError::ProtocolInvalidOperationError`].
pub(crate) async fn fetch(
    url: &Url,
    op: &Operation,
    body: Bytes,
) -> Result<(Meta, Option<FileBody>), Error> {
    match op {
        Operation::Get | Operation::Head | Operation::Put => {}
        other => {
            return Err(Error::new(
                NetworkError::ProtocolInvalidOperationError,
                format!(
                    "Operation {} not supported for file: URLs ({url})",
                    other.method()
                ),
            ))
        }
    }
    let path = local_path(url)?;
    if *op == Operation::Put {
        put(url, &path, &body).await?;
        return Ok((Meta::default(), None));
    }
    read(url, &path, *op == Operation::Head).await
}

/// The local path of a `file:` URL; `localhost` counts as local.
fn local_path(url: &Url) -> Result<PathBuf, Error> {
    let non_local = || {
        Error::new(
            NetworkError::ProtocolInvalidOperationError,
            format!("Request for opening non-local file {url}"),
        )
    };
    if url.scheme() != "file" {
        return Err(Error::new(
            NetworkError::ProtocolInvalidOperationError,
            format!("Not a file: URL: {url}"),
        ));
    }
    // Like Qt, no UNC paths outside Windows (where `to_file_path` maps a host to one).
    #[cfg(not(windows))]
    if url
        .host_str()
        .is_some_and(|h| !h.is_empty() && h != "localhost")
    {
        return Err(non_local());
    }
    url.to_file_path().map_err(|()| non_local())
}

/// Qt's classification of a failed open: the file exists (so access was refused) or not.
async fn open_error(url: &Url, path: &Path, e: io::Error) -> Error {
    let exists =
        e.kind() != io::ErrorKind::NotFound && tokio::fs::symlink_metadata(path).await.is_ok();
    let kind = if exists {
        NetworkError::ContentAccessDenied
    } else {
        NetworkError::ContentNotFoundError
    };
    Error::new(kind, format!("Error opening {url}: {e}")).with_source(e)
}

async fn read(url: &Url, path: &Path, head: bool) -> Result<(Meta, Option<FileBody>), Error> {
    if tokio::fs::metadata(path).await.is_ok_and(|m| m.is_dir()) {
        return Err(Error::new(
            NetworkError::ContentAccessDenied,
            format!("Cannot open {url}: Path is a directory"),
        ));
    }
    let file = match tokio::fs::File::open(path).await {
        Ok(f) => f,
        Err(e) => return Err(open_error(url, path, e).await),
    };
    let md = file.metadata().await.map_err(|e| {
        Error::new(
            NetworkError::ProtocolFailure,
            format!("Read error reading from {url}: {e}"),
        )
        .with_source(e)
    })?;
    if md.is_dir() {
        // Raced with a rename of a directory into place.
        return Err(Error::new(
            NetworkError::ContentAccessDenied,
            format!("Cannot open {url}: Path is a directory"),
        ));
    }

    let mut headers = HeaderMap::new();
    let mut len = None;
    if md.is_file() {
        len = Some(md.len());
        headers.insert(CONTENT_LENGTH, HeaderValue::from(md.len()));
    }
    if let Ok(modified) = md.modified() {
        if let Ok(v) = HeaderValue::from_str(&httpdate::fmt_http_date(modified)) {
            headers.insert(LAST_MODIFIED, v);
        }
    }
    let meta = Meta {
        status: None,
        headers,
        original_content_length: len,
        ..Default::default()
    };
    let body = if head {
        None
    } else {
        Some(FileBody::new(file, url))
    };
    Ok((meta, body))
}

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

async fn put(url: &Url, path: &Path, body: &[u8]) -> Result<(), Error> {
    // Write through a symlink to its target, as opening the path for writing would.
    let target = match tokio::fs::symlink_metadata(path).await {
        Ok(m) if m.file_type().is_symlink() => tokio::fs::canonicalize(path)
            .await
            .unwrap_or_else(|_| path.to_path_buf()),
        _ => path.to_path_buf(),
    };
    let existing = tokio::fs::metadata(&target).await.ok();
    if existing.as_ref().is_some_and(|m| m.is_dir()) {
        let e = io::Error::new(io::ErrorKind::IsADirectory, "Is a directory");
        return Err(Error::new(
            NetworkError::ContentAccessDenied,
            format!("Error opening {url}: {e}"),
        )
        .with_source(e));
    }
    let (Some(dir), Some(name)) = (target.parent(), target.file_name()) else {
        return Err(Error::new(
            NetworkError::ContentAccessDenied,
            format!("Error opening {url}: not a file path"),
        ));
    };

    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(format!(
        ".netaccess-{}-{}.tmp",
        std::process::id(),
        TEMP_COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let tmp = dir.join(tmp_name);

    let mut file = match tokio::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&tmp)
        .await
    {
        Ok(f) => f,
        Err(e) => {
            // Report about the target, the temporary file is an implementation detail.
            let kind = if e.kind() == io::ErrorKind::NotFound {
                NetworkError::ContentNotFoundError
            } else {
                NetworkError::ContentAccessDenied
            };
            return Err(Error::new(kind, format!("Error opening {url}: {e}")).with_source(e));
        }
    };

    let written = async {
        if let Some(m) = &existing {
            // Keep the replaced file's permissions.
            file.set_permissions(m.permissions()).await?;
        }
        file.write_all(body).await?;
        file.flush().await?;
        file.sync_all().await?;
        drop(file);
        tokio::fs::rename(&tmp, &target).await
    }
    .await;
    if let Err(e) = written {
        let _ = tokio::fs::remove_file(&tmp).await;
        return Err(Error::new(
            NetworkError::ProtocolFailure,
            format!("Write error writing to {url}: {e}"),
        )
        .with_source(e));
    }
    // Make the rename durable; failing here does not undo the write.
    #[cfg(unix)]
    if let Ok(d) = tokio::fs::File::open(dir).await {
        let _ = d.sync_all().await;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::StreamExt;
    use http::Method;

    /// A fresh, empty directory under the temp dir, removed on drop.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(tag: &str) -> Self {
            static N: AtomicU64 = AtomicU64::new(0);
            let p = std::env::temp_dir().join(format!(
                "netaccess-file-{tag}-{}-{}",
                std::process::id(),
                N.fetch_add(1, Ordering::Relaxed)
            ));
            let _ = std::fs::remove_dir_all(&p);
            std::fs::create_dir_all(&p).unwrap();
            TempDir(p)
        }

        fn url(&self, name: &str) -> Url {
            Url::from_file_path(self.0.join(name)).unwrap()
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    async fn collect(mut body: FileBody) -> Vec<u8> {
        let mut out = Vec::new();
        while let Some(chunk) = body.next().await {
            let chunk = chunk.unwrap();
            assert!(!chunk.is_empty() && chunk.len() <= CHUNK, "{}", chunk.len());
            out.extend_from_slice(&chunk);
        }
        out
    }

    fn header(meta: &Meta, name: http::header::HeaderName) -> &str {
        meta.headers.get(name).unwrap().to_str().unwrap()
    }

    #[tokio::test]
    async fn get_reads_content_in_chunks() {
        let dir = TempDir::new("get");
        let content: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(dir.0.join("a.bin"), &content).unwrap();

        let (meta, body) = fetch(&dir.url("a.bin"), &Operation::Get, Bytes::new())
            .await
            .unwrap();
        assert_eq!(meta.status, None);
        assert_eq!(header(&meta, CONTENT_LENGTH), "200000");
        assert_eq!(meta.original_content_length, Some(200_000));
        let lm = header(&meta, LAST_MODIFIED);
        assert!(lm.ends_with(" GMT"), "{lm}");
        httpdate::parse_http_date(lm).unwrap();
        assert_eq!(collect(body.unwrap()).await, content);
    }

    #[tokio::test]
    async fn get_empty_file() {
        let dir = TempDir::new("empty");
        std::fs::write(dir.0.join("e"), b"").unwrap();
        let (meta, body) = fetch(&dir.url("e"), &Operation::Get, Bytes::new())
            .await
            .unwrap();
        assert_eq!(header(&meta, CONTENT_LENGTH), "0");
        assert!(collect(body.unwrap()).await.is_empty());
    }

    #[tokio::test]
    async fn localhost_is_local() {
        let dir = TempDir::new("localhost");
        std::fs::write(dir.0.join("x.txt"), b"xyz").unwrap();
        let mut url = dir.url("x.txt");
        url.set_host(Some("localhost")).unwrap();
        let (_, body) = fetch(&url, &Operation::Get, Bytes::new()).await.unwrap();
        assert_eq!(collect(body.unwrap()).await, b"xyz");
    }

    #[tokio::test]
    async fn head_has_headers_but_no_body() {
        let dir = TempDir::new("head");
        std::fs::write(dir.0.join("h.txt"), b"hello").unwrap();
        let (meta, body) = fetch(&dir.url("h.txt"), &Operation::Head, Bytes::new())
            .await
            .unwrap();
        assert!(body.is_none());
        assert_eq!(header(&meta, CONTENT_LENGTH), "5");
        assert!(meta.headers.contains_key(LAST_MODIFIED));
    }

    #[tokio::test]
    async fn missing_file_is_not_found() {
        let dir = TempDir::new("missing");
        for op in [Operation::Get, Operation::Head] {
            let err = fetch(&dir.url("nope.txt"), &op, Bytes::new())
                .await
                .unwrap_err();
            assert_eq!(err.kind(), NetworkError::ContentNotFoundError);
            assert!(err.message().starts_with("Error opening file://"), "{err}");
        }
    }

    #[tokio::test]
    async fn directory_is_refused() {
        let dir = TempDir::new("dir");
        std::fs::create_dir(dir.0.join("sub")).unwrap();
        let err = fetch(&dir.url("sub"), &Operation::Get, Bytes::new())
            .await
            .unwrap_err();
        assert_eq!(err.kind(), NetworkError::ContentAccessDenied);
        assert!(err.message().ends_with("Path is a directory"), "{err}");
        // Writing over a directory is access denied, as in Qt.
        let err = fetch(&dir.url("sub"), &Operation::Put, Bytes::from_static(b"x"))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), NetworkError::ContentAccessDenied);
        assert!(dir.0.join("sub").is_dir());
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn unreadable_file_is_access_denied() {
        use std::os::unix::fs::PermissionsExt;
        let dir = TempDir::new("perm");
        let p = dir.0.join("secret");
        std::fs::write(&p, b"s").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o000)).unwrap();
        if std::fs::File::open(&p).is_ok() {
            return; // running as root: permissions are not enforced
        }
        let err = fetch(&dir.url("secret"), &Operation::Get, Bytes::new())
            .await
            .unwrap_err();
        assert_eq!(err.kind(), NetworkError::ContentAccessDenied);
    }

    #[tokio::test]
    async fn put_writes_atomically_then_reads_back() {
        let dir = TempDir::new("put");
        let url = dir.url("out.txt");
        let (meta, body) = fetch(&url, &Operation::Put, Bytes::from_static(b"first"))
            .await
            .unwrap();
        assert!(meta.headers.is_empty());
        assert_eq!(meta.status, None);
        assert!(body.is_none());
        assert_eq!(std::fs::read(dir.0.join("out.txt")).unwrap(), b"first");

        // Replacing a longer file truncates it; no temporary file is left behind.
        fetch(&url, &Operation::Put, Bytes::from_static(b"2nd"))
            .await
            .unwrap();
        let (meta, body) = fetch(&url, &Operation::Get, Bytes::new()).await.unwrap();
        assert_eq!(header(&meta, CONTENT_LENGTH), "3");
        assert_eq!(collect(body.unwrap()).await, b"2nd");
        let names: Vec<_> = std::fs::read_dir(&dir.0)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["out.txt"]);
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn put_keeps_permissions_and_follows_symlinks() {
        use std::os::unix::fs::PermissionsExt;
        let dir = TempDir::new("putlink");
        let real = dir.0.join("real.txt");
        std::fs::write(&real, b"old").unwrap();
        std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o640)).unwrap();
        std::os::unix::fs::symlink(&real, dir.0.join("link.txt")).unwrap();

        fetch(
            &dir.url("link.txt"),
            &Operation::Put,
            Bytes::from_static(b"new"),
        )
        .await
        .unwrap();
        assert!(std::fs::symlink_metadata(dir.0.join("link.txt"))
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(std::fs::read(&real).unwrap(), b"new");
        let mode = std::fs::metadata(&real).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o640);
    }

    #[tokio::test]
    async fn put_into_missing_directory_is_not_found() {
        let dir = TempDir::new("putmissing");
        let err = fetch(
            &dir.url("no/such/file"),
            &Operation::Put,
            Bytes::from_static(b"x"),
        )
        .await
        .unwrap_err();
        assert_eq!(err.kind(), NetworkError::ContentNotFoundError);
    }

    #[tokio::test]
    async fn other_operations_are_refused() {
        let dir = TempDir::new("ops");
        std::fs::write(dir.0.join("f"), b"keep").unwrap();
        for op in [
            Operation::Post,
            Operation::Delete,
            Operation::Custom(Method::OPTIONS),
        ] {
            let err = fetch(&dir.url("f"), &op, Bytes::from_static(b"x"))
                .await
                .unwrap_err();
            assert_eq!(err.kind(), NetworkError::ProtocolInvalidOperationError);
            assert!(err.message().contains("not supported"), "{err}");
        }
        assert_eq!(std::fs::read(dir.0.join("f")).unwrap(), b"keep");
    }

    #[tokio::test]
    async fn non_local_host_is_refused() {
        let url = Url::parse("file://example.com/etc/hosts").unwrap();
        let err = fetch(&url, &Operation::Get, Bytes::new())
            .await
            .unwrap_err();
        assert_eq!(err.kind(), NetworkError::ProtocolInvalidOperationError);
        assert!(
            err.message()
                .starts_with("Request for opening non-local file"),
            "{err}"
        );
    }
}
