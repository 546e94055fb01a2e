//! Alert triage: alerts triaged by source, model calls, tokens and cost,
//! from the cumulative totals the triage task reports.

use super::Registrar;
use crate::model::{Event, TriageSource, TriageTotals};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use std::sync::atomic::AtomicU64;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SourceLabels {
    source: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DirectionLabels {
    direction: &'static str,
}

/// The triage families. Totals arrive cumulative (`TriageUsage`) and are
/// counted by difference from the last ones seen.
#[derive(Debug)]
pub(super) struct Triage {
    /// `exwatch_triage_total`: alerts triaged (count), by source (`model`, `rules`).
    triaged: Family<SourceLabels, Counter>,
    /// `exwatch_triage_model_calls_total`: model calls (count), by outcome (`answered`, `failed`).
    calls: Family<OutcomeLabels, Counter>,
    /// `exwatch_triage_tokens_total`: model tokens (count), by direction (`in`, `out`).
    tokens: Family<DirectionLabels, Counter>,
    /// `exwatch_triage_cost_usd_total`: money spent on model triage (US dollars).
    cost: Counter<f64, AtomicU64>,
    /// The totals counted so far.
    seen: TriageTotals,
}

impl Triage {
    /// Register the triage families.
    pub(super) fn new(r: &mut Registrar) -> Triage {
        let triaged = Family::<SourceLabels, Counter>::default();
        r.registry.register(
            "exwatch_triage",
            "Alerts triaged, by source (model, rules)",
            triaged.clone(),
        );
        let calls = Family::<OutcomeLabels, Counter>::default();
        r.registry.register(
            "exwatch_triage_model_calls",
            "Calls to the triage model (outcome: answered, failed)",
            calls.clone(),
        );
        let tokens = Family::<DirectionLabels, Counter>::default();
        r.registry.register(
            "exwatch_triage_tokens",
            "Tokens used by the triage model (direction: in, out)",
            tokens.clone(),
        );
        let cost = Counter::<f64, AtomicU64>::default();
        r.registry.register(
            "exwatch_triage_cost_usd",
            "Money spent on model triage, in US dollars",
            cost.clone(),
        );
        Triage {
            triaged,
            calls,
            tokens,
            cost,
            seen: TriageTotals::default(),
        }
    }

    /// Count the growth of the triage totals (`TriageUsage`).
    pub(super) fn on_event(&mut self, ev: &Event) {
        let Event::TriageUsage(now) = ev else {
            return;
        };
        let before = std::mem::replace(&mut self.seen, now.clone());
        // Totals only grow; a smaller one means a new count (a restart), so it all counts.
        let delta = |new: u64, old: u64| if new >= old { new - old } else { new };
        let source = |s: TriageSource| SourceLabels { source: s.as_str() };
        self.triaged
            .get_or_create(&source(TriageSource::Model))
            .inc_by(delta(now.by_model, before.by_model));
        self.triaged
            .get_or_create(&source(TriageSource::Rules))
            .inc_by(delta(now.by_rules, before.by_rules));
        let outcome = |outcome| OutcomeLabels { outcome };
        self.calls
            .get_or_create(&outcome("answered"))
            .inc_by(delta(now.calls, before.calls));
        self.calls
            .get_or_create(&outcome("failed"))
            .inc_by(delta(now.failed_calls, before.failed_calls));
        let direction = |direction| DirectionLabels { direction };
        self.tokens
            .get_or_create(&direction("in"))
            .inc_by(delta(now.tokens_in, before.tokens_in));
        self.tokens
            .get_or_create(&direction("out"))
            .inc_by(delta(now.tokens_out, before.tokens_out));
        let cost = if now.cost_usd >= before.cost_usd {
            now.cost_usd - before.cost_usd
        } else {
            now.cost_usd
        };
        if cost.is_finite() && cost > 0.0 {
            self.cost.inc_by(cost);
        }
    }
}
