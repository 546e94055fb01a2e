//! The detail pane for what is selected in the focused panel: an alert's
//! figures, timeline, deliveries and triage; or an endpoint's metrics,
//! breaker, limiter tiers and last outcome.

use super::alerts::{severity_span, state_span};
use super::fmt;
use super::pick::Target;
use super::theme::Theme;
use super::view::{Panel, ViewState};
use crate::model::{Alert, Delivery};
use crate::state::{EndpointView, ExchangeView, Snapshot};
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};

/// The pane's title and lines for the current selection.
fn content<'a>(snap: &Snapshot, view: &ViewState, now_ms: i64) -> (String, Vec<Line<'a>>) {
    let t = &view.theme;
    let now = view.frozen_at_ms.unwrap_or(now_ms);
    match view.focus {
        Panel::Alerts => match view.alert_target(snap) {
            Target::Here(a) => (format!(" Alert {} ", a.fingerprint), alert_lines(a, t, now)),
            Target::Empty => (
                " Detail ".into(),
                vec![Line::styled("no alert selected", t.dim())],
            ),
            Target::Lost(why) => (" Detail ".into(), lost_lines(&why, t)),
        },
        Panel::Exchanges => match view.endpoint_target(snap) {
            Target::Here((ex, ep)) => (
                format!(" {}/{} ", ex.name, ep.name),
                endpoint_lines(ex, ep, snap, t, now),
            ),
            Target::Empty => (
                " Detail ".into(),
                vec![Line::styled("no endpoint selected", t.dim())],
            ),
            Target::Lost(why) => (" Detail ".into(), lost_lines(&why, t)),
        },
    }
}

/// The pane's wrapped paragraph in `area`: it, how many lines it has
/// wrapped, and how many fit.
fn wrapped<'a>(area: Rect, lines: Vec<Line<'a>>) -> (Paragraph<'a>, u16, u16) {
    let p = Paragraph::new(lines).wrap(Wrap { trim: false });
    let total = p.line_count(area.width.saturating_sub(2));
    (
        p,
        u16::try_from(total).unwrap_or(u16::MAX),
        area.height.saturating_sub(2),
    )
}

/// How far the pane drawn in `area` can scroll, in lines.
pub fn max_scroll(area: Rect, snap: &Snapshot, view: &ViewState, now_ms: i64) -> u16 {
    let (_, lines) = content(snap, view, now_ms);
    let (_, total, room) = wrapped(area, lines);
    total.saturating_sub(room)
}

/// Draw the pane, scrolled by [`ViewState::detail_scroll`] (clamped to its
/// end); when it does not fit, its title says which lines are shown.
pub fn render(frame: &mut Frame, area: Rect, snap: &Snapshot, view: &ViewState, now_ms: i64) {
    let t = &view.theme;
    let (mut title, lines) = content(snap, view, now_ms);
    let (paragraph, total, room) = wrapped(area, lines);
    let scroll = view.detail_scroll.min(total.saturating_sub(room));
    if total > room {
        title.push_str(&format!(
            "{} lines {}-{} of {total} (PgUp/PgDn) ",
            t.dot(),
            scroll + 1,
            scroll + room
        ));
    }
    let block = t.block(title, true);
    frame.render_widget(paragraph.block(block).scroll((scroll, 0)), area);
}

/// The pane of a selection that left the screen: why, and that nothing else
/// is shown in its place.
fn lost_lines<'a>(why: &str, t: &Theme) -> Vec<Line<'a>> {
    vec![
        Line::styled(why.to_string(), t.bad()),
        Line::styled(
            "actions on it are refused; move the selection to pick another",
            t.dim(),
        ),
    ]
}

fn kv<'a>(k: &str, v: impl Into<String>, t: &Theme) -> Line<'a> {
    Line::from(vec![
        Span::styled(format!("{k:<12} "), t.dim()),
        Span::raw(v.into()),
    ])
}

fn section<'a>(name: &str, t: &Theme) -> Line<'a> {
    Line::styled(name.to_string(), t.title())
}

