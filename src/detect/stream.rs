//! WebSocket streams: the liveness and book verdicts a stream watcher sends
//! about once a second ([`StreamStatus`]) turned into alerts.
//!
//! | kind | row | fires when | severity |
//! | --- | --- | --- | --- |
//! | `stream_down` | connection | down (not announced) for `down_after`, or announced but down past `planned_max` | critical |
//! | `stream_dead` | connection | open, no frame at all past the dead threshold | critical |
//! | `stream_planned` | connection | the exchange announced the disconnect | info |
//! | `reconnect_storm` | connection | more attempts in the window than allowed | warning |
//! | `stream_zombie` | subscription, or the connection when all its subscriptions are | acked, socket alive, no data past `silent_after` | critical |
//! | `stream_refused` | subscription | refused, or not acked in time | warning |
//! | `book_invalid` | subscription | the book broke (gap, checksum, dropped messages); a drop of the connection is not a break | warning |
//! | `book_crossed` | subscription | a valid book's top locked or crossed in two statuses in a row ([`CROSSED_FOR`]) | critical |
//!
//! The thresholds themselves (`silent_after`, the dead threshold, the storm
//! window) are applied by the watcher's liveness tracker; this detector
//! adds the `for` of `stream_down` and `clear_for` for all of them, so a
//! verdict that flickers for one status does not flap an alert.

use super::{Finding, Firing, Gate, Step};
use crate::clock::ms;
use crate::model::{AlertKind, BookState, Severity, StreamState, StreamStatus};
use crate::problems::Problems;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

/// `[alerts.detect.stream]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StreamAlertSettings {
    /// Turn every stream alert off.
    pub enabled: bool,
    /// An unannounced disconnect pages once the connection has been down
    /// this long (a reconnect within it is only counted and journaled).
    #[serde(with = "humantime_serde")]
    pub down_after: Duration,
    /// An announced disconnect pages after all once it has been down this
    /// long.
    #[serde(with = "humantime_serde")]
    pub planned_max: Duration,
    /// A condition must have been gone this long before its alert clears.
    #[serde(with = "humantime_serde")]
    pub clear_for: Duration,
}

impl Default for StreamAlertSettings {
    /// 10 s down (every exchange's reconnect takes well under that: one
    /// backoff step of 1 s plus the handshake), 2 min for a planned one
    /// (Binance and OKX reconnect clients within seconds of the notice),
    /// 3 s to clear.
    fn default() -> Self {
        StreamAlertSettings {
            enabled: true,
            down_after: Duration::from_secs(10),
            planned_max: Duration::from_secs(120),
            clear_for: Duration::from_secs(3),
        }
    }
}

impl StreamAlertSettings {
    /// Problems under `at` (`alerts.detect.stream`).
    pub fn validate(&self, at: &str, p: &mut Problems) {
        use crate::problems::{DAY, check_duration};
        check_duration(
            p,
            &format!("{at}.down_after"),
            self.down_after,
            Duration::ZERO,
            DAY,
        );
        check_duration(
            p,
            &format!("{at}.planned_max"),
            self.planned_max,
            Duration::ZERO,
            DAY,
        );
        check_duration(
            p,
            &format!("{at}.clear_for"),
            self.clear_for,
            Duration::ZERO,
            DAY,
        );
    }
}

/// How long a streamed book's top must stay locked or crossed before
/// `book_crossed` fires: half a status period, so it fires on the second
/// status in a row that says crossed (about 1 s apart, a few ms less when a
/// tick runs late), as REST's `payload:crossed_book` wants two answers of
/// five. A book that crosses between two statuses only is journaled, not
/// paged.
pub const CROSSED_FOR: Duration = Duration::from_millis(500);

/// The kinds a stream row raises.
pub const KINDS: [AlertKind; 8] = [
    AlertKind::StreamDown,
    AlertKind::StreamDead,
    AlertKind::StreamPlanned,
    AlertKind::ReconnectStorm,
    AlertKind::StreamZombie,
    AlertKind::StreamRefused,
    AlertKind::BookInvalid,
    AlertKind::BookCrossed,
];

/// Whether a detector of this module raises `kind`.
pub fn raises(kind: &AlertKind) -> bool {
    KINDS.contains(kind)
}

/// The detector of one stream row (a connection or a subscription).
#[derive(Debug, Clone)]
pub struct StreamDetector {
    exchange: String,
    endpoint: String,
    s: StreamAlertSettings,
    gates: BTreeMap<String, Gate>,
}

