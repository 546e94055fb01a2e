//! The selection's vocabulary: what the operator picked ([`AlertPick`]) and
//! where a pick stands against a snapshot ([`Target`]). A leaf of `ui/` so
//! the view state and the selection logic (`selection.rs`) both use it
//! without importing each other.

use crate::model::Alert;

/// The alert the operator selected: its fingerprint and the episode
/// (`Alert::occurrences`) that was on screen when it was selected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertPick {
    pub fingerprint: String,
    pub episode: u64,
}

impl AlertPick {
    /// The pick for this alert as it is now.
    pub fn of(a: &Alert) -> AlertPick {
        AlertPick {
            fingerprint: a.fingerprint.clone(),
            episode: a.occurrences,
        }
    }
}

/// Where one panel's selection stands against a snapshot.
#[derive(Debug, Clone, PartialEq)]
pub enum Target<T> {
    /// The panel has no rows and nothing is selected.
    Empty,
    /// The selected target, on screen and unchanged.
    Here(T),
    /// The selected target left the screen or changed; why, for the operator.
    Lost(String),
}
