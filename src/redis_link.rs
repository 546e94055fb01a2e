//! One Redis connection shared by the Redis-backed parts of exwatch (the rate
//! limiter, the breaker store): URL from an environment variable, `redis://`
//! or `rediss://`, a single node or a cluster (detected on connect), every
//! call bounded by the configured timeout, and Lua scripts run by EVALSHA
//! with a reload when the server forgot them (restart, `SCRIPT FLUSH`).
//!
//! The link never reconnects behind its owner's back in a loop: a failed call
//! drops a broken connection and the next call (or [`RedisLink::health`])
//! connects again, once, within the timeout. Owners that want backoff run it
//! themselves (see the limiter's recovery task).

use redis::aio::MultiplexedConnection;
use redis::cluster_async::ClusterConnection;
use redis::{AsyncConnectionConfig, Client, Cmd, FromRedisValue, IntoConnectionInfo, ToRedisArgs};
use serde::Deserialize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;
use std::time::Instant;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedisConfig {
    /// Name of the environment variable holding the Redis URL (`redis://` or `rediss://`, password included).
    pub url_env: String,
    #[serde(default = "default_redis_timeout", with = "humantime_serde")]
    pub timeout: Duration,
    /// PEM file of the CA that signed the server's certificate, for
    /// `rediss://` with a private CA (default: the system's roots).
    #[serde(default)]
    pub tls_ca_file: Option<std::path::PathBuf>,
}

fn default_redis_timeout() -> Duration {
    Duration::from_millis(500)
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum LinkError {
    #[error("environment variable {var} (named by redis.url_env) is not set")]
    MissingEnv { var: String },
    #[error("environment variable {var} does not hold a usable Redis URL: {reason}")]
    BadUrl { var: String, reason: String },
    #[error("cannot read the Redis TLS CA file {path}: {reason}")]
    CaFile { path: String, reason: String },
    #[error("no answer from Redis within {0:?}")]
    Timeout(Duration),
    #[error("not connected to Redis")]
    NotConnected,
    #[error("redis {kind}: {detail}")]
    Redis {
        kind: String,
        detail: String,
        connection: bool,
    },
    #[error("unexpected reply from Redis: {0}")]
    Reply(String),
}

impl LinkError {
    /// The connection itself is in doubt (as opposed to a command being
    /// refused): the owner should treat Redis as unavailable.
    pub fn is_connection_problem(&self) -> bool {
        match self {
            LinkError::Timeout(_) | LinkError::NotConnected => true,
            LinkError::Redis { connection, .. } => *connection,
            _ => false,
        }
    }

    fn from_redis(e: &redis::RedisError) -> Self {
        let connection = e.is_io_error()
            || e.is_connection_dropped()
            || e.is_connection_refusal()
            || e.is_timeout();
        // `detail` never carries the URL (and so never the password).
        LinkError::Redis {
            kind: e.category().to_string(),
            detail: e
                .detail()
                .map(str::to_string)
                .unwrap_or_else(|| e.to_string()),
            connection,
        }
    }
}

/// A Lua script, with its SHA1 computed once.
#[derive(Debug, Clone)]
pub struct LinkScript {
    body: &'static str,
    sha: String,
}

impl LinkScript {
    pub fn new(body: &'static str) -> Self {
        LinkScript {
            body,
            sha: redis::Script::new(body).get_hash().to_string(),
        }
    }

    pub fn sha(&self) -> &str {
        &self.sha
    }

    pub fn body(&self) -> &'static str {
        self.body
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Topology {
    Single,
    Cluster,
}

#[derive(Clone)]
enum Conn {
    Single(MultiplexedConnection),
    Cluster(ClusterConnection),
}

impl Conn {
    async fn query<T: FromRedisValue>(&mut self, cmd: &Cmd) -> redis::RedisResult<T> {
        match self {
            Conn::Single(c) => cmd.query_async(c).await,
            Conn::Cluster(c) => cmd.query_async(c).await,
        }
    }
}

struct Inner {
    /// Seed nodes; their `Debug` is never printed (they hold the password).
    seeds: Vec<redis::ConnectionInfo>,
    timeout: Duration,
    /// A private CA for `rediss://` (PEM), instead of the system roots.
    root_cert: Option<Vec<u8>>,
    conn: RwLock<Option<(u64, Conn, Topology)>>,
    /// Serializes connection attempts so a burst of callers makes one.
    connecting: tokio::sync::Mutex<()>,
    generation: AtomicU64,
    round_trips: AtomicU64,
}

/// How a Redis-backed part (rate limiter, breaker store, alert dedup)
/// stands: what the banner, the journal, metrics and headless lines show
/// (worded per part by `monitor::health::report`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkHealth {
    /// Kept in this process, by configuration: nothing to report.
    Local,
    /// Shared in Redis, which answers.
    Shared,
    /// Redis is configured but unreachable since `since_ms` (unix ms),
    /// `error` the latest failure: until Redis answers, the part works for
    /// this instance alone (from memory; the limiter as its outage policy
    /// says, which may be to hold polls).
    Degraded { since_ms: i64, error: String },
}

/// A cheap-to-clone handle on one Redis (or Redis Cluster) connection.
#[derive(Clone)]
pub struct RedisLink {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for RedisLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisLink")
            .field("seeds", &self.inner.seeds.len())
            .field("timeout", &self.inner.timeout)
            .field("topology", &self.topology())
            .finish_non_exhaustive()
    }
}

