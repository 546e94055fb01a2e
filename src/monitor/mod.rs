//! The supervisor: builds the backends (HTTP client, limiter, breaker store,
//! notifier, triage, journal, metrics), spawns one worker per endpoint and the
//! core loop (`core.rs`), and hands out the snapshot channel and the command
//! sender. Building and spawning live here; the single-writer loop and its
//! ordering invariant live in `core.rs`.

use crate::alert::engine::Engine;
use crate::breaker::StoreKind;
use crate::config::Config;
use crate::journal::{Journal, JournalError, JournalWriter};
use crate::model::Command;
use crate::model::EndpointId;
use crate::model::Event;
use crate::probe::{self, WorkerDeps};
use crate::redis_link::RedisLink;
use crate::state::{Snapshot, State};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::AtomicI64;
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

mod core;
pub mod health;
mod notifying;
pub mod streams;

use core::Core;

/// Bound of the event queue; workers wait when it is full (nothing is dropped).
const EVENT_QUEUE: usize = 4096;

#[derive(Debug, thiserror::Error)]
pub enum MonitorError {
    #[error("cannot build the HTTP client: {0}")]
    Http(String),
    #[error("{0}")]
    Backend(String),
    /// The journal path names a file that is not a journal: a config
    /// problem, refused before anything starts (the file is untouched).
    #[error("{0}; set journal.path to a journal or to a new file")]
    NotAJournal(crate::journal::JournalError),
}

/// The journal's health line when it cannot be used.
fn unavailable(e: &dyn std::fmt::Display) -> String {
    format!("journal unavailable, alerts are not recorded: {e}")
}

/// A running monitor.
pub struct Monitor {
    pub snapshots: watch::Receiver<Arc<Snapshot>>,
    pub commands: mpsc::Sender<Command>,
    /// Every event, in order, for observers such as the journal and headless output.
    pub taps: Vec<mpsc::Receiver<Event>>,
    /// Where `/metrics` is served, when `[metrics] listen` is set.
    pub metrics_addr: Option<std::net::SocketAddr>,
    /// Pause, step, speed and next-alert for a monitor made by [`Monitor::from_replay`].
    pub replay_controls: Option<mpsc::Sender<crate::replay::Control>>,
    /// Where a replay stands (`None` live).
    pub replay_status: Option<watch::Receiver<crate::replay::Status>>,
    shutdown: CancellationToken,
    tasks: JoinSet<()>,
}

