//! `/metrics` of a running monitor watching the real simulator, scraped over
//! HTTP and parsed with a strict OpenMetrics parser: names, types and labels
//! are there, and the values move with a simulated 5xx outage.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed unwrap is a failed test

mod common;

use common::sim::{fault, scenario, start};
use exwatch::config;
use exwatch::model::{EndpointKind, ExchangeKind};
use exwatch::monitor::Monitor;
use exwatch::sim::scenario::FaultKind;
use openmetrics_parser::{MetricsExposition, OpenMetricsType, OpenMetricsValue};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::time::Instant;

type Exposition = MetricsExposition<OpenMetricsType, OpenMetricsValue>;

/// Long enough for a loaded CI machine; a healthy run needs a few seconds.
const PATIENCE: Duration = Duration::from_secs(40);

async fn scrape(addr: SocketAddr) -> (String, Exposition) {
    // A bound on the request, so a hung exporter fails the test instead of stalling it.
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client");
    let resp = client
        .get(format!("http://{addr}/metrics"))
        .send()
        .await
        .expect("GET /metrics");
    assert!(resp.status().is_success(), "{}", resp.status());
    let ctype = resp
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    assert!(
        ctype.starts_with("application/openmetrics-text"),
        "content type {ctype}"
    );
    let text = resp.text().await.expect("body");
    let parsed = openmetrics_parser::openmetrics::parse_openmetrics(&text)
        .unwrap_or_else(|e| panic!("not valid OpenMetrics ({e:?}):\n{text}"));
    (text, parsed)
}

/// The value of the series of `family` whose labels include all of `labels`:
/// a counter's total, a gauge's value, a histogram's count.
fn value(exp: &Exposition, family: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let fam = exp.families.get(family)?;
    fam.iter_samples().find_map(|s| {
        let set = s.get_labelset().ok()?;
        if !labels
            .iter()
            .all(|(k, v)| set.get_label_value(k) == Some(*v))
        {
            return None;
        }
        match &s.value {
            OpenMetricsValue::Counter(c) => Some(c.value.as_f64()),
            OpenMetricsValue::Gauge(g) => Some(g.as_f64()),
            OpenMetricsValue::Histogram(h) => h.count.map(|c| c as f64),
            _ => None,
        }
    })
}

fn assert_family(exp: &Exposition, name: &str, ty: OpenMetricsType, labels: &[&str]) {
    let fam = exp.families.get(name).unwrap_or_else(|| {
        panic!("family {name} missing; have {:?}", {
            let mut k: Vec<_> = exp.families.keys().collect();
            k.sort();
            k
        })
    });
    assert_eq!(fam.family_type, ty, "type of {name}");
    if !labels.is_empty() {
        let mut have: Vec<&str> = fam.get_label_names().iter().map(String::as_str).collect();
        have.sort_unstable();
        let mut want = labels.to_vec();
        want.sort_unstable();
        assert_eq!(have, want, "labels of {name}");
    }
}

fn monitor_config(sim: &exwatch::sim::SimHandle, logs: &std::path::Path) -> config::Config {
    let text = format!(
        "[log]\ndir = \"{logs}\"\n[journal]\npath = \"{logs}/journal.jsonl\"\n\
         [metrics]\nlisten = \"127.0.0.1:0\"\n\
         [breaker]\nconsecutive_failures = 3\nopen_for = \"300ms\"\nmax_open_for = \"300ms\"\nclose_after = 1\n\
         [[exchanges]]\nname = \"binance\"\nkind = \"binance\"\nbase_url = \"{base}\"\n\
         [[exchanges.endpoints]]\nname = \"ticker\"\nkind = \"ticker\"\ninterval = \"50ms\"\ntimeout = \"1s\"\n\
         [[exchanges.endpoints]]\nname = \"book\"\nkind = \"book\"\ninterval = \"50ms\"\ntimeout = \"1s\"\n",
        logs = logs.display(),
        base = sim.base_url(ExchangeKind::Binance),
    );
    config::parse("metrics_scrape.toml", &text).expect("config")
}

fn check(ok: bool) -> Result<(), String> {
    if ok {
        Ok(())
    } else {
        Err("condition not met".into())
    }
}

