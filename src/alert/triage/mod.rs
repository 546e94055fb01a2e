//! Triage: how urgent an alert is, whether a human is needed, the likely cause
//! and what to do. Rules always answer; a language model behind any
//! OpenAI-compatible chat-completions API can answer instead when configured.
//!
//! The alert pipeline never waits for triage: [`TriageHandle::request`] only
//! does a `try_send` onto a bounded queue. One task drains it, gathers the
//! alerts that arrive within `batch_window` (at most `max_batch`) into one
//! model call, and emits one [`Event::AlertTriaged`] per alert (fingerprint,
//! episode, result). It never writes alert state: the engine folds the result
//! into the alert it holds, so an alert resolved or acknowledged while its
//! triage was pending stays so. When the queue is full the rules answer at once, in the
//! caller, so nothing waits and nothing is dropped untriaged.
//!
//! Batching: the model answers one entry per fingerprint. The call's latency
//! is recorded on every alert of the batch and its cost split evenly among
//! them. An alert the model left out gets the rules' answer, marked as such.

pub mod context;
pub mod cross_rules;
pub mod decision;
pub mod prompt;
pub mod provider;
pub mod rules;
pub mod settings;
pub mod stream_rules;
pub mod worker;

pub use context::AlertContext;
pub use provider::{ApiKey, CallError, Completion, Provider, Usage};
pub use settings::TriageSettings;

use crate::clock::now_ms;
use crate::model::Event;
use crate::model::{Alert, Triage};
use crate::state::Snapshot;

use crate::model::TriageTotals;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

/// How many auto-triaged (fingerprint, episode, severity) keys are remembered
/// to avoid paying again for re-fires of the same alert.
const SEEN_CAP: usize = 10_000;

/// What [`TriageHandle::request`] did with a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requested {
    /// Triage is switched off.
    Off,
    /// No alert in the request needed triage (not asked and not an `auto` severity).
    Nothing,
    /// This many alerts are queued for the triage task.
    Queued(usize),
    /// The queue was full: this many alerts were triaged by rules at once.
    Overflowed(usize),
}

#[derive(Debug)]
struct Job {
    alerts: Vec<Alert>,
    asked: bool,
}

/// Where answers come from, for the header and the logs.
#[derive(Debug, Clone, PartialEq)]
pub enum TriageMode {
    Off,
    Rules,
    Model {
        model: String,
        base_url: String,
    },
    /// A model is configured but cannot be used; rules answer.
    Unavailable {
        reason: String,
    },
}

impl std::fmt::Display for TriageMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TriageMode::Off => write!(f, "off"),
            TriageMode::Rules => write!(f, "rules"),
            TriageMode::Model { model, base_url } => write!(f, "model {model} at {base_url}"),
            TriageMode::Unavailable { reason } => write!(f, "rules ({reason})"),
        }
    }
}

/// The pipeline's side of triage. Cheap to clone.
#[derive(Debug, Clone)]
pub struct TriageHandle {
    jobs: Option<mpsc::Sender<Job>>,
    settings: Arc<TriageSettings>,
    events: mpsc::Sender<Event>,
    snapshots: watch::Receiver<Arc<Snapshot>>,
    totals: Arc<Mutex<TriageTotals>>,
    mode: TriageMode,
}

/// Start the triage task, reading the API key from the variable named by
/// `settings.api_key_env`.
pub fn spawn(
    settings: TriageSettings,
    client: reqwest::Client,
    events: mpsc::Sender<Event>,
    snapshots: watch::Receiver<Arc<Snapshot>>,
    shutdown: CancellationToken,
) -> TriageHandle {
    let key = match &settings.api_key_env {
        None => Ok(None),
        Some(name) => ApiKey::from_env(name).map(Some).ok_or_else(|| {
            format!("environment variable {name} (named by triage.api_key_env) is not set")
        }),
    };
    spawn_with_key(settings, key, client, events, snapshots, shutdown)
}

/// [`spawn`] with the key given (or the reason it is missing).
pub fn spawn_with_key(
    settings: TriageSettings,
    key: Result<Option<ApiKey>, String>,
    client: reqwest::Client,
    events: mpsc::Sender<Event>,
    snapshots: watch::Receiver<Arc<Snapshot>>,
    shutdown: CancellationToken,
) -> TriageHandle {
    let totals = Arc::new(Mutex::new(TriageTotals::default()));
    let settings = Arc::new(settings);
    let (provider, unavailable, mode) = match (&settings.base_url, settings.enabled) {
        (_, false) => (None, None, TriageMode::Off),
        (None, true) => (None, None, TriageMode::Rules),
        (Some(url), true) => match key {
            Ok(key) => (
                Some(Arc::new(Provider::new(client, url, key, settings.timeout))),
                None,
                TriageMode::Model {
                    model: settings.model.clone(),
                    base_url: settings::redact_url(url),
                },
            ),
            Err(reason) => {
                tracing::warn!(%reason, "triage: model unavailable, rules will answer");
                // Keep the reason: every triage note will say it.
                (
                    None,
                    Some(reason.clone()),
                    TriageMode::Unavailable { reason },
                )
            }
        },
    };
    let jobs = if settings.enabled {
        let (tx, rx) = mpsc::channel(settings.queue.max(1));
        let worker = worker::Worker {
            settings: settings.clone(),
            provider,
            unavailable,
            events: events.clone(),
            snapshots: snapshots.clone(),
            totals: totals.clone(),
            seen: worker::Seen::default(),
        };
        tokio::spawn(worker.run(rx, shutdown));
        Some(tx)
    } else {
        None
    };
    TriageHandle {
        jobs,
        settings,
        events,
        snapshots,
        totals,
        mode,
    }
}

