//! Alerts: the model shared by the engine, the sinks, the reducer and the UI;
//! the engine (lifecycle, inhibition, silences, maintenance); the notifier
//! (grouping, storm control, cross-instance dedup, sinks).
//!
//! Config lives under `[alerts]`; see docs/alerting.md for every key.

pub mod dedup;
pub mod engine;
pub mod incident;
pub mod notification;
pub mod notify;
pub mod sinks;
pub mod triage;

use crate::detect::DetectSettings;
use crate::model::{Alert, AlertKind, Severity};
use crate::problems::Problems;
use serde::Deserialize;
use std::time::Duration;

/// Everything under `[alerts]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlertSettings {
    pub detect: DetectSettings,
    /// An open alert re-sends its figures (an `AlertChanged` event) at most this often.
    #[serde(with = "humantime_serde")]
    pub update_every: Duration,
    /// An open alert no detector has confirmed for this long resolves by itself
    /// (covers alerts restored from the journal whose condition ended while down).
    #[serde(with = "humantime_serde")]
    pub resolve_after: Duration,
    /// Kinds an exchange-wide outage suppresses on that exchange.
    pub inhibit_kinds: Vec<String>,
    /// Severity per alert kind, overriding what the detector says
    /// (`no_data = "warning"`, `"payload:*" = "critical"`): keys are kinds or
    /// `*`-ended prefixes, the exact kind wins over a prefix and a longer
    /// prefix over a shorter one. Empty by default. See docs/alerting.md,
    /// "Severity policy".
    pub severity: std::collections::BTreeMap<String, Severity>,
    pub grouping: notify::GroupingSettings,
    pub dedup: dedup::DedupSettings,
    pub sinks: Vec<sinks::SinkConfig>,
    pub maintenance: Vec<MaintenanceWindow>,
}

impl Default for AlertSettings {
    fn default() -> Self {
        AlertSettings {
            detect: DetectSettings::default(),
            update_every: Duration::from_secs(30),
            resolve_after: Duration::from_secs(30 * 60),
            inhibit_kinds: [
                "latency",
                "hung",
                "no_data",
                "stale",
                "frozen",
                "error_rate",
                "breaker_open",
            ]
            .map(String::from)
            .to_vec(),
            severity: std::collections::BTreeMap::new(),
            grouping: notify::GroupingSettings::default(),
            dedup: dedup::DedupSettings::default(),
            sinks: Vec::new(),
            maintenance: Vec::new(),
        }
    }
}

impl AlertSettings {
    /// The configured severity of `kind` (`alerts.severity`), if any: the
    /// exact kind, else the longest matching `*` prefix.
    pub fn severity_for(&self, kind: &AlertKind) -> Option<Severity> {
        let name = kind.name();
        if let Some(s) = self.severity.get(&name) {
            return Some(*s);
        }
        self.severity
            .iter()
            .filter_map(|(k, s)| {
                let prefix = k.strip_suffix('*')?;
                name.starts_with(prefix).then_some((prefix.len(), *s))
            })
            .max_by_key(|(len, _)| *len)
            .map(|(_, s)| s)
    }

