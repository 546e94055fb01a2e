//! The real binary: `check` exit codes and output, headless status lines, clean stop on signals.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed unwrap is a failed test

mod common;

use common::sim::{fault, scenario, start};
use exwatch::model::{EndpointKind, ExchangeKind};
use exwatch::sim::scenario::FaultKind;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_exwatch");

fn config_for(sim_addr: &str, dir: &std::path::Path) -> std::path::PathBuf {
    let mut text = String::new();
    for kind in ["binance", "bybit", "okx", "coinbase", "kraken"] {
        text.push_str(&format!(
            "[[exchanges]]\nname = \"{kind}\"\nkind = \"{kind}\"\nbase_url = \"http://{sim_addr}/{kind}\"\n\
             [[exchanges.endpoints]]\nname = \"time\"\nkind = \"time\"\n\
             [[exchanges.endpoints]]\nname = \"ticker\"\nkind = \"ticker\"\n\
             [[exchanges.endpoints]]\nname = \"book\"\nkind = \"book\"\ntimeout = \"1s\"\n\n"
        ));
    }
    text.push_str(&format!(
        "[log]\ndir = \"{}\"\n[headless]\ninterval = \"300ms\"\n[journal]\npath = \"{}\"\n",
        dir.join("logs").display(),
        dir.join("journal.jsonl").display()
    ));
    let path = dir.join("config.toml");
    std::fs::write(&path, text).expect("write config");
    path
}

fn check(cfg: &std::path::Path, json: bool) -> (i32, String) {
    let mut cmd = Command::new(BIN);
    cmd.arg("check").arg("-c").arg(cfg);
    if json {
        cmd.arg("--json");
    }
    let out = cmd.output().expect("run exwatch check");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[tokio::test]
async fn check_against_a_healthy_simulator_exits_0_with_normalized_values() {
    let sim = start(scenario(vec![])).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config_for(&sim.addr.to_string(), dir.path());
    let (code, table) = tokio::task::spawn_blocking({
        let cfg = cfg.clone();
        move || check(&cfg, false)
    })
    .await
    .expect("join");
    assert_eq!(code, 0, "{table}");
    assert!(
        table.contains("15 endpoint(s), 15 healthy, 0 unhealthy"),
        "{table}"
    );
    let (code, json) = tokio::task::spawn_blocking(move || check(&cfg, true))
        .await
        .expect("join");
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&json).expect("check --json is JSON");
    assert_eq!(v["healthy"], true);
    let eps = v["endpoints"].as_array().expect("endpoints");
    let okx_book = eps
        .iter()
        .find(|e| e["exchange"] == "okx" && e["endpoint"] == "book")
        .expect("okx book");
    assert_eq!(okx_book["normalized"]["symbol"], "BTC-USDT");
    assert!(
        okx_book["normalized"]["bids"][0]["price"]["value"]
            .as_f64()
            .is_some_and(|p| p > 0.0)
    );
    sim.stop().await;
}

#[tokio::test]
async fn check_against_a_faulted_simulator_exits_1_and_names_the_reason() {
    let long = Duration::from_secs(3600);
    let sim = start(scenario(vec![
        fault(
            FaultKind::Crossed,
            ExchangeKind::Kraken,
            Some(EndpointKind::Book),
            Duration::ZERO,
            long,
        ),
        fault(
            FaultKind::RateLimit,
            ExchangeKind::Bybit,
            Some(EndpointKind::Ticker),
            Duration::ZERO,
            long,
        ),
        fault(
            FaultKind::Hang,
            ExchangeKind::Binance,
            Some(EndpointKind::Book),
            Duration::ZERO,
            long,
        ),
    ]))
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config_for(&sim.addr.to_string(), dir.path());
    let (code, json) = tokio::task::spawn_blocking(move || check(&cfg, true))
        .await
        .expect("join");
    assert_eq!(code, 1, "{json}");
    let v: serde_json::Value = serde_json::from_str(&json).expect("JSON");
    let verdict = |ex: &str, ep: &str| {
        v["endpoints"]
            .as_array()
            .and_then(|a| {
                a.iter()
                    .find(|e| e["exchange"] == ex && e["endpoint"] == ep)
            })
            .map(|e| e["verdict"].as_str().unwrap_or("").to_string())
            .unwrap_or_default()
    };
    assert_eq!(verdict("kraken", "book"), "invalid:crossed_book");
    // A 10006 inside HTTP 200 is a rate limit, not a healthy answer.
    assert_eq!(verdict("bybit", "ticker"), "rate_limited");
    assert_eq!(verdict("binance", "book"), "timeout");
    assert_eq!(verdict("okx", "ticker"), "ok");
    sim.stop().await;
}

