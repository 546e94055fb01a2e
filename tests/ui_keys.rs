//! The keymap as data: defaults, overrides from the config, duplicates as
//! positioned config errors; and what keys do to the view (commands out,
//! never engine state changed in place).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed unwrap is a failed test

mod ui_fixtures;

use exwatch::config;
use exwatch::model::AlertState;
use exwatch::model::{Command, EndpointId};
use exwatch::ui::keymap::CTRL_C;
use exwatch::ui::{Action, Key, Keymap, Mode, Panel, Reaction, Theme, ViewState};
use std::time::Duration;
use strum::VariantArray;
use ui_fixtures::NOW;

const BASE: &str = r#"
[[exchanges]]
name = "binance"
kind = "binance"
[[exchanges.endpoints]]
name = "time"
kind = "time"
"#;

/// 1-based line of the first line equal to `needle`.
fn line_of(text: &str, needle: &str) -> usize {
    text.lines()
        .position(|l| l == needle)
        .map(|i| i + 1)
        .unwrap_or_else(|| panic!("{needle:?} not in the text"))
}

fn key(s: &str) -> Key {
    Key::parse(s).expect("key name")
}

fn view_with(km: Keymap) -> ViewState {
    let mut v = ViewState::new("test", Mode::Live, km, Theme::default());
    v.operator = "alice".into();
    v
}

#[test]
fn every_default_action_is_reachable_by_a_key() {
    let km = Keymap::default();
    for &a in Action::VARIANTS {
        let keys = km.keys_for(a);
        assert!(!keys.is_empty(), "{a:?} has no key");
        for k in keys {
            assert_eq!(km.action_for(*k), Some(a), "{k} does not lead to {a:?}");
        }
    }
    // The keys the issue names.
    for (k, a) in [
        ("up", Action::Up),
        ("k", Action::Up),
        ("down", Action::Down),
        ("j", Action::Down),
        ("tab", Action::NextPanel),
        ("enter", Action::Details),
        ("a", Action::Acknowledge),
        ("t", Action::Triage),
        ("s", Action::Silence),
        ("S", Action::Silences),
        ("u", Action::Undo),
        ("o", Action::ForceOpen),
        ("c", Action::ResetBreaker),
        ("/", Action::Filter),
        ("r", Action::ShowResolved),
        ("f", Action::Freeze),
        ("?", Action::Help),
        ("q", Action::Quit),
    ] {
        assert_eq!(km.action_for(key(k)), Some(a), "{k}");
    }
    assert_eq!(km.action_for(CTRL_C), Some(Action::Quit));
}

#[test]
fn a_config_override_rebinds_an_action() {
    let text = format!("{BASE}\n[keys]\nacknowledge = \"A\"\nup = [\"up\", \"ctrl-p\"]\n");
    let cfg = config::parse("t.toml", &text).expect("valid config");
    let km = Keymap::from_config(&cfg.keys).expect("valid keymap");
    assert_eq!(km.action_for(key("A")), Some(Action::Acknowledge));
    assert_eq!(km.action_for(key("a")), None, "the default is replaced");
    assert_eq!(km.action_for(key("ctrl-p")), Some(Action::Up));
    assert_eq!(km.action_for(key("k")), None);
    // The help and the footer read the same table.
    assert_eq!(km.label(Action::Acknowledge), "A");
    assert_eq!(km.label(Action::Up), "↑/^P");
}

#[test]
fn a_duplicate_binding_is_a_config_error_naming_the_line() {
    // k moves up by default.
    let text = format!("{BASE}\n[keys]\nacknowledge = \"k\"\n");
    let errs = config::parse("t.toml", &text).expect_err("duplicate rejected");
    let e = errs
        .0
        .iter()
        .find(|e| e.field == "keys.acknowledge")
        .unwrap_or_else(|| panic!("no error on keys.acknowledge: {errs}"));
    assert_eq!(e.line, line_of(&text, "acknowledge = \"k\""), "{e}");
    assert!(e.message.contains("duplicate"), "{e}");
    assert!(e.message.contains("up"), "{e}");
}

#[test]
fn two_overrides_on_one_key_are_one_error_on_a_user_line() {
    let text = format!("{BASE}\n[keys]\nhelp = \"x\"\nfreeze = \"x\"\n");
    let errs = config::parse("t.toml", &text).expect_err("duplicate rejected");
    assert_eq!(errs.0.len(), 1, "{errs}");
    assert_eq!(errs.0[0].line, line_of(&text, "help = \"x\""), "{errs}");
    assert_eq!(errs.0[0].field, "keys.help", "{errs}");
}

