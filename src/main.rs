//! The exwatch command line: one function per command.

use anyhow::Context;
use clap::Parser;
use exwatch::cli::{BenchCmd, Cli, Cmd, ConfigCmd, ReportFormat};
use exwatch::config::{self, Config, LoadError};
use exwatch::sim::scenario::Scenario;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

// The probe path allocates per response (JSON tree, level texts); mimalloc
// keeps that cheap on the hot path (measured with `exwatch bench pipeline`).
#[cfg(not(feature = "heap-stats"))]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

// With `--features heap-stats`, `cap` counts the bytes live on the heap for
// `exwatch_heap_allocated_bytes` (no limit is set), so a soak tells a leak
// from allocator retention; it costs 10-15% of `exwatch bench stream`.
#[cfg(feature = "heap-stats")]
#[global_allocator]
static GLOBAL: cap::Cap<mimalloc::MiMalloc> = cap::Cap::new(mimalloc::MiMalloc, usize::MAX);

/// Exit codes (documented in the README).
mod exit {
    pub const OK: u8 = 0;
    pub const UNHEALTHY: u8 = 1;
    pub const CONFIG: u8 = 2;
    pub const RUNTIME: u8 = 3;
    /// stdout's reader went away (`| head -1`): 128 + SIGPIPE, as a
    /// program killed by the signal would end, without its text.
    pub const PIPE_CLOSED: u8 = 141;
}

/// stdout's reader closed the pipe: the command ends quietly with
/// [`exit::PIPE_CLOSED`]. SIGPIPE itself stays ignored (Rust's default), so
/// a closed socket of the monitor is an error its owner handles, never the
/// end of the process.
#[derive(Debug)]
struct StdoutClosed;

impl std::fmt::Display for StdoutClosed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("stdout closed")
    }
}

impl std::error::Error for StdoutClosed {}

/// Write to stdout and flush; a closed pipe becomes [`StdoutClosed`]
/// instead of `println!`'s panic.
fn emit(args: std::fmt::Arguments) -> anyhow::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_fmt(args).and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Err(StdoutClosed.into()),
        r => Ok(r?),
    }
}

/// `print!` through [`emit`]; evaluates to `anyhow::Result<()>`.
macro_rules! out {
    ($($arg:tt)*) => { emit(format_args!($($arg)*)) };
}

/// `println!` through [`emit`]; evaluates to `anyhow::Result<()>`.
macro_rules! outln {
    ($($arg:tt)*) => { emit(format_args!("{}\n", format_args!($($arg)*))) };
}

fn main() -> ExitCode {
    #[cfg(feature = "heap-stats")]
    exwatch::metrics::set_heap_probe(|| GLOBAL.allocated());
    let cli = Cli::parse();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("exwatch: cannot start the async runtime: {e}");
            return ExitCode::from(exit::RUNTIME);
        }
    };
    let code = rt.block_on(async {
        match cli.command {
            Cmd::Demo {
                print_config: true,
                sim,
                ..
            } => demo_print_config(sim),
            Cmd::Demo {
                headless,
                json,
                scenario,
                journal,
                ..
            } => demo(headless, json, scenario, journal).await,
            Cmd::Run {
                config,
                headless,
                json,
            } => run(config, headless, json).await,
            Cmd::Check { config, json } => check(config, json).await,
            Cmd::Replay {
                journal,
                speed,
                headless,
                json,
                config,
            } => replay(journal, speed, headless, json, config).await,
            Cmd::Report {
                journal,
                since,
                until,
                format,
            } => report(journal, since, until, format),
            Cmd::Sim { listen, scenario } => sim(listen, scenario).await,
            Cmd::Bench { what } => match what {
                BenchCmd::Pipeline {
                    target,
                    exchange,
                    endpoint,
                    duration,
                    concurrency,
                } => {
                    let kind = exwatch::bench::pipeline::TargetKind { exchange, endpoint };
                    bench_pipeline(target, kind, duration, concurrency).await
                }
                BenchCmd::Limiter {
                    redis,
                    concurrency,
                    duration,
                } => {
                    let figures = exwatch::bench::limiter::bench_limiter(
                        &redis,
                        concurrency,
                        Duration::from_secs(duration),
                    )
                    .await;
                    print_figures(&figures)
                }
                BenchCmd::Stream {
                    exchange,
                    messages,
                    seconds,
                    runs,
                } => {
                    let opts = exwatch::bench::stream::StreamBenchOptions {
                        exchanges: exchange.0,
                        messages,
                        seconds: Duration::from_secs(seconds),
                        runs,
                    };
                    let figures = tokio::task::spawn_blocking(move || {
                        exwatch::bench::stream::bench_stream(&opts)
                    })
                    .await?;
                    print_figures(&figures)
                }
                BenchCmd::Detect { poll_ms, control } => {
                    let figures = exwatch::bench::detect::bench_detect(
                        Duration::from_millis(poll_ms),
                        Duration::from_secs(control),
                    )
                    .await?;
                    print_figures(&figures)
                }
            },
            Cmd::Config { what } => match what {
                ConfigCmd::Check { file } => config_check(file),
            },
        }
    });
    // Hung requests must not keep the process alive after the answer is printed.
    rt.shutdown_timeout(Duration::from_millis(200));
    match code {
        Ok(c) => ExitCode::from(c),
        Err(e) if e.downcast_ref::<StdoutClosed>().is_some() => ExitCode::from(exit::PIPE_CLOSED),
        Err(e) => {
            eprintln!("exwatch: {}", exwatch::cli::error_text(&e));
            ExitCode::from(exit::RUNTIME)
        }
    }
}

