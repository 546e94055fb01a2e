//! What the UI, the reducer and the detectors know of a circuit breaker:
//! its [`BreakerState`], a [`Transition`] between states with its typed
//! [`TripCause`], and the [`BreakerView`] the UI draws.

use super::outcome::OutcomeClass;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::time::Duration;

/// Where a breaker is. Its snake_case name (`closed`, `open`, `half_open`) is
/// one table for serde and strum: JSON, the Redis hash's `state` field (read
/// back by `FromStr`), metrics labels and the UI.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    strum::IntoStaticStr,
    strum::EnumString,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum BreakerState {
    Closed,
    Open,
    HalfOpen,
}

impl BreakerState {
    /// `closed`, `open` or `half_open`: the serde name, also used in the
    /// Redis hash and in metrics labels.
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// The number the `exwatch_breaker_state` gauge shows: 0 closed, 1 half-open, 2 open.
    pub fn code(self) -> i64 {
        match self {
            BreakerState::Closed => 0,
            BreakerState::HalfOpen => 1,
            BreakerState::Open => 2,
        }
    }
}

/// A state change, with its cause and the figures behind it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Transition {
    pub from: BreakerState,
    pub to: BreakerState,
    /// Why it changed. Its `Display` is the English sentence the UI, `report`,
    /// alerts, logs and the Redis hash's `reason` field show. In the journal
    /// it is a tagged object (`{"cause": "consecutive_failures", ...}`);
    /// journals from before the typed cause hold a plain string, read back as
    /// [`TripCause::Other`].
    pub reason: TripCause,
    /// Unix ms until which the breaker stays open (when `to` is Open).
    pub open_until_ms: Option<i64>,
}

/// Why a breaker changed state: every trip (closed/half-open → open), the
/// timed move to half-open, closing, and the operator's actions.
///
/// Durations are whole milliseconds (`*_ms`), rates are fractions in 0..=1
/// (`threshold`) or counts (`failures` of `calls`), so the sentence can be
/// rebuilt exactly. Serialized internally tagged by `cause` in snake_case,
/// e.g. `{"cause":"probe_failed","class":"timeout","lease_expired":false,
/// "open":{"wait":"backoff","wait_ms":20000,"trip":2}}`; [`TripCause::Other`]
/// is a plain JSON string.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "cause", rename_all = "snake_case")]
pub enum TripCause {
    /// Closed → open: `count` failures in a row reached `threshold`
    /// (`consecutive_failures`); `last` is the class of the last one.
    ConsecutiveFailures {
        count: u32,
        threshold: u32,
        last: OutcomeClass,
        open: OpenWait,
    },
    /// Closed → open: `failures` of the `calls` in the sliding window reached
    /// the `threshold` fraction (`failure_rate`). `window_ms` is the time
    /// window's length, `None` for a count window (the last `calls` calls).
    FailureRate {
        failures: u32,
        calls: u32,
        window_ms: Option<u64>,
        threshold: f64,
        last: OutcomeClass,
        open: OpenWait,
    },
    /// Closed → open: `slow` of the `calls` in the window took longer than
    /// `slow_call_ms`, reaching the `threshold` fraction (`slow_call_rate`).
    /// `window_ms` as in [`TripCause::FailureRate`].
    SlowCallRate {
        slow: u32,
        calls: u32,
        window_ms: Option<u64>,
        slow_call_ms: u64,
        threshold: f64,
        open: OpenWait,
    },
    /// → open at once: the exchange banned us (HTTP 418 or a ban body), for
    /// `hold_off_ms` when it said how long.
    Banned {
        hold_off_ms: Option<u64>,
        open: OpenWait,
    },
    /// Open → open: a ban (for `hold_off_ms`) arrived while open and pushed
    /// the end of the open wait out.
    BanExtended { hold_off_ms: Option<u64> },
    /// Half-open → open: a probe failed with `class`; `lease_expired` when
    /// its half-open lease had run out before it reported.
    ProbeFailed {
        class: OutcomeClass,
        lease_expired: bool,
        open: OpenWait,
    },
    /// Open → half-open: the open wait of trip number `trip` is over; it was
    /// noticed `late_ms` after it ended (shown only when over 1 s).
    WaitOver { trip: u32, late_ms: u64 },
    /// Half-open → closed: `successes` probes succeeded, `close_after` needed.
    ProbesSucceeded { successes: u32, close_after: u32 },
    /// → open with no end: an operator forced it open.
    ForcedOpen,
    /// → closed: an operator reset it.
    Reset,
    /// → open: the breaker opened in memory while Redis was unreachable and
    /// was written to Redis when it came back.
    SharedAfterOutage,
    /// A cause known only as text: journals written before causes were
    /// typed, or text from elsewhere. Serialized as a plain JSON string.
    #[serde(untagged)]
    Other(String),
}

