//! The client of an OpenAI-compatible chat-completions API (hosted services,
//! Ollama, vLLM, llama.cpp server...).
//!
//! One call is bounded by the configured timeout, retries included: 429 (but
//! not `insufficient_quota`, which no wait will fix), 408, 409 and 5xx are
//! retried with exponential backoff (or the server's Retry-After when longer)
//! as long as the next attempt can still start before the deadline: the
//! shared [`RetryPolicy`] with [`FIRST_BACKOFF`], no jitter, and the timeout
//! as both cap and give-up deadline.

use crate::retry::RetryPolicy;
use serde::Deserialize;
use serde_json::Value;
use std::fmt;
use std::time::{Duration, Instant};

/// First wait between attempts (200 ms); doubles each retry.
pub const FIRST_BACKOFF: Duration = Duration::from_millis(200);

/// How one call of `timeout` (ms to minutes) is retried: from
/// [`FIRST_BACKOFF`], doubling, no jitter (one client, no herd to spread),
/// and no attempt starting `timeout` or later after the first. Capping the
/// backoff at `timeout` changes nothing: a wait that long could never fit.
pub fn retry_policy(timeout: Duration) -> RetryPolicy {
    RetryPolicy {
        initial: FIRST_BACKOFF,
        max: timeout,
        give_up_after: timeout,
        jitter: 0.0,
    }
}
/// Largest response body read; a chat completion for a batch is far smaller.
pub const MAX_RESPONSE_BYTES: usize = 1024 * 1024;
/// Provider error messages are cut to this many characters in notes.
const MAX_DETAIL: usize = 200;

/// An API key. Its `Debug` never shows it; it only ever leaves the process
/// in the Authorization header.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

impl ApiKey {
    /// Wrap a key, and register it with the process's scrubber
    /// ([`crate::secrets::register`]): a provider's error quoting the key,
    /// or its first characters, is scrubbed before it is shown anywhere.
    pub fn new(key: impl Into<String>) -> ApiKey {
        let key = key.into();
        crate::secrets::register(&key);
        ApiKey(key)
    }

    /// The key in environment variable `name`, if set and not empty.
    pub fn from_env(name: &str) -> Option<ApiKey> {
        std::env::var(name)
            .ok()
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
            .map(ApiKey::new)
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey([redacted])")
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    pub tokens_in: u64,
    pub tokens_out: u64,
}

/// A completion that came back with status 2xx and a chat-completions shape.
#[derive(Debug, Clone, PartialEq)]
pub struct Completion {
    pub content: Option<String>,
    pub finish_reason: Option<String>,
    /// Set when the model declined to answer (structured-output refusals).
    pub refusal: Option<String>,
    pub usage: Usage,
    pub attempts: u32,
    pub elapsed: Duration,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CallError {
    #[error("no answer within {timeout_ms} ms ({attempts} attempt(s))")]
    Timeout { timeout_ms: u64, attempts: u32 },
    #[error("HTTP {status} after {attempts} attempt(s){}", detail_suffix(detail))]
    Http {
        status: u16,
        detail: String,
        attempts: u32,
    },
    #[error(
        "quota exhausted (insufficient_quota), not retried{}",
        detail_suffix(detail)
    )]
    Quota { detail: String },
    #[error("cannot reach the model: {detail}")]
    Transport { detail: String, attempts: u32 },
    #[error("unexpected response shape: {detail}")]
    BadResponse { detail: String },
}

fn detail_suffix(d: &str) -> String {
    if d.is_empty() {
        String::new()
    } else {
        format!(": {d}")
    }
}

impl CallError {
    pub fn attempts(&self) -> u32 {
        match self {
            CallError::Timeout { attempts, .. }
            | CallError::Http { attempts, .. }
            | CallError::Transport { attempts, .. } => *attempts,
            CallError::Quota { .. } | CallError::BadResponse { .. } => 1,
        }
    }
}

pub struct Provider {
    client: reqwest::Client,
    url: String,
    key: Option<ApiKey>,
    timeout: Duration,
}

