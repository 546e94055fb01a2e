//! Bybit v5, REST `/v5/market` (spot category).
//!
//! Every body is `{"retCode": 0, "retMsg": "OK", "result": {...}, "time": ms}`;
//! errors keep that envelope with a non-zero `retCode`, and the rate-limit
//! error 10006 arrives *inside an HTTP 200*, so the code decides, never the
//! status. Usage headers `X-Bapi-Limit-Status` (remaining), `X-Bapi-Limit`
//! and `X-Bapi-Limit-Reset-Timestamp` are optional (absent on some 10006s).
//! Breaking the per-IP limit (600 requests / 5 s) answers 403 "access too
//! frequent" and the IP must wait at least 10 minutes. A 403 can also be
//! CloudFront refusing the region ("You are using U.S IP", error.mdx): that
//! page is a block ([`super::classify::cdn_block`]), not a ban.
//!
//! `retCode`s are classified by meaning ([`classify`]); the table with
//! sources is in `docs/adapters.md`.

use super::parse::{self, at, opt_num};
use super::{
    DefaultBudget, ExchangeSpec, Interpretation, OrderBook, Payload, Preset, Problem, RawResponse,
    Ticker,
};
use crate::model::{ApiError, EndpointKind, ExchangeKind, InvalidReason, RateLimitSignal};
use serde_json::Value;

/// Everything exwatch knows about Bybit that is not parsing code:
/// read through [`super::spec`].
pub const SPEC: ExchangeSpec = ExchangeSpec {
    kind: ExchangeKind::Bybit,
    base_url: Some("https://api.bybit.com"),
    default_symbol: "BTCUSDT",
    budget: DefaultBudget {
        // 600 requests per 5 s per IP (rate-limit.mdx); market endpoints count 1.
        capacity: 600.0,
        refill_per_sec: 120.0,
        source: "Bybit v5 API docs: rate-limit.mdx (IP limit for HTTP)",
    },
    preset: Some(preset),
    interpret: |endpoint, resp, _| interpret(endpoint, resp),
};

/// How long Bybit tells an IP that broke its limit to stay away.
pub const IP_BAN_MS: u64 = 10 * 60 * 1000;

pub fn preset(endpoint: EndpointKind, symbol: &str, depth: u32) -> Preset {
    let spot = || {
        vec![
            ("category".to_string(), "spot".to_string()),
            ("symbol".to_string(), symbol.to_string()),
        ]
    };
    match endpoint {
        EndpointKind::Time => Preset {
            path: "/v5/market/time".into(),
            query: Vec::new(),
            weight: 1,
        },
        EndpointKind::Ticker => Preset {
            path: "/v5/market/tickers".into(),
            query: spot(),
            weight: 1,
        },
        EndpointKind::Book => {
            let mut query = spot();
            // Spot takes 1..=1000 levels and defaults to 1, too thin to validate.
            let limit = if depth == 0 { 50 } else { depth.min(1000) };
            query.push(("limit".into(), limit.to_string()));
            Preset {
                path: "/v5/market/orderbook".into(),
                query,
                weight: 1,
            }
        }
    }
}

fn usage(resp: &RawResponse<'_>) -> RateLimitSignal {
    let mut s = parse::base_signal(resp);
    s.remaining = parse::header_u64(resp, "x-bapi-limit-status");
    s.limit = parse::header_u64(resp, "x-bapi-limit");
    s.reset_at_ms = parse::header_i64(resp, "x-bapi-limit-reset-timestamp");
    if let (Some(limit), Some(remaining)) = (s.limit, s.remaining) {
        s.used = Some(limit.saturating_sub(remaining));
    }
    s
}

