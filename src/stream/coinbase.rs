//! Coinbase Exchange public feed (docs.cdp.coinbase.com
//! `exchange/websocket-feed/overview`, `/channels`, `/rate-limits`).
//!
//! - URL `wss://ws-feed.exchange.coinbase.com` (keyless). Without a
//!   subscribe within 5 s the connection is closed. Clients must ignore
//!   unknown `type`s; here they are [`ParseError::Unknown`] and the worker
//!   decides.
//! - Channels: `heartbeat` (1/s per product, `sequence`, `last_trade_id`),
//!   `ticker` (`sequence`, `trade_id`, best bid/ask), `matches` (trades,
//!   `type` `match` or `last_match`), `level2_batch` (keyless, 50 ms
//!   batches: `snapshot` then `l2update`; no sequence, no checksum),
//!   `status` (products and their trading status).
//! - No application-level ping: subscribe to `heartbeat` ([`PING`] is
//!   `None`).
//! - `level2`, `level3` and `full` need authentication since 2023-08-01; a
//!   keyless subscribe to them gets a `type:error` frame.
//!
//! Channel names in parsed messages: `level2_batch` (book), `ticker`,
//! `matches` (trades); heartbeats carry the product.

use std::borrow::Cow;

use serde::Deserialize;

use super::message::{
    Ack, BookKind, BookMsg, BookSeq, Heartbeat, Level, Notice, NoticeKind, Quote, Side,
    StreamError, StreamMsg, Trade,
};
use super::wire::{self, Levels, ParseError, SidedLevels, missing};
use super::{Feed, Op};

/// Default keyless feed URL.
pub const URL: &str = "wss://ws-feed.exchange.coinbase.com";

/// No application-level ping: the `heartbeat` channel is the keepalive.
pub const PING: Option<&str> = None;

/// The channel name of a feed (its subscribe name and parsed channel).
pub fn channel(feed: Feed) -> Option<&'static str> {
    match feed {
        Feed::Ticker => Some("ticker"),
        Feed::Trades => Some("matches"),
        Feed::Book { .. } => Some("level2_batch"),
        Feed::Heartbeat => Some("heartbeat"),
        Feed::Status => Some("status"),
        Feed::Instrument => None,
    }
}

/// `{"type":"subscribe","channels":[{"name","product_ids"}]}` (or
/// `unsubscribe`), one channel object per feed with its products (the
/// `status` channel takes none).
pub fn request(op: Op, subs: &[(Feed, &str)]) -> String {
    let mut channels: Vec<(&'static str, Vec<&str>)> = Vec::new();
    for (feed, product) in subs {
        let Some(name) = channel(*feed) else { continue };
        match channels.iter_mut().find(|(n, _)| *n == name) {
            Some((_, products)) => products.push(product),
            None => channels.push((name, vec![product])),
        }
    }
    let channels: Vec<serde_json::Value> = channels
        .into_iter()
        .map(|(name, products)| {
            if name == "status" {
                serde_json::json!({ "name": name })
            } else {
                serde_json::json!({ "name": name, "product_ids": products })
            }
        })
        .collect();
    serde_json::json!({"type": op.as_str(), "channels": channels}).to_string()
}

#[derive(Deserialize)]
struct Raw<'a> {
    #[serde(borrow, rename = "type")]
    kind: &'a str,
    #[serde(borrow)]
    product_id: Option<&'a str>,
    bids: Option<Levels>,
    asks: Option<Levels>,
    changes: Option<SidedLevels>,
    #[serde(borrow)]
    time: Option<&'a str>,
    sequence: Option<u64>,
    trade_id: Option<u64>,
    last_trade_id: Option<u64>,
    #[serde(borrow)]
    price: Option<&'a str>,
    #[serde(borrow)]
    size: Option<&'a str>,
    #[serde(borrow)]
    side: Option<&'a str>,
    #[serde(borrow)]
    best_bid: Option<&'a str>,
    #[serde(borrow)]
    best_bid_size: Option<&'a str>,
    #[serde(borrow)]
    best_ask: Option<&'a str>,
    #[serde(borrow)]
    best_ask_size: Option<&'a str>,
    #[serde(borrow)]
    message: Option<Cow<'a, str>>,
    #[serde(borrow)]
    reason: Option<Cow<'a, str>>,
    #[serde(borrow)]
    channels: Option<Vec<ChannelSub<'a>>>,
    #[serde(borrow)]
    products: Option<Vec<ProductStatus<'a>>>,
}

#[derive(Deserialize)]
struct ChannelSub<'a> {
    #[serde(borrow)]
    name: Cow<'a, str>,
    #[serde(default)]
    product_ids: Option<Vec<String>>,
}

#[derive(Deserialize)]
struct ProductStatus<'a> {
    #[serde(borrow)]
    id: Cow<'a, str>,
    #[serde(borrow)]
    status: Option<Cow<'a, str>>,
    #[serde(borrow)]
    status_message: Option<Cow<'a, str>>,
    #[serde(default)]
    cancel_only: bool,
    #[serde(default)]
    post_only: bool,
    #[serde(default)]
    limit_only: bool,
    #[serde(default)]
    trading_disabled: bool,
}

