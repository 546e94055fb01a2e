//! Issue #16, end to end: `[[exchanges.streams]]` in a real config, the
//! monitor's stream workers and watchers, the stream detectors and the
//! alert engine, against the simulator's WebSocket streams on 127.0.0.1
//! with one stream fault each. What the operator would see is read from
//! the monitor's snapshots (alerts, stream rows) and its journal (notes).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed unwrap is a failed test

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use exwatch::model::ExchangeKind::{self, *};
use exwatch::model::{Alert, AlertState, BookState, Severity, StreamState};
use exwatch::monitor::Monitor;
use exwatch::sim::SimHandle;
use exwatch::sim::scenario::Scenario;
use exwatch::sim::stream::{StreamFault, StreamFaultKind, StreamScenario};
use exwatch::state::{EndpointView, Snapshot};

use common::sim::stream_fault as fault;

/// The simulator with fast streams (data every 50 ms, heartbeats every
/// 200 ms) and these stream faults.
async fn sim(faults: Vec<StreamFault>) -> SimHandle {
    common::sim::start(Scenario {
        stream: StreamScenario {
            data_every: Duration::from_millis(50),
            heartbeat_every: Duration::from_millis(200),
            server_ping_every: Duration::from_millis(200),
            pong_deadline: Duration::from_secs(2),
            notice_lead: Duration::from_millis(500),
            faults,
            ..StreamScenario::default()
        },
        ..Scenario::default()
    })
    .await
}

/// A config watching one exchange's streams only (ticker and book of its
/// default symbol), with short stream alert timings.
fn config(
    sim: &SimHandle,
    kind: ExchangeKind,
    journal: &std::path::Path,
) -> exwatch::config::Config {
    let k = kind.as_str();
    let ping = match kind {
        Bybit | Okx | Kraken => "ping_every = \"1s\"\npong_timeout = \"3s\"\n",
        _ => "",
    };
    let text = format!(
        "[journal]\npath = \"{}\"\n\
         [alerts.detect.stream]\ndown_after = \"2s\"\nclear_for = \"1s\"\n\
         [[exchanges]]\nname = \"{k}\"\nkind = \"{k}\"\n\
         [[exchanges.streams]]\nurl = \"{}\"\nfeeds = [\"ticker\", \"book\"]\nsilent_after = \"1500ms\"\n{ping}",
        journal.display(),
        sim.ws_url(kind),
    );
    exwatch::config::parse("(stream alerts)", &text).expect("config")
}

struct Watched {
    monitor: Monitor,
    sim: SimHandle,
    journal: std::path::PathBuf,
    _dir: tempfile::TempDir,
    t0: Instant,
}

async fn watch(kind: ExchangeKind, faults: Vec<StreamFault>) -> Watched {
    let sim = sim(faults).await;
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("journal.jsonl");
    let cfg = config(&sim, kind, &journal);
    let monitor = Monitor::start(&cfg, 0).await.expect("monitor");
    Watched {
        monitor,
        sim,
        journal,
        _dir: dir,
        t0: Instant::now(),
    }
}

impl Watched {
    fn snap(&self) -> Arc<Snapshot> {
        self.monitor.snapshots.borrow().clone()
    }

    /// Wait (up to `within`) until `pred` holds on a snapshot; the last
    /// snapshot either way.
    async fn until(
        &self,
        within: Duration,
        pred: impl Fn(&Snapshot) -> bool,
    ) -> (bool, Arc<Snapshot>) {
        let deadline = Instant::now() + within;
        loop {
            let snap = self.snap();
            if pred(&snap) {
                return (true, snap);
            }
            if Instant::now() > deadline {
                return (false, snap);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Wait (up to `within`) for an open alert of `kind`; fails saying
    /// `why`, with the rows and alerts seen.
    async fn fired(&self, kind: &str, within: Duration, why: &str) -> Arc<Snapshot> {
        let (fired, snap) = self.until(within, |s| !open(s, kind).is_empty()).await;
        assert!(fired, "{why}:\n{}\n{}", rows(&snap), alerts(&snap));
        snap
    }

    async fn stop(self) -> String {
        self.monitor.stop().await;
        self.sim.stop().await;
        std::fs::read_to_string(&self.journal).unwrap_or_default()
    }
}

fn open<'a>(snap: &'a Snapshot, kind: &str) -> Vec<&'a Alert> {
    snap.alerts
        .iter()
        .filter(|a| a.state.is_open() && a.kind.name() == kind)
        .collect()
}

fn row<'a>(snap: &'a Snapshot, name: &str) -> Option<&'a EndpointView> {
    snap.exchanges
        .iter()
        .flat_map(|e| e.endpoints.iter())
        .find(|e| e.name == name)
}

