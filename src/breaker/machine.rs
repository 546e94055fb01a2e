//! The breaker state machine, transitions only: pure, with time (unix ms)
//! passed in, and every change reported as a [`Transition`] with a typed
//! [`TripCause`].
//!
//! ```text
//!            failure rate / slow-call rate ≥ threshold over the window,
//!            N consecutive failures, or a ban
//!   Closed ─────────────────────────────────────────────▶ Open
//!     ▲                                                   │  ▲
//!     │ close_after probe successes    wait over          │  │ one probe fails
//!     └──────────────────────────── HalfOpen ◀────────────┘  │
//!                                      └─────────────────────┘
//! ```
//!
//! Both stores drive this one machine: the memory store keeps it in a map,
//! the Redis store reads it from a hash ([`super::codec`]), runs it and
//! writes it back with a compare-and-set. Only the half-open probe leases
//! differ: the memory store keeps them in the machine ([`Machine::leases`],
//! handled in [`super::memory`]), the Redis store keeps them as `SET NX PX`
//! keys, so both reach [`Machine::apply`] with a [`ProbeStatus`]. The
//! sliding window is [`super::window`].

use super::window::Window;
use super::{BreakerSettings, CallResult, WindowKind};
use crate::model::{BreakerState, BreakerView, OpenWait, OutcomeClass, Transition, TripCause};
use std::time::Duration;

/// A denied half-open caller re-asks at least this often, so it notices a
/// freed slot or a close without waiting for a whole lease.
const HALF_OPEN_RECHECK: Duration = Duration::from_secs(1);
/// A forced-open breaker has no end; callers re-ask this often to notice a reset.
const FORCED_RECHECK: Duration = Duration::from_secs(1);

/// One breaker's whole state. Times are unix ms.
#[derive(Debug, Clone, PartialEq)]
pub struct Machine {
    pub state: BreakerState,
    /// Bumped on every transition, so late results from an older state are ignored.
    pub generation: u64,
    pub consecutive_failures: u32,
    /// Trips since the breaker last closed; drives the exponential wait.
    pub trips: u32,
    /// Unix ms when an open breaker may go half-open (`i64::MAX` when forced).
    pub open_until_ms: i64,
    /// The latest "stay away until" an exchange gave us (Retry-After, ban),
    /// kept so a trip caused by a later call still honours it.
    pub hold_until_ms: i64,
    pub half_open_successes: u32,
    /// Forced open by an operator: stays open until reset.
    pub forced: bool,
    pub window: Window,
    /// Half-open probes out (memory store only; Redis keeps them as keys).
    pub leases: Vec<Lease>,
    /// The next probe lease token (memory store only; never 0).
    pub next_token: u64,
}

impl Default for Machine {
    fn default() -> Self {
        Machine {
            state: BreakerState::Closed,
            generation: 0,
            consecutive_failures: 0,
            trips: 0,
            open_until_ms: 0,
            hold_until_ms: 0,
            half_open_successes: 0,
            forced: false,
            window: Window::default(),
            leases: Vec::new(),
            next_token: 1,
        }
    }
}

/// What the machine decided about a call.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Admit {
    /// Call. `probe` is the lease token when half-open.
    Yes {
        state: BreakerState,
        generation: u64,
        probe: Option<u64>,
    },
    /// Do not call; ask again after `retry_in`.
    No {
        state: BreakerState,
        retry_in: Duration,
    },
}

/// Whether the reporting call held a half-open probe slot when it reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProbeStatus {
    /// Not a half-open probe (granted while closed).
    None,
    /// Its lease is still held: the result counts toward closing.
    Held,
    /// Its lease expired and the slot may have gone to another probe.
    Expired,
}

/// Whole milliseconds of `d`, as causes carry them.
fn ms(d: Duration) -> u64 {
    d.as_millis() as u64
}

impl Machine {
    /// Whether `class` counts as a failure; `None` when it is ignored
    /// altogether (a 429 is the limiter's business, and a CDN's block says
    /// nothing about the endpoint's health, unless configured).
    pub fn classify(s: &BreakerSettings, class: OutcomeClass) -> Option<bool> {
        if s.failure_on.contains(&class) {
            Some(true)
        } else if matches!(class, OutcomeClass::RateLimited | OutcomeClass::Blocked) {
            None
        } else {
            Some(false)
        }
    }

    /// The wait before half-open for the next trip, before any hold-off:
    /// `open_for × backoff^trips`, capped at `max_open_for`.
    pub fn backoff_wait(&self, s: &BreakerSettings) -> Duration {
        let factor = s.backoff.max(1.0).powi(self.trips.min(64) as i32);
        let secs = (s.open_for.as_secs_f64() * factor).min(s.max_open_for.as_secs_f64());
        Duration::try_from_secs_f64(secs).unwrap_or(s.max_open_for)
    }

