//! The real binary, issue #14 items 7 (its non-UI part) and 9: help lines,
//! errors said once, the report's words for an open alert, `check`'s table
//! uncut in a file, the offline config against `exwatch sim`, `bench
//! pipeline` told the target's kind, and replay on the recorded clock with
//! the recorded instance name.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed unwrap is a failed test

mod common;

use common::sim::{fault, scenario, start};
use exwatch::model::{EndpointKind, ExchangeKind};
use exwatch::sim::scenario::FaultKind;
use std::io::{BufRead, BufReader};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_exwatch");

fn fixture_journal() -> String {
    concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/journal/v1-demo.jsonl"
    )
    .to_string()
}

fn exwatch(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env("XDG_STATE_HOME", std::env::temp_dir())
        .stdin(Stdio::null())
        .output()
        .expect("run exwatch")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Every command's `--help`, from the binary: each option and argument
/// clap knows has its help line in the output.
#[test]
fn every_option_and_argument_has_a_help_line_in_the_binarys_help() {
    use clap::CommandFactory;
    fn walk(cmd: &clap::Command, path: Vec<String>, out: &mut Vec<(Vec<String>, clap::Command)>) {
        out.push((path.clone(), cmd.clone()));
        for sub in cmd.get_subcommands() {
            let mut p = path.clone();
            p.push(sub.get_name().to_string());
            walk(sub, p, out);
        }
    }
    let mut all = Vec::new();
    walk(&exwatch::cli::Cli::command(), Vec::new(), &mut all);
    let mut checked = 0;
    for (path, cmd) in all {
        let mut args: Vec<&str> = path.iter().map(String::as_str).collect();
        args.push("--help");
        let out = exwatch(&args);
        assert_eq!(out.status.code(), Some(0), "{args:?}");
        let help = text(&out.stdout);
        for a in cmd.get_arguments() {
            let id = a.get_id().as_str();
            if id == "help" || id == "version" {
                continue;
            }
            let said = a
                .get_help()
                .map(|h| h.to_string())
                .unwrap_or_else(|| panic!("exwatch {path:?}: {id} has no help line"));
            // The first words (clap may wrap the rest).
            let start: String = said
                .split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ");
            assert!(
                help.split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" ")
                    .contains(&start),
                "exwatch {path:?} --help does not show {id}'s help {start:?}:\n{help}"
            );
            checked += 1;
        }
    }
    assert!(checked >= 30, "only {checked} arguments seen");
}

/// No part of an error line says the same thing twice
/// (`no journal here: no journal here`).
fn assert_said_once(stderr: &str) {
    for line in stderr.lines() {
        let parts: Vec<&str> = line.split(": ").map(str::trim).collect();
        for (i, p) in parts.iter().enumerate() {
            assert!(
                p.len() < 4 || !parts[i + 1..].contains(p),
                "{p:?} said twice in {line:?}"
            );
        }
    }
}

#[test]
fn errors_of_missing_and_unreadable_files_are_said_once_with_exit_2() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("nothing-here.jsonl");
    let missing = missing.to_str().expect("utf-8");
    let a_dir = dir.path().to_str().expect("utf-8");
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["report", missing], "no journal at"),
        (vec!["replay", missing, "--headless"], "no journal at"),
        // A directory where a journal should be: it exists but cannot be read.
        (vec!["report", a_dir], "Is a directory"),
        (vec!["config", "check", missing], "cannot read config"),
        (vec!["check", "-c", missing], "cannot read config"),
        (vec!["sim", "--scenario", missing], "cannot read scenario"),
        (
            vec!["demo", "--headless", "--scenario", missing],
            "cannot read scenario",
        ),
    ];
    for (args, says) in cases {
        let out = exwatch(&args);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "exwatch {args:?}: {err}");
        assert!(err.contains(says), "exwatch {args:?}: {err}");
        assert!(!err.contains("panicked"), "exwatch {args:?}: {err}");
        assert_said_once(&err);
    }
}

