//! The alert engine: turns detector findings into alert lifecycle events.
//!
//! Pure: fed events and operator commands with the time passed in, it
//! returns `Event::AlertChanged` for every alert whose state (or figures, at
//! most every `update_every`) changed. The state an operator sees is derived,
//! in this order: resolved; silenced by a maintenance window; silenced by a
//! silence; inhibited by an exchange-wide outage; acknowledged; firing.
//!
//! ```text
//! events ──▶ Detectors ──findings──▶ Engine ──AlertChanged──▶ journal, reducer, notifier
//! commands (ack, silence, undo) ───▶ Engine ──Suppressions──▶ journal, reducer
//! ```
//!
//! After every change of its live silences or acknowledged incidents (one
//! set or undone by a command, a silence expired, an acknowledged incident
//! closed) the engine emits one `Event::Suppressions` with both lists whole,
//! so the journal, the snapshot and a replay know what is silenced and
//! acknowledged, by whom and until when. They are this instance's: like the
//! alerts themselves, they are not shared between instances.

use super::incident::Correlator;
use super::{AlertSettings, Matcher};
use crate::detect::breaker::{BREAKER_OPEN, OUTAGE};
use crate::detect::staleness::NO_DATA;
use crate::detect::{Detectors, Finding, Firing, Health};
use crate::model::Command;
use crate::model::{AckInfo, SilenceInfo};
use crate::model::{Alert, AlertState};
use crate::model::{EndpointId, Event};
use std::collections::BTreeMap;

/// An operator's silence, live until `until_ms`.
#[derive(Debug, Clone, PartialEq)]
pub struct Silence {
    pub id: u64,
    pub matcher: Matcher,
    pub by: String,
    pub created_ms: i64,
    pub until_ms: i64,
}

impl Silence {
    /// As the snapshot and the journal carry it.
    pub fn info(&self) -> SilenceInfo {
        SilenceInfo {
            id: self.id,
            exchange: self.matcher.exchange.clone(),
            endpoint: self.matcher.endpoint.clone(),
            kind: self.matcher.kind.clone(),
            by: self.by.clone(),
            created_ms: self.created_ms,
            until_ms: self.until_ms,
        }
    }
}

#[derive(Debug, Clone)]
struct Tracked {
    alert: Alert,
    acked: Option<(String, i64)>,
    last_emit_ms: i64,
}

#[derive(Debug, Clone)]
struct Window {
    name: String,
    matcher: Matcher,
    start_ms: i64,
    end_ms: i64,
}

pub struct Engine {
    s: AlertSettings,
    detectors: Detectors,
    alerts: BTreeMap<String, Tracked>,
    silences: Vec<Silence>,
    windows: Vec<Window>,
    next_silence: u64,
    incidents: Correlator,
    /// The lists the last `Suppressions` event carried.
    reported: (Vec<SilenceInfo>, Vec<AckInfo>),
    /// What the command being handled changed, for that event's note.
    note: Option<String>,
}

impl Engine {
    pub fn new(settings: AlertSettings) -> Self {
        let windows = settings
            .maintenance
            .iter()
            .filter_map(|w| {
                let (start_ms, end_ms) = w.span_ms()?;
                Some(Window {
                    name: w.name.clone(),
                    matcher: w.matcher.clone(),
                    start_ms,
                    end_ms,
                })
            })
            .collect();
        Engine {
            detectors: Detectors::new(settings.detect.clone()),
            s: settings,
            alerts: BTreeMap::new(),
            silences: Vec::new(),
            windows,
            next_silence: 1,
            incidents: Correlator::default(),
            reported: (Vec::new(), Vec::new()),
            note: None,
        }
    }

