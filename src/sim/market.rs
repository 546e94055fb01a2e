//! Moving prices for the simulated exchanges: one common market per base
//! asset ([`fair_price`], a deterministic function of wall time, so the
//! REST server and the stream server agree without sharing state), each
//! exchange at a few basis points from it ([`venue_price`]), as real
//! venues are; and a book built around it.

use crate::model::{ExchangeKind, Pair};

/// A market state the shapes render from.
#[derive(Debug, Clone, PartialEq)]
pub struct Quote {
    pub symbol: String,
    pub last: f64,
    pub bid: f64,
    pub ask: f64,
    /// Exchange timestamp, unix ms.
    pub ts_ms: i64,
    /// Monotonic update id / sequence.
    pub update_id: u64,
    /// Best first: (price, size).
    pub bids: Vec<(f64, f64)>,
    pub asks: Vec<(f64, f64)>,
}

/// The market of one symbol on one exchange: the exchange's
/// [`venue_price`], with a moving update id.
#[derive(Debug, Clone)]
pub struct Walk {
    kind: ExchangeKind,
    spread: f64,
    update_id: u64,
    last_ms: i64,
    rng: rand::rngs::SmallRng,
}

impl Walk {
    pub fn new(kind: ExchangeKind, seed: u64, start_price: f64, now_ms: i64) -> Self {
        use rand::SeedableRng;
        Walk {
            kind,
            spread: start_price * 0.0001,
            update_id: 1_000_000 + seed % 1000,
            last_ms: now_ms,
            rng: rand::rngs::SmallRng::seed_from_u64(seed),
        }
    }

    /// The quote at `now_ms` (the update id advances with the time since
    /// the last look).
    pub fn quote(&mut self, symbol: &str, now_ms: i64, depth: usize) -> Quote {
        use rand::Rng;
        let steps = ((now_ms - self.last_ms).max(0) / 100).clamp(0, 600);
        for _ in 0..steps {
            self.update_id += self.rng.random_range(1..20);
        }
        if steps > 0 {
            self.last_ms = now_ms;
        }
        self.update_id += 1;
        let mid = venue_price(self.kind, symbol, now_ms);
        let bid = round2(mid - self.spread / 2.0);
        let ask = round2((mid + self.spread / 2.0).max(bid + 0.01));
        let tick = 0.01_f64.max(round2(mid * 0.00002));
        let bids = (0..depth)
            .map(|i| (round2(bid - tick * i as f64), size(i)))
            .collect();
        let asks = (0..depth)
            .map(|i| (round2(ask + tick * i as f64), size(i)))
            .collect();
        Quote {
            symbol: symbol.to_string(),
            last: round2(mid),
            bid,
            ask,
            ts_ms: now_ms,
            update_id: self.update_id,
            bids,
            asks,
        }
    }
}

/// Where a base asset starts: BTC 97,000, ETH 3,500, SOL 180 (anything
/// else trades like BTC).
pub fn start_price(symbol: &str) -> f64 {
    match base(symbol).as_str() {
        "ETH" => 3500.0,
        "SOL" => 180.0,
        _ => 97_000.0,
    }
}

fn base(symbol: &str) -> String {
    Pair::parse(symbol)
        .map(|p| p.base)
        .unwrap_or_else(|| symbol.to_ascii_uppercase())
}

/// The common market price of `symbol`'s base asset at `now_ms` (unix
/// ms): the start price moved by smooth pseudo-random noise at four time
/// scales (2 s to about half an hour, 1.5 to 45 bp), about a basis point
/// a second like BTC, bounded to about ±0.7%. Every simulated exchange
/// follows it, REST and streams alike.
pub fn fair_price(symbol: &str, now_ms: i64) -> f64 {
    let b = base(symbol);
    let seed = b.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, c| {
        (h ^ u64::from(c)).wrapping_mul(0x0100_0000_01b3)
    });
    let t = now_ms as f64;
    let drift: f64 = [
        (2_000.0, 1.5),
        (20_000.0, 4.5),
        (200_000.0, 14.0),
        (2_000_000.0, 45.0),
    ]
    .iter()
    .enumerate()
    .map(|(i, (period, amp))| amp * noise(seed.wrapping_add(i as u64), t / period))
    .sum();
    start_price(symbol) * (1.0 + drift / 10_000.0)
}

/// `symbol` on exchange `kind` at `now_ms`: the [`fair_price`] plus the
/// venue's own few basis points (a fixed offset per exchange, the quote's
/// basis: USD books sit 1.5 bp under USDT ones, and ±0.8 bp of noise of
/// its own), so healthy exchanges agree within about 5 bp.
pub fn venue_price(kind: ExchangeKind, symbol: &str, now_ms: i64) -> f64 {
    let venue = match kind {
        ExchangeKind::Binance | ExchangeKind::Generic => 0.0,
        ExchangeKind::Bybit => 0.6,
        ExchangeKind::Okx => -0.4,
        ExchangeKind::Coinbase => 1.0,
        ExchangeKind::Kraken => -0.8,
    };
    let quote = match Pair::parse(symbol).map(|p| p.quote) {
        Some(q) if q == "USD" => -1.5,
        Some(q) if q == "USDC" => -0.5,
        _ => 0.0,
    };
    let own = 0.8 * noise(0x5eed + kind as u64, now_ms as f64 / 1_500.0);
    fair_price(symbol, now_ms) * (1.0 + (venue + quote + own) / 10_000.0)
}

/// Smooth noise in [-1, 1]: hashed values at whole `x`, eased between.
fn noise(seed: u64, x: f64) -> f64 {
    let i = x.floor();
    let f = x - i;
    let (a, b) = (knot(seed, i as i64), knot(seed, i as i64 + 1));
    a + (b - a) * f * f * (3.0 - 2.0 * f)
}

/// A pseudo-random value in [-1, 1] for (seed, k) (splitmix64).
fn knot(seed: u64, k: i64) -> f64 {
    let mut z = seed ^ (k as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

fn size(level: usize) -> f64 {
    ((0.25 + level as f64 * 0.137) * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn venues_follow_one_market_within_a_few_bp() {
        let bps = |a: f64, b: f64| ((a - b) / b).abs() * 10_000.0;
        let mut moved: f64 = 0.0;
        for t in (0..3_600_000_i64).step_by(997) {
            let now = 1_764_000_000_000 + t;
            let fair = fair_price("BTCUSDT", now);
            moved = moved.max(bps(fair, 97_000.0));
            assert!(bps(fair, 97_000.0) < 70.0, "{fair}");
            for kind in [
                ExchangeKind::Binance,
                ExchangeKind::Kraken,
                ExchangeKind::Coinbase,
            ] {
                for sym in ["BTCUSDT", "BTC-USD", "XBTUSDT"] {
                    assert!(bps(venue_price(kind, sym, now), fair) < 4.0);
                }
            }
        }
        assert!(moved > 5.0, "the market moves: {moved}");
        assert_eq!(fair_price("BTCUSDT", 1_000), fair_price("BTC-USD", 1_000));
        assert!((fair_price("ETHUSDT", 1_000) / 3500.0 - 1.0).abs() < 0.01);
    }
}
