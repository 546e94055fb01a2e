//! Where breaker state lives right now ([`BreakerHealth`]), and the task
//! that turns its changes into `BackendHealth` events ([`report_health`]).

use crate::model::{Component, Event};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

/// Where breaker state lives right now, for a banner and an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BreakerHealth {
    /// In this process, by configuration.
    Memory,
    /// Shared in Redis.
    Redis,
    /// Redis is configured but unreachable since `since_ms` (unix ms): this
    /// instance decides alone, from memory, until Redis answers again.
    Degraded { since_ms: i64, error: String },
}

/// Turn changes of the store's health into `BackendHealth` events (the
/// dashboard's banner, the journal), until shutdown. A memory store by
/// configuration says nothing.
pub async fn report_health(
    mut health: watch::Receiver<BreakerHealth>,
    events: mpsc::Sender<Event>,
    shutdown: CancellationToken,
) {
    loop {
        let current = health.borrow_and_update().clone();
        let (healthy, detail) = match current {
            BreakerHealth::Memory => (true, None),
            BreakerHealth::Redis => (true, Some("breaker state shared in Redis".to_string())),
            BreakerHealth::Degraded { error, .. } => (
                false,
                Some(format!(
                    "Redis unreachable ({error}): breakers decided from memory by this instance"
                )),
            ),
        };
        if let Some(detail) = detail {
            let event = Event::BackendHealth {
                at_ms: crate::clock::wall_ms(),
                component: Component::RedisBreaker,
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
