//! Grouping and storm control, in the manner of Alertmanager, per incident.
//!
//! Alerts are grouped by incident ([`super::incident`]: the symptoms one
//! fault causes on one endpoint, or on a whole exchange during an outage).
//! A new incident waits `group_wait` so its first symptoms go out together
//! (one below `critical` waits `group_interval`: a warning is not urgent, and
//! one that turns critical meanwhile is told once, as critical); after that, a change of the incident (its state: firing, acknowledged,
//! silenced, resolved; or a rise of its severity) goes out at most once per
//! `group_interval`; symptoms joining or leaving an incident are not changes
//! of their own and ride in its next notification. An incident still firing
//! (not acknowledged) is re-sent every `repeat_interval`. Each notification
//! carries every symptom of its incident, so a storm of a thousand failures
//! is one message saying how many alerts it stands for. Before sending, a
//! notification is claimed in the dedup store so several instances send it
//! once.
//!
//! [`Grouper`] is the pure core (time passed in); [`spawn`] runs it as a task
//! fed `Alert`s (from `Event::AlertChanged`) through a bounded channel.

use super::dedup::Claims;
use super::notification::{GroupKey, Notification, incident_state};
use super::sinks::SinkHandle;
use crate::model::Event;
use crate::model::{Alert, AlertState, Delivery, Severity};
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
        use crate::problems::{DAY, check_duration, ms, secs};
        for (field, d, min, max) in [
            ("group_wait", self.group_wait, Duration::ZERO, secs(3600)),
            ("group_interval", self.group_interval, ms(100), DAY),
            ("repeat_interval", self.repeat_interval, ms(100), 30 * DAY),
        ] {
            check_duration(p, &format!("{at}.{field}"), d, min, max);
        }
        if self.repeat_interval < self.group_interval {
            p.push(
                format!("{at}.repeat_interval"),
                "must be at least group_interval",
            );
        }
        crate::problems::check_count(p, &format!("{at}.queue"), self.queue as u64, 1, 1_000_000);
    }
}

/// What happened to an alert handed to the grouper.
#[derive(Debug, Clone, PartialEq)]
pub enum Intake {
    Grouped,
    /// Not going to be notified, and why.
    Suppressed(String),
}

#[derive(Debug, Clone)]
struct Group {
    exchange: String,
    /// When the grouper first saw it (ms).
    opened_ms: i64,
    /// The incident's symptoms by fingerprint.
    alerts: BTreeMap<String, Alert>,
    /// The incident's severity: the highest of its symptoms (silenced ones
    /// aside) since it opened.
    severity: Severity,
    /// (state, severity) the last notification said.
    notified: Option<(AlertState, Severity)>,
    changed: BTreeSet<String>,
    next_at_ms: Option<i64>,
    last_sent_ms: Option<i64>,
    seq: u64,
}

impl Group {
    fn state(&self) -> AlertState {
        incident_state(self.alerts.values())
    }

    /// Whether the incident changed since its last notification (never
    /// notified counts as changed while it is firing or acknowledged).
    fn pending(&self) -> bool {
        let st = self.state();
        match self.notified {
            None => st.is_open() && st != AlertState::Silenced,
            Some((s, sev)) => s != st || self.severity > sev,
        }
    }
}

