//! Detectors: plain structs fed [`Event`]s with the time passed in, returning
//! [`Finding`]s (a condition fired, still holds, or cleared). No I/O, no clock.
//!
//! Every detector has a warm-up (a minimum of samples before it may fire),
//! separate fire and clear conditions (hysteresis) and a `for` duration the
//! condition must hold before it counts, so a signal that oscillates around a
//! threshold produces one alert, not a flapping stream.
//!
//! [`Detectors`] runs all of them for every endpoint; the alert engine owns one.

pub mod backend;
pub mod breaker;
pub mod cross;
pub mod error_rate;
pub mod hang;
pub mod latency;
pub mod limits;
pub mod payload;
pub mod staleness;
pub mod stream;

use crate::model::{Alert, AlertKind, Severity};
use crate::model::{BreakerState, EndpointId, Event, TierFill};
use crate::problems::Problems;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};

/// A condition that holds now (emitted on every evaluation while it does).
#[derive(Debug, Clone, PartialEq)]
pub struct Firing {
    pub exchange: String,
    /// `None` for exchange-wide conditions.
    pub endpoint: Option<String>,
    pub kind: AlertKind,
    pub severity: Severity,
    pub title: String,
    pub description: String,
    pub metrics: BTreeMap<String, f64>,
}

/// What a detector says about one condition.
#[derive(Debug, Clone, PartialEq)]
pub enum Finding {
    Firing(Firing),
    /// The clear condition held for long enough.
    Cleared {
        exchange: String,
        endpoint: Option<String>,
        kind: AlertKind,
    },
}

impl Finding {
    pub fn fingerprint(&self) -> String {
        match self {
            Finding::Firing(f) => {
                Alert::fingerprint_of(&f.exchange, f.endpoint.as_deref(), &f.kind.name())
            }
            Finding::Cleared {
                exchange,
                endpoint,
                kind,
            } => Alert::fingerprint_of(exchange, endpoint.as_deref(), &kind.name()),
        }
    }

    pub fn kind(&self) -> &AlertKind {
        match self {
            Finding::Firing(f) => &f.kind,
            Finding::Cleared { kind, .. } => kind,
        }
    }

    pub fn is_firing(&self) -> bool {
        matches!(self, Finding::Firing(_))
    }
}

/// One step of a [`Gate`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Not firing.
    Quiet,
    /// Just started firing.
    Fired,
    /// Still firing.
    Firing,
    /// Just cleared.
    Cleared,
}

impl Step {
    pub fn is_firing(self) -> bool {
        matches!(self, Step::Fired | Step::Firing)
    }
}

/// Hysteresis with `for` durations: fires once `bad` has held for
/// `fire_for_ms`, clears once `good` has held for `clear_for_ms`. Between the
/// two thresholds (neither bad nor good) it keeps its state, which is what
/// stops flapping.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Gate {
    firing: bool,
    since_ms: Option<i64>,
}

impl Gate {
    pub fn step(
        &mut self,
        bad: bool,
        good: bool,
        now_ms: i64,
        fire_for_ms: i64,
        clear_for_ms: i64,
    ) -> Step {
        if self.firing {
            if !good {
                self.since_ms = None;
                return Step::Firing;
            }
            let since = *self.since_ms.get_or_insert(now_ms);
            if now_ms - since >= clear_for_ms {
                self.firing = false;
                self.since_ms = None;
                Step::Cleared
            } else {
                Step::Firing
            }
        } else {
            if !bad {
                self.since_ms = None;
                return Step::Quiet;
            }
            let since = *self.since_ms.get_or_insert(now_ms);
            if now_ms - since >= fire_for_ms {
                self.firing = true;
                self.since_ms = None;
                Step::Fired
            } else {
                Step::Quiet
            }
        }
    }

    pub fn is_firing(&self) -> bool {
        self.firing
    }

    /// Firing, but the condition has been good since the last step and the
    /// gate is waiting out `clear_for`: the alert is about to clear.
    pub fn is_clearing(&self) -> bool {
        self.firing && self.since_ms.is_some()
    }

