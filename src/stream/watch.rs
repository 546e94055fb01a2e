//! One connection's watcher: turns the worker's [`StreamReport`]s into the
//! events the rest of exwatch speaks ([`Event::StreamStatus`] about once a
//! second per row, [`Event::StreamNote`] when something happens). Pure: the
//! time and the exchange's clock offset are passed in.
//!
//! ```text
//! worker ──StreamReport──▶ Watcher::on_report ──▶ StreamNote events (gaps, resyncs, drops...)
//!                                │ stats, Liveness
//!          every second ──▶ Watcher::tick ──▶ one StreamStatus per row (connection, subscriptions)
//! ```
//!
//! Data messages are counted, never journaled one by one.

use std::collections::VecDeque;

use super::liveness::{Health, Liveness, LivenessConfig, SubKey};
use super::report::{InvalidReason, ReportKind, ResyncVia, StreamReport};
use super::spec::{StreamSpec, data_channel, data_symbol};
use super::{Feed, Verdict};
use crate::model::stream::subscription_id;
use crate::model::{
    BookState, EndpointId, Event, ExchangeKind, StreamNote, StreamNoteKind, StreamState,
    StreamStatus,
};

/// Seconds over which `msgs_per_s` is averaged.
const RATE_WINDOW_S: usize = 10;
/// Lag samples kept per row (the newest), and their maximum age, ms.
const LAG_SAMPLES: usize = 4096;
const LAG_WINDOW_MS: i64 = 60_000;

/// The config name of a feed, as rows are named (`ws:<feed>:<symbol>`).
pub fn feed_name(feed: Feed) -> &'static str {
    match feed {
        Feed::Ticker => "ticker",
        Feed::Trades => "trades",
        Feed::Book { .. } => "book",
        Feed::Heartbeat => "heartbeat",
        Feed::Status => "status",
        Feed::Instrument => "instrument",
    }
}

/// Counters and recent figures of one row.
#[derive(Debug, Clone, Default)]
struct Stats {
    messages: u64,
    /// `messages` at each of the last ticks, oldest first.
    counts: VecDeque<u64>,
    /// (received ms, lag ms), oldest first.
    lags: VecDeque<(i64, i64)>,
    gaps: u64,
    resyncs: u64,
    stale: u64,
    book: Option<BookState>,
    bid: Option<String>,
    ask: Option<String>,
    /// Why the book is invalid, in words.
    book_detail: String,
    /// The book broke since the last tick (why): the next status says
    /// invalid even if it was resynced meanwhile, so a gap is never lost
    /// between two statuses.
    broke_since_tick: Option<String>,
    /// Locked or crossed top (in words) and since when (ms).
    crossed: Option<(String, i64)>,
}

impl Stats {
    fn rate(&self) -> f64 {
        match (self.counts.front(), self.counts.back()) {
            (Some(first), Some(last)) if self.counts.len() > 1 => {
                (last - first) as f64 / (self.counts.len() - 1) as f64
            }
            _ => 0.0,
        }
    }

    fn lag(&self, q: f64) -> Option<i64> {
        if self.lags.is_empty() {
            return None;
        }
        let mut v: Vec<i64> = self.lags.iter().map(|(_, l)| *l).collect();
        v.sort_unstable();
        let i = ((v.len() - 1) as f64 * q).round() as usize;
        v.get(i).copied()
    }

    fn tick(&mut self, now_ms: i64) {
        self.counts.push_back(self.messages);
        while self.counts.len() > RATE_WINDOW_S + 1 {
            self.counts.pop_front();
        }
        while self
            .lags
            .front()
            .is_some_and(|(at, _)| now_ms - at > LAG_WINDOW_MS)
        {
            self.lags.pop_front();
        }
    }
}

/// One subscription row.
#[derive(Debug, Clone)]
struct Row {
    id: EndpointId,
    key: SubKey,
    threshold_ms: i64,
    stats: Stats,
}

/// The watcher of one connection (one [`StreamSpec`]).
#[derive(Debug, Clone)]
pub struct Watcher {
    exchange_kind: ExchangeKind,
    connection: EndpointId,
    url: String,
    liveness: Liveness,
    dead_after_ms: i64,
    conn: Stats,
    attempts: u64,
    /// Since when the connection is down (the first drop or failed attempt
    /// since it was last up).
    down_since: Option<i64>,
    down_detail: String,
    rows: Vec<Row>,
}

