//! Polls of exchange endpoints: calls by outcome, latency, stalls (from
//! events); data age, poll interval and clock offset (from the snapshot).

use super::{EndpointLabels, GaugeFamily, Registrar, SnapshotGauges};
use crate::model::Event;
use crate::state::Snapshot;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Unit;

/// Latency buckets (seconds): exchange REST calls sit between a few ms and the timeout.
const LATENCY_BUCKETS: [f64; 12] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CallLabels {
    exchange: String,
    endpoint: String,
    status: String,
}

fn latency_histogram() -> Histogram {
    Histogram::new(LATENCY_BUCKETS)
}

/// The event-driven families of polls.
#[derive(Debug)]
pub(super) struct Polls {
    /// `exchange_api_calls_total`: polls (count) by exchange, endpoint and status.
    calls: Family<CallLabels, Counter>,
    /// `exchange_api_latency_seconds`: response time (seconds) by exchange and endpoint.
    latency: Family<EndpointLabels, Histogram, fn() -> Histogram>,
    /// `exwatch_stalled_requests_total`: polls (count) still unanswered at their stall deadline.
    stalls: Family<EndpointLabels, Counter>,
}

impl Polls {
    /// Register the poll families, and the poll gauges read from the snapshot.
    pub(super) fn new(r: &mut Registrar) -> Polls {
        let calls = Family::<CallLabels, Counter>::default();
        r.registry.register(
            "exchange_api_calls",
            "Polls of exchange endpoints by outcome (status: ok, http_<code>, rate_limited, banned, timeout, connect_error, invalid_<reason>, invalid_symbol, maintenance, exchange_error, bad_request, exchange_fault, auth_error, blocked)",
            calls.clone(),
        );
        let latency = Family::new_with_constructor(latency_histogram as fn() -> Histogram);
        // Histograms carry the unit in their name only: some OpenMetrics
        // parsers reject a UNIT line on a histogram.
        r.registry.register(
            "exchange_api_latency_seconds",
            "Response time of exchange endpoints (timeouts and refused connections excluded)",
            latency.clone(),
        );
        let stalls = Family::<EndpointLabels, Counter>::default();
        r.registry.register(
            "exwatch_stalled_requests",
            "Polls still unanswered at their stall deadline (detect.hang.stall_after of the interval)",
            stalls.clone(),
        );
        r.gauges(PollGauges);
        Polls {
            calls,
            latency,
            stalls,
        }
    }

    /// Count a finished poll (`Sample`) or a stalled one (`Stalled`).
    pub(super) fn on_event(&self, ev: &Event) {
        match ev {
            Event::Sample(s) => {
                self.calls
                    .get_or_create(&CallLabels {
                        exchange: s.id.exchange.clone(),
                        endpoint: s.id.endpoint.clone(),
                        status: s.outcome.status_label(),
                    })
                    .inc();
                // Same rule as the reducer: a timeout's latency is the timeout, not the API's speed.
                if s.outcome.has_latency() {
                    self.latency
                        .get_or_create(&EndpointLabels::new(&s.id))
                        .observe(s.latency_us as f64 / 1_000_000.0);
                }
            }
            Event::Stalled { id, .. } => {
                self.stalls.get_or_create(&EndpointLabels::new(id)).inc();
            }
            _ => {}
        }
    }
}

/// `exwatch_data_age_seconds`, `exwatch_poll_interval_seconds` and
/// `exwatch_clock_offset_seconds`, from the snapshot.
#[derive(Debug)]
struct PollGauges;

impl SnapshotGauges for PollGauges {
    fn encode(
        &self,
        snap: &Snapshot,
        now_ms: i64,
        encoder: &mut DescriptorEncoder,
    ) -> Result<(), std::fmt::Error> {
        let endpoints = || {
            snap.exchanges.iter().flat_map(|ex| {
                ex.rest_endpoints()
                    .map(move |ep| ([("exchange", &*ex.name), ("endpoint", &*ep.name)], ep))
            })
        };
        let mut age = GaugeFamily::new(
            encoder,
            "exwatch_data_age",
            "Time since the endpoint's last good answer (absent before the first one)",
            Some(&Unit::Seconds),
        );
        for (labels, ep) in endpoints() {
            if let Some(ms) = ep.data_age_ms(now_ms) {
                age.series(&labels, ms as f64 / 1000.0)?;
            }
        }
        let mut interval = GaugeFamily::new(
            encoder,
            "exwatch_poll_interval",
            "Current poll interval per endpoint (adaptive polling may change it)",
            Some(&Unit::Seconds),
        );
        for (labels, ep) in endpoints() {
            interval.series(&labels, ep.interval_ms as f64 / 1000.0)?;
        }
        let mut offset = GaugeFamily::new(
            encoder,
            "exwatch_clock_offset",
            "Exchange clock minus local clock",
            Some(&Unit::Seconds),
        );
        for ex in &snap.exchanges {
            if let Some(ms) = ex.clock_offset_ms {
                offset.series(&[("exchange", &*ex.name)], ms as f64 / 1000.0)?;
            }
        }
        Ok(())
    }
}
