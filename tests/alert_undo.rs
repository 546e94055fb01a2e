//! Undoing an operator's silence or acknowledgement, through the real alert
//! engine, the real reducer and the real notification grouper: the alert
//! comes back as firing and is notified again, and the snapshot lists what
//! is silenced and acknowledged, by whom, until when. Then the whole monitor
//! against the simulator on 127.0.0.1: commands in, journal out, and a
//! replay of that journal showing the same list.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed unwrap is a failed test

mod common;

use exwatch::alert::AlertSettings;
use exwatch::alert::engine::Engine;
use exwatch::alert::notify::{Grouper, GroupingSettings};
use exwatch::model::{Alert, AlertState, Command};
use exwatch::model::{EndpointId, EndpointKind, ExchangeKind};
use exwatch::model::{Event, Outcome, Sample};
use exwatch::state::State;
use std::time::Duration;

const FP: &str = "bin/ticker/error_rate";
/// The same alert in the monitor test, on the simulator's Binance.
const BFP: &str = "binance/ticker/error_rate";

fn watching(exchange: &str, endpoint: &str) -> Event {
    Event::Watching {
        id: EndpointId::new(exchange, endpoint),
        exchange_kind: ExchangeKind::Binance,
        kind: EndpointKind::Ticker,
        url: "http://127.0.0.1:1/".into(),
        interval_ms: 1000,
    }
}

fn fail(exchange: &str, endpoint: &str, at_ms: i64) -> Event {
    Event::Sample(Sample {
        id: EndpointId::new(exchange, endpoint),
        at_ms,
        latency_us: 20_000,
        status: Some(503),
        outcome: Outcome::Http {
            status: 503,
            detail: "unavailable".into(),
        },
        summary: None,
        price: None,
        exchange_ts_ms: None,
        signal: None,
    })
}

/// The engine, the reducer and the grouper wired as the monitor's core
/// wires them: every engine output goes to the reducer; alert changes to
/// the grouper.
struct Rig {
    engine: Engine,
    state: State,
    grouper: Grouper,
    out: Vec<Event>,
}

impl Rig {
    fn new() -> Rig {
        let mut s = AlertSettings::default();
        // Two failing endpoints of one exchange would be an outage; not the point here.
        s.detect.breaker.outage_min_endpoints = 10;
        Rig {
            engine: Engine::new(s),
            state: State::new(),
            grouper: Grouper::new(GroupingSettings {
                group_wait: Duration::from_secs(1),
                group_interval: Duration::from_secs(5),
                repeat_interval: Duration::from_secs(3600),
                queue: 16,
            }),
            out: Vec::new(),
        }
    }

    fn take(&mut self, evs: Vec<Event>, now: i64) -> Vec<Event> {
        for ev in &evs {
            self.state.apply(ev);
            if let Event::AlertChanged { alert } = ev {
                self.grouper.on_alert(alert.clone(), now);
            }
        }
        self.out.extend(evs.iter().cloned());
        evs
    }

    fn event(&mut self, ev: Event, now: i64) -> Vec<Event> {
        self.state.apply(&ev);
        let out = self.engine.on_event(&ev, now);
        self.take(out, now)
    }

    fn command(&mut self, cmd: Command, now: i64) -> Vec<Event> {
        let out = self.engine.on_command(&cmd, now);
        self.take(out, now)
    }

    fn tick(&mut self, now: i64) -> Vec<Event> {
        let out = self.engine.tick(now);
        self.take(out, now)
    }

    fn raise(&mut self, exchange: &str, endpoint: &str, t0: i64) {
        self.event(watching(exchange, endpoint), t0);
        self.event(fail(exchange, endpoint, t0), t0);
        self.event(fail(exchange, endpoint, t0 + 1000), t0 + 1000);
    }

    fn alert(&self, fp: &str) -> Alert {
        self.engine.alert(fp).cloned().expect("the alert is held")
    }
}

fn changes(evs: &[Event]) -> Vec<Alert> {
    evs.iter()
        .filter_map(|e| match e {
            Event::AlertChanged { alert } => Some(alert.clone()),
            _ => None,
        })
        .collect()
}

fn suppressions(evs: &[Event]) -> Vec<&Event> {
    evs.iter()
        .filter(|e| matches!(e, Event::Suppressions { .. }))
        .collect()
}

