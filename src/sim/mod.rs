//! The simulated exchange: an axum server on loopback that answers the public
//! market-data paths of every exchange kind, each under its own prefix
//! (`/binance/api/v3/depth`, `/okx/api/v5/market/books`, ...), with moving
//! prices, and follows a fault [`Scenario`]. `GET /_sim/stats` returns request
//! counts, so tests can prove what limits and breakers let through.
//!
//! [`spawn`] also starts the WebSocket streams of the five exchanges on a
//! second loopback listener ([`stream`], [`SimHandle::ws_url`]), with the
//! scenario's `[stream]` faults.

pub mod market;
pub mod scenario;
pub mod shapes;
pub mod stream;

use crate::clock::wall_ms;
use crate::model::{EndpointKind, ExchangeKind};
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use market::Walk;
use scenario::{FaultKind, Scenario};
use serde::Serialize;
use shapes::SimResponse;
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// Book levels the simulator serves.
const DEPTH: usize = 20;

struct Shared {
    scenario: Scenario,
    started: Instant,
    walks: Mutex<HashMap<(ExchangeKind, String), Walk>>,
    /// Quotes frozen by a stale fault, per (kind, endpoint, symbol).
    frozen: Mutex<HashMap<(ExchangeKind, EndpointKind, String), market::Quote>>,
    stats: Mutex<Stats>,
    /// The streams, whose Binance books the REST depth endpoint serves.
    streams: Option<stream::StreamServer>,
}

#[derive(Debug, Default, Clone, Serialize)]
pub struct Stats {
    pub total: u64,
    /// Requests per path (without the query).
    pub paths: BTreeMap<String, u64>,
    /// Requests per `kind/endpoint`, e.g. `binance/book`.
    pub endpoints: BTreeMap<String, u64>,
    /// Requests answered with a fault, per fault kind.
    pub faults: BTreeMap<String, u64>,
}

