//! The IETF http-state cookie tests (RFC 6265), run against `DefaultCookieJar`.
//!
//! Data: `tests/http-state/` (a copy of the project's shared conformance data; see its
//! README). Every case must pass or be listed, with a reason, in
//! `tests/cookie_expected_failures.txt`; a listed case that passes fails the test too, so the
//! list stays accurate.
// The parser cases need the `cookies` feature (the public-suffix list); the date cases do not.
#![cfg_attr(not(feature = "cookies"), allow(unused_imports, dead_code))]

use std::collections::BTreeMap;
use std::path::PathBuf;

use netaccess::url::Url;
use netaccess::{Cookie, CookieJar, DefaultCookieJar};
use serde_json::Value;

fn data(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// `ID: reason` lines; `#` starts a comment.
fn expected_failures() -> BTreeMap<String, String> {
    let mut map = BTreeMap::new();
    for line in data("cookie_expected_failures.txt").lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (id, reason) = line
            .split_once(':')
            .unwrap_or_else(|| panic!("expected-failure line without a reason: {line}"));
        let reason = reason.trim();
        assert!(!reason.is_empty(), "{id}: a written reason is required");
        assert!(
            map.insert(id.trim().to_owned(), reason.to_owned())
                .is_none(),
            "{id} is listed twice"
        );
    }
    map
}

fn run_parser_case(case: &Value) -> Result<(), String> {
    let base = Url::parse("http://home.example.org:8888/cookie-parser").unwrap();
    let received: Vec<&str> = case["received"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    let target = match case.get("sent-to").and_then(Value::as_str) {
        Some(to) => base.join(to).unwrap(),
        None => Url::parse("http://home.example.org:8888/cookie-parser-result").unwrap(),
    };
    let expected: Vec<(String, String)> = case["sent"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap().to_owned(),
                c["value"].as_str().unwrap().to_owned(),
            )
        })
        .collect();

    let jar = DefaultCookieJar::new();
    jar.store_response_cookies(&base, &received);
    let sent: Vec<(String, String)> = jar
        .cookies_for_url(&target)
        .into_iter()
        .map(|c| (c.name, c.value))
        .collect();
    if sent == expected {
        Ok(())
    } else {
        Err(format!("sent {sent:?}, expected {expected:?}"))
    }
}

#[cfg(feature = "cookies")] // the domain cases need the public-suffix list
#[test]
fn http_state_parser_cases() {
    let cases: Vec<Value> = serde_json::from_str(&data("http-state/parser.json")).unwrap();
    assert_eq!(cases.len(), 222, "the suite has 222 cases");
    let mut expected = expected_failures();
    let mut passed = 0;
    let mut failed_as_expected = 0;
    let mut problems = Vec::new();
    for case in &cases {
        let id = case["test"].as_str().unwrap();
        let outcome = run_parser_case(case);
        match (outcome, expected.remove(id)) {
            (Ok(()), None) => passed += 1,
            (Err(_), Some(_)) => failed_as_expected += 1,
            (Err(why), None) => problems.push(format!("{id} failed: {why}")),
            (Ok(()), Some(_)) => problems.push(format!(
                "{id} passes but is listed as an expected failure: remove it from the list"
            )),
        }
    }
    // Any ids left over are for date cases or unknown.
    let stray: Vec<&String> = expected
        .keys()
        .filter(|id| !id.starts_with("date:"))
        .collect();
    assert!(
        stray.is_empty(),
        "expected failures for unknown cases: {stray:?}"
    );
    println!(
        "http-state: {passed}/{} passed, {failed_as_expected} expected failures",
        cases.len()
    );
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn http_state_date_cases() {
    let cases: Vec<Value> = serde_json::from_str(&data("http-state/dates-examples.json")).unwrap();
    assert_eq!(cases.len(), 15, "the suite has 15 date cases");
    let expected = expected_failures();
    let mut passed = 0;
    let mut failed_as_expected = 0;
    let mut problems = Vec::new();
    for case in &cases {
        let input = case["test"].as_str().unwrap();
        let want = case["expected"].as_str();
        // The date goes through the cookie parser (Expires) and back out of `to_raw_form`.
        let cookie = Cookie::parse_set_cookie(&format!("a=b; Expires={input}")).unwrap();
        let raw = cookie.to_raw_form(true);
        let got = raw.strip_prefix("a=b; Expires=");
        let ok = got == want && (want.is_some() || raw == "a=b");
        let listed = expected.contains_key(&format!("date:{input}"));
        match (ok, listed) {
            (true, false) => passed += 1,
            (false, true) => failed_as_expected += 1,
            (false, false) => problems.push(format!("{input:?}: got {got:?}, expected {want:?}")),
            (true, true) => problems.push(format!("{input:?} passes but is listed")),
        }
    }
    println!(
        "cookie dates: {passed}/{} passed, {failed_as_expected} expected failures",
        cases.len()
    );
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
