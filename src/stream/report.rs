//! What a stream worker tells the rest of exwatch: one [`StreamReport`] per
//! thing that happened on one connection, on a tokio mpsc channel.
//!
//! ```text
//! worker (exchange, connection) ──StreamReport──▶ monitor: liveness, detectors, journal, UI
//! ```
//!
//! Times are unix milliseconds of exwatch's clock (`crate::clock::now_ms`),
//! durations are milliseconds, sizes are bytes. Every report names its
//! exchange and connection (the spec's `name`), so one channel can carry
//! many workers.

use serde::Serialize;

use super::decimal::Dec;
use super::integrity::{Check, Verdict};
use super::message::NoticeKind;
use crate::model::ExchangeKind;

/// One event of one stream connection.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StreamReport {
    pub exchange: ExchangeKind,
    /// The connection's name ([`super::spec::StreamSpec::name`]).
    pub connection: String,
    /// When the worker saw it, unix ms (`clock::now_ms`).
    pub at_ms: i64,
    #[serde(flatten)]
    pub kind: ReportKind,
}

/// A control frame that proves the socket alive and nothing else.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ControlKind {
    /// WebSocket ping frame from the server (Binance every 20 s); the
    /// worker's pong goes out from the read task.
    ServerPing,
    /// WebSocket pong frame.
    PongFrame,
    /// Application pong to the worker's ping (Bybit, OKX, Kraken).
    Pong,
    /// Exchange heartbeat (Coinbase `heartbeat`, Kraken `heartbeat`).
    Heartbeat,
    /// Book keepalive (OKX `seqId == prevSeqId`).
    BookKeepalive,
}

/// Why a book stopped being servable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum InvalidReason {
    /// Sequence ids do not chain: `expected` is the id the rule wanted,
    /// `received` the one that came (Binance `U`, Bybit `u`, OKX `prevSeqId`).
    Gap { expected: i64, received: i64 },
    /// The exchange's checksum disagrees with the book after applying
    /// (Kraken unsigned CRC32, OKX signed).
    Checksum { expected: i64, computed: i64 },
    /// The read task dropped `dropped` frames because processing fell
    /// behind: book updates may be among them.
    Lagged { dropped: u64 },
    /// The connection ended: the next session starts from a new snapshot.
    Disconnected,
}

/// How an invalid book became valid again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ResyncVia {
    /// A stream snapshot (after a reconnect, or the exchange's own).
    StreamSnapshot,
    /// Binance: a REST `/api/v3/depth` snapshot chained to the buffered
    /// diff events.
    RestSnapshot,
}

