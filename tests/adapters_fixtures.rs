//! One test per fixture: documented example bodies and real error bodies of
//! each exchange, read through its adapter, with the normalized values and
//! classifications asserted. Fixture sources: tests/fixtures/SOURCES.md.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed unwrap is a failed test

use exwatch::exchange::{self, Interpretation, OrderBook, Payload, Problem, RawResponse, Ticker};

use exwatch::model::{ApiError, EndpointKind, ExchangeKind, InvalidReason};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use std::path::PathBuf;

/// When the responses "arrived": after every fixture's timestamps.
const RECEIVED: i64 = 1_800_000_000_000;

fn fixture(path: &str) -> Vec<u8> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(path);
    std::fs::read(&p).unwrap_or_else(|e| panic!("fixture {}: {e}", p.display()))
}

fn read_with(
    kind: ExchangeKind,
    endpoint: EndpointKind,
    status: u16,
    headers: &[(&str, &str)],
    path: &str,
) -> Interpretation {
    let body = fixture(path);
    let mut h = HeaderMap::new();
    for (k, v) in headers {
        h.insert(
            HeaderName::from_bytes(k.as_bytes()).expect("name"),
            HeaderValue::from_str(v).expect("value"),
        );
    }
    let raw = RawResponse {
        status,
        headers: &h,
        body: &body,
        received_at_ms: RECEIVED,
        elapsed_ms: 12,
        requested_symbol: None,
    };
    exchange::interpret(kind, endpoint, &raw, None)
}

fn read(
    kind: ExchangeKind,
    endpoint: EndpointKind,
    status: u16,
    path: &str,
) -> Result<Payload, Problem> {
    read_with(kind, endpoint, status, &[], path).result
}

fn ticker(r: Result<Payload, Problem>) -> Ticker {
    match r {
        Ok(Payload::Ticker(t)) => t,
        other => panic!("expected a ticker, got {other:?}"),
    }
}

fn book(r: Result<Payload, Problem>) -> OrderBook {
    match r {
        Ok(Payload::Book(b)) => b,
        other => panic!("expected a book, got {other:?}"),
    }
}

fn time(r: Result<Payload, Problem>) -> i64 {
    match r {
        Ok(Payload::Time { server_ms }) => server_ms,
        other => panic!("expected server time, got {other:?}"),
    }
}

fn api(r: Result<Payload, Problem>) -> ApiError {
    match r {
        Err(Problem::Api(e)) => e,
        other => panic!("expected an exchange error, got {other:?}"),
    }
}

fn code_of(e: &ApiError) -> Option<&str> {
    e.code()
}

use EndpointKind::{Book, Ticker as Tick, Time};
use ExchangeKind::{Binance, Bybit, Coinbase, Kraken, Okx};

// ---------------------------------------------------------------- Binance

#[test]
fn binance_time() {
    assert_eq!(
        time(read(Binance, Time, 200, "binance/time.json")),
        1_499_827_319_559
    );
}

#[test]
fn binance_book_ticker() {
    let t = ticker(read(Binance, Tick, 200, "binance/book_ticker.json"));
    assert_eq!(t.symbol, "LTCBTC");
    assert_eq!(
        (t.bid, t.ask, t.last, t.exchange_ts_ms),
        (Some(4.0), Some(4.000002), None, None)
    );
}

#[test]
fn binance_ticker_price() {
    let t = ticker(read(Binance, Tick, 200, "binance/ticker_price.json"));
    assert_eq!(
        (t.symbol.as_str(), t.last, t.bid),
        ("LTCBTC", Some(4.000002), None)
    );
}

#[test]
fn binance_ticker_24hr() {
    let t = ticker(read(Binance, Tick, 200, "binance/ticker_24hr.json"));
    assert_eq!(t.symbol, "BNBBTC");
    assert_eq!(
        (t.last, t.bid, t.ask),
        (Some(4.000002), Some(4.0), Some(4.000002))
    );
    assert_eq!(t.exchange_ts_ms, Some(1_499_869_899_040));
}

#[test]
fn binance_avg_price() {
    let t = ticker(read(Binance, Tick, 200, "binance/avg_price.json"));
    assert_eq!(
        (t.last, t.exchange_ts_ms),
        (Some(9.35751834), Some(1_694_061_154_503))
    );
}

#[test]
fn binance_lists_need_a_symbol() {
    for f in [
        "binance/ticker_price_list.json",
        "binance/ticker_24hr_mini_list.json",
    ] {
        let r = read(Binance, Tick, 200, f);
        assert!(
            matches!(r, Err(Problem::Invalid(InvalidReason::Schema { .. }))),
            "{f}: {r:?}"
        );
    }
}

