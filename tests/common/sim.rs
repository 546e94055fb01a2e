//! The built-in simulated exchange, started in-process on a free loopback port.

use exwatch::model::{EndpointKind, ExchangeKind};
use exwatch::sim::scenario::{Fault, FaultKind, Scenario};
use std::time::Duration;

pub async fn start(scenario: Scenario) -> exwatch::sim::SimHandle {
    exwatch::sim::spawn("127.0.0.1:0".parse().expect("addr"), scenario)
        .await
        .expect("start the simulator")
}

/// One fault from `at` for `for_` on one exchange kind and (optionally) endpoint.
pub fn fault(
    kind: FaultKind,
    exchange: ExchangeKind,
    endpoint: Option<EndpointKind>,
    at: Duration,
    for_: Duration,
) -> Fault {
    Fault {
        at,
        duration: for_,
        fault: kind,
        exchange: Some(exchange),
        endpoint,
        latency: (kind == FaultKind::Latency).then_some(Duration::from_millis(400)),
        jitter: None,
        status: (kind == FaultKind::ServerError).then_some(503),
        retry_after: match kind {
            FaultKind::RateLimit => Some(5),
            FaultKind::Ban => Some(30),
            _ => None,
        },
    }
}

pub fn scenario(faults: Vec<Fault>) -> Scenario {
    Scenario {
        cycle: None,
        faults,
        stream: Default::default(),
    }
}

/// Requests the simulator counted per `kind/endpoint`.
pub async fn count(sim: &exwatch::sim::SimHandle, key: &str) -> u64 {
    let url = format!("http://{}/_sim/stats", sim.addr);
    let body = reqwest::get(&url)
        .await
        .expect("stats")
        .bytes()
        .await
        .expect("stats body");
    let v: serde_json::Value = serde_json::from_slice(&body).expect("stats json");
    v["endpoints"][key].as_u64().unwrap_or(0)
}

/// One stream fault of `kind` on `exchange`, from `at_ms` for `for_ms`.
pub fn stream_fault(
    kind: exwatch::sim::stream::StreamFaultKind,
    exchange: ExchangeKind,
    at_ms: u64,
    for_ms: u64,
) -> exwatch::sim::stream::StreamFault {
    exwatch::sim::stream::StreamFault {
        at: Duration::from_millis(at_ms),
        duration: Duration::from_millis(for_ms),
        fault: kind,
        exchange: Some(exchange),
        bps: None,
    }
}
