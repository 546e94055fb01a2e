//! Issue #13's acceptance run: the demo's fault cycle (every fault once, in
//! two minutes) served by the simulator, polled by the real pipeline
//! (workers, adapters, breaker, limiter, detectors, engine, notifier) with a
//! webhook sink pointed at a local receiver on 127.0.0.1. An operator forces
//! one quiet endpoint's breaker open meanwhile. What the receiver gets:
//!
//! * every fault episode: exactly one incident (from the journal);
//! * every incident that reaches critical: exactly one firing notification
//!   (one page) and its resolve; symptoms ride along. A warning-only
//!   incident is told at most once, plus its resolve: a warning waits
//!   `group_interval`, so one shorter than that (the 6 s price jump) is
//!   journaled and shown but told to nobody, by design;
//! * nothing at all about the endpoint forced open;
//! * no critical alert on an endpoint that is only held by the limiter
//!   (Binance's siblings during the ban, Bybit's during the 429s);
//! * the OKX outage's incident resolves only after the simulated outage
//!   ends.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed unwrap is a failed test

use crate::alert_common::{Behaviour, Hit, Receiver};
use crate::common;
use exwatch::model::{Command, EndpointId, Event, ExchangeKind};
use exwatch::monitor::Monitor;
use exwatch::sim::scenario::Scenario;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

const POLL_MS: u64 = 500;
/// After a fault ends: clear_for (10 s for error_rate) plus grouping.
const SETTLE: Duration = Duration::from_secs(25);

fn config(base: &str, journal: &std::path::Path) -> String {
    let mut text = format!(
        "[journal]\npath = \"{}\"\n[instance]\nname = \"incidents-demo\"\n\
         [defaults]\ninterval = \"{POLL_MS}ms\"\ntimeout = \"1s\"\n\
         [breaker]\nconsecutive_failures = 3\nopen_for = \"4s\"\nmax_open_for = \"20s\"\nclose_after = 1\n\
         [validation]\nmax_age = \"5s\"\nfrozen_after = \"4s\"\n\
         [alerts.grouping]\ngroup_wait = \"2s\"\ngroup_interval = \"15s\"\nrepeat_interval = \"1h\"\n\
         [[alerts.sinks]]\nname = \"hook\"\nkind = \"webhook\"\nurl_env = \"EXW_INCIDENTS_HOOK\"\nmin_severity = \"info\"\n",
        journal.display()
    );
    text.push_str(&exwatch::demo::sim_exchanges(
        base,
        exwatch::demo::SimBudget {
            capacity: 200,
            refill_per_sec: 100,
        },
        None,
        None,
    ));
    text
}

/// One webhook notification, as the receiver saw it.
struct Note {
    at_s: f64,
    /// When its first alert (the incident's root) went to its state, s
    /// from the start.
    root_at_s: f64,
    incident: String,
    state: String,
    repeat: bool,
}

fn notes(hits: &[Hit], t0: Instant, t0_ms: i64) -> Vec<Note> {
    hits.iter()
        .map(|h| Note {
            at_s: h.at.duration_since(t0).as_secs_f64(),
            root_at_s: (h.body["alerts"][0]["state_at_ms"].as_i64().unwrap() - t0_ms) as f64
                / 1000.0,
            incident: h.body["incident"]["id"].as_str().unwrap().to_string(),
            state: h.body["incident"]["state"].as_str().unwrap().to_string(),
            repeat: h.body["repeat"].as_bool().unwrap(),
        })
        .collect()
}

