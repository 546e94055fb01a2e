//! The alert engine is the only author of alert state: a triage that answers
//! late never brings back an older state. Runs the whole monitor in-process
//! against the simulator, a webhook receiver and a chat-completions server on
//! 127.0.0.1 whose answers are held until the test releases them, so the
//! order "alert changes, then the triage lands" is certain, not timed.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed unwrap is a failed test

use crate::alert_common::{Behaviour, Receiver};
use crate::common::sim::{fault, scenario, start};
use axum::Router;
use axum::extract::State as AxState;
use axum::routing::post;
use exwatch::config;
use exwatch::journal;
use exwatch::model::{Alert, AlertState, Command, EndpointKind, Event, ExchangeKind};
use exwatch::monitor::Monitor;
use exwatch::sim::scenario::FaultKind;
use serde_json::{Value, json};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Semaphore;

/// Guards against a hung test only; never a speed assertion.
const PATIENCE: Duration = Duration::from_secs(60);

/// A chat-completions server whose every answer waits for a permit.
#[derive(Clone)]
struct Model {
    gate: Arc<Semaphore>,
    asked: Arc<AtomicUsize>,
    answered: Arc<AtomicUsize>,
    /// The request bodies, in order.
    bodies: Arc<Mutex<Vec<String>>>,
}

async fn complete(AxState(m): AxState<Model>, body: String) -> axum::Json<Value> {
    m.bodies.lock().expect("lock").push(body);
    m.asked.fetch_add(1, Ordering::SeqCst);
    if let Ok(p) = m.gate.acquire().await {
        p.forget();
    }
    m.answered.fetch_add(1, Ordering::SeqCst);
    // No verdicts: the rules answer for every alert, noting the model left it out.
    axum::Json(json!({
        "id": "c1",
        "choices": [{"index": 0, "finish_reason": "stop",
                     "message": {"role": "assistant", "content": "{\"triage\": []}"}}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 5}
    }))
}

async fn model() -> (String, Model) {
    let m = Model {
        gate: Arc::new(Semaphore::new(0)),
        asked: Arc::new(AtomicUsize::new(0)),
        answered: Arc::new(AtomicUsize::new(0)),
        bodies: Arc::default(),
    };
    let app = Router::new()
        .route("/v1/chat/completions", post(complete))
        .with_state(m.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}/v1"), m)
}

async fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while !f() {
        assert!(tokio::time::Instant::now() < deadline, "waited for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn alert_in(m: &Monitor, fp: &str) -> Option<Alert> {
    m.snapshots
        .borrow()
        .alerts
        .iter()
        .find(|a| a.fingerprint == fp)
        .cloned()
}

/// The last state the webhook was told of `fp`.
fn webhook_last_word(hook: &Receiver, fp: &str) -> Option<String> {
    hook.delivered().iter().rev().find_map(|h| {
        h.body["alerts"].as_array()?.iter().find_map(|a| {
            (a["fingerprint"] == fp).then(|| a["state"].as_str().unwrap_or("").to_string())
        })
    })
}

/// The last `AlertChanged` the journal holds for `fp`.
fn journal_last(path: &std::path::Path, fp: &str) -> Option<Alert> {
    let (entries, _) = journal::read_file(path).expect("read journal");
    entries.into_iter().rev().find_map(|e| match e.ev {
        Event::AlertChanged { alert } if alert.fingerprint == fp => Some(alert),
        _ => None,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_triage_never_reverts_a_resolve_or_an_acknowledgement() {
    // The receiver listens where EXW_SW_HOOK (set before any test ran) points.
    let hook = Receiver::start_on(crate::hook_listener("EXW_SW_HOOK"), Behaviour::default()).await;
    let (model_url, model) = model().await;
    // Binance's ticker fails for 4 s and recovers; OKX's ticker fails for good.
    let sim = start(scenario(vec![
        fault(
            FaultKind::ServerError,
            ExchangeKind::Binance,
            Some(EndpointKind::Ticker),
            Duration::ZERO,
            Duration::from_secs(4),
        ),
        fault(
            FaultKind::ServerError,
            ExchangeKind::Okx,
            Some(EndpointKind::Ticker),
            Duration::ZERO,
            Duration::from_secs(3600),
        ),
    ]))
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let journal_path = dir.path().join("journal.jsonl");
    let mut text = format!(
        "[journal]\nenabled = true\npath = \"{journal}\"\n\
         [triage]\nbase_url = \"{model_url}\"\nmodel = \"held\"\nbatch_window = \"0s\"\ntimeout = \"120s\"\n\
         [alerts.grouping]\ngroup_wait = \"0s\"\ngroup_interval = \"1s\"\nrepeat_interval = \"1h\"\n\
         [[alerts.sinks]]\nname = \"hook\"\nkind = \"webhook\"\nurl_env = \"EXW_SW_HOOK\"\nmin_severity = \"info\"\n\
         [breaker]\nopen_for = \"1s\"\nmax_open_for = \"2s\"\n",
        journal = journal_path.display(),
    );
    for kind in [ExchangeKind::Binance, ExchangeKind::Okx] {
        text.push_str(&format!(
            "[[exchanges]]\nname = \"{k}\"\nkind = \"{k}\"\nbase_url = \"{base}\"\n\
             rate_limit = {{ capacity = 100000, refill_per_sec = 100000 }}\n\
             [[exchanges.endpoints]]\nname = \"ticker\"\nkind = \"ticker\"\ninterval = \"200ms\"\ntimeout = \"1s\"\n\
             [[exchanges.endpoints]]\nname = \"time\"\nkind = \"time\"\ninterval = \"200ms\"\ntimeout = \"1s\"\n",
            k = kind.as_str(),
            base = sim.base_url(kind),
        ));
    }
    let cfg = config::parse("triage_single_writer.toml", &text).expect("config");
    let mut monitor = Monitor::start(&cfg, 1).await.expect("start");
    // Every event the core records, in order, as it records it (before the
    // snapshot that shows it is published).
    let seen: Arc<Mutex<Vec<Event>>> = Arc::default();
    let mut tap = monitor.taps.remove(0);
    let sink = seen.clone();
    tokio::spawn(async move {
        while let Some(ev) = tap.recv().await {
            sink.lock().expect("lock").push(ev);
        }
    });
    let recorded = |fp: &str, state: AlertState| {
        seen.lock().expect("lock").iter().any(|e| {
            matches!(e, Event::AlertChanged { alert } if alert.fingerprint == fp && alert.state == state)
        })
    };

    // Both tickers raise a critical error_rate alert, and the model is asked
    // about each. Every call is held until the alert it is about has changed
    // (OKX's acknowledged, Binance's resolved), then answered at once: the
    // answer races the change to the screen, as a fast triage does.
    // Each is the first symptom of its incident (the breaker that opens
    // after it joins the incident), so it is the one auto-triaged.
    let bin = "binance/ticker/error_rate";
    let okx = "okx/ticker/error_rate";
    let mut released = 0;
    let mut acked = false;
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while !(recorded(bin, AlertState::Resolved)
        && acked
        && [bin, okx]
            .iter()
            .all(|fp| alert_in(&monitor, fp).is_some_and(|a| a.triage.is_some())))
    {
        let asked = model.asked.load(Ordering::SeqCst);
        if asked > released {
            let body = model.bodies.lock().expect("lock")[released].clone();
            if body.contains(okx) {
                monitor
                    .commands
                    .send(Command::Acknowledge {
                        fingerprint: okx.into(),
                        by: "alice".into(),
                        episode: None,
                    })
                    .await
                    .expect("command");
                acked = true;
                wait_for("the acknowledgement recorded", || {
                    recorded(okx, AlertState::Acknowledged)
                })
                .await;
            } else if body.contains(bin) {
                wait_for("the binance recovery recorded", || {
                    recorded(bin, AlertState::Resolved)
                })
                .await;
            }
            model.gate.add_permits(1);
            released += 1;
            continue;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "waited for both alerts to change and be triaged"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
        if !acked && alert_in(&monitor, okx).is_some_and(|a| a.triage.is_some()) {
            panic!("OKX's alert was triaged before the test could acknowledge it");
        }
    }
    model.gate.add_permits(1000);
    // Let the notifier flush what the triage caused, if anything.
    tokio::time::sleep(Duration::from_secs(3)).await;

    // The screen (the snapshot), the journal and the sinks all keep the newer state.
    let shown_bin = alert_in(&monitor, bin).expect("binance alert");
    let shown_okx = alert_in(&monitor, okx).expect("okx alert");
    assert_eq!(shown_bin.state, AlertState::Resolved, "{shown_bin:?}");
    assert_eq!(shown_okx.state, AlertState::Acknowledged, "{shown_okx:?}");
    assert_eq!(shown_okx.state_by.as_deref(), Some("alice"));
    monitor.stop().await;

    let j_bin = journal_last(&journal_path, bin).expect("journaled");
    let j_okx = journal_last(&journal_path, okx).expect("journaled");
    assert_eq!(j_bin.state, AlertState::Resolved, "{j_bin:?}");
    assert!(
        j_bin.triage.is_some(),
        "the triage is journaled on the resolved alert"
    );
    assert_eq!(j_okx.state, AlertState::Acknowledged, "{j_okx:?}");
    assert!(j_okx.triage.is_some());

    assert_eq!(
        webhook_last_word(&hook, bin).as_deref(),
        Some("resolved"),
        "the webhook's last word on the recovered endpoint"
    );
    assert_eq!(
        webhook_last_word(&hook, okx).as_deref(),
        Some("acknowledged"),
        "the webhook's last word on the acknowledged alert"
    );
}
