//! The normalised stream message every exchange protocol parses into.
//!
//! A WebSocket text frame from any of the five exchanges becomes zero or more
//! [`StreamMsg`]s. Each data message names its `(channel, symbol)` the way
//! the exchange spells them (`depth@100ms`/`BTCUSDT`, `orderbook.50`/`BTCUSDT`,
//! `books`/`BTC-USDT`, `level2_batch`/`BTC-USD`, `book`/`BTC/USD`), so a worker
//! keys its per-subscription liveness clock on exactly what it subscribed to.
//!
//! Liveness rule (issue #16): only [`StreamMsg::is_data`] messages prove a
//! subscription alive. Pings, pongs, heartbeats, acks, notices and errors
//! never do, even though they prove the *connection* alive.

use serde::{Deserialize, Serialize};

use super::decimal::Dec;

/// One price level: price and the absolute quantity resting there. A
/// quantity of zero in a delta removes the level (all five exchanges).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Level {
    /// Price, in quote currency per unit of base.
    pub price: Dec,
    /// Quantity resting, in base units (contracts for OKX derivatives).
    pub qty: Dec,
}

impl Level {
    /// A level.
    pub fn new(price: Dec, qty: Dec) -> Level {
        Level { price, qty }
    }
}

/// Buy or sell side of a book level or of a trade's taker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    /// Bids; for a trade, the taker bought.
    Buy,
    /// Asks; for a trade, the taker sold.
    Sell,
}

/// Whether a book message replaces the book or changes some levels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BookKind {
    /// The whole book (to the subscribed depth): clear, then load.
    Snapshot,
    /// Absolute quantities for the listed levels; quantity 0 removes.
    Delta,
}

/// The exchange's integrity fields of a book message, as sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "rule", rename_all = "snake_case")]
pub enum BookSeq {
    /// Binance diff depth `depthUpdate`: `U` first and `u` final update id of
    /// the event (binance-spot-api-docs `web-socket-streams.md`, "Diff. Depth
    /// Stream").
    Binance {
        /// `U`: first update id in the event.
        first: u64,
        /// `u`: final update id in the event.
        last: u64,
    },
    /// Binance REST `GET /api/v3/depth` snapshot: `lastUpdateId`
    /// (binance-spot-api-docs `rest-api.md`, "Order book").
    BinanceRest {
        /// `lastUpdateId` of the snapshot.
        last_update_id: u64,
    },
    /// Bybit v5 `orderbook.{depth}.{symbol}`: `u` update id (+1 per message
    /// within a session; `u=1` means the service restarted and the message
    /// overwrites the book) and `seq` cross sequence (bybit-exchange/docs
    /// `docs/v5/websocket/public/orderbook.mdx`).
    Bybit {
        /// `u`.
        update_id: u64,
        /// `seq`.
        seq: u64,
    },
    /// OKX v5 `books`: `seqId`, `prevSeqId` (-1 on a snapshot) and the signed
    /// CRC32 `checksum`, pinned to 0 in production since 2026-06-23 (OKX
    /// help-centre "Order Book Channels Checksum Field Deprecation",
    /// 2026-05-21).
    Okx {
        /// `seqId`.
        seq_id: i64,
        /// `prevSeqId` (-1 on a snapshot).
        prev_seq_id: i64,
        /// `checksum` (0: not provided).
        checksum: i32,
    },
    /// Kraken v2 `book`: unsigned CRC32 of the top 10 levels after applying
    /// the message (docs.kraken.com `guides/websockets/book-checksum-v2`).
    Kraken {
        /// `checksum`.
        checksum: u32,
    },
    /// No integrity field (Coinbase `level2_batch`).
    None,
}

/// A book snapshot or delta for one symbol.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BookMsg {
    /// Channel as the exchange module names it (see its `channel`).
    pub channel: String,
    /// Symbol as the exchange spells it.
    pub symbol: String,
    /// Snapshot or delta.
    pub kind: BookKind,
    /// Bid levels as sent (exchanges send them best first; order does not
    /// matter to the book).
    pub bids: Vec<Level>,
    /// Ask levels as sent.
    pub asks: Vec<Level>,
    /// The exchange's integrity fields.
    pub seq: BookSeq,
    /// Exchange event time, unix ms, where the message carries one.
    pub event_time_ms: Option<i64>,
}

impl BookMsg {
    /// Number of level changes carried (bids + asks).
    pub fn level_count(&self) -> usize {
        self.bids.len() + self.asks.len()
    }
}

