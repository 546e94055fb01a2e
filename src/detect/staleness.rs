//! Staleness: no valid data for longer than allowed (`no_data`), data whose
//! exchange timestamp is too old (`stale`) and data that stopped changing
//! (`frozen`). The last two come from the adapters' validator as
//! `Outcome::Invalid { Stale | Frozen }`; this detector debounces them.

use super::{Finding, Firing, Gate, Step};
use crate::clock::ms;
use crate::model::InvalidReason;
use crate::model::{AlertKind, Severity};
use crate::model::{Outcome, Sample};
use crate::problems::Problems;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

pub const NO_DATA: AlertKind = AlertKind::NoData;
pub const STALE: AlertKind = AlertKind::Stale;
pub const FROZEN: AlertKind = AlertKind::Frozen;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StalenessSettings {
    pub enabled: bool,
    /// No valid data for this many poll intervals fires `no_data`...
    pub no_data_intervals: f64,
    /// ...but never sooner than this.
    #[serde(with = "humantime_serde")]
    pub min_no_data: Duration,
    /// Stale or frozen answers in a row before firing.
    pub fire_count: u32,
    /// Good answers in a row before clearing.
    pub clear_count: u32,
}

impl Default for StalenessSettings {
    fn default() -> Self {
        StalenessSettings {
            enabled: true,
            no_data_intervals: 3.0,
            min_no_data: Duration::from_secs(15),
            fire_count: 2,
            clear_count: 2,
        }
    }
}

impl StalenessSettings {
    pub fn validate(&self, at: &str, p: &mut Problems) {
        use crate::problems::{DAY, check_duration};
        check_duration(
            p,
            &format!("{at}.min_no_data"),
            self.min_no_data,
            Duration::ZERO,
            DAY,
        );
        if !(self.no_data_intervals.is_finite() && self.no_data_intervals >= 1.0) {
            p.push(format!("{at}.no_data_intervals"), "must be at least 1.0");
        }
        crate::problems::check_at_most(
            p,
            &format!("{at}.no_data_intervals"),
            self.no_data_intervals,
            1000.0,
        );
        for (field, v) in [
            ("fire_count", self.fire_count),
            ("clear_count", self.clear_count),
        ] {
            crate::problems::check_count(p, &format!("{at}.{field}"), v.into(), 1, 100_000);
        }
    }
}

#[derive(Debug, Clone, Default)]
struct Streak {
    bad: u32,
    good: u32,
    gate: Gate,
    last_metric: f64,
}

#[derive(Debug, Clone)]
pub struct StalenessDetector {
    exchange: String,
    endpoint: String,
    s: StalenessSettings,
    interval_ms: u64,
    last_ok_ms: i64,
    /// Unix ms until which the rate limiter holds this endpoint's polls
    /// (Retry-After, a ban, on its own or a shared tier): silence then is
    /// the hold, not a fault, and the allowance restarts when it ends.
    held_until_ms: i64,
    /// An operator forced the breaker open: polling stopped on purpose.
    paused: bool,
    no_data: Gate,
    stale: Streak,
    frozen: Streak,
    /// A restored `no_data` alert waits for a good answer before it clears.
    await_data: bool,
}

impl StalenessDetector {
    /// `now_ms`: when the endpoint was first seen; `no_data` counts from there.
    pub fn new(exchange: &str, endpoint: &str, s: StalenessSettings, now_ms: i64) -> Self {
        StalenessDetector {
            exchange: exchange.into(),
            endpoint: endpoint.into(),
            s,
            interval_ms: 5_000,
            last_ok_ms: now_ms,
            held_until_ms: 0,
            paused: false,
            no_data: Gate::default(),
            stale: Streak::default(),
            frozen: Streak::default(),
            await_data: false,
        }
    }

    /// Take back a `no_data`, `stale` or `frozen` alert restored after a
    /// restart: it clears with good answers as a live one does (`no_data`
    /// once one arrives); false for another kind.
    pub fn assume_firing(&mut self, kind: &AlertKind) -> bool {
        match kind {
            AlertKind::NoData => {
                self.no_data.assume_firing();
                self.await_data = true;
            }
            AlertKind::Stale => self.stale.gate.assume_firing(),
            AlertKind::Frozen => self.frozen.gate.assume_firing(),
            _ => return false,
        }
        true
    }

