//! The five exchanges' stream frames as the simulator sends them, and the
//! client requests it understands. Shapes follow the documented frames in
//! `tests/fixtures/streams/<exchange>/` (sources in their SOURCES.md), so
//! the parsers of `crate::stream` read them as they read the exchanges'.

use serde_json::{Value, json};

use super::book::{Change, SimBook, price, qty};
use crate::model::ExchangeKind;
use crate::stream::Side;

/// What a client asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SimFeed {
    /// An order book; the depth in the topic where the exchange names it
    /// (Bybit `orderbook.{depth}`; 0 elsewhere).
    Book(u16),
    Ticker,
    Trades,
    Heartbeat,
    Instrument,
}

/// One parsed client request.
#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    /// Subscriptions (feed, symbol as data messages spell it) and the
    /// request id to echo.
    Subscribe {
        subs: Vec<(SimFeed, String)>,
        id: Value,
    },
    /// The same shape with the unsubscribe verb.
    Unsubscribe {
        subs: Vec<(SimFeed, String)>,
        id: Value,
    },
    /// An application ping (`{"op":"ping"}`, `ping`, `{"method":"ping"}`).
    Ping { id: Value },
    /// Anything else (ignored, as exchanges ignore or error on it).
    Other,
}

/// Symbols starting with this are refused, in the exchange's error shape.
pub const REFUSED_PREFIX: &str = "BAD";

/// Read a client frame of `kind`'s protocol.
pub fn parse_request(kind: ExchangeKind, text: &str) -> Request {
    if kind == ExchangeKind::Okx && text.trim() == "ping" {
        return Request::Ping { id: Value::Null };
    }
    let Ok(v) = serde_json::from_str::<Value>(text) else {
        return Request::Other;
    };
    let id = v
        .get("id")
        .or_else(|| v.get("req_id"))
        .cloned()
        .unwrap_or(Value::Null);
    let op = v
        .get("op")
        .or_else(|| v.get("method"))
        .or_else(|| v.get("type"))
        .and_then(Value::as_str)
        .unwrap_or("");
    // Both verbs share each exchange's shape, spelled as the exchange
    // spells them (Binance in capitals, the others in lowercase): another
    // spelling is ignored, as exchanges refuse it.
    let (unsubscribe, op) = match (kind, op) {
        (ExchangeKind::Binance, "SUBSCRIBE") => (false, "subscribe"),
        (ExchangeKind::Binance, "UNSUBSCRIBE") => (true, "subscribe"),
        (ExchangeKind::Binance, _) => (false, ""),
        (_, "unsubscribe") => (true, "subscribe"),
        (_, op) => (false, op),
    };
    let request = parse_shape(kind, op, &v, id);
    match request {
        Request::Subscribe { subs, id } if unsubscribe => Request::Unsubscribe { subs, id },
        r => r,
    }
}