impl TriageHandle {
    pub fn mode(&self) -> &TriageMode {
        &self.mode
    }

    pub fn totals(&self) -> TriageTotals {
        lock(&self.totals).clone()
    }

    /// Ask for triage of `alerts`. `asked`: an operator asked (the `t` key);
    /// otherwise only severities listed in `auto` are triaged, and each
    /// firing episode of an alert only once per severity. Never waits.
    pub fn request(&self, alerts: Vec<Alert>, asked: bool) -> Requested {
        let Some(jobs) = &self.jobs else {
            return Requested::Off;
        };
        let alerts: Vec<Alert> = if asked {
            alerts
        } else {
            alerts
                .into_iter()
                .filter(|a| a.state.is_open() && self.settings.auto.contains(&a.severity))
                .collect()
        };
        if alerts.is_empty() {
            return Requested::Nothing;
        }
        let n = alerts.len();
        match jobs.try_send(Job { alerts, asked }) {
            Ok(()) => Requested::Queued(n),
            Err(mpsc::error::TrySendError::Full(job))
            | Err(mpsc::error::TrySendError::Closed(job)) => {
                self.overflow(job.alerts);
                Requested::Overflowed(n)
            }
        }
    }

    /// Ask for triage of the alerts with these fingerprints, as the latest
    /// snapshot has them (the dashboard's `t` key sends fingerprints).
    pub fn request_fingerprints(&self, fingerprints: &[String]) -> Requested {
        let alerts: Vec<Alert> = {
            let snap = self.snapshots.borrow();
            snap.alerts
                .iter()
                .filter(|a| fingerprints.contains(&a.fingerprint))
                .cloned()
                .collect()
        };
        if alerts.is_empty() {
            return Requested::Nothing;
        }
        self.request(alerts, true)
    }

    /// Rules, right here: the queue is full (the model is slow or down) and
    /// the caller must not wait.
    fn overflow(&self, alerts: Vec<Alert>) {
        let snapshot = self.snapshots.borrow().clone();
        let now = now_ms();
        let mut out = Vec::with_capacity(alerts.len());
        for alert in alerts {
            let ctx = AlertContext::build(&alert, &snapshot);
            let t = rules::triage(&ctx, now, Some("triage queue full; rules answered at once"));
            out.push(triaged((&alert, t)));
        }
        {
            let mut t = lock(&self.totals);
            t.overflows += 1;
            t.by_rules += out.len() as u64;
        }
        tracing::warn!(alerts = out.len(), "triage queue full: rules answered");
        let events = self.events.clone();
        let mut pending = VecDeque::from(out);
        while let Some(ev) = pending.pop_front() {
            match events.try_send(ev) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(ev)) => {
                    pending.push_front(ev);
                    // The event queue itself is full: finish on a task rather than wait here.
                    match tokio::runtime::Handle::try_current() {
                        Ok(rt) => {
                            rt.spawn(async move {
                                for ev in pending {
                                    if events.send(ev).await.is_err() {
                                        return;
                                    }
                                }
                            });
                        }
                        Err(_) => tracing::warn!("triage results dropped: no runtime"),
                    }
                    return;
                }
                Err(mpsc::error::TrySendError::Closed(_)) => return,
            }
        }
    }
}

fn lock(m: &Mutex<TriageTotals>) -> std::sync::MutexGuard<'_, TriageTotals> {
    // Counters stay meaningful even if a holder panicked.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The result for one alert, as the engine takes it: the fingerprint and the
/// firing episode it was asked for. The engine alone puts it on the alert.
///
/// Every text of it is scrubbed of the process's secrets
/// ([`crate::secrets`]) here, the one exit of every triage: the model's
/// words, and the notes quoting a provider's error, go on to the journal,
/// the screen and the log.
fn triaged((alert, mut triage): (&Alert, Triage)) -> Event {
    let scrub = |s: &mut String| {
        if let std::borrow::Cow::Owned(o) = crate::secrets::scrub(s) {
            *s = o;
        }
    };
    scrub(&mut triage.summary);
    scrub(&mut triage.likely_cause);
    scrub(&mut triage.note);
    triage.suggested_actions.iter_mut().for_each(scrub);
    Event::AlertTriaged {
        fingerprint: alert.fingerprint.clone(),
        episode: alert.occurrences,
        triage,
    }
}
