//! Local HTTP receivers standing in for Slack, PagerDuty and a webhook, and
//! helpers to run the notifier against them. Loopback only.
#![allow(dead_code)]

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use exwatch::model::Delivery;
use exwatch::model::Event;
use serde_json::Value;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// One request the receiver saw.
#[derive(Debug, Clone)]
pub struct Hit {
    pub path: String,
    pub body: Value,
    pub at: Instant,
    pub status: u16,
}

#[derive(Debug, Clone)]
pub struct Behaviour {
    /// Status while failing.
    pub fail_status: u16,
    /// Fail every request until this instant.
    pub fail_until: Option<Instant>,
    /// Fail this many requests first (then succeed).
    pub fail_first: usize,
    pub retry_after: Option<String>,
    pub ok_status: u16,
    /// Failures answer a JSON error (`{"error":{"message":...}}`) that
    /// echoes what a careless receiver or provider quotes back: the request
    /// path and query, the first 10 and last 2 characters of the
    /// Authorization header's token, and the request body's `routing_key`.
    pub echo: bool,
    /// Answer (anything) only after this long: a receiver slower than the
    /// sink's timeout. The request is recorded when it arrives.
    pub delay: Option<Duration>,
}

impl Default for Behaviour {
    fn default() -> Self {
        Behaviour {
            fail_status: 500,
            fail_until: None,
            fail_first: 0,
            retry_after: None,
            ok_status: 200,
            echo: false,
            delay: None,
        }
    }
}

#[derive(Clone)]
pub struct Receiver {
    pub url: String,
    hits: Arc<Mutex<Vec<Hit>>>,
    behaviour: Arc<Mutex<Behaviour>>,
}

/// What an echoing receiver quotes back: path and query, a masked token of
/// the Authorization header, the body's routing key.
fn echo_of(uri: &Uri, headers: &HeaderMap, body: &Value) -> String {
    let token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim_start_matches("Bearer ").to_string())
        .unwrap_or_default();
    let chars: Vec<char> = token.chars().collect();
    let masked = if chars.len() > 12 {
        format!(
            "{}****{}",
            chars[..10].iter().collect::<String>(),
            chars[chars.len() - 2..].iter().collect::<String>()
        )
    } else {
        String::new()
    };
    let routing_key = body["routing_key"].as_str().unwrap_or_default();
    let msg = format!(
        "no route for POST {}; Incorrect API key provided: {masked}; invalid routing key {routing_key}",
        uri.path_and_query().map(|p| p.as_str()).unwrap_or_default()
    );
    serde_json::json!({"error": {"message": msg, "type": "invalid_request_error"}}).to_string()
}

async fn handle(State(r): State<Receiver>, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let echo = echo_of(&uri, &headers, &body);
    let delay = r.behaviour.lock().unwrap().delay;
    let response = respond(&r, uri, body, echo);
    if let Some(d) = delay {
        tokio::time::sleep(d).await;
    }
    response
}

fn respond(r: &Receiver, uri: Uri, body: Value, echo: String) -> Response {
    let mut b = r.behaviour.lock().unwrap();
    let failing = b.fail_until.is_some_and(|t| Instant::now() < t) || b.fail_first > 0;
    if b.fail_first > 0 {
        b.fail_first -= 1;
    }
    let status = if failing { b.fail_status } else { b.ok_status };
    r.hits.lock().unwrap().push(Hit {
        path: uri.path().to_string(),
        body,
        at: Instant::now(),
        status,
    });
    let code = StatusCode::from_u16(status).unwrap();
    if failing && b.echo {
        return (code, [("content-type", "application/json")], echo).into_response();
    }
    match (&b.retry_after, failing) {
        (Some(ra), true) => (code, [("retry-after", ra.clone())], "slow down").into_response(),
        _ => (code, if failing { "nope" } else { "ok" }).into_response(),
    }
}

impl Receiver {
    pub async fn start(behaviour: Behaviour) -> Receiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        Self::serve(listener, behaviour)
    }

    /// A receiver on a listener bound beforehand (non-blocking), e.g. one
    /// whose URL was put in the environment before any test ran.
    pub async fn start_on(listener: std::net::TcpListener, behaviour: Behaviour) -> Receiver {
        Self::serve(
            tokio::net::TcpListener::from_std(listener).unwrap(),
            behaviour,
        )
    }

    fn serve(listener: tokio::net::TcpListener, behaviour: Behaviour) -> Receiver {
        let addr = listener.local_addr().unwrap();
        let r = Receiver {
            url: format!("http://{addr}"),
            hits: Arc::default(),
            behaviour: Arc::new(Mutex::new(behaviour)),
        };
        let app = axum::Router::new().fallback(handle).with_state(r.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        r
    }

    /// Every request, failed ones included.
    pub fn attempts(&self) -> Vec<Hit> {
        self.hits.lock().unwrap().clone()
    }

    /// Requests answered with 2xx.
    pub fn delivered(&self) -> Vec<Hit> {
        self.attempts()
            .into_iter()
            .filter(|h| (200..300).contains(&h.status))
            .collect()
    }

    /// Wait (bounded) until `n` requests were delivered.
    pub async fn wait_delivered(&self, n: usize, within: Duration) -> Vec<Hit> {
        let until = Instant::now() + within;
        loop {
            let d = self.delivered();
            if d.len() >= n || Instant::now() > until {
                return d;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Collects every event the notifier and sinks send back.
#[derive(Clone, Default)]
pub struct Events(Arc<Mutex<Vec<Event>>>);

impl Events {
    pub fn spawn() -> (mpsc::Sender<Event>, Events) {
        let (tx, mut rx) = mpsc::channel::<Event>(10_000);
        let ev = Events::default();
        let store = ev.0.clone();
        tokio::spawn(async move {
            while let Some(e) = rx.recv().await {
                store.lock().unwrap().push(e);
            }
        });
        (tx, ev)
    }

    pub fn all(&self) -> Vec<Event> {
        self.0.lock().unwrap().clone()
    }

    /// Deliveries reported for one fingerprint and sink, in order.
    pub fn deliveries(&self, fp: &str, sink: &str) -> Vec<Delivery> {
        self.all()
            .into_iter()
            .filter_map(|e| match e {
                Event::AlertDelivery {
                    fingerprint,
                    sink: s,
                    delivery,
                } if fingerprint == fp && s == sink => Some(delivery),
                _ => None,
            })
            .collect()
    }
}
