//! The `[[exchanges.streams]]` table: WebSocket connections of one
//! exchange, their per-exchange defaults and what each exchange offers.
//! Checked in `validate.rs` (`validate_streams`), resolved into
//! [`ResolvedStream`]s by [`super::Config::streams`] in `resolve.rs`.
//!
//! Facts (which feeds, book depths and keepalives each exchange has) come
//! from the protocol modules of `crate::stream` and their sources, summed
//! up in `../shared/research/websocket.md` §1–§8.

use crate::exchange;
use crate::model::ExchangeKind;
use crate::stream::spec::{StreamSpec, data_symbol};
use crate::stream::{self, Feed};
use serde::Deserialize;
use std::time::Duration;

/// How long an acked subscription may stay silent before it is a zombie,
/// when `silent_after` is not set: 30 s, as `stream::liveness`'s default
/// (Coinbase clients use 15–30 s).
pub const DEFAULT_SILENT_AFTER: Duration = Duration::from_secs(30);

/// The feeds of a connection that does not list `feeds`.
pub const DEFAULT_FEEDS: [FeedName; 3] = [FeedName::Ticker, FeedName::Trades, FeedName::Book];

/// Shortest `silent_after`: heartbeats and tickers come about once a
/// second, so less would flag healthy subscriptions.
pub const MIN_SILENT_AFTER: Duration = Duration::from_secs(1);

/// Longest `silent_after`.
pub const MAX_SILENT_AFTER: Duration = Duration::from_secs(24 * 3600);

/// How long a socket may deliver no frame at all (data, ping, pong,
/// heartbeat) before it is dead, when `dead_after` is not set: 60 s, as
/// `stream::liveness`'s default (Binance pings every 20 s; Kraken and
/// Coinbase heartbeat each second; exwatch pings Bybit, OKX and Kraken
/// every 20 s).
pub const DEFAULT_DEAD_AFTER: Duration = Duration::from_secs(60);

/// Longest `dead_after`.
pub const MAX_DEAD_AFTER: Duration = Duration::from_secs(3600);

/// Range of `pong_timeout`: 1 s to 5 min (a pong later than that is a dead
/// gateway anyway).
pub const PONG_TIMEOUT_BOUNDS: (Duration, Duration) =
    (Duration::from_secs(1), Duration::from_secs(300));

/// One `[[exchanges.streams]]` table: a WebSocket connection to the
/// exchange it sits under. Every field is optional; see each for its
/// default.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamConfig {
    /// Connection name, unique across the whole config (reports name it).
    /// Default `<exchange name>-ws` for the exchange's first connection,
    /// `-ws2`, `-ws3`... for the next ones ([`default_name`]).
    pub name: Option<String>,
    /// `ws://` or `wss://` URL. Default: the exchange's public endpoint,
    /// `stream::spec::default_url(kind)`.
    pub url: Option<String>,
    /// Instruments, in the exchange's stream spelling (`BTCUSDT`,
    /// `BTC-USDT`, `BTC-USD`, `BTC/USD`; Binance is uppercased). Default:
    /// one, [`default_symbol`] of the kind. Not empty, no duplicates.
    pub symbols: Option<Vec<String>>,
    /// What to subscribe to for each symbol. Default [`DEFAULT_FEEDS`]
    /// (`ticker`, `trades`, `book`). Not empty, no duplicates, only feeds
    /// the exchange has ([`offers`]).
    pub feeds: Option<Vec<FeedName>>,
    /// Levels per side of the `book` feed, one of [`book_depths`] of the
    /// kind (Binance: the REST snapshot's `limit`). Default: the kind's.
    pub book_depth: Option<u32>,
    /// An acked subscription silent this long is a zombie (data messages
    /// only: heartbeats and pongs do not count). Default 30 s; 1 s to 24 h.
    #[serde(default, with = "humantime_serde")]
    pub silent_after: Option<Duration>,
    /// Send the exchange's application ping this often. Default:
    /// `stream::spec::Timing::for_exchange` (20 s on Bybit, OKX, Kraken);
    /// bounds in [`ping_bounds`]. Refused on Binance (the server pings) and
    /// Coinbase (the `heartbeat` channel is the keepalive).
    #[serde(default, with = "humantime_serde")]
    pub ping_every: Option<Duration>,
    /// An application ping unanswered this long drops the connection, which
    /// is then reconnected (journaled, not paged unless it stays down).
    /// Default 10 s ([`PONG_TIMEOUT_BOUNDS`]). Only where the client pings
    /// (Bybit, OKX, Kraken), like `ping_every`.
    #[serde(default, with = "humantime_serde")]
    pub pong_timeout: Option<Duration>,
    /// A connected socket with no frame at all this long is `stream_dead`.
    /// Default [`DEFAULT_DEAD_AFTER`], or twice the keepalive interval
    /// ([`keepalive_every`]) when that is longer (a Bybit `ping_every` of
    /// 5 min); at least twice the keepalive interval, at most
    /// [`MAX_DEAD_AFTER`].
    #[serde(default, with = "humantime_serde")]
    pub dead_after: Option<Duration>,
}

