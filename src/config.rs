//! The TOML config: model, defaults, loading and validation.
//!
//! Every error names the file, line, column and field, and says what would be
//! valid. Parsing stops at the first syntax or type error (serde cannot go on
//! past one), but semantic checks collect every problem they find.

use crate::breaker::BreakerSettings;
use crate::exchange::generic::GenericSpec;
use crate::exchange::validate::ValidationSettings;
use crate::exchange::{self};
use crate::http::HttpConfig;
use crate::limiter::{BucketSpec, LimitRequest, LimiterBackend, LimiterSettings, TierBucket};
use crate::logging::LogConfig;
use crate::model::Tier;
use crate::model::{EndpointKind, ExchangeKind};
use crate::problems::{Problems, check_bucket, check_duration, check_url, is_env_name, is_ident};
use crate::redis_link::RedisConfig;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
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

/// One error found in a config, positioned in its file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub file: String,
    pub line: usize,
    pub column: usize,
    /// Dotted path of the field, e.g. `exchanges[1].endpoints[0].interval`.
    pub field: String,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}: {}",
            self.file, self.line, self.column, self.field, self.message
        )
    }
}

/// Every error of one config, in file order.
#[derive(Debug, Clone, thiserror::Error)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read config {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Invalid(ConfigErrors),
    #[error(
        "no config given: pass -c FILE, set EXWATCH_CONFIG, or create ~/.config/exwatch/config.toml \
         (start from config.example.toml; `exwatch demo` needs no config)"
    )]
    NotFound,
}

/// Where the config comes from: `-c`, else `$EXWATCH_CONFIG`, else the user's config dir.
pub fn locate(cli: Option<&Path>) -> Result<PathBuf, LoadError> {
    if let Some(p) = cli {
        return Ok(p.to_path_buf());
    }
    if let Some(p) = std::env::var_os("EXWATCH_CONFIG").filter(|v| !v.is_empty()) {
        return Ok(PathBuf::from(p));
    }
    if let Some(home) = std::env::var_os("HOME") {
        let p = PathBuf::from(home).join(".config/exwatch/config.toml");
        if p.exists() {
            return Ok(p);
        }
    }
    Err(LoadError::NotFound)
}

pub fn load(path: &Path) -> Result<Config, LoadError> {
    let text = std::fs::read_to_string(path).map_err(|source| LoadError::Io {
        path: path.display().to_string(),
        source,
    })?;
    parse(&path.display().to_string(), &text).map_err(LoadError::Invalid)
}

/// Parse and validate a config text. `file` only names it in errors.
pub fn parse(file: &str, text: &str) -> Result<Config, ConfigErrors> {
    let locator = Locator::new(file, text);
    let (config, mut errors, pruned) = match toml::from_str::<Config>(text) {
        Ok(c) => (Some(c), Vec::new(), Pruned::default()),
        Err(e) => recover(&locator, &e),
    };
    if let Some(config) = &config {
        let mut problems = Problems::default();
        config.validate(&mut problems);
        for (path, message) in &problems.0 {
            let path = pruned.original(path);
            // A key dropped to get past a type error took its default: what
            // validation says about that default is not the user's doing.
            if !pruned.covers(&path) {
                errors.push(locator.at_path(&path, message));
            }
        }
    }
    match config {
        Some(config) if errors.is_empty() => Ok(config),
        _ => {
            errors.sort_by_key(|e| (e.line, e.column));
            errors.dedup();
            Err(ConfigErrors(errors))
        }
    }
}

/// How many keys or tables [`recover`] drops before it stops looking.
const MAX_TYPE_ERRORS: usize = 32;

