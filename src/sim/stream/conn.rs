//! One simulated stream connection: handshake (or refusal), subscriptions,
//! data ticks, heartbeats, server pings, answers to pings, and the faults.

use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use futures::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::StatusCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use super::book::SimBook;
use super::frames::{self, Ids, Request as ClientRequest, SimFeed};
use super::{Shared, StreamFaultKind as F};
use crate::clock::wall_ms;
use crate::model::ExchangeKind;

/// Known Kraken pairs the `instrument` snapshot lists.
const KRAKEN_PAIRS: [&str; 3] = ["BTC/USD", "ETH/USD", "SOL/USD"];

struct BookSub {
    symbol: String,
    depth: u16,
    book: super::SharedBook,
    /// OKX `seqId` (the other exchanges keep their id in the tuple's u64).
    seq: i64,
    /// A `crossed_book` fault crossed it.
    crossed: bool,
    last_frame: Option<String>,
    held: Option<String>,
}

fn seed(kind: ExchangeKind, symbol: &str) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (kind.as_str(), symbol).hash(&mut h);
    h.finish()
}

/// Where `kind`'s book of `symbol` is centred now, in ticks of 0.1: the
/// exchange's price in the common market (`sim::market::venue_price`),
/// moved by a `price_offset` fault if one is active.
fn mid_ticks(shared: &Shared, kind: ExchangeKind, symbol: &str, now_ms: i64) -> u64 {
    let price = crate::sim::market::venue_price(kind, symbol, now_ms)
        * (1.0 + shared.offset_bps(kind) / 10_000.0);
    (price * 10.0).round().max(1.0) as u64
}

fn close(code: CloseCode, reason: &str) -> Message {
    Message::Close(Some(CloseFrame {
        code,
        reason: reason.to_string().into(),
    }))
}

// The handshake callback's error type is tungstenite's.
#[allow(clippy::result_large_err)]
pub(crate) async fn serve(tcp: TcpStream, shared: Arc<Shared>) {
    let mut kind: Option<ExchangeKind> = None;
    let mut refused = false;
    let callback = |req: &Request, resp: Response| -> Result<Response, ErrorResponse> {
        let first = req
            .uri()
            .path()
            .trim_start_matches('/')
            .split('/')
            .next()
            .unwrap_or("");
        let k: Option<ExchangeKind> = first.parse().ok();
        kind = k;
        match k {
            Some(k) if shared.active(k, F::RefuseConnections) => {
                refused = true;
                let mut r = ErrorResponse::new(Some(
                    "simulator: connection refused (too many requests)".into(),
                ));
                *r.status_mut() = StatusCode::TOO_MANY_REQUESTS;
                Err(r)
            }
            Some(_) => Ok(resp),
            None => {
                let mut r = ErrorResponse::new(Some("simulator: no such stream path".into()));
                *r.status_mut() = StatusCode::NOT_FOUND;
                Err(r)
            }
        }
    };
    let accepted = tokio_tungstenite::accept_hdr_async(tcp, callback).await;
    let Some(kind) = kind else { return };
    if refused {
        shared.count(|s| *s.refused.entry(kind.as_str().into()).or_default() += 1);
    }
    let Ok(ws) = accepted else { return };
    shared.count(|s| *s.connections.entry(kind.as_str().into()).or_default() += 1);
    let _ = Conn::new(kind, shared).run(ws).await;
}

struct Conn {
    kind: ExchangeKind,
    shared: Arc<Shared>,
    books: Vec<BookSub>,
    others: Vec<(SimFeed, String)>,
    counter: u64,
    ping_out: Option<Instant>,
    close_at: Option<Instant>,
}

type Ws = tokio_tungstenite::WebSocketStream<TcpStream>;
type Sink = futures::stream::SplitSink<Ws, Message>;

impl Conn {
    fn new(kind: ExchangeKind, shared: Arc<Shared>) -> Conn {
        Conn {
            kind,
            shared,
            books: Vec::new(),
            others: Vec::new(),
            counter: 1_000,
            ping_out: None,
            close_at: None,
        }
    }

    async fn run(mut self, ws: Ws) -> Result<(), tokio_tungstenite::tungstenite::Error> {
        let (mut tx, mut rx) = ws.split();
        let sc = self.shared.scenario.clone();
        let mut data =
            tokio::time::interval(sc.data_every.max(std::time::Duration::from_millis(1)));
        let mut beat =
            tokio::time::interval(sc.heartbeat_every.max(std::time::Duration::from_millis(1)));
        let mut ping = tokio::time::interval(
            sc.server_ping_every
                .max(std::time::Duration::from_millis(1)),
        );
        ping.tick().await;
        loop {
            tokio::select! {
                m = rx.next() => match m {
                    Some(Ok(Message::Text(t))) => self.on_request(&mut tx, t.as_str()).await?,
                    Some(Ok(Message::Pong(_))) => self.ping_out = None,
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return Ok(()),
                    Some(Ok(_)) => {}
                },
                _ = data.tick() => {
                    if !self.on_data(&mut tx).await? {
                        return Ok(());
                    }
                }
                _ = beat.tick() => {
                    if !self.shared.active(self.kind, F::Stall) {
                        self.heartbeats(&mut tx).await?;
                    }
                }
                _ = ping.tick() => {
                    if self.kind == ExchangeKind::Binance && !self.shared.active(self.kind, F::Stall) && self.ping_out.is_none() {
                        self.ping_out = Some(Instant::now());
                        tx.send(Message::Ping(Vec::new().into())).await?;
                    }
                }
            }
        }
    }

