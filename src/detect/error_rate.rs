//! Error rate over a time window, by outcome class. Hard failures fire fast
//! (a few consecutive failures are enough), a steady trickle fires through
//! the rate; clearing needs a run of good polls that lasts `clear_for`, and
//! the window restarts after a clear so old failures cannot re-fire it.

use super::{Finding, Firing, Gate, Step};
use crate::clock::ms;
use crate::model::OutcomeClass;
use crate::model::Sample;
use crate::model::{AlertKind, Severity};
use crate::problems::Problems;
use crate::problems::{check_pair, check_ratio};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

pub const KIND: AlertKind = AlertKind::ErrorRate;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ErrorRateSettings {
    pub enabled: bool,
    #[serde(with = "humantime_serde")]
    pub window: Duration,
    /// Warm-up: polls in the window before the rate may fire.
    pub min_samples: usize,
    pub fire_rate: f64,
    pub clear_rate: f64,
    /// This many failures in a row fire at once, whatever the rate.
    pub consecutive: u32,
    /// Good polls in a row needed to clear...
    pub clear_ok: u32,
    /// ...spanning at least this long.
    #[serde(with = "humantime_serde")]
    pub clear_for: Duration,
    /// Outcome classes that count as errors here (rate limits, bans and bad
    /// payloads have detectors of their own; a CDN's block counts here, so
    /// it alerts as `blocked`, not as a ban).
    pub classes: Vec<String>,
}

impl Default for ErrorRateSettings {
    fn default() -> Self {
        ErrorRateSettings {
            enabled: true,
            window: Duration::from_secs(60),
            min_samples: 4,
            fire_rate: 0.5,
            clear_rate: 0.1,
            consecutive: 2,
            clear_ok: 3,
            clear_for: Duration::from_secs(10),
            classes: [
                "server_error",
                "client_error",
                "timeout",
                "connect",
                "blocked",
            ]
            .map(String::from)
            .to_vec(),
        }
    }
}

const CLASSES: [OutcomeClass; 8] = [
    OutcomeClass::ClientError,
    OutcomeClass::ServerError,
    OutcomeClass::RateLimited,
    OutcomeClass::Banned,
    OutcomeClass::Timeout,
    OutcomeClass::Connect,
    OutcomeClass::InvalidPayload,
    OutcomeClass::Blocked,
];

impl ErrorRateSettings {
    pub fn validate(&self, at: &str, p: &mut Problems) {
        check_ratio(p, &format!("{at}.fire_rate"), self.fire_rate);
        check_ratio(p, &format!("{at}.clear_rate"), self.clear_rate);
        check_pair(
            p,
            &format!("{at}.clear_rate"),
            self.fire_rate,
            self.clear_rate,
        );
        use crate::problems::{DAY, check_duration, ms};
        for (field, d, min, max) in [
            ("window", self.window, ms(10), DAY),
            ("clear_for", self.clear_for, Duration::ZERO, DAY),
        ] {
            check_duration(p, &format!("{at}.{field}"), d, min, max);
        }
        for (field, v) in [
            ("consecutive", u64::from(self.consecutive)),
            ("clear_ok", u64::from(self.clear_ok).max(1)),
            ("min_samples", (self.min_samples as u64).max(1)),
        ] {
            crate::problems::check_count(p, &format!("{at}.{field}"), v, 1, 100_000);
        }
        for (i, c) in self.classes.iter().enumerate() {
            if !CLASSES.iter().any(|k| k.as_str() == c) {
                let valid: Vec<&str> = CLASSES.iter().map(|k| k.as_str()).collect();
                p.push(
                    format!("{at}.classes[{i}]"),
                    format!("unknown outcome class {c:?}; valid: {}", valid.join(", ")),
                );
            }
        }
    }
}

