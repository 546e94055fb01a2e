//! Semantic checks of the whole config, after it parsed: each owner's
//! settings validate themselves; this adds what spans owners.

use super::streams::{self, MAX_SILENT_AFTER, MIN_SILENT_AFTER};
use super::*;
use crate::exchange::{self};
use crate::limiter::LimiterBackend;
use crate::model::ExchangeKind;
use crate::problems::{
    DAY, Problems, check_bucket, check_count, check_duration, check_url, is_env_name, is_ident, ms,
    secs, without_userinfo,
};
use crate::stream::spec::data_symbol;
use std::time::Duration;

/// Range of poll intervals (`defaults.interval`, an endpoint's `interval`).
const INTERVAL: (Duration, Duration) = (ms(10), DAY);
/// Range of request timeouts (`defaults.timeout`, an endpoint's `timeout`,
/// `http.connect_timeout`).
const TIMEOUT: (Duration, Duration) = (ms(10), secs(300));
use std::collections::BTreeMap;

impl Config {
    pub(super) fn validate(&self, p: &mut Problems) {
        if self.exchanges.is_empty() {
            p.push(
                "exchanges",
                "no exchange configured: add at least one [[exchanges]] table",
            );
        }
        check_duration(
            p,
            "defaults.interval",
            self.defaults.interval,
            INTERVAL.0,
            INTERVAL.1,
        );
        check_duration(
            p,
            "defaults.timeout",
            self.defaults.timeout,
            TIMEOUT.0,
            TIMEOUT.1,
        );
        check_duration(
            p,
            "http.connect_timeout",
            self.http.connect_timeout,
            TIMEOUT.0,
            TIMEOUT.1,
        );
        check_duration(
            p,
            "headless.interval",
            self.headless.interval,
            ms(10),
            secs(3600),
        );
        self.metrics.validate(p);
        check_count(
            p,
            "http.max_body_bytes",
            self.http.max_body_bytes as u64,
            1024,
            1 << 30,
        );
        if !["error", "warn", "info", "debug", "trace"].contains(&self.log.level.as_str()) {
            p.push(
                "log.level",
                "must be one of error, warn, info, debug, trace",
            );
        }
        self.breaker.validate("breaker", p);
        check_count(
            p,
            "limiter.instances",
            self.limiter.instances.into(),
            1,
            1000,
        );
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
            check_duration(p, "redis.timeout", r.timeout, ms(10), secs(60));
        }
        let v = &self.validation;
        if !(v.max_price_jump_pct.is_finite() && v.max_price_jump_pct > 0.0) {
            p.push(
                "validation.max_price_jump_pct",
                "must be a positive percentage, e.g. 10.0",
            );
        }
        crate::problems::check_at_most(
            p,
            "validation.max_price_jump_pct",
            v.max_price_jump_pct,
            10_000.0,
        );
        // A max_age this large (100 years) is how staleness checks are
        // switched off; beyond it the clock arithmetic would overflow.
        check_duration(
            p,
            "validation.max_age",
            v.max_age,
            ms(1),
            secs(100 * 31_557_600),
        );
        check_duration(p, "validation.frozen_after", v.frozen_after, ms(10), DAY);
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
        self.validate_streams(p);
    }

    /// Every `[[exchanges.streams]]` table: connection names unique across
    /// the config (defaults included), none on the generic kind, and each
    /// value one its exchange offers.
    fn validate_streams(&self, p: &mut Problems) {
        let mut names: BTreeMap<String, String> = BTreeMap::new();
        for (i, ex) in self.exchanges.iter().enumerate() {
            let at = format!("exchanges[{i}].streams");
            if ex.streams.is_empty() {
                continue;
            }
            if ex.kind == ExchangeKind::Generic {
                p.push(
                    at,
                    "the generic kind has no stream protocol: remove its [[exchanges.streams]] tables",
                );
                continue;
            }
            for (j, s) in ex.streams.iter().enumerate() {
                let at = format!("{at}[{j}]");
                let name = s.name_or_default(&ex.name, j);
                if s.name.is_some() && !is_ident(&name) {
                    p.push(
                        format!("{at}.name"),
                        "must be a non-empty name of letters, digits, '-' or '_'",
                    );
                } else if let Some(prev) = names.insert(name.clone(), at.clone()) {
                    let given = if s.name.is_some() {
                        ""
                    } else {
                        " (the default)"
                    };
                    p.push(
                        format!("{at}.name"),
                        format!(
                            "duplicate connection name {name:?}{given} (also {prev}): \
                             connection names must be unique across the config"
                        ),
                    );
                }
                validate_stream(s, ex.kind, &at, p);
                if ex.endpoints.iter().any(|e| e.name == name) {
                    p.push(
                        format!("{at}.name"),
                        format!(
                            "{name:?} is also an endpoint of this exchange: the connection's \
                             row, alerts and metrics are named by it"
                        ),
                    );
                }
            }
            // Rows, alerts and metrics are named `ws:<feed>:<symbol>`: one
            // subscription of each per exchange.
            let mut rows: BTreeMap<String, String> = BTreeMap::new();
            for (j, s) in ex.streams.iter().enumerate() {
                let resolved = s.resolve(&ex.name, ex.kind, j);
                for sub in &resolved.spec.subscriptions {
                    let feed = crate::stream::watch::feed_name(sub.feed);
                    let row = crate::model::stream::subscription_id(&ex.name, feed, &sub.symbol);
                    let here = format!("{at}[{j}]");
                    if let Some(prev) = rows.insert(row.endpoint.clone(), here.clone())
                        && prev != here
                    {
                        p.push(
                            format!("{here}.symbols"),
                            format!(
                                "{} is also subscribed by {prev}: one subscription per feed \
                                 and symbol on an exchange (its row, alerts and metrics are \
                                 named by them)",
                                row.endpoint
                            ),
                        );
                    }
                }
            }
        }
    }
}

