//! The core loop: the one task that owns state. Every event, in arrival
//! order, is fed to the alert engine, then journaled, applied to the reducer
//! and shown to the taps; the alert changes the engine derives take the same
//! path, and only then are they handed to the notifier and to triage.
//!
//! Ordering invariant: **journal before shown or sent.** An alert, delivery
//! or breaker event reaches the screen, a tap, a sink or the model only once
//! its line is in the journal file (and forced to disk when the fsync policy
//! says so), so a replay of the journal tells the whole story of what anyone
//! was shown or sent. The journal's own thread does the writing
//! (`journal::JournalWriter`), so a slow disk never blocks the runtime;
//! samples and limiter figures are handed to it in order without waiting.

use crate::alert::engine::Engine;
use crate::alert::notify::AlertSender;
use crate::alert::triage::TriageHandle;
use crate::breaker::BreakerStore;
use crate::clock::now_ms;
use crate::journal::{self, JournalSettings, JournalWriter};
use crate::model::Command;
use crate::model::EndpointId;
use crate::model::{AlertState, Delivery};
use crate::model::{Component, Event};
use crate::state::{Snapshot, State};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

/// Snapshots are published at most this often, so a burst of events costs one redraw.
const PUBLISH_EVERY: Duration = Duration::from_millis(100);
/// Time-driven alert work (no data, silences expiring, auto-resolve).
const ENGINE_TICK: Duration = Duration::from_secs(1);

/// The one task that owns state: every event is journaled, applied to the
/// reducer, shown to the taps and fed to the alert engine, in order. Alert
/// changes the engine derives take the same path before they are notified,
/// so nothing is shown or sent that is not in the journal.
pub(super) struct Core {
    pub(super) state: State,
    pub(super) engine: Engine,
    /// The writer thread, and the alerts the journal held open at start.
    pub(super) journal: Option<JournalWriter>,
    pub(super) restored: Vec<crate::model::Alert>,
    pub(super) journal_settings: JournalSettings,
    pub(super) notify: AlertSender,
    pub(super) triage: TriageHandle,
    pub(super) taps: Vec<mpsc::Sender<Event>>,
    pub(super) breakers: Arc<dyn BreakerStore>,
    pub(super) events: mpsc::Sender<Event>,
}

impl Core {
    pub(super) async fn run(
        mut self,
        mut rx: mpsc::Receiver<Event>,
        mut commands: mpsc::Receiver<Command>,
        snapshots: watch::Sender<Arc<Snapshot>>,
        journal_health: Option<(bool, String)>,
        shutdown: CancellationToken,
    ) {
        self.restore();
        // The journal unavailable, or repaired at start: said on the
        // dashboard and (when there is one) in the journal itself.
        if let Some((healthy, detail)) = journal_health {
            let ev = Event::BackendHealth {
                at_ms: now_ms(),
                component: Component::Journal,
                healthy,
                detail,
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
                    for out in self.engine.tick(now_ms()) {
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
        if let Some(j) = self.journal.take()
            && let Err(e) = j.sync().await
        {
            tracing::error!(error = %e, "journal sync at exit failed");
        }
        snapshots.send_replace(Arc::new(self.state.snapshot()));
    }

    /// Open alerts from the journal come back as they were, without being sent again.
    fn restore(&mut self) {
        let open = std::mem::take(&mut self.restored);
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
        let derived = self.engine.on_event(&ev, now_ms());
        self.record(ev).await;
        for out in derived {
            self.record(out).await;
        }
    }

    /// Journal, apply, show; then notify and triage alert changes.
    async fn record(&mut self, ev: Event) {
        if let Some(j) = &self.journal
            && self.journal_settings.wants(&ev)
        {
            // Alert changes wait until they are in the file (and synced, per
            // policy) before anyone sees them; the rest only keep their order.
            let written = if journal::is_alert_event(&ev) {
                j.write_durable(&ev, now_ms()).await
            } else {
                j.write(&ev, now_ms()).await
            };
            if let Err(e) = written {
                tracing::error!(error = %e, "journal write failed");
            }
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
            // Each incident's first symptom, per firing episode and
            // severity, is auto-triaged once (the triage task remembers
            // which; its context lists the other symptoms); the others on
            // request (`t`). The result comes back as an `AlertTriaged`
            // event that the engine folds in.
            if alert.state == AlertState::Firing && alert.is_incident_root() {
                self.triage.request(vec![alert.clone()], false);
            }
        }
    }

    async fn command(&mut self, cmd: Command) {
        match cmd {
            Command::Acknowledge { .. }
            | Command::Unacknowledge { .. }
            | Command::Silence { .. }
            | Command::Unsilence { .. } => {
                for out in self.engine.on_command(&cmd, now_ms()) {
                    self.record(out).await;
                }
            }
            Command::Triage { fingerprints } => {
                self.triage.request_fingerprints(&fingerprints);
            }
            Command::ForceOpen { id } => self.breaker_command(id, true),
            Command::ResetBreaker { id } => self.breaker_command(id, false),
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
                            id,
                            at_ms: now_ms(),
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