#[derive(Debug, Clone)]
pub struct ErrorRateDetector {
    exchange: String,
    endpoint: String,
    s: ErrorRateSettings,
    /// (at_ms, failed class or None when ok)
    window: VecDeque<(i64, Option<OutcomeClass>)>,
    fail_streak: u32,
    ok_streak: u32,
    /// Polls the open breaker skipped (at_ms), within the window: not
    /// failures of the API, but not answers either; said in the text.
    skipped: VecDeque<i64>,
    /// The last poll's outcome label.
    last: String,
    gate: Gate,
}

impl ErrorRateDetector {
    pub fn new(exchange: &str, endpoint: &str, s: ErrorRateSettings) -> Self {
        ErrorRateDetector {
            exchange: exchange.into(),
            endpoint: endpoint.into(),
            s,
            window: VecDeque::new(),
            fail_streak: 0,
            ok_streak: 0,
            skipped: VecDeque::new(),
            last: String::new(),
            gate: Gate::default(),
        }
    }

    /// Take back a firing alert restored after a restart (see
    /// [`super::Gate::assume_firing`]); always true.
    pub fn assume_firing(&mut self) -> bool {
        self.gate.assume_firing();
        true
    }

    pub fn is_firing(&self) -> bool {
        self.gate.is_firing()
    }

    /// Failures in a row right now.
    pub fn fail_streak(&self) -> u32 {
        self.fail_streak
    }

    pub fn on_sample(&mut self, smp: &Sample) -> Option<Finding> {
        if !self.s.enabled {
            return None;
        }
        let class = smp.outcome.class();
        self.last = smp.outcome.label();
        self.trim(smp.at_ms);
        let counted = self.s.classes.iter().any(|c| c == class.as_str());
        let failed = if class == OutcomeClass::Ok {
            None
        } else if counted {
            Some(class)
        } else {
            // Another detector's business: neither good nor bad here.
            return self.still_firing();
        };
        if failed.is_some() {
            self.fail_streak += 1;
            self.ok_streak = 0;
        } else {
            self.ok_streak += 1;
            self.fail_streak = 0;
        }
        self.window.push_back((smp.at_ms, failed));
        let total = self.window.len();
        let failures = self.window.iter().filter(|(_, f)| f.is_some()).count();
        let rate = failures as f64 / total.max(1) as f64;
        let bad = self.fail_streak >= self.s.consecutive
            || (total >= self.s.min_samples && rate >= self.s.fire_rate && failed.is_some());
        let good =
            self.ok_streak >= self.s.clear_ok || (failed.is_none() && rate <= self.s.clear_rate);
        match self
            .gate
            .step(bad, good, smp.at_ms, 0, ms(self.s.clear_for))
        {
            Step::Quiet => None,
            Step::Cleared => {
                // Start afresh so the outage's failures cannot fire it again.
                self.window.clear();
                self.skipped.clear();
                Some(Finding::Cleared {
                    exchange: self.exchange.clone(),
                    endpoint: Some(self.endpoint.clone()),
                    kind: KIND,
                })
            }
            Step::Fired | Step::Firing => Some(self.firing(rate, failures, total)),
        }
    }

    /// A poll the open breaker skipped: counted (and said) while firing, so
    /// the alert's figures stay true during the outage the breaker hides.
    pub fn on_rejected(&mut self, at_ms: i64) -> Option<Finding> {
        if !self.s.enabled {
            return None;
        }
        self.trim(at_ms);
        self.skipped.push_back(at_ms);
        self.still_firing()
    }

    /// Drop what is older than the window.
    fn trim(&mut self, now_ms: i64) {
        let horizon = now_ms - ms(self.s.window);
        while self.window.front().is_some_and(|(t, _)| *t < horizon) {
            self.window.pop_front();
        }
        while self.skipped.front().is_some_and(|t| *t < horizon) {
            self.skipped.pop_front();
        }
    }

    fn still_firing(&self) -> Option<Finding> {
        if !self.gate.is_firing() {
            return None;
        }
        let total = self.window.len();
        let failures = self.window.iter().filter(|(_, f)| f.is_some()).count();
        Some(self.firing(failures as f64 / total.max(1) as f64, failures, total))
    }

