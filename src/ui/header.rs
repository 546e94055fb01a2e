//! One line, the 5-second answer: instance, live/replay, what fires by
//! severity, which exchanges are in trouble, a missing sink, backend and
//! sink health, triage cost, the clock (the recorded one in a replay) and
//! the frozen mark. Only what the
//! snapshot knows is shown: a part with no data is left out, not invented.

use super::fmt;
use super::view::{Mode, ViewState};
use crate::model::{AlertState, Delivery, Severity};
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
            vec![Span::styled(
                "REPLAY",
                t.warn().add_modifier(Modifier::BOLD | Modifier::REVERSED),
            )],
        ),
    });
    if let Some(r) = &view.replay {
        groups.push((
            2,
            vec![Span::styled(
                if r.done {
                    "end of journal".to_string()
                } else if r.paused {
                    format!("PAUSED x{}", r.speed)
                } else {
                    format!("x{}", r.speed)
                },
                t.warn(),
            )],
        ));
    }

    // What fires, by severity: the 5-second answer with the next group.
    let count = |sev: Severity| {
        snap.alerts
            .iter()
            .filter(|a| a.state == AlertState::Firing && a.severity == sev)
            .count()
    };
    let by_sev: Vec<(Severity, usize)> = [
        Severity::Emergency,
        Severity::Critical,
        Severity::Warning,
        Severity::Info,
    ]
    .into_iter()
    .map(|s| (s, count(s)))
    .filter(|(_, n)| *n > 0)
    .collect();
    if !by_sev.is_empty() {
        let mut spans = vec![Span::styled("FIRING", t.bad().add_modifier(Modifier::BOLD))];
        for (sev, n) in by_sev {
            let style = match sev {
                Severity::Emergency | Severity::Critical => t.bad(),
                Severity::Warning => t.warn(),
                Severity::Info => t.dim(),
            };
            spans.push(Span::styled(format!(" {n} {}", sev_word(sev)), style));
        }
        groups.push((0, spans));
    }

    // An exchange is in trouble when its endpoints say so or an open alert
    // of warning or worse is about it: never "all ok" beside a firing alert.
    let total = snap.exchanges.len();
    if total > 0 {
        let troubled: Vec<&str> = snap
            .exchanges
            .iter()
            .filter(|e| {
                !e.healthy
                    || snap.alerts.iter().any(|a| {
                        a.state.is_open() && a.exchange == e.name && a.severity >= Severity::Warning
                    })
            })
            .map(|e| e.name.as_str())
            .collect();
        groups.push(if troubled.is_empty() {
            (
                3,
                vec![Span::styled(format!("{total} exchanges ok"), t.ok())],
            )
        } else {
            const NAMED: usize = 3;
            let mut names = troubled
                .iter()
                .take(NAMED)
                .copied()
                .collect::<Vec<_>>()
                .join(" ");
            if troubled.len() > NAMED {
                names.push_str(&format!(" +{}", troubled.len() - NAMED));
            }
            (
                0,
                vec![Span::styled(format!("{names} in trouble"), t.bad())],
            )
        });
    }

    // No sink: alerts reach this screen only (the footer says so at start).
    if view.mode == Mode::Live && view.sinks.as_ref().is_some_and(Vec::is_empty) {
        groups.push((
            0,
            vec![Span::styled(
                "NO SINK",
                t.warn().add_modifier(Modifier::REVERSED),
            )],
        ));
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
            .filter(|(_, d)| {
                matches!(
                    d,
                    Delivery::Failed { .. }
                        | Delivery::Retrying { .. }
                        | Delivery::Unconfirmed { .. }
                )
            })
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
    // A replay's clock is the recorded time.
    right.push(Span::styled(
        match view.mode {
            Mode::Live => format!("{} UTC ", fmt::clock(now_ms)),
            Mode::Replay => format!("rec {} UTC ", fmt::clock(now_ms)),
        },
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

/// The feed's short severity word, lower case: `emr`, `cri`, `wrn`, `inf`.
fn sev_word(s: Severity) -> &'static str {
    match s {
        Severity::Emergency => "emr",
        Severity::Critical => "cri",
        Severity::Warning => "wrn",
        Severity::Info => "inf",
    }
}
