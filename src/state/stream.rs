//! Stream rows in the reducer: what a WebSocket connection or subscription
//! row keeps between events (its last [`StreamStatus`], its recent message
//! rates for the sparkline, its last [`StreamNote`]).

use super::{EndpointState, RECENT};
use crate::model::{BookState, StreamNote, StreamState, StreamStatus};
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

/// A stream row's view: present on an [`super::EndpointView`] that is a
/// WebSocket connection or subscription rather than a REST endpoint.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct StreamView {
    /// The connection's name (equal to the row's name on a connection row).
    pub connection: String,
    /// The last status (`None` before the first, about a second after start).
    pub status: Option<StreamStatus>,
    /// Data messages per second of the recent statuses, oldest first (one a
    /// second, at most [`RECENT`]), rounded.
    pub recent_rate: Vec<u64>,
    /// The last thing that happened on it (a gap, a resync, a disconnect).
    pub last_note: Option<StreamNote>,
}

impl StreamView {
    /// A connection row (not a subscription).
    pub fn is_connection(&self, row: &str) -> bool {
        self.connection == row
    }

    /// Live (or still connecting) and, for a book, neither invalid nor
    /// locked or crossed. A planned disconnect is healthy too: it was
    /// announced.
    pub fn healthy(&self) -> bool {
        let Some(st) = &self.status else {
            return true;
        };
        let state_ok = matches!(st.state, StreamState::Live | StreamState::Pending)
            || (st.expected && st.state == StreamState::Down);
        state_ok
            && st.book != Some(BookState::Invalid)
            && st.crossed.is_none()
            && st.storm.is_none()
    }
}

/// What the reducer keeps per stream row.
#[derive(Debug, Clone, Default)]
pub(super) struct StreamRow {
    pub connection: String,
    pub status: Option<StreamStatus>,
    pub recent_rate: VecDeque<u64>,
    pub last_note: Option<StreamNote>,
}

impl StreamRow {
    pub fn view(&self) -> StreamView {
        StreamView {
            connection: self.connection.clone(),
            status: self.status.clone(),
            recent_rate: self.recent_rate.iter().copied().collect(),
            last_note: self.last_note.clone(),
        }
    }
}

/// Apply a status to its row: the figures, the rate history, and the data
/// age as the row's last good data (so the AGE column reads as for REST).
pub(super) fn apply_status(ep: &mut EndpointState, st: &StreamStatus) {
    let Some(row) = ep.stream.as_mut() else {
        return;
    };
    if row.recent_rate.len() == RECENT {
        row.recent_rate.pop_front();
    }
    row.recent_rate
        .push_back(st.msgs_per_s.round().max(0.0) as u64);
    // `age_ms` is a data (or frame) age except while down, when it is the
    // time down: the last data then stays where it was.
    if st.state != StreamState::Down {
        ep.last_ok_at_ms = st.age_ms.map(|age| st.at_ms - age).or(ep.last_ok_at_ms);
    }
    row.status = Some(st.clone());
}

/// Apply a note to its row.
pub(super) fn apply_note(ep: &mut EndpointState, note: &StreamNote) {
    if let Some(row) = ep.stream.as_mut() {
        row.last_note = Some(note.clone());
    }
}
