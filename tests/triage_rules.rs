//! Rule-based triage: deterministic decisions that say which rule decided,
//! the facts they read from the snapshot, and the `[triage]` config table.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed unwrap is a failed test

use exwatch::alert::triage::{AlertContext, TriageSettings, rules};
use exwatch::config;
use exwatch::model::{Alert, AlertState, Severity, TriageSource};
use exwatch::model::{BreakerState, Transition};
use exwatch::model::{EndpointId, EndpointKind, ExchangeKind};
use exwatch::model::{Event, Outcome, Sample};
use exwatch::state::{Snapshot, State};
use std::collections::BTreeMap;

fn alert(exchange: &str, endpoint: Option<&str>, kind: &str, severity: Severity) -> Alert {
    Alert {
        fingerprint: Alert::fingerprint_of(exchange, endpoint, kind),
        exchange: exchange.into(),
        endpoint: endpoint.map(str::to_string),
        kind: kind.parse().unwrap(),
        severity,
        title: format!("{kind} on {exchange}"),
        description: "detector said so".into(),
        metrics: BTreeMap::from([("p50_ms".to_string(), 850.0)]),
        first_seen_ms: 1_000,
        last_seen_ms: 1_000,
        occurrences: 1,
        state: AlertState::Firing,
        state_by: None,
        state_at_ms: 1_000,
        resolved_at_ms: None,
        delivery: BTreeMap::new(),
        triage: None,
        incident: None,
        episode_start_ms: None,
    }
}

/// A snapshot with binance/book polled `n` times (`failed` of them timeouts)
/// and the breaker in `breaker`.
fn snapshot(n: u64, failed: u64, breaker: BreakerState, open: &[Alert]) -> Snapshot {
    let mut st = State::new();
    st.apply(&Event::Watching {
        id: EndpointId::new("binance", "book"),
        exchange_kind: ExchangeKind::Binance,
        kind: EndpointKind::Book,
        url: "http://user:secret@127.0.0.1:9/api?token=abc".into(),
        interval_ms: 1000,
    });
    for i in 0..n {
        st.apply(&Event::Sample(Sample {
            id: EndpointId::new("binance", "book"),
            at_ms: 1_000 + i as i64,
            latency_us: 20_000,
            status: Some(200),
            outcome: if i < failed {
                Outcome::Timeout
            } else {
                Outcome::Ok
            },
            summary: None,
            price: None,
            exchange_ts_ms: None,
            signal: None,
        }));
    }
    if breaker != BreakerState::Closed {
        st.apply(&Event::BreakerChanged {
            id: EndpointId::new("binance", "book"),
            at_ms: 5_000,
            transition: Transition {
                from: BreakerState::Closed,
                to: breaker,
                reason: "5 consecutive failures".into(),
                open_until_ms: Some(35_000),
            },
        });
    }
    for a in open {
        st.apply(&Event::AlertChanged { alert: a.clone() });
    }
    st.snapshot()
}

fn decide(a: &Alert, snap: &Snapshot) -> rules::Decision {
    rules::decide(&AlertContext::build(a, snap))
}

#[test]
fn a_ban_is_level_5_and_needs_a_human() {
    let a = alert("binance", Some("book"), "ban", Severity::Emergency);
    let t = rules::triage(
        &AlertContext::build(&a, &snapshot(10, 0, BreakerState::Closed, &[])),
        7,
        None,
    );
    assert_eq!(t.source, TriageSource::Rules);
    assert_eq!(t.escalation, 5);
    assert!(t.requires_human);
    assert!(!t.auto_resolve);
    assert!(t.note.starts_with("rule ban:"), "{}", t.note);
    assert!(!t.suggested_actions.is_empty());
    assert_eq!(t.at_ms, 7);
    assert_eq!(t.cost_usd, 0.0);
}

#[test]
fn a_hung_request_is_level_2_once_and_needs_a_human_when_it_repeats() {
    let mut a = alert("binance", Some("book"), "hung", Severity::Warning);
    a.metrics.insert("in_flight_ms".into(), 500.0);
    let snap = snapshot(20, 0, BreakerState::Closed, &[]);
    let d = decide(&a, &snap);
    assert_eq!(d.rule, "hung");
    assert_eq!(
        (d.escalation, d.requires_human, d.auto_resolve),
        (2, false, true)
    );
    assert!(d.why.contains("500 ms"), "{}", d.why);
    a.occurrences = 3;
    let d = decide(&a, &snap);
    assert_eq!(
        (d.escalation, d.requires_human, d.auto_resolve),
        (3, true, false)
    );
}

