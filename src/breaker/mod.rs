//! Circuit breaker per (exchange, endpoint): a pure state machine and stores
//! (memory; Redis for several instances) behind [`BreakerStore`].
//!
//! Where each concern lives:
//!
//! - [`settings`]: the `[breaker]` table ([`BreakerSettings`]).
//! - [`machine`]: the state machine, transitions only ([`machine::Machine`]);
//!   each transition carries a typed [`TripCause`](crate::model::TripCause).
//! - [`window`]: the sliding window of recent outcomes.
//! - [`codec`]: the machine as fields of a Redis hash.
//! - [`memory`]: the in-process store and its half-open probe leases.
//! - [`redis`]: the Redis store (shared by instances, kept across restarts).
//! - [`resilient`]: the Redis store falling back to memory while Redis is
//!   away, and coming back.
//! - `build`: the factories [`build()`], [`build_with_retry`], [`build_on_link`].

mod build;
pub mod codec;
pub mod machine;
pub mod memory;
pub mod redis;
pub mod resilient;
pub mod settings;
pub mod window;

pub use build::{build, build_on_link, build_with_retry};
pub use memory::MemoryBreakers;
pub use redis::RedisBreakers;
pub use resilient::{DEFAULT_RETRY_EVERY, ResilientBreakers};
pub use settings::{BreakerSettings, StoreKind, WindowKind};

use crate::model::{BreakerState, BreakerView, EndpointId, OutcomeClass, Transition};
use futures::future::BoxFuture;
use std::time::Duration;

/// The result of one call, fed back to the breaker.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CallResult {
    pub class: OutcomeClass,
    /// How long the call took; longer than `slow_call` counts as slow.
    pub latency: Duration,
    /// The exchange asked us to stay away at least this long (Retry-After, ban).
    pub hold_off: Option<Duration>,
}

/// Permission to make one call.
#[derive(Debug, Clone, PartialEq)]
pub enum Permit {
    /// Call, then report with [`BreakerStore::record`] passing this permit.
    Granted(Grant),
    /// Do not call; try again after `retry_in`.
    Denied {
        state: BreakerState,
        retry_in: Duration,
    },
}

/// Carries what the store needs to attribute the result (e.g. the half-open
/// probe lease and the generation it was granted in).
#[derive(Debug, Clone, PartialEq)]
pub struct Grant {
    pub state: BreakerState,
    /// The machine's generation when granted; a result from an older
    /// generation is ignored (except a ban).
    pub generation: u64,
    /// The half-open probe lease this call holds (`None` outside half-open).
    pub lease: Option<String>,
    /// Which store granted it, so the result goes back to the same one even if
    /// Redis failed or recovered in between.
    pub backend: StoreKind,
}

/// Why a store could not answer. The memory store never fails.
#[derive(Debug, thiserror::Error)]
pub enum BreakerError {
    /// Redis refused or failed (the message never carries the URL).
    #[error("redis: {0}")]
    Redis(String),
    /// Redis did not answer within the store's timeout.
    #[error("timed out talking to the breaker store")]
    Timeout,
    /// The compare-and-set on this breaker key kept losing (16 times in a
    /// row): something rewrites it in a loop.
    #[error("breaker {0} is changing too fast to update (compare-and-set kept failing)")]
    Contended(String),
}

/// Where breakers live: [`MemoryBreakers`], [`RedisBreakers`] or
/// [`ResilientBreakers`]. Every method may return the [`Transition`] it
/// caused, for the event stream.
pub trait BreakerStore: Send + Sync {
    /// Ask to make one call. Also returns the transition the asking caused
    /// (open → half-open once the wait is over), for the event stream.
    fn permit<'a>(
        &'a self,
        id: &'a EndpointId,
    ) -> BoxFuture<'a, Result<(Permit, Option<Transition>), BreakerError>>;
    /// Report the result of a call made under `grant` (to the store that
    /// granted it).
    fn record<'a>(
        &'a self,
        id: &'a EndpointId,
        grant: &'a Grant,
        result: CallResult,
    ) -> BoxFuture<'a, Result<Option<Transition>, BreakerError>>;
    /// Manual control: stop calling the endpoint until reset.
    fn force_open<'a>(
        &'a self,
        id: &'a EndpointId,
    ) -> BoxFuture<'a, Result<Option<Transition>, BreakerError>>;
    /// Manual control: close the breaker and forget its history.
    fn reset<'a>(
        &'a self,
        id: &'a EndpointId,
    ) -> BoxFuture<'a, Result<Option<Transition>, BreakerError>>;
    /// What the UI shows of the breaker.
    fn view<'a>(&'a self, id: &'a EndpointId) -> BoxFuture<'a, Result<BreakerView, BreakerError>>;
}
