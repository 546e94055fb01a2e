//! The alert engine's lifecycle, fed events with injected time.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed unwrap is a failed test

use exwatch::alert::engine::Engine;
use exwatch::alert::{AlertSettings, MaintenanceWindow, Matcher};
use exwatch::model::Command;
use exwatch::model::{Alert, AlertState, Severity};
use exwatch::model::{BreakerState, Transition, TripCause};
use exwatch::model::{EndpointId, EndpointKind, ExchangeKind};
use exwatch::model::{Event, Outcome, Sample};
use exwatch::state::State;
use std::time::Duration;

fn watching(exchange: &str, endpoint: &str) -> Event {
    Event::Watching {
        id: EndpointId::new(exchange, endpoint),
        exchange_kind: ExchangeKind::Binance,
        kind: EndpointKind::Ticker,
        url: "http://127.0.0.1:1/".into(),
        interval_ms: 1000,
    }
}

fn sample(exchange: &str, endpoint: &str, at_ms: i64, outcome: Outcome) -> Event {
    Event::Sample(Sample {
        id: EndpointId::new(exchange, endpoint),
        at_ms,
        latency_us: 20_000,
        status: Some(200),
        outcome,
        summary: None,
        price: None,
        exchange_ts_ms: None,
        signal: None,
    })
}

fn fail() -> Outcome {
    Outcome::Http {
        status: 503,
        detail: "unavailable".into(),
    }
}

fn changed(evs: &[Event]) -> Vec<Alert> {
    evs.iter()
        .filter_map(|e| match e {
            Event::AlertChanged { alert } => Some(alert.clone()),
            _ => None,
        })
        .collect()
}

/// Feed one event at its own time, returning the alert changes.
fn feed(e: &mut Engine, ev: Event, now: i64) -> Vec<Alert> {
    changed(&e.on_event(&ev, now))
}

const FP: &str = "bin/ticker/error_rate";

#[test]
fn raise_refresh_resolve_and_refire_counts_occurrences() {
    let mut e = Engine::new(AlertSettings::default());
    feed(&mut e, watching("bin", "ticker"), 0);
    for t in 1..=5 {
        assert!(
            feed(
                &mut e,
                sample("bin", "ticker", t * 1000, Outcome::Ok),
                t * 1000
            )
            .is_empty()
        );
    }
    assert!(feed(&mut e, sample("bin", "ticker", 6000, fail()), 6000).is_empty());
    let raised = feed(&mut e, sample("bin", "ticker", 7000, fail()), 7000);
    assert_eq!(raised.len(), 1);
    let a = &raised[0];
    assert_eq!(a.fingerprint, FP);
    assert_eq!(
        a.fingerprint,
        Alert::fingerprint_of("bin", Some("ticker"), "error_rate")
    );
    assert_eq!(
        (a.state, a.severity, a.occurrences),
        (AlertState::Firing, Severity::Critical, 1)
    );
    assert_eq!(a.first_seen_ms, 7000);

    // Still failing: no event per sample, only a refresh every update_every (30 s).
    let mut refreshes = 0;
    for t in 8..=40 {
        // (no_data fires too after 15 s without valid data; count ours only.)
        refreshes += feed(&mut e, sample("bin", "ticker", t * 1000, fail()), t * 1000)
            .iter()
            .filter(|a| a.fingerprint == FP)
            .count();
    }
    assert_eq!(refreshes, 1);
    assert_eq!(e.alert(FP).map(|a| a.last_seen_ms), Some(40_000));

    // Recovery: resolves once the clear condition held for its duration.
    let mut resolved = None;
    for t in 41..=60 {
        let ch = feed(
            &mut e,
            sample("bin", "ticker", t * 1000, Outcome::Ok),
            t * 1000,
        );
        for a in ch.into_iter().filter(|a| a.fingerprint == FP) {
            resolved = Some((t, a));
        }
    }
    let (t, a) = resolved.expect("never resolved");
    assert_eq!(a.state, AlertState::Resolved);
    assert_eq!(a.state_by.as_deref(), Some("auto"));
    assert_eq!(a.resolved_at_ms, Some(t * 1000));

    // Fails again: the same alert, one more occurrence.
    feed(&mut e, sample("bin", "ticker", 61_000, fail()), 61_000);
    let again = feed(&mut e, sample("bin", "ticker", 62_000, fail()), 62_000);
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].fingerprint, FP);
    assert_eq!(again[0].occurrences, 2);
    assert_eq!(again[0].state, AlertState::Firing);
    assert_eq!(again[0].first_seen_ms, 7000);
    assert_eq!(again[0].resolved_at_ms, None);
}

