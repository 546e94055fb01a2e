//! The simulated market of one streamed symbol: a small order book in whole
//! ticks that moves one or two levels per step, never crossed, with at
//! most [`LEVELS`] levels a side (so Kraken's depth-10 truncation and the
//! simulator agree on the book the checksum covers).

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use crate::stream::{Dec, Level, OrderBook, Side};

/// Levels per side.
pub const LEVELS: usize = 10;

/// Price decimals (Kraken BTC/USD `price_precision` 1).
pub const PRICE_SCALE: u8 = 1;
/// Quantity decimals (Kraken BTC/USD `qty_precision` 8).
pub const QTY_SCALE: u8 = 8;

/// One level change: side, price in ticks, quantity in units (0 removes).
pub type Change = (Side, u64, u64);

/// A book in ticks of 0.1 and quantity units of 1e-8.
#[derive(Debug, Clone)]
pub struct SimBook {
    mid: u64,
    bids: std::collections::BTreeMap<u64, u64>,
    asks: std::collections::BTreeMap<u64, u64>,
    rng: SmallRng,
}

/// Remove the worst level of one side's `map` (the lowest bid, the highest
/// ask), as the change that says so.
fn drop_worst(map: &mut std::collections::BTreeMap<u64, u64>, side: Side) -> Option<Change> {
    let worst = match side {
        Side::Buy => map.keys().next().copied(),
        Side::Sell => map.keys().next_back().copied(),
    }?;
    map.remove(&worst);
    Some((side, worst, 0))
}

/// A price in ticks of 0.1 as a decimal.
pub fn price(ticks: u64) -> Dec {
    Dec::new(ticks, PRICE_SCALE).unwrap_or(Dec::ZERO)
}

/// A quantity in units of 1e-8 as a decimal.
pub fn qty(units: u64) -> Dec {
    Dec::new(units, QTY_SCALE).unwrap_or(Dec::ZERO)
}

impl SimBook {
    /// A full book around `mid_ticks` (e.g. 970_000 for 97,000.0).
    pub fn new(seed: u64, mid_ticks: u64) -> SimBook {
        let mut b = SimBook {
            mid: mid_ticks.max(100),
            bids: Default::default(),
            asks: Default::default(),
            rng: SmallRng::seed_from_u64(seed),
        };
        for k in 1..=LEVELS as u64 {
            let q = b.qty();
            b.bids.insert(b.mid - k, q);
            let q = b.qty();
            b.asks.insert(b.mid + k, q);
        }
        b
    }

    fn qty(&mut self) -> u64 {
        self.rng.random_range(1..=200) * 1_000_000
    }

    /// Move the book: change a quantity, or replace a level with a new
    /// price; returns the changes as absolute quantities.
    pub fn step(&mut self) -> Vec<Change> {
        let side = if self.rng.random_bool(0.5) {
            Side::Buy
        } else {
            Side::Sell
        };
        let mid = self.mid;
        let q = self.qty();
        let replace = self.rng.random_bool(0.3);
        let offset = self.rng.random_range(1..=(LEVELS as u64 + 5));
        let map = match side {
            Side::Buy => &mut self.bids,
            Side::Sell => &mut self.asks,
        };
        let target = match side {
            Side::Buy => mid - offset,
            Side::Sell => mid + offset,
        };
        let mut changes = Vec::with_capacity(2);
        if replace && !map.contains_key(&target) && map.len() >= LEVELS {
            // Drop the worst level to make room.
            changes.extend(drop_worst(map, side));
        }
        if map.contains_key(&target) || map.len() < LEVELS {
            map.insert(target, q);
            changes.push((side, target, q));
        } else if let Some((&p, _)) = map.iter().next() {
            map.insert(p, q);
            changes.push((side, p, q));
        }
        changes
    }

    /// Move the book's centre to `mid_ticks` (the market moved), then
    /// [`SimBook::step`]: levels now on the wrong side go, the best level
    /// of each side is put one tick from the centre (the worst dropped to
    /// stay within [`LEVELS`]). One change per (side, price), the last.
    pub fn step_to(&mut self, mid_ticks: u64) -> Vec<Change> {
        let mut changes = Vec::new();
        let target = mid_ticks.max(LEVELS as u64 + 100);
        if target != self.mid {
            self.mid = target;
            let crossed_bids: Vec<u64> = self.bids.range(target..).map(|(p, _)| *p).collect();
            for p in crossed_bids {
                self.bids.remove(&p);
                changes.push((Side::Buy, p, 0));
            }
            let crossed_asks: Vec<u64> = self.asks.range(..=target).map(|(p, _)| *p).collect();
            for p in crossed_asks {
                self.asks.remove(&p);
                changes.push((Side::Sell, p, 0));
            }
            for (side, best) in [(Side::Buy, target - 1), (Side::Sell, target + 1)] {
                let q = self.qty();
                let map = match side {
                    Side::Buy => &mut self.bids,
                    Side::Sell => &mut self.asks,
                };
                if map.contains_key(&best) {
                    continue;
                }
                if map.len() >= LEVELS {
                    changes.extend(drop_worst(map, side));
                }
                map.insert(best, q);
                changes.push((side, best, q));
            }
        }
        changes.extend(self.step());
        // The last change of each level wins (a level removed, then re-added).
        let mut out: Vec<Change> = Vec::with_capacity(changes.len());
        for c in changes.into_iter().rev() {
            if !out.iter().any(|o| o.0 == c.0 && o.1 == c.1) {
                out.push(c);
            }
        }
        out.reverse();
        out
    }