/// `exchange/endpoint` of an incident's root (`okx/*` for exchange-wide).
fn root_place(incident: &str) -> String {
    let root = incident.rsplit_once('#').unwrap().0;
    let mut parts = root.split('/');
    format!("{}/{}", parts.next().unwrap(), parts.next().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_cycle_gives_one_notified_incident_per_fault_episode() {
    // The receiver listens where EXW_INCIDENTS_HOOK (set before any test ran) points.
    let hook = Receiver::start_on(
        crate::hook_listener("EXW_INCIDENTS_HOOK"),
        Behaviour::default(),
    )
    .await;
    let mut scenario = Scenario::default_cycle();
    scenario.cycle = None;
    let faults = scenario.faults.clone();
    let sim = common::sim::start(scenario).await;
    let t0 = Instant::now();
    let t0_ms = exwatch::clock::wall_ms();
    let dir = tempfile::tempdir().unwrap();
    let journal_path = dir.path().join("journal.jsonl");
    let cfg = exwatch::config::parse(
        "(incidents demo)",
        &config(&format!("http://{}", sim.addr), &journal_path),
    )
    .expect("config");
    let monitor = Monitor::start(&cfg, 0).await.expect("monitor");

    // The operator forces Kraken's time endpoint open (no fault there) for
    // the whole cycle, then resets it.
    let forced = EndpointId::new("kraken", "time");
    tokio::time::sleep(Duration::from_secs(3)).await;
    monitor
        .commands
        .send(Command::ForceOpen { id: forced.clone() })
        .await
        .unwrap();
    let last_end = faults.iter().map(|f| f.at + f.duration).max().unwrap();
    tokio::time::sleep_until((t0 + last_end + SETTLE).into()).await;
    monitor
        .commands
        .send(Command::ResetBreaker { id: forced.clone() })
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    monitor.stop().await;
    sim.stop().await;

    let notes = notes(&hook.delivered(), t0, t0_ms);
    assert!(!notes.is_empty(), "no notification at all");
    let mut by_incident: BTreeMap<&str, Vec<&Note>> = BTreeMap::new();
    for n in &notes {
        by_incident.entry(&n.incident).or_default().push(n);
    }
    let summary: Vec<String> = notes
        .iter()
        .map(|n| {
            format!(
                "{:6.1}s {} {} (root at {:.1}s)",
                n.at_s, n.state, n.incident, n.root_at_s
            )
        })
        .collect();

    // What the engine decided, from the journal: each incident's symptoms
    // (fingerprint, severity, state, when), in order.
    let (entries, _) = exwatch::journal::read_file(&journal_path).expect("journal");
    // An outage takes in the endpoint incidents that announced it: an
    // alert episode belongs to the last incident it was in.
    let mut last: BTreeMap<(String, u64), String> = BTreeMap::new();
    for e in &entries {
        if let Event::AlertChanged { alert } = &e.ev {
            let id = alert
                .incident
                .clone()
                .expect("every alert is in an incident");
            last.insert((alert.fingerprint.clone(), alert.occurrences), id);
        }
    }
    let mut incidents: BTreeMap<String, Vec<(String, String, String, f64)>> = BTreeMap::new();
    for e in &entries {
        if let Event::AlertChanged { alert } = &e.ev {
            let id = last[&(alert.fingerprint.clone(), alert.occurrences)].clone();
            incidents.entry(id).or_default().push((
                alert.fingerprint.clone(),
                alert.severity.as_str().to_string(),
                alert.state.as_str().to_string(),
                (alert.state_at_ms - t0_ms) as f64 / 1000.0,
            ));
        }
    }
    // When each incident's root fired.
    let root_fired = |id: &str| -> f64 {
        let root = id.rsplit_once('#').unwrap().0;
        incidents[id]
            .iter()
            .find(|(fp, _, state, _)| fp == root && state == "firing")
            .or_else(|| incidents[id].first())
            .map(|x| x.3)
            .unwrap()
    };
    let critical = |id: &str| {
        incidents[id]
            .iter()
            .any(|(_, sev, _, _)| sev == "critical" || sev == "emergency")
    };

    // Each fault episode: exactly one incident rooted on its exchange (and
    // endpoint, or exchange-wide) whose root fired while it ran (or just
    // after); each incident belongs to an episode.
    let mut claimed: Vec<&str> = Vec::new();
    for f in &faults {
        let ex = f.exchange.unwrap().as_str();
        let (from, to) = (f.at.as_secs_f64(), (f.at + f.duration).as_secs_f64() + 5.0);
        let mine: Vec<&str> = incidents
            .keys()
            .filter(|id| {
                let place = root_place(id);
                let here = match f.endpoint {
                    Some(ep) => {
                        place == format!("{ex}/{}", ep.as_str()) || place == format!("{ex}/*")
                    }
                    None => place.starts_with(&format!("{ex}/")),
                };
                let at = root_fired(id);
                here && at >= from && at <= to
            })
            .map(String::as_str)
            .collect();
        assert_eq!(
            mine.len(),
            1,
            "{} on {ex}/{:?} at {from}s: incidents {mine:?}\n{:#?}\n{summary:#?}",
            f.fault,
            f.endpoint,
            incidents
                .keys()
                .map(|k| (k, root_fired(k)))
                .collect::<Vec<_>>()
        );
        claimed.push(mine[0]);
    }
    let stray: Vec<&String> = incidents
        .keys()
        .filter(|id| !claimed.contains(&id.as_str()))
        .collect();
    assert!(stray.is_empty(), "incidents of no fault: {stray:?}");

    // One page per incident that reaches critical, then its resolve; a
    // warning-only incident at most one notification, then its resolve.
    for id in incidents.keys() {
        let ns = by_incident.get(id.as_str()).cloned().unwrap_or_default();
        let firing = ns
            .iter()
            .filter(|n| !n.repeat && n.state == "firing")
            .count();
        let resolved = ns.iter().filter(|n| n.state == "resolved").count();
        if critical(id) {
            assert_eq!(
                (firing, resolved),
                (1, 1),
                "{id}: {firing} firing and {resolved} resolved notifications\n{summary:#?}"
            );
        } else {
            assert!(
                firing <= 1 && resolved == firing,
                "{id} (warning): {firing} firing and {resolved} resolved notifications\n{summary:#?}"
            );
        }
    }
    for id in by_incident.keys() {
        assert!(
            incidents.contains_key(*id),
            "notified {id} is not in the journal"
        );
    }

    // Nothing about the endpoint the operator forced open: not even an
    // alert on screen.
    for (id, symptoms) in &incidents {
        for (fp, ..) in symptoms {
            assert!(
                !fp.starts_with("kraken/time/"),
                "forced-open endpoint raised {fp} in {id}"
            );
        }
    }

    // Held siblings raise nothing critical while the exchange holds us.
    for (ex, faulted, window) in [
        ("binance", "ticker", (54.0, 66.0 + 5.0)),
        ("bybit", "ticker", (26.0, 32.0 + 5.0)),
    ] {
        for symptoms in incidents.values() {
            for (fp, sev, state, at) in symptoms {
                let mut parts = fp.split('/');
                let held_sibling = parts.next() == Some(ex)
                    && parts.next().is_some_and(|e| e != faulted && e != "*");
                assert!(
                    !(held_sibling
                        && state == "firing"
                        && (sev == "critical" || sev == "emergency")
                        && *at >= window.0
                        && *at <= window.1),
                    "critical alert on a held endpoint: {fp} at {at}s"
                );
            }
        }
    }

    // The OKX outage's incident lasts as long as the simulated outage.
    let outage = faults
        .iter()
        .find(|f| f.exchange == Some(ExchangeKind::Okx) && f.endpoint.is_none())
        .unwrap();
    let end_s = (outage.at + outage.duration).as_secs_f64();
    let okx = by_incident
        .iter()
        .find(|(id, _)| id.starts_with("okx/*/outage#"))
        .map(|(_, ns)| ns)
        .unwrap_or_else(|| panic!("no okx outage incident\n{summary:#?}"));
    let resolved_at = okx
        .iter()
        .find(|n| n.state == "resolved")
        .map(|n| n.at_s)
        .unwrap();
    assert!(
        resolved_at >= end_s,
        "okx outage incident resolved at {resolved_at}s, the outage ran until {end_s}s"
    );
}
