//! Sinks: where notifications go (Slack, PagerDuty, a generic webhook).
//!
//! Each sink has a bounded queue and one delivery task that sends in order,
//! retrying on 429, 5xx, 408 and network errors only, by the shared
//! [`RetryPolicy`](crate::retry::RetryPolicy): exponential backoff with ±20%
//! jitter, a longer `Retry-After` winning, until `give_up_after`. Other 4xx
//! answers (400, 403, 404, 410, ...) are permanent: shown as
//! `Delivery::Failed`, not retried. A full queue is reported as
//! `Delivery::Failed` too: nothing is dropped silently. Delivery state flows
//! back as `Event::AlertDelivery`.
//!
//! An attempt that was sent but got no answer (it timed out, or the
//! connection broke before a status came back) may have reached the
//! receiver: it is retried like a network error, with the same body and so
//! the same `notification_id` (the receiver's dedup key), and if no attempt
//! is ever answered the delivery ends as `Delivery::Unconfirmed`, not
//! `Failed`. An attempt that could not connect never reached it.
//!
//! Every text that came from the receiver (its answer's body, a transport
//! error) is scrubbed of the process's secrets ([`crate::secrets`]) before
//! it is logged or reported: a 404 body quoting the request path would
//! otherwise carry the webhook's token.

pub mod pagerduty;
pub mod slack;
pub mod webhook;

use super::notification::Notification;
use crate::model::Event;
use crate::model::{Delivery, Severity};
use crate::problems::{Problems, is_env_name};
use crate::retry::RetryPolicy;
use serde::Deserialize;
use std::fmt;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Which service a sink talks to. Its lowercase name (`slack`, `pagerduty`,
/// `webhook`) is the config's `kind`: one table for serde and strum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, strum::IntoStaticStr)]
#[serde(rename_all = "lowercase")]
#[strum(serialize_all = "lowercase")]
pub enum SinkKind {
    Slack,
    Pagerduty,
    Webhook,
}

/// One `[[alerts.sinks]]` table.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SinkConfig {
    pub name: String,
    pub kind: SinkKind,
    /// Environment variable holding the URL (Slack incoming webhook, the
    /// webhook endpoint, or for PagerDuty an Events API URL other than the default).
    pub url_env: Option<String>,
    /// PagerDuty: environment variable holding the integration's routing key.
    pub routing_key_env: Option<String>,
    /// Notifications of groups below this severity are not sent here.
    #[serde(default = "default_min_severity")]
    pub min_severity: Severity,
    #[serde(default = "default_queue")]
    pub queue: usize,
    /// Longest wait for one attempt: connecting, sending and the answer's
    /// status and body (default 10 s). An attempt that times out after it
    /// was sent may have arrived; it is retried with the same
    /// `notification_id`.
    #[serde(default = "default_timeout", with = "humantime_serde")]
    pub timeout: Duration,
    /// Wait after the first failed attempt (default 1 s); doubles after each
    /// further failure, with ±20% jitter.
    #[serde(default = "default_retry_initial", with = "humantime_serde")]
    pub retry_initial: Duration,
    /// Longest wait between attempts from the backoff (default 60 s); a
    /// longer `Retry-After` from the receiver still wins.
    #[serde(default = "default_retry_max", with = "humantime_serde")]
    pub retry_max: Duration,
    /// Retrying stops (and the delivery shows as failed) after this long
    /// (default 3600 s) from the first attempt: no attempt starts later.
    #[serde(default = "default_give_up", with = "humantime_serde")]
    pub give_up_after: Duration,
}

fn default_min_severity() -> Severity {
    Severity::Warning
}
fn default_queue() -> usize {
    256
}
/// 10 s: webhook receivers (Slack, PagerDuty's Events API) answer in well
/// under a second when healthy and take several seconds when they are
/// struggling; each timed-out attempt may be a duplicate message for a
/// human, while the longer wait delays only this sink's own queue (never
/// monitoring, never the other sinks).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

