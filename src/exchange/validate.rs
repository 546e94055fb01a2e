//! Validation of normalized payloads, in two layers:
//!
//! - [`check_payload`]: what one payload alone can prove wrong (bad numbers,
//!   crossed or locked book, unsorted or duplicate levels, empty book). Every
//!   adapter's `interpret` runs it, so `check` sees these reasons too.
//! - [`Validator`]: what only a history shows (price jump, stale timestamp,
//!   frozen data, sequence going backwards), one per probed endpoint. Time is
//!   passed in, never read here, so tests drive it with made-up clocks.

use super::{Level, OrderBook, Payload, Ticker};
use serde::{Deserialize, Serialize};
use std::time::Duration;

use crate::model::InvalidReason;
use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};

/// Thresholds of the stateful payload checks.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ValidationSettings {
    /// A move larger than this percentage from the last good price is a jump.
    pub max_price_jump_pct: f64,
    /// An exchange timestamp older than this (after clock-offset correction) is stale.
    #[serde(with = "humantime_serde")]
    pub max_age: Duration,
    /// The same update id or identical content for longer than this is frozen.
    #[serde(with = "humantime_serde")]
    pub frozen_after: Duration,
}

impl Default for ValidationSettings {
    fn default() -> Self {
        ValidationSettings {
            max_price_jump_pct: 10.0,
            max_age: Duration::from_secs(30),
            frozen_after: Duration::from_secs(60),
        }
    }
}

/// Checks that need nothing but the payload itself.
pub fn check_payload(payload: &Payload) -> Result<(), InvalidReason> {
    match payload {
        Payload::Time { server_ms } => {
            if *server_ms <= 0 {
                return Err(InvalidReason::NonPositive {
                    field: "server_time".into(),
                    value: *server_ms as f64,
                });
            }
            Ok(())
        }
        Payload::Ticker(t) => check_ticker(t),
        Payload::Book(b) => check_book(b),
    }
}

fn positive(field: &str, v: f64) -> Result<(), InvalidReason> {
    positive_lazy(|| field.to_string(), v)
}

/// The field name is only built when the check fails: this runs for every
/// level of every book, and formatting names up front dominated its cost.
fn positive_lazy(field: impl Fn() -> String, v: f64) -> Result<(), InvalidReason> {
    if !v.is_finite() {
        return Err(InvalidReason::BadNumber {
            field: field(),
            text: v.to_string(),
        });
    }
    if v <= 0.0 {
        return Err(InvalidReason::NonPositive {
            field: field(),
            value: v,
        });
    }
    Ok(())
}

fn check_ticker(t: &Ticker) -> Result<(), InvalidReason> {
    if t.last.is_none() && t.bid.is_none() && t.ask.is_none() {
        return Err(InvalidReason::Schema {
            detail: "ticker has no last price, bid or ask".into(),
        });
    }
    for (field, v) in [("last", t.last), ("bid", t.bid), ("ask", t.ask)] {
        if let Some(v) = v {
            positive(field, v)?;
        }
    }
    if let (Some(bid), Some(ask)) = (t.bid, t.ask) {
        cross_check(bid, ask)?;
    }
    Ok(())
}

fn cross_check(bid: f64, ask: f64) -> Result<(), InvalidReason> {
    if bid > ask {
        Err(InvalidReason::CrossedBook { bid, ask })
    } else if bid == ask {
        Err(InvalidReason::LockedBook { price: bid })
    } else {
        Ok(())
    }
}

fn check_book(b: &OrderBook) -> Result<(), InvalidReason> {
    // A book missing a whole side on a pair worth watching is a broken feed,
    // not a quiet market: it also leaves no mid price to watch.
    if b.bids.is_empty() || b.asks.is_empty() {
        return Err(InvalidReason::EmptyBook);
    }
    check_side(&b.bids, "bids", true)?;
    check_side(&b.asks, "asks", false)?;
    if let (Some(bid), Some(ask)) = (b.best_bid(), b.best_ask()) {
        cross_check(bid, ask)?;
    }
    Ok(())
}

