//! The rate limiter: time polls waited (from events); tokens left and
//! bucket capacity per tier, and the holds the exchange ordered (from the
//! snapshot).

use super::{GaugeFamily, Registrar, SnapshotGauges};
use crate::model::Event;
use crate::state::Snapshot;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Unit;

/// Limiter wait buckets (seconds): from a token's refill to a Retry-After hold.
const WAIT_BUCKETS: [f64; 11] = [
    0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0, 30.0, 120.0,
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TierLabels {
    exchange: String,
    endpoint: String,
    tier: String,
}

fn wait_histogram() -> Histogram {
    Histogram::new(WAIT_BUCKETS)
}

/// The event-driven families of the rate limiter.
#[derive(Debug)]
pub(super) struct Limiter {
    /// `exwatch_limiter_wait_seconds`: time (seconds) a poll waited, by the tier that made it wait.
    wait: Family<TierLabels, Histogram, fn() -> Histogram>,
}

impl Limiter {
    /// Register the wait histogram, and the tier gauges read from the snapshot.
    pub(super) fn new(r: &mut Registrar) -> Limiter {
        let wait = Family::new_with_constructor(wait_histogram as fn() -> Histogram);
        r.registry.register(
            "exwatch_limiter_wait_seconds",
            "Time a poll waited for the rate limiter, by the tier that made it wait",
            wait.clone(),
        );
        r.gauges(LimiterGauges);
        Limiter { wait }
    }

    /// Observe a wait (`LimiterWaited`).
    pub(super) fn on_event(&self, ev: &Event) {
        if let Event::LimiterWaited {
            id,
            waited_ms,
            tier,
            ..
        } = ev
        {
            self.wait
                .get_or_create(&TierLabels {
                    exchange: id.exchange.clone(),
                    endpoint: id.endpoint.clone(),
                    tier: tier.as_str().into(),
                })
                .observe(*waited_ms as f64 / 1000.0);
        }
    }
}

/// `exwatch_limiter_tokens` and `exwatch_limiter_capacity` (request weight),
/// `exwatch_endpoint_held` (1/0) and `exwatch_endpoint_held_until_seconds`
/// (unix seconds, 0 when not held), from the snapshot.
#[derive(Debug)]
struct LimiterGauges;

impl SnapshotGauges for LimiterGauges {
    fn encode(
        &self,
        snap: &Snapshot,
        now_ms: i64,
        encoder: &mut DescriptorEncoder,
    ) -> Result<(), std::fmt::Error> {
        let fills = || {
            snap.exchanges.iter().flat_map(|ex| {
                ex.rest_endpoints().flat_map(move |ep| {
                    ep.limiter.iter().map(move |fill| {
                        let labels = [
                            ("exchange", &*ex.name),
                            ("endpoint", &*ep.name),
                            ("tier", fill.tier.as_str()),
                        ];
                        (labels, fill)
                    })
                })
            })
        };
        let mut tokens = GaugeFamily::new(
            encoder,
            "exwatch_limiter_tokens",
            "Rate-limit tokens (request weight) left per tier, as last seen by the endpoint",
            None,
        );
        for (labels, fill) in fills() {
            tokens.series(&labels, fill.tokens)?;
        }
        let mut capacity = GaugeFamily::new(
            encoder,
            "exwatch_limiter_capacity",
            "Rate-limit bucket capacity per tier",
            None,
        );
        for (labels, fill) in fills() {
            capacity.series(&labels, fill.capacity)?;
        }
        // One series per endpoint, held or not, so a hold changes a value
        // and never makes a series appear or vanish. Why it is held is free
        // text (the answer that ordered it): it stays out of the labels.
        let endpoints = || {
            snap.exchanges.iter().flat_map(|ex| {
                ex.rest_endpoints().map(move |ep| {
                    let labels = [("exchange", &*ex.name), ("endpoint", &*ep.name)];
                    (labels, ep.held_at(now_ms).map(|h| h.until_ms))
                })
            })
        };
        let mut held = GaugeFamily::new(
            encoder,
            "exwatch_endpoint_held",
            "1 while the rate limiter holds the endpoint's polls because the exchange said so (Retry-After, a ban), else 0",
            None,
        );
        for (labels, until) in endpoints() {
            held.series(&labels, i64::from(until.is_some()))?;
        }
        let mut held_until = GaugeFamily::new(
            encoder,
            "exwatch_endpoint_held_until",
            "Unix time the exchange's hold on the endpoint ends, 0 when not held",
            Some(&Unit::Seconds),
        );
        for (labels, until) in endpoints() {
            held_until.series(&labels, until.map_or(0.0, |ms| ms as f64 / 1000.0))?;
        }
        Ok(())
    }
}
