//! Row order of the two panels. By default the exchanges panel puts rows
//! with a problem first (worst first, config order among equals), so a fault
//! in the last exchange of the config is on screen at 80x24; the alert feed
//! is ordered by severity, then by when the current episode started (newest
//! first), never by when an alert was last seen, so rows do not jump each
//! time a firing alert is seen again. The operator can cycle each panel's
//! order (the `sort` key), as in k9s or btop.

use crate::model::{Alert, AlertState, BreakerState, Severity};
use crate::state::{EndpointView, ExchangeView, Snapshot};
use std::cmp::Reverse;

/// Order of the exchanges panel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EndpointOrder {
    /// Rows with a problem first, worst first; config order among equals.
    #[default]
    Problems,
    /// As written in the config.
    Config,
    /// Slowest p99 first.
    Latency,
    /// Highest error rate first.
    Errors,
    /// Oldest data first.
    DataAge,
}

impl EndpointOrder {
    /// The next order of the cycle.
    pub fn next(self) -> EndpointOrder {
        match self {
            EndpointOrder::Problems => EndpointOrder::Config,
            EndpointOrder::Config => EndpointOrder::Latency,
            EndpointOrder::Latency => EndpointOrder::Errors,
            EndpointOrder::Errors => EndpointOrder::DataAge,
            EndpointOrder::DataAge => EndpointOrder::Problems,
        }
    }

    /// Shown in the panel title.
    pub fn label(self) -> &'static str {
        match self {
            EndpointOrder::Problems => "problems first",
            EndpointOrder::Config => "config order",
            EndpointOrder::Latency => "by P99",
            EndpointOrder::Errors => "by ERR",
            EndpointOrder::DataAge => "by AGE",
        }
    }
}

/// Order of the alert feed (open alerts always before resolved ones).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AlertOrder {
    /// Severity, then the newest episode first.
    #[default]
    Severity,
    /// The newest episode first, whatever the severity.
    Age,
    /// By exchange, then endpoint, then severity.
    Exchange,
    /// Firing, then acknowledged, then silenced; severity within each.
    State,
}

impl AlertOrder {
    /// The next order of the cycle.
    pub fn next(self) -> AlertOrder {
        match self {
            AlertOrder::Severity => AlertOrder::Age,
            AlertOrder::Age => AlertOrder::Exchange,
            AlertOrder::Exchange => AlertOrder::State,
            AlertOrder::State => AlertOrder::Severity,
        }
    }

    /// Shown in the panel title.
    pub fn label(self) -> &'static str {
        match self {
            AlertOrder::Severity => "by SEV",
            AlertOrder::Age => "by AGE",
            AlertOrder::Exchange => "by EXCHANGE",
            AlertOrder::State => "by STATE",
        }
    }
}

fn severity_rank(s: Severity) -> u8 {
    match s {
        Severity::Info => 1,
        Severity::Warning => 2,
        Severity::Critical => 3,
        Severity::Emergency => 4,
    }
}

/// How bad an endpoint row looks: 0 healthy; 1..=4 as the worst of its open
/// alerts (an exchange-wide alert counts for every endpoint of the
/// exchange), its breaker (open or hung: as a critical; half-open: as a
/// warning), its last poll (failed, or held by the limiter: as a warning)
/// and, for a stream row, its state (not live, or a broken book: as a warning).
pub fn problem_rank(ex: &ExchangeView, ep: &EndpointView, alerts: &[Alert], now_ms: i64) -> u8 {
    let from_alerts = alerts
        .iter()
        .filter(|a| {
            a.state.is_open()
                && a.exchange == ex.name
                && a.endpoint.as_deref().is_none_or(|e| e == ep.name)
        })
        .map(|a| severity_rank(a.severity))
        .max()
        .unwrap_or(0);
    let from_breaker = match ep.breaker.state {
        BreakerState::Open => 3,
        BreakerState::HalfOpen => 2,
        BreakerState::Closed => 0,
    };
    let hung = if ep.stalled_since_ms.is_some() { 3 } else { 0 };
    let failing = match &ep.last {
        Some(s) if !s.outcome.is_ok() => 2,
        _ => 0,
    };
    let held = if ep.held_at(now_ms).is_some() { 2 } else { 0 };
    // A stream row not live (or its book invalid), alert or not: as a warning.
    let stream = match &ep.stream {
        Some(sv) if !sv.healthy() => 2,
        _ => 0,
    };
    from_alerts
        .max(stream)
        .max(from_breaker)
        .max(hung)
        .max(failing)
        .max(held)
}

/// Sort endpoint rows (given in config order) in place.
pub fn endpoints(
    rows: &mut [(&ExchangeView, &EndpointView)],
    order: EndpointOrder,
    snap: &Snapshot,
    now_ms: i64,
) {
    // `sort_by_key` is stable: config order stays among equals.
    match order {
        EndpointOrder::Config => {}
        EndpointOrder::Problems => {
            rows.sort_by_cached_key(|(ex, ep)| Reverse(problem_rank(ex, ep, &snap.alerts, now_ms)))
        }
        EndpointOrder::Latency => rows.sort_by_key(|(_, ep)| Reverse(ep.p99_us)),
        EndpointOrder::Errors => {
            rows.sort_by_key(|(_, ep)| Reverse((ep.error_rate * 10_000.0).round() as i64))
        }
        EndpointOrder::DataAge => rows.sort_by_key(|(_, ep)| {
            // No good data at all is the oldest.
            Reverse(ep.data_age_ms(now_ms).unwrap_or(i64::MAX))
        }),
    }
}

fn state_rank(s: AlertState) -> u8 {
    match s {
        AlertState::Firing => 3,
        AlertState::Acknowledged => 2,
        AlertState::Silenced => 1,
        AlertState::Resolved => 0,
    }
}

/// Sort alert rows in place: open before resolved, then by `order`; ties
/// by fingerprint so equal rows never swap between frames.
pub fn alerts(rows: &mut [&Alert], order: AlertOrder) {
    rows.sort_by(|a, b| {
        let open = b.state.is_open().cmp(&a.state.is_open());
        let sev = severity_rank(b.severity).cmp(&severity_rank(a.severity));
        let newest = b.episode_start().cmp(&a.episode_start());
        let by = match order {
            AlertOrder::Severity => sev.then(newest),
            AlertOrder::Age => newest.then(sev),
            AlertOrder::Exchange => a
                .exchange
                .cmp(&b.exchange)
                .then(a.endpoint.cmp(&b.endpoint))
                .then(sev)
                .then(newest),
            AlertOrder::State => state_rank(b.state)
                .cmp(&state_rank(a.state))
                .then(sev)
                .then(newest),
        };
        open.then(by).then(a.fingerprint.cmp(&b.fingerprint))
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cycles_come_back() {
        let mut o = EndpointOrder::default();
        for _ in 0..5 {
            o = o.next();
        }
        assert_eq!(o, EndpointOrder::Problems);
        let mut a = AlertOrder::default();
        for _ in 0..4 {
            a = a.next();
        }
        assert_eq!(a, AlertOrder::Severity);
    }
}