fn default_timeout() -> Duration {
    DEFAULT_TIMEOUT
}
fn default_retry_initial() -> Duration {
    Duration::from_secs(1)
}
fn default_retry_max() -> Duration {
    Duration::from_secs(60)
}
fn default_give_up() -> Duration {
    Duration::from_secs(3600)
}

/// What is wrong with the URL the environment variable `var` holds, when
/// it is set and not an http(s) URL with a host: refused with the config
/// (at start, and by `config check`) instead of failing every delivery as
/// a network error for an hour. The value is a secret: the message names
/// the variable and what is wrong, never the value. An unset variable is
/// not this check's business (the sink says so when it is built).
fn env_url_problem(var: &str) -> Option<String> {
    let value = std::env::var(var).ok().filter(|v| !v.is_empty())?;
    let what = match url::Url::parse(value.trim()) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => return None,
        Ok(u) if !matches!(u.scheme(), "http" | "https") => {
            "a URL whose scheme is not http or https".to_string()
        }
        Ok(_) => "a URL without a host".to_string(),
        Err(e) => format!("no valid URL ({e})"),
    };
    Some(format!(
        "the environment variable {var} holds {what}; expected an http(s) URL such as \
         \"https://hooks.example.com/...\" (its value is not shown: it is a secret)"
    ))
}

/// Relative jitter of a sink's backoff: ±20%, so sinks that failed together
/// do not retry together.
pub const SINK_JITTER: f64 = 0.2;

pub const PAGERDUTY_EVENTS_URL: &str = "https://events.pagerduty.com/v2/enqueue";

impl SinkConfig {
    pub fn validate(&self, at: &str, p: &mut Problems) {
        if self.name.is_empty() {
            p.push(format!("{at}.name"), "must not be empty");
        }
        for (field, v) in [
            ("url_env", &self.url_env),
            ("routing_key_env", &self.routing_key_env),
        ] {
            if let Some(v) = v {
                if !is_env_name(v) {
                    p.push(
                        format!("{at}.{field}"),
                        "must be the NAME of an environment variable (A-Z, 0-9, _), not the secret itself",
                    );
                }
            }
        }
        match self.kind {
            SinkKind::Slack | SinkKind::Webhook if self.url_env.is_none() => p.push(
                format!("{at}.url_env"),
                "required: the environment variable that holds the URL",
            ),
            SinkKind::Pagerduty if self.routing_key_env.is_none() => p.push(
                format!("{at}.routing_key_env"),
                "required: the environment variable that holds the routing key",
            ),
            _ => {}
        }
        if self.queue == 0 || self.queue > 100_000 {
            p.push(format!("{at}.queue"), "must be between 1 and 100000");
        }
        use crate::problems::{DAY, check_duration, ms, secs};
        for (field, d, min, max) in [
            ("timeout", self.timeout, ms(100), secs(300)),
            ("retry_initial", self.retry_initial, ms(10), secs(3600)),
            ("retry_max", self.retry_max, ms(10), DAY),
            ("give_up_after", self.give_up_after, secs(1), 7 * DAY),
        ] {
            check_duration(p, &format!("{at}.{field}"), d, min, max);
        }
        if self.retry_max < self.retry_initial {
            p.push(format!("{at}.retry_max"), "must be at least retry_initial");
        }
        if let Some(var) = self.url_env.as_deref().filter(|v| is_env_name(v))
            && let Some(problem) = env_url_problem(var)
        {
            p.push(format!("{at}.url_env"), problem);
        }
    }

