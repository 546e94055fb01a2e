//! Issue #16 point 4, end to end: the cross-checks of streamed prices
//! (`stream_diverges`, `price_outlier`) with a real config (REST tickers
//! and `[[exchanges.streams]]` of three exchanges), the monitor and the
//! simulator, whose exchanges all follow one market: healthy, nothing
//! fires; OKX's streams 150 bp off (`price_offset`), both fire on OKX
//! only, and resolve once the fault ends.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed unwrap is a failed test

mod common;

use std::time::{Duration, Instant};

use exwatch::model::ExchangeKind::{self, *};
use exwatch::model::{Alert, Severity};
use exwatch::monitor::Monitor;
use exwatch::sim::scenario::Scenario;
use exwatch::sim::stream::{StreamFault, StreamFaultKind, StreamScenario};
use exwatch::state::Snapshot;

const EXCHANGES: [ExchangeKind; 3] = [Binance, Okx, Coinbase];

/// A config watching each exchange's REST ticker (every 500 ms) and its
/// streamed ticker and book, with short cross-check timings.
fn config(sim: &exwatch::sim::SimHandle, journal: &std::path::Path) -> exwatch::config::Config {
    let mut text = format!(
        "[journal]\npath = \"{}\"\n[defaults]\ninterval = \"500ms\"\n\
         [alerts.detect.cross]\nfor = \"3s\"\nclear_for = \"2s\"\n",
        journal.display()
    );
    for kind in EXCHANGES {
        let k = kind.as_str();
        let ping = if kind == Okx {
            "ping_every = \"1s\"\n"
        } else {
            ""
        };
        text.push_str(&format!(
            "[[exchanges]]\nname = \"{k}\"\nkind = \"{k}\"\nbase_url = \"{}\"\n\
             [[exchanges.endpoints]]\nname = \"ticker\"\nkind = \"ticker\"\n\
             [[exchanges.streams]]\nurl = \"{}\"\nfeeds = [\"ticker\", \"book\"]\n{ping}",
            sim.base_url(kind),
            sim.ws_url(kind),
        ));
    }
    exwatch::config::parse("(stream cross)", &text).expect("config")
}

fn cross(snap: &Snapshot) -> Vec<&Alert> {
    snap.alerts
        .iter()
        .filter(|a| matches!(a.kind.name().as_str(), "stream_diverges" | "price_outlier"))
        .collect()
}