    async fn on_request(
        &mut self,
        tx: &mut Sink,
        text: &str,
    ) -> Result<(), tokio_tungstenite::tungstenite::Error> {
        match frames::parse_request(self.kind, text) {
            ClientRequest::Ping { id } => {
                if self.shared.active(self.kind, F::NoPong) {
                    return Ok(());
                }
                if let Some(p) = frames::pong(self.kind, &id) {
                    self.shared.count(|s| s.pongs += 1);
                    tx.send(Message::text(p)).await?;
                }
            }
            ClientRequest::Subscribe { subs, id } => {
                self.shared.count(|s| s.subscribes += 1);
                for a in frames::subscribe_answers(self.kind, &subs, &id) {
                    tx.send(Message::text(a)).await?;
                }
                let now = wall_ms();
                for (feed, symbol) in subs {
                    if symbol.starts_with(frames::REFUSED_PREFIX) {
                        continue;
                    }
                    match feed {
                        SimFeed::Book(depth) => self.subscribe_book(tx, symbol, depth, now).await?,
                        SimFeed::Instrument => {
                            let pairs: Vec<String> =
                                KRAKEN_PAIRS.iter().map(|s| s.to_string()).collect();
                            tx.send(Message::text(frames::instrument(&pairs))).await?;
                        }
                        _ => self.others.push((feed, symbol)),
                    }
                }
            }
            ClientRequest::Unsubscribe { subs, id } => {
                self.shared.count(|s| s.unsubscribes += 1);
                for (feed, symbol) in &subs {
                    match feed {
                        SimFeed::Book(_) => self.books.retain(|b| b.symbol != *symbol),
                        _ => self.others.retain(|(f, s)| !(f == feed && s == symbol)),
                    }
                }
                let mut remaining: Vec<(SimFeed, String)> = self
                    .books
                    .iter()
                    .map(|b| (SimFeed::Book(b.depth), b.symbol.clone()))
                    .collect();
                remaining.extend(self.others.iter().cloned());
                for a in frames::unsubscribe_answers(self.kind, &subs, &id, &remaining) {
                    tx.send(Message::text(a)).await?;
                }
            }
            ClientRequest::Other => {}
        }
        Ok(())
    }

    async fn subscribe_book(
        &mut self,
        tx: &mut Sink,
        symbol: String,
        depth: u16,
        now: i64,
    ) -> Result<(), tokio_tungstenite::tungstenite::Error> {
        let mid = mid_ticks(&self.shared, self.kind, &symbol, now);
        let book = SimBook::new(seed(self.kind, &symbol), mid);
        let cell = Arc::new(Mutex::new((book, 1_000u64)));
        if self.kind == ExchangeKind::Binance {
            self.shared
                .binance_books
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(symbol.clone(), cell.clone());
        }
        let snap = {
            let g = cell.lock().unwrap_or_else(|p| p.into_inner());
            let checksum = match self.kind {
                ExchangeKind::Kraken => i64::from(g.0.kraken_checksum()),
                _ => 0,
            };
            frames::book_snapshot(
                self.kind,
                depth,
                &symbol,
                &g.0,
                Ids {
                    first: -1,
                    last: 1_000,
                    checksum,
                },
                now,
            )
        };
        if let Some(s) = snap {
            tx.send(Message::text(s)).await?;
        }
        self.books.push(BookSub {
            symbol,
            depth,
            book: cell,
            seq: 1_000,
            crossed: false,
            last_frame: None,
            held: None,
        });
        Ok(())
    }

