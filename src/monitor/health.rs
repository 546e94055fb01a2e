//! Backend health turned into events: [`report`] for the Redis-backed parts
//! that share [`LinkHealth`] (breaker store, alert dedup), and the limiter's
//! own health, which also carries its outage policy.

use crate::clock::wall_ms;
use crate::limiter::BackendHealth;
use crate::model::{Component, Event};
use crate::redis_link::LinkHealth;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

/// Turn the limiter backend's health changes into events (the first state too,
/// when it is not the plain in-memory backend).
pub(super) async fn watch_limiter_health(
    mut rx: watch::Receiver<BackendHealth>,
    events: mpsc::Sender<Event>,
    shutdown: CancellationToken,
) {
    let mut first = true;
    loop {
        let health = rx.borrow_and_update().clone();
        let (healthy, detail) = match &health {
            BackendHealth::Healthy { backend } => {
                (true, format!("{backend:?} backend").to_lowercase())
            }
            BackendHealth::Degraded { reason, policy } => (
                false,
                format!("{reason}; policy {policy:?}")
                    .replace("Local", "local")
                    .replace("Closed", "closed"),
            ),
        };
        let memory_only = matches!(
            health,
            BackendHealth::Healthy {
                backend: crate::limiter::LimiterBackend::Memory
            }
        );
        if !(first && memory_only) {
            let _ = events
                .send(Event::BackendHealth {
                    at_ms: wall_ms(),
                    component: Component::RedisLimiter,
                    healthy,
                    detail,
                })
                .await;
        }
        first = false;
        tokio::select! {
            changed = rx.changed() => if changed.is_err() { return },
            _ = shutdown.cancelled() => return,
        }
    }
}

/// The one place a Redis-backed part's [`LinkHealth`] becomes a
/// `BackendHealth` event (the dashboard's banner, the journal, metrics,
/// headless lines), until shutdown. A part kept local by configuration says
/// nothing. `component` says which part, and words the detail.
pub async fn report(
    component: Component,
    mut health: watch::Receiver<LinkHealth>,
    events: mpsc::Sender<Event>,
    shutdown: CancellationToken,
) {
    loop {
        let current = health.borrow_and_update().clone();
        let what = match component {
            Component::RedisBreaker => "breaker state",
            Component::RedisDedup => "notification dedup",
            Component::RedisLimiter => "rate-limit budget",
            Component::Journal => "journal",
        };
        let (healthy, detail) = match current {
            LinkHealth::Local => (true, None),
            LinkHealth::Shared => (true, Some(format!("{what} shared in Redis"))),
            LinkHealth::Degraded { error, .. } => (
                false,
                Some(match component {
                    Component::RedisBreaker => format!(
                        "Redis unreachable ({error}): breakers decided from memory by this instance"
                    ),
                    Component::RedisDedup => format!(
                        "Redis unreachable ({error}): notifications deduplicated by this instance alone (another instance may send the same)"
                    ),
                    _ => format!("Redis unreachable ({error}): {what} kept by this instance"),
                }),
            ),
        };
        if let Some(detail) = detail {
            let event = Event::BackendHealth {
                at_ms: wall_ms(),
                component,
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
