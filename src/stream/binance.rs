//! Binance spot public streams (binance/binance-spot-api-docs
//! `web-socket-streams.md`).
//!
//! - URL `wss://stream.binance.com:9443/ws/<stream>` (raw) or
//!   `/stream?streams=a/b` (combined: each event wrapped as
//!   `{"stream": "<name>", "data": {...}}`); market-data-only host
//!   `wss://data-stream.binance.vision`. Stream names are lowercase.
//! - Keepalive: the *server* pings every 20 s and wants a pong frame within
//!   a minute; there is no application-level ping ([`PING`] is `None`).
//!   Connections end at 24 h; a `serverShutdown` event precedes upgrades.
//! - Limits: 5 incoming messages/s per connection (pings, pongs and JSON
//!   control messages all count), 1024 streams per connection, 300
//!   connection attempts per 5 minutes per IP.
//!
//! Channel names in parsed messages are canonical, whatever the stream
//! suffix: `depth` (diff depth, any speed), `trade`, `ticker`
//! (`24hrTicker`), `bookTicker`; see [`channel`].

use std::borrow::Cow;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, SeqAccess, Visitor};

use super::message::{
    Ack, BookKind, BookMsg, BookSeq, Level, Notice, NoticeKind, Quote, Side, StreamError,
    StreamMsg, Trade,
};
use super::wire::{self, IdText, Levels, ParseError, Seen, missing};
use super::{Feed, Op};

/// Default public URL (raw streams are under `/ws/`, combined under
/// `/stream?streams=`).
pub const URL: &str = "wss://stream.binance.com:9443";

/// Binance has no application-level ping: answer the server's ping frames.
pub const PING: Option<&str> = None;

/// The stream name of a feed: `btcusdt@bookTicker`, `btcusdt@trade`,
/// `btcusdt@depth@100ms`. Symbols are lowercased as the docs require.
pub fn topic(feed: Feed, symbol: &str) -> Option<String> {
    let s = symbol.to_ascii_lowercase();
    match feed {
        Feed::Ticker => Some(format!("{s}@bookTicker")),
        Feed::Trades => Some(format!("{s}@trade")),
        Feed::Book { .. } => Some(format!("{s}@depth@100ms")),
        Feed::Heartbeat | Feed::Status | Feed::Instrument => None,
    }
}

/// The channel parsed messages of a feed carry (see the module doc).
pub fn channel(feed: Feed) -> Option<&'static str> {
    match feed {
        Feed::Ticker => Some("bookTicker"),
        Feed::Trades => Some("trade"),
        Feed::Book { .. } => Some("depth"),
        Feed::Heartbeat | Feed::Status | Feed::Instrument => None,
    }
}

/// `{"method":"SUBSCRIBE","params":[streams],"id":n}` (or `UNSUBSCRIBE`).
pub fn request(op: Op, id: u64, subs: &[(Feed, &str)]) -> String {
    let params: Vec<String> = subs.iter().filter_map(|(f, s)| topic(*f, s)).collect();
    let method = op.as_str().to_ascii_uppercase();
    serde_json::json!({"method": method, "params": params, "id": id}).to_string()
}

/// `b` and `a` mean different things per event: level arrays in
/// `depthUpdate`, prices in `bookTicker`/`24hrTicker`, order ids in `trade`.
enum Ba<'a> {
    Levels(Vec<Level>),
    Text(&'a str),
    Other,
}

impl<'de: 'a, 'a> Deserialize<'de> for Ba<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Ba<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("levels, a decimal string or an id")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Ba<'a>, E> {
                Ok(Ba::Text(v))
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Ba<'a>, E> {
                Ok(Ba::Other)
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Ba<'a>, E> {
                Ok(Ba::Other)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Ba<'a>, A::Error> {
                let levels = Levels::deserialize(de::value::SeqAccessDeserializer::new(seq))?;
                Ok(Ba::Levels(levels.0))
            }
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }
}

