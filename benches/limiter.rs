//! Hot path of the in-memory limiter: a 4-tier all-or-nothing check, next to
//! the `governor` crate's single-key check as a peer.
//!
//! Budgets are huge so every check is granted (the common case in steady
//! state); a denied 4-tier check is measured too.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed unwrap is a failed test

use criterion::{Criterion, criterion_group};
use exwatch::limiter::memory::MemoryLimiter;
use exwatch::limiter::{BucketSpec, Decision, LimitRequest, RateLimiter, TierBucket};
use exwatch::model::Tier;
use futures::FutureExt;
use std::hint::black_box;
use std::num::NonZeroU32;

fn four_tiers(capacity: f64, refill_per_sec: f64) -> LimitRequest {
    let tier = |tier, name: &str| TierBucket {
        tier,
        id: LimitRequest::bucket_id("binance", tier, name),
        spec: BucketSpec {
            capacity,
            refill_per_sec,
        },
    };
    LimitRequest {
        exchange: "binance".into(),
        tiers: vec![
            tier(Tier::Exchange, "all"),
            tier(Tier::Endpoint, "depth"),
            tier(Tier::Account, "main"),
            tier(Tier::Ip, "10.0.0.1"),
        ],
        weight: 5,
    }
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("limiter");
    let open = four_tiers(1e15, 1e15);

    let mem = MemoryLimiter::new();
    let resolved = mem.resolve(&open);
    g.bench_function("memory_4tier_resolved", |b| {
        b.iter(|| {
            let d = mem.check_resolved(black_box(&resolved));
            debug_assert_eq!(d, Decision::Granted);
            d
        })
    });

    // The pure core with the time passed in: no clock read.
    let mem = MemoryLimiter::new();
    let resolved_at = mem.resolve(&open);
    g.bench_function("memory_4tier_resolved_time_passed_in", |b| {
        b.iter(|| mem.check_resolved_at(black_box(&resolved_at), black_box(1.0)))
    });

    // Floors on this machine: the clock read and an uncontended lock that
    // every timed check pays.
    let origin = std::time::Instant::now();
    g.bench_function("floor_std_instant_read", |b| {
        b.iter(|| origin.elapsed().as_secs_f64())
    });
    let clock_of = MemoryLimiter::new();
    g.bench_function("floor_limiter_clock_read", |b| b.iter(|| clock_of.now_ms()));
    let lock = std::sync::Mutex::new(0u64);
    g.bench_function("floor_mutex_lock_unlock", |b| {
        b.iter(|| {
            let mut v = lock.lock().unwrap_or_else(|p| p.into_inner());
            *v += 1;
            *v
        })
    });

    let mem = MemoryLimiter::new();
    g.bench_function("memory_4tier_by_id_time_passed_in", |b| {
        b.iter(|| mem.check_at(black_box(&open), black_box(1.0)))
    });

    let mem = MemoryLimiter::new();
    g.bench_function("memory_4tier_by_id", |b| {
        b.iter(|| mem.check_at(black_box(&open), mem.now_ms()))
    });

    // What a worker does: `limiter::acquire` on an `Arc<dyn RateLimiter>`
    // (granted at once, so no wait), which answers through `check_now`.
    let dynamic: std::sync::Arc<dyn RateLimiter> = std::sync::Arc::new(MemoryLimiter::new());
    g.bench_function("memory_4tier_trait", |b| {
        b.iter(|| exwatch::limiter::acquire(dynamic.as_ref(), black_box(&open)).now_or_never())
    });
    g.bench_function("memory_4tier_trait_check_now", |b| {
        b.iter(|| dynamic.check_now(black_box(&open)))
    });
    // The boxed async `check`, for backends that need I/O.
    g.bench_function("memory_4tier_trait_boxed_check", |b| {
        b.iter(|| dynamic.check(black_box(&open)).now_or_never())
    });

    let mem = MemoryLimiter::new();
    let closed = four_tiers(1.0, 1e-9);
    let resolved_closed = mem.resolve(&closed);
    let _ = mem.check_resolved(&resolved_closed);
    g.bench_function("memory_4tier_resolved_denied", |b| {
        b.iter(|| mem.check_resolved(black_box(&resolved_closed)))
    });

    let max = NonZeroU32::MAX;
    let gov = governor::RateLimiter::direct(governor::Quota::per_second(max).allow_burst(max));
    g.bench_function("governor_direct_1key", |b| {
        b.iter(|| black_box(&gov).check())
    });

    let keyed = governor::RateLimiter::keyed(governor::Quota::per_second(max).allow_burst(max));
    let key = LimitRequest::bucket_id("binance", Tier::Exchange, "all");
    g.bench_function("governor_keyed_1key", |b| {
        b.iter(|| keyed.check_key(black_box(&key)))
    });
    g.finish();
}

criterion_group!(benches, bench);

/// With `EXWATCH_BENCH_REDIS=redis://...` set, also run the Redis backend
/// benchmark (`exwatch bench limiter`'s figures) at concurrency 1 and 64 and
/// print one JSON line each, plus the matching `redis-benchmark` command.
fn redis_figures() {
    let Ok(url) = std::env::var("EXWATCH_BENCH_REDIS") else {
        return;
    };
    let secs = std::env::var("EXWATCH_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5.0);
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return eprintln!("no runtime: {e}"),
    };
    for c in [1, 64] {
        let v = rt.block_on(exwatch::bench::limiter::bench_limiter(
            &url,
            c,
            std::time::Duration::from_secs_f64(secs),
        ));
        println!("{v}");
    }
}

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    redis_figures();
}