#[test]
fn bad_key_names_and_unknown_actions_are_config_errors() {
    let text = format!("{BASE}\n[keys]\nquit = \"hyper-q\"\n");
    let errs = config::parse("t.toml", &text).expect_err("bad key");
    assert_eq!(
        errs.0[0].line,
        line_of(&text, "quit = \"hyper-q\""),
        "{errs}"
    );
    assert!(errs.0[0].message.contains("not a key"), "{errs}");
    let text = format!("{BASE}\n[keys]\nlaunch = \"l\"\n");
    let errs = config::parse("t.toml", &text).expect_err("unknown action");
    assert_eq!(errs.0[0].line, line_of(&text, "launch = \"l\""), "{errs}");
    let errs = config::parse("t.toml", &format!("{BASE}\n[keys]\nhelp = \"ctrl-c\"\n"))
        .expect_err("ctrl-c reserved");
    assert!(errs.0[0].message.contains("reserved"), "{errs}");
}

#[test]
fn acknowledge_sends_a_command_for_the_selected_alert() {
    let snap = ui_fixtures::exchange_down();
    let mut v = view_with(Keymap::default());
    // From the exchanges panel there is no alert to acknowledge.
    assert_eq!(v.on_key(key("a"), &snap, NOW), Reaction::Redraw);
    assert!(v.status.as_ref().is_some_and(|s| s.error));
    v.on_key(key("tab"), &snap, NOW);
    v.on_key(key("j"), &snap, NOW);
    let open: Vec<_> = snap
        .alerts
        .iter()
        .filter(|a| a.state != AlertState::Resolved)
        .collect();
    assert_eq!(
        v.on_key(key("a"), &snap, NOW),
        Reaction::Send(Command::Acknowledge {
            fingerprint: open[1].fingerprint.clone(),
            by: "alice".into(),
            episode: Some(open[1].occurrences),
        })
    );
}

#[test]
fn silence_asks_for_a_duration_then_sends() {
    let snap = ui_fixtures::exchange_down();
    let mut v = view_with(Keymap::default());
    v.on_key(key("tab"), &snap, NOW);
    assert_eq!(v.on_key(key("s"), &snap, NOW), Reaction::Redraw);
    assert!(v.input.is_some());
    // Replace the suggested 1h with 30m; letters go to the prompt, not the keymap.
    v.on_key(key("backspace"), &snap, NOW);
    v.on_key(key("backspace"), &snap, NOW);
    for c in ["3", "0", "m"] {
        assert_eq!(v.on_key(key(c), &snap, NOW), Reaction::Redraw);
    }
    let first = &snap.alerts[0];
    assert_eq!(
        v.on_key(key("enter"), &snap, NOW),
        Reaction::Send(Command::Silence {
            exchange: Some(first.exchange.clone()),
            endpoint: first.endpoint.clone(),
            kind: Some(first.kind.name()),
            duration: Duration::from_secs(1800),
            by: "alice".into(),
        })
    );
    assert!(v.input.is_none());
}

#[test]
fn a_bad_silence_duration_keeps_the_prompt_open() {
    let snap = ui_fixtures::exchange_down();
    let mut v = view_with(Keymap::default());
    v.on_key(key("s"), &snap, NOW);
    v.on_key(key("x"), &snap, NOW);
    assert_eq!(v.on_key(key("enter"), &snap, NOW), Reaction::Redraw);
    assert!(v.input.is_some());
    assert!(v.status.as_ref().is_some_and(|s| s.error));
    assert_eq!(v.on_key(key("esc"), &snap, NOW), Reaction::Redraw);
    assert!(v.input.is_none());
}

#[test]
fn breaker_keys_send_commands_for_the_selected_endpoint() {
    let snap = ui_fixtures::exchange_down();
    let mut v = view_with(Keymap::default());
    v.on_key(key("G"), &snap, NOW);
    // Forcing open asks first; `y` sends.
    assert_eq!(v.on_key(key("o"), &snap, NOW), Reaction::Redraw);
    assert_eq!(
        v.on_key(key("y"), &snap, NOW),
        Reaction::Send(Command::ForceOpen {
            id: EndpointId::new("kraken", "book")
        })
    );
    // From the alert feed, the alert's endpoint.
    v.on_key(key("tab"), &snap, NOW);
    assert_eq!(
        v.on_key(key("c"), &snap, NOW),
        Reaction::Send(Command::ResetBreaker {
            id: EndpointId::new("bybit", "book")
        })
    );
}

