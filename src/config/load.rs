//! Finding and reading the config file: `locate`, `load`, `parse`, and the
//! errors that name the file, line, column and field.

use super::diagnose::{Locator, Pruned, recover};
use super::*;
use crate::problems::Problems;
use std::fmt;
use std::path::{Path, PathBuf};

/// One error found in a config, positioned in its file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub file: String,
    pub line: usize,
    pub column: usize,
    /// Dotted path of the field, e.g. `exchanges[1].endpoints[0].interval`.
    pub field: String,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}: {}",
            self.file, self.line, self.column, self.field, self.message
        )
    }
}

/// Every error of one config, in file order.
#[derive(Debug, Clone, thiserror::Error)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file could not be read; the message carries the OS's words (so
    /// they are not also the error's `source()`, which would repeat them).
    #[error("cannot read config {path}: {error}")]
    Io { path: String, error: std::io::Error },
    #[error("{0}")]
    Invalid(ConfigErrors),
    #[error(
        "no config given: pass -c FILE, set EXWATCH_CONFIG, or create $XDG_CONFIG_HOME/exwatch/config.toml \
         (~/.config/exwatch/config.toml by default; start from config.example.toml; `exwatch demo` needs no config)"
    )]
    NotFound,
}

/// Where the config comes from: `-c`, else `$EXWATCH_CONFIG`, else the user's config dir.
pub fn locate(cli: Option<&Path>) -> Result<PathBuf, LoadError> {
    if let Some(p) = cli {
        return Ok(p.to_path_buf());
    }
    if let Some(p) = std::env::var_os("EXWATCH_CONFIG").filter(|v| !v.is_empty()) {
        return Ok(PathBuf::from(p));
    }
    match crate::paths::config_file() {
        Some(p) if p.exists() => Ok(p),
        _ => Err(LoadError::NotFound),
    }
}

pub fn load(path: &Path) -> Result<Config, LoadError> {
    let text = std::fs::read_to_string(path).map_err(|error| LoadError::Io {
        path: path.display().to_string(),
        error,
    })?;
    parse(&path.display().to_string(), &text).map_err(LoadError::Invalid)
}

/// Parse and validate a config text. `file` only names it in errors.
pub fn parse(file: &str, text: &str) -> Result<Config, ConfigErrors> {
    let locator = Locator::new(file, text);
    let (config, mut errors, pruned) = match toml::from_str::<Config>(text) {
        Ok(c) => (Some(c), Vec::new(), Pruned::default()),
        Err(e) => recover(&locator, &e),
    };
    if let Some(config) = &config {
        let mut problems = Problems::default();
        config.validate(&mut problems);
        for (path, message) in &problems.0 {
            let path = pruned.original(path);
            // A key dropped to get past a type error took its default: what
            // validation says about that default is not the user's doing.
            if !pruned.covers(&path) {
                errors.push(locator.at_path(&path, message));
            }
        }
    }
    match config {
        Some(mut config) if errors.is_empty() => {
            // The cross-checks learn each REST ticker's symbol from here:
            // the poll events do not carry it.
            config.alerts.detect.cross.rest_symbols = config.ticker_symbols();
            Ok(config)
        }
        _ => {
            errors.sort_by_key(|e| (e.line, e.column));
            errors.dedup();
            Err(ConfigErrors(errors))
        }
    }
}
