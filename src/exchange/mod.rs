//! Exchange adapters: each exchange's public market-data API, parsed into one
//! common model and validated before anything downstream trusts it.
//!
//! An adapter is a set of pure functions: `interpret` turns an HTTP response
//! (status, headers, body) into either a normalized [`Payload`] or a
//! [`Problem`], plus any [`RateLimitSignal`] the exchange reported. No I/O
//! happens here, so fixtures and fuzzers drive adapters directly.

pub mod binance;
pub mod bybit;
pub mod classify;
pub mod coinbase;
pub mod generic;
pub mod kraken;
pub mod okx;
pub(crate) mod parse;
pub use parse::{excerpt, has_bom, html_headline};
pub mod validate;

use crate::model::{ApiError, EndpointKind, ExchangeKind, InvalidReason, RateLimitSignal};
use serde::{Deserialize, Serialize};

/// A decimal that arrived as text: the parsed value for arithmetic and the
/// exact original for checksums and exact comparisons.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Num {
    pub value: f64,
    pub text: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Level {
    pub price: Num,
    pub size: Num,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ticker {
    pub symbol: String,
    pub last: Option<f64>,
    pub bid: Option<f64>,
    pub ask: Option<f64>,
    /// Exchange-side timestamp in unix milliseconds, where the API gives one.
    pub exchange_ts_ms: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderBook {
    pub symbol: String,
    /// Best first: descending prices.
    pub bids: Vec<Level>,
    /// Best first: ascending prices.
    pub asks: Vec<Level>,
    pub exchange_ts_ms: Option<i64>,
    /// Sequence or last update id, where the API gives one.
    pub update_id: Option<u64>,
}

impl OrderBook {
    pub fn best_bid(&self) -> Option<f64> {
        self.bids.first().map(|l| l.price.value)
    }
    pub fn best_ask(&self) -> Option<f64> {
        self.asks.first().map(|l| l.price.value)
    }
}

/// A normalized, successfully parsed body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Payload {
    Time { server_ms: i64 },
    Ticker(Ticker),
    Book(OrderBook),
}

impl Payload {
    /// A one-line human summary: last price, or best bid/ask.
    pub fn summary(&self) -> String {
        fn p(v: Option<f64>) -> String {
            v.map(|x| format!("{x}")).unwrap_or_else(|| "-".into())
        }
        match self {
            Payload::Time { server_ms } => format!("server time {server_ms}"),
            Payload::Ticker(t) => match (t.bid, t.ask) {
                (Some(_), Some(_)) => format!("{} bid {} ask {}", t.symbol, p(t.bid), p(t.ask)),
                _ => format!("{} last {}", t.symbol, p(t.last)),
            },
            Payload::Book(b) => format!(
                "{} bid {} ask {} ({}x{} levels)",
                b.symbol,
                p(b.best_bid()),
                p(b.best_ask()),
                b.bids.len(),
                b.asks.len()
            ),
        }
    }

    /// A reference price for jump detection and adaptive polling.
    pub fn reference_price(&self) -> Option<f64> {
        match self {
            Payload::Time { .. } => None,
            Payload::Ticker(t) => match (t.bid, t.ask) {
                (Some(b), Some(a)) => Some((a + b) / 2.0),
                _ => t.last,
            },
            Payload::Book(b) => match (b.best_bid(), b.best_ask()) {
                (Some(bid), Some(ask)) => Some((bid + ask) / 2.0),
                _ => None,
            },
        }
    }

    pub fn exchange_ts_ms(&self) -> Option<i64> {
        match self {
            Payload::Time { server_ms } => Some(*server_ms),
            Payload::Ticker(t) => t.exchange_ts_ms,
            Payload::Book(b) => b.exchange_ts_ms,
        }
    }
}

/// Why a response could not be used.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "problem", rename_all = "snake_case")]
pub enum Problem {
    /// The exchange reported an error (in any HTTP status, including 200).
    Api(ApiError),
    /// A non-success HTTP status without a recognizable error body.
    Http { status: u16, body_excerpt: String },
    /// The body was not a payload exwatch can trust.
    Invalid(InvalidReason),
}

/// The HTTP response as the adapter sees it.
#[derive(Debug, Clone, Copy)]
pub struct RawResponse<'a> {
    pub status: u16,
    pub headers: &'a reqwest::header::HeaderMap,
    pub body: &'a [u8],
    /// Local wall clock when the response arrived, unix ms (for `Retry-After`
    /// given as an HTTP date and for ban times).
    pub received_at_ms: i64,
    /// How long the request took, request sent to body read, for the generic
    /// kind's `[RESPONSE_TIME]` conditions.
    pub elapsed_ms: u64,
    /// The instrument the request asked for (the endpoint's symbol), in the
    /// config's spelling. Where the body names its instrument, the adapter
    /// compares the two by the exchange's own naming rules and answers
    /// [`InvalidReason::WrongInstrument`] on a mismatch; `None` skips the check.
    pub requested_symbol: Option<&'a str>,
}

