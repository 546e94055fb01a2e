//! The token bucket, as pure arithmetic over a time passed in.
//!
//! The Redis backend runs the same arithmetic in Lua (see `redis.rs`); the
//! unit tests here pin the semantics both must follow:
//!
//! - a bucket that was never seen is full;
//! - refill is lazy: tokens grow by `elapsed × refill_per_sec` up to capacity;
//! - a request heavier than a bucket's capacity waits for a full bucket and
//!   then takes it into debt (tokens below zero), so it is not denied forever
//!   and the long-run rate still holds;
//! - the exchange's orders (Retry-After, a ban) block a bucket until a time,
//!   a block only ever extends, and after it the bucket restarts empty;
//! - exchange-reported usage only ever lowers the tokens.

use super::{BucketSpec, Decision};

use crate::model::Tier;
use std::time::Duration;

/// The wait reported for a bucket that never refills (refill rate zero).
pub const NO_REFILL_WAIT_MS: f64 = 3_600_000.0;

/// A lazily refilled bucket: tokens are topped up from the elapsed time when
/// it is looked at, so an idle bucket costs nothing.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bucket {
    pub tokens: f64,
    /// Time the tokens were last brought up to date, in milliseconds of
    /// whatever clock the caller uses. May lie in the future after a block:
    /// refill starts only when the block ends.
    pub updated_ms: f64,
    /// The exchange told us to hold off until this time (same clock).
    pub blocked_until_ms: f64,
}

impl Bucket {
    pub fn full(spec: &BucketSpec, now_ms: f64) -> Self {
        Bucket {
            tokens: spec.capacity,
            updated_ms: now_ms,
            blocked_until_ms: 0.0,
        }
    }

    pub fn refill(&mut self, spec: &BucketSpec, now_ms: f64) {
        if now_ms > self.updated_ms {
            let gained = (now_ms - self.updated_ms) / 1000.0 * spec.refill_per_sec;
            self.tokens = (self.tokens + gained).min(spec.capacity);
            self.updated_ms = now_ms;
        }
    }

    /// Milliseconds until `weight` can be taken (zero if it can be now).
    /// Call after [`Bucket::refill`] at the same `now_ms`.
    pub fn wait_ms(&self, spec: &BucketSpec, weight: f64, now_ms: f64) -> f64 {
        let blocked = (self.blocked_until_ms - now_ms).max(0.0);
        let need = weight.min(spec.capacity);
        let missing = need - self.tokens;
        let refill = if missing <= 0.0 {
            0.0
        } else {
            let starts_in = (self.updated_ms - now_ms).max(0.0);
            starts_in
                + if spec.refill_per_sec > 0.0 {
                    missing / spec.refill_per_sec * 1000.0
                } else {
                    NO_REFILL_WAIT_MS
                }
        };
        blocked.max(refill)
    }

    /// The common case, without computing a wait: `weight` can be taken now.
    /// Agrees with `wait_ms(..) == 0.0`.
    #[inline]
    pub fn can_take(&self, spec: &BucketSpec, weight: f64, now_ms: f64) -> bool {
        self.tokens >= weight.min(spec.capacity) && self.blocked_until_ms <= now_ms
    }

    pub fn debit(&mut self, weight: f64) {
        self.tokens -= weight;
    }

    /// Hold off until `until_ms`: never shortens an existing block, and the
    /// bucket restarts empty when the block ends.
    pub fn block_until(&mut self, until_ms: f64) {
        if until_ms > self.blocked_until_ms {
            self.blocked_until_ms = until_ms;
        }
        self.tokens = self.tokens.min(0.0);
        self.updated_ms = self.updated_ms.max(self.blocked_until_ms);
    }

    /// Lower the tokens to `level` (exchange-reported remaining budget);
    /// never raises them.
    pub fn drain_to(&mut self, level: f64) {
        self.tokens = self.tokens.min(level.max(0.0));
    }

