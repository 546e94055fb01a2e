//! The terminal dashboard.
//!
//! ```text
//!  header: instance │ LIVE/REPLAY │ exchanges │ redis │ sinks │ triage $ ···· clock FROZEN
//! ┌ Exchanges ───────────────────────────────────────┐┌ detail (Enter) ─────────┐
//! │ EXCHANGE ENDPOINT BREAKER LATENCY P50 P99 ERR ...││ selected endpoint or    │
//! │ one row per endpoint, selection ▒▒▒▒▒▒▒▒▒▒▒▒▒▒▒▒▒││ alert: metrics,         │
//! └──────────────────────────────────────────────────┘│ timeline, triage        │
//! ┌ Alerts ──────────────────────────────────────────┐│ (right side when the    │
//! │ SEV AGE EXCHANGE ENDPOINT ALERT N STATE DELIVERY ││ screen is >= 150 wide;  │
//! │ open first, newest first                         ││ else it takes the other │
//! └──────────────────────────────────────────────────┘└ panel's place) ─────────┘
//!  footer: prompt │ last action's result │ keys from the keymap
//!  silences (S): centred overlay, the footer left visible; help (?) over everything
//! ```
//!
//! [`render`] is a pure function of the snapshot, the view state and the
//! time; [`run`] is the only loop: one `select!` over keys, snapshot changes,
//! a 1 Hz tick (ages and clock) and termination signals. It redraws only when
//! one of them changed something.

pub mod alerts;
mod col;
pub mod detail;
pub mod exchanges;
pub mod fmt;
pub mod footer;
pub mod header;
pub mod help;
pub mod input;
pub mod keymap;
pub mod layout;
pub mod mouse;
pub mod pick;
pub mod popup;
pub mod scroll;
pub mod selection;
pub mod silences;
pub mod sort;
mod stream_rows;
pub mod terminal;
pub mod theme;
pub mod view;

pub use keymap::{Action, Key, Keymap, KeymapConfig};
pub use theme::Theme;
pub use view::{Mode, Panel, Reaction, ViewState};

use crate::clock::now_ms;
use crate::model::Command;
use crate::state::Snapshot;
use crossterm::event::{Event as TermEvent, EventStream};
use futures::StreamExt;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::widgets::{Paragraph, Wrap};
use std::sync::Arc;
use std::time::Duration;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::{mpsc, watch};

pub use layout::{MIN_HEIGHT, MIN_WIDTH, SIDE_DETAIL_WIDTH};