impl RedisLink {
    /// The link [`RedisConfig`] describes: URL from the environment variable
    /// it names. No I/O yet.
    pub fn from_config(cfg: &RedisConfig) -> Result<Self, LinkError> {
        let link = Self::from_env(&cfg.url_env, cfg.timeout)?;
        match &cfg.tls_ca_file {
            None => Ok(link),
            Some(path) => {
                let pem = std::fs::read(path).map_err(|e| LinkError::CaFile {
                    path: path.display().to_string(),
                    reason: e.to_string(),
                })?;
                Ok(link.with_root_cert(pem))
            }
        }
    }

    /// Trust this CA (PEM) for `rediss://` instead of the system roots.
    /// Call before the first connection.
    pub fn with_root_cert(self, pem: Vec<u8>) -> Self {
        let inner = Inner {
            seeds: self.inner.seeds.clone(),
            timeout: self.inner.timeout,
            root_cert: Some(pem),
            conn: RwLock::new(None),
            connecting: tokio::sync::Mutex::new(()),
            generation: AtomicU64::new(0),
            round_trips: AtomicU64::new(0),
        };
        RedisLink {
            inner: Arc::new(inner),
        }
    }

    pub fn from_env(var: &str, timeout: Duration) -> Result<Self, LinkError> {
        let url = std::env::var(var).map_err(|_| LinkError::MissingEnv {
            var: var.to_string(),
        })?;
        Self::new(&url, timeout).map_err(|e| match e {
            LinkError::BadUrl { reason, .. } => LinkError::BadUrl {
                var: var.to_string(),
                reason,
            },
            other => other,
        })
    }

    /// `urls`: one `redis://` / `rediss://` URL, or several separated by
    /// commas (cluster seed nodes). No I/O yet. Each URL is registered with
    /// the process's scrubber ([`crate::secrets`]): its password never
    /// reaches a log line, the journal or the screen.
    pub fn new(urls: &str, timeout: Duration) -> Result<Self, LinkError> {
        let bad = |reason: String| LinkError::BadUrl {
            var: "(url)".into(),
            reason,
        };
        let mut seeds = Vec::new();
        for u in urls.split(',').map(str::trim).filter(|u| !u.is_empty()) {
            crate::secrets::register(u);
            let scheme = u.split("://").next().unwrap_or_default();
            if scheme != "redis" && scheme != "rediss" {
                return Err(bad(format!(
                    "scheme `{scheme}` is not redis:// or rediss://"
                )));
            }
            let info = u
                .into_connection_info()
                .map_err(|e| bad(e.category().to_string()))?;
            seeds.push(info);
        }
        if seeds.is_empty() {
            return Err(bad("empty".into()));
        }
        Ok(RedisLink {
            inner: Arc::new(Inner {
                seeds,
                timeout,
                root_cert: None,
                conn: RwLock::new(None),
                connecting: tokio::sync::Mutex::new(()),
                generation: AtomicU64::new(0),
                round_trips: AtomicU64::new(0),
            }),
        })
    }

