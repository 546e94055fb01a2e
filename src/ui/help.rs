//! The help overlay, generated from the resolved keymap so it always shows
//! the keys actually bound. From 80 columns it lists the actions in two
//! columns, so the whole of it fits 80x24; on a smaller screen it scrolls
//! (up/down, PgUp/PgDn). In a replay the live-only actions are dimmed.

use super::keymap::DESCRIPTION_MAX;
use super::view::{Mode, ViewState};
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Paragraph};

/// The overlay's width and its lines, for a screen `width` wide.
fn content(view: &ViewState, width: u16) -> (u16, Vec<Line<'static>>) {
    let t = &view.theme;
    let km = &view.keymap;
    let replay = view.mode == Mode::Replay;
    let key_w = km
        .bindings()
        .map(|(a, _)| km.label_in(a, t.ascii).chars().count())
        .max()
        .unwrap_or(4)
        .max(4);
    let desc_w = km
        .bindings()
        .map(|(a, _)| a.description().chars().count())
        .max()
        .unwrap_or(DESCRIPTION_MAX);
    let entry_w = 1 + key_w + 2 + desc_w;
    let entries: Vec<Vec<Span<'static>>> = km
        .bindings()
        .map(|(a, _)| {
            let off = (replay && a.live_only()) || (!replay && a.replay_only());
            let desc = format!("{:<desc_w$}", a.description());
            vec![
                Span::styled(
                    format!(" {:<key_w$}  ", km.label_in(a, t.ascii)),
                    if off { t.dim() } else { t.accent() },
                ),
                if off {
                    Span::styled(desc, t.dim())
                } else {
                    Span::raw(desc)
                },
            ]
        })
        .collect();
    let two = usize::from(width.saturating_sub(2)) > 2 * entry_w;
    let mut lines: Vec<Line> = Vec::new();
    if two {
        let half = entries.len().div_ceil(2);
        for i in 0..half {
            let mut spans = entries[i].clone();
            if let Some(right) = entries.get(i + half) {
                spans.push(Span::raw(" "));
                spans.extend(right.iter().cloned());
            }
            lines.push(Line::from(spans));
        }
    } else {
        lines.extend(entries.into_iter().map(Line::from));
    }
    let legend = [
        format!(
            " {} closed  {} OPEN 2m = open for 2m  {} half-open",
            t.sym_closed(),
            t.sym_open(),
            t.sym_half_open()
        ),
        " LIMITER: budget used per tier (x exchange e endpoint a account".to_string(),
        " i ip). AGE: of the current episode. Rebind keys in [keys].".to_string(),
    ];
    if replay {
        lines.push(Line::styled(
            " A replay is read-only: dimmed keys work on a live dashboard.",
            t.warn(),
        ));
    }
    for l in legend {
        lines.push(Line::styled(l, t.dim()));
    }
    let want_w = if two {
        (2 * entry_w + 3) as u16
    } else {
        (entry_w + 2) as u16
    }
    .max(68);
    (want_w.min(width), lines)
}

/// How far the overlay can scroll on the view's screen, in lines.
pub fn max_scroll(view: &ViewState) -> u16 {
    let (_, lines) = content(view, view.area.width);
    let room = view.area.height.saturating_sub(2);
    (lines.len() as u16).saturating_sub(room)
}

pub fn render(frame: &mut Frame, area: Rect, view: &ViewState) {
    let t = &view.theme;
    let (want_w, lines) = content(view, area.width);
    let total = lines.len() as u16;
    let want_h = total + 2;
    let popup = super::popup::centered(area, want_w, want_h);
    let room = popup.height.saturating_sub(2);
    let scroll = view.help_scroll.min(total.saturating_sub(room));
    let title = if total > room {
        format!(
            " Keys, lines {}-{} of {total} (PgDn/PgUp; Esc or ? closes) ",
            scroll + 1,
            scroll + room
        )
    } else {
        " Keys (Esc or ? closes) ".to_string()
    };
    frame.render_widget(Clear, popup);
    frame.render_widget(
        Paragraph::new(lines)
            .scroll((scroll, 0))
            .block(t.block(title, true)),
        popup,
    );
}