impl Watcher {
    /// The watcher of `spec` on the exchange configured as `exchange`; a
    /// subscription silent past `silent_after_ms` is a zombie, a socket
    /// without any frame past `dead_after_ms` is dead.
    pub fn new(
        exchange: &str,
        spec: &StreamSpec,
        silent_after_ms: i64,
        dead_after_ms: i64,
    ) -> Watcher {
        let config = LivenessConfig {
            zombie_after_ms: silent_after_ms,
            dead_after_ms,
            ..LivenessConfig::default()
        };
        let mut liveness = Liveness::new(config);
        let mut rows = Vec::new();
        for sub in &spec.subscriptions {
            let Some(channel) = data_channel(spec.exchange, sub.feed) else {
                continue;
            };
            let key = SubKey {
                exchange: spec.exchange,
                channel,
                symbol: data_symbol(spec.exchange, &sub.symbol),
            };
            liveness.expect(&spec.name, key.clone(), Some(silent_after_ms));
            let mut stats = Stats::default();
            if matches!(sub.feed, Feed::Book { .. }) {
                stats.book = Some(BookState::Syncing);
            }
            rows.push(Row {
                id: subscription_id(exchange, feed_name(sub.feed), &sub.symbol),
                key,
                threshold_ms: silent_after_ms,
                stats,
            });
        }
        Watcher {
            exchange_kind: spec.exchange,
            connection: EndpointId::new(exchange, spec.name.clone()),
            url: spec.url.clone(),
            liveness,
            dead_after_ms: config.dead_after_ms,
            conn: Stats::default(),
            attempts: 0,
            down_since: None,
            down_detail: String::new(),
            rows,
        }
    }

    /// The `StreamWatching` events of its rows: the connection first.
    pub fn watching(&self) -> Vec<Event> {
        let name = self.connection.endpoint.clone();
        std::iter::once(&self.connection)
            .chain(self.rows.iter().map(|r| &r.id))
            .map(|id| Event::StreamWatching {
                id: id.clone(),
                exchange_kind: self.exchange_kind,
                connection: name.clone(),
                url: self.url.clone(),
            })
            .collect()
    }

    fn row_mut(&mut self, channel: &str, symbol: &str) -> Option<&mut Row> {
        self.rows
            .iter_mut()
            .find(|r| r.key.channel == channel && r.key.symbol == symbol)
    }

    fn note(&self, id: &EndpointId, at_ms: i64, what: StreamNoteKind, detail: String) -> Event {
        Event::StreamNote(StreamNote {
            id: id.clone(),
            connection: self.connection.endpoint.clone(),
            at_ms,
            what,
            detail,
        })
    }

