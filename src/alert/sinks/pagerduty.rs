//! PagerDuty Events API v2: one event per incident notification, with
//! `dedup_key` = the incident id (`<root fingerprint>#<episode>`), so
//! PagerDuty's incident follows exwatch's: trigger when it fires (or its
//! severity rises), acknowledge when an operator acknowledges or silences it
//! in exwatch, resolve when its last symptom resolves. The symptoms go in
//! `custom_details`. 202 Accepted is success. Reminders are not sent:
//! PagerDuty escalates on its own.

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

/// The events for one notification: one, or none for a reminder.
pub fn events(n: &Notification, routing_key: &str, instance: &str) -> Vec<Request> {
    if n.repeat {
        return Vec::new();
    }
    let action = match n.state() {
        AlertState::Firing => "trigger",
        // A silenced incident must stop paging too; PagerDuty ignores an
        // acknowledge for an incident it never opened.
        AlertState::Acknowledged | AlertState::Silenced => "acknowledge",
        AlertState::Resolved => "resolve",
    };
    let dedup_key = &n.group.incident;
    let body = if action == "trigger" {
        let root = n.alerts.first();
        let symptoms: Vec<_> = n
            .alerts
            .iter()
            .map(|a| {
                json!({
                    "fingerprint": a.fingerprint,
                    "state": a.state.as_str(),
                    "severity": a.severity.as_str(),
                    "title": a.title,
                    "description": a.description,
                    "metrics": a.metrics,
                })
            })
            .collect();
        json!({
            "routing_key": routing_key,
            "event_action": action,
            "dedup_key": dedup_key,
            "payload": {
                "summary": super::slack::truncate(&n.title, SUMMARY_MAX),
                "source": format!("exwatch/{instance}"),
                "severity": pd_severity(n.group.severity),
                "component": root.and_then(|a| a.endpoint.as_deref()).unwrap_or("*"),
                "group": n.group.exchange,
                "class": root.map(|a| a.kind.to_string()).unwrap_or_default(),
                "custom_details": {
                    "incident": dedup_key,
                    "severity": n.group.severity.as_str(),
                    "first_seen_ms": root.map(|a| a.first_seen_ms),
                    "symptoms": symptoms,
                }
            }
        })
    } else {
        json!({
            "routing_key": routing_key,
            "event_action": action,
            "dedup_key": dedup_key,
        })
    };
    vec![Request {
        body,
        fingerprints: n.fingerprints(),
    }]
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
                incident: None,
                episode_start_ms: None,
            })
            .collect();
        Notification {
            id: "bn/ep0/error_rate#1/1@1".into(),
            group: GroupKey {
                exchange: "bn".into(),
                incident: "bn/ep0/error_rate#1".into(),
                severity: Severity::Critical,
            },
            title: "failing".into(),
            at_ms: 1,
            repeat: false,
            changed: alerts.iter().map(|a| a.fingerprint.clone()).collect(),
            alerts,
        }
    }

    fn action(n: &Notification) -> Vec<(String, String)> {
        events(n, "key", "test")
            .iter()
            .map(|r| {
                (
                    r.body["event_action"].as_str().unwrap_or_default().into(),
                    r.body["dedup_key"].as_str().unwrap_or_default().into(),
                )
            })
            .collect()
    }

    #[test]
    fn one_event_per_incident_its_state_decides_the_action_and_its_id_is_the_dedup_key() {
        let id = "bn/ep0/error_rate#1".to_string();
        let cases = [
            (vec![AlertState::Firing, AlertState::Resolved], "trigger"),
            (
                vec![AlertState::Acknowledged, AlertState::Silenced],
                "acknowledge",
            ),
            (vec![AlertState::Silenced], "acknowledge"),
            (vec![AlertState::Resolved, AlertState::Resolved], "resolve"),
        ];
        for (states, want) in cases {
            let n = notification(&states);
            assert_eq!(
                action(&n),
                vec![(want.to_string(), id.clone())],
                "{states:?}"
            );
        }
        let n = notification(&[AlertState::Firing, AlertState::Firing]);
        let body = &events(&n, "key", "test")[0].body;
        assert_eq!(body["payload"]["summary"], "failing");
        assert_eq!(
            body["payload"]["custom_details"]["symptoms"]
                .as_array()
                .map(Vec::len),
            Some(2)
        );
        let mut reminder = n.clone();
        reminder.repeat = true;
        assert!(events(&reminder, "key", "test").is_empty());
    }
}
