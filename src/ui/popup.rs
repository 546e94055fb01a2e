//! Where an overlay goes: the middle of the screen. A leaf, so any panel
//! can use it without importing the view.

use ratatui::layout::{Constraint, Layout, Rect};

/// A popup of `width` x `height` (each cut to `area`) in the middle of `area`.
pub fn centered(area: Rect, width: u16, height: u16) -> Rect {
    let [_, vert, _] = Layout::vertical([
        Constraint::Fill(1),
        Constraint::Length(height.min(area.height)),
        Constraint::Fill(1),
    ])
    .areas(area);
    let [_, popup, _] = Layout::horizontal([
        Constraint::Fill(1),
        Constraint::Length(width.min(area.width)),
        Constraint::Fill(1),
    ])
    .areas(vert);
    popup
}
