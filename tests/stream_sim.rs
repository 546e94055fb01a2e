//! Stream workers against the simulator's WebSocket streams, both on
//! 127.0.0.1: every exchange shape connects, subscribes and delivers data;
//! every stream fault produces its report (and liveness verdict) within a
//! bound stated in each test, books are invalid until resynced, and
//! pings and heartbeats never count as data.
//!
//! Intervals are shortened (data every 20 ms, heartbeats and Binance pings
//! every 100 ms, client pings every 200 ms) so the file runs in seconds.
//! Bounds are checked on the reports' own timestamps, never by sleeping.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed unwrap is a failed test

mod common;

use std::sync::Arc;
use std::time::Duration;

use exwatch::model::ExchangeKind::{self, *};
use exwatch::sim::SimHandle;
use exwatch::sim::scenario::Scenario;
use exwatch::sim::stream::{StreamFault, StreamFaultKind, StreamScenario};
use exwatch::stream::Feed;
use exwatch::stream::Verdict;
use exwatch::stream::budget::ConnectGate;
use exwatch::stream::liveness::{Health, Liveness, LivenessConfig, SubKey};
use exwatch::stream::report::{ControlKind, InvalidReason, ReportKind, ResyncVia, StreamReport};
use exwatch::stream::spec::{ConnectLimit, StreamSpec, Subscription, Timing};
use exwatch::stream::worker::{self, SnapshotFetcher, WorkerIo};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

const HEARTBEAT_MS: i64 = 100;
const PING_MS: u64 = 200;
const PONG_TIMEOUT_MS: u64 = 400;

fn wall_ms() -> i64 {
    exwatch::clock::wall_ms()
}

use common::sim::stream_fault as fault;

/// The simulator with short stream intervals and `faults`; returns it with
/// its start time (unix ms, taken just before it started: fault windows
/// open no earlier than `start + at`).
async fn start_sim(faults: Vec<StreamFault>) -> (SimHandle, i64) {
    start_sim_with(faults, vec![]).await
}

/// [`start_sim`] with REST faults too.
async fn start_sim_with(
    faults: Vec<StreamFault>,
    rest: Vec<exwatch::sim::scenario::Fault>,
) -> (SimHandle, i64) {
    let scenario = Scenario {
        faults: rest,
        stream: StreamScenario {
            data_every: Duration::from_millis(20),
            heartbeat_every: Duration::from_millis(HEARTBEAT_MS as u64),
            server_ping_every: Duration::from_millis(100),
            pong_deadline: Duration::from_millis(600),
            notice_lead: Duration::from_millis(300),
            flood: 400,
            faults,
        },
        ..Scenario::default()
    };
    let start = wall_ms();
    let h = exwatch::sim::spawn("127.0.0.1:0".parse().expect("addr"), scenario)
        .await
        .expect("start the simulator");
    (h, start)
}

fn symbol(kind: ExchangeKind) -> &'static str {
    match kind {
        Binance | Bybit | Generic => "BTCUSDT",
        Okx => "BTC-USDT",
        Coinbase => "BTC-USD",
        Kraken => "BTC/USD",
    }
}

fn book_channel(kind: ExchangeKind) -> &'static str {
    match kind {
        Binance => "depth",
        Bybit => "orderbook.50",
        Okx => "books",
        Coinbase => "level2_batch",
        Kraken | Generic => "book",
    }
}

fn spec(sim: &SimHandle, kind: ExchangeKind, feeds: &[Feed]) -> StreamSpec {
    let subs = feeds
        .iter()
        .map(|f| Subscription::new(*f, symbol(kind)))
        .collect();
    let mut s =
        StreamSpec::new(kind, format!("{}-test", kind.as_str()), subs).with_url(sim.ws_url(kind));
    s.timing = Timing {
        ping_every: Timing::for_exchange(kind)
            .ping_every
            .map(|_| Duration::from_millis(PING_MS)),
        pong_timeout: Duration::from_millis(PONG_TIMEOUT_MS),
        connect_timeout: Duration::from_secs(2),
        write_timeout: Duration::from_secs(1),
        max_age: None,
        planned_grace: Duration::from_secs(5),
        healthy_after: Duration::from_secs(60),
    };
    s.reconnect.initial = Duration::from_millis(50);
    s.reconnect.max = Duration::from_millis(400);
    s
}

/// A depth each exchange accepts (Bybit 1/50/200/1000, Kraken 10/25/...).
fn book_feed(kind: ExchangeKind) -> Feed {
    match kind {
        Kraken => Feed::Book { depth: 10 },
        _ => Feed::Book { depth: 50 },
    }
}

struct Run {
    rx: mpsc::Receiver<StreamReport>,
    seen: Vec<StreamReport>,
    shutdown: CancellationToken,
}