#[test]
fn triage_from_an_endpoint_batches_its_open_alerts() {
    let snap = ui_fixtures::exchange_down();
    let mut v = view_with(Keymap::default());
    select_endpoint(&mut v, &snap, "bybit", "book");
    assert_eq!(
        v.current_endpoint(&snap)
            .map(|(e, p)| (e.name.as_str(), p.name.as_str())),
        Some(("bybit", "book"))
    );
    assert_eq!(
        v.on_key(key("t"), &snap, NOW),
        Reaction::Send(Command::Triage {
            fingerprints: vec!["bybit/book/breaker_open".into()]
        })
    );
}

#[test]
fn overridden_keys_drive_the_view_and_old_ones_do_nothing() {
    let text = format!("{BASE}\n[keys]\nacknowledge = \"A\"\nnext_panel = \"n\"\n");
    let cfg = config::parse("t.toml", &text).expect("valid");
    let snap = ui_fixtures::exchange_down();
    let mut v = view_with(Keymap::from_config(&cfg.keys).expect("keymap"));
    assert_eq!(v.on_key(key("tab"), &snap, NOW), Reaction::None);
    v.on_key(key("n"), &snap, NOW);
    assert_eq!(v.focus, Panel::Alerts);
    assert_eq!(v.on_key(key("a"), &snap, NOW), Reaction::None);
    assert!(matches!(
        v.on_key(key("A"), &snap, NOW),
        Reaction::Send(Command::Acknowledge { .. })
    ));
}

#[test]
fn freeze_toggles_and_quit_and_ctrl_c_quit() {
    let snap = ui_fixtures::healthy();
    let mut v = view_with(Keymap::default());
    assert_eq!(v.on_key(key("f"), &snap, NOW), Reaction::Freeze(true));
    assert_eq!(v.frozen_at_ms, Some(NOW));
    assert_eq!(v.on_key(key("f"), &snap, NOW + 5), Reaction::Freeze(false));
    assert_eq!(v.frozen_at_ms, None);
    assert_eq!(v.on_key(key("q"), &snap, NOW), Reaction::Quit);
    // Ctrl-C quits even from a prompt.
    v.on_key(key("/"), &snap, NOW);
    assert_eq!(
        v.on_key(key("q"), &snap, NOW),
        Reaction::Redraw,
        "q is typed into the filter"
    );
    assert_eq!(v.on_key(CTRL_C, &snap, NOW), Reaction::Quit);
}

#[test]
fn the_selection_follows_the_alert_when_rows_move() {
    let snap = ui_fixtures::alert_storm();
    let mut v = view_with(Keymap::default());
    v.on_key(key("tab"), &snap, NOW);
    v.on_key(key("j"), &snap, NOW);
    v.on_key(key("j"), &snap, NOW);
    let chosen = v.current_alert(&snap).map(|a| a.fingerprint.clone());
    // A newer snapshot with the first row gone: the same alert stays selected.
    let mut next = snap.clone();
    next.alerts.remove(0);
    assert_eq!(
        v.current_alert(&next).map(|a| a.fingerprint.clone()),
        chosen
    );
}

/// The alert feed of `exchange_down` with the second open alert selected,
/// and that alert.
fn second_alert_selected() -> (exwatch::state::Snapshot, ViewState, exwatch::model::Alert) {
    let snap = ui_fixtures::exchange_down();
    let mut v = view_with(Keymap::default());
    v.on_key(key("tab"), &snap, NOW);
    v.on_key(key("j"), &snap, NOW);
    let chosen = v
        .current_alert(&snap)
        .expect("an alert is selected")
        .clone();
    assert_eq!(
        chosen.fingerprint,
        snap.alerts
            .iter()
            .filter(|a| a.state != AlertState::Resolved)
            .nth(1)
            .expect("two open alerts")
            .fingerprint
    );
    (snap, v, chosen)
}

/// `snap` with the alert `fp` changed by `f`.
fn with_alert(
    snap: &exwatch::state::Snapshot,
    fp: &str,
    f: impl Fn(&mut exwatch::model::Alert),
) -> exwatch::state::Snapshot {
    let mut next = snap.clone();
    for a in next.alerts.iter_mut().filter(|a| a.fingerprint == fp) {
        f(a);
    }
    next
}