    /// Take one report; returns the notes it makes. `offset_ms` is the
    /// exchange's clock offset (server − local, from its REST time
    /// endpoint; 0 when unknown): lag is receive time minus event time
    /// plus the offset.
    pub fn on_report(&mut self, r: &StreamReport, offset_ms: i64) -> Vec<Event> {
        self.liveness.observe(r);
        if r.kind.is_frame() {
            self.conn.messages += 1;
        }
        let at = r.at_ms;
        let conn = self.connection.clone();
        let mut out = Vec::new();
        match &r.kind {
            ReportKind::Connecting { .. } => self.attempts += 1,
            ReportKind::Connected {
                attempt,
                handshake_ms,
            } => {
                self.down_detail.clear();
                self.down_since = None;
                let detail = format!("attempt {attempt}, handshake {handshake_ms} ms");
                out.push(self.note(&conn, at, StreamNoteKind::Connected, detail));
            }
            ReportKind::Disconnected {
                code,
                reason,
                error,
                planned,
                connected_ms,
            } => {
                let mut detail = match code {
                    Some(c) => format!("close {c}: {reason}"),
                    None => reason.clone(),
                };
                if let Some(e) = error {
                    detail.push_str(&format!(" ({e})"));
                }
                if *planned {
                    detail.push_str(", announced");
                }
                detail.push_str(&format!(", after {} s up", connected_ms / 1000));
                self.down_detail = detail.clone();
                self.down_since.get_or_insert(at);
                let what = if *connected_ms == 0 {
                    StreamNoteKind::ConnectFailed
                } else {
                    StreamNoteKind::Disconnected
                };
                out.push(self.note(&conn, at, what, detail));
            }
            ReportKind::PlannedDisconnect { code, message, .. } => {
                let detail = match code {
                    Some(c) => format!("{message} (code {c})"),
                    None => message.clone(),
                };
                self.down_detail = detail.clone();
                out.push(self.note(&conn, at, StreamNoteKind::PlannedDisconnect, detail));
            }
            ReportKind::Status {
                notice,
                symbol,
                message,
            } => {
                let detail = format!(
                    "{notice:?}{}{}",
                    symbol.as_ref().map(|s| format!(" {s}")).unwrap_or_default(),
                    message
                        .as_ref()
                        .map(|m| format!(": {m}"))
                        .unwrap_or_default()
                );
                out.push(self.note(&conn, at, StreamNoteKind::Notice, detail));
            }
            ReportKind::SubscribeRefused {
                channel,
                symbol,
                code,
                message,
            } => {
                let detail = match code {
                    Some(c) => format!("{message} (code {c})"),
                    None => message.clone(),
                };
                let id = match (channel, symbol) {
                    (Some(c), Some(s)) => self.row_mut(c, s).map(|r| r.id.clone()),
                    _ => None,
                };
                let id = id.unwrap_or_else(|| conn.clone());
                out.push(self.note(&id, at, StreamNoteKind::SubscribeRefused, detail));
            }
            ReportKind::Data {
                channel,
                symbol,
                received_ms,
                event_time_ms,
                bid,
                ask,
                ..
            } => {
                if let Some(row) = self.row_mut(channel, symbol) {
                    row.stats.messages += 1;
                    if let Some(ev) = event_time_ms {
                        if row.stats.lags.len() == LAG_SAMPLES {
                            row.stats.lags.pop_front();
                        }
                        row.stats
                            .lags
                            .push_back((*received_ms, received_ms - ev + offset_ms));
                    }
                    if let Some(b) = bid {
                        row.stats.bid = Some(b.to_string());
                    }
                    if let Some(a) = ask {
                        row.stats.ask = Some(a.to_string());
                    }
                }
            }
            ReportKind::Book {
                channel,
                symbol,
                verdict,
                valid,
                ..
            } => {
                if let Some(row) = self.row_mut(channel, symbol) {
                    if matches!(verdict, Verdict::Stale { .. }) {
                        row.stats.stale += 1;
                    }
                    if *valid && row.stats.book != Some(BookState::Invalid) {
                        row.stats.book = Some(BookState::Valid);
                    }
                }
            }
            ReportKind::BookInvalid {
                channel,
                symbol,
                reason,
            } => {
                let detail = invalid_words(reason);
                if let Some(row) = self.row_mut(channel, symbol) {
                    // A book dropped with its connection waits for the next
                    // snapshot: syncing, the drop is the connection's alert.
                    // An invalid book has no top: no crossing either.
                    row.stats.crossed = None;
                    if *reason == InvalidReason::Disconnected {
                        row.stats.book = Some(BookState::Syncing);
                        return out;
                    }
                    if matches!(
                        reason,
                        InvalidReason::Gap { .. } | InvalidReason::Checksum { .. }
                    ) {
                        row.stats.gaps += 1;
                    }
                    row.stats.book = Some(BookState::Invalid);
                    row.stats.book_detail = detail.clone();
                    row.stats.broke_since_tick = Some(detail.clone());
                    let id = row.id.clone();
                    out.push(self.note(&id, at, StreamNoteKind::BookInvalid, detail));
                }
            }
            ReportKind::BookCrossed {
                channel,
                symbol,
                crossing,
            } => {
                if let Some(row) = self.row_mut(channel, symbol) {
                    let (what, detail) = match (crossing, row.stats.crossed.take()) {
                        (Some(c), before) => {
                            // Locked then crossed is one crossing, since its start.
                            let since = before.map_or(at, |(_, since)| since);
                            row.stats.crossed = Some((c.clone(), since));
                            (StreamNoteKind::BookCrossed, c.clone())
                        }
                        (None, Some((c, since))) => (
                            StreamNoteKind::BookUncrossed,
                            format!("no longer {c}, after {} ms", at - since),
                        ),
                        (None, None) => return out,
                    };
                    let id = row.id.clone();
                    out.push(self.note(&id, at, what, detail));
                }
            }
            ReportKind::BookResynced {
                channel,
                symbol,
                via,
                invalid_ms,
            } => {
                if let Some(row) = self.row_mut(channel, symbol) {
                    row.stats.resyncs += 1;
                    row.stats.book = Some(BookState::Valid);
                    let how = match via {
                        ResyncVia::StreamSnapshot => "stream snapshot",
                        ResyncVia::RestSnapshot => "REST snapshot",
                        ResyncVia::Resubscribe => "resubscribed book's snapshot",
                    };
                    let detail = format!(
                        "from a {how} after {invalid_ms} ms invalid (was: {})",
                        row.stats.book_detail
                    );
                    row.stats.book_detail.clear();
                    let id = row.id.clone();
                    out.push(self.note(&id, at, StreamNoteKind::BookResynced, detail));
                }
            }
            ReportKind::SnapshotFailed {
                symbol,
                attempt,
                error,
            } => {
                let detail = format!("{symbol}: attempt {attempt}: {error}");
                out.push(self.note(&conn, at, StreamNoteKind::SnapshotFailed, detail));
            }
            ReportKind::PongMissed { waited_ms } => {
                let detail = format!("no pong within {waited_ms} ms; reconnecting");
                out.push(self.note(&conn, at, StreamNoteKind::PongMissed, detail));
            }
            ReportKind::Lagged { dropped } => {
                let detail = format!("{dropped} messages dropped: the consumer fell behind");
                out.push(self.note(&conn, at, StreamNoteKind::Lagged, detail));
            }
            ReportKind::Unparsed { error } => {
                out.push(self.note(&conn, at, StreamNoteKind::Unparsed, error.clone()));
            }
            ReportKind::ExchangeError { code, message } => {
                let detail = match code {
                    Some(c) => format!("{message} (code {c})"),
                    None => message.clone(),
                };
                out.push(self.note(&conn, at, StreamNoteKind::ExchangeError, detail));
            }
            ReportKind::Subscribed { .. }
            | ReportKind::Control { .. }
            | ReportKind::ReconnectScheduled { .. } => {}
        }
        out
    }

