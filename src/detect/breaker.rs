//! Breaker open (`breaker_open`, per endpoint) and exchange-wide outage
//! (`outage`, endpoint `*`): every watched endpoint of an exchange is down
//! (breaker not closed, or several hard failures in a row). The outage alert
//! is what the engine uses to inhibit that exchange's latency and staleness
//! alerts, so one outage pages once.

use super::{Finding, Firing, Gate, Step};
use crate::model::Sample;
use crate::model::{AlertKind, Severity};
use crate::model::{BreakerState, OutcomeClass, Transition};
use crate::problems::Problems;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub const BREAKER_OPEN: AlertKind = AlertKind::BreakerOpen;
pub const OUTAGE: AlertKind = AlertKind::Outage;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BreakerAlertSettings {
    pub enabled: bool,
    /// An exchange with fewer watched endpoints never raises `outage`
    /// (with one endpoint, its own alerts already say it all).
    pub outage_min_endpoints: usize,
    /// Hard failures in a row that make an endpoint count as down.
    pub down_after_failures: u32,
}

impl Default for BreakerAlertSettings {
    fn default() -> Self {
        BreakerAlertSettings {
            enabled: true,
            outage_min_endpoints: 2,
            down_after_failures: 2,
        }
    }
}

impl BreakerAlertSettings {
    pub fn validate(&self, at: &str, p: &mut Problems) {
        crate::problems::check_count(
            p,
            &format!("{at}.outage_min_endpoints"),
            self.outage_min_endpoints as u64,
            1,
            10_000,
        );
        crate::problems::check_count(
            p,
            &format!("{at}.down_after_failures"),
            self.down_after_failures.into(),
            1,
            100_000,
        );
    }
}

#[derive(Debug, Clone)]
pub struct BreakerDetector {
    exchange: String,
    endpoint: String,
    s: BreakerAlertSettings,
    state: BreakerState,
    reason: String,
    open_until_ms: Option<i64>,
    gate: Gate,
    /// A `breaker_open` alert restored after a restart, while the breaker
    /// (new with the process) is closed: the first good poll clears it.
    restored: bool,
}

impl BreakerDetector {
    pub fn new(exchange: &str, endpoint: &str, s: BreakerAlertSettings) -> Self {
        BreakerDetector {
            exchange: exchange.into(),
            endpoint: endpoint.into(),
            s,
            state: BreakerState::Closed,
            reason: String::new(),
            open_until_ms: None,
            gate: Gate::default(),
            restored: false,
        }
    }

    /// Take back a `breaker_open` alert restored after a restart; always true.
    pub fn assume_firing(&mut self) -> bool {
        self.gate.assume_firing();
        self.restored = true;
        true
    }

    /// A finished poll: a restored alert clears with the first good answer
    /// while the breaker is closed (a poll went through, so it serves).
    pub fn on_sample(&mut self, smp: &crate::model::Sample) -> Option<Finding> {
        if !self.restored || !self.s.enabled {
            return None;
        }
        if self.state != BreakerState::Closed {
            self.restored = false;
            return None;
        }
        if !smp.outcome.is_ok() {
            return None;
        }
        self.restored = false;
        let step = self.gate.step(false, true, smp.at_ms, 0, 0);
        self.finding(step, smp.at_ms)
    }

    pub fn is_firing(&self) -> bool {
        self.gate.is_firing()
    }

    pub fn on_transition(&mut self, at_ms: i64, t: &Transition) -> Option<Finding> {
        if !self.s.enabled {
            return None;
        }
        self.state = t.to;
        self.reason = t.reason.to_string();
        self.open_until_ms = t.open_until_ms;
        // An operator's force-open is an action, not a fault: journaled and
        // shown with the breaker, never a page (an alert already firing for
        // a real fault stays).
        let forced = t.reason.is_forced();
        // Half-open is still not serving: only a closed breaker clears.
        let step = self.gate.step(
            t.to == BreakerState::Open && !forced,
            t.to == BreakerState::Closed,
            at_ms,
            0,
            0,
        );
        self.finding(step, at_ms)
    }

    /// A poll skipped by the open breaker: report that it still holds.
    pub fn on_rejected(&mut self, at_ms: i64) -> Option<Finding> {
        if !self.s.enabled || !self.gate.is_firing() {
            return None;
        }
        self.finding(Step::Firing, at_ms)
    }

    fn finding(&self, step: Step, now_ms: i64) -> Option<Finding> {
        match step {
            Step::Quiet => None,
            Step::Cleared => Some(Finding::Cleared {
                exchange: self.exchange.clone(),
                endpoint: Some(self.endpoint.clone()),
                kind: BREAKER_OPEN,
            }),
            Step::Fired | Step::Firing => {
                let mut metrics = BTreeMap::new();
                if let Some(u) = self.open_until_ms {
                    metrics.insert("open_for_ms".to_string(), (u - now_ms).max(0) as f64);
                }
                Some(Finding::Firing(Firing {
                    exchange: self.exchange.clone(),
                    endpoint: Some(self.endpoint.clone()),
                    kind: BREAKER_OPEN,
                    // A consequence: the failures that opened it are rated
                    // by their own alert (error_rate, payload:*), in the
                    // same incident; a paused endpoint alone asks for a look.
                    severity: Severity::Warning,
                    title: format!(
                        "{}/{}: circuit breaker {}",
                        self.exchange,
                        self.endpoint,
                        self.state.as_str()
                    ),
                    description: format!("Polling paused by the breaker: {}.", self.reason),
                    metrics,
                }))
            }
        }
    }
}

