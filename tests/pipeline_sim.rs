//! The core pipeline against the real simulated exchange over real HTTP:
//! fault classification, breaker, token bucket, and isolation of a hung endpoint.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed unwrap is a failed test

mod common;

use common::sim::{count, fault, scenario, start};
use exwatch::config::{self, ResolvedEndpoint};
use exwatch::exchange::validate::ValidationSettings;
use exwatch::exchange::validate::Validator;
use exwatch::model::BreakerState;
use exwatch::model::{EndpointKind, ExchangeKind, InvalidReason};
use exwatch::model::{Event, Outcome};
use exwatch::monitor::Monitor;
use exwatch::probe::probe_once;
use exwatch::sim::scenario::FaultKind;
use std::time::Duration;
use tokio::time::Instant;

const LONG: Duration = Duration::from_secs(3600);

fn endpoint(
    base: &str,
    kind: ExchangeKind,
    ep: EndpointKind,
    timeout: Duration,
) -> ResolvedEndpoint {
    let text = format!(
        "[[exchanges]]\nname = \"x\"\nkind = \"{}\"\nbase_url = \"{base}\"\n[[exchanges.endpoints]]\nname = \"e\"\nkind = \"{}\"\ntimeout = \"{}ms\"\n",
        kind.as_str(),
        ep.as_str(),
        timeout.as_millis()
    );
    let cfg = config::parse("t", &text).expect("config");
    cfg.endpoints().remove(0)
}

/// Probe one endpoint of one kind under one fault, from the fault's start.
async fn probe_under(fault_kind: FaultKind, kind: ExchangeKind, ep: EndpointKind) -> Outcome {
    let sim = start(scenario(vec![fault(
        fault_kind,
        kind,
        None,
        Duration::ZERO,
        LONG,
    )]))
    .await;
    let e = endpoint(&sim.base_url(kind), kind, ep, Duration::from_millis(1500));
    let client = reqwest::Client::new();
    let p = probe_once(&client, &e, 1 << 20, None).await;
    sim.stop().await;
    p.sample.outcome
}

#[tokio::test]
async fn healthy_simulator_gives_ok_for_every_kind_and_endpoint() {
    let sim = start(scenario(vec![])).await;
    let client = reqwest::Client::new();
    for kind in [
        ExchangeKind::Binance,
        ExchangeKind::Bybit,
        ExchangeKind::Okx,
        ExchangeKind::Coinbase,
        ExchangeKind::Kraken,
    ] {
        for ep in [EndpointKind::Time, EndpointKind::Ticker, EndpointKind::Book] {
            let e = endpoint(&sim.base_url(kind), kind, ep, Duration::from_secs(2));
            let p = probe_once(&client, &e, 1 << 20, None).await;
            assert_eq!(
                p.sample.outcome,
                Outcome::Ok,
                "{kind} {ep:?}: {:?}",
                p.sample
            );
            if ep != EndpointKind::Time {
                assert!(
                    p.sample.price.is_some_and(|x| x > 0.0),
                    "{kind} {ep:?} has a price"
                );
            }
        }
    }
    sim.stop().await;
}

#[tokio::test]
async fn each_fault_kind_is_classified() {
    use ExchangeKind::*;
    let book = EndpointKind::Book;
    assert!(matches!(
        probe_under(FaultKind::RateLimit, Binance, book).await,
        Outcome::RateLimited {
            retry_after_ms: Some(5000),
            ..
        }
    ));
    // Bybit answers a rate limit with HTTP 200 and retCode 10006.
    assert!(matches!(
        probe_under(FaultKind::RateLimit, Bybit, book).await,
        Outcome::RateLimited { .. }
    ));
    assert!(matches!(
        probe_under(FaultKind::RateLimit, Okx, book).await,
        Outcome::RateLimited { .. }
    ));
    assert!(matches!(
        probe_under(FaultKind::Ban, Binance, book).await,
        Outcome::Banned { .. }
    ));
    let server = probe_under(FaultKind::ServerError, Binance, book).await;
    assert!(
        matches!(server, Outcome::Http { status: 503, .. }),
        "{server:?}"
    );
    let html = probe_under(FaultKind::Html, Binance, book).await;
    assert!(
        matches!(
            html,
            Outcome::Invalid {
                reason: InvalidReason::NotJson { .. }
            }
        ),
        "{html:?}"
    );
    let truncated = probe_under(FaultKind::Truncated, Okx, book).await;
    assert!(
        matches!(
            truncated,
            Outcome::Invalid {
                reason: InvalidReason::NotJson { .. }
            }
        ),
        "{truncated:?}"
    );
    let empty = probe_under(FaultKind::Empty, Coinbase, book).await;
    assert!(
        matches!(
            empty,
            Outcome::Invalid {
                reason: InvalidReason::EmptyBody
            }
        ),
        "{empty:?}"
    );
    let crossed = probe_under(FaultKind::Crossed, Kraken, book).await;
    assert!(
        matches!(
            crossed,
            Outcome::Invalid {
                reason: InvalidReason::CrossedBook { .. }
            }
        ),
        "{crossed:?}"
    );
    let reset = probe_under(FaultKind::Reset, Binance, book).await;
    assert!(matches!(reset, Outcome::Connect { .. }), "{reset:?}");
    assert_eq!(
        probe_under(FaultKind::Hang, Binance, book).await,
        Outcome::Timeout
    );
    // Added latency is still a good answer; its latency shows in the sample.
    assert_eq!(
        probe_under(FaultKind::Latency, Binance, book).await,
        Outcome::Ok
    );
}

