//! The breaker through the real binary (`exwatch run --headless`) against the
//! simulator, with the state in a real `redis-server`: two processes share
//! one breaker, half-open lets exactly one probe through, recovery closes it,
//! and a process killed with SIGKILL while the breaker is open is replaced by
//! one that keeps it open until its time.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed unwrap is a failed test

mod common;

use common::redis::RedisServer;
use common::sim::{count, fault, scenario, start};
use exwatch::model::{EndpointKind, ExchangeKind};
use exwatch::sim::scenario::FaultKind;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_exwatch");
const KEY: &str = "{exw:binance}:breaker:ticker";
const URL_ENV: &str = "EXW_BREAKER_TEST_REDIS_URL";
/// Long enough for any call that was already granted to reach the simulator.
const SETTLE: Duration = Duration::from_millis(200);

/// A child `exwatch`, killed (SIGKILL) when dropped so a failing test leaves nothing behind.
struct Exwatch(Child);

impl Exwatch {
    fn run(cfg: &Path, redis: &RedisServer, stdout: Stdio) -> Exwatch {
        let child = Command::new(BIN)
            .args(["run", "--headless", "-c"])
            .arg(cfg)
            .env(URL_ENV, redis.url())
            .stdout(stdout)
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn exwatch");
        Exwatch(child)
    }