impl Monitor {
    /// Start polling everything in `cfg`. `taps` is how many ordered copies of
    /// the event stream the caller wants.
    ///
    /// Errors: [`MonitorError::NotAJournal`] before anything starts when
    /// `journal.path` is not a journal; [`MonitorError::Http`] and
    /// [`MonitorError::Backend`] when a backend cannot be built. Any other
    /// journal problem is not fatal: monitoring runs, degraded, and says so.
    pub async fn start(cfg: &Config, taps: usize) -> Result<Monitor, MonitorError> {
        // First, so a refused journal leaves nothing started.
        let opened = if cfg.journal.enabled {
            match Journal::open(&cfg.journal) {
                Err(e @ JournalError::NotAJournal { .. }) => {
                    return Err(MonitorError::NotAJournal(e));
                }
                r => Some(r),
            }
        } else {
            None
        };
        let client =
            crate::http::client(&cfg.http).map_err(|e| MonitorError::Http(e.to_string()))?;
        // One Redis link for every part that shares state (limiter, breaker
        // store, alert dedup): one URL, TLS CA, timeout and topology.
        let wants_redis = cfg.limiter.backend == crate::limiter::LimiterBackend::Redis
            || cfg.breaker.store == StoreKind::Redis
            || cfg.alerts.dedup.backend == crate::alert::dedup::DedupBackend::Redis;
        let link = match (&cfg.redis, wants_redis) {
            (Some(r), true) => Some(
                RedisLink::from_config(r)
                    .map_err(|e| MonitorError::Backend(format!("redis: {e}")))?,
            ),
            _ => None,
        };
        let (limiter, limiter_health) = crate::limiter::build_on_link(&cfg.limiter, link.clone())
            .await
            .map_err(|e| MonitorError::Backend(format!("rate limiter: {e}")))?;
        let mut per_endpoint = HashMap::new();
        for ep in cfg.endpoints() {
            per_endpoint.insert(
                EndpointId {
                    exchange: ep.exchange.clone(),
                    endpoint: ep.endpoint.clone(),
                },
                ep.breaker.clone(),
            );
        }
        let (breakers, breaker_health) = match (cfg.breaker.store, &link) {
            (StoreKind::Redis, Some(link)) => {
                crate::breaker::build_on_link(cfg.breaker.clone(), per_endpoint, link.clone()).await
            }
            _ => {
                crate::breaker::build(
                    cfg.breaker.clone(),
                    per_endpoint,
                    None,
                    Duration::from_secs(1),
                )
                .await
            }
        };
        let shutdown = CancellationToken::new();
        let (ev_tx, ev_rx) = mpsc::channel(EVENT_QUEUE);
        let (snap_tx, snap_rx) = watch::channel(Arc::new(Snapshot::default()));
        let mut tap_txs = Vec::new();
        let mut tap_rxs = Vec::new();
        for _ in 0..taps {
            let (tx, rx) = mpsc::channel(EVENT_QUEUE);
            tap_txs.push(tx);
            tap_rxs.push(rx);
        }
        let mut tasks = JoinSet::new();
        let mut metrics_addr = None;
        if let Some(addr) = cfg.metrics.listen {
            let listener = crate::metrics::bind(addr)
                .await
                .map_err(|e| MonitorError::Backend(e.to_string()))?;
            metrics_addr = listener.local_addr().ok();
            // A tap of its own: counters need every event exactly once.
            let (tx, rx) = mpsc::channel(EVENT_QUEUE);
            tap_txs.push(tx);
            tasks.spawn(crate::metrics::run(
                listener,
                rx,
                snap_rx.clone(),
                shutdown.clone(),
            ));
        }
        let (cmd_tx, cmd_rx) = mpsc::channel(64);
        let notifying = notifying::start(cfg, link.clone(), ev_tx.clone(), shutdown.clone())
            .map_err(|e| MonitorError::Backend(e.to_string()))?;
        let triage = crate::alert::triage::spawn(
            cfg.triage.clone(),
            client.clone(),
            ev_tx.clone(),
            snap_rx.clone(),
            shutdown.clone(),
        );
        // What the journal's health line says at start: unavailable, or
        // repaired (a torn last line set aside).
        let mut journal_health = None;
        let (journal, restored) = match opened {
            Some(Ok(j)) => {
                if let Some(repair) = j.repaired() {
                    journal_health = Some((
                        true,
                        format!("journal {} repaired at start: {repair}", j.path().display()),
                    ));
                }
                match JournalWriter::spawn(j.with_instance(&cfg.instance.name)) {
                    Ok((writer, open)) => (Some(writer), open),
                    Err(e) => {
                        journal_health = Some((false, unavailable(&e)));
                        (None, Vec::new())
                    }
                }
            }
            Some(Err(e)) => {
                journal_health = Some((false, unavailable(&e)));
                (None, Vec::new())
            }
            None => (None, Vec::new()),
        };
        let core = Core {
            state: State::new(),
            engine: Engine::new(cfg.alerts.clone()),
            journal,
            restored,
            journal_settings: cfg.journal.clone(),
            notify: notifying.alerts,
            triage,
            taps: tap_txs,
            breakers: breakers.clone(),
            events: ev_tx.clone(),
        };
        tasks.spawn(core.run(ev_rx, cmd_rx, snap_tx, journal_health, shutdown.clone()));
        tasks.spawn(health::report(
            health::RedisPart::Limiter {
                on_outage: cfg.limiter.on_redis_outage,
            },
            limiter_health,
            ev_tx.clone(),
            shutdown.clone(),
        ));
        if let Some(dedup_health) = notifying.dedup_health {
            tasks.spawn(health::report(
                health::RedisPart::Dedup,
                dedup_health,
                ev_tx.clone(),
                shutdown.clone(),
            ));
        }
        tasks.spawn(health::report(
            health::RedisPart::Breaker,
            breaker_health,
            ev_tx.clone(),
            shutdown.clone(),
        ));

        let endpoints = cfg.endpoints();
        for ep in &endpoints {
            let _ = ev_tx.send(probe::watching(ep)).await;
        }
        let mut offsets: HashMap<String, Arc<AtomicI64>> = HashMap::new();
        for ep in endpoints {
            let deps = WorkerDeps {
                client: client.clone(),
                limiter: limiter.clone(),
                breakers: breakers.clone(),
                events: ev_tx.clone(),
                max_body: cfg.http.max_body_bytes,
                clock_offset_ms: offsets
                    .entry(ep.exchange.clone())
                    .or_insert_with(|| Arc::new(AtomicI64::new(probe::OFFSET_UNKNOWN)))
                    .clone(),
                adaptive: cfg.alerts.detect.adaptive.clone(),
                hang: cfg.alerts.detect.hang.clone(),
                shutdown: shutdown.clone(),
            };
            tasks.spawn(probe::run_worker(ep, deps));
        }
        let jobs = stream_jobs(cfg);
        if !jobs.is_empty() {
            for ex in jobs.iter().map(|j| &j.exchange) {
                offsets
                    .entry(ex.clone())
                    .or_insert_with(|| Arc::new(AtomicI64::new(probe::OFFSET_UNKNOWN)));
            }
            let deps = streams::StreamDeps {
                client: client.clone(),
                limiter: limiter.clone(),
                events: ev_tx.clone(),
                offsets,
                shutdown: shutdown.clone(),
            };
            streams::spawn(&mut tasks, jobs, deps).await;
        }

        Ok(Monitor {
            snapshots: snap_rx,
            commands: cmd_tx,
            taps: tap_rxs,
            metrics_addr,
            replay_controls: None,
            replay_status: None,
            shutdown,
            tasks,
        })
    }