/// Load the config or explain why not; `Err(code)` is the exit code to use.
fn load_config(path: Option<PathBuf>) -> Result<Config, u8> {
    let loaded = config::locate(path.as_deref()).and_then(|p| config::load(&p));
    match loaded {
        Ok(c) => Ok(c),
        Err(LoadError::Invalid(errs)) => {
            eprintln!("{errs}");
            eprintln!("exwatch: {} error(s) in the config", errs.0.len());
            Err(exit::CONFIG)
        }
        Err(e) => {
            eprintln!("exwatch: {e}");
            Err(exit::CONFIG)
        }
    }
}

fn config_check(file: PathBuf) -> anyhow::Result<u8> {
    match load_config(Some(file.clone())) {
        Ok(cfg) => {
            let listing =
                exwatch::check::listing::config_listing(&file.display().to_string(), &cfg);
            out!("{listing}")?;
            Ok(exit::OK)
        }
        Err(code) => Ok(code),
    }
}

async fn replay(
    journal: PathBuf,
    speed: f64,
    headless: bool,
    json: bool,
    config: Option<PathBuf>,
) -> anyhow::Result<u8> {
    // A config is optional here: without one, the defaults (nothing is polled anyway).
    let cfg: Config = match config {
        Some(p) => match load_config(Some(p)) {
            Ok(c) => c,
            Err(code) => return Ok(code),
        },
        None => toml::from_str("").context("default config")?,
    };
    let entries = match read_journal(&journal) {
        Ok(entries) => entries,
        Err(code) => return Ok(code),
    };
    // The instance that recorded it; a journal from before names were
    // recorded goes by its file name.
    let instance = exwatch::journal::recorded_instance(&entries)
        .map(str::to_string)
        .unwrap_or_else(|| {
            journal.file_name().map_or_else(
                || journal.display().to_string(),
                |n| n.to_string_lossy().into_owned(),
            )
        });
    let span = match (entries.first(), entries.last()) {
        (Some(a), Some(b)) => format!(
            "{} .. {}",
            exwatch::report::fmt_ms(a.ts_ms),
            exwatch::report::fmt_ms(b.ts_ms)
        ),
        _ => "no entries".into(),
    };
    let replay = exwatch::replay::Replay::new(entries);
    if !headless {
        if let Err(code) = need_terminal() {
            return Ok(code);
        }
        let _log = exwatch::logging::init(&cfg.log).context("opening the log directory")?;
        let monitor = exwatch::monitor::Monitor::from_replay(replay, speed);
        let shown = exwatch::ui::run(
            &feed(&monitor),
            &cfg.keys,
            &instance,
            exwatch::ui::Mode::Replay,
        )
        .await;
        monitor.stop().await;
        shown?;
        return Ok(exit::OK);
    }
    eprintln!(
        "exwatch: replay of {} recorded by instance {instance:?}, {span}; times and ages are the recorded ones",
        journal.display()
    );
    let stop_replay = tokio_util::sync::CancellationToken::new();
    let handle = exwatch::replay::spawn(replay, speed, stop_replay.clone());
    let mut status = handle.status.clone();
    let mut tick = tokio::time::interval(cfg.headless.interval);
    tick.tick().await;
    let stop = shutdown_signal();
    tokio::pin!(stop);
    loop {
        let done = tokio::select! {
            _ = &mut stop => true,
            _ = tick.tick() => false,
            r = status.wait_for(|s| s.done) => { let _ = r; true }
        };
        let snap = handle.snapshots.borrow().clone();
        // The recorded clock: the time of the last entry played.
        let Some(now_ms) = status.borrow().recorded_ms else {
            if done {
                break;
            }
            continue;
        };
        let mut out = std::io::stdout().lock();
        let line = exwatch::headless::Line {
            instance: &instance,
            now_ms,
            json,
        };
        if exwatch::headless::write_status_at(&mut out, &snap, line).is_err() || done {
            break;
        }
    }
    stop_replay.cancel();
    Ok(exit::OK)
}

