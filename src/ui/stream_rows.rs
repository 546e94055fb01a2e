//! The cells of a WebSocket stream row in the exchanges panel: the same
//! columns as a REST endpoint's, read for a stream. BREAKER says the
//! stream's state, LATENCY is the data rate's sparkline, P50/P99 the stream
//! lag, ERR the book gaps, LIMITER the data rate, WAITED the reconnects,
//! AGE the last data's age, POLL `ws`, LAST the book's verdict or what went
//! wrong.

use super::col::Col;
use super::fmt;
use super::theme::Theme;
use crate::model::{BookState, StreamState};
use crate::state::StreamView;
use ratatui::style::Style;
use ratatui::text::{Line, Span};

/// The cell of column `c` (width `w`) of a stream row, at `now_ms`.
pub(super) fn cell<'a>(
    c: Col,
    w: usize,
    name: &str,
    sv: &StreamView,
    t: &Theme,
) -> Option<Line<'a>> {
    let st = sv.status.as_ref();
    Some(match c {
        Col::Breaker => state(sv, w, t),
        Col::Spark => {
            let style = if sv.healthy() { t.accent() } else { t.warn() };
            Line::styled(fmt::sparkline(&sv.recent_rate, w, t), style)
        }
        Col::P50 | Col::P99 => {
            let v = st.and_then(|s| {
                if c == Col::P50 {
                    s.lag_p50_ms
                } else {
                    s.lag_p99_ms
                }
            });
            match v {
                Some(ms) => Line::raw(fmt::lag_ms(ms)),
                None => Line::styled("-", t.dim()),
            }
            .right_aligned()
        }
        Col::Err => {
            let gaps = st.map_or(0, |s| s.gaps);
            let style = if gaps > 0 { t.warn() } else { Style::new() };
            Line::styled(gaps.to_string(), style).right_aligned()
        }
        Col::Limit => match st {
            Some(s) => Line::raw(format!("{:.0}/s", s.msgs_per_s)).right_aligned(),
            None => Line::styled("-", t.dim()).right_aligned(),
        },
        Col::Wait => match st.map_or(0, |s| s.reconnects) {
            0 => Line::styled("-", t.dim()).right_aligned(),
            n => Line::styled(format!("{n} rc"), t.warn()).right_aligned(),
        },
        Col::Poll => Line::styled("ws", t.dim()).right_aligned(),
        Col::Last => last(name, sv, w, t),
        Col::Exchange | Col::Endpoint | Col::Age => return None,
    })
}

/// Symbol and word, coloured: never colour alone. The time in the state
/// (`DOWN 12s`) only where it fits `w`; AGE has it anyway.
fn state<'a>(sv: &StreamView, w: usize, t: &Theme) -> Line<'a> {
    let Some(st) = &sv.status else {
        return Line::styled("… pending", t.dim());
    };
    let age = st
        .age_ms
        .map(|a| format!(" {}", fmt::duration_ms(a)))
        .unwrap_or_default();
    let (sym, word, style) = match st.state {
        StreamState::Live | StreamState::Zombie if st.book == Some(BookState::Invalid) => {
            (t.sym_open(), "INVALID".to_string(), t.bad())
        }
        StreamState::Live if st.crossed.is_some() => (t.sym_open(), "CROSSED".to_string(), t.bad()),
        StreamState::Live if st.expected => (t.sym_half_open(), "planned".to_string(), t.warn()),
        StreamState::Live => (t.sym_closed(), "live".to_string(), t.ok()),
        StreamState::Pending => (t.sym_half_open(), "pending".to_string(), t.dim()),
        StreamState::Down if st.expected => (t.sym_half_open(), format!("planned{age}"), t.warn()),
        StreamState::Down => (t.sym_open(), format!("DOWN{age}"), t.bad()),
        StreamState::Zombie => (t.sym_open(), format!("ZOMBIE{age}"), t.bad()),
        StreamState::Dead => (t.sym_open(), format!("DEAD{age}"), t.bad()),
        StreamState::Refused => (t.sym_open(), "REFUSED".to_string(), t.bad()),
        StreamState::Unacked => (t.sym_half_open(), "unacked".to_string(), t.warn()),
    };
    let word = if word.chars().count() + 2 > w {
        word.split(' ').next().unwrap_or_default().to_string()
    } else {
        word
    };
    Line::from(vec![
        Span::styled(sym, style),
        Span::styled(format!(" {word}"), style),
    ])
}

/// The book's verdict and the best bid/ask, or what went wrong.
fn last<'a>(name: &str, sv: &StreamView, w: usize, t: &Theme) -> Line<'a> {
    let Some(st) = &sv.status else {
        return Line::styled("waiting for the first status", t.dim());
    };
    if st.detail.is_empty() && st.state == StreamState::Zombie {
        let whole = if st.connection_wide {
            ", like every subscription of its connection"
        } else {
            ""
        };
        let text = format!(
            "no data for {} (silent after {}){whole}",
            fmt::duration_ms(st.age_ms.unwrap_or(0)),
            fmt::duration_ms(st.threshold_ms)
        );
        return Line::styled(fmt::truncate(&text, w, t), t.bad());
    }
    if !st.detail.is_empty() {
        let style = if sv.healthy() { t.warn() } else { t.bad() };
        return Line::styled(fmt::truncate(&st.detail, w, t), style);
    }
    let mut parts = Vec::new();
    match st.book {
        Some(BookState::Valid) => parts.push("book valid".to_string()),
        Some(BookState::Syncing) => parts.push("book syncing".to_string()),
        Some(BookState::Invalid) => parts.push("book INVALID".to_string()),
        None => {}
    }
    if let (Some(b), Some(a)) = (&st.bid, &st.ask) {
        parts.push(format!("{b} / {a}"));
    }
    if sv.is_connection(name) {
        parts.push(format!("{} frames", st.messages));
    } else if parts.is_empty() {
        parts.push(format!("{} messages", st.messages));
    }
    if let Some(n) = &sv.last_note {
        parts.push(format!("{}: {}", n.what_str(), n.detail));
    }
    Line::styled(fmt::truncate(&parts.join(" · "), w, t), t.dim())
}
