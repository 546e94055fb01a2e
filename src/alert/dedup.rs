//! Cross-instance dedup of notifications: before sending, a notification is
//! claimed with `SET key instance NX PX ttl`; only the instance whose SET
//! succeeded sends it. The key is derived from the notification's content
//! (group, alerts, their states), so N instances watching the same incident
//! produce the same key and one message. Keys carry a hash tag so Redis
//! Cluster keeps them on one slot family.
//!
//! Without Redis, claims are kept in memory (one instance: every claim but
//! duplicates within the TTL succeeds). If Redis fails, the claim falls back
//! to memory: a Redis outage may cause a duplicate message, never a lost one.

use crate::problems::Problems;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

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

/// Claims in a shared Redis (connection made lazily, re-made after failures).
pub struct RedisClaims {
    client: redis::Client,
    timeout: Duration,
    instance: String,
    conn: tokio::sync::Mutex<Option<ConnectionManager>>,
    fallback: MemoryClaims,
}

impl std::fmt::Debug for RedisClaims {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The client holds the URL, password included: never print it.
        f.debug_struct("RedisClaims")
            .field("timeout", &self.timeout)
            .field("instance", &self.instance)
            .finish_non_exhaustive()
    }
}

impl RedisClaims {
    /// `url` is the Redis URL (read from the env var named in config).
    pub fn new(url: &str, timeout: Duration, instance: &str) -> Result<Self, DedupError> {
        let client = redis::Client::open(url).map_err(|e| DedupError::Redis(e.to_string()))?;
        Ok(RedisClaims {
            client,
            timeout,
            instance: instance.into(),
            conn: tokio::sync::Mutex::new(None),
            fallback: MemoryClaims::default(),
        })
    }

    async fn connection(&self) -> Result<ConnectionManager, DedupError> {
        let mut guard = self.conn.lock().await;
        if let Some(c) = guard.as_ref() {
            return Ok(c.clone());
        }
        let cfg = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(self.timeout))
            .set_response_timeout(Some(self.timeout))
            .set_number_of_retries(1);
        let c = tokio::time::timeout(
            self.timeout * 2,
            ConnectionManager::new_with_config(self.client.clone(), cfg),
        )
        .await
        .map_err(|_| DedupError::Timeout(self.timeout))?
        .map_err(|e| DedupError::Redis(e.to_string()))?;
        *guard = Some(c.clone());
        Ok(c)
    }

    pub async fn try_claim(&self, key: &str, ttl: Duration) -> Result<bool, DedupError> {
        let mut c = self.connection().await?;
        let ttl_ms = ttl.as_millis().max(1) as u64;
        let cmd = redis::cmd("SET")
            .arg(key)
            .arg(&self.instance)
            .arg("NX")
            .arg("PX")
            .arg(ttl_ms)
            .to_owned();
        let r: Option<String> = tokio::time::timeout(self.timeout, cmd.query_async(&mut c))
            .await
            .map_err(|_| DedupError::Timeout(self.timeout))?
            .map_err(|e| DedupError::Redis(e.to_string()))?;
        Ok(r.is_some())
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
        let now = crate::clock::wall_ms();
        match self {
            Claims::Memory(m, prefix) => m.claim_at(&claim_key(prefix, signature), ttl, now),
            Claims::Redis(r, prefix) => {
                let key = claim_key(prefix, signature);
                match r.try_claim(&key, ttl).await {
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
