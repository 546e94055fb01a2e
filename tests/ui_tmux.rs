//! The real binary in a real terminal: `exwatch demo` (or `run` on a config)
//! in a detached tmux session on a private socket. The test reads the screen
//! the way a user would, presses keys, and checks the terminal is handed
//! back on every way out (q, Ctrl-C, SIGTERM), that acknowledging on the
//! dashboard reaches PagerDuty (a local receiver), and that the silences
//! list undoes an acknowledgement and a silence.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed unwrap is a failed test

mod alert_common;
mod common;

use common::tmux::{Tmux, dashboard_visible, selected};
use std::process::Command;
use std::time::Duration;

#[test]
fn demo_shows_a_fault_acknowledges_and_quits_cleanly() {
    let t = Tmux::start("flow");
    let pid = t.pid();
    let s = t
        .wait_for(Duration::from_secs(30), dashboard_visible)
        .unwrap_or_else(|s| panic!("the dashboard did not show:\n{s}"));
    // 30 rows: the last exchange (kraken) is scrolled below at 120x40.
    assert!(s.contains("binance") && s.contains("coinbase"), "{s}");

    // The demo's fault cycle: OKX answers 503s from ~14 s, its breakers open.
    let s = t
        .wait_for(Duration::from_secs(45), |s| s.contains("OPEN"))
        .unwrap_or_else(|s| panic!("no breaker opened during the fault cycle:\n{s}"));
    let header = s.lines().next().unwrap_or_default();
    assert!(
        header.contains("okx in trouble"),
        "the header names the exchange:\n{s}"
    );

    // Acknowledge the newest firing alert from the feed.
    let s = t
        .wait_for(Duration::from_secs(20), |s| s.contains("FIRING"))
        .unwrap_or_else(|s| panic!("no alert fired during the fault cycle:\n{s}"));
    assert!(s.contains("okx"), "the OKX outage is in the feed:\n{s}");
    t.keys(&["Tab"]);
    let before = t.select(20, |l| l.contains("FIRING"));
    assert!(
        selected(&before).is_some_and(|l| l.contains("FIRING")),
        "no firing alert could be selected:\n{before}"
    );
    t.keys(&["a"]);
    t.wait_for(Duration::from_secs(10), |s| {
        s.contains("acknowledge sent") && selected(s).is_some_and(|l| l.contains("acked"))
    })
    .unwrap_or_else(|s| {
        panic!("the selected alert was not shown acknowledged:\nbefore:\n{before}\nafter:\n{s}")
    });

    // The help overlay comes from the keymap and closes again.
    t.keys(&["?"]);
    t.wait_for(Duration::from_secs(5), |s| {
        s.contains("Keys (Esc or ? closes)")
    })
    .unwrap_or_else(|s| panic!("no help overlay:\n{s}"));
    t.keys(&["Escape"]);
    t.wait_for(Duration::from_secs(5), |s| {
        !s.contains("Keys (Esc or ? closes)")
    })
    .unwrap_or_else(|s| panic!("help did not close:\n{s}"));

    t.keys(&["q"]);
    t.assert_exited_and_restored(pid, "q");
}

#[test]
fn ctrl_c_restores_the_terminal() {
    let t = Tmux::start("ctrlc");
    let pid = t.pid();
    t.wait_for(Duration::from_secs(30), dashboard_visible)
        .unwrap_or_else(|s| panic!("the dashboard did not show:\n{s}"));
    t.keys(&["C-c"]);
    t.assert_exited_and_restored(pid, "ctrl-c");
}

#[test]
fn sigterm_restores_the_terminal() {
    let t = Tmux::start("term");
    let pid = t.pid();
    t.wait_for(Duration::from_secs(30), dashboard_visible)
        .unwrap_or_else(|s| panic!("the dashboard did not show:\n{s}"));
    let st = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .expect("kill");
    assert!(st.success());
    t.assert_exited_and_restored(pid, "sigterm");
}

