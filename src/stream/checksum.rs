//! Book checksums: Kraken v2 (in force) and OKX (pinned to 0 since 2026-06).

use std::io::Write;

use super::book::OrderBook;
use super::decimal::Dec;
use super::message::Level;

/// Levels per side the Kraken v2 checksum covers.
pub const KRAKEN_LEVELS: usize = 10;

/// Levels per side the OKX checksum covers.
pub const OKX_LEVELS: usize = 25;

/// Kraken spot v2 book checksum (docs.kraken.com
/// `guides/websockets/book-checksum-v2`): for the top 10 asks, lowest price
/// first, then the top 10 bids, highest price first, append the price and
/// then the quantity, each printed with the instrument's precision
/// (`price_precision`, `qty_precision` from the `instrument` channel), the
/// decimal point removed and leading zeros stripped; the checksum is the
/// unsigned CRC32 (IEEE) of the concatenation.
///
/// A number with more decimals than the precision is rendered with all its
/// digits, which makes a mismatch rather than a silent rounding: a wrong
/// precision must show.
pub fn kraken(book: &OrderBook, price_precision: u8, qty_precision: u8) -> u32 {
    let mut h = crc32fast::Hasher::new();
    let mut buf = [0u8; 20];
    for l in book.asks().take(KRAKEN_LEVELS) {
        kraken_level(&mut h, &mut buf, l, price_precision, qty_precision);
    }
    for l in book.bids().take(KRAKEN_LEVELS) {
        kraken_level(&mut h, &mut buf, l, price_precision, qty_precision);
    }
    h.finalize()
}

fn kraken_level(h: &mut crc32fast::Hasher, buf: &mut [u8; 20], l: Level, pp: u8, qp: u8) {
    h.update(digits(
        buf,
        l.price.scaled_to(pp).unwrap_or(l.price.mantissa()),
    ));
    h.update(digits(buf, l.qty.scaled_to(qp).unwrap_or(l.qty.mantissa())));
}

/// Decimal digits of `n` without leading zeros (`0` renders as nothing, as
/// stripping every leading zero of "0.0000" leaves nothing).
fn digits(buf: &mut [u8; 20], mut n: u64) -> &[u8] {
    let mut i = buf.len();
    while n > 0 {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
    }
    &buf[i..]
}

/// OKX v5 order-book checksum as the docs define it ("Checksum" section of
/// the order book channel, okx.com/docs-v5): the first 25 bids and asks
/// interleaved as `bid.px:bid.sz:ask.px:ask.sz:...` (a side that runs out
/// just stops contributing), joined with `:`, CRC32 as a signed 32-bit
/// integer.
///
/// The docs use the prices as sent; [`Dec`] renders the shortest exact text,
/// which equals what OKX sends unless OKX pads with trailing zeros. OKX pins
/// the field to 0 in production since 2026-06-23, so this is checked only
/// when a message carries a non-zero value.
pub fn okx(book: &OrderBook) -> i32 {
    let mut s: Vec<u8> = Vec::with_capacity(25 * 4 * 12);
    let mut bids = book.bids().take(OKX_LEVELS);
    let mut asks = book.asks().take(OKX_LEVELS);
    let mut first = true;
    let mut put = |s: &mut Vec<u8>, d: Dec| {
        if !first {
            s.push(b':');
        }
        first = false;
        // Writing to a Vec cannot fail.
        let _ = write!(s, "{d}");
    };
    loop {
        let (b, a) = (bids.next(), asks.next());
        if b.is_none() && a.is_none() {
            break;
        }
        if let Some(b) = b {
            put(&mut s, b.price);
            put(&mut s, b.qty);
        }
        if let Some(a) = a {
            put(&mut s, a.price);
            put(&mut s, a.qty);
        }
    }
    crc32fast::hash(&s) as i32
}

#[cfg(test)]
mod tests {
    use super::*;

    fn l(p: &str, q: &str) -> Level {
        Level::new(p.parse().unwrap(), q.parse().unwrap())
    }

    /// The docs' worked check strings (shared fixtures SOURCES.md note 1):
    /// "3366.1:7:3366.8:9:3366:6:3368:8" → -1881014294 and
    /// "3366.1:7:3366.8:9:3368:8:3372:8" → 831078360.
    #[test]
    fn okx_matches_the_documented_check_strings() {
        let mut b = OrderBook::new();
        b.load(
            &[l("3366.1", "7"), l("3366", "6")],
            &[l("3366.8", "9"), l("3368", "8")],
        );
        assert_eq!(okx(&b), -1_881_014_294);
        let mut b = OrderBook::new();
        b.load(
            &[l("3366.1", "7")],
            &[l("3366.8", "9"), l("3368", "8"), l("3372", "8")],
        );
        assert_eq!(okx(&b), 831_078_360);
    }

    #[test]
    fn digits_strip_leading_zeros() {
        let mut buf = [0u8; 20];
        assert_eq!(digits(&mut buf, 5666), b"5666");
        assert_eq!(digits(&mut buf, 0), b"");
        assert_eq!(digits(&mut buf, u64::MAX), b"18446744073709551615");
    }
}
