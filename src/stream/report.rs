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
    /// The exchange the connection is to.
    pub exchange: ExchangeKind,
    /// The connection's name ([`super::spec::StreamSpec::name`]).
    pub connection: String,
    /// When the worker saw it, unix ms (`clock::now_ms`).
    pub at_ms: i64,
    #[serde(flatten)]
    /// What happened.
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
    Gap {
        /// What the rule wanted (the next id, or the exchange's checksum).
        expected: i64,
        /// The id that came.
        received: i64,
    },
    /// The exchange's checksum disagrees with the book after applying
    /// (Kraken unsigned CRC32, OKX signed).
    Checksum {
        /// What the rule wanted (the next id, or the exchange's checksum).
        expected: i64,
        /// The checksum of exwatch's book.
        computed: i64,
    },
    /// The read task dropped `dropped` frames because processing fell
    /// behind: book updates may be among them.
    Lagged {
        /// Frames dropped.
        dropped: u64,
    },
    /// The connection ended: the next session starts from a new snapshot.
    Disconnected,
}

/// How an invalid book became valid again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ResyncVia {
    /// A stream snapshot (after a reconnect, or one the exchange sent on
    /// its own).
    StreamSnapshot,
    /// Binance: a REST `/api/v3/depth` snapshot chained to the buffered
    /// diff events.
    RestSnapshot,
    /// The snapshot sent when exwatch unsubscribed and subscribed the book
    /// again on the same connection (Bybit, OKX, Coinbase, Kraken).
    Resubscribe,
}

