//! `exwatch demo`: the simulator with its fault cycle, and a config watching it.

use crate::config::{self, Config};
use crate::model::ExchangeKind;
use strum::VariantArray;

/// Where the demo journals unless told otherwise: beside the logs, new each run.
pub fn default_journal() -> std::path::PathBuf {
    crate::logging::default_dir().join("demo-journal.jsonl")
}

/// A config that watches every kind on a simulator at `base` (e.g.
/// `http://127.0.0.1:9000`), journaling to `journal`. Errors: none in
/// practice (the text is built here); the parse errors if it were wrong.
///
/// `ws` is the simulator's stream server (`ws://127.0.0.1:9001`): every
/// kind's ticker and book are streamed from it too.
pub fn config_for(
    base: &str,
    ws: &str,
    journal: &std::path::Path,
) -> Result<Config, config::ConfigErrors> {
    let journal = toml::Value::String(journal.display().to_string());
    let mut text = format!("[journal]\npath = {journal}\n\n[instance]\nname = \"demo\"\n\n");
    text.push_str(&watching(base, ws));
    config::parse("(demo)", &text)
}

/// `exwatch demo --print-config`: a commented config (TOML text) that
/// watches every kind on an `exwatch sim` at `base` (e.g.
/// `http://127.0.0.1:9900`), the demo's settings, instance `offline`,
/// journaling to `offline-journal.jsonl` in the directory `run` starts in.
/// `examples/offline.toml` is this text for the simulator's default address.
pub fn offline_config_text(base: &str) -> String {
    let mut text = format!(
        "# exwatch: every exchange kind on a local simulator, for trying `run` and `check` offline.\n\
         # Start the simulator first (healthy; add `--scenario default` for the demo's fault cycle):\n\
         #   exwatch sim --listen {addr} &\n\
         #   exwatch check -c offline.toml\n\
         #   exwatch run -c offline.toml\n\
         # Written by `exwatch demo --print-config --sim {addr}`.\n\n\
         [instance]\nname = \"offline\"\n\n\
         [journal]\n# Relative: in the directory `exwatch run` starts in.\npath = \"offline-journal.jsonl\"\n\n",
        addr = base.trim_start_matches("http://"),
    );
    text.push_str(&watching(base, &next_port_ws(base)));
    text
}

/// The simulator's stream server for a REST address it was started on:
/// the next port (`http://127.0.0.1:9900` → `ws://127.0.0.1:9901`), see
/// `sim::spawn`.
fn next_port_ws(base: &str) -> String {
    let hostport = base.trim_start_matches("http://").trim_end_matches('/');
    match hostport.rsplit_once(':') {
        Some((host, port)) => match port.parse::<u16>() {
            Ok(p) => format!("ws://{host}:{}", p.saturating_add(1)),
            Err(_) => format!("ws://{hostport}"),
        },
        None => format!("ws://{hostport}"),
    }
}

/// The demo's settings and the five built-in kinds on a simulator at
/// `base`, their streams on `ws`.
fn watching(base: &str, ws: &str) -> String {
    let mut text = String::from(
        "[defaults]\ninterval = \"1s\"\ntimeout = \"2s\"\n\n\
         [breaker]\nconsecutive_failures = 3\nopen_for = \"4s\"\nmax_open_for = \"20s\"\nclose_after = 1\n\n\
         [validation]\nmax_age = \"5s\"\nfrozen_after = \"4s\"\n",
    );
    text.push_str(&sim_exchanges(
        base,
        SimBudget {
            capacity: 50,
            refill_per_sec: 20,
        },
        Some("5s"),
        Some(ws),
    ));
    text.push_str(
        "\n[alerts.detect.stream]\n# The demo's faults are short: page a stream down after 5 s.\ndown_after = \"5s\"\n",
    );
    text
}

/// An exchange's limiter budget in [`sim_exchanges`], in weight: a bucket
/// of `capacity` refilled at `refill_per_sec`.
#[derive(Debug, Clone, Copy)]
pub struct SimBudget {
    pub capacity: u32,
    pub refill_per_sec: u32,
}

/// The `[[exchanges]]` tables (TOML text) for the five built-in kinds on a
/// simulator at `base` (e.g. `http://127.0.0.1:9900`), each named after its
/// kind with a `time`, `ticker` and `book` endpoint; `time_every` (e.g.
/// `"5s"`) polls the time endpoint less often than the defaults. Shared by
/// the demo, `bench detect` and the tests that drive the simulator.
///
/// With `streams` (the simulator's stream server, `ws://127.0.0.1:9901`),
/// each also streams its ticker and book (default symbol, silent after 3 s).
pub fn sim_exchanges(
    base: &str,
    budget: SimBudget,
    time_every: Option<&str>,
    streams: Option<&str>,
) -> String {
    let time_interval = time_every
        .map(|d| format!("interval = \"{d}\"\n"))
        .unwrap_or_default();
    let mut text = String::new();
    for kind in ExchangeKind::VARIANTS
        .iter()
        .copied()
        .filter(|k| *k != ExchangeKind::Generic)
    {
        text.push_str(&format!(
            "\n[[exchanges]]\nname = \"{k}\"\nkind = \"{k}\"\nbase_url = \"{base}/{k}\"\n\
             rate_limit = {{ capacity = {cap}, refill_per_sec = {refill} }}\n\
             [[exchanges.endpoints]]\nname = \"time\"\nkind = \"time\"\n{time_interval}\
             [[exchanges.endpoints]]\nname = \"ticker\"\nkind = \"ticker\"\n\
             [[exchanges.endpoints]]\nname = \"book\"\nkind = \"book\"\n",
            k = kind.as_str(),
            cap = budget.capacity,
            refill = budget.refill_per_sec,
        ));
        if let Some(ws) = streams {
            text.push_str(&format!(
                "[[exchanges.streams]]\nurl = \"{ws}/{k}/ws\"\nfeeds = [\"ticker\", \"book\"]\nsilent_after = \"3s\"\n",
                k = kind.as_str(),
            ));
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_offline_config_parses_and_watches_the_simulator() {
        let text = offline_config_text("http://127.0.0.1:9911");
        let cfg = config::parse("(offline)", &text).expect("valid");
        assert_eq!(cfg.instance.name, "offline");
        let eps = cfg.endpoints();
        assert_eq!(eps.len(), 15);
        assert!(
            eps.iter()
                .all(|e| e.url.starts_with("http://127.0.0.1:9911/"))
        );
        assert!(
            text.contains("exwatch sim --listen 127.0.0.1:9911 &"),
            "{text}"
        );
    }

    /// `examples/offline.toml` is what `--print-config` prints for the
    /// simulator's default address, so the two never drift apart.
    #[test]
    fn the_shipped_example_is_the_printed_config() {
        let shipped = include_str!("../examples/offline.toml");
        let printed = offline_config_text(&format!("http://{}", crate::cli::SIM_DEFAULT_LISTEN));
        assert_eq!(
            shipped, printed,
            "regenerate: exwatch demo --print-config > examples/offline.toml"
        );
    }
}
