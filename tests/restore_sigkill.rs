//! The real binary killed with SIGKILL while an alert is open: the next start
//! restores the alert from the journal (same episode, same first-seen time)
//! instead of raising a new one.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed unwrap is a failed test

mod common;

use common::sim::{fault, scenario, start};
use exwatch::model::{EndpointKind, ExchangeKind};
use exwatch::sim::scenario::FaultKind;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const FP: &str = "binance/ticker/error_rate";

fn spawn(cfg: &std::path::Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_exwatch"))
        .args(["run", "--headless", "--json", "-c"])
        .arg(cfg)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn exwatch")
}

/// Read status lines until the alert shows; its first-seen time.
fn wait_for_alert(child: &mut Child, within: Duration) -> Option<i64> {
    let out = child.stdout.take()?;
    let end = Instant::now() + within;
    for line in BufReader::new(out).lines() {
        let line = line.ok()?;
        let v: serde_json::Value = serde_json::from_str(&line).ok()?;
        if let Some(a) = v["alerts"]
            .as_array()
            .and_then(|a| a.iter().find(|a| a["fingerprint"] == FP))
        {
            return a["first_seen_ms"].as_i64();
        }
        if Instant::now() > end {
            return None;
        }
    }
    None
}

#[tokio::test]
async fn open_alerts_survive_sigkill() {
    let sim = start(scenario(vec![fault(
        FaultKind::ServerError,
        ExchangeKind::Binance,
        Some(EndpointKind::Ticker),
        Duration::ZERO,
        Duration::from_secs(600),
    )]))
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = dir.path().join("c.toml");
    std::fs::write(
        &cfg,
        format!(
            "[log]\ndir = \"{d}/logs\"\n[journal]\npath = \"{d}/journal.jsonl\"\n[headless]\ninterval = \"200ms\"\n\
             [[exchanges]]\nname = \"binance\"\nkind = \"binance\"\nbase_url = \"{base}\"\n\
             [[exchanges.endpoints]]\nname = \"ticker\"\nkind = \"ticker\"\ninterval = \"100ms\"\n",
            d = dir.path().display(),
            base = sim.base_url(ExchangeKind::Binance),
        ),
    )
    .expect("write config");
    let (first, second) = tokio::task::spawn_blocking(move || {
        let mut a = spawn(&cfg);
        let first = wait_for_alert(&mut a, Duration::from_secs(20));
        a.kill().expect("SIGKILL");
        a.wait().expect("reap");
        let mut b = spawn(&cfg);
        let second = wait_for_alert(&mut b, Duration::from_secs(20));
        let _ = b.kill();
        let _ = b.wait();
        (first, second)
    })
    .await
    .expect("join");
    sim.stop().await;
    let first = first.expect("the alert fired in the first run");
    assert_eq!(
        second,
        Some(first),
        "the restarted instance shows the same alert episode"
    );
}

/// A small xorshift generator: the kill moments and tear points vary from
/// run to run; the seed is in every failure message.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }
}

/// The journal's bytes up to and including its last newline, and what
/// follows (a line torn at the kill, usually nothing).
fn split_tail(bytes: &[u8]) -> (&[u8], &[u8]) {
    let end = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    bytes.split_at(end)
}

