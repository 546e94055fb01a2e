//! Triage through an OpenAI-compatible API, against a small chat-completions
//! server started on 127.0.0.1 by each test: good answers, retries, every
//! fallback to rules, batching, usage and the bounded queue.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed unwrap is a failed test

use axum::Router;
use axum::extract::State as AxState;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use exwatch::alert::AlertSettings;
use exwatch::alert::engine::Engine;
use exwatch::alert::triage::{self, ApiKey, Requested, TriageHandle, TriageSettings, prompt};
use exwatch::model::TriageTotals;
use exwatch::model::{Alert, AlertState, Severity, TriageSource};
use exwatch::model::{EndpointId, EndpointKind, ExchangeKind};
use exwatch::model::{Event, Outcome, Sample};
use exwatch::state::{Snapshot, State};
use serde_json::{Value, json};
use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

const KEY: &str = "sk-test-0123456789abcdef";
/// Guards against a hung test only; never a speed assertion.
const PATIENCE: Duration = Duration::from_secs(30);
/// How the rules' answer shown while the model is asked starts its note.
const PROVISIONAL: &str = "rules, shown while model";

#[derive(Clone)]
enum Reply {
    Json(u16, Value),
    /// Never answers within any test's timeout.
    Hang,
}

#[derive(Debug, Clone)]
struct Captured {
    auth: Option<String>,
    raw: String,
    body: Value,
}

#[derive(Clone, Default)]
struct Shared {
    script: Arc<Mutex<VecDeque<Reply>>>,
    last: Arc<Mutex<Option<Reply>>>,
    calls: Arc<Mutex<Vec<Captured>>>,
}

struct Server {
    base_url: String,
    shared: Shared,
}

impl Server {
    fn calls(&self) -> Vec<Captured> {
        self.shared.calls.lock().expect("calls").clone()
    }
}

async fn handler(AxState(s): AxState<Shared>, headers: HeaderMap, raw: String) -> Response {
    s.calls.lock().expect("calls").push(Captured {
        auth: headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string),
        body: serde_json::from_str(&raw).unwrap_or(Value::Null),
        raw,
    });
    let reply = {
        let next = s.script.lock().expect("script").pop_front();
        let mut last = s.last.lock().expect("last");
        match next {
            Some(r) => {
                *last = Some(r.clone());
                r
            }
            None => last.clone().unwrap_or(Reply::Hang),
        }
    };
    match reply {
        Reply::Json(status, v) => (
            StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            [("content-type", "application/json")],
            v.to_string(),
        )
            .into_response(),
        Reply::Hang => {
            tokio::time::sleep(Duration::from_secs(120)).await;
            StatusCode::GATEWAY_TIMEOUT.into_response()
        }
    }
}

/// Serve `replies` in order, then repeat the last one.
async fn server(replies: Vec<Reply>) -> Server {
    let shared = Shared {
        script: Arc::new(Mutex::new(replies.into())),
        ..Shared::default()
    };
    let app = Router::new()
        .route("/v1/chat/completions", post(handler))
        .with_state(shared.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Server {
        base_url: format!("http://{addr}/v1"),
        shared,
    }
}

fn completion(content: &str, finish: &str, tokens_in: u64, tokens_out: u64) -> Value {
    json!({
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "model": "test-model",
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": content},
            "finish_reason": finish
        }],
        "usage": {
            "prompt_tokens": tokens_in,
            "completion_tokens": tokens_out,
            "total_tokens": tokens_in + tokens_out
        }
    })
}

fn verdict(fp: &str, escalation: u8) -> Value {
    json!({
        "fingerprint": fp,
        "escalation": escalation,
        "requires_human": true,
        "summary": format!("model says {fp} matters"),
        "likely_cause": "exchange overloaded",
        "suggested_actions": ["check the status page", "warn the desk"],
        "auto_resolve": false
    })
}

fn good(fps: &[&str]) -> Reply {
    let answer = json!({"triage": fps.iter().map(|f| verdict(f, 4)).collect::<Vec<_>>()});
    Reply::Json(200, completion(&answer.to_string(), "stop", 1000, 200))
}

fn error(status: u16, code: &str) -> Reply {
    Reply::Json(
        status,
        json!({"error": {"message": format!("{code} happened"), "type": code, "code": code}}),
    )
}