fn parse_shape(kind: ExchangeKind, op: &str, v: &Value, id: Value) -> Request {
    let strs = |x: Option<&Value>| -> Vec<String> {
        x.and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    };
    match (kind, op) {
        (_, "ping") => Request::Ping { id },
        (ExchangeKind::Binance, "subscribe") => {
            let subs = strs(v.get("params"))
                .into_iter()
                .filter_map(|p| {
                    let (sym, rest) = p.split_once('@')?;
                    let feed = match rest.split('@').next()? {
                        "depth" => SimFeed::Book(0),
                        "trade" => SimFeed::Trades,
                        _ => SimFeed::Ticker,
                    };
                    Some((feed, sym.to_ascii_uppercase()))
                })
                .collect();
            Request::Subscribe { subs, id }
        }
        (ExchangeKind::Bybit, "subscribe") => {
            let subs = strs(v.get("args"))
                .into_iter()
                .filter_map(|t| {
                    let (ch, sym) = t.rsplit_once('.')?;
                    let feed = if let Some(d) = ch.strip_prefix("orderbook.") {
                        SimFeed::Book(d.parse().unwrap_or(50))
                    } else if ch == "publicTrade" {
                        SimFeed::Trades
                    } else {
                        SimFeed::Ticker
                    };
                    Some((feed, sym.to_string()))
                })
                .collect();
            Request::Subscribe { subs, id }
        }
        (ExchangeKind::Okx, "subscribe") => {
            let subs = v
                .get("args")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|arg| {
                            let feed = match arg.get("channel")?.as_str()? {
                                "books" => SimFeed::Book(0),
                                "trades" => SimFeed::Trades,
                                _ => SimFeed::Ticker,
                            };
                            Some((feed, arg.get("instId")?.as_str()?.to_string()))
                        })
                        .collect()
                })
                .unwrap_or_default();
            Request::Subscribe { subs, id }
        }
        (ExchangeKind::Coinbase, "subscribe") => {
            let mut subs = Vec::new();
            for ch in v
                .get("channels")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let feed = match ch.get("name").and_then(Value::as_str) {
                    Some("level2_batch") => SimFeed::Book(0),
                    Some("matches") => SimFeed::Trades,
                    Some("heartbeat") => SimFeed::Heartbeat,
                    Some("ticker") => SimFeed::Ticker,
                    _ => continue,
                };
                for p in strs(ch.get("product_ids")) {
                    subs.push((feed, p));
                }
            }
            Request::Subscribe { subs, id }
        }
        (ExchangeKind::Kraken, "subscribe") => {
            let params = v.get("params");
            let feed = match params
                .and_then(|p| p.get("channel"))
                .and_then(Value::as_str)
            {
                Some("book") => SimFeed::Book(0),
                Some("trade") => SimFeed::Trades,
                Some("instrument") => SimFeed::Instrument,
                _ => SimFeed::Ticker,
            };
            let mut subs: Vec<(SimFeed, String)> = strs(params.and_then(|p| p.get("symbol")))
                .into_iter()
                .map(|s| (feed, s))
                .collect();
            if feed == SimFeed::Instrument {
                subs.push((feed, String::new()));
            }
            Request::Subscribe { subs, id }
        }
        _ => Request::Other,
    }
}

fn channel(kind: ExchangeKind, feed: SimFeed, symbol: &str) -> String {
    match (kind, feed) {
        (ExchangeKind::Binance, SimFeed::Book(_)) => {
            format!("{}@depth@100ms", symbol.to_ascii_lowercase())
        }
        (ExchangeKind::Binance, SimFeed::Trades) => {
            format!("{}@trade", symbol.to_ascii_lowercase())
        }
        (ExchangeKind::Binance, _) => format!("{}@bookTicker", symbol.to_ascii_lowercase()),
        (ExchangeKind::Bybit, SimFeed::Book(d)) => format!("orderbook.{d}.{symbol}"),
        (ExchangeKind::Bybit, SimFeed::Trades) => format!("publicTrade.{symbol}"),
        (ExchangeKind::Bybit, _) => format!("tickers.{symbol}"),
        (ExchangeKind::Okx | ExchangeKind::Generic, SimFeed::Book(_)) => "books".into(),
        (ExchangeKind::Okx | ExchangeKind::Generic, SimFeed::Trades) => "trades".into(),
        (ExchangeKind::Okx | ExchangeKind::Generic, _) => "tickers".into(),
        (ExchangeKind::Coinbase, SimFeed::Book(_)) => "level2_batch".into(),
        (ExchangeKind::Coinbase, SimFeed::Trades) => "matches".into(),
        (ExchangeKind::Coinbase, SimFeed::Heartbeat) => "heartbeat".into(),
        (ExchangeKind::Coinbase, _) => "ticker".into(),
        (ExchangeKind::Kraken, SimFeed::Book(_)) => "book".into(),
        (ExchangeKind::Kraken, SimFeed::Trades) => "trade".into(),
        (ExchangeKind::Kraken, SimFeed::Instrument) => "instrument".into(),
        (ExchangeKind::Kraken, _) => "ticker".into(),
    }
}

