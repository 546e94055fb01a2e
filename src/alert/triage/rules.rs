//! Rule-based triage: deterministic, always available, and the answer used
//! whenever the model is not configured, not reachable or not trusted.
//!
//! Rules are tried in order and the first that matches decides; the note says
//! which one and why, so an engineer can tell a rule's guess from a model's.
//! One modifier runs after: when several other alerts are open on the same
//! exchange, the incident is probably exchange-wide and escalation goes up one.

use super::context::AlertContext;
use crate::model::{AlertKind, BreakerState};
use crate::model::{AlertState, Severity, Triage, TriageSource};

/// Other open alerts on the exchange from which an incident counts as exchange-wide.
pub const EXCHANGE_WIDE_AT: usize = 3;
/// A recent error rate from which an endpoint counts as down rather than flaky.
pub const DOWN_ERROR_RATE: f64 = 0.5;

pub use super::decision::Decision;

/// Triage `ctx` by rules. `fallback_reason` says why the model was not used
/// (`None` when rules are the configured source).
pub fn triage(ctx: &AlertContext, now_ms: i64, fallback_reason: Option<&str>) -> Triage {
    let d = decide(ctx);
    let mut note = format!("rule {}: {}", d.rule, d.why);
    if let Some(reason) = fallback_reason {
        note = format!("model not used ({reason}); {note}");
    }
    Triage {
        source: TriageSource::Rules,
        escalation: d.escalation,
        requires_human: d.requires_human,
        summary: d.summary,
        likely_cause: d.likely_cause,
        suggested_actions: d.suggested_actions,
        auto_resolve: d.auto_resolve,
        note,
        latency_ms: 0,
        cost_usd: 0.0,
        at_ms: now_ms,
    }
}

/// The first matching rule's decision, with the exchange-wide modifier applied.
pub fn decide(ctx: &AlertContext) -> Decision {
    let mut d = base(ctx);
    let others = ctx.related_open_alerts.len();
    if others >= EXCHANGE_WIDE_AT && d.escalation < 5 && ctx.alert.state.is_open() {
        d.escalation += 1;
        d.why = format!(
            "{}; +1 because {others} other alerts are open on {} (exchange-wide incident)",
            d.why, ctx.alert.exchange
        );
        d.suggested_actions.push(format!(
            "Check {}'s status page: several endpoints fail at once",
            ctx.alert.exchange
        ));
        if d.escalation >= 4 {
            d.requires_human = true;
            d.auto_resolve = false;
        }
    }
    d
}

