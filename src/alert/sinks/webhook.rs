//! Generic webhook: one POST per incident notification, JSON schema
//! `exwatch.notification.v1` (documented in docs/alerting.md). Fields are only
//! ever added within a version; a breaking change gets `v2`.

use crate::alert::notification::Notification;
use serde_json::{Value, json};

pub const SCHEMA: &str = "exwatch.notification.v1";

pub fn render(n: &Notification, instance: &str) -> Value {
    let c = n.counts();
    let alerts: Vec<Value> = n
        .alerts
        .iter()
        .map(|a| {
            json!({
                "fingerprint": a.fingerprint,
                "exchange": a.exchange,
                "endpoint": a.endpoint,
                "kind": a.kind,
                "severity": a.severity.as_str(),
                "state": a.state.as_str(),
                "state_by": a.state_by,
                "state_at_ms": a.state_at_ms,
                "title": a.title,
                "description": a.description,
                "metrics": a.metrics,
                "first_seen_ms": a.first_seen_ms,
                "last_seen_ms": a.last_seen_ms,
                "resolved_at_ms": a.resolved_at_ms,
                "occurrences": a.occurrences,
                "incident": n.group.incident,
                "changed": n.changed.contains(&a.fingerprint),
            })
        })
        .collect();
    json!({
        "schema": SCHEMA,
        "instance": instance,
        "notification_id": n.id,
        "group": {"exchange": n.group.exchange, "severity": n.group.severity.as_str()},
        "incident": {
            "id": n.group.incident,
            "title": n.title,
            "severity": n.group.severity.as_str(),
            "state": n.state().as_str(),
        },
        "status": n.status(),
        "repeat": n.repeat,
        "sent_at_ms": n.at_ms,
        "summary": n.summary(),
        "counts": {
            "firing": c.firing,
            "acknowledged": c.acknowledged,
            "resolved": c.resolved,
            "total": n.alerts.len(),
        },
        "alerts": alerts,
    })
}