    /// Open → half-open once the wait is over. Both stores call this first.
    pub fn advance(&mut self, now_ms: i64) -> Option<Transition> {
        if self.state == BreakerState::Open && !self.forced && now_ms >= self.open_until_ms {
            let reason = TripCause::WaitOver {
                trip: self.trips,
                late_ms: (now_ms - self.open_until_ms) as u64,
            };
            return Some(self.move_to(BreakerState::HalfOpen, reason));
        }
        None
    }

    /// How long a denied caller should wait before asking again, if the
    /// state alone decides (closed and half-open return `None`).
    pub fn denied_for(&self, now_ms: i64) -> Option<Duration> {
        match self.state {
            BreakerState::Open if self.forced => Some(FORCED_RECHECK),
            BreakerState::Open => Some(Duration::from_millis(
                (self.open_until_ms - now_ms).max(1) as u64
            )),
            _ => None,
        }
    }

    /// Ask to make a call at `now_ms`, with the probe leases kept in the
    /// machine (memory store). May move open → half-open.
    pub fn admit(&mut self, s: &BreakerSettings, now_ms: i64) -> (Admit, Option<Transition>) {
        let transition = self.advance(now_ms);
        let admit = match self.state {
            BreakerState::Closed => Admit::Yes {
                state: self.state,
                generation: self.generation,
                probe: None,
            },
            BreakerState::Open => Admit::No {
                state: self.state,
                retry_in: self.denied_for(now_ms).unwrap_or(FORCED_RECHECK),
            },
            BreakerState::HalfOpen => match self.take_lease(s, now_ms) {
                Ok(token) => Admit::Yes {
                    state: self.state,
                    generation: self.generation,
                    probe: Some(token),
                },
                Err(first_free) => Admit::No {
                    state: self.state,
                    retry_in: first_free.min(HALF_OPEN_RECHECK),
                },
            },
        };
        (admit, transition)
    }

    /// Feed back a result with the probe leases kept in the machine (memory
    /// store): `probe` is the token [`Machine::admit`] gave, if any.
    pub fn record(
        &mut self,
        s: &BreakerSettings,
        generation: u64,
        probe: Option<u64>,
        r: CallResult,
        now_ms: i64,
    ) -> Option<Transition> {
        let status = self.release_lease(generation, probe, now_ms);
        self.apply(s, generation, status, r, now_ms)
    }

    /// Feed back the result of a call admitted in `generation`.
    pub fn apply(
        &mut self,
        s: &BreakerSettings,
        generation: u64,
        probe: ProbeStatus,
        r: CallResult,
        now_ms: i64,
    ) -> Option<Transition> {
        let failed = Self::classify(s, r.class);
        if let Some(h) = r.hold_off {
            let until = now_ms.saturating_add(h.as_millis().min(i64::MAX as u128) as i64);
            self.hold_until_ms = self.hold_until_ms.max(until);
        }
        let banned = r.class == OutcomeClass::Banned && failed == Some(true);
        if generation != self.generation {
            // A result from before the last transition says nothing about the
            // endpoint now, except that the exchange asked us to stay away.
            return if banned { self.ban(s, r, now_ms) } else { None };
        }
        match self.state {
            BreakerState::Closed => {
                let failed = failed?;
                let slow = r.latency > s.slow_call;
                self.window.push(s, now_ms, failed, slow);
                if !failed {
                    self.consecutive_failures = 0;
                    return self.check_rates(s, r, now_ms);
                }
                self.consecutive_failures += 1;
                if banned {
                    return self.ban(s, r, now_ms);
                }
                if self.consecutive_failures >= s.consecutive_failures {
                    let (count, threshold, last) =
                        (self.consecutive_failures, s.consecutive_failures, r.class);
                    return Some(self.trip(s, now_ms, |open| TripCause::ConsecutiveFailures {
                        count,
                        threshold,
                        last,
                        open,
                    }));
                }
                self.check_rates(s, r, now_ms)
            }
            BreakerState::HalfOpen => match (failed, probe) {
                (Some(true), _) if banned => self.ban(s, r, now_ms),
                // A late failure is still evidence the endpoint is sick.
                (Some(true), _) => {
                    let lease_expired = probe == ProbeStatus::Expired;
                    Some(self.trip(s, now_ms, |open| TripCause::ProbeFailed {
                        class: r.class,
                        lease_expired,
                        open,
                    }))
                }
                // Its slot may have gone to another probe: counting it could
                // close on more successes than probes allowed at once.
                (Some(false), ProbeStatus::Held) => {
                    self.half_open_successes += 1;
                    if self.half_open_successes >= s.close_after {
                        let reason = TripCause::ProbesSucceeded {
                            successes: self.half_open_successes,
                            close_after: s.close_after,
                        };
                        Some(self.move_to(BreakerState::Closed, reason))
                    } else {
                        None
                    }
                }
                _ => None,
            },
            BreakerState::Open => {
                if banned {
                    self.ban(s, r, now_ms)
                } else {
                    None
                }
            }
        }
    }