#[test]
fn binance_depth() {
    let b = book(read(Binance, Book, 200, "binance/depth.json"));
    assert_eq!(b.update_id, Some(1_027_024));
    assert_eq!((b.best_bid(), b.best_ask()), (Some(4.0), Some(4.000002)));
    assert_eq!((b.bids[0].size.value, b.asks[0].size.value), (431.0, 12.0));
    // The original text is kept for exact comparisons.
    assert_eq!(b.asks[0].price.text, "4.00000200");
    assert_eq!(b.exchange_ts_ms, None);
}

#[test]
fn binance_jsonc_comments_are_refused_not_misread() {
    let body = br#"{"lastUpdateId": 1, // comment
        "bids": [], "asks": []}"#;
    let h = HeaderMap::new();
    let r = RawResponse {
        status: 200,
        headers: &h,
        body,
        received_at_ms: RECEIVED,
        elapsed_ms: 0,
        requested_symbol: None,
    };
    let got = exchange::interpret(Binance, Book, &r, None).result;
    assert!(
        matches!(got, Err(Problem::Invalid(InvalidReason::NotJson { .. }))),
        "{got:?}"
    );
}

#[test]
fn binance_error_429() {
    let i = read_with(
        Binance,
        Book,
        429,
        &[("Retry-After", "31"), ("X-MBX-USED-WEIGHT-1M", "6012")],
        "binance/error_429.json",
    );
    match api(i.result) {
        ApiError::RateLimited {
            retry_after_ms,
            code,
            message,
        } => {
            assert_eq!(
                (retry_after_ms, code.as_deref()),
                (Some(31_000), Some("-1003"))
            );
            assert!(message.starts_with("Too much request weight used"));
        }
        other => panic!("{other:?}"),
    }
    let s = i.signal.expect("signal");
    assert_eq!(
        (s.used, s.window_ms, s.retry_after_ms),
        (Some(6012), Some(60_000), Some(31_000))
    );
}

#[test]
fn binance_error_429_legacy_2018() {
    let e = api(read(
        Binance,
        Book,
        429,
        "binance/error_429_legacy_2018.json",
    ));
    assert!(matches!(e, ApiError::RateLimited { .. }), "{e:?}");
    assert_eq!(code_of(&e), Some("-1003"));
}

#[test]
fn binance_error_418_ban_time_is_parsed() {
    let i = read_with(
        Binance,
        Tick,
        418,
        &[("Retry-After", "600")],
        "binance/error_418.json",
    );
    assert_eq!(
        api(i.result.clone()),
        ApiError::IpBanned {
            until_ms: Some(1_659_761_931_230),
            retry_after_ms: Some(600_000),
            message: "Way too much request weight used; IP banned until 1659761931230. Please use the websocket for live updates to avoid bans.".into(),
        }
    );
    assert_eq!(
        i.signal.and_then(|s| s.banned_until_ms),
        Some(1_659_761_931_230)
    );
}

#[test]
fn binance_error_invalid_symbol() {
    let e = api(read(
        Binance,
        Book,
        400,
        "binance/error_invalid_symbol.json",
    ));
    assert_eq!(
        e,
        ApiError::InvalidSymbol {
            code: Some("-1121".into()),
            message: "Invalid symbol.".into()
        }
    );
}

#[test]
fn binance_default_budget_matches_exchange_info() {
    let v: serde_json::Value =
        serde_json::from_slice(&fixture("binance/rate_limit_request_weight.json")).expect("json");
    let limit = v["limit"].as_f64().expect("limit");
    assert_eq!(
        (v["interval"].as_str(), v["intervalNum"].as_u64()),
        (Some("MINUTE"), Some(1))
    );
    let b = exchange::spec(Binance).budget;
    assert_eq!((b.capacity, b.refill_per_sec), (limit, limit / 60.0));
}

#[test]
fn binance_presets_and_depth_weights() {
    let p = exchange::preset(Binance, Book, "BTCUSDT", 100).expect("preset");
    assert_eq!(p.path, "/api/v3/depth");
    assert_eq!(
        p.query,
        vec![
            ("symbol".to_string(), "BTCUSDT".to_string()),
            ("limit".into(), "100".into())
        ]
    );
    let w = |d| exchange::preset(Binance, Book, "X", d).map(|p| p.weight);
    assert_eq!(
        [
            w(5),
            w(100),
            w(101),
            w(500),
            w(501),
            w(1000),
            w(1001),
            w(5000)
        ]
        .map(Option::unwrap_or_default),
        [5, 5, 25, 25, 50, 50, 250, 250]
    );
    let t = exchange::preset(Binance, Tick, "BTCUSDT", 0).expect("preset");
    assert_eq!(
        (t.path.as_str(), t.weight),
        ("/api/v3/ticker/bookTicker", 2)
    );
    assert_eq!(
        exchange::preset(Binance, Time, "", 0).map(|p| (p.path, p.weight)),
        Some(("/api/v3/time".into(), 1))
    );
}

// ---------------------------------------------------------------- Bybit

#[test]
fn bybit_time() {
    assert_eq!(
        time(read(Bybit, Time, 200, "bybit/time.json")),
        1_688_639_403_423
    );
}