fn base(ctx: &AlertContext) -> Decision {
    let a = &ctx.alert;
    let where_ = match &a.endpoint {
        Some(ep) => format!("{}/{}", a.exchange, ep),
        None => a.exchange.clone(),
    };
    let breaker = ctx.breaker_state();
    let error_rate = ctx.endpoint.as_ref().map(|e| e.recent_error_rate);

    if a.state == AlertState::Resolved {
        return Decision {
            rule: "resolved",
            why: "the alert is already resolved".into(),
            escalation: 1,
            requires_human: false,
            summary: format!("{where_}: {} has recovered", a.kind),
            likely_cause: "A transient condition that has cleared".into(),
            suggested_actions: vec!["None; review in the incident log if it recurs".into()],
            auto_resolve: true,
        };
    }

    if a.kind == AlertKind::Ban {
        return Decision {
            rule: "ban",
            why:
                "the exchange banned this IP (HTTP 418 or a ban code): every client on it is blind"
                    .into(),
            escalation: 5,
            requires_human: true,
            summary: format!("{where_}: this IP is banned by {}", a.exchange),
            likely_cause:
                "Rate limits were ignored after 429 warnings, by this monitor or by another \
                           client sharing the egress IP"
                    .into(),
            suggested_actions: vec![
                "Stop every client polling this exchange from this IP until the ban lifts".into(),
                "Find which process kept sending after the 429s (shared IP, other instances)"
                    .into(),
                "Lower request rates or add the account/IP tiers before resuming".into(),
            ],
            auto_resolve: false,
        };
    }

    if a.kind == AlertKind::BreakerOpen || breaker == Some(BreakerState::Open) {
        let why = if a.kind == AlertKind::BreakerOpen {
            "the circuit breaker opened: the endpoint failed repeatedly".to_string()
        } else {
            format!(
                "the endpoint's circuit breaker is open while {} fires",
                a.kind
            )
        };
        return Decision {
            rule: "breaker_open",
            why,
            escalation: 4,
            requires_human: true,
            summary: format!("{where_}: endpoint down, polling suspended by the breaker"),
            likely_cause:
                "Outage, maintenance or network trouble between this host and the exchange".into(),
            suggested_actions: vec![
                "Check the exchange's status page and announcements".into(),
                "Check whether trading systems using this endpoint see the same errors".into(),
                "Compare with other exchanges to rule out a local network problem".into(),
            ],
            auto_resolve: false,
        };
    }

    if a.kind == AlertKind::RateLimit {
        let hard = a.severity >= Severity::Critical;
        return Decision {
            rule: "rate_limit",
            why: if hard {
                "the exchange is rejecting requests for rate limits (critical): a ban may follow"
                    .into()
            } else {
                "rate-limit pressure: the budget is nearly used up".into()
            },
            escalation: if hard { 4 } else { 2 },
            requires_human: hard,
            summary: format!("{where_}: rate limit pressure"),
            likely_cause:
                "Request weight above the exchange's budget, possibly from other clients \
                           sharing the IP or account"
                    .into(),
            suggested_actions: vec![
                "Reduce polling frequency or weight for this exchange".into(),
                "Check other clients sharing the IP or API key".into(),
            ],
            auto_resolve: false,
        };
    }

    if let AlertKind::Payload(reason) = &a.kind {
        let reason = reason.as_str();
        if matches!(reason, "stale" | "frozen") {
            return stale(ctx, &where_, reason);
        }
        // One bad payload among good ones is noise; repeated garbage misleads trading systems.
        let repeated = a.occurrences > 1;
        return Decision {
            rule: "payload",
            why: if repeated {
                format!(
                    "the exchange sent an invalid payload ({reason}) {} times",
                    a.occurrences
                )
            } else {
                format!("the exchange sent one invalid payload ({reason})")
            },
            escalation: if repeated { 3 } else { 2 },
            requires_human: repeated,
            summary: format!("{where_}: invalid market data ({reason})"),
            likely_cause: "The exchange is serving corrupt or inconsistent data (a bug, a partial \
                           outage or a changed format)"
                .into(),
            suggested_actions: vec![
                "Tell the trading desk not to trust this feed until it recovers".into(),
                "Compare with another exchange's price for the same instrument".into(),
                "If the format changed, update the adapter or the generic spec".into(),
            ],
            auto_resolve: !repeated,
        };
    }

    if matches!(a.kind, AlertKind::Stale | AlertKind::Frozen) {
        return stale(ctx, &where_, &a.kind.name());
    }

    if a.kind == AlertKind::ErrorRate && blocked(ctx) {
        return Decision {
            rule: "blocked",
            why: "the polls fail because the exchange's CDN or WAF refuses this host (blocked), \
                  not because the exchange is down or rate-limiting"
                .into(),
            escalation: 3,
            requires_human: true,
            summary: format!("{where_}: blocked by the exchange's CDN for this region/IP"),
            likely_cause: "A geo-block or WAF rule of the CDN in front of the exchange \
                           (CloudFront, Cloudflare) refuses this host's egress IP or its region"
                .into(),
            suggested_actions: vec![
                "Check the egress IP and its region from this host (VPN, proxy, cloud region)"
                    .into(),
                "Run the monitor from an allowed region or route it through an allowed egress IP"
                    .into(),
                "Do not lower polling rates: waiting does not lift a block".into(),
            ],
            auto_resolve: false,
        };
    }

    if a.kind == AlertKind::ErrorRate {
        let rate = error_rate.or_else(|| a.metrics.get("error_rate").copied());
        let down = rate.is_some_and(|r| r >= DOWN_ERROR_RATE);
        // Refused requests (a bad symbol, parameter or path) are ours to fix,
        // not the exchange's outage.
        let ours = dominant_class(a) == Some("client_error");
        let (likely_cause, suggested_actions) = if ours {
            (
                "The exchange refuses our request (client_error: a bad symbol, parameter, \
                 path or key in the config), it is not down"
                    .to_string(),
                vec![
                    "Look at the endpoint's last outcome and the exchange's message in the \
                     detail pane"
                        .into(),
                    "Check the endpoint's symbol, path and query in the config".into(),
                ],
            )
        } else {
            (
                if down {
                    "The endpoint is mostly failing: partial outage or maintenance".into()
                } else {
                    "Intermittent errors: overloaded exchange or flaky network".into()
                },
                vec![
                    "Look at the endpoint's last outcomes in the detail pane".into(),
                    "Check the exchange's status page".into(),
                ],
            )
        };
        return Decision {
            rule: "error_rate",
            why: match rate {
                Some(r) => format!(
                    "{:.0}% of recent polls failed ({} {:.0}%)",
                    r * 100.0,
                    if down { "at or above" } else { "below" },
                    DOWN_ERROR_RATE * 100.0
                ),
                None => "errors above the threshold".into(),
            },
            escalation: if down { 4 } else { 2 },
            requires_human: down,
            summary: format!("{where_}: elevated error rate"),
            likely_cause,
            suggested_actions,
            auto_resolve: !down,
        };
    }

    if let Some(d) = super::stream_rules::decide(&a.kind, &where_) {
        return d;
    }
    if let Some(d) = super::cross_rules::decide(&a.kind, a.severity, &where_) {
        return d;
    }

    if a.kind == AlertKind::Hung {
        // The error rate (and its own rule) takes over if the requests then
        // time out; on its own a stall that cleared is a blip.
        let repeated = a.occurrences > 1;
        return Decision {
            rule: "hung",
            why: format!(
                "a request was still unanswered after {} ms{}",
                a.metrics.get("in_flight_ms").copied().unwrap_or(0.0),
                if repeated {
                    format!(", {} times", a.occurrences)
                } else {
                    String::new()
                }
            ),
            escalation: if repeated { 3 } else { 2 },
            requires_human: repeated,
            summary: format!("{where_}: requests hang"),
            likely_cause: "The exchange accepts connections but does not answer: overload, \
                           a stuck backend, or packet loss on the path"
                .into(),
            suggested_actions: vec![
                "Watch whether the requests time out next (the error-rate alert)".into(),
                "Compare with the exchange's other endpoints: one hung or all?".into(),
            ],
            auto_resolve: !repeated,
        };
    }

    if a.kind == AlertKind::Latency {
        let single = a.occurrences <= 1;
        let closed = breaker.is_none_or(|b| b == BreakerState::Closed);
        if single && closed {
            return Decision {
                rule: "latency_spike",
                why: "a single latency spike with the breaker closed".into(),
                escalation: 1,
                requires_human: false,
                summary: format!("{where_}: one slow response"),
                likely_cause: "A transient slowdown at the exchange or on the network path".into(),
                suggested_actions: vec!["None unless it repeats".into()],
                auto_resolve: true,
            };
        }
        let sustained = a.occurrences >= 5 || a.severity >= Severity::Critical;
        return Decision {
            rule: "latency_repeated",
            why: format!(
                "latency anomaly fired {} times{}",
                a.occurrences,
                if closed {
                    ""
                } else {
                    " and the breaker is not closed"
                }
            ),
            escalation: if sustained { 3 } else { 2 },
            requires_human: sustained,
            summary: format!("{where_}: sustained high latency"),
            likely_cause: "The exchange is under load (volatility) or the network path degraded"
                .into(),
            suggested_actions: vec![
                "Compare with other endpoints of the exchange: one slow endpoint or all?".into(),
                "Warn trading systems that quotes may arrive late".into(),
            ],
            auto_resolve: false,
        };
    }

    let (escalation, requires_human) = match a.severity {
        Severity::Info => (1, false),
        Severity::Warning => (2, false),
        Severity::Critical => (4, true),
        Severity::Emergency => (5, true),
    };
    Decision {
        rule: "severity",
        why: format!(
            "no rule for kind \"{}\"; escalation follows severity {}",
            a.kind,
            a.severity.as_str()
        ),
        escalation,
        requires_human,
        // Detector titles already start with where it happened.
        summary: if a.title.starts_with(where_.as_str()) {
            a.title.clone()
        } else {
            format!("{where_}: {}", a.title)
        },
        likely_cause: "Unknown; see the alert's description and metrics".into(),
        suggested_actions: vec!["Read the alert's description and the endpoint's detail".into()],
        auto_resolve: false,
    }
}