    /// Cross the book: a bid one tick above the best ask, the worst bid
    /// dropped to stay within [`LEVELS`]. Nothing if already crossed.
    pub fn cross(&mut self) -> Vec<Change> {
        let (bid, ask) = self.best();
        if bid >= ask {
            return Vec::new();
        }
        let mut changes = Vec::with_capacity(2);
        if self.bids.len() >= LEVELS {
            changes.extend(drop_worst(&mut self.bids, Side::Buy));
        }
        let q = self.qty();
        self.bids.insert(ask + 1, q);
        changes.push((Side::Buy, ask + 1, q));
        changes
    }

    /// Delete every bid at or above the best ask ([`SimBook::cross`] undone).
    pub fn uncross(&mut self) -> Vec<Change> {
        let (_, ask) = self.best();
        let crossing: Vec<u64> = self.bids.range(ask..).map(|(p, _)| *p).collect();
        crossing
            .into_iter()
            .map(|p| {
                self.bids.remove(&p);
                (Side::Buy, p, 0)
            })
            .collect()
    }

    /// Bids (price ticks, quantity units), best first.
    pub fn bids(&self) -> Vec<(u64, u64)> {
        self.bids.iter().rev().map(|(p, q)| (*p, *q)).collect()
    }

    /// Asks (price ticks, quantity units), best first.
    pub fn asks(&self) -> Vec<(u64, u64)> {
        self.asks.iter().map(|(p, q)| (*p, *q)).collect()
    }

    /// Best bid and best ask, in ticks.
    pub fn best(&self) -> (u64, u64) {
        (
            self.bids
                .keys()
                .next_back()
                .copied()
                .unwrap_or(self.mid - 1),
            self.asks.keys().next().copied().unwrap_or(self.mid + 1),
        )
    }

    /// The book as the stream client holds it (for Kraken's checksum).
    pub fn order_book(&self) -> OrderBook {
        let mut b = OrderBook::new();
        let lv = |(p, q): (u64, u64)| Level::new(price(p), qty(q));
        let bids: Vec<Level> = self.bids().into_iter().map(lv).collect();
        let asks: Vec<Level> = self.asks().into_iter().map(lv).collect();
        b.load(&bids, &asks);
        b
    }

    /// Kraken v2 CRC32 of the current book at the simulator's precisions.
    pub fn kraken_checksum(&self) -> u32 {
        crate::stream::checksum::kraken(&self.order_book(), PRICE_SCALE, QTY_SCALE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_keep_the_book_uncrossed_and_bounded() {
        let mut b = SimBook::new(7, 970_000);
        for _ in 0..2_000 {
            let changes = b.step();
            assert!(!changes.is_empty());
            let (bid, ask) = b.best();
            assert!(bid < ask);
            assert!(b.bids().len() <= LEVELS && b.asks().len() <= LEVELS);
        }
        assert_eq!(price(970_001).to_string(), "97000.1");
    }

    #[test]
    fn cross_and_uncross_keep_the_depth() {
        let mut b = SimBook::new(7, 970_000);
        let changes = b.cross();
        let (bid, ask) = b.best();
        assert_eq!(bid, ask + 1, "{changes:?}");
        assert!(b.bids().len() <= LEVELS);
        assert!(b.cross().is_empty(), "crossed once");
        assert_eq!(b.uncross(), vec![(Side::Buy, ask + 1, 0)]);
        let (bid, ask) = b.best();
        assert!(bid < ask);
    }

    #[test]
    fn the_book_follows_the_market_uncrossed() {
        let mut b = SimBook::new(7, 970_000);
        let mut mirror = SimBook::new(7, 970_000);
        for i in 0..2_000u64 {
            // Up 300 ticks, then down 600, in steps of 0 to 40.
            let target = 970_000 + (i % 40) * 10 - if i > 1_000 { 600 } else { 0 };
            let changes = b.step_to(target);
            // Applying the changes to a copy gives the same book.
            for (side, p, q) in &changes {
                let m = match side {
                    Side::Buy => &mut mirror.bids,
                    Side::Sell => &mut mirror.asks,
                };
                if *q == 0 {
                    m.remove(p);
                } else {
                    m.insert(*p, *q);
                }
            }
            assert_eq!((b.bids(), b.asks()), (mirror.bids(), mirror.asks()));
            let (bid, ask) = b.best();
            assert!(bid < ask);
            assert!(b.bids().len() <= LEVELS && b.asks().len() <= LEVELS);
            let mid = (bid + ask) / 2;
            assert!(mid.abs_diff(target) <= 16, "{mid} vs {target}");
        }
        assert_eq!(qty(150_000_000).to_string(), "1.5");
    }
}
