//! `exwatch check` against a local server that serves the exchanges'
//! documented example payloads (tests/fixtures/): the normalized values
//! come out of `--json`, and every documented error body is classified.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed unwrap is a failed test

use axum::http::{HeaderMap, HeaderValue, StatusCode};
use std::collections::HashMap;
use std::process::Command;
use std::sync::Arc;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");

struct Answer {
    status: u16,
    retry_after: Option<&'static str>,
    file: &'static str,
}

fn a(status: u16, file: &'static str) -> Answer {
    Answer {
        status,
        retry_after: None,
        file,
    }
}

/// Path → fixture; the query is ignored, as the exchange would not care here.
fn routes() -> HashMap<&'static str, Answer> {
    let mut r = HashMap::new();
    r.insert("/binance/api/v3/time", a(200, "binance/time.json"));
    r.insert(
        "/binance/api/v3/ticker/bookTicker",
        a(200, "binance/book_ticker.json"),
    );
    r.insert("/binance/api/v3/depth", a(200, "binance/depth.json"));
    r.insert("/bybit/v5/market/time", a(200, "bybit/time.json"));
    r.insert(
        "/bybit/v5/market/tickers",
        a(200, "bybit/tickers_spot.json"),
    );
    r.insert("/bybit/v5/market/orderbook", a(200, "bybit/orderbook.json"));
    r.insert("/okx/api/v5/public/time", a(200, "okx/time.json"));
    r.insert("/okx/api/v5/market/ticker", a(200, "okx/ticker.json"));
    r.insert("/okx/api/v5/market/books", a(200, "okx/books.json"));
    r.insert("/coinbase/time", a(200, "coinbase/time.json"));
    r.insert(
        "/coinbase/products/BTC-USD/ticker",
        a(200, "coinbase/ticker.json"),
    );
    r.insert(
        "/coinbase/products/BTC-USD/book",
        a(200, "coinbase/book_level2.json"),
    );
    r.insert("/kraken/0/public/Time", a(200, "kraken/time.json"));
    r.insert("/kraken/0/public/Ticker", a(200, "kraken/ticker.json"));
    r.insert("/kraken/0/public/Depth", a(200, "kraken/depth.json"));
    // Documented error bodies, each with the status the exchange sends it with.
    let mut e429 = a(429, "binance/error_429.json");
    e429.retry_after = Some("7");
    r.insert("/e-binance-429/api/v3/ticker/bookTicker", e429);
    let mut e418 = a(418, "binance/error_418.json");
    e418.retry_after = Some("120");
    r.insert("/e-binance-418/api/v3/ticker/bookTicker", e418);
    r.insert(
        "/e-binance-symbol/api/v3/ticker/bookTicker",
        a(400, "binance/error_invalid_symbol.json"),
    );
    r.insert(
        "/e-bybit-10006/v5/market/tickers",
        a(200, "bybit/error_10006_rate_limit.json"),
    );
    r.insert(
        "/e-bybit-10001/v5/market/tickers",
        a(200, "bybit/error_10001_not_supported_symbols.json"),
    );
    r.insert(
        "/e-okx-429/api/v5/market/ticker",
        a(429, "okx/error_50011_429.json"),
    );
    r.insert(
        "/e-okx-200/api/v5/market/ticker",
        a(200, "okx/error_50011_legacy_numeric_code.json"),
    );
    r.insert(
        "/e-okx-51001/api/v5/market/ticker",
        a(200, "okx/error_51001_instrument.json"),
    );
    r.insert(
        "/e-coinbase-429/products/BTC-USD/ticker",
        a(429, "coinbase/error_429_private.json"),
    );
    r.insert(
        "/e-coinbase-404/products/BTC-USD/ticker",
        a(404, "coinbase/error_not_found.json"),
    );
    r.insert(
        "/e-kraken-rl/0/public/Ticker",
        a(200, "kraken/error_rate_limit.json"),
    );
    r.insert(
        "/e-kraken-tmr/0/public/Ticker",
        a(200, "kraken/error_too_many_requests.json"),
    );
    r.insert(
        "/e-kraken-pair/0/public/Ticker",
        a(200, "kraken/error_unknown_asset_pair.json"),
    );
    // Served behind a UTF-8 byte order mark (every path under /bom-).
    r.insert("/bom-bybit/v5/market/time", a(200, "bybit/time.json"));
    r.insert(
        "/bom-bybit/v5/market/tickers",
        a(200, "bybit/tickers_spot.json"),
    );
    r.insert(
        "/bom-bybit/v5/market/orderbook",
        a(200, "bybit/orderbook.json"),
    );
    r
}

