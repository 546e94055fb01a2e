//! Replay of a journal: the same reducer the live monitor uses, fed from
//! journal entries instead of workers, so a replay shows what the live
//! screen showed.
//!
//! [`Replay`] is the pure part (apply one entry, run to a recorded time,
//! jump to the next alert); [`spawn`] paces it against the clock at a
//! chosen speed and takes [`Control`]s (pause, resume, step, speed, next
//! alert) for the dashboard's keys.

use crate::journal::Entry;
use crate::model::AlertState;
use crate::model::Event;
use crate::state::{Snapshot, State};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

/// Snapshots are published at most this often while playing.
const PUBLISH_EVERY: Duration = Duration::from_millis(100);

/// A journal being replayed.
#[derive(Debug, Clone)]
pub struct Replay {
    entries: Vec<Entry>,
    pos: usize,
    state: State,
    /// Fingerprint → last state seen, to tell a new firing from an update.
    alerts: HashMap<String, AlertState>,
}

impl Replay {
    pub fn new(entries: Vec<Entry>) -> Replay {
        Replay {
            entries,
            pos: 0,
            state: State::new(),
            alerts: HashMap::new(),
        }
    }

    /// Entries applied so far and in all.
    pub fn progress(&self) -> (usize, usize) {
        (self.pos, self.entries.len())
    }

    pub fn is_done(&self) -> bool {
        self.pos >= self.entries.len()
    }

    /// Journal time of the last entry applied.
    pub fn recorded_ms(&self) -> Option<i64> {
        self.pos.checked_sub(1).map(|i| self.entries[i].ts_ms)
    }

    /// Journal time of the next entry to apply.
    pub fn next_ms(&self) -> Option<i64> {
        self.entries.get(self.pos).map(|e| e.ts_ms)
    }

    /// Apply the next entry. Returns whether it started an alert firing.
    pub fn step(&mut self) -> Option<bool> {
        let e = self.entries.get(self.pos)?;
        self.pos += 1;
        self.state.apply(&e.ev);
        let mut fired = false;
        if let Event::AlertChanged { alert } = &e.ev {
            let before = self.alerts.insert(alert.fingerprint.clone(), alert.state);
            fired = alert.state == AlertState::Firing
                && before.is_none_or(|s| s == AlertState::Resolved);
        }
        Some(fired)
    }

    /// Apply every entry recorded at or before `ts_ms`; returns how many.
    pub fn advance_to(&mut self, ts_ms: i64) -> usize {
        let mut n = 0;
        while self.next_ms().is_some_and(|t| t <= ts_ms) {
            self.step();
            n += 1;
        }
        n
    }

    /// Apply entries up to and including the next alert that starts firing.
    /// Returns false (having applied everything) when there is none.
    pub fn next_alert(&mut self) -> bool {
        while let Some(fired) = self.step() {
            if fired {
                return true;
            }
        }
        false
    }

    pub fn run_to_end(&mut self) {
        while self.step().is_some() {}
    }

    pub fn snapshot(&self) -> Snapshot {
        self.state.snapshot()
    }
}

/// What the dashboard can ask of a running replay.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Control {
    Pause,
    Resume,
    TogglePause,
    /// Apply one entry (and stay paused).
    Step,
    /// Recorded milliseconds per real millisecond; clamped to 0.1 ..= 1000.
    Speed(f64),
    /// Jump to the next alert that starts firing, and pause there.
    NextAlert,
}

/// Where a running replay stands, for the header.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Status {
    pub recorded_ms: Option<i64>,
    pub paused: bool,
    pub speed: f64,
    pub done: bool,
    pub applied: usize,
    pub total: usize,
}

pub struct ReplayHandle {
    pub snapshots: watch::Receiver<Arc<Snapshot>>,
    pub status: watch::Receiver<Status>,
    pub controls: mpsc::Sender<Control>,
}

fn clamp_speed(s: f64) -> f64 {
    if s.is_finite() {
        s.clamp(0.1, 1000.0)
    } else {
        1.0
    }
}

/// Play `replay` at `speed` until its end or `shutdown`. The snapshot
/// channel closes when the task ends, with the final picture in it.
pub fn spawn(replay: Replay, speed: f64, shutdown: CancellationToken) -> ReplayHandle {
    let (snap_tx, snap_rx) = watch::channel(Arc::new(replay.snapshot()));
    let (status_tx, status_rx) = watch::channel(Status::default());
    let (ctl_tx, ctl_rx) = mpsc::channel(64);
    tokio::spawn(play(
        replay,
        clamp_speed(speed),
        ctl_rx,
        snap_tx,
        status_tx,
        shutdown,
    ));
    ReplayHandle {
        snapshots: snap_rx,
        status: status_rx,
        controls: ctl_tx,
    }
}

