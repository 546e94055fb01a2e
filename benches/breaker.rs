//! Cost of one breaker round (permit + record) per store.
//!
//! `cargo bench --bench breaker`; set EXWATCH_BENCH_REDIS_URL to a Redis on
//! loopback (e.g. `redis-server --port 6390 --save ''` and
//! `redis://127.0.0.1:6390/`) to include the Redis store.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed unwrap is a failed test

use criterion::{Criterion, criterion_group, criterion_main};
use exwatch::breaker::machine::{Admit, Machine};
use exwatch::breaker::memory::MemoryBreakers;
use exwatch::breaker::redis::RedisBreakers;
use exwatch::breaker::{BreakerSettings, BreakerStore, CallResult, Permit};
use exwatch::model::{EndpointId, OutcomeClass};
use std::collections::HashMap;
use std::time::Duration;

fn ok() -> CallResult {
    CallResult {
        class: OutcomeClass::Ok,
        latency: Duration::from_millis(40),
        hold_off: None,
    }
}

fn id() -> EndpointId {
    EndpointId {
        exchange: "binance".into(),
        endpoint: "ticker".into(),
    }
}

async fn round(store: &dyn BreakerStore, id: &EndpointId) {
    if let Ok((Permit::Granted(g), _)) = store.permit(id).await {
        let _ = store.record(id, &g, ok()).await;
    }
}

fn bench(c: &mut Criterion) {
    let s = BreakerSettings::default();
    let mut now = 1_700_000_000_000i64;
    let mut m = Machine::default();
    c.bench_function("machine admit+record (closed, count window)", |b| {
        b.iter(|| {
            now += 1;
            if let (
                Admit::Yes {
                    generation, probe, ..
                },
                _,
            ) = m.admit(&s, now)
            {
                m.record(&s, generation, probe, ok(), now);
            }
        })
    });
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let memory = MemoryBreakers::new(s.clone(), HashMap::new());
    let bid = id();
    c.bench_function("memory store permit+record", |b| {
        b.to_async(&rt).iter(|| round(&memory, &bid))
    });
    if let Ok(url) = std::env::var("EXWATCH_BENCH_REDIS_URL") {
        let _in_runtime = rt.enter();
        let redis =
            RedisBreakers::new(&url, Duration::from_secs(1), s, HashMap::new()).expect("Redis URL");
        c.bench_function("redis store permit+record (loopback)", |b| {
            b.to_async(&rt).iter(|| round(&redis, &bid))
        });
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
