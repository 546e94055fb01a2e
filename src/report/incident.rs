//! Incidents in a report: the alert episodes grouped by the incident each
//! ended up in (the rules are in docs/alerting.md, "Incidents"), with their symptoms
//! in firing order.

use super::{AlertEpisode, ByWhom};
use crate::model::Severity;
use serde::Serialize;
use std::collections::BTreeMap;

/// One incident: what fired first, how bad it got, how long it lasted, and
/// its symptoms in the order they fired.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IncidentRow {
    /// `<root fingerprint>#<episode>`.
    pub id: String,
    pub exchange: String,
    /// `None` for an exchange-wide incident.
    pub endpoint: Option<String>,
    /// Its root symptom's title, as it fired.
    pub title: String,
    /// Highest severity of its symptoms.
    pub severity: Severity,
    pub opened_ms: i64,
    /// When its last symptom resolved; `None` while one is still open.
    pub resolved_ms: Option<i64>,
    pub duration_ms: Option<i64>,
    pub acknowledged: Option<ByWhom>,
    /// Sinks that delivered a notification about it.
    pub notified: Vec<String>,
    /// Indexes into [`Report::alerts`], in firing order.
    pub symptoms: Vec<usize>,
}

/// Group alert episodes into incidents, first opened first. Episodes from
/// a journal written before incidents (no incident recorded) are in none.
pub(super) fn incidents(alerts: &[AlertEpisode]) -> Vec<IncidentRow> {
    let mut by_id: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (i, a) in alerts.iter().enumerate() {
        if let Some(id) = &a.incident {
            by_id.entry(id.clone()).or_default().push(i);
        }
    }
    let mut out: Vec<IncidentRow> = by_id
        .into_iter()
        .filter_map(|(id, mut idx)| {
            idx.sort_by_key(|i| (alerts[*i].fired_ms, *i));
            let root_fp = id.rsplit_once('#').map_or(id.as_str(), |(r, _)| r);
            let root = idx
                .iter()
                .map(|i| &alerts[*i])
                .find(|a| a.fingerprint == root_fp)
                .or_else(|| alerts.get(*idx.first()?))?;
            let members = idx.iter().map(|i| &alerts[*i]);
            let opened_ms = members.clone().map(|a| a.fired_ms).min()?;
            let resolved_ms = members
                .clone()
                .map(|a| a.resolved_ms)
                .collect::<Option<Vec<i64>>>()
                .and_then(|v| v.into_iter().max());
            let mut notified: Vec<String> = Vec::new();
            for a in members.clone() {
                for n in &a.notified {
                    if !notified.contains(n) {
                        notified.push(n.clone());
                    }
                }
            }
            Some(IncidentRow {
                exchange: root.exchange.clone(),
                endpoint: if root_fp.split('/').nth(1) == Some("*") {
                    None
                } else {
                    root.endpoint.clone()
                },
                title: root.title.clone(),
                severity: members.clone().map(|a| a.severity).max()?,
                opened_ms,
                resolved_ms,
                duration_ms: resolved_ms.map(|r| (r - opened_ms).max(0)),
                acknowledged: members
                    .clone()
                    .filter_map(|a| a.acknowledged.clone())
                    .min_by_key(|b| b.at_ms),
                notified,
                symptoms: idx,
                id,
            })
        })
        .collect();
    out.sort_by(|a, b| a.opened_ms.cmp(&b.opened_ms).then(a.id.cmp(&b.id)));
    out
}
