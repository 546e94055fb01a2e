//! Reading journal files: entry by entry, with what did not parse counted
//! and a torn last line (a write cut short when the writer was killed, or
//! when the disk filled) told apart from a file that is not a journal.

use super::{Entry, JournalError, files, io};
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

/// Every line of a journal starts with this (serde writes `v` first).
const LINE_START: &[u8] = br#"{"v":"#;

/// What reading a journal file found.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct ReadStats {
    /// Lines that parsed as entries (a line recovered from behind a torn
    /// one included).
    pub entries: u64,
    /// Lines that did not parse: from a newer version, a torn line another
    /// entry was glued to by an exwatch before 2026-12 (the glued entry is
    /// recovered and counted in `entries`), or the torn last line.
    pub bad_lines: u64,
    /// The last line, when it has no newline and does not parse (it is
    /// counted in `bad_lines` too).
    pub torn_tail: Option<TornTail>,
    /// The last line parsed but has no newline (a write cut just before
    /// it): readable, but the next append must start a new line.
    pub unterminated: bool,
}

/// A last line without its newline that does not parse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TornTail {
    /// Byte offset of the line's start in the file.
    pub offset: u64,
    /// Its length in bytes.
    pub len: u64,
    /// It looks like the start of a journal line (`{"v":...`, a prefix of
    /// it, or NUL bytes a crash left): a torn entry, not foreign content.
    pub looks_torn: bool,
}

impl ReadStats {
    /// Why these contents are not a journal, when they are not: something
    /// is there, yet no line is an entry and the only unreadable part is not
    /// a torn journal line. `None` for a journal, for an empty file and for
    /// a file holding only a torn first line.
    pub fn not_a_journal(&self) -> Option<String> {
        if self.entries > 0 {
            return None;
        }
        let torn = self.torn_tail.filter(|t| t.looks_torn).is_some();
        let foreign = self.bad_lines - u64::from(torn);
        (foreign > 0).then(|| {
            format!(
                "none of its {foreign} line(s) is a journal entry (JSON lines starting {{\"v\":...)"
            )
        })
    }
}

/// Stream every entry of one file to `f`, in order. A missing file is empty.
///
/// Errors: [`JournalError::Io`] when the file exists but cannot be read.
pub fn for_each_entry(path: &Path, mut f: impl FnMut(Entry)) -> Result<ReadStats, JournalError> {
    let mut stats = ReadStats::default();
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(stats),
        Err(e) => return Err(io(path)(e)),
    };
    let mut reader = BufReader::new(file);
    let mut buf = Vec::new();
    let mut offset = 0u64;
    loop {
        buf.clear();
        let n = reader.read_until(b'\n', &mut buf).map_err(io(path))?;
        if n == 0 {
            break;
        }
        let start = offset;
        offset += n as u64;
        let terminated = buf.last() == Some(&b'\n');
        let line = if terminated { &buf[..n - 1] } else { &buf[..] };
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        match serde_json::from_slice::<Entry>(line) {
            Ok(e) => {
                stats.entries += 1;
                stats.unterminated = !terminated;
                f(e)
            }
            Err(_) => {
                stats.bad_lines += 1;
                if !terminated {
                    stats.torn_tail = Some(TornTail {
                        offset: start,
                        len: n as u64,
                        looks_torn: looks_torn(line),
                    });
                } else if let Some(e) = glued_entry(line) {
                    stats.entries += 1;
                    f(e)
                }
            }
        }
    }
    Ok(stats)
}

/// Whether `line` looks like the start of a journal line cut short: a
/// prefix of one, or (after a crash of the machine) NUL bytes.
fn looks_torn(line: &[u8]) -> bool {
    line.starts_with(LINE_START) || LINE_START.starts_with(line) || line.iter().all(|&b| b == 0)
}

/// The entry an older exwatch appended right behind a torn line (on the
/// same line): the last `{"v":` of the line that starts a whole entry.
fn glued_entry(line: &[u8]) -> Option<Entry> {
    (1..line.len())
        .filter(|&i| line[i..].starts_with(LINE_START))
        .find_map(|i| serde_json::from_slice(&line[i..]).ok())
}

/// Every entry of one file.
pub fn read_file(path: &Path) -> Result<(Vec<Entry>, ReadStats), JournalError> {
    let mut out = Vec::new();
    let stats = for_each_entry(path, |e| out.push(e))?;
    Ok((out, stats))
}

/// A whole journal as `replay` and `report` read it.
#[derive(Debug, Default)]
pub struct Contents {
    /// Every entry, oldest file first.
    pub entries: Vec<Entry>,
    /// Lines that did not parse, torn last lines included.
    pub bad_lines: u64,
    /// Files whose last line is torn, with the torn line's length in bytes.
    pub torn: Vec<(PathBuf, u64)>,
}

