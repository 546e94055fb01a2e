//! Every documented error code of every exchange, by meaning: one table per
//! exchange (the tables of docs/adapters.md "Error codes by meaning", with
//! their sources there), each row read through the adapter and the probe's
//! outcome, with the class the breaker, the limiter and the alerts see as the
//! expected value. A code's meaning decides whatever the HTTP status, so most
//! rows are also read with other statuses and must not change.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed unwrap is a failed test

use exwatch::breaker::BreakerSettings;
use exwatch::breaker::machine::Machine;
use exwatch::exchange::{self, Problem, RawResponse};
use exwatch::model::{EndpointKind, ExchangeKind, Outcome, OutcomeClass, RateLimitSignal};
use exwatch::probe;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde_json::json;

use EndpointKind::{Ticker as Tick, Time};
use ExchangeKind::{Binance, Bybit, Coinbase, Kraken, Okx};
use OutcomeClass::{Banned, Blocked, ClientError, RateLimited, ServerError};

const NOW: i64 = 1_800_000_000_000;

/// The statuses a status-free code is also read with.
const OTHER_STATUSES: [u16; 3] = [200, 400, 503];

/// One response through the adapter and the probe's classification: the
/// outcome and the signal the limiter would be given.
fn outcome(
    kind: ExchangeKind,
    endpoint: EndpointKind,
    status: u16,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (Outcome, Option<RateLimitSignal>) {
    let mut h = HeaderMap::new();
    for (k, v) in headers {
        h.insert(
            HeaderName::from_bytes(k.as_bytes()).unwrap(),
            HeaderValue::from_str(v).unwrap(),
        );
    }
    let raw = RawResponse {
        status,
        headers: &h,
        body,
        received_at_ms: NOW,
        elapsed_ms: 5,
        requested_symbol: None,
    };
    let interp = exchange::interpret(kind, endpoint, &raw, None);
    let mut signal = interp.signal;
    let o = match interp.result {
        Ok(_) => Outcome::Ok,
        Err(p) => probe::classify_problem(p, status, &mut signal, NOW),
    };
    (o, signal.filter(|s| !s.is_empty()))
}

/// One row: a body in the exchange's envelope, the status it is documented
/// with, and the expected `status_label` and class.
struct Row {
    what: String,
    endpoint: EndpointKind,
    status: u16,
    body: Vec<u8>,
    label: &'static str,
    class: OutcomeClass,
    /// The code alone decides: the same under [`OTHER_STATUSES`].
    status_free: bool,
}

fn check(kind: ExchangeKind, rows: &[Row]) {
    let mut wrong = Vec::new();
    for r in rows {
        let mut statuses = vec![r.status];
        if r.status_free {
            statuses.extend(OTHER_STATUSES.iter().filter(|s| **s != r.status));
        }
        for status in statuses {
            let (o, _) = outcome(kind, r.endpoint, status, &[], &r.body);
            // An exchange fault on a 5xx keeps the status as its metric label.
            let label = match r.label {
                "exchange_fault" if status >= 500 => format!("http_{status}"),
                l => l.to_string(),
            };
            if (o.status_label(), o.class()) != (label.clone(), r.class) {
                wrong.push(format!(
                    "{kind} {} (HTTP {status}): got {} / {:?}, want {label} / {:?}",
                    r.what,
                    o.status_label(),
                    o.class(),
                    r.class
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

fn row(
    what: String,
    status: u16,
    body: serde_json::Value,
    label: &'static str,
    class: OutcomeClass,
) -> Row {
    Row {
        what,
        endpoint: Tick,
        status,
        body: body.to_string().into_bytes(),
        label,
        class,
        status_free: true,
    }
}

// ---------------------------------------------------------------- Binance

fn binance(code: i64, msg: &str, status: u16, label: &'static str, class: OutcomeClass) -> Row {
    row(
        format!("{code} {msg:?}"),
        status,
        json!({ "code": code, "msg": msg }),
        label,
        class,
    )
}

#[test]
fn binance_codes_by_meaning() {
    let mut rows = vec![
        binance(
            -1000,
            "An unknown error occurred while processing the request.",
            500,
            "exchange_fault",
            ServerError,
        ),
        binance(
            -1001,
            "Internal error; unable to process your request. Please try again.",
            503,
            "exchange_fault",
            ServerError,
        ),
        binance(
            -1002,
            "You are not authorized to execute this request.",
            401,
            "auth_error",
            ClientError,
        ),
        binance(
            -1003,
            "Too much request weight used; current limit is 6000 request weight per 1 MINUTE.",
            429,
            "rate_limited",
            RateLimited,
        ),
        binance(
            -1006,
            "An unexpected response was received from the message bus. Execution status unknown.",
            503,
            "exchange_fault",
            ServerError,
        ),
        binance(
            -1007,
            "Timeout waiting for response from backend server. Send status unknown; execution status unknown.",
            503,
            "exchange_fault",
            ServerError,
        ),
        binance(
            -1008,
            "Server is currently overloaded with other requests. Please try again in a few minutes.",
            503,
            "exchange_fault",
            ServerError,
        ),
        binance(
            -1013,
            "The request is rejected by the API.",
            400,
            "bad_request",
            ClientError,
        ),
        binance(
            -1014,
            "Unsupported order combination.",
            400,
            "bad_request",
            ClientError,
        ),
        binance(
            -1015,
            "Too many new orders.",
            429,
            "rate_limited",
            RateLimited,
        ),
        binance(
            -1016,
            "This service is no longer available.",
            503,
            "exchange_fault",
            ServerError,
        ),
        binance(
            -1020,
            "This operation is not supported.",
            400,
            "bad_request",
            ClientError,
        ),
        binance(
            -1021,
            "Timestamp for this request is outside of the recvWindow.",
            400,
            "bad_request",
            ClientError,
        ),
        binance(
            -1022,
            "Signature for this request is not valid.",
            400,
            "auth_error",
            ClientError,
        ),
        binance(-1121, "Invalid symbol.", 400, "invalid_symbol", ClientError),
        binance(
            -2014,
            "API-key format invalid.",
            401,
            "auth_error",
            ClientError,
        ),
        binance(
            -2015,
            "Invalid API-key, IP, or permissions for action.",
            401,
            "auth_error",
            ClientError,
        ),
        binance(
            -2016,
            "No trading window could be found for the symbol. Try ticker/24hrs instead.",
            400,
            "bad_request",
            ClientError,
        ),
    ];
    // 11xx "Request issues" (errors.md), -1121 BAD_SYMBOL aside.
    for code in [
        -1100, -1101, -1102, -1103, -1104, -1105, -1106, -1108, -1111, -1112, -1114, -1115, -1116,
        -1117, -1118, -1119, -1120, -1122, -1125, -1127, -1128, -1130,
    ] {
        rows.push(binance(
            code,
            "request issue",
            400,
            "bad_request",
            ClientError,
        ));
    }
    check(Binance, &rows);
}

#[test]
fn binance_statuses_that_decide() {
    let ban = json!({ "code": -1003, "msg": "Way too much request weight used; IP banned until 1659761931230. Please use WebSocket Streams for live updates to avoid bans." });
    let restricted = json!({ "code": 0, "msg": "Service unavailable from a restricted location according to 'b. Eligibility' in https://www.binance.com/en/terms. Please contact customer service if you believe you received this message in error." });
    let unknown = json!({ "code": -9999, "msg": "something new" });
    let rows = [
        Row {
            status_free: false,
            ..row(
                "-1003 IP banned until".into(),
                418,
                ban.clone(),
                "banned",
                Banned,
            )
        },
        // The ban time in the message decides even with a 429.
        Row {
            status_free: false,
            ..row(
                "-1003 IP banned until, 429".into(),
                429,
                ban,
                "banned",
                Banned,
            )
        },
        Row {
            status_free: false,
            ..row(
                "451 restricted location".into(),
                451,
                restricted,
                "blocked",
                Blocked,
            )
        },
        // A code exwatch does not know: the status is all there is.
        Row {
            status_free: false,
            ..row(
                "unknown code on 503".into(),
                503,
                unknown.clone(),
                "http_503",
                ServerError,
            )
        },
        Row {
            status_free: false,
            ..row(
                "unknown code on 400".into(),
                400,
                unknown.clone(),
                "exchange_error",
                ClientError,
            )
        },
        Row {
            status_free: false,
            ..row(
                "unknown code on 429".into(),
                429,
                unknown,
                "rate_limited",
                RateLimited,
            )
        },
        // rest-api.md: 403 is the WAF.
        Row {
            status_free: false,
            body: Vec::new(),
            ..row("403 WAF".into(), 403, json!(null), "blocked", Blocked)
        },
        Row {
            status_free: false,
            body: Vec::new(),
            ..row(
                "418 without a body".into(),
                418,
                json!(null),
                "banned",
                Banned,
            )
        },
        Row {
            status_free: false,
            body: Vec::new(),
            ..row(
                "429 without a body".into(),
                429,
                json!(null),
                "rate_limited",
                RateLimited,
            )
        },
    ];
    check(Binance, &rows);
}

// ---------------------------------------------------------------- Bybit

fn bybit(code: i64, msg: &str, label: &'static str, class: OutcomeClass) -> Row {
    row(
        format!("{code} {msg:?}"),
        200,
        json!({ "retCode": code, "retMsg": msg, "result": {}, "retExtInfo": {}, "time": 1 }),
        label,
        class,
    )
}

#[test]
fn bybit_codes_by_meaning() {
    let rows = [
        bybit(10000, "Server Timeout", "exchange_fault", ServerError),
        bybit(10001, "Request parameter error", "bad_request", ClientError),
        bybit(
            10001,
            "Not supported symbols",
            "invalid_symbol",
            ClientError,
        ),
        bybit(
            10002,
            "The request time exceeds the time window range.",
            "bad_request",
            ClientError,
        ),
        bybit(10003, "API key is invalid.", "auth_error", ClientError),
        bybit(
            10004,
            "Error sign, please check your signature generation algorithm.",
            "auth_error",
            ClientError,
        ),
        bybit(
            10005,
            "Permission denied, please check your API key permissions.",
            "auth_error",
            ClientError,
        ),
        bybit(
            10006,
            "Too many visits. Exceeded the API Rate Limit.",
            "rate_limited",
            RateLimited,
        ),
        bybit(
            10007,
            "User authentication failed.",
            "auth_error",
            ClientError,
        ),
        bybit(10009, "IP has been banned.", "banned", Banned),
        bybit(
            10010,
            "Unmatched IP, please check your API key's bound IP addresses.",
            "auth_error",
            ClientError,
        ),
        bybit(
            10014,
            "Invalid duplicate request.",
            "bad_request",
            ClientError,
        ),
        bybit(10016, "Server error.", "exchange_fault", ServerError),
        bybit(10017, "Route not found.", "bad_request", ClientError),
        bybit(10018, "Exceeded the IP Rate Limit.", "banned", Banned),
        bybit(
            10029,
            "The requested symbol is invalid, please check symbol whitelist",
            "invalid_symbol",
            ClientError,
        ),
        bybit(170001, "Internal error.", "exchange_fault", ServerError),
        bybit(
            170005,
            "Too many new orders; current limit is %s orders per %s.",
            "rate_limited",
            RateLimited,
        ),
        bybit(
            170007,
            "Timeout waiting for response from backend server.",
            "exchange_fault",
            ServerError,
        ),
        bybit(
            170032,
            "Network error. Please try again later",
            "exchange_fault",
            ServerError,
        ),
        bybit(
            170105,
            "Parameter '%s' was empty.",
            "bad_request",
            ClientError,
        ),
        bybit(170121, "Invalid symbol.", "invalid_symbol", ClientError),
        bybit(
            170130,
            "Data sent for paramter '%s' is not valid.",
            "bad_request",
            ClientError,
        ),
        bybit(
            170222,
            "Too many requests in this time frame.",
            "rate_limited",
            RateLimited,
        ),
        bybit(170234, "System Error", "exchange_fault", ServerError),
        bybit(
            3400214,
            "Server error, please try again later",
            "exchange_fault",
            ServerError,
        ),
    ];
    check(Bybit, &rows);
}

#[test]
fn bybit_cloudfront_geo_block_is_a_block_not_a_ban() {
    let page = std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/bybit/error_403_cloudfront_geo_block.html"),
    )
    .unwrap();
    // Even with a Retry-After riding on it, a block holds nothing.
    for headers in [&[][..], &[("retry-after", "600")][..]] {
        let (o, signal) = outcome(Bybit, Tick, 403, headers, &page);
        assert_eq!(
            (o.status_label().as_str(), o.class()),
            ("blocked", Blocked),
            "{o:?}"
        );
        let d = o.detail();
        assert!(
            d.contains("blocked by the exchange's CDN for this region/IP")
                && d.contains("CloudFront"),
            "{d}"
        );
        assert!(!o.label().contains("ban"), "{}", o.label());
        let hold = signal.as_ref().and_then(|s| s.hold_off(NOW));
        assert_eq!(hold, None, "the limiter must not hold: {signal:?}");
        // The breaker neither counts it as a failure nor as a success.
        assert_eq!(
            Machine::classify(&BreakerSettings::default(), o.class()),
            None
        );
    }
}

#[test]
fn bybit_access_too_frequent_stays_an_ip_ban() {
    for body in [
        &b"access too frequent"[..],
        br#"{"retCode":403,"retMsg":"access too frequent"}"#,
    ] {
        let (o, signal) = outcome(Bybit, Tick, 403, &[], body);
        assert_eq!(o.class(), Banned, "{o:?}");
        // The documented 10 minutes.
        let hold = signal.and_then(|s| s.hold_off(NOW));
        assert_eq!(hold, Some(std::time::Duration::from_secs(600)), "{body:?}");
    }
}

#[test]
fn bybit_http_codes() {
    let rows = [
        Row {
            status_free: false,
            body: b"System level frequency protection".to_vec(),
            ..row("429".into(), 429, json!(null), "rate_limited", RateLimited)
        },
        Row {
            status_free: false,
            body: b"404 page not found".to_vec(),
            ..row(
                "404 wrong path".into(),
                404,
                json!(null),
                "http_404",
                ClientError,
            )
        },
    ];
    check(Bybit, &rows);
}

// ---------------------------------------------------------------- OKX

fn okx(code: &str, msg: &str, status: u16, label: &'static str, class: OutcomeClass) -> Row {
    row(
        format!("{code} {msg:?}"),
        status,
        json!({ "code": code, "msg": msg, "data": [] }),
        label,
        class,
    )
}

#[test]
fn okx_internal_server_error_inside_200_trips_the_breaker() {
    // exwatch #13: OKX answered HTTP 200 with this body.
    let body = br#"{"code":500,"msg":"Internal Server Error","data":{}}"#;
    let (o, _) = outcome(Okx, Tick, 200, &[], body);
    assert_eq!(
        (o.status_label().as_str(), o.class()),
        ("exchange_fault", ServerError),
        "{o:?}"
    );
    assert_eq!(o.label(), "exchange_fault 500");
    assert_eq!(
        Machine::classify(&BreakerSettings::default(), o.class()),
        Some(true)
    );
}

#[test]
fn okx_codes_by_meaning() {
    let mut rows = vec![
        okx(
            "500",
            "Internal Server Error",
            200,
            "exchange_fault",
            ServerError,
        ),
        okx(
            "50000",
            "Body for POST request cannot be empty.",
            400,
            "bad_request",
            ClientError,
        ),
        okx(
            "50001",
            "Service temporarily unavailable. Please try again later.",
            503,
            "maintenance",
            ServerError,
        ),
        okx(
            "50002",
            "JSON syntax error",
            400,
            "bad_request",
            ClientError,
        ),
        okx(
            "50004",
            "API endpoint request timeout. (does not mean that the request was successful or failed, please check the request result).",
            400,
            "exchange_fault",
            ServerError,
        ),
        okx(
            "50005",
            "API endpoint is inactive or unavailable.",
            410,
            "exchange_fault",
            ServerError,
        ),
        okx(
            "50006",
            "Invalid Content-Type. Please use \"application/JSON\".",
            400,
            "bad_request",
            ClientError,
        ),
        okx(
            "50011",
            "Rate limit reached. Please refer to API documentation and throttle requests accordingly.",
            200,
            "rate_limited",
            RateLimited,
        ),
        okx(
            "50011",
            "Too Many Requests",
            429,
            "rate_limited",
            RateLimited,
        ),
        okx(
            "50013",
            "Systems are busy. Please try again later.",
            429,
            "exchange_fault",
            ServerError,
        ),
        okx(
            "50014",
            "Parameter instId can not be empty.",
            400,
            "bad_request",
            ClientError,
        ),
        okx(
            "50015",
            "Either parameter instId or instFamily is required",
            400,
            "bad_request",
            ClientError,
        ),
        okx(
            "50016",
            "Parameter instId does not match parameter instType",
            400,
            "bad_request",
            ClientError,
        ),
        okx(
            "50024",
            "Parameter a and b can not exist at the same time.",
            200,
            "bad_request",
            ClientError,
        ),
        okx(
            "50025",
            "Parameter instId count exceeds the limit 20.",
            200,
            "bad_request",
            ClientError,
        ),
        okx(
            "50026",
            "System error. Try again later",
            500,
            "exchange_fault",
            ServerError,
        ),
        okx(
            "50030",
            "You don't have permission to use this API endpoint",
            200,
            "auth_error",
            ClientError,
        ),
        okx(
            "50035",
            "This endpoint requires that APIKey must be bound to IP",
            403,
            "auth_error",
            ClientError,
        ),
        okx(
            "50040",
            "Too frequent operations, please try again later",
            200,
            "rate_limited",
            RateLimited,
        ),
        okx(
            "50046",
            "This feature is temporarily unavailable while we make some improvements to it. Please try again later.",
            200,
            "maintenance",
            ServerError,
        ),
        okx(
            "50051",
            "Due to compliance restrictions in your country or region, you cannot use this feature.",
            200,
            "blocked",
            Blocked,
        ),
        okx(
            "50061",
            "You've reached the maximum order rate limit for this account.",
            200,
            "rate_limited",
            RateLimited,
        ),
        okx(
            "50100",
            "API frozen, please contact customer service.",
            400,
            "auth_error",
            ClientError,
        ),
        okx(
            "50102",
            "Timestamp request expired.",
            401,
            "bad_request",
            ClientError,
        ),
        okx(
            "50112",
            "Invalid OK-ACCESS-TIMESTAMP.",
            401,
            "bad_request",
            ClientError,
        ),
        okx(
            "50115",
            "Invalid request method.",
            405,
            "bad_request",
            ClientError,
        ),
        okx(
            "50119",
            "API key doesn't exist",
            200,
            "auth_error",
            ClientError,
        ),
        okx(
            "50120",
            "This API key doesn't have permission to use this function",
            200,
            "auth_error",
            ClientError,
        ),
        okx(
            "50121",
            "You can't access our services through the IP address (1.2.3.4)",
            200,
            "blocked",
            Blocked,
        ),
        okx(
            "51000",
            "Parameter instId error",
            400,
            "bad_request",
            ClientError,
        ),
        okx(
            "51001",
            "Instrument ID or Spread ID doesn't exist.",
            200,
            "invalid_symbol",
            ClientError,
        ),
        Row {
            endpoint: Time,
            ..okx(
                "51001",
                "Instrument ID or Spread ID doesn't exist.",
                200,
                "bad_request",
                ClientError,
            )
        },
    ];
    // API class 50101..50114, 401: key, passphrase, sign, whitelist (not the timestamps).
    for code in [
        50101, 50103, 50104, 50105, 50106, 50107, 50108, 50109, 50110, 50111, 50113, 50114,
    ] {
        rows.push(okx(
            &code.to_string(),
            "API class",
            401,
            "auth_error",
            ClientError,
        ));
    }
    check(Okx, &rows);
}

#[test]
fn okx_unknown_codes_keep_the_statuses_word() {
    let unknown = |status, label, class| Row {
        status_free: false,
        ..okx("59999", "something new", status, label, class)
    };
    check(
        Okx,
        &[
            unknown(200, "exchange_error", ClientError),
            unknown(429, "rate_limited", RateLimited),
            unknown(503, "http_503", ServerError),
            Row {
                status_free: false,
                ..okx(
                    "59998",
                    "System under maintenance",
                    200,
                    "maintenance",
                    ServerError,
                )
            },
        ],
    );
}

// ---------------------------------------------------------------- Coinbase

fn coinbase(status: u16, msg: &str, label: &'static str, class: OutcomeClass) -> Row {
    Row {
        status_free: false,
        ..row(
            format!("{status} {msg:?}"),
            status,
            json!({ "message": msg }),
            label,
            class,
        )
    }
}

#[test]
fn coinbase_statuses_and_messages_by_meaning() {
    let rows = [
        coinbase(400, "Invalid Price", "bad_request", ClientError),
        coinbase(401, "Invalid API Key", "auth_error", ClientError),
        coinbase(403, "Forbidden", "auth_error", ClientError),
        coinbase(404, "NotFound", "invalid_symbol", ClientError),
        Row { endpoint: Time, ..coinbase(404, "NotFound", "bad_request", ClientError) },
        coinbase(429, "Public rate limit exceeded", "rate_limited", RateLimited),
        // The message decides where it says more than the status.
        coinbase(400, "Private rate limit exceeded", "rate_limited", RateLimited),
        coinbase(500, "Internal server error", "exchange_fault", ServerError),
        coinbase(503, "Service Unavailable", "maintenance", ServerError),
        coinbase(502, "Bad Gateway", "exchange_fault", ServerError),
        Row {
            body: b"<html><head><title>Access denied | api.exchange.coinbase.com used Cloudflare to restrict access</title></head></html>".to_vec(),
            ..coinbase(403, "", "blocked", Blocked)
        },
    ];
    check(Coinbase, &rows);
}

// ---------------------------------------------------------------- Kraken

fn kraken(error: &str, label: &'static str, class: OutcomeClass) -> Row {
    row(
        error.to_string(),
        200,
        json!({ "error": [error] }),
        label,
        class,
    )
}

#[test]
fn kraken_errors_by_meaning() {
    let rows = [
        kraken("EAPI:Rate limit exceeded", "rate_limited", RateLimited),
        kraken("EGeneral:Too many requests", "rate_limited", RateLimited),
        kraken("EGeneral:Temporary lockout", "banned", Banned),
        kraken("EQuery:Unknown asset pair", "invalid_symbol", ClientError),
        kraken("EQuery:Invalid asset pair", "invalid_symbol", ClientError),
        Row {
            endpoint: Time,
            ..kraken("EQuery:Unknown asset pair", "bad_request", ClientError)
        },
        kraken("EGeneral:Invalid arguments", "bad_request", ClientError),
        kraken(
            "EGeneral:Invalid arguments:Index unavailable",
            "bad_request",
            ClientError,
        ),
        kraken("EAPI:Invalid key", "auth_error", ClientError),
        kraken("EAPI:Invalid signature", "auth_error", ClientError),
        kraken("EAPI:Invalid nonce", "auth_error", ClientError),
        kraken("EGeneral:Permission denied", "auth_error", ClientError),
        kraken("ESession:Invalid session", "auth_error", ClientError),
        kraken("EService:Unavailable", "maintenance", ServerError),
        kraken(
            "EService:Market in cancel_only mode",
            "maintenance",
            ServerError,
        ),
        kraken(
            "EService:Market in post_only mode",
            "maintenance",
            ServerError,
        ),
        kraken("EService:Busy", "exchange_fault", ServerError),
        kraken("EService:Deadline elapsed", "exchange_fault", ServerError),
        kraken("EGeneral:Internal error", "exchange_fault", ServerError),
        kraken("EDatabase:Internal error", "exchange_fault", ServerError),
    ];
    check(Kraken, &rows);
}

#[test]
fn kraken_unknown_errors_are_unclassified_and_warnings_are_not_errors() {
    let (o, _) = outcome(
        Kraken,
        Tick,
        200,
        &[],
        br#"{"error":["EWeird:Something new"]}"#,
    );
    assert_eq!(
        (o.status_label().as_str(), o.class()),
        ("exchange_error", ClientError)
    );
    let (o, _) = outcome(
        Kraken,
        Time,
        200,
        &[],
        br#"{"error":["WGeneral:Deprecated"],"result":{"unixtime":1,"rfc1123":""}}"#,
    );
    assert_eq!(o, Outcome::Ok);
}

// ------------------------------------------------------- every exchange at once

#[test]
fn a_cdn_block_page_is_a_block_on_every_exchange() {
    let page = format!(
        "<H1>403 ERROR</H1>\n{}.\n",
        exchange::classify::CLOUDFRONT_GEO
    );
    for kind in [Binance, Bybit, Okx, Coinbase, Kraken] {
        let (o, signal) = outcome(kind, Tick, 403, &[("retry-after", "600")], page.as_bytes());
        assert_eq!(o.class(), Blocked, "{kind}: {o:?}");
        assert_eq!(signal.and_then(|s| s.hold_off(NOW)), None, "{kind}");
    }
}

#[test]
fn only_rate_limits_and_bans_hold_the_limiter() {
    // A Retry-After on an exchange fault is not a hold order; on a 429 it is.
    let fault = br#"{"code":"50026","msg":"System error. Try again later","data":[]}"#;
    let (o, signal) = outcome(Okx, Tick, 500, &[("retry-after", "30")], fault);
    assert_eq!(o.class(), ServerError);
    assert_eq!(signal.and_then(|s| s.hold_off(NOW)), None);
    let limited = br#"{"code":"50011","msg":"Too Many Requests"}"#;
    let (o, signal) = outcome(Okx, Tick, 429, &[("retry-after", "30")], limited);
    assert_eq!(o.class(), RateLimited);
    assert_eq!(
        signal.and_then(|s| s.hold_off(NOW)),
        Some(std::time::Duration::from_secs(30))
    );
}

/// Problems the probe turns into outcomes keep their meaning (an unknown
/// code on a 5xx is the status's server error; a known one is its own).
#[test]
fn known_codes_on_a_5xx_keep_their_meaning() {
    let bad = Problem::Api(exwatch::model::ApiError::BadRequest {
        code: Some("-1102".into()),
        message: "Mandatory parameter 'symbol' was not sent".into(),
    });
    let mut signal = None;
    let o = probe::classify_problem(bad, 503, &mut signal, NOW);
    assert_eq!(o.class(), ClientError);
}
