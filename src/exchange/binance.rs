//! Binance spot, REST `/api/v3` (market data base `data-api.binance.vision`).
//!
//! Errors are `{"code": -1003, "msg": "..."}` with HTTP 429 (rate limit) or
//! 418 (IP auto-banned after ignoring 429s), both with `Retry-After` in
//! seconds. Every response carries `X-MBX-USED-WEIGHT-1M`, the IP's used
//! weight in the current minute, which the limiter follows.
//!
//! Codes are classified by meaning ([`classify`]), whatever the status:
//! errors.md groups them as "10xx - General Server or Network issues" and
//! "11xx - Request issues"; the table with sources is in `docs/adapters.md`.

use super::parse::{self, at, opt_num};
use super::{
    DefaultBudget, ExchangeSpec, Interpretation, OrderBook, Payload, Preset, Problem, RawResponse,
    Ticker,
};
use crate::model::{ApiError, EndpointKind, ExchangeKind, RateLimitSignal};
use serde_json::Value;

/// Everything exwatch knows about Binance that is not parsing code:
/// read through [`super::spec`].
pub const SPEC: ExchangeSpec = ExchangeSpec {
    kind: ExchangeKind::Binance,
    base_url: Some("https://data-api.binance.vision"),
    default_symbol: "BTCUSDT",
    budget: DefaultBudget {
        // `REQUEST_WEIGHT` 6000 per minute per IP (enums.md, exchangeInfo).
        capacity: 6000.0,
        refill_per_sec: 100.0,
        source: "Binance spot API docs: rest-api.md, enums.md (REQUEST_WEIGHT), exchangeInfo rateLimits",
    },
    preset: Some(preset),
    interpret: |endpoint, resp, _| interpret(endpoint, resp),
};

/// The weight window of `X-MBX-USED-WEIGHT-1M`.
pub const USED_WEIGHT_WINDOW_MS: u64 = 60_000;

/// `GET /api/v3/depth` weight by `limit` (rest-api.md); 0 means the default of 100.
pub fn depth_weight(limit: u32) -> u32 {
    match limit {
        0..=100 => 5,
        101..=500 => 25,
        501..=1000 => 50,
        _ => 250,
    }
}

pub fn preset(endpoint: EndpointKind, symbol: &str, depth: u32) -> Preset {
    match endpoint {
        EndpointKind::Time => Preset {
            path: "/api/v3/time".into(),
            query: Vec::new(),
            weight: 1,
        },
        // bookTicker rather than ticker/price: it carries the best bid and ask,
        // which crossed-book and jump checks need, for the same weight.
        EndpointKind::Ticker => Preset {
            path: "/api/v3/ticker/bookTicker".into(),
            query: vec![("symbol".into(), symbol.into())],
            weight: 2,
        },
        EndpointKind::Book => {
            let mut query = vec![("symbol".into(), symbol.into())];
            if depth > 0 {
                query.push(("limit".into(), depth.min(5000).to_string()));
            }
            Preset {
                path: "/api/v3/depth".into(),
                query,
                weight: depth_weight(depth),
            }
        }
    }
}

pub fn interpret(endpoint: EndpointKind, resp: &RawResponse<'_>) -> Interpretation {
    let mut signal = parse::base_signal(resp);
    if let Some(used) = parse::header_u64(resp, "x-mbx-used-weight-1m") {
        signal.used = Some(used);
        signal.window_ms = Some(USED_WEIGHT_WINDOW_MS);
        signal.limit = Some(SPEC.budget.capacity as u64);
    }
    let body = match parse::json_body(resp.body) {
        Ok(v) => v,
        Err(reason) => {
            let problem = match resp.status {
                418 => banned(
                    resp,
                    None,
                    format!("HTTP 418 {}", parse::excerpt(resp.body)),
                ),
                // rest-api.md: "HTTP 403 return code is used when the WAF Limit
                // (Web Application Firewall) has been violated." A CDN's own
                // page (CloudFront geo-block) says more, so it goes first.
                403 => super::classify::cdn_block(resp)
                    .map(Problem::Api)
                    .unwrap_or_else(|| waf_block(resp)),
                _ => parse::fallback(resp, reason),
            };
            return finish_problem(problem, signal);
        }
    };
    if let Some(err) = api_error(&body, resp) {
        return finish_problem(err, signal);
    }
    if !parse::is_success(resp.status) {
        return finish_problem(
            parse::fallback(
                resp,
                super::InvalidReason::Schema {
                    detail: String::new(),
                },
            ),
            signal,
        );
    }
    parse::finish(payload(endpoint, &body, resp), signal)
}

