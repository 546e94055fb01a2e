//! Prometheus metrics: a `prometheus-client` registry served as OpenMetrics
//! text on `/metrics` by axum.
//!
//! Each area of exwatch has its file here, and each file owns its metric
//! families: it declares and registers them in one constructor and updates
//! them in one place. A newcomer looking for a metric opens the file of its
//! area:
//!
//! | file | families |
//! | --- | --- |
//! | `polls.rs` | `exchange_api_calls`, `exchange_api_latency_seconds`, `exwatch_stalled_requests`, `exwatch_data_age_seconds`, `exwatch_poll_interval_seconds`, `exwatch_clock_offset_seconds` |
//! | `limiter.rs` | `exwatch_limiter_wait_seconds`, `exwatch_limiter_tokens`, `exwatch_limiter_capacity`, `exwatch_endpoint_held`, `exwatch_endpoint_held_until_seconds` |
//! | `breaker.rs` | `exwatch_breaker_state`, `exwatch_breaker_transitions`, `exwatch_breaker_rejections` |
//! | `alerts.rs` | `alerts_sent`, `exwatch_alerts_raised`, `exwatch_alerts_open`, `exwatch_alert_delivery_failures`, `exwatch_sink_up`, `anomaly_score` |
//! | `triage.rs` | `exwatch_triage`, `exwatch_triage_model_calls`, `exwatch_triage_tokens`, `exwatch_triage_cost_usd` |
//! | `backends.rs` | `exwatch_backend_up` |
//! | `process.rs` | `process_cpu_seconds`, `process_resident_memory_bytes`, `exwatch_heap_allocated_bytes` (the binary's allocator), `process_virtual_memory_bytes`, `process_open_fds`, `process_max_fds`, `process_threads`, `process_start_time_seconds` |
//! | `mod.rs` (this file: bind, serve, the run loop) | `exwatch_events` |
//!
//! Two feeds, so counters are exact and gauges are fresh:
//! - counters and histograms are driven by [`Event`]s from a monitor tap
//!   ([`Metrics::on_event`]), one increment per event, so nothing is counted
//!   twice however often snapshots are published or scraped;
//! - gauges (breaker state, limiter tokens, data age, ...) are encoded at
//!   scrape time from the latest [`Snapshot`] on the reducer's watch channel,
//!   by one collector that takes the snapshot once per scrape (an `Arc`
//!   clone): nothing is stored, cleared or locked between scrapes, and data
//!   age is the age at the moment Prometheus asks.
//!
//! Label values come from the tables of [`crate::model`]
//! ([`Outcome::status_label`](crate::model::Outcome::status_label),
//! `Severity::as_str`, `BreakerState::code`, `Component::name`, ...), never
//! from free text. docs/observability.md has the full reference.

mod alerts;
mod backends;
mod breaker;
mod limiter;
mod polls;
mod process;
mod settings;
mod streams;
#[cfg(test)]
mod tests;
mod triage;

pub use process::{ProcessStats, set_heap_probe};
pub use settings::{MetricsError, MetricsSettings};

use crate::model::{EndpointId, Event};
use crate::state::Snapshot;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{
    DescriptorEncoder, EncodeGaugeValue, EncodeLabelSet, EncodeMetric, MetricEncoder,
};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::{Registry, Unit};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

/// The OpenMetrics content type Prometheus negotiates for.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The reducer's latest snapshot, as the monitor publishes it.
pub type Snapshots = watch::Receiver<Arc<Snapshot>>;

/// `exchange` and `endpoint`: the names from the config.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EndpointLabels {
    exchange: String,
    endpoint: String,
}

impl EndpointLabels {
    fn new(id: &EndpointId) -> EndpointLabels {
        EndpointLabels {
            exchange: id.exchange.clone(),
            endpoint: id.endpoint.clone(),
        }
    }
}

