//! The Redis-backed limiter against a real `redis-server` started by each
//! test on a free loopback port.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed unwrap is a failed test

mod common;

use axum::Router;
use axum::extract::{Path, State};
use axum::routing::get;
use common::redis::RedisServer;
use exwatch::limiter::redis::RedisLimiter;
use exwatch::limiter::{
    BucketSpec, Decision, LimitRequest, LimiterBackend, LimiterSettings, OutagePolicy, RateLimiter,
    TierBucket, acquire,
};
use exwatch::model::RateLimitSignal;
use exwatch::model::Tier;
use exwatch::monitor::health::RedisPart;
use exwatch::redis_link::{LinkHealth, RedisLink, Topology};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const TIMEOUT: Duration = Duration::from_millis(300);

fn request(exchange: &str, capacity: f64, refill_per_sec: f64, weight: u32) -> LimitRequest {
    let tier = |tier, name: &str, capacity, refill_per_sec| TierBucket {
        tier,
        id: LimitRequest::bucket_id(exchange, tier, name),
        spec: BucketSpec {
            capacity,
            refill_per_sec,
        },
    };
    LimitRequest {
        exchange: exchange.into(),
        tiers: vec![
            tier(Tier::Exchange, "all", capacity, refill_per_sec),
            tier(
                Tier::Endpoint,
                "ticker",
                capacity * 10.0,
                refill_per_sec * 10.0,
            ),
            tier(
                Tier::Account,
                "main",
                capacity * 10.0,
                refill_per_sec * 10.0,
            ),
            tier(
                Tier::Ip,
                "127.0.0.1",
                capacity * 10.0,
                refill_per_sec * 10.0,
            ),
        ],
        weight,
    }
}

async fn limiter(url: &str, policy: OutagePolicy, instances: u32) -> RedisLimiter {
    let link = match RedisLink::new(url, TIMEOUT) {
        Ok(l) => l,
        Err(e) => panic!("bad test URL: {e}"),
    };
    let l = RedisLimiter::new(link, policy, instances);
    if let Err(e) = l.connect().await {
        panic!("cannot reach the test redis: {e}");
    }
    l
}

async fn wait_health(l: &RedisLimiter, want_degraded: bool) -> LinkHealth {
    let mut rx = l.health();
    let deadline = tokio::time::sleep(Duration::from_secs(15));
    tokio::pin!(deadline);
    loop {
        let now = rx.borrow_and_update().clone();
        if matches!(now, LinkHealth::Degraded { .. }) == want_degraded {
            return now;
        }
        tokio::select! {
            r = rx.changed() => assert!(r.is_ok(), "health channel closed"),
            _ = &mut deadline => panic!("health never became degraded={want_degraded}; last {now:?}"),
        }
    }
}

/// A tiny exchange stand-in that counts requests per instance and when
/// they arrived.
#[derive(Clone, Default)]
struct Counter(Arc<Mutex<Vec<(u32, Instant)>>>);

async fn hit(State(c): State<Counter>, Path(instance): Path<u32>) -> &'static str {
    c.0.lock()
        .unwrap_or_else(|p| p.into_inner())
        .push((instance, Instant::now()));
    "{}"
}

