//! Coinbase Exchange REST (`api.exchange.coinbase.com`).
//!
//! Bodies are bare objects; errors are `{"message": "..."}` with a 4xx/5xx
//! status ("Public rate limit exceeded" with 429, "NotFound" with 404 for an
//! unknown product). Timestamps are RFC 3339 with microseconds, `/time`
//! gives `epoch` in decimal seconds, and the book has a `sequence` but no
//! timestamp. No usage headers are documented.
//!
//! Coinbase has no error codes: the status and the message carry the
//! meaning ([`classify`], "Common Error Codes" of the Exchange REST API
//! requests page; the table is in `docs/adapters.md`).

use super::parse::{self, opt_num};
use super::{
    DefaultBudget, ExchangeSpec, Interpretation, OrderBook, Payload, Preset, Problem, RawResponse,
    Ticker,
};
use crate::model::{ApiError, EndpointKind, ExchangeKind, InvalidReason};
use serde_json::Value;

/// Everything exwatch knows about Coinbase that is not parsing code:
/// read through [`super::spec`].
pub const SPEC: ExchangeSpec = ExchangeSpec {
    kind: ExchangeKind::Coinbase,
    base_url: Some("https://api.exchange.coinbase.com"),
    default_symbol: "BTC-USD",
    budget: DefaultBudget {
        // Public endpoints: 10 requests/s per IP, bursts up to 15 (lazy-fill token bucket).
        capacity: 15.0,
        refill_per_sec: 10.0,
        source: "Coinbase Exchange API docs: Rate limits, public endpoints",
    },
    preset: Some(preset),
    interpret: |endpoint, resp, _| interpret(endpoint, resp),
};

/// A product id as one path segment: ids are like `BTC-USD`, anything else is
/// percent-encoded so a config typo cannot change the path.
pub fn path_segment(symbol: &str) -> String {
    let mut out = String::new();
    for b in symbol.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

pub fn preset(endpoint: EndpointKind, symbol: &str, _depth: u32) -> Preset {
    let id = path_segment(symbol);
    match endpoint {
        EndpointKind::Time => Preset {
            path: "/time".into(),
            query: Vec::new(),
            weight: 1,
        },
        EndpointKind::Ticker => Preset {
            path: format!("/products/{id}/ticker"),
            query: Vec::new(),
            weight: 1,
        },
        // Level 2: aggregated levels; the API takes no depth parameter.
        EndpointKind::Book => Preset {
            path: format!("/products/{id}/book"),
            query: vec![("level".into(), "2".into())],
            weight: 1,
        },
    }
}

pub fn interpret(endpoint: EndpointKind, resp: &RawResponse<'_>) -> Interpretation {
    let mut signal = parse::base_signal(resp);
    let body = match parse::json_body(resp.body) {
        Ok(v) => v,
        Err(reason) => return parse::finish(Err(parse::fallback(resp, reason)), signal),
    };
    if let Some(msg) = body.get("message").and_then(Value::as_str) {
        let problem = classify(msg.to_string(), endpoint, resp);
        if let Problem::Api(ApiError::RateLimited { retry_after_ms, .. }) = &problem {
            signal.retry_after_ms = *retry_after_ms;
        }
        return parse::finish(Err(problem), signal);
    }
    if !parse::is_success(resp.status) {
        return parse::finish(
            Err(parse::fallback(
                resp,
                InvalidReason::Schema {
                    detail: "no message".into(),
                },
            )),
            signal,
        );
    }
    parse::finish(payload(endpoint, &body), signal)
}

/// One `{"message": ...}` error by its meaning: the message where it says
/// more than the status ("Public rate limit exceeded", "NotFound",
/// maintenance), else the documented meaning of the status.
fn classify(msg: String, endpoint: EndpointKind, resp: &RawResponse<'_>) -> Problem {
    let lower = msg.to_ascii_lowercase();
    let code = Some(resp.status.to_string());
    let api = Problem::Api;
    if resp.status == 429 || lower.contains("rate limit exceeded") {
        api(ApiError::RateLimited {
            retry_after_ms: parse::retry_after_ms(resp),
            code: None,
            message: msg,
        })
    } else if parse::has_symbol(endpoint)
        && (resp.status == 404 || lower == "notfound" || lower.contains("not found"))
    {
        api(ApiError::InvalidSymbol { code, message: msg })
    } else if lower.contains("maintenance") || lower.contains("unavailable") {
        api(ApiError::Maintenance { message: msg })
    } else {
        match resp.status {
            // 400 "Bad Request -- Invalid request format"; 404 "Not Found" on
            // a path without a product.
            400 | 404 => api(ApiError::BadRequest { code, message: msg }),
            // 401 "Unauthorized -- Invalid API Key", 403 "Forbidden -- You do
            // not have access to the requested resource".
            401 | 403 => api(ApiError::Auth { code, message: msg }),
            // 500 "Internal Server Error -- We had a problem with our server".
            500..=599 => api(ApiError::ExchangeFault { code, message: msg }),
            _ => api(ApiError::Exchange { code, message: msg }),
        }
    }
}

fn payload(endpoint: EndpointKind, body: &Value) -> Result<Payload, Problem> {
    if !body.is_object() {
        return Err(parse::schema("expected an object"));
    }
    match endpoint {
        EndpointKind::Time => {
            let from_epoch = match body.get("epoch") {
                Some(v) => Some(parse::num(v, "epoch")?.value).and_then(parse::seconds_to_ms),
                None => None,
            };
            let from_iso = body
                .get("iso")
                .and_then(Value::as_str)
                .and_then(parse::rfc3339_ms);
            let ms = from_epoch
                .or(from_iso)
                .ok_or_else(|| parse::schema("no epoch or iso"))?;
            Ok(Payload::Time { server_ms: ms })
        }
        EndpointKind::Ticker => {
            let ts = match body.get("time").and_then(Value::as_str) {
                Some(t) => Some(parse::rfc3339_ms(t).ok_or_else(|| {
                    Problem::Invalid(InvalidReason::BadNumber {
                        field: "time".into(),
                        text: t.chars().take(40).collect(),
                    })
                })?),
                None => None,
            };
            Ok(Payload::Ticker(Ticker {
                // The product id is in the path only: neither the ticker nor
                // the book body names it, and `trade_id` / `sequence` are
                // per-product counters that cannot tell products apart, so
                // a wrong-instrument answer cannot be seen here.
                symbol: String::new(),
                last: opt_num(body.get("price"), "price")?.map(|n| n.value),
                bid: opt_num(body.get("bid"), "bid")?.map(|n| n.value),
                ask: opt_num(body.get("ask"), "ask")?.map(|n| n.value),
                exchange_ts_ms: ts,
            }))
        }
        // Levels are [price, size, num_orders]; `sequence` is an unquoted integer.
        EndpointKind::Book => Ok(Payload::Book(OrderBook {
            symbol: String::new(),
            bids: parse::levels(body.get("bids"), "bids")?,
            asks: parse::levels(body.get("asks"), "asks")?,
            exchange_ts_ms: match body.get("time").and_then(Value::as_str) {
                Some(t) => parse::rfc3339_ms(t),
                None => None,
            },
            update_id: parse::opt_u64(body.get("sequence"), "sequence")?,
        })),
    }
}