    /// Feed one event from the stream. Alert events (the engine's own output)
    /// only update delivery state so later `AlertChanged` events carry it;
    /// a triage result is folded into the alert and re-emitted.
    pub fn on_event(&mut self, ev: &Event, now_ms: i64) -> Vec<Event> {
        match ev {
            Event::AlertChanged { .. } | Event::Suppressions { .. } => Vec::new(),
            Event::AlertTriaged {
                fingerprint,
                episode,
                triage,
            } => {
                let Some(t) = self.alerts.get_mut(fingerprint) else {
                    return Vec::new();
                };
                if t.alert.occurrences != *episode {
                    tracing::debug!(%fingerprint, episode, "triage of an earlier episode dropped");
                    return Vec::new();
                }
                // Only the triage changes: the state stays what the engine
                // holds now (resolved or acknowledged meanwhile stays so).
                t.alert.triage = Some(triage.clone());
                t.last_emit_ms = now_ms;
                vec![Event::AlertChanged {
                    alert: t.alert.clone(),
                }]
            }
            Event::AlertDelivery {
                fingerprint,
                sink,
                delivery,
            } => {
                if let Some(t) = self.alerts.get_mut(fingerprint) {
                    t.alert.delivery.insert(sink.clone(), delivery.clone());
                }
                Vec::new()
            }
            _ => {
                let findings = self.detectors.on_event(ev, now_ms);
                self.apply(findings, now_ms)
            }
        }
    }

    /// Time-driven work: no-data detection, silence expiry, auto-resolve of
    /// alerts nothing confirms any more. Call about once a second.
    pub fn tick(&mut self, now_ms: i64) -> Vec<Event> {
        self.silences.retain(|s| s.until_ms > now_ms);
        let mut changed = Vec::new();
        let stale_before = now_ms - crate::clock::ms(self.s.resolve_after);
        for (fp, t) in self.alerts.iter_mut() {
            if t.alert.state.is_open() && t.alert.last_seen_ms < stale_before {
                resolve(
                    &mut t.alert,
                    now_ms,
                    format!("auto (not seen for {}s)", self.s.resolve_after.as_secs()),
                );
                self.incidents.leave(fp);
                changed.push(fp.clone());
            }
        }
        let findings = self.detectors.tick(now_ms);
        let mut out = self.apply(findings, now_ms);
        for fp in changed {
            if let Some(t) = self.alerts.get_mut(&fp) {
                if !out
                    .iter()
                    .any(|e| matches!(e, Event::AlertChanged { alert } if alert.fingerprint == fp))
                {
                    t.last_emit_ms = now_ms;
                    out.push(Event::AlertChanged {
                        alert: t.alert.clone(),
                    });
                }
            }
        }
        out
    }

    /// Operator commands: acknowledge, silence, and their undoing
    /// (`Unacknowledge`, `Unsilence`). Others are not the engine's. A
    /// command that changes nothing (an unknown silence id, an incident not
    /// acknowledged) returns nothing.
    pub fn on_command(&mut self, cmd: &Command, now_ms: i64) -> Vec<Event> {
        match cmd {
            Command::Acknowledge {
                fingerprint,
                by,
                episode,
            } => {
                // Only the episode the operator saw: one that resolved and
                // fired again since is a new page nobody has read yet.
                if !self.alerts.get(fingerprint).is_some_and(|t| {
                    t.alert.state.is_open() && episode.is_none_or(|ep| ep == t.alert.occurrences)
                }) {
                    return Vec::new();
                }
                // Acknowledging a symptom acknowledges its incident: every
                // open symptom of it (and, in the correlator, later ones).
                let mut members = self.incidents.acknowledge(fingerprint, by, now_ms);
                if members.is_empty() {
                    members.push(fingerprint.clone());
                }
                for fp in members {
                    if let Some(t) = self.alerts.get_mut(&fp) {
                        if t.alert.state.is_open() {
                            t.acked = Some((by.clone(), now_ms));
                        }
                    }
                }
                self.note = Some(format!("{fingerprint} acknowledged by {by}"));
                self.apply(Vec::new(), now_ms)
            }
            Command::Unacknowledge { incident, by } => {
                let mut members = self.incidents.unacknowledge(incident);
                // An alert from a journal older than incidents is its own.
                members.extend(
                    self.alerts
                        .values()
                        .filter(|t| t.alert.incident.is_none())
                        .filter(|t| t.alert.incident_or_own() == *incident)
                        .map(|t| t.alert.fingerprint.clone()),
                );
                let mut withdrawn = false;
                for fp in members {
                    if let Some(t) = self.alerts.get_mut(&fp) {
                        withdrawn |= t.acked.take().is_some();
                    }
                }
                if !withdrawn {
                    return Vec::new();
                }
                self.note = Some(format!("acknowledgement of {incident} withdrawn by {by}"));
                self.apply(Vec::new(), now_ms)
            }
            Command::Unsilence { id, by } => {
                let Some(i) = self.silences.iter().position(|s| s.id == *id) else {
                    return Vec::new();
                };
                let gone = self.silences.remove(i);
                self.note = Some(format!(
                    "silence #{id} ({}) removed by {by}",
                    gone.matcher.describe()
                ));
                self.apply(Vec::new(), now_ms)
            }
            Command::Silence {
                exchange,
                endpoint,
                kind,
                duration,
                by,
            } => {
                let id = self.next_silence;
                self.next_silence += 1;
                self.silences.push(Silence {
                    id,
                    matcher: Matcher {
                        exchange: exchange.clone(),
                        endpoint: endpoint.clone(),
                        kind: kind.clone(),
                    },
                    by: by.clone(),
                    created_ms: now_ms,
                    until_ms: now_ms.saturating_add(crate::clock::ms(*duration)),
                });
                self.note = Some(format!("silence #{id} set by {by}"));
                self.apply(Vec::new(), now_ms)
            }
            Command::Triage { .. } | Command::ForceOpen { .. } | Command::ResetBreaker { .. } => {
                Vec::new()
            }
        }
    }

