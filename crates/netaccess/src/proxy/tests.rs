//! Tests of `proxy`: parsing, factories, `no_proxy` rules and the environment.

use super::*;

fn url(s: &str) -> Url {
    Url::parse(s).unwrap()
}

#[test]
fn parse_proxy_urls() {
    let p = Proxy::parse("http://user:p%40ss%3Aw@Proxy.Example:3128/").unwrap();
    assert_eq!(p.kind(), ProxyKind::HttpProxy);
    assert_eq!((p.host(), p.port()), ("proxy.example", 3128));
    assert_eq!((p.user(), p.password()), ("user", "p@ss:w"));
    assert!(!p.remote_dns());

    let p = Proxy::parse("proxy.example").unwrap();
    assert_eq!((p.kind(), p.port()), (ProxyKind::HttpProxy, 8080));
    let p = Proxy::parse("proxy:80").unwrap();
    assert_eq!(p.port(), 80, "an explicit default port is kept");
    let p = Proxy::parse("HTTP://proxy:").unwrap();
    assert_eq!(p.port(), 8080);

    let p = Proxy::parse("socks5://u@[::1]:1081").unwrap();
    assert_eq!(p.kind(), ProxyKind::Socks5Proxy);
    assert_eq!(
        (p.host(), p.port(), p.user(), p.password()),
        ("::1", 1081, "u", "")
    );
    assert!(!p.remote_dns(), "socks5: local DNS");
    let p = Proxy::parse("socks5h://10.0.0.1").unwrap();
    assert_eq!((p.host(), p.port()), ("10.0.0.1", 1080));
    assert!(p.remote_dns(), "socks5h: remote DNS");
    let p = Proxy::parse("[fe80::1]").unwrap();
    assert_eq!((p.host(), p.port()), ("fe80::1", 8080));
    // The last @ separates the userinfo.
    let p = Proxy::parse("http://a@b:c@h:1").unwrap();
    assert_eq!((p.user(), p.password(), p.host()), ("a@b", "c", "h"));
    assert_eq!("  http://h:2  ".parse::<Proxy>().unwrap().port(), 2);

    assert_eq!(
        Proxy::parse("https://h:1"),
        Err(ProxyParseError::UnsupportedScheme("https".into()))
    );
    assert!(matches!(
        Proxy::parse("socks4://h"),
        Err(ProxyParseError::UnsupportedScheme(_))
    ));
    assert_eq!(Proxy::parse("http://"), Err(ProxyParseError::MissingHost));
    assert_eq!(
        Proxy::parse("http://u:p@:1"),
        Err(ProxyParseError::MissingHost)
    );
    assert_eq!(Proxy::parse("[::1"), Err(ProxyParseError::MissingHost));
    assert_eq!(
        Proxy::parse("h:0"),
        Err(ProxyParseError::InvalidPort("0".into()))
    );
    assert_eq!(
        Proxy::parse("h:99999"),
        Err(ProxyParseError::InvalidPort("99999".into()))
    );
    assert_eq!(
        Proxy::parse("h:x"),
        Err(ProxyParseError::InvalidPort("x".into()))
    );
    assert!(!ProxyParseError::MissingHost.to_string().is_empty());
}

#[test]
fn proxy_hosts_are_validated_cve_2022_27780() {
    for bad in [
        "http://127.0.0.1%2F.evil.test:3128",
        "http://h%2fpath",
        "http://a b:1",
        "http://h<x>",
        "http://1:2:3",
    ] {
        assert!(
            matches!(Proxy::parse(bad), Err(ProxyParseError::InvalidHost(_))),
            "{bad}"
        );
    }
    assert_eq!(
        Proxy::parse("http://127.0.0.%31:1").unwrap().host(),
        "127.0.0.1"
    );
    assert_eq!(Proxy::parse("http://::1").unwrap().host(), "::1");
    assert!(ProxyParseError::InvalidHost("x".into())
        .to_string()
        .contains("x"));
}

#[test]
fn percent_decoding() {
    assert_eq!(percent_decode("a%20b%e2%82%ac"), "a b\u{20ac}");
    assert_eq!(percent_decode("100%"), "100%");
    assert_eq!(percent_decode("%zz%4"), "%zz%4");
    assert_eq!(percent_decode("%+1"), "%+1");
    assert_eq!(percent_decode("%41"), "A");
}

