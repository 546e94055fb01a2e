//! Snapshots for the dashboard tests and the render benchmark, built by
//! feeding events to the real reducer, at a fixed time so screens are stable.
#![allow(dead_code)]

use exwatch::model::{Alert, AlertState, Delivery, Severity, Triage, TriageSource};
use exwatch::model::{BreakerState, Transition};
use exwatch::model::{Component, Event, Outcome, Sample};
use exwatch::model::{EndpointId, EndpointKind, ExchangeKind};
use exwatch::model::{Tier, TierFill};
use exwatch::state::{Snapshot, State};
use std::collections::BTreeMap;

pub mod silences;

/// 2025-11-24 10:00:00 UTC.
pub const NOW: i64 = 1_763_978_400_000;

const EXCHANGES: [(&str, ExchangeKind); 5] = [
    ("binance", ExchangeKind::Binance),
    ("bybit", ExchangeKind::Bybit),
    ("okx", ExchangeKind::Okx),
    ("coinbase", ExchangeKind::Coinbase),
    ("kraken", ExchangeKind::Kraken),
];
const ENDPOINTS: [(&str, EndpointKind, u64); 3] = [
    ("time", EndpointKind::Time, 5_000),
    ("ticker", EndpointKind::Ticker, 1_000),
    ("book", EndpointKind::Book, 1_000),
];

fn watching(st: &mut State, exchange: &str, kind: ExchangeKind) {
    for (ep, ek, interval) in ENDPOINTS {
        st.apply(&Event::Watching {
            id: EndpointId::new(exchange, ep),
            exchange_kind: kind,
            kind: ek,
            url: format!("http://127.0.0.1:9900/{}/{ep}", kind.as_str()),
            interval_ms: interval,
        });
    }
}

fn sample(exchange: &str, endpoint: &str, at_ms: i64, latency_us: u64, outcome: Outcome) -> Event {
    let ok = outcome.is_ok();
    Event::Sample(Sample {
        id: EndpointId::new(exchange, endpoint),
        at_ms,
        latency_us,
        status: Some(if ok { 200 } else { 503 }),
        outcome,
        summary: ok.then(|| "bid 91234.5 ask 91235.0".to_string()),
        price: ok.then_some(91_234.5),
        exchange_ts_ms: ok.then_some(at_ms - 3),
        signal: None,
    })
}

/// Deterministic latency wiggle: a few ms with a shape per endpoint.
fn latency(seed: usize, i: usize) -> u64 {
    let base = 8_000 + (seed as u64 % 7) * 3_000;
    let wave = ((i * (seed + 3)) % 11) as u64 * 900;
    base + wave
}

fn healthy_exchange(st: &mut State, idx: usize, name: &str, kind: ExchangeKind) {
    watching(st, name, kind);
    for (j, (ep, _, interval)) in ENDPOINTS.iter().enumerate() {
        let seed = idx * 3 + j;
        for i in 0..60 {
            let at = NOW - (60 - i as i64) * *interval as i64 + 400;
            st.apply(&sample(name, ep, at, latency(seed, i), Outcome::Ok));
        }
        st.apply(&Event::LimiterFill {
            id: EndpointId::new(name, *ep),
            at_ms: NOW - 500,
            tiers: vec![TierFill {
                tier: Tier::Exchange,
                tokens: 50.0 - (seed as f64 * 2.5) % 40.0,
                capacity: 50.0,
                blocked_for_ms: None,
            }],
        });
    }
}

pub fn healthy() -> Snapshot {
    let mut st = State::new();
    for (i, (name, kind)) in EXCHANGES.iter().enumerate() {
        healthy_exchange(&mut st, i, name, *kind);
    }
    st.snapshot()
}

