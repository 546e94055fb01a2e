//! In-process breaker store: one machine per breaker behind a mutex, and
//! the half-open probe leases it keeps inside each machine.
//!
//! The default store, and the fallback of the Redis store while Redis is
//! unreachable. A probe lease here is a token (a `u64`, never 0) with an
//! expiry in [`Machine::leases`]; the grant carries the token as text.

use super::machine::{Admit, Lease, Machine, ProbeStatus};
use super::{BreakerError, BreakerSettings, BreakerStore, CallResult, Grant, Permit, StoreKind};
use crate::model::{BreakerState, BreakerView, EndpointId, Transition};
use futures::future::BoxFuture;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

/// The probe leases of the memory store, kept in the machine.
impl Machine {
    /// Take a half-open probe slot at `now_ms` for `probe_lease`: its token,
    /// or how long until the first held slot expires.
    pub(super) fn take_lease(&mut self, s: &BreakerSettings, now_ms: i64) -> Result<u64, Duration> {
        self.leases.retain(|l| l.expires_ms > now_ms);
        if self.leases.len() < s.half_open_probes as usize {
            let token = self.next_token;
            self.next_token += 1;
            let lease_ms = s.probe_lease.as_millis().min(i64::MAX as u128) as i64;
            self.leases.push(Lease {
                token,
                expires_ms: now_ms.saturating_add(lease_ms.max(1)),
            });
            Ok(token)
        } else {
            let first_free = self
                .leases
                .iter()
                .map(|l| l.expires_ms)
                .min()
                .unwrap_or(now_ms);
            Err(Duration::from_millis((first_free - now_ms).max(1) as u64))
        }
    }

    /// Give back the slot of `probe` (a token from [`Machine::take_lease`])
    /// reporting at `now_ms`, and say whether it still held it.
    pub(super) fn release_lease(
        &mut self,
        generation: u64,
        probe: Option<u64>,
        now_ms: i64,
    ) -> ProbeStatus {
        match probe {
            Some(token)
                if generation == self.generation && self.state == BreakerState::HalfOpen =>
            {
                self.leases.retain(|l| l.expires_ms > now_ms);
                let before = self.leases.len();
                self.leases.retain(|l| l.token != token);
                if self.leases.len() < before {
                    ProbeStatus::Held
                } else {
                    ProbeStatus::Expired
                }
            }
            Some(_) => ProbeStatus::Expired,
            None => ProbeStatus::None,
        }
    }
}

/// The in-process store; per-breaker settings with a default.
pub struct MemoryBreakers {
    settings: HashMap<EndpointId, BreakerSettings>,
    default: BreakerSettings,
    machines: Mutex<HashMap<EndpointId, Machine>>,
}

impl MemoryBreakers {
    /// `settings` holds the per-breaker overrides; others use `default`.
    pub fn new(default: BreakerSettings, settings: HashMap<EndpointId, BreakerSettings>) -> Self {
        MemoryBreakers {
            settings,
            default,
            machines: Mutex::new(HashMap::new()),
        }
    }

    /// The settings breaker `id` runs with.
    pub fn settings(&self, id: &EndpointId) -> &BreakerSettings {
        self.settings.get(id).unwrap_or(&self.default)
    }

    fn with<T>(&self, id: &EndpointId, f: impl FnOnce(&mut Machine) -> T) -> T {
        // A panic elsewhere while holding the lock leaves the machines intact
        // (every update is a plain assignment), so carry on with them.
        let mut map = self.machines.lock().unwrap_or_else(|p| p.into_inner());
        f(map.entry(id.clone()).or_default())
    }

    /// A copy of a breaker's machine, if it has been used.
    pub fn machine(&self, id: &EndpointId) -> Option<Machine> {
        let map = self.machines.lock().unwrap_or_else(|p| p.into_inner());
        map.get(id).cloned()
    }

    /// Start a breaker from a known state (e.g. the last state seen in Redis,
    /// or one read back from a journal), unless it is already in use.
    pub fn seed(&self, id: &EndpointId, machine: Machine) {
        let mut map = self.machines.lock().unwrap_or_else(|p| p.into_inner());
        map.entry(id.clone()).or_insert(machine);
    }