#[derive(Debug, thiserror::Error)]
pub enum UiError {
    /// The terminal failed; the message says how (no separate source, so
    /// an error chain does not say it twice).
    #[error("terminal: {0}")]
    Terminal(std::io::Error),
    #[error(transparent)]
    Keymap(#[from] keymap::KeymapError),
    #[error("the dashboard needs a terminal (stdin and stdout are not both a TTY); use --headless")]
    NotATerminal,
}

impl From<std::io::Error> for UiError {
    fn from(e: std::io::Error) -> Self {
        UiError::Terminal(e)
    }
}

/// Draw one frame. Pure: same inputs, same screen.
pub fn render(frame: &mut Frame, snap: &Snapshot, view: &ViewState, now_ms: i64) {
    let area = frame.area();
    let at = layout::areas(area, snap, view);
    if at.too_small {
        too_small(frame, area, view);
        return;
    }
    header::render(frame, at.header, snap, view, now_ms);
    footer::render(frame, at.footer, snap, view, now_ms);
    if let Some(r) = at.exchanges {
        exchanges::render(frame, r, snap, view, now_ms);
    }
    if let Some(r) = at.alerts {
        alerts::render(frame, r, snap, view, now_ms);
    }
    if let Some(r) = at.detail {
        detail::render(frame, r, snap, view, now_ms);
    }
    if view.silences.open {
        silences::render(
            frame,
            area,
            snap,
            &view.silences,
            &view.theme,
            &view.keymap,
            now_ms,
        );
    }
    if view.help {
        help::render(frame, area, view);
    }
}

fn too_small(frame: &mut Frame, area: Rect, view: &ViewState) {
    let quit = view.keymap.label_in(Action::Quit, view.theme.ascii);
    let msg = format!(
        "exwatch: the terminal is {}x{}; the dashboard needs at least {MIN_WIDTH}x{MIN_HEIGHT}. \
         Enlarge it, or press {quit} to quit.",
        area.width, area.height
    );
    frame.render_widget(
        Paragraph::new(msg)
            .style(view.theme.bad())
            .wrap(Wrap { trim: true }),
        area,
    );
}

/// The time the screen is drawn at: the wall clock live, the recorded time in a replay.
fn screen_now(mode: Mode, snap: &Snapshot) -> i64 {
    match mode {
        Mode::Live => now_ms(),
        Mode::Replay => snap.last_event_ms,
    }
}

/// Turn a replay key into a control for the player; the new speed doubles or
/// halves the one the player reports.
fn replay_control(monitor: &Feed, view: &mut ViewState, action: Action, now_ms: i64) {
    use crate::replay::Control;
    let speed = view
        .replay
        .map(|r| r.speed)
        .filter(|s| *s > 0.0)
        .unwrap_or(1.0);
    let control = match action {
        Action::ReplayPause => Control::TogglePause,
        Action::ReplayStep => Control::Step,
        Action::ReplayFaster => Control::Speed(speed * 2.0),
        Action::ReplaySlower => Control::Speed(speed / 2.0),
        Action::ReplayNextAlert => Control::NextAlert,
        _ => return,
    };
    let sent = monitor
        .replay_controls
        .as_ref()
        .map(|c| c.try_send(control));
    if !matches!(sent, Some(Ok(()))) {
        view.status = Some(view::Status {
            text: "the replay has ended: nothing to steer".into(),
            error: true,
        });
        view.status_at_ms = now_ms;
    }
}

/// What the dashboard reads and sends: the monitor's snapshots and command
/// queue, and for a replay its controls and status. The caller builds it from
/// its `Monitor` and stops that monitor once [`run`] returns.
#[derive(Debug, Clone)]
pub struct Feed {
    pub snapshots: watch::Receiver<Arc<Snapshot>>,
    pub commands: mpsc::Sender<Command>,
    pub replay_controls: Option<mpsc::Sender<crate::replay::Control>>,
    pub replay_status: Option<watch::Receiver<crate::replay::Status>>,
    /// The notification sinks configured (live), for the header's warning
    /// when there is none; `None` when not known (a replay).
    pub sinks: Option<Vec<String>>,
}

/// Run the dashboard until the operator quits or the process is told to
/// stop, then give the terminal back. `keys` is the `[keys]` table;
/// `instance` names this instance in the header. The caller stops the
/// monitor afterwards (which flushes what it writes), whatever the result.
pub async fn run(
    monitor: &Feed,
    keys: &KeymapConfig,
    instance: &str,
    mode: Mode,
) -> Result<(), UiError> {
    use std::io::IsTerminal;
    if !(std::io::stdin().is_terminal() && std::io::stdout().is_terminal()) {
        return Err(UiError::NotATerminal);
    }
    let keymap = Keymap::from_config(keys)?;
    let mut view = ViewState::new(instance, mode, keymap, Theme::detect());
    view.sinks = monitor.sinks.clone();
    if view.sinks.as_ref().is_some_and(Vec::is_empty) {
        view.status = Some(view::Status {
            text: "no notification sink configured: alerts show here only ([[alerts.sinks]])"
                .into(),
            error: true,
        });
        view.status_at_ms = screen_now(mode, &monitor.snapshots.borrow());
    }
    match terminal::Session::enter() {
        Ok(mut session) => {
            let r = event_loop(&mut session, monitor, &mut view).await;
            // The one exit path: the terminal comes back before anything else happens.
            drop(session);
            r
        }
        Err(e) => {
            terminal::restore();
            Err(UiError::Terminal(e))
        }
    }
}

async fn event_loop(
    session: &mut terminal::Session,
    monitor: &Feed,
    view: &mut ViewState,
) -> Result<(), UiError> {
    let mut snapshots = monitor.snapshots.clone();
    let mut shown: Arc<Snapshot> = snapshots.borrow_and_update().clone();
    let mut engine_alive = true;
    let mut keys = EventStream::new();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut term = signal(SignalKind::terminate())?;
    let mut hup = signal(SignalKind::hangup())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut replay_status = monitor.replay_status.clone();
    let mut dirty = true;
    loop {
        if dirty {
            // `shown` is our own Arc: nothing is locked while drawing.
            let now = screen_now(view.mode, &shown);
            if let Ok(size) = session.terminal.size() {
                // Pages and clicks are worked out against what is drawn.
                view.area = Rect::new(0, 0, size.width, size.height);
            }
            session.terminal.draw(|f| render(f, &shown, view, now))?;
            dirty = false;
        }
        tokio::select! {
            ev = keys.next() => match ev {
                Some(Ok(ev @ (TermEvent::Key(_) | TermEvent::Mouse(_)))) => {
                    let now = screen_now(view.mode, &shown);
                    let reaction = match ev {
                        TermEvent::Key(k) => match Key::from_event(&k) {
                            Some(key) => view.on_key(key, &shown, now),
                            None => continue,
                        },
                        TermEvent::Mouse(m) => view.on_mouse(m, &shown, now),
                        _ => continue,
                    };
                    match reaction {
                        Reaction::None => {}
                        Reaction::Redraw => dirty = true,
                        Reaction::Quit => return Ok(()),
                        Reaction::Freeze(frozen) => {
                            if !frozen {
                                view.pin(&shown);
                                shown = snapshots.borrow_and_update().clone();
                            }
                            dirty = true;
                        }
                        Reaction::Replay(action) => {
                            replay_control(monitor, view, action, now);
                            dirty = true;
                        }
                        Reaction::Send(cmd) => {
                            if let Err(e) = monitor.commands.try_send(cmd) {
                                let text = match e {
                                    TrySendError::Full(_) => "the engine is busy: not sent, try again",
                                    TrySendError::Closed(_) => "the engine has stopped: not sent",
                                };
                                view.status = Some(view::Status { text: text.into(), error: true });
                                view.status_at_ms = now;
                            }
                            dirty = true;
                        }
                    }
                }
                Some(Ok(TermEvent::Resize(..))) => dirty = true,
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(UiError::Terminal(e)),
                // No more input (the terminal went away): nothing left to show it on.
                None => return Ok(()),
            },
            changed = snapshots.changed(), if engine_alive => {
                if changed.is_err() {
                    // The engine stopped (e.g. a replay reached its end): keep the last picture.
                    engine_alive = false;
                } else if view.frozen_at_ms.is_none() {
                    // What the screen shows as selected stays selected.
                    view.pin(&shown);
                    shown = snapshots.borrow_and_update().clone();
                    dirty = true;
                } else {
                    // Frozen: mark it seen so `changed` does not fire again at once.
                    snapshots.borrow_and_update();
                }
            }
            changed = async {
                match replay_status.as_mut() {
                    Some(rx) => rx.changed().await,
                    None => std::future::pending().await,
                }
            } => {
                match changed {
                    Ok(()) => {
                        view.replay = replay_status.as_mut().map(|rx| *rx.borrow_and_update());
                        dirty = true;
                    }
                    // The replay ended: keep its last status on screen.
                    Err(_) => replay_status = None,
                }
            }
            _ = tick.tick() => dirty = true,
            _ = term.recv() => return Ok(()),
            _ = hup.recv() => return Ok(()),
            _ = int.recv() => return Ok(()),
        }
    }
}