#[test]
fn the_report_says_an_open_alert_is_still_open_and_for_how_long() {
    let out = exwatch(&["report", &fixture_journal()]);
    assert_eq!(out.status.code(), Some(0));
    let report = text(&out.stdout);
    assert!(!report.contains("resolved still open"), "{report}");
    assert!(!report.contains("lasted -"), "{report}");
    // okx/time's error_rate fired at 09:11:56.436 and the journal ends at
    // its last entry: open for the difference.
    let line = report
        .lines()
        .find(|l| l.contains("okx/time") && l.contains("error_rate") && l.contains("fired"))
        .expect("okx/time error_rate line");
    assert!(
        line.contains("still open after ") && line.contains("(at the journal's end)"),
        "{line}"
    );
    let resolved = report
        .lines()
        .find(|l| l.contains(" fired ") && l.contains(" resolved 20"))
        .expect("a resolved alert");
    assert!(resolved.contains("  lasted "), "{resolved}");
    let md = text(&exwatch(&["report", &fixture_journal(), "--format", "markdown"]).stdout);
    assert!(md.contains(" so far |"), "{md}");
}

fn config_for(sim_addr: &str, dir: &std::path::Path) -> std::path::PathBuf {
    let mut text = String::new();
    for kind in ["binance", "okx"] {
        text.push_str(&format!(
            "[[exchanges]]\nname = \"{kind}\"\nkind = \"{kind}\"\nbase_url = \"http://{sim_addr}/{kind}\"\n\
             [[exchanges.endpoints]]\nname = \"ticker\"\nkind = \"ticker\"\n\
             [[exchanges.endpoints]]\nname = \"book\"\nkind = \"book\"\n\n"
        ));
    }
    // A port nothing listens on: a connect error, with its long cause.
    text.push_str(
        "[[exchanges]]\nname = \"closed-port-exchange\"\nkind = \"kraken\"\nbase_url = \"http://127.0.0.1:9/kraken\"\n\
         [[exchanges.endpoints]]\nname = \"ticker\"\nkind = \"ticker\"\n\n",
    );
    text.push_str(&format!(
        "[log]\ndir = \"{}\"\n[journal]\nenabled = false\n",
        dir.join("logs").display()
    ));
    let path = dir.join("config.toml");
    std::fs::write(&path, text).expect("write config");
    path
}

/// Written to a pipe, `check`'s table carries every cause whole: each
/// row's JSON `reason` is in its line.
#[tokio::test]
async fn checks_table_in_a_pipe_keeps_every_cause_whole() {
    let long = Duration::from_secs(3600);
    let sim = start(scenario(vec![
        fault(
            FaultKind::Html,
            ExchangeKind::Okx,
            Some(EndpointKind::Book),
            Duration::ZERO,
            long,
        ),
        // Binance's 503 says `-1001: Internal error; unable to process your
        // request. Please try again.`: longer than a terminal's cut.
        fault(
            FaultKind::ServerError,
            ExchangeKind::Binance,
            Some(EndpointKind::Book),
            Duration::ZERO,
            long,
        ),
    ]))
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config_for(&sim.addr.to_string(), dir.path());
    let (table, json) = tokio::task::spawn_blocking(move || {
        let cfg = cfg.to_str().expect("utf-8");
        let table = exwatch(&["check", "-c", cfg]);
        let json = exwatch(&["check", "--json", "-c", cfg]);
        assert_eq!(table.status.code(), Some(1));
        (text(&table.stdout), text(&json.stdout))
    })
    .await
    .expect("join");
    let v: serde_json::Value = serde_json::from_str(&json).expect("JSON");
    let mut longest = 0;
    for row in v["endpoints"].as_array().expect("rows") {
        let reason = row["reason"].as_str().unwrap_or("");
        if reason.is_empty() {
            continue;
        }
        longest = longest.max(reason.chars().count());
        let (ex, ep) = (
            row["exchange"].as_str().unwrap(),
            row["endpoint"].as_str().unwrap(),
        );
        let line = table
            .lines()
            .find(|l| l.starts_with(ex) && l.split_whitespace().nth(1) == Some(ep))
            .unwrap_or_else(|| panic!("no line for {ex}/{ep}:\n{table}"));
        assert!(line.contains(reason), "cut: {line:?}, reason {reason:?}");
        assert!(!line.contains('…'), "{line}");
    }
    assert!(
        longest > 70,
        "a cause longer than a terminal's cut is checked: {longest}"
    );
    // The table's columns are what the README's command table says.
    let header: Vec<&str> = table
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    assert_eq!(
        header,
        [
            "EXCHANGE", "ENDPOINT", "HTTP", "LATENCY", "SUMMARY", "VERDICT"
        ],
        "{table}"
    );
    sim.stop().await;
}