impl TripCause {
    /// Whether an operator forced the breaker open (also as the text older
    /// journals carry): an action, not a fault, so it never pages.
    pub fn is_forced(&self) -> bool {
        match self {
            TripCause::ForcedOpen => true,
            TripCause::Other(text) => text == "forced open by operator",
            _ => false,
        }
    }
}

/// How long a trip keeps the breaker open, and why that long.
///
/// Serialized internally tagged by `wait`: `{"wait":"backoff","wait_ms":
/// 10000,"trip":1}` or `{"wait":"held_by_exchange","open_ms":120000,
/// "backoff_ms":10000}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "wait", rename_all = "snake_case")]
pub enum OpenWait {
    /// Open for the backoff wait (`wait_ms`) of trip number `trip` (1 for
    /// the first trip since the breaker last closed).
    Backoff { wait_ms: u64, trip: u32 },
    /// Open for `open_ms`, longer than the backoff alone (`backoff_ms`),
    /// because the exchange asked us to stay away (Retry-After, a ban).
    HeldByExchange { open_ms: u64, backoff_ms: u64 },
}

/// `1m 30s`-style text of whole milliseconds.
fn human(ms: u64) -> humantime::FormattedDuration {
    humantime::format_duration(Duration::from_millis(ms))
}

/// `part` as a percentage of `whole` (0 when `whole` is 0).
fn pct(part: u32, whole: u32) -> f64 {
    if whole == 0 {
        0.0
    } else {
        f64::from(part) * 100.0 / f64::from(whole)
    }
}

/// `6 calls` or `6 calls in 10s`.
struct Over {
    calls: u32,
    window_ms: Option<u64>,
}

impl fmt::Display for Over {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.window_ms {
            None => write!(f, "{} calls", self.calls),
            Some(ms) => write!(f, "{} calls in {}", self.calls, human(ms)),
        }
    }
}

impl fmt::Display for OpenWait {
    /// `open 20s (trip 2)` or `open 2m as the exchange asked (backoff alone: 10s)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            OpenWait::Backoff { wait_ms, trip } => {
                write!(f, "open {} (trip {trip})", human(wait_ms))
            }
            OpenWait::HeldByExchange {
                open_ms,
                backoff_ms,
            } => write!(
                f,
                "open {} as the exchange asked (backoff alone: {})",
                human(open_ms),
                human(backoff_ms)
            ),
        }
    }
}

