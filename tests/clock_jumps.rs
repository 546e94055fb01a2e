//! Issue #15, clock jumps: the real binary with its wall clock stepped by
//! libfaketime (`LD_PRELOAD`, offset read from a file on every call, the
//! monotonic clocks left alone), against the simulator on 127.0.0.1.
//!
//! exwatch's core runs on a slewed clock (src/clock.rs): a step of the
//! host's clock must neither fire nor clear anything, nor hold a breaker
//! open, and the times exwatch writes must not jump.
//!
//! Needs libfaketime (`apt-get install faketime`; `.ci/run` installs it).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed unwrap is a failed test

mod common;

use common::headless::{Headless, write_config};
use common::sim::{scenario, start};
use exwatch::model::{EndpointKind, ExchangeKind};
use exwatch::sim::scenario::FaultKind;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Where Debian's `faketime` package puts the multi-threaded library.
const LIBFAKETIME: &str = "/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1";

/// The host clock as the child sees it: `offset` ("+3600", "-3600", "+0")
/// written to the file libfaketime reads on every call.
struct FakeClock {
    file: PathBuf,
}

impl FakeClock {
    fn new(dir: &Path) -> FakeClock {
        assert!(
            Path::new(LIBFAKETIME).exists(),
            "{LIBFAKETIME} missing: install libfaketime (apt-get install faketime)"
        );
        let c = FakeClock {
            file: dir.join("faketime"),
        };
        c.step("+0");
        c
    }

    fn step(&self, offset: &str) {
        std::fs::write(&self.file, format!("{offset}\n")).unwrap();
    }

    fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("LD_PRELOAD", LIBFAKETIME.to_string()),
            ("FAKETIME_TIMESTAMP_FILE", self.file.display().to_string()),
            ("FAKETIME_NO_CACHE", "1".to_string()),
            ("DONT_FAKE_MONOTONIC", "1".to_string()),
        ]
    }
}

fn real_ms() -> i64 {
    exwatch::clock::wall_ms()
}

/// OKX's ticker (it carries the exchange's `ts`, so a clock step would
/// show as stale data) every 200 ms, journal on, headless every 200 ms.
fn config(dir: &Path, sim: &exwatch::sim::SimHandle, breaker: &str) -> (PathBuf, PathBuf) {
    let journal = dir.join("j.jsonl");
    let text = format!(
        "[log]\ndir = \"{logs}\"\n[journal]\npath = \"{j}\"\n[headless]\ninterval = \"200ms\"\n\
         {breaker}\n\
         [[exchanges]]\nname = \"okx\"\nkind = \"okx\"\nbase_url = \"{base}\"\n\
         [[exchanges.endpoints]]\nname = \"ticker\"\nkind = \"ticker\"\ninterval = \"200ms\"\ntimeout = \"1s\"\n",
        logs = dir.join("logs").display(),
        j = journal.display(),
        base = sim.base_url(ExchangeKind::Okx),
    );
    (write_config(dir, &text), journal)
}

