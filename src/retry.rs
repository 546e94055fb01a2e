//! The one retry policy of the HTTP clients that send (sinks, the triage
//! model client): how long to wait after a failed attempt, and when to give
//! up.
//!
//! The exponential arithmetic (initial × 2^(n-1), capped) is `backon`'s
//! [`ExponentialBuilder`], without its own jitter and attempt limit; this
//! module adds what `backon` does not do the way exwatch needs it:
//!
//! - jitter of ±`jitter` around the capped delay, never above the cap
//!   (`backon`'s jitter only adds, up to doubling, and past the cap);
//! - the server's `Retry-After`: a floor, so a longer one wins and a shorter
//!   one never makes a retry come sooner than the backoff;
//! - a give-up deadline on the wall clock from the first attempt, requests
//!   included (`backon`'s `total_delay` counts only the sleeps): no attempt
//!   starts at or after `started + give_up_after`.
//!
//! Time is passed in ([`Retries::next_wait`] takes `now`), so the policy is
//! tested without sleeping. Imports nothing of the crate.

use backon::{BackoffBuilder, ExponentialBackoff, ExponentialBuilder};
use rand::Rng;
use std::time::{Duration, Instant};

/// How one kind of request is retried. Build one per sink or client; call
/// [`RetryPolicy::start`] for each request.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    /// Wait after the first failed attempt, before jitter (e.g. 1 s); doubles
    /// after each further failure.
    pub initial: Duration,
    /// Largest wait from the backoff, jitter included (e.g. 60 s). A longer
    /// `Retry-After` still wins.
    pub max: Duration,
    /// No attempt starts this long (e.g. 3600 s) or later after the first one.
    pub give_up_after: Duration,
    /// Relative jitter: the backoff is multiplied by a random factor in
    /// `[1 - jitter, 1 + jitter)`, e.g. 0.2 for ±20%; 0 for none. Clamped to
    /// `[0, 1]`.
    pub jitter: f64,
}

impl RetryPolicy {
    /// Retries of one request whose first attempt starts at `started`.
    pub fn start(&self, started: Instant) -> Retries {
        let backoff = ExponentialBuilder::new()
            .with_factor(2.0)
            .with_min_delay(self.initial)
            .with_max_delay(self.max)
            .without_max_times()
            .build();
        Retries {
            policy: *self,
            backoff,
            deadline: started.checked_add(self.give_up_after),
            attempts: 0,
        }
    }

    /// The backoff for a jitter draw `u` in `[0, 1)`: `base` scaled into
    /// `[1 - jitter, 1 + jitter)`, never above [`RetryPolicy::max`].
    fn jittered(&self, base: Duration, u: f64) -> Duration {
        let j = if self.jitter.is_finite() {
            self.jitter.clamp(0.0, 1.0)
        } else {
            0.0
        };
        if j == 0.0 {
            return base.min(self.max);
        }
        let factor = 1.0 - j + 2.0 * j * u.clamp(0.0, 1.0);
        Duration::try_from_secs_f64(base.as_secs_f64() * factor)
            .unwrap_or(self.max)
            .min(self.max)
    }
}

/// The retry state of one request: the backoff so far and the deadline.
#[derive(Debug)]
pub struct Retries {
    policy: RetryPolicy,
    backoff: ExponentialBackoff,
    /// `None` when `started + give_up_after` overflows: never give up.
    deadline: Option<Instant>,
    attempts: u32,
}

impl Retries {
    /// Attempt `n` (from 1) failed at `now` with a retryable error; the
    /// server said `retry_after`, if anything. The wait before attempt n+1,
    /// or `None` to give up: the next attempt could not start before the
    /// deadline.
    pub fn next_wait(&mut self, now: Instant, retry_after: Option<Duration>) -> Option<Duration> {
        let u = rand::rng().random_range(0.0..1.0);
        self.next_wait_with(now, retry_after, u)
    }

    /// [`Retries::next_wait`] with the jitter draw `u` in `[0, 1)` given.
    fn next_wait_with(
        &mut self,
        now: Instant,
        retry_after: Option<Duration>,
        u: f64,
    ) -> Option<Duration> {
        self.attempts = self.attempts.saturating_add(1);
        // Without a limit on times the iterator never ends; the cap is the fallback.
        let base = self.backoff.next().unwrap_or(self.policy.max);
        let backoff = self.policy.jittered(base, u);
        let wait = retry_after.map_or(backoff, |r| r.max(backoff));
        match self.deadline {
            Some(d) if now.checked_add(wait).is_none_or(|next| next >= d) => None,
            _ => Some(wait),
        }
    }