fn show(alerts: &[&Alert]) -> String {
    common::alert_lines(alerts.iter().copied())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_off_the_market_diverges_from_its_rest_ticker_and_is_an_outlier() {
    // OKX's streams 150 bp above the market from 7 s to 19 s.
    let sim = common::sim::start(Scenario {
        stream: StreamScenario {
            data_every: Duration::from_millis(50),
            faults: vec![StreamFault {
                at: Duration::from_secs(7),
                duration: Duration::from_secs(12),
                fault: StreamFaultKind::PriceOffset,
                exchange: Some(Okx),
                bps: Some(150.0),
            }],
            ..StreamScenario::default()
        },
        ..Scenario::default()
    })
    .await;
    let t0 = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(&sim, &dir.path().join("journal.jsonl"));
    let monitor = Monitor::start(&cfg, 0).await.expect("monitor");
    let snap = || monitor.snapshots.borrow().clone();

    // Healthy for 6 s (twice `for`): every exchange agrees with itself
    // and the others, nothing fires.
    tokio::time::sleep(Duration::from_secs(6).saturating_sub(t0.elapsed())).await;
    let s = snap();
    assert!(cross(&s).is_empty(), "healthy:\n{}", show(&cross(&s)));
    let streamed = s
        .exchanges
        .iter()
        .flat_map(|e| e.endpoints.iter())
        .filter(|e| e.stream.as_ref().and_then(|s| s.status.as_ref()).is_some())
        .count();
    assert!(streamed >= 6, "every stream row reports");

    // The fault: both alerts on OKX within `for` plus a few polls.
    let mut diverged_at = None;
    let mut outlier_at = None;
    while t0.elapsed() < Duration::from_secs(16) && (diverged_at.is_none() || outlier_at.is_none())
    {
        let s = snap();
        for a in cross(&s).into_iter().filter(|a| a.state.is_open()) {
            assert_eq!(a.exchange, "okx", "only OKX is off:\n{}", show(&cross(&s)));
            let at = t0.elapsed();
            match a.kind.name().as_str() {
                "stream_diverges" => {
                    diverged_at.get_or_insert((at, a.clone()));
                }
                _ => {
                    outlier_at.get_or_insert((at, a.clone()));
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (at, a) = diverged_at.expect("stream_diverges fires");
    assert!(at >= Duration::from_secs(9), "not before `for`: {at:?}");
    assert_eq!(a.fingerprint, "okx/ticker/stream_diverges");
    assert_eq!(a.severity, Severity::Warning);
    assert!(
        a.title.contains("stream ws:") && a.title.contains("vs REST ticker"),
        "{}",
        a.title
    );
    let bp = a.metrics["divergence_bps"];
    assert!((120.0..180.0).contains(&bp), "{bp} bp: {}", a.title);
    let (_, o) = outlier_at.expect("price_outlier fires");
    assert_eq!(o.fingerprint, "okx/mid:BTC-USD/price_outlier");
    assert_eq!(o.severity, Severity::Warning);
    assert!(o.title.contains("above"), "{}", o.title);

    // The fault ends at 19 s: both resolve within clear_for and a few polls
    // (up to 11 s after it, for a loaded CI machine: the market median needs
    // a fresh mid of three exchanges).
    let deadline = Instant::now()
        + Duration::from_secs(10).max(Duration::from_secs(30).saturating_sub(t0.elapsed()));
    let s = loop {
        let s = snap();
        if cross(&s).iter().all(|a| !a.state.is_open()) || Instant::now() > deadline {
            break s;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let all = cross(&s);
    assert!(
        all.iter().all(|a| !a.state.is_open()),
        "resolved after the fault:\n{}",
        show(&all)
    );
    assert_eq!(all.len(), 2, "one alert each, no flapping:\n{}", show(&all));
    assert!(all.iter().all(|a| a.occurrences == 1), "{}", show(&all));
    assert!(
        t0.elapsed() >= Duration::from_secs(19),
        "resolved only once the fault ended: {:?}",
        t0.elapsed()
    );
    monitor.stop().await;
    sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lasting_rest_lie_diverges_from_the_stream_but_is_no_outlier() {
    // Coinbase's REST ticker 50% high from 5 s to 17 s: the validator
    // refuses three answers, then follows the new level (a lasting move),
    // so only the cross-check can tell it lies. Its streams are right, so
    // its mid (the streams') is no outlier.
    let jump = common::sim::fault(
        exwatch::sim::scenario::FaultKind::Jump,
        Coinbase,
        Some(exwatch::model::EndpointKind::Ticker),
        Duration::from_secs(5),
        Duration::from_secs(12),
    );
    let sim = common::sim::start(Scenario {
        stream: StreamScenario {
            data_every: Duration::from_millis(50),
            ..StreamScenario::default()
        },
        ..common::sim::scenario(vec![jump])
    })
    .await;
    let t0 = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(&sim, &dir.path().join("journal.jsonl"));
    let monitor = Monitor::start(&cfg, 0).await.expect("monitor");
    let snap = || monitor.snapshots.borrow().clone();

    let mut diverged = None;
    let mut resolved = false;
    while t0.elapsed() < Duration::from_secs(26) && !resolved {
        let s = snap();
        for a in cross(&s) {
            assert_eq!(
                a.fingerprint,
                "coinbase/ticker/stream_diverges",
                "only the REST lie:\n{}",
                show(&cross(&s))
            );
            diverged.get_or_insert((t0.elapsed(), a.clone()));
            resolved = !a.state.is_open();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (at, a) = diverged.expect("stream_diverges fires");
    assert!(
        (Duration::from_secs(8)..Duration::from_secs(17)).contains(&at),
        "within the fault, after `for`: {at:?}"
    );
    assert!(a.metrics["divergence_bps"] > 3_000.0, "{}", a.title);
    assert!(
        resolved,
        "resolved after the fault: {}",
        show(&cross(&snap()))
    );
    assert!(
        t0.elapsed() >= Duration::from_secs(17),
        "{:?}",
        t0.elapsed()
    );
    monitor.stop().await;
    sim.stop().await;
}
