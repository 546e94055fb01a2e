//! The silences overlay (`S`): every live silence and acknowledged incident,
//! who set it, until when (or since when), how many open alerts it covers,
//! and undo (`u`) for the selected row.
//!
//! ```text
//! ┌ Silences and acknowledgements (2) ──────────────────────────────────┐
//! │ WHAT                                BY        WHEN            ALERTS │
//! │ silence #1 okx/book/*               ana       expires in 59m       2 │
//! │ ack okx/book/error_rate#1 body is…  ana       acked 2m ago         3 │
//! │                                                                      │
//! │ ↑/k ↓/j select  u undo  Esc/S close                                  │
//! └──────────────────────────────────────────────────────────────────────┘
//! ```
//!
//! The rows come from the snapshot ([`Snapshot::silences`],
//! [`Snapshot::acks`]); the selection is kept by identity (a silence id, an
//! incident id) and never moves to another row by itself: when the selected
//! row expires or is undone elsewhere, nothing is selected and undo is
//! refused with a message. Undo is a [`Command`] for the loop to send.

use super::fmt;
use super::keymap::{Action, Keymap};
use super::theme::Theme;
use crate::model::Command;
use crate::state::Snapshot;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Paragraph};

/// What a row is, by identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RowKey {
    /// A silence, by its engine id.
    Silence(u64),
    /// An acknowledged incident, by its id (`okx/book/error_rate#1`).
    Ack(String),
}

/// One row of the overlay, ready to print.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub key: RowKey,
    /// `silence #1 okx/book/*`, `ack okx/book/error_rate#1 <title>`.
    pub what: String,
    pub by: String,
    /// `expires in 59m` (`expired` once past), `acked 2m ago`.
    pub when: String,
    /// Open alerts it covers now.
    pub alerts: usize,
}

/// The rows for `snap` at `now_ms` (unix ms): silences by id, then
/// acknowledged incidents.
pub fn rows(snap: &Snapshot, now_ms: i64) -> Vec<Row> {
    let silences = snap.silences.iter().map(|s| {
        let left = s.silence.until_ms - now_ms;
        Row {
            key: RowKey::Silence(s.silence.id),
            what: format!("silence #{} {}", s.silence.id, s.silence.matcher_label()),
            by: s.silence.by.clone(),
            when: if left > 0 {
                format!("expires in {}", fmt::duration_ms(left))
            } else {
                "expired".into()
            },
            alerts: s.covers,
        }
    });
    let acks = snap.acks.iter().map(|a| Row {
        key: RowKey::Ack(a.ack.incident.clone()),
        what: format!("ack {} {}", a.ack.incident, a.title)
            .trim_end()
            .to_string(),
        by: a.ack.by.clone(),
        when: format!("acked {} ago", fmt::duration_ms(now_ms - a.ack.at_ms)),
        alerts: a.alerts,
    });
    silences.chain(acks).collect()
}

/// The overlay's state: open or not, and the selected row.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SilencesList {
    pub open: bool,
    pub selected: Option<RowKey>,
}

/// What a key did in the overlay, for the view to turn into its reaction.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The key means nothing here.
    Ignored,
    Redraw,
    /// Send this command; the status says what was sent.
    Send(Command, String),
    /// Refused: the status says why.
    Refused(String),
    Quit,
}

impl SilencesList {
    /// Open the overlay with the first row selected.
    pub fn open(&mut self, snap: &Snapshot, now_ms: i64) {
        self.open = true;
        self.selected = rows(snap, now_ms).into_iter().next().map(|r| r.key);
    }

    /// Index of the selected row among `rows`, if it is still there.
    pub fn index(&self, rows: &[Row]) -> Option<usize> {
        let sel = self.selected.as_ref()?;
        rows.iter().position(|r| r.key == *sel)
    }

    /// A key while the overlay is open. `operator` signs undo commands;
    /// `live` is false in a replay, which is read-only.
    pub fn on_action(
        &mut self,
        action: Action,
        snap: &Snapshot,
        now_ms: i64,
        operator: &str,
        live: bool,
    ) -> Outcome {
        let rows = rows(snap, now_ms);
        match action {
            Action::Quit => Outcome::Quit,
            Action::Back | Action::Silences => {
                self.open = false;
                Outcome::Redraw
            }
            Action::Up | Action::Down | Action::Top | Action::Bottom => {
                if rows.is_empty() {
                    return Outcome::Ignored;
                }
                let last = rows.len() as i64 - 1;
                let cur = self.index(&rows).map(|i| i as i64);
                let next = match (action, cur) {
                    (Action::Top, _) => 0,
                    (Action::Bottom, _) => last,
                    (_, None) if action == Action::Down => 0,
                    (_, None) => last,
                    (Action::Down, Some(i)) => (i + 1).min(last),
                    (_, Some(i)) => (i - 1).max(0),
                };
                self.selected = Some(rows[next as usize].key.clone());
                Outcome::Redraw
            }
            Action::Undo => {
                if !live {
                    return Outcome::Refused("nothing undone: a replay is read-only".into());
                }
                let Some(sel) = self.selected.clone() else {
                    return Outcome::Refused("nothing undone: no row selected".into());
                };
                let Some(row) = rows.iter().find(|r| r.key == sel) else {
                    let what = match &sel {
                        RowKey::Silence(id) => format!("silence #{id} is gone (expired or undone)"),
                        RowKey::Ack(inc) => {
                            format!("the acknowledgement of {inc} is gone (withdrawn or closed)")
                        }
                    };
                    return Outcome::Refused(format!("nothing undone: {what}; select another"));
                };
                match &row.key {
                    RowKey::Silence(id) => Outcome::Send(
                        Command::Unsilence {
                            id: *id,
                            by: operator.to_string(),
                        },
                        format!("unsilence sent: {}", row.what),
                    ),
                    RowKey::Ack(incident) => Outcome::Send(
                        Command::Unacknowledge {
                            incident: incident.clone(),
                            by: operator.to_string(),
                        },
                        format!("unacknowledge sent: {incident}"),
                    ),
                }
            }
            _ => Outcome::Ignored,
        }
    }
}