fn alert(endpoint: &str, kind: &str, severity: Severity) -> Alert {
    Alert {
        fingerprint: Alert::fingerprint_of("binance", Some(endpoint), kind),
        exchange: "binance".into(),
        endpoint: Some(endpoint.into()),
        kind: kind.parse().unwrap(),
        severity,
        title: format!("{kind} on binance/{endpoint}"),
        description: "p99 above threshold".into(),
        metrics: BTreeMap::from([("p99_ms".to_string(), 1200.0)]),
        first_seen_ms: 1_000,
        last_seen_ms: 1_000,
        occurrences: 1,
        state: AlertState::Firing,
        state_by: None,
        state_at_ms: 1_000,
        resolved_at_ms: None,
        delivery: BTreeMap::from([(
            "slack".to_string(),
            exwatch::model::Delivery::Failed {
                error: "POST https://hooks.slack.com/services/T000/B000/XXXX failed".into(),
            },
        )]),
        triage: None,
        incident: None,
        episode_start_ms: None,
    }
}

fn settings(base_url: &str) -> TriageSettings {
    TriageSettings {
        base_url: Some(base_url.into()),
        model: "test-model".into(),
        api_key_env: Some("EXWATCH_TEST_LLM_KEY".into()),
        timeout: Duration::from_secs(3),
        price_in_per_mtok: 1.0,
        price_out_per_mtok: 2.0,
        batch_window: Duration::ZERO,
        ..TriageSettings::default()
    }
}

struct Rig {
    handle: TriageHandle,
    events: mpsc::Receiver<Event>,
    snapshots: watch::Sender<Arc<Snapshot>>,
    state: State,
    /// The real alert engine: the one author of alert state, which folds
    /// each `AlertTriaged` result into the alert it holds.
    engine: Engine,
    _shutdown: tokio_util::sync::DropGuard,
}

fn rig(s: TriageSettings) -> Rig {
    rig_with(s, Ok(Some(ApiKey::new(KEY))))
}

fn rig_with(s: TriageSettings, key: Result<Option<ApiKey>, String>) -> Rig {
    let (tx, rx) = mpsc::channel(256);
    let (snap_tx, snap_rx) = watch::channel(Arc::new(Snapshot::default()));
    let shutdown = CancellationToken::new();
    let handle = triage::spawn_with_key(
        s,
        key,
        reqwest::Client::new(),
        tx,
        snap_rx,
        shutdown.clone(),
    );
    Rig {
        handle,
        events: rx,
        snapshots: snap_tx,
        state: State::new(),
        engine: Engine::new(AlertSettings::default()),
        _shutdown: shutdown.drop_guard(),
    }
}

impl Rig {
    /// Ask for triage; the engine learns the alerts first (as if they had fired).
    fn request(&mut self, alerts: Vec<Alert>, asked: bool) -> Requested {
        let new: Vec<Alert> = alerts
            .iter()
            .filter(|a| self.engine.alert(&a.fingerprint).is_none())
            .cloned()
            .collect();
        self.engine.restore(new);
        self.handle.request(alerts, asked)
    }

    /// The next alert the engine emits with a triage folded in; every event
    /// also goes through the reducer.
    /// The next final triage: the rules' answer shown while the model is
    /// asked is skipped (see [`Rig::next_any`]).
    async fn next_triaged(&mut self) -> Alert {
        loop {
            let a = self.next_any().await;
            if a.triage
                .as_ref()
                .is_some_and(|t| t.note.starts_with(PROVISIONAL))
            {
                continue;
            }
            return a;
        }
    }

    /// The next alert the engine re-emits with a triage, whichever it is.
    async fn next_any(&mut self) -> Alert {
        loop {
            let ev = tokio::time::timeout(PATIENCE, self.events.recv())
                .await
                .expect("a triage result arrives")
                .expect("event channel open");
            self.state.apply(&ev);
            if !matches!(ev, Event::AlertTriaged { .. }) {
                continue;
            }
            for out in self.engine.on_event(&ev, 10_000) {
                self.state.apply(&out);
                if let Event::AlertChanged { alert } = out {
                    assert!(alert.triage.is_some(), "emitted without triage: {alert:?}");
                    return alert;
                }
            }
        }
    }

    fn totals(&self) -> TriageTotals {
        self.state.snapshot().triage
    }
}

