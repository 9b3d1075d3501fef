//! The `netaccess` binary's parsers, for the fuzz targets in `fuzz/` only (docs/fuzzing.md).
//!
//! Empty unless the cargo feature `fuzzing` (off by default) is on. Then it compiles the
//! binary's own source files of the parsers (the `-i` list lines, `.netrc`, cookies.txt, the
//! `.part` sidecar, the `-w` template, the config file) into this library as they are, with
//! the `get` flags they check, and adds thin public entry points over them in the hidden
//! module `__fuzz`: the fuzzed code is the code the binary runs. Not an API.

#[cfg(feature = "fuzzing")]
#[allow(dead_code)]
mod config;
#[cfg(feature = "fuzzing")]
#[allow(dead_code)]
mod output;

/// The parser files of `get/` (not its download code), beside the entry points that reach
/// their `pub(super)` items.
#[cfg(feature = "fuzzing")]
#[allow(dead_code)]
mod get {
    mod args;
    mod cookies_txt;
    mod jobs;
    mod netrc;
    mod partial;
    mod writeout;

    pub use args::GetArgs;

    #[path = "../fuzzing.rs"]
    pub mod fuzzing;
}

#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub use get::fuzzing as __fuzz;