/// Answers to a subscribe request: acks for the accepted subscriptions and
/// the exchange's error for refused ones (symbols starting with
/// [`REFUSED_PREFIX`]).
pub fn subscribe_answers(
    kind: ExchangeKind,
    subs: &[(SimFeed, String)],
    id: &Value,
) -> Vec<String> {
    let refused: Vec<&(SimFeed, String)> = subs
        .iter()
        .filter(|(_, s)| s.starts_with(REFUSED_PREFIX))
        .collect();
    let ok: Vec<&(SimFeed, String)> = subs
        .iter()
        .filter(|(_, s)| !s.starts_with(REFUSED_PREFIX))
        .collect();
    let mut out = Vec::new();
    match kind {
        ExchangeKind::Binance => {
            out.push(match refused.first() {
                Some((_, s)) => json!({"code": 2, "msg": format!("Invalid symbol {s}"), "id": id}),
                None => json!({"result": null, "id": id}),
            });
        }
        ExchangeKind::Bybit => {
            out.push(match refused.first() {
                Some((f, s)) => json!({"success": false, "ret_msg": format!("error:handler not found,topic:{}", channel(kind, *f, s)), "conn_id": "sim", "req_id": id, "op": "subscribe"}),
                None => json!({"success": true, "ret_msg": "subscribe", "conn_id": "sim", "req_id": id, "op": "subscribe"}),
            });
        }
        ExchangeKind::Okx => {
            for (f, s) in &ok {
                out.push(json!({"id": id, "event": "subscribe", "arg": {"channel": channel(kind, *f, s), "instId": s}, "connId": "sim"}));
            }
            for (f, s) in &refused {
                out.push(json!({"id": id, "event": "error", "code": "60018", "msg": format!("Wrong URL or channel:{},instId:{s} doesn't exist.", channel(kind, *f, s)), "connId": "sim"}));
            }
        }
        ExchangeKind::Coinbase => {
            if let Some((_, s)) = refused.first() {
                out.push(json!({"type": "error", "message": "Failed to subscribe", "reason": format!("{s} is not a valid product")}));
            }
            out.push(coinbase_subscriptions(ok.into_iter()));
        }
        ExchangeKind::Kraken => {
            for (f, s) in &ok {
                let mut result = json!({"channel": channel(kind, *f, s), "snapshot": true});
                if !s.is_empty() {
                    result["symbol"] = json!(s);
                }
                out.push(json!({"method": "subscribe", "result": result, "success": true, "req_id": id, "time_in": "2026-11-30T00:00:00.000000Z", "time_out": "2026-11-30T00:00:00.000100Z"}));
            }
            for (_, s) in &refused {
                out.push(json!({"error": format!("Currency pair not supported {s}"), "method": "subscribe", "success": false, "symbol": s, "req_id": id}));
            }
        }
        ExchangeKind::Generic => {}
    }
    out.into_iter().map(|v| v.to_string()).collect()
}

/// Coinbase's `subscriptions` message: the channels subscribed now, each
/// with its products, as it answers both subscribe and unsubscribe.
fn coinbase_subscriptions<'a>(subs: impl Iterator<Item = &'a (SimFeed, String)>) -> Value {
    let mut channels: Vec<(String, Vec<String>)> = Vec::new();
    for (f, s) in subs {
        let name = channel(ExchangeKind::Coinbase, *f, s);
        match channels.iter_mut().find(|(n, _)| *n == name) {
            Some((_, p)) => p.push(s.clone()),
            None => channels.push((name, vec![s.clone()])),
        }
    }
    let channels: Vec<Value> = channels
        .into_iter()
        .map(|(n, p)| json!({"name": n, "product_ids": p}))
        .collect();
    json!({"type": "subscriptions", "channels": channels})
}

