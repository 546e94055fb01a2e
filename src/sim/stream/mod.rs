//! The simulator's WebSocket streams: one listener on loopback speaking the
//! five exchanges' public stream protocols by path (`ws://ADDR/binance/ws`,
//! `/bybit/ws`, `/okx/ws`, `/coinbase/ws`, `/kraken/ws`): subscribe acks and
//! refusals, book snapshots and deltas with correct sequence ids (Kraken
//! with correct CRC32 from `crate::stream::checksum`), tickers, trades,
//! heartbeats, server pings (Binance) and pongs, and the stream faults of
//! the scenario ([`StreamFaultKind`]).
//!
//! Built on tokio-tungstenite's server side, the same crate version as the
//! workers' client (axum's `ws` feature would pull a second tungstenite).

pub mod book;
mod conn;
pub mod frames;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::model::ExchangeKind;
use crate::stream::{BookKind, BookMsg, BookSeq, Level};
use book::SimBook;

/// A stream fault the simulator can inject. Snake-case names are the
/// scenario's `fault` values under `[[stream.fault]]`.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    strum::Display,
    strum::VariantArray,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum StreamFaultKind {
    /// Nothing of the server's own: no data, no heartbeats, no server
    /// pings; the socket stays open and application pings are still
    /// answered (Bybit, OKX, Kraken see pongs only; Binance and Coinbase
    /// see nothing).
    Stall,
    /// Data stops; heartbeats, server pings and pongs go on (the zombie).
    HeartbeatsOnly,
    /// Application pings go unanswered (Bybit, OKX, Kraken).
    NoPong,
    /// One book update is dropped, ids advancing as if it was sent
    /// (Binance `U`, Bybit `u`, OKX `prevSeqId`; Kraken's next checksum
    /// fails; Coinbase cannot tell). Once per window per exchange.
    Gap,
    /// A book update with a wrong checksum (Kraken; OKX non-zero). Once
    /// per window per exchange.
    ChecksumMismatch,
    /// The previous book update is sent again. Once per window per exchange.
    Duplicate,
    /// Two book updates swapped. Once per window per exchange.
    OutOfOrder,
    /// The exchange's planned-disconnect notice (Binance `serverShutdown`,
    /// OKX 64008, Kraken `status` maintenance, Coinbase product `offline`),
    /// then a close after `notice_lead`. Once per window per exchange.
    PlannedDisconnect,
    /// A close frame 1001 "going away" (OKX 4004). Once per window per exchange.
    ServerClose,
    /// Open connections are closed (1012) and new handshakes are refused
    /// with HTTP 429 for the window.
    RefuseConnections,
    /// Bursts of `flood` book updates per data tick, for a consumer that
    /// cannot keep up.
    SlowConsumer,
    /// The exchange's streamed prices (books and tickers) are `bps` basis
    /// points (default 100) off the market its REST endpoints and the
    /// other exchanges quote: a feed that lies without breaking sequence.
    PriceOffset,
    /// A bid one tick above the best ask is added to the book (the worst
    /// bid dropped to stay within the depth) and kept there for the window,
    /// in sequence and, for Kraken, with the right checksum: a crossed book
    /// that passes every integrity check (knowm/XChange PR #4239). It is
    /// deleted when the window ends.
    CrossedBook,
}

/// One stream fault of a scenario.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamFault {
    #[serde(with = "humantime_serde")]
    pub at: Duration,
    #[serde(rename = "for", with = "humantime_serde")]
    pub duration: Duration,
    pub fault: StreamFaultKind,
    /// Every exchange when absent.
    pub exchange: Option<ExchangeKind>,
    /// `price_offset`: how far off, in basis points (negative: below);
    /// 100 when absent.
    #[serde(default)]
    pub bps: Option<f64>,
}

/// The `[stream]` table of a scenario: intervals of the simulated streams
/// and their faults. Defaults are the exchanges' (Binance pings every 20 s
/// and wants a pong within 60 s; Coinbase and Kraken heartbeat each
/// second); tests shorten them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StreamScenario {
    /// One book update (and ticker/trade) per subscription this often.
    #[serde(with = "humantime_serde")]
    pub data_every: Duration,
    #[serde(with = "humantime_serde")]
    pub heartbeat_every: Duration,
    /// Binance server ping frames.
    #[serde(with = "humantime_serde")]
    pub server_ping_every: Duration,
    /// Binance closes a connection whose pong is this late.
    #[serde(with = "humantime_serde")]
    pub pong_deadline: Duration,
    /// Planned-disconnect notice to close.
    #[serde(with = "humantime_serde")]
    pub notice_lead: Duration,
    /// Updates per data tick under `slow_consumer`.
    pub flood: usize,
    #[serde(rename = "fault")]
    pub faults: Vec<StreamFault>,
}

