//! What the simulated exchange sends back, in each exchange kind's real
//! shapes (paths, bodies, error bodies and usage headers).
//!
//! Paths are relative to the kind's base URL (the server strips its mount
//! prefix, e.g. `/binance`, before calling [`route`]). Prices are rendered
//! with Rust's shortest round-trip formatting, so a body parsed back gives
//! exactly the [`Quote`]'s values.

use super::market::Quote;
use crate::exchange::{binance, bybit};
use crate::model::{EndpointKind, ExchangeKind};
use serde_json::{Value, json};

/// One simulated HTTP response.
#[derive(Debug, Clone, PartialEq)]
pub struct SimResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

/// Paths of the simulated generic exchange (any exchange described in config
/// by JSON pointers); `docs/adapters.md` shows the config that reads them.
pub const GENERIC_TIME_PATH: &str = "/api/v1/time";
pub const GENERIC_TICKER_PATH: &str = "/api/v1/ticker";
pub const GENERIC_BOOK_PATH: &str = "/api/v1/book";

fn query_param(query: &str, name: &str) -> Option<String> {
    url::form_urlencoded::parse(query.trim_start_matches('?').as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
        .filter(|v| !v.is_empty())
}

/// Which endpoint a request is, by the kind's real preset paths, and the
/// symbol it asks for (from the query or the path). Time endpoints have an
/// empty symbol; ticker and book requests without a symbol are not routed.
pub fn route(kind: ExchangeKind, path: &str, query: &str) -> Option<(EndpointKind, String)> {
    let path = path.trim_end_matches('/');
    let with = |e: EndpointKind, param: &str| query_param(query, param).map(|s| (e, s));
    match kind {
        ExchangeKind::Binance => match path {
            "/api/v3/time" => Some((EndpointKind::Time, String::new())),
            "/api/v3/ticker/bookTicker" | "/api/v3/ticker/price" | "/api/v3/ticker/24hr" => {
                with(EndpointKind::Ticker, "symbol")
            }
            "/api/v3/depth" => with(EndpointKind::Book, "symbol"),
            _ => None,
        },
        ExchangeKind::Bybit => match path {
            "/v5/market/time" => Some((EndpointKind::Time, String::new())),
            "/v5/market/tickers" => with(EndpointKind::Ticker, "symbol"),
            "/v5/market/orderbook" => with(EndpointKind::Book, "symbol"),
            _ => None,
        },
        ExchangeKind::Okx => match path {
            "/api/v5/public/time" => Some((EndpointKind::Time, String::new())),
            "/api/v5/market/ticker" => with(EndpointKind::Ticker, "instId"),
            "/api/v5/market/books" => with(EndpointKind::Book, "instId"),
            _ => None,
        },
        ExchangeKind::Coinbase => {
            if path == "/time" {
                return Some((EndpointKind::Time, String::new()));
            }
            let rest = path.strip_prefix("/products/")?;
            let (id, what) = rest.split_once('/')?;
            let id = percent_decode(id)?;
            if id.is_empty() {
                return None;
            }
            match what {
                "ticker" => Some((EndpointKind::Ticker, id)),
                "book" => Some((EndpointKind::Book, id)),
                _ => None,
            }
        }
        ExchangeKind::Kraken => match path {
            "/0/public/Time" => Some((EndpointKind::Time, String::new())),
            "/0/public/Ticker" => with(EndpointKind::Ticker, "pair"),
            "/0/public/Depth" => with(EndpointKind::Book, "pair"),
            _ => None,
        },
        ExchangeKind::Generic => match path {
            GENERIC_TIME_PATH => Some((EndpointKind::Time, String::new())),
            GENERIC_TICKER_PATH => with(EndpointKind::Ticker, "symbol"),
            GENERIC_BOOK_PATH => with(EndpointKind::Book, "symbol"),
            _ => None,
        },
    }
}

/// A path segment with `%XX` escapes resolved (what `coinbase::path_segment` wrote).
fn percent_decode(seg: &str) -> Option<String> {
    let b = seg.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = seg.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Shortest text that parses back to exactly `v`.
fn d(v: f64) -> String {
    format!("{v}")
}

fn pairs(levels: &[(f64, f64)]) -> Vec<Value> {
    levels.iter().map(|(p, s)| json!([d(*p), d(*s)])).collect()
}

fn top_size(levels: &[(f64, f64)]) -> f64 {
    levels.first().map(|l| l.1).unwrap_or(1.0)
}

/// RFC 3339 with microseconds, as Coinbase writes it.
fn iso_us(ms: i64) -> String {
    let fmt = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z"
    );
    time::OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000)
        .ok()
        .and_then(|t| t.format(&fmt).ok())
        .unwrap_or_default()
}

