//! Adapters must never panic, whatever arrives: arbitrary bytes, arbitrary
//! JSON, and real bodies with random parts replaced, with random statuses
//! and headers, through every kind and endpoint. And whatever they accept
//! must pass the stateless checks.
//!
//! CI runs 2,000 cases per property; set `PROPTEST_CASES` for a long run:
//! `PROPTEST_CASES=1000000 cargo test --release --test adapters_fuzz`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed unwrap is a failed test

use exwatch::exchange::generic::GenericSpec;
use exwatch::exchange::validate::ValidationSettings;
use exwatch::exchange::validate::{Validator, check_payload};
use exwatch::exchange::{self, RawResponse};
use exwatch::exchange::{Level, Num, OrderBook, Payload, Ticker};
use exwatch::model::{EndpointKind, ExchangeKind};
use proptest::prelude::*;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde_json::Value;
use strum::VariantArray;

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2_000)
}

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: cases(),
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

const ENDPOINTS: [EndpointKind; 3] = [EndpointKind::Time, EndpointKind::Ticker, EndpointKind::Book];

fn generic_spec() -> GenericSpec {
    GenericSpec {
        price: Some("/data/last".into()),
        bid: Some("/data/bid".into()),
        ask: Some("/data/ask".into()),
        timestamp: Some("/data/ts".into()),
        error_code: Some("/code".into()),
        ok_codes: vec!["0".into()],
        conditions: vec![
            "[STATUS] == 200".into(),
            "[BODY].status == pat(o*)".into(),
            "[RESPONSE_TIME] < 500".into(),
            "len([BODY].data) >= 0".into(),
            "[BODY].message =~ ^.*$".into(),
        ],
        message: Some("/message".into()),
        rate_limit_codes: vec!["RATE_LIMIT".into()],
        invalid_symbol_codes: vec!["BAD_SYMBOL".into()],
        server_error_codes: vec!["INTERNAL".into()],
        symbol: Some("/data/symbol".into()),
        bids: Some("/data/bids".into()),
        asks: Some("/data/asks".into()),
        update_id: Some("/data/seq".into()),
    }
}

/// Run every adapter over one response; accepted payloads must be valid.
fn interpret_all(
    status: u16,
    headers: &HeaderMap,
    body: &[u8],
    received_at_ms: i64,
    elapsed_ms: u64,
) {
    let spec = generic_spec();
    // With and without an instrument to compare: Kraken's pair names are
    // normalized from whatever keys the body has.
    for (kind, requested_symbol) in ExchangeKind::VARIANTS
        .iter()
        .copied()
        .flat_map(|k| [(k, None), (k, Some("XBT/USD"))])
    {
        for endpoint in ENDPOINTS {
            let raw = RawResponse {
                status,
                headers,
                body,
                received_at_ms,
                elapsed_ms,
                requested_symbol,
            };
            let i = exchange::interpret(kind, endpoint, &raw, Some(&spec));
            if let Ok(p) = &i.result {
                assert_eq!(
                    check_payload(p),
                    Ok(()),
                    "{kind} {endpoint:?} accepted an invalid payload"
                );
            }
            if let Some(s) = &i.signal {
                let _ = s.hold_off(received_at_ms);
            }
        }
    }
}

fn status() -> impl Strategy<Value = u16> {
    prop_oneof![
        prop::sample::select(vec![200u16, 400, 403, 404, 418, 429, 500, 502, 503]),
        any::<u16>(),
    ]
}

fn header_name() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        "retry-after",
        "x-mbx-used-weight-1m",
        "x-bapi-limit",
        "x-bapi-limit-status",
        "x-bapi-limit-reset-timestamp",
        "content-type",
    ])
}

fn header_value() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<i64>().prop_map(|v| v.to_string()),
        any::<u64>().prop_map(|v| v.to_string()),
        "[ -~]{0,40}",
        Just("Sun, 06 Nov 1994 08:49:37 GMT".to_string()),
        Just("Fri, 31 Dec 9999 23:59:59 GMT".to_string()),
    ]
}