    pub fn timeout(&self) -> Duration {
        self.inner.timeout
    }

    /// Commands sent to Redis so far (one per round trip; a NOSCRIPT reload
    /// counts as a second one).
    pub fn round_trips(&self) -> u64 {
        self.inner.round_trips.load(Ordering::Relaxed)
    }

    pub fn topology(&self) -> Option<Topology> {
        self.read_conn().map(|(_, _, t)| t)
    }

    fn read_conn(&self) -> Option<(u64, Conn, Topology)> {
        self.inner
            .conn
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Forget the connection of `generation` (if it is still the current one)
    /// so the next call connects afresh.
    fn drop_conn(&self, generation: u64) {
        let mut slot = self.inner.conn.write().unwrap_or_else(|p| p.into_inner());
        if slot.as_ref().is_some_and(|(g, _, _)| *g == generation) {
            *slot = None;
        }
    }

    /// Connect (or reconnect), detecting a cluster, within the timeout.
    pub async fn connect(&self) -> Result<Topology, LinkError> {
        let _one_at_a_time = self.inner.connecting.lock().await;
        self.open_and_store().await
    }

    async fn open_and_store(&self) -> Result<Topology, LinkError> {
        let t = self.inner.timeout;
        let (conn, topology) = tokio::time::timeout(t, self.open())
            .await
            .map_err(|_| LinkError::Timeout(t))??;
        let generation = self.inner.generation.fetch_add(1, Ordering::Relaxed) + 1;
        *self.inner.conn.write().unwrap_or_else(|p| p.into_inner()) =
            Some((generation, conn, topology));
        Ok(topology)
    }

    async fn open(&self) -> Result<(Conn, Topology), LinkError> {
        let t = self.inner.timeout;
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(t))
            .set_response_timeout(Some(t));
        let seed = self
            .inner
            .seeds
            .first()
            .cloned()
            .ok_or(LinkError::NotConnected)?;
        let client = match &self.inner.root_cert {
            None => Client::open(seed),
            Some(pem) => Client::build_with_tls(seed, self.certs(pem)),
        }
        .map_err(|e| LinkError::from_redis(&e))?;
        let mut single = client
            .get_multiplexed_async_connection_with_config(&config)
            .await
            .map_err(|e| LinkError::from_redis(&e))?;
        self.inner.round_trips.fetch_add(1, Ordering::Relaxed);
        let info: String = redis::cmd("INFO")
            .arg("cluster")
            .query_async(&mut single)
            .await
            .map_err(|e| LinkError::from_redis(&e))?;
        if !info.contains("cluster_enabled:1") {
            return Ok((Conn::Single(single), Topology::Single));
        }
        let mut builder = redis::cluster::ClusterClientBuilder::new(self.inner.seeds.clone())
            .connection_timeout(t)
            .response_timeout(t)
            .retries(1);
        if let Some(pem) = &self.inner.root_cert {
            builder = builder.certs(self.certs(pem));
        }
        let cluster = builder.build().map_err(|e| LinkError::from_redis(&e))?;
        let conn = cluster
            .get_async_connection()
            .await
            .map_err(|e| LinkError::from_redis(&e))?;
        Ok((Conn::Cluster(conn), Topology::Cluster))
    }

    fn certs(&self, pem: &[u8]) -> redis::TlsCertificates {
        redis::TlsCertificates {
            client_tls: None,
            root_cert: Some(pem.to_vec()),
        }
    }

