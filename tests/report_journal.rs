//! `exwatch report` on the journal of a monitor that watched the simulator
//! through two 5xx episodes: every episode has its alert, fired during the
//! fault and resolved after it, and nothing fires outside them.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed unwrap is a failed test

mod common;

use common::sim::{fault, scenario, start};
use exwatch::clock::wall_ms;
use exwatch::config;
use exwatch::model::{EndpointKind, ExchangeKind};
use exwatch::monitor::Monitor;
use exwatch::sim::scenario::FaultKind;
use std::process::Command;
use std::time::Duration;
use tokio::time::Instant;

const BIN: &str = env!("CARGO_BIN_EXE_exwatch");
/// Fault episodes on the ticker, from the simulator's start (ms).
const EPISODES: [(i64, i64); 2] = [(1_000, 3_000), (5_500, 7_500)];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn report_lists_every_fault_episode_with_its_times() {
    let t0 = wall_ms();
    let faults = EPISODES
        .iter()
        .map(|(a, b)| {
            fault(
                FaultKind::ServerError,
                ExchangeKind::Binance,
                Some(EndpointKind::Ticker),
                Duration::from_millis(*a as u64),
                Duration::from_millis((b - a) as u64),
            )
        })
        .collect();
    let sim = start(scenario(faults)).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let journal = dir.path().join("journal.jsonl");
    // A healthy book beside the faulty ticker, so this is an endpoint fault, not an exchange outage.
    let text = format!(
        "[log]\ndir = \"{logs}\"\n[journal]\npath = \"{journal}\"\n\
         [breaker]\nconsecutive_failures = 3\nopen_for = \"300ms\"\nmax_open_for = \"300ms\"\nclose_after = 1\n\
         [alerts.detect.error_rate]\nwindow = \"1s\"\nclear_for = \"300ms\"\n\
         [[exchanges]]\nname = \"binance\"\nkind = \"binance\"\nbase_url = \"{base}\"\n\
         [[exchanges.endpoints]]\nname = \"ticker\"\nkind = \"ticker\"\ninterval = \"50ms\"\ntimeout = \"1s\"\n\
         [[exchanges.endpoints]]\nname = \"book\"\nkind = \"book\"\ninterval = \"50ms\"\ntimeout = \"1s\"\n",
        logs = dir.path().display(),
        journal = journal.display(),
        base = sim.base_url(ExchangeKind::Binance),
    );
    let cfg = config::parse("report.toml", &text).expect("config");
    let monitor = Monitor::start(&cfg, 0).await.expect("monitor");

    // Past the last fault, and every ticker alert resolved (or give up and let the report say so).
    let last_end = t0 + EPISODES[1].1;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let snap = monitor.snapshots.borrow().clone();
        let open = snap
            .alerts
            .iter()
            .any(|a| a.endpoint.as_deref() == Some("ticker") && a.state.is_open());
        if (wall_ms() > last_end + 500 && !open) || Instant::now() > deadline {
            break;
        }
    }
    monitor.stop().await;
    sim.stop().await;

    let out = Command::new(BIN)
        .args(["report", "--format", "json"])
        .arg(&journal)
        .output()
        .expect("run exwatch report");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("report JSON");
    let ticker: Vec<&serde_json::Value> = report["alerts"]
        .as_array()
        .expect("alerts")
        .iter()
        .filter(|a| a["endpoint"] == "ticker")
        .collect();
    let t = |a: &serde_json::Value, k: &str| a[k].as_i64();
    for (a, b) in EPISODES {
        let (start, end) = (t0 + a, t0 + b);
        let found = ticker.iter().any(|al| {
            al["kind"] == "error_rate"
                && t(al, "fired_ms").is_some_and(|f| f >= start && f <= end)
                && t(al, "resolved_ms").is_some_and(|r| r >= end)
        });
        assert!(
            found,
            "no error_rate alert for the fault {a}..{b} ms (t0 {t0}): {ticker:#?}"
        );
    }
    for al in &ticker {
        let fired = t(al, "fired_ms").expect("fired_ms");
        assert!(
            EPISODES
                .iter()
                .any(|(a, b)| fired >= t0 + a && fired <= t0 + b),
            "alert fired outside every fault: {al:#?}"
        );
    }
    assert!(
        report["breaker"].as_array().is_some_and(|b| b
            .iter()
            .filter(|r| r["to"] == "open")
            .count()
            >= 2),
        "the breaker opened in each episode: {:#}",
        report["breaker"]
    );
    let binance = &report["exchanges"][0];
    assert_eq!(binance["exchange"], "binance");
    assert!(binance["failures"].as_u64().is_some_and(|f| f >= 4));

    for format in ["text", "markdown"] {
        let out = Command::new(BIN)
            .args(["report", "--format", format])
            .arg(&journal)
            .output()
            .expect("run exwatch report");
        assert!(out.status.success());
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("binance/ticker"), "{text}");
    }
    let out = Command::new(BIN)
        .args(["report", "--since", "not a time"])
        .arg(&journal)
        .output()
        .expect("run exwatch report");
    assert_eq!(out.status.code(), Some(2), "a bad --since is a usage error");
}