async fn serve() -> std::net::SocketAddr {
    let routes = Arc::new(routes());
    let app = axum::Router::new().fallback(move |uri: axum::http::Uri| {
        let routes = routes.clone();
        async move {
            let Some(ans) = routes.get(uri.path()) else {
                return (
                    StatusCode::NOT_FOUND,
                    HeaderMap::new(),
                    String::from("no fixture"),
                );
            };
            let mut body =
                std::fs::read_to_string(format!("{FIXTURES}/{}", ans.file)).expect("fixture");
            if uri.path().starts_with("/bom-") {
                body.insert(0, '\u{FEFF}');
            }
            let mut headers = HeaderMap::new();
            headers.insert("content-type", HeaderValue::from_static("application/json"));
            if let Some(r) = ans.retry_after {
                headers.insert("retry-after", HeaderValue::from_static(r));
            }
            (
                StatusCode::from_u16(ans.status).expect("status"),
                headers,
                body,
            )
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    addr
}

fn exchange(name: &str, kind: &str, base: &str, endpoints: &[&str]) -> String {
    let mut t =
        format!("[[exchanges]]\nname = \"{name}\"\nkind = \"{kind}\"\nbase_url = \"{base}\"\n");
    for ep in endpoints {
        t.push_str(&format!(
            "[[exchanges.endpoints]]\nname = \"{ep}\"\nkind = \"{ep}\"\n"
        ));
    }
    t
}

async fn check(text: String) -> (i32, serde_json::Value) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("c.toml");
    // Documented examples carry timestamps from years ago: staleness is not what is tested here.
    std::fs::write(
        &path,
        format!("[validation]\nmax_age = \"100years\"\n{text}"),
    )
    .expect("write");
    let out = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_exwatch"))
            .args(["check", "--json", "-c"])
            .arg(&path)
            .output()
    })
    .await
    .expect("join")
    .expect("run");
    let v = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)));
    (out.status.code().unwrap_or(-1), v)
}

fn row<'a>(v: &'a serde_json::Value, ex: &str, ep: &str) -> &'a serde_json::Value {
    v["endpoints"]
        .as_array()
        .and_then(|a| {
            a.iter()
                .find(|e| e["exchange"] == ex && e["endpoint"] == ep)
        })
        .unwrap_or_else(|| panic!("no row {ex}/{ep} in {v}"))
}

#[tokio::test]
async fn documented_payloads_parse_and_exit_0() {
    let addr = serve().await;
    let mut text = String::new();
    // Each asks for the instrument its documented example is about, since an
    // answer for another one is `wrong_instrument`: Binance's bookTicker
    // example is LTCBTC, OKX's ticker BTC-USD-SWAP, Kraken's XBTUSD (result
    // key XXBTZUSD); Bybit's and Coinbase's are the defaults.
    for (kind, symbol) in [
        ("binance", Some("LTCBTC")),
        ("bybit", None),
        ("okx", Some("BTC-USD-SWAP")),
        ("coinbase", None),
        ("kraken", Some("XBTUSD")),
    ] {
        let mut ex = exchange(
            kind,
            kind,
            &format!("http://{addr}/{kind}"),
            &["time", "ticker", "book"],
        );
        if let Some(symbol) = symbol {
            ex = ex.replacen(
                "\n[[exchanges.endpoints]]",
                &format!("\nsymbol = \"{symbol}\"\n[[exchanges.endpoints]]"),
                1,
            );
        }
        text.push_str(&ex);
    }
    let (code, v) = check(text).await;
    assert_eq!(code, 0, "{v:#}");
    // Binance bookTicker example: LTCBTC bid 4.00000000 ask 4.00000200.
    let t = &row(&v, "binance", "ticker")["normalized"];
    assert_eq!(t["symbol"], "LTCBTC");
    assert_eq!(t["bid"], 4.0);
    assert_eq!(t["ask"], 4.000002);
    // Binance depth: update id, levels, and the original text kept.
    let b = &row(&v, "binance", "book")["normalized"];
    assert_eq!(b["update_id"], 1027024);
    assert_eq!(b["bids"][0]["price"]["text"], "4.00000000");
    assert_eq!(
        row(&v, "binance", "time")["normalized"]["server_ms"],
        1499827319559_i64
    );
    for (ex, ep) in [
        ("bybit", "ticker"),
        ("okx", "ticker"),
        ("coinbase", "ticker"),
        ("kraken", "ticker"),
    ] {
        let n = &row(&v, ex, ep)["normalized"];
        assert!(
            n["symbol"].as_str().is_some_and(|s| !s.is_empty()),
            "{ex} symbol: {n}"
        );
        let priced = n["last"].as_f64().or(n["bid"].as_f64());
        assert!(priced.is_some_and(|p| p > 0.0), "{ex} price: {n}");
    }
    for ex in ["bybit", "okx"] {
        let n = &row(&v, ex, "ticker")["normalized"];
        assert!(
            n["exchange_ts_ms"]
                .as_i64()
                .is_some_and(|t| t > 1_500_000_000_000),
            "{ex} timestamp: {n}"
        );
    }
    for ex in ["bybit", "okx", "coinbase", "kraken"] {
        let n = &row(&v, ex, "book")["normalized"];
        let (bid, ask) = (
            n["bids"][0]["price"]["value"].as_f64(),
            n["asks"][0]["price"]["value"].as_f64(),
        );
        assert!(
            bid.is_some() && ask.is_some() && bid < ask,
            "{ex} book: {n}"
        );
    }
}

