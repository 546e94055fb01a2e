//! Builds the sinks, the dedup store and the notifier from the config.

use crate::alert::dedup::{Claims, DedupBackend, RedisClaims};
use crate::alert::notify::{self, AlertSender};
use crate::alert::sinks::{self, SinkError};
use crate::config::Config;
use crate::model::Event;
use crate::redis_link::{LinkHealth, RedisLink};
use std::sync::Arc;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error(transparent)]
    Sink(#[from] SinkError),
    #[error("alerts.dedup.backend = \"redis\" needs a [redis] table")]
    NoRedis,
}

/// What [`start`] gives back: where to send every `Alert` of every
/// `Event::AlertChanged` (after journaling it), and the dedup store's health
/// when it is shared in Redis.
pub struct Notifying {
    pub alerts: AlertSender,
    pub dedup_health: Option<watch::Receiver<LinkHealth>>,
}

/// Start the sinks and the notifier. Delivery state comes back on `events` as
/// `Event::AlertDelivery`. Dedup uses `link` (the supervisor's one Redis link)
/// when `alerts.dedup.backend = "redis"`. The tasks stop on `shutdown`.
pub fn start(
    cfg: &Config,
    link: Option<RedisLink>,
    events: mpsc::Sender<Event>,
    shutdown: CancellationToken,
) -> Result<Notifying, SetupError> {
    let a = &cfg.alerts;
    let mut handles = Vec::new();
    for sc in &a.sinks {
        let sink = sc.resolve()?;
        let (h, _task) = sinks::spawn(
            sink,
            cfg.instance.name.clone(),
            events.clone(),
            shutdown.clone(),
        )?;
        handles.push(h);
    }
    let mut dedup_health = None;
    let claims = match (a.dedup.backend, link) {
        (DedupBackend::Redis, Some(link)) => {
            let rc = RedisClaims::on_link(link, &cfg.instance.name);
            dedup_health = Some(rc.health());
            Claims::redis(rc, &a.dedup.key_prefix)
        }
        (DedupBackend::Redis, None) => return Err(SetupError::NoRedis),
        _ => Claims::memory(&a.dedup.key_prefix),
    };
    let (alerts, _task) = notify::spawn(
        a.grouping.clone(),
        handles,
        Arc::new(claims),
        events,
        shutdown,
    );
    Ok(Notifying {
        alerts,
        dedup_health,
    })
}