#[test]
fn a_single_latency_spike_with_the_breaker_closed_is_level_1() {
    let a = alert("binance", Some("book"), "latency", Severity::Warning);
    let d = decide(&a, &snapshot(20, 0, BreakerState::Closed, &[]));
    assert_eq!(d.rule, "latency_spike");
    assert_eq!(d.escalation, 1);
    assert!(!d.requires_human);
    assert!(d.auto_resolve);
}

#[test]
fn repeated_latency_escalates() {
    let mut a = alert("binance", Some("book"), "latency", Severity::Warning);
    a.occurrences = 6;
    let d = decide(&a, &snapshot(20, 0, BreakerState::Closed, &[]));
    assert_eq!(d.rule, "latency_repeated");
    assert_eq!(d.escalation, 3);
    assert!(d.requires_human);
    assert!(!d.auto_resolve);
}

#[test]
fn latency_with_the_breaker_open_is_an_outage() {
    let a = alert("binance", Some("book"), "latency", Severity::Warning);
    let d = decide(&a, &snapshot(20, 10, BreakerState::Open, &[]));
    assert_eq!(d.rule, "breaker_open");
    assert_eq!(d.escalation, 4);
    assert!(d.requires_human);
}

#[test]
fn breaker_open_alert_is_critical() {
    let a = alert("binance", Some("book"), "breaker_open", Severity::Critical);
    let d = decide(&a, &snapshot(20, 10, BreakerState::Open, &[]));
    assert_eq!(d.rule, "breaker_open");
    assert_eq!(d.escalation, 4);
    assert!(d.requires_human);
    assert!(!d.auto_resolve);
}

#[test]
fn garbage_payload_once_is_noise_repeated_needs_a_human() {
    let snap = snapshot(20, 0, BreakerState::Closed, &[]);
    let mut a = alert(
        "binance",
        Some("book"),
        "payload:crossed_book",
        Severity::Warning,
    );
    let once = decide(&a, &snap);
    assert_eq!(once.rule, "payload");
    assert_eq!(once.escalation, 2);
    assert!(!once.requires_human);
    assert!(once.why.contains("crossed_book"), "{}", once.why);
    a.occurrences = 4;
    let again = decide(&a, &snap);
    assert_eq!(again.escalation, 3);
    assert!(again.requires_human);
}

#[test]
fn stale_payload_is_stale_data() {
    let a = alert("binance", Some("book"), "payload:stale", Severity::Warning);
    let d = decide(&a, &snapshot(5, 0, BreakerState::Closed, &[]));
    assert_eq!(d.rule, "stale_data");
    assert!(d.requires_human);
}

#[test]
fn rate_limit_pressure_versus_rejections() {
    let snap = snapshot(5, 0, BreakerState::Closed, &[]);
    let warn = decide(
        &alert("binance", Some("book"), "rate_limit", Severity::Warning),
        &snap,
    );
    assert_eq!(
        (warn.rule, warn.escalation, warn.requires_human),
        ("rate_limit", 2, false)
    );
    let crit = decide(
        &alert("binance", Some("book"), "rate_limit", Severity::Critical),
        &snap,
    );
    assert_eq!((crit.escalation, crit.requires_human), (4, true));
}

#[test]
fn error_rate_reads_the_endpoint_figures() {
    let a = alert("binance", Some("book"), "error_rate", Severity::Warning);
    let flaky = decide(&a, &snapshot(10, 2, BreakerState::Closed, &[]));
    assert_eq!((flaky.escalation, flaky.requires_human), (2, false));
    assert!(flaky.why.contains("20%"), "{}", flaky.why);
    let down = decide(&a, &snapshot(10, 8, BreakerState::Closed, &[]));
    assert_eq!((down.escalation, down.requires_human), (4, true));
    assert!(down.why.contains("80%"), "{}", down.why);
}

#[test]
fn a_cdn_block_is_blocked_with_egress_advice_not_a_ban_or_an_outage() {
    let mut a = alert("bybit", Some("book"), "error_rate", Severity::Critical);
    a.metrics = BTreeMap::from([
        ("error_rate".to_string(), 1.0),
        ("class_blocked".to_string(), 9.0),
        ("class_timeout".to_string(), 1.0),
    ]);
    let d = decide(&a, &snapshot(10, 0, BreakerState::Closed, &[]));
    assert_eq!(d.rule, "blocked");
    assert!(
        d.summary
            .contains("blocked by the exchange's CDN for this region/IP"),
        "{}",
        d.summary
    );
    let actions = d.suggested_actions.join(" | ");
    assert!(actions.contains("egress IP"), "{actions}");
    assert!(!actions.contains("Reduce polling"), "{actions}");
    assert!(!d.likely_cause.contains("banned"), "{}", d.likely_cause);
    // Mostly other failures: the usual error-rate rule.
    a.metrics.insert("class_server_error".to_string(), 20.0);
    assert_eq!(
        decide(&a, &snapshot(10, 0, BreakerState::Closed, &[])).rule,
        "error_rate"
    );
}

