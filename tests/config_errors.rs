//! Config errors name the file, line, column and field, and say what is valid.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed unwrap is a failed test

use exwatch::config::{self, ConfigError};

const GOOD: &str = r#"
[[exchanges]]
name = "binance"
kind = "binance"
base_url = "http://127.0.0.1:9/binance"

[[exchanges.endpoints]]
name = "book"
kind = "book"
interval = "2s"
"#;

fn errors(text: &str) -> Vec<ConfigError> {
    match config::parse("cfg.toml", text) {
        Ok(_) => panic!("expected an error for:\n{text}"),
        Err(e) => e.0,
    }
}

/// (line, field) of each error, to compare a whole report at once.
fn lines_and_fields(errs: &[ConfigError]) -> Vec<(usize, &str)> {
    errs.iter().map(|e| (e.line, e.field.as_str())).collect()
}

#[test]
fn the_good_config_parses_and_resolves_presets() {
    let cfg = config::parse("cfg.toml", GOOD).expect("valid");
    let eps = cfg.endpoints();
    assert_eq!(eps.len(), 1);
    assert!(
        eps[0]
            .url
            .starts_with("http://127.0.0.1:9/binance/api/v3/depth?"),
        "{}",
        eps[0].url
    );
    assert!(eps[0].url.contains("symbol=BTCUSDT"));
    assert_eq!(eps[0].interval, std::time::Duration::from_secs(2));
}

/// The instrument an answer is checked against is the one the request
/// carries: a query override of the preset's symbol parameter wins.
#[test]
fn a_query_override_of_the_symbol_is_the_instrument_asked_for() {
    let cfg = config::parse(
        "cfg.toml",
        &format!("{GOOD}query = {{ symbol = \"ETHUSDT\" }}\n"),
    )
    .expect("valid");
    let eps = cfg.endpoints();
    assert!(eps[0].url.contains("symbol=ETHUSDT"), "{}", eps[0].url);
    assert_eq!(eps[0].symbol, "ETHUSDT");
    let plain = config::parse("cfg.toml", GOOD).expect("valid");
    assert_eq!(plain.endpoints()[0].symbol, "BTCUSDT");
}

#[test]
fn unknown_key_names_line_and_key() {
    let text = GOOD.replace("interval = \"2s\"", "interval = \"2s\"\nintervall = \"3s\"");
    let e = &errors(&text)[0];
    assert_eq!(e.line, 11, "{e}");
    assert!(e.message.contains("intervall"), "{e}");
    assert!(e.field.contains("exchanges[0].endpoints[0]"), "{e}");
    assert!(e.to_string().starts_with("cfg.toml:11:"), "{e}");
}

#[test]
fn wrong_type_names_line_and_field() {
    let text = GOOD.replace("interval = \"2s\"", "interval = 2");
    let e = &errors(&text)[0];
    assert_eq!(e.line, 10, "{e}");
    assert_eq!(e.field, "exchanges[0].endpoints[0].interval", "{e}");
}

#[test]
fn missing_field_names_the_table() {
    let text = GOOD.replace("kind = \"book\"\n", "");
    let e = &errors(&text)[0];
    assert!(e.message.contains("kind"), "{e}");
    assert!(e.field.starts_with("exchanges[0].endpoints[0]"), "{e}");
    assert!((7..=9).contains(&e.line), "{e}");
}

#[test]
fn bad_url_names_line_field_and_what_is_valid() {
    let text = GOOD.replace("http://127.0.0.1:9/binance", "ftp//nowhere");
    let e = &errors(&text)[0];
    assert_eq!(e.line, 5, "{e}");
    assert_eq!(e.field, "exchanges[0].base_url");
    assert!(e.message.contains("https://"), "{e}");
}

#[test]
fn zero_interval_names_line_and_field() {
    let text = GOOD.replace("interval = \"2s\"", "interval = \"0s\"");
    let e = &errors(&text)[0];
    assert_eq!(e.line, 10, "{e}");
    assert_eq!(e.field, "exchanges[0].endpoints[0].interval");
    assert!(
        e.message.contains("must be between 10ms and 1day, not 0s"),
        "{e}"
    );
}

#[test]
fn several_semantic_errors_are_reported_together_in_file_order() {
    let text = GOOD
        .replace("interval = \"2s\"", "interval = \"0s\"\nweight = 0")
        .replace("http://127.0.0.1:9/binance", "not a url");
    let errs = errors(&text);
    let fields: Vec<&str> = errs.iter().map(|e| e.field.as_str()).collect();
    assert_eq!(
        fields,
        vec![
            "exchanges[0].base_url",
            "exchanges[0].endpoints[0].interval",
            "exchanges[0].endpoints[0].weight"
        ]
    );
    assert!(errs.windows(2).all(|w| w[0].line <= w[1].line));
}

