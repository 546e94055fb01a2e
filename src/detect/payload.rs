//! Payload validity: one alert kind per validation reason from the adapters
//! (`payload:crossed_book`, `payload:not_json`, ...). Fires when a reason
//! shows up `fire_count` times among the last `window` answers, clears after
//! `clear_ok` good answers in a row. Stale and frozen belong to staleness.

use super::{Finding, Firing};
use crate::model::{AlertKind, Severity};
use crate::model::{Outcome, Sample};
use crate::problems::Problems;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, VecDeque};

pub const PREFIX: &str = "payload:";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PayloadSettings {
    pub enabled: bool,
    /// Answers looked at.
    pub window: usize,
    /// Bad answers with the same reason within the window that fire.
    pub fire_count: usize,
    /// Good answers in a row that clear.
    pub clear_ok: u32,
    /// Reasons that are critical rather than warnings (data that could mislead a trader).
    pub critical: Vec<String>,
}

impl Default for PayloadSettings {
    fn default() -> Self {
        PayloadSettings {
            enabled: true,
            window: 5,
            fire_count: 2,
            clear_ok: 3,
            // Data that lies or is garbage a consumer would take in (the
            // severity policy in docs/alerting.md); a price jump may be a
            // real move and an empty book an idle market: warnings.
            critical: [
                "crossed_book",
                "locked_book",
                "non_positive",
                "not_json",
                "empty_body",
                "schema",
                "bad_number",
                "unsorted_levels",
                "duplicate_level",
                "sequence_backwards",
                "wrong_instrument",
            ]
            .map(String::from)
            .to_vec(),
        }
    }
}

impl PayloadSettings {
    pub fn validate(&self, at: &str, p: &mut Problems) {
        crate::problems::check_count(p, &format!("{at}.window"), self.window as u64, 1, 100_000);
        if self.fire_count == 0 || self.fire_count > self.window {
            p.push(
                format!("{at}.fire_count"),
                "must be at least 1 and at most `window`",
            );
        }
        crate::problems::check_count(
            p,
            &format!("{at}.clear_ok"),
            self.clear_ok.into(),
            1,
            100_000,
        );
    }
}

#[derive(Debug, Clone)]
pub struct PayloadDetector {
    exchange: String,
    endpoint: String,
    s: PayloadSettings,
    /// Reason name of each recent answer (None when valid or not an answer).
    recent: VecDeque<Option<&'static str>>,
    ok_streak: u32,
    /// Firing reasons → last detail.
    firing: BTreeMap<&'static str, String>,
}

/// Whether `reason` is an [`crate::model::InvalidReason`] name this version knows.
pub fn knows(reason: &str) -> bool {
    use strum::VariantNames;
    crate::model::InvalidReason::VARIANTS.contains(&reason)
}

impl PayloadDetector {
    pub fn new(exchange: &str, endpoint: &str, s: PayloadSettings) -> Self {
        PayloadDetector {
            exchange: exchange.into(),
            endpoint: endpoint.into(),
            recent: VecDeque::with_capacity(s.window),
            s,
            ok_streak: 0,
            firing: BTreeMap::new(),
        }
    }

    /// Take back a `payload:<reason>` alert restored after a restart: it
    /// clears after `clear_ok` good answers, as a live one does; false for a
    /// reason this version does not know.
    pub fn assume_firing(&mut self, reason: &str) -> bool {
        use strum::VariantNames;
        match crate::model::InvalidReason::VARIANTS
            .iter()
            .find(|n| **n == reason)
        {
            Some(name) => {
                self.firing
                    .entry(name)
                    .or_insert_with(|| "restored after a restart".into());
                self.ok_streak = 0;
                true
            }
            None => false,
        }
    }

    pub fn on_sample(&mut self, smp: &Sample) -> Vec<Finding> {
        if !self.s.enabled {
            return Vec::new();
        }
        let reason = match &smp.outcome {
            Outcome::Invalid { reason } => {
                let n = reason.name();
                if n == "stale" || n == "frozen" {
                    None
                } else {
                    Some((n, reason.to_string()))
                }
            }
            _ => None,
        };
        if reason.is_none() && !smp.outcome.is_ok() {
            // An error is no answer at all: it says nothing about payloads.
            return self.report_firing(smp);
        }
        if self.recent.len() == self.s.window {
            self.recent.pop_front();
        }
        self.recent.push_back(reason.as_ref().map(|(n, _)| *n));
        if reason.is_some() {
            self.ok_streak = 0;
        } else {
            self.ok_streak += 1;
        }
        let mut out = Vec::new();
        if let Some((name, detail)) = reason {
            let count = self.recent.iter().filter(|r| **r == Some(name)).count();
            if count >= self.s.fire_count || self.firing.contains_key(name) {
                self.firing.insert(name, detail);
            }
        }
        if self.ok_streak >= self.s.clear_ok {
            for name in std::mem::take(&mut self.firing).into_keys() {
                out.push(Finding::Cleared {
                    exchange: self.exchange.clone(),
                    endpoint: Some(self.endpoint.clone()),
                    kind: AlertKind::Payload(name.to_string()),
                });
            }
        }
        out.extend(self.report_firing(smp));
        out
    }

