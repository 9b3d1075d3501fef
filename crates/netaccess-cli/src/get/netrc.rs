//! `.netrc` (`--netrc`, `--netrc-file`): `machine HOST login USER password PASS` entries (a
//! `default` entry is parsed and ignored), white-space separated, `#` comments, `macdef` blocks skipped up to the next
//! empty line, double-quoted values with `\` escapes (a quoted `"macdef"` is a value). Credentials are looked up by host
//! alone, the way the file names them; when they are given is [`super::mod`]'s rule: only to
//! a 401 from the origin of the URL the user gave, never after a redirect to another one.

use std::path::{Path, PathBuf};

/// A `.netrc` larger than this is refused (it holds a few lines).
const MAX_NETRC: u64 = 1024 * 1024;

/// The entries of a `.netrc`.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Netrc {
    pub(super) machines: Vec<(String, String, String)>,
    pub(super) default: Option<(String, String)>,
}

/// `~/.netrc` (or `$NETRC`).
pub(super) fn default_path() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("NETRC").filter(|v| !v.is_empty()) {
        return Some(PathBuf::from(path));
    }
    std::env::var_os("HOME")
        .filter(|v| !v.is_empty())
        .map(|home| PathBuf::from(home).join(".netrc"))
}

/// Splits into tokens; a `macdef` body (to the next empty line) is dropped.
fn tokens(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        let mut chars = line.chars().peekable();
        loop {
            while chars.next_if(|c| c.is_whitespace()).is_some() {}
            let Some(&c) = chars.peek() else { break };
            if c == '#' {
                break;
            }
            let mut token = String::new();
            let quoted = c == '"';
            if quoted {
                chars.next();
                while let Some(c) = chars.next() {
                    match c {
                        '"' => break,
                        '\\' => token.extend(chars.next()),
                        c => token.push(c),
                    }
                }
            } else {
                while let Some(c) = chars.next_if(|c| !c.is_whitespace()) {
                    token.push(c);
                }
            }
            if token == "macdef" && !quoted {
                // The macro's name is on this line; its body runs to an empty line.
                for body in lines.by_ref() {
                    if body.trim().is_empty() {
                        break;
                    }
                }
                break;
            }
            out.push(token);
        }
    }
    out
}

impl Netrc {
    pub(super) fn parse(text: &str) -> Netrc {
        let mut netrc = Netrc::default();
        // (machine or None for default, login, password) being read.
        let mut current: Option<(Option<String>, String, String)> = None;
        let flush = |netrc: &mut Netrc, entry: Option<(Option<String>, String, String)>| match entry
        {
            Some((Some(host), login, password)) => {
                netrc
                    .machines
                    .push((host.to_ascii_lowercase(), login, password));
            }
            Some((None, login, password)) if netrc.default.is_none() => {
                netrc.default = Some((login, password));
            }
            _ => {}
        };
        let mut tokens = tokens(text).into_iter();
        while let Some(token) = tokens.next() {
            match token.as_str() {
                "machine" => {
                    flush(&mut netrc, current.take());
                    current = tokens
                        .next()
                        .map(|h| (Some(h), String::new(), String::new()));
                }
                "default" => {
                    flush(&mut netrc, current.take());
                    current = Some((None, String::new(), String::new()));
                }
                "login" => {
                    let value = tokens.next().unwrap_or_default();
                    if let Some(entry) = &mut current {
                        entry.1 = value;
                    }
                }
                "password" => {
                    let value = tokens.next().unwrap_or_default();
                    if let Some(entry) = &mut current {
                        entry.2 = value;
                    }
                }
                "account" => {
                    tokens.next();
                }
                _ => {}
            }
        }
        flush(&mut netrc, current);
        netrc
    }

    pub(super) fn load(path: &Path) -> Result<Netrc, String> {
        let meta =
            std::fs::metadata(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        if meta.len() > MAX_NETRC {
            return Err(format!(
                "{} is larger than {MAX_NETRC} bytes",
                path.display()
            ));
        }
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        Ok(Netrc::parse(&text))
    }

    /// The login and password for `host`: the first `machine` that names it. A `default`
    /// entry is read but never used: credentials go only to the host they name.
    pub(super) fn lookup(&self, host: &str) -> Option<(&str, &str)> {
        let host = host.to_ascii_lowercase();
        self.machines
            .iter()
            .find(|(h, _, _)| *h == host)
            .map(|(_, l, p)| (l.as_str(), p.as_str()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn machines_default_quotes_and_macros() {
        let netrc = Netrc::parse(
            "# mine\nmachine Example.org login alice password \"s e\\\"c\"\n\
             macdef init\ncd /pub\nget x\n\n\
             machine other login bob account x password pw2\n\
             default login anon password guest\n",
        );
        assert_eq!(netrc.lookup("example.org"), Some(("alice", "s e\"c")));
        assert_eq!(netrc.lookup("other"), Some(("bob", "pw2")));
        assert_eq!(netrc.lookup("elsewhere"), None, "default names no host");
        assert_eq!(netrc.default, Some(("anon".into(), "guest".into())));
        assert_eq!(Netrc::parse("machine a login b").lookup("c"), None);
    }

    #[test]
    fn a_quoted_macdef_is_a_value() {
        // Found writing the netrc fuzz target's round trip: a password "macdef", quoted, started a
        // macro and dropped the lines after it.
        let netrc =
            Netrc::parse("machine a login u password \"macdef\"\nmachine b login v password w\n");
        assert_eq!(netrc.lookup("a"), Some(("u", "macdef")));
        assert_eq!(netrc.lookup("b"), Some(("v", "w")));
    }
}
