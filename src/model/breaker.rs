//! What the UI, the reducer and the detectors know of a circuit breaker.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BreakerState {
    Closed,
    Open,
    HalfOpen,
}

impl BreakerState {
    pub fn as_str(self) -> &'static str {
        match self {
            BreakerState::Closed => "closed",
            BreakerState::Open => "open",
            BreakerState::HalfOpen => "half_open",
        }
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

/// A state change, with the reason and the figures behind it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Transition {
    pub from: BreakerState,
    pub to: BreakerState,
    pub reason: String,
    /// Unix ms until which the breaker stays open (when `to` is Open).
    pub open_until_ms: Option<i64>,
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
}