/// serde stops at the first type error (a wrong type, an unknown key or kind,
/// a bad duration, a missing field). To report the others in the same run,
/// drop what it named from a copy of the document (the key, or for a missing
/// field the table that lacks it) and parse again, until the rest parses or a
/// TOML syntax error leaves nothing to drop. Returns the config that parsed
/// without what was dropped, if it came to that, and every error, positioned
/// in the original text.
fn recover(
    locator: &Locator<'_>,
    first: &toml::de::Error,
) -> (Option<Config>, Vec<ConfigError>, Pruned) {
    let mut errors = vec![locator.locate_toml_error(first)];
    let mut pruned = Pruned::default();
    let Ok(mut doc) = locator.text.parse::<toml_edit::DocumentMut>() else {
        return (None, errors, pruned);
    };
    let mut text = locator.text.to_string();
    let mut error = first.clone();
    for _ in 0..MAX_TYPE_ERRORS {
        let here = Locator::new(locator.file, &text);
        let Some(path) = error.span().and_then(|s| here.path_at(s.start)) else {
            break;
        };
        // An unknown kind becomes the first valid one rather than leaving its
        // table without a required field, so the rest of the table is checked.
        let fixed = match first_variant(error.message()) {
            Some(v) => pruned.replace_path(doc.as_table_mut(), &path, v),
            None => pruned.drop_path(doc.as_table_mut(), &path),
        };
        if !fixed {
            break;
        }
        text = doc.to_string();
        error = match toml::from_str::<Config>(&text) {
            Ok(config) => return (Some(config), errors, pruned),
            Err(e) => e,
        };
        let here = Locator::new(locator.file, &text);
        let Some(at) = error.span().and_then(|s| here.path_at(s.start)) else {
            errors.push(locator.at_path("(document)", &explain_serde(error.message())));
            break;
        };
        let at = pruned.original(&at);
        // A missing field this search dropped itself was reported already.
        let ours =
            missing_field(error.message()).is_some_and(|f| pruned.covers(&format!("{at}.{f}")));
        if !ours {
            errors.push(locator.at_path(&at, &explain_serde(error.message())));
        }
    }
    (None, errors, pruned)
}

/// `unknown variant `x`, expected one of `a`, `b`` → `a`.
fn first_variant(message: &str) -> Option<&str> {
    let (_, options) = message.trim().split_once("unknown variant `")?;
    let (_, options) = options.split_once("expected one of `")?;
    options.split('`').next()
}

/// `missing field `kind`` → `kind`.
fn missing_field(message: &str) -> Option<&str> {
    let rest = message.trim().strip_prefix("missing field `")?;
    rest.split('`').next()
}

/// What [`recover`] dropped from its copy of the document.
#[derive(Default)]
struct Pruned {
    /// Dropped paths, in the original document's indexes.
    dropped: Vec<String>,
    /// `[[...]]` elements removed, in order: (array path in the copy as it
    /// was then, index). Later siblings in the copy sit one index lower.
    removed: Vec<(String, usize)>,
}

impl Pruned {
    /// Drop `path` (in the copy's indexes) from the copy: a key, a table, or
    /// one `[[...]]` element. False if there is no such thing.
    fn drop_path(&mut self, root: &mut toml_edit::Table, path: &str) -> bool {
        let parts: Vec<&str> = path.split('.').collect();
        let Some((last, parents)) = parts.split_last() else {
            return false;
        };
        let Some(table) = table_at(root, parents) else {
            return false;
        };
        let removed = match split_index(last) {
            (key, None) => table.remove(key).map(|_| None),
            (key, Some(i)) => table
                .get_mut(key)
                .and_then(|v| v.as_array_of_tables_mut())
                .filter(|array| i < array.len())
                .map(|array| {
                    array.remove(i);
                    Some((path[..path.len() - last.len()].to_string() + key, i))
                }),
        };
        let Some(element) = removed else {
            return false;
        };
        self.dropped.push(self.original(path));
        self.removed.extend(element);
        true
    }

    /// Set the string at `path` (a key in the copy's indexes) to `value`.
    fn replace_path(&mut self, root: &mut toml_edit::Table, path: &str, value: &str) -> bool {
        let parts: Vec<&str> = path.split('.').collect();
        let Some((last, parents)) = parts.split_last() else {
            return false;
        };
        let Some(slot) = table_at(root, parents).and_then(|t| t.get_mut(last)) else {
            return false;
        };
        if slot.as_str() == Some(value) {
            return false;
        }
        *slot = toml_edit::value(value);
        self.dropped.push(self.original(path));
        true
    }

    /// A path in the copy's indexes, in the original's.
    fn original(&self, path: &str) -> String {
        let mut path = path.to_string();
        for (array, index) in self.removed.iter().rev() {
            let head = format!("{array}[");
            let Some(rest) = path.strip_prefix(&head) else {
                continue;
            };
            let Some((i, tail)) = rest.split_once(']') else {
                continue;
            };
            if let Ok(i) = i.parse::<usize>()
                && i >= *index
            {
                path = format!("{head}{}]{tail}", i + 1);
            }
        }
        path
    }

    /// `path` (original indexes) was dropped or replaced, or lies below or
    /// above something that was: what validation says there may be our doing
    /// (an emptied list, a default in place of a bad value).
    fn covers(&self, path: &str) -> bool {
        self.dropped
            .iter()
            .any(|d| is_within(path, d) || is_within(d, path))
    }
}

