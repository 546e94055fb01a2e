//! Each validation rule through the simulator: the named reason shows in
//! `exwatch check --json` (one-shot rules) and as an event of the running
//! monitor (rules that need history).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed unwrap is a failed test

mod common;

use common::sim::{fault, scenario, start};
use exwatch::config;
use exwatch::model::{EndpointKind, ExchangeKind, InvalidReason};
use exwatch::model::{Event, Outcome};
use exwatch::monitor::Monitor;
use exwatch::sim::scenario::FaultKind;
use std::collections::BTreeSet;
use std::process::Command;
use std::time::Duration;

const LONG: Duration = Duration::from_secs(3600);

fn exchanges(addr: &str) -> String {
    let mut text = String::new();
    for kind in ["binance", "bybit", "okx", "kraken"] {
        text.push_str(&format!(
            "[[exchanges]]\nname = \"{kind}\"\nkind = \"{kind}\"\nbase_url = \"http://{addr}/{kind}\"\n\
             [[exchanges.endpoints]]\nname = \"time\"\nkind = \"time\"\ninterval = \"200ms\"\n\
             [[exchanges.endpoints]]\nname = \"ticker\"\nkind = \"ticker\"\ninterval = \"100ms\"\n\
             [[exchanges.endpoints]]\nname = \"book\"\nkind = \"book\"\ninterval = \"100ms\"\n\n"
        ));
    }
    text
}

#[tokio::test]
async fn one_shot_rules_show_their_reason_in_check_json() {
    let sim = start(scenario(vec![
        fault(
            FaultKind::Crossed,
            ExchangeKind::Kraken,
            Some(EndpointKind::Book),
            Duration::ZERO,
            LONG,
        ),
        fault(
            FaultKind::BadNumber,
            ExchangeKind::Okx,
            Some(EndpointKind::Book),
            Duration::ZERO,
            LONG,
        ),
        fault(
            FaultKind::Stale,
            ExchangeKind::Bybit,
            Some(EndpointKind::Book),
            Duration::ZERO,
            LONG,
        ),
    ]))
    .await;
    // The stale fault freezes the quote at its first request; let it age past max_age.
    let first = format!(
        "http://{}/bybit/v5/market/orderbook?category=spot&symbol=BTCUSDT&limit=20",
        sim.addr
    );
    reqwest::get(&first).await.expect("warm the stale quote");
    tokio::time::sleep(Duration::from_millis(1500)).await;

    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("c.toml");
    let text = format!(
        "[validation]\nmax_age = \"1s\"\n{}",
        exchanges(&sim.addr.to_string())
    );
    std::fs::write(&path, text).expect("write");
    let out = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_exwatch"))
            .args(["check", "--json", "-c"])
            .arg(&path)
            .output()
    })
    .await
    .expect("join")
    .expect("run check");
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let verdict = |ex: &str, ep: &str| -> String {
        v["endpoints"]
            .as_array()
            .and_then(|a| {
                a.iter()
                    .find(|e| e["exchange"] == ex && e["endpoint"] == ep)
            })
            .and_then(|e| e["verdict"].as_str())
            .unwrap_or("")
            .to_string()
    };
    assert_eq!(verdict("kraken", "book"), "invalid:crossed_book");
    let bad = verdict("okx", "book");
    assert!(
        bad == "invalid:bad_number" || bad == "invalid:non_positive",
        "{bad}"
    );
    assert_eq!(verdict("bybit", "book"), "invalid:stale");
    assert_eq!(verdict("binance", "book"), "ok");
    sim.stop().await;
}

#[tokio::test]
async fn rules_with_history_show_their_reason_as_events() {
    let sim = start(scenario(vec![
        // A 50% jump on Binance's ticker after a second of normal prices.
        fault(
            FaultKind::Jump,
            ExchangeKind::Binance,
            Some(EndpointKind::Ticker),
            Duration::from_secs(1),
            LONG,
        ),
        // Bybit's book frozen from the start.
        fault(
            FaultKind::Stale,
            ExchangeKind::Bybit,
            Some(EndpointKind::Book),
            Duration::ZERO,
            LONG,
        ),
        fault(
            FaultKind::Crossed,
            ExchangeKind::Kraken,
            Some(EndpointKind::Book),
            Duration::ZERO,
            LONG,
        ),
        fault(
            FaultKind::BadNumber,
            ExchangeKind::Okx,
            Some(EndpointKind::Ticker),
            Duration::ZERO,
            LONG,
        ),
    ]))
    .await;
    let text = format!(
        "[journal]\nenabled = false\n[validation]\nmax_age = \"30s\"\nfrozen_after = \"400ms\"\nmax_price_jump_pct = 10.0\n{}",
        exchanges(&sim.addr.to_string())
    );
    let cfg = config::parse("t", &text).expect("config");
    let mut mon = Monitor::start(&cfg, 1).await.expect("monitor");
    let mut tap = mon.taps.remove(0);
    let wanted: BTreeSet<(&str, &str, &str)> = [
        ("binance", "ticker", "price_jump"),
        ("bybit", "book", "frozen"),
        ("kraken", "book", "crossed_book"),
    ]
    .into_iter()
    .collect();
    let mut seen = BTreeSet::new();
    let mut okx_bad = false;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while !(wanted.is_subset(&seen) && okx_bad) {
        let Ok(Some(ev)) = tokio::time::timeout_at(deadline, tap.recv()).await else {
            break;
        };
        if let Event::Sample(s) = ev
            && let Outcome::Invalid { reason } = &s.outcome
        {
            if s.id.exchange == "okx"
                && matches!(
                    reason,
                    InvalidReason::BadNumber { .. } | InvalidReason::NonPositive { .. }
                )
            {
                okx_bad = true;
            }
            for w in &wanted {
                if w.0 == s.id.exchange && w.1 == s.id.endpoint && w.2 == reason.name() {
                    seen.insert(*w);
                }
            }
        }
    }
    mon.taps.clear();
    mon.stop().await;
    sim.stop().await;
    assert!(okx_bad, "the NaN bid was not refused");
    assert_eq!(seen, wanted, "missing reasons");
}