#[test]
fn acknowledging_on_the_dashboard_sends_pagerduty_acknowledge() {
    use alert_common::{Behaviour, Receiver};
    use exwatch::model::{EndpointKind, ExchangeKind};
    use exwatch::sim::scenario::FaultKind;

    let rt = tokio::runtime::Runtime::new().expect("runtime");
    // Binance's ticker answers 503 from 1 s on, for longer than the test.
    let sim = rt.block_on(common::sim::start(common::sim::scenario(vec![
        common::sim::fault(
            FaultKind::ServerError,
            ExchangeKind::Binance,
            Some(EndpointKind::Ticker),
            Duration::from_secs(1),
            Duration::from_secs(300),
        ),
    ])));
    let pd = rt.block_on(Receiver::start(Behaviour {
        ok_status: 202,
        ..Behaviour::default()
    }));
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        format!(
            "[alerts.grouping]\ngroup_wait = \"500ms\"\ngroup_interval = \"1s\"\n\
             [[alerts.sinks]]\nname = \"pd\"\nkind = \"pagerduty\"\nurl_env = \"EXW_UI_PD\"\n\
             routing_key_env = \"EXW_UI_PD_KEY\"\nmin_severity = \"info\"\n\
             [[exchanges]]\nname = \"binance\"\nkind = \"binance\"\nbase_url = \"{base}\"\n\
             [[exchanges.endpoints]]\nname = \"ticker\"\nkind = \"ticker\"\ninterval = \"200ms\"\n",
            base = sim.base_url(ExchangeKind::Binance),
        ),
    )
    .expect("write config");
    let t = Tmux::start_with(
        "ack",
        &format!("run -c {}", config.display()),
        &[
            ("EXW_UI_PD", format!("{}/v2/enqueue", pd.url)),
            ("EXW_UI_PD_KEY", "test-routing-key".into()),
        ],
    );
    let pid = t.pid();
    let actions = |key: &str| -> Vec<String> {
        pd.delivered()
            .iter()
            // The dedup_key is the incident id: `<root fingerprint>#<episode>`.
            .filter(|h| {
                h.body["dedup_key"]
                    .as_str()
                    .is_some_and(|k| k.split('#').next() == Some(key))
            })
            .map(|h| {
                h.body["event_action"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string()
            })
            .collect()
    };
    let key = "binance/ticker/error_rate";
    t.wait_for(Duration::from_secs(20), |_| {
        actions(key).contains(&"trigger".to_string())
    })
    .unwrap_or_else(|s| panic!("PagerDuty never got the trigger:\n{s}"));

    // Select the error-rate alert in the feed and acknowledge it.
    t.keys(&["Tab"]);
    let screen = t.select(10, |l| l.contains("failing") && l.contains("FIRING"));
    assert!(
        selected(&screen).is_some_and(|l| l.contains("failing")),
        "the error-rate alert could not be selected:\n{screen}"
    );
    t.keys(&["a"]);
    t.wait_for(Duration::from_secs(10), |s| {
        selected(s).is_some_and(|l| l.contains("acked"))
    })
    .unwrap_or_else(|s| panic!("not shown acknowledged:\n{s}"));
    t.wait_for(Duration::from_secs(15), |_| {
        actions(key).contains(&"acknowledge".to_string())
    })
    .unwrap_or_else(|s| {
        panic!(
            "PagerDuty never got the acknowledge: {:?}\n{s}",
            actions(key)
        )
    });
    let got = actions(key);
    assert_eq!(got.first().map(String::as_str), Some("trigger"), "{got:?}");
    assert_eq!(
        got.iter().filter(|a| *a == "trigger").count(),
        1,
        "paged once: {got:?}"
    );

    t.keys(&["q"]);
    t.assert_exited_and_restored(pid, "q");
    rt.block_on(sim.stop());
}