#[test]
fn refused_requests_are_ours_and_exchange_faults_are_theirs() {
    let mut a = alert("binance", Some("book"), "error_rate", Severity::Critical);
    a.metrics = BTreeMap::from([("class_client_error".to_string(), 5.0)]);
    let ours = decide(&a, &snapshot(10, 0, BreakerState::Closed, &[]));
    assert_eq!(ours.rule, "error_rate");
    assert!(
        ours.likely_cause.contains("refuses our request"),
        "{}",
        ours.likely_cause
    );
    a.metrics = BTreeMap::from([("class_server_error".to_string(), 5.0)]);
    let theirs = decide(&a, &snapshot(10, 8, BreakerState::Closed, &[]));
    assert!(
        !theirs.likely_cause.contains("our request"),
        "{}",
        theirs.likely_cause
    );
    assert!(
        theirs.likely_cause.contains("outage"),
        "{}",
        theirs.likely_cause
    );
}

#[test]
fn many_open_alerts_on_the_exchange_raise_escalation() {
    let others: Vec<Alert> = ["ticker", "trades", "time"]
        .iter()
        .map(|ep| alert("binance", Some(ep), "error_rate", Severity::Warning))
        .collect();
    let a = alert("binance", Some("book"), "latency", Severity::Warning);
    let d = decide(&a, &snapshot(20, 0, BreakerState::Closed, &others));
    assert_eq!(d.rule, "latency_spike");
    assert_eq!(d.escalation, 2);
    assert!(d.why.contains("3 other alerts"), "{}", d.why);
    // Alerts on another exchange and resolved ones do not count.
    let mut unrelated: Vec<Alert> = ["a", "b", "c"]
        .iter()
        .map(|ep| alert("okx", Some(ep), "error_rate", Severity::Warning))
        .collect();
    let mut resolved = alert("binance", Some("ticker"), "stale", Severity::Warning);
    resolved.state = AlertState::Resolved;
    unrelated.push(resolved);
    let d = decide(&a, &snapshot(20, 0, BreakerState::Closed, &unrelated));
    assert_eq!(d.escalation, 1);
}

#[test]
fn resolved_alerts_and_unknown_kinds() {
    let snap = Snapshot::default();
    let mut a = alert("binance", Some("book"), "ban", Severity::Emergency);
    a.state = AlertState::Resolved;
    let d = decide(&a, &snap);
    assert_eq!(
        (d.rule, d.escalation, d.auto_resolve),
        ("resolved", 1, true)
    );
    // An alert kind no rule names (an unknown one cannot be built any more:
    // kinds are typed) falls back to its severity.
    let odd = alert("kraken", Some("time"), "no_data", Severity::Critical);
    let d = decide(&odd, &snap);
    assert_eq!(d.rule, "severity");
    assert_eq!((d.escalation, d.requires_human), (4, true));
}

#[test]
fn rules_are_deterministic_and_mark_the_fallback_reason() {
    let snap = snapshot(20, 3, BreakerState::Closed, &[]);
    let a = alert("binance", Some("book"), "error_rate", Severity::Warning);
    let ctx = AlertContext::build(&a, &snap);
    assert_eq!(rules::triage(&ctx, 5, None), rules::triage(&ctx, 5, None));
    let t = rules::triage(&ctx, 5, Some("HTTP 500 after 3 attempts"));
    assert_eq!(t.source, TriageSource::Rules);
    assert!(
        t.note
            .starts_with("model not used (HTTP 500 after 3 attempts); rule error_rate:"),
        "{}",
        t.note
    );
}

#[test]
fn context_carries_endpoint_figures_but_no_url() {
    let open = vec![alert("binance", Some("ticker"), "stale", Severity::Warning)];
    let snap = snapshot(10, 5, BreakerState::Open, &open);
    let a = alert("binance", Some("book"), "breaker_open", Severity::Critical);
    let ctx = AlertContext::build(&a, &snap);
    let ep = ctx.endpoint.as_ref().expect("endpoint facts");
    let p50 = ep.latency_p50_ms.expect("p50");
    assert!((p50 - 20.0).abs() < 0.1, "{p50}");
    assert!((ep.recent_error_rate - 0.5).abs() < 1e-9);
    assert_eq!(ep.breaker.state, BreakerState::Open);
    assert_eq!(ep.last_outcome.as_deref(), Some("ok"));
    assert_eq!(ctx.related_open_alerts.len(), 1);
    assert_eq!(ctx.exchange.as_ref().map(|e| e.open_breakers), Some(1));
    let json = serde_json::to_string(&ctx).expect("serializable");
    assert!(!json.contains("secret"), "{json}");
    assert!(!json.contains("token"), "{json}");
    assert!(!json.contains("127.0.0.1"), "{json}");
}