impl fmt::Display for TripCause {
    /// The one English wording of every cause, e.g. `3 consecutive failures
    /// ≥ 3 (last: server_error); open 10s (trip 1)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TripCause::ConsecutiveFailures {
                count,
                threshold,
                last,
                open,
            } => write!(
                f,
                "{count} consecutive failures ≥ {threshold} (last: {}); {open}",
                last.as_str()
            ),
            TripCause::FailureRate {
                failures,
                calls,
                window_ms,
                threshold,
                last,
                open,
            } => write!(
                f,
                "failure rate {:.0}% over {} ≥ {:.0}% (last: {}); {open}",
                pct(*failures, *calls),
                Over {
                    calls: *calls,
                    window_ms: *window_ms
                },
                threshold * 100.0,
                last.as_str()
            ),
            TripCause::SlowCallRate {
                slow,
                calls,
                window_ms,
                slow_call_ms,
                threshold,
                open,
            } => write!(
                f,
                "slow-call rate {:.0}% (> {}) over {} ≥ {:.0}%; {open}",
                pct(*slow, *calls),
                human(*slow_call_ms),
                Over {
                    calls: *calls,
                    window_ms: *window_ms
                },
                threshold * 100.0
            ),
            TripCause::Banned { hold_off_ms, open } => {
                write!(f, "banned by the exchange")?;
                if let Some(ms) = hold_off_ms {
                    write!(f, " for {}", human(*ms))?;
                }
                write!(f, "; {open}")
            }
            TripCause::BanExtended { hold_off_ms } => {
                write!(f, "banned by the exchange")?;
                if let Some(ms) = hold_off_ms {
                    write!(f, " for {}", human(*ms))?;
                }
                write!(f, ": open wait extended")
            }
            TripCause::ProbeFailed {
                class,
                lease_expired,
                open,
            } => {
                let late = if *lease_expired {
                    ", after its lease expired"
                } else {
                    ""
                };
                write!(
                    f,
                    "half-open probe failed ({}{late}); {open}",
                    class.as_str()
                )
            }
            TripCause::WaitOver { trip, late_ms } if *late_ms > 1000 => write!(
                f,
                "open wait over ({} ago, after trip {trip})",
                human(*late_ms)
            ),
            TripCause::WaitOver { trip, .. } => write!(f, "open wait over (after trip {trip})"),
            TripCause::ProbesSucceeded {
                successes,
                close_after,
            } => write!(f, "{successes} of {close_after} half-open probes succeeded"),
            TripCause::ForcedOpen => f.write_str("forced open by operator"),
            TripCause::Reset => f.write_str("reset by operator"),
            TripCause::SharedAfterOutage => {
                f.write_str("opened while Redis was unreachable; shared on its return")
            }
            TripCause::Other(text) => f.write_str(text),
        }
    }
}

impl From<String> for TripCause {
    /// Text of unknown shape: [`TripCause::Other`].
    fn from(text: String) -> Self {
        TripCause::Other(text)
    }
}

impl From<&str> for TripCause {
    /// Text of unknown shape: [`TripCause::Other`].
    fn from(text: &str) -> Self {
        TripCause::Other(text.to_string())
    }
}