/// Every entry of a journal and its rotated files, for `replay` and
/// `report`; what was skipped is said on stderr. `Err(code)`: missing,
/// empty or not a journal, said on stderr (a bad input, as a config is).
fn read_journal(journal: &std::path::Path) -> Result<Vec<exwatch::journal::Entry>, u8> {
    let read = exwatch::journal::read_all(journal).map_err(|e| {
        eprintln!("exwatch: {e}");
        exit::CONFIG
    })?;
    let mut bad_lines = read.bad_lines;
    for (file, bytes) in &read.torn {
        eprintln!(
            "exwatch: the last line of {} was cut short ({bytes} bytes; its writer was killed mid-write): skipped",
            file.display()
        );
        bad_lines -= 1;
    }
    if bad_lines > 0 {
        eprintln!("exwatch: {bad_lines} unreadable journal line(s) skipped");
    }
    Ok(read.entries)
}

fn report(
    journal: PathBuf,
    since: Option<String>,
    until: Option<String>,
    format: ReportFormat,
) -> anyhow::Result<u8> {
    let now = exwatch::clock::wall_ms();
    let parse = |v: Option<String>| v.map(|s| exwatch::report::parse_time(&s, now)).transpose();
    let window = match (parse(since), parse(until)) {
        (Ok(since_ms), Ok(until_ms)) => exwatch::report::Window { since_ms, until_ms },
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("exwatch: {e}");
            return Ok(exit::CONFIG);
        }
    };
    let report = match read_journal(&journal) {
        Ok(entries) => exwatch::report::build(entries, window),
        Err(code) => return Ok(code),
    };
    match format {
        ReportFormat::Text => out!("{}", exwatch::report::render_text(&report))?,
        ReportFormat::Markdown => out!("{}", exwatch::report::render_markdown(&report))?,
        ReportFormat::Json => outln!("{}", serde_json::to_string_pretty(&report)?)?,
    }
    Ok(exit::OK)
}

async fn check(config: Option<PathBuf>, json: bool) -> anyhow::Result<u8> {
    let cfg = match load_config(config) {
        Ok(c) => c,
        Err(code) => return Ok(code),
    };
    let client = exwatch::http::client(&cfg.http).context("building the HTTP client")?;
    let report = exwatch::check::run(&cfg, &client).await;
    if json {
        outln!("{}", serde_json::to_string_pretty(&report)?)?;
    } else {
        // Cut long causes to the screen only: a file or a pipe gets them whole.
        use std::io::IsTerminal;
        let cut = std::io::stdout().is_terminal().then_some(CHECK_CAUSE_WIDTH);
        out!("{}", exwatch::check::render_table(&report, cut))?;
        if !report.streams.is_empty() {
            out!("\n{}", exwatch::check::streams::render(&report.streams))?;
        }
    }
    Ok(if report.healthy {
        exit::OK
    } else {
        exit::UNHEALTHY
    })
}

