//! Poll pacing (adaptive polling): the next poll interval of one endpoint,
//! within bounds. It sits beside [`crate::probe`], whose worker loop is its
//! only user; it is not a detector (it raises nothing). Its settings keep
//! their config key `alerts.detect.adaptive`.
//!
//! Faster while the endpoint is unhealthy (to see recovery and confirm faults
//! quickly) or the price moves fast; slower after a quiet stretch; never
//! faster than the configured interval when the rate budget runs low, and
//! slower at once on a 429 or a ban. Pure: the worker feeds samples and emits
//! `Event::PollInterval` when the answer changes.

use crate::model::{Outcome, Sample};
use crate::problems::Problems;
use crate::problems::check_positive;
use serde::{Deserialize, Serialize};
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdaptiveSettings {
    pub enabled: bool,
    /// Interval × this while unhealthy or moving fast (< 1).
    pub fast_factor: f64,
    /// Interval × this after a quiet stretch (> 1).
    pub slow_factor: f64,
    /// Never poll more often than this, whatever the factors say.
    #[serde(with = "humantime_serde")]
    pub min_interval: Duration,
    /// A price change faster than this many percent per minute counts as fast.
    pub fast_move_pct_per_min: f64,
    /// Healthy, still answers in a row before slowing down.
    pub quiet_after: u32,
    /// Below this share of the rate budget left, never poll faster than configured.
    pub budget_floor: f64,
}

impl Default for AdaptiveSettings {
    fn default() -> Self {
        AdaptiveSettings {
            enabled: true,
            fast_factor: 0.5,
            slow_factor: 2.0,
            min_interval: Duration::from_millis(500),
            fast_move_pct_per_min: 0.5,
            quiet_after: 20,
            budget_floor: 0.3,
        }
    }
}

impl AdaptiveSettings {
    pub fn validate(&self, at: &str, p: &mut Problems) {
        use crate::problems::{DAY, check_duration, ms};
        check_duration(
            p,
            &format!("{at}.min_interval"),
            self.min_interval,
            ms(10),
            DAY,
        );
        if !(self.fast_factor.is_finite() && self.fast_factor > 0.0 && self.fast_factor <= 1.0) {
            p.push(format!("{at}.fast_factor"), "must be in (0, 1]");
        }
        if !(self.slow_factor.is_finite() && self.slow_factor >= 1.0 && self.slow_factor <= 100.0) {
            p.push(format!("{at}.slow_factor"), "must be between 1.0 and 100.0");
        }
        check_positive(
            p,
            &format!("{at}.fast_move_pct_per_min"),
            self.fast_move_pct_per_min,
        );
        crate::problems::check_ratio(p, &format!("{at}.budget_floor"), self.budget_floor);
        crate::problems::check_at_most(
            p,
            &format!("{at}.fast_move_pct_per_min"),
            self.fast_move_pct_per_min,
            100_000.0,
        );
        crate::problems::check_count(
            p,
            &format!("{at}.quiet_after"),
            self.quiet_after.into(),
            0,
            100_000,
        );
    }
}

/// Why the interval is what it is (for the UI and logs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Pace {
    Normal,
    Unhealthy,
    FastMarket,
    Quiet,
    BackingOff,
    LowBudget,
}

#[derive(Debug, Clone)]
pub struct Adaptive {
    s: AdaptiveSettings,
    base_ms: u64,
    current_ms: u64,
    pace: Pace,
    quiet: u32,
    last_price: Option<(i64, f64)>,
}

impl Adaptive {
    pub fn new(base: Duration, s: AdaptiveSettings) -> Self {
        let base_ms = (base.as_millis() as u64).max(1);
        Adaptive {
            s,
            base_ms,
            current_ms: base_ms,
            pace: Pace::Normal,
            quiet: 0,
            last_price: None,
        }
    }

    pub fn interval(&self) -> Duration {
        Duration::from_millis(self.current_ms)
    }

    pub fn pace(&self) -> Pace {
        self.pace
    }

