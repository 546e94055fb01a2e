//! Wiring helper for the monitor: builds the sinks, the dedup store and the
//! notifier from the config, so `monitor.rs` needs a few lines:
//!
//! ```text
//! let mut engine = Engine::new(cfg.alerts.clone());
//! engine.restore(journal.open_alerts());
//! let notifying = alert::runtime::start(&cfg, ev_tx.clone(), shutdown.clone())?;
//! // for each event: journal.append(&ev)?; for out in engine.on_event(&ev, now) {
//! //     journal.append(&out)?; reducer.apply(&out);
//! //     if let Event::AlertChanged { alert } = &out { notifying.alerts.send(alert.clone()).await } }
//! ```

use super::dedup::{Claims, DedupBackend, RedisClaims};
use super::notify::{self, AlertSender};
use super::sinks::{self, SinkError};
use crate::config::Config;
use crate::model::Event;
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
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

/// A running notifier and its sinks.
pub struct Notifying {
    /// Send every `Alert` of every `Event::AlertChanged`, after journaling it.
    pub alerts: AlertSender,
    pub sink_names: Vec<String>,
    pub tasks: Vec<JoinHandle<()>>,
}

/// Start the sinks and the notifier. Delivery state comes back on `events`
/// as `Event::AlertDelivery`; feed those to the engine and the reducer too.
pub fn start(
    cfg: &Config,
    events: mpsc::Sender<Event>,
    shutdown: CancellationToken,
) -> Result<Notifying, SetupError> {
    let a = &cfg.alerts;
    let mut handles = Vec::new();
    let mut tasks = Vec::new();
    for sc in &a.sinks {
        let sink = sc.resolve()?;
        let (h, t) = sinks::spawn(
            sink,
            cfg.instance.name.clone(),
            events.clone(),
            shutdown.clone(),
        )?;
        handles.push(h);
        tasks.push(t);
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
    let sink_names = handles.iter().map(|h| h.name().to_string()).collect();
    let (alerts, t) = notify::spawn(
        a.grouping.clone(),
        handles,
        Arc::new(claims),
        events,
        shutdown,
    );
    tasks.push(t);
    Ok(Notifying {
        alerts,
        sink_names,
        tasks,
    })
}