/// Scrape until `done` holds, or panic with the last scrape.
async fn scrape_until(
    addr: SocketAddr,
    what: &str,
    done: impl Fn(&Exposition) -> Result<(), String>,
) -> (String, Exposition) {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let (text, exp) = scrape(addr).await;
        let missing = match done(&exp) {
            Ok(()) => return (text, exp),
            Err(m) => m,
        };
        if Instant::now() > deadline {
            panic!("never saw {what} ({missing}); last scrape:\n{text}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scrape_has_every_family_and_follows_a_5xx_outage() {
    // The ticker answers 503 for the first 4 s of the simulator's life; the book stays healthy.
    let sim = start(scenario(vec![fault(
        FaultKind::ServerError,
        ExchangeKind::Binance,
        Some(EndpointKind::Ticker),
        Duration::ZERO,
        Duration::from_secs(4),
    )]))
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = monitor_config(&sim, dir.path());
    let monitor = Monitor::start(&cfg, 0).await.expect("monitor");
    let addr = monitor.metrics_addr.expect("metrics address");
    assert!(addr.ip().is_loopback());

    let ticker = [("exchange", "binance"), ("endpoint", "ticker")];
    let book = [("exchange", "binance"), ("endpoint", "book")];
    let calls = |exp: &Exposition, ep: &str, status: &str| {
        value(
            exp,
            "exchange_api_calls",
            &[
                ("exchange", "binance"),
                ("endpoint", ep),
                ("status", status),
            ],
        )
        .unwrap_or(0.0)
    };

    // During the outage: 503s counted, the breaker open, the healthy endpoint unaffected.
    let (_, during) = scrape_until(addr, "the ticker's breaker open after 503s", |e| {
        check(
            value(e, "exwatch_breaker_state", &ticker) == Some(2.0)
                && calls(e, "ticker", "http_503") >= 3.0
                && calls(e, "book", "ok") >= 3.0,
        )
    })
    .await;

    use OpenMetricsType::{Counter, Gauge, Histogram};
    assert_family(
        &during,
        "exchange_api_calls",
        Counter,
        &["exchange", "endpoint", "status"],
    );
    assert_family(
        &during,
        "exchange_api_latency_seconds",
        Histogram,
        &["exchange", "endpoint"],
    );
    assert_family(
        &during,
        "anomaly_score",
        Gauge,
        &["exchange", "endpoint", "detector"],
    );
    assert_family(
        &during,
        "exwatch_breaker_state",
        Gauge,
        &["exchange", "endpoint"],
    );
    assert_family(
        &during,
        "exwatch_breaker_transitions",
        Counter,
        &["exchange", "endpoint", "to"],
    );
    assert_family(
        &during,
        "exwatch_limiter_tokens",
        Gauge,
        &["exchange", "endpoint", "tier"],
    );
    assert_family(
        &during,
        "exwatch_data_age_seconds",
        Gauge,
        &["exchange", "endpoint"],
    );
    assert_family(
        &during,
        "exwatch_poll_interval_seconds",
        Gauge,
        &["exchange", "endpoint"],
    );
    assert_family(&during, "exwatch_alerts_open", Gauge, &["severity"]);
    // Holds: one series per endpoint, 0 while nothing holds it (503s order no hold).
    for held in [
        "exwatch_endpoint_held",
        "exwatch_endpoint_held_until_seconds",
    ] {
        assert_family(&during, held, Gauge, &["exchange", "endpoint"]);
        assert_eq!(value(&during, held, &ticker), Some(0.0), "{held}");
        assert_eq!(value(&during, held, &book), Some(0.0), "{held}");
    }
    for g in [
        "process_resident_memory_bytes",
        "process_open_fds",
        "process_start_time_seconds",
    ] {
        assert_family(&during, g, Gauge, &[]);
        assert!(value(&during, g, &[]).is_some_and(|v| v > 0.0), "{g}");
    }
    assert_family(&during, "process_cpu_seconds", Counter, &[]);

    assert_eq!(value(&during, "exwatch_breaker_state", &book), Some(0.0));
    assert_eq!(
        value(
            &during,
            "exwatch_breaker_transitions",
            &[("endpoint", "ticker"), ("to", "open")]
        )
        .map(|v| v >= 1.0),
        Some(true)
    );
    assert_eq!(calls(&during, "ticker", "ok"), 0.0);
    assert!(
        value(
            &during,
            "anomaly_score",
            &[("endpoint", "ticker"), ("detector", "error_rate")]
        )
        .is_some_and(|v| v > 0.99),
        "every recent ticker poll failed"
    );
    assert_eq!(
        value(
            &during,
            "anomaly_score",
            &[("endpoint", "book"), ("detector", "error_rate")]
        ),
        Some(0.0)
    );
    assert!(value(&during, "exchange_api_latency_seconds", &book).is_some_and(|n| n >= 3.0));
    assert_eq!(
        value(&during, "exwatch_poll_interval_seconds", &book),
        Some(0.05)
    );
    assert!(value(&during, "exwatch_data_age_seconds", &book).is_some_and(|a| a >= 0.0));
    // The ticker has had no good answer yet, so it has no data age.
    assert_eq!(value(&during, "exwatch_data_age_seconds", &ticker), None);
    assert!(
        value(
            &during,
            "exwatch_limiter_tokens",
            &[("endpoint", "book"), ("tier", "exchange")]
        )
        .is_some(),
        "limiter tokens of the exchange tier"
    );

    // After the outage: the breaker closes, good answers are counted, counters never went back.
    let served_503 = calls(&during, "ticker", "http_503");
    let (_, after) = scrape_until(addr, "the ticker recovered", |e| {
        check(
            value(e, "exwatch_breaker_state", &ticker) == Some(0.0)
                && calls(e, "ticker", "ok") >= 1.0,
        )
    })
    .await;
    assert!(calls(&after, "ticker", "http_503") >= served_503);
    assert!(calls(&after, "book", "ok") > calls(&during, "book", "ok"));
    assert!(
        value(
            &after,
            "exwatch_breaker_transitions",
            &[("endpoint", "ticker"), ("to", "closed")]
        )
        .is_some_and(|v| v >= 1.0)
    );
    assert!(value(&after, "exwatch_data_age_seconds", &ticker).is_some());

    monitor.stop().await;
    sim.stop().await;
}

#[test]
fn a_wildcard_metrics_address_is_refused_unless_allowed() {
    let base = "[[exchanges]]\nname = \"b\"\nkind = \"binance\"\n\
                [[exchanges.endpoints]]\nname = \"t\"\nkind = \"ticker\"\n";
    let text = format!("[metrics]\nlisten = \"0.0.0.0:9464\"\n{base}");
    let errs = config::parse("wild.toml", &text).expect_err("wildcard refused");
    let e = &errs.0[0];
    assert_eq!(e.field, "metrics.listen");
    assert_eq!(e.line, 2, "{e}");
    assert!(e.message.contains("allow_wildcard"), "{e}");

    let text = format!("[metrics]\nlisten = \"[::]:9464\"\nallow_wildcard = true\n{base}");
    let cfg = config::parse("wild.toml", &text).expect("allowed on purpose");
    assert_eq!(cfg.metrics.listen, Some("[::]:9464".parse().expect("addr")));

    let cfg = config::parse("off.toml", base).expect("default");
    assert_eq!(cfg.metrics.listen, None, "metrics are off by default");
}

/// Every metric name a PromQL expression reads: strings, label matchers,
/// ranges and `by (...)` clauses removed, then every identifier that is not a
/// function call or a keyword.
fn metric_names(expr: &str) -> Vec<String> {
    let strip = |re: &str, s: &str| {
        regex::Regex::new(re)
            .expect("regex")
            .replace_all(s, " ")
            .into_owned()
    };
    let mut s = strip(r#""(?:[^"\\]|\\.)*""#, expr);
    s = strip(r"\{[^}]*\}", &s);
    s = strip(r"\[[^\]]*\]", &s);
    s = strip(
        r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)",
        &s,
    );
    let keywords = ["and", "or", "unless", "bool", "offset"];
    let ident = regex::Regex::new(r"[a-zA-Z_:][a-zA-Z0-9_:]*(\s*\()?").expect("regex");
    ident
        .captures_iter(&s)
        .filter(|c| c.get(1).is_none())
        .map(|c| c[0].trim().to_string())
        .filter(|n| !keywords.contains(&n.as_str()))
        .collect()
}

/// Whether `name` is a series name of a family in the scrape (`_total` of a
/// counter, `_bucket`/`_sum`/`_count` of a histogram, a gauge's own name).
fn exported(exp: &Exposition, name: &str) -> bool {
    exp.families.values().any(|f| {
        let base = f.family_name.as_str();
        let suffixes: &[&str] = match f.family_type {
            OpenMetricsType::Counter => &["_total"],
            OpenMetricsType::Histogram => &["_bucket", "_sum", "_count"],
            _ => &[""],
        };
        suffixes.iter().any(|s| name == format!("{base}{s}")) && f.iter_samples().next().is_some()
    })
}

fn dashboard_queries(v: &serde_json::Value, out: &mut Vec<String>) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, x) in m {
                match (k.as_str(), x) {
                    ("expr" | "definition", serde_json::Value::String(e)) => out.push(e.clone()),
                    _ => dashboard_queries(x, out),
                }
            }
        }
        serde_json::Value::Array(a) => a.iter().for_each(|x| dashboard_queries(x, out)),
        _ => {}
    }
}

