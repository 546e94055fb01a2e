//! Liveness per subscription, not per socket (issue #16 point 2). Pure: fed
//! with the workers' [`StreamReport`]s and asked with an explicit `now_ms`.
//!
//! - A subscription's clock runs from its ack (or its last DATA message):
//!   pings, pongs, heartbeats, acks, notices and errors never reset it
//!   ([`ReportKind::Data`] is the only data report).
//! - `zombie`: acked, the socket still delivers frames, but this
//!   subscription has been silent longer than its threshold (the failure
//!   reported for Binance, Kraken and Coinbase in research/websocket.md §10.1).
//! - `dead`: no frame at all on the socket longer than the dead threshold.
//! - `storm`: more than `storm_reconnects` connection attempts within
//!   `storm_window_ms`.
//! - A drop announced beforehand (planned) is `expected`, not an outage.
//!
//! Thresholds are the caller's: a quiet symbol may be silent for minutes
//! without being a zombie, so they are set per subscription.

use std::collections::{BTreeMap, HashMap, VecDeque};

use serde::Serialize;

use super::report::{ReportKind, StreamReport};
use crate::model::ExchangeKind;

/// Default thresholds, ms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LivenessConfig {
    /// A subscription acked and silent this long is a zombie (unless its
    /// own threshold says otherwise).
    pub zombie_after_ms: i64,
    /// A connected socket without any frame this long is dead.
    pub dead_after_ms: i64,
    /// A subscription not acked this long after connecting.
    pub unacked_after_ms: i64,
    /// More than this many connection attempts within the window is a storm.
    pub storm_reconnects: usize,
    /// Window (ms) over which connection attempts are counted for a storm.
    pub storm_window_ms: i64,
}

impl Default for LivenessConfig {
    /// 30 s of data silence (Coinbase clients use 15–30 s; nautilus reads
    /// 10 s idle), 60 s without frames (Binance pings every 20 s, Kraken
    /// and Coinbase heartbeat each second), 10 s for an ack, and more than
    /// 10 attempts in 5 minutes as a storm.
    fn default() -> Self {
        LivenessConfig {
            zombie_after_ms: 30_000,
            dead_after_ms: 60_000,
            unacked_after_ms: 10_000,
            storm_reconnects: 10,
            storm_window_ms: 300_000,
        }
    }
}

/// A subscription, keyed as its data messages name it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct SubKey {
    /// The exchange the subscription is on.
    pub exchange: ExchangeKind,
    /// The channel as its data messages name it (`depth`, `orderbook.50`, `books`, `book`).
    pub channel: String,
    /// The symbol as its data messages spell it.
    pub symbol: String,
}

/// The state of one subscription at `now_ms`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "health", rename_all = "snake_case")]
pub enum Health {
    /// Data within its threshold (`data_age_ms` is `None` before the first
    /// message after the ack).
    Live {
        /// ms since the last data message (`None` before the first).
        data_age_ms: Option<i64>,
    },
    /// Subscribed, not yet acked, within the ack deadline.
    Pending {
        /// ms waited so far.
        waited_ms: i64,
    },
    /// Not acked past the ack deadline.
    Unacked {
        /// ms waited so far.
        waited_ms: i64,
    },
    /// The exchange refused it.
    Refused {
        /// The exchange's words.
        message: String,
    },
    /// Acked, socket alive, this subscription silent past its threshold.
    Zombie {
        /// ms without data (zombie) or without any frame (dead).
        silent_ms: i64,
        /// The threshold passed, ms.
        threshold_ms: i64,
    },
    /// The socket delivered no frame past the dead threshold.
    Dead {
        /// ms without data (zombie) or without any frame (dead).
        silent_ms: i64,
        /// The threshold passed, ms.
        threshold_ms: i64,
    },
    /// The connection is down (`expected` when it was announced).
    Down {
        /// ms since the connection went down.
        down_ms: i64,
    },
}

/// One subscription's verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SubVerdict {
    /// The subscription.
    pub key: SubKey,
    /// The connection it is on (the spec's `name`).
    pub connection: String,
    /// Its state at the time asked.
    pub health: Health,
    /// The connection's drop was announced (planned): not an outage.
    pub expected: bool,
}

/// One connection's verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConnVerdict {
    /// The exchange of the connection.
    pub exchange: ExchangeKind,
    /// The connection's name (the spec's `name`).
    pub connection: String,
    /// Whether the WebSocket is open.
    pub connected: bool,
    /// ms since the last frame of any kind, while connected.
    pub frame_age_ms: Option<i64>,
    /// No frame past the dead threshold while connected.
    pub dead: bool,
    /// Attempts within the storm window, when more than allowed.
    pub storm: Option<usize>,
    /// A disconnect was announced and the connection has not come back yet.
    pub expected: bool,
}

