//! A snapshot with live silences and an acknowledged incident, built by
//! feeding the reducer the events the engine emits for them.

use super::{EXCHANGES, NOW, alert, healthy_exchange};
use exwatch::model::{AckInfo, AlertState, Event, Severity, SilenceInfo};
use exwatch::state::{Snapshot, State};

/// Healthy exchanges, then: silence #1 by ana on okx/book/* (2 alerts
/// under it), silence #2 by bob on kraken/*/* (none under it), and bybit's
/// ticker incident acknowledged by carol 4 min ago (2 open symptoms).
pub fn silenced() -> Snapshot {
    let mut st = State::new();
    for (i, (name, kind)) in EXCHANGES.iter().enumerate() {
        healthy_exchange(&mut st, i, name, *kind);
    }
    let silences = vec![
        SilenceInfo {
            id: 1,
            exchange: Some("okx".into()),
            endpoint: Some("book".into()),
            kind: None,
            by: "ana".into(),
            created_ms: NOW - 60_000,
            until_ms: NOW + 59 * 60_000,
        },
        SilenceInfo {
            id: 2,
            exchange: Some("kraken".into()),
            endpoint: None,
            kind: None,
            by: "bob".into(),
            created_ms: NOW - 30_000,
            until_ms: NOW + 2 * 3_600_000 + 1_000,
        },
    ];
    for kind in ["error_rate", "breaker_open"] {
        let mut a = alert(
            ("okx", Some("book"), kind),
            Severity::Critical,
            "HTTP 503 on 5 polls in a row",
            NOW - 90_000,
            1,
            AlertState::Silenced,
        );
        a.state_by = Some(silences[0].state_by());
        a.incident = Some("okx/book/error_rate#1".into());
        st.apply(&Event::AlertChanged { alert: a });
    }
    let incident = "bybit/ticker/error_rate#1";
    for (kind, title) in [
        ("error_rate", "error rate 100% over the last 8 polls"),
        ("no_data", "no valid data for 30s"),
    ] {
        let mut a = alert(
            ("bybit", Some("ticker"), kind),
            Severity::Critical,
            title,
            NOW - 300_000,
            1,
            AlertState::Acknowledged,
        );
        a.state_by = Some("carol".into());
        a.incident = Some(incident.into());
        st.apply(&Event::AlertChanged { alert: a });
    }
    st.apply(&Event::Suppressions {
        at_ms: NOW - 1_000,
        silences,
        acks: vec![AckInfo {
            incident: incident.into(),
            by: "carol".into(),
            at_ms: NOW - 240_000,
        }],
        note: "test fixture".into(),
    });
    st.snapshot()
}
