//! `exwatch bench detect`: the simulator's labelled fault scenario through the
//! real pipeline (workers, adapters, validator, breaker, limiter → detectors →
//! engine → grouper) with fast polls, then a fault-free control stretch.
//! Prints per fault kind recall, precision and time to detect, false alerts
//! per hour in the control stretch, and notifications vs alerts raised.

use crate::alert::AlertSettings;
use crate::alert::engine::Engine;
use crate::alert::notification::Notification;
use crate::alert::notify::{Grouper, GroupingSettings};
use crate::clock::now_ms;
use crate::config::{self, Config};
use crate::model::{Alert, AlertState, Severity};
use crate::model::{EndpointId, Event};
use crate::monitor::Monitor;
use crate::sim::scenario::{FaultKind, Scenario};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::SocketAddr;
use std::time::Duration;
use strum::VariantArray;

#[derive(Debug, thiserror::Error)]
pub enum BenchDetectError {
    #[error("cannot start the simulator: {0}")]
    Sim(std::io::Error),
    #[error("bench config: {0}")]
    Config(String),
    #[error("cannot start the monitor: {0}")]
    Monitor(String),
}

fn config_for(base: &str, poll: Duration) -> Result<Config, BenchDetectError> {
    let ms = poll.as_millis().max(50);
    let mut text = format!(
        "[journal]\nenabled = false\n\n[instance]\nname = \"bench-detect\"\n\n[defaults]\ninterval = \"{ms}ms\"\ntimeout = \"1s\"\n\n\
         [breaker]\nconsecutive_failures = 3\nopen_for = \"4s\"\nmax_open_for = \"20s\"\nclose_after = 1\n\n\
         [validation]\nmax_age = \"5s\"\nfrozen_after = \"4s\"\n"
    );
    text.push_str(&crate::demo::sim_exchanges(
        base,
        crate::demo::SimBudget {
            capacity: 200,
            refill_per_sec: 100,
        },
        None,
        None,
    ));
    config::parse("(bench detect)", &text).map_err(|e| BenchDetectError::Config(e.to_string()))
}

struct Phase {
    t0_ms: i64,
    /// (raised at, alert) for each new alert or re-fire.
    raised: Vec<(i64, Alert)>,
    notifications: usize,
    /// With grouping scaled to the fast polls (group_wait 2s, group_interval
    /// 10s): every notification, to attribute them to fault episodes.
    notes_fast: Vec<Notification>,
    events: u64,
    /// The last incident each alert episode `(fingerprint, episode)` was in
    /// (an outage takes in the endpoint incidents that announced it).
    incident_of: HashMap<(String, u64), String>,
    /// (at, endpoint, interval ms): each endpoint's first interval and
    /// every change.
    intervals: Vec<(i64, EndpointId, u64)>,
}

impl Phase {
    /// The poll interval in effect at `at` for an endpoint (the shortest of
    /// the exchange's endpoints when `endpoint` is `None`).
    fn interval_at(&self, at: i64, exchange: Option<&str>, endpoint: Option<&str>) -> Option<u64> {
        let mut current: HashMap<&EndpointId, u64> = HashMap::new();
        for (t, id, ms) in &self.intervals {
            if *t > at {
                break;
            }
            current.insert(id, *ms);
        }
        current
            .iter()
            .filter(|(id, _)| {
                exchange.is_none_or(|x| x == id.exchange)
                    && endpoint.is_none_or(|x| x == id.endpoint)
            })
            .map(|(_, ms)| *ms)
            .min()
    }
}