/// Issue #13 item 3: a hold is a state. Binance's time endpoint answers 429
/// with `Retry-After: 5`: its ticker and book, which share the exchange
/// tier, are not probed and say until when they are held and why; a Bybit
/// ban (Retry-After 30) on the ticker holds Bybit likewise.
#[tokio::test]
async fn check_reports_endpoints_held_by_the_exchange_as_held_until() {
    let long = Duration::from_secs(3600);
    let sim = start(scenario(vec![
        fault(
            FaultKind::RateLimit,
            ExchangeKind::Binance,
            Some(EndpointKind::Time),
            Duration::ZERO,
            long,
        ),
        fault(
            FaultKind::Ban,
            ExchangeKind::Bybit,
            Some(EndpointKind::Ticker),
            Duration::ZERO,
            long,
        ),
    ]))
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config_for(&sim.addr.to_string(), dir.path());
    let before = exwatch::clock::wall_ms();
    let (code, json) = tokio::task::spawn_blocking({
        let cfg = cfg.clone();
        move || check(&cfg, true)
    })
    .await
    .expect("join");
    let after = exwatch::clock::wall_ms();
    assert_eq!(code, 1, "{json}");
    let v: serde_json::Value = serde_json::from_str(&json).expect("JSON");
    let row = |ex: &str, ep: &str| {
        v["endpoints"]
            .as_array()
            .and_then(|a| {
                a.iter()
                    .find(|e| e["exchange"] == ex && e["endpoint"] == ep)
            })
            .cloned()
            .unwrap_or_else(|| panic!("no row {ex}/{ep}: {json}"))
    };
    let time = row("binance", "time");
    assert_eq!(time["verdict"], "rate_limited", "{time}");
    assert_eq!(time["held_why"], "time: rate_limited", "{time}");
    let until = time["held_until_ms"].as_i64().expect("held_until_ms");
    assert!(
        (before + 5_000..=after + 5_000).contains(&until),
        "{before} {until} {after}"
    );
    for ep in ["ticker", "book"] {
        let r = row("binance", ep);
        assert_eq!(r["verdict"], "held", "{r}");
        assert_eq!(r["healthy"], false, "{r}");
        assert!(r.get("outcome").is_none(), "not probed: {r}");
        assert_eq!(r["held_why"], "time: rate_limited", "{r}");
        assert_eq!(r["held_until_ms"].as_i64(), Some(until), "{r}");
    }
    let ban = row("bybit", "ticker");
    assert_eq!(ban["verdict"], "banned", "{ban}");
    assert_eq!(ban["held_why"], "ticker: banned", "{ban}");
    assert!(
        ban["held_until_ms"]
            .as_i64()
            .is_some_and(|u| (before + 30_000..=after + 30_000).contains(&u)),
        "{ban}"
    );
    // Bybit's book was probed with its ticker, answered, and is held now.
    let book = row("bybit", "book");
    assert_eq!(book["verdict"], "ok", "{book}");
    assert_eq!(book["held_why"], "ticker: banned", "{book}");
    let okx = row("okx", "ticker");
    assert!(okx.get("held_until_ms").is_none(), "{okx}");

    let (code, table) = tokio::task::spawn_blocking(move || check(&cfg, false))
        .await
        .expect("join");
    assert_eq!(code, 1, "{table}");
    let line = |ex: &str, ep: &str| {
        table
            .lines()
            .find(|l| l.starts_with(ex) && l.split_whitespace().nth(1) == Some(ep))
            .unwrap_or_else(|| panic!("no line {ex} {ep}: {table}"))
            .to_string()
    };
    let held_until = |l: &str| {
        let at = l.find("held until ").map(|i| i + "held until ".len())?;
        let hms = l.get(at..at + 8)?;
        (hms.len() == 8 && hms.as_bytes()[2] == b':' && hms.as_bytes()[5] == b':').then_some(())
    };
    let ticker = line("binance", "ticker");
    assert!(
        held_until(&ticker).is_some() && ticker.ends_with("(time: rate_limited), not probed"),
        "{ticker}"
    );
    let time = line("binance", "time");
    assert!(
        held_until(&time).is_some() && time.contains("(time: rate_limited)"),
        "{time}"
    );
    assert!(!time.contains("FAIL"), "a hold is not a failure: {time}");
    let book = line("bybit", "book");
    assert!(book.contains("OK, held until "), "{book}");
    assert!(
        table.contains("15 endpoint(s), 11 healthy, 0 unhealthy, 4 held"),
        "{table}"
    );
    // Neither run sent what the exchange held.
    assert_eq!(common::sim::count(&sim, "binance/ticker").await, 0);
    assert_eq!(common::sim::count(&sim, "binance/book").await, 0);
    assert!(common::sim::count(&sim, "binance/time").await >= 2);
    sim.stop().await;
}