#[test]
fn bybit_tickers_spot() {
    let t = ticker(read(Bybit, Tick, 200, "bybit/tickers_spot.json"));
    assert_eq!(t.symbol, "BTCUSDT");
    assert_eq!(
        (t.last, t.bid, t.ask),
        (Some(20533.13), Some(20517.96), Some(20527.77))
    );
    assert_eq!(t.exchange_ts_ms, Some(1_673_859_087_947));
}

#[test]
fn bybit_tickers_inverse() {
    let t = ticker(read(Bybit, Tick, 200, "bybit/tickers_inverse.json"));
    assert_eq!(
        (t.symbol.as_str(), t.last, t.bid, t.ask),
        ("BTCUSD", Some(120635.5), Some(103401.0), Some(109152.8))
    );
}

#[test]
fn bybit_tickers_option_zero_bid_means_no_bid() {
    let t = ticker(read(Bybit, Tick, 200, "bybit/tickers_option.json"));
    assert_eq!((t.last, t.bid, t.ask), (Some(435.0), None, Some(435.0)));
}

#[test]
fn bybit_orderbook() {
    let b = book(read(Bybit, Book, 200, "bybit/orderbook.json"));
    assert_eq!(b.symbol, "BTCUSDT");
    assert_eq!(
        (b.best_bid(), b.best_ask()),
        (Some(65485.47), Some(65557.7))
    );
    assert_eq!(
        (b.exchange_ts_ms, b.update_id),
        (Some(1_716_863_719_031), Some(230_704))
    );
}

/// `X-Bapi-*` lines of the documented header example.
fn bybit_doc_headers() -> Vec<(String, String)> {
    String::from_utf8_lossy(&fixture("bybit/rate_limit_response_headers.txt"))
        .lines()
        .filter_map(|l| l.split_once(": "))
        .filter(|(k, _)| k.starts_with("X-Bapi"))
        .map(|(k, v)| (k.to_string(), v.trim().to_string()))
        .collect()
}

#[test]
fn bybit_error_10006_inside_200_is_rate_limited() {
    let hs = bybit_doc_headers();
    assert_eq!(hs.len(), 3);
    let h: Vec<(&str, &str)> = hs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let i = read_with(Bybit, Tick, 200, &h, "bybit/error_10006_rate_limit.json");
    let e = api(i.result);
    assert!(matches!(e, ApiError::RateLimited { .. }), "{e:?}");
    assert_eq!(code_of(&e), Some("10006"));
    let s = i.signal.expect("signal");
    assert_eq!(
        (s.limit, s.remaining, s.reset_at_ms),
        (Some(10), Some(9), Some(1_672_738_134_824))
    );
}

#[test]
fn bybit_error_10001_not_supported_symbols() {
    let e = api(read(
        Bybit,
        Tick,
        200,
        "bybit/error_10001_not_supported_symbols.json",
    ));
    assert_eq!(
        e,
        ApiError::InvalidSymbol {
            code: Some("10001".into()),
            message: "Not supported symbols".into()
        }
    );
}

#[test]
fn bybit_error_10016_timeout_in_200_is_the_exchanges_fault() {
    let e = api(read(Bybit, Book, 200, "bybit/error_10016_timeout.json"));
    assert!(matches!(e, ApiError::ExchangeFault { .. }), "{e:?}");
    assert_eq!(code_of(&e), Some("10016"));
    assert_eq!(e.class(), exwatch::model::OutcomeClass::ServerError);
}

#[test]
fn bybit_legacy_v2_body_is_not_a_payload() {
    let r = read(
        Bybit,
        Tick,
        200,
        "bybit/legacy_v2_error_with_rate_limit_fields.json",
    );
    assert!(
        matches!(r, Err(Problem::Invalid(InvalidReason::Schema { .. }))),
        "{r:?}"
    );
}

#[test]
fn bybit_presets() {
    let p = exchange::preset(Bybit, Book, "BTCUSDT", 50).expect("preset");
    assert_eq!(p.path, "/v5/market/orderbook");
    let q: Vec<(&str, &str)> = p
        .query
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        q,
        [("category", "spot"), ("symbol", "BTCUSDT"), ("limit", "50")]
    );
    assert_eq!(
        exchange::preset(Bybit, Tick, "BTCUSDT", 0).map(|p| p.path),
        Some("/v5/market/tickers".into())
    );
    assert_eq!(
        exchange::preset(Bybit, Time, "", 0).map(|p| p.path),
        Some("/v5/market/time".into())
    );
}

// ---------------------------------------------------------------- OKX

#[test]
fn okx_time() {
    assert_eq!(
        time(read(Okx, Time, 200, "okx/time.json")),
        1_597_026_383_085
    );
}

#[test]
fn okx_ticker() {
    let t = ticker(read(Okx, Tick, 200, "okx/ticker.json"));
    assert_eq!(t.symbol, "BTC-USD-SWAP");
    assert_eq!(
        (t.last, t.bid, t.ask),
        (Some(9999.99), Some(8888.88), Some(9999.99))
    );
    assert_eq!(t.exchange_ts_ms, Some(1_597_026_383_085));
}