/// A feed name of `feeds`: `ticker`, `trades`, `book`, `heartbeat`,
/// `status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FeedName {
    /// Best bid/ask or ticker.
    Ticker,
    /// Public trades.
    Trades,
    /// Incremental order book, `book_depth` levels per side.
    Book,
    /// Exchange heartbeat channel (Coinbase; subscribed anyway as its
    /// keepalive).
    Heartbeat,
    /// Exchange status channel (Coinbase; Kraken sends it unasked).
    Status,
}

impl FeedName {
    /// Every feed name, in the order messages list them.
    pub const ALL: [FeedName; 5] = [
        FeedName::Ticker,
        FeedName::Trades,
        FeedName::Book,
        FeedName::Heartbeat,
        FeedName::Status,
    ];

    /// The config's spelling, e.g. `trades`.
    pub fn as_str(self) -> &'static str {
        match self {
            FeedName::Ticker => "ticker",
            FeedName::Trades => "trades",
            FeedName::Book => "book",
            FeedName::Heartbeat => "heartbeat",
            FeedName::Status => "status",
        }
    }

    /// The stream library's feed; `depth` is the book's levels per side.
    pub fn feed(self, depth: u16) -> Feed {
        match self {
            FeedName::Ticker => Feed::Ticker,
            FeedName::Trades => Feed::Trades,
            FeedName::Book => Feed::Book { depth },
            FeedName::Heartbeat => Feed::Heartbeat,
            FeedName::Status => Feed::Status,
        }
    }
}

/// Whether `kind`'s protocol has `feed` (its module names a channel for
/// it): ticker, trades and book everywhere; heartbeat and status on
/// Coinbase; status on Kraken. The generic kind has none.
pub fn offers(kind: ExchangeKind, feed: FeedName) -> bool {
    let f = feed.feed(0);
    match kind {
        ExchangeKind::Binance => stream::binance::channel(f).is_some(),
        ExchangeKind::Bybit => stream::bybit::channel(f).is_some(),
        ExchangeKind::Okx => stream::okx::channel(f).is_some(),
        ExchangeKind::Coinbase => stream::coinbase::channel(f).is_some(),
        ExchangeKind::Kraken => stream::kraken::channel(f).is_some(),
        ExchangeKind::Generic => false,
    }
}

/// The default symbol of `kind`'s streams: the REST default of
/// `exchange::spec(kind)` in the stream spelling (`data_symbol`); Kraken's
/// REST `XBTUSDT` is `BTC/USDT` in WebSocket v2.
pub fn default_symbol(kind: ExchangeKind) -> String {
    match kind {
        ExchangeKind::Kraken => "BTC/USDT".to_string(),
        _ => data_symbol(kind, exchange::spec(kind).default_symbol),
    }
}

/// `<exchange>-ws` for an exchange's first connection (`index` 0),
/// `<exchange>-ws2` for the second, and so on.
pub fn default_name(exchange: &str, index: usize) -> String {
    match index {
        0 => format!("{exchange}-ws"),
        i => format!("{exchange}-ws{}", i + 1),
    }
}

