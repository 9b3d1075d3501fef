//! [`DiskCache`]: Qt's `QNetworkDiskCache`, safe for several processes on one directory.
//!
//! Layout under the cache directory:
//! - `data/ab/<32 hex>`: the entry of a key whose response has no `Vary` (the name is a
//!   128-bit SHA-256 prefix of [`CacheKey::as_str`], `ab` its first two characters), or a
//!   *vary marker* listing the `Vary` header names when it has one;
//! - `data/ab/<32 hex>-<16 hex>`: the variant selected by those request header values;
//! - `tmp/`: files being written;
//! - `secret-key`: the cache's random key (32 bytes) for the keyed hashes of user info and
//!   credentials (see the [module](super) docs): a key is stored as its text plus a hash of
//!   the URL's user info, and `Vary` request headers that carry credentials as hashes.
//!
//! Privacy: the folders the cache creates are 0700 (`data/` and `tmp/` are tightened to 0700
//! if they exist with more), every file 0600, created with `O_EXCL`. When the key is created
//! (a new cache, a lost key, or a directory of a version that kept credentials in the clear),
//! the entries already in `data/` are removed: none could match under the new key.
//!
//! Protocol (no lock files): a writer fills a new file in `tmp/` and `rename`s it over the
//! final name only when complete, so a reader opens either the old or the new whole file,
//! never a torn one; the file format ([`super::format`]) carries lengths and checksums, so a
//! file damaged anyway (a crash before the data reached the disk, a foreign or truncated file)
//! is a miss and is removed (only if the name still refers to the file that was checked).
//! Readers bump a file's modification time: that is the LRU order every process shares.
//! Eviction lists the directory, deletes the least recently used files until the total is 90%
//! of the limit, and tolerates files vanishing under it (another process evicting too).
//!
//! Small entries read before are kept parsed ([`super::hot`]): a hit on one is a `stat`, no
//! read. A writer holds its key's lock ([`super::lock`]) from its first byte on disk until its
//! file is in place: one writer per key at a time, across processes. Entries can be listed and
//! removed by URL prefix.
//!
//! Why one file of over 1,000 lines: the write protocol, the reader, eviction and listing share
//! the directory layout and its invariants (rename-over, checksums, the key's lock), and
//! splitting them would spread one protocol over several files; about a third is tests.
//!
//! Why one file of about 1,100 lines: the protocol above (temporary file, rename, checksum
//! verified while streaming, removal only of the file that was checked, eviction) is shared
//! by the reader, the writer and the sweeper, and is reviewed as a whole.

use std::fs::{self, File};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use futures_core::Stream;
use http::{HeaderMap, HeaderName};

use super::format::{self, FileHeader, Kind, Meta, HEADER_LEN};
use super::hot::{HotIndex, Identity};
use super::lock::KeyLock;
use super::{
    digest_hex, key_has_prefix, variant_hex, vary_names, Cache, CacheFuture, CacheKey,
    CacheMetadata, CacheWriter, CachedBody, CachedEntry, EntryInfo, SecretKey,
};
use crate::persist::{self, PRIVATE_FILE_MODE};

/// The default maximum size of a [`DiskCache`]: 50 MiB, as Qt's.
pub const DEFAULT_DISK_CACHE_SIZE: u64 = 50 * 1024 * 1024;

/// Bodies up to this size are read (and checked) during the lookup; larger ones are streamed
/// from the file and checked at the end of the stream.
const INLINE_BODY_LIMIT: u64 = 1 << 20;
/// A writer keeps this much in memory before appending to its temporary file.
const WRITE_BUFFER: usize = 64 * 1024;
/// Temporary files untouched for this long are left over by a crash and are deleted.
const STALE_TEMP_AGE: Duration = Duration::from_secs(3600);
/// The name of the key file in the cache directory.
const KEY_FILE: &str = "secret-key";

/// A cache in a directory (Qt's `QNetworkDiskCache`): a maximum size (default 50 MiB), LRU
/// eviction down to 90% of it when exceeded, atomic entry files with checksums.
///
/// Several `DiskCache`s, in one process or several, may use one directory at once. The I/O
/// runs on tokio's blocking threads when called inside a runtime (inline otherwise);
/// [`CacheWriter::write`] appends to a file every 64 KiB on the calling thread. Bodies over
/// 1 MiB are streamed from their file with `tokio::fs` and need a tokio runtime when read.
#[doc(alias = "QNetworkDiskCache")]
#[derive(Clone)]
pub struct DiskCache {
    inner: Arc<Inner>,
    shared: bool,
}

struct Inner {
    dir: PathBuf,
    data: PathBuf,
    tmp: PathBuf,
    max: AtomicU64,
    /// Bytes in `data/` as of the last scan, plus what this instance wrote since.
    size: AtomicU64,
    written_since_scan: AtomicU64,
    evicting: Mutex<()>,
    serial: AtomicU64,
    secret: SecretKey,
    /// Small entries read before, kept parsed (see [`super::hot`]).
    hot: HotIndex,
}