#[test]
fn okx_books() {
    let b = book(read(Okx, Book, 200, "okx/books.json"));
    assert_eq!((b.best_bid(), b.best_ask()), (Some(41006.3), Some(41006.8)));
    assert_eq!(
        (b.bids[0].size.text.as_str(), b.asks[0].size.text.as_str()),
        ("0.30178218", "0.60038921")
    );
    assert_eq!(b.exchange_ts_ms, Some(1_629_966_436_396));
}

#[test]
fn okx_error_50011_as_429_and_as_200() {
    for status in [429, 200] {
        let e = api(read(Okx, Tick, status, "okx/error_50011_429.json"));
        assert!(matches!(e, ApiError::RateLimited { .. }), "{status}: {e:?}");
        assert_eq!(code_of(&e), Some("50011"));
    }
}

#[test]
fn okx_error_50011_numeric_code() {
    let e = api(read(
        Okx,
        Book,
        429,
        "okx/error_50011_legacy_numeric_code.json",
    ));
    assert!(matches!(e, ApiError::RateLimited { .. }), "{e:?}");
    assert_eq!(code_of(&e), Some("50011"));
}

#[test]
fn okx_error_51001_unknown_instrument() {
    let e = api(read(Okx, Tick, 200, "okx/error_51001_instrument.json"));
    assert!(matches!(e, ApiError::InvalidSymbol { .. }), "{e:?}");
}

#[test]
fn okx_presets() {
    let p = exchange::preset(Okx, Book, "BTC-USDT", 20).expect("preset");
    assert_eq!(p.path, "/api/v5/market/books");
    assert_eq!(
        p.query,
        vec![
            ("instId".to_string(), "BTC-USDT".to_string()),
            ("sz".into(), "20".into())
        ]
    );
    assert_eq!(
        exchange::preset(Okx, Tick, "BTC-USDT", 0).map(|p| p.path),
        Some("/api/v5/market/ticker".into())
    );
    assert_eq!(
        exchange::preset(Okx, Time, "", 0).map(|p| p.path),
        Some("/api/v5/public/time".into())
    );
}

// ---------------------------------------------------------------- Coinbase

#[test]
fn coinbase_time() {
    assert_eq!(
        time(read(Coinbase, Time, 200, "coinbase/time.json")),
        1_420_674_445_201
    );
}

#[test]
fn coinbase_ticker_captured() {
    let t = ticker(read(Coinbase, Tick, 200, "coinbase/ticker.json"));
    assert_eq!(
        (t.last, t.bid, t.ask),
        (Some(73367.8), Some(73360.34), Some(73369.19))
    );
    // 2024-03-13T11:10:41.270099Z
    assert_eq!(t.exchange_ts_ms, Some(1_710_328_241_270));
}

#[test]
fn coinbase_ticker_openapi_example() {
    let t = ticker(read(
        Coinbase,
        Tick,
        200,
        "coinbase/ticker_openapi_example.json",
    ));
    assert_eq!(
        (t.last, t.bid, t.ask),
        (Some(6268.48), Some(6265.15), Some(6267.71))
    );
    assert_eq!(t.exchange_ts_ms, Some(1_584_663_777_833));
}

#[test]
fn coinbase_book_level1() {
    let b = book(read(Coinbase, Book, 200, "coinbase/book_level1.json"));
    assert_eq!(
        (b.best_bid(), b.best_ask(), b.update_id),
        (Some(8966.04), Some(8966.06), Some(12_259_075))
    );
}

#[test]
fn coinbase_book_level2() {
    let b = book(read(Coinbase, Book, 200, "coinbase/book_level2.json"));
    assert_eq!(b.update_id, Some(115_151_757));
    assert_eq!(b.best_bid(), Some(9739.0));
    assert!(
        b.bids.len() > 40 && !b.asks.is_empty(),
        "{} x {}",
        b.bids.len(),
        b.asks.len()
    );
}

#[test]
fn coinbase_book_openapi_example() {
    let b = book(read(
        Coinbase,
        Book,
        200,
        "coinbase/book_openapi_example.json",
    ));
    assert_eq!(
        (b.best_bid(), b.best_ask(), b.update_id),
        (Some(6247.58), Some(6251.52), Some(13_051_505_638))
    );
}

#[test]
fn coinbase_error_429_private_and_public() {
    for f in [
        "coinbase/error_429_private.json",
        "coinbase/error_429_public.json",
    ] {
        let e = api(read(Coinbase, Tick, 429, f));
        assert!(matches!(e, ApiError::RateLimited { .. }), "{f}: {e:?}");
    }
}

#[test]
fn coinbase_error_not_found_is_invalid_symbol() {
    let e = api(read(Coinbase, Tick, 404, "coinbase/error_not_found.json"));
    assert_eq!(
        e,
        ApiError::InvalidSymbol {
            code: Some("404".into()),
            message: "NotFound".into()
        }
    );
}