    /// Read the URL and routing key from the environment.
    pub fn resolve(&self) -> Result<Sink, SinkError> {
        let read = |var: &str| {
            std::env::var(var)
                .ok()
                .filter(|v| !v.is_empty())
                .ok_or_else(|| SinkError::MissingEnv {
                    sink: self.name.clone(),
                    var: var.to_string(),
                })
        };
        let url = match (&self.url_env, self.kind) {
            (Some(v), _) => Secret::new(read(v)?),
            // The public Events API URL is no secret: not registered with the
            // scrubber, so text naming `/v2/enqueue` stays readable.
            (None, SinkKind::Pagerduty) => Secret(PAGERDUTY_EVENTS_URL.to_string()),
            (None, _) => {
                return Err(SinkError::MissingEnv {
                    sink: self.name.clone(),
                    var: "url_env".into(),
                });
            }
        };
        let routing_key = match &self.routing_key_env {
            Some(v) => Some(Secret::new(read(v)?)),
            None => None,
        };
        Ok(Sink {
            config: self.clone(),
            url,
            routing_key,
        })
    }

    /// How this sink retries: `retry_initial`, `retry_max`, `give_up_after`,
    /// ±20% jitter.
    pub fn retry_policy(&self) -> RetryPolicy {
        RetryPolicy {
            initial: self.retry_initial,
            max: self.retry_max,
            give_up_after: self.give_up_after,
            jitter: SINK_JITTER,
        }
    }

    /// A config with every default, for building sinks in code.
    pub fn new(name: &str, kind: SinkKind) -> Self {
        SinkConfig {
            name: name.into(),
            kind,
            url_env: None,
            routing_key_env: None,
            min_severity: default_min_severity(),
            queue: default_queue(),
            timeout: default_timeout(),
            retry_initial: default_retry_initial(),
            retry_max: default_retry_max(),
            give_up_after: default_give_up(),
        }
    }
}

/// A value that must never be printed: its `Debug` and `Display` hide it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wrap a secret value, and register it with the process's scrubber
    /// ([`crate::secrets::register`]) so no remote text can echo it out.
    pub fn new(s: impl Into<String>) -> Self {
        let s = s.into();
        crate::secrets::register(&s);
        Secret(s)
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    #[error("sink {sink}: environment variable {var} is not set")]
    MissingEnv { sink: String, var: String },
    #[error("sink {sink}: cannot build the HTTP client: {detail}")]
    Client { sink: String, detail: String },
}

/// A sink ready to send: config plus its secrets.
#[derive(Debug, Clone)]
pub struct Sink {
    pub config: SinkConfig,
    pub url: Secret,
    pub routing_key: Option<Secret>,
}

impl Sink {
    pub fn new(config: SinkConfig, url: Secret, routing_key: Option<Secret>) -> Self {
        Sink {
            config,
            url,
            routing_key,
        }
    }

    pub fn name(&self) -> &str {
        &self.config.name
    }
}

/// One HTTP request a sink must deliver, and the alerts whose delivery it decides.
#[derive(Debug, Clone)]
pub struct Request {
    pub body: serde_json::Value,
    pub fingerprints: Vec<String>,
}

/// How one attempt ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Attempt {
    Sent,
    /// Try again, after at least this long when the receiver said so.
    Retry {
        error: String,
        after: Option<Duration>,
        /// The request went out but no answer came back (a timeout, a
        /// connection broken before the status): it may have arrived.
        unanswered: bool,
    },
    Permanent {
        error: String,
    },
}

/// Characters of a receiver's answer kept in an error (after scrubbing).
pub const SNIPPET_MAX: usize = 200;

/// Classify an HTTP answer: 2xx sent; 429, 5xx, 408 retried; other 4xx
/// permanent. `retry_after` is the answer's `Retry-After`, already parsed.
/// The body is scrubbed of secrets ([`crate::secrets::scrub`]), then cut to
/// [`SNIPPET_MAX`] characters, for the error text.
pub fn classify(status: u16, retry_after: Option<Duration>, body: &str) -> Attempt {
    let snippet: String = crate::secrets::scrub(body)
        .chars()
        .take(SNIPPET_MAX)
        .collect();
    match status {
        200..=299 => Attempt::Sent,
        429 => Attempt::Retry {
            error: format!("429 rate limited: {snippet}"),
            after: retry_after,
            unanswered: false,
        },
        // A 503 may say when to come back too.
        500..=599 => Attempt::Retry {
            error: format!("{status}: {snippet}"),
            after: retry_after,
            unanswered: false,
        },
        // 408 is the receiver giving up on us, not a verdict on the request.
        408 => Attempt::Retry {
            error: format!("{status}: {snippet}"),
            after: None,
            unanswered: false,
        },
        _ => Attempt::Permanent {
            error: format!("{status}: {snippet}"),
        },
    }
}