/// Read the journal at `path` and its rotated files, oldest first.
///
/// Errors: [`JournalError::Missing`] when there is no file;
/// [`JournalError::NotAJournal`] when a file holds something that is not
/// a journal (a config, random bytes); [`JournalError::Empty`] when there
/// is not one entry (an empty file, or only a torn line);
/// [`JournalError::Io`] when a file cannot be read. A journal whose only
/// damage is a torn last line reads, with the line counted in
/// [`Contents::torn`].
pub fn read_all(path: &Path) -> Result<Contents, JournalError> {
    let files = files(path);
    if files.is_empty() {
        return Err(JournalError::Missing {
            path: path.display().to_string(),
        });
    }
    let mut out = Contents::default();
    for f in files {
        let stats = for_each_entry(&f, |e| out.entries.push(e))?;
        if let Some(detail) = stats.not_a_journal() {
            return Err(JournalError::NotAJournal {
                path: f.display().to_string(),
                detail,
            });
        }
        out.bad_lines += stats.bad_lines;
        if let Some(t) = stats.torn_tail {
            out.torn.push((f, t.len));
        }
    }
    if out.entries.is_empty() {
        let detail = if out.torn.is_empty() {
            "the file is empty".to_string()
        } else {
            "only a line cut short when its writer was killed".to_string()
        };
        return Err(JournalError::Empty {
            path: path.display().to_string(),
            detail,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINE: &str =
        r#"{"v":2,"ts_ms":5,"ev":{"event":"clock_offset","exchange":"okx","offset_ms":3}}"#;

    fn stats_of(bytes: &[u8]) -> (Vec<Entry>, ReadStats) {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("j.jsonl");
        std::fs::write(&path, bytes).expect("write");
        read_file(&path).expect("read")
    }

    #[test]
    fn a_torn_last_line_is_told_apart_from_bad_lines() {
        let text = format!("{LINE}\n{}", &LINE[..30]);
        let (entries, stats) = stats_of(text.as_bytes());
        assert_eq!(entries.len(), 1);
        assert_eq!(stats.bad_lines, 1);
        let expected = TornTail {
            offset: LINE.len() as u64 + 1,
            len: 30,
            looks_torn: true,
        };
        assert_eq!(stats.torn_tail, Some(expected));
        assert_eq!(stats.not_a_journal(), None);
    }

    #[test]
    fn an_entry_glued_behind_a_torn_line_is_recovered() {
        let text = format!("{LINE}\n{}{LINE}\n{LINE}\n", &LINE[..41]);
        let (entries, stats) = stats_of(text.as_bytes());
        assert_eq!((entries.len(), stats.bad_lines), (3, 1));
        assert_eq!(stats.torn_tail, None);
    }

    #[test]
    fn a_whole_last_line_without_its_newline_reads_and_is_marked() {
        let (entries, stats) = stats_of(LINE.as_bytes());
        assert_eq!((entries.len(), stats.bad_lines), (1, 0));
        assert!(stats.unterminated);
    }

    #[test]
    fn foreign_content_is_not_a_journal_but_empty_and_torn_only_files_are() {
        for foreign in [
            &b"[log]\nlevel = \"info\"\n"[..],
            b"level = \"info\"",
            b"\x00\x01garbage\xff\xfe\n\x13",
            b"{\"other\": true}\n",
        ] {
            let (_, stats) = stats_of(foreign);
            assert!(stats.not_a_journal().is_some(), "{foreign:?}: {stats:?}");
        }
        for fine in [&b""[..], b"\n\n", b"{\"v\":2,\"ts_", b"{\"", b"\0\0\0\0"] {
            let (_, stats) = stats_of(fine);
            assert_eq!(stats.not_a_journal(), None, "{fine:?}");
        }
    }

    #[test]
    fn read_all_names_what_is_wrong() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("j.jsonl");
        assert!(matches!(read_all(&path), Err(JournalError::Missing { .. })));
        std::fs::write(&path, "").expect("write");
        let e = read_all(&path).expect_err("empty");
        assert!(matches!(e, JournalError::Empty { .. }), "{e}");
        std::fs::write(&path, "[journal]\npath = \"x\"\n").expect("write");
        let e = read_all(&path).expect_err("toml");
        assert!(e.to_string().contains("is not an exwatch journal"), "{e}");
        std::fs::write(&path, &LINE[..20]).expect("write");
        let e = read_all(&path).expect_err("torn only");
        assert!(e.to_string().contains("cut short"), "{e}");
        std::fs::write(&path, format!("{LINE}\n{}", &LINE[..20])).expect("write");
        let c = read_all(&path).expect("a torn tail still reads");
        assert_eq!((c.entries.len(), c.bad_lines), (1, 1));
        assert_eq!(c.torn, vec![(path.clone(), 20)]);
    }
}