/// A loopback port free a moment ago whose next port was free too: the
/// simulator serves its streams on the REST port + 1.
fn free_port_pair() -> u16 {
    for _ in 0..100 {
        let a = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = a.local_addr().expect("addr").port();
        if port < u16::MAX && std::net::TcpListener::bind(("127.0.0.1", port + 1)).is_ok() {
            return port;
        }
    }
    panic!("no two free loopback ports in a row")
}

/// `exwatch sim` as its own process, ready; killed when dropped.
struct SimProcess(std::process::Child);

impl SimProcess {
    fn start(addr: &str) -> SimProcess {
        let mut child = Command::new(BIN)
            .args(["sim", "--listen", addr])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn exwatch sim");
        let mut err = BufReader::new(child.stderr.take().expect("stderr"));
        let mut line = String::new();
        err.read_line(&mut line).expect("sim's first line");
        assert!(line.contains("simulator listening on"), "{line}");
        SimProcess(child)
    }
}

impl Drop for SimProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn the_printed_offline_config_passes_config_check_and_check_against_exwatch_sim() {
    let addr = format!("127.0.0.1:{}", free_port_pair());
    let _sim = SimProcess::start(&addr);
    let printed = exwatch(&["demo", "--print-config", "--sim", &addr]);
    assert_eq!(printed.status.code(), Some(0), "{}", text(&printed.stderr));
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("offline.toml");
    std::fs::write(&file, &printed.stdout).expect("write");
    let file = file.to_str().expect("utf-8");
    let checked = exwatch(&["config", "check", file]);
    assert_eq!(checked.status.code(), Some(0), "{}", text(&checked.stderr));
    assert!(
        text(&checked.stdout).contains(
            "ok (5 exchange(s), 15 endpoint(s), 5 stream connection(s), 10 subscription(s))"
        ),
        "{}",
        text(&checked.stdout)
    );
    let check = exwatch(&["check", "-c", file]);
    let table = text(&check.stdout);
    assert_eq!(
        check.status.code(),
        Some(0),
        "{table}{}",
        text(&check.stderr)
    );
    assert!(
        table.contains("15 endpoint(s), 15 healthy, 0 unhealthy"),
        "{table}"
    );
    // The streams, on the simulator's next port, each got its first data.
    let streams_ok = table
        .lines()
        .filter(|l| l.contains(" ws:") && l.contains(" OK ") && l.contains("first data after"))
        .count();
    assert_eq!(streams_ok, 10, "{table}");
    // --sim only with --print-config.
    assert_eq!(exwatch(&["demo", "--sim", &addr]).status.code(), Some(2));
}

#[tokio::test]
async fn bench_pipeline_says_when_the_target_does_not_answer_like_its_kind() {
    let sim = start(scenario(vec![])).await;
    let okx_book = format!(
        "http://{}/okx/api/v5/market/books?instId=BTC-USDT&sz=20",
        sim.addr
    );
    let run = |args: Vec<String>| {
        tokio::task::spawn_blocking(move || {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            exwatch(&args)
        })
    };
    let base = |exchange: &str| -> Vec<String> {
        [
            "bench",
            "pipeline",
            "--target",
            &okx_book,
            "--exchange",
            exchange,
            "--endpoint",
            "book",
            "--duration",
            "1",
            "--concurrency",
            "2",
        ]
        .map(String::from)
        .to_vec()
    };
    // Parsed as Binance's book, OKX's answers are rejected: said plainly, exit 1.
    let wrong = run(base("binance")).await.expect("join");
    let err = text(&wrong.stderr);
    assert_eq!(wrong.status.code(), Some(1), "{err}");
    assert!(
        err.contains("does not answer like a binance book endpoint"),
        "{err}"
    );
    let v: serde_json::Value = serde_json::from_slice(&wrong.stdout).expect("figures");
    assert!(v["calls"].as_u64().unwrap() > 0, "{v}");
    assert_eq!(v["ok"], 0, "{v}");
    assert!(v["warning"].is_string(), "{v}");
    assert!(
        v["rejected"].as_object().is_some_and(|r| !r.is_empty()),
        "{v}"
    );
    // Told it is OKX's book, the same target is measured.
    let right = run(base("okx")).await.expect("join");
    assert_eq!(right.status.code(), Some(0), "{}", text(&right.stderr));
    let v: serde_json::Value = serde_json::from_slice(&right.stdout).expect("figures");
    assert_eq!(v["exchange"], "okx");
    assert!(
        v["ok"].as_u64().unwrap() > 0 && v.get("warning").is_none(),
        "{v}"
    );
    // A kind that is not one is refused by name.
    let bad = run(base("binanse")).await.expect("join");
    assert_eq!(bad.status.code(), Some(2));
    assert!(text(&bad.stderr).contains("binance, bybit, okx, coinbase, kraken"));
    sim.stop().await;
}

