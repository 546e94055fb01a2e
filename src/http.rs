//! The one shared HTTP client, a bounded GET, and `Retry-After`.

use serde::Deserialize;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    #[serde(with = "humantime_serde")]
    pub connect_timeout: Duration,
    /// Bodies larger than this are cut off and count as invalid.
    pub max_body_bytes: usize,
    pub user_agent: String,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            connect_timeout: Duration::from_secs(2),
            max_body_bytes: 2 * 1024 * 1024,
            user_agent: concat!("exwatch/", env!("CARGO_PKG_VERSION")).into(),
        }
    }
}

/// One client for the whole process: a connection pool with keep-alive, so
/// polling an endpoint does not pay a handshake on every tick.
pub fn client(cfg: &HttpConfig) -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .connect_timeout(cfg.connect_timeout)
        .pool_idle_timeout(Duration::from_secs(90))
        .pool_max_idle_per_host(256)
        .tcp_keepalive(Duration::from_secs(30))
        .tcp_nodelay(true)
        .user_agent(cfg.user_agent.clone())
        // The monitor follows no redirects: a redirected market-data endpoint is a fault to see.
        .redirect(reqwest::redirect::Policy::none())
        .build()
}

/// A response read in full, or up to the body cap.
#[derive(Debug)]
pub struct Fetched {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Vec<u8>,
    /// The body was longer than the cap and was cut.
    pub truncated: bool,
    pub elapsed: Duration,
}

#[derive(Debug, Clone, PartialEq)]
pub enum FetchError {
    Timeout { elapsed: Duration },
    Connect { detail: String, elapsed: Duration },
}

/// GET `url` with a total timeout covering the body, reading at most `max_body` bytes.
pub async fn get(
    client: &reqwest::Client,
    url: &str,
    timeout: Duration,
    max_body: usize,
) -> Result<Fetched, FetchError> {
    let start = Instant::now();
    let fut = async {
        let mut resp = client.get(url).send().await?;
        let status = resp.status().as_u16();
        let headers = std::mem::take(resp.headers_mut());
        let mut body =
            Vec::with_capacity(resp.content_length().unwrap_or(4096).min(max_body as u64) as usize);
        let mut truncated = false;
        while let Some(chunk) = resp.chunk().await? {
            let room = max_body - body.len();
            if chunk.len() > room {
                body.extend_from_slice(&chunk[..room]);
                truncated = true;
                break;
            }
            body.extend_from_slice(&chunk);
        }
        Ok::<_, reqwest::Error>((status, headers, body, truncated))
    };
    match tokio::time::timeout(timeout, fut).await {
        Err(_) => Err(FetchError::Timeout {
            elapsed: start.elapsed(),
        }),
        Ok(Err(e)) if e.is_timeout() => Err(FetchError::Timeout {
            elapsed: start.elapsed(),
        }),
        Ok(Err(e)) => Err(FetchError::Connect {
            detail: describe(&e),
            elapsed: start.elapsed(),
        }),
        Ok(Ok((status, headers, body, truncated))) => Ok(Fetched {
            status,
            headers,
            body,
            truncated,
            elapsed: start.elapsed(),
        }),
    }
}

/// The innermost cause of a transport error, without the URL (which may carry tokens).
pub fn describe(e: &reqwest::Error) -> String {
    let mut source: Option<&dyn std::error::Error> = std::error::Error::source(e);
    let mut last = None;
    while let Some(s) = source {
        last = Some(s.to_string());
        source = s.source();
    }
    let kind = if e.is_connect() {
        "connect failed"
    } else if e.is_body() || e.is_decode() {
        "connection broken while reading the answer"
    } else {
        "request failed"
    };
    match last {
        Some(cause) => format!("{kind}: {cause}"),
        None => kind.to_string(),
    }
}

/// Longest `Retry-After` honoured anywhere (a bogus header must not park a
/// sink or the triage client for days; bans have their own, longer, fields).
pub const RETRY_AFTER_CAP: Duration = Duration::from_secs(3600);

/// A `Retry-After` header value as a delay from `now_ms` (unix ms): either
/// delay-seconds (fractions accepted, as some servers send them) or an HTTP
/// date (RFC 9110 allows both). A date in the past is zero; garbage is
/// `None`. Capped at `cap`.
pub fn retry_after(value: &str, now_ms: i64, cap: Duration) -> Option<Duration> {
    let v = value.trim();
    if let Ok(secs) = v.parse::<f64>() {
        return (secs >= 0.0)
            .then(|| Duration::try_from_secs_f64(secs).map_or(cap, |d| d.min(cap)));
    }
    let at = http_date_ms(v)?;
    let ms = u64::try_from(at.saturating_sub(now_ms)).unwrap_or(0);
    Some(Duration::from_millis(ms).min(cap))
}

/// An HTTP date as unix ms: the IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`)
/// and the two obsolete forms RFC 9110 §5.6.7 says a recipient must accept
/// (RFC 850 `Sunday, 06-Nov-94 08:49:37 GMT`, asctime `Sun Nov  6 08:49:37
/// 1994`). Parsed by the `httpdate` crate, which takes years 1970 to 9999.
pub fn http_date_ms(v: &str) -> Option<i64> {
    let at = httpdate::parse_http_date(v).ok()?;
    let since = at.duration_since(std::time::UNIX_EPOCH).ok()?;
    i64::try_from(since.as_millis()).ok()
}

/// The `Retry-After` of a response, as a delay from now.
pub fn retry_after_of(resp: &reqwest::Response) -> Option<Duration> {
    let v = resp.headers().get(reqwest::header::RETRY_AFTER)?;
    retry_after(v.to_str().ok()?, crate::clock::wall_ms(), RETRY_AFTER_CAP)
}

#[cfg(test)]
mod retry_after_tests {
    use super::*;

    const CAP: Duration = RETRY_AFTER_CAP;

    #[test]
    fn seconds_fractions_dates_and_garbage() {
        assert_eq!(retry_after("120", 0, CAP), Some(Duration::from_secs(120)));
        assert_eq!(
            retry_after(" 1.5 ", 0, CAP),
            Some(Duration::from_millis(1500))
        );
        // RFC 9110's example date is 784111777 s.
        let date = "Sun, 06 Nov 1994 08:49:37 GMT";
        assert_eq!(
            retry_after(date, 784_111_777_000 - 5_000, CAP),
            Some(Duration::from_secs(5))
        );
        // Already past: retry now.
        assert_eq!(
            retry_after(date, 784_111_777_000 + 5_000, CAP),
            Some(Duration::ZERO)
        );
        // The obsolete forms name the same instant.
        for obsolete in ["Sunday, 06-Nov-94 08:49:37 GMT", "Sun Nov  6 08:49:37 1994"] {
            assert_eq!(
                retry_after(obsolete, 784_111_777_000 - 5_000, CAP),
                Some(Duration::from_secs(5)),
                "{obsolete}"
            );
        }
        assert_eq!(retry_after("soon", 0, CAP), None);
        assert_eq!(retry_after("-3", 0, CAP), None);
        assert_eq!(retry_after("NaN", 0, CAP), None);
        assert_eq!(retry_after("999999999", 0, CAP), Some(CAP));
    }
}