/// The pure grouping core.
#[derive(Debug, Clone)]
pub struct Grouper {
    s: GroupingSettings,
    groups: BTreeMap<String, Group>,
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
        let key = alert.incident_or_own();
        let fp = alert.fingerprint.clone();
        // An alert moved to another incident (an outage took it in): an
        // incident that was told about it hears that it left.
        for (k, g) in self.groups.iter_mut() {
            if *k == key {
                continue;
            }
            let Some(mut gone) = g.alerts.remove(&fp) else {
                continue;
            };
            if g.notified.is_some() && gone.state.is_open() {
                gone.state = AlertState::Resolved;
                gone.state_by = Some(format!("moved to incident {key}"));
                g.alerts.insert(fp.clone(), gone);
                g.changed.insert(fp.clone());
                let at = g
                    .last_sent_ms
                    .map_or(now_ms, |t| (t + ms(self.s.group_interval)).max(now_ms));
                g.next_at_ms = Some(g.next_at_ms.map_or(at, |n| n.min(at)));
            } else {
                g.changed.remove(&fp);
            }
        }
        self.groups.retain(|_, g| !g.alerts.is_empty());
        let g = self.groups.entry(key.clone()).or_insert_with(|| Group {
            exchange: alert.exchange.clone(),
            opened_ms: now_ms,
            alerts: BTreeMap::new(),
            severity: alert.severity,
            notified: None,
            changed: BTreeSet::new(),
            next_at_ms: None,
            last_sent_ms: None,
            seq: 0,
        });
        if alert.state != AlertState::Silenced && alert.state.is_open() {
            g.severity = g.severity.max(alert.severity);
        }
        let state = alert.state;
        let silenced_by = (state == AlertState::Silenced)
            .then(|| alert.state_by.clone().unwrap_or_else(|| "silenced".into()));
        if g.alerts.get(&fp).map(|a| a.state) != Some(state) {
            g.changed.insert(fp.clone());
        }
        g.alerts.insert(fp, alert);
        if g.notified.is_none() && !g.state().is_open() {
            // Nothing told, nothing to tell.
            self.groups.remove(&key);
            return Intake::Suppressed("resolved before it was notified".into());
        }
        if g.pending() {
            let at = match g.last_sent_ms {
                None => {
                    // group_wait counts from the incident's first alert; a
                    // warning waits group_interval.
                    let wait = if g.severity >= Severity::Critical {
                        self.s.group_wait
                    } else {
                        self.s.group_wait.max(self.s.group_interval)
                    };
                    (g.opened_ms + ms(wait)).max(now_ms)
                }
                Some(t) => (t + ms(self.s.group_interval)).max(now_ms),
            };
            g.next_at_ms = Some(g.next_at_ms.map_or(at, |n| n.min(at)));
        }
        match silenced_by {
            Some(reason) => Intake::Suppressed(reason),
            None => Intake::Grouped,
        }
    }

    /// When `due` next has something to do.
    pub fn next_due_ms(&self) -> Option<i64> {
        self.groups.values().filter_map(|g| g.next_at_ms).min()
    }

    /// Notifications due at `now_ms`: at most one per incident.
    pub fn due(&mut self, now_ms: i64) -> Vec<Notification> {
        let mut out = Vec::new();
        let repeat_ms = ms(self.s.repeat_interval);
        for (key, g) in self.groups.iter_mut() {
            if g.next_at_ms.is_none_or(|t| t > now_ms) {
                continue;
            }
            let state = g.state();
            // Symptoms joining or leaving are not changes of their own.
            let change = g.pending();
            let reminder = !change
                && state == AlertState::Firing
                && g.last_sent_ms.is_some_and(|t| now_ms - t >= repeat_ms);
            if change || reminder {
                g.seq += 1;
                let root = key.rsplit_once('#').map_or(key.as_str(), |(r, _)| r);
                let mut alerts: Vec<Alert> = g.alerts.values().cloned().collect();
                alerts.sort_by(|a, b| {
                    (a.fingerprint != root)
                        .cmp(&(b.fingerprint != root))
                        .then(a.state.cmp(&b.state))
                        .then(b.last_seen_ms.cmp(&a.last_seen_ms))
                        .then(a.fingerprint.cmp(&b.fingerprint))
                });
                let title = alerts
                    .iter()
                    .find(|a| a.fingerprint == root)
                    .or(alerts.first())
                    .map(|a| a.title.clone())
                    .unwrap_or_default();
                out.push(Notification {
                    id: format!("{key}/{}@{now_ms}", g.seq),
                    group: GroupKey {
                        exchange: g.exchange.clone(),
                        incident: key.clone(),
                        severity: g.severity,
                    },
                    title,
                    at_ms: now_ms,
                    repeat: reminder,
                    alerts,
                    changed: std::mem::take(&mut g.changed).into_iter().collect(),
                });
                g.last_sent_ms = Some(now_ms);
                g.notified = Some((state, g.severity));
                // Resolved symptoms have been told: they leave the incident's
                // later notifications.
                g.alerts.retain(|_, a| a.state.is_open());
            }
            g.next_at_ms = match g.last_sent_ms {
                Some(t) if g.state() == AlertState::Firing => Some(t + repeat_ms),
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
                if let Intake::Suppressed(reason) = grouper.on_alert(alert, crate::clock::now_ms()) {
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
                let now = crate::clock::now_ms();
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
            incident: None,
            episode_start_ms: None,
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

    fn in_incident(fp: &str, incident: &str, sev: Severity, state: AlertState) -> Alert {
        let mut a = alert(fp, sev, state);
        a.incident = Some(incident.into());
        a
    }

    const INC: &str = "bin/*/outage#1";

    #[test]
    fn group_wait_then_one_notification_for_an_incident_of_many_alerts() {
        let mut g = Grouper::new(settings());
        g.on_alert(
            in_incident("bin/*/outage", INC, Severity::Emergency, AlertState::Firing),
            0,
        );
        for i in 0..50 {
            g.on_alert(
                in_incident(
                    &format!("a{i}"),
                    INC,
                    Severity::Critical,
                    AlertState::Firing,
                ),
                i * 100,
            );
        }
        assert!(g.due(9_999).is_empty());
        let n = g.due(10_000);
        assert_eq!(n.len(), 1);
        assert_eq!(n[0].alerts.len(), 51);
        assert_eq!(n[0].alerts[0].fingerprint, "bin/*/outage", "root first");
        assert_eq!(n[0].group.incident, INC);
        assert_eq!(
            n[0].summary(),
            "[EMERGENCY] bin/*/outage — firing, 51 alerts"
        );
    }

    #[test]
    fn symptoms_ride_along_and_the_incident_resolves_once_when_its_last_symptom_does() {
        let mut g = Grouper::new(settings());
        g.on_alert(
            in_incident("a", "a#1", Severity::Critical, AlertState::Firing),
            0,
        );
        assert_eq!(g.due(10_000).len(), 1);
        // A symptom joins, the root resolves: the incident still fires, so
        // nobody is told anything new.
        g.on_alert(
            in_incident("b", "a#1", Severity::Critical, AlertState::Firing),
            11_000,
        );
        g.on_alert(
            in_incident("a", "a#1", Severity::Critical, AlertState::Resolved),
            12_000,
        );
        assert!(g.due(100_000).is_empty());
        g.on_alert(
            in_incident("b", "a#1", Severity::Critical, AlertState::Resolved),
            120_000,
        );
        let n = g.due(120_000);
        assert_eq!(n.len(), 1);
        assert_eq!(n[0].status(), "resolved");
        assert_eq!(n[0].title, "a");
        assert_eq!(
            n[0].counts(),
            Counts {
                firing: 0,
                acknowledged: 0,
                resolved: 2
            }
        );
        assert!(g.due(10_000_000).is_empty());
        assert_eq!(g.next_due_ms(), None);
    }

    #[test]
    fn a_warning_waits_group_interval_and_a_rise_is_told_once() {
        let mut g = Grouper::new(settings());
        g.on_alert(
            in_incident("a", "a#1", Severity::Warning, AlertState::Firing),
            0,
        );
        assert!(g.due(10_000).is_empty(), "a warning waits group_interval");
        // It turns critical before anyone was told: one notification, critical.
        g.on_alert(
            in_incident("b", "a#1", Severity::Critical, AlertState::Firing),
            20_000,
        );
        let n = g.due(20_000);
        assert_eq!(n.len(), 1);
        assert_eq!(n[0].group.severity, Severity::Critical);
        assert_eq!(n[0].alerts.len(), 2);
        // A rise after it was told is a change, at group_interval.
        g.on_alert(
            in_incident("c", "a#1", Severity::Emergency, AlertState::Firing),
            30_000,
        );
        assert!(g.due(79_999).is_empty());
        let n = g.due(80_000);
        assert_eq!(n.len(), 1);
        assert!(!n[0].repeat);
        assert_eq!(n[0].group.severity, Severity::Emergency);
        // c resolving does not lower the incident's severity: no news.
        g.on_alert(
            in_incident("c", "a#1", Severity::Emergency, AlertState::Resolved),
            90_000,
        );
        assert!(g.due(200_000).is_empty());
        // A warning that stays a warning is told at group_interval.
        g.on_alert(
            in_incident("w", "w#1", Severity::Warning, AlertState::Firing),
            300_000,
        );
        assert!(g.due(359_999).is_empty());
        assert_eq!(g.due(360_000).len(), 1);
    }

    #[test]
    fn reminders_repeat_until_acknowledged() {
        let mut g = Grouper::new(settings());
        g.on_alert(alert("a", Severity::Critical, AlertState::Firing), 0);
        assert_eq!(g.due(10_000).len(), 1);
        // Re-sent updates with the same state are not changes.
        g.on_alert(alert("a", Severity::Critical, AlertState::Firing), 20_000);
        assert!(g.due(100_000).is_empty());
        let n = g.due(610_000);
        assert!(n[0].repeat);
        g.on_alert(
            alert("a", Severity::Critical, AlertState::Acknowledged),
            620_000,
        );
        let n = g.due(670_000);
        assert_eq!(n.len(), 1);
        assert!(!n[0].repeat);
        assert_eq!(n[0].state(), AlertState::Acknowledged);
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
    fn incidents_are_notified_apart() {
        let mut g = Grouper::new(settings());
        g.on_alert(alert("a", Severity::Critical, AlertState::Firing), 0);
        g.on_alert(alert("b", Severity::Warning, AlertState::Firing), 0);
        let mut c = alert("c", Severity::Warning, AlertState::Firing);
        c.exchange = "okx".into();
        g.on_alert(c, 0);
        assert_eq!(g.due(10_000).len(), 1, "the critical one");
        assert_eq!(g.due(60_000).len(), 2, "the warnings, at group_interval");
    }

    #[test]
    fn an_incident_told_about_a_symptom_hears_that_it_moved() {
        let mut g = Grouper::new(settings());
        g.on_alert(
            in_incident("e", "e#1", Severity::Critical, AlertState::Firing),
            0,
        );
        assert_eq!(g.due(10_000).len(), 1);
        g.on_alert(
            in_incident("e", INC, Severity::Critical, AlertState::Firing),
            20_000,
        );
        g.on_alert(
            in_incident("bin/*/outage", INC, Severity::Emergency, AlertState::Firing),
            20_000,
        );
        let n = g.due(70_000);
        assert_eq!(n.len(), 2, "{n:?}");
        let old = n.iter().find(|n| n.group.incident == "e#1").unwrap();
        assert_eq!(old.status(), "resolved");
        assert_eq!(
            old.alerts[0].state_by.as_deref(),
            Some("moved to incident bin/*/outage#1")
        );
    }
}
