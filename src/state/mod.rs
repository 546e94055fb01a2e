//! The event stream, the pure reducer and the immutable snapshot it publishes.
//!
//! Workers and engines only ever *send* [`Event`]s; [`State::apply`] is the
//! one place state changes, and [`State::snapshot`] is what every view (TUI,
//! headless lines, metrics, replay) reads. Times inside events are unix ms
//! taken at the edges, so replaying a journal yields the same snapshots.

use crate::model::{AckInfo, SilenceInfo};
use crate::model::{Alert, AlertState};
use crate::model::{BreakerState, BreakerView};
use crate::model::{Component, Event, Outcome, Sample};
use crate::model::{EndpointId, EndpointKind, ExchangeKind};
use crate::model::{Tier, TierFill};
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, VecDeque};

mod stream;
pub use stream::StreamView;

/// How many recent samples each endpoint keeps for sparklines and rates.
pub const RECENT: usize = 120;

/// Per-endpoint figures the reducer keeps between events.
#[derive(Debug, Clone)]
struct EndpointState {
    exchange_kind: ExchangeKind,
    kind: EndpointKind,
    url: String,
    interval_ms: u64,
    /// `None` only if hdrhistogram rejected constant bounds, which it does not.
    histogram: Option<Histogram<u64>>,
    recent: VecDeque<Recent>,
    calls: u64,
    failures: u64,
    by_outcome: BTreeMap<String, u64>,
    last: Option<Sample>,
    last_ok_at_ms: Option<i64>,
    last_exchange_ts_ms: Option<i64>,
    breaker: BreakerView,
    breaker_rejections: u64,
    limiter_waits: u64,
    limiter_waited_ms: u64,
    last_wait_ms: u64,
    limiter: Vec<TierFill>,
    stalled_since_ms: Option<i64>,
    held: Option<Hold>,
    /// Set on a WebSocket stream row.
    stream: Option<stream::StreamRow>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct Recent {
    latency_us: u64,
    ok: bool,
}

impl EndpointState {
    fn new(exchange_kind: ExchangeKind, kind: EndpointKind, url: String, interval_ms: u64) -> Self {
        EndpointState {
            exchange_kind,
            kind,
            url,
            interval_ms,
            // 1 µs .. 10 min, 3 significant digits: bounded memory per endpoint.
            histogram: Histogram::new_with_bounds(1, 600_000_000, 3).ok(),
            recent: VecDeque::with_capacity(RECENT),
            calls: 0,
            failures: 0,
            by_outcome: BTreeMap::new(),
            last: None,
            last_ok_at_ms: None,
            last_exchange_ts_ms: None,
            breaker: BreakerView {
                state: BreakerState::Closed,
                open_until_ms: None,
                consecutive_failures: 0,
                trips: 0,
                tripped_at_ms: None,
            },
            breaker_rejections: 0,
            limiter_waits: 0,
            limiter_waited_ms: 0,
            last_wait_ms: 0,
            limiter: Vec::new(),
            stalled_since_ms: None,
            held: None,
            stream: None,
        }
    }
}

/// Everything the reducer knows. Only [`State::apply`] changes it.
#[derive(Debug, Clone, Default)]
pub struct State {
    /// Exchange name → endpoint name → state, in config order.
    exchanges: Vec<(String, Vec<(String, EndpointState)>)>,
    health: BTreeMap<Component, (bool, String, i64)>,
    clock_offsets: BTreeMap<String, i64>,
    alerts: BTreeMap<String, Alert>,
    last_event_ms: i64,
    events: u64,
    triage: crate::model::TriageTotals,
    /// The engine's last `Suppressions` lists.
    silences: Vec<SilenceInfo>,
    acks: Vec<AckInfo>,
}

impl State {
    pub fn new() -> Self {
        State::default()
    }