impl std::fmt::Debug for DiskCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DiskCache")
            .field("dir", &self.inner.dir)
            .field("size", &self.size())
            .field("max_size", &self.max_size())
            .finish()
    }
}

impl DiskCache {
    /// A cache in `dir` (created if needed, owner-only) with the default maximum size. Reads
    /// or creates the cache's key and scans the directory once to learn its size (blocking).
    #[doc(alias = "setCacheDirectory")]
    pub fn new(dir: impl Into<PathBuf>) -> io::Result<Self> {
        let dir = dir.into();
        let data = dir.join("data");
        let tmp = dir.join("tmp");
        for sub in [&data, &tmp] {
            persist::create_private_dir_all(sub)?;
            restrict_dir(sub)?;
        }
        let (secret, new_key) = load_or_create_key(&dir, &tmp)?;
        if new_key {
            // Entries written under another key (or by a version that stored credentials in
            // the clear) can never match again: remove them now rather than keep them.
            clear_dir(&data);
        }
        let inner = Inner {
            dir,
            data,
            tmp,
            max: AtomicU64::new(DEFAULT_DISK_CACHE_SIZE),
            size: AtomicU64::new(0),
            written_since_scan: AtomicU64::new(0),
            evicting: Mutex::new(()),
            serial: AtomicU64::new(0),
            secret,
            hot: HotIndex::default(),
        };
        inner.scan(None);
        Ok(Self {
            inner: Arc::new(inner),
            shared: false,
        })
    }

    /// This cache as a shared one (`true`) or a private one (the default); see
    /// [`Cache::is_shared`].
    ///
    /// ```no_run
    /// use netaccess::{Cache, DiskCache};
    /// let gateway = DiskCache::new("/var/cache/my-gateway")?.shared(true);
    /// assert!(gateway.is_shared());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn shared(mut self, shared: bool) -> Self {
        self.shared = shared;
        self
    }

    /// Sets the maximum size (builder form of [`set_max_size`](Self::set_max_size)).
    pub fn with_max_size(self, bytes: u64) -> Self {
        self.inner.max.store(bytes, Ordering::Relaxed);
        self
    }

    /// Sets the maximum size; the directory is trimmed on the next store (or by
    /// [`expire`](Self::expire)).
    #[doc(alias = "setMaximumCacheSize")]
    pub fn set_max_size(&self, bytes: u64) {
        self.inner.max.store(bytes, Ordering::Relaxed);
    }

    /// The maximum size in bytes.
    #[doc(alias = "maximumCacheSize")]
    pub fn max_size(&self) -> u64 {
        self.inner.max.load(Ordering::Relaxed)
    }

    /// The cache directory.
    #[doc(alias = "cacheDirectory")]
    pub fn cache_directory(&self) -> &Path {
        &self.inner.dir
    }

    /// Rescans the directory, evicts down to 90% of the maximum if it is over, and returns the
    /// size (Qt's `expire()`).
    pub fn expire(&self) -> CacheFuture<'static, u64> {
        let inner = self.inner.clone();
        let max = self.max_size();
        Box::pin(async move { blocking(move || inner.scan(Some(max))).await.unwrap_or(0) })
    }
}

/// Makes a folder of ours owner-only if it allows more (one made by an older version).
fn restrict_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(dir)?.permissions().mode();
        if mode & 0o077 != 0 {
            fs::set_permissions(
                dir,
                fs::Permissions::from_mode(mode & 0o700 | persist::PRIVATE_DIR_MODE),
            )?;
        }
    }
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// Removes every file under the fan-out folders of `data`.
fn clear_dir(data: &Path) {
    for fan in fs::read_dir(data).into_iter().flatten().flatten() {
        for entry in fs::read_dir(fan.path()).into_iter().flatten().flatten() {
            let _ = fs::remove_file(entry.path());
        }
    }
}