/// The real binary SIGKILLed at random moments, 12 times, restarted on the
/// same journal each time; half of the kills also leave a torn last line
/// (a prefix of a real line, as a write cut short at the kill leaves it).
/// Nothing written whole before a kill is lost or changed, every torn line
/// is set aside in a `.torn-*` file of its own (one line at most each) and
/// said in the journal, and every other line of the journal parses.
#[tokio::test]
async fn a_journal_survives_random_kills_and_torn_lines() {
    let sim = start(scenario(vec![fault(
        FaultKind::ServerError,
        ExchangeKind::Binance,
        Some(EndpointKind::Ticker),
        Duration::from_millis(500),
        Duration::from_secs(600),
    )]))
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let journal = dir.path().join("journal.jsonl");
    let cfg = dir.path().join("c.toml");
    std::fs::write(
        &cfg,
        format!(
            "[log]\ndir = \"{d}/logs\"\n[journal]\npath = \"{j}\"\n[headless]\ninterval = \"100ms\"\n\
             [[exchanges]]\nname = \"binance\"\nkind = \"binance\"\nbase_url = \"{base}\"\n\
             [[exchanges.endpoints]]\nname = \"ticker\"\nkind = \"ticker\"\ninterval = \"50ms\"\n\
             [[exchanges.endpoints]]\nname = \"book\"\nkind = \"book\"\ninterval = \"50ms\"\n",
            d = dir.path().display(),
            j = journal.display(),
            base = sim.base_url(ExchangeKind::Binance),
        ),
    )
    .expect("write config");
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_nanos() as u64
        | 1;
    let dir_path = dir.path().to_path_buf();
    let (torn_expected, kept, terminated) = tokio::task::spawn_blocking(move || {
        let mut rng = Rng(seed);
        let mut torn_expected: Vec<Vec<u8>> = Vec::new();
        let mut terminated = 0;
        // The journal as the last kill left it, up to its last newline.
        let mut kept: Vec<u8> = Vec::new();
        for kill in 0..12 {
            let size_before = std::fs::metadata(&journal).map_or(0, |m| m.len());
            let mut child = Command::new(env!("CARGO_BIN_EXE_exwatch"))
                .args(["run", "--headless", "-c"])
                .arg(&cfg)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("spawn exwatch");
            // Running and writing (past the repaired end) before the kill.
            let end = Instant::now() + Duration::from_secs(10);
            while std::fs::metadata(&journal).map_or(0, |m| m.len()) <= size_before + 200 {
                assert!(
                    Instant::now() < end,
                    "seed {seed}: run {kill} wrote nothing"
                );
                std::thread::sleep(Duration::from_millis(5));
            }
            std::thread::sleep(Duration::from_millis(rng.below(400)));
            child.kill().expect("SIGKILL");
            child.wait().expect("reap");
            let bytes = std::fs::read(&journal).expect("read journal");
            assert!(
                bytes.starts_with(&kept),
                "seed {seed}: run {kill} lost or changed what was written before it"
            );
            let (whole, natural) = split_tail(&bytes);
            let whole = if serde_json::from_slice::<exwatch::journal::Entry>(natural).is_ok() {
                // Cut just before its newline: a whole entry, kept (one is
                // added on the next start, said as a repair too).
                terminated += 1;
                &bytes[..]
            } else {
                whole
            };
            if !natural.is_empty() && whole.len() < bytes.len() {
                torn_expected.push(natural.to_vec());
            } else if kill % 2 == 0 {
                // The write the kill cut short: a prefix of a real line.
                let (before, last) = split_tail(&whole[..whole.len() - 1]);
                assert!(!before.is_empty() || !last.is_empty());
                let cut = 1 + rng.below(last.len() as u64 - 1) as usize;
                let torn = last[..cut].to_vec();
                let mut f = std::fs::OpenOptions::new()
                    .append(true)
                    .open(&journal)
                    .expect("open journal");
                std::io::Write::write_all(&mut f, &torn).expect("tear");
                torn_expected.push(torn);
            }
            kept = whole.to_vec();
        }
        // One last start repairs what the last kill left; stopped cleanly.
        let mut child = Command::new(env!("CARGO_BIN_EXE_exwatch"))
            .args(["run", "--headless", "-c"])
            .arg(&cfg)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn exwatch");
        let before = kept.len() as u64;
        let end = Instant::now() + Duration::from_secs(10);
        while std::fs::metadata(&journal).map_or(0, |m| m.len()) <= before + 200 {
            assert!(
                Instant::now() < end,
                "seed {seed}: the last run wrote nothing"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        child.wait().expect("reap");
        (torn_expected, kept, terminated)
    })
    .await
    .expect("join");
    sim.stop().await;

    let journal = dir_path.join("journal.jsonl");
    let bytes = std::fs::read(&journal).expect("read journal");
    assert!(
        bytes.starts_with(&kept),
        "seed {seed}: the last run lost lines"
    );
    assert_eq!(bytes.last(), Some(&b'\n'), "seed {seed}: stopped cleanly");
    let mut repairs = 0;
    let mut alert_lines = 0;
    for (n, line) in bytes.split(|&b| b == b'\n').enumerate() {
        if line.is_empty() {
            continue;
        }
        let e: exwatch::journal::Entry = serde_json::from_slice(line).unwrap_or_else(|err| {
            panic!(
                "seed {seed}: line {} does not parse ({err}): {}",
                n + 1,
                String::from_utf8_lossy(line)
            )
        });
        match e.ev {
            exwatch::model::Event::BackendHealth { detail, .. } if detail.contains("repaired") => {
                repairs += 1
            }
            exwatch::model::Event::AlertChanged { .. } => alert_lines += 1,
            _ => {}
        }
    }
    assert!(alert_lines > 0, "seed {seed}: the fault raised alerts");
    // Every torn line sits in a file of its own, byte for byte, and the
    // journal says so once for each.
    let mut aside: Vec<Vec<u8>> = std::fs::read_dir(&dir_path)
        .expect("ls")
        .filter_map(|e| e.ok())
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("journal.jsonl.torn-")
        })
        .map(|e| std::fs::read(e.path()).expect("read aside"))
        .collect();
    let mut expected = torn_expected.clone();
    aside.sort();
    expected.sort();
    assert_eq!(aside, expected, "seed {seed}: the torn lines set aside");
    assert!(
        aside.iter().all(|t| !t.contains(&b'\n')),
        "seed {seed}: one line at most lost per kill"
    );
    assert_eq!(
        repairs,
        torn_expected.len() + terminated,
        "seed {seed}: each repair said"
    );
    assert!(
        torn_expected.len() + terminated >= 6,
        "seed {seed}: {torn_expected:?}"
    );
    // And the journal replays.
    let out = Command::new(env!("CARGO_BIN_EXE_exwatch"))
        .arg("report")
        .arg(&journal)
        .output()
        .expect("report");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn exwatch(args: &[&std::ffi::OsStr]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_exwatch"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run exwatch")
}