impl Default for StreamScenario {
    fn default() -> Self {
        StreamScenario {
            data_every: Duration::from_millis(100),
            heartbeat_every: Duration::from_secs(1),
            server_ping_every: Duration::from_secs(20),
            pong_deadline: Duration::from_secs(60),
            notice_lead: Duration::from_secs(10),
            flood: 2_000,
            faults: Vec::new(),
        }
    }
}

/// Counters of the stream server, for tests.
#[derive(Debug, Default, Clone, Serialize)]
pub struct StreamStats {
    /// Handshakes accepted per exchange.
    pub connections: BTreeMap<String, u64>,
    /// Handshakes refused (reconnect refusal) per exchange.
    pub refused: BTreeMap<String, u64>,
    /// Binance connections closed because the client's pong was late.
    pub pong_timeouts: u64,
    /// Application pings answered.
    pub pongs: u64,
    /// Subscribe requests received.
    pub subscribes: u64,
    /// Unsubscribe requests received (a client's resync by resubscribing).
    pub unsubscribes: u64,
}

/// A book and its last update id, shared by its connection and the
/// depth snapshots.
pub(crate) type SharedBook = Arc<Mutex<(SimBook, u64)>>;

pub(crate) struct Shared {
    pub(crate) scenario: StreamScenario,
    pub(crate) cycle: Option<Duration>,
    pub(crate) started: Instant,
    pub(crate) stats: Mutex<StreamStats>,
    /// Edge faults fired: (fault index, cycle number, exchange).
    fired: Mutex<HashSet<(usize, u64, ExchangeKind)>>,
    /// Binance books by symbol (the latest connection's), for depth snapshots.
    pub(crate) binance_books: Mutex<HashMap<String, SharedBook>>,
}

impl Shared {
    fn window(&self) -> (Duration, u64) {
        let elapsed = self.started.elapsed();
        match self.cycle {
            Some(c) if !c.is_zero() => (
                Duration::from_nanos((elapsed.as_nanos() % c.as_nanos()) as u64),
                (elapsed.as_nanos() / c.as_nanos()) as u64,
            ),
            _ => (elapsed, 0),
        }
    }

    /// Whether a level fault of `kind` is active for `exchange` now.
    pub(crate) fn active(&self, exchange: ExchangeKind, kind: StreamFaultKind) -> bool {
        let (t, _) = self.window();
        self.scenario.faults.iter().any(|f| {
            f.fault == kind
                && f.exchange.is_none_or(|e| e == exchange)
                && t >= f.at
                && t < f.at + f.duration
        })
    }

    /// Whether an edge fault of `kind` fires now for `exchange` (true once
    /// per window and exchange).
    pub(crate) fn fire(&self, exchange: ExchangeKind, kind: StreamFaultKind) -> bool {
        let (t, n) = self.window();
        let Some(i) = self.scenario.faults.iter().position(|f| {
            f.fault == kind
                && f.exchange.is_none_or(|e| e == exchange)
                && t >= f.at
                && t < f.at + f.duration
        }) else {
            return false;
        };
        self.fired
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert((i, n, exchange))
    }

    /// The price offset active for `exchange` now, in basis points (the
    /// sum of its active `price_offset` faults).
    pub(crate) fn offset_bps(&self, exchange: ExchangeKind) -> f64 {
        let (t, _) = self.window();
        self.scenario
            .faults
            .iter()
            .filter(|f| {
                f.fault == StreamFaultKind::PriceOffset
                    && f.exchange.is_none_or(|e| e == exchange)
                    && t >= f.at
                    && t < f.at + f.duration
            })
            .map(|f| f.bps.unwrap_or(100.0))
            .sum()
    }

    pub(crate) fn count(&self, f: impl FnOnce(&mut StreamStats)) {
        f(&mut self.stats.lock().unwrap_or_else(|p| p.into_inner()));
    }
}

/// The running stream server (owned by `SimHandle`).
#[derive(Clone)]
pub struct StreamServer {
    shared: Arc<Shared>,
}

