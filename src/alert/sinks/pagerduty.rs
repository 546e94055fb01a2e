//! PagerDuty Events API v2: one event per alert that changed, with
//! `dedup_key` = the alert's fingerprint, so PagerDuty's incident follows the
//! alert: trigger when it fires, acknowledge when an operator acknowledges or
//! silences it in exwatch (or an outage inhibits it: the outage pages
//! instead), resolve when it resolves. 202 Accepted is success. Reminders
//! are not sent: PagerDuty escalates on its own.

use super::Request;
use crate::alert::notification::Notification;
use crate::model::{AlertState, Severity};
use serde_json::json;

pub const SUMMARY_MAX: usize = 1024;

fn pd_severity(s: Severity) -> &'static str {
    match s {
        Severity::Emergency | Severity::Critical => "critical",
        Severity::Warning => "warning",
        Severity::Info => "info",
    }
}

/// The events for one notification (empty for reminders).
pub fn events(n: &Notification, routing_key: &str, instance: &str) -> Vec<Request> {
    if n.repeat {
        return Vec::new();
    }
    n.alerts
        .iter()
        .filter(|a| n.changed.contains(&a.fingerprint))
        .map(|a| {
            let action = match a.state {
                AlertState::Firing => "trigger",
                // A silenced alert must stop paging too; PagerDuty ignores an
                // acknowledge for an incident it never opened.
                AlertState::Acknowledged | AlertState::Silenced => "acknowledge",
                AlertState::Resolved => "resolve",
            };
            let body = if action == "trigger" {
                json!({
                    "routing_key": routing_key,
                    "event_action": action,
                    "dedup_key": a.fingerprint,
                    "payload": {
                        "summary": super::slack::truncate(&a.title, SUMMARY_MAX),
                        "source": format!("exwatch/{instance}"),
                        "severity": pd_severity(a.severity),
                        "component": a.endpoint.as_deref().unwrap_or("*"),
                        "group": a.exchange,
                        "class": a.kind,
                        "custom_details": {
                            "description": a.description,
                            "metrics": a.metrics,
                            "occurrences": a.occurrences,
                            "first_seen_ms": a.first_seen_ms,
                            "severity": a.severity.as_str(),
                        }
                    }
                })
            } else {
                json!({
                    "routing_key": routing_key,
                    "event_action": action,
                    "dedup_key": a.fingerprint,
                })
            };
            Request {
                body,
                fingerprints: vec![a.fingerprint.clone()],
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::notification::GroupKey;
    use crate::model::Alert;

    fn notification(states: &[AlertState]) -> Notification {
        let alerts: Vec<Alert> = states
            .iter()
            .enumerate()
            .map(|(i, s)| Alert {
                fingerprint: format!("bn/ep{i}/error_rate"),
                exchange: "bn".into(),
                endpoint: Some(format!("ep{i}")),
                kind: "error_rate".parse().unwrap(),
                severity: Severity::Critical,
                title: "failing".into(),
                description: String::new(),
                metrics: Default::default(),
                first_seen_ms: 1,
                last_seen_ms: 1,
                occurrences: 1,
                state: *s,
                state_by: None,
                state_at_ms: 1,
                resolved_at_ms: None,
                delivery: Default::default(),
                triage: None,
            })
            .collect();
        Notification {
            id: "bn/critical/1@1".into(),
            group: GroupKey {
                exchange: "bn".into(),
                severity: Severity::Critical,
            },
            at_ms: 1,
            repeat: false,
            changed: alerts.iter().map(|a| a.fingerprint.clone()).collect(),
            alerts,
        }
    }

    #[test]
    fn each_state_maps_to_its_action_with_the_fingerprint_as_dedup_key() {
        let n = notification(&[
            AlertState::Firing,
            AlertState::Acknowledged,
            AlertState::Silenced,
            AlertState::Resolved,
        ]);
        let evs = events(&n, "key", "test");
        let actions: Vec<(&str, &str)> = evs
            .iter()
            .map(|r| {
                (
                    r.body["event_action"].as_str().unwrap_or_default(),
                    r.body["dedup_key"].as_str().unwrap_or_default(),
                )
            })
            .collect();
        assert_eq!(
            actions,
            [
                ("trigger", "bn/ep0/error_rate"),
                ("acknowledge", "bn/ep1/error_rate"),
                ("acknowledge", "bn/ep2/error_rate"),
                ("resolve", "bn/ep3/error_rate"),
            ]
        );
        let mut reminder = n.clone();
        reminder.repeat = true;
        assert!(events(&reminder, "key", "test").is_empty());
    }
}