/// `path` is `prefix` or lies below it (`a.b` is within `a`, `a.bc` is not).
fn is_within(path: &str, prefix: &str) -> bool {
    path.strip_prefix(prefix)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with(['.', '[']))
}

/// The table (or inline table) at a dotted path such as `exchanges[0].rate_limit`.
fn table_at<'t>(
    root: &'t mut toml_edit::Table,
    parts: &[&str],
) -> Option<&'t mut dyn toml_edit::TableLike> {
    let mut table: &mut dyn toml_edit::TableLike = root;
    for part in parts {
        let next = table.get_mut(split_index(part).0)?;
        table = match split_index(part).1 {
            None => next.as_table_like_mut()?,
            Some(i) => next.as_array_of_tables_mut()?.get_mut(i)?,
        };
    }
    Some(table)
}

/// `endpoints[2]` → (`endpoints`, Some(2)); `interval` → (`interval`, None).
fn split_index(part: &str) -> (&str, Option<usize>) {
    match part.find('[') {
        Some(i) => (
            &part[..i],
            part[i + 1..part.len().saturating_sub(1)]
                .parse::<usize>()
                .ok(),
        ),
        None => (part, None),
    }
}

impl Config {
    fn validate(&self, p: &mut Problems) {
        if self.exchanges.is_empty() {
            p.push(
                "exchanges",
                "no exchange configured: add at least one [[exchanges]] table",
            );
        }
        check_duration(p, "defaults.interval", self.defaults.interval);
        check_duration(p, "defaults.timeout", self.defaults.timeout);
        check_duration(p, "http.connect_timeout", self.http.connect_timeout);
        check_duration(p, "headless.interval", self.headless.interval);
        self.metrics.validate(p);
        if self.http.max_body_bytes < 1024 {
            p.push("http.max_body_bytes", "must be at least 1024 bytes");
        }
        if !["error", "warn", "info", "debug", "trace"].contains(&self.log.level.as_str()) {
            p.push(
                "log.level",
                "must be one of error, warn, info, debug, trace",
            );
        }
        self.breaker.validate("breaker", p);
        if self.limiter.instances == 0 {
            p.push("limiter.instances", "must be at least 1");
        }
        if self.limiter.backend == LimiterBackend::Redis && self.redis.is_none() {
            p.push(
                "limiter.backend",
                "`redis` needs a [redis] table with url_env",
            );
        }
        if self.breaker.store == crate::breaker::StoreKind::Redis && self.redis.is_none() {
            p.push(
                "breaker.store",
                "`redis` needs a [redis] table with url_env",
            );
        }
        if let Some(r) = &self.redis {
            if !is_env_name(&r.url_env) {
                p.push(
                    "redis.url_env",
                    "must be the NAME of an environment variable (A-Z, 0-9, _), not the URL itself",
                );
            }
            check_duration(p, "redis.timeout", r.timeout);
        }
        let v = &self.validation;
        if !(v.max_price_jump_pct.is_finite() && v.max_price_jump_pct > 0.0) {
            p.push(
                "validation.max_price_jump_pct",
                "must be a positive percentage, e.g. 10.0",
            );
        }
        // No upper bound: a huge max_age is how staleness checks are switched off.
        if v.max_age.is_zero() {
            p.push(
                "validation.max_age",
                "must be greater than zero, e.g. \"30s\"",
            );
        }
        check_duration(p, "validation.frozen_after", v.frozen_after);
        self.alerts.validate("alerts", self.redis.is_some(), p);
        self.journal.validate("journal", p);
        self.triage.validate(p);
        self.keys.validate(p);

        let mut names = BTreeMap::new();
        for (i, ex) in self.exchanges.iter().enumerate() {
            let at = format!("exchanges[{i}]");
            if let Some(prev) = names.insert(ex.name.clone(), i) {
                p.push(
                    format!("{at}.name"),
                    format!(
                        "duplicate exchange name {:?} (also exchanges[{prev}])",
                        ex.name
                    ),
                );
            }
            ex.validate(&at, p);
        }
    }

    /// Every endpoint to poll, with defaults and presets applied.
    pub fn endpoints(&self) -> Vec<ResolvedEndpoint> {
        let mut out = Vec::new();
        for ex in &self.exchanges {
            for ep in &ex.endpoints {
                if let Some(r) = ex.resolve(ep, self) {
                    out.push(r);
                }
            }
        }
        out
    }