/// Characters of an error's cause in `check`'s table on a terminal.
const CHECK_CAUSE_WIDTH: usize = 70;

async fn run(config: Option<PathBuf>, headless: bool, json: bool) -> anyhow::Result<u8> {
    let cfg = match load_config(config) {
        Ok(c) => c,
        Err(code) => return Ok(code),
    };
    if !headless {
        if let Err(code) = need_terminal() {
            return Ok(code);
        }
        return monitor_dashboard(&cfg).await;
    }
    monitor_headless(&cfg, json).await
}

/// The dashboard needs a terminal: said before anything starts (no
/// simulator, poller or journal for a screen that cannot be shown).
fn need_terminal() -> Result<(), u8> {
    use std::io::IsTerminal;
    if std::io::stdin().is_terminal() && std::io::stdout().is_terminal() {
        return Ok(());
    }
    eprintln!("exwatch: {}", exwatch::ui::UiError::NotATerminal);
    Err(exit::RUNTIME)
}

async fn monitor_dashboard(cfg: &Config) -> anyhow::Result<u8> {
    // Logs go to the file before the UI takes the terminal.
    let _log = exwatch::logging::init(&cfg.log).context("opening the log directory")?;
    let monitor = match start_monitor(cfg).await? {
        Ok(m) => m,
        Err(code) => return Ok(code),
    };
    let mut feed = feed(&monitor);
    feed.sinks = Some(cfg.alerts.sinks.iter().map(|s| s.name.clone()).collect());
    let shown = exwatch::ui::run(
        &feed,
        &cfg.keys,
        &cfg.instance.name,
        exwatch::ui::Mode::Live,
    )
    .await;
    monitor.stop().await;
    shown?;
    Ok(exit::OK)
}

/// Start the monitor; a journal path that names something else than a
/// journal is refused with [`exit::CONFIG`] (said on stderr, before the
/// dashboard takes the terminal).
async fn start_monitor(cfg: &Config) -> anyhow::Result<Result<exwatch::monitor::Monitor, u8>> {
    match exwatch::monitor::Monitor::start(cfg, 0).await {
        Ok(m) => Ok(Ok(m)),
        Err(e @ exwatch::monitor::MonitorError::NotAJournal(_)) => {
            eprintln!("exwatch: {e}");
            Ok(Err(exit::CONFIG))
        }
        Err(e) => Err(e.into()),
    }
}

/// The dashboard's side of a monitor.
fn feed(m: &exwatch::monitor::Monitor) -> exwatch::ui::Feed {
    exwatch::ui::Feed {
        snapshots: m.snapshots.clone(),
        commands: m.commands.clone(),
        replay_controls: m.replay_controls.clone(),
        replay_status: m.replay_status.clone(),
        sinks: None,
    }
}

async fn monitor_headless(cfg: &Config, json: bool) -> anyhow::Result<u8> {
    let _log = exwatch::logging::init(&cfg.log).context("opening the log directory")?;
    let monitor = match start_monitor(cfg).await? {
        Ok(m) => m,
        Err(code) => return Ok(code),
    };
    let mut tick = tokio::time::interval(cfg.headless.interval);
    tick.tick().await;
    let snapshots = monitor.snapshots.clone();
    let stop = shutdown_signal();
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = &mut stop => break,
            _ = tick.tick() => {
                let snap = snapshots.borrow().clone();
                let mut out = std::io::stdout().lock();
                let line = exwatch::headless::Line {
                    instance: &cfg.instance.name,
                    now_ms: exwatch::clock::now_ms(),
                    json,
                };
                if exwatch::headless::write_status_at(&mut out, &snap, line).is_err() {
                    // stdout closed (e.g. piped into `head`): stop quietly.
                    break;
                }
            }
        }
    }
    monitor.stop().await;
    Ok(exit::OK)
}

