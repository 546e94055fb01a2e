//! The event stream every part speaks ([`Event`]), the operator's requests
//! ([`Command`]) and the backends whose health is reported ([`Component`]).
//!
//! Times inside events are unix ms taken at the edges, so replaying a journal
//! yields the same snapshots.

use super::alert::{Alert, Delivery, Triage, TriageTotals};
use super::breaker::{BreakerState, Transition};
use super::ids::{EndpointId, EndpointKind, ExchangeKind};
use super::limits::{Tier, TierFill};
use super::outcome::Sample;
use super::silence::{AckInfo, SilenceInfo};
use super::stream::{StreamNote, StreamStatus};
use serde::{Deserialize, Serialize, Serializer};

/// Which backend a health event is about.
///
/// It has two names, both declared on the variant: the snake_case
/// [`name`](Self::name), one table for serde and strum, and the label the
/// dashboard's header shows ([`as_str`](Self::as_str), the strum `message`).
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
    strum::EnumMessage,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum Component {
    #[strum(message = "redis (limiter)")]
    RedisLimiter,
    #[strum(message = "redis (breaker)")]
    RedisBreaker,
    /// Cross-instance dedup of notifications (`alerts.dedup.backend = "redis"`).
    #[strum(message = "redis (dedup)")]
    RedisDedup,
    #[strum(message = "journal")]
    Journal,
}

impl Component {
    /// The header's label: `redis (limiter)`, `redis (breaker)`,
    /// `redis (dedup)`, `journal`.
    pub fn as_str(self) -> &'static str {
        strum::EnumMessage::get_message(&self).unwrap_or(self.name())
    }

    /// Stable snake_case name, as in JSON and the `component` metric label:
    /// `redis_limiter`, `redis_breaker`, `redis_dedup`, `journal`.
    pub fn name(self) -> &'static str {
        self.into()
    }

    /// The component of a [`Component::name`], if there is one.
    pub fn parse(name: &str) -> Option<Component> {
        [
            Component::RedisLimiter,
            Component::RedisBreaker,
            Component::RedisDedup,
            Component::Journal,
        ]
        .into_iter()
        .find(|c| c.name() == name)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// Describes an endpoint once at start, so views know it before its first sample.
    /// Written by `serialize_watching`, in the field order journals have always had.
    #[serde(serialize_with = "serialize_watching")]
    Watching {
        #[serde(flatten)]
        id: EndpointId,
        exchange_kind: ExchangeKind,
        kind: EndpointKind,
        url: String,
        interval_ms: u64,
    },
    Sample(Sample),
    /// A request has been in flight for `in_flight_ms` and is still
    /// unanswered (sent once per poll; its `Sample` follows when it ends).
    Stalled {
        #[serde(flatten)]
        id: EndpointId,
        at_ms: i64,
        in_flight_ms: u64,
    },
    /// A worker waited for the rate limiter before polling.
    LimiterWaited {
        #[serde(flatten)]
        id: EndpointId,
        at_ms: i64,
        waited_ms: u64,
        tier: Tier,
    },
    LimiterFill {
        #[serde(flatten)]
        id: EndpointId,
        at_ms: i64,
        tiers: Vec<TierFill>,
    },
    BreakerChanged {
        #[serde(flatten)]
        id: EndpointId,
        at_ms: i64,
        transition: Transition,
    },
    /// A poll was skipped because the breaker is open.
    BreakerRejected {
        #[serde(flatten)]
        id: EndpointId,
        at_ms: i64,
        state: BreakerState,
    },
    PollInterval {
        #[serde(flatten)]
        id: EndpointId,
        interval_ms: u64,
    },
    ClockOffset {
        exchange: String,
        offset_ms: i64,
    },
    /// Describes a stream row (a connection or a subscription, see
    /// [`super::stream`]) once at start, so views know it before its first
    /// status.
    StreamWatching {
        #[serde(flatten)]
        id: EndpointId,
        exchange_kind: ExchangeKind,
        /// The connection's name (equal to `id.endpoint` on a connection row).
        connection: String,
        /// The WebSocket URL.
        url: String,
    },
    /// A stream row's figures, about once a second.
    StreamStatus(StreamStatus),
    /// Something that happened on a stream connection (a gap, a resync, a
    /// planned disconnect...).
    StreamNote(StreamNote),
    BackendHealth {
        at_ms: i64,
        component: Component,
        healthy: bool,
        detail: String,
    },
    /// The whole new state of one alert (raised, re-fired, acknowledged,
    /// silenced, resolved, triaged). Only the alert engine emits it: it is the
    /// one author of alert state.
    AlertChanged {
        alert: Alert,
    },
    /// A triage result for one firing episode of one alert, from the triage
    /// task. The engine folds it into the alert it holds (whatever its state
    /// is by then) and emits the `AlertChanged`; a result for an older
    /// episode is dropped.
    AlertTriaged {
        fingerprint: String,
        /// The alert's `occurrences` when triage was asked (1 for the first
        /// firing episode, +1 for each re-fire after a resolve).
        episode: u64,
        triage: Triage,
    },
    /// A sink's delivery state for one alert.
    AlertDelivery {
        fingerprint: String,
        sink: String,
        delivery: Delivery,
    },
    /// Cumulative triage counters (model calls, tokens, cost), after each model call.
    TriageUsage(TriageTotals),
    /// The operator's live silences and acknowledged incidents, whole, after
    /// each change (one set, undone, expired; an acknowledged incident
    /// closed). Only the alert engine emits it; journals written before it
    /// existed simply have none (the lists are then empty).
    Suppressions {
        at_ms: i64,
        #[serde(default)]
        silences: Vec<SilenceInfo>,
        #[serde(default)]
        acks: Vec<AckInfo>,
        /// What changed, for the journal's reader: `silence #3 removed by ana`.
        #[serde(default)]
        note: String,
    },
}

