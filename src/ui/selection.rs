//! What the cursor points at, by identity: an alert by its fingerprint and
//! the episode the operator saw, an endpoint by its [`EndpointId`]; never by
//! row index. When the selected target leaves the screen (it resolved, fired
//! again, the filter hides it, it is gone) the selection stays on it and is
//! *lost*: no row is highlighted, the footer and the detail pane say why, and
//! an action key is refused instead of landing on whatever row is there now.

pub use super::pick::{AlertPick, Target};
use super::view::{Panel, ViewState};
use crate::model::{Alert, AlertState, EndpointId};
use crate::state::{EndpointView, ExchangeView, Snapshot};

impl ViewState {
    /// The selected alert: the pinned one if it is still on screen in the
    /// same episode, else why not; the first row while nothing is pinned.
    pub fn alert_target<'a>(&self, snap: &'a Snapshot) -> Target<&'a Alert> {
        let rows = self.visible_alerts(snap);
        let Some(pick) = &self.selected_alert else {
            return rows.first().map_or(Target::Empty, |a| Target::Here(*a));
        };
        if let Some(a) = rows
            .iter()
            .find(|a| a.fingerprint == pick.fingerprint && a.occurrences == pick.episode)
        {
            return Target::Here(a);
        }
        let fp = &pick.fingerprint;
        let why = match snap.alerts.iter().find(|a| &a.fingerprint == fp) {
            None => format!("the selected alert {fp} is gone"),
            Some(a) if a.occurrences != pick.episode => format!(
                "the selected alert {fp} fired again since it was selected (now x{}, {})",
                a.occurrences,
                state_word(a.state)
            ),
            Some(a) if a.state == AlertState::Resolved && !self.show_resolved => {
                let at = a.resolved_at_ms.unwrap_or(a.state_at_ms);
                format!(
                    "the selected alert {fp} resolved at {}",
                    crate::clock::hms(at)
                )
            }
            Some(_) => format!("the selected alert {fp} is hidden by the filter"),
        };
        Target::Lost(why)
    }

    /// The selected endpoint row: the pinned one if it is on screen, else
    /// why not; the first row while nothing is pinned.
    pub fn endpoint_target<'a>(
        &self,
        snap: &'a Snapshot,
    ) -> Target<(&'a ExchangeView, &'a EndpointView)> {
        let rows = self.visible_endpoints(snap);
        let Some(id) = &self.selected_endpoint else {
            return rows.first().map_or(Target::Empty, |r| Target::Here(*r));
        };
        if let Some(r) = rows
            .iter()
            .find(|(ex, ep)| ex.name == id.exchange && ep.name == id.endpoint)
        {
            return Target::Here(*r);
        }
        let known = snap.exchanges.iter().any(|ex| {
            ex.name == id.exchange && ex.endpoints.iter().any(|ep| ep.name == id.endpoint)
        });
        Target::Lost(if known {
            format!("the selected endpoint {id} is hidden by the filter")
        } else {
            format!("the selected endpoint {id} is gone")
        })
    }

    /// Why the focused panel's selection is lost, if it is.
    pub fn lost_selection(&self, snap: &Snapshot) -> Option<String> {
        match self.focus {
            Panel::Alerts => match self.alert_target(snap) {
                Target::Lost(why) => Some(why),
                _ => None,
            },
            Panel::Exchanges => match self.endpoint_target(snap) {
                Target::Lost(why) => Some(why),
                _ => None,
            },
        }
    }

    /// Pin the focused panel's implicit selection (its first row, while
    /// nothing is selected) to what that row shows in `shown`, the snapshot
    /// on screen. The loop calls it before it takes a newer snapshot, and the
    /// view before it acts on a key, so the cursor never moves to another
    /// target by itself.
    pub fn pin(&mut self, shown: &Snapshot) {
        match self.focus {
            Panel::Exchanges => {
                if self.selected_endpoint.is_none()
                    && let Target::Here((ex, ep)) = self.endpoint_target(shown)
                {
                    self.selected_endpoint = Some(EndpointId::new(&ex.name, &ep.name));
                }
            }
            Panel::Alerts => {
                if self.selected_alert.is_none()
                    && let Target::Here(a) = self.alert_target(shown)
                {
                    self.selected_alert = Some(AlertPick::of(a));
                }
            }
        }
    }
}

impl ViewState {
    /// After the operator changed the filter: a selection the filter alone
    /// hides moves to the first row that matches (the operator asked for
    /// those rows, and the highlight shows which one is selected). A target
    /// that resolved or fired again stays lost.
    pub(super) fn refit_to_filter(&mut self, snap: &Snapshot) {
        let endpoint_hidden = self.selected_endpoint.as_ref().is_some_and(|id| {
            matches!(self.endpoint_target(snap), Target::Lost(_))
                && snap.exchanges.iter().any(|ex| {
                    ex.name == id.exchange && ex.endpoints.iter().any(|ep| ep.name == id.endpoint)
                })
        });
        if endpoint_hidden {
            self.selected_endpoint = None;
        }
        let alert_hidden = self.selected_alert.as_ref().is_some_and(|p| {
            matches!(self.alert_target(snap), Target::Lost(_))
                && snap.alerts.iter().any(|a| {
                    a.fingerprint == p.fingerprint
                        && a.occurrences == p.episode
                        && (self.show_resolved || a.state != AlertState::Resolved)
                })
        });
        if alert_hidden {
            self.selected_alert = None;
        }
        self.pin(snap);
    }
}

fn state_word(s: AlertState) -> &'static str {
    match s {
        AlertState::Firing => "firing",
        AlertState::Acknowledged => "acknowledged",
        AlertState::Silenced => "silenced",
        AlertState::Resolved => "resolved",
    }
}