/// Issue #14, item 1: select an alert, let it resolve, press `a`: nothing is
/// acknowledged (not the alert that is still firing either, which the
/// cursor used to fall back onto) and the footer says why.
#[test]
fn acknowledging_a_selected_alert_that_resolved_acknowledges_nothing() {
    use exwatch::model::{EndpointKind, ExchangeKind};
    use exwatch::sim::scenario::FaultKind;

    let rt = tokio::runtime::Runtime::new().expect("runtime");
    // Binance's ticker fails for longer than the test; OKX's for 15 s, then recovers.
    let sim = rt.block_on(common::sim::start(common::sim::scenario(vec![
        common::sim::fault(
            FaultKind::ServerError,
            ExchangeKind::Binance,
            Some(EndpointKind::Ticker),
            Duration::from_secs(1),
            Duration::from_secs(300),
        ),
        common::sim::fault(
            FaultKind::ServerError,
            ExchangeKind::Okx,
            Some(EndpointKind::Ticker),
            Duration::from_secs(1),
            Duration::from_secs(15),
        ),
    ])));
    let dir = tempfile::tempdir().expect("tempdir");
    let journal = dir.path().join("journal.jsonl");
    let config = dir.path().join("config.toml");
    let exchange = |name: &str, kind: ExchangeKind| {
        format!(
            "[[exchanges]]\nname = \"{name}\"\nkind = \"{name}\"\nbase_url = \"{base}\"\n\
             [[exchanges.endpoints]]\nname = \"ticker\"\nkind = \"ticker\"\ninterval = \"200ms\"\n",
            base = sim.base_url(kind),
        )
    };
    std::fs::write(
        &config,
        format!(
            "[journal]\npath = \"{journal}\"\n\
             [breaker]\nopen_for = \"1s\"\nmax_open_for = \"2s\"\n\
             [alerts.detect.error_rate]\nwindow = \"3s\"\nclear_for = \"1s\"\n{}{}",
            exchange("binance", ExchangeKind::Binance),
            exchange("okx", ExchangeKind::Okx),
            journal = journal.display(),
        ),
    )
    .expect("write config");
    let t = Tmux::start_with("resolved", &format!("run -c {}", config.display()), &[]);
    let pid = t.pid();
    let okx_failing = |l: &str| l.contains("okx") && l.contains("failing") && l.contains("FIRING");
    t.wait_for(Duration::from_secs(20), |s| {
        s.lines().any(okx_failing)
            && s.lines()
                .any(|l| l.contains("binance") && l.contains("FIRING"))
    })
    .unwrap_or_else(|s| panic!("both error-rate alerts did not fire:\n{s}"));

    // Select OKX's error-rate alert while it fires.
    t.keys(&["Tab"]);
    let screen = t.select(20, okx_failing);
    assert!(
        selected(&screen).is_some_and(|l| okx_failing(&l)),
        "OKX's alert could not be selected:\n{screen}"
    );
    // It resolves (hidden from the feed): the cursor moves to no other row.
    let fp = "okx/ticker/error_rate";
    let s = t
        .wait_for(Duration::from_secs(50), |s| {
            s.contains(&format!("{fp} resolved at"))
        })
        .unwrap_or_else(|s| panic!("the selected alert was not shown resolved:\n{s}"));
    assert_eq!(selected(&s), None, "the cursor moved to another row:\n{s}");

    t.keys(&["a"]);
    let s = t
        .wait_for(Duration::from_secs(10), |s| {
            s.contains(&format!(
                "nothing acknowledged: the selected alert {fp} resolved at"
            ))
        })
        .unwrap_or_else(|s| panic!("the footer does not say why nothing was acknowledged:\n{s}"));
    assert!(
        s.lines()
            .any(|l| l.contains("binance") && l.contains("FIRING")),
        "the alert still firing is not shown firing:\n{s}"
    );
    assert!(!s.contains("acked"), "an alert was acknowledged:\n{s}");
    // Give a command sent anyway time to reach the journal, then read it.
    std::thread::sleep(Duration::from_secs(1));
    t.keys(&["q"]);
    t.assert_exited_and_restored(pid, "q");
    let text = std::fs::read_to_string(&journal).expect("the journal");
    assert!(
        text.contains(&format!("\"fingerprint\":\"{fp}\"")),
        "the journal has no alert lines (wrong path?)"
    );
    let acked: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("\"state\":\"acknowledged\""))
        .collect();
    assert!(acked.is_empty(), "acknowledged in the journal: {acked:?}");
    rt.block_on(sim.stop());
}