/// Every field of every Binance frame exwatch reads, in one pass.
#[derive(Deserialize)]
struct Raw<'a> {
    #[serde(borrow)]
    stream: Option<&'a str>,
    #[serde(borrow)]
    data: Option<Box<Raw<'a>>>,
    #[serde(borrow)]
    e: Option<&'a str>,
    #[serde(rename = "E")]
    event_time: Option<i64>,
    #[serde(borrow)]
    s: Option<&'a str>,
    #[serde(rename = "U")]
    first: Option<u64>,
    u: Option<u64>,
    #[serde(borrow)]
    b: Option<Ba<'a>>,
    #[serde(borrow)]
    a: Option<Ba<'a>>,
    #[serde(borrow, rename = "B")]
    bid_qty: Option<&'a str>,
    #[serde(borrow, rename = "A")]
    ask_qty: Option<&'a str>,
    t: Option<u64>,
    #[serde(borrow)]
    p: Option<&'a str>,
    #[serde(borrow)]
    q: Option<&'a str>,
    #[serde(borrow)]
    c: Option<&'a str>,
    m: Option<bool>,
    #[serde(rename = "T")]
    trade_time: Option<i64>,
    #[serde(rename = "lastUpdateId")]
    last_update_id: Option<u64>,
    bids: Option<Levels>,
    asks: Option<Levels>,
    #[serde(default)]
    result: Seen,
    id: Option<IdText>,
    code: Option<i64>,
    #[serde(borrow)]
    msg: Option<Cow<'a, str>>,
}

/// Parse one text frame.
pub fn parse(text: &str) -> Result<Vec<StreamMsg>, ParseError> {
    let mut out = Vec::with_capacity(1);
    parse_into(text, &mut out)?;
    Ok(out)
}

/// [`parse`] appending to a reused vector (hot loops).
pub fn parse_into(text: &str, out: &mut Vec<StreamMsg>) -> Result<(), ParseError> {
    let mut raw: Raw = serde_json::from_str(text)?;
    let raw = match (raw.stream, raw.data.take()) {
        (Some(_), Some(inner)) => *inner,
        (_, None) => raw,
        (None, Some(_)) => return Err(ParseError::Unknown(wire::excerpt(text))),
    };
    out.push(event(raw, text)?);
    Ok(())
}

fn event(r: Raw<'_>, text: &str) -> Result<StreamMsg, ParseError> {
    match r.e {
        Some("depthUpdate") => depth_update(r),
        Some("trade") => trade(r),
        Some("24hrTicker") => ticker(r),
        Some("serverShutdown") => Ok(StreamMsg::Notice(Notice {
            kind: NoticeKind::ServerShutdown,
            symbol: None,
            code: None,
            message: None,
            event_time_ms: r.event_time,
        })),
        Some(_) => Err(ParseError::Unknown(wire::excerpt(text))),
        None if r.code.is_some() => Ok(StreamMsg::Error(StreamError {
            code: r.code.map(|c| c.to_string()),
            message: r.msg.map(Cow::into_owned).unwrap_or_default(),
        })),
        None if r.result.0 => Ok(StreamMsg::Ack(Ack {
            success: true,
            channel: None,
            symbol: None,
            req_id: r.id.map(|i| i.0),
            message: None,
            // `{"result":null,"id":n}` answers both verbs alike.
            unsubscribe: false,
        })),
        None if r.u.is_some() && r.s.is_some() && r.bid_qty.is_some() => book_ticker(r),
        None => Err(ParseError::Unknown(wire::excerpt(text))),
    }
}

fn levels(v: Option<Ba<'_>>, field: &'static str) -> Result<Vec<Level>, ParseError> {
    match v {
        Some(Ba::Levels(l)) => Ok(l),
        _ => Err(missing("depthUpdate", field)),
    }
}