fn silence(exchange: &str, endpoint: Option<&str>, secs: u64, by: &str) -> Command {
    Command::Silence {
        exchange: Some(exchange.into()),
        endpoint: endpoint.map(String::from),
        kind: None,
        duration: Duration::from_secs(secs),
        by: by.into(),
    }
}

#[test]
fn an_unsilenced_alert_that_still_fires_fires_again_and_is_notified() {
    let mut r = Rig::new();
    r.raise("bin", "ticker", 1000);
    assert_eq!(r.alert(FP).state, AlertState::Firing);
    // Told once: firing.
    let told = r.grouper.due(4_000);
    assert_eq!(told.len(), 1, "{told:#?}");
    assert_eq!(told[0].state(), AlertState::Firing);

    let set = r.command(silence("bin", Some("ticker"), 3600, "ana"), 5_000);
    assert_eq!(changes(&set)[0].state, AlertState::Silenced);
    let sup = suppressions(&set);
    assert_eq!(sup.len(), 1, "one Suppressions event per change: {set:#?}");
    let snap = r.state.snapshot();
    assert_eq!(snap.silences.len(), 1);
    let s = &snap.silences[0];
    assert_eq!(
        (s.silence.id, s.silence.by.as_str(), s.silence.created_ms),
        (1, "ana", 5_000)
    );
    assert_eq!(s.silence.until_ms, 5_000 + 3_600_000);
    assert_eq!(s.silence.matcher_label(), "bin/ticker/*");
    assert_eq!(s.covers, 1, "it silences the one open alert");
    // The silence is news: the incident is told it is silenced.
    r.grouper.due(11_000);

    // Undo it: an unknown id changes nothing.
    assert!(
        r.command(
            Command::Unsilence {
                id: 9,
                by: "bob".into()
            },
            12_000
        )
        .is_empty()
    );
    let undone = r.command(
        Command::Unsilence {
            id: 1,
            by: "bob".into(),
        },
        12_000,
    );
    let back = changes(&undone);
    assert_eq!(back.len(), 1, "{undone:#?}");
    assert_eq!(back[0].state, AlertState::Firing);
    match suppressions(&undone).as_slice() {
        [Event::Suppressions { silences, note, .. }] => {
            assert!(silences.is_empty());
            assert!(
                note.contains("silence #1") && note.contains("bob"),
                "{note}"
            );
        }
        other => panic!("{other:#?}"),
    }
    assert!(r.state.snapshot().silences.is_empty());
    // It still fails: new samples keep it firing, not silenced.
    r.event(fail("bin", "ticker", 13_000), 13_000);
    assert_eq!(r.alert(FP).state, AlertState::Firing);
    // And the incident is told again, as firing, by the usual rules.
    let again = r.grouper.due(20_000);
    assert_eq!(again.len(), 1, "{again:#?}");
    assert_eq!(again[0].state(), AlertState::Firing);
}

#[test]
fn withdrawing_an_acknowledgement_makes_the_incident_fire_again() {
    let mut r = Rig::new();
    r.raise("bin", "ticker", 1000);
    r.grouper.due(4_000);
    let incident = r.alert(FP).incident.clone().expect("an incident");
    let acked = r.command(
        Command::Acknowledge {
            fingerprint: FP.into(),
            by: "ana".into(),
            episode: None,
        },
        5_000,
    );
    assert_eq!(changes(&acked)[0].state, AlertState::Acknowledged);
    let snap = r.state.snapshot();
    assert_eq!(snap.acks.len(), 1);
    assert_eq!(snap.acks[0].ack.incident, incident);
    assert_eq!(
        (snap.acks[0].ack.by.as_str(), snap.acks[0].ack.at_ms),
        ("ana", 5_000)
    );
    assert_eq!(snap.acks[0].alerts, 1);
    assert_eq!(snap.acks[0].title, r.alert(FP).title);
    let told = r.grouper.due(11_000);
    assert_eq!(told[0].state(), AlertState::Acknowledged);

    // Not acknowledged / unknown: nothing.
    assert!(
        r.command(
            Command::Unacknowledge {
                incident: "nope#1".into(),
                by: "bob".into()
            },
            12_000
        )
        .is_empty()
    );
    let undone = r.command(
        Command::Unacknowledge {
            incident: incident.clone(),
            by: "bob".into(),
        },
        12_000,
    );
    assert_eq!(changes(&undone)[0].state, AlertState::Firing);
    assert!(r.state.snapshot().acks.is_empty());
    // Twice is nothing.
    assert!(
        r.command(
            Command::Unacknowledge {
                incident,
                by: "bob".into()
            },
            12_500
        )
        .is_empty()
    );
    // New failures do not bring the acknowledgement back.
    r.event(fail("bin", "ticker", 13_000), 13_000);
    assert_eq!(r.alert(FP).state, AlertState::Firing);
    let again = r.grouper.due(20_000);
    assert_eq!(again.len(), 1, "{again:#?}");
    assert_eq!(again[0].state(), AlertState::Firing);
}