/// The cache's key from `dir/secret-key`, made (random, 0600) if missing or damaged, and
/// whether it was made now. A new key is written in `tmp/` and linked into place, so
/// processes starting together agree on one key: the first link wins, the others read it.
fn load_or_create_key(dir: &Path, tmp: &Path) -> io::Result<(SecretKey, bool)> {
    let path = dir.join(KEY_FILE);
    for _ in 0..8 {
        let damaged = match read_key(&path) {
            Ok(Some(key)) => return Ok((key, false)),
            Ok(None) => false,
            Err(_) => true,
        };
        let key = SecretKey::generate();
        let nanos = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .subsec_nanos();
        let temp = tmp.join(format!("key-{}-{nanos:09}.tmp", std::process::id()));
        let written = persist::create_new_private(&temp, PRIVATE_FILE_MODE).and_then(|mut f| {
            f.write_all(key.bytes())?;
            f.sync_all()
        });
        let placed = written.and_then(|()| {
            if damaged {
                fs::rename(&temp, &path)
            } else {
                // Fails with AlreadyExists when another process placed its key first.
                fs::hard_link(&temp, &path).or_else(|e| match e.kind() {
                    io::ErrorKind::AlreadyExists => Err(e),
                    // A file system without hard links: a rename (last writer wins).
                    _ => fs::rename(&temp, &path),
                })
            }
        });
        let _ = fs::remove_file(&temp);
        match placed {
            Ok(()) => {
                tracing::debug!(path = %path.display(), "cache: created a new key");
                return Ok((key, true));
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::other(format!(
        "{}: cannot read or create the cache key",
        path.display()
    )))
}

/// The key in `path`; `Ok(None)` when missing, an error when it is not a key.
fn read_key(path: &Path) -> io::Result<Option<SecretKey>> {
    let mut file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let meta = file.metadata()?;
    if meta.len() != SecretKey::LEN as u64 || !meta.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "not a cache key",
        ));
    }
    let mut key = [0u8; SecretKey::LEN];
    file.read_exact(&mut key)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if meta.permissions().mode() & 0o077 != 0 {
            fs::set_permissions(path, fs::Permissions::from_mode(PRIVATE_FILE_MODE))?;
        }
    }
    Ok(Some(SecretKey::from_bytes(key)))
}

/// Runs `f` on tokio's blocking pool inside a runtime, inline outside one. `None` if the
/// runtime shut down first.
fn blocking<T, F>(f: F) -> CacheFuture<'static, Option<T>>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    match tokio::runtime::Handle::try_current() {
        Ok(handle) => {
            let task = handle.spawn_blocking(f);
            Box::pin(async move {
                match task.await {
                    Ok(v) => Some(v),
                    Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
                    Err(_) => None,
                }
            })
        }
        Err(_) => Box::pin(std::future::ready(Some(f()))),
    }
}

/// Refreshes the modification time of the hot entry at `path` (the shared LRU clock) on a
/// blocking thread, and its identity in the hot index.
fn touch_in_background(inner: Arc<Inner>, path: PathBuf) {
    let touch = move || {
        let Ok(file) = fs::OpenOptions::new().write(true).open(&path) else {
            return;
        };
        let before = file.metadata().ok().as_ref().and_then(Identity::of);
        // Only if it is still the file the index holds.
        if before.is_none() || inner.hot.get_identity(&path) != before {
            return;
        }
        let _ = file.set_modified(SystemTime::now());
        if let Some(after) = file.metadata().ok().as_ref().and_then(Identity::of) {
            inner.hot.set_identity(&path, after);
        }
    };
    match tokio::runtime::Handle::try_current() {
        Ok(handle) => drop(handle.spawn_blocking(touch)),
        Err(_) => touch(),
    }
}

/// The header and metadata of the entry or marker file at `path` (checked as a lookup does,
/// the body excepted) and its body length; `None` for anything else.
fn read_meta(path: &Path) -> Option<(Meta, u64)> {
    let mut file = File::open(path).ok()?;
    let len = file.metadata().ok()?.len();
    let mut head = [0u8; HEADER_LEN];
    file.read_exact(&mut head).ok()?;
    let (header, version) = FileHeader::decode_versioned(&head).filter(|(h, _)| h.fits(len))?;
    let mut meta = vec![0u8; header.meta_len as usize];
    file.read_exact(&mut meta).ok()?;
    if crc32fast::hash(&meta) != header.meta_crc {
        return None;
    }
    let decoded = format::decode_meta_version(version, header.kind, &meta)?;
    Some((decoded, header.body_len))
}

/// A file identity, to delete a bad file only if the name still refers to it.
#[cfg(unix)]
type FileId = Option<(u64, u64)>;
#[cfg(not(unix))]
type FileId = Option<()>;

fn file_id(meta: &fs::Metadata) -> FileId {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        Some((meta.dev(), meta.ino()))
    }
    #[cfg(not(unix))]
    {
        let _ = meta;
        None
    }
}

/// What a valid file at a path holds.
// A transient return value: boxing would only add an allocation per lookup.
#[allow(clippy::large_enum_variant)]
enum Opened {
    /// An entry, and the file's identity after it was read (to keep it in the hot index).
    Entry(CachedEntry, Option<Identity>),
    Marker(Vec<HeaderName>),
}

/// Why a file was not used.
enum Bad {
    /// Nothing there, or another key's entry: leave it.
    Miss,
    /// Damaged or foreign: remove it.
    Corrupt { id: FileId, len: u64 },
}

impl Inner {
    fn fan_dir(&self, primary: &str) -> PathBuf {
        self.data.join(&primary[..2])
    }

