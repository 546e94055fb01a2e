//! What triage knows about one alert: the alert itself, its endpoint's recent
//! figures, the breaker and limiter state, and the other open alerts on the
//! same exchange. Built from a [`Snapshot`]; the rules read it and the prompt
//! serializes it, so the model and the rules see the same facts.
//!
//! Only alert data goes in: no URLs (a proxy URL may carry credentials), no
//! sink names or delivery errors (they can quote webhook URLs), nothing from
//! the config.

use crate::model::BreakerState;
use crate::model::Tier;
use crate::model::{Alert, AlertKind, AlertState, Severity};
use crate::state::{EndpointView, ExchangeView, Snapshot};
use serde::Serialize;
use std::collections::BTreeMap;

/// Related alerts sent per alert: enough to see an exchange-wide incident,
/// few enough that a burst of 50 alerts does not make a huge prompt.
pub const MAX_RELATED: usize = 8;
/// Free text (titles, descriptions) is cut to this many characters.
pub const MAX_TEXT: usize = 300;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AlertContext {
    pub alert: AlertFacts,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<EndpointFacts>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exchange: Option<ExchangeFacts>,
    /// Other open alerts on the same exchange, newest first.
    pub related_open_alerts: Vec<RelatedAlert>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AlertFacts {
    pub fingerprint: String,
    pub exchange: String,
    pub endpoint: Option<String>,
    /// Serialized as its name (`latency`, `payload:crossed_book`...).
    pub kind: AlertKind,
    pub severity: Severity,
    pub state: AlertState,
    pub title: String,
    pub description: String,
    pub metrics: BTreeMap<String, f64>,
    pub first_seen_ms: i64,
    pub last_seen_ms: i64,
    pub occurrences: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EndpointFacts {
    pub latency_p50_ms: Option<f64>,
    pub latency_p99_ms: Option<f64>,
    /// Share of failed polls among the recent ones (0..1).
    pub recent_error_rate: f64,
    pub recent_polls: usize,
    pub calls: u64,
    pub failures: u64,
    /// Label of the last poll's outcome: `ok`, `http 503`, `rate_limited`, `banned`...
    pub last_outcome: Option<String>,
    pub breaker: BreakerFacts,
    pub polls_skipped_by_breaker: u64,
    pub limiter: Vec<LimiterFacts>,
    pub limiter_waits: u64,
    pub last_limiter_wait_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BreakerFacts {
    pub state: BreakerState,
    pub consecutive_failures: u32,
    pub trips: u32,
    /// Milliseconds until the breaker lets a probe through, when open on a timer.
    pub open_for_ms: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LimiterFacts {
    pub tier: Tier,
    /// Share of the budget in use (0..1).
    pub used: f64,
    /// Set while the exchange told us to hold off.
    pub blocked_for_ms: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExchangeFacts {
    pub endpoints: usize,
    pub unhealthy_endpoints: usize,
    pub open_breakers: usize,
    pub clock_offset_ms: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RelatedAlert {
    pub fingerprint: String,
    pub kind: AlertKind,
    pub severity: Severity,
    pub state: AlertState,
    pub title: String,
}

impl AlertContext {
    /// The context of `alert` as the snapshot sees it. An alert whose
    /// endpoint is not (yet) in the snapshot simply has no endpoint facts.
    pub fn build(alert: &Alert, snapshot: &Snapshot) -> AlertContext {
        let ex = snapshot.exchanges.iter().find(|e| e.name == alert.exchange);
        let ep = ex.and_then(|ex| {
            alert
                .endpoint
                .as_deref()
                .and_then(|name| ex.endpoints.iter().find(|e| e.name == name))
        });
        let mut related: Vec<&Alert> = snapshot
            .alerts
            .iter()
            .filter(|a| {
                a.exchange == alert.exchange
                    && a.fingerprint != alert.fingerprint
                    && a.state.is_open()
            })
            .collect();
        related.sort_by(|a, b| {
            b.last_seen_ms
                .cmp(&a.last_seen_ms)
                .then(a.fingerprint.cmp(&b.fingerprint))
        });
        AlertContext {
            alert: AlertFacts {
                fingerprint: alert.fingerprint.clone(),
                exchange: alert.exchange.clone(),
                endpoint: alert.endpoint.clone(),
                kind: alert.kind.clone(),
                severity: alert.severity,
                state: alert.state,
                title: cut(&alert.title),
                description: cut(&alert.description),
                metrics: alert.metrics.clone(),
                first_seen_ms: alert.first_seen_ms,
                last_seen_ms: alert.last_seen_ms,
                occurrences: alert.occurrences,
            },
            endpoint: ep.map(|ep| endpoint_facts(ep, snapshot.last_event_ms)),
            exchange: ex.map(exchange_facts),
            related_open_alerts: related
                .into_iter()
                .take(MAX_RELATED)
                .map(|a| RelatedAlert {
                    fingerprint: a.fingerprint.clone(),
                    kind: a.kind.clone(),
                    severity: a.severity,
                    state: a.state,
                    title: cut(&a.title),
                })
                .collect(),
        }
    }

    /// Context of an alert with nothing else known (no snapshot yet).
    pub fn bare(alert: &Alert) -> AlertContext {
        AlertContext::build(alert, &Snapshot::default())
    }

    pub fn breaker_state(&self) -> Option<BreakerState> {
        self.endpoint.as_ref().map(|e| e.breaker.state)
    }
}

fn endpoint_facts(ep: &EndpointView, now_ms: i64) -> EndpointFacts {
    EndpointFacts {
        latency_p50_ms: ep.p50_us.map(us_to_ms),
        latency_p99_ms: ep.p99_us.map(us_to_ms),
        recent_error_rate: ep.error_rate,
        recent_polls: ep.recent_latency_us.len(),
        calls: ep.calls,
        failures: ep.failures,
        last_outcome: ep.last.as_ref().map(|s| s.outcome.label()),
        breaker: BreakerFacts {
            state: ep.breaker.state,
            consecutive_failures: ep.breaker.consecutive_failures,
            trips: ep.breaker.trips,
            open_for_ms: ep.breaker.open_until_ms.map(|u| (u - now_ms).max(0)),
        },
        polls_skipped_by_breaker: ep.breaker_rejections,
        limiter: ep
            .limiter
            .iter()
            .map(|t| LimiterFacts {
                tier: t.tier,
                used: if t.capacity > 0.0 {
                    ((t.capacity - t.tokens) / t.capacity).clamp(0.0, 1.0)
                } else {
                    0.0
                },
                blocked_for_ms: t.blocked_for_ms,
            })
            .collect(),
        limiter_waits: ep.limiter_waits,
        last_limiter_wait_ms: ep.last_wait_ms,
    }
}

fn exchange_facts(ex: &ExchangeView) -> ExchangeFacts {
    ExchangeFacts {
        endpoints: ex.endpoints.len(),
        unhealthy_endpoints: ex.endpoints.iter().filter(|e| !e.healthy()).count(),
        open_breakers: ex
            .endpoints
            .iter()
            .filter(|e| e.breaker.state == BreakerState::Open)
            .count(),
        clock_offset_ms: ex.clock_offset_ms,
    }
}

fn us_to_ms(us: u64) -> f64 {
    // Two decimals are plenty and keep the prompt short.
    (us as f64 / 10.0).round() / 100.0
}

fn cut(s: &str) -> String {
    if s.chars().count() <= MAX_TEXT {
        s.to_string()
    } else {
        let mut out: String = s.chars().take(MAX_TEXT).collect();
        out.push('…');
        out
    }
}