async fn until(within: Duration, what: &str, mut f: impl FnMut() -> bool) {
    let end = Instant::now() + within;
    while Instant::now() < end {
        if f() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("not within {within:?}: {what}");
}

fn journal_lines(journal: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(journal)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// The log files' text (the step warnings land there).
fn logs(dir: &Path) -> String {
    std::fs::read_dir(dir.join("logs"))
        .map(|rd| {
            rd.filter_map(Result::ok)
                .filter_map(|e| std::fs::read_to_string(e.path()).ok())
                .collect::<String>()
        })
        .unwrap_or_default()
}

/// A healthy exchange, the host clock stepped an hour ahead, back, and an
/// hour behind: no alert fires (before the slewed clock, the step ahead
/// made OKX's data an hour old: `stale`), every time exwatch writes stays
/// within a second of the true time and never goes back, and each step
/// is logged with its size.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_clock_steps_either_way_fire_nothing_and_exwatch_time_never_jumps() {
    let sim = start(scenario(vec![])).await;
    let dir = tempfile::tempdir().unwrap();
    let clock = FakeClock::new(dir.path());
    let (cfg, journal) = config(dir.path(), &sim, "");
    let t0 = real_ms();
    let ex = Headless::run(&cfg, &clock.env());
    until(Duration::from_secs(20), "okx ticker polled ok", || {
        ex.endpoint("okx", "ticker")
            .is_some_and(|e| e["outcome"] == "ok" && e["calls"].as_u64() >= Some(5))
    })
    .await;
    for offset in ["+3600", "+0", "-3600"] {
        clock.step(offset);
        tokio::time::sleep(Duration::from_secs(4)).await;
    }
    let calls_before = ex.endpoint("okx", "ticker").unwrap()["calls"]
        .as_u64()
        .unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let last = ex.endpoint("okx", "ticker").unwrap();
    let t1 = real_ms();
    let headless_ts: Vec<i64> = ex
        .lines()
        .iter()
        .filter_map(|l| l["ts_ms"].as_i64())
        .collect();
    drop(ex);

    // Polling went on at its pace through the steps.
    assert_eq!(last["outcome"], "ok", "{last}");
    assert!(
        last["calls"].as_u64().unwrap() >= calls_before + 3,
        "{last}"
    );

    // Nothing fired.
    let entries = journal_lines(&journal);
    let fired: Vec<_> = entries
        .iter()
        .filter(|e| e["ev"]["event"] == "alert_changed")
        .collect();
    assert!(fired.is_empty(), "alerts after clock steps: {fired:?}");

    // What exwatch wrote is on true time (the 4 s an hour ahead gain at
    // most 5%: 0.2 s) and never goes back.
    let mut stamps: Vec<i64> = entries.iter().filter_map(|e| e["ts_ms"].as_i64()).collect();
    assert!(stamps.len() > 50, "{} journal entries", stamps.len());
    let sorted = stamps.windows(2).all(|w| w[0] <= w[1]);
    assert!(sorted, "journal ts_ms went back");
    assert!(
        headless_ts.windows(2).all(|w| w[0] <= w[1]),
        "headless ts_ms went back"
    );
    stamps.extend(headless_ts);
    for ts in &stamps {
        assert!(
            (t0 - 1_000..=t1 + 1_000).contains(ts),
            "ts_ms {ts} outside [{t0}, {t1}] ± 1 s: a clock step leaked into exwatch's times"
        );
    }

    // Both steps of an hour were noticed and said.
    let log = logs(dir.path());
    let steps = log.matches("wall clock stepped").count();
    assert!(steps >= 2, "{steps} step warnings in the log:\n{log}");
}

/// OKX's ticker failing for its first 3 s opens its breaker (open 1 s);
/// the host clock is stepped an hour back while it is open. The breaker
/// still probes after its wait, closes once the fault is over, and the
/// alerts resolve. Before the slewed clock the breaker's wait ran on the
/// wall clock: an hour more without a single poll.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_step_back_while_a_breaker_is_open_does_not_hold_it_open() {
    let sim = start(scenario(vec![common::sim::fault(
        FaultKind::ServerError,
        ExchangeKind::Okx,
        Some(EndpointKind::Ticker),
        Duration::ZERO,
        Duration::from_secs(3),
    )]))
    .await;
    let dir = tempfile::tempdir().unwrap();
    let clock = FakeClock::new(dir.path());
    let breaker = "[breaker]\nconsecutive_failures = 2\nopen_for = \"1s\"\nmax_open_for = \"2s\"\nclose_after = 1\n";
    let (cfg, journal) = config(dir.path(), &sim, breaker);
    let ex = Headless::run(&cfg, &clock.env());
    until(Duration::from_secs(20), "okx ticker breaker open", || {
        ex.endpoint("okx", "ticker")
            .is_some_and(|e| e["breaker"] == "open")
    })
    .await;
    clock.step("-3600");
    until(
        Duration::from_secs(15),
        "okx ticker breaker closed and polled ok after the fault",
        || {
            ex.endpoint("okx", "ticker")
                .is_some_and(|e| e["breaker"] == "closed" && e["outcome"] == "ok")
        },
    )
    .await;
    // Every alert the fault raised resolves on fresh data.
    until(
        Duration::from_secs(20),
        "the fault's alerts resolved",
        || {
            let mut last = std::collections::BTreeMap::new();
            for e in journal_lines(&journal) {
                if e["ev"]["event"] == "alert_changed" {
                    let a = &e["ev"]["alert"];
                    last.insert(
                        a["fingerprint"].as_str().unwrap_or_default().to_string(),
                        a["state"].as_str().unwrap_or_default().to_string(),
                    );
                }
            }
            !last.is_empty() && last.values().all(|s| s == "resolved")
        },
    )
    .await;
}