fn raise(e: &mut Engine, exchange: &str, endpoint: &str, t0: i64) -> Vec<Alert> {
    feed(e, sample(exchange, endpoint, t0, fail()), t0);
    feed(e, sample(exchange, endpoint, t0 + 1000, fail()), t0 + 1000)
}

#[test]
fn acknowledge_changes_state_and_records_who() {
    let mut e = Engine::new(AlertSettings::default());
    raise(&mut e, "bin", "ticker", 1000);
    let ack = changed(&e.on_command(
        &Command::Acknowledge {
            fingerprint: FP.into(),
            by: "alice".into(),
            episode: None,
        },
        5000,
    ));
    assert_eq!(ack.len(), 1);
    assert_eq!(ack[0].state, AlertState::Acknowledged);
    assert_eq!(ack[0].state_by.as_deref(), Some("alice"));
    assert_eq!(ack[0].state_at_ms, 5000);
    // Further failures keep it acknowledged.
    feed(&mut e, sample("bin", "ticker", 6000, fail()), 6000);
    assert_eq!(e.alert(FP).map(|a| a.state), Some(AlertState::Acknowledged));
    // Unknown fingerprints are ignored.
    assert!(
        e.on_command(
            &Command::Acknowledge {
                fingerprint: "nope".into(),
                by: "bob".into(),
                episode: None,
            },
            7000
        )
        .is_empty()
    );
}

#[test]
fn acknowledge_acts_only_on_the_episode_the_operator_saw() {
    let mut e = Engine::new(AlertSettings::default());
    raise(&mut e, "bin", "ticker", 1000);
    assert_eq!(e.alert(FP).map(|a| a.occurrences), Some(1));
    // The key was pressed on episode 2, which is not the one open: nothing.
    let ack = |e: &mut Engine, episode| {
        changed(&e.on_command(
            &Command::Acknowledge {
                fingerprint: FP.into(),
                by: "alice".into(),
                episode: Some(episode),
            },
            5000,
        ))
    };
    assert!(ack(&mut e, 2).is_empty());
    assert_eq!(e.alert(FP).map(|a| a.state), Some(AlertState::Firing));
    let done = ack(&mut e, 1);
    assert_eq!(done.len(), 1);
    assert_eq!(done[0].state, AlertState::Acknowledged);
}

#[test]
fn silence_by_matcher_for_a_duration() {
    // Two failing endpoints of one exchange would be an outage; not the point here.
    let mut settings = AlertSettings::default();
    settings.detect.breaker.outage_min_endpoints = 10;
    let mut e = Engine::new(settings);
    raise(&mut e, "bin", "ticker", 1000);
    raise(&mut e, "okx", "ticker", 1000);
    let ch = changed(&e.on_command(
        &Command::Silence {
            exchange: Some("bin".into()),
            endpoint: None,
            kind: Some("error_*".into()),
            duration: Duration::from_secs(60),
            by: "carol".into(),
        },
        3000,
    ));
    assert_eq!(ch.len(), 1, "only bin matches");
    assert_eq!(ch[0].state, AlertState::Silenced);
    assert!(
        ch[0]
            .state_by
            .as_deref()
            .is_some_and(|b| b.contains("carol"))
    );
    assert_eq!(
        e.alert("okx/ticker/error_rate").map(|a| a.state),
        Some(AlertState::Firing)
    );
    // New alerts that match are born silenced.
    let born = raise(&mut e, "bin", "book", 4000);
    assert_eq!(born[0].state, AlertState::Silenced);
    // Expiry brings them back.
    feed(&mut e, sample("bin", "ticker", 62_000, fail()), 62_000);
    feed(&mut e, sample("bin", "book", 62_000, fail()), 62_000);
    let back: Vec<Alert> = changed(&e.tick(63_001))
        .into_iter()
        .filter(|a| a.kind == "error_rate")
        .collect();
    assert_eq!(back.len(), 2);
    assert!(
        back.iter().all(|a| a.state == AlertState::Firing),
        "{back:#?}"
    );
}

