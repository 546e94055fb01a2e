//! Builds the sinks, the dedup store and the notifier from the config.

use crate::alert::dedup::{Claims, DedupBackend, RedisClaims};
use crate::alert::notify::{self, AlertSender};
use crate::alert::sinks::{self, SinkError};
use crate::config::Config;
use crate::model::Event;
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error(transparent)]
    Sink(#[from] SinkError),
    #[error("alerts.dedup: environment variable {0} (redis.url_env) is not set")]
    RedisEnv(String),
    #[error("alerts.dedup: {0}")]
    Redis(String),
}

/// Start the sinks and the notifier; returns where to send every `Alert` of
/// every `Event::AlertChanged`, after journaling it. Delivery state comes back
/// on `events` as `Event::AlertDelivery`. The tasks stop on `shutdown`.
pub fn start(
    cfg: &Config,
    events: mpsc::Sender<Event>,
    shutdown: CancellationToken,
) -> Result<AlertSender, SetupError> {
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
    let claims = match (a.dedup.backend, &cfg.redis) {
        (DedupBackend::Redis, Some(r)) => {
            let url = std::env::var(&r.url_env)
                .ok()
                .filter(|v| !v.is_empty())
                .ok_or_else(|| SetupError::RedisEnv(r.url_env.clone()))?;
            let rc = RedisClaims::new(&url, r.timeout, &cfg.instance.name)
                .map_err(|e| SetupError::Redis(e.to_string()))?;
            Claims::redis(rc, &a.dedup.key_prefix)
        }
        _ => Claims::memory(&a.dedup.key_prefix),
    };
    let (alerts, _task) = notify::spawn(
        a.grouping.clone(),
        handles,
        Arc::new(claims),
        events,
        shutdown,
    );
    Ok(alerts)
}