    fn check_rates(
        &mut self,
        s: &BreakerSettings,
        r: CallResult,
        now_ms: i64,
    ) -> Option<Transition> {
        let f = self.window.figures(s, now_ms);
        if f.calls < s.min_calls.max(1) {
            return None;
        }
        let failure_rate = f64::from(f.failures) / f64::from(f.calls);
        let slow_rate = f64::from(f.slow) / f64::from(f.calls);
        let window_ms = match s.window_kind {
            WindowKind::Count => None,
            WindowKind::Time => Some(ms(s.window)),
        };
        // A tiny epsilon so 10 of 20 reaches 50% despite float rounding.
        if failure_rate + 1e-9 >= s.failure_rate {
            Some(self.trip(s, now_ms, |open| TripCause::FailureRate {
                failures: f.failures,
                calls: f.calls,
                window_ms,
                threshold: s.failure_rate,
                last: r.class,
                open,
            }))
        } else if slow_rate + 1e-9 >= s.slow_call_rate {
            Some(self.trip(s, now_ms, |open| TripCause::SlowCallRate {
                slow: f.slow,
                calls: f.calls,
                window_ms,
                slow_call_ms: ms(s.slow_call),
                threshold: s.slow_call_rate,
                open,
            }))
        } else {
            None
        }
    }

    fn ban(&mut self, s: &BreakerSettings, r: CallResult, now_ms: i64) -> Option<Transition> {
        let hold_off_ms = r.hold_off.map(ms);
        if self.state == BreakerState::Open {
            // Already open: a longer ban still pushes the end out.
            if !self.forced && self.hold_until_ms > self.open_until_ms {
                self.open_until_ms = self.hold_until_ms;
                return Some(Transition {
                    from: BreakerState::Open,
                    to: BreakerState::Open,
                    reason: TripCause::BanExtended { hold_off_ms },
                    open_until_ms: Some(self.open_until_ms),
                });
            }
            return None;
        }
        Some(self.trip(s, now_ms, |open| TripCause::Banned { hold_off_ms, open }))
    }

    /// Open the breaker for the backoff wait, or longer if the exchange
    /// asked; `cause` is given how long and why.
    fn trip(
        &mut self,
        s: &BreakerSettings,
        now_ms: i64,
        cause: impl FnOnce(OpenWait) -> TripCause,
    ) -> Transition {
        let wait = self.backoff_wait(s);
        let by_backoff = now_ms.saturating_add(wait.as_millis() as i64);
        self.open_until_ms = by_backoff.max(self.hold_until_ms);
        self.trips = self.trips.saturating_add(1);
        let open = if self.open_until_ms > by_backoff {
            OpenWait::HeldByExchange {
                open_ms: (self.open_until_ms - now_ms) as u64,
                backoff_ms: ms(wait),
            }
        } else {
            OpenWait::Backoff {
                wait_ms: ms(wait),
                trip: self.trips,
            }
        };
        self.move_to(BreakerState::Open, cause(open))
    }

    fn move_to(&mut self, to: BreakerState, reason: TripCause) -> Transition {
        let from = self.state;
        self.state = to;
        self.generation += 1;
        self.leases.clear();
        self.half_open_successes = 0;
        self.consecutive_failures = 0;
        if to != BreakerState::Open {
            self.forced = false;
        }
        if to == BreakerState::Closed {
            self.trips = 0;
            self.hold_until_ms = 0;
            self.window.clear(self.window.kind);
        }
        Transition {
            from,
            to,
            reason,
            open_until_ms: (to == BreakerState::Open && !self.forced).then_some(self.open_until_ms),
        }
    }

    /// Operator: stop calling until reset. `None` if already forced open.
    pub fn force_open(&mut self) -> Option<Transition> {
        if self.state == BreakerState::Open && self.forced {
            return None;
        }
        self.forced = true;
        self.open_until_ms = i64::MAX;
        Some(self.move_to(BreakerState::Open, TripCause::ForcedOpen))
    }

    /// Operator: close and forget the history. `None` (but the counts
    /// forgotten) if already closed.
    pub fn reset(&mut self) -> Option<Transition> {
        let was_closed = self.state == BreakerState::Closed;
        self.trips = 0;
        self.open_until_ms = 0;
        self.hold_until_ms = 0;
        self.consecutive_failures = 0;
        self.window.clear(self.window.kind);
        if was_closed {
            return None;
        }
        Some(self.move_to(BreakerState::Closed, TripCause::Reset))
    }

