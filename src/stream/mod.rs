//! Public WebSocket market-data streams (issue #16), read-only and keyless.
//!
//! - The pure part: parsing each exchange's frames into [`StreamMsg`]s
//!   (one file per protocol) and keeping order books under each exchange's
//!   integrity rule ([`integrity`], [`book`], [`checksum`], [`decimal`],
//!   [`continuity`]); liveness per subscription ([`liveness`]); what a
//!   worker does with each frame ([`session`]).
//! - The I/O part: [`worker`] (one task per connection: a dedicated read
//!   task, keepalive, reconnects under [`budget`]), configured by a
//!   [`spec::StreamSpec`], telling the rest of exwatch what happened in
//!   [`report::StreamReport`]s. The simulator serves the five exchanges'
//!   streams (`src/sim/stream/`).
//!
//! Configured by the `[[exchanges.streams]]` table (`config::StreamConfig`;
//! `Config::streams()` gives one [`spec::StreamSpec`] per connection);
//! `monitor::streams` runs a worker and a [`watch::Watcher`] per connection
//! and turns their reports into events for the detectors, the dashboard,
//! the journal and the metrics.
//!
//! ```text
//! text frame ──<exchange>::parse──▶ Vec<StreamMsg> ──is_data()──▶ liveness per (channel, symbol)
//!                                        │
//!                                        └─ Book(BookMsg) ──LocalBook::apply──▶ Verdict
//!                                                                 (Applied, Gap{..}, ChecksumMismatch{..}, ...)
//! ```
//!
//! What the worker does with each frame (sketch; the code is [`session`]):
//!
//! ```text
//! send <exchange>::request(Op::Subscribe, ..); every keepalive interval send app_ping(exchange) if Some
//! for each text frame:
//!     out.clear(); stream::parse_into(exchange, &text, &mut out)   // Err → count + log, keep going
//!     for msg in &out:
//!         if msg.is_data() { liveness[msg.subscription()] = now }   // never for control messages
//!         match msg {
//!             Book(b)   => match books[b.symbol].apply(b) {         // LocalBook::new(default_rule(..))
//!                            v if v.is_failure() => event(v) + resync (Binance: REST depth →
//!                                                   binance::parse_rest_depth → apply; others:
//!                                                   unsubscribe + subscribe that one book),
//!                            SnapshotTooOld{..}  => refetch the REST snapshot, ..}
//!             Notice(n) if n.kind.is_planned_disconnect() => expect the close,
//!             Ack{success: false} | Error(_) => alert, ..
//!         }
//! ```
//!
//! One file per exchange protocol ([`binance`], [`bybit`], [`okx`],
//! [`coinbase`], [`kraken`]), each with `parse`/`parse_into`, the subscribe
//! request, the application-level ping text (`PING`) and the channel naming
//! (`topic`, `channel`). Facts and their sources are in each module's doc
//! and in `../shared/research/websocket.md`.

#![warn(missing_docs)]

pub mod binance;
pub mod book;
pub mod budget;
pub mod bybit;
pub mod checksum;
pub mod coinbase;
pub mod continuity;
pub mod decimal;
pub mod integrity;
pub mod kraken;
pub mod liveness;
pub mod message;
pub mod okx;
pub mod report;
pub mod session;
pub mod spec;
pub mod tally;
pub mod watch;
pub mod wire;
pub mod worker;

use crate::model::ExchangeKind;

pub use book::{Crossing, OrderBook};
pub use continuity::{Continuity, Step};
pub use decimal::{Dec, RawDec};
pub use integrity::{Check, LocalBook, Rule, Verdict};
pub use message::{
    Ack, BookKind, BookMsg, BookSeq, Heartbeat, Instrument, Level, Notice, NoticeKind, Quote, Side,
    StreamError, StreamMsg, Trade,
};
pub use tally::VerdictTally;
pub use wire::ParseError;

