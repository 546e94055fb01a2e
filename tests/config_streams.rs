//! The `[[exchanges.streams]]` table: defaults resolve to each exchange's
//! stream spec; every bad value is one error naming its line and field.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed unwrap is a failed test

use exwatch::config::{self, Config, ConfigError};
use exwatch::model::ExchangeKind;
use exwatch::stream::Feed;
use exwatch::stream::spec::{Subscription, Timing};
use std::time::Duration;

fn parse(text: &str) -> Config {
    config::parse("cfg.toml", text).unwrap_or_else(|e| panic!("expected valid:\n{e}\n{text}"))
}

fn errors(text: &str) -> Vec<ConfigError> {
    match config::parse("cfg.toml", text) {
        Ok(_) => panic!("expected an error for:\n{text}"),
        Err(e) => e.0,
    }
}

/// An exchange of `kind` named after it, with one streams table holding
/// `body`: only streams, no endpoints.
fn one_stream(kind: &str, body: &str) -> String {
    format!("[[exchanges]]\nname = \"{kind}\"\nkind = \"{kind}\"\n\n[[exchanges.streams]]\n{body}")
}

/// `text` gives exactly one error, on `line`, naming `field`; returns it.
fn the_error(text: &str, line: usize, field: &str) -> ConfigError {
    let errs = errors(text);
    assert_eq!(errs.len(), 1, "{errs:#?}\n{text}");
    let e = errs.into_iter().next().unwrap();
    assert_eq!((e.line, e.field.as_str()), (line, field), "{e}\n{text}");
    assert!(e.column >= 1, "{e}");
    assert!(
        e.to_string().starts_with(&format!("cfg.toml:{line}:")),
        "{e}"
    );
    e
}

fn subs(feeds: &[Feed], symbol: &str) -> Vec<Subscription> {
    feeds
        .iter()
        .map(|f| Subscription::new(*f, symbol))
        .collect()
}

#[test]
fn defaults_resolve_to_each_exchanges_stream_spec() {
    use ExchangeKind::*;
    let cases = [
        (Binance, "wss://stream.binance.com:9443/ws", "BTCUSDT", 1000),
        (
            Bybit,
            "wss://stream.bybit.com/v5/public/spot",
            "BTCUSDT",
            50,
        ),
        (Okx, "wss://ws.okx.com/ws/v5/public", "BTC-USDT", 400),
        (
            Coinbase,
            "wss://ws-feed.exchange.coinbase.com",
            "BTC-USD",
            0,
        ),
        (Kraken, "wss://ws.kraken.com/v2", "BTC/USDT", 10),
    ];
    for (kind, url, symbol, depth) in cases {
        let k = kind.as_str();
        let cfg = parse(&one_stream(k, ""));
        let streams = cfg.streams();
        assert_eq!(streams.len(), 1, "{k}");
        let r = &streams[0];
        assert_eq!(r.exchange, k);
        assert_eq!(r.silent_after, Duration::from_secs(30), "{k}");
        let s = &r.spec;
        assert_eq!(s.exchange, kind);
        assert_eq!(s.name, format!("{k}-ws"));
        assert_eq!(s.url, url, "{k}");
        assert_eq!(
            s.subscriptions,
            subs(&[Feed::Ticker, Feed::Trades, Feed::Book { depth }], symbol),
            "{k}"
        );
        assert_eq!(s.timing, Timing::for_exchange(kind), "{k}");
        assert_eq!(s.depth_limit, 1000, "{k}");
        assert!(cfg.endpoints().is_empty(), "{k}");
    }
}