impl StreamServer {
    /// Counters so far.
    pub fn stats(&self) -> StreamStats {
        self.shared
            .stats
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Binance: the REST `/api/v3/depth` snapshot of a streamed symbol's
    /// book (`lastUpdateId` = the last `u` generated), as the worker's
    /// snapshot fetcher would parse it; `None` before it is subscribed.
    pub fn binance_depth(&self, symbol: &str) -> Option<BookMsg> {
        let books = self
            .shared
            .binance_books
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let b = books.get(&symbol.to_ascii_uppercase())?;
        let g = b.lock().unwrap_or_else(|p| p.into_inner());
        let (book, last_u) = (&g.0, g.1);
        let lv = |(p, q): (u64, u64)| Level::new(book::price(p), book::qty(q));
        Some(BookMsg {
            channel: "depth".into(),
            symbol: symbol.to_ascii_uppercase(),
            kind: BookKind::Snapshot,
            bids: book.bids().into_iter().map(lv).collect(),
            asks: book.asks().into_iter().map(lv).collect(),
            seq: BookSeq::BinanceRest {
                last_update_id: last_u,
            },
            event_time_ms: None,
        })
    }
}

impl StreamServer {
    /// [`StreamServer::binance_depth`] as the REST simulator's quote, so
    /// `GET /binance/api/v3/depth` serves the streamed book (prices and
    /// quantities parsed from their exact decimal text, which f64 display
    /// renders back unchanged).
    pub fn binance_depth_quote(&self, symbol: &str) -> Option<super::market::Quote> {
        let snap = self.binance_depth(symbol)?;
        let BookSeq::BinanceRest { last_update_id } = snap.seq else {
            return None;
        };
        let f = |d: crate::stream::Dec| d.to_string().parse::<f64>().unwrap_or(0.0);
        let levels =
            |l: &[Level]| -> Vec<(f64, f64)> { l.iter().map(|l| (f(l.price), f(l.qty))).collect() };
        let (bids, asks) = (levels(&snap.bids), levels(&snap.asks));
        let bid = bids.first().map(|l| l.0).unwrap_or(0.0);
        let ask = asks.first().map(|l| l.0).unwrap_or(0.0);
        Some(super::market::Quote {
            symbol: snap.symbol,
            last: bid,
            bid,
            ask,
            ts_ms: crate::clock::wall_ms(),
            update_id: last_update_id,
            bids,
            asks,
        })
    }
}

/// Serve streams on `listener` until `shutdown` is cancelled.
pub fn spawn(
    listener: TcpListener,
    scenario: StreamScenario,
    cycle: Option<Duration>,
    shutdown: CancellationToken,
) -> StreamServer {
    let shared = Arc::new(Shared {
        scenario,
        cycle,
        started: Instant::now(),
        stats: Mutex::new(StreamStats::default()),
        fired: Mutex::new(HashSet::new()),
        binance_books: Mutex::new(HashMap::new()),
    });
    let s = shared.clone();
    tokio::spawn(async move {
        loop {
            let accepted = tokio::select! {
                _ = shutdown.cancelled() => return,
                a = listener.accept() => a,
            };
            let Ok((tcp, _)) = accepted else { continue };
            let shared = s.clone();
            let token = shutdown.clone();
            tokio::spawn(async move {
                tokio::select! {
                    _ = token.cancelled() => {}
                    _ = conn::serve(tcp, shared) => {}
                }
            });
        }
    });
    StreamServer { shared }
}

#[cfg(test)]
mod tests {
    use super::*;
    use strum::VariantArray;

    #[test]
    fn stream_scenarios_parse_from_toml() {
        let s: StreamScenario = toml::from_str(
            "data_every = \"20ms\"\n[[fault]]\nat = \"1s\"\nfor = \"2s\"\nfault = \"heartbeats_only\"\nexchange = \"kraken\"\n",
        )
        .expect("parses");
        assert_eq!(s.data_every, Duration::from_millis(20));
        assert_eq!(s.faults[0].fault, StreamFaultKind::HeartbeatsOnly);
        assert_eq!(s.heartbeat_every, Duration::from_secs(1));
        for k in StreamFaultKind::VARIANTS {
            assert_eq!(
                serde_json::to_value(k).ok(),
                Some(serde_json::Value::from(k.to_string()))
            );
        }
    }
}
