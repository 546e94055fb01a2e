//! The `[triage]` config table.

use crate::model::Severity;
use crate::problems::Problems;
use serde::Deserialize;
use std::fmt;
use std::time::Duration;

#[derive(Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TriageSettings {
    /// `false` switches triage off entirely: no rules, no model.
    pub enabled: bool,
    /// OpenAI-compatible API root, e.g. `https://api.openai.com/v1` or
    /// `http://127.0.0.1:11434/v1` (Ollama). Unset: rules only.
    pub base_url: Option<String>,
    pub model: String,
    /// NAME of the environment variable holding the API key. Unset: no
    /// Authorization header (local servers).
    pub api_key_env: Option<String>,
    /// Bound of one triage call, retries included.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    pub max_tokens: u32,
    pub temperature: f64,
    /// USD per million input (prompt) tokens.
    pub price_in_per_mtok: f64,
    /// USD per million output (completion) tokens.
    pub price_out_per_mtok: f64,
    /// Severities triaged as soon as they fire, without being asked.
    pub auto: Vec<Severity>,
    /// Alerts arriving within this window of the first are triaged in one call.
    #[serde(with = "humantime_serde")]
    pub batch_window: Duration,
    /// Most alerts in one call.
    pub max_batch: usize,
    /// Requests waiting for the triage task; when full, rules answer at once.
    pub queue: usize,
}

impl Default for TriageSettings {
    fn default() -> Self {
        TriageSettings {
            enabled: true,
            base_url: None,
            model: String::new(),
            api_key_env: None,
            timeout: Duration::from_secs(20),
            max_tokens: 2048,
            temperature: 0.0,
            price_in_per_mtok: 0.0,
            price_out_per_mtok: 0.0,
            auto: vec![Severity::Critical, Severity::Emergency],
            batch_window: Duration::from_secs(2),
            max_batch: 10,
            queue: 64,
        }
    }
}

/// Redacts the user-info part of the base URL: `https://user:pass@host` must
/// not reach a log through `{:?}`.
impl fmt::Debug for TriageSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TriageSettings")
            .field("enabled", &self.enabled)
            .field("base_url", &self.base_url.as_deref().map(redact_url))
            .field("model", &self.model)
            .field("api_key_env", &self.api_key_env)
            .field("timeout", &self.timeout)
            .field("max_tokens", &self.max_tokens)
            .field("temperature", &self.temperature)
            .field("price_in_per_mtok", &self.price_in_per_mtok)
            .field("price_out_per_mtok", &self.price_out_per_mtok)
            .field("auto", &self.auto)
            .field("batch_window", &self.batch_window)
            .field("max_batch", &self.max_batch)
            .field("queue", &self.queue)
            .finish()
    }
}

/// `scheme://host[:port]/path` without user, password, query or fragment.
pub fn redact_url(u: &str) -> String {
    match url::Url::parse(u) {
        Ok(mut url) => {
            let _ = url.set_username("");
            let _ = url.set_password(None);
            url.set_query(None);
            url.set_fragment(None);
            url.to_string()
        }
        Err(_) => "(invalid url)".into(),
    }
}

impl TriageSettings {
    /// Whether a model is configured (otherwise rules answer).
    pub fn uses_model(&self) -> bool {
        self.enabled && self.base_url.is_some()
    }

    /// Cost in USD of a call with these token counts.
    pub fn cost_usd(&self, tokens_in: u64, tokens_out: u64) -> f64 {
        (tokens_in as f64 * self.price_in_per_mtok + tokens_out as f64 * self.price_out_per_mtok)
            / 1_000_000.0
    }

    /// Semantic checks, reported under `triage.<field>`.
    pub fn validate(&self, p: &mut Problems) {
        if let Some(u) = &self.base_url {
            match url::Url::parse(u) {
                Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => {
                    if !url.username().is_empty() || url.password().is_some() {
                        p.push(
                            "triage.base_url",
                            "must not carry credentials; put the API key in the variable named by api_key_env",
                        );
                    }
                    let loopback = match url.host() {
                        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
                        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
                        Some(url::Host::Domain(d)) => d == "localhost",
                        None => false,
                    };
                    if url.scheme() == "http" && !loopback && self.api_key_env.is_some() {
                        p.push(
                            "triage.base_url",
                            "plain http to a non-loopback host would send the API key in clear text; use https",
                        );
                    }
                }
                Ok(_) => p.push(
                    "triage.base_url",
                    format!(
                        "{:?} is not an http(s) URL with a host, e.g. \"https://api.openai.com/v1\" or \"http://127.0.0.1:11434/v1\"",
                        redact_url(u)
                    ),
                ),
                Err(e) => p.push(
                    "triage.base_url",
                    format!(
                        "not a valid URL ({e}); expected e.g. \"https://api.openai.com/v1\" or \"http://127.0.0.1:11434/v1\""
                    ),
                ),
            }
            if self.model.trim().is_empty() {
                p.push(
                    "triage.model",
                    "base_url is set, so a model name is needed, e.g. \"gpt-4o-mini\" or \"llama3.1:8b\"",
                );
            }
        }
        if let Some(name) = &self.api_key_env {
            if !crate::problems::is_env_name(name) {
                p.push(
                    "triage.api_key_env",
                    "must be the NAME of an environment variable (A-Z, 0-9, _), not the key itself",
                );
            }
        }
        // A model call takes at least a round trip and a few tokens: under
        // 100 ms every call would time out (`"1ns"` was accepted).
        crate::problems::check_duration(
            p,
            "triage.timeout",
            self.timeout,
            crate::problems::ms(100),
            crate::problems::secs(600),
        );
        if !(16..=128_000).contains(&self.max_tokens) {
            p.push(
                "triage.max_tokens",
                "must be between 16 and 128000 (about 200 per alert in a batch)",
            );
        }
        if !(self.temperature.is_finite() && (0.0..=2.0).contains(&self.temperature)) {
            p.push("triage.temperature", "must be between 0.0 and 2.0");
        }
        for (field, v) in [
            ("price_in_per_mtok", self.price_in_per_mtok),
            ("price_out_per_mtok", self.price_out_per_mtok),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                p.push(
                    format!("triage.{field}"),
                    "must be a price >= 0 in USD per million tokens, e.g. 0.15",
                );
            }
        }
        if self.batch_window > Duration::from_secs(60) {
            p.push(
                "triage.batch_window",
                "must be at most 60s: alerts wait this long for their triage",
            );
        }
        if !(1..=50).contains(&self.max_batch) {
            p.push("triage.max_batch", "must be between 1 and 50");
        }
        if !(1..=10_000).contains(&self.queue) {
            p.push("triage.queue", "must be between 1 and 10000");
        }
    }
}
