//! `-w/--write-out TEMPLATE` and the `timings` object of `--json`: a reply's
//! [`Timings`](netaccess::events::Timings) under curl's variable names.
//!
//! A template is text with `%{name}` variables and `\n`, `\t`, `\\` escapes (as curl's);
//! `%{json}` is every variable as one JSON object. An unknown variable is kept as written.

use netaccess::events::Timings;
use netaccess::Reply;
use serde_json::{json, Map, Value};

/// What a template can name, besides the reply's timings.
pub(super) struct Facts<'a> {
    pub reply: &'a Reply,
    pub url: &'a str,
    pub bytes: u64,
}

/// Seconds with curl's six decimals; 0 for a phase the request did not go through.
fn seconds(phase: Option<std::time::Duration>) -> f64 {
    let micros = phase.map_or(0, |d| d.as_micros());
    micros as f64 / 1e6
}

/// Every variable, by curl's name.
pub(super) fn variables(facts: &Facts<'_>) -> Map<String, Value> {
    let t: Timings = facts.reply.timings();
    let mut out = Map::new();
    let mut put = |name: &str, value: Value| {
        out.insert(name.to_owned(), value);
    };
    put("time_queue", json!(seconds(t.queued)));
    put("time_namelookup", json!(seconds(t.dns_done)));
    put("time_connect", json!(seconds(t.connected)));
    put("time_appconnect", json!(seconds(t.tls_done)));
    put("time_pretransfer", json!(seconds(t.request_sent)));
    put("time_starttransfer", json!(seconds(t.first_byte)));
    put("time_total", json!(seconds(t.total)));
    put("num_connects", json!(t.connects));
    put("connection_reused", json!(t.reused_connection));
    put(
        "remote_ip",
        json!(t.remote_addr.map(|a| a.ip().to_string())),
    );
    put("remote_port", json!(t.remote_addr.map(|a| a.port())));
    put("http_code", json!(facts.reply.status_code().unwrap_or(0)));
    let version = t.protocol.map(|v| format!("{v:?}"));
    put("http_version", json!(version));
    put("num_retries", json!(facts.reply.retries()));
    put("size_download", json!(facts.bytes));
    put("url", json!(facts.url));
    put(
        "url_effective",
        json!(netaccess::display_url(&facts.reply.url())),
    );
    out
}

/// The `timings` object of a `--json` line: the `time_*` variables, in seconds.
pub(super) fn timings_json(facts: &Facts<'_>) -> Value {
    let all = variables(facts);
    let times = all
        .into_iter()
        .filter(|(k, _)| k.starts_with("time_") || k == "num_connects" || k == "remote_ip")
        .collect();
    Value::Object(times)
}

/// `template` with its variables and escapes replaced.
pub(super) fn render(template: &str, facts: &Facts<'_>) -> String {
    let vars = variables(facts);
    render_with(template, |name| match (name, vars.get(name)) {
        ("json", _) => Some(Value::Object(vars.clone()).to_string()),
        (_, Some(Value::String(s))) => Some(s.clone()),
        (_, Some(Value::Number(n))) if name.starts_with("time_") => {
            Some(format!("{:.6}", n.as_f64().unwrap_or(0.0)))
        }
        (_, Some(Value::Null)) => Some(String::new()),
        (_, Some(v)) => Some(v.to_string()),
        (_, None) => None,
    })
}

/// The scanning of a template, apart from the reply: `%{name}` becomes `value(name)` (kept
/// as written when that is `None`), and `\n`, `\t`, `\r`, `\\` their characters.
pub(super) fn render_with(template: &str, mut value: impl FnMut(&str) -> Option<String>) -> String {
    let mut out = String::new();
    let mut rest = template;
    while let Some(c) = rest.chars().next() {
        if let Some(after) = rest.strip_prefix("%{") {
            if let Some(end) = after.find('}') {
                match value(&after[..end]) {
                    Some(text) => out.push_str(&text),
                    None => out.push_str(&rest[..end + 3]),
                }
                rest = &after[end + 1..];
                continue;
            }
        }
        if let Some(after) = rest.strip_prefix('\\') {
            let escaped = match after.chars().next() {
                Some('n') => Some('\n'),
                Some('t') => Some('\t'),
                Some('r') => Some('\r'),
                Some('\\') => Some('\\'),
                _ => None,
            };
            if let Some(e) = escaped {
                out.push(e);
                rest = &after[1..];
                continue;
            }
        }
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    out
}