/// Answers to an unsubscribe request, in each exchange's shape. Coinbase
/// answers with the subscriptions left (`remaining`).
pub fn unsubscribe_answers(
    kind: ExchangeKind,
    subs: &[(SimFeed, String)],
    id: &Value,
    remaining: &[(SimFeed, String)],
) -> Vec<String> {
    let out: Vec<Value> = match kind {
        ExchangeKind::Binance => vec![json!({"result": null, "id": id})],
        ExchangeKind::Bybit => vec![
            json!({"success": true, "ret_msg": "", "conn_id": "sim", "req_id": id, "op": "unsubscribe"}),
        ],
        ExchangeKind::Okx => subs
            .iter()
            .map(|(f, s)| json!({"id": id, "event": "unsubscribe", "arg": {"channel": channel(kind, *f, s), "instId": s}, "connId": "sim"}))
            .collect(),
        ExchangeKind::Coinbase => vec![coinbase_subscriptions(remaining.iter())],
        ExchangeKind::Kraken => subs
            .iter()
            .map(|(f, s)| json!({"method": "unsubscribe", "result": {"channel": channel(kind, *f, s), "symbol": s}, "success": true, "req_id": id, "time_in": "2026-11-30T00:00:00.000000Z", "time_out": "2026-11-30T00:00:00.000100Z"}))
            .collect(),
        ExchangeKind::Generic => Vec::new(),
    };
    out.into_iter().map(|v| v.to_string()).collect()
}

/// The answer to an application ping.
pub fn pong(kind: ExchangeKind, id: &Value) -> Option<String> {
    match kind {
        ExchangeKind::Okx => Some("pong".into()),
        ExchangeKind::Bybit => Some(json!({"success": true, "ret_msg": "pong", "conn_id": "sim", "req_id": id, "op": "ping"}).to_string()),
        ExchangeKind::Kraken => Some(json!({"method": "pong", "req_id": id, "time_in": "2026-11-30T00:00:00.000000Z", "time_out": "2026-11-30T00:00:00.000100Z"}).to_string()),
        _ => None,
    }
}