/// The book depths one exchange offers, and its default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BookDepths {
    /// Levels per side `book_depth` may be; empty where there is no choice.
    pub allowed: &'static [u16],
    /// Levels per side when `book_depth` is not set (0: the whole book).
    pub default: u16,
}

/// Book depths of `kind` (`stream::<exchange>` module docs;
/// research/websocket.md §1):
///
/// - Binance: the diff stream has no depth; the REST snapshot
///   (`/api/v3/depth`) is asked for `limit` 100, 500, 1000 or 5000
///   levels, the most each weight step buys (5, 25, 50, 250); default
///   1000 (`StreamSpec::new`'s `depth_limit`).
/// - Bybit: `orderbook.{1,50,200,1000}`; default 50.
/// - OKX: `books` is 400 levels (the others need a login); default 400.
/// - Coinbase: `level2_batch` is the whole book: no choice, default 0.
/// - Kraken: 10, 25, 100, 500, 1000 (`stream::kraken::DEPTHS`); default
///   10, Kraken's own.
pub fn book_depths(kind: ExchangeKind) -> BookDepths {
    let (allowed, default): (&'static [u16], u16) = match kind {
        ExchangeKind::Binance => (&[100, 500, 1000, 5000], 1000),
        ExchangeKind::Bybit => (&[1, 50, 200, 1000], 50),
        ExchangeKind::Okx => (&[400], 400),
        ExchangeKind::Coinbase => (&[], 0),
        ExchangeKind::Kraken => (&stream::kraken::DEPTHS, 10),
        ExchangeKind::Generic => (&[], 0),
    };
    BookDepths { allowed, default }
}

/// The range of `ping_every` on `kind`, `None` where the client does not
/// ping (Binance: the server pings every 20 s; Coinbase: the `heartbeat`
/// channel; generic: no protocol). From 1 s (pings count against message
/// rate limits) up to: Bybit 5 min (half its 10 min idle cut), OKX 25 s
/// (it closes after 30 s without data), Kraken 10 min (no cut documented).
pub fn ping_bounds(kind: ExchangeKind) -> Option<(Duration, Duration)> {
    stream::app_ping(kind)?;
    let max = match kind {
        ExchangeKind::Bybit => 300,
        ExchangeKind::Okx => 25,
        _ => 600,
    };
    Some((Duration::from_secs(1), Duration::from_secs(max)))
}

/// How often a healthy connection of `kind` gets a frame even with no data,
/// given its `ping_every`: Binance's server ping every 20 s
/// (`web-socket-streams.md`, "WebSocket Limits"), Coinbase's `heartbeat`
/// and Kraken's `heartbeat` about once a second, the pong of the client's
/// ping on Bybit and OKX. `None` for generic.
pub fn keepalive_every(kind: ExchangeKind, ping_every: Option<Duration>) -> Option<Duration> {
    let ping = || {
        ping_every
            .or(stream::spec::Timing::for_exchange(kind).ping_every)
            .unwrap_or(Duration::from_secs(20))
    };
    Some(match kind {
        ExchangeKind::Binance => Duration::from_secs(20),
        ExchangeKind::Coinbase | ExchangeKind::Kraken => Duration::from_secs(1),
        ExchangeKind::Bybit | ExchangeKind::Okx => ping(),
        ExchangeKind::Generic => return None,
    })
}

/// One connection ready for a stream worker.
#[derive(Debug, Clone, PartialEq)]
pub struct ResolvedStream {
    /// The configured name of the exchange (`[[exchanges]] name`) the
    /// connection belongs to.
    pub exchange: String,
    /// What to connect to and subscribe: name, URL, every feed of every
    /// symbol, timing with the `ping_every` override, Binance's
    /// `depth_limit`.
    pub spec: StreamSpec,
    /// An acked subscription silent this long is a zombie (`silent_after`).
    pub silent_after: Duration,
    /// A socket with no frame this long is dead (`dead_after`).
    pub dead_after: Duration,
}