#[test]
fn an_unsilenced_alert_of_an_acknowledged_incident_stays_acknowledged() {
    let mut r = Rig::new();
    r.raise("bin", "ticker", 1000);
    r.command(
        Command::Acknowledge {
            fingerprint: FP.into(),
            by: "ana".into(),
            episode: None,
        },
        2_500,
    );
    r.command(silence("bin", None, 600, "ana"), 3_000);
    assert_eq!(r.alert(FP).state, AlertState::Silenced);
    let snap = r.state.snapshot();
    assert_eq!((snap.silences.len(), snap.acks.len()), (1, 1));
    let back = changes(&r.command(
        Command::Unsilence {
            id: 1,
            by: "ana".into(),
        },
        4_000,
    ));
    assert_eq!(back[0].state, AlertState::Acknowledged);
}

#[test]
fn expiry_and_a_closed_incident_are_reported_once() {
    let mut r = Rig::new();
    r.raise("bin", "ticker", 1000);
    r.raise("bin", "book", 1000);
    r.command(silence("bin", Some("ticker"), 10, "ana"), 3_000);
    r.command(silence("bin", Some("book"), 3600, "ana"), 3_000);
    assert_eq!(
        r.state
            .snapshot()
            .silences
            .iter()
            .map(|s| (s.silence.id, s.covers))
            .collect::<Vec<_>>(),
        [(1, 1), (2, 1)]
    );
    // Nothing changes: nothing reported.
    assert!(suppressions(&r.tick(4_000)).is_empty());
    r.event(fail("bin", "ticker", 12_000), 12_000);
    let expired = r.tick(13_001);
    match suppressions(&expired).as_slice() {
        [Event::Suppressions { silences, note, .. }] => {
            assert_eq!(silences.iter().map(|s| s.id).collect::<Vec<_>>(), [2]);
            assert_eq!(note, "silence #1 expired");
        }
        other => panic!("{other:#?}"),
    }
    assert_eq!(r.alert(FP).state, AlertState::Firing);
    assert!(suppressions(&r.tick(14_000)).is_empty());
    // A second silence over the same alert: it counts for the older one.
    r.command(silence("bin", None, 3600, "bob"), 15_000);
    let snap = r.state.snapshot();
    assert_eq!(
        snap.silences
            .iter()
            .map(|s| (s.silence.id, s.covers))
            .collect::<Vec<_>>(),
        [(2, 1), (3, 1)]
    );
}