/// RFC 3339 with microseconds, UTC (Coinbase, Kraken).
pub fn rfc3339(ms: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

fn str_levels(levels: &[(u64, u64)]) -> Value {
    Value::Array(
        levels
            .iter()
            .map(|(p, q)| json!([price(*p).to_string(), qty(*q).to_string()]))
            .collect(),
    )
}

fn kraken_levels(levels: &[(u64, u64)]) -> String {
    let parts: Vec<String> = levels
        .iter()
        .map(|(p, q)| format!(r#"{{"price":{},"qty":{}}}"#, price(*p), qty(*q)))
        .collect();
    format!("[{}]", parts.join(","))
}

/// (price ticks, quantity units) levels.
type Ticks = Vec<(u64, u64)>;

fn split(changes: &[Change]) -> (Ticks, Ticks) {
    let pick = |side: Side| {
        changes
            .iter()
            .filter(|c| c.0 == side)
            .map(|c| (c.1, c.2))
            .collect()
    };
    (pick(Side::Buy), pick(Side::Sell))
}

/// Integrity ids of one book message.
#[derive(Debug, Clone, Copy, Default)]
pub struct Ids {
    /// Binance `U`, OKX `prevSeqId`.
    pub first: i64,
    /// Binance `u`, Bybit `u`, OKX `seqId`.
    pub last: i64,
    /// Kraken CRC32 (unsigned) or OKX checksum (signed, 0 = none).
    pub checksum: i64,
}

/// A book snapshot (Binance sends none on the stream: `None`).
pub fn book_snapshot(
    kind: ExchangeKind,
    depth: u16,
    symbol: &str,
    book: &SimBook,
    ids: Ids,
    now: i64,
) -> Option<String> {
    let (bids, asks) = (book.bids(), book.asks());
    Some(match kind {
        ExchangeKind::Binance | ExchangeKind::Generic => return None,
        ExchangeKind::Bybit => json!({"topic": format!("orderbook.{depth}.{symbol}"), "type": "snapshot", "ts": now, "data": {"s": symbol, "b": str_levels(&bids), "a": str_levels(&asks), "u": ids.last, "seq": ids.last}, "cts": now}).to_string(),
        ExchangeKind::Okx => json!({"arg": {"channel": "books", "instId": symbol}, "action": "snapshot", "data": [{"asks": str_levels(&asks), "bids": str_levels(&bids), "ts": now.to_string(), "checksum": ids.checksum, "prevSeqId": -1, "seqId": ids.last}]}).to_string(),
        ExchangeKind::Coinbase => json!({"type": "snapshot", "product_id": symbol, "bids": str_levels(&bids), "asks": str_levels(&asks), "time": rfc3339(now)}).to_string(),
        ExchangeKind::Kraken => format!(
            r#"{{"channel":"book","type":"snapshot","data":[{{"symbol":"{symbol}","bids":{},"asks":{},"checksum":{},"timestamp":"{}"}}]}}"#,
            kraken_levels(&bids),
            kraken_levels(&asks),
            ids.checksum,
            rfc3339(now)
        ),
    })
}

/// A book update with absolute quantities (0 removes).
pub fn book_delta(
    kind: ExchangeKind,
    depth: u16,
    symbol: &str,
    changes: &[Change],
    ids: Ids,
    now: i64,
) -> String {
    let (bids, asks) = split(changes);
    match kind {
        ExchangeKind::Binance | ExchangeKind::Generic => json!({"e": "depthUpdate", "E": now, "s": symbol, "U": ids.first, "u": ids.last, "b": str_levels(&bids), "a": str_levels(&asks)}).to_string(),
        ExchangeKind::Bybit => json!({"topic": format!("orderbook.{depth}.{symbol}"), "type": "delta", "ts": now, "data": {"s": symbol, "b": str_levels(&bids), "a": str_levels(&asks), "u": ids.last, "seq": ids.last}, "cts": now}).to_string(),
        ExchangeKind::Okx => json!({"arg": {"channel": "books", "instId": symbol}, "action": "update", "data": [{"asks": str_levels(&asks), "bids": str_levels(&bids), "ts": now.to_string(), "checksum": ids.checksum, "prevSeqId": ids.first, "seqId": ids.last}]}).to_string(),
        ExchangeKind::Coinbase => {
            let mut ch: Vec<Value> = Vec::new();
            for (side, p, q) in changes {
                let s = if *side == Side::Buy { "buy" } else { "sell" };
                ch.push(json!([s, price(*p).to_string(), qty(*q).to_string()]));
            }
            json!({"type": "l2update", "product_id": symbol, "changes": ch, "time": rfc3339(now)}).to_string()
        }
        ExchangeKind::Kraken => format!(
            r#"{{"channel":"book","type":"update","data":[{{"symbol":"{symbol}","bids":{},"asks":{},"checksum":{},"timestamp":"{}"}}]}}"#,
            kraken_levels(&bids),
            kraken_levels(&asks),
            ids.checksum,
            rfc3339(now)
        ),
    }
}

/// A ticker / best bid-ask of the book.
pub fn ticker(kind: ExchangeKind, symbol: &str, book: &SimBook, seq: u64, now: i64) -> String {
    let (b, a) = book.best();
    let (bp, ap) = (price(b).to_string(), price(a).to_string());
    let q = qty(50_000_000).to_string();
    match kind {
        ExchangeKind::Binance | ExchangeKind::Generic => json!({"u": seq, "s": symbol, "b": bp, "B": q, "a": ap, "A": q}).to_string(),
        ExchangeKind::Bybit => json!({"topic": format!("tickers.{symbol}"), "type": "snapshot", "ts": now, "cs": seq, "data": {"symbol": symbol, "lastPrice": bp}}).to_string(),
        ExchangeKind::Okx => json!({"arg": {"channel": "tickers", "instId": symbol}, "data": [{"instType": "SPOT", "instId": symbol, "last": bp, "askPx": ap, "askSz": q, "bidPx": bp, "bidSz": q, "ts": now.to_string()}]}).to_string(),
        ExchangeKind::Coinbase => json!({"type": "ticker", "sequence": seq, "product_id": symbol, "price": bp, "best_bid": bp, "best_bid_size": q, "best_ask": ap, "best_ask_size": q, "side": "buy", "time": rfc3339(now), "trade_id": seq, "last_size": q}).to_string(),
        ExchangeKind::Kraken => format!(
            r#"{{"channel":"ticker","type":"update","data":[{{"symbol":"{symbol}","bid":{bp},"bid_qty":{q},"ask":{ap},"ask_qty":{q},"last":{bp},"volume":1.0,"vwap":{bp},"low":{bp},"high":{ap},"change":0.0,"change_pct":0.0}}]}}"#
        ),
    }
}

/// One public trade at the best bid.
pub fn trade(kind: ExchangeKind, symbol: &str, book: &SimBook, id: u64, now: i64) -> String {
    let p = price(book.best().0).to_string();
    let q = qty(1_000_000).to_string();
    match kind {
        ExchangeKind::Binance | ExchangeKind::Generic => json!({"e": "trade", "E": now, "s": symbol, "t": id, "p": p, "q": q, "T": now, "m": true, "M": true}).to_string(),
        ExchangeKind::Bybit => json!({"topic": format!("publicTrade.{symbol}"), "type": "snapshot", "ts": now, "data": [{"T": now, "s": symbol, "S": "Sell", "v": q, "p": p, "L": "ZeroMinusTick", "i": format!("sim-{id}"), "BT": false, "seq": id}]}).to_string(),
        ExchangeKind::Okx => json!({"arg": {"channel": "trades", "instId": symbol}, "data": [{"instId": symbol, "tradeId": id.to_string(), "px": p, "sz": q, "side": "sell", "ts": now.to_string(), "count": "1"}]}).to_string(),
        ExchangeKind::Coinbase => json!({"type": "match", "trade_id": id, "sequence": id, "maker_order_id": "m", "taker_order_id": "t", "time": rfc3339(now), "product_id": symbol, "size": q, "price": p, "side": "buy"}).to_string(),
        ExchangeKind::Kraken => format!(
            r#"{{"channel":"trade","type":"update","data":[{{"symbol":"{symbol}","side":"sell","price":{p},"qty":{q},"ord_type":"market","trade_id":{id},"timestamp":"{}"}}]}}"#,
            rfc3339(now)
        ),
    }
}

/// The exchange's heartbeat: Coinbase per product, Kraken per connection
/// (`symbol` ignored); none for the others.
pub fn heartbeat(kind: ExchangeKind, symbol: &str, seq: u64, now: i64) -> Option<String> {
    match kind {
        ExchangeKind::Coinbase => Some(json!({"type": "heartbeat", "sequence": seq, "last_trade_id": seq, "product_id": symbol, "time": rfc3339(now)}).to_string()),
        ExchangeKind::Kraken => Some(r#"{"channel":"heartbeat"}"#.to_string()),
        _ => None,
    }
}

/// Kraken's `instrument` snapshot for `symbols` at the simulator's precisions.
pub fn instrument(symbols: &[String]) -> String {
    let pairs: Vec<Value> = symbols
        .iter()
        .map(|s| json!({"symbol": s, "base": "BTC", "quote": "USD", "status": "online", "price_precision": super::book::PRICE_SCALE, "qty_precision": super::book::QTY_SCALE}))
        .collect();
    json!({"channel": "instrument", "type": "snapshot", "data": {"assets": [], "pairs": pairs}})
        .to_string()
}

/// The exchange's planned-disconnect announcement (Bybit announces none on
/// its public stream).
pub fn planned_notice(kind: ExchangeKind, symbols: &[String], now: i64) -> Option<String> {
    match kind {
        ExchangeKind::Binance => Some(json!({"e": "serverShutdown", "E": now}).to_string()),
        ExchangeKind::Okx => Some(json!({"event": "notice", "code": "64008", "msg": "The connection will soon be closed for a service upgrade. Please reconnect.", "connId": "sim"}).to_string()),
        ExchangeKind::Kraken => Some(r#"{"channel":"status","type":"update","data":[{"system":"maintenance","api_version":"v2","connection_id":1,"version":"2.0.10"}]}"#.to_string()),
        ExchangeKind::Coinbase => {
            let products: Vec<Value> = symbols
                .iter()
                .map(|s| json!({"id": s, "status": "offline", "status_message": "scheduled maintenance", "cancel_only": false, "post_only": false, "limit_only": false, "trading_disabled": true}))
                .collect();
            Some(json!({"type": "status", "products": products, "currencies": []}).to_string())
        }
        ExchangeKind::Bybit | ExchangeKind::Generic => None,
    }
}
