//! The field syntax the cache rules read: HTTP dates in all three forms of RFC 9110 §5.6.7
//! (IMF-fixdate, and the obsolete RFC 850 and asctime forms, which recipients must accept),
//! `Cache-Control` directives (RFC 9111 §5.2, quoted values and commas inside quotes
//! included) and delta-seconds (§1.2.2).
//!
//! Dates are parsed strictly in their layout (one space where the grammar has one: a doubled
//! space makes a date invalid, and an invalid `Expires` means "already expired") but the day
//! name is not checked against the date, as browsers do not either.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::header::{HeaderMap, HeaderName};

/// The largest delta-seconds value a cache works with: RFC 9111 §1.2.2 says a larger value,
/// or one whose calculations would overflow, is taken as 2^31.
pub(crate) const MAX_DELTA_SECONDS: u64 = 1 << 31;

/// A delta-seconds value (RFC 9111 §1.2.2): digits only, clamped at [`MAX_DELTA_SECONDS`]
/// however many digits there are.
pub(crate) fn delta_seconds(text: &str) -> Option<u64> {
    let text = text.trim();
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(
        text.parse::<u64>()
            .map_or(MAX_DELTA_SECONDS, |v| v.min(MAX_DELTA_SECONDS)),
    )
}

/// The value of the first field line of `name` as text, trimmed.
fn first_line<'a>(headers: &'a HeaderMap, name: &HeaderName) -> Option<&'a str> {
    headers.get(name)?.to_str().ok().map(str::trim)
}

/// The first date of `name`: `Some(Err(()))` when the field is present but not a date.
pub(crate) fn header_date(
    headers: &HeaderMap,
    name: &HeaderName,
) -> Option<Result<SystemTime, ()>> {
    let value = headers.get(name)?;
    Some(
        value
            .to_str()
            .ok()
            .and_then(|v| http_date(v.trim()))
            .ok_or(()),
    )
}

/// The first value of a delta-seconds field such as `Age` (`Age: 7200, 0` is 7200, the first
/// member of the list), clamped; `None` if absent or invalid.
pub(crate) fn header_delta(headers: &HeaderMap, name: &HeaderName) -> Option<u64> {
    delta_seconds(first_line(headers, name)?.split(',').next()?)
}

const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
const LONG_DAYS: [&str; 7] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// An HTTP date in any of its three forms:
/// `Sun, 06 Nov 1994 08:49:37 GMT`, `Sunday, 06-Nov-94 08:49:37 GMT`,
/// `Sun Nov  6 08:49:37 1994`.
pub(crate) fn http_date(text: &str) -> Option<SystemTime> {
    let b = text.as_bytes();
    if b.len() == 29 && b.get(3) == Some(&b',') {
        imf_fixdate(text)
    } else if b.len() == 24 && b.get(3) == Some(&b' ') {
        asctime(text)
    } else {
        rfc850(text)
    }
}

/// `Sun, 06 Nov 1994 08:49:37 GMT`
fn imf_fixdate(s: &str) -> Option<SystemTime> {
    if !DAYS.contains(&s.get(0..3)?) || s.get(3..5)? != ", " || !s.ends_with(" GMT") {
        return None;
    }
    let day = two_digits(s.get(5..7)?)?;
    expect(s, 7, b' ')?;
    let month = month(s.get(8..11)?)?;
    expect(s, 11, b' ')?;
    let year = digits(s.get(12..16)?)?;
    expect(s, 16, b' ')?;
    let (h, m, sec) = time_of_day(s.get(17..25)?)?;
    civil(year, month, day, h, m, sec)
}

/// `Sunday, 06-Nov-94 08:49:37 GMT` (a two-digit year more than 50 years ahead is in the
/// past century, RFC 9110 §5.6.7).
fn rfc850(s: &str) -> Option<SystemTime> {
    let (day_name, rest) = s.split_once(", ")?;
    if !LONG_DAYS.contains(&day_name) || rest.len() != 22 || !rest.ends_with(" GMT") {
        return None;
    }
    let day = two_digits(rest.get(0..2)?)?;
    expect(rest, 2, b'-')?;
    let month = month(rest.get(3..6)?)?;
    expect(rest, 6, b'-')?;
    let yy = two_digits(rest.get(7..9)?)?;
    expect(rest, 9, b' ')?;
    let (h, m, sec) = time_of_day(rest.get(10..18)?)?;
    let now_year = year_of(SystemTime::now());
    let mut year = (now_year / 100) * 100 + u64::from(yy);
    if year > now_year + 50 {
        year -= 100;
    }
    civil(year, month, day, h, m, sec)
}

