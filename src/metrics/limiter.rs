//! The rate limiter: time polls waited (from events); tokens left and
//! bucket capacity per tier (from the snapshot).

use super::{GaugeFamily, Registrar, SnapshotGauges};
use crate::model::Event;
use crate::state::Snapshot;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;

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
/// from the snapshot.
#[derive(Debug)]
struct LimiterGauges;

impl SnapshotGauges for LimiterGauges {
    fn encode(
        &self,
        snap: &Snapshot,
        _now_ms: i64,
        encoder: &mut DescriptorEncoder,
    ) -> Result<(), std::fmt::Error> {
        let fills = || {
            snap.exchanges.iter().flat_map(|ex| {
                ex.endpoints.iter().flat_map(move |ep| {
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
        Ok(())
    }
}