/// What the UI shows of a breaker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BreakerView {
    pub state: BreakerState,
    /// `None` unless open on a timer (a forced-open breaker has no end).
    pub open_until_ms: Option<i64>,
    pub consecutive_failures: u32,
    /// Trips since the breaker last closed; drives the growing wait.
    pub trips: u32,
    /// When it left closed (its first trip since it last closed), unix ms:
    /// "open for 2m" counts from here, across half-open probes that failed.
    /// `None` while closed, and in journals from before it was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tripped_at_ms: Option<i64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_names_are_the_serde_names() {
        let states = [
            BreakerState::Closed,
            BreakerState::Open,
            BreakerState::HalfOpen,
        ];
        assert_eq!(
            states.map(BreakerState::as_str),
            ["closed", "open", "half_open"]
        );
        for s in states {
            assert_eq!(
                serde_json::to_value(s).ok(),
                Some(serde_json::Value::from(s.as_str()))
            );
            assert_eq!(s.as_str().parse::<BreakerState>().ok(), Some(s));
        }
        assert!("Open".parse::<BreakerState>().is_err());
    }

    fn backoff(wait_ms: u64, trip: u32) -> OpenWait {
        OpenWait::Backoff { wait_ms, trip }
    }

    /// Every cause in today's words (the wording the stores produced as
    /// strings before causes were typed).
    #[test]
    fn every_cause_reads_as_before() {
        let cases: Vec<(TripCause, &str)> = vec![
            (
                TripCause::ConsecutiveFailures {
                    count: 3,
                    threshold: 3,
                    last: OutcomeClass::ServerError,
                    open: backoff(10_000, 1),
                },
                "3 consecutive failures ≥ 3 (last: server_error); open 10s (trip 1)",
            ),
            (
                TripCause::FailureRate {
                    failures: 3,
                    calls: 6,
                    window_ms: None,
                    threshold: 0.5,
                    last: OutcomeClass::Ok,
                    open: backoff(10_000, 1),
                },
                "failure rate 50% over 6 calls ≥ 50% (last: ok); open 10s (trip 1)",
            ),
            (
                TripCause::FailureRate {
                    failures: 3,
                    calls: 6,
                    window_ms: Some(10_000),
                    threshold: 0.5,
                    last: OutcomeClass::Timeout,
                    open: backoff(20_000, 2),
                },
                "failure rate 50% over 6 calls in 10s ≥ 50% (last: timeout); open 20s (trip 2)",
            ),
            (
                TripCause::SlowCallRate {
                    slow: 4,
                    calls: 5,
                    window_ms: None,
                    slow_call_ms: 2_000,
                    threshold: 0.8,
                    open: backoff(10_000, 1),
                },
                "slow-call rate 80% (> 2s) over 5 calls ≥ 80%; open 10s (trip 1)",
            ),
            (
                TripCause::Banned {
                    hold_off_ms: Some(600_000),
                    open: OpenWait::HeldByExchange {
                        open_ms: 600_000,
                        backoff_ms: 10_000,
                    },
                },
                "banned by the exchange for 10m; open 10m as the exchange asked (backoff alone: 10s)",
            ),
            (
                TripCause::Banned {
                    hold_off_ms: None,
                    open: backoff(1_200, 2),
                },
                "banned by the exchange; open 1s 200ms (trip 2)",
            ),
            (
                TripCause::BanExtended {
                    hold_off_ms: Some(300_000),
                },
                "banned by the exchange for 5m: open wait extended",
            ),
            (
                TripCause::ProbeFailed {
                    class: OutcomeClass::ServerError,
                    lease_expired: true,
                    open: backoff(20_000, 2),
                },
                "half-open probe failed (server_error, after its lease expired); open 20s (trip 2)",
            ),
            (
                TripCause::WaitOver {
                    trip: 1,
                    late_ms: 1_000,
                },
                "open wait over (after trip 1)",
            ),
            (
                TripCause::WaitOver {
                    trip: 2,
                    late_ms: 90_000,
                },
                "open wait over (1m 30s ago, after trip 2)",
            ),
            (
                TripCause::ProbesSucceeded {
                    successes: 2,
                    close_after: 2,
                },
                "2 of 2 half-open probes succeeded",
            ),
            (TripCause::ForcedOpen, "forced open by operator"),
            (TripCause::Reset, "reset by operator"),
            (
                TripCause::SharedAfterOutage,
                "opened while Redis was unreachable; shared on its return",
            ),
            (TripCause::from("5 failures"), "5 failures"),
        ];
        for (cause, text) in cases {
            assert_eq!(cause.to_string(), text, "{cause:?}");
        }
    }

    #[test]
    fn causes_serialize_tagged_and_round_trip() {
        let cause = TripCause::ProbeFailed {
            class: OutcomeClass::Timeout,
            lease_expired: false,
            open: backoff(20_000, 2),
        };
        let json = serde_json::to_string(&cause).expect("serializes");
        assert_eq!(
            json,
            r#"{"cause":"probe_failed","class":"timeout","lease_expired":false,"open":{"wait":"backoff","wait_ms":20000,"trip":2}}"#
        );
        for cause in [
            cause,
            TripCause::Reset,
            TripCause::SlowCallRate {
                slow: 4,
                calls: 5,
                window_ms: Some(60_000),
                slow_call_ms: 2_500,
                threshold: 0.8,
                open: OpenWait::HeldByExchange {
                    open_ms: 120_000,
                    backoff_ms: 10_000,
                },
            },
            TripCause::Other("reset by operator".into()),
        ] {
            let json = serde_json::to_string(&cause).expect("serializes");
            let back: TripCause = serde_json::from_str(&json).expect("reads back");
            assert_eq!(back, cause, "{json}");
        }
        assert_eq!(
            serde_json::to_string(&TripCause::Reset).expect("serializes"),
            r#"{"cause":"reset"}"#
        );
    }

    #[test]
    fn a_plain_string_reads_as_other() {
        let t: Transition = serde_json::from_str(
            r#"{"from":"closed","to":"open","reason":"3 consecutive failures ≥ 3 (last: server_error); open 10s (trip 1)","open_until_ms":1700000010000}"#,
        )
        .expect("the old form still reads");
        assert_eq!(
            t.reason,
            TripCause::Other(
                "3 consecutive failures ≥ 3 (last: server_error); open 10s (trip 1)".into()
            )
        );
        assert_eq!(
            serde_json::to_value(&t).expect("serializes")["reason"],
            serde_json::json!("3 consecutive failures ≥ 3 (last: server_error); open 10s (trip 1)"),
            "text stays text"
        );
    }
}
