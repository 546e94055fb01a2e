//! The generic kind: any exchange described in config by JSON pointers and
//! health conditions.
//!
//! Pointers (RFC 6901, e.g. `/data/last`) say where the price, best bid and
//! ask, timestamp, book sides, update id and error code are. Conditions, in
//! the style of Gatus, say what a healthy answer looks like:
//!
//! ```text
//! [STATUS] == 200
//! [RESPONSE_TIME] < 500                  (milliseconds)
//! [BODY].status == ok                    (dot path, `[n]` indexes arrays)
//! [BODY]/data/0/state != halted          (JSON pointer form)
//! [BODY].data.symbol == pat(BTC-*)       (glob: `*` any run, `?` one char)
//! [BODY].message =~ ^(ok|fine)$          (regex)
//! len([BODY].data.bids) >= 5             (array, object or string length)
//! ```
//!
//! Operators: `==`, `!=`, `<`, `<=`, `>`, `>=`, `=~`, separated by spaces.
//! `<`-style operators compare numbers; `==` compares numbers when both
//! sides are numbers and text otherwise.

use super::parse;
use super::{
    DefaultBudget, ExchangeSpec, Interpretation, Level, OrderBook, Payload, Problem, RawResponse,
    Ticker,
};
use crate::model::{ApiError, EndpointKind, ExchangeKind, InvalidReason};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Everything exwatch knows about the generic kind that is not parsing code:
/// read through [`super::spec`].
pub const SPEC: ExchangeSpec = ExchangeSpec {
    kind: ExchangeKind::Generic,
    base_url: None,
    default_symbol: "BTC-USDT",
    budget: DefaultBudget {
        // Unknown exchanges get a cautious budget: 1 request/s, bursts of 10.
        capacity: 10.0,
        refill_per_sec: 1.0,
        source: "none: a cautious default for an exchange exwatch has no docs for",
    },
    preset: None,
    interpret,
};

/// How to read an unknown exchange's JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenericSpec {
    /// JSON pointer (RFC 6901) to the last price, e.g. "/data/last".
    pub price: Option<String>,
    pub bid: Option<String>,
    pub ask: Option<String>,
    /// Exchange timestamp: unix seconds, ms, µs or ns (told apart by size), as
    /// a number or a string, or RFC 3339 text. For `time` endpoints it is the
    /// server time.
    pub timestamp: Option<String>,
    /// JSON pointer to an error-code field; a value other than `ok_codes` is an exchange error.
    pub error_code: Option<String>,
    #[serde(default)]
    pub ok_codes: Vec<String>,
    /// Gatus-style conditions that must all hold, e.g. "[STATUS] == 200".
    #[serde(default)]
    pub conditions: Vec<String>,
    /// JSON pointer to the error message shown with an error code.
    #[serde(default)]
    pub message: Option<String>,
    /// Error codes that mean "rate limited" rather than a generic exchange error.
    #[serde(default)]
    pub rate_limit_codes: Vec<String>,
    /// Error codes that mean "unknown symbol".
    #[serde(default)]
    pub invalid_symbol_codes: Vec<String>,
    /// Error codes that mean the exchange failed (internal error, busy,
    /// timeout inside the exchange): server errors the breaker counts,
    /// whatever the HTTP status. Any other code is unclassified.
    #[serde(default)]
    pub server_error_codes: Vec<String>,
    /// JSON pointer to the instrument the body names, e.g. "/data/symbol".
    /// Ticker and book answers naming another instrument than the
    /// endpoint's `symbol` (case and `-`, `/`, `_` separators aside) are
    /// `wrong_instrument`.
    #[serde(default)]
    pub symbol: Option<String>,
    /// JSON pointers to the book sides of `book` endpoints: arrays of
    /// `[price, size, ...]` arrays or of `{"price": .., "size": ..}` objects.
    #[serde(default)]
    pub bids: Option<String>,
    #[serde(default)]
    pub asks: Option<String>,
    /// JSON pointer to a sequence or update id.
    #[serde(default)]
    pub update_id: Option<String>,
}

