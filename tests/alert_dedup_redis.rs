//! Two exwatch instances sharing a real redis-server send one notification per
//! incident, not two; losing Redis means duplicates, never lost notifications.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed unwrap is a failed test

mod alert_common;
mod common;

use alert_common::{Behaviour, Events, Receiver};
use exwatch::alert::AlertSettings;
use exwatch::alert::dedup::{Claims, RedisClaims};
use exwatch::alert::engine::Engine;
use exwatch::alert::notify::{self, AlertSender, GroupingSettings};
use exwatch::alert::sinks::{self, Secret, Sink, SinkConfig, SinkKind};
use exwatch::model::{Alert, Delivery, Severity};
use exwatch::model::{EndpointId, EndpointKind, ExchangeKind};
use exwatch::model::{Event, Outcome, Sample};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

struct Instance {
    engine: Engine,
    alerts: AlertSender,
    events: Events,
    _shutdown: CancellationToken,
}

fn instance(name: &str, redis_url: &str, hook_url: &str, pd_url: &str) -> Instance {
    let (tx, events) = Events::spawn();
    let shutdown = CancellationToken::new();
    let mk = |n: &str, kind| SinkConfig {
        min_severity: Severity::Info,
        retry_initial: Duration::from_millis(100),
        retry_max: Duration::from_millis(300),
        ..SinkConfig::new(n, kind)
    };
    let hook = sinks::spawn(
        Sink::new(mk("hook", SinkKind::Webhook), Secret::new(hook_url), None),
        name.into(),
        tx.clone(),
        shutdown.clone(),
    )
    .unwrap()
    .0;
    let pd = sinks::spawn(
        Sink::new(
            mk("pd", SinkKind::Pagerduty),
            Secret::new(pd_url),
            Some(Secret::new("KEY")),
        ),
        name.into(),
        tx.clone(),
        shutdown.clone(),
    )
    .unwrap()
    .0;
    let claims = RedisClaims::new(redis_url, Duration::from_millis(300), name).unwrap();
    let (alerts, _) = notify::spawn(
        GroupingSettings {
            group_wait: Duration::from_millis(300),
            group_interval: Duration::from_millis(2000),
            repeat_interval: Duration::from_secs(3600),
            queue: 1024,
        },
        vec![hook, pd],
        Arc::new(Claims::redis(claims, "exwatch")),
        tx,
        shutdown.clone(),
    );
    Instance {
        engine: Engine::new(AlertSettings::default()),
        alerts,
        events,
        _shutdown: shutdown,
    }
}

fn ev(endpoint: &str, at_ms: i64, ok: bool) -> Event {
    Event::Sample(Sample {
        id: EndpointId::new("bin", endpoint),
        at_ms,
        latency_us: 10_000,
        status: Some(if ok { 200 } else { 503 }),
        outcome: if ok {
            Outcome::Ok
        } else {
            Outcome::Http {
                status: 503,
                detail: "down".into(),
            }
        },
        summary: None,
        price: None,
        exchange_ts_ms: None,
        signal: None,
    })
}

