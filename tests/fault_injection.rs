//! Issue #15's first paragraph, through the real binary on 127.0.0.1:
//! faults an operator would meet, each with its outcome asserted. The audit
//! of which scenario is checked where is in docs/operations.md ("Fault-
//! injection suite"); this file holds the ones no other test drove through
//! the binary:
//!
//! - a hung, trickling, endless and 50 MB exchange answer, next to a healthy
//!   endpoint: each bad one ends at its timeout or at the body cap, and says
//!   so in the headless JSON, while the healthy one keeps its pace;
//! - Redis killed under a running process: polling goes on at this
//!   instance's local share, an exchange outage still raises its alert, and
//!   the headless line shows the recovery when Redis is back;
//! - a webhook refusing connections, then answering 500, then back: it ends
//!   with every notification a never-failing webhook got, once each, and
//!   its retries were backed off;
//! - bad config values, refused by `config check` and `run` with file:line;
//! - three `run --headless` processes on one Redis budget: the simulator sees
//!   no more requests than the one shared bucket allows;
//! - hundreds of terminal resizes, then quitting: the terminal is restored.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed unwrap is a failed test

mod common;

use common::headless::{Headless, write_config};
use common::redis::RedisServer;
use common::sim::{count, scenario, start};
use common::tmux::{Tmux, dashboard_visible};
use exwatch::model::ExchangeKind;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const BIN: &str = env!("CARGO_BIN_EXE_exwatch");

// ---------------------------------------------------------------------------
// (c) hung, trickling, endless and 50 MB answers
// ---------------------------------------------------------------------------

const BAD_TIMEOUT: Duration = Duration::from_millis(1000);
const MAX_BODY: usize = 2 * 1024 * 1024;