pub fn interpret(endpoint: EndpointKind, resp: &RawResponse<'_>) -> Interpretation {
    let mut signal = usage(resp);
    let body = match parse::json_body(resp.body) {
        Ok(v) => v,
        Err(reason) => {
            let problem = match resp.status {
                403 => forbidden(resp),
                _ => parse::fallback(resp, reason),
            };
            return finish_problem(problem, signal);
        }
    };
    let code = body.get("retCode").and_then(Value::as_i64);
    let msg = body
        .get("retMsg")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    match code {
        Some(0) if parse::is_success(resp.status) => {
            parse::finish(payload(endpoint, &body, resp), signal)
        }
        Some(0) | None => {
            let problem = match resp.status {
                403 => forbidden(resp),
                _ => parse::fallback(
                    resp,
                    InvalidReason::Schema {
                        detail: "no retCode".into(),
                    },
                ),
            };
            finish_problem(problem, signal)
        }
        Some(code) => {
            let problem = classify(code, msg, endpoint, resp, &signal);
            if let Problem::Api(ApiError::RateLimited { retry_after_ms, .. }) = &problem {
                signal.retry_after_ms = *retry_after_ms;
            }
            finish_problem(problem, signal)
        }
    }
}

/// A 403 without a `retCode`: a CDN's block page when it is one, else the
/// IP limit's "access too frequent" ban (rate-limit.mdx).
fn forbidden(resp: &RawResponse<'_>) -> Problem {
    match super::classify::cdn_block(resp) {
        Some(blocked) => Problem::Api(blocked),
        None => ip_banned(resp, format!("HTTP 403 {}", parse::excerpt(resp.body))),
    }
}

fn ip_banned(resp: &RawResponse<'_>, message: String) -> Problem {
    let retry = parse::retry_after_ms(resp).unwrap_or(IP_BAN_MS);
    Problem::Api(ApiError::IpBanned {
        until_ms: Some(
            resp.received_at_ms
                .saturating_add(i64::try_from(retry).unwrap_or(i64::MAX)),
        ),
        retry_after_ms: Some(retry),
        message,
    })
}

fn finish_problem(p: Problem, mut signal: RateLimitSignal) -> Interpretation {
    if let Problem::Api(ApiError::IpBanned {
        until_ms,
        retry_after_ms,
        ..
    }) = &p
    {
        signal.banned_until_ms = *until_ms;
        signal.retry_after_ms = *retry_after_ms;
    }
    parse::finish(Err(p), signal)
}

/// One `retCode` by its meaning (bybit-exchange/docs `docs/v5/error.mdx`),
/// whatever the HTTP status.
fn classify(
    code: i64,
    msg: String,
    endpoint: EndpointKind,
    resp: &RawResponse<'_>,
    s: &RateLimitSignal,
) -> Problem {
    let code_s = Some(code.to_string());
    let api = Problem::Api;
    match code {
        // 10006 "Too many visits. Exceeded the API Rate Limit."; 170005 "Too
        // many new orders"; 170222 "Too many requests in this time frame."
        10006 | 170005 | 170222 => {
            // The reset timestamp is "now" unless the limit was exceeded, so only a
            // future one is a wait order.
            let until_reset = s
                .reset_at_ms
                .map(|t| t.saturating_sub(resp.received_at_ms))
                .filter(|d| *d > 0)
                .map(|d| d as u64);
            api(ApiError::RateLimited {
                retry_after_ms: s.retry_after_ms.or(until_reset),
                code: code_s,
                message: msg,
            })
        }
        // 10018 "Exceeded the IP Rate Limit." (struck through in error.mdx,
        // still in client error maps) is the in-body form of the IP limit's
        // 403: the 10-minute wait; 10009 "IP has been banned."
        10018 | 10009 => ip_banned(resp, format!("retCode {code}: {msg}")),
        // 10001 "Request parameter error" names the symbol when it is the
        // symbol ("Not supported symbols"); 10029 "The requested symbol is
        // invalid"; 170121 "Invalid symbol."
        10001 if parse::has_symbol(endpoint) && msg.to_ascii_lowercase().contains("symbol") => {
            api(ApiError::InvalidSymbol {
                code: code_s,
                message: msg,
            })
        }
        10029 | 170121 => api(ApiError::InvalidSymbol {
            code: code_s,
            message: msg,
        }),
        // 10000 "Server Timeout", 10016 "Server error." (WS: "internal server
        // error; Service is restarting"), 170001 "Internal error.", 170007
        // "Timeout waiting for response from backend server.", 170032
        // "Network error. Please try again later", 170234 "System Error",
        // 3400214 "Server error, please try again later".
        10000 | 10016 | 170001 | 170007 | 170032 | 170234 | 3400214 => {
            api(ApiError::ExchangeFault {
                code: code_s,
                message: msg,
            })
        }
        // 10003 "API key is invalid.", 10004 "Error sign", 10005 "Permission
        // denied", 10007 "User authentication failed.", 10010 "Unmatched IP".
        10003 | 10004 | 10005 | 10007 | 10010 => api(ApiError::Auth {
            code: code_s,
            message: msg,
        }),
        // 10001 "Request parameter error", 10002 "The request time exceeds
        // the time window range." (our clock), 10014 "Invalid duplicate
        // request", 10017 "Route not found.", 170105 "Parameter '%s' was
        // empty.", 170130 "Data sent for paramter '%s' is not valid."
        10001 | 10002 | 10014 | 10017 | 170105 | 170130 => api(ApiError::BadRequest {
            code: code_s,
            message: msg,
        }),
        // The IP limit's "403, access too frequent" (rate-limit.mdx), however
        // it is wrapped: an unlisted code on a 403 is that ban too.
        _ if resp.status == 403 || msg.to_ascii_lowercase().contains("access too frequent") => {
            ip_banned(resp, format!("HTTP {} retCode {code}: {msg}", resp.status))
        }
        _ if msg.to_ascii_lowercase().contains("maintenance") => {
            api(ApiError::Maintenance { message: msg })
        }
        _ => api(ApiError::Exchange {
            code: code_s,
            message: msg,
        }),
    }
}