fn depth_update(r: Raw<'_>) -> Result<StreamMsg, ParseError> {
    let what = "depthUpdate";
    let first = r.first.ok_or(missing(what, "U"))?;
    let last = r.u.ok_or(missing(what, "u"))?;
    if first > last {
        return Err(ParseError::Bad {
            field: "U",
            detail: format!("U {first} > u {last}"),
        });
    }
    Ok(StreamMsg::Book(BookMsg {
        channel: "depth".into(),
        symbol: r.s.ok_or(missing(what, "s"))?.into(),
        kind: BookKind::Delta,
        bids: levels(r.b, "b")?,
        asks: levels(r.a, "a")?,
        seq: BookSeq::Binance { first, last },
        event_time_ms: r.event_time,
    }))
}

fn trade(r: Raw<'_>) -> Result<StreamMsg, ParseError> {
    let what = "trade";
    Ok(StreamMsg::Trade(Trade {
        channel: "trade".into(),
        symbol: r.s.ok_or(missing(what, "s"))?.into(),
        trade_id: Some(r.t.ok_or(missing(what, "t"))?),
        trade_ref: None,
        count: 1,
        price: wire::dec("p", r.p.ok_or(missing(what, "p"))?)?,
        qty: wire::dec("q", r.q.ok_or(missing(what, "q"))?)?,
        // `m`: "Is the buyer the market maker?" — then the taker sold.
        side: r.m.map(|m| if m { Side::Sell } else { Side::Buy }),
        sequence: None,
        event_time_ms: r.trade_time.or(r.event_time),
    }))
}

fn text(v: Option<Ba<'_>>) -> Option<&str> {
    match v {
        Some(Ba::Text(t)) => Some(t),
        _ => None,
    }
}

fn level(price: Option<&str>, qty: Option<&str>) -> Result<Option<Level>, ParseError> {
    match (wire::opt_dec("price", price)?, wire::opt_dec("qty", qty)?) {
        (Some(p), Some(q)) => Ok(Some(Level::new(p, q))),
        _ => Ok(None),
    }
}

fn book_ticker(r: Raw<'_>) -> Result<StreamMsg, ParseError> {
    Ok(StreamMsg::Quote(Quote {
        channel: "bookTicker".into(),
        symbol: r.s.unwrap_or_default().into(),
        bid: level(text(r.b), r.bid_qty)?,
        ask: level(text(r.a), r.ask_qty)?,
        last: None,
        sequence: r.u,
        trade_id: None,
        event_time_ms: r.event_time,
    }))
}

fn ticker(r: Raw<'_>) -> Result<StreamMsg, ParseError> {
    Ok(StreamMsg::Quote(Quote {
        channel: "ticker".into(),
        symbol: r.s.ok_or(missing("24hrTicker", "s"))?.into(),
        bid: level(text(r.b), r.bid_qty)?,
        ask: level(text(r.a), r.ask_qty)?,
        last: wire::opt_dec("c", r.c)?,
        sequence: None,
        trade_id: None,
        event_time_ms: r.event_time,
    }))
}

/// The REST `GET /api/v3/depth` snapshot body (`{"lastUpdateId", "bids",
/// "asks"}`; binance-spot-api-docs `rest-api.md`, "Order book") as the
/// snapshot a [`super::LocalBook`] under the Binance rule syncs to.
pub fn parse_rest_depth(text: &str, symbol: &str) -> Result<BookMsg, ParseError> {
    let r: Raw = serde_json::from_str(text)?;
    let what = "depth snapshot";
    Ok(BookMsg {
        channel: "depth".into(),
        symbol: symbol.into(),
        kind: BookKind::Snapshot,
        bids: r.bids.ok_or(missing(what, "bids"))?.0,
        asks: r.asks.ok_or(missing(what, "asks"))?.0,
        seq: BookSeq::BinanceRest {
            last_update_id: r.last_update_id.ok_or(missing(what, "lastUpdateId"))?,
        },
        event_time_ms: None,
    })
}
