//! `exwatch bench stream`: book messages parsed, applied and
//! integrity-checked per second on one core, per exchange shape, over a real
//! WebSocket on 127.0.0.1 (issue #16 point 7).
//!
//! Per shape, the frames are made first, outside the timing, by the
//! simulator's own generators (`sim::stream::book::SimBook` steps one or two
//! levels per update; `sim::stream::frames` writes them in the exchange's
//! shape, with sequence ids chained and Kraken's CRC32 at the instrument's
//! precision). Then, for each run:
//!
//! - a server thread (its own current-thread runtime) accepts one
//!   connection and writes the frames as fast as the socket takes them:
//!   the sync frames (Kraken's `instrument`, then the snapshot; Binance: the
//!   first diff event, whose REST snapshot the client is handed in-process
//!   as the worker's fetcher would) and then `messages` in-sequence updates;
//! - the client thread (one current-thread runtime: one core) does what a
//!   worker does per text frame: [`Session::on_text`] (parse, apply to the
//!   `LocalBook`, check the exchange's integrity rule), then
//!   [`Session::drain`] of the reports. The clock starts once the book is
//!   synced and stops after the last update (or after `seconds`).
//!
//! Every measured message must be `Applied`: any other verdict fails the
//! bench (a bench that measures broken books proves nothing). Figures are
//! the median run; `cpu` figures divide by the client thread's own CPU time
//! (`CLOCK_THREAD_CPUTIME_ID`), which a busy machine disturbs less than the
//! wall clock.

use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};
use tokio_util::sync::CancellationToken;

use crate::model::ExchangeKind;
use crate::sim::stream::book::{self as simbook, SimBook};
use crate::sim::stream::frames::{self, Ids};
use crate::stream::session::{Action, Session};
use crate::stream::spec::{StreamSpec, Subscription};
use crate::stream::{BookKind, BookMsg, BookSeq, Feed, Level, VerdictTally};

/// Target of issue #16 for the sequence-checked shapes, updates/s per core.
pub const SEQUENCE_TARGET: f64 = 500_000.0;
/// Target of issue #16 for Kraken's checksum, updates/s per core.
pub const CHECKSUM_TARGET: f64 = 100_000.0;

/// What `exwatch bench stream` runs.
#[derive(Debug, Clone)]
pub struct StreamBenchOptions {
    /// The shapes, in order.
    pub exchanges: Vec<ExchangeKind>,
    /// Book updates per run, after the sync frames.
    pub messages: usize,
    /// Most time one run may take; a run stopped early counts what it processed.
    pub seconds: Duration,
    /// Runs per shape; the figures are the median run's.
    pub runs: usize,
}

/// The frames of one shape.
pub struct Frames {
    exchange: ExchangeKind,
    symbol: &'static str,
    depth: u16,
    /// Sent first; the client is synced after them.
    sync: Vec<Utf8Bytes>,
    /// The measured updates, in sequence.
    updates: Vec<Utf8Bytes>,
    /// Binance: the REST depth snapshot the fetcher would return.
    rest: Option<BookMsg>,
}

impl Frames {
    /// Total bytes of the measured updates.
    pub fn update_bytes(&self) -> u64 {
        self.updates.iter().map(|f| f.len() as u64).sum()
    }
}

fn symbol(kind: ExchangeKind) -> &'static str {
    match kind {
        ExchangeKind::Okx => "BTC-USDT",
        ExchangeKind::Coinbase => "BTC-USD",
        ExchangeKind::Kraken => "BTC/USD",
        _ => "BTCUSDT",
    }
}