    /// One data tick; `false` ends the connection.
    async fn on_data(
        &mut self,
        tx: &mut Sink,
    ) -> Result<bool, tokio_tungstenite::tungstenite::Error> {
        let (kind, shared) = (self.kind, self.shared.clone());
        let sc = &shared.scenario;
        if let Some(out) = self.ping_out {
            if out.elapsed() > sc.pong_deadline {
                shared.count(|s| s.pong_timeouts += 1);
                let _ = tx.send(close(CloseCode::Policy, "pong timeout")).await;
                return Ok(false);
            }
        }
        if self.close_at.is_some_and(|t| Instant::now() >= t) {
            let _ = tx.send(close(CloseCode::Away, "server shutdown")).await;
            return Ok(false);
        }
        if shared.active(kind, F::RefuseConnections) {
            let _ = tx.send(close(CloseCode::Restart, "service restart")).await;
            return Ok(false);
        }
        if shared.fire(kind, F::ServerClose) {
            let (code, reason) = match kind {
                ExchangeKind::Okx => (CloseCode::from(4004), "No data received in 30s."),
                _ => (CloseCode::Away, "going away"),
            };
            let _ = tx.send(close(code, reason)).await;
            return Ok(false);
        }
        if self.close_at.is_none() && shared.fire(kind, F::PlannedDisconnect) {
            let mut symbols: Vec<String> = self.books.iter().map(|b| b.symbol.clone()).collect();
            symbols.extend(self.others.iter().map(|o| o.1.clone()));
            if let Some(n) = frames::planned_notice(kind, &symbols, wall_ms()) {
                tx.send(Message::text(n)).await?;
            }
            self.close_at = Some(Instant::now() + sc.notice_lead);
        }
        if shared.active(kind, F::Stall) || shared.active(kind, F::HeartbeatsOnly) {
            return Ok(true);
        }
        let n = if shared.active(kind, F::SlowConsumer) {
            sc.flood.max(1)
        } else {
            1
        };
        for i in 0..self.books.len() {
            for _ in 0..n {
                self.book_update(tx, i).await?;
            }
        }
        let now = wall_ms();
        for (feed, symbol) in self.others.clone() {
            self.counter += 1;
            let book = SimBook::new(seed(kind, &symbol), mid_ticks(&shared, kind, &symbol, now));
            let text = match feed {
                SimFeed::Ticker => frames::ticker(kind, &symbol, &book, self.counter, now),
                SimFeed::Trades => frames::trade(kind, &symbol, &book, self.counter, now),
                _ => continue,
            };
            tx.send(Message::text(text)).await?;
        }
        Ok(true)
    }

    async fn book_update(
        &mut self,
        tx: &mut Sink,
        i: usize,
    ) -> Result<(), tokio_tungstenite::tungstenite::Error> {
        let (kind, shared) = (self.kind, self.shared.clone());
        let now = wall_ms();
        let b = &mut self.books[i];
        let mid = mid_ticks(&shared, kind, &b.symbol, now);
        let text = {
            let mut g = b.book.lock().unwrap_or_else(|p| p.into_inner());
            let mut changes = g.0.step_to(mid);
            if shared.active(kind, F::CrossedBook) {
                changes.extend(g.0.cross());
                b.crossed = true;
            } else if b.crossed {
                changes.extend(g.0.uncross());
                b.crossed = false;
            }
            let mut ids = Ids::default();
            match kind {
                ExchangeKind::Binance => {
                    ids.first = g.1 as i64 + 1;
                    g.1 += changes.len() as u64;
                    ids.last = g.1 as i64;
                }
                ExchangeKind::Bybit => {
                    g.1 += 1;
                    ids.last = g.1 as i64;
                }
                ExchangeKind::Okx => {
                    ids.first = b.seq;
                    b.seq += 1 + (g.1 % 3) as i64;
                    g.1 += 1;
                    ids.last = b.seq;
                }
                ExchangeKind::Kraken => ids.checksum = i64::from(g.0.kraken_checksum()),
                _ => {}
            }
            if shared.fire(kind, F::ChecksumMismatch) {
                ids.checksum = match kind {
                    ExchangeKind::Kraken => i64::from(g.0.kraken_checksum() ^ 0x5a5a_5a5a),
                    ExchangeKind::Okx => {
                        let c = crate::stream::checksum::okx(&g.0.order_book()).wrapping_add(1);
                        i64::from(if c == 0 { 1 } else { c })
                    }
                    _ => ids.checksum,
                };
            }
            frames::book_delta(kind, b.depth, &b.symbol, &changes, ids, now)
        };
        if shared.fire(kind, F::Gap) {
            return Ok(());
        }
        if b.held.is_none() && shared.fire(kind, F::OutOfOrder) {
            b.held = Some(text);
            return Ok(());
        }
        tx.send(Message::text(text.clone())).await?;
        if let Some(held) = b.held.take() {
            tx.send(Message::text(held)).await?;
        }
        if shared.fire(kind, F::Duplicate) {
            if let Some(prev) = &b.last_frame {
                tx.send(Message::text(prev.clone())).await?;
            }
        }
        b.last_frame = Some(text);
        Ok(())
    }

    async fn heartbeats(
        &mut self,
        tx: &mut Sink,
    ) -> Result<(), tokio_tungstenite::tungstenite::Error> {
        let now = wall_ms();
        match self.kind {
            ExchangeKind::Coinbase => {
                let products: Vec<String> = self
                    .others
                    .iter()
                    .filter(|(f, _)| *f == SimFeed::Heartbeat)
                    .map(|(_, s)| s.clone())
                    .collect();
                for p in products {
                    self.counter += 1;
                    if let Some(h) = frames::heartbeat(self.kind, &p, self.counter, now) {
                        tx.send(Message::text(h)).await?;
                    }
                }
            }
            ExchangeKind::Kraken if !self.books.is_empty() || !self.others.is_empty() => {
                if let Some(h) = frames::heartbeat(self.kind, "", 0, now) {
                    tx.send(Message::text(h)).await?;
                }
            }
            _ => {}
        }
        Ok(())
    }
}
