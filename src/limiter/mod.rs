//! Hierarchical weighted token buckets.
//!
//! A request names every bucket it must draw from (exchange/IP, endpoint,
//! and optionally account and source IP), each with its capacity and refill
//! rate, and a weight. A check debits every tier or none; when denied it says
//! which tier denied and how long to wait. Backends (memory, Redis) sit
//! behind [`RateLimiter`].

pub mod bucket;
pub mod memory;
pub mod redis;

use crate::model::RateLimitSignal;
use crate::model::{Tier, TierFill};
use crate::redis_link::LinkHealth;
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// Capacity (burst, in weight units) and refill rate (weight units per second).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BucketSpec {
    pub capacity: f64,
    pub refill_per_sec: f64,
}

/// One bucket a request draws from. `id` is globally unique and, for Redis,
/// already carries the exchange's hash tag: `{exw:<exchange>}:<tier>:<name>`.
#[derive(Debug, Clone, PartialEq)]
pub struct TierBucket {
    pub tier: Tier,
    pub id: String,
    pub spec: BucketSpec,
}

/// Everything a worker asks of the limiter, built once per endpoint.
#[derive(Debug, Clone, PartialEq)]
pub struct LimitRequest {
    pub exchange: String,
    pub tiers: Vec<TierBucket>,
    pub weight: u32,
}