fn check_side(levels: &[Level], side: &str, descending: bool) -> Result<(), InvalidReason> {
    for (i, l) in levels.iter().enumerate() {
        positive_lazy(|| format!("{side}[{i}].price"), l.price.value)?;
        positive_lazy(|| format!("{side}[{i}].size"), l.size.value)?;
    }
    for w in levels.windows(2) {
        let (a, b) = (w[0].price.value, w[1].price.value);
        if a == b {
            return Err(InvalidReason::DuplicateLevel {
                side: side.into(),
                price: a,
            });
        }
        if (descending && b > a) || (!descending && b < a) {
            return Err(InvalidReason::UnsortedLevels { side: side.into() });
        }
    }
    Ok(())
}

/// How many consecutive samples must agree on a new price level (each within
/// the jump threshold of the previous one) before it replaces the last good
/// price. One wild value never becomes the baseline; a real, lasting move
/// is reported this many times and then followed.
pub const JUMP_CONFIRM_SAMPLES: usize = 3;

/// The stateful checks of one endpoint's stream of payloads.
#[derive(Debug, Clone)]
pub struct Validator {
    settings: crate::exchange::validate::ValidationSettings,
    clock_offset_ms: i64,
    last_good_price: Option<f64>,
    /// Rejected prices that agree with each other, oldest first.
    pending_jump: Vec<f64>,
    last_update_id: Option<u64>,
    /// Fingerprint of the content (or the update id) and when it was first seen.
    unchanged: Option<(u64, i64)>,
}

impl Validator {
    pub fn new(settings: ValidationSettings) -> Self {
        Validator {
            settings,
            clock_offset_ms: 0,
            last_good_price: None,
            pending_jump: Vec::new(),
            last_update_id: None,
            unchanged: None,
        }
    }

    /// `server_ms - local_ms`, measured from the exchange's time endpoint.
    pub fn set_clock_offset_ms(&mut self, offset_ms: i64) {
        self.clock_offset_ms = offset_ms;
    }

    pub fn clock_offset_ms(&self) -> i64 {
        self.clock_offset_ms
    }

    /// The last price that passed every check, the baseline of jump detection.
    pub fn last_good_price(&self) -> Option<f64> {
        self.last_good_price
    }

    /// Check one payload received at local time `now_ms` (unix ms). The first
    /// failing rule wins, in this order: stateless checks, sequence going
    /// backwards, stale, frozen, price jump.
    pub fn check(&mut self, payload: &Payload, now_ms: i64) -> Result<(), InvalidReason> {
        check_payload(payload)?;
        let sequence = self.observe_sequence(payload);
        let frozen = self.observe_content(payload, now_ms);
        sequence?;
        self.check_age(payload, now_ms)?;
        frozen?;
        self.check_jump(payload)
    }

    /// An exchange that resets its sequence (OKX does in maintenance) is
    /// reported once and then followed from the new value, so one reset does
    /// not flag every later sample.
    fn observe_sequence(&mut self, payload: &Payload) -> Result<(), InvalidReason> {
        let Payload::Book(b) = payload else {
            return Ok(());
        };
        let Some(id) = b.update_id else { return Ok(()) };
        let prev = self.last_update_id.replace(id);
        match prev {
            Some(from) if id < from => Err(InvalidReason::SequenceBackwards { from, to: id }),
            _ => Ok(()),
        }
    }

    fn observe_content(&mut self, payload: &Payload, now_ms: i64) -> Result<(), InvalidReason> {
        let fp = fingerprint(payload);
        match self.unchanged {
            Some((prev, since)) if prev == fp => {
                let for_ms = now_ms.saturating_sub(since);
                if for_ms > self.settings.frozen_after.as_millis() as i64 {
                    return Err(InvalidReason::Frozen { for_ms });
                }
            }
            _ => self.unchanged = Some((fp, now_ms)),
        }
        Ok(())
    }