/// `replay` and `report` of an empty file, a TOML file and random bytes
/// fail with exit 2 and say why, naming the file; a journal whose only
/// damage is a torn last line still reads, and says what it skipped.
#[test]
fn unreadable_journals_are_refused_and_a_torn_tail_is_not() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let random: Vec<u8> = (0..4096).map(|_| rng.below(256) as u8).collect();
    let line = r#"{"v":2,"ts_ms":1700000000000,"ev":{"event":"clock_offset","exchange":"okx","offset_ms":3}}"#;
    let cases: [(&str, Vec<u8>, &str); 3] = [
        ("empty.jsonl", Vec::new(), "holds no journal entry"),
        (
            "config.toml",
            std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/config.example.toml"))
                .expect("example"),
            "is not an exwatch journal",
        ),
        ("random.bin", random, "is not an exwatch journal"),
    ];
    for (name, bytes, says) in cases {
        let path = dir.path().join(name);
        std::fs::write(&path, &bytes).expect("write");
        for cmd in [&["replay", "--headless"][..], &["report"]] {
            let mut args: Vec<&std::ffi::OsStr> = cmd.iter().map(|a| a.as_ref()).collect();
            args.push(path.as_os_str());
            let out = exwatch(&args);
            let err = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{cmd:?} {name}: {err}");
            assert!(
                err.contains(says) && err.contains(name),
                "{cmd:?} {name}: {err}"
            );
            assert!(out.stdout.is_empty(), "{cmd:?} {name}");
        }
    }
    let torn = dir.path().join("torn.jsonl");
    std::fs::write(&torn, format!("{line}\n{line}\n{}", &line[..40])).expect("write");
    for cmd in [
        &["replay", "--headless", "--speed", "1000"][..],
        &["report"],
    ] {
        let mut args: Vec<&std::ffi::OsStr> = cmd.iter().map(|a| a.as_ref()).collect();
        args.push(torn.as_os_str());
        let out = exwatch(&args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{cmd:?}: {err}");
        assert!(err.contains("was cut short (40 bytes"), "{cmd:?}: {err}");
        if cmd == ["report"] {
            assert!(!out.stdout.is_empty(), "{cmd:?}: it reported");
        }
    }
}