impl StreamDetector {
    /// The detector of the row `exchange`/`endpoint`.
    pub fn new(exchange: &str, endpoint: &str, s: StreamAlertSettings) -> Self {
        StreamDetector {
            exchange: exchange.into(),
            endpoint: endpoint.into(),
            s,
            gates: BTreeMap::new(),
        }
    }

    /// Take back an alert restored after a restart; false if not a stream kind.
    pub fn assume_firing(&mut self, kind: &AlertKind) -> bool {
        if !raises(kind) {
            return false;
        }
        self.gates.entry(kind.name()).or_default().assume_firing();
        true
    }

    /// Whether any of its alerts fires now.
    pub fn is_firing(&self) -> bool {
        self.gates.values().any(Gate::is_firing)
    }

    /// Evaluate one status; returns what fired, holds or cleared.
    pub fn on_status(&mut self, st: &StreamStatus) -> Vec<Finding> {
        if !self.s.enabled {
            return Vec::new();
        }
        let now = st.at_ms;
        let clear = ms(self.s.clear_for);
        let connection_row = st.id.endpoint == st.connection;
        let mut out = Vec::new();
        // (kind, bad, fire_for_ms)
        let mut checks: Vec<(AlertKind, bool, i64)> = Vec::with_capacity(4);
        if connection_row {
            let down = st.state == StreamState::Down;
            let down_ms = st.age_ms.unwrap_or(0);
            let planned_over = st.expected && down && down_ms > ms(self.s.planned_max);
            checks.push((
                AlertKind::StreamDown,
                down && (!st.expected || planned_over),
                0,
            ));
            checks.push((AlertKind::StreamDead, st.state == StreamState::Dead, 0));
            checks.push((AlertKind::StreamPlanned, st.expected && !planned_over, 0));
            checks.push((AlertKind::ReconnectStorm, st.storm.is_some(), 0));
            checks.push((
                AlertKind::StreamZombie,
                st.state == StreamState::Zombie && !st.expected,
                0,
            ));
        } else {
            checks.push((
                AlertKind::StreamZombie,
                st.state == StreamState::Zombie && !st.expected && !st.connection_wide,
                0,
            ));
            checks.push((
                AlertKind::StreamRefused,
                matches!(st.state, StreamState::Refused | StreamState::Unacked),
                0,
            ));
            checks.push((
                AlertKind::BookInvalid,
                // A book dropped with its connection is `syncing` (the
                // watcher's rule): invalid is always an integrity fault,
                // even while a resync reconnects.
                st.book == Some(BookState::Invalid),
                0,
            ));
            checks.push((
                AlertKind::BookCrossed,
                st.crossed.is_some() && st.book == Some(BookState::Valid),
                ms(CROSSED_FOR),
            ));
        }
        for (kind, bad, fire_for) in checks {
            // stream_down's `for` is the time down, which the status
            // carries: fire at once when it is past `down_after`.
            let bad = if kind == AlertKind::StreamDown && bad && !st.expected {
                st.age_ms.unwrap_or(0) >= ms(self.s.down_after)
            } else {
                bad
            };
            let good = if kind == AlertKind::StreamDown {
                st.state != StreamState::Down
            } else {
                !bad
            };
            let gate = self.gates.entry(kind.name()).or_default();
            match gate.step(bad, good, now, fire_for, clear) {
                Step::Fired | Step::Firing => out.push(Finding::Firing(self.firing(kind, st))),
                Step::Cleared => out.push(Finding::Cleared {
                    exchange: self.exchange.clone(),
                    endpoint: Some(self.endpoint.clone()),
                    kind,
                }),
                Step::Quiet => {}
            }
        }
        out
    }