#[test]
fn config_errors_exit_2_and_name_the_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, "[[exchanges]]\nname = \"b\"\nkind = \"binanse\"\n").expect("write");
    for args in [
        vec!["check", "-c"],
        vec!["run", "--headless", "-c"],
        vec!["config", "check"],
    ] {
        let out = Command::new(BIN)
            .args(&args)
            .arg(&path)
            .output()
            .expect("run");
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("bad.toml:3:"), "{args:?}: {err}");
        assert!(err.contains("exchanges[0].kind"), "{err}");
        assert!(err.contains("binance"), "says what is valid: {err}");
    }
}

#[test]
fn a_missing_config_points_at_the_example() {
    let out = Command::new(BIN)
        .arg("check")
        .env_remove("EXWATCH_CONFIG")
        .env_remove("XDG_CONFIG_HOME")
        .env("HOME", "/nonexistent")
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("config.example.toml"));
}

/// The config file is looked up under `$XDG_CONFIG_HOME` when it is set
/// (here a broken one, so the error names the file it found).
#[test]
fn the_config_is_found_under_xdg_config_home() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("exwatch").join("config.toml");
    std::fs::create_dir_all(file.parent().expect("parent")).expect("mkdir");
    std::fs::write(&file, "[[exchanges]]\nname = 3\n").expect("write");
    let out = Command::new(BIN)
        .args(["config", "check"])
        .arg(&file)
        .output()
        .expect("run");
    let direct = String::from_utf8_lossy(&out.stderr).to_string();
    let out = Command::new(BIN)
        .arg("check")
        .env_remove("EXWATCH_CONFIG")
        .env("XDG_CONFIG_HOME", dir.path())
        .env("HOME", "/nonexistent")
        .output()
        .expect("run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&file.display().to_string()),
        "the error names the file under XDG_CONFIG_HOME: {stderr} (config check said: {direct})"
    );
}

