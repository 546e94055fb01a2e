//! `exwatch check` for `[[exchanges.streams]]`: each connection opened once,
//! its subscriptions sent, and each subscription's first data message
//! awaited (up to a deadline), with the same worker the monitor runs.

use crate::config::ResolvedStream;
use crate::stream::budget::ConnectGate;
use crate::stream::report::{ReportKind, StreamReport};
use crate::stream::spec::{data_channel, data_symbol};
use crate::stream::watch::feed_name;
use crate::stream::worker::{self, WorkerIo};
use serde::Serialize;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// How long a stream check waits for every subscription's first data message.
pub const STREAM_DEADLINE: Duration = Duration::from_secs(8);

/// One subscription as `check` found it.
#[derive(Debug, Clone, Serialize)]
pub struct StreamCheck {
    /// The exchange's configured name.
    pub exchange: String,
    /// The connection's name.
    pub connection: String,
    /// The row name the dashboard uses (`ws:book:BTCUSDT`).
    pub stream: String,
    pub url: String,
    /// Its first data message arrived.
    pub healthy: bool,
    /// `data`, `refused`, `no_data`, `connect_failed`.
    pub verdict: String,
    /// The handshake and first data times, or what went wrong.
    pub reason: String,
    /// ms from the start of the check to the first data message.
    pub first_data_ms: Option<f64>,
}

/// Open every connection once, at the same time, and wait up to `deadline`
/// for each subscription's first data message. Binance books are not
/// resynced here (no REST snapshot): data messages are what is checked.
pub async fn run(streams: Vec<ResolvedStream>, deadline: Duration) -> Vec<StreamCheck> {
    let checks = streams.into_iter().map(|s| one(s, deadline));
    futures::future::join_all(checks)
        .await
        .into_iter()
        .flatten()
        .collect()
}

struct Sub {
    check: StreamCheck,
    channel: String,
    symbol: String,
}

async fn one(r: ResolvedStream, deadline: Duration) -> Vec<StreamCheck> {
    let kind = r.spec.exchange;
    let mut subs: Vec<Sub> = r
        .spec
        .subscriptions
        .iter()
        .filter_map(|s| {
            let channel = data_channel(kind, s.feed)?;
            let id =
                crate::model::stream::subscription_id(&r.exchange, feed_name(s.feed), &s.symbol);
            Some(Sub {
                check: StreamCheck {
                    exchange: r.exchange.clone(),
                    connection: r.spec.name.clone(),
                    stream: id.endpoint,
                    url: r.spec.url.clone(),
                    healthy: false,
                    verdict: "no_data".into(),
                    reason: format!("no data message within {} s", deadline.as_secs()),
                    first_data_ms: None,
                },
                channel,
                symbol: data_symbol(kind, &s.symbol),
            })
        })
        .collect();
    let (tx, mut rx) = mpsc::channel::<StreamReport>(1024);
    let stop = CancellationToken::new();
    let io = WorkerIo {
        reports: tx,
        snapshots: None,
        gate: ConnectGate::for_exchange(kind),
        shutdown: stop.clone(),
    };
    let task = worker::spawn(r.spec, io);
    let t0 = Instant::now();
    let mut handshake = None;
    let mut last_error = None;
    let end = tokio::time::sleep(deadline);
    tokio::pin!(end);
    while subs.iter().any(|s| s.check.verdict == "no_data") {
        let rep = tokio::select! {
            r = rx.recv() => match r { Some(r) => r, None => break },
            _ = &mut end => break,
        };
        match rep.kind {
            ReportKind::Connected { handshake_ms, .. } => handshake = Some(handshake_ms),
            ReportKind::Disconnected { reason, error, .. } => {
                last_error = Some(match error {
                    Some(e) => format!("{reason}: {e}"),
                    None => reason,
                });
            }
            ReportKind::SubscribeRefused {
                channel,
                symbol,
                message,
                ..
            } => {
                for s in subs.iter_mut().filter(|s| {
                    channel.as_ref().is_none_or(|c| *c == s.channel)
                        && symbol.as_ref().is_none_or(|x| *x == s.symbol)
                }) {
                    s.check.verdict = "refused".into();
                    s.check.reason = format!("refused: {message}");
                }
            }
            ReportKind::Data {
                channel, symbol, ..
            } => {
                let ms = t0.elapsed().as_secs_f64() * 1000.0;
                for s in subs.iter_mut().filter(|s| {
                    s.channel == channel && s.symbol == symbol && s.check.verdict == "no_data"
                }) {
                    s.check.verdict = "data".into();
                    s.check.healthy = true;
                    s.check.first_data_ms = Some(ms);
                    s.check.reason = format!(
                        "first data after {ms:.0} ms (handshake {} ms)",
                        handshake.unwrap_or(0)
                    );
                }
            }
            _ => {}
        }
    }
    stop.cancel();
    let _ = task.await;
    for s in subs.iter_mut().filter(|s| s.check.verdict == "no_data") {
        if handshake.is_none() {
            s.check.verdict = "connect_failed".into();
            s.check.reason = last_error.clone().unwrap_or_else(|| "no connection".into());
        }
    }
    subs.into_iter().map(|s| s.check).collect()
}

/// The streams table of `check`: one subscription a line.
pub fn render(rows: &[StreamCheck]) -> String {
    let mut out = String::new();
    let w = rows
        .iter()
        .map(|r| r.stream.len())
        .max()
        .unwrap_or(6)
        .max(6);
    out.push_str(&format!(
        "{:<10} {:<w$} {:<8} {}\n",
        "EXCHANGE", "STREAM", "VERDICT", "DETAIL"
    ));
    for r in rows {
        let verdict = if r.healthy { "OK" } else { r.verdict.as_str() };
        out.push_str(&format!(
            "{:<10} {:<w$} {:<8} {}\n",
            r.exchange, r.stream, verdict, r.reason
        ));
    }
    out
}