    /// Feed one sample; `budget_left` is the share of the tightest rate-limit
    /// tier still available (0..1), when known. Returns the new interval when
    /// it changed.
    pub fn observe(&mut self, smp: &Sample, budget_left: Option<f64>) -> Option<Duration> {
        if !self.s.enabled {
            return None;
        }
        let base = self.base_ms as f64;
        // Never slower than configured, even when min_interval is above it.
        let fast = (base * self.s.fast_factor)
            .max(self.s.min_interval.as_millis() as f64)
            .min(base);
        let slow = base * self.s.slow_factor;
        let moving = match (smp.price, self.last_price) {
            (Some(p), Some((t0, p0))) if p0 > 0.0 && smp.at_ms > t0 => {
                let pct = ((p - p0) / p0).abs() * 100.0;
                let per_min = pct * 60_000.0 / (smp.at_ms - t0) as f64;
                per_min >= self.s.fast_move_pct_per_min
            }
            _ => false,
        };
        if let Some(p) = smp.price.filter(|p| p.is_finite() && *p > 0.0) {
            self.last_price = Some((smp.at_ms, p));
        }
        let (mut target, mut pace) = match &smp.outcome {
            Outcome::RateLimited { .. } | Outcome::Banned { .. } => {
                self.quiet = 0;
                (slow, Pace::BackingOff)
            }
            o if !o.is_ok() => {
                self.quiet = 0;
                (fast, Pace::Unhealthy)
            }
            _ if moving => {
                self.quiet = 0;
                (fast, Pace::FastMarket)
            }
            _ => {
                self.quiet = self.quiet.saturating_add(1);
                if self.quiet >= self.s.quiet_after {
                    (slow, Pace::Quiet)
                } else {
                    (base, Pace::Normal)
                }
            }
        };
        if let Some(left) = budget_left {
            if left < self.s.budget_floor / 3.0 {
                target = target.max(slow);
                pace = Pace::LowBudget;
            } else if left < self.s.budget_floor && target < base {
                target = base;
                pace = Pace::LowBudget;
            }
        }
        let target = target.clamp(fast, slow).round() as u64;
        self.pace = pace;
        if target != self.current_ms {
            self.current_ms = target;
            Some(Duration::from_millis(target))
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::testutil::sample;

    fn priced(at: i64, price: f64, o: Outcome) -> Sample {
        let mut s = sample(at, 5, o);
        s.price = Some(price);
        s
    }

    #[test]
    fn a_configured_interval_below_min_interval_is_never_slowed_by_faults() {
        // 100 ms polls with the default 500 ms floor: "faster" must not mean slower.
        let mut a = Adaptive::new(Duration::from_millis(100), AdaptiveSettings::default());
        a.observe(&priced(0, 100.0, Outcome::Ok), None);
        a.observe(&priced(100, 100.0, Outcome::Timeout), None);
        assert!(
            a.interval() <= Duration::from_millis(100),
            "{:?}",
            a.interval()
        );
        assert_eq!(a.pace(), Pace::Unhealthy);
    }

    #[test]
    fn faster_when_unhealthy_back_to_base_then_slower_when_quiet() {
        let mut a = Adaptive::new(Duration::from_secs(2), AdaptiveSettings::default());
        assert_eq!(a.observe(&priced(0, 100.0, Outcome::Ok), None), None);
        assert_eq!(
            a.observe(&priced(2_000, 100.0, Outcome::Timeout), None),
            Some(Duration::from_secs(1))
        );
        assert_eq!(a.pace(), Pace::Unhealthy);
        assert_eq!(
            a.observe(&priced(3_000, 100.0, Outcome::Ok), None),
            Some(Duration::from_secs(2))
        );
        let mut changed = None;
        for i in 0..30 {
            if let Some(d) = a.observe(&priced(5_000 + i * 2000, 100.0, Outcome::Ok), None) {
                changed = Some((i, d));
            }
        }
        assert_eq!(changed, Some((18, Duration::from_secs(4))));
        assert_eq!(a.pace(), Pace::Quiet);
    }

    #[test]
    fn fast_market_speeds_up_but_not_on_a_low_budget() {
        let mut a = Adaptive::new(Duration::from_secs(2), AdaptiveSettings::default());
        a.observe(&priced(0, 100.0, Outcome::Ok), Some(1.0));
        // 1% in 2 s = 30%/min.
        assert_eq!(
            a.observe(&priced(2_000, 101.0, Outcome::Ok), Some(1.0)),
            Some(Duration::from_secs(1))
        );
        assert_eq!(
            a.observe(&priced(3_000, 102.0, Outcome::Ok), Some(0.2)),
            Some(Duration::from_secs(2))
        );
        assert_eq!(a.pace(), Pace::LowBudget);
        assert_eq!(
            a.observe(&priced(5_000, 103.0, Outcome::Ok), Some(0.05)),
            Some(Duration::from_secs(4))
        );
    }

    #[test]
    fn a_429_slows_down_and_the_floor_holds() {
        let s = AdaptiveSettings {
            min_interval: Duration::from_millis(800),
            ..AdaptiveSettings::default()
        };
        let mut a = Adaptive::new(Duration::from_secs(1), s);
        let r = a.observe(
            &sample(
                0,
                5,
                Outcome::RateLimited {
                    retry_after_ms: None,
                    detail: "429".into(),
                },
            ),
            None,
        );
        assert_eq!(r, Some(Duration::from_secs(2)));
        let r = a.observe(&sample(1, 5, Outcome::Timeout), None);
        assert_eq!(r, Some(Duration::from_millis(800)));
    }
}
