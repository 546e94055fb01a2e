//! Helpers every adapter shares: tolerant JSON access, decimal parsing that
//! keeps the original text, header reading and the common HTTP fallbacks.
//!
//! Everything here returns a `Result` or an `Option`: adapters see arbitrary
//! bytes from the network and must never panic on them.

use super::{Interpretation, Level, Num, Payload, Problem, RawResponse};

use crate::model::{ApiError, EndpointKind, InvalidReason, RateLimitSignal};
use serde_json::Value;

/// Longest body excerpt carried in a [`Problem::Http`], so a 2 MB HTML error
/// page does not end up in events and the journal.
pub const EXCERPT_CHARS: usize = 200;

pub fn is_success(status: u16) -> bool {
    (200..300).contains(&status)
}

/// A body as one short line for error details: an HTML page is its
/// `<title>` (and its first `<h1>` where that adds something), since CDN
/// error pages put their one useful line there; anything else is its first
/// `EXCERPT_CHARS` (200) characters, lossily decoded, with whitespace runs
/// collapsed.
pub fn excerpt(body: &[u8]) -> String {
    match html_headline(body) {
        Some(line) => one_line(&line),
        None => one_line(&String::from_utf8_lossy(body)),
    }
}

fn one_line(text: &str) -> String {
    let mut out = String::new();
    let mut last_space = false;
    for c in text.chars() {
        if out.chars().count() >= EXCERPT_CHARS {
            out.push('…');
            break;
        }
        if c.is_whitespace() || c.is_control() {
            if !last_space && !out.is_empty() {
                out.push(' ');
            }
            last_space = true;
        } else {
            out.push(c);
            last_space = false;
        }
    }
    out.trim_end().to_string()
}

/// Whether a body is an HTML document: after any BOM and whitespace it opens
/// with `<!DOCTYPE html`, `<html` or `<head`, or with a tag and has a `<title>`
/// in its first kilobyte.
pub fn is_html(body: &[u8]) -> bool {
    let start = body.strip_prefix(UTF8_BOM).unwrap_or(body);
    let skip = start
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(start.len());
    let start = &start[skip..];
    let head = start.get(..start.len().min(1024)).unwrap_or(start);
    let lower = head.to_ascii_lowercase();
    lower.starts_with(b"<!doctype html")
        || lower.starts_with(b"<html")
        || lower.starts_with(b"<head")
        || (lower.starts_with(b"<") && find(&lower, b"<title").is_some())
}

/// The line an HTML error page is about: its `<title>`, with the first
/// `<h1>` appended when it says more ("ERROR: The request could not be
/// satisfied — 403 ERROR"), or the `<h1>` alone. Tags inside are dropped,
/// entities decoded, whitespace collapsed. `None` when the body is not HTML
/// or has neither.
pub fn html_headline(body: &[u8]) -> Option<String> {
    if !is_html(body) {
        return None;
    }
    let text = String::from_utf8_lossy(body);
    let title = element_text(&text, "title").filter(|t| !t.is_empty());
    let h1 = element_text(&text, "h1").filter(|t| !t.is_empty());
    match (title, h1) {
        (Some(t), Some(h)) if !t.to_lowercase().contains(&h.to_lowercase()) => {
            Some(format!("{t} — {h}"))
        }
        (Some(t), _) => Some(t),
        (None, h) => h,
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// The text inside the first `<tag ...>...</tag>`, tags stripped, entities
/// decoded and whitespace collapsed. Tag names match ASCII case-insensitively.
fn element_text(html: &str, tag: &str) -> Option<String> {
    // ASCII lowercasing keeps every byte offset, so offsets carry over.
    let lower = html.to_ascii_lowercase();
    let open = format!("<{tag}");
    let mut from = 0;
    let start = loop {
        let at = from + lower.get(from..)?.find(&open)?;
        let after = at + open.len();
        // `<title>` or `<title lang=..>`, not `<titles>`.
        match lower.as_bytes().get(after) {
            Some(b'>' | b' ' | b'\t' | b'\n' | b'\r' | b'/') => {
                break after + lower.get(after..)?.find('>')? + 1;
            }
            _ => from = after,
        }
    };
    let end = start + lower.get(start..)?.find(&format!("</{tag}"))?;
    let inner = html.get(start..end)?;
    let mut plain = String::new();
    let mut in_tag = false;
    for c in inner.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => {
                in_tag = false;
                plain.push(' ');
            }
            c if !in_tag => plain.push(c),
            _ => {}
        }
    }
    let decoded = decode_entities(&plain);
    Some(decoded.split_whitespace().collect::<Vec<_>>().join(" "))
}

