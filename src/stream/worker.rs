//! The stream worker: one task per (exchange, connection). It connects
//! (tokio-tungstenite, rustls with webpki roots), subscribes, keeps the
//! connection alive the way the exchange requires, reconnects with jittered
//! exponential backoff (`crate::retry`) under the exchange's connection
//! budget ([`ConnectGate`]), resubscribes, and reports everything as
//! [`StreamReport`]s. It sends nothing but subscribe requests, application
//! pings and (automatic) pong frames: read-only and keyless.
//!
//! ```text
//!            ┌── read task ──▶ frames (bounded; overflow dropped and counted)
//! socket ────┤     answers server pings at once (tungstenite flushes the pong on the next read)
//!            └── write task ◀─ subscribe requests; app ping every `ping_every`, pong deadline
//!                                   │
//! processing (this task): Session ──┴─▶ StreamReport ──mpsc──▶ monitor
//! ```
//!
//! The read task never waits for processing, so a slow consumer of the
//! reports cannot make a pong late (tungstenite only sends the automatic
//! pong when the socket is polled: snapview/tokio-tungstenite#333). What a
//! slow consumer costs instead is dropped frames, reported as
//! [`ReportKind::Lagged`], and books marked invalid until resynced.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use futures::stream::{SplitSink, SplitStream};
use futures::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use tokio_util::sync::CancellationToken;

use super::budget::ConnectGate;
use super::message::BookMsg;
use super::report::{ControlKind, ReportKind, StreamReport};
use super::session::{Action, Session};
use super::spec::StreamSpec;
use crate::clock::{ms, now_ms};
use crate::model::ExchangeKind;

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Fetches a Binance REST depth snapshot (`GET /api/v3/depth?symbol=&limit=`,
/// parsed with [`super::binance::parse_rest_depth`]) for the worker, so the
/// monitor can route it through its rate limiter (weight 5 to 250 by
/// `limit`). Any `Fn(String, u16) -> impl Future<Output = Result<BookMsg,
/// String>>` is one.
pub trait SnapshotFetcher: Send + Sync {
    /// The snapshot of `symbol` (uppercase, e.g. `BTCUSDT`) with `limit`
    /// levels, or why not.
    fn fetch(&self, symbol: String, limit: u16) -> BoxFuture<'static, Result<BookMsg, String>>;
}

impl<F, Fut> SnapshotFetcher for F
where
    F: Fn(String, u16) -> Fut + Send + Sync,
    Fut: Future<Output = Result<BookMsg, String>> + Send + 'static,
{
    fn fetch(&self, symbol: String, limit: u16) -> BoxFuture<'static, Result<BookMsg, String>> {
        Box::pin((self)(symbol, limit))
    }
}

/// What a worker needs besides its spec.
#[derive(Clone)]
pub struct WorkerIo {
    /// Where reports go. The worker waits when it is full (a slow consumer
    /// slows processing, never the read task) and ends when it is closed.
    pub reports: mpsc::Sender<StreamReport>,
    /// Binance books: the REST snapshot fetcher. Without one, Binance books
    /// stay invalid (reported) and only ticker/trade data is watched.
    pub snapshots: Option<Arc<dyn SnapshotFetcher>>,
    /// The exchange's connection budget, shared by its workers.
    pub gate: ConnectGate,
    /// Cancel to stop the worker.
    pub shutdown: CancellationToken,
}

/// Start [`run`] on the tokio runtime.
pub fn spawn(spec: StreamSpec, io: WorkerIo) -> tokio::task::JoinHandle<()> {
    tokio::spawn(run(spec, io))
}

/// State the read and write tasks share. Keepalive times are monotonic ms
/// since `epoch`, so a step of the host's wall clock can't fire a pong
/// deadline; reports carry wall-clock times.
struct Shared {
    epoch: Instant,
    last_rx_ms: AtomicI64,
    last_pong_ms: AtomicI64,
    dropped: AtomicU64,
}

impl Shared {
    fn mono_ms(&self) -> i64 {
        ms(self.epoch.elapsed())
    }
}

enum Frame {
    Text(String, i64),
    Control(ControlKind),
}

/// Why a session ended.
struct End {
    code: Option<u16>,
    reason: String,
    error: Option<String>,
    planned: bool,
    stop: bool,
    /// Ended by the worker itself to resync a book: reconnect at once
    /// (the connection budget still paces it), no backoff.
    resync: bool,
}

impl End {
    fn ours(reason: impl Into<String>, planned: bool) -> End {
        End {
            code: None,
            reason: reason.into(),
            error: None,
            planned,
            stop: false,
            resync: false,
        }
    }
}

struct Out<'a> {
    spec: &'a StreamSpec,
    tx: &'a mpsc::Sender<StreamReport>,
}

