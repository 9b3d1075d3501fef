//! Minimal query-string parsing for the routes: `a=1&b=two%20words`, with `+` and
//! percent escapes decoded. Malformed escapes are kept literally rather than rejected.

/// Decoded `(name, value)` pairs of `query`, in order. A bare `name` has an empty value.
pub(crate) fn parse_query(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            (decode_component(name), decode_component(value))
        })
        .collect()
}

/// The decoded value of the first parameter called `name`.
pub(crate) fn query_param(query: Option<&str>, name: &str) -> Option<String> {
    parse_query(query?)
        .into_iter()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value)
}

/// Decodes `+` as space and `%XX` escapes; invalid escapes are kept as written.
fn decode_component(raw: &str) -> String {
    let bytes = raw.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => decoded.push(b' '),
            b'%' => {
                if let Some(byte) = bytes.get(i + 1..i + 3).and_then(hex_pair) {
                    decoded.push(byte);
                    i += 3;
                    continue;
                }
                decoded.push(b'%');
            }
            other => decoded.push(other),
        }
        i += 1;
    }
    String::from_utf8_lossy(&decoded).into_owned()
}

fn hex_pair(pair: &[u8]) -> Option<u8> {
    let high = hex_digit(*pair.first()?)?;
    let low = hex_digit(*pair.get(1)?)?;
    Some(high << 4 | low)
}

fn hex_digit(byte: u8) -> Option<u8> {
    char::from(byte).to_digit(16).map(|digit| digit as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_pairs_and_escapes() {
        let pairs = parse_query("a=1&b=two%20words+x&flag&&bad=%zz%4&sign=%+1");
        assert_eq!(
            pairs,
            vec![
                ("a".into(), "1".into()),
                ("b".into(), "two words x".into()),
                ("flag".into(), String::new()),
                ("bad".into(), "%zz%4".into()),
                ("sign".into(), "% 1".into()),
            ]
        );
    }

    #[test]
    fn finds_first_named_param() {
        assert_eq!(query_param(Some("x=1&x=2"), "x").as_deref(), Some("1"));
        assert_eq!(query_param(None, "x"), None);
    }
}
