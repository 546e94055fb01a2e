//! `exwatch replay` in a real terminal (tmux on a private socket): the
//! dashboard's header names the instance the journal recorded, or the
//! journal's file name for a journal from before names were recorded
//! (issue #14 item 7).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed unwrap is a failed test

mod common;

use common::tmux::Tmux;
use std::time::Duration;

/// `exwatch replay <journal>` in tmux; the dashboard's header line once it
/// shows the replay (within 15 s).
fn replay_header(journal: &std::path::Path) -> String {
    let t = Tmux::start_with(
        "replay",
        &format!("replay {} --speed 1000", journal.display()),
        &[],
    );
    let s = t
        .wait_for(Duration::from_secs(15), |s| s.contains("REPLAY"))
        .unwrap_or_else(|s| panic!("no replay dashboard:\n{s}"));
    s.lines().next().unwrap_or("").to_string()
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
    let header = replay_header(&journal);
    assert!(header.contains("night-shift-eu"), "{header}");
    assert!(
        !header.contains(" exwatch "),
        "not the default name: {header}"
    );
}

#[test]
fn the_replay_header_of_an_old_journal_names_its_file() {
    let header = replay_header(std::path::Path::new(FIXTURE));
    assert!(header.contains("v1-demo.jsonl"), "{header}");
}