    /// Take every breaker out (after a Redis outage, to share what opened).
    pub fn drain(&self) -> Vec<(EndpointId, Machine)> {
        let mut map = self.machines.lock().unwrap_or_else(|p| p.into_inner());
        map.drain().collect()
    }

    /// [`BreakerStore::permit`] at `now_ms` (unix ms). A half-open grant
    /// carries its lease token as text.
    pub fn permit_at(&self, id: &EndpointId, now_ms: i64) -> (Permit, Option<Transition>) {
        let s = self.settings(id);
        let (admit, transition) = self.with(id, |m| m.admit(s, now_ms));
        let p = match admit {
            Admit::Yes {
                state,
                generation,
                probe,
            } => Permit::Granted(Grant {
                state,
                generation,
                lease: probe.map(|t| t.to_string()),
                backend: StoreKind::Memory,
            }),
            Admit::No { state, retry_in } => Permit::Denied { state, retry_in },
        };
        (p, transition)
    }

    /// [`BreakerStore::record`] at `now_ms` (unix ms).
    pub fn record_at(
        &self,
        id: &EndpointId,
        grant: &Grant,
        result: CallResult,
        now_ms: i64,
    ) -> Option<Transition> {
        let s = self.settings(id);
        // A lease this store did not issue cannot be held here: 0 is never a token.
        let probe = grant.lease.as_ref().map(|l| l.parse::<u64>().unwrap_or(0));
        self.with(id, |m| m.record(s, grant.generation, probe, result, now_ms))
    }

    /// [`BreakerStore::force_open`], now.
    pub fn force_open_now(&self, id: &EndpointId) -> Option<Transition> {
        self.with(id, |m| m.force_open())
    }

    /// [`BreakerStore::reset`], now.
    pub fn reset_now(&self, id: &EndpointId) -> Option<Transition> {
        self.with(id, |m| m.reset())
    }

    /// [`BreakerStore::view`] as of the last change.
    pub fn view_at(&self, id: &EndpointId) -> BreakerView {
        self.with(id, |m| m.view())
    }
}

fn ready<'a, T: Send + 'a>(v: T) -> BoxFuture<'a, T> {
    Box::pin(async move { v })
}