    fn entry_path(&self, primary: &str, variant: Option<&str>) -> PathBuf {
        let name = match variant {
            Some(v) => format!("{primary}-{v}"),
            None => primary.to_owned(),
        };
        self.fan_dir(primary).join(name)
    }

    fn add_size(&self, delta: i64) {
        if delta >= 0 {
            self.size.fetch_add(delta as u64, Ordering::Relaxed);
        } else {
            let sub = delta.unsigned_abs();
            let _ = self
                .size
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |s| {
                    Some(s.saturating_sub(sub))
                });
        }
    }

    /// Removes `path` if it is still the file `id` (or unconditionally without identities).
    fn remove_bad(&self, path: &Path, id: FileId, len: u64) {
        if id.is_some() {
            match fs::symlink_metadata(path) {
                Ok(m) if file_id(&m) == id => {}
                _ => return,
            }
        }
        self.hot.remove(path);
        if fs::remove_file(path).is_ok() {
            tracing::debug!(path = %path.display(), "cache: removed a damaged entry");
            self.add_size(-(len as i64));
        }
    }

    /// Opens and checks the file at `path` for `key`.
    fn open(&self, path: &Path, key: &str) -> Option<Opened> {
        match self.try_open(path, key) {
            Ok(opened) => Some(opened),
            Err(Bad::Miss) => None,
            Err(Bad::Corrupt { id, len }) => {
                self.remove_bad(path, id, len);
                None
            }
        }
    }

    fn try_open(&self, path: &Path, key: &str) -> Result<Opened, Bad> {
        let mut file = File::open(path).map_err(|_| Bad::Miss)?;
        let meta = file.metadata().map_err(|_| Bad::Miss)?;
        let (id, len) = (file_id(&meta), meta.len());
        let corrupt = Bad::Corrupt { id, len };
        let mut head = [0u8; HEADER_LEN];
        if file.read_exact(&mut head).is_err() {
            return Err(corrupt);
        }
        let Some((header, version)) = FileHeader::decode_versioned(&head) else {
            return Err(corrupt);
        };
        // The lengths must describe this very file before a buffer is sized from them.
        if !header.fits(len) {
            return Err(corrupt);
        }
        let mut meta_bytes = vec![0u8; header.meta_len as usize];
        if file.read_exact(&mut meta_bytes).is_err()
            || crc32fast::hash(&meta_bytes) != header.meta_crc
        {
            return Err(corrupt);
        }
        let Some(decoded) = format::decode_meta_version(version, header.kind, &meta_bytes) else {
            return Err(corrupt);
        };
        if decoded.key() != key {
            // A hash collision with another key: a valid entry, not ours.
            return Err(Bad::Miss);
        }
        let opened = match decoded {
            Meta::VaryMarker { names, .. } => Opened::Marker(names),
            Meta::Entry {
                stored_at,
                metadata,
                ..
            } => {
                let body = if header.body_len <= INLINE_BODY_LIMIT {
                    let mut body = vec![0u8; header.body_len as usize];
                    if file.read_exact(&mut body).is_err()
                        || crc32fast::hash(&body) != header.body_crc
                    {
                        return Err(corrupt);
                    }
                    CachedBody::from_bytes(body)
                } else {
                    let stream = VerifiedStream::new(
                        file.try_clone().map_err(|_| Bad::Miss)?,
                        header,
                        path.to_owned(),
                        id,
                    );
                    CachedBody::from_stream(header.body_len, Box::pin(stream))
                };
                Opened::Entry(CachedEntry::new(metadata, body, stored_at), None)
            }
        };
        // The shared LRU clock: a use makes the file recent for every process.
        let _ = file.set_modified(SystemTime::now());
        Ok(match opened {
            Opened::Entry(entry, _) => {
                // Of this very file (not the name, which another process may have reused).
                let identity = file.metadata().ok().as_ref().and_then(Identity::of);
                Opened::Entry(entry, identity)
            }
            marker => marker,
        })
    }

    fn lookup(&self, key: &str, primary: &str, request_headers: &HeaderMap) -> Option<CachedEntry> {
        let path = self.entry_path(primary, None);
        let entry = match self.open(&path, key)? {
            Opened::Entry(entry, identity) => {
                let bytes = entry.body.as_bytes();
                if let (Some(identity), Some(bytes)) = (identity, bytes) {
                    if entry.metadata.vary().is_some_and(|names| names.is_empty()) {
                        let m = &entry.metadata;
                        self.hot
                            .insert(&path, identity, key, m, bytes, entry.stored_at);
                    }
                }
                entry
            }
            Opened::Marker(names) => {
                let sealed = self.secret.seal_headers(request_headers);
                let variant = variant_hex(&names, &sealed);
                match self.open(&self.entry_path(primary, Some(&variant)), key)? {
                    Opened::Entry(entry, _) => entry,
                    Opened::Marker(_) => return None,
                }
            }
        };
        let CachedEntry {
            metadata,
            body,
            stored_at,
            ..
        } = entry;
        let metadata = self.secret.open_if_matching(metadata, request_headers)?;
        Some(CachedEntry::new(metadata, body, stored_at))
    }

    fn create_temp(&self) -> io::Result<TempFile> {
        let serial = self.serial.fetch_add(1, Ordering::Relaxed);
        let nanos = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .subsec_nanos();
        let path = self
            .tmp
            .join(format!("{}-{serial}-{nanos:09}.tmp", std::process::id()));
        let open = || persist::create_new_private(&path, PRIVATE_FILE_MODE);
        let file = match open() {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                persist::create_private_dir_all(&self.tmp)?;
                open()?
            }
            other => other?,
        };
        Ok(TempFile {
            file,
            path,
            kept: false,
        })
    }

    /// Renames `temp` to `dest` and accounts for the size change.
    fn install(&self, temp: TempFile, dest: &Path) -> io::Result<()> {
        let new_len = temp.file.metadata()?.len();
        let old_len = fs::symlink_metadata(dest).map(|m| m.len()).unwrap_or(0);
        temp.persist(dest)?;
        self.add_size(new_len as i64 - old_len as i64);
        self.written_since_scan
            .fetch_add(new_len, Ordering::Relaxed);
        Ok(())
    }

    fn write_marker(&self, key: &str, primary: &str, names: &[HeaderName]) -> io::Result<()> {
        let meta = format::encode_marker(key, SystemTime::now(), names);
        if !format::storable(&meta, Kind::VaryMarker) {
            return Err(io::Error::other("too many Vary names to store"));
        }
        let header = FileHeader {
            kind: Kind::VaryMarker,
            meta_len: meta.len() as u32,
            body_len: 0,
            meta_crc: crc32fast::hash(&meta),
            body_crc: crc32fast::hash(&[]),
        };
        let mut temp = self.create_temp()?;
        temp.file.write_all(&header.encode())?;
        temp.file.write_all(&meta)?;
        self.install(temp, &self.entry_path(primary, None))
    }

    /// Evicts if this instance's view says the directory is over the limit, and rescans
    /// every 1/8 of the limit written (other processes' writes show up then).
    fn maybe_evict(&self) {
        let max = self.max.load(Ordering::Relaxed);
        if self.size.load(Ordering::Relaxed) > max
            || self.written_since_scan.load(Ordering::Relaxed) > max / 8
        {
            self.scan(Some(max));
        }
    }

    /// Measures `data/`, deletes stale temporary files, and with `Some(max)` evicts the least
    /// recently used files down to 90% of `max` when over it. Returns the size.
    fn scan(&self, evict_over: Option<u64>) -> u64 {
        let Ok(_guard) = self.evicting.try_lock() else {
            // Another thread of this instance is scanning right now.
            return self.size.load(Ordering::Relaxed);
        };
        let mut files = Vec::new();
        let mut total = 0u64;
        for fan in fs::read_dir(&self.data).into_iter().flatten().flatten() {
            for entry in fs::read_dir(fan.path()).into_iter().flatten().flatten() {
                // Files may vanish at any moment: skip what cannot be read.
                let Ok(meta) = entry.metadata() else { continue };
                if meta.is_file() {
                    total += meta.len();
                    let used = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
                    files.push((used, meta.len(), entry.path()));
                }
            }
        }
        let now = SystemTime::now();
        for entry in fs::read_dir(&self.tmp).into_iter().flatten().flatten() {
            let old = entry
                .metadata()
                .ok()
                .and_then(|m| m.modified().ok())
                .is_some_and(|t| now.duration_since(t).unwrap_or_default() > STALE_TEMP_AGE);
            if old {
                let _ = fs::remove_file(entry.path());
            }
        }
        if let Some(max) = evict_over.filter(|max| total > *max) {
            let target = max / 10 * 9;
            files.sort();
            for (_, len, path) in files {
                if total <= target {
                    break;
                }
                match fs::remove_file(&path) {
                    Ok(()) => total -= len,
                    // Evicted by someone else meanwhile.
                    Err(e) if e.kind() == io::ErrorKind::NotFound => total -= len,
                    Err(_) => {}
                }
            }
        }
        self.size.store(total, Ordering::Relaxed);
        self.written_since_scan.store(0, Ordering::Relaxed);
        total
    }

    fn update_metadata(
        &self,
        key: &str,
        primary: &str,
        metadata: &CacheMetadata,
    ) -> io::Result<bool> {
        let metadata = &self.secret.seal(metadata);
        let path = match metadata.vary() {
            None => return Ok(false),
            Some(names) if names.is_empty() => self.entry_path(primary, None),
            Some(names) => {
                let variant = variant_hex(&names, &metadata.request_headers);
                self.entry_path(primary, Some(&variant))
            }
        };
        self.hot.remove(&path);
        let Ok(mut file) = File::open(&path) else {
            return Ok(false);
        };
        let len = file.metadata()?.len();
        let mut head = [0u8; HEADER_LEN];
        file.read_exact(&mut head)?;
        let Some((old, version)) = FileHeader::decode_versioned(&head)
            .filter(|(h, _)| h.kind == Kind::Entry && h.fits(len))
        else {
            return Ok(false);
        };
        let mut old_meta = vec![0u8; old.meta_len as usize];
        file.read_exact(&mut old_meta)?;
        match format::decode_meta_version(version, Kind::Entry, &old_meta) {
            Some(m) if m.key() == key && crc32fast::hash(&old_meta) == old.meta_crc => {}
            _ => return Ok(false),
        }
        if !metadata.save_to_disk {
            // Qt's saveToDisk(false): the entry leaves the disk.
            drop(file);
            let removed = fs::remove_file(&path).is_ok();
            if removed {
                self.add_size(-(len as i64));
            }
            return Ok(removed);
        }
        let meta = format::encode_entry(key, SystemTime::now(), metadata);
        if !format::storable(&meta, Kind::Entry) {
            return Ok(false);
        }
        let header = FileHeader {
            kind: Kind::Entry,
            meta_len: meta.len() as u32,
            meta_crc: crc32fast::hash(&meta),
            ..old
        };
        let mut temp = self.create_temp()?;
        temp.file.write_all(&header.encode())?;
        temp.file.write_all(&meta)?;
        // The body is copied as it is, with its checksum: damage is still caught on read.
        let copied = io::copy(&mut (&mut file).take(old.body_len), &mut temp.file)?;
        if copied != old.body_len {
            return Ok(false);
        }
        self.install(temp, &path)?;
        self.maybe_evict();
        Ok(true)
    }

    fn remove(&self, primary: &str) -> bool {
        self.hot.remove_prefix(&self.fan_dir(primary), primary);
        let mut removed = false;
        for entry in fs::read_dir(self.fan_dir(primary))
            .into_iter()
            .flatten()
            .flatten()
        {
            if entry.file_name().to_string_lossy().starts_with(primary) {
                let len = entry.metadata().map(|m| m.len()).unwrap_or(0);
                if fs::remove_file(entry.path()).is_ok() {
                    self.add_size(-(len as i64));
                    removed = true;
                }
            }
        }
        removed
    }

    /// The decoded metadata of every valid file in `data/`, with its primary name (damaged or
    /// foreign files are skipped; lookups remove them).
    fn list(&self) -> Vec<(String, Meta, u64)> {
        let mut out = Vec::new();
        for fan in fs::read_dir(&self.data).into_iter().flatten().flatten() {
            for entry in fs::read_dir(fan.path()).into_iter().flatten().flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                let primary = name.split('-').next().unwrap_or_default().to_owned();
                if let Some((meta, body_len)) = read_meta(&entry.path()) {
                    out.push((primary, meta, body_len));
                }
            }
        }
        out
    }

    fn entries(&self) -> Vec<EntryInfo> {
        self.list()
            .into_iter()
            .filter_map(|(_, meta, body_len)| match meta {
                Meta::Entry {
                    key,
                    stored_at,
                    metadata,
                } => Some(EntryInfo::new(&key, metadata, body_len, stored_at)),
                Meta::VaryMarker { .. } => None,
            })
            .collect()
    }

    fn remove_prefix(&self, prefix: &str) -> u64 {
        let mut primaries = std::collections::BTreeSet::new();
        let mut count = 0;
        for (primary, meta, _) in self.list() {
            if key_has_prefix(meta.key(), prefix) {
                count += u64::from(matches!(meta, Meta::Entry { .. }));
                primaries.insert(primary);
            }
        }
        for primary in primaries {
            self.remove(&primary);
        }
        count
    }

    fn clear(&self) {
        self.hot.clear();
        for fan in fs::read_dir(&self.data).into_iter().flatten().flatten() {
            for entry in fs::read_dir(fan.path()).into_iter().flatten().flatten() {
                let _ = fs::remove_file(entry.path());
            }
        }
        self.scan(None);
    }
}