    fn endpoint_mut(&mut self, id: &EndpointId) -> Option<&mut EndpointState> {
        self.exchanges
            .iter_mut()
            .find(|(n, _)| *n == id.exchange)
            .and_then(|(_, eps)| eps.iter_mut().find(|(n, _)| *n == id.endpoint))
            .map(|(_, s)| s)
    }

    /// A tier the exchange told us to hold off holds every endpoint drawing
    /// on it (the same rule as the detectors': the endpoint's own tier holds
    /// it, a shared tier every endpoint of the exchange); why is the last
    /// answer of the endpoint whose poll brought the order.
    fn hold(&mut self, id: &EndpointId, at_ms: i64, tiers: &[TierFill]) {
        // Only a rate-limited or banned answer orders a hold; without one
        // at hand, say which tier holds.
        let answer = self
            .endpoint_mut(id)
            .and_then(|ep| ep.last.as_ref())
            .filter(|s| {
                matches!(
                    s.outcome,
                    Outcome::RateLimited { .. } | Outcome::Banned { .. }
                )
            })
            .map(|s| format!("{}: {}", id.endpoint, s.outcome.label()));
        let Some((_, eps)) = self.exchanges.iter_mut().find(|(n, _)| *n == id.exchange) else {
            return;
        };
        for fill in tiers {
            let Some(ms) = fill.blocked_for_ms else {
                continue;
            };
            let until_ms = at_ms.saturating_add(i64::try_from(ms).unwrap_or(i64::MAX));
            for (name, ep) in eps.iter_mut() {
                let other = EndpointId::new(id.exchange.as_str(), name.as_str());
                if fill.tier.holds(id, &other)
                    && ep.held.as_ref().is_none_or(|h| h.until_ms < until_ms)
                {
                    ep.held = Some(Hold {
                        until_ms,
                        tier: fill.tier,
                        why: answer
                            .clone()
                            .unwrap_or_else(|| format!("{} tier", fill.tier.as_str())),
                    });
                }
            }
        }
    }

    /// The row of `id`, added (in arrival order) if new.
    fn watch(&mut self, id: &EndpointId, new: impl FnOnce() -> EndpointState) {
        let pos = match self.exchanges.iter().position(|(n, _)| *n == id.exchange) {
            Some(p) => p,
            None => {
                self.exchanges.push((id.exchange.clone(), Vec::new()));
                self.exchanges.len() - 1
            }
        };
        let eps = &mut self.exchanges[pos].1;
        if !eps.iter().any(|(n, _)| *n == id.endpoint) {
            eps.push((id.endpoint.clone(), new()));
        }
    }

