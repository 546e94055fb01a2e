//! Rate-limit pressure: exchange-reported usage above a threshold, 429s, time
//! spent waiting for our own limiter (one `rate_limit` alert per endpoint,
//! firing while any of the three holds), and IP bans (`ban`).
//!
//! A hold the exchange ordered is a state with an end: both alerts say until
//! when they hold us and why (`held until 14:03:12 UTC (retry after 35 s)`,
//! `(banned)`), in the description and as `held_until_ms` (unix ms) in the
//! metrics while it lasts; in the title too when the end is known at firing
//! (the engine keeps the title that fired for the episode).

use super::{Finding, Firing, Gate, Step};
use crate::clock::{hms, ms};
use crate::model::{AlertKind, Severity};
use crate::model::{Outcome, Sample};
use crate::model::{RateLimitSignal, Tier};
use crate::problems::Problems;
use crate::problems::{check_pair, check_ratio};
use crate::units::latency_ms;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

pub const RATE_LIMIT: AlertKind = AlertKind::RateLimit;
pub const BAN: AlertKind = AlertKind::Ban;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitSettings {
    pub enabled: bool,
    /// Reported usage (used / limit) that fires...
    pub usage_fire: f64,
    /// ...and below which it clears.
    pub usage_clear: f64,
    /// Window for counting 429s and limiter waits.
    #[serde(with = "humantime_serde")]
    pub window: Duration,
    /// 429 answers within the window that fire.
    pub rate_limited_count: usize,
    /// Share of the window spent waiting for the limiter that fires...
    pub wait_fire: f64,
    /// ...and below which it clears.
    pub wait_clear: f64,
}

impl Default for LimitSettings {
    fn default() -> Self {
        LimitSettings {
            enabled: true,
            usage_fire: 0.8,
            usage_clear: 0.6,
            window: Duration::from_secs(60),
            rate_limited_count: 1,
            wait_fire: 0.25,
            wait_clear: 0.05,
        }
    }
}

impl LimitSettings {
    pub fn validate(&self, at: &str, p: &mut Problems) {
        check_ratio(p, &format!("{at}.usage_fire"), self.usage_fire);
        check_ratio(p, &format!("{at}.usage_clear"), self.usage_clear);
        check_pair(
            p,
            &format!("{at}.usage_clear"),
            self.usage_fire,
            self.usage_clear,
        );
        check_ratio(p, &format!("{at}.wait_fire"), self.wait_fire);
        check_ratio(p, &format!("{at}.wait_clear"), self.wait_clear);
        check_pair(
            p,
            &format!("{at}.wait_clear"),
            self.wait_fire,
            self.wait_clear,
        );
        use crate::problems::{DAY, check_duration, ms};
        check_duration(p, &format!("{at}.window"), self.window, ms(10), DAY);
        crate::problems::check_count(
            p,
            &format!("{at}.rate_limited_count"),
            self.rate_limited_count as u64,
            1,
            100_000,
        );
    }
}

/// Share of the window used, from whatever the exchange reported.
pub fn usage_of(sig: &RateLimitSignal) -> Option<f64> {
    let limit = sig.limit.filter(|l| *l > 0)? as f64;
    match (sig.used, sig.remaining) {
        (Some(u), _) => Some(u as f64 / limit),
        (None, Some(r)) => Some((limit - r as f64).max(0.0) / limit),
        _ => None,
    }
}

#[derive(Debug, Clone)]
pub struct LimitDetector {
    exchange: String,
    endpoint: String,
    s: LimitSettings,
    usage: Option<(i64, f64)>,
    limited: VecDeque<i64>,
    /// The last rate-limited answer: (at_ms, HTTP status, the exchange's words).
    last_limited: Option<(i64, Option<u16>, String)>,
    /// Unix ms until which the exchange told us to hold off (Retry-After of
    /// its rate-limited answers); limiter waits inside it are that hold.
    hold_until_ms: i64,
    /// The wait (ms) the rate-limited answer that set `hold_until_ms` asked for.
    hold_retry_after_ms: Option<u64>,
    /// A good answer came after the last rate-limited one.
    ok_after_limited: bool,
    waits: VecDeque<(i64, u64)>,
    /// The tier whose empty budget made the last counted wait.
    last_wait_tier: Option<Tier>,
    pressure: Gate,
    banned_until_ms: Option<i64>,
    ban_detail: String,
    ban: Gate,
    /// A restored `rate_limit` alert waits for a good answer before it clears.
    await_answer: bool,
}

