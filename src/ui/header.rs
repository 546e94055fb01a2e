//! One line: instance, live/replay, backend and sink health, triage cost,
//! a summary of exchanges, the clock and the frozen mark. Only what the
//! snapshot knows is shown: a part with no data is left out, not invented.

use super::fmt;
use super::view::{Mode, ViewState};
use crate::model::Delivery;
use crate::state::Snapshot;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Modifier;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

pub fn render(frame: &mut Frame, area: Rect, snap: &Snapshot, view: &ViewState, now_ms: i64) {
    let t = &view.theme;
    // (priority: lower stays longer on a narrow screen, spans), in display order.
    let mut groups: Vec<(u8, Vec<Span>)> = vec![(
        0,
        vec![Span::styled(format!(" {}", view.instance), t.title())],
    )];
    groups.push(match view.mode {
        Mode::Live => (
            0,
            vec![Span::styled("LIVE", t.ok().add_modifier(Modifier::BOLD))],
        ),
        Mode::Replay => (
            0,
            vec![
                Span::styled(
                    "REPLAY",
                    t.warn().add_modifier(Modifier::BOLD | Modifier::REVERSED),
                ),
                Span::raw(format!(" recorded {}", fmt::clock(snap.last_event_ms))),
                Span::raw(match &view.replay {
                    Some(r) if r.done => " (end)".to_string(),
                    Some(r) if r.paused => format!(" PAUSED x{}", r.speed),
                    Some(r) => format!(" x{}", r.speed),
                    None => String::new(),
                }),
            ],
        ),
    });

    let total = snap.exchanges.len();
    if total > 0 {
        let down = snap.exchanges.iter().filter(|e| !e.healthy).count();
        groups.push(if down == 0 {
            (
                3,
                vec![Span::styled(format!("{total} exchanges ok"), t.ok())],
            )
        } else {
            (
                1,
                vec![Span::styled(format!("{down}/{total} unhealthy"), t.bad())],
            )
        });
    }

    for h in &snap.health {
        groups.push(if h.healthy {
            (
                4,
                vec![Span::styled(format!("{} ok", h.component.as_str()), t.ok())],
            )
        } else {
            (
                1,
                vec![Span::styled(
                    format!(
                        "{} DOWN {}",
                        h.component.as_str(),
                        fmt::duration_ms(now_ms - h.since_ms)
                    ),
                    t.bad(),
                )],
            )
        });
    }

    // Sink health as the deliveries of open alerts tell it.
    let deliveries: Vec<(&String, &Delivery)> = snap
        .alerts
        .iter()
        .filter(|a| a.state.is_open())
        .flat_map(|a| a.delivery.iter())
        .collect();
    if !deliveries.is_empty() {
        let mut failing: Vec<&str> = deliveries
            .iter()
            .filter(|(_, d)| matches!(d, Delivery::Failed { .. } | Delivery::Retrying { .. }))
            .map(|(s, _)| s.as_str())
            .collect();
        failing.sort_unstable();
        failing.dedup();
        groups.push(if failing.is_empty() {
            (4, vec![Span::styled("sinks ok", t.ok())])
        } else {
            (
                2,
                vec![Span::styled(
                    format!("sinks failing: {}", failing.join(",")),
                    t.bad(),
                )],
            )
        });
    }

    let triaged: Vec<f64> = snap
        .alerts
        .iter()
        .filter_map(|a| a.triage.as_ref().map(|tr| tr.cost_usd))
        .collect();
    if !triaged.is_empty() {
        groups.push((
            5,
            vec![Span::raw(format!(
                "triage ${:.4}",
                triaged.iter().sum::<f64>()
            ))],
        ));
    }

    let mut right: Vec<Span> = Vec::new();
    if let Some(at) = view.frozen_at_ms {
        right.push(Span::styled(
            format!(" FROZEN {} ", fmt::clock(at)),
            t.warn().add_modifier(Modifier::BOLD | Modifier::REVERSED),
        ));
        right.push(Span::raw(" "));
    }
    right.push(Span::styled(
        format!("{} UTC ", fmt::clock(now_ms)),
        t.accent(),
    ));
    let right_line = Line::from(right);
    let rw = right_line.width() as u16;

    // Keep whole groups, most important first, in the room left of the clock.
    let sep_w = 3;
    let room = area.width.saturating_sub(rw + 1) as usize;
    let widths: Vec<usize> = groups
        .iter()
        .map(|(_, g)| g.iter().map(|s| s.width()).sum())
        .collect();
    let mut keep = vec![false; groups.len()];
    let mut used = 0usize;
    for prio in 0..=5u8 {
        for (i, (p, _)) in groups.iter().enumerate() {
            let extra = widths[i] + if used == 0 { 0 } else { sep_w };
            if *p == prio && used + extra <= room {
                keep[i] = true;
                used += extra;
            }
        }
    }
    let mut left: Vec<Span> = Vec::new();
    for (i, (_, g)) in groups.into_iter().enumerate() {
        if !keep[i] {
            continue;
        }
        if !left.is_empty() {
            left.push(Span::styled(format!(" {} ", t.sep()), t.dim()));
        }
        left.extend(g);
    }
    let lw = area.width.saturating_sub(rw);
    frame.render_widget(Paragraph::new(Line::from(left)), Rect { width: lw, ..area });
    frame.render_widget(
        Paragraph::new(right_line),
        Rect {
            x: area.x + lw,
            width: area.width - lw,
            ..area
        },
    );
}
