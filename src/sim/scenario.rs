//! Fault scenarios: a TOML schedule of faults by time, endpoint and exchange.
//!
//! ```toml
//! cycle = "120s"          # optional: the schedule repeats with this period
//! [[fault]]
//! at = "10s"              # start, from the simulator's start (or the cycle's)
//! for = "8s"
//! fault = "server_error"  # see FaultKind
//! exchange = "binance"    # optional: every exchange when absent
//! endpoint = "book"       # optional: time | ticker | book; every endpoint when absent
//! status = 503            # server_error only
//! ```

use super::stream::{StreamFault, StreamFaultKind, StreamScenario};
use crate::model::{EndpointKind, ExchangeKind};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// A fault the simulator can inject. Its snake_case name (`latency`,
/// `rate_limit`, ..., `bad_number`) is one table for serde (the scenario's
/// `fault`) and strum (`Display`: the simulator's stats and `bench detect`).
/// [`VariantArray::VARIANTS`](strum::VariantArray) lists every kind in
/// declaration order.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    strum::Display,
    strum::VariantArray,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum FaultKind {
    /// Added latency with jitter.
    Latency,
    /// HTTP 429 (or the exchange's equivalent) with Retry-After.
    RateLimit,
    /// HTTP 418 IP ban with Retry-After.
    Ban,
    /// 500/502/503 burst.
    ServerError,
    /// An HTML error page instead of JSON.
    Html,
    /// JSON cut off half-way.
    Truncated,
    /// 200 with an empty body.
    Empty,
    /// Frozen values and timestamps.
    Stale,
    /// Best bid above best ask.
    Crossed,
    /// The connection is dropped before any answer.
    Reset,
    /// The request is never answered.
    Hang,
    /// Every price 50% higher than the market: a jump the validator must refuse.
    Jump,
    /// The best bid is not a number (`NaN`).
    BadNumber,
    /// HTTP 200 with another instrument's data (`CANDYUSDT` for `BTCUSDT`,
    /// at a thousandth of the price), as a misrouting gateway or cache
    /// serves it. Seen where the body names its instrument (not Coinbase,
    /// Binance depth or OKX books).
    WrongInstrument,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fault {
    #[serde(with = "humantime_serde")]
    pub at: Duration,
    #[serde(rename = "for", with = "humantime_serde")]
    pub duration: Duration,
    pub fault: FaultKind,
    pub exchange: Option<ExchangeKind>,
    pub endpoint: Option<EndpointKind>,
    /// Added latency (latency fault).
    #[serde(default, with = "humantime_serde")]
    pub latency: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    pub jitter: Option<Duration>,
    /// HTTP status of a server_error fault (500, 502, 503).
    pub status: Option<u16>,
    /// Seconds of Retry-After for rate_limit and ban.
    pub retry_after: Option<u64>,
}

impl Fault {
    pub fn matches(&self, exchange: ExchangeKind, endpoint: EndpointKind) -> bool {
        self.exchange.is_none_or(|e| e == exchange) && self.endpoint.is_none_or(|e| e == endpoint)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    #[serde(default, with = "humantime_serde")]
    pub cycle: Option<Duration>,
    #[serde(default, rename = "fault")]
    pub faults: Vec<Fault>,
    /// The WebSocket streams' intervals and faults (`[stream]`,
    /// `[[stream.fault]]`; see [`super::stream::StreamScenario`]).
    #[serde(default)]
    pub stream: super::stream::StreamScenario,
}

#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// The file could not be read; the message carries the OS's words
    /// (not also the `source()`, which would repeat them).
    #[error("cannot read scenario {path}: {error}")]
    Io { path: String, error: std::io::Error },
    #[error("{path}:{line}:{column}: {message}")]
    Invalid {
        path: String,
        line: usize,
        column: usize,
        message: String,
    },
}

impl Scenario {
    /// No faults: a healthy exchange.
    pub fn quiet() -> Self {
        Scenario::default()
    }

    pub fn load(path: &std::path::Path) -> Result<Self, ScenarioError> {
        let text = std::fs::read_to_string(path).map_err(|error| ScenarioError::Io {
            path: path.display().to_string(),
            error,
        })?;
        Self::parse(&path.display().to_string(), &text)
    }

    pub fn parse(path: &str, text: &str) -> Result<Self, ScenarioError> {
        toml::from_str(text).map_err(|e| {
            let offset = e.span().map(|s| s.start).unwrap_or(0).min(text.len());
            let before = &text[..offset];
            ScenarioError::Invalid {
                path: path.to_string(),
                line: before.matches('\n').count() + 1,
                column: before.rfind('\n').map(|i| offset - i).unwrap_or(offset + 1),
                message: e.message().to_string(),
            }
        })
    }

    /// The built-in demo scenario: every fault once within two minutes, with
    /// quiet stretches between, each on one exchange so the others stay green.
    pub fn default_cycle() -> Self {
        use EndpointKind::*;
        use ExchangeKind::*;
        let f =
            |at: u64, dur: u64, fault: FaultKind, ex: ExchangeKind, ep: Option<EndpointKind>| {
                Fault {
                    at: Duration::from_secs(at),
                    duration: Duration::from_secs(dur),
                    fault,
                    exchange: Some(ex),
                    endpoint: ep,
                    latency: (fault == FaultKind::Latency).then_some(Duration::from_millis(900)),
                    jitter: (fault == FaultKind::Latency).then_some(Duration::from_millis(300)),
                    status: (fault == FaultKind::ServerError).then_some(503),
                    retry_after: match fault {
                        FaultKind::RateLimit => Some(5),
                        FaultKind::Ban => Some(12),
                        _ => None,
                    },
                }
            };
        let sf = |at: u64, dur: u64, fault: StreamFaultKind, ex: ExchangeKind| StreamFault {
            at: Duration::from_secs(at),
            duration: Duration::from_secs(dur),
            fault,
            exchange: Some(ex),
            bps: None,
        };
        Scenario {
            // Stream faults between the REST faults of the same exchange,
            // so each is its own incident: a zombie socket (Kraken), a
            // sequence gap (Bybit), a drop with reconnects refused
            // (Coinbase), an announced disconnect (OKX), a crossed book that
            // passes the checksum (Kraken).
            stream: StreamScenario {
                faults: vec![
                    sf(20, 10, StreamFaultKind::Stall, Kraken),
                    sf(38, 1, StreamFaultKind::Gap, Bybit),
                    sf(48, 1, StreamFaultKind::ServerClose, Coinbase),
                    sf(48, 12, StreamFaultKind::RefuseConnections, Coinbase),
                    sf(84, 1, StreamFaultKind::PlannedDisconnect, Okx),
                    sf(99, 6, StreamFaultKind::CrossedBook, Kraken),
                ],
                ..StreamScenario::default()
            },
            cycle: Some(Duration::from_secs(120)),
            faults: vec![
                f(8, 12, FaultKind::Latency, Binance, Some(Book)),
                f(14, 10, FaultKind::ServerError, Okx, None),
                f(26, 6, FaultKind::RateLimit, Bybit, Some(Ticker)),
                f(34, 8, FaultKind::Crossed, Coinbase, Some(Book)),
                f(44, 8, FaultKind::Html, Kraken, Some(Ticker)),
                f(54, 12, FaultKind::Ban, Binance, Some(Ticker)),
                f(58, 8, FaultKind::Truncated, Okx, Some(Book)),
                f(70, 10, FaultKind::Stale, Bybit, Some(Book)),
                f(76, 8, FaultKind::Empty, Coinbase, Some(Ticker)),
                f(86, 8, FaultKind::Hang, Kraken, Some(Book)),
                f(96, 8, FaultKind::Reset, Okx, Some(Ticker)),
                f(104, 6, FaultKind::Jump, Coinbase, Some(Ticker)),
                f(110, 6, FaultKind::BadNumber, Kraken, Some(Book)),
                f(115, 5, FaultKind::WrongInstrument, Bybit, Some(Ticker)),
            ],
        }
    }

    /// The fault active for a request at `elapsed` since start, if any.
    pub fn active(
        &self,
        elapsed: Duration,
        exchange: ExchangeKind,
        endpoint: EndpointKind,
    ) -> Option<&Fault> {
        let t = match self.cycle {
            Some(c) if !c.is_zero() => {
                Duration::from_nanos((elapsed.as_nanos() % c.as_nanos()) as u64)
            }
            _ => elapsed,
        };
        self.faults
            .iter()
            .find(|f| t >= f.at && t < f.at + f.duration && f.matches(exchange, endpoint))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use strum::VariantArray;

    #[test]
    fn fault_names_are_the_serde_names() {
        let names: Vec<String> = FaultKind::VARIANTS.iter().map(|k| k.to_string()).collect();
        assert_eq!(
            names,
            [
                "latency",
                "rate_limit",
                "ban",
                "server_error",
                "html",
                "truncated",
                "empty",
                "stale",
                "crossed",
                "reset",
                "hang",
                "jump",
                "bad_number",
                "wrong_instrument",
            ]
        );
        for k in FaultKind::VARIANTS {
            assert_eq!(
                serde_json::to_value(k).ok(),
                Some(serde_json::Value::from(k.to_string()))
            );
        }
    }

    #[test]
    fn default_cycle_covers_every_fault_within_two_minutes() {
        let s = Scenario::default_cycle();
        for &k in FaultKind::VARIANTS {
            assert!(s.faults.iter().any(|f| f.fault == k), "{k:?} missing");
        }
        assert!(
            s.faults
                .iter()
                .all(|f| f.at + f.duration <= Duration::from_secs(120))
        );
    }

    #[test]
    fn active_fault_follows_time_selector_and_cycle() {
        let s = Scenario::parse(
            "t.toml",
            "cycle = \"60s\"\n[[fault]]\nat = \"10s\"\nfor = \"5s\"\nfault = \"ban\"\nexchange = \"binance\"\nendpoint = \"ticker\"\n",
        )
        .expect("parses");
        let b = ExchangeKind::Binance;
        assert!(
            s.active(Duration::from_secs(9), b, EndpointKind::Ticker)
                .is_none()
        );
        assert!(
            s.active(Duration::from_secs(12), b, EndpointKind::Ticker)
                .is_some()
        );
        assert!(
            s.active(Duration::from_secs(12), b, EndpointKind::Book)
                .is_none()
        );
        assert!(
            s.active(
                Duration::from_secs(12),
                ExchangeKind::Okx,
                EndpointKind::Ticker
            )
            .is_none()
        );
        assert!(
            s.active(Duration::from_secs(72), b, EndpointKind::Ticker)
                .is_some()
        );
    }

    #[test]
    fn scenario_errors_name_the_line() {
        let e = Scenario::parse(
            "s.toml",
            "[[fault]]\nat = \"1s\"\nfor = \"1s\"\nfault = \"meteor\"\n",
        )
        .unwrap_err();
        assert!(e.to_string().starts_with("s.toml:4:"), "{e}");
    }
}