/// What happened.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "report", rename_all = "snake_case")]
pub enum ReportKind {
    /// A connection attempt starts (`attempt` counts from 1 since the last
    /// healthy session).
    Connecting { attempt: u32, url: String },
    /// The WebSocket handshake completed after `handshake_ms`.
    Connected { attempt: u32, handshake_ms: u64 },
    /// The exchange acked a subscription (channel as data messages carry
    /// it, e.g. `depth`, `orderbook.50`, `books`, `level2_batch`, `book`).
    Subscribed { channel: String, symbol: String },
    /// The exchange refused a subscribe request, in its own words. Channel
    /// and symbol are given where the error names them or the request
    /// carried only that subscription.
    SubscribeRefused {
        channel: Option<String>,
        symbol: Option<String>,
        code: Option<String>,
        message: String,
    },
    /// A market-data message: the only kind that proves a subscription
    /// alive. `bytes` is the frame's size (shared by the messages of one
    /// frame); `bid`/`ask` are the quote's, or the valid book's top.
    Data {
        channel: String,
        symbol: String,
        received_ms: i64,
        event_time_ms: Option<i64>,
        bytes: usize,
        bid: Option<Dec>,
        ask: Option<Dec>,
    },
    /// A control frame (connection alive, never subscription alive).
    Control { control: ControlKind },
    /// A book message's verdict other than a plain `Applied` (snapshots,
    /// resets, stale ids, gaps and checksum mismatches with their figures).
    Book {
        channel: String,
        symbol: String,
        verdict: Verdict,
        /// Whether the book may be served after this message.
        valid: bool,
        check: Check,
    },
    /// The book is invalid from now on and is not served until resynced.
    BookInvalid {
        channel: String,
        symbol: String,
        #[serde(flatten)]
        reason: InvalidReason,
    },
    /// The book is valid again, `invalid_ms` after it became invalid.
    BookResynced {
        channel: String,
        symbol: String,
        via: ResyncVia,
        invalid_ms: i64,
    },
    /// Binance: the REST depth snapshot could not be fetched or did not fit
    /// the buffered events; `attempt` counts from 1 per resync.
    SnapshotFailed {
        symbol: String,
        attempt: u32,
        error: String,
    },
    /// The exchange announced a disconnect (Binance `serverShutdown`, OKX
    /// notice 64008, Kraken `status` maintenance, Coinbase product status)
    /// or the worker's own planned one (Binance 24 h limit): the drop that
    /// follows is expected.
    PlannedDisconnect {
        notice: Option<NoticeKind>,
        code: Option<String>,
        message: String,
    },
    /// A trading-status change that is not a disconnect (Kraken
    /// `cancel_only`/`post_only`/`online`, Coinbase product status).
    Status {
        notice: NoticeKind,
        symbol: Option<String>,
        message: Option<String>,
    },
    /// An error frame that is not a subscribe answer.
    ExchangeError {
        code: Option<String>,
        message: String,
    },
    /// A frame no parser understood (first 80 characters).
    Unparsed { error: String },
    /// The application ping went unanswered for `waited_ms`: the worker
    /// drops the connection.
    PongMissed { waited_ms: u64 },
    /// The read task dropped frames because processing fell behind.
    Lagged { dropped: u64 },
    /// The connection ended (or never opened: `connected_ms` 0). `code` and
    /// `reason` are the close frame's, `error` the transport's; `planned`
    /// when announced beforehand or asked for by the worker itself.
    Disconnected {
        code: Option<u16>,
        reason: String,
        error: Option<String>,
        planned: bool,
        /// How long the session lasted, ms.
        connected_ms: u64,
    },
    /// The next attempt waits `backoff_ms`: the jittered exponential
    /// backoff, or longer when the exchange's connection-rate budget
    /// (`budget_wait_ms` of it) says so.
    ReconnectScheduled {
        attempt: u32,
        backoff_ms: u64,
        budget_wait_ms: u64,
    },
}

impl ReportKind {
    /// Whether this report proves the *socket* delivered a frame.
    pub fn is_frame(&self) -> bool {
        matches!(
            self,
            ReportKind::Data { .. }
                | ReportKind::Control { .. }
                | ReportKind::Subscribed { .. }
                | ReportKind::SubscribeRefused { .. }
                | ReportKind::PlannedDisconnect { .. }
                | ReportKind::Status { .. }
                | ReportKind::ExchangeError { .. }
                | ReportKind::Unparsed { .. }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reports serialise flat, for the journal: `report` names the kind.
    #[test]
    fn reports_serialise_flat() {
        let r = StreamReport {
            exchange: ExchangeKind::Bybit,
            connection: "bybit-spot".into(),
            at_ms: 5,
            kind: ReportKind::BookInvalid {
                channel: "orderbook.50".into(),
                symbol: "BTCUSDT".into(),
                reason: InvalidReason::Gap {
                    expected: 12,
                    received: 14,
                },
            },
        };
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(
            v,
            serde_json::json!({
                "exchange": "bybit", "connection": "bybit-spot", "at_ms": 5,
                "report": "book_invalid", "channel": "orderbook.50", "symbol": "BTCUSDT",
                "reason": "gap", "expected": 12, "received": 14
            })
        );
        let r = StreamReport {
            kind: ReportKind::Control {
                control: ControlKind::Heartbeat,
            },
            ..r
        };
        assert_eq!(
            serde_json::to_value(&r).unwrap()["control"],
            serde_json::json!("heartbeat")
        );
    }
}
