//! OKX v5 public streams (okx.com/docs-v5, "WebSocket" overview and the
//! market-data channels "Tickers channel", "Trades channel", "Order book
//! channel"; copies in wcttmf/okx-api-docs `docs/03-order-book-trading/`).
//!
//! - URL: the docs list `wss://ws.okx.com:8443/ws/v5/public`; port 8443 was
//!   reportedly retired on 2026-10-31, so [`URL`] is the port-443 form and
//!   workers must take the URL from config.
//! - Channels `tickers`, `trades` (aggregated prints: `tradeId` is the last
//!   id, `count` how many), `books` (400-level snapshot, then updates every
//!   100 ms, `seqId`/`prevSeqId`; `checksum` pinned to 0 since 2026-06-23).
//! - Keepalive: the client sends the text `ping` when idle under 30 s and
//!   gets the text `pong`; after 30 s without data the server closes with
//!   code 4004. `{"event":"notice","code":"64008"}` arrives 60 s before an
//!   upgrade.
//! - 3 connection requests/s per IP; 480 (un)subscribe requests per hour per
//!   connection.
//!
//! Channel names in parsed messages are OKX's: `tickers`, `trades`, `books`.

use std::borrow::Cow;

use serde::Deserialize;

use super::message::{
    Ack, BookKind, BookMsg, BookSeq, Level, Notice, NoticeKind, Quote, Side, StreamError,
    StreamMsg, Trade,
};
use super::wire::{self, FlexInt, Levels, ParseError, missing};
use super::{Feed, Op};

/// Default public URL (port 443; see the module doc).
pub const URL: &str = "wss://ws.okx.com/ws/v5/public";

/// The application-level ping: the bare text `ping` (not JSON).
pub const PING: Option<&str> = Some("ping");

/// The notice code sent 60 s before a service upgrade closes the connection.
pub const UPGRADE_NOTICE_CODE: &str = "64008";

/// OKX's channel name for a feed (its topic and its parsed channel).
pub fn channel(feed: Feed) -> Option<&'static str> {
    match feed {
        Feed::Ticker => Some("tickers"),
        Feed::Trades => Some("trades"),
        Feed::Book { .. } => Some("books"),
        Feed::Heartbeat | Feed::Status | Feed::Instrument => None,
    }
}

/// `{"id":"…","op":"subscribe","args":[{"channel","instId"}]}` (or
/// `unsubscribe`). Subscribe and unsubscribe requests together are limited
/// to 480 per hour per connection (OKX API v5, "WebSocket" overview).
pub fn request(op: Op, id: &str, subs: &[(Feed, &str)]) -> String {
    let args: Vec<serde_json::Value> = subs
        .iter()
        .filter_map(|(f, s)| channel(*f).map(|c| serde_json::json!({"channel": c, "instId": s})))
        .collect();
    serde_json::json!({"id": id, "op": op.as_str(), "args": args}).to_string()
}

#[derive(Deserialize)]
struct Arg<'a> {
    #[serde(borrow)]
    channel: &'a str,
    #[serde(borrow, rename = "instId")]
    inst_id: Option<&'a str>,
}

#[derive(Deserialize)]
struct Raw<'a> {
    #[serde(borrow)]
    arg: Option<Arg<'a>>,
    #[serde(borrow)]
    action: Option<&'a str>,
    #[serde(borrow)]
    data: Option<Vec<Row<'a>>>,
    #[serde(borrow)]
    event: Option<&'a str>,
    code: Option<FlexInt>,
    #[serde(borrow)]
    msg: Option<Cow<'a, str>>,
    #[serde(borrow)]
    id: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct Row<'a> {
    asks: Option<Levels>,
    bids: Option<Levels>,
    ts: Option<FlexInt>,
    checksum: Option<i64>,
    #[serde(rename = "prevSeqId")]
    prev_seq_id: Option<i64>,
    #[serde(rename = "seqId")]
    seq_id: Option<i64>,
    #[serde(borrow, rename = "instId")]
    inst_id: Option<&'a str>,
    #[serde(borrow)]
    last: Option<&'a str>,
    #[serde(borrow, rename = "askPx")]
    ask_px: Option<&'a str>,
    #[serde(borrow, rename = "askSz")]
    ask_sz: Option<&'a str>,
    #[serde(borrow, rename = "bidPx")]
    bid_px: Option<&'a str>,
    #[serde(borrow, rename = "bidSz")]
    bid_sz: Option<&'a str>,
    #[serde(rename = "tradeId")]
    trade_id: Option<FlexInt>,
    #[serde(borrow)]
    px: Option<&'a str>,
    #[serde(borrow)]
    sz: Option<&'a str>,
    #[serde(borrow)]
    side: Option<&'a str>,
    count: Option<FlexInt>,
}

/// Parse one text frame (`pong` included).
pub fn parse(text: &str) -> Result<Vec<StreamMsg>, ParseError> {
    let mut out = Vec::with_capacity(1);
    parse_into(text, &mut out)?;
    Ok(out)
}