impl Drop for Run {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

fn start(sim: &SimHandle, spec: StreamSpec, capacity: usize) -> Run {
    let (tx, rx) = mpsc::channel(capacity);
    let streams = sim.streams().clone();
    let fetcher = move |symbol: String, _limit: u16| {
        let s = streams.clone();
        async move {
            s.binance_depth(&symbol)
                .ok_or_else(|| format!("no book for {symbol}"))
        }
    };
    let snapshots: Arc<dyn SnapshotFetcher> = Arc::new(fetcher);
    let shutdown = CancellationToken::new();
    let io = WorkerIo {
        reports: tx,
        snapshots: Some(snapshots),
        gate: ConnectGate::new(ConnectLimit::for_exchange(spec.exchange)),
        shutdown: shutdown.clone(),
    };
    worker::spawn(spec, io);
    Run {
        rx,
        seen: Vec::new(),
        shutdown,
    }
}

impl Run {
    /// The next report matching `want` within `within`, keeping every
    /// report seen; fails with the reports seen when none came.
    async fn until(
        &mut self,
        within: Duration,
        what: &str,
        want: impl Fn(&ReportKind) -> bool,
    ) -> StreamReport {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            match tokio::time::timeout_at(deadline, self.rx.recv()).await {
                Ok(Some(r)) => {
                    self.seen.push(r.clone());
                    if want(&r.kind) {
                        return r;
                    }
                }
                _ => panic!("no {what} within {within:?}; saw:\n{}", self.dump()),
            }
        }
    }

    /// The next book verdict matching `want` within `within`, and whether
    /// the book was valid after it.
    async fn until_verdict(
        &mut self,
        within: Duration,
        what: &str,
        want: impl Fn(&Verdict) -> bool,
    ) -> (Verdict, bool) {
        let r = self
            .until(
                within,
                what,
                |r| matches!(r, ReportKind::Book { verdict, .. } if want(verdict)),
            )
            .await;
        match r.kind {
            ReportKind::Book { verdict, valid, .. } => (verdict, valid),
            other => panic!("{what}: not a book verdict: {other:?}"),
        }
    }

    fn dump(&self) -> String {
        let n = self.seen.len().saturating_sub(40);
        self.seen[n..]
            .iter()
            .map(|r| format!("{} {:?}", r.at_ms, r.kind))
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn saw(&self, want: impl Fn(&ReportKind) -> bool) -> bool {
        self.seen.iter().any(|r| want(&r.kind))
    }
}

fn is_data(r: &ReportKind, channel: &str) -> bool {
    matches!(r, ReportKind::Data { channel: c, .. } if c == channel)
}

fn served_book(r: &ReportKind, channel: &str) -> bool {
    matches!(r, ReportKind::Data { channel: c, bid: Some(_), ask: Some(_), .. } if c == channel)
}

#[tokio::test]
async fn every_exchange_shape_connects_subscribes_and_reports_data() {
    let (sim, _) = start_sim(vec![]).await;
    for kind in [Binance, Bybit, Okx, Coinbase, Kraken] {
        let mut run = start(
            &sim,
            spec(&sim, kind, &[book_feed(kind), Feed::Ticker, Feed::Trades]),
            4096,
        );
        let book = book_channel(kind);
        run.until(Duration::from_secs(3), "connected", |r| {
            matches!(r, ReportKind::Connected { .. })
        })
        .await;
        run.until(
            Duration::from_secs(3),
            "book ack",
            |r| matches!(r, ReportKind::Subscribed { channel, .. } if channel == book),
        )
        .await;
        // A valid book serves its top (Binance after the REST snapshot).
        run.until(Duration::from_secs(3), "served book", |r| {
            served_book(r, book)
        })
        .await;
        let ticker = exwatch::stream::spec::data_channel(kind, Feed::Ticker).unwrap();
        let trades = exwatch::stream::spec::data_channel(kind, Feed::Trades).unwrap();
        run.until(Duration::from_secs(3), "ticker data", |r| {
            is_data(r, &ticker)
        })
        .await;
        run.until(Duration::from_secs(3), "trade data", |r| {
            is_data(r, &trades)
        })
        .await;
        for _ in 0..15 {
            run.until(Duration::from_secs(3), "more book data", |r| {
                is_data(r, book)
            })
            .await;
        }
        assert!(
            !run.saw(|r| matches!(
                r,
                ReportKind::BookInvalid { .. }
                    | ReportKind::Unparsed { .. }
                    | ReportKind::Disconnected { .. }
                    | ReportKind::SubscribeRefused { .. }
            )),
            "{kind:?}:\n{}",
            run.dump()
        );
        let data = run.seen.iter().find(|r| is_data(&r.kind, book)).unwrap();
        assert_eq!(data.exchange, kind);
        if let ReportKind::Data {
            bytes, symbol: s, ..
        } = &data.kind
        {
            assert!(*bytes > 20);
            assert_eq!(s, symbol(kind));
        }
    }
}

/// Feed reports into liveness until `key` is judged by `want`, evaluating
/// every 10 ms of the wall clock; returns the verdict's health.
async fn until_health(
    run: &mut Run,
    live: &mut Liveness,
    key: &SubKey,
    within: Duration,
    want: impl Fn(&Health) -> bool,
) -> Health {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let tick = tokio::time::Instant::now() + Duration::from_millis(10);
        match tokio::time::timeout_at(tick.min(deadline), run.rx.recv()).await {
            Ok(Some(r)) => {
                live.observe(&r);
                run.seen.push(r);
            }
            Ok(None) => panic!("worker ended"),
            Err(_) if tokio::time::Instant::now() >= deadline => {
                panic!(
                    "no such verdict for {key:?}; now {:?}; saw:\n{}",
                    live.subscription(key, wall_ms()),
                    run.dump()
                )
            }
            Err(_) => {}
        }
        if let Some(v) = live.subscription(key, wall_ms()) {
            if want(&v.health) {
                return v.health;
            }
        }
    }
}

