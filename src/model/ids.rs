//! Names of what is watched: the exchange dialect, the endpoint kind and the
//! id of one endpoint, shared by events, breaker ids, detector keys and the
//! reducer.

use serde::{Deserialize, Serialize};

/// One watched endpoint: the exchange's configured name (`binance`, `okx-eu`)
/// and the endpoint's name within it (`ticker`, `book`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct EndpointId {
    pub exchange: String,
    pub endpoint: String,
}

impl EndpointId {
    pub fn new(exchange: impl Into<String>, endpoint: impl Into<String>) -> Self {
        EndpointId {
            exchange: exchange.into(),
            endpoint: endpoint.into(),
        }
    }
}

impl std::fmt::Display for EndpointId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.exchange, self.endpoint)
    }
}

/// Which API dialect an exchange speaks. A new kind is one variant here (and
/// its `SPEC` in `exchange/`).
///
/// Its lowercase name (`binance`, `bybit`, `okx`, `coinbase`, `kraken`,
/// `generic`) is the config's `kind`: one table for serde and strum
/// ([`as_str`](Self::as_str), `Display`, `FromStr`), also the simulator's
/// URL segment. [`VariantArray::VARIANTS`](strum::VariantArray) lists every
/// kind in declaration order.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    strum::IntoStaticStr,
    strum::Display,
    strum::EnumString,
    strum::VariantArray,
)]
#[serde(rename_all = "lowercase")]
#[strum(serialize_all = "lowercase")]
pub enum ExchangeKind {
    Binance,
    Bybit,
    Okx,
    Coinbase,
    Kraken,
    Generic,
}

impl ExchangeKind {
    /// The config's spelling, e.g. `binance`.
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// What an endpoint returns, which decides how its body is parsed. Its
/// lowercase name (`time`, `ticker`, `book`) is one table for serde and strum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, strum::IntoStaticStr)]
#[serde(rename_all = "lowercase")]
#[strum(serialize_all = "lowercase")]
pub enum EndpointKind {
    /// Server time, also used to measure the clock offset.
    Time,
    /// Last price and/or best bid/ask.
    Ticker,
    /// Order book levels.
    Book,
}

impl EndpointKind {
    /// The lowercase name: `time`, `ticker`, `book`.
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use strum::VariantArray;

    fn serde_name<T: Serialize>(v: T) -> Option<serde_json::Value> {
        serde_json::to_value(v).ok()
    }

    #[test]
    fn names_are_the_serde_names() {
        let kinds: Vec<&str> = ExchangeKind::VARIANTS.iter().map(|k| k.as_str()).collect();
        assert_eq!(
            kinds,
            ["binance", "bybit", "okx", "coinbase", "kraken", "generic"]
        );
        for &k in ExchangeKind::VARIANTS {
            assert_eq!(serde_name(k), Some(k.as_str().into()));
            assert_eq!(k.to_string(), k.as_str());
            assert_eq!(k.as_str().parse::<ExchangeKind>().ok(), Some(k));
        }
        assert!("Binance".parse::<ExchangeKind>().is_err());
        let endpoints = [EndpointKind::Time, EndpointKind::Ticker, EndpointKind::Book];
        assert_eq!(
            endpoints.map(EndpointKind::as_str),
            ["time", "ticker", "book"]
        );
        for e in endpoints {
            assert_eq!(serde_name(e), Some(e.as_str().into()));
        }
    }
}