/// `at` is (exchange, endpoint, kind).
pub fn alert(
    (exchange, endpoint, kind): (&str, Option<&str>, &str),
    severity: Severity,
    title: &str,
    first_seen_ms: i64,
    occurrences: u64,
    state: AlertState,
) -> Alert {
    let mut metrics = BTreeMap::new();
    metrics.insert("error_rate".into(), 0.65);
    metrics.insert("p99_ms".into(), 840.0);
    Alert {
        fingerprint: Alert::fingerprint_of(exchange, endpoint, kind),
        exchange: exchange.into(),
        endpoint: endpoint.map(str::to_string),
        kind: kind.parse().unwrap(),
        severity,
        title: title.into(),
        description: format!("{title}: seen {occurrences} times since it started"),
        metrics,
        first_seen_ms,
        last_seen_ms: first_seen_ms + 1_000 * occurrences as i64,
        occurrences,
        state,
        state_by: match state {
            AlertState::Firing => Some("auto".into()),
            AlertState::Resolved => Some("auto".into()),
            _ => Some("alice".into()),
        },
        state_at_ms: first_seen_ms + 500,
        resolved_at_ms: (state == AlertState::Resolved).then_some(first_seen_ms + 60_000),
        delivery: BTreeMap::new(),
        triage: None,
        incident: None,
        episode_start_ms: None,
    }
}

/// Bybit's book endpoint failing with 503s, breaker open, alerts about it.
pub fn exchange_down() -> Snapshot {
    let mut st = State::new();
    for (i, (name, kind)) in EXCHANGES.iter().enumerate() {
        healthy_exchange(&mut st, i, name, *kind);
    }
    for i in 0..8 {
        st.apply(&sample(
            "bybit",
            "book",
            NOW - 9_000 + i * 1_000,
            120_000,
            Outcome::Http {
                status: 503,
                detail: "Service Unavailable".into(),
            },
        ));
        st.apply(&sample(
            "bybit",
            "ticker",
            NOW - 9_000 + i * 1_000,
            2_100_000,
            Outcome::Timeout,
        ));
    }
    st.apply(&Event::BreakerChanged {
        id: EndpointId::new("bybit", "book"),
        at_ms: NOW - 3_000,
        transition: Transition {
            from: BreakerState::Closed,
            to: BreakerState::Open,
            reason: "3 consecutive failures".into(),
            open_until_ms: Some(NOW + 12_000),
        },
    });
    st.apply(&Event::BreakerRejected {
        id: EndpointId::new("bybit", "book"),
        at_ms: NOW - 1_000,
        state: BreakerState::Open,
    });
    st.apply(&Event::LimiterFill {
        id: EndpointId::new("bybit", "ticker"),
        at_ms: NOW - 500,
        tiers: vec![TierFill {
            tier: Tier::Exchange,
            tokens: 2.0,
            capacity: 50.0,
            blocked_for_ms: Some(8_000),
        }],
    });
    st.apply(&Event::LimiterWaited {
        id: EndpointId::new("bybit", "ticker"),
        at_ms: NOW - 2_000,
        waited_ms: 1_450,
        tier: Tier::Exchange,
    });
    st.apply(&Event::BackendHealth {
        at_ms: NOW - 42_000,
        component: Component::RedisLimiter,
        healthy: false,
        detail: "connection refused".into(),
    });
    let mut a = alert(
        ("bybit", Some("book"), "breaker_open"),
        Severity::Critical,
        "circuit breaker open after 3 consecutive failures",
        NOW - 3_000,
        1,
        AlertState::Firing,
    );
    a.delivery
        .insert("slack".into(), Delivery::Sent { at_ms: NOW - 2_500 });
    a.delivery.insert(
        "pagerduty".into(),
        Delivery::Retrying {
            attempts: 2,
            last_error: "HTTP 502 from events API".into(),
        },
    );
    st.apply(&Event::AlertChanged { alert: a });
    let mut b = alert(
        ("bybit", Some("ticker"), "error_rate"),
        Severity::Warning,
        "error rate 100% over the last 8 polls",
        NOW - 8_000,
        6,
        AlertState::Acknowledged,
    );
    b.delivery
        .insert("slack".into(), Delivery::Sent { at_ms: NOW - 7_000 });
    b.triage = Some(Triage {
        source: TriageSource::Rules,
        escalation: 3,
        requires_human: true,
        summary: "Bybit's ticker times out while other exchanges answer.".into(),
        likely_cause: "exchange-side degradation".into(),
        suggested_actions: vec![
            "check Bybit's status page".into(),
            "route pricing to another venue".into(),
        ],
        auto_resolve: false,
        note: "rule: single-exchange timeouts".into(),
        latency_ms: 3,
        cost_usd: 0.0,
        at_ms: NOW - 6_000,
    });
    st.apply(&Event::AlertChanged { alert: b });
    st.apply(&Event::AlertChanged {
        alert: alert(
            ("okx", Some("time"), "latency"),
            Severity::Info,
            "p99 latency back under 200ms",
            NOW - 600_000,
            3,
            AlertState::Resolved,
        ),
    });
    st.snapshot()
}

