//! The real binary killed with SIGKILL while an alert is open: the next start
//! restores the alert from the journal (same episode, same first-seen time)
//! instead of raising a new one.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed unwrap is a failed test

mod common;

use common::sim::{fault, scenario, start};
use exwatch::model::{EndpointKind, ExchangeKind};
use exwatch::sim::scenario::FaultKind;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const FP: &str = "binance/ticker/error_rate";

fn spawn(cfg: &std::path::Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_exwatch"))
        .args(["run", "--headless", "--json", "-c"])
        .arg(cfg)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn exwatch")
}

/// Read status lines until the alert shows; its first-seen time.
fn wait_for_alert(child: &mut Child, within: Duration) -> Option<i64> {
    let out = child.stdout.take()?;
    let end = Instant::now() + within;
    for line in BufReader::new(out).lines() {
        let line = line.ok()?;
        let v: serde_json::Value = serde_json::from_str(&line).ok()?;
        if let Some(a) = v["alerts"]
            .as_array()
            .and_then(|a| a.iter().find(|a| a["fingerprint"] == FP))
        {
            return a["first_seen_ms"].as_i64();
        }
        if Instant::now() > end {
            return None;
        }
    }
    None
}

#[tokio::test]
async fn open_alerts_survive_sigkill() {
    let sim = start(scenario(vec![fault(
        FaultKind::ServerError,
        ExchangeKind::Binance,
        Some(EndpointKind::Ticker),
        Duration::ZERO,
        Duration::from_secs(600),
    )]))
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = dir.path().join("c.toml");
    std::fs::write(
        &cfg,
        format!(
            "[log]\ndir = \"{d}/logs\"\n[journal]\npath = \"{d}/journal.jsonl\"\n[headless]\ninterval = \"200ms\"\n\
             [[exchanges]]\nname = \"binance\"\nkind = \"binance\"\nbase_url = \"{base}\"\n\
             [[exchanges.endpoints]]\nname = \"ticker\"\nkind = \"ticker\"\ninterval = \"100ms\"\n",
            d = dir.path().display(),
            base = sim.base_url(ExchangeKind::Binance),
        ),
    )
    .expect("write config");
    let (first, second) = tokio::task::spawn_blocking(move || {
        let mut a = spawn(&cfg);
        let first = wait_for_alert(&mut a, Duration::from_secs(20));
        a.kill().expect("SIGKILL");
        a.wait().expect("reap");
        let mut b = spawn(&cfg);
        let second = wait_for_alert(&mut b, Duration::from_secs(20));
        let _ = b.kill();
        let _ = b.wait();
        (first, second)
    })
    .await
    .expect("join");
    sim.stop().await;
    let first = first.expect("the alert fired in the first run");
    assert_eq!(
        second,
        Some(first),
        "the restarted instance shows the same alert episode"
    );
}
