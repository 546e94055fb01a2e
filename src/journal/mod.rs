//! The journal: an append-only JSON Lines file of [`Event`]s, the audit log
//! and the source of replays and of restored alerts after a restart.
//!
//! Each line is `{"v":2,"ts_ms":<unix ms written>,"ev":{...event...}}`
//! (see [`VERSION`]; version 1 files are read too). A line
//! is handed to the OS with one `write` before `append` returns, so a SIGKILL
//! right after loses nothing; `fsync` decides when it is also forced to disk
//! (`always`, `alerts` — after alert and breaker events, the default — or
//! `never`). The file is created with mode 0600. When it would grow past
//! `max_bytes` it is rotated (`journal.jsonl` → `.1` → `.2` ..., `keep` old
//! files), and the new file starts with a checkpoint of every open alert, so
//! the newest file alone is enough to restore them.
//!
//! The first line a monitor writes to a file (after opening it, and after
//! each rotation) also names the instance that wrote it:
//! `{"v":2,"ts_ms":...,"instance":"prod-eu","ev":{...}}` (an optional field:
//! older readers ignore it, and journals without it read as before);
//! [`recorded_instance`] finds it for `replay`.
//!
//! Damage: a line cut short (killed mid-write, disk full) is the last line
//! of the file, without newline. [`Journal::open_at`] moves it to
//! `<path>.torn-<unix ms>` before appending (`repair.rs`; the monitor says
//! so in the log and in a `backend_health` entry of the journal), and a
//! write that fails part way is cut back at once, so no entry is ever glued
//! to a torn one. Readers (`read.rs`) skip a torn tail and count it apart
//! from other unreadable lines, recover an entry older versions glued
//! behind a torn line, and tell a journal from a file that is not one
//! ([`JournalError::NotAJournal`]: `run` refuses to append to it).

mod read;
mod repair;
mod writer;

pub use read::{Contents, ReadStats, TornTail, for_each_entry, read_all, read_file};
pub use repair::Repair;
pub use writer::{JournalWriter, WriteError};

use crate::model::Alert;
use crate::model::Event;
use crate::problems::Problems;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

/// The format written now. 2 (this release): breaker transitions carry a
/// typed `reason` object (`TripCause`), and triage results are their own
/// `alert_triaged` events. Version 1 lines (prose reasons, triage inside
/// `alert_changed`) are still read by `replay`, `report` and restore.
pub const VERSION: u8 = 2;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FsyncPolicy {
    /// fsync after every line.
    Always,
    /// fsync after alert, delivery and breaker events; others reach the OS only.
    #[default]
    Alerts,
    /// Never fsync; the OS writes back when it likes.
    Never,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct JournalSettings {
    pub enabled: bool,
    /// Default: `$XDG_STATE_HOME/exwatch/journal.jsonl` (or `~/.local/state/...`).
    pub path: Option<PathBuf>,
    pub fsync: FsyncPolicy,
    /// Rotate when the file would grow past this.
    pub max_bytes: u64,
    /// Rotated files kept (`.1` newest).
    pub keep: usize,
    /// Journal every sample and stream status too (needed for full replays;
    /// the audit log needs only alerts and notes).
    pub samples: bool,
}

impl Default for JournalSettings {
    fn default() -> Self {
        JournalSettings {
            enabled: true,
            path: None,
            fsync: FsyncPolicy::Alerts,
            max_bytes: 64 * 1024 * 1024,
            keep: 5,
            samples: true,
        }
    }
}

impl JournalSettings {
    pub fn validate(&self, at: &str, p: &mut Problems) {
        crate::problems::check_count(p, &format!("{at}.max_bytes"), self.max_bytes, 4096, 1 << 40);
        if self.keep > 1000 {
            p.push(format!("{at}.keep"), "must be at most 1000");
        }
        if self.path.as_ref().is_some_and(|p| p.as_os_str().is_empty()) {
            p.push(format!("{at}.path"), "must not be empty");
        }
    }

    pub fn resolved_path(&self) -> PathBuf {
        self.path.clone().unwrap_or_else(default_path)
    }

    /// Whether this event goes into the journal under these settings.
    pub fn wants(&self, ev: &Event) -> bool {
        self.samples
            || !matches!(
                ev,
                Event::Sample(_) | Event::LimiterFill { .. } | Event::StreamStatus(_)
            )
    }
}

/// The default journal: `journal.jsonl` in the state directory
/// ([`crate::paths::state_dir`]).
pub fn default_path() -> PathBuf {
    crate::paths::state_dir().join("journal.jsonl")
}

/// Why the journal could not be read or written. The message carries its
/// cause's text, so the cause is not also exposed as `source()` (a printer
/// of error chains would say it twice).
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    /// Reading, writing, creating or renaming a journal file failed.
    #[error("journal {path}: {error}")]
    Io {
        path: String,
        /// What the OS said.
        error: std::io::Error,
    },
    /// Neither the file nor any rotated file of it (`.1`, `.2`, ...) exists.
    #[error("no journal at {path} (nor rotated files of it)")]
    Missing { path: String },
    /// The file holds something else (a config, random bytes): `run`
    /// refuses to append to it, `replay` and `report` to read it.
    #[error("{path} is not an exwatch journal: {detail}")]
    NotAJournal {
        path: String,
        /// What was found instead.
        detail: String,
    },
    /// Not one entry in the journal's files (empty, or only a torn line).
    #[error("{path} holds no journal entry: {detail}")]
    Empty {
        path: String,
        /// Empty, or only a line cut short.
        detail: String,
    },
    /// An event could not be turned into JSON (serde_json's words).
    #[error("journal: cannot encode an event: {0}")]
    Encode(serde_json::Error),
}