    fn check_age(&self, payload: &Payload, now_ms: i64) -> Result<(), InvalidReason> {
        // The time endpoint is the clock reference itself, not market data.
        if matches!(payload, Payload::Time { .. }) {
            return Ok(());
        }
        let Some(ts) = payload.exchange_ts_ms() else {
            return Ok(());
        };
        let server_now = now_ms.saturating_add(self.clock_offset_ms);
        let age_ms = server_now.saturating_sub(ts);
        if age_ms > self.settings.max_age.as_millis() as i64 {
            return Err(InvalidReason::Stale { age_ms });
        }
        Ok(())
    }

    fn check_jump(&mut self, payload: &Payload) -> Result<(), InvalidReason> {
        let Some(price) = payload.reference_price() else {
            return Ok(());
        };
        let max = self.settings.max_price_jump_pct;
        let Some(from) = self.last_good_price else {
            self.last_good_price = Some(price);
            return Ok(());
        };
        let pct = pct_move(from, price);
        if pct <= max {
            self.last_good_price = Some(price);
            self.pending_jump.clear();
            return Ok(());
        }
        let agrees = self
            .pending_jump
            .last()
            .is_none_or(|&prev| pct_move(prev, price) <= max);
        if !agrees {
            self.pending_jump.clear();
        }
        self.pending_jump.push(price);
        if self.pending_jump.len() >= JUMP_CONFIRM_SAMPLES {
            // The move lasted: it is the market now, not a glitch.
            self.last_good_price = Some(price);
            self.pending_jump.clear();
        }
        Err(InvalidReason::PriceJump {
            from,
            to: price,
            pct,
        })
    }
}

fn pct_move(from: f64, to: f64) -> f64 {
    ((to - from) / from).abs() * 100.0
}