/// The gauges of one area, encoded from a snapshot at scrape time.
trait SnapshotGauges: std::fmt::Debug + Send + Sync {
    /// Encode every family of the area (descriptors even when a family has
    /// no series). `now_ms` is unix ms, for ages.
    fn encode(
        &self,
        snap: &Snapshot,
        now_ms: i64,
        encoder: &mut DescriptorEncoder,
    ) -> Result<(), std::fmt::Error>;
}

/// What an area's constructor registers into: the registry, for the
/// families that events drive, and the snapshot collector, for its gauges.
struct Registrar<'a> {
    registry: &'a mut Registry,
    gauges: Vec<Box<dyn SnapshotGauges>>,
}

impl Registrar<'_> {
    fn gauges(&mut self, gauges: impl SnapshotGauges + 'static) {
        self.gauges.push(Box::new(gauges));
    }
}

/// A gauge family encoded by a collector. Like a registered family, it is
/// left out of the exposition while it has no series: its `HELP`, `TYPE`
/// (and `UNIT`) lines are written with its first series.
struct GaugeFamily<'e, 'w> {
    name: &'static str,
    /// Without the final period, which is added as the registry adds it.
    help: &'static str,
    unit: Option<&'static Unit>,
    state: FamilyState<'e, 'w>,
}

enum FamilyState<'e, 'w> {
    NotStarted(&'e mut DescriptorEncoder<'w>),
    Started(MetricEncoder<'e>),
    /// While starting, and for good if starting failed.
    Failed,
}

impl<'e, 'w> GaugeFamily<'e, 'w> {
    fn new(
        encoder: &'e mut DescriptorEncoder<'w>,
        name: &'static str,
        help: &'static str,
        unit: Option<&'static Unit>,
    ) -> GaugeFamily<'e, 'w> {
        GaugeFamily {
            name,
            help,
            unit,
            state: FamilyState::NotStarted(encoder),
        }
    }

    /// Add one series: `value` under `labels`.
    fn series<V: EncodeGaugeValue + std::fmt::Debug + Send + Sync>(
        &mut self,
        labels: &impl EncodeLabelSet,
        value: V,
    ) -> Result<(), std::fmt::Error> {
        self.state = match std::mem::replace(&mut self.state, FamilyState::Failed) {
            FamilyState::NotStarted(encoder) => {
                let help = format!("{}.", self.help);
                FamilyState::Started(encoder.encode_descriptor(
                    self.name,
                    &help,
                    self.unit,
                    MetricType::Gauge,
                )?)
            }
            started => started,
        };
        match &mut self.state {
            FamilyState::Started(family) => {
                ConstGauge::new(value).encode(family.encode_family(labels)?)
            }
            _ => Err(std::fmt::Error),
        }
    }
}

/// Encodes every area's gauges from one snapshot per scrape.
#[derive(Debug)]
struct SnapshotCollector {
    snapshots: Snapshots,
    /// Unix ms now; a fixed clock in tests.
    now_ms: fn() -> i64,
    areas: Vec<Box<dyn SnapshotGauges>>,
}

impl Collector for SnapshotCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        // An Arc clone: the channel's lock is released before anything is encoded.
        let snap = self.snapshots.borrow().clone();
        let now_ms = (self.now_ms)();
        for area in &self.areas {
            area.encode(&snap, now_ms, &mut encoder)?;
        }
        Ok(())
    }
}

/// Every metric family exwatch exports, by area, and the registry that
/// encodes them.
#[derive(Debug)]
pub struct Metrics {
    registry: Arc<Registry>,
    /// Events applied by the monitor (count).
    events: Counter,
    polls: polls::Polls,
    limiter: limiter::Limiter,
    breaker: breaker::Breaker,
    alerts: alerts::Alerts,
    triage: triage::Triage,
    streams: streams::Streams,
}

impl Metrics {
    /// Every family, with gauges read from `snapshots` at scrape time.
    pub fn new(snapshots: Snapshots) -> Metrics {
        Metrics::with_clock(snapshots, crate::clock::now_ms)
    }