fn key(kind: ExchangeKind, channel: &str) -> SubKey {
    SubKey {
        exchange: kind,
        channel: channel.into(),
        symbol: symbol(kind).into(),
    }
}

fn liveness() -> Liveness {
    Liveness::new(LivenessConfig {
        zombie_after_ms: 2 * HEARTBEAT_MS,
        dead_after_ms: 3 * HEARTBEAT_MS,
        unacked_after_ms: 1_000,
        storm_reconnects: 3,
        storm_window_ms: 10_000,
    })
}

#[tokio::test]
async fn heartbeats_only_is_a_zombie_and_heartbeats_never_count_as_data() {
    for kind in [Kraken, Coinbase, Binance] {
        let (sim, _) = start_sim(vec![fault(
            StreamFaultKind::HeartbeatsOnly,
            kind,
            800,
            60_000,
        )])
        .await;
        let mut run = start(&sim, spec(&sim, kind, &[book_feed(kind)]), 4096);
        let mut live = liveness();
        let k = key(kind, book_channel(kind));
        until_health(&mut run, &mut live, &k, Duration::from_secs(3), |h| {
            matches!(
                h,
                Health::Live {
                    data_age_ms: Some(_)
                }
            )
        })
        .await;
        let h = until_health(&mut run, &mut live, &k, Duration::from_secs(3), |h| {
            !matches!(h, Health::Live { .. })
        })
        .await;
        // A zombie, not dead: the socket still delivers control frames; and
        // declared within one evaluation tick of the 2-heartbeat threshold.
        match h {
            Health::Zombie {
                silent_ms,
                threshold_ms,
            } => {
                assert_eq!(threshold_ms, 2 * HEARTBEAT_MS);
                assert!(silent_ms <= threshold_ms + HEARTBEAT_MS, "{silent_ms}");
            }
            other => panic!("{kind:?}: {other:?}\n{}", run.dump()),
        }
        // Control frames kept coming after the last data report, and none
        // of them moved the subscription's clock.
        let last_data = run
            .seen
            .iter()
            .rposition(|r| r.kind.is_frame() && matches!(r.kind, ReportKind::Data { .. }))
            .unwrap();
        let later = &run.seen[last_data + 1..];
        let controls = later
            .iter()
            .filter(|r| matches!(r.kind, ReportKind::Control { .. }))
            .count();
        assert!(
            controls >= 1,
            "{kind:?}: no control frames while silent\n{}",
            run.dump()
        );
        let want = match kind {
            Binance => ControlKind::ServerPing,
            _ => ControlKind::Heartbeat,
        };
        until_health(&mut run, &mut live, &k, Duration::from_secs(2), |h| {
            matches!(h, Health::Zombie { .. })
        })
        .await;
        run.until(
            Duration::from_secs(2),
            "control frame",
            |r| matches!(r, ReportKind::Control { control } if *control == want),
        )
        .await;
        assert!(matches!(
            live.subscription(&k, wall_ms()).unwrap().health,
            Health::Zombie { .. }
        ));
        assert!(!live.connections(wall_ms())[0].dead);
    }
}

#[tokio::test]
async fn a_silent_socket_is_dead_and_a_stall_with_pongs_is_a_zombie() {
    // Coinbase: nothing at all (no heartbeats, no pings to answer): dead.
    let (sim_c, _) = start_sim(vec![fault(StreamFaultKind::Stall, Coinbase, 800, 60_000)]).await;
    let mut run = start(&sim_c, spec(&sim_c, Coinbase, &[Feed::Ticker]), 4096);
    let mut live = liveness();
    let k = key(Coinbase, "ticker");
    until_health(&mut run, &mut live, &k, Duration::from_secs(3), |h| {
        matches!(
            h,
            Health::Live {
                data_age_ms: Some(_)
            }
        )
    })
    .await;
    let h = until_health(&mut run, &mut live, &k, Duration::from_secs(3), |h| {
        matches!(h, Health::Dead { .. })
    })
    .await;
    if let Health::Dead {
        silent_ms,
        threshold_ms,
    } = h
    {
        assert!(silent_ms <= threshold_ms + HEARTBEAT_MS, "{silent_ms}");
    }
    assert!(live.connections(wall_ms())[0].dead);
    // Bybit: the server stalls but answers the client's pings: the pongs
    // keep the socket alive and the subscription is a zombie.
    stalled_with_pongs_is_a_zombie(Bybit, "tickers", |_| {}).await;
}

