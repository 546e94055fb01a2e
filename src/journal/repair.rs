//! Repairing the end of a journal before appending to it: a last line cut
//! short (the writer was killed mid-write, or the disk filled) is moved
//! to a file of its own, so the next entry starts on a line of its own
//! instead of being glued to the torn one (which made both unreadable).

use super::{JournalError, ReadStats, io};
use std::fs::OpenOptions;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// What opening a journal repaired at its end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Repair {
    /// A torn last line (`bytes` long) was moved to `set_aside` and cut
    /// off the journal.
    SetAside { bytes: u64, set_aside: PathBuf },
    /// The last line was whole but had no newline: one was added.
    Terminated,
}

impl std::fmt::Display for Repair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Repair::SetAside { bytes, set_aside } => write!(
                f,
                "its last line was cut short ({bytes} bytes, written when the previous run was killed \
                 or the disk was full): moved to {} so the next entry starts a line of its own",
                set_aside.display()
            ),
            Repair::Terminated => f.write_str("its last line had no newline: one was added"),
        }
    }
}

/// `journal.jsonl.torn-1764526800123` for `at_ms`; another number when
/// that file exists already.
fn aside_path(path: &Path, at_ms: i64) -> PathBuf {
    let mut n = at_ms;
    loop {
        let mut s = path.as_os_str().to_owned();
        s.push(format!(".torn-{n}"));
        let p = PathBuf::from(s);
        if !p.exists() {
            return p;
        }
        n += 1;
    }
}

/// Repair the end of the journal at `path` as `stats` (a read of it) found
/// it: a torn last line is copied to `<path>.torn-<at_ms>` (mode 0600,
/// synced) and then cut off; a whole last line without newline gets one.
/// Says so in the log. `Ok(None)` when there was nothing to repair.
///
/// Errors: [`JournalError::Io`] when the file cannot be read, the torn
/// bytes cannot be saved, or the file cannot be truncated (nothing is cut
/// before the torn bytes are safely elsewhere).
pub(super) fn repair_tail(
    path: &Path,
    stats: &ReadStats,
    at_ms: i64,
) -> Result<Option<Repair>, JournalError> {
    if let Some(t) = stats.torn_tail {
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .map_err(io(path))?;
        let mut torn = Vec::new();
        file.seek(SeekFrom::Start(t.offset))
            .and_then(|_| file.read_to_end(&mut torn))
            .map_err(io(path))?;
        let set_aside = aside_path(path, at_ms);
        let mut o = OpenOptions::new();
        o.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            o.mode(0o600);
        }
        o.open(&set_aside)
            .and_then(|mut f| f.write_all(&torn).and_then(|()| f.sync_all()))
            .map_err(io(&set_aside))?;
        file.set_len(t.offset)
            .and_then(|()| file.sync_all())
            .map_err(io(path))?;
        let repair = Repair::SetAside {
            bytes: torn.len() as u64,
            set_aside,
        };
        tracing::warn!(journal = %path.display(), "journal repaired: {repair}");
        return Ok(Some(repair));
    }
    if stats.unterminated {
        OpenOptions::new()
            .append(true)
            .open(path)
            .and_then(|mut f| f.write_all(b"\n").and_then(|()| f.sync_data()))
            .map_err(io(path))?;
        tracing::info!(journal = %path.display(), "journal repaired: {}", Repair::Terminated);
        return Ok(Some(Repair::Terminated));
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::super::{Journal, JournalSettings, read_file};
    use super::*;
    use crate::model::Event;

    fn ev(i: i64) -> Event {
        Event::ClockOffset {
            exchange: "okx".into(),
            offset_ms: i,
        }
    }

    fn write_entries(path: &Path, from: i64, to: i64) {
        let mut j = Journal::open_at(path, &JournalSettings::default()).expect("open");
        for i in from..to {
            j.append(&ev(i), i).expect("append");
        }
    }

    fn offsets(path: &Path) -> Vec<i64> {
        let (entries, _) = read_file(path).expect("read");
        entries
            .iter()
            .map(|e| match e.ev {
                Event::ClockOffset { offset_ms, .. } => offset_ms,
                _ => panic!("unexpected {e:?}"),
            })
            .collect()
    }

    /// Torn at every byte of the last line: the entries before it and
    /// every entry after the restart read; the torn bytes are kept aside.
    #[test]
    fn a_torn_tail_is_set_aside_and_the_next_entry_starts_its_own_line() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("j.jsonl");
        write_entries(&path, 0, 3);
        let whole = std::fs::read(&path).expect("read");
        let last_start = whole[..whole.len() - 1]
            .iter()
            .rposition(|&b| b == b'\n')
            .expect("3 lines")
            + 1;
        for cut in last_start + 1..whole.len() - 1 {
            std::fs::write(&path, &whole[..cut]).expect("tear");
            let j = Journal::open_at(&path, &JournalSettings::default()).expect("open");
            let Some(Repair::SetAside { bytes, set_aside }) = j.repaired().cloned() else {
                panic!("cut at {cut}: no repair: {:?}", j.repaired())
            };
            drop(j);
            assert_eq!(bytes as usize, cut - last_start);
            assert_eq!(
                std::fs::read(&set_aside).expect("aside"),
                &whole[last_start..cut]
            );
            std::fs::remove_file(&set_aside).expect("rm");
            write_entries(&path, 10, 12);
            let (_, stats) = read_file(&path).expect("read");
            assert_eq!(stats.bad_lines, 0, "cut at {cut}");
            assert_eq!(offsets(&path), vec![0, 1, 10, 11], "cut at {cut}");
        }
    }

    #[test]
    fn a_whole_last_line_without_newline_is_terminated() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("j.jsonl");
        write_entries(&path, 0, 2);
        let whole = std::fs::read(&path).expect("read");
        std::fs::write(&path, &whole[..whole.len() - 1]).expect("drop newline");
        let j = Journal::open_at(&path, &JournalSettings::default()).expect("open");
        assert_eq!(j.repaired(), Some(&Repair::Terminated));
        drop(j);
        write_entries(&path, 5, 6);
        assert_eq!(offsets(&path), vec![0, 1, 5]);
    }

    #[test]
    fn a_sound_journal_is_not_touched_and_a_foreign_file_is_refused_untouched() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("j.jsonl");
        write_entries(&path, 0, 2);
        let j = Journal::open_at(&path, &JournalSettings::default()).expect("open");
        assert_eq!(j.repaired(), None);
        drop(j);
        let toml = dir.path().join("config.toml");
        std::fs::write(&toml, "[journal]\npath = \"x\"").expect("write");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&toml, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        }
        let e = Journal::open_at(&toml, &JournalSettings::default())
            .err()
            .expect("refused");
        assert!(matches!(e, JournalError::NotAJournal { .. }), "{e}");
        assert!(e.to_string().contains("config.toml"), "{e}");
        assert_eq!(
            std::fs::read_to_string(&toml).expect("read"),
            "[journal]\npath = \"x\""
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&toml).expect("meta").permissions().mode();
            assert_eq!(mode & 0o777, 0o644);
        }
        assert_eq!(std::fs::read_dir(dir.path()).expect("ls").count(), 2);
    }
}
