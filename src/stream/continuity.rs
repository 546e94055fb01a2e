//! Continuity of per-symbol ids outside the book: trade ids and sequences.
//!
//! Where a keyless channel carries no book sequence (Coinbase
//! `level2_batch`), the ids that do exist are what shows lost messages:
//! Coinbase `ticker`/`matches`/`heartbeat` `sequence` ("increasing per
//! product"; docs.cdp.coinbase.com `exchange/websocket-feed/overview`),
//! Coinbase and Kraken v2 integer trade ids (Kraken's v1/v2 table lists the
//! v2 trade id as sequential), OKX `trades` `tradeId` with `count` (the print
//! aggregates ids `tradeId-count+1 ..= tradeId`; okx.com/docs-v5 "Trades
//! channel"). Binance `@trade` ids are per symbol and increasing too.
//!
//! Caveats: Coinbase `sequence` also counts messages of channels the client
//! did not subscribe to, so a `matches`-only subscriber sees jumps that are
//! not losses: use it on `heartbeat`/`ticker` with care and on `full`
//! exactly. Binance only sends trades of the symbol's own id space.

use serde::Serialize;

/// What one observed id says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum Step {
    /// The first id seen: nothing to compare with.
    First,
    /// Exactly the next id.
    Next,
    /// Ids between the last one and this one were not seen.
    Gap {
        /// The id that should have come (last + 1).
        expected: u64,
        /// The id (or span start) that came.
        received: u64,
    },
    /// This id (or the start of its span) is not after the last one:
    /// duplicate or out of order.
    Repeat {
        /// The last id seen.
        last: u64,
        /// The id (or span start) that came.
        received: u64,
    },
}

/// The last id seen on one (channel, symbol).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Continuity {
    last: Option<u64>,
}

impl Continuity {
    /// Nothing seen yet.
    pub fn new() -> Continuity {
        Continuity::default()
    }

    /// The last id seen.
    pub fn last(&self) -> Option<u64> {
        self.last
    }

    /// Observe one id that should be the previous + 1.
    pub fn observe(&mut self, id: u64) -> Step {
        self.observe_span(id, id)
    }

    /// Observe a span of ids `first ..= last` delivered in one message (an
    /// OKX aggregated print: `first = tradeId - count + 1`). Sequences that
    /// may legitimately repeat within a frame (Bybit trade `seq`) should not
    /// be fed here.
    pub fn observe_span(&mut self, first: u64, last: u64) -> Step {
        let step = match self.last {
            None => Step::First,
            Some(prev) if first == prev.saturating_add(1) => Step::Next,
            Some(prev) if first <= prev => Step::Repeat {
                last: prev,
                received: first,
            },
            Some(prev) => Step::Gap {
                expected: prev.saturating_add(1),
                received: first,
            },
        };
        if !matches!(step, Step::Repeat { .. }) {
            self.last = Some(last.max(first));
        }
        step
    }

    /// Forget the last id (after a reconnect: ids across connections are
    /// not comparable for every exchange).
    pub fn reset(&mut self) {
        self.last = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sees_next_gap_and_repeat() {
        let mut c = Continuity::new();
        assert_eq!(c.observe(10), Step::First);
        assert_eq!(c.observe(11), Step::Next);
        assert_eq!(
            c.observe(14),
            Step::Gap {
                expected: 12,
                received: 14
            }
        );
        assert_eq!(
            c.observe(14),
            Step::Repeat {
                last: 14,
                received: 14
            }
        );
        assert_eq!(c.observe(15), Step::Next);
    }

    /// OKX docs: `tradeId` = 123 with `count` = 3 aggregates 121, 122, 123.
    #[test]
    fn okx_spans_chain_through_count() {
        let mut c = Continuity::new();
        assert_eq!(c.observe_span(118, 120), Step::First);
        assert_eq!(c.observe_span(123 - 3 + 1, 123), Step::Next);
        assert_eq!(c.last(), Some(123));
    }
}