/// RFC 1123 as Kraken's `/0/public/Time` writes it: `Thu, 06 Jul 23 18:50:48 +0000`.
fn rfc1123(ms: i64) -> String {
    let fmt = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year repr:last_two] [hour]:[minute]:[second] +0000"
    );
    time::OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000)
        .ok()
        .and_then(|t| t.format(&fmt).ok())
        .unwrap_or_default()
}

fn json_response(status: u16, headers: Vec<(String, String)>, body: Value) -> SimResponse {
    let mut headers = headers;
    headers.insert(0, ("Content-Type".into(), "application/json".into()));
    SimResponse {
        status,
        headers,
        body: body.to_string(),
    }
}

/// A healthy answer for `endpoint`, with the kind's usage headers.
pub fn ok(kind: ExchangeKind, endpoint: EndpointKind, q: &Quote, now_ms: i64) -> SimResponse {
    let (body, headers) = match kind {
        ExchangeKind::Binance => (binance_body(endpoint, q, now_ms), Vec::new()),
        ExchangeKind::Bybit => (bybit_body(endpoint, q, now_ms), Vec::new()),
        ExchangeKind::Okx => (okx_body(endpoint, q, now_ms), Vec::new()),
        ExchangeKind::Coinbase => (coinbase_body(endpoint, q, now_ms), Vec::new()),
        ExchangeKind::Kraken => (kraken_body(endpoint, q, now_ms), Vec::new()),
        ExchangeKind::Generic => (generic_body(endpoint, q, now_ms), Vec::new()),
    };
    let mut resp = json_response(200, headers, body);
    // Until the server counts requests itself, each answer reports its own
    // cost as the window's usage; `set_usage` replaces it with the real count.
    let weight = crate::exchange::preset(
        kind,
        endpoint,
        &q.symbol,
        q.bids.len().max(q.asks.len()) as u32,
    )
    .map(|p| u64::from(p.weight))
    .unwrap_or(1);
    set_usage(kind, &mut resp, weight, now_ms);
    resp
}

/// Put the kind's usage headers on `resp` for `used` weight (Binance) or
/// requests (Bybit) in the current window. Other kinds send none.
pub fn set_usage(kind: ExchangeKind, resp: &mut SimResponse, used: u64, now_ms: i64) {
    let names = [
        "X-MBX-USED-WEIGHT-1M",
        "X-Bapi-Limit",
        "X-Bapi-Limit-Status",
        "X-Bapi-Limit-Reset-Timestamp",
    ];
    resp.headers
        .retain(|(k, _)| !names.iter().any(|n| k.eq_ignore_ascii_case(n)));
    match kind {
        ExchangeKind::Binance => resp.headers.push((names[0].into(), used.to_string())),
        ExchangeKind::Bybit => {
            let limit = bybit::SPEC.budget.capacity as u64;
            resp.headers.push((names[1].into(), limit.to_string()));
            resp.headers
                .push((names[2].into(), limit.saturating_sub(used).to_string()));
            // "when the limit resets if it was exceeded; otherwise the current timestamp"
            resp.headers.push((names[3].into(), now_ms.to_string()));
        }
        _ => {}
    }
}

