//! The price levels of one order book, keyed by exact price.
//!
//! [`OrderBook`] only stores levels; whether they may be trusted is the
//! business of [`super::integrity::LocalBook`], which wraps it with an
//! exchange's sequencing or checksum rule.

use std::collections::BTreeMap;

use serde::Serialize;

use super::decimal::Dec;
use super::message::{Level, Side};

/// Two sides of price → quantity, both in `BTreeMap`s keyed by the exact
/// [`Dec`] price. Bids iterate best (highest) first, asks best (lowest)
/// first. A quantity of zero removes the level; removing a level that is not
/// there is not an error (Binance: "can happen and is normal";
/// tickvault measured Coinbase deleting never-published levels).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OrderBook {
    bids: BTreeMap<Dec, Dec>,
    asks: BTreeMap<Dec, Dec>,
}

/// Best bid at or above best ask: a book no real market shows for long.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Crossing {
    /// Best bid equals best ask.
    Locked {
        /// Best bid price.
        bid: Dec,
        /// Best ask price.
        ask: Dec,
    },
    /// Best bid above best ask.
    Crossed {
        /// Best bid price.
        bid: Dec,
        /// Best ask price.
        ask: Dec,
    },
}

impl std::fmt::Display for Crossing {
    /// `locked: best bid = best ask = 101.0`, `crossed: best bid 101.5 >
    /// best ask 101.0`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Crossing::Locked { bid, .. } => write!(f, "locked: best bid = best ask = {bid}"),
            Crossing::Crossed { bid, ask } => {
                write!(f, "crossed: best bid {bid} > best ask {ask}")
            }
        }
    }
}

impl OrderBook {
    /// An empty book.
    pub fn new() -> OrderBook {
        OrderBook::default()
    }

    /// Drop every level.
    pub fn clear(&mut self) {
        self.bids.clear();
        self.asks.clear();
    }

    /// Set one level to an absolute quantity; zero removes it.
    pub fn set(&mut self, side: Side, level: Level) {
        let map = match side {
            Side::Buy => &mut self.bids,
            Side::Sell => &mut self.asks,
        };
        if level.qty.is_zero() {
            map.remove(&level.price);
        } else {
            map.insert(level.price, level.qty);
        }
    }

    /// Apply absolute quantities for several levels, in order (a level may
    /// appear twice in one message; the later one wins, as Kraken's docs ask).
    pub fn apply(&mut self, bids: &[Level], asks: &[Level]) {
        for l in bids {
            self.set(Side::Buy, *l);
        }
        for l in asks {
            self.set(Side::Sell, *l);
        }
    }

    /// Replace the whole book.
    pub fn load(&mut self, bids: &[Level], asks: &[Level]) {
        self.clear();
        self.apply(bids, asks);
    }

    /// Keep only the best `depth` levels per side (Kraken: "truncate to the
    /// subscribed depth after each update"; no deletes are sent for levels
    /// that fall out of scope).
    pub fn truncate(&mut self, depth: usize) {
        while self.bids.len() > depth {
            self.bids.pop_first();
        }
        while self.asks.len() > depth {
            self.asks.pop_last();
        }
    }

    /// Highest bid, if any.
    pub fn best_bid(&self) -> Option<Level> {
        self.bids.last_key_value().map(|(p, q)| Level::new(*p, *q))
    }

    /// Lowest ask, if any.
    pub fn best_ask(&self) -> Option<Level> {
        self.asks.first_key_value().map(|(p, q)| Level::new(*p, *q))
    }

    /// Bids, best (highest price) first.
    pub fn bids(&self) -> impl Iterator<Item = Level> + '_ {
        self.bids.iter().rev().map(|(p, q)| Level::new(*p, *q))
    }

    /// Asks, best (lowest price) first.
    pub fn asks(&self) -> impl Iterator<Item = Level> + '_ {
        self.asks.iter().map(|(p, q)| Level::new(*p, *q))
    }

    /// Quantity resting at a price on one side.
    pub fn qty_at(&self, side: Side, price: Dec) -> Option<Dec> {
        match side {
            Side::Buy => self.bids.get(&price).copied(),
            Side::Sell => self.asks.get(&price).copied(),
        }
    }

    /// Number of levels on each side: (bids, asks).
    pub fn depth(&self) -> (usize, usize) {
        (self.bids.len(), self.asks.len())
    }

    /// No level on either side.
    pub fn is_empty(&self) -> bool {
        self.bids.is_empty() && self.asks.is_empty()
    }

    /// Locked or crossed top of book, if so.
    pub fn crossing(&self) -> Option<Crossing> {
        let bid = self.best_bid()?.price;
        let ask = self.best_ask()?.price;
        match bid.cmp(&ask) {
            std::cmp::Ordering::Less => None,
            std::cmp::Ordering::Equal => Some(Crossing::Locked { bid, ask }),
            std::cmp::Ordering::Greater => Some(Crossing::Crossed { bid, ask }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn l(p: &str, q: &str) -> Level {
        Level::new(p.parse().unwrap(), q.parse().unwrap())
    }

    #[test]
    fn applies_removes_and_orders() {
        let mut b = OrderBook::new();
        b.load(
            &[l("100", "1"), l("99.5", "2"), l("101", "3")],
            &[l("102", "1"), l("103", "2")],
        );
        assert_eq!(b.best_bid(), Some(l("101", "3")));
        assert_eq!(b.best_ask(), Some(l("102", "1")));
        b.apply(&[l("101.00", "0")], &[l("102", "0"), l("150", "0")]);
        assert_eq!(b.best_bid(), Some(l("100", "1")));
        assert_eq!(b.best_ask(), Some(l("103", "2")));
        let bids: Vec<_> = b.bids().map(|x| x.price.to_string()).collect();
        assert_eq!(bids, ["100", "99.5"]);
        assert_eq!(b.depth(), (2, 1));
    }

    #[test]
    fn truncates_the_far_levels() {
        let mut b = OrderBook::new();
        b.load(
            &[l("1", "1"), l("2", "1"), l("3", "1")],
            &[l("4", "1"), l("5", "1"), l("6", "1")],
        );
        b.truncate(2);
        assert_eq!(b.bids().map(|x| x.price).collect::<Vec<_>>().len(), 2);
        assert_eq!(b.qty_at(Side::Buy, "1".parse().unwrap()), None);
        assert_eq!(b.qty_at(Side::Sell, "6".parse().unwrap()), None);
        assert!(b.qty_at(Side::Sell, "4".parse().unwrap()).is_some());
    }

    #[test]
    fn sees_locked_and_crossed_books() {
        let mut b = OrderBook::new();
        b.load(&[l("100", "1")], &[l("101", "1")]);
        assert_eq!(b.crossing(), None);
        b.set(Side::Buy, l("101", "1"));
        assert!(matches!(b.crossing(), Some(Crossing::Locked { .. })));
        b.set(Side::Buy, l("101.5", "1"));
        assert!(matches!(b.crossing(), Some(Crossing::Crossed { .. })));
    }
}