/// The character references error pages use: the five XML ones, `&nbsp;`,
/// and numeric `&#NN;` / `&#xHH;`. Anything else is kept as written.
fn decode_entities(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        let tail = &rest[amp..];
        let decoded = tail.get(1..).and_then(|t| {
            let semi = t.find(';').filter(|i| *i <= 10)?;
            let name = &t[..semi];
            let c = match name {
                "amp" => '&',
                "lt" => '<',
                "gt" => '>',
                "quot" => '"',
                "apos" => '\'',
                "nbsp" => ' ',
                n => {
                    let num = n.strip_prefix('#')?;
                    let code = match num.strip_prefix(['x', 'X']) {
                        Some(hex) => u32::from_str_radix(hex, 16).ok()?,
                        None => num.parse().ok()?,
                    };
                    char::from_u32(code)?
                }
            };
            Some((c, semi + 2))
        });
        match decoded {
            Some((c, len)) => {
                out.push(c);
                rest = &tail[len..];
            }
            None => {
                out.push('&');
                rest = &tail[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// The UTF-8 byte order mark. RFC 8259 §8.1: implementations "MUST NOT add
/// a byte order mark" to JSON text, but "MAY ignore the presence of a byte
/// order mark rather than treating it as an error".
pub const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// Whether a body starts with a UTF-8 byte order mark, which `json_body`
/// ignores (the probe worker logs it once per endpoint).
pub fn has_bom(body: &[u8]) -> bool {
    body.starts_with(UTF8_BOM)
}

/// Parse the body as JSON, ignoring a leading UTF-8 byte order mark.
/// `Err` carries why it is not usable; for an HTML page, its headline.
pub fn json_body(body: &[u8]) -> Result<Value, InvalidReason> {
    let body = body.strip_prefix(UTF8_BOM).unwrap_or(body);
    if body.iter().all(|b| b.is_ascii_whitespace()) {
        return Err(InvalidReason::EmptyBody);
    }
    serde_json::from_slice(body).map_err(|e| InvalidReason::NotJson {
        detail: match html_headline(body) {
            Some(line) => format!("an HTML page: {}", one_line(&line)),
            None => e.to_string(),
        },
    })
}

/// The response a body without any recognized exchange error maps to: a
/// CDN's block page is [`ApiError::Blocked`], a non-success status becomes
/// [`Problem::Http`] (429 and 418 are rate limits whatever the body), a
/// success status keeps the body problem.
pub fn fallback(resp: &RawResponse<'_>, reason: InvalidReason) -> Problem {
    if let Some(blocked) = super::classify::cdn_block(resp) {
        return Problem::Api(blocked);
    }
    match resp.status {
        429 => Problem::Api(ApiError::RateLimited {
            retry_after_ms: retry_after_ms(resp),
            code: None,
            message: format!("HTTP 429 {}", excerpt(resp.body))
                .trim_end()
                .to_string(),
        }),
        s if is_success(s) => Problem::Invalid(reason),
        s => Problem::Http {
            status: s,
            body_excerpt: excerpt(resp.body),
        },
    }
}

/// Build the interpretation, running the stateless payload checks so every
/// caller (probe worker and `check` alike) sees a named reason.
pub fn finish(result: Result<Payload, Problem>, signal: RateLimitSignal) -> Interpretation {
    let result = result.and_then(|p| match super::validate::check_payload(&p) {
        Ok(()) => Ok(p),
        Err(r) => Err(Problem::Invalid(r)),
    });
    Interpretation {
        result,
        signal: if signal.is_empty() {
            None
        } else {
            Some(signal)
        },
    }
}

/// A header's value as trimmed text, if present and readable.
pub fn header<'a>(resp: &'a RawResponse<'_>, name: &str) -> Option<&'a str> {
    resp.headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
}

pub fn header_u64(resp: &RawResponse<'_>, name: &str) -> Option<u64> {
    header(resp, name).and_then(|v| v.parse().ok())
}

pub fn header_i64(resp: &RawResponse<'_>, name: &str) -> Option<i64> {
    header(resp, name).and_then(|v| v.parse().ok())
}

/// `Retry-After` in milliseconds: delay-seconds, or an HTTP date relative to
/// when the response arrived (RFC 9110 allows both). Not capped: an
/// exchange's word on how long to stay away is followed as given.
pub fn retry_after_ms(resp: &RawResponse<'_>) -> Option<u64> {
    let v = header(resp, "retry-after")?;
    crate::http::retry_after(v, resp.received_at_ms, std::time::Duration::MAX)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// An RFC 3339 timestamp (Coinbase `time`, µs precision) as unix ms.
pub fn rfc3339_ms(v: &str) -> Option<i64> {
    let dt = time::OffsetDateTime::parse(v, &time::format_description::well_known::Rfc3339).ok()?;
    i64::try_from(dt.unix_timestamp_nanos() / 1_000_000).ok()
}

/// The signal every kind can carry: `Retry-After`.
pub fn base_signal(resp: &RawResponse<'_>) -> RateLimitSignal {
    RateLimitSignal {
        retry_after_ms: retry_after_ms(resp),
        ..RateLimitSignal::default()
    }
}

/// Walk `path` (object keys) into `v`.
pub fn at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(v, |cur, k| cur.get(*k))
}

pub fn schema(detail: impl Into<String>) -> Problem {
    Problem::Invalid(InvalidReason::Schema {
        detail: detail.into(),
    })
}

/// A decimal field that exchanges send as a string (or, in older or
/// different dialects, as a JSON number). Unparsable or non-finite values are
/// [`InvalidReason::BadNumber`], named by `field`.
pub fn num(v: &Value, field: &str) -> Result<Num, Problem> {
    num_lazy(v, || field.to_string())
}

/// [`num`] with the field name built only on failure (book levels are many).
pub fn num_lazy(v: &Value, field: impl Fn() -> String) -> Result<Num, Problem> {
    let text = match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        other => {
            return Err(Problem::Invalid(InvalidReason::BadNumber {
                field: field(),
                text: short(&other.to_string()),
            }));
        }
    };
    match text.parse::<f64>() {
        // Rust accepts "NaN", "inf" and "infinity": an exchange sending them is broken.
        Ok(value) if value.is_finite() && is_decimal_text(&text) => Ok(Num { value, text }),
        _ => Err(Problem::Invalid(InvalidReason::BadNumber {
            field: field(),
            text: short(&text),
        })),
    }
}

/// Plain decimal or exponent notation only, so `"+1"`, `"1_000"` style oddities
/// and words are refused even where `f64::from_str` would take them.
fn is_decimal_text(t: &str) -> bool {
    let body = t.strip_prefix('-').unwrap_or(t);
    !body.is_empty()
        && body.as_bytes()[0].is_ascii_digit()
        && body
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'-' | b'+'))
}

fn short(s: &str) -> String {
    if s.chars().count() > 40 {
        format!("{}…", s.chars().take(40).collect::<String>())
    } else {
        s.to_string()
    }
}

/// An optional decimal: absent, null or `""` (how exchanges say "no bid").
pub fn opt_num(v: Option<&Value>, field: &str) -> Result<Option<Num>, Problem> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(v) => num(v, field).map(Some),
    }
}

