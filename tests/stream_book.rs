//! The stream layer's pure core against the exchanges' documented messages
//! (`tests/fixtures/streams/`, sources in its SOURCES.md): every fixture
//! parses to the values it shows, every integrity verdict of each exchange's
//! rule is reached, and properties over random update sequences hold.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed unwrap is a failed test

use exwatch::model::ExchangeKind;
use exwatch::stream::{
    self, BookKind, BookMsg, BookSeq, Check, Continuity, Crossing, Dec, Feed, Level, LocalBook,
    NoticeKind, Op, Rule, Side, Step, StreamMsg, Verdict, binance, bybit, coinbase, kraken, okx,
};
use proptest::prelude::*;

fn fixture(path: &str) -> String {
    let p = format!(
        "{}/tests/fixtures/streams/{path}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{p}: {e}"))
}

fn one(msgs: Vec<StreamMsg>) -> StreamMsg {
    assert_eq!(msgs.len(), 1, "{msgs:?}");
    msgs.into_iter().next().unwrap()
}

fn book(msg: StreamMsg) -> BookMsg {
    match msg {
        StreamMsg::Book(b) => b,
        other => panic!("not a book message: {other:?}"),
    }
}

fn d(s: &str) -> Dec {
    s.parse().unwrap()
}

fn lvl(p: &str, q: &str) -> Level {
    Level::new(d(p), d(q))
}

// ---------------------------------------------------------------- Binance

