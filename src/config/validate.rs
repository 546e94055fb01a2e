//! Semantic checks of the whole config, after it parsed: each owner's
//! settings validate themselves; this adds what spans owners.

use super::*;
use crate::exchange::{self};
use crate::limiter::LimiterBackend;
use crate::model::ExchangeKind;
use crate::problems::{
    DAY, Problems, check_bucket, check_count, check_duration, check_url, is_env_name, is_ident, ms,
    secs,
};
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