/// An integer that may arrive as a number or a string (`"1597026383085"`).
pub fn int(v: &Value, field: &str) -> Result<i64, Problem> {
    let parsed = match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.parse::<i64>().ok(),
        _ => None,
    };
    parsed.ok_or_else(|| {
        Problem::Invalid(InvalidReason::BadNumber {
            field: field.to_string(),
            text: short(&v.to_string()),
        })
    })
}

pub fn opt_int(v: Option<&Value>, field: &str) -> Result<Option<i64>, Problem> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(v) => int(v, field).map(Some),
    }
}

pub fn opt_u64(v: Option<&Value>, field: &str) -> Result<Option<u64>, Problem> {
    match opt_int(v, field)? {
        None => Ok(None),
        Some(i) => u64::try_from(i).map(Some).map_err(|_| {
            Problem::Invalid(InvalidReason::BadNumber {
                field: field.to_string(),
                text: i.to_string(),
            })
        }),
    }
}

/// Book levels given as arrays whose first two elements are price and size
/// (`["4.00000000", "431.00000000", ...]`). Extra elements are ignored.
pub fn levels(v: Option<&Value>, side: &str) -> Result<Vec<Level>, Problem> {
    let arr = match v {
        Some(Value::Array(a)) => a,
        Some(Value::Null) | None => return Err(schema(format!("missing {side} array"))),
        Some(_) => return Err(schema(format!("{side} is not an array"))),
    };
    arr.iter()
        .enumerate()
        .map(|(i, lvl)| {
            let (p, s) = match lvl.as_array() {
                Some(a) if a.len() >= 2 => (&a[0], &a[1]),
                _ => {
                    return Err(schema(format!(
                        "{side}[{i}] is not a [price, size, ...] array"
                    )));
                }
            };
            Ok(Level {
                price: num_lazy(p, || format!("{side}[{i}].price"))?,
                size: num_lazy(s, || format!("{side}[{i}].size"))?,
            })
        })
        .collect()
}