impl GenericSpec {
    pub fn validate(&self, at: &str, p: &mut crate::problems::Problems) {
        for (field, v) in [
            ("price", &self.price),
            ("bid", &self.bid),
            ("ask", &self.ask),
            ("timestamp", &self.timestamp),
            ("error_code", &self.error_code),
            ("message", &self.message),
            ("symbol", &self.symbol),
            ("bids", &self.bids),
            ("asks", &self.asks),
            ("update_id", &self.update_id),
        ] {
            if let Some(v) = v
                && !(v.is_empty() || v.starts_with('/'))
            {
                p.push(
                    format!("{at}.{field}"),
                    "must be a JSON pointer starting with '/', e.g. \"/data/price\"",
                );
            }
        }
        if self.bids.is_some() != self.asks.is_some() {
            p.push(
                format!("{at}.bids"),
                "set both `bids` and `asks` pointers, or neither",
            );
        }
        for (i, c) in self.conditions.iter().enumerate() {
            if let Err(e) = Condition::parse(c) {
                p.push(format!("{at}.conditions[{i}]"), e);
            }
        }
    }
}

/// Where a condition's left side comes from.
#[derive(Debug, Clone, PartialEq)]
enum Source {
    Status,
    ResponseTime,
    /// The body: `None` is the whole body as text, else a JSON pointer.
    Body(Option<String>),
    /// `len(...)` of a body value.
    Len(Option<String>),
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Matches,
}

#[derive(Debug, Clone)]
enum Expected {
    Text(String),
    Glob(String),
    Regex(regex::Regex),
}

/// One parsed health condition.
#[derive(Debug, Clone)]
pub struct Condition {
    text: String,
    source: Source,
    op: Op,
    expected: Expected,
}

impl Condition {
    /// Parse `<left> <op> <right>`; the error says what would be valid.
    pub fn parse(text: &str) -> Result<Condition, String> {
        let t = text.trim();
        let (left, rest) = t.split_once(char::is_whitespace).ok_or_else(|| {
            format!("{t:?} is not a condition: write `<left> <operator> <value>` with spaces, e.g. \"[STATUS] == 200\"")
        })?;
        let rest = rest.trim_start();
        let (op_text, right) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
        let op = match op_text {
            "==" => Op::Eq,
            "!=" => Op::Ne,
            "<" => Op::Lt,
            "<=" => Op::Le,
            ">" => Op::Gt,
            ">=" => Op::Ge,
            "=~" => Op::Matches,
            other => {
                return Err(format!(
                    "unknown operator {other:?} in {t:?}: use ==, !=, <, <=, >, >= or =~ (with spaces)"
                ));
            }
        };
        let source = parse_source(left)?;
        let right = unquote(right.trim());
        if right.is_empty() && !matches!(op, Op::Eq | Op::Ne) {
            return Err(format!("{t:?} has no value after {op_text}"));
        }
        let expected = match op {
            Op::Matches => Expected::Regex(
                regex::Regex::new(right).map_err(|e| format!("invalid regex in {t:?}: {e}"))?,
            ),
            Op::Eq | Op::Ne => match right.strip_prefix("pat(").and_then(|r| r.strip_suffix(')')) {
                Some(glob) => Expected::Glob(glob.to_string()),
                None => Expected::Text(right.to_string()),
            },
            Op::Lt | Op::Le | Op::Gt | Op::Ge => {
                if right.parse::<f64>().map(|v| v.is_finite()) != Ok(true) {
                    return Err(format!(
                        "{t:?} compares with {op_text}, which needs a number, not {right:?}"
                    ));
                }
                Expected::Text(right.to_string())
            }
        };
        Ok(Condition {
            text: t.to_string(),
            source,
            op,
            expected,
        })
    }

    /// `Ok` when the condition holds, else why not (for the `unhealthy` reason).
    pub fn check(&self, resp: &RawResponse<'_>, body: Option<&Value>) -> Result<(), String> {
        let actual: String = match &self.source {
            Source::Status => resp.status.to_string(),
            Source::ResponseTime => resp.elapsed_ms.to_string(),
            Source::Body(None) => String::from_utf8_lossy(resp.body).into_owned(),
            Source::Body(Some(ptr)) => match body.and_then(|b| b.pointer(ptr)) {
                Some(Value::String(s)) => s.clone(),
                Some(v) => v.to_string(),
                None => {
                    return Err(format!(
                        "`{}` failed: the body has no value at {ptr}",
                        self.text
                    ));
                }
            },
            Source::Len(ptr) => {
                let v = match ptr {
                    None => body,
                    Some(p) => body.and_then(|b| b.pointer(p)),
                };
                match v {
                    Some(Value::Array(a)) => a.len().to_string(),
                    Some(Value::Object(o)) => o.len().to_string(),
                    Some(Value::String(s)) => s.chars().count().to_string(),
                    _ => {
                        return Err(format!(
                            "`{}` failed: nothing with a length there",
                            self.text
                        ));
                    }
                }
            }
        };
        let holds = match (&self.expected, self.op) {
            (Expected::Regex(re), _) => re.is_match(&actual),
            (Expected::Glob(g), Op::Ne) => !glob_match(g, &actual),
            (Expected::Glob(g), _) => glob_match(g, &actual),
            (Expected::Text(want), op) => compare(&actual, op, want),
        };
        if holds {
            Ok(())
        } else {
            let shown: String = actual.chars().take(60).collect();
            Err(format!("`{}` failed: got {shown:?}", self.text))
        }
    }
}