/// Everything failing at once: dozens of alerts in every state and severity.
pub fn alert_storm() -> Snapshot {
    let mut st = State::new();
    for (i, (name, kind)) in EXCHANGES.iter().enumerate() {
        healthy_exchange(&mut st, i, name, *kind);
    }
    let kinds = [
        (
            "latency",
            Severity::Warning,
            "p99 latency 840ms, 6.2 sigma above normal",
        ),
        (
            "error_rate",
            Severity::Critical,
            "error rate 65% over the last minute",
        ),
        ("stale", Severity::Warning, "data 42s old (max 30s)"),
        (
            "payload:crossed_book",
            Severity::Critical,
            "crossed book: best bid above best ask",
        ),
        (
            "rate_limit",
            Severity::Emergency,
            "HTTP 429: budget exhausted, backing off 30s",
        ),
    ];
    let states = [
        AlertState::Firing,
        AlertState::Firing,
        AlertState::Acknowledged,
        AlertState::Silenced,
        AlertState::Resolved,
    ];
    let mut n = 0i64;
    for (ex, _) in EXCHANGES {
        for (ep, _, _) in ENDPOINTS {
            for (k, (kind, sev, title)) in kinds.iter().enumerate() {
                if (n as usize + k) % 3 == 0 {
                    continue;
                }
                let state = states[(n as usize + k) % states.len()];
                let mut a = alert(
                    (ex, Some(ep), kind),
                    *sev,
                    title,
                    NOW - 5_000 * n - 700,
                    (n as u64 % 9) + 1,
                    state,
                );
                match n % 4 {
                    0 => {
                        a.delivery
                            .insert("slack".into(), Delivery::Sent { at_ms: NOW - 1_000 });
                    }
                    1 => {
                        a.delivery.insert(
                            "webhook".into(),
                            Delivery::Failed {
                                error: "HTTP 404".into(),
                            },
                        );
                    }
                    2 => {
                        a.delivery.insert("slack".into(), Delivery::Pending);
                    }
                    _ => {
                        a.delivery.insert(
                            "slack".into(),
                            Delivery::Suppressed {
                                reason: "grouped".into(),
                            },
                        );
                    }
                }
                st.apply(&Event::AlertChanged { alert: a });
                n += 1;
            }
        }
    }
    st.snapshot()
}

/// `exchanges` exchanges of 3 endpoints each, all with full sample rings: the benchmark's input.
pub fn many(exchanges: usize) -> Snapshot {
    let mut st = State::new();
    for i in 0..exchanges {
        let (_, kind) = EXCHANGES[i % EXCHANGES.len()];
        healthy_exchange(&mut st, i, &format!("venue-{i:02}"), kind);
    }
    st.snapshot()
}

/// Kraken, the last exchange of the config, failing: its book answers 503
/// and its breaker is open, with the alerts the engine raises, titled as
/// the detectors title them (`kraken/book: ...`).
pub fn last_exchange_fault() -> Snapshot {
    let mut st = State::new();
    for (i, (name, kind)) in EXCHANGES.iter().enumerate() {
        healthy_exchange(&mut st, i, name, *kind);
    }
    for i in 0..6 {
        st.apply(&sample(
            "kraken",
            "book",
            NOW - 20_000 + i * 1_000,
            95_000,
            Outcome::Http {
                status: 503,
                detail: "EService:Unavailable (the exchange is down for maintenance)".into(),
            },
        ));
    }
    st.apply(&Event::BreakerChanged {
        id: EndpointId::new("kraken", "book"),
        at_ms: NOW - 14_000,
        transition: Transition {
            from: BreakerState::Closed,
            to: BreakerState::Open,
            reason: "3 consecutive failures".into(),
            open_until_ms: Some(NOW + 16_000),
        },
    });
    let mut a = alert(
        ("kraken", Some("book"), "error_rate"),
        Severity::Critical,
        "kraken/book: error rate 100% over the last 6 polls",
        NOW - 15_000,
        1,
        AlertState::Firing,
    );
    a.incident = Some("kraken/book/error_rate#1".into());
    a.delivery.insert(
        "slack".into(),
        Delivery::Sent {
            at_ms: NOW - 14_000,
        },
    );
    st.apply(&Event::AlertChanged { alert: a });
    let mut b = alert(
        ("kraken", Some("book"), "breaker_open"),
        Severity::Warning,
        "kraken/book: circuit breaker open (3 consecutive failures)",
        NOW - 14_000,
        1,
        AlertState::Firing,
    );
    b.incident = Some("kraken/book/error_rate#1".into());
    st.apply(&Event::AlertChanged { alert: b });
    st.snapshot()
}