/// Best bid/ask and/or last price of one symbol (a ticker or book ticker).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Quote {
    /// Channel as the exchange module names it.
    pub channel: String,
    /// Symbol as the exchange spells it.
    pub symbol: String,
    /// Best bid, where the channel carries it.
    pub bid: Option<Level>,
    /// Best ask, where the channel carries it.
    pub ask: Option<Level>,
    /// Last trade price, where the channel carries it.
    pub last: Option<Dec>,
    /// A per-symbol sequence where the channel has one (Coinbase `ticker`
    /// `sequence`; Binance `bookTicker` `u`; Bybit `cs`).
    pub sequence: Option<u64>,
    /// Last trade id where the ticker carries one (Coinbase `trade_id`).
    pub trade_id: Option<u64>,
    /// Exchange event time, unix ms, where given.
    pub event_time_ms: Option<i64>,
}

/// One public trade (or one aggregated trade print, OKX `trades`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Trade {
    /// Channel as the exchange module names it.
    pub channel: String,
    /// Symbol as the exchange spells it.
    pub symbol: String,
    /// Numeric trade id where the exchange's ids are integers (Binance `t`,
    /// OKX `tradeId`, Coinbase `trade_id`, Kraken `trade_id`). Bybit spot
    /// trade ids are not integers (`i` is a UUID-like string in the docs), so
    /// they are in `trade_ref` instead.
    pub trade_id: Option<u64>,
    /// The trade id as text when it is not an integer (Bybit `i`).
    pub trade_ref: Option<String>,
    /// How many fills this print aggregates (OKX `count`; 1 elsewhere), so
    /// `trade_id - count` is the previous print's id on OKX.
    pub count: u64,
    /// Trade price.
    pub price: Dec,
    /// Trade quantity.
    pub qty: Dec,
    /// Taker side, where given.
    pub side: Option<Side>,
    /// Per-product sequence (Coinbase `matches` `sequence`, Bybit `seq`).
    pub sequence: Option<u64>,
    /// Trade time, unix ms, where given.
    pub event_time_ms: Option<i64>,
}

/// An exchange's control-plane heartbeat. Never data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Heartbeat {
    /// Coinbase heartbeats are per product; Kraken's are per connection.
    pub symbol: Option<String>,
    /// Coinbase `sequence`.
    pub sequence: Option<u64>,
    /// Coinbase `last_trade_id` (reported stuck at 0 for months in
    /// preichenberger/go-coinbasepro#89: do not build a gap check on it alone).
    pub last_trade_id: Option<u64>,
    /// Exchange time, unix ms, where given.
    pub event_time_ms: Option<i64>,
}

/// An answer to a subscribe (or unsubscribe) request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ack {
    /// Whether the exchange accepted it. A rejected subscribe is `false`
    /// here only when the exchange answers in its ack shape (Bybit
    /// `success:false`, Kraken `success:false`); other exchanges send an
    /// [`StreamMsg::Error`].
    pub success: bool,
    /// The channel acknowledged, where the answer names it.
    pub channel: Option<String>,
    /// The symbol acknowledged, where the answer names it.
    pub symbol: Option<String>,
    /// The request id echoed back, as text.
    pub req_id: Option<String>,
    /// Exchange text (Bybit `ret_msg`, Kraken `error`).
    pub message: Option<String>,
    /// An answer to an unsubscribe request (Bybit `op`, OKX `event`, Kraken
    /// `method`). Coinbase answers both with its `subscriptions` list, so
    /// its acks are never marked.
    #[serde(default)]
    pub unsubscribe: bool,
}

/// An error frame: a rejected request or a server-side problem.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StreamError {
    /// The exchange's code as text (`"60012"`, `"2"`), where given.
    pub code: Option<String>,
    /// The exchange's text (Coinbase: `message: reason`).
    pub message: String,
}

/// What a notice announces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NoticeKind {
    /// Binance `serverShutdown`: reconnect now.
    ServerShutdown,
    /// OKX `notice` 64008: the connection closes for an upgrade in ~60 s.
    ServiceUpgrade,
    /// Kraken `status` `maintenance`; Coinbase product `offline`/`delisted`.
    Maintenance,
    /// Trading halted except cancels (Kraken `cancel_only`, Coinbase).
    CancelOnly,
    /// Only post-only orders accepted (Kraken `post_only`, Coinbase).
    PostOnly,
    /// Only limit orders accepted (Coinbase `limit_only`).
    LimitOnly,
    /// Back to normal (Kraken `online`, Coinbase `online`).
    Online,
}