    /// Start out firing: an alert restored from the journal after a
    /// restart is handed back to its gate, which clears it once the clear
    /// condition holds for its duration, like a live one.
    pub fn assume_firing(&mut self) {
        self.firing = true;
        self.since_ms = None;
    }

    /// Forget everything (used when an endpoint's history no longer applies).
    pub fn reset(&mut self) {
        *self = Gate::default();
    }
}

/// Settings of every detector; each has good defaults.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DetectSettings {
    pub latency: latency::LatencySettings,
    pub error_rate: error_rate::ErrorRateSettings,
    pub hang: hang::HangSettings,
    pub staleness: staleness::StalenessSettings,
    pub payload: payload::PayloadSettings,
    pub limits: limits::LimitSettings,
    pub breaker: breaker::BreakerAlertSettings,
    /// `[alerts.detect.backend]`: exwatch's own Redis and journal.
    pub backend: backend::BackendSettings,
    /// `[alerts.detect.stream]`: WebSocket stream alerts.
    pub stream: stream::StreamAlertSettings,
    /// `[alerts.detect.cross]`: streamed prices against REST and other exchanges.
    pub cross: cross::CrossSettings,
    /// Poll pacing (`alerts.detect.adaptive`): owned by [`crate::pacing`],
    /// configured here for compatibility with existing config files.
    pub adaptive: crate::pacing::AdaptiveSettings,
}

impl DetectSettings {
    pub fn validate(&self, at: &str, p: &mut Problems) {
        self.latency.validate(&format!("{at}.latency"), p);
        self.error_rate.validate(&format!("{at}.error_rate"), p);
        self.hang.validate(&format!("{at}.hang"), p);
        self.staleness.validate(&format!("{at}.staleness"), p);
        self.payload.validate(&format!("{at}.payload"), p);
        self.limits.validate(&format!("{at}.limits"), p);
        self.breaker.validate(&format!("{at}.breaker"), p);
        self.backend.validate(&format!("{at}.backend"), p);
        self.stream.validate(&format!("{at}.stream"), p);
        self.cross.validate(&format!("{at}.cross"), p);
        self.adaptive.validate(&format!("{at}.adaptive"), p);
    }
}

/// How an endpoint looks to the detectors, for views.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Health {
    Up,
    /// Slow but answering.
    Degraded,
    Down,
}

#[derive(Debug, Clone)]
struct EndpointDetectors {
    latency: latency::LatencyDetector,
    errors: error_rate::ErrorRateDetector,
    hang: hang::HangDetector,
    stale: staleness::StalenessDetector,
    payload: payload::PayloadDetector,
    limits: limits::LimitDetector,
    breaker: breaker::BreakerDetector,
}

impl EndpointDetectors {
    /// Hand an open alert of `kind` back to the detector that raises it;
    /// false if none of this endpoint's detectors raises that kind.
    fn assume_firing(&mut self, kind: &AlertKind) -> bool {
        match kind {
            AlertKind::Latency => self.latency.assume_firing(),
            AlertKind::ErrorRate => self.errors.assume_firing(),
            AlertKind::Hung => self.hang.assume_firing(),
            AlertKind::NoData | AlertKind::Stale | AlertKind::Frozen => {
                self.stale.assume_firing(kind)
            }
            AlertKind::BreakerOpen => self.breaker.assume_firing(),
            AlertKind::RateLimit | AlertKind::Ban => self.limits.assume_firing(kind),
            AlertKind::Payload(name) => self.payload.assume_firing(name),
            // Exchange-wide, exwatch's own, or a stream row's (see `streams`).
            AlertKind::Outage
            | AlertKind::Backend
            | AlertKind::StreamZombie
            | AlertKind::StreamDead
            | AlertKind::StreamDown
            | AlertKind::StreamPlanned
            | AlertKind::StreamRefused
            | AlertKind::ReconnectStorm
            | AlertKind::BookInvalid
            | AlertKind::BookCrossed
            | AlertKind::StreamDiverges
            | AlertKind::PriceOutlier => false,
        }
    }
}