#[test]
fn promql_names_are_extracted() {
    let q = r#"histogram_quantile(0.99, sum by (le, exchange) (rate(exchange_api_latency_seconds_bucket{exchange=~"$exchange", status!="ok"}[$__rate_interval]))) / on (exchange) exwatch_limiter_capacity"#;
    assert_eq!(
        metric_names(q),
        [
            "exchange_api_latency_seconds_bucket",
            "exwatch_limiter_capacity"
        ]
    );
    assert_eq!(
        metric_names("label_values(exchange_api_calls_total{instance=~\"$instance\"}, exchange)"),
        ["exchange_api_calls_total", "exchange"]
    );
}

/// The exporter fed the way the monitor feeds it (every event once, in order,
/// and snapshots from the same reducer), by a real monitor watching the
/// simulator through a 5xx outage plus the events of the parts this process
/// does not run: the alert engine and sinks (alert raised, triaged, sent to
/// one sink, failed on another) and a Redis backend's health. Then every
/// metric the Grafana dashboard queries must be in the scrape.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alert_families_and_every_dashboard_metric_are_exported() {
    use exwatch::model::{Alert, AlertState, Delivery, Severity, Triage, TriageSource};
    use exwatch::model::{Component, Event};
    use exwatch::state::{Snapshot, State};
    use std::collections::BTreeMap;
    use std::sync::Arc;
    use tokio::sync::{mpsc, watch};

    let sim = start(scenario(vec![fault(
        FaultKind::ServerError,
        ExchangeKind::Binance,
        Some(EndpointKind::Ticker),
        Duration::ZERO,
        Duration::from_secs(2),
    )]))
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    // A tight endpoint budget on the book, so the limiter makes polls wait.
    let text = format!(
        "[log]\ndir = \"{logs}\"\n[journal]\npath = \"{logs}/journal.jsonl\"\n\
         [breaker]\nconsecutive_failures = 3\nopen_for = \"300ms\"\nmax_open_for = \"300ms\"\nclose_after = 1\n\
         [[exchanges]]\nname = \"binance\"\nkind = \"binance\"\nbase_url = \"{base}\"\n\
         [[exchanges.endpoints]]\nname = \"ticker\"\nkind = \"ticker\"\ninterval = \"50ms\"\ntimeout = \"1s\"\n\
         [[exchanges.endpoints]]\nname = \"time\"\nkind = \"time\"\ninterval = \"100ms\"\ntimeout = \"1s\"\n\
         [[exchanges.endpoints]]\nname = \"book\"\nkind = \"book\"\ninterval = \"50ms\"\ntimeout = \"1s\"\n\
         rate_limit = {{ capacity = 1, refill_per_sec = 5 }}\n",
        logs = dir.path().display(),
        base = sim.base_url(ExchangeKind::Binance),
    );
    let cfg = config::parse("dash.toml", &text).expect("config");
    let mut monitor = Monitor::start(&cfg, 1).await.expect("monitor");
    let mut tap = monitor.taps.remove(0);

    let listener = exwatch::metrics::bind("127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (ev_tx, ev_rx) = mpsc::channel::<Event>(1024);
    let (snap_tx, snap_rx) = watch::channel(Arc::new(Snapshot::default()));
    let stop = tokio_util::sync::CancellationToken::new();
    let exporter = tokio::spawn(exwatch::metrics::run(
        listener,
        ev_rx,
        snap_rx,
        stop.clone(),
    ));
    let (extra_tx, mut extra_rx) = mpsc::channel::<Event>(16);
    let feeder = tokio::spawn(async move {
        let mut state = State::new();
        loop {
            let ev = tokio::select! {
                Some(ev) = tap.recv() => ev,
                Some(ev) = extra_rx.recv() => ev,
                else => break,
            };
            state.apply(&ev);
            if ev_tx.send(ev).await.is_err() {
                break;
            }
            snap_tx.send_replace(Arc::new(state.snapshot()));
        }
    });

    let alert = Alert {
        fingerprint: "binance/book/stale".into(),
        exchange: "binance".into(),
        endpoint: Some("book".into()),
        kind: "stale".parse().unwrap(),
        severity: Severity::Critical,
        title: "binance/ticker failing".into(),
        description: String::new(),
        metrics: BTreeMap::from([("age_ms".to_string(), 45_000.0)]),
        first_seen_ms: 1,
        last_seen_ms: 1,
        occurrences: 1,
        state: AlertState::Firing,
        state_by: None,
        state_at_ms: 1,
        resolved_at_ms: None,
        delivery: BTreeMap::new(),
        triage: Some(Triage {
            source: TriageSource::Model,
            escalation: 4,
            requires_human: true,
            summary: "5xx from the ticker".into(),
            likely_cause: "exchange outage".into(),
            suggested_actions: vec![],
            auto_resolve: false,
            note: String::new(),
            latency_ms: 800,
            cost_usd: 0.004,
            at_ms: 2,
        }),
        incident: None,
        episode_start_ms: None,
    };
    for ev in [
        Event::AlertChanged { alert },
        Event::AlertDelivery {
            fingerprint: "binance/book/stale".into(),
            sink: "slack".into(),
            delivery: Delivery::Sent { at_ms: 3 },
        },
        Event::AlertDelivery {
            fingerprint: "binance/book/stale".into(),
            sink: "pagerduty".into(),
            delivery: Delivery::Failed {
                error: "HTTP 403".into(),
            },
        },
        Event::TriageUsage(exwatch::model::TriageTotals {
            calls: 1,
            tokens_in: 900,
            tokens_out: 120,
            cost_usd: 0.004,
            by_model: 1,
            ..Default::default()
        }),
        Event::BackendHealth {
            at_ms: 4,
            component: Component::RedisLimiter,
            healthy: false,
            detail: "Redis unreachable (connection refused): rate-limit budget kept by this instance, on its share in memory (policy local)".into(),
        },
    ] {
        extra_tx.send(ev).await.expect("feed");
    }
    // The feeder ends once both of its inputs have.
    drop(extra_tx);

    let dashboard: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/assets/grafana/exwatch.json"
        ))
        .expect("read the dashboard"),
    )
    .expect("dashboard JSON");
    let mut queries = Vec::new();
    dashboard_queries(&dashboard["panels"], &mut queries);
    dashboard_queries(&dashboard["templating"], &mut queries);
    let mut names: Vec<String> = queries.iter().flat_map(|q| metric_names(q)).collect();
    // `label_values(metric, label)`: the second argument is a label, not a metric.
    names.retain(|n| !["instance", "exchange", "endpoint"].contains(&n.as_str()));
    names.sort();
    names.dedup();
    assert!(names.len() >= 15, "{names:?}");

    let (text, exp) = scrape_until(addr, "every dashboard metric", |e| {
        let missing: Vec<&String> = names.iter().filter(|n| !exported(e, n)).collect();
        if !missing.is_empty() {
            return Err(format!("not exported: {missing:?}"));
        }
        check(value(e, "exwatch_breaker_state", &[("endpoint", "ticker")]) == Some(0.0))
    })
    .await;

    assert_family(
        &exp,
        "alerts_sent",
        OpenMetricsType::Counter,
        &["severity", "channel"],
    );
    assert_eq!(
        value(
            &exp,
            "alerts_sent",
            &[("severity", "critical"), ("channel", "slack")]
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        value(
            &exp,
            "exwatch_alert_delivery_failures",
            &[("channel", "pagerduty"), ("outcome", "failed")]
        ),
        Some(1.0)
    );
    assert_eq!(
        value(&exp, "exwatch_sink_up", &[("channel", "slack")]),
        Some(1.0)
    );
    assert_eq!(
        value(&exp, "exwatch_sink_up", &[("channel", "pagerduty")]),
        Some(0.0)
    );
    assert_eq!(
        value(
            &exp,
            "exwatch_backend_up",
            &[("component", "redis_limiter")]
        ),
        Some(0.0)
    );
    assert_eq!(
        value(
            &exp,
            "exwatch_alerts_raised",
            &[("severity", "critical"), ("kind", "stale")]
        ),
        Some(1.0)
    );
    // The real alert engine may have opened its own alerts during the outage.
    assert!(
        value(&exp, "exwatch_alerts_open", &[("severity", "critical")]).is_some_and(|n| n >= 1.0)
    );
    assert_eq!(
        value(&exp, "exwatch_triage", &[("source", "model")]),
        Some(1.0)
    );
    assert_eq!(
        value(&exp, "exwatch_triage_tokens", &[("direction", "in")]),
        Some(900.0)
    );
    assert!(value(&exp, "exwatch_triage_cost_usd", &[]).is_some_and(|c| (c - 0.004).abs() < 1e-9));
    assert!(
        value(
            &exp,
            "exwatch_limiter_wait_seconds",
            &[("endpoint", "book"), ("tier", "endpoint")]
        )
        .is_some_and(|n| n >= 1.0),
        "the book waited for its 5/s budget"
    );
    assert!(
        value(
            &exp,
            "exwatch_breaker_rejections",
            &[("endpoint", "ticker")]
        )
        .is_some_and(|n| n >= 1.0)
    );

    monitor.stop().await;
    stop.cancel();
    let _ = feeder.await;
    let _ = exporter.await;
    sim.stop().await;
}