    /// SIGKILL: no shutdown path runs, as in a crash or an OOM kill.
    fn sigkill(mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Exwatch {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn config(dir: &Path, sim: &exwatch::sim::SimHandle, breaker: &str) -> PathBuf {
    let text = format!(
        "[log]\ndir = \"{logs}\"\n[journal]\nenabled = false\n[headless]\ninterval = \"200ms\"\n\
         [redis]\nurl_env = \"{URL_ENV}\"\ntimeout = \"500ms\"\n\
         [breaker]\nstore = \"redis\"\n{breaker}\n\
         [[exchanges]]\nname = \"binance\"\nkind = \"binance\"\nbase_url = \"{base}\"\n\
         [[exchanges.endpoints]]\nname = \"ticker\"\nkind = \"ticker\"\ninterval = \"50ms\"\ntimeout = \"1s\"\n",
        logs = dir.join("logs").display(),
        base = sim.base_url(ExchangeKind::Binance),
    );
    let path = dir.join("config.toml");
    std::fs::write(&path, text).expect("write config");
    path
}

fn field(r: &RedisServer, name: &str) -> String {
    r.cli(&["HGET", KEY, name])
        .unwrap_or_default()
        .trim()
        .to_string()
}

fn redis_now_ms(r: &RedisServer) -> i64 {
    let out = r.cli(&["TIME"]).expect("redis TIME");
    let mut it = out
        .split_whitespace()
        .map(|v| v.parse::<i64>().expect("TIME number"));
    let (secs, micros) = (it.next().expect("secs"), it.next().expect("micros"));
    secs * 1000 + micros / 1000
}

async fn wait_for(what: &str, deadline: Duration, mut f: impl FnMut() -> bool) {
    let end = Instant::now() + deadline;
    while !f() {
        assert!(Instant::now() < end, "gave up waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

async fn calls(sim: &exwatch::sim::SimHandle) -> u64 {
    count(sim, "binance/ticker").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_share_one_breaker_one_probe_at_a_time_and_recovery_closes_it() {
    // 503s for the first 4 s, then healthy.
    let sim = start(scenario(vec![fault(
        FaultKind::ServerError,
        ExchangeKind::Binance,
        Some(EndpointKind::Ticker),
        Duration::ZERO,
        Duration::from_secs(4),
    )]))
    .await;
    let r = RedisServer::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config(
        dir.path(),
        &sim,
        "consecutive_failures = 3\nopen_for = \"1s\"\nbackoff = 2.0\nmax_open_for = \"2s\"\n\
         half_open_probes = 1\nclose_after = 2\nprobe_lease = \"5s\"",
    );
    let _a = Exwatch::run(&cfg, &r, Stdio::null());
    let _b = Exwatch::run(&cfg, &r, Stdio::null());

    // Follow the shared breaker through its trips: between two trips exactly
    // one call (the failed half-open probe) reaches the exchange, although
    // both processes poll every 50 ms.
    let mut last: Option<(u32, u64)> = None;
    let mut failed_probes = 0;
    let end = Instant::now() + Duration::from_secs(30);
    loop {
        assert!(
            Instant::now() < end,
            "the breaker never closed again; last seen {last:?}"
        );
        let state = field(&r, "state");
        let trips: u32 = field(&r, "trips").parse().unwrap_or(0);
        if state == "closed" && last.is_some() {
            break;
        }
        if state == "open" && last.is_none_or(|(t, _)| trips > t) {
            tokio::time::sleep(SETTLE).await;
            let n = calls(&sim).await;
            if let Some((t, before)) = last {
                assert_eq!(trips, t + 1, "each half-open period ends in one trip");
                assert_eq!(n - before, 1, "calls between trip {t} and trip {trips}");
                failed_probes += 1;
            }
            last = Some((trips, n));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        failed_probes >= 1,
        "the fault outlasted at least one half-open probe"
    );
    let reason = field(&r, "reason");
    assert_eq!(reason, "2 of 2 half-open probes succeeded");

    // Closed: both processes poll freely again.
    let at_close = calls(&sim).await;
    let resumed = Instant::now() + Duration::from_secs(10);
    while calls(&sim).await < at_close + 5 {
        assert!(
            Instant::now() < resumed,
            "polling did not resume after the breaker closed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_process_killed_while_open_is_replaced_by_one_that_waits_out_the_breaker() {
    // 503s for the whole test.
    let sim = start(scenario(vec![fault(
        FaultKind::ServerError,
        ExchangeKind::Binance,
        Some(EndpointKind::Ticker),
        Duration::ZERO,
        Duration::from_secs(3600),
    )]))
    .await;
    let r = RedisServer::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config(
        dir.path(),
        &sim,
        "consecutive_failures = 2\nopen_for = \"5s\"\nhalf_open_probes = 1",
    );
    let a = Exwatch::run(&cfg, &r, Stdio::null());
    wait_for(
        "the first process to open the breaker",
        Duration::from_secs(15),
        || field(&r, "state") == "open",
    )
    .await;
    tokio::time::sleep(SETTLE).await;
    let at_kill = calls(&sim).await;
    let open_until: i64 = field(&r, "open_until").parse().expect("open_until");
    a.sigkill();

    // The replacement starts, asks the shared breaker, and is told "open".
    let mut b = Exwatch::run(&cfg, &r, Stdio::piped());
    let stdout = b.0.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    let mut open_lines = 0;
    while open_lines < 3 {
        let line = rx
            .recv_timeout(Duration::from_secs(10))
            .expect("the replacement prints status lines");
        // No sample at all: it has not called the endpoint once.
        assert!(
            line.contains("| ticker pending"),
            "the replacement called the open endpoint: {line}"
        );
        if line.contains("breaker=open") {
            open_lines += 1;
        }
    }
    let while_open = calls(&sim).await;
    assert!(
        redis_now_ms(&r) < open_until,
        "precondition: the check ran within the open period (machine too slow?)"
    );
    assert_eq!(
        while_open, at_kill,
        "calls reached the exchange while the breaker was open"
    );

    // Once its time is over, exactly one half-open probe goes; it fails and
    // the breaker reopens for twice as long.
    wait_for(
        "the replacement's half-open probe",
        Duration::from_secs(20),
        || field(&r, "trips") == "2",
    )
    .await;
    tokio::time::sleep(SETTLE).await;
    assert_eq!(
        calls(&sim).await,
        at_kill + 1,
        "one probe after the open period"
    );
    let reason = field(&r, "reason");
    assert!(
        reason.starts_with("half-open probe failed (server_error); open 10s (trip 2)"),
        "{reason}"
    );
    drop(b);
    sim.stop().await;
}

/// Issue #15 item 5: with Redis down, every headless JSON line says which
/// backend is degraded, and a `backend` alert is raised (and journaled);
/// both go away when Redis is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_down_is_in_every_headless_line_and_an_alert() {
    let sim = start(scenario(vec![])).await;
    let mut r = RedisServer::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let journal = dir.path().join("j.jsonl");
    let text = format!(
        "[log]\ndir = \"{logs}\"\n[journal]\npath = \"{journal}\"\n[headless]\ninterval = \"200ms\"\n\
         [redis]\nurl_env = \"{URL_ENV}\"\ntimeout = \"300ms\"\n\
         [breaker]\nstore = \"redis\"\n\
         [alerts.detect.backend]\nfire_for = \"1s\"\n\
         [[exchanges]]\nname = \"binance\"\nkind = \"binance\"\nbase_url = \"{base}\"\n\
         [[exchanges.endpoints]]\nname = \"ticker\"\nkind = \"ticker\"\ninterval = \"100ms\"\ntimeout = \"1s\"\n",
        logs = dir.path().join("logs").display(),
        journal = journal.display(),
        base = sim.base_url(ExchangeKind::Binance),
    );
    let cfg = dir.path().join("config.toml");
    std::fs::write(&cfg, text).expect("write config");
    let mut child = Command::new(BIN)
        .args(["run", "--headless", "--json", "-c"])
        .arg(&cfg)
        .env(URL_ENV, r.url())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn exwatch");
    let (tx, rx) = std::sync::mpsc::channel::<serde_json::Value>();
    let out = child.stdout.take().expect("stdout");
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if let Ok(v) = serde_json::from_str(&line) {
                if tx.send(v).is_err() {
                    return;
                }
            }
        }
    });
    let degraded_of = |v: &serde_json::Value| -> Vec<String> {
        v["degraded"]
            .as_array()
            .expect("every line has `degraded`")
            .iter()
            .map(|d| d["component"].as_str().unwrap_or_default().to_string())
            .collect()
    };
    let next_line = |what: &str, f: &dyn Fn(&serde_json::Value) -> bool| {
        let end = Instant::now() + Duration::from_secs(20);
        loop {
            let left = end.saturating_duration_since(Instant::now());
            let v = rx
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("no line with {what}"));
            if f(&v) {
                return v;
            }
        }
    };
    next_line("a healthy line", &|v| {
        degraded_of(v).is_empty() && v["endpoints"][0]["calls"].as_u64() > Some(0)
    });
    r.kill();
    let v = next_line("redis_breaker degraded", &|v| {
        degraded_of(v).contains(&"redis_breaker".to_string())
    });
    assert!(
        v["degraded"][0]["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("Redis unreachable"),
        "{v}"
    );
    // The alert, once it held for fire_for (1 s), is journaled.
    let fired = |state: &str| {
        std::fs::read_to_string(&journal)
            .unwrap_or_default()
            .lines()
            .any(|l| {
                l.contains("\"exwatch/redis_breaker/backend\"")
                    && l.contains(&format!("\"state\":\"{state}\""))
            })
    };
    wait_for("the backend alert fires", Duration::from_secs(15), || {
        fired("firing")
    })
    .await;
    r.restart();
    next_line("no backend degraded", &|v| degraded_of(v).is_empty());
    wait_for(
        "the backend alert resolves",
        Duration::from_secs(15),
        || fired("resolved"),
    )
    .await;
    let _ = child.kill();
    let _ = child.wait();
}

/// `check --json` says how the Redis the config uses answers (#15 item 5).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_json_reports_the_redis_backend() {
    let sim = start(scenario(vec![])).await;
    let mut r = RedisServer::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config(dir.path(), &sim, "");
    let check = |r: &RedisServer| -> serde_json::Value {
        let out = Command::new(BIN)
            .args(["check", "--json", "-c"])
            .arg(&cfg)
            .env(URL_ENV, r.url())
            .output()
            .expect("run check");
        serde_json::from_slice(&out.stdout).expect("check --json is JSON")
    };
    let v = check(&r);
    assert_eq!(v["backends"][0]["component"], "redis_breaker", "{v}");
    assert_eq!(v["backends"][0]["healthy"], true, "{v}");
    assert!(v["backends"][0]["round_trip_ms"].as_f64().is_some(), "{v}");
    r.kill();
    let v = check(&r);
    assert_eq!(v["backends"][0]["healthy"], false, "{v}");
    assert!(v["backends"][0]["round_trip_ms"].is_null(), "{v}");
    // The exchanges still answer: the verdict is theirs.
    assert_eq!(v["healthy"], true, "{v}");
}