/// What a sink's queue holds.
#[derive(Debug)]
enum Job {
    Notify(Box<Notification>),
}

/// The sending side of a running sink.
#[derive(Clone)]
pub struct SinkHandle {
    name: String,
    kind: SinkKind,
    min_severity: Severity,
    capacity: usize,
    tx: mpsc::Sender<Job>,
    events: mpsc::Sender<Event>,
}

impl SinkHandle {
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn wants(&self, n: &Notification) -> bool {
        n.group.severity >= self.min_severity
            && !(self.kind == SinkKind::Pagerduty && pagerduty::events(n, "", "").is_empty())
    }

    /// Queue a notification. A full queue is reported on every alert it
    /// carried (Delivery::Failed) and logged: never a silent drop.
    pub async fn enqueue(&self, n: Notification) {
        let fps = n.fingerprints();
        match self.tx.try_send(Job::Notify(Box::new(n))) {
            Ok(()) => {
                for fp in fps {
                    self.report(&fp, Delivery::Pending).await;
                }
            }
            Err(e) => {
                let error = match e {
                    mpsc::error::TrySendError::Full(_) => format!(
                        "not sent: the {} queue is full ({} waiting)",
                        self.name, self.capacity
                    ),
                    mpsc::error::TrySendError::Closed(_) => {
                        format!("not sent: the {} sink has stopped", self.name)
                    }
                };
                tracing::error!(sink = %self.name, %error, "notification dropped");
                for fp in fps {
                    self.report(
                        &fp,
                        Delivery::Failed {
                            error: error.clone(),
                        },
                    )
                    .await;
                }
            }
        }
    }

    async fn report(&self, fp: &str, delivery: Delivery) {
        emit(
            &self.events,
            Event::AlertDelivery {
                fingerprint: fp.to_string(),
                sink: self.name.clone(),
                delivery,
            },
        );
    }
}

/// Hand a delivery event back without blocking on a full event queue: the
/// monitor's reducer feeds the notifier, so waiting here could close a cycle.
/// When the queue is full the event is sent from a task of its own — nothing
/// is dropped; only under that pressure may delivery events arrive reordered.
pub fn emit(events: &mpsc::Sender<Event>, ev: Event) {
    match events.try_send(ev) {
        Ok(()) | Err(mpsc::error::TrySendError::Closed(_)) => {}
        Err(mpsc::error::TrySendError::Full(ev)) => {
            let tx = events.clone();
            tokio::spawn(async move {
                let _ = tx.send(ev).await;
            });
        }
    }
}

/// Start a sink's delivery task. `instance` names this exwatch in messages.
pub fn spawn(
    sink: Sink,
    instance: String,
    events: mpsc::Sender<Event>,
    shutdown: CancellationToken,
) -> Result<(SinkHandle, tokio::task::JoinHandle<()>), SinkError> {
    let client = reqwest::Client::builder()
        .timeout(sink.config.timeout)
        .connect_timeout(sink.config.timeout)
        .user_agent(concat!("exwatch/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| SinkError::Client {
            sink: sink.config.name.clone(),
            detail: e.to_string(),
        })?;
    let (tx, rx) = mpsc::channel(sink.config.queue.max(1));
    let handle = SinkHandle {
        name: sink.config.name.clone(),
        kind: sink.config.kind,
        min_severity: sink.config.min_severity,
        capacity: sink.config.queue,
        tx,
        events: events.clone(),
    };
    let worker = Worker {
        sink,
        instance,
        client,
        events,
        shutdown,
    };
    let task = tokio::spawn(worker.run(rx));
    Ok((handle, task))
}

