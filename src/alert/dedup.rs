//! Cross-instance dedup of notifications: before sending, a notification is
//! claimed with `SET key instance NX PX ttl`; only the instance whose SET
//! succeeded sends it. The key is derived from the notification's content
//! (group, alerts, their states), so N instances watching the same incident
//! produce the same key and one message. Keys carry a hash tag so Redis
//! Cluster keeps them on one slot family.
//!
//! Without Redis, claims are kept in memory (one instance: every claim but
//! duplicates within the TTL succeeds). If Redis fails, the claim falls back
//! to memory: a Redis outage may cause a duplicate message, never a lost one,
//! and it shows as a degraded `redis (dedup)` backend like the limiter's and
//! the breaker store's.

use crate::problems::Problems;
use crate::redis_link::{LinkHealth, RedisLink};
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;
use tokio::sync::watch;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DedupBackend {
    #[default]
    Memory,
    Redis,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DedupSettings {
    pub backend: DedupBackend,
    /// Prefix of the claim keys, so several deployments can share a Redis.
    pub key_prefix: String,
}

impl Default for DedupSettings {
    fn default() -> Self {
        DedupSettings {
            backend: DedupBackend::Memory,
            key_prefix: "exwatch".into(),
        }
    }
}

impl DedupSettings {
    pub fn validate(&self, at: &str, has_redis: bool, p: &mut Problems) {
        if self.backend == DedupBackend::Redis && !has_redis {
            p.push(
                format!("{at}.backend"),
                "`redis` needs a [redis] table with url_env",
            );
        }
        if self.key_prefix.is_empty() || self.key_prefix.contains(['{', '}', ' ']) {
            p.push(
                format!("{at}.key_prefix"),
                "must be non-empty, without spaces or braces",
            );
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DedupError {
    #[error("redis: {0}")]
    Redis(String),
    #[error("redis: no answer within {0:?}")]
    Timeout(Duration),
}

/// A short, stable key for a notification signature.
pub fn claim_key(prefix: &str, signature: &str) -> String {
    let crc = crc32fast::hash(signature.as_bytes());
    let rev: Vec<u8> = signature.bytes().rev().collect();
    let crc2 = crc32fast::hash(&rev);
    format!(
        "{prefix}:{{alerts}}:claim:{crc:08x}{crc2:08x}:{}",
        signature.len()
    )
}

/// In-memory claims with expiry.
#[derive(Debug, Default)]
pub struct MemoryClaims {
    held: Mutex<HashMap<String, i64>>,
}

impl MemoryClaims {
    pub fn claim_at(&self, key: &str, ttl: Duration, now_ms: i64) -> bool {
        let Ok(mut held) = self.held.lock() else {
            // A poisoned lock means a panic elsewhere; sending twice beats not sending.
            return true;
        };
        if held.len() > 4096 {
            held.retain(|_, until| *until > now_ms);
        }
        match held.get(key) {
            Some(until) if *until > now_ms => false,
            _ => {
                held.insert(key.to_string(), now_ms + crate::clock::ms(ttl));
                true
            }
        }
    }
}

/// Claims in a shared Redis, over a [`RedisLink`] (the supervisor's one link:
/// TLS CA and Cluster as configured under `[redis]`). When Redis fails, the
/// claim is decided in memory and the health channel says so; the next
/// claim that reaches Redis says it is back.
pub struct RedisClaims {
    link: RedisLink,
    instance: String,
    fallback: MemoryClaims,
    health: watch::Sender<LinkHealth>,
}

impl std::fmt::Debug for RedisClaims {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisClaims")
            .field("link", &self.link)
            .field("instance", &self.instance)
            .finish_non_exhaustive()
    }
}

impl RedisClaims {
    /// Claims on their own link to `url` (the Redis URL), every call bounded
    /// by `timeout`. Errors: a URL that does not parse.
    pub fn new(url: &str, timeout: Duration, instance: &str) -> Result<Self, DedupError> {
        let link = RedisLink::new(url, timeout).map_err(|e| DedupError::Redis(e.to_string()))?;
        Ok(Self::on_link(link, instance))
    }

    /// Claims on an existing link (shared with the limiter and the breaker store).
    pub fn on_link(link: RedisLink, instance: &str) -> Self {
        let (health, _) = watch::channel(LinkHealth::Shared);
        RedisClaims {
            link,
            instance: instance.into(),
            fallback: MemoryClaims::default(),
            health,
        }
    }

    /// Where claims are decided right now: `Shared`, or `Degraded` since the
    /// first failed claim until one reaches Redis again.
    pub fn health(&self) -> watch::Receiver<LinkHealth> {
        self.health.subscribe()
    }

    pub async fn try_claim(&self, key: &str, ttl: Duration) -> Result<bool, DedupError> {
        let ttl_ms = ttl.as_millis().max(1) as u64;
        let cmd = redis::cmd("SET")
            .arg(key)
            .arg(&self.instance)
            .arg("NX")
            .arg("PX")
            .arg(ttl_ms)
            .to_owned();
        let r: Option<String> = self
            .link
            .query(&cmd)
            .await
            .map_err(|e| DedupError::Redis(e.to_string()))?;
        Ok(r.is_some())
    }

    fn mark(&self, result: &Result<bool, DedupError>) {
        match result {
            Ok(_) => {
                self.health.send_if_modified(|h| {
                    let changed = *h != LinkHealth::Shared;
                    *h = LinkHealth::Shared;
                    changed
                });
            }
            Err(e) => {
                self.health.send_if_modified(|h| match h {
                    LinkHealth::Degraded { .. } => false,
                    _ => {
                        *h = LinkHealth::Degraded {
                            since_ms: crate::clock::now_ms(),
                            error: e.to_string(),
                        };
                        true
                    }
                });
            }
        }
    }
}

/// The dedup store a notifier uses.
#[derive(Debug)]
pub enum Claims {
    Memory(MemoryClaims, String),
    Redis(Box<RedisClaims>, String),
}

impl Claims {
    pub fn memory(prefix: &str) -> Self {
        Claims::Memory(MemoryClaims::default(), prefix.into())
    }

    pub fn redis(claims: RedisClaims, prefix: &str) -> Self {
        Claims::Redis(Box::new(claims), prefix.into())
    }

    /// True when this instance should send the notification with this signature.
    pub async fn claim(&self, signature: &str, ttl: Duration) -> bool {
        let now = crate::clock::now_ms();
        match self {
            Claims::Memory(m, prefix) => m.claim_at(&claim_key(prefix, signature), ttl, now),
            Claims::Redis(r, prefix) => {
                let key = claim_key(prefix, signature);
                let result = r.try_claim(&key, ttl).await;
                r.mark(&result);
                match result {
                    Ok(won) => won,
                    Err(e) => {
                        tracing::warn!(error = %e, "dedup claim failed, deciding locally");
                        r.fallback.claim_at(&key, ttl, now)
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_claims_expire() {
        let m = MemoryClaims::default();
        let ttl = Duration::from_secs(10);
        assert!(m.claim_at("k", ttl, 0));
        assert!(!m.claim_at("k", ttl, 9_999));
        assert!(m.claim_at("other", ttl, 9_999));
        assert!(m.claim_at("k", ttl, 10_000));
    }

    #[test]
    fn keys_are_stable_and_hash_tagged() {
        let a = claim_key("exwatch", "bin|critical|change|bin/t/error_rate=firing#1");
        assert_eq!(
            a,
            claim_key("exwatch", "bin|critical|change|bin/t/error_rate=firing#1")
        );
        assert_ne!(
            a,
            claim_key("exwatch", "bin|critical|change|bin/t/error_rate=resolved#1")
        );
        assert!(a.starts_with("exwatch:{alerts}:claim:"));
    }
}