fn headers() -> impl Strategy<Value = HeaderMap> {
    prop::collection::vec((header_name(), header_value()), 0..5).prop_map(|hs| {
        let mut m = HeaderMap::new();
        for (k, v) in hs {
            if let (Ok(k), Ok(v)) = (
                HeaderName::from_bytes(k.as_bytes()),
                HeaderValue::from_str(&v),
            ) {
                m.append(k, v);
            }
        }
        m
    })
}

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| serde_json::Number::from_f64(f)
            .map(Value::Number)
            .unwrap_or(Value::Null)),
        ".{0,12}".prop_map(Value::String),
        prop::sample::select(vec![
            "0",
            "-1",
            "1e308",
            "NaN",
            "inf",
            "",
            "4.00000200",
            "50011",
            "10006",
            "1716863719382",
            "EAPI:Rate limit exceeded",
            "ok",
            "banned until 99999999999999999999",
            "IP banned until 9223372036854775807.",
        ])
        .prop_map(|s| Value::String(s.into())),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    let keys = prop::sample::select(vec![
        "code",
        "msg",
        "retCode",
        "retMsg",
        "result",
        "data",
        "error",
        "message",
        "list",
        "bids",
        "asks",
        "a",
        "b",
        "s",
        "u",
        "ts",
        "time",
        "serverTime",
        "lastUpdateId",
        "bidPrice",
        "askPrice",
        "price",
        "last",
        "bidPx",
        "askPx",
        "instId",
        "symbol",
        "sequence",
        "epoch",
        "iso",
        "unixtime",
        "c",
        "XXBTZUSD",
        "timeNano",
        "timeSecond",
        "lastPrice",
        "bid1Price",
        "ask1Price",
        "bid1Size",
        "ask1Size",
        "status",
        "seq",
        "closeTime",
        "bid",
        "ask",
    ]);
    leaf().prop_recursive(5, 64, 8, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((keys.clone(), inner), 0..6).prop_map(|kv| Value::Object(
                kv.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
            )),
        ]
    })
}

/// Real bodies of every kind: the simulator's shapes and error bodies.
fn templates() -> Vec<Value> {
    let q = exwatch::sim::market::Quote {
        symbol: "BTCUSDT".into(),
        last: 100.5,
        bid: 100.0,
        ask: 101.0,
        ts_ms: 1_716_863_719_000,
        update_id: 7,
        bids: vec![(100.0, 1.0), (99.5, 2.0)],
        asks: vec![(101.0, 1.0), (101.5, 3.0)],
    };
    let mut out = Vec::new();
    for &kind in ExchangeKind::VARIANTS {
        let mut bodies: Vec<String> = ENDPOINTS
            .iter()
            .map(|e| exwatch::sim::shapes::ok(kind, *e, &q, 1_716_863_719_382).body)
            .collect();
        bodies.push(exwatch::sim::shapes::rate_limited(kind, 3, 1_716_863_719_382).body);
        bodies.push(exwatch::sim::shapes::server_error(kind, 503).body);
        out.extend(bodies.iter().filter_map(|b| serde_json::from_str(b).ok()));
    }
    out
}

fn cached_templates() -> &'static [Value] {
    static T: std::sync::OnceLock<Vec<Value>> = std::sync::OnceLock::new();
    T.get_or_init(templates)
}

/// Replace the value at a random position (chosen by `path`, a list of
/// indexes taken modulo each container's size) with `new`.
fn mutate(v: &mut Value, path: &[usize], new: Value) {
    let Some((&first, rest)) = path.split_first() else {
        *v = new;
        return;
    };
    match v {
        Value::Array(a) if !a.is_empty() => {
            let n = a.len();
            mutate(&mut a[first % n], rest, new)
        }
        Value::Object(o) if !o.is_empty() => {
            let n = o.len();
            if let Some((_, child)) = o.iter_mut().nth(first % n) {
                mutate(child, rest, new)
            }
        }
        other => *other = new,
    }
}

fn price() -> impl Strategy<Value = f64> + Clone {
    prop_oneof![4 => 90.0f64..110.0, 1 => any::<f64>(), 1 => Just(0.0), 1 => Just(f64::NAN)]
}