#[test]
fn maintenance_windows_from_config_silence_alerts() {
    let settings = AlertSettings {
        maintenance: vec![MaintenanceWindow {
            name: "okx upgrade".into(),
            start: "1970-01-01T00:00:00Z".into(),
            end: "1970-01-01T00:01:00Z".into(),
            matcher: Matcher {
                exchange: Some("okx".into()),
                ..Matcher::default()
            },
        }],
        ..AlertSettings::default()
    };
    let mut e = Engine::new(settings);
    let a = raise(&mut e, "okx", "ticker", 1000);
    assert_eq!(a[0].state, AlertState::Silenced);
    assert_eq!(a[0].state_by.as_deref(), Some("maintenance: okx upgrade"));
    let b = raise(&mut e, "bin", "ticker", 1000);
    assert_eq!(b[0].state, AlertState::Firing);
    feed(&mut e, sample("okx", "ticker", 60_000, fail()), 60_000);
    let after = changed(&e.tick(60_001));
    assert_eq!(after.len(), 1);
    assert_eq!(after[0].state, AlertState::Firing);
}

#[test]
fn exchange_wide_outage_inhibits_that_exchanges_endpoint_alerts() {
    let mut e = Engine::new(AlertSettings::default());
    for ep in ["ticker", "book"] {
        feed(&mut e, watching("bin", ep), 0);
        feed(&mut e, watching("okx", ep), 0);
    }
    // ticker fails first: its own alert fires.
    let a = raise(&mut e, "bin", "ticker", 1000);
    assert_eq!(a[0].state, AlertState::Firing);
    raise(&mut e, "okx", "ticker", 1000);
    // book's breaker opens: every endpoint of bin is down → outage.
    let evs = e.on_event(
        &Event::BreakerChanged {
            id: EndpointId::new("bin", "book"),
            at_ms: 3000,
            transition: Transition {
                from: BreakerState::Closed,
                to: BreakerState::Open,
                reason: "5 failures".into(),
                open_until_ms: Some(33_000),
            },
        },
        3000,
    );
    let ch = changed(&evs);
    let outage = ch
        .iter()
        .find(|a| a.kind == "outage")
        .expect("no outage alert");
    assert_eq!(outage.fingerprint, "bin/*/outage");
    assert_eq!(outage.severity, Severity::Emergency);
    assert_eq!(outage.state, AlertState::Firing);
    let get = |e: &Engine, fp: &str| e.alert(fp).map(|a| (a.state, a.state_by.clone()));
    assert_eq!(
        get(&e, FP),
        Some((
            AlertState::Silenced,
            Some("inhibited by bin/*/outage".into())
        ))
    );
    assert_eq!(
        get(&e, "bin/book/breaker_open").map(|s| s.0),
        Some(AlertState::Silenced)
    );
    // Another exchange is untouched.
    assert_eq!(
        get(&e, "okx/ticker/error_rate").map(|s| s.0),
        Some(AlertState::Firing)
    );
    // One incident for the exchange: the endpoint alerts that announced the
    // outage (opened within group_wait) and the breaker are inside it;
    // another exchange's alert is its own incident.
    let inc = |e: &Engine, fp: &str| e.alert(fp).and_then(|a| a.incident.clone());
    let outage_incident = Some("bin/*/outage#1".to_string());
    assert_eq!(inc(&e, FP), outage_incident);
    assert_eq!(inc(&e, "bin/book/breaker_open"), outage_incident);
    assert_eq!(inc(&e, "bin/*/outage"), outage_incident);
    assert_eq!(
        inc(&e, "okx/ticker/error_rate").as_deref(),
        Some("okx/ticker/error_rate#1")
    );
    // ticker answers again: outage over, ticker's error alert comes back until it clears.
    let ch = feed(&mut e, sample("bin", "ticker", 4000, Outcome::Ok), 4000);
    assert!(
        ch.iter()
            .any(|a| a.kind == "outage" && a.state == AlertState::Resolved)
    );
    assert_eq!(get(&e, FP).map(|s| s.0), Some(AlertState::Firing));
    // ...but still inside the exchange's incident, which lasts as long as
    // its symptoms do: the notifier does not page it again.
    assert_eq!(inc(&e, FP), outage_incident);
    assert!(e.incidents().get("bin/*/outage#1").is_some());
}

