//! `exwatch replay` in a real terminal (tmux on a private socket): the
//! dashboard's header names the instance the journal recorded, or the
//! journal's file name for a journal from before names were recorded
//! (issue #14 item 7).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed unwrap is a failed test

use std::process::Command;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_exwatch");

/// A tmux server of our own running `exwatch replay <journal>` at 120x40;
/// killed on drop.
struct Replay {
    socket: String,
    _dir: tempfile::TempDir,
}

impl Replay {
    fn start(journal: &std::path::Path) -> Replay {
        let found = Command::new("tmux").arg("-V").output();
        assert!(
            found.as_ref().is_ok_and(|o| o.status.success()),
            "tmux is needed for this test (apt-get install tmux; .ci/run installs it): {found:?}"
        );
        let dir = tempfile::tempdir().expect("temp dir");
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let socket = format!("exw-replay-{}-{nanos}", std::process::id());
        let script = format!("{BIN} replay {} --speed 1000; sleep 60", journal.display());
        let status = Command::new("tmux")
            .args(["-L", &socket, "-f", "/dev/null", "new-session", "-d"])
            .args(["-x", "120", "-y", "40", "-s", "e2e"])
            .env("XDG_STATE_HOME", dir.path())
            .env("TERM", "xterm-256color")
            .env("LANG", "C.UTF-8")
            .env_remove("TMUX")
            .arg(script)
            .status()
            .expect("run tmux");
        assert!(status.success(), "tmux new-session failed");
        Replay { socket, _dir: dir }
    }

    fn screen(&self) -> String {
        let out = Command::new("tmux")
            .args(["-L", &self.socket, "capture-pane", "-p", "-t", "e2e"])
            .output()
            .expect("run tmux");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The screen once it shows the replay's header, within 15 s.
    fn header(&self) -> String {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let s = self.screen();
            if s.contains("REPLAY") {
                return s.lines().next().unwrap_or("").to_string();
            }
            assert!(Instant::now() < deadline, "no replay dashboard:\n{s}");
            std::thread::sleep(Duration::from_millis(250));
        }
    }
}

impl Drop for Replay {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["-L", &self.socket, "kill-server"])
            .status();
    }
}

const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/journal/v1-demo.jsonl"
);

#[test]
fn the_replay_header_names_the_recorded_instance() {
    // The fixture as a monitor named `night-shift-eu` writes it now: the
    // name on the first line.
    let dir = tempfile::tempdir().expect("tempdir");
    let journal = dir.path().join("journal.jsonl");
    let text = std::fs::read_to_string(FIXTURE).expect("fixture");
    let mut lines = text.lines();
    let first = lines.next().expect("a first line");
    let named = first.replacen(",\"ev\":", ",\"instance\":\"night-shift-eu\",\"ev\":", 1);
    assert_ne!(first, named, "the first line has an ev field");
    let mut out = named + "\n";
    for l in lines {
        out.push_str(l);
        out.push('\n');
    }
    std::fs::write(&journal, out).expect("write");
    let header = Replay::start(&journal).header();
    assert!(header.contains("night-shift-eu"), "{header}");
    assert!(
        !header.contains(" exwatch "),
        "not the default name: {header}"
    );
}

#[test]
fn the_replay_header_of_an_old_journal_names_its_file() {
    let header = Replay::start(std::path::Path::new(FIXTURE)).header();
    assert!(header.contains("v1-demo.jsonl"), "{header}");
}
