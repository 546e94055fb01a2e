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
    /// No `--target` and the exchange kind has no preset path for the
    /// built-in simulator to serve (the generic kind).
    #[error("{0} has no preset endpoint to serve: give --target")]
    NoPreset(ExchangeKind),
}

/// Below this share of accepted answers the target is taken not to answer
/// like the endpoint kind measured: the figures are of rejections.
pub const MIN_OK_SHARE: f64 = 0.5;

/// What the target is asked to be: whose answers, of which endpoint kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TargetKind {
    /// Whose adapter parses the answers.
    pub exchange: ExchangeKind,
    /// Which of its endpoints the target is (time, ticker, book).
    pub endpoint: EndpointKind,
}

impl Default for TargetKind {
    /// Binance's order book, the built-in target of the published figures.
    fn default() -> Self {
        TargetKind {
            exchange: ExchangeKind::Binance,
            endpoint: EndpointKind::Book,
        }
    }
}

struct TaskFigures {
    calls: u64,
    ok: u64,
    /// Rejected answers by reason (`invalid:not_json`, `http_404`, `timeout`, ...).
    rejected: HashMap<String, u64>,
    client: Histogram<u64>,
    overhead: Histogram<u64>,
}

/// Drive limiter → breaker → GET → parse/classify → record against `target`
/// (default: a simulator started here, serving `kind`'s preset endpoint)
/// for `duration` with `concurrency` loops. Answers are parsed as `kind`'s;
/// the figures count the accepted ones (`ok`), the rejected ones by reason
/// (`rejected`), and say in `warning` when fewer than [`MIN_OK_SHARE`] were
/// accepted (the target does not answer like that endpoint kind).
///
/// Errors: the built-in simulator or the HTTP client could not start, or
/// `kind` has no preset endpoint (the generic kind) and no `target` is given.
pub async fn pipeline(
    target: Option<String>,
    kind: TargetKind,
    duration: Duration,
    concurrency: usize,
) -> Result<serde_json::Value, BenchError> {
    let spec = exchange::spec(kind.exchange);
    let symbol = spec.default_symbol;
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
            let Some(preset) = exchange::preset(kind.exchange, kind.endpoint, symbol, 20) else {
                return Err(BenchError::NoPreset(kind.exchange));
            };
            let base = format!("http://{addr}/{}{}", kind.exchange.as_str(), preset.path);
            let mut url =
                url::Url::parse(&base).map_err(|e| BenchError::Http(format!("{base}: {e}")))?;
            if !preset.query.is_empty() {
                url.query_pairs_mut()
                    .extend_pairs(preset.query.iter().map(|(k, v)| (k.as_str(), v.as_str())));
            }
            url.to_string()
        }
    };
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency.max(1))
        .tcp_nodelay(true)
        .build()
        .map_err(|e| BenchError::Http(e.to_string()))?;
    let ep = Arc::new(ResolvedEndpoint {
        exchange: "bench".into(),
        exchange_kind: kind.exchange,
        endpoint: kind.endpoint.as_str().into(),
        kind: kind.endpoint,
        symbol: symbol.into(),
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
    let mut rejected: HashMap<String, u64> = HashMap::new();
    let mut client_h = new_hist()?;
    let mut overhead_h = new_hist()?;
    for t in tasks {
        if let Ok(Ok(f)) = t.await {
            calls += f.calls;
            ok += f.ok;
            for (why, n) in f.rejected {
                *rejected.entry(why).or_default() += n;
            }
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
    let mut figures = json!({
        "bench": "pipeline",
        "target": url,
        "exchange": kind.exchange.as_str(),
        "endpoint": kind.endpoint.as_str(),
        "concurrency": concurrency,
        "duration_s": elapsed,
        "calls": calls,
        "ok": ok,
        "rejected": rejected,
        "calls_per_s": (calls as f64 / elapsed).round(),
        "client_latency_us": { "p50": client_h.value_at_quantile(0.5), "p99": client_h.value_at_quantile(0.99) },
        "pipeline_overhead_us": { "p50": overhead_h.value_at_quantile(0.5), "p99": overhead_h.value_at_quantile(0.99) },
        "peak_rss_kib": peak_rss_kib(),
    });
    if let Some(w) = warning(kind, calls, ok, &rejected) {
        figures["warning"] = w.into();
    }
    Ok(figures)
}

/// The plain words for a run whose answers were mostly rejected: fewer
/// than [`MIN_OK_SHARE`] of `calls` accepted (or no call at all), with the
/// commonest reasons. `None` when the target answered like `kind`.
pub fn warning(
    kind: TargetKind,
    calls: u64,
    ok: u64,
    rejected: &HashMap<String, u64>,
) -> Option<String> {
    if calls == 0 {
        return Some("no call completed: the target did not answer in time".into());
    }
    if ok as f64 >= MIN_OK_SHARE * calls as f64 {
        return None;
    }
    let mut reasons: Vec<(&String, &u64)> = rejected.iter().collect();
    reasons.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    let top: Vec<String> = reasons
        .iter()
        .take(3)
        .map(|(why, n)| format!("{why} ×{n}"))
        .collect();
    Some(format!(
        "only {ok} of {calls} answers were accepted ({}): the target does not answer like a {} {} endpoint; \
         give the right --exchange and --endpoint (the figures measure rejections)",
        top.join(", "),
        kind.exchange.as_str(),
        kind.endpoint.as_str(),
    ))
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
        rejected: HashMap::new(),
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
                match &interp.result {
                    Ok(_) => {
                        f.ok += 1;
                        crate::model::OutcomeClass::Ok
                    }
                    Err(problem) => {
                        *f.rejected
                            .entry(rejection(resp.status, problem))
                            .or_default() += 1;
                        crate::model::OutcomeClass::InvalidPayload
                    }
                }
            }
            Err(crate::http::FetchError::Timeout { .. }) => {
                *f.rejected.entry("timeout".into()).or_default() += 1;
                crate::model::OutcomeClass::Timeout
            }
            Err(crate::http::FetchError::Connect { .. }) => {
                *f.rejected.entry("connect".into()).or_default() += 1;
                crate::model::OutcomeClass::Connect
            }
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

/// A rejected answer's reason, as counted in `rejected`: `http_404`,
/// `invalid:not_json`, `api_error_http_400`.
fn rejection(status: u16, problem: &exchange::Problem) -> String {
    match problem {
        exchange::Problem::Http { status, .. } => format!("http_{status}"),
        exchange::Problem::Invalid(reason) => format!("invalid:{}", reason.name()),
        exchange::Problem::Api(_) => format!("api_error_http_{status}"),
    }
}
