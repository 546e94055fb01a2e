//! `exwatch report`: an incident timeline for a postmortem, built from a
//! journal. Pure: entries in, a [`Report`] out; rendering is separate.
//!
//! Incidents come first: the alerts one fault caused (see
//! [`crate::alert::incident`]), each with its symptoms as a timeline. Alert
//! episodes run from firing to resolved (an alert that fires again after
//! being resolved is a new episode); acknowledgements and silences keep who
//! did them. Rate-limit and ban episodes are runs of polls that got
//! a 429/418-style answer, ended by the next other answer.

use crate::journal::Entry;
use crate::model::{AlertState, Delivery, Severity};
use crate::model::{EndpointId, Event, Outcome};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};

mod incident;
mod render;
pub use incident::IncidentRow;
pub use render::{render_markdown, render_text};

/// Which part of the journal to report on (unix ms, inclusive); `None` is open-ended.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Window {
    pub since_ms: Option<i64>,
    pub until_ms: Option<i64>,
}

impl Window {
    fn contains(&self, ts: i64) -> bool {
        self.since_ms.is_none_or(|s| ts >= s) && self.until_ms.is_none_or(|u| ts <= u)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ByWhom {
    pub at_ms: i64,
    pub by: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TriageLine {
    pub source: String,
    pub escalation: u8,
    pub summary: String,
    pub likely_cause: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AlertEpisode {
    pub fingerprint: String,
    pub exchange: String,
    pub endpoint: Option<String>,
    pub kind: String,
    /// Highest severity seen during the episode.
    pub severity: Severity,
    pub title: String,
    pub fired_ms: i64,
    pub acknowledged: Option<ByWhom>,
    pub silenced: Option<ByWhom>,
    pub resolved_ms: Option<i64>,
    /// Firing to resolved; `None` while still open at the end of the journal.
    pub duration_ms: Option<i64>,
    /// Sinks that delivered a notification.
    pub notified: Vec<String>,
    pub triage: Option<TriageLine>,
    /// The incident it was a symptom of (its last, if an outage took it in);
    /// `None` from journals written before incidents.
    pub incident: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BreakerRow {
    pub at_ms: i64,
    pub exchange: String,
    pub endpoint: String,
    pub from: String,
    pub to: String,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LimitEpisode {
    pub exchange: String,
    pub endpoint: String,
    /// `banned` or `rate_limited` (a ban anywhere in the run makes it `banned`).
    pub kind: String,
    pub from_ms: i64,
    /// The last limited answer of the run.
    pub to_ms: i64,
    pub polls: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ExchangeSummary {
    pub exchange: String,
    pub calls: u64,
    pub failures: u64,
    pub alerts: u64,
    pub breaker_opens: u64,
    pub limit_episodes: u64,
    /// Longest alert episode, resolved or not (to the end of the report).
    pub longest_alert_ms: Option<i64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Report {
    /// First and last journal time in the window.
    pub from_ms: Option<i64>,
    pub to_ms: Option<i64>,
    pub entries: u64,
    pub incidents: Vec<IncidentRow>,
    pub alerts: Vec<AlertEpisode>,
    pub breaker: Vec<BreakerRow>,
    pub limits: Vec<LimitEpisode>,
    pub exchanges: Vec<ExchangeSummary>,
}

/// Build the report from journal entries in order.
pub fn build(entries: impl IntoIterator<Item = Entry>, window: Window) -> Report {
    let mut r = Report::default();
    // Fingerprint → index of its open episode in `r.alerts`.
    let mut open: HashMap<String, usize> = HashMap::new();
    let mut limited: HashMap<EndpointId, usize> = HashMap::new();
    let mut summary: BTreeMap<String, ExchangeSummary> = BTreeMap::new();
    // Fingerprint → when its last episode resolved.
    let mut resolved: HashMap<String, i64> = HashMap::new();
    for e in entries {
        if !window.contains(e.ts_ms) {
            continue;
        }
        r.entries += 1;
        r.from_ms = Some(r.from_ms.map_or(e.ts_ms, |f| f.min(e.ts_ms)));
        r.to_ms = Some(r.to_ms.map_or(e.ts_ms, |t| t.max(e.ts_ms)));
        match e.ev {
            Event::Sample(s) => {
                let sum = summary
                    .entry(s.id.exchange.clone())
                    .or_insert_with(|| ExchangeSummary {
                        exchange: s.id.exchange.clone(),
                        ..ExchangeSummary::default()
                    });
                sum.calls += 1;
                if !s.outcome.is_ok() {
                    sum.failures += 1;
                }
                let key = s.id.clone();
                let limit_kind = match s.outcome {
                    Outcome::Banned { .. } => Some("banned"),
                    Outcome::RateLimited { .. } => Some("rate_limited"),
                    _ => None,
                };
                match (limit_kind, limited.get(&key).copied()) {
                    (Some(kind), Some(i)) => {
                        let ep = &mut r.limits[i];
                        ep.to_ms = s.at_ms;
                        ep.polls += 1;
                        if kind == "banned" {
                            ep.kind = kind.into();
                        }
                    }
                    (Some(kind), None) => {
                        limited.insert(key, r.limits.len());
                        r.limits.push(LimitEpisode {
                            exchange: s.id.exchange.clone(),
                            endpoint: s.id.endpoint.clone(),
                            kind: kind.parse().unwrap(),
                            from_ms: s.at_ms,
                            to_ms: s.at_ms,
                            polls: 1,
                        });
                        sum.limit_episodes += 1;
                    }
                    (None, _) => {
                        limited.remove(&key);
                    }
                }
            }
            Event::BreakerChanged {
                id,
                at_ms,
                transition,
            } => {
                if transition.to == crate::model::BreakerState::Open {
                    summary
                        .entry(id.exchange.clone())
                        .or_insert_with(|| ExchangeSummary {
                            exchange: id.exchange.clone(),
                            ..ExchangeSummary::default()
                        })
                        .breaker_opens += 1;
                }
                r.breaker.push(BreakerRow {
                    at_ms,
                    exchange: id.exchange,
                    endpoint: id.endpoint,
                    from: transition.from.as_str().into(),
                    to: transition.to.as_str().into(),
                    reason: transition.reason.to_string(),
                });
            }
            Event::AlertChanged { alert } => {
                let idx = match open.get(&alert.fingerprint) {
                    Some(i) => *i,
                    None => {
                        if alert.state == AlertState::Resolved {
                            // Resolved without a firing in the window: the report starts mid-episode.
                            if window.since_ms.is_none() {
                                continue;
                            }
                        }
                        summary
                            .entry(alert.exchange.clone())
                            .or_insert_with(|| ExchangeSummary {
                                exchange: alert.exchange.clone(),
                                ..ExchangeSummary::default()
                            })
                            .alerts += 1;
                        open.insert(alert.fingerprint.clone(), r.alerts.len());
                        r.alerts.push(AlertEpisode {
                            fingerprint: alert.fingerprint.clone(),
                            exchange: alert.exchange.clone(),
                            endpoint: alert.endpoint.clone(),
                            kind: alert.kind.name(),
                            severity: alert.severity,
                            title: alert.title.clone(),
                            // A re-opened alert may keep its first_seen; its new episode starts at the change.
                            fired_ms: match resolved.get(&alert.fingerprint) {
                                Some(r) if alert.first_seen_ms <= *r => alert.state_at_ms,
                                _ => alert.first_seen_ms,
                            },
                            acknowledged: None,
                            silenced: None,
                            resolved_ms: None,
                            duration_ms: None,
                            notified: Vec::new(),
                            triage: None,
                            incident: None,
                        });
                        r.alerts.len() - 1
                    }
                };
                let ep = &mut r.alerts[idx];
                // The title that fired the episode, or the one of its worst
                // severity: not whatever the alert said last.
                if alert.severity > ep.severity {
                    ep.title = alert.title.clone();
                }
                ep.severity = ep.severity.max(alert.severity);
                if alert.incident.is_some() {
                    ep.incident = alert.incident.clone();
                }
                match alert.state {
                    AlertState::Acknowledged if ep.acknowledged.is_none() => {
                        ep.acknowledged = Some(ByWhom {
                            at_ms: alert.state_at_ms,
                            by: alert.state_by.clone(),
                        })
                    }
                    AlertState::Silenced if ep.silenced.is_none() => {
                        ep.silenced = Some(ByWhom {
                            at_ms: alert.state_at_ms,
                            by: alert.state_by.clone(),
                        })
                    }
                    AlertState::Resolved => {
                        let at = alert.resolved_at_ms.unwrap_or(alert.state_at_ms);
                        ep.resolved_ms = Some(at);
                        ep.duration_ms = Some((at - ep.fired_ms).max(0));
                        open.remove(&alert.fingerprint);
                        resolved.insert(alert.fingerprint.clone(), at);
                    }
                    _ => {}
                }
                if let Some(t) = &alert.triage {
                    ep.triage = Some(TriageLine {
                        source: t.source.as_str().into(),
                        escalation: t.escalation,
                        summary: t.summary.clone(),
                        likely_cause: t.likely_cause.clone(),
                    });
                }
            }
            Event::AlertDelivery {
                fingerprint,
                sink,
                delivery: Delivery::Sent { .. },
            } => {
                if let Some(i) = open.get(&fingerprint)
                    && !r.alerts[*i].notified.contains(&sink)
                {
                    r.alerts[*i].notified.push(sink);
                }
            }
            _ => {}
        }
    }
    let end = r.to_ms;
    for ep in &r.alerts {
        let s = summary
            .entry(ep.exchange.clone())
            .or_insert_with(|| ExchangeSummary {
                exchange: ep.exchange.clone(),
                ..ExchangeSummary::default()
            });
        let d = ep
            .duration_ms
            .or_else(|| end.map(|e| (e - ep.fired_ms).max(0)));
        s.longest_alert_ms = s.longest_alert_ms.max(d);
    }
    r.exchanges = summary.into_values().collect();
    r.incidents = incident::incidents(&r.alerts);
    r
}

/// `2026-11-24T10:15:02.345Z`.
pub fn fmt_ms(ms: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000);
    match t {
        Ok(t) => {
            let f = time::macros::format_description!(
                "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
            );
            t.format(&f).unwrap_or_else(|_| ms.to_string())
        }
        Err(_) => ms.to_string(),
    }
}

/// `1h 02m 03s`, `4.2s`.
pub fn fmt_duration(ms: i64) -> String {
    if ms < 60_000 {
        return format!("{:.1}s", ms as f64 / 1000.0);
    }
    let s = ms / 1000;
    let (h, m, s) = (s / 3600, (s / 60) % 60, s % 60);
    if h > 0 {
        format!("{h}h {m:02}m {s:02}s")
    } else {
        format!("{m}m {s:02}s")
    }
}

/// `--since` / `--until`: RFC 3339 (`2026-11-24T10:00:00Z`), unix ms, or a
/// duration before now (`90m`, `2h`).
pub fn parse_time(s: &str, now_ms: i64) -> Result<i64, String> {
    if let Ok(ms) = s.parse::<i64>() {
        return Ok(ms);
    }
    if let Ok(t) = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339) {
        return Ok((t.unix_timestamp_nanos() / 1_000_000) as i64);
    }
    if let Ok(d) = humantime::parse_duration(s) {
        return Ok(now_ms - d.as_millis() as i64);
    }
    Err(format!(
        "{s:?} is not a time: use RFC 3339 (2026-11-24T10:00:00Z), unix milliseconds, or a duration before now (90m)"
    ))
}

/// Read the journal at `path` (its rotated files first, oldest to newest)
/// and build the report. Also returns how many lines could not be read
/// (torn last lines included).
///
/// Errors: those of [`crate::journal::read_all`]: `Missing` when neither
/// the file nor a rotated file of it exists, `NotAJournal` for a file that
/// holds something else, `Empty` when there is no entry, `Io` when one
/// cannot be read.
pub fn from_journal(
    path: &std::path::Path,
    window: Window,
) -> Result<(Report, u64), crate::journal::JournalError> {
    let read = crate::journal::read_all(path)?;
    Ok((build(read.entries, window), read.bad_lines))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Alert;

    fn alert(state: AlertState, at: i64, by: Option<&str>) -> Entry {
        Entry {
            v: 1,
            ts_ms: at,
            instance: None,
            ev: Event::AlertChanged {
                alert: Alert {
                    fingerprint: "b/t/error_rate".into(),
                    exchange: "b".into(),
                    endpoint: Some("t".into()),
                    kind: "error_rate".parse().unwrap(),
                    severity: Severity::Critical,
                    title: "b/t failing".into(),
                    description: String::new(),
                    metrics: BTreeMap::new(),
                    first_seen_ms: 1_000,
                    last_seen_ms: at,
                    occurrences: 1,
                    state,
                    state_by: by.map(String::from),
                    state_at_ms: at,
                    resolved_at_ms: (state == AlertState::Resolved).then_some(at),
                    delivery: BTreeMap::new(),
                    triage: None,
                    incident: None,
                    episode_start_ms: None,
                },
            },
        }
    }

    /// A symptom of incident `inc`: `fp` in `state` at `at` (ms).
    fn symptom(fp: &str, sev: Severity, state: AlertState, at: i64, inc: &str) -> Entry {
        let mut e = alert(state, at, None);
        if let Event::AlertChanged { alert } = &mut e.ev {
            let mut parts = fp.split('/');
            alert.exchange = parts.next().unwrap().into();
            alert.endpoint = parts.next().filter(|p| *p != "*").map(String::from);
            alert.kind = parts.next().unwrap().parse().unwrap();
            alert.fingerprint = fp.into();
            alert.title = format!("{fp} fired");
            alert.severity = sev;
            alert.first_seen_ms = at;
            alert.incident = Some(inc.into());
        }
        e
    }

    #[test]
    fn symptoms_make_an_incident_with_its_timeline() {
        use AlertState::*;
        let inc = "o/*/outage#1";
        let r = build(
            vec![
                symptom(
                    "o/t/error_rate",
                    Severity::Critical,
                    Firing,
                    10_000,
                    "o/t/error_rate#1",
                ),
                symptom("o/*/outage", Severity::Emergency, Firing, 11_500, inc),
                // Moved into the outage's incident.
                symptom("o/t/error_rate", Severity::Critical, Silenced, 11_500, inc),
                symptom("o/*/outage", Severity::Emergency, Resolved, 20_000, inc),
                symptom("o/t/error_rate", Severity::Critical, Resolved, 31_000, inc),
            ],
            Window::default(),
        );
        assert_eq!(r.incidents.len(), 1);
        let i = &r.incidents[0];
        assert_eq!(i.id, inc);
        assert_eq!(i.endpoint, None);
        assert_eq!(i.title, "o/*/outage fired");
        assert_eq!(i.severity, Severity::Emergency);
        assert_eq!((i.opened_ms, i.resolved_ms), (10_000, Some(31_000)));
        let text = render_text(&r);
        assert!(text.contains("INCIDENTS (1)"), "{text}");
        assert!(
            text.contains(
                "      +0.0s  critical  o/t                          error_rate       lasted 21.0s"
            ),
            "{text}"
        );
        assert!(text.contains("+1.5s  emergency o/*"), "{text}");
        assert!(render_markdown(&r).contains("| emergency | o/* | o/*/outage fired |"));
    }

    #[test]
    fn an_alert_episode_keeps_who_acknowledged_and_how_long_it_lasted() {
        let r = build(
            vec![
                alert(AlertState::Firing, 1_000, None),
                alert(AlertState::Acknowledged, 2_000, Some("ana")),
                alert(AlertState::Resolved, 61_000, Some("auto")),
            ],
            Window::default(),
        );
        assert_eq!(r.alerts.len(), 1);
        let a = &r.alerts[0];
        assert_eq!(a.fired_ms, 1_000);
        assert_eq!(
            a.acknowledged,
            Some(ByWhom {
                at_ms: 2_000,
                by: Some("ana".into())
            })
        );
        assert_eq!(a.duration_ms, Some(60_000));
        assert_eq!(r.exchanges[0].alerts, 1);
        let text = render_text(&r);
        assert!(
            text.contains("acknowledged 1970-01-01T00:00:02.000Z by ana"),
            "{text}"
        );
        assert!(render_markdown(&r).contains("| critical | b/t | error_rate |"));
    }

    #[test]
    fn times_parse_in_three_spellings() {
        assert_eq!(parse_time("1000", 0), Ok(1000));
        assert_eq!(parse_time("1970-01-01T00:00:02Z", 0), Ok(2000));
        assert_eq!(parse_time("2s", 10_000), Ok(8000));
        assert!(parse_time("yesterday-ish", 0).is_err());
    }
}