#[test]
fn coinbase_presets() {
    assert_eq!(
        exchange::preset(Coinbase, Tick, "BTC-USD", 0).map(|p| p.path),
        Some("/products/BTC-USD/ticker".into())
    );
    let b = exchange::preset(Coinbase, Book, "BTC-USD", 0).expect("preset");
    assert_eq!(
        (b.path.as_str(), b.query.clone()),
        ("/products/BTC-USD/book", vec![("level".into(), "2".into())])
    );
    assert_eq!(
        exchange::preset(Coinbase, Time, "", 0).map(|p| p.path),
        Some("/time".into())
    );
}

// ---------------------------------------------------------------- Kraken

#[test]
fn kraken_time() {
    assert_eq!(
        time(read(Kraken, Time, 200, "kraken/time.json")),
        1_688_669_448_000
    );
}

#[test]
fn kraken_ticker() {
    let t = ticker(read(Kraken, Tick, 200, "kraken/ticker.json"));
    assert_eq!(t.symbol, "XXBTZUSD");
    assert_eq!(
        (t.last, t.bid, t.ask),
        (Some(30303.2), Some(30300.0), Some(30300.1))
    );
    assert_eq!(t.exchange_ts_ms, None);
}

#[test]
fn kraken_depth() {
    let b = book(read(Kraken, Book, 200, "kraken/depth.json"));
    assert_eq!(b.symbol, "XXBTZUSD");
    assert_eq!((b.best_bid(), b.best_ask()), (Some(30297.0), Some(30384.1)));
    assert_eq!((b.bids.len(), b.asks.len()), (3, 3));
    // The newest level change: bids[1] at 1688671674 s.
    assert_eq!(b.exchange_ts_ms, Some(1_688_671_674_000));
}

#[test]
fn kraken_error_rate_limit_and_too_many_requests() {
    for f in [
        "kraken/error_rate_limit.json",
        "kraken/error_too_many_requests.json",
    ] {
        let e = api(read(Kraken, Tick, 200, f));
        assert!(matches!(e, ApiError::RateLimited { .. }), "{f}: {e:?}");
    }
}

#[test]
fn kraken_error_unknown_asset_pair() {
    let e = api(read(
        Kraken,
        Book,
        200,
        "kraken/error_unknown_asset_pair.json",
    ));
    assert!(matches!(e, ApiError::InvalidSymbol { .. }), "{e:?}");
}

#[test]
fn kraken_error_service_unavailable_is_maintenance() {
    let e = api(read(
        Kraken,
        Tick,
        200,
        "kraken/error_service_unavailable.json",
    ));
    assert_eq!(
        e,
        ApiError::Maintenance {
            message: "EService:Unavailable".into()
        }
    );
}

#[test]
fn kraken_presets() {
    let p = exchange::preset(Kraken, Book, "XBTUSD", 10).expect("preset");
    assert_eq!(p.path, "/0/public/Depth");
    assert_eq!(
        p.query,
        vec![
            ("pair".to_string(), "XBTUSD".to_string()),
            ("count".into(), "10".into())
        ]
    );
    assert_eq!(
        exchange::preset(Kraken, Tick, "XBTUSD", 0).map(|p| p.path),
        Some("/0/public/Ticker".into())
    );
    assert_eq!(
        exchange::preset(Kraken, Time, "", 0).map(|p| p.path),
        Some("/0/public/Time".into())
    );
}

// ---------------------------------------------------------------- any kind

#[test]
fn html_error_page_is_http_error_with_excerpt() {
    for kind in [Binance, Bybit, Okx, Coinbase, Kraken] {
        match read(kind, Tick, 502, "common/html_502.html") {
            Err(Problem::Http {
                status,
                body_excerpt,
            }) => {
                assert_eq!(status, 502);
                // The page's title, not its markup.
                assert_eq!(body_excerpt, "502 Bad Gateway");
            }
            other => panic!("{kind}: {other:?}"),
        }
    }
}

#[test]
fn html_page_with_200_is_not_json() {
    for kind in [Binance, Bybit, Okx, Coinbase, Kraken] {
        let r = read(kind, Tick, 200, "common/html_502.html");
        assert_eq!(
            r,
            Err(Problem::Invalid(InvalidReason::NotJson {
                detail: "an HTML page: 502 Bad Gateway".into()
            })),
            "{kind}"
        );
    }
}

#[test]
fn truncated_body_is_not_json() {
    for kind in [Binance, Bybit, Okx, Coinbase, Kraken] {
        let r = read(kind, Book, 200, "common/truncated_bybit_orderbook.json");
        assert!(
            matches!(r, Err(Problem::Invalid(InvalidReason::NotJson { .. }))),
            "{kind}: {r:?}"
        );
    }
}

