//! In-process backend: every bucket in one slab behind one mutex.
//!
//! One lock per check keeps all-or-nothing trivially atomic. Bucket ids are
//! interned once; a [`ResolvedRequest`] carries slab indices so the hot path
//! does no hashing and no allocation (`check_resolved`), while the trait path
//! (`check`) hashes the ids with a cheap non-cryptographic hasher (the ids
//! come from our own config, not from an adversary).

use super::bucket::{Bucket, Verdict};
use super::{BucketSpec, Decision, LimitRequest, LimiterError, RateLimiter, SignalPlan};
use crate::model::RateLimitSignal;
use crate::model::{Tier, TierFill};
use futures::future::BoxFuture;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Mutex;

/// Word-at-a-time multiplicative hash (the FxHash scheme): a few ns for a
/// bucket id, against ~20 ns for SipHash.
#[derive(Default, Clone, Copy)]
struct IdHasher(u64);

const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl IdHasher {
    #[inline]
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(SEED);
    }
}

impl Hasher for IdHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.add(u64::from_le_bytes(w));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut w = [0u8; 8];
            w[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(w));
        }
    }
    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }
    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }
    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }
}

type IdMap = HashMap<Box<str>, u32, BuildHasherDefault<IdHasher>>;

/// Most tiers a request may have for the cached path (more still work,
/// through a slower one).
const MAX_TIERS: usize = 8;
/// The address cache is dropped when it grows past this (requests churning).
const MAX_CACHED_REQUESTS: usize = 4096;

#[derive(Default)]
struct Slab {
    index: IdMap,
    /// Bucket ids by slot, to verify cached slots by content.
    ids: Vec<Box<str>>,
    buckets: Vec<Bucket>,
    /// Slots last used by the request at this address. Workers check the
    /// same `LimitRequest` again and again, so this saves hashing the ids;
    /// an entry is only trusted after comparing every id with the slot's
    /// (an address can be reused by another request).
    by_addr: HashMap<usize, [u32; MAX_TIERS], BuildHasherDefault<IdHasher>>,
}

impl Slab {
    /// Slots of every tier of `req`, from the address cache when it still
    /// holds, else by id (and cached).
    #[inline]
    fn slots_of(&mut self, req: &LimitRequest, share: f64, now_ms: f64) -> [u32; MAX_TIERS] {
        let addr = req as *const LimitRequest as usize;
        if let Some(slots) = self.by_addr.get(&addr)
            && req
                .tiers
                .iter()
                .zip(slots)
                .all(|(t, &i)| self.ids.get(i as usize).is_some_and(|id| **id == *t.id))
        {
            return *slots;
        }
        let mut slots = [0u32; MAX_TIERS];
        for (k, t) in req.tiers.iter().enumerate().take(MAX_TIERS) {
            let spec = BucketSpec {
                capacity: t.spec.capacity * share,
                refill_per_sec: t.spec.refill_per_sec * share,
            };
            slots[k] = self.slot(&t.id, &spec, now_ms) as u32;
        }
        if self.by_addr.len() >= MAX_CACHED_REQUESTS {
            self.by_addr.clear();
        }
        self.by_addr.insert(addr, slots);
        slots
    }

    /// Slot of a bucket, created full on first sight.
    #[inline]
    fn slot(&mut self, id: &str, spec: &BucketSpec, now_ms: f64) -> usize {
        if let Some(&i) = self.index.get(id) {
            return i as usize;
        }
        let i = self.buckets.len();
        self.buckets.push(Bucket::full(spec, now_ms));
        self.ids.push(id.into());
        self.index.insert(id.into(), i as u32);
        i
    }
}

/// A request with its buckets looked up once; check it with
/// [`MemoryLimiter::check_resolved`]. Only valid for the limiter that made it.
#[derive(Debug, Clone)]
pub struct ResolvedRequest {
    slots: Vec<(usize, Tier, BucketSpec)>,
    weight: f64,
}

pub struct MemoryLimiter {
    /// TSC-backed where available: reading `Instant::now()` costs more than
    /// the whole 4-tier check on some VMs (measured 85 ns here).
    clock: quanta::Clock,
    origin: u64,
    /// Fraction of every configured budget this limiter may use (1/instances
    /// when standing in for a shared Redis budget).
    share: f64,
    slab: Mutex<Slab>,
}

