//! The generic kind: a config-described exchange read through JSON pointers
//! and Gatus-style conditions, against the simulator's generic shapes and
//! hand-written bodies.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed unwrap is a failed test

use exwatch::config;
use exwatch::exchange::generic::GenericSpec;
use exwatch::exchange::{self, Payload, Problem, RawResponse};
use exwatch::model::{ApiError, EndpointKind, ExchangeKind, InvalidReason};
use exwatch::sim::market::Quote;
use exwatch::sim::shapes::{self, SimResponse};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};

const NOW: i64 = 1_716_863_719_382;

/// The config of the docs' example (docs/adapters.md), pointed at the simulator.
const CONFIG: &str = r#"
[[exchanges]]
name = "acme"
kind = "generic"
base_url = "http://127.0.0.1:9000/generic"
symbol = "BTC-USD"

[exchanges.generic]
price = "/data/last"
bid = "/data/bid"
ask = "/data/ask"
timestamp = "/data/ts"
symbol = "/data/symbol"
bids = "/data/bids"
asks = "/data/asks"
update_id = "/data/seq"
error_code = "/code"
ok_codes = ["0"]
message = "/message"
rate_limit_codes = ["RATE_LIMIT"]
conditions = [
  "[STATUS] == 200",
  "[BODY].status == ok",
  "[RESPONSE_TIME] < 500",
]

[[exchanges.endpoints]]
name = "time"
kind = "time"
path = "/api/v1/time"

[[exchanges.endpoints]]
name = "ticker"
kind = "ticker"
path = "/api/v1/ticker"
query = { symbol = "BTC-USD" }

[[exchanges.endpoints]]
name = "book"
kind = "book"
path = "/api/v1/book"
query = { symbol = "BTC-USD" }
"#;

fn spec() -> GenericSpec {
    let cfg = match config::parse("acme.toml", CONFIG) {
        Ok(c) => c,
        Err(e) => panic!("example config refused:\n{e}"),
    };
    cfg.exchanges[0].generic.clone().expect("generic table")
}

fn quote() -> Quote {
    Quote {
        symbol: "BTC-USD".into(),
        last: 64_000.5,
        bid: 64_000.25,
        ask: 64_000.75,
        ts_ms: NOW - 100,
        update_id: 99,
        bids: vec![(64_000.25, 1.5), (63_999.0, 2.0)],
        asks: vec![(64_000.75, 0.5), (64_002.0, 4.0)],
    }
}

fn read_sim(
    endpoint: EndpointKind,
    r: &SimResponse,
    elapsed_ms: u64,
    spec: &GenericSpec,
) -> Result<Payload, Problem> {
    let mut h = HeaderMap::new();
    for (k, v) in &r.headers {
        h.append(
            HeaderName::from_bytes(k.as_bytes()).expect("name"),
            HeaderValue::from_str(v).expect("value"),
        );
    }
    let raw = RawResponse {
        status: r.status,
        headers: &h,
        body: r.body.as_bytes(),
        received_at_ms: NOW,
        elapsed_ms,
        requested_symbol: Some("BTC-USD"),
    };
    exchange::interpret(ExchangeKind::Generic, endpoint, &raw, Some(spec)).result
}

fn read_body(
    endpoint: EndpointKind,
    status: u16,
    body: &str,
    spec: &GenericSpec,
) -> Result<Payload, Problem> {
    let r = SimResponse {
        status,
        headers: Vec::new(),
        body: body.into(),
    };
    read_sim(endpoint, &r, 10, spec)
}

#[test]
fn sim_routes_the_generic_paths() {
    assert_eq!(
        shapes::route(ExchangeKind::Generic, "/api/v1/ticker", "symbol=BTC-USD"),
        Some((EndpointKind::Ticker, "BTC-USD".into()))
    );
    assert_eq!(
        shapes::route(ExchangeKind::Generic, "/api/v1/time", ""),
        Some((EndpointKind::Time, String::new()))
    );
}

