//! The notifier and sinks against local receivers standing in for Slack,
//! PagerDuty and a webhook (127.0.0.1 only).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed unwrap is a failed test

mod alert_common;

use alert_common::{Behaviour, Events, Receiver};
use exwatch::alert::AlertSettings;
use exwatch::alert::dedup::Claims;
use exwatch::alert::engine::Engine;
use exwatch::alert::notify::{self, AlertSender, GroupingSettings};
use exwatch::alert::sinks::{self, Secret, Sink, SinkConfig, SinkHandle, SinkKind};
use exwatch::model::Command;
use exwatch::model::{Alert, AlertState, Delivery, Severity};
use exwatch::model::{EndpointId, EndpointKind, ExchangeKind};
use exwatch::model::{Event, Outcome, Sample};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

fn grouping(wait_ms: u64, interval_ms: u64) -> GroupingSettings {
    GroupingSettings {
        group_wait: Duration::from_millis(wait_ms),
        group_interval: Duration::from_millis(interval_ms),
        repeat_interval: Duration::from_secs(3600),
        queue: 1024,
    }
}

fn sink_config(name: &str, kind: SinkKind) -> SinkConfig {
    SinkConfig {
        min_severity: Severity::Info,
        retry_initial: Duration::from_millis(100),
        retry_max: Duration::from_millis(400),
        timeout: Duration::from_secs(2),
        ..SinkConfig::new(name, kind)
    }
}

struct Rig {
    alerts: AlertSender,
    events: Events,
    shutdown: CancellationToken,
}

fn start(
    grouping: GroupingSettings,
    sinks_: Vec<(SinkConfig, String, Option<&str>)>,
    claims: Arc<Claims>,
) -> Rig {
    let (tx, events) = Events::spawn();
    let shutdown = CancellationToken::new();
    let handles: Vec<SinkHandle> = sinks_
        .into_iter()
        .map(|(cfg, url, key)| {
            let sink = Sink::new(cfg, Secret::new(url), key.map(Secret::new));
            sinks::spawn(sink, "test".into(), tx.clone(), shutdown.clone())
                .unwrap()
                .0
        })
        .collect();
    let (alerts, _task) = notify::spawn(grouping, handles, claims, tx, shutdown.clone());
    Rig {
        alerts,
        events,
        shutdown,
    }
}

fn watching(endpoint: &str) -> Event {
    Event::Watching {
        id: EndpointId::new("bin", endpoint),
        exchange_kind: ExchangeKind::Binance,
        kind: EndpointKind::Ticker,
        url: "http://127.0.0.1:1/".into(),
        interval_ms: 1000,
    }
}

fn sample(endpoint: &str, at_ms: i64, outcome: Outcome) -> Event {
    Event::Sample(Sample {
        id: EndpointId::new("bin", endpoint),
        at_ms,
        latency_us: 20_000,
        status: None,
        outcome,
        summary: None,
        price: None,
        exchange_ts_ms: None,
        signal: None,
    })
}

/// Engine output → notifier input, as the monitor wires it.
async fn forward(evs: Vec<Event>, to: &mpsc::Sender<Alert>) -> usize {
    let mut n = 0;
    for e in evs {
        if let Event::AlertChanged { alert } = e {
            to.send(alert).await.unwrap();
            n += 1;
        }
    }
    n
}

