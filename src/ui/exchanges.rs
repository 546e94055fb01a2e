//! One row per (exchange, endpoint): breaker, latency sparkline and
//! percentiles, error rate, limiter fill and waits, data age, poll interval,
//! last outcome. Columns are dropped by priority when the panel is narrow,
//! so 80 columns stays readable and 200 shows everything.

use super::col::Col;
use super::fmt;
use super::theme::Theme;
use super::view::{Panel, ViewState};
use crate::model::BreakerState;
use crate::model::Tier;
use crate::state::{EndpointView, ExchangeView, Snapshot};
use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{HighlightSpacing, Paragraph, Row, Table, TableState};

/// Columns in display order with their width. The exchange's own error
/// (`LAST`) comes right after the essential columns: it keeps a third of
/// the row (two fifths from 100 columns, up to 60) and the sparkline and
/// minor figures go first.
/// `breaker_wide` is whether the breaker column has room for its retry time.
/// `endpoint_w`: the ENDPOINT column's width (8, wider for the longest
/// name shown, up to 16, so stream rows `ws:book:BTCUSDT` stay readable).
fn columns(width: u16, endpoint_w: u16) -> (Vec<(Col, u16)>, bool) {
    let last_w = if width >= 100 {
        width * 2 / 5
    } else {
        width / 3
    }
    .clamp(16, 60);
    // (column, width, priority: lower is kept first)
    let all: [(Col, u16, u8); 12] = [
        (Col::Exchange, 9, 0),
        (Col::Endpoint, endpoint_w, 0),
        (Col::Breaker, 11, 0),
        (Col::Spark, 10, 3),
        (Col::P50, 6, 5),
        (Col::P99, 6, 2),
        (Col::Err, 4, 0),
        (Col::Limit, 9, 3),
        (Col::Wait, 6, 5),
        (Col::Age, 5, 0),
        (Col::Poll, 5, 6),
        (Col::Last, last_w, 1),
    ];
    let mut keep: Vec<bool> = vec![false; all.len()];
    let mut used: u16 = 0;
    for prio in 0..=6u8 {
        for (i, (_, w, p)) in all.iter().enumerate() {
            if *p == prio && used + w < width {
                keep[i] = true;
                used += w + 1;
            }
        }
    }
    let mut cols: Vec<(Col, u16)> = all
        .iter()
        .zip(keep)
        .filter(|(_, k)| *k)
        .map(|((c, w, _), _)| (*c, *w))
        .collect();
    // Spare room: the breaker says when it retries, the sparkline grows to
    // 40, the last-outcome column takes the rest.
    let mut spare = width.saturating_sub(used);
    let breaker_wide = spare >= BREAKER_WIDE - 11;
    for (c, w) in cols.iter_mut() {
        if *c == Col::Breaker && breaker_wide {
            spare -= BREAKER_WIDE - *w;
            *w = BREAKER_WIDE;
        }
    }
    for (c, w) in cols.iter_mut() {
        if *c == Col::Spark {
            let grow = (spare / 2).min(30);
            *w += grow;
            spare -= grow;
        }
    }
    for (c, w) in cols.iter_mut() {
        if *c == Col::Last {
            *w += spare;
        }
    }
    (cols, breaker_wide)
}

/// Width of the breaker column with its retry time: `✖ OPEN 12m, retry 30s`.
const BREAKER_WIDE: u16 = 21;