    /// The limiter holds this endpoint's polls until `until_ms` (unix ms).
    pub fn hold_until(&mut self, until_ms: i64) {
        self.held_until_ms = self.held_until_ms.max(until_ms);
    }

    /// An operator forced the breaker open (`true`) or it left that state
    /// (`false`) at `at_ms`: while paused, silence is the operator's and
    /// `no_data` neither fires nor clears; the allowance restarts at resume.
    pub fn set_paused(&mut self, paused: bool, at_ms: i64) {
        if self.paused && !paused {
            self.held_until_ms = self.held_until_ms.max(at_ms);
        }
        self.paused = paused;
    }

    pub fn set_interval(&mut self, interval_ms: u64) {
        self.interval_ms = interval_ms.max(1);
    }

    pub fn is_firing(&self) -> bool {
        self.no_data.is_firing() || self.stale.gate.is_firing() || self.frozen.gate.is_firing()
    }

    fn no_data_after_ms(&self) -> i64 {
        ((self.interval_ms as f64 * self.s.no_data_intervals) as i64).max(ms(self.s.min_no_data))
    }

    pub fn on_sample(&mut self, smp: &Sample) -> Vec<Finding> {
        if !self.s.enabled {
            return Vec::new();
        }
        let mut out = Vec::new();
        let ok = smp.outcome.is_ok();
        if ok {
            self.last_ok_ms = self.last_ok_ms.max(smp.at_ms);
            self.await_data = false;
        }
        out.extend(self.eval_no_data(smp.at_ms));
        let (is_stale, is_frozen) = match &smp.outcome {
            Outcome::Invalid {
                reason: InvalidReason::Stale { age_ms },
            } => {
                self.stale.last_metric = *age_ms as f64;
                (true, false)
            }
            Outcome::Invalid {
                reason: InvalidReason::Frozen { for_ms },
            } => {
                self.frozen.last_metric = *for_ms as f64;
                (false, true)
            }
            _ => (false, false),
        };
        for (kind, hit) in [(STALE, is_stale), (FROZEN, is_frozen)] {
            let fire_count = self.s.fire_count;
            let clear_count = self.s.clear_count;
            let st = if kind == STALE {
                &mut self.stale
            } else {
                &mut self.frozen
            };
            if hit {
                st.bad += 1;
                st.good = 0;
            } else if ok {
                st.good += 1;
                st.bad = 0;
            }
            let step = st.gate.step(
                st.bad >= fire_count,
                st.good >= clear_count,
                smp.at_ms,
                0,
                0,
            );
            let metric = st.last_metric;
            out.extend(self.finding(kind, step, metric, smp.at_ms));
        }
        out
    }

    pub fn tick(&mut self, now_ms: i64) -> Vec<Finding> {
        if !self.s.enabled {
            return Vec::new();
        }
        self.eval_no_data(now_ms).into_iter().collect()
    }

    fn eval_no_data(&mut self, now_ms: i64) -> Option<Finding> {
        let silent = now_ms - self.last_ok_ms;
        let step = if self.paused || now_ms < self.held_until_ms {
            // Held: neither news nor a recovery.
            self.no_data.step(false, false, now_ms, 0, 0)
        } else {
            let since = self.last_ok_ms.max(self.held_until_ms);
            let bad = now_ms - since > self.no_data_after_ms();
            self.no_data
                .step(bad, !bad && !self.await_data, now_ms, 0, 0)
        };
        self.finding(NO_DATA, step, silent as f64, now_ms)
    }

