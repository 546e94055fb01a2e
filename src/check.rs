//! `exwatch check`: probe every configured endpoint once and say which are healthy.

use crate::config::{Config, ResolvedEndpoint};
use crate::exchange::Payload;
use crate::exchange::validate::Validator;
use crate::model::EndpointKind;
use crate::model::Outcome;
use crate::probe;
use serde::Serialize;
use std::collections::HashMap;

#[derive(Debug, Clone, Serialize)]
pub struct CheckRow {
    pub exchange: String,
    pub endpoint: String,
    pub url: String,
    pub status: Option<u16>,
    pub latency_ms: f64,
    pub healthy: bool,
    pub verdict: String,
    pub reason: String,
    pub summary: Option<String>,
    /// The normalized payload (symbol, prices, timestamp), when it parsed.
    pub normalized: Option<Payload>,
    pub outcome: Outcome,
}

#[derive(Debug, Clone, Serialize)]
pub struct CheckReport {
    pub healthy: bool,
    pub endpoints: Vec<CheckRow>,
}

/// Probe every endpoint once, all at the same time; a hung one only costs its own timeout.
/// Time endpoints go first: their clock offsets correct the staleness check of the rest.
pub async fn run(cfg: &Config, client: &reqwest::Client) -> CheckReport {
    let endpoints = cfg.endpoints();
    let max_body = cfg.http.max_body_bytes;
    let (time_eps, data_eps): (Vec<_>, Vec<_>) =
        endpoints.iter().partition(|e| e.kind == EndpointKind::Time);
    let mut rows: Vec<(usize, CheckRow)> = Vec::new();
    let mut offsets: HashMap<String, i64> = HashMap::new();
    let time_probes = time_eps.iter().map(|ep| one(client, ep, max_body, None));
    for (ep, p) in futures::future::join_all(time_probes).await {
        if let Some(off) = p.clock_offset_ms {
            offsets.insert(ep.exchange.clone(), off);
        }
        rows.push((position(&endpoints, ep), row(ep, p)));
    }
    let data_probes = data_eps
        .iter()
        .map(|ep| one(client, ep, max_body, offsets.get(&ep.exchange).copied()));
    for (ep, p) in futures::future::join_all(data_probes).await {
        rows.push((position(&endpoints, ep), row(ep, p)));
    }
    rows.sort_by_key(|(i, _)| *i);
    let rows: Vec<CheckRow> = rows.into_iter().map(|(_, r)| r).collect();
    CheckReport {
        healthy: rows.iter().all(|r| r.healthy),
        endpoints: rows,
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
        outcome: s.outcome,
    }
}

/// A plain table, one endpoint a line.
pub fn render_table(report: &CheckReport) -> String {
    let headers = [
        "EXCHANGE", "ENDPOINT", "HTTP", "LATENCY", "SUMMARY", "VERDICT",
    ];
    let rows: Vec<[String; 6]> = report
        .endpoints
        .iter()
        .map(|r| {
            let verdict = if r.healthy {
                "OK".to_string()
            } else if r.reason.is_empty() {
                format!("FAIL {}", r.verdict)
            } else {
                format!("FAIL {}: {}", r.verdict, one_line(&r.reason, 70))
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
                    .map(|s| one_line(&s, 48))
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
    let bad = report.endpoints.iter().filter(|r| !r.healthy).count();
    out.push_str(&format!(
        "{} endpoint(s), {} healthy, {} unhealthy\n",
        report.endpoints.len(),
        report.endpoints.len() - bad,
        bad
    ));
    out
}

fn one_line(s: &str, max: usize) -> String {
    let flat: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if flat.chars().count() > max {
        let cut: String = flat.chars().take(max.saturating_sub(1)).collect();
        format!("{cut}…")
    } else {
        flat
    }
}
