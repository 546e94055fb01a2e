//! WebSocket streams: data messages, book gaps and resyncs, disconnects
//! (counters, from events); state, data age, message rate, lag and book
//! validity per stream row (gauges, from the snapshot). `stream` is the
//! row's name (`binance-ws` for a connection, `ws:book:BTCUSDT` for a
//! subscription).

use super::{GaugeFamily, Registrar, SnapshotGauges};
use crate::model::{BookState, Event, StreamNoteKind, StreamState};
use crate::state::Snapshot;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Unit;
use std::collections::HashMap;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StreamLabels {
    exchange: String,
    stream: String,
}

/// The event-driven stream families.
#[derive(Debug)]
pub(super) struct Streams {
    /// `exwatch_stream_messages_total`: data messages (subscription rows) or frames (connection rows).
    messages: Family<StreamLabels, Counter>,
    /// `exwatch_stream_book_gaps_total`: books found broken (gap, checksum, dropped messages).
    gaps: Family<StreamLabels, Counter>,
    /// `exwatch_stream_book_resyncs_total`: books resynced from a snapshot.
    resyncs: Family<StreamLabels, Counter>,
    /// `exwatch_stream_disconnects_total`: drops and failed connection attempts.
    disconnects: Family<StreamLabels, Counter>,
    /// The `messages` of each row's last status, to count the difference.
    seen: HashMap<StreamLabels, u64>,
}

impl Streams {
    /// Register the stream families and gauges.
    pub(super) fn new(r: &mut Registrar) -> Streams {
        let family = |r: &mut Registrar, name: &str, help: &str| {
            let f = Family::<StreamLabels, Counter>::default();
            r.registry.register(name, help, f.clone());
            f
        };
        let messages = family(
            r,
            "exwatch_stream_messages",
            "Data messages per stream subscription, frames of any kind per stream connection",
        );
        let gaps = family(
            r,
            "exwatch_stream_book_gaps",
            "Streamed order books found broken (sequence gap, checksum mismatch, messages dropped)",
        );
        let resyncs = family(
            r,
            "exwatch_stream_book_resyncs",
            "Streamed order books resynced from a snapshot",
        );
        let disconnects = family(
            r,
            "exwatch_stream_disconnects",
            "Stream connections dropped or connection attempts failed",
        );
        r.gauges(StreamGauges);
        Streams {
            messages,
            gaps,
            resyncs,
            disconnects,
            seen: HashMap::new(),
        }
    }

    /// Count what a stream event says.
    pub(super) fn on_event(&mut self, ev: &Event) {
        match ev {
            Event::StreamStatus(st) => {
                let labels = StreamLabels {
                    exchange: st.id.exchange.clone(),
                    stream: st.id.endpoint.clone(),
                };
                let before = self.seen.insert(labels.clone(), st.messages).unwrap_or(0);
                let c = self.messages.get_or_create(&labels);
                c.inc_by(st.messages.saturating_sub(before));
            }
            Event::StreamNote(n) => {
                let labels = StreamLabels {
                    exchange: n.id.exchange.clone(),
                    stream: n.id.endpoint.clone(),
                };
                let family = match n.what {
                    StreamNoteKind::BookInvalid => &self.gaps,
                    StreamNoteKind::BookResynced => &self.resyncs,
                    StreamNoteKind::Disconnected | StreamNoteKind::ConnectFailed => {
                        &self.disconnects
                    }
                    _ => return,
                };
                family.get_or_create(&labels).inc();
            }
            _ => {}
        }
    }
}

/// Per stream row: `exwatch_stream_live`, `exwatch_stream_data_age_seconds`,
/// `exwatch_stream_messages_per_second`, `exwatch_stream_lag_seconds`
/// (quantile 0.5 and 0.99), `exwatch_stream_book_valid`,
/// `exwatch_stream_book_crossed`.
#[derive(Debug)]
struct StreamGauges;

impl SnapshotGauges for StreamGauges {
    fn encode(
        &self,
        snap: &Snapshot,
        _now_ms: i64,
        encoder: &mut DescriptorEncoder,
    ) -> Result<(), std::fmt::Error> {
        let rows = || {
            snap.exchanges.iter().flat_map(|ex| {
                ex.stream_rows().filter_map(move |ep| {
                    let st = ep.stream.as_ref()?.status.as_ref()?;
                    Some(([("exchange", &*ex.name), ("stream", &*ep.name)], st))
                })
            })
        };
        let mut live = GaugeFamily::new(
            encoder,
            "exwatch_stream_live",
            "1 while the stream row is live (data within silent_after, or frames for a connection), else 0",
            None,
        );
        for (labels, st) in rows() {
            live.series(&labels, i64::from(st.state == StreamState::Live))?;
        }
        let mut age = GaugeFamily::new(
            encoder,
            "exwatch_stream_data_age",
            "Time since the row's last data message (frame, for a connection) at its last status",
            Some(&Unit::Seconds),
        );
        for (labels, st) in rows() {
            if let Some(ms) = st.age_ms {
                age.series(&labels, ms as f64 / 1000.0)?;
            }
        }
        let mut rate = GaugeFamily::new(
            encoder,
            "exwatch_stream_messages_per_second",
            "Data messages per second over the last 10 s",
            None,
        );
        for (labels, st) in rows() {
            rate.series(&labels, st.msgs_per_s)?;
        }
        let mut lag = GaugeFamily::new(
            encoder,
            "exwatch_stream_lag",
            "Receive time minus the exchange's event time (corrected by its clock offset) over the last 60 s",
            Some(&Unit::Seconds),
        );
        for ([ex, stream], st) in rows() {
            for (q, v) in [("0.5", st.lag_p50_ms), ("0.99", st.lag_p99_ms)] {
                if let Some(ms) = v {
                    lag.series(&[ex, stream, ("quantile", q)], ms as f64 / 1000.0)?;
                }
            }
        }
        let mut book = GaugeFamily::new(
            encoder,
            "exwatch_stream_book_valid",
            "1 while a streamed order book is valid, 0 while syncing or invalid",
            None,
        );
        for (labels, st) in rows() {
            if let Some(b) = st.book {
                book.series(&labels, i64::from(b == BookState::Valid))?;
            }
        }
        let mut crossed = GaugeFamily::new(
            encoder,
            "exwatch_stream_book_crossed",
            "1 while a valid streamed order book's best bid is at or above its best ask, else 0",
            None,
        );
        for (labels, st) in rows() {
            if st.book.is_some() {
                crossed.series(&labels, i64::from(st.crossed.is_some()))?;
            }
        }
        Ok(())
    }
}
