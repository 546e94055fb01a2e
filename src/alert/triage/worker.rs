//! The triage worker: takes jobs from the queue, answers with the rules at
//! once, and, when a model is configured, asks it in the background and
//! replaces the rules' answer with the model's when that arrives. A model
//! that hangs or fails therefore never holds back the rules' answer, nor
//! the next batch: up to [`MODEL_CALLS_IN_FLIGHT`] calls run at a time and
//! jobs keep being taken (and answered by the rules) meanwhile.

use super::context::AlertContext;
use super::provider::{CallError, Completion, Provider};
use super::settings::TriageSettings;
use super::{Job, SEEN_CAP, lock, prompt, rules, triaged};
use crate::clock::now_ms;
use crate::model::{Alert, Event, Triage, TriageSource, TriageTotals};
use crate::state::Snapshot;
use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// Model calls at a time; more batches wait for a slot (their rules'
/// answers are already shown).
pub const MODEL_CALLS_IN_FLIGHT: usize = 2;

/// Auto-triaged episodes, so re-fires of one alert do not each cost a call.
#[derive(Debug, Default)]
pub(super) struct Seen {
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

pub(super) struct Worker {
    pub(super) settings: Arc<TriageSettings>,
    pub(super) provider: Option<Arc<Provider>>,
    /// Why a configured model cannot be used (e.g. the key is missing).
    pub(super) unavailable: Option<String>,
    pub(super) events: mpsc::Sender<Event>,
    pub(super) snapshots: watch::Receiver<Arc<Snapshot>>,
    pub(super) totals: Arc<Mutex<TriageTotals>>,
    pub(super) seen: Seen,
}

impl Worker {
    pub(super) async fn run(mut self, mut rx: mpsc::Receiver<Job>, shutdown: CancellationToken) {
        // Model calls in the background; dropped (aborted) with the worker.
        let mut calls: JoinSet<()> = JoinSet::new();
        let slots = Arc::new(Semaphore::new(MODEL_CALLS_IN_FLIGHT));
        loop {
            let first = tokio::select! {
                biased;
                _ = shutdown.cancelled() => return,
                Some(_) = calls.join_next(), if !calls.is_empty() => continue,
                job = rx.recv() => match job { Some(j) => j, None => break },
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
            if batch.is_empty() {
                continue;
            }
            let snapshot = self.snapshots.borrow().clone();
            let contexts: Vec<AlertContext> = batch
                .iter()
                .map(|a| AlertContext::build(a, &snapshot))
                .collect();
            let now = now_ms();
            let Some(provider) = self.provider.clone() else {
                // Rules only (no model, or it cannot be used): final answers.
                let reason = self.unavailable.as_deref();
                let t: Vec<Triage> = contexts
                    .iter()
                    .map(|c| rules::triage(c, now, reason))
                    .collect();
                {
                    let mut totals = lock(&self.totals);
                    totals.by_rules += t.len() as u64;
                    if reason.is_some() {
                        totals.fallbacks += t.len() as u64;
                    }
                }
                for ev in batch.iter().zip(t).map(triaged) {
                    if self.events.send(ev).await.is_err() {
                        return;
                    }
                }
                continue;
            };
            // The rules' answer at once; the model's replaces it when it comes.
            for (a, c) in batch.iter().zip(&contexts) {
                let mut t = rules::triage(c, now, None);
                t.note = format!(
                    "rules, shown while model {} is asked; {}",
                    self.settings.model, t.note
                );
                if self.events.send(triaged((a, t))).await.is_err() {
                    return;
                }
            }
            let size = self.settings.max_batch.max(1);
            for (alerts, contexts) in batch.chunks(size).zip(contexts.chunks(size)) {
                let call = ModelCall {
                    settings: self.settings.clone(),
                    totals: self.totals.clone(),
                };
                let (alerts, contexts) = (alerts.to_vec(), contexts.to_vec());
                let (events, provider, slots) =
                    (self.events.clone(), provider.clone(), slots.clone());
                let last_event_ms = snapshot.last_event_ms;
                calls.spawn(async move {
                    let Ok(_slot) = slots.acquire_owned().await else {
                        return;
                    };
                    let mut body = prompt::request_body(&call.settings, &contexts, last_event_ms);
                    crate::secrets::scrub_json(&mut body);
                    let result = provider.complete(&body).await;
                    let triages = call.judge(&contexts, result);
                    let totals = lock(&call.totals).clone();
                    // Totals are cumulative, so a replayed journal ends on the same figures.
                    let _ = events.send(Event::TriageUsage(totals)).await;
                    for ev in alerts.iter().zip(triages).map(triaged) {
                        if events.send(ev).await.is_err() {
                            return;
                        }
                    }
                });
            }
        }
        // The queue closed: let the calls in flight finish.
        while calls.join_next().await.is_some() {}
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
}

/// One model call's share of the worker: its settings and the totals it adds to.
struct ModelCall {
    settings: Arc<TriageSettings>,
    totals: Arc<Mutex<TriageTotals>>,
}

impl ModelCall {
    /// Turn a model call's result into one triage per context, falling back to rules.
    fn judge(
        &self,
        contexts: &[AlertContext],
        result: Result<Completion, CallError>,
    ) -> Vec<Triage> {
        let now = now_ms();
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