/// Parse one text frame.
pub fn parse(text: &str) -> Result<Vec<StreamMsg>, ParseError> {
    let mut out = Vec::with_capacity(1);
    parse_into(text, &mut out)?;
    Ok(out)
}

fn time_ms(t: Option<&str>) -> Result<Option<i64>, ParseError> {
    t.map(|t| wire::rfc3339_ms("time", t)).transpose()
}

/// [`parse`] appending to a reused vector (hot loops).
pub fn parse_into(text: &str, out: &mut Vec<StreamMsg>) -> Result<(), ParseError> {
    let r: Raw = serde_json::from_str(text)?;
    let product = || r.product_id.ok_or(missing("message", "product_id"));
    match r.kind {
        "snapshot" => out.push(StreamMsg::Book(BookMsg {
            channel: "level2_batch".into(),
            symbol: product()?.into(),
            kind: BookKind::Snapshot,
            bids: r.bids.ok_or(missing("snapshot", "bids"))?.0,
            asks: r.asks.ok_or(missing("snapshot", "asks"))?.0,
            seq: BookSeq::None,
            event_time_ms: time_ms(r.time)?,
        })),
        "l2update" => {
            let changes = r.changes.ok_or(missing("l2update", "changes"))?;
            out.push(StreamMsg::Book(BookMsg {
                channel: "level2_batch".into(),
                symbol: product()?.into(),
                kind: BookKind::Delta,
                bids: changes.bids,
                asks: changes.asks,
                seq: BookSeq::None,
                event_time_ms: time_ms(r.time)?,
            }));
        }
        "ticker" => out.push(StreamMsg::Quote(Quote {
            channel: "ticker".into(),
            symbol: product()?.into(),
            bid: level(r.best_bid, r.best_bid_size)?,
            ask: level(r.best_ask, r.best_ask_size)?,
            last: wire::opt_dec("price", r.price)?,
            sequence: r.sequence,
            trade_id: r.trade_id,
            event_time_ms: time_ms(r.time)?,
        })),
        "match" | "last_match" => out.push(StreamMsg::Trade(Trade {
            channel: "matches".into(),
            symbol: product()?.into(),
            trade_id: r.trade_id,
            trade_ref: None,
            count: 1,
            price: wire::dec("price", r.price.ok_or(missing("match", "price"))?)?,
            qty: wire::dec("size", r.size.ok_or(missing("match", "size"))?)?,
            // `side` is the maker's: "sell" means a buyer took it.
            side: match r.side {
                Some("sell") => Some(Side::Buy),
                Some("buy") => Some(Side::Sell),
                _ => None,
            },
            sequence: r.sequence,
            event_time_ms: time_ms(r.time)?,
        })),
        "heartbeat" => out.push(StreamMsg::Heartbeat(Heartbeat {
            symbol: Some(product()?.into()),
            sequence: r.sequence,
            last_trade_id: r.last_trade_id,
            event_time_ms: time_ms(r.time)?,
        })),
        "subscriptions" => {
            for ch in r.channels.unwrap_or_default() {
                let products = ch.product_ids.unwrap_or_default();
                if products.is_empty() {
                    out.push(ack(&ch.name, None));
                }
                for p in products {
                    out.push(ack(&ch.name, Some(p)));
                }
            }
        }
        "error" => {
            let message = r.message.map(Cow::into_owned).unwrap_or_default();
            out.push(StreamMsg::Error(StreamError {
                code: None,
                message: match r.reason {
                    Some(reason) => format!("{message}: {reason}"),
                    None => message,
                },
            }));
        }
        "status" => {
            for p in r.products.unwrap_or_default() {
                out.push(StreamMsg::Notice(product_notice(p)));
            }
        }
        _ => return Err(ParseError::Unknown(wire::excerpt(text))),
    }
    Ok(())
}

fn ack(channel: &str, symbol: Option<String>) -> StreamMsg {
    StreamMsg::Ack(Ack {
        success: true,
        channel: Some(channel.to_string()),
        symbol,
        req_id: None,
        message: None,
        unsubscribe: false,
    })
}

fn level(p: Option<&str>, q: Option<&str>) -> Result<Option<Level>, ParseError> {
    match (wire::opt_dec("price", p)?, wire::opt_dec("size", q)?) {
        (Some(p), Some(q)) => Ok(Some(Level::new(p, q))),
        _ => Ok(None),
    }
}

/// One product of a `status` frame as a notice: `online` (and no
/// restriction) is [`NoticeKind::Online`]; the `cancel_only`, `post_only`,
/// `limit_only` flags map to their kinds; any other status (`offline`,
/// `delisted`, `internal`) or `trading_disabled` is maintenance.
fn product_notice(p: ProductStatus<'_>) -> Notice {
    let status = p.status.as_deref().unwrap_or("");
    let kind = if p.trading_disabled || status != "online" {
        NoticeKind::Maintenance
    } else if p.cancel_only {
        NoticeKind::CancelOnly
    } else if p.post_only {
        NoticeKind::PostOnly
    } else if p.limit_only {
        NoticeKind::LimitOnly
    } else {
        NoticeKind::Online
    };
    Notice {
        kind,
        symbol: Some(p.id.into_owned()),
        code: p.status.map(Cow::into_owned),
        message: p.status_message.map(Cow::into_owned),
        event_time_ms: None,
    }
}
