//! Kraken spot WebSocket v2 (docs.kraken.com `api-reference/spot-websocket-v2/`
//! `book`, `ticker`, `trade`, `instrument`, `status`, `heartbeat`, `ping`;
//! `guides/websockets/book-checksum-v2`).
//!
//! - URL `wss://ws.kraken.com/v2`.
//! - Frames `{"channel", "type": "snapshot"|"update", "data": [...]}`;
//!   prices and quantities are JSON numbers, read exactly (see
//!   [`super::Dec`]).
//! - `book`: depth 10/25/100/500/1000; every snapshot and update carries a
//!   CRC32 of the top 10 levels at the instrument's precision, checked after
//!   applying the message and truncating the book to the subscribed depth
//!   ([`super::LocalBook`] with [`super::Rule::Kraken`]).
//! - `heartbeat` about once a second when nothing else flows; the client
//!   may send `{"method":"ping"}` and gets `{"method":"pong"}`.
//! - `status` on connect and on engine state changes: `online`,
//!   `maintenance`, `cancel_only`, `post_only`.
//! - `instrument` gives each pair's `price_precision` and `qty_precision`.
//!
//! Channel names in parsed messages are Kraken's: `book`, `ticker`, `trade`.

use std::borrow::Cow;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};

use super::decimal::RawDec;
use super::message::{
    Ack, BookKind, BookMsg, BookSeq, Heartbeat, Instrument, Level, Notice, NoticeKind, Quote, Side,
    StreamError, StreamMsg, Trade,
};
use super::wire::{self, IdText, ParseError, missing};
use super::{Feed, Op};

/// Default public URL.
pub const URL: &str = "wss://ws.kraken.com/v2";

/// The application-level ping.
pub const PING: Option<&str> = Some(r#"{"method":"ping"}"#);

/// Book depths Kraken accepts.
pub const DEPTHS: [u16; 5] = [10, 25, 100, 500, 1000];

/// Kraken's channel name for a feed (its subscribe name and parsed channel).
pub fn channel(feed: Feed) -> Option<&'static str> {
    match feed {
        Feed::Ticker => Some("ticker"),
        Feed::Trades => Some("trade"),
        Feed::Book { .. } => Some("book"),
        Feed::Heartbeat => None,
        Feed::Status => Some("status"),
        Feed::Instrument => Some("instrument"),
    }
}

/// One subscribe (or unsubscribe) request per channel (v2 `params` name a
/// single channel):
/// `{"method":"subscribe","params":{"channel","symbol":[...],"depth"?},"req_id"}`.
/// A book subscription asks for its snapshot, so unsubscribing and
/// subscribing again is Kraken's documented resync.
/// `status` and `heartbeat` need no subscription (sent on connect / once
/// any subscription exists); the `instrument` channel takes no symbols.
pub fn request(op: Op, req_id: u64, subs: &[(Feed, &str)]) -> Vec<String> {
    let mut groups: Vec<(Feed, Vec<&str>)> = Vec::new();
    for (feed, symbol) in subs {
        if channel(*feed).is_none() || *feed == Feed::Status {
            continue;
        }
        match groups.iter_mut().find(|(f, _)| f == feed) {
            Some((_, symbols)) => symbols.push(symbol),
            None => groups.push((*feed, vec![symbol])),
        }
    }
    groups
        .into_iter()
        .filter_map(|(feed, symbols)| {
            let name = channel(feed)?;
            let mut params = match feed {
                Feed::Book { depth } => serde_json::json!({
                    "channel": name, "symbol": symbols, "depth": depth, "snapshot": true
                }),
                Feed::Instrument => serde_json::json!({ "channel": name, "snapshot": true }),
                _ => serde_json::json!({ "channel": name, "symbol": symbols }),
            };
            if op == Op::Unsubscribe {
                // `snapshot` is a subscribe parameter only.
                if let Some(p) = params.as_object_mut() {
                    p.remove("snapshot");
                }
            }
            Some(
                serde_json::json!({"method": op.as_str(), "params": params, "req_id": req_id})
                    .to_string(),
            )
        })
        .collect()
}