/// Every detector for every endpoint seen, plus the exchange-wide outage detector.
#[derive(Debug, Clone)]
pub struct Detectors {
    settings: DetectSettings,
    endpoints: HashMap<EndpointId, EndpointDetectors>,
    outages: breaker::OutageDetector,
    backends: backend::BackendDetector,
    /// One detector per stream row (connection or subscription).
    streams: HashMap<EndpointId, stream::StreamDetector>,
    /// Prices compared across sources and exchanges.
    cross: cross::CrossDetector,
    /// Restored alerts of endpoints not watched yet: handed to their
    /// detectors when the endpoint appears (a restart restores before the
    /// workers announce what they watch).
    pending: HashMap<EndpointId, Vec<AlertKind>>,
}

impl Detectors {
    pub fn new(settings: DetectSettings) -> Self {
        Detectors {
            outages: breaker::OutageDetector::new(settings.breaker.clone()),
            backends: backend::BackendDetector::new(settings.backend.clone()),
            cross: cross::CrossDetector::new(settings.cross.clone()),
            settings,
            endpoints: HashMap::new(),
            streams: HashMap::new(),
            pending: HashMap::new(),
        }
    }

    pub fn settings(&self) -> &DetectSettings {
        &self.settings
    }

    fn endpoint(&mut self, id: &EndpointId, now_ms: i64) -> &mut EndpointDetectors {
        if !self.endpoints.contains_key(id)
            && let Some(kinds) = self.pending.remove(id)
        {
            let d = self.create(id, now_ms);
            for kind in &kinds {
                d.assume_firing(kind);
            }
        }
        self.create(id, now_ms)
    }

    fn create(&mut self, id: &EndpointId, now_ms: i64) -> &mut EndpointDetectors {
        let s = &self.settings;
        let (exchange, endpoint) = (id.exchange.as_str(), id.endpoint.as_str());
        self.endpoints
            .entry(id.clone())
            .or_insert_with(|| EndpointDetectors {
                latency: latency::LatencyDetector::new(exchange, endpoint, s.latency.clone()),
                errors: error_rate::ErrorRateDetector::new(
                    exchange,
                    endpoint,
                    s.error_rate.clone(),
                ),
                hang: hang::HangDetector::new(exchange, endpoint, s.hang.clone()),
                stale: staleness::StalenessDetector::new(
                    exchange,
                    endpoint,
                    s.staleness.clone(),
                    now_ms,
                ),
                payload: payload::PayloadDetector::new(exchange, endpoint, s.payload.clone()),
                limits: limits::LimitDetector::new(exchange, endpoint, s.limits.clone()),
                breaker: breaker::BreakerDetector::new(exchange, endpoint, s.breaker.clone()),
            })
    }

    /// Hand the open alerts restored from the journal after a restart back
    /// to the detectors that raise them, so fresh data clears them after
    /// the kind's clear condition (or keeps them firing), exactly as if the
    /// process had not restarted. An endpoint not watched yet gets them
    /// when it is. Returns the fingerprints no detector can take (a kind
    /// unknown to this version): the engine resolves those after
    /// `resolve_after` as before.
    pub fn restore(&mut self, alerts: &[Alert]) -> Vec<String> {
        let mut orphans = Vec::new();
        for a in alerts.iter().filter(|a| a.state.is_open()) {
            let took = match (&a.kind, a.endpoint.as_deref()) {
                (AlertKind::Outage, _) => self.outages.assume_firing(&a.exchange),
                (AlertKind::Backend, Some(c)) => self.backends.assume_firing(c),
                (AlertKind::Payload(name), Some(_)) if !payload::knows(name) => false,
                (kind, Some(ep)) if cross::raises(kind) => {
                    self.cross.assume_firing(kind, &a.exchange, ep)
                }
                (kind, Some(ep)) if stream::raises(kind) => {
                    let id = EndpointId::new(&a.exchange, ep);
                    self.stream_row(&id).assume_firing(kind)
                }
                (kind, Some(ep)) => {
                    let id = EndpointId::new(&a.exchange, ep);
                    match self.endpoints.get_mut(&id) {
                        Some(d) => d.assume_firing(kind),
                        None => {
                            self.pending.entry(id).or_default().push(kind.clone());
                            true
                        }
                    }
                }
                (_, None) => false,
            };
            if !took {
                orphans.push(a.fingerprint.clone());
            }
        }
        orphans
    }