/// One fault on one endpoint (garbage payloads that open the breaker and
/// push the error rate up) is one incident named after its first symptom;
/// acknowledging any of its alerts acknowledges all of them, and one that
/// joins later too.
#[test]
fn the_symptoms_of_one_endpoint_fault_are_one_incident() {
    use exwatch::model::InvalidReason;
    let mut e = Engine::new(AlertSettings::default());
    feed(&mut e, watching("bin", "book"), 0);
    feed(&mut e, watching("bin", "ticker"), 0);
    // A third endpoint that keeps answering: no exchange-wide outage here.
    feed(&mut e, watching("bin", "time"), 0);
    feed(&mut e, sample("bin", "time", 1000, Outcome::Ok), 1000);
    feed(&mut e, sample("bin", "book", 1000, Outcome::Ok), 1000);
    let bad = || Outcome::Invalid {
        reason: InvalidReason::EmptyBody,
    };
    feed(&mut e, sample("bin", "book", 1500, bad()), 1500);
    let first = feed(&mut e, sample("bin", "book", 2000, bad()), 2000);
    let root = first
        .iter()
        .find(|a| a.kind == "payload:empty_body")
        .expect("payload alert");
    let id = "bin/book/payload:empty_body#1";
    assert_eq!(root.incident.as_deref(), Some(id));
    assert!(root.is_incident_root());
    breaker(
        &mut e,
        3000,
        BreakerState::Closed,
        BreakerState::Open,
        TripCause::ConsecutiveFailures {
            count: 3,
            threshold: 3,
            last: exwatch::model::OutcomeClass::InvalidPayload,
            open: exwatch::model::OpenWait::Backoff {
                wait_ms: 4000,
                trip: 1,
            },
        },
    );
    let brk = e.alert("bin/book/breaker_open").expect("breaker alert");
    assert_eq!(brk.incident.as_deref(), Some(id));
    assert!(!brk.is_incident_root());
    e.on_command(
        &Command::Acknowledge {
            fingerprint: "bin/book/breaker_open".into(),
            by: "ann".into(),
            episode: None,
        },
        4000,
    );
    for fp in ["bin/book/breaker_open", "bin/book/payload:empty_body"] {
        assert_eq!(
            e.alert(fp).map(|a| (a.state, a.state_by.clone())),
            Some((AlertState::Acknowledged, Some("ann".into()))),
            "{fp}"
        );
    }
    // A symptom joining the acknowledged incident is acknowledged too.
    feed(&mut e, sample("bin", "book", 5000, fail()), 5000);
    feed(&mut e, sample("bin", "book", 6000, fail()), 6000);
    let er = e.alert("bin/book/error_rate").expect("error_rate alert");
    assert_eq!(er.incident.as_deref(), Some(id));
    assert_eq!(er.state, AlertState::Acknowledged);
    // The other endpoint is not part of it.
    let other = raise(&mut e, "bin", "ticker", 7000);
    assert_eq!(
        other[0].incident.as_deref(),
        Some("bin/ticker/error_rate#1")
    );
    assert_eq!(other[0].state, AlertState::Firing);
}

#[test]
fn restore_resumes_open_alerts_and_acknowledgement() {
    let mut first = Engine::new(AlertSettings::default());
    raise(&mut first, "bin", "ticker", 1000);
    first.on_command(
        &Command::Acknowledge {
            fingerprint: FP.into(),
            by: "dave".into(),
            episode: None,
        },
        3000,
    );
    let saved: Vec<Alert> = first.alerts().cloned().collect();

    let mut second = Engine::new(AlertSettings::default());
    second.restore(saved);
    assert_eq!(
        second.alert(FP).map(|a| a.state),
        Some(AlertState::Acknowledged)
    );
    // The failure goes on: still the same alert, still acknowledged, no new occurrence.
    feed(&mut second, sample("bin", "ticker", 10_000, fail()), 10_000);
    feed(&mut second, sample("bin", "ticker", 11_000, fail()), 11_000);
    let a = second.alert(FP).cloned().expect("lost");
    assert_eq!((a.state, a.occurrences), (AlertState::Acknowledged, 1));
}

#[test]
fn restored_alerts_nobody_confirms_resolve_after_resolve_after() {
    let mut first = Engine::new(AlertSettings::default());
    raise(&mut first, "bin", "ticker", 1000);
    let saved: Vec<Alert> = first.alerts().cloned().collect();
    let mut second = Engine::new(AlertSettings {
        resolve_after: Duration::from_secs(600),
        ..AlertSettings::default()
    });
    second.restore(saved);
    assert!(second.tick(500_000).is_empty());
    let ch = changed(&second.tick(602_001));
    assert_eq!(ch.len(), 1);
    assert_eq!(ch[0].state, AlertState::Resolved);
}