impl StreamConfig {
    /// The connection name: configured, else [`default_name`].
    pub fn name_or_default(&self, exchange: &str, index: usize) -> String {
        self.name
            .clone()
            .unwrap_or_else(|| default_name(exchange, index))
    }

    /// The resolved connection, defaults applied. `exchange` is the
    /// configured exchange name, `index` this table's position under it.
    pub fn resolve(&self, exchange: &str, kind: ExchangeKind, index: usize) -> ResolvedStream {
        let depth = self
            .book_depth
            .and_then(|d| u16::try_from(d).ok())
            .unwrap_or(book_depths(kind).default);
        let symbols = match &self.symbols {
            Some(s) => s.iter().map(|s| data_symbol(kind, s)).collect(),
            None => vec![default_symbol(kind)],
        };
        let feeds = self.feeds.clone().unwrap_or_else(|| DEFAULT_FEEDS.to_vec());
        let subscriptions = symbols
            .iter()
            .flat_map(|s| {
                feeds
                    .iter()
                    .map(move |f| stream::spec::Subscription::new(f.feed(depth), s.clone()))
            })
            .collect();
        let url = self
            .url
            .clone()
            .unwrap_or_else(|| stream::spec::default_url(kind).to_string());
        let mut spec = StreamSpec::new(kind, self.name_or_default(exchange, index), subscriptions)
            .with_url(url);
        if let Some(d) = self.ping_every {
            spec.timing.ping_every = Some(d);
        }
        if let Some(d) = self.pong_timeout {
            spec.timing.pong_timeout = d;
        }
        if kind == ExchangeKind::Binance {
            spec.depth_limit = depth;
        }
        ResolvedStream {
            exchange: exchange.to_string(),
            spec,
            silent_after: self.silent_after.unwrap_or(DEFAULT_SILENT_AFTER),
            dead_after: self.dead_after.unwrap_or_else(|| {
                let keepalive = keepalive_every(kind, self.ping_every).unwrap_or_default();
                DEFAULT_DEAD_AFTER.max(keepalive * 2)
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_symbols_are_the_rest_defaults_in_stream_spelling() {
        use ExchangeKind::*;
        let got: Vec<String> = [Binance, Bybit, Okx, Coinbase, Kraken]
            .into_iter()
            .map(default_symbol)
            .collect();
        assert_eq!(
            got,
            ["BTCUSDT", "BTCUSDT", "BTC-USDT", "BTC-USD", "BTC/USDT"]
        );
    }

    #[test]
    fn defaults_are_offered() {
        use ExchangeKind::*;
        for kind in [Binance, Bybit, Okx, Coinbase, Kraken] {
            let d = book_depths(kind);
            assert!(
                d.allowed.is_empty() || d.allowed.contains(&d.default),
                "{kind:?}"
            );
            for f in DEFAULT_FEEDS {
                assert!(offers(kind, f), "{kind:?} {f:?}");
            }
        }
        assert!(offers(Coinbase, FeedName::Heartbeat));
        assert!(!offers(Kraken, FeedName::Heartbeat));
        assert!(offers(Kraken, FeedName::Status));
        assert!(!offers(Binance, FeedName::Status));
        assert!(!offers(Generic, FeedName::Ticker));
    }

    #[test]
    fn ping_bounds_follow_who_pings() {
        use ExchangeKind::*;
        assert_eq!(ping_bounds(Binance), None);
        assert_eq!(ping_bounds(Coinbase), None);
        for kind in [Bybit, Okx, Kraken] {
            let (lo, hi) = ping_bounds(kind).expect("client pings");
            let default = stream::spec::Timing::for_exchange(kind)
                .ping_every
                .expect("a default ping");
            assert!(lo <= default && default <= hi, "{kind:?}");
        }
    }

    #[test]
    fn default_names_count_from_the_second() {
        assert_eq!(default_name("kraken", 0), "kraken-ws");
        assert_eq!(default_name("kraken", 1), "kraken-ws2");
        assert_eq!(default_name("kraken", 2), "kraken-ws3");
    }
}
