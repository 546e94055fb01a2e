//! The mouse: a click on a row selects it (and focuses its panel), the wheel
//! moves the selection of the panel under the pointer, or scrolls the
//! detail pane or the help overlay. Rows are found with the same layout the
//! frame was drawn with ([`super::layout`]). Holding Shift while dragging
//! selects text in most terminals, as usual with mouse-aware programs.

use super::layout::{self, Areas};
use super::pick::AlertPick;
use super::view::{Panel, Reaction, ViewState};
use crate::model::EndpointId;
use crate::state::Snapshot;
use crossterm::event::{MouseButton, MouseEvent, MouseEventKind};
use ratatui::layout::{Position, Rect};

/// Lines the wheel scrolls the detail pane or the help by.
const WHEEL_LINES: i64 = 3;

impl ViewState {
    /// Apply one mouse event (screen cells, 0-based, as crossterm reports).
    pub fn on_mouse(&mut self, ev: MouseEvent, snap: &Snapshot, now_ms: i64) -> Reaction {
        let at = Position::new(ev.column, ev.row);
        let wheel = match ev.kind {
            MouseEventKind::ScrollUp => -1,
            MouseEventKind::ScrollDown => 1,
            MouseEventKind::Down(MouseButton::Left) => 0,
            _ => return Reaction::None,
        };
        if self.help {
            if wheel == 0 {
                return Reaction::None;
            }
            let max = super::help::max_scroll(self);
            self.help_scroll =
                (i64::from(self.help_scroll) + wheel * WHEEL_LINES).clamp(0, i64::from(max)) as u16;
            return Reaction::Redraw;
        }
        if self.input.is_some() {
            // A prompt is open: the keyboard finishes it first.
            return Reaction::None;
        }
        let areas = layout::areas(self.area, snap, self);
        if let Some(d) = areas.detail
            && d.contains(at)
        {
            if wheel == 0 {
                return Reaction::None;
            }
            let max = super::detail::max_scroll(d, snap, self, now_ms);
            self.detail_scroll = (i64::from(self.detail_scroll) + wheel * WHEEL_LINES)
                .clamp(0, i64::from(max)) as u16;
            return Reaction::Redraw;
        }
        let Some(panel) = panel_at(&areas, at) else {
            return Reaction::None;
        };
        if self.focus != panel {
            self.focus = panel;
            self.pin(snap);
        }
        self.status = None;
        if wheel != 0 {
            return self.step(snap, wheel);
        }
        match row_at(self, snap, &areas, panel, at) {
            Some(i) => {
                self.select_row(snap, panel, i);
                Reaction::Redraw
            }
            None => Reaction::Redraw,
        }
    }

    fn step(&mut self, snap: &Snapshot, by: i64) -> Reaction {
        let key = if by < 0 {
            super::keymap::Action::Up
        } else {
            super::keymap::Action::Down
        };
        match self.keymap.keys_for(key).first() {
            Some(k) => {
                let k = *k;
                self.on_key(k, snap, snap.last_event_ms)
            }
            None => Reaction::None,
        }
    }

    fn select_row(&mut self, snap: &Snapshot, panel: Panel, i: usize) {
        match panel {
            Panel::Exchanges => {
                if let Some((ex, ep)) = self.visible_endpoints(snap).get(i) {
                    self.selected_endpoint = Some(EndpointId::new(&ex.name, &ep.name));
                }
            }
            Panel::Alerts => {
                if let Some(a) = self.visible_alerts(snap).get(i) {
                    self.selected_alert = Some(AlertPick::of(a));
                }
            }
        }
        self.detail_scroll = 0;
    }
}

fn panel_at(areas: &Areas, at: Position) -> Option<Panel> {
    if areas.exchanges.is_some_and(|r| r.contains(at)) {
        Some(Panel::Exchanges)
    } else if areas.alerts.is_some_and(|r| r.contains(at)) {
        Some(Panel::Alerts)
    } else {
        None
    }
}

/// The index (among the panel's visible rows) of the row drawn at `at`.
fn row_at(
    view: &ViewState,
    snap: &Snapshot,
    areas: &Areas,
    panel: Panel,
    at: Position,
) -> Option<usize> {
    // (first row's line, lines for rows, rows, selected)
    let (rows_top, visible, len, selected) = match panel {
        Panel::Exchanges => {
            let r = areas.exchanges?;
            let rows = view.visible_endpoints(snap);
            (
                r.y + 2,
                r.height.saturating_sub(3),
                rows.len(),
                view.endpoint_index(&rows),
            )
        }
        Panel::Alerts => {
            let r = areas.alerts?;
            let inner = Rect {
                x: r.x + 1,
                y: r.y + 1,
                width: r.width.saturating_sub(2),
                height: r.height.saturating_sub(2),
            };
            let (table, _) = super::alerts::split(inner, snap, view);
            let rows = view.visible_alerts(snap);
            (
                table.y + 1,
                table.height.saturating_sub(1),
                rows.len(),
                view.alert_index(&rows),
            )
        }
    };
    if at.y < rows_top || at.y >= rows_top + visible {
        return None;
    }
    let offset = layout::offset(selected, len, usize::from(visible));
    let i = offset + usize::from(at.y - rows_top);
    (i < len).then_some(i)
}
