//! A local order book guarded by its exchange's integrity rule.
//!
//! [`LocalBook::apply`] takes each parsed [`BookMsg`] and answers with a
//! [`Verdict`]. A gap or a checksum mismatch makes the book invalid at once:
//! from then on [`LocalBook::book`], [`LocalBook::best_bid`] and
//! [`LocalBook::best_ask`] answer `None` (a stitched book is never served)
//! until a snapshot (Bybit, OKX, Kraken, Coinbase: resubscribe; Binance: a
//! new REST `/api/v3/depth` snapshot) makes it valid again.
//!
//! The rules, per exchange (sources in each [`Rule`] variant):
//! - Binance: buffer diff events; on the REST snapshot drop events with
//!   `u <= lastUpdateId`; the first applied event has
//!   `U <= lastUpdateId+1 <= u`; then each `U` is the previous `u`+1.
//! - Bybit: `u` is +1 per message; `u=1` is a service restart and the message
//!   overwrites the book.
//! - OKX: `prevSeqId` equals the previous `seqId`; equal `seqId` and
//!   `prevSeqId` is a keepalive; `seqId < prevSeqId` is a maintenance reset.
//!   `checksum` 0 means "not provided" (pinned to 0 since 2026-06-23).
//! - Kraken v2: CRC32 of the top 10 levels after applying each message, the
//!   book truncated to the subscribed depth first.
//! - Coinbase `level2_batch`: nothing to check; only crossed books and
//!   freshness can be watched.

use std::collections::VecDeque;

use serde::Serialize;

use super::book::{Crossing, OrderBook};
use super::checksum;
use super::message::{BookKind, BookMsg, BookSeq, Level};

/// Which exchange rule guards a book, with the settings it needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// Binance spot diff depth chained to a REST snapshot
    /// (binance-spot-api-docs `web-socket-streams.md`, "How to manage a
    /// local order book correctly"). `max_buffer` bounds the events held
    /// while the snapshot is fetched (oldest dropped first).
    Binance {
        /// Most events held while the REST snapshot is fetched.
        max_buffer: usize,
    },
    /// Bybit v5 `orderbook.{depth}` (bybit-exchange/docs
    /// `docs/v5/websocket/public/orderbook.mdx`).
    Bybit,
    /// OKX v5 `books` (okx.com/docs-v5 "Order book channel", "Sequence ID").
    Okx,
    /// Kraken spot v2 `book` (docs.kraken.com
    /// `guides/websockets/book-checksum-v2`): subscribed `depth` and the
    /// instrument's precisions.
    Kraken {
        /// Subscribed depth (10, 25, 100, 500 or 1000).
        depth: usize,
        /// The pair's `price_precision` (`instrument` channel).
        price_precision: u8,
        /// The pair's `qty_precision` (`instrument` channel).
        qty_precision: u8,
    },
    /// Coinbase Exchange `level2_batch` (docs.cdp.coinbase.com
    /// `exchange/websocket-feed/channels`): no sequence, no checksum.
    Coinbase,
}

/// What applying one message did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum Verdict {
    /// In sequence (or checksum good) and applied.
    Applied,
    /// A snapshot replaced the book; the book is valid.
    Snapshot,
    /// The exchange re-initialised its sequence (Bybit `u=1`, OKX
    /// `seqId < prevSeqId`): applied, not a gap.
    Reset,
    /// OKX `seqId == prevSeqId`: no change, the channel is alive.
    Keepalive,
    /// Already applied or older than the book (duplicate, late, or Binance
    /// `u <= lastUpdateId`): ignored.
    Stale {
        /// The book's last applied id.
        last: i64,
        /// The message's id.
        received: i64,
    },
    /// Binance: held until the REST snapshot arrives.
    Buffered,
    /// The book is invalid and this delta cannot repair it: dropped until a
    /// snapshot (or, for Binance, until the REST snapshot).
    AwaitingSnapshot,
    /// Messages were missed: the book is now invalid.
    Gap {
        /// The id the rule expected (Binance/Bybit: last + 1 for `U`/`u`;
        /// OKX: the last `seqId`, to be echoed as `prevSeqId`).
        expected: i64,
        /// What the message carried in its place.
        received: i64,
    },
    /// The exchange's checksum disagrees with the book after applying: the
    /// book is now invalid. OKX values are signed, Kraken's unsigned.
    ChecksumMismatch {
        /// The checksum the exchange sent.
        expected: i64,
        /// The checksum of the local book after applying the message.
        computed: i64,
    },
    /// Binance: the REST snapshot is older than the first buffered event
    /// (`lastUpdateId + 1 < U`): fetch a newer snapshot; the buffer is kept.
    SnapshotTooOld {
        /// The snapshot's `lastUpdateId`.
        last_update_id: i64,
        /// `U` of the oldest buffered event.
        first_buffered: i64,
    },
    /// The message's integrity fields belong to another exchange's rule (a
    /// wiring mistake): ignored.
    WrongRule,
}

