//! `exwatch check`: probe every configured endpoint once and say which are healthy.
//!
//! Check runs no rate limiter (one request per endpoint), but it obeys the
//! holds the exchange orders: an answer that orders one (a 429 with
//! `Retry-After`, a ban, a window reported empty until its reset: the live
//! limiter's [`SignalPlan`]) holds the endpoints the live limiter would hold
//! ([`Tier::holds`](crate::model::Tier::holds) on every tier of that
//! request). An endpoint held before its turn is not probed; every endpoint
//! held when check ends says `held until HH:MM:SS (why)`.

pub mod listing;
pub mod streams;

use crate::config::{Config, ResolvedEndpoint};
use crate::exchange::Payload;
use crate::exchange::validate::Validator;
use crate::limiter::SignalPlan;
use crate::model::{EndpointId, EndpointKind};
use crate::model::{Outcome, Sample};
use crate::probe;
use serde::Serialize;
use std::collections::HashMap;

#[derive(Debug, Clone, Serialize)]
pub struct CheckRow {
    pub exchange: String,
    pub endpoint: String,
    pub url: String,
    pub status: Option<u16>,
    /// Response time, ms; 0 when not probed.
    pub latency_ms: f64,
    /// Probed, and the answer was good.
    pub healthy: bool,
    /// The outcome's label (`ok`, `rate_limited`, ...), or `held` when the
    /// endpoint was held before its turn and not probed.
    pub verdict: String,
    pub reason: String,
    pub summary: Option<String>,
    /// The normalized payload (symbol, prices, timestamp), when it parsed.
    pub normalized: Option<Payload>,
    /// How the probe ended; absent when the endpoint was not probed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outcome: Option<Outcome>,
    /// Unix ms until which the exchange holds this endpoint (an answer of
    /// it or of an endpoint sharing its tier ordered the hold); absent
    /// when not held at the end of check.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub held_until_ms: Option<i64>,
    /// Why it is held: the answer that ordered it (`time: rate_limited`,
    /// `ticker: banned`, `book: weight empty until reset`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub held_why: Option<String>,
}

/// A hold an answer ordered: from `origin`, on every tier of its request.
#[derive(Debug, Clone)]
struct Ordered {
    origin: EndpointId,
    tiers: Vec<crate::model::Tier>,
    /// Unix ms.
    until_ms: i64,
    why: String,
}

impl Ordered {
    /// The hold `s`, an answer of `ep`, orders, if any: the live limiter's
    /// rule ([`SignalPlan`]), dated from the answer.
    fn of(ep: &ResolvedEndpoint, s: &Sample) -> Option<Ordered> {
        let hold_ms = SignalPlan::new(&ep.limit, s.signal.as_ref()?, s.at_ms).hold_ms?;
        let why = match &s.outcome {
            Outcome::RateLimited { .. } | Outcome::Banned { .. } => {
                format!("{}: {}", ep.endpoint, s.outcome.label())
            }
            _ => format!("{}: weight empty until reset", ep.endpoint),
        };
        Some(Ordered {
            origin: EndpointId::new(ep.exchange.as_str(), ep.endpoint.as_str()),
            tiers: ep.limit.tiers.iter().map(|t| t.tier).collect(),
            until_ms: s.at_ms.saturating_add(hold_ms.ceil() as i64),
            why,
        })
    }

    fn holds(&self, ep: &ResolvedEndpoint) -> bool {
        let other = EndpointId::new(ep.exchange.as_str(), ep.endpoint.as_str());
        self.tiers.iter().any(|t| t.holds(&self.origin, &other))
    }
}

/// The longest of `holds` on `ep` still in force at `now_ms`.
fn held<'h>(holds: &'h [Ordered], ep: &ResolvedEndpoint, now_ms: i64) -> Option<&'h Ordered> {
    holds
        .iter()
        .filter(|h| h.until_ms > now_ms && h.holds(ep))
        .max_by_key(|h| h.until_ms)
}

#[derive(Debug, Clone, Serialize)]
pub struct CheckReport {
    /// Every endpoint answered well (the exit code follows it); a degraded
    /// backend does not change it: the monitor runs without one.
    pub healthy: bool,
    pub endpoints: Vec<CheckRow>,
    /// exwatch's own backends the config uses (a Redis part), each pinged
    /// once; empty when the config uses none.
    pub backends: Vec<BackendCheck>,
    /// Every stream subscription (`[[exchanges.streams]]`): its first data
    /// message awaited up to [`streams::STREAM_DEADLINE`]; empty without streams.
    pub streams: Vec<streams::StreamCheck>,
}

/// One backend of exwatch as `check` found it.
#[derive(Debug, Clone, Serialize)]
pub struct BackendCheck {
    /// `redis_limiter`, `redis_breaker` or `redis_dedup`.
    pub component: &'static str,
    pub healthy: bool,
    /// `PING 1.2 ms`, or why it failed (secrets scrubbed).
    pub detail: String,
    /// The PING round trip, ms, when it answered.
    pub round_trip_ms: Option<f64>,
}