/// A snapshot in which binance/book has latency figures and `open` is an open alert.
fn snapshot_with(open: &[Alert]) -> Snapshot {
    let mut st = State::new();
    st.apply(&Event::Watching {
        id: EndpointId::new("binance", "book"),
        exchange_kind: ExchangeKind::Binance,
        kind: EndpointKind::Book,
        url: "http://127.0.0.1:9/api/v3/depth?symbol=BTCUSDT".into(),
        interval_ms: 1000,
    });
    for i in 0..10 {
        st.apply(&Event::Sample(Sample {
            id: EndpointId::new("binance", "book"),
            at_ms: 900 + i,
            latency_us: 35_000,
            status: Some(200),
            outcome: Outcome::Ok,
            summary: None,
            price: None,
            exchange_ts_ms: None,
            signal: None,
        }));
    }
    for a in open {
        st.apply(&Event::AlertChanged { alert: a.clone() });
    }
    st.snapshot()
}

#[tokio::test]
async fn a_good_answer_is_parsed_attached_and_counted() {
    let a = alert("book", "latency", Severity::Critical);
    let srv = server(vec![good(&[&a.fingerprint])]).await;
    let mut rig = rig(settings(&srv.base_url));
    let other = alert("ticker", "error_rate", Severity::Warning);
    rig.snapshots
        .send_replace(Arc::new(snapshot_with(std::slice::from_ref(&other))));

    // Critical is in `auto`: triaged without being asked.
    assert_eq!(rig.request(vec![a.clone()], false), Requested::Queued(1));
    let got = rig.next_triaged().await;
    let t = got.triage.expect("triage");
    assert_eq!(t.source, TriageSource::Model);
    assert_eq!(t.escalation, 4);
    assert!(t.requires_human);
    assert_eq!(t.summary, format!("model says {} matters", a.fingerprint));
    assert_eq!(t.suggested_actions.len(), 2);
    assert!(t.note.contains("test-model"), "{}", t.note);
    // 1000 in at $1/M + 200 out at $2/M.
    assert!((t.cost_usd - 0.0014).abs() < 1e-12, "{}", t.cost_usd);

    let calls = srv.calls();
    assert_eq!(calls.len(), 1);
    let c = &calls[0];
    assert_eq!(c.auth.as_deref(), Some(format!("Bearer {KEY}").as_str()));
    assert!(!c.raw.contains(KEY), "the key must not be in the body");
    assert!(!c.raw.contains("hooks.slack.com"), "no webhook URLs");
    assert!(!c.raw.contains("127.0.0.1"), "no endpoint URLs");
    assert_eq!(c.body["model"], "test-model");
    let rf = &c.body["response_format"];
    assert_eq!(rf["type"], "json_schema");
    assert_eq!(rf["json_schema"]["strict"], true);
    assert_eq!(rf["json_schema"]["name"], prompt::SCHEMA_NAME);
    assert_eq!(c.body["messages"][0]["role"], "system");
    let user = c.body["messages"][1]["content"]
        .as_str()
        .expect("user text");
    assert!(user.contains(&a.fingerprint), "{user}");
    assert!(user.contains("latency_p50_ms"), "endpoint figures: {user}");
    assert!(user.contains(&other.fingerprint), "related alerts: {user}");

    // Usage reaches the snapshot through the reducer.
    let totals = rig.totals();
    assert_eq!(
        (totals.calls, totals.tokens_in, totals.tokens_out),
        (1, 1000, 200)
    );
    assert!((totals.cost_usd - 0.0014).abs() < 1e-12);
    assert_eq!(totals.by_model, 1);
    assert_eq!(rig.handle.totals(), totals);
}

#[tokio::test]
async fn rate_limited_then_success_is_retried() {
    let a = alert("book", "latency", Severity::Critical);
    let srv = server(vec![
        error(429, "rate_limit_exceeded"),
        good(&[&a.fingerprint]),
    ])
    .await;
    let mut rig = rig(settings(&srv.base_url));
    rig.request(vec![a], true);
    let t = rig.next_triaged().await.triage.expect("triage");
    assert_eq!(t.source, TriageSource::Model, "{}", t.note);
    assert!(t.note.contains("2 attempt(s)"), "{}", t.note);
    assert_eq!(srv.calls().len(), 2);
}