    fn report_firing(&self, smp: &Sample) -> Vec<Finding> {
        self.firing
            .iter()
            .map(|(name, detail)| {
                let count = self.recent.iter().filter(|r| **r == Some(*name)).count();
                let severity = if self.s.critical.iter().any(|c| c == name) {
                    Severity::Critical
                } else {
                    Severity::Warning
                };
                Finding::Firing(Firing {
                    exchange: self.exchange.clone(),
                    endpoint: Some(self.endpoint.clone()),
                    kind: AlertKind::Payload(name.to_string()),
                    severity,
                    title: format!("{}/{}: bad payload ({name})", self.exchange, self.endpoint),
                    description: format!(
                        "{count} of the last {} answers failed validation: {detail} (last poll: {}).",
                        self.recent.len(),
                        smp.outcome.label()
                    ),
                    metrics: BTreeMap::from([
                        ("bad_answers".to_string(), count as f64),
                        ("window".to_string(), self.recent.len() as f64),
                    ]),
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::testutil::{cleared, fired, sample};
    use crate::model::InvalidReason;

    fn crossed() -> Outcome {
        Outcome::Invalid {
            reason: InvalidReason::CrossedBook {
                bid: 101.0,
                ask: 100.0,
            },
        }
    }

    #[test]
    fn one_bad_answer_is_not_enough_two_are() {
        let mut d = PayloadDetector::new("bin", "book", PayloadSettings::default());
        assert!(d.on_sample(&sample(1, 5, Outcome::Ok)).is_empty());
        assert!(d.on_sample(&sample(2, 5, crossed())).is_empty());
        assert!(d.on_sample(&sample(3, 5, Outcome::Ok)).is_empty());
        let f = d.on_sample(&sample(4, 5, crossed()));
        assert!(fired(&f, "payload:crossed_book"));
        let Finding::Firing(x) = &f[0] else { panic!() };
        assert_eq!(x.severity, Severity::Critical);
    }

    #[test]
    fn each_reason_is_its_own_alert() {
        let mut d = PayloadDetector::new("bin", "book", PayloadSettings::default());
        let nj = Outcome::Invalid {
            reason: InvalidReason::NotJson {
                detail: "<html>".into(),
            },
        };
        d.on_sample(&sample(1, 5, crossed()));
        d.on_sample(&sample(2, 5, nj.clone()));
        let f = d.on_sample(&sample(3, 5, nj));
        assert!(fired(&f, "payload:not_json"));
        assert!(!fired(&f, "payload:crossed_book"));
    }

    #[test]
    fn stale_and_frozen_are_not_payload_alerts() {
        let mut d = PayloadDetector::new("bin", "book", PayloadSettings::default());
        for i in 0..5 {
            let o = Outcome::Invalid {
                reason: InvalidReason::Stale { age_ms: 99_000 },
            };
            assert!(d.on_sample(&sample(i, 5, o)).is_empty());
        }
    }

    #[test]
    fn oscillating_bad_good_does_not_flap_and_three_good_clear() {
        let mut d = PayloadDetector::new("bin", "book", PayloadSettings::default());
        let mut clears = 0;
        for i in 0..100 {
            let o = if i % 3 == 0 { crossed() } else { Outcome::Ok };
            if cleared(&d.on_sample(&sample(i, 5, o)), "payload:crossed_book") {
                clears += 1;
            }
        }
        assert_eq!(clears, 0);
        d.on_sample(&sample(200, 5, Outcome::Ok));
        assert!(
            d.on_sample(&sample(201, 5, Outcome::Ok))
                .iter()
                .all(|f| f.is_firing())
        );
        let f = d.on_sample(&sample(202, 5, Outcome::Ok));
        assert!(cleared(&f, "payload:crossed_book"), "{f:?}");
    }
}
