//! The report as text (a terminal, a ticket) and as markdown (a
//! postmortem document).

use super::{ByWhom, Report, fmt_duration, fmt_ms};
use std::fmt::Write as _;

/// How an episode or incident ended, for the text report: `resolved <time>
/// after <duration>`, or `still open after <duration>` at the end of the
/// report (`end_ms`, the last journal time in the window).
fn ending(start_ms: i64, resolved_ms: Option<i64>, end_ms: Option<i64>) -> String {
    match (resolved_ms, end_ms) {
        (Some(r), _) => format!(
            "resolved {}  lasted {}",
            fmt_ms(r),
            fmt_duration((r - start_ms).max(0))
        ),
        (None, Some(end)) => format!(
            "still open after {} (at the journal's end)",
            fmt_duration((end - start_ms).max(0))
        ),
        (None, None) => "still open".into(),
    }
}

/// Duration cell of the markdown report: `4m 10s`, or `4m 10s so far` for
/// one still open at the report's end.
fn duration_cell(start_ms: i64, resolved_ms: Option<i64>, end_ms: Option<i64>) -> String {
    match (resolved_ms, end_ms) {
        (Some(r), _) => fmt_duration((r - start_ms).max(0)),
        (None, Some(end)) => format!("{} so far", fmt_duration((end - start_ms).max(0))),
        (None, None) => "-".into(),
    }
}

fn who(b: &Option<ByWhom>) -> String {
    match b {
        Some(b) => format!(
            "{} by {}",
            fmt_ms(b.at_ms),
            b.by.as_deref().unwrap_or("unknown")
        ),
        None => "-".into(),
    }
}

fn place(ex: &str, ep: Option<&str>) -> String {
    format!("{ex}/{}", ep.unwrap_or("*"))
}

/// Plain text, for a terminal or a ticket.
pub fn render_text(r: &Report) -> String {
    let mut o = String::new();
    let span = match (r.from_ms, r.to_ms) {
        (Some(f), Some(t)) => format!("{} .. {}", fmt_ms(f), fmt_ms(t)),
        _ => "empty".into(),
    };
    let _ = writeln!(o, "exwatch incident report: {span} ({} entries)", r.entries);
    let _ = writeln!(o, "\nINCIDENTS ({})", r.incidents.len());
    if r.incidents.is_empty() && !r.alerts.is_empty() {
        let _ = writeln!(
            o,
            "  none recorded: this journal was written before incidents; see ALERTS"
        );
    }
    for i in &r.incidents {
        let _ = writeln!(
            o,
            "  {:<9} {:<28} opened {}  {}",
            i.severity.as_str().to_uppercase(),
            place(&i.exchange, i.endpoint.as_deref()),
            fmt_ms(i.opened_ms),
            ending(i.opened_ms, i.resolved_ms, r.to_ms),
        );
        let _ = writeln!(o, "      {}", i.title);
        if i.acknowledged.is_some() {
            let _ = writeln!(o, "      acknowledged {}", who(&i.acknowledged));
        }
        if !i.notified.is_empty() {
            let _ = writeln!(o, "      notified {}", i.notified.join(", "));
        }
        for a in i.symptoms.iter().filter_map(|k| r.alerts.get(*k)) {
            let _ = writeln!(
                o,
                "      {:>8}  {:<9} {:<28} {:<16} {}",
                format!("+{}", fmt_duration(a.fired_ms - i.opened_ms)),
                a.severity.as_str(),
                place(&a.exchange, a.endpoint.as_deref()),
                a.kind,
                match (a.duration_ms, r.to_ms) {
                    (Some(d), _) => format!("lasted {}", fmt_duration(d)),
                    (None, Some(end)) => format!(
                        "still open after {}",
                        fmt_duration((end - a.fired_ms).max(0))
                    ),
                    (None, None) => "still open".into(),
                },
            );
        }
    }
    let _ = writeln!(o, "\nALERTS ({})", r.alerts.len());
    for a in &r.alerts {
        let _ = writeln!(
            o,
            "  {:<9} {:<28} {:<14} fired {}  {}",
            a.severity.as_str().to_uppercase(),
            place(&a.exchange, a.endpoint.as_deref()),
            a.kind,
            fmt_ms(a.fired_ms),
            ending(a.fired_ms, a.resolved_ms, r.to_ms),
        );
        let _ = writeln!(o, "      {}", a.title);
        if a.acknowledged.is_some() {
            let _ = writeln!(o, "      acknowledged {}", who(&a.acknowledged));
        }
        if a.silenced.is_some() {
            let _ = writeln!(o, "      silenced {}", who(&a.silenced));
        }
        if !a.notified.is_empty() {
            let _ = writeln!(o, "      notified {}", a.notified.join(", "));
        }
        if let Some(t) = &a.triage {
            let _ = writeln!(
                o,
                "      triage ({}, escalation {}): {} — {}",
                t.source, t.escalation, t.summary, t.likely_cause
            );
        }
    }
    let _ = writeln!(o, "\nBREAKER TRANSITIONS ({})", r.breaker.len());
    for b in &r.breaker {
        let _ = writeln!(
            o,
            "  {}  {}/{}  {} -> {}  {}",
            fmt_ms(b.at_ms),
            b.exchange,
            b.endpoint,
            b.from,
            b.to,
            b.reason
        );
    }
    let _ = writeln!(o, "\nRATE LIMITS AND BANS ({})", r.limits.len());
    for l in &r.limits {
        let _ = writeln!(
            o,
            "  {} .. {}  {}/{}  {} ({} polls)",
            fmt_ms(l.from_ms),
            fmt_ms(l.to_ms),
            l.exchange,
            l.endpoint,
            l.kind,
            l.polls
        );
    }
    let _ = writeln!(o, "\nSUMMARY");
    for s in &r.exchanges {
        let _ = writeln!(
            o,
            "  {:<12} calls {:>6}  failed {:>5} ({:.1}%)  alerts {}  breaker opens {}  limit episodes {}  longest alert {}",
            s.exchange,
            s.calls,
            s.failures,
            if s.calls == 0 {
                0.0
            } else {
                100.0 * s.failures as f64 / s.calls as f64
            },
            s.alerts,
            s.breaker_opens,
            s.limit_episodes,
            s.longest_alert_ms.map_or("none".into(), fmt_duration),
        );
    }
    o
}

