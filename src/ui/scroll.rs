//! Paging and scrolling, which need to know where things are drawn: a page
//! of rows is what the focused panel shows, the open detail pane scrolls by
//! its height, the help by the screen's. Kept out of `view.rs` so the view
//! state does not import the panels that read it.

use super::view::{Panel, Reaction, ViewState};
use crate::state::Snapshot;

impl ViewState {
    /// Scroll the help overlay by `by` lines (clamped to its end).
    pub(super) fn scroll_help(&mut self, by: i64) -> Reaction {
        let max = super::help::max_scroll(self);
        self.help_scroll = (i64::from(self.help_scroll) + by).clamp(0, i64::from(max)) as u16;
        Reaction::Redraw
    }

    /// A page up (`sign` -1) or down (+1): the open detail pane scrolls by
    /// its height; otherwise the focused panel's selection moves by the rows
    /// it shows.
    pub(super) fn page(&mut self, snap: &Snapshot, sign: i64, now_ms: i64) -> Reaction {
        let areas = super::layout::areas(self.area, snap, self);
        if let Some(d) = areas.detail {
            // The open detail pane scrolls; the rows stay.
            let page = i64::from(d.height.saturating_sub(3)).max(1);
            let max = super::detail::max_scroll(d, snap, self, now_ms);
            self.detail_scroll =
                (i64::from(self.detail_scroll) + sign * page).clamp(0, i64::from(max)) as u16;
            return Reaction::Redraw;
        }
        let panel = match self.focus {
            Panel::Exchanges => areas.exchanges,
            Panel::Alerts => areas.alerts,
        };
        // A page is the rows the panel shows (borders and titles aside).
        let page = panel.map_or(10, |r| i64::from(r.height.saturating_sub(3)).max(1));
        self.move_by(snap, sign * page)
    }
}
