//! Latency: only slowness alerts. The score is a robust z-score of the median
//! of the last few samples against the median and MAD of a rolling window (one
//! spike cannot poison a median the way it poisons a mean), and that recent
//! median must also exceed a slow EWMA baseline by a minimum margin, so microsecond
//! jitter on a very steady endpoint never pages anyone. While the alert fires
//! the baseline is frozen: a sustained slowdown does not become the new normal.

use super::{Finding, Firing, Gate, Step};
use crate::clock::ms;
use crate::model::{AlertKind, Severity};
use crate::model::{Outcome, Sample};
use crate::problems::Problems;
use crate::problems::{check_pair, check_positive};
use crate::units::latency_ms;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

pub const KIND: AlertKind = AlertKind::Latency;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LatencySettings {
    pub enabled: bool,
    /// Samples in the rolling baseline window.
    pub window: usize,
    /// Warm-up: samples in the window before the detector may fire.
    pub min_samples: usize,
    /// Robust z-score at which the endpoint counts as slow...
    pub fire_z: f64,
    /// ...and below which it counts as normal again.
    pub clear_z: f64,
    /// The slowdown must also be at least this many milliseconds over the baseline.
    pub min_excess_ms: f64,
    /// Samples whose median is the "recent" latency that is scored.
    pub recent: usize,
    /// Weight of the newest sample in the slow EWMA baseline (0..1].
    pub baseline_alpha: f64,
    /// At this many times the baseline the alert is critical rather than a warning.
    pub critical_ratio: f64,
    #[serde(rename = "for", with = "humantime_serde")]
    pub fire_for: Duration,
    #[serde(with = "humantime_serde")]
    pub clear_for: Duration,
}

impl Default for LatencySettings {
    fn default() -> Self {
        LatencySettings {
            enabled: true,
            window: 60,
            min_samples: 20,
            fire_z: 6.0,
            clear_z: 3.0,
            min_excess_ms: 50.0,
            recent: 5,
            baseline_alpha: 0.02,
            critical_ratio: 10.0,
            fire_for: Duration::from_secs(5),
            clear_for: Duration::from_secs(15),
        }
    }
}

impl LatencySettings {
    pub fn validate(&self, at: &str, p: &mut Problems) {
        use crate::problems::{DAY, check_duration};
        for (field, d, min, max) in [
            ("for", self.fire_for, Duration::ZERO, DAY),
            ("clear_for", self.clear_for, Duration::ZERO, DAY),
        ] {
            check_duration(p, &format!("{at}.{field}"), d, min, max);
        }
        crate::problems::check_count(p, &format!("{at}.window"), self.window as u64, 5, 100_000);
        for (field, v, max) in [
            ("fire_z", self.fire_z, 1000.0),
            ("clear_z", self.clear_z, 1000.0),
            ("min_excess_ms", self.min_excess_ms, 86_400_000.0),
            ("critical_ratio", self.critical_ratio, 1000.0),
        ] {
            crate::problems::check_at_most(p, &format!("{at}.{field}"), v, max);
        }
        if self.min_samples < 3 || self.min_samples > self.window {
            p.push(
                format!("{at}.min_samples"),
                "must be at least 3 and at most `window`",
            );
        }
        check_positive(p, &format!("{at}.fire_z"), self.fire_z);
        check_positive(p, &format!("{at}.clear_z"), self.clear_z);
        check_pair(p, &format!("{at}.clear_z"), self.fire_z, self.clear_z);
        if !(self.min_excess_ms.is_finite() && self.min_excess_ms >= 0.0) {
            p.push(format!("{at}.min_excess_ms"), "must be >= 0");
        }
        if self.recent == 0 || self.recent > self.window {
            p.push(
                format!("{at}.recent"),
                "must be at least 1 and at most `window`",
            );
        }
        let v = self.baseline_alpha;
        if !(v.is_finite() && v > 0.0 && v <= 1.0) {
            p.push(format!("{at}.baseline_alpha"), "must be in (0, 1]");
        }
        if !(self.critical_ratio.is_finite() && self.critical_ratio > 1.0) {
            p.push(format!("{at}.critical_ratio"), "must be greater than 1.0");
        }
    }
}

