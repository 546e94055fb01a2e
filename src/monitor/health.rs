//! Backend health (Redis behind the limiter) turned into events.

use crate::clock::wall_ms;
use crate::limiter::BackendHealth;
use crate::model::{Component, Event};
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