/// The outcome class an error-rate alert counted most (`class_<name>`
/// metrics), if it counted any.
fn dominant_class(a: &super::context::AlertFacts) -> Option<&str> {
    a.metrics
        .iter()
        .filter_map(|(k, v)| k.strip_prefix("class_").map(|c| (c, *v)))
        .filter(|(_, v)| *v > 0.0)
        .max_by(|x, y| x.1.total_cmp(&y.1))
        .map(|(c, _)| c)
}

/// Whether an error-rate alert is about a CDN's block: the endpoint's last
/// poll was blocked, or blocked polls are the most frequent failure the
/// alert counted (`class_blocked`).
fn blocked(ctx: &AlertContext) -> bool {
    let last = ctx
        .endpoint
        .as_ref()
        .and_then(|e| e.last_outcome.as_deref());
    if last == Some("blocked") {
        return true;
    }
    let m = &ctx.alert.metrics;
    let n = m.get("class_blocked").copied().unwrap_or(0.0);
    n > 0.0
        && m.iter()
            .filter(|(k, _)| k.starts_with("class_") && *k != "class_blocked")
            .all(|(_, v)| *v <= n)
}

fn stale(ctx: &AlertContext, where_: &str, what: &str) -> Decision {
    let a = &ctx.alert;
    let critical = a.severity >= Severity::Critical;
    Decision {
        rule: "stale_data",
        why: format!(
            "market data is {what}{}",
            if critical { " (critical)" } else { "" }
        ),
        escalation: if critical { 4 } else { 3 },
        requires_human: true,
        summary: format!("{where_}: market data is {what}"),
        likely_cause: "The exchange's matching engine or market-data service stopped updating, \
                       or its clock drifted"
            .into(),
        suggested_actions: vec![
            "Tell the trading desk: prices from this feed may be old".into(),
            "Compare the exchange timestamp with the clock offset in the detail pane".into(),
        ],
        auto_resolve: false,
    }
}