impl Out<'_> {
    /// `false` when nobody listens any more: the worker stops.
    async fn send(&self, kind: ReportKind) -> bool {
        let r = StreamReport {
            exchange: self.spec.exchange,
            connection: self.spec.name.clone(),
            at_ms: now_ms(),
            kind,
        };
        self.tx.send(r).await.is_ok()
    }
}

async fn sleep_or_stop(d: Duration, shutdown: &CancellationToken) -> bool {
    tokio::select! {
        _ = shutdown.cancelled() => false,
        _ = tokio::time::sleep(d) => true,
    }
}

/// Run one connection until `io.shutdown` is cancelled or the report
/// channel closes: connect, subscribe, read, reconnect.
pub async fn run(spec: StreamSpec, io: WorkerIo) {
    let out = Out {
        spec: &spec,
        tx: &io.reports,
    };
    let mut session = Session::new(&spec);
    let mut retries = spec.reconnect.start(Instant::now());
    let mut attempt: u32 = 0;
    loop {
        attempt = attempt.saturating_add(1);
        // The exchange's connection budget, shared with its other workers.
        while let Err(wait) = io.gate.take(Instant::now()) {
            let r = ReportKind::ReconnectScheduled {
                attempt,
                backoff_ms: 0,
                budget_wait_ms: ms(wait) as u64,
            };
            if !out.send(r).await || !sleep_or_stop(wait, &io.shutdown).await {
                return;
            }
        }
        let url = spec.url.clone();
        if !out.send(ReportKind::Connecting { attempt, url }).await {
            return;
        }
        let t0 = Instant::now();
        let connect = tokio::time::timeout(
            spec.timing.connect_timeout,
            tokio_tungstenite::connect_async(spec.url.as_str()),
        );
        let connected = tokio::select! {
            _ = io.shutdown.cancelled() => return,
            c = connect => c,
        };
        let planned = match connected {
            Ok(Ok((ws, _))) => {
                let handshake_ms = ms(t0.elapsed()) as u64;
                if !out
                    .send(ReportKind::Connected {
                        attempt,
                        handshake_ms,
                    })
                    .await
                {
                    return;
                }
                let end = session_loop(&spec, &io, &out, &mut session, ws).await;
                let lived = t0.elapsed();
                session.end(now_ms());
                let (reports, _) = session.drain();
                for r in reports {
                    if !out.send(r).await {
                        return;
                    }
                }
                let r = ReportKind::Disconnected {
                    code: end.code,
                    reason: end.reason,
                    error: end.error,
                    planned: end.planned,
                    connected_ms: ms(lived) as u64,
                };
                if end.stop || !out.send(r).await {
                    return;
                }
                if lived >= spec.timing.healthy_after {
                    retries = spec.reconnect.start(Instant::now());
                    attempt = 0;
                }
                end.planned || end.resync
            }
            Ok(Err(e)) => {
                let r = ReportKind::Disconnected {
                    code: None,
                    reason: "connect failed".into(),
                    error: Some(e.to_string()),
                    planned: false,
                    connected_ms: 0,
                };
                if !out.send(r).await {
                    return;
                }
                false
            }
            Err(_) => {
                let r = ReportKind::Disconnected {
                    code: None,
                    reason: "connect timed out".into(),
                    error: Some(format!(
                        "no handshake within {:?}",
                        spec.timing.connect_timeout
                    )),
                    planned: false,
                    connected_ms: 0,
                };
                if !out.send(r).await {
                    return;
                }
                false
            }
        };
        let backoff = if planned {
            Duration::ZERO
        } else {
            retries
                .next_wait(Instant::now(), None)
                .unwrap_or(spec.reconnect.max)
        };
        let r = ReportKind::ReconnectScheduled {
            attempt: attempt.saturating_add(1),
            backoff_ms: ms(backoff) as u64,
            budget_wait_ms: 0,
        };
        if !out.send(r).await || !sleep_or_stop(backoff, &io.shutdown).await {
            return;
        }
    }
}

/// Whether a small text frame is `exchange`'s application pong (the read
/// task records it for the pong deadline without parsing everything).
fn is_app_pong(exchange: ExchangeKind, text: &str) -> bool {
    if text.len() > 256 {
        return false;
    }
    match exchange {
        ExchangeKind::Okx => text.trim() == "pong",
        ExchangeKind::Bybit | ExchangeKind::Kraken => text.contains("\"pong\""),
        _ => false,
    }
}

