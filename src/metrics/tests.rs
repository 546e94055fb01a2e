//! The exporter fed events and snapshots directly, without a server.

use super::*;
use crate::model::{Alert, AlertState, ApiError, BreakerState, Component, Delivery, Outcome};
use crate::model::{Sample, Severity, Triage, TriageSource, TriageTotals};
use std::collections::BTreeMap;

fn sample(outcome: Outcome) -> Event {
    Event::Sample(Sample {
        id: EndpointId::new("bin", "book"),
        at_ms: 1,
        latency_us: 20_000,
        status: None,
        outcome,
        summary: None,
        price: None,
        exchange_ts_ms: None,
        signal: None,
    })
}

fn alert(state: AlertState, triage: Option<Triage>) -> Alert {
    Alert {
        fingerprint: "bin/book/latency".into(),
        exchange: "bin".into(),
        endpoint: Some("book".into()),
        kind: "latency".parse().unwrap(),
        severity: Severity::Critical,
        title: String::new(),
        description: String::new(),
        metrics: BTreeMap::from([("z_score".to_string(), 7.5)]),
        first_seen_ms: 1,
        last_seen_ms: 1,
        occurrences: 1,
        state,
        state_by: None,
        state_at_ms: 1,
        resolved_at_ms: None,
        delivery: BTreeMap::new(),
        triage,
        incident: None,
        episode_start_ms: None,
    }
}