fn payload() -> impl Strategy<Value = Payload> {
    let level = (price(), price()).prop_map(|(p, s)| Level {
        price: Num {
            value: p,
            text: p.to_string(),
        },
        size: Num {
            value: s,
            text: s.to_string(),
        },
    });
    let ts = prop::option::of(any::<i64>());
    prop_oneof![
        any::<i64>().prop_map(|server_ms| Payload::Time { server_ms }),
        (
            prop::option::of(price()),
            prop::option::of(price()),
            prop::option::of(price()),
            ts.clone()
        )
            .prop_map(|(last, bid, ask, exchange_ts_ms)| Payload::Ticker(Ticker {
                symbol: "X".into(),
                last,
                bid,
                ask,
                exchange_ts_ms
            })),
        (
            prop::collection::vec(level.clone(), 0..4),
            prop::collection::vec(level, 0..4),
            ts,
            prop::option::of(0u64..20),
        )
            .prop_map(
                |(bids, asks, exchange_ts_ms, update_id)| Payload::Book(OrderBook {
                    symbol: "X".into(),
                    bids,
                    asks,
                    exchange_ts_ms,
                    update_id,
                })
            ),
    ]
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn arbitrary_bytes_never_panic(
        status in status(),
        headers in headers(),
        body in prop::collection::vec(any::<u8>(), 0..256),
        received in any::<i64>(),
        elapsed in any::<u64>(),
    ) {
        interpret_all(status, &headers, &body, received, elapsed);
    }

    #[test]
    fn arbitrary_json_never_panics(
        status in status(),
        headers in headers(),
        v in json_value(),
        received in any::<i64>(),
        elapsed in 0u64..2_000,
    ) {
        interpret_all(status, &headers, v.to_string().as_bytes(), received, elapsed);
    }

    #[test]
    fn mutated_real_bodies_never_panic(
        which in any::<prop::sample::Index>(),
        path in prop::collection::vec(any::<usize>(), 0..6),
        new in json_value(),
        status in status(),
        headers in headers(),
        cut in any::<prop::sample::Index>(),
        truncate in any::<bool>(),
    ) {
        let t = cached_templates();
        let mut v = t[which.index(t.len())].clone();
        mutate(&mut v, &path, new);
        let mut body = v.to_string().into_bytes();
        if truncate && !body.is_empty() {
            body.truncate(cut.index(body.len()));
        }
        interpret_all(status, &headers, &body, 1_716_863_719_382, 10);
    }

    #[test]
    fn validator_never_panics_on_any_sequence(
        steps in prop::collection::vec((payload(), any::<i64>(), any::<i64>()), 1..12),
        jump in any::<f64>(),
    ) {
        let settings = ValidationSettings { max_price_jump_pct: jump.abs(), ..ValidationSettings::default() };
        let mut v = Validator::new(settings);
        for (p, now, offset) in steps {
            v.set_clock_offset_ms(offset);
            let _ = v.check(&p, now);
        }
    }
}

#[test]
fn templates_are_real_bodies() {
    // Guards the mutation property: it must start from bodies the adapters accept.
    assert_eq!(templates().len(), ExchangeKind::VARIANTS.len() * 5);
}

#[test]
fn extreme_ban_times_do_not_overflow() {
    let body = br#"{"code":-1003,"msg":"Way too much request weight used; IP banned until 9223372036854775807."}"#;
    let mut h = HeaderMap::new();
    h.insert(
        "retry-after",
        HeaderValue::from_static("18446744073709551615"),
    );
    for received in [i64::MIN, -1, 0, i64::MAX] {
        let raw = RawResponse {
            status: 418,
            headers: &h,
            body,
            received_at_ms: received,
            elapsed_ms: 0,
            requested_symbol: None,
        };
        let i = exchange::interpret(ExchangeKind::Binance, EndpointKind::Book, &raw, None);
        let s = i.signal.expect("ban signal");
        assert_eq!(s.banned_until_ms, Some(i64::MAX));
        let _ = s.hold_off(received);
        let _ = s.hold_off(i64::MIN);
        interpret_all(418, &h, body, received, 0);
    }
}