/// What "unchanged" compares: the update id where the exchange gives one
/// (a new id means new data even if the top levels look alike), else the
/// exact text of every number.
fn fingerprint(payload: &Payload) -> u64 {
    let mut h = DefaultHasher::new();
    match payload {
        Payload::Time { server_ms } => (0u8, server_ms).hash(&mut h),
        Payload::Ticker(t) => {
            1u8.hash(&mut h);
            for v in [t.last, t.bid, t.ask] {
                v.map(f64::to_bits).hash(&mut h);
            }
            t.exchange_ts_ms.hash(&mut h);
        }
        Payload::Book(b) => match b.update_id {
            Some(id) => (2u8, id).hash(&mut h),
            None => {
                3u8.hash(&mut h);
                b.exchange_ts_ms.hash(&mut h);
                for l in b.bids.iter().chain(b.asks.iter()) {
                    l.price.text.hash(&mut h);
                    l.size.text.hash(&mut h);
                }
            }
        },
    }
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exchange::{Num, OrderBook, Ticker};
    use std::time::Duration;

    fn settings() -> ValidationSettings {
        ValidationSettings {
            max_price_jump_pct: 10.0,
            max_age: Duration::from_secs(30),
            frozen_after: Duration::from_secs(60),
        }
    }

    fn n(v: f64) -> Num {
        Num {
            value: v,
            text: v.to_string(),
        }
    }

    fn lvl(p: f64, s: f64) -> Level {
        Level {
            price: n(p),
            size: n(s),
        }
    }

    fn book(bids: &[(f64, f64)], asks: &[(f64, f64)], id: Option<u64>, ts: Option<i64>) -> Payload {
        Payload::Book(OrderBook {
            symbol: "BTCUSDT".into(),
            bids: bids.iter().map(|&(p, s)| lvl(p, s)).collect(),
            asks: asks.iter().map(|&(p, s)| lvl(p, s)).collect(),
            exchange_ts_ms: ts,
            update_id: id,
        })
    }

    fn ticker(bid: f64, ask: f64, ts: Option<i64>) -> Payload {
        Payload::Ticker(Ticker {
            symbol: "BTCUSDT".into(),
            last: None,
            bid: Some(bid),
            ask: Some(ask),
            exchange_ts_ms: ts,
        })
    }

    fn name(r: Result<(), InvalidReason>) -> &'static str {
        match r {
            Ok(()) => "ok",
            Err(e) => e.name(),
        }
    }

    #[test]
    fn good_book_passes() {
        assert_eq!(
            name(check_payload(&book(
                &[(100.0, 1.0), (99.0, 2.0)],
                &[(101.0, 1.0), (102.0, 1.0)],
                None,
                None
            ))),
            "ok"
        );
    }

    #[test]
    fn crossed_and_locked_books_are_named() {
        assert_eq!(
            check_payload(&book(&[(101.5, 1.0)], &[(101.0, 1.0)], None, None)),
            Err(InvalidReason::CrossedBook {
                bid: 101.5,
                ask: 101.0
            })
        );
        assert_eq!(
            check_payload(&book(&[(101.0, 1.0)], &[(101.0, 1.0)], None, None)),
            Err(InvalidReason::LockedBook { price: 101.0 })
        );
        assert_eq!(
            name(check_payload(&ticker(10.0, 9.0, None))),
            "crossed_book"
        );
        assert_eq!(
            name(check_payload(&ticker(10.0, 10.0, None))),
            "locked_book"
        );
    }

    #[test]
    fn empty_or_one_sided_books_are_empty() {
        assert_eq!(
            name(check_payload(&book(&[], &[], None, None))),
            "empty_book"
        );
        assert_eq!(
            name(check_payload(&book(&[(1.0, 1.0)], &[], None, None))),
            "empty_book"
        );
    }

    #[test]
    fn unsorted_and_duplicate_levels_are_named() {
        assert_eq!(
            check_payload(&book(
                &[(99.0, 1.0), (100.0, 1.0)],
                &[(101.0, 1.0)],
                None,
                None
            )),
            Err(InvalidReason::UnsortedLevels {
                side: "bids".into()
            })
        );
        assert_eq!(
            check_payload(&book(
                &[(100.0, 1.0)],
                &[(102.0, 1.0), (101.0, 1.0)],
                None,
                None
            )),
            Err(InvalidReason::UnsortedLevels {
                side: "asks".into()
            })
        );
        assert_eq!(
            check_payload(&book(
                &[(100.0, 1.0), (100.0, 2.0)],
                &[(101.0, 1.0)],
                None,
                None
            )),
            Err(InvalidReason::DuplicateLevel {
                side: "bids".into(),
                price: 100.0
            })
        );
    }

    #[test]
    fn non_positive_and_nan_numbers_are_named() {
        assert_eq!(
            check_payload(&book(&[(100.0, 0.0)], &[(101.0, 1.0)], None, None)),
            Err(InvalidReason::NonPositive {
                field: "bids[0].size".into(),
                value: 0.0
            })
        );
        assert_eq!(
            name(check_payload(&book(
                &[(100.0, 1.0)],
                &[(-1.0, 1.0)],
                None,
                None
            ))),
            "non_positive"
        );
        assert_eq!(
            name(check_payload(&book(
                &[(f64::NAN, 1.0)],
                &[(101.0, 1.0)],
                None,
                None
            ))),
            "bad_number"
        );
        assert_eq!(
            name(check_payload(&ticker(f64::INFINITY, 1.0, None))),
            "bad_number"
        );
        assert_eq!(
            name(check_payload(&Payload::Time { server_ms: 0 })),
            "non_positive"
        );
    }

    #[test]
    fn jump_beyond_threshold_is_flagged_and_not_a_baseline() {
        let mut v = Validator::new(settings());
        assert_eq!(v.check(&ticker(100.0, 101.0, None), 0), Ok(()));
        // 20% spike.
        let r = v.check(&ticker(120.0, 122.0, None), 1_000);
        assert!(
            matches!(r, Err(InvalidReason::PriceJump { from, .. }) if from == 100.5),
            "{r:?}"
        );
        assert_eq!(v.last_good_price(), Some(100.5));
        // Back to normal: compared against the last good value, so it passes.
        assert_eq!(v.check(&ticker(101.0, 102.0, None), 2_000), Ok(()));
        assert_eq!(v.last_good_price(), Some(101.5));
        // Within the threshold moves follow the market.
        assert_eq!(v.check(&ticker(108.0, 109.0, None), 3_000), Ok(()));
    }

    #[test]
    fn a_lasting_move_is_reported_then_followed() {
        let mut v = Validator::new(settings());
        assert_eq!(v.check(&ticker(100.0, 100.2, None), 0), Ok(()));
        for i in 0..JUMP_CONFIRM_SAMPLES {
            let r = v.check(
                &ticker(130.0 + i as f64 * 0.1, 130.2 + i as f64 * 0.1, None),
                1_000 * (i as i64 + 1),
            );
            assert_eq!(name(r), "price_jump");
        }
        assert_eq!(v.check(&ticker(130.5, 130.7, None), 10_000), Ok(()));
    }

    #[test]
    fn stale_uses_the_clock_offset() {
        let mut v = Validator::new(settings());
        let now = 1_700_000_000_000;
        // 31 s old by the local clock: stale.
        assert_eq!(
            v.check(&ticker(1.0, 2.0, Some(now - 31_000)), now),
            Err(InvalidReason::Stale { age_ms: 31_000 })
        );
        // The exchange's clock runs 5 s behind ours: 31 s by ours is 26 s by its own.
        v.set_clock_offset_ms(-5_000);
        assert_eq!(
            v.check(&ticker(1.0, 2.0, Some(now - 31_000 + 1)), now),
            Ok(())
        );
        // And ahead: a fresh-looking timestamp is in fact older.
        v.set_clock_offset_ms(20_000);
        assert_eq!(
            name(v.check(&ticker(1.0, 2.0, Some(now - 11_000)), now)),
            "stale"
        );
        // A timestamp in the future is not stale.
        v.set_clock_offset_ms(0);
        assert_eq!(v.check(&ticker(1.0, 2.0, Some(now + 5_000)), now), Ok(()));
    }

    #[test]
    fn same_update_id_for_too_long_is_frozen() {
        let mut v = Validator::new(settings());
        let b = book(&[(100.0, 1.0)], &[(101.0, 1.0)], Some(7), None);
        assert_eq!(v.check(&b, 0), Ok(()));
        assert_eq!(v.check(&b, 60_000), Ok(()));
        assert_eq!(
            v.check(&b, 60_001),
            Err(InvalidReason::Frozen { for_ms: 60_001 })
        );
        // A new id resets the clock even with the same levels.
        let b2 = book(&[(100.0, 1.0)], &[(101.0, 1.0)], Some(8), None);
        assert_eq!(v.check(&b2, 70_000), Ok(()));
        assert_eq!(v.check(&b2, 129_000), Ok(()));
    }

    #[test]
    fn identical_content_without_ids_is_frozen() {
        let mut v = Validator::new(settings());
        let t = ticker(100.0, 101.0, None);
        assert_eq!(v.check(&t, 0), Ok(()));
        assert_eq!(name(v.check(&t, 61_000)), "frozen");
        assert_eq!(v.check(&ticker(100.0, 101.5, None), 62_000), Ok(()));
    }

    #[test]
    fn sequence_backwards_is_named_once_then_followed() {
        let mut v = Validator::new(settings());
        assert_eq!(
            v.check(&book(&[(100.0, 1.0)], &[(101.0, 1.0)], Some(10), None), 0),
            Ok(())
        );
        assert_eq!(
            v.check(
                &book(&[(100.0, 1.0)], &[(101.0, 2.0)], Some(9), None),
                1_000
            ),
            Err(InvalidReason::SequenceBackwards { from: 10, to: 9 })
        );
        assert_eq!(
            v.check(
                &book(&[(100.0, 1.0)], &[(101.0, 3.0)], Some(11), None),
                2_000
            ),
            Ok(())
        );
    }

    #[test]
    fn stateless_failures_come_first() {
        let mut v = Validator::new(settings());
        assert_eq!(
            name(v.check(&book(&[], &[], Some(1), None), 0)),
            "empty_book"
        );
    }
}
