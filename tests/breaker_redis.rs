//! The Redis breaker store against a real `redis-server`: shared between
//! instances, read back after a restart, leases that expire, and the
//! fallback to memory while Redis is away.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed unwrap is a failed test

mod common;

use common::redis::RedisServer;
use exwatch::breaker::build_with_retry;
use exwatch::breaker::redis::{RedisBreakers, breaker_key};
use exwatch::breaker::{BreakerSettings, BreakerStore, CallResult, Grant, Permit, StoreKind};
use exwatch::model::{BreakerState, EndpointId, OutcomeClass, Transition};
use exwatch::model::{Component, Event};
use exwatch::monitor::health::{RedisPart, report};
use exwatch::redis_link::LinkHealth;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

const TIMEOUT: Duration = Duration::from_millis(500);

fn id() -> EndpointId {
    EndpointId {
        exchange: "binance".into(),
        endpoint: "ticker".into(),
    }
}

fn settings() -> BreakerSettings {
    BreakerSettings {
        consecutive_failures: 2,
        open_for: Duration::from_millis(600),
        max_open_for: Duration::from_secs(60),
        probe_lease: Duration::from_millis(500),
        half_open_probes: 1,
        close_after: 1,
        store: StoreKind::Redis,
        ..BreakerSettings::default()
    }
}

fn instance(r: &RedisServer, s: &BreakerSettings) -> RedisBreakers {
    RedisBreakers::new(&r.url(), TIMEOUT, s.clone(), HashMap::new()).expect("valid URL")
}

fn result(class: OutcomeClass) -> CallResult {
    CallResult {
        class,
        latency: Duration::from_millis(20),
        hold_off: None,
    }
}

async fn grant(store: &dyn BreakerStore) -> Grant {
    match store.permit(&id()).await.expect("store answers").0 {
        Permit::Granted(g) => g,
        Permit::Denied { state, retry_in } => panic!("denied while {state:?} for {retry_in:?}"),
    }
}

/// Fail calls until the breaker opens; the transition it reported.
async fn trip(store: &dyn BreakerStore) -> Transition {
    for _ in 0..10 {
        let g = grant(store).await;
        let t = store
            .record(&id(), &g, result(OutcomeClass::ServerError))
            .await;
        if let Some(t) = t.expect("store answers") {
            return t;
        }
    }
    panic!("ten failures did not open the breaker");
}

/// Ask until the open wait is over and a half-open probe is granted.
async fn wait_for_probe(store: &dyn BreakerStore) -> (Grant, Option<Transition>) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        match store.permit(&id()).await.expect("store answers") {
            (Permit::Granted(g), t) => return (g, t),
            (Permit::Denied { retry_in, .. }, _) => tokio::time::sleep(retry_in).await,
        }
    }
    panic!("no probe granted within 10 s");
}

#[tokio::test]
async fn two_instances_share_one_breaker() {
    let r = RedisServer::start();
    let s = settings();
    let (a, b) = (instance(&r, &s), instance(&r, &s));
    // b has a call in flight from before the trip.
    let in_flight = grant(&b).await;
    let t = trip(&a).await;
    assert_eq!((t.from, t.to), (BreakerState::Closed, BreakerState::Open));
    assert!(
        t.reason.to_string().starts_with("2 consecutive failures"),
        "{}",
        t.reason
    );

    let (p, _) = b.permit(&id()).await.expect("b answers");
    assert!(
        matches!(
            p,
            Permit::Denied {
                state: BreakerState::Open,
                ..
            }
        ),
        "{p:?}"
    );
    // Its late result belongs to the closed breaker and changes nothing.
    let late = b.record(&id(), &in_flight, result(OutcomeClass::Ok)).await;
    assert_eq!(late.expect("b answers"), None);
    let v = b.view(&id()).await.expect("b answers");
    assert_eq!(
        (v.state, v.open_until_ms),
        (BreakerState::Open, t.open_until_ms)
    );

    // The hash is where the docs say, readable by an operator.
    let state = r
        .cli(&["HGET", &breaker_key(&id()), "state"])
        .expect("redis-cli");
    assert_eq!(state.trim(), "open");
    let reason = r
        .cli(&["HGET", &breaker_key(&id()), "reason"])
        .expect("redis-cli");
    assert!(reason.contains("consecutive failures"), "{reason}");

    // b drives it on: probe, success, closed for a as well.
    let (probe, t) = wait_for_probe(&b).await;
    assert_eq!(t.map(|t| t.to), Some(BreakerState::HalfOpen));
    assert!(probe.lease.is_some());
    let t = b
        .record(&id(), &probe, result(OutcomeClass::Ok))
        .await
        .expect("b answers");
    assert_eq!(t.map(|t| t.to), Some(BreakerState::Closed));
    assert_eq!(grant(&a).await.state, BreakerState::Closed);
}