    /// Resume alerts from the journal after a restart (the newest state of
    /// each fingerprint). Emits nothing: they are already in the journal.
    /// Each open one is handed back to the detector that raises it, so
    /// fresh data clears it (after its kind's clear condition) or keeps it
    /// firing, in the same episode, like an alert that never left memory.
    pub fn restore(&mut self, alerts: Vec<Alert>) {
        let orphans = self.detectors.restore(&alerts);
        if !orphans.is_empty() {
            tracing::warn!(
                alerts = ?orphans,
                "restored alerts no detector raises; they resolve after resolve_after"
            );
        }
        self.incidents.restore(&alerts);
        if alerts.iter().any(|a| a.state == AlertState::Acknowledged) {
            // Reported with the next change (the restored acknowledgements).
            self.note = Some("acknowledgements restored from the journal".into());
        }
        for a in alerts {
            let acked = (a.state == AlertState::Acknowledged)
                .then(|| (a.state_by.clone().unwrap_or_default(), a.state_at_ms));
            self.alerts.insert(
                a.fingerprint.clone(),
                Tracked {
                    last_emit_ms: a.state_at_ms.max(a.last_seen_ms),
                    alert: a,
                    acked,
                },
            );
        }
    }

    pub fn alerts(&self) -> impl Iterator<Item = &Alert> {
        self.alerts.values().map(|t| &t.alert)
    }

    pub fn alert(&self, fingerprint: &str) -> Option<&Alert> {
        self.alerts.get(fingerprint).map(|t| &t.alert)
    }

    pub fn silences(&self) -> &[Silence] {
        &self.silences
    }

    /// The open incidents (see [`super::incident`]).
    pub fn incidents(&self) -> &Correlator {
        &self.incidents
    }

    pub fn health(&self, id: &EndpointId) -> Health {
        self.detectors.health(id)
    }

    fn apply(&mut self, findings: Vec<Finding>, now_ms: i64) -> Vec<Event> {
        let mut dirty: Vec<String> = Vec::new();
        for f in findings {
            let fp = f.fingerprint();
            match f {
                Finding::Firing(x) => {
                    let (emit, moved) = self.fire(&fp, x, now_ms);
                    for m in moved {
                        if !dirty.contains(&m) {
                            dirty.push(m);
                        }
                    }
                    if emit && !dirty.contains(&fp) {
                        dirty.push(fp);
                    }
                }
                Finding::Cleared { .. } => {
                    if let Some(t) = self.alerts.get_mut(&fp) {
                        if t.alert.state.is_open() {
                            resolve(&mut t.alert, now_ms, "auto".into());
                            t.acked = None;
                            self.incidents.leave(&fp);
                            dirty.push(fp);
                        }
                    }
                }
            }
        }
        // Derived states can change for any alert (an outage began or ended,
        // a silence was added): recompute all, they are few.
        let outages: Vec<(String, String)> = self
            .alerts
            .values()
            .filter(|t| t.alert.kind == OUTAGE && t.alert.state.is_open())
            .map(|t| (t.alert.exchange.clone(), t.alert.fingerprint.clone()))
            .collect();
        // A paused endpoint has no data because we stopped asking: the
        // breaker alert says so already.
        let paused: Vec<(EndpointId, String)> = self
            .alerts
            .values()
            .filter(|t| t.alert.kind == BREAKER_OPEN && t.alert.state.is_open())
            .filter_map(|t| Some((t.alert.endpoint_id()?, t.alert.fingerprint.clone())))
            .collect();
        for (fp, t) in self.alerts.iter_mut() {
            if !t.alert.state.is_open() {
                continue;
            }
            let (state, by) = derive(
                &t.alert,
                t.acked.as_ref(),
                &self.windows,
                &self.silences,
                &Inhibitors {
                    outages: &outages,
                    paused: &paused,
                    kinds: &self.s.inhibit_kinds,
                },
                now_ms,
            );
            if state != t.alert.state || by != t.alert.state_by {
                t.alert.state = state;
                t.alert.state_by = by;
                t.alert.state_at_ms = now_ms;
                if !dirty.contains(fp) {
                    dirty.push(fp.clone());
                }
            }
        }
        let mut out: Vec<Event> = dirty
            .into_iter()
            .filter_map(|fp| {
                let t = self.alerts.get_mut(&fp)?;
                t.last_emit_ms = now_ms;
                Some(Event::AlertChanged {
                    alert: t.alert.clone(),
                })
            })
            .collect();
        out.extend(self.suppressions_changed(now_ms));
        out
    }