#[tokio::test]
async fn a_storm_of_1000_failures_is_one_incident_notification_per_interval() {
    let hook = Receiver::start(Behaviour::default()).await;
    let slack = Receiver::start(Behaviour::default()).await;
    let rig = start(
        grouping(500, 1500),
        vec![
            (
                sink_config("hook", SinkKind::Webhook),
                format!("{}/hook", hook.url),
                None,
            ),
            (
                sink_config("slack", SinkKind::Slack),
                format!("{}/slack", slack.url),
                None,
            ),
        ],
        Arc::new(Claims::memory("t")),
    );
    // Every endpoint of the exchange fails: one exchange-wide incident.
    let mut engine = Engine::new(AlertSettings::default());
    let endpoints = ["ticker", "book", "trades", "time"];
    for ep in endpoints {
        engine.on_event(&watching(ep), 0);
    }
    // 1,000 failures in one minute of exchange time, on one exchange.
    let mut raised = 0;
    for i in 0..1000i64 {
        let t = i * 60;
        let ep = endpoints[i as usize % 4];
        let outcome = if i % 3 == 0 {
            Outcome::Timeout
        } else {
            Outcome::Http {
                status: 502,
                detail: "bad gateway".into(),
            }
        };
        raised += forward(engine.on_event(&sample(ep, t, outcome), t), &rig.alerts).await;
        if i % 50 == 0 {
            raised += forward(engine.tick(t), &rig.alerts).await;
        }
    }
    assert!(raised >= 8, "error_rate and no_data per endpoint: {raised}");
    assert!(
        raised < 100,
        "the engine must not emit per failure: {raised}"
    );

    let got = hook.wait_delivered(1, Duration::from_secs(10)).await;
    assert_eq!(got.len(), 1);
    // Nothing else for this group within another interval.
    tokio::time::sleep(Duration::from_millis(2000)).await;
    let got = hook.delivered();
    assert_eq!(
        got.len(),
        1,
        "{:#?}",
        got.iter().map(|h| &h.body["summary"]).collect::<Vec<_>>()
    );
    let body = &got[0].body;
    assert_eq!(body["schema"], "exwatch.notification.v1");
    assert_eq!(body["group"]["exchange"], "bin");
    assert_eq!(body["group"]["severity"], "emergency");
    assert_eq!(body["incident"]["id"], "bin/*/outage#1");
    assert_eq!(body["incident"]["state"], "firing");
    assert_eq!(body["status"], "firing");
    let alerts = body["alerts"].as_array().unwrap();
    assert_eq!(alerts[0]["fingerprint"], "bin/*/outage", "root first");
    // The endpoints' own symptoms are inside the exchange's incident.
    for ep in endpoints {
        let fp = format!("bin/{ep}/error_rate");
        assert!(
            alerts
                .iter()
                .any(|a| a["fingerprint"] == fp.as_str() && a["incident"] == "bin/*/outage#1"),
            "{fp} missing: {alerts:#?}"
        );
    }
    let n = alerts.len();
    assert_eq!(body["counts"]["total"], n);
    let summary = format!(
        "[EMERGENCY] bin: exchange-wide outage (4 of 4 endpoints down) — firing, {n} alerts"
    );
    assert_eq!(body["summary"], summary.as_str());
    let s = slack.delivered();
    assert_eq!(s.len(), 1);
    assert!(s[0].body["text"].as_str().unwrap().starts_with(&summary));
    assert!(s[0].body["blocks"].as_array().unwrap().len() <= 50);

    // A second wave of changes (recovery) goes out as one more notification,
    // at least group_interval after the first.
    let mut t = 60_000;
    for _ in 0..40 {
        t += 1000;
        for ep in endpoints {
            forward(engine.on_event(&sample(ep, t, Outcome::Ok), t), &rig.alerts).await;
        }
    }
    let got = hook.wait_delivered(2, Duration::from_secs(10)).await;
    assert_eq!(got.len(), 2);
    assert!(got[1].at.duration_since(got[0].at) >= Duration::from_millis(1400));
    assert_eq!(got[1].body["status"], "resolved");
    assert_eq!(got[1].body["incident"]["id"], "bin/*/outage#1");
    assert_eq!(got[1].body["counts"]["resolved"], n);
    // Every alert's delivery was reported as sent.
    let fp = "bin/ticker/error_rate";
    assert!(matches!(
        rig.events.deliveries(fp, "hook").last(),
        Some(Delivery::Sent { .. })
    ));
    rig.shutdown.cancel();
}