/// serde stops at its first error; `config check` still reports every type
/// error, unknown key and unknown kind in one run, with the semantic ones.
#[test]
fn several_type_errors_are_reported_together_with_the_semantic_ones() {
    let text = r#"
[[exchanges]]
name = "binance"
kind = "binanse"
base_url = "ftp//x"
rate_limit = { capacity = "lots", refill_per_sec = 20 }

[[exchanges.endpoints]]
name = "book"
kind = "book"
interval = 2
timout = "1s"

[[exchanges.endpoints]]
name = "ticker"
kind = "tickr"
interval = "0s"
"#;
    let errs = errors(text);
    let found = lines_and_fields(&errs);
    assert_eq!(
        found,
        vec![
            (4, "exchanges[0].kind"),
            (5, "exchanges[0].base_url"),
            (6, "exchanges[0].rate_limit.capacity"),
            (11, "exchanges[0].endpoints[0].interval"),
            (12, "exchanges[0].endpoints[0].timout"),
            (16, "exchanges[0].endpoints[1].kind"),
            (17, "exchanges[0].endpoints[1].interval"),
        ],
        "{errs:#?}"
    );
    assert!(
        errs[0].message.contains("binance"),
        "says what is valid: {}",
        errs[0]
    );
    assert!(errs[4].message.contains("timeout"), "{}", errs[4]);
}

/// A table without a required field is skipped to find the errors after it,
/// and later `[[...]]` tables keep their own index in the messages.
#[test]
fn errors_after_a_table_missing_a_field_keep_their_own_index() {
    let text = r#"
[[exchanges]]
kind = "okx"

[[exchanges]]
name = "b"
kind = "binance"
bogus = 1

[[exchanges.endpoints]]
name = "t"
kind = "ticker"
interval = "fast"
"#;
    let errs = errors(text);
    let found = lines_and_fields(&errs);
    assert_eq!(
        found,
        vec![
            (2, "exchanges[0]"),
            (8, "exchanges[1].bogus"),
            (13, "exchanges[1].endpoints[0].interval"),
        ],
        "{errs:#?}"
    );
    assert!(errs[0].message.contains("name"), "{}", errs[0]);
}

#[test]
fn secrets_are_names_of_environment_variables() {
    let text = format!("{GOOD}\n[redis]\nurl_env = \"redis://:hunter2@127.0.0.1:6379\"\n");
    let e = &errors(&text)[0];
    assert_eq!(e.field, "redis.url_env");
    assert!(e.message.contains("NAME of an environment variable"), "{e}");
}

#[test]
fn the_shipped_example_config_is_valid() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/config.example.toml");
    let cfg = config::load(std::path::Path::new(path)).unwrap_or_else(|e| panic!("{e}"));
    let kinds: std::collections::HashSet<_> = cfg.exchanges.iter().map(|e| e.kind).collect();
    assert_eq!(kinds.len(), 5, "the example watches all five exchanges");
    for ex in &cfg.exchanges {
        let eps: Vec<_> = ex.endpoints.iter().map(|e| e.kind).collect();
        assert!(
            eps.contains(&exwatch::model::EndpointKind::Ticker),
            "{} has a ticker",
            ex.name
        );
        assert!(
            eps.contains(&exwatch::model::EndpointKind::Book),
            "{} has a book",
            ex.name
        );
    }
}

#[test]
fn a_misspelt_inhibit_kind_names_its_line() {
    let text = format!(
        "{GOOD}\n[alerts]\ninhibit_kinds = [\n  \"latency\",\n  \"breaker_opne\",\n]\n\n\
         [[alerts.maintenance]]\nname = \"upgrade\"\nstart = \"2026-11-25T02:00:00Z\"\nend = \"2026-11-25T04:00:00Z\"\nkind = \"latncy\"\n"
    );
    let errs = errors(&text);
    let inhibit = errs
        .iter()
        .find(|e| e.field.starts_with("alerts.inhibit_kinds"))
        .unwrap_or_else(|| panic!("no inhibit_kinds error in {errs:?}"));
    // The misspelt entry is on the 5th line of the [alerts] block.
    let line = text
        .lines()
        .position(|l| l.contains("breaker_opne"))
        .map(|i| i + 1);
    assert_eq!(Some(inhibit.line), line, "{inhibit}");
    assert_eq!(inhibit.field, "alerts.inhibit_kinds[1]");
    assert!(inhibit.message.contains("breaker_opne"), "{inhibit}");
    assert!(inhibit.message.contains("breaker_open"), "{inhibit}");
    let matcher = errs
        .iter()
        .find(|e| e.field == "alerts.maintenance[0].kind")
        .unwrap_or_else(|| panic!("no maintenance kind error in {errs:?}"));
    assert!(matcher.message.contains("latncy"), "{matcher}");
    assert_eq!(
        Some(matcher.line),
        text.lines()
            .position(|l| l.contains("latncy"))
            .map(|i| i + 1)
    );
}

