//! Replay determinism: the final snapshot of a live run against the
//! simulator (with a fault, so alerts and breaker transitions happen) equals
//! the final snapshot of replaying the journal it wrote.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed unwrap is a failed test

mod common;

use common::sim::{fault, scenario, start};
use exwatch::config;
use exwatch::model::{EndpointKind, ExchangeKind};
use exwatch::monitor::Monitor;
use exwatch::replay::Replay;
use exwatch::sim::scenario::FaultKind;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replaying_the_journal_ends_on_the_live_final_snapshot() {
    let sim = start(scenario(vec![fault(
        FaultKind::ServerError,
        ExchangeKind::Binance,
        Some(EndpointKind::Ticker),
        Duration::from_millis(300),
        Duration::from_millis(1500),
    )]))
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let journal = dir.path().join("journal.jsonl");
    let text = format!(
        "[log]\ndir = \"{logs}\"\n[journal]\npath = \"{journal}\"\n\
         [breaker]\nconsecutive_failures = 3\nopen_for = \"300ms\"\nmax_open_for = \"300ms\"\nclose_after = 1\n\
         [alerts.detect.error_rate]\nwindow = \"1s\"\nclear_for = \"300ms\"\n\
         [[exchanges]]\nname = \"binance\"\nkind = \"binance\"\nbase_url = \"{base}\"\n\
         [[exchanges.endpoints]]\nname = \"ticker\"\nkind = \"ticker\"\ninterval = \"50ms\"\ntimeout = \"1s\"\n\
         [[exchanges.endpoints]]\nname = \"book\"\nkind = \"book\"\ninterval = \"50ms\"\ntimeout = \"1s\"\n\
         [[exchanges.endpoints]]\nname = \"time\"\nkind = \"time\"\ninterval = \"100ms\"\ntimeout = \"1s\"\n",
        logs = dir.path().display(),
        journal = journal.display(),
        base = sim.base_url(ExchangeKind::Binance),
    );
    let cfg = config::parse("replay.toml", &text).expect("config");
    let monitor = Monitor::start(&cfg, 0).await.expect("monitor");
    let snapshots = monitor.snapshots.clone();
    tokio::time::sleep(Duration::from_millis(3000)).await;
    monitor.stop().await;
    sim.stop().await;
    let live = snapshots.borrow().clone();

    let mut entries = Vec::new();
    for f in exwatch::journal::files(&journal) {
        let stats = exwatch::journal::for_each_entry(&f, |e| entries.push(e)).expect("read");
        assert_eq!(stats.bad_lines, 0);
    }
    let mut replay = Replay::new(entries);
    replay.run_to_end();
    let replayed = replay.snapshot();

    // The run must have had something to replay: polls, a breaker trip and an alert.
    let ticker = live.exchanges[0]
        .endpoints
        .iter()
        .find(|e| e.name == "ticker")
        .expect("ticker row");
    assert!(ticker.calls > 10 && ticker.failures > 0, "{ticker:?}");
    assert!(!live.alerts.is_empty(), "an alert during the fault");
    assert_eq!(
        live.events, replayed.events,
        "every applied event is in the journal"
    );
    assert_eq!(*live, replayed);
}