/// Writes [`Event::Watching`] with its fields in the order journals have
/// always had them (`exchange`, `exchange_kind`, `endpoint`, `kind`, ...):
/// a flattened [`EndpointId`] would put its two fields side by side. Reading
/// needs no counterpart: the flattened id takes its fields from anywhere.
fn serialize_watching<S: Serializer>(
    id: &EndpointId,
    exchange_kind: &ExchangeKind,
    kind: &EndpointKind,
    url: &str,
    interval_ms: &u64,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    #[derive(Serialize)]
    struct Watching<'a> {
        exchange: &'a str,
        exchange_kind: ExchangeKind,
        endpoint: &'a str,
        kind: EndpointKind,
        url: &'a str,
        interval_ms: u64,
    }
    Watching {
        exchange: &id.exchange,
        exchange_kind: *exchange_kind,
        endpoint: &id.endpoint,
        kind: *kind,
        url,
        interval_ms: *interval_ms,
    }
    .serialize(serializer)
}

/// What the operator can ask of the engine. The UI sends these; it never
/// changes engine state itself.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// Force the endpoint's breaker open: no calls until it is reset.
    ForceOpen { id: EndpointId },
    /// Close the endpoint's breaker and forget its history.
    ResetBreaker { id: EndpointId },
    /// Stop reminders for an alert; `by` names the operator.
    Acknowledge {
        fingerprint: String,
        by: String,
        /// The episode (`Alert::occurrences`) the operator saw, when known:
        /// if the alert resolved and fired again before the command
        /// arrives, the new episode is not acknowledged. `None` (an API
        /// caller, a test) acknowledges whatever episode is open.
        episode: Option<u64>,
    },
    /// Withdraw the acknowledgement of an incident (its id, as in
    /// [`AckInfo::incident`]): its open symptoms fire again (unless silenced
    /// or inhibited) and are notified by the usual rules. Unknown or not
    /// acknowledged: nothing happens.
    Unacknowledge { incident: String, by: String },
    /// Silence alerts matching every given field, for a while.
    Silence {
        exchange: Option<String>,
        endpoint: Option<String>,
        kind: Option<String>,
        duration: std::time::Duration,
        by: String,
    },
    /// Expire silence `id` now ([`SilenceInfo::id`]): the alerts it
    /// silenced that still fire become firing again (unless something else
    /// silences them) and are notified by the usual rules. Unknown id:
    /// nothing happens.
    Unsilence { id: u64, by: String },
    /// Ask for triage of these alerts (one batch).
    Triage { fingerprints: Vec<String> },
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One line of each event that names an endpoint, as journals were
    /// written before events carried an `EndpointId`: the shape must not
    /// change, field order included.
    const ENDPOINT_EVENTS: [&str; 10] = [
        r#"{"event":"watching","exchange":"binance","exchange_kind":"binance","endpoint":"time","kind":"time","url":"http://127.0.0.1:45971/binance/api/v3/time","interval_ms":5000}"#,
        r#"{"event":"sample","exchange":"binance","endpoint":"ticker","at_ms":1700000000000,"latency_us":1234,"status":200,"outcome":{"outcome":"ok"},"summary":"100.5 / 100.6","price":100.55,"exchange_ts_ms":1699999999990,"signal":{"used":12,"limit":6000,"remaining":null,"window_ms":60000,"reset_at_ms":null,"retry_after_ms":null,"banned_until_ms":null}}"#,
        r#"{"event":"sample","exchange":"okx","endpoint":"book","at_ms":1700000000001,"latency_us":0,"status":null,"outcome":{"outcome":"invalid","reason":{"reason":"crossed_book","bid":2.5,"ask":1.25}},"summary":null,"price":null,"exchange_ts_ms":null,"signal":null}"#,
        r#"{"event":"stalled","exchange":"binance","endpoint":"book","at_ms":1796029907200,"in_flight_ms":250}"#,
        r#"{"event":"limiter_waited","exchange":"bybit","endpoint":"time","at_ms":1796029930409,"waited_ms":1471,"tier":"exchange"}"#,
        r#"{"event":"limiter_fill","exchange":"bybit","endpoint":"time","at_ms":1796029930409,"tiers":[{"tier":"ip","tokens":3.5,"capacity":10.0,"blocked_for_ms":null}]}"#,
        r#"{"event":"breaker_changed","exchange":"okx","endpoint":"book","at_ms":1796029913967,"transition":{"from":"closed","to":"open","reason":"3 consecutive failures ≥ 3 (last: server_error); open 4s (trip 1)","open_until_ms":1796029917967}}"#,
        r#"{"event":"breaker_changed","exchange":"okx","endpoint":"book","at_ms":1700000000100,"transition":{"from":"closed","to":"open","reason":{"cause":"consecutive_failures","count":3,"threshold":3,"last":"server_error","open":{"wait":"backoff","wait_ms":10000,"trip":1}},"open_until_ms":1700000010100}}"#,
        r#"{"event":"breaker_rejected","exchange":"okx","endpoint":"book","at_ms":1796029914468,"state":"open"}"#,
        r#"{"event":"poll_interval","exchange":"coinbase","endpoint":"book","interval_ms":500}"#,
    ];

    #[test]
    fn endpoint_events_keep_their_json_shape() {
        for line in ENDPOINT_EVENTS {
            let ev: Event = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
            let again = serde_json::to_string(&ev).unwrap_or_else(|e| panic!("{e}: {line}"));
            assert_eq!(again, line);
        }
    }

    #[test]
    fn an_endpoint_id_is_written_as_the_two_fields_it_replaced() {
        let watching = Event::Watching {
            id: EndpointId::new("binance", "time"),
            exchange_kind: ExchangeKind::Binance,
            kind: EndpointKind::Time,
            url: "http://127.0.0.1:45971/binance/api/v3/time".into(),
            interval_ms: 5000,
        };
        let stalled = Event::Stalled {
            id: EndpointId::new("binance", "book"),
            at_ms: 1_796_029_907_200,
            in_flight_ms: 250,
        };
        let json = |ev: &Event| serde_json::to_string(ev).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(json(&watching), ENDPOINT_EVENTS[0]);
        assert_eq!(json(&stalled), ENDPOINT_EVENTS[3]);
        let back: Event =
            serde_json::from_str(ENDPOINT_EVENTS[0]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(back, watching);
    }

    #[test]
    fn component_names_and_labels() {
        let all = [
            Component::RedisLimiter,
            Component::RedisBreaker,
            Component::RedisDedup,
            Component::Journal,
        ];
        assert_eq!(
            all.map(Component::name),
            ["redis_limiter", "redis_breaker", "redis_dedup", "journal"]
        );
        assert_eq!(
            all.map(Component::as_str),
            [
                "redis (limiter)",
                "redis (breaker)",
                "redis (dedup)",
                "journal"
            ]
        );
        for c in all {
            assert_eq!(
                serde_json::to_value(c).ok(),
                Some(serde_json::Value::from(c.name()))
            );
            assert!(strum::EnumMessage::get_message(&c).is_some(), "{c:?}");
        }
    }
}
