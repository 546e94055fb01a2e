//! The alert model. An alert is identified by a stable fingerprint
//! (exchange, endpoint, kind); re-firing updates it instead of making a new one.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use super::ids::EndpointId;
use super::outcome::InvalidReason;
use strum::VariantNames;

/// How bad an alert is, declared lowest first (`Ord` and
/// [`VariantArray::VARIANTS`](strum::VariantArray) follow that order).
///
/// Its lowercase name (`info`, `warning`, `critical`, `emergency`) is one
/// table for serde and strum: JSON, journals, the `severity` metric label and
/// sink payloads.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    strum::IntoStaticStr,
    strum::VariantArray,
)]
#[serde(rename_all = "lowercase")]
#[strum(serialize_all = "lowercase")]
pub enum Severity {
    Info,
    Warning,
    Critical,
    Emergency,
}

impl Severity {
    /// The lowercase name: `info`, `warning`, `critical`, `emergency`.
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// Where an alert is in its life. Its lowercase name (`firing`,
/// `acknowledged`, `silenced`, `resolved`) is one table for serde and strum:
/// JSON, journals, sink payloads and the UI.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    strum::IntoStaticStr,
)]
#[serde(rename_all = "lowercase")]
#[strum(serialize_all = "lowercase")]
pub enum AlertState {
    Firing,
    Acknowledged,
    Silenced,
    Resolved,
}

impl AlertState {
    /// The lowercase name: `firing`, `acknowledged`, `silenced`, `resolved`.
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    pub fn is_open(self) -> bool {
        self != AlertState::Resolved
    }
}

/// Delivery of an alert's notification to one sink.
///
/// The serde tag and the strum name ([`Delivery::name`]) are one snake_case
/// table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, strum::IntoStaticStr)]
#[serde(tag = "delivery", rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum Delivery {
    Pending,
    Sent {
        at_ms: i64,
    },
    Retrying {
        attempts: u32,
        last_error: String,
    },
    /// Refused for good: a permanent error (400, 403, 404, 410), a full
    /// queue, or retries given up without any attempt having gone out
    /// unanswered (every one was refused or could not connect). Shown, not
    /// retried.
    Failed {
        error: String,
    },
    /// Retries given up after `attempts` attempts, at least one of which was
    /// sent and never answered (it timed out, or the connection broke before
    /// the status): the notification may have arrived, perhaps more than
    /// once, each time with the same `notification_id`. `error` says how
    /// many went unanswered and the last error. Journals written before it
    /// existed read as before; an older exwatch does not know the tag.
    Unconfirmed {
        attempts: u32,
        error: String,
    },
    /// Not sent on purpose: grouped into another notification, deduplicated by another instance, silenced.
    Suppressed {
        reason: String,
    },
}

impl Delivery {
    /// Stable snake_case name, as in JSON and the `outcome` metric label:
    /// `pending`, `sent`, `retrying`, `failed`, `unconfirmed`, `suppressed`.
    pub fn name(&self) -> &'static str {
        self.into()
    }
}

/// Where an alert's triage came from. Its lowercase name is one table for
/// serde and strum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, strum::IntoStaticStr)]
#[serde(rename_all = "lowercase")]
#[strum(serialize_all = "lowercase")]
pub enum TriageSource {
    Model,
    Rules,
}

