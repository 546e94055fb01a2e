//! Redis store: one breaker shared by every instance, kept across restarts.
//!
//! Layout, per (exchange, endpoint), with the exchange as hash tag so every
//! key of one exchange lands on one Redis Cluster slot:
//!
//! ```text
//! {exw:<exchange>}:breaker:<endpoint>                      hash: state, generation, version,
//!                                                          consecutive_failures, trips, open_until,
//!                                                          hold_until, half_open_successes, forced,
//!                                                          window, updated_ms, reason
//! {exw:<exchange>}:breaker:<endpoint>:probe:<gen>:<slot>   string: lease token, SET NX PX probe_lease
//! ```
//!
//! Every change goes read → run the pure [`Machine`] at Redis server `TIME` →
//! write back with a Lua compare-and-set on `version`; a lost race re-reads
//! and runs again, so the state machine lives in one place (machine.rs) and
//! concurrent instances never overwrite each other's updates. A half-open
//! probe slot is a `SET NX PX` key, so a prober that crashes or hangs loses
//! its slot when the lease runs out.
//!
//! The hash fields are written by [`super::codec`], plus `version` (the
//! compare-and-set counter), `updated_ms` (Redis time of the last write) and
//! `reason` (the English [`TripCause`](crate::model::TripCause) of the last
//! transition, for an operator reading the hash).
//!
//! [`ResilientBreakers`](super::resilient::ResilientBreakers) wraps this
//! store and falls back to memory while Redis is unreachable.

use super::machine::{Machine, ProbeStatus};
use super::{BreakerError, BreakerSettings, BreakerStore, CallResult, Grant, Permit, StoreKind};
use crate::model::{BreakerState, BreakerView, EndpointId, Transition, TripCause};
use crate::redis_link::{LinkError, LinkScript, RedisLink};
use futures::future::BoxFuture;
use std::collections::HashMap;
use std::future::Future;
use std::sync::Mutex;
use std::time::Duration;

/// A compare-and-set that keeps losing means something rewrites the breaker
/// in a loop; give up rather than spin.
const MAX_CAS_ATTEMPTS: usize = 16;
/// A denied half-open caller re-asks at least this often.
const HALF_OPEN_RECHECK: Duration = Duration::from_secs(1);

/// Read the breaker (and optionally a probe lease) with the server's time.
const READ: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local h = redis.call('HGETALL', KEYS[1])
local lease = false
if KEYS[2] then lease = redis.call('GET', KEYS[2]) end
return {now, h, lease}
"#;

/// Compare-and-set: write the fields only if `version` is still ARGV[1];
/// with a lease token in ARGV[2], only if that lease is still held (and
/// release it). 1 written, 0 version moved, -1 lease lost.
const WRITE: &str = r#"
local v = redis.call('HGET', KEYS[1], 'version') or '0'
if v ~= ARGV[1] then return 0 end
if ARGV[2] ~= '' then
  if redis.call('GET', KEYS[2]) ~= ARGV[2] then return -1 end
  redis.call('DEL', KEYS[2])
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('HSET', KEYS[1], 'version', tostring(tonumber(ARGV[1]) + 1), 'updated_ms', tostring(now))
for i = 3, #ARGV, 2 do
  redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
end
return 1
"#;

/// Take a half-open probe slot of generation ARGV[1] (KEYS[2..] are its slot
/// keys). {slot, 0} taken; {-1, 0} the breaker moved on; {-2, ms} all slots
/// held, the first frees in ms.
const PROBE: &str = r#"
local h = redis.call('HMGET', KEYS[1], 'state', 'generation')
if h[1] ~= 'half_open' or h[2] ~= ARGV[1] then return {-1, 0} end
local wait = -1
for i = 2, #KEYS do
  if redis.call('SET', KEYS[i], ARGV[2], 'NX', 'PX', ARGV[3]) then return {i - 2, 0} end
  local ttl = redis.call('PTTL', KEYS[i])
  if ttl >= 0 and (wait < 0 or ttl < wait) then wait = ttl end