#[tokio::test]
async fn a_fresh_instance_keeps_an_open_breaker_open_until_its_time() {
    let r = RedisServer::start();
    let s = settings();
    let a = instance(&r, &s);
    let opened = trip(&a).await;
    drop(a);

    // As after a restart: a new instance, a new connection.
    let b = instance(&r, &s);
    let v = b.view(&id()).await.expect("b answers");
    assert_eq!(
        (v.state, v.open_until_ms, v.trips),
        (BreakerState::Open, opened.open_until_ms, 1)
    );
    match b.permit(&id()).await.expect("b answers") {
        (
            Permit::Denied {
                state: BreakerState::Open,
                retry_in,
            },
            None,
        ) => {
            assert!(retry_in <= s.open_for, "{retry_in:?}");
        }
        other => panic!("a restarted instance called an open endpoint: {other:?}"),
    }
    let (g, t) = wait_for_probe(&b).await;
    let t = t.expect("this instance moved it to half-open");
    assert_eq!((t.from, t.to), (BreakerState::Open, BreakerState::HalfOpen));
    assert_eq!(g.state, BreakerState::HalfOpen);
    // A failed probe reopens it for twice as long, for everyone.
    let t = b
        .record(&id(), &g, result(OutcomeClass::Timeout))
        .await
        .expect("b answers")
        .expect("probe failure reopens");
    assert!(
        t.reason.to_string().contains("open 1s 200ms (trip 2)"),
        "{}",
        t.reason
    );
    let c = instance(&r, &s);
    assert_eq!(c.view(&id()).await.expect("c answers").trips, 2);
}

#[tokio::test]
async fn a_hung_probes_lease_expires_and_another_probe_goes() {
    let r = RedisServer::start();
    let s = settings();
    let (a, b) = (instance(&r, &s), instance(&r, &s));
    trip(&a).await;
    // a takes the only probe slot and hangs (never reports).
    let (hung, _) = wait_for_probe(&a).await;
    let lease_key = format!("{}:probe:{}:0", breaker_key(&id()), hung.generation);
    let ttl: i64 = r
        .cli(&["PTTL", &lease_key])
        .and_then(|t| t.trim().parse().ok())
        .expect("PTTL");
    assert!(ttl > 0 && ttl <= 500, "the lease is a PX key: {ttl}");

    let retry_in = match b.permit(&id()).await.expect("b answers").0 {
        Permit::Denied {
            state: BreakerState::HalfOpen,
            retry_in,
        } => retry_in,
        other => panic!("a second probe while the first holds the slot: {other:?}"),
    };
    assert!(retry_in <= s.probe_lease, "{retry_in:?}");
    let (probe, t) = wait_for_probe(&b).await;
    assert_eq!(t, None, "still the same half-open period");
    assert_eq!(probe.generation, hung.generation);

    // The hung probe's late success does not count; b's does.
    let late = a
        .record(&id(), &hung, result(OutcomeClass::Ok))
        .await
        .expect("a answers");
    assert_eq!(late, None);
    let t = b
        .record(&id(), &probe, result(OutcomeClass::Ok))
        .await
        .expect("b answers");
    assert_eq!(t.map(|t| t.to), Some(BreakerState::Closed));
}

