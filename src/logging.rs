//! Logs go to a daily rolling file, never to the terminal the UI or the
//! headless status lines own. Every line is scrubbed of the process's
//! secrets ([`crate::secrets`]) on its way to the file: whatever a field
//! quotes (a receiver's answer, a Redis or transport error), no secret and
//! no recognisable fragment of one is written.

use serde::Deserialize;
use std::path::PathBuf;
use tracing_subscriber::EnvFilter;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// Directory of the daily rolling log files. Default: the platform state dir.
    pub dir: Option<PathBuf>,
    /// `error`, `warn`, `info`, `debug` or `trace`; `RUST_LOG` wins when set.
    pub level: String,
    pub json: bool,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            dir: None,
            level: "info".into(),
            json: false,
        }
    }
}

/// The default log directory: `$XDG_STATE_HOME/exwatch` or `~/.local/state/exwatch`.
pub fn default_dir() -> PathBuf {
    crate::paths::state_dir()
}

/// Install the global subscriber. The guard must live until exit so the
/// background writer flushes.
pub fn init(cfg: &LogConfig) -> std::io::Result<tracing_appender::non_blocking::WorkerGuard> {
    let dir = cfg.dir.clone().unwrap_or_else(default_dir);
    std::fs::create_dir_all(&dir)?;
    let appender = tracing_appender::rolling::daily(&dir, "exwatch.log");
    let (writer, guard) = tracing_appender::non_blocking(appender);
    let writer = Scrubbed(writer);
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(&cfg.level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_ansi(false);
    // A second init (tests, nested commands) keeps the first subscriber.
    let _ = if cfg.json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
    Ok(guard)
}

/// A [`MakeWriter`](tracing_subscriber::fmt::MakeWriter) whose writers
/// scrub what they are given. The fmt layer hands over each event as one
/// whole formatted line, so a secret is never split across two writes.
#[derive(Debug, Clone)]
pub struct Scrubbed<M>(pub M);

impl<'a, M: tracing_subscriber::fmt::MakeWriter<'a>> tracing_subscriber::fmt::MakeWriter<'a>
    for Scrubbed<M>
{
    type Writer = ScrubWriter<M::Writer>;

    fn make_writer(&'a self) -> Self::Writer {
        ScrubWriter(self.0.make_writer())
    }
}

/// One writer of [`Scrubbed`]: UTF-8 text is written scrubbed; anything
/// else passes unchanged.
#[derive(Debug)]
pub struct ScrubWriter<W>(W);

impl<W: std::io::Write> std::io::Write for ScrubWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match std::str::from_utf8(buf) {
            Ok(text) => {
                self.0.write_all(crate::secrets::scrub(text).as_bytes())?;
                Ok(buf.len())
            }
            Err(_) => self.0.write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn a_registered_secret_never_reaches_the_writer() {
        crate::secrets::register("http://127.0.0.1:9/hooks/logtok-51xq88rr0p");
        let mut out = Vec::new();
        {
            let mut w = ScrubWriter(&mut out);
            w.write_all(b"sink answered 404: no route /hooks/logtok-51xq88rr0p\n")
                .unwrap_or_default();
        }
        let text = String::from_utf8_lossy(&out);
        assert!(!text.contains("51xq88"), "{text}");
        assert!(text.contains("[redacted]"), "{text}");
    }
}