    /// Feed one event; returns what changed or still holds.
    pub fn on_event(&mut self, ev: &Event, now_ms: i64) -> Vec<Finding> {
        let mut out = Vec::new();
        match ev {
            Event::Watching {
                id, interval_ms, ..
            } => {
                let d = self.endpoint(id, now_ms);
                d.stale.set_interval(*interval_ms);
                self.outages.watch(&id.exchange, &id.endpoint);
            }
            Event::PollInterval { id, interval_ms } => {
                let d = self.endpoint(id, now_ms);
                d.stale.set_interval(*interval_ms);
            }
            Event::Sample(s) => {
                let d = self.endpoint(&s.id, now_ms);
                out.extend(d.latency.on_sample(s));
                out.extend(d.errors.on_sample(s));
                out.extend(d.hang.on_sample(s));
                out.extend(d.stale.on_sample(s));
                out.extend(d.payload.on_sample(s));
                out.extend(d.breaker.on_sample(s));
                out.extend(d.limits.on_sample(s));
                out.extend(self.outages.on_sample(s));
                out.extend(self.cross.on_sample(s));
            }
            Event::Stalled {
                id, in_flight_ms, ..
            } => {
                let d = self.endpoint(id, now_ms);
                out.extend(d.hang.on_stalled(*in_flight_ms));
            }
            Event::LimiterWaited {
                id,
                at_ms,
                waited_ms,
                tier,
            } => {
                let d = self.endpoint(id, now_ms);
                out.extend(d.limits.on_wait(*at_ms, *waited_ms, *tier));
            }
            Event::BreakerChanged {
                id,
                at_ms,
                transition,
            } => {
                let d = self.endpoint(id, now_ms);
                let forced = transition.to == BreakerState::Open && transition.reason.is_forced();
                d.stale.set_paused(forced, *at_ms);
                out.extend(d.breaker.on_transition(*at_ms, transition));
                out.extend(self.outages.on_transition(
                    &id.exchange,
                    &id.endpoint,
                    transition,
                    *at_ms,
                ));
            }
            Event::BreakerRejected { id, at_ms, state } => {
                let d = self.endpoint(id, now_ms);
                out.extend(d.breaker.on_rejected(*at_ms));
                out.extend(d.errors.on_rejected(*at_ms));
                out.extend(
                    self.outages
                        .on_breaker(&id.exchange, &id.endpoint, *state, *at_ms),
                );
            }
            Event::LimiterFill { id, at_ms, tiers } => self.on_hold(id, *at_ms, tiers),
            Event::BackendHealth {
                at_ms,
                component,
                healthy,
                detail,
            } => out.extend(
                self.backends
                    .on_health(*component, *healthy, detail, *at_ms),
            ),
            Event::StreamWatching { id, .. } => {
                self.stream_row(id);
            }
            Event::StreamStatus(st) => {
                self.cross.on_status(st);
                out.extend(self.stream_row(&st.id).on_status(st));
            }
            Event::ClockOffset { .. }
            | Event::StreamNote(_)
            | Event::AlertChanged { .. }
            | Event::AlertDelivery { .. }
            | Event::AlertTriaged { .. }
            | Event::Suppressions { .. }
            | Event::TriageUsage(_) => {}
        }
        out
    }

    /// The detector of a stream row, created on first sight (a restored
    /// alert may come before the row's first status).
    fn stream_row(&mut self, id: &EndpointId) -> &mut stream::StreamDetector {
        let s = &self.settings.stream;
        self.streams
            .entry(id.clone())
            .or_insert_with(|| stream::StreamDetector::new(&id.exchange, &id.endpoint, s.clone()))
    }