impl TriageSource {
    /// `model` or `rules`, as in JSON, the `source` metric label, the detail
    /// pane and `report`.
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Triage {
    pub source: TriageSource,
    /// 1 (informational) .. 5 (wake everyone up).
    pub escalation: u8,
    pub requires_human: bool,
    pub summary: String,
    pub likely_cause: String,
    pub suggested_actions: Vec<String>,
    pub auto_resolve: bool,
    /// Which rule decided, or why the model's answer was not used.
    pub note: String,
    pub latency_ms: u64,
    pub cost_usd: f64,
    pub at_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    /// `exchange/endpoint/kind` (endpoint `*` for exchange-wide alerts).
    pub fingerprint: String,
    pub exchange: String,
    pub endpoint: Option<String>,
    /// What it is about; written as its name (`latency`, `error_rate`,
    /// `payload:crossed_book`, `breaker_open`, ...).
    pub kind: AlertKind,
    pub severity: Severity,
    pub title: String,
    pub description: String,
    /// The figures behind it (e.g. `p50_ms`, `z_score`, `error_rate`).
    pub metrics: BTreeMap<String, f64>,
    pub first_seen_ms: i64,
    pub last_seen_ms: i64,
    pub occurrences: u64,
    pub state: AlertState,
    /// Who changed the state last (an operator name, or `auto`).
    pub state_by: Option<String>,
    pub state_at_ms: i64,
    pub resolved_at_ms: Option<i64>,
    /// Delivery per sink name.
    pub delivery: BTreeMap<String, Delivery>,
    pub triage: Option<Triage>,
    /// The incident this alert is a symptom of: `<root fingerprint>#<root
    /// episode>` (see [`Alert::incident_id`]). Set by the engine when the
    /// alert fires; `None` in journals written before incidents existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incident: Option<String>,
    /// When the current episode (`occurrences`) started firing, unix ms;
    /// `None` in journals written before it was recorded (read
    /// [`Alert::episode_start`], which falls back to `first_seen_ms`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub episode_start_ms: Option<i64>,
}

impl Alert {
    /// When the current episode started firing, unix ms: what "age" means
    /// for an alert that fired, resolved and fired again.
    pub fn episode_start(&self) -> i64 {
        self.episode_start_ms.unwrap_or(self.first_seen_ms)
    }

    /// The id of the incident an alert starts when it is its root:
    /// `<fingerprint>#<episode>`, e.g. `okx/*/outage#2`.
    pub fn incident_id(fingerprint: &str, episode: u64) -> String {
        format!("{fingerprint}#{episode}")
    }

    /// The incident this alert belongs to; an alert without one (an old
    /// journal) is its own incident.
    pub fn incident_or_own(&self) -> String {
        self.incident
            .clone()
            .unwrap_or_else(|| Self::incident_id(&self.fingerprint, self.occurrences))
    }

    /// Whether this alert is the root (first symptom) of its incident.
    pub fn is_incident_root(&self) -> bool {
        self.incident
            .as_deref()
            .is_none_or(|i| i.rsplit_once('#').map(|(fp, _)| fp) == Some(self.fingerprint.as_str()))
    }

    pub fn fingerprint_of(exchange: &str, endpoint: Option<&str>, kind: &str) -> String {
        format!("{exchange}/{}/{kind}", endpoint.unwrap_or("*"))
    }

    /// The endpoint it is about; `None` for exchange-wide alerts.
    pub fn endpoint_id(&self) -> Option<EndpointId> {
        let endpoint = self.endpoint.as_ref()?;
        Some(EndpointId::new(&self.exchange, endpoint))
    }
}

/// Counters of the triage task, shown in the snapshot and exported as metrics.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TriageTotals {
    /// Model calls that got an answer (any answer, even one then rejected).
    pub calls: u64,
    /// Model calls that ended without an answer (timeout, HTTP error, unreachable).
    pub failed_calls: u64,
    pub tokens_in: u64,
    pub tokens_out: u64,
    pub cost_usd: f64,
    /// Alerts triaged by the model.
    pub by_model: u64,
    /// Alerts triaged by rules (configured, fallback or overflow).
    pub by_rules: u64,
    /// Alerts that fell back to rules because the model failed or answered badly.
    pub fallbacks: u64,
    /// Requests answered by rules at once because the queue was full.
    pub overflows: u64,
}

