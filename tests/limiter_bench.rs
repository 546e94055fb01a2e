//! `bench_limiter` against a real redis-server: the figures it reports are
//! real (checks happened, one round trip each), whatever their speed.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed unwrap is a failed test

mod common;

use common::redis::RedisServer;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_limiter_reports_real_figures() {
    let redis = RedisServer::start();
    let v =
        exwatch::bench::limiter::bench_limiter(&redis.url(), 8, Duration::from_millis(300)).await;
    assert!(v.get("error").is_none(), "{v}");
    let checks = v["checks"].as_u64().unwrap_or(0);
    assert!(checks > 0, "{v}");
    assert_eq!(
        v["granted"].as_u64(),
        Some(checks),
        "every check granted: {v}"
    );
    assert_eq!(v["round_trips_per_check"].as_f64(), Some(1.0), "{v}");
    assert!(
        v["p50_us"].as_u64().unwrap_or(0) > 0 && v["p99_us"].as_u64() >= v["p50_us"].as_u64(),
        "{v}"
    );
    // The keys the benchmark wrote are really there, expiring by themselves.
    let args: Vec<String> =
        serde_json::from_value(v["redis_benchmark_args"].clone()).unwrap_or_default();
    assert_eq!(args.first().map(String::as_str), Some("EVALSHA"));
    for key in &args[3..7] {
        let ttl: i64 = redis
            .cli(&["PTTL", key])
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(-2);
        assert!(ttl > 0, "{key} has no expiry ({ttl})");
    }
}

#[tokio::test]
async fn bench_limiter_reports_an_unreachable_redis_as_an_error() {
    let mut redis = RedisServer::start();
    let url = redis.url();
    redis.kill();
    let v = exwatch::bench::limiter::bench_limiter(&url, 1, Duration::from_millis(50)).await;
    assert!(
        v["error"].as_str().is_some_and(|e| e.contains("connect")),
        "{v}"
    );
}