/// The exchange as messages name it.
fn label(kind: ExchangeKind) -> &'static str {
    match kind {
        ExchangeKind::Binance => "Binance",
        ExchangeKind::Bybit => "Bybit",
        ExchangeKind::Okx => "OKX",
        ExchangeKind::Coinbase => "Coinbase",
        ExchangeKind::Kraken => "Kraken",
        ExchangeKind::Generic => "the generic kind",
    }
}

/// One `[[exchanges.streams]]` table of a `kind` exchange, at `at`.
fn validate_stream(s: &super::StreamConfig, kind: ExchangeKind, at: &str, p: &mut Problems) {
    if let Some(u) = &s.url {
        check_ws_url(p, &format!("{at}.url"), u);
    }
    match &s.symbols {
        Some(list) if list.is_empty() => p.push(
            format!("{at}.symbols"),
            format!(
                "must list at least one symbol, or be left out for {:?}",
                streams::default_symbol(kind)
            ),
        ),
        Some(list) => {
            let mut seen = BTreeMap::new();
            for (k, sym) in list.iter().enumerate() {
                let at = format!("{at}.symbols[{k}]");
                if sym.is_empty() || sym.chars().any(char::is_whitespace) {
                    p.push(at, "must be a symbol without spaces, e.g. \"BTCUSDT\"");
                } else if let Some(prev) = seen.insert(data_symbol(kind, sym), k) {
                    p.push(
                        at,
                        format!("duplicate symbol {sym:?} (also symbols[{prev}])"),
                    );
                }
            }
        }
        None => {}
    }
    let feeds = s.feeds.as_deref().unwrap_or(&streams::DEFAULT_FEEDS);
    if s.feeds.is_some() && feeds.is_empty() {
        p.push(
            format!("{at}.feeds"),
            "must list at least one of ticker, trades, book, heartbeat, status, \
             or be left out for ticker, trades, book",
        );
    }
    let mut seen = BTreeMap::new();
    for (k, f) in feeds.iter().enumerate() {
        let at = format!("{at}.feeds[{k}]");
        if !streams::offers(kind, *f) {
            let offered: Vec<&str> = super::FeedName::ALL
                .into_iter()
                .filter(|f| streams::offers(kind, *f))
                .map(super::FeedName::as_str)
                .collect();
            p.push(
                at,
                format!(
                    "{} has no {} feed; it has {}",
                    label(kind),
                    f.as_str(),
                    offered.join(", ")
                ),
            );
        } else if let Some(prev) = seen.insert(*f, k) {
            p.push(
                at,
                format!("duplicate feed {:?} (also feeds[{prev}])", f.as_str()),
            );
        }
    }
    if let Some(depth) = s.book_depth {
        let at = format!("{at}.book_depth");
        let allowed = streams::book_depths(kind).allowed;
        let shown: Vec<String> = allowed.iter().map(u16::to_string).collect();
        if allowed.is_empty() {
            p.push(
                at,
                format!(
                    "{}'s book channel is the whole book: there is no depth to choose; remove book_depth",
                    label(kind)
                ),
            );
        } else if !allowed.iter().any(|&a| u32::from(a) == depth) {
            p.push(
                at,
                format!(
                    "{} offers book depths {}, not {depth}",
                    label(kind),
                    shown.join(", ")
                ),
            );
        } else if !feeds.contains(&super::FeedName::Book) {
            p.push(
                at,
                "applies to the `book` feed, which `feeds` does not list: add \"book\" or remove book_depth",
            );
        }
    }
    if let Some(d) = s.silent_after {
        check_duration(
            p,
            &format!("{at}.silent_after"),
            d,
            MIN_SILENT_AFTER,
            MAX_SILENT_AFTER,
        );
    }
    for (key, d) in [
        ("ping_every", s.ping_every),
        ("pong_timeout", s.pong_timeout),
    ] {
        let Some(d) = d else { continue };
        let at = format!("{at}.{key}");
        let bounds = streams::ping_bounds(kind).map(|b| {
            if key == "ping_every" {
                b
            } else {
                streams::PONG_TIMEOUT_BOUNDS
            }
        });
        match bounds {
            Some((lo, hi)) => check_duration(p, &at, d, lo, hi),
            None if kind == ExchangeKind::Binance => p.push(
                at,
                format!("Binance has no client ping: its server pings every 20 s and exwatch answers; remove {key}"),
            ),
            None => p.push(
                at,
                format!(
                    "{} has no client ping: its `heartbeat` channel is the keepalive; remove {key}",
                    label(kind)
                ),
            ),
        }
    }
    if let (Some(d), Some(keepalive)) = (s.dead_after, streams::keepalive_every(kind, s.ping_every))
    {
        let at = format!("{at}.dead_after");
        let lo = keepalive * 2;
        if d < lo {
            p.push(
                at,
                format!(
                    "must be at least twice the keepalive interval ({}: a frame every {}), so a quiet healthy socket is not called dead: {} or more, not {}",
                    label(kind),
                    humantime::format_duration(keepalive),
                    humantime::format_duration(lo),
                    humantime::format_duration(d)
                ),
            );
        } else {
            check_duration(p, &at, d, lo, streams::MAX_DEAD_AFTER);
        }
    }
}

