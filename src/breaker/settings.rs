//! The `[breaker]` settings table ([`BreakerSettings`]), with its defaults
//! and its semantic checks; also where state lives ([`StoreKind`]) and how
//! the sliding window counts ([`WindowKind`]).

use crate::model::OutcomeClass;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Breaker settings; every field has a default, and an exchange may override
/// the whole table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BreakerSettings {
    /// Open after this many failures in a row.
    pub consecutive_failures: u32,
    /// Sliding window: `count` (last `window_size` calls) or `time` (last `window`).
    pub window_kind: WindowKind,
    pub window_size: u32,
    #[serde(with = "humantime_serde")]
    pub window: Duration,
    /// No rate-based trip before this many calls are in the window.
    pub min_calls: u32,
    /// Open when the failure rate over the window reaches this (0..=1).
    pub failure_rate: f64,
    /// Open when the share of slow calls reaches this (0..=1).
    pub slow_call_rate: f64,
    /// A call slower than this counts as slow.
    #[serde(with = "humantime_serde")]
    pub slow_call: Duration,
    /// First wait before half-open.
    #[serde(with = "humantime_serde")]
    pub open_for: Duration,
    /// The wait grows by this factor on every trip in a row...
    pub backoff: f64,
    /// ...up to this cap.
    #[serde(with = "humantime_serde")]
    pub max_open_for: Duration,
    /// Probes admitted at once while half-open.
    pub half_open_probes: u32,
    /// Successes in half-open that close the breaker.
    pub close_after: u32,
    /// A probe that has not reported after this long frees its slot.
    #[serde(with = "humantime_serde")]
    pub probe_lease: Duration,
    /// Which outcome classes count as failures. A class not listed counts as
    /// a success, except `rate_limited`, which is then ignored (neither).
    pub failure_on: Vec<OutcomeClass>,
    /// Where breaker state lives: `memory` (this process) or `redis` (shared
    /// by every instance, kept across restarts; needs a [redis] table). Only
    /// the top-level `[breaker]` value is used; per-exchange tables ignore it.
    pub store: StoreKind,
}

/// Where breaker state lives (`memory` or `redis` in the config); a
/// [`Grant`](super::Grant) also names the store that issued it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StoreKind {
    #[default]
    Memory,
    Redis,
}

/// How the sliding window counts: the last `window_size` calls (`count`)
/// or the calls of the last `window` (`time`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WindowKind {
    #[default]
    Count,
    Time,
}

impl Default for BreakerSettings {
    fn default() -> Self {
        BreakerSettings {
            consecutive_failures: 5,
            window_kind: WindowKind::Count,
            window_size: 20,
            window: Duration::from_secs(60),
            min_calls: 10,
            failure_rate: 0.5,
            slow_call_rate: 1.0,
            slow_call: Duration::from_secs(5),
            open_for: Duration::from_secs(10),
            backoff: 2.0,
            max_open_for: Duration::from_secs(300),
            half_open_probes: 1,
            close_after: 2,
            probe_lease: Duration::from_secs(30),
            failure_on: vec![
                OutcomeClass::ServerError,
                OutcomeClass::Timeout,
                OutcomeClass::Connect,
                OutcomeClass::InvalidPayload,
                OutcomeClass::Banned,
            ],
            store: StoreKind::Memory,
        }
    }
}

impl BreakerSettings {
    /// Semantic checks of one `[breaker]` table (or an endpoint's override at
    /// `at`); each problem goes to `p` under `<at>.<field>`.
    pub fn validate(&self, at: &str, p: &mut crate::problems::Problems) {
        let b = self;
        for (field, v) in [
            ("failure_rate", b.failure_rate),
            ("slow_call_rate", b.slow_call_rate),
        ] {
            if !(v.is_finite() && v > 0.0 && v <= 1.0) {
                p.push(
                    format!("{at}.{field}"),
                    "must be a fraction in (0, 1], e.g. 0.5",
                );
            }
        }
        for (field, v) in [
            ("consecutive_failures", b.consecutive_failures),
            ("window_size", b.window_size),
            ("min_calls", b.min_calls.max(1)),
            ("half_open_probes", b.half_open_probes),
            ("close_after", b.close_after),
        ] {
            crate::problems::check_count(p, &format!("{at}.{field}"), v.into(), 1, 100_000);
        }
        crate::problems::check_at_most(p, &format!("{at}.backoff"), b.backoff, 100.0);
        use crate::problems::{DAY, ms, secs};
        for (field, d, min, max) in [
            ("open_for", b.open_for, ms(10), DAY),
            ("max_open_for", b.max_open_for, ms(10), DAY),
            ("probe_lease", b.probe_lease, ms(10), secs(3600)),
            ("window", b.window, ms(10), DAY),
            ("slow_call", b.slow_call, ms(1), secs(300)),
        ] {
            crate::problems::check_duration(p, &format!("{at}.{field}"), d, min, max);
        }
        if b.max_open_for < b.open_for {
            p.push(format!("{at}.max_open_for"), "must be at least open_for");
        }
        if !(b.backoff.is_finite() && b.backoff >= 1.0) {
            p.push(format!("{at}.backoff"), "must be a factor >= 1.0, e.g. 2.0");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_parse_with_defaults_and_refuse_unknown_fields() {
        let s: BreakerSettings = toml::from_str(
            "store = \"redis\"\nwindow_kind = \"time\"\nwindow = \"30s\"\nfailure_on = [\"timeout\", \"rate_limited\"]",
        )
        .expect("valid table");
        assert_eq!(s.store, StoreKind::Redis);
        assert_eq!(
            (s.window_kind, s.window),
            (WindowKind::Time, Duration::from_secs(30))
        );
        assert_eq!(
            s.failure_on,
            vec![OutcomeClass::Timeout, OutcomeClass::RateLimited]
        );
        assert_eq!(s.open_for, BreakerSettings::default().open_for);
        let empty: BreakerSettings = toml::from_str("").expect("every field defaulted");
        assert_eq!(empty, BreakerSettings::default());
        let err =
            toml::from_str::<BreakerSettings>("open_four = \"1s\"").expect_err("typo refused");
        assert!(err.to_string().contains("open_four"), "{err}");
    }
}