    /// Every row's status at `now_ms`: the connection first, then its
    /// subscriptions in config order.
    pub fn tick(&mut self, now_ms: i64) -> Vec<Event> {
        let conn_verdict = self
            .liveness
            .connections(now_ms)
            .into_iter()
            .find(|c| c.connection == self.connection.endpoint);
        self.conn.tick(now_ms);
        let mut out = Vec::with_capacity(self.rows.len() + 1);
        let (state, age, expected, storm) = match &conn_verdict {
            Some(c) if c.connected && c.dead => (StreamState::Dead, c.frame_age_ms, false, c.storm),
            Some(c) if c.connected => (StreamState::Live, c.frame_age_ms, c.expected, c.storm),
            Some(c) => match self.down_since {
                Some(since) => (StreamState::Down, Some(now_ms - since), c.expected, c.storm),
                None => (StreamState::Pending, None, c.expected, c.storm),
            },
            None => (StreamState::Pending, None, false, None),
        };
        let mut subs = self.sub_statuses(now_ms);
        // Every subscription silent behind a live socket: the connection is
        // the zombie (one alert), not each subscription.
        let all_zombie = !subs.is_empty() && subs.iter().all(|s| s.state == StreamState::Zombie);
        let state = if state == StreamState::Live && all_zombie {
            StreamState::Zombie
        } else {
            state
        };
        let detail = match state {
            StreamState::Live => String::new(),
            StreamState::Zombie => {
                format!(
                    "every subscription silent, the socket open ({} frames so far)",
                    self.conn.messages
                )
            }
            _ => self.down_detail.clone(),
        };
        let age = if state == StreamState::Zombie {
            subs.iter().filter_map(|s| s.age_ms).min()
        } else {
            age
        };
        for s in &mut subs {
            s.connection_wide = all_zombie;
        }
        out.push(Event::StreamStatus(StreamStatus {
            id: self.connection.clone(),
            connection: self.connection.endpoint.clone(),
            at_ms: now_ms,
            state,
            expected,
            age_ms: age,
            threshold_ms: self.dead_after_ms,
            msgs_per_s: self.conn.rate(),
            messages: self.conn.messages,
            lag_p50_ms: None,
            lag_p99_ms: None,
            gaps: self.rows.iter().map(|r| r.stats.gaps).sum(),
            resyncs: self.rows.iter().map(|r| r.stats.resyncs).sum(),
            reconnects: self.attempts.saturating_sub(1),
            storm: storm.map(|n| n as u32),
            book: None,
            bid: None,
            ask: None,
            crossed: None,
            connection_wide: false,
            detail,
        }));
        out.extend(subs.into_iter().map(Event::StreamStatus));
        out
    }