#[tokio::test]
async fn stale_data_is_caught_by_the_validator() {
    let sim = start(scenario(vec![fault(
        FaultKind::Stale,
        ExchangeKind::Bybit,
        None,
        Duration::ZERO,
        LONG,
    )]))
    .await;
    let e = endpoint(
        &sim.base_url(ExchangeKind::Bybit),
        ExchangeKind::Bybit,
        EndpointKind::Book,
        Duration::from_secs(2),
    );
    let mut v = Validator::new(ValidationSettings {
        max_price_jump_pct: 10.0,
        max_age: Duration::from_millis(300),
        frozen_after: Duration::from_millis(300),
    });
    let client = reqwest::Client::new();
    let first = probe_once(&client, &e, 1 << 20, Some(&mut v)).await;
    assert_eq!(first.sample.outcome, Outcome::Ok);
    tokio::time::sleep(Duration::from_millis(600)).await;
    let later = probe_once(&client, &e, 1 << 20, Some(&mut v)).await;
    match later.sample.outcome {
        Outcome::Invalid {
            reason: InvalidReason::Stale { .. } | InvalidReason::Frozen { .. },
        } => {}
        other => panic!("expected stale or frozen, got {other:?}"),
    }
    sim.stop().await;
}

fn monitor_config(
    base: &str,
    extra_exchange: &str,
    endpoints: &str,
    breaker: &str,
) -> config::Config {
    let text = format!(
        "[journal]\nenabled = false\n[breaker]\n{breaker}\n[[exchanges]]\nname = \"bin\"\nkind = \"binance\"\nbase_url = \"{base}\"\n{extra_exchange}\n{endpoints}"
    );
    config::parse("t", &text).expect("config")
}

/// Collect events from a monitor tap until `until` returns true or the deadline passes.
async fn watch_events(
    rx: &mut tokio::sync::mpsc::Receiver<Event>,
    deadline: Duration,
    mut until: impl FnMut(&Event) -> bool,
) -> bool {
    let end = Instant::now() + deadline;
    loop {
        match tokio::time::timeout_at(end, rx.recv()).await {
            Ok(Some(ev)) => {
                if until(&ev) {
                    return true;
                }
            }
            _ => return false,
        }
    }
}

#[tokio::test]
async fn breaker_opens_holds_off_and_recovers_through_half_open() {
    // 503s for the first 2.5 s, then healthy.
    let sim = start(scenario(vec![fault(
        FaultKind::ServerError,
        ExchangeKind::Binance,
        None,
        Duration::ZERO,
        Duration::from_millis(2500),
    )]))
    .await;
    let cfg = monitor_config(
        &sim.base_url(ExchangeKind::Binance),
        "",
        "[[exchanges.endpoints]]\nname = \"book\"\nkind = \"book\"\ninterval = \"50ms\"\n",
        "consecutive_failures = 3\nopen_for = \"1500ms\"\nclose_after = 1\n",
    );
    let mut mon = Monitor::start(&cfg, 1).await.expect("monitor");
    let mut tap = mon.taps.remove(0);
    let opened = watch_events(&mut tap, Duration::from_secs(10), |e| {
        matches!(e, Event::BreakerChanged { transition, .. } if transition.to == BreakerState::Open)
    })
    .await;
    assert!(opened, "breaker never opened");
    let at_open = count(&sim, "binance/book").await;
    // While open (1.5 s), nothing reaches the exchange.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let while_open = count(&sim, "binance/book").await;
    assert_eq!(
        at_open, while_open,
        "calls reached the endpoint while the breaker was open"
    );
    let mut saw_half_open = false;
    let closed = watch_events(&mut tap, Duration::from_secs(15), |e| {
        if let Event::BreakerChanged { transition, .. } = e {
            saw_half_open |= transition.to == BreakerState::HalfOpen;
            return transition.to == BreakerState::Closed;
        }
        false
    })
    .await;
    assert!(saw_half_open, "recovery went through half-open");
    assert!(closed, "breaker never closed after the fault ended");
    mon.taps.clear();
    mon.stop().await;
    sim.stop().await;
}

