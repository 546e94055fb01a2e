//! What one stream worker connects to and how it keeps the connection:
//! [`StreamSpec`] (URL, subscriptions, [`Timing`]) and the per-exchange
//! defaults with their sources.
//!
//! Keepalive and deadline facts (binance-spot-api-docs `web-socket-streams.md`;
//! bybit-exchange/docs `v5/websocket/wss-authentication.mdx`; okx.com/docs-v5
//! "WebSocket"; docs.cdp.coinbase.com `exchange/websocket-feed/channels`;
//! docs.kraken.com `spot-websocket-v2/heartbeat`, `ping`; summarised in
//! `../shared/research/websocket.md` §1, §9):
//!
//! | exchange | who pings | [`Timing::ping_every`] | idle cut by server |
//! |---|---|---|---|
//! | Binance | server ping frame every 20 s, pong within 1 min | none | 1 min without pong; 24 h age |
//! | Bybit | client `{"op":"ping"}` | 20 s | 10 min |
//! | OKX | client text `ping` when idle | 20 s (< 30 s) | 30 s without data (close 4004) |
//! | Coinbase | none: `heartbeat` channel 1/s per product | none | 5 s without a subscribe |
//! | Kraken | client `{"method":"ping"}` optional; `heartbeat` ~1/s | 20 s | none documented |

use std::time::Duration;

use super::Feed;
use crate::model::ExchangeKind;
use crate::retry::RetryPolicy;

/// One subscription: a feed of one symbol, the symbol spelled as the
/// exchange's data messages carry it (`BTCUSDT`, `BTC-USDT`, `BTC-USD`,
/// `BTC/USD`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Subscription {
    /// What to subscribe to.
    pub feed: Feed,
    /// The symbol in the exchange's data spelling.
    pub symbol: String,
}

impl Subscription {
    /// `feed` of `symbol`.
    pub fn new(feed: Feed, symbol: impl Into<String>) -> Subscription {
        Subscription {
            feed,
            symbol: symbol.into(),
        }
    }
}

/// Intervals and deadlines of one connection. Defaults follow each
/// exchange's documentation ([`Timing::for_exchange`]); tests shorten them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Timing {
    /// Send the exchange's application ping this often (`None`: the
    /// exchange has none, or it is not needed). OKX sends it only when
    /// nothing was received for this long.
    pub ping_every: Option<Duration>,
    /// An application ping unanswered this long ends the connection.
    pub pong_timeout: Duration,
    /// TCP + TLS + WebSocket handshake deadline.
    pub connect_timeout: Duration,
    /// Subscribe/ping writes that take longer end the connection.
    pub write_timeout: Duration,
    /// Reconnect proactively (a planned disconnect) at this age: Binance
    /// ends connections at 24 h, so its default is 23 h 55 min.
    pub max_age: Option<Duration>,
    /// After the exchange announced a disconnect, reconnect this long later
    /// if the server has not closed the connection itself.
    pub planned_grace: Duration,
    /// A session that lasted this long resets the reconnect backoff.
    pub healthy_after: Duration,
}

impl Timing {
    /// The documented defaults of `exchange` (see the module table).
    pub fn for_exchange(exchange: ExchangeKind) -> Timing {
        let base = Timing {
            ping_every: None,
            pong_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(10),
            write_timeout: Duration::from_secs(5),
            max_age: None,
            planned_grace: Duration::from_secs(5),
            healthy_after: Duration::from_secs(60),
        };
        match exchange {
            ExchangeKind::Binance => Timing {
                max_age: Some(Duration::from_secs(24 * 3600 - 300)),
                ..base
            },
            ExchangeKind::Bybit | ExchangeKind::Okx | ExchangeKind::Kraken => Timing {
                ping_every: Some(Duration::from_secs(20)),
                ..base
            },
            ExchangeKind::Coinbase | ExchangeKind::Generic => base,
        }
    }
}

/// An exchange's limit on connection attempts per IP: at most `max`
/// attempts in any `window`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectLimit {
    /// Most attempts in any `window`.
    pub max: u32,
    /// The sliding window.
    pub window: Duration,
}

impl ConnectLimit {
    /// Documented limits (research/websocket.md §1): Binance 300 attempts /
    /// 5 min / IP (`web-socket-streams.md`, "WebSocket Limits"); Bybit 500
    /// connections / 5 min / domain (`wss-authentication.mdx`, "IP Limits");
    /// OKX 3 connection requests / s / IP (docs-v5 "WebSocket", "Connect");
    /// Coinbase 8 requests / s / IP (`websocket-feed/rate-limits`); Kraken
    /// about 150 / 10 min / IP (unverified third-party note; Kraken
    /// documents none).
    pub fn for_exchange(exchange: ExchangeKind) -> ConnectLimit {
        let (max, secs) = match exchange {
            ExchangeKind::Binance => (300, 300),
            ExchangeKind::Bybit => (500, 300),
            ExchangeKind::Okx => (3, 1),
            ExchangeKind::Coinbase => (8, 1),
            ExchangeKind::Kraken => (150, 600),
            ExchangeKind::Generic => (60, 60),
        };
        ConnectLimit {
            max,
            window: Duration::from_secs(secs),
        }
    }
}