/// What each shape is, for the report.
fn shape(kind: ExchangeKind) -> &'static str {
    match kind {
        ExchangeKind::Binance => {
            "@depth@100ms diff events, U..u chained to a REST snapshot (lastUpdateId)"
        }
        ExchangeKind::Bybit => "orderbook.50 deltas, u +1 per message",
        ExchangeKind::Okx => "books updates, prevSeqId = previous seqId, checksum 0",
        ExchangeKind::Coinbase => "level2_batch l2update, no sequence to check",
        ExchangeKind::Kraken => "book depth 10 updates, CRC32 of the top 10 checked per message",
        ExchangeKind::Generic => "none",
    }
}

/// The target for `kind` (Coinbase has no integrity check: none).
pub fn target(kind: ExchangeKind) -> Option<f64> {
    match kind {
        ExchangeKind::Binance | ExchangeKind::Bybit | ExchangeKind::Okx => Some(SEQUENCE_TARGET),
        ExchangeKind::Kraken => Some(CHECKSUM_TARGET),
        _ => None,
    }
}

/// A snapshot and `messages` in-sequence updates of `kind`'s shape, by the
/// simulator's generators (as `sim::stream::conn` sends them).
pub fn make_frames(kind: ExchangeKind, messages: usize) -> Frames {
    let symbol = symbol(kind);
    let depth: u16 = match kind {
        ExchangeKind::Bybit => 50,
        _ => 10,
    };
    let now = crate::clock::wall_ms();
    let mut book = SimBook::new(0x5EED_0000 + kind as u64, 970_000);
    let mut sync = Vec::new();
    let mut rest = None;
    let first_id: u64 = 1_000;
    if kind == ExchangeKind::Kraken {
        sync.push(frames::instrument(&[symbol.to_string()]));
    }
    if kind == ExchangeKind::Binance {
        let lv = |(p, q): (u64, u64)| Level::new(simbook::price(p), simbook::qty(q));
        rest = Some(BookMsg {
            channel: "depth".into(),
            symbol: symbol.into(),
            kind: BookKind::Snapshot,
            bids: book.bids().into_iter().map(lv).collect(),
            asks: book.asks().into_iter().map(lv).collect(),
            seq: BookSeq::BinanceRest {
                last_update_id: first_id,
            },
            event_time_ms: None,
        });
    }
    let ids = Ids {
        first: -1,
        last: first_id as i64,
        checksum: match kind {
            ExchangeKind::Kraken => i64::from(book.kraken_checksum()),
            _ => 0,
        },
    };
    if let Some(s) = frames::book_snapshot(kind, depth, symbol, &book, ids, now) {
        sync.push(s);
    }
    // Binance sends no snapshot on the stream: its first diff event is the
    // sync frame (buffered until the REST snapshot).
    let total = messages + usize::from(kind == ExchangeKind::Binance);
    let (mut last, mut okx_seq) = (first_id, first_id as i64);
    let mut updates = Vec::with_capacity(total);
    for _ in 0..total {
        let changes = book.step();
        let mut ids = Ids::default();
        match kind {
            ExchangeKind::Binance => {
                ids.first = last as i64 + 1;
                last += changes.len() as u64;
                ids.last = last as i64;
            }
            ExchangeKind::Bybit => {
                last += 1;
                ids.last = last as i64;
            }
            ExchangeKind::Okx => {
                ids.first = okx_seq;
                okx_seq += 1 + (last % 3) as i64;
                last += 1;
                ids.last = okx_seq;
            }
            ExchangeKind::Kraken => ids.checksum = i64::from(book.kraken_checksum()),
            _ => {}
        }
        updates.push(frames::book_delta(kind, depth, symbol, &changes, ids, now));
    }
    if kind == ExchangeKind::Binance && !updates.is_empty() {
        sync.push(updates.remove(0));
    }
    let bytes = |v: Vec<String>| v.into_iter().map(Utf8Bytes::from).collect();
    Frames {
        exchange: kind,
        symbol,
        depth,
        sync: bytes(sync),
        updates: bytes(updates),
        rest,
    }
}