    /// Milliseconds until the bucket is full and unblocked again, i.e. when
    /// forgetting it (a Redis key expiring) changes nothing.
    pub fn ms_to_idle(&self, spec: &BucketSpec, now_ms: f64) -> f64 {
        let starts_in = (self.updated_ms - now_ms).max(0.0);
        let missing = (spec.capacity - self.tokens).max(0.0);
        let refill = if spec.refill_per_sec > 0.0 {
            missing / spec.refill_per_sec * 1000.0
        } else {
            NO_REFILL_WAIT_MS
        };
        (starts_in + refill).max(self.blocked_until_ms - now_ms)
    }
}

/// Collects the per-tier waits of one check and names the tier that makes
/// the request wait longest.
#[derive(Debug, Clone, Copy, Default)]
pub struct Verdict {
    worst: Option<(Tier, f64)>,
}

impl Verdict {
    pub fn consider(&mut self, tier: Tier, wait_ms: f64) {
        if wait_ms > 0.0 && self.worst.is_none_or(|(_, w)| wait_ms > w) {
            self.worst = Some((tier, wait_ms));
        }
    }

    pub fn is_granted(&self) -> bool {
        self.worst.is_none()
    }

    pub fn decision(&self) -> Decision {
        match self.worst {
            None => Decision::Granted,
            Some((tier, ms)) => Decision::Denied {
                tier,
                retry_in: Duration::from_secs_f64(ms / 1000.0),
            },
        }
    }
}

/// One tier of a check: its spec and its bucket.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TierState {
    pub tier: Tier,
    pub spec: BucketSpec,
    pub bucket: Bucket,
}

/// All-or-nothing check across tiers at `now_ms`: debits `weight` from every
/// bucket, or from none and says which tier denied and for how long.
pub fn check_all(tiers: &mut [TierState], weight: u32, now_ms: f64) -> Decision {
    let weight = f64::from(weight);
    let mut verdict = Verdict::default();
    for t in tiers.iter_mut() {
        t.bucket.refill(&t.spec, now_ms);
        if !t.bucket.can_take(&t.spec, weight, now_ms) {
            verdict.consider(t.tier, t.bucket.wait_ms(&t.spec, weight, now_ms));
        }
    }
    if verdict.is_granted() {
        for t in tiers.iter_mut() {
            t.bucket.debit(weight);
        }
    }
    verdict.decision()
}