    /// Apply one event. Pure: no I/O, no clock.
    pub fn apply(&mut self, event: &Event) {
        self.events += 1;
        match event {
            Event::Watching {
                id,
                exchange_kind,
                kind,
                url,
                interval_ms,
            } => self.watch(id, || {
                EndpointState::new(*exchange_kind, *kind, url.clone(), *interval_ms)
            }),
            Event::StreamWatching {
                id,
                exchange_kind,
                connection,
                url,
            } => self.watch(id, || {
                // A stream row has no REST kind: the closest one, for
                // readers that only know those (`stream` says what it is).
                let kind = if id.endpoint.starts_with("ws:book:") {
                    EndpointKind::Book
                } else {
                    EndpointKind::Ticker
                };
                let mut ep = EndpointState::new(*exchange_kind, kind, url.clone(), 1000);
                ep.stream = Some(stream::StreamRow {
                    connection: connection.clone(),
                    ..Default::default()
                });
                ep
            }),
            Event::StreamStatus(st) => {
                self.last_event_ms = self.last_event_ms.max(st.at_ms);
                if let Some(ep) = self.endpoint_mut(&st.id) {
                    stream::apply_status(ep, st);
                }
            }
            Event::StreamNote(note) => {
                self.last_event_ms = self.last_event_ms.max(note.at_ms);
                if let Some(ep) = self.endpoint_mut(&note.id) {
                    stream::apply_note(ep, note);
                }
            }
            Event::Sample(s) => {
                self.last_event_ms = self.last_event_ms.max(s.at_ms);
                let Some(ep) = self.endpoint_mut(&s.id) else {
                    return;
                };
                ep.calls += 1;
                let ok = s.outcome.is_ok();
                if !ok {
                    ep.failures += 1;
                }
                *ep.by_outcome
                    .entry(s.outcome.class().as_str().to_string())
                    .or_default() += 1;
                // Latency of a timeout or refused connection says nothing about the API's speed.
                if !matches!(s.outcome, Outcome::Timeout | Outcome::Connect { .. }) {
                    if let Some(h) = ep.histogram.as_mut() {
                        // Values past the bound saturate instead of being lost.
                        h.saturating_record(s.latency_us.max(1));
                    }
                }
                if ep.recent.len() == RECENT {
                    ep.recent.pop_front();
                }
                ep.recent.push_back(Recent {
                    latency_us: s.latency_us,
                    ok,
                });
                if ok {
                    ep.last_ok_at_ms = Some(s.at_ms);
                    if s.exchange_ts_ms.is_some() {
                        ep.last_exchange_ts_ms = s.exchange_ts_ms;
                    }
                }
                ep.last = Some(s.clone());
                ep.stalled_since_ms = None;
            }
            Event::Stalled {
                id,
                at_ms,
                in_flight_ms,
            } => {
                self.last_event_ms = self.last_event_ms.max(*at_ms);
                if let Some(ep) = self.endpoint_mut(id) {
                    ep.stalled_since_ms = Some(at_ms - *in_flight_ms as i64);
                }
            }
            Event::LimiterWaited {
                id,
                at_ms,
                waited_ms,
                ..
            } => {
                self.last_event_ms = self.last_event_ms.max(*at_ms);
                if let Some(ep) = self.endpoint_mut(id) {
                    ep.limiter_waits += 1;
                    ep.limiter_waited_ms += waited_ms;
                    ep.last_wait_ms = *waited_ms;
                }
            }
            Event::LimiterFill { id, at_ms, tiers } => {
                if let Some(ep) = self.endpoint_mut(id) {
                    ep.limiter = tiers.clone();
                }
                self.hold(id, *at_ms, tiers);
            }
            Event::BreakerChanged {
                id,
                at_ms,
                transition,
            } => {
                self.last_event_ms = self.last_event_ms.max(*at_ms);
                if let Some(ep) = self.endpoint_mut(id) {
                    ep.breaker.state = transition.to;
                    ep.breaker.open_until_ms = transition.open_until_ms;
                    // A ban extending an open breaker (open → open) is not another trip.
                    if transition.to == BreakerState::Open && transition.from != BreakerState::Open
                    {
                        ep.breaker.trips += 1;
                    }
                    if transition.to == BreakerState::Closed {
                        ep.breaker.trips = 0;
                        ep.breaker.tripped_at_ms = None;
                    } else if ep.breaker.tripped_at_ms.is_none() {
                        ep.breaker.tripped_at_ms = Some(*at_ms);
                    }
                }
            }
            Event::BreakerRejected { id, at_ms, state } => {
                self.last_event_ms = self.last_event_ms.max(*at_ms);
                if let Some(ep) = self.endpoint_mut(id) {
                    ep.breaker_rejections += 1;
                    ep.breaker.state = *state;
                }
            }
            Event::PollInterval { id, interval_ms } => {
                if let Some(ep) = self.endpoint_mut(id) {
                    ep.interval_ms = *interval_ms;
                }
            }
            Event::ClockOffset {
                exchange,
                offset_ms,
            } => {
                self.clock_offsets.insert(exchange.clone(), *offset_ms);
            }
            Event::BackendHealth {
                at_ms,
                component,
                healthy,
                detail,
            } => {
                self.last_event_ms = self.last_event_ms.max(*at_ms);
                self.health
                    .insert(*component, (*healthy, detail.clone(), *at_ms));
            }
            Event::AlertChanged { alert } => {
                self.last_event_ms = self
                    .last_event_ms
                    .max(alert.state_at_ms.max(alert.last_seen_ms));
                let mut alert = alert.clone();
                // Triage arrives later, from another task: an update that does not carry it
                // keeps the last one of the same firing episode.
                if alert.triage.is_none() {
                    if let Some(old) = self.alerts.get(&alert.fingerprint) {
                        if old.first_seen_ms == alert.first_seen_ms {
                            alert.triage = old.triage.clone();
                        }
                    }
                }
                self.alerts.insert(alert.fingerprint.clone(), alert);
            }
            Event::AlertDelivery {
                fingerprint,
                sink,
                delivery,
            } => {
                if let Some(a) = self.alerts.get_mut(fingerprint) {
                    a.delivery.insert(sink.clone(), delivery.clone());
                }
            }
            Event::TriageUsage(totals) => self.triage = totals.clone(),
            // The engine folds it into the alert; its `AlertChanged` follows.
            Event::AlertTriaged { .. } => {}
            Event::Suppressions {
                at_ms,
                silences,
                acks,
                ..
            } => {
                self.last_event_ms = self.last_event_ms.max(*at_ms);
                self.silences = silences.clone();
                self.acks = acks.clone();
            }
        }
    }

