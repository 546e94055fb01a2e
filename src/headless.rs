//! `run --headless` and `replay --headless`: status lines instead of the
//! dashboard, for logs and CI. Every time and age in a line is taken
//! against the line's clock ([`Line::now_ms`]): the wall clock when live,
//! the recorded time in a replay.

use crate::model::Alert;
use crate::model::BreakerState;
use crate::state::{ExchangeView, Snapshot};
use serde::Serialize;
use std::io::Write;

/// How to write a round of status lines.
#[derive(Debug, Clone, Copy)]
pub struct Line<'a> {
    /// `instance.name` of the monitor (the recorded one in a replay); in
    /// JSON lines only (`instance`).
    pub instance: &'a str,
    /// The lines' clock, unix ms: their timestamp, and what data ages and
    /// holds are measured against.
    pub now_ms: i64,
    /// JSON lines instead of text.
    pub json: bool,
}

#[derive(Debug, Serialize)]
struct JsonLine<'a> {
    ts_ms: i64,
    instance: &'a str,
    exchange: &'a str,
    healthy: bool,
    endpoints: Vec<JsonEndpoint<'a>>,
    /// The exchange's open alerts (firing, acknowledged, silenced).
    alerts: Vec<JsonAlert<'a>>,
    /// exwatch's own backends that are failing (a Redis, the journal): on
    /// every line, empty when none is; the monitor goes on without them.
    degraded: Vec<JsonBackend<'a>>,
}

#[derive(Debug, Serialize)]
struct JsonBackend<'a> {
    /// `redis_limiter`, `redis_breaker`, `redis_dedup`, `journal`.
    component: &'static str,
    detail: &'a str,
    /// Unix ms since when it has been failing.
    since_ms: i64,
}

fn degraded(snap: &Snapshot) -> impl Iterator<Item = &crate::state::HealthView> {
    snap.health.iter().filter(|h| !h.healthy)
}

#[derive(Debug, Serialize)]
struct JsonAlert<'a> {
    fingerprint: &'a str,
    severity: &'static str,
    state: &'static str,
    title: &'a str,
    first_seen_ms: i64,
    occurrences: u64,
    /// The incident it is a symptom of (`<root fingerprint>#<episode>`).
    #[serde(skip_serializing_if = "Option::is_none")]
    incident: Option<&'a str>,
}

#[derive(Debug, Serialize)]
struct JsonEndpoint<'a> {
    name: &'a str,
    outcome: String,
    detail: String,
    latency_ms: Option<f64>,
    p50_ms: Option<f64>,
    p99_ms: Option<f64>,
    error_rate: f64,
    calls: u64,
    breaker: &'static str,
    data_age_ms: Option<i64>,
    interval_ms: u64,
    limiter_waited_ms: u64,
    /// Unix ms until which the limiter holds this endpoint on the
    /// exchange's order (Retry-After, a ban), and why.
    #[serde(skip_serializing_if = "Option::is_none")]
    held_until_ms: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    held_why: Option<&'a str>,
    /// A WebSocket stream row's last status (its `outcome` is then the
    /// stream's state: `live`, `zombie`, `down`...).
    #[serde(skip_serializing_if = "Option::is_none")]
    stream: Option<&'a crate::model::StreamStatus>,
}

/// A row's outcome and detail: the last poll's, or a stream row's state
/// and why; `pending` before either.
fn outcome_of(e: &crate::state::EndpointView) -> (String, String) {
    if let Some(sv) = &e.stream {
        return match &sv.status {
            Some(st) => (st.state.as_str().to_string(), st.detail.clone()),
            None => ("pending".into(), String::new()),
        };
    }
    match &e.last {
        Some(s) => (s.outcome.label(), s.outcome.detail()),
        None => ("pending".into(), String::new()),
    }
}

/// Write one line per exchange for this snapshot, on the clock and with
/// the instance name `line` gives. Errors: writing to `out` failed (a
/// closed pipe, a full disk).
pub fn write_status_at(out: &mut impl Write, snap: &Snapshot, line: Line) -> std::io::Result<()> {
    let now = line.now_ms;
    for ex in &snap.exchanges {
        if line.json {
            let mut l = json_line(ex, snap, now);
            l.instance = line.instance;
            serde_json::to_writer(&mut *out, &l)?;
            writeln!(out)?;
        } else {
            writeln!(out, "{}", text_line(ex, snap, now))?;
        }
    }
    out.flush()
}