#[test]
fn empty_body_is_named() {
    let h = HeaderMap::new();
    for kind in [Binance, Bybit, Okx, Coinbase, Kraken] {
        let raw = RawResponse {
            status: 200,
            headers: &h,
            body: b"",
            received_at_ms: RECEIVED,
            elapsed_ms: 0,
            requested_symbol: None,
        };
        let r = exchange::interpret(kind, Tick, &raw, None).result;
        assert_eq!(r, Err(Problem::Invalid(InvalidReason::EmptyBody)), "{kind}");
        // A 429 with no body is still a rate limit.
        let raw = RawResponse { status: 429, ..raw };
        let r = exchange::interpret(kind, Tick, &raw, None).result;
        assert!(
            matches!(r, Err(Problem::Api(ApiError::RateLimited { .. }))),
            "{kind}: {r:?}"
        );
    }
}

#[test]
fn binance_418_without_a_ban_time_counts_from_retry_after() {
    let i = read_with(
        Binance,
        Book,
        418,
        &[("Retry-After", "120")],
        "common/html_502.html",
    );
    match api(i.result) {
        ApiError::IpBanned {
            until_ms,
            retry_after_ms,
            ..
        } => {
            assert_eq!(
                (until_ms, retry_after_ms),
                (Some(RECEIVED + 120_000), Some(120_000))
            );
        }
        other => panic!("{other:?}"),
    }
}

// ------------------------------------------------------ wrong instrument

/// A fixture read as the answer to a request for `asked`.
fn read_asking(
    kind: ExchangeKind,
    endpoint: EndpointKind,
    asked: &str,
    path: &str,
) -> Result<Payload, Problem> {
    let body = fixture(path);
    let h = HeaderMap::new();
    let raw = RawResponse {
        status: 200,
        headers: &h,
        body: &body,
        received_at_ms: RECEIVED,
        elapsed_ms: 12,
        requested_symbol: Some(asked),
    };
    exchange::interpret(kind, endpoint, &raw, None).result
}

fn wrong(expected: &str, got: &str) -> Result<Payload, Problem> {
    Err(Problem::Invalid(InvalidReason::WrongInstrument {
        expected: expected.into(),
        got: got.into(),
    }))
}

/// The issue's case: a Bybit tickers answer for `CANDYUSDT` when `BTCUSDT`
/// was asked.
#[test]
fn bybit_ticker_of_another_symbol_is_wrong_instrument() {
    let body = String::from_utf8(fixture("bybit/tickers_spot.json"))
        .unwrap()
        .replacen("\"BTCUSDT\"", "\"CANDYUSDT\"", 1);
    let h = HeaderMap::new();
    let raw = RawResponse {
        status: 200,
        headers: &h,
        body: body.as_bytes(),
        received_at_ms: RECEIVED,
        elapsed_ms: 12,
        requested_symbol: Some("BTCUSDT"),
    };
    let r = exchange::interpret(Bybit, Tick, &raw, None).result;
    assert_eq!(r, wrong("BTCUSDT", "CANDYUSDT"));
    assert!(read_asking(Bybit, Tick, "BTCUSDT", "bybit/tickers_spot.json").is_ok());
}

#[test]
fn bybit_book_names_its_symbol_in_s() {
    assert_eq!(
        read_asking(Bybit, Book, "ETHUSDT", "bybit/orderbook.json"),
        wrong("ETHUSDT", "BTCUSDT")
    );
    assert!(read_asking(Bybit, Book, "BTCUSDT", "bybit/orderbook.json").is_ok());
    // Case and separators are spelling, not another instrument.
    assert!(read_asking(Bybit, Book, "btc-usdt", "bybit/orderbook.json").is_ok());
}

#[test]
fn binance_ticker_of_another_symbol_is_wrong_instrument() {
    assert_eq!(
        read_asking(Binance, Tick, "BTCUSDT", "binance/book_ticker.json"),
        wrong("BTCUSDT", "LTCBTC")
    );
    for same in ["LTCBTC", "ltcbtc", "LTC-BTC", "LTC/BTC"] {
        assert!(
            read_asking(Binance, Tick, same, "binance/book_ticker.json").is_ok(),
            "{same}"
        );
    }
    // depth does not name its symbol: nothing to compare, so it stands.
    assert!(read_asking(Binance, Book, "ETHUSDT", "binance/depth.json").is_ok());
}

#[test]
fn okx_ticker_compares_inst_id() {
    // The fixture is the docs' BTC-USD-SWAP: the spot pair is another instrument.
    assert_eq!(
        read_asking(Okx, Tick, "BTC-USD", "okx/ticker.json"),
        wrong("BTC-USD", "BTC-USD-SWAP")
    );
    assert_eq!(
        read_asking(Okx, Tick, "ETH-USD-SWAP", "okx/ticker.json"),
        wrong("ETH-USD-SWAP", "BTC-USD-SWAP")
    );
    assert!(read_asking(Okx, Tick, "btc-usd-swap", "okx/ticker.json").is_ok());
    // REST books carry no instId: unchecked.
    assert!(read_asking(Okx, Book, "ETH-USDT", "okx/books.json").is_ok());
}