#[test]
fn the_silences_list_undoes_an_acknowledgement_and_a_silence() {
    use exwatch::model::{EndpointKind, ExchangeKind};
    use exwatch::sim::scenario::FaultKind;

    let rt = tokio::runtime::Runtime::new().expect("runtime");
    // Binance's ticker fails for longer than the test.
    let sim = rt.block_on(common::sim::start(common::sim::scenario(vec![
        common::sim::fault(
            FaultKind::ServerError,
            ExchangeKind::Binance,
            Some(EndpointKind::Ticker),
            Duration::from_secs(1),
            Duration::from_secs(300),
        ),
    ])));
    let dir = tempfile::tempdir().expect("tempdir");
    let journal = dir.path().join("journal.jsonl");
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        format!(
            "[journal]\npath = \"{journal}\"\n\
             [[exchanges]]\nname = \"binance\"\nkind = \"binance\"\nbase_url = \"{base}\"\n\
             [[exchanges.endpoints]]\nname = \"ticker\"\nkind = \"ticker\"\ninterval = \"200ms\"\n",
            journal = journal.display(),
            base = sim.base_url(ExchangeKind::Binance),
        ),
    )
    .expect("write config");
    let t = Tmux::start_with("silences", &format!("run -c {}", config.display()), &[]);
    let pid = t.pid();
    let firing = |l: &str| l.contains("binance") && l.contains("failing") && l.contains("FIRING");
    t.wait_for(Duration::from_secs(20), |s| s.lines().any(firing))
        .unwrap_or_else(|s| panic!("the error-rate alert did not fire:\n{s}"));
    t.keys(&["Tab"]);
    let screen = t.select(20, firing);
    assert!(
        selected(&screen).is_some_and(|l| firing(&l)),
        "the alert could not be selected:\n{screen}"
    );
    let list = "Silences and acknowledgements";
    let selected_is =
        |want: &'static str| move |s: &str| selected(s).is_some_and(|l| l.contains(want));

    // Acknowledge, see it in the list, undo it: the alert fires again.
    t.keys(&["a"]);
    t.wait_for(Duration::from_secs(10), selected_is("acked"))
        .unwrap_or_else(|s| panic!("not acknowledged:\n{s}"));
    t.keys(&["S"]);
    let s = t
        .wait_for(Duration::from_secs(5), |s| {
            s.contains(&format!("{list} (1)"))
                && s.lines()
                    .any(|l| l.contains("ack binance/ticker/error_rate#1") && l.contains("acked"))
        })
        .unwrap_or_else(|s| panic!("the acknowledgement is not listed:\n{s}"));
    let user = std::env::var("USER").unwrap_or_else(|_| "operator".into());
    assert!(
        s.contains(&user) || s.contains("operator"),
        "who is not shown:\n{s}"
    );
    t.keys(&["u"]);
    t.wait_for(Duration::from_secs(10), |s| {
        s.contains("unacknowledge sent") && s.contains(&format!("{list} (0)"))
    })
    .unwrap_or_else(|s| panic!("the acknowledgement was not withdrawn:\n{s}"));
    t.keys(&["Escape"]);
    t.wait_for(Duration::from_secs(10), |s| {
        !s.contains(list) && selected(s).is_some_and(|l| firing(&l))
    })
    .unwrap_or_else(|s| panic!("the alert is not firing again:\n{s}"));

    // Silence it for the default hour, see it listed with its expiry, undo it.
    t.keys(&["s"]);
    t.keys(&["Enter"]);
    t.wait_for(Duration::from_secs(10), selected_is("silenced"))
        .unwrap_or_else(|s| panic!("not silenced:\n{s}"));
    t.keys(&["S"]);
    t.wait_for(Duration::from_secs(5), |s| {
        s.lines().any(|l| {
            l.contains("silence #1 binance/ticker/error_rate")
                && (l.contains("expires in 59m") || l.contains("expires in 60m"))
        })
    })
    .unwrap_or_else(|s| panic!("the silence is not listed with its expiry:\n{s}"));
    t.keys(&["u"]);
    t.wait_for(Duration::from_secs(10), |s| {
        s.contains("unsilence sent") && s.contains(&format!("{list} (0)"))
    })
    .unwrap_or_else(|s| panic!("the silence was not removed:\n{s}"));
    t.keys(&["Escape"]);
    // The list closed before the next key: an Escape and an `o` read
    // together are Alt+o, not Escape then `o`.
    t.wait_for(Duration::from_secs(10), |s| {
        !s.contains(list) && selected(s).is_some_and(|l| firing(&l))
    })
    .unwrap_or_else(|s| panic!("the list is open or the alert is not firing again:\n{s}"));

    // Forcing the breaker open asks first; `n` cancels.
    t.keys(&["o"]);
    t.wait_for(Duration::from_secs(5), |s| {
        s.contains("force binance/ticker breaker open? y/n")
    })
    .unwrap_or_else(|s| panic!("no question asked:\n{s}"));
    t.keys(&["n"]);
    t.wait_for(Duration::from_secs(5), |s| s.contains("cancelled"))
        .unwrap_or_else(|s| panic!("not cancelled:\n{s}"));

    std::thread::sleep(Duration::from_millis(500));
    t.keys(&["q"]);
    t.assert_exited_and_restored(pid, "q");
    let text = std::fs::read_to_string(&journal).expect("the journal");
    let notes: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("\"event\":\"suppressions\""))
        .collect();
    assert_eq!(notes.len(), 4, "set, withdrawn, set, removed: {notes:#?}");
    assert!(notes[1].contains("acknowledgement of binance/ticker/error_rate#1 withdrawn by"));
    assert!(notes[3].contains("silence #1 (binance/ticker/error_rate) removed by"));
    assert!(
        !text.contains("\"cause\":\"forced_open\""),
        "the breaker was forced open though the question was answered n"
    );
    rt.block_on(sim.stop());
}
