//! The UI's own state (selection, filter, overlays, freeze) and what a key
//! does to it. Nothing here touches the engine: an action that should change
//! engine state comes back as a [`Command`] for the loop to send.

use super::keymap::{Action, CTRL_C, Key, Keymap};
use super::pick::{AlertPick, Target};
use super::sort::{self, AlertOrder, EndpointOrder};
use super::theme::Theme;
use crate::model::{Alert, AlertState};
use crate::model::{Command, EndpointId};
use crate::state::{EndpointView, ExchangeView, Snapshot};
use ratatui::layout::Rect;

/// Whether the dashboard watches live workers or a journal being replayed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Live,
    Replay,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Panel {
    Exchanges,
    Alerts,
}

/// What a silence applies to.
#[derive(Debug, Clone, PartialEq)]
pub struct SilenceTarget {
    pub exchange: String,
    pub endpoint: Option<String>,
    pub kind: Option<String>,
}

impl SilenceTarget {
    pub fn label(&self) -> String {
        format!(
            "{}/{}/{}",
            self.exchange,
            self.endpoint.as_deref().unwrap_or("*"),
            self.kind.as_deref().unwrap_or("*")
        )
    }
}

/// A line being typed in the footer.
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    Filter(String),
    Silence {
        target: SilenceTarget,
        text: String,
    },
    /// A yes/no question (`force okx/book breaker open? y/n`): only `y`
    /// sends `command`; any other key cancels.
    Confirm {
        question: String,
        command: Command,
    },
}

/// A message in the footer after an action.
#[derive(Debug, Clone, PartialEq)]
pub struct Status {
    pub text: String,
    pub error: bool,
}

/// How long an action's result stays in the footer, ms (an error longer).
pub const STATUS_FADE_MS: i64 = 8_000;
/// How long an error stays in the footer, ms.
pub const STATUS_ERROR_FADE_MS: i64 = 20_000;

/// Everything the UI remembers between frames. Render reads it; keys change it.
#[derive(Debug, Clone)]
pub struct ViewState {
    pub instance: String,
    pub mode: Mode,
    pub keymap: Keymap,
    pub theme: Theme,
    /// Who acknowledges and silences (`$USER`).
    pub operator: String,
    pub focus: Panel,
    /// Kept by identity so the selection does not jump when rows move, and
    /// never moves to another row by itself (see [`super::selection`]).
    pub selected_endpoint: Option<EndpointId>,
    /// The selected alert and the episode that was selected.
    pub selected_alert: Option<AlertPick>,
    pub show_resolved: bool,
    pub detail: bool,
    pub help: bool,
    pub filter: String,
    pub input: Option<Input>,
    /// Set while frozen: the wall time the picture was frozen at.
    pub frozen_at_ms: Option<i64>,
    pub status: Option<Status>,
    /// When `status` was set (the screen's time, ms): it fades after
    /// [`STATUS_FADE_MS`] ([`STATUS_ERROR_FADE_MS`] for an error).
    pub status_at_ms: i64,
    /// The silences overlay (`S`), see [`super::silences`].
    pub silences: super::silences::SilencesList,
    /// Where a replay stands (paused, speed, progress), for the header.
    pub replay: Option<crate::replay::Status>,
    /// Row order of the exchanges panel.
    pub endpoint_order: EndpointOrder,
    /// Row order of the alert feed.
    pub alert_order: AlertOrder,
    /// First line of the detail pane shown (scrolled with PgUp/PgDn).
    pub detail_scroll: u16,
    /// First line of the help overlay shown.
    pub help_scroll: u16,
    /// The terminal's size as last drawn: pages and mouse clicks are
    /// worked out against it.
    pub area: Rect,
    /// The notification sinks configured, when known (live mode): an empty
    /// list puts a warning in the header, since no alert pages anyone.
    pub sinks: Option<Vec<String>>,
}

/// What the loop must do after a key.
#[derive(Debug, Clone, PartialEq)]
pub enum Reaction {
    /// Nothing visible changed.
    None,
    Redraw,
    Send(Command),
    /// Freeze was switched: the loop must (re)take or keep its snapshot.
    Freeze(bool),
    /// Steer the replay (only ever returned in replay mode).
    Replay(Action),
    Quit,
}

