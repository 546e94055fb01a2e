//! The rate limiter's tiers and fill levels, as events and views carry them.

use serde::{Deserialize, Serialize};

/// A tier of the hierarchy. Its lowercase name (`exchange`, `endpoint`,
/// `account`, `ip`) is one table for serde and strum: JSON, the `tier`
/// metric label, the Redis bucket keys and the UI.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, strum::IntoStaticStr)]
#[serde(rename_all = "lowercase")]
#[strum(serialize_all = "lowercase")]
pub enum Tier {
    Exchange,
    Endpoint,
    Account,
    Ip,
}

impl Tier {
    /// Whether a hold the exchange ordered on this tier, through a poll of
    /// `origin`, holds `other` too: the endpoint's own tier holds only that
    /// endpoint, a shared tier (exchange, account, IP) every endpoint of the
    /// exchange. The one rule the detectors and the reducer follow.
    pub fn holds(
        self,
        origin: &crate::model::EndpointId,
        other: &crate::model::EndpointId,
    ) -> bool {
        match self {
            Tier::Endpoint => other == origin,
            Tier::Exchange | Tier::Account | Tier::Ip => other.exchange == origin.exchange,
        }
    }

    /// The lowercase name: `exchange`, `endpoint`, `account`, `ip`.
    pub fn as_str(self) -> &'static str {
        self.into()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_the_serde_names() {
        let tiers = [Tier::Exchange, Tier::Endpoint, Tier::Account, Tier::Ip];
        assert_eq!(
            tiers.map(Tier::as_str),
            ["exchange", "endpoint", "account", "ip"]
        );
        for t in tiers {
            assert_eq!(
                serde_json::to_value(t).ok(),
                Some(serde_json::Value::from(t.as_str()))
            );
        }
    }
}