/// OKX down as a whole: every endpoint failing to connect, breakers open,
/// an emergency `outage` incident with its symptoms.
pub fn exchange_outage() -> Snapshot {
    let mut st = State::new();
    for (i, (name, kind)) in EXCHANGES.iter().enumerate() {
        healthy_exchange(&mut st, i, name, *kind);
    }
    for (ep, _, _) in ENDPOINTS {
        for i in 0..5 {
            st.apply(&sample(
                "okx",
                ep,
                NOW - 30_000 + i * 2_000,
                3_000_000,
                Outcome::Connect {
                    detail: "connection refused (os error 111) connecting to www.okx.com:443"
                        .into(),
                },
            ));
        }
        st.apply(&Event::BreakerChanged {
            id: EndpointId::new("okx", ep),
            at_ms: NOW - 25_000,
            transition: Transition {
                from: BreakerState::Closed,
                to: BreakerState::Open,
                reason: "3 consecutive failures".into(),
                open_until_ms: Some(NOW + 5_000),
            },
        });
    }
    let incident = "okx/*/outage#1".to_string();
    let mut root = alert(
        ("okx", None, "outage"),
        Severity::Emergency,
        "okx: exchange-wide outage (3 of 3 endpoints down)",
        NOW - 24_000,
        1,
        AlertState::Firing,
    );
    root.metrics = BTreeMap::from([("endpoints".into(), 3.0), ("endpoints_down".into(), 3.0)]);
    root.incident = Some(incident.clone());
    root.delivery.insert(
        "pagerduty".into(),
        Delivery::Sent {
            at_ms: NOW - 23_000,
        },
    );
    st.apply(&Event::AlertChanged { alert: root });
    for (k, ep) in ["time", "ticker", "book"].iter().enumerate() {
        let mut a = alert(
            ("okx", Some(ep), "breaker_open"),
            Severity::Warning,
            &format!("okx/{ep}: circuit breaker open (3 consecutive failures)"),
            NOW - 25_000 + k as i64 * 100,
            1,
            AlertState::Firing,
        );
        a.incident = Some(incident.clone());
        st.apply(&Event::AlertChanged { alert: a });
    }
    st.snapshot()
}

/// Binance's ticker rate-limited (HTTP 429, Retry-After 35 s): the limiter
/// holds the endpoint, a warning says until when.
pub fn held_endpoint() -> Snapshot {
    let mut st = State::new();
    for (i, (name, kind)) in EXCHANGES.iter().enumerate() {
        healthy_exchange(&mut st, i, name, *kind);
    }
    st.apply(&Event::Sample(Sample {
        id: EndpointId::new("binance", "ticker"),
        at_ms: NOW - 5_000,
        latency_us: 14_000,
        status: Some(429),
        outcome: Outcome::RateLimited {
            retry_after_ms: Some(35_000),
            detail: "Too many requests; current limit of IP is 6000 per 1m".into(),
        },
        summary: None,
        price: None,
        exchange_ts_ms: None,
        signal: None,
    }));
    st.apply(&Event::LimiterFill {
        id: EndpointId::new("binance", "ticker"),
        at_ms: NOW - 5_000,
        tiers: vec![TierFill {
            tier: Tier::Endpoint,
            tokens: 0.0,
            capacity: 20.0,
            blocked_for_ms: Some(35_000),
        }],
    });
    let mut a = alert(
        ("binance", Some("ticker"), "rate_limit"),
        Severity::Warning,
        "binance/ticker: rate limited (HTTP 429), held until 10:00:30 UTC (retry after 35 s)",
        NOW - 5_000,
        1,
        AlertState::Firing,
    );
    a.metrics = BTreeMap::from([
        ("rate_limited".into(), 1.0),
        ("held_until_ms".into(), (NOW + 30_000) as f64),
    ]);
    a.incident = Some("binance/ticker/rate_limit#1".into());
    st.apply(&Event::AlertChanged { alert: a });
    st.snapshot()
}