async fn run_phase(
    scenario: Scenario,
    span: Duration,
    poll: Duration,
) -> Result<Phase, BenchDetectError> {
    let sim = crate::sim::spawn(SocketAddr::from(([127, 0, 0, 1], 0)), scenario)
        .await
        .map_err(BenchDetectError::Sim)?;
    let t0_ms = now_ms();
    let cfg = config_for(&format!("http://{}", sim.addr), poll)?;
    let mut monitor = Monitor::start(&cfg, 1)
        .await
        .map_err(|e| BenchDetectError::Monitor(e.to_string()))?;
    let Some(mut tap) = monitor.taps.pop() else {
        return Err(BenchDetectError::Monitor("no event tap".into()));
    };
    let mut engine = Engine::new(AlertSettings::default());
    let mut grouper = Grouper::new(GroupingSettings::default());
    let mut fast = Grouper::new(GroupingSettings {
        group_wait: Duration::from_secs(2),
        group_interval: Duration::from_secs(10),
        ..GroupingSettings::default()
    });
    let mut seen: HashMap<String, u64> = HashMap::new();
    let mut phase = Phase {
        t0_ms,
        raised: Vec::new(),
        notifications: 0,
        notes_fast: Vec::new(),
        events: 0,
        incident_of: HashMap::new(),
        intervals: Vec::new(),
    };
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    let end = tokio::time::Instant::now() + span;
    loop {
        let out = tokio::select! {
            ev = tap.recv() => match ev {
                Some(ev) => {
                    phase.events += 1;
                    if let Event::PollInterval { id, interval_ms }
                    | Event::Watching { id, interval_ms, .. } = &ev
                    {
                        phase.intervals.push((now_ms(), id.clone(), *interval_ms));
                    }
                    engine.on_event(&ev, now_ms())
                }
                None => break,
            },
            _ = tick.tick() => {
                let now = now_ms();
                let out = engine.tick(now);
                phase.notifications += grouper.due(now).len();
                phase.notes_fast.extend(fast.due(now));
                out
            }
            _ = tokio::time::sleep_until(end) => break,
        };
        let now = now_ms();
        for e in out {
            if let Event::AlertChanged { alert } = e {
                phase.incident_of.insert(
                    (alert.fingerprint.clone(), alert.occurrences),
                    alert.incident_or_own(),
                );
                let before = seen.get(&alert.fingerprint).copied();
                // Raised = reached `firing` (what pages someone); silenced and
                // inhibited alerts do not count until they do.
                if alert.state == AlertState::Firing && before != Some(alert.occurrences) {
                    seen.insert(alert.fingerprint.clone(), alert.occurrences);
                    phase.raised.push((now, alert.clone()));
                }
                fast.on_alert(alert.clone(), now);
                grouper.on_alert(alert, now);
            }
        }
    }
    monitor.stop().await;
    sim.stop().await;
    Ok(phase)
}

fn percentile(sorted: &[f64], q: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let i = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted.get(i).copied()
}

fn hard(kind: FaultKind) -> bool {
    !matches!(
        kind,
        FaultKind::Latency | FaultKind::Stale | FaultKind::RateLimit
    )
}