/// `kind`'s ticker stream stalls (from 800 ms) while the server still
/// answers the worker's pings: live first, then a zombie (not dead), and
/// pongs were seen. `while_live` checks the run once data has flowed.
async fn stalled_with_pongs_is_a_zombie(kind: ExchangeKind, channel: &str, while_live: fn(&Run)) {
    let (sim, _) = start_sim(vec![fault(StreamFaultKind::Stall, kind, 800, 60_000)]).await;
    let mut run = start(&sim, spec(&sim, kind, &[Feed::Ticker]), 4096);
    let mut live = Liveness::new(LivenessConfig {
        zombie_after_ms: 2 * PING_MS as i64,
        dead_after_ms: 3 * PING_MS as i64,
        ..LivenessConfig::default()
    });
    let k = key(kind, channel);
    until_health(&mut run, &mut live, &k, Duration::from_secs(3), |h| {
        matches!(
            h,
            Health::Live {
                data_age_ms: Some(_)
            }
        )
    })
    .await;
    while_live(&run);
    let h = until_health(&mut run, &mut live, &k, Duration::from_secs(3), |h| {
        !matches!(h, Health::Live { .. })
    })
    .await;
    assert!(matches!(h, Health::Zombie { .. }), "{h:?}\n{}", run.dump());
    assert!(run.saw(|r| matches!(
        r,
        ReportKind::Control {
            control: ControlKind::Pong
        }
    )));
}

#[tokio::test]
async fn an_unanswered_ping_drops_the_connection_and_it_comes_back() {
    let (sim, start_ms) = start_sim(vec![fault(StreamFaultKind::NoPong, Bybit, 600, 700)]).await;
    let mut run = start(&sim, spec(&sim, Bybit, &[Feed::Ticker]), 4096);
    run.until(Duration::from_secs(2), "a pong", |r| {
        matches!(
            r,
            ReportKind::Control {
                control: ControlKind::Pong
            }
        )
    })
    .await;
    let missed = run
        .until(Duration::from_secs(3), "pong missed", |r| {
            matches!(r, ReportKind::PongMissed { .. })
        })
        .await;
    // At most one ping interval after the fault starts, plus the deadline
    // and the write task's tick (a quarter of the smaller of the two).
    let bound = 600 + PING_MS + PONG_TIMEOUT_MS + PING_MS / 4 + 100;
    assert!(
        missed.at_ms - start_ms <= bound as i64,
        "{} > {bound}",
        missed.at_ms - start_ms
    );
    let d = run
        .until(Duration::from_secs(1), "disconnected", |r| {
            matches!(r, ReportKind::Disconnected { .. })
        })
        .await;
    assert!(
        matches!(&d.kind, ReportKind::Disconnected { reason, planned: false, .. } if reason == "pong missed")
    );
    run.until(Duration::from_secs(3), "reconnected", |r| {
        matches!(r, ReportKind::Connected { .. })
    })
    .await;
    run.until(Duration::from_secs(3), "ticker again", |r| {
        is_data(r, "tickers")
    })
    .await;
}

#[tokio::test]
async fn a_slow_consumer_never_makes_a_binance_pong_late_and_lagged_books_are_invalid() {
    let (sim, _) = start_sim(vec![fault(
        StreamFaultKind::SlowConsumer,
        Binance,
        600,
        1_500,
    )])
    .await;
    let mut s = spec(&sim, Binance, &[book_feed(Binance)]);
    s.queue = 64;
    let mut run = start(&sim, s, 8);
    run.until(Duration::from_secs(3), "served book", |r| {
        served_book(r, "depth")
    })
    .await;
    // Stop reading reports for longer than the server's pong deadline.
    tokio::time::sleep(Duration::from_millis(1_800)).await;
    let lagged = run
        .until(Duration::from_secs(3), "lagged", |r| {
            matches!(r, ReportKind::Lagged { .. })
        })
        .await;
    assert!(matches!(lagged.kind, ReportKind::Lagged { dropped } if dropped > 0));
    run.until(Duration::from_secs(2), "invalid book", |r| {
        matches!(
            r,
            ReportKind::BookInvalid {
                reason: InvalidReason::Lagged { .. } | InvalidReason::Gap { .. },
                ..
            }
        )
    })
    .await;
    run.until(Duration::from_secs(5), "resync", |r| {
        matches!(r, ReportKind::BookResynced { .. })
    })
    .await;
    let stats = sim.streams().stats();
    assert_eq!(stats.pong_timeouts, 0, "a server ping went unanswered");
    assert!(
        !run.saw(|r| matches!(r, ReportKind::Disconnected { .. })),
        "{}",
        run.dump()
    );
}

/// The book's reports from its invalidation to its resync: no served top.
fn never_served_while_invalid(run: &Run, channel: &str) {
    let mut invalid = false;
    for r in &run.seen {
        match &r.kind {
            ReportKind::BookInvalid { channel: c, .. } if c == channel => invalid = true,
            ReportKind::BookResynced { channel: c, .. } if c == channel => invalid = false,
            k if invalid && served_book(k, channel) => {
                panic!("served while invalid:\n{}", run.dump())
            }
            _ => {}
        }
    }
}

