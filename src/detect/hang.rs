//! Hung requests: a poll still unanswered long after the endpoint normally
//! answers. Timeouts alone would need the request to time out (and the error
//! rate two of them in a row) before anyone hears of a hang; this detector
//! hears of it while the request is still in flight.
//!
//! The worker sends [`crate::model::Event::Stalled`] once per poll when the
//! request has been in flight for `stall_after` of the poll interval. That
//! fires `hung` (a warning: the error rate raises the critical alert when the
//! requests then time out) if the endpoint is warmed up and the time in
//! flight is at least `baseline_factor` times its recent p99, so a slow but
//! steady endpoint never counts as hung. `clear_ok` prompt answers in a row
//! clear it.

use super::{Finding, Firing};
use crate::model::Sample;
use crate::model::{AlertKind, Severity};
use crate::problems::Problems;
use crate::problems::check_positive;
use crate::units::latency_ms;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

pub const KIND: AlertKind = AlertKind::Hung;

/// Answers kept for the latency baseline.
const BASELINE: usize = 64;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HangSettings {
    pub enabled: bool,
    /// Fraction of the current poll interval a request may be in flight
    /// before the worker reports it (0 < x ≤ 1).
    pub stall_after: f64,
    /// Never report sooner than this, however short the interval.
    #[serde(with = "humantime_serde")]
    pub min_in_flight: Duration,
    /// Time in flight must be at least this many times the recent p99.
    pub baseline_factor: f64,
    /// Warm-up: answers seen before a stall may fire.
    pub min_samples: usize,
    /// Prompt answers in a row that clear.
    pub clear_ok: u32,
}

impl Default for HangSettings {
    fn default() -> Self {
        HangSettings {
            enabled: true,
            stall_after: 0.5,
            min_in_flight: Duration::from_millis(200),
            baseline_factor: 5.0,
            min_samples: 5,
            clear_ok: 2,
        }
    }
}

impl HangSettings {
    pub fn validate(&self, at: &str, p: &mut Problems) {
        use crate::problems::{check_duration, ms, secs};
        check_duration(
            p,
            &format!("{at}.min_in_flight"),
            self.min_in_flight,
            ms(10),
            secs(3600),
        );
        if !(self.stall_after.is_finite() && self.stall_after > 0.0 && self.stall_after <= 1.0) {
            p.push(format!("{at}.stall_after"), "must be in (0, 1]");
        }
        check_positive(p, &format!("{at}.baseline_factor"), self.baseline_factor);
        crate::problems::check_at_most(
            p,
            &format!("{at}.baseline_factor"),
            self.baseline_factor,
            1000.0,
        );
        crate::problems::check_count(
            p,
            &format!("{at}.clear_ok"),
            self.clear_ok.into(),
            1,
            100_000,
        );
        crate::problems::check_count(
            p,
            &format!("{at}.min_samples"),
            (self.min_samples as u64).max(1),
            1,
            100_000,
        );
    }

    /// How long a request of an endpoint polled every `interval` may be in
    /// flight before its worker reports it; `None` when disabled.
    pub fn stall_deadline(&self, interval: Duration) -> Option<Duration> {
        self.enabled
            .then(|| interval.mul_f64(self.stall_after).max(self.min_in_flight))
    }
}

#[derive(Debug, Clone)]
pub struct HangDetector {
    exchange: String,
    endpoint: String,
    s: HangSettings,
    /// Latency (µs) of recent successful answers.
    recent_us: VecDeque<u64>,
    firing: bool,
    /// In flight (ms) when it last fired, to judge answers as prompt.
    fired_in_flight_ms: u64,
    ok_streak: u32,
}

impl HangDetector {
    pub fn new(exchange: &str, endpoint: &str, s: HangSettings) -> Self {
        HangDetector {
            exchange: exchange.into(),
            endpoint: endpoint.into(),
            s,
            recent_us: VecDeque::with_capacity(BASELINE),
            firing: false,
            fired_in_flight_ms: 0,
            ok_streak: 0,
        }
    }

    /// Take back a `hung` alert restored after a restart: it clears after
    /// enough prompt answers, as a live one does; always true.
    pub fn assume_firing(&mut self) -> bool {
        self.firing = true;
        self.ok_streak = 0;
        // How long the old request hung went with the old process: any
        // answer that comes back at all counts as prompt.
        self.fired_in_flight_ms = u64::MAX;
        true
    }

    pub fn is_firing(&self) -> bool {
        self.firing
    }

    fn p99_us(&self) -> Option<u64> {
        if self.recent_us.len() < self.s.min_samples.max(1) {
            return None;
        }
        let mut v: Vec<u64> = self.recent_us.iter().copied().collect();
        v.sort_unstable();
        let i = ((v.len() - 1) as f64 * 0.99).round() as usize;
        v.get(i).copied()
    }