    /// What the UI shows. A forced-open breaker is open with no end
    /// (`open_until_ms: None`).
    pub fn view(&self) -> BreakerView {
        BreakerView {
            state: self.state,
            open_until_ms: (self.state == BreakerState::Open && !self.forced)
                .then_some(self.open_until_ms),
            consecutive_failures: self.consecutive_failures,
            trips: self.trips,
            // The machine does not keep wall times of its moves; the
            // snapshot reducer records them from the events.
            tripped_at_ms: None,
        }
    }
}

/// One half-open probe slot held by an in-flight call (memory store only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lease {
    pub token: u64,
    /// Unix ms when the slot frees itself if the probe never reports.
    pub expires_ms: i64,
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use proptest::prelude::*;

    pub(crate) const T0: i64 = 1_700_000_000_000;

    pub(crate) fn settings() -> BreakerSettings {
        BreakerSettings {
            consecutive_failures: 3,
            window_size: 10,
            min_calls: 5,
            failure_rate: 0.5,
            slow_call_rate: 0.8,
            slow_call: Duration::from_secs(2),
            open_for: Duration::from_secs(10),
            backoff: 2.0,
            max_open_for: Duration::from_secs(60),
            half_open_probes: 1,
            close_after: 2,
            probe_lease: Duration::from_secs(5),
            ..BreakerSettings::default()
        }
    }

    pub(crate) fn res(class: OutcomeClass) -> CallResult {
        CallResult {
            class,
            latency: Duration::from_millis(100),
            hold_off: None,
        }
    }

    pub(crate) fn ok() -> CallResult {
        res(OutcomeClass::Ok)
    }

    pub(crate) fn fail() -> CallResult {
        res(OutcomeClass::ServerError)
    }

    /// Admit then record; panics if the call is not admitted.
    pub(crate) fn call(
        m: &mut Machine,
        s: &BreakerSettings,
        r: CallResult,
        now: i64,
    ) -> Option<Transition> {
        match m.admit(s, now).0 {
            Admit::Yes {
                generation, probe, ..
            } => m.record(s, generation, probe, r, now),
            Admit::No { state, .. } => panic!("denied while {state:?}"),
        }
    }

    fn tripped(m: &mut Machine, s: &BreakerSettings, now: i64) -> Transition {
        let mut last = None;
        for _ in 0..s.consecutive_failures {
            last = call(m, s, fail(), now);
        }
        last.expect("consecutive failures trip it")
    }

    #[test]
    fn blocks_and_rate_limits_are_neither_failure_nor_success_by_default() {
        let s = BreakerSettings::default();
        assert_eq!(Machine::classify(&s, OutcomeClass::Blocked), None);
        assert_eq!(Machine::classify(&s, OutcomeClass::RateLimited), None);
        assert_eq!(Machine::classify(&s, OutcomeClass::ServerError), Some(true));
        assert_eq!(
            Machine::classify(&s, OutcomeClass::ClientError),
            Some(false)
        );
    }

    #[test]
    fn consecutive_failures_open_it() {
        let s = settings();
        let mut m = Machine::default();
        assert_eq!(call(&mut m, &s, fail(), T0), None);
        assert_eq!(call(&mut m, &s, fail(), T0), None);
        let t = call(&mut m, &s, fail(), T0).expect("third failure trips");
        assert_eq!((t.from, t.to), (BreakerState::Closed, BreakerState::Open));
        assert!(
            t.reason
                .to_string()
                .starts_with("3 consecutive failures ≥ 3 (last: server_error)"),
            "{}",
            t.reason
        );
        assert_eq!(t.open_until_ms, Some(T0 + 10_000));
        assert!(
            matches!(m.admit(&s, T0 + 9_999).0, Admit::No { state: BreakerState::Open, retry_in } if retry_in == Duration::from_millis(1))
        );
    }

    #[test]
    fn a_success_resets_the_consecutive_count() {
        let s = BreakerSettings {
            failure_rate: 1.0,
            ..settings()
        };
        let mut m = Machine::default();
        for _ in 0..4 {
            assert_eq!(call(&mut m, &s, fail(), T0), None);
            assert_eq!(call(&mut m, &s, fail(), T0), None);
            assert_eq!(call(&mut m, &s, ok(), T0), None);
            assert_eq!(call(&mut m, &s, ok(), T0), None);
        }
        assert_eq!(m.state, BreakerState::Closed);
    }

    #[test]
    fn failure_rate_over_the_count_window_opens_it() {
        let s = BreakerSettings {
            consecutive_failures: 100,
            ..settings()
        };
        let mut m = Machine::default();
        // ok, fail alternating: 50% once min_calls (5) is reached... but the
        // fourth call is only 2 of 4: min_calls holds it back.
        assert_eq!(call(&mut m, &s, ok(), T0), None);
        assert_eq!(call(&mut m, &s, fail(), T0), None);
        assert_eq!(call(&mut m, &s, ok(), T0), None);
        assert_eq!(call(&mut m, &s, fail(), T0), None);
        assert_eq!(call(&mut m, &s, ok(), T0), None, "2 of 5 is 40%");
        let t = call(&mut m, &s, fail(), T0).expect("3 of 6 is 50%");
        assert!(
            t.reason
                .to_string()
                .starts_with("failure rate 50% over 6 calls ≥ 50%"),
            "{}",
            t.reason
        );
    }

    #[test]
    fn min_calls_holds_back_the_rate_trip() {
        let s = BreakerSettings {
            consecutive_failures: 100,
            ..settings()
        };
        let mut m = Machine::default();
        for _ in 0..4 {
            assert_eq!(call(&mut m, &s, fail(), T0), None, "below min_calls");
        }
        let t = call(&mut m, &s, ok(), T0).expect("4 of 5 trips");
        assert!(
            t.reason
                .to_string()
                .starts_with("failure rate 80% over 5 calls ≥ 50% (last: ok)"),
            "{}",
            t.reason
        );
    }

    #[test]
    fn the_count_window_slides() {
        let s = BreakerSettings {
            consecutive_failures: 100,
            min_calls: 10,
            ..settings()
        };
        let mut m = Machine::default();
        for _ in 0..4 {
            call(&mut m, &s, fail(), T0);
        }
        for _ in 0..10 {
            assert_eq!(call(&mut m, &s, ok(), T0), None);
        }
        let f = m.window.figures(&s, T0);
        assert_eq!((f.calls, f.failures), (10, 0), "the failures slid out");
        for _ in 0..4 {
            assert_eq!(call(&mut m, &s, fail(), T0), None, "4 of 10 < 50%");
        }
        assert!(call(&mut m, &s, fail(), T0).is_some(), "5 of 10 = 50%");
    }

    #[test]
    fn time_window_counts_only_recent_calls() {
        let s = BreakerSettings {
            consecutive_failures: 100,
            window_kind: WindowKind::Time,
            window: Duration::from_secs(10),
            min_calls: 4,
            ..settings()
        };
        let mut m = Machine::default();
        for i in 0..3 {
            assert_eq!(
                call(&mut m, &s, fail(), T0 + i * 100),
                None,
                "below min_calls"
            );
        }
        // 20 s later those three failures are out of the window.
        let later = T0 + 20_000;
        for i in 0..3 {
            assert_eq!(call(&mut m, &s, ok(), later + i), None);
        }
        assert_eq!(m.window.figures(&s, later + 3).calls, 3);
        assert_eq!(call(&mut m, &s, fail(), later + 5_000), None, "1 of 4");
        assert_eq!(
            call(&mut m, &s, fail(), later + 6_000),
            None,
            "2 of 5 = 40%"
        );
        let t = call(&mut m, &s, fail(), later + 7_000).expect("3 of 6 = 50%");
        assert!(
            t.reason
                .to_string()
                .starts_with("failure rate 50% over 6 calls in 10s ≥ 50%"),
            "{}",
            t.reason
        );
    }

    #[test]
    fn slow_calls_open_it() {
        let s = settings();
        let mut m = Machine::default();
        let slow = CallResult {
            latency: Duration::from_secs(3),
            ..ok()
        };
        assert_eq!(call(&mut m, &s, ok(), T0), None);
        for _ in 0..3 {
            assert_eq!(call(&mut m, &s, slow, T0), None, "below min_calls");
        }
        let t = call(&mut m, &s, slow, T0).expect("4 of 5 slow = 80%");
        assert!(
            t.reason
                .to_string()
                .starts_with("slow-call rate 80% (> 2s) over 5 calls ≥ 80%"),
            "{}",
            t.reason
        );
        // Exactly the threshold latency is not slow.
        let mut m = Machine::default();
        let edge = CallResult {
            latency: s.slow_call,
            ..ok()
        };
        for _ in 0..20 {
            assert_eq!(call(&mut m, &s, edge, T0), None);
        }
    }

    #[test]
    fn open_becomes_half_open_after_the_wait() {
        let s = settings();
        let mut m = Machine::default();
        tripped(&mut m, &s, T0);
        let (a, t) = m.admit(&s, T0 + 5_000);
        assert!(
            matches!(a, Admit::No { state: BreakerState::Open, retry_in } if retry_in == Duration::from_secs(5))
        );
        assert_eq!(t, None);
        let (a, t) = m.admit(&s, T0 + 10_000);
        let t = t.expect("wait over");
        assert_eq!((t.from, t.to), (BreakerState::Open, BreakerState::HalfOpen));
        assert!(matches!(
            a,
            Admit::Yes {
                state: BreakerState::HalfOpen,
                probe: Some(_),
                ..
            }
        ));
    }

    #[test]
    fn half_open_admits_only_the_allowed_probes() {
        let s = BreakerSettings {
            half_open_probes: 2,
            ..settings()
        };
        let mut m = Machine::default();
        tripped(&mut m, &s, T0);
        let now = T0 + 10_000;
        assert!(matches!(m.admit(&s, now).0, Admit::Yes { .. }));
        assert!(matches!(m.admit(&s, now).0, Admit::Yes { .. }));
        assert!(matches!(
            m.admit(&s, now).0,
            Admit::No {
                state: BreakerState::HalfOpen,
                ..
            }
        ));
    }

    #[test]
    fn close_after_successes_closes_it() {
        let s = settings();
        let mut m = Machine::default();
        tripped(&mut m, &s, T0);
        let now = T0 + 10_000;
        assert_eq!(call(&mut m, &s, ok(), now), None, "1 of 2");
        let t = call(&mut m, &s, ok(), now).expect("2 of 2 close it");
        assert_eq!(
            (t.from, t.to),
            (BreakerState::HalfOpen, BreakerState::Closed)
        );
        assert_eq!(t.reason.to_string(), "2 of 2 half-open probes succeeded");
        assert_eq!((m.trips, m.consecutive_failures), (0, 0));
        assert_eq!(
            m.window.figures(&s, now).calls,
            0,
            "a closed breaker starts a fresh window"
        );
    }

    #[test]
    fn one_half_open_failure_reopens_with_a_longer_wait() {
        let s = settings();
        let mut m = Machine::default();
        tripped(&mut m, &s, T0);
        let mut now = T0 + 10_000;
        let t = call(&mut m, &s, fail(), now).expect("probe failure reopens");
        assert_eq!((t.from, t.to), (BreakerState::HalfOpen, BreakerState::Open));
        assert!(
            t.reason
                .to_string()
                .starts_with("half-open probe failed (server_error); open 20s (trip 2)"),
            "{}",
            t.reason
        );
        assert_eq!(t.open_until_ms, Some(now + 20_000));
        // 40 s, then capped at 60 s.
        for want in [40_000, 60_000, 60_000] {
            now = m.open_until_ms;
            let t = call(&mut m, &s, fail(), now).expect("reopens");
            assert_eq!(t.open_until_ms, Some(now + want));
        }
    }

    #[test]
    fn closing_resets_the_backoff() {
        let s = settings();
        let mut m = Machine::default();
        tripped(&mut m, &s, T0);
        let now = T0 + 10_000;
        call(&mut m, &s, fail(), now);
        let now = m.open_until_ms;
        call(&mut m, &s, ok(), now);
        call(&mut m, &s, ok(), now);
        assert_eq!(m.state, BreakerState::Closed);
        let t = tripped(&mut m, &s, now);
        assert_eq!(
            t.open_until_ms,
            Some(now + 10_000),
            "back to the first wait"
        );
    }

    #[test]
    fn retry_after_longer_than_the_wait_wins() {
        let s = settings();
        let mut m = Machine::default();
        call(&mut m, &s, fail(), T0);
        call(&mut m, &s, fail(), T0);
        let r = CallResult {
            hold_off: Some(Duration::from_secs(120)),
            ..res(OutcomeClass::ServerError)
        };
        let t = call(&mut m, &s, r, T0).expect("trips");
        assert_eq!(t.open_until_ms, Some(T0 + 120_000));
        assert!(
            t.reason
                .to_string()
                .contains("open 2m as the exchange asked (backoff alone: 10s)"),
            "{}",
            t.reason
        );
        // A shorter Retry-After does not shorten the backoff wait.
        let mut m = Machine::default();
        call(&mut m, &s, fail(), T0);
        call(&mut m, &s, fail(), T0);
        let r = CallResult {
            hold_off: Some(Duration::from_secs(1)),
            ..res(OutcomeClass::ServerError)
        };
        assert_eq!(
            call(&mut m, &s, r, T0).and_then(|t| t.open_until_ms),
            Some(T0 + 10_000)
        );
    }

    #[test]
    fn an_earlier_retry_after_still_holds_when_a_later_call_trips() {
        let s = settings();
        let mut m = Machine::default();
        let r = CallResult {
            hold_off: Some(Duration::from_secs(90)),
            ..res(OutcomeClass::ServerError)
        };
        call(&mut m, &s, r, T0);
        call(&mut m, &s, fail(), T0 + 1_000);
        let t = call(&mut m, &s, fail(), T0 + 2_000).expect("trips");
        assert_eq!(t.open_until_ms, Some(T0 + 90_000));
    }

    #[test]
    fn rate_limited_does_not_trip_by_default() {
        let s = settings();
        let mut m = Machine::default();
        let r = CallResult {
            hold_off: Some(Duration::from_secs(30)),
            ..res(OutcomeClass::RateLimited)
        };
        for _ in 0..50 {
            assert_eq!(call(&mut m, &s, r, T0), None);
        }
        assert_eq!(
            m.window.figures(&s, T0).calls,
            0,
            "ignored, not counted as success either"
        );
        // Configured as a failure, it trips like any other.
        let s = BreakerSettings {
            failure_on: vec![OutcomeClass::RateLimited],
            ..settings()
        };
        let mut m = Machine::default();
        assert!(tripped_with(&mut m, &s, res(OutcomeClass::RateLimited), T0).is_some());
    }

    fn tripped_with(
        m: &mut Machine,
        s: &BreakerSettings,
        r: CallResult,
        now: i64,
    ) -> Option<Transition> {
        (0..s.consecutive_failures)
            .filter_map(|_| call(m, s, r, now))
            .last()
    }

    #[test]
    fn a_ban_opens_at_once_for_the_ban_time() {
        let s = settings();
        let mut m = Machine::default();
        let r = CallResult {
            hold_off: Some(Duration::from_secs(600)),
            ..res(OutcomeClass::Banned)
        };
        let t = call(&mut m, &s, r, T0).expect("one ban opens it");
        assert_eq!(t.open_until_ms, Some(T0 + 600_000));
        assert!(
            t.reason
                .to_string()
                .starts_with("banned by the exchange for 10m"),
            "{}",
            t.reason
        );
    }

    #[test]
    fn a_late_ban_still_opens_or_extends() {
        let s = settings();
        let mut m = Machine::default();
        let g = match m.admit(&s, T0).0 {
            Admit::Yes { generation, .. } => generation,
            Admit::No { .. } => panic!("closed admits"),
        };
        tripped(&mut m, &s, T0);
        let ban = CallResult {
            hold_off: Some(Duration::from_secs(300)),
            ..res(OutcomeClass::Banned)
        };
        let t = m
            .record(&s, g, None, ban, T0 + 1)
            .expect("the ban extends the open wait");
        assert_eq!(
            (t.from, t.to, t.open_until_ms),
            (BreakerState::Open, BreakerState::Open, Some(T0 + 300_001))
        );
        // A stale non-ban result changes nothing.
        assert_eq!(m.record(&s, g, None, fail(), T0 + 2), None);
    }

    #[test]
    fn a_late_result_from_before_a_transition_is_ignored() {
        let s = settings();
        let mut m = Machine::default();
        tripped(&mut m, &s, T0);
        let now = T0 + 10_000;
        let (a, _) = m.admit(&s, now);
        let Admit::Yes {
            generation, probe, ..
        } = a
        else {
            panic!("probe admitted")
        };
        m.force_open();
        assert_eq!(m.record(&s, generation, probe, fail(), now), None);
        assert_eq!(m.record(&s, generation, probe, ok(), now), None);
        assert!(m.forced);
    }

    #[test]
    fn a_hung_probe_lease_expires_and_another_probe_goes() {
        let s = settings();
        let mut m = Machine::default();
        tripped(&mut m, &s, T0);
        let now = T0 + 10_000;
        let Admit::Yes {
            generation,
            probe: hung,
            ..
        } = m.admit(&s, now).0
        else {
            panic!("first probe")
        };
        assert!(
            matches!(m.admit(&s, now + 4_999).0, Admit::No { state: BreakerState::HalfOpen, retry_in } if retry_in == Duration::from_millis(1))
        );
        let Admit::Yes { probe: second, .. } = m.admit(&s, now + 5_000).0 else {
            panic!("lease over: second probe")
        };
        assert_ne!(hung, second);
        // The hung probe's late success does not count; the live one does.
        assert_eq!(m.record(&s, generation, hung, ok(), now + 5_001), None);
        assert_eq!(m.half_open_successes, 0);
        assert_eq!(m.record(&s, generation, second, ok(), now + 5_002), None);
        assert_eq!(m.half_open_successes, 1);
        // A late failure, though, is still a failure.
        let Admit::Yes { probe: third, .. } = m.admit(&s, now + 6_000).0 else {
            panic!("third probe")
        };
        let t = m
            .record(&s, generation, hung, fail(), now + 6_001)
            .expect("late failure reopens");
        assert!(
            t.reason.to_string().contains("after its lease expired"),
            "{}",
            t.reason
        );
        assert_eq!(
            m.record(&s, generation, third, ok(), now + 6_002),
            None,
            "third's generation is gone"
        );
    }

    #[test]
    fn a_rate_limited_probe_frees_its_slot_without_counting() {
        let s = settings();
        let mut m = Machine::default();
        tripped(&mut m, &s, T0);
        let now = T0 + 10_000;
        assert_eq!(call(&mut m, &s, res(OutcomeClass::RateLimited), now), None);
        assert_eq!(
            (m.state, m.half_open_successes),
            (BreakerState::HalfOpen, 0)
        );
        assert!(
            matches!(m.admit(&s, now).0, Admit::Yes { .. }),
            "slot freed"
        );
    }

    #[test]
    fn force_open_stays_open_until_reset() {
        let s = settings();
        let mut m = Machine::default();
        let t = m.force_open().expect("closed → open");
        assert_eq!(
            (t.from, t.to, t.open_until_ms),
            (BreakerState::Closed, BreakerState::Open, None)
        );
        assert_eq!(m.force_open(), None, "already forced");
        let (a, t) = m.admit(&s, i64::MAX - 1);
        assert_eq!(t, None);
        assert!(
            matches!(a, Admit::No { state: BreakerState::Open, retry_in } if retry_in == FORCED_RECHECK)
        );
        let t = m.reset().expect("reset closes");
        assert_eq!(
            (t.from, t.to, t.reason.to_string().as_str()),
            (
                BreakerState::Open,
                BreakerState::Closed,
                "reset by operator"
            )
        );
        assert!(!m.forced);
        assert!(matches!(
            m.admit(&s, T0).0,
            Admit::Yes {
                state: BreakerState::Closed,
                ..
            }
        ));
    }

    #[test]
    fn force_open_from_half_open_and_reset_from_open() {
        let s = settings();
        let mut m = Machine::default();
        tripped(&mut m, &s, T0);
        m.admit(&s, T0 + 10_000);
        assert_eq!(m.state, BreakerState::HalfOpen);
        let t = m.force_open().expect("half-open → forced open");
        assert_eq!(t.from, BreakerState::HalfOpen);
        m.reset();
        tripped(&mut m, &s, T0);
        let t = m.reset().expect("open → closed");
        assert_eq!(t.from, BreakerState::Open);
        assert_eq!(m.trips, 0);
        // Reset while closed forgets the counts without an event.
        call(&mut m, &s, fail(), T0);
        assert_eq!(m.reset(), None);
        assert_eq!(
            (m.consecutive_failures, m.window.figures(&s, T0).calls),
            (0, 0)
        );
    }

    #[derive(Debug, Clone)]
    enum Op {
        Permit,
        Record(usize, bool),
        Wait(u32),
        ForceOpen,
        Reset,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => Just(Op::Permit),
            4 => (any::<usize>(), any::<bool>()).prop_map(|(i, ok)| Op::Record(i, ok)),
            3 => (0u32..8_000).prop_map(Op::Wait),
            1 => Just(Op::ForceOpen),
            1 => Just(Op::Reset),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(400))]

        /// Whatever the interleaving of permits, results and lease expiries,
        /// half-open never has more live probes out than allowed.
        #[test]
        fn half_open_never_admits_more_probes_than_allowed(
            probes in 1u32..4,
            close_after in 1u32..4,
            ops in proptest::collection::vec(op(), 1..200),
        ) {
            let s = BreakerSettings {
                consecutive_failures: 2,
                open_for: Duration::from_secs(1),
                max_open_for: Duration::from_secs(4),
                half_open_probes: probes,
                close_after,
                probe_lease: Duration::from_secs(3),
                ..settings()
            };
            let mut m = Machine::default();
            let mut now = T0;
            // Calls out: (generation, probe, granted at, in half-open).
            let mut out: Vec<(u64, Option<u64>, i64, bool)> = Vec::new();
            for op in ops {
                match op {
                    Op::Permit => {
                        if let (Admit::Yes { generation, probe, state }, _) = m.admit(&s, now) {
                            prop_assert_eq!(state == BreakerState::HalfOpen, probe.is_some());
                            out.push((generation, probe, now, state == BreakerState::HalfOpen));
                        }
                    }
                    Op::Record(i, success) if !out.is_empty() => {
                        let (g, p, _, _) = out.remove(i % out.len());
                        m.record(&s, g, p, if success { ok() } else { fail() }, now);
                    }
                    Op::Record(..) => {}
                    Op::Wait(ms) => now += i64::from(ms),
                    Op::ForceOpen => { m.force_open(); }
                    Op::Reset => { m.reset(); }
                }
                if m.state == BreakerState::HalfOpen {
                    let lease = s.probe_lease.as_millis() as i64;
                    let live = out
                        .iter()
                        .filter(|(g, _, at, half)| *half && *g == m.generation && now < at + lease)
                        .count();
                    prop_assert!(live <= probes as usize, "{live} live probes > {probes}");
                    prop_assert!(m.half_open_successes < close_after);
                }
            }
        }
    }
}