#[tokio::test]
async fn documented_error_bodies_are_classified_and_exit_1() {
    let addr = serve().await;
    let cases = [
        ("e-binance-429", "binance", "rate_limited"),
        ("e-binance-418", "binance", "banned"),
        ("e-binance-symbol", "binance", "invalid_symbol"),
        ("e-bybit-10006", "bybit", "rate_limited"),
        ("e-bybit-10001", "bybit", "invalid_symbol"),
        ("e-okx-429", "okx", "rate_limited"),
        ("e-okx-200", "okx", "rate_limited"),
        ("e-okx-51001", "okx", "invalid_symbol"),
        ("e-coinbase-429", "coinbase", "rate_limited"),
        ("e-kraken-rl", "kraken", "rate_limited"),
        ("e-kraken-tmr", "kraken", "rate_limited"),
        ("e-kraken-pair", "kraken", "invalid_symbol"),
    ];
    let mut text = String::new();
    for (name, kind, _) in cases {
        text.push_str(&exchange(
            name,
            kind,
            &format!("http://{addr}/{name}"),
            &["ticker"],
        ));
    }
    let (code, v) = check(text).await;
    assert_eq!(code, 1);
    for (name, _, want) in cases {
        let r = row(&v, name, "ticker");
        assert_eq!(r["verdict"], want, "{name}: {r}");
        assert_eq!(r["healthy"], false);
    }
    // Retry-After and the ban show in the reason.
    assert!(
        row(&v, "e-binance-429", "ticker")["reason"]
            .as_str()
            .is_some_and(|s| s.contains("retry after 7.0s"))
    );
    assert!(
        row(&v, "e-binance-418", "ticker")["reason"]
            .as_str()
            .is_some_and(|s| s.contains("banned"))
    );
}

/// The case through `check`: a documented body for another
/// instrument than the one configured is unhealthy, named, and exits 1.
#[tokio::test]
async fn an_answer_for_another_instrument_fails_check() {
    let addr = serve().await;
    // Binance's bookTicker example is LTCBTC; BTCUSDT is asked for.
    let (code, v) = check(exchange(
        "binance",
        "binance",
        &format!("http://{addr}/binance"),
        &["ticker"],
    ))
    .await;
    assert_eq!(code, 1, "{v:#}");
    let r = row(&v, "binance", "ticker");
    assert_eq!(r["verdict"], "invalid:wrong_instrument", "{r:#}");
    assert_eq!(r["outcome"]["reason"]["expected"], "BTCUSDT", "{r:#}");
    assert_eq!(r["outcome"]["reason"]["got"], "LTCBTC", "{r:#}");
}

/// RFC 8259 lets a parser ignore a leading byte order mark: bodies behind
/// one are healthy, with the same values as without.
#[tokio::test]
async fn bodies_behind_a_byte_order_mark_are_healthy() {
    let addr = serve().await;
    let mut text = exchange(
        "bybit",
        "bybit",
        &format!("http://{addr}/bybit"),
        &["time", "ticker", "book"],
    );
    text.push_str(&exchange(
        "bom",
        "bybit",
        &format!("http://{addr}/bom-bybit"),
        &["time", "ticker", "book"],
    ));
    let (code, v) = check(text).await;
    assert_eq!(code, 0, "{v:#}");
    for ep in ["time", "ticker", "book"] {
        assert_eq!(row(&v, "bom", ep)["verdict"], "ok", "{v:#}");
        assert_eq!(
            row(&v, "bom", ep)["normalized"],
            row(&v, "bybit", ep)["normalized"],
            "{ep}"
        );
    }
}
