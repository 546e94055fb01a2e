//! Bybit v5 spot public streams (bybit-exchange/docs `docs/v5/websocket/`:
//! `wss-authentication.mdx` "Connect", `public/orderbook.mdx`,
//! `public/trade.mdx`, `public/ticker.mdx`).
//!
//! - URL `wss://stream.bybit.com/v5/public/spot`.
//! - Topics `orderbook.{1|50|200|1000}.<SYM>` (snapshot, then deltas),
//!   `publicTrade.<SYM>`, `tickers.<SYM>` (spot: snapshot only, no best
//!   bid/ask fields, last price only).
//! - Keepalive: the client sends `{"op":"ping"}` (20 s recommended); idle
//!   connections are cut after 10 minutes. Spot answers
//!   `{"success":true,"ret_msg":"pong","op":"ping",...}`, option/spread
//!   `{"op":"pong","args":[ts]}`.
//! - Subscribe: at most 10 args per request on spot.
//!
//! Channel names in parsed messages are the topic without the symbol:
//! `orderbook.50`, `publicTrade`, `tickers`.

use std::borrow::Cow;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};

use super::message::{
    Ack, BookKind, BookMsg, BookSeq, Level, Quote, Side, StreamError, StreamMsg, Trade,
};
use super::wire::{self, FlexInt, Levels, ParseError, missing};
use super::{Feed, Op};

/// Default public spot URL.
pub const URL: &str = "wss://stream.bybit.com/v5/public/spot";

/// The application-level ping the client must send (every 20 s).
pub const PING: Option<&str> = Some(r#"{"op":"ping"}"#);

/// Most args one spot subscribe request may carry.
pub const MAX_ARGS_PER_REQUEST: usize = 10;

/// `tickers.BTCUSDT`, `publicTrade.BTCUSDT`, `orderbook.50.BTCUSDT`.
pub fn topic(feed: Feed, symbol: &str) -> Option<String> {
    match feed {
        Feed::Ticker => Some(format!("tickers.{symbol}")),
        Feed::Trades => Some(format!("publicTrade.{symbol}")),
        Feed::Book { depth } => Some(format!("orderbook.{depth}.{symbol}")),
        Feed::Heartbeat | Feed::Status | Feed::Instrument => None,
    }
}

/// The channel parsed messages of a feed carry.
pub fn channel(feed: Feed) -> Option<String> {
    match feed {
        Feed::Ticker => Some("tickers".into()),
        Feed::Trades => Some("publicTrade".into()),
        Feed::Book { depth } => Some(format!("orderbook.{depth}")),
        Feed::Heartbeat | Feed::Status | Feed::Instrument => None,
    }
}

/// `{"req_id":"…","op":"subscribe","args":[topics]}` (or `unsubscribe`).
/// Callers split subscriptions into requests of at most
/// [`MAX_ARGS_PER_REQUEST`].
pub fn request(op: Op, req_id: &str, subs: &[(Feed, &str)]) -> String {
    let args: Vec<String> = subs.iter().filter_map(|(f, s)| topic(*f, s)).collect();
    serde_json::json!({"req_id": req_id, "op": op.as_str(), "args": args}).to_string()
}

#[derive(Deserialize)]
struct Raw<'a> {
    #[serde(borrow)]
    topic: Option<&'a str>,
    #[serde(borrow, rename = "type")]
    kind: Option<&'a str>,
    ts: Option<i64>,
    cs: Option<u64>,
    #[serde(borrow)]
    data: Option<Data<'a>>,
    success: Option<bool>,
    #[serde(borrow)]
    ret_msg: Option<Cow<'a, str>>,
    #[serde(borrow)]
    op: Option<&'a str>,
    #[serde(borrow)]
    req_id: Option<Cow<'a, str>>,
}

/// `data` is an object (order book, ticker) or an array (trades).
enum Data<'a> {
    Object(Obj<'a>),
    Trades(Vec<TradeRow<'a>>),
}

#[derive(Deserialize)]
struct Obj<'a> {
    #[serde(borrow)]
    s: Option<&'a str>,
    b: Option<Levels>,
    a: Option<Levels>,
    u: Option<u64>,
    seq: Option<u64>,
    #[serde(borrow)]
    symbol: Option<&'a str>,
    #[serde(borrow, rename = "lastPrice")]
    last_price: Option<&'a str>,
    #[serde(borrow, rename = "bid1Price")]
    bid_price: Option<&'a str>,
    #[serde(borrow, rename = "bid1Size")]
    bid_size: Option<&'a str>,
    #[serde(borrow, rename = "ask1Price")]
    ask_price: Option<&'a str>,
    #[serde(borrow, rename = "ask1Size")]
    ask_size: Option<&'a str>,
}

#[derive(Deserialize)]
struct TradeRow<'a> {
    #[serde(rename = "T")]
    time: Option<i64>,
    #[serde(borrow)]
    s: &'a str,
    #[serde(borrow, rename = "S")]
    side: Option<&'a str>,
    #[serde(borrow)]
    v: &'a str,
    #[serde(borrow)]
    p: &'a str,
    #[serde(borrow)]
    i: Option<Cow<'a, str>>,
    seq: Option<FlexInt>,
}

