//! The help overlay, generated from the resolved keymap so it always shows
//! the keys actually bound.

use super::view::ViewState;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Paragraph, Wrap};

pub fn render(frame: &mut Frame, area: Rect, view: &ViewState) {
    let t = &view.theme;
    let km = &view.keymap;
    let key_w = km
        .bindings()
        .map(|(a, _)| km.label(a).chars().count())
        .max()
        .unwrap_or(4)
        .max(4);
    let mut lines: Vec<Line> = km
        .bindings()
        .map(|(a, _)| {
            Line::from(vec![
                Span::styled(format!(" {:<key_w$}  ", km.label(a)), t.accent()),
                Span::raw(a.description()),
            ])
        })
        .collect();
    lines.push(Line::styled(
        format!(
            " {} closed {} OPEN (retry in) {} half-open; LIMITER: budget used per tier",
            t.sym_closed(),
            t.sym_open(),
            t.sym_half_open()
        ),
        t.dim(),
    ));
    lines.push(Line::styled(
        " (x exchange e endpoint a account i ip). Rebind keys in [keys].",
        t.dim(),
    ));
    let want_h = lines.len() as u16 + 2;
    let want_w = 74u16;
    let [_, vert, _] = Layout::vertical([
        Constraint::Fill(1),
        Constraint::Length(want_h.min(area.height)),
        Constraint::Fill(1),
    ])
    .areas(area);
    let [_, popup, _] = Layout::horizontal([
        Constraint::Fill(1),
        Constraint::Length(want_w.min(area.width)),
        Constraint::Fill(1),
    ])
    .areas(vert);
    frame.render_widget(Clear, popup);
    frame.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .block(t.block(" Keys (Esc or ? closes) ".into(), true)),
        popup,
    );
}
