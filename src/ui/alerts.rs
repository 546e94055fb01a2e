//! The alert feed: open alerts first, newest first (the snapshot's order);
//! resolved ones only with `show resolved`. Severity and state are words
//! with a marker, so the feed reads the same without colour.

use super::fmt;
use super::theme::Theme;
use super::view::{Panel, ViewState};
use crate::model::{Alert, AlertState, Delivery, Severity};
use crate::state::Snapshot;
use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{HighlightSpacing, Paragraph, Row, Table, TableState};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Col {
    Sev,
    Age,
    Exchange,
    Endpoint,
    Title,
    Count,
    State,
    Delivery,
}

impl Col {
    fn title(self) -> &'static str {
        match self {
            Col::Sev => "SEV",
            Col::Age => "AGE",
            Col::Exchange => "EXCHANGE",
            Col::Endpoint => "ENDPOINT",
            Col::Title => "ALERT",
            Col::Count => "N",
            Col::State => "STATE",
            Col::Delivery => "DELIVERY",
        }
    }
}

fn columns(width: u16) -> Vec<(Col, u16)> {
    let fixed: [(Col, u16, bool); 7] = [
        (Col::Sev, 6, true),
        (Col::Age, 5, true),
        (Col::Exchange, 9, true),
        (Col::Endpoint, 8, true),
        (Col::Count, 4, true),
        (Col::State, 8, true),
        (Col::Delivery, 11, false),
    ];
    const TITLE_MIN: u16 = 16;
    let essential: u16 = fixed.iter().filter(|c| c.2).map(|c| c.1 + 1).sum();
    // Delivery grows on wide screens so sink names show.
    let delivery_w: u16 = match width {
        140.. => 24,
        100.. => 18,
        _ => 11,
    };
    let with_delivery = essential + delivery_w + 1 + TITLE_MIN <= width;
    let mut cols: Vec<(Col, u16)> = Vec::new();
    let used: u16 = essential + if with_delivery { delivery_w + 1 } else { 0 };
    let title_w = width.saturating_sub(used + 1).max(8);
    for (c, w, essential) in fixed {
        if c == Col::Count {
            cols.push((Col::Title, title_w));
        }
        if c == Col::Delivery && with_delivery {
            cols.push((c, delivery_w));
        } else if essential {
            cols.push((c, w));
        }
    }
    cols
}

pub fn render(frame: &mut Frame, area: Rect, snap: &Snapshot, view: &ViewState, now_ms: i64) {
    let t = &view.theme;
    let focused = view.focus == Panel::Alerts;
    let rows = view.visible_alerts(snap);
    let open = snap.alerts.iter().filter(|a| a.state.is_open()).count();
    let firing = snap
        .alerts
        .iter()
        .filter(|a| a.state == AlertState::Firing)
        .count();
    let resolved = snap.alerts.len() - open;
    let mut title = format!(" Alerts: {firing} firing, {open} open ");
    if resolved > 0 {
        title.push_str(&if view.show_resolved {
            format!("+ {resolved} resolved ")
        } else {
            format!("({resolved} resolved hidden) ")
        });
    }
    let block = t.block(title, focused);
    if rows.is_empty() {
        let msg = if snap.alerts.is_empty() {
            "no alerts"
        } else if !view.filter.is_empty() {
            "no alert matches the filter (Esc clears it)"
        } else {
            "no open alerts"
        };
        frame.render_widget(Paragraph::new(msg).style(t.dim()).block(block), area);
        return;
    }
    let cols = columns(area.width.saturating_sub(3));
    let header = Row::new(
        cols.iter()
            .map(|(c, _)| Line::styled(c.title(), t.title()))
            .collect::<Vec<_>>(),
    );
    let ages_at = view.frozen_at_ms.unwrap_or(now_ms);
    let table_rows: Vec<Row> = rows
        .iter()
        .map(|a| {
            let dim = if a.state == AlertState::Resolved {
                t.dim()
            } else {
                Style::new()
            };
            Row::new(
                cols.iter()
                    .map(|(c, w)| cell(*c, *w as usize, a, t, ages_at))
                    .collect::<Vec<_>>(),
            )
            .style(dim)
        })
        .collect();
    let widths: Vec<Constraint> = cols.iter().map(|(_, w)| Constraint::Length(*w)).collect();
    let table = Table::new(table_rows, widths)
        .header(header)
        .block(block)
        .column_spacing(1)
        .highlight_spacing(HighlightSpacing::Always)
        .highlight_symbol(if focused { t.marker() } else { " " })
        .row_highlight_style(if focused { t.selected() } else { Style::new() });
    let mut state = TableState::default().with_selected(view.alert_index(&rows));
    frame.render_stateful_widget(table, area, &mut state);
}

