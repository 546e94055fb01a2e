//! Backend health turned into events: [`report`], the one place where a
//! Redis-backed part's [`LinkHealth`] (rate limiter, breaker store, alert
//! dedup) becomes an `Event::BackendHealth`, worded for that part.

use crate::clock::now_ms;
use crate::limiter::OutagePolicy;
use crate::model::{Component, Event};
use crate::redis_link::LinkHealth;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

/// A Redis-backed part whose health [`report`] turns into events: which
/// [`Component`] the events name, and how their detail is worded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RedisPart {
    /// The rate limiter. `on_outage` is its configured behaviour while
    /// Redis is unreachable (`limiter.on_redis_outage`), static for the
    /// run; a degraded event's detail says which it is.
    Limiter { on_outage: OutagePolicy },
    /// The circuit-breaker store.
    Breaker,
    /// Cross-instance alert dedup.
    Dedup,
}

impl RedisPart {
    /// The component its events name.
    pub fn component(self) -> Component {
        match self {
            RedisPart::Limiter { .. } => Component::RedisLimiter,
            RedisPart::Breaker => Component::RedisBreaker,
            RedisPart::Dedup => Component::RedisDedup,
        }
    }

    /// What a `BackendHealth` event says about this part in `health`:
    /// `(healthy, detail)`, or `None` for [`LinkHealth::Local`] (a part kept
    /// local by configuration says nothing).
    pub fn describe(self, health: &LinkHealth) -> Option<(bool, String)> {
        let what = match self {
            RedisPart::Limiter { .. } => "rate-limit budget",
            RedisPart::Breaker => "breaker state",
            RedisPart::Dedup => "notification dedup",
        };
        match health {
            LinkHealth::Local => None,
            LinkHealth::Shared => Some((true, format!("{what} shared in Redis"))),
            LinkHealth::Degraded { error, .. } => Some((
                false,
                // Redis's words (and the client's) may quote its URL's password.
                match (self, crate::secrets::scrub(error)) {
                    (
                        RedisPart::Limiter {
                            on_outage: OutagePolicy::Local,
                        },
                        error,
                    ) => format!(
                        "Redis unreachable ({error}): {what} kept by this instance, on its share in memory (policy local)"
                    ),
                    (
                        RedisPart::Limiter {
                            on_outage: OutagePolicy::Closed,
                        },
                        error,
                    ) => format!(
                        "Redis unreachable ({error}): polls held until Redis answers (policy closed)"
                    ),
                    (RedisPart::Breaker, error) => format!(
                        "Redis unreachable ({error}): breakers decided from memory by this instance"
                    ),
                    (RedisPart::Dedup, error) => format!(
                        "Redis unreachable ({error}): notifications deduplicated by this instance alone (another instance may send the same)"
                    ),
                },
            )),
        }
    }
}

/// The one place a Redis-backed part's [`LinkHealth`] becomes a
/// `BackendHealth` event (the dashboard's banner, the journal, metrics,
/// headless lines): the current state at once, then every change, until
/// shutdown or until `health`'s sender is gone. A part kept local by
/// configuration ([`LinkHealth::Local`]) says nothing. `part` names the
/// component and words the detail ([`RedisPart::describe`]).
pub async fn report(
    part: RedisPart,
    mut health: watch::Receiver<LinkHealth>,
    events: mpsc::Sender<Event>,
    shutdown: CancellationToken,
) {
    loop {
        let current = health.borrow_and_update().clone();
        if let Some((healthy, detail)) = part.describe(&current) {
            let event = Event::BackendHealth {
                at_ms: now_ms(),
                component: part.component(),
                healthy,
                detail,
            };
            if events.send(event).await.is_err() {
                return;
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            changed = health.changed() => if changed.is_err() { return },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn down() -> LinkHealth {
        LinkHealth::Degraded {
            since_ms: 1,
            error: "connection refused".into(),
        }
    }

    #[test]
    fn a_redis_error_quoting_the_password_is_scrubbed() {
        // As `RedisLink::new` registers it when it reads the URL.
        crate::secrets::register("redis://app:pw-8812zzqk7@10.0.0.9:6379/0");
        let h = LinkHealth::Degraded {
            since_ms: 1,
            error: "WRONGPASS for app with pw-8812zzqk7 at 10.0.0.9:6379".into(),
        };
        let (_, detail) = RedisPart::Dedup.describe(&h).unwrap_or_default();
        assert!(!detail.contains("8812zz"), "{detail}");
        assert!(detail.contains("[redacted] at 10.0.0.9:6379"), "{detail}");
    }

    #[test]
    fn a_degraded_limiter_says_what_its_policy_does() {
        let local = RedisPart::Limiter {
            on_outage: OutagePolicy::Local,
        };
        let closed = RedisPart::Limiter {
            on_outage: OutagePolicy::Closed,
        };
        assert_eq!(
            local.describe(&down()),
            Some((
                false,
                "Redis unreachable (connection refused): rate-limit budget kept by this instance, on its share in memory (policy local)".into()
            ))
        );
        assert_eq!(
            closed.describe(&down()),
            Some((
                false,
                "Redis unreachable (connection refused): polls held until Redis answers (policy closed)".into()
            ))
        );
        for part in [local, closed] {
            assert_eq!(part.component(), Component::RedisLimiter);
            assert_eq!(
                part.describe(&LinkHealth::Shared),
                Some((true, "rate-limit budget shared in Redis".into()))
            );
            assert_eq!(part.describe(&LinkHealth::Local), None);
        }
    }

    #[test]
    fn breaker_and_dedup_wording() {
        assert_eq!(
            RedisPart::Breaker.describe(&down()),
            Some((
                false,
                "Redis unreachable (connection refused): breakers decided from memory by this instance".into()
            ))
        );
        assert_eq!(
            RedisPart::Dedup.describe(&down()),
            Some((
                false,
                "Redis unreachable (connection refused): notifications deduplicated by this instance alone (another instance may send the same)".into()
            ))
        );
        assert_eq!(
            RedisPart::Breaker.describe(&LinkHealth::Shared),
            Some((true, "breaker state shared in Redis".into()))
        );
        assert_eq!(
            RedisPart::Dedup.describe(&LinkHealth::Shared),
            Some((true, "notification dedup shared in Redis".into()))
        );
    }

    /// The memory-only limiter reports nothing, and its reporter ends at
    /// once (the health sender is gone).
    #[tokio::test]
    async fn a_memory_limiter_reports_nothing() {
        let settings = crate::limiter::LimiterSettings::default();
        let (_limiter, health) = crate::limiter::build_on_link(&settings, None)
            .await
            .expect("memory limiter");
        assert_eq!(*health.borrow(), LinkHealth::Local);
        let (tx, mut rx) = mpsc::channel(4);
        let part = RedisPart::Limiter {
            on_outage: settings.on_redis_outage,
        };
        tokio::time::timeout(
            std::time::Duration::from_secs(5),
            report(part, health, tx, CancellationToken::new()),
        )
        .await
        .expect("the reporter ends with its sender");
        assert!(rx.recv().await.is_none(), "no event");
    }
}