#[derive(Debug, Clone, Default)]
struct Ep {
    breaker: Option<BreakerState>,
    /// Open because an operator forced it: not down.
    forced: bool,
    fail_streak: u32,
    last: String,
}

/// Exchange-wide outage over all watched endpoints of each exchange.
#[derive(Debug, Clone)]
pub struct OutageDetector {
    s: BreakerAlertSettings,
    exchanges: BTreeMap<String, (BTreeMap<String, Ep>, Gate)>,
}

fn hard_failure(class: OutcomeClass) -> bool {
    matches!(
        class,
        OutcomeClass::ServerError
            | OutcomeClass::Timeout
            | OutcomeClass::Connect
            | OutcomeClass::Banned
    )
}

impl OutageDetector {
    pub fn new(s: BreakerAlertSettings) -> Self {
        OutageDetector {
            s,
            exchanges: BTreeMap::new(),
        }
    }

    /// Take back an `outage` alert restored after a restart: it clears once
    /// an endpoint of the exchange is up again; always true.
    pub fn assume_firing(&mut self, exchange: &str) -> bool {
        self.exchanges
            .entry(exchange.into())
            .or_default()
            .1
            .assume_firing();
        true
    }

    pub fn watch(&mut self, exchange: &str, endpoint: &str) {
        self.exchanges
            .entry(exchange.into())
            .or_default()
            .0
            .entry(endpoint.into())
            .or_default();
    }

    pub fn on_sample(&mut self, smp: &Sample) -> Option<Finding> {
        if !self.s.enabled {
            return None;
        }
        let ex = self.exchanges.entry(smp.id.exchange.clone()).or_default();
        let ep = ex.0.entry(smp.id.endpoint.clone()).or_default();
        if hard_failure(smp.outcome.class()) {
            ep.fail_streak += 1;
        } else {
            ep.fail_streak = 0;
        }
        ep.last = smp.outcome.label();
        self.eval(&smp.id.exchange.clone(), smp.at_ms)
    }

    /// A breaker transition: its state, and whether an operator forced it open.
    pub fn on_transition(
        &mut self,
        exchange: &str,
        endpoint: &str,
        t: &Transition,
        at_ms: i64,
    ) -> Option<Finding> {
        if let Some((eps, _)) = self.exchanges.get_mut(exchange) {
            if let Some(ep) = eps.get_mut(endpoint) {
                ep.forced = t.to == BreakerState::Open && t.reason.is_forced();
            }
        }
        self.on_breaker(exchange, endpoint, t.to, at_ms)
    }

    pub fn on_breaker(
        &mut self,
        exchange: &str,
        endpoint: &str,
        state: BreakerState,
        at_ms: i64,
    ) -> Option<Finding> {
        if !self.s.enabled {
            return None;
        }
        let ex = self.exchanges.entry(exchange.into()).or_default();
        ex.0.entry(endpoint.into()).or_default().breaker = Some(state);
        self.eval(exchange, at_ms)
    }

