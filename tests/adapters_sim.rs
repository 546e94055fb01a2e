//! The simulator's shapes, read back through the adapters: every healthy
//! shape round-trips to the quote it was rendered from, and every error
//! shape is classified the way the real exchange's would be.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed unwrap is a failed test

use exwatch::exchange::{self, Interpretation, Payload, Problem, RawResponse};
use exwatch::model;

use exwatch::model::{ApiError, EndpointKind, ExchangeKind};
use exwatch::sim::market::Quote;
use exwatch::sim::shapes::{self, SimResponse};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};

const FIVE: [ExchangeKind; 5] = [
    ExchangeKind::Binance,
    ExchangeKind::Bybit,
    ExchangeKind::Okx,
    ExchangeKind::Coinbase,
    ExchangeKind::Kraken,
];
const NOW: i64 = 1_716_863_719_382;

fn symbol(kind: ExchangeKind) -> &'static str {
    match kind {
        ExchangeKind::Okx | ExchangeKind::Coinbase => "BTC-USDT",
        ExchangeKind::Kraken => "XBTUSDT",
        _ => "BTCUSDT",
    }
}

fn quote(kind: ExchangeKind) -> Quote {
    Quote {
        symbol: symbol(kind).into(),
        last: 65_432.1,
        bid: 65_432.05,
        ask: 65_432.17,
        ts_ms: NOW - 250,
        update_id: 230_704,
        bids: vec![(65_432.05, 0.5), (65_431.9, 1.25), (65_430.0, 3.0)],
        asks: vec![(65_432.17, 0.75), (65_433.0, 2.0), (65_440.5, 0.001)],
    }
}

fn headers(r: &SimResponse) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in &r.headers {
        h.append(
            HeaderName::from_bytes(k.as_bytes()).expect("sim header name"),
            HeaderValue::from_str(v).expect("sim header value"),
        );
    }
    h
}

fn read(kind: ExchangeKind, endpoint: EndpointKind, r: &SimResponse) -> Interpretation {
    let h = headers(r);
    let raw = RawResponse {
        status: r.status,
        headers: &h,
        body: r.body.as_bytes(),
        received_at_ms: NOW,
        elapsed_ms: 3,
        requested_symbol: Some(symbol(kind)),
    };
    exchange::interpret(kind, endpoint, &raw, None)
}

/// The request a probe would send for a preset, split like an HTTP server does.
fn preset_request(kind: ExchangeKind, endpoint: EndpointKind) -> (String, String) {
    let p = exchange::preset(kind, endpoint, symbol(kind), 20).expect("preset");
    let query = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(p.query.iter())
        .finish();
    (p.path, query)
}

#[test]
fn route_recognizes_every_preset_path_and_its_symbol() {
    for kind in FIVE {
        for endpoint in [EndpointKind::Time, EndpointKind::Ticker, EndpointKind::Book] {
            let (path, query) = preset_request(kind, endpoint);
            let want = if endpoint == EndpointKind::Time {
                ""
            } else {
                symbol(kind)
            };
            assert_eq!(
                shapes::route(kind, &path, &query),
                Some((endpoint, want.to_string())),
                "{kind} {path}?{query}"
            );
        }
        assert_eq!(shapes::route(kind, "/nope", ""), None, "{kind}");
    }
}

#[test]
fn route_refuses_ticker_and_book_without_a_symbol() {
    assert_eq!(
        shapes::route(ExchangeKind::Binance, "/api/v3/depth", "limit=5"),
        None
    );
    assert_eq!(
        shapes::route(ExchangeKind::Okx, "/api/v5/market/ticker", ""),
        None
    );
    assert_eq!(
        shapes::route(ExchangeKind::Coinbase, "/products//ticker", ""),
        None
    );
}

#[test]
fn route_decodes_an_escaped_coinbase_product() {
    let p = exchange::preset(ExchangeKind::Coinbase, EndpointKind::Ticker, "BTC USD", 0)
        .expect("preset");
    assert_eq!(p.path, "/products/BTC%20USD/ticker");
    assert_eq!(
        shapes::route(ExchangeKind::Coinbase, &p.path, ""),
        Some((EndpointKind::Ticker, "BTC USD".to_string()))
    );
}

#[test]
fn ok_time_round_trips() {
    for kind in FIVE {
        let r = shapes::ok(kind, EndpointKind::Time, &quote(kind), NOW);
        let got = read(kind, EndpointKind::Time, &r).result;
        // Kraken's server time has whole seconds only.
        let want = if kind == ExchangeKind::Kraken {
            NOW / 1000 * 1000
        } else {
            NOW
        };
        assert_eq!(
            got,
            Ok(Payload::Time { server_ms: want }),
            "{kind}: {}",
            r.body
        );
    }
}