#[test]
fn proxy_values() {
    let p = Proxy::http("h", 1)
        .with_credentials("u", "secret")
        .with_header(
            HeaderName::from_static("x-a"),
            HeaderValue::from_static("1"),
        );
    assert_eq!(p.headers()["x-a"], "1");
    let dbg = format!("{p:?}");
    assert!(
        dbg.contains("<redacted>") && !dbg.contains("secret"),
        "{dbg}"
    );
    assert!(Proxy::socks5("h", 1).remote_dns());
    assert!(!Proxy::socks5("h", 1).with_remote_dns(false).remote_dns());
    assert_eq!(Proxy::default().kind(), ProxyKind::DefaultProxy);
    assert_eq!(Proxy::no_proxy().kind(), ProxyKind::NoProxy);

    let mut q = p.clone();
    assert_eq!(p, q);
    q.set_password("other");
    assert_ne!(p, q);
    q.set_password("secret");
    q.headers_mut().clear();
    assert_ne!(p, q, "headers are compared");
    let hash = |p: &Proxy| {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        p.hash(&mut h);
        h.finish()
    };
    assert_eq!(hash(&p), hash(&p.clone()));
    let mut u = q.clone();
    u.set_user("v");
    assert_eq!(u.user(), "v");

    let http = url("http://x/");
    let https = url("https://x/");
    assert!(Proxy::http("h", 1).can_carry(&https));
    assert!(Proxy::new(ProxyKind::HttpCachingProxy, "h", 1).can_carry(&http));
    assert!(!Proxy::new(ProxyKind::HttpCachingProxy, "h", 1).can_carry(&https));
    assert!(!Proxy::no_proxy().can_carry(&http));
    assert!(!Proxy::default().can_carry(&http));
    assert!(Proxy::socks5("h", 1).can_carry(&https));
}

#[test]
fn factories() {
    let fixed = Proxy::http("h", 1);
    assert_eq!(fixed.query(&url("http://x/")), std::slice::from_ref(&fixed));
    let closure = |u: &Url| {
        if u.scheme() == "https" {
            vec![Proxy::socks5("s", 2), Proxy::no_proxy()]
        } else {
            vec![]
        }
    };
    let boxed: Box<dyn ProxyFactory> = Box::new(closure);
    assert_eq!(boxed.query(&url("https://x/")).len(), 2);
    assert!(boxed.query(&url("http://x/")).is_empty());
}

/// (no_proxy value, URL, expected bypass)
const NO_PROXY_TABLE: &[(&str, &str, bool)] = &[
    // Host suffix at a dot boundary.
    ("example.com", "http://example.com/", true),
    ("example.com", "http://a.example.com/", true),
    ("example.com", "http://a.b.example.com:8080/", true),
    ("example.com", "http://badexample.com/", false),
    ("example.com", "http://example.com.evil/", false),
    ("example.com", "http://com/", false),
    // Case and trailing dots.
    ("Example.COM.", "http://WWW.example.com./", true),
    // Leading dot and "*." are spellings of the same rule.
    (".example.com", "http://example.com/", true),
    (".example.com", "http://a.example.com/", true),
    (".example.com", "http://badexample.com/", false),
    ("*.example.com", "http://example.com/", true),
    ("*.example.com", "http://a.example.com/", true),
    ("*.example.com", "http://badexample.com/", false),
    // Invalid wildcard forms are ignored.
    ("*example.com", "http://badexample.com/", false),
    ("*example.com", "http://example.com/", false),
    // "*" alone, anywhere in the list.
    ("*", "http://anything.test/", true),
    ("*", "https://10.0.0.1:9/", true),
    ("foo.test, *", "http://bar.test/", true),
    ("*foo", "http://bar/", false),
    // Separators: commas and/or white space.
    ("a.test,b.test", "http://b.test/", true),
    ("a.test b.test", "http://b.test/", true),
    (" a.test ,\tb.test\n, ,", "http://b.test/", true),
    ("a.test,b.test", "http://c.test/", false),
    ("", "http://a.test/", false),
    // IP addresses.
    ("127.0.0.1", "http://127.0.0.1:3000/", true),
    ("127.0.0.1", "http://127.0.0.2/", false),
    ("127.0.0.1", "http://localhost/", false),
    ("localhost", "http://localhost:8080/", true),
    ("localhost", "http://127.0.0.1/", false),
    ("::1", "http://[::1]/", true),
    ("[::1]", "http://[::1]:81/", true),
    ("0:0:0:0:0:0:0:1", "http://[::1]/", true),
    ("::1", "http://[::2]/", false),
    ("::1", "http://127.0.0.1/", false),
    // An IP entry is not a host-name suffix.
    ("0.0.1", "http://127.0.0.1/", false),
    // CIDR ranges, v4 and v6.
    ("10.0.0.0/8", "http://10.200.3.4/", true),
    ("10.0.0.0/8", "http://11.0.0.1/", false),
    ("192.168.1.0/24", "http://192.168.1.255/", true),
    ("192.168.1.0/24", "http://192.168.2.1/", false),
    ("192.168.1.77/24", "http://192.168.1.1/", true),
    ("0.0.0.0/0", "http://8.8.8.8/", true),
    ("0.0.0.0/0", "http://[::1]/", false),
    ("10.1.2.3/32", "http://10.1.2.3/", true),
    ("10.1.2.3/32", "http://10.1.2.4/", false),
    ("fd00::/8", "http://[fd12:3456::1]/", true),
    ("fd00::/8", "http://[fe80::1]/", false),
    ("[2001:db8::]/32", "http://[2001:db8:1::5]/", true),
    ("::/0", "http://[2001:db8::1]/", true),
    ("::/0", "http://10.0.0.1/", false),
    ("10.0.0.0/33", "http://10.0.0.1/", false),
    ("10.0.0.0/x", "http://10.0.0.1/", false),
    // Ranges do not resolve names.
    ("10.0.0.0/8", "http://intranet/", false),
    // Ports: the URL's port or its scheme's default.
    ("example.com:8080", "http://example.com:8080/", true),
    ("example.com:8080", "http://a.example.com:8080/", true),
    ("example.com:8080", "http://example.com/", false),
    ("example.com:80", "http://example.com/", true),
    ("example.com:443", "https://example.com/", true),
    ("example.com:443", "http://example.com/", false),
    ("10.1.2.3:80", "http://10.1.2.3/", true),
    ("10.1.2.3:80", "http://10.1.2.3:81/", false),
    ("[::1]:8443", "https://[::1]:8443/", true),
    ("[::1]:8443", "https://[::1]/", false),
    ("example.com:0", "http://example.com/", false),
    ("example.com:x", "http://example.com/", false),
    // URLs without a host.
    ("example.com", "data:,hello", false),
];