/// What a subscription asks for, in exchange-neutral terms. Each protocol
/// module maps it to its own topic name (`topic`) and to the channel its
/// parsed messages carry (`channel`); `None` where the exchange has no such
/// feed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Feed {
    /// Best bid/ask or ticker.
    Ticker,
    /// Public trades.
    Trades,
    /// Incremental order book; `depth` is used where the exchange lets the
    /// client choose it (Bybit 1/50/200/1000, Kraken 10/25/100/500/1000).
    Book {
        /// Levels per side, where the exchange lets the client choose.
        depth: u16,
    },
    /// Exchange heartbeat channel (Coinbase `heartbeat`).
    Heartbeat,
    /// Exchange status channel (Coinbase `status`, Kraken `status`).
    Status,
    /// Instrument reference data (Kraken `instrument`: book precisions).
    Instrument,
}

/// A subscription request's verb; each protocol module's `request` spells
/// it (Binance `SUBSCRIBE`/`UNSUBSCRIBE`, the others lowercase).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// Start the subscriptions (the exchange sends a book snapshot first).
    Subscribe,
    /// Stop them (before subscribing again to get a fresh snapshot).
    Unsubscribe,
}

impl Op {
    /// `subscribe` or `unsubscribe`.
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Subscribe => "subscribe",
            Op::Unsubscribe => "unsubscribe",
        }
    }
}

/// Parse one text frame of `exchange`'s protocol, appending the messages to
/// `out` (reuse the vector in hot loops). `Generic` has no stream protocol.
pub fn parse_into(
    exchange: ExchangeKind,
    text: &str,
    out: &mut Vec<StreamMsg>,
) -> Result<(), ParseError> {
    match exchange {
        ExchangeKind::Binance => binance::parse_into(text, out),
        ExchangeKind::Bybit => bybit::parse_into(text, out),
        ExchangeKind::Okx => okx::parse_into(text, out),
        ExchangeKind::Coinbase => coinbase::parse_into(text, out),
        ExchangeKind::Kraken => kraken::parse_into(text, out),
        ExchangeKind::Generic => Err(ParseError::Unknown(
            "the generic exchange kind has no stream protocol".into(),
        )),
    }
}

/// [`parse_into`] into a new vector.
pub fn parse(exchange: ExchangeKind, text: &str) -> Result<Vec<StreamMsg>, ParseError> {
    let mut out = Vec::with_capacity(1);
    parse_into(exchange, text, &mut out)?;
    Ok(out)
}

/// The application-level ping text a worker must send on `exchange`'s
/// connections, if any (Bybit `{"op":"ping"}` every 20 s, OKX text `ping`
/// when idle under 30 s, Kraken `{"method":"ping"}` optional). Binance's
/// server pings and Coinbase's `heartbeat` channel need none.
pub fn app_ping(exchange: ExchangeKind) -> Option<&'static str> {
    match exchange {
        ExchangeKind::Binance => binance::PING,
        ExchangeKind::Bybit => bybit::PING,
        ExchangeKind::Okx => okx::PING,
        ExchangeKind::Coinbase => coinbase::PING,
        ExchangeKind::Kraken => kraken::PING,
        ExchangeKind::Generic => None,
    }
}

/// The book integrity rule of `exchange` with its defaults (Kraken: depth
/// 10 and the precisions given; see [`Rule`]). `None` for `Generic`.
pub fn default_rule(exchange: ExchangeKind, kraken_precision: (u8, u8)) -> Option<Rule> {
    Some(match exchange {
        ExchangeKind::Binance => Rule::Binance { max_buffer: 1000 },
        ExchangeKind::Bybit => Rule::Bybit,
        ExchangeKind::Okx => Rule::Okx,
        ExchangeKind::Coinbase => Rule::Coinbase,
        ExchangeKind::Kraken => Rule::Kraken {
            depth: 10,
            price_precision: kraken_precision.0,
            qty_precision: kraken_precision.1,
        },
        ExchangeKind::Generic => return None,
    })
}