/// A file in `tmp/`, deleted on drop unless persisted.
struct TempFile {
    file: File,
    path: PathBuf,
    kept: bool,
}

impl TempFile {
    fn persist(mut self, dest: &Path) -> io::Result<()> {
        let result = match fs::rename(&self.path, dest) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                // The fan-out directory does not exist yet (or was just cleared).
                match dest.parent() {
                    Some(parent) => persist::create_private_dir_all(parent)
                        .and_then(|()| fs::rename(&self.path, dest)),
                    None => Err(e),
                }
            }
            other => other,
        };
        self.kept = result.is_ok();
        result
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.kept {
            let _ = fs::remove_file(&self.path);
        }
    }
}

struct DiskWriter {
    inner: Arc<Inner>,
    key: String,
    primary: String,
    /// For a response with `Vary`: the variant hash and the names.
    variant: Option<(String, Vec<HeaderName>)>,
    meta: Vec<u8>,
    buf: Vec<u8>,
    temp: Option<TempFile>,
    body_len: u64,
    crc: crc32fast::Hasher,
    failed: Option<io::ErrorKind>,
    /// This key's writer lock, held from the first byte on disk until the entry is in place.
    lock: Option<KeyLock>,
}

impl DiskWriter {
    /// The name of the entry file this writer installs (and of its lock).
    fn entry_name(&self) -> String {
        match &self.variant {
            Some((variant, _)) => format!("{}-{variant}", self.primary),
            None => self.primary.clone(),
        }
    }