/// `Sun Nov  6 08:49:37 1994` (the day of the month padded with a space or a zero).
fn asctime(s: &str) -> Option<SystemTime> {
    if !DAYS.contains(&s.get(0..3)?) {
        return None;
    }
    expect(s, 3, b' ')?;
    let month = month(s.get(4..7)?)?;
    expect(s, 7, b' ')?;
    let day_text = s.get(8..10)?;
    let day = match day_text.as_bytes() {
        [b' ', d] if d.is_ascii_digit() => u32::from(d - b'0'),
        _ => two_digits(day_text)?,
    };
    expect(s, 10, b' ')?;
    let (h, m, sec) = time_of_day(s.get(11..19)?)?;
    expect(s, 19, b' ')?;
    let year = digits(s.get(20..24)?)?;
    civil(year, month, day, h, m, sec)
}

fn expect(s: &str, at: usize, byte: u8) -> Option<()> {
    (s.as_bytes().get(at) == Some(&byte)).then_some(())
}

fn digits(s: &str) -> Option<u64> {
    (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
        .then(|| s.parse().ok())
        .flatten()
}

fn two_digits(s: &str) -> Option<u32> {
    (s.len() == 2)
        .then(|| digits(s))
        .flatten()
        .map(|v| v as u32)
}

fn month(s: &str) -> Option<u32> {
    MONTHS.iter().position(|m| *m == s).map(|i| i as u32 + 1)
}

/// `HH:MM:SS`
fn time_of_day(s: &str) -> Option<(u32, u32, u32)> {
    let b = s.as_bytes();
    if b.len() != 8 || b[2] != b':' || b[5] != b':' {
        return None;
    }
    let (h, m, sec) = (
        two_digits(&s[0..2])?,
        two_digits(&s[3..5])?,
        two_digits(&s[6..8])?,
    );
    (h < 24 && m < 60 && sec < 61).then_some((h, m, sec))
}

/// The time of a calendar date (proleptic Gregorian, UTC); `None` for an impossible date or
/// one before 1970 (no stored response is older than the epoch).
fn civil(year: u64, month: u32, day: u32, h: u32, m: u32, s: u32) -> Option<SystemTime> {
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let month_days = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    if !(1970..=9999).contains(&year) || day == 0 || day > month_days[(month - 1) as usize] {
        return None;
    }
    let days = days_from_civil(year as i64, month as i64, day as i64);
    let secs = days as u64 * 86_400 + u64::from(h) * 3600 + u64::from(m) * 60 + u64::from(s);
    UNIX_EPOCH.checked_add(Duration::from_secs(secs))
}

/// Days since 1970-01-01 (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn year_of(t: SystemTime) -> u64 {
    let days = t.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs() / 86_400;
    // Close enough for the RFC 850 century rule (off by at most a day around New Year).
    1970 + (days * 400) / 146_097
}

/// One `Cache-Control` directive: its name in lowercase and its value, unquoted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Directive {
    pub name: String,
    pub value: Option<String>,
}

/// The directives of every `Cache-Control` field line of `headers`, in order. Commas inside
/// quoted values do not split; `\` escapes in quotes are undone. Empty members are skipped.
pub(crate) fn cache_control(headers: &HeaderMap) -> Vec<Directive> {
    let mut out = Vec::new();
    for value in headers.get_all(http::header::CACHE_CONTROL) {
        parse_directives(value.as_bytes(), &mut out);
    }
    out
}

