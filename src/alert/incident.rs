//! Incidents: the alerts one fault causes, correlated into one thing to page
//! about.
//!
//! A fault on one endpoint raises several symptoms (`payload:not_json`, then
//! `breaker_open`, then `error_rate`); an exchange-wide outage raises one on
//! every endpoint. Each alert that fires joins an incident, in this order:
//!
//! 1. the open exchange-wide incident of its exchange (one whose root is an
//!    exchange-wide alert such as `outage`), which keeps every per-endpoint
//!    symptom of that exchange inside it for as long as it is open;
//! 2. else the open incident of its endpoint, the newest if several; but a
//!    *cause* (any kind but the consequences `breaker_open`, `no_data` and
//!    `error_rate`, which many faults produce) joins it only while a cause
//!    of it is still open: an endpoint that is only recovering (its breaker
//!    still backing off) and then returns garbage has a new fault, and it
//!    is told as one;
//! 3. else a new incident with the alert as its root. Its id is
//!    `<root fingerprint>#<root episode>` ([`Alert::incident_id`]).
//!
//! An exchange-wide alert that starts an incident also takes in the endpoint
//! incidents of its exchange that opened less than `merge_window` ago (the
//! notifier's `group_wait`: nobody has been told about them yet), so the
//! endpoint alerts that announced the outage belong to it.
//!
//! An incident stays open while any of its symptoms is open; its title is
//! its root's (the symptom that fired first). Acknowledging any symptom
//! acknowledges the incident: every open symptom, and any that joins later.
//! The engine ([`super::engine`]) owns a [`Correlator`] and writes each
//! alert's incident into [`Alert::incident`]; the notifier groups by it.

use crate::model::Alert;
use std::collections::{BTreeMap, BTreeSet};

/// One open incident.
#[derive(Debug, Clone, PartialEq)]
pub struct OpenIncident {
    pub exchange: String,
    /// `None` for an exchange-wide incident.
    pub endpoint: Option<String>,
    /// When its first symptom fired (ms since the epoch).
    pub opened_ms: i64,
    /// Fingerprints of its open symptoms.
    pub members: BTreeSet<String>,
    /// Who acknowledged it, when (ms).
    pub acked: Option<(String, i64)>,
    /// Its open symptoms that are causes (see the module doc).
    pub causes: BTreeSet<String>,
}

/// Kinds many faults produce: they join whatever incident their endpoint
/// has open.
fn is_consequence(a: &Alert) -> bool {
    use crate::model::AlertKind;
    matches!(
        a.kind,
        AlertKind::BreakerOpen | AlertKind::NoData | AlertKind::ErrorRate
    )
}

/// Where a firing alert went.
#[derive(Debug, Clone, PartialEq)]
pub struct Joined {
    /// The incident id.
    pub incident: String,
    /// Symptoms of other incidents moved into this one (an outage taking in
    /// the endpoint incidents that announced it).
    pub moved: Vec<String>,
}

/// The pure correlator: open incidents and their members.
#[derive(Debug, Clone, Default)]
pub struct Correlator {
    open: BTreeMap<String, OpenIncident>,
    member_of: BTreeMap<String, String>,
}

