//! The alert feed: open alerts first, by severity then the newest episode
//! ([`super::sort`]); resolved ones only with `show resolved`. Severity and
//! state are words with a marker, so the feed reads the same without colour.
//! `AGE` is the age of the current episode; titles drop the
//! `exchange/endpoint:` their columns already show; the selected alert's
//! triage, once it arrives, is a line under the table.

use super::fmt;
use super::pick::Target;
use super::theme::Theme;
use super::view::{Panel, ViewState};
use crate::model::{Alert, AlertState, Delivery, Severity};
use crate::state::Snapshot;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
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
    // Below this the delivery column gives way to the title.
    const TITLE_MIN: u16 = 26;
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

/// The table's part of the feed's inner area and the triage strip under it,
/// if the selected alert has a triage.
pub fn split(inner: Rect, snap: &Snapshot, view: &ViewState) -> (Rect, Option<Rect>) {
    let has_triage = matches!(view.alert_target(snap), Target::Here(a) if a.triage.is_some());
    if !has_triage || inner.height < 4 {
        return (inner, None);
    }
    let [table, strip] =
        Layout::vertical([Constraint::Fill(1), Constraint::Length(1)]).areas(inner);
    (table, Some(strip))
}

/// The title without the `exchange/endpoint` (or `exchange`) it starts
/// with, which the feed's columns show: `okx/book: bad payload (crossed)`
/// reads `bad payload (crossed)`, `okx/book degraded: …` reads `degraded: …`.
pub fn short_title(a: &Alert) -> &str {
    let ep = a.endpoint.as_deref().unwrap_or("*");
    let mut prefixes = vec![format!("{}/{ep}", a.exchange), a.exchange.clone()];
    if ep != "*" {
        prefixes.push(format!("{}/*", a.exchange));
    }
    for p in prefixes {
        if let Some(rest) = a.title.strip_prefix(p.as_str())
            && (rest.starts_with(':') || rest.starts_with(' '))
        {
            let rest = rest.trim_start_matches(':').trim_start();
            if !rest.is_empty() {
                return rest;
            }
        }
    }
    &a.title
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
    let block_inner = Rect {
        x: area.x + 1,
        y: area.y + 1,
        width: area.width.saturating_sub(2),
        height: area.height.saturating_sub(2),
    };
    let (table_area, strip_area) = split(block_inner, snap, view);
    let visible = table_area.height.saturating_sub(1) as usize;
    let selected = view.alert_index(&rows);
    let offset = super::layout::offset(selected, rows.len(), visible);
    let shown = visible.min(rows.len() - offset.min(rows.len()));
    let mut title = format!(" Alerts: {firing} firing, {open} open ");
    if resolved > 0 {
        title.push_str(&if view.show_resolved {
            format!("+ {resolved} resolved ")
        } else {
            format!("({resolved} resolved hidden) ")
        });
    }
    if shown < rows.len() {
        title.push_str(&format!(
            "{} {} ",
            t.dot(),
            super::layout::rows_label(offset, shown, rows.len(), t.ascii)
        ));
    }
    title.push_str(&format!("{} {} ", t.dot(), view.alert_order.label()));
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
    frame.render_widget(block, area);
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
        .column_spacing(1)
        .highlight_spacing(HighlightSpacing::Always)
        .highlight_symbol(if focused { t.marker() } else { " " })
        .row_highlight_style(if focused { t.selected() } else { Style::new() });
    let mut state = TableState::default()
        .with_offset(offset)
        .with_selected(selected);
    frame.render_stateful_widget(table, table_area, &mut state);
    if let (Some(strip), Target::Here(a)) = (strip_area, view.alert_target(snap))
        && let Some(tr) = &a.triage
    {
        let mut text = format!(
            "{} triage ({}, escalation {}/5): {}",
            t.marker(),
            tr.source.as_str(),
            tr.escalation,
            tr.summary
        );
        if let Some(first) = tr.suggested_actions.first() {
            text.push_str(&format!(" {} do: {first}", t.dot()));
        }
        frame.render_widget(
            Paragraph::new(fmt::truncate(&text, strip.width as usize, t)).style(t.accent()),
            strip,
        );
    }
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
    let sinks = |is: fn(&Delivery) -> bool| -> Vec<&str> {
        a.delivery
            .iter()
            .filter(|(_, d)| is(d))
            .map(|(s, _)| s.as_str())
            .collect()
    };
    let failed = sinks(|d| matches!(d, Delivery::Failed { .. }));
    if !failed.is_empty() {
        return (format!("FAILED {}", failed.join(",")), true);
    }
    // Sent but never answered: it may have arrived, nobody confirmed it.
    let unconfirmed = sinks(|d| matches!(d, Delivery::Unconfirmed { .. }));
    if !unconfirmed.is_empty() {
        return (format!("UNCONFIRMED {}", unconfirmed.join(",")), true);
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
        Col::Age => Line::raw(fmt::duration_ms(now_ms - a.episode_start())).right_aligned(),
        Col::Exchange => Line::raw(fmt::truncate(&a.exchange, w, t)),
        Col::Endpoint => Line::raw(fmt::truncate(a.endpoint.as_deref().unwrap_or("*"), w, t)),
        Col::Title => Line::raw(fmt::truncate(short_title(a), w, t)),
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