/// A stream `url`: ws(s), with a host, without credentials (the URL is
/// never repeated with them).
fn check_ws_url(p: &mut Problems, at: &str, u: &str) {
    let shown = without_userinfo(u);
    match url::Url::parse(u) {
        Ok(url) if !url.username().is_empty() || url.password().is_some() => p.push(
            at,
            format!("{shown:?} carries credentials (user:password@): public streams need none; remove them"),
        ),
        Ok(url) if matches!(url.scheme(), "ws" | "wss") && url.host().is_some() => {}
        Ok(_) => p.push(
            at,
            format!("{shown:?} is not a ws:// or wss:// URL with a host, e.g. \"wss://stream.example.com/ws\""),
        ),
        Err(e) => p.push(
            at,
            format!("{shown:?} is not a valid URL ({e}); expected e.g. \"wss://stream.example.com/ws\""),
        ),
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
            // The instrument the body names is compared with the one asked
            // for; without a configured symbol that would be the kind's
            // placeholder default, and every answer would look wrong.
            let unnamed = self.endpoints.iter().any(|ep| {
                ep.kind != EndpointKind::Time && ep.symbol.is_none() && self.symbol.is_none()
            });
            if self.kind == ExchangeKind::Generic
                && g.symbol.as_deref().is_some_and(|s| !s.is_empty())
                && unnamed
            {
                p.push(
                    format!("{at}.generic.symbol"),
                    "the instrument found at this pointer is compared with the symbol asked for: \
                     set `symbol = \"...\"` on the exchange (or on every ticker and book endpoint)",
                );
            }
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
        // An exchange watched only through its streams needs no endpoint.
        if self.endpoints.is_empty() && self.streams.is_empty() {
            p.push(
                format!("{at}.endpoints"),
                "no endpoint configured: add at least one [[exchanges.endpoints]] \
                 (or [[exchanges.streams]])",
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
                check_duration(p, &format!("{at}.interval"), d, INTERVAL.0, INTERVAL.1);
            }
            if let Some(d) = ep.timeout {
                check_duration(p, &format!("{at}.timeout"), d, TIMEOUT.0, TIMEOUT.1);
            }
            if let Some(depth) = ep.depth {
                check_count(p, &format!("{at}.depth"), depth.into(), 1, 10_000);
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
                .unwrap_or(exchange::spec(self.kind).budget.capacity);
            if weight > exchange_cap {
                p.push(format!("{at}.weight"), format!("weight {weight} exceeds the exchange's capacity {exchange_cap}: it could never be granted"));
            }
        }
    }
}
