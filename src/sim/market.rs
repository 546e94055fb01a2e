//! Moving prices for the simulated exchange: a seeded random walk per
//! symbol, with a book built around it.

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

/// The market of one symbol: a random walk advanced by elapsed time.
#[derive(Debug, Clone)]
pub struct Walk {
    mid: f64,
    spread: f64,
    update_id: u64,
    last_ms: i64,
    rng: rand::rngs::SmallRng,
}

impl Walk {
    pub fn new(seed: u64, start_price: f64, now_ms: i64) -> Self {
        use rand::SeedableRng;
        Walk {
            mid: start_price,
            spread: start_price * 0.0001,
            update_id: 1_000_000 + seed % 1000,
            last_ms: now_ms,
            rng: rand::rngs::SmallRng::seed_from_u64(seed),
        }
    }

    /// Move the price for the time since the last look, and return the quote.
    pub fn quote(&mut self, symbol: &str, now_ms: i64, depth: usize) -> Quote {
        use rand::Rng;
        let steps = ((now_ms - self.last_ms).max(0) / 100).clamp(0, 600);
        for _ in 0..steps {
            // About 2 bp of volatility per step, mean-reverting around the start.
            let shock: f64 = self.rng.random_range(-1.0..1.0);
            self.mid *= 1.0 + shock * 0.0002;
            self.update_id += self.rng.random_range(1..20);
        }
        if steps > 0 {
            self.last_ms = now_ms;
        }
        self.update_id += 1;
        let bid = round2(self.mid - self.spread / 2.0);
        let ask = round2((self.mid + self.spread / 2.0).max(bid + 0.01));
        let tick = 0.01_f64.max(round2(self.mid * 0.00002));
        let bids = (0..depth)
            .map(|i| (round2(bid - tick * i as f64), size(i)))
            .collect();
        let asks = (0..depth)
            .map(|i| (round2(ask + tick * i as f64), size(i)))
            .collect();
        Quote {
            symbol: symbol.to_string(),
            last: round2(self.mid),
            bid,
            ask,
            ts_ms: now_ms,
            update_id: self.update_id,
            bids,
            asks,
        }
    }
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

fn size(level: usize) -> f64 {
    ((0.25 + level as f64 * 0.137) * 1000.0).round() / 1000.0
}