#[test]
fn every_default_inhibit_kind_and_payload_kind_is_accepted() {
    let text = format!(
        "{GOOD}\n[alerts]\ninhibit_kinds = [\"outage\", \"payload:crossed_book\", \"no_data\"]\n\
         [[alerts.maintenance]]\nname = \"m\"\nstart = \"2026-11-25T02:00:00Z\"\nend = \"2026-11-25T04:00:00Z\"\nkind = \"payload:*\"\n"
    );
    config::parse("cfg.toml", &text).expect("valid kinds");
}

#[test]
fn alert_severities_per_kind_are_checked_with_their_line() {
    let good = format!(
        "{GOOD}\n[alerts.severity]\nno_data = \"warning\"\n\"payload:*\" = \"critical\"\n\"payload:price_jump\" = \"warning\"\n"
    );
    let cfg = config::parse("cfg.toml", &good).expect("valid severities");
    use exwatch::model::{AlertKind, Severity};
    let sev = |k: &str| cfg.alerts.severity_for(&k.parse::<AlertKind>().unwrap());
    assert_eq!(sev("no_data"), Some(Severity::Warning));
    assert_eq!(sev("payload:crossed_book"), Some(Severity::Critical));
    // The exact kind wins over the prefix.
    assert_eq!(sev("payload:price_jump"), Some(Severity::Warning));
    assert_eq!(sev("latency"), None);

    let bad = format!("{GOOD}\n[alerts.severity]\nlatency = \"warning\"\nno_dat = \"warning\"\n");
    let errs = errors(&bad);
    let e = errs
        .iter()
        .find(|e| e.field == "alerts.severity.no_dat")
        .unwrap_or_else(|| panic!("no severity error in {errs:?}"));
    assert_eq!(
        Some(e.line),
        bad.lines()
            .position(|l| l.starts_with("no_dat"))
            .map(|i| i + 1),
        "{e}"
    );
    assert!(e.message.contains("no_dat"), "{e}");

    let loud = format!("{GOOD}\n[alerts.severity]\nlatency = \"loud\"\n");
    let errs = errors(&loud);
    let e = errs
        .iter()
        .find(|e| e.field.starts_with("alerts.severity"))
        .unwrap_or_else(|| panic!("no severity error in {errs:?}"));
    assert_eq!(
        Some(e.line),
        loud.lines().position(|l| l.contains("loud")).map(|i| i + 1),
        "{e}"
    );
}

