//! Grouping and storm control, in the manner of Alertmanager.
//!
//! Alerts are grouped by (exchange, severity). A new group waits `group_wait`
//! so an incident's first alerts go out together; after that, changes (new,
//! acknowledged, resolved alerts) go out at most once per `group_interval`;
//! a group with alerts still firing (not acknowledged) is re-sent every
//! `repeat_interval`. Each notification carries every alert of its group, so
//! a storm of a thousand failures is one message saying how many alerts it
//! stands for. Before sending, a notification is claimed in the dedup store
//! so several instances send it once.
//!
//! [`Grouper`] is the pure core (time passed in); [`spawn`] runs it as a task
//! fed `Alert`s (from `Event::AlertChanged`) through a bounded channel.

use super::dedup::Claims;
use super::notification::{GroupKey, Notification};
use super::sinks::SinkHandle;
use crate::model::Event;
use crate::model::{Alert, AlertState, Delivery};
use crate::problems::Problems;
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GroupingSettings {
    #[serde(with = "humantime_serde")]
    pub group_wait: Duration,
    #[serde(with = "humantime_serde")]
    pub group_interval: Duration,
    #[serde(with = "humantime_serde")]
    pub repeat_interval: Duration,
    /// Bound of the notifier's input queue (alert changes waiting to be grouped).
    pub queue: usize,
}

impl Default for GroupingSettings {
    fn default() -> Self {
        GroupingSettings {
            group_wait: Duration::from_secs(30),
            group_interval: Duration::from_secs(5 * 60),
            repeat_interval: Duration::from_secs(4 * 3600),
            queue: 1024,
        }
    }
}

impl GroupingSettings {
    pub fn validate(&self, at: &str, p: &mut Problems) {
        if self.group_interval.is_zero() {
            p.push(format!("{at}.group_interval"), "must be greater than zero");
        }
        if self.repeat_interval < self.group_interval {
            p.push(
                format!("{at}.repeat_interval"),
                "must be at least group_interval",
            );
        }
        if self.queue == 0 {
            p.push(format!("{at}.queue"), "must be at least 1");
        }
    }
}

/// What happened to an alert handed to the grouper.
#[derive(Debug, Clone, PartialEq)]
pub enum Intake {
    Grouped,
    /// Not going to be notified, and why.
    Suppressed(String),
}

#[derive(Debug, Clone, Default)]
struct Group {
    alerts: BTreeMap<String, Alert>,
    /// State each alert had in the last notification that carried it.
    notified: BTreeMap<String, AlertState>,
    changed: BTreeSet<String>,
    next_at_ms: Option<i64>,
    last_sent_ms: Option<i64>,
    seq: u64,
}

/// The pure grouping core.
#[derive(Debug, Clone)]
pub struct Grouper {
    s: GroupingSettings,
    groups: BTreeMap<GroupKey, Group>,
}

fn ms(d: Duration) -> i64 {
    crate::clock::ms(d)
}

impl Grouper {
    pub fn new(s: GroupingSettings) -> Self {
        Grouper {
            s,
            groups: BTreeMap::new(),
        }
    }

    pub fn on_alert(&mut self, alert: Alert, now_ms: i64) -> Intake {
        let key = GroupKey {
            exchange: alert.exchange.clone(),
            severity: alert.severity,
        };
        let fp = alert.fingerprint.clone();
        // A severity change moves the alert to another group.
        for (k, g) in self.groups.iter_mut() {
            if *k != key && g.alerts.remove(&fp).is_some() {
                g.notified.remove(&fp);
                g.changed.remove(&fp);
            }
        }
        let g = self.groups.entry(key).or_default();
        match alert.state {
            AlertState::Silenced => {
                g.alerts.remove(&fp);
                g.notified.remove(&fp);
                g.changed.remove(&fp);
                return Intake::Suppressed(
                    alert.state_by.clone().unwrap_or_else(|| "silenced".into()),
                );
            }
            AlertState::Resolved if !g.notified.contains_key(&fp) => {
                g.alerts.remove(&fp);
                g.changed.remove(&fp);
                return Intake::Suppressed("resolved before it was notified".into());
            }
            _ => {}
        }
        let state = alert.state;
        g.alerts.insert(fp.clone(), alert);
        if g.notified.get(&fp) == Some(&state) {
            g.changed.remove(&fp);
        } else {
            g.changed.insert(fp);
        }
        if !g.changed.is_empty() {
            let at = match g.last_sent_ms {
                None => now_ms + ms(self.s.group_wait),
                Some(t) => (t + ms(self.s.group_interval)).max(now_ms),
            };
            // group_wait counts from the group's first alert, not the latest.
            g.next_at_ms = Some(g.next_at_ms.map_or(at, |n| n.min(at)));
        }
        Intake::Grouped
    }

    /// When `due` next has something to do.
    pub fn next_due_ms(&self) -> Option<i64> {
        self.groups.values().filter_map(|g| g.next_at_ms).min()
    }