/// Ping the Redis the config uses, once, for each part that uses it.
async fn backends(cfg: &Config) -> Vec<BackendCheck> {
    use crate::model::Component;
    let parts: Vec<Component> = [
        (
            cfg.limiter.backend == crate::limiter::LimiterBackend::Redis,
            Component::RedisLimiter,
        ),
        (
            cfg.breaker.store == crate::breaker::settings::StoreKind::Redis,
            Component::RedisBreaker,
        ),
        (
            cfg.alerts.dedup.backend == crate::alert::dedup::DedupBackend::Redis,
            Component::RedisDedup,
        ),
    ]
    .into_iter()
    .filter_map(|(used, c)| used.then_some(c))
    .collect();
    let Some(redis) = cfg.redis.as_ref().filter(|_| !parts.is_empty()) else {
        return Vec::new();
    };
    let result = match crate::redis_link::RedisLink::from_config(redis) {
        Ok(link) => link.health().await.map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    parts
        .into_iter()
        .map(|c| match &result {
            Ok(rtt) => BackendCheck {
                component: c.name(),
                healthy: true,
                detail: format!("PING {:.1} ms", rtt.as_secs_f64() * 1000.0),
                round_trip_ms: Some(rtt.as_secs_f64() * 1000.0),
            },
            Err(e) => BackendCheck {
                component: c.name(),
                healthy: false,
                detail: crate::secrets::scrubbed(e),
                round_trip_ms: None,
            },
        })
        .collect()
}

/// Probe every endpoint once, all at the same time; a hung one only costs its own timeout.
/// Time endpoints go first: their clock offsets correct the staleness check of the rest.
pub async fn run(cfg: &Config, client: &reqwest::Client) -> CheckReport {
    // Streams are checked meanwhile: their deadline overlaps the probes.
    let stream_check = tokio::spawn(streams::run(cfg.streams(), streams::STREAM_DEADLINE));
    let endpoints = cfg.endpoints();
    let max_body = cfg.http.max_body_bytes;
    let (time_eps, data_eps): (Vec<_>, Vec<_>) =
        endpoints.iter().partition(|e| e.kind == EndpointKind::Time);
    let mut rows: Vec<(usize, CheckRow)> = Vec::new();
    let mut offsets: HashMap<String, i64> = HashMap::new();
    let mut holds: Vec<Ordered> = Vec::new();
    let time_probes = time_eps.iter().map(|ep| one(client, ep, max_body, None));
    for (ep, p) in futures::future::join_all(time_probes).await {
        if let Some(off) = p.clock_offset_ms {
            offsets.insert(ep.exchange.clone(), off);
        }
        holds.extend(Ordered::of(ep, &p.sample));
        rows.push((position(&endpoints, ep), row(ep, p)));
    }
    // What a time endpoint's answer held waits its turn out: not probed,
    // as the live limiter would not send it.
    let now = crate::clock::now_ms();
    let (held_eps, data_eps): (Vec<_>, Vec<_>) = data_eps
        .into_iter()
        .partition(|ep| held(&holds, ep, now).is_some());
    for ep in held_eps {
        rows.push((position(&endpoints, ep), not_probed(ep)));
    }
    let data_probes = data_eps
        .iter()
        .map(|ep| one(client, ep, max_body, offsets.get(&ep.exchange).copied()));
    for (ep, p) in futures::future::join_all(data_probes).await {
        holds.extend(Ordered::of(ep, &p.sample));
        rows.push((position(&endpoints, ep), row(ep, p)));
    }
    rows.sort_by_key(|(i, _)| *i);
    // Every endpoint a hold still covers says so, whatever it answered.
    let now = crate::clock::now_ms();
    let rows: Vec<CheckRow> = rows
        .into_iter()
        .map(|(i, mut r)| {
            if let Some(h) = endpoints.get(i).and_then(|ep| held(&holds, ep, now)) {
                r.held_until_ms = Some(h.until_ms);
                r.held_why = Some(h.why.clone());
            }
            r
        })
        .collect();
    let streams = stream_check.await.unwrap_or_default();
    CheckReport {
        healthy: rows.iter().all(|r| r.healthy) && streams.iter().all(|s| s.healthy),
        endpoints: rows,
        backends: backends(cfg).await,
        streams,
    }
}

/// The row of an endpoint held before its turn.
fn not_probed(ep: &ResolvedEndpoint) -> CheckRow {
    CheckRow {
        exchange: ep.exchange.clone(),
        endpoint: ep.endpoint.clone(),
        url: ep.url.clone(),
        status: None,
        latency_ms: 0.0,
        healthy: false,
        verdict: "held".into(),
        reason: "not probed: the exchange holds it".into(),
        summary: None,
        normalized: None,
        outcome: None,
        held_until_ms: None,
        held_why: None,
    }
}

async fn one<'a>(
    client: &reqwest::Client,
    ep: &'a ResolvedEndpoint,
    max_body: usize,
    clock_offset_ms: Option<i64>,
) -> (&'a ResolvedEndpoint, probe::Probed) {
    let mut v = Validator::new(ep.validation.clone());
    if let Some(off) = clock_offset_ms {
        v.set_clock_offset_ms(off);
    }
    (
        ep,
        probe::probe_once(client, ep, max_body, Some(&mut v)).await,
    )
}

