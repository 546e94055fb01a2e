//! Journals written by the release before the format changed (version 1:
//! prose breaker reasons, triage inside `alert_changed`) still replay,
//! restore and report. The fixture and its expected report come from that
//! release's own binary (tests/fixtures/SOURCES.md).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed unwrap is a failed test

use exwatch::journal::{self, Journal, JournalSettings};
use exwatch::model::{AlertState, Component, Event, TripCause};
use exwatch::replay::Replay;
use std::path::PathBuf;
use std::process::Command;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/journal")
        .join(name)
}

/// Open at the end of the recording, as `jq` over the file tells:
/// the last `alert_changed` of each fingerprint whose state is not resolved.
const OPEN_AT_END: [&str; 4] = [
    "bybit/ticker/rate_limit",
    "coinbase/book/breaker_open",
    "coinbase/book/payload:crossed_book",
    "okx/time/error_rate",
];

#[test]
fn every_line_of_a_v1_journal_reads() {
    let (entries, stats) = journal::read_file(&fixture("v1-demo.jsonl")).unwrap();
    assert_eq!(stats.bad_lines, 0);
    assert_eq!(entries.len(), 303);
    assert!(entries.iter().all(|e| e.v == 1));
    // Prose breaker reasons come back as they were written, and print the same.
    let reasons: Vec<TripCause> = entries
        .iter()
        .filter_map(|e| match &e.ev {
            Event::BreakerChanged { transition, .. } => Some(transition.reason.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(reasons.len(), 16);
    assert_eq!(
        reasons[0].to_string(),
        "3 consecutive failures ≥ 3 (last: server_error); open 4s (trip 1)"
    );
}

/// The `ev` of every line that names an endpoint is written back byte for
/// byte: the event's shape (field order included) has not changed since v1.
#[test]
fn endpoint_events_of_a_v1_journal_are_written_back_unchanged() {
    let text = std::fs::read_to_string(fixture("v1-demo.jsonl")).unwrap();
    let mut checked = 0;
    for line in text.lines() {
        let (_, ev) = line.split_once(r#","ev":"#).unwrap();
        let ev = ev.strip_suffix('}').unwrap();
        let endpoint_event = [
            "watching",
            "stalled",
            "limiter_waited",
            "limiter_fill",
            "breaker_changed",
            "breaker_rejected",
            "poll_interval",
            "sample",
        ]
        .iter()
        .any(|k| ev.starts_with(&format!(r#"{{"event":"{k}","#)));
        if !endpoint_event {
            continue;
        }
        let parsed: Event = serde_json::from_str(ev).unwrap();
        assert_eq!(serde_json::to_string(&parsed).unwrap(), ev);
        checked += 1;
    }
    assert_eq!(checked, 15 + 13 + 6 + 16 + 53 + 122);
}

#[test]
fn a_v1_journal_replays_to_its_alerts() {
    let (entries, _) = journal::read_file(&fixture("v1-demo.jsonl")).unwrap();
    let mut replay = Replay::new(entries);
    replay.run_to_end();
    let snap = replay.snapshot();
    assert_eq!(snap.alerts.len(), 12);
    let mut open: Vec<&str> = snap
        .alerts
        .iter()
        .filter(|a| a.state.is_open())
        .map(|a| a.fingerprint.as_str())
        .collect();
    open.sort();
    assert_eq!(open, OPEN_AT_END);
    // Triage written inside v1 alert changes is kept on the alert.
    let outage = snap
        .alerts
        .iter()
        .find(|a| a.fingerprint == "okx/*/outage")
        .expect("the outage");
    assert_eq!(outage.state, AlertState::Resolved);
    assert_eq!(outage.triage.as_ref().map(|t| t.escalation), Some(5));
}

#[test]
fn a_v1_journal_restores_its_open_alerts_and_takes_v2_lines_after() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal.jsonl");
    std::fs::copy(fixture("v1-demo.jsonl"), &path).unwrap();
    let mut restored: Vec<String> = journal::restore_open_alerts(&path)
        .unwrap()
        .into_iter()
        .map(|a| a.fingerprint)
        .collect();
    restored.sort();
    assert_eq!(restored, OPEN_AT_END);
    // The running release appends its own version to the same file.
    let mut j = Journal::open_at(&path, &JournalSettings::default()).unwrap();
    assert_eq!(j.open_alerts().len(), 4);
    let ev = Event::BackendHealth {
        at_ms: 1,
        component: Component::Journal,
        healthy: true,
        detail: "appended".into(),
    };
    j.append(&ev, 2).unwrap();
    drop(j);
    let (entries, stats) = journal::read_file(&path).unwrap();
    assert_eq!(stats.bad_lines, 0);
    assert_eq!(entries.len(), 304);
    assert_eq!(entries.last().map(|e| e.v), Some(journal::VERSION));
}

#[test]
fn report_prints_what_the_release_that_wrote_it_printed_with_the_titles_that_fired() {
    let out = Command::new(env!("CARGO_BIN_EXE_exwatch"))
        .arg("report")
        .arg(fixture("v1-demo.jsonl"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let want = std::fs::read_to_string(fixture("v1-demo.report.txt")).unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), want);
}
