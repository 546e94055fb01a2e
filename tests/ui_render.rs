//! Whole-screen snapshots of the dashboard (ratatui TestBackend + insta),
//! rendered at a fixed time from snapshots built by the real reducer.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed unwrap is a failed test

mod ui_fixtures;

use exwatch::state::Snapshot;
use exwatch::ui::{self, Key, Keymap, Mode, Panel, Theme, ViewState};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ui_fixtures::NOW;

fn view() -> ViewState {
    let mut v = ViewState::new("prod-eu", Mode::Live, Keymap::default(), Theme::default());
    v.operator = "alice".into();
    v
}

fn screen(snap: &Snapshot, view: &ViewState, w: u16, h: u16) -> String {
    let mut term = Terminal::new(TestBackend::new(w, h)).expect("test backend");
    term.draw(|f| ui::render(f, snap, view, NOW)).expect("draw");
    term.backend().to_string()
}

fn press(view: &mut ViewState, snap: &Snapshot, key: &str) -> ui::Reaction {
    view.on_key(Key::parse(key).expect("key"), snap, NOW)
}

#[test]
fn healthy_80x24() {
    let snap = ui_fixtures::healthy();
    let s = screen(&snap, &view(), 80, 24);
    assert!(s.contains("5 exchanges ok"), "{s}");
    insta::assert_snapshot!(s);
}

#[test]
fn healthy_200x50_ascii() {
    let snap = ui_fixtures::healthy();
    let mut v = view();
    v.theme = Theme {
        color: false,
        ascii: true,
    };
    let s = screen(&snap, &v, 200, 50);
    assert!(s.is_ascii(), "ASCII mode drew a non-ASCII glyph:\n{s}");
    insta::assert_snapshot!(s);
}

#[test]
fn exchange_down_breaker_open_80x24() {
    let snap = ui_fixtures::exchange_down();
    let mut v = view();
    // Select bybit/book, the endpoint whose breaker is open.
    for _ in 0..5 {
        press(&mut v, &snap, "j");
    }
    let s = screen(&snap, &v, 80, 24);
    assert!(s.contains("OPEN 12s"), "breaker and retry time shown:\n{s}");
    insta::assert_snapshot!(s);
}

#[test]
fn exchange_down_with_endpoint_detail_200x50() {
    let snap = ui_fixtures::exchange_down();
    let mut v = view();
    for _ in 0..5 {
        press(&mut v, &snap, "j");
    }
    press(&mut v, &snap, "enter");
    let s = screen(&snap, &v, 200, 50);
    assert!(s.contains("bybit/book"), "{s}");
    assert!(s.contains("redis (limiter) DOWN"), "{s}");
    insta::assert_snapshot!(s);
}

#[test]
fn exchange_down_alert_detail_with_triage_120x40() {
    let snap = ui_fixtures::exchange_down();
    let mut v = view();
    press(&mut v, &snap, "tab");
    press(&mut v, &snap, "j");
    press(&mut v, &snap, "enter");
    assert_eq!(v.focus, Panel::Alerts);
    let s = screen(&snap, &v, 120, 40);
    assert!(s.contains("Triage (rules, escalation 3/5"), "{s}");
    insta::assert_snapshot!(s);
}

#[test]
fn alert_storm_120x40() {
    let snap = ui_fixtures::alert_storm();
    let mut v = view();
    press(&mut v, &snap, "tab");
    let s = screen(&snap, &v, 120, 40);
    insta::assert_snapshot!(s);
}

#[test]
fn alert_storm_with_resolved_and_filter_120x40() {
    let snap = ui_fixtures::alert_storm();
    let mut v = view();
    press(&mut v, &snap, "tab");
    press(&mut v, &snap, "r");
    press(&mut v, &snap, "/");
    for c in ["k", "r", "a", "k"] {
        press(&mut v, &snap, c);
    }
    press(&mut v, &snap, "enter");
    let s = screen(&snap, &v, 120, 40);
    assert!(!s.contains("binance"), "filter hides other exchanges:\n{s}");
    assert!(s.contains("resolved"), "{s}");
    insta::assert_snapshot!(s);
}

#[test]
fn help_overlay_80x24() {
    let snap = ui_fixtures::healthy();
    let mut v = view();
    press(&mut v, &snap, "?");
    let s = screen(&snap, &v, 80, 24);
    insta::assert_snapshot!(s);
}

#[test]
fn silence_prompt_and_frozen_header_80x24() {
    let snap = ui_fixtures::exchange_down();
    let mut v = view();
    press(&mut v, &snap, "f");
    press(&mut v, &snap, "tab");
    press(&mut v, &snap, "s");
    let s = screen(&snap, &v, 80, 24);
    assert!(s.contains("FROZEN"), "{s}");
    assert!(s.contains("silence bybit/book/breaker_open for: 1h"), "{s}");
    insta::assert_snapshot!(s);
}

#[test]
fn silences_overlay_80x24() {
    let snap = ui_fixtures::silences::silenced();
    let mut v = view();
    press(&mut v, &snap, "S");
    press(&mut v, &snap, "j");
    let s = screen(&snap, &v, 80, 24);
    assert!(s.contains("Silences and acknowledgements (3)"), "{s}");
    assert!(s.contains("expires in 59m"), "{s}");
    assert!(s.contains("acked 4m ago"), "{s}");
    insta::assert_snapshot!(s);
}

#[test]
fn force_open_question_80x24() {
    let snap = ui_fixtures::exchange_down();
    let mut v = view();
    for _ in 0..5 {
        press(&mut v, &snap, "j");
    }
    press(&mut v, &snap, "o");
    let s = screen(&snap, &v, 80, 24);
    assert!(s.contains("force bybit/book breaker open? y/n"), "{s}");
}

#[test]
fn tiny_terminal_shows_a_message() {
    let snap = ui_fixtures::healthy();
    let s = screen(&snap, &view(), 40, 10);
    assert!(s.contains("needs at least"), "{s}");
    insta::assert_snapshot!(s);
}

#[test]
fn empty_snapshot_before_the_first_event() {
    let s = screen(&Snapshot::default(), &view(), 80, 24);
    assert!(s.contains("waiting for the first events"), "{s}");
}

#[test]
fn every_size_from_tiny_to_huge_renders() {
    // Resizing at any time must never panic, whatever the content.
    let snaps = [
        Snapshot::default(),
        ui_fixtures::exchange_down(),
        ui_fixtures::alert_storm(),
    ];
    let mut v = view();
    v.detail = true;
    for snap in &snaps {
        for (w, h) in [
            (1, 1),
            (59, 11),
            (60, 12),
            (61, 13),
            (80, 24),
            (149, 30),
            (150, 30),
            (300, 90),
        ] {
            for focus in [Panel::Exchanges, Panel::Alerts] {
                v.focus = focus;
                v.help = w % 2 == 0;
                let _ = screen(snap, &v, w, h);
            }
        }
    }
}