/// A stream row's status at `NOW`.
fn stream_status(
    exchange: &str,
    row: &str,
    connection: &str,
    state: exwatch::model::StreamState,
) -> exwatch::model::StreamStatus {
    exwatch::model::StreamStatus {
        id: EndpointId::new(exchange, row),
        connection: connection.into(),
        at_ms: NOW,
        state,
        expected: false,
        age_ms: Some(120),
        threshold_ms: 30_000,
        msgs_per_s: 10.0,
        messages: 6_000,
        lag_p50_ms: (row != connection).then_some(38),
        lag_p99_ms: (row != connection).then_some(95),
        gaps: 0,
        resyncs: 0,
        reconnects: 0,
        storm: None,
        book: None,
        bid: None,
        ask: None,
        crossed: None,
        connection_wide: false,
        detail: String::new(),
    }
}

/// Healthy REST everywhere; OKX streams its ticker (live) and book (a gap
/// just broke it: invalid, its alert firing); Kraken's socket is open but
/// silent on every subscription (a zombie, paged on its connection row).
pub fn streams() -> Snapshot {
    use exwatch::model::{BookState, StreamState};
    let mut st = State::new();
    for (i, (name, kind)) in EXCHANGES.iter().enumerate() {
        healthy_exchange(&mut st, i, name, *kind);
    }
    let rows = [
        (
            "okx",
            ExchangeKind::Okx,
            "okx-ws",
            ["ws:ticker:BTC-USDT", "ws:book:BTC-USDT"],
        ),
        (
            "kraken",
            ExchangeKind::Kraken,
            "kraken-ws",
            ["ws:ticker:BTC-USD", "ws:book:BTC-USD"],
        ),
    ];
    for (ex, kind, conn, subs) in rows {
        for row in std::iter::once(conn).chain(subs) {
            st.apply(&Event::StreamWatching {
                id: EndpointId::new(ex, row),
                exchange_kind: kind,
                connection: conn.into(),
                url: format!("ws://127.0.0.1:9901/{ex}/ws"),
            });
        }
    }
    for s in 0..30i64 {
        let at = NOW - (30 - s) * 1000;
        for (ex, conn, row) in [
            ("okx", "okx-ws", "okx-ws"),
            ("okx", "okx-ws", "ws:ticker:BTC-USDT"),
            ("okx", "okx-ws", "ws:book:BTC-USDT"),
        ] {
            let mut status = stream_status(ex, row, conn, StreamState::Live);
            status.at_ms = at;
            status.msgs_per_s = 8.0 + (s % 5) as f64;
            status.book = row.starts_with("ws:book").then_some(BookState::Valid);
            status.bid = Some("91234.5".into());
            status.ask = Some("91235.0".into());
            st.apply(&Event::StreamStatus(status));
        }
    }
    let mut book = stream_status("okx", "ws:book:BTC-USDT", "okx-ws", StreamState::Live);
    book.book = Some(BookState::Invalid);
    book.gaps = 1;
    book.detail = "gap: expected update id 1050, received 1051".into();
    st.apply(&Event::StreamStatus(book));
    let mut conn = stream_status("kraken", "kraken-ws", "kraken-ws", StreamState::Zombie);
    conn.age_ms = Some(34_000);
    conn.msgs_per_s = 1.0;
    conn.detail = "every subscription silent, the socket open (9120 frames so far)".into();
    st.apply(&Event::StreamStatus(conn));
    for row in ["ws:ticker:BTC-USD", "ws:book:BTC-USD"] {
        let mut sub = stream_status("kraken", row, "kraken-ws", StreamState::Zombie);
        sub.age_ms = Some(34_000);
        sub.msgs_per_s = 0.0;
        sub.connection_wide = true;
        st.apply(&Event::StreamStatus(sub));
    }
    for a in [
        alert(
            ("kraken", Some("kraken-ws"), "stream_zombie"),
            Severity::Critical,
            "subscribed, no data for 34s (zombie)",
            NOW - 31_000,
            1,
            AlertState::Firing,
        ),
        alert(
            ("okx", Some("ws:book:BTC-USDT"), "book_invalid"),
            Severity::Warning,
            "order book invalid (gap: expected update id 1050, received 1051)",
            NOW - 800,
            1,
            AlertState::Firing,
        ),
    ] {
        st.apply(&Event::AlertChanged { alert: a });
    }
    st.snapshot()
}