/// What an alert is about: the kinds the detectors raise. Alerts carry it as
/// its name (`Alert::kind`); config lists of kinds (`alerts.inhibit_kinds`,
/// silence and maintenance matchers) are checked against it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AlertKind {
    /// Latency above the endpoint's usual (z-score) or an absolute bound.
    Latency,
    /// Share of failed polls over the recent window.
    ErrorRate,
    /// A request in flight past its stall deadline.
    Hung,
    /// No valid data for a while.
    NoData,
    /// The exchange's own timestamp is old.
    Stale,
    /// The data stopped changing.
    Frozen,
    /// The circuit breaker is open: polling paused.
    BreakerOpen,
    /// Every endpoint of an exchange is failing.
    Outage,
    /// The exchange answered 429 or reported its limit spent.
    RateLimit,
    /// The exchange banned this IP (418, or a ban code).
    Ban,
    /// A backend of exwatch itself (a Redis, the journal) is failing; on
    /// the pseudo-exchange `exwatch`, the component as the endpoint.
    Backend,
    /// A stream subscription acked and then silent past its `silent_after`
    /// while its socket is alive (a zombie subscription).
    StreamZombie,
    /// A stream socket open but without any frame (not even a ping or a
    /// heartbeat) past the dead threshold.
    StreamDead,
    /// A stream connection down (not announced) past `down_after`.
    StreamDown,
    /// The exchange announced the stream's disconnect (maintenance, 24 h
    /// limit, upgrade): expected, info only.
    StreamPlanned,
    /// The exchange refused a subscription, or never acked it.
    StreamRefused,
    /// A stream connection reconnecting more than the storm threshold allows.
    ReconnectStorm,
    /// A streamed order book is invalid (a sequence gap, a checksum
    /// mismatch, messages dropped) until a snapshot resyncs it.
    BookInvalid,
    /// A streamed order book's top is locked or crossed (best bid at or
    /// above best ask): like the REST `payload:crossed_book`, data a
    /// consumer would trade on that no real market shows.
    BookCrossed,
    /// A stream's best bid/ask and the REST ticker of the same symbol on
    /// the same exchange disagree: one of the two is lying.
    StreamDiverges,
    /// An exchange's mid departs from the median of the exchanges quoting
    /// the same market.
    PriceOutlier,
    /// A payload was not trusted; the data is the [`InvalidReason`] name
    /// (`payload:crossed_book`).
    Payload(String),
}

impl AlertKind {
    /// Every kind without data, in the order the docs list them.
    pub const SIMPLE: [AlertKind; 21] = [
        AlertKind::Latency,
        AlertKind::ErrorRate,
        AlertKind::Hung,
        AlertKind::NoData,
        AlertKind::Stale,
        AlertKind::Frozen,
        AlertKind::BreakerOpen,
        AlertKind::Outage,
        AlertKind::RateLimit,
        AlertKind::Ban,
        AlertKind::Backend,
        AlertKind::StreamZombie,
        AlertKind::StreamDead,
        AlertKind::StreamDown,
        AlertKind::StreamPlanned,
        AlertKind::StreamRefused,
        AlertKind::ReconnectStorm,
        AlertKind::BookInvalid,
        AlertKind::BookCrossed,
        AlertKind::StreamDiverges,
        AlertKind::PriceOutlier,
    ];

    /// The prefix of payload kinds.
    pub const PAYLOAD_PREFIX: &'static str = "payload:";

    /// The name alerts carry: `latency`, `error_rate`, `payload:crossed_book`...
    pub fn name(&self) -> String {
        match self {
            AlertKind::Payload(reason) => format!("{}{reason}", Self::PAYLOAD_PREFIX),
            simple => simple.simple_name().unwrap_or_default().to_string(),
        }
    }

    fn simple_name(&self) -> Option<&'static str> {
        Some(match self {
            AlertKind::Latency => "latency",
            AlertKind::ErrorRate => "error_rate",
            AlertKind::Hung => "hung",
            AlertKind::NoData => "no_data",
            AlertKind::Stale => "stale",
            AlertKind::Frozen => "frozen",
            AlertKind::BreakerOpen => "breaker_open",
            AlertKind::Outage => "outage",
            AlertKind::RateLimit => "rate_limit",
            AlertKind::Ban => "ban",
            AlertKind::Backend => "backend",
            AlertKind::StreamZombie => "stream_zombie",
            AlertKind::StreamDead => "stream_dead",
            AlertKind::StreamDown => "stream_down",
            AlertKind::StreamPlanned => "stream_planned",
            AlertKind::StreamRefused => "stream_refused",
            AlertKind::ReconnectStorm => "reconnect_storm",
            AlertKind::BookInvalid => "book_invalid",
            AlertKind::BookCrossed => "book_crossed",
            AlertKind::StreamDiverges => "stream_diverges",
            AlertKind::PriceOutlier => "price_outlier",
            AlertKind::Payload(_) => return None,
        })
    }

    /// The kind of a name, if a detector raises it (`payload:<reason>` needs a
    /// known [`InvalidReason`] name).
    pub fn parse(name: &str) -> Option<AlertKind> {
        if let Some(reason) = name.strip_prefix(Self::PAYLOAD_PREFIX) {
            return InvalidReason::VARIANTS
                .contains(&reason)
                .then(|| AlertKind::Payload(reason.to_string()));
        }
        Self::SIMPLE
            .into_iter()
            .find(|k| k.simple_name() == Some(name))
    }

    /// Whether `pattern` names a kind, or ends in `*` and is the start of
    /// one (`payload:*`), as silence and maintenance matchers allow.
    pub fn is_valid_pattern(pattern: &str) -> bool {
        match pattern.strip_suffix('*') {
            Some(prefix) => Self::all_names().iter().any(|n| n.starts_with(prefix)),
            None => Self::parse(pattern).is_some(),
        }
    }

    /// Every name a detector can raise, for error messages.
    pub fn all_names() -> Vec<String> {
        Self::SIMPLE
            .iter()
            .map(AlertKind::name)
            .chain(
                InvalidReason::VARIANTS
                    .iter()
                    .map(|r| format!("{}{r}", Self::PAYLOAD_PREFIX)),
            )
            .collect()
    }
}