#[tokio::test]
async fn headless_prints_only_status_lines_and_stops_cleanly_on_sigint() {
    let sim = start(scenario(vec![fault(
        FaultKind::Html,
        ExchangeKind::Okx,
        None,
        Duration::ZERO,
        Duration::from_secs(3600),
    )]))
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config_for(&sim.addr.to_string(), dir.path());
    let lines = tokio::task::spawn_blocking(move || {
        let mut child = Command::new(BIN)
            .args(["run", "--headless", "--json", "-c"])
            .arg(&cfg)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = Vec::new();
        for line in BufReader::new(stdout).lines() {
            let line = line.expect("line");
            lines.push(line);
            if lines.len() >= 15 {
                break;
            }
        }
        let pid = child.id().to_string();
        Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .expect("kill");
        let status = child.wait().expect("wait");
        let mut err = String::new();
        if let Some(mut e) = child.stderr.take() {
            use std::io::Read;
            let _ = e.read_to_string(&mut err);
        }
        (lines, status.code(), err)
    })
    .await
    .expect("join");
    let (lines, code, stderr) = lines;
    assert_eq!(code, Some(0), "clean exit on SIGINT; stderr: {stderr}");
    assert!(stderr.is_empty(), "nothing on stderr: {stderr}");
    for l in &lines {
        let v: serde_json::Value =
            serde_json::from_str(l).unwrap_or_else(|e| panic!("not a status line: {l:?}: {e}"));
        assert!(
            v["exchange"].is_string() && v["endpoints"].is_array(),
            "{l}"
        );
    }
    let okx_unhealthy = lines
        .iter()
        .any(|l| l.contains("\"exchange\":\"okx\"") && l.contains("invalid:not_json"));
    assert!(okx_unhealthy, "the faulted exchange shows its fault");
    sim.stop().await;
}

/// Run `exwatch <args>` with its stdout a pipe whose reader is closed before
/// the command writes (as `| head -1` does once it has its line): the
/// command must end quietly, with 0 or 141 (128 + SIGPIPE) and no panic.
fn assert_quiet_on_a_closed_pipe(args: &[&str]) {
    let mut child = Command::new(BIN)
        .args(args)
        .env("XDG_STATE_HOME", std::env::temp_dir())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn exwatch");
    drop(child.stdout.take());
    let out = wait_within(child, Duration::from_secs(30));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("panicked") && !stderr.contains("Broken pipe"),
        "exwatch {args:?}: panic text on stderr:\n{stderr}"
    );
    assert!(
        matches!(out.status.code(), Some(0 | 141)),
        "exwatch {args:?}: exit {:?}, want 0 or 141; stderr:\n{stderr}",
        out.status
    );
}

/// The child's output once it exits; killed (and the test failed) after `within`.
fn wait_within(mut child: std::process::Child, within: Duration) -> std::process::Output {
    let deadline = std::time::Instant::now() + within;
    while child.try_wait().expect("wait").is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("exwatch did not end within {within:?} on a closed pipe");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().expect("output")
}

#[test]
fn config_check_help_and_report_end_quietly_on_a_closed_pipe() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config_for("127.0.0.1:9", dir.path());
    let cfg = cfg.to_str().expect("utf-8 path");
    assert_quiet_on_a_closed_pipe(&["config", "check", cfg]);
    assert_quiet_on_a_closed_pipe(&["--help"]);
    assert_quiet_on_a_closed_pipe(&["check", "--help"]);
    let journal = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/journal/v1-demo.jsonl"
    );
    for format in ["text", "markdown", "json"] {
        assert_quiet_on_a_closed_pipe(&["report", journal, "--format", format]);
    }
    assert_quiet_on_a_closed_pipe(&["replay", journal, "--headless", "--speed", "1000"]);
}

#[tokio::test]
async fn check_and_headless_run_end_quietly_on_a_closed_pipe() {
    let sim = start(scenario(vec![])).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config_for(&sim.addr.to_string(), dir.path());
    tokio::task::spawn_blocking(move || {
        let cfg = cfg.to_str().expect("utf-8 path");
        assert_quiet_on_a_closed_pipe(&["check", "-c", cfg]);
        assert_quiet_on_a_closed_pipe(&["check", "--json", "-c", cfg]);
        assert_quiet_on_a_closed_pipe(&["run", "--headless", "-c", cfg]);
        assert_quiet_on_a_closed_pipe(&["run", "--headless", "--json", "-c", cfg]);
    })
    .await
    .expect("join");
    sim.stop().await;
}
