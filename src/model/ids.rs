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

/// Which API dialect an exchange speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ExchangeKind {
    Binance,
    Bybit,
    Okx,
    Coinbase,
    Kraken,
    Generic,
}

impl ExchangeKind {
    pub const ALL: [ExchangeKind; 6] = [
        ExchangeKind::Binance,
        ExchangeKind::Bybit,
        ExchangeKind::Okx,
        ExchangeKind::Coinbase,
        ExchangeKind::Kraken,
        ExchangeKind::Generic,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ExchangeKind::Binance => "binance",
            ExchangeKind::Bybit => "bybit",
            ExchangeKind::Okx => "okx",
            ExchangeKind::Coinbase => "coinbase",
            ExchangeKind::Kraken => "kraken",
            ExchangeKind::Generic => "generic",
        }
    }
}

impl std::fmt::Display for ExchangeKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What an endpoint returns, which decides how its body is parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EndpointKind {
    /// Server time, also used to measure the clock offset.
    Time,
    /// Last price and/or best bid/ask.
    Ticker,
    /// Order book levels.
    Book,
}

impl EndpointKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EndpointKind::Time => "time",
            EndpointKind::Ticker => "ticker",
            EndpointKind::Book => "book",
        }
    }
}