#[tokio::test]
async fn timeouts_conflicts_and_unavailable_are_retried() {
    let a = alert("book", "latency", Severity::Critical);
    let srv = server(vec![
        error(408, "timeout"),
        error(409, "conflict"),
        error(503, "overloaded"),
        good(&[&a.fingerprint]),
    ])
    .await;
    let mut rig = rig(settings(&srv.base_url));
    rig.request(vec![a], true);
    let t = rig.next_triaged().await.triage.expect("triage");
    assert_eq!(t.source, TriageSource::Model, "{}", t.note);
    assert!(t.note.contains("4 attempt(s)"), "{}", t.note);
    assert_eq!(srv.calls().len(), 4);
}

#[tokio::test]
async fn insufficient_quota_is_not_retried() {
    let a = alert("book", "latency", Severity::Critical);
    let srv = server(vec![
        error(429, "insufficient_quota"),
        good(&[&a.fingerprint]),
    ])
    .await;
    let mut rig = rig(settings(&srv.base_url));
    rig.request(vec![a], true);
    let t = rig.next_triaged().await.triage.expect("triage");
    assert_eq!(t.source, TriageSource::Rules);
    assert!(t.note.contains("insufficient_quota"), "{}", t.note);
    assert_eq!(srv.calls().len(), 1);
    assert_eq!(rig.handle.totals().failed_calls, 1);
}

#[tokio::test]
async fn server_errors_are_retried_then_rules_answer() {
    let a = alert("book", "ban", Severity::Emergency);
    let srv = server(vec![error(500, "server_error")]).await;
    let mut s = settings(&srv.base_url);
    s.timeout = Duration::from_millis(1500);
    let mut rig = rig(s);
    rig.request(vec![a], true);
    let t = rig.next_triaged().await.triage.expect("triage");
    assert_eq!(t.source, TriageSource::Rules);
    assert!(t.note.contains("HTTP 500"), "{}", t.note);
    assert!(t.note.contains("rule ban"), "{}", t.note);
    assert_eq!(t.escalation, 5);
    assert!(srv.calls().len() >= 2, "500 is retried");
}

#[tokio::test]
async fn a_client_error_is_not_retried_and_hides_auth_details() {
    let a = alert("book", "latency", Severity::Critical);
    let srv = server(vec![Reply::Json(
        401,
        json!({"error": {"message": format!("Incorrect API key provided: {KEY}"), "code": "invalid_api_key"}}),
    )])
    .await;
    let mut rig = rig(settings(&srv.base_url));
    rig.request(vec![a], true);
    let t = rig.next_triaged().await.triage.expect("triage");
    assert_eq!(t.source, TriageSource::Rules);
    assert!(t.note.contains("HTTP 401"), "{}", t.note);
    assert!(!t.note.contains(KEY), "{}", t.note);
    assert_eq!(srv.calls().len(), 1);
}

#[tokio::test]
async fn a_timeout_falls_back_to_rules() {
    let a = alert("book", "latency", Severity::Critical);
    let srv = server(vec![Reply::Hang]).await;
    let mut s = settings(&srv.base_url);
    s.timeout = Duration::from_millis(400);
    let mut rig = rig(s);
    rig.request(vec![a], true);
    let t = rig.next_triaged().await.triage.expect("triage");
    assert_eq!(t.source, TriageSource::Rules);
    assert!(t.note.contains("no answer within 400 ms"), "{}", t.note);
}

#[tokio::test]
async fn invalid_json_falls_back_to_rules() {
    let a = alert("book", "latency", Severity::Critical);
    let srv = server(vec![Reply::Json(
        200,
        completion("{\"triage\": [ oops", "stop", 800, 20),
    )])
    .await;
    let mut rig = rig(settings(&srv.base_url));
    rig.request(vec![a], true);
    let t = rig.next_triaged().await.triage.expect("triage");
    assert_eq!(t.source, TriageSource::Rules);
    assert!(t.note.contains("invalid JSON"), "{}", t.note);
    // The tokens were spent all the same.
    assert_eq!(rig.handle.totals().tokens_in, 800);
}