fn alert_lines<'a>(a: &Alert, t: &Theme, now: i64) -> Vec<Line<'a>> {
    let mut l = vec![
        Line::from(vec![
            severity_span(a.severity, t),
            Span::raw("  "),
            state_span(a.state, t),
            Span::raw(format!("  x{}", a.occurrences)),
        ]),
        Line::styled(a.title.clone(), t.title()),
    ];
    if !a.description.is_empty() {
        l.push(Line::raw(a.description.clone()));
    }
    if let Some(id) = &a.incident {
        let role = if a.is_incident_root() {
            "its first symptom"
        } else {
            "a symptom"
        };
        l.push(kv("incident", format!("{id} ({role})"), t));
    }
    l.push(Line::raw(""));
    if !a.metrics.is_empty() {
        l.push(section("Metrics", t));
        for (k, v) in &a.metrics {
            l.push(kv(k, fmt::metric(k, *v), t));
        }
        l.push(Line::raw(""));
    }
    l.push(section("Timeline (UTC)", t));
    if a.occurrences > 1 {
        l.push(kv(
            "episode",
            format!(
                "{} began {} ({} ago)",
                a.occurrences,
                fmt::timestamp(a.episode_start()),
                fmt::duration_ms(now - a.episode_start())
            ),
            t,
        ));
    }
    l.push(kv(
        "first seen",
        format!(
            "{} ({} ago)",
            fmt::timestamp(a.first_seen_ms),
            fmt::duration_ms(now - a.first_seen_ms)
        ),
        t,
    ));
    l.push(kv(
        "last seen",
        format!(
            "{} ({} ago)",
            fmt::timestamp(a.last_seen_ms),
            fmt::duration_ms(now - a.last_seen_ms)
        ),
        t,
    ));
    l.push(kv(
        a.state.as_str(),
        format!(
            "{} by {}",
            fmt::timestamp(a.state_at_ms),
            a.state_by.as_deref().unwrap_or("-")
        ),
        t,
    ));
    if let Some(r) = a.resolved_at_ms {
        l.push(kv("resolved", fmt::timestamp(r), t));
    }
    if !a.delivery.is_empty() {
        l.push(Line::raw(""));
        l.push(section("Delivery", t));
        for (sink, d) in &a.delivery {
            let (text, bad) = match d {
                Delivery::Pending => ("pending".to_string(), false),
                Delivery::Sent { at_ms } => (format!("sent {}", fmt::timestamp(*at_ms)), false),
                Delivery::Retrying {
                    attempts,
                    last_error,
                } => (format!("retrying (#{attempts}): {last_error}"), true),
                Delivery::Failed { error } => (format!("FAILED: {error}"), true),
                Delivery::Unconfirmed { error, .. } => {
                    (format!("timed out (may have arrived): {error}"), true)
                }
                Delivery::Suppressed { reason } => (format!("suppressed: {reason}"), false),
            };
            l.push(Line::from(vec![
                Span::styled(format!("{sink:<12} "), t.dim()),
                Span::styled(
                    text,
                    if bad {
                        t.bad()
                    } else {
                        ratatui::style::Style::new()
                    },
                ),
            ]));
        }
    }
    l.push(Line::raw(""));
    match &a.triage {
        None => l.push(Line::styled("No triage yet (t asks for one)", t.dim())),
        Some(tr) => {
            let source = tr.source.as_str();
            l.push(section(
                &format!(
                    "Triage ({source}, escalation {}/5{})",
                    tr.escalation,
                    if tr.requires_human {
                        ", needs a human"
                    } else {
                        ""
                    }
                ),
                t,
            ));
            l.push(Line::raw(tr.summary.clone()));
            l.push(kv("likely cause", tr.likely_cause.clone(), t));
            for act in &tr.suggested_actions {
                l.push(Line::raw(format!("  - {act}")));
            }
            if !tr.note.is_empty() {
                l.push(kv("note", tr.note.clone(), t));
            }
            l.push(kv(
                "cost",
                format!("${:.4} in {}ms", tr.cost_usd, tr.latency_ms),
                t,
            ));
        }
    }
    l
}