/// Markdown escaping for table cells.
fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

/// Markdown, to paste into a postmortem document.
pub fn render_markdown(r: &Report) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "# exwatch incident report\n");
    if let (Some(f), Some(t)) = (r.from_ms, r.to_ms) {
        let _ = writeln!(
            o,
            "{} .. {} ({} journal entries)\n",
            fmt_ms(f),
            fmt_ms(t),
            r.entries
        );
    }
    let _ = writeln!(o, "## Incidents\n");
    let _ = writeln!(
        o,
        "| severity | where | title | opened | resolved | duration | symptoms |"
    );
    let _ = writeln!(o, "| --- | --- | --- | --- | --- | --- | --- |");
    for i in &r.incidents {
        let symptoms: Vec<String> = i
            .symptoms
            .iter()
            .filter_map(|k| r.alerts.get(*k))
            .map(|a| {
                format!(
                    "+{} {} {}",
                    fmt_duration(a.fired_ms - i.opened_ms),
                    place(&a.exchange, a.endpoint.as_deref()),
                    a.kind
                )
            })
            .collect();
        let _ = writeln!(
            o,
            "| {} | {} | {} | {} | {} | {} | {} |",
            i.severity.as_str(),
            cell(&place(&i.exchange, i.endpoint.as_deref())),
            cell(&i.title),
            fmt_ms(i.opened_ms),
            i.resolved_ms.map_or("still open".into(), fmt_ms),
            duration_cell(i.opened_ms, i.resolved_ms, r.to_ms),
            cell(&symptoms.join("; ")),
        );
    }
    let _ = writeln!(o, "\n## Alerts\n");
    let _ = writeln!(
        o,
        "| severity | where | kind | fired | acknowledged | silenced | resolved | duration | notified | triage |"
    );
    let _ = writeln!(
        o,
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
    );
    for a in &r.alerts {
        let _ = writeln!(
            o,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            a.severity.as_str(),
            cell(&place(&a.exchange, a.endpoint.as_deref())),
            cell(&a.kind),
            fmt_ms(a.fired_ms),
            cell(&who(&a.acknowledged)),
            cell(&who(&a.silenced)),
            a.resolved_ms.map_or("still open".into(), fmt_ms),
            duration_cell(a.fired_ms, a.resolved_ms, r.to_ms),
            cell(&a.notified.join(", ")),
            a.triage.as_ref().map_or("-".into(), |t| cell(&format!(
                "{} ({}): {}",
                t.source, t.escalation, t.summary
            ))),
        );
    }
    let _ = writeln!(o, "\n## Breaker transitions\n");
    let _ = writeln!(o, "| time | endpoint | from | to | reason |");
    let _ = writeln!(o, "| --- | --- | --- | --- | --- |");
    for b in &r.breaker {
        let _ = writeln!(
            o,
            "| {} | {}/{} | {} | {} | {} |",
            fmt_ms(b.at_ms),
            cell(&b.exchange),
            cell(&b.endpoint),
            b.from,
            b.to,
            cell(&b.reason)
        );
    }
    let _ = writeln!(o, "\n## Rate limits and bans\n");
    let _ = writeln!(o, "| from | to | endpoint | kind | polls |");
    let _ = writeln!(o, "| --- | --- | --- | --- | --- |");
    for l in &r.limits {
        let _ = writeln!(
            o,
            "| {} | {} | {}/{} | {} | {} |",
            fmt_ms(l.from_ms),
            fmt_ms(l.to_ms),
            cell(&l.exchange),
            cell(&l.endpoint),
            l.kind,
            l.polls
        );
    }
    let _ = writeln!(o, "\n## Summary per exchange\n");
    let _ = writeln!(
        o,
        "| exchange | calls | failed | alerts | breaker opens | limit episodes | longest alert |"
    );
    let _ = writeln!(o, "| --- | --- | --- | --- | --- | --- | --- |");
    for s in &r.exchanges {
        let _ = writeln!(
            o,
            "| {} | {} | {} | {} | {} | {} | {} |",
            cell(&s.exchange),
            s.calls,
            s.failures,
            s.alerts,
            s.breaker_opens,
            s.limit_episodes,
            s.longest_alert_ms.map_or("none".into(), fmt_duration)
        );
    }
    o
}