    /// A monitor that plays a journal instead of polling: views read its
    /// snapshots as usual; `replay_controls` steers it, and operator commands
    /// have nothing to act on in a recording, so they are dropped.
    pub fn from_replay(replay: crate::replay::Replay, speed: f64) -> Monitor {
        let shutdown = CancellationToken::new();
        let handle = crate::replay::spawn(replay, speed, shutdown.clone());
        let (cmd_tx, mut cmd_rx) = mpsc::channel::<Command>(64);
        let mut tasks = JoinSet::new();
        let stop = shutdown.clone();
        tasks.spawn(async move {
            loop {
                tokio::select! {
                    c = cmd_rx.recv() => match c {
                        Some(cmd) => tracing::debug!(?cmd, "replay is read-only: command dropped"),
                        None => return,
                    },
                    _ = stop.cancelled() => return,
                }
            }
        });
        Monitor {
            snapshots: handle.snapshots,
            commands: cmd_tx,
            taps: Vec::new(),
            metrics_addr: None,
            replay_controls: Some(handle.controls),
            replay_status: Some(handle.status),
            shutdown,
            tasks,
        }
    }

    /// Stop every worker and wait for them, so the last events reach the taps.
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        while self.tasks.join_next().await.is_some() {}
    }
}

/// The stream connections of the config, with what their workers need
/// beside the spec: Binance books get the REST depth URL of their
/// exchange and its shared limiter tiers, for resyncs.
fn stream_jobs(cfg: &Config) -> Vec<streams::StreamJob> {
    cfg.streams()
        .into_iter()
        .map(|r| {
            let ex = cfg.exchanges.iter().find(|e| e.name == r.exchange);
            let snapshot = ex
                .filter(|e| e.kind == crate::model::ExchangeKind::Binance)
                .and_then(|e| {
                    let base = e.rest_base()?;
                    let req = crate::limiter::LimitRequest {
                        exchange: e.name.clone(),
                        tiers: e.shared_tiers(),
                        weight: 1,
                    };
                    Some((format!("{}/api/v3/depth", base.trim_end_matches('/')), req))
                });
            streams::StreamJob {
                exchange: r.exchange,
                spec: r.spec,
                silent_after: r.silent_after,
                dead_after: r.dead_after,
                snapshot,
            }
        })
        .collect()
}
