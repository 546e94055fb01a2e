//! The Redis store with a fallback: while Redis is unreachable it serves
//! from a [`MemoryBreakers`] seeded with the last state seen in Redis,
//! reports that on a `watch` channel of [`LinkHealth`], retries Redis
//! every `retry_every`, and on its return writes into Redis what opened
//! meanwhile ([`RedisBreakers::adopt`]).

use super::memory::MemoryBreakers;
use super::redis::RedisBreakers;
use super::{BreakerError, BreakerStore, CallResult, Grant, Permit, StoreKind};
use crate::model::{BreakerView, EndpointId, Transition};
use crate::redis_link::LinkHealth;
use futures::future::BoxFuture;
use std::future::Future;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;
use tokio::sync::watch;

/// How often a degraded store tries Redis again.
pub const DEFAULT_RETRY_EVERY: Duration = Duration::from_secs(2);

/// The Redis store with an in-memory fallback.
pub struct ResilientBreakers {
    redis: RedisBreakers,
    memory: MemoryBreakers,
    health: watch::Sender<LinkHealth>,
    retry_every: Duration,
    /// While degraded, unix ms before which nobody tries Redis again.
    next_try_ms: AtomicI64,
}

impl ResilientBreakers {
    /// Wrap `redis`, healthy until a call fails; the receiver follows the
    /// health. A degraded store tries Redis again every `retry_every`.
    pub fn new(redis: RedisBreakers, retry_every: Duration) -> (Self, watch::Receiver<LinkHealth>) {
        let memory = MemoryBreakers::new(redis.default.clone(), redis.settings.clone());
        let (health, rx) = watch::channel(LinkHealth::Shared);
        let store = ResilientBreakers {
            redis,
            memory,
            health,
            retry_every,
            next_try_ms: AtomicI64::new(0),
        };
        (store, rx)
    }

    /// The health right now.
    pub fn health(&self) -> LinkHealth {
        self.health.borrow().clone()
    }

    /// Ask Redis now and mark the store degraded if it does not answer
    /// (at start, to learn the truth before the first probe).
    pub(super) async fn check_redis(&self) {
        if let Err(e) = self.redis.ping().await {
            self.mark_down(&e);
        }
    }

    fn degraded(&self) -> bool {
        matches!(*self.health.borrow(), LinkHealth::Degraded { .. })
    }

    /// Whether this call should go to Redis: always when healthy; while
    /// degraded, one caller per `retry_every` finds out if it is back.
    fn try_redis(&self) -> bool {
        if !self.degraded() {
            return true;
        }
        let now = crate::clock::now_ms();
        let next = self.next_try_ms.load(Ordering::Acquire);
        let after = now + self.retry_every.as_millis() as i64;
        now >= next
            && self
                .next_try_ms
                .compare_exchange(next, after, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
    }

    fn mark_down(&self, error: &BreakerError) {
        let now = crate::clock::now_ms();
        self.next_try_ms
            .store(now + self.retry_every.as_millis() as i64, Ordering::Release);
        let error = error.to_string();
        self.health.send_if_modified(|h| match h {
            LinkHealth::Degraded { .. } => false,
            _ => {
                tracing::warn!(%error, "breaker store: Redis unreachable, deciding from memory");
                *h = LinkHealth::Degraded {
                    since_ms: now,
                    error,
                };
                true
            }
        });
    }

    /// Redis answered. If it was away, share what opened meanwhile and let
    /// the next outage start again from Redis's state.
    async fn mark_up(&self) {
        if !self.degraded() {
            return;
        }
        for (id, m) in self.memory.drain() {
            match self.redis.adopt(&id, &m).await {
                Ok(Some(t)) => {
                    tracing::info!(exchange = %id.exchange, endpoint = %id.endpoint, reason = %t.reason, "breaker shared after Redis outage")
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(exchange = %id.exchange, endpoint = %id.endpoint, error = %e, "could not share breaker after Redis outage")
                }
            }
        }
        tracing::info!("breaker store: Redis reachable again");
        self.health.send_replace(LinkHealth::Shared);
    }

    fn fallback(&self, id: &EndpointId) -> &MemoryBreakers {
        if let Some(mut m) = self.redis.last_seen(id) {
            m.leases.clear();
            self.memory.seed(id, m);
        }
        &self.memory
    }

    /// Run `op` on Redis if it is worth trying; `None` means use memory.
    async fn via_redis<T>(
        &self,
        op: impl Future<Output = Result<T, BreakerError>>,
    ) -> Option<Result<T, BreakerError>> {
        if !self.try_redis() {
            return None;
        }
        match op.await {
            Ok(v) => {
                self.mark_up().await;
                Some(Ok(v))
            }
            // Redis answered: the store works, the breaker is just busy.
            Err(e @ BreakerError::Contended(_)) => Some(Err(e)),
            Err(e) => {
                self.mark_down(&e);
                None
            }
        }
    }
}

impl BreakerStore for ResilientBreakers {
    fn permit<'a>(
        &'a self,
        id: &'a EndpointId,
    ) -> BoxFuture<'a, Result<(Permit, Option<Transition>), BreakerError>> {
        Box::pin(async move {
            if let Some(r) = self.via_redis(self.redis.permit_shared(id)).await {
                return r;
            }
            self.fallback(id).permit(id).await
        })
    }

    fn record<'a>(
        &'a self,
        id: &'a EndpointId,
        grant: &'a Grant,
        result: CallResult,
    ) -> BoxFuture<'a, Result<Option<Transition>, BreakerError>> {
        Box::pin(async move {
            if grant.backend == StoreKind::Memory {
                return self.fallback(id).record(id, grant, result).await;
            }
            // Lost if Redis went away meanwhile: a Redis generation means
            // nothing to the memory machine. The next calls count in memory.
            if let Some(r) = self
                .via_redis(self.redis.record_shared(id, grant, result))
                .await
            {
                return r;
            }
            Ok(None)
        })
    }

    fn force_open<'a>(
        &'a self,
        id: &'a EndpointId,
    ) -> BoxFuture<'a, Result<Option<Transition>, BreakerError>> {
        Box::pin(async move {
            if let Some(r) = self
                .via_redis(self.redis.update(id, |m| m.force_open()))
                .await
            {
                return r;
            }
            // Shared with Redis on its return, by mark_up.
            self.fallback(id).force_open(id).await
        })
    }

    fn reset<'a>(
        &'a self,
        id: &'a EndpointId,
    ) -> BoxFuture<'a, Result<Option<Transition>, BreakerError>> {
        Box::pin(async move {
            if let Some(r) = self.via_redis(self.redis.update(id, |m| m.reset())).await {
                return r;
            }
            self.fallback(id).reset(id).await
        })
    }

    fn view<'a>(&'a self, id: &'a EndpointId) -> BoxFuture<'a, Result<BreakerView, BreakerError>> {
        Box::pin(async move {
            if let Some(r) = self.via_redis(self.redis.view_shared(id)).await {
                return r;
            }
            self.fallback(id).view(id).await
        })
    }
}