const EXCHANGE: &str = r#"
[[exchanges]]
name = "binance"
kind = "binance"
base_url = "http://127.0.0.1:9/binance"

[[exchanges.endpoints]]
name = "book"
kind = "book"
"#;

#[test]
fn triage_config_defaults_to_rules_only() {
    let cfg = config::parse("cfg.toml", EXCHANGE).expect("valid");
    assert_eq!(cfg.triage, TriageSettings::default());
    assert!(cfg.triage.enabled);
    assert!(!cfg.triage.uses_model());
    assert_eq!(
        cfg.triage.auto,
        vec![Severity::Critical, Severity::Emergency]
    );
}

#[test]
fn triage_config_reads_every_field() {
    let text = format!(
        r#"
[triage]
enabled = true
base_url = "http://127.0.0.1:11434/v1"
model = "llama3.1:8b"
api_key_env = "EXWATCH_LLM_KEY"
timeout = "15s"
max_tokens = 1000
temperature = 0.2
price_in_per_mtok = 0.15
price_out_per_mtok = 0.6
auto = ["warning", "critical", "emergency"]
batch_window = "500ms"
max_batch = 5
queue = 16
{EXCHANGE}"#
    );
    let cfg = config::parse("cfg.toml", &text).expect("valid");
    let t = &cfg.triage;
    assert!(t.uses_model());
    assert_eq!(t.model, "llama3.1:8b");
    assert_eq!(t.timeout, std::time::Duration::from_secs(15));
    assert_eq!(t.batch_window, std::time::Duration::from_millis(500));
    assert_eq!((t.max_tokens, t.max_batch, t.queue), (1000, 5, 16));
    assert_eq!(t.auto.len(), 3);
    assert!((t.cost_usd(1_000_000, 1_000_000) - 0.75).abs() < 1e-9);
}

#[test]
fn triage_config_errors_are_positioned_and_explained() {
    let text = format!(
        r#"
[triage]
base_url = "http://llm.example.com/v1"
api_key_env = "sk-live-123"
max_batch = 0
temperature = 3.0
{EXCHANGE}"#
    );
    let errs = match config::parse("cfg.toml", &text) {
        Ok(_) => panic!("expected errors"),
        Err(e) => e.0,
    };
    let fields: Vec<&str> = errs.iter().map(|e| e.field.as_str()).collect();
    for f in [
        "triage.base_url",
        "triage.model",
        "triage.api_key_env",
        "triage.max_batch",
        "triage.temperature",
    ] {
        assert!(fields.contains(&f), "{f} missing from {errs:?}");
    }
    let url = errs
        .iter()
        .find(|e| e.field == "triage.base_url")
        .expect("base_url error");
    assert_eq!(url.line, 3);
    assert!(url.message.contains("clear text"), "{}", url.message);
    // The value given where a name was expected is not echoed back.
    assert!(!errs.iter().any(|e| e.message.contains("sk-live-123")));
}

#[test]
fn debug_output_hides_credentials_in_the_base_url() {
    let s = TriageSettings {
        base_url: Some("https://user:hunter2@llm.example.com/v1?key=abc".into()),
        ..TriageSettings::default()
    };
    let dbg = format!("{s:?}");
    assert!(!dbg.contains("hunter2"), "{dbg}");
    assert!(!dbg.contains("key=abc"), "{dbg}");
    assert!(dbg.contains("llm.example.com"), "{dbg}");
}

mod answers {
    use exwatch::alert::triage::prompt::{self, AnswerError};
    use serde_json::json;

    fn entry(fp: &str) -> serde_json::Value {
        json!({
            "fingerprint": fp, "escalation": 3, "requires_human": false,
            "summary": "s", "likely_cause": "c", "suggested_actions": ["a"], "auto_resolve": true
        })
    }

