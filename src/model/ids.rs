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

/// Declares [`ExchangeKind`] from one `Variant => "name"` line per kind: the
/// enum, its config spelling (serde and `as_str`) and `ALL`, so a new kind is
/// one line here (and its `SPEC` in `exchange/`).
macro_rules! exchange_kinds {
    ($($variant:ident => $name:literal,)+) => {
        /// Which API dialect an exchange speaks; its lowercase name is the
        /// config's `kind`.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum ExchangeKind {
            $(#[serde(rename = $name)] $variant,)+
        }

        impl ExchangeKind {
            /// Every kind, in declaration order.
            pub const ALL: [ExchangeKind; [$(ExchangeKind::$variant),+].len()] =
                [$(ExchangeKind::$variant),+];

            /// The config's spelling, e.g. `binance`.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(ExchangeKind::$variant => $name,)+
                }
            }
        }
    };
}

exchange_kinds! {
    Binance => "binance",
    Bybit => "bybit",
    Okx => "okx",
    Coinbase => "coinbase",
    Kraken => "kraken",
    Generic => "generic",
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