impl<'de: 'a, 'a> Deserialize<'de> for Data<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Data<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object or an array")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Data<'a>, A::Error> {
                Obj::deserialize(de::value::MapAccessDeserializer::new(map)).map(Data::Object)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Data<'a>, A::Error> {
                Vec::<TradeRow>::deserialize(de::value::SeqAccessDeserializer::new(seq))
                    .map(Data::Trades)
            }
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }
}

/// Parse one text frame.
pub fn parse(text: &str) -> Result<Vec<StreamMsg>, ParseError> {
    let mut out = Vec::with_capacity(1);
    parse_into(text, &mut out)?;
    Ok(out)
}

/// [`parse`] appending to a reused vector (hot loops).
pub fn parse_into(text: &str, out: &mut Vec<StreamMsg>) -> Result<(), ParseError> {
    let r: Raw = serde_json::from_str(text)?;
    if let Some(topic) = r.topic {
        let (channel, symbol) = split_topic(topic);
        return match (channel, r.data) {
            (c, Some(Data::Object(o))) if c.starts_with("orderbook.") => {
                out.push(book(channel, symbol, r.kind, r.ts, o)?);
                Ok(())
            }
            ("tickers", Some(Data::Object(o))) => {
                out.push(ticker(symbol, r.ts, r.cs, o)?);
                Ok(())
            }
            ("publicTrade", Some(Data::Trades(rows))) => {
                for row in rows {
                    out.push(trade(row)?);
                }
                Ok(())
            }
            _ => Err(ParseError::Unknown(wire::excerpt(text))),
        };
    }
    let msg = match (r.op, r.success, r.ret_msg.as_deref()) {
        (Some("pong"), _, _) | (Some("ping"), Some(true), Some("pong")) => StreamMsg::Pong,
        (Some("ping"), Some(false), m) => StreamMsg::Error(StreamError {
            code: None,
            message: m.unwrap_or("ping failed").to_string(),
        }),
        (Some(op @ ("subscribe" | "unsubscribe")), Some(success), m) => StreamMsg::Ack(Ack {
            success,
            channel: None,
            symbol: None,
            req_id: r.req_id.map(Cow::into_owned).filter(|s| !s.is_empty()),
            message: m.map(str::to_string).or_else(|| Some(op.to_string())),
            unsubscribe: op == "unsubscribe",
        }),
        (_, Some(false), m) => StreamMsg::Error(StreamError {
            code: None,
            message: m.unwrap_or_default().to_string(),
        }),
        _ => return Err(ParseError::Unknown(wire::excerpt(text))),
    };
    out.push(msg);
    Ok(())
}

/// `orderbook.50.BTCUSDT` → (`orderbook.50`, `BTCUSDT`).
fn split_topic(topic: &str) -> (&str, &str) {
    match topic.rfind('.') {
        Some(i) => (&topic[..i], &topic[i + 1..]),
        None => (topic, ""),
    }
}

fn book(
    channel: &str,
    symbol: &str,
    kind: Option<&str>,
    ts: Option<i64>,
    o: Obj<'_>,
) -> Result<StreamMsg, ParseError> {
    let what = "orderbook";
    let kind = match kind {
        Some("snapshot") => BookKind::Snapshot,
        Some("delta") => BookKind::Delta,
        Some(other) => {
            return Err(ParseError::Bad {
                field: "type",
                detail: wire::excerpt(other),
            });
        }
        None => return Err(missing(what, "type")),
    };
    Ok(StreamMsg::Book(BookMsg {
        channel: channel.into(),
        symbol: o.s.unwrap_or(symbol).into(),
        kind,
        bids: o.b.ok_or(missing(what, "b"))?.0,
        asks: o.a.ok_or(missing(what, "a"))?.0,
        seq: BookSeq::Bybit {
            update_id: o.u.ok_or(missing(what, "u"))?,
            seq: o.seq.unwrap_or(0),
        },
        event_time_ms: ts,
    }))
}

fn level(p: Option<&str>, q: Option<&str>) -> Result<Option<Level>, ParseError> {
    match (wire::opt_dec("price", p)?, wire::opt_dec("size", q)?) {
        (Some(p), Some(q)) => Ok(Some(Level::new(p, q))),
        _ => Ok(None),
    }
}

fn ticker(
    symbol: &str,
    ts: Option<i64>,
    cs: Option<u64>,
    o: Obj<'_>,
) -> Result<StreamMsg, ParseError> {
    Ok(StreamMsg::Quote(Quote {
        channel: "tickers".into(),
        symbol: o.symbol.unwrap_or(symbol).into(),
        bid: level(o.bid_price, o.bid_size)?,
        ask: level(o.ask_price, o.ask_size)?,
        last: wire::opt_dec("lastPrice", o.last_price)?,
        sequence: cs,
        trade_id: None,
        event_time_ms: ts,
    }))
}

fn trade(row: TradeRow<'_>) -> Result<StreamMsg, ParseError> {
    Ok(StreamMsg::Trade(Trade {
        channel: "publicTrade".into(),
        symbol: row.s.into(),
        trade_id: None,
        trade_ref: row.i.map(Cow::into_owned),
        count: 1,
        price: wire::dec("p", row.p)?,
        qty: wire::dec("v", row.v)?,
        side: match row.side {
            Some("Buy") => Some(Side::Buy),
            Some("Sell") => Some(Side::Sell),
            _ => None,
        },
        sequence: row.seq.and_then(|s| u64::try_from(s.0).ok()),
        event_time_ms: row.time,
    }))
}
