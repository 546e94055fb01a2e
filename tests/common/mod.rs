//! Shared test support: real servers on loopback, started and stopped by the
//! tests themselves. Each integration test file includes this with `mod common;`.
#![allow(dead_code)]

pub mod headless;
pub mod redis;
pub mod sim;
pub mod tmux;

use std::net::TcpListener;

/// A free TCP port on 127.0.0.1 (bound and released; good enough for tests).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("no free loopback port")
}

/// Alerts one per line (`fingerprint state severity title`), for failure
/// messages.
pub fn alert_lines<'a>(alerts: impl IntoIterator<Item = &'a exwatch::model::Alert>) -> String {
    alerts
        .into_iter()
        .map(|a| {
            format!(
                "{} {:?} {:?} {}",
                a.fingerprint, a.state, a.severity, a.title
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}