struct Worker {
    sink: Sink,
    instance: String,
    client: reqwest::Client,
    events: mpsc::Sender<Event>,
    shutdown: CancellationToken,
}

impl Worker {
    async fn run(self, mut rx: mpsc::Receiver<Job>) {
        loop {
            let job = tokio::select! {
                j = rx.recv() => match j { Some(j) => j, None => return },
                _ = self.shutdown.cancelled() => return,
            };
            let Job::Notify(n) = job;
            for req in self.render(&n) {
                if !self.deliver(&req).await {
                    return;
                }
            }
        }
    }

    fn render(&self, n: &Notification) -> Vec<Request> {
        match self.sink.config.kind {
            SinkKind::Slack => vec![Request {
                body: slack::render(n, &self.instance),
                fingerprints: n.fingerprints(),
            }],
            SinkKind::Webhook => vec![Request {
                body: webhook::render(n, &self.instance),
                fingerprints: n.fingerprints(),
            }],
            SinkKind::Pagerduty => {
                let key = self
                    .sink
                    .routing_key
                    .as_ref()
                    .map(|k| k.expose())
                    .unwrap_or("");
                pagerduty::events(n, key, &self.instance)
            }
        }
    }

    /// Send one request until it is sent, fails for good, or we shut down
    /// (returns false only on shutdown).
    async fn deliver(&self, req: &Request) -> bool {
        let c = &self.sink.config;
        // tokio's clock, so a paused test clock drives the deadline too.
        let mut retries = c
            .retry_policy()
            .start(tokio::time::Instant::now().into_std());
        // Attempts that went out and got no answer: each may have arrived.
        let mut unanswered_attempts = 0u32;
        loop {
            let result = self
                .client
                .post(self.sink.url.expose())
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(req.body.to_string())
                .send()
                .await;
            let attempt = match result {
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    let retry_after = crate::http::retry_after_of(&resp);
                    let body = resp.text().await.unwrap_or_default();
                    classify(status, retry_after, &body)
                }
                Err(e) => network_attempt(&e, c.timeout),
            };
            let delivery = match attempt {
                Attempt::Sent => Delivery::Sent {
                    at_ms: crate::clock::now_ms(),
                },
                Attempt::Permanent { error } => {
                    let error = if unanswered_attempts > 0 {
                        format!(
                            "{error} (after {unanswered_attempts} unanswered attempt(s) that may have arrived)"
                        )
                    } else {
                        error
                    };
                    tracing::warn!(sink = %c.name, %error, "permanent delivery failure");
                    Delivery::Failed { error }
                }
                Attempt::Retry {
                    error,
                    after,
                    unanswered,
                } => {
                    if unanswered {
                        unanswered_attempts += 1;
                    }
                    let next = retries.next_wait(tokio::time::Instant::now().into_std(), after);
                    let attempts = retries.attempts();
                    match next {
                        None if unanswered_attempts > 0 => {
                            let error = format!(
                                "gave up after {attempts} attempts, {unanswered_attempts} unanswered (may have arrived): {error}"
                            );
                            tracing::warn!(sink = %c.name, %error, "delivery unconfirmed");
                            Delivery::Unconfirmed { attempts, error }
                        }
                        None => {
                            let error = format!("gave up after {attempts} attempts: {error}");
                            tracing::warn!(sink = %c.name, %error, "delivery failed");
                            Delivery::Failed { error }
                        }
                        Some(wait) => {
                            tracing::info!(sink = %c.name, attempts, %error, wait_ms = wait.as_millis() as u64, "delivery failed, will retry");
                            self.report(
                                req,
                                Delivery::Retrying {
                                    attempts,
                                    last_error: error,
                                },
                            )
                            .await;
                            tokio::select! {
                                _ = tokio::time::sleep(wait) => {}
                                _ = self.shutdown.cancelled() => return false,
                            }
                            continue;
                        }
                    }
                }
            };
            self.report(req, delivery).await;
            return true;
        }
    }

    async fn report(&self, req: &Request, delivery: Delivery) {
        let delivery = scrub_delivery(delivery);
        for fp in &req.fingerprints {
            emit(
                &self.events,
                Event::AlertDelivery {
                    fingerprint: fp.clone(),
                    sink: self.sink.config.name.clone(),
                    delivery: delivery.clone(),
                },
            );
        }
    }
}