#[tokio::test]
async fn a_sequence_gap_invalidates_the_book_until_it_is_resynced() {
    for (kind, via) in [
        (Binance, ResyncVia::RestSnapshot),
        (Bybit, ResyncVia::Resubscribe),
        (Okx, ResyncVia::Resubscribe),
    ] {
        let (sim, _) = start_sim(vec![fault(StreamFaultKind::Gap, kind, 700, 2_000)]).await;
        let mut run = start(&sim, spec(&sim, kind, &[book_feed(kind)]), 4096);
        let ch = book_channel(kind);
        run.until(Duration::from_secs(3), "served book", |r| {
            served_book(r, ch)
        })
        .await;
        let (v, valid) = run
            .until_verdict(Duration::from_secs(3), "gap verdict", |v| {
                matches!(v, Verdict::Gap { .. })
            })
            .await;
        assert!(!valid);
        if let Verdict::Gap { expected, received } = v {
            assert!(received > expected, "{kind:?}: {expected} {received}");
        }
        // The invalidation is the very next report of the same frame.
        let next = run.until(Duration::from_secs(1), "invalid", |_| true).await;
        assert!(
            matches!(
                next.kind,
                ReportKind::BookInvalid {
                    reason: InvalidReason::Gap { .. },
                    ..
                }
            ),
            "{:?}",
            next.kind
        );
        let resync = run
            .until(Duration::from_secs(3), "resynced", |r| {
                matches!(r, ReportKind::BookResynced { .. })
            })
            .await;
        assert!(
            matches!(resync.kind, ReportKind::BookResynced { via: v, .. } if v == via),
            "{kind:?} {:?}",
            resync.kind
        );
        run.until(Duration::from_secs(2), "served again", |r| {
            served_book(r, ch)
        })
        .await;
        never_served_while_invalid(&run, ch);
        assert_one_connection(&run, &sim, kind, (kind != Binance) as u64);
    }
}

/// The book was resynced on its first connection: no reconnect, and
/// `unsubscribes` unsubscribe requests reached the simulator.
fn assert_one_connection(run: &Run, sim: &SimHandle, kind: ExchangeKind, unsubscribes: u64) {
    assert!(
        !run.saw(|r| matches!(r, ReportKind::Disconnected { .. })),
        "{kind:?}: {}",
        run.dump()
    );
    let stats = sim.streams().stats();
    assert_eq!(
        stats.connections.values().sum::<u64>(),
        1,
        "{kind:?}: {stats:?}"
    );
    assert_eq!(stats.unsubscribes, unsubscribes, "{kind:?}: {stats:?}");
}

#[tokio::test]
async fn a_kraken_checksum_mismatch_invalidates_the_book_until_resynced() {
    let (sim, _) = start_sim(vec![fault(
        StreamFaultKind::ChecksumMismatch,
        Kraken,
        700,
        2_000,
    )])
    .await;
    let mut run = start(&sim, spec(&sim, Kraken, &[book_feed(Kraken)]), 4096);
    run.until(Duration::from_secs(3), "served book", |r| {
        served_book(r, "book")
    })
    .await;
    let (v, _) = run
        .until_verdict(Duration::from_secs(3), "checksum verdict", |v| {
            matches!(v, Verdict::ChecksumMismatch { .. })
        })
        .await;
    if let Verdict::ChecksumMismatch { expected, computed } = v {
        assert_ne!(expected, computed);
        assert_eq!(expected ^ computed, 0x5a5a_5a5a);
    }
    run.until(Duration::from_secs(1), "invalid", |r| {
        matches!(
            r,
            ReportKind::BookInvalid {
                reason: InvalidReason::Checksum { .. },
                ..
            }
        )
    })
    .await;
    run.until(Duration::from_secs(3), "resynced", |r| {
        matches!(
            r,
            ReportKind::BookResynced {
                via: ResyncVia::Resubscribe,
                ..
            }
        )
    })
    .await;
    never_served_while_invalid(&run, "book");
    assert_one_connection(&run, &sim, Kraken, 1);
    assert!(!run.saw(|r| matches!(
        r,
        ReportKind::Book {
            verdict: Verdict::Gap { .. },
            ..
        }
    )));
}