end
return {-2, wait}
"#;

/// The hash of one breaker.
pub fn breaker_key(id: &EndpointId) -> String {
    format!("{{exw:{}}}:breaker:{}", id.exchange, id.endpoint)
}

/// The key of one half-open probe slot of one generation.
pub fn probe_key(id: &EndpointId, generation: u64, slot: u32) -> String {
    format!("{}:probe:{generation}:{slot}", breaker_key(id))
}

/// The store's Redis connection: the shared link (single node or cluster,
/// TLS, EVALSHA with reload). Lazy: an unreachable Redis at start is an
/// outage to ride out, not a reason to fail.
fn connect(url: &str, timeout: Duration) -> Result<RedisLink, BreakerError> {
    // The link's errors never carry the URL (which may hold a password).
    RedisLink::new(url, timeout).map_err(|e| BreakerError::Redis(e.to_string()))
}

/// Where a read left the breaker.
struct Read {
    now_ms: i64,
    version: String,
    machine: Machine,
    lease: Option<String>,
}

/// The Redis store. Use it through [`build`](super::build()), which adds the
/// fallback to memory.
pub struct RedisBreakers {
    link: RedisLink,
    timeout: Duration,
    /// Per-breaker overrides; others use `default`.
    pub(super) settings: HashMap<EndpointId, BreakerSettings>,
    pub(super) default: BreakerSettings,
    read: LinkScript,
    write: LinkScript,
    probe: LinkScript,
    /// The last state read from or written to Redis, to seed the fallback.
    last_seen: Mutex<HashMap<EndpointId, Machine>>,
}

impl RedisBreakers {
    /// A store on its own link to `redis_url` (`redis://`, `rediss://`, or a
    /// cluster URL), every round trip bounded by `timeout`. Does not connect
    /// yet.
    ///
    /// # Errors
    /// [`BreakerError::Redis`] when the URL is unusable (the message never
    /// carries the URL, which may hold a password).
    pub fn new(
        redis_url: &str,
        timeout: Duration,
        default: BreakerSettings,
        settings: HashMap<EndpointId, BreakerSettings>,
    ) -> Result<Self, BreakerError> {
        Ok(Self::with_link(
            connect(redis_url, timeout)?,
            default,
            settings,
        ))
    }

    /// Ask Redis for a PONG, bounded like every call.
    pub(super) async fn ping(&self) -> Result<(), BreakerError> {
        self.bounded(self.link.health()).await.map(|_| ())
    }

    /// On an existing link (e.g. the one the limiter uses, built from the
    /// `[redis]` table with its TLS settings).
    pub fn with_link(
        link: RedisLink,
        default: BreakerSettings,
        settings: HashMap<EndpointId, BreakerSettings>,
    ) -> Self {
        RedisBreakers {
            timeout: link.timeout(),
            link,
            settings,
            default,
            read: LinkScript::new(READ),
            write: LinkScript::new(WRITE),
            probe: LinkScript::new(PROBE),
            last_seen: Mutex::new(HashMap::new()),
        }
    }

    fn settings(&self, id: &EndpointId) -> &BreakerSettings {
        self.settings.get(id).unwrap_or(&self.default)
    }

    /// The last state this instance saw in Redis for `id`.
    pub fn last_seen(&self, id: &EndpointId) -> Option<Machine> {
        let map = self.last_seen.lock().unwrap_or_else(|p| p.into_inner());
        map.get(id).cloned()
    }

    fn saw(&self, id: &EndpointId, m: &Machine) {
        let mut map = self.last_seen.lock().unwrap_or_else(|p| p.into_inner());
        map.insert(id.clone(), m.clone());
    }