    pub fn breaker_for(&self, exchange: &str) -> &BreakerSettings {
        self.exchanges
            .iter()
            .find(|e| e.name == exchange)
            .and_then(|e| e.breaker.as_ref())
            .unwrap_or(&self.breaker)
    }
}

impl ExchangeConfig {
    fn validate(&self, at: &str, p: &mut Problems) {
        if !is_ident(&self.name) {
            p.push(
                format!("{at}.name"),
                "must be a non-empty name of letters, digits, '-' or '_'",
            );
        }
        match &self.base_url {
            Some(u) => check_url(p, &format!("{at}.base_url"), u),
            None if self.kind == ExchangeKind::Generic => p.push(
                format!("{at}.base_url"),
                "the generic kind has no default base URL: set base_url = \"https://...\"",
            ),
            None => {}
        }
        if self.kind == ExchangeKind::Generic && self.generic.is_none() {
            p.push(
                format!("{at}.generic"),
                "the generic kind needs a [exchanges.generic] table with JSON pointers",
            );
        }
        if let Some(g) = &self.generic {
            g.validate(&format!("{at}.generic"), p);
        }
        if let Some(b) = &self.rate_limit {
            check_bucket(p, &format!("{at}.rate_limit"), b.capacity, b.refill_per_sec);
        }
        for (field, nb) in [("account", &self.account), ("ip", &self.ip)] {
            if let Some(nb) = nb {
                check_bucket(p, &format!("{at}.{field}"), nb.capacity, nb.refill_per_sec);
                if nb.name.is_empty() {
                    p.push(format!("{at}.{field}.name"), "must not be empty");
                }
            }
        }
        if let Some(b) = &self.breaker {
            b.validate(&format!("{at}.breaker"), p);
        }
        if self.endpoints.is_empty() {
            p.push(
                format!("{at}.endpoints"),
                "no endpoint configured: add at least one [[exchanges.endpoints]]",
            );
        }
        let mut names = BTreeMap::new();
        for (j, ep) in self.endpoints.iter().enumerate() {
            let at = format!("{at}.endpoints[{j}]");
            if let Some(prev) = names.insert(ep.name.clone(), j) {
                p.push(
                    format!("{at}.name"),
                    format!(
                        "duplicate endpoint name {:?} (also endpoints[{prev}])",
                        ep.name
                    ),
                );
            }
            if !is_ident(&ep.name) {
                p.push(
                    format!("{at}.name"),
                    "must be a non-empty name of letters, digits, '-' or '_'",
                );
            }
            if let Some(d) = ep.interval {
                check_duration(p, &format!("{at}.interval"), d);
            }
            if let Some(d) = ep.timeout {
                check_duration(p, &format!("{at}.timeout"), d);
            }
            if ep.weight == Some(0) {
                p.push(format!("{at}.weight"), "must be at least 1");
            }
            if let Some(b) = &ep.rate_limit {
                check_bucket(p, &format!("{at}.rate_limit"), b.capacity, b.refill_per_sec);
            }
            match &ep.path {
                Some(path) if !path.starts_with('/') => p.push(
                    format!("{at}.path"),
                    "must start with '/', e.g. \"/api/v3/time\"",
                ),
                None if self.kind == ExchangeKind::Generic => p.push(
                    format!("{at}.path"),
                    "the generic kind has no presets: set path = \"/...\"",
                ),
                _ => {}
            }
            let weight = ep.weight.unwrap_or(1) as f64;
            let exchange_cap = self
                .rate_limit
                .map(|b| b.capacity)
                .unwrap_or(exchange::default_budget(self.kind).capacity);
            if weight > exchange_cap {
                p.push(format!("{at}.weight"), format!("weight {weight} exceeds the exchange's capacity {exchange_cap}: it could never be granted"));
            }
        }
    }