async fn start_counter() -> (String, Counter) {
    let counter = Counter::default();
    let app = Router::new()
        .route("/hit/{instance}", get(hit))
        .with_state(counter.clone());
    let listener = match tokio::net::TcpListener::bind("127.0.0.1:0").await {
        Ok(l) => l,
        Err(e) => panic!("bind: {e}"),
    };
    let addr = listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (format!("http://{addr}"), counter)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_share_one_budget_fairly() {
    let redis = RedisServer::start();
    let (base, counter) = start_counter().await;
    let capacity = 10.0;
    let refill = 40.0;
    let run_for = Duration::from_millis(1500);
    let http = reqwest::Client::new();
    let mut tasks = Vec::new();
    for instance in 0..3u32 {
        let l = limiter(&redis.url(), OutagePolicy::Closed, 3).await;
        let http = http.clone();
        let url = format!("{base}/hit/{instance}");
        let req = request("sharedx", capacity, refill, 1);
        tasks.push(tokio::spawn(async move {
            let stop = Instant::now() + run_for;
            while Instant::now() < stop {
                match acquire(&l, &req).await {
                    Ok(_) => {}
                    Err(e) => panic!("acquire failed: {e}"),
                }
                let sent = http.get(&url).send().await;
                assert!(sent.is_ok(), "counter server unreachable");
            }
            l.is_degraded()
        }));
    }
    for t in tasks {
        assert!(
            !t.await.unwrap_or(true),
            "an instance degraded during the run"
        );
    }
    let hits = counter.0.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let first = hits.iter().map(|h| h.1).min().unwrap_or_else(Instant::now);
    let last = hits.iter().map(|h| h.1).max().unwrap_or_else(Instant::now);
    let window = (last - first).as_secs_f64();
    let total = hits.len() as f64;
    // The whole budget: a full bucket plus what refilled during the window
    // (+1 for a grant at the very edge).
    let bound = capacity + refill * window + 1.0;
    assert!(
        total <= bound,
        "{total} requests over {window:.3} s exceeds capacity + refill × window = {bound:.1}"
    );
    // And it was used, not starved: at least half of what it allows.
    assert!(
        total >= 0.5 * (capacity + refill * window),
        "only {total} requests in {window:.3} s"
    );
    let mut per: HashMap<u32, usize> = HashMap::new();
    for (i, _) in &hits {
        *per.entry(*i).or_default() += 1;
    }
    eprintln!("shares {per:?} of {total} in {window:.3} s");
    eprintln!("order {:?}", hits.iter().map(|h| h.0).collect::<Vec<_>>());
    for instance in 0..3 {
        let got = per.get(&instance).copied().unwrap_or(0) as f64;
        assert!(
            got >= total / 3.0 * 0.75,
            "instance {instance} got {got} of {total}: not a fair share ({per:?})"
        );
    }
}

#[tokio::test]
async fn redis_killed_then_restarted_degrades_under_local_policy_and_recovers() {
    let mut redis = RedisServer::start();
    let l = limiter(&redis.url(), OutagePolicy::Local, 2).await;
    let req = request("outagex", 100.0, 10.0, 1);
    assert_eq!(l.check(&req).await.ok(), Some(Decision::Granted));
    assert_eq!(*l.health().borrow(), LinkHealth::Shared);

    redis.kill();
    // The first check after the kill notices; it still gets an answer.
    let d = l.check(&req).await;
    assert_eq!(
        d.ok(),
        Some(Decision::Granted),
        "local policy keeps granting this instance's share"
    );
    let health = wait_health(&l, true).await;
    let LinkHealth::Degraded { error, .. } = &health else {
        panic!("expected degraded, got {health:?}")
    };
    assert!(!error.is_empty());
    // What the operator sees carries the reason and names the policy.
    let (healthy, detail) = RedisPart::Limiter {
        on_outage: OutagePolicy::Local,
    }
    .describe(&health)
    .expect("a degraded limiter is reported");
    assert!(!healthy);
    assert!(
        detail.contains(error.as_str()) && detail.contains("policy local"),
        "{detail}"
    );
    // Local share: capacity 100 / 2 instances = 50 tokens, one of them
    // taken by the check that noticed the outage.
    let granted = {
        let mut n = 0;
        for _ in 0..80 {
            if l.check(&req).await.ok() == Some(Decision::Granted) {
                n += 1;
            }
        }
        n
    };
    assert!(
        (49..=51).contains(&granted),
        "local fallback granted {granted}, expected its share of 50 minus 1"
    );
    let fill = l.fill(&req).await.ok().unwrap_or_default();
    assert_eq!(fill.first().map(|f| f.capacity), Some(50.0));

    redis.restart();
    wait_health(&l, false).await;
    let key = LimitRequest::bucket_id("outagex", Tier::Exchange, "all");
    assert_eq!(
        redis.cli(&["EXISTS", &key]).map(|s| s.trim().to_string()),
        Some("0".into())
    );
    assert_eq!(l.check(&req).await.ok(), Some(Decision::Granted));
    assert_eq!(
        redis.cli(&["EXISTS", &key]).map(|s| s.trim().to_string()),
        Some("1".into()),
        "after recovery the check went to Redis again"
    );
}

#[tokio::test]
async fn redis_killed_under_closed_policy_denies_then_recovers() {
    let mut redis = RedisServer::start();
    let l = limiter(&redis.url(), OutagePolicy::Closed, 1).await;
    let req = request("closedx", 100.0, 10.0, 1);
    assert_eq!(l.check(&req).await.ok(), Some(Decision::Granted));
    redis.kill();
    for _ in 0..5 {
        let d = l.check(&req).await.ok();
        assert_eq!(
            d,
            Some(Decision::Denied {
                tier: Tier::Exchange,
                retry_in: Duration::from_secs(1)
            })
        );
    }
    let health = wait_health(&l, true).await;
    assert!(
        matches!(&health, LinkHealth::Degraded { error, .. } if !error.is_empty()),
        "{health:?}"
    );
    let (healthy, detail) = RedisPart::Limiter {
        on_outage: OutagePolicy::Closed,
    }
    .describe(&health)
    .expect("a degraded limiter is reported");
    assert!(!healthy);
    assert!(detail.contains("policy closed"), "{detail}");
    redis.restart();
    wait_health(&l, false).await;
    assert_eq!(l.check(&req).await.ok(), Some(Decision::Granted));
}

#[tokio::test]
async fn unreachable_at_start_begins_degraded_and_recovers() {
    let mut redis = RedisServer::start();
    let url = redis.url();
    redis.kill();
    let link = RedisLink::new(&url, TIMEOUT).ok();
    let l = RedisLimiter::new(
        link.unwrap_or_else(|| panic!("url")),
        OutagePolicy::Local,
        1,
    );
    assert!(l.connect().await.is_err());
    assert!(l.is_degraded());
    let req = request("latex", 10.0, 1.0, 1);
    assert_eq!(l.check(&req).await.ok(), Some(Decision::Granted));
    redis.restart();
    wait_health(&l, false).await;
    assert_eq!(l.check(&req).await.ok(), Some(Decision::Granted));
}

#[tokio::test]
async fn script_flush_mid_run_keeps_checks_working() {
    let redis = RedisServer::start();
    let l = limiter(&redis.url(), OutagePolicy::Closed, 1).await;
    let req = request("flushx", 1000.0, 0.001, 1);
    for _ in 0..10 {
        assert_eq!(l.check(&req).await.ok(), Some(Decision::Granted));
    }
    let before = l.link().round_trips();
    assert_eq!(
        redis
            .cli(&["SCRIPT", "FLUSH"])
            .map(|s| s.trim().to_string()),
        Some("OK".into())
    );
    for _ in 0..10 {
        assert_eq!(l.check(&req).await.ok(), Some(Decision::Granted));
    }
    assert!(!l.is_degraded(), "a flushed script cache is not an outage");
    // Ten checks, plus one EVAL to reload the script after the flush.
    assert_eq!(l.link().round_trips() - before, 11);
    let fill = l.fill(&req).await.ok().unwrap_or_default();
    assert!((980.0..980.5).contains(&fill[0].tokens), "{fill:?}");
}

#[tokio::test]
async fn a_stray_value_under_a_bucket_key_does_not_wedge_the_limiter() {
    let redis = RedisServer::start();
    let l = limiter(&redis.url(), OutagePolicy::Closed, 1).await;
    let req = request("strayx", 5.0, 0.001, 1);
    assert_eq!(
        redis
            .cli(&["SET", &req.tiers[0].id, "not a bucket"])
            .map(|s| s.trim().to_string()),
        Some("OK".into())
    );
    for _ in 0..5 {
        assert_eq!(l.check(&req).await.ok(), Some(Decision::Granted));
    }
    assert!(matches!(
        l.check(&req).await.ok(),
        Some(Decision::Denied {
            tier: Tier::Exchange,
            ..
        })
    ));
    assert!(!l.is_degraded());
}

#[tokio::test]
async fn denial_names_the_tier_and_nothing_is_debited() {
    let redis = RedisServer::start();
    let l = limiter(&redis.url(), OutagePolicy::Closed, 1).await;
    let mut req = request("denyx", 100.0, 0.01, 3);
    // Make the endpoint tier the tight one: 4 tokens at 1/s.
    req.tiers[1].spec = BucketSpec {
        capacity: 4.0,
        refill_per_sec: 1.0,
    };
    assert_eq!(l.check(&req).await.ok(), Some(Decision::Granted));
    match l.check(&req).await.ok() {
        Some(Decision::Denied {
            tier: Tier::Endpoint,
            retry_in,
        }) => {
            // 1 token left, 3 needed at 1/s: a little under 2 s.
            assert!(
                retry_in <= Duration::from_secs(2) && retry_in >= Duration::from_millis(1500),
                "{retry_in:?}"
            );
        }
        other => panic!("expected an endpoint denial, got {other:?}"),
    }
    let fill = l.fill(&req).await.ok().unwrap_or_default();
    assert!(
        (97.0..97.5).contains(&fill[0].tokens),
        "the exchange tier was debited once only: {fill:?}"
    );
    // Keys expire by themselves: the TTL is about the time to refill.
    let ttl: i64 = redis
        .cli(&["PTTL", &req.tiers[0].id])
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(-1);
    assert!(
        (290_000..=301_000).contains(&ttl),
        "exchange key TTL {ttl} ms (3 tokens at 0.01/s + 1 s margin)"
    );
}

#[tokio::test]
async fn retry_after_on_one_instance_stops_all_instances() {
    let redis = RedisServer::start();
    let a = limiter(&redis.url(), OutagePolicy::Local, 3).await;
    let b = limiter(&redis.url(), OutagePolicy::Local, 3).await;
    let c = limiter(&redis.url(), OutagePolicy::Local, 3).await;
    let req = request("retryx", 100.0, 10.0, 1);
    for l in [&a, &b, &c] {
        assert_eq!(l.check(&req).await.ok(), Some(Decision::Granted));
    }
    let signal = RateLimitSignal {
        retry_after_ms: Some(5000),
        ..Default::default()
    };
    assert!(a.apply_signal(&req, &signal).await.is_ok());
    for l in [&a, &b, &c] {
        match l.check(&req).await.ok() {
            Some(Decision::Denied { retry_in, .. }) => {
                assert!(
                    retry_in >= Duration::from_millis(4500)
                        && retry_in <= Duration::from_millis(5200),
                    "told to wait {retry_in:?}, expected about 5 s"
                );
            }
            other => panic!("expected a denial after Retry-After, got {other:?}"),
        }
    }
    // A shorter order later never shortens the block.
    let short = RateLimitSignal {
        retry_after_ms: Some(1000),
        ..Default::default()
    };
    assert!(b.apply_signal(&req, &short).await.is_ok());
    let fill = c.fill(&req).await.ok().unwrap_or_default();
    assert!(
        fill.iter()
            .all(|f| f.blocked_for_ms.is_some_and(|ms| ms > 4000)),
        "block must stay about 5 s on every tier: {fill:?}"
    );
}

#[tokio::test]
async fn a_hold_received_while_redis_was_down_is_shared_when_it_returns() {
    let mut redis = RedisServer::start();
    let a = limiter(&redis.url(), OutagePolicy::Local, 2).await;
    let req = request("holdx", 100.0, 10.0, 1);
    assert_eq!(a.check(&req).await.ok(), Some(Decision::Granted));
    redis.kill();
    let _ = a.check(&req).await;
    wait_health(&a, true).await;
    // A 429 with Retry-After: 10 arrives while Redis is down.
    let signal = RateLimitSignal {
        retry_after_ms: Some(10_000),
        ..Default::default()
    };
    assert!(a.apply_signal(&req, &signal).await.is_ok());
    assert!(
        matches!(a.check(&req).await.ok(), Some(Decision::Denied { .. })),
        "this instance backs off locally"
    );
    redis.restart();
    wait_health(&a, false).await;
    // Another instance, which never saw the 429, is held off too (for what
    // is left of the 10 s, plus 0.1 s to refill the one token it needs).
    let b = limiter(&redis.url(), OutagePolicy::Local, 2).await;
    match b.check(&req).await.ok() {
        Some(Decision::Denied { retry_in, .. }) => assert!(
            retry_in > Duration::from_secs(3) && retry_in <= Duration::from_millis(10_200),
            "told to wait {retry_in:?}"
        ),
        other => panic!("the hold was not written back to Redis: {other:?}"),
    }
}

#[tokio::test]
async fn reported_usage_drains_the_shared_bucket_for_everyone() {
    let redis = RedisServer::start();
    let a = limiter(&redis.url(), OutagePolicy::Local, 2).await;
    let b = limiter(&redis.url(), OutagePolicy::Local, 2).await;
    let req = request("usedx", 600.0, 0.1, 1);
    // Binance: 5400 of 6000 weight used this minute → 10% left → 60 of 600.
    let used = RateLimitSignal {
        used: Some(5400),
        limit: Some(6000),
        ..Default::default()
    };
    assert!(a.apply_signal(&req, &used).await.is_ok());
    let fill = b.fill(&req).await.ok().unwrap_or_default();
    assert!((60.0..61.0).contains(&fill[0].tokens), "{fill:?}");
    // Usage that says more is left never adds tokens.
    let lower = RateLimitSignal {
        used: Some(0),
        limit: Some(6000),
        ..Default::default()
    };
    assert!(b.apply_signal(&req, &lower).await.is_ok());
    let fill = a.fill(&req).await.ok().unwrap_or_default();
    assert!(fill[0].tokens < 62.0, "{fill:?}");
}

#[tokio::test]
async fn a_three_master_cluster_works_without_crossslot() {
    let nodes = common::redis::start_cluster();
    let l = limiter(&nodes[1].url(), OutagePolicy::Closed, 1).await;
    assert_eq!(l.link().topology(), Some(Topology::Cluster));
    // Several exchanges: their hash tags land in different slots, on
    // different masters; each 4-tier request stays within one slot.
    let mut owners = std::collections::HashSet::new();
    for ex in [
        "binance", "bybit", "okx", "coinbase", "kraken", "x1", "x2", "x3",
    ] {
        let req = request(ex, 10.0, 1.0, 2);
        for _ in 0..5 {
            assert_eq!(l.check(&req).await.ok(), Some(Decision::Granted), "{ex}");
        }
        assert!(
            matches!(
                l.check(&req).await.ok(),
                Some(Decision::Denied {
                    tier: Tier::Exchange,
                    ..
                })
            ),
            "{ex}"
        );
        let slot = nodes[0]
            .cli(&["CLUSTER", "KEYSLOT", &req.tiers[0].id])
            .and_then(|s| s.trim().parse::<u16>().ok())
            .unwrap_or(u16::MAX);
        for t in &req.tiers {
            let s = nodes[0]
                .cli(&["CLUSTER", "KEYSLOT", &t.id])
                .and_then(|s| s.trim().parse::<u16>().ok());
            assert_eq!(s, Some(slot), "{} is not in the slot of its exchange", t.id);
        }
        let owner = nodes.iter().position(|n| {
            n.cli(&["CLUSTER", "COUNTKEYSINSLOT", &slot.to_string()])
                .is_some_and(|s| s.trim().parse::<u32>().unwrap_or(0) > 0)
        });
        owners.insert(owner);
    }
    assert!(!l.is_degraded());
    assert!(
        owners.len() >= 2,
        "all exchanges landed on one master: {owners:?}"
    );
}

#[tokio::test]
async fn build_names_a_missing_variable() {
    let settings = LimiterSettings {
        backend: LimiterBackend::Redis,
        on_redis_outage: OutagePolicy::Local,
        instances: 1,
    };
    let cfg = exwatch::redis_link::RedisConfig {
        url_env: "EXWATCH_TEST_NO_SUCH_VAR".into(),
        timeout: TIMEOUT,
        tls_ca_file: None,
    };
    let err = exwatch::limiter::build(&settings, Some(&cfg))
        .await
        .err()
        .map(|e| e.to_string());
    assert!(
        err.as_deref()
            .is_some_and(|e| e.contains("EXWATCH_TEST_NO_SUCH_VAR")),
        "{err:?}"
    );
    // A variable that holds no Redis URL is named too (cargo sets this one).
    let cfg = exwatch::redis_link::RedisConfig {
        url_env: "CARGO_PKG_NAME".into(),
        timeout: TIMEOUT,
        tls_ca_file: None,
    };
    let err = exwatch::limiter::build(&settings, Some(&cfg))
        .await
        .err()
        .map(|e| e.to_string());
    assert!(
        err.as_deref().is_some_and(|e| e.contains("CARGO_PKG_NAME")),
        "{err:?}"
    );
    // Memory needs nothing.
    let mem = LimiterSettings::default();
    assert!(exwatch::limiter::build(&mem, None).await.is_ok());
}
