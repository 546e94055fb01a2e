//! OKX v5, REST `/api/v5/market` and `/api/v5/public`.
//!
//! Every body is `{"code": "0", "msg": "", "data": [...]}`. Errors keep the
//! envelope and may arrive with HTTP 200: the rate-limit code 50011 is
//! documented both as 200 and as 429, and a 2021 capture sent the code as a
//! number, so the code is read as text whatever its JSON type. OKX sends no
//! usage headers.

use super::parse::{self, opt_num};
use super::{
    DefaultBudget, ExchangeSpec, Interpretation, OrderBook, Payload, Preset, Problem, RawResponse,
    Ticker,
};
use crate::model::{ApiError, EndpointKind, ExchangeKind, InvalidReason};
use serde_json::Value;

/// Everything exwatch knows about OKX that is not parsing code:
/// read through [`super::spec`].
pub const SPEC: ExchangeSpec = ExchangeSpec {
    kind: ExchangeKind::Okx,
    base_url: Some("https://www.okx.com"),
    default_symbol: "BTC-USDT",
    budget: DefaultBudget {
        // `market/ticker` allows 20 requests / 2 s per IP (books 40 / 2 s, time 10 / 2 s).
        capacity: 20.0,
        refill_per_sec: 10.0,
        source: "OKX v5 API docs: GET /api/v5/market/ticker, \"Rate Limit: 20 requests per 2 seconds\"",
    },
    preset: Some(preset),
    interpret: |endpoint, resp, _| interpret(endpoint, resp),
};

pub fn preset(endpoint: EndpointKind, symbol: &str, depth: u32) -> Preset {
    match endpoint {
        // Costs twice a ticker in ccxt's model: its own limit is half (10 / 2 s).
        EndpointKind::Time => Preset {
            path: "/api/v5/public/time".into(),
            query: Vec::new(),
            weight: 2,
        },
        EndpointKind::Ticker => Preset {
            path: "/api/v5/market/ticker".into(),
            query: vec![("instId".into(), symbol.into())],
            weight: 1,
        },
        EndpointKind::Book => {
            // sz defaults to 1 level, max 400.
            let sz = if depth == 0 { 50 } else { depth.min(400) };
            Preset {
                path: "/api/v5/market/books".into(),
                query: vec![
                    ("instId".into(), symbol.into()),
                    ("sz".into(), sz.to_string()),
                ],
                weight: 1,
            }
        }
    }
}

pub fn interpret(endpoint: EndpointKind, resp: &RawResponse<'_>) -> Interpretation {
    let mut signal = parse::base_signal(resp);
    let body = match parse::json_body(resp.body) {
        Ok(v) => v,
        Err(reason) => return parse::finish(Err(parse::fallback(resp, reason)), signal),
    };
    let code = body.get("code").and_then(parse::code_text);
    let msg = body
        .get("msg")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    match code.as_deref() {
        Some("0") if parse::is_success(resp.status) => {
            parse::finish(payload(endpoint, &body, resp), signal)
        }
        Some("0") | None => parse::finish(
            Err(parse::fallback(
                resp,
                InvalidReason::Schema {
                    detail: "no code field".into(),
                },
            )),
            signal,
        ),
        Some(code) => {
            let problem = classify(code, msg, endpoint, resp);
            if let Problem::Api(ApiError::RateLimited { retry_after_ms, .. }) = &problem {
                signal.retry_after_ms = *retry_after_ms;
            }
            parse::finish(Err(problem), signal)
        }
    }
}

fn classify(code: &str, msg: String, endpoint: EndpointKind, resp: &RawResponse<'_>) -> Problem {
    let code_s = Some(code.to_string());
    match code {
        // 50011 rate limit (200 or 429), 50013 systems busy (429), 50040 too frequent.
        "50011" | "50013" | "50040" => Problem::Api(ApiError::RateLimited {
            retry_after_ms: parse::retry_after_ms(resp),
            code: code_s,
            message: msg,
        }),
        "51001" if parse::has_symbol(endpoint) => Problem::Api(ApiError::InvalidSymbol {
            code: code_s,
            message: msg,
        }),
        // 50001 "Service temporarily unavailable"; 50035/50036 maintenance notices.
        "50001" => Problem::Api(ApiError::Maintenance { message: msg }),
        _ if msg.to_ascii_lowercase().contains("maintenance") => {
            Problem::Api(ApiError::Maintenance { message: msg })
        }
        _ if resp.status == 429 => Problem::Api(ApiError::RateLimited {
            retry_after_ms: parse::retry_after_ms(resp),
            code: code_s,
            message: msg,
        }),
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
    let row = body
        .get("data")
        .and_then(Value::as_array)
        .and_then(|d| d.first())
        .ok_or_else(|| parse::schema("data is empty or missing"))?;
    // Tickers name their `instId`; REST books do not (market/books answers
    // asks, bids, ts only), so a book is checked only if it names one.
    let symbol = parse::str_field(row, "instId");
    if endpoint != EndpointKind::Time {
        parse::same_instrument(resp, &symbol, parse::plain_instrument)?;
    }
    let ts = parse::opt_int(row.get("ts"), "ts")?;
    match endpoint {
        EndpointKind::Time => Ok(Payload::Time {
            server_ms: ts.ok_or_else(|| parse::schema("missing data[0].ts"))?,
        }),
        EndpointKind::Ticker => Ok(Payload::Ticker(Ticker {
            symbol: symbol.clone(),
            last: opt_num(row.get("last"), "last")?.map(|n| n.value),
            bid: opt_num(row.get("bidPx"), "bidPx")?.map(|n| n.value),
            ask: opt_num(row.get("askPx"), "askPx")?.map(|n| n.value),
            exchange_ts_ms: ts,
        })),
        // Levels are [px, sz, "0" (deprecated), numOrders]; REST books have no seqId.
        EndpointKind::Book => Ok(Payload::Book(OrderBook {
            symbol,
            bids: parse::levels(row.get("bids"), "bids")?,
            asks: parse::levels(row.get("asks"), "asks")?,
            exchange_ts_ms: ts,
            update_id: parse::opt_u64(row.get("seqId"), "seqId")?,
        })),
    }
}