    /// The link bounds each round trip (and a reconnect) by the timeout;
    /// this outer bound only guards against a stuck future.
    async fn bounded<T>(
        &self,
        f: impl Future<Output = Result<T, LinkError>>,
    ) -> Result<T, BreakerError> {
        match tokio::time::timeout(self.timeout * 3, f).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(LinkError::Timeout(_))) | Err(_) => Err(BreakerError::Timeout),
            Ok(Err(e)) => Err(BreakerError::Redis(e.to_string())),
        }
    }

    async fn read(&self, id: &EndpointId, lease_key: Option<&str>) -> Result<Read, BreakerError> {
        let mut keys = vec![breaker_key(id)];
        keys.extend(lease_key.map(str::to_string));
        let no_args: [&str; 0] = [];
        let (now_ms, flat, lease): (i64, Vec<String>, Option<String>) = self
            .bounded(self.link.run_script(&self.read, &keys, &no_args))
            .await?;
        let mut fields = HashMap::with_capacity(flat.len() / 2);
        let mut it = flat.into_iter();
        while let (Some(k), Some(v)) = (it.next(), it.next()) {
            fields.insert(k, v);
        }
        let version = fields.get("version").cloned().unwrap_or_else(|| "0".into());
        let machine = match Machine::from_fields(&fields) {
            Ok(m) => m,
            Err(e) => {
                // Start over rather than stop monitoring; the next write
                // replaces the damaged hash.
                tracing::warn!(key = %breaker_key(id), error = %e, "damaged breaker hash in Redis; starting it closed");
                Machine::default()
            }
        };
        Ok(Read {
            now_ms,
            version,
            machine,
            lease,
        })
    }

    /// Compare-and-set; `Ok(false)` when another writer got there first.
    async fn write(
        &self,
        id: &EndpointId,
        version: &str,
        m: &Machine,
        reason: Option<&TripCause>,
        release: Option<(&str, &str)>,
    ) -> Result<bool, BreakerError> {
        let (lease_key, token) = release.unwrap_or(("", ""));
        let mut keys = vec![breaker_key(id)];
        if !lease_key.is_empty() {
            keys.push(lease_key.to_string());
        }
        let mut args = vec![version.to_string(), token.to_string()];
        for (k, v) in m.to_fields() {
            args.push(k.to_string());
            args.push(v);
        }
        if let Some(r) = reason {
            args.push("reason".into());
            args.push(r.to_string());
        }
        let written: i64 = self
            .bounded(self.link.run_script(&self.write, &keys, &args))
            .await?;
        if written == 1 {
            self.saw(id, m);
        }
        Ok(written == 1)
    }

    /// [`BreakerStore::permit`]: moves open → half-open in Redis once the
    /// wait is over, and takes a probe slot key while half-open (the grant's
    /// lease is `<slot>:<token>`).
    ///
    /// # Errors
    /// [`BreakerError::Redis`] / [`BreakerError::Timeout`] when Redis fails;
    /// [`BreakerError::Contended`] after too many lost compare-and-sets.
    pub async fn permit_shared(
        &self,
        id: &EndpointId,
    ) -> Result<(Permit, Option<Transition>), BreakerError> {
        let s = self.settings(id);
        for _ in 0..MAX_CAS_ATTEMPTS {
            let Read {
                now_ms,
                version,
                mut machine,
                ..
            } = self.read(id, None).await?;
            let transition = machine.advance(now_ms);
            if let Some(t) = &transition {
                if !self
                    .write(id, &version, &machine, Some(&t.reason), None)
                    .await?
                {
                    continue;
                }
            } else {
                self.saw(id, &machine);
            }
            let state = machine.state;
            let generation = machine.generation;
            match state {
                BreakerState::Closed => {
                    let grant = Grant {
                        state,
                        generation,
                        lease: None,
                        backend: StoreKind::Redis,
                    };
                    return Ok((Permit::Granted(grant), transition));
                }
                BreakerState::Open => {
                    let retry_in = machine.denied_for(now_ms).unwrap_or(HALF_OPEN_RECHECK);
                    return Ok((Permit::Denied { state, retry_in }, transition));
                }
                BreakerState::HalfOpen => {
                    let token = format!("{:016x}", rand::random::<u64>());
                    let mut keys = vec![breaker_key(id)];
                    for slot in 0..s.half_open_probes.max(1) {
                        keys.push(probe_key(id, generation, slot));
                    }
                    let lease_ms = s.probe_lease.as_millis().clamp(1, i64::MAX as u128) as i64;
                    let args = [generation.to_string(), token.clone(), lease_ms.to_string()];
                    let (slot, wait_ms): (i64, i64) = self
                        .bounded(self.link.run_script(&self.probe, &keys, &args))
                        .await?;
                    match slot {
                        -1 => continue,
                        -2 => {
                            let retry_in = Duration::from_millis(wait_ms.max(1) as u64);
                            let denied = Permit::Denied {
                                state,
                                retry_in: retry_in.min(HALF_OPEN_RECHECK),
                            };
                            return Ok((denied, transition));
                        }
                        slot => {
                            let grant = Grant {
                                state,
                                generation,
                                lease: Some(format!("{slot}:{token}")),
                                backend: StoreKind::Redis,
                            };
                            return Ok((Permit::Granted(grant), transition));
                        }
                    }
                }
            }
        }
        Err(BreakerError::Contended(breaker_key(id)))
    }

    /// [`BreakerStore::record`]: runs the result through the machine and
    /// releases the probe slot the grant held. Errors as
    /// [`RedisBreakers::permit_shared`].
    pub async fn record_shared(
        &self,
        id: &EndpointId,
        grant: &Grant,
        result: CallResult,
    ) -> Result<Option<Transition>, BreakerError> {
        let s = self.settings(id);
        // "<slot>:<token>"; anything else cannot be a lease of this store.
        let lease = grant.lease.as_deref().map(|l| {
            let (slot, token) = l.split_once(':').unwrap_or(("", l));
            let key = slot
                .parse::<u32>()
                .ok()
                .map(|slot| probe_key(id, grant.generation, slot));
            (key, token)
        });
        let lease_key = lease.as_ref().and_then(|(k, _)| k.as_deref());
        for _ in 0..MAX_CAS_ATTEMPTS {
            let read = self.read(id, lease_key).await?;
            let mut machine = read.machine.clone();
            let status = match &lease {
                None => ProbeStatus::None,
                Some((Some(_), token)) if read.lease.as_deref() == Some(*token) => {
                    ProbeStatus::Held
                }
                Some(_) => ProbeStatus::Expired,
            };
            let transition = machine.apply(s, grant.generation, status, result, read.now_ms);
            let release = match (status, lease_key, &lease) {
                (ProbeStatus::Held, Some(k), Some((_, token))) => Some((k, *token)),
                _ => None,
            };
            if machine == read.machine && release.is_none() {
                self.saw(id, &machine);
                return Ok(transition);
            }
            let reason = transition.as_ref().map(|t| &t.reason);
            if self
                .write(id, &read.version, &machine, reason, release)
                .await?
            {
                return Ok(transition);
            }
        }
        Err(BreakerError::Contended(breaker_key(id)))
    }

    /// Read, change with `f`, write back; retried on a lost race.
    ///
    /// # Errors
    /// [`BreakerError::Contended`] after `MAX_CAS_ATTEMPTS` lost races;
    /// [`BreakerError::Redis`] or [`BreakerError::Timeout`] when Redis fails.
    pub(super) async fn update(
        &self,
        id: &EndpointId,
        f: impl Fn(&mut Machine) -> Option<Transition>,
    ) -> Result<Option<Transition>, BreakerError> {
        for _ in 0..MAX_CAS_ATTEMPTS {
            let read = self.read(id, None).await?;
            let mut machine = read.machine.clone();
            let transition = f(&mut machine);
            if machine == read.machine {
                self.saw(id, &machine);
                return Ok(transition);
            }
            let reason = transition.as_ref().map(|t| &t.reason);
            if self
                .write(id, &read.version, &machine, reason, None)
                .await?
            {
                return Ok(transition);
            }
        }
        Err(BreakerError::Contended(breaker_key(id)))
    }

    /// [`BreakerStore::view`] as stored in Redis.
    ///
    /// # Errors
    /// [`BreakerError::Redis`] / [`BreakerError::Timeout`] when Redis fails.
    pub async fn view_shared(&self, id: &EndpointId) -> Result<BreakerView, BreakerError> {
        let read = self.read(id, None).await?;
        self.saw(id, &read.machine);
        Ok(read.machine.view())
    }

    /// Carry a breaker that opened here while Redis was away into Redis,
    /// unless Redis already holds it open at least as long. The transition
    /// (cause [`TripCause::SharedAfterOutage`]) if Redis changed. Errors as
    /// [`RedisBreakers::update`].
    pub async fn adopt(
        &self,
        id: &EndpointId,
        local: &Machine,
    ) -> Result<Option<Transition>, BreakerError> {
        if local.state != BreakerState::Open {
            return Ok(None);
        }
        self.update(id, |m| {
            let covered = m.state == BreakerState::Open
                && (m.forced || (!local.forced && m.open_until_ms >= local.open_until_ms));
            if covered {
                return None;
            }
            let from = m.state;
            m.state = BreakerState::Open;
            m.generation += 1;
            m.forced = local.forced;
            m.open_until_ms = m.open_until_ms.max(local.open_until_ms);
            m.hold_until_ms = m.hold_until_ms.max(local.hold_until_ms);
            m.trips = m.trips.max(local.trips);
            m.half_open_successes = 0;
            m.consecutive_failures = 0;
            Some(Transition {
                from,
                to: BreakerState::Open,
                reason: TripCause::SharedAfterOutage,
                open_until_ms: (!m.forced).then_some(m.open_until_ms),
            })
        })
        .await
    }
}