#[test]
fn a_journal_line_of_suppressions_reads_back_and_old_shapes_still_read() {
    let mut r = Rig::new();
    r.raise("bin", "ticker", 1000);
    let evs = r.command(silence("bin", None, 60, "ana"), 3_000);
    let sup = suppressions(&evs)[0].clone();
    let line = serde_json::to_string(&sup).unwrap();
    assert!(line.starts_with(r#"{"event":"suppressions""#), "{line}");
    let back: Event = serde_json::from_str(&line).unwrap();
    assert_eq!(back, sup);
    // Lists and note may be missing.
    let bare: Event = serde_json::from_str(r#"{"event":"suppressions","at_ms":5}"#).unwrap();
    let mut st = State::new();
    st.apply(&bare);
    assert!(st.snapshot().silences.is_empty());
    // A snapshot serialized before silences existed still reads.
    let old = serde_json::json!({"last_event_ms": 1, "events": 0, "exchanges": [], "health": [], "alerts": []});
    let snap: exwatch::state::Snapshot = serde_json::from_value(old).unwrap();
    assert!(snap.silences.is_empty() && snap.acks.is_empty());
}

/// Polls the monitor's snapshots until `pred` holds (at most `secs`).
async fn until(
    rx: &tokio::sync::watch::Receiver<std::sync::Arc<exwatch::state::Snapshot>>,
    secs: u64,
    what: &str,
    pred: impl Fn(&exwatch::state::Snapshot) -> bool,
) -> std::sync::Arc<exwatch::state::Snapshot> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        let snap = rx.borrow().clone();
        if pred(&snap) {
            return snap;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: not within {secs}s; silences {:#?}, alerts {:#?}",
            snap.silences,
            snap.alerts
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_monitor_journals_undo_and_a_replay_shows_the_same_list() {
    use common::sim::{fault, scenario, start};
    use exwatch::model::ExchangeKind;
    use exwatch::sim::scenario::FaultKind;

    let sim = start(scenario(vec![fault(
        FaultKind::ServerError,
        ExchangeKind::Binance,
        Some(EndpointKind::Ticker),
        Duration::from_millis(200),
        Duration::from_secs(300),
    )]))
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let journal = dir.path().join("journal.jsonl");
    let text = format!(
        "[log]\ndir = \"{logs}\"\n[journal]\npath = \"{journal}\"\n\
         [alerts.detect.error_rate]\nwindow = \"1s\"\n\
         [[exchanges]]\nname = \"binance\"\nkind = \"binance\"\nbase_url = \"{base}\"\n\
         [[exchanges.endpoints]]\nname = \"ticker\"\nkind = \"ticker\"\ninterval = \"100ms\"\ntimeout = \"1s\"\n",
        logs = dir.path().display(),
        journal = journal.display(),
        base = sim.base_url(ExchangeKind::Binance),
    );
    let cfg = exwatch::config::parse("undo.toml", &text).expect("config");
    let monitor = exwatch::monitor::Monitor::start(&cfg, 0)
        .await
        .expect("monitor");
    let rx = monitor.snapshots.clone();
    until(&rx, 20, "the error-rate alert fires", |s| {
        s.alerts
            .iter()
            .any(|a| a.fingerprint == BFP && a.state == AlertState::Firing)
    })
    .await;
    let send = |cmd: Command| {
        let tx = monitor.commands.clone();
        async move { tx.send(cmd).await.expect("the core takes commands") }
    };
    send(silence("binance", Some("ticker"), 3600, "ana")).await;
    send(silence("binance", None, 7200, "bob")).await;
    let snap = until(&rx, 10, "both silences listed", |s| s.silences.len() == 2).await;
    // The endpoint's alerts (error rate, breaker open, ...) count for the
    // older silence, the one that silences them.
    let (one, two) = (&snap.silences[0], &snap.silences[1]);
    assert_eq!((one.silence.id, one.silence.by.as_str()), (1, "ana"));
    assert_eq!((two.silence.id, two.silence.by.as_str()), (2, "bob"));
    assert!(one.covers >= 1 && two.covers == 0, "{:?}", snap.silences);
    send(Command::Unsilence {
        id: 1,
        by: "carol".into(),
    })
    .await;
    // Still silenced, now by bob's silence.
    let snap = until(&rx, 10, "silence #1 gone", |s| s.silences.len() == 1).await;
    assert_eq!(snap.silences[0].silence.id, 2);
    assert!(snap.silences[0].covers >= 1, "{:?}", snap.silences);
    send(Command::Unsilence {
        id: 2,
        by: "carol".into(),
    })
    .await;
    until(&rx, 10, "the alert fires again", |s| {
        s.silences.is_empty()
            && s.alerts
                .iter()
                .any(|a| a.fingerprint == BFP && a.state == AlertState::Firing)
    })
    .await;
    send(Command::Acknowledge {
        fingerprint: BFP.into(),
        by: "dan".into(),
        episode: None,
    })
    .await;
    let live = until(&rx, 10, "the acknowledgement listed", |s| s.acks.len() == 1).await;
    assert_eq!(live.acks[0].ack.by, "dan");
    monitor.stop().await;
    sim.stop().await;

    let mut entries = Vec::new();
    for f in exwatch::journal::files(&journal) {
        exwatch::journal::for_each_entry(&f, |e| entries.push(e)).expect("read");
    }
    let notes: Vec<String> = entries
        .iter()
        .filter_map(|e| match &e.ev {
            Event::Suppressions { note, .. } => Some(note.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(
        notes,
        [
            "silence #1 set by ana",
            "silence #2 set by bob",
            "silence #1 (binance/ticker/*) removed by carol",
            "silence #2 (binance/*/*) removed by carol",
            "binance/ticker/error_rate acknowledged by dan",
        ]
    );
    let mut replay = exwatch::replay::Replay::new(entries);
    replay.run_to_end();
    let replayed = replay.snapshot();
    assert_eq!(replayed.silences, live.silences);
    assert_eq!(replayed.acks, live.acks);
}