    fn fail(&mut self, e: io::Error) -> io::Error {
        self.failed = Some(e.kind());
        self.temp = None;
        self.lock = None;
        self.buf = Vec::new();
        e
    }

    fn flush(&mut self) -> io::Result<()> {
        if let Some(lock) = &mut self.lock {
            lock.refresh();
        }
        if self.temp.is_none() {
            self.lock = Some(KeyLock::acquire(&self.inner.tmp, &self.entry_name())?);
            let mut temp = self.inner.create_temp()?;
            // The header is written last, at commit: until then the file is invalid.
            temp.file.write_all(&[0u8; HEADER_LEN])?;
            temp.file.write_all(&self.meta)?;
            self.temp = Some(temp);
        }
        if let Some(temp) = &mut self.temp {
            temp.file.write_all(&self.buf)?;
        }
        self.buf.clear();
        Ok(())
    }

    fn finish(mut self) -> io::Result<()> {
        if let Some(kind) = self.failed {
            return Err(io::Error::new(kind, "the cache entry was not written"));
        }
        self.flush()?;
        let header = FileHeader {
            kind: Kind::Entry,
            meta_len: self.meta.len() as u32,
            body_len: self.body_len,
            meta_crc: crc32fast::hash(&self.meta),
            body_crc: self.crc.clone().finalize(),
        };
        let Some(mut temp) = self.temp.take() else {
            return Err(io::Error::other("no temporary file"));
        };
        temp.file.seek(SeekFrom::Start(0))?;
        temp.file.write_all(&header.encode())?;
        match &self.variant {
            None => self
                .inner
                .install(temp, &self.inner.entry_path(&self.primary, None))?,
            Some((variant, names)) => {
                let dest = self.inner.entry_path(&self.primary, Some(variant));
                self.inner.install(temp, &dest)?;
                self.inner.write_marker(&self.key, &self.primary, names)?;
            }
        }
        self.inner.maybe_evict();
        Ok(())
    }
}

