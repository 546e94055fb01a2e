//! The event stream every part speaks ([`Event`]), the operator's requests
//! ([`Command`]) and the backends whose health is reported ([`Component`]).
//!
//! Times inside events are unix ms taken at the edges, so replaying a journal
//! yields the same snapshots.

use super::alert::{Alert, Delivery, Triage, TriageTotals};
use super::breaker::{BreakerState, Transition};
use super::ids::{EndpointKind, ExchangeKind};
use super::limits::{Tier, TierFill};
use super::outcome::Sample;
use serde::{Deserialize, Serialize};

/// Which backend a health event is about.
///
/// It has two names, both declared on the variant: the snake_case
/// [`name`](Self::name), one table for serde and strum, and the label the
/// dashboard's header shows ([`as_str`](Self::as_str), the strum `message`).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    strum::IntoStaticStr,
    strum::EnumMessage,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum Component {
    #[strum(message = "redis (limiter)")]
    RedisLimiter,
    #[strum(message = "redis (breaker)")]
    RedisBreaker,
    /// Cross-instance dedup of notifications (`alerts.dedup.backend = "redis"`).
    #[strum(message = "redis (dedup)")]
    RedisDedup,
    #[strum(message = "journal")]
    Journal,
}

impl Component {
    /// The header's label: `redis (limiter)`, `redis (breaker)`,
    /// `redis (dedup)`, `journal`.
    pub fn as_str(self) -> &'static str {
        strum::EnumMessage::get_message(&self).unwrap_or(self.name())
    }

    /// Stable snake_case name, as in JSON and the `component` metric label:
    /// `redis_limiter`, `redis_breaker`, `redis_dedup`, `journal`.
    pub fn name(self) -> &'static str {
        self.into()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// Describes an endpoint once at start, so views know it before its first sample.
    Watching {
        exchange: String,
        exchange_kind: ExchangeKind,
        endpoint: String,
        kind: EndpointKind,
        url: String,
        interval_ms: u64,
    },
    Sample(Sample),
    /// A request has been in flight for `in_flight_ms` and is still
    /// unanswered (sent once per poll; its `Sample` follows when it ends).
    Stalled {
        exchange: String,
        endpoint: String,
        at_ms: i64,
        in_flight_ms: u64,
    },
    /// A worker waited for the rate limiter before polling.
    LimiterWaited {
        exchange: String,
        endpoint: String,
        at_ms: i64,
        waited_ms: u64,
        tier: Tier,
    },
    LimiterFill {
        exchange: String,
        endpoint: String,
        at_ms: i64,
        tiers: Vec<TierFill>,
    },
    BreakerChanged {
        exchange: String,
        endpoint: String,
        at_ms: i64,
        transition: Transition,
    },
    /// A poll was skipped because the breaker is open.
    BreakerRejected {
        exchange: String,
        endpoint: String,
        at_ms: i64,
        state: BreakerState,
    },
    PollInterval {
        exchange: String,
        endpoint: String,
        interval_ms: u64,
    },
    ClockOffset {
        exchange: String,
        offset_ms: i64,
    },
    BackendHealth {
        at_ms: i64,
        component: Component,
        healthy: bool,
        detail: String,
    },
    /// The whole new state of one alert (raised, re-fired, acknowledged,
    /// silenced, resolved, triaged). Only the alert engine emits it: it is the
    /// one author of alert state.
    AlertChanged {
        alert: Alert,
    },
    /// A triage result for one firing episode of one alert, from the triage
    /// task. The engine folds it into the alert it holds (whatever its state
    /// is by then) and emits the `AlertChanged`; a result for an older
    /// episode is dropped.
    AlertTriaged {
        fingerprint: String,
        /// The alert's `occurrences` when triage was asked (1 for the first
        /// firing episode, +1 for each re-fire after a resolve).
        episode: u64,
        triage: Triage,
    },
    /// A sink's delivery state for one alert.
    AlertDelivery {
        fingerprint: String,
        sink: String,
        delivery: Delivery,
    },
    /// Cumulative triage counters (model calls, tokens, cost), after each model call.
    TriageUsage(TriageTotals),
}

/// What the operator can ask of the engine. The UI sends these; it never
/// changes engine state itself.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    ForceOpen {
        exchange: String,
        endpoint: String,
    },
    ResetBreaker {
        exchange: String,
        endpoint: String,
    },
    /// Stop reminders for an alert; `by` names the operator.
    Acknowledge {
        fingerprint: String,
        by: String,
    },
    /// Silence alerts matching every given field, for a while.
    Silence {
        exchange: Option<String>,
        endpoint: Option<String>,
        kind: Option<String>,
        duration: std::time::Duration,
        by: String,
    },
    /// Ask for triage of these alerts (one batch).
    Triage {
        fingerprints: Vec<String>,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn component_names_and_labels() {
        let all = [
            Component::RedisLimiter,
            Component::RedisBreaker,
            Component::RedisDedup,
            Component::Journal,
        ];
        assert_eq!(
            all.map(Component::name),
            ["redis_limiter", "redis_breaker", "redis_dedup", "journal"]
        );
        assert_eq!(
            all.map(Component::as_str),
            [
                "redis (limiter)",
                "redis (breaker)",
                "redis (dedup)",
                "journal"
            ]
        );
        for c in all {
            assert_eq!(
                serde_json::to_value(c).ok(),
                Some(serde_json::Value::from(c.name()))
            );
            assert!(strum::EnumMessage::get_message(&c).is_some(), "{c:?}");
        }
    }
}