impl NoticeKind {
    /// Whether the exchange is announcing that this connection will end,
    /// so the drop that follows is expected rather than an outage.
    pub fn is_planned_disconnect(self) -> bool {
        matches!(
            self,
            NoticeKind::ServerShutdown | NoticeKind::ServiceUpgrade | NoticeKind::Maintenance
        )
    }
}

/// A planned-disconnect or trading-status announcement.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notice {
    /// What is announced.
    pub kind: NoticeKind,
    /// The product it is about (Coinbase `status` is per product), if any.
    pub symbol: Option<String>,
    /// The exchange's code or status word (`64008`, `maintenance`).
    pub code: Option<String>,
    /// The exchange's text, where given.
    pub message: Option<String>,
    /// Exchange time, unix ms, where given.
    pub event_time_ms: Option<i64>,
}

/// Reference data of one instrument (Kraken v2 `instrument` channel): the
/// precisions the book checksum renders prices and quantities at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Instrument {
    /// Pair, e.g. `BTC/USD`.
    pub symbol: String,
    /// Decimals of prices.
    pub price_precision: u8,
    /// Decimals of quantities.
    pub qty_precision: u8,
}

/// A normalised stream message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum StreamMsg {
    /// DATA: book snapshot or delta.
    Book(BookMsg),
    /// DATA: best bid/ask or ticker.
    Quote(Quote),
    /// DATA: a public trade.
    Trade(Trade),
    /// Control: exchange heartbeat (Coinbase `heartbeat`, Kraken
    /// `heartbeat`).
    Heartbeat(Heartbeat),
    /// Control: answer to the client's application-level ping (Bybit
    /// `ret_msg:"pong"`, OKX text `pong`, Kraken `method:"pong"`).
    Pong,
    /// Control: subscribe/unsubscribe answer.
    Ack(Ack),
    /// Control: error frame.
    Error(StreamError),
    /// Control: planned disconnect or trading-status change.
    Notice(Notice),
    /// Control: instrument reference data (precisions).
    Instrument(Instrument),
}

impl StreamMsg {
    /// Whether this message is market data, the only kind that proves a
    /// subscription alive. Heartbeats, pongs, acks, errors, notices and
    /// reference data are control messages: they prove the connection is up,
    /// never that a subscription still delivers.
    pub fn is_data(&self) -> bool {
        matches!(
            self,
            StreamMsg::Book(_) | StreamMsg::Quote(_) | StreamMsg::Trade(_)
        )
    }

    /// `(channel, symbol)` of a data message, the key of its subscription.
    pub fn subscription(&self) -> Option<(&str, &str)> {
        match self {
            StreamMsg::Book(b) => Some((&b.channel, &b.symbol)),
            StreamMsg::Quote(q) => Some((&q.channel, &q.symbol)),
            StreamMsg::Trade(t) => Some((&t.channel, &t.symbol)),
            _ => None,
        }
    }

    /// Exchange event time in unix ms, where the message carries one.
    pub fn event_time_ms(&self) -> Option<i64> {
        match self {
            StreamMsg::Book(b) => b.event_time_ms,
            StreamMsg::Quote(q) => q.event_time_ms,
            StreamMsg::Trade(t) => t.event_time_ms,
            StreamMsg::Heartbeat(h) => h.event_time_ms,
            StreamMsg::Notice(n) => n.event_time_ms,
            _ => None,
        }
    }

    /// Whether this is a notice of a planned disconnect.
    pub fn is_planned_disconnect(&self) -> bool {
        matches!(self, StreamMsg::Notice(n) if n.kind.is_planned_disconnect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_market_data_counts_as_data() {
        let hb = StreamMsg::Heartbeat(Heartbeat {
            symbol: None,
            sequence: None,
            last_trade_id: None,
            event_time_ms: None,
        });
        assert!(!hb.is_data());
        assert!(!StreamMsg::Pong.is_data());
        let ack = StreamMsg::Ack(Ack {
            success: true,
            channel: Some("book".into()),
            symbol: Some("BTC/USD".into()),
            req_id: None,
            message: None,
            unsubscribe: false,
        });
        assert!(!ack.is_data());
        assert_eq!(ack.subscription(), None);
        let q = StreamMsg::Quote(Quote {
            channel: "bookTicker".into(),
            symbol: "BNBUSDT".into(),
            bid: None,
            ask: None,
            last: None,
            sequence: None,
            trade_id: None,
            event_time_ms: None,
        });
        assert!(q.is_data());
        assert_eq!(q.subscription(), Some(("bookTicker", "BNBUSDT")));
    }
}