impl Verdict {
    /// Gap or checksum mismatch: an integrity failure to report with its
    /// figures.
    pub fn is_failure(self) -> bool {
        matches!(self, Verdict::Gap { .. } | Verdict::ChecksumMismatch { .. })
    }
}

/// How the last applied message was verified (tickvault's point:
/// "unverifiable ≠ clean").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Check {
    /// Sequence ids chained.
    Sequence,
    /// Checksum matched.
    Checksum,
    /// Nothing to verify against (Coinbase `level2_batch`, OKX checksum 0
    /// without sequence context).
    Unverified,
}

#[derive(Debug, Clone)]
enum State {
    Binance {
        max_buffer: usize,
        synced: bool,
        last_u: u64,
        buffer: VecDeque<BookMsg>,
    },
    Bybit {
        last_u: u64,
    },
    Okx {
        last_seq: i64,
    },
    Kraken {
        depth: usize,
        price_precision: u8,
        qty_precision: u8,
    },
    Coinbase,
}

/// An order book with its exchange rule, validity and counters.
#[derive(Debug, Clone)]
pub struct LocalBook {
    book: OrderBook,
    state: State,
    valid: bool,
    ever_valid: bool,
    last_check: Check,
    gaps: u64,
    checksum_failures: u64,
    resyncs: u64,
}