#[derive(Debug, Clone, Default)]
struct Conn {
    exchange: Option<ExchangeKind>,
    connected: bool,
    connected_ms: i64,
    last_frame_ms: i64,
    down_ms: i64,
    announced: bool,
    planned_down: bool,
    attempts: VecDeque<i64>,
    seen_attempt: bool,
}

#[derive(Debug, Clone)]
struct Sub {
    connection: String,
    threshold_ms: Option<i64>,
    acked_ms: Option<i64>,
    last_data_ms: Option<i64>,
    refused: Option<String>,
}

/// The liveness tracker of many connections.
#[derive(Debug, Clone, Default)]
pub struct Liveness {
    config: LivenessConfig,
    conns: BTreeMap<String, Conn>,
    subs: HashMap<SubKey, Sub>,
}

impl Liveness {
    /// A tracker with these thresholds and nothing observed yet.
    pub fn new(config: LivenessConfig) -> Liveness {
        Liveness {
            config,
            ..Liveness::default()
        }
    }

    /// Expect a subscription on `connection` (so a never-acked one shows),
    /// with its own silence threshold (`None`: the default).
    pub fn expect(&mut self, connection: &str, key: SubKey, threshold_ms: Option<i64>) {
        let sub = self.sub(connection, key);
        sub.threshold_ms = threshold_ms;
    }

    fn sub(&mut self, connection: &str, key: SubKey) -> &mut Sub {
        let sub = self.subs.entry(key).or_insert_with(|| Sub {
            connection: connection.to_string(),
            threshold_ms: None,
            acked_ms: None,
            last_data_ms: None,
            refused: None,
        });
        sub.connection = connection.to_string();
        sub
    }

    /// Take one report into account.
    pub fn observe(&mut self, r: &StreamReport) {
        let at = r.at_ms;
        let conn = self.conns.entry(r.connection.clone()).or_default();
        conn.exchange = Some(r.exchange);
        if r.kind.is_frame() {
            conn.last_frame_ms = conn.last_frame_ms.max(at);
        }
        match &r.kind {
            ReportKind::Connecting { .. } => {
                if conn.seen_attempt {
                    conn.attempts.push_back(at);
                }
                conn.seen_attempt = true;
            }
            ReportKind::Connected { .. } => {
                conn.connected = true;
                conn.connected_ms = at;
                conn.last_frame_ms = at;
                conn.announced = false;
                conn.planned_down = false;
                for sub in self.subs.values_mut() {
                    if sub.connection == r.connection {
                        sub.acked_ms = None;
                        sub.last_data_ms = None;
                        sub.refused = None;
                    }
                }
            }
            ReportKind::PlannedDisconnect { .. } => conn.announced = true,
            ReportKind::Disconnected { planned, .. } => {
                if conn.connected || conn.down_ms == 0 {
                    conn.down_ms = at;
                }
                conn.planned_down = *planned || conn.announced;
                conn.connected = false;
            }
            ReportKind::Subscribed { channel, symbol } => {
                let key = SubKey {
                    exchange: r.exchange,
                    channel: channel.clone(),
                    symbol: symbol.clone(),
                };
                let sub = self.sub(&r.connection, key);
                sub.acked_ms = Some(at);
                sub.refused = None;
            }
            ReportKind::SubscribeRefused {
                channel,
                symbol,
                message,
                ..
            } => {
                for (key, sub) in self.subs.iter_mut() {
                    let named = channel.as_ref().is_none_or(|c| *c == key.channel)
                        && symbol.as_ref().is_none_or(|s| *s == key.symbol);
                    if sub.connection == r.connection && sub.acked_ms.is_none() && named {
                        sub.refused = Some(message.clone());
                    }
                }
            }
            ReportKind::Data {
                channel,
                symbol,
                received_ms,
                ..
            } => {
                let key = SubKey {
                    exchange: r.exchange,
                    channel: channel.clone(),
                    symbol: symbol.clone(),
                };
                let sub = self.sub(&r.connection, key);
                sub.last_data_ms = Some(sub.last_data_ms.unwrap_or(i64::MIN).max(*received_ms));
                // Data without a visible ack (Coinbase acks per channel
                // list) proves the subscription anyway.
                sub.acked_ms.get_or_insert(*received_ms);
            }
            _ => {}
        }
    }

    fn storm_count(&self, conn: &Conn, now_ms: i64) -> usize {
        conn.attempts
            .iter()
            .filter(|t| now_ms - **t < self.config.storm_window_ms)
            .count()
    }