#[test]
fn no_proxy_rules_table() {
    for &(rules, u, expected) in NO_PROXY_TABLE {
        let parsed = NoProxyRules::parse(rules);
        assert_eq!(
            parsed.matches(&url(u)),
            expected,
            "no_proxy={rules:?} url={u}"
        );
    }
}

#[test]
fn no_proxy_matches_host() {
    let rules: NoProxyRules = "example.com, 10.0.0.0/8, [::1]:99".parse().unwrap();
    assert!(rules.matches_host("a.example.com", None));
    assert!(rules.matches_host("10.2.3.4", Some(1)));
    assert!(rules.matches_host("[::1]", Some(99)));
    assert!(!rules.matches_host("::1", Some(98)));
    assert!(!rules.is_empty() && !rules.matches_all());
    assert!(NoProxyRules::parse(" , ").is_empty());
    assert!(NoProxyRules::parse("*").matches_all());
}

fn factory(vars: &[(&str, &str)]) -> EnvProxyFactory {
    EnvProxyFactory::from_vars(vars.iter().copied())
}

fn chosen(f: &EnvProxyFactory, u: &str) -> Option<String> {
    let proxies = f.query(&url(u));
    assert_eq!(proxies.len(), 1);
    let p = &proxies[0];
    (p.kind() != ProxyKind::NoProxy).then(|| format!("{}:{}", p.host(), p.port()))
}

#[test]
fn env_scheme_routing() {
    let f = factory(&[
        ("http_proxy", "http://hp:1"),
        ("https_proxy", "hsp:2"),
        ("all_proxy", "socks5h://ap:3"),
    ]);
    assert_eq!(chosen(&f, "http://x/").as_deref(), Some("hp:1"));
    assert_eq!(chosen(&f, "ws://x/").as_deref(), Some("hp:1"));
    assert_eq!(chosen(&f, "https://x/").as_deref(), Some("hsp:2"));
    assert_eq!(chosen(&f, "wss://x/").as_deref(), Some("hsp:2"));
    assert_eq!(chosen(&f, "ftp://x/").as_deref(), Some("ap:3"));
    assert_eq!(chosen(&f, "data:,x"), None);
    assert_eq!(chosen(&f, "file:///etc/hosts"), None);

    // all_proxy is the fallback for http and https too.
    let f = factory(&[("ALL_PROXY", "socks5://ap:3")]);
    assert_eq!(chosen(&f, "http://x/").as_deref(), Some("ap:3"));
    assert_eq!(chosen(&f, "https://x/").as_deref(), Some("ap:3"));
    assert!(!f.all_proxy().unwrap().remote_dns());
    assert!(f.http_proxy().is_none() && f.https_proxy().is_none());

    // Nothing set: direct.
    let f = factory(&[("PATH", "/bin")]);
    assert_eq!(chosen(&f, "http://x/"), None);
    assert_eq!(f, EnvProxyFactory::default());
}