/// Built with `--features heap-stats`, the binary's allocator counts the
/// heap: `exwatch_heap_allocated_bytes` is exported by `exwatch run`, above
/// zero and below the resident set (the soak of the README reads both to
/// tell a leak from allocator retention). Without it (the default build)
/// the gauge is absent rather than a made-up zero.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_exports_its_live_heap_below_its_resident_set() {
    let sim = start(scenario(vec![])).await;
    let dir = tempfile::tempdir().unwrap();
    let port = common::free_port();
    let cfg = common::headless::write_config(
        dir.path(),
        &format!(
            "[journal]\npath = \"{logs}/journal.jsonl\"\n\
             [metrics]\nlisten = \"127.0.0.1:{port}\"\n\
             [[exchanges]]\nname = \"binance\"\nkind = \"binance\"\nbase_url = \"{base}\"\n\
             [[exchanges.endpoints]]\nname = \"ticker\"\nkind = \"ticker\"\ninterval = \"100ms\"\n",
            logs = dir.path().display(),
            base = sim.base_url(ExchangeKind::Binance),
        ),
    );
    let _child = common::headless::Headless::run(&cfg, &[]);
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let deadline = Instant::now() + PATIENCE;
    let client = reqwest::Client::new();
    while client
        .get(format!("http://{addr}/metrics"))
        .send()
        .await
        .is_err()
    {
        assert!(Instant::now() < deadline, "no /metrics on {addr}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (text, exp) = scrape(addr).await;
    let heap = value(&exp, "exwatch_heap_allocated_bytes", &[]);
    let rss = value(&exp, "process_resident_memory_bytes", &[]);
    if !cfg!(feature = "heap-stats") {
        assert_eq!(heap, None, "no heap gauge without the feature");
        assert!(rss.is_some(), "{text}");
        return;
    }
    let (Some(heap), Some(rss)) = (heap, rss) else {
        panic!("heap {heap:?}, rss {rss:?}:\n{text}");
    };
    assert!(heap > 100_000.0 && heap < rss, "heap {heap} B, rss {rss} B");
}