impl From<serde_json::Error> for JournalError {
    fn from(e: serde_json::Error) -> Self {
        JournalError::Encode(e)
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> JournalError + '_ {
    move |error| JournalError::Io {
        path: path.display().to_string(),
        error,
    }
}

/// One journal line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    pub v: u8,
    pub ts_ms: i64,
    /// The writing instance's `instance.name`, on the first line of each
    /// file a monitor writes; absent elsewhere and in older journals.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
    pub ev: Event,
}

/// The name of the instance that wrote these entries: the last one named
/// (see [`Entry::instance`]); `None` for journals written before names were
/// recorded.
pub fn recorded_instance(entries: &[Entry]) -> Option<&str> {
    entries.iter().rev().find_map(|e| e.instance.as_deref())
}

/// Alert, delivery, breaker and suppression events: the ones the `alerts` fsync policy
/// forces to disk, and the ones the core waits for before showing or sending.
pub fn is_alert_event(ev: &Event) -> bool {
    matches!(
        ev,
        Event::AlertChanged { .. }
            | Event::AlertDelivery { .. }
            | Event::BreakerChanged { .. }
            | Event::Suppressions { .. }
    )
}

/// `journal.jsonl.3` for n = 3.
pub fn rotated(path: &Path, n: usize) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(format!(".{n}"));
    PathBuf::from(s)
}

fn open_append(path: &Path) -> Result<File, JournalError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
    }
    let mut o = OpenOptions::new();
    o.create(true).append(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    let f = o.open(path).map_err(io(path))?;
    // An older file may have been created with looser permissions.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        f.set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(io(path))?;
    }
    Ok(f)
}

pub struct Journal {
    path: PathBuf,
    file: File,
    size: u64,
    s: JournalSettings,
    open_alerts: BTreeMap<String, Alert>,
    unsynced: bool,
    /// `instance.name` of the writer, stamped on the first line of each file.
    instance: Option<String>,
    /// The next line written is the first of its file (of this writer).
    stamp: bool,
    /// A write failed part way (disk full): the file may end in part of a
    /// line, cut off before the next write.
    torn: bool,
    /// What opening the file repaired at its end, if anything.
    repaired: Option<Repair>,
}

impl Journal {
    /// Open (or create) the journal at `settings.resolved_path()`.
    pub fn open(settings: &JournalSettings) -> Result<Journal, JournalError> {
        Self::open_at(&settings.resolved_path(), settings)
    }