    /// The live silences, each with the open alerts it silences now.
    fn silence_views(&self) -> Vec<SilenceView> {
        self.silences
            .iter()
            .map(|s| {
                let by = s.state_by();
                SilenceView {
                    covers: (self.alerts.values())
                        .filter(|a| a.state == AlertState::Silenced)
                        .filter(|a| a.state_by.as_deref() == Some(by.as_str()))
                        .count(),
                    silence: s.clone(),
                }
            })
            .collect()
    }

    /// The acknowledged incidents, each with its title and open symptoms.
    fn ack_views(&self) -> Vec<AckView> {
        self.acks
            .iter()
            .map(|a| {
                let members = || {
                    (self.alerts.values())
                        .filter(|x| x.state.is_open() && x.incident_or_own() == a.incident)
                };
                let root = a.incident.rsplit_once('#').map_or("", |(fp, _)| fp);
                AckView {
                    title: (self.alerts.get(root))
                        .or_else(|| members().next())
                        .map(|x| x.title.clone())
                        .unwrap_or_default(),
                    alerts: members().count(),
                    ack: a.clone(),
                }
            })
            .collect()
    }

    /// An immutable view for the UI and every other reader.
    pub fn snapshot(&self) -> Snapshot {
        let exchanges = self
            .exchanges
            .iter()
            .map(|(name, eps)| {
                let endpoints: Vec<EndpointView> =
                    eps.iter().map(|(n, s)| endpoint_view(n, s)).collect();
                let kind = eps
                    .first()
                    .map(|(_, s)| s.exchange_kind)
                    .unwrap_or(ExchangeKind::Generic);
                ExchangeView {
                    name: name.clone(),
                    kind,
                    healthy: endpoints.iter().all(|e| e.healthy()),
                    clock_offset_ms: self.clock_offsets.get(name).copied(),
                    endpoints,
                }
            })
            .collect();
        let mut alerts: Vec<Alert> = self.alerts.values().cloned().collect();
        // Open before resolved, then newest first.
        alerts.sort_by(|a, b| {
            (a.state == AlertState::Resolved)
                .cmp(&(b.state == AlertState::Resolved))
                .then(b.last_seen_ms.cmp(&a.last_seen_ms))
                .then(a.fingerprint.cmp(&b.fingerprint))
        });
        Snapshot {
            alerts,
            last_event_ms: self.last_event_ms,
            events: self.events,
            exchanges,
            health: self
                .health
                .iter()
                .map(|(c, (healthy, detail, at_ms))| HealthView {
                    component: *c,
                    healthy: *healthy,
                    detail: detail.clone(),
                    since_ms: *at_ms,
                })
                .collect(),
            triage: self.triage.clone(),
            silences: self.silence_views(),
            acks: self.ack_views(),
        }
    }
}

fn endpoint_view(name: &str, s: &EndpointState) -> EndpointView {
    let (p50, p99) = match &s.histogram {
        Some(h) if !h.is_empty() => (
            Some(h.value_at_quantile(0.50)),
            Some(h.value_at_quantile(0.99)),
        ),
        _ => (None, None),
    };
    let recent_failures = s.recent.iter().filter(|r| !r.ok).count();
    EndpointView {
        name: name.to_string(),
        kind: s.kind,
        url: s.url.clone(),
        interval_ms: s.interval_ms,
        calls: s.calls,
        failures: s.failures,
        error_rate: if s.recent.is_empty() {
            0.0
        } else {
            recent_failures as f64 / s.recent.len() as f64
        },
        p50_us: p50,
        p99_us: p99,
        recent_latency_us: s.recent.iter().map(|r| r.latency_us).collect(),
        last: s.last.clone(),
        last_ok_at_ms: s.last_ok_at_ms,
        last_exchange_ts_ms: s.last_exchange_ts_ms,
        breaker: s.breaker.clone(),
        breaker_rejections: s.breaker_rejections,
        limiter_waits: s.limiter_waits,
        limiter_waited_ms: s.limiter_waited_ms,
        last_wait_ms: s.last_wait_ms,
        limiter: s.limiter.clone(),
        by_outcome: s.by_outcome.clone(),
        stalled_since_ms: s.stalled_since_ms,
        held: s.held.clone(),
        stream: s.stream.as_ref().map(stream::StreamRow::view),
    }
}

/// What every view reads: immutable, cheap to share behind an `Arc`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    /// Time of the newest event applied, unix ms (the "recorded time" in replay).
    pub last_event_ms: i64,
    pub events: u64,
    pub exchanges: Vec<ExchangeView>,
    pub health: Vec<HealthView>,
    /// Open alerts first, newest first; resolved ones after.
    pub alerts: Vec<Alert>,
    /// Triage calls, tokens and cost so far.
    #[serde(default)]
    pub triage: crate::model::TriageTotals,
    /// The live silences, oldest first.
    #[serde(default)]
    pub silences: Vec<SilenceView>,
    /// The acknowledged open incidents, by incident id.
    #[serde(default)]
    pub acks: Vec<AckView>,
}