/// Run the labelled scenario once (`speed` > 1 compresses it) and a
/// `control` stretch with no faults; polls every `poll`.
pub async fn bench_detect(poll: Duration, control: Duration) -> Result<Value, BenchDetectError> {
    let mut scenario = Scenario::default_cycle();
    scenario.cycle = None;
    let last = scenario
        .faults
        .iter()
        .map(|f| f.at + f.duration)
        .max()
        .unwrap_or_default();
    let grace = Duration::from_secs(5).max(poll * 4);
    let run = run_phase(
        scenario.clone(),
        last + grace + Duration::from_secs(2),
        poll,
    )
    .await?;
    let quiet = run_phase(Scenario::quiet(), control, poll).await?;

    struct Episode {
        kind: FaultKind,
        exchange: Option<String>,
        endpoint: Option<String>,
        start: i64,
        end: i64,
        /// The endpoint's poll interval when the fault began, in ms.
        interval_ms: u64,
    }
    let episodes: Vec<Episode> = scenario
        .faults
        .iter()
        .map(|f| {
            let start = run.t0_ms + f.at.as_millis() as i64;
            Episode {
                kind: f.fault,
                exchange: f.exchange.map(|e| e.as_str().to_string()),
                endpoint: f.endpoint.map(|e| e.as_str().to_string()),
                start,
                end: run.t0_ms + (f.at + f.duration).as_millis() as i64,
                interval_ms: run
                    .interval_at(
                        start,
                        f.exchange.map(|e| e.as_str()),
                        f.endpoint.map(|e| e.as_str()),
                    )
                    .unwrap_or(poll.as_millis() as u64),
            }
        })
        .collect();
    let grace_ms = grace.as_millis() as i64;
    let matches = |ep: &Episode, at: i64, a: &Alert| {
        ep.exchange.as_ref().is_none_or(|x| *x == a.exchange)
            && match (&ep.endpoint, &a.endpoint) {
                (Some(x), Some(y)) => x == y,
                _ => true,
            }
            && at >= ep.start
            && at <= ep.end + grace_ms
    };
    let mut first_detect: Vec<Option<i64>> = vec![None; episodes.len()];
    let mut attributed: Vec<Vec<String>> = vec![Vec::new(); episodes.len()];
    // The incidents each episode's alerts belong to.
    let mut incidents: Vec<BTreeSet<String>> = vec![BTreeSet::new(); episodes.len()];
    let mut false_alerts = Vec::new();
    for (at, a) in &run.raised {
        match episodes.iter().position(|ep| matches(ep, *at, a)) {
            Some(i) => {
                if first_detect[i].is_none() {
                    first_detect[i] = Some(*at - episodes[i].start);
                }
                attributed[i].push(a.kind.name());
                incidents[i].insert(
                    run.incident_of
                        .get(&(a.fingerprint.clone(), a.occurrences))
                        .cloned()
                        .unwrap_or_else(|| a.incident_or_own()),
                );
            }
            None => false_alerts.push(json!({
                "fingerprint": a.fingerprint,
                "at_s": (*at - run.t0_ms) as f64 / 1000.0,
            })),
        }
    }
    let mut per_kind = BTreeMap::new();
    for &kind in FaultKind::VARIANTS {
        let idx: Vec<usize> = (0..episodes.len())
            .filter(|i| episodes[*i].kind == kind)
            .collect();
        if idx.is_empty() {
            continue;
        }
        let detected = idx.iter().filter(|i| first_detect[**i].is_some()).count();
        let mut ttd: Vec<f64> = idx
            .iter()
            .filter_map(|i| first_detect[*i])
            .map(|ms| ms as f64 / 1000.0)
            .collect();
        ttd.sort_by(f64::total_cmp);
        // Time to detect in the endpoint's own poll intervals at the fault's
        // start (adaptive polling slows quiet endpoints down).
        let mut ttd_polls: Vec<f64> = idx
            .iter()
            .filter_map(|i| {
                first_detect[*i].map(|ms| ms as f64 / episodes[*i].interval_ms.max(1) as f64)
            })
            .collect();
        ttd_polls.sort_by(f64::total_cmp);
        let mut kinds: BTreeMap<String, usize> = BTreeMap::new();
        for i in &idx {
            for k in &attributed[*i] {
                *kinds.entry(k.clone()).or_default() += 1;
            }
        }
        let tp: usize = kinds.values().sum();
        // Alerts matching no episode but raised while one of this kind ran.
        let fp_near = run
            .raised
            .iter()
            .filter(|(at, a)| {
                idx.iter().any(|i| {
                    let ep = &episodes[*i];
                    *at >= ep.start && *at <= ep.end + grace_ms
                }) && !episodes.iter().any(|ep| matches(ep, *at, a))
            })
            .count();
        let poll_s = poll.as_secs_f64();
        let p95 = percentile(&ttd, 0.95);
        per_kind.insert(
            kind.to_string(),
            json!({
                "episodes": idx.len(),
                "detected": detected,
                "recall": detected as f64 / idx.len() as f64,
                "alerts": tp,
                "precision": if tp + fp_near == 0 { Value::Null } else { json!(tp as f64 / (tp + fp_near) as f64) },
                "alert_kinds": kinds,
                "median_detect_s": percentile(&ttd, 0.5),
                "p95_detect_s": p95,
                "p95_detect_polls": p95.map(|s| s / poll_s),
                "p95_detect_effective_polls": percentile(&ttd_polls, 0.95),
                "interval_at_start_ms": idx.iter().map(|i| episodes[*i].interval_ms).collect::<Vec<_>>(),
                "hard_fault": hard(kind),
                "within_2_polls": p95.map(|s| s <= 2.0 * poll_s),
                "within_2_effective_polls": percentile(&ttd_polls, 0.95).map(|p| p <= 2.0),
            }),
        );
    }
    let raised = run.raised.len();
    let true_alerts = raised - false_alerts.len();
    let labels: Vec<String> = episodes
        .iter()
        .map(|e| {
            format!(
                "{} {}/{}",
                e.kind,
                e.exchange.as_deref().unwrap_or("*"),
                e.endpoint.as_deref().unwrap_or("*")
            )
        })
        .collect();
    let noise = noise(&labels, &attributed, &incidents, &run);
    let control_hours = control.as_secs_f64() / 3600.0;
    Ok(json!({
        "bench": "detect",
        "poll_ms": poll.as_millis() as u64,
        "scenario_s": (last + grace).as_secs_f64(),
        "episodes": episodes.len(),
        "episodes_detected": first_detect.iter().filter(|d| d.is_some()).count(),
        "alerts_raised": raised,
        "true_alerts": true_alerts,
        "false_alerts": false_alerts.len(),
        "precision": if raised == 0 { 1.0 } else { true_alerts as f64 / raised as f64 },
        "false_alert_list": false_alerts,
        "per_fault_kind": per_kind,
        "notifications": run.notifications,
        "notifications_fast_grouping": run.notes_fast.len(),
        "noise": noise,
        "events": run.events,
        "control": {
            "duration_s": control.as_secs_f64(),
            "alerts_raised": quiet.raised.len(),
            "false_alerts_per_hour": quiet.raised.len() as f64 / control_hours.max(1e-9),
            "alerts": quiet.raised.iter().map(|(at, a)| json!({
                "fingerprint": a.fingerprint,
                "at_s": (*at - quiet.t0_ms) as f64 / 1000.0,
            })).collect::<Vec<_>>(),
            "notifications": quiet.notifications,
        },
        "grouping": "notifications: default grouping (group_wait 30s, group_interval 5m: faults shorter than group_wait that resolve in time are never sent); notifications_fast_grouping: group_wait 2s, group_interval 10s",
    }))
}