    /// Failed attempts so far (calls of [`Retries::next_wait`]).
    pub fn attempts(&self) -> u32 {
        self.attempts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn policy(initial_ms: u64, max_ms: u64, give_up_ms: u64, jitter: f64) -> RetryPolicy {
        RetryPolicy {
            initial: MS * initial_ms as u32,
            max: MS * max_ms as u32,
            give_up_after: MS * give_up_ms as u32,
            jitter,
        }
    }

    /// Within 1 µs: backon works in f32 seconds.
    fn about(d: Duration, ms: u64) -> bool {
        d.abs_diff(MS * ms as u32) < Duration::from_micros(1)
    }

    #[test]
    fn doubles_from_initial_up_to_the_cap() {
        let p = policy(100, 1_000, 3_600_000, 0.0);
        let t0 = Instant::now();
        let mut r = p.start(t0);
        let waits: Vec<Duration> = (0..7).filter_map(|_| r.next_wait(t0, None)).collect();
        let want = [100, 200, 400, 800, 1_000, 1_000, 1_000];
        assert_eq!(waits.len(), want.len());
        for (w, ms) in waits.iter().zip(want) {
            assert!(about(*w, ms), "{waits:?}");
        }
        assert_eq!(r.attempts(), 7);
    }

    #[test]
    fn a_longer_retry_after_wins_a_shorter_one_does_not() {
        let p = policy(1_000, 60_000, 3_600_000, 0.0);
        let t0 = Instant::now();
        let mut r = p.start(t0);
        assert_eq!(r.next_wait(t0, Some(MS * 5_000)), Some(MS * 5_000));
        // The backoff is at 2 s now: a Retry-After of 0.5 s does not shorten it.
        assert!(about(
            r.next_wait(t0, Some(MS * 500)).unwrap_or_default(),
            2_000
        ));
        // A Retry-After beyond the cap still wins: the server knows best.
        assert_eq!(r.next_wait(t0, Some(MS * 90_000)), Some(MS * 90_000));
    }

    #[test]
    fn no_attempt_starts_at_or_after_the_deadline() {
        // The triage client's shape: 200 ms doubling within 1.5 s.
        let p = policy(200, 1_500, 1_500, 0.0);
        let t0 = Instant::now();
        let mut r = p.start(t0);
        let mut now = t0;
        let mut starts = vec![0];
        while let Some(w) = r.next_wait(now, None) {
            now += w;
            starts.push(now.duration_since(t0).as_millis());
        }
        // 0, 0.2, 0.6, 1.4 s; the next would start at 3.0 s.
        assert_eq!(starts, vec![0, 200, 600, 1_400]);
        // Giving up at 1.4 s, not at the deadline: the 1.6 s wait would cross it.
        assert_eq!(r.attempts(), 4);

        // A Retry-After that reaches past the deadline ends it at once.
        let mut r = p.start(t0);
        assert_eq!(r.next_wait(t0, Some(MS * 1_500)), None);
        assert_eq!(r.next_wait(t0, Some(MS * 1_499)), Some(MS * 1_499));
        // Late in the window, a short wait is refused too.
        let mut r = p.start(t0);
        assert_eq!(r.next_wait(t0 + MS * 1_400, None), None);
    }

    #[test]
    fn a_huge_give_up_never_gives_up() {
        let p = RetryPolicy {
            give_up_after: Duration::MAX,
            ..policy(1_000, 60_000, 0, 0.0)
        };
        let t0 = Instant::now();
        let mut r = p.start(t0);
        for _ in 0..100 {
            assert!(r.next_wait(t0, None).is_some());
        }
    }

    #[test]
    fn jitter_stays_within_its_bounds_and_the_cap() {
        let p = policy(1_000, 60_000, u32::MAX as u64, 0.2);
        // The extremes of the draw.
        assert!(about(p.jittered(MS * 1_000, 0.0), 800));
        assert!(p.jittered(MS * 1_000, 0.999_999) < MS * 1_200);
        assert!(about(p.jittered(MS * 1_000, 0.5), 1_000));
        // Jitter never lifts the wait past the cap.
        assert_eq!(p.jittered(MS * 60_000, 0.999_999), MS * 60_000);
        assert!(about(p.jittered(MS * 60_000, 0.0), 48_000));
        // Random draws, attempt by attempt: within ±20% of 1, 2, 4, ... s, capped.
        let t0 = Instant::now();
        for _ in 0..50 {
            let mut r = p.start(t0);
            for n in 0..10u32 {
                let base = (MS * 1_000).saturating_mul(1 << n).min(MS * 60_000);
                let w = r.next_wait(t0, None).unwrap_or_default();
                assert!(
                    w >= base.mul_f64(0.8) - Duration::from_micros(1),
                    "{n}: {w:?}"
                );
                assert!(w <= base.mul_f64(1.2).min(MS * 60_000), "{n}: {w:?}");
            }
        }
        // Out-of-range jitter is clamped, NaN is none.
        let wide = RetryPolicy { jitter: 7.0, ..p };
        assert_eq!(wide.jittered(MS * 1_000, 0.0), Duration::ZERO);
        let nan = RetryPolicy {
            jitter: f64::NAN,
            ..p
        };
        assert_eq!(nan.jittered(MS * 1_000, 0.3), MS * 1_000);
    }
}