fn finish_problem(p: Problem, mut signal: RateLimitSignal) -> Interpretation {
    if let Problem::Api(ApiError::IpBanned { until_ms, .. }) = &p {
        signal.banned_until_ms = *until_ms;
    }
    parse::finish(Err(p), signal)
}

fn banned(resp: &RawResponse<'_>, until_ms: Option<i64>, message: String) -> Problem {
    let retry_after_ms = parse::retry_after_ms(resp);
    // The message's ban end is exact; without it, Retry-After counts from arrival.
    let until_ms = until_ms.or_else(|| {
        retry_after_ms.map(|r| {
            resp.received_at_ms
                .saturating_add(i64::try_from(r).unwrap_or(i64::MAX))
        })
    });
    Problem::Api(ApiError::IpBanned {
        until_ms,
        retry_after_ms,
        message,
    })
}

/// Binance's WAF refusal (HTTP 403 without an error body): a block, not a
/// rate ban and not our request.
fn waf_block(resp: &RawResponse<'_>) -> Problem {
    Problem::Api(ApiError::Blocked {
        by: "Binance WAF".into(),
        message: format!("HTTP 403 {}", parse::excerpt(resp.body))
            .trim_end()
            .to_string(),
    })
}

/// `{"code": <negative>, "msg": ...}`: Binance's error envelope.
fn api_error(body: &Value, resp: &RawResponse<'_>) -> Option<Problem> {
    let code = body.get("code")?.as_i64()?;
    let msg = body
        .get("msg")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    if code == 0 && msg.is_empty() {
        return None;
    }
    Some(classify(code, msg, resp))
}

/// One Binance error by its meaning (errors.md, last updated 2025-01-09),
/// whatever the HTTP status; the status decides only what the code leaves
/// open (418 is a ban, 429 a rate limit, 451 a restricted location).
fn classify(code: i64, msg: String, resp: &RawResponse<'_>) -> Problem {
    let until = banned_until_ms(&msg);
    let code_s = || Some(code.to_string());
    let api = Problem::Api;
    match code {
        // -1003 TOO_MANY_REQUESTS: "Way too much request weight used; IP banned until %s".
        -1003 if resp.status == 418 || until.is_some() => banned(resp, until, msg),
        // -1003 TOO_MANY_REQUESTS, -1015 TOO_MANY_ORDERS.
        -1003 | -1015 => api(ApiError::RateLimited {
            retry_after_ms: parse::retry_after_ms(resp),
            code: code_s(),
            message: msg,
        }),
        _ if resp.status == 418 => banned(resp, until, msg),
        // -1121 BAD_SYMBOL "Invalid symbol."
        -1121 => api(ApiError::InvalidSymbol {
            code: code_s(),
            message: msg,
        }),
        // 10xx "General Server or Network issues": -1000 UNKNOWN, -1001
        // DISCONNECTED ("Internal error"), -1006 UNEXPECTED_RESP, -1007
        // TIMEOUT ("Timeout waiting for response from backend server"),
        // -1008 SERVER_BUSY, -1016 SERVICE_SHUTTING_DOWN.
        -1000 | -1001 | -1006 | -1007 | -1008 | -1016 => api(ApiError::ExchangeFault {
            code: code_s(),
            message: msg,
        }),
        // -1002 UNAUTHORIZED, -1022 INVALID_SIGNATURE, -2014
        // BAD_API_KEY_FMT, -2015 REJECTED_MBX_KEY ("Invalid API-key, IP, or
        // permissions for action.").
        -1002 | -1022 | -2014 | -2015 => api(ApiError::Auth {
            code: code_s(),
            message: msg,
        }),
        // -1013 INVALID_MESSAGE ("rejected by the API"), -1014
        // UNKNOWN_ORDER_COMPOSITION, -1020 UNSUPPORTED_OPERATION, -1021
        // INVALID_TIMESTAMP (our clock), 11xx "Request issues" (-1100
        // ILLEGAL_CHARS ... -1130 INVALID_PARAMETER ...), -2016
        // NO_TRADING_WINDOW.
        -1013 | -1014 | -1020 | -1021 | -1199..=-1100 | -2016 => api(ApiError::BadRequest {
            code: code_s(),
            message: msg,
        }),
        _ if resp.status == 429 => api(ApiError::RateLimited {
            retry_after_ms: parse::retry_after_ms(resp),
            code: code_s(),
            message: msg,
        }),
        // "Service unavailable from a restricted location according to 'b.
        // Eligibility'" with HTTP 451 and code 0 (ccxt/ccxt#16044,
        // eprbell/dali-rp2#237).
        _ if resp.status == 451 || msg.contains("restricted location") => api(ApiError::Blocked {
            by: "Binance".into(),
            message: msg,
        }),
        _ => api(ApiError::Exchange {
            code: code_s(),
            message: msg,
        }),
    }
}