#[tokio::test]
async fn a_schema_mismatch_falls_back_to_rules() {
    let a = alert("book", "latency", Severity::Critical);
    let mut v = verdict(&a.fingerprint, 4);
    v["escalation"] = json!(9);
    let cases = [
        json!({"triage": [v]}).to_string(),
        json!({"triage": [{"fingerprint": a.fingerprint, "escalation": "high"}]}).to_string(),
        json!({"triage": [verdict("someone/else/kind", 2)]}).to_string(),
        json!({"verdicts": []}).to_string(),
    ];
    for content in cases {
        let srv = server(vec![Reply::Json(200, completion(&content, "stop", 10, 10))]).await;
        let mut rig = rig(settings(&srv.base_url));
        rig.request(vec![a.clone()], true);
        let t = rig.next_triaged().await.triage.expect("triage");
        assert_eq!(t.source, TriageSource::Rules, "{content}");
        assert!(t.note.contains("does not match the schema"), "{}", t.note);
    }
}

#[tokio::test]
async fn an_answer_cut_at_max_tokens_falls_back_to_rules() {
    let a = alert("book", "latency", Severity::Critical);
    let answer = json!({"triage": [verdict(&a.fingerprint, 3)]}).to_string();
    let srv = server(vec![Reply::Json(
        200,
        completion(&answer, "length", 900, 2048),
    )])
    .await;
    let mut rig = rig(settings(&srv.base_url));
    rig.request(vec![a], true);
    let t = rig.next_triaged().await.triage.expect("triage");
    assert_eq!(t.source, TriageSource::Rules);
    assert!(t.note.contains("finish_reason length"), "{}", t.note);
    assert_eq!(rig.handle.totals().tokens_out, 2048);
}

#[tokio::test]
async fn alerts_within_the_window_make_one_call() {
    let alerts = [
        alert("book", "latency", Severity::Critical),
        alert("ticker", "error_rate", Severity::Critical),
        alert("trades", "stale", Severity::Emergency),
    ];
    let fps: Vec<&str> = alerts.iter().map(|a| a.fingerprint.as_str()).collect();
    let srv = server(vec![good(&fps)]).await;
    let mut s = settings(&srv.base_url);
    s.batch_window = Duration::from_millis(500);
    let mut rig = rig(s);
    for a in &alerts {
        assert_eq!(rig.request(vec![a.clone()], false), Requested::Queued(1));
    }
    let mut got = Vec::new();
    for _ in 0..3 {
        got.push(rig.next_triaged().await);
    }
    assert_eq!(srv.calls().len(), 1, "one call for the batch");
    let user = srv.calls()[0].body["messages"][1]["content"]
        .as_str()
        .expect("user text")
        .to_string();
    for fp in &fps {
        assert!(user.contains(fp), "{fp} in {user}");
    }
    for a in &got {
        let t = a.triage.as_ref().expect("triage");
        assert_eq!(t.source, TriageSource::Model);
        assert!(t.note.contains("batch of 3"), "{}", t.note);
        // The call's cost is split among the batch.
        assert!((t.cost_usd - 0.0014 / 3.0).abs() < 1e-12, "{}", t.cost_usd);
    }
    let totals = rig.handle.totals();
    assert_eq!((totals.calls, totals.by_model), (1, 3));
}

#[tokio::test]
async fn an_alert_left_out_of_the_answer_gets_rules() {
    let a = alert("book", "latency", Severity::Critical);
    let b = alert("ticker", "ban", Severity::Emergency);
    let srv = server(vec![good(&[&a.fingerprint])]).await;
    let mut rig = rig(settings(&srv.base_url));
    rig.request(vec![a.clone(), b.clone()], true);
    let mut by_fp = BTreeMap::new();
    for _ in 0..2 {
        let got = rig.next_triaged().await;
        by_fp.insert(got.fingerprint.clone(), got.triage.expect("triage"));
    }
    assert_eq!(by_fp[&a.fingerprint].source, TriageSource::Model);
    let tb = &by_fp[&b.fingerprint];
    assert_eq!(tb.source, TriageSource::Rules);
    assert!(tb.note.contains("left this alert out"), "{}", tb.note);
}