    /// Open (or create) the journal at `path`, restoring its open alerts.
    /// A torn last line (the process was killed mid-write) is moved to
    /// `<path>.torn-<unix ms>` first, so the next entry starts a line of its
    /// own ([`Journal::repaired`] says what was done).
    ///
    /// Errors: [`JournalError::NotAJournal`] when the file holds something
    /// else (it is left untouched: neither appended to nor chmod-ed);
    /// [`JournalError::Io`] when it cannot be read, repaired or opened.
    pub fn open_at(path: &Path, settings: &JournalSettings) -> Result<Journal, JournalError> {
        let mut alerts = BTreeMap::new();
        let stats = for_each_entry(path, |e| fold_alerts(&mut alerts, e))?;
        if let Some(detail) = stats.not_a_journal() {
            return Err(JournalError::NotAJournal {
                path: path.display().to_string(),
                detail,
            });
        }
        let repaired = repair::repair_tail(path, &stats, crate::clock::wall_ms())?;
        if stats.entries == 0 {
            // Killed mid-rotation: the newest rotated file holds the alerts.
            for_each_entry(&rotated(path, 1), |e| fold_alerts(&mut alerts, e))?;
        }
        let open_alerts = alerts
            .into_iter()
            .filter(|(_, a)| a.state.is_open())
            .collect();
        let file = open_append(path)?;
        let size = file.metadata().map_err(io(path))?.len();
        Ok(Journal {
            path: path.to_path_buf(),
            file,
            size,
            s: settings.clone(),
            open_alerts,
            unsynced: false,
            instance: None,
            stamp: false,
            torn: false,
            repaired,
        })
    }

    /// What opening repaired at the end of the file: a torn last line set
    /// aside, or a missing newline added. `None` for a sound file.
    pub fn repaired(&self) -> Option<&Repair> {
        self.repaired.as_ref()
    }

    /// Name the writing instance on the first line written to each file
    /// from now on ([`Entry::instance`]).
    pub fn with_instance(mut self, name: &str) -> Journal {
        self.instance = Some(name.to_string());
        self.stamp = true;
        self
    }

