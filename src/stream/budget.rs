//! The connection-attempt budget of one exchange per IP: at most `max`
//! attempts in any sliding `window` ([`super::spec::ConnectLimit`]). Pure:
//! time is passed in. Workers of one exchange share one budget through a
//! [`ConnectGate`], so a reconnect storm of many connections stays under
//! the exchange's limit (nautilus_trader#1989: 4–5 reconnects/s tripped
//! Binance's 300 / 5 min).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::spec::ConnectLimit;

/// Attempt times within the window.
#[derive(Debug, Clone)]
pub struct ConnectBudget {
    limit: ConnectLimit,
    attempts: VecDeque<Instant>,
}

impl ConnectBudget {
    /// An empty budget under `limit`.
    pub fn new(limit: ConnectLimit) -> ConnectBudget {
        ConnectBudget {
            limit,
            attempts: VecDeque::new(),
        }
    }

    fn expire(&mut self, now: Instant) {
        while self
            .attempts
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) >= self.limit.window)
        {
            self.attempts.pop_front();
        }
    }

    /// How long until an attempt may start (zero: now).
    pub fn wait(&mut self, now: Instant) -> Duration {
        self.expire(now);
        if (self.attempts.len() as u64) < u64::from(self.limit.max.max(1)) {
            return Duration::ZERO;
        }
        self.attempts
            .front()
            .map(|t| (*t + self.limit.window).saturating_duration_since(now))
            .unwrap_or_default()
    }

    /// Take one attempt at `now` if the budget allows it; otherwise the
    /// wait before one is allowed.
    pub fn take(&mut self, now: Instant) -> Result<(), Duration> {
        match self.wait(now) {
            w if w.is_zero() => {
                self.attempts.push_back(now);
                Ok(())
            }
            w => Err(w),
        }
    }

    /// Attempts in the current window.
    pub fn used(&mut self, now: Instant) -> usize {
        self.expire(now);
        self.attempts.len()
    }
}

/// A [`ConnectBudget`] shared by the workers of one exchange.
#[derive(Debug, Clone)]
pub struct ConnectGate(Arc<Mutex<ConnectBudget>>);

impl ConnectGate {
    /// A gate for the workers of one exchange under `limit`.
    pub fn new(limit: ConnectLimit) -> ConnectGate {
        ConnectGate(Arc::new(Mutex::new(ConnectBudget::new(limit))))
    }

    /// The gate of `exchange` under its documented limit
    /// ([`ConnectLimit::for_exchange`]): create one per exchange (per IP)
    /// and hand clones to all of its workers.
    pub fn for_exchange(exchange: crate::model::ExchangeKind) -> ConnectGate {
        ConnectGate::new(ConnectLimit::for_exchange(exchange))
    }

    /// See [`ConnectBudget::take`].
    pub fn take(&self, now: Instant) -> Result<(), Duration> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).take(now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allows_max_per_window_then_waits_for_the_oldest_to_expire() {
        let mut b = ConnectBudget::new(ConnectLimit {
            max: 3,
            window: Duration::from_secs(1),
        });
        let t0 = Instant::now();
        let ms = |n| Duration::from_millis(n);
        assert!(b.take(t0).is_ok());
        assert!(b.take(t0 + ms(100)).is_ok());
        assert!(b.take(t0 + ms(200)).is_ok());
        assert_eq!(b.take(t0 + ms(300)), Err(ms(700)));
        assert!(b.take(t0 + ms(1000)).is_ok());
        assert_eq!(b.used(t0 + ms(1000)), 3);
        assert_eq!(b.used(t0 + ms(1250)), 1);
    }
}
