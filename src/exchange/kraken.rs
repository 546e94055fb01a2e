//! Kraken spot REST (`/0/public`).
//!
//! Every body is `{"error": [...], "result": {...}}`; errors are strings like
//! `"EAPI:Rate limit exceeded"` in the array, usually with HTTP 200. Results
//! are keyed by Kraken's own pair name (`XXBTZUSD` for `XBTUSD`), tickers
//! carry no timestamp, and depth levels are `[price, volume, unix seconds]`.
//! No rate-limit header is documented.
//!
//! The error strings are classified by meaning ([`classify`]): `EService:*`
//! and the internal errors are the exchange's side, whatever the status;
//! the table with sources is in `docs/adapters.md`.

use super::parse::{self, opt_num};
use super::{
    DefaultBudget, ExchangeSpec, Interpretation, OrderBook, Payload, Preset, Problem, RawResponse,
    Ticker,
};
use crate::model::{ApiError, EndpointKind, ExchangeKind, InvalidReason};
use serde_json::Value;

/// Everything exwatch knows about Kraken that is not parsing code:
/// read through [`super::spec`].
pub const SPEC: ExchangeSpec = ExchangeSpec {
    kind: ExchangeKind::Kraken,
    base_url: Some("https://api.kraken.com"),
    default_symbol: "XBTUSDT",
    budget: DefaultBudget {
        // "1 per second (or less) would remain within the rate limits" (Kraken
        // support); the small burst covers the three presets starting together.
        capacity: 15.0,
        refill_per_sec: 1.0,
        source: "Kraken support article \"What are the API rate limits?\" (public endpoints)",
    },
    preset: Some(preset),
    interpret: |endpoint, resp, _| interpret(endpoint, resp),
};

pub fn preset(endpoint: EndpointKind, symbol: &str, depth: u32) -> Preset {
    match endpoint {
        EndpointKind::Time => Preset {
            path: "/0/public/Time".into(),
            query: Vec::new(),
            weight: 1,
        },
        EndpointKind::Ticker => Preset {
            path: "/0/public/Ticker".into(),
            query: vec![("pair".into(), symbol.into())],
            weight: 1,
        },
        EndpointKind::Book => {
            let mut query = vec![("pair".into(), symbol.into())];
            // count 1..=500; 0 asks for the default of 100.
            if depth > 0 {
                query.push(("count".into(), depth.min(500).to_string()));
            }
            Preset {
                path: "/0/public/Depth".into(),
                query,
                weight: 1,
            }
        }
    }
}

pub fn interpret(endpoint: EndpointKind, resp: &RawResponse<'_>) -> Interpretation {
    let mut signal = parse::base_signal(resp);
    let body = match parse::json_body(resp.body) {
        Ok(v) => v,
        Err(reason) => return parse::finish(Err(parse::fallback(resp, reason)), signal),
    };
    // Only E-prefixed entries are errors; W-prefixed ones are warnings.
    let errors: Vec<&str> = body
        .get("error")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .filter(|e| e.starts_with('E'))
                .collect()
        })
        .unwrap_or_default();
    if let Some(first) = errors.first() {
        let problem = classify(first, &errors, endpoint, resp);
        match &problem {
            Problem::Api(ApiError::RateLimited { retry_after_ms, .. }) => {
                signal.retry_after_ms = *retry_after_ms
            }
            Problem::Api(ApiError::IpBanned { until_ms, .. }) => signal.banned_until_ms = *until_ms,
            _ => {}
        }
        return parse::finish(Err(problem), signal);
    }
    if !parse::is_success(resp.status) {
        return parse::finish(
            Err(parse::fallback(
                resp,
                InvalidReason::Schema {
                    detail: "no error".into(),
                },
            )),
            signal,
        );
    }
    parse::finish(payload(endpoint, &body, resp), signal)
}