/// A running simulator.
pub struct SimHandle {
    pub addr: SocketAddr,
    /// The WebSocket streams' listener.
    pub ws_addr: SocketAddr,
    streams: stream::StreamServer,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl SimHandle {
    /// Base URL of one exchange kind on this simulator.
    pub fn base_url(&self, kind: ExchangeKind) -> String {
        format!("http://{}/{}", self.addr, kind.as_str())
    }

    /// The WebSocket URL of one exchange kind's streams, e.g.
    /// `ws://127.0.0.1:PORT/okx/ws`.
    pub fn ws_url(&self, kind: ExchangeKind) -> String {
        format!("ws://{}/{}/ws", self.ws_addr, kind.as_str())
    }

    /// The stream server (counters, Binance depth snapshots).
    pub fn streams(&self) -> &stream::StreamServer {
        &self.streams
    }

    pub async fn stop(self) {
        self.shutdown.cancel();
        let _ = self.task.await;
    }
}

/// Bind and serve in the background.
pub async fn spawn(listen: SocketAddr, scenario: Scenario) -> std::io::Result<SimHandle> {
    let listener = tokio::net::TcpListener::bind(listen).await?;
    let addr = listener.local_addr()?;
    // Streams on the next port when the REST port was chosen (so a config
    // written for `exwatch sim --listen 127.0.0.1:9900` knows them:
    // ws://127.0.0.1:9901), else on any free port.
    let ws_port = if listen.port() == 0 {
        0
    } else {
        addr.port().checked_add(1).unwrap_or(0)
    };
    let ws_listener = tokio::net::TcpListener::bind(SocketAddr::new(addr.ip(), ws_port)).await?;
    let ws_addr = ws_listener.local_addr()?;
    let shutdown = CancellationToken::new();
    let streams = stream::spawn(
        ws_listener,
        scenario.stream.clone(),
        scenario.cycle,
        shutdown.clone(),
    );
    let token = shutdown.clone();
    let rest_streams = streams.clone();
    let task = tokio::spawn(async move {
        let _ = serve_with(listener, scenario, token, Some(rest_streams)).await;
    });
    Ok(SimHandle {
        addr,
        ws_addr,
        streams,
        shutdown,
        task,
    })
}

/// Serve until `shutdown` is cancelled (REST only).
pub async fn serve(
    listener: tokio::net::TcpListener,
    scenario: Scenario,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    serve_with(listener, scenario, shutdown, None).await
}

/// [`serve`], with the Binance depth endpoint answering from the streams'
/// books where a stream of that symbol is subscribed (so a REST snapshot
/// chains to the stream's update ids, as on Binance).
async fn serve_with(
    listener: tokio::net::TcpListener,
    scenario: Scenario,
    shutdown: CancellationToken,
    streams: Option<stream::StreamServer>,
) -> std::io::Result<()> {
    let shared = Arc::new(Shared {
        scenario,
        started: Instant::now(),
        walks: Mutex::new(HashMap::new()),
        frozen: Mutex::new(HashMap::new()),
        stats: Mutex::new(Stats::default()),
        streams,
    });
    let app = axum::Router::new()
        .route("/_sim/stats", axum::routing::get(stats))
        .fallback(handle)
        .with_state(shared);
    axum::serve(listener, app)
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await
}

async fn stats(State(shared): State<Arc<Shared>>) -> axum::Json<Stats> {
    let s = shared
        .stats
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    axum::Json(s)
}

fn kind_of(segment: &str) -> Option<ExchangeKind> {
    segment.parse().ok()
}

async fn handle(State(shared): State<Arc<Shared>>, req: Request) -> Response {
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or("").to_string();
    let trimmed = path.trim_start_matches('/');
    let (prefix, rest) = trimmed.split_once('/').unwrap_or((trimmed, ""));
    let routed = kind_of(prefix)
        .and_then(|k| shapes::route(k, &format!("/{rest}"), &query).map(|(e, s)| (k, e, s)));
    {
        let mut st = shared.stats.lock().unwrap_or_else(|p| p.into_inner());
        st.total += 1;
        *st.paths.entry(path.clone()).or_default() += 1;
        if let Some((k, e, _)) = &routed {
            *st.endpoints
                .entry(format!("{}/{}", k.as_str(), e.as_str()))
                .or_default() += 1;
        }
    }
    let Some((kind, endpoint, symbol)) = routed else {
        return (
            StatusCode::NOT_FOUND,
            format!("simulator: no such path {path}\n"),
        )
            .into_response();
    };
    let fault = shared
        .scenario
        .active(shared.started.elapsed(), kind, endpoint)
        .cloned();
    if let Some(f) = &fault {
        let mut st = shared.stats.lock().unwrap_or_else(|p| p.into_inner());
        *st.faults.entry(f.fault.to_string()).or_default() += 1;
    }
    let now = wall_ms();
    let healthy_quote = |shared: &Shared| {
        let mut walks = shared.walks.lock().unwrap_or_else(|p| p.into_inner());
        let seed = (kind as u64) * 7919 + symbol.len() as u64;
        walks
            .entry((kind, symbol.clone()))
            .or_insert_with(|| Walk::new(kind, seed, market::start_price(&symbol), now))
            .quote(&symbol, now, DEPTH)
    };
    let Some(f) = fault else {
        // A stale episode is over: the next one freezes a fresh quote.
        clear_frozen(&shared, kind, endpoint, &symbol);
        let streamed = match (kind, endpoint, &shared.streams) {
            (ExchangeKind::Binance, EndpointKind::Book, Some(s)) => s.binance_depth_quote(&symbol),
            _ => None,
        };
        let q = streamed.unwrap_or_else(|| healthy_quote(&shared));
        return to_response(shapes::ok(kind, endpoint, &q, now));
    };
    match f.fault {
        FaultKind::Latency => {
            let base = f.latency.unwrap_or(Duration::from_millis(800));
            let jitter = f.jitter.unwrap_or(Duration::ZERO).as_millis() as u64;
            let extra = if jitter > 0 {
                rand::random_range(0..=jitter * 2)
            } else {
                jitter
            };
            let delay =
                (base + Duration::from_millis(extra)).saturating_sub(Duration::from_millis(jitter));
            tokio::time::sleep(delay).await;
            to_response(shapes::ok(
                kind,
                endpoint,
                &healthy_quote(&shared),
                wall_ms(),
            ))
        }
        FaultKind::RateLimit => {
            to_response(shapes::rate_limited(kind, f.retry_after.unwrap_or(5), now))
        }
        FaultKind::Ban => to_response(shapes::banned(kind, f.retry_after.unwrap_or(60), now)),
        FaultKind::ServerError => to_response(shapes::server_error(kind, f.status.unwrap_or(503))),
        FaultKind::Html => Response::builder()
            .status(StatusCode::OK)
            .header("content-type", "text/html")
            .body(Body::from(
                "<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head>\
                 <body><h1>Bad Gateway</h1><p>cloudflare</p></body></html>",
            ))
            .unwrap_or_default(),
        FaultKind::Truncated => {
            let mut r = shapes::ok(kind, endpoint, &healthy_quote(&shared), now);
            let cut = r.body.len() / 2;
            let cut = (0..=cut)
                .rev()
                .find(|i| r.body.is_char_boundary(*i))
                .unwrap_or(0);
            r.body.truncate(cut);
            to_response(r)
        }
        FaultKind::Empty => {
            let mut r = shapes::ok(kind, endpoint, &healthy_quote(&shared), now);
            r.body.clear();
            to_response(r)
        }
        FaultKind::Stale => {
            let q = {
                let mut frozen = shared.frozen.lock().unwrap_or_else(|p| p.into_inner());
                frozen
                    .entry((kind, endpoint, symbol.clone()))
                    .or_insert_with(|| healthy_quote(&shared))
                    .clone()
            };
            to_response(shapes::ok(kind, endpoint, &q, now))
        }
        FaultKind::Crossed => {
            // Bids lifted above the asks, each side still sorted: only the cross is wrong.
            let mut q = healthy_quote(&shared);
            let lift = (q.ask - q.bid) * 2.0 + 1.0;
            for level in &mut q.bids {
                level.0 = ((level.0 + lift) * 100.0).round() / 100.0;
            }
            q.bid = q.bids.first().map(|l| l.0).unwrap_or(q.bid + lift);
            to_response(shapes::ok(kind, endpoint, &q, now))
        }
        FaultKind::Reset => {
            // A body that fails at once makes hyper abort the connection.
            let stream = futures::stream::once(async {
                Err::<bytes::Bytes, std::io::Error>(std::io::Error::new(
                    std::io::ErrorKind::ConnectionReset,
                    "reset",
                ))
            });
            Response::builder()
                .status(StatusCode::OK)
                .header("content-length", "512")
                .body(Body::from_stream(stream))
                .unwrap_or_default()
        }
        FaultKind::Jump => {
            let mut q = healthy_quote(&shared);
            let up = |p: f64| (p * 150.0).round() / 100.0;
            q.last = up(q.last);
            q.bid = up(q.bid);
            q.ask = up(q.ask);
            for level in q.bids.iter_mut().chain(q.asks.iter_mut()) {
                level.0 = up(level.0);
            }
            to_response(shapes::ok(kind, endpoint, &q, now))
        }
        FaultKind::BadNumber => {
            let mut q = healthy_quote(&shared);
            q.bid = f64::NAN;
            if let Some(level) = q.bids.first_mut() {
                level.0 = f64::NAN;
            }
            to_response(shapes::ok(kind, endpoint, &q, now))
        }
        FaultKind::WrongInstrument => {
            let mut q = healthy_quote(&shared);
            q.symbol = other_instrument(kind).to_string();
            let scale = |p: f64| p / 1000.0;
            q.last = scale(q.last);
            q.bid = scale(q.bid);
            q.ask = scale(q.ask);
            for level in q.bids.iter_mut().chain(q.asks.iter_mut()) {
                level.0 = scale(level.0);
            }
            to_response(shapes::ok(kind, endpoint, &q, now))
        }
        FaultKind::Hang => {
            // Held until the client gives up and closes the connection.
            tokio::time::sleep(Duration::from_secs(3600)).await;
            StatusCode::GATEWAY_TIMEOUT.into_response()
        }
    }
}

fn clear_frozen(shared: &Shared, kind: ExchangeKind, endpoint: EndpointKind, symbol: &str) {
    let mut frozen = shared.frozen.lock().unwrap_or_else(|p| p.into_inner());
    if !frozen.is_empty() {
        frozen.remove(&(kind, endpoint, symbol.to_string()));
    }
}

/// The instrument a wrong-instrument fault answers with, in the kind's spelling.
fn other_instrument(kind: ExchangeKind) -> &'static str {
    match kind {
        ExchangeKind::Binance | ExchangeKind::Bybit => "CANDYUSDT",
        ExchangeKind::Okx => "CANDY-USDT",
        ExchangeKind::Kraken => "CANDYUSD",
        ExchangeKind::Coinbase | ExchangeKind::Generic => "CANDY-USD",
    }
}

fn to_response(r: SimResponse) -> Response {
    let mut resp = Response::new(Body::from(r.body));
    *resp.status_mut() =
        StatusCode::from_u16(r.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let headers = resp.headers_mut();
    if !r
        .headers
        .iter()
        .any(|(k, _)| k.eq_ignore_ascii_case("content-type"))
    {
        headers.insert("content-type", HeaderValue::from_static("application/json"));
    }
    for (k, v) in r.headers {
        if let (Ok(k), Ok(v)) = (HeaderName::try_from(k), HeaderValue::try_from(v)) {
            headers.insert(k, v);
        }
    }
    resp
}