#[test]
fn env_lower_case_wins() {
    let f = factory(&[("HTTP_PROXY", "upper:1"), ("http_proxy", "lower:2")]);
    assert_eq!(chosen(&f, "http://x/").as_deref(), Some("lower:2"));
    let f = factory(&[("https_proxy", "lower:2"), ("HTTPS_PROXY", "upper:1")]);
    assert_eq!(chosen(&f, "https://x/").as_deref(), Some("lower:2"));
    // Upper case alone is read.
    let f = factory(&[("HTTPS_PROXY", "upper:1")]);
    assert_eq!(chosen(&f, "https://x/").as_deref(), Some("upper:1"));
    let f = factory(&[("HTTP_PROXY", "upper:1")]);
    assert_eq!(chosen(&f, "http://x/").as_deref(), Some("upper:1"));
    // A set but empty lower-case variable hides the upper-case one, and falls back to
    // all_proxy.
    let f = factory(&[
        ("http_proxy", ""),
        ("HTTP_PROXY", "upper:1"),
        ("all_proxy", "all:3"),
    ]);
    assert_eq!(chosen(&f, "http://x/").as_deref(), Some("all:3"));
    let f = factory(&[("no_proxy", ""), ("NO_PROXY", "x"), ("http_proxy", "p:1")]);
    assert_eq!(chosen(&f, "http://x/").as_deref(), Some("p:1"));
    // Later pairs replace earlier ones.
    let f = factory(&[("http_proxy", "a:1"), ("http_proxy", "b:2")]);
    assert_eq!(chosen(&f, "http://x/").as_deref(), Some("b:2"));
}

#[test]
fn env_cgi_ignores_upper_case_http_proxy() {
    let f = factory(&[("REQUEST_METHOD", "GET"), ("HTTP_PROXY", "evil:1")]);
    assert_eq!(chosen(&f, "http://x/"), None);
    let f = factory(&[("REQUEST_METHOD", "GET"), ("http_proxy", "good:1")]);
    assert_eq!(chosen(&f, "http://x/").as_deref(), Some("good:1"));
    let f = factory(&[("REQUEST_METHOD", "GET"), ("HTTPS_PROXY", "ok:1")]);
    assert_eq!(chosen(&f, "https://x/").as_deref(), Some("ok:1"));
}

#[test]
fn env_proxy_urls_and_invalid_values() {
    let f = factory(&[
        ("http_proxy", "http://u%3A1:p%20w@h:1"),
        ("https_proxy", "https://tls-proxy:443"),
        ("all_proxy", "socks5h://[::1]"),
    ]);
    let p = f.http_proxy().unwrap();
    assert_eq!((p.user(), p.password()), ("u:1", "p w"));
    // An unsupported https:// proxy is ignored: all_proxy applies.
    assert!(f.https_proxy().is_none());
    let all = f.all_proxy().unwrap();
    assert_eq!(
        (all.host(), all.port(), all.remote_dns()),
        ("::1", 1080, true)
    );
    assert_eq!(chosen(&f, "https://x/").as_deref(), Some("::1:1080"));
}

#[test]
fn env_no_proxy() {
    let f = factory(&[
        ("http_proxy", "p:1"),
        ("https_proxy", "p:2"),
        ("NO_PROXY", "internal.test, 10.0.0.0/8 .corp.test:8080"),
    ]);
    assert_eq!(chosen(&f, "http://internal.test/"), None);
    assert_eq!(chosen(&f, "https://a.internal.test/"), None);
    assert_eq!(chosen(&f, "http://10.9.9.9/"), None);
    assert_eq!(chosen(&f, "http://x.corp.test:8080/"), None);
    assert_eq!(chosen(&f, "http://x.corp.test/").as_deref(), Some("p:1"));
    assert_eq!(chosen(&f, "https://public.test/").as_deref(), Some("p:2"));
    assert_eq!(
        chosen(&f, "http://notinternal.test/").as_deref(),
        Some("p:1")
    );

    let f = factory(&[("all_proxy", "p:1"), ("no_proxy", "*")]);
    assert_eq!(chosen(&f, "http://x/"), None);
    // A --no-proxy override.
    let f = f.with_no_proxy(NoProxyRules::parse("y"));
    assert_eq!(chosen(&f, "http://x/").as_deref(), Some("p:1"));
    assert_eq!(chosen(&f, "http://y/"), None);
    assert!(!f.no_proxy().matches_all());
}

#[test]
fn from_env_reads_the_process_environment() {
    // Only checks that it runs; the rules are tested through from_vars.
    let _ = EnvProxyFactory::from_env();
}