#[tokio::test]
async fn half_open_grants_exactly_the_allowed_probes_across_instances() {
    let r = RedisServer::start();
    let s = BreakerSettings {
        half_open_probes: 2,
        close_after: 3,
        probe_lease: Duration::from_secs(30),
        ..settings()
    };
    let stores: Vec<Arc<RedisBreakers>> = (0..3).map(|_| Arc::new(instance(&r, &s))).collect();
    trip(stores[0].as_ref()).await;
    tokio::time::sleep(s.open_for).await;
    let mut tasks = Vec::new();
    for i in 0..12 {
        let store = stores[i % stores.len()].clone();
        tasks.push(tokio::spawn(async move { store.permit(&id()).await }));
    }
    let mut granted = Vec::new();
    let mut to_half_open = 0;
    for t in tasks {
        let (p, tr) = t.await.expect("task").expect("store answers");
        to_half_open += usize::from(tr.is_some_and(|t| t.to == BreakerState::HalfOpen));
        match p {
            Permit::Granted(g) => granted.push(g),
            Permit::Denied { state, .. } => assert_eq!(state, BreakerState::HalfOpen),
        }
    }
    assert_eq!(granted.len(), 2, "{granted:?}");
    assert_eq!(to_half_open, 1, "one instance reports the transition");
    // Two successes of three needed: still half-open, slots free again.
    for g in &granted {
        let t = stores[1].record(&id(), g, result(OutcomeClass::Ok)).await;
        assert_eq!(t.expect("store answers"), None);
    }
    let successes = r
        .cli(&["HGET", &breaker_key(&id()), "half_open_successes"])
        .expect("redis-cli");
    assert_eq!(successes.trim(), "2");
    let last = grant(stores[2].as_ref()).await;
    let t = stores[0]
        .record(&id(), &last, result(OutcomeClass::Ok))
        .await;
    assert_eq!(
        t.expect("store answers").map(|t| t.to),
        Some(BreakerState::Closed)
    );
}

#[tokio::test]
async fn force_open_and_reset_are_shared() {
    let r = RedisServer::start();
    let s = settings();
    let (a, b) = (instance(&r, &s), instance(&r, &s));
    let t = a
        .force_open(&id())
        .await
        .expect("a answers")
        .expect("opens");
    assert_eq!((t.to, t.open_until_ms), (BreakerState::Open, None));
    tokio::time::sleep(s.open_for).await;
    assert!(matches!(
        b.permit(&id()).await.expect("b").0,
        Permit::Denied {
            state: BreakerState::Open,
            ..
        }
    ));
    let v = b.view(&id()).await.expect("b");
    assert_eq!(
        (v.state, v.open_until_ms),
        (BreakerState::Open, None),
        "forced: no end"
    );
    let t = b.reset(&id()).await.expect("b answers").expect("closes");
    assert_eq!(t.to, BreakerState::Closed);
    assert_eq!(grant(&a).await.state, BreakerState::Closed);
}