#[tokio::test]
async fn token_bucket_keeps_the_request_rate_within_budget() {
    let sim = start(scenario(vec![])).await;
    // Polls every 10 ms would be ~200 requests in 2 s; the budget allows 5 + 10/s.
    let cfg = monitor_config(
        &sim.base_url(ExchangeKind::Binance),
        "rate_limit = { capacity = 5, refill_per_sec = 10 }",
        "[[exchanges.endpoints]]\nname = \"book\"\nkind = \"book\"\ninterval = \"10ms\"\nweight = 1\n",
        "",
    );
    let started = std::time::Instant::now();
    let mon = Monitor::start(&cfg, 0).await.expect("monitor");
    tokio::time::sleep(Duration::from_secs(2)).await;
    mon.stop().await;
    let elapsed = started.elapsed().as_secs_f64();
    let n = count(&sim, "binance/book").await as f64;
    let budget = 5.0 + 10.0 * elapsed;
    assert!(
        n <= budget + 1.0,
        "{n} requests in {elapsed:.2}s exceed the budget {budget:.1}"
    );
    assert!(
        n >= 10.0,
        "only {n} requests: the limiter starved the worker"
    );
    sim.stop().await;
}

#[tokio::test]
async fn a_hung_endpoint_does_not_delay_the_others() {
    let sim = start(scenario(vec![fault(
        FaultKind::Hang,
        ExchangeKind::Binance,
        Some(EndpointKind::Book),
        Duration::ZERO,
        LONG,
    )]))
    .await;
    let cfg = monitor_config(
        &sim.base_url(ExchangeKind::Binance),
        "",
        "[[exchanges.endpoints]]\nname = \"book\"\nkind = \"book\"\ninterval = \"100ms\"\ntimeout = \"30s\"\n\
         [[exchanges.endpoints]]\nname = \"ticker\"\nkind = \"ticker\"\ninterval = \"100ms\"\n",
        "",
    );
    let mut mon = Monitor::start(&cfg, 1).await.expect("monitor");
    let mut tap = mon.taps.remove(0);
    let mut ticker_ok = 0;
    let mut book_samples = 0;
    watch_events(&mut tap, Duration::from_millis(1500), |e| {
        if let Event::Sample(s) = e {
            if s.id.endpoint == "ticker" && s.outcome.is_ok() {
                ticker_ok += 1;
            }
            if s.id.endpoint == "book" {
                book_samples += 1;
            }
        }
        false
    })
    .await;
    assert_eq!(
        book_samples, 0,
        "the hung book never answers within its 30 s timeout"
    );
    assert!(
        ticker_ok >= 8,
        "ticker kept its 100 ms pace beside the hung book: {ticker_ok} samples"
    );
    mon.taps.clear();
    mon.stop().await;
    sim.stop().await;
}