    /// Notifications due at `now_ms`: at most one per group.
    pub fn due(&mut self, now_ms: i64) -> Vec<Notification> {
        let mut out = Vec::new();
        let repeat_ms = ms(self.s.repeat_interval);
        for (key, g) in self.groups.iter_mut() {
            if g.next_at_ms.is_none_or(|t| t > now_ms) {
                continue;
            }
            let any_firing = g.alerts.values().any(|a| a.state == AlertState::Firing);
            let repeat = g.changed.is_empty();
            let send =
                !repeat || (any_firing && g.last_sent_ms.is_some_and(|t| now_ms - t >= repeat_ms));
            if send {
                g.seq += 1;
                let mut alerts: Vec<Alert> = g.alerts.values().cloned().collect();
                alerts.sort_by(|a, b| {
                    a.state
                        .cmp(&b.state)
                        .then(b.last_seen_ms.cmp(&a.last_seen_ms))
                        .then(a.fingerprint.cmp(&b.fingerprint))
                });
                out.push(Notification {
                    id: format!(
                        "{}/{}/{}@{now_ms}",
                        key.exchange,
                        key.severity.as_str(),
                        g.seq
                    ),
                    group: key.clone(),
                    at_ms: now_ms,
                    repeat,
                    alerts,
                    changed: std::mem::take(&mut g.changed).into_iter().collect(),
                });
                g.last_sent_ms = Some(now_ms);
                for (fp, a) in &g.alerts {
                    g.notified.insert(fp.clone(), a.state);
                }
                let resolved: Vec<String> = g
                    .alerts
                    .iter()
                    .filter(|(_, a)| a.state == AlertState::Resolved)
                    .map(|(fp, _)| fp.clone())
                    .collect();
                for fp in resolved {
                    g.alerts.remove(&fp);
                    g.notified.remove(&fp);
                }
            }
            let still_firing = g.alerts.values().any(|a| a.state == AlertState::Firing);
            g.next_at_ms = match g.last_sent_ms {
                Some(t) if still_firing => Some(t + repeat_ms),
                _ => None,
            };
        }
        self.groups
            .retain(|_, g| !g.alerts.is_empty() || g.next_at_ms.is_some());
        out
    }
}

/// Feeds alert changes to the notifier task.
pub type AlertSender = mpsc::Sender<Alert>;

/// Run the notifier: group alerts, claim each notification, hand it to the
/// sinks; delivery state (incl. suppression) goes to `events`.
pub fn spawn(
    settings: GroupingSettings,
    sinks: Vec<SinkHandle>,
    claims: Arc<Claims>,
    events: mpsc::Sender<Event>,
    shutdown: CancellationToken,
) -> (AlertSender, tokio::task::JoinHandle<()>) {
    let (tx, rx) = mpsc::channel(settings.queue.max(1));
    let task = tokio::spawn(run(settings, sinks, claims, events, rx, shutdown));
    (tx, task)
}

async fn run(
    settings: GroupingSettings,
    sinks: Vec<SinkHandle>,
    claims: Arc<Claims>,
    events: mpsc::Sender<Event>,
    mut rx: mpsc::Receiver<Alert>,
    shutdown: CancellationToken,
) {
    let change_ttl = settings.group_interval.max(Duration::from_secs(1));
    let repeat_ttl = settings.repeat_interval.mul_f64(0.9).max(change_ttl);
    let mut grouper = Grouper::new(settings);
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            a = rx.recv() => {
                let Some(alert) = a else { break };
                let fp = alert.fingerprint.clone();
                if let Intake::Suppressed(reason) = grouper.on_alert(alert, crate::clock::wall_ms()) {
                    for s in &sinks {
                        super::sinks::emit(&events, Event::AlertDelivery {
                            fingerprint: fp.clone(),
                            sink: s.name().to_string(),
                            delivery: Delivery::Suppressed { reason: reason.clone() },
                        });
                    }
                }
            }
            _ = tick.tick() => {
                let now = crate::clock::wall_ms();
                if grouper.next_due_ms().is_none_or(|t| t > now) {
                    continue;
                }
                for n in grouper.due(now) {
                    dispatch(n, &sinks, &claims, &events, change_ttl, repeat_ttl).await;
                }
            }
            _ = shutdown.cancelled() => break,
        }
    }
}