fn binance_body(endpoint: EndpointKind, q: &Quote, now_ms: i64) -> Value {
    match endpoint {
        EndpointKind::Time => json!({ "serverTime": now_ms }),
        EndpointKind::Ticker => json!({
            "symbol": q.symbol,
            "bidPrice": d(q.bid),
            "bidQty": d(top_size(&q.bids)),
            "askPrice": d(q.ask),
            "askQty": d(top_size(&q.asks)),
        }),
        EndpointKind::Book => json!({
            "lastUpdateId": q.update_id,
            "bids": pairs(&q.bids),
            "asks": pairs(&q.asks),
        }),
    }
}

fn bybit_body(endpoint: EndpointKind, q: &Quote, now_ms: i64) -> Value {
    let (result, time) = match endpoint {
        EndpointKind::Time => (
            json!({
                "timeSecond": (now_ms.div_euclid(1000)).to_string(),
                "timeNano": (now_ms as i128 * 1_000_000).to_string(),
            }),
            now_ms,
        ),
        // Ticker rows carry no timestamp: the envelope's `time` stands for the data's age.
        EndpointKind::Ticker => (
            json!({
                "category": "spot",
                "list": [{
                    "symbol": q.symbol,
                    "bid1Price": d(q.bid),
                    "bid1Size": d(top_size(&q.bids)),
                    "ask1Price": d(q.ask),
                    "ask1Size": d(top_size(&q.asks)),
                    "lastPrice": d(q.last),
                    "prevPrice24h": d(q.last),
                    "price24hPcnt": "0",
                    "highPrice24h": d(q.last),
                    "lowPrice24h": d(q.last),
                    "turnover24h": "0",
                    "volume24h": "0",
                    "usdIndexPrice": d(q.last),
                }],
            }),
            q.ts_ms,
        ),
        EndpointKind::Book => (
            json!({
                "s": q.symbol,
                "a": pairs(&q.asks),
                "b": pairs(&q.bids),
                "ts": q.ts_ms,
                "u": q.update_id,
                "seq": q.update_id,
                "cts": q.ts_ms,
            }),
            now_ms,
        ),
    };
    json!({ "retCode": 0, "retMsg": "OK", "result": result, "retExtInfo": {}, "time": time })
}

fn okx_body(endpoint: EndpointKind, q: &Quote, now_ms: i64) -> Value {
    let levels = |l: &[(f64, f64)]| -> Vec<Value> {
        l.iter()
            .map(|(p, s)| json!([d(*p), d(*s), "0", "1"]))
            .collect()
    };
    let row = match endpoint {
        EndpointKind::Time => json!({ "ts": now_ms.to_string() }),
        EndpointKind::Ticker => json!({
            "instType": "SPOT",
            "instId": q.symbol,
            "last": d(q.last),
            "lastSz": "0.1",
            "askPx": d(q.ask),
            "askSz": d(top_size(&q.asks)),
            "bidPx": d(q.bid),
            "bidSz": d(top_size(&q.bids)),
            "open24h": d(q.last),
            "high24h": d(q.last),
            "low24h": d(q.last),
            "volCcy24h": "0",
            "vol24h": "0",
            "sodUtc0": d(q.last),
            "sodUtc8": d(q.last),
            "ts": q.ts_ms.to_string(),
        }),
        EndpointKind::Book => json!({
            "asks": levels(&q.asks),
            "bids": levels(&q.bids),
            "ts": q.ts_ms.to_string(),
        }),
    };
    json!({ "code": "0", "msg": "", "data": [row] })
}