impl LimitRequest {
    pub fn bucket_id(exchange: &str, tier: Tier, name: &str) -> String {
        format!("{{exw:{exchange}}}:{}:{name}", tier.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Decision {
    Granted,
    Denied { tier: Tier, retry_in: Duration },
}

#[derive(Debug, thiserror::Error)]
pub enum LimiterError {
    #[error("redis: {0}")]
    Redis(String),
    #[error("timed out talking to the limiter backend")]
    Timeout,
    #[error("limiter.backend = \"redis\" needs a [redis] table")]
    NoRedisConfig,
    #[error(transparent)]
    Link(#[from] crate::redis_link::LinkError),
}

/// What the exchange's signal asks of each tier of a request, computed once
/// from the signal and the local wall clock (the only clock the exchange's
/// absolute times can be compared with). Backends apply it on their own
/// clock: the hold is relative.
#[derive(Debug, Clone, PartialEq)]
pub struct SignalPlan {
    /// Block every tier of the request for this long (Retry-After, a ban,
    /// or a window reported exhausted until its reset).
    pub hold_ms: Option<f64>,
    /// Per tier, in request order: lower the tokens to this level.
    pub drain_to: Vec<Option<f64>>,
}

impl SignalPlan {
    pub fn new(req: &LimitRequest, signal: &RateLimitSignal, wall_now_ms: i64) -> Self {
        let mut hold_ms = signal
            .hold_off(wall_now_ms)
            .map(|d| d.as_secs_f64() * 1000.0);
        if signal.remaining == Some(0)
            && let Some(reset) = signal.reset_at_ms
            && reset > wall_now_ms
        {
            let until_reset = (reset - wall_now_ms) as f64;
            hold_ms = Some(hold_ms.map_or(until_reset, |h| h.max(until_reset)));
        }
        // Used weight (Binance) is per IP: the exchange tier. A bare
        // remaining count (Bybit) is per endpoint when we model one.
        let usage_tier = if signal.used.is_none()
            && signal.remaining.is_some()
            && req.tiers.iter().any(|t| t.tier == Tier::Endpoint)
        {
            Tier::Endpoint
        } else {
            Tier::Exchange
        };
        let drain_to = req
            .tiers
            .iter()
            .map(|t| {
                (t.tier == usage_tier)
                    .then(|| {
                        bucket::reported_level(&t.spec, signal.used, signal.limit, signal.remaining)
                    })
                    .flatten()
            })
            .collect();
        SignalPlan {
            hold_ms: hold_ms.filter(|h| *h > 0.0),
            drain_to,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.hold_ms.is_none() && self.drain_to.iter().all(Option::is_none)
    }
}

/// A rate-limit backend. Implementations must be all-or-nothing across tiers.
pub trait RateLimiter: Send + Sync {
    /// Try to take `req.weight` from every tier at once.
    fn check<'a>(&'a self, req: &'a LimitRequest) -> BoxFuture<'a, Result<Decision, LimiterError>>;
    /// The same check, answered at once when the backend needs no I/O for
    /// it (in memory; Redis while degraded), sparing the boxed future;
    /// `None` means "ask [`RateLimiter::check`]". [`acquire`] tries it first.
    fn check_now(&self, _req: &LimitRequest) -> Option<Decision> {
        None
    }
    /// Follow the exchange: drain or block the request's buckets as the signal says.
    fn apply_signal<'a>(
        &'a self,
        req: &'a LimitRequest,
        signal: &'a RateLimitSignal,
    ) -> BoxFuture<'a, Result<(), LimiterError>>;
    /// Current fill of each tier of a request, without debiting.
    fn fill<'a>(
        &'a self,
        req: &'a LimitRequest,
    ) -> BoxFuture<'a, Result<Vec<TierFill>, LimiterError>>;
}

/// The result of waiting for a permit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Acquired {
    /// Time spent waiting for the permit.
    pub waited: Duration,
    /// The tier that made us wait last, if any.
    pub waited_on: Option<Tier>,
}

/// Wait until the limiter grants the request. Never skips silently: the
/// caller learns how long it waited and on which tier. A request granted at
/// once waited zero: the clock is only read once a tier says wait (a clock
/// read costs as much as the whole in-memory check on some VMs).
pub async fn acquire(
    limiter: &dyn RateLimiter,
    req: &LimitRequest,
) -> Result<Acquired, LimiterError> {
    let mut start: Option<(tokio::time::Instant, Duration)> = None;
    let mut waited_on = None;
    loop {
        let decision = match limiter.check_now(req) {
            Some(d) => d,
            None => limiter.check(req).await?,
        };
        match decision {
            Decision::Granted => {
                return Ok(Acquired {
                    waited: start.map_or(Duration::ZERO, |(since, _)| since.elapsed()),
                    waited_on,
                });
            }
            Decision::Denied { tier, retry_in } => {
                let (since, scale) = *start
                    .get_or_insert_with(|| (tokio::time::Instant::now(), backoff_scale(retry_in)));
                waited_on = Some(tier);
                tokio::time::sleep(backoff(retry_in, since.elapsed(), scale)).await;
            }
        }
    }
}

/// How long a denied waiter sleeps before it checks again, having waited
/// `waited` so far: the wait the limiter named, then an offset that shrinks as
/// the waiter's total wait grows, then a little randomness.
///
/// Waiters told the same wait would otherwise wake on the same timer tick and
/// the same one would win every race for the next token. Here the offset is
/// measured in `scale` (half the first wait this acquire was told, 4 ms to
/// 1 s: about half a token's refill time when the budget is contended), and
/// reaches zero once the waiter will have waited six of them. The one that has
/// waited longest wakes first and takes the token, the one just served wakes
/// last, and the random part breaks ties; so tasks and instances sharing one
/// budget, each measuring only its own wait, take turns, and a herd released by
/// a `Retry-After` spreads out. Tokens keep refilling meanwhile, so the shared
/// rate is not lowered.
fn backoff(retry_in: Duration, waited: Duration, scale: Duration) -> Duration {
    use rand::Rng;
    // Never spin: a zero wait from rounding still yields a little.
    let base = retry_in.max(Duration::from_millis(1));
    let waited_then = (waited + base).as_secs_f64();
    let share_left = (1.0 - waited_then / (6.0 * scale.as_secs_f64())).max(0.0);
    base + scale.mul_f64(share_left) + rand::rng().random_range(Duration::ZERO..=scale / 8)
}

/// The `scale` of [`backoff`] for an acquire first told to wait `retry_in`.
fn backoff_scale(retry_in: Duration) -> Duration {
    (retry_in / 2).clamp(Duration::from_millis(4), Duration::from_secs(1))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LimiterBackend {
    Memory,
    Redis,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OutagePolicy {
    /// Fall back to this instance's share of the budget in memory.
    Local,
    /// Stop polling the exchange until Redis is back.
    Closed,
}

#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimiterSettings {
    pub backend: LimiterBackend,
    pub on_redis_outage: OutagePolicy,
    /// How many instances share the budget; in `local` fallback each gets 1/instances of it.
    pub instances: u32,
}

impl Default for LimiterSettings {
    fn default() -> Self {
        LimiterSettings {
            backend: LimiterBackend::Memory,
            on_redis_outage: OutagePolicy::Local,
            instances: 1,
        }
    }
}

/// The limiter the settings ask for, and the `watch` channel of its
/// [`LinkHealth`]: [`LinkHealth::Local`] for the memory backend (its sender
/// is dropped at once: `changed()` errors, nothing ever changes);
/// [`LinkHealth::Shared`] or [`LinkHealth::Degraded`] for Redis, under
/// `settings.on_redis_outage` while degraded. With Redis, the URL comes from
/// the environment variable `redis.url_env` names; Redis being unreachable at
/// start is not an error (the limiter starts degraded and recovers by
/// itself), a missing variable or a bad URL is.
pub async fn build(
    settings: &LimiterSettings,
    redis: Option<&crate::redis_link::RedisConfig>,
) -> Result<(Arc<dyn RateLimiter>, watch::Receiver<LinkHealth>), LimiterError> {
    match settings.backend {
        LimiterBackend::Memory => build_on_link(settings, None).await,
        LimiterBackend::Redis => {
            let cfg = redis.ok_or(LimiterError::NoRedisConfig)?;
            let link = crate::redis_link::RedisLink::from_config(cfg)?;
            build_on_link(settings, Some(link)).await
        }
    }
}

/// [`build`] on an existing link (the supervisor's one Redis link, shared
/// with the breaker store and alert dedup), with the same health channel.
/// Errors: the Redis backend without a link.
pub async fn build_on_link(
    settings: &LimiterSettings,
    link: Option<crate::redis_link::RedisLink>,
) -> Result<(Arc<dyn RateLimiter>, watch::Receiver<LinkHealth>), LimiterError> {
    match (settings.backend, link) {
        (LimiterBackend::Memory, _) => {
            let rx = watch::channel(LinkHealth::Local).1;
            Ok((Arc::new(memory::MemoryLimiter::new()), rx))
        }
        (LimiterBackend::Redis, None) => Err(LimiterError::NoRedisConfig),
        (LimiterBackend::Redis, Some(link)) => {
            let limiter =
                redis::RedisLimiter::new(link, settings.on_redis_outage, settings.instances);
            // An unreachable Redis shows up on the health channel instead.
            let _ = limiter.connect().await;
            let rx = limiter.health();
            Ok((Arc::new(limiter), rx))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::memory::MemoryLimiter;
    use super::*;

    fn one_tier(capacity: f64, refill_per_sec: f64) -> LimitRequest {
        LimitRequest {
            exchange: "bn".into(),
            tiers: vec![TierBucket {
                tier: Tier::Endpoint,
                id: LimitRequest::bucket_id("bn", Tier::Endpoint, "depth"),
                spec: BucketSpec {
                    capacity,
                    refill_per_sec,
                },
            }],
            weight: 1,
        }
    }

    #[tokio::test]
    async fn acquire_reports_a_wait_only_when_a_tier_made_it_wait() {
        let l: Arc<dyn RateLimiter> = Arc::new(MemoryLimiter::new());
        // 1 token, 20 per second: the second request waits about 50 ms.
        let req = one_tier(1.0, 20.0);
        let first = acquire(l.as_ref(), &req).await.expect("first");
        assert_eq!(first.waited, Duration::ZERO);
        assert_eq!(first.waited_on, None);
        let second = acquire(l.as_ref(), &req).await.expect("second");
        assert_eq!(second.waited_on, Some(Tier::Endpoint));
        assert!(
            second.waited >= Duration::from_millis(30),
            "{:?}",
            second.waited
        );
    }

    #[test]
    fn check_now_and_check_agree_for_the_memory_backend() {
        use futures::FutureExt;
        let l = MemoryLimiter::new();
        let req = one_tier(2.0, 1e-9);
        assert_eq!(l.check_now(&req), Some(Decision::Granted));
        let boxed = l.check(&req).now_or_never().expect("ready").expect("ok");
        assert_eq!(boxed, Decision::Granted);
        assert!(matches!(
            l.check_now(&req),
            Some(Decision::Denied {
                tier: Tier::Endpoint,
                ..
            })
        ));
    }

    /// Three waiters on one bucket, each taking a token as soon as it may:
    /// every one of them gets about a third. Without jitter they wake on the
    /// same timer tick and the same task wins each race.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn waiters_sharing_a_bucket_get_fair_shares() {
        let l: Arc<dyn RateLimiter> = Arc::new(MemoryLimiter::new());
        let req = one_tier(3.0, 100.0);
        let stop = tokio::time::Instant::now() + Duration::from_millis(1500);
        let mut tasks = Vec::new();
        for _ in 0..3 {
            let l = Arc::clone(&l);
            let req = req.clone();
            tasks.push(tokio::spawn(async move {
                let mut got = 0u32;
                while tokio::time::Instant::now() < stop {
                    if acquire(l.as_ref(), &req).await.is_ok() {
                        got += 1;
                    }
                }
                got
            }));
        }
        let mut shares = Vec::new();
        for t in tasks {
            shares.push(t.await.expect("task") as f64);
        }
        let total: f64 = shares.iter().sum();
        assert!(total > 75.0, "the bucket was used: {shares:?}");
        for s in &shares {
            assert!(*s >= total / 3.0 * 0.7, "unfair shares {shares:?}");
        }
    }

    #[test]
    fn backoff_serves_the_longest_waiter_first() {
        let ms = Duration::from_millis;
        // Told 40 ms on its first denial: scale 20 ms, and it will have waited
        // 40 of the 120 ms after which the offset is gone.
        let scale = backoff_scale(ms(40));
        assert_eq!(scale, ms(20));
        let fresh = backoff(ms(40), Duration::ZERO, scale);
        assert!(fresh >= ms(53) && fresh <= ms(56) + scale / 8, "{fresh:?}");
        // One that has waited two turns already wakes before it...
        let older = backoff(ms(40), ms(40), scale);
        assert!(older < fresh && older <= ms(47) + scale / 8, "{older:?}");
        // ...and one that has waited long enough wakes as soon as it may.
        let oldest = backoff(ms(40), ms(100), scale);
        assert!(oldest <= ms(40) + scale / 8, "{oldest:?}");
        // The random part breaks ties between equal waiters.
        let tied: std::collections::HashSet<_> =
            (0..100).map(|_| backoff(ms(40), ms(200), scale)).collect();
        assert!(tied.len() > 20, "ties are broken: {}", tied.len());
        assert!(
            backoff(
                Duration::ZERO,
                Duration::ZERO,
                backoff_scale(Duration::ZERO)
            ) >= ms(1)
        );
        let ban = Duration::from_secs(3600);
        assert!(backoff(ban, Duration::ZERO, backoff_scale(ban)) <= ban + ms(1125));
    }
}