async fn demo(
    headless: bool,
    json: bool,
    scenario: Option<PathBuf>,
    journal: Option<PathBuf>,
) -> anyhow::Result<u8> {
    if !headless && let Err(code) = need_terminal() {
        return Ok(code);
    }
    let scenario = match scenario.as_deref().map(Scenario::load) {
        Some(Ok(s)) => s,
        Some(Err(e)) => {
            eprintln!("exwatch: {e}");
            return Ok(exit::CONFIG);
        }
        None => Scenario::default_cycle(),
    };
    let journal = journal.unwrap_or_else(exwatch::demo::default_journal);
    // A demo run starts with a clean record (its simulator is new, so are
    // its alerts), but never by deleting a file that is not a journal.
    for f in exwatch::journal::files(&journal) {
        match exwatch::journal::for_each_entry(&f, |_| {}).map(|s| s.not_a_journal()) {
            Ok(None) => {}
            Ok(Some(detail)) => {
                eprintln!(
                    "exwatch: {} is not an exwatch journal: {detail}; the demo replaces only journals",
                    f.display()
                );
                return Ok(exit::CONFIG);
            }
            Err(e) => {
                eprintln!("exwatch: {e}");
                return Ok(exit::CONFIG);
            }
        }
    }
    for f in exwatch::journal::files(&journal) {
        let _ = std::fs::remove_file(f);
    }
    let sim = exwatch::sim::spawn(SocketAddr::from(([127, 0, 0, 1], 0)), scenario)
        .await
        .context("starting the simulator")?;
    let cfg = exwatch::demo::config_for(
        &format!("http://{}", sim.addr),
        &format!("ws://{}", sim.ws_addr),
        &journal,
    )
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    // Said before the dashboard takes the screen, so it is there after it.
    eprintln!(
        "exwatch demo: journal at {} (replaced each run; `exwatch replay {}` or `exwatch report {}` afterwards)",
        journal.display(),
        journal.display(),
        journal.display()
    );
    let code = if headless {
        monitor_headless(&cfg, json).await
    } else {
        monitor_dashboard(&cfg).await
    };
    sim.stop().await;
    code
}

/// `demo --print-config`: a config watching an `exwatch sim` at `sim`.
fn demo_print_config(sim: SocketAddr) -> anyhow::Result<u8> {
    out!(
        "{}",
        exwatch::demo::offline_config_text(&format!("http://{sim}"))
    )?;
    Ok(exit::OK)
}

async fn sim(listen: SocketAddr, scenario: Option<String>) -> anyhow::Result<u8> {
    let scenario = match scenario.as_deref() {
        None => Scenario::quiet(),
        Some("default") => Scenario::default_cycle(),
        Some(p) => match Scenario::load(std::path::Path::new(p)) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("exwatch: {e}");
                return Ok(exit::CONFIG);
            }
        },
    };
    let handle = exwatch::sim::spawn(listen, scenario)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    eprintln!(
        "simulator listening on http://{} (stats: /_sim/stats); streams on ws://{}/<exchange>/ws",
        handle.addr, handle.ws_addr
    );
    shutdown_signal().await;
    handle.stop().await;
    Ok(exit::OK)
}

/// The figures as JSON; a bench that could not run (`error` in them) says
/// so on stderr too and exits [`exit::RUNTIME`].
fn print_figures(figures: &serde_json::Value) -> anyhow::Result<u8> {
    outln!("{}", serde_json::to_string_pretty(figures)?)?;
    match figures.get("error") {
        Some(e) => {
            eprintln!("exwatch: {}", e.as_str().unwrap_or("the benchmark failed"));
            Ok(exit::RUNTIME)
        }
        None => Ok(exit::OK),
    }
}

/// Prints the figures; a target whose answers were mostly rejected is said
/// on stderr too, and exits [`exit::UNHEALTHY`].
async fn bench_pipeline(
    target: Option<String>,
    kind: exwatch::bench::pipeline::TargetKind,
    duration: u64,
    concurrency: usize,
) -> anyhow::Result<u8> {
    let figures =
        exwatch::bench::pipeline(target, kind, Duration::from_secs(duration), concurrency).await?;
    outln!("{}", serde_json::to_string_pretty(&figures)?)?;
    match figures.get("warning").and_then(|w| w.as_str()) {
        Some(w) => {
            eprintln!("exwatch: {w}");
            Ok(exit::UNHEALTHY)
        }
        None => Ok(exit::OK),
    }
}

/// Resolves on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
