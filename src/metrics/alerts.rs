//! Alerts and their delivery: raised, sent, failed, sink health (from
//! events); open alerts and detector scores (from the snapshot).

use super::{GaugeFamily, Registrar, SnapshotGauges};
use crate::model::{AlertState, Delivery, Event, Severity};
use crate::state::Snapshot;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use std::collections::HashMap;
use strum::VariantArray;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SentLabels {
    severity: String,
    channel: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RaisedLabels {
    severity: String,
    kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DeliveryFailureLabels {
    channel: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ChannelLabels {
    channel: String,
}

/// What the area remembers of one alert, to label and de-duplicate.
#[derive(Debug, Clone)]
struct AlertSeen {
    severity: Severity,
    state: AlertState,
}

/// The event-driven families of alerts, and the little memory needed to
/// count each fact once: an alert re-sent with its whole state is not a new
/// alert, and a delivery repeated with the same send time is not a new send.
#[derive(Debug)]
pub(super) struct Alerts {
    /// `alerts_sent_total`: notifications delivered (count), by severity and sink.
    sent: Family<SentLabels, Counter>,
    /// `exwatch_alerts_raised_total`: alerts that started firing (count), by severity and kind.
    raised: Family<RaisedLabels, Counter>,
    /// `exwatch_alert_delivery_failures_total`: failed notification attempts (count), by sink and outcome.
    delivery_failures: Family<DeliveryFailureLabels, Counter>,
    /// `exwatch_sink_up`: 1 if the sink's last delivery succeeded, 0 if it failed.
    sink_up: Family<ChannelLabels, Gauge>,
    /// Fingerprint → the alert as last seen.
    seen: HashMap<String, AlertSeen>,
    /// (fingerprint, sink) → `at_ms` of the last counted send.
    sends: HashMap<(String, String), i64>,
}

impl Alerts {
    /// Register the alert families, and the gauges read from the snapshot.
    pub(super) fn new(r: &mut Registrar) -> Alerts {
        let sent = Family::<SentLabels, Counter>::default();
        r.registry.register(
            "alerts_sent",
            "Alert notifications delivered, by alert severity and sink (channel)",
            sent.clone(),
        );
        let raised = Family::<RaisedLabels, Counter>::default();
        r.registry.register(
            "exwatch_alerts_raised",
            "Alerts that started firing (new, or re-opened after being resolved)",
            raised.clone(),
        );
        let delivery_failures = Family::<DeliveryFailureLabels, Counter>::default();
        r.registry.register(
            "exwatch_alert_delivery_failures",
            "Failed notification attempts per sink (outcome: retrying, failed, unconfirmed)",
            delivery_failures.clone(),
        );
        let sink_up = Family::<ChannelLabels, Gauge>::default();
        r.registry.register(
            "exwatch_sink_up",
            "1 if the sink's last delivery succeeded, 0 if it failed",
            sink_up.clone(),
        );
        r.gauges(AlertGauges);
        Alerts {
            sent,
            raised,
            delivery_failures,
            sink_up,
            seen: HashMap::new(),
            sends: HashMap::new(),
        }
    }

    /// Count an alert that started firing (`AlertChanged`) or a delivery
    /// (`AlertDelivery`), once each.
    pub(super) fn on_event(&mut self, ev: &Event) {
        match ev {
            Event::AlertChanged { alert } => {
                let prev = self.seen.get(&alert.fingerprint);
                let opened = alert.state == AlertState::Firing
                    && prev.is_none_or(|p| p.state == AlertState::Resolved);
                if opened {
                    self.raised
                        .get_or_create(&RaisedLabels {
                            severity: alert.severity.as_str().into(),
                            kind: alert.kind.name(),
                        })
                        .inc();
                }
                self.seen.insert(
                    alert.fingerprint.clone(),
                    AlertSeen {
                        severity: alert.severity,
                        state: alert.state,
                    },
                );
            }
            Event::AlertDelivery {
                fingerprint,
                sink,
                delivery,
            } => self.on_delivery(fingerprint, sink, delivery),
            _ => {}
        }
    }

    fn on_delivery(&mut self, fingerprint: &str, sink: &str, delivery: &Delivery) {
        let channel = ChannelLabels {
            channel: sink.to_owned(),
        };
        match delivery {
            Delivery::Sent { at_ms } => {
                let key = (fingerprint.to_owned(), sink.to_owned());
                if self.sends.get(&key) != Some(at_ms) {
                    self.sends.insert(key, *at_ms);
                    let severity = self
                        .seen
                        .get(fingerprint)
                        .map(|a| a.severity.as_str())
                        .unwrap_or("unknown");
                    self.sent
                        .get_or_create(&SentLabels {
                            severity: severity.into(),
                            channel: sink.to_owned(),
                        })
                        .inc();
                }
                self.sink_up.get_or_create(&channel).set(1);
            }
            Delivery::Retrying { .. } | Delivery::Failed { .. } | Delivery::Unconfirmed { .. } => {
                self.delivery_failures
                    .get_or_create(&DeliveryFailureLabels {
                        channel: sink.to_owned(),
                        outcome: delivery.name().into(),
                    })
                    .inc();
                self.sink_up.get_or_create(&channel).set(0);
            }
            Delivery::Pending | Delivery::Suppressed { .. } => {}
        }
    }
}

/// `exwatch_alerts_open` (count per severity) and `anomaly_score`, from the
/// alerts and endpoints of the snapshot.
#[derive(Debug)]
struct AlertGauges;

impl SnapshotGauges for AlertGauges {
    fn encode(
        &self,
        snap: &Snapshot,
        _now_ms: i64,
        encoder: &mut DescriptorEncoder,
    ) -> Result<(), std::fmt::Error> {
        let mut open = GaugeFamily::new(
            encoder,
            "exwatch_alerts_open",
            "Alerts not yet resolved (firing, acknowledged or silenced)",
            None,
        );
        // Every severity has a series, so "no open alerts" is a 0 and not a gap.
        for &severity in Severity::VARIANTS {
            let n = snap
                .alerts
                .iter()
                .filter(|a| a.severity == severity && a.state.is_open())
                .count();
            open.series(
                &[("severity", severity.as_str())],
                i64::try_from(n).unwrap_or(i64::MAX),
            )?;
        }
        let mut score = GaugeFamily::new(
            encoder,
            "anomaly_score",
            "Detector score per endpoint: error_rate = share of failed recent polls (0..1); other detectors = the open alert's z_score or usage, else 1 while open and 0 once resolved",
            None,
        );
        for ex in &snap.exchanges {
            for ep in ex.rest_endpoints() {
                let labels = [
                    ("exchange", &*ex.name),
                    ("endpoint", &*ep.name),
                    ("detector", "error_rate"),
                ];
                score.series(&labels, ep.error_rate)?;
            }
        }
        for alert in &snap.alerts {
            // The error-rate score comes from every endpoint above.
            if alert.kind == "error_rate" {
                continue;
            }
            let value = if alert.state.is_open() {
                ["z_score", "usage"]
                    .iter()
                    .find_map(|k| alert.metrics.get(*k).copied())
                    .filter(|v| v.is_finite())
                    .unwrap_or(1.0)
            } else {
                0.0
            };
            let detector = alert.kind.name();
            let labels = [
                ("exchange", &*alert.exchange),
                ("endpoint", alert.endpoint.as_deref().unwrap_or("*")),
                ("detector", &*detector),
            ];
            score.series(&labels, value)?;
        }
        Ok(())
    }
}
