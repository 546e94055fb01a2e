//! `exwatch bench pipeline`: the real probe path as fast as it goes.

use crate::breaker::memory::MemoryBreakers;
use crate::breaker::{BreakerSettings, BreakerStore, CallResult, Permit};
use crate::config::ResolvedEndpoint;
use crate::exchange::validate::ValidationSettings;
use crate::exchange::{self, RawResponse};
use crate::limiter::memory::MemoryLimiter;
use crate::limiter::{BucketSpec, Decision, LimitRequest, RateLimiter, TierBucket};
use crate::model::EndpointId;
use crate::model::Tier;
use crate::model::{EndpointKind, ExchangeKind};
use crate::sim::scenario::Scenario;
use hdrhistogram::Histogram;
use serde_json::json;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("cannot start the simulator: {0}")]
    Sim(std::io::Error),
    #[error("cannot build the HTTP client: {0}")]
    Http(String),
    #[error("{0}")]
    Histogram(String),
}

struct TaskFigures {
    calls: u64,
    ok: u64,
    client: Histogram<u64>,
    overhead: Histogram<u64>,
}

/// Drive limiter → breaker → GET → parse/classify → record against `target`
/// (default: a simulator started here) for `duration` with `concurrency` loops.
pub async fn pipeline(
    target: Option<String>,
    duration: Duration,
    concurrency: usize,
) -> Result<serde_json::Value, BenchError> {
    // The built-in target runs on its own runtime thread, as a separate server would.
    let mut sim_thread = None;
    let url = match target {
        Some(u) => u,
        None => {
            let (tx, rx) = std::sync::mpsc::channel();
            let stop = tokio_util::sync::CancellationToken::new();
            let stop2 = stop.clone();
            let t = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build();
                if let Ok(rt) = rt {
                    rt.block_on(async move {
                        match crate::sim::spawn(
                            SocketAddr::from(([127, 0, 0, 1], 0)),
                            Scenario::quiet(),
                        )
                        .await
                        {
                            Ok(h) => {
                                let _ = tx.send(Ok(h.addr));
                                stop2.cancelled().await;
                                h.stop().await;
                            }
                            Err(e) => {
                                let _ = tx.send(Err(e));
                            }
                        }
                    });
                }
            });
            let addr = rx
                .recv()
                .map_err(|_| BenchError::Sim(std::io::Error::other("simulator thread died")))?
                .map_err(BenchError::Sim)?;
            sim_thread = Some((stop, t));
            format!("http://{addr}/binance/api/v3/depth?symbol=BTCUSDT&limit=20")
        }
    };
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency.max(1))
        .tcp_nodelay(true)
        .build()
        .map_err(|e| BenchError::Http(e.to_string()))?;
    let ep = Arc::new(ResolvedEndpoint {
        exchange: "bench".into(),
        exchange_kind: ExchangeKind::Binance,
        endpoint: "book".into(),
        kind: EndpointKind::Book,
        symbol: "BTCUSDT".into(),
        url: url.clone(),
        interval: Duration::from_millis(1),
        timeout: Duration::from_secs(5),
        limit: LimitRequest {
            exchange: "bench".into(),
            // A budget the benchmark cannot exhaust: it measures the check, not waiting.
            tiers: [Tier::Exchange, Tier::Endpoint, Tier::Account, Tier::Ip]
                .into_iter()
                .map(|tier| TierBucket {
                    tier,
                    id: LimitRequest::bucket_id("bench", tier, "x"),
                    spec: BucketSpec {
                        capacity: 1e12,
                        refill_per_sec: 1e12,
                    },
                })
                .collect(),
            weight: 1,
        },
        breaker: BreakerSettings::default(),
        generic: None,
        validation: ValidationSettings::default(),
    });
    let limiter: Arc<dyn RateLimiter> = Arc::new(MemoryLimiter::new());
    let breakers: Arc<dyn BreakerStore> = Arc::new(MemoryBreakers::new(
        BreakerSettings::default(),
        HashMap::new(),
    ));
    let started = Instant::now();
    let deadline = started + duration;
    let mut tasks = Vec::new();
    for _ in 0..concurrency.max(1) {
        let (client, ep, limiter, breakers) = (
            client.clone(),
            ep.clone(),
            limiter.clone(),
            breakers.clone(),
        );
        tasks.push(tokio::spawn(async move {
            run_loop(client, ep, limiter, breakers, deadline).await
        }));
    }
    let mut calls = 0;
    let mut ok = 0;
    let mut client_h = new_hist()?;
    let mut overhead_h = new_hist()?;
    for t in tasks {
        if let Ok(Ok(f)) = t.await {
            calls += f.calls;
            ok += f.ok;
            client_h
                .add(&f.client)
                .map_err(|e| BenchError::Histogram(e.to_string()))?;
            overhead_h
                .add(&f.overhead)
                .map_err(|e| BenchError::Histogram(e.to_string()))?;
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    if let Some((stop, t)) = sim_thread {
        stop.cancel();
        let _ = t.join();
    }
    Ok(json!({
        "bench": "pipeline",
        "target": url,
        "concurrency": concurrency,
        "duration_s": elapsed,
        "calls": calls,
        "ok": ok,
        "calls_per_s": (calls as f64 / elapsed).round(),
        "client_latency_us": { "p50": client_h.value_at_quantile(0.5), "p99": client_h.value_at_quantile(0.99) },
        "pipeline_overhead_us": { "p50": overhead_h.value_at_quantile(0.5), "p99": overhead_h.value_at_quantile(0.99) },
        "peak_rss_kib": peak_rss_kib(),
    }))
}

fn new_hist() -> Result<Histogram<u64>, BenchError> {
    Histogram::new_with_bounds(1, 60_000_000, 3).map_err(|e| BenchError::Histogram(e.to_string()))
}

async fn run_loop(
    client: reqwest::Client,
    ep: Arc<ResolvedEndpoint>,
    limiter: Arc<dyn RateLimiter>,
    breakers: Arc<dyn BreakerStore>,
    deadline: Instant,
) -> Result<TaskFigures, BenchError> {
    let id = EndpointId {
        exchange: ep.exchange.clone(),
        endpoint: ep.endpoint.clone(),
    };
    let mut f = TaskFigures {
        calls: 0,
        ok: 0,
        client: new_hist()?,
        overhead: new_hist()?,
    };
    while Instant::now() < deadline {
        let t0 = Instant::now();
        if !matches!(limiter.check(&ep.limit).await, Ok(Decision::Granted)) {
            continue;
        }
        let grant = match breakers.permit(&id).await {
            Ok((Permit::Granted(g), _)) => g,
            _ => {
                tokio::task::yield_now().await;
                continue;
            }
        };
        let t1 = Instant::now();
        let fetched = crate::http::get(&client, &ep.url, ep.timeout, 1 << 20).await;
        let t2 = Instant::now();
        let class = match &fetched {
            Ok(resp) => {
                let raw = RawResponse {
                    status: resp.status,
                    headers: &resp.headers,
                    body: &resp.body,
                    received_at_ms: 0,
                    elapsed_ms: (t2 - t1).as_millis() as u64,
                    requested_symbol: Some(ep.symbol.as_str()),
                };
                let interp = exchange::interpret(ep.exchange_kind, ep.kind, &raw, None);
                if interp.result.is_ok() {
                    f.ok += 1;
                    crate::model::OutcomeClass::Ok
                } else {
                    crate::model::OutcomeClass::InvalidPayload
                }
            }
            Err(crate::http::FetchError::Timeout { .. }) => crate::model::OutcomeClass::Timeout,
            Err(crate::http::FetchError::Connect { .. }) => crate::model::OutcomeClass::Connect,
        };
        let _ = breakers
            .record(
                &id,
                &grant,
                CallResult {
                    class,
                    latency: t2 - t1,
                    hold_off: None,
                },
            )
            .await;
        let t3 = Instant::now();
        f.calls += 1;
        f.client
            .saturating_record((t2 - t1).as_micros().max(1) as u64);
        f.overhead
            .saturating_record(((t1 - t0) + (t3 - t2)).as_micros().max(1) as u64);
    }
    Ok(f)
}

/// Peak resident set size of this process (Linux), in KiB.
pub fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
}
