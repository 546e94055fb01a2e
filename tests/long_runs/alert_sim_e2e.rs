//! Alerting end to end: the real binary (`exwatch run --headless`) polls the
//! simulated exchange, and local receivers stand in for Slack, PagerDuty and
//! a webhook (127.0.0.1 only; their URLs reach the binary through the
//! environment variables its config names, as in production).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed unwrap is a failed test

use crate::alert_common::{Behaviour, Hit, Receiver};
use crate::common::sim::{count, fault, scenario, start};
use exwatch::model::{EndpointKind, ExchangeKind};
use exwatch::sim::SimHandle;
use exwatch::sim::scenario::FaultKind;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_exwatch");

/// A child `exwatch`, killed when dropped so a failing test leaves nothing behind.
struct Exwatch(Child);

impl Drop for Exwatch {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

struct Receivers {
    hook: Receiver,
    slack: Receiver,
    pd: Receiver,
}

impl Receivers {
    /// Slack and PagerDuty (202, as the real one) always answer; the webhook as told.
    async fn start(hook: Behaviour) -> Receivers {
        Receivers {
            hook: Receiver::start(hook).await,
            slack: Receiver::start(Behaviour::default()).await,
            pd: Receiver::start(Behaviour {
                ok_status: 202,
                ..Behaviour::default()
            })
            .await,
        }
    }
}

fn run(dir: &Path, config: &str, r: &Receivers) -> Exwatch {
    let path = dir.join("config.toml");
    std::fs::write(&path, config).expect("write config");
    let child = Command::new(BIN)
        .args(["run", "--headless", "-c"])
        .arg(&path)
        .env("EXW_E2E_HOOK", format!("{}/hook", r.hook.url))
        .env("EXW_E2E_SLACK", format!("{}/slack", r.slack.url))
        .env("EXW_E2E_PD", format!("{}/v2/enqueue", r.pd.url))
        .env("EXW_E2E_PD_KEY", "test-routing-key")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn exwatch");
    Exwatch(child)
}

/// Everything but the exchanges: sinks for the three receivers, fast grouping.
fn common_config(dir: &Path, group_wait: &str, group_interval: &str, retry_max: &str) -> String {
    format!(
        "[log]\ndir = \"{logs}\"\n[journal]\nenabled = false\n[headless]\ninterval = \"1s\"\n\
         [alerts.grouping]\ngroup_wait = \"{group_wait}\"\ngroup_interval = \"{group_interval}\"\nrepeat_interval = \"1h\"\n\
         [[alerts.sinks]]\nname = \"hook\"\nkind = \"webhook\"\nurl_env = \"EXW_E2E_HOOK\"\nmin_severity = \"info\"\n\
         retry_initial = \"500ms\"\nretry_max = \"{retry_max}\"\n\
         [[alerts.sinks]]\nname = \"slack\"\nkind = \"slack\"\nurl_env = \"EXW_E2E_SLACK\"\nmin_severity = \"info\"\n\
         [[alerts.sinks]]\nname = \"pd\"\nkind = \"pagerduty\"\nurl_env = \"EXW_E2E_PD\"\nrouting_key_env = \"EXW_E2E_PD_KEY\"\nmin_severity = \"info\"\n",
        logs = dir.join("logs").display(),
    )
}

fn exchange(sim: &SimHandle, kind: ExchangeKind, endpoints: &[&str], interval: &str) -> String {
    let mut s = format!(
        "[[exchanges]]\nname = \"{k}\"\nkind = \"{k}\"\nbase_url = \"{base}\"\n\
         rate_limit = {{ capacity = 100000, refill_per_sec = 100000 }}\n",
        k = kind.as_str(),
        base = sim.base_url(kind),
    );
    for ep in endpoints {
        s.push_str(&format!(
            "[[exchanges.endpoints]]\nname = \"{ep}\"\nkind = \"{ep}\"\ninterval = \"{interval}\"\ntimeout = \"1s\"\n"
        ));
    }
    s
}

/// (group, sequence number) of a webhook notification: ids are
/// `<exchange>/<severity>/<seq>@<ms>`.
fn group_and_seq(h: &Hit) -> (String, u64) {
    let id = h.body["notification_id"].as_str().expect("notification_id");
    let (group, rest) = id.rsplit_once('/').expect("id has a group");
    let seq = rest
        .split('@')
        .next()
        .and_then(|s| s.parse().ok())
        .expect("id has a sequence number");
    (group.to_string(), seq)
}

/// PagerDuty events by dedup_key, in arrival order.
fn pd_actions(pd: &Receiver) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for h in pd.delivered() {
        let key = h.body["dedup_key"].as_str().unwrap_or_default().to_string();
        let action = h.body["event_action"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        out.entry(key).or_default().push(action);
    }
    out
}

async fn wait_until(deadline: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + deadline;
    while !f() {
        if Instant::now() > end {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    true
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_storm_of_failures_pages_once_per_group_per_interval() {
    crate::setup();
    // Every Binance endpoint answers 503 from 1 s to 9 s.
    let sim = start(scenario(vec![fault(
        FaultKind::ServerError,
        ExchangeKind::Binance,
        None,
        Duration::from_secs(1),
        Duration::from_secs(8),
    )]))
    .await;
    let r = Receivers::start(Behaviour::default()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    // The breaker never trips, so every poll reaches the failing exchange.
    let config = format!(
        "{}[breaker]\nfailure_on = []\n{}",
        common_config(dir.path(), "1s", "4s", "1s"),
        exchange(
            &sim,
            ExchangeKind::Binance,
            &["time", "ticker", "book"],
            "20ms"
        ),
    );
    let started = Instant::now();
    let _exwatch = run(dir.path(), &config, &r);
    tokio::time::sleep(Duration::from_secs(9)).await;
    let mut polls = 0;
    for ep in ["time", "ticker", "book"] {
        polls += count(&sim, &format!("binance/{ep}")).await;
    }
    assert!(polls >= 1000, "a storm needs 1,000 failures: {polls} polls");
    // Wait until PagerDuty heard the incident end.
    let resolved = wait_until(Duration::from_secs(40), || {
        let pd = pd_actions(&r.pd);
        !pd.is_empty()
            && pd
                .values()
                .all(|a| a.last().map(String::as_str) == Some("resolve"))
    })
    .await;
    let elapsed = started.elapsed();
    assert!(
        resolved,
        "every PagerDuty incident resolved: {:?}",
        pd_actions(&r.pd)
    );

    // The webhook: at most one notification per group per interval.
    let hooks = r.hook.delivered();
    let mut by_group: BTreeMap<String, Vec<Instant>> = BTreeMap::new();
    for h in &hooks {
        by_group.entry(group_and_seq(h).0).or_default().push(h.at);
    }
    assert!(!by_group.is_empty(), "no webhook notification at all");
    let max_per_group = 1 + (elapsed.as_secs_f64() / 4.0).ceil() as usize;
    for (group, times) in &by_group {
        assert!(
            times.len() <= max_per_group,
            "{group}: {} notifications in {elapsed:?}",
            times.len()
        );
        for w in times.windows(2) {
            let gap = w[1].duration_since(w[0]);
            assert!(
                gap >= Duration::from_millis(3700),
                "{group}: two notifications {gap:?} apart, group_interval is 4 s"
            );
        }
    }
    assert!(
        hooks.len() < 20,
        "{} webhook notifications for {polls} failures",
        hooks.len()
    );
    // Slack gets the same grouped notifications.
    assert_eq!(r.slack.delivered().len(), hooks.len());
    // PagerDuty: one incident per alert, trigger first, resolve last, one dedup_key.
    for (key, actions) in pd_actions(&r.pd) {
        assert!(key.starts_with("binance/"), "{key}");
        assert_eq!(
            actions.first().map(String::as_str),
            Some("trigger"),
            "{key}: {actions:?}"
        );
        assert_eq!(
            actions.iter().filter(|a| *a == "trigger").count(),
            1,
            "{key} paged more than once: {actions:?}"
        );
    }
    sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sink_down_for_two_minutes_gets_every_notification_afterwards() {
    crate::setup();
    let outage = Duration::from_secs(120);
    let t0 = Instant::now();
    // Six incidents on two exchanges, all while the webhook is down.
    let mut faults = Vec::new();
    for (k, at) in [0u64, 20, 40, 60, 80, 100].into_iter().enumerate() {
        let ex = if k % 2 == 0 {
            ExchangeKind::Binance
        } else {
            ExchangeKind::Okx
        };
        faults.push(fault(
            FaultKind::ServerError,
            ex,
            Some(EndpointKind::Ticker),
            Duration::from_secs(at + 2),
            Duration::from_secs(8),
        ));
    }
    let sim = start(scenario(faults)).await;
    let r = Receivers::start(Behaviour {
        fail_until: Some(t0 + outage),
        ..Behaviour::default()
    })
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let config = format!(
        "{}{}{}",
        common_config(dir.path(), "1s", "5s", "10s"),
        exchange(&sim, ExchangeKind::Binance, &["ticker"], "200ms"),
        exchange(&sim, ExchangeKind::Okx, &["ticker"], "200ms"),
    );
    let _exwatch = run(dir.path(), &config, &r);

    // Past the outage, wait until the webhook has caught up with Slack
    // (which never failed) and the last incident's resolution is out.
    tokio::time::sleep(outage).await;
    let caught_up = wait_until(Duration::from_secs(60), || {
        let slack = r.slack.delivered().len();
        slack > 0 && r.hook.delivered().len() >= slack && {
            let pd = pd_actions(&r.pd);
            let triggers = pd.values().flatten().filter(|a| *a == "trigger").count();
            triggers >= 6
                && pd
                    .values()
                    .all(|a| a.last().map(String::as_str) == Some("resolve"))
                && pd
                    .values()
                    .all(|a| a.last().map(String::as_str) == Some("resolve"))
        }
    })
    .await;
    let hooks = r.hook.delivered();
    let slack = r.slack.delivered();
    assert!(
        caught_up,
        "webhook {} vs slack {} notifications; pd {:?}",
        hooks.len(),
        slack.len(),
        pd_actions(&r.pd)
    );
    let failed = r.hook.attempts().iter().filter(|h| h.status == 500).count();
    assert!(
        failed > 10,
        "the webhook was down for two minutes: {failed} failed attempts"
    );
    assert!(
        hooks.iter().all(|h| h.at >= t0 + outage),
        "delivered while the receiver was down?"
    );

    // Nothing lost, nothing twice: in the order they were made, each group's
    // sequence numbers run 1, 2, ... (a group starts again at 1 after all its
    // alerts resolved), with no gap and no repeat.
    let mut ordered = hooks.clone();
    ordered.sort_by_key(|h| h.body["sent_at_ms"].as_i64().unwrap_or_default());
    let mut seqs: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for h in &ordered {
        let (g, s) = group_and_seq(h);
        seqs.entry(g).or_default().push(s);
    }
    assert!(seqs.len() >= 2, "both exchanges notified: {seqs:?}");
    for (group, s) in &seqs {
        assert_eq!(s.first(), Some(&1), "{group}: {s:?}");
        for w in s.windows(2) {
            assert!(
                w[1] == w[0] + 1 || w[1] == 1,
                "{group}: a notification lost or sent twice: {s:?}"
            );
        }
    }
    // As many as Slack got, which never failed.
    let ids = |hits: &[Hit]| -> BTreeSet<String> {
        hits.iter()
            .map(|h| {
                h.body["notification_id"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string()
            })
            .collect()
    };
    assert_eq!(ids(&hooks).len(), hooks.len(), "ids are unique");
    assert_eq!(
        hooks.len(),
        slack.len(),
        "webhook and Slack got as many notifications"
    );
    // Every alert the webhook heard of ends resolved in what it received.
    let mut last_state: BTreeMap<String, String> = BTreeMap::new();
    for h in &ordered {
        for a in h.body["alerts"].as_array().into_iter().flatten() {
            last_state.insert(
                a["fingerprint"].as_str().unwrap_or_default().to_string(),
                a["state"].as_str().unwrap_or_default().to_string(),
            );
        }
    }
    assert!(last_state.len() >= 2, "{last_state:?}");
    for (fp, state) in &last_state {
        assert_eq!(state, "resolved", "{fp}");
    }
    sim.stop().await;
}

/// Every 6-character window of each secret: none may appear in any output.
fn leaks(text: &str, secrets: &[&str]) -> Vec<String> {
    let lower = text.to_lowercase();
    let mut out = Vec::new();
    for s in secrets {
        let c: Vec<char> = s.to_lowercase().chars().collect();
        for w in c.windows(6) {
            let f: String = w.iter().collect();
            if lower.contains(&f) {
                out.push(f);
            }
        }
    }
    out
}

/// The dashboard drawn from a replay of `journal`, the detail pane open on
/// each alert in turn: what an operator would see.
fn screens_of(journal: &Path) -> String {
    use exwatch::ui::{self, Key, Keymap, Mode, Theme, ViewState};
    let (entries, _) = exwatch::journal::read_file(journal).expect("read the journal");
    let mut replay = exwatch::replay::Replay::new(entries);
    replay.run_to_end();
    let snap = replay.snapshot();
    let now = snap.last_event_ms;
    let mut v = ViewState::new("e2e", Mode::Live, Keymap::default(), Theme::default());
    let press = |v: &mut ViewState, k: &str| {
        v.on_key(Key::parse(k).expect("key"), &snap, now);
    };
    press(&mut v, "tab");
    let mut all = String::new();
    for _ in 0..snap.alerts.len().max(1) {
        v.detail = true;
        let mut term =
            ratatui::Terminal::new(ratatui::backend::TestBackend::new(220, 70)).expect("backend");
        term.draw(|f| ui::render(f, &snap, &v, now)).expect("draw");
        all.push_str(&term.backend().to_string());
        press(&mut v, "j");
    }
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_echoed_by_sinks_and_the_model_reach_no_log_journal_screen_or_report() {
    crate::setup();
    const TOKEN: &str = "tok-7f3kq9zz81";
    const ROUTING_KEY: &str = "rk-4hd8sl2p0q";
    const LLM_KEY: &str = "sk-9xq2mw71zt5kP3";
    let secrets = [TOKEN, ROUTING_KEY, LLM_KEY];
    // Binance answers 503 from the start: error_rate alerts, critical, so
    // they are notified and auto-triaged.
    let sim = start(scenario(vec![fault(
        FaultKind::ServerError,
        ExchangeKind::Binance,
        None,
        Duration::ZERO,
        Duration::from_secs(600),
    )]))
    .await;
    let echoing = |status: u16| Behaviour {
        fail_first: usize::MAX,
        fail_status: status,
        echo: true,
        ..Behaviour::default()
    };
    // The webhook 404s quoting its path; PagerDuty 400s quoting the routing
    // key; the model 500s quoting the key's first ten characters.
    let hook = Receiver::start(echoing(404)).await;
    let pd = Receiver::start(echoing(400)).await;
    let llm = Receiver::start(echoing(500)).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let journal = dir.path().join("journal.jsonl");
    let config = format!(
        "[log]\ndir = \"{logs}\"\nlevel = \"debug\"\n[journal]\npath = \"{journal}\"\n[headless]\ninterval = \"300ms\"\n\
         [alerts.grouping]\ngroup_wait = \"200ms\"\ngroup_interval = \"1s\"\nrepeat_interval = \"1h\"\n\
         [[alerts.sinks]]\nname = \"hook\"\nkind = \"webhook\"\nurl_env = \"EXW_SEC_HOOK\"\nmin_severity = \"info\"\n\
         [[alerts.sinks]]\nname = \"pd\"\nkind = \"pagerduty\"\nurl_env = \"EXW_SEC_PD\"\nrouting_key_env = \"EXW_SEC_PD_KEY\"\nmin_severity = \"info\"\n\
         [triage]\nbase_url = \"{llm}/v1\"\nmodel = \"m\"\napi_key_env = \"EXW_SEC_LLM_KEY\"\ntimeout = \"1s\"\nbatch_window = \"0s\"\n{exchange}",
        logs = dir.path().join("logs").display(),
        journal = journal.display(),
        llm = llm.url,
        exchange = exchange(&sim, ExchangeKind::Binance, &["ticker", "book"], "50ms"),
    );
    let path = dir.path().join("config.toml");
    std::fs::write(&path, config).expect("write config");
    let stdout = dir.path().join("headless.jsonl");
    let child = Command::new(BIN)
        .args(["run", "--headless", "--json", "-c"])
        .arg(&path)
        .env("EXW_SEC_HOOK", format!("{}/hooks/{TOKEN}", hook.url))
        .env("EXW_SEC_PD", format!("{}/v2/enqueue", pd.url))
        .env("EXW_SEC_PD_KEY", ROUTING_KEY)
        .env("EXW_SEC_LLM_KEY", LLM_KEY)
        .stdout(std::fs::File::create(&stdout).expect("stdout file"))
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn exwatch");
    let mut exwatch = Exwatch(child);
    let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
    // Until each remote end was asked and its answer is in the journal.
    let seen = wait_until(Duration::from_secs(40), || {
        let j = read(&journal);
        !hook.attempts().is_empty()
            && !pd.attempts().is_empty()
            && !llm.attempts().is_empty()
            && j.contains("\"alert_triaged\"")
            // The model's answer, not the rules' shown while it is asked.
            && j.contains("model not used")
            && j.matches("\"delivery\":\"failed\"").count() >= 2
    })
    .await;
    assert!(seen, "journal:\n{}", read(&journal));
    // Stop it cleanly, so the log's writer flushes.
    let pid = exwatch.0.id().to_string();
    Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .expect("kill");
    let ended = wait_until(Duration::from_secs(10), || {
        exwatch.0.try_wait().ok().flatten().is_some()
    })
    .await;
    assert!(ended, "exwatch did not stop on SIGINT");

    // The remote ends did quote the secrets ...
    assert!(hook.attempts()[0].path.contains(TOKEN));
    // ... and every output keeps their words and drops the secrets.
    let mut logs = String::new();
    for f in std::fs::read_dir(dir.path().join("logs")).expect("log dir") {
        logs.push_str(&read(&f.expect("entry").path()));
    }
    let report = Command::new(BIN)
        .args(["report", "--format", "json"])
        .arg(&journal)
        .output()
        .expect("report");
    let outputs = [
        ("log", logs),
        ("journal", read(&journal)),
        ("headless JSON", read(&stdout)),
        (
            "report",
            String::from_utf8_lossy(&report.stdout).into_owned(),
        ),
        ("screen", screens_of(&journal)),
    ];
    for (what, text) in &outputs {
        assert!(!text.is_empty(), "{what} is empty");
        let found = leaks(text, &secrets);
        assert!(found.is_empty(), "{what} leaks {found:?}:\n{text}");
    }
    let journal_text = &outputs[1].1;
    for words in [
        "no route for POST [redacted]",
        "invalid routing key [redacted]",
        "Incorrect API key provided: [redacted]",
    ] {
        assert!(
            journal_text.contains(words),
            "the journal keeps the receiver's words, scrubbed: `{words}` missing:\n{journal_text}"
        );
    }
    assert!(
        outputs[0].1.contains("[redacted]"),
        "the log quotes the answers, scrubbed:\n{}",
        outputs[0].1
    );
    assert!(
        outputs[4].1.contains("[redacted]"),
        "the detail pane shows the scrubbed errors:\n{}",
        outputs[4].1
    );
    sim.stop().await;
}