/// The texts of a delivery state scrubbed of the process's secrets: the last
/// gate before the journal, the screen and the metrics.
fn scrub_delivery(d: Delivery) -> Delivery {
    let s = |t: String| crate::secrets::scrubbed(&t);
    match d {
        Delivery::Retrying {
            attempts,
            last_error,
        } => Delivery::Retrying {
            attempts,
            last_error: s(last_error),
        },
        Delivery::Failed { error } => Delivery::Failed { error: s(error) },
        Delivery::Unconfirmed { attempts, error } => Delivery::Unconfirmed {
            attempts,
            error: s(error),
        },
        other => other,
    }
}

/// A transport error as an attempt to retry. Could not connect (or never
/// built): it did not arrive. Anything else (a timeout after connecting, a
/// connection closed before the status) went out unanswered and may have
/// arrived. The text is without the URL (it holds the webhook's token) and
/// scrubbed of secrets.
fn network_attempt(e: &reqwest::Error, timeout: Duration) -> Attempt {
    let unanswered = !e.is_connect() && !e.is_builder();
    let cause = crate::http::describe(e);
    let error = if e.is_connect() {
        format!("not delivered, could not connect: {cause}")
    } else if e.is_timeout() {
        format!(
            "timed out after {} ms without an answer (may have arrived)",
            timeout.as_millis()
        )
    } else if unanswered {
        format!("no answer (may have arrived): {cause}")
    } else {
        format!("not sent: {cause}")
    };
    Attempt::Retry {
        error: crate::secrets::scrubbed(&error),
        after: None,
        unanswered,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification_of_answers() {
        assert_eq!(classify(202, None, ""), Attempt::Sent);
        assert_eq!(
            classify(429, Some(Duration::from_secs(3)), "slow down"),
            Attempt::Retry {
                error: "429 rate limited: slow down".into(),
                after: Some(Duration::from_secs(3)),
                unanswered: false,
            }
        );
        assert!(matches!(
            classify(503, None, ""),
            Attempt::Retry { after: None, .. }
        ));
        for s in [400, 403, 404, 410] {
            assert!(
                matches!(classify(s, None, ""), Attempt::Permanent { .. }),
                "{s}"
            );
        }
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        // The defaults: 1 s doubling, 60 s cap, ±20%.
        let c = SinkConfig::new("hook", SinkKind::Webhook);
        let t0 = std::time::Instant::now();
        let mut r = c.retry_policy().start(t0);
        let waits: Vec<Duration> = (0..30).filter_map(|_| r.next_wait(t0, None)).collect();
        assert_eq!(waits.len(), 30);
        assert!(waits[0] <= Duration::from_millis(1200));
        assert!(waits[3] >= Duration::from_millis(6400));
        assert!(waits[29] <= c.retry_max);
    }

    #[test]
    fn secrets_do_not_show_in_debug() {
        let s = Sink::new(
            SinkConfig::new("pd", SinkKind::Pagerduty),
            Secret::new("https://hooks.example/T000/SECRET"),
            Some(Secret::new("R0UT1NGKEY")),
        );
        let dbg = format!("{s:?}");
        assert!(
            !dbg.contains("SECRET") && !dbg.contains("R0UT1NGKEY"),
            "{dbg}"
        );
    }
}