impl ViewState {
    pub fn new(instance: &str, mode: Mode, keymap: Keymap, theme: Theme) -> ViewState {
        ViewState {
            instance: instance.to_string(),
            mode,
            keymap,
            theme,
            operator: std::env::var("USER")
                .ok()
                .filter(|u| !u.is_empty())
                .unwrap_or_else(|| "operator".into()),
            focus: Panel::Exchanges,
            selected_endpoint: None,
            selected_alert: None,
            show_resolved: false,
            detail: false,
            help: false,
            filter: String::new(),
            input: None,
            frozen_at_ms: None,
            status: None,
            status_at_ms: 0,
            silences: Default::default(),
            replay: None,
            endpoint_order: EndpointOrder::default(),
            alert_order: AlertOrder::default(),
            detail_scroll: 0,
            help_scroll: 0,
            area: Rect::new(0, 0, 80, 24),
            sinks: None,
        }
    }

    fn matches(&self, fields: &[&str]) -> bool {
        if self.filter.is_empty() {
            return true;
        }
        let needle = self.filter.to_lowercase();
        fields.iter().any(|f| f.to_lowercase().contains(&needle))
    }

    /// Endpoint rows shown, in the panel's order ([`EndpointOrder`]; by
    /// default rows with a problem first). Held-until times are judged at
    /// the snapshot's newest event.
    pub fn visible_endpoints<'a>(
        &self,
        snap: &'a Snapshot,
    ) -> Vec<(&'a ExchangeView, &'a EndpointView)> {
        let mut rows: Vec<_> = snap
            .exchanges
            .iter()
            .flat_map(|ex| ex.endpoints.iter().map(move |ep| (ex, ep)))
            .filter(|(ex, ep)| self.matches(&[&ex.name, &ep.name]))
            .collect();
        sort::endpoints(&mut rows, self.endpoint_order, snap, snap.last_event_ms);
        rows
    }

    /// Alert rows shown, in the feed's order ([`AlertOrder`]; by default
    /// severity, then the newest episode first; open before resolved).
    pub fn visible_alerts<'a>(&self, snap: &'a Snapshot) -> Vec<&'a Alert> {
        let mut rows: Vec<&Alert> = snap
            .alerts
            .iter()
            .filter(|a| self.show_resolved || a.state != AlertState::Resolved)
            .filter(|a| {
                self.matches(&[
                    &a.exchange,
                    a.endpoint.as_deref().unwrap_or(""),
                    &a.title,
                    &a.kind.name(),
                ])
            })
            .collect();
        sort::alerts(&mut rows, self.alert_order);
        rows
    }

    /// Index of the selected endpoint among the visible ones (the first if
    /// none is selected; `None` if the selected one is not on screen).
    pub fn endpoint_index(&self, rows: &[(&ExchangeView, &EndpointView)]) -> Option<usize> {
        let Some(id) = &self.selected_endpoint else {
            return (!rows.is_empty()).then_some(0);
        };
        rows.iter()
            .position(|(ex, ep)| ex.name == id.exchange && ep.name == id.endpoint)
    }

    /// Index of the selected alert among the visible ones (the first if none
    /// is selected; `None` if the selected one is not on screen in the
    /// episode it was selected in).
    pub fn alert_index(&self, rows: &[&Alert]) -> Option<usize> {
        let Some(pick) = &self.selected_alert else {
            return (!rows.is_empty()).then_some(0);
        };
        rows.iter()
            .position(|a| a.fingerprint == pick.fingerprint && a.occurrences == pick.episode)
    }

    /// The selected endpoint, if it is on screen.
    pub fn current_endpoint<'a>(
        &self,
        snap: &'a Snapshot,
    ) -> Option<(&'a ExchangeView, &'a EndpointView)> {
        match self.endpoint_target(snap) {
            Target::Here(r) => Some(r),
            _ => None,
        }
    }

    /// The selected alert, if it is on screen in the episode it was selected in.
    pub fn current_alert<'a>(&self, snap: &'a Snapshot) -> Option<&'a Alert> {
        match self.alert_target(snap) {
            Target::Here(a) => Some(a),
            _ => None,
        }
    }

    pub(super) fn status(&mut self, text: impl Into<String>, error: bool) {
        self.status = Some(Status {
            text: text.into(),
            error,
        });
    }

    /// Apply one key. `now_ms` is the time the screen shows (wall time live,
    /// recorded time in a replay), used for the freeze mark.
    pub fn on_key(&mut self, key: Key, snap: &Snapshot, now_ms: i64) -> Reaction {
        if key == CTRL_C {
            return Reaction::Quit;
        }
        if self.input.is_some() {
            let filter = self.filter.clone();
            let r = self.on_input_key(key);
            if self.filter != filter {
                self.refit_to_filter(snap);
            }
            if self.status.is_some() {
                self.status_at_ms = now_ms;
            }
            return r;
        }
        let had_status = self.status.take().is_some();
        let Some(action) = self.keymap.action_for(key) else {
            return if had_status {
                Reaction::Redraw
            } else {
                Reaction::None
            };
        };
        if self.help {
            // The overlay covers the screen: keys under it would act blind;
            // the moves scroll it.
            let lines = i64::from(self.area.height.saturating_sub(4)).max(1);
            let by = match action {
                Action::Help | Action::Back | Action::Quit => 0,
                Action::Up => -1,
                Action::Down => 1,
                Action::PageUp => -lines,
                Action::PageDown => lines,
                Action::Top => i64::MIN / 2,
                Action::Bottom => i64::MAX / 2,
                _ if had_status => return Reaction::Redraw,
                _ => return Reaction::None,
            };
            if by != 0 {
                return self.scroll_help(by);
            }
        }
        if self.mode == Mode::Replay && action.live_only() {
            let what = match action {
                Action::Acknowledge => "nothing acknowledged",
                Action::Triage => "no triage asked",
                Action::Silence => "nothing silenced",
                _ => "breaker untouched",
            };
            self.status(format!("replay is read-only: {what}"), true);
            self.status_at_ms = now_ms;
            return Reaction::Redraw;
        }
        if self.silences.open {
            let r = self.on_silences_action(action, snap, now_ms);
            if self.status.is_some() {
                self.status_at_ms = now_ms;
            }
            return r;
        }
        // Whatever is under the cursor now stays selected even if rows move
        // before the next key, so an action never lands on a newer row.
        self.pin(snap);
        let r = self.on_action(action, snap, now_ms);
        if self.status.is_some() {
            self.status_at_ms = now_ms;
        }
        r
    }

    /// The footer's message, unless it has faded by `now_ms`.
    pub fn fresh_status(&self, now_ms: i64) -> Option<&Status> {
        self.status.as_ref().filter(|s| {
            let fade = if s.error {
                STATUS_ERROR_FADE_MS
            } else {
                STATUS_FADE_MS
            };
            now_ms - self.status_at_ms < fade
        })
    }

    /// A key while the silences overlay is open: its module decides.
    fn on_silences_action(&mut self, action: Action, snap: &Snapshot, now_ms: i64) -> Reaction {
        use super::silences::Outcome;
        let live = self.mode == Mode::Live;
        match self
            .silences
            .on_action(action, snap, now_ms, &self.operator, live)
        {
            Outcome::Ignored => Reaction::None,
            Outcome::Redraw => Reaction::Redraw,
            Outcome::Quit => Reaction::Quit,
            Outcome::Refused(why) => {
                self.status(why, true);
                Reaction::Redraw
            }
            Outcome::Send(cmd, what) => {
                self.status(what, false);
                Reaction::Send(cmd)
            }
        }
    }

    /// Refuse an action whose target left the screen: say why, send nothing.
    fn refuse(&mut self, what: &str, why: &str) -> Reaction {
        self.status(format!("{what}: {why}; select another"), true);
        Reaction::Redraw
    }

    fn on_action(&mut self, action: Action, snap: &Snapshot, now_ms: i64) -> Reaction {
        match action {
            Action::Quit => Reaction::Quit,
            Action::Up => self.move_by(snap, -1),
            Action::Down => self.move_by(snap, 1),
            Action::Top => self.move_by(snap, i64::MIN / 2),
            Action::Bottom => self.move_by(snap, i64::MAX / 2),
            Action::PageUp => self.page(snap, -1, now_ms),
            Action::PageDown => self.page(snap, 1, now_ms),
            Action::Sort => {
                let label = match self.focus {
                    Panel::Exchanges => {
                        self.endpoint_order = self.endpoint_order.next();
                        self.endpoint_order.label()
                    }
                    Panel::Alerts => {
                        self.alert_order = self.alert_order.next();
                        self.alert_order.label()
                    }
                };
                self.status(format!("sorted {label}"), false);
                Reaction::Redraw
            }
            Action::NextPanel => {
                self.focus = match self.focus {
                    Panel::Exchanges => Panel::Alerts,
                    Panel::Alerts => Panel::Exchanges,
                };
                // The row the panel shows as selected now is what stays selected.
                self.pin(snap);
                Reaction::Redraw
            }
            Action::Details => {
                self.detail = !self.detail;
                self.detail_scroll = 0;
                Reaction::Redraw
            }
            Action::Back => {
                if self.help {
                    self.help = false;
                } else if self.detail {
                    self.detail = false;
                } else if !self.filter.is_empty() {
                    self.filter.clear();
                    self.refit_to_filter(snap);
                } else {
                    return Reaction::None;
                }
                Reaction::Redraw
            }
            Action::Help => {
                self.help = !self.help;
                self.help_scroll = 0;
                Reaction::Redraw
            }
            Action::Silences => {
                self.silences.open(snap, now_ms);
                Reaction::Redraw
            }
            Action::Undo => {
                let key = self.keymap.label_in(Action::Silences, self.theme.ascii);
                self.status(format!("undo works in the silences list ({key})"), false);
                Reaction::Redraw
            }
            Action::ShowResolved => {
                self.show_resolved = !self.show_resolved;
                Reaction::Redraw
            }
            Action::ReplayPause
            | Action::ReplayStep
            | Action::ReplayFaster
            | Action::ReplaySlower
            | Action::ReplayNextAlert => {
                if self.mode == Mode::Replay {
                    Reaction::Replay(action)
                } else {
                    self.status = Some(Status {
                        text: "replay keys work in `exwatch replay`".into(),
                        error: false,
                    });
                    Reaction::Redraw
                }
            }
            Action::Freeze => {
                self.frozen_at_ms = match self.frozen_at_ms {
                    Some(_) => None,
                    None => Some(now_ms),
                };
                Reaction::Freeze(self.frozen_at_ms.is_some())
            }
            Action::Filter => {
                self.input = Some(Input::Filter(self.filter.clone()));
                Reaction::Redraw
            }
            Action::Acknowledge => match self.alert_for_action(snap) {
                Err(why) => self.refuse("nothing acknowledged", &why),
                Ok(Some(a)) if a.state == AlertState::Resolved => {
                    self.status(format!("{} is already resolved", a.fingerprint), true);
                    Reaction::Redraw
                }
                Ok(Some(a)) => {
                    self.status(format!("acknowledge sent: {}", a.fingerprint), false);
                    Reaction::Send(Command::Acknowledge {
                        fingerprint: a.fingerprint.clone(),
                        by: self.operator.clone(),
                        episode: Some(a.occurrences),
                    })
                }
                Ok(None) => {
                    self.status("no alert selected: Tab to the alert feed first", true);
                    Reaction::Redraw
                }
            },
            Action::Triage => {
                if let Some(why) = self.lost_selection(snap) {
                    return self.refuse("nothing sent for triage", &why);
                }
                let fingerprints: Vec<String> = match self.focus {
                    Panel::Alerts => self
                        .current_alert(snap)
                        .map(|a| vec![a.fingerprint.clone()])
                        .unwrap_or_default(),
                    // From an endpoint: every open alert about it, as one batch.
                    Panel::Exchanges => match self.current_endpoint(snap) {
                        Some((ex, ep)) => snap
                            .alerts
                            .iter()
                            .filter(|a| {
                                a.state.is_open()
                                    && a.exchange == ex.name
                                    && a.endpoint.as_deref().is_none_or(|e| e == ep.name)
                            })
                            .map(|a| a.fingerprint.clone())
                            .collect(),
                        None => Vec::new(),
                    },
                };
                if fingerprints.is_empty() {
                    self.status("nothing to triage: select an alert", true);
                    Reaction::Redraw
                } else {
                    self.status(
                        format!("triage requested for {} alert(s)", fingerprints.len()),
                        false,
                    );
                    Reaction::Send(Command::Triage { fingerprints })
                }
            }
            Action::Silence => {
                if let Some(why) = self.lost_selection(snap) {
                    return self.refuse("nothing silenced", &why);
                }
                let target = match self.focus {
                    Panel::Alerts => self.current_alert(snap).map(|a| SilenceTarget {
                        exchange: a.exchange.clone(),
                        endpoint: a.endpoint.clone(),
                        kind: Some(a.kind.name()),
                    }),
                    Panel::Exchanges => self.current_endpoint(snap).map(|(ex, ep)| SilenceTarget {
                        exchange: ex.name.clone(),
                        endpoint: Some(ep.name.clone()),
                        kind: None,
                    }),
                };
                match target {
                    Some(target) => {
                        self.input = Some(Input::Silence {
                            target,
                            text: "1h".into(),
                        });
                    }
                    None => self.status("nothing selected to silence", true),
                }
                Reaction::Redraw
            }
            Action::ForceOpen | Action::ResetBreaker => {
                if let Some(why) = self.lost_selection(snap) {
                    let what = if action == Action::ForceOpen {
                        "no breaker forced open"
                    } else {
                        "no breaker reset"
                    };
                    return self.refuse(what, &why);
                }
                let Some(id) = self.endpoint_for_action(snap) else {
                    self.status("no endpoint selected", true);
                    return Reaction::Redraw;
                };
                // A WebSocket stream row has no breaker: nothing to open or
                // reset, and nothing is sent.
                let is_stream = (snap.exchanges.iter())
                    .filter(|ex| ex.name == id.exchange)
                    .flat_map(|ex| ex.endpoints.iter())
                    .any(|ep| ep.name == id.endpoint && ep.stream.is_some());
                if is_stream {
                    self.status(
                        format!("{id} is a WebSocket stream: it has no breaker to open or reset"),
                        true,
                    );
                    return Reaction::Redraw;
                }
                if action == Action::ForceOpen {
                    // Stopping all calls to an endpoint is asked first.
                    self.input = Some(Input::Confirm {
                        question: format!("force {id} breaker open?"),
                        command: Command::ForceOpen { id },
                    });
                    return Reaction::Redraw;
                }
                // `exchange/endpoint`, as the id displays.
                self.status(format!("reset sent: {id}"), false);
                Reaction::Send(Command::ResetBreaker { id })
            }
        }
    }

    /// The alert an alert action applies to: the selected one in the feed;
    /// `Err` says why the selected one is no longer there.
    fn alert_for_action<'a>(&self, snap: &'a Snapshot) -> Result<Option<&'a Alert>, String> {
        match self.focus {
            Panel::Alerts => match self.alert_target(snap) {
                Target::Here(a) => Ok(Some(a)),
                Target::Empty => Ok(None),
                Target::Lost(why) => Err(why),
            },
            Panel::Exchanges => Ok(None),
        }
    }

    /// The endpoint a breaker action applies to: the selected row, or the selected alert's endpoint.
    fn endpoint_for_action(&self, snap: &Snapshot) -> Option<EndpointId> {
        match self.focus {
            Panel::Exchanges => self
                .current_endpoint(snap)
                .map(|(ex, ep)| EndpointId::new(&ex.name, &ep.name)),
            Panel::Alerts => self.current_alert(snap).and_then(Alert::endpoint_id),
        }
    }

    pub(super) fn move_by(&mut self, snap: &Snapshot, delta: i64) -> Reaction {
        let step = |cur: Option<usize>, len: usize| -> Option<usize> {
            if len == 0 {
                return None;
            }
            // From a selection that left the screen, down starts at the
            // first row and up at the last.
            let cur = match cur {
                Some(i) => i as i64,
                None if delta > 0 => -1,
                None => len as i64,
            };
            Some((cur.saturating_add(delta)).clamp(0, len as i64 - 1) as usize)
        };
        match self.focus {
            Panel::Exchanges => {
                let rows = self.visible_endpoints(snap);
                let Some(i) = step(self.endpoint_index(&rows), rows.len()) else {
                    return Reaction::None;
                };
                self.selected_endpoint = Some(EndpointId::new(&rows[i].0.name, &rows[i].1.name));
            }
            Panel::Alerts => {
                let rows = self.visible_alerts(snap);
                let Some(i) = step(self.alert_index(&rows), rows.len()) else {
                    return Reaction::None;
                };
                self.selected_alert = Some(AlertPick::of(rows[i]));
            }
        }
        // Another target: its detail starts at the top.
        self.detail_scroll = 0;
        Reaction::Redraw
    }
}