fn coinbase_body(endpoint: EndpointKind, q: &Quote, now_ms: i64) -> Value {
    let levels = |l: &[(f64, f64)]| -> Vec<Value> {
        l.iter().map(|(p, s)| json!([d(*p), d(*s), 1])).collect()
    };
    match endpoint {
        EndpointKind::Time => json!({ "iso": iso_us(now_ms), "epoch": now_ms as f64 / 1000.0 }),
        EndpointKind::Ticker => json!({
            "ask": d(q.ask),
            "bid": d(q.bid),
            "volume": "0",
            "trade_id": q.update_id,
            "price": d(q.last),
            "size": "0.01",
            "time": iso_us(q.ts_ms),
        }),
        EndpointKind::Book => json!({
            "bids": levels(&q.bids),
            "asks": levels(&q.asks),
            "sequence": q.update_id,
        }),
    }
}

fn kraken_body(endpoint: EndpointKind, q: &Quote, now_ms: i64) -> Value {
    let secs = q.ts_ms.div_euclid(1000);
    let levels = |l: &[(f64, f64)]| -> Vec<Value> {
        l.iter().map(|(p, s)| json!([d(*p), d(*s), secs])).collect()
    };
    let result = match endpoint {
        EndpointKind::Time => {
            json!({ "unixtime": now_ms.div_euclid(1000), "rfc1123": rfc1123(now_ms) })
        }
        EndpointKind::Ticker => json!({ (q.symbol.clone()): {
            "a": [d(q.ask), "1", "1.000"],
            "b": [d(q.bid), "1", "1.000"],
            "c": [d(q.last), "0.1"],
            "v": ["0", "0"],
            "p": [d(q.last), d(q.last)],
            "t": [0, 0],
            "l": [d(q.last), d(q.last)],
            "h": [d(q.last), d(q.last)],
            "o": d(q.last),
        }}),
        EndpointKind::Book => {
            json!({ (q.symbol.clone()): { "asks": levels(&q.asks), "bids": levels(&q.bids) } })
        }
    };
    json!({ "error": [], "result": result })
}

fn generic_body(endpoint: EndpointKind, q: &Quote, now_ms: i64) -> Value {
    let data = match endpoint {
        EndpointKind::Time => json!({ "ts": now_ms }),
        EndpointKind::Ticker => json!({
            "symbol": q.symbol, "last": d(q.last), "bid": d(q.bid), "ask": d(q.ask), "ts": q.ts_ms,
        }),
        EndpointKind::Book => json!({
            "symbol": q.symbol, "bids": pairs(&q.bids), "asks": pairs(&q.asks), "ts": q.ts_ms, "seq": q.update_id,
        }),
    };
    json!({ "status": "ok", "code": "0", "data": data })
}

fn retry_after(secs: u64) -> (String, String) {
    ("Retry-After".into(), secs.to_string())
}

/// The kind's real rate-limit rejection (Bybit, OKX and Kraken answer 200
/// with an error in the body).
pub fn rate_limited(kind: ExchangeKind, retry_after_s: u64, now_ms: i64) -> SimResponse {
    match kind {
        ExchangeKind::Binance => json_response(
            429,
            vec![
                retry_after(retry_after_s),
                (
                    "X-MBX-USED-WEIGHT-1M".into(),
                    (binance::SPEC.budget.capacity as u64 + 1).to_string(),
                ),
            ],
            json!({ "code": -1003, "msg": "Too much request weight used; current limit is 6000 request weight per 1 MINUTE. Please use WebSocket Streams for live updates to avoid polling the API." }),
        ),
        ExchangeKind::Bybit => {
            let limit = bybit::SPEC.budget.capacity as u64;
            let reset = now_ms.saturating_add(
                i64::try_from(retry_after_s.saturating_mul(1000)).unwrap_or(i64::MAX),
            );
            json_response(
                200,
                vec![
                    ("X-Bapi-Limit".into(), limit.to_string()),
                    ("X-Bapi-Limit-Status".into(), "0".into()),
                    ("X-Bapi-Limit-Reset-Timestamp".into(), reset.to_string()),
                ],
                json!({ "retCode": 10006, "retMsg": "Too many visits. Exceeded the API Rate Limit.", "result": {}, "retExtInfo": {}, "time": now_ms }),
            )
        }
        // The documented HTTP-200 variant; OKX sends no Retry-After.
        ExchangeKind::Okx => json_response(
            200,
            Vec::new(),
            json!({ "code": "50011", "msg": "Rate limit reached. Please refer to API documentation and throttle requests accordingly.", "data": [] }),
        ),
        ExchangeKind::Coinbase => json_response(
            429,
            vec![retry_after(retry_after_s)],
            json!({ "message": "Public rate limit exceeded" }),
        ),
        ExchangeKind::Kraken => json_response(
            200,
            Vec::new(),
            json!({ "error": ["EAPI:Rate limit exceeded"] }),
        ),
        ExchangeKind::Generic => json_response(
            429,
            vec![retry_after(retry_after_s)],
            json!({ "status": "error", "code": "RATE_LIMIT", "message": "rate limit exceeded" }),
        ),
    }
}

