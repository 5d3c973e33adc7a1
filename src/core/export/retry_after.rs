//! The HTTP `Retry-After` header (RFC 9110 §10.2.3): how long the server asks
//! us to wait before trying again.
//!
//! The value is either delta-seconds (`120`) or an HTTP-date in the preferred
//! IMF-fixdate form (`Sun, 06 Nov 1994 08:49:37 GMT`). The two obsolete date
//! forms (RFC 850 and asctime) are not accepted: collectors written this
//! century send IMF-fixdate, and an unparsed value only means the policy
//! falls back to its own exponential backoff.

/// The delay in milliseconds that a `Retry-After` value asks for, measured
/// from `now_unix_ms` (wall-clock milliseconds since the Unix epoch; used only
/// for HTTP-dates).
///
/// Returns `None` for anything that is not delta-seconds or an IMF-fixdate.
/// A date in the past is a delay of 0. Huge values saturate instead of
/// overflowing; the caller caps the delay (see
/// [`ExportConfig::retry_after_max_ms`](super::ExportConfig::retry_after_max_ms)).
/// Never panics.
///
/// ```
/// use tracelink::core::export::parse_retry_after;
/// assert_eq!(parse_retry_after("120", 0), Some(120_000));
/// let now = 784_111_777_000 - 2_500; // 2.5 s before the date below
/// assert_eq!(parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", now), Some(2_500));
/// assert_eq!(parse_retry_after("soon", now), None);
/// ```
pub fn parse_retry_after(value: &str, now_unix_ms: u64) -> Option<u64> {
    let value = crate::core::text::trim_ows(value);
    if value.is_empty() {
        return None;
    }
    if value.bytes().all(|b| b.is_ascii_digit()) {
        let seconds = value.bytes().fold(0u64, |acc, b| {
            acc.saturating_mul(10).saturating_add(u64::from(b - b'0'))
        });
        return Some(seconds.saturating_mul(1000));
    }
    let at_unix_s = parse_imf_fixdate(value.as_bytes())?;
    Some(at_unix_s.saturating_mul(1000).saturating_sub(now_unix_ms))
}

const DAY_NAMES: [&[u8; 3]; 7] = [b"Mon", b"Tue", b"Wed", b"Thu", b"Fri", b"Sat", b"Sun"];
const MONTH_NAMES: [&[u8; 3]; 12] = [
    b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec",
];

/// Unix seconds of an HTTP-date header value (a `Date`, a `Retry-After`) in
/// the IMF-fixdate form, `Sun, 06 Nov 1994 08:49:37 GMT`, around optional
/// whitespace; `None` for anything else. For Rust hosts: the JS package
/// reads these headers with the runtime's own `Date.parse` (pkg/core.js
/// `httpDate`), so the page's wasm carries no date parser.
///
/// ```
/// use tracelink::core::export::parse_http_date;
/// assert_eq!(parse_http_date(" Sun, 06 Nov 1994 08:49:37 GMT"), Some(784_111_777));
/// assert_eq!(parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT"), None);
/// ```
pub fn parse_http_date(value: &str) -> Option<u64> {
    parse_imf_fixdate(crate::core::text::trim_ows(value).as_bytes())
}

/// Unix seconds of an IMF-fixdate, `Sun, 06 Nov 1994 08:49:37 GMT`; dates
/// before 1970 give 0. Case-sensitive and exact, as RFC 9110 defines it.
fn parse_imf_fixdate(s: &[u8]) -> Option<u64> {
    if s.len() != 29
        || !DAY_NAMES.iter().any(|d| &s[0..3] == *d)
        || &s[3..5] != b", "
        || s[7] != b' '
        || s[11] != b' '
        || s[16] != b' '
        || s[19] != b':'
        || s[22] != b':'
        || &s[25..29] != b" GMT"
    {
        return None;
    }
    let day = digits(&s[5..7])?;
    let month = MONTH_NAMES.iter().position(|m| &s[8..11] == *m)? as i64 + 1;
    let year = digits(&s[12..16])?;
    let (hour, minute, second) = (
        digits(&s[17..19])?,
        digits(&s[20..22])?,
        digits(&s[23..25])?,
    );
    // RFC 9110 allows second 60 (a leap second).
    if day < 1 || day > days_in_month(year, month) || hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let t = days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second;
    Some(t.max(0) as u64)
}