fn compare(actual: &str, op: Op, want: &str) -> bool {
    let nums = (actual.trim().parse::<f64>(), want.parse::<f64>());
    match (op, nums) {
        (Op::Eq, (Ok(a), Ok(b))) => a == b,
        (Op::Ne, (Ok(a), Ok(b))) => a != b,
        (Op::Eq, _) => actual == want,
        (Op::Ne, _) => actual != want,
        (Op::Lt, (Ok(a), Ok(b))) => a < b,
        (Op::Le, (Ok(a), Ok(b))) => a <= b,
        (Op::Gt, (Ok(a), Ok(b))) => a > b,
        (Op::Ge, (Ok(a), Ok(b))) => a >= b,
        _ => false,
    }
}

fn unquote(s: &str) -> &str {
    for q in ['"', '\''] {
        if let Some(inner) = s.strip_prefix(q).and_then(|r| r.strip_suffix(q)) {
            return inner;
        }
    }
    s
}

fn parse_source(left: &str) -> Result<Source, String> {
    if let Some(inner) = left.strip_prefix("len(").and_then(|r| r.strip_suffix(')')) {
        return match parse_source(inner)? {
            Source::Body(p) => Ok(Source::Len(p)),
            _ => Err(format!("len() takes a [BODY] reference, not {inner:?}")),
        };
    }
    match left {
        "[STATUS]" => return Ok(Source::Status),
        "[RESPONSE_TIME]" => return Ok(Source::ResponseTime),
        "[BODY]" => return Ok(Source::Body(None)),
        _ => {}
    }
    let rest = left.strip_prefix("[BODY]").ok_or_else(|| {
        format!("{left:?} is not a placeholder: use [STATUS], [RESPONSE_TIME], [BODY], [BODY].path, [BODY]/pointer or len([BODY]...)")
    })?;
    if rest.starts_with('/') {
        return Ok(Source::Body(Some(rest.to_string())));
    }
    let path = rest
        .strip_prefix('.')
        .ok_or_else(|| format!("{left:?}: after [BODY] write .field.path or a /json/pointer"))?;
    dot_path_to_pointer(path)
        .map(|p| Source::Body(Some(p)))
        .map_err(|e| format!("{left:?}: {e}"))
}

/// `data.list[0].price` → `/data/list/0/price`.
fn dot_path_to_pointer(path: &str) -> Result<String, String> {
    let mut ptr = String::new();
    for seg in path.split('.') {
        let (key, mut idx) = match seg.find('[') {
            Some(i) => (&seg[..i], &seg[i..]),
            None => (seg, ""),
        };
        if key.is_empty() && idx.is_empty() {
            return Err("empty path segment".into());
        }
        if !key.is_empty() {
            ptr.push('/');
            ptr.push_str(&key.replace('~', "~0").replace('/', "~1"));
        }
        while !idx.is_empty() {
            let close = idx.find(']').ok_or("unclosed [")?;
            let n = &idx[1..close];
            if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
                return Err(format!("[{n}] is not an array index"));
            }
            ptr.push('/');
            ptr.push_str(n);
            idx = &idx[close + 1..];
            if !idx.is_empty() && !idx.starts_with('[') {
                return Err(format!("unexpected {idx:?} after an index"));
            }
        }
    }
    Ok(ptr)
}

/// Glob match with `*` (any run) and `?` (one char), iterative so a hostile
/// pattern cannot blow the stack.
fn glob_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

fn needs_body(spec: &GenericSpec) -> bool {
    [
        &spec.price,
        &spec.bid,
        &spec.ask,
        &spec.timestamp,
        &spec.error_code,
        &spec.bids,
        &spec.asks,
    ]
    .iter()
    .any(|p| p.is_some())
        || spec.conditions.iter().any(|c| c.contains("[BODY]"))
}