impl std::str::FromStr for AlertKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        AlertKind::parse(s).ok_or_else(|| {
            format!(
                "{s:?} is not an alert kind; expected one of {}, payload:<reason>",
                AlertKind::SIMPLE.map(|k| k.name()).join(", ")
            )
        })
    }
}

impl PartialEq<str> for AlertKind {
    fn eq(&self, other: &str) -> bool {
        match (self, other.strip_prefix(Self::PAYLOAD_PREFIX)) {
            (AlertKind::Payload(reason), Some(r)) => reason == r,
            (AlertKind::Payload(_), None) | (_, Some(_)) => false,
            (simple, None) => simple.simple_name() == Some(other),
        }
    }
}

impl PartialEq<&str> for AlertKind {
    fn eq(&self, other: &&str) -> bool {
        self == *other
    }
}

/// Written as its name, so journals and webhooks keep the strings they had.
impl Serialize for AlertKind {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.name())
    }
}

impl<'de> Deserialize<'de> for AlertKind {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        name.parse().map_err(serde::de::Error::custom)
    }
}

impl std::fmt::Display for AlertKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use strum::VariantArray;

    /// The strum names are the serde names, byte for byte.
    fn serde_name<T: Serialize>(v: &T) -> String {
        serde_json::to_value(v)
            .ok()
            .and_then(|j| j.as_str().map(str::to_string))
            .unwrap_or_default()
    }

    #[test]
    fn names_are_the_serde_names() {
        let severities: Vec<&str> = Severity::VARIANTS.iter().map(|s| s.as_str()).collect();
        assert_eq!(severities, ["info", "warning", "critical", "emergency"]);
        for s in Severity::VARIANTS {
            assert_eq!(serde_name(s), s.as_str());
        }
        let states = [
            AlertState::Firing,
            AlertState::Acknowledged,
            AlertState::Silenced,
            AlertState::Resolved,
        ];
        assert_eq!(
            states.map(AlertState::as_str),
            ["firing", "acknowledged", "silenced", "resolved"]
        );
        for s in states {
            assert_eq!(serde_name(&s), s.as_str());
        }
        let sources = [TriageSource::Model, TriageSource::Rules];
        assert_eq!(sources.map(TriageSource::as_str), ["model", "rules"]);
        for s in sources {
            assert_eq!(serde_name(&s), s.as_str());
        }
        let deliveries = [
            Delivery::Pending,
            Delivery::Sent { at_ms: 1 },
            Delivery::Retrying {
                attempts: 2,
                last_error: "e".into(),
            },
            Delivery::Failed { error: "e".into() },
            Delivery::Unconfirmed {
                attempts: 3,
                error: "e".into(),
            },
            Delivery::Suppressed { reason: "r".into() },
        ];
        assert_eq!(
            deliveries.each_ref().map(Delivery::name),
            [
                "pending",
                "sent",
                "retrying",
                "failed",
                "unconfirmed",
                "suppressed"
            ]
        );
        for d in &deliveries {
            let tag = serde_json::to_value(d).ok().map(|j| j["delivery"].clone());
            assert_eq!(tag, Some(serde_json::Value::from(d.name())));
        }
    }
}