    /// The instance name to put on the next line, if it is a file's first.
    fn take_stamp(&mut self) -> Option<String> {
        if std::mem::take(&mut self.stamp) {
            self.instance.clone()
        } else {
            None
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Alerts open as far as the journal knows (restored ones included).
    pub fn open_alerts(&self) -> Vec<Alert> {
        self.open_alerts.values().cloned().collect()
    }

    /// Append one event (if the settings want it), stamped `ts_ms`.
    pub fn append(&mut self, ev: &Event, ts_ms: i64) -> Result<(), JournalError> {
        if !self.s.wants(ev) {
            return Ok(());
        }
        let mut entry = Entry {
            v: VERSION,
            ts_ms,
            instance: self.take_stamp(),
            ev: ev.clone(),
        };
        let mut line = serde_json::to_vec(&entry)?;
        line.push(b'\n');
        if self.size > 0 && self.size + line.len() as u64 > self.s.max_bytes {
            self.rotate(ts_ms)?;
            // The new file's first line names the instance (when its
            // checkpoint did not already).
            if let Some(name) = self.take_stamp() {
                entry.instance = Some(name);
                line = serde_json::to_vec(&entry)?;
                line.push(b'\n');
            }
        }
        self.write_line(&line)?;
        self.track(ev);
        match self.s.fsync {
            FsyncPolicy::Always => self.sync()?,
            FsyncPolicy::Alerts if is_alert_event(ev) => self.sync()?,
            _ => self.unsynced = true,
        }
        Ok(())
    }

    /// Force everything written so far to disk (call on shutdown).
    pub fn sync(&mut self) -> Result<(), JournalError> {
        self.file.sync_data().map_err(io(&self.path))?;
        self.unsynced = false;
        Ok(())
    }

    /// Write one whole line. A write that fails part way (disk full)
    /// leaves part of the line in the file: it is cut off again (now, or
    /// before the next write if that fails too), so the next line never
    /// glues onto it.
    fn write_line(&mut self, line: &[u8]) -> Result<(), JournalError> {
        if self.torn {
            self.cut_back()?;
        }
        if let Err(e) = self.file.write_all(line) {
            self.torn = true;
            let _ = self.cut_back();
            return Err(io(&self.path)(e));
        }
        self.size += line.len() as u64;
        Ok(())
    }

    /// Truncate the file to the lines written whole.
    fn cut_back(&mut self) -> Result<(), JournalError> {
        self.file.set_len(self.size).map_err(io(&self.path))?;
        self.torn = false;
        Ok(())
    }

    fn track(&mut self, ev: &Event) {
        match ev {
            Event::AlertChanged { alert } if alert.state.is_open() => {
                self.open_alerts
                    .insert(alert.fingerprint.clone(), alert.clone());
            }
            Event::AlertChanged { alert } => {
                self.open_alerts.remove(&alert.fingerprint);
            }
            Event::AlertDelivery {
                fingerprint,
                sink,
                delivery,
            } => {
                if let Some(a) = self.open_alerts.get_mut(fingerprint) {
                    a.delivery.insert(sink.clone(), delivery.clone());
                }
            }
            _ => {}
        }
    }

    fn rotate(&mut self, ts_ms: i64) -> Result<(), JournalError> {
        self.sync()?;
        let keep = self.s.keep;
        if keep == 0 {
            std::fs::remove_file(&self.path).map_err(io(&self.path))?;
        } else {
            let oldest = rotated(&self.path, keep);
            if oldest.exists() {
                std::fs::remove_file(&oldest).map_err(io(&oldest))?;
            }
            for n in (1..keep).rev() {
                let from = rotated(&self.path, n);
                if from.exists() {
                    let to = rotated(&self.path, n + 1);
                    std::fs::rename(&from, &to).map_err(io(&from))?;
                }
            }
            std::fs::rename(&self.path, rotated(&self.path, 1)).map_err(io(&self.path))?;
        }
        self.file = open_append(&self.path)?;
        self.size = 0;
        // Checkpoint: the new file alone restores every open alert.
        let alerts: Vec<Alert> = self.open_alerts.values().cloned().collect();
        self.stamp = self.instance.is_some();
        for alert in alerts {
            let mut line = serde_json::to_vec(&Entry {
                v: VERSION,
                ts_ms,
                instance: self.take_stamp(),
                ev: Event::AlertChanged { alert },
            })?;
            line.push(b'\n');
            self.write_line(&line)?;
        }
        self.sync()
    }
}

impl Drop for Journal {
    fn drop(&mut self) {
        if self.unsynced {
            let _ = self.file.sync_data();
        }
    }
}

/// The journal's files, oldest first: `.N` ... `.1`, then the live file.
pub fn files(path: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut n = 1;
    while rotated(path, n).exists() {
        n += 1;
    }
    for i in (1..n).rev() {
        out.push(rotated(path, i));
    }
    if path.exists() {
        out.push(path.to_path_buf());
    }
    out
}

/// Open alerts, newest state of each, from the live file (or the newest
/// rotated one when the live file is missing or empty, e.g. killed mid-rotation).
pub fn restore_open_alerts(path: &Path) -> Result<Vec<Alert>, JournalError> {
    let mut alerts: BTreeMap<String, Alert> = BTreeMap::new();
    let stats = for_each_entry(path, |e| fold_alerts(&mut alerts, e))?;
    if stats.entries == 0 {
        for_each_entry(&rotated(path, 1), |e| fold_alerts(&mut alerts, e))?;
    }
    Ok(alerts.into_values().filter(|a| a.state.is_open()).collect())
}

/// One entry into the newest state of each alert (by fingerprint).
fn fold_alerts(alerts: &mut BTreeMap<String, Alert>, e: Entry) {
    match e.ev {
        Event::AlertChanged { alert } => {
            alerts.insert(alert.fingerprint.clone(), alert);
        }
        Event::AlertDelivery {
            fingerprint,
            sink,
            delivery,
        } => {
            if let Some(a) = alerts.get_mut(&fingerprint) {
                a.delivery.insert(sink, delivery);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{BreakerState, EndpointId, OpenWait, OutcomeClass, Transition, TripCause};

    /// A `breaker_changed` line as the release before typed causes wrote it:
    /// the reason is prose.
    const OLD_LINE: &str = r#"{"v":1,"ts_ms":1700000000123,"ev":{"event":"breaker_changed","exchange":"binance","endpoint":"ticker","at_ms":1700000000100,"transition":{"from":"closed","to":"open","reason":"3 consecutive failures ≥ 3 (last: server_error); open 10s (trip 1)","open_until_ms":1700000010100}}}"#;

    #[test]
    fn an_old_breaker_changed_line_still_reads() {
        let e: Entry = serde_json::from_str(OLD_LINE).expect("old journals stay readable");
        let Event::BreakerChanged {
            id,
            at_ms,
            transition,
        } = &e.ev
        else {
            panic!("not a breaker event: {:?}", e.ev)
        };
        assert_eq!(
            (id, *at_ms),
            (&EndpointId::new("binance", "ticker"), 1_700_000_000_100)
        );
        assert_eq!(
            transition,
            &Transition {
                from: BreakerState::Closed,
                to: BreakerState::Open,
                reason: TripCause::Other(
                    "3 consecutive failures ≥ 3 (last: server_error); open 10s (trip 1)".into()
                ),
                open_until_ms: Some(1_700_000_010_100),
            }
        );
        assert_eq!(
            transition.reason.to_string(),
            "3 consecutive failures ≥ 3 (last: server_error); open 10s (trip 1)"
        );
        // Written again, it is the same line.
        assert_eq!(serde_json::to_string(&e).expect("serializes"), OLD_LINE);
    }

    #[test]
    fn a_typed_breaker_changed_line_round_trips() {
        let e = Entry {
            v: VERSION,
            ts_ms: 1_700_000_000_123,
            instance: None,
            ev: Event::BreakerChanged {
                id: EndpointId::new("binance", "ticker"),
                at_ms: 1_700_000_000_100,
                transition: Transition {
                    from: BreakerState::Closed,
                    to: BreakerState::Open,
                    reason: TripCause::ConsecutiveFailures {
                        count: 3,
                        threshold: 3,
                        last: OutcomeClass::ServerError,
                        open: OpenWait::Backoff {
                            wait_ms: 10_000,
                            trip: 1,
                        },
                    },
                    open_until_ms: Some(1_700_000_010_100),
                },
            },
        };
        let line = serde_json::to_string(&e).expect("serializes");
        assert!(
            line.contains(r#""reason":{"cause":"consecutive_failures","count":3,"threshold":3,"last":"server_error","open":{"wait":"backoff","wait_ms":10000,"trip":1}}"#),
            "{line}"
        );
        let back: Entry = serde_json::from_str(&line).expect("reads back");
        assert_eq!(back, e);
        let Event::BreakerChanged { transition, .. } = &back.ev else {
            unreachable!()
        };
        assert_eq!(
            transition.reason.to_string(),
            "3 consecutive failures ≥ 3 (last: server_error); open 10s (trip 1)"
        );
    }

    /// A write that failed part way (the disk filled) left part of a line:
    /// the next write cuts it off first, so its line is not glued to it.
    #[test]
    fn part_of_a_line_left_by_a_failed_write_is_cut_off_before_the_next() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("j.jsonl");
        let mut j = Journal::open_at(&path, &JournalSettings::default()).expect("open");
        let ev = |i| Event::ClockOffset {
            exchange: "okx".into(),
            offset_ms: i,
        };
        j.append(&ev(1), 1).expect("append");
        // What a write cut short by ENOSPC leaves, and the flag it sets.
        let mut other = OpenOptions::new().append(true).open(&path).expect("open");
        other
            .write_all(br#"{"v":2,"ts_ms":2,"ev":{"ev"#)
            .expect("write");
        j.torn = true;
        j.append(&ev(3), 3).expect("append");
        drop(j);
        let (entries, stats) = read_file(&path).expect("read");
        assert_eq!((entries.len(), stats.bad_lines), (2, 0));
        assert_eq!(entries[1].ts_ms, 3);
    }

    /// The instance name is on the first line of each file, rotated ones
    /// included, and on no other line.
    #[test]
    fn the_first_line_of_each_file_names_the_instance() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("j.jsonl");
        let settings = JournalSettings {
            max_bytes: 4096,
            keep: 3,
            ..JournalSettings::default()
        };
        let mut j = Journal::open_at(&path, &settings)
            .expect("open")
            .with_instance("prod-eu");
        for i in 0..120 {
            let ev = Event::ClockOffset {
                exchange: "binance".into(),
                offset_ms: i,
            };
            j.append(&ev, 1_700_000_000_000 + i).expect("append");
        }
        drop(j);
        let files = files(&path);
        assert!(files.len() >= 2, "rotated: {files:?}");
        for f in &files {
            let (entries, _) = read_file(f).expect("read");
            assert_eq!(entries[0].instance.as_deref(), Some("prod-eu"), "{f:?}");
            assert!(entries[1..].iter().all(|e| e.instance.is_none()), "{f:?}");
            assert_eq!(recorded_instance(&entries), Some("prod-eu"));
        }
        // Reopened without a name (as an older exwatch would write): the
        // lines it adds carry none, and the name recorded before stands.
        let mut j = Journal::open_at(&path, &settings).expect("reopen");
        let ev = Event::ClockOffset {
            exchange: "okx".into(),
            offset_ms: 0,
        };
        j.append(&ev, 1_700_000_001_000).expect("append");
        drop(j);
        let (entries, _) = read_file(&path).expect("read");
        assert!(entries.last().is_some_and(|e| e.instance.is_none()));
        assert_eq!(recorded_instance(&entries), Some("prod-eu"));
    }
}
