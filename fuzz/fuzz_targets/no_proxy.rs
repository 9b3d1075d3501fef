//! `no_proxy` rules (proxy.rs `NoProxyRules`): the first input line is the rule list, the
//! others are hosts (with an optional `:port`) to match. Properties: `*` matches everything;
//! a rule list matches a host exactly when one of its entries, parsed alone, does; a domain
//! entry matches itself and its subdomains (at a dot boundary only), an IP entry its address.
#![no_main]

use libfuzzer_sys::fuzz_target;
use netaccess::proxy::NoProxyRules;

fn entries(list: &str) -> impl Iterator<Item = &str> {
    list.split(|c: char| c == ',' || c.is_whitespace())
        .filter(|e| !e.is_empty())
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut lines = text.split('\n');
    let list = lines.next().unwrap_or_default();
    let rules = NoProxyRules::parse(list);
    assert_eq!(rules.matches_all(), entries(list).any(|e| e == "*"));
    let singles: Vec<NoProxyRules> = entries(list).take(32).map(NoProxyRules::parse).collect();
    let complete = entries(list).count() <= 32;

    for line in lines.take(8) {
        let (host, port) = match line.rsplit_once(':') {
            Some((h, p)) if !h.contains(':') || h.ends_with(']') => (h, p.parse::<u16>().ok()),
            _ => (line, None),
        };
        let m = rules.matches_host(host, port);
        if rules.matches_all() {
            assert!(m);
        } else if complete {
            assert_eq!(
                m,
                singles.iter().any(|s| s.matches_host(host, port)),
                "{list:?} {line:?}"
            );
        }
        if let Ok(url) = url::Url::parse(&format!("http://{line}/")) {
            let _ = rules.matches(&url);
        }
    }

    // Each plain domain entry matches itself and subdomains, not a longer name.
    for entry in entries(list).take(8) {
        // One leading `*.` or `.` is a spelling; a name with an empty label is not a name.
        let name = entry
            .strip_prefix("*.")
            .or_else(|| entry.strip_prefix('.'))
            .unwrap_or(entry)
            .trim_end_matches('.');
        let plain = !name.is_empty()
            && !name.starts_with('.')
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
            && name.parse::<std::net::IpAddr>().is_err()
            && !name.contains("..");
        if plain {
            let single = NoProxyRules::parse(entry);
            assert!(single.matches_host(name, Some(80)), "{entry:?}");
            assert!(single.matches_host(&format!("a.{name}"), None), "{entry:?}");
            assert!(
                single.matches_host(&name.to_ascii_uppercase(), None),
                "{entry:?}"
            );
            assert!(!single.matches_host(&format!("a{name}"), None), "{entry:?}");
        }
        if let Ok(ip) = entry.parse::<std::net::IpAddr>() {
            assert!(
                NoProxyRules::parse(entry).matches_host(&ip.to_string(), Some(1)),
                "{entry:?}"
            );
        }
    }
});