/// The journal's first and last times.
fn span_ms(journal: &str) -> (i64, i64) {
    let (entries, _) = exwatch::journal::read_file(std::path::Path::new(journal)).expect("read");
    (entries[0].ts_ms, entries[entries.len() - 1].ts_ms)
}

/// `replay --headless --json` of `journal`: every line's time is in the
/// recording, its data ages are small against that clock, and it names
/// `instance`. Returns how many data ages were checked.
fn assert_replayed_on_the_recorded_clock(journal: &str, instance: &str) -> usize {
    let (first, last) = span_ms(journal);
    let out = exwatch(&["replay", journal, "--headless", "--json", "--speed", "1000"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let lines = text(&out.stdout);
    assert!(!lines.is_empty());
    let mut ages = 0;
    for l in lines.lines() {
        let v: serde_json::Value = serde_json::from_str(l).expect("JSON line");
        let ts = v["ts_ms"].as_i64().expect("ts_ms");
        assert!(
            (first..=last).contains(&ts),
            "ts_ms {ts} outside the recording {first}..{last}"
        );
        assert_eq!(v["instance"], instance, "{l}");
        for ep in v["endpoints"].as_array().expect("endpoints") {
            if let Some(age) = ep["data_age_ms"].as_i64() {
                ages += 1;
                assert!(age < 60_000, "age {age} ms against the recorded clock: {l}");
            }
        }
    }
    let err = text(&out.stderr);
    assert!(
        err.contains(&format!("recorded by instance {instance:?}")),
        "{err}"
    );
    ages
}

/// The v1 fixture (no samples, so no ages): recorded times, and the file
/// name for a journal from before instance names were recorded.
#[test]
fn headless_replay_of_an_old_journal_prints_its_clock_and_its_file_name() {
    let journal = fixture_journal();
    let (first, last) = span_ms(&journal);
    assert_replayed_on_the_recorded_clock(&journal, "v1-demo.jsonl");
    let out = exwatch(&["replay", &journal, "--headless", "--speed", "1000"]);
    let lines = text(&out.stdout);
    assert!(!lines.is_empty());
    for l in lines.lines() {
        let ts = l.split_whitespace().next().expect("timestamp");
        let t = time::OffsetDateTime::parse(ts, &time::format_description::well_known::Rfc3339)
            .unwrap_or_else(|e| panic!("{ts}: {e}"));
        let ms = (t.unix_timestamp_nanos() / 1_000_000) as i64;
        assert!((first..=last).contains(&ms), "{l}");
    }
}

/// The journal at `from` as if recorded a day earlier: every unix-ms time
/// in it (entry times, sample times, exchange timestamps) moved back 24 h.
fn a_day_older(from: &std::path::Path, to: &std::path::Path) {
    fn shift(v: &mut serde_json::Value) {
        const DAY: i64 = 86_400_000;
        match v {
            serde_json::Value::Number(n) => {
                let ms = n
                    .as_i64()
                    .filter(|ms| (1_600_000_000_000..2_000_000_000_000).contains(ms));
                if let Some(ms) = ms {
                    *v = (ms - DAY).into();
                }
            }
            serde_json::Value::Array(a) => a.iter_mut().for_each(shift),
            serde_json::Value::Object(o) => o.values_mut().for_each(shift),
            _ => {}
        }
    }
    let mut out = String::new();
    for line in std::fs::read_to_string(from).expect("journal").lines() {
        let mut v: serde_json::Value = serde_json::from_str(line).expect("journal line");
        shift(&mut v);
        out.push_str(&v.to_string());
        out.push('\n');
    }
    std::fs::write(to, out).expect("write");
}

/// `demo` says where its journal goes and names its instance on the
/// journal's first line; a replay of that journal as recorded a day ago
/// shows the name, the recorded time and the ages the data had then, in
/// JSON and in text (`age=` only past two intervals, so a small one).
#[test]
fn a_demo_journal_records_its_instance_and_replay_shows_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let journal = dir.path().join("demo.jsonl");
    let mut child = Command::new(BIN)
        .args(["demo", "--headless", "--journal"])
        .arg(&journal)
        .env("XDG_STATE_HOME", dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn demo");
    let mut err = BufReader::new(child.stderr.take().expect("stderr"));
    let mut said = String::new();
    err.read_line(&mut said).expect("demo's first line");
    assert!(
        said.contains(&format!("journal at {}", journal.display())),
        "{said}"
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::fs::metadata(&journal).map_or(0, |m| m.len()) < 16_384 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
    let pid = child.id().to_string();
    Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .expect("kill");
    assert_eq!(child.wait().expect("wait").code(), Some(0));
    let first = std::fs::read_to_string(&journal).expect("journal");
    let first = first.lines().next().expect("a line");
    assert!(first.contains("\"instance\":\"demo\""), "{first}");
    let old = dir.path().join("yesterday.jsonl");
    a_day_older(&journal, &old);
    let old = old.to_str().expect("utf-8");
    let ages = assert_replayed_on_the_recorded_clock(old, "demo");
    assert!(ages > 0, "the demo's samples give data ages");
    let out = exwatch(&["replay", old, "--headless", "--speed", "1000"]);
    let lines = text(&out.stdout);
    assert!(!lines.is_empty());
    for age in lines
        .split_whitespace()
        .filter_map(|w| w.strip_prefix("age="))
    {
        let s: f64 = age.trim_end_matches('s').parse().expect("age");
        assert!(s < 60.0, "age={age} against the recorded clock:\n{lines}");
    }
}

/// Misuse ends before anything starts, with the README's exit codes:
/// `--json` without `--headless` (2), a file that is no journal (2), the
/// dashboard without a terminal (3), and a demo refused so leaves the last
/// demo's journal alone.
#[test]
fn misuse_is_refused_plainly_before_anything_starts() {
    let dir = tempfile::tempdir().expect("tempdir");
    for args in [vec!["demo", "--json"], vec!["run", "--json"]] {
        let out = exwatch(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(text(&out.stderr).contains("--headless"), "{args:?}");
    }
    let not_a_journal = dir.path().join("config.toml");
    std::fs::write(&not_a_journal, "[instance]\nname = \"x\"\n").expect("write");
    let j = not_a_journal.to_str().expect("utf-8");
    for args in [vec!["report", j], vec!["replay", j, "--headless"]] {
        let out = exwatch(&args);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(
            err.contains("is not an exwatch journal") && err.contains("config.toml"),
            "{args:?}: {err}"
        );
    }
    let journal = dir.path().join("last-demo.jsonl");
    std::fs::write(&journal, "kept\n").expect("write");
    let j = journal.to_str().expect("utf-8");
    for args in [
        vec!["demo", "--journal", j],
        vec!["replay", &fixture_journal()],
    ] {
        let out = exwatch(&args);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(3), "{args:?}: {err}");
        assert!(err.contains("needs a terminal"), "{err}");
        assert!(!err.contains("journal at"), "nothing started: {err}");
    }
    assert_eq!(std::fs::read_to_string(&journal).expect("read"), "kept\n");
}

/// The new printing paths end quietly on a closed stdout too (`| head -1`):
/// exit 0 or 141, no panic text.
#[test]
fn print_config_and_replay_lines_end_quietly_on_a_closed_pipe() {
    let journal = fixture_journal();
    for args in [
        vec!["demo", "--print-config"],
        vec![
            "replay",
            &journal,
            "--headless",
            "--json",
            "--speed",
            "1000",
        ],
    ] {
        let mut child = Command::new(BIN)
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn");
        drop(child.stdout.take());
        let deadline = Instant::now() + Duration::from_secs(30);
        while child.try_wait().expect("wait").is_none() {
            assert!(Instant::now() < deadline, "exwatch {args:?} did not end");
            std::thread::sleep(Duration::from_millis(50));
        }
        let out = child.wait_with_output().expect("output");
        let err = text(&out.stderr);
        assert!(
            !err.contains("panicked") && !err.contains("Broken pipe"),
            "{args:?}: {err}"
        );
        assert!(
            matches!(out.status.code(), Some(0 | 141)),
            "{args:?}: {:?} {err}",
            out.status
        );
    }
}
