//! Shared backends (Redis for the limiter and the breaker, the journal):
//! healthy or degraded, from the snapshot.

use super::{GaugeFamily, Registrar, SnapshotGauges};
use crate::state::Snapshot;
use prometheus_client::encoding::DescriptorEncoder;

/// `exwatch_backend_up`: 1 if the backend is healthy, 0 if degraded; one
/// series per backend that has reported its health (none with in-memory
/// backends).
#[derive(Debug)]
pub(super) struct Backends;

impl Backends {
    /// Register the backend gauge, read from the snapshot. No event drives it.
    pub(super) fn register(r: &mut Registrar) {
        r.gauges(Backends);
    }
}

impl SnapshotGauges for Backends {
    fn encode(
        &self,
        snap: &Snapshot,
        _now_ms: i64,
        encoder: &mut DescriptorEncoder,
    ) -> Result<(), std::fmt::Error> {
        let mut up = GaugeFamily::new(
            encoder,
            "exwatch_backend_up",
            "1 if the shared backend is healthy, 0 if degraded (component: redis_limiter, redis_breaker, redis_dedup, journal; absent while all is in memory and the journal is fine)",
            None,
        );
        for h in &snap.health {
            up.series(&[("component", h.component.name())], i64::from(h.healthy))?;
        }
        Ok(())
    }
}
