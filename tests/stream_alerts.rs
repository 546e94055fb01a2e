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

fn fault(kind: StreamFaultKind, exchange: ExchangeKind, at_ms: u64, for_ms: u64) -> StreamFault {
    StreamFault {
        at: Duration::from_millis(at_ms),
        duration: Duration::from_millis(for_ms),
        fault: kind,
        exchange: Some(exchange),
        bps: None,
    }
}

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
        Bybit | Okx | Kraken => "ping_every = \"1s\"\n",
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
    snap.alerts
        .iter()
        .map(|a| {
            format!(
                "{} {:?} {:?} {}",
                a.fingerprint, a.state, a.severity, a.title
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
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
    let (fired, snap) = w
        .until(Duration::from_secs(8), |s| {
            !open(s, "stream_zombie").is_empty()
        })
        .await;
    assert!(
        fired,
        "no zombie alert:\n{}\n{}",
        rows(&snap),
        alerts(&snap)
    );
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
    // Resynced from the stream's snapshot: valid again, counted, resolved.
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
        notes.iter().any(|l| l.contains("book_resynced")),
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
    let (fired, snap) = w
        .until(Duration::from_secs(9), |s| {
            !open(s, "stream_down").is_empty()
        })
        .await;
    assert!(fired, "no stream_down:\n{}\n{}", rows(&snap), alerts(&snap));
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
    let (fired, snap) = w
        .until(Duration::from_secs(8), |s| {
            !open(s, "stream_zombie").is_empty()
        })
        .await;
    assert!(
        fired,
        "heartbeats were taken for data:\n{}\n{}",
        rows(&snap),
        alerts(&snap)
    );
    let conn = row(&snap, "kraken-ws")
        .and_then(|r| r.stream.as_ref()?.status.clone())
        .unwrap();
    // The socket is alive: frames keep arriving, so it is not dead.
    assert_eq!(conn.state, StreamState::Zombie, "{}", rows(&snap));
    assert!(conn.age_ms.unwrap() >= 1_500);
    w.stop().await;
}
