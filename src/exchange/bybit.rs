//! Bybit v5, REST `/v5/market` (spot category).
//!
//! Every body is `{"retCode": 0, "retMsg": "OK", "result": {...}, "time": ms}`;
//! errors keep that envelope with a non-zero `retCode`, and the rate-limit
//! error 10006 arrives *inside an HTTP 200*, so the code decides, never the
//! status. Usage headers `X-Bapi-Limit-Status` (remaining), `X-Bapi-Limit`
//! and `X-Bapi-Limit-Reset-Timestamp` are optional (absent on some 10006s).
//! Breaking the per-IP limit (600 requests / 5 s) answers 403 "access too
//! frequent" and the IP must wait at least 10 minutes.

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
                403 => ip_banned(resp, format!("HTTP 403 {}", parse::excerpt(resp.body))),
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
                403 => ip_banned(resp, format!("HTTP 403 {}", parse::excerpt(resp.body))),
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

fn classify(
    code: i64,
    msg: String,
    endpoint: EndpointKind,
    resp: &RawResponse<'_>,
    s: &RateLimitSignal,
) -> Problem {
    let code_s = Some(code.to_string());
    match code {
        // 10018 (IP limit) is deprecated in the docs but still in client error maps.
        10006 | 10018 => {
            // The reset timestamp is "now" unless the limit was exceeded, so only a
            // future one is a wait order.
            let until_reset = s
                .reset_at_ms
                .map(|t| t.saturating_sub(resp.received_at_ms))
                .filter(|d| *d > 0)
                .map(|d| d as u64);
            Problem::Api(ApiError::RateLimited {
                retry_after_ms: s.retry_after_ms.or(until_reset),
                code: code_s,
                message: msg,
            })
        }
        10001 if parse::has_symbol(endpoint) && msg.to_ascii_lowercase().contains("symbol") => {
            Problem::Api(ApiError::InvalidSymbol {
                code: code_s,
                message: msg,
            })
        }
        _ if msg.to_ascii_lowercase().contains("maintenance") => {
            Problem::Api(ApiError::Maintenance { message: msg })
        }
        _ => Problem::Api(ApiError::Exchange {
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
