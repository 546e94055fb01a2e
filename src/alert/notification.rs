//! One message about one group of alerts, as the notifier hands it to every
//! sink: who it is about (exchange, severity), which alerts, what changed.

use crate::model::{Alert, AlertState, Severity};
use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct GroupKey {
    pub exchange: String,
    pub severity: Severity,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counts {
    pub firing: usize,
    pub acknowledged: usize,
    pub resolved: usize,
}

/// One message about one group.
#[derive(Debug, Clone, PartialEq)]
pub struct Notification {
    pub id: String,
    pub group: GroupKey,
    pub at_ms: i64,
    /// A reminder: nothing changed since the last notification.
    pub repeat: bool,
    /// Every alert of the group, firing first.
    pub alerts: Vec<Alert>,
    /// Fingerprints new or changed since the group's previous notification.
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

    /// `[CRITICAL] binance: 3 firing, 1 resolved` — how many alerts it stands for.
    pub fn summary(&self) -> String {
        let c = self.counts();
        let mut parts = Vec::new();
        if c.firing > 0 {
            parts.push(format!("{} firing", c.firing));
        }
        if c.acknowledged > 0 {
            parts.push(format!("{} acknowledged", c.acknowledged));
        }
        if c.resolved > 0 {
            parts.push(format!("{} resolved", c.resolved));
        }
        format!(
            "[{}] {}: {}{}",
            self.group.severity.as_str().to_uppercase(),
            self.group.exchange,
            parts.join(", "),
            if self.repeat { " (reminder)" } else { "" }
        )
    }

    /// Same content ⇒ same signature on every instance: the dedup claim key.
    pub fn signature(&self) -> String {
        let mut s = format!(
            "{}|{}|{}",
            self.group.exchange,
            self.group.severity.as_str(),
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