#[tokio::test]
async fn duplicates_are_stale_and_out_of_order_updates_are_gaps() {
    let (sim, _) = start_sim(vec![fault(StreamFaultKind::Duplicate, Bybit, 700, 2_000)]).await;
    let mut run = start(&sim, spec(&sim, Bybit, &[book_feed(Bybit)]), 4096);
    run.until(Duration::from_secs(3), "stale duplicate", |r| {
        matches!(
            r,
            ReportKind::Book {
                verdict: Verdict::Stale { .. },
                valid: true,
                ..
            }
        )
    })
    .await;
    for _ in 0..20 {
        run.until(Duration::from_secs(1), "book data", |r| {
            served_book(r, "orderbook.50")
        })
        .await;
    }
    assert!(
        !run.saw(|r| matches!(r, ReportKind::BookInvalid { .. })),
        "{}",
        run.dump()
    );

    // Binance: the later update first is a gap (its `U` is past `u`+1).
    let (sim, _) = start_sim(vec![fault(
        StreamFaultKind::OutOfOrder,
        Binance,
        700,
        2_000,
    )])
    .await;
    let mut run = start(&sim, spec(&sim, Binance, &[book_feed(Binance)]), 4096);
    run.until(Duration::from_secs(3), "served book", |r| {
        served_book(r, "depth")
    })
    .await;
    run.until(Duration::from_secs(3), "gap", |r| {
        matches!(
            r,
            ReportKind::BookInvalid {
                reason: InvalidReason::Gap { .. },
                ..
            }
        )
    })
    .await;
    run.until(Duration::from_secs(3), "resynced", |r| {
        matches!(r, ReportKind::BookResynced { .. })
    })
    .await;
    never_served_while_invalid(&run, "depth");
}

#[tokio::test]
async fn planned_disconnects_are_announced_and_expected() {
    for kind in [Binance, Okx, Kraken, Coinbase] {
        let (sim, _) = start_sim(vec![fault(
            StreamFaultKind::PlannedDisconnect,
            kind,
            600,
            3_000,
        )])
        .await;
        let mut run = start(&sim, spec(&sim, kind, &[Feed::Ticker]), 4096);
        let mut live = liveness();
        run.until(Duration::from_secs(2), "connected", |r| {
            matches!(r, ReportKind::Connected { .. })
        })
        .await;
        let notice = run
            .until(Duration::from_secs(3), "notice", |r| {
                matches!(r, ReportKind::PlannedDisconnect { .. })
            })
            .await;
        let d = run
            .until(Duration::from_secs(2), "disconnect", |r| {
                matches!(r, ReportKind::Disconnected { .. })
            })
            .await;
        assert!(
            matches!(d.kind, ReportKind::Disconnected { planned: true, .. }),
            "{kind:?} {:?}",
            d.kind
        );
        // The sim closes 300 ms after its notice; the worker's grace is 5 s.
        assert!(d.at_ms - notice.at_ms < 1_000);
        for r in &run.seen {
            live.observe(r);
        }
        assert!(live.connections(d.at_ms)[0].expected, "{kind:?}");
        run.until(Duration::from_secs(3), "reconnected", |r| {
            matches!(r, ReportKind::Connected { .. })
        })
        .await;
    }
}

#[tokio::test]
async fn a_server_close_is_reported_with_its_code_and_the_worker_reconnects() {
    let (sim, _) = start_sim(vec![fault(StreamFaultKind::ServerClose, Okx, 500, 1_000)]).await;
    let mut run = start(&sim, spec(&sim, Okx, &[Feed::Ticker]), 4096);
    let d = run
        .until(Duration::from_secs(3), "disconnect", |r| {
            matches!(r, ReportKind::Disconnected { .. })
        })
        .await;
    match &d.kind {
        ReportKind::Disconnected {
            code,
            reason,
            planned,
            ..
        } => {
            assert_eq!(*code, Some(4004));
            assert_eq!(reason, "No data received in 30s.");
            assert!(!planned);
        }
        _ => unreachable!(),
    }
    run.until(Duration::from_secs(1), "backoff", |r| {
        matches!(r, ReportKind::ReconnectScheduled { .. })
    })
    .await;
    run.until(Duration::from_secs(3), "reconnected", |r| {
        matches!(r, ReportKind::Connected { .. })
    })
    .await;
    run.until(Duration::from_secs(3), "subscribed again", |r| {
        matches!(r, ReportKind::Subscribed { .. })
    })
    .await;
}

#[tokio::test]
async fn refused_reconnects_back_off_count_as_a_storm_and_recover() {
    let (sim, _) = start_sim(vec![fault(
        StreamFaultKind::RefuseConnections,
        Kraken,
        500,
        1_500,
    )])
    .await;
    let mut run = start(&sim, spec(&sim, Kraken, &[Feed::Ticker]), 4096);
    let mut live = liveness();
    run.until(Duration::from_secs(2), "closed", |r| {
        matches!(
            r,
            ReportKind::Disconnected {
                code: Some(1012),
                ..
            }
        )
    })
    .await;
    run.until(Duration::from_secs(2), "refused", |r| {
        matches!(r, ReportKind::Disconnected { error: Some(e), connected_ms: 0, .. } if e.contains("429"))
    })
    .await;
    run.until(
        Duration::from_secs(4),
        "recovered",
        |r| matches!(r, ReportKind::Connected { attempt, .. } if *attempt > 1),
    )
    .await;
    let backoffs: Vec<u64> = run
        .seen
        .iter()
        .filter_map(|r| match r.kind {
            ReportKind::ReconnectScheduled { backoff_ms, .. } => Some(backoff_ms),
            _ => None,
        })
        .collect();
    assert!(backoffs.len() >= 3, "{backoffs:?}");
    assert!(
        backoffs.iter().any(|b| *b >= 150),
        "backoff never grew: {backoffs:?}"
    );
    assert!(backoffs.iter().all(|b| *b <= 400), "{backoffs:?}");
    for r in &run.seen {
        live.observe(r);
    }
    let storm = live.connections(wall_ms())[0].storm;
    assert!(storm.is_some_and(|n| n > 3), "{storm:?}");
    assert_eq!(
        sim.streams()
            .stats()
            .refused
            .get("kraken")
            .copied()
            .unwrap_or(0) as usize,
        backoffs.len() - 1
    );
}