/// What happened.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "report", rename_all = "snake_case")]
pub enum ReportKind {
    /// A connection attempt starts (`attempt` counts from 1 since the last
    /// healthy session).
    Connecting {
        /// Attempt number, from 1.
        attempt: u32,
        /// The URL connected to.
        url: String,
    },
    /// The WebSocket handshake completed after `handshake_ms`.
    Connected {
        /// Attempt number, from 1.
        attempt: u32,
        /// TCP + TLS + WebSocket handshake time, ms.
        handshake_ms: u64,
    },
    /// The exchange acked a subscription (channel as data messages carry
    /// it, e.g. `depth`, `orderbook.50`, `books`, `level2_batch`, `book`).
    Subscribed {
        /// The channel as data messages name it.
        channel: String,
        /// The symbol as data messages spell it.
        symbol: String,
    },
    /// The exchange refused a subscribe request, in its own words. Channel
    /// and symbol are given where the error names them or the request
    /// carried only that subscription.
    SubscribeRefused {
        /// The channel, where known.
        channel: Option<String>,
        /// The symbol, where known.
        symbol: Option<String>,
        /// The exchange's error code, if it gave one.
        code: Option<String>,
        /// The exchange's error text.
        message: String,
    },
    /// A market-data message: the only kind that proves a subscription
    /// alive. `bytes` is the frame's size (shared by the messages of one
    /// frame); `bid`/`ask` are the quote's, or the valid book's top.
    Data {
        /// The channel as data messages name it.
        channel: String,
        /// The symbol as data messages spell it.
        symbol: String,
        /// When the frame arrived, unix ms.
        received_ms: i64,
        /// The exchange's event time, unix ms, where the message carries one.
        event_time_ms: Option<i64>,
        /// Size of the frame, bytes.
        bytes: usize,
        /// Best bid of the quote or of the valid book.
        bid: Option<Dec>,
        /// Best ask of the quote or of the valid book.
        ask: Option<Dec>,
    },
    /// A control frame (connection alive, never subscription alive).
    Control {
        /// Which control frame.
        control: ControlKind,
    },
    /// A book message's verdict other than a plain `Applied` (snapshots,
    /// resets, stale ids, gaps and checksum mismatches with their figures).
    Book {
        /// The book's channel.
        channel: String,
        /// The book's symbol.
        symbol: String,
        /// The integrity rule's verdict on this message.
        verdict: Verdict,
        /// Whether the book may be served after this message.
        valid: bool,
        /// What was checked (sequence, checksum, nothing).
        check: Check,
    },
    /// The book is invalid from now on and is not served until resynced.
    BookInvalid {
        /// The book's channel.
        channel: String,
        /// The book's symbol.
        symbol: String,
        #[serde(flatten)]
        /// Why (gap, checksum, lag, disconnect).
        reason: InvalidReason,
    },
    /// The top of a valid book became locked or crossed (`crossing` in
    /// words with both prices), or stopped being (`None`). Sent on change,
    /// not per message. The book stays valid: the exchange's own data may
    /// be crossed (knowm/XChange PR #4239 saw crossed Kraken books that
    /// passed the checksum), and no snapshot would fix it.
    BookCrossed {
        /// The book's channel.
        channel: String,
        /// The book's symbol.
        symbol: String,
        /// `crossed: best bid 101.5 > best ask 101.0`, or `None` once
        /// uncrossed.
        crossing: Option<String>,
    },
    /// The book is valid again, `invalid_ms` after it became invalid.
    BookResynced {
        /// The book's channel.
        channel: String,
        /// The book's symbol.
        symbol: String,
        /// How it was resynced.
        via: ResyncVia,
        /// How long it was invalid, ms.
        invalid_ms: i64,
    },
    /// Binance: the REST depth snapshot could not be fetched or did not fit
    /// the buffered events; `attempt` counts from 1 per resync.
    SnapshotFailed {
        /// The book's symbol.
        symbol: String,
        /// Attempt number of this resync, from 1.
        attempt: u32,
        /// What went wrong.
        error: String,
    },
    /// The exchange announced a disconnect (Binance `serverShutdown`, OKX
    /// notice 64008, Kraken `status` maintenance, Coinbase product status)
    /// or the worker's own planned one (Binance 24 h limit): the drop that
    /// follows is expected.
    PlannedDisconnect {
        /// The exchange's notice, or `None` for the worker's own (24 h limit).
        notice: Option<NoticeKind>,
        /// The exchange's code (OKX `64008`).
        code: Option<String>,
        /// The notice's text.
        message: String,
    },
    /// A trading-status change that is not a disconnect (Kraken
    /// `cancel_only`/`post_only`/`online`, Coinbase product status).
    Status {
        /// The new status.
        notice: NoticeKind,
        /// The symbol it applies to, or `None` for the whole exchange.
        symbol: Option<String>,
        /// The exchange's text.
        message: Option<String>,
    },
    /// An error frame that is not a subscribe answer.
    ExchangeError {
        /// The exchange's error code, if any.
        code: Option<String>,
        /// The exchange's error text.
        message: String,
    },
    /// A frame no parser understood (first 80 characters).
    Unparsed {
        /// What was wrong (first 80 characters).
        error: String,
    },
    /// The application ping went unanswered for `waited_ms`: the worker
    /// drops the connection.
    PongMissed {
        /// ms waited so far.
        waited_ms: u64,
    },
    /// The read task dropped frames because processing fell behind.
    Lagged {
        /// Frames dropped.
        dropped: u64,
    },
    /// The connection ended (or never opened: `connected_ms` 0). `code` and
    /// `reason` are the close frame's, `error` the transport's; `planned`
    /// when announced beforehand or asked for by the worker itself.
    Disconnected {
        /// The close frame's code (1000, 1001, OKX 4004...).
        code: Option<u16>,
        /// The close frame's reason.
        reason: String,
        /// The transport's error, if it ended on one.
        error: Option<String>,
        /// Whether the drop was announced or asked for by the worker.
        planned: bool,
        /// How long the session lasted, ms.
        connected_ms: u64,
    },
    /// The next attempt waits `backoff_ms`: the jittered exponential
    /// backoff, or longer when the exchange's connection-rate budget
    /// (`budget_wait_ms` of it) says so.
    ReconnectScheduled {
        /// The attempt that comes next.
        attempt: u32,
        /// Wait before it, ms.
        backoff_ms: u64,
        /// The part of the wait the connection budget imposed, ms.
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