async fn read_loop(
    mut read: SplitStream<Ws>,
    tx: mpsc::Sender<Frame>,
    shared: Arc<Shared>,
    exchange: ExchangeKind,
) -> End {
    let push = |f: Frame| {
        if tx.try_send(f).is_err() {
            shared.dropped.fetch_add(1, Ordering::Relaxed);
        }
    };
    while let Some(msg) = read.next().await {
        let now = now_ms();
        let mono = shared.mono_ms();
        shared.last_rx_ms.store(mono, Ordering::Relaxed);
        match msg {
            Ok(Message::Text(t)) => {
                if is_app_pong(exchange, &t) {
                    shared.last_pong_ms.store(mono, Ordering::Relaxed);
                }
                push(Frame::Text(t.as_str().to_string(), now));
            }
            Ok(Message::Binary(b)) => match String::from_utf8(b.to_vec()) {
                Ok(t) => push(Frame::Text(t, now)),
                Err(_) => push(Frame::Text(String::new(), now)),
            },
            Ok(Message::Ping(_)) => push(Frame::Control(ControlKind::ServerPing)),
            Ok(Message::Pong(_)) => {
                shared.last_pong_ms.store(mono, Ordering::Relaxed);
                push(Frame::Control(ControlKind::PongFrame));
            }
            Ok(Message::Close(frame)) => {
                let (code, reason) = match frame {
                    Some(f) => (Some(u16::from(f.code)), f.reason.as_str().to_string()),
                    None => (None, "closed without a code".to_string()),
                };
                return End {
                    code,
                    reason,
                    error: None,
                    planned: false,
                    stop: false,
                    resync: false,
                };
            }
            Ok(Message::Frame(_)) => {}
            Err(e) => {
                return End {
                    code: None,
                    reason: "read failed".into(),
                    error: Some(e.to_string()),
                    planned: false,
                    stop: false,
                    resync: false,
                };
            }
        }
    }
    End {
        code: None,
        reason: "connection closed".into(),
        error: Some("end of stream without a close frame".into()),
        planned: false,
        stop: false,
        resync: false,
    }
}

async fn write_loop(
    mut write: SplitSink<Ws, Message>,
    mut outbox: mpsc::Receiver<String>,
    shared: Arc<Shared>,
    spec: StreamSpec,
) -> End {
    let timing = spec.timing;
    let ping = timing
        .ping_every
        .and_then(|every| super::app_ping(spec.exchange).map(|p| (every, p)));
    let tick_every = ping
        .map(|(every, _)| every.min(timing.pong_timeout) / 4)
        .unwrap_or(Duration::from_secs(3600))
        .max(Duration::from_millis(5));
    let mut tick = tokio::time::interval(tick_every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_ping_ms = shared.mono_ms();
    let mut outstanding: Option<i64> = None;
    let idle_only = spec.exchange == ExchangeKind::Okx;
    loop {
        let text = tokio::select! {
            m = outbox.recv() => match m {
                Some(t) => t,
                None => {
                    let close = CloseFrame { code: CloseCode::Normal, reason: "exwatch reconnects".into() };
                    let _ = tokio::time::timeout(timing.write_timeout, write.send(Message::Close(Some(close)))).await;
                    return End::ours("closed by exwatch", false);
                }
            },
            _ = tick.tick() => {
                let Some((every, ping_text)) = ping else { continue };
                let now = shared.mono_ms();
                if let Some(sent) = outstanding {
                    if shared.last_pong_ms.load(Ordering::Relaxed) >= sent {
                        outstanding = None;
                    } else if now - sent > ms(timing.pong_timeout) {
                        return End {
                            code: None,
                            reason: "pong missed".into(),
                            error: Some(format!("no pong {} ms after the ping", now - sent)),
                            planned: false,
                            stop: false,
                            resync: false,
                        };
                    }
                }
                let idle_since = if idle_only {
                    shared.last_rx_ms.load(Ordering::Relaxed).max(last_ping_ms)
                } else {
                    last_ping_ms
                };
                if outstanding.is_some() || now - idle_since < ms(every) {
                    continue;
                }
                last_ping_ms = now;
                outstanding = Some(now);
                ping_text.to_string()
            }
        };
        match tokio::time::timeout(timing.write_timeout, write.send(Message::text(text))).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                return End {
                    code: None,
                    reason: "write failed".into(),
                    error: Some(e.to_string()),
                    planned: false,
                    stop: false,
                    resync: false,
                };
            }
            Err(_) => return End::ours("write timed out", false),
        }
    }
}