fn position(all: &[ResolvedEndpoint], ep: &ResolvedEndpoint) -> usize {
    all.iter()
        .position(|e| e.exchange == ep.exchange && e.endpoint == ep.endpoint)
        .unwrap_or(usize::MAX)
}

fn row(ep: &ResolvedEndpoint, p: probe::Probed) -> CheckRow {
    let s = p.sample;
    CheckRow {
        exchange: s.id.exchange,
        endpoint: s.id.endpoint,
        url: ep.url.clone(),
        status: s.status,
        latency_ms: s.latency_us as f64 / 1000.0,
        healthy: s.outcome.is_ok(),
        verdict: s.outcome.label(),
        reason: s.outcome.detail(),
        summary: s.summary,
        normalized: p.payload,
        outcome: Some(s.outcome),
        held_until_ms: None,
        held_why: None,
    }
}

/// A plain table, one endpoint a line: exchange, endpoint, HTTP status,
/// latency, a summary (last price or best bid/ask) and the verdict with its
/// cause. `cut`: the most characters of a cause (the summary gets up to
/// 48), for a terminal; `None` keeps them whole (a file, a pipe). Control
/// characters become spaces either way, so a row stays one line. The
/// normalized payload is in [`CheckReport`] (`check --json`), not here.
pub fn render_table(report: &CheckReport, cut: Option<usize>) -> String {
    let fit = |s: &str, max: usize| one_line(s, cut.map(|c| c.min(max)));
    let headers = [
        "EXCHANGE", "ENDPOINT", "HTTP", "LATENCY", "SUMMARY", "VERDICT",
    ];
    let rows: Vec<[String; 6]> = report
        .endpoints
        .iter()
        .map(|r| {
            let held = r
                .held_until_ms
                .zip(r.held_why.as_ref())
                .map(|(until, why)| format!("held until {} ({why})", crate::clock::hms(until)));
            let verdict = if let Some(held) = held {
                // A hold is a state, not a failure: the exchange asked us to wait.
                match (r.healthy, r.outcome.is_some()) {
                    (true, _) => format!("OK, {held}"),
                    (false, false) => format!("{held}, not probed"),
                    (false, true) if r.reason.is_empty() => held,
                    (false, true) => format!("{held}: {}", fit(&r.reason, usize::MAX)),
                }
            } else if r.healthy {
                "OK".to_string()
            } else if r.reason.is_empty() {
                format!("FAIL {}", r.verdict)
            } else {
                format!("FAIL {}: {}", r.verdict, fit(&r.reason, usize::MAX))
            };
            [
                r.exchange.clone(),
                r.endpoint.clone(),
                r.status
                    .map(|s| s.to_string())
                    .unwrap_or_else(|| "-".into()),
                format!("{:.1} ms", r.latency_ms),
                r.summary
                    .clone()
                    .map(|s| fit(&s, 48))
                    .unwrap_or_else(|| "-".into()),
                verdict,
            ]
        })
        .collect();
    let mut widths = headers.map(str::len);
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r.iter()) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = String::new();
    let line = |cells: &[String], out: &mut String| {
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                out.push_str(c);
            } else {
                out.push_str(&format!("{:<w$}  ", c, w = widths[i]));
            }
        }
        out.push('\n');
    };
    line(&headers.map(String::from), &mut out);
    for r in &rows {
        line(r, &mut out);
    }
    let good = report.endpoints.iter().filter(|r| r.healthy).count();
    let held = report
        .endpoints
        .iter()
        .filter(|r| !r.healthy && r.held_until_ms.is_some())
        .count();
    out.push_str(&format!(
        "{} endpoint(s), {} healthy, {} unhealthy",
        report.endpoints.len(),
        good,
        report.endpoints.len() - good - held,
    ));
    if held > 0 {
        out.push_str(&format!(", {held} held"));
    }
    out.push('\n');
    for b in &report.backends {
        let verdict = if b.healthy { "ok" } else { "DEGRADED" };
        out.push_str(&format!(
            "backend {}: {verdict} ({})\n",
            b.component,
            one_line(&b.detail, cut)
        ));
    }
    out
}

/// `s` on one line (control characters as spaces), cut to `max`
/// characters with `…` when `max` is given.
fn one_line(s: &str, max: Option<usize>) -> String {
    let flat: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let Some(max) = max else {
        return flat;
    };
    if flat.chars().count() > max {
        let cut: String = flat.chars().take(max.saturating_sub(1)).collect();
        format!("{cut}…")
    } else {
        flat
    }
}