/// Both instances see the same events (they watch the same exchange).
async fn both(instances: &mut [Instance], e: Event, t: i64) {
    for i in instances.iter_mut() {
        for out in i.engine.on_event(&e, t) {
            if let Event::AlertChanged { alert } = out {
                let a: Alert = alert;
                i.alerts.send(a).await.unwrap();
            }
        }
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

#[tokio::test]
async fn two_instances_send_one_notification_per_incident() {
    let mut redis = common::redis::RedisServer::start();
    let hook = Receiver::start(Behaviour::default()).await;
    let pd = Receiver::start(Behaviour {
        ok_status: 202,
        ..Behaviour::default()
    })
    .await;
    let mut inst = vec![
        instance("east", &redis.url(), &hook.url, &pd.url),
        instance("west", &redis.url(), &hook.url, &pd.url),
    ];
    for i in inst.iter_mut() {
        i.engine.on_event(&watching("ticker"), 0);
    }
    // Incident: ticker fails.
    both(&mut inst, ev("ticker", 1000, false), 1000).await;
    both(&mut inst, ev("ticker", 2000, false), 2000).await;
    let got = hook.wait_delivered(1, Duration::from_secs(10)).await;
    assert_eq!(got.len(), 1);
    // The claim lives in Redis for group_interval (2 s here).
    let keys = redis.cli(&["KEYS", "exwatch:{alerts}:claim:*"]).unwrap();
    assert!(!keys.trim().is_empty(), "no claim key in Redis");
    // Give the other instance every chance to send a duplicate.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(hook.delivered().len(), 1, "both instances sent");
    assert_eq!(pd.delivered().len(), 1, "both instances paged");
    assert_eq!(pd.delivered()[0].body["event_action"], "trigger");
    let sender = got[0].body["instance"].as_str().unwrap().to_string();
    let other = if sender == "east" { &inst[1] } else { &inst[0] };
    let d = other.events.deliveries("bin/ticker/error_rate", "hook");
    assert!(
        d.iter().any(
            |x| matches!(x, Delivery::Suppressed { reason } if reason.contains("another instance"))
        ),
        "{d:?}"
    );

    // Recovery: one resolution, not two.
    for t in 3..20 {
        both(&mut inst, ev("ticker", t * 1000, true), t * 1000).await;
    }
    let got = hook.wait_delivered(2, Duration::from_secs(10)).await;
    assert_eq!(got.len(), 2);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(hook.delivered().len(), 2, "resolution sent twice");
    assert_eq!(hook.delivered()[1].body["status"], "resolved");
    assert_eq!(pd.delivered().len(), 2);
    assert_eq!(pd.delivered()[1].body["event_action"], "resolve");

    // Redis gone: claims are decided locally, so a new incident is still
    // notified (possibly twice), never lost.
    redis.kill();
    both(&mut inst, ev("ticker", 30_000, false), 30_000).await;
    both(&mut inst, ev("ticker", 31_000, false), 31_000).await;
    let got = hook.wait_delivered(3, Duration::from_secs(15)).await;
    assert!(got.len() >= 3, "lost a notification while Redis was down");
    assert_eq!(got[2].body["status"], "firing");
}

/// The header line of the dashboard rendered from `snap`, 120 columns wide.
fn header(snap: &exwatch::state::Snapshot, now_ms: i64) -> String {
    use exwatch::ui::{Keymap, Mode, Theme, ViewState};
    let view = ViewState::new(
        "dedup-test",
        Mode::Live,
        Keymap::default(),
        Theme::default(),
    );
    let mut term = ratatui::Terminal::new(ratatui::backend::TestBackend::new(120, 30)).unwrap();
    term.draw(|f| exwatch::ui::render(f, snap, &view, now_ms))
        .unwrap();
    term.backend()
        .to_string()
        .lines()
        .next()
        .unwrap_or("")
        .to_string()
}

/// Losing Redis under alert dedup shows like the limiter's and the breaker
/// store's: a `redis (dedup)` backend-health event, in the snapshot and in the
/// dashboard's header, and it clears when Redis answers again.
#[tokio::test]
async fn losing_redis_for_dedup_shows_in_the_snapshot_and_on_screen() {
    use exwatch::model::Component;
    use exwatch::state::State;
    let mut redis = common::redis::RedisServer::start();
    let claims = RedisClaims::new(&redis.url(), Duration::from_millis(300), "a").unwrap();
    let health = claims.health();
    let claims = Claims::redis(claims, "exwatch");
    let (tx, mut events) = tokio::sync::mpsc::channel(16);
    let shutdown = CancellationToken::new();
    let reporter = tokio::spawn(exwatch::monitor::health::report(
        exwatch::monitor::health::RedisPart::Dedup,
        health,
        tx,
        shutdown.clone(),
    ));
    let mut state = State::new();
    let mut next_health = async || loop {
        let ev = tokio::time::timeout(Duration::from_secs(10), events.recv())
            .await
            .expect("a health event")
            .expect("reporter alive");
        if let Event::BackendHealth { component, .. } = &ev {
            assert_eq!(*component, Component::RedisDedup);
            return ev;
        }
    };
    // Shared and answering: the first claim wins, the same one again does not.
    assert!(claims.claim("sig-1", Duration::from_secs(60)).await);
    assert!(!claims.claim("sig-1", Duration::from_secs(60)).await);
    let ev = next_health().await;
    state.apply(&ev);

    // Redis goes away: claims are decided in memory (a duplicate at worst,
    // never a lost message), and it shows.
    redis.kill();
    assert!(claims.claim("sig-2", Duration::from_secs(60)).await);
    let ev = next_health().await;
    let Event::BackendHealth {
        healthy,
        detail,
        at_ms,
        ..
    } = &ev
    else {
        unreachable!()
    };
    assert!(!healthy, "{detail}");
    assert!(detail.contains("Redis unreachable"), "{detail}");
    state.apply(&ev);
    let snap = state.snapshot();
    let h = snap
        .health
        .iter()
        .find(|h| h.component == Component::RedisDedup)
        .expect("in the snapshot");
    assert!(!h.healthy);
    let line = header(&snap, at_ms + 5_000);
    assert!(line.contains("redis (dedup) DOWN"), "{line}");

    // Back: the next claim reaches Redis, and the banner clears.
    redis.restart();
    let mut back = None;
    for _ in 0..50 {
        claims.claim("sig-3", Duration::from_secs(60)).await;
        if let Ok(Some(ev @ Event::BackendHealth { healthy: true, .. })) =
            tokio::time::timeout(Duration::from_millis(200), events.recv()).await
        {
            back = Some(ev);
            break;
        }
    }
    let ev = back.expect("dedup never reported Redis back");
    state.apply(&ev);
    let line = header(&state.snapshot(), at_ms + 7_000);

    assert!(line.contains("redis (dedup) ok"), "{line}");
    shutdown.cancel();
    reporter.await.unwrap();
}