fn parse_directives(bytes: &[u8], out: &mut Vec<Directive>) {
    let text = String::from_utf8_lossy(bytes);
    let mut chars = text.chars().peekable();
    loop {
        // name
        let mut name = String::new();
        while let Some(&c) = chars.peek() {
            if c == ',' || c == '=' {
                break;
            }
            name.push(c);
            chars.next();
        }
        let mut value = None;
        if chars.peek() == Some(&'=') {
            chars.next();
            while chars.peek().is_some_and(|c| *c == ' ' || *c == '\t') {
                chars.next();
            }
            let mut v = String::new();
            if chars.peek() == Some(&'"') {
                chars.next();
                while let Some(c) = chars.next() {
                    match c {
                        '"' => break,
                        '\\' => {
                            if let Some(e) = chars.next() {
                                v.push(e);
                            }
                        }
                        c => v.push(c),
                    }
                }
                // Anything up to the next comma after the closing quote is ignored.
                while chars.peek().is_some_and(|c| *c != ',') {
                    chars.next();
                }
            } else {
                while let Some(&c) = chars.peek() {
                    if c == ',' {
                        break;
                    }
                    v.push(c);
                    chars.next();
                }
                v = v.trim().to_owned();
            }
            value = Some(v);
        }
        let name = name.trim().to_ascii_lowercase();
        if !name.is_empty() {
            out.push(Directive { name, value });
        }
        if chars.next().is_none() {
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(y: u64, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> SystemTime {
        civil(y, mo, d, h, mi, s).unwrap()
    }

    #[test]
    fn the_three_date_forms_parse() {
        let t = at(1994, 11, 6, 8, 49, 37);
        assert_eq!(http_date("Sun, 06 Nov 1994 08:49:37 GMT"), Some(t));
        assert_eq!(http_date("Sunday, 06-Nov-94 08:49:37 GMT"), Some(t));
        assert_eq!(http_date("Sun Nov  6 08:49:37 1994"), Some(t));
        assert_eq!(http_date("Sun Nov 06 08:49:37 1994"), Some(t));
        // The day name is not checked against the date (2050-08-08 is a Monday).
        assert_eq!(
            http_date("Thu Aug  8 02:01:18 2050"),
            Some(at(2050, 8, 8, 2, 1, 18))
        );
        assert_eq!(
            httpdate::fmt_http_date(at(2000, 2, 29, 0, 0, 0)),
            "Tue, 29 Feb 2000 00:00:00 GMT"
        );
        assert_eq!(
            http_date("Fri, 31 Dec 9999 23:59:59 GMT"),
            Some(at(9999, 12, 31, 23, 59, 59))
        );
    }

    #[test]
    fn malformed_dates_are_refused() {
        for bad in [
            "Thu, 18  Aug  2050 02:01:18 GMT",
            "Thu, 18 Aug 2050 02:01:18 UTC",
            "Thu, 18 Aug 2050 02:01:18",
            "Xyz, 18 Aug 2050 02:01:18 GMT",
            "Thu, 31 Feb 2050 02:01:18 GMT",
            "Thu, 18 Aug 2050 24:01:18 GMT",
            "Thu, 18 Foo 2050 02:01:18 GMT",
            "0",
            "",
            "Thu Aug   8 02:01:18 2050",
            "Thursday, 18-Aug-2050 02:01:18 GMT",
            "Thu, 18 Aug 1969 02:01:18 GMT",
        ] {
            assert_eq!(http_date(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn directives_split_outside_quotes() {
        let mut h = HeaderMap::new();
        h.append(
            "cache-control",
            "Max-Age=60, no-cache=\"set-cookie, x\", , private"
                .parse()
                .unwrap(),
        );
        h.append("cache-control", "s-maxage = 5,max-stale".parse().unwrap());
        let d = cache_control(&h);
        let names: Vec<&str> = d.iter().map(|d| d.name.as_str()).collect();
        assert_eq!(
            names,
            ["max-age", "no-cache", "private", "s-maxage", "max-stale"]
        );
        assert_eq!(d[0].value.as_deref(), Some("60"));
        assert_eq!(d[1].value.as_deref(), Some("set-cookie, x"));
        assert_eq!(d[3].value.as_deref(), Some("5"));
        assert_eq!(d[4].value, None);
    }

    #[test]
    fn age_uses_the_first_list_member() {
        let mut h = HeaderMap::new();
        h.insert("age", "7200, 0".parse().unwrap());
        assert_eq!(header_delta(&h, &http::header::AGE), Some(7200));
        h.insert("age", "abc".parse().unwrap());
        assert_eq!(header_delta(&h, &http::header::AGE), None);
    }
}
