//! Counts of the [`Verdict`]s a [`super::session::Session`] gave, by kind,
//! and the level changes its applied messages carried: what `exwatch bench
//! stream` checks (every measured message applied), cheap enough to keep on
//! the worker's hot path.

use serde::Serialize;

use super::integrity::Verdict;
use super::message::BookMsg;

/// Book messages per verdict kind, and level changes applied.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct VerdictTally {
    /// [`Verdict::Applied`].
    pub applied: u64,
    /// Level changes (bids + asks) carried by the applied messages.
    pub levels_applied: u64,
    /// [`Verdict::Snapshot`].
    pub snapshot: u64,
    /// [`Verdict::Reset`].
    pub reset: u64,
    /// [`Verdict::Keepalive`].
    pub keepalive: u64,
    /// [`Verdict::Stale`].
    pub stale: u64,
    /// [`Verdict::Buffered`].
    pub buffered: u64,
    /// [`Verdict::AwaitingSnapshot`].
    pub awaiting_snapshot: u64,
    /// [`Verdict::Gap`].
    pub gap: u64,
    /// [`Verdict::ChecksumMismatch`].
    pub checksum_mismatch: u64,
    /// [`Verdict::SnapshotTooOld`].
    pub snapshot_too_old: u64,
    /// [`Verdict::WrongRule`].
    pub wrong_rule: u64,
}

impl VerdictTally {
    /// Count `verdict`, given for `msg`.
    pub fn count(&mut self, verdict: Verdict, msg: &BookMsg) {
        let n = match verdict {
            Verdict::Applied => {
                self.levels_applied += (msg.bids.len() + msg.asks.len()) as u64;
                &mut self.applied
            }
            Verdict::Snapshot => &mut self.snapshot,
            Verdict::Reset => &mut self.reset,
            Verdict::Keepalive => &mut self.keepalive,
            Verdict::Stale { .. } => &mut self.stale,
            Verdict::Buffered => &mut self.buffered,
            Verdict::AwaitingSnapshot => &mut self.awaiting_snapshot,
            Verdict::Gap { .. } => &mut self.gap,
            Verdict::ChecksumMismatch { .. } => &mut self.checksum_mismatch,
            Verdict::SnapshotTooOld { .. } => &mut self.snapshot_too_old,
            Verdict::WrongRule => &mut self.wrong_rule,
        };
        *n += 1;
    }

    /// Book messages counted, whatever their verdict.
    pub fn messages(&self) -> u64 {
        self.applied
            + self.snapshot
            + self.reset
            + self.keepalive
            + self.stale
            + self.buffered
            + self.awaiting_snapshot
            + self.gap
            + self.checksum_mismatch
            + self.snapshot_too_old
            + self.wrong_rule
    }

    /// The counts since `earlier` (a copy taken before).
    pub fn since(&self, earlier: &VerdictTally) -> VerdictTally {
        VerdictTally {
            applied: self.applied - earlier.applied,
            levels_applied: self.levels_applied - earlier.levels_applied,
            snapshot: self.snapshot - earlier.snapshot,
            reset: self.reset - earlier.reset,
            keepalive: self.keepalive - earlier.keepalive,
            stale: self.stale - earlier.stale,
            buffered: self.buffered - earlier.buffered,
            awaiting_snapshot: self.awaiting_snapshot - earlier.awaiting_snapshot,
            gap: self.gap - earlier.gap,
            checksum_mismatch: self.checksum_mismatch - earlier.checksum_mismatch,
            snapshot_too_old: self.snapshot_too_old - earlier.snapshot_too_old,
            wrong_rule: self.wrong_rule - earlier.wrong_rule,
        }
    }
}