async fn wait_for_health(
    rx: &mut tokio::sync::watch::Receiver<LinkHealth>,
    store: &dyn BreakerStore,
    want: fn(&LinkHealth) -> bool,
) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !want(&rx.borrow_and_update()) {
        assert!(
            Instant::now() < deadline,
            "health stuck at {:?}",
            *rx.borrow()
        );
        // Calls drive the retries; the store has no timer of its own.
        let _ = store.view(&id()).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn redis_outage_falls_back_to_memory_and_recovers() {
    let mut r = RedisServer::start();
    let s = BreakerSettings {
        open_for: Duration::from_secs(60),
        ..settings()
    };
    let (store, mut health) = build_with_retry(
        s.clone(),
        HashMap::new(),
        Some(r.url()),
        TIMEOUT,
        Duration::from_millis(100),
    )
    .await;
    assert_eq!(*health.borrow(), LinkHealth::Shared);
    let opened = trip(store.as_ref()).await;

    r.kill();
    // The breaker stays open from what was last seen in Redis.
    let (p, _) = store
        .permit(&id())
        .await
        .expect("falls back instead of failing");
    assert!(
        matches!(
            p,
            Permit::Denied {
                state: BreakerState::Open,
                ..
            }
        ),
        "{p:?}"
    );
    assert!(
        matches!(&*health.borrow_and_update(), LinkHealth::Degraded { error, .. } if !error.is_empty())
    );
    // Other endpoints keep being monitored, from memory.
    let other = EndpointId {
        exchange: "okx".into(),
        endpoint: "books".into(),
    };
    match store.permit(&other).await.expect("memory answers").0 {
        Permit::Granted(g) => assert_eq!(g.backend, StoreKind::Memory),
        p => panic!("{p:?}"),
    }

    // Redis comes back empty (no persistence): the open breaker is shared
    // again rather than forgotten.
    r.restart();
    wait_for_health(&mut health, store.as_ref(), |h| *h == LinkHealth::Shared).await;
    let fresh = instance(&r, &s);
    let v = fresh.view(&id()).await.expect("redis answers");
    assert_eq!(
        (v.state, v.open_until_ms),
        (BreakerState::Open, opened.open_until_ms)
    );
    assert!(matches!(
        store.permit(&id()).await.expect("redis").0,
        Permit::Denied {
            state: BreakerState::Open,
            ..
        }
    ));
}

#[tokio::test]
async fn a_store_built_while_redis_is_down_starts_degraded_and_recovers() {
    let mut r = RedisServer::start();
    r.kill();
    let (store, mut health) = build_with_retry(
        settings(),
        HashMap::new(),
        Some(r.url()),
        TIMEOUT,
        Duration::from_millis(100),
    )
    .await;
    let (tx, mut events) = tokio::sync::mpsc::channel(16);
    let shutdown = tokio_util::sync::CancellationToken::new();
    let reporter = tokio::spawn(report(
        RedisPart::Breaker,
        health.clone(),
        tx,
        shutdown.clone(),
    ));
    assert!(matches!(
        *health.borrow_and_update(),
        LinkHealth::Degraded { .. }
    ));
    assert_eq!(grant(store.as_ref()).await.backend, StoreKind::Memory);
    r.restart();
    wait_for_health(&mut health, store.as_ref(), |h| *h == LinkHealth::Shared).await;
    assert_eq!(grant(store.as_ref()).await.backend, StoreKind::Redis);

    // The dashboard hears about both, as backend health events.
    let mut seen = Vec::new();
    while seen.len() < 2 {
        match tokio::time::timeout(Duration::from_secs(5), events.recv()).await {
            Ok(Some(Event::BackendHealth {
                component,
                healthy,
                detail,
                ..
            })) => {
                assert_eq!(component, Component::RedisBreaker);
                seen.push((healthy, detail));
            }
            other => panic!("expected a health event, got {other:?}"),
        }
    }
    assert!(
        !seen[0].0 && seen[0].1.contains("Redis unreachable"),
        "{seen:?}"
    );
    assert!(seen[1].0, "{seen:?}");
    shutdown.cancel();
    reporter.await.expect("reporter stops on shutdown");
}

#[tokio::test]
async fn memory_store_is_chosen_by_default() {
    let (store, health) = build_with_retry(
        BreakerSettings::default(),
        HashMap::new(),
        None,
        TIMEOUT,
        Duration::from_millis(100),
    )
    .await;
    assert_eq!(*health.borrow(), LinkHealth::Local);
    assert_eq!(grant(store.as_ref()).await.backend, StoreKind::Memory);
}

#[tokio::test]
async fn a_three_master_cluster_runs_every_script_without_crossslot() {
    let nodes = common::redis::start_cluster();
    let s = BreakerSettings {
        half_open_probes: 2,
        close_after: 2,
        ..settings()
    };
    let store = instance(&nodes[1], &s);
    let ids: Vec<EndpointId> = ["binance", "bybit", "okx", "coinbase", "kraken", "x1"]
        .into_iter()
        .map(|ex| EndpointId {
            exchange: ex.into(),
            endpoint: "ticker".into(),
        })
        .collect();
    let fail = result(OutcomeClass::ServerError);
    for id in &ids {
        for _ in 0..s.consecutive_failures {
            let (Permit::Granted(g), _) = store.permit(id).await.expect("cluster answers") else {
                panic!("{id:?} denied while closed");
            };
            store.record(id, &g, fail).await.expect("cluster answers");
        }
        assert_eq!(
            store.view(id).await.expect("view").state,
            BreakerState::Open,
            "{id:?}"
        );
    }
    tokio::time::sleep(s.open_for).await;
    let mut slots = std::collections::HashSet::new();
    for id in &ids {
        // Two probe slots (three keys in one script), a release, a close.
        let mut probes = Vec::new();
        for _ in 0..2 {
            match store.permit(id).await.expect("cluster answers").0 {
                Permit::Granted(g) => probes.push(g),
                p => panic!("{id:?}: {p:?}"),
            }
        }
        let mut last = None;
        for g in &probes {
            last = store
                .record(id, g, result(OutcomeClass::Ok))
                .await
                .expect("cluster answers");
        }
        assert_eq!(last.map(|t| t.to), Some(BreakerState::Closed), "{id:?}");
        slots.insert(nodes[0].cli(&["CLUSTER", "KEYSLOT", &breaker_key(id)]));
    }
    assert!(slots.len() > 1, "the exchanges spread over several slots");
}