/// An exchange error code that may be a string or a number, as text.
pub fn code_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

pub fn str_field(v: &Value, key: &str) -> String {
    v.get(key).and_then(Value::as_str).unwrap_or("").to_string()
}

/// Whether an endpoint names a symbol, so "not found" means the symbol.
pub fn has_symbol(endpoint: EndpointKind) -> bool {
    !matches!(endpoint, EndpointKind::Time)
}

/// An instrument name with case and separators taken out (`btc-usdt`,
/// `BTC/USDT`, `BTC_USDT` → `BTCUSDT`): how Binance, Bybit, OKX, Coinbase
/// and the generic kind tell two spellings of one instrument apart from two
/// instruments. Letters and digits of any script are kept.
pub fn plain_instrument(name: &str) -> String {
    name.chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_uppercase)
        .collect()
}

/// `Err(WrongInstrument)` when the body names an instrument (`named`) and the
/// request asked for another one: both are compared as `key` spells them, so
/// each exchange's alternate names of one pair stay equal. A body that names
/// none, or a request without a symbol, is not checked.
pub fn same_instrument(
    resp: &RawResponse<'_>,
    named: &str,
    key: fn(&str) -> String,
) -> Result<(), Problem> {
    match resp.requested_symbol {
        Some(asked) if !asked.trim().is_empty() && !named.trim().is_empty() => {
            if key(asked) == key(named) {
                Ok(())
            } else {
                Err(Problem::Invalid(InvalidReason::WrongInstrument {
                    expected: asked.to_string(),
                    got: short(named),
                }))
            }
        }
        _ => Ok(()),
    }
}

/// Seconds with an optional fraction (`1420674445.201`) as unix ms.
pub fn seconds_to_ms(secs: f64) -> Option<i64> {
    let ms = (secs * 1000.0).round();
    if ms.is_finite() && ms.abs() < 9.0e15 {
        Some(ms as i64)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::{HeaderMap, HeaderValue};

    fn resp<'a>(h: &'a HeaderMap, body: &'a [u8]) -> RawResponse<'a> {
        RawResponse {
            status: 200,
            headers: h,
            body,
            received_at_ms: 784_111_777_000 - 5_000,
            elapsed_ms: 0,
            requested_symbol: None,
        }
    }

    #[test]
    fn retry_after_takes_seconds_and_http_dates() {
        let mut h = HeaderMap::new();
        h.insert("retry-after", HeaderValue::from_static("120"));
        assert_eq!(retry_after_ms(&resp(&h, b"")), Some(120_000));
        // RFC 9110's example date is 784111777 s; the response arrived 5 s before it.
        h.insert(
            "retry-after",
            HeaderValue::from_static("Sun, 06 Nov 1994 08:49:37 GMT"),
        );
        assert_eq!(retry_after_ms(&resp(&h, b"")), Some(5_000));
        h.insert("retry-after", HeaderValue::from_static("soon"));
        assert_eq!(retry_after_ms(&resp(&h, b"")), None);
    }

    #[test]
    fn numbers_keep_their_text_and_refuse_words() {
        let n = num(&Value::String("4.00000200".into()), "p").ok();
        assert_eq!(
            n.map(|n| (n.value, n.text)),
            Some((4.000002, "4.00000200".to_string()))
        );
        for bad in ["NaN", "inf", "-infinity", "", "1,5", "abc", "+1", ".5"] {
            assert!(
                num(&Value::String(bad.into()), "p").is_err(),
                "{bad:?} accepted"
            );
        }
        assert!(num(&serde_json::json!(12.5), "p").is_ok());
        assert!(num(&serde_json::json!(true), "p").is_err());
    }

    #[test]
    fn excerpt_is_one_short_line() {
        let page = format!("<html>\n  <body>{}</body></html>", "x".repeat(1000));
        let e = excerpt(page.as_bytes());
        assert!(
            e.chars().count() <= EXCERPT_CHARS + 1 && !e.contains('\n'),
            "{e}"
        );
        assert!(e.starts_with("<html> <body>"));
    }

    #[test]
    fn rfc3339_keeps_milliseconds() {
        assert_eq!(
            rfc3339_ms("2020-03-20T00:22:57.833897Z"),
            Some(1_584_663_777_833)
        );
    }
}