/// One run's figures.
#[derive(Debug, Clone)]
pub struct Run {
    /// Updates processed after the sync.
    pub messages: u64,
    /// Frames received in all (sync included).
    pub frames: u64,
    /// Bytes of the updates processed.
    pub bytes: u64,
    /// Wall time from synced to the last update.
    pub wall: Duration,
    /// The client thread's CPU time over the same stretch (`None` where
    /// the platform has no thread clock).
    pub cpu: Option<Duration>,
    /// Verdicts of the measured updates.
    pub verdicts: VerdictTally,
    /// Stopped by `seconds` before the last update.
    pub timed_out: bool,
}

impl Run {
    /// Updates per wall second.
    pub fn per_sec(&self) -> f64 {
        self.messages as f64 / self.wall.as_secs_f64().max(1e-9)
    }
}

fn thread_cpu() -> Option<Duration> {
    #[cfg(target_os = "linux")]
    {
        let t = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
        Some(Duration::new(t.tv_sec as u64, t.tv_nsec as u32))
    }
    #[cfg(not(target_os = "linux"))]
    {
        None
    }
}

type Client =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// The worker's per-frame work for one connection: [`Session::on_text`],
/// then [`Session::drain`]; Binance's snapshot fetch answered with `rest`.
async fn client_run(url: &str, f: &Frames, seconds: Duration) -> Result<Run, String> {
    let sub = Subscription::new(Feed::Book { depth: f.depth }, f.symbol);
    let spec = StreamSpec::new(f.exchange, "bench", vec![sub]);
    let mut session = Session::new(&spec);
    let (mut ws, _): (Client, _) = tokio_tungstenite::connect_async(url)
        .await
        .map_err(|e| format!("connect {url}: {e}"))?;
    for request in session.begin() {
        ws.send(Message::text(request))
            .await
            .map_err(|e| format!("send the subscribe request: {e}"))?;
    }
    let want = f.sync.len() as u64 + f.updates.len() as u64;
    let (mut frames, mut bytes) = (0u64, 0u64);
    let mut start = None;
    let mut reports = 0usize;
    let mut timed_out = false;
    while frames < want {
        let Some(msg) = ws.next().await else {
            return Err(format!("the server closed after {frames} of {want} frames"));
        };
        let text = match msg.map_err(|e| format!("read: {e}"))? {
            Message::Text(t) => t,
            _ => continue,
        };
        frames += 1;
        let synced = start.is_some();
        if synced {
            bytes += text.len() as u64;
        }
        session.on_text(text.as_str(), crate::clock::wall_ms());
        let (r, actions) = session.drain();
        reports += r.len();
        for a in actions {
            match (a, &f.rest) {
                (Action::FetchSnapshot { symbol, .. }, Some(rest)) => {
                    session.on_snapshot(&symbol, Ok(rest.clone()), crate::clock::wall_ms());
                    let (r, _) = session.drain();
                    reports += r.len();
                }
                (a, _) => return Err(format!("the session asked for {a:?}")),
            }
        }
        if let Some((t0, _, _)) = start {
            if Instant::now().duration_since(t0) >= seconds {
                timed_out = frames < want;
                break;
            }
        } else if frames == f.sync.len() as u64 {
            let book = Feed::Book { depth: f.depth };
            let channel = crate::stream::spec::data_channel(f.exchange, book);
            if !session.book_valid(channel.as_deref().unwrap_or(""), f.symbol) {
                return Err("the book is not valid after the sync frames".into());
            }
            start = Some((Instant::now(), thread_cpu(), *session.verdicts()));
        }
    }
    let Some((t0, cpu0, before)) = start else {
        return Err("no update arrived after the sync frames".into());
    };
    let wall = t0.elapsed();
    let cpu = thread_cpu().zip(cpu0).map(|(b, a)| b.saturating_sub(a));
    std::hint::black_box(reports);
    let verdicts = session.verdicts().since(&before);
    Ok(Run {
        messages: verdicts.messages(),
        frames,
        bytes,
        wall,
        cpu,
        verdicts,
        timed_out,
    })
}

