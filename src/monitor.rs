//! The supervisor: builds the backends, spawns one worker per endpoint and
//! the reducer, and hands out the snapshot channel and the command sender.

use crate::alert::engine::Engine;
use crate::alert::notify::AlertSender;
use crate::alert::triage::TriageHandle;
use crate::breaker::{BreakerStore, StoreKind};
use crate::clock::wall_ms;
use crate::config::Config;
use crate::journal::{Journal, JournalSettings};
use crate::limiter::BackendHealth;
use crate::model::Command;
use crate::model::EndpointId;
use crate::model::{AlertState, Delivery};
use crate::model::{Component, Event};
use crate::probe::{self, WorkerDeps};
use crate::state::{Snapshot, State};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::AtomicI64;
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// Bound of the event queue; workers wait when it is full (nothing is dropped).
const EVENT_QUEUE: usize = 4096;
/// Snapshots are published at most this often, so a burst of events costs one redraw.
const PUBLISH_EVERY: Duration = Duration::from_millis(100);
/// Time-driven alert work (no data, silences expiring, auto-resolve).
const ENGINE_TICK: Duration = Duration::from_secs(1);

#[derive(Debug, thiserror::Error)]
pub enum MonitorError {
    #[error("cannot build the HTTP client: {0}")]
    Http(String),
    #[error("{0}")]
    Backend(String),
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
    pub async fn start(cfg: &Config, taps: usize) -> Result<Monitor, MonitorError> {
        let client =
            crate::http::client(&cfg.http).map_err(|e| MonitorError::Http(e.to_string()))?;
        let (limiter, limiter_health) = crate::limiter::build(&cfg.limiter, cfg.redis.as_ref())
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
        let (breakers, breaker_health) = match (cfg.breaker.store, &cfg.redis) {
            (StoreKind::Redis, Some(r)) => {
                // The same link settings as the limiter: URL from the env var, TLS CA, timeout.
                let link = crate::redis_link::RedisLink::from_config(r)
                    .map_err(|e| MonitorError::Backend(format!("breaker store: {e}")))?;
                crate::breaker::build_on_link(cfg.breaker.clone(), per_endpoint, link).await
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
        let notifying = crate::alert::runtime::start(cfg, ev_tx.clone(), shutdown.clone())
            .map_err(|e| MonitorError::Backend(e.to_string()))?;
        let triage = crate::alert::triage::spawn(
            cfg.triage.clone(),
            client.clone(),
            ev_tx.clone(),
            snap_rx.clone(),
            shutdown.clone(),
        );
        let (journal, journal_problem) = if cfg.journal.enabled {
            match Journal::open(&cfg.journal) {
                Ok(j) => (Some(j), None),
                Err(e) => (None, Some(e.to_string())),
            }
        } else {
            (None, None)
        };
        let core = Core {
            state: State::new(),
            engine: Engine::new(cfg.alerts.clone()),
            journal,
            journal_settings: cfg.journal.clone(),
            notify: notifying.alerts,
            triage,
            taps: tap_txs,
            breakers: breakers.clone(),
            events: ev_tx.clone(),
        };
        tasks.spawn(core.run(ev_rx, cmd_rx, snap_tx, journal_problem, shutdown.clone()));
        tasks.spawn(watch_limiter_health(
            limiter_health,
            ev_tx.clone(),
            shutdown.clone(),
        ));
        tasks.spawn(crate::breaker::report_health(
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

    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }
}

/// The one task that owns state: every event is journaled, applied to the
/// reducer, shown to the taps and fed to the alert engine, in order. Alert
/// changes the engine derives take the same path before they are notified,
/// so nothing is shown or sent that is not in the journal.
struct Core {
    state: State,
    engine: Engine,
    journal: Option<Journal>,
    journal_settings: JournalSettings,
    notify: AlertSender,
    triage: TriageHandle,
    taps: Vec<mpsc::Sender<Event>>,
    breakers: Arc<dyn BreakerStore>,
    events: mpsc::Sender<Event>,
}

impl Core {
    async fn run(
        mut self,
        mut rx: mpsc::Receiver<Event>,
        mut commands: mpsc::Receiver<Command>,
        snapshots: watch::Sender<Arc<Snapshot>>,
        journal_problem: Option<String>,
        shutdown: CancellationToken,
    ) {
        self.restore();
        if let Some(problem) = journal_problem {
            let ev = Event::BackendHealth {
                at_ms: wall_ms(),
                component: Component::Journal,
                healthy: false,
                detail: format!("journal unavailable, alerts are not recorded: {problem}"),
            };
            self.record(ev).await;
        }
        snapshots.send_replace(Arc::new(self.state.snapshot()));
        let mut dirty = false;
        let mut publish = tokio::time::interval(PUBLISH_EVERY);
        publish.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut engine_tick = tokio::time::interval(ENGINE_TICK);
        engine_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                ev = rx.recv() => {
                    let Some(ev) = ev else { break };
                    self.ingest(ev).await;
                    dirty = true;
                }
                cmd = commands.recv() => {
                    if let Some(cmd) = cmd {
                        self.command(cmd).await;
                        dirty = true;
                    }
                }
                _ = engine_tick.tick() => {
                    for out in self.engine.tick(wall_ms()) {
                        self.record(out).await;
                        dirty = true;
                    }
                }
                _ = publish.tick() => {
                    if dirty {
                        snapshots.send_replace(Arc::new(self.state.snapshot()));
                        dirty = false;
                    }
                }
                _ = shutdown.cancelled() => {
                    // Drain what the workers already sent.
                    while let Ok(ev) = rx.try_recv() {
                        self.ingest(ev).await;
                    }
                    break;
                }
            }
        }
        if let Some(j) = self.journal.as_mut()
            && let Err(e) = j.sync()
        {
            tracing::error!(error = %e, "journal sync at exit failed");
        }
        snapshots.send_replace(Arc::new(self.state.snapshot()));
    }

    /// Open alerts from the journal come back as they were, without being sent again.
    fn restore(&mut self) {
        let Some(j) = &self.journal else { return };
        let open = j.open_alerts();
        if open.is_empty() {
            return;
        }
        tracing::info!(count = open.len(), "restored open alerts from the journal");
        for alert in &open {
            self.state.apply(&Event::AlertChanged {
                alert: alert.clone(),
            });
        }
        self.engine.restore(open);
    }

    async fn ingest(&mut self, ev: Event) {
        let derived = self.engine.on_event(&ev, wall_ms());
        self.record(ev).await;
        for out in derived {
            self.record(out).await;
        }
    }

    /// Journal, apply, show; then notify and triage alert changes.
    async fn record(&mut self, ev: Event) {
        if let Some(j) = self.journal.as_mut()
            && self.journal_settings.wants(&ev)
            && let Err(e) = j.append(&ev, wall_ms())
        {
            tracing::error!(error = %e, "journal append failed");
        }
        self.state.apply(&ev);
        for t in &self.taps {
            let _ = t.send(ev.clone()).await;
        }
        if let Event::AlertChanged { alert } = &ev {
            if let Err(e) = self.notify.try_send(alert.clone()) {
                // Never silent: the alert shows the notifier could not take it.
                tracing::error!(error = %e, fingerprint = %alert.fingerprint, "notifier queue full");
                let failed = Event::AlertDelivery {
                    fingerprint: alert.fingerprint.clone(),
                    sink: "notifier".into(),
                    delivery: Delivery::Failed {
                        error: "notifier queue full".into(),
                    },
                };
                // Through the event queue, so it is journaled and counted like any other;
                // if that is full too, at least the screen shows it.
                if self.events.try_send(failed.clone()).is_err() {
                    self.state.apply(&failed);
                }
            }
            if alert.state == AlertState::Firing && alert.triage.is_none() {
                self.triage.request(vec![alert.clone()], false);
            }
        }
    }

    async fn command(&mut self, cmd: Command) {
        match cmd {
            Command::Acknowledge { .. } | Command::Silence { .. } => {
                for out in self.engine.on_command(&cmd, wall_ms()) {
                    self.record(out).await;
                }
            }
            Command::Triage { fingerprints } => {
                self.triage.request_fingerprints(&fingerprints);
            }
            Command::ForceOpen { exchange, endpoint } => {
                self.breaker_command(EndpointId { exchange, endpoint }, true);
            }
            Command::ResetBreaker { exchange, endpoint } => {
                self.breaker_command(EndpointId { exchange, endpoint }, false);
            }
        }
    }

    /// The store may be remote: its answer comes back as an event, not inline.
    fn breaker_command(&self, id: EndpointId, open: bool) {
        let breakers = self.breakers.clone();
        let events = self.events.clone();
        tokio::spawn(async move {
            let result = if open {
                breakers.force_open(&id).await
            } else {
                breakers.reset(&id).await
            };
            match result {
                Ok(Some(transition)) => {
                    let _ = events
                        .send(Event::BreakerChanged {
                            exchange: id.exchange,
                            endpoint: id.endpoint,
                            at_ms: wall_ms(),
                            transition,
                        })
                        .await;
                }
                Ok(None) => {}
                Err(e) => tracing::warn!(error = %e, "breaker command failed"),
            }
        });
    }
}

/// Turn the limiter backend's health changes into events (the first state too,
/// when it is not the plain in-memory backend).
async fn watch_limiter_health(
    mut rx: watch::Receiver<BackendHealth>,
    events: mpsc::Sender<Event>,
    shutdown: CancellationToken,
) {
    let mut first = true;
    loop {
        let health = rx.borrow_and_update().clone();
        let (healthy, detail) = match &health {
            BackendHealth::Healthy { backend } => {
                (true, format!("{backend:?} backend").to_lowercase())
            }
            BackendHealth::Degraded { reason, policy } => (
                false,
                format!("{reason}; policy {policy:?}")
                    .replace("Local", "local")
                    .replace("Closed", "closed"),
            ),
        };
        let memory_only = matches!(
            health,
            BackendHealth::Healthy {
                backend: crate::limiter::LimiterBackend::Memory
            }
        );
        if !(first && memory_only) {
            let _ = events
                .send(Event::BackendHealth {
                    at_ms: wall_ms(),
                    component: Component::RedisLimiter,
                    healthy,
                    detail,
                })
                .await;
        }
        first = false;
        tokio::select! {
            changed = rx.changed() => if changed.is_err() { return },
            _ = shutdown.cancelled() => return,
        }
    }
}
