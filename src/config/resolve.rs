//! Endpoint resolution: defaults, exchange presets and rate-limit tiers
//! applied, URLs built, so workers get a ready [`ResolvedEndpoint`]; and
//! stream resolution, each `[[exchanges.streams]]` a [`ResolvedStream`].

use super::*;
use crate::breaker::BreakerSettings;
use crate::exchange::generic::GenericSpec;
use crate::exchange::validate::ValidationSettings;
use crate::exchange::{self};
use crate::limiter::{BucketSpec, LimitRequest, TierBucket};
use crate::model::Tier;
use crate::model::{EndpointKind, ExchangeKind};
use std::time::Duration;

impl Config {
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

    /// The symbol of every REST ticker endpoint (the exchange's spelling),
    /// for the cross-checks of `detect::cross`.
    pub fn ticker_symbols(&self) -> std::collections::BTreeMap<crate::model::EndpointId, String> {
        self.endpoints()
            .into_iter()
            .filter(|e| e.kind == EndpointKind::Ticker)
            .map(|e| {
                (
                    crate::model::EndpointId::new(&e.exchange, &e.endpoint),
                    e.symbol,
                )
            })
            .collect()
    }

    /// Every WebSocket connection to keep, defaults applied, in config
    /// order. Connections of the generic kind (which validation refuses)
    /// are skipped.
    pub fn streams(&self) -> Vec<ResolvedStream> {
        self.exchanges
            .iter()
            .filter(|ex| ex.kind != ExchangeKind::Generic)
            .flat_map(|ex| {
                ex.streams
                    .iter()
                    .enumerate()
                    .map(|(i, s)| s.resolve(&ex.name, ex.kind, i))
            })
            .collect()
    }
}

impl ExchangeConfig {
    /// The REST base URL: configured, else the kind's default.
    pub fn rest_base(&self) -> Option<String> {
        self.base_url
            .clone()
            .or_else(|| exchange::spec(self.kind).base_url.map(str::to_string))
    }

    /// The limiter tiers every request to this exchange draws on: the
    /// exchange's budget, then its account and IP buckets if configured
    /// (an endpoint adds its own tier after the exchange's).
    pub fn shared_tiers(&self) -> Vec<TierBucket> {
        let spec = exchange::spec(self.kind);
        let exchange_spec = self.rate_limit.unwrap_or(BucketSpec {
            capacity: spec.budget.capacity,
            refill_per_sec: spec.budget.refill_per_sec,
        });
        let mut tiers = vec![TierBucket {
            tier: Tier::Exchange,
            id: LimitRequest::bucket_id(&self.name, Tier::Exchange, "all"),
            spec: exchange_spec,
        }];
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
        tiers
    }

    fn resolve(&self, ep: &EndpointConfig, cfg: &Config) -> Option<ResolvedEndpoint> {
        let spec = exchange::spec(self.kind);
        let symbol = ep
            .symbol
            .clone()
            .or_else(|| self.symbol.clone())
            .unwrap_or_else(|| spec.default_symbol.to_string());
        let depth = ep.depth.unwrap_or(20);
        let preset = spec.preset.map(|p| p(ep.kind, &symbol, depth));
        // A query override of the preset's symbol parameter (`symbol`,
        // `instId`, `pair`) is the instrument actually asked for, and the
        // one the body's instrument is compared with.
        let symbol = preset
            .as_ref()
            .and_then(|pr| pr.query.iter().find(|(_, v)| *v == symbol))
            .and_then(|(k, _)| ep.query.get(k))
            .cloned()
            .unwrap_or(symbol);
        let (path, mut query, preset_weight) = match (&ep.path, preset) {
            (Some(path), _) => (path.clone(), Vec::new(), 1),
            (None, Some(pr)) => (pr.path, pr.query, pr.weight),
            (None, None) => return None,
        };
        for (k, v) in &ep.query {
            query.retain(|(qk, _)| qk != k);
            query.push((k.clone(), v.clone()));
        }
        let base = self.rest_base()?;
        // A base with a path (https://host/prefix, the simulator's /binance) stays a prefix.
        let mut url = url::Url::parse(&format!("{}{}", base.trim_end_matches('/'), path)).ok()?;
        if !query.is_empty() {
            url.query_pairs_mut()
                .extend_pairs(query.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        }
        let weight = ep.weight.unwrap_or(preset_weight).max(1);
        let mut tiers = self.shared_tiers();
        if let Some(spec) = ep.rate_limit {
            tiers.insert(
                1,
                TierBucket {
                    tier: Tier::Endpoint,
                    id: LimitRequest::bucket_id(&self.name, Tier::Endpoint, &ep.name),
                    spec,
                },
            );
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
    /// The instrument asked for, in the exchange's spelling: the endpoint's
    /// or exchange's `symbol` (else the kind's default), or a query
    /// override of the preset's symbol parameter.
    pub symbol: String,
    pub url: String,
    pub interval: Duration,
    pub timeout: Duration,
    pub limit: LimitRequest,
    pub breaker: BreakerSettings,
    pub generic: Option<GenericSpec>,
    pub validation: ValidationSettings,
}