impl LimitDetector {
    pub fn new(exchange: &str, endpoint: &str, s: LimitSettings) -> Self {
        LimitDetector {
            exchange: exchange.into(),
            endpoint: endpoint.into(),
            s,
            usage: None,
            limited: VecDeque::new(),
            last_limited: None,
            hold_until_ms: 0,
            hold_retry_after_ms: None,
            ok_after_limited: false,
            waits: VecDeque::new(),
            last_wait_tier: None,
            pressure: Gate::default(),
            banned_until_ms: None,
            ban_detail: String::new(),
            ban: Gate::default(),
            await_answer: false,
        }
    }

    /// Take back a `rate_limit` or `ban` alert restored after a restart: it
    /// clears with the exchange's good answers as a live one does; false for
    /// another kind.
    pub fn assume_firing(&mut self, kind: &AlertKind) -> bool {
        match kind {
            AlertKind::RateLimit => {
                self.pressure.assume_firing();
                self.await_answer = true;
            }
            AlertKind::Ban => self.ban.assume_firing(),
            _ => return false,
        }
        true
    }

    pub fn on_sample(&mut self, smp: &Sample) -> Vec<Finding> {
        if !self.s.enabled {
            return Vec::new();
        }
        if let Some(u) = smp.signal.as_ref().and_then(usage_of) {
            self.usage = Some((smp.at_ms, u));
        }
        if smp.outcome.is_ok() {
            self.await_answer = false;
        }
        let mut banned = false;
        match &smp.outcome {
            Outcome::RateLimited {
                retry_after_ms,
                detail,
            } => {
                self.limited.push_back(smp.at_ms);
                self.last_limited = Some((smp.at_ms, smp.status, detail.clone()));
                let until = smp.at_ms.saturating_add(retry_after_ms.unwrap_or(0) as i64);
                if until > self.hold_until_ms {
                    self.hold_until_ms = until;
                    self.hold_retry_after_ms = *retry_after_ms;
                }
                self.ok_after_limited = false;
            }
            Outcome::Ok => self.ok_after_limited = true,
            Outcome::Banned {
                until_ms,
                retry_after_ms,
                detail,
            } => {
                banned = true;
                let until = until_ms
                    .or(retry_after_ms.map(|r| smp.at_ms + r as i64))
                    .unwrap_or(smp.at_ms);
                self.banned_until_ms = Some(self.banned_until_ms.unwrap_or(0).max(until));
                self.ban_detail = detail.clone();
            }
            _ => {}
        }
        if let Some(until) = smp.signal.as_ref().and_then(|s| s.banned_until_ms) {
            if until > smp.at_ms {
                banned = true;
                self.banned_until_ms = Some(self.banned_until_ms.unwrap_or(0).max(until));
            }
        }
        let mut out: Vec<Finding> = self.eval_pressure(smp.at_ms).into_iter().collect();
        // A ban lifts with the first good answer, not with the clock: the
        // exchange's own word is the only proof.
        let step = self.ban.step(banned, smp.outcome.is_ok(), smp.at_ms, 0, 0);
        if step == Step::Cleared {
            self.banned_until_ms = None;
        }
        out.extend(self.ban_finding(step, smp.at_ms));
        out
    }

    /// A poll waited `waited_ms` for our limiter, until `at_ms` (unix ms),
    /// on `tier`'s budget.
    pub fn on_wait(&mut self, at_ms: i64, waited_ms: u64, tier: Tier) -> Vec<Finding> {
        if !self.s.enabled {
            return Vec::new();
        }
        // A wait that began inside the exchange's own hold is that hold (the
        // rate-limited answer already says it), not pressure of our budget.
        let began = at_ms - waited_ms as i64;
        let in_hold = self
            .last_limited
            .as_ref()
            .is_some_and(|(t, _, _)| began >= *t - 1 && began < self.hold_until_ms);
        if !in_hold {
            self.waits.push_back((at_ms, waited_ms));
            self.last_wait_tier = Some(tier);
        }
        self.eval_pressure(at_ms).into_iter().collect()
    }