/// What an adapter made of one response.
#[derive(Debug, Clone, PartialEq)]
pub struct Interpretation {
    pub result: Result<Payload, Problem>,
    pub signal: Option<RateLimitSignal>,
}

/// A preset endpoint of an exchange kind: the exchange's real path, query and
/// request weight for a symbol.
#[derive(Debug, Clone, PartialEq)]
pub struct Preset {
    pub path: String,
    pub query: Vec<(String, String)>,
    pub weight: u32,
}

/// The documented rate budget of an exchange's public API, used when the
/// config does not set one.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DefaultBudget {
    /// Bucket size in the exchange's weight units (requests where every
    /// call costs 1).
    pub capacity: f64,
    /// Weight units regained per second.
    pub refill_per_sec: f64,
    /// The documentation page the numbers come from.
    pub source: &'static str,
}

/// An adapter's preset path, query and weight for an endpoint kind, a symbol
/// and a book depth (levels asked for, 0 for the exchange's default).
pub type PresetFn = fn(EndpointKind, &str, u32) -> Preset;

/// An adapter's parser. The spec is the generic kind's JSON pointers;
/// built-in kinds ignore it.
pub type InterpretFn =
    fn(EndpointKind, &RawResponse<'_>, Option<&generic::GenericSpec>) -> Interpretation;

/// One exchange kind's facts, declared once as `SPEC` in its adapter file
/// (`binance::SPEC`, ...) and read through [`spec`] by config resolution,
/// validation, the probe worker and the simulator.
#[derive(Debug, Clone, Copy)]
pub struct ExchangeSpec {
    pub kind: ExchangeKind,
    /// The real public API's base URL; `None` when the config must give one.
    pub base_url: Option<&'static str>,
    /// The symbol polled when the config names none, in the exchange's spelling.
    pub default_symbol: &'static str,
    /// The exchange tier's bucket when the config sets no `rate_limit`.
    pub budget: DefaultBudget,
    /// Path, query and weight per endpoint kind; `None` when the config
    /// must give each endpoint's `path`.
    pub preset: Option<PresetFn>,
    pub interpret: InterpretFn,
}

/// The one list of exchange kinds: each kind's `SPEC`. Adding an exchange is
/// its adapter file, its arm here and its `ExchangeKind` variant.
pub fn spec(kind: ExchangeKind) -> &'static ExchangeSpec {
    match kind {
        ExchangeKind::Binance => &binance::SPEC,
        ExchangeKind::Bybit => &bybit::SPEC,
        ExchangeKind::Okx => &okx::SPEC,
        ExchangeKind::Coinbase => &coinbase::SPEC,
        ExchangeKind::Kraken => &kraken::SPEC,
        ExchangeKind::Generic => &generic::SPEC,
    }
}

/// The exchange's preset path, query and weight for an endpoint kind.
/// `depth` is the number of book levels asked for, where the API takes one.
pub fn preset(
    kind: ExchangeKind,
    endpoint: EndpointKind,
    symbol: &str,
    depth: u32,
) -> Option<Preset> {
    spec(kind).preset.map(|p| p(endpoint, symbol, depth))
}

/// Parse and classify one response. Never panics, whatever the bytes.
/// `generic` carries the JSON-pointer spec for the generic kind.
///
/// A payload is only returned after [`validate::check_payload`] passed, so
/// crossed books, bad numbers and the like come back as
/// `Problem::Invalid(reason)`; the stateful checks are
/// [`validate::Validator`]'s, per endpoint.
pub fn interpret(
    kind: ExchangeKind,
    endpoint: EndpointKind,
    resp: &RawResponse<'_>,
    generic: Option<&generic::GenericSpec>,
) -> Interpretation {
    (spec(kind).interpret)(endpoint, resp, generic)
}

#[cfg(test)]
mod tests {
    use super::*;
    use strum::VariantArray;

    #[test]
    fn each_kind_has_its_own_spec() {
        for &kind in ExchangeKind::VARIANTS {
            let s = spec(kind);
            assert_eq!(s.kind, kind);
            assert!(
                s.budget.capacity > 0.0 && s.budget.refill_per_sec > 0.0,
                "{kind}"
            );
            assert!(!s.budget.source.is_empty(), "{kind}");
            assert_eq!(s.base_url.is_some(), s.preset.is_some(), "{kind}");
        }
    }
}