pub fn render(frame: &mut Frame, area: Rect, snap: &Snapshot, view: &ViewState, now_ms: i64) {
    let t = &view.theme;
    let focused = view.focus == Panel::Exchanges;
    let rows = view.visible_endpoints(snap);
    let visible = area.height.saturating_sub(3) as usize;
    let selected = view.endpoint_index(&rows);
    let offset = super::layout::offset(selected, rows.len(), visible);
    let shown = visible.min(rows.len() - offset.min(rows.len()));
    let mut title = format!(
        " Exchanges {} {} {} ",
        super::layout::rows_label(offset, shown, rows.len(), t.ascii),
        t.dot(),
        view.endpoint_order.label()
    );
    if !view.filter.is_empty() {
        title.push_str(&format!("{} filter: {} ", t.dot(), view.filter));
    }
    let block = t.block(title, focused);
    if rows.is_empty() {
        let msg = if snap.exchanges.is_empty() {
            "waiting for the first events from the workers..."
        } else {
            "no endpoint matches the filter (Esc clears it)"
        };
        frame.render_widget(Paragraph::new(msg).style(t.dim()).block(block), area);
        return;
    }
    // Borders and the selection marker.
    let inner_w = area.width.saturating_sub(3);
    let longest = rows.iter().map(|(_, ep)| ep.name.chars().count()).max();
    let endpoint_w = longest.unwrap_or(8).clamp(8, 16) as u16;
    let (cols, breaker_wide) = columns(inner_w, endpoint_w);
    let header = Row::new(
        cols.iter()
            .map(|(c, _)| Line::styled(c.title(), t.title()))
            .collect::<Vec<_>>(),
    );
    let ages_at = view.frozen_at_ms.unwrap_or(now_ms);
    let mut prev_exchange: Option<&str> = None;
    let table_rows: Vec<Row> = rows
        .iter()
        .map(|(ex, ep)| {
            let first = prev_exchange != Some(ex.name.as_str());
            prev_exchange = Some(ex.name.as_str());
            Row::new(
                cols.iter()
                    .map(|(c, w)| cell(*c, *w, ex, ep, first, (breaker_wide, t, ages_at)))
                    .collect::<Vec<_>>(),
            )
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
    let mut state = TableState::default()
        .with_offset(offset)
        .with_selected(selected);
    frame.render_stateful_widget(table, area, &mut state);
}

fn cell<'a>(
    c: Col,
    w: u16,
    ex: &ExchangeView,
    ep: &EndpointView,
    first_of_exchange: bool,
    (breaker_wide, t, now_ms): (bool, &Theme, i64),
) -> Line<'a> {
    let w = w as usize;
    if let Some(sv) = &ep.stream
        && let Some(line) = super::stream_rows::cell(c, w, &ep.name, sv, t)
    {
        return line;
    }
    match c {
        Col::Exchange => {
            if first_of_exchange {
                let style = if ex.healthy { t.title() } else { t.bad() };
                Line::styled(fmt::truncate(&ex.name, w, t), style)
            } else {
                Line::raw("")
            }
        }
        Col::Endpoint => Line::raw(fmt::truncate(&ep.name, w, t)),
        Col::Breaker => breaker(ep, breaker_wide, t, now_ms),
        Col::Spark => {
            let style = if ep.healthy() { t.accent() } else { t.warn() };
            Line::styled(fmt::sparkline(&ep.recent_latency_us, w, t), style)
        }
        Col::P50 => Line::raw(
            ep.p50_us
                .map(|v| fmt::latency_us(v, t))
                .unwrap_or_else(|| "-".into()),
        )
        .right_aligned(),
        Col::P99 => Line::raw(
            ep.p99_us
                .map(|v| fmt::latency_us(v, t))
                .unwrap_or_else(|| "-".into()),
        )
        .right_aligned(),
        Col::Err => {
            let pct = (ep.error_rate * 100.0).round() as u64;
            let style = if ep.error_rate >= 0.2 {
                t.bad()
            } else if ep.error_rate > 0.0 {
                t.warn()
            } else {
                Style::new()
            };
            Line::styled(format!("{pct}%"), style).right_aligned()
        }
        Col::Limit => limiter(ep, w, t),
        Col::Wait => {
            if ep.limiter_waited_ms == 0 {
                Line::styled("-", t.dim()).right_aligned()
            } else {
                Line::styled(fmt::duration_ms(ep.limiter_waited_ms as i64), t.warn())
                    .right_aligned()
            }
        }
        Col::Age => match ep.data_age_ms(now_ms) {
            None => Line::styled("-", t.dim()).right_aligned(),
            Some(age) => {
                let interval = ep.interval_ms.max(1) as i64;
                let style = if age > interval * 10 {
                    t.bad()
                } else if age > interval * 3 {
                    t.warn()
                } else {
                    Style::new()
                };
                Line::styled(fmt::duration_ms(age), style).right_aligned()
            }
        },
        Col::Poll => Line::raw(fmt::interval_ms(ep.interval_ms)).right_aligned(),
        // A held row says until when first, then its error (or why).
        Col::Last if let Some(hold) = ep.held_at(now_ms) => {
            let (why, style) = match &ep.last {
                Some(s) if !s.outcome.is_ok() => (last_error(s), t.bad()),
                _ => (hold.why.clone(), t.warn()),
            };
            let text = format!("held until {}: {why}", fmt::clock(hold.until_ms));
            Line::styled(fmt::truncate(&text, w, t), style)
        }
        Col::Last if let Some(since) = ep.stalled_since_ms => {
            let text = format!("hung: no answer for {}", fmt::duration_ms(now_ms - since));
            Line::styled(fmt::truncate(&text, w, t), t.bad())
        }
        Col::Last => match &ep.last {
            None => Line::styled("no poll yet", t.dim()),
            Some(s) if s.outcome.is_ok() => Line::styled(
                fmt::truncate(s.summary.as_deref().unwrap_or("ok"), w, t),
                t.dim(),
            ),
            Some(s) => Line::styled(fmt::truncate(&last_error(s), w, t), t.bad()),
        },
    }
}