/// [`parse`] appending to a reused vector (hot loops).
pub fn parse_into(text: &str, out: &mut Vec<StreamMsg>) -> Result<(), ParseError> {
    if text.trim() == "pong" {
        out.push(StreamMsg::Pong);
        return Ok(());
    }
    let r: Raw = serde_json::from_str(text)?;
    if let Some(event) = r.event {
        out.push(event_msg(event, r, text)?);
        return Ok(());
    }
    let (Some(arg), Some(rows)) = (r.arg, r.data) else {
        return Err(ParseError::Unknown(wire::excerpt(text)));
    };
    let symbol = arg.inst_id.unwrap_or_default();
    for row in rows {
        let msg = match arg.channel {
            "books" | "books-l2-tbt" | "books50-l2-tbt" => {
                book(arg.channel, symbol, r.action, row)?
            }
            "tickers" => ticker(symbol, row)?,
            "bbo-tbt" => bbo(symbol, row)?,
            "trades" => trade(symbol, row)?,
            _ => return Err(ParseError::Unknown(wire::excerpt(text))),
        };
        out.push(msg);
    }
    Ok(())
}

fn event_msg(event: &str, r: Raw<'_>, text: &str) -> Result<StreamMsg, ParseError> {
    let code = r.code.map(|c| c.0.to_string());
    let message = r.msg.map(Cow::into_owned);
    Ok(match event {
        "subscribe" | "unsubscribe" => StreamMsg::Ack(Ack {
            success: true,
            channel: r.arg.as_ref().map(|a| a.channel.to_string()),
            symbol: r.arg.and_then(|a| a.inst_id).map(str::to_string),
            req_id: r.id.map(Cow::into_owned),
            message: Some(event.to_string()),
            unsubscribe: event == "unsubscribe",
        }),
        "error" => StreamMsg::Error(StreamError {
            code,
            message: message.unwrap_or_default(),
        }),
        "notice" => StreamMsg::Notice(Notice {
            // 64008 is the only notice the docs define; an unknown notice is
            // still a warning of the server's, so it is kept as one.
            kind: NoticeKind::ServiceUpgrade,
            symbol: None,
            code,
            message,
            event_time_ms: None,
        }),
        _ => return Err(ParseError::Unknown(wire::excerpt(text))),
    })
}

fn book(
    channel: &str,
    symbol: &str,
    action: Option<&str>,
    row: Row<'_>,
) -> Result<StreamMsg, ParseError> {
    let what = "books";
    let kind = match action {
        Some("snapshot") => BookKind::Snapshot,
        Some("update") => BookKind::Delta,
        Some(other) => {
            return Err(ParseError::Bad {
                field: "action",
                detail: wire::excerpt(other),
            });
        }
        None => return Err(missing(what, "action")),
    };
    let checksum = row.checksum.unwrap_or(0);
    let checksum = i32::try_from(checksum).map_err(|_| ParseError::Bad {
        field: "checksum",
        detail: checksum.to_string(),
    })?;
    Ok(StreamMsg::Book(BookMsg {
        channel: channel.into(),
        symbol: row.inst_id.unwrap_or(symbol).into(),
        kind,
        bids: row.bids.ok_or(missing(what, "bids"))?.0,
        asks: row.asks.ok_or(missing(what, "asks"))?.0,
        seq: BookSeq::Okx {
            seq_id: row.seq_id.ok_or(missing(what, "seqId"))?,
            prev_seq_id: row.prev_seq_id.ok_or(missing(what, "prevSeqId"))?,
            checksum,
        },
        event_time_ms: row.ts.map(|t| t.0),
    }))
}

fn level(p: Option<&str>, q: Option<&str>) -> Result<Option<Level>, ParseError> {
    match (wire::opt_dec("px", p)?, wire::opt_dec("sz", q)?) {
        (Some(p), Some(q)) => Ok(Some(Level::new(p, q))),
        _ => Ok(None),
    }
}

fn ticker(symbol: &str, row: Row<'_>) -> Result<StreamMsg, ParseError> {
    Ok(StreamMsg::Quote(Quote {
        channel: "tickers".into(),
        symbol: row.inst_id.unwrap_or(symbol).into(),
        bid: level(row.bid_px, row.bid_sz)?,
        ask: level(row.ask_px, row.ask_sz)?,
        last: wire::opt_dec("last", row.last)?,
        sequence: None,
        trade_id: None,
        event_time_ms: row.ts.map(|t| t.0),
    }))
}

/// `bbo-tbt`: the best level of each side as a quote.
fn bbo(symbol: &str, row: Row<'_>) -> Result<StreamMsg, ParseError> {
    Ok(StreamMsg::Quote(Quote {
        channel: "bbo-tbt".into(),
        symbol: row.inst_id.unwrap_or(symbol).into(),
        bid: row.bids.and_then(|l| l.0.first().copied()),
        ask: row.asks.and_then(|l| l.0.first().copied()),
        last: None,
        sequence: row.seq_id.and_then(|s| u64::try_from(s).ok()),
        trade_id: None,
        event_time_ms: row.ts.map(|t| t.0),
    }))
}

fn trade(symbol: &str, row: Row<'_>) -> Result<StreamMsg, ParseError> {
    let what = "trades";
    Ok(StreamMsg::Trade(Trade {
        channel: "trades".into(),
        symbol: row.inst_id.unwrap_or(symbol).into(),
        trade_id: row.trade_id.and_then(|t| u64::try_from(t.0).ok()),
        trade_ref: None,
        count: row.count.and_then(|c| u64::try_from(c.0).ok()).unwrap_or(1),
        price: wire::dec("px", row.px.ok_or(missing(what, "px"))?)?,
        qty: wire::dec("sz", row.sz.ok_or(missing(what, "sz"))?)?,
        side: match row.side {
            Some("buy") => Some(Side::Buy),
            Some("sell") => Some(Side::Sell),
            _ => None,
        },
        sequence: None,
        event_time_ms: row.ts.map(|t| t.0),
    }))
}