/// The first error string by its meaning (Kraken's REST error list and
/// support article "API error messages"; strings also in ccxt's kraken
/// error map), whatever the HTTP status.
fn classify(first: &str, all: &[&str], endpoint: EndpointKind, resp: &RawResponse<'_>) -> Problem {
    let message = all.join("; ");
    let (category, text) = first.split_once(':').unwrap_or((first, ""));
    let code = Some(first.to_string());
    let api = Problem::Api;
    match (category, text) {
        (_, "Rate limit exceeded") | ("EGeneral", "Too many requests") => {
            api(ApiError::RateLimited {
                retry_after_ms: parse::retry_after_ms(resp),
                code,
                message,
            })
        }
        ("EGeneral", "Temporary lockout") => {
            let retry = parse::retry_after_ms(resp);
            api(ApiError::IpBanned {
                until_ms: retry.map(|r| {
                    resp.received_at_ms
                        .saturating_add(i64::try_from(r).unwrap_or(i64::MAX))
                }),
                retry_after_ms: retry,
                message,
            })
        }
        ("EQuery", "Unknown asset pair" | "Invalid asset pair") if parse::has_symbol(endpoint) => {
            api(ApiError::InvalidSymbol { code, message })
        }
        // "EService:Unavailable": "The matching engine or API is offline";
        // "EService:Market in cancel_only mode" / "post_only mode": "Request
        // can't be made at this time. (See SystemStatus endpoint.)"
        ("EService", t) if t == "Unavailable" || t.starts_with("Market in ") => {
            api(ApiError::Maintenance { message })
        }
        // Any other service status error ("EService:Busy", "EService:Deadline
        // elapsed": the request timed out inside Kraken) and the internal
        // errors ("EGeneral:Internal error", "EDatabase:Internal error").
        ("EService", _) | (_, "Internal error") => api(ApiError::ExchangeFault { code, message }),
        // "EAPI:Invalid key", "EAPI:Invalid signature", "EAPI:Invalid nonce",
        // "EGeneral:Permission denied", "ESession:Invalid session".
        ("EAPI", "Invalid key" | "Invalid signature" | "Invalid nonce")
        | ("EGeneral", "Permission denied")
        | ("ESession", "Invalid session") => api(ApiError::Auth { code, message }),
        // "EGeneral:Invalid arguments" ("The request payload is malformed,
        // incorrect or ambiguous"), with or without the argument named after
        // it; "EQuery:Unknown asset pair" where no pair was asked for.
        ("EGeneral", t) if t.starts_with("Invalid arguments") => {
            api(ApiError::BadRequest { code, message })
        }
        ("EQuery", "Unknown asset pair" | "Invalid asset pair") => {
            api(ApiError::BadRequest { code, message })
        }
        _ => api(ApiError::Exchange { code, message }),
    }
}

fn payload(
    endpoint: EndpointKind,
    body: &Value,
    resp: &RawResponse<'_>,
) -> Result<Payload, Problem> {
    let result = body
        .get("result")
        .and_then(Value::as_object)
        .ok_or_else(|| parse::schema("missing result object"))?;
    // One pair was asked for and the key is Kraken's name for it, which is
    // rarely the name asked with (`XBTUSD` → `XXBTZUSD`): take the key that
    // is the pair asked for, else the first, which then fails the check.
    let pair_row = || {
        let asked = resp.requested_symbol.map(pair_key);
        let (pair, row) = result
            .iter()
            .find(|(k, _)| asked.as_deref() == Some(pair_key(k).as_str()))
            .or_else(|| result.iter().next())
            .ok_or_else(|| parse::schema("result has no pair"))?;
        parse::same_instrument(resp, pair, pair_key)?;
        Ok::<_, Problem>((pair, row))
    };
    match endpoint {
        EndpointKind::Time => {
            let t = result
                .get("unixtime")
                .ok_or_else(|| parse::schema("missing unixtime"))?;
            let ms = parse::int(t, "unixtime")?
                .checked_mul(1000)
                .ok_or_else(|| parse::schema("unixtime out of range"))?;
            Ok(Payload::Time { server_ms: ms })
        }
        EndpointKind::Ticker => {
            let (pair, row) = pair_row()?;
            Ok(Payload::Ticker(Ticker {
                symbol: pair.clone(),
                last: first_num(row, "c")?,
                bid: first_num(row, "b")?,
                ask: first_num(row, "a")?,
                exchange_ts_ms: None,
            }))
        }
        EndpointKind::Book => {
            let (pair, row) = pair_row()?;
            let bids = parse::levels(row.get("bids"), "bids")?;
            let asks = parse::levels(row.get("asks"), "asks")?;
            // Each level says when it last changed; the newest change is the
            // best freshness evidence the book has.
            let mut newest: Option<i64> = None;
            for side in ["bids", "asks"] {
                if let Some(levels) = row.get(side).and_then(Value::as_array) {
                    for (i, l) in levels.iter().enumerate() {
                        if let Some(t) = l.get(2) {
                            let secs =
                                parse::num_lazy(t, || format!("{side}[{i}].timestamp"))?.value;
                            let ms = parse::seconds_to_ms(secs);
                            newest = newest.max(ms);
                        }
                    }
                }
            }
            Ok(Payload::Book(OrderBook {
                symbol: pair.clone(),
                bids,
                asks,
                exchange_ts_ms: newest,
                update_id: None,
            }))
        }
    }
}