/// The decimal value of a run of ASCII digits (at most 4 here, so no overflow).
fn digits(s: &[u8]) -> Option<i64> {
    s.iter().try_fold(0i64, |acc, &b| {
        b.is_ascii_digit().then(|| acc * 10 + i64::from(b - b'0'))
    })
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
/// `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let year_of_era = y - era * 400;
    let day_of_year = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    const RFC_EXAMPLE_UNIX_S: u64 = 784_111_777; // Sun, 06 Nov 1994 08:49:37 GMT

    #[test]
    fn delta_seconds() {
        assert_eq!(parse_retry_after("0", 0), Some(0));
        assert_eq!(parse_retry_after("120", 0), Some(120_000));
        assert_eq!(parse_retry_after(" \t7 ", 123), Some(7_000));
        assert_eq!(parse_retry_after("007", 0), Some(7_000));
        assert_eq!(
            parse_retry_after("99999999999999999999999999", 0),
            Some(u64::MAX)
        );
    }

    #[test]
    fn rejects_malformed_delta() {
        for v in ["", "  ", "-1", "+1", "1.5", "1e3", "12 s", "0x10", "١٢"] {
            assert_eq!(parse_retry_after(v, 0), None, "{v:?}");
        }
    }

    #[test]
    fn imf_fixdate_future_and_past() {
        let date = "Sun, 06 Nov 1994 08:49:37 GMT";
        let at = RFC_EXAMPLE_UNIX_S * 1000;
        assert_eq!(parse_retry_after(date, at - 30_000), Some(30_000));
        assert_eq!(parse_retry_after(date, at), Some(0));
        assert_eq!(parse_retry_after(date, at + 5_000), Some(0));
        assert_eq!(parse_retry_after(date, 0), Some(at));
    }

    #[test]
    fn imf_fixdate_calendar() {
        assert_eq!(parse_imf_fixdate(b"Thu, 01 Jan 1970 00:00:00 GMT"), Some(0));
        assert_eq!(
            parse_imf_fixdate(b"Tue, 29 Feb 2000 00:00:00 GMT"),
            Some(951_782_400)
        );
        assert_eq!(
            parse_imf_fixdate(b"Fri, 31 Dec 9999 23:59:59 GMT"),
            Some(253_402_300_799)
        );
        assert_eq!(
            parse_imf_fixdate(b"Sat, 01 Jan 2000 00:00:00 GMT"),
            Some(946_684_800)
        );
        assert_eq!(parse_imf_fixdate(b"Wed, 31 Dec 1969 23:59:59 GMT"), Some(0));
        assert_eq!(
            parse_imf_fixdate(b"Sat, 31 Dec 2016 23:59:60 GMT"),
            Some(1_483_228_800)
        );
    }

    #[test]
    fn rejects_malformed_dates() {
        for v in [
            "Sun, 06 Nov 1994 08:49:37 gmt",
            "sun, 06 Nov 1994 08:49:37 GMT",
            "Sun, 06 nov 1994 08:49:37 GMT",
            "Sun,  6 Nov 1994 08:49:37 GMT",
            "Sun, 06 Nov 1994 08:49:37 UTC",
            "Sun, 06 Nov 1994 24:00:00 GMT",
            "Sun, 06 Nov 1994 08:60:00 GMT",
            "Sun, 06 Nov 1994 08:49:61 GMT",
            "Sun, 00 Nov 1994 08:49:37 GMT",
            "Mon, 29 Feb 1900 00:00:00 GMT",
            "Thu, 31 Apr 2021 00:00:00 GMT",
            "Sunday, 06-Nov-94 08:49:37 GMT",
            "Sun Nov  6 08:49:37 1994",
            "Sun, 06 Nov 1994 08:49:37 GMTx",
            "Sun, 06 Nov 19a4 08:49:37 GMT",
            "Sun, 06 Nov 1994 08:49:37 GM€",
            "€€€€€€€€€G",
        ] {
            assert_eq!(parse_retry_after(v, 0), None, "{v:?}");
        }
        // Surrounding OWS is allowed.
        assert!(parse_retry_after(" Sun, 06 Nov 1994 08:49:37 GMT\t", 0).is_some());
    }
}