#[test]
fn time_ticker_and_book_round_trip_through_the_pointers() {
    let s = spec();
    let q = quote();
    let t = read_sim(
        EndpointKind::Time,
        &shapes::ok(ExchangeKind::Generic, EndpointKind::Time, &q, NOW),
        5,
        &s,
    );
    assert_eq!(t, Ok(Payload::Time { server_ms: NOW }));

    let r = shapes::ok(ExchangeKind::Generic, EndpointKind::Ticker, &q, NOW);
    match read_sim(EndpointKind::Ticker, &r, 5, &s) {
        Ok(Payload::Ticker(t)) => {
            assert_eq!(t.symbol, "BTC-USD");
            assert_eq!(
                (t.last, t.bid, t.ask, t.exchange_ts_ms),
                (Some(q.last), Some(q.bid), Some(q.ask), Some(q.ts_ms))
            );
        }
        other => panic!("{other:?}"),
    }

    let r = shapes::ok(ExchangeKind::Generic, EndpointKind::Book, &q, NOW);
    match read_sim(EndpointKind::Book, &r, 5, &s) {
        Ok(Payload::Book(b)) => {
            let side = |l: &[exchange::Level]| {
                l.iter()
                    .map(|l| (l.price.value, l.size.value))
                    .collect::<Vec<_>>()
            };
            assert_eq!(
                (side(&b.bids), side(&b.asks)),
                (q.bids.clone(), q.asks.clone())
            );
            assert_eq!((b.update_id, b.exchange_ts_ms), (Some(99), Some(q.ts_ms)));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_slow_answer_fails_the_response_time_condition() {
    let s = spec();
    let r = shapes::ok(ExchangeKind::Generic, EndpointKind::Ticker, &quote(), NOW);
    match read_sim(EndpointKind::Ticker, &r, 750, &s) {
        Err(Problem::Invalid(InvalidReason::Unhealthy { detail })) => {
            assert!(
                detail.contains("[RESPONSE_TIME] < 500") && detail.contains("750"),
                "{detail}"
            );
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_body_status_other_than_ok_is_unhealthy() {
    let s = spec();
    let body = r#"{"status":"degraded","code":"0","data":{"last":"1.5","ts":1716863719000}}"#;
    let r = read_body(EndpointKind::Ticker, 200, body, &s);
    assert!(
        matches!(&r, Err(Problem::Invalid(InvalidReason::Unhealthy { detail })) if detail.contains("degraded")),
        "{r:?}"
    );
}

#[test]
fn error_codes_are_classified_by_the_spec() {
    let s = spec();
    let r = read_sim(
        EndpointKind::Ticker,
        &shapes::rate_limited(ExchangeKind::Generic, 4, NOW),
        5,
        &s,
    );
    assert_eq!(
        r,
        Err(Problem::Api(ApiError::RateLimited {
            retry_after_ms: Some(4_000),
            code: Some("RATE_LIMIT".into()),
            message: "rate limit exceeded".into(),
        }))
    );
    let r = read_sim(
        EndpointKind::Ticker,
        &shapes::server_error(ExchangeKind::Generic, 500),
        5,
        &s,
    );
    assert!(
        matches!(&r, Err(Problem::Api(ApiError::Exchange { code: Some(c), .. })) if c == "INTERNAL"),
        "{r:?}"
    );
    // A code the spec names as the exchange's failure is a server error,
    // even inside a 200.
    let faulty = GenericSpec {
        server_error_codes: vec!["INTERNAL".into()],
        ..spec()
    };
    let r = read_body(
        EndpointKind::Ticker,
        200,
        r#"{"status":"error","code":"INTERNAL","message":"internal error"}"#,
        &faulty,
    );
    match &r {
        Err(Problem::Api(e @ ApiError::ExchangeFault { .. })) => {
            assert_eq!(e.class(), exwatch::model::OutcomeClass::ServerError)
        }
        other => panic!("{other:?}"),
    }
    // An error code inside a 200 is still an error.
    let r = read_body(
        EndpointKind::Ticker,
        200,
        r#"{"status":"ok","code":"E42","message":"halted"}"#,
        &s,
    );
    assert!(
        matches!(&r, Err(Problem::Api(ApiError::Exchange { message, .. })) if message == "halted"),
        "{r:?}"
    );
}

#[test]
fn an_empty_error_field_means_no_error() {
    // Kraken-style: `"error": []` on success.
    let s = GenericSpec {
        price: Some("/result/p".into()),
        error_code: Some("/error".into()),
        ..empty_spec()
    };
    let ok = read_body(
        EndpointKind::Ticker,
        200,
        r#"{"error":[],"result":{"p":"3"}}"#,
        &s,
    );
    assert!(
        matches!(&ok, Ok(Payload::Ticker(t)) if t.last == Some(3.0)),
        "{ok:?}"
    );
    let r = read_body(
        EndpointKind::Ticker,
        200,
        r#"{"error":["EAPI:Bad"],"result":{}}"#,
        &s,
    );
    assert!(
        matches!(r, Err(Problem::Api(ApiError::Exchange { .. }))),
        "{r:?}"
    );
}

fn empty_spec() -> GenericSpec {
    GenericSpec {
        price: None,
        bid: None,
        ask: None,
        timestamp: None,
        error_code: None,
        ok_codes: Vec::new(),
        conditions: Vec::new(),
        message: None,
        rate_limit_codes: Vec::new(),
        invalid_symbol_codes: Vec::new(),
        server_error_codes: Vec::new(),
        symbol: None,
        bids: None,
        asks: None,
        update_id: None,
    }
}

#[test]
fn timestamps_in_any_unit_or_rfc3339() {
    let s = GenericSpec {
        timestamp: Some("/t".into()),
        ..empty_spec()
    };
    for (t, want) in [
        ("1716863719", 1_716_863_719_000),
        ("1716863719.5", 1_716_863_719_500),
        ("1716863719382", 1_716_863_719_382),
        ("\"1716863719382\"", 1_716_863_719_382),
        ("1716863719382123", 1_716_863_719_382),
        ("1716863719382123456", 1_716_863_719_382),
        ("\"2024-05-28T02:35:19.382Z\"", 1_716_863_719_382),
    ] {
        let r = read_body(EndpointKind::Time, 200, &format!("{{\"t\":{t}}}"), &s);
        assert_eq!(r, Ok(Payload::Time { server_ms: want }), "{t}");
    }
    let r = read_body(EndpointKind::Time, 200, r#"{"t":"yesterday"}"#, &s);
    assert!(
        matches!(r, Err(Problem::Invalid(InvalidReason::BadNumber { .. }))),
        "{r:?}"
    );
}

#[test]
fn conditions_of_every_form() {
    let body = r#"{"status":"ok","data":{"sym":"BTC-USD","items":[1,2,3],"state":"open","n":7}}"#;
    let check = |c: &str| {
        let s = GenericSpec {
            conditions: vec![c.into()],
            price: Some("/data/n".into()),
            ..empty_spec()
        };
        read_body(EndpointKind::Ticker, 200, body, &s).is_ok()
    };
    assert!(check("[STATUS] == 200"));
    assert!(!check("[STATUS] != 200"));
    assert!(check("[BODY].data.sym == pat(BTC-*)"));
    assert!(!check("[BODY].data.sym == pat(ETH-*)"));
    assert!(check("[BODY]/data/state != halted"));
    assert!(check("[BODY].data.items[2] == 3"));
    assert!(check("len([BODY].data.items) >= 3"));
    assert!(!check("len([BODY].data.items) > 3"));
    assert!(check("[BODY].data.n > 6.5"));
    assert!(check("[BODY].status =~ ^o.$"));
    assert!(check("[BODY] =~ \"state\":\"open\""));
    // A path that is not there fails rather than passing.
    assert!(!check("[BODY].data.missing == x"));
}

#[test]
fn without_a_generic_table_the_kind_says_so() {
    let h = HeaderMap::new();
    let raw = RawResponse {
        status: 200,
        headers: &h,
        body: b"{}",
        received_at_ms: NOW,
        elapsed_ms: 1,
        requested_symbol: None,
    };
    let r = exchange::interpret(ExchangeKind::Generic, EndpointKind::Ticker, &raw, None).result;
    assert!(
        matches!(r, Err(Problem::Invalid(InvalidReason::Schema { .. }))),
        "{r:?}"
    );
}

#[test]
fn stateless_validation_applies_to_the_generic_kind() {
    let s = spec();
    let body = r#"{"status":"ok","code":"0","data":{"bid":"10","ask":"9","ts":1716863719000}}"#;
    let r = read_body(EndpointKind::Ticker, 200, body, &s);
    assert!(
        matches!(r, Err(Problem::Invalid(InvalidReason::CrossedBook { .. }))),
        "{r:?}"
    );
}

#[test]
fn config_check_names_malformed_conditions_and_pointers() {
    let bad = CONFIG
        .replace("\"[BODY].status == ok\"", "\"[BODY].status = ok\"")
        .replace("price = \"/data/last\"", "price = \"data.last\"");
    let errs = match config::parse("acme.toml", &bad) {
        Ok(_) => panic!("malformed conditions accepted"),
        Err(e) => e.0,
    };
    let fields: Vec<&str> = errs.iter().map(|e| e.field.as_str()).collect();
    assert!(
        fields.contains(&"exchanges[0].generic.conditions[1]"),
        "{errs:?}"
    );
    assert!(fields.contains(&"exchanges[0].generic.price"), "{errs:?}");
    let cond = errs
        .iter()
        .find(|e| e.field.ends_with("conditions[1]"))
        .expect("condition error");
    assert!(
        cond.message.contains("unknown operator"),
        "{}",
        cond.message
    );
    assert!(cond.line > 1, "positioned: {cond:?}");
}

#[test]
fn an_answer_naming_another_instrument_is_wrong_instrument() {
    let s = spec();
    let mut q = quote();
    q.symbol = "CANDY-USD".into();
    for endpoint in [EndpointKind::Ticker, EndpointKind::Book] {
        let r = read_sim(
            endpoint,
            &shapes::ok(ExchangeKind::Generic, endpoint, &q, NOW),
            5,
            &s,
        );
        assert_eq!(
            r,
            Err(Problem::Invalid(InvalidReason::WrongInstrument {
                expected: "BTC-USD".into(),
                got: "CANDY-USD".into()
            })),
            "{endpoint:?}"
        );
    }
    // Case and separators are spelling: btc_usd, BTC/USD and btcusd are BTC-USD.
    for same in ["btc_usd", "BTC/USD", "btcusd"] {
        q.symbol = same.into();
        let r = read_sim(
            EndpointKind::Ticker,
            &shapes::ok(ExchangeKind::Generic, EndpointKind::Ticker, &q, NOW),
            5,
            &s,
        );
        assert!(r.is_ok(), "{same}: {r:?}");
    }
}

#[test]
fn without_a_symbol_pointer_the_generic_kind_cannot_compare() {
    let mut s = spec();
    s.symbol = None;
    let mut q = quote();
    q.symbol = "CANDY-USD".into();
    let r = read_sim(
        EndpointKind::Ticker,
        &shapes::ok(ExchangeKind::Generic, EndpointKind::Ticker, &q, NOW),
        5,
        &s,
    );
    assert!(r.is_ok(), "{r:?}");
}

#[test]
fn config_check_wants_a_symbol_to_compare_the_symbol_pointer_with() {
    let unnamed = CONFIG.replace(
        "symbol = \"BTC-USD\"\n\n[exchanges.generic]",
        "\n[exchanges.generic]",
    );
    assert_ne!(unnamed, CONFIG);
    let errs = match config::parse("acme.toml", &unnamed) {
        Ok(_) => panic!("a symbol pointer with nothing to compare it with was accepted"),
        Err(e) => e.0,
    };
    let e = errs
        .iter()
        .find(|e| e.field == "exchanges[0].generic.symbol")
        .unwrap_or_else(|| panic!("{errs:?}"));
    assert!(e.message.contains("symbol asked for"), "{}", e.message);
    let pointer_line = unnamed
        .lines()
        .position(|l| l.starts_with("symbol = \"/data/symbol\""))
        .map(|i| i + 1);
    assert_eq!(Some(e.line), pointer_line, "the pointer's line: {e:?}");
    // A symbol on every ticker and book endpoint is enough.
    let per_endpoint = unnamed
        .replace(
            "path = \"/api/v1/ticker\"",
            "path = \"/api/v1/ticker\"\nsymbol = \"BTC-USD\"",
        )
        .replace(
            "path = \"/api/v1/book\"",
            "path = \"/api/v1/book\"\nsymbol = \"BTC-USD\"",
        );
    if let Err(e) = config::parse("acme.toml", &per_endpoint) {
        panic!("refused:\n{e}");
    }
}