    pub fn tick(&mut self, now_ms: i64) -> Vec<Finding> {
        if !self.s.enabled {
            return Vec::new();
        }
        let mut out: Vec<Finding> = Vec::new();
        if self.pressure.is_firing() {
            out.extend(self.eval_pressure(now_ms));
        }
        if self.ban.is_firing() {
            out.extend(self.ban_finding(Step::Firing, now_ms));
        }
        out
    }

    fn eval_pressure(&mut self, now_ms: i64) -> Option<Finding> {
        let window = ms(self.s.window);
        let horizon = now_ms - window;
        while self.limited.front().is_some_and(|t| *t < horizon) {
            self.limited.pop_front();
        }
        while self.waits.front().is_some_and(|(t, _)| *t < horizon) {
            self.waits.pop_front();
        }
        if self.usage.is_some_and(|(t, _)| t < horizon) {
            self.usage = None;
        }
        let usage = self.usage.map(|(_, u)| u);
        let waited: u64 = self.waits.iter().map(|(_, w)| *w).sum();
        let wait_share = waited as f64 / window.max(1) as f64;
        let n429 = self.limited.len();
        let bad = usage.is_some_and(|u| u >= self.s.usage_fire)
            || n429 >= self.s.rate_limited_count
            || wait_share >= self.s.wait_fire;
        // Rate-limited answers are over once the hold they ordered has
        // ended and the exchange has answered normally since.
        let limited_over = n429 == 0 || (now_ms >= self.hold_until_ms && self.ok_after_limited);
        let good = !self.await_answer
            && usage.is_none_or(|u| u < self.s.usage_clear)
            && limited_over
            && wait_share < self.s.wait_clear;
        match self.pressure.step(bad, good, now_ms, 0, 0) {
            Step::Quiet => None,
            Step::Cleared => {
                // Start afresh: the episode's answers cannot fire it again.
                self.limited.clear();
                Some(Finding::Cleared {
                    exchange: self.exchange.clone(),
                    endpoint: Some(self.endpoint.clone()),
                    kind: RATE_LIMIT,
                })
            }
            Step::Fired | Step::Firing => {
                let mut reasons = Vec::new();
                if let Some(u) = usage {
                    reasons.push(format!("usage {:.0}% of the exchange's limit", u * 100.0));
                }
                if n429 > 0 {
                    // Say what the exchange said, and in which status: a
                    // rate-limit code may come in an HTTP 200.
                    let last = match &self.last_limited {
                        Some((_, Some(status), detail)) => {
                            format!(" (last: HTTP {status}: {detail})")
                        }
                        Some((_, None, detail)) => format!(" (last: {detail})"),
                        None => String::new(),
                    };
                    reasons.push(format!(
                        "{n429} rate-limited answer{} in {}s{last}",
                        if n429 == 1 { "" } else { "s" },
                        window / 1000
                    ));
                    if let Some(why) = self.hold_why(now_ms) {
                        reasons.push(format!(
                            "held until {} UTC ({why}, {} left)",
                            hms(self.hold_until_ms),
                            latency_ms((self.hold_until_ms - now_ms) as f64)
                        ));
                    }
                }
                if waited > 0 {
                    let tier = match self.last_wait_tier {
                        Some(t) => format!(" (last: {} tier weight empty)", t.as_str()),
                        None => String::new(),
                    };
                    reasons.push(format!(
                        "{:.0}% of the last {}s spent waiting for the limiter{tier}",
                        wait_share * 100.0,
                        window / 1000
                    ));
                }
                let mut metrics = BTreeMap::from([
                    ("rate_limited".to_string(), n429 as f64),
                    ("limiter_wait_share".to_string(), wait_share),
                ]);
                if let Some(u) = usage {
                    metrics.insert("usage".into(), u);
                }
                let held = self.hold_why(now_ms).filter(|_| n429 > 0);
                if held.is_some() {
                    metrics.insert("held_until_ms".into(), self.hold_until_ms as f64);
                }
                let title = match held {
                    Some(why) => format!(
                        "{}/{}: rate-limited, held until {} UTC ({why})",
                        self.exchange,
                        self.endpoint,
                        hms(self.hold_until_ms)
                    ),
                    None if n429 > 0 => {
                        format!("{}/{}: rate-limited", self.exchange, self.endpoint)
                    }
                    None => format!("{}/{}: rate-limit pressure", self.exchange, self.endpoint),
                };
                Some(Finding::Firing(Firing {
                    exchange: self.exchange.clone(),
                    endpoint: Some(self.endpoint.clone()),
                    kind: RATE_LIMIT,
                    severity: if n429 > 0 {
                        Severity::Critical
                    } else {
                        Severity::Warning
                    },
                    title,
                    description: format!("{}.", reasons.join("; ")),
                    metrics,
                }))
            }
        }
    }