    fn finding(&self, kind: AlertKind, step: Step, metric: f64, _now_ms: i64) -> Option<Finding> {
        match step {
            Step::Quiet => None,
            Step::Cleared => Some(Finding::Cleared {
                exchange: self.exchange.clone(),
                endpoint: Some(self.endpoint.clone()),
                kind: kind.clone(),
            }),
            Step::Fired | Step::Firing => {
                let secs = metric / 1000.0;
                let (title, description, key) = match kind {
                    NO_DATA => (
                        format!(
                            "{}/{}: no valid data for {secs:.0}s",
                            self.exchange, self.endpoint
                        ),
                        format!(
                            "No valid answer since {secs:.0}s (allowed {:.0}s at a {:.1}s poll interval).",
                            self.no_data_after_ms() as f64 / 1000.0,
                            self.interval_ms as f64 / 1000.0
                        ),
                        "silent_ms",
                    ),
                    STALE => (
                        format!(
                            "{}/{}: stale data ({secs:.0}s old)",
                            self.exchange, self.endpoint
                        ),
                        format!(
                            "The exchange's own timestamp is {secs:.1}s old in {} answers in a row.",
                            self.stale.bad.max(self.s.fire_count)
                        ),
                        "age_ms",
                    ),
                    _ => (
                        format!(
                            "{}/{}: frozen data for {secs:.0}s",
                            self.exchange, self.endpoint
                        ),
                        format!("The data has not changed for {secs:.1}s."),
                        "frozen_ms",
                    ),
                };
                Some(Finding::Firing(Firing {
                    exchange: self.exchange.clone(),
                    endpoint: Some(self.endpoint.clone()),
                    kind,
                    severity: Severity::Critical,
                    title,
                    description,
                    metrics: BTreeMap::from([(key.to_string(), metric)]),
                }))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::testutil::{cleared, fired, sample};

    fn stale(age_ms: i64) -> Outcome {
        Outcome::Invalid {
            reason: InvalidReason::Stale { age_ms },
        }
    }

    #[test]
    fn no_data_fires_after_the_allowed_silence_and_clears_on_data() {
        let mut d = StalenessDetector::new("bin", "ticker", StalenessSettings::default(), 0);
        d.set_interval(1_000);
        assert!(d.on_sample(&sample(1_000, 5, Outcome::Ok)).is_empty());
        // Allowed: max(3 x 1 s, 15 s) = 15 s.
        assert!(d.tick(16_000).is_empty());
        assert!(fired(&d.tick(16_001), NO_DATA));
        assert!(
            fired(&d.tick(20_000), NO_DATA),
            "keeps reporting while it holds"
        );
        // Errors are not data.
        assert!(fired(
            &d.on_sample(&sample(21_000, 5, Outcome::Timeout)),
            NO_DATA
        ));
        assert!(cleared(
            &d.on_sample(&sample(22_000, 5, Outcome::Ok)),
            NO_DATA
        ));
        assert!(d.tick(23_000).is_empty());
    }

    #[test]
    fn no_data_counts_from_first_sight_when_nothing_ever_arrived() {
        let mut d = StalenessDetector::new("bin", "ticker", StalenessSettings::default(), 50_000);
        assert!(d.tick(60_000).is_empty());
        assert!(fired(&d.tick(66_000), NO_DATA));
    }

    #[test]
    fn longer_intervals_allow_longer_silence() {
        let mut d = StalenessDetector::new("bin", "ticker", StalenessSettings::default(), 0);
        d.set_interval(10_000);
        assert!(d.tick(29_000).is_empty());
        assert!(fired(&d.tick(30_001), NO_DATA));
    }

    #[test]
    fn stale_needs_two_in_a_row_and_holds_through_oscillation() {
        let mut d = StalenessDetector::new("bin", "ticker", StalenessSettings::default(), 0);
        assert!(!fired(
            &d.on_sample(&sample(1_000, 5, stale(40_000))),
            STALE
        ));
        assert!(d.on_sample(&sample(2_000, 5, Outcome::Ok)).is_empty());
        assert!(!fired(
            &d.on_sample(&sample(3_000, 5, stale(40_000))),
            STALE
        ));
        let f = d.on_sample(&sample(4_000, 5, stale(41_000)));
        assert!(fired(&f, STALE));
        // stale / ok / stale / ok ...: one good answer never clears it.
        for i in 0..50 {
            let o = if i % 2 == 0 {
                Outcome::Ok
            } else {
                stale(42_000)
            };
            let f = d.on_sample(&sample(5_000 + i * 1000, 5, o));
            assert!(!cleared(&f, STALE), "flapped at {i}");
        }
        d.on_sample(&sample(60_000, 5, Outcome::Ok));
        assert!(cleared(
            &d.on_sample(&sample(61_000, 5, Outcome::Ok)),
            STALE
        ));
    }

    #[test]
    fn frozen_fires_separately() {
        let mut d = StalenessDetector::new("bin", "ticker", StalenessSettings::default(), 0);
        let fz = Outcome::Invalid {
            reason: InvalidReason::Frozen { for_ms: 70_000 },
        };
        d.on_sample(&sample(1_000, 5, fz.clone()));
        let f = d.on_sample(&sample(2_000, 5, fz));
        assert!(fired(&f, FROZEN));
        assert!(!fired(&f, STALE));
    }
}