fn alert(exchange: &str, state: AlertState) -> Alert {
    Alert {
        fingerprint: format!("{exchange}/ticker/error_rate"),
        exchange: exchange.into(),
        endpoint: Some("ticker".into()),
        kind: "error_rate".parse().unwrap(),
        severity: Severity::Critical,
        title: format!("{exchange} failing"),
        description: "503".into(),
        metrics: Default::default(),
        first_seen_ms: 1,
        last_seen_ms: 1,
        occurrences: 1,
        state,
        state_by: Some("auto".into()),
        state_at_ms: 1,
        resolved_at_ms: None,
        delivery: Default::default(),
        triage: None,
        incident: None,
        episode_start_ms: None,
    }
}

#[tokio::test]
async fn a_sink_failing_with_500_then_recovering_receives_every_notification() {
    let hook = Receiver::start(Behaviour {
        fail_until: Some(Instant::now() + Duration::from_secs(2)),
        ..Behaviour::default()
    })
    .await;
    let rig = start(
        grouping(100, 300),
        vec![(
            sink_config("hook", SinkKind::Webhook),
            format!("{}/x", hook.url),
            None,
        )],
        Arc::new(Claims::memory("t")),
    );
    let exchanges = ["a", "b", "c", "d", "e"];
    for ex in exchanges {
        rig.alerts
            .send(alert(ex, AlertState::Firing))
            .await
            .unwrap();
    }
    tokio::time::sleep(Duration::from_millis(600)).await;
    for ex in &exchanges[..2] {
        rig.alerts
            .send(alert(ex, AlertState::Resolved))
            .await
            .unwrap();
    }
    let got = hook.wait_delivered(7, Duration::from_secs(20)).await;
    assert_eq!(got.len(), 7, "lost notifications");
    assert!(hook.attempts().len() > 7, "the receiver never failed?");
    let ids: BTreeSet<String> = got
        .iter()
        .map(|h| h.body["notification_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids.len(), 7, "each delivered once");
    // In order per group: firing before resolved.
    for ex in &exchanges[..2] {
        let statuses: Vec<&str> = got
            .iter()
            .filter(|h| h.body["group"]["exchange"] == *ex)
            .map(|h| h.body["status"].as_str().unwrap())
            .collect();
        assert_eq!(statuses, ["firing", "resolved"], "{ex}");
    }
    let d = rig.events.deliveries("a/ticker/error_rate", "hook");
    assert!(
        d.iter().any(|x| matches!(x, Delivery::Retrying { .. })),
        "{d:?}"
    );
    assert!(matches!(d.last(), Some(Delivery::Sent { .. })), "{d:?}");
    rig.shutdown.cancel();
}

#[tokio::test]
async fn permanent_errors_are_shown_not_retried_and_429_retry_after_is_honoured() {
    let gone = Receiver::start(Behaviour {
        fail_first: 1000,
        fail_status: 410,
        ..Behaviour::default()
    })
    .await;
    let slack = Receiver::start(Behaviour {
        fail_first: 1,
        fail_status: 429,
        retry_after: Some("1".into()),
        ..Behaviour::default()
    })
    .await;
    let rig = start(
        grouping(50, 200),
        vec![
            (
                sink_config("gone", SinkKind::Webhook),
                gone.url.clone(),
                None,
            ),
            (
                sink_config("slack", SinkKind::Slack),
                slack.url.clone(),
                None,
            ),
        ],
        Arc::new(Claims::memory("t")),
    );
    rig.alerts
        .send(alert("a", AlertState::Firing))
        .await
        .unwrap();
    let s = slack.wait_delivered(1, Duration::from_secs(10)).await;
    assert_eq!(s.len(), 1);
    let tries = slack.attempts();
    assert_eq!(tries.len(), 2);
    assert!(
        tries[1].at.duration_since(tries[0].at) >= Duration::from_millis(900),
        "Retry-After: 1 not honoured"
    );
    // Give the 410 sink the same time: still exactly one attempt.
    assert_eq!(gone.attempts().len(), 1);
    let d = rig.events.deliveries("a/ticker/error_rate", "gone");
    assert!(
        matches!(d.last(), Some(Delivery::Failed { error }) if error.starts_with("410")),
        "{d:?}"
    );
    rig.shutdown.cancel();
}

#[tokio::test]
async fn pagerduty_trigger_acknowledge_resolve_share_the_dedup_key() {
    let pd = Receiver::start(Behaviour {
        ok_status: 202,
        ..Behaviour::default()
    })
    .await;
    let rig = start(
        grouping(100, 300),
        vec![(
            sink_config("pd", SinkKind::Pagerduty),
            format!("{}/v2/enqueue", pd.url),
            Some("ROUTINGKEY123"),
        )],
        Arc::new(Claims::memory("t")),
    );
    let mut engine = Engine::new(AlertSettings::default());
    engine.on_event(&watching("ticker"), 0);
    let fail = || Outcome::Http {
        status: 503,
        detail: "down".into(),
    };
    forward(
        engine.on_event(&sample("ticker", 1000, fail()), 1000),
        &rig.alerts,
    )
    .await;
    forward(
        engine.on_event(&sample("ticker", 2000, fail()), 2000),
        &rig.alerts,
    )
    .await;
    let got = pd.wait_delivered(1, Duration::from_secs(10)).await;
    assert_eq!(got.len(), 1);
    let trigger = &got[0].body;
    assert_eq!(trigger["event_action"], "trigger");
    assert_eq!(trigger["routing_key"], "ROUTINGKEY123");
    // The dedup_key is the incident: `<root fingerprint>#<episode>`.
    assert_eq!(trigger["dedup_key"], "bin/ticker/error_rate#1");
    assert_eq!(trigger["payload"]["severity"], "critical");
    assert_eq!(trigger["payload"]["source"], "exwatch/test");
    assert!(
        trigger["payload"]["summary"]
            .as_str()
            .unwrap()
            .contains("bin/ticker")
    );

    // Acknowledged in exwatch → acknowledge in PagerDuty.
    let ack = engine.on_command(
        &Command::Acknowledge {
            fingerprint: "bin/ticker/error_rate".into(),
            by: "alice".into(),
            episode: None,
        },
        3000,
    );
    forward(ack, &rig.alerts).await;
    let got = pd.wait_delivered(2, Duration::from_secs(10)).await;
    assert_eq!(got.len(), 2);
    assert_eq!(got[1].body["event_action"], "acknowledge");
    assert_eq!(got[1].body["dedup_key"], "bin/ticker/error_rate#1");

    // Recovery → resolve.
    for t in 4..30 {
        forward(
            engine.on_event(&sample("ticker", t * 1000, Outcome::Ok), t * 1000),
            &rig.alerts,
        )
        .await;
    }
    let got = pd.wait_delivered(3, Duration::from_secs(10)).await;
    assert_eq!(got.len(), 3);
    assert_eq!(got[2].body["event_action"], "resolve");
    assert_eq!(got[2].body["dedup_key"], "bin/ticker/error_rate#1");
    let d = rig.events.deliveries("bin/ticker/error_rate", "pd");
    assert!(matches!(d.last(), Some(Delivery::Sent { .. })), "{d:?}");
    rig.shutdown.cancel();
}

#[tokio::test]
async fn a_full_queue_is_reported_never_silent() {
    // A receiver that never answers in time keeps the single slot busy.
    let slow = Receiver::start(Behaviour {
        fail_until: Some(Instant::now() + Duration::from_secs(30)),
        ..Behaviour::default()
    })
    .await;
    let cfg = SinkConfig {
        queue: 1,
        ..sink_config("tiny", SinkKind::Webhook)
    };
    let rig = start(
        grouping(10, 50),
        vec![(cfg, slow.url.clone(), None)],
        Arc::new(Claims::memory("t")),
    );
    for ex in ["a", "b", "c", "d", "e", "f"] {
        rig.alerts
            .send(alert(ex, AlertState::Firing))
            .await
            .unwrap();
    }
    let until = Instant::now() + Duration::from_secs(10);
    loop {
        let failed = rig.events.all().into_iter().any(|e| {
            matches!(e, Event::AlertDelivery { delivery: Delivery::Failed { ref error }, .. } if error.contains("queue is full"))
        });
        if failed {
            break;
        }
        assert!(
            Instant::now() < until,
            "no queue-full report: {:?}",
            rig.events.all()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    rig.shutdown.cancel();
}

/// Every 6-character window of a secret: none may appear in an output.
fn fragments(secret: &str) -> Vec<String> {
    let c: Vec<char> = secret.to_lowercase().chars().collect();
    c.windows(6).map(|w| w.iter().collect()).collect()
}

fn assert_clean(what: &str, text: &str, secrets: &[&str]) {
    let lower = text.to_lowercase();
    for s in secrets {
        for f in fragments(s) {
            assert!(
                !lower.contains(&f),
                "{what} leaks `{f}` of a secret: {text}"
            );
        }
    }
}

/// The texts of every delivery state reported for a sink.
fn delivery_texts(d: &[Delivery]) -> Vec<String> {
    d.iter()
        .filter_map(|x| match x {
            Delivery::Retrying { last_error, .. } => Some(last_error.clone()),
            Delivery::Failed { error } | Delivery::Unconfirmed { error, .. } => Some(error.clone()),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn secrets_a_receiver_echoes_back_are_scrubbed_from_every_delivery_state() {
    const TOKEN: &str = "tok-7f3kq9zz81";
    const SIG: &str = "Zq81xw77ab";
    const SLACK_TOKEN: &str = "x7k2m9p4q8w1";
    const ROUTING_KEY: &str = "rk-4hd8sl2p0q";
    let echo = |status: u16, first: usize| Behaviour {
        fail_first: first,
        fail_status: status,
        echo: true,
        ok_status: 202,
        ..Behaviour::default()
    };
    // A 404 quoting the path (permanent), a 500 quoting it (retried, then
    // accepted), and PagerDuty's 400 quoting the routing key.
    let hook = Receiver::start(echo(404, 1000)).await;
    let slack = Receiver::start(echo(500, 2)).await;
    let pd = Receiver::start(echo(400, 1000)).await;
    let rig = start(
        grouping(50, 200),
        vec![
            (
                sink_config("hook", SinkKind::Webhook),
                format!("{}/hooks/{TOKEN}?sig={SIG}", hook.url),
                None,
            ),
            (
                sink_config("slack", SinkKind::Slack),
                format!("{}/services/T0SEC9RT/B0SEC2WQ/{SLACK_TOKEN}", slack.url),
                None,
            ),
            (
                sink_config("pd", SinkKind::Pagerduty),
                format!("{}/v2/enqueue", pd.url),
                Some(ROUTING_KEY),
            ),
        ],
        Arc::new(Claims::memory("t")),
    );
    rig.alerts
        .send(alert("a", AlertState::Firing))
        .await
        .unwrap();
    let fp = "a/ticker/error_rate";
    let until = Instant::now() + Duration::from_secs(20);
    let done = |sink: &str| {
        rig.events
            .deliveries(fp, sink)
            .last()
            .is_some_and(|d| matches!(d, Delivery::Sent { .. } | Delivery::Failed { .. }))
    };
    while !(done("hook") && done("slack") && done("pd")) {
        assert!(Instant::now() < until, "{:?}", rig.events.all());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let secrets = [TOKEN, SIG, SLACK_TOKEN, ROUTING_KEY];
    // The receivers did quote the secrets (the test means something) ...
    assert!(hook.attempts().iter().all(|h| h.path.contains(TOKEN)));
    for (sink, want) in [("hook", "Failed"), ("slack", "Retrying"), ("pd", "Failed")] {
        let texts = delivery_texts(&rig.events.deliveries(fp, sink));
        assert!(!texts.is_empty(), "{sink}: no {want} state");
        for t in &texts {
            // ... and what exwatch reports keeps the answer, without them.
            assert!(t.contains("[redacted]"), "{sink}: nothing scrubbed? {t}");
            assert!(
                t.contains("no route for POST") || t.contains("invalid routing key"),
                "{sink}: the receiver's words are kept: {t}"
            );
            assert_clean(sink, t, &secrets);
        }
    }
    // Every event, as the journal would write it.
    let all = serde_json::to_string(
        &rig.events
            .all()
            .iter()
            .map(|e| format!("{e:?}"))
            .collect::<Vec<_>>(),
    )
    .unwrap();
    assert_clean("events", &all, &secrets);
    rig.shutdown.cancel();
}

#[tokio::test]
async fn a_receiver_slower_than_the_timeout_is_unconfirmed_not_failed_under_one_notification_id() {
    // Answers 1 s after each request: always after the 500 ms timeout.
    let slow = Receiver::start(Behaviour {
        delay: Some(Duration::from_secs(1)),
        ..Behaviour::default()
    })
    .await;
    // Waits of 80..100 ms (100 ms, -20% jitter, capped at 100 ms) and a
    // 1.6 s give-up: attempts start at 0, ~0.59 and ~1.18 s; the fourth
    // could start at 1.74 s at the earliest, past the deadline (a slow
    // machine only starts them later). docs/alerting.md: a receiver slower
    // than `timeout` gets one request per attempt that starts within
    // `give_up_after`, all with the same notification_id.
    let cfg = SinkConfig {
        timeout: Duration::from_millis(500),
        retry_initial: Duration::from_millis(100),
        retry_max: Duration::from_millis(100),
        give_up_after: Duration::from_millis(1600),
        ..sink_config("slow", SinkKind::Webhook)
    };
    // And a receiver that is not there at all: refused, never arrived.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let refused = SinkConfig {
        give_up_after: Duration::from_secs(1),
        ..sink_config("refused", SinkKind::Webhook)
    };
    let rig = start(
        grouping(10, 50),
        vec![
            (cfg, format!("{}/hook", slow.url), None),
            (refused, format!("http://{closed}/hook"), None),
        ],
        Arc::new(Claims::memory("t")),
    );
    rig.alerts
        .send(alert("a", AlertState::Firing))
        .await
        .unwrap();
    let fp = "a/ticker/error_rate";
    let until = Instant::now() + Duration::from_secs(15);
    let ended = |sink: &str| {
        rig.events.deliveries(fp, sink).last().is_some_and(|d| {
            matches!(
                d,
                Delivery::Sent { .. } | Delivery::Failed { .. } | Delivery::Unconfirmed { .. }
            )
        })
    };
    while !(ended("slow") && ended("refused")) {
        assert!(Instant::now() < until, "{:?}", rig.events.all());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let d = rig.events.deliveries(fp, "slow");
    let hits = slow.attempts();
    match d.last() {
        Some(Delivery::Unconfirmed { attempts, error }) => {
            assert_eq!(*attempts as usize, hits.len(), "{error}");
            assert!(error.contains("may have arrived"), "{error}");
        }
        other => panic!("a slow receiver is unconfirmed, not {other:?}: {d:?}"),
    }
    assert!(
        !d.iter().any(|x| matches!(x, Delivery::Failed { .. })),
        "{d:?}"
    );
    assert!(
        d.iter().any(|x| matches!(x, Delivery::Retrying { last_error, .. } if last_error.contains("timed out after 500 ms without an answer (may have arrived)"))),
        "{d:?}"
    );
    // What the docs promise: one request per attempt, three here, one id.
    assert_eq!(hits.len(), 3, "{hits:?}");
    let ids: BTreeSet<&str> = hits
        .iter()
        .map(|h| h.body["notification_id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids.len(),
        1,
        "retries carry the same notification_id: {ids:?}"
    );
    // Nothing reached the closed port: refused, failed, not "may have arrived".
    let r = rig.events.deliveries(fp, "refused");
    assert!(
        matches!(r.last(), Some(Delivery::Failed { error }) if error.contains("could not connect")),
        "{r:?}"
    );
    rig.shutdown.cancel();
}
