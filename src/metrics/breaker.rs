//! Circuit breakers: transitions and rejected polls (from events); the
//! state of each endpoint's breaker (from the snapshot).

use super::{EndpointLabels, GaugeFamily, Registrar, SnapshotGauges};
use crate::model::Event;
use crate::state::Snapshot;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TransitionLabels {
    exchange: String,
    endpoint: String,
    to: String,
}

/// The event-driven families of the breakers.
#[derive(Debug)]
pub(super) struct Breaker {
    /// `exwatch_breaker_transitions_total`: state changes (count), by the state entered.
    transitions: Family<TransitionLabels, Counter>,
    /// `exwatch_breaker_rejections_total`: polls (count) skipped because the breaker was open.
    rejections: Family<EndpointLabels, Counter>,
}

impl Breaker {
    /// Register the breaker counters, and the state gauge read from the snapshot.
    pub(super) fn new(r: &mut Registrar) -> Breaker {
        let transitions = Family::<TransitionLabels, Counter>::default();
        r.registry.register(
            "exwatch_breaker_transitions",
            "Circuit breaker state changes, by the state entered",
            transitions.clone(),
        );
        let rejections = Family::<EndpointLabels, Counter>::default();
        r.registry.register(
            "exwatch_breaker_rejections",
            "Polls skipped because the breaker was open",
            rejections.clone(),
        );
        r.gauges(BreakerGauges);
        Breaker {
            transitions,
            rejections,
        }
    }

    /// Count a transition (`BreakerChanged`) or a rejected poll (`BreakerRejected`).
    pub(super) fn on_event(&self, ev: &Event) {
        match ev {
            Event::BreakerChanged { id, transition, .. } => {
                self.transitions
                    .get_or_create(&TransitionLabels {
                        exchange: id.exchange.clone(),
                        endpoint: id.endpoint.clone(),
                        to: transition.to.as_str().into(),
                    })
                    .inc();
            }
            Event::BreakerRejected { id, .. } => {
                self.rejections
                    .get_or_create(&EndpointLabels::new(id))
                    .inc();
            }
            _ => {}
        }
    }
}

/// `exwatch_breaker_state` (0 closed, 1 half-open, 2 open), from the snapshot.
#[derive(Debug)]
struct BreakerGauges;

impl SnapshotGauges for BreakerGauges {
    fn encode(
        &self,
        snap: &Snapshot,
        _now_ms: i64,
        encoder: &mut DescriptorEncoder,
    ) -> Result<(), std::fmt::Error> {
        let mut state = GaugeFamily::new(
            encoder,
            "exwatch_breaker_state",
            "Circuit breaker per endpoint: 0 closed, 1 half-open, 2 open",
            None,
        );
        for ex in &snap.exchanges {
            for ep in ex.rest_endpoints() {
                let labels = [("exchange", &*ex.name), ("endpoint", &*ep.name)];
                state.series(&labels, ep.breaker.state.code())?;
            }
        }
        Ok(())
    }
}
