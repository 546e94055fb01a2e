//! The decision of one triage rule (`rules`, `stream_rules`,
//! `cross_rules`), before it becomes a [`Triage`](crate::model::Triage).

/// The decision of one rule, before it becomes a [`Triage`](crate::model::Triage).
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// Stable rule name: `ban`, `breaker_open`, `latency_spike`...
    pub rule: &'static str,
    /// Why this rule matched, in one line.
    pub why: String,
    pub escalation: u8,
    pub requires_human: bool,
    pub summary: String,
    pub likely_cause: String,
    pub suggested_actions: Vec<String>,
    pub auto_resolve: bool,
}