impl fmt::Debug for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Provider")
            .field("url", &super::settings::redact_url(&self.url))
            .field("key", &self.key)
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl Provider {
    /// `base_url` is the API root (`.../v1`); `/chat/completions` is appended.
    pub fn new(
        client: reqwest::Client,
        base_url: &str,
        key: Option<ApiKey>,
        timeout: Duration,
    ) -> Provider {
        Provider {
            client,
            url: format!("{}/chat/completions", base_url.trim_end_matches('/')),
            key,
            timeout,
        }
    }

    /// POST `body`, retrying what is worth retrying, all within the timeout.
    pub async fn complete(&self, body: &Value) -> Result<Completion, CallError> {
        let bytes = serde_json::to_vec(body).map_err(|e| CallError::BadResponse {
            detail: format!("cannot encode the request: {e}"),
        })?;
        let start = Instant::now();
        let deadline = start + self.timeout;
        let timed_out = |attempts| CallError::Timeout {
            timeout_ms: self.timeout.as_millis() as u64,
            attempts,
        };
        let mut retries = retry_policy(self.timeout).start(start);
        let mut attempts = 0u32;
        loop {
            attempts += 1;
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                return Err(timed_out(attempts - 1));
            }
            let mut req = self
                .client
                .post(&self.url)
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .header(reqwest::header::ACCEPT, "application/json")
                .timeout(remaining)
                .body(bytes.clone());
            if let Some(k) = &self.key {
                req = req.bearer_auth(&k.0);
            }
            let sent = tokio::time::timeout(remaining, async {
                let mut resp = req.send().await?;
                let status = resp.status().as_u16();
                let retry_after = crate::http::retry_after_of(&resp);
                let mut body = Vec::new();
                while let Some(chunk) = resp.chunk().await? {
                    let room = MAX_RESPONSE_BYTES - body.len();
                    if chunk.len() > room {
                        body.extend_from_slice(&chunk[..room]);
                        break;
                    }
                    body.extend_from_slice(&chunk);
                }
                Ok::<_, reqwest::Error>((status, retry_after, body))
            })
            .await;
            let (status, retry_after, body) = match sent {
                Err(_) => return Err(timed_out(attempts)),
                Ok(Err(e)) if e.is_timeout() => return Err(timed_out(attempts)),
                Ok(Err(e)) => {
                    return Err(CallError::Transport {
                        detail: crate::secrets::scrubbed(&crate::http::describe(&e)),
                        attempts,
                    });
                }
                Ok(Ok(r)) => r,
            };
            if (200..300).contains(&status) {
                return parse_completion(&body, attempts, start.elapsed());
            }
            let (code, message) = error_fields(&body);
            let detail = match status {
                // Auth errors may quote part of the key back: say nothing of their text.
                401 | 403 => "check the API key (api_key_env) and the model's access".to_string(),
                _ => scrubbed(&message),
            };
            if status == 429 && code.iter().any(|c| c == "insufficient_quota") {
                return Err(CallError::Quota { detail });
            }
            let retryable = matches!(status, 408 | 409 | 429) || (500..600).contains(&status);
            if !retryable {
                return Err(CallError::Http {
                    status,
                    detail,
                    attempts,
                });
            }
            let Some(wait) = retries.next_wait(Instant::now(), retry_after) else {
                tracing::debug!(status, attempts, "triage: no time left for another attempt");
                return Err(CallError::Http {
                    status,
                    detail,
                    attempts,
                });
            };
            tracing::debug!(
                status,
                attempts,
                wait_ms = wait.as_millis() as u64,
                "triage: retrying"
            );
            tokio::time::sleep(wait).await;
        }
    }
}

/// A provider's error message scrubbed of every secret of the process (the
/// key, and fragments of it such as the first characters a provider quotes),
/// then cut to [`MAX_DETAIL`] characters. Scrubbed before the cut, so a cut
/// cannot leave a fragment too short to recognise.
fn scrubbed(message: &str) -> String {
    crate::secrets::scrub(message)
        .chars()
        .take(MAX_DETAIL)
        .collect()
}

#[derive(Deserialize)]
struct RawCompletion {
    choices: Vec<RawChoice>,
    #[serde(default)]
    usage: Option<RawUsage>,
}

#[derive(Deserialize)]
struct RawChoice {
    #[serde(default)]
    finish_reason: Option<String>,
    message: RawMessage,
}

#[derive(Deserialize)]
struct RawMessage {
    #[serde(default)]
    content: Option<String>,
    #[serde(default)]
    refusal: Option<String>,
}

#[derive(Deserialize)]
struct RawUsage {
    #[serde(default)]
    prompt_tokens: u64,
    #[serde(default)]
    completion_tokens: u64,
}

fn parse_completion(
    body: &[u8],
    attempts: u32,
    elapsed: Duration,
) -> Result<Completion, CallError> {
    let raw: RawCompletion = serde_json::from_slice(body).map_err(|e| CallError::BadResponse {
        detail: format!("not a chat completion: {e}"),
    })?;
    let usage = raw
        .usage
        .map(|u| Usage {
            tokens_in: u.prompt_tokens,
            tokens_out: u.completion_tokens,
        })
        .unwrap_or_default();
    let Some(choice) = raw.choices.into_iter().next() else {
        return Err(CallError::BadResponse {
            detail: "no choices in the completion".into(),
        });
    };
    Ok(Completion {
        content: choice.message.content,
        finish_reason: choice.finish_reason,
        refusal: choice.message.refusal,
        usage,
        attempts,
        elapsed,
    })
}

/// `error.code` / `error.type` values and `error.message` of an OpenAI-style error body.
fn error_fields(body: &[u8]) -> (Vec<String>, String) {
    let Ok(v) = serde_json::from_slice::<Value>(body) else {
        return (Vec::new(), String::new());
    };
    let err = v.get("error").unwrap_or(&v);
    let mut codes = Vec::new();
    for field in ["code", "type"] {
        if let Some(s) = err.get(field).and_then(Value::as_str) {
            codes.push(s.to_string());
        }
    }
    let message = err
        .get("message")
        .and_then(Value::as_str)
        .or_else(|| err.as_str())
        .unwrap_or_default()
        .to_string();
    (codes, message)
}