    /// The current connection, connecting once if there is none.
    async fn conn(&self) -> Result<(u64, Conn), LinkError> {
        if let Some((g, c, _)) = self.read_conn() {
            return Ok((g, c));
        }
        let _one_at_a_time = self.inner.connecting.lock().await;
        // Someone else may have connected while we waited.
        if let Some((g, c, _)) = self.read_conn() {
            return Ok((g, c));
        }
        self.open_and_store().await?;
        self.read_conn()
            .map(|(g, c, _)| (g, c))
            .ok_or(LinkError::NotConnected)
    }

    /// Run one command within the timeout; a broken connection is dropped.
    pub async fn query<T: FromRedisValue>(&self, cmd: &Cmd) -> Result<T, LinkError> {
        let (generation, mut conn) = self.conn().await?;
        self.query_on(generation, &mut conn, cmd).await
    }

    async fn query_on<T: FromRedisValue>(
        &self,
        generation: u64,
        conn: &mut Conn,
        cmd: &Cmd,
    ) -> Result<T, LinkError> {
        self.inner.round_trips.fetch_add(1, Ordering::Relaxed);
        let t = self.inner.timeout;
        match tokio::time::timeout(t, conn.query(cmd)).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => {
                let err = LinkError::from_redis(&e);
                if err.is_connection_problem() {
                    self.drop_conn(generation);
                }
                Err(err)
            }
            Err(_) => Err(LinkError::Timeout(t)),
        }
    }

    /// Run a script by EVALSHA; if the server does not know it (restart,
    /// `SCRIPT FLUSH`), send it once with EVAL, which also caches it again.
    /// All `keys` must share one hash tag on a cluster.
    pub async fn run_script<K, A, T>(
        &self,
        script: &LinkScript,
        keys: &[K],
        args: &[A],
    ) -> Result<T, LinkError>
    where
        K: ToRedisArgs,
        A: ToRedisArgs,
        T: FromRedisValue,
    {
        let (generation, mut conn) = self.conn().await?;
        let mut cmd = redis::cmd("EVALSHA");
        cmd.arg(script.sha()).arg(keys.len()).arg(keys).arg(args);
        match self.query_on(generation, &mut conn, &cmd).await {
            Err(LinkError::Redis { ref kind, .. }) if kind == "no script" => {
                let mut cmd = redis::cmd("EVAL");
                cmd.arg(script.body()).arg(keys.len()).arg(keys).arg(args);
                self.query_on(generation, &mut conn, &cmd).await
            }
            other => other,
        }
    }

    /// PING round trip (connecting first if needed). A failure drops the
    /// connection, so a half-open socket cannot keep the link down forever.
    pub async fn health(&self) -> Result<Duration, LinkError> {
        let (generation, mut conn) = self.conn().await?;
        let start = Instant::now();
        let pong: Result<String, LinkError> = self
            .query_on(generation, &mut conn, &redis::cmd("PING"))
            .await;
        match pong {
            Ok(p) if p == "PONG" => Ok(start.elapsed()),
            Ok(other) => Err(LinkError::Reply(other)),
            Err(e) => {
                self.drop_conn(generation);
                Err(e)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_checked_without_io() {
        let t = Duration::from_millis(100);
        assert!(RedisLink::new("redis://127.0.0.1:6379/", t).is_ok());
        assert!(RedisLink::new("rediss://:secret@example.invalid:6380/#insecure", t).is_ok());
        assert!(RedisLink::new("redis://127.0.0.1:7000,redis://127.0.0.1:7001", t).is_ok());
        let e = RedisLink::new("http://127.0.0.1:6379", t)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("redis://"), "{e}");
        assert!(RedisLink::new("", t).is_err());
    }

    #[test]
    fn a_missing_variable_is_named() {
        let e = RedisLink::from_env("EXWATCH_TEST_SURELY_UNSET_VAR", Duration::from_millis(100))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("EXWATCH_TEST_SURELY_UNSET_VAR"), "{e}");
    }

    #[test]
    fn debug_never_shows_the_password() {
        let link = RedisLink::new(
            "redis://:hunter2@127.0.0.1:6379/",
            Duration::from_millis(100),
        );
        let shown = format!("{link:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
    }
}
