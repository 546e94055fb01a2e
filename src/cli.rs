//! The command line's shape: every command, option and argument with its
//! help line (clap derive). `src/main.rs` runs them; tests walk
//! [`Cli::command`](clap::CommandFactory::command) to check that nothing
//! is left without a help line.

use crate::model::{EndpointKind, ExchangeKind};
use clap::{Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;
use strum::VariantArray;

/// Where `exwatch sim` listens unless `--listen` says otherwise, and what
/// `exwatch demo --print-config` points at unless `--sim` says otherwise.
pub const SIM_DEFAULT_LISTEN: &str = "127.0.0.1:9900";

/// `exwatch`: the whole command line.
#[derive(Debug, Parser)]
#[command(
    name = "exwatch",
    version,
    about = "Watches cryptocurrency exchange APIs for on-call engineers"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Cmd,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Simulated exchanges with a fault cycle, and the monitor watching them.
    Demo {
        /// Status lines instead of the dashboard.
        #[arg(long)]
        headless: bool,
        /// JSON lines (with --headless).
        #[arg(long, requires = "headless")]
        json: bool,
        /// A fault scenario instead of the built-in cycle.
        #[arg(long, value_name = "FILE")]
        scenario: Option<PathBuf>,
        /// Journal file (replaced at start); default: demo-journal.jsonl beside the logs.
        #[arg(long, value_name = "FILE")]
        journal: Option<PathBuf>,
        /// Print a config that watches an `exwatch sim` (at --sim) and exit,
        /// for trying `run` and `check` offline.
        #[arg(long, conflicts_with_all = ["headless", "json", "scenario", "journal"])]
        print_config: bool,
        /// The simulator the printed config points at (with --print-config).
        #[arg(long, value_name = "ADDR", default_value = SIM_DEFAULT_LISTEN, requires = "print_config")]
        sim: SocketAddr,
    },
    /// Monitor the exchanges in the config.
    Run {
        /// Config file; default: $EXWATCH_CONFIG, else $XDG_CONFIG_HOME/exwatch/config.toml.
        #[arg(short, long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// Status lines instead of the dashboard.
        #[arg(long)]
        headless: bool,
        /// JSON lines (with --headless).
        #[arg(long, requires = "headless")]
        json: bool,
    },
    /// Walk through a journal in the dashboard (REPLAY, the recorded instance
    /// and the recorded time in the header).
    Replay {
        /// The journal file (its rotated files are played first).
        journal: PathBuf,
        /// Recorded time per real time (0.1 .. 1000).
        #[arg(long, default_value_t = 1.0, value_parser = replay_speed)]
        speed: f64,
        /// Status lines on the recorded clock instead of the dashboard.
        #[arg(long)]
        headless: bool,
        /// JSON lines (with --headless).
        #[arg(long, requires = "headless")]
        json: bool,
        /// Config for the key bindings and the headless interval (the
        /// instance name is the recorded one).
        #[arg(short, long, value_name = "FILE")]
        config: Option<PathBuf>,
    },
    /// Incident timeline from a journal, for a postmortem.
    Report {
        /// The journal file (its rotated files are read too).
        journal: PathBuf,
        /// Start: RFC 3339, unix ms, or a duration before now (`2h`).
        #[arg(long, value_name = "TIME")]
        since: Option<String>,
        /// End: same spellings as --since.
        #[arg(long, value_name = "TIME")]
        until: Option<String>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = ReportFormat::Text)]
        format: ReportFormat,
    },
    /// Probe every configured endpoint once; exit 1 if any is unhealthy.
    Check {
        /// Config file; default: $EXWATCH_CONFIG, else $XDG_CONFIG_HOME/exwatch/config.toml.
        #[arg(short, long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// JSON instead of the table: every row with its outcome and normalized payload.
        #[arg(long)]
        json: bool,
    },
    /// The simulated exchange on its own.
    Sim {
        /// Address to listen on.
        #[arg(long, value_name = "ADDR", default_value = SIM_DEFAULT_LISTEN)]
        listen: SocketAddr,
        /// Fault scenario (TOML); `default` for the built-in cycle; none for a healthy exchange.
        #[arg(long, value_name = "FILE|default")]
        scenario: Option<String>,
    },
    /// Benchmarks of the hot paths, printing JSON.
    Bench {
        #[command(subcommand)]
        what: BenchCmd,
    },
    /// Config tools.
    Config {
        #[command(subcommand)]
        what: ConfigCmd,
    },
}

/// `exwatch report --format`.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum ReportFormat {
    /// Plain text, for a terminal or a ticket.
    Text,
    /// Markdown tables, for a postmortem document.
    Markdown,
    /// The whole report as JSON.
    Json,
}

