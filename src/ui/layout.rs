//! Where each panel goes, shared by drawing and by the mouse (a click is
//! mapped back to the row drawn under it).
//!
//! Heights are stable: they depend on the screen and on the number of
//! endpoint rows, never on the number of alerts, so panels do not jump as
//! alerts come and go. The alert feed always keeps at least
//! [`ALERTS_MIN_SHARE`] of the height; the exchanges panel takes what its
//! rows need of the rest, and rows it cannot show are counted in its title
//! (`rows 1–11 of 15`) while the rows with a problem come first.

use super::view::{Panel, ViewState};
use crate::state::Snapshot;
use ratatui::layout::{Constraint, Layout, Rect};

/// Below this the dashboard shows a message instead of panels.
pub const MIN_WIDTH: u16 = 60;
pub const MIN_HEIGHT: u16 = 12;
/// From this width the detail pane sits beside the panels instead of replacing one.
pub const SIDE_DETAIL_WIDTH: u16 = 150;
/// The alert feed's least share of the panels' height, in fifths.
pub const ALERTS_MIN_SHARE: u16 = 2;

/// The rectangles of one frame; a panel not drawn is `None`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Areas {
    pub header: Rect,
    pub footer: Rect,
    pub exchanges: Option<Rect>,
    pub alerts: Option<Rect>,
    pub detail: Option<Rect>,
    /// The terminal is below [`MIN_WIDTH`]x[`MIN_HEIGHT`]: only a message.
    pub too_small: bool,
}

/// Lay out a frame of `area` for this view.
pub fn areas(area: Rect, snap: &Snapshot, view: &ViewState) -> Areas {
    if area.width < MIN_WIDTH || area.height < MIN_HEIGHT {
        return Areas {
            too_small: true,
            ..Areas::default()
        };
    }
    let [header, body, footer] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Fill(1),
        Constraint::Length(1),
    ])
    .areas(area);
    let side = view.detail && body.width >= SIDE_DETAIL_WIDTH;
    let (panels, side_area) = if side {
        let [l, r] =
            Layout::horizontal([Constraint::Fill(1), Constraint::Length(body.width * 2 / 5)])
                .areas(body);
        (l, Some(r))
    } else {
        (body, None)
    };
    let rows = view.visible_endpoints(snap).len() as u16;
    let alerts_min = (panels.height * ALERTS_MIN_SHARE / 5).max(5);
    let ex_h = (rows + 3)
        .min(panels.height.saturating_sub(alerts_min))
        .max(5);
    let [top, bottom] =
        Layout::vertical([Constraint::Length(ex_h), Constraint::Fill(1)]).areas(panels);
    let (exchanges, alerts, detail) = match (side_area, view.detail, view.focus) {
        (Some(r), _, _) => (Some(top), Some(bottom), Some(r)),
        (None, true, Panel::Exchanges) => (Some(top), None, Some(bottom)),
        (None, true, Panel::Alerts) => {
            let [d, a] = Layout::vertical([Constraint::Fill(3), Constraint::Fill(2)]).areas(panels);
            (None, Some(a), Some(d))
        }
        (None, false, _) => (Some(top), Some(bottom), None),
    };
    Areas {
        header,
        footer,
        exchanges,
        alerts,
        detail,
        too_small: false,
    }
}

/// The first row shown of a table of `len` rows with `visible` lines for
/// rows, so that the selected row is on screen (the last line when it has
/// to scroll), as ratatui's table does from offset 0.
pub fn offset(selected: Option<usize>, len: usize, visible: usize) -> usize {
    match selected {
        Some(i) if visible > 0 && i >= visible => {
            (i + 1 - visible).min(len.saturating_sub(visible))
        }
        _ => 0,
    }
}

/// `1–11 of 15` when not every row fits, else `15`.
pub fn rows_label(first: usize, shown: usize, len: usize, ascii: bool) -> String {
    if shown >= len {
        return len.to_string();
    }
    let dash = if ascii { "-" } else { "–" };
    format!("rows {}{dash}{} of {len}", first + 1, first + shown)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offset_keeps_the_selection_on_screen() {
        assert_eq!(offset(None, 20, 5), 0);
        assert_eq!(offset(Some(3), 20, 5), 0);
        assert_eq!(offset(Some(5), 20, 5), 1);
        assert_eq!(offset(Some(19), 20, 5), 15);
        assert_eq!(offset(Some(2), 3, 5), 0);
        assert_eq!(rows_label(0, 11, 15, false), "rows 1–11 of 15");
        assert_eq!(rows_label(0, 15, 15, true), "15");
    }
}