    fn firing(&self, rate: f64, failures: usize, total: usize) -> Finding {
        let mut by_class: BTreeMap<&'static str, usize> = BTreeMap::new();
        for (_, f) in &self.window {
            if let Some(c) = f {
                *by_class.entry(c.as_str()).or_default() += 1;
            }
        }
        let mut metrics = BTreeMap::from([
            ("error_rate".to_string(), rate),
            ("failures".to_string(), failures as f64),
            ("polls".to_string(), total as f64),
            ("consecutive_failures".to_string(), self.fail_streak as f64),
            ("skipped_polls".to_string(), self.skipped.len() as f64),
        ]);
        for (c, n) in &by_class {
            metrics.insert(format!("class_{c}"), *n as f64);
        }
        let dominant = by_class
            .iter()
            .max_by_key(|(_, n)| **n)
            .map(|(c, _)| *c)
            .unwrap_or("error");
        Finding::Firing(Firing {
            exchange: self.exchange.clone(),
            endpoint: Some(self.endpoint.clone()),
            kind: KIND,
            severity: Severity::Critical,
            // A streak is the truer figure while the window still holds
            // the good polls from before the fault.
            title: if self.fail_streak >= self.s.consecutive && rate < self.s.fire_rate {
                format!(
                    "{}/{} failing: last {} polls failed ({dominant})",
                    self.exchange, self.endpoint, self.fail_streak
                )
            } else {
                format!(
                    "{}/{} failing: {} errors ({dominant})",
                    self.exchange,
                    self.endpoint,
                    crate::units::percent(rate)
                )
            },
            description: format!(
                "{failures} of the last {total} polls failed in {}s ({}){}; last: {}.",
                self.s.window.as_secs(),
                by_class
                    .iter()
                    .map(|(c, n)| format!("{c} {n}"))
                    .collect::<Vec<_>>()
                    .join(", "),
                match self.skipped.len() {
                    0 => String::new(),
                    n => format!("; breaker open, {n} polls skipped"),
                },
                self.last
            ),
            metrics,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::testutil::{cleared, fired, sample};
    use crate::model::Outcome;

    fn http(status: u16) -> Outcome {
        Outcome::Http {
            status,
            detail: "x".into(),
        }
    }

    fn run(d: &mut ErrorRateDetector, t: &mut i64, o: Outcome) -> Vec<Finding> {
        *t += 1000;
        d.on_sample(&sample(*t, 10, o)).into_iter().collect()
    }

    #[test]
    fn two_hard_failures_fire_at_once() {
        let mut d = ErrorRateDetector::new("bin", "ticker", ErrorRateSettings::default());
        let mut t = 0;
        for _ in 0..10 {
            assert!(run(&mut d, &mut t, Outcome::Ok).is_empty());
        }
        assert!(run(&mut d, &mut t, http(503)).is_empty());
        let f = run(&mut d, &mut t, Outcome::Timeout);
        assert!(fired(&f, KIND));
        let Finding::Firing(x) = &f[0] else { panic!() };
        assert_eq!(x.metrics["class_server_error"], 1.0);
        assert_eq!(x.metrics["class_timeout"], 1.0);
    }

    #[test]
    fn the_title_says_the_streak_and_the_text_counts_polls_the_breaker_skipped() {
        let mut d = ErrorRateDetector::new("okx", "book", ErrorRateSettings::default());
        let mut t = 0;
        for _ in 0..40 {
            assert!(run(&mut d, &mut t, Outcome::Ok).is_empty());
        }
        run(&mut d, &mut t, http(503));
        let f = run(&mut d, &mut t, http(503));
        let Some(Finding::Firing(x)) = f.first() else {
            panic!("{f:?}")
        };
        // 2 of 42 polls is 5%: the streak is the truer figure.
        assert_eq!(
            x.title,
            "okx/book failing: last 2 polls failed (server_error)"
        );
        // The breaker opens and skips polls: said, and counted.
        let mut last = None;
        for _ in 0..6 {
            t += 1000;
            last = d.on_rejected(t);
        }
        let Some(Finding::Firing(x)) = last else {
            panic!("{last:?}")
        };
        assert!(
            x.description.contains("breaker open, 6 polls skipped"),
            "{}",
            x.description
        );
        assert_eq!(x.metrics["skipped_polls"], 6.0);
        // Not firing: a skipped poll says nothing.
        let mut quiet = ErrorRateDetector::new("okx", "book", ErrorRateSettings::default());
        assert!(quiet.on_rejected(1_000).is_none());
    }

    #[test]
    fn cdn_blocks_fire_as_blocked() {
        let mut d = ErrorRateDetector::new("bin", "ticker", ErrorRateSettings::default());
        let mut t = 0;
        let blocked = Outcome::Exchange {
            error: crate::model::ApiError::Blocked {
                by: "CloudFront".into(),
                message: "block access from your country".into(),
            },
        };
        assert!(run(&mut d, &mut t, blocked.clone()).is_empty());
        let f = run(&mut d, &mut t, blocked);
        let Some(Finding::Firing(x)) = f.first() else {
            panic!("{f:?}")
        };
        assert!(x.title.contains("(blocked)"), "{}", x.title);
        assert_eq!(x.metrics["class_blocked"], 2.0);
    }

    #[test]
    fn warm_up_before_the_rate_fires() {
        let s = ErrorRateSettings {
            consecutive: 100,
            ..Default::default()
        };
        let mut d = ErrorRateDetector::new("bin", "ticker", s);
        let mut t = 0;
        // fail, ok, fail: rate 2/3 but only 3 samples.
        assert!(run(&mut d, &mut t, http(500)).is_empty());
        assert!(run(&mut d, &mut t, Outcome::Ok).is_empty());
        assert!(run(&mut d, &mut t, http(500)).is_empty());
        assert!(run(&mut d, &mut t, Outcome::Ok).is_empty());
        assert!(fired(&run(&mut d, &mut t, http(500)), KIND));
    }

    #[test]
    fn no_flapping_when_every_other_poll_fails() {
        let mut d = ErrorRateDetector::new("bin", "ticker", ErrorRateSettings::default());
        let mut t = 0;
        let (mut fires, mut clears) = (0, 0);
        let mut was = false;
        for i in 0..300 {
            let f = run(
                &mut d,
                &mut t,
                if i % 2 == 0 { http(502) } else { Outcome::Ok },
            );
            if d.is_firing() && !was {
                fires += 1;
            }
            if cleared(&f, KIND) {
                clears += 1;
            }
            was = d.is_firing();
        }
        assert_eq!((fires, clears), (1, 0));
    }

    #[test]
    fn recovery_clears_after_clear_for_and_does_not_refire() {
        let mut d = ErrorRateDetector::new("bin", "ticker", ErrorRateSettings::default());
        let mut t = 0;
        for _ in 0..20 {
            run(
                &mut d,
                &mut t,
                Outcome::Connect {
                    detail: "refused".into(),
                },
            );
        }
        assert!(d.is_firing());
        let mut cleared_at = None;
        for i in 0..30 {
            if cleared(&run(&mut d, &mut t, Outcome::Ok), KIND) {
                cleared_at = Some(i);
            }
        }
        // 3 good polls, then that condition holding for 10 s at 1 s polls.
        assert_eq!(cleared_at, Some(12));
        // One failure after recovery is not enough to fire again.
        assert!(!fired(&run(&mut d, &mut t, http(500)), KIND));
    }

    #[test]
    fn rate_limits_and_bad_payloads_are_not_counted_here() {
        let mut d = ErrorRateDetector::new("bin", "ticker", ErrorRateSettings::default());
        let mut t = 0;
        for _ in 0..10 {
            let f = run(
                &mut d,
                &mut t,
                Outcome::RateLimited {
                    retry_after_ms: None,
                    detail: "429".into(),
                },
            );
            assert!(f.is_empty());
        }
    }
}