/// Move down until the endpoint `ex/ep` is selected (rows are in the
/// panel's order, problems first, not in config order).
fn select_endpoint(v: &mut ViewState, snap: &exwatch::state::Snapshot, ex: &str, ep: &str) {
    for _ in 0..50 {
        if v.current_endpoint(snap)
            .is_some_and(|(e, p)| e.name == ex && p.name == ep)
        {
            return;
        }
        v.on_key(key("down"), snap, NOW);
    }
    panic!("{ex}/{ep} is not a row");
}

fn status_text(v: &ViewState) -> String {
    let st = v.status.as_ref().expect("a status message");
    assert!(st.error, "a refusal is an error: {}", st.text);
    st.text.clone()
}

#[test]
fn every_action_on_an_alert_that_resolved_is_refused_and_the_cursor_stays() {
    let (snap, mut v, chosen) = second_alert_selected();
    let resolved_at = NOW - 3_000;
    let next = with_alert(&snap, &chosen.fingerprint, |a| {
        a.state = AlertState::Resolved;
        a.resolved_at_ms = Some(resolved_at);
    });
    // Another alert is on screen, but the cursor does not move to it.
    assert!(!v.visible_alerts(&next).is_empty());
    assert_eq!(v.current_alert(&next), None);
    assert_eq!(v.alert_index(&v.visible_alerts(&next)), None);
    let lost = v.lost_selection(&next).expect("the selection is lost");
    let at = exwatch::clock::hms(resolved_at);
    assert!(
        lost.contains(&chosen.fingerprint) && lost.contains(&at),
        "{lost}"
    );
    for (k, what) in [
        ("a", "nothing acknowledged"),
        ("t", "nothing sent for triage"),
        ("s", "nothing silenced"),
        ("o", "no breaker forced open"),
        ("c", "no breaker reset"),
    ] {
        assert_eq!(v.on_key(key(k), &next, NOW), Reaction::Redraw, "{k}");
        let text = status_text(&v);
        assert!(
            text.starts_with(what)
                && text.contains(&format!("{} resolved at {at}", chosen.fingerprint))
                && text.ends_with("select another"),
            "{k}: {text}"
        );
        assert!(v.input.is_none(), "{k}: no prompt opened");
    }
    // The selection is still that alert: shown again with `r`, it is found.
    assert_eq!(
        v.selected_alert.as_ref().map(|p| p.fingerprint.as_str()),
        Some(chosen.fingerprint.as_str())
    );
    v.on_key(key("r"), &next, NOW);
    assert_eq!(
        v.current_alert(&next).map(|a| a.fingerprint.as_str()),
        Some(chosen.fingerprint.as_str())
    );
    v.on_key(key("a"), &next, NOW);
    assert!(status_text(&v).contains("already resolved"));
}

#[test]
fn an_alert_that_fired_again_is_a_new_target() {
    let (snap, mut v, chosen) = second_alert_selected();
    let next = with_alert(&snap, &chosen.fingerprint, |a| {
        a.occurrences += 1;
        a.state = AlertState::Firing;
    });
    assert_eq!(v.on_key(key("a"), &next, NOW), Reaction::Redraw);
    let text = status_text(&v);
    assert!(
        text.starts_with("nothing acknowledged") && text.contains("fired again"),
        "{text}"
    );
    // Selecting it again (moving onto it) makes it the target: the new
    // episode, which the engine checks is still the open one.
    v.on_key(key("k"), &next, NOW);
    v.on_key(key("j"), &next, NOW);
    assert_eq!(
        v.on_key(key("a"), &next, NOW),
        Reaction::Send(Command::Acknowledge {
            fingerprint: chosen.fingerprint.clone(),
            by: "alice".into(),
            episode: Some(chosen.occurrences + 1),
        })
    );
}

#[test]
fn the_first_row_shown_is_pinned_before_a_newer_snapshot_is_taken() {
    // Nothing chosen yet: the cursor shows the first alert. The loop pins
    // it before it takes the next snapshot, in which that alert resolved.
    let snap = ui_fixtures::exchange_down();
    let mut v = view_with(Keymap::default());
    v.on_key(key("tab"), &snap, NOW);
    let first = v.current_alert(&snap).expect("first row").clone();
    v.pin(&snap);
    let next = with_alert(&snap, &first.fingerprint, |a| {
        a.state = AlertState::Resolved;
        a.resolved_at_ms = Some(NOW);
    });
    assert_ne!(
        v.visible_alerts(&next).first().map(|a| &a.fingerprint),
        Some(&first.fingerprint)
    );
    assert_eq!(v.on_key(key("a"), &next, NOW), Reaction::Redraw);
    assert!(status_text(&v).contains(&first.fingerprint));
    // Moving from a lost selection starts at the first row.
    v.on_key(key("j"), &next, NOW);
    assert_eq!(v.alert_index(&v.visible_alerts(&next)), Some(0));
}