fn line_value(text: &str, prefix: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[test]
fn events_count_once_and_resends_of_the_same_fact_do_not() {
    let (_snapshots, rx) = watch::channel(Arc::new(Snapshot::default()));
    let mut m = Metrics::new(rx);
    m.on_event(&sample(Outcome::Ok));
    m.on_event(&sample(Outcome::Timeout));
    m.on_event(&sample(Outcome::Http {
        status: 503,
        detail: String::new(),
    }));
    let triage = Triage {
        source: TriageSource::Model,
        escalation: 3,
        requires_human: true,
        summary: String::new(),
        likely_cause: String::new(),
        suggested_actions: vec![],
        auto_resolve: false,
        note: String::new(),
        latency_ms: 10,
        cost_usd: 0.25,
        at_ms: 5,
    };
    m.on_event(&Event::AlertChanged {
        alert: alert(AlertState::Firing, None),
    });
    // The same alert again (re-fired, then triaged twice with the same result): one raise, one triage.
    m.on_event(&Event::AlertChanged {
        alert: alert(AlertState::Firing, Some(triage.clone())),
    });
    m.on_event(&Event::AlertChanged {
        alert: alert(AlertState::Acknowledged, Some(triage)),
    });
    // Cumulative totals: the same totals twice count once, growth counts its difference.
    let totals = TriageTotals {
        calls: 2,
        tokens_in: 100,
        tokens_out: 40,
        cost_usd: 0.25,
        by_model: 1,
        ..TriageTotals::default()
    };
    m.on_event(&Event::TriageUsage(totals.clone()));
    m.on_event(&Event::TriageUsage(totals.clone()));
    m.on_event(&Event::TriageUsage(TriageTotals {
        calls: 3,
        tokens_in: 150,
        cost_usd: 0.5,
        by_rules: 1,
        ..totals
    }));
    for _ in 0..2 {
        m.on_event(&Event::AlertDelivery {
            fingerprint: "bin/book/latency".into(),
            sink: "slack".into(),
            delivery: Delivery::Sent { at_ms: 9 },
        });
    }
    m.on_event(&Event::AlertDelivery {
        fingerprint: "bin/book/latency".into(),
        sink: "slack".into(),
        delivery: Delivery::Sent { at_ms: 99 },
    });
    let text = m.encode().expect("encode");
    let v = |p: &str| line_value(&text, p);
    assert_eq!(
        v(r#"exchange_api_calls_total{exchange="bin",endpoint="book",status="ok"}"#),
        Some(1.0)
    );
    assert_eq!(
        v(r#"exchange_api_calls_total{exchange="bin",endpoint="book",status="http_503"}"#),
        Some(1.0)
    );
    // Two latencies recorded: the timeout is not one.
    assert_eq!(
        v(r#"exchange_api_latency_seconds_count{exchange="bin",endpoint="book"}"#),
        Some(2.0)
    );
    assert_eq!(
        v(r#"exwatch_alerts_raised_total{severity="critical",kind="latency"}"#),
        Some(1.0)
    );
    assert_eq!(
        v(r#"alerts_sent_total{severity="critical",channel="slack"}"#),
        Some(2.0)
    );
    assert_eq!(v(r#"exwatch_triage_total{source="model"}"#), Some(1.0));
    assert_eq!(v(r#"exwatch_triage_total{source="rules"}"#), Some(1.0));
    assert_eq!(
        v(r#"exwatch_triage_model_calls_total{outcome="answered"}"#),
        Some(3.0)
    );
    assert_eq!(
        v(r#"exwatch_triage_tokens_total{direction="in"}"#),
        Some(150.0)
    );
    assert_eq!(
        v(r#"exwatch_triage_tokens_total{direction="out"}"#),
        Some(40.0)
    );
    assert_eq!(v("exwatch_triage_cost_usd_total "), Some(0.5));
}

#[test]
fn gauges_follow_the_latest_snapshot_only() {
    let (snapshots, rx) = watch::channel(Arc::new(Snapshot::default()));
    let m = Metrics::with_clock(rx, || 13_500);
    let mut st = crate::state::State::new();
    st.apply(&Event::Watching {
        id: EndpointId::new("bin", "book"),
        exchange_kind: crate::model::ExchangeKind::Binance,
        kind: crate::model::EndpointKind::Book,
        url: "http://x/".into(),
        interval_ms: 2000,
    });
    let mut s = match sample(Outcome::Ok) {
        Event::Sample(s) => s,
        _ => unreachable!(),
    };
    s.at_ms = 10_000;
    st.apply(&Event::Sample(s));
    st.apply(&Event::AlertChanged {
        alert: alert(AlertState::Firing, None),
    });
    snapshots.send_replace(Arc::new(st.snapshot()));
    let text = m.encode().expect("scrape");
    let v = |p: &str| line_value(&text, p);
    assert_eq!(
        v(r#"exwatch_data_age_seconds{exchange="bin",endpoint="book"}"#),
        Some(3.5)
    );
    assert_eq!(
        v(r#"exwatch_poll_interval_seconds{exchange="bin",endpoint="book"}"#),
        Some(2.0)
    );
    assert_eq!(
        v(r#"exwatch_breaker_state{exchange="bin",endpoint="book"}"#),
        Some(0.0)
    );
    assert_eq!(
        v(r#"anomaly_score{exchange="bin",endpoint="book",detector="latency"}"#),
        Some(7.5)
    );
    assert_eq!(v(r#"exwatch_alerts_open{severity="critical"}"#), Some(1.0));
    // An empty snapshot later: the endpoint's gauges go away with it.
    snapshots.send_replace(Arc::new(Snapshot::default()));
    let text = m.encode().expect("scrape");
    // Gone with their descriptors, as a registered family without series is.
    assert!(!text.contains("exwatch_data_age_seconds"), "{text}");
    assert!(!text.contains("exwatch_breaker_state"), "{text}");
    assert_eq!(
        line_value(&text, r#"exwatch_alerts_open{severity="critical"}"#),
        Some(0.0)
    );
}

/// Issue #13: a hold is a state the metrics show, on every endpoint it
/// holds, with its end; an endpoint nobody holds says 0, and so does a
/// held one once the hold is over.
#[test]
fn held_endpoints_say_so_and_until_when() {
    use crate::model::{EndpointKind, ExchangeKind, Tier, TierFill};
    let mut st = crate::state::State::new();
    for (ex, ep) in [("bin", "book"), ("bin", "ticker"), ("okx", "ticker")] {
        st.apply(&Event::Watching {
            id: EndpointId::new(ex, ep),
            exchange_kind: ExchangeKind::Binance,
            kind: EndpointKind::Ticker,
            url: "http://x/".into(),
            interval_ms: 1000,
        });
    }
    let mut s = match sample(Outcome::RateLimited {
        retry_after_ms: Some(35_000),
        detail: "429".into(),
    }) {
        Event::Sample(s) => s,
        _ => unreachable!(),
    };
    s.at_ms = 1_000;
    st.apply(&Event::Sample(s));
    st.apply(&Event::LimiterFill {
        id: EndpointId::new("bin", "book"),
        at_ms: 1_000,
        tiers: vec![TierFill {
            tier: Tier::Exchange,
            tokens: 0.0,
            capacity: 10.0,
            blocked_for_ms: Some(35_000),
        }],
    });
    let snap = Arc::new(st.snapshot());
    let scrape = |now: fn() -> i64| {
        let (_tx, rx) = watch::channel(snap.clone());
        Metrics::with_clock(rx, now).encode().expect("scrape")
    };
    let during = scrape(|| 2_000);
    let v = |p: &str| line_value(&during, p);
    for ep in ["book", "ticker"] {
        assert_eq!(
            v(&format!(
                r#"exwatch_endpoint_held{{exchange="bin",endpoint="{ep}"}}"#
            )),
            Some(1.0),
            "{during}"
        );
        assert_eq!(
            v(&format!(
                r#"exwatch_endpoint_held_until_seconds{{exchange="bin",endpoint="{ep}"}}"#
            )),
            Some(36.0)
        );
    }
    assert_eq!(
        v(r#"exwatch_endpoint_held{exchange="okx",endpoint="ticker"}"#),
        Some(0.0)
    );
    assert_eq!(
        v(r#"exwatch_endpoint_held_until_seconds{exchange="okx",endpoint="ticker"}"#),
        Some(0.0)
    );
    assert!(during.contains("# UNIT exwatch_endpoint_held_until_seconds seconds"));
    // The hold ends at 36 s: not held any more, the series stay.
    let after = scrape(|| 36_000);
    let v = |p: &str| line_value(&after, p);
    assert_eq!(
        v(r#"exwatch_endpoint_held{exchange="bin",endpoint="ticker"}"#),
        Some(0.0)
    );
    assert_eq!(
        v(r#"exwatch_endpoint_held_until_seconds{exchange="bin",endpoint="book"}"#),
        Some(0.0)
    );
}

/// A busy few seconds of two exchanges: every kind of event the exporter
/// counts or reads gauges from (polls of every outcome, stalls, limiter
/// waits and fills, breaker trips and rejections, clock offsets, backend
/// health, alerts raised, re-sent, resolved, delivered, failed, triaged).
fn golden_events() -> Vec<Event> {
    use crate::model::{EndpointKind, ExchangeKind, InvalidReason, Tier, TierFill, Transition};
    let watching = |ex: &str, ep: &str, kind: EndpointKind, interval_ms: u64| Event::Watching {
        id: EndpointId::new(ex, ep),
        exchange_kind: ExchangeKind::Binance,
        kind,
        url: format!("http://127.0.0.1:1/{ex}/{ep}"),
        interval_ms,
    };
    let poll = |ex: &str, ep: &str, at_ms: i64, latency_us: u64, outcome: Outcome| {
        Event::Sample(Sample {
            id: EndpointId::new(ex, ep),
            at_ms,
            latency_us,
            status: None,
            outcome,
            summary: None,
            price: None,
            exchange_ts_ms: None,
            signal: None,
        })
    };
    let mut stale = alert(AlertState::Firing, None);
    stale.fingerprint = "okx/*/stale".into();
    stale.exchange = "okx".into();
    stale.endpoint = None;
    stale.kind = "stale".parse().unwrap();
    stale.severity = Severity::Warning;
    stale.metrics = BTreeMap::new();
    let mut err = alert(AlertState::Firing, None);
    err.fingerprint = "bin/book/error_rate".into();
    err.kind = "error_rate".parse().unwrap();
    err.severity = Severity::Emergency;
    let mut usage = alert(AlertState::Firing, None);
    usage.fingerprint = "okx/ticker/rate_limit".into();
    usage.exchange = "okx".into();
    usage.endpoint = Some("ticker".into());
    usage.kind = "rate_limit".parse().unwrap();
    usage.severity = Severity::Info;
    usage.metrics = BTreeMap::from([("usage".to_string(), 0.875)]);
    let mut gone = usage.clone();
    gone.fingerprint = "okx/ticker/ban".into();
    gone.kind = "ban".parse().unwrap();
    let mut gone_resolved = gone.clone();
    gone_resolved.state = AlertState::Resolved;
    gone_resolved.resolved_at_ms = Some(4_000);
    let triaged = Triage {
        source: TriageSource::Rules,
        escalation: 2,
        requires_human: false,
        summary: String::new(),
        likely_cause: String::new(),
        suggested_actions: vec![],
        auto_resolve: false,
        note: String::new(),
        latency_ms: 1,
        cost_usd: 0.0,
        at_ms: 3,
    };
    vec![
        watching("bin", "book", EndpointKind::Book, 1000),
        watching("bin", "ticker", EndpointKind::Ticker, 500),
        watching("okx", "ticker", EndpointKind::Ticker, 2000),
        poll("bin", "book", 1_000, 3_000, Outcome::Ok),
        poll("bin", "book", 2_000, 70_000, Outcome::Ok),
        poll(
            "bin",
            "book",
            3_000,
            1_200_000,
            Outcome::Http {
                status: 503,
                detail: "down".into(),
            },
        ),
        poll(
            "bin",
            "book",
            3_500,
            9_000,
            Outcome::Invalid {
                reason: InvalidReason::CrossedBook { bid: 2.0, ask: 1.0 },
            },
        ),
        poll("bin", "ticker", 1_100, 1_000_000, Outcome::Timeout),
        poll(
            "bin",
            "ticker",
            1_600,
            40_000,
            Outcome::Exchange {
                error: ApiError::Maintenance {
                    message: "m".into(),
                },
            },
        ),
        poll(
            "okx",
            "ticker",
            1_200,
            15_000,
            Outcome::RateLimited {
                retry_after_ms: Some(1000),
                detail: "429".into(),
            },
        ),
        poll(
            "okx",
            "ticker",
            2_200,
            15_000,
            Outcome::Connect {
                detail: "refused".into(),
            },
        ),
        poll("okx", "ticker", 4_200, 25_000, Outcome::Ok),
        Event::Stalled {
            id: EndpointId::new("bin", "ticker"),
            at_ms: 4_000,
            in_flight_ms: 900,
        },
        Event::LimiterWaited {
            id: EndpointId::new("bin", "book"),
            at_ms: 2_500,
            waited_ms: 40,
            tier: Tier::Endpoint,
        },
        Event::LimiterWaited {
            id: EndpointId::new("bin", "book"),
            at_ms: 2_600,
            waited_ms: 2_000,
            tier: Tier::Exchange,
        },
        Event::LimiterFill {
            id: EndpointId::new("bin", "book"),
            at_ms: 3_000,
            tiers: vec![
                TierFill {
                    tier: Tier::Exchange,
                    tokens: 47.5,
                    capacity: 50.0,
                    blocked_for_ms: None,
                },
                TierFill {
                    tier: Tier::Endpoint,
                    tokens: 0.25,
                    capacity: 1.0,
                    blocked_for_ms: Some(100),
                },
            ],
        },
        Event::BreakerChanged {
            id: EndpointId::new("bin", "ticker"),
            at_ms: 2_000,
            transition: Transition {
                from: BreakerState::Closed,
                to: BreakerState::Open,
                reason: "3 failures".into(),
                open_until_ms: Some(6_000),
            },
        },
        Event::BreakerRejected {
            id: EndpointId::new("bin", "ticker"),
            at_ms: 2_500,
            state: BreakerState::Open,
        },
        Event::BreakerChanged {
            id: EndpointId::new("okx", "ticker"),
            at_ms: 2_300,
            transition: Transition {
                from: BreakerState::Open,
                to: BreakerState::HalfOpen,
                reason: "probe".into(),
                open_until_ms: None,
            },
        },
        Event::PollInterval {
            id: EndpointId::new("okx", "ticker"),
            interval_ms: 4_000,
        },
        Event::ClockOffset {
            exchange: "bin".into(),
            offset_ms: -1_250,
        },
        Event::BackendHealth {
            at_ms: 100,
            component: Component::RedisBreaker,
            healthy: true,
            detail: String::new(),
        },
        Event::BackendHealth {
            at_ms: 200,
            component: Component::Journal,
            healthy: false,
            detail: "disk full".into(),
        },
        Event::AlertChanged {
            alert: alert(AlertState::Firing, None),
        },
        Event::AlertChanged { alert: stale },
        Event::AlertChanged { alert: err },
        Event::AlertChanged { alert: usage },
        Event::AlertChanged { alert: gone },
        Event::AlertChanged {
            alert: gone_resolved,
        },
        Event::AlertChanged {
            alert: alert(AlertState::Acknowledged, Some(triaged)),
        },
        Event::AlertDelivery {
            fingerprint: "bin/book/latency".into(),
            sink: "slack".into(),
            delivery: Delivery::Sent { at_ms: 5 },
        },
        Event::AlertDelivery {
            fingerprint: "okx/*/stale".into(),
            sink: "slack".into(),
            delivery: Delivery::Sent { at_ms: 6 },
        },
        Event::AlertDelivery {
            fingerprint: "nobody/knows/this".into(),
            sink: "email".into(),
            delivery: Delivery::Sent { at_ms: 7 },
        },
        Event::AlertDelivery {
            fingerprint: "okx/*/stale".into(),
            sink: "pagerduty".into(),
            delivery: Delivery::Retrying {
                attempts: 1,
                last_error: "503".into(),
            },
        },
        Event::AlertDelivery {
            fingerprint: "okx/*/stale".into(),
            sink: "webhook".into(),
            delivery: Delivery::Failed {
                error: "403".into(),
            },
        },
        Event::AlertDelivery {
            fingerprint: "okx/*/stale".into(),
            sink: "webhook".into(),
            delivery: Delivery::Suppressed {
                reason: "grouped".into(),
            },
        },
        Event::TriageUsage(TriageTotals {
            calls: 4,
            failed_calls: 1,
            tokens_in: 1_000,
            tokens_out: 250,
            cost_usd: 0.125,
            by_model: 3,
            by_rules: 2,
            fallbacks: 1,
            overflows: 0,
        }),
    ]
}

/// Every line of an exposition except exwatch's own process figures and
/// the host clock's step (which move by themselves), sorted: the order of families and series
/// is not part of the format's meaning.
fn comparable(text: &str) -> String {
    let mut lines: Vec<&str> = text
        .lines()
        .filter(|l| {
            !l.contains(" process_")
                && !l.starts_with("process_")
                && !l.contains("exwatch_host_clock_step")
        })
        .collect();
    lines.sort_unstable();
    lines.join("\n") + "\n"
}

/// The whole exposition of [`golden_events`] at a fixed time, against
/// the one the exporter gave before its split into areas
/// (`tests/fixtures/metrics/exposition.txt`; `EXWATCH_BLESS=1` rewrites it).
fn assert_golden(text: &str) {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/metrics/exposition.txt"
    );
    let got = comparable(text);
    if std::env::var_os("EXWATCH_BLESS").is_some() {
        std::fs::create_dir_all(std::path::Path::new(path).parent().expect("dir")).expect("mkdir");
        std::fs::write(path, &got).expect("bless");
    }
    let want = std::fs::read_to_string(path).expect("read the golden exposition");
    assert_eq!(got, want, "exposition differs from {path}");
}

#[test]
fn the_exposition_of_a_busy_stretch_is_unchanged() {
    let (snapshots, rx) = watch::channel(Arc::new(Snapshot::default()));
    let mut m = Metrics::with_clock(rx, || 50_000);
    let mut st = crate::state::State::new();
    for ev in &golden_events() {
        st.apply(ev);
        m.on_event(ev);
    }
    snapshots.send_replace(Arc::new(st.snapshot()));
    let text = m.encode().expect("scrape");
    assert_golden(&text);
}