    /// Why the exchange holds us at `now_ms` (`retry after 35 s`), while
    /// the hold its rate-limited answers ordered lasts.
    fn hold_why(&self, now_ms: i64) -> Option<String> {
        (self.hold_until_ms > now_ms).then(|| match self.hold_retry_after_ms {
            // Retry-After is whole seconds; a reset time may not be.
            Some(r) if r % 1_000 == 0 => format!("retry after {} s", r / 1_000),
            Some(r) => format!("retry after {}", latency_ms(r as f64)),
            None => "rate-limited".to_string(),
        })
    }

    fn ban_finding(&self, step: Step, now_ms: i64) -> Option<Finding> {
        match step {
            Step::Quiet => None,
            Step::Cleared => Some(Finding::Cleared {
                exchange: self.exchange.clone(),
                endpoint: Some(self.endpoint.clone()),
                kind: BAN,
            }),
            Step::Fired | Step::Firing => {
                let left = self.banned_until_ms.map(|u| (u - now_ms).max(0));
                let mut metrics = BTreeMap::new();
                if let Some(l) = left {
                    metrics.insert("ban_left_ms".to_string(), l as f64);
                }
                // The end the exchange gave, while it is ahead; past it, the
                // ban lasts until a good answer and has no known end.
                let until = self.banned_until_ms.filter(|u| *u > now_ms);
                if let Some(u) = until {
                    metrics.insert("held_until_ms".to_string(), u as f64);
                }
                Some(Finding::Firing(Firing {
                    exchange: self.exchange.clone(),
                    endpoint: Some(self.endpoint.clone()),
                    kind: BAN,
                    severity: Severity::Emergency,
                    title: match until {
                        Some(u) => format!(
                            "{}/{}: IP banned by the exchange, held until {} UTC (banned)",
                            self.exchange,
                            self.endpoint,
                            hms(u)
                        ),
                        None => format!(
                            "{}/{}: IP banned by the exchange",
                            self.exchange, self.endpoint
                        ),
                    },
                    description: match until {
                        Some(u) => format!(
                            "Banned: held until {} UTC ({} left): {}",
                            hms(u),
                            latency_ms((u - now_ms) as f64),
                            self.ban_detail
                        ),
                        None => format!(
                            "Banned, held until a good answer (no end ahead): {}",
                            self.ban_detail
                        ),
                    },
                    metrics,
                }))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::testutil::{cleared, fired, sample};

    fn with_usage(at: i64, used: u64) -> Sample {
        let mut s = sample(at, 5, Outcome::Ok);
        s.signal = Some(RateLimitSignal {
            used: Some(used),
            limit: Some(1000),
            ..Default::default()
        });
        s
    }

    fn limited(at: i64, retry_after_ms: u64) -> Sample {
        let mut s = sample(
            at,
            5,
            Outcome::RateLimited {
                retry_after_ms: Some(retry_after_ms),
                detail: "retCode 10006: Too many visits!".into(),
            },
        );
        // Bybit sends its rate-limit code in an HTTP 200.
        s.status = Some(200);
        s
    }

    /// Issue #13: a 5.6 s rate-limit episode (Bybit 10006 in HTTP 200,
    /// Retry-After 5 s) kept a critical alert up for 70 s and said "429".
    #[test]
    fn a_rate_limit_episode_resolves_when_its_hold_ends_and_says_what_came() {
        let mut d = LimitDetector::new("bybit", "ticker", LimitSettings::default());
        let mut t = 0;
        for _ in 0..5 {
            t += 500;
            assert!(d.on_sample(&sample(t, 5, Outcome::Ok)).is_empty());
        }
        t += 500;
        let f = d.on_sample(&limited(t, 5_000));
        let Some(Finding::Firing(x)) = f.first() else {
            panic!("{f:?}")
        };
        assert_eq!(x.severity, Severity::Critical);
        assert!(
            x.description
                .contains("1 rate-limited answer in 60s (last: HTTP 200: retCode 10006")
                && !x.description.contains("429"),
            "{}",
            x.description
        );
        // The worker waits out the hold (our limiter, ordered by the exchange).
        let hold_end = t + 5_000;
        assert!(
            d.on_wait(hold_end + 100, 5_100, Tier::Exchange)
                .iter()
                .all(|f| f.is_firing())
        );
        // Still held: no answer yet, nothing clears.
        assert!(d.tick(hold_end - 1_000).iter().all(|f| f.is_firing()));
        // The first good answer after the hold: resolved, not 60 s later.
        let f = d.on_sample(&sample(hold_end + 600, 5, Outcome::Ok));
        assert!(cleared(&f, RATE_LIMIT), "{f:?}");
        // And it stays resolved.
        for i in 1..=10 {
            let f = d.on_sample(&sample(hold_end + 600 + i * 500, 5, Outcome::Ok));
            assert!(f.is_empty(), "{f:?}");
        }
    }

    /// Issue #13 item 3: the hold's own alert says until when the exchange
    /// holds us and why. A Binance 429 with `Retry-After: 35` at 14:02:37.
    #[test]
    fn a_rate_limit_alert_says_until_when_and_why_it_is_held() {
        let at = 1_796_047_357_000; // 2026-11-30 14:02:37 UTC
        let mut d = LimitDetector::new("binance", "ticker", LimitSettings::default());
        let mut s = sample(
            at,
            5,
            Outcome::RateLimited {
                retry_after_ms: Some(35_000),
                detail: "Too many requests".into(),
            },
        );
        s.status = Some(429);
        let f = d.on_sample(&s);
        let Some(Finding::Firing(x)) = f.first() else {
            panic!("{f:?}")
        };
        assert_eq!(
            x.title,
            "binance/ticker: rate-limited, held until 14:03:12 UTC (retry after 35 s)"
        );
        assert_eq!(
            x.description,
            "1 rate-limited answer in 60s (last: HTTP 429: Too many requests); \
             held until 14:03:12 UTC (retry after 35 s, 35 s left)."
        );
        assert_eq!(x.metrics["held_until_ms"], (at + 35_000) as f64);
        // Later in the hold: the description counts down, the end stays.
        let f = d.tick(at + 30_000);
        let Some(Finding::Firing(x)) = f.first() else {
            panic!("{f:?}")
        };
        assert!(
            x.description
                .ends_with("held until 14:03:12 UTC (retry after 35 s, 5.00 s left)."),
            "{}",
            x.description
        );
        // The hold over, still firing (no good answer yet): no end to give.
        let f = d.tick(at + 36_000);
        let Some(Finding::Firing(x)) = f.first() else {
            panic!("{f:?}")
        };
        assert!(!x.description.contains("held until"), "{}", x.description);
        assert!(!x.metrics.contains_key("held_until_ms"));
        assert_eq!(x.title, "binance/ticker: rate-limited");
    }

    /// Without a hold, pressure is pressure: no end time to give.
    #[test]
    fn pressure_without_a_hold_has_no_end_time() {
        let mut d = LimitDetector::new("bin", "ticker", LimitSettings::default());
        let f = d.on_sample(&with_usage(2_000, 810));
        let Some(Finding::Firing(x)) = f.first() else {
            panic!("{f:?}")
        };
        assert_eq!(x.title, "bin/ticker: rate-limit pressure");
        assert!(!x.metrics.contains_key("held_until_ms"));
    }

    #[test]
    fn usage_hysteresis_does_not_flap() {
        let mut d = LimitDetector::new("bin", "ticker", LimitSettings::default());
        assert!(d.on_sample(&with_usage(1_000, 500)).is_empty());
        assert!(fired(&d.on_sample(&with_usage(2_000, 810)), RATE_LIMIT));
        // Oscillating 70% .. 85%: stays firing, no clear.
        for i in 0..50 {
            let used = if i % 2 == 0 { 700 } else { 850 };
            let f = d.on_sample(&with_usage(3_000 + i * 1000, used));
            assert!(fired(&f, RATE_LIMIT) && !cleared(&f, RATE_LIMIT));
        }
        assert!(cleared(&d.on_sample(&with_usage(60_000, 590)), RATE_LIMIT));
    }

    #[test]
    fn remaining_counts_as_usage() {
        let sig = RateLimitSignal {
            remaining: Some(100),
            limit: Some(1000),
            ..Default::default()
        };
        assert_eq!(usage_of(&sig), Some(0.9));
        assert_eq!(usage_of(&RateLimitSignal::default()), None);
    }

    #[test]
    fn a_429_fires_and_clears_once_out_of_the_window() {
        let mut d = LimitDetector::new("bin", "ticker", LimitSettings::default());
        let f = d.on_sample(&sample(
            1_000,
            5,
            Outcome::RateLimited {
                retry_after_ms: Some(1000),
                detail: "429".into(),
            },
        ));
        assert!(fired(&f, RATE_LIMIT));
        assert!(fired(&d.tick(30_000), RATE_LIMIT));
        assert!(cleared(&d.tick(61_001), RATE_LIMIT));
        assert!(d.tick(70_000).is_empty());
    }

    #[test]
    fn limiter_waits_fire_by_share_of_time() {
        let mut d = LimitDetector::new("bin", "ticker", LimitSettings::default());
        let mut fired_at = None;
        for i in 0..30 {
            let f = d.on_wait(i * 1000, 800, Tier::Exchange);
            if fired(&f, RATE_LIMIT) && fired_at.is_none() {
                fired_at = Some(i);
                let Some(Finding::Firing(x)) = f.first() else {
                    panic!("{f:?}")
                };
                // Our own budget: why, but no hold and no end time.
                assert_eq!(x.title, "bin/ticker: rate-limit pressure");
                assert_eq!(
                    x.description,
                    "25% of the last 60s spent waiting for the limiter \
                     (last: exchange tier weight empty)."
                );
            }
        }
        // 25% of 60 s = 15 s of waiting: the 19th wait of 800 ms.
        assert_eq!(fired_at, Some(18));
    }

    #[test]
    fn ban_fires_until_a_good_answer() {
        let mut d = LimitDetector::new("bin", "ticker", LimitSettings::default());
        let f = d.on_sample(&sample(
            1_000,
            5,
            Outcome::Banned {
                until_ms: Some(120_000),
                retry_after_ms: None,
                detail: "418".into(),
            },
        ));
        assert!(fired(&f, BAN));
        let Some(Finding::Firing(x)) = f.iter().find(|f| *f.kind() == BAN) else {
            panic!()
        };
        assert_eq!(x.severity, Severity::Emergency);
        assert_eq!(x.metrics["ban_left_ms"], 119_000.0);
        assert_eq!(x.metrics["held_until_ms"], 120_000.0);
        assert_eq!(
            x.title,
            "bin/ticker: IP banned by the exchange, held until 00:02:00 UTC (banned)"
        );
        assert_eq!(
            x.description,
            "Banned: held until 00:02:00 UTC (119 s left): 418"
        );
        assert!(fired(&d.tick(50_000), BAN));
        // Past the end it gave, the ban holds until a good answer.
        let f = d.tick(125_000);
        let Some(Finding::Firing(x)) = f.iter().find(|f| *f.kind() == BAN) else {
            panic!("{f:?}")
        };
        assert_eq!(
            x.description,
            "Banned, held until a good answer (no end ahead): 418"
        );
        assert!(!x.metrics.contains_key("held_until_ms"));
        assert!(cleared(&d.on_sample(&sample(130_000, 5, Outcome::Ok)), BAN));
    }
}