    /// Each subscription's status at `now_ms`, in config order.
    fn sub_statuses(&mut self, now_ms: i64) -> Vec<StreamStatus> {
        let down_since = self.down_since;
        let mut out = Vec::with_capacity(self.rows.len());
        for row in &mut self.rows {
            row.stats.tick(now_ms);
            let verdict = self.liveness.subscription(&row.key, now_ms);
            let (state, age, expected, why) = match verdict {
                None => (StreamState::Pending, None, false, String::new()),
                Some(v) => {
                    let (state, age, why) = match v.health {
                        Health::Live { data_age_ms } => {
                            (StreamState::Live, data_age_ms, String::new())
                        }
                        Health::Pending { .. } => (StreamState::Pending, None, String::new()),
                        Health::Unacked { waited_ms } => (
                            StreamState::Unacked,
                            None,
                            format!("no ack after {} s", waited_ms / 1000),
                        ),
                        Health::Refused { message } => (StreamState::Refused, None, message),
                        Health::Zombie { silent_ms, .. } => {
                            (StreamState::Zombie, Some(silent_ms), String::new())
                        }
                        Health::Dead { silent_ms, .. } => {
                            (StreamState::Dead, Some(silent_ms), String::new())
                        }
                        // Down since the watcher's own record of it; not
                        // connected yet is pending.
                        Health::Down { .. } => match down_since {
                            Some(since) => (
                                StreamState::Down,
                                Some(now_ms - since),
                                "the connection is down".to_string(),
                            ),
                            None => (StreamState::Pending, None, String::new()),
                        },
                    };
                    (state, age, v.expected, why)
                }
            };
            let broke = row.stats.broke_since_tick.take();
            let s = &row.stats;
            let mut detail = why;
            let book_why = match (&broke, s.book) {
                (_, Some(BookState::Invalid)) => Some(s.book_detail.clone()),
                (Some(b), _) => Some(format!("{b} (resynced since)")),
                _ => None,
            };
            // The book's fault first: it names the alert.
            let book_why = book_why.or_else(|| s.crossed.as_ref().map(|(c, _)| c.clone()));
            if let Some(b) = book_why.filter(|b| !b.is_empty()) {
                detail = if detail.is_empty() {
                    b
                } else {
                    format!("{b}; {detail}")
                };
            }
            let book = if broke.is_some() {
                Some(BookState::Invalid)
            } else {
                s.book
            };
            out.push(StreamStatus {
                id: row.id.clone(),
                connection: self.connection.endpoint.clone(),
                at_ms: now_ms,
                state,
                expected,
                age_ms: age,
                threshold_ms: row.threshold_ms,
                msgs_per_s: s.rate(),
                messages: s.messages,
                lag_p50_ms: s.lag(0.5),
                lag_p99_ms: s.lag(0.99),
                gaps: s.gaps,
                resyncs: s.resyncs,
                reconnects: self.attempts.saturating_sub(1),
                storm: None,
                book,
                bid: s.bid.clone(),
                ask: s.ask.clone(),
                crossed: s.crossed.as_ref().map(|(c, _)| c.clone()),
                connection_wide: false,
                detail,
            });
        }
        out
    }
}

