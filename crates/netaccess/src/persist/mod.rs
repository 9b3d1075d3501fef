//! State files kept across runs (the cookie jar, the HSTS store, the disk cache's entries and
//! key): the one place that creates private files and folders, writes them atomically, and
//! serialises the read-merge-write of processes that save the same file.
//!
//! - Files are created owner-only (0600, folders 0700) with `O_EXCL` (`create_new`), so a
//!   file planted at a temporary name (or a symlink there) is never written through. When a
//!   state file is replaced, the new file keeps the old one's mode if that is stricter.
//! - A save is a temporary file in the same folder, written and fsynced, renamed over the
//!   target, then the folder fsynced: a reader sees the old or the new file, never a torn one.
//! - `update_locked` takes an exclusive lock (`flock` on a `.<name>.lock` file beside the
//!   target, kept between runs), re-reads the target, lets the caller merge, and writes, so two
//!   processes saving one file keep each other's entries (CVE-2023-23915). `merge3` is the
//!   three-way merge both stores use.
//!
//! The creation of private files and folders is here; the saves, the lock and the JSON are in
//! `store`, built with the cookie jar's or the HSTS store's persistence (cargo features
//! `cookies`, `hsts`).

#[cfg(any(feature = "cookies", feature = "hsts"))]
mod store;

use std::fs::{File, OpenOptions};
use std::io;
use std::path::Path;

#[cfg(any(feature = "cookies", feature = "hsts"))]
pub(crate) use store::{
    from_unix_millis, invalid, merge3, parse_json, read_required, to_unix_millis, update_locked,
};

/// The mode of every state file this crate creates: read and write for the owner only.
pub(crate) const PRIVATE_FILE_MODE: u32 = 0o600;
/// The mode of every folder this crate creates for its state (the disk cache's).
#[cfg(feature = "disk-cache")]
pub(crate) const PRIVATE_DIR_MODE: u32 = 0o700;

/// Creates `path` (which must not exist: `O_EXCL`, no symlink followed) for writing, with
/// `mode` on Unix.
pub(crate) fn create_new_private(path: &Path, mode: u32) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.write(true).read(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(mode);
    }
    #[cfg(not(unix))]
    let _ = mode;
    options.open(path)
}

/// `fs::create_dir_all` with every folder it creates owner-only (0700 on Unix). Folders that
/// exist already are left as they are.
#[cfg(feature = "disk-cache")]
pub(crate) fn create_private_dir_all(path: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(PRIVATE_DIR_MODE)
            .create(path)
    }
    #[cfg(not(unix))]
    {
        std::fs::create_dir_all(path)
    }
}