#[test]
fn an_endpoint_that_is_gone_is_not_acted_on() {
    let snap = ui_fixtures::exchange_down();
    let mut v = view_with(Keymap::default());
    v.on_key(key("G"), &snap, NOW);
    // A newer snapshot (a replay of another config) without kraken.
    let mut next = snap.clone();
    next.exchanges.retain(|ex| ex.name != "kraken");
    assert_eq!(v.current_endpoint(&next), None);
    for (k, what) in [
        ("o", "no breaker forced open"),
        ("c", "no breaker reset"),
        ("t", "nothing sent for triage"),
        ("s", "nothing silenced"),
    ] {
        assert_eq!(v.on_key(key(k), &next, NOW), Reaction::Redraw, "{k}");
        let text = status_text(&v);
        assert!(
            text.starts_with(what) && text.contains("kraken/book is gone"),
            "{k}: {text}"
        );
    }
}

#[test]
fn a_filter_moves_a_selection_it_hides_to_the_first_match_but_not_a_lost_one() {
    let snap = ui_fixtures::exchange_down();
    let mut v = view_with(Keymap::default());
    v.on_key(key("G"), &snap, NOW);
    v.on_key(key("/"), &snap, NOW);
    for c in ["b", "y", "b"] {
        v.on_key(key(c), &snap, NOW);
    }
    v.on_key(key("enter"), &snap, NOW);
    // The operator hid kraken/book: the highlight (and the target) is the first match.
    let rows = v.visible_endpoints(&snap);
    assert!(rows.iter().all(|(ex, _)| ex.name == "bybit"), "filtered");
    assert_eq!(v.endpoint_index(&rows), Some(0));
    let first = EndpointId::new(&rows[0].0.name, &rows[0].1.name);
    v.on_key(key("o"), &snap, NOW);
    assert_eq!(
        v.on_key(key("y"), &snap, NOW),
        Reaction::Send(Command::ForceOpen { id: first })
    );
    // An alert that resolved stays lost whatever the filter does.
    let (snap, mut v, chosen) = second_alert_selected();
    let next = with_alert(&snap, &chosen.fingerprint, |a| {
        a.state = AlertState::Resolved;
        a.resolved_at_ms = Some(NOW);
    });
    v.on_key(key("/"), &next, NOW);
    v.on_key(key("b"), &next, NOW);
    v.on_key(key("esc"), &next, NOW);
    assert_eq!(v.on_key(key("a"), &next, NOW), Reaction::Redraw);
    assert!(status_text(&v).contains("resolved at"));
}

// Issue #14: order, pages, mouse, replay, fading messages, help.

fn area(w: u16, h: u16) -> ratatui::layout::Rect {
    ratatui::layout::Rect::new(0, 0, w, h)
}

fn ids(v: &ViewState, snap: &exwatch::state::Snapshot) -> Vec<String> {
    v.visible_endpoints(snap)
        .iter()
        .map(|(e, p)| format!("{}/{}", e.name, p.name))
        .collect()
}

#[test]
fn rows_with_a_problem_come_first_and_o_cycles_the_order() {
    let snap = ui_fixtures::last_exchange_fault();
    let mut v = view_with(Keymap::default());
    // kraken is last in the config; its failing book comes first, the rest in config order.
    let rows = ids(&v, &snap);
    assert_eq!(rows[0], "kraken/book");
    assert_eq!(rows[1], "binance/time");
    assert_eq!(rows.len(), 15);
    assert_eq!(v.on_key(key("O"), &snap, NOW), Reaction::Redraw);
    let said = |v: &ViewState| {
        v.status
            .as_ref()
            .map(|s| s.text.clone())
            .unwrap_or_default()
    };
    assert_eq!(said(&v), "sorted config order");
    assert_eq!(ids(&v, &snap)[0], "binance/time");
    assert_eq!(ids(&v, &snap)[14], "kraken/book");
    for _ in 0..4 {
        v.on_key(key("O"), &snap, NOW);
    }
    assert_eq!(ids(&v, &snap)[0], "kraken/book", "the cycle comes back");
    // In the feed, `O` cycles the feed's order instead.
    v.on_key(key("tab"), &snap, NOW);
    v.on_key(key("O"), &snap, NOW);
    assert_eq!(said(&v), "sorted by AGE");
    assert_eq!(ids(&v, &snap)[0], "kraken/book");
}