#[test]
fn engine_output_drives_the_reducer_with_delivery_kept() {
    use exwatch::model::Delivery;
    let mut e = Engine::new(AlertSettings::default());
    let mut st = State::new();
    st.apply(&watching("bin", "ticker"));
    for ev in e.on_event(&sample("bin", "ticker", 1000, fail()), 1000) {
        st.apply(&ev);
    }
    for ev in e.on_event(&sample("bin", "ticker", 2000, fail()), 2000) {
        st.apply(&ev);
    }
    let d = Event::AlertDelivery {
        fingerprint: FP.into(),
        sink: "slack".into(),
        delivery: Delivery::Sent { at_ms: 2500 },
    };
    st.apply(&d);
    e.on_event(&d, 2500);
    for ev in e.on_command(
        &Command::Acknowledge {
            fingerprint: FP.into(),
            by: "erin".into(),
            episode: None,
        },
        3000,
    ) {
        st.apply(&ev);
    }
    let snap = st.snapshot();
    assert_eq!(snap.alerts.len(), 1);
    assert_eq!(snap.alerts[0].state, AlertState::Acknowledged);
    assert_eq!(
        snap.alerts[0].delivery.get("slack"),
        Some(&Delivery::Sent { at_ms: 2500 }),
        "a later AlertChanged must not wipe delivery state"
    );
}

#[test]
fn no_data_behind_an_open_breaker_is_inhibited_by_the_breaker_alert() {
    let mut settings = AlertSettings::default();
    settings.detect.breaker.outage_min_endpoints = 10;
    let mut e = Engine::new(settings);
    feed(&mut e, watching("bin", "book"), 0);
    feed(&mut e, sample("bin", "book", 1000, Outcome::Ok), 1000);
    e.on_event(
        &Event::BreakerChanged {
            id: EndpointId::new("bin", "book"),
            at_ms: 2000,
            transition: Transition {
                from: BreakerState::Closed,
                to: BreakerState::Open,
                reason: "3 failures".into(),
                open_until_ms: Some(60_000),
            },
        },
        2000,
    );
    // Polls paused: no data for 15 s+.
    let ch = changed(&e.tick(20_000));
    let nd = ch
        .iter()
        .find(|a| a.kind == "no_data")
        .expect("no no_data alert");
    assert_eq!(nd.state, AlertState::Silenced);
    assert_eq!(
        nd.state_by.as_deref(),
        Some("inhibited by bin/book/breaker_open")
    );
    // Breaker closes but still no data: now it is news.
    e.on_event(
        &Event::BreakerChanged {
            id: EndpointId::new("bin", "book"),
            at_ms: 21_000,
            transition: Transition {
                from: BreakerState::HalfOpen,
                to: BreakerState::Closed,
                reason: "probe ok".into(),
                open_until_ms: None,
            },
        },
        21_000,
    );
    assert_eq!(
        e.alert("bin/book/no_data").map(|a| a.state),
        Some(AlertState::Firing)
    );
}

fn triage_result(note: &str) -> exwatch::model::Triage {
    exwatch::model::Triage {
        source: exwatch::model::TriageSource::Rules,
        escalation: 3,
        requires_human: true,
        summary: "endpoint failing".into(),
        likely_cause: "exchange trouble".into(),
        suggested_actions: vec!["check the status page".into()],
        auto_resolve: false,
        note: note.into(),
        latency_ms: 5,
        cost_usd: 0.0,
        at_ms: 0,
    }
}

fn triaged(fp: &str, episode: u64, note: &str) -> Event {
    Event::AlertTriaged {
        fingerprint: fp.into(),
        episode,
        triage: triage_result(note),
    }
}

/// The engine is the one author of alert state: a triage result only adds
/// the triage to the alert as the engine holds it now.
#[test]
fn a_triage_result_lands_on_the_current_state_of_its_episode() {
    let mut e = Engine::new(AlertSettings::default());
    raise(&mut e, "bin", "ticker", 1000);
    e.on_command(
        &Command::Acknowledge {
            fingerprint: FP.into(),
            by: "alice".into(),
            episode: None,
        },
        3000,
    );
    // The triage was asked while it was firing; it lands after the ack.
    let out = feed(&mut e, triaged(FP, 1, "first"), 4000);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].state, AlertState::Acknowledged);
    assert_eq!(out[0].state_by.as_deref(), Some("alice"));
    assert_eq!(
        out[0].triage.as_ref().map(|t| t.note.as_str()),
        Some("first")
    );

    // Resolved meanwhile: stays resolved, and carries the triage.
    let mut t = 5;
    while e.alert(FP).is_some_and(|a| a.state.is_open()) {
        feed(
            &mut e,
            sample("bin", "ticker", t * 1000, Outcome::Ok),
            t * 1000,
        );
        t += 1;
        assert!(t < 120, "never resolved");
    }
    let out = feed(&mut e, triaged(FP, 1, "late"), t * 1000);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].state, AlertState::Resolved);
    assert_eq!(
        out[0].triage.as_ref().map(|t| t.note.as_str()),
        Some("late")
    );

    // A result for another episode, or an unknown alert, changes nothing.
    assert!(feed(&mut e, triaged(FP, 7, "stale"), t * 1000).is_empty());
    assert!(feed(&mut e, triaged("nope/x/y", 1, "stray"), t * 1000).is_empty());
    assert_eq!(
        e.alert(FP)
            .and_then(|a| a.triage.as_ref())
            .map(|t| t.note.as_str()),
        Some("late")
    );
}