/// Serve `runs` connections on `listener`, each the sync frames then the
/// updates, written as fast as the socket takes them.
async fn serve(
    listener: std::net::TcpListener,
    f: &Frames,
    runs: usize,
    stop: CancellationToken,
) -> Result<(), String> {
    let listener = tokio::net::TcpListener::from_std(listener).map_err(|e| e.to_string())?;
    for _ in 0..runs {
        let accepted = tokio::select! {
            _ = stop.cancelled() => return Ok(()),
            a = listener.accept() => a,
        };
        let (tcp, _) = accepted.map_err(|e| e.to_string())?;
        let _ = tcp.set_nodelay(true);
        let mut ws = tokio_tungstenite::accept_async(tcp)
            .await
            .map_err(|e| format!("handshake: {e}"))?;
        for frame in f.sync.iter().chain(f.updates.iter()) {
            if ws.feed(Message::Text(frame.clone())).await.is_err() {
                break; // the client stopped early (`seconds`)
            }
        }
        let _ = ws.flush().await;
        // Read until the client leaves: closing with its subscribe request
        // unread would reset the connection and drop frames it has not read.
        loop {
            tokio::select! {
                _ = stop.cancelled() => return Ok(()),
                m = ws.next() => if !matches!(m, Some(Ok(_))) { break },
            }
        }
    }
    Ok(())
}

fn current_thread() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start a runtime: {e}"))
}

/// `runs` runs of one shape: the server on its own thread, the client on
/// this one.
pub fn bench_shape(f: &Frames, runs: usize, seconds: Duration) -> Result<Vec<Run>, String> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    listener.set_nonblocking(true).map_err(|e| e.to_string())?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let url = format!("ws://{addr}/{}/ws", f.exchange.as_str());
    let stop = CancellationToken::new();
    std::thread::scope(|s| {
        let token = stop.clone();
        let server = s.spawn(move || current_thread()?.block_on(serve(listener, f, runs, token)));
        let client = || -> Result<Vec<Run>, String> {
            let rt = current_thread()?;
            (0..runs)
                .map(|_| rt.block_on(client_run(&url, f, seconds)))
                .collect()
        };
        let out = client();
        stop.cancel();
        let served = server
            .join()
            .unwrap_or_else(|_| Err("the server thread panicked".into()));
        let out = out?;
        served?;
        Ok(out)
    })
}

/// CPU model from `/proc/cpuinfo` (Linux), and the cores this process may use.
pub fn machine() -> Value {
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, m)| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into());
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    json!({ "cpu": model, "cores": cores, "os": std::env::consts::OS })
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => 0.0,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// Why a run does not count: a verdict other than `Applied`, or fewer
/// messages than frames.
fn broken(kind: ExchangeKind, run: &Run) -> Option<String> {
    let v = &run.verdicts;
    if v.applied != v.messages() || v.applied == 0 {
        return Some(format!(
            "{kind}: {} of {} book messages applied (verdicts {}): the book broke, the figures would mean nothing",
            v.applied,
            v.messages(),
            serde_json::to_string(v).unwrap_or_default()
        ));
    }
    None
}

