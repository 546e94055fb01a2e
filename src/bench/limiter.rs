//! `exwatch bench limiter`: the Redis backend under load, as JSON figures.
//!
//! `concurrency` tasks share one limiter (one multiplexed connection, as in
//! the monitor) and check a 4-tier request in a loop for `duration`. The
//! budget is large enough that every check is granted, so each one runs the
//! full script (read, refill, debit, expire) on every tier.

use crate::limiter::redis::{CHECK_SCRIPT, RedisLimiter};
use crate::limiter::{BucketSpec, Decision, LimitRequest, OutagePolicy, RateLimiter, TierBucket};
use crate::model::Tier;
use crate::redis_link::RedisLink;
use serde_json::json;
use std::time::{Duration, Instant};

const BENCH_TIMEOUT: Duration = Duration::from_secs(2);

/// A 4-tier request on its own keys (a fresh exchange name per run), with
/// a budget no benchmark can exhaust.
pub fn bench_request() -> LimitRequest {
    let exchange = format!("bench{:08x}", rand::random::<u32>());
    let tier = |tier, name: &str| TierBucket {
        tier,
        id: LimitRequest::bucket_id(&exchange, tier, name),
        spec: BucketSpec {
            capacity: 1e12,
            refill_per_sec: 1e12,
        },
    };
    LimitRequest {
        tiers: vec![
            tier(Tier::Exchange, "all"),
            tier(Tier::Endpoint, "depth"),
            tier(Tier::Account, "main"),
            tier(Tier::Ip, "10.0.0.1"),
        ],
        exchange,
        weight: 1,
    }
}

/// The `redis-benchmark` arguments that send the very same EVALSHA (same
/// script, keys and arguments), for a side-by-side figure.
pub fn redis_benchmark_args(req: &LimitRequest) -> Vec<String> {
    let mut args = vec![
        "EVALSHA".to_string(),
        CHECK_SCRIPT.sha().to_string(),
        req.tiers.len().to_string(),
    ];
    args.extend(req.tiers.iter().map(|t| t.id.clone()));
    args.push(req.weight.to_string());
    for t in &req.tiers {
        args.push(t.spec.capacity.to_string());
        args.push(t.spec.refill_per_sec.to_string());
    }
    args
}

#[derive(Default)]
struct Tally {
    granted: u64,
    denied: u64,
    errors: u64,
    latency_us: Option<hdrhistogram::Histogram<u64>>,
}

/// Run the benchmark; failures come back as `{"error": ...}`, never a panic.
pub async fn bench_limiter(
    redis_url: &str,
    concurrency: usize,
    duration: Duration,
) -> serde_json::Value {
    let concurrency = concurrency.max(1);
    let link = match RedisLink::new(redis_url, BENCH_TIMEOUT) {
        Ok(l) => l,
        Err(e) => return json!({ "error": e.to_string() }),
    };
    // Closed: an outage during the run shows up as denials, not as fake speed.
    let limiter = RedisLimiter::new(link, OutagePolicy::Closed, 1);
    if let Err(e) = limiter.connect().await {
        return json!({ "error": format!("cannot connect: {e}") });
    }
    let req = bench_request();
    for _ in 0..200 {
        if let Err(e) = limiter.check(&req).await {
            return json!({ "error": e.to_string() });
        }
    }
    if limiter.is_degraded() {
        return json!({ "error": "Redis failed during warm-up" });
    }

    let trips_before = limiter.link().round_trips();
    let start = Instant::now();
    let deadline = start + duration;
    let mut tasks = Vec::with_capacity(concurrency);
    for _ in 0..concurrency {
        let limiter = limiter.clone();
        let req = req.clone();
        tasks.push(tokio::spawn(async move {
            let mut t = Tally {
                latency_us: hdrhistogram::Histogram::new_with_bounds(1, 60_000_000, 3).ok(),
                ..Tally::default()
            };
            while Instant::now() < deadline {
                let t0 = Instant::now();
                let d = limiter.check(&req).await;
                let us = t0.elapsed().as_micros() as u64;
                match d {
                    Ok(Decision::Granted) => t.granted += 1,
                    Ok(Decision::Denied { .. }) => t.denied += 1,
                    Err(_) => t.errors += 1,
                }
                if let Some(h) = t.latency_us.as_mut() {
                    let _ = h.record(us.max(1));
                }
            }
            t
        }));
    }
    let mut total = Tally {
        latency_us: hdrhistogram::Histogram::new_with_bounds(1, 60_000_000, 3).ok(),
        ..Tally::default()
    };
    for task in tasks {
        if let Ok(t) = task.await {
            total.granted += t.granted;
            total.denied += t.denied;
            total.errors += t.errors;
            if let (Some(all), Some(h)) = (total.latency_us.as_mut(), t.latency_us.as_ref()) {
                let _ = all.add(h);
            }
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    let checks = total.granted + total.denied + total.errors;
    let trips = limiter.link().round_trips() - trips_before;
    let (p50, p99, max) = total
        .latency_us
        .as_ref()
        .map(|h| (h.value_at_quantile(0.5), h.value_at_quantile(0.99), h.max()))
        .unwrap_or_default();
    json!({
        "bench": "limiter",
        "backend": "redis",
        "topology": limiter.link().topology(),
        "tiers": req.tiers.len(),
        "concurrency": concurrency,
        "duration_s": elapsed,
        "checks": checks,
        "checks_per_sec": checks as f64 / elapsed.max(1e-9),
        "p50_us": p50,
        "p99_us": p99,
        "max_us": max,
        "round_trips_per_check": trips as f64 / (checks.max(1)) as f64,
        "granted": total.granted,
        "denied": total.denied,
        "errors": total.errors,
        "degraded": limiter.is_degraded(),
        "redis_benchmark_args": redis_benchmark_args(&req),
    })
}