async fn session_loop(
    spec: &StreamSpec,
    io: &WorkerIo,
    out: &Out<'_>,
    session: &mut Session,
    ws: Ws,
) -> End {
    let shared = Arc::new(Shared {
        epoch: Instant::now(),
        last_rx_ms: AtomicI64::new(0),
        last_pong_ms: AtomicI64::new(-1),
        dropped: AtomicU64::new(0),
    });
    let (write, read) = ws.split();
    let (frame_tx, mut frames) = mpsc::channel(spec.queue.max(1));
    let mut reader = tokio::spawn(read_loop(read, frame_tx, shared.clone(), spec.exchange));
    let (outbox, outbox_rx) = mpsc::channel::<String>(64);
    let mut writer = tokio::spawn(write_loop(write, outbox_rx, shared.clone(), spec.clone()));
    for request in session.begin() {
        if outbox.send(request).await.is_err() {
            break;
        }
    }
    let (snap_tx, mut snap_rx) = mpsc::channel::<(String, Result<BookMsg, String>)>(16);
    let mut fetches = JoinSet::new();
    let started = tokio::time::Instant::now();
    let far = started + Duration::from_secs(100 * 365 * 86_400);
    let max_age = spec.timing.max_age.map_or(far, |a| started + a);
    let mut planned_at = far;
    let mut lag_check = tokio::time::interval(Duration::from_millis(50));
    let end = 'session: loop {
        let mut reader_end = None;
        tokio::select! {
            _ = io.shutdown.cancelled() => {
                break 'session End { stop: true, ..End::ours("shutdown", true) };
            }
            f = frames.recv() => match f {
                Some(Frame::Text(t, at)) => session.on_text(&t, at),
                Some(Frame::Control(c)) => session.on_control(c),
                None => reader_end = Some((&mut reader).await),
            },
            w = &mut writer => {
                let end = w.unwrap_or_else(|e| End::ours(format!("write task failed: {e}"), false));
                if end.reason == "pong missed" {
                    let waited_ms = ms(spec.timing.pong_timeout) as u64;
                    let _ = out.send(ReportKind::PongMissed { waited_ms }).await;
                }
                break 'session end;
            }
            Some((symbol, result)) = snap_rx.recv() => session.on_snapshot(&symbol, result, now_ms()),
            _ = tokio::time::sleep_until(planned_at) => {
                break 'session End::ours("announced disconnect: reconnecting", true);
            }
            _ = tokio::time::sleep_until(max_age) => {
                let msg = format!("connection age limit {:?}", spec.timing.max_age.unwrap_or_default());
                let r = ReportKind::PlannedDisconnect { notice: None, code: None, message: msg };
                let _ = out.send(r).await;
                break 'session End::ours("age limit: reconnecting", true);
            }
            _ = lag_check.tick() => session.on_tick(now_ms()),
        }
        if let Some(end) = reader_end {
            let mut end =
                end.unwrap_or_else(|e| End::ours(format!("read task failed: {e}"), false));
            end.planned |= session.planned();
            break 'session end;
        }
        let dropped = shared.dropped.swap(0, Ordering::Relaxed);
        if dropped > 0 {
            session.on_lagged(dropped, now_ms());
        }
        let (reports, actions) = session.drain();
        for r in reports {
            if !out.send(r).await {
                break 'session End {
                    stop: true,
                    ..End::ours("report channel closed", true)
                };
            }
        }
        for a in actions {
            match a {
                Action::FetchSnapshot {
                    symbol,
                    delay,
                    attempt,
                } => {
                    let Some(fetcher) = io.snapshots.clone() else {
                        // Said once per session: the book stays invalid.
                        let error = "no REST snapshot fetcher: the book stays invalid".to_string();
                        let r = ReportKind::SnapshotFailed {
                            symbol,
                            attempt,
                            error,
                        };
                        let _ = out.send(r).await;
                        continue;
                    };
                    let tx = snap_tx.clone();
                    let limit = spec.depth_limit;
                    fetches.spawn(async move {
                        tokio::time::sleep(delay).await;
                        let r = fetcher.fetch(symbol.clone(), limit).await;
                        let _ = tx.send((symbol, r)).await;
                    });
                }
                Action::Send { requests } => {
                    for text in requests {
                        if outbox.send(text).await.is_err() {
                            break;
                        }
                    }
                }
                Action::Reconnect { planned: true, .. } => {
                    let at = tokio::time::Instant::now() + spec.timing.planned_grace;
                    planned_at = planned_at.min(at);
                }
                Action::Reconnect {
                    reason,
                    planned: false,
                } => {
                    break 'session End {
                        resync: true,
                        ..End::ours(reason, false)
                    };
                }
            }
        }
    };
    fetches.abort_all();
    drop(outbox);
    // Let the writer send its close frame, briefly; then stop both tasks.
    if !writer.is_finished() {
        let _ = tokio::time::timeout(
            spec.timing.write_timeout.min(Duration::from_secs(1)),
            &mut writer,
        )
        .await;
    }
    writer.abort();
    reader.abort();
    End {
        planned: end.planned || session.planned(),
        ..end
    }
}