#[tokio::test]
async fn an_unreachable_model_never_delays_the_request_and_rules_answer() {
    // A port that was just free and is closed now: connection refused.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let mut rig = rig(settings(&format!("http://127.0.0.1:{port}/v1")));
    let a = alert("book", "breaker_open", Severity::Critical);
    // request() is synchronous: it cannot wait on the network.
    assert_eq!(rig.request(vec![a.clone()], false), Requested::Queued(1));
    let got = rig.next_triaged().await;
    let t = got.triage.expect("triage");
    assert_eq!(t.source, TriageSource::Rules);
    assert!(t.note.contains("cannot reach the model"), "{}", t.note);
    assert_eq!(t.escalation, 4);
    assert_eq!(rig.handle.totals().failed_calls, 1);
}

#[tokio::test]
async fn a_full_queue_answers_with_rules_at_once() {
    let srv = server(vec![Reply::Hang]).await;
    let mut s = settings(&srv.base_url);
    s.queue = 1;
    s.max_batch = 1;
    s.timeout = Duration::from_secs(20);
    let mut rig = rig(s);
    let results: Vec<Requested> = ["a", "b", "c"]
        .iter()
        .map(|ep| rig.request(vec![alert(ep, "latency", Severity::Critical)], true))
        .collect();
    let overflowed = results
        .iter()
        .filter(|r| matches!(r, Requested::Overflowed(1)))
        .count();
    assert!(overflowed >= 1, "{results:?}");
    let t = rig.next_triaged().await.triage.expect("triage");
    assert_eq!(t.source, TriageSource::Rules);
    assert!(t.note.contains("queue full"), "{}", t.note);
    assert!(rig.handle.totals().overflows >= 1);
}

#[tokio::test]
async fn rules_only_mode_auto_filter_and_one_auto_triage_per_episode() {
    let mut rig = rig_with(TriageSettings::default(), Ok(None));
    assert_eq!(rig.handle.mode().to_string(), "rules");
    let warn = alert("book", "latency", Severity::Warning);
    // Warning is not in the default `auto`.
    assert_eq!(rig.request(vec![warn.clone()], false), Requested::Nothing);
    let crit = alert("book", "ban", Severity::Critical);
    rig.request(vec![crit.clone()], false);
    let mut refire = crit.clone();
    refire.occurrences = 2;
    refire.last_seen_ms = 2_000;
    rig.request(vec![refire], false);
    rig.request(vec![warn.clone()], true);
    let first = rig.next_triaged().await;
    assert_eq!(first.fingerprint, crit.fingerprint);
    let t = first.triage.expect("triage");
    assert_eq!(t.source, TriageSource::Rules);
    assert!(t.note.starts_with("rule ban:"), "{}", t.note);
    // The re-fire of the same episode was not triaged again; the asked one was.
    let second = rig.next_triaged().await;
    assert_eq!(second.fingerprint, warn.fingerprint);
    assert_eq!(rig.handle.totals().by_rules, 2);
}

#[tokio::test]
async fn a_late_triage_keeps_the_newer_state_of_the_alert() {
    let mut rig = rig_with(TriageSettings::default(), Ok(None));
    let a = alert("book", "latency", Severity::Critical);
    let mut acked = a.clone();
    acked.state = AlertState::Acknowledged;
    acked.state_by = Some("alice".into());
    acked.state_at_ms = 5_000;
    // The engine holds the acknowledged alert; triage was asked of the firing copy.
    rig.engine.restore(vec![acked.clone()]);
    rig.snapshots
        .send_replace(Arc::new(snapshot_with(&[acked])));
    rig.handle.request(vec![a], true);
    let got = rig.next_triaged().await;
    assert_eq!(got.state, AlertState::Acknowledged);
    assert_eq!(got.state_by.as_deref(), Some("alice"));
}

#[tokio::test]
async fn switched_off_does_nothing() {
    let srv = server(vec![Reply::Hang]).await;
    let mut s = settings(&srv.base_url);
    s.enabled = false;
    let mut rig = rig(s);
    assert_eq!(rig.handle.mode().to_string(), "off");
    let a = alert("book", "ban", Severity::Emergency);
    assert_eq!(rig.request(vec![a], true), Requested::Off);
    assert!(srv.calls().is_empty());
}