#[test]
fn the_feed_is_ordered_by_severity_then_newest_episode() {
    let snap = ui_fixtures::alert_storm();
    let v = view_with(Keymap::default());
    let rows = v.visible_alerts(&snap);
    assert!(rows.len() > 10);
    for w in rows.windows(2) {
        let (a, b) = (w[0], w[1]);
        assert!(
            a.severity > b.severity
                || (a.severity == b.severity && a.episode_start() >= b.episode_start()),
            "{} ({:?}, {}) before {} ({:?}, {})",
            a.fingerprint,
            a.severity,
            a.episode_start(),
            b.fingerprint,
            b.severity,
            b.episode_start()
        );
    }
    // A newer episode of an old alert goes above older ones of its severity.
    let mut snap2 = snap.clone();
    let last_warning = rows
        .iter()
        .rev()
        .find(|a| a.severity == exwatch::model::Severity::Warning)
        .map(|a| a.fingerprint.clone())
        .unwrap();
    for a in snap2.alerts.iter_mut() {
        if a.fingerprint == last_warning {
            a.episode_start_ms = Some(NOW);
        }
    }
    let rows2 = v.visible_alerts(&snap2);
    let first_warning = rows2
        .iter()
        .find(|a| a.severity == exwatch::model::Severity::Warning)
        .unwrap();
    assert_eq!(first_warning.fingerprint, last_warning);
}

#[test]
fn page_keys_move_the_selection_by_a_panel() {
    let snap = ui_fixtures::healthy();
    let mut v = view_with(Keymap::default());
    v.area = area(80, 24);
    // 80x24: the exchanges panel shows 11 of the 15 rows.
    v.on_key(key("pagedown"), &snap, NOW);
    assert_eq!(v.endpoint_index(&v.visible_endpoints(&snap)), Some(11));
    v.on_key(key("pagedown"), &snap, NOW);
    assert_eq!(v.endpoint_index(&v.visible_endpoints(&snap)), Some(14));
    v.on_key(key("pageup"), &snap, NOW);
    assert_eq!(v.endpoint_index(&v.visible_endpoints(&snap)), Some(3));
}

#[test]
fn a_click_selects_the_row_under_it_and_the_wheel_moves() {
    use crossterm::event::{KeyModifiers, MouseButton, MouseEvent, MouseEventKind};
    let snap = ui_fixtures::exchange_down();
    let mut v = view_with(Keymap::default());
    v.area = area(80, 24);
    let at = |kind, column, row| MouseEvent {
        kind,
        column,
        row,
        modifiers: KeyModifiers::NONE,
    };
    // Line 0 header, 1 the panel's border, 2 its column titles, 3 the first row.
    let rows = ids(&v, &snap);
    v.on_mouse(
        at(MouseEventKind::Down(MouseButton::Left), 10, 5),
        &snap,
        NOW,
    );
    let (e, p) = v.current_endpoint(&snap).unwrap();
    assert_eq!(format!("{}/{}", e.name, p.name), rows[2]);
    v.on_mouse(at(MouseEventKind::ScrollDown, 10, 5), &snap, NOW);
    let (e, p) = v.current_endpoint(&snap).unwrap();
    assert_eq!(format!("{}/{}", e.name, p.name), rows[3]);
    // A click in the feed focuses it and selects the alert drawn there:
    // 80x24 gives the exchanges 14 lines (1-14), the feed starts at 15,
    // its titles at 16, its first row at 17.
    let alerts: Vec<String> = v
        .visible_alerts(&snap)
        .iter()
        .map(|a| a.fingerprint.clone())
        .collect();
    v.on_mouse(
        at(MouseEventKind::Down(MouseButton::Left), 30, 18),
        &snap,
        NOW,
    );
    assert_eq!(v.focus, Panel::Alerts);
    assert_eq!(v.current_alert(&snap).unwrap().fingerprint, alerts[1]);
    // A click below the last row selects nothing new.
    v.on_mouse(
        at(MouseEventKind::Down(MouseButton::Left), 30, 21),
        &snap,
        NOW,
    );
    assert_eq!(v.current_alert(&snap).unwrap().fingerprint, alerts[1]);
}