/// Durations that cannot work: too small to mean anything (`"1ns"` would
/// spin) or so large they overflow the millisecond clocks
/// (`"100000000000y"` wrapped into "send now"). Each is refused on its own
/// line, naming its field and its range. `table` goes after GOOD (or, when
/// it starts with a key, into its endpoint); the bad value is the line
/// holding `bad`.
#[test]
fn every_duration_out_of_its_range_is_refused_with_its_line() {
    const HUGE: &str = "\"100000000000y\"";
    let sink = "[[alerts.sinks]]\nname = \"hook\"\nkind = \"webhook\"\nurl_env = \"EXWATCH_TEST_UNSET_HOOK\"\n";
    let cases: Vec<(String, &str, &str)> = vec![
        (
            "interval = \"1ns\"".into(),
            "exchanges[0].endpoints[0].interval",
            "between 10ms and 1day",
        ),
        (
            "interval = \"2days\"".into(),
            "exchanges[0].endpoints[0].interval",
            "between 10ms and 1day",
        ),
        (
            format!("interval = {HUGE}"),
            "exchanges[0].endpoints[0].interval",
            "between 10ms and 1day",
        ),
        (
            "timeout = \"1ns\"".into(),
            "exchanges[0].endpoints[0].timeout",
            "between 10ms and 5m",
        ),
        (
            "timeout = \"1h\"".into(),
            "exchanges[0].endpoints[0].timeout",
            "between 10ms and 5m",
        ),
        (
            "[defaults]\ninterval = \"1ns\"".into(),
            "defaults.interval",
            "10ms",
        ),
        (
            "[defaults]\ntimeout = \"1h\"".into(),
            "defaults.timeout",
            "5m",
        ),
        (
            "[http]\nconnect_timeout = \"1ns\"".into(),
            "http.connect_timeout",
            "10ms",
        ),
        (
            "[headless]\ninterval = \"1ns\"".into(),
            "headless.interval",
            "10ms",
        ),
        (
            "[triage]\ntimeout = \"1ns\"".into(),
            "triage.timeout",
            "between 100ms and 10m",
        ),
        (
            "[alerts.detect.backend]\nfire_for = \"2h\"".into(),
            "alerts.detect.backend.fire_for",
            "between 0s and 1h",
        ),
        (
            "[validation]\nfrozen_after = \"1ns\"".into(),
            "validation.frozen_after",
            "10ms",
        ),
        (
            format!("[validation]\nmax_age = {HUGE}"),
            "validation.max_age",
            "100years",
        ),
        (
            "[breaker]\nopen_for = \"1ns\"".into(),
            "breaker.open_for",
            "10ms",
        ),
        (
            format!("[breaker]\nmax_open_for = {HUGE}"),
            "breaker.max_open_for",
            "1day",
        ),
        (
            format!("[breaker]\nprobe_lease = {HUGE}"),
            "breaker.probe_lease",
            "1h",
        ),
        (
            "[breaker]\nwindow = \"1ns\"".into(),
            "breaker.window",
            "10ms",
        ),
        (
            format!("[breaker]\nslow_call = {HUGE}"),
            "breaker.slow_call",
            "5m",
        ),
        (
            "[alerts]\nupdate_every = \"1ns\"".into(),
            "alerts.update_every",
            "100ms",
        ),
        (
            format!("[alerts]\nresolve_after = {HUGE}"),
            "alerts.resolve_after",
            "30days",
        ),
        (
            format!("[alerts.grouping]\ngroup_wait = {HUGE}"),
            "alerts.grouping.group_wait",
            "between 0s and 1h",
        ),
        (
            "[alerts.grouping]\ngroup_interval = \"1ns\"".into(),
            "alerts.grouping.group_interval",
            "100ms",
        ),
        (
            format!("[alerts.grouping]\nrepeat_interval = {HUGE}"),
            "alerts.grouping.repeat_interval",
            "30days",
        ),
        (
            format!("[alerts.detect.latency]\nfor = {HUGE}"),
            "alerts.detect.latency.for",
            "1day",
        ),
        (
            format!("[alerts.detect.latency]\nclear_for = {HUGE}"),
            "alerts.detect.latency.clear_for",
            "1day",
        ),
        (
            "[alerts.detect.error_rate]\nwindow = \"1ns\"".into(),
            "alerts.detect.error_rate.window",
            "10ms",
        ),
        (
            format!("[alerts.detect.error_rate]\nclear_for = {HUGE}"),
            "alerts.detect.error_rate.clear_for",
            "1day",
        ),
        (
            "[alerts.detect.limits]\nwindow = \"1ns\"".into(),
            "alerts.detect.limits.window",
            "10ms",
        ),
        (
            "[alerts.detect.hang]\nmin_in_flight = \"1ns\"".into(),
            "alerts.detect.hang.min_in_flight",
            "10ms",
        ),
        (
            format!("[alerts.detect.staleness]\nmin_no_data = {HUGE}"),
            "alerts.detect.staleness.min_no_data",
            "1day",
        ),
        (
            "[alerts.detect.adaptive]\nmin_interval = \"1ns\"".into(),
            "alerts.detect.adaptive.min_interval",
            "10ms",
        ),
        (
            format!("{sink}timeout = \"1ns\""),
            "alerts.sinks[0].timeout",
            "100ms",
        ),
        (
            format!("{sink}retry_initial = \"1ns\""),
            "alerts.sinks[0].retry_initial",
            "10ms",
        ),
        (
            format!("{sink}retry_max = {HUGE}"),
            "alerts.sinks[0].retry_max",
            "1day",
        ),
        (
            format!("{sink}give_up_after = {HUGE}"),
            "alerts.sinks[0].give_up_after",
            "7days",
        ),
        (
            "[redis]\nurl_env = \"EXWATCH_TEST_REDIS\"\ntimeout = \"1ns\"".into(),
            "redis.timeout",
            "10ms",
        ),
    ];
    for (table, field, says) in &cases {
        let text = if table.starts_with('[') {
            format!("{GOOD}\n{table}\n")
        } else {
            GOOD.replace("interval = \"2s\"", table)
        };
        let bad_line = table.lines().last().expect("a line");
        let line = 1 + text
            .lines()
            .position(|l| l == bad_line)
            .expect("the bad line is in the text");
        let errs = errors(&text);
        assert_eq!(
            lines_and_fields(&errs),
            vec![(line, *field)],
            "{table}: {errs:?}"
        );
        assert!(errs[0].message.contains(says), "{table}: {}", errs[0]);
        assert!(errs[0].message.contains("must be between"), "{}", errs[0]);
    }
    // The bounds themselves are accepted.
    let edges = GOOD.replace("interval = \"2s\"", "interval = \"10ms\"\ntimeout = \"5m\"")
        + "[alerts.grouping]\ngroup_wait = \"1h\"\ngroup_interval = \"100ms\"\nrepeat_interval = \"30days\"\n\
           [validation]\nmax_age = \"100years\"\n";
    config::parse("cfg.toml", &edges).unwrap_or_else(|e| panic!("{e}"));
}

