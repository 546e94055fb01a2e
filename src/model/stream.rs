//! What the rest of exwatch learns about WebSocket market-data streams: the
//! views a stream watcher (`crate::stream::watch`) sends about once a
//! second, and the notes it sends when something happens on a connection.
//!
//! Each watched stream is two kinds of rows beside the REST endpoints of its
//! exchange, both named by an [`EndpointId`]:
//!
//! * the **connection** (`binance-ws`: the config's connection name): is
//!   the socket up, frames of any kind, reconnects, storms, planned
//!   disconnects;
//! * each **subscription** (`ws:book:BTCUSDT`: `ws:<feed>:<symbol>`, a `/` in
//!   the symbol written `-`): data messages only (pings, pongs, heartbeats
//!   and acks never count), lag, the book's verdict.
//!
//! Times are unix ms of exwatch's clock, durations ms.

use serde::{Deserialize, Serialize};

use super::ids::EndpointId;

/// The id of a subscription row: `ws:<feed>:<symbol>` on the exchange's
/// configured name (`/` in the symbol becomes `-`, so ids stay one path
/// segment: Kraken's `BTC/USD` is `ws:book:BTC-USD`).
pub fn subscription_id(exchange: &str, feed: &str, symbol: &str) -> EndpointId {
    EndpointId::new(exchange, format!("ws:{feed}:{}", symbol.replace('/', "-")))
}

/// How a stream row looks now (the liveness verdict, per subscription or
/// per connection).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, strum::IntoStaticStr)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum StreamState {
    /// Connecting, or subscribed and waiting for the ack.
    Pending,
    /// Data (subscription) or frames (connection) within the thresholds.
    Live,
    /// Subscribed, not acked past the ack deadline.
    Unacked,
    /// The exchange refused the subscription.
    Refused,
    /// Acked, socket alive, but no data message past `silent_after`.
    Zombie,
    /// The socket is open but no frame at all arrived past the dead threshold.
    Dead,
    /// The connection is down (reconnecting).
    Down,
}

impl StreamState {
    /// The snake_case name (`live`, `zombie`...).
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// The verdict on a subscription's local order book.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, strum::IntoStaticStr)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum BookState {
    /// Waiting for the snapshot (or, for Binance, buffering until the REST
    /// snapshot bracket).
    Syncing,
    /// Every update checked in sequence (or by checksum) since the snapshot.
    Valid,
    /// A gap, checksum mismatch, lag or disconnect broke it: never served
    /// until a snapshot resyncs it.
    Invalid,
}

impl BookState {
    /// The snake_case name (`valid`, `invalid`, `syncing`).
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// One stream row's figures, sent about once a second by its watcher
/// (journaled like REST samples).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StreamStatus {
    /// The row: a connection or a subscription (see the module doc).
    #[serde(flatten)]
    pub id: EndpointId,
    /// The connection's name (the connection row's own endpoint name).
    pub connection: String,
    /// When it was measured, unix ms.
    pub at_ms: i64,
    /// The liveness verdict.
    pub state: StreamState,
    /// The connection's drop was announced (Binance `serverShutdown` or
    /// 24 h, OKX notice 64008, Kraken `status` maintenance): not an outage.
    #[serde(default)]
    pub expected: bool,
    /// ms since the last data message (subscription) or frame
    /// (connection); while `Down`, ms since the connection went down;
    /// `None` before the first.
    pub age_ms: Option<i64>,
    /// The silence threshold of this row, ms (zombie for a subscription,
    /// dead for a connection).
    pub threshold_ms: i64,
    /// Data messages (subscription) or frames (connection) per second over
    /// the last 10 s.
    pub msgs_per_s: f64,
    /// Data messages (or frames) since start.
    pub messages: u64,
    /// Stream lag, receive time minus the exchange's event time corrected
    /// by the exchange's clock offset, median and 99th percentile over the
    /// last 60 s, ms; `None` when the feed carries no event time.
    pub lag_p50_ms: Option<i64>,
    /// See `lag_p50_ms`.
    pub lag_p99_ms: Option<i64>,
    /// Book gaps and checksum mismatches since start.
    #[serde(default)]
    pub gaps: u64,
    /// Book resyncs since start.
    #[serde(default)]
    pub resyncs: u64,
    /// Connection attempts after the first, since start.
    #[serde(default)]
    pub reconnects: u64,
    /// Connection attempts within the storm window, when above the storm
    /// threshold (connection rows only).
    #[serde(default)]
    pub storm: Option<u32>,
    /// The book's verdict (book subscriptions only).
    #[serde(default)]
    pub book: Option<BookState>,
    /// Best bid and ask of the last ticker or book message, as decimal text.
    #[serde(default)]
    pub bid: Option<String>,
    /// See `bid`.
    #[serde(default)]
    pub ask: Option<String>,
    /// The top of the book is locked or crossed, in words with both prices
    /// (`crossed: best bid 101.5 > best ask 101.0`); `None` otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crossed: Option<String>,
    /// This subscription's verdict is its whole connection's (every
    /// subscription of the connection is a zombie): the connection row
    /// carries the alert, so one silent socket is one page.
    #[serde(default)]
    pub connection_wide: bool,
    /// Why the row is not live, in words (`gap: expected 1042, received
    /// 1045`, the exchange's refusal); empty when live.
    #[serde(default)]
    pub detail: String,
}

/// What happened on a stream connection, as the journal tells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, strum::IntoStaticStr)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum StreamNoteKind {
    /// The socket opened.
    Connected,
    /// The socket closed or failed (detail: code, reason, planned or not).
    Disconnected,
    /// A connection attempt failed or was refused.
    ConnectFailed,
    /// The exchange announced a disconnect.
    PlannedDisconnect,
    /// An exchange status notice (Kraken `status`: maintenance...).
    Notice,
    /// The exchange refused a subscription.
    SubscribeRefused,
    /// A book became invalid (detail: expected vs received ids, or checksums).
    BookInvalid,
    /// A book was resynced from a snapshot (detail: how, and how long it was invalid).
    BookResynced,
    /// A valid book's top became locked or crossed (detail: both prices).
    BookCrossed,
    /// A locked or crossed book is no longer (detail: for how long it was).
    BookUncrossed,
    /// A REST snapshot for a book resync failed.
    SnapshotFailed,
    /// No pong within the deadline: the connection is dropped.
    PongMissed,
    /// The consumer fell behind and messages were dropped.
    Lagged,
    /// A frame that could not be read (a garbage payload).
    Unparsed,
    /// An error message from the exchange.
    ExchangeError,
}

/// One thing that happened on a stream connection (journaled; never one
/// per data message).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StreamNote {
    /// The row it is about: the subscription for book and subscription
    /// notes, else the connection.
    #[serde(flatten)]
    pub id: EndpointId,
    /// The connection's name.
    pub connection: String,
    /// When, unix ms.
    pub at_ms: i64,
    /// What happened.
    pub what: StreamNoteKind,
    /// The figures, in words (`expected 1042, received 1045`).
    pub detail: String,
}

impl StreamNote {
    /// What happened, as its snake_case name (`book_invalid`).
    pub fn what_str(&self) -> &'static str {
        self.what.into()
    }
}