    /// Semantic checks; `has_redis` says whether a `[redis]` table exists.
    pub fn validate(&self, at: &str, has_redis: bool, p: &mut Problems) {
        self.detect.validate(&format!("{at}.detect"), p);
        use crate::problems::{DAY, check_duration, ms, secs};
        for (field, d, min, max) in [
            ("update_every", self.update_every, ms(100), DAY),
            ("resolve_after", self.resolve_after, secs(1), 30 * DAY),
        ] {
            check_duration(p, &format!("{at}.{field}"), d, min, max);
        }
        for (i, kind) in self.inhibit_kinds.iter().enumerate() {
            if let Err(e) = kind.parse::<AlertKind>() {
                p.push(format!("{at}.inhibit_kinds[{i}]"), e);
            }
        }
        for kind in self.severity.keys() {
            if !AlertKind::is_valid_pattern(kind) {
                p.push(
                    format!("{at}.severity.{kind}"),
                    format!(
                        "{kind:?} matches no alert kind; use a kind such as \"no_data\" or a prefix such as \"payload:*\""
                    ),
                );
            }
        }
        self.grouping.validate(&format!("{at}.grouping"), p);
        self.dedup.validate(&format!("{at}.dedup"), has_redis, p);
        let mut names = std::collections::BTreeMap::new();
        for (i, s) in self.sinks.iter().enumerate() {
            let at = format!("{at}.sinks[{i}]");
            if let Some(prev) = names.insert(s.name.clone(), i) {
                p.push(
                    format!("{at}.name"),
                    format!("duplicate sink name {:?} (also sinks[{prev}])", s.name),
                );
            }
            s.validate(&at, p);
        }
        for (i, w) in self.maintenance.iter().enumerate() {
            w.validate(&format!("{at}.maintenance[{i}]"), p);
        }
    }
}

/// Which alerts a silence or a maintenance window covers: every field given
/// must match; `kind` may end in `*` (`payload:*`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct Matcher {
    pub exchange: Option<String>,
    pub endpoint: Option<String>,
    pub kind: Option<String>,
}

impl Matcher {
    pub fn matches(&self, a: &Alert) -> bool {
        self.exchange.as_ref().is_none_or(|e| *e == a.exchange)
            && self
                .endpoint
                .as_ref()
                .is_none_or(|e| a.endpoint.as_deref() == Some(e.as_str()))
            && self
                .kind
                .as_ref()
                .is_none_or(|k| match k.strip_suffix('*') {
                    Some(prefix) => a.kind.name().starts_with(prefix),
                    None => a.kind == k.as_str(),
                })
    }

    pub fn describe(&self) -> String {
        format!(
            "{}/{}/{}",
            self.exchange.as_deref().unwrap_or("*"),
            self.endpoint.as_deref().unwrap_or("*"),
            self.kind.as_deref().unwrap_or("*")
        )
    }
}

/// A planned window during which matching alerts are silenced.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MaintenanceWindow {
    pub name: String,
    /// RFC 3339, e.g. `2026-11-25T02:00:00Z`.
    pub start: String,
    pub end: String,
    #[serde(flatten)]
    pub matcher: Matcher,
}

/// Unix ms of an RFC 3339 time.
pub fn parse_rfc3339_ms(s: &str) -> Option<i64> {
    let t = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok()?;
    Some((t.unix_timestamp_nanos() / 1_000_000) as i64)
}

impl MaintenanceWindow {
    /// (start, end) in unix ms, when both parse.
    pub fn span_ms(&self) -> Option<(i64, i64)> {
        Some((parse_rfc3339_ms(&self.start)?, parse_rfc3339_ms(&self.end)?))
    }

    fn validate(&self, at: &str, p: &mut Problems) {
        let start = parse_rfc3339_ms(&self.start);
        let end = parse_rfc3339_ms(&self.end);
        if start.is_none() {
            p.push(
                format!("{at}.start"),
                "must be an RFC 3339 time, e.g. \"2026-11-25T02:00:00Z\"",
            );
        }
        if end.is_none() {
            p.push(
                format!("{at}.end"),
                "must be an RFC 3339 time, e.g. \"2026-11-25T04:00:00Z\"",
            );
        }
        if let (Some(s), Some(e)) = (start, end) {
            if e <= s {
                p.push(format!("{at}.end"), "must be after start");
            }
        }
        if self.name.is_empty() {
            p.push(format!("{at}.name"), "must not be empty");
        }
        if let Some(kind) = &self.matcher.kind
            && !AlertKind::is_valid_pattern(kind)
        {
            p.push(
                format!("{at}.kind"),
                format!(
                    "{kind:?} matches no alert kind; use a kind such as \"latency\" or a prefix such as \"payload:*\""
                ),
            );
        }
    }
}