    /// A tier the exchange told us to hold off (Retry-After, a ban) holds
    /// every endpoint that draws on it: the endpoint's own tier holds only
    /// it, a shared tier (exchange, account, IP) every endpoint of the
    /// exchange. Held endpoints are silent on purpose, so `no_data` waits.
    fn on_hold(&mut self, id: &EndpointId, at_ms: i64, tiers: &[TierFill]) {
        for fill in tiers {
            let Some(ms) = fill.blocked_for_ms else {
                continue;
            };
            let until = at_ms.saturating_add(i64::try_from(ms).unwrap_or(i64::MAX));
            for (other, d) in self.endpoints.iter_mut() {
                if fill.tier.holds(id, other) {
                    d.stale.hold_until(until);
                }
            }
        }
    }

    /// Time-driven conditions (no data for too long).
    pub fn tick(&mut self, now_ms: i64) -> Vec<Finding> {
        let mut out = self.backends.tick(now_ms);
        out.extend(self.cross.tick(now_ms));
        for d in self.endpoints.values_mut() {
            out.extend(d.stale.tick(now_ms));
            out.extend(d.limits.tick(now_ms));
        }
        out
    }

    /// How an endpoint looks right now, for views: down beats degraded.
    pub fn health(&self, id: &EndpointId) -> Health {
        if let Some(d) = self.streams.get(id) {
            return if d.is_firing() {
                Health::Down
            } else {
                Health::Up
            };
        }
        match self.endpoints.get(id) {
            None => Health::Up,
            Some(d)
                if d.errors.is_firing()
                    || d.hang.is_firing()
                    || d.breaker.is_firing()
                    || d.stale.is_firing() =>
            {
                Health::Down
            }
            Some(d) if d.latency.is_firing() => Health::Degraded,
            Some(_) => Health::Up,
        }
    }
}

#[cfg(test)]
pub(crate) mod testutil {
    use crate::model::{EndpointId, Outcome, Sample};

    pub fn sample(at_ms: i64, latency_ms: u64, outcome: Outcome) -> Sample {
        Sample {
            id: EndpointId::new("bin", "ticker"),
            at_ms,
            latency_us: latency_ms * 1000,
            status: Some(200),
            outcome,
            summary: None,
            price: None,
            exchange_ts_ms: None,
            signal: None,
        }
    }

    pub fn fired<K>(fs: &[super::Finding], kind: K) -> bool
    where
        crate::model::AlertKind: PartialEq<K>,
    {
        fs.iter()
            .any(|f| matches!(f, super::Finding::Firing(x) if x.kind == kind))
    }

    pub fn cleared<K>(fs: &[super::Finding], kind: K) -> bool
    where
        crate::model::AlertKind: PartialEq<K>,
    {
        fs.iter()
            .any(|f| matches!(f, super::Finding::Cleared { kind: k, .. } if *k == kind))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gate_needs_the_for_duration_and_holds_between_thresholds() {
        let mut g = Gate::default();
        assert_eq!(g.step(true, false, 0, 1000, 1000), Step::Quiet);
        assert_eq!(g.step(true, false, 999, 1000, 1000), Step::Quiet);
        assert_eq!(g.step(true, false, 1000, 1000, 1000), Step::Fired);
        // Between thresholds: keeps firing.
        assert_eq!(g.step(false, false, 5000, 1000, 1000), Step::Firing);
        assert_eq!(g.step(false, true, 6000, 1000, 1000), Step::Firing);
        // The good streak was broken: starts over.
        assert_eq!(g.step(false, false, 6500, 1000, 1000), Step::Firing);
        assert_eq!(g.step(false, true, 7000, 1000, 1000), Step::Firing);
        assert_eq!(g.step(false, true, 8000, 1000, 1000), Step::Cleared);
        assert_eq!(g.step(false, true, 9000, 1000, 1000), Step::Quiet);
    }

    #[test]
    fn a_bad_blip_shorter_than_for_does_not_fire() {
        let mut g = Gate::default();
        for t in 0..100 {
            // bad for 500 ms out of every second
            let bad = t % 2 == 0;
            let s = g.step(bad, !bad, t * 500, 1000, 0);
            assert_eq!(s, Step::Quiet, "at {t}");
        }
    }
}
