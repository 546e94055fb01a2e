//! The TOML config. This file is the model: the tables that compose each
//! owner's settings (`[limiter]` is `limiter::LimiterSettings`, `[alerts]` is
//! `alert::AlertSettings`...). Around it, one file per job:
//!
//! - `load.rs`: find and read the file (`locate`, `load`, `parse`);
//! - `diagnose.rs`: the multi-error diagnosis that reports every type error
//!   in one run, each with its file, line, column and field;
//! - `validate.rs`: semantic checks that span owners (each owner validates
//!   its own settings into a `problems::Problems`);
//! - `resolve.rs`: endpoint resolution (defaults, presets, URL, tiers) and
//!   stream resolution ([`Config::streams`]);
//! - `streams.rs`: the `[[exchanges.streams]]` table ([`StreamConfig`]),
//!   its per-exchange defaults and [`ResolvedStream`].

mod diagnose;
mod load;
mod resolve;
mod streams;
mod validate;

pub use load::{ConfigError, ConfigErrors, LoadError, load, locate, parse};
pub use resolve::ResolvedEndpoint;
pub use streams::{
    BookDepths, DEFAULT_FEEDS, DEFAULT_SILENT_AFTER, FeedName, ResolvedStream, StreamConfig,
    book_depths, default_name, default_symbol, offers, ping_bounds,
};

use crate::breaker::BreakerSettings;
use crate::exchange::generic::GenericSpec;
use crate::exchange::validate::ValidationSettings;
use crate::http::HttpConfig;
use crate::limiter::{BucketSpec, LimiterSettings};
use crate::logging::LogConfig;
use crate::model::{EndpointKind, ExchangeKind};
use crate::redis_link::RedisConfig;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::time::Duration;

pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(5);
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(3);

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub instance: InstanceConfig,
    #[serde(default)]
    pub log: LogConfig,
    #[serde(default)]
    pub http: HttpConfig,
    #[serde(default)]
    pub defaults: EndpointDefaults,
    #[serde(default)]
    pub breaker: BreakerSettings,
    #[serde(default)]
    pub limiter: LimiterSettings,
    #[serde(default)]
    pub redis: Option<RedisConfig>,
    #[serde(default)]
    pub validation: ValidationSettings,
    #[serde(default)]
    pub headless: HeadlessConfig,
    #[serde(default)]
    pub metrics: crate::metrics::MetricsSettings,
    #[serde(default)]
    pub triage: crate::alert::triage::TriageSettings,
    #[serde(default)]
    pub exchanges: Vec<ExchangeConfig>,
    #[serde(default)]
    pub alerts: crate::alert::AlertSettings,
    #[serde(default)]
    pub journal: crate::journal::JournalSettings,
    /// Dashboard key bindings that replace the defaults.
    #[serde(default)]
    pub keys: crate::ui::keymap::KeymapConfig,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct InstanceConfig {
    /// Shown in the header and in notifications, so several instances can be told apart.
    pub name: String,
}

impl Default for InstanceConfig {
    fn default() -> Self {
        InstanceConfig {
            name: "exwatch".into(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EndpointDefaults {
    #[serde(with = "humantime_serde")]
    pub interval: Duration,
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
}

impl Default for EndpointDefaults {
    fn default() -> Self {
        EndpointDefaults {
            interval: DEFAULT_INTERVAL,
            timeout: DEFAULT_TIMEOUT,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HeadlessConfig {
    /// How often `run --headless` prints its status lines.
    #[serde(with = "humantime_serde")]
    pub interval: Duration,
}

impl Default for HeadlessConfig {
    fn default() -> Self {
        HeadlessConfig {
            interval: Duration::from_secs(5),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExchangeConfig {
    pub name: String,
    pub kind: ExchangeKind,
    /// Overrides the exchange's real base URL (testnets, proxies, the simulator).
    pub base_url: Option<String>,
    /// Default symbol of the preset endpoints, in the exchange's own spelling.
    pub symbol: Option<String>,
    /// Per-IP budget of the whole exchange; defaults to the exchange's documented limit.
    pub rate_limit: Option<BucketSpec>,
    /// Optional per-account tier, for budgets the exchange counts per account.
    pub account: Option<NamedBucket>,
    /// Optional per-source-IP tier, for hosts with several egress IPs.
    pub ip: Option<NamedBucket>,
    pub breaker: Option<BreakerSettings>,
    /// JSON pointers and health conditions of the generic kind.
    pub generic: Option<GenericSpec>,
    #[serde(default)]
    pub endpoints: Vec<EndpointConfig>,
    /// WebSocket connections (`[[exchanges.streams]]`); an exchange with
    /// streams may have no endpoints.
    #[serde(default)]
    pub streams: Vec<StreamConfig>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NamedBucket {
    pub name: String,
    pub capacity: f64,
    pub refill_per_sec: f64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EndpointConfig {
    pub name: String,
    /// What the endpoint returns: `time`, `ticker` or `book`.
    pub kind: EndpointKind,
    pub symbol: Option<String>,
    /// Path below the base URL; defaults to the exchange's preset for `kind`.
    pub path: Option<String>,
    #[serde(default)]
    pub query: BTreeMap<String, String>,
    /// Book levels to ask for, where the preset takes one.
    pub depth: Option<u32>,
    #[serde(default, with = "humantime_serde")]
    pub interval: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    pub timeout: Option<Duration>,
    /// Request weight; defaults to the exchange's documented weight.
    pub weight: Option<u32>,
    pub rate_limit: Option<BucketSpec>,
}