fn endpoint_lines<'a>(
    ex: &ExchangeView,
    ep: &EndpointView,
    snap: &Snapshot,
    t: &Theme,
    now: i64,
) -> Vec<Line<'a>> {
    if let Some(sv) = &ep.stream {
        let mut l = stream_lines(ex, ep, sv, t, now);
        l.extend(open_alert_lines(ex, ep, snap, t));
        return l;
    }
    let lat = |v: Option<u64>| v.map(|v| fmt::latency_us(v, t)).unwrap_or("-".into());
    let mut l = vec![
        kv("url", ep.url.clone(), t),
        kv(
            "kind",
            format!("{} on {}", ep.kind.as_str(), ex.kind.as_str()),
            t,
        ),
        kv("poll every", fmt::interval_ms(ep.interval_ms), t),
        Line::raw(""),
        section("Metrics", t),
        kv(
            "calls",
            format!(
                "{} ({} failed, {:.0}% of recent)",
                ep.calls,
                ep.failures,
                ep.error_rate * 100.0
            ),
            t,
        ),
        kv(
            "latency",
            format!("p50 {}  p99 {}", lat(ep.p50_us), lat(ep.p99_us)),
            t,
        ),
        kv("recent", fmt::sparkline(&ep.recent_latency_us, 40, t), t),
        kv(
            "data age",
            ep.data_age_ms(now)
                .map(fmt::duration_ms)
                .unwrap_or_else(|| "no good data yet".into()),
            t,
        ),
    ];
    if let Some(off) = ex.clock_offset_ms {
        l.push(kv("clock offset", format!("{off} ms"), t));
    }
    if !ep.by_outcome.is_empty() {
        l.push(kv(
            "outcomes",
            ep.by_outcome
                .iter()
                .map(|(k, v)| format!("{k} {v}"))
                .collect::<Vec<_>>()
                .join(", "),
            t,
        ));
    }
    l.push(Line::raw(""));
    l.push(section("Breaker", t));
    let since = ep
        .breaker
        .tripped_at_ms
        .map(|at| {
            format!(
                ", not closed since {} ({} ago)",
                fmt::clock(at),
                fmt::duration_ms(now - at)
            )
        })
        .unwrap_or_default();
    let until = match ep.breaker.open_until_ms {
        Some(u) if u > now => format!("{since}; next probe in {}", fmt::duration_ms(u - now)),
        None if ep.breaker.state == crate::model::BreakerState::Open => {
            format!("{since}; forced open: no probe until reset")
        }
        _ => since,
    };
    l.push(kv(
        "state",
        format!(
            "{}{until} ({} trips, {} polls skipped)",
            ep.breaker.state.as_str(),
            ep.breaker.trips,
            ep.breaker_rejections
        ),
        t,
    ));
    l.push(Line::raw(""));
    l.push(section("Limiter", t));
    if ep.limiter.is_empty() {
        l.push(Line::styled("no fill reported yet", t.dim()));
    }
    for f in &ep.limiter {
        let blocked = f
            .blocked_for_ms
            .map(|ms| format!(", held {}", fmt::duration_ms(ms as i64)))
            .unwrap_or_default();
        l.push(kv(
            f.tier.as_str(),
            format!("{:.1}/{:.0} tokens left{blocked}", f.tokens, f.capacity),
            t,
        ));
    }
    l.push(kv(
        "waited",
        format!(
            "{} times, {} total, last {}",
            ep.limiter_waits,
            fmt::duration_ms(ep.limiter_waited_ms as i64),
            fmt::duration_ms(ep.last_wait_ms as i64)
        ),
        t,
    ));
    l.push(Line::raw(""));
    l.push(section("Last poll", t));
    match &ep.last {
        None => l.push(Line::styled("none yet", t.dim())),
        Some(s) => {
            l.push(kv(
                "at",
                format!(
                    "{} ({} ago), {}",
                    fmt::timestamp(s.at_ms),
                    fmt::duration_ms(now - s.at_ms),
                    fmt::latency_us(s.latency_us, t)
                ),
                t,
            ));
            let outcome = if s.outcome.is_ok() {
                Span::styled("ok", t.ok())
            } else {
                Span::styled(s.outcome.label(), t.bad())
            };
            l.push(Line::from(vec![
                Span::styled(format!("{:<12} ", "outcome"), t.dim()),
                outcome,
                Span::raw(match s.status {
                    Some(code) => format!(" (HTTP {code})"),
                    None => String::new(),
                }),
            ]));
            let d = s.outcome.detail();
            if !d.is_empty() {
                l.push(Line::raw(d));
            }
            if let Some(sum) = &s.summary {
                l.push(kv("summary", sum.clone(), t));
            }
        }
    }
    l.extend(open_alert_lines(ex, ep, snap, t));
    l
}