/// The kind's IP-ban answer (Binance 418; others their closest equivalent:
/// Bybit's 403 "access too frequent", Kraken's temporary lockout, and a
/// long 429 where the exchange has no ban of its own).
pub fn banned(kind: ExchangeKind, ban_s: u64, now_ms: i64) -> SimResponse {
    let until =
        now_ms.saturating_add(i64::try_from(ban_s.saturating_mul(1000)).unwrap_or(i64::MAX));
    match kind {
        ExchangeKind::Binance => json_response(
            418,
            vec![retry_after(ban_s)],
            json!({ "code": -1003, "msg": format!("Way too much request weight used; IP banned until {until}. Please use WebSocket Streams for live updates to avoid bans.") }),
        ),
        ExchangeKind::Bybit => SimResponse {
            status: 403,
            headers: vec![
                ("Content-Type".into(), "text/plain".into()),
                retry_after(ban_s),
            ],
            body: "access too frequent".into(),
        },
        ExchangeKind::Okx => json_response(
            429,
            vec![retry_after(ban_s)],
            json!({ "msg": "Too Many Requests", "code": "50011" }),
        ),
        ExchangeKind::Coinbase => json_response(
            429,
            vec![retry_after(ban_s)],
            json!({ "message": "Public rate limit exceeded" }),
        ),
        ExchangeKind::Kraken => json_response(
            200,
            vec![retry_after(ban_s)],
            json!({ "error": ["EGeneral:Temporary lockout"] }),
        ),
        ExchangeKind::Generic => json_response(
            429,
            vec![retry_after(ban_s)],
            json!({ "status": "error", "code": "RATE_LIMIT", "message": format!("banned until {until}") }),
        ),
    }
}

/// A server error with the kind's error body where it has one.
pub fn server_error(kind: ExchangeKind, status: u16) -> SimResponse {
    let body = match kind {
        ExchangeKind::Binance => {
            json!({ "code": -1001, "msg": "Internal error; unable to process your request. Please try again." })
        }
        ExchangeKind::Bybit => {
            json!({ "retCode": 10016, "retMsg": "Server error.", "result": {}, "retExtInfo": {} })
        }
        ExchangeKind::Okx if status == 503 => {
            json!({ "code": "50001", "msg": "Service temporarily unavailable. Please try again later.", "data": [] })
        }
        ExchangeKind::Okx => {
            json!({ "code": "50026", "msg": "System error. Try again later.", "data": [] })
        }
        ExchangeKind::Coinbase => json!({ "message": "Internal server error" }),
        ExchangeKind::Kraken if status == 503 => json!({ "error": ["EService:Unavailable"] }),
        ExchangeKind::Kraken => json!({ "error": ["EGeneral:Internal error"] }),
        ExchangeKind::Generic => {
            json!({ "status": "error", "code": "INTERNAL", "message": "internal error" })
        }
    };
    json_response(status, Vec::new(), body)
}