impl CacheWriter for DiskWriter {
    fn write(&mut self, chunk: &[u8]) -> io::Result<()> {
        if let Some(kind) = self.failed {
            return Err(io::Error::new(kind, "the cache entry was abandoned"));
        }
        self.body_len += chunk.len() as u64;
        let file_len = HEADER_LEN as u64 + self.meta.len() as u64 + self.body_len;
        if file_len > self.inner.max.load(Ordering::Relaxed) {
            let e = io::Error::other("response larger than the cache");
            return Err(self.fail(e));
        }
        self.crc.update(chunk);
        self.buf.extend_from_slice(chunk);
        if self.buf.len() >= WRITE_BUFFER {
            if let Err(e) = self.flush() {
                return Err(self.fail(e));
            }
        }
        Ok(())
    }

    fn commit(self: Box<Self>) -> CacheFuture<'static, io::Result<()>> {
        let task = blocking(move || self.finish());
        Box::pin(async move {
            task.await
                .unwrap_or_else(|| Err(io::Error::other("the runtime shut down")))
        })
    }
}

/// A large body read from its file; the checksum is checked at the end, and a mismatch ends
/// the stream with `InvalidData` and removes the file.
struct VerifiedStream {
    inner: tokio_util::io::ReaderStream<tokio::io::Take<tokio::fs::File>>,
    crc: crc32fast::Hasher,
    seen: u64,
    header: FileHeader,
    path: PathBuf,
    id: FileId,
    done: bool,
}

impl VerifiedStream {
    fn new(file: File, header: FileHeader, path: PathBuf, id: FileId) -> Self {
        use tokio::io::AsyncReadExt;
        let file = tokio::fs::File::from_std(file).take(header.body_len);
        Self {
            inner: tokio_util::io::ReaderStream::with_capacity(file, WRITE_BUFFER),
            crc: crc32fast::Hasher::new(),
            seen: 0,
            header,
            path,
            id,
            done: false,
        }
    }
}