/// The open alerts of a row (and of its exchange as a whole).
fn open_alert_lines<'a>(
    ex: &ExchangeView,
    ep: &EndpointView,
    snap: &Snapshot,
    t: &Theme,
) -> Vec<Line<'a>> {
    let mut l = Vec::new();
    let related: Vec<&Alert> = snap
        .alerts
        .iter()
        .filter(|a| {
            a.state.is_open()
                && a.exchange == ex.name
                && a.endpoint.as_deref().is_none_or(|e| e == ep.name)
        })
        .collect();
    if !related.is_empty() {
        l.push(Line::raw(""));
        l.push(section("Open alerts", t));
        for a in related {
            l.push(Line::from(vec![
                severity_span(a.severity, t),
                Span::raw(format!(" {}", a.title)),
            ]));
        }
    }
    l
}

/// A WebSocket stream row: its state, figures, book and last note.
fn stream_lines<'a>(
    ex: &ExchangeView,
    ep: &EndpointView,
    sv: &crate::state::StreamView,
    t: &Theme,
    now: i64,
) -> Vec<Line<'a>> {
    let role = if sv.is_connection(&ep.name) {
        "WebSocket connection"
    } else {
        "WebSocket subscription"
    };
    let mut l = vec![
        kv("url", ep.url.clone(), t),
        kv("kind", format!("{role} on {}", ex.kind.as_str()), t),
        kv("connection", sv.connection.clone(), t),
        Line::raw(""),
        section("Stream", t),
    ];
    let Some(st) = &sv.status else {
        l.push(Line::styled("no status yet", t.dim()));
        return l;
    };
    let expected = if st.expected { " (announced)" } else { "" };
    l.push(kv("state", format!("{}{expected}", st.state.as_str()), t));
    let what = if sv.is_connection(&ep.name) {
        "frame"
    } else {
        "data"
    };
    l.push(kv(
        &format!("last {what}"),
        match st.age_ms {
            Some(age) => format!(
                "{} ago (threshold {})",
                fmt::duration_ms(age),
                fmt::duration_ms(st.threshold_ms)
            ),
            None => "none yet".into(),
        },
        t,
    ));
    l.push(kv(
        "rate",
        format!("{:.1} msgs/s ({} since start)", st.msgs_per_s, st.messages),
        t,
    ));
    l.push(kv("recent", fmt::sparkline(&sv.recent_rate, 40, t), t));
    let lag = |v: Option<i64>| v.map_or("-".to_string(), fmt::lag_ms);
    l.push(kv(
        "lag",
        format!(
            "p50 {}  p99 {} (clock offset {} ms)",
            lag(st.lag_p50_ms),
            lag(st.lag_p99_ms),
            ex.clock_offset_ms.unwrap_or(0)
        ),
        t,
    ));
    l.push(kv(
        "integrity",
        format!(
            "{} gaps, {} resyncs, {} reconnects",
            st.gaps, st.resyncs, st.reconnects
        ),
        t,
    ));
    if let Some(book) = st.book {
        l.push(kv("book", book.as_str().to_string(), t));
    }
    if let (Some(b), Some(a)) = (&st.bid, &st.ask) {
        l.push(kv("best bid/ask", format!("{b} / {a}"), t));
    }
    if !st.detail.is_empty() {
        l.push(kv("why", st.detail.clone(), t));
    }
    if let Some(n) = &sv.last_note {
        l.push(Line::raw(""));
        l.push(section("Last event", t));
        l.push(kv(
            n.what_str(),
            format!("{} ({} ago)", n.detail, fmt::duration_ms(now - n.at_ms)),
            t,
        ));
    }
    l
}