impl Default for MemoryLimiter {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryLimiter {
    pub fn new() -> Self {
        Self::with_share(1)
    }

    /// A limiter that grants `1/instances` of every configured budget: this
    /// instance's share when several would otherwise share one through Redis.
    pub fn with_share(instances: u32) -> Self {
        let clock = quanta::Clock::new();
        let origin = clock.raw();
        MemoryLimiter {
            clock,
            origin,
            share: 1.0 / f64::from(instances.max(1)),
            slab: Mutex::default(),
        }
    }

    /// Milliseconds on this limiter's monotonic clock. Tests that need to
    /// control time pass it in (`check_at`, `check_resolved_at`, ...).
    #[inline]
    pub fn now_ms(&self) -> f64 {
        self.clock.delta_as_nanos(self.origin, self.clock.raw()) as f64 / 1e6
    }

    #[inline]
    fn scaled(&self, spec: &BucketSpec) -> BucketSpec {
        BucketSpec {
            capacity: spec.capacity * self.share,
            refill_per_sec: spec.refill_per_sec * self.share,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Slab> {
        // A panic while holding the lock cannot leave a bucket half-written
        // in a way that matters more than losing rate limiting altogether.
        self.slab.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Look the request's buckets up once, for [`MemoryLimiter::check_resolved`].
    pub fn resolve(&self, req: &LimitRequest) -> ResolvedRequest {
        let now = self.now_ms();
        let mut slab = self.lock();
        let slots = req
            .tiers
            .iter()
            .map(|t| {
                let spec = self.scaled(&t.spec);
                (slab.slot(&t.id, &spec, now), t.tier, spec)
            })
            .collect();
        ResolvedRequest {
            slots,
            weight: f64::from(req.weight),
        }
    }

    /// The hot path: all-or-nothing check of a resolved request, no hashing,
    /// no allocation.
    pub fn check_resolved(&self, req: &ResolvedRequest) -> Decision {
        self.check_resolved_at(req, self.now_ms())
    }

    pub fn check_resolved_at(&self, req: &ResolvedRequest, now_ms: f64) -> Decision {
        let mut slab = self.lock();
        let buckets = &mut slab.buckets;
        let mut verdict = Verdict::default();
        for &(i, tier, ref spec) in &req.slots {
            let Some(b) = buckets.get_mut(i) else {
                continue;
            };
            b.refill(spec, now_ms);
            if !b.can_take(spec, req.weight, now_ms) {
                verdict.consider(tier, b.wait_ms(spec, req.weight, now_ms));
            }
        }
        if verdict.is_granted() {
            for &(i, _, _) in &req.slots {
                if let Some(b) = buckets.get_mut(i) {
                    b.debit(req.weight);
                }
            }
        }
        verdict.decision()
    }

    /// All-or-nothing check at `now_ms` (this limiter's clock).
    pub fn check_at(&self, req: &LimitRequest, now_ms: f64) -> Decision {
        let weight = f64::from(req.weight);
        let mut slab = self.lock();
        let mut verdict = Verdict::default();
        let n = req.tiers.len();
        if n > MAX_TIERS {
            drop(slab);
            let resolved = self.resolve(req);
            return self.check_resolved_at(&resolved, now_ms);
        }
        let slots = slab.slots_of(req, self.share, now_ms);
        for (t, &i) in req.tiers.iter().zip(&slots) {
            let spec = self.scaled(&t.spec);
            let Some(b) = slab.buckets.get_mut(i as usize) else {
                continue;
            };
            b.refill(&spec, now_ms);
            if !b.can_take(&spec, weight, now_ms) {
                verdict.consider(t.tier, b.wait_ms(&spec, weight, now_ms));
            }
        }
        if verdict.is_granted() {
            for &i in &slots[..n] {
                if let Some(b) = slab.buckets.get_mut(i as usize) {
                    b.debit(weight);
                }
            }
        }
        verdict.decision()
    }

    /// Follow the exchange at `now_ms` (this limiter's clock).
    pub fn apply_plan_at(&self, req: &LimitRequest, plan: &SignalPlan, now_ms: f64) {
        let mut slab = self.lock();
        for (t, drain) in req.tiers.iter().zip(&plan.drain_to) {
            let spec = self.scaled(&t.spec);
            let i = slab.slot(&t.id, &spec, now_ms);
            let b = &mut slab.buckets[i];
            b.refill(&spec, now_ms);
            if let Some(level) = drain {
                b.drain_to(level * self.share);
            }
            if let Some(hold) = plan.hold_ms {
                b.block_until(now_ms + hold);
            }
        }
    }

    pub fn fill_at(&self, req: &LimitRequest, now_ms: f64) -> Vec<TierFill> {
        let mut slab = self.lock();
        req.tiers
            .iter()
            .map(|t| {
                let spec = self.scaled(&t.spec);
                let i = slab.slot(&t.id, &spec, now_ms);
                let b = &mut slab.buckets[i];
                b.refill(&spec, now_ms);
                let blocked = b.blocked_until_ms - now_ms;
                TierFill {
                    tier: t.tier,
                    tokens: b.tokens,
                    capacity: spec.capacity,
                    blocked_for_ms: (blocked > 0.0).then_some(blocked.ceil() as u64),
                }
            })
            .collect()
    }
}

impl RateLimiter for MemoryLimiter {
    fn check<'a>(&'a self, req: &'a LimitRequest) -> BoxFuture<'a, Result<Decision, LimiterError>> {
        let d = self.check_at(req, self.now_ms());
        Box::pin(std::future::ready(Ok(d)))
    }

    #[inline]
    fn check_now(&self, req: &LimitRequest) -> Option<Decision> {
        Some(self.check_at(req, self.now_ms()))
    }

    fn apply_signal<'a>(
        &'a self,
        req: &'a LimitRequest,
        signal: &'a RateLimitSignal,
    ) -> BoxFuture<'a, Result<(), LimiterError>> {
        let plan = SignalPlan::new(req, signal, crate::clock::now_ms());
        if !plan.is_empty() {
            self.apply_plan_at(req, &plan, self.now_ms());
        }
        Box::pin(std::future::ready(Ok(())))
    }

    fn fill<'a>(
        &'a self,
        req: &'a LimitRequest,
    ) -> BoxFuture<'a, Result<Vec<TierFill>, LimiterError>> {
        let out = self.fill_at(req, self.now_ms());
        Box::pin(std::future::ready(Ok(out)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limiter::TierBucket;
    use std::time::Duration;

    fn req(weight: u32) -> LimitRequest {
        let t = |tier, name: &str, capacity, refill_per_sec| TierBucket {
            tier,
            id: LimitRequest::bucket_id("bn", tier, name),
            spec: BucketSpec {
                capacity,
                refill_per_sec,
            },
        };
        LimitRequest {
            exchange: "bn".into(),
            tiers: vec![
                t(Tier::Exchange, "all", 100.0, 10.0),
                t(Tier::Endpoint, "depth", 20.0, 2.0),
                t(Tier::Account, "main", 50.0, 5.0),
                t(Tier::Ip, "10.0.0.1", 100.0, 10.0),
            ],
            weight,
        }
    }

    #[test]
    fn shared_buckets_are_shared_between_requests() {
        let l = MemoryLimiter::new();
        let a = req(5);
        let mut b = req(5);
        b.tiers[1].id = LimitRequest::bucket_id("bn", Tier::Endpoint, "ticker");
        // Exchange tier has 100: 20 grants of 5 in total, whichever endpoint.
        let mut granted = 0;
        for k in 0..40 {
            let r = if k % 2 == 0 { &a } else { &b };
            if l.check_at(r, 0.0) == Decision::Granted {
                granted += 1;
            }
        }
        // Endpoint tiers (20 each → 4 grants each) bind first: 8 grants.
        assert_eq!(granted, 8);
        let fill = l.fill_at(&a, 0.0);
        assert_eq!(fill[0].tokens, 60.0);
        assert_eq!(fill[1].tokens, 0.0);
    }

    #[test]
    fn resolved_and_unresolved_paths_agree() {
        let l = MemoryLimiter::new();
        let r = req(7);
        assert_eq!(l.check_at(&r, 0.0), Decision::Granted);
        let resolved = l.resolve(&r);
        assert_eq!(l.check_resolved_at(&resolved, 0.0), Decision::Granted);
        // Endpoint: 20 - 14 = 6 left, 7 needed at 2/s: 0.5 s.
        assert_eq!(
            l.check_resolved_at(&resolved, 0.0),
            Decision::Denied {
                tier: Tier::Endpoint,
                retry_in: Duration::from_millis(500)
            }
        );
        assert_eq!(l.check_at(&r, 500.0), Decision::Granted);
    }

    #[test]
    fn the_address_cache_never_confuses_requests() {
        let l = MemoryLimiter::new();
        let mut r = req(20);
        assert_eq!(l.check_at(&r, 0.0), Decision::Granted);
        // Same address, different endpoint bucket: must use a fresh bucket.
        r.tiers[1].id = LimitRequest::bucket_id("bn", Tier::Endpoint, "other");
        assert_eq!(
            l.check_at(&r, 0.0),
            Decision::Granted,
            "a new endpoint bucket is full"
        );
        let fill = l.fill_at(&r, 0.0);
        assert_eq!(fill[1].tokens, 0.0);
        assert_eq!(fill[0].tokens, 60.0, "the shared exchange bucket saw both");
        r.tiers[1].id = LimitRequest::bucket_id("bn", Tier::Endpoint, "depth");
        assert!(matches!(
            l.check_at(&r, 0.0),
            Decision::Denied {
                tier: Tier::Endpoint,
                ..
            }
        ));
    }

    #[test]
    fn share_divides_capacity_and_refill() {
        let l = MemoryLimiter::with_share(4);
        let r = req(1);
        let fill = l.fill_at(&r, 0.0);
        assert_eq!(fill[0].capacity, 25.0);
        assert_eq!(fill[1].capacity, 5.0);
        let granted = (0..10)
            .filter(|_| l.check_at(&r, 0.0) == Decision::Granted)
            .count();
        assert_eq!(granted, 5);
        // Endpoint refills at 0.5/s: one token in 2 s.
        assert_eq!(
            l.check_at(&r, 0.0),
            Decision::Denied {
                tier: Tier::Endpoint,
                retry_in: Duration::from_secs(2)
            }
        );
    }

    #[test]
    fn retry_after_blocks_every_tier_of_the_request() {
        let l = MemoryLimiter::new();
        let r = req(1);
        let sig = RateLimitSignal {
            retry_after_ms: Some(5000),
            ..Default::default()
        };
        let plan = SignalPlan::new(&r, &sig, 0);
        l.apply_plan_at(&r, &plan, 1000.0);
        match l.check_at(&r, 1000.0) {
            Decision::Denied { retry_in, .. } => assert!(retry_in >= Duration::from_secs(5)),
            d => panic!("expected a denial, got {d:?}"),
        }
        let fill = l.fill_at(&r, 1000.0);
        assert!(
            fill.iter().all(|f| f.blocked_for_ms == Some(5000)),
            "{fill:?}"
        );
        // A shorter order later does not shorten the block.
        let short = SignalPlan::new(
            &r,
            &RateLimitSignal {
                retry_after_ms: Some(1000),
                ..Default::default()
            },
            0,
        );
        l.apply_plan_at(&r, &short, 2000.0);
        assert!(matches!(l.check_at(&r, 5500.0), Decision::Denied { .. }));
        // After the block, refill restarts from empty: exchange needs 1 at 10/s.
        assert!(matches!(l.check_at(&r, 6000.0), Decision::Denied { .. }));
        assert_eq!(l.check_at(&r, 6600.0), Decision::Granted);
    }

    #[test]
    fn reported_usage_drains_the_exchange_tier() {
        let l = MemoryLimiter::new();
        let r = req(1);
        let sig = RateLimitSignal {
            used: Some(5400),
            limit: Some(6000),
            ..Default::default()
        };
        l.apply_plan_at(&r, &SignalPlan::new(&r, &sig, 0), 0.0);
        let fill = l.fill_at(&r, 0.0);
        assert!((fill[0].tokens - 10.0).abs() < 1e-9, "{fill:?}");
        assert_eq!(fill[1].tokens, 20.0, "other tiers untouched");
    }
}
