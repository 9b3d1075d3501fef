//! Defaults for `netaccess get` from a TOML file: `$NETACCESS_CONFIG` (empty: none), else
//! `$XDG_CONFIG_HOME/netaccess/config`, else `~/.config/netaccess/config`. A missing file is no
//! error; `--no-config` skips it.
//!
//! Keys are the long names of `get`'s flags (`max-per-host = 4`, `retry = 3`,
//! `header = ["Accept-Language: en"]`, `cache = true`; `_` may stand for `-`). Each becomes
//! arguments placed before the command line's, so the command line wins: a flag given there
//! replaces the file's value, and repeatable flags (`header`) add to it. `true` gives a
//! switch, `false` leaves it out; an array repeats the flag. Per-URL flags (`output`,
//! `checksum`) and `input-file` are refused, as are unknown keys, tables and values of the
//! wrong kind: all exit 2, naming the file and the key.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use clap::Command;

/// A config file larger than this is refused.
const MAX_CONFIG: u64 = 1024 * 1024;

/// Flags a config file may not set: they belong to a URL or bring URLs.
const REFUSED: [&str; 3] = ["output", "checksum", "input-file"];

/// The config file to read, if any.
pub fn path() -> Option<PathBuf> {
    if let Some(value) = std::env::var_os("NETACCESS_CONFIG") {
        return (!value.is_empty()).then(|| PathBuf::from(value));
    }
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|v| !v.is_empty())
                .map(|h| PathBuf::from(h).join(".config"))
        })?;
    Some(base.join("netaccess").join("config"))
}

/// The arguments a config file stands for, checked against `get`'s flags.
pub fn arguments(get: &Command, file: &Path) -> Result<Vec<OsString>, String> {
    let shown = file.display();
    let meta = match std::fs::metadata(file) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(format!("config {shown}: {e}")),
    };
    if meta.len() > MAX_CONFIG {
        return Err(format!("config {shown} is larger than {MAX_CONFIG} bytes"));
    }
    let text = std::fs::read_to_string(file).map_err(|e| format!("config {shown}: {e}"))?;
    let table: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| format!("config {shown}: {}", e.message()))?;
    let mut out = Vec::new();
    for (key, value) in &table {
        let long = key.replace('_', "-");
        let arg = get
            .get_arguments()
            .find(|a| a.get_long() == Some(long.as_str()))
            .filter(|_| !REFUSED.contains(&long.as_str()))
            .ok_or_else(|| {
                format!("config {shown}: {key:?} is not a flag of `get` a config file may set")
            })?;
        let takes_value = arg.get_action().takes_values();
        let flag = OsString::from(format!("--{long}"));
        let values: Vec<&toml::Value> = match value {
            toml::Value::Array(items) => items.iter().collect(),
            single => vec![single],
        };
        for value in values {
            match (value, takes_value) {
                (toml::Value::Boolean(true), false) => out.push(flag.clone()),
                (toml::Value::Boolean(false), false) => {}
                (toml::Value::String(s), true) => {
                    out.push(flag.clone());
                    out.push(s.into());
                }
                (toml::Value::Integer(n), true) => {
                    out.push(flag.clone());
                    out.push(n.to_string().into());
                }
                (toml::Value::Float(x), true) => {
                    out.push(flag.clone());
                    out.push(x.to_string().into());
                }
                _ => {
                    let wanted = if takes_value {
                        "a string or a number"
                    } else {
                        "true or false"
                    };
                    return Err(format!("config {shown}: {key} wants {wanted}"));
                }
            }
        }
    }
    Ok(out)
}

/// The command line with the config file's arguments put right after `get` (unless
/// `--no-config` is given, or the subcommand is not `get`).
pub fn with_config(cli: &Command, args: Vec<OsString>) -> Result<Vec<OsString>, String> {
    let is_get = args.get(1).is_some_and(|a| a == "get");
    let skipped = args
        .iter()
        .skip(2)
        .take_while(|a| *a != "--")
        .any(|a| a == "--no-config");
    if !is_get || skipped {
        return Ok(args);
    }
    let (Some(file), Some(get)) = (path(), cli.find_subcommand("get")) else {
        return Ok(args);
    };
    let extra = arguments(get, &file)?;
    let mut out = Vec::with_capacity(args.len() + extra.len());
    out.extend(args.iter().take(2).cloned());
    out.extend(extra);
    out.extend(args.into_iter().skip(2));
    Ok(out)
}
