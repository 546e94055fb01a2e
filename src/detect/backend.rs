//! A backend of exwatch itself degraded (`backend`): a Redis it shares
//! limits, breakers or notification dedup through, or the journal. The
//! monitor goes on without it (local limiter shares, local breakers, local
//! dedup; alerts kept in memory), which is why it is an alert and not an
//! exit: what the operator loses is said in the alert. One alert per
//! component, on the pseudo-exchange `exwatch` with the component as its
//! endpoint (`exwatch/redis_limiter/backend`).
//!
//! Severity policy: the journal is `critical` (the audit trail and the
//! restore after a restart are lost while it fails); a Redis component is a
//! `warning` (this instance keeps working alone; several instances may
//! exceed a shared budget or notify twice). `alerts.severity.backend`
//! overrides both, as for every kind.

use super::{Finding, Firing, Gate, Step};
use crate::clock::ms;
use crate::model::{AlertKind, Component, Severity};
use crate::problems::Problems;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

/// The kind this detector raises.
pub const KIND: AlertKind = AlertKind::Backend;
/// The exchange name its alerts carry.
pub const EXCHANGE: &str = "exwatch";

/// `[alerts.detect.backend]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BackendSettings {
    pub enabled: bool,
    /// How long a component must stay unhealthy before it fires (a
    /// reconnect blip is not news); default 10 s.
    #[serde(with = "humantime_serde")]
    pub fire_for: Duration,
}

impl Default for BackendSettings {
    fn default() -> Self {
        BackendSettings {
            enabled: true,
            fire_for: Duration::from_secs(10),
        }
    }
}

impl BackendSettings {
    pub fn validate(&self, at: &str, p: &mut Problems) {
        use crate::problems::{check_duration, secs};
        check_duration(
            p,
            &format!("{at}.fire_for"),
            self.fire_for,
            secs(0),
            secs(3600),
        );
    }
}

#[derive(Debug, Clone, Default)]
struct State {
    healthy: bool,
    detail: String,
    since_ms: i64,
    gate: Gate,
    /// Restored after a restart and not reported on since: `Some(first
    /// tick)` once time has passed. Redis parts report at start; the
    /// journal only when it fails, so one not reported on for twice
    /// `fire_for` is taken as healthy.
    restored: Option<Option<i64>>,
}

/// One gate per component, stepped by its health reports and by the tick.
#[derive(Debug, Clone, Default)]
pub struct BackendDetector {
    s: BackendSettings,
    components: BTreeMap<Component, State>,
}

/// What the operator loses while `c` is down, for the alert's description.
fn consequence(c: Component) -> &'static str {
    match c {
        Component::RedisLimiter => {
            "rate limits fall back to this instance's local share: instances sharing the budget may exceed it together"
        }
        Component::RedisBreaker => {
            "breakers are local to this instance: others keep calling an endpoint this one has opened"
        }
        Component::RedisDedup => {
            "notification dedup is local: several instances may each send the same page"
        }
        Component::Journal => {
            "alerts and events are not journaled: no audit trail, and a restart restores nothing written meanwhile"
        }
    }
}

fn severity(c: Component) -> Severity {
    match c {
        Component::Journal => Severity::Critical,
        _ => Severity::Warning,
    }
}

impl BackendDetector {
    pub fn new(s: BackendSettings) -> Self {
        BackendDetector {
            s,
            components: BTreeMap::new(),
        }
    }

    /// Take back a `backend` alert restored after a restart (`endpoint` is
    /// the component's name); false for a name this version does not know.
    pub fn assume_firing(&mut self, endpoint: &str) -> bool {
        let Some(c) = Component::parse(endpoint) else {
            return false;
        };
        let st = self.components.entry(c).or_default();
        st.healthy = false;
        st.detail = "still failing when exwatch stopped".into();
        st.gate.assume_firing();
        st.restored = Some(None);
        true
    }

    /// A health report of `component` at `at_ms`.
    pub fn on_health(
        &mut self,
        component: Component,
        healthy: bool,
        detail: &str,
        at_ms: i64,
    ) -> Option<Finding> {
        if !self.s.enabled {
            return None;
        }
        let st = self.components.entry(component).or_insert(State {
            healthy: true,
            ..State::default()
        });
        if st.healthy != healthy {
            st.since_ms = at_ms;
        }
        st.healthy = healthy;
        st.detail = detail.to_string();
        st.restored = None;
        self.step(component, at_ms)
    }

    /// Time passes: a component down for `fire_for` fires, and a firing one
    /// is reported as still holding.
    pub fn tick(&mut self, now_ms: i64) -> Vec<Finding> {
        let comps: Vec<Component> = self.components.keys().copied().collect();
        comps
            .into_iter()
            .filter_map(|c| self.step(c, now_ms))
            .collect()
    }

    fn step(&mut self, c: Component, now_ms: i64) -> Option<Finding> {
        let fire_for = ms(self.s.fire_for);
        let st = self.components.get_mut(&c)?;
        match st.restored {
            Some(None) => st.restored = Some(Some(now_ms)),
            Some(Some(t)) if now_ms - t >= 2 * fire_for => {
                st.restored = None;
                st.healthy = true;
            }
            _ => {}
        }
        let step = st.gate.step(!st.healthy, st.healthy, now_ms, fire_for, 0);
        match step {
            Step::Quiet => None,
            Step::Cleared => Some(Finding::Cleared {
                exchange: EXCHANGE.into(),
                endpoint: Some(c.name().to_string()),
                kind: KIND,
            }),
            Step::Fired | Step::Firing => Some(Finding::Firing(Firing {
                exchange: EXCHANGE.into(),
                endpoint: Some(c.name().to_string()),
                kind: KIND,
                severity: severity(c),
                title: format!(
                    "exwatch/{}: {} unreachable: {}",
                    c.name(),
                    c.as_str(),
                    st.detail
                ),
                description: format!(
                    "{} has failed since {} UTC ({}). Monitoring goes on; {}.",
                    c.as_str(),
                    crate::clock::hms(st.since_ms),
                    st.detail,
                    consequence(c)
                ),
                metrics: BTreeMap::from([(
                    "down_for_ms".to_string(),
                    (now_ms - st.since_ms).max(0) as f64,
                )]),
            })),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fires_after_fire_for_and_clears_when_back() {
        let mut d = BackendDetector::new(BackendSettings::default());
        assert!(
            d.on_health(Component::RedisLimiter, false, "connection refused", 0)
                .is_none()
        );
        assert!(d.tick(5_000).is_empty(), "a blip is not news");
        let f = d.tick(10_000);
        assert_eq!(f.len(), 1);
        match &f[0] {
            Finding::Firing(x) => {
                assert_eq!(x.severity, Severity::Warning);
                assert_eq!(x.endpoint.as_deref(), Some("redis_limiter"));
                assert!(x.description.contains("local share"), "{}", x.description);
            }
            other => panic!("{other:?}"),
        }
        let back = d.on_health(Component::RedisLimiter, true, "ok", 12_000);
        assert!(matches!(back, Some(Finding::Cleared { .. })), "{back:?}");
        assert!(d.tick(20_000).is_empty());
    }

    #[test]
    fn the_journal_is_critical() {
        let mut d = BackendDetector::new(BackendSettings::default());
        d.on_health(Component::Journal, false, "No space left on device", 0);
        let f = d.tick(10_000);
        assert!(
            matches!(&f[0], Finding::Firing(x) if x.severity == Severity::Critical),
            "{f:?}"
        );
    }
}