/// Kraken's legacy four-letter asset codes: an `X` before crypto and a `Z`
/// before fiat. Source: Kraken REST docs (docs.kraken.com), "Get Tradable
/// Asset Pairs" (`XXBTZUSD`: base `XXBT`, quote `ZUSD`, altname `XBTUSD`,
/// wsname `XBT/USD`; `XETHXXBT`: altname `ETHXBT`) and "Get Asset Info"
/// (`XXBT` altname `XBT`, `XXDG` altname `XDG`). Result keys of `Ticker` and
/// `Depth` use them for the pairs listed before the naming changed
/// ("Get Ticker Information" answers `pair=XBTUSD` under `XXBTZUSD`).
const LEGACY_ASSETS: [&str; 21] = [
    "XXBT", "XETH", "XLTC", "XXRP", "XXLM", "XXMR", "XZEC", "XETC", "XREP", "XMLN", "XXDG", "XDAO",
    "XNMC", "XXVN", "XICN", "ZUSD", "ZEUR", "ZGBP", "ZJPY", "ZCAD", "ZAUD",
];

/// One spelling for every name Kraken gives a pair, so the name asked with
/// and the result key compare equal: `XBTUSD`, `xbtusd`, `XBT/USD`,
/// `BTC/USD`, `BTCUSD` and `XXBTZUSD` are all `BTCUSD`. Case and separators
/// go, an eight-letter key loses the `X`/`Z` of its legacy asset codes
/// (`LEGACY_ASSETS`), and Kraken's `XBT` (bitcoin) and `XDG` (dogecoin)
/// become `BTC` and `DOGE`, the names the newer API also takes.
pub fn pair_key(name: &str) -> String {
    let mut p = parse::plain_instrument(name);
    if p.len() == 8 && p.is_ascii() {
        let (base, quote) = p.split_at(4);
        let strip = |code: &str| -> String {
            if LEGACY_ASSETS.contains(&code) {
                code[1..].to_string()
            } else {
                code.to_string()
            }
        };
        if LEGACY_ASSETS.contains(&base) || LEGACY_ASSETS.contains(&quote) {
            p = strip(base) + &strip(quote);
        }
    }
    for (kraken, common) in [("XBT", "BTC"), ("XDG", "DOGE")] {
        if let Some(rest) = p.strip_prefix(kraken) {
            p = format!("{common}{rest}");
        }
        if let Some(rest) = p.strip_suffix(kraken) {
            p = format!("{rest}{common}");
        }
    }
    p
}

/// The first element of a `[price, whole lot volume, lot volume]` array.
fn first_num(row: &Value, key: &str) -> Result<Option<f64>, Problem> {
    match row.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(a)) => Ok(opt_num(a.first(), &format!("{key}[0]"))?.map(|n| n.value)),
        Some(_) => Err(parse::schema(format!("{key} is not an array"))),
    }
}