pub fn interpret(
    endpoint: EndpointKind,
    resp: &RawResponse<'_>,
    spec: Option<&GenericSpec>,
) -> Interpretation {
    let signal = parse::base_signal(resp);
    let Some(spec) = spec else {
        return parse::finish(
            Err(parse::schema(
                "the generic kind needs an [exchanges.generic] table with JSON pointers",
            )),
            signal,
        );
    };
    parse::finish(read(endpoint, resp, spec), signal)
}

fn read(
    endpoint: EndpointKind,
    resp: &RawResponse<'_>,
    spec: &GenericSpec,
) -> Result<Payload, Problem> {
    let body = match parse::json_body(resp.body) {
        Ok(v) => Some(v),
        Err(reason) if needs_body(spec) => return Err(parse::fallback(resp, reason)),
        Err(_) => None,
    };
    if let (Some(b), Some(ptr)) = (&body, &spec.error_code)
        && let Some(err) = error_from_code(b, ptr, spec, resp)
    {
        return Err(err);
    }
    if !parse::is_success(resp.status) {
        return Err(parse::fallback(
            resp,
            InvalidReason::Schema {
                detail: String::new(),
            },
        ));
    }
    for c in &spec.conditions {
        // Malformed conditions are refused by config validation; here one
        // that slipped through counts against health rather than passing.
        let outcome = Condition::parse(c).and_then(|c| c.check(resp, body.as_ref()));
        if let Err(detail) = outcome {
            return Err(Problem::Invalid(InvalidReason::Unhealthy { detail }));
        }
    }
    let body = body.unwrap_or(Value::Null);
    payload(endpoint, &body, spec, resp)
}

fn error_from_code(
    body: &Value,
    ptr: &str,
    spec: &GenericSpec,
    resp: &RawResponse<'_>,
) -> Option<Problem> {
    let v = body.pointer(ptr)?;
    let empty = match v {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        _ => false,
    };
    let code = match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    if empty || spec.ok_codes.contains(&code) {
        return None;
    }
    let message = spec
        .message
        .as_deref()
        .and_then(|p| body.pointer(p))
        .map(|m| {
            m.as_str()
                .map(str::to_string)
                .unwrap_or_else(|| m.to_string())
        })
        .unwrap_or_default();
    Some(Problem::Api(if spec.rate_limit_codes.contains(&code) {
        ApiError::RateLimited {
            retry_after_ms: parse::retry_after_ms(resp),
            code: Some(code),
            message,
        }
    } else if spec.invalid_symbol_codes.contains(&code) {
        ApiError::InvalidSymbol {
            code: Some(code),
            message,
        }
    } else if spec.server_error_codes.contains(&code) {
        ApiError::ExchangeFault {
            code: Some(code),
            message,
        }
    } else {
        ApiError::Exchange {
            code: Some(code),
            message,
        }
    }))
}

fn pointed<'a>(body: &'a Value, ptr: &Option<String>) -> Option<&'a Value> {
    ptr.as_deref()
        .filter(|p| !p.is_empty())
        .and_then(|p| body.pointer(p))
}

fn timestamp(body: &Value, spec: &GenericSpec) -> Result<Option<i64>, Problem> {
    let Some(v) = pointed(body, &spec.timestamp) else {
        return Ok(None);
    };
    let bad = || {
        Problem::Invalid(InvalidReason::BadNumber {
            field: "timestamp".into(),
            text: v.to_string(),
        })
    };
    if let Some(s) = v.as_str()
        && let Some(ms) = parse::rfc3339_ms(s)
    {
        return Ok(Some(ms));
    }
    let n = parse::num(v, "timestamp").map_err(|_| bad())?.value;
    // Seconds, ms, µs and ns are told apart by size: any of them for a date
    // between 1973 and 5138 lands in its own range.
    let ms = match n.abs() {
        x if x < 1e11 => n * 1e3,
        x if x < 1e14 => n,
        x if x < 1e17 => n / 1e3,
        _ => n / 1e6,
    };
    parse::seconds_to_ms(ms / 1e3).map(Some).ok_or_else(bad)
}

