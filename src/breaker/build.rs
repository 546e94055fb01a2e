//! The factories: the breaker store the config asks for ([`build`],
//! [`build_with_retry`]) or the Redis store on an existing link
//! ([`build_on_link`]), each with the `watch` channel of its
//! [`LinkHealth`] (the supervisor reports its changes).

use super::memory::MemoryBreakers;
use super::redis::RedisBreakers;
use super::resilient::{DEFAULT_RETRY_EVERY, ResilientBreakers};
use super::{BreakerSettings, BreakerStore, StoreKind};
use crate::model::EndpointId;
use crate::redis_link::LinkHealth;
use crate::redis_link::RedisLink;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// The breaker store the config asks for, and its health.
///
/// `default.store` decides (the top-level `[breaker]` table): `memory`, or
/// `redis` at `redis_url` with every Redis call bounded by `timeout`. A Redis
/// store that cannot reach Redis still works, from memory, and says so on the
/// health channel; so does one with no URL (a config the validation should
/// have refused).
pub async fn build(
    default: BreakerSettings,
    settings: HashMap<EndpointId, BreakerSettings>,
    redis_url: Option<String>,
    timeout: Duration,
) -> (Arc<dyn BreakerStore>, watch::Receiver<LinkHealth>) {
    build_with_retry(default, settings, redis_url, timeout, DEFAULT_RETRY_EVERY).await
}

/// [`build`] with the interval at which a degraded store tries Redis again.
pub async fn build_with_retry(
    default: BreakerSettings,
    settings: HashMap<EndpointId, BreakerSettings>,
    redis_url: Option<String>,
    timeout: Duration,
    retry_every: Duration,
) -> (Arc<dyn BreakerStore>, watch::Receiver<LinkHealth>) {
    let degraded = |error: String| {
        watch::channel(LinkHealth::Degraded {
            since_ms: crate::clock::now_ms(),
            error,
        })
        .1
    };
    if default.store == StoreKind::Memory {
        let rx = watch::channel(LinkHealth::Local).1;
        return (Arc::new(MemoryBreakers::new(default, settings)), rx);
    }
    let Some(url) = redis_url else {
        let rx = degraded("breaker.store is redis but no Redis URL is set".into());
        return (Arc::new(MemoryBreakers::new(default, settings)), rx);
    };
    let redis = match RedisBreakers::new(&url, timeout, default.clone(), settings.clone()) {
        Ok(r) => r,
        Err(e) => {
            return (
                Arc::new(MemoryBreakers::new(default, settings)),
                degraded(e.to_string()),
            );
        }
    };
    on_redis(redis, retry_every).await
}

/// The Redis store with fallback on an existing link (e.g. the one built from
/// the `[redis]` table, with its TLS CA), whatever `default.store` says.
pub async fn build_on_link(
    default: BreakerSettings,
    settings: HashMap<EndpointId, BreakerSettings>,
    link: RedisLink,
) -> (Arc<dyn BreakerStore>, watch::Receiver<LinkHealth>) {
    let redis = RedisBreakers::with_link(link, default, settings);
    on_redis(redis, DEFAULT_RETRY_EVERY).await
}

async fn on_redis(
    redis: RedisBreakers,
    retry_every: Duration,
) -> (Arc<dyn BreakerStore>, watch::Receiver<LinkHealth>) {
    let (store, rx) = ResilientBreakers::new(redis, retry_every);
    // Learn the truth at start rather than on the first probe.
    store.check_redis().await;
    (Arc::new(store), rx)
}