impl Correlator {
    /// The incident `alert` joins as it fires (a new alert or a new episode;
    /// an alert already in an open incident stays there).
    /// `merge_window_ms`: see the module doc.
    pub fn join(&mut self, alert: &Alert, now_ms: i64, merge_window_ms: i64) -> Joined {
        let fp = alert.fingerprint.as_str();
        if let Some(id) = self.member_of.get(fp) {
            return Joined {
                incident: id.clone(),
                moved: Vec::new(),
            };
        }
        let ex = alert.exchange.as_str();
        let wide = self.find(ex, None);
        let target = match alert.endpoint.as_deref() {
            Some(ep) => wide.or_else(|| {
                self.find(ex, Some(ep)).filter(|id| {
                    is_consequence(alert) || self.open.get(id).is_some_and(|i| !i.causes.is_empty())
                })
            }),
            None => wide,
        };
        let mut moved = Vec::new();
        let id = match target {
            Some(id) => id,
            None => {
                let id = Alert::incident_id(fp, alert.occurrences);
                self.open.insert(
                    id.clone(),
                    OpenIncident {
                        exchange: ex.to_string(),
                        endpoint: alert.endpoint.clone(),
                        opened_ms: now_ms,
                        members: BTreeSet::new(),
                        acked: None,
                        causes: BTreeSet::new(),
                    },
                );
                if alert.endpoint.is_none() {
                    moved = self.take_recent(&id, ex, now_ms - merge_window_ms);
                }
                id
            }
        };
        self.add(&id, fp);
        if !is_consequence(alert) {
            if let Some(inc) = self.open.get_mut(&id) {
                inc.causes.insert(fp.to_string());
            }
        }
        Joined {
            incident: id,
            moved,
        }
    }

    /// An alert resolved: it leaves its incident, which closes when it was
    /// the last open symptom. Returns the incident it left.
    pub fn leave(&mut self, fingerprint: &str) -> Option<String> {
        let id = self.member_of.remove(fingerprint)?;
        if let Some(inc) = self.open.get_mut(&id) {
            inc.members.remove(fingerprint);
            inc.causes.remove(fingerprint);
            if inc.members.is_empty() {
                self.open.remove(&id);
            }
        }
        Some(id)
    }

    /// Acknowledge the incident of `fingerprint`; returns its open symptoms
    /// (empty when the alert is in no open incident).
    pub fn acknowledge(&mut self, fingerprint: &str, by: &str, at_ms: i64) -> Vec<String> {
        let Some(inc) = self
            .member_of
            .get(fingerprint)
            .and_then(|id| self.open.get_mut(id))
        else {
            return Vec::new();
        };
        inc.acked = Some((by.to_string(), at_ms));
        inc.members.iter().cloned().collect()
    }

    /// Withdraw the acknowledgement of open incident `id`; returns its
    /// open symptoms (empty if it is not open).
    pub fn unacknowledge(&mut self, id: &str) -> Vec<String> {
        let Some(inc) = self.open.get_mut(id) else {
            return Vec::new();
        };
        inc.acked = None;
        inc.members.iter().cloned().collect()
    }

    /// The open incident `id`.
    pub fn get(&self, id: &str) -> Option<&OpenIncident> {
        self.open.get(id)
    }

    /// Every open incident, by id.
    pub fn open(&self) -> impl Iterator<Item = (&String, &OpenIncident)> {
        self.open.iter()
    }

