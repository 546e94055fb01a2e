//! Where exwatch looks for its config and keeps its state, in one place, by
//! the XDG base directory specification (the `etcetera` crate reads
//! `XDG_CONFIG_HOME` and `XDG_STATE_HOME`, ignoring relative values as the
//! specification says, and falls back to `~/.config` and `~/.local/state`).
//!
//! - config file: `$XDG_CONFIG_HOME/exwatch/config.toml`
//! - state (logs, journal): `$XDG_STATE_HOME/exwatch/`
//!
//! Without a home directory there is no config file to find, and state goes
//! to `<temp dir>/exwatch`. A leaf: it imports nothing of the crate.

use etcetera::BaseStrategy;
use std::path::PathBuf;

/// `$XDG_CONFIG_HOME/exwatch/config.toml` (default `~/.config/...`); `None`
/// without a home directory.
pub fn config_file() -> Option<PathBuf> {
    let base = etcetera::choose_base_strategy().ok()?;
    Some(base.config_dir().join("exwatch").join("config.toml"))
}

/// `$XDG_STATE_HOME/exwatch` (default `~/.local/state/exwatch`): logs and
/// the journal. Without a home directory, `<temp dir>/exwatch`.
pub fn state_dir() -> PathBuf {
    etcetera::choose_base_strategy()
        .ok()
        .and_then(|b| b.state_dir())
        .map(|d| d.join("exwatch"))
        .unwrap_or_else(|| std::env::temp_dir().join("exwatch"))
}
