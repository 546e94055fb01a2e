//! Slack incoming webhook: one message per incident notification, in Block Kit,
//! with every text cut to Slack's limits (header 150, section 3000, fallback
//! text 3000 here, at most 50 blocks).

use crate::alert::notification::Notification;
use crate::model::{Alert, AlertState};
use serde_json::{Value, json};

pub const HEADER_MAX: usize = 150;
pub const SECTION_MAX: usize = 3000;
pub const TEXT_MAX: usize = 3000;
/// Alerts listed one by one; the rest are counted.
pub const LISTED: usize = 20;

/// Cut to at most `max` characters, marking the cut with `…`.
pub fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

fn icon(a: &Alert) -> &'static str {
    match a.state {
        AlertState::Firing => ":red_circle:",
        AlertState::Acknowledged => ":large_yellow_circle:",
        AlertState::Silenced => ":white_circle:",
        AlertState::Resolved => ":large_green_circle:",
    }
}

pub fn render(n: &Notification, instance: &str) -> Value {
    let summary = n.summary();
    let mut blocks = vec![json!({
        "type": "header",
        "text": {"type": "plain_text", "text": truncate(&summary, HEADER_MAX), "emoji": true}
    })];
    for a in n.alerts.iter().take(LISTED) {
        let changed = if n.changed.contains(&a.fingerprint) {
            ""
        } else {
            " (unchanged)"
        };
        let by = match (a.state, &a.state_by) {
            (AlertState::Acknowledged, Some(by)) => format!(" by {by}"),
            _ => String::new(),
        };
        let text = format!(
            "{} *{}* — {}{by}{changed}\n{}\n`{}` · occurrences {}",
            icon(a),
            a.title,
            a.state.as_str(),
            a.description,
            a.fingerprint,
            a.occurrences
        );
        blocks.push(json!({
            "type": "section",
            "text": {"type": "mrkdwn", "text": truncate(&text, SECTION_MAX)}
        }));
    }
    if n.alerts.len() > LISTED {
        blocks.push(json!({
            "type": "context",
            "elements": [{"type": "mrkdwn", "text": format!("…and {} more alerts in this incident", n.alerts.len() - LISTED)}]
        }));
    }
    blocks.push(json!({
        "type": "context",
        "elements": [{"type": "mrkdwn", "text": truncate(&format!(
            "exwatch `{instance}` · incident `{}` · {} · {}",
            n.group.incident,
            n.group.severity.as_str(),
            if n.repeat { "reminder" } else { "update" }
        ), SECTION_MAX)}]
    }));
    let fallback = std::iter::once(summary.clone())
        .chain(
            n.alerts
                .iter()
                .map(|a| format!("{} {}", a.state.as_str(), a.title)),
        )
        .collect::<Vec<_>>()
        .join("\n");
    json!({"text": truncate(&fallback, TEXT_MAX), "blocks": blocks})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncation_counts_characters_not_bytes() {
        assert_eq!(truncate("abc", 3), "abc");
        assert_eq!(truncate("abcd", 3), "ab…");
        let long = "é".repeat(5000);
        assert_eq!(truncate(&long, SECTION_MAX).chars().count(), SECTION_MAX);
    }
}