    /// Rebuild from the open alerts of a journal (each with its incident;
    /// one without is its own).
    pub fn restore<'a>(&mut self, alerts: impl IntoIterator<Item = &'a Alert>) {
        for a in alerts.into_iter().filter(|a| a.state.is_open()) {
            let id = a.incident_or_own();
            let root_endpoint = id
                .rsplit_once('#')
                .and_then(|(root, _)| root.split('/').nth(1))
                .map(|ep| (ep != "*").then(|| ep.to_string()));
            let inc = self.open.entry(id.clone()).or_insert_with(|| OpenIncident {
                exchange: a.exchange.clone(),
                endpoint: root_endpoint.unwrap_or_else(|| a.endpoint.clone()),
                opened_ms: a.state_at_ms,
                members: BTreeSet::new(),
                acked: None,
                causes: BTreeSet::new(),
            });
            if !is_consequence(a) {
                inc.causes.insert(a.fingerprint.clone());
            }
            inc.opened_ms = inc.opened_ms.min(a.first_seen_ms.max(a.state_at_ms));
            inc.members.insert(a.fingerprint.clone());
            self.member_of.insert(a.fingerprint.clone(), id);
        }
    }

    /// The newest open incident of the exchange (`endpoint` `None`: its
    /// exchange-wide one) or of the endpoint.
    fn find(&self, exchange: &str, endpoint: Option<&str>) -> Option<String> {
        self.open
            .iter()
            .filter(|(_, i)| i.exchange == exchange && i.endpoint.as_deref() == endpoint)
            .max_by_key(|(id, i)| (i.opened_ms, id.as_str()))
            .map(|(id, _)| id.clone())
    }

    fn add(&mut self, id: &str, fp: &str) {
        if let Some(inc) = self.open.get_mut(id) {
            inc.members.insert(fp.to_string());
        }
        self.member_of.insert(fp.to_string(), id.to_string());
    }

    /// Move the endpoint incidents of `exchange` opened at or after
    /// `since_ms` into `into`; returns the moved fingerprints.
    fn take_recent(&mut self, into: &str, exchange: &str, since_ms: i64) -> Vec<String> {
        let ids: Vec<String> = self
            .open
            .iter()
            .filter(|(id, i)| {
                id.as_str() != into
                    && i.exchange == exchange
                    && i.endpoint.is_some()
                    && i.opened_ms >= since_ms
            })
            .map(|(id, _)| id.clone())
            .collect();
        let mut moved = Vec::new();
        for id in ids {
            if let Some(old) = self.open.remove(&id) {
                if let (Some(acked), Some(target)) = (old.acked, self.open.get_mut(into)) {
                    target.acked.get_or_insert(acked);
                }
                if let Some(target) = self.open.get_mut(into) {
                    target.causes.extend(old.causes);
                }
                for fp in old.members {
                    self.add(into, &fp);
                    moved.push(fp);
                }
            }
        }
        moved
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{AlertState, Severity};

    fn alert(fp: &str) -> Alert {
        let mut parts = fp.split('/');
        let exchange = parts.next().unwrap_or_default().to_string();
        let endpoint = parts.next().filter(|e| *e != "*").map(str::to_string);
        Alert {
            fingerprint: fp.into(),
            exchange,
            endpoint,
            kind: parts.next().unwrap_or("latency").parse().unwrap(),
            severity: Severity::Critical,
            title: fp.into(),
            description: String::new(),
            metrics: BTreeMap::new(),
            first_seen_ms: 0,
            last_seen_ms: 0,
            occurrences: 1,
            state: AlertState::Firing,
            state_by: None,
            state_at_ms: 0,
            resolved_at_ms: None,
            delivery: BTreeMap::new(),
            triage: None,
            incident: None,
            episode_start_ms: None,
        }
    }

    #[test]
    fn symptoms_of_one_endpoint_share_the_first_ones_incident() {
        let mut c = Correlator::default();
        let j = c.join(&alert("okx/book/payload:not_json"), 0, 30_000);
        assert_eq!(j.incident, "okx/book/payload:not_json#1");
        assert_eq!(
            c.join(&alert("okx/book/breaker_open"), 1_000, 30_000)
                .incident,
            j.incident
        );
        // Another endpoint is another incident.
        assert_eq!(
            c.join(&alert("okx/ticker/latency"), 1_000, 30_000).incident,
            "okx/ticker/latency#1"
        );
        // The incident stays open until its last symptom resolves, and keeps
        // its root's id even when the root resolved first.
        assert_eq!(
            c.leave("okx/book/payload:not_json"),
            Some(j.incident.clone())
        );
        assert_eq!(
            c.join(&alert("okx/book/error_rate"), 2_000, 30_000)
                .incident,
            j.incident
        );
        c.leave("okx/book/breaker_open");
        c.leave("okx/book/error_rate");
        assert!(c.get(&j.incident).is_none());
        let mut again = alert("okx/book/error_rate");
        again.occurrences = 2;
        assert_eq!(
            c.join(&again, 9_000, 30_000).incident,
            "okx/book/error_rate#2"
        );
    }

    #[test]
    fn an_outage_takes_in_the_fresh_endpoint_incidents_and_keeps_later_symptoms() {
        let mut c = Correlator::default();
        c.join(&alert("okx/old/latency"), 0, 30_000);
        c.join(&alert("okx/book/error_rate"), 40_000, 30_000);
        c.join(&alert("okx/ticker/error_rate"), 41_000, 30_000);
        c.join(&alert("bin/book/error_rate"), 41_000, 30_000);
        let j = c.join(&alert("okx/*/outage"), 42_000, 30_000);
        assert_eq!(j.incident, "okx/*/outage#1");
        assert_eq!(
            j.moved,
            vec![
                "okx/book/error_rate".to_string(),
                "okx/ticker/error_rate".into()
            ]
        );
        // Opened before the window: already told, stays its own incident.
        assert!(c.get("okx/old/latency#1").is_some());
        assert!(c.get("bin/book/error_rate#1").is_some());
        // A symptom firing during the outage joins it, even on the old
        // endpoint's exchange; after the outage alert resolves, the incident
        // lasts as long as its symptoms.
        assert_eq!(
            c.join(&alert("okx/time/breaker_open"), 43_000, 30_000)
                .incident,
            j.incident
        );
        c.leave("okx/*/outage");
        assert!(c.get(&j.incident).is_some());
        assert_eq!(
            c.join(&alert("okx/time/no_data"), 50_000, 30_000).incident,
            j.incident
        );
    }

    #[test]
    fn a_new_cause_on_an_endpoint_that_is_only_recovering_is_a_new_incident() {
        let mut c = Correlator::default();
        let hang = c.join(&alert("krk/book/hung"), 0, 30_000).incident;
        assert_eq!(
            c.join(&alert("krk/book/breaker_open"), 500, 30_000)
                .incident,
            hang
        );
        // Another cause while the first is open: the same fault.
        assert_eq!(
            c.join(&alert("krk/book/latency"), 600, 30_000).incident,
            hang
        );
        c.leave("krk/book/hung");
        c.leave("krk/book/latency");
        // Only the breaker lingers: garbage now is a new fault...
        let garbage = c.join(&alert("krk/book/payload:bad_number"), 20_000, 30_000);
        assert_eq!(garbage.incident, "krk/book/payload:bad_number#1");
        // ...and the consequences that follow go to the newest incident.
        assert_eq!(
            c.join(&alert("krk/book/error_rate"), 21_000, 30_000)
                .incident,
            garbage.incident
        );
        assert_eq!(
            c.join(&alert("krk/book/breaker_open"), 21_000, 30_000)
                .incident,
            hang
        );
    }

    #[test]
    fn acknowledging_a_symptom_acknowledges_the_incident() {
        let mut c = Correlator::default();
        c.join(&alert("okx/book/payload:not_json"), 0, 30_000);
        c.join(&alert("okx/book/breaker_open"), 0, 30_000);
        let mut acked = c.acknowledge("okx/book/breaker_open", "ann", 5);
        acked.sort();
        assert_eq!(acked.len(), 2);
        let inc = c.get("okx/book/payload:not_json#1").unwrap();
        assert_eq!(inc.acked, Some(("ann".to_string(), 5)));
        assert!(c.acknowledge("okx/other/latency", "ann", 5).is_empty());
    }

    #[test]
    fn restore_rebuilds_open_incidents() {
        let mut a = alert("okx/book/error_rate");
        a.incident = Some("okx/*/outage#3".into());
        let mut b = alert("okx/ticker/latency");
        b.state = AlertState::Resolved;
        let mut c = Correlator::default();
        c.restore([&a, &b]);
        let inc = c.get("okx/*/outage#3").unwrap();
        assert_eq!(inc.endpoint, None);
        assert_eq!(inc.members.len(), 1);
        assert_eq!(
            c.join(&alert("okx/time/no_data"), 1, 30_000).incident,
            "okx/*/outage#3"
        );
    }
}