#[test]
fn ok_ticker_round_trips_to_the_quote() {
    for kind in FIVE {
        let q = quote(kind);
        let r = shapes::ok(kind, EndpointKind::Ticker, &q, NOW);
        let Ok(Payload::Ticker(t)) = read(kind, EndpointKind::Ticker, &r).result else {
            panic!("{kind}: not a ticker: {}", r.body);
        };
        assert_eq!((t.bid, t.ask), (Some(q.bid), Some(q.ask)), "{kind}");
        match kind {
            // bookTicker has no last price and no timestamp.
            ExchangeKind::Binance => assert_eq!((t.last, t.exchange_ts_ms), (None, None)),
            // Kraken's ticker has no timestamp at all.
            ExchangeKind::Kraken => assert_eq!((t.last, t.exchange_ts_ms), (Some(q.last), None)),
            _ => assert_eq!(
                (t.last, t.exchange_ts_ms),
                (Some(q.last), Some(q.ts_ms)),
                "{kind}"
            ),
        }
        if kind != ExchangeKind::Coinbase {
            assert_eq!(t.symbol, q.symbol, "{kind}");
        }
    }
}

#[test]
fn ok_book_round_trips_to_the_quote() {
    for kind in FIVE {
        let q = quote(kind);
        let r = shapes::ok(kind, EndpointKind::Book, &q, NOW);
        let Ok(Payload::Book(b)) = read(kind, EndpointKind::Book, &r).result else {
            panic!("{kind}: not a book: {}", r.body);
        };
        let side = |l: &[exchange::Level]| {
            l.iter()
                .map(|l| (l.price.value, l.size.value))
                .collect::<Vec<_>>()
        };
        assert_eq!(side(&b.bids), q.bids, "{kind}");
        assert_eq!(side(&b.asks), q.asks, "{kind}");
        let (ts, id) = match kind {
            ExchangeKind::Binance => (None, Some(q.update_id)),
            ExchangeKind::Bybit => (Some(q.ts_ms), Some(q.update_id)),
            ExchangeKind::Okx => (Some(q.ts_ms), None),
            ExchangeKind::Coinbase => (None, Some(q.update_id)),
            ExchangeKind::Kraken => (Some(q.ts_ms / 1000 * 1000), None),
            ExchangeKind::Generic => unreachable!(),
        };
        assert_eq!((b.exchange_ts_ms, b.update_id), (ts, id), "{kind}");
    }
}

#[test]
fn ok_carries_usage_headers_the_adapter_reads() {
    let q = quote(ExchangeKind::Binance);
    let mut r = shapes::ok(ExchangeKind::Binance, EndpointKind::Book, &q, NOW);
    shapes::set_usage(ExchangeKind::Binance, &mut r, 1234, NOW);
    let s = read(ExchangeKind::Binance, EndpointKind::Book, &r)
        .signal
        .expect("binance signal");
    assert_eq!(
        (s.used, s.window_ms, s.limit),
        (Some(1234), Some(60_000), Some(6000))
    );

    let q = quote(ExchangeKind::Bybit);
    let mut r = shapes::ok(ExchangeKind::Bybit, EndpointKind::Ticker, &q, NOW);
    shapes::set_usage(ExchangeKind::Bybit, &mut r, 15, NOW);
    let s = read(ExchangeKind::Bybit, EndpointKind::Ticker, &r)
        .signal
        .expect("bybit signal");
    assert_eq!(
        (s.limit, s.remaining, s.used, s.reset_at_ms),
        (Some(600), Some(585), Some(15), Some(NOW))
    );
}

#[test]
fn a_crossed_quote_is_rendered_faithfully_and_rejected() {
    for kind in FIVE {
        let mut q = quote(kind);
        q.bid = 65_440.0;
        q.bids[0].0 = 65_440.0;
        for endpoint in [EndpointKind::Ticker, EndpointKind::Book] {
            let r = shapes::ok(kind, endpoint, &q, NOW);
            let got = read(kind, endpoint, &r).result;
            assert!(
                matches!(
                    got,
                    Err(Problem::Invalid(model::InvalidReason::CrossedBook { .. }))
                ),
                "{kind} {endpoint:?}: {got:?}"
            );
        }
    }
}