    /// Every connection's verdict at `now_ms`.
    pub fn connections(&mut self, now_ms: i64) -> Vec<ConnVerdict> {
        let window = self.config.storm_window_ms;
        for c in self.conns.values_mut() {
            while c.attempts.front().is_some_and(|t| now_ms - *t >= window) {
                c.attempts.pop_front();
            }
        }
        self.conns
            .iter()
            .map(|(name, c)| {
                let frame_age = c.connected.then(|| now_ms - c.last_frame_ms);
                let n = self.storm_count(c, now_ms);
                ConnVerdict {
                    exchange: c.exchange.unwrap_or(ExchangeKind::Generic),
                    connection: name.clone(),
                    connected: c.connected,
                    frame_age_ms: frame_age,
                    dead: frame_age.is_some_and(|a| a > self.config.dead_after_ms),
                    storm: (n > self.config.storm_reconnects).then_some(n),
                    expected: c.announced || (!c.connected && c.planned_down),
                }
            })
            .collect()
    }

    /// Every subscription's verdict at `now_ms`, by connection, channel
    /// and symbol.
    pub fn subscriptions(&self, now_ms: i64) -> Vec<SubVerdict> {
        let mut out: Vec<SubVerdict> = self
            .subs
            .iter()
            .map(|(k, s)| self.verdict(k, s, now_ms))
            .collect();
        out.sort_by(|a, b| {
            (&a.connection, &a.key.channel, &a.key.symbol).cmp(&(
                &b.connection,
                &b.key.channel,
                &b.key.symbol,
            ))
        });
        out
    }

    fn verdict(&self, key: &SubKey, sub: &Sub, now_ms: i64) -> SubVerdict {
        let cfg = self.config;
        let conn = self.conns.get(&sub.connection);
        let expected = conn.is_some_and(|c| c.announced || c.planned_down);
        let health = match conn {
            None => Health::Down { down_ms: 0 },
            Some(c) if !c.connected => Health::Down {
                down_ms: now_ms - c.down_ms,
            },
            Some(_) if sub.refused.is_some() => Health::Refused {
                message: sub.refused.clone().unwrap_or_default(),
            },
            Some(c) if now_ms - c.last_frame_ms > cfg.dead_after_ms => Health::Dead {
                silent_ms: now_ms - c.last_frame_ms,
                threshold_ms: cfg.dead_after_ms,
            },
            Some(c) => match sub.acked_ms {
                None => {
                    let waited = now_ms - c.connected_ms;
                    if waited > cfg.unacked_after_ms {
                        Health::Unacked { waited_ms: waited }
                    } else {
                        Health::Pending { waited_ms: waited }
                    }
                }
                Some(acked) => {
                    let since = sub.last_data_ms.unwrap_or(acked).max(acked);
                    let threshold = sub.threshold_ms.unwrap_or(cfg.zombie_after_ms);
                    let silent = now_ms - since;
                    if silent > threshold {
                        Health::Zombie {
                            silent_ms: silent,
                            threshold_ms: threshold,
                        }
                    } else {
                        Health::Live {
                            data_age_ms: sub.last_data_ms.map(|d| now_ms - d),
                        }
                    }
                }
            },
        };
        SubVerdict {
            key: key.clone(),
            connection: sub.connection.clone(),
            health,
            expected,
        }
    }

