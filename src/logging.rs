//! Logs go to a daily rolling file, never to the terminal the UI or the
//! headless status lines own.

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