#[derive(Deserialize)]
struct Raw<'a> {
    #[serde(borrow)]
    channel: Option<&'a str>,
    #[serde(borrow, rename = "type")]
    kind: Option<&'a str>,
    #[serde(borrow)]
    data: Option<Data<'a>>,
    #[serde(borrow)]
    method: Option<&'a str>,
    success: Option<bool>,
    #[serde(borrow)]
    result: Option<AckResult<'a>>,
    #[serde(borrow)]
    error: Option<Cow<'a, str>>,
    #[serde(borrow)]
    symbol: Option<Cow<'a, str>>,
    req_id: Option<IdText>,
}

#[derive(Deserialize)]
struct AckResult<'a> {
    #[serde(borrow)]
    channel: Option<Cow<'a, str>>,
    #[serde(borrow)]
    symbol: Option<Cow<'a, str>>,
}

enum Data<'a> {
    Rows(Vec<Row<'a>>),
    Instruments(Vec<Pair<'a>>),
}

#[derive(Deserialize)]
struct Row<'a> {
    #[serde(borrow)]
    symbol: Option<&'a str>,
    bids: Option<Vec<KLevel>>,
    asks: Option<Vec<KLevel>>,
    checksum: Option<u32>,
    #[serde(borrow)]
    timestamp: Option<&'a str>,
    bid: Option<RawDec>,
    bid_qty: Option<RawDec>,
    ask: Option<RawDec>,
    ask_qty: Option<RawDec>,
    last: Option<RawDec>,
    #[serde(borrow)]
    side: Option<&'a str>,
    price: Option<RawDec>,
    qty: Option<RawDec>,
    trade_id: Option<u64>,
    #[serde(borrow)]
    system: Option<&'a str>,
}

/// `{"price": 0.5666, "qty": 4831.75496356}`: JSON numbers, read exactly.
#[derive(Deserialize)]
struct KLevel {
    price: RawDec,
    qty: RawDec,
}

fn levels(v: Option<Vec<KLevel>>) -> Vec<Level> {
    v.unwrap_or_default()
        .into_iter()
        .map(|l| Level::new(l.price.0, l.qty.0))
        .collect()
}

#[derive(Deserialize)]
struct Instruments<'a> {
    #[serde(borrow, default)]
    pairs: Vec<Pair<'a>>,
}

#[derive(Deserialize)]
struct Pair<'a> {
    #[serde(borrow)]
    symbol: Cow<'a, str>,
    price_precision: u8,
    qty_precision: u8,
}

impl<'de: 'a, 'a> Deserialize<'de> for Data<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Data<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an array of rows or the instrument object")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Data<'a>, A::Error> {
                Vec::<Row>::deserialize(de::value::SeqAccessDeserializer::new(seq)).map(Data::Rows)
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Data<'a>, A::Error> {
                Instruments::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(|i| Data::Instruments(i.pairs))
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
    if let Some(method) = r.method {
        out.push(method_msg(method, r, text)?);
        return Ok(());
    }
    let Some(channel) = r.channel else {
        return Err(ParseError::Unknown(wire::excerpt(text)));
    };
    if channel == "heartbeat" {
        out.push(StreamMsg::Heartbeat(Heartbeat {
            symbol: None,
            sequence: None,
            last_trade_id: None,
            event_time_ms: None,
        }));
        return Ok(());
    }
    let kind = match r.kind {
        Some("snapshot") => BookKind::Snapshot,
        Some("update") => BookKind::Delta,
        _ => return Err(missing("channel message", "type")),
    };
    match (channel, r.data) {
        ("instrument", Some(Data::Instruments(pairs))) => {
            for p in pairs {
                out.push(StreamMsg::Instrument(Instrument {
                    symbol: p.symbol.into_owned(),
                    price_precision: p.price_precision,
                    qty_precision: p.qty_precision,
                }));
            }
        }
        (_, Some(Data::Rows(rows))) => {
            for row in rows {
                out.push(row_msg(channel, kind, row, text)?);
            }
        }
        _ => return Err(ParseError::Unknown(wire::excerpt(text))),
    }
    Ok(())
}