/// A bad exchange on 127.0.0.1, one misbehaviour per path:
/// `/hang` reads the request and never answers; `/trickle` sends headers
/// and then one byte every 100 ms; `/endless` streams a chunked body with no
/// end; `/huge` sends a 50 MB body as fast as the client takes it.
/// Returns its base URL.
async fn start_bad_server() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut req = Vec::new();
                let mut buf = [0u8; 1024];
                while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                    match sock.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => req.extend_from_slice(&buf[..n]),
                    }
                }
                let head = String::from_utf8_lossy(&req).into_owned();
                let path = head.split_whitespace().nth(1).unwrap_or("").to_string();
                if path.starts_with("/hang") {
                    tokio::time::sleep(Duration::from_secs(600)).await;
                } else if path.starts_with("/trickle") {
                    let h = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n";
                    if sock.write_all(h.as_bytes()).await.is_err() {
                        return;
                    }
                    loop {
                        if sock.write_all(b" ").await.is_err() {
                            return;
                        }
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                } else if path.starts_with("/endless") {
                    let h = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n";
                    if sock.write_all(h.as_bytes()).await.is_err() {
                        return;
                    }
                    let chunk = vec![b' '; 64 * 1024];
                    let mut framed = format!("{:x}\r\n", chunk.len()).into_bytes();
                    framed.extend_from_slice(&chunk);
                    framed.extend_from_slice(b"\r\n");
                    loop {
                        if sock.write_all(&framed).await.is_err() {
                            return;
                        }
                    }
                } else if path.starts_with("/huge") {
                    let size = 50 * 1024 * 1024;
                    let h = format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {size}\r\n\r\n"
                    );
                    if sock.write_all(h.as_bytes()).await.is_err() {
                        return;
                    }
                    let chunk = vec![b' '; 64 * 1024];
                    let mut sent = 0;
                    while sent < size {
                        if sock.write_all(&chunk).await.is_err() {
                            return;
                        }
                        sent += chunk.len();
                    }
                } else {
                    let _ = sock
                        .write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
                        .await;
                }
            });
        }
    });
    format!("http://{addr}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hung_trickling_endless_and_huge_answers_are_bounded_and_neighbours_keep_their_pace() {
    let sim = start(scenario(vec![])).await;
    let bad = start_bad_server().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut text = format!(
        "[log]\ndir = \"{logs}\"\n[journal]\nenabled = false\n[headless]\ninterval = \"200ms\"\n\
         [http]\nmax_body_bytes = {MAX_BODY}\n\
         [[exchanges]]\nname = \"binance\"\nkind = \"binance\"\nbase_url = \"{base}\"\n\
         [[exchanges.endpoints]]\nname = \"ticker\"\nkind = \"ticker\"\ninterval = \"100ms\"\ntimeout = \"1s\"\n\
         [[exchanges]]\nname = \"bad\"\nkind = \"binance\"\nbase_url = \"{bad}\"\n",
        logs = dir.path().join("logs").display(),
        base = sim.base_url(ExchangeKind::Binance),
    );
    for name in ["hang", "trickle", "endless", "huge"] {
        text.push_str(&format!(
            "[[exchanges.endpoints]]\nname = \"{name}\"\nkind = \"time\"\npath = \"/{name}\"\n\
             interval = \"200ms\"\ntimeout = \"{}ms\"\n",
            BAD_TIMEOUT.as_millis()
        ));
    }
    let cfg = write_config(dir.path(), &text);
    let mut ex = Headless::run(&cfg, &[]);

    // Every bad endpoint has an outcome (each needs at most its timeout).
    let deadline = Instant::now() + Duration::from_secs(20);
    let outcome = |name: &str| {
        ex.endpoint("bad", name)
            .map(|e| e["outcome"].as_str().unwrap_or_default().to_string())
            .unwrap_or_default()
    };
    while ["hang", "trickle", "endless", "huge"]
        .iter()
        .any(|n| matches!(outcome(n).as_str(), "" | "pending"))
    {
        assert!(
            Instant::now() < deadline,
            "not every bad endpoint has an outcome: {:?}",
            ex.latest("bad")
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // The healthy neighbour, over a window while the bad ones misbehave.
    let window = Duration::from_secs(4);
    let rss_before = rss_bytes(ex.child.id(), "VmRSS:");
    let before = count(&sim, "binance/ticker").await;
    tokio::time::sleep(window).await;
    let polled = count(&sim, "binance/ticker").await - before;

    // Memory stays bounded: over the window the 50 MB and endless bodies
    // were each read again and again (every 200 ms), at most to the cap; a
    // body held whole, or kept, would show as growth of the resident set.
    let rss_after = rss_bytes(ex.child.id(), "VmRSS:");
    let peak = rss_bytes(ex.child.id(), "VmHWM:");
    eprintln!(
        "resident set: {} MiB before the window, {} MiB after, peak {} MiB",
        rss_before >> 20,
        rss_after >> 20,
        peak >> 20
    );
    assert!(
        rss_after < rss_before + 8 * MAX_BODY as u64,
        "resident set grew from {} to {} MiB while the 50 MB answer was polled",
        rss_before >> 20,
        rss_after >> 20
    );

    let bad_line = ex.latest("bad");
    let guard_ms = BAD_TIMEOUT.as_millis() as f64 + 500.0;
    for name in ["hang", "trickle"] {
        let e = ex.endpoint("bad", name).expect("a line");
        assert_eq!(e["outcome"], "timeout", "{name}: {bad_line:?}");
        let latency = e["latency_ms"].as_f64().expect("latency_ms");
        assert!(
            latency >= BAD_TIMEOUT.as_millis() as f64 * 0.9 && latency <= guard_ms,
            "{name}: ended after {latency} ms, not at its {BAD_TIMEOUT:?} timeout: {e}"
        );
    }
    for name in ["endless", "huge"] {
        let e = ex.endpoint("bad", name).expect("a line");
        let outcome = e["outcome"].as_str().unwrap_or_default();
        let detail = e["detail"].as_str().unwrap_or_default();
        assert!(
            outcome.starts_with("invalid")
                && detail.contains(&format!("body larger than the {MAX_BODY}-byte cap")),
            "{name}: not cut at the {MAX_BODY}-byte cap: {e}"
        );
        let latency = e["latency_ms"].as_f64().expect("latency_ms");
        assert!(
            latency <= guard_ms,
            "{name}: the capped body took {latency} ms: {e}"
        );
    }

    // The neighbour: 100 ms interval, so ~40 polls in the window; at least
    // half of them (a guard against being held up by the bad ones, which
    // each take up to a second) and every answer ok.
    let nominal = window.as_millis() as u64 / 100;
    assert!(
        polled >= nominal / 2,
        "the healthy ticker polled {polled} times in {window:?} (nominal {nominal})"
    );
    eprintln!("healthy ticker: {polled} polls in {window:?} (nominal {nominal})");
    let t = ex.endpoint("binance", "ticker").expect("ticker line");
    assert_eq!(t["outcome"], "ok", "{t}");
    assert!(
        ex.latest("binance").unwrap()["healthy"] == true,
        "the healthy exchange is shown unhealthy"
    );
    ex.stop();
    sim.stop().await;
}

/// A size field of process `pid`'s `/proc/<pid>/status` (`VmRSS:`, the
/// resident set; `VmHWM:`, its peak), bytes.
fn rss_bytes(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc status");
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("a size in kB");
    kb * 1024
}

// ---------------------------------------------------------------------------
// (f) three instances on one Redis budget
// ---------------------------------------------------------------------------

const REDIS_ENV: &str = "EXW_FAULT_SUITE_REDIS_URL";
const CAPACITY: f64 = 5.0;
const REFILL_PER_SEC: f64 = 10.0;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_processes_on_one_redis_budget_stay_within_the_shared_bound() {
    let sim = start(scenario(vec![])).await;
    let redis = RedisServer::start();
    let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let started = Instant::now();
    let mut procs: Vec<Headless> = dirs
        .iter()
        .enumerate()
        .map(|(i, dir)| {
            // Each process alone would poll 100 times a second.
            let text = format!(
                "[instance]\nname = \"i{i}\"\n\
                 [log]\ndir = \"{logs}\"\n[journal]\nenabled = false\n[headless]\ninterval = \"200ms\"\n\
                 [redis]\nurl_env = \"{REDIS_ENV}\"\ntimeout = \"500ms\"\n\
                 [limiter]\nbackend = \"redis\"\ninstances = 3\n\
                 [[exchanges]]\nname = \"binance\"\nkind = \"binance\"\nbase_url = \"{base}\"\n\
                 rate_limit = {{ capacity = {CAPACITY}, refill_per_sec = {REFILL_PER_SEC} }}\n\
                 [[exchanges.endpoints]]\nname = \"ticker\"\nkind = \"ticker\"\ninterval = \"10ms\"\n\
                 timeout = \"1s\"\nweight = 1\n",
                logs = dir.path().join("logs").display(),
                base = sim.base_url(ExchangeKind::Binance),
            );
            let cfg = write_config(dir.path(), &text);
            Headless::run(&cfg, &[(REDIS_ENV, redis.url())])
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(8)).await;
    // Each instance polled (none was starved by the others) ...
    let per: Vec<u64> = procs
        .iter()
        .map(|p| {
            p.endpoint("binance", "ticker")
                .and_then(|e| e["calls"].as_u64())
                .unwrap_or(0)
        })
        .collect();
    for p in &mut procs {
        p.stop();
    }
    let elapsed = started.elapsed().as_secs_f64();
    // ... and calls already granted have reached the simulator.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let total = count(&sim, "binance/ticker").await as f64;
    // One bucket for all three: its burst plus its refill over the whole
    // run (from before the first process started to after the last ended).
    let bound = CAPACITY + REFILL_PER_SEC * elapsed;
    assert!(
        total <= bound,
        "{total} requests in {elapsed:.2} s exceed the shared bound {bound:.1} (per instance {per:?})"
    );
    assert!(
        total >= bound * 0.5,
        "only {total} requests of a bound of {bound:.1}: the limiter starved the instances ({per:?})"
    );
    assert!(
        per.iter().all(|&c| c > 0),
        "an instance never polled: {per:?}"
    );
    eprintln!("{total} requests in {elapsed:.2} s, bound {bound:.1}, per instance {per:?}");
    sim.stop().await;
}

// ---------------------------------------------------------------------------
// (a) Redis killed: polling goes on on the local share, alerts still fire
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_killed_polling_goes_on_on_the_local_share_alerts_fire_and_it_recovers() {
    // OKX answers 503s from 6 s to 10 s: an alert while Redis is down.
    let sim = start(scenario(vec![common::sim::fault(
        exwatch::sim::scenario::FaultKind::ServerError,
        ExchangeKind::Okx,
        Some(exwatch::model::EndpointKind::Ticker),
        Duration::from_secs(6),
        Duration::from_secs(4),
    )]))
    .await;
    let t0 = Instant::now();
    let mut redis = RedisServer::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let journal = dir.path().join("j.jsonl");
    // The shared budget is 10/s; each of the 2 instances' local share 5/s.
    let text = format!(
        "[log]\ndir = \"{logs}\"\n[journal]\npath = \"{journal}\"\n[headless]\ninterval = \"100ms\"\n\
         [redis]\nurl_env = \"{REDIS_ENV}\"\ntimeout = \"300ms\"\n\
         [limiter]\nbackend = \"redis\"\ninstances = 2\non_redis_outage = \"local\"\n\
         [alerts.detect.backend]\nfire_for = \"1s\"\n\
         [[exchanges]]\nname = \"binance\"\nkind = \"binance\"\nbase_url = \"{binance}\"\n\
         rate_limit = {{ capacity = 4, refill_per_sec = 10 }}\n\
         [[exchanges.endpoints]]\nname = \"ticker\"\nkind = \"ticker\"\ninterval = \"20ms\"\ntimeout = \"1s\"\nweight = 1\n\
         [[exchanges]]\nname = \"okx\"\nkind = \"okx\"\nbase_url = \"{okx}\"\n\
         [[exchanges.endpoints]]\nname = \"ticker\"\nkind = \"ticker\"\ninterval = \"100ms\"\ntimeout = \"1s\"\n",
        logs = dir.path().join("logs").display(),
        journal = journal.display(),
        binance = sim.base_url(ExchangeKind::Binance),
        okx = sim.base_url(ExchangeKind::Okx),
    );
    let cfg = write_config(dir.path(), &text);
    let ex = Headless::run(&cfg, &[(REDIS_ENV, redis.url())]);
    let line = |exchange: &str| ex.latest(exchange);
    let degraded = |v: &serde_json::Value| -> Vec<String> {
        v["degraded"]
            .as_array()
            .expect("every line has `degraded`")
            .iter()
            .map(|d| d["component"].as_str().unwrap_or_default().to_string())
            .collect()
    };
    let wait = |what: &str, within: Duration, f: &dyn Fn() -> bool| {
        let end = Instant::now() + within;
        while !f() {
            assert!(
                Instant::now() < end,
                "gave up waiting for: {what}; binance {:?}",
                line("binance")
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    wait("a healthy, polling line", Duration::from_secs(15), &|| {
        line("binance").is_some_and(|v| {
            degraded(&v).is_empty() && v["endpoints"][0]["calls"].as_u64() > Some(0)
        })
    });
    assert!(
        t0.elapsed() < Duration::from_secs(5),
        "exwatch took too long to start for the fault timeline"
    );

    redis.kill();
    wait("redis_limiter degraded", Duration::from_secs(10), &|| {
        line("binance").is_some_and(|v| degraded(&v).contains(&"redis_limiter".to_string()))
    });
    // Polling goes on, at this instance's share (4/2 burst + 10/2 per s),
    // not at the whole budget nor the 20 ms interval.
    let window = Duration::from_secs(3);
    let before = count(&sim, "binance/ticker").await;
    tokio::time::sleep(window).await;
    let polled = count(&sim, "binance/ticker").await - before;
    let share = 2.0 + 5.0 * window.as_secs_f64();
    assert!(
        polled as f64 <= share + 1.0,
        "{polled} polls in {window:?} with Redis down: more than the local share {share}"
    );
    assert!(
        polled as f64 >= share * 0.5,
        "{polled} polls in {window:?} with Redis down: polling did not go on (share {share})"
    );

    // The OKX outage while Redis is down still raises its alert.
    let okx_firing = || {
        std::fs::read_to_string(&journal)
            .unwrap_or_default()
            .lines()
            .any(|l| l.contains("\"okx/ticker/") && l.contains("\"state\":\"firing\""))
    };
    wait(
        "an okx alert firing in the journal while Redis is down",
        Duration::from_secs(15),
        &okx_firing,
    );
    assert!(
        line("binance").is_some_and(|v| degraded(&v).contains(&"redis_limiter".to_string())),
        "Redis came back before the alert: the test proves nothing"
    );
    let limiter_alert = std::fs::read_to_string(&journal)
        .unwrap_or_default()
        .lines()
        .any(|l| l.contains("\"exwatch/redis_limiter/backend\"") && l.contains("\"firing\""));
    assert!(
        limiter_alert,
        "no backend alert for the limiter in the journal"
    );

    // Back: the next line says so, and the shared bucket is used again.
    redis.restart();
    let back = Instant::now();
    wait(
        "redis_limiter healthy again",
        Duration::from_secs(10),
        &|| line("binance").is_some_and(|v| degraded(&v).is_empty()),
    );
    let took = back.elapsed();
    assert!(
        took <= Duration::from_secs(2),
        "recovery took {took:?} after Redis came back (a guard: the issue says within a second)"
    );
    let key_exists = || {
        redis
            .cli(&["KEYS", "*binance*"])
            .is_some_and(|s| !s.trim().is_empty())
    };
    wait(
        "the shared bucket in Redis again",
        Duration::from_secs(5),
        &key_exists,
    );
    eprintln!("recovery after restart: {took:?}; polls during the outage: {polled}");
    drop(ex);
    sim.stop().await;
}

// ---------------------------------------------------------------------------
// (b) a sink refusing connections, then failing, then back
// ---------------------------------------------------------------------------

/// One request a receiver got: when, its notification id, the answer.
#[derive(Debug, Clone)]
struct Got {
    at: Instant,
    id: String,
    status: u16,
}

type Log = Arc<Mutex<Vec<Got>>>;

/// A webhook receiver on `listener` that answers 500 until `fail_until`,
/// then 200, and logs every request.
fn serve_webhook(listener: tokio::net::TcpListener, fail_until: Instant, log: Log) {
    let app = axum::Router::new().fallback(move |body: axum::body::Bytes| {
        let log = log.clone();
        async move {
            let v: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
            let status = if Instant::now() < fail_until {
                500
            } else {
                200
            };
            log.lock().unwrap().push(Got {
                at: Instant::now(),
                id: v["notification_id"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                status,
            });
            axum::http::StatusCode::from_u16(status).unwrap()
        }
    });
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sink_refusing_then_failing_gets_every_notification_once_with_backed_off_retries() {
    use exwatch::model::EndpointKind;
    use exwatch::sim::scenario::FaultKind;
    const REFUSING: Duration = Duration::from_secs(4);
    const FAILING_UNTIL: Duration = Duration::from_secs(12);
    // Incidents while the hook refuses connections and while it answers 500.
    let sim = start(scenario(vec![
        common::sim::fault(
            FaultKind::ServerError,
            ExchangeKind::Binance,
            Some(EndpointKind::Ticker),
            Duration::from_millis(500),
            Duration::from_secs(3),
        ),
        common::sim::fault(
            FaultKind::ServerError,
            ExchangeKind::Okx,
            Some(EndpointKind::Ticker),
            Duration::from_secs(6),
            Duration::from_secs(3),
        ),
    ]))
    .await;
    let t0 = Instant::now();
    // The reference sink never fails.
    let reference: Log = Arc::default();
    let ref_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let ref_url = format!("http://{}/ref", ref_listener.local_addr().unwrap());
    serve_webhook(ref_listener, t0, reference.clone());
    // The hook's port has no listener yet: connections are refused.
    let hook_port = common::free_port();
    let hook: Log = Arc::default();

    let dir = tempfile::tempdir().expect("tempdir");
    let mut text = format!(
        "[log]\ndir = \"{logs}\"\n[journal]\nenabled = false\n[headless]\ninterval = \"1s\"\n\
         [alerts.grouping]\ngroup_wait = \"500ms\"\ngroup_interval = \"2s\"\nrepeat_interval = \"1h\"\n\
         [alerts.detect.error_rate]\nclear_for = \"1s\"\n\
         [[alerts.sinks]]\nname = \"hook\"\nkind = \"webhook\"\nurl_env = \"EXW_FI_HOOK\"\nmin_severity = \"info\"\n\
         retry_initial = \"200ms\"\nretry_max = \"3s\"\n\
         [[alerts.sinks]]\nname = \"ref\"\nkind = \"webhook\"\nurl_env = \"EXW_FI_REF\"\nmin_severity = \"info\"\n",
        logs = dir.path().join("logs").display(),
    );
    for kind in [ExchangeKind::Binance, ExchangeKind::Okx] {
        text.push_str(&format!(
            "[[exchanges]]\nname = \"{k}\"\nkind = \"{k}\"\nbase_url = \"{base}\"\n\
             [[exchanges.endpoints]]\nname = \"ticker\"\nkind = \"ticker\"\ninterval = \"200ms\"\ntimeout = \"1s\"\n",
            k = kind.as_str(),
            base = sim.base_url(kind),
        ));
    }
    let cfg = write_config(dir.path(), &text);
    let _ex = Headless::run(
        &cfg,
        &[
            ("EXW_FI_HOOK", format!("http://127.0.0.1:{hook_port}/hook")),
            ("EXW_FI_REF", ref_url),
        ],
    );

    tokio::time::sleep(REFUSING.saturating_sub(t0.elapsed())).await;
    assert!(
        !reference.lock().unwrap().is_empty(),
        "no notification while the hook refused connections: the test proves nothing"
    );
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", hook_port))
        .await
        .expect("bind the hook's port");
    serve_webhook(listener, t0 + FAILING_UNTIL, hook.clone());

    // Caught up: the hook has every notification the reference got, well
    // after both incidents (and their resolutions, if any) were notified.
    tokio::time::sleep(FAILING_UNTIL.saturating_sub(t0.elapsed())).await;
    let ids = |log: &Log, ok_only: bool| -> Vec<String> {
        log.lock()
            .unwrap()
            .iter()
            .filter(|g| !ok_only || g.status == 200)
            .map(|g| g.id.clone())
            .collect()
    };
    let end = Instant::now() + Duration::from_secs(20);
    loop {
        let (h, r) = (ids(&hook, true), ids(&reference, true));
        let settled = reference
            .lock()
            .unwrap()
            .last()
            .is_some_and(|g| g.at.elapsed() > Duration::from_secs(3));
        // Both incidents fire and resolve: 4 notifications at least.
        if settled && r.len() >= 4 && h.len() >= r.len() {
            break;
        }
        assert!(
            Instant::now() < end,
            "the hook did not catch up: hook {h:?} vs reference {r:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let delivered = ids(&hook, true);
    let expected = ids(&reference, true);
    let failed = hook
        .lock()
        .unwrap()
        .iter()
        .filter(|g| g.status == 500)
        .count();
    assert!(failed > 0, "the hook never saw a request while it failed");
    // Every notification once: nothing lost, nothing delivered twice.
    let mut unique = delivered.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(
        unique.len(),
        delivered.len(),
        "delivered twice: {delivered:?}"
    );
    assert!(expected.len() >= 4, "too few notifications: {expected:?}");
    let mut expected_sorted = expected.clone();
    expected_sorted.sort();
    assert_eq!(
        unique, expected_sorted,
        "the hook did not get the notifications the reference got"
    );
    // Backed off: per notification, no wait shorter than 0.8 x 200 ms, each
    // wait at least 0.6 of the one before (doubling, or at the cap, with
    // ±20% jitter), and few attempts over the 8 s of 500s.
    let attempts = hook.lock().unwrap().clone();
    let mut per: BTreeMap<String, Vec<Instant>> = BTreeMap::new();
    for g in &attempts {
        per.entry(g.id.clone()).or_default().push(g.at);
    }
    for (id, at) in &per {
        let gaps: Vec<Duration> = at.windows(2).map(|w| w[1] - w[0]).collect();
        assert!(
            at.len() <= 10,
            "{id}: {} attempts while failing for 8 s with backoff up to 3 s: {gaps:?}",
            at.len()
        );
        for w in gaps.windows(2) {
            assert!(
                w[1].as_secs_f64() >= w[0].as_secs_f64() * 0.6,
                "{id}: retries not backed off: {gaps:?}"
            );
        }
        assert!(
            gaps.iter().all(|g| *g >= Duration::from_millis(160)),
            "{id}: a retry sooner than the initial backoff: {gaps:?}"
        );
    }
    eprintln!(
        "notifications {expected:?} / {delivered:?}, failed attempts {failed}, attempts per id {:?}",
        per.values().map(Vec::len).collect::<Vec<_>>()
    );
    sim.stop().await;
}

// ---------------------------------------------------------------------------
// (d) bad config values, refused by the binary with file:line
// ---------------------------------------------------------------------------

/// A valid config; each case below puts one bad value into it.
const GOOD_CONFIG: &str = "[log]\ndir = \"LOGS\"\n[journal]\nenabled = false\n\
[[exchanges]]\nname = \"binance\"\nkind = \"binance\"\nbase_url = \"http://127.0.0.1:9/binance\"\n\
[[exchanges.endpoints]]\nname = \"ticker\"\nkind = \"ticker\"\n";

/// Run `cmd` to its end, or kill it after `within` (a config accepted by
/// mistake would have `run` poll forever): its output either way.
fn output_within(cmd: &mut Command, within: Duration) -> std::process::Output {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run exwatch");
    let end = Instant::now() + within;
    while child.try_wait().expect("wait").is_none() && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    child.wait_with_output().expect("output")
}

/// One bad value per case, each through `config check FILE` and
/// `run --headless -c FILE`: exit 2 before anything starts, and stderr
/// names `FILE:LINE:` of the bad value and its field. The cases are a
/// spread over the kinds of check (unit tests of every range are in
/// tests/config_errors.rs): `(appended text, the bad line, field)`.
#[test]
fn bad_config_values_are_refused_by_the_binary_with_file_and_line() {
    let cases: &[(&str, &str, &str)] = &[
        (
            "interval = \"1ns\"",
            "interval",
            "exchanges[0].endpoints[0].interval",
        ),
        (
            "interval = \"100000000000y\"",
            "interval",
            "exchanges[0].endpoints[0].interval",
        ),
        (
            "timeout = \"1h\"",
            "timeout",
            "exchanges[0].endpoints[0].timeout",
        ),
        ("depth = 0", "depth", "exchanges[0].endpoints[0].depth"),
        ("weight = \"heavy\"", "weight", "weight"),
        ("colour = \"red\"", "colour", "colour"),
        (
            "[[exchanges.endpoints]]\nname = \"k\"\nkind = \"candles\"",
            "kind = \"candles\"",
            "kind",
        ),
        (
            "[http]\nmax_body_bytes = 1",
            "max_body_bytes",
            "http.max_body_bytes",
        ),
        (
            "[http]\nmax_body_bytes = 17179869184",
            "max_body_bytes",
            "http.max_body_bytes",
        ),
        (
            "[http]\nconnect_timeout = \"1ns\"",
            "connect_timeout",
            "http.connect_timeout",
        ),
        (
            "[headless]\ninterval = \"0s\"",
            "interval = \"0s\"",
            "headless.interval",
        ),
        (
            "[limiter]\ninstances = 100000",
            "instances",
            "limiter.instances",
        ),
        (
            "[limiter]\nbackend = \"redis\"",
            "backend",
            "limiter.backend",
        ),
        (
            "[alerts.grouping]\ngroup_wait = \"100000000000y\"",
            "group_wait",
            "alerts.grouping.group_wait",
        ),
        (
            "[alerts.detect.error_rate]\nclear_for = \"2days\"",
            "clear_for",
            "alerts.detect.error_rate.clear_for",
        ),
        (
            "[triage]\ntimeout = \"1ns\"",
            "timeout = \"1ns\"",
            "triage.timeout",
        ),
        (
            "[[exchanges]]\nname = \"okx\"\nkind = \"okx\"\nbase_url = \"https://alice:Pa55@api.example.com\"",
            "base_url = \"https://alice",
            "exchanges[1].base_url",
        ),
        (
            "[[exchanges]]\nname = \"okx\"\nkind = \"okx\"\nbase_url = \"not a url\"",
            "base_url = \"not a url\"",
            "exchanges[1].base_url",
        ),
    ];
    let dir = tempfile::tempdir().expect("tempdir");
    let logs = dir.path().join("logs");
    let mut failures = Vec::new();
    for (i, (text, bad, field)) in cases.iter().enumerate() {
        let path = dir.path().join(format!("bad{i}.toml"));
        let full = format!(
            "{}{text}\n",
            GOOD_CONFIG.replace("LOGS", &logs.display().to_string())
        );
        // The last line holding `bad` (the appended text comes last).
        let line = 1 + full
            .lines()
            .collect::<Vec<_>>()
            .iter()
            .rposition(|l| l.contains(bad))
            .unwrap_or_else(|| panic!("case {i}: no line holds {bad:?}"));
        std::fs::write(&path, &full).expect("write config");
        let mut check = Command::new(BIN);
        check.args(["config", "check"]).arg(&path);
        let mut run = Command::new(BIN);
        run.args(["run", "--headless", "-c"]).arg(&path);
        for (what, cmd) in [("config check", &mut check), ("run --headless", &mut run)] {
            let out = output_within(
                cmd.stdin(Stdio::null()).env_remove("EXWATCH_REDIS_URL"),
                Duration::from_secs(10),
            );
            let err = String::from_utf8_lossy(&out.stderr);
            let at = format!("{}:{line}:", path.display());
            if out.status.code() != Some(2) || !err.contains(&at) || !err.contains(field) {
                failures.push(format!(
                    "{what} {text:?}: exit {:?}, wanted `{at}` and `{field}` in:\n{err}",
                    out.status.code()
                ));
            }
            assert!(!err.contains("Pa55"), "{what}: the password echoed: {err}");
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} refusals without file:line:\n{}",
        failures.len(),
        cases.len() * 2,
        failures.join("\n")
    );
}

// ---------------------------------------------------------------------------
// (e) terminal resizes, then every way of quitting
// ---------------------------------------------------------------------------

/// `n` resizes in a row, as fast as tmux takes them, through sizes from
/// 1x1 to 240x70; the last one back to 120x40.
fn resize_storm(t: &Tmux, n: usize) {
    const SIZES: [(u16, u16); 8] = [
        (1, 1),
        (240, 70),
        (20, 5),
        (80, 24),
        (3, 50),
        (200, 2),
        (41, 13),
        (160, 48),
    ];
    for i in 0..n {
        let (x, y) = SIZES[i % SIZES.len()];
        t.tmux(&[
            "resize-window",
            "-t",
            "e2e",
            "-x",
            &x.to_string(),
            "-y",
            &y.to_string(),
        ]);
        if i % 50 == 0 {
            // The resizes are real: the pane has the size just asked for.
            assert_eq!(
                t.pane_flag("window_width"),
                x.to_string(),
                "resize {i} did not take"
            );
        }
    }
    t.tmux(&["resize-window", "-t", "e2e", "-x", "120", "-y", "40"]);
}

/// 3 x 200 resizes; after each storm the dashboard is drawn again at
/// 120x40, then exwatch is quit a different way each time (q, Ctrl-C,
/// SIGTERM) and the terminal is handed back.
#[test]
fn hundreds_of_resizes_then_every_way_of_quitting_restore_the_terminal() {
    for how in ["q", "ctrl-c", "sigterm"] {
        let t = Tmux::start(how);
        let pid = t.pid();
        t.wait_for(Duration::from_secs(30), dashboard_visible)
            .unwrap_or_else(|s| panic!("{how}: the dashboard did not show:\n{s}"));
        resize_storm(&t, 200);
        assert!(
            Path::new(&format!("/proc/{pid}")).exists(),
            "{how}: exwatch died during the resizes:\n{}",
            t.screen()
        );
        assert_eq!(
            t.pane_flag("alternate_on"),
            "1",
            "{how}: left the dashboard"
        );
        t.wait_for(Duration::from_secs(10), dashboard_visible)
            .unwrap_or_else(|s| panic!("{how}: no dashboard at 120x40 after the resizes:\n{s}"));
        match how {
            "q" => t.tmux(&["send-keys", "-t", "e2e", "q"]),
            "ctrl-c" => t.tmux(&["send-keys", "-t", "e2e", "C-c"]),
            _ => {
                let st = Command::new("kill")
                    .args(["-TERM", &pid.to_string()])
                    .status()
                    .expect("kill");
                assert!(st.success());
                String::new()
            }
        };
        t.assert_exited_and_restored(pid, how);
    }
}

// ---------------------------------------------------------------------------
// #15 items 6 and 7 through the binary: a slow sink, a hung model
// ---------------------------------------------------------------------------

/// An alert source: Binance's ticker failing from the start for `for_`.
async fn failing_binance(for_: Duration) -> exwatch::sim::SimHandle {
    use exwatch::model::EndpointKind;
    use exwatch::sim::scenario::FaultKind;
    start(scenario(vec![common::sim::fault(
        FaultKind::ServerError,
        ExchangeKind::Binance,
        Some(EndpointKind::Ticker),
        Duration::ZERO,
        for_,
    )]))
    .await
}

fn journal_config(dir: &Path, sim: &exwatch::sim::SimHandle, extra: &str) -> (PathBuf, PathBuf) {
    let journal = dir.join("j.jsonl");
    let text = format!(
        "[log]\ndir = \"{logs}\"\n[journal]\npath = \"{j}\"\n[headless]\ninterval = \"1s\"\n\
         [alerts.grouping]\ngroup_wait = \"200ms\"\ngroup_interval = \"2s\"\nrepeat_interval = \"1h\"\n\
         {extra}\n\
         [[exchanges]]\nname = \"binance\"\nkind = \"binance\"\nbase_url = \"{base}\"\n\
         [[exchanges.endpoints]]\nname = \"ticker\"\nkind = \"ticker\"\ninterval = \"200ms\"\ntimeout = \"1s\"\n",
        logs = dir.join("logs").display(),
        j = journal.display(),
        base = sim.base_url(ExchangeKind::Binance),
    );
    (write_config(dir, &text), journal)
}

async fn journal_shows(journal: &Path, within: Duration, needle: &str) -> bool {
    let end = Instant::now() + within;
    while Instant::now() < end {
        if std::fs::read_to_string(journal)
            .unwrap_or_default()
            .contains(needle)
        {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

/// Item 6: a receiver that answers after the sink's timeout gets the same
/// notification (one `notification_id`) on every attempt, and the delivery
/// ends `unconfirmed` (may have arrived), never `failed`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sink_slower_than_its_timeout_is_unconfirmed_under_one_notification_id() {
    let sim = failing_binance(Duration::from_secs(600)).await;
    let got: Log = Arc::default();
    let log = got.clone();
    let app = axum::Router::new().fallback(move |body: axum::body::Bytes| {
        let log = log.clone();
        async move {
            let v: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
            log.lock().unwrap().push(Got {
                at: Instant::now(),
                id: v["notification_id"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                status: 200,
            });
            // Slower than the sink's 300 ms timeout: it may well have arrived.
            tokio::time::sleep(Duration::from_millis(1500)).await;
            axum::http::StatusCode::OK
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let dir = tempfile::tempdir().expect("tempdir");
    let (cfg, journal) = journal_config(
        dir.path(),
        &sim,
        "[[alerts.sinks]]\nname = \"hook\"\nkind = \"webhook\"\nurl_env = \"EXW_FI_SLOW\"\n\
         min_severity = \"info\"\ntimeout = \"300ms\"\nretry_initial = \"200ms\"\nretry_max = \"400ms\"\ngive_up_after = \"1500ms\"\n",
    );
    let _ex = Headless::run(&cfg, &[("EXW_FI_SLOW", url)]);
    assert!(
        journal_shows(&journal, Duration::from_secs(30), "\"unconfirmed\"").await,
        "no unconfirmed delivery in the journal:\n{}",
        std::fs::read_to_string(&journal).unwrap_or_default()
    );
    let text = std::fs::read_to_string(&journal).unwrap_or_default();
    assert!(
        !text.contains("\"delivery\":\"failed\""),
        "a timed-out delivery was recorded as failed"
    );
    let got = got.lock().unwrap().clone();
    let first = &got.first().expect("the receiver got the notification").id;
    let attempts = got.iter().filter(|g| &g.id == first).count();
    assert!(attempts >= 2, "retried: {got:?}");
    assert!(!first.is_empty(), "a notification_id: {got:?}");
    println!("slow sink: {attempts} attempts of {first}, unconfirmed");
}

/// Item 7: with a model that never answers (timeout 30 s), the rules'
/// answer is in the journal at once, long before the model's timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_model_never_holds_back_the_rules_answer() {
    let sim = failing_binance(Duration::from_secs(600)).await;
    let app = axum::Router::new().fallback(|| async {
        tokio::time::sleep(Duration::from_secs(120)).await;
        axum::http::StatusCode::OK
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let llm = format!("http://{}/v1", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let dir = tempfile::tempdir().expect("tempdir");
    let (cfg, journal) = journal_config(
        dir.path(),
        &sim,
        &format!(
            "[triage]\nbase_url = \"{llm}\"\nmodel = \"m\"\napi_key_env = \"EXW_FI_KEY\"\n\
             timeout = \"30s\"\nbatch_window = \"0s\"\n"
        ),
    );
    let started = Instant::now();
    let _ex = Headless::run(
        &cfg,
        &[("EXW_FI_KEY", "sk-test-fault-suite-key".to_string())],
    );
    // Guard well under the model's 30 s timeout: waiting for the model fails it.
    assert!(
        journal_shows(
            &journal,
            Duration::from_secs(15),
            "rules, shown while model m is asked"
        )
        .await,
        "no rules' answer while the model hangs:\n{}",
        std::fs::read_to_string(&journal).unwrap_or_default()
    );
    let text = std::fs::read_to_string(&journal).unwrap_or_default();
    assert!(
        !text.contains("model not used"),
        "the model's call ended already: it did not hang"
    );
    println!(
        "rules' triage in the journal {:.1} s after start, the model still asked",
        started.elapsed().as_secs_f64()
    );
}