/// What an exchange-reported usage means for a bucket: the token level it
/// must not exceed, in the bucket's own units.
///
/// With a reported limit the remaining share is scaled to our capacity (our
/// configured budget may be a safety margin below the exchange's). Without
/// it, `used` is taken in our units.
pub fn reported_level(
    spec: &BucketSpec,
    used: Option<u64>,
    limit: Option<u64>,
    remaining: Option<u64>,
) -> Option<f64> {
    match (limit, used, remaining) {
        (Some(limit), used, remaining) if limit > 0 && (used.is_some() || remaining.is_some()) => {
            let left = remaining
                .map(|r| r as f64)
                .unwrap_or_else(|| limit as f64 - used.unwrap_or(0) as f64);
            Some(spec.capacity * (left / limit as f64).clamp(0.0, 1.0))
        }
        (_, Some(used), _) => Some(spec.capacity - used as f64),
        (_, None, Some(remaining)) => Some(remaining as f64),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPEC: BucketSpec = BucketSpec {
        capacity: 10.0,
        refill_per_sec: 2.0,
    };

    fn tiers(now: f64) -> Vec<TierState> {
        vec![
            TierState {
                tier: Tier::Exchange,
                spec: SPEC,
                bucket: Bucket::full(&SPEC, now),
            },
            TierState {
                tier: Tier::Endpoint,
                spec: BucketSpec {
                    capacity: 4.0,
                    refill_per_sec: 1.0,
                },
                bucket: Bucket::full(
                    &BucketSpec {
                        capacity: 4.0,
                        refill_per_sec: 1.0,
                    },
                    now,
                ),
            },
        ]
    }

    #[test]
    fn refill_is_linear_and_capped() {
        let mut b = Bucket {
            tokens: 0.0,
            updated_ms: 0.0,
            blocked_until_ms: 0.0,
        };
        b.refill(&SPEC, 1500.0);
        assert_eq!(b.tokens, 3.0);
        b.refill(&SPEC, 100_000.0);
        assert_eq!(b.tokens, 10.0);
        // Time going backwards (a caller's clock hiccup) never removes tokens.
        b.refill(&SPEC, 50_000.0);
        assert_eq!(b.tokens, 10.0);
        assert_eq!(b.updated_ms, 100_000.0);
    }

    #[test]
    fn weights_are_debited_from_every_tier() {
        let mut t = tiers(0.0);
        assert_eq!(check_all(&mut t, 3, 0.0), Decision::Granted);
        assert_eq!(t[0].bucket.tokens, 7.0);
        assert_eq!(t[1].bucket.tokens, 1.0);
    }

    #[test]
    fn denial_names_the_tier_and_the_exact_wait_and_debits_nothing() {
        let mut t = tiers(0.0);
        assert_eq!(check_all(&mut t, 3, 0.0), Decision::Granted);
        let before = t.clone();
        // Endpoint has 1 token, needs 3 at 1/s: 2 s. Exchange has 7: fine.
        assert_eq!(
            check_all(&mut t, 3, 0.0),
            Decision::Denied {
                tier: Tier::Endpoint,
                retry_in: Duration::from_secs(2)
            }
        );
        assert_eq!(t, before, "a denied check must not debit any tier");
        // After exactly the wait it is granted.
        assert_eq!(check_all(&mut t, 3, 2000.0), Decision::Granted);
    }

    #[test]
    fn the_longest_wait_wins() {
        let mut t = tiers(0.0);
        t[0].bucket.tokens = 0.0; // exchange: needs 2 at 2/s = 1 s
        t[1].bucket.tokens = 0.0; // endpoint: needs 2 at 1/s = 2 s
        assert_eq!(
            check_all(&mut t, 2, 0.0),
            Decision::Denied {
                tier: Tier::Endpoint,
                retry_in: Duration::from_secs(2)
            }
        );
        t[0].bucket.tokens = -4.0; // exchange in debt: needs 6 at 2/s = 3 s
        assert_eq!(
            check_all(&mut t, 2, 0.0),
            Decision::Denied {
                tier: Tier::Exchange,
                retry_in: Duration::from_secs(3)
            }
        );
    }

    #[test]
    fn a_request_heavier_than_capacity_waits_for_a_full_bucket_then_goes_into_debt() {
        let spec = BucketSpec {
            capacity: 5.0,
            refill_per_sec: 1.0,
        };
        let mut t = [TierState {
            tier: Tier::Exchange,
            spec,
            bucket: Bucket::full(&spec, 0.0),
        }];
        assert_eq!(check_all(&mut t, 8, 0.0), Decision::Granted);
        assert_eq!(t[0].bucket.tokens, -3.0);
        // Debt of 3 plus a full bucket of 5 to refill: 8 s.
        assert_eq!(
            check_all(&mut t, 8, 0.0),
            Decision::Denied {
                tier: Tier::Exchange,
                retry_in: Duration::from_secs(8)
            }
        );
    }

    #[test]
    fn a_block_only_extends_and_restarts_empty() {
        let mut b = Bucket::full(&SPEC, 0.0);
        b.block_until(5000.0);
        assert_eq!(
            b.wait_ms(&SPEC, 1.0, 0.0),
            5500.0,
            "5 s block, then 1 token at 2/s"
        );
        b.block_until(2000.0);
        assert_eq!(
            b.blocked_until_ms, 5000.0,
            "a shorter block never shortens a longer one"
        );
        b.refill(&SPEC, 4000.0);
        assert_eq!(b.tokens, 0.0, "no refill during the block");
        b.refill(&SPEC, 6000.0);
        assert_eq!(b.tokens, 2.0);
        assert_eq!(b.wait_ms(&SPEC, 1.0, 6000.0), 0.0);
    }

    #[test]
    fn a_blocked_tier_denies_even_with_tokens() {
        let mut t = tiers(0.0);
        t[1].bucket.blocked_until_ms = 1234.0;
        assert_eq!(
            check_all(&mut t, 1, 0.0),
            Decision::Denied {
                tier: Tier::Endpoint,
                retry_in: Duration::from_millis(1234)
            }
        );
        assert_eq!(t[0].bucket.tokens, 10.0);
    }

    #[test]
    fn can_take_agrees_with_a_zero_wait() {
        let states = [
            Bucket {
                tokens: 5.0,
                updated_ms: 0.0,
                blocked_until_ms: 0.0,
            },
            Bucket {
                tokens: 0.5,
                updated_ms: 0.0,
                blocked_until_ms: 0.0,
            },
            Bucket {
                tokens: 5.0,
                updated_ms: 0.0,
                blocked_until_ms: 10.0,
            },
            Bucket {
                tokens: 0.0,
                updated_ms: 10.0,
                blocked_until_ms: 10.0,
            },
            Bucket {
                tokens: -2.0,
                updated_ms: 0.0,
                blocked_until_ms: 0.0,
            },
        ];
        for b in states {
            for w in [0.0, 1.0, 10.0, 50.0] {
                assert_eq!(
                    b.can_take(&SPEC, w, 5.0),
                    b.wait_ms(&SPEC, w, 5.0) == 0.0,
                    "{b:?} weight {w}"
                );
            }
        }
    }

    #[test]
    fn drain_only_lowers() {
        let mut b = Bucket::full(&SPEC, 0.0);
        b.drain_to(4.0);
        assert_eq!(b.tokens, 4.0);
        b.drain_to(8.0);
        assert_eq!(b.tokens, 4.0);
        b.drain_to(-3.0);
        assert_eq!(b.tokens, 0.0);
    }

    #[test]
    fn reported_usage_is_scaled_to_our_capacity() {
        let spec = BucketSpec {
            capacity: 600.0,
            refill_per_sec: 10.0,
        };
        // Binance: used 4500 of 6000 → a quarter left → 150 of our 600.
        assert_eq!(
            reported_level(&spec, Some(4500), Some(6000), None),
            Some(150.0)
        );
        // Used weight without a limit: taken in our units.
        assert_eq!(reported_level(&spec, Some(500), None, None), Some(100.0));
        // Bybit: remaining 3 of 10.
        assert_eq!(reported_level(&spec, None, Some(10), Some(3)), Some(180.0));
        assert_eq!(reported_level(&spec, None, None, Some(7)), Some(7.0));
        assert_eq!(reported_level(&spec, None, Some(10), None), None);
    }

    #[test]
    fn idle_time_covers_refill_and_block() {
        let mut b = Bucket::full(&SPEC, 0.0);
        assert_eq!(b.ms_to_idle(&SPEC, 0.0), 0.0);
        b.debit(4.0);
        assert_eq!(b.ms_to_idle(&SPEC, 0.0), 2000.0);
        b.block_until(10_000.0);
        assert_eq!(b.ms_to_idle(&SPEC, 0.0), 15_000.0);
    }

    #[test]
    fn zero_refill_reports_a_long_finite_wait() {
        let spec = BucketSpec {
            capacity: 1.0,
            refill_per_sec: 0.0,
        };
        let mut t = [TierState {
            tier: Tier::Account,
            spec,
            bucket: Bucket::full(&spec, 0.0),
        }];
        assert_eq!(check_all(&mut t, 1, 0.0), Decision::Granted);
        assert_eq!(
            check_all(&mut t, 1, 0.0),
            Decision::Denied {
                tier: Tier::Account,
                retry_in: Duration::from_secs(3600)
            }
        );
    }
}