/// Every kind a detector raises is a known `AlertKind`, and back: the names
/// config lists are checked against are the ones alerts carry.
#[test]
fn every_detector_kind_is_an_alert_kind() {
    use exwatch::detect::{
        backend, breaker, cross, error_rate, hang, latency, limits, payload, staleness, stream,
    };
    use exwatch::model::{AlertKind, InvalidReason};
    use strum::VariantNames;
    let mut raised = vec![
        latency::KIND,
        error_rate::KIND,
        hang::KIND,
        staleness::NO_DATA,
        staleness::STALE,
        staleness::FROZEN,
        breaker::BREAKER_OPEN,
        breaker::OUTAGE,
        limits::RATE_LIMIT,
        limits::BAN,
        backend::KIND,
    ];
    raised.extend(stream::KINDS);
    raised.extend(cross::KINDS);
    // Each name reads back as its kind (journals, webhooks and config use names).
    for kind in &raised {
        assert_eq!(AlertKind::parse(&kind.name()).as_ref(), Some(kind));
    }
    // The table of kinds is exactly what the detectors raise.
    raised.sort();
    let mut table = AlertKind::SIMPLE.to_vec();
    table.sort();
    assert_eq!(raised, table);
    assert_eq!(payload::PREFIX, AlertKind::PAYLOAD_PREFIX);
    let reasons = [
        InvalidReason::EmptyBody,
        InvalidReason::NotJson {
            detail: String::new(),
        },
        InvalidReason::Schema {
            detail: String::new(),
        },
        InvalidReason::BadNumber {
            field: String::new(),
            text: String::new(),
        },
        InvalidReason::NonPositive {
            field: String::new(),
            value: 0.0,
        },
        InvalidReason::CrossedBook { bid: 2.0, ask: 1.0 },
        InvalidReason::LockedBook { price: 1.0 },
        InvalidReason::UnsortedLevels {
            side: String::new(),
        },
        InvalidReason::DuplicateLevel {
            side: String::new(),
            price: 1.0,
        },
        InvalidReason::EmptyBook,
        InvalidReason::PriceJump {
            from: 1.0,
            to: 2.0,
            pct: 100.0,
        },
        InvalidReason::Stale { age_ms: 1 },
        InvalidReason::Frozen { for_ms: 1 },
        InvalidReason::SequenceBackwards { from: 2, to: 1 },
        InvalidReason::Unhealthy {
            detail: String::new(),
        },
        InvalidReason::WrongInstrument {
            expected: String::new(),
            got: String::new(),
        },
    ];
    assert_eq!(
        reasons.iter().map(|r| r.name()).collect::<Vec<_>>(),
        InvalidReason::VARIANTS.to_vec()
    );
    for r in &reasons {
        let name = format!("{}{}", payload::PREFIX, r.name());
        assert_eq!(AlertKind::parse(&name).map(|k| k.name()), Some(name));
    }
    assert!(AlertKind::parse("errors").is_none());
}

fn breaker(e: &mut Engine, at_ms: i64, from: BreakerState, to: BreakerState, reason: TripCause) {
    e.on_event(
        &Event::BreakerChanged {
            id: EndpointId::new("bin", "book"),
            at_ms,
            transition: Transition {
                from,
                to,
                reason,
                open_until_ms: None,
            },
        },
        at_ms,
    );
}

#[test]
fn an_alert_keeps_the_title_that_fired_it_for_the_episode() {
    let mut e = Engine::new(AlertSettings::default());
    feed(&mut e, watching("bin", "book"), 0);
    feed(&mut e, sample("bin", "book", 1000, Outcome::Ok), 1000);
    let fp = "bin/book/breaker_open";
    breaker(
        &mut e,
        2000,
        BreakerState::Closed,
        BreakerState::Open,
        "3 failures".into(),
    );
    assert_eq!(
        e.alert(fp).map(|a| a.title.as_str()),
        Some("bin/book: circuit breaker open")
    );
    // Half-open still is the same outage: the title that fired stays.
    breaker(
        &mut e,
        12_000,
        BreakerState::Open,
        BreakerState::HalfOpen,
        TripCause::WaitOver {
            trip: 1,
            late_ms: 0,
        },
    );
    let a = e.alert(fp).expect("the breaker alert");
    assert_eq!(a.state, AlertState::Firing);
    assert_eq!(a.title, "bin/book: circuit breaker open");
}