/// A broken book's reason in words, with the figures.
fn invalid_words(reason: &InvalidReason) -> String {
    match reason {
        InvalidReason::Gap { expected, received } => {
            format!("gap: expected update id {expected}, received {received}")
        }
        InvalidReason::Checksum { expected, computed } => {
            format!("checksum mismatch: exchange {expected}, computed {computed}")
        }
        InvalidReason::Lagged { dropped } => format!("{dropped} messages dropped (slow consumer)"),
        InvalidReason::Disconnected => "the connection dropped".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stream::spec::Subscription;

    fn spec() -> StreamSpec {
        StreamSpec::new(
            ExchangeKind::Bybit,
            "bybit-ws",
            vec![
                Subscription::new(Feed::Book { depth: 50 }, "BTCUSDT"),
                Subscription::new(Feed::Ticker, "BTCUSDT"),
            ],
        )
    }

    fn rep(at_ms: i64, kind: ReportKind) -> StreamReport {
        StreamReport {
            exchange: ExchangeKind::Bybit,
            connection: "bybit-ws".into(),
            at_ms,
            kind,
        }
    }

    fn statuses(ev: &[Event]) -> Vec<&StreamStatus> {
        ev.iter()
            .filter_map(|e| match e {
                Event::StreamStatus(s) => Some(s),
                _ => None,
            })
            .collect()
    }

    fn book_data(at: i64) -> ReportKind {
        ReportKind::Data {
            channel: "orderbook.50".into(),
            symbol: "BTCUSDT".into(),
            received_ms: at,
            event_time_ms: Some(at - 40),
            bytes: 100,
            bid: None,
            ask: None,
        }
    }

    fn connected(w: &mut Watcher, at: i64) {
        w.on_report(
            &rep(
                at,
                ReportKind::Connecting {
                    attempt: 0,
                    url: "ws://x".into(),
                },
            ),
            0,
        );
        w.on_report(
            &rep(
                at,
                ReportKind::Connected {
                    attempt: 0,
                    handshake_ms: 3,
                },
            ),
            0,
        );
        for channel in ["orderbook.50", "tickers"] {
            w.on_report(
                &rep(
                    at,
                    ReportKind::Subscribed {
                        channel: channel.into(),
                        symbol: "BTCUSDT".into(),
                    },
                ),
                0,
            );
        }
    }

    #[test]
    fn rows_rate_lag_and_a_gap_then_resync() {
        let mut w = Watcher::new("bybit", &spec(), 5_000, 60_000);
        let ids: Vec<String> = w
            .watching()
            .iter()
            .map(|e| match e {
                Event::StreamWatching { id, .. } => id.endpoint.clone(),
                _ => String::new(),
            })
            .collect();
        assert_eq!(ids, ["bybit-ws", "ws:book:BTCUSDT", "ws:ticker:BTCUSDT"]);
        connected(&mut w, 0);
        // 10 book messages a second for 3 s, 40 ms behind; the exchange's
        // clock 15 ms ahead of ours.
        let mut t = 0;
        for s in 0..3 {
            for _ in 0..10 {
                t += 100;
                w.on_report(&rep(t, book_data(t)), 15);
            }
            w.tick(1000 * (s + 1));
        }
        let ev = w.tick(3_050);
        let st = statuses(&ev);
        let book = st[1];
        assert_eq!(book.state, StreamState::Live);
        assert_eq!(book.messages, 30);
        assert!((book.msgs_per_s - 7.5).abs() < 2.6, "{}", book.msgs_per_s);
        assert_eq!(book.lag_p50_ms, Some(55));
        assert_eq!(book.book, Some(BookState::Syncing));
        // The ticker never got data: live until silent_after, then a zombie.
        assert_eq!(st[2].state, StreamState::Live);
        let notes = w.on_report(
            &rep(
                3_100,
                ReportKind::BookInvalid {
                    channel: "orderbook.50".into(),
                    symbol: "BTCUSDT".into(),
                    reason: InvalidReason::Gap {
                        expected: 12,
                        received: 14,
                    },
                },
            ),
            0,
        );
        let Event::StreamNote(n) = &notes[0] else {
            panic!("{notes:?}")
        };
        assert_eq!(n.what, StreamNoteKind::BookInvalid);
        assert_eq!(n.id.endpoint, "ws:book:BTCUSDT");
        assert_eq!(n.detail, "gap: expected update id 12, received 14");
        let ev = w.tick(3_200);
        let book = statuses(&ev)[1];
        assert_eq!((book.book, book.gaps), (Some(BookState::Invalid), 1));
        assert!(
            book.detail.contains("expected update id 12"),
            "{}",
            book.detail
        );
        w.on_report(
            &rep(
                3_300,
                ReportKind::BookResynced {
                    channel: "orderbook.50".into(),
                    symbol: "BTCUSDT".into(),
                    via: ResyncVia::StreamSnapshot,
                    invalid_ms: 200,
                },
            ),
            0,
        );
        let ev = w.tick(3_400);
        assert_eq!(statuses(&ev)[1].book, Some(BookState::Valid));
        // Broken and resynced between two ticks: the next status still
        // says invalid (with why), the one after valid.
        let gap = ReportKind::BookInvalid {
            channel: "orderbook.50".into(),
            symbol: "BTCUSDT".into(),
            reason: InvalidReason::Gap {
                expected: 20,
                received: 22,
            },
        };
        w.on_report(&rep(3_500, gap), 0);
        let resynced = ReportKind::BookResynced {
            channel: "orderbook.50".into(),
            symbol: "BTCUSDT".into(),
            via: ResyncVia::StreamSnapshot,
            invalid_ms: 100,
        };
        w.on_report(&rep(3_600, resynced), 0);
        let ev = w.tick(3_700);
        let book = statuses(&ev)[1];
        assert_eq!((book.book, book.gaps), (Some(BookState::Invalid), 2));
        assert!(book.detail.ends_with("(resynced since)"), "{}", book.detail);
        let ev = w.tick(5_000 + 3_200);
        let st = statuses(&ev);
        assert_eq!((st[1].book, st[1].resyncs), (Some(BookState::Valid), 2));
        assert!(st[1].detail.is_empty());
        assert_eq!(st[2].state, StreamState::Zombie);
    }

    #[test]
    fn a_drop_is_down_with_its_age_and_an_announced_one_is_expected() {
        let mut w = Watcher::new("bybit", &spec(), 5_000, 60_000);
        assert_eq!(statuses(&w.tick(0))[0].state, StreamState::Pending);
        connected(&mut w, 0);
        w.on_report(&rep(500, book_data(500)), 0);
        let drop = ReportKind::Disconnected {
            code: Some(1006),
            reason: "reset".into(),
            error: None,
            planned: false,
            connected_ms: 1_000,
        };
        let notes = w.on_report(&rep(1_000, drop), 0);
        let Event::StreamNote(n) = &notes[0] else {
            panic!()
        };
        assert_eq!(n.what, StreamNoteKind::Disconnected);
        let ev = w.tick(4_000);
        let st = statuses(&ev);
        assert_eq!(
            (st[0].state, st[0].age_ms, st[0].expected),
            (StreamState::Down, Some(3_000), false)
        );
        assert_eq!(st[1].state, StreamState::Down);
        connected(&mut w, 4_100);
        let ev = w.tick(4_200);
        assert_eq!(statuses(&ev)[0].state, StreamState::Live);
        assert_eq!(statuses(&ev)[0].reconnects, 1);
        w.on_report(
            &rep(
                4_300,
                ReportKind::PlannedDisconnect {
                    notice: None,
                    code: Some("64008".into()),
                    message: "service upgrade".into(),
                },
            ),
            0,
        );
        let ev = w.tick(4_400);
        assert!(statuses(&ev)[0].expected);
    }

    #[test]
    fn a_socket_without_frames_is_dead_after_its_configured_threshold() {
        let mut w = Watcher::new("bybit", &spec(), 60_000, 2_000);
        connected(&mut w, 0);
        w.on_report(&rep(100, book_data(100)), 0);
        let ev = w.tick(2_000);
        assert_eq!(statuses(&ev)[0].state, StreamState::Live);
        let ev = w.tick(2_200);
        let conn = statuses(&ev)[0];
        assert_eq!(
            (conn.state, conn.threshold_ms),
            (StreamState::Dead, 2_000),
            "{conn:?}"
        );
    }
}