pub fn severity_span<'a>(s: Severity, t: &Theme) -> Span<'a> {
    match s {
        Severity::Emergency => Span::styled("!!!EMR", t.bad().add_modifier(Modifier::REVERSED)),
        Severity::Critical => Span::styled("!! CRI", t.bad()),
        Severity::Warning => Span::styled("!  WRN", t.warn()),
        Severity::Info => Span::styled("   inf", t.dim()),
    }
}

pub fn state_span<'a>(s: AlertState, t: &Theme) -> Span<'a> {
    match s {
        AlertState::Firing => Span::styled("FIRING", t.bad()),
        AlertState::Acknowledged => Span::styled("acked", t.warn()),
        AlertState::Silenced => Span::styled("silenced", t.dim()),
        AlertState::Resolved => Span::styled("resolved", t.ok()),
    }
}

/// One word for all sinks: the worst state wins.
pub fn delivery_summary(a: &Alert) -> (String, bool) {
    if a.delivery.is_empty() {
        return ("-".into(), false);
    }
    let total = a.delivery.len();
    let failed: Vec<&str> = a
        .delivery
        .iter()
        .filter(|(_, d)| matches!(d, Delivery::Failed { .. }))
        .map(|(s, _)| s.as_str())
        .collect();
    if !failed.is_empty() {
        return (format!("FAILED {}", failed.join(",")), true);
    }
    if let Some(attempts) = a
        .delivery
        .values()
        .filter_map(|d| match d {
            Delivery::Retrying { attempts, .. } => Some(*attempts),
            _ => None,
        })
        .max()
    {
        return (format!("retrying #{attempts}"), true);
    }
    let sent = a
        .delivery
        .values()
        .filter(|d| matches!(d, Delivery::Sent { .. }))
        .count();
    let pending = a
        .delivery
        .values()
        .filter(|d| matches!(d, Delivery::Pending))
        .count();
    if pending > 0 {
        return (format!("pending {sent}/{total}"), false);
    }
    if sent == 0 {
        return ("suppressed".into(), false);
    }
    (format!("sent {sent}/{total}"), false)
}

fn cell<'a>(c: Col, w: usize, a: &Alert, t: &Theme, now_ms: i64) -> Line<'a> {
    match c {
        Col::Sev => Line::from(severity_span(a.severity, t)),
        Col::Age => Line::raw(fmt::duration_ms(now_ms - a.first_seen_ms)).right_aligned(),
        Col::Exchange => Line::raw(fmt::truncate(&a.exchange, w, t)),
        Col::Endpoint => Line::raw(fmt::truncate(a.endpoint.as_deref().unwrap_or("*"), w, t)),
        Col::Title => Line::raw(fmt::truncate(&a.title, w, t)),
        Col::Count => Line::raw(format!("x{}", a.occurrences)).right_aligned(),
        Col::State => Line::from(state_span(a.state, t)),
        Col::Delivery => {
            let (text, bad) = delivery_summary(a);
            Line::styled(
                fmt::truncate(&text, w, t),
                if bad { t.bad() } else { t.dim() },
            )
        }
    }
}