impl Stream for VerifiedStream {
    type Item = io::Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.done {
            return Poll::Ready(None);
        }
        match Pin::new(&mut self.inner).poll_next(cx) {
            Poll::Ready(Some(Ok(chunk))) => {
                self.crc.update(&chunk);
                self.seen += chunk.len() as u64;
                Poll::Ready(Some(Ok(chunk)))
            }
            Poll::Ready(Some(Err(e))) => {
                self.done = true;
                Poll::Ready(Some(Err(e)))
            }
            Poll::Ready(None) => {
                self.done = true;
                let crc = std::mem::take(&mut self.crc).finalize();
                if self.seen == self.header.body_len && crc == self.header.body_crc {
                    return Poll::Ready(None);
                }
                if self.id.is_some() {
                    match fs::symlink_metadata(&self.path) {
                        Ok(m) if file_id(&m) == self.id => {
                            let _ = fs::remove_file(&self.path);
                        }
                        _ => {}
                    }
                }
                Poll::Ready(Some(Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "the cached body is damaged",
                ))))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl Cache for DiskCache {
    fn lookup<'a>(
        &'a self,
        key: &'a CacheKey,
        request_headers: &'a HeaderMap,
    ) -> CacheFuture<'a, Option<CachedEntry>> {
        let inner = self.inner.clone();
        let text = inner.secret.stored_key(key);
        let primary = digest_hex(&text);
        let path = inner.entry_path(&primary, None);
        // A small entry read before and unchanged since: no read, no decode, no task.
        if let Some((entry, touch)) = inner.hot.get(&path, &text) {
            if touch {
                touch_in_background(inner, path);
            }
            return Box::pin(std::future::ready(Some(entry)));
        }
        let headers = request_headers.clone();
        let task = blocking(move || inner.lookup(&text, &primary, &headers));
        Box::pin(async move { task.await.flatten() })
    }

    fn begin_store(&self, key: &CacheKey, metadata: CacheMetadata) -> Box<dyn CacheWriter> {
        let text = self.inner.secret.stored_key(key);
        let primary = digest_hex(&text);
        // Credentials named by Vary are stored (and name the variant file) as keyed hashes.
        let metadata = self.inner.secret.seal(&metadata);
        let (variant, mut failed) = match vary_names(&metadata.headers) {
            // `Vary: *` never matches a request: not worth storing.
            None => (None, Some(io::ErrorKind::Unsupported)),
            Some(names) if names.is_empty() => (None, None),
            Some(names) => (
                Some((variant_hex(&names, &metadata.request_headers), names)),
                None,
            ),
        };
        let meta = format::encode_entry(&text, SystemTime::now(), &metadata);
        if !format::storable(&meta, Kind::Entry) {
            // More headers (or a longer URL) than a reader accepts: not stored.
            failed = Some(io::ErrorKind::InvalidInput);
        }
        if !metadata.save_to_disk {
            failed = Some(io::ErrorKind::Unsupported);
        }
        Box::new(DiskWriter {
            inner: self.inner.clone(),
            key: text,
            primary,
            variant,
            meta,
            buf: Vec::new(),
            temp: None,
            body_len: 0,
            crc: crc32fast::Hasher::new(),
            failed,
            lock: None,
        })
    }

    fn update_metadata<'a>(
        &'a self,
        key: &'a CacheKey,
        metadata: CacheMetadata,
    ) -> CacheFuture<'a, bool> {
        let inner = self.inner.clone();
        let text = inner.secret.stored_key(key);
        let primary = digest_hex(&text);
        let task = blocking(move || {
            inner
                .update_metadata(&text, &primary, &metadata)
                .unwrap_or(false)
        });
        Box::pin(async move { task.await.unwrap_or(false) })
    }

    fn remove<'a>(&'a self, key: &'a CacheKey) -> CacheFuture<'a, bool> {
        let inner = self.inner.clone();
        let primary = digest_hex(&inner.secret.stored_key(key));
        let task = blocking(move || inner.remove(&primary));
        Box::pin(async move { task.await.unwrap_or(false) })
    }

    fn clear(&self) -> CacheFuture<'_, ()> {
        let inner = self.inner.clone();
        let task = blocking(move || inner.clear());
        Box::pin(async move {
            task.await;
        })
    }

    fn size(&self) -> u64 {
        self.inner.size.load(Ordering::Relaxed)
    }

    fn is_shared(&self) -> bool {
        self.shared
    }

    fn entries(&self) -> CacheFuture<'_, Vec<EntryInfo>> {
        let inner = self.inner.clone();
        let task = blocking(move || inner.entries());
        Box::pin(async move { task.await.unwrap_or_default() })
    }

    fn remove_prefix<'a>(&'a self, url_prefix: &'a str) -> CacheFuture<'a, u64> {
        let inner = self.inner.clone();
        let prefix = url_prefix.to_owned();
        let task = blocking(move || inner.remove_prefix(&prefix));
        Box::pin(async move { task.await.unwrap_or(0) })
    }
}