fn rows(snap: &Snapshot) -> String {
    snap.exchanges
        .iter()
        .flat_map(|e| e.endpoints.iter())
        .map(|e| {
            let st = e.stream.as_ref().and_then(|s| s.status.as_ref());
            format!(
                "{}: {:?} book {:?} {}",
                e.name,
                st.map(|s| s.state),
                st.and_then(|s| s.book),
                st.map(|s| s.detail.as_str()).unwrap_or("")
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn alerts(snap: &Snapshot) -> String {
    common::alert_lines(&snap.alerts)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_connection_is_one_zombie_page_and_clears_when_data_returns() {
    // OKX: the socket stays open and answers pings; data stops for 5 s.
    let w = watch(Okx, vec![fault(StreamFaultKind::Stall, Okx, 3_000, 5_000)]).await;
    let (live, snap) = w
        .until(Duration::from_secs(3), |s| {
            row(s, "ws:book:BTC-USDT")
                .and_then(|r| r.stream.as_ref()?.status.as_ref())
                .is_some_and(|st| {
                    st.state == StreamState::Live && st.book == Some(BookState::Valid)
                })
        })
        .await;
    assert!(live, "the book never went live:\n{}", rows(&snap));
    let snap = w
        .fired("stream_zombie", Duration::from_secs(8), "no zombie alert")
        .await;
    // silent_after (1.5 s) after the stall began, plus a status tick or two.
    let at = w.t0.elapsed();
    assert!(
        at < Duration::from_millis(3_000 + 1_500 + 2_500),
        "zombie after {at:?}"
    );
    let z = open(&snap, "stream_zombie");
    assert_eq!(
        z.len(),
        1,
        "one page for one silent socket:\n{}",
        alerts(&snap)
    );
    assert_eq!(z[0].endpoint.as_deref(), Some("okx-ws"));
    assert_eq!(z[0].severity, Severity::Critical);
    assert!(z[0].title.contains("zombie"), "{}", z[0].title);
    let conn = row(&snap, "okx-ws").unwrap();
    assert!(!conn.healthy());
    // Data returns at 8 s: the alert resolves.
    let (cleared, snap) = w
        .until(Duration::from_secs(8), |s| {
            s.alerts
                .iter()
                .any(|a| a.kind.name() == "stream_zombie" && a.state == AlertState::Resolved)
                && open(s, "stream_zombie").is_empty()
        })
        .await;
    assert!(
        cleared,
        "the zombie alert did not resolve:\n{}\n{}",
        rows(&snap),
        alerts(&snap)
    );
    let journal = w.stop().await;
    assert!(
        journal.contains("\"event\":\"stream_status\""),
        "statuses are journaled"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sequence_gap_invalidates_the_book_at_once_alerts_with_the_ids_and_resyncs() {
    let w = watch(Bybit, vec![fault(StreamFaultKind::Gap, Bybit, 2_500, 200)]).await;
    let (fired, snap) = w
        .until(Duration::from_secs(8), |s| {
            !open(s, "book_invalid").is_empty()
                || s.alerts.iter().any(|a| a.kind.name() == "book_invalid")
        })
        .await;
    if !fired {
        let journal = w.stop().await;
        let notes: Vec<&str> = journal
            .lines()
            .filter(|l| l.contains("stream_note"))
            .collect();
        panic!(
            "no book_invalid alert:\n{}\n{}\n{}",
            rows(&snap),
            alerts(&snap),
            notes.join("\n")
        );
    }
    let a = snap
        .alerts
        .iter()
        .find(|a| a.kind.name() == "book_invalid")
        .unwrap();
    assert_eq!(a.endpoint.as_deref(), Some("ws:book:BTCUSDT"));
    assert!(a.title.contains("gap: expected update id"), "{}", a.title);
    // Resynced from the snapshot of the resubscribed book: valid again,
    // counted, resolved, on the same connection.
    let (resynced, snap) = w
        .until(Duration::from_secs(8), |s| {
            let st = row(s, "ws:book:BTCUSDT").and_then(|r| r.stream.as_ref()?.status.clone());
            st.is_some_and(|st| {
                st.book == Some(BookState::Valid) && st.resyncs >= 1 && st.gaps >= 1
            }) && open(s, "book_invalid").is_empty()
        })
        .await;
    assert!(
        resynced,
        "not resynced and resolved:\n{}\n{}",
        rows(&snap),
        alerts(&snap)
    );
    let conn = row(&snap, "bybit-ws").and_then(|r| r.stream.as_ref()?.status.clone());
    assert_eq!(
        conn.map(|c| c.reconnects),
        Some(0),
        "the connection was dropped to resync:\n{}",
        rows(&snap)
    );
    let journal = w.stop().await;
    let notes: Vec<&str> = journal
        .lines()
        .filter(|l| l.contains("\"event\":\"stream_note\""))
        .collect();
    assert!(
        notes
            .iter()
            .any(|l| l.contains("book_invalid") && l.contains("expected update id")),
        "the gap's figures are in the journal:\n{}",
        notes.join("\n")
    );
    assert!(
        notes
            .iter()
            .any(|l| l.contains("book_resynced") && l.contains("resubscribed")),
        "{}",
        notes.join("\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drop_with_reconnects_refused_pages_stream_down_and_recovers() {
    // Coinbase: the server closes the socket at 2.5 s and refuses new
    // connections until 8 s.
    let w = watch(
        Coinbase,
        vec![
            fault(StreamFaultKind::ServerClose, Coinbase, 2_500, 300),
            fault(StreamFaultKind::RefuseConnections, Coinbase, 2_500, 5_500),
        ],
    )
    .await;
    let snap = w
        .fired("stream_down", Duration::from_secs(9), "no stream_down")
        .await;
    let down = open(&snap, "stream_down");
    assert_eq!(down.len(), 1, "{}", alerts(&snap));
    assert_eq!(down[0].endpoint.as_deref(), Some("coinbase-ws"));
    assert_eq!(down[0].severity, Severity::Critical);
    // No zombie or book alert on top of the outage: one page.
    assert!(open(&snap, "stream_zombie").is_empty(), "{}", alerts(&snap));
    assert!(open(&snap, "book_invalid").is_empty(), "{}", alerts(&snap));
    let (back, snap) = w
        .until(Duration::from_secs(14), |s| {
            open(s, "stream_down").is_empty()
                && row(s, "coinbase-ws")
                    .and_then(|r| r.stream.as_ref()?.status.as_ref())
                    .is_some_and(|st| st.state == StreamState::Live && st.reconnects >= 1)
        })
        .await;
    assert!(
        back,
        "did not come back:\n{}\n{}",
        rows(&snap),
        alerts(&snap)
    );
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_announced_disconnect_is_info_never_a_page() {
    let w = watch(
        Okx,
        vec![fault(StreamFaultKind::PlannedDisconnect, Okx, 2_500, 300)],
    )
    .await;
    let (seen, snap) = w
        .until(Duration::from_secs(8), |s| {
            s.alerts.iter().any(|a| a.kind.name() == "stream_planned")
        })
        .await;
    assert!(
        seen,
        "no stream_planned:\n{}\n{}",
        rows(&snap),
        alerts(&snap)
    );
    // Reconnected and live again, and nothing above info was raised.
    let (back, snap) = w
        .until(Duration::from_secs(8), |s| {
            row(s, "okx-ws")
                .and_then(|r| r.stream.as_ref()?.status.as_ref())
                .is_some_and(|st| {
                    st.state == StreamState::Live && !st.expected && st.reconnects >= 1
                })
        })
        .await;
    assert!(back, "did not reconnect:\n{}", rows(&snap));
    let loud: Vec<&Alert> = snap
        .alerts
        .iter()
        .filter(|a| a.severity > Severity::Info)
        .collect();
    assert!(
        loud.is_empty(),
        "a planned disconnect paged:\n{}",
        alerts(&snap)
    );
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeats_alone_never_count_as_data() {
    // Kraken: heartbeats keep coming every 200 ms, data stops.
    let w = watch(
        Kraken,
        vec![fault(
            StreamFaultKind::HeartbeatsOnly,
            Kraken,
            2_500,
            30_000,
        )],
    )
    .await;
    let snap = w
        .fired(
            "stream_zombie",
            Duration::from_secs(8),
            "heartbeats were taken for data",
        )
        .await;
    let conn = row(&snap, "kraken-ws")
        .and_then(|r| r.stream.as_ref()?.status.clone())
        .unwrap();
    // The socket is alive: frames keep arriving, so it is not dead.
    assert_eq!(conn.state, StreamState::Zombie, "{}", rows(&snap));
    assert!(conn.age_ms.unwrap() >= 1_500);
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_waits_for_each_subscriptions_first_data_and_names_a_dead_url() {
    let sim = sim(vec![]).await;
    let closed = common::free_port();
    let text = format!(
        "[[exchanges]]\nname = \"okx\"\nkind = \"okx\"\n\
         [[exchanges.streams]]\nurl = \"{}\"\nfeeds = [\"ticker\", \"book\"]\n\
         [[exchanges]]\nname = \"kraken\"\nkind = \"kraken\"\n\
         [[exchanges.streams]]\nurl = \"ws://127.0.0.1:{closed}/kraken/ws\"\nfeeds = [\"ticker\"]\n",
        sim.ws_url(Okx)
    );
    let cfg = exwatch::config::parse("(check)", &text).expect("config");
    let rows = exwatch::check::streams::run(cfg.streams(), Duration::from_secs(3)).await;
    sim.stop().await;
    let table = exwatch::check::streams::render(&rows);
    let verdicts: Vec<(&str, &str, bool)> = rows
        .iter()
        .map(|r| (r.stream.as_str(), r.verdict.as_str(), r.healthy))
        .collect();
    assert_eq!(
        verdicts,
        [
            ("ws:ticker:BTC-USDT", "data", true),
            ("ws:book:BTC-USDT", "data", true),
            ("ws:ticker:BTC-USDT", "connect_failed", false),
        ],
        "{table}"
    );
    assert!(rows[0].first_data_ms.is_some());
    assert!(rows[2].reason.contains("connect"), "{table}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_say_which_stream_is_live_and_count_its_messages() {
    let sim = sim(vec![fault(StreamFaultKind::Gap, Bybit, 2_000, 200)]).await;
    let port = common::free_port();
    let text = format!(
        "[metrics]\nlisten = \"127.0.0.1:{port}\"\n\
         [[exchanges]]\nname = \"bybit\"\nkind = \"bybit\"\n\
         [[exchanges.streams]]\nurl = \"{}\"\nfeeds = [\"ticker\", \"book\"]\n",
        sim.ws_url(Bybit)
    );
    let cfg = exwatch::config::parse("(metrics)", &text).expect("config");
    let monitor = Monitor::start(&cfg, 0).await.expect("monitor");
    let url = format!("http://127.0.0.1:{port}/metrics");
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut body = String::new();
    while Instant::now() < deadline {
        body = match reqwest::get(&url).await {
            Ok(r) => r.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        };
        if body.contains(
            "exwatch_stream_book_resyncs_total{exchange=\"bybit\",stream=\"ws:book:BTCUSDT\"} 1",
        ) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    monitor.stop().await;
    sim.stop().await;
    for want in [
        "exwatch_stream_live{exchange=\"bybit\",stream=\"bybit-ws\"} 1",
        "exwatch_stream_live{exchange=\"bybit\",stream=\"ws:ticker:BTCUSDT\"} 1",
        "exwatch_stream_book_valid{exchange=\"bybit\",stream=\"ws:book:BTCUSDT\"} 1",
        "exwatch_stream_book_gaps_total{exchange=\"bybit\",stream=\"ws:book:BTCUSDT\"} 1",
        "exwatch_stream_book_resyncs_total{exchange=\"bybit\",stream=\"ws:book:BTCUSDT\"} 1",
        "exwatch_stream_lag_seconds{exchange=\"bybit\",stream=\"ws:book:BTCUSDT\",quantile=\"0.99\"}",
    ] {
        assert!(body.contains(want), "{want} missing from:\n{body}");
    }
    let messages: u64 = body
        .lines()
        .find(|l| {
            l.starts_with(
                "exwatch_stream_messages_total{exchange=\"bybit\",stream=\"ws:book:BTCUSDT\"}",
            )
        })
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .unwrap_or(0);
    // 50 ms data ticks for over 2 s.
    assert!(messages >= 20, "{messages} book messages counted:\n{body}");
}

/// Every book fault of the simulator is a `book_invalid` alert naming its
/// figures, on the right row, within two heartbeat intervals of the
/// statuses (each second), and the book is valid again after its resync;
/// a duplicate is ignored (the book stays valid, nothing fires).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_book_fault_alerts_with_its_figures_and_duplicates_do_not() {
    let cases = [
        (
            Kraken,
            StreamFaultKind::ChecksumMismatch,
            "ws:book:BTC-USDT",
            Some("checksum mismatch"),
        ),
        (
            Okx,
            StreamFaultKind::OutOfOrder,
            "ws:book:BTC-USDT",
            Some("gap: expected update id"),
        ),
        (Bybit, StreamFaultKind::Duplicate, "ws:book:BTCUSDT", None),
    ];
    let runs = cases
        .iter()
        .map(|(kind, fault_kind, row, words)| async move {
            let w = watch(*kind, vec![fault(*fault_kind, *kind, 2_000, 300)]).await;
            let (fired, snap) = w
                .until(Duration::from_secs(6), |s| {
                    s.alerts.iter().any(|a| a.kind.name() == "book_invalid")
                })
                .await;
            let result = match words {
                Some(words) => {
                    let a = snap.alerts.iter().find(|a| a.kind.name() == "book_invalid");
                    let ok = fired
                        && a.is_some_and(|a| {
                            a.endpoint.as_deref() == Some(*row) && a.title.contains(words)
                        });
                    let (valid, _) = w
                        .until(Duration::from_secs(8), |s| {
                            row_book(s, row) == Some(BookState::Valid)
                                && open(s, "book_invalid").is_empty()
                        })
                        .await;
                    (
                        ok && valid,
                        format!(
                            "{kind:?} {fault_kind:?}:\n{}\n{}",
                            rows(&snap),
                            alerts(&snap)
                        ),
                    )
                }
                None => {
                    let valid = row_book(&snap, row) == Some(BookState::Valid);
                    let stale_ignored = !fired && valid;
                    (
                        stale_ignored,
                        format!(
                            "{kind:?} {fault_kind:?}:\n{}\n{}",
                            rows(&snap),
                            alerts(&snap)
                        ),
                    )
                }
            };
            w.stop().await;
            result
        });
    all_passed(futures::future::join_all(runs).await);
}

/// Every case of a table-driven test passed; else all their stories.
fn all_passed(results: Vec<(bool, String)>) {
    let failed: Vec<&str> = results
        .iter()
        .filter(|(ok, _)| !ok)
        .map(|(_, why)| why.as_str())
        .collect();
    assert!(failed.is_empty(), "{}", failed.join("\n---\n"));
}

fn row_book(snap: &Snapshot, name: &str) -> Option<BookState> {
    row(snap, name)?.stream.as_ref()?.status.as_ref()?.book
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missed_pong_reconnects_and_is_journaled_without_a_page() {
    // Bybit: the server stops answering the client's pings (every 1 s); the
    // worker gives up after its configured pong_timeout (3 s) and reconnects.
    let w = watch(
        Bybit,
        vec![fault(StreamFaultKind::NoPong, Bybit, 1_500, 14_000)],
    )
    .await;
    let (reconnected, snap) = w
        .until(Duration::from_secs(20), |s| {
            row(s, "bybit-ws")
                .and_then(|r| r.stream.as_ref()?.status.as_ref())
                .is_some_and(|st| st.reconnects >= 1 && st.state == StreamState::Live)
        })
        .await;
    assert!(
        reconnected,
        "no reconnect after the missed pongs:\n{}",
        rows(&snap)
    );
    let loud: Vec<&Alert> = snap
        .alerts
        .iter()
        .filter(|a| a.severity >= Severity::Critical)
        .collect();
    assert!(
        loud.is_empty(),
        "a reconnect within down_after paged:\n{}",
        alerts(&snap)
    );
    let journal = w.stop().await;
    assert!(
        journal
            .lines()
            .any(|l| l.contains("\"what\":\"pong_missed\"") && l.contains("within 3000 ms")),
        "the missed pong is in the journal, after the configured pong_timeout"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crossed_book_that_passes_every_check_pages_and_clears() {
    // Kraken's checksum covers the crossed book (it is computed on it), and
    // Coinbase's `level2_batch` has no check at all: the crossing is what
    // is left to catch. Crossed from 2 s for 4 s.
    let cases = [(Kraken, "ws:book:BTC-USDT"), (Coinbase, "ws:book:BTC-USD")];
    let runs = cases.iter().map(|(kind, row_name)| async move {
        let w = watch(
            *kind,
            vec![fault(StreamFaultKind::CrossedBook, *kind, 2_000, 4_000)],
        )
        .await;
        let (fired, snap) = w
            .until(Duration::from_secs(6), |s| {
                !open(s, "book_crossed").is_empty()
            })
            .await;
        let mut why = Vec::new();
        if fired {
            let a = open(&snap, "book_crossed")[0];
            if a.severity != Severity::Critical
                || a.endpoint.as_deref() != Some(*row_name)
                || !a.title.contains("crossed: best bid")
            {
                why.push(format!(
                    "wrong alert: {} {:?} {:?}",
                    a.title, a.severity, a.endpoint
                ));
            }
            if !open(&snap, "book_invalid").is_empty() {
                why.push("a crossed book is not a broken sequence".to_string());
            }
            if row_book(&snap, row_name) != Some(BookState::Valid) {
                why.push("the book stays valid".to_string());
            }
            let (cleared, s2) = w
                .until(Duration::from_secs(8), |s| {
                    open(s, "book_crossed").is_empty()
                })
                .await;
            if !cleared {
                why.push(format!("not cleared once uncrossed:\n{}", alerts(&s2)));
            }
        } else {
            why.push("no book_crossed".to_string());
        }
        let journal = w.stop().await;
        for what in ["\"what\":\"book_crossed\"", "\"what\":\"book_uncrossed\""] {
            if !journal.lines().any(|l| l.contains(what)) {
                why.push(format!("no {what} note in the journal"));
            }
        }
        (
            why.is_empty(),
            format!(
                "{kind:?}: {}\n{}\n{}",
                why.join("; "),
                rows(&snap),
                alerts(&snap)
            ),
        )
    });
    all_passed(futures::future::join_all(runs).await);
}