/// A failed poll as `label: detail` (`http 503: Service Unavailable`).
fn last_error(s: &crate::model::Sample) -> String {
    let detail = s.outcome.detail();
    if detail.is_empty() {
        s.outcome.label()
    } else {
        format!("{}: {detail}", s.outcome.label())
    }
}

/// Symbol and word, coloured: never colour alone. An open or half-open
/// breaker says for how long it has been away from closed (`✖ OPEN 2m`);
/// with `wide`, also when it next lets a probe through (`, retry 30s`) or
/// that an operator forced it (`, forced`).
fn breaker<'a>(ep: &EndpointView, wide: bool, t: &Theme, now_ms: i64) -> Line<'a> {
    let since = ep
        .breaker
        .tripped_at_ms
        .map(|at| format!(" {}", fmt::duration_ms(now_ms - at)))
        .unwrap_or_default();
    match ep.breaker.state {
        BreakerState::Closed => Line::from(vec![
            Span::styled(t.sym_closed(), t.ok()),
            Span::raw(" closed"),
        ]),
        BreakerState::HalfOpen => Line::from(vec![
            Span::styled(t.sym_half_open(), t.warn()),
            Span::styled(
                format!(" {}{since}", if wide { "half-open" } else { "half" }),
                t.warn(),
            ),
        ]),
        BreakerState::Open => {
            let retry = match ep.breaker.open_until_ms {
                _ if !wide => String::new(),
                Some(until) if until > now_ms => {
                    format!(", retry {}", fmt::duration_ms(until - now_ms))
                }
                Some(_) => ", retry due".into(),
                None => ", forced".into(),
            };
            Line::from(vec![
                Span::styled(t.sym_open(), t.bad()),
                Span::styled(format!(" OPEN{since}{retry}"), t.bad()),
            ])
        }
    }
}

fn tier_abbr(tier: Tier) -> &'static str {
    match tier {
        Tier::Exchange => "x",
        Tier::Endpoint => "e",
        Tier::Account => "a",
        Tier::Ip => "i",
    }
}

/// Used share of each tier's budget (`x 40% e 10%`), or the hold-off when the exchange blocked us.
fn limiter<'a>(ep: &EndpointView, w: usize, t: &Theme) -> Line<'a> {
    if ep.limiter.is_empty() {
        return Line::styled("-", t.dim());
    }
    if let Some(ms) = ep.limiter.iter().filter_map(|f| f.blocked_for_ms).max() {
        return Line::styled(
            fmt::truncate(&format!("HELD {}", fmt::duration_ms(ms as i64)), w, t),
            t.bad(),
        );
    }
    let used = |f: &crate::model::TierFill| {
        if f.capacity > 0.0 {
            ((1.0 - f.tokens / f.capacity) * 100.0).clamp(0.0, 100.0)
        } else {
            0.0
        }
    };
    let worst = ep.limiter.iter().map(used).fold(0.0, f64::max);
    let style = if worst >= 90.0 {
        t.bad()
    } else if worst >= 70.0 {
        t.warn()
    } else {
        Style::new()
    };
    let text = ep
        .limiter
        .iter()
        .map(|f| format!("{}{:.0}%", tier_abbr(f.tier), used(f)))
        .collect::<Vec<_>>()
        .join(" ");
    if ep.limiter.len() > 1 && text.chars().count() <= w {
        return Line::styled(text, style);
    }
    // One tier, or too narrow for all: a bar of the fullest tier.
    let bar_w = w.saturating_sub(5).max(1);
    let filled = ((worst / 100.0) * bar_w as f64).round() as usize;
    let bar: String = std::iter::repeat_n(t.bar_full(), filled)
        .chain(std::iter::repeat_n(
            t.bar_empty(),
            bar_w - filled.min(bar_w),
        ))
        .collect();
    Line::styled(format!("{bar}{:>4.0}%", worst), style)
}