/// Median of a slice (sorted copy); `None` when empty.
pub fn median(values: &[f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

/// Median and median absolute deviation.
pub fn median_mad(values: &[f64]) -> Option<(f64, f64)> {
    let m = median(values)?;
    let dev: Vec<f64> = values.iter().map(|v| (v - m).abs()).collect();
    Some((m, median(&dev)?))
}

#[derive(Debug, Clone)]
pub struct LatencyDetector {
    exchange: String,
    endpoint: String,
    s: LatencySettings,
    window: VecDeque<f64>,
    last: VecDeque<f64>,
    baseline: Option<f64>,
    gate: Gate,
    /// Handed a restored alert with no baseline: learn one while firing.
    relearn: bool,
}

impl LatencyDetector {
    pub fn new(exchange: &str, endpoint: &str, s: LatencySettings) -> Self {
        LatencyDetector {
            exchange: exchange.into(),
            endpoint: endpoint.into(),
            window: VecDeque::with_capacity(s.window),
            s,
            last: VecDeque::new(),
            baseline: None,
            gate: Gate::default(),
            relearn: false,
        }
    }

    /// Take back a firing alert restored after a restart (see
    /// [`super::Gate::assume_firing`]); always true.
    pub fn assume_firing(&mut self) -> bool {
        self.gate.assume_firing();
        // The baseline went with the old process: learn it again from the
        // fresh answers (a live detector started now would do the same).
        self.relearn = true;
        true
    }

    pub fn is_firing(&self) -> bool {
        self.gate.is_firing()
    }

    pub fn on_sample(&mut self, smp: &Sample) -> Option<Finding> {
        if !self.s.enabled {
            return None;
        }
        // Only answers say anything about speed: a timeout is the error detector's.
        if !matches!(smp.outcome, Outcome::Ok | Outcome::Invalid { .. }) {
            return None;
        }
        let x = smp.latency_us as f64 / 1000.0;
        if self.last.len() >= self.s.recent.max(1) {
            self.last.pop_front();
        }
        self.last.push_back(x);
        let recent: Vec<f64> = self.last.iter().copied().collect();
        let fast = median(&recent).unwrap_or(x);

        let warm = self.window.len() >= self.s.min_samples;
        let mut score = None;
        if warm {
            let values: Vec<f64> = self.window.iter().copied().collect();
            if let Some((med, mad)) = median_mad(&values) {
                // A perfectly steady endpoint has MAD 0: floor the scale so a
                // 1 ms wobble is not an infinite z-score.
                let scale = (1.4826 * mad).max(1.0).max(0.05 * med);
                let z = (fast - med) / scale;
                let base = self.baseline.unwrap_or(med);
                score = Some((z, med, base, mad));
            }
        }
        let step = match score {
            Some((z, med, base, _)) => {
                let bad = z >= self.s.fire_z
                    && fast - med >= self.s.min_excess_ms
                    && fast - base >= self.s.min_excess_ms;
                let good = z < self.s.clear_z || fast - med < self.s.min_excess_ms / 2.0;
                self.gate.step(
                    bad,
                    good,
                    smp.at_ms,
                    ms(self.s.fire_for),
                    ms(self.s.clear_for),
                )
            }
            None => Step::Quiet,
        };

        // Freeze the baseline while slow, so a long slowdown keeps firing;
        // a restored alert learns one first.
        if !warm && self.relearn {
            self.window.push_back(x);
        } else if !self.gate.is_firing() && step != Step::Cleared {
            self.relearn = false;
            if self.window.len() == self.s.window {
                self.window.pop_front();
            }
            self.window.push_back(x);
            let b = self.s.baseline_alpha;
            self.baseline = Some(match self.baseline {
                Some(v) => b * x + (1.0 - b) * v,
                None => x,
            });
        }

        let (z, med, base, mad) = score?;
        match step {
            Step::Quiet => None,
            Step::Cleared => Some(Finding::Cleared {
                exchange: self.exchange.clone(),
                endpoint: Some(self.endpoint.clone()),
                kind: KIND,
            }),
            Step::Fired | Step::Firing => {
                let ratio = fast / med.max(0.001);
                let severity = if ratio >= self.s.critical_ratio {
                    Severity::Critical
                } else {
                    Severity::Warning
                };
                let metrics = BTreeMap::from([
                    ("latency_ms".to_string(), x),
                    ("recent_ms".to_string(), fast),
                    ("median_ms".to_string(), med),
                    ("mad_ms".to_string(), mad),
                    ("baseline_ms".to_string(), base),
                    ("z_score".to_string(), z),
                    ("ratio".to_string(), ratio),
                ]);
                Some(Finding::Firing(Firing {
                    exchange: self.exchange.clone(),
                    endpoint: Some(self.endpoint.clone()),
                    kind: KIND,
                    severity,
                    title: format!(
                        "{}/{} degraded: {} vs {} usual",
                        self.exchange,
                        self.endpoint,
                        latency_ms(fast),
                        latency_ms(med)
                    ),
                    description: if self.gate.is_clearing() {
                        format!(
                            "Recovering: recent latency {} is back near the median {} (robust z {z:.1}); \
                             clears after {} of normal answers.",
                            latency_ms(fast),
                            latency_ms(med),
                            humantime::format_duration(self.s.clear_for)
                        )
                    } else {
                        format!(
                            "Slow but answering: recent latency {} is {ratio:.1}x the median {} \
                             of the last {} samples (robust z {z:.1}, baseline {}).",
                            latency_ms(fast),
                            latency_ms(med),
                            self.window.len(),
                            latency_ms(base)
                        )
                    },
                    metrics,
                }))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::testutil::{cleared, fired, sample};

    fn feed(d: &mut LatencyDetector, t: &mut i64, lat: u64) -> Vec<Finding> {
        *t += 1000;
        d.on_sample(&sample(*t, lat, Outcome::Ok))
            .into_iter()
            .collect()
    }

    fn jitter(i: i64) -> u64 {
        // Deterministic jitter of ±5 ms around 100 ms.
        (100 + (i * 7 % 11) - 5) as u64
    }

    #[test]
    fn median_and_mad() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(
            median_mad(&[1.0, 1.0, 2.0, 2.0, 4.0, 6.0, 9.0]),
            Some((2.0, 1.0))
        );
        assert_eq!(median(&[]), None);
    }

    #[test]
    fn no_alert_during_warm_up_even_if_slow() {
        let mut d = LatencyDetector::new("bin", "ticker", LatencySettings::default());
        let mut t = 0;
        for i in 0..10 {
            assert!(feed(&mut d, &mut t, jitter(i)).is_empty());
        }
        for _ in 0..9 {
            assert!(
                feed(&mut d, &mut t, 2_000).is_empty(),
                "fired during warm-up"
            );
        }
    }

    #[test]
    fn a_sustained_slowdown_fires_after_for_and_clears_after_recovery() {
        let mut d = LatencyDetector::new("bin", "ticker", LatencySettings::default());
        let mut t = 0;
        for i in 0..40 {
            assert!(feed(&mut d, &mut t, jitter(i)).is_empty());
        }
        let mut first_fire = None;
        for i in 0..30 {
            let f = feed(&mut d, &mut t, 600);
            if fired(&f, KIND) && first_fire.is_none() {
                first_fire = Some(i);
                let Finding::Firing(x) = &f[0] else { panic!() };
                assert_eq!(x.severity, Severity::Warning);
                assert!(x.metrics["z_score"] >= 6.0);
            }
        }
        // 5 s `for` at 1 s polls: fires on the 5th-7th slow sample, not the first.
        let first = first_fire.expect("never fired");
        assert!((4..=7).contains(&first), "fired at {first}");
        assert!(d.is_firing(), "the baseline must not adapt to the slowdown");
        let mut clear_at = None;
        for i in 0..30 {
            let f = feed(&mut d, &mut t, jitter(i));
            if cleared(&f, KIND) {
                clear_at = Some(i);
                break;
            }
        }
        assert!(clear_at.is_some_and(|i| i >= 15), "{clear_at:?}");
    }

    #[test]
    fn being_faster_than_usual_never_fires() {
        let mut d = LatencyDetector::new("bin", "ticker", LatencySettings::default());
        let mut t = 0;
        for i in 0..40 {
            feed(&mut d, &mut t, jitter(i));
        }
        for _ in 0..60 {
            assert!(feed(&mut d, &mut t, 1).is_empty());
        }
    }

    #[test]
    fn one_spike_does_not_fire_or_poison_the_baseline() {
        let mut d = LatencyDetector::new("bin", "ticker", LatencySettings::default());
        let mut t = 0;
        for i in 0..40 {
            feed(&mut d, &mut t, jitter(i));
        }
        assert!(feed(&mut d, &mut t, 5_000).is_empty());
        for i in 0..40 {
            assert!(feed(&mut d, &mut t, jitter(i)).is_empty());
        }
    }

    #[test]
    fn no_flapping_on_a_signal_oscillating_around_the_threshold() {
        let s = LatencySettings {
            fire_for: Duration::ZERO,
            clear_for: Duration::ZERO,
            ..LatencySettings::default()
        };
        let mut d = LatencyDetector::new("bin", "ticker", s);
        let mut t = 0;
        for _ in 0..40 {
            feed(&mut d, &mut t, 100);
        }
        // Median 100, scale floor 5 ms: z 6 is at 130 ms, z 3 at 115 ms; the
        // margin of 50 ms means the fire point is 150 ms. Oscillate 140..260 so
        // the recent median swings across 150 ms without ever nearing the clear point.
        let (mut fires, mut clears) = (0, 0);
        for i in 0..200 {
            let lat = if i % 2 == 0 { 140 } else { 260 };
            let f = feed(&mut d, &mut t, lat);
            if cleared(&f, KIND) {
                clears += 1;
            }
            if d.is_firing() && fires == 0 {
                fires += 1;
            }
        }
        assert_eq!(fires, 1);
        assert_eq!(clears, 0, "flapped");
    }

    #[test]
    fn a_tenfold_slowdown_is_critical() {
        let s = LatencySettings {
            fire_for: Duration::ZERO,
            ..LatencySettings::default()
        };
        let mut d = LatencyDetector::new("bin", "ticker", s);
        let mut t = 0;
        for i in 0..40 {
            feed(&mut d, &mut t, jitter(i));
        }
        let mut sev = None;
        for _ in 0..20 {
            for f in feed(&mut d, &mut t, 3_000) {
                if let Finding::Firing(x) = f {
                    sev = Some(x.severity);
                }
            }
        }
        assert_eq!(sev, Some(Severity::Critical));
    }
}