    #[test]
    fn strict_schema_requires_every_property_and_no_others() {
        let schema = prompt::answer_schema();
        let item = &schema["properties"]["triage"]["items"];
        let props: Vec<&String> = item["properties"]
            .as_object()
            .expect("properties")
            .keys()
            .collect();
        let required: Vec<&str> = item["required"]
            .as_array()
            .expect("required")
            .iter()
            .filter_map(|v| v.as_str())
            .collect();
        assert_eq!(props.len(), required.len());
        for p in props {
            assert!(required.contains(&p.as_str()), "{p} not required");
        }
        assert_eq!(item["additionalProperties"], false);
        assert_eq!(schema["additionalProperties"], false);
        assert_eq!(prompt::response_format()["json_schema"]["strict"], true);
    }

    #[test]
    fn answers_are_validated_strictly() {
        let asked = vec!["a/b/c".to_string(), "d/e/f".to_string()];
        let ok = json!({"triage": [entry("a/b/c")]}).to_string();
        let got = prompt::parse_answer(&ok, &asked).expect("valid");
        assert_eq!(got.len(), 1);
        assert_eq!(got["a/b/c"].escalation, 3);

        assert!(matches!(
            prompt::parse_answer("```json\n{}\n```", &asked),
            Err(AnswerError::InvalidJson(_))
        ));
        let dup = json!({"triage": [entry("a/b/c"), entry("a/b/c")]}).to_string();
        let mut extra = entry("a/b/c");
        extra["confidence"] = json!(0.9);
        let mut zero = entry("a/b/c");
        zero["escalation"] = json!(0);
        let mut blank = entry("a/b/c");
        blank["summary"] = json!("  ");
        for bad in [
            dup,
            json!({"triage": [extra]}).to_string(),
            json!({"triage": [zero]}).to_string(),
            json!({"triage": [blank]}).to_string(),
            json!({"triage": [entry("x/y/z")]}).to_string(),
            json!([entry("a/b/c")]).to_string(),
        ] {
            assert!(
                matches!(
                    prompt::parse_answer(&bad, &asked),
                    Err(AnswerError::Schema(_))
                ),
                "{bad}"
            );
        }
    }
}

mod reducer {
    use super::alert;
    use exwatch::alert::triage::{AlertContext, rules};
    use exwatch::model::Event;
    use exwatch::model::TriageTotals;
    use exwatch::model::{AlertState, Severity};
    use exwatch::state::State;

    #[test]
    fn usage_events_round_trip_and_reach_the_snapshot() {
        let ev = Event::TriageUsage(TriageTotals {
            calls: 3,
            tokens_in: 4_000,
            tokens_out: 600,
            cost_usd: 0.001,
            ..TriageTotals::default()
        });
        let line = serde_json::to_string(&ev).expect("serialize");
        assert!(line.contains("\"event\":\"triage_usage\""), "{line}");
        let back: Event = serde_json::from_str(&line).expect("deserialize");
        assert_eq!(back, ev);
        let mut st = State::new();
        st.apply(&back);
        assert_eq!(st.snapshot().triage.tokens_in, 4_000);
    }

    #[test]
    fn an_update_without_triage_keeps_the_episodes_triage() {
        let mut st = State::new();
        let mut a = alert("binance", Some("book"), "ban", Severity::Emergency);
        let t = rules::triage(&AlertContext::bare(&a), 9, None);
        a.triage = Some(t.clone());
        st.apply(&Event::AlertChanged { alert: a.clone() });
        // The engine re-fires its own copy, which has no triage.
        let mut refire = a.clone();
        refire.triage = None;
        refire.occurrences = 2;
        st.apply(&Event::AlertChanged {
            alert: refire.clone(),
        });
        let snap = st.snapshot();
        assert_eq!(snap.alerts[0].occurrences, 2);
        assert_eq!(snap.alerts[0].triage.as_ref(), Some(&t));
        // A new episode starts without the old triage.
        let mut again = refire;
        again.first_seen_ms = 50_000;
        again.state = AlertState::Firing;
        st.apply(&Event::AlertChanged { alert: again });
        assert!(st.snapshot().alerts[0].triage.is_none());
    }
}

#[test]
fn the_fallback_summary_does_not_repeat_where_the_title_already_says() {
    let mut a = alert("okx", None, "outage", Severity::Emergency);
    a.title = "okx: exchange-wide outage (3 of 3 endpoints down)".into();
    let d = decide(&a, &snapshot(5, 0, BreakerState::Closed, &[]));
    assert_eq!(d.rule, "severity");
    assert_eq!(
        d.summary,
        "okx: exchange-wide outage (3 of 3 endpoints down)"
    );
    // A title that does not say where gets it in front.
    a.title = "exchange-wide outage".into();
    let d = decide(&a, &snapshot(5, 0, BreakerState::Closed, &[]));
    assert_eq!(d.summary, "okx: exchange-wide outage");
}