/// A live silence and how many open alerts it silences now (an alert two
/// silences match counts for the older one, whose id its `state_by` names).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SilenceView {
    pub silence: SilenceInfo,
    pub covers: usize,
}

/// An acknowledged incident: who and when, its title (its first symptom's)
/// and how many of its symptoms are open.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AckView {
    pub ack: AckInfo,
    pub title: String,
    pub alerts: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HealthView {
    pub component: Component,
    pub healthy: bool,
    pub detail: String,
    pub since_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExchangeView {
    pub name: String,
    pub kind: ExchangeKind,
    pub healthy: bool,
    pub clock_offset_ms: Option<i64>,
    pub endpoints: Vec<EndpointView>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EndpointView {
    pub name: String,
    pub kind: EndpointKind,
    pub url: String,
    pub interval_ms: u64,
    pub calls: u64,
    pub failures: u64,
    /// Share of failed polls among the recent ones.
    pub error_rate: f64,
    pub p50_us: Option<u64>,
    pub p99_us: Option<u64>,
    /// Oldest first.
    pub recent_latency_us: Vec<u64>,
    pub last: Option<Sample>,
    pub last_ok_at_ms: Option<i64>,
    pub last_exchange_ts_ms: Option<i64>,
    pub breaker: BreakerView,
    pub breaker_rejections: u64,
    pub limiter_waits: u64,
    pub limiter_waited_ms: u64,
    pub last_wait_ms: u64,
    pub limiter: Vec<TierFill>,
    pub by_outcome: BTreeMap<String, u64>,
    /// Set while a request that started then is still unanswered past its
    /// stall deadline (see `detect::hang`).
    #[serde(default)]
    pub stalled_since_ms: Option<i64>,
    /// The last hold the exchange ordered on a tier this endpoint draws on
    /// (Retry-After, a ban); over once `until_ms` has passed (see
    /// [`EndpointView::held_at`]).
    #[serde(default)]
    pub held: Option<Hold>,
    /// Set when the row is a WebSocket stream (a connection or a
    /// subscription) rather than a REST endpoint; its `kind` is then only
    /// the closest REST kind (`book` for a book subscription, else `ticker`).
    #[serde(default)]
    pub stream: Option<StreamView>,
}

/// The rate limiter holds an endpoint's polls because the exchange said so.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hold {
    /// Unix ms when the hold ends.
    pub until_ms: i64,
    /// The blocked tier: `endpoint` holds this endpoint, the others every
    /// endpoint of the exchange.
    pub tier: Tier,
    /// The answer that ordered it (`ticker: rate_limited`, `ticker:
    /// banned`), or the blocked tier (`exchange tier`) when that answer is
    /// not the endpoint's last.
    pub why: String,
}

impl ExchangeView {
    /// Its REST endpoints, without its stream rows.
    pub fn rest_endpoints(&self) -> impl Iterator<Item = &EndpointView> {
        self.endpoints.iter().filter(|e| e.stream.is_none())
    }

    /// Its WebSocket stream rows (connections and subscriptions).
    pub fn stream_rows(&self) -> impl Iterator<Item = &EndpointView> {
        self.endpoints.iter().filter(|e| e.stream.is_some())
    }
}

impl EndpointView {
    /// Healthy: the last poll succeeded and the breaker is closed. No poll yet counts as healthy.
    pub fn healthy(&self) -> bool {
        if let Some(stream) = &self.stream {
            return stream.healthy();
        }
        self.breaker.state == BreakerState::Closed
            && self.stalled_since_ms.is_none()
            && self.last.as_ref().is_none_or(|s| s.outcome.is_ok())
    }

    /// The hold in force at `now_ms`, if any.
    pub fn held_at(&self, now_ms: i64) -> Option<&Hold> {
        self.held.as_ref().filter(|h| h.until_ms > now_ms)
    }

    /// Milliseconds since the last good data, at `now_ms`.
    pub fn data_age_ms(&self, now_ms: i64) -> Option<i64> {
        self.last_ok_at_ms.map(|t| (now_ms - t).max(0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Transition;

    fn watching() -> Event {
        Event::Watching {
            id: EndpointId::new("bin", "book"),
            exchange_kind: ExchangeKind::Binance,
            kind: EndpointKind::Book,
            url: "http://x/".into(),
            interval_ms: 1000,
        }
    }

    fn sample(at_ms: i64, latency_us: u64, outcome: Outcome) -> Event {
        Event::Sample(Sample {
            id: EndpointId::new("bin", "book"),
            at_ms,
            latency_us,
            status: Some(200),
            outcome,
            summary: None,
            price: None,
            exchange_ts_ms: None,
            signal: None,
        })
    }

    #[test]
    fn a_hold_on_a_shared_tier_shows_on_every_endpoint_of_the_exchange() {
        let mut st = State::new();
        st.apply(&watching());
        st.apply(&Event::Watching {
            id: EndpointId::new("bin", "ticker"),
            exchange_kind: ExchangeKind::Binance,
            kind: EndpointKind::Ticker,
            url: "http://x/".into(),
            interval_ms: 1000,
        });
        st.apply(&sample(
            1_000,
            5,
            Outcome::RateLimited {
                retry_after_ms: Some(35_000),
                detail: "Too many requests".into(),
            },
        ));
        let fill = |tier, id: &str| Event::LimiterFill {
            id: EndpointId::new("bin", id),
            at_ms: 1_000,
            tiers: vec![TierFill {
                tier,
                tokens: 0.0,
                capacity: 10.0,
                blocked_for_ms: Some(35_000),
            }],
        };
        st.apply(&fill(Tier::Exchange, "book"));
        let snap = st.snapshot();
        for ep in &snap.exchanges[0].endpoints {
            let hold = ep
                .held_at(2_000)
                .unwrap_or_else(|| panic!("{} not held", ep.name));
            assert_eq!(hold.until_ms, 36_000);
            assert_eq!(hold.why, "book: rate_limited");
            assert!(ep.held_at(36_000).is_none());
        }
        // The endpoint's own tier holds that endpoint only.
        let mut st2 = State::new();
        st2.apply(&watching());
        st2.apply(&Event::Watching {
            id: EndpointId::new("bin", "ticker"),
            exchange_kind: ExchangeKind::Binance,
            kind: EndpointKind::Ticker,
            url: "http://x/".into(),
            interval_ms: 1000,
        });
        st2.apply(&fill(Tier::Endpoint, "book"));
        let snap = st2.snapshot();
        let held: Vec<&str> = snap.exchanges[0]
            .endpoints
            .iter()
            .filter(|e| e.held_at(2_000).is_some())
            .map(|e| e.name.as_str())
            .collect();
        assert_eq!(held, ["book"]);
    }

    #[test]
    fn samples_update_percentiles_error_rate_and_age() {
        let mut st = State::new();
        st.apply(&watching());
        for i in 0..9 {
            st.apply(&sample(1_000 + i, 10_000, Outcome::Ok));
        }
        st.apply(&sample(2_000, 900_000, Outcome::Timeout));
        let snap = st.snapshot();
        let ep = &snap.exchanges[0].endpoints[0];
        assert_eq!(ep.calls, 10);
        assert_eq!(ep.failures, 1);
        assert!((ep.error_rate - 0.1).abs() < 1e-9);
        // The timeout is not a latency figure.
        assert!(ep.p99_us.is_some_and(|p| p < 11_000), "{:?}", ep.p99_us);
        assert_eq!(ep.last_ok_at_ms, Some(1_008));
        assert_eq!(ep.data_age_ms(3_008), Some(2_000));
        assert!(!snap.exchanges[0].healthy);
        assert_eq!(snap.last_event_ms, 2_000);
    }

    #[test]
    fn recent_ring_is_bounded() {
        let mut st = State::new();
        st.apply(&watching());
        for i in 0..(RECENT as i64 + 50) {
            st.apply(&sample(i, 5, Outcome::Ok));
        }
        let snap = st.snapshot();
        assert_eq!(
            snap.exchanges[0].endpoints[0].recent_latency_us.len(),
            RECENT
        );
    }

    #[test]
    fn breaker_transitions_show_in_the_snapshot() {
        let mut st = State::new();
        st.apply(&watching());
        st.apply(&Event::BreakerChanged {
            id: EndpointId::new("bin", "book"),
            at_ms: 5,
            transition: Transition {
                from: BreakerState::Closed,
                to: BreakerState::Open,
                reason: "5 consecutive failures".into(),
                open_until_ms: Some(10_005),
            },
        });
        let snap = st.snapshot();
        let ep = &snap.exchanges[0].endpoints[0];
        assert_eq!(ep.breaker.state, BreakerState::Open);
        assert_eq!(ep.breaker.open_until_ms, Some(10_005));
        assert!(!ep.healthy());
    }

    #[test]
    fn events_for_unknown_endpoints_are_ignored() {
        let mut st = State::new();
        st.apply(&sample(1, 1, Outcome::Ok));
        assert!(st.snapshot().exchanges.is_empty());
    }
}