impl BreakerStore for MemoryBreakers {
    fn permit<'a>(
        &'a self,
        id: &'a EndpointId,
    ) -> BoxFuture<'a, Result<(Permit, Option<Transition>), BreakerError>> {
        ready(Ok(self.permit_at(id, crate::clock::now_ms())))
    }

    fn record<'a>(
        &'a self,
        id: &'a EndpointId,
        grant: &'a Grant,
        result: CallResult,
    ) -> BoxFuture<'a, Result<Option<Transition>, BreakerError>> {
        ready(Ok(self.record_at(
            id,
            grant,
            result,
            crate::clock::now_ms(),
        )))
    }

    fn force_open<'a>(
        &'a self,
        id: &'a EndpointId,
    ) -> BoxFuture<'a, Result<Option<Transition>, BreakerError>> {
        ready(Ok(self.force_open_now(id)))
    }

    fn reset<'a>(
        &'a self,
        id: &'a EndpointId,
    ) -> BoxFuture<'a, Result<Option<Transition>, BreakerError>> {
        ready(Ok(self.reset_now(id)))
    }

    fn view<'a>(&'a self, id: &'a EndpointId) -> BoxFuture<'a, Result<BreakerView, BreakerError>> {
        ready(Ok(self.view_at(id)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::OutcomeClass;

    const T0: i64 = 1_700_000_000_000;

    fn id(ep: &str) -> EndpointId {
        EndpointId {
            exchange: "binance".into(),
            endpoint: ep.into(),
        }
    }

    fn result(class: OutcomeClass) -> CallResult {
        CallResult {
            class,
            latency: Duration::from_millis(50),
            hold_off: None,
        }
    }

    fn granted(p: Permit) -> Grant {
        match p {
            Permit::Granted(g) => g,
            Permit::Denied { state, .. } => panic!("denied while {state:?}"),
        }
    }

    #[test]
    fn breakers_are_independent_and_use_their_own_settings() {
        let strict = BreakerSettings {
            consecutive_failures: 1,
            ..BreakerSettings::default()
        };
        let store = MemoryBreakers::new(
            BreakerSettings::default(),
            HashMap::from([(id("depth"), strict)]),
        );
        let g = granted(store.permit_at(&id("depth"), T0).0);
        let t = store.record_at(&id("depth"), &g, result(OutcomeClass::Timeout), T0);
        assert_eq!(t.map(|t| t.to), Some(BreakerState::Open));
        let g = granted(store.permit_at(&id("ticker"), T0).0);
        assert_eq!(
            store.record_at(&id("ticker"), &g, result(OutcomeClass::Timeout), T0),
            None
        );
        assert!(matches!(
            store.permit_at(&id("depth"), T0).0,
            Permit::Denied {
                state: BreakerState::Open,
                ..
            }
        ));
        assert_eq!(store.view_at(&id("ticker")).consecutive_failures, 1);
    }

    #[test]
    fn half_open_probe_lease_travels_in_the_grant() {
        let s = BreakerSettings {
            consecutive_failures: 1,
            close_after: 1,
            ..BreakerSettings::default()
        };
        let store = MemoryBreakers::new(s, HashMap::new());
        let b = id("ticker");
        let g = granted(store.permit_at(&b, T0).0);
        assert_eq!((g.lease.as_ref(), g.backend), (None, StoreKind::Memory));
        store.record_at(&b, &g, result(OutcomeClass::ServerError), T0);
        let (p, t) = store.permit_at(&b, T0 + 10_000);
        assert_eq!(t.map(|t| t.to), Some(BreakerState::HalfOpen));
        let probe = granted(p);
        assert!(probe.lease.is_some());
        // A grant with a lease this store never issued does not close it.
        let forged = Grant {
            lease: Some("not-a-token".into()),
            ..probe.clone()
        };
        assert_eq!(
            store.record_at(&b, &forged, result(OutcomeClass::Ok), T0 + 10_001),
            None
        );
        let t = store.record_at(&b, &probe, result(OutcomeClass::Ok), T0 + 10_002);
        assert_eq!(t.map(|t| t.to), Some(BreakerState::Closed));
    }

    #[test]
    fn seed_restores_an_open_breaker_but_never_overwrites() {
        let store = MemoryBreakers::new(BreakerSettings::default(), HashMap::new());
        let b = id("ticker");
        let open = Machine {
            state: BreakerState::Open,
            generation: 7,
            open_until_ms: T0 + 30_000,
            trips: 2,
            ..Machine::default()
        };
        store.seed(&b, open.clone());
        assert!(
            matches!(store.permit_at(&b, T0).0, Permit::Denied { retry_in, .. } if retry_in == Duration::from_secs(30))
        );
        store.seed(&b, Machine::default());
        assert_eq!(store.machine(&b).map(|m| m.generation), Some(7));
        let (p, t) = store.permit_at(&b, T0 + 30_000);
        assert_eq!(t.map(|t| t.to), Some(BreakerState::HalfOpen));
        assert!(matches!(p, Permit::Granted(_)));
    }

    #[test]
    fn force_open_and_reset_through_the_store() {
        let store = MemoryBreakers::new(BreakerSettings::default(), HashMap::new());
        let b = id("ticker");
        assert_eq!(
            store.force_open_now(&b).map(|t| t.to),
            Some(BreakerState::Open)
        );
        let v = store.view_at(&b);
        assert_eq!((v.state, v.open_until_ms), (BreakerState::Open, None));
        assert!(matches!(
            store.permit_at(&b, i64::MAX / 2).0,
            Permit::Denied { .. }
        ));
        assert_eq!(
            store.reset_now(&b).map(|t| t.to),
            Some(BreakerState::Closed)
        );
        assert!(matches!(store.permit_at(&b, T0).0, Permit::Granted(_)));
    }
}
