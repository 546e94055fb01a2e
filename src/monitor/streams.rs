//! The supervisor's stream part: one worker per configured WebSocket
//! connection (`[[exchanges.streams]]`) and one watcher task beside it that
//! turns the worker's reports into events on the monitor's queue.
//!
//! ```text
//! stream::worker (read task, keepalive, reconnects) ──StreamReport──▶ watcher task
//!     ──StreamNote (at once), StreamStatus (each second)──▶ event queue ──▶ core
//! ```
//!
//! Binance books resync from the REST depth snapshot, fetched here through
//! the rate limiter on the exchange's shared tiers (its weight by `limit`).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::clock::now_ms;
use crate::limiter::{self, LimitRequest, RateLimiter};
use crate::model::{Event, ExchangeKind};
use crate::probe::OFFSET_UNKNOWN;
use crate::stream::budget::ConnectGate;
use crate::stream::spec::StreamSpec;
use crate::stream::watch::Watcher;
use crate::stream::worker::{self, SnapshotFetcher, WorkerIo};

/// One connection to watch, as the config resolves it.
pub struct StreamJob {
    /// The exchange's configured name.
    pub exchange: String,
    /// The worker's spec.
    pub spec: StreamSpec,
    /// A subscription silent this long is a zombie.
    pub silent_after: Duration,
    /// A socket without any frame this long is dead.
    pub dead_after: Duration,
    /// Binance: the REST depth URL prefix (`<base>/api/v3/depth`) and the
    /// limiter request of the exchange's shared tiers (weight set per call).
    pub snapshot: Option<(String, LimitRequest)>,
}

/// What every stream task shares.
pub struct StreamDeps {
    /// The HTTP client (Binance REST snapshots).
    pub client: reqwest::Client,
    /// The rate limiter (Binance REST snapshots).
    pub limiter: Arc<dyn RateLimiter>,
    /// The monitor's event queue.
    pub events: mpsc::Sender<Event>,
    /// Clock offsets by exchange name, as the REST time endpoints measure them.
    pub offsets: HashMap<String, Arc<AtomicI64>>,
    /// Stops everything.
    pub shutdown: CancellationToken,
}

/// Spawn a worker and a watcher per job on `tasks`.
pub async fn spawn(tasks: &mut JoinSet<()>, jobs: Vec<StreamJob>, deps: StreamDeps) {
    let mut gates: HashMap<(String, ExchangeKind), ConnectGate> = HashMap::new();
    for job in jobs {
        let gate = gates
            .entry((job.exchange.clone(), job.spec.exchange))
            .or_insert_with(|| ConnectGate::for_exchange(job.spec.exchange))
            .clone();
        let watcher = Watcher::new(
            &job.exchange,
            &job.spec,
            i64::try_from(job.silent_after.as_millis()).unwrap_or(i64::MAX),
            i64::try_from(job.dead_after.as_millis()).unwrap_or(i64::MAX),
        );
        for ev in watcher.watching() {
            let _ = deps.events.send(ev).await;
        }
        let (tx, rx) = mpsc::channel(job.spec.queue.max(16));
        let snapshots = job
            .snapshot
            .map(|(url, req)| fetcher(deps.client.clone(), deps.limiter.clone(), url, req));
        let io = WorkerIo {
            reports: tx,
            snapshots,
            gate,
            shutdown: deps.shutdown.clone(),
        };
        tasks.spawn(async move {
            let _ = worker::spawn(job.spec, io).await;
        });
        let offset = deps.offsets.get(&job.exchange).cloned();
        tasks.spawn(watch(
            watcher,
            rx,
            deps.events.clone(),
            offset,
            deps.shutdown.clone(),
        ));
    }
}

/// The watcher task: reports in, notes out at once, statuses each second.
async fn watch(
    mut watcher: Watcher,
    mut reports: mpsc::Receiver<crate::stream::report::StreamReport>,
    events: mpsc::Sender<Event>,
    offset: Option<Arc<AtomicI64>>,
    shutdown: CancellationToken,
) {
    let offset_ms = || {
        offset
            .as_ref()
            .map(|o| o.load(Ordering::Relaxed))
            .filter(|o| *o != OFFSET_UNKNOWN)
            .unwrap_or(0)
    };
    let mut every = tokio::time::interval(Duration::from_secs(1));
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let out = tokio::select! {
            r = reports.recv() => match r {
                Some(r) => watcher.on_report(&r, offset_ms()),
                None => return,
            },
            _ = every.tick() => watcher.tick(now_ms()),
            _ = shutdown.cancelled() => return,
        };
        for ev in out {
            if events.send(ev).await.is_err() {
                return;
            }
        }
    }
}

/// Binance's REST depth weight by `limit` (1–100: 5, 101–500: 25,
/// 501–1000: 50, more: 250), from
/// <https://developers.binance.com/docs/binance-spot-api-docs/rest-api/market-data-endpoints#order-book>.
pub fn binance_depth_weight(limit: u16) -> u32 {
    match limit {
        0..=100 => 5,
        101..=500 => 25,
        501..=1000 => 50,
        _ => 250,
    }
}

/// The Binance snapshot fetcher: waits for the limiter, then GETs
/// `<url>?symbol=&limit=` and parses the depth.
fn fetcher(
    client: reqwest::Client,
    limiter: Arc<dyn RateLimiter>,
    url: String,
    req: LimitRequest,
) -> Arc<dyn SnapshotFetcher> {
    Arc::new(move |symbol: String, limit: u16| {
        let (client, limiter, url) = (client.clone(), limiter.clone(), url.clone());
        let req = LimitRequest {
            weight: binance_depth_weight(limit),
            ..req.clone()
        };
        async move {
            limiter::acquire(limiter.as_ref(), &req)
                .await
                .map_err(|e| format!("rate limiter: {e}"))?;
            let full = format!("{url}?symbol={symbol}&limit={limit}");
            let got = crate::http::get(&client, &full, Duration::from_secs(10), 8 << 20)
                .await
                .map_err(|e| format!("{e:?}"))?;
            if got.status != 200 {
                return Err(format!("http {}", got.status));
            }
            let text = String::from_utf8_lossy(&got.body);
            crate::stream::binance::parse_rest_depth(&text, &symbol).map_err(|e| e.to_string())
        }
    })
}