#[test]
fn an_operator_forcing_a_breaker_open_raises_no_alert() {
    let mut e = Engine::new(AlertSettings::default());
    feed(&mut e, watching("bin", "book"), 0);
    feed(&mut e, watching("bin", "ticker"), 0);
    feed(&mut e, sample("bin", "book", 1000, Outcome::Ok), 1000);
    breaker(
        &mut e,
        2000,
        BreakerState::Closed,
        BreakerState::Open,
        TripCause::ForcedOpen,
    );
    assert_eq!(e.alert("bin/book/breaker_open"), None);
    assert_eq!(e.alert("bin/*/outage"), None);
    // Polling stopped on purpose: no `no_data` however long it lasts
    // (the other endpoint keeps answering).
    for t in (3..=120).map(|s| s * 1000) {
        feed(&mut e, sample("bin", "ticker", t, Outcome::Ok), t);
        e.tick(t);
    }
    assert_eq!(
        e.alert("bin/book/no_data"),
        None,
        "no_data while forced open"
    );
    // Reset: the allowance restarts then, and silence after it is news.
    breaker(
        &mut e,
        121_000,
        BreakerState::Open,
        BreakerState::Closed,
        TripCause::Reset,
    );
    e.tick(125_000);
    assert_eq!(e.alert("bin/book/no_data"), None, "allowance restarts");
    e.tick(200_000);
    assert!(
        e.alert("bin/book/no_data")
            .is_some_and(|a| a.state.is_open()),
        "silence after the reset is news"
    );
}

/// One Binance 429 with `Retry-After: 35` holds every Binance endpoint (the
/// exchange tier is shared): the held siblings are silent on purpose and
/// must not each page `no_data` (issue #13: one 429 gave four critical
/// alerts). Once the hold is over, silence is news again.
#[test]
fn endpoints_held_by_the_limiter_raise_no_no_data() {
    use exwatch::model::{Tier, TierFill};
    let mut e = Engine::new(AlertSettings::default());
    for ep in ["time", "ticker", "book"] {
        feed(&mut e, watching("bin", ep), 0);
        feed(&mut e, sample("bin", ep, 1000, Outcome::Ok), 1000);
    }
    // The ticker's poll at 2 s is refused with Retry-After 35 s; its fill
    // shows the exchange tier blocked.
    e.on_event(
        &Event::LimiterFill {
            id: EndpointId::new("bin", "ticker"),
            at_ms: 2000,
            tiers: vec![TierFill {
                tier: Tier::Exchange,
                tokens: 0.0,
                capacity: 10.0,
                blocked_for_ms: Some(35_000),
            }],
        },
        2000,
    );
    let mut no_data = Vec::new();
    for t in (3..=36).map(|s| s * 1000) {
        no_data.extend(
            changed(&e.tick(t))
                .into_iter()
                .filter(|a| a.kind == "no_data"),
        );
    }
    assert!(no_data.is_empty(), "{no_data:?}");
    // The hold ended at 37 s and nothing answers for another 15 s+: news.
    let later: Vec<Alert> = (37..=60)
        .flat_map(|s| changed(&e.tick(s * 1000)))
        .filter(|a| a.kind == "no_data")
        .collect();
    assert!(
        later.iter().any(|a| a.fingerprint == "bin/book/no_data"),
        "{later:?}"
    );
    // Another exchange is not held by Binance's tier.
    let mut other = Engine::new(AlertSettings::default());
    feed(&mut other, watching("okx", "book"), 0);
    feed(&mut other, watching("bin", "ticker"), 0);
    other.on_event(
        &Event::LimiterFill {
            id: EndpointId::new("bin", "ticker"),
            at_ms: 1000,
            tiers: vec![TierFill {
                tier: Tier::Exchange,
                tokens: 0.0,
                capacity: 10.0,
                blocked_for_ms: Some(60_000),
            }],
        },
        1000,
    );
    let okx: Vec<Alert> = (2..=30)
        .flat_map(|s| changed(&other.tick(s * 1000)))
        .filter(|a| a.fingerprint == "okx/book/no_data")
        .collect();
    assert!(!okx.is_empty());
}

