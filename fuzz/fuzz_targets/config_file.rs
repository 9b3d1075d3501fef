//! The config file (`netaccess-cli/src/config.rs` `arguments`): any file gives arguments or
//! an error naming the file; the arguments are `get` flags a config may set, each switch alone
//! and each value flag with its value; written back as TOML (a key per flag, an array of its
//! values) they give the same values for every flag, in the same order.
#![no_main]

use std::collections::BTreeMap;
use std::ffi::OsString;

use libfuzzer_sys::fuzz_target;
use netaccess_cli::__fuzz::{config_arguments, get_flags};
use netaccess_fuzz::scratch_dir;

const REFUSED: [&str; 3] = ["output", "checksum", "input-file"];

/// Flag -> its values in order (`None` for a switch).
fn group(
    args: &[OsString],
    flags: &BTreeMap<String, bool>,
) -> BTreeMap<String, Vec<Option<String>>> {
    let mut out: BTreeMap<String, Vec<Option<String>>> = BTreeMap::new();
    let mut args = args
        .iter()
        .map(|a| a.to_str().expect("config values are UTF-8"));
    while let Some(flag) = args.next() {
        let long = flag
            .strip_prefix("--")
            .unwrap_or_else(|| panic!("{flag:?} is no flag"));
        let takes_value = *flags
            .get(long)
            .unwrap_or_else(|| panic!("{long:?} is no get flag"));
        assert!(!REFUSED.contains(&long), "{long:?} may not be set");
        let value = takes_value.then(|| args.next().expect("a value follows").to_owned());
        out.entry(long.to_owned()).or_default().push(value);
    }
    out
}

fn toml_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fuzz_target!(|data: &[u8]| {
    let path = scratch_dir().join("config");
    std::fs::write(&path, data).expect("scratch file");
    let args = match config_arguments(&path) {
        Ok(args) => args,
        Err(message) => {
            assert!(message.starts_with("config "), "{message:?}");
            return;
        }
    };
    assert!(args.len() <= 2 * data.len());
    let flags: BTreeMap<String, bool> = get_flags().into_iter().collect();
    let grouped = group(&args, &flags);
    let mut written = String::new();
    for (flag, values) in &grouped {
        let items: Vec<String> = values
            .iter()
            .map(|v| v.as_deref().map_or("true".to_owned(), toml_string))
            .collect();
        written.push_str(&format!("{} = [{}]\n", toml_string(flag), items.join(", ")));
    }
    std::fs::write(&path, &written).expect("scratch file");
    let again = config_arguments(&path).unwrap_or_else(|e| panic!("{written:?}: {e}"));
    assert_eq!(
        group(&again, &flags),
        grouped,
        "written back as {written:?}"
    );
});