/// Counts, sizes and factors out of their range (README, "Configuration"):
/// each refused on its own line, naming its field and its bounds.
#[test]
fn every_number_out_of_its_range_is_refused_with_its_line() {
    let cases: [(&str, &str, &str); 16] = [
        (
            "depth = 0",
            "exchanges[0].endpoints[0].depth",
            "between 1 and 10000",
        ),
        (
            "[http]\nmax_body_bytes = 17179869184",
            "http.max_body_bytes",
            "between 1024 and 1073741824",
        ),
        (
            "[journal]\nmax_bytes = 1",
            "journal.max_bytes",
            "between 4096 and 1099511627776",
        ),
        (
            "[limiter]\ninstances = 100000",
            "limiter.instances",
            "between 1 and 1000",
        ),
        (
            "[breaker]\nwindow_size = 1000000000",
            "breaker.window_size",
            "between 1 and 100000",
        ),
        (
            "[breaker]\nbackoff = 1e12",
            "breaker.backoff",
            "at most 100",
        ),
        (
            "[alerts.grouping]\nqueue = 0",
            "alerts.grouping.queue",
            "between 1 and 1000000",
        ),
        (
            "[alerts.detect.latency]\nwindow = 4000000000",
            "alerts.detect.latency.window",
            "between 5 and 100000",
        ),
        (
            "[alerts.detect.latency]\nfire_z = 1e9",
            "alerts.detect.latency.fire_z",
            "at most 1000",
        ),
        (
            "[alerts.detect.payload]\nwindow = 1000000",
            "alerts.detect.payload.window",
            "between 1 and 100000",
        ),
        (
            "[alerts.detect.staleness]\nfire_count = 1000000",
            "alerts.detect.staleness.fire_count",
            "between 1 and 100000",
        ),
        (
            "[alerts.detect.error_rate]\nconsecutive = 0",
            "alerts.detect.error_rate.consecutive",
            "between 1 and 100000",
        ),
        (
            "[alerts.detect.hang]\nbaseline_factor = 1e6",
            "alerts.detect.hang.baseline_factor",
            "at most 1000",
        ),
        (
            "[alerts.detect.breaker]\noutage_min_endpoints = 0",
            "alerts.detect.breaker.outage_min_endpoints",
            "between 1 and 10000",
        ),
        (
            "[validation]\nmax_price_jump_pct = 1e6",
            "validation.max_price_jump_pct",
            "at most 10000",
        ),
        (
            "[alerts.detect.adaptive]\nquiet_after = 4000000",
            "alerts.detect.adaptive.quiet_after",
            "between 0 and 100000",
        ),
    ];
    for (table, field, says) in cases {
        let text = if table.starts_with('[') {
            format!("{GOOD}\n{table}\n")
        } else {
            GOOD.replace("interval = \"2s\"", table)
        };
        let bad_line = table.lines().last().expect("a line");
        let line = 1 + text.lines().position(|l| l == bad_line).expect("bad line");
        let errs = errors(&text);
        assert_eq!(
            lines_and_fields(&errs),
            vec![(line, field)],
            "{table}: {errs:?}"
        );
        assert!(errs[0].message.contains(says), "{table}: {}", errs[0]);
    }
}