    /// The verdict of one subscription.
    pub fn subscription(&self, key: &SubKey, now_ms: i64) -> Option<SubVerdict> {
        self.subs.get(key).map(|s| self.verdict(key, s, now_ms))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stream::report::ControlKind;

    fn rep(at_ms: i64, kind: ReportKind) -> StreamReport {
        StreamReport {
            exchange: ExchangeKind::Kraken,
            connection: "k".into(),
            at_ms,
            kind,
        }
    }

    fn key(channel: &str) -> SubKey {
        SubKey {
            exchange: ExchangeKind::Kraken,
            channel: channel.into(),
            symbol: "BTC/USD".into(),
        }
    }

    fn data(at: i64, channel: &str) -> ReportKind {
        ReportKind::Data {
            channel: channel.into(),
            symbol: "BTC/USD".into(),
            received_ms: at,
            event_time_ms: None,
            bytes: 100,
            bid: None,
            ask: None,
        }
    }

    fn connected(l: &mut Liveness, at: i64) {
        l.observe(&rep(
            at,
            ReportKind::Connecting {
                attempt: 1,
                url: "ws://x".into(),
            },
        ));
        l.observe(&rep(
            at,
            ReportKind::Connected {
                attempt: 1,
                handshake_ms: 1,
            },
        ));
    }

    fn cfg() -> LivenessConfig {
        LivenessConfig {
            zombie_after_ms: 3_000,
            dead_after_ms: 5_000,
            unacked_after_ms: 2_000,
            storm_reconnects: 3,
            storm_window_ms: 10_000,
        }
    }

    #[test]
    fn heartbeats_alone_make_an_acked_subscription_a_zombie() {
        let mut l = Liveness::new(cfg());
        l.expect("k", key("book"), None);
        connected(&mut l, 0);
        l.observe(&rep(
            100,
            ReportKind::Subscribed {
                channel: "book".into(),
                symbol: "BTC/USD".into(),
            },
        ));
        l.observe(&rep(500, data(500, "book")));
        for t in (1_000..=6_000).step_by(1_000) {
            l.observe(&rep(
                t,
                ReportKind::Control {
                    control: ControlKind::Heartbeat,
                },
            ));
        }
        let v = l.subscription(&key("book"), 3_400).unwrap();
        assert_eq!(
            v.health,
            Health::Live {
                data_age_ms: Some(2_900)
            }
        );
        let v = l.subscription(&key("book"), 6_000).unwrap();
        assert_eq!(
            v.health,
            Health::Zombie {
                silent_ms: 5_500,
                threshold_ms: 3_000
            }
        );
        // Data again: live.
        l.observe(&rep(6_100, data(6_100, "book")));
        assert!(matches!(
            l.subscription(&key("book"), 6_200).unwrap().health,
            Health::Live { .. }
        ));
    }

    #[test]
    fn no_frames_at_all_is_dead_not_zombie() {
        let mut l = Liveness::new(cfg());
        connected(&mut l, 0);
        l.observe(&rep(
            10,
            ReportKind::Subscribed {
                channel: "trade".into(),
                symbol: "BTC/USD".into(),
            },
        ));
        l.observe(&rep(1_000, data(1_000, "trade")));
        let v = l.subscription(&key("trade"), 6_500).unwrap();
        assert_eq!(
            v.health,
            Health::Dead {
                silent_ms: 5_500,
                threshold_ms: 5_000
            }
        );
        assert!(l.connections(6_500)[0].dead);
    }

    #[test]
    fn unacked_refused_and_per_subscription_thresholds() {
        let mut l = Liveness::new(cfg());
        l.expect("k", key("ticker"), Some(60_000));
        l.expect("k", key("book"), None);
        connected(&mut l, 0);
        l.observe(&rep(
            100,
            ReportKind::Control {
                control: ControlKind::Heartbeat,
            },
        ));
        assert!(matches!(
            l.subscription(&key("book"), 1_000).unwrap().health,
            Health::Pending { .. }
        ));
        assert!(matches!(
            l.subscription(&key("book"), 2_500).unwrap().health,
            Health::Unacked { waited_ms: 2_500 }
        ));
        l.observe(&rep(
            2_600,
            ReportKind::SubscribeRefused {
                channel: Some("book".into()),
                symbol: None,
                code: None,
                message: "Currency pair not supported".into(),
            },
        ));
        assert!(matches!(
            l.subscription(&key("book"), 2_700).unwrap().health,
            Health::Refused { .. }
        ));
        l.observe(&rep(
            2_800,
            ReportKind::Subscribed {
                channel: "ticker".into(),
                symbol: "BTC/USD".into(),
            },
        ));
        // Silent 4 s: past the default, within its own 60 s.
        l.observe(&rep(
            6_000,
            ReportKind::Control {
                control: ControlKind::Heartbeat,
            },
        ));
        assert!(matches!(
            l.subscription(&key("ticker"), 6_900).unwrap().health,
            Health::Live { data_age_ms: None }
        ));
    }

    #[test]
    fn planned_drops_are_expected_and_storms_are_counted() {
        let mut l = Liveness::new(cfg());
        connected(&mut l, 0);
        l.observe(&rep(
            100,
            ReportKind::Subscribed {
                channel: "book".into(),
                symbol: "BTC/USD".into(),
            },
        ));
        l.observe(&rep(
            200,
            ReportKind::PlannedDisconnect {
                notice: None,
                code: None,
                message: "maintenance".into(),
            },
        ));
        l.observe(&rep(
            300,
            ReportKind::Disconnected {
                code: Some(1001),
                reason: "going away".into(),
                error: None,
                planned: false,
                connected_ms: 300,
            },
        ));
        let v = l.subscription(&key("book"), 400).unwrap();
        assert_eq!(v.health, Health::Down { down_ms: 100 });
        assert!(v.expected);
        assert!(l.connections(400)[0].expected);
        // Unannounced drops and many attempts: a storm, not expected.
        connected(&mut l, 500);
        l.observe(&rep(
            600,
            ReportKind::Disconnected {
                code: None,
                reason: "reset".into(),
                error: Some("reset".into()),
                planned: false,
                connected_ms: 100,
            },
        ));
        assert!(!l.subscription(&key("book"), 700).unwrap().expected);
        for t in [1_000, 2_000, 3_000] {
            l.observe(&rep(
                t,
                ReportKind::Connecting {
                    attempt: 2,
                    url: "ws://x".into(),
                },
            ));
        }
        let c = &l.connections(3_000)[0];
        assert_eq!(c.storm, Some(4));
        assert_eq!(l.connections(11_500)[0].storm, None);
    }
}
