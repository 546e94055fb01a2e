//! OKX v5, REST `/api/v5/market` and `/api/v5/public`.
//!
//! Every body is `{"code": "0", "msg": "", "data": [...]}`. Errors keep the
//! envelope and may arrive with HTTP 200: the rate-limit code 50011 is
//! documented both as 200 and as 429, and a 2021 capture sent the code as a
//! number, so the code is read as text whatever its JSON type. OKX sends no
//! usage headers.
//!
//! Codes are classified by meaning ([`classify`]): an exchange-side code in
//! an HTTP 200 (`{"code":500,"msg":"Internal Server Error"}`, 50026 "System
//! error") is a server error the breaker counts. The table with sources is
//! in `docs/adapters.md`.

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

/// One OKX code by its meaning (REST error table "Public", error codes 50000
/// to 53999), whatever the HTTP status.
fn classify(code: &str, msg: String, endpoint: EndpointKind, resp: &RawResponse<'_>) -> Problem {
    let code_s = Some(code.to_string());
    let api = Problem::Api;
    match code {
        // 50011 "Rate limit reached" (200) / "Too Many Requests" (429), 50040
        // "Too frequent operations", 50061 "maximum order rate limit".
        "50011" | "50040" | "50061" => api(ApiError::RateLimited {
            retry_after_ms: parse::retry_after_ms(resp),
            code: code_s,
            message: msg,
        }),
        "51001" if parse::has_symbol(endpoint) => api(ApiError::InvalidSymbol {
            code: code_s,
            message: msg,
        }),
        // 50001 "Service temporarily unavailable" (503); 50046 "temporarily
        // unavailable while we make some improvements".
        "50001" | "50046" => api(ApiError::Maintenance { message: msg }),
        // 50004 "API endpoint request timeout", 50005 "API endpoint is
        // inactive or unavailable" (410), 50013 "Systems are busy" (429: the
        // exchange's overload, not our rate), 50026 "System error" (500),
        // and "500" "Internal Server Error" inside an HTTP 200 (exwatch #13).
        "50004" | "50005" | "50013" | "50026" | "500" => api(ApiError::ExchangeFault {
            code: code_s,
            message: msg,
        }),
        // 50051 "Due to compliance restrictions in your country or region";
        // 50121 "You can't access our services through the IP address".
        "50051" | "50121" => api(ApiError::Blocked {
            by: "OKX".into(),
            message: msg,
        }),
        // 50030 "You don't have permission to use this API endpoint", 50035
        // "APIKey must be bound to IP", 50100 "API frozen", 50101..50114
        // (API class, 401: key, passphrase, sign, IP whitelist; not the two
        // timestamp codes), 50119 "API key doesn't exist", 50120 "API key
        // doesn't have permission".
        "50030" | "50035" | "50100" | "50101" | "50103" | "50104" | "50105" | "50106" | "50107"
        | "50108" | "50109" | "50110" | "50111" | "50113" | "50114" | "50119" | "50120" => {
            api(ApiError::Auth {
                code: code_s,
                message: msg,
            })
        }
        // 50000 "Body for POST request cannot be empty", 50002 "JSON syntax
        // error", 50006 "Invalid Content-Type", 50014 "Parameter {param0}
        // can not be empty", 50015, 50016, 50024, 50025 (parameter
        // combinations), 50102 "Timestamp request expired" and 50112
        // "Invalid OK-ACCESS-TIMESTAMP" (our clock), 50115 "Invalid request
        // method", 51000 "Parameter {param0} error", 51001 on an endpoint
        // without a symbol.
        "50000" | "50002" | "50006" | "50014" | "50015" | "50016" | "50024" | "50025" | "50102"
        | "50112" | "50115" | "51000" | "51001" => api(ApiError::BadRequest {
            code: code_s,
            message: msg,
        }),
        _ if msg.to_ascii_lowercase().contains("maintenance") => {
            api(ApiError::Maintenance { message: msg })
        }
        _ if resp.status == 429 => api(ApiError::RateLimited {
            retry_after_ms: parse::retry_after_ms(resp),
            code: code_s,
            message: msg,
        }),
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
