//! `exwatch demo`: the simulator with its fault cycle, and a config watching it.

use crate::config::{self, Config};
use crate::model::ExchangeKind;
use strum::VariantArray;

/// Where the demo journals unless told otherwise: beside the logs, new each run.
pub fn default_journal() -> std::path::PathBuf {
    crate::logging::default_dir().join("demo-journal.jsonl")
}

/// A config that watches every kind on a simulator at `base` (e.g.
/// `http://127.0.0.1:9000`), journaling to `journal`.
pub fn config_for(base: &str, journal: &std::path::Path) -> Result<Config, config::ConfigErrors> {
    let journal = toml::Value::String(journal.display().to_string());
    let mut text = format!("[journal]\npath = {journal}\n\n");
    text.push_str(
        "[instance]\nname = \"demo\"\n\n[defaults]\ninterval = \"1s\"\ntimeout = \"2s\"\n\n\
         [breaker]\nconsecutive_failures = 3\nopen_for = \"4s\"\nmax_open_for = \"20s\"\nclose_after = 1\n\n\
         [validation]\nmax_age = \"5s\"\nfrozen_after = \"4s\"\n",
    );
    for kind in ExchangeKind::VARIANTS
        .iter()
        .copied()
        .filter(|k| *k != ExchangeKind::Generic)
    {
        text.push_str(&format!(
            "\n[[exchanges]]\nname = \"{k}\"\nkind = \"{k}\"\nbase_url = \"{base}/{k}\"\n\
             rate_limit = {{ capacity = 50, refill_per_sec = 20 }}\n\
             [[exchanges.endpoints]]\nname = \"time\"\nkind = \"time\"\ninterval = \"5s\"\n\
             [[exchanges.endpoints]]\nname = \"ticker\"\nkind = \"ticker\"\n\
             [[exchanges.endpoints]]\nname = \"book\"\nkind = \"book\"\n",
            k = kind.as_str()
        ));
    }
    config::parse("(demo)", &text)
}