    fn firing(&self, kind: AlertKind, st: &StreamStatus) -> Firing {
        let secs = |v: Option<i64>| format!("{:.0}s", v.unwrap_or(0) as f64 / 1000.0);
        let (severity, title, description) = match kind {
            AlertKind::StreamDown => (
                Severity::Critical,
                format!("stream down for {}", secs(st.age_ms)),
                format!(
                    "The WebSocket connection is down and reconnecting ({} reconnects so far). \
                     Market data from it has stopped. {}",
                    st.reconnects, st.detail
                ),
            ),
            AlertKind::StreamDead => (
                Severity::Critical,
                format!("socket open, no frame for {}", secs(st.age_ms)),
                format!(
                    "The socket is open but nothing arrived, not even a ping or a heartbeat, \
                     for {} (threshold {}).",
                    secs(st.age_ms),
                    secs(Some(st.threshold_ms))
                ),
            ),
            AlertKind::StreamPlanned => (
                Severity::Info,
                "planned disconnect announced".to_string(),
                format!(
                    "The exchange announced this disconnect; exwatch reconnects and resubscribes. {}",
                    st.detail
                ),
            ),
            AlertKind::ReconnectStorm => (
                Severity::Warning,
                format!("reconnect storm ({} attempts)", st.storm.unwrap_or(0)),
                format!(
                    "{} connection attempts within the storm window. {}",
                    st.storm.unwrap_or(0),
                    st.detail
                ),
            ),
            AlertKind::StreamZombie => (
                Severity::Critical,
                format!("subscribed, no data for {} (zombie)", secs(st.age_ms)),
                format!(
                    "The subscription was acked and the socket is alive (pings and heartbeats \
                     arrive), but no data message came for {} (silent_after {}).",
                    secs(st.age_ms),
                    secs(Some(st.threshold_ms))
                ),
            ),
            AlertKind::StreamRefused => (
                Severity::Warning,
                format!("subscription {}", st.state.as_str()),
                format!(
                    "The exchange did not accept the subscription: {}",
                    st.detail
                ),
            ),
            AlertKind::BookCrossed => {
                let what = st.crossed.as_deref().unwrap_or("crossed");
                (
                    Severity::Critical,
                    format!("order book {what}"),
                    format!(
                        "The streamed book passed every sequence and checksum check, yet its \
                         best bid is at or above its best ask ({what}). No real market shows \
                         that for long: the exchange's feed (or its matching engine) is \
                         sending bad data, and anything trading on this book sees prices \
                         that cannot be traded."
                    ),
                )
            }
            _ => (
                Severity::Warning,
                format!("order book invalid ({})", short(&st.detail)),
                format!(
                    "The local book broke and is not served until a snapshot resyncs it: {} \
                     ({} gaps, {} resyncs so far).",
                    st.detail, st.gaps, st.resyncs
                ),
            ),
        };
        let mut metrics = BTreeMap::new();
        metrics.insert("age_ms".into(), st.age_ms.unwrap_or(0) as f64);
        metrics.insert("msgs_per_s".into(), st.msgs_per_s);
        metrics.insert("gaps".into(), st.gaps as f64);
        metrics.insert("reconnects".into(), st.reconnects as f64);
        Firing {
            exchange: self.exchange.clone(),
            endpoint: Some(self.endpoint.clone()),
            kind,
            severity,
            title,
            description,
            metrics,
        }
    }
}