/// Draw the overlay centred over `area`, leaving its last line (the footer,
/// where results show) uncovered.
pub fn render(
    frame: &mut Frame,
    area: Rect,
    snap: &Snapshot,
    list: &SilencesList,
    theme: &Theme,
    keymap: &Keymap,
    now_ms: i64,
) {
    let t = theme;
    let rows = rows(snap, now_ms);
    let want_w = 100u16.min(area.width);
    let inner_w = want_w.saturating_sub(2) as usize;
    // WHAT gets what the fixed columns leave.
    let (by_w, when_w, n_w) = (10usize, 15usize, 6usize);
    let what_w = inner_w.saturating_sub(by_w + when_w + n_w + 5).max(10);
    let cell = |s: &str, w: usize| format!("{:<w$}", fmt::truncate(s, w, t));
    let mut lines = vec![Line::styled(
        format!(
            " {} {} {} {:>n_w$}",
            cell("WHAT", what_w),
            cell("BY", by_w),
            cell("WHEN", when_w),
            "ALERTS"
        ),
        t.title(),
    )];
    let sel = list.index(&rows);
    // Rows that fit between the header and the key line; scrolled so the
    // selected one shows.
    let fit = (area.height.saturating_sub(1 + 2 + 1 + 2) as usize).max(1);
    let skip = sel.map_or(0, |i| (i + 1).saturating_sub(fit));
    for (i, r) in rows.iter().enumerate().skip(skip).take(fit) {
        let text = format!(
            " {} {} {} {:>n_w$}",
            cell(&r.what, what_w),
            cell(&r.by, by_w),
            cell(&r.when, when_w),
            r.alerts
        );
        lines.push(if sel == Some(i) {
            Line::styled(text, t.selected())
        } else {
            Line::raw(text)
        });
    }
    if rows.is_empty() {
        lines.push(Line::styled(
            format!(
                " Nothing is silenced or acknowledged ({} silences, {} acknowledges).",
                keymap.label_in(Action::Silence, t.ascii),
                keymap.label_in(Action::Acknowledge, t.ascii)
            ),
            t.dim(),
        ));
    } else if sel.is_none() {
        lines.push(Line::styled(
            " The selected row is gone (expired or undone): select another.",
            t.bad(),
        ));
    }
    lines.push(Line::raw(""));
    lines.push(Line::from(vec![
        Span::styled(
            format!(
                " {} {} ",
                keymap.label_in(Action::Up, t.ascii),
                keymap.label_in(Action::Down, t.ascii)
            ),
            t.accent(),
        ),
        Span::styled("select  ", t.dim()),
        Span::styled(
            format!("{} ", keymap.label_in(Action::Undo, t.ascii)),
            t.accent(),
        ),
        Span::styled("undo (expire the silence / withdraw the ack)  ", t.dim()),
        Span::styled(
            format!(
                "{}/{} ",
                keymap.label_in(Action::Back, t.ascii),
                keymap.label_in(Action::Silences, t.ascii)
            ),
            t.accent(),
        ),
        Span::styled("close", t.dim()),
    ]));
    let room = area.height.saturating_sub(1);
    let shown = if rows.len() > fit {
        format!(
            "rows {}-{} of {}",
            skip + 1,
            (skip + fit).min(rows.len()),
            rows.len()
        )
    } else {
        rows.len().to_string()
    };
    let want_h = (lines.len() as u16 + 2).min(room);
    // Above the footer line, which keeps the status of an undo visible.
    let above_footer = Rect {
        height: area.height.saturating_sub(1),
        ..area
    };
    let popup = super::popup::centered(above_footer, want_w, want_h);
    frame.render_widget(Clear, popup);
    frame.render_widget(
        Paragraph::new(lines)
            .block(t.block(format!(" Silences and acknowledgements ({shown}) "), true)),
        popup,
    );
}