#[tokio::test]
async fn a_missing_key_variable_is_named_in_the_note() {
    let srv = server(vec![Reply::Hang]).await;
    let mut s = settings(&srv.base_url);
    s.api_key_env = Some("EXWATCH_TEST_SURELY_UNSET_KEY_VAR".into());
    let (tx, mut rx) = mpsc::channel(16);
    let (_snap_tx, snap_rx) = watch::channel(Arc::new(Snapshot::default()));
    let shutdown = CancellationToken::new();
    let handle = triage::spawn(s, reqwest::Client::new(), tx, snap_rx, shutdown.clone());
    assert!(
        handle
            .mode()
            .to_string()
            .contains("EXWATCH_TEST_SURELY_UNSET_KEY_VAR"),
        "{}",
        handle.mode()
    );
    handle.request(vec![alert("book", "latency", Severity::Critical)], true);
    let ev = tokio::time::timeout(PATIENCE, rx.recv())
        .await
        .expect("arrives")
        .expect("open");
    let Event::AlertTriaged { triage: t, .. } = ev else {
        panic!("unexpected {ev:?}")
    };
    assert_eq!(t.source, TriageSource::Rules);
    assert!(
        t.note.contains("EXWATCH_TEST_SURELY_UNSET_KEY_VAR"),
        "{}",
        t.note
    );
    assert!(srv.calls().is_empty());
    shutdown.cancel();
}

#[test]
fn a_full_batch_request_stays_small() {
    let open: Vec<Alert> = (0..12)
        .map(|i| alert(&format!("ep{i}"), "error_rate", Severity::Warning))
        .collect();
    let snap = snapshot_with(&open);
    let s = TriageSettings {
        model: "m".into(),
        ..TriageSettings::default()
    };
    let one = [triage::AlertContext::build(
        &alert("book", "latency", Severity::Critical),
        &snap,
    )];
    let full: Vec<_> = (0..s.max_batch)
        .map(|i| {
            triage::AlertContext::build(
                &alert(&format!("x{i}"), "latency", Severity::Critical),
                &snap,
            )
        })
        .collect();
    let one_len = prompt::request_body(&s, &one, 0).to_string().len();
    let full_len = prompt::request_body(&s, &full, 0).to_string().len();
    eprintln!(
        "request bytes: 1 alert {one_len}, {} alerts {full_len}",
        s.max_batch
    );
    // Related alerts are capped, so a full batch of a busy exchange stays bounded.
    assert!(full_len < 48 * 1024, "{full_len}");
    assert!(one_len < full_len);
}

/// A key of its own, distinctive, for the tests of what providers echo.
const ECHOED_KEY: &str = "sk-9xq2mw71zt5kP3";

/// Every 6-character window of `secret` is absent from `text`.
fn assert_clean(what: &str, text: &str, secret: &str) {
    let c: Vec<char> = secret.to_lowercase().chars().collect();
    let lower = text.to_lowercase();
    for w in c.windows(6) {
        let f: String = w.iter().collect();
        assert!(!lower.contains(&f), "{what} leaks `{f}`: {text}");
    }
}

/// Everything a triaged alert carries that reaches the journal and the screen.
fn triage_text(a: &Alert) -> String {
    serde_json::to_string(&a.triage).expect("triage json")
}

#[tokio::test]
async fn a_provider_error_quoting_the_key_prefix_is_scrubbed_from_the_note() {
    let a = alert("book", "latency", Severity::Critical);
    // A 500 (so its text is kept, unlike 401/403) quoting the key's first
    // ten characters and its last two, as providers do.
    let masked = format!("{}****{}", &ECHOED_KEY[..10], &ECHOED_KEY[15..]);
    let srv = server(vec![Reply::Json(
        500,
        json!({"error": {"message": format!("upstream rejected key {masked} for org"), "type": "server_error"}}),
    )])
    .await;
    let mut s = settings(&srv.base_url);
    s.timeout = Duration::from_millis(800);
    let mut rig = rig_with(s, Ok(Some(ApiKey::new(ECHOED_KEY))));
    rig.request(vec![a], true);
    let got = rig.next_triaged().await;
    let t = got.triage.clone().expect("triage");
    assert_eq!(t.source, TriageSource::Rules);
    // The provider's words are kept, the key's are not.
    assert!(
        t.note.contains("upstream rejected key [redacted]"),
        "{}",
        t.note
    );
    assert_clean("note", &t.note, ECHOED_KEY);
    assert_clean(
        "snapshot",
        &format!("{:?}", rig.state.snapshot()),
        ECHOED_KEY,
    );
}

