//! The rate limiter's tiers and fill levels, as events and views carry them.

use serde::{Deserialize, Serialize};

/// A tier of the hierarchy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Tier {
    Exchange,
    Endpoint,
    Account,
    Ip,
}

impl Tier {
    pub fn as_str(self) -> &'static str {
        match self {
            Tier::Exchange => "exchange",
            Tier::Endpoint => "endpoint",
            Tier::Account => "account",
            Tier::Ip => "ip",
        }
    }
}

/// Fill level of one bucket, for the UI and metrics.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TierFill {
    pub tier: Tier,
    pub tokens: f64,
    pub capacity: f64,
    /// Set while the exchange told us to hold off (Retry-After, ban).
    pub blocked_for_ms: Option<u64>,
}