/// The noise an on-call engineer gets per fault episode (issue #13): the
/// symptoms (alerts raised), the incidents they make, the notifications and
/// pages (firing notifications of severity critical or above, reminders
/// aside) with the fast grouping, the share of critical alerts, against the
/// targets (≤ 1.5 incidents, ≤ 1 page per episode).
fn noise(
    labels: &[String],
    attributed: &[Vec<String>],
    incidents: &[BTreeSet<String>],
    run: &Phase,
) -> Value {
    let episodes = labels.len();
    let per = |n: usize| n as f64 / episodes.max(1) as f64;
    let symptoms: usize = attributed.iter().map(Vec::len).sum();
    let per_episode_incidents: Vec<usize> = incidents.iter().map(BTreeSet::len).collect();
    let mut notifications = vec![0usize; episodes];
    let mut pages = vec![0usize; episodes];
    let mut resolves = vec![0usize; episodes];
    for n in &run.notes_fast {
        for (i, inc) in incidents.iter().enumerate() {
            if !inc.contains(&n.group.incident) || n.repeat {
                continue;
            }
            if n.state() == AlertState::Resolved {
                resolves[i] += 1;
            } else {
                notifications[i] += 1;
                if n.group.severity >= Severity::Critical && n.state() == AlertState::Firing {
                    pages[i] += 1;
                }
            }
        }
    }
    let critical = run
        .raised
        .iter()
        .filter(|(_, a)| a.severity >= Severity::Critical)
        .count();
    let max = |v: &[usize]| v.iter().copied().max().unwrap_or(0);
    let sum = |v: &[usize]| v.iter().sum::<usize>();
    json!({
        "episodes": episodes,
        "symptoms_per_episode": per(symptoms),
        "incidents_per_episode": per(sum(&per_episode_incidents)),
        "incidents_max": max(&per_episode_incidents),
        "notifications_per_episode": per(sum(&notifications)),
        "resolves_per_episode": per(sum(&resolves)),
        "pages_per_episode": per(sum(&pages)),
        "pages_max": max(&pages),
        "share_critical": if run.raised.is_empty() { 0.0 } else { critical as f64 / run.raised.len() as f64 },
        "per_episode": (0..episodes).map(|i| json!({
            "episode": labels[i],
            "incident_ids": incidents[i],
            "symptoms": attributed[i].len(),
            "incidents": per_episode_incidents[i],
            "notifications": notifications[i],
            "pages": pages[i],
            "resolves": resolves[i],
        })).collect::<Vec<_>>(),
        "targets": {
            "incidents_per_episode_at_most_1_5": per(sum(&per_episode_incidents)) <= 1.5,
            "pages_per_episode_at_most_1": max(&pages) <= 1,
        },
    })
}
