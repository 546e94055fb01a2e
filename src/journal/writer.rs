//! The journal's dedicated writer: a thread of its own owns the [`Journal`]
//! file, so `write` and `fsync` never block the async runtime.
//!
//! Lines are written in the order they are handed over. [`JournalWriter::write`]
//! returns at once; [`JournalWriter::write_durable`] waits (asynchronously)
//! until the line was handed to the OS and, when the fsync policy asks for it
//! (`always`, or `alerts` for alert, delivery and breaker events), forced to
//! disk. The core loop uses the durable form for every event that is shown to
//! an operator or sent out (alert changes), which keeps the invariant
//! "journal before shown or sent" for them; samples and limiter figures are
//! written in order but not waited for.

use super::{Journal, JournalError};
use crate::model::{Alert, Event};
use tokio::sync::{mpsc, oneshot};

/// How many lines may wait for the writer before `write` waits too.
const QUEUE: usize = 4096;

enum Job {
    Line {
        ev: Box<Event>,
        ts_ms: i64,
        done: Option<oneshot::Sender<Result<(), JournalError>>>,
    },
    /// Force everything to disk, then answer.
    Sync(oneshot::Sender<Result<(), JournalError>>),
}

/// The async side of the writer thread. Dropping every clone (or calling
/// [`JournalWriter::close`]) lets the thread sync and end.
#[derive(Clone)]
pub struct JournalWriter {
    jobs: mpsc::Sender<Job>,
    path: std::path::PathBuf,
}

impl std::fmt::Debug for JournalWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JournalWriter")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// Why a write did not happen.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error("the journal writer has stopped")]
    Stopped,
}

impl JournalWriter {
    /// Start the writer thread on an open journal. Returns the writer and the
    /// alerts the journal holds open (for restore), read before any write.
    pub fn spawn(journal: Journal) -> std::io::Result<(JournalWriter, Vec<Alert>)> {
        let open = journal.open_alerts();
        let path = journal.path().to_path_buf();
        let (tx, rx) = mpsc::channel(QUEUE);
        std::thread::Builder::new()
            .name("exwatch-journal".into())
            .spawn(move || run(journal, rx))?;
        Ok((JournalWriter { jobs: tx, path }, open))
    }

    pub fn path(&self) -> &std::path::Path {
        &self.path
    }

    /// Queue one event; it is written after everything queued before it.
    /// Waits only while the queue is full.
    pub async fn write(&self, ev: &Event, ts_ms: i64) -> Result<(), WriteError> {
        self.jobs
            .send(Job::Line {
                ev: Box::new(ev.clone()),
                ts_ms,
                done: None,
            })
            .await
            .map_err(|_| WriteError::Stopped)
    }

    /// Write one event and wait until it is in the file (and on disk, when
    /// the fsync policy wants this event synced).
    pub async fn write_durable(&self, ev: &Event, ts_ms: i64) -> Result<(), WriteError> {
        let (done, wait) = oneshot::channel();
        self.jobs
            .send(Job::Line {
                ev: Box::new(ev.clone()),
                ts_ms,
                done: Some(done),
            })
            .await
            .map_err(|_| WriteError::Stopped)?;
        wait.await.map_err(|_| WriteError::Stopped)??;
        Ok(())
    }

    /// Force everything written so far to disk and wait for it.
    pub async fn sync(&self) -> Result<(), WriteError> {
        let (done, wait) = oneshot::channel();
        self.jobs
            .send(Job::Sync(done))
            .await
            .map_err(|_| WriteError::Stopped)?;
        wait.await.map_err(|_| WriteError::Stopped)??;
        Ok(())
    }
}

/// The thread: one job at a time, in order; syncs when the last sender goes.
fn run(mut journal: Journal, mut jobs: mpsc::Receiver<Job>) {
    while let Some(job) = jobs.blocking_recv() {
        match job {
            Job::Line { ev, ts_ms, done } => {
                let r = journal.append(&ev, ts_ms);
                if let Err(e) = &r {
                    tracing::error!(error = %e, "journal append failed");
                }
                if let Some(done) = done {
                    let _ = done.send(r);
                }
            }
            Job::Sync(done) => {
                let _ = done.send(journal.sync());
            }
        }
    }
    if let Err(e) = journal.sync() {
        tracing::error!(error = %e, "journal sync at exit failed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::{JournalSettings, read_file};
    use crate::model::Component;

    fn health(at_ms: i64) -> Event {
        Event::BackendHealth {
            at_ms,
            component: Component::Journal,
            healthy: true,
            detail: format!("line {at_ms}"),
        }
    }

    #[tokio::test]
    async fn lines_are_written_in_order_and_durable_writes_wait() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("j.jsonl");
        let j = Journal::open_at(&path, &JournalSettings::default()).expect("open");
        let (w, open) = JournalWriter::spawn(j).expect("spawn");
        assert!(open.is_empty());
        for i in 0..100 {
            w.write(&health(i), i).await.expect("write");
        }
        w.write_durable(&health(100), 100).await.expect("durable");
        // Everything queued before the durable write is in the file now.
        let (entries, stats) = read_file(&path).expect("read");
        assert_eq!(stats.bad_lines, 0);
        let ts: Vec<i64> = entries.iter().map(|e| e.ts_ms).collect();
        assert_eq!(ts, (0..=100).collect::<Vec<_>>());
        w.sync().await.expect("sync");
    }
}