#[test]
fn configured_values_resolve_into_the_spec() {
    let text = r#"
[[exchanges]]
name = "bn"
kind = "binance"

[[exchanges.streams]]
name = "binance-md"
url = "ws://127.0.0.1:9000/binance/ws"
symbols = ["btcusdt", "ETHUSDT"]
feeds = ["book", "trades"]
book_depth = 5000
silent_after = "1m 30s"

[[exchanges.streams]]
symbols = ["BNBUSDT"]

[[exchanges]]
name = "by"
kind = "bybit"

[[exchanges.endpoints]]
name = "time"
kind = "time"

[[exchanges.streams]]
ping_every = "15s"
pong_timeout = "4s"
dead_after = "45s"
book_depth = 200
"#;
    let cfg = parse(text);
    assert_eq!(cfg.endpoints().len(), 1);
    let s = cfg.streams();
    let names: Vec<(&str, &str)> = s
        .iter()
        .map(|r| (r.exchange.as_str(), r.spec.name.as_str()))
        .collect();
    assert_eq!(
        names,
        [("bn", "binance-md"), ("bn", "bn-ws2"), ("by", "by-ws")]
    );
    let md = &s[0];
    assert_eq!(md.spec.url, "ws://127.0.0.1:9000/binance/ws");
    assert_eq!(md.silent_after, Duration::from_secs(90));
    assert_eq!(md.spec.depth_limit, 5000);
    let book = Feed::Book { depth: 5000 };
    let mut want = subs(&[book, Feed::Trades], "BTCUSDT");
    want.extend(subs(&[book, Feed::Trades], "ETHUSDT"));
    assert_eq!(md.spec.subscriptions, want);
    assert_eq!(md.spec.timing.ping_every, None);
    assert_eq!(md.dead_after, Duration::from_secs(60));
    // A long ping: the default dead threshold follows it.
    let slow = parse(&one_stream("bybit", "ping_every = \"5m\"\n"));
    assert_eq!(slow.streams()[0].dead_after, Duration::from_secs(600));
    assert_eq!(md.spec.timing.pong_timeout, Duration::from_secs(10));
    assert_eq!(s[2].dead_after, Duration::from_secs(45));
    let by = &s[2].spec;
    assert_eq!(by.timing.ping_every, Some(Duration::from_secs(15)));
    assert_eq!(by.timing.pong_timeout, Duration::from_secs(4));
    assert_eq!(
        by.subscriptions,
        subs(
            &[Feed::Ticker, Feed::Trades, Feed::Book { depth: 200 }],
            "BTCUSDT"
        )
    );
}

#[test]
fn an_exchange_with_only_streams_is_accepted_and_one_with_neither_is_not() {
    let cfg = parse(&one_stream("kraken", "symbols = [\"BTC/USD\"]\n"));
    assert!(cfg.exchanges[0].endpoints.is_empty());
    assert_eq!(cfg.streams().len(), 1);
    let e = the_error(
        "[[exchanges]]\nname = \"kraken\"\nkind = \"kraken\"\n",
        1,
        "exchanges[0].endpoints",
    );
    assert!(e.message.contains("[[exchanges.streams]]"), "{e}");
}

#[test]
fn coinbase_heartbeat_and_status_and_kraken_status_are_feeds() {
    parse(&one_stream(
        "coinbase",
        "feeds = [\"heartbeat\", \"status\", \"ticker\"]\n",
    ));
    parse(&one_stream("kraken", "feeds = [\"status\", \"book\"]\n"));
}