/// The first clause of a detail (`gap: expected 5, received 7`).
fn short(detail: &str) -> &str {
    detail.split(['(', ';']).next().unwrap_or(detail).trim()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::EndpointId;

    fn st(endpoint: &str, at_ms: i64, state: StreamState) -> StreamStatus {
        StreamStatus {
            id: EndpointId::new("okx", endpoint),
            connection: "okx-ws".into(),
            at_ms,
            state,
            expected: false,
            age_ms: Some(0),
            threshold_ms: 30_000,
            msgs_per_s: 0.0,
            messages: 0,
            lag_p50_ms: None,
            lag_p99_ms: None,
            gaps: 0,
            resyncs: 0,
            reconnects: 0,
            storm: None,
            book: None,
            bid: None,
            ask: None,
            crossed: None,
            connection_wide: false,
            detail: String::new(),
        }
    }

    fn kinds(f: &[Finding]) -> Vec<(String, bool)> {
        f.iter().map(|x| (x.kind().name(), x.is_firing())).collect()
    }

    #[test]
    fn a_short_unannounced_drop_is_not_an_alert_a_long_one_is() {
        let mut d = StreamDetector::new("okx", "okx-ws", StreamAlertSettings::default());
        let down = |at, age| StreamStatus {
            age_ms: Some(age),
            ..st("okx-ws", at, StreamState::Down)
        };
        assert!(d.on_status(&down(1_000, 1_000)).is_empty());
        assert!(
            d.on_status(&st("okx-ws", 2_000, StreamState::Live))
                .is_empty()
        );
        assert!(d.on_status(&down(20_000, 9_000)).is_empty());
        let f = d.on_status(&down(21_000, 10_000));
        assert_eq!(kinds(&f), [("stream_down".to_string(), true)]);
        let Finding::Firing(x) = &f[0] else { panic!() };
        assert_eq!(x.severity, Severity::Critical);
        // Back up: clears after clear_for (3 s).
        assert!(kinds(&d.on_status(&st("okx-ws", 22_000, StreamState::Live))).len() == 1);
        let f = d.on_status(&st("okx-ws", 25_000, StreamState::Live));
        assert_eq!(kinds(&f), [("stream_down".to_string(), false)]);
    }

    #[test]
    fn an_announced_drop_is_info_until_planned_max() {
        let mut d = StreamDetector::new("okx", "okx-ws", StreamAlertSettings::default());
        let planned = |at, age| StreamStatus {
            expected: true,
            age_ms: Some(age),
            ..st("okx-ws", at, StreamState::Down)
        };
        let f = d.on_status(&planned(1_000, 30_000));
        assert_eq!(kinds(&f), [("stream_planned".to_string(), true)]);
        let f = d.on_status(&planned(200_000, 130_000));
        assert!(
            kinds(&f).contains(&("stream_down".to_string(), true)),
            "{f:?}"
        );
    }

    #[test]
    fn zombie_refused_and_book_invalid_on_subscription_rows() {
        let mut d = StreamDetector::new("okx", "ws:book:BTC-USDT", StreamAlertSettings::default());
        let f = d.on_status(&st("ws:book:BTC-USDT", 1_000, StreamState::Zombie));
        assert_eq!(kinds(&f), [("stream_zombie".to_string(), true)]);
        // A whole silent connection is one alert, on the connection row.
        let mut sub =
            StreamDetector::new("okx", "ws:book:BTC-USDT", StreamAlertSettings::default());
        let f = sub.on_status(&StreamStatus {
            connection_wide: true,
            ..st("ws:book:BTC-USDT", 1_000, StreamState::Zombie)
        });
        assert!(f.is_empty(), "{f:?}");
        let mut conn = StreamDetector::new("okx", "okx-ws", StreamAlertSettings::default());
        let f = conn.on_status(&st("okx-ws", 1_000, StreamState::Zombie));
        assert_eq!(kinds(&f), [("stream_zombie".to_string(), true)]);
        let mut d = StreamDetector::new("okx", "ws:book:BTC-USDT", StreamAlertSettings::default());
        let bad = StreamStatus {
            book: Some(BookState::Invalid),
            detail: "gap: expected 12, received 14".into(),
            ..st("ws:book:BTC-USDT", 1_000, StreamState::Live)
        };
        let f = d.on_status(&bad);
        assert_eq!(kinds(&f), [("book_invalid".to_string(), true)]);
        let Finding::Firing(x) = &f[0] else { panic!() };
        assert!(
            x.title.contains("gap: expected 12, received 14"),
            "{}",
            x.title
        );
        // Syncing because the connection is down: that is stream_down's, not a gap.
        let mut d = StreamDetector::new("okx", "ws:book:BTC-USDT", StreamAlertSettings::default());
        let f = d.on_status(&StreamStatus {
            state: StreamState::Down,
            book: Some(BookState::Syncing),
            ..bad
        });
        assert!(f.is_empty(), "{f:?}");
    }

    #[test]
    fn a_valid_book_crossed_for_two_statuses_is_critical_and_clears() {
        let mut d =
            StreamDetector::new("kraken", "ws:book:BTC-USD", StreamAlertSettings::default());
        let crossed = |at| StreamStatus {
            book: Some(BookState::Valid),
            crossed: Some("crossed: best bid 101.5 > best ask 101.0".into()),
            ..st("ws:book:BTC-USD", at, StreamState::Live)
        };
        // One status crossed: held, not fired (a one-message crossing).
        assert!(d.on_status(&crossed(1_000)).is_empty());
        // The next one, even from a tick a few ms late, fires.
        let f = d.on_status(&crossed(1_990));
        assert_eq!(kinds(&f), [("book_crossed".to_string(), true)]);
        let Finding::Firing(x) = &f[0] else { panic!() };
        assert_eq!(x.severity, Severity::Critical);
        assert!(
            x.title.contains("best bid 101.5 > best ask 101.0"),
            "{}",
            x.title
        );
        let ok = |at| StreamStatus {
            book: Some(BookState::Valid),
            ..st("ws:book:BTC-USD", at, StreamState::Live)
        };
        d.on_status(&ok(3_000));
        let f = d.on_status(&ok(6_500));
        assert_eq!(kinds(&f), [("book_crossed".to_string(), false)]);
    }
}