    /// The live silences, as the snapshot carries them.
    pub fn silence_infos(&self) -> Vec<SilenceInfo> {
        self.silences.iter().map(Silence::info).collect()
    }

    /// The acknowledged incidents that have an open symptom, by incident id.
    pub fn acks(&self) -> Vec<AckInfo> {
        let mut acks: BTreeMap<String, AckInfo> = BTreeMap::new();
        for t in self.alerts.values() {
            let Some((by, at_ms)) = t.acked.as_ref().filter(|_| t.alert.state.is_open()) else {
                continue;
            };
            let incident = t.alert.incident_or_own();
            // The incident's own record (who acknowledged it first) wins.
            let (by, at_ms) = self
                .incidents
                .get(&incident)
                .and_then(|i| i.acked.clone())
                .unwrap_or_else(|| (by.clone(), *at_ms));
            acks.entry(incident.clone()).or_insert(AckInfo {
                incident,
                by,
                at_ms,
            });
        }
        acks.into_values().collect()
    }

    /// One `Suppressions` event if the lists differ from the last reported.
    fn suppressions_changed(&mut self, now_ms: i64) -> Option<Event> {
        let now = (self.silence_infos(), self.acks());
        let note = self.note.take();
        if now == self.reported {
            return None;
        }
        let note = note.unwrap_or_else(|| {
            let ended: Vec<String> = (self.reported.0.iter())
                .filter(|s| !now.0.iter().any(|n| n.id == s.id))
                .map(|s| format!("silence #{} expired", s.id))
                .chain(
                    (self.reported.1.iter())
                        .filter(|a| !now.1.iter().any(|n| n.incident == a.incident))
                        .map(|a| format!("{} closed", a.incident)),
                )
                .collect();
            ended.join(", ")
        });
        self.reported = now.clone();
        Some(Event::Suppressions {
            at_ms: now_ms,
            silences: now.0,
            acks: now.1,
            note,
        })
    }

    /// Returns whether the alert must be re-emitted now, and the alerts of
    /// other incidents its incident took in (re-emitted too).
    fn fire(&mut self, fp: &str, mut x: Firing, now_ms: i64) -> (bool, Vec<String>) {
        if let Some(severity) = self.s.severity_for(&x.kind) {
            x.severity = severity;
        }
        let emit = self.fire_alert(fp, x, now_ms);
        // A new alert or a new episode joins an incident (see
        // `super::incident`); one already in an open incident stays there.
        let Some(t) = self.alerts.get_mut(fp) else {
            return (emit, Vec::new());
        };
        let merge_ms = crate::clock::ms(self.s.grouping.group_wait);
        let joined = self.incidents.join(&t.alert, now_ms, merge_ms);
        let new_incident = t.alert.incident.as_deref() != Some(joined.incident.as_str());
        t.alert.incident = Some(joined.incident.clone());
        if let Some(acked) = self
            .incidents
            .get(&joined.incident)
            .and_then(|i| i.acked.clone())
        {
            t.acked.get_or_insert(acked);
        }
        let mut moved = Vec::new();
        for m in joined.moved {
            if let Some(o) = self.alerts.get_mut(&m) {
                o.alert.incident = Some(joined.incident.clone());
                moved.push(m);
            }
        }
        (emit || new_incident, moved)
    }

