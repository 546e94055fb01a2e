//! Prometheus metrics: a `prometheus-client` registry served as OpenMetrics
//! text on `/metrics` by axum.
//!
//! Two feeds, so counters are exact and gauges are fresh:
//! - counters and histograms are driven by [`Event`]s from a monitor tap
//!   ([`EventRecorder::record`]), one increment per event, so nothing is
//!   counted twice however often snapshots are published or scraped;
//! - gauges (breaker state, limiter tokens, data age, ...) are recomputed from
//!   the latest [`Snapshot`] at scrape time ([`Metrics::scrape`]), so data age
//!   is the age at the moment Prometheus asks.
//!
//! The `status` label of `exchange_api_calls_total` is a bounded set (see
//! [`status_label`]); exchange error codes and free-text details never become
//! label values. docs/observability.md has the full reference.

use crate::model::ApiError;
use crate::model::BreakerState;
use crate::model::TriageTotals;
use crate::model::{AlertState, Delivery, Severity};
use crate::model::{Component, Event, Outcome};
use crate::state::Snapshot;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};
use serde::Deserialize;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

/// The OpenMetrics content type Prometheus negotiates for.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Latency buckets (seconds): exchange REST calls sit between a few ms and the timeout.
const LATENCY_BUCKETS: [f64; 12] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];
/// Limiter wait buckets (seconds): from a token's refill to a Retry-After hold.
const WAIT_BUCKETS: [f64; 11] = [
    0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0, 30.0, 120.0,
];

/// `[metrics]` in the config.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsSettings {
    /// Where to serve `/metrics`, e.g. `127.0.0.1:9464`. Off when absent.
    pub listen: Option<SocketAddr>,
    /// Permit `0.0.0.0` / `::`: the endpoint tells anyone who can reach it
    /// which exchanges this desk watches, so every interface must be a choice.
    pub allow_wildcard: bool,
}