/// `base_url` with `user:password@` is refused on its line, and neither
/// the password nor the user is repeated, whether or not the rest parses.
#[test]
fn a_base_url_with_credentials_is_refused_without_echoing_them() {
    for url in [
        "https://alice:Pa55-w0rd-XYZZY@api.example.com",
        "http://alice:Pa55-w0rd-XYZZY@127.0.0.1:9/binance",
        "https://alice:Pa55-w0rd-XYZZY@exa mple.com/x",
        "ftp://alice:Pa55-w0rd-XYZZY@example.com",
    ] {
        let text = GOOD.replace("http://127.0.0.1:9/binance", url);
        let errs = errors(&text);
        assert_eq!(
            lines_and_fields(&errs),
            vec![(5, "exchanges[0].base_url")],
            "{url}: {errs:?}"
        );
        let shown = errs[0].to_string();
        assert!(!shown.contains("Pa55-w0rd-XYZZY"), "{shown}");
        assert!(!shown.contains("alice"), "{shown}");
    }
}

/// A sink's URL comes from the environment variable `url_env` names; a set
/// variable holding something that is not an http(s) URL is refused when
/// the config loads (`config check`, and `run` before anything starts),
/// naming the sink's `url_env` line, and never repeating the value.
#[test]
fn a_malformed_sink_url_in_the_environment_is_refused_at_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = dir.path().join("c.toml");
    let text = format!(
        "{GOOD}\n[log]\ndir = \"{d}\"\n[journal]\npath = \"{d}/j.jsonl\"\n\
         [[alerts.sinks]]\nname = \"hook\"\nkind = \"webhook\"\nurl_env = \"EXWATCH_TEST_HOOK_URL\"\n",
        d = dir.path().display()
    );
    let line = 1 + text
        .lines()
        .position(|l| l.starts_with("url_env"))
        .expect("url_env line");
    std::fs::write(&cfg, &text).expect("write");
    let run = |args: &[&str], value: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_exwatch"))
            .args(args)
            .arg(&cfg)
            .env("EXWATCH_TEST_HOOK_URL", value)
            .stdin(std::process::Stdio::null())
            .output()
            .expect("run exwatch")
    };
    for value in [
        "hooks.example.com/T0SECRET/B0SECRET",
        "htp//hooks.example.com/T0SECRET",
        "mailto:T0SECRET@example.com",
        "https://exa mple.com/T0SECRET",
        "https://",
        "https://:T0SECRET@/x",
    ] {
        for args in [&["config", "check"][..], &["run", "--headless", "-c"]] {
            let out = run(args, value);
            let err = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{args:?} {value}: {err}");
            assert!(
                err.contains(&format!("c.toml:{line}:"))
                    && err.contains("alerts.sinks[0].url_env")
                    && err.contains("EXWATCH_TEST_HOOK_URL"),
                "{args:?} {value}: {err}"
            );
            assert!(!err.contains("SECRET"), "{args:?}: the value echoed: {err}");
        }
    }
    let out = run(&["config", "check"], "https://hooks.example.com/T0SECRET");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A document that does not parse at all still names the field: the
/// table of a duplicated header, the table and key of a duplicated key or
/// of a line that is not TOML (was `(document)`).
#[test]
fn unparsable_documents_name_the_table_and_key_of_the_bad_line() {
    let cases = [
        (
            "[journal]\nenabled = false\n\n[journal]\nenabled = true\n",
            4,
            "journal",
        ),
        (
            "[defaults]\ninterval = \"5s\"\ninterval = \"6s\"\n",
            3,
            "defaults.interval",
        ),
        ("[defaults]\ntimeout = \"5s\n", 2, "defaults.timeout"),
        (
            "[[exchanges]]\nname = \"a\"\n[[exchanges.endpoints]]\nname = \"t\"\n\
             [[exchanges]]\nname = \"b\"\n[[exchanges.endpoints]]\nname = \"t\"\n\
             [[exchanges.endpoints]]\nname = \"u\"\ninterval = 5s\n",
            11,
            "exchanges[1].endpoints[1].interval",
        ),
        (
            "[[exchanges]]\nname = \"a\"\n[[exchanges]]\nname = \"okx\"\nkind = okx\n",
            5,
            "exchanges[1].kind",
        ),
    ];
    for (text, line, field) in cases {
        let e = &errors(text)[0];
        assert_eq!((e.line, e.field.as_str()), (line, field), "{e}\n{text}");
    }
}