#[test]
fn binance_fixtures_parse() {
    let b = book(one(
        binance::parse(&fixture("binance/depth_update.json")).unwrap()
    ));
    assert_eq!((b.channel.as_str(), b.symbol.as_str()), ("depth", "BNBBTC"));
    assert_eq!(b.kind, BookKind::Delta);
    assert_eq!(
        b.seq,
        BookSeq::Binance {
            first: 157,
            last: 160
        }
    );
    assert_eq!(b.bids, vec![lvl("0.0024", "10")]);
    assert_eq!(b.asks, vec![lvl("0.0026", "100")]);
    assert_eq!(b.event_time_ms, Some(1_672_515_782_136));

    let combined = book(one(binance::parse(&fixture(
        "binance/depth_update_combined.json",
    ))
    .unwrap()));
    assert_eq!(combined, b, "the combined wrapper changes nothing");

    match one(binance::parse(&fixture("binance/trade.json")).unwrap()) {
        StreamMsg::Trade(t) => {
            assert_eq!(t.trade_id, Some(12345));
            assert_eq!((t.price, t.qty), (d("0.001"), d("100")));
            assert_eq!(t.side, Some(Side::Sell), "m=true: the buyer was the maker");
        }
        other => panic!("{other:?}"),
    }
    match one(binance::parse(&fixture("binance/book_ticker.json")).unwrap()) {
        StreamMsg::Quote(q) => {
            assert_eq!(q.channel, "bookTicker");
            assert_eq!(q.bid, Some(lvl("25.35190000", "31.21000000")));
            assert_eq!(q.ask, Some(lvl("25.36520000", "40.66000000")));
            assert_eq!(q.sequence, Some(400_900_217));
        }
        other => panic!("{other:?}"),
    }
    match one(binance::parse(&fixture("binance/ticker.json")).unwrap()) {
        StreamMsg::Quote(q) => {
            assert_eq!(q.channel, "ticker");
            assert_eq!(q.last, Some(d("0.0025")));
            assert_eq!(q.bid, Some(lvl("0.0024", "10")));
        }
        other => panic!("{other:?}"),
    }
    match one(binance::parse(&fixture("binance/subscribe_ack.json")).unwrap()) {
        StreamMsg::Ack(a) => assert_eq!((a.success, a.req_id.as_deref()), (true, Some("1"))),
        other => panic!("{other:?}"),
    }
    for f in [
        "binance/error_missing_method.json",
        "binance/error_invalid_json.json",
    ] {
        assert!(
            matches!(
                one(binance::parse(&fixture(f)).unwrap()),
                StreamMsg::Error(_)
            ),
            "{f}"
        );
    }
    for f in [
        "binance/server_shutdown.json",
        "binance/server_shutdown_combined.json",
    ] {
        let m = one(binance::parse(&fixture(f)).unwrap());
        assert!(m.is_planned_disconnect(), "{f}");
        assert_eq!(m.event_time_ms(), Some(1_770_123_456_789));
    }
    let rest = binance::parse_rest_depth(
        &std::fs::read_to_string(format!(
            "{}/tests/fixtures/binance/depth.json",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap(),
        "BNBBTC",
    )
    .unwrap();
    assert_eq!(
        rest.seq,
        BookSeq::BinanceRest {
            last_update_id: 1_027_024
        }
    );
    assert_eq!(rest.bids, vec![lvl("4", "431")]);
}

/// A depth event with one bid at `price`.
fn bn_event(first: u64, last: u64, price: &str, qty: &str) -> BookMsg {
    BookMsg {
        channel: "depth".into(),
        symbol: "BNBBTC".into(),
        kind: BookKind::Delta,
        bids: vec![lvl(price, qty)],
        asks: vec![],
        seq: BookSeq::Binance { first, last },
        event_time_ms: None,
    }
}

fn bn_snapshot(last_update_id: u64) -> BookMsg {
    BookMsg {
        channel: "depth".into(),
        symbol: "BNBBTC".into(),
        kind: BookKind::Snapshot,
        bids: vec![lvl("100", "1")],
        asks: vec![lvl("101", "1")],
        seq: BookSeq::BinanceRest { last_update_id },
        event_time_ms: None,
    }
}

#[test]
fn binance_buffers_then_syncs_with_first_event_bracketing() {
    let mut b = LocalBook::binance();
    assert!(!b.is_valid());
    assert_eq!(b.apply(&bn_event(100, 105, "99", "1")), Verdict::Buffered);
    assert_eq!(b.apply(&bn_event(106, 110, "98", "1")), Verdict::Buffered);
    assert_eq!(b.apply(&bn_event(111, 115, "97", "1")), Verdict::Buffered);
    assert!(b.best_bid().is_none(), "nothing served while buffering");
    // lastUpdateId 107: the first event (u=105) is dropped; 106..=110
    // brackets 108 and is applied; 111 chains.
    assert_eq!(b.apply(&bn_snapshot(107)), Verdict::Snapshot);
    assert!(b.is_valid());
    let bids: Vec<_> = b.book().unwrap().bids().map(|l| l.price).collect();
    assert_eq!(
        bids,
        vec![d("100"), d("98"), d("97")],
        "event 100-105 was dropped"
    );
    assert_eq!(b.buffered(), 0);
    assert_eq!(b.apply(&bn_event(116, 120, "96", "1")), Verdict::Applied);
    assert_eq!(b.last_check(), Check::Sequence);
}

#[test]
fn binance_first_event_exactly_at_last_update_id_plus_one() {
    let mut b = LocalBook::binance();
    b.apply(&bn_event(108, 108, "99", "1"));
    assert_eq!(b.apply(&bn_snapshot(107)), Verdict::Snapshot);
    assert_eq!(b.book().unwrap().qty_at(Side::Buy, d("99")), Some(d("1")));
    // u == lastUpdateId exactly: dropped.
    let mut b = LocalBook::binance();
    b.apply(&bn_event(100, 107, "99", "1"));
    assert_eq!(b.apply(&bn_snapshot(107)), Verdict::Snapshot);
    assert_eq!(b.book().unwrap().qty_at(Side::Buy, d("99")), None);
}

#[test]
fn binance_snapshot_older_than_the_buffer_is_refetched_and_the_buffer_kept() {
    let mut b = LocalBook::binance();
    b.apply(&bn_event(200, 205, "99", "1"));
    b.apply(&bn_event(206, 210, "98", "1"));
    assert_eq!(
        b.apply(&bn_snapshot(150)),
        Verdict::SnapshotTooOld {
            last_update_id: 150,
            first_buffered: 200
        }
    );
    assert!(!b.is_valid());
    assert_eq!(
        b.buffered(),
        2,
        "kept for the next snapshot (unicorn-binance PR #98)"
    );
    assert_eq!(b.apply(&bn_snapshot(203)), Verdict::Snapshot);
    assert!(b.is_valid());
}

#[test]
fn binance_gap_after_sync_invalidates_and_rebuffers() {
    let mut b = LocalBook::binance();
    assert_eq!(b.apply(&bn_snapshot(10)), Verdict::Snapshot);
    assert_eq!(b.apply(&bn_event(11, 12, "99", "1")), Verdict::Applied);
    assert_eq!(
        b.apply(&bn_event(11, 12, "99", "2")),
        Verdict::Stale {
            last: 12,
            received: 12
        },
        "a duplicate is ignored"
    );
    assert_eq!(
        b.apply(&bn_event(14, 15, "98", "1")),
        Verdict::Gap {
            expected: 13,
            received: 14
        }
    );
    assert!(!b.is_valid());
    assert!(b.best_bid().is_none(), "a stitched book is never served");
    assert_eq!(b.gaps(), 1);
    assert_eq!(b.apply(&bn_event(16, 17, "97", "1")), Verdict::Buffered);
    assert_eq!(b.apply(&bn_snapshot(14)), Verdict::Snapshot);
    assert!(b.is_valid());
    assert_eq!(b.resyncs(), 1);
}

#[test]
fn binance_gap_inside_the_buffer_is_reported_at_sync() {
    let mut b = LocalBook::binance();
    b.apply(&bn_event(10, 12, "99", "1"));
    b.apply(&bn_event(15, 16, "98", "1")); // 13..=14 missing
    assert_eq!(
        b.apply(&bn_snapshot(11)),
        Verdict::Gap {
            expected: 13,
            received: 15
        }
    );
    assert!(!b.is_valid());
    assert_eq!(
        b.buffered(),
        1,
        "buffering restarts at the event after the hole"
    );
}

// ---------------------------------------------------------------- Bybit

#[test]
fn bybit_fixtures_parse() {
    let s = book(one(
        bybit::parse(&fixture("bybit/orderbook_snapshot.json")).unwrap()
    ));
    assert_eq!(
        (s.channel.as_str(), s.symbol.as_str()),
        ("orderbook.50", "BTCUSDT")
    );
    assert_eq!(s.kind, BookKind::Snapshot);
    assert_eq!(
        s.seq,
        BookSeq::Bybit {
            update_id: 18_521_288,
            seq: 7_961_638_724
        }
    );
    assert_eq!(s.bids[0], lvl("16493.50", "0.006"));
    let delta = book(one(
        bybit::parse(&fixture("bybit/orderbook_delta.json")).unwrap()
    ));
    let mut b = LocalBook::new(Rule::Bybit);
    assert_eq!(b.apply(&s), Verdict::Snapshot);
    assert_eq!(b.apply(&delta), Verdict::Applied);
    assert_eq!(
        b.best_bid(),
        Some(lvl("16493", "0.1")),
        "16493.50 removed by qty 0"
    );
    assert_eq!(b.best_ask(), Some(lvl("16611", "0.04")));

    match one(bybit::parse(&fixture("bybit/public_trade.json")).unwrap()) {
        StreamMsg::Trade(t) => {
            assert_eq!(
                t.trade_ref.as_deref(),
                Some("20f43950-d8dd-5b31-9112-a178eb6023af")
            );
            assert_eq!(
                (t.price, t.qty, t.side),
                (d("16578.50"), d("0.001"), Some(Side::Buy))
            );
        }
        other => panic!("{other:?}"),
    }
    match one(bybit::parse(&fixture("bybit/tickers_spot.json")).unwrap()) {
        StreamMsg::Quote(q) => {
            assert_eq!(
                (q.channel.as_str(), q.last),
                ("tickers", Some(d("16363.78")))
            );
            assert_eq!(q.sequence, Some(496_622_841));
        }
        other => panic!("{other:?}"),
    }
    match one(bybit::parse(&fixture("bybit/subscribe_ack.json")).unwrap()) {
        StreamMsg::Ack(a) => assert_eq!((a.success, a.req_id.as_deref()), (true, Some("10001"))),
        other => panic!("{other:?}"),
    }
    match one(bybit::parse(&fixture("bybit/subscribe_error.json")).unwrap()) {
        StreamMsg::Ack(a) => {
            assert!(!a.success);
            assert!(a.message.unwrap().contains("handler not found"));
        }
        other => panic!("{other:?}"),
    }
    for f in ["bybit/pong_spot.json", "bybit/pong_option.json"] {
        assert_eq!(
            one(bybit::parse(&fixture(f)).unwrap()),
            StreamMsg::Pong,
            "{f}"
        );
    }
}

fn by_msg(u: u64, kind: BookKind, price: &str, qty: &str) -> BookMsg {
    BookMsg {
        channel: "orderbook.50".into(),
        symbol: "BTCUSDT".into(),
        kind,
        bids: vec![lvl(price, qty)],
        asks: vec![lvl("1000", "1")],
        seq: BookSeq::Bybit {
            update_id: u,
            seq: u,
        },
        event_time_ms: None,
    }
}

#[test]
fn bybit_verdicts() {
    let mut b = LocalBook::new(Rule::Bybit);
    assert_eq!(
        b.apply(&by_msg(5, BookKind::Delta, "1", "1")),
        Verdict::AwaitingSnapshot
    );
    assert_eq!(
        b.apply(&by_msg(5, BookKind::Snapshot, "10", "1")),
        Verdict::Snapshot
    );
    assert_eq!(
        b.apply(&by_msg(6, BookKind::Delta, "11", "1")),
        Verdict::Applied
    );
    assert_eq!(
        b.apply(&by_msg(6, BookKind::Delta, "11", "1")),
        Verdict::Stale {
            last: 6,
            received: 6
        }
    );
    assert_eq!(
        b.apply(&by_msg(8, BookKind::Delta, "12", "1")),
        Verdict::Gap {
            expected: 7,
            received: 8
        }
    );
    assert!(!b.is_valid());
    assert_eq!(
        b.apply(&by_msg(9, BookKind::Delta, "12", "1")),
        Verdict::AwaitingSnapshot
    );
    assert_eq!(
        b.apply(&by_msg(20, BookKind::Snapshot, "10", "1")),
        Verdict::Snapshot
    );
    assert_eq!(b.resyncs(), 1);
    // Service restart: u=1 overwrites, it is not a gap.
    assert_eq!(
        b.apply(&by_msg(1, BookKind::Snapshot, "50", "2")),
        Verdict::Reset
    );
    assert!(b.is_valid());
    assert_eq!(b.best_bid(), Some(lvl("50", "2")));
    assert_eq!(
        b.apply(&by_msg(2, BookKind::Delta, "51", "1")),
        Verdict::Applied
    );
}

#[test]
fn a_caller_invalidation_needs_a_snapshot_and_counts_as_a_resync() {
    let mut b = LocalBook::new(Rule::Bybit);
    assert_eq!(
        b.apply(&by_msg(5, BookKind::Snapshot, "10", "1")),
        Verdict::Snapshot
    );
    assert_eq!(b.resyncs(), 0, "the first snapshot is a sync, not a resync");
    b.invalidate(); // e.g. the socket reconnected
    assert_eq!(
        b.apply(&by_msg(6, BookKind::Delta, "11", "1")),
        Verdict::AwaitingSnapshot
    );
    assert_eq!(
        b.apply(&by_msg(9, BookKind::Snapshot, "10", "1")),
        Verdict::Snapshot
    );
    assert_eq!(b.resyncs(), 1);
    assert_eq!(b.gaps(), 0);
}

// ---------------------------------------------------------------- OKX

#[test]
fn okx_fixtures_parse() {
    let s = book(one(okx::parse(&fixture("okx/books_snapshot.json")).unwrap()));
    assert_eq!(
        (s.channel.as_str(), s.symbol.as_str()),
        ("books", "BTC-USDT")
    );
    assert_eq!(
        s.seq,
        BookSeq::Okx {
            seq_id: 123_456,
            prev_seq_id: -1,
            checksum: -855_196_043
        }
    );
    assert_eq!((s.bids.len(), s.asks.len()), (8, 8));
    assert_eq!(s.event_time_ms, Some(1_597_026_383_085));
    let u = book(one(okx::parse(&fixture("okx/books_update.json")).unwrap()));
    assert_eq!(u.kind, BookKind::Delta);

    match one(okx::parse(&fixture("okx/trades.json")).unwrap()) {
        StreamMsg::Trade(t) => {
            assert_eq!((t.trade_id, t.count), (Some(130_639_474), 3));
            assert_eq!((t.price, t.qty), (d("42219.9"), d("0.12060306")));
        }
        other => panic!("{other:?}"),
    }
    match one(okx::parse(&fixture("okx/tickers.json")).unwrap()) {
        StreamMsg::Quote(q) => {
            assert_eq!(q.bid, Some(lvl("8888.88", "5")));
            assert_eq!(q.ask, Some(lvl("9999.99", "11")));
        }
        other => panic!("{other:?}"),
    }
    match one(okx::parse(&fixture("okx/bbo_tbt.json")).unwrap()) {
        StreamMsg::Quote(q) => assert_eq!(q.bid, Some(lvl("111.05", "57745"))),
        other => panic!("{other:?}"),
    }
    match one(okx::parse(&fixture("okx/subscribe_ack.json")).unwrap()) {
        StreamMsg::Ack(a) => {
            assert_eq!(a.channel.as_deref(), Some("trades"));
            assert_eq!(a.symbol.as_deref(), Some("BTC-USDT"));
            assert_eq!(a.req_id.as_deref(), Some("1512"));
        }
        other => panic!("{other:?}"),
    }
    for (f, code) in [
        ("okx/error_60012.json", "60012"),
        ("okx/error_60018.json", "60018"),
    ] {
        match one(okx::parse(&fixture(f)).unwrap()) {
            StreamMsg::Error(e) => assert_eq!(e.code.as_deref(), Some(code)),
            other => panic!("{other:?}"),
        }
    }
    let n = one(okx::parse(&fixture("okx/notice_64008.json")).unwrap());
    assert!(n.is_planned_disconnect());
    assert_eq!(
        one(okx::parse(&fixture("okx/pong.txt")).unwrap()),
        StreamMsg::Pong
    );
}

/// The docs' example checksum (-855196043) does not match the docs' own
/// levels (shared fixtures SOURCES.md note 1: Python `zlib.crc32` gives
/// -2102840145). The book must report exactly that mismatch.
#[test]
fn okx_placeholder_checksum_of_the_docs_is_a_mismatch() {
    let s = book(one(okx::parse(&fixture("okx/books_snapshot.json")).unwrap()));
    let mut b = LocalBook::new(Rule::Okx);
    assert_eq!(
        b.apply(&s),
        Verdict::ChecksumMismatch {
            expected: -855_196_043,
            computed: -2_102_840_145
        }
    );
    assert!(!b.is_valid());
}

/// With the value Python's `zlib.crc32` gives for the docs' levels, the same
/// snapshot verifies: a non-zero checksum is checked, and it can pass.
#[test]
fn okx_nonzero_checksum_is_checked_and_can_pass() {
    let text = fixture("okx/books_snapshot.json").replace("-855196043", "-2102840145");
    let s = book(one(okx::parse(&text).unwrap()));
    let mut b = LocalBook::new(Rule::Okx);
    assert_eq!(b.apply(&s), Verdict::Snapshot);
    assert!(b.is_valid());
    assert_eq!(b.last_check(), Check::Checksum);
    assert_eq!(b.resyncs(), 0);
}

fn okx_msg(seq: i64, prev: i64, price: &str) -> BookMsg {
    BookMsg {
        channel: "books".into(),
        symbol: "BTC-USDT".into(),
        kind: if prev == -1 {
            BookKind::Snapshot
        } else {
            BookKind::Delta
        },
        bids: vec![lvl(price, "1")],
        asks: vec![lvl("1000", "1")],
        seq: BookSeq::Okx {
            seq_id: seq,
            prev_seq_id: prev,
            checksum: 0,
        },
        event_time_ms: None,
    }
}

#[test]
fn okx_verdicts_with_the_production_zero_checksum() {
    let mut b = LocalBook::new(Rule::Okx);
    assert_eq!(b.apply(&okx_msg(10, 9, "1")), Verdict::AwaitingSnapshot);
    assert_eq!(b.apply(&okx_msg(100, -1, "1")), Verdict::Snapshot);
    assert_eq!(b.last_check(), Check::Sequence, "checksum 0 is not checked");
    // seqId jumps are normal (identifiers, not counters): only the chain counts.
    assert_eq!(b.apply(&okx_msg(107, 100, "2")), Verdict::Applied);
    assert_eq!(b.apply(&okx_msg(107, 107, "2")), Verdict::Keepalive);
    assert_eq!(b.apply(&okx_msg(3, 107, "3")), Verdict::Reset);
    assert!(b.is_valid());
    assert_eq!(b.apply(&okx_msg(5, 3, "4")), Verdict::Applied);
    assert_eq!(
        b.apply(&okx_msg(5, 3, "4")),
        Verdict::Stale {
            last: 5,
            received: 5
        }
    );
    assert_eq!(
        b.apply(&okx_msg(20, 9, "5")),
        Verdict::Gap {
            expected: 5,
            received: 9
        }
    );
    assert!(!b.is_valid());
    assert_eq!(b.apply(&okx_msg(21, 20, "5")), Verdict::AwaitingSnapshot);
    assert_eq!(b.apply(&okx_msg(30, -1, "5")), Verdict::Snapshot);
    assert!(b.is_valid());
}

// ---------------------------------------------------------------- Kraken

/// MATIC/USD in the docs: price precision 4, qty precision 8.
fn kraken_book() -> LocalBook {
    LocalBook::new(Rule::Kraken {
        depth: 10,
        price_precision: 4,
        qty_precision: 8,
    })
}

#[test]
fn kraken_documented_checksums_verify_on_snapshot_and_update() {
    let mut b = kraken_book();
    let s = book(one(
        kraken::parse(&fixture("kraken/book_snapshot.json")).unwrap()
    ));
    assert_eq!(
        s.seq,
        BookSeq::Kraken {
            checksum: 2_439_117_997
        }
    );
    assert_eq!(s.bids[0], lvl("0.5666", "4831.75496356"));
    assert_eq!(b.apply(&s), Verdict::Snapshot);
    assert_eq!(b.last_check(), Check::Checksum);
    let u = book(one(
        kraken::parse(&fixture("kraken/book_update.json")).unwrap()
    ));
    assert_eq!(u.event_time_ms, Some(1_696_613_755_440));
    assert_eq!(
        b.apply(&u),
        Verdict::Applied,
        "checksum 2114181697 of the docs' update"
    );
    assert_eq!(
        b.book().unwrap().qty_at(Side::Buy, d("0.5657")),
        Some(d("1098.3947558"))
    );
}

#[test]
fn kraken_one_changed_digit_is_a_mismatch() {
    let text = fixture("kraken/book_snapshot.json").replace("4831.75496356", "4831.75496357");
    let s = book(one(kraken::parse(&text).unwrap()));
    let mut b = kraken_book();
    match b.apply(&s) {
        Verdict::ChecksumMismatch { expected, computed } => {
            assert_eq!(expected, 2_439_117_997);
            assert_ne!(computed, expected);
        }
        other => panic!("{other:?}"),
    }
    assert!(!b.is_valid());
    assert_eq!(b.checksum_failures(), 1);
    // The raw float text without the instrument's precision also fails
    // (shared fixtures SOURCES.md note 2: 3830085102).
    let mut wrong_precision = LocalBook::new(Rule::Kraken {
        depth: 10,
        price_precision: 0,
        qty_precision: 0,
    });
    let s = book(one(
        kraken::parse(&fixture("kraken/book_snapshot.json")).unwrap()
    ));
    assert_eq!(
        wrong_precision.apply(&s),
        Verdict::ChecksumMismatch {
            expected: 2_439_117_997,
            computed: 3_830_085_102
        }
    );
}

#[test]
fn kraken_update_after_a_mismatch_waits_for_a_snapshot() {
    let mut b = kraken_book();
    let s = book(one(
        kraken::parse(&fixture("kraken/book_snapshot.json")).unwrap()
    ));
    b.apply(&s);
    let mut u = book(one(
        kraken::parse(&fixture("kraken/book_update.json")).unwrap()
    ));
    u.seq = BookSeq::Kraken { checksum: 1 };
    assert!(matches!(b.apply(&u), Verdict::ChecksumMismatch { .. }));
    assert_eq!(b.apply(&u), Verdict::AwaitingSnapshot);
    assert_eq!(b.apply(&s), Verdict::Snapshot);
    assert_eq!(b.resyncs(), 1);
}

#[test]
fn kraken_truncates_to_the_subscribed_depth_before_checking() {
    // A new best bid pushes the 10th bid out of a depth-10 book; Kraken
    // sends no delete for it, and the checksum only matches if it is gone.
    let mut b = kraken_book();
    let s = book(one(
        kraken::parse(&fixture("kraken/book_snapshot.json")).unwrap()
    ));
    b.apply(&s);
    let mut expected_book = b.levels_unchecked().clone();
    expected_book.set(Side::Buy, lvl("0.5667", "1"));
    expected_book.truncate(10);
    let checksum = stream::checksum::kraken(&expected_book, 4, 8);
    let u = BookMsg {
        channel: "book".into(),
        symbol: "MATIC/USD".into(),
        kind: BookKind::Delta,
        bids: vec![lvl("0.5667", "1")],
        asks: vec![],
        seq: BookSeq::Kraken { checksum },
        event_time_ms: None,
    };
    assert_eq!(b.apply(&u), Verdict::Applied);
    assert_eq!(b.book().unwrap().depth(), (10, 10));
    assert_eq!(b.book().unwrap().qty_at(Side::Buy, d("0.5657")), None);
}

#[test]
fn kraken_other_fixtures_parse() {
    match one(kraken::parse(&fixture("kraken/ticker.json")).unwrap()) {
        StreamMsg::Quote(q) => {
            assert_eq!(q.bid, Some(lvl("0.10025", "740")));
            assert_eq!(q.ask, Some(lvl("0.10036", "1361.44813783")));
            assert_eq!(q.last, Some(d("0.10035")));
        }
        other => panic!("{other:?}"),
    }
    match one(kraken::parse(&fixture("kraken/trade.json")).unwrap()) {
        StreamMsg::Trade(t) => {
            assert_eq!((t.trade_id, t.side), (Some(4_665_906), Some(Side::Sell)));
            assert_eq!((t.price, t.qty), (d("0.5117"), d("40")));
        }
        other => panic!("{other:?}"),
    }
    let hb = one(kraken::parse(&fixture("kraken/heartbeat.json")).unwrap());
    assert!(matches!(hb, StreamMsg::Heartbeat(_)) && !hb.is_data());
    assert_eq!(
        one(kraken::parse(&fixture("kraken/pong.json")).unwrap()),
        StreamMsg::Pong
    );
    match one(kraken::parse(&fixture("kraken/subscribe_ack.json")).unwrap()) {
        StreamMsg::Ack(a) => {
            assert!(a.success);
            assert_eq!(
                (a.channel.as_deref(), a.symbol.as_deref()),
                (Some("book"), Some("MATIC/USD"))
            );
        }
        other => panic!("{other:?}"),
    }
    match one(kraken::parse(&fixture("kraken/subscribe_error.json")).unwrap()) {
        StreamMsg::Ack(a) => {
            assert!(!a.success);
            assert_eq!(a.symbol.as_deref(), Some("XBT/USD"));
            assert_eq!(
                a.message.as_deref(),
                Some("Currency pair not supported XBT/USD")
            );
        }
        other => panic!("{other:?}"),
    }
    match one(kraken::parse(&fixture("kraken/status.json")).unwrap()) {
        StreamMsg::Notice(n) => assert_eq!(n.kind, NoticeKind::Online),
        other => panic!("{other:?}"),
    }
    assert!(
        one(kraken::parse(&fixture("kraken/status_maintenance.json")).unwrap())
            .is_planned_disconnect()
    );
    match one(kraken::parse(&fixture("kraken/instrument.json")).unwrap()) {
        StreamMsg::Instrument(i) => {
            assert_eq!(
                (i.symbol.as_str(), i.price_precision, i.qty_precision),
                ("MATIC/USD", 4, 8)
            );
        }
        other => panic!("{other:?}"),
    }
}

// ---------------------------------------------------------------- Coinbase

#[test]
fn coinbase_fixtures_parse_and_the_book_has_no_sequence_to_check() {
    let s = book(one(
        coinbase::parse(&fixture("coinbase/snapshot.json")).unwrap()
    ));
    assert_eq!(
        (s.channel.as_str(), s.symbol.as_str()),
        ("level2_batch", "BTC-USD")
    );
    let u = book(one(
        coinbase::parse(&fixture("coinbase/l2update.json")).unwrap()
    ));
    assert_eq!(u.bids, vec![lvl("22356.27", "0"), lvl("22356.3", "1")]);
    assert_eq!(u.event_time_ms, Some(1_659_626_705_010));
    let mut b = LocalBook::new(Rule::Coinbase);
    assert_eq!(b.apply(&u), Verdict::AwaitingSnapshot);
    assert_eq!(b.apply(&s), Verdict::Snapshot);
    assert_eq!(b.last_check(), Check::Unverified);
    assert_eq!(b.crossing(), None);
    // The docs' update puts a bid at 22356.30 above the snapshot's ask at
    // 10102.55: the two examples together make a crossed book.
    assert_eq!(b.apply(&u), Verdict::Applied);
    assert_eq!(
        b.crossing(),
        Some(Crossing::Crossed {
            bid: d("22356.3"),
            ask: d("10102.55")
        })
    );

    match one(coinbase::parse(&fixture("coinbase/ticker.json")).unwrap()) {
        StreamMsg::Quote(q) => {
            assert_eq!(
                (q.sequence, q.trade_id),
                (Some(37_475_248_783), Some(370_843_401))
            );
            assert_eq!(q.bid, Some(lvl("1285.04", "0.46688654")));
        }
        other => panic!("{other:?}"),
    }
    match one(coinbase::parse(&fixture("coinbase/match.json")).unwrap()) {
        StreamMsg::Trade(t) => {
            assert_eq!((t.trade_id, t.sequence), (Some(10), Some(50)));
            assert_eq!(t.side, Some(Side::Buy), "maker side sell: the taker bought");
        }
        other => panic!("{other:?}"),
    }
    match one(coinbase::parse(&fixture("coinbase/heartbeat.json")).unwrap()) {
        StreamMsg::Heartbeat(h) => {
            assert_eq!((h.sequence, h.last_trade_id), (Some(90), Some(20)));
            assert_eq!(h.symbol.as_deref(), Some("BTC-USD"));
        }
        other => panic!("{other:?}"),
    }
    let acks = coinbase::parse(&fixture("coinbase/subscriptions.json")).unwrap();
    assert_eq!(acks.len(), 7);
    assert!(
        acks.iter()
            .all(|m| matches!(m, StreamMsg::Ack(_)) && !m.is_data())
    );
    match one(coinbase::parse(&fixture("coinbase/error_level2_auth.json")).unwrap()) {
        StreamMsg::Error(e) => assert!(e.message.contains("require authentication")),
        other => panic!("{other:?}"),
    }
    match one(coinbase::parse(&fixture("coinbase/status.json")).unwrap()) {
        StreamMsg::Notice(n) => {
            assert_eq!(
                (n.kind, n.symbol.as_deref()),
                (NoticeKind::Online, Some("BTC-USD"))
            );
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn trade_id_continuity() {
    let mut c = Continuity::new();
    let mut ids = Vec::new();
    for text in [
        r#"{"type":"match","trade_id":10,"sequence":50,"time":"2014-11-07T08:19:27.028459Z","product_id":"BTC-USD","size":"1","price":"400.23","side":"sell"}"#,
        r#"{"type":"match","trade_id":11,"sequence":51,"time":"2014-11-07T08:19:27.028459Z","product_id":"BTC-USD","size":"1","price":"400.23","side":"sell"}"#,
        r#"{"type":"match","trade_id":13,"sequence":53,"time":"2014-11-07T08:19:27.028459Z","product_id":"BTC-USD","size":"1","price":"400.23","side":"sell"}"#,
    ] {
        if let StreamMsg::Trade(t) = one(coinbase::parse(text).unwrap()) {
            ids.push(c.observe(t.trade_id.unwrap()));
        }
    }
    assert_eq!(
        ids,
        vec![
            Step::First,
            Step::Next,
            Step::Gap {
                expected: 12,
                received: 13
            }
        ]
    );
}

// ---------------------------------------------------------------- all

#[test]
fn control_messages_never_count_as_data() {
    for (ex, f) in [
        (ExchangeKind::Binance, "binance/subscribe_ack.json"),
        (ExchangeKind::Binance, "binance/server_shutdown.json"),
        (ExchangeKind::Bybit, "bybit/pong_spot.json"),
        (ExchangeKind::Bybit, "bybit/subscribe_ack.json"),
        (ExchangeKind::Bybit, "bybit/unsubscribe_ack.json"),
        (ExchangeKind::Okx, "okx/unsubscribe_ack.json"),
        (ExchangeKind::Kraken, "kraken/unsubscribe_ack.json"),
        (ExchangeKind::Okx, "okx/pong.txt"),
        (ExchangeKind::Okx, "okx/subscribe_ack.json"),
        (ExchangeKind::Okx, "okx/notice_64008.json"),
        (ExchangeKind::Coinbase, "coinbase/heartbeat.json"),
        (ExchangeKind::Coinbase, "coinbase/status.json"),
        (ExchangeKind::Kraken, "kraken/heartbeat.json"),
        (ExchangeKind::Kraken, "kraken/pong.json"),
        (ExchangeKind::Kraken, "kraken/status.json"),
        (ExchangeKind::Kraken, "kraken/instrument.json"),
    ] {
        for m in stream::parse(ex, &fixture(f)).unwrap() {
            assert!(!m.is_data(), "{f}: {m:?}");
            assert_eq!(m.subscription(), None);
        }
    }
    for (ex, f) in [
        (ExchangeKind::Binance, "binance/trade.json"),
        (ExchangeKind::Bybit, "bybit/orderbook_delta.json"),
        (ExchangeKind::Okx, "okx/tickers.json"),
        (ExchangeKind::Coinbase, "coinbase/l2update.json"),
        (ExchangeKind::Kraken, "kraken/book_update.json"),
    ] {
        let m = one(stream::parse(ex, &fixture(f)).unwrap());
        assert!(m.is_data(), "{f}");
        assert!(m.subscription().is_some());
    }
}

#[test]
fn garbage_frames_are_errors() {
    let garbage = [
        "",
        "not json",
        "{",
        "[]",
        "{}",
        "null",
        "42",
        r#"{"e":"depthUpdate","U":1,"u":2}"#,
        r#"{"e":"depthUpdate","s":"X","U":3,"u":2,"b":[],"a":[]}"#,
        r#"{"topic":"orderbook.50.X","type":"delta","data":{"s":"X","b":[["1"]],"a":[],"u":1}}"#,
        r#"{"arg":{"channel":"books","instId":"X"},"action":"update","data":[{"asks":[["-1","1"]],"bids":[],"seqId":1,"prevSeqId":0}]}"#,
        r#"{"type":"l2update","product_id":"X","changes":[["up","1","1"]]}"#,
        r#"{"channel":"book","type":"update","data":[{"symbol":"X","bids":[{"price":"NaN","qty":1}],"asks":[],"checksum":1}]}"#,
        r#"{"channel":"book","type":"update","data":[{"symbol":"X","bids":[],"asks":[]}]}"#,
    ];
    for ex in [
        ExchangeKind::Binance,
        ExchangeKind::Bybit,
        ExchangeKind::Okx,
        ExchangeKind::Coinbase,
        ExchangeKind::Kraken,
        ExchangeKind::Generic,
    ] {
        for g in garbage {
            assert!(stream::parse(ex, g).is_err(), "{ex:?} accepted {g:?}");
        }
    }
}

/// Unsubscribe answers are acks marked as such, whatever they name, so a
/// resync's unsubscribe is never read as a new subscription.
#[test]
fn unsubscribe_answers_are_marked() {
    for (ex, f, subscribe) in [
        (
            ExchangeKind::Bybit,
            "bybit/unsubscribe_ack.json",
            "bybit/subscribe_ack.json",
        ),
        (
            ExchangeKind::Okx,
            "okx/unsubscribe_ack.json",
            "okx/subscribe_ack.json",
        ),
        (
            ExchangeKind::Kraken,
            "kraken/unsubscribe_ack.json",
            "kraken/subscribe_ack.json",
        ),
    ] {
        match one(stream::parse(ex, &fixture(f)).unwrap()) {
            StreamMsg::Ack(a) => assert!(a.success && a.unsubscribe, "{f}: {a:?}"),
            other => panic!("{f}: {other:?}"),
        }
        match one(stream::parse(ex, &fixture(subscribe)).unwrap()) {
            StreamMsg::Ack(a) => assert!(a.success && !a.unsubscribe, "{subscribe}: {a:?}"),
            other => panic!("{subscribe}: {other:?}"),
        }
    }
}

#[test]
fn subscribe_and_unsubscribe_requests_and_pings() {
    let subs = [
        (Feed::Book { depth: 50 }, "BTCUSDT"),
        (Feed::Trades, "BTCUSDT"),
    ];
    assert_eq!(
        binance::request(Op::Subscribe, 1, &subs),
        r#"{"id":1,"method":"SUBSCRIBE","params":["btcusdt@depth@100ms","btcusdt@trade"]}"#
    );
    assert_eq!(
        binance::request(Op::Unsubscribe, 312, &subs[..1]),
        r#"{"id":312,"method":"UNSUBSCRIBE","params":["btcusdt@depth@100ms"]}"#
    );
    assert_eq!(
        bybit::request(Op::Subscribe, "a", &subs),
        r#"{"args":["orderbook.50.BTCUSDT","publicTrade.BTCUSDT"],"op":"subscribe","req_id":"a"}"#
    );
    assert_eq!(
        bybit::request(Op::Unsubscribe, "b", &subs[..1]),
        r#"{"args":["orderbook.50.BTCUSDT"],"op":"unsubscribe","req_id":"b"}"#
    );
    let okx_book = [(Feed::Book { depth: 400 }, "BTC-USDT")];
    assert_eq!(
        okx::request(Op::Subscribe, "1", &okx_book),
        r#"{"args":[{"channel":"books","instId":"BTC-USDT"}],"id":"1","op":"subscribe"}"#
    );
    assert_eq!(
        okx::request(Op::Unsubscribe, "2", &okx_book),
        r#"{"args":[{"channel":"books","instId":"BTC-USDT"}],"id":"2","op":"unsubscribe"}"#
    );
    assert_eq!(
        coinbase::request(
            Op::Subscribe,
            &[
                (Feed::Book { depth: 0 }, "BTC-USD"),
                (Feed::Heartbeat, "BTC-USD")
            ]
        ),
        r#"{"channels":[{"name":"level2_batch","product_ids":["BTC-USD"]},{"name":"heartbeat","product_ids":["BTC-USD"]}],"type":"subscribe"}"#
    );
    assert_eq!(
        coinbase::request(Op::Unsubscribe, &[(Feed::Book { depth: 0 }, "BTC-USD")]),
        r#"{"channels":[{"name":"level2_batch","product_ids":["BTC-USD"]}],"type":"unsubscribe"}"#
    );
    let kraken_book = [(Feed::Book { depth: 10 }, "BTC/USD")];
    assert_eq!(
        kraken::request(Op::Subscribe, 7, &kraken_book),
        vec![
            r#"{"method":"subscribe","params":{"channel":"book","depth":10,"snapshot":true,"symbol":["BTC/USD"]},"req_id":7}"#
        ]
    );
    assert_eq!(
        kraken::request(Op::Unsubscribe, 8, &kraken_book),
        vec![
            r#"{"method":"unsubscribe","params":{"channel":"book","depth":10,"symbol":["BTC/USD"]},"req_id":8}"#
        ]
    );
    assert_eq!(
        stream::app_ping(ExchangeKind::Bybit),
        Some(r#"{"op":"ping"}"#)
    );
    assert_eq!(stream::app_ping(ExchangeKind::Okx), Some("ping"));
    assert_eq!(
        stream::app_ping(ExchangeKind::Kraken),
        Some(r#"{"method":"ping"}"#)
    );
    assert_eq!(stream::app_ping(ExchangeKind::Binance), None);
    assert_eq!(stream::app_ping(ExchangeKind::Coinbase), None);
}

// ---------------------------------------------------------------- properties

/// A random walk of level changes on a small price grid: (is_bid, price
/// tick, qty with 0 = delete).
fn changes() -> impl Strategy<Value = Vec<Vec<(bool, u16, u16)>>> {
    prop::collection::vec(
        prop::collection::vec((any::<bool>(), 0u16..40, 0u16..5), 1..6),
        1..40,
    )
}

fn levels_of(ch: &[(bool, u16, u16)], bid: bool) -> Vec<Level> {
    ch.iter()
        .filter(|c| c.0 == bid)
        .map(|&(_, p, q)| {
            let price = if bid {
                100 + u64::from(p)
            } else {
                200 + u64::from(p)
            };
            Level::new(
                Dec::new(price, 1).unwrap(),
                Dec::new(u64::from(q), 0).unwrap(),
            )
        })
        .collect()
}

fn bybit_frame(u: u64, kind: &str, ch: &[(bool, u16, u16)]) -> String {
    let side = |bid| {
        levels_of(ch, bid)
            .iter()
            .map(|l| format!(r#"["{}","{}"]"#, l.price, l.qty))
            .collect::<Vec<_>>()
            .join(",")
    };
    format!(
        r#"{{"topic":"orderbook.50.BTCUSDT","type":"{kind}","ts":1,"data":{{"s":"BTCUSDT","b":[{}],"a":[{}],"u":{u},"seq":{u}}}}}"#,
        side(true),
        side(false)
    )
}

proptest! {
    /// Valid sequences keep the book valid and equal to a plain model.
    #[test]
    fn bybit_valid_sequences_stay_valid(steps in changes()) {
        let mut b = LocalBook::new(Rule::Bybit);
        let mut model = stream::OrderBook::new();
        prop_assert_eq!(b.apply(&book(one(bybit::parse(&bybit_frame(100, "snapshot", &[])).unwrap()))), Verdict::Snapshot);
        for (i, ch) in steps.iter().enumerate() {
            let msg = book(one(bybit::parse(&bybit_frame(101 + i as u64, "delta", ch)).unwrap()));
            prop_assert_eq!(b.apply(&msg), Verdict::Applied);
            model.apply(&msg.bids, &msg.asks);
        }
        prop_assert!(b.is_valid());
        prop_assert_eq!(b.book().unwrap(), &model);
    }

    /// Dropping any one delta makes the next one a gap naming the ids.
    #[test]
    fn bybit_dropping_one_message_is_a_gap(steps in changes(), drop_at in any::<prop::sample::Index>()) {
        prop_assume!(steps.len() >= 2);
        let drop = drop_at.index(steps.len() - 1);
        let mut b = LocalBook::new(Rule::Bybit);
        b.apply(&book(one(bybit::parse(&bybit_frame(100, "snapshot", &[])).unwrap())));
        for (i, ch) in steps.iter().enumerate() {
            let u = 101 + i as u64;
            if i == drop {
                continue;
            }
            let v = b.apply(&book(one(bybit::parse(&bybit_frame(u, "delta", ch)).unwrap())));
            if i == drop + 1 {
                prop_assert_eq!(v, Verdict::Gap { expected: u as i64 - 1, received: u as i64 });
                prop_assert!(!b.is_valid());
            }
        }
        prop_assert!(!b.is_valid());
    }

    /// Binance: any chain of events, any snapshot id inside it, syncs and
    /// stays valid; dropping one event after the sync point is a gap.
    #[test]
    fn binance_chain_syncs_anywhere_and_drops_are_gaps(
        sizes in prop::collection::vec(1u64..4, 2..30),
        at in any::<prop::sample::Index>(),
        drop_at in any::<prop::sample::Index>(),
    ) {
        let mut events = Vec::new();
        let mut next = 1000u64;
        for (i, n) in sizes.iter().enumerate() {
            events.push(bn_event(next, next + n - 1, &format!("{}", 50 + i), "1"));
            next += n;
        }
        let lid = 999 + at.index((next - 1000) as usize) as u64;
        let mut b = LocalBook::binance();
        for e in &events {
            prop_assert_eq!(b.apply(e), Verdict::Buffered);
        }
        prop_assert_eq!(b.apply(&bn_snapshot(lid)), Verdict::Snapshot);
        prop_assert!(b.is_valid());
        // Continue the stream past the buffer, dropping one event.
        let mut b2 = b.clone();
        let tail: Vec<BookMsg> = (0..5).map(|i| bn_event(next + i, next + i, "10", "1")).collect();
        let drop = drop_at.index(4);
        for (i, e) in tail.iter().enumerate() {
            prop_assert_eq!(b.apply(e), Verdict::Applied);
            if i == drop { continue; }
            let v = b2.apply(e);
            if i == drop + 1 {
                prop_assert!(v.is_failure(), "{:?}", v);
            }
        }
        prop_assert!(b.is_valid());
        prop_assert!(!b2.is_valid());
    }

    /// Kraken: random updates whose checksums come from an independent
    /// string rendering always verify; the book never exceeds its depth.
    #[test]
    fn kraken_random_updates_verify(steps in changes()) {
        let mut b = kraken_book();
        let s = book(one(kraken::parse(&fixture("kraken/book_snapshot.json")).unwrap()));
        prop_assert_eq!(b.apply(&s), Verdict::Snapshot);
        let mut model: std::collections::BTreeMap<(bool, String), String> = Default::default();
        for l in &s.bids { model.insert((true, format!("{:.4}", l.price.to_f64())), format!("{:.8}", l.qty.to_f64())); }
        for l in &s.asks { model.insert((false, format!("{:.4}", l.price.to_f64())), format!("{:.8}", l.qty.to_f64())); }
        for ch in &steps {
            let bids: Vec<Level> = ch.iter().filter(|c| c.0).map(|&(_, p, q)| lvl(&format!("0.{}", 5600 + p), &q.to_string())).collect();
            let asks: Vec<Level> = ch.iter().filter(|c| !c.0).map(|&(_, p, q)| lvl(&format!("0.{}", 5668 + p), &q.to_string())).collect();
            for l in &bids { let k = (true, format!("{:.4}", l.price.to_f64())); if l.qty.is_zero() { model.remove(&k); } else { model.insert(k, format!("{:.8}", l.qty.to_f64())); } }
            for l in &asks { let k = (false, format!("{:.4}", l.price.to_f64())); if l.qty.is_zero() { model.remove(&k); } else { model.insert(k, format!("{:.8}", l.qty.to_f64())); } }
            // Truncate the model to depth 10 per side.
            let mut bid_keys: Vec<String> = model.keys().filter(|k| k.0).map(|k| k.1.clone()).collect();
            bid_keys.sort_by(|a, b| b.cmp(a));
            for k in bid_keys.iter().skip(10) { model.remove(&(true, k.clone())); }
            let mut ask_keys: Vec<String> = model.keys().filter(|k| !k.0).map(|k| k.1.clone()).collect();
            ask_keys.sort();
            for k in ask_keys.iter().skip(10) { model.remove(&(false, k.clone())); }
            let mut text = String::new();
            let strip = |s: &str| s.replace('.', "").trim_start_matches('0').to_string();
            for (k, q) in model.iter().filter(|(k, _)| !k.0) { text += &strip(&k.1); text += &strip(q); }
            for (k, q) in model.iter().filter(|(k, _)| k.0).rev() { text += &strip(&k.1); text += &strip(q); }
            let checksum = crc32fast::hash(text.as_bytes());
            let msg = BookMsg { channel: "book".into(), symbol: "MATIC/USD".into(), kind: BookKind::Delta, bids, asks, seq: BookSeq::Kraken { checksum }, event_time_ms: None };
            prop_assert_eq!(b.apply(&msg), Verdict::Applied);
            let (nb, na) = b.book().unwrap().depth();
            prop_assert!(nb <= 10 && na <= 10);
        }
    }

    /// No input makes a parser panic.
    #[test]
    fn parsers_never_panic(text in ".{0,200}") {
        for ex in [ExchangeKind::Binance, ExchangeKind::Bybit, ExchangeKind::Okx, ExchangeKind::Coinbase, ExchangeKind::Kraken] {
            let _ = stream::parse(ex, &text);
        }
    }

    /// Mutated real frames never panic either (closer to the grammar).
    #[test]
    fn mutated_fixtures_never_panic(cut in 0usize..400, byte in any::<u8>()) {
        for (ex, f) in [
            (ExchangeKind::Binance, "binance/depth_update.json"),
            (ExchangeKind::Bybit, "bybit/orderbook_snapshot.json"),
            (ExchangeKind::Okx, "okx/books_snapshot.json"),
            (ExchangeKind::Coinbase, "coinbase/l2update.json"),
            (ExchangeKind::Kraken, "kraken/book_snapshot.json"),
        ] {
            let mut bytes = fixture(f).into_bytes();
            let i = cut % bytes.len();
            bytes[i] = byte;
            if let Ok(text) = String::from_utf8(bytes) {
                if let Ok(msgs) = stream::parse(ex, &text) {
                    for m in msgs {
                        if let StreamMsg::Book(b) = m {
                            let mut lb = LocalBook::new(stream::default_rule(ex, (4, 8)).unwrap());
                            let _ = lb.apply(&b);
                        }
                    }
                }
            }
        }
    }
}

/// Every fixture of every exchange (each file of
/// `tests/fixtures/streams/<exchange>/`, sources in its SOURCES.md) parses
/// through the one entry point the worker uses, into at least one message;
/// frames that are no message of the exchange are errors, never panics.
#[test]
fn every_fixture_of_every_exchange_parses_and_garbage_is_an_error() {
    use exwatch::model::ExchangeKind;
    let kinds = [
        ExchangeKind::Binance,
        ExchangeKind::Bybit,
        ExchangeKind::Okx,
        ExchangeKind::Coinbase,
        ExchangeKind::Kraken,
    ];
    let mut parsed = 0;
    let mut out = Vec::new();
    for kind in kinds {
        let dir = format!(
            "{}/tests/fixtures/streams/{}",
            env!("CARGO_MANIFEST_DIR"),
            kind.as_str()
        );
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{dir}: {e}"))
            .map(|e| e.expect("dir entry").path())
            .filter(|p| p.file_name().is_some_and(|n| n != "SOURCES.md"))
            .collect();
        files.sort();
        assert!(files.len() >= 8, "{dir}: {} fixtures", files.len());
        for path in files {
            let text = std::fs::read_to_string(&path).expect("fixture");
            out.clear();
            exwatch::stream::parse_into(kind, text.trim_end(), &mut out)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            assert!(!out.is_empty(), "{}", path.display());
            parsed += 1;
        }
        for garbage in ["", "{}", "[1,2]", "\"x\"", "{\"a\":1}", "{\"data\":[]}"] {
            out.clear();
            assert!(
                exwatch::stream::parse_into(kind, garbage, &mut out).is_err(),
                "{kind:?}: {garbage:?}"
            );
        }
    }
    assert_eq!(parsed, 50, "every fixture file was read");
}