/// Every bad value: (text, line, field, words the message must contain).
#[test]
fn every_bad_value_is_one_error_naming_its_line_and_field() {
    let generic = "[[exchanges]]\nname = \"g\"\nkind = \"generic\"\n\
                   base_url = \"http://127.0.0.1:9\"\nsymbol = \"X\"\n\
                   [exchanges.generic]\nprice = \"/p\"\n\
                   [[exchanges.endpoints]]\nname = \"t\"\nkind = \"ticker\"\npath = \"/t\"\n\
                   [[exchanges.streams]]\nname = \"g-ws\"\n";
    let two_names = "[[exchanges]]\nname = \"a\"\nkind = \"okx\"\n\
                     [[exchanges.streams]]\nname = \"md\"\n\
                     [[exchanges]]\nname = \"b\"\nkind = \"bybit\"\n\
                     [[exchanges.streams]]\n\
                     [[exchanges.streams]]\nname = \"md\"\nsymbols = [\"ETHUSDT\"]\n";
    let default_clash = "[[exchanges]]\nname = \"a\"\nkind = \"okx\"\n\
                         [[exchanges.streams]]\n\
                         [[exchanges.streams]]\nname = \"a-ws\"\nsymbols = [\"ETH-USDT\"]\n";
    let same_sub = "[[exchanges]]\nname = \"b\"\nkind = \"bybit\"\n\
                    [[exchanges.streams]]\nfeeds = [\"book\"]\n\
                    [[exchanges.streams]]\nfeeds = [\"book\", \"ticker\"]\nsymbols = [\"BTCUSDT\"]\n";
    let endpoint_clash = "[[exchanges]]\nname = \"c\"\nkind = \"okx\"\n\
                          [[exchanges.endpoints]]\nname = \"ticker\"\nkind = \"ticker\"\n\
                          [[exchanges.streams]]\nname = \"ticker\"\n";
    let cases: Vec<(String, usize, &str, &[&str])> = vec![
        (
            one_stream("binance", "feeds = [\"book\", \"nope\"]\n"),
            6,
            "exchanges[0].streams[0].feeds",
            &["nope", "ticker"],
        ),
        (
            one_stream("binance", "feeds = [\"book\", \"status\"]\n"),
            6,
            "exchanges[0].streams[0].feeds[1]",
            &["Binance has no status feed", "ticker, trades, book"],
        ),
        (
            one_stream("okx", "feeds = [\"book\", \"trades\", \"book\"]\n"),
            6,
            "exchanges[0].streams[0].feeds[2]",
            &["duplicate feed", "feeds[0]"],
        ),
        (
            one_stream("okx", "feeds = []\n"),
            6,
            "exchanges[0].streams[0].feeds",
            &["at least one"],
        ),
        (
            one_stream("bybit", "book_depth = 25\n"),
            6,
            "exchanges[0].streams[0].book_depth",
            &["Bybit offers book depths 1, 50, 200, 1000, not 25"],
        ),
        (
            one_stream("kraken", "book_depth = 50\n"),
            6,
            "exchanges[0].streams[0].book_depth",
            &["10, 25, 100, 500, 1000"],
        ),
        (
            one_stream("coinbase", "book_depth = 50\n"),
            6,
            "exchanges[0].streams[0].book_depth",
            &["whole book"],
        ),
        (
            one_stream("bybit", "feeds = [\"ticker\"]\nbook_depth = 50\n"),
            7,
            "exchanges[0].streams[0].book_depth",
            &["`book` feed"],
        ),
        (
            one_stream("okx", "url = \"https://ws.okx.com/ws/v5/public\"\n"),
            6,
            "exchanges[0].streams[0].url",
            &["ws://", "wss://"],
        ),
        (
            one_stream("okx", "url = \"not a url\"\n"),
            6,
            "exchanges[0].streams[0].url",
            &["not a valid URL"],
        ),
        (
            one_stream(
                "binance",
                "symbols = [\"BTCUSDT\", \"ETHUSDT\", \"btcusdt\"]\n",
            ),
            6,
            "exchanges[0].streams[0].symbols[2]",
            &["duplicate symbol", "symbols[0]"],
        ),
        (
            one_stream("binance", "symbols = []\n"),
            6,
            "exchanges[0].streams[0].symbols",
            &["at least one", "BTCUSDT"],
        ),
        (
            one_stream("binance", "name = \"md\"\nping_every = \"10s\"\n"),
            7,
            "exchanges[0].streams[0].ping_every",
            &["Binance has no client ping", "server pings"],
        ),
        (
            one_stream("coinbase", "ping_every = \"10s\"\n"),
            6,
            "exchanges[0].streams[0].ping_every",
            &["heartbeat"],
        ),
        (
            one_stream("okx", "ping_every = \"40s\"\n"),
            6,
            "exchanges[0].streams[0].ping_every",
            &["must be between 1s and 25s, not 40s"],
        ),
        (
            one_stream("coinbase", "pong_timeout = \"5s\"\n"),
            6,
            "exchanges[0].streams[0].pong_timeout",
            &["heartbeat", "remove pong_timeout"],
        ),
        (
            one_stream("bybit", "pong_timeout = \"10m\"\n"),
            6,
            "exchanges[0].streams[0].pong_timeout",
            &["must be between 1s and 5m, not 10m"],
        ),
        (
            one_stream("binance", "dead_after = \"30s\"\n"),
            6,
            "exchanges[0].streams[0].dead_after",
            &["twice the keepalive interval", "40s or more, not 30s"],
        ),
        (
            one_stream("okx", "ping_every = \"25s\"\ndead_after = \"45s\"\n"),
            7,
            "exchanges[0].streams[0].dead_after",
            &["50s or more, not 45s"],
        ),
        (
            one_stream("kraken", "dead_after = \"2h\"\n"),
            6,
            "exchanges[0].streams[0].dead_after",
            &["must be between 2s and 1h, not 2h"],
        ),
        (
            one_stream("kraken", "silent_after = \"0s\"\n"),
            6,
            "exchanges[0].streams[0].silent_after",
            &["must be between 1s and 1day, not 0s"],
        ),
        (
            one_stream("kraken", "silent_after = \"soon\"\n"),
            6,
            "exchanges[0].streams[0].silent_after",
            &[],
        ),
        (
            one_stream("kraken", "name = \"md\"\nsilent_afterr = \"5s\"\n"),
            7,
            "exchanges[0].streams[0].silent_afterr",
            &["unknown key", "silent_afterr"],
        ),
        (
            one_stream("kraken", "name = \"m d\"\n"),
            6,
            "exchanges[0].streams[0].name",
            &["letters, digits"],
        ),
        (
            generic.to_string(),
            12,
            "exchanges[0].streams",
            &["generic", "no stream protocol"],
        ),
        (
            two_names.to_string(),
            11,
            "exchanges[1].streams[1].name",
            &[
                "duplicate connection name \"md\"",
                "exchanges[0].streams[0]",
            ],
        ),
        (
            default_clash.to_string(),
            6,
            "exchanges[0].streams[1].name",
            &["duplicate connection name \"a-ws\""],
        ),
        (
            same_sub.to_string(),
            8,
            "exchanges[0].streams[1].symbols",
            &["ws:book:BTCUSDT is also subscribed by exchanges[0].streams[0]"],
        ),
        (
            endpoint_clash.to_string(),
            8,
            "exchanges[0].streams[0].name",
            &["also an endpoint"],
        ),
    ];
    for (text, line, field, words) in cases {
        let e = the_error(&text, line, field);
        for w in words {
            assert!(e.message.contains(w), "{w:?} not in {e}\n{text}");
        }
    }
}

/// A bad name in a list of feeds is one error on the list, not also a
/// spurious type error from the repair that got past it; the rest of the
/// config is still checked.
#[test]
fn a_bad_feed_name_is_one_error_and_the_rest_is_still_checked() {
    let text = one_stream(
        "bybit",
        "feeds = [\n  \"nope\",\n  \"book\",\n]\nbook_depth = 25\n",
    );
    let errs = errors(&text);
    let got: Vec<(usize, &str)> = errs.iter().map(|e| (e.line, e.field.as_str())).collect();
    assert_eq!(
        got,
        [
            (7, "exchanges[0].streams[0].feeds"),
            (10, "exchanges[0].streams[0].book_depth"),
        ],
        "{errs:#?}"
    );
    // The bad entry's own line and column.
    assert_eq!(errs[0].column, 3, "{}", errs[0]);
    assert!(errs[0].message.contains("`nope`"), "{}", errs[0]);
}