    /// A finished poll: feeds the baseline, and clears after enough prompt answers.
    pub fn on_sample(&mut self, smp: &Sample) -> Option<Finding> {
        if !self.s.enabled {
            return None;
        }
        let ok = smp.outcome.is_ok();
        // While firing, the late answers of the hang must not become the baseline.
        if ok && !self.firing {
            if self.recent_us.len() == BASELINE {
                self.recent_us.pop_front();
            }
            self.recent_us.push_back(smp.latency_us);
        }
        if !self.firing {
            return None;
        }
        let prompt = smp.latency_us / 1000 < self.fired_in_flight_ms;
        if ok && prompt {
            self.ok_streak += 1;
        } else {
            self.ok_streak = 0;
        }
        if self.ok_streak >= self.s.clear_ok {
            self.firing = false;
            self.ok_streak = 0;
            return Some(Finding::Cleared {
                exchange: self.exchange.clone(),
                endpoint: Some(self.endpoint.clone()),
                kind: KIND,
            });
        }
        None
    }

    /// The worker reports a request in flight for `in_flight_ms`.
    pub fn on_stalled(&mut self, in_flight_ms: u64) -> Option<Finding> {
        if !self.s.enabled {
            return None;
        }
        let p99_us = self.p99_us()?;
        let p99_ms = p99_us as f64 / 1000.0;
        if (in_flight_ms as f64) < self.s.baseline_factor * p99_ms {
            return None;
        }
        self.firing = true;
        self.ok_streak = 0;
        self.fired_in_flight_ms = in_flight_ms;
        Some(Finding::Firing(Firing {
            exchange: self.exchange.clone(),
            endpoint: Some(self.endpoint.clone()),
            kind: KIND,
            severity: Severity::Warning,
            title: format!(
                "{}/{} hung: no answer after {}",
                self.exchange,
                self.endpoint,
                latency_ms(in_flight_ms as f64)
            ),
            description: format!(
                "A request has been in flight for {}; this endpoint's p99 over its \
                 last {} answers is {}. Clears after {} prompt answers.",
                latency_ms(in_flight_ms as f64),
                self.recent_us.len(),
                latency_ms(p99_ms),
                self.s.clear_ok
            ),
            metrics: BTreeMap::from([
                ("in_flight_ms".to_string(), in_flight_ms as f64),
                ("p99_ms".to_string(), p99_ms),
            ]),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::testutil::{cleared, fired, sample};
    use crate::model::Outcome;

    fn warm(d: &mut HangDetector, n: usize, latency_ms: u64) {
        for i in 0..n {
            assert!(
                d.on_sample(&sample(i as i64 * 500, latency_ms, Outcome::Ok))
                    .is_none()
            );
        }
    }

    #[test]
    fn a_stall_fires_once_warm_and_prompt_answers_clear_it() {
        let mut d = HangDetector::new("bin", "ticker", HangSettings::default());
        warm(&mut d, 10, 3);
        let f: Vec<_> = d.on_stalled(250).into_iter().collect();
        assert!(fired(&f, KIND));
        assert!(d.is_firing());
        // The hung request ends in a timeout: still hung.
        assert!(d.on_sample(&sample(6000, 1000, Outcome::Timeout)).is_none());
        // A slow answer (as long as the stall) is not prompt.
        assert!(d.on_sample(&sample(6500, 260, Outcome::Ok)).is_none());
        assert!(d.on_sample(&sample(7000, 3, Outcome::Ok)).is_none());
        let f: Vec<_> = d
            .on_sample(&sample(7500, 3, Outcome::Ok))
            .into_iter()
            .collect();
        assert!(cleared(&f, KIND));
        assert!(!d.is_firing());
    }

    #[test]
    fn no_fire_during_warm_up() {
        let mut d = HangDetector::new("bin", "ticker", HangSettings::default());
        warm(&mut d, 4, 3);
        assert!(d.on_stalled(10_000).is_none());
        warm(&mut d, 1, 3);
        assert!(d.on_stalled(10_000).is_some());
    }

    #[test]
    fn a_slow_but_steady_endpoint_is_not_hung() {
        let mut d = HangDetector::new("bin", "ticker", HangSettings::default());
        // Usually 300 ms: 1 s in flight is only about 3x p99.
        warm(&mut d, 20, 300);
        assert!(d.on_stalled(1000).is_none());
        assert!(d.on_stalled(1600).is_some());
    }

    #[test]
    fn the_hang_does_not_poison_its_own_baseline() {
        let mut d = HangDetector::new("bin", "ticker", HangSettings::default());
        warm(&mut d, 10, 3);
        assert!(d.on_stalled(250).is_some());
        // Slow answers while hung stay out of the baseline...
        for i in 0..10 {
            d.on_sample(&sample(10_000 + i * 500, 900, Outcome::Ok));
        }
        // ...so a later stall of the same length is still judged against 3 ms.
        for i in 0..3 {
            d.on_sample(&sample(20_000 + i * 500, 3, Outcome::Ok));
        }
        assert!(!d.is_firing());
        assert!(d.on_stalled(250).is_some());
    }

    #[test]
    fn the_deadline_follows_the_interval_with_a_floor() {
        let s = HangSettings::default();
        assert_eq!(
            s.stall_deadline(Duration::from_secs(2)),
            Some(Duration::from_secs(1))
        );
        assert_eq!(
            s.stall_deadline(Duration::from_millis(100)),
            Some(Duration::from_millis(200))
        );
        let off = HangSettings {
            enabled: false,
            ..HangSettings::default()
        };
        assert_eq!(off.stall_deadline(Duration::from_secs(1)), None);
    }
}