/// `exwatch bench ...`.
#[derive(Debug, Subcommand)]
pub enum BenchCmd {
    /// The probe path (limiter, breaker, HTTP, parse, classify, record) as fast as it goes.
    Pipeline {
        /// Target URL; default: a built-in simulator's endpoint of --exchange and --endpoint.
        #[arg(long, value_name = "URL")]
        target: Option<String>,
        /// Exchange kind whose answers the target gives (its adapter parses them).
        #[arg(long, value_name = "KIND", default_value = "binance", value_parser = bench_exchange)]
        exchange: ExchangeKind,
        /// Endpoint kind the target is: time, ticker or book.
        #[arg(long, value_name = "KIND", default_value = "book", value_parser = endpoint_kind)]
        endpoint: EndpointKind,
        /// Seconds to run.
        #[arg(long, default_value_t = 10)]
        duration: u64,
        /// Request loops running at once.
        #[arg(long, default_value_t = 64)]
        concurrency: usize,
    },
    /// Checks per second and latency of the Redis limiter (one Lua round trip per check).
    Limiter {
        /// Redis URL, e.g. redis://127.0.0.1:6379/
        #[arg(long)]
        redis: String,
        /// Check loops running at once.
        #[arg(long, default_value_t = 1)]
        concurrency: usize,
        /// Seconds to run.
        #[arg(long, default_value_t = 5)]
        duration: u64,
    },
    /// The labelled fault scenario through the real pipeline, plus a fault-free
    /// control stretch: recall, precision, time to detect, false alerts per hour.
    Detect {
        /// Poll interval of every endpoint, in milliseconds.
        #[arg(long, default_value_t = 250)]
        poll_ms: u64,
        /// Seconds of fault-free control stretch.
        #[arg(long, default_value_t = 120)]
        control: u64,
    },
    /// Book messages parsed, applied and integrity-checked per second on one
    /// core, per exchange shape, from a local WebSocket server on 127.0.0.1.
    Stream {
        /// Exchange shape to measure, or `all`.
        #[arg(long, value_name = "KIND|all", default_value = "all", value_parser = stream_exchanges)]
        exchange: StreamExchanges,
        /// Book updates per run (after the snapshot).
        #[arg(long, value_name = "N", default_value_t = 200_000)]
        messages: usize,
        /// Most seconds one run may take (a run stopped early counts what it processed).
        #[arg(long, value_name = "S", default_value_t = 30)]
        seconds: u64,
        /// Runs per shape; the figures are the median run's.
        #[arg(long, default_value_t = 5)]
        runs: usize,
    },
}

/// `--exchange` of `bench stream`: the shapes to measure.
#[derive(Debug, Clone)]
pub struct StreamExchanges(pub Vec<ExchangeKind>);

/// `--exchange` of `bench stream`: a built-in kind or `all`.
fn stream_exchanges(s: &str) -> Result<StreamExchanges, String> {
    if s == "all" {
        let all = ExchangeKind::VARIANTS.iter().copied();
        return Ok(StreamExchanges(
            all.filter(|k| *k != ExchangeKind::Generic).collect(),
        ));
    }
    bench_exchange(s).map(|k| StreamExchanges(vec![k]))
}

/// `exwatch config ...`.
#[derive(Debug, Subcommand)]
pub enum ConfigCmd {
    /// Validate a config and explain every error with its line.
    Check {
        /// The config file to validate.
        file: PathBuf,
    },
}

/// An error and its causes on one line, `outer: cause: root cause`, each
/// said once: a cause whose text a layer above already carries (an error
/// that prints its source in its own message, as `#[error("x: {0}")]` with
/// `#[from]` does) is not repeated. What `exwatch` prints for a failed command.
pub fn error_text(e: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in e.chain() {
        let said = cause.to_string();
        if text.contains(said.as_str()) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&said);
    }
    text
}

/// `--speed` of `replay`: a number from 0.1 to 1000.
fn replay_speed(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if (0.1..=1000.0).contains(&v) => Ok(v),
        _ => Err("must be a number from 0.1 to 1000 (recorded time per real time)".into()),
    }
}

/// `--exchange` of `bench pipeline`: a built-in kind (the generic kind
/// needs the JSON pointers of a config).
fn bench_exchange(s: &str) -> Result<ExchangeKind, String> {
    let builtin = || {
        ExchangeKind::VARIANTS
            .iter()
            .filter(|k| **k != ExchangeKind::Generic)
            .map(|k| k.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    match s.parse::<ExchangeKind>() {
        Ok(ExchangeKind::Generic) => Err(format!(
            "the generic kind needs the JSON pointers of a config; use one of {}",
            builtin()
        )),
        Ok(k) => Ok(k),
        Err(_) => Err(format!("not an exchange kind; use one of {}", builtin())),
    }
}

/// `--endpoint` of `bench pipeline`: `time`, `ticker` or `book`.
fn endpoint_kind(s: &str) -> Result<EndpointKind, String> {
    let all = [EndpointKind::Time, EndpointKind::Ticker, EndpointKind::Book];
    all.into_iter().find(|k| k.as_str() == s).ok_or_else(|| {
        let names: Vec<&str> = all.iter().map(|k| k.as_str()).collect();
        format!("not an endpoint kind; use one of {}", names.join(", "))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An error that prints its source in its own message (the shape of
    /// `#[error("terminal: {0}")] Terminal(#[from] io::Error)`).
    #[derive(Debug, thiserror::Error)]
    #[error("terminal: {0}")]
    struct Wrapping(#[from] std::io::Error);

    #[test]
    fn a_cause_already_in_the_message_is_said_once() {
        let io = std::io::Error::other("no journal here");
        let e = anyhow::Error::from(Wrapping(io)).context("replay");
        assert_eq!(error_text(&e), "replay: terminal: no journal here");
        assert_eq!(
            format!("{e:#}"),
            "replay: terminal: no journal here: no journal here"
        );
        let plain = anyhow::anyhow!("cannot bind").context("starting the simulator");
        assert_eq!(error_text(&plain), "starting the simulator: cannot bind");
    }

    #[test]
    fn every_argument_has_a_help_line() {
        use clap::CommandFactory;
        fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for a in cmd.get_arguments() {
                if a.get_help().is_none() && !matches!(a.get_id().as_str(), "help" | "version") {
                    missing.push(format!("{path} {}", a.get_id()));
                }
            }
            for sub in cmd.get_subcommands() {
                if sub.get_about().is_none() {
                    missing.push(format!("{path} {} (the command)", sub.get_name()));
                }
                walk(sub, &format!("{path} {}", sub.get_name()), missing);
            }
        }
        let mut missing = Vec::new();
        walk(&Cli::command(), "exwatch", &mut missing);
        assert!(missing.is_empty(), "no help line: {missing:?}");
        Cli::command().debug_assert();
    }
}