fn method_msg(method: &str, r: Raw<'_>, text: &str) -> Result<StreamMsg, ParseError> {
    Ok(match method {
        "pong" => StreamMsg::Pong,
        "subscribe" | "unsubscribe" => {
            let success = r.success.unwrap_or(false);
            let (channel, result_symbol) = match r.result {
                Some(res) => (
                    res.channel.map(Cow::into_owned),
                    res.symbol.map(Cow::into_owned),
                ),
                None => (None, None),
            };
            StreamMsg::Ack(Ack {
                success,
                channel,
                symbol: result_symbol.or(r.symbol.map(Cow::into_owned)),
                req_id: r.req_id.map(|i| i.0),
                message: r.error.map(Cow::into_owned),
                unsubscribe: method == "unsubscribe",
            })
        }
        _ if r.error.is_some() || r.success == Some(false) => StreamMsg::Error(StreamError {
            code: None,
            message: r.error.map(Cow::into_owned).unwrap_or_default(),
        }),
        _ => return Err(ParseError::Unknown(wire::excerpt(text))),
    })
}

fn ts(row: &Row<'_>) -> Result<Option<i64>, ParseError> {
    row.timestamp
        .map(|t| wire::rfc3339_ms("timestamp", t))
        .transpose()
}

fn row_msg(
    channel: &str,
    kind: BookKind,
    row: Row<'_>,
    text: &str,
) -> Result<StreamMsg, ParseError> {
    let symbol = || {
        row.symbol
            .map(str::to_string)
            .ok_or(missing("data", "symbol"))
    };
    Ok(match channel {
        "book" => StreamMsg::Book(BookMsg {
            channel: "book".into(),
            symbol: symbol()?,
            kind,
            event_time_ms: ts(&row)?,
            seq: BookSeq::Kraken {
                checksum: row.checksum.ok_or(missing("book", "checksum"))?,
            },
            bids: levels(row.bids),
            asks: levels(row.asks),
        }),
        "ticker" => StreamMsg::Quote(Quote {
            channel: "ticker".into(),
            symbol: symbol()?,
            bid: row.bid.zip(row.bid_qty).map(|(p, q)| Level::new(p.0, q.0)),
            ask: row.ask.zip(row.ask_qty).map(|(p, q)| Level::new(p.0, q.0)),
            last: row.last.map(|l| l.0),
            sequence: None,
            trade_id: None,
            event_time_ms: ts(&row)?,
        }),
        "trade" => StreamMsg::Trade(Trade {
            channel: "trade".into(),
            symbol: symbol()?,
            trade_id: row.trade_id,
            trade_ref: None,
            count: 1,
            price: row.price.ok_or(missing("trade", "price"))?.0,
            qty: row.qty.ok_or(missing("trade", "qty"))?.0,
            side: match row.side {
                Some("buy") => Some(Side::Buy),
                Some("sell") => Some(Side::Sell),
                _ => None,
            },
            sequence: None,
            event_time_ms: ts(&row)?,
        }),
        "status" => {
            let system = row.system.ok_or(missing("status", "system"))?;
            let kind = match system {
                "online" => NoticeKind::Online,
                "maintenance" => NoticeKind::Maintenance,
                "cancel_only" => NoticeKind::CancelOnly,
                "post_only" => NoticeKind::PostOnly,
                other => {
                    return Err(ParseError::Bad {
                        field: "system",
                        detail: wire::excerpt(other),
                    });
                }
            };
            StreamMsg::Notice(Notice {
                kind,
                symbol: None,
                code: Some(system.to_string()),
                message: None,
                event_time_ms: None,
            })
        }
        _ => return Err(ParseError::Unknown(wire::excerpt(text))),
    })
}