    /// As [`Metrics::new`], with `now_ms` (unix ms) as the clock of data ages.
    pub fn with_clock(snapshots: Snapshots, now_ms: fn() -> i64) -> Metrics {
        let mut registry = Registry::default();
        let mut r = Registrar {
            registry: &mut registry,
            gauges: Vec::new(),
        };
        let polls = polls::Polls::new(&mut r);
        let alerts = alerts::Alerts::new(&mut r);
        let breaker = breaker::Breaker::new(&mut r);
        let limiter = limiter::Limiter::new(&mut r);
        backends::Backends::register(&mut r);
        let triage = triage::Triage::new(&mut r);
        let streams = streams::Streams::new(&mut r);
        let areas = r.gauges;
        let events = Counter::default();
        registry.register(
            "exwatch_events",
            "Events applied by the monitor",
            events.clone(),
        );
        registry.register_collector(Box::new(SnapshotCollector {
            snapshots,
            now_ms,
            areas,
        }));
        registry.register_collector(Box::new(process::ProcessCollector));
        Metrics {
            registry: Arc::new(registry),
            events,
            polls,
            limiter,
            breaker,
            alerts,
            triage,
            streams,
        }
    }

    /// Count one event of the monitor's stream, in every area it concerns.
    pub fn on_event(&mut self, ev: &Event) {
        self.events.inc();
        self.polls.on_event(ev);
        self.limiter.on_event(ev);
        self.breaker.on_event(ev);
        self.alerts.on_event(ev);
        self.triage.on_event(ev);
        self.streams.on_event(ev);
    }

    /// The registry, to encode from another task while events are counted.
    pub fn registry(&self) -> Arc<Registry> {
        self.registry.clone()
    }

    /// The OpenMetrics text of every family as it stands, gauges from the
    /// latest snapshot.
    pub fn encode(&self) -> Result<String, std::fmt::Error> {
        encode(&self.registry)
    }
}

/// The OpenMetrics text of `registry`.
pub fn encode(registry: &Registry) -> Result<String, std::fmt::Error> {
    let mut out = String::new();
    prometheus_client::encoding::text::encode(&mut out, registry)?;
    Ok(out)
}

/// Bind the metrics address now, so a taken port fails the start instead of a background task.
pub async fn bind(addr: SocketAddr) -> Result<TcpListener, MetricsError> {
    TcpListener::bind(addr)
        .await
        .map_err(|error| MetricsError::Bind { addr, error })
}

/// Count `events` until the stream ends, and serve `/metrics` on `listener`
/// until `shutdown`. Gauges come from `snapshots` at each scrape.
pub async fn run(
    listener: TcpListener,
    mut events: mpsc::Receiver<Event>,
    snapshots: Snapshots,
    shutdown: CancellationToken,
) {
    let mut metrics = Metrics::new(snapshots);
    let registry = metrics.registry();
    let counting = async move {
        // Ends when the reducer drops its tap sender, after its last event.
        while let Some(ev) = events.recv().await {
            metrics.on_event(&ev);
        }
    };
    tokio::join!(counting, serve(listener, registry, shutdown));
}

/// Serve `GET /metrics` from `registry` until `shutdown`.
pub async fn serve(listener: TcpListener, registry: Arc<Registry>, shutdown: CancellationToken) {
    use axum::http::{StatusCode, header};
    use axum::response::IntoResponse;
    let handler = move || {
        let registry = registry.clone();
        async move {
            match encode(&registry) {
                Ok(body) => ([(header::CONTENT_TYPE, CONTENT_TYPE)], body).into_response(),
                Err(_) => (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "cannot encode the metrics\n",
                )
                    .into_response(),
            }
        }
    };
    let app = axum::Router::new().route("/metrics", axum::routing::get(handler));
    let addr = listener.local_addr().ok();
    let result = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await;
    if let Err(e) = result {
        tracing::warn!(?addr, error = %e, "metrics endpoint stopped");
    }
}