/// `run` with `journal.path` naming a file that is not a journal refuses
/// at start (exit 2, the file named) and leaves the file as it was: not
/// appended to, not chmod-ed; `demo --journal` does not delete it.
#[test]
fn run_refuses_a_journal_path_that_is_not_a_journal() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let notes = dir.path().join("notes.txt");
    std::fs::write(&notes, "remember the milk\n").expect("write");
    std::fs::set_permissions(&notes, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let cfg = dir.path().join("c.toml");
    std::fs::write(
        &cfg,
        format!(
            "[log]\ndir = \"{d}/logs\"\n[journal]\npath = \"{j}\"\n\
             [[exchanges]]\nname = \"binance\"\nkind = \"binance\"\nbase_url = \"http://127.0.0.1:{port}\"\n\
             [[exchanges.endpoints]]\nname = \"ticker\"\nkind = \"ticker\"\n",
            d = dir.path().display(),
            j = notes.display(),
            port = common::free_port(),
        ),
    )
    .expect("write config");
    let out = exwatch(&[
        "run".as_ref(),
        "--headless".as_ref(),
        "-c".as_ref(),
        cfg.as_os_str(),
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains(&format!("{} is not an exwatch journal", notes.display())),
        "{err}"
    );
    assert_eq!(
        std::fs::read_to_string(&notes).expect("read"),
        "remember the milk\n"
    );
    let mode = std::fs::metadata(&notes)
        .expect("meta")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o644);
    // The demo replaces its journal each run, but never deletes a file that
    // is not one.
    let out = exwatch(&[
        "demo".as_ref(),
        "--headless".as_ref(),
        "--journal".as_ref(),
        notes.as_os_str(),
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("is not an exwatch journal"), "{err}");
    assert_eq!(
        std::fs::read_to_string(&notes).expect("still there"),
        "remember the milk\n"
    );
}

/// Issue #15 item 1 and its acceptance: SIGKILL at random moments during a
/// fault (8 kills), then a restart after the fault ended: no alert stays
/// open that the data no longer supports once its `clear_for` has passed
/// (before, a restored alert stayed firing until `resolve_after`, 30 min).
#[tokio::test]
async fn kills_during_a_fault_leave_no_alert_the_data_no_longer_supports() {
    const FAULT: Duration = Duration::from_secs(6);
    let sim = start(scenario(vec![fault(
        FaultKind::ServerError,
        ExchangeKind::Binance,
        Some(EndpointKind::Ticker),
        Duration::ZERO,
        FAULT,
    )]))
    .await;
    let t0 = Instant::now();
    let dir = tempfile::tempdir().expect("tempdir");
    let journal = dir.path().join("journal.jsonl");
    let cfg = dir.path().join("c.toml");
    std::fs::write(
        &cfg,
        format!(
            "[log]\ndir = \"{d}/logs\"\n[journal]\npath = \"{j}\"\n[headless]\ninterval = \"200ms\"\n\
             [alerts.detect.error_rate]\nclear_for = \"1s\"\n\
             [[exchanges]]\nname = \"binance\"\nkind = \"binance\"\nbase_url = \"{base}\"\n\
             [[exchanges.endpoints]]\nname = \"ticker\"\nkind = \"ticker\"\ninterval = \"100ms\"\n",
            d = dir.path().display(),
            j = journal.display(),
            base = sim.base_url(ExchangeKind::Binance),
        ),
    )
    .expect("write config");
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64 | 1)
        .unwrap_or(7);
    let journal2 = journal.clone();
    let open_at_end = tokio::task::spawn_blocking(move || {
        let mut rng = Rng(seed);
        let mut kills = 0;
        while t0.elapsed() < FAULT && kills < 8 {
            let mut c = spawn(&cfg);
            std::thread::sleep(Duration::from_millis(400 + rng.below(500)));
            c.kill().expect("SIGKILL");
            c.wait().expect("reap");
            kills += 1;
        }
        let fired = std::fs::read_to_string(&journal2)
            .unwrap_or_default()
            .lines()
            .any(|l| l.contains(FP) && l.contains("\"state\":\"firing\""));
        assert!(fired, "seed {seed}: the alert fired before the kills ended");
        while t0.elapsed() < FAULT + Duration::from_millis(500) {
            std::thread::sleep(Duration::from_millis(50));
        }
        // The fault is over: restart once more and read the status lines.
        let mut last = spawn(&cfg);
        let out = last.stdout.take().expect("stdout");
        let end = Instant::now() + Duration::from_secs(20);
        let mut open: Vec<String> = vec!["(no line yet)".into()];
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) else {
                continue;
            };
            open = v["alerts"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .map(|x| x["fingerprint"].as_str().unwrap_or("?").to_string())
                        .collect()
                })
                .unwrap_or_default();
            if open.is_empty() || Instant::now() > end {
                break;
            }
        }
        let _ = last.kill();
        let _ = last.wait();
        (open, kills, seed)
    })
    .await
    .expect("join");
    sim.stop().await;
    let (open, kills, seed) = open_at_end;
    assert!(kills >= 6, "seed {seed}: only {kills} kills");
    assert!(
        open.is_empty(),
        "seed {seed}: still open 20 s after restarting on good data: {open:?}"
    );
    let resolved = std::fs::read_to_string(&journal)
        .unwrap_or_default()
        .lines()
        .any(|l| l.contains(FP) && l.contains("\"state\":\"resolved\""));
    assert!(
        resolved,
        "seed {seed}: the restored alert was resolved, not dropped"
    );
}