fn kind_of(p: &Result<Payload, Problem>) -> &'static str {
    match p {
        Err(Problem::Api(ApiError::RateLimited { .. })) => "rate_limited",
        Err(Problem::Api(ApiError::IpBanned { .. })) => "ip_banned",
        Err(Problem::Api(ApiError::Maintenance { .. })) => "maintenance",
        Err(Problem::Api(ApiError::Exchange { .. })) => "exchange",
        Err(Problem::Api(ApiError::InvalidSymbol { .. })) => "invalid_symbol",
        Err(Problem::Api(ApiError::BadRequest { .. })) => "bad_request",
        Err(Problem::Api(ApiError::ExchangeFault { .. })) => "exchange_fault",
        Err(Problem::Api(ApiError::Auth { .. })) => "auth",
        Err(Problem::Api(ApiError::Blocked { .. })) => "blocked",
        Err(Problem::Http { .. }) => "http",
        Err(Problem::Invalid(_)) => "invalid",
        Ok(_) => "ok",
    }
}

#[test]
fn rate_limited_shapes_classify_as_rate_limited() {
    for kind in FIVE {
        let r = shapes::rate_limited(kind, 7, NOW);
        let i = read(kind, EndpointKind::Ticker, &r);
        assert_eq!(
            kind_of(&i.result),
            "rate_limited",
            "{kind}: {} {}",
            r.status,
            r.body
        );
        let retry = match &i.result {
            Err(Problem::Api(ApiError::RateLimited { retry_after_ms, .. })) => *retry_after_ms,
            _ => None,
        };
        match kind {
            // OKX and Kraken say nothing about how long to wait.
            ExchangeKind::Okx | ExchangeKind::Kraken => assert_eq!(retry, None, "{kind}"),
            _ => assert_eq!(retry, Some(7_000), "{kind}"),
        }
        if kind != ExchangeKind::Okx && kind != ExchangeKind::Kraken {
            assert_eq!(
                i.signal.and_then(|s| s.retry_after_ms),
                Some(7_000),
                "{kind}"
            );
        }
    }
}

#[test]
fn bybit_and_okx_rate_limits_arrive_as_200() {
    for kind in [ExchangeKind::Bybit, ExchangeKind::Okx, ExchangeKind::Kraken] {
        assert_eq!(shapes::rate_limited(kind, 1, NOW).status, 200, "{kind}");
    }
}