    fn eval(&mut self, exchange: &str, now_ms: i64) -> Option<Finding> {
        let min = self.s.outage_min_endpoints;
        let after = self.s.down_after_failures;
        let (eps, gate) = self.exchanges.get_mut(exchange)?;
        let is_down = |e: &Ep| {
            (!e.forced && e.breaker.is_some_and(|b| b != BreakerState::Closed))
                || e.fail_streak >= after
        };
        let down = eps.values().filter(|e| is_down(e)).count();
        let all_down = eps.len() >= min && down == eps.len();
        let step = gate.step(all_down, down < eps.len(), now_ms, 0, 0);
        match step {
            Step::Quiet => None,
            Step::Cleared => Some(Finding::Cleared {
                exchange: exchange.into(),
                endpoint: None,
                kind: OUTAGE,
            }),
            Step::Fired | Step::Firing => {
                let detail: Vec<String> = eps
                    .iter()
                    .map(|(n, e)| match e.breaker {
                        Some(b) if b != BreakerState::Closed => {
                            format!("{n}: breaker {}", b.as_str())
                        }
                        _ => format!("{n}: {}", e.last),
                    })
                    .collect();
                Some(Finding::Firing(Firing {
                    exchange: exchange.into(),
                    endpoint: None,
                    kind: OUTAGE,
                    severity: Severity::Emergency,
                    title: format!(
                        "{exchange}: exchange-wide outage ({down} of {} endpoints down)",
                        eps.len()
                    ),
                    description: format!(
                        "Every watched endpoint is failing: {}.",
                        detail.join("; ")
                    ),
                    metrics: BTreeMap::from([
                        ("endpoints_down".to_string(), down as f64),
                        ("endpoints".to_string(), eps.len() as f64),
                    ]),
                }))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::testutil::{cleared, fired, sample};
    use crate::model::{Outcome, TripCause};

    fn tr(from: BreakerState, to: BreakerState) -> Transition {
        Transition {
            from,
            to,
            reason: "5 failures".into(),
            open_until_ms: Some(30_000),
        }
    }

    #[test]
    fn open_fires_half_open_holds_closed_clears() {
        let mut d = BreakerDetector::new("bin", "ticker", BreakerAlertSettings::default());
        let f = d.on_transition(1_000, &tr(BreakerState::Closed, BreakerState::Open));
        assert!(fired(&f.into_iter().collect::<Vec<_>>(), BREAKER_OPEN));
        assert!(d.on_rejected(2_000).is_some());
        let f = d.on_transition(30_000, &tr(BreakerState::Open, BreakerState::HalfOpen));
        assert!(f.is_some_and(|f| f.is_firing()));
        let f = d.on_transition(31_000, &tr(BreakerState::HalfOpen, BreakerState::Closed));
        assert!(cleared(&f.into_iter().collect::<Vec<_>>(), BREAKER_OPEN));
        assert!(d.on_rejected(32_000).is_none());
    }

    fn on(ep: &str, at: i64, o: Outcome) -> Sample {
        let mut s = sample(at, 5, o);
        s.id.endpoint = ep.into();
        s
    }

    #[test]
    fn outage_needs_every_endpoint_down() {
        let mut d = OutageDetector::new(BreakerAlertSettings::default());
        d.watch("bin", "ticker");
        d.watch("bin", "book");
        for t in 0..5 {
            assert!(d.on_sample(&on("ticker", t, Outcome::Timeout)).is_none());
            assert!(d.on_sample(&on("book", t, Outcome::Ok)).is_none());
        }
        let f = d.on_breaker("bin", "book", BreakerState::Open, 10);
        let f: Vec<_> = f.into_iter().collect();
        assert!(fired(&f, OUTAGE));
        let Finding::Firing(x) = &f[0] else { panic!() };
        assert_eq!(x.endpoint, None);
        assert_eq!(x.severity, Severity::Emergency);
        // One endpoint answers again: the outage is over.
        let f: Vec<_> = d
            .on_sample(&on("ticker", 20, Outcome::Ok))
            .into_iter()
            .collect();
        assert!(cleared(&f, OUTAGE));
    }

    fn forced(from: BreakerState) -> Transition {
        Transition {
            from,
            to: BreakerState::Open,
            reason: TripCause::ForcedOpen,
            open_until_ms: None,
        }
    }

    #[test]
    fn an_operator_forcing_a_breaker_open_pages_nobody() {
        let mut d = BreakerDetector::new("bin", "ticker", BreakerAlertSettings::default());
        assert!(
            d.on_transition(1_000, &forced(BreakerState::Closed))
                .is_none()
        );
        assert!(d.on_rejected(2_000).is_none());
        assert!(!d.is_firing());
        // Journals written before causes were typed carry the text.
        let old = Transition {
            reason: TripCause::Other("forced open by operator".into()),
            ..forced(BreakerState::Closed)
        };
        assert!(d.on_transition(3_000, &old).is_none());
        // The reset closes it: nothing to clear.
        let reset = Transition {
            from: BreakerState::Open,
            to: BreakerState::Closed,
            reason: TripCause::Reset,
            open_until_ms: None,
        };
        assert!(d.on_transition(4_000, &reset).is_none());

        // An endpoint forced open is not down: its siblings' failures alone
        // are not an exchange-wide outage.
        let mut o = OutageDetector::new(BreakerAlertSettings::default());
        o.watch("bin", "ticker");
        o.watch("bin", "book");
        assert!(
            o.on_transition("bin", "book", &forced(BreakerState::Closed), 5)
                .is_none()
        );
        for t in 10..15 {
            assert!(o.on_sample(&on("ticker", t, Outcome::Timeout)).is_none());
            assert!(o.on_breaker("bin", "book", BreakerState::Open, t).is_none());
        }
    }

    #[test]
    fn a_fault_alert_stays_when_the_operator_then_forces_the_breaker_open() {
        let mut d = BreakerDetector::new("bin", "ticker", BreakerAlertSettings::default());
        let f = d.on_transition(1_000, &tr(BreakerState::Closed, BreakerState::Open));
        assert!(fired(&f.into_iter().collect::<Vec<_>>(), BREAKER_OPEN));
        let f = d.on_transition(2_000, &forced(BreakerState::Open));
        assert!(f.is_some_and(|f| f.is_firing()));
    }

    #[test]
    fn one_endpoint_exchanges_have_no_outage_alert() {
        let mut d = OutageDetector::new(BreakerAlertSettings::default());
        d.watch("krk", "ticker");
        for t in 0..5 {
            let mut s = sample(t, 5, Outcome::Timeout);
            s.id.exchange = "krk".into();
            assert!(d.on_sample(&s).is_none());
        }
    }
}