#[tokio::test]
async fn a_refused_subscription_reports_the_exchanges_error() {
    let (sim, _) = start_sim(vec![]).await;
    for kind in [Kraken, Bybit, Okx] {
        let bad = match kind {
            Kraken => "BAD/USD",
            Okx => "BAD-USDT",
            _ => "BADUSDT",
        };
        let mut s = spec(&sim, kind, &[Feed::Ticker]);
        s.subscriptions.push(Subscription::new(Feed::Ticker, bad));
        let mut run = start(&sim, s, 4096);
        let r = run
            .until(Duration::from_secs(3), "refusal", |r| {
                matches!(r, ReportKind::SubscribeRefused { .. })
            })
            .await;
        let ReportKind::SubscribeRefused { message, .. } = r.kind else {
            unreachable!()
        };
        assert!(
            message.contains("BAD") || message.contains("handler not found"),
            "{message}"
        );
        run.until(
            Duration::from_secs(3),
            "good data",
            |r| matches!(r, ReportKind::Data { symbol, .. } if symbol == symbol_of(kind)),
        )
        .await;
    }
}

fn symbol_of(kind: ExchangeKind) -> &'static str {
    symbol(kind)
}

#[tokio::test]
async fn the_simulator_closes_a_binance_client_that_never_pongs() {
    // The check the slow-consumer test relies on can fail: a client that
    // does not read (so never pongs) is closed once the deadline passes.
    use futures::StreamExt;
    let (sim, _) = start_sim(vec![]).await;
    let (mut ws, _) = tokio_tungstenite::connect_async(sim.ws_url(Binance))
        .await
        .expect("connect");
    tokio::time::sleep(Duration::from_millis(900)).await;
    let mut close = None;
    while let Ok(Some(m)) = tokio::time::timeout(Duration::from_secs(2), ws.next()).await {
        if let Ok(tokio_tungstenite::tungstenite::Message::Close(f)) = m {
            close = f;
            break;
        }
    }
    let f = close.expect("a close frame");
    assert_eq!(u16::from(f.code), 1008);
    assert_eq!(sim.streams().stats().pong_timeouts, 1);
}

#[tokio::test]
async fn okx_pings_when_idle_so_a_stalled_okx_stream_is_a_zombie_not_dead() {
    stalled_with_pongs_is_a_zombie(Okx, "tickers", |run| {
        // While data flows the worker never pings (OKX: only when idle).
        assert!(!run.saw(|r| matches!(
            r,
            ReportKind::Control {
                control: ControlKind::Pong
            }
        )));
    })
    .await;
}

#[tokio::test]
async fn the_age_limit_is_a_planned_reconnect() {
    let (sim, _) = start_sim(vec![]).await;
    let mut s = spec(&sim, Binance, &[Feed::Trades]);
    s.timing.max_age = Some(Duration::from_millis(500));
    let mut run = start(&sim, s, 4096);
    let c = run
        .until(Duration::from_secs(2), "connected", |r| {
            matches!(r, ReportKind::Connected { .. })
        })
        .await;
    let p = run
        .until(Duration::from_secs(2), "age notice", |r| {
            matches!(r, ReportKind::PlannedDisconnect { notice: None, .. })
        })
        .await;
    assert!(p.at_ms - c.at_ms >= 500);
    run.until(Duration::from_secs(1), "planned drop", |r| {
        matches!(r, ReportKind::Disconnected { planned: true, .. })
    })
    .await;
    let r = run
        .until(Duration::from_secs(1), "no backoff", |r| {
            matches!(r, ReportKind::ReconnectScheduled { .. })
        })
        .await;
    assert!(matches!(
        r.kind,
        ReportKind::ReconnectScheduled { backoff_ms: 0, .. }
    ));
    run.until(Duration::from_secs(2), "reconnected", |r| {
        matches!(r, ReportKind::Connected { attempt: 2, .. })
    })
    .await;
}

#[tokio::test]
async fn reconnects_stay_within_the_exchanges_connection_budget() {
    // OKX allows 3 connection requests per second; refused handshakes make
    // the worker retry every 50-400 ms, so the budget must hold it back.
    let (sim, _) = start_sim(vec![fault(
        StreamFaultKind::RefuseConnections,
        Okx,
        300,
        2_500,
    )])
    .await;
    let mut s = spec(&sim, Okx, &[Feed::Ticker]);
    s.reconnect.max = Duration::from_millis(100);
    let mut run = start(&sim, s, 4096);
    run.until(Duration::from_secs(2), "budget wait", |r| {
        matches!(r, ReportKind::ReconnectScheduled { budget_wait_ms, .. } if *budget_wait_ms > 0)
    })
    .await;
    run.until(
        Duration::from_secs(4),
        "recovered",
        |r| matches!(r, ReportKind::Connected { attempt, .. } if *attempt > 1),
    )
    .await;
    let attempts: Vec<i64> = run
        .seen
        .iter()
        .filter(|r| matches!(r.kind, ReportKind::Connecting { .. }))
        .map(|r| r.at_ms)
        .collect();
    assert!(attempts.len() >= 5, "{attempts:?}");
    for w in attempts.windows(4) {
        // Any 4 consecutive attempts span at least the 1 s window (a
        // few ms of slack between the budget's clock and the reports').
        assert!(w[3] - w[0] >= 995, "{attempts:?}");
    }
}

