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
pub mod prompt;
pub mod provider;
pub mod rules;
pub mod settings;

pub use context::AlertContext;
pub use provider::{ApiKey, CallError, Completion, Provider, Usage};
pub use settings::TriageSettings;

use crate::clock::wall_ms;
use crate::model::Event;
use crate::model::{Alert, Triage, TriageSource};
use crate::state::Snapshot;

use crate::model::TriageTotals;
use std::collections::{HashSet, VecDeque};
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
                Some(Provider::new(client, url, key, settings.timeout)),
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
        let worker = Worker {
            settings: settings.clone(),
            provider,
            unavailable,
            events: events.clone(),
            snapshots: snapshots.clone(),
            totals: totals.clone(),
            seen: Seen::default(),
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
        let now = wall_ms();
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

/// Auto-triaged episodes, so re-fires of one alert do not each cost a call.
#[derive(Debug, Default)]
struct Seen {
    keys: HashSet<(String, i64, crate::model::Severity)>,
    order: VecDeque<(String, i64, crate::model::Severity)>,
}

impl Seen {
    /// True the first time this episode at this severity is seen.
    fn first(&mut self, a: &Alert) -> bool {
        let key = (a.fingerprint.clone(), a.first_seen_ms, a.severity);
        if self.keys.contains(&key) {
            return false;
        }
        if self.order.len() >= SEEN_CAP {
            if let Some(old) = self.order.pop_front() {
                self.keys.remove(&old);
            }
        }
        self.keys.insert(key.clone());
        self.order.push_back(key);
        true
    }
}

struct Worker {
    settings: Arc<TriageSettings>,
    provider: Option<Provider>,
    /// Why a configured model cannot be used (e.g. the key is missing).
    unavailable: Option<String>,
    events: mpsc::Sender<Event>,
    snapshots: watch::Receiver<Arc<Snapshot>>,
    totals: Arc<Mutex<TriageTotals>>,
    seen: Seen,
}

impl Worker {
    async fn run(mut self, mut rx: mpsc::Receiver<Job>, shutdown: CancellationToken) {
        loop {
            let first = tokio::select! {
                biased;
                _ = shutdown.cancelled() => return,
                job = rx.recv() => match job { Some(j) => j, None => return },
            };
            let mut batch: Vec<Alert> = Vec::new();
            self.add(&mut batch, first);
            // Only a model call is worth waiting for company; rules answer each job at once.
            if self.provider.is_some() && !self.settings.batch_window.is_zero() {
                let until = tokio::time::Instant::now() + self.settings.batch_window;
                while batch.len() < self.settings.max_batch {
                    tokio::select! {
                        biased;
                        _ = shutdown.cancelled() => return,
                        _ = tokio::time::sleep_until(until) => break,
                        job = rx.recv() => match job {
                            Some(j) => self.add(&mut batch, j),
                            None => break,
                        },
                    }
                }
            }
            for chunk in batch.chunks(self.settings.max_batch.max(1)) {
                let done = tokio::select! {
                    biased;
                    _ = shutdown.cancelled() => return,
                    done = self.triage(chunk) => done,
                };
                for ev in done {
                    if self.events.send(ev).await.is_err() {
                        return;
                    }
                }
            }
        }
    }

    /// Add a job's alerts to the batch: one entry per fingerprint, the newest version.
    fn add(&mut self, batch: &mut Vec<Alert>, job: Job) {
        for a in job.alerts {
            if !job.asked && !self.seen.first(&a) {
                continue;
            }
            match batch.iter_mut().find(|b| b.fingerprint == a.fingerprint) {
                Some(b) => *b = a,
                None => batch.push(a),
            }
        }
    }

    /// Triage one batch; returns one [`Event::AlertTriaged`] per alert.
    async fn triage(&mut self, alerts: &[Alert]) -> Vec<Event> {
        if alerts.is_empty() {
            return Vec::new();
        }
        let snapshot = self.snapshots.borrow().clone();
        let contexts: Vec<AlertContext> = alerts
            .iter()
            .map(|a| AlertContext::build(a, &snapshot))
            .collect();
        let triages = match &self.provider {
            None => {
                let reason = self.unavailable.as_deref();
                let now = wall_ms();
                let t: Vec<Triage> = contexts
                    .iter()
                    .map(|c| rules::triage(c, now, reason))
                    .collect();
                let mut totals = lock(&self.totals);
                totals.by_rules += t.len() as u64;
                if reason.is_some() {
                    totals.fallbacks += t.len() as u64;
                }
                t
            }
            Some(provider) => {
                let mut body =
                    prompt::request_body(&self.settings, &contexts, snapshot.last_event_ms);
                // Nothing secret is sent to the model, whatever the context quoted.
                crate::secrets::scrub_json(&mut body);
                let result = provider.complete(&body).await;
                let t = self.judge(&contexts, result);
                let totals = lock(&self.totals).clone();
                // Totals are cumulative, so a replayed journal ends on the same figures.
                let _ = self.events.send(Event::TriageUsage(totals)).await;
                t
            }
        };
        alerts.iter().zip(triages).map(triaged).collect()
    }

    /// Turn a model call's result into one triage per context, falling back to rules.
    fn judge(
        &self,
        contexts: &[AlertContext],
        result: Result<Completion, CallError>,
    ) -> Vec<Triage> {
        let now = wall_ms();
        let n = contexts.len();
        let fallback = |reason: &str, latency_ms: u64, cost: f64| -> Vec<Triage> {
            contexts
                .iter()
                .map(|c| {
                    let mut t = rules::triage(c, now, Some(reason));
                    t.latency_ms = latency_ms;
                    t.cost_usd = cost;
                    t
                })
                .collect()
        };
        let completion = match result {
            Err(e) => {
                let e = crate::secrets::scrubbed(&e.to_string());
                tracing::warn!(error = %e, alerts = n, "triage: model call failed, rules answer");
                let mut totals = lock(&self.totals);
                totals.failed_calls += 1;
                totals.by_rules += n as u64;
                totals.fallbacks += n as u64;
                return fallback(&e, 0, 0.0);
            }
            Ok(c) => c,
        };
        let cost = self
            .settings
            .cost_usd(completion.usage.tokens_in, completion.usage.tokens_out);
        let share = cost / n as f64;
        let latency_ms = completion.elapsed.as_millis() as u64;
        tracing::info!(
            alerts = n,
            tokens_in = completion.usage.tokens_in,
            tokens_out = completion.usage.tokens_out,
            cost_usd = cost,
            latency_ms,
            attempts = completion.attempts,
            "triage: model call"
        );
        let mut totals = lock(&self.totals);
        totals.calls += 1;
        totals.tokens_in += completion.usage.tokens_in;
        totals.tokens_out += completion.usage.tokens_out;
        totals.cost_usd += cost;

        let rejected = if completion.finish_reason.as_deref() == Some("length") {
            Some(format!(
                "answer cut at max_tokens {} (finish_reason length)",
                self.settings.max_tokens
            ))
        } else {
            completion.refusal.as_ref().map(|r| {
                format!(
                    "the model refused: {}",
                    r.chars().take(200).collect::<String>()
                )
            })
        };
        let verdicts = match (rejected, completion.content.as_deref()) {
            (Some(reason), _) => Err(reason),
            (None, None) => Err("the answer had no content".to_string()),
            (None, Some(content)) => {
                let asked: Vec<String> = contexts
                    .iter()
                    .map(|c| c.alert.fingerprint.clone())
                    .collect();
                prompt::parse_answer(content, &asked).map_err(|e| e.to_string())
            }
        };
        let verdicts = match verdicts {
            Ok(v) => v,
            Err(reason) => {
                let reason = crate::secrets::scrubbed(&reason);
                tracing::warn!(%reason, "triage: model answer rejected, rules answer");
                totals.by_rules += n as u64;
                totals.fallbacks += n as u64;
                return fallback(&reason, latency_ms, share);
            }
        };
        let note = format!(
            "model {}; batch of {n}; {} attempt(s); {} in / {} out tokens",
            self.settings.model,
            completion.attempts,
            completion.usage.tokens_in,
            completion.usage.tokens_out
        );
        contexts
            .iter()
            .map(|c| match verdicts.get(&c.alert.fingerprint) {
                Some(v) => {
                    totals.by_model += 1;
                    Triage {
                        source: TriageSource::Model,
                        escalation: v.escalation,
                        requires_human: v.requires_human,
                        summary: v.summary.clone(),
                        likely_cause: v.likely_cause.clone(),
                        suggested_actions: v.suggested_actions.clone(),
                        auto_resolve: v.auto_resolve,
                        note: note.clone(),
                        latency_ms,
                        cost_usd: share,
                        at_ms: now,
                    }
                }
                None => {
                    totals.by_rules += 1;
                    totals.fallbacks += 1;
                    let mut t =
                        rules::triage(c, now, Some("the model's answer left this alert out"));
                    t.latency_ms = latency_ms;
                    t.cost_usd = share;
                    t
                }
            })
            .collect()
    }
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