/// One connection to watch.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamSpec {
    /// The exchange (its protocol).
    pub exchange: ExchangeKind,
    /// Unique among connections (reports name it), e.g. `binance-spot`.
    pub name: String,
    /// The full WebSocket URL ([`default_url`] for the public one; OKX's
    /// port changed, so it comes from config).
    pub url: String,
    /// What to subscribe to on this connection.
    pub subscriptions: Vec<Subscription>,
    /// Keepalive intervals and deadlines.
    pub timing: Timing,
    /// Reconnect backoff: jittered exponential (`src/retry.rs`); a stream
    /// never gives up, so `give_up_after` is ignored.
    pub reconnect: RetryPolicy,
    /// Binance depth snapshots: `limit` asked of REST `/api/v3/depth`
    /// (weight 5 up to 100, 25 up to 500, 50 up to 1000, 250 up to 5000).
    pub depth_limit: u16,
    /// Frames the read task holds for processing before it drops (and
    /// reports) the excess.
    pub queue: usize,
}

impl StreamSpec {
    /// A spec with the exchange's defaults: public URL, documented timing,
    /// backoff 1 s doubling to 60 s with ±20% jitter (cryptofeed starts at
    /// 1 s; nautilus caps at 30 s), depth limit 1000, queue 4096 frames.
    pub fn new(
        exchange: ExchangeKind,
        name: impl Into<String>,
        subscriptions: Vec<Subscription>,
    ) -> StreamSpec {
        StreamSpec {
            exchange,
            name: name.into(),
            url: default_url(exchange).to_string(),
            subscriptions,
            timing: Timing::for_exchange(exchange),
            reconnect: RetryPolicy {
                initial: Duration::from_secs(1),
                max: Duration::from_secs(60),
                give_up_after: Duration::MAX,
                jitter: 0.2,
            },
            depth_limit: 1000,
            queue: 4096,
        }
    }

    /// The same spec on another URL (config, the simulator).
    pub fn with_url(mut self, url: impl Into<String>) -> StreamSpec {
        self.url = url.into();
        self
    }
}

/// The public endpoint of `exchange` (Binance raw-stream path `/ws`, which
/// takes `SUBSCRIBE` requests; OKX on port 443, see [`super::okx::URL`]).
pub fn default_url(exchange: ExchangeKind) -> &'static str {
    match exchange {
        ExchangeKind::Binance => "wss://stream.binance.com:9443/ws",
        ExchangeKind::Bybit => super::bybit::URL,
        ExchangeKind::Okx => super::okx::URL,
        ExchangeKind::Coinbase => super::coinbase::URL,
        ExchangeKind::Kraken => super::kraken::URL,
        ExchangeKind::Generic => "",
    }
}

/// The channel name data messages of `feed` carry on `exchange` (the key
/// of per-subscription liveness), `None` where the exchange has no such
/// feed or it carries no data (heartbeat, status, instrument).
pub fn data_channel(exchange: ExchangeKind, feed: Feed) -> Option<String> {
    if matches!(feed, Feed::Heartbeat | Feed::Status | Feed::Instrument) {
        return None;
    }
    match exchange {
        ExchangeKind::Binance => super::binance::channel(feed).map(str::to_string),
        ExchangeKind::Bybit => super::bybit::channel(feed),
        ExchangeKind::Okx => super::okx::channel(feed).map(str::to_string),
        ExchangeKind::Coinbase => super::coinbase::channel(feed).map(str::to_string),
        ExchangeKind::Kraken => super::kraken::channel(feed).map(str::to_string),
        ExchangeKind::Generic => None,
    }
}

/// The symbol as data messages spell it (Binance uppercases).
pub fn data_symbol(exchange: ExchangeKind, symbol: &str) -> String {
    match exchange {
        ExchangeKind::Binance => symbol.to_ascii_uppercase(),
        _ => symbol.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channels_are_what_the_parsers_emit() {
        use ExchangeKind::*;
        let book = Feed::Book { depth: 50 };
        assert_eq!(data_channel(Binance, book).as_deref(), Some("depth"));
        assert_eq!(data_channel(Bybit, book).as_deref(), Some("orderbook.50"));
        assert_eq!(data_channel(Okx, Feed::Trades).as_deref(), Some("trades"));
        assert_eq!(
            data_channel(Coinbase, book).as_deref(),
            Some("level2_batch")
        );
        assert_eq!(data_channel(Coinbase, Feed::Heartbeat), None);
        assert_eq!(
            data_channel(Kraken, Feed::Ticker).as_deref(),
            Some("ticker")
        );
        assert_eq!(data_symbol(Binance, "btcusdt"), "BTCUSDT");
    }
}