#[test]
fn a_replay_refuses_every_action_that_would_change_state() {
    let snap = ui_fixtures::exchange_down();
    let mut v = ViewState::new("test", Mode::Replay, Keymap::default(), Theme::default());
    for panel in ["", "tab"] {
        if !panel.is_empty() {
            v.on_key(key(panel), &snap, NOW);
        }
        for k in ["a", "t", "s", "o", "c"] {
            assert_eq!(v.on_key(key(k), &snap, NOW), Reaction::Redraw, "{k}");
            assert!(
                status_text(&v).starts_with("replay is read-only"),
                "{k}: {}",
                status_text(&v)
            );
            assert!(v.input.is_none(), "{k} opened no prompt");
        }
    }
    // Replay keys are for the player.
    assert_eq!(
        v.on_key(key("space"), &snap, NOW),
        Reaction::Replay(Action::ReplayPause)
    );
}

#[test]
fn an_action_result_fades_and_an_error_stays_longer() {
    use exwatch::ui::view::{STATUS_ERROR_FADE_MS, STATUS_FADE_MS};
    let snap = ui_fixtures::exchange_down();
    let mut v = view_with(Keymap::default());
    v.on_key(key("O"), &snap, NOW);
    assert!(v.fresh_status(NOW + STATUS_FADE_MS - 1).is_some());
    assert!(v.fresh_status(NOW + STATUS_FADE_MS).is_none());
    // An error: acknowledging from the exchanges panel.
    v.on_key(key("a"), &snap, NOW);
    assert!(v.status.as_ref().unwrap().error);
    assert!(v.fresh_status(NOW + STATUS_FADE_MS).is_some());
    assert!(v.fresh_status(NOW + STATUS_ERROR_FADE_MS).is_none());
}

#[test]
fn the_help_scrolls_when_it_does_not_fit_and_keys_under_it_do_nothing() {
    let snap = ui_fixtures::exchange_down();
    let mut v = view_with(Keymap::default());
    v.area = area(60, 14);
    v.on_key(key("?"), &snap, NOW);
    assert!(v.help);
    v.on_key(key("pagedown"), &snap, NOW);
    assert!(v.help_scroll > 0);
    let end = v.help_scroll;
    v.on_key(key("G"), &snap, NOW);
    assert!(v.help_scroll >= end);
    v.on_key(key("g"), &snap, NOW);
    assert_eq!(v.help_scroll, 0);
    // `a` under the help sends nothing.
    v.on_key(key("tab"), &snap, NOW);
    assert_eq!(v.on_key(key("a"), &snap, NOW), Reaction::None);
    v.on_key(key("esc"), &snap, NOW);
    assert!(!v.help);
}

#[test]
fn forcing_a_breaker_open_asks_and_only_y_sends() {
    let snap = ui_fixtures::exchange_down();
    let mut v = view_with(Keymap::default());
    v.on_key(key("G"), &snap, NOW);
    assert_eq!(v.on_key(key("o"), &snap, NOW), Reaction::Redraw);
    match &v.input {
        Some(exwatch::ui::view::Input::Confirm { question, .. }) => {
            assert_eq!(question, "force kraken/book breaker open?");
        }
        other => panic!("a question is asked: {other:?}"),
    }
    // Anything but `y` cancels, with a message, and sends nothing.
    for k in ["n", "esc", "Y", "enter", "o"] {
        if v.input.is_none() {
            v.on_key(key("o"), &snap, NOW);
        }
        assert_eq!(v.on_key(key(k), &snap, NOW), Reaction::Redraw, "{k}");
        assert!(v.input.is_none(), "{k}: the question is gone");
        let st = v.status.as_ref().expect("a status");
        assert!(st.text.starts_with("cancelled"), "{k}: {}", st.text);
    }
    v.on_key(key("o"), &snap, NOW);
    assert_eq!(
        v.on_key(key("y"), &snap, NOW),
        Reaction::Send(Command::ForceOpen {
            id: EndpointId::new("kraken", "book")
        })
    );
    assert_eq!(
        v.status.as_ref().map(|s| s.text.as_str()),
        Some("force open sent: kraken/book")
    );
    // Reset needs no question.
    assert!(matches!(
        v.on_key(key("c"), &snap, NOW),
        Reaction::Send(Command::ResetBreaker { .. })
    ));
}

