//! Resyncing a book ([`Session`]'s half that asks for snapshots): Binance
//! from the REST depth snapshot, the other four by unsubscribing and
//! subscribing the one book again, under [`MAX_RESUBSCRIBES`] per
//! [`RESUBSCRIBE_WINDOW`] and [`RESUBSCRIBE_DEADLINE`] (see the parent
//! module's doc for the policy).

use std::time::Duration;

use super::{Action, MAX_SNAPSHOT_ATTEMPTS, Session};
use crate::model::ExchangeKind;
use crate::stream::{Feed, Op, bybit, coinbase, kraken, okx};

/// Resyncs by resubscribing a connection may make in
/// [`RESUBSCRIBE_WINDOW`] before it reconnects instead. Each costs two
/// requests; OKX allows 480 subscribe and unsubscribe requests per hour per
/// connection, so at most 60 an hour stays far inside it, and a book that
/// keeps breaking gets a new connection rather than a resubscription storm
/// (thrasher-corp/gocryptotrader PR #2337).
pub const MAX_RESUBSCRIBES: usize = 5;

/// See [`MAX_RESUBSCRIBES`]: 10 minutes.
pub const RESUBSCRIBE_WINDOW: Duration = Duration::from_secs(600);

/// A resubscribed book with no snapshot after this (10 s) reconnects: an
/// exchange may deduplicate an unsubscribe and subscribe pair and send no
/// new snapshot (nautechsystems/nautilus_trader#4643).
pub const RESUBSCRIBE_DEADLINE: Duration = Duration::from_secs(10);

impl Session {
    /// Resync the book of `symbol` (its data spelling): Binance from a REST
    /// snapshot, the others by resubscribing it (see the module doc).
    pub(super) fn resync(&mut self, symbol: &str, now: i64) {
        if self.exchange == ExchangeKind::Binance {
            self.want_snapshot(symbol, Duration::ZERO);
            return;
        }
        if self.resubscribing.contains_key(symbol) {
            return;
        }
        let window = RESUBSCRIBE_WINDOW.as_millis() as i64;
        while self.resubscribes.front().is_some_and(|t| now - t >= window) {
            self.resubscribes.pop_front();
        }
        let book = self
            .subs
            .iter()
            .position(|s| matches!(s.sub.feed, Feed::Book { .. }) && s.symbol == symbol);
        let reason = match book {
            Some(i) if self.resubscribes.len() < MAX_RESUBSCRIBES => {
                let requests = self.resubscribe(i);
                self.resubscribes.push_back(now);
                self.resubscribing.insert(symbol.to_string(), now);
                self.actions.push(Action::Send { requests });
                return;
            }
            Some(_) => format!(
                "resync the {symbol} book: {MAX_RESUBSCRIBES} resubscriptions in {} min already",
                RESUBSCRIBE_WINDOW.as_secs() / 60
            ),
            None => format!("resync the {symbol} book"),
        };
        self.actions.push(Action::Reconnect {
            reason,
            planned: false,
        });
    }

    /// Unsubscribe and subscribe requests for subscription `i` alone. The
    /// subscribe's id is the subscription's request from now on, so a
    /// refusal maps back to it.
    fn resubscribe(&mut self, i: usize) -> Vec<String> {
        self.resync_requests += 1;
        let n = self.resync_requests;
        let (feed, symbol) = (self.subs[i].sub.feed, self.subs[i].sub.symbol.clone());
        let one = [(feed, symbol.as_str())];
        // OKX ids are up to 32 letters and digits, nothing else (OKX API v5,
        // "WebSocket" overview, `id`); the same suits Bybit's `req_id`.
        let (unsub_id, sub_id) = (format!("u{n}"), format!("r{n}"));
        let requests = match self.exchange {
            ExchangeKind::Bybit => vec![
                bybit::request(Op::Unsubscribe, &unsub_id, &one),
                bybit::request(Op::Subscribe, &sub_id, &one),
            ],
            ExchangeKind::Okx => vec![
                okx::request(Op::Unsubscribe, &unsub_id, &one),
                okx::request(Op::Subscribe, &sub_id, &one),
            ],
            ExchangeKind::Coinbase => vec![
                coinbase::request(Op::Unsubscribe, &one),
                coinbase::request(Op::Subscribe, &one),
            ],
            ExchangeKind::Kraken => {
                // Numeric ids, above the two of `requests`.
                let mut r = kraken::request(Op::Unsubscribe, 2 * n + 1, &one);
                r.extend(kraken::request(Op::Subscribe, 2 * n + 2, &one));
                self.note_request(i, (2 * n + 2).to_string());
                return r;
            }
            ExchangeKind::Binance | ExchangeKind::Generic => Vec::new(),
        };
        self.note_request(i, sub_id);
        requests
    }

    /// Map acks of request `id` to subscription `i`, reusing its resync
    /// slot so ids do not pile up on a long-lived connection.
    fn note_request(&mut self, i: usize, id: String) {
        let slot = match self.subs[i].resync_slot {
            Some(slot) => {
                self.request_ids[slot] = id;
                slot
            }
            None => {
                self.request_ids.push(id);
                self.request_ids.len() - 1
            }
        };
        self.subs[i].resync_slot = Some(slot);
        self.subs[i].request = Some(slot);
    }

    /// Time passes (the worker calls this every 50 ms): a book resubscribed
    /// more than [`RESUBSCRIBE_DEADLINE`] ago and still without its snapshot
    /// makes the worker reconnect.
    pub fn on_tick(&mut self, now: i64) {
        let deadline = RESUBSCRIBE_DEADLINE.as_millis() as i64;
        let Some(symbol) = self
            .resubscribing
            .iter()
            .find(|(_, at)| now - **at > deadline)
            .map(|(s, _)| s.clone())
        else {
            return;
        };
        self.resubscribing.clear();
        self.actions.push(Action::Reconnect {
            reason: format!(
                "resync the {symbol} book: no snapshot {} s after resubscribing",
                RESUBSCRIBE_DEADLINE.as_secs()
            ),
            planned: false,
        });
    }

    pub(super) fn want_snapshot(&mut self, symbol: &str, delay: Duration) {
        if !self.fetching.insert(symbol.to_string()) {
            return;
        }
        let attempt = self
            .snapshot_attempts
            .entry(symbol.to_string())
            .or_insert(0);
        *attempt += 1;
        if *attempt > MAX_SNAPSHOT_ATTEMPTS {
            self.actions.push(Action::Reconnect {
                reason: format!(
                    "{symbol}: no usable depth snapshot in {MAX_SNAPSHOT_ATTEMPTS} tries"
                ),
                planned: false,
            });
            return;
        }
        self.actions.push(Action::FetchSnapshot {
            symbol: symbol.to_string(),
            attempt: *attempt,
            delay,
        });
    }
}