fn payload(
    endpoint: EndpointKind,
    body: &Value,
    resp: &RawResponse<'_>,
) -> Result<Payload, Problem> {
    let result = body
        .get("result")
        .filter(|r| r.is_object())
        .ok_or_else(|| parse::schema("missing result object"))?;
    let time = parse::opt_int(body.get("time"), "time")?;
    match endpoint {
        EndpointKind::Time => {
            // timeNano is the precise one; the envelope's `time` is the fallback.
            let nano = result
                .get("timeNano")
                .and_then(Value::as_str)
                .and_then(|s| s.parse::<i128>().ok());
            let ms = match nano {
                Some(ns) => i64::try_from(ns / 1_000_000).ok(),
                None => match parse::opt_int(result.get("timeSecond"), "timeSecond")? {
                    Some(s) => s.checked_mul(1000),
                    None => time,
                },
            };
            Ok(Payload::Time {
                server_ms: ms.ok_or_else(|| parse::schema("no timeNano, timeSecond or time"))?,
            })
        }
        EndpointKind::Ticker => {
            let row = at(result, &["list"])
                .and_then(Value::as_array)
                .and_then(|l| l.first())
                .ok_or_else(|| parse::schema("result.list is empty or missing"))?;
            let symbol = parse::str_field(row, "symbol");
            parse::same_instrument(resp, &symbol, parse::plain_instrument)?;
            let bid = side_price(row, "bid1Price", "bid1Size")?;
            let ask = side_price(row, "ask1Price", "ask1Size")?;
            Ok(Payload::Ticker(Ticker {
                symbol,
                last: opt_num(row.get("lastPrice"), "lastPrice")?.map(|n| n.value),
                bid,
                ask,
                // Rows carry no timestamp; the envelope's `time` is when it was served.
                exchange_ts_ms: time,
            }))
        }
        EndpointKind::Book => {
            // `result.s` is the symbol of the book (orderbook.mdx).
            let symbol = parse::str_field(result, "s");
            parse::same_instrument(resp, &symbol, parse::plain_instrument)?;
            Ok(Payload::Book(OrderBook {
                symbol,
                bids: parse::levels(result.get("b"), "b")?,
                asks: parse::levels(result.get("a"), "a")?,
                exchange_ts_ms: parse::opt_int(result.get("ts"), "ts")?.or(time),
                update_id: parse::opt_u64(result.get("u"), "u")?,
            }))
        }
    }
}

/// Bybit says "no bid" with `"0"` price and `"0"` size (options, thin books)
/// or an empty string; only a price with a size is a quote.
fn side_price(row: &Value, price: &str, size: &str) -> Result<Option<f64>, Problem> {
    let p = opt_num(row.get(price), price)?;
    let s = opt_num(row.get(size), size)?;
    Ok(match (p, s) {
        (Some(p), Some(s)) if p.value == 0.0 && s.value == 0.0 => None,
        (p, _) => p.map(|n| n.value),
    })
}