    fn resolve(&self, ep: &EndpointConfig, cfg: &Config) -> Option<ResolvedEndpoint> {
        let symbol = ep
            .symbol
            .clone()
            .or_else(|| self.symbol.clone())
            .unwrap_or_else(|| default_symbol(self.kind).to_string());
        let depth = ep.depth.unwrap_or(20);
        let preset = exchange::preset(self.kind, ep.kind, &symbol, depth);
        let (path, mut query, preset_weight) = match (&ep.path, preset) {
            (Some(path), _) => (path.clone(), Vec::new(), 1),
            (None, Some(pr)) => (pr.path, pr.query, pr.weight),
            (None, None) => return None,
        };
        for (k, v) in &ep.query {
            query.retain(|(qk, _)| qk != k);
            query.push((k.clone(), v.clone()));
        }
        let base = self
            .base_url
            .clone()
            .or_else(|| exchange::default_base_url(self.kind).map(str::to_string))?;
        // A base with a path (https://host/prefix, the simulator's /binance) stays a prefix.
        let mut url = url::Url::parse(&format!("{}{}", base.trim_end_matches('/'), path)).ok()?;
        if !query.is_empty() {
            url.query_pairs_mut()
                .extend_pairs(query.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        }
        let weight = ep.weight.unwrap_or(preset_weight).max(1);
        let exchange_spec = self.rate_limit.unwrap_or_else(|| {
            let b = exchange::default_budget(self.kind);
            BucketSpec {
                capacity: b.capacity,
                refill_per_sec: b.refill_per_sec,
            }
        });
        let mut tiers = vec![TierBucket {
            tier: Tier::Exchange,
            id: LimitRequest::bucket_id(&self.name, Tier::Exchange, "all"),
            spec: exchange_spec,
        }];
        if let Some(spec) = ep.rate_limit {
            tiers.push(TierBucket {
                tier: Tier::Endpoint,
                id: LimitRequest::bucket_id(&self.name, Tier::Endpoint, &ep.name),
                spec,
            });
        }
        for (tier, nb) in [(Tier::Account, &self.account), (Tier::Ip, &self.ip)] {
            if let Some(nb) = nb {
                tiers.push(TierBucket {
                    tier,
                    id: LimitRequest::bucket_id(&self.name, tier, &nb.name),
                    spec: BucketSpec {
                        capacity: nb.capacity,
                        refill_per_sec: nb.refill_per_sec,
                    },
                });
            }
        }
        Some(ResolvedEndpoint {
            exchange: self.name.clone(),
            exchange_kind: self.kind,
            endpoint: ep.name.clone(),
            kind: ep.kind,
            symbol,
            url: url.to_string(),
            interval: ep.interval.unwrap_or(cfg.defaults.interval),
            timeout: ep.timeout.unwrap_or(cfg.defaults.timeout),
            limit: LimitRequest {
                exchange: self.name.clone(),
                tiers,
                weight,
            },
            breaker: self.breaker.clone().unwrap_or_else(|| cfg.breaker.clone()),
            generic: self.generic.clone(),
            validation: cfg.validation.clone(),
        })
    }
}

/// An endpoint ready to poll: URL built, defaults and presets applied.
#[derive(Debug, Clone)]
pub struct ResolvedEndpoint {
    pub exchange: String,
    pub exchange_kind: ExchangeKind,
    pub endpoint: String,
    pub kind: EndpointKind,
    pub symbol: String,
    pub url: String,
    pub interval: Duration,
    pub timeout: Duration,
    pub limit: LimitRequest,
    pub breaker: BreakerSettings,
    pub generic: Option<GenericSpec>,
    pub validation: ValidationSettings,
}

pub fn default_symbol(kind: ExchangeKind) -> &'static str {
    match kind {
        ExchangeKind::Binance | ExchangeKind::Bybit => "BTCUSDT",
        ExchangeKind::Okx => "BTC-USDT",
        ExchangeKind::Coinbase => "BTC-USD",
        ExchangeKind::Kraken => "XBTUSDT",
        ExchangeKind::Generic => "BTC-USDT",
    }
}

/// Maps byte offsets and field paths back to lines and columns.
struct Locator<'a> {
    file: &'a str,
    text: &'a str,
    doc: Option<toml_edit::Document<&'a str>>,
}

impl<'a> Locator<'a> {
    fn new(file: &'a str, text: &'a str) -> Self {
        Locator {
            file,
            text,
            doc: toml_edit::Document::parse(text).ok(),
        }
    }

    fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let before = &self.text[..offset];
        let line = before.matches('\n').count() + 1;
        let col = before.rfind('\n').map(|i| offset - i).unwrap_or(offset + 1);
        (line, col)
    }

    fn locate_toml_error(&self, e: &toml::de::Error) -> ConfigError {
        let offset = e.span().map(|s| s.start).unwrap_or(0);
        let (line, column) = self.line_col(offset);
        let field = self.path_at(offset).unwrap_or_else(|| "(document)".into());
        ConfigError {
            file: self.file.into(),
            line,
            column,
            field,
            message: explain_serde(e.message()),
        }
    }

    /// The dotted path of the deepest item that starts at or before `offset`.
    fn path_at(&self, offset: usize) -> Option<String> {
        let root = self.doc.as_ref()?.as_item().as_table()?;
        let path = descend_table(root, offset, String::new());
        if path.is_empty() { None } else { Some(path) }
    }

    /// Position of a field path produced by validation; falls back to the
    /// deepest parent that exists in the file (a missing field points at its table).
    fn at_path(&self, path: &str, message: &str) -> ConfigError {
        let parts: Vec<&str> = path.split('.').collect();
        let offset = self
            .doc
            .as_ref()
            .and_then(|d| d.as_item().as_table())
            .and_then(|t| span_of_path(t, &parts))
            .unwrap_or(0);
        let (line, column) = self.line_col(offset);
        ConfigError {
            file: self.file.into(),
            line,
            column,
            field: path.into(),
            message: message.into(),
        }
    }
}

fn descend_table(t: &toml_edit::Table, offset: usize, mut path: String) -> String {
    let mut best: Option<(&str, &toml_edit::Item, usize)> = None;
    for (k, v) in t.iter() {
        // A `[[a.b]]` header starts before its key `b`: take whichever comes first.
        let key_start = t.key(k).and_then(|key| key.span()).map(|s| s.start);
        let start = match (key_start, first_span(v)) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        if let Some(s) = start
            && s <= offset
            && best.is_none_or(|(_, _, b)| s > b)
        {
            best = Some((k, v, s));
        }
    }
    if let Some((k, v, _)) = best {
        push_key(&mut path, k);
        match v {
            toml_edit::Item::Table(inner) => return descend_table(inner, offset, path),
            toml_edit::Item::ArrayOfTables(a) => {
                let mut chosen = None;
                for (i, t) in a.iter().enumerate() {
                    if let Some(s) = t.span()
                        && s.start <= offset
                    {
                        chosen = Some((i, t));
                    }
                }
                if let Some((i, t)) = chosen {
                    path.push_str(&format!("[{i}]"));
                    return descend_table(t, offset, path);
                }
            }
            toml_edit::Item::Value(toml_edit::Value::InlineTable(it)) => {
                for (ik, iv) in it.iter() {
                    if contains(iv.span(), offset) {
                        push_key(&mut path, ik);
                    }
                }
            }
            _ => {}
        }
    }
    path
}

fn first_span(item: &toml_edit::Item) -> Option<usize> {
    match item {
        toml_edit::Item::ArrayOfTables(a) => {
            a.iter().filter_map(|t| t.span()).map(|s| s.start).min()
        }
        other => other.span().map(|s| s.start),
    }
}

fn contains(span: Option<std::ops::Range<usize>>, offset: usize) -> bool {
    span.is_some_and(|s| s.start <= offset && offset < s.end.max(s.start + 1))
}

fn push_key(path: &mut String, k: &str) {
    if !path.is_empty() {
        path.push('.');
    }
    path.push_str(k);
}

/// Span start of `a.b[2].c`, or of the deepest existing parent.
fn span_of_path(t: &toml_edit::Table, parts: &[&str]) -> Option<usize> {
    let (part, rest) = parts.split_first()?;
    let (key, index) = split_index(part);
    let (k, v) = t.get_key_value(key)?;
    let here = k.span().map(|s| s.start).or_else(|| first_span(v));
    let deeper = match (v, index) {
        (toml_edit::Item::ArrayOfTables(a), Some(i)) => a
            .get(i)
            .and_then(|inner| span_of_path(inner, rest).or_else(|| inner.span().map(|s| s.start))),
        (toml_edit::Item::Table(inner), None) => span_of_path(inner, rest),
        // One entry of a plain array (`inhibit_kinds[1]`): its own line.
        (toml_edit::Item::Value(toml_edit::Value::Array(arr)), Some(i)) => {
            arr.get(i).and_then(|v| v.span()).map(|s| s.start)
        }
        (toml_edit::Item::Value(toml_edit::Value::InlineTable(it)), None) => rest
            .first()
            .and_then(|r| it.get_key_value(r))
            .and_then(|(k, v)| k.span().or_else(|| v.span()))
            .map(|s| s.start),
        _ => None,
    };
    deeper.or(here)
}

fn explain_serde(message: &str) -> String {
    let m = message.trim();
    if let Some(rest) = m.strip_prefix("unknown field ") {
        return format!("unknown key {rest}");
    }
    m.to_string()
}