#[test]
fn coinbase_bodies_do_not_name_the_product_so_it_cannot_be_checked() {
    // The product id is only in the path; the ticker's trade_id and the
    // book's sequence are per-product counters. An answer for another
    // product cannot be told apart, and is not refused.
    assert!(read_asking(Coinbase, Tick, "ETH-USD", "coinbase/ticker.json").is_ok());
    assert!(read_asking(Coinbase, Book, "ETH-USD", "coinbase/book_level2.json").is_ok());
}

#[test]
fn kraken_result_key_of_another_pair_is_wrong_instrument() {
    assert_eq!(
        read_asking(Kraken, Tick, "ETHUSD", "kraken/ticker.json"),
        wrong("ETHUSD", "XXBTZUSD")
    );
    assert_eq!(
        read_asking(Kraken, Book, "XBTEUR", "kraken/depth.json"),
        wrong("XBTEUR", "XXBTZUSD")
    );
    assert_eq!(
        read_asking(Kraken, Tick, "XBTUSDT", "kraken/ticker.json"),
        wrong("XBTUSDT", "XXBTZUSD")
    );
}

/// Every name Kraken takes for XBT/USD: the altname, its wsname, the result
/// key itself, the BTC spelling with and without a separator, lower case.
#[test]
fn kraken_alternate_names_of_the_pair_are_the_same_instrument() {
    for asked in [
        "XBTUSD", "XBT/USD", "XXBTZUSD", "BTC/USD", "BTCUSD", "xbtusd", "BTC-USD",
    ] {
        let t = read_asking(Kraken, Tick, asked, "kraken/ticker.json");
        assert!(t.is_ok(), "{asked}: {t:?}");
        let b = read_asking(Kraken, Book, asked, "kraken/depth.json");
        assert!(b.is_ok(), "{asked}: {b:?}");
    }
}

#[test]
fn kraken_pair_names_normalize_by_its_rules() {
    use exwatch::exchange::kraken::pair_key;
    // Legacy X/Z-prefixed keys, wsnames and altnames meet in one spelling.
    assert_eq!(pair_key("XXBTZUSD"), pair_key("XBTUSD"));
    assert_eq!(pair_key("XETHZUSD"), pair_key("ETH/USD"));
    assert_eq!(pair_key("XETHXXBT"), pair_key("ETH/XBT"));
    assert_eq!(pair_key("XETHXXBT"), pair_key("ETHBTC"));
    assert_eq!(pair_key("ZEURZUSD"), pair_key("EUR/USD"));
    assert_eq!(pair_key("USDTZUSD"), pair_key("USDT/USD"));
    // XDG is Kraken's dogecoin, XBT its bitcoin.
    assert_eq!(pair_key("XDGUSD"), pair_key("DOGE/USD"));
    assert_eq!(pair_key("XXDGZUSD"), pair_key("DOGEUSD"));
    assert_eq!(pair_key("XBTUSDT"), pair_key("BTC/USDT"));
    // And different pairs stay different.
    assert_ne!(pair_key("XXBTZUSD"), pair_key("XBTUSDT"));
    assert_ne!(pair_key("XXBTZUSD"), pair_key("XETHZUSD"));
    assert_ne!(pair_key("XTZUSD"), pair_key("XBTUSD"));
    assert_ne!(pair_key("XXBTZEUR"), pair_key("XBTUSD"));
}

#[test]
fn an_answer_for_another_instrument_is_checked_before_its_numbers() {
    // A crossed or unparsable book of another instrument is first of all
    // the wrong instrument.
    let h = HeaderMap::new();
    let body = br#"{"retCode":0,"retMsg":"OK","result":{"s":"CANDYUSDT","a":[["1","1"]],"b":[["2","1"]],"ts":1,"u":1},"time":1}"#;
    let raw = RawResponse {
        status: 200,
        headers: &h,
        body,
        received_at_ms: RECEIVED,
        elapsed_ms: 1,
        requested_symbol: Some("BTCUSDT"),
    };
    assert_eq!(
        exchange::interpret(Bybit, Book, &raw, None).result,
        wrong("BTCUSDT", "CANDYUSDT")
    );
}

// ------------------------------------------------- HTML pages and the BOM

/// CloudFront's geo-block page is a block of this region or IP on every
/// kind (not an HTTP error, not Bybit's IP rate ban), and its message is the
/// page's one useful line instead of `<!DOCTYPE HTML PUBLIC ...`.
#[test]
fn cloudfront_geo_block_page_is_a_block_named_by_its_line() {
    for kind in [Binance, Bybit, Okx, Coinbase, Kraken] {
        match api(read(kind, Tick, 403, "common/cloudfront_403.html")) {
            ApiError::Blocked { by, message } => {
                assert_eq!(by, "CloudFront", "{kind}");
                assert!(
                    message.contains("configured to block access from your country")
                        && !message.contains('<'),
                    "{kind}: {message}"
                );
            }
            other => panic!("{kind}: {other:?}"),
        }
    }
}

