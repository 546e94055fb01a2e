//! The vocabulary every part of exwatch stands on: events and commands,
//! outcomes and their classes, alerts, breaker and limiter views, and the id
//! of an endpoint. A leaf: it imports nothing else from the crate, so every
//! other module can depend on it without cycles.

pub mod alert;
pub mod breaker;
pub mod event;
pub mod ids;
pub mod limits;
pub mod outcome;
pub mod silence;
pub mod stream;
pub mod symbol;

pub use alert::{
    Alert, AlertKind, AlertState, Delivery, Severity, Triage, TriageSource, TriageTotals,
};
pub use breaker::{BreakerState, BreakerView, OpenWait, Transition, TripCause};
pub use event::{Command, Component, Event};
pub use ids::{EndpointId, EndpointKind, ExchangeKind};
pub use limits::{Tier, TierFill};
pub use outcome::{ApiError, InvalidReason, Outcome, OutcomeClass, RateLimitSignal, Sample};
pub use silence::{AckInfo, SilenceInfo};
pub use stream::{BookState, StreamNote, StreamNoteKind, StreamState, StreamStatus};
pub use symbol::Pair;