#[test]
fn the_silences_list_opens_navigates_undoes_and_closes() {
    let snap = ui_fixtures::silences::silenced();
    let mut v = view_with(Keymap::default());
    // Outside the list, undo only says where it works.
    assert_eq!(v.on_key(key("u"), &snap, NOW), Reaction::Redraw);
    assert!(
        v.status
            .as_ref()
            .is_some_and(|s| s.text.contains("silences list (S)"))
    );
    v.on_key(key("S"), &snap, NOW);
    assert!(v.silences.open);
    let rows = exwatch::ui::silences::rows(&snap, NOW);
    assert_eq!(
        rows.iter()
            .map(|r| (r.what.as_str(), r.by.as_str(), r.when.as_str(), r.alerts))
            .collect::<Vec<_>>(),
        [
            ("silence #1 okx/book/*", "ana", "expires in 59m", 2),
            ("silence #2 kraken/*/*", "bob", "expires in 2h", 0),
            (
                "ack bybit/ticker/error_rate#1 error rate 100% over the last 8 polls",
                "carol",
                "acked 4m ago",
                2
            ),
        ]
    );
    // The first row is selected; `u` expires that silence.
    assert_eq!(
        v.on_key(key("u"), &snap, NOW),
        Reaction::Send(Command::Unsilence {
            id: 1,
            by: "alice".into()
        })
    );
    // Keys under the list do not reach the panels.
    assert_eq!(v.on_key(key("a"), &snap, NOW), Reaction::None);
    assert_eq!(v.on_key(key("o"), &snap, NOW), Reaction::None);
    assert!(v.input.is_none());
    // Down twice, past the end stays on the last: the acknowledgement.
    for _ in 0..3 {
        v.on_key(key("down"), &snap, NOW);
    }
    assert_eq!(
        v.on_key(key("u"), &snap, NOW),
        Reaction::Send(Command::Unacknowledge {
            incident: "bybit/ticker/error_rate#1".into(),
            by: "alice".into()
        })
    );
    v.on_key(key("k"), &snap, NOW);
    assert_eq!(
        v.on_key(key("u"), &snap, NOW),
        Reaction::Send(Command::Unsilence {
            id: 2,
            by: "alice".into()
        })
    );
    assert_eq!(v.on_key(key("esc"), &snap, NOW), Reaction::Redraw);
    assert!(!v.silences.open);
    // `S` toggles it too; `q` still quits from inside.
    v.on_key(key("S"), &snap, NOW);
    assert!(v.silences.open);
    v.on_key(key("S"), &snap, NOW);
    assert!(!v.silences.open);
    v.on_key(key("S"), &snap, NOW);
    assert_eq!(v.on_key(key("q"), &snap, NOW), Reaction::Quit);
}

#[test]
fn undo_on_a_row_that_vanished_is_refused_and_the_cursor_does_not_move() {
    let snap = ui_fixtures::silences::silenced();
    let mut v = view_with(Keymap::default());
    v.on_key(key("S"), &snap, NOW);
    v.on_key(key("j"), &snap, NOW); // silence #2
    // It is removed (another operator, or it expired) before `u`.
    let mut next = snap.clone();
    next.silences.retain(|s| s.silence.id != 2);
    assert_eq!(v.on_key(key("u"), &next, NOW), Reaction::Redraw);
    let text = status_text(&v);
    assert!(
        text.starts_with("nothing undone") && text.contains("silence #2 is gone"),
        "{text}"
    );
    assert_eq!(
        v.silences.selected,
        Some(exwatch::ui::silences::RowKey::Silence(2)),
        "the selection stays what was chosen"
    );
    // Same for an acknowledgement withdrawn meanwhile.
    v.on_key(key("G"), &snap, NOW);
    let mut next = snap.clone();
    next.acks.clear();
    assert_eq!(v.on_key(key("u"), &next, NOW), Reaction::Redraw);
    assert!(status_text(&v).contains("acknowledgement of bybit/ticker/error_rate#1 is gone"));
    // Moving from a lost selection starts at the first row.
    v.on_key(key("j"), &next, NOW);
    assert_eq!(
        v.on_key(key("u"), &next, NOW),
        Reaction::Send(Command::Unsilence {
            id: 1,
            by: "alice".into()
        })
    );
    // An empty list: nothing to undo.
    let empty = ui_fixtures::healthy();
    let mut v = view_with(Keymap::default());
    v.on_key(key("S"), &empty, NOW);
    assert_eq!(v.on_key(key("u"), &empty, NOW), Reaction::Redraw);
    assert!(status_text(&v).contains("no row selected"));
}

#[test]
fn a_replay_lists_silences_but_undoes_nothing() {
    let snap = ui_fixtures::silences::silenced();
    let mut v = ViewState::new("test", Mode::Replay, Keymap::default(), Theme::default());
    v.on_key(key("S"), &snap, NOW);
    assert_eq!(v.on_key(key("u"), &snap, NOW), Reaction::Redraw);
    assert!(status_text(&v).contains("read-only"));
}
