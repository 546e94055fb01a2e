//! The [alerts] and [journal] config sections: defaults, parsing, positioned errors.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed unwrap is a failed test

use exwatch::alert::sinks::SinkKind;
use exwatch::config;
use exwatch::journal::FsyncPolicy;
use exwatch::model::Severity;
use std::time::Duration;

const EXCHANGE: &str = r#"
[[exchanges]]
name = "bin"
kind = "binance"
[[exchanges.endpoints]]
name = "ticker"
kind = "ticker"
"#;

#[test]
fn defaults_without_any_alert_section() {
    let c = config::parse("x.toml", EXCHANGE).unwrap();
    assert_eq!(c.alerts.grouping.group_wait, Duration::from_secs(30));
    assert_eq!(c.alerts.grouping.group_interval, Duration::from_secs(300));
    assert_eq!(c.alerts.detect.latency.fire_z, 6.0);
    assert!(c.alerts.sinks.is_empty());
    assert_eq!(c.journal.fsync, FsyncPolicy::Alerts);
    assert!(c.journal.enabled);
}

#[test]
fn a_full_alerts_section_parses() {
    let text = format!(
        r#"
[alerts]
update_every = "1m"
inhibit_kinds = ["latency"]
[alerts.detect.latency]
fire_z = 8.0
clear_z = 4.0
for = "10s"
[alerts.detect.error_rate]
classes = ["timeout", "server_error"]
[alerts.grouping]
group_wait = "10s"
group_interval = "2m"
repeat_interval = "1h"
[[alerts.sinks]]
name = "oncall"
kind = "pagerduty"
routing_key_env = "PD_KEY"
min_severity = "critical"
[[alerts.sinks]]
name = "chat"
kind = "slack"
url_env = "SLACK_URL"
[[alerts.maintenance]]
name = "bin upgrade"
exchange = "bin"
start = "2026-11-25T02:00:00Z"
end = "2026-11-25T04:00:00Z"
[journal]
path = "/tmp/j.jsonl"
fsync = "always"
max_bytes = 1048576
keep = 3
{EXCHANGE}"#
    );
    let c = config::parse("x.toml", &text).unwrap();
    assert_eq!(c.alerts.detect.latency.fire_z, 8.0);
    assert_eq!(c.alerts.detect.latency.fire_for, Duration::from_secs(10));
    assert_eq!(c.alerts.sinks.len(), 2);
    assert_eq!(c.alerts.sinks[0].kind, SinkKind::Pagerduty);
    assert_eq!(c.alerts.sinks[0].min_severity, Severity::Critical);
    assert_eq!(c.alerts.sinks[1].min_severity, Severity::Warning);
    assert_eq!(
        c.alerts.maintenance[0].matcher.exchange.as_deref(),
        Some("bin")
    );
    assert_eq!(c.journal.fsync, FsyncPolicy::Always);
    assert_eq!(c.journal.keep, 3);
}

#[test]
fn errors_name_the_line_and_field() {
    let text = format!(
        r#"[alerts.detect.latency]
fire_z = 2.0
clear_z = 3.0
[[alerts.sinks]]
name = "chat"
kind = "slack"
url_env = "https://hooks.slack.com/services/T/B/X"
[[alerts.maintenance]]
name = "m"
start = "tomorrow"
end = "2026-11-25T04:00:00Z"
[alerts.dedup]
backend = "redis"
{EXCHANGE}"#
    );
    let err = config::parse("x.toml", &text).unwrap_err();
    let msg = err.to_string();
    let line_of = |field: &str| {
        err.0
            .iter()
            .find(|e| e.field == field)
            .map(|e| e.line)
            .unwrap_or_else(|| panic!("no error for {field}: {msg}"))
    };
    assert_eq!(line_of("alerts.detect.latency.clear_z"), 3);
    assert_eq!(line_of("alerts.sinks[0].url_env"), 7);
    assert_eq!(line_of("alerts.maintenance[0].start"), 10);
    assert_eq!(line_of("alerts.dedup.backend"), 13);
    // The secret-looking value is not echoed back.
    assert!(!msg.contains("hooks.slack.com"), "{msg}");
}