fn ms(us: Option<u64>) -> Option<f64> {
    us.map(|u| (u as f64 / 100.0).round() / 10.0)
}

fn open_alerts<'a>(ex: &ExchangeView, snap: &'a Snapshot) -> impl Iterator<Item = &'a Alert> {
    let name = ex.name.clone();
    snap.alerts
        .iter()
        .filter(move |a| a.exchange == name && a.state.is_open())
}

fn json_line<'a>(ex: &'a ExchangeView, snap: &'a Snapshot, now: i64) -> JsonLine<'a> {
    JsonLine {
        alerts: open_alerts(ex, snap)
            .map(|a| JsonAlert {
                fingerprint: &a.fingerprint,
                severity: a.severity.as_str(),
                state: a.state.as_str(),
                title: &a.title,
                first_seen_ms: a.first_seen_ms,
                occurrences: a.occurrences,
                incident: a.incident.as_deref(),
            })
            .collect(),
        degraded: degraded(snap)
            .map(|h| JsonBackend {
                component: h.component.name(),
                detail: &h.detail,
                since_ms: h.since_ms,
            })
            .collect(),
        ts_ms: now,
        instance: "",
        exchange: &ex.name,
        healthy: ex.healthy,
        endpoints: ex
            .endpoints
            .iter()
            .map(|e| JsonEndpoint {
                name: &e.name,
                outcome: outcome_of(e).0,
                detail: outcome_of(e).1,
                latency_ms: ms(e.last.as_ref().map(|s| s.latency_us)),
                p50_ms: ms(e.p50_us),
                p99_ms: ms(e.p99_us),
                error_rate: e.error_rate,
                calls: e.calls,
                breaker: e.breaker.state.as_str(),
                data_age_ms: e.data_age_ms(now),
                interval_ms: e.interval_ms,
                limiter_waited_ms: e.limiter_waited_ms,
                held_until_ms: e.held_at(now).map(|h| h.until_ms),
                held_why: e.held_at(now).map(|h| h.why.as_str()),
                stream: e.stream.as_ref().and_then(|sv| sv.status.as_ref()),
            })
            .collect(),
    }
}

fn text_line(ex: &ExchangeView, snap: &Snapshot, now: i64) -> String {
    let ts = time::OffsetDateTime::from_unix_timestamp_nanos(now as i128 * 1_000_000)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| now.to_string());
    let mut line = format!(
        "{ts} {:<10} {:<4}",
        ex.name,
        if ex.healthy { "OK" } else { "FAIL" }
    );
    for e in &ex.endpoints {
        let outcome = outcome_of(e).0;
        let lat = match (&e.stream, &e.last) {
            (Some(sv), _) => sv
                .status
                .as_ref()
                .map(|st| format!("{:.0}/s", st.msgs_per_s))
                .unwrap_or_else(|| "-".into()),
            (None, Some(s)) => format!("{:.0}ms", s.latency_us as f64 / 1000.0),
            (None, None) => "-".into(),
        };
        line.push_str(&format!(" | {} {} {}", e.name, outcome, lat));
        if e.breaker.state != BreakerState::Closed {
            line.push_str(&format!(" breaker={}", e.breaker.state.as_str()));
        }
        if let Some(hold) = e.held_at(now) {
            line.push_str(&format!(
                " held until {} ({})",
                crate::clock::hms(hold.until_ms),
                hold.why
            ));
        }
        if let Some(age) = e.data_age_ms(now).filter(|a| *a > 2 * e.interval_ms as i64) {
            line.push_str(&format!(" age={:.0}s", age as f64 / 1000.0));
        }
    }
    let open = open_alerts(ex, snap).count();
    if open > 0 {
        line.push_str(&format!(" | alerts={open}"));
    }
    for h in degraded(snap) {
        line.push_str(&format!(
            " | DEGRADED {} since {}: {}",
            h.component.as_str(),
            crate::clock::hms(h.since_ms),
            h.detail
        ));
    }
    line
}