fn id(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

impl LocalBook {
    /// An empty, invalid book waiting for its first snapshot.
    pub fn new(rule: Rule) -> LocalBook {
        let state = match rule {
            Rule::Binance { max_buffer } => State::Binance {
                max_buffer,
                synced: false,
                last_u: 0,
                buffer: VecDeque::new(),
            },
            Rule::Bybit => State::Bybit { last_u: 0 },
            Rule::Okx => State::Okx { last_seq: 0 },
            Rule::Kraken {
                depth,
                price_precision,
                qty_precision,
            } => State::Kraken {
                depth,
                price_precision,
                qty_precision,
            },
            Rule::Coinbase => State::Coinbase,
        };
        LocalBook {
            book: OrderBook::new(),
            state,
            valid: false,
            ever_valid: false,
            last_check: Check::Unverified,
            gaps: 0,
            checksum_failures: 0,
            resyncs: 0,
        }
    }

    /// Binance with a buffer of 1,000 events (100 s of `@depth@100ms`).
    pub fn binance() -> LocalBook {
        LocalBook::new(Rule::Binance { max_buffer: 1000 })
    }

    /// Whether the book may be served: synced, and no gap or checksum
    /// mismatch since.
    pub fn is_valid(&self) -> bool {
        self.valid
    }

    /// The levels, only while valid.
    pub fn book(&self) -> Option<&OrderBook> {
        self.valid.then_some(&self.book)
    }

    /// The levels whatever the validity (diagnostics only: never serve them).
    pub fn levels_unchecked(&self) -> &OrderBook {
        &self.book
    }

    /// Best bid of a valid book.
    pub fn best_bid(&self) -> Option<Level> {
        self.book()?.best_bid()
    }

    /// Best ask of a valid book.
    pub fn best_ask(&self) -> Option<Level> {
        self.book()?.best_ask()
    }

    /// Locked or crossed top of a valid book. A crossed book is reported,
    /// not invalidated: its cause may be the exchange's (XChange PR #4239
    /// saw crossed Kraken books that passed the checksum).
    pub fn crossing(&self) -> Option<Crossing> {
        self.book()?.crossing()
    }

    /// How the last applied message was verified.
    pub fn last_check(&self) -> Check {
        self.last_check
    }

    /// Gaps seen since creation.
    pub fn gaps(&self) -> u64 {
        self.gaps
    }

    /// Checksum mismatches seen since creation.
    pub fn checksum_failures(&self) -> u64 {
        self.checksum_failures
    }

    /// Snapshots that made an invalid book valid again (after the first).
    pub fn resyncs(&self) -> u64 {
        self.resyncs
    }

    /// Binance: events held while waiting for the REST snapshot.
    pub fn buffered(&self) -> usize {
        match &self.state {
            State::Binance { buffer, .. } => buffer.len(),
            _ => 0,
        }
    }

    /// Kraken: take the instrument's precisions (from the `instrument`
    /// channel) after creation.
    pub fn set_precision(&mut self, price: u8, qty: u8) {
        if let State::Kraken {
            price_precision,
            qty_precision,
            ..
        } = &mut self.state
        {
            *price_precision = price;
            *qty_precision = qty;
        }
    }

    /// Mark the book invalid by decision of the caller (a reconnect, a
    /// REST cross-check that failed). Binance goes back to buffering.
    pub fn invalidate(&mut self) {
        self.valid = false;
        if let State::Binance { synced, buffer, .. } = &mut self.state {
            *synced = false;
            buffer.clear();
        }
    }

    fn fail_gap(&mut self, expected: i64, received: i64) -> Verdict {
        self.valid = false;
        self.gaps += 1;
        Verdict::Gap { expected, received }
    }

    fn became_valid(&mut self) {
        if !self.valid && self.ever_valid {
            self.resyncs += 1;
        }
        self.valid = true;
        self.ever_valid = true;
    }

    /// Apply one book message under the book's rule.
    pub fn apply(&mut self, msg: &BookMsg) -> Verdict {
        match (&self.state, msg.seq) {
            (State::Binance { .. }, BookSeq::Binance { first, last }) => {
                self.binance_event(msg, first, last)
            }
            (State::Binance { .. }, BookSeq::BinanceRest { last_update_id }) => {
                self.binance_snapshot(msg, last_update_id)
            }
            (State::Bybit { .. }, BookSeq::Bybit { update_id, .. }) => self.bybit(msg, update_id),
            (
                State::Okx { .. },
                BookSeq::Okx {
                    seq_id,
                    prev_seq_id,
                    checksum,
                },
            ) => self.okx(msg, seq_id, prev_seq_id, checksum),
            (State::Kraken { .. }, BookSeq::Kraken { checksum }) => self.kraken(msg, checksum),
            (State::Coinbase, BookSeq::None) => self.coinbase(msg),
            _ => Verdict::WrongRule,
        }
    }

    fn binance_event(&mut self, msg: &BookMsg, first: u64, last: u64) -> Verdict {
        let State::Binance {
            max_buffer,
            synced,
            last_u,
            buffer,
        } = &mut self.state
        else {
            return Verdict::WrongRule;
        };
        if !*synced {
            if buffer.len() >= (*max_buffer).max(1) {
                buffer.pop_front();
            }
            buffer.push_back(msg.clone());
            return Verdict::Buffered;
        }
        if last <= *last_u {
            return Verdict::Stale {
                last: id(*last_u),
                received: id(last),
            };
        }
        if first > *last_u + 1 {
            let expected = id(*last_u + 1);
            *synced = false;
            buffer.clear();
            buffer.push_back(msg.clone());
            return self.fail_gap(expected, id(first));
        }
        *last_u = last;
        self.book.apply(&msg.bids, &msg.asks);
        self.last_check = Check::Sequence;
        Verdict::Applied
    }

    fn binance_snapshot(&mut self, snap: &BookMsg, last_update_id: u64) -> Verdict {
        let State::Binance {
            synced,
            last_u,
            buffer,
            ..
        } = &mut self.state
        else {
            return Verdict::WrongRule;
        };
        while buffer
            .front()
            .is_some_and(|e| binance_ids(e).1 <= last_update_id)
        {
            buffer.pop_front();
        }
        let first_buffered = buffer.front().map(|e| binance_ids(e).0);
        if let Some(first) = first_buffered.filter(|f| *f > last_update_id + 1) {
            return Verdict::SnapshotTooOld {
                last_update_id: id(last_update_id),
                first_buffered: id(first),
            };
        }
        *synced = true;
        *last_u = last_update_id;
        let pending: Vec<BookMsg> = buffer.drain(..).collect();
        self.book.load(&snap.bids, &snap.asks);
        self.became_valid();
        self.last_check = Check::Sequence;
        for (i, e) in pending.iter().enumerate() {
            let (first, last) = binance_ids(e);
            let v = self.binance_event(e, first, last);
            if v.is_failure() {
                // Restart buffering from the event after the hole.
                if let State::Binance { buffer, .. } = &mut self.state {
                    buffer.extend(pending[i + 1..].iter().cloned());
                }
                return v;
            }
        }
        Verdict::Snapshot
    }

    fn bybit(&mut self, msg: &BookMsg, u: u64) -> Verdict {
        let State::Bybit { last_u } = &mut self.state else {
            return Verdict::WrongRule;
        };
        // "Occasionally, you'll receive "u"=1, which is a snapshot data due
        // to the restart of the service. So please overwrite your local
        // orderbook" (orderbook.mdx).
        if msg.kind == BookKind::Snapshot || u == 1 {
            let restarted = u == 1 && *last_u > 1;
            *last_u = u;
            self.book.load(&msg.bids, &msg.asks);
            self.became_valid();
            self.last_check = Check::Sequence;
            return if restarted {
                Verdict::Reset
            } else {
                Verdict::Snapshot
            };
        }
        if !self.valid {
            return Verdict::AwaitingSnapshot;
        }
        if u <= *last_u {
            return Verdict::Stale {
                last: id(*last_u),
                received: id(u),
            };
        }
        if u != *last_u + 1 {
            let expected = id(*last_u + 1);
            return self.fail_gap(expected, id(u));
        }
        *last_u = u;
        self.book.apply(&msg.bids, &msg.asks);
        self.last_check = Check::Sequence;
        Verdict::Applied
    }

    fn okx(&mut self, msg: &BookMsg, seq: i64, prev: i64, checksum: i32) -> Verdict {
        let State::Okx { last_seq } = &mut self.state else {
            return Verdict::WrongRule;
        };
        let verdict = if msg.kind == BookKind::Snapshot || prev == -1 {
            *last_seq = seq;
            self.book.load(&msg.bids, &msg.asks);
            Verdict::Snapshot
        } else if !self.valid {
            return Verdict::AwaitingSnapshot;
        } else if prev == *last_seq {
            *last_seq = seq;
            self.book.apply(&msg.bids, &msg.asks);
            match seq.cmp(&prev) {
                std::cmp::Ordering::Equal => Verdict::Keepalive,
                std::cmp::Ordering::Less => Verdict::Reset,
                std::cmp::Ordering::Greater => Verdict::Applied,
            }
        } else if seq <= *last_seq && prev < *last_seq {
            return Verdict::Stale {
                last: *last_seq,
                received: seq,
            };
        } else {
            let expected = *last_seq;
            return self.fail_gap(expected, prev);
        };
        self.last_check = Check::Sequence;
        if checksum != 0 {
            let computed = checksum::okx(&self.book);
            if computed != checksum {
                return self.fail_checksum(i64::from(checksum), i64::from(computed));
            }
            self.last_check = Check::Checksum;
        }
        if verdict == Verdict::Snapshot {
            self.became_valid();
        }
        verdict
    }

    fn fail_checksum(&mut self, expected: i64, computed: i64) -> Verdict {
        self.valid = false;
        self.checksum_failures += 1;
        Verdict::ChecksumMismatch { expected, computed }
    }

    fn kraken(&mut self, msg: &BookMsg, expected: u32) -> Verdict {
        let State::Kraken {
            depth,
            price_precision,
            qty_precision,
        } = self.state
        else {
            return Verdict::WrongRule;
        };
        let verdict = if msg.kind == BookKind::Snapshot {
            self.book.load(&msg.bids, &msg.asks);
            Verdict::Snapshot
        } else if !self.valid {
            return Verdict::AwaitingSnapshot;
        } else {
            self.book.apply(&msg.bids, &msg.asks);
            Verdict::Applied
        };
        self.book.truncate(depth);
        let computed = checksum::kraken(&self.book, price_precision, qty_precision);
        if computed != expected {
            return self.fail_checksum(i64::from(expected), i64::from(computed));
        }
        if verdict == Verdict::Snapshot {
            self.became_valid();
        }
        self.last_check = Check::Checksum;
        verdict
    }

    fn coinbase(&mut self, msg: &BookMsg) -> Verdict {
        self.last_check = Check::Unverified;
        if msg.kind == BookKind::Snapshot {
            self.book.load(&msg.bids, &msg.asks);
            self.became_valid();
            return Verdict::Snapshot;
        }
        if !self.valid {
            return Verdict::AwaitingSnapshot;
        }
        self.book.apply(&msg.bids, &msg.asks);
        Verdict::Applied
    }
}

fn binance_ids(e: &BookMsg) -> (u64, u64) {
    match e.seq {
        BookSeq::Binance { first, last } => (first, last),
        _ => (0, 0),
    }
}