#[test]
fn a_configured_severity_replaces_the_detectors() {
    let mut settings = AlertSettings::default();
    settings
        .severity
        .insert("error_rate".into(), Severity::Warning);
    let mut e = Engine::new(settings);
    feed(&mut e, watching("bin", "ticker"), 0);
    let raised = raise(&mut e, "bin", "ticker", 1000);
    let a = raised
        .iter()
        .find(|a| a.fingerprint == FP)
        .expect("the error-rate alert");
    assert_eq!(a.severity, Severity::Warning);
}

/// An open alert as the journal hands it back after a restart.
fn restored(exchange: &str, endpoint: Option<&str>, kind: &str, severity: Severity) -> Alert {
    Alert {
        fingerprint: Alert::fingerprint_of(exchange, endpoint, kind),
        exchange: exchange.into(),
        endpoint: endpoint.map(str::to_string),
        kind: kind.parse().unwrap(),
        severity,
        title: format!("{kind} before the restart"),
        description: String::new(),
        metrics: Default::default(),
        first_seen_ms: 1_000,
        last_seen_ms: 2_000,
        occurrences: 1,
        state: AlertState::Firing,
        state_by: Some("auto".into()),
        state_at_ms: 1_000,
        resolved_at_ms: None,
        delivery: Default::default(),
        triage: None,
        incident: None,
        episode_start_ms: Some(1_000),
    }
}

/// Issue #15 item 1: after a restart, alerts restored from the journal are
/// cleared by fresh good data (each kind by its own clear condition), not
/// left firing until `resolve_after`.
#[test]
fn restored_alerts_of_every_kind_clear_with_fresh_good_data() {
    let kinds = [
        "latency",
        "error_rate",
        "hung",
        "no_data",
        "stale",
        "frozen",
        "breaker_open",
        "rate_limit",
        "ban",
        "payload:crossed_book",
    ];
    let restart = 100_000;
    for kind in kinds {
        let mut e = Engine::new(AlertSettings::default());
        feed(&mut e, watching("bin", "ticker"), restart);
        let a = restored("bin", Some("ticker"), kind, Severity::Critical);
        e.restore(vec![a.clone()]);
        let mut cleared_at = None;
        // Good answers every second for two minutes: longer than any
        // kind's clear condition, far shorter than resolve_after (30 min).
        for i in 1..=120 {
            let t = restart + i * 1000;
            let mut ch = feed(&mut e, sample("bin", "ticker", t, Outcome::Ok), t);
            ch.extend(changed(&e.tick(t)));
            if ch
                .iter()
                .any(|x| x.fingerprint == a.fingerprint && x.state == AlertState::Resolved)
            {
                cleared_at = Some(i);
                break;
            }
        }
        let secs =
            cleared_at.unwrap_or_else(|| panic!("{kind}: still open after 120 s of good data"));
        assert!(secs <= 60, "{kind}: cleared only after {secs} s");
        let now = e.alert(&a.fingerprint).unwrap();
        assert_eq!(now.occurrences, 1, "{kind}: the same episode ended");
    }
}

#[test]
fn a_restored_alert_the_data_still_supports_stays_in_its_episode() {
    let restart = 100_000;
    let mut e = Engine::new(AlertSettings::default());
    feed(&mut e, watching("bin", "ticker"), restart);
    let a = restored("bin", Some("ticker"), "error_rate", Severity::Critical);
    e.restore(vec![a.clone()]);
    for i in 1..=60 {
        let t = restart + i * 1000;
        feed(&mut e, sample("bin", "ticker", t, fail()), t);
        e.tick(t);
    }
    let now = e.alert(&a.fingerprint).unwrap();
    assert_eq!(now.state, AlertState::Firing);
    assert_eq!(now.occurrences, 1, "not a new page");
    assert!(
        now.last_seen_ms > restart,
        "refreshed by the fresh failures"
    );
}

#[test]
fn a_restored_outage_clears_when_an_endpoint_of_the_exchange_answers() {
    let restart = 100_000;
    let mut e = Engine::new(AlertSettings::default());
    for ep in ["time", "ticker", "book"] {
        feed(&mut e, watching("okx", ep), restart);
    }
    let a = restored("okx", None, "outage", Severity::Emergency);
    e.restore(vec![a.clone()]);
    let ch = feed(
        &mut e,
        sample("okx", "ticker", restart + 1000, Outcome::Ok),
        restart + 1000,
    );
    assert!(
        ch.iter()
            .any(|x| x.fingerprint == a.fingerprint && x.state == AlertState::Resolved),
        "{ch:?}"
    );
}