/// "... IP banned until 1659761931230. ..." → 1659761931230.
pub fn banned_until_ms(msg: &str) -> Option<i64> {
    let rest = &msg[msg.find("banned until")? + "banned until".len()..];
    let digits: String = rest
        .trim_start()
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

fn payload(
    endpoint: EndpointKind,
    body: &Value,
    resp: &RawResponse<'_>,
) -> Result<Payload, Problem> {
    if body.is_array() {
        return Err(parse::schema(
            "got a list: the request needs a single `symbol`",
        ));
    }
    match endpoint {
        EndpointKind::Time => {
            let ms = parse::int(
                body.get("serverTime")
                    .ok_or_else(|| parse::schema("missing serverTime"))?,
                "serverTime",
            )?;
            Ok(Payload::Time { server_ms: ms })
        }
        EndpointKind::Ticker => {
            // Checked first: another instrument's numbers are beside the point.
            let symbol = parse::str_field(body, "symbol");
            parse::same_instrument(resp, &symbol, parse::plain_instrument)?;
            // bookTicker, ticker/price and ticker/24hr all share these names.
            let last = match body.get("lastPrice") {
                Some(v) => opt_num(Some(v), "lastPrice")?,
                None => opt_num(body.get("price"), "price")?,
            };
            let bid = opt_num(body.get("bidPrice"), "bidPrice")?;
            let ask = opt_num(body.get("askPrice"), "askPrice")?;
            if last.is_none() && bid.is_none() && ask.is_none() {
                return Err(parse::schema("no bidPrice, askPrice or price"));
            }
            Ok(Payload::Ticker(Ticker {
                symbol,
                last: last.map(|n| n.value),
                bid: bid.map(|n| n.value),
                ask: ask.map(|n| n.value),
                exchange_ts_ms: parse::opt_int(body.get("closeTime"), "closeTime")?,
            }))
        }
        EndpointKind::Book => {
            // depth does not name its symbol (rest-api.md); a proxy's or a
            // future version's `symbol` is checked all the same.
            let symbol = parse::str_field(body, "symbol");
            parse::same_instrument(resp, &symbol, parse::plain_instrument)?;
            let update_id = parse::opt_u64(body.get("lastUpdateId"), "lastUpdateId")?;
            if update_id.is_none() && at(body, &["bids"]).is_none() {
                return Err(parse::schema("missing lastUpdateId, bids and asks"));
            }
            Ok(Payload::Book(OrderBook {
                symbol,
                bids: parse::levels(body.get("bids"), "bids")?,
                asks: parse::levels(body.get("asks"), "asks")?,
                // depth carries no timestamp (rest-api.md).
                exchange_ts_ms: None,
                update_id,
            }))
        }
    }
}