impl MetricsSettings {
    pub fn validate(&self, p: &mut crate::problems::Problems) {
        if let Some(addr) = self.listen
            && addr.ip().is_unspecified()
            && !self.allow_wildcard
        {
            p.push(
                "metrics.listen",
                format!(
                    "{addr} listens on every interface: use a specific address such as 127.0.0.1:{port}, \
                     or set metrics.allow_wildcard = true to expose the metrics on purpose",
                    port = addr.port()
                ),
            );
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    #[error("cannot listen for /metrics on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CallLabels {
    exchange: String,
    endpoint: String,
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EndpointLabels {
    exchange: String,
    endpoint: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ExchangeLabels {
    exchange: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AnomalyLabels {
    exchange: String,
    endpoint: String,
    detector: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SentLabels {
    severity: String,
    channel: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RaisedLabels {
    severity: String,
    kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SeverityLabels {
    severity: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DeliveryFailureLabels {
    channel: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ChannelLabels {
    channel: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TransitionLabels {
    exchange: String,
    endpoint: String,
    to: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TierLabels {
    exchange: String,
    endpoint: String,
    tier: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ComponentLabels {
    component: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SourceLabels {
    source: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DirectionLabels {
    direction: String,
}

type FGauge = Gauge<f64, AtomicU64>;
type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    Histogram::new(LATENCY_BUCKETS)
}

fn wait_histogram() -> Histogram {
    Histogram::new(WAIT_BUCKETS)
}

/// The registry and every metric family exwatch exports.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    // Event-driven.
    calls: Family<CallLabels, Counter>,
    latency: HistogramFamily<EndpointLabels>,
    alerts_sent: Family<SentLabels, Counter>,
    alerts_raised: Family<RaisedLabels, Counter>,
    delivery_failures: Family<DeliveryFailureLabels, Counter>,
    sink_up: Family<ChannelLabels, Gauge>,
    breaker_transitions: Family<TransitionLabels, Counter>,
    breaker_rejections: Family<EndpointLabels, Counter>,
    stalls: Family<EndpointLabels, Counter>,
    limiter_wait: HistogramFamily<TierLabels>,
    triage: Family<SourceLabels, Counter>,
    triage_calls: Family<OutcomeLabels, Counter>,
    triage_tokens: Family<DirectionLabels, Counter>,
    triage_cost: Counter<f64, AtomicU64>,
    events: Counter,
    // Snapshot-driven, recomputed on every scrape.
    anomaly: Family<AnomalyLabels, FGauge>,
    breaker_state: Family<EndpointLabels, Gauge>,
    limiter_tokens: Family<TierLabels, FGauge>,
    limiter_capacity: Family<TierLabels, FGauge>,
    data_age: Family<EndpointLabels, FGauge>,
    poll_interval: Family<EndpointLabels, FGauge>,
    clock_offset: Family<ExchangeLabels, FGauge>,
    backend_up: Family<ComponentLabels, Gauge>,
    alerts_open: Family<SeverityLabels, Gauge>,
    /// Serializes refresh + encode so two concurrent scrapes never see a half-rebuilt gauge family.
    scrape_lock: Mutex<()>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut r = Registry::default();
        let calls = Family::<CallLabels, Counter>::default();
        r.register(
            "exchange_api_calls",
            "Polls of exchange endpoints by outcome (status: ok, http_<code>, rate_limited, banned, timeout, connect_error, invalid_<reason>, invalid_symbol, maintenance, exchange_error)",
            calls.clone(),
        );
        let latency: HistogramFamily<EndpointLabels> =
            Family::new_with_constructor(latency_histogram);
        // Histograms carry the unit in their name only: some OpenMetrics
        // parsers reject a UNIT line on a histogram.
        r.register(
            "exchange_api_latency_seconds",
            "Response time of exchange endpoints (timeouts and refused connections excluded)",
            latency.clone(),
        );
        let anomaly = Family::<AnomalyLabels, FGauge>::default();
        r.register(
            "anomaly_score",
            "Detector score per endpoint: error_rate = share of failed recent polls (0..1); other detectors = the open alert's z_score or usage, else 1 while open and 0 once resolved",
            anomaly.clone(),
        );
        let alerts_sent = Family::<SentLabels, Counter>::default();
        r.register(
            "alerts_sent",
            "Alert notifications delivered, by alert severity and sink (channel)",
            alerts_sent.clone(),
        );
        let alerts_raised = Family::<RaisedLabels, Counter>::default();
        r.register(
            "exwatch_alerts_raised",
            "Alerts that started firing (new, or re-opened after being resolved)",
            alerts_raised.clone(),
        );
        let alerts_open = Family::<SeverityLabels, Gauge>::default();
        r.register(
            "exwatch_alerts_open",
            "Alerts not yet resolved (firing, acknowledged or silenced)",
            alerts_open.clone(),
        );
        let delivery_failures = Family::<DeliveryFailureLabels, Counter>::default();
        r.register(
            "exwatch_alert_delivery_failures",
            "Failed notification attempts per sink (outcome: retrying, failed)",
            delivery_failures.clone(),
        );
        let sink_up = Family::<ChannelLabels, Gauge>::default();
        r.register(
            "exwatch_sink_up",
            "1 if the sink's last delivery succeeded, 0 if it failed",
            sink_up.clone(),
        );
        let breaker_state = Family::<EndpointLabels, Gauge>::default();
        r.register(
            "exwatch_breaker_state",
            "Circuit breaker per endpoint: 0 closed, 1 half-open, 2 open",
            breaker_state.clone(),
        );
        let breaker_transitions = Family::<TransitionLabels, Counter>::default();
        r.register(
            "exwatch_breaker_transitions",
            "Circuit breaker state changes, by the state entered",
            breaker_transitions.clone(),
        );
        let breaker_rejections = Family::<EndpointLabels, Counter>::default();
        r.register(
            "exwatch_breaker_rejections",
            "Polls skipped because the breaker was open",
            breaker_rejections.clone(),
        );
        let stalls = Family::<EndpointLabels, Counter>::default();
        r.register(
            "exwatch_stalled_requests",
            "Polls still unanswered at their stall deadline (detect.hang.stall_after of the interval)",
            stalls.clone(),
        );
        let limiter_tokens = Family::<TierLabels, FGauge>::default();
        r.register(
            "exwatch_limiter_tokens",
            "Rate-limit tokens (request weight) left per tier, as last seen by the endpoint",
            limiter_tokens.clone(),
        );
        let limiter_capacity = Family::<TierLabels, FGauge>::default();
        r.register(
            "exwatch_limiter_capacity",
            "Rate-limit bucket capacity per tier",
            limiter_capacity.clone(),
        );
        let limiter_wait: HistogramFamily<TierLabels> =
            Family::new_with_constructor(wait_histogram);
        r.register(
            "exwatch_limiter_wait_seconds",
            "Time a poll waited for the rate limiter, by the tier that made it wait",
            limiter_wait.clone(),
        );
        let data_age = Family::<EndpointLabels, FGauge>::default();
        r.register_with_unit(
            "exwatch_data_age",
            "Time since the endpoint's last good answer (absent before the first one)",
            Unit::Seconds,
            data_age.clone(),
        );
        let poll_interval = Family::<EndpointLabels, FGauge>::default();
        r.register_with_unit(
            "exwatch_poll_interval",
            "Current poll interval per endpoint (adaptive polling may change it)",
            Unit::Seconds,
            poll_interval.clone(),
        );
        let clock_offset = Family::<ExchangeLabels, FGauge>::default();
        r.register_with_unit(
            "exwatch_clock_offset",
            "Exchange clock minus local clock",
            Unit::Seconds,
            clock_offset.clone(),
        );
        let backend_up = Family::<ComponentLabels, Gauge>::default();
        r.register(
            "exwatch_backend_up",
            "1 if the shared backend is healthy, 0 if degraded (component: redis_limiter, redis_breaker; absent with in-memory backends)",
            backend_up.clone(),
        );
        let triage = Family::<SourceLabels, Counter>::default();
        r.register(
            "exwatch_triage",
            "Alerts triaged, by source (model, rules)",
            triage.clone(),
        );
        let triage_calls = Family::<OutcomeLabels, Counter>::default();
        r.register(
            "exwatch_triage_model_calls",
            "Calls to the triage model (outcome: answered, failed)",
            triage_calls.clone(),
        );
        let triage_tokens = Family::<DirectionLabels, Counter>::default();
        r.register(
            "exwatch_triage_tokens",
            "Tokens used by the triage model (direction: in, out)",
            triage_tokens.clone(),
        );
        let triage_cost = Counter::<f64, AtomicU64>::default();
        r.register(
            "exwatch_triage_cost_usd",
            "Money spent on model triage, in US dollars",
            triage_cost.clone(),
        );
        let events = Counter::default();
        r.register(
            "exwatch_events",
            "Events applied by the monitor",
            events.clone(),
        );
        r.register_collector(Box::new(ProcessCollector));
        Metrics {
            registry: r,
            calls,
            latency,
            alerts_sent,
            alerts_raised,
            delivery_failures,
            sink_up,
            breaker_transitions,
            breaker_rejections,
            stalls,
            limiter_wait,
            triage,
            triage_calls,
            triage_tokens,
            triage_cost,
            events,
            anomaly,
            breaker_state,
            limiter_tokens,
            limiter_capacity,
            data_age,
            poll_interval,
            clock_offset,
            backend_up,
            alerts_open,
            scrape_lock: Mutex::new(()),
        }
    }

    /// Recompute every snapshot-driven gauge. `now_ms` is unix ms, for data age.
    pub fn refresh(&self, snap: &Snapshot, now_ms: i64) {
        // Endpoints or alerts that disappeared must not linger with their last value.
        self.anomaly.clear();
        self.breaker_state.clear();
        self.limiter_tokens.clear();
        self.limiter_capacity.clear();
        self.data_age.clear();
        self.poll_interval.clear();
        self.clock_offset.clear();
        self.backend_up.clear();
        self.alerts_open.clear();

        for ex in &snap.exchanges {
            if let Some(off) = ex.clock_offset_ms {
                self.clock_offset
                    .get_or_create(&ExchangeLabels {
                        exchange: ex.name.clone(),
                    })
                    .set(off as f64 / 1000.0);
            }
            for ep in &ex.endpoints {
                let labels = EndpointLabels {
                    exchange: ex.name.clone(),
                    endpoint: ep.name.clone(),
                };
                self.breaker_state
                    .get_or_create(&labels)
                    .set(breaker_code(ep.breaker.state));
                self.poll_interval
                    .get_or_create(&labels)
                    .set(ep.interval_ms as f64 / 1000.0);
                if let Some(age) = ep.data_age_ms(now_ms) {
                    self.data_age
                        .get_or_create(&labels)
                        .set(age as f64 / 1000.0);
                }
                self.anomaly
                    .get_or_create(&AnomalyLabels {
                        exchange: ex.name.clone(),
                        endpoint: ep.name.clone(),
                        detector: "error_rate".into(),
                    })
                    .set(ep.error_rate);
                for fill in &ep.limiter {
                    let tl = TierLabels {
                        exchange: ex.name.clone(),
                        endpoint: ep.name.clone(),
                        tier: fill.tier.as_str().into(),
                    };
                    self.limiter_tokens.get_or_create(&tl).set(fill.tokens);
                    self.limiter_capacity.get_or_create(&tl).set(fill.capacity);
                }
            }
        }
        for sev in [
            Severity::Info,
            Severity::Warning,
            Severity::Critical,
            Severity::Emergency,
        ] {
            // Zero series for every severity, so "no open alerts" is a 0 and not a gap.
            self.alerts_open
                .get_or_create(&SeverityLabels {
                    severity: sev.as_str().into(),
                })
                .set(0);
        }
        for alert in &snap.alerts {
            if alert.state.is_open() {
                self.alerts_open
                    .get_or_create(&SeverityLabels {
                        severity: alert.severity.as_str().into(),
                    })
                    .inc();
            }
            // The error-rate score comes from the snapshot above for every endpoint.
            if alert.kind == "error_rate" {
                continue;
            }
            let score = if alert.state.is_open() {
                ["z_score", "usage"]
                    .iter()
                    .find_map(|k| alert.metrics.get(*k).copied())
                    .filter(|v| v.is_finite())
                    .unwrap_or(1.0)
            } else {
                0.0
            };
            self.anomaly
                .get_or_create(&AnomalyLabels {
                    exchange: alert.exchange.clone(),
                    endpoint: alert.endpoint.clone().unwrap_or_else(|| "*".into()),
                    detector: alert.kind.clone(),
                })
                .set(score);
        }
        for h in &snap.health {
            self.backend_up
                .get_or_create(&ComponentLabels {
                    component: component_label(h.component).into(),
                })
                .set(i64::from(h.healthy));
        }
    }

    /// The OpenMetrics text of the registry as it stands.
    pub fn encode(&self) -> Result<String, std::fmt::Error> {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)?;
        Ok(out)
    }

    /// Refresh the gauges from `snap` and encode, atomically with respect to other scrapes.
    pub fn scrape(&self, snap: &Snapshot, now_ms: i64) -> Result<String, std::fmt::Error> {
        // A poisoned lock only means an earlier scrape panicked; the families are still valid.
        let _guard = self
            .scrape_lock
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        self.refresh(snap, now_ms);
        self.encode()
    }
}

/// The `status` label for one poll outcome: a bounded set, never free text.
pub fn status_label(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Ok => "ok".into(),
        Outcome::Http { status, .. } if (100..=599).contains(status) => format!("http_{status}"),
        Outcome::Http { .. } => "http_other".into(),
        Outcome::RateLimited { .. } => "rate_limited".into(),
        Outcome::Banned { .. } => "banned".into(),
        Outcome::Timeout => "timeout".into(),
        Outcome::Connect { .. } => "connect_error".into(),
        Outcome::Invalid { reason } => format!("invalid_{}", reason.name()),
        Outcome::Exchange { error } => match error {
            ApiError::InvalidSymbol { .. } => "invalid_symbol".into(),
            ApiError::Maintenance { .. } => "maintenance".into(),
            // Exchange error codes are unbounded: they stay in logs and alerts, not in labels.
            ApiError::Exchange { .. } => "exchange_error".into(),
            ApiError::RateLimited { .. } => "rate_limited".into(),
            ApiError::IpBanned { .. } => "banned".into(),
        },
    }
}

pub fn breaker_code(state: BreakerState) -> i64 {
    match state {
        BreakerState::Closed => 0,
        BreakerState::HalfOpen => 1,
        BreakerState::Open => 2,
    }
}

fn component_label(c: Component) -> &'static str {
    match c {
        Component::RedisLimiter => "redis_limiter",
        Component::RedisBreaker => "redis_breaker",
        Component::Journal => "journal",
    }
}

/// What the recorder remembers of one alert, to label and de-duplicate.
#[derive(Debug, Clone)]
struct AlertSeen {
    severity: Severity,
    state: AlertState,
}

/// Turns the event stream into counter increments. Owns the little memory
/// needed to count each fact once (an alert re-sent with its whole state is
/// not a new alert; triage totals arrive cumulative and are counted by difference).
#[derive(Debug)]
pub struct EventRecorder {
    metrics: Arc<Metrics>,
    alerts: HashMap<String, AlertSeen>,
    /// (fingerprint, sink) → `at_ms` of the last counted send.
    sent: HashMap<(String, String), i64>,
    triage: TriageTotals,
}

impl EventRecorder {
    pub fn new(metrics: Arc<Metrics>) -> EventRecorder {
        EventRecorder {
            metrics,
            alerts: HashMap::new(),
            sent: HashMap::new(),
            triage: TriageTotals::default(),
        }
    }

    pub fn record(&mut self, ev: &Event) {
        let m = &self.metrics;
        m.events.inc();
        match ev {
            Event::Sample(s) => {
                m.calls
                    .get_or_create(&CallLabels {
                        exchange: s.exchange.clone(),
                        endpoint: s.endpoint.clone(),
                        status: status_label(&s.outcome),
                    })
                    .inc();
                // Same rule as the reducer: a timeout's latency is the timeout, not the API's speed.
                if !matches!(s.outcome, Outcome::Timeout | Outcome::Connect { .. }) {
                    m.latency
                        .get_or_create(&EndpointLabels {
                            exchange: s.exchange.clone(),
                            endpoint: s.endpoint.clone(),
                        })
                        .observe(s.latency_us as f64 / 1_000_000.0);
                }
            }
            Event::Stalled {
                exchange, endpoint, ..
            } => {
                m.stalls
                    .get_or_create(&EndpointLabels {
                        exchange: exchange.clone(),
                        endpoint: endpoint.clone(),
                    })
                    .inc();
            }
            Event::LimiterWaited {
                exchange,
                endpoint,
                waited_ms,
                tier,
                ..
            } => {
                m.limiter_wait
                    .get_or_create(&TierLabels {
                        exchange: exchange.clone(),
                        endpoint: endpoint.clone(),
                        tier: tier.as_str().into(),
                    })
                    .observe(*waited_ms as f64 / 1000.0);
            }
            Event::BreakerChanged {
                exchange,
                endpoint,
                transition,
                ..
            } => {
                m.breaker_transitions
                    .get_or_create(&TransitionLabels {
                        exchange: exchange.clone(),
                        endpoint: endpoint.clone(),
                        to: transition.to.as_str().into(),
                    })
                    .inc();
            }
            Event::BreakerRejected {
                exchange, endpoint, ..
            } => {
                m.breaker_rejections
                    .get_or_create(&EndpointLabels {
                        exchange: exchange.clone(),
                        endpoint: endpoint.clone(),
                    })
                    .inc();
            }
            Event::AlertChanged { alert } => {
                let prev = self.alerts.get(&alert.fingerprint);
                let opened = alert.state == AlertState::Firing
                    && prev.is_none_or(|p| p.state == AlertState::Resolved);
                if opened {
                    m.alerts_raised
                        .get_or_create(&RaisedLabels {
                            severity: alert.severity.as_str().into(),
                            kind: alert.kind.clone(),
                        })
                        .inc();
                }
                self.alerts.insert(
                    alert.fingerprint.clone(),
                    AlertSeen {
                        severity: alert.severity,
                        state: alert.state,
                    },
                );
            }
            Event::AlertDelivery {
                fingerprint,
                sink,
                delivery,
            } => {
                let channel = ChannelLabels {
                    channel: sink.clone(),
                };
                match delivery {
                    Delivery::Sent { at_ms } => {
                        let key = (fingerprint.clone(), sink.clone());
                        if self.sent.get(&key) != Some(at_ms) {
                            self.sent.insert(key, *at_ms);
                            let severity = self
                                .alerts
                                .get(fingerprint)
                                .map(|a| a.severity.as_str())
                                .unwrap_or("unknown");
                            m.alerts_sent
                                .get_or_create(&SentLabels {
                                    severity: severity.into(),
                                    channel: sink.clone(),
                                })
                                .inc();
                        }
                        m.sink_up.get_or_create(&channel).set(1);
                    }
                    Delivery::Retrying { .. } | Delivery::Failed { .. } => {
                        let outcome = if matches!(delivery, Delivery::Failed { .. }) {
                            "failed"
                        } else {
                            "retrying"
                        };
                        m.delivery_failures
                            .get_or_create(&DeliveryFailureLabels {
                                channel: sink.clone(),
                                outcome: outcome.into(),
                            })
                            .inc();
                        m.sink_up.get_or_create(&channel).set(0);
                    }
                    Delivery::Pending | Delivery::Suppressed { .. } => {}
                }
            }
            Event::TriageUsage(now) => {
                let before = std::mem::replace(&mut self.triage, now.clone());
                // Totals only grow; a smaller one means a new count (a restart), so it all counts.
                let delta = |new: u64, old: u64| if new >= old { new - old } else { new };
                let by = |source: &str| SourceLabels {
                    source: source.into(),
                };
                let outcome = |o: &str| OutcomeLabels { outcome: o.into() };
                let dir = |d: &str| DirectionLabels {
                    direction: d.into(),
                };
                m.triage
                    .get_or_create(&by("model"))
                    .inc_by(delta(now.by_model, before.by_model));
                m.triage
                    .get_or_create(&by("rules"))
                    .inc_by(delta(now.by_rules, before.by_rules));
                m.triage_calls
                    .get_or_create(&outcome("answered"))
                    .inc_by(delta(now.calls, before.calls));
                m.triage_calls
                    .get_or_create(&outcome("failed"))
                    .inc_by(delta(now.failed_calls, before.failed_calls));
                m.triage_tokens
                    .get_or_create(&dir("in"))
                    .inc_by(delta(now.tokens_in, before.tokens_in));
                m.triage_tokens
                    .get_or_create(&dir("out"))
                    .inc_by(delta(now.tokens_out, before.tokens_out));
                let cost = if now.cost_usd >= before.cost_usd {
                    now.cost_usd - before.cost_usd
                } else {
                    now.cost_usd
                };
                if cost.is_finite() && cost > 0.0 {
                    m.triage_cost.inc_by(cost);
                }
            }
            Event::Watching { .. }
            | Event::LimiterFill { .. }
            | Event::PollInterval { .. }
            | Event::ClockOffset { .. }
            | Event::BackendHealth { .. } => {}
        }
    }
}

/// exwatch's own process figures, read from `/proc/self` on each scrape
/// (nothing is exported where `/proc` is missing).
#[derive(Debug)]
struct ProcessCollector;

/// `USER_HZ`: the unit of the tick counts in `/proc/<pid>/stat`. The kernel
/// fixes it at 100 for user space on every architecture Linux ships for
/// servers (x86, arm, arm64, riscv, ppc, s390); reading it needs `sysconf`,
/// which would need `unsafe`.
const TICKS_PER_SEC: f64 = 100.0;

#[derive(Debug, Default, PartialEq)]
pub struct ProcessStats {
    pub cpu_seconds: Option<f64>,
    pub start_time_seconds: Option<f64>,
    pub resident_bytes: Option<u64>,
    pub virtual_bytes: Option<u64>,
    pub open_fds: Option<u64>,
    pub max_fds: Option<u64>,
    pub threads: Option<u64>,
}

impl ProcessStats {
    /// Read this process's figures; each one that cannot be read stays `None`.
    pub fn read() -> ProcessStats {
        let mut s = ProcessStats::default();
        if let Ok(stat) = std::fs::read_to_string("/proc/self/stat") {
            // Fields after the command name, which is in parentheses and may hold spaces.
            let fields: Vec<&str> = stat
                .rsplit_once(')')
                .map(|(_, rest)| rest.split_whitespace().collect())
                .unwrap_or_default();
            // `fields[0]` is field 3 (state) of proc(5).
            let field = |n: usize| fields.get(n - 3).and_then(|v| v.parse::<u64>().ok());
            if let (Some(u), Some(k)) = (field(14), field(15)) {
                s.cpu_seconds = Some((u + k) as f64 / TICKS_PER_SEC);
            }
            s.threads = field(20);
            let boot = std::fs::read_to_string("/proc/stat").ok().and_then(|t| {
                t.lines()
                    .find_map(|l| l.strip_prefix("btime "))
                    .and_then(|v| v.trim().parse::<u64>().ok())
            });
            if let (Some(start), Some(boot)) = (field(22), boot) {
                s.start_time_seconds = Some(boot as f64 + start as f64 / TICKS_PER_SEC);
            }
        }
        if let Ok(status) = std::fs::read_to_string("/proc/self/status") {
            let kb = |key: &str| {
                status
                    .lines()
                    .find_map(|l| l.strip_prefix(key))
                    .and_then(|v| v.split_whitespace().next())
                    .and_then(|v| v.parse::<u64>().ok())
                    .map(|v| v * 1024)
            };
            s.resident_bytes = kb("VmRSS:");
            s.virtual_bytes = kb("VmSize:");
        }
        if let Ok(dir) = std::fs::read_dir("/proc/self/fd") {
            s.open_fds = Some(dir.count() as u64);
        }
        if let Ok(limits) = std::fs::read_to_string("/proc/self/limits") {
            s.max_fds = limits
                .lines()
                .find_map(|l| l.strip_prefix("Max open files"))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse::<u64>().ok());
        }
        s
    }
}

fn encode_gauge(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    value: Option<f64>,
) -> Result<(), std::fmt::Error> {
    if let Some(v) = value {
        let g = ConstGauge::new(v);
        let me = encoder.encode_descriptor(name, help, None, g.metric_type())?;
        g.encode(me)?;
    }
    Ok(())
}

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let s = ProcessStats::read();
        if let Some(cpu) = s.cpu_seconds {
            let c = ConstCounter::new(cpu);
            let me = encoder.encode_descriptor(
                "process_cpu_seconds",
                "User and system CPU time spent",
                None,
                c.metric_type(),
            )?;
            c.encode(me)?;
        }
        let as_f = |v: Option<u64>| v.map(|v| v as f64);
        encode_gauge(
            &mut encoder,
            "process_resident_memory_bytes",
            "Resident memory size",
            as_f(s.resident_bytes),
        )?;
        encode_gauge(
            &mut encoder,
            "process_virtual_memory_bytes",
            "Virtual memory size",
            as_f(s.virtual_bytes),
        )?;
        encode_gauge(
            &mut encoder,
            "process_open_fds",
            "Open file descriptors",
            as_f(s.open_fds),
        )?;
        encode_gauge(
            &mut encoder,
            "process_max_fds",
            "Limit of open file descriptors",
            as_f(s.max_fds),
        )?;
        encode_gauge(
            &mut encoder,
            "process_threads",
            "OS threads",
            as_f(s.threads),
        )?;
        encode_gauge(
            &mut encoder,
            "process_start_time_seconds",
            "Start time of the process since the unix epoch",
            s.start_time_seconds,
        )?;
        Ok(())
    }
}

/// Bind the metrics address now, so a taken port fails the start instead of a background task.
pub async fn bind(addr: SocketAddr) -> Result<TcpListener, MetricsError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| MetricsError::Bind { addr, source })
}

/// Count `events` until the stream ends, and serve `/metrics` on `listener`
/// until `shutdown`. Gauges come from `snapshots` at each scrape.
pub async fn run(
    listener: TcpListener,
    mut events: mpsc::Receiver<Event>,
    snapshots: watch::Receiver<Arc<Snapshot>>,
    shutdown: CancellationToken,
) {
    let metrics = Arc::new(Metrics::new());
    let mut recorder = EventRecorder::new(metrics.clone());
    let counting = async move {
        // Ends when the reducer drops its tap sender, after its last event.
        while let Some(ev) = events.recv().await {
            recorder.record(&ev);
        }
    };
    tokio::join!(counting, serve(listener, metrics, snapshots, shutdown));
}

/// Serve `GET /metrics` until `shutdown`.
pub async fn serve(
    listener: TcpListener,
    metrics: Arc<Metrics>,
    snapshots: watch::Receiver<Arc<Snapshot>>,
    shutdown: CancellationToken,
) {
    use axum::http::{StatusCode, header};
    use axum::response::IntoResponse;
    let handler = move || {
        let metrics = metrics.clone();
        let snap = snapshots.borrow().clone();
        async move {
            match metrics.scrape(&snap, crate::clock::wall_ms()) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Sample;
    use crate::model::{Alert, Triage, TriageSource};
    use std::collections::BTreeMap;

    fn sample(outcome: Outcome) -> Event {
        Event::Sample(Sample {
            exchange: "bin".into(),
            endpoint: "book".into(),
            at_ms: 1,
            latency_us: 20_000,
            status: None,
            outcome,
            summary: None,
            price: None,
            exchange_ts_ms: None,
            signal: None,
        })
    }

    fn alert(state: AlertState, triage: Option<Triage>) -> Alert {
        Alert {
            fingerprint: "bin/book/latency".into(),
            exchange: "bin".into(),
            endpoint: Some("book".into()),
            kind: "latency".into(),
            severity: Severity::Critical,
            title: String::new(),
            description: String::new(),
            metrics: BTreeMap::from([("z_score".to_string(), 7.5)]),
            first_seen_ms: 1,
            last_seen_ms: 1,
            occurrences: 1,
            state,
            state_by: None,
            state_at_ms: 1,
            resolved_at_ms: None,
            delivery: BTreeMap::new(),
            triage,
        }
    }

    fn line_value(text: &str, prefix: &str) -> Option<f64> {
        text.lines()
            .find(|l| l.starts_with(prefix))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
    }

    #[test]
    fn status_labels_are_bounded() {
        assert_eq!(status_label(&Outcome::Ok), "ok");
        assert_eq!(
            status_label(&Outcome::Http {
                status: 503,
                detail: "x".into()
            }),
            "http_503"
        );
        assert_eq!(
            status_label(&Outcome::Http {
                status: 1000,
                detail: "x".into()
            }),
            "http_other"
        );
        assert_eq!(
            status_label(&Outcome::Exchange {
                error: ApiError::Exchange {
                    code: Some("-1121".into()),
                    message: "m".into()
                }
            }),
            "exchange_error"
        );
    }

    #[test]
    fn events_count_once_and_resends_of_the_same_fact_do_not() {
        let m = Arc::new(Metrics::new());
        let mut r = EventRecorder::new(m.clone());
        r.record(&sample(Outcome::Ok));
        r.record(&sample(Outcome::Timeout));
        r.record(&sample(Outcome::Http {
            status: 503,
            detail: String::new(),
        }));
        let triage = Triage {
            source: TriageSource::Model,
            escalation: 3,
            requires_human: true,
            summary: String::new(),
            likely_cause: String::new(),
            suggested_actions: vec![],
            auto_resolve: false,
            note: String::new(),
            latency_ms: 10,
            cost_usd: 0.25,
            at_ms: 5,
        };
        r.record(&Event::AlertChanged {
            alert: alert(AlertState::Firing, None),
        });
        // The same alert again (re-fired, then triaged twice with the same result): one raise, one triage.
        r.record(&Event::AlertChanged {
            alert: alert(AlertState::Firing, Some(triage.clone())),
        });
        r.record(&Event::AlertChanged {
            alert: alert(AlertState::Acknowledged, Some(triage)),
        });
        // Cumulative totals: the same totals twice count once, growth counts its difference.
        let totals = TriageTotals {
            calls: 2,
            tokens_in: 100,
            tokens_out: 40,
            cost_usd: 0.25,
            by_model: 1,
            ..TriageTotals::default()
        };
        r.record(&Event::TriageUsage(totals.clone()));
        r.record(&Event::TriageUsage(totals.clone()));
        r.record(&Event::TriageUsage(TriageTotals {
            calls: 3,
            tokens_in: 150,
            cost_usd: 0.5,
            by_rules: 1,
            ..totals
        }));
        for _ in 0..2 {
            r.record(&Event::AlertDelivery {
                fingerprint: "bin/book/latency".into(),
                sink: "slack".into(),
                delivery: Delivery::Sent { at_ms: 9 },
            });
        }
        r.record(&Event::AlertDelivery {
            fingerprint: "bin/book/latency".into(),
            sink: "slack".into(),
            delivery: Delivery::Sent { at_ms: 99 },
        });
        let text = m.encode().expect("encode");
        let v = |p: &str| line_value(&text, p);
        assert_eq!(
            v(r#"exchange_api_calls_total{exchange="bin",endpoint="book",status="ok"}"#),
            Some(1.0)
        );
        assert_eq!(
            v(r#"exchange_api_calls_total{exchange="bin",endpoint="book",status="http_503"}"#),
            Some(1.0)
        );
        // Two latencies recorded: the timeout is not one.
        assert_eq!(
            v(r#"exchange_api_latency_seconds_count{exchange="bin",endpoint="book"}"#),
            Some(2.0)
        );
        assert_eq!(
            v(r#"exwatch_alerts_raised_total{severity="critical",kind="latency"}"#),
            Some(1.0)
        );
        assert_eq!(
            v(r#"alerts_sent_total{severity="critical",channel="slack"}"#),
            Some(2.0)
        );
        assert_eq!(v(r#"exwatch_triage_total{source="model"}"#), Some(1.0));
        assert_eq!(v(r#"exwatch_triage_total{source="rules"}"#), Some(1.0));
        assert_eq!(
            v(r#"exwatch_triage_model_calls_total{outcome="answered"}"#),
            Some(3.0)
        );
        assert_eq!(
            v(r#"exwatch_triage_tokens_total{direction="in"}"#),
            Some(150.0)
        );
        assert_eq!(
            v(r#"exwatch_triage_tokens_total{direction="out"}"#),
            Some(40.0)
        );
        assert_eq!(v("exwatch_triage_cost_usd_total "), Some(0.5));
    }

    #[test]
    fn gauges_follow_the_latest_snapshot_only() {
        let m = Metrics::new();
        let mut st = crate::state::State::new();
        st.apply(&Event::Watching {
            exchange: "bin".into(),
            exchange_kind: crate::model::ExchangeKind::Binance,
            endpoint: "book".into(),
            kind: crate::model::EndpointKind::Book,
            url: "http://x/".into(),
            interval_ms: 2000,
        });
        let mut s = match sample(Outcome::Ok) {
            Event::Sample(s) => s,
            _ => unreachable!(),
        };
        s.at_ms = 10_000;
        st.apply(&Event::Sample(s));
        st.apply(&Event::AlertChanged {
            alert: alert(AlertState::Firing, None),
        });
        let text = m.scrape(&st.snapshot(), 13_500).expect("scrape");
        let v = |p: &str| line_value(&text, p);
        assert_eq!(
            v(r#"exwatch_data_age_seconds{exchange="bin",endpoint="book"}"#),
            Some(3.5)
        );
        assert_eq!(
            v(r#"exwatch_poll_interval_seconds{exchange="bin",endpoint="book"}"#),
            Some(2.0)
        );
        assert_eq!(
            v(r#"exwatch_breaker_state{exchange="bin",endpoint="book"}"#),
            Some(0.0)
        );
        assert_eq!(
            v(r#"anomaly_score{exchange="bin",endpoint="book",detector="latency"}"#),
            Some(7.5)
        );
        assert_eq!(v(r#"exwatch_alerts_open{severity="critical"}"#), Some(1.0));
        // An empty snapshot later: the endpoint's gauges go away with it.
        let text = m.scrape(&Snapshot::default(), 20_000).expect("scrape");
        assert!(!text.contains("exwatch_data_age_seconds{"), "{text}");
        assert_eq!(
            line_value(&text, r#"exwatch_alerts_open{severity="critical"}"#),
            Some(0.0)
        );
    }

    #[test]
    fn process_stats_are_read_on_linux() {
        if !std::path::Path::new("/proc/self/stat").exists() {
            return;
        }
        let s = ProcessStats::read();
        assert!(s.resident_bytes.is_some_and(|b| b > 0), "{s:?}");
        assert!(s.open_fds.is_some_and(|n| n >= 3), "{s:?}");
        assert!(s.cpu_seconds.is_some(), "{s:?}");
        let now = crate::clock::wall_ms() as f64 / 1000.0;
        // Started in the past, and not before 2020.
        assert!(
            s.start_time_seconds
                .is_some_and(|t| t <= now + 1.0 && t > 1_577_836_800.0),
            "{s:?}"
        );
    }

    #[test]
    fn wildcard_listen_needs_allow_wildcard() {
        let mut p = crate::problems::Problems::default();
        MetricsSettings {
            listen: Some("0.0.0.0:9464".parse().expect("addr")),
            allow_wildcard: false,
        }
        .validate(&mut p);
        MetricsSettings {
            listen: Some("[::]:9464".parse().expect("addr")),
            allow_wildcard: false,
        }
        .validate(&mut p);
        assert_eq!(p.0.len(), 2);
        assert_eq!(p.0[0].0, "metrics.listen");
        let mut ok = crate::problems::Problems::default();
        MetricsSettings {
            listen: Some("0.0.0.0:9464".parse().expect("addr")),
            allow_wildcard: true,
        }
        .validate(&mut ok);
        MetricsSettings {
            listen: Some("127.0.0.1:9464".parse().expect("addr")),
            allow_wildcard: false,
        }
        .validate(&mut ok);
        assert!(ok.0.is_empty());
    }

    /// A busy few seconds of two exchanges: every kind of event the exporter
    /// counts or reads gauges from (polls of every outcome, stalls, limiter
    /// waits and fills, breaker trips and rejections, clock offsets, backend
    /// health, alerts raised, re-sent, resolved, delivered, failed, triaged).
    fn golden_events() -> Vec<Event> {
        use crate::model::{
            EndpointKind, ExchangeKind, InvalidReason, Tier, TierFill, Transition, TriageSource,
        };
        let watching = |ex: &str, ep: &str, kind: EndpointKind, interval_ms: u64| Event::Watching {
            exchange: ex.into(),
            exchange_kind: ExchangeKind::Binance,
            endpoint: ep.into(),
            kind,
            url: format!("http://127.0.0.1:1/{ex}/{ep}"),
            interval_ms,
        };
        let poll = |ex: &str, ep: &str, at_ms: i64, latency_us: u64, outcome: Outcome| {
            Event::Sample(Sample {
                exchange: ex.into(),
                endpoint: ep.into(),
                at_ms,
                latency_us,
                status: None,
                outcome,
                summary: None,
                price: None,
                exchange_ts_ms: None,
                signal: None,
            })
        };
        let mut stale = alert(AlertState::Firing, None);
        stale.fingerprint = "okx/*/stale".into();
        stale.exchange = "okx".into();
        stale.endpoint = None;
        stale.kind = "stale".into();
        stale.severity = Severity::Warning;
        stale.metrics = BTreeMap::new();
        let mut err = alert(AlertState::Firing, None);
        err.fingerprint = "bin/book/error_rate".into();
        err.kind = "error_rate".into();
        err.severity = Severity::Emergency;
        let mut usage = alert(AlertState::Firing, None);
        usage.fingerprint = "okx/ticker/rate_limit".into();
        usage.exchange = "okx".into();
        usage.endpoint = Some("ticker".into());
        usage.kind = "rate_limit".into();
        usage.severity = Severity::Info;
        usage.metrics = BTreeMap::from([("usage".to_string(), 0.875)]);
        let mut gone = usage.clone();
        gone.fingerprint = "okx/ticker/ban".into();
        gone.kind = "ban".into();
        let mut gone_resolved = gone.clone();
        gone_resolved.state = AlertState::Resolved;
        gone_resolved.resolved_at_ms = Some(4_000);
        let triaged = Triage {
            source: TriageSource::Rules,
            escalation: 2,
            requires_human: false,
            summary: String::new(),
            likely_cause: String::new(),
            suggested_actions: vec![],
            auto_resolve: false,
            note: String::new(),
            latency_ms: 1,
            cost_usd: 0.0,
            at_ms: 3,
        };
        vec![
            watching("bin", "book", EndpointKind::Book, 1000),
            watching("bin", "ticker", EndpointKind::Ticker, 500),
            watching("okx", "ticker", EndpointKind::Ticker, 2000),
            poll("bin", "book", 1_000, 3_000, Outcome::Ok),
            poll("bin", "book", 2_000, 70_000, Outcome::Ok),
            poll(
                "bin",
                "book",
                3_000,
                1_200_000,
                Outcome::Http {
                    status: 503,
                    detail: "down".into(),
                },
            ),
            poll(
                "bin",
                "book",
                3_500,
                9_000,
                Outcome::Invalid {
                    reason: InvalidReason::CrossedBook { bid: 2.0, ask: 1.0 },
                },
            ),
            poll("bin", "ticker", 1_100, 1_000_000, Outcome::Timeout),
            poll(
                "bin",
                "ticker",
                1_600,
                40_000,
                Outcome::Exchange {
                    error: ApiError::Maintenance {
                        message: "m".into(),
                    },
                },
            ),
            poll(
                "okx",
                "ticker",
                1_200,
                15_000,
                Outcome::RateLimited {
                    retry_after_ms: Some(1000),
                    detail: "429".into(),
                },
            ),
            poll(
                "okx",
                "ticker",
                2_200,
                15_000,
                Outcome::Connect {
                    detail: "refused".into(),
                },
            ),
            poll("okx", "ticker", 4_200, 25_000, Outcome::Ok),
            Event::Stalled {
                exchange: "bin".into(),
                endpoint: "ticker".into(),
                at_ms: 4_000,
                in_flight_ms: 900,
            },
            Event::LimiterWaited {
                exchange: "bin".into(),
                endpoint: "book".into(),
                at_ms: 2_500,
                waited_ms: 40,
                tier: Tier::Endpoint,
            },
            Event::LimiterWaited {
                exchange: "bin".into(),
                endpoint: "book".into(),
                at_ms: 2_600,
                waited_ms: 2_000,
                tier: Tier::Exchange,
            },
            Event::LimiterFill {
                exchange: "bin".into(),
                endpoint: "book".into(),
                at_ms: 3_000,
                tiers: vec![
                    TierFill {
                        tier: Tier::Exchange,
                        tokens: 47.5,
                        capacity: 50.0,
                        blocked_for_ms: None,
                    },
                    TierFill {
                        tier: Tier::Endpoint,
                        tokens: 0.25,
                        capacity: 1.0,
                        blocked_for_ms: Some(100),
                    },
                ],
            },
            Event::BreakerChanged {
                exchange: "bin".into(),
                endpoint: "ticker".into(),
                at_ms: 2_000,
                transition: Transition {
                    from: BreakerState::Closed,
                    to: BreakerState::Open,
                    reason: "3 failures".into(),
                    open_until_ms: Some(6_000),
                },
            },
            Event::BreakerRejected {
                exchange: "bin".into(),
                endpoint: "ticker".into(),
                at_ms: 2_500,
                state: BreakerState::Open,
            },
            Event::BreakerChanged {
                exchange: "okx".into(),
                endpoint: "ticker".into(),
                at_ms: 2_300,
                transition: Transition {
                    from: BreakerState::Open,
                    to: BreakerState::HalfOpen,
                    reason: "probe".into(),
                    open_until_ms: None,
                },
            },
            Event::PollInterval {
                exchange: "okx".into(),
                endpoint: "ticker".into(),
                interval_ms: 4_000,
            },
            Event::ClockOffset {
                exchange: "bin".into(),
                offset_ms: -1_250,
            },
            Event::BackendHealth {
                at_ms: 100,
                component: Component::RedisBreaker,
                healthy: true,
                detail: String::new(),
            },
            Event::BackendHealth {
                at_ms: 200,
                component: Component::Journal,
                healthy: false,
                detail: "disk full".into(),
            },
            Event::AlertChanged {
                alert: alert(AlertState::Firing, None),
            },
            Event::AlertChanged { alert: stale },
            Event::AlertChanged { alert: err },
            Event::AlertChanged { alert: usage },
            Event::AlertChanged { alert: gone },
            Event::AlertChanged {
                alert: gone_resolved,
            },
            Event::AlertChanged {
                alert: alert(AlertState::Acknowledged, Some(triaged)),
            },
            Event::AlertDelivery {
                fingerprint: "bin/book/latency".into(),
                sink: "slack".into(),
                delivery: Delivery::Sent { at_ms: 5 },
            },
            Event::AlertDelivery {
                fingerprint: "okx/*/stale".into(),
                sink: "slack".into(),
                delivery: Delivery::Sent { at_ms: 6 },
            },
            Event::AlertDelivery {
                fingerprint: "nobody/knows/this".into(),
                sink: "email".into(),
                delivery: Delivery::Sent { at_ms: 7 },
            },
            Event::AlertDelivery {
                fingerprint: "okx/*/stale".into(),
                sink: "pagerduty".into(),
                delivery: Delivery::Retrying {
                    attempts: 1,
                    last_error: "503".into(),
                },
            },
            Event::AlertDelivery {
                fingerprint: "okx/*/stale".into(),
                sink: "webhook".into(),
                delivery: Delivery::Failed {
                    error: "403".into(),
                },
            },
            Event::AlertDelivery {
                fingerprint: "okx/*/stale".into(),
                sink: "webhook".into(),
                delivery: Delivery::Suppressed {
                    reason: "grouped".into(),
                },
            },
            Event::TriageUsage(TriageTotals {
                calls: 4,
                failed_calls: 1,
                tokens_in: 1_000,
                tokens_out: 250,
                cost_usd: 0.125,
                by_model: 3,
                by_rules: 2,
                fallbacks: 1,
                overflows: 0,
            }),
        ]
    }

    /// Every line of an exposition except exwatch's own process figures
    /// (which move by themselves), sorted: the order of families and series
    /// is not part of the format's meaning.
    fn comparable(text: &str) -> String {
        let mut lines: Vec<&str> = text
            .lines()
            .filter(|l| !l.contains(" process_") && !l.starts_with("process_"))
            .collect();
        lines.sort_unstable();
        lines.join("\n") + "\n"
    }

    /// The whole exposition of [`golden_events`] at a fixed time, against
    /// the one the exporter gave before its split into areas
    /// (`tests/fixtures/metrics/exposition.txt`; `EXWATCH_BLESS=1` rewrites it).
    fn assert_golden(text: &str) {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/metrics/exposition.txt"
        );
        let got = comparable(text);
        if std::env::var_os("EXWATCH_BLESS").is_some() {
            std::fs::create_dir_all(std::path::Path::new(path).parent().expect("dir"))
                .expect("mkdir");
            std::fs::write(path, &got).expect("bless");
        }
        let want = std::fs::read_to_string(path).expect("read the golden exposition");
        assert_eq!(got, want, "exposition differs from {path}");
    }

    #[test]
    fn the_exposition_of_a_busy_stretch_is_unchanged() {
        let m = Arc::new(Metrics::new());
        let mut r = EventRecorder::new(m.clone());
        let mut st = crate::state::State::new();
        for ev in &golden_events() {
            st.apply(ev);
            r.record(ev);
        }
        let text = m.scrape(&st.snapshot(), 50_000).expect("scrape");
        assert_golden(&text);
    }
}