impl BreakerStore for RedisBreakers {
    fn permit<'a>(
        &'a self,
        id: &'a EndpointId,
    ) -> BoxFuture<'a, Result<(Permit, Option<Transition>), BreakerError>> {
        Box::pin(self.permit_shared(id))
    }

    fn record<'a>(
        &'a self,
        id: &'a EndpointId,
        grant: &'a Grant,
        result: CallResult,
    ) -> BoxFuture<'a, Result<Option<Transition>, BreakerError>> {
        Box::pin(self.record_shared(id, grant, result))
    }

    fn force_open<'a>(
        &'a self,
        id: &'a EndpointId,
    ) -> BoxFuture<'a, Result<Option<Transition>, BreakerError>> {
        Box::pin(self.update(id, |m| m.force_open()))
    }

    fn reset<'a>(
        &'a self,
        id: &'a EndpointId,
    ) -> BoxFuture<'a, Result<Option<Transition>, BreakerError>> {
        Box::pin(self.update(id, |m| m.reset()))
    }

    fn view<'a>(&'a self, id: &'a EndpointId) -> BoxFuture<'a, Result<BreakerView, BreakerError>> {
        Box::pin(self.view_shared(id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_password_in_a_bad_url_is_not_echoed() {
        let r = RedisBreakers::new(
            "redis://:hunter2@[::1",
            Duration::from_millis(100),
            BreakerSettings::default(),
            HashMap::new(),
        );
        match r {
            Err(BreakerError::Redis(e)) => assert!(!e.contains("hunter2"), "{e}"),
            Err(e) => panic!("unexpected error {e}"),
            Ok(_) => panic!("a malformed URL was accepted"),
        }
    }

    #[test]
    fn keys_carry_the_exchange_hash_tag() {
        let id = EndpointId {
            exchange: "okx".into(),
            endpoint: "books".into(),
        };
        assert_eq!(breaker_key(&id), "{exw:okx}:breaker:books");
        assert_eq!(probe_key(&id, 7, 1), "{exw:okx}:breaker:books:probe:7:1");
    }
}