async fn dispatch(
    n: Notification,
    sinks: &[SinkHandle],
    claims: &Claims,
    events: &mpsc::Sender<Event>,
    change_ttl: Duration,
    repeat_ttl: Duration,
) {
    let ttl = if n.repeat { repeat_ttl } else { change_ttl };
    if !claims.claim(&n.signature(), ttl).await {
        tracing::info!(id = %n.id, "notification already sent by another instance");
        for s in sinks.iter().filter(|s| s.wants(&n)) {
            for fp in n.fingerprints() {
                super::sinks::emit(
                    events,
                    Event::AlertDelivery {
                        fingerprint: fp,
                        sink: s.name().to_string(),
                        delivery: Delivery::Suppressed {
                            reason: "sent by another instance".into(),
                        },
                    },
                );
            }
        }
        return;
    }
    for s in sinks.iter().filter(|s| s.wants(&n)) {
        s.enqueue(n.clone()).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::notification::Counts;
    use crate::model::Severity;

    fn alert(fp: &str, sev: Severity, state: AlertState) -> Alert {
        Alert {
            fingerprint: fp.into(),
            exchange: "bin".into(),
            endpoint: Some("ticker".into()),
            kind: "error_rate".parse().unwrap(),
            severity: sev,
            title: fp.into(),
            description: String::new(),
            metrics: BTreeMap::new(),
            first_seen_ms: 0,
            last_seen_ms: 0,
            occurrences: 1,
            state,
            state_by: None,
            state_at_ms: 0,
            resolved_at_ms: None,
            delivery: BTreeMap::new(),
            triage: None,
        }
    }

    fn settings() -> GroupingSettings {
        GroupingSettings {
            group_wait: Duration::from_secs(10),
            group_interval: Duration::from_secs(60),
            repeat_interval: Duration::from_secs(600),
            queue: 16,
        }
    }

    #[test]
    fn group_wait_then_one_notification_for_many_alerts() {
        let mut g = Grouper::new(settings());
        for i in 0..50 {
            g.on_alert(
                alert(&format!("a{i}"), Severity::Critical, AlertState::Firing),
                i * 100,
            );
        }
        assert!(g.due(9_999).is_empty());
        let n = g.due(10_000);
        assert_eq!(n.len(), 1);
        assert_eq!(n[0].alerts.len(), 50);
        assert_eq!(n[0].summary(), "[CRITICAL] bin: 50 firing");
    }

    #[test]
    fn changes_wait_for_group_interval_and_resolutions_are_sent_once() {
        let mut g = Grouper::new(settings());
        g.on_alert(alert("a", Severity::Critical, AlertState::Firing), 0);
        assert_eq!(g.due(10_000).len(), 1);
        g.on_alert(alert("b", Severity::Critical, AlertState::Firing), 11_000);
        g.on_alert(alert("a", Severity::Critical, AlertState::Resolved), 12_000);
        assert!(g.due(69_999).is_empty());
        let n = g.due(70_000);
        assert_eq!(n.len(), 1);
        assert_eq!(
            n[0].counts(),
            Counts {
                firing: 1,
                acknowledged: 0,
                resolved: 1
            }
        );
        assert_eq!(n[0].changed, vec!["a".to_string(), "b".to_string()]);
        // "a" is gone from the group after its resolution went out.
        g.on_alert(alert("b", Severity::Critical, AlertState::Resolved), 80_000);
        let n = g.due(130_000);
        assert_eq!(n[0].alerts.len(), 1);
        assert_eq!(n[0].status(), "resolved");
        assert!(g.due(10_000_000).is_empty());
        assert_eq!(g.next_due_ms(), None);
    }

    #[test]
    fn reminders_repeat_until_acknowledged() {
        let mut g = Grouper::new(settings());
        g.on_alert(alert("a", Severity::Warning, AlertState::Firing), 0);
        assert_eq!(g.due(10_000).len(), 1);
        // Re-sent updates with the same state are not changes.
        g.on_alert(alert("a", Severity::Warning, AlertState::Firing), 20_000);
        assert!(g.due(100_000).is_empty());
        let n = g.due(610_000);
        assert!(n[0].repeat);
        g.on_alert(
            alert("a", Severity::Warning, AlertState::Acknowledged),
            620_000,
        );
        let n = g.due(670_000);
        assert_eq!(n.len(), 1);
        assert!(!n[0].repeat);
        assert!(g.due(5_000_000).is_empty(), "reminded after acknowledge");
    }

    #[test]
    fn flapping_inside_group_wait_sends_nothing_and_silenced_is_suppressed() {
        let mut g = Grouper::new(settings());
        g.on_alert(alert("a", Severity::Critical, AlertState::Firing), 0);
        let r = g.on_alert(alert("a", Severity::Critical, AlertState::Resolved), 1_000);
        assert!(matches!(r, Intake::Suppressed(_)));
        assert!(g.due(10_000).is_empty());
        let r = g.on_alert(alert("b", Severity::Critical, AlertState::Silenced), 1_000);
        assert!(matches!(r, Intake::Suppressed(_)));
        assert!(g.due(20_000).is_empty());
    }

    #[test]
    fn groups_are_per_exchange_and_severity() {
        let mut g = Grouper::new(settings());
        g.on_alert(alert("a", Severity::Critical, AlertState::Firing), 0);
        g.on_alert(alert("b", Severity::Warning, AlertState::Firing), 0);
        let mut c = alert("c", Severity::Warning, AlertState::Firing);
        c.exchange = "okx".into();
        g.on_alert(c, 0);
        assert_eq!(g.due(10_000).len(), 3);
    }
}