#[tokio::test]
async fn a_hang_is_reported_while_the_request_is_still_in_flight() {
    // Healthy for 2 s (warm-up), then the book hangs for 1 s.
    let sim = start(scenario(vec![fault(
        FaultKind::Hang,
        ExchangeKind::Binance,
        Some(EndpointKind::Book),
        Duration::from_secs(2),
        Duration::from_secs(1),
    )]))
    .await;
    let cfg = monitor_config(
        &sim.base_url(ExchangeKind::Binance),
        "",
        "[[exchanges.endpoints]]\nname = \"book\"\nkind = \"book\"\ninterval = \"200ms\"\ntimeout = \"3s\"\n",
        "",
    );
    let mut mon = Monitor::start(&cfg, 1).await.expect("monitor");
    let mut tap = mon.taps.remove(0);
    let (mut stalled, mut fired_at, mut timeouts_before_fire) = (0, None, 0);
    let started = Instant::now();
    let fired = watch_events(&mut tap, Duration::from_secs(10), |e| {
        match e {
            Event::Stalled { id, .. } if id.endpoint == "book" => stalled += 1,
            Event::Sample(s) if s.id.endpoint == "book" && s.outcome == Outcome::Timeout => {
                timeouts_before_fire += 1
            }
            Event::AlertChanged { alert } if alert.kind == "hung" => {
                fired_at = Some(started.elapsed());
                return true;
            }
            _ => {}
        }
        false
    })
    .await;
    assert!(fired, "no hung alert");
    assert!(stalled >= 1, "the worker reported the stall");
    assert_eq!(
        timeouts_before_fire, 0,
        "the alert came while the request was in flight, before its 3 s timeout"
    );
    let at = fired_at.expect("fired");
    assert!(at < Duration::from_millis(4500), "fired at {at:?}");
    // The snapshot is published a moment after the taps see the event.
    let mut snaps = mon.snapshots.clone();
    let shown = tokio::time::timeout(
        Duration::from_secs(2),
        snaps.wait_for(|s| s.exchanges[0].endpoints[0].stalled_since_ms.is_some()),
    )
    .await
    .is_ok_and(|r| r.is_ok());
    assert!(shown, "the row shows the stall");
    assert!(!snaps.borrow().exchanges[0].endpoints[0].healthy());

    // The hung request times out at about 5 s; prompt answers then clear it.
    let resolved = watch_events(&mut tap, Duration::from_secs(10), |e| {
        matches!(e, Event::AlertChanged { alert }
            if alert.kind == "hung" && alert.state == exwatch::model::AlertState::Resolved)
    })
    .await;
    assert!(
        resolved,
        "the hung alert resolved after the endpoint answered again"
    );
    let cleared = tokio::time::timeout(
        Duration::from_secs(2),
        snaps.wait_for(|s| s.exchanges[0].endpoints[0].stalled_since_ms.is_none()),
    )
    .await
    .is_ok_and(|r| r.is_ok());
    assert!(cleared, "the row no longer shows the stall");
    mon.taps.clear();
    mon.stop().await;
    sim.stop().await;
}

/// The case end to end: a ticker answer naming another instrument is
/// `wrong_instrument` where the body names one, and its prices never become
/// the jump baseline, however many polls it lasts.
#[tokio::test]
async fn another_instruments_answers_are_refused_and_never_become_the_baseline() {
    use ExchangeKind::*;
    for kind in [Binance, Bybit, Okx, Kraken] {
        let got = probe_under(FaultKind::WrongInstrument, kind, EndpointKind::Ticker).await;
        assert!(
            matches!(
                &got,
                Outcome::Invalid {
                    reason: InvalidReason::WrongInstrument { got, .. }
                } if got.starts_with("CANDY")
            ),
            "{kind}: {got:?}"
        );
    }
    // Coinbase bodies do not name the product: it cannot be told.
    assert_eq!(
        probe_under(FaultKind::WrongInstrument, Coinbase, EndpointKind::Ticker).await,
        Outcome::Ok
    );

    let healthy = start(scenario(vec![])).await;
    let wrong = start(scenario(vec![fault(
        FaultKind::WrongInstrument,
        Bybit,
        None,
        Duration::ZERO,
        LONG,
    )]))
    .await;
    let secs = Duration::from_secs(2);
    let good = endpoint(&healthy.base_url(Bybit), Bybit, EndpointKind::Ticker, secs);
    let bad = endpoint(&wrong.base_url(Bybit), Bybit, EndpointKind::Ticker, secs);
    let mut v = Validator::new(ValidationSettings {
        max_price_jump_pct: 10.0,
        max_age: Duration::from_secs(60),
        frozen_after: Duration::from_secs(60),
    });
    let client = reqwest::Client::new();
    let first = probe_once(&client, &good, 1 << 20, Some(&mut v)).await;
    assert_eq!(first.sample.outcome, Outcome::Ok);
    let baseline = v.last_good_price();
    assert!(baseline.is_some());
    // More polls than the jump rule needs to accept a lasting move.
    for _ in 0..5 {
        let p = probe_once(&client, &bad, 1 << 20, Some(&mut v)).await;
        assert_eq!(
            p.sample.outcome,
            Outcome::Invalid {
                reason: InvalidReason::WrongInstrument {
                    expected: "BTCUSDT".into(),
                    got: "CANDYUSDT".into()
                }
            }
        );
        assert!(p.payload.is_none() && p.sample.price.is_none());
        assert_eq!(v.last_good_price(), baseline);
    }
    let back = probe_once(&client, &good, 1 << 20, Some(&mut v)).await;
    assert_eq!(back.sample.outcome, Outcome::Ok, "{:?}", back.sample);
    healthy.stop().await;
    wrong.stop().await;
}