/// One shape's figures, or the error that stopped it.
pub fn bench_one(kind: ExchangeKind, opts: &StreamBenchOptions) -> Result<Value, String> {
    let frames = make_frames(kind, opts.messages.max(1));
    let runs = bench_shape(&frames, opts.runs.max(1), opts.seconds)?;
    if let Some(e) = runs.iter().find_map(|r| broken(kind, r)) {
        return Err(e);
    }
    let rates: Vec<f64> = runs.iter().map(Run::per_sec).collect();
    let mid = median(rates.clone());
    // The median run (the one whose rate is closest to the median).
    let pick = runs
        .iter()
        .min_by(|a, b| {
            (a.per_sec() - mid)
                .abs()
                .total_cmp(&(b.per_sec() - mid).abs())
        })
        .ok_or("no run")?;
    let levels_per_msg = pick.verdicts.levels_applied as f64 / pick.messages.max(1) as f64;
    let cpu_rates: Vec<f64> = runs
        .iter()
        .filter_map(|r| r.cpu.map(|c| r.messages as f64 / c.as_secs_f64().max(1e-9)))
        .collect();
    let cpu_rate = (!cpu_rates.is_empty()).then(|| median(cpu_rates.clone()));
    let target = target(kind);
    Ok(json!({
        "exchange": kind.as_str(),
        "shape": shape(kind),
        "sync_frames": frames.sync.len(),
        "messages": pick.messages,
        "frames": pick.frames,
        "bytes": pick.bytes,
        "bytes_per_message": pick.bytes as f64 / pick.messages.max(1) as f64,
        "levels_per_message": levels_per_msg,
        "messages_per_sec": mid,
        "level_updates_per_sec": mid * levels_per_msg,
        "us_per_message": 1e6 / mid.max(1e-9),
        "messages_per_cpu_sec": cpu_rate,
        "us_cpu_per_message": cpu_rate.map(|r| 1e6 / r.max(1e-9)),
        "runs_messages_per_sec": rates,
        "runs_messages_per_cpu_sec": cpu_rates,
        "timed_out_runs": runs.iter().filter(|r| r.timed_out).count(),
        "verdicts": pick.verdicts,
        "target_messages_per_sec": target,
        "target_met": target.map(|t| mid >= t),
    }))
}

/// Every shape of `opts`; `{"error": ...}` if any cannot run or breaks its book.
pub fn bench_stream(opts: &StreamBenchOptions) -> Value {
    let mut shapes = Vec::new();
    for kind in &opts.exchanges {
        match bench_one(*kind, opts) {
            Ok(v) => shapes.push(v),
            Err(e) => return json!({ "error": e, "bench": "stream", "shapes": shapes }),
        }
    }
    json!({
        "bench": "stream",
        "machine": machine(),
        "client": "one thread, current-thread tokio runtime: Session::on_text + drain per text frame",
        "server": "another thread, tokio-tungstenite on 127.0.0.1, frames pre-generated by the simulator",
        "messages_per_run": opts.messages,
        "runs": opts.runs.max(1),
        "max_seconds_per_run": opts.seconds.as_secs_f64(),
        "figures": "median run; cpu figures over the client thread's CPU time",
        "shapes": shapes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shape_runs_with_every_message_applied() {
        let opts = StreamBenchOptions {
            exchanges: vec![
                ExchangeKind::Binance,
                ExchangeKind::Bybit,
                ExchangeKind::Okx,
                ExchangeKind::Coinbase,
                ExchangeKind::Kraken,
            ],
            messages: 300,
            seconds: Duration::from_secs(60),
            runs: 2,
        };
        let out = bench_stream(&opts);
        assert!(out.get("error").is_none(), "{out:#}");
        let shapes = out["shapes"].as_array().expect("shapes");
        assert_eq!(shapes.len(), 5);
        for s in shapes {
            assert_eq!(s["messages"], 300, "{s:#}");
            assert_eq!(s["verdicts"]["applied"], 300, "{s:#}");
            assert_eq!(s["timed_out_runs"], 0, "{s:#}");
            assert!(s["level_updates_per_sec"].as_f64().is_some_and(|x| x > 0.0));
        }
    }

    #[test]
    fn a_broken_sequence_fails_the_bench() {
        let mut f = make_frames(ExchangeKind::Bybit, 50);
        f.updates.remove(10);
        let runs = bench_shape(&f, 1, Duration::from_secs(60));
        // The gap asks to resubscribe the book: the session's action ends
        // the run.
        assert!(runs.is_err_and(|e| e.contains("Send")));
    }
}
