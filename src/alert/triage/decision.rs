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

impl Decision {
    /// A decision whose `requires_human` (escalation 4 or more) and
    /// `auto_resolve` (escalation 2 or less) follow from its escalation
    /// (1..=5), as the stream and cross-check rules have them.
    pub fn by_escalation(
        rule: &'static str,
        why: &str,
        escalation: u8,
        summary: String,
        likely_cause: &str,
        actions: &[&str],
    ) -> Decision {
        Decision {
            rule,
            why: why.to_string(),
            escalation,
            requires_human: escalation >= 4,
            summary,
            likely_cause: likely_cause.to_string(),
            suggested_actions: actions.iter().map(|s| s.to_string()).collect(),
            auto_resolve: escalation <= 2,
        }
    }
}