#[test]
fn banned_shapes_classify_per_exchange() {
    for kind in FIVE {
        let r = shapes::banned(kind, 120, NOW);
        let i = read(kind, EndpointKind::Book, &r);
        let want = match kind {
            ExchangeKind::Binance | ExchangeKind::Bybit | ExchangeKind::Kraken => "ip_banned",
            _ => "rate_limited",
        };
        assert_eq!(kind_of(&i.result), want, "{kind}: {} {}", r.status, r.body);
        let hold = i.signal.as_ref().and_then(|s| s.hold_off(NOW));
        assert_eq!(
            hold,
            Some(std::time::Duration::from_secs(120)),
            "{kind}: {:?}",
            i.signal
        );
    }
    let r = shapes::banned(ExchangeKind::Binance, 120, NOW);
    match read(ExchangeKind::Binance, EndpointKind::Book, &r).result {
        Err(Problem::Api(ApiError::IpBanned {
            until_ms,
            retry_after_ms,
            ..
        })) => {
            assert_eq!(
                (until_ms, retry_after_ms),
                (Some(NOW + 120_000), Some(120_000))
            );
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn server_error_shapes_are_the_exchanges_side() {
    // Each body's code means an internal error (or, on 503, an unavailable
    // service), so it is the exchange's fault whatever the status.
    for kind in FIVE {
        for status in [500u16, 503] {
            let r = shapes::server_error(kind, status);
            let got = kind_of(&read(kind, EndpointKind::Ticker, &r).result);
            let want = match (kind, status) {
                (ExchangeKind::Okx | ExchangeKind::Kraken, 503) => "maintenance",
                _ => "exchange_fault",
            };
            assert_eq!(got, want, "{kind} {status}: {}", r.body);
        }
    }
}

// ------------------------------------------------ validation through the shapes

use exwatch::exchange::validate::ValidationSettings;
use exwatch::exchange::validate::Validator;

fn reason(r: &Result<Payload, Problem>) -> &'static str {
    match r {
        Err(Problem::Invalid(reason)) => reason.name(),
        other => kind_of(other),
    }
}

fn validated(
    v: &mut Validator,
    kind: ExchangeKind,
    endpoint: EndpointKind,
    q: &Quote,
    now: i64,
) -> &'static str {
    let r = shapes::ok(kind, endpoint, q, now);
    match read(kind, endpoint, &r).result {
        Ok(p) => match v.check(&p, now) {
            Ok(()) => "ok",
            Err(e) => e.name(),
        },
        Err(e) => reason(&Err(e)),
    }
}

#[test]
fn nan_and_negative_prices_in_a_shape_are_named() {
    for kind in FIVE {
        let mut q = quote(kind);
        q.bids[1].0 = f64::NAN;
        let r = read(
            kind,
            EndpointKind::Book,
            &shapes::ok(kind, EndpointKind::Book, &q, NOW),
        )
        .result;
        assert_eq!(reason(&r), "bad_number", "{kind}: {r:?}");
        let mut q = quote(kind);
        q.asks[2].1 = -1.0;
        let r = read(
            kind,
            EndpointKind::Book,
            &shapes::ok(kind, EndpointKind::Book, &q, NOW),
        )
        .result;
        assert_eq!(reason(&r), "non_positive", "{kind}: {r:?}");
    }
}

#[test]
fn unsorted_and_empty_books_in_a_shape_are_named() {
    for kind in FIVE {
        let mut q = quote(kind);
        q.asks.swap(1, 2);
        let r = read(
            kind,
            EndpointKind::Book,
            &shapes::ok(kind, EndpointKind::Book, &q, NOW),
        )
        .result;
        assert_eq!(reason(&r), "unsorted_levels", "{kind}");
        let mut q = quote(kind);
        q.bids.clear();
        let r = read(
            kind,
            EndpointKind::Book,
            &shapes::ok(kind, EndpointKind::Book, &q, NOW),
        )
        .result;
        assert_eq!(reason(&r), "empty_book", "{kind}");
    }
}

#[test]
fn stale_data_is_named_where_the_api_has_a_timestamp() {
    for (kind, endpoint) in [
        (ExchangeKind::Bybit, EndpointKind::Book),
        (ExchangeKind::Okx, EndpointKind::Ticker),
        (ExchangeKind::Coinbase, EndpointKind::Ticker),
        (ExchangeKind::Kraken, EndpointKind::Book),
    ] {
        let mut v = Validator::new(ValidationSettings::default());
        let mut q = quote(kind);
        assert_eq!(validated(&mut v, kind, endpoint, &q, NOW), "ok", "{kind}");
        q.ts_ms = NOW - 45_000;
        q.update_id += 1;
        assert_eq!(
            validated(&mut v, kind, endpoint, &q, NOW + 1_000),
            "stale",
            "{kind}"
        );
    }
}

#[test]
fn frozen_data_is_named_for_every_kind() {
    for kind in FIVE {
        let mut v = Validator::new(ValidationSettings::default());
        let q = quote(kind);
        assert_eq!(
            validated(&mut v, kind, EndpointKind::Book, &q, NOW),
            "ok",
            "{kind}"
        );
        // The simulator keeps serving the same book with the same timestamp.
        assert_eq!(
            validated(&mut v, kind, EndpointKind::Book, &q, NOW + 20_000),
            "ok",
            "{kind}"
        );
        let got = validated(&mut v, kind, EndpointKind::Book, &q, NOW + 61_000);
        // Where the book carries its (unchanged) timestamp, it is stale first.
        let want = match kind {
            ExchangeKind::Bybit | ExchangeKind::Okx | ExchangeKind::Kraken => "stale",
            _ => "frozen",
        };
        assert_eq!(got, want, "{kind}");
    }
}

#[test]
fn frozen_with_fresh_timestamps_is_still_frozen_when_the_id_stands_still() {
    let mut v = Validator::new(ValidationSettings::default());
    let mut q = quote(ExchangeKind::Bybit);
    for t in [0, 30_000, 61_000] {
        q.ts_ms = NOW + t;
        let got = validated(&mut v, ExchangeKind::Bybit, EndpointKind::Book, &q, NOW + t);
        assert_eq!(got, if t > 60_000 { "frozen" } else { "ok" }, "at +{t} ms");
    }
}

#[test]
fn a_price_jump_is_named_and_a_backwards_sequence_too() {
    for kind in FIVE {
        let mut v = Validator::new(ValidationSettings::default());
        let mut q = quote(kind);
        assert_eq!(
            validated(&mut v, kind, EndpointKind::Ticker, &q, NOW),
            "ok",
            "{kind}"
        );
        for l in q.bids.iter_mut().chain(q.asks.iter_mut()) {
            l.0 *= 1.25;
        }
        q.bid *= 1.25;
        q.ask *= 1.25;
        q.last *= 1.25;
        assert_eq!(
            validated(&mut v, kind, EndpointKind::Ticker, &q, NOW + 1_000),
            "price_jump",
            "{kind}"
        );
    }
    let mut v = Validator::new(ValidationSettings::default());
    let mut q = quote(ExchangeKind::Binance);
    assert_eq!(
        validated(&mut v, ExchangeKind::Binance, EndpointKind::Book, &q, NOW),
        "ok"
    );
    q.update_id -= 5;
    assert_eq!(
        validated(
            &mut v,
            ExchangeKind::Binance,
            EndpointKind::Book,
            &q,
            NOW + 1_000
        ),
        "sequence_backwards"
    );
}