fn side(body: &Value, ptr: &Option<String>, name: &str) -> Result<Vec<Level>, Problem> {
    let Some(Value::Array(levels)) = pointed(body, ptr) else {
        return Err(parse::schema(format!(
            "no {name} array at {}",
            ptr.as_deref().unwrap_or("(no pointer set)")
        )));
    };
    levels
        .iter()
        .enumerate()
        .map(|(i, l)| {
            let (p, s) = match l {
                Value::Array(a) if a.len() >= 2 => (&a[0], &a[1]),
                Value::Object(o) => match (
                    o.get("price").or(o.get("px")),
                    o.get("size").or(o.get("qty")),
                ) {
                    (Some(p), Some(s)) => (p, s),
                    _ => return Err(parse::schema(format!("{name}[{i}] has no price and size"))),
                },
                _ => return Err(parse::schema(format!("{name}[{i}] is not a level"))),
            };
            Ok(Level {
                price: parse::num_lazy(p, || format!("{name}[{i}].price"))?,
                size: parse::num_lazy(s, || format!("{name}[{i}].size"))?,
            })
        })
        .collect()
}

fn payload(
    endpoint: EndpointKind,
    body: &Value,
    spec: &GenericSpec,
    resp: &RawResponse<'_>,
) -> Result<Payload, Problem> {
    let symbol = pointed(body, &spec.symbol)
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    if endpoint != EndpointKind::Time {
        parse::same_instrument(resp, &symbol, parse::plain_instrument)?;
    }
    let ts = timestamp(body, spec)?;
    match endpoint {
        EndpointKind::Time => match ts {
            Some(server_ms) => Ok(Payload::Time { server_ms }),
            None => Err(parse::schema(
                "a time endpoint needs the `timestamp` pointer to find a value",
            )),
        },
        EndpointKind::Ticker => {
            let get = |ptr: &Option<String>, name: &str| parse::opt_num(pointed(body, ptr), name);
            let last = get(&spec.price, "price")?;
            let bid = get(&spec.bid, "bid")?;
            let ask = get(&spec.ask, "ask")?;
            if last.is_none() && bid.is_none() && ask.is_none() {
                return Err(parse::schema(
                    "none of the price, bid or ask pointers found a value",
                ));
            }
            Ok(Payload::Ticker(Ticker {
                symbol,
                last: last.map(|n| n.value),
                bid: bid.map(|n| n.value),
                ask: ask.map(|n| n.value),
                exchange_ts_ms: ts,
            }))
        }
        EndpointKind::Book => Ok(Payload::Book(OrderBook {
            symbol,
            bids: side(body, &spec.bids, "bids")?,
            asks: side(body, &spec.asks, "asks")?,
            exchange_ts_ms: ts,
            update_id: parse::opt_u64(pointed(body, &spec.update_id), "update_id")?,
        })),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_paths_become_pointers() {
        assert_eq!(
            dot_path_to_pointer("data.list[0].price"),
            Ok("/data/list/0/price".into())
        );
        assert_eq!(dot_path_to_pointer("a[1][2]"), Ok("/a/1/2".into()));
        assert!(dot_path_to_pointer("a..b").is_err());
        assert!(dot_path_to_pointer("a[x]").is_err());
        assert!(dot_path_to_pointer("a[1").is_err());
    }

    #[test]
    fn globs_match_like_gatus_pat() {
        assert!(glob_match("BTC-*", "BTC-USD"));
        assert!(glob_match("*ok*", "all ok here"));
        assert!(glob_match("a?c", "abc"));
        assert!(!glob_match("a?c", "abbc"));
        assert!(!glob_match("BTC-*", "ETH-USD"));
        assert!(glob_match("*", ""));
    }

    #[test]
    fn malformed_conditions_are_refused_with_a_hint() {
        for bad in [
            "[STATUS]==200",
            "[STATUS] = 200",
            "[HEADERS].x == 1",
            "[BODY]x == 1",
            "[RESPONSE_TIME] < fast",
            "[BODY].msg =~ (unclosed",
            "len([STATUS]) > 1",
            "[BODY].a[z] == 1",
        ] {
            assert!(Condition::parse(bad).is_err(), "{bad:?} accepted");
        }
        for good in [
            "[STATUS] == 200",
            "[RESPONSE_TIME] < 500",
            "[BODY].status == ok",
            "[BODY]/data/0/state != halted",
            "[BODY].sym == pat(BTC-*)",
            "[BODY].message =~ ^ok$",
            "len([BODY].data) >= 1",
            "[BODY].note == \"all good\"",
        ] {
            assert!(
                Condition::parse(good).is_ok(),
                "{good:?} refused: {:?}",
                Condition::parse(good).err()
            );
        }
    }
}