#[tokio::test]
async fn the_model_never_sees_a_secret_and_its_words_quoting_one_are_scrubbed() {
    let mut a = alert("book", "latency", Severity::Critical);
    // Text that reached an alert from elsewhere, quoting the key.
    a.description = format!("upstream said: bad key {ECHOED_KEY}");
    let fp = a.fingerprint.clone();
    let answer = json!({"triage": [{
        "fingerprint": fp,
        "escalation": 3,
        "requires_human": true,
        "summary": format!("key {} was refused", &ECHOED_KEY[..9]),
        "likely_cause": format!("the credential {ECHOED_KEY} expired"),
        "suggested_actions": [format!("rotate {}", &ECHOED_KEY[4..])],
        "auto_resolve": false
    }]});
    let srv = server(vec![Reply::Json(
        200,
        completion(&answer.to_string(), "stop", 10, 10),
    )])
    .await;
    let mut rig = rig_with(settings(&srv.base_url), Ok(Some(ApiKey::new(ECHOED_KEY))));
    rig.request(vec![a], true);
    let got = rig.next_triaged().await;
    let t = got.triage.clone().expect("triage");
    assert_eq!(t.source, TriageSource::Model, "{}", t.note);
    assert!(t.summary.contains("[redacted]"), "{}", t.summary);
    assert_clean("model's answer", &triage_text(&got), ECHOED_KEY);
    let calls = srv.calls();
    assert_eq!(calls.len(), 1);
    assert!(
        calls[0].raw.contains("upstream said: bad key [redacted]"),
        "{}",
        calls[0].raw
    );
    assert_clean("prompt", &calls[0].raw, ECHOED_KEY);
}

/// Issue #15 item 7: with a model that hangs, the rules' answer is shown at
/// once for every batch (not after the model's timeout, one batch at a
/// time), and the model's answer replaces it when it arrives.
#[tokio::test]
async fn rules_answer_at_once_while_a_hung_model_is_asked_for_every_batch() {
    let srv = server(vec![Reply::Hang]).await;
    let mut s = settings(&srv.base_url);
    // Far longer than PATIENCE: waiting for the model would fail the test.
    s.timeout = Duration::from_secs(120);
    s.max_batch = 1;
    let mut rig = rig(s);
    let a = alert("book", "latency", Severity::Critical);
    let b = alert("ticker", "error_rate", Severity::Critical);
    rig.request(vec![a.clone()], true);
    let first = rig.next_any().await;
    assert_eq!(first.fingerprint, a.fingerprint);
    let t = first.triage.expect("triage");
    assert_eq!(t.source, TriageSource::Rules);
    assert!(t.note.starts_with(PROVISIONAL), "{}", t.note);
    // A second batch while the first call still hangs: its rules too.
    rig.request(vec![b.clone()], true);
    let second = rig.next_any().await;
    assert_eq!(second.fingerprint, b.fingerprint);
    assert!(second.triage.expect("triage").note.starts_with(PROVISIONAL));
    // Both calls are in flight at once, neither answered.
    for _ in 0..100 {
        if srv.calls().len() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        srv.calls().len(),
        2,
        "the second call did not wait for the first"
    );
}

#[tokio::test]
async fn the_models_answer_replaces_the_rules_shown_meanwhile() {
    let a = alert("book", "latency", Severity::Critical);
    let srv = server(vec![good(&[&a.fingerprint])]).await;
    let mut rig = rig(settings(&srv.base_url));
    rig.request(vec![a.clone()], true);
    let shown = rig.next_any().await.triage.expect("triage");
    assert_eq!(shown.source, TriageSource::Rules);
    assert!(shown.note.starts_with(PROVISIONAL), "{}", shown.note);
    let then = rig.next_any().await;
    let t = then.triage.expect("triage");
    assert_eq!(t.source, TriageSource::Model, "{}", t.note);
    // The engine holds the model's answer now.
    assert_eq!(
        rig.engine
            .alert(&a.fingerprint)
            .and_then(|x| x.triage.as_ref())
            .map(|t| t.source),
        Some(TriageSource::Model)
    );
    // The rules shown meanwhile are not counted as answers.
    assert_eq!(rig.handle.totals().by_model, 1);
    assert_eq!(rig.handle.totals().by_rules, 0);
}