/// A CDN error page that is not a block is reported by its title and first
/// heading, decoded and on one line.
#[test]
fn a_cdn_error_page_is_reported_by_its_title() {
    let page = b"<!DOCTYPE HTML PUBLIC \"-//W3C//DTD HTML 4.01 Transitional//EN\">\n<HTML><HEAD><TITLE>ERROR: The request could not be satisfied</TITLE></HEAD><BODY>\n<H1>504 Gateway Timeout ERROR</H1>\n<H2>The request could not be satisfied.</H2>\n</BODY></HTML>";
    let line = "ERROR: The request could not be satisfied — 504 Gateway Timeout ERROR";
    let h = HeaderMap::new();
    for kind in [Binance, Okx, Coinbase, Kraken] {
        let raw = RawResponse {
            status: 504,
            headers: &h,
            body: page,
            received_at_ms: RECEIVED,
            elapsed_ms: 1,
            requested_symbol: None,
        };
        assert_eq!(
            exchange::interpret(kind, Tick, &raw, None).result,
            Err(Problem::Http {
                status: 504,
                body_excerpt: line.into()
            }),
            "{kind}"
        );
    }
}

#[test]
fn html_headlines_decode_entities_and_ignore_markup() {
    use exwatch::exchange::html_headline;
    let page = |s: &str| html_headline(s.as_bytes());
    assert_eq!(
        page(
            "<html><head><title lang=\"en\">\n  api.example.com | 502: Bad gateway\n</title></head></html>"
        ),
        Some("api.example.com | 502: Bad gateway".into())
    );
    assert_eq!(
        page("<!doctype html><title>Q&amp;A &#8211; &lt;down&gt;&nbsp;&#x21;</title>"),
        Some("Q&A – <down> !".into())
    );
    // No title: the first heading, its inner tags dropped.
    assert_eq!(
        page(
            "<html><body><h1 class=\"x\">Bad gateway <span>Error code 502</span></h1></body></html>"
        ),
        Some("Bad gateway Error code 502".into())
    );
    // A heading that repeats the title adds nothing.
    assert_eq!(
        page("<html><title>502 Bad Gateway</title><h1>502 Bad Gateway</h1></html>"),
        Some("502 Bad Gateway".into())
    );
    // `<titles>` is not a title, an unclosed title is not one either.
    assert_eq!(page("<html><titles>x</titles></html>"), None);
    assert_eq!(page("<html><title>never closed"), None);
    // Not HTML at all: no headline, the excerpt stays the text.
    assert_eq!(page("upstream connect error <title>"), None);
    assert_eq!(page("{\"title\": \"<title>x</title>\"}"), None);
    assert_eq!(
        exchange::excerpt(b"upstream connect error or disconnect/reset before headers"),
        "upstream connect error or disconnect/reset before headers"
    );
    // A headline is one line of bounded length however long the title.
    let long = format!("<html><title>{}</title></html>", "x ".repeat(1000));
    assert!(exchange::excerpt(long.as_bytes()).chars().count() <= 201);
}

/// RFC 8259 lets a parser ignore a leading byte order mark: a real body
/// behind one is read as if it were not there.
#[test]
fn a_utf8_byte_order_mark_before_the_json_is_ignored() {
    let bom = |path: &str| {
        let mut b = b"\xEF\xBB\xBF".to_vec();
        b.extend(fixture(path));
        b
    };
    let h = HeaderMap::new();
    for (kind, endpoint, path) in [
        (Binance, Tick, "binance/book_ticker.json"),
        (Bybit, Tick, "bybit/tickers_spot.json"),
        (Okx, Book, "okx/books.json"),
        (Coinbase, Tick, "coinbase/ticker.json"),
        (Kraken, Book, "kraken/depth.json"),
    ] {
        let body = bom(path);
        assert!(exchange::has_bom(&body));
        let raw = RawResponse {
            status: 200,
            headers: &h,
            body: &body,
            received_at_ms: RECEIVED,
            elapsed_ms: 1,
            requested_symbol: None,
        };
        let with = exchange::interpret(kind, endpoint, &raw, None).result;
        assert!(with.is_ok(), "{kind}: {with:?}");
        assert_eq!(with, read(kind, endpoint, 200, path), "{kind}");
    }
    // A BOM and nothing else is an empty body, not garbage.
    let raw = RawResponse {
        status: 200,
        headers: &h,
        body: b"\xEF\xBB\xBF \n",
        received_at_ms: RECEIVED,
        elapsed_ms: 1,
        requested_symbol: None,
    };
    assert_eq!(
        exchange::interpret(Okx, Tick, &raw, None).result,
        Err(Problem::Invalid(InvalidReason::EmptyBody))
    );
}
