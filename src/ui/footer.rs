//! The bottom line: the prompt being typed, the result of the last action,
//! or reminders of the main keys, built from the keymap.

use super::keymap::Action;
use super::view::{Input, ViewState};
use crate::state::Snapshot;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use strum::VariantArray;

/// Draw the footer. While the focused panel's selection has left the screen
/// (and no action result is shown), it says why. An action's result fades
/// ([`super::view::STATUS_FADE_MS`]). A replay lists its own keys, not the
/// live ones it refuses.
pub fn render(frame: &mut Frame, area: Rect, snap: &Snapshot, view: &ViewState, now_ms: i64) {
    let status = view.fresh_status(now_ms);
    let t = &view.theme;
    let mut spans: Vec<Span> = Vec::new();
    match &view.input {
        Some(Input::Filter(text)) => {
            spans.push(Span::styled(" filter: ", t.title()));
            spans.push(Span::raw(text.clone()));
            spans.push(Span::styled("_", t.accent()));
            spans.push(Span::styled("  (Enter keeps, Esc clears)", t.dim()));
        }
        Some(Input::Silence { target, text }) => {
            spans.push(Span::styled(
                format!(" silence {} for: ", target.label()),
                t.title(),
            ));
            spans.push(Span::raw(text.clone()));
            spans.push(Span::styled("_", t.accent()));
            spans.push(Span::styled(
                "  (e.g. 30m, 2h; Enter sends, Esc cancels)",
                t.dim(),
            ));
        }
        Some(Input::Confirm { question, .. }) => {
            spans.push(Span::styled(format!(" {question} y/n"), t.bad()));
            spans.push(Span::styled("  (y sends, any other key cancels)", t.dim()));
        }
        None => {}
    }
    let lost = status
        .is_none()
        .then(|| view.lost_selection(snap))
        .flatten()
        .map(|why| super::view::Status {
            text: format!("{why}: select another"),
            error: true,
        });
    if let Some(st) = status.or(lost.as_ref()) {
        spans.push(Span::styled(
            format!(" {} ", st.text),
            if st.error { t.bad() } else { t.ok() },
        ));
        if view.input.is_none() {
            spans.push(Span::styled(format!("{} ", t.sep()), t.dim()));
        }
    }
    if view.input.is_none() {
        let km = &view.keymap;
        // Help and quit always fit; the others in table order while there is room.
        let ascii = t.ascii;
        let replay = view.mode == super::view::Mode::Replay;
        let item_w = |a: Action| -> usize {
            match (a.footer_label(), km.keys_for(a).first()) {
                (Some(l), Some(k)) => k.label(ascii).chars().count() + l.chars().count() + 2,
                _ => 0,
            }
        };
        let mut room = (area.width as usize)
            .saturating_sub(Line::from(spans.clone()).width())
            .saturating_sub(item_w(Action::Help) + item_w(Action::Quit));
        // A replay's own keys first: they are what it is steered with.
        let mut order: Vec<Action> = Action::VARIANTS.to_vec();
        if replay {
            order.sort_by_key(|a| !a.replay_only());
        }
        for a in order {
            let Some(label) = a.footer_label() else {
                continue;
            };
            if (replay && a.live_only()) || (!replay && a.replay_only()) {
                continue;
            }
            // The first key is enough of a reminder; the help lists them all.
            let Some(key) = km.keys_for(a).first() else {
                continue;
            };
            if !matches!(a, Action::Help | Action::Quit) {
                if item_w(a) > room {
                    continue;
                }
                room -= item_w(a);
            }
            let mut active = false;
            if a == Action::ShowResolved {
                active = view.show_resolved;
            }
            if a == Action::Freeze {
                active = view.frozen_at_ms.is_some();
            }
            if a == Action::Details {
                active = view.detail;
            }
            let paused = view.replay.is_some_and(|r| r.paused);
            let label = if a == Action::ReplayPause && paused {
                active = true;
                "resume"
            } else {
                label
            };
            spans.push(Span::styled(format!(" {}", key.label(ascii)), t.accent()));
            spans.push(Span::styled(
                format!(" {label}"),
                if active { t.title() } else { t.dim() },
            ));
        }
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}