    /// Returns whether the alert must be re-emitted now.
    fn fire_alert(&mut self, fp: &str, x: Firing, now_ms: i64) -> bool {
        let update_ms = crate::clock::ms(self.s.update_every);
        match self.alerts.get_mut(fp) {
            Some(t) => {
                let a = &mut t.alert;
                let mut emit = false;
                if !a.state.is_open() {
                    // Re-fired: the same alert counts one more occurrence.
                    a.occurrences += 1;
                    a.episode_start_ms = Some(now_ms);
                    a.resolved_at_ms = None;
                    a.state = AlertState::Firing;
                    a.state_by = Some("auto".into());
                    a.state_at_ms = now_ms;
                    a.delivery.clear();
                    t.acked = None;
                    emit = true;
                }
                // The title says what fired and stays for the episode (a
                // breaker that goes half-open is still the outage that
                // opened it); a new episode or a rise in severity retitles
                // it. The description and metrics carry the current figures.
                if emit || x.severity > a.severity {
                    a.title = x.title;
                }
                if a.severity != x.severity {
                    emit = true;
                }
                a.severity = x.severity;
                a.description = x.description;
                a.metrics = x.metrics;
                a.last_seen_ms = now_ms;
                emit || now_ms - t.last_emit_ms >= update_ms
            }
            None => {
                let alert = Alert {
                    fingerprint: fp.to_string(),
                    exchange: x.exchange,
                    endpoint: x.endpoint,
                    kind: x.kind,
                    severity: x.severity,
                    title: x.title,
                    description: x.description,
                    metrics: x.metrics,
                    first_seen_ms: now_ms,
                    last_seen_ms: now_ms,
                    occurrences: 1,
                    state: AlertState::Firing,
                    state_by: Some("auto".into()),
                    state_at_ms: now_ms,
                    resolved_at_ms: None,
                    delivery: BTreeMap::new(),
                    triage: None,
                    incident: None,
                    episode_start_ms: Some(now_ms),
                };
                self.alerts.insert(
                    fp.to_string(),
                    Tracked {
                        alert,
                        acked: None,
                        last_emit_ms: now_ms,
                    },
                );
                true
            }
        }
    }
}

fn resolve(a: &mut Alert, now_ms: i64, by: String) {
    a.state = AlertState::Resolved;
    a.state_by = Some(by);
    a.state_at_ms = now_ms;
    a.resolved_at_ms = Some(now_ms);
}

struct Inhibitors<'a> {
    /// (exchange, outage fingerprint)
    outages: &'a [(String, String)],
    /// (endpoint, breaker_open fingerprint)
    paused: &'a [(EndpointId, String)],
    kinds: &'a [String],
}

fn derive(
    a: &Alert,
    acked: Option<&(String, i64)>,
    windows: &[Window],
    silences: &[Silence],
    inh: &Inhibitors<'_>,
    now_ms: i64,
) -> (AlertState, Option<String>) {
    if let Some(w) = windows
        .iter()
        .find(|w| w.start_ms <= now_ms && now_ms < w.end_ms && w.matcher.matches(a))
    {
        return (
            AlertState::Silenced,
            Some(format!("maintenance: {}", w.name)),
        );
    }
    if let Some(s) = silences
        .iter()
        .find(|s| s.until_ms > now_ms && s.matcher.matches(a))
    {
        return (
            AlertState::Silenced,
            Some(format!("silence #{} by {}", s.id, s.by)),
        );
    }
    if a.kind != OUTAGE && inh.kinds.iter().any(|k| a.kind == k.as_str()) {
        if let Some((_, fp)) = inh.outages.iter().find(|(ex, _)| *ex == a.exchange) {
            return (AlertState::Silenced, Some(format!("inhibited by {fp}")));
        }
    }
    if a.kind == NO_DATA
        && let Some(id) = a.endpoint_id()
        && let Some((_, fp)) = inh.paused.iter().find(|(p, _)| *p == id)
    {
        return (AlertState::Silenced, Some(format!("inhibited by {fp}")));
    }
    if let Some((by, _)) = acked {
        return (AlertState::Acknowledged, Some(by.clone()));
    }
    (AlertState::Firing, Some("auto".into()))
}
