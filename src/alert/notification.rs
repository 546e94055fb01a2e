//! One message about one incident, as the notifier hands it to every sink:
//! which incident (its exchange, id, severity and title), the symptoms it
//! holds, what changed.

use crate::model::{Alert, AlertState, Severity};
use serde::Serialize;

/// Who a notification is about.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct GroupKey {
    pub exchange: String,
    /// The incident id, `<root fingerprint>#<root episode>`
    /// (see [`crate::alert::incident`]).
    pub incident: String,
    /// The incident's severity: the highest of its symptoms (silenced ones
    /// aside) since it opened. It rises, never falls, within the incident.
    pub severity: Severity,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counts {
    pub firing: usize,
    pub acknowledged: usize,
    pub resolved: usize,
}

/// One message about one incident.
#[derive(Debug, Clone, PartialEq)]
pub struct Notification {
    pub id: String,
    pub group: GroupKey,
    /// The incident's title: its root symptom's, as it fired.
    pub title: String,
    pub at_ms: i64,
    /// A reminder: nothing changed since the incident's last notification.
    pub repeat: bool,
    /// The incident's symptoms, its root first, then firing before others.
    pub alerts: Vec<Alert>,
    /// Fingerprints new or changed since the incident's previous notification.
    pub changed: Vec<String>,
}

impl Notification {
    pub fn fingerprints(&self) -> Vec<String> {
        self.alerts.iter().map(|a| a.fingerprint.clone()).collect()
    }

    pub fn counts(&self) -> Counts {
        let mut c = Counts::default();
        for a in &self.alerts {
            match a.state {
                AlertState::Firing => c.firing += 1,
                AlertState::Acknowledged => c.acknowledged += 1,
                AlertState::Resolved => c.resolved += 1,
                AlertState::Silenced => {}
            }
        }
        c
    }

    /// `firing` while anything is still open, else `resolved`.
    pub fn status(&self) -> &'static str {
        let c = self.counts();
        if c.firing + c.acknowledged > 0 {
            "firing"
        } else {
            "resolved"
        }
    }

    /// The incident's state: `firing` while any symptom fires, else
    /// `acknowledged` while any is acknowledged, else `silenced` while any is
    /// silenced, else `resolved`.
    pub fn state(&self) -> AlertState {
        incident_state(self.alerts.iter())
    }

    /// `[CRITICAL] okx/book: body is not JSON — firing, 3 alerts`: the
    /// incident's severity, title, state and how many symptoms it holds.
    pub fn summary(&self) -> String {
        let n = self.alerts.len();
        format!(
            "[{}] {} — {}{}{}",
            self.group.severity.as_str().to_uppercase(),
            self.title,
            self.state().as_str(),
            if n > 1 {
                format!(", {n} alerts")
            } else {
                String::new()
            },
            if self.repeat { " (reminder)" } else { "" }
        )
    }

    /// Same content ⇒ same signature on every instance: the dedup claim key.
    pub fn signature(&self) -> String {
        let mut s = format!(
            "{}|{}|{}|{}",
            self.group.incident,
            self.group.severity.as_str(),
            self.state().as_str(),
            if self.repeat { "repeat" } else { "change" }
        );
        for a in &self.alerts {
            s.push_str(&format!(
                "|{}={}#{}",
                a.fingerprint,
                a.state.as_str(),
                a.occurrences
            ));
        }
        s
    }
}

/// The state of an incident with these symptoms: `firing` while any fires,
/// else `acknowledged` while any is, else `silenced` while any is, else
/// `resolved`.
pub fn incident_state<'a>(alerts: impl Iterator<Item = &'a Alert>) -> AlertState {
    alerts
        .map(|a| a.state)
        .min()
        .unwrap_or(AlertState::Resolved)
}