async fn play(
    mut replay: Replay,
    mut speed: f64,
    mut controls: mpsc::Receiver<Control>,
    snapshots: watch::Sender<Arc<Snapshot>>,
    status: watch::Sender<Status>,
    shutdown: CancellationToken,
) {
    let mut paused = false;
    let mut controls_open = true;
    // Recorded time shown, advanced by real time × speed while playing.
    let mut cursor = replay.next_ms().unwrap_or(0);
    let mut last = tokio::time::Instant::now();
    let mut tick = tokio::time::interval(PUBLISH_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let publish = |r: &Replay, paused: bool, speed: f64| {
        snapshots.send_replace(Arc::new(r.snapshot()));
        let (applied, total) = r.progress();
        status.send_replace(Status {
            recorded_ms: r.recorded_ms(),
            paused,
            speed,
            done: r.is_done(),
            applied,
            total,
        });
    };
    publish(&replay, paused, speed);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            ctl = controls.recv(), if controls_open => {
                // Nobody left to steer: play on to the end by the clock.
                let Some(ctl) = ctl else {
                    controls_open = false;
                    continue;
                };
                match ctl {
                    Control::Pause => paused = true,
                    Control::Resume => paused = false,
                    Control::TogglePause => paused = !paused,
                    Control::Step => {
                        paused = true;
                        replay.step();
                    }
                    Control::Speed(s) => speed = clamp_speed(s),
                    Control::NextAlert => {
                        paused = true;
                        replay.next_alert();
                    }
                }
                cursor = replay.recorded_ms().unwrap_or(cursor).max(cursor);
                last = tokio::time::Instant::now();
                publish(&replay, paused, speed);
            }
            _ = tick.tick() => {
                let now = tokio::time::Instant::now();
                if !paused && !replay.is_done() {
                    cursor += (now.duration_since(last).as_secs_f64() * 1000.0 * speed) as i64;
                    // A long quiet stretch in the journal is skipped, not waited through.
                    if let Some(next) = replay.next_ms()
                        && replay.recorded_ms().is_none_or(|r| next - r > 60_000)
                        && cursor < next
                    {
                        cursor = next;
                    }
                    if replay.advance_to(cursor) > 0 {
                        publish(&replay, paused, speed);
                    }
                }
                last = now;
                if replay.is_done() && !paused {
                    publish(&replay, paused, speed);
                    // Stays up for controls; nothing more to play.
                    paused = true;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Alert, Severity};
    use std::collections::BTreeMap;

    fn alert_entry(ts: i64, state: AlertState) -> Entry {
        Entry {
            v: 1,
            ts_ms: ts,
            instance: None,
            ev: Event::AlertChanged {
                alert: Alert {
                    fingerprint: "b/t/latency".into(),
                    exchange: "b".into(),
                    endpoint: Some("t".into()),
                    kind: "latency".parse().unwrap(),
                    severity: Severity::Warning,
                    title: String::new(),
                    description: String::new(),
                    metrics: BTreeMap::new(),
                    first_seen_ms: ts,
                    last_seen_ms: ts,
                    occurrences: 1,
                    state,
                    state_by: None,
                    state_at_ms: ts,
                    resolved_at_ms: None,
                    delivery: BTreeMap::new(),
                    triage: None,
                    incident: None,
                    episode_start_ms: None,
                },
            },
        }
    }

    fn clock(ts: i64) -> Entry {
        Entry {
            v: 1,
            ts_ms: ts,
            instance: None,
            ev: Event::ClockOffset {
                exchange: "b".into(),
                offset_ms: ts,
            },
        }
    }

    #[test]
    fn next_alert_stops_at_each_new_firing_only() {
        let mut r = Replay::new(vec![
            clock(1),
            alert_entry(2, AlertState::Firing),
            alert_entry(3, AlertState::Firing),
            alert_entry(4, AlertState::Resolved),
            clock(5),
            alert_entry(6, AlertState::Firing),
            clock(7),
        ]);
        assert!(r.next_alert());
        assert_eq!(r.recorded_ms(), Some(2));
        assert!(r.next_alert(), "re-fired after being resolved");
        assert_eq!(r.recorded_ms(), Some(6));
        assert!(!r.next_alert());
        assert!(r.is_done());
    }

    #[test]
    fn advance_to_applies_up_to_the_recorded_time() {
        let mut r = Replay::new((1..=10).map(clock).collect());
        assert_eq!(r.advance_to(4), 4);
        assert_eq!(r.recorded_ms(), Some(4));
        assert_eq!(r.snapshot().events, 4);
        assert_eq!(r.step(), Some(false));
        r.run_to_end();
        assert_eq!(r.progress(), (10, 10));
    }

    #[tokio::test]
    async fn controls_pause_step_and_jump() {
        let mut entries: Vec<Entry> = (0..20).map(|i| clock(1_000 + i * 1_000)).collect();
        entries.insert(10, alert_entry(10_500, AlertState::Firing));
        let stop = CancellationToken::new();
        let h = spawn(Replay::new(entries), 1.0, stop.clone());
        h.controls.send(Control::Pause).await.expect("send");
        h.controls.send(Control::Step).await.expect("send");
        let mut st = h.status.clone();
        st.wait_for(|s| s.applied == 1 && s.paused)
            .await
            .expect("status");
        h.controls.send(Control::NextAlert).await.expect("send");
        st.wait_for(|s| s.recorded_ms == Some(10_500))
            .await
            .expect("status");
        assert!(h.snapshots.borrow().alerts.len() == 1);
        // Played at 1000x, the remaining ten recorded seconds take ten real milliseconds.
        h.controls.send(Control::Speed(1000.0)).await.expect("send");
        h.controls.send(Control::Resume).await.expect("send");
        st.wait_for(|s| s.done).await.expect("status");
        assert_eq!(h.snapshots.borrow().events, 21);
        stop.cancel();
    }
}