#[tokio::test]
async fn without_a_snapshot_fetcher_a_binance_book_is_never_served() {
    let (sim, _) = start_sim(vec![]).await;
    let (tx, rx) = mpsc::channel(4096);
    let shutdown = CancellationToken::new();
    let io = WorkerIo {
        reports: tx,
        snapshots: None,
        gate: ConnectGate::for_exchange(Binance),
        shutdown: shutdown.clone(),
    };
    worker::spawn(spec(&sim, Binance, &[book_feed(Binance), Feed::Trades]), io);
    let mut run = Run {
        rx,
        seen: Vec::new(),
        shutdown,
    };
    let r = run
        .until(Duration::from_secs(3), "snapshot failure", |r| {
            matches!(r, ReportKind::SnapshotFailed { .. })
        })
        .await;
    assert!(
        matches!(&r.kind, ReportKind::SnapshotFailed { symbol, error, .. } if symbol == "BTCUSDT" && error.contains("fetcher"))
    );
    for _ in 0..20 {
        run.until(Duration::from_secs(1), "depth data", |r| {
            is_data(r, "depth")
        })
        .await;
    }
    run.until(Duration::from_secs(1), "trades", |r| is_data(r, "trade"))
        .await;
    assert!(!run.saw(|r| served_book(r, "depth")));
}

#[tokio::test]
async fn a_binance_resync_fetches_the_rest_depth_snapshot_and_survives_its_rate_limit() {
    use exwatch::model::EndpointKind;
    use exwatch::sim::scenario::{Fault, FaultKind};
    // The depth snapshot over real HTTP, as the monitor will fetch it; a
    // 429 on it while the book is invalid only delays the resync.
    let rest = vec![Fault {
        at: Duration::from_millis(600),
        duration: Duration::from_millis(700),
        fault: FaultKind::RateLimit,
        exchange: Some(Binance),
        endpoint: Some(EndpointKind::Book),
        latency: None,
        jitter: None,
        status: None,
        retry_after: Some(1),
    }];
    let (sim, _) =
        start_sim_with(vec![fault(StreamFaultKind::Gap, Binance, 800, 2_000)], rest).await;
    let base = sim.base_url(Binance);
    let fetcher = move |symbol: String, limit: u16| {
        let url = format!("{base}/api/v3/depth?symbol={symbol}&limit={limit}");
        async move {
            let resp = reqwest::get(&url).await.map_err(|e| e.to_string())?;
            let status = resp.status();
            let body = resp.text().await.map_err(|e| e.to_string())?;
            if !status.is_success() {
                return Err(format!("HTTP {status}"));
            }
            exwatch::stream::binance::parse_rest_depth(&body, &symbol).map_err(|e| e.to_string())
        }
    };
    let (tx, rx) = mpsc::channel(4096);
    let shutdown = CancellationToken::new();
    let io = WorkerIo {
        reports: tx,
        snapshots: Some(Arc::new(fetcher)),
        gate: ConnectGate::for_exchange(Binance),
        shutdown: shutdown.clone(),
    };
    worker::spawn(spec(&sim, Binance, &[book_feed(Binance)]), io);
    let mut run = Run {
        rx,
        seen: Vec::new(),
        shutdown,
    };
    run.until(Duration::from_secs(3), "served book", |r| {
        served_book(r, "depth")
    })
    .await;
    run.until(Duration::from_secs(3), "gap", |r| {
        matches!(
            r,
            ReportKind::BookInvalid {
                reason: InvalidReason::Gap { .. },
                ..
            }
        )
    })
    .await;
    let failed = run
        .until(Duration::from_secs(2), "429", |r| {
            matches!(r, ReportKind::SnapshotFailed { .. })
        })
        .await;
    assert!(
        matches!(&failed.kind, ReportKind::SnapshotFailed { error, .. } if error.contains("429")),
        "{:?}",
        failed.kind
    );
    run.until(Duration::from_secs(4), "resynced", |r| {
        matches!(
            r,
            ReportKind::BookResynced {
                via: ResyncVia::RestSnapshot,
                ..
            }
        )
    })
    .await;
    run.until(Duration::from_secs(1), "served again", |r| {
        served_book(r, "depth")
    })
    .await;
    never_served_while_invalid(&run, "depth");
    assert!(!run.saw(|r| matches!(r, ReportKind::Disconnected { .. })));
}
