//! The rule-based triage of WebSocket stream alerts (see `detect::stream`):
//! what each means for a trading desk and what to do first.

use super::decision::Decision;
use crate::model::AlertKind;

/// The decision for a stream alert, `None` for any other kind.
pub fn decide(kind: &AlertKind, where_: &str) -> Option<Decision> {
    let d = |rule, why: &str, escalation, summary: String, cause: &str, actions: &[&str]| {
        Some(Decision::by_escalation(
            rule, why, escalation, summary, cause, actions,
        ))
    };
    match kind {
        AlertKind::StreamZombie => d(
            "stream_zombie",
            "the subscription is acked and the socket alive, but no data arrives",
            4,
            format!("{where_}: subscribed, no market data (zombie)"),
            "The exchange's feed for this channel stalled behind a healthy connection \
             (a matching-engine or gateway fault), or the subscription was dropped server-side",
            &[
                "Tell the desk: strategies on this feed are trading on old prices",
                "Compare with the REST ticker and other exchanges: is the market moving?",
                "Reconnecting usually restores it; check the exchange's status page",
            ],
        ),
        AlertKind::StreamDead => d(
            "stream_dead",
            "the socket is open but no frame at all arrives, not even pings",
            4,
            format!("{where_}: stream socket dead"),
            "A half-open TCP connection (a NAT or load balancer dropped it) or a stuck gateway",
            &[
                "exwatch reconnects on the keepalive deadline; watch the state",
                "Check the network path from this host (other exchanges fine?)",
            ],
        ),
        AlertKind::StreamDown => d(
            "stream_down",
            "the connection is down and reconnects keep failing",
            4,
            format!("{where_}: market-data stream down"),
            "An exchange outage, an IP ban of WebSocket connections, or the network path",
            &[
                "Tell the desk: no streamed data from this exchange",
                "Check the exchange's status page and the REST rows of the same exchange",
                "Check whether this IP exceeded the connection-rate limit",
            ],
        ),
        AlertKind::StreamPlanned => d(
            "stream_planned",
            "the exchange announced the disconnect",
            1,
            format!("{where_}: planned disconnect, reconnecting"),
            "A scheduled upgrade, the 24 h connection limit or maintenance",
            &["None: exwatch reconnects and resubscribes; a page follows if it does not"],
        ),
        AlertKind::StreamRefused => d(
            "stream_refused",
            "the exchange refused or never acked the subscription",
            3,
            format!("{where_}: subscription refused"),
            "A wrong symbol or channel in the config, a delisted product, or a changed API",
            &["Check the symbol and channel against the exchange's docs and fix the config"],
        ),
        AlertKind::ReconnectStorm => d(
            "reconnect_storm",
            "the connection keeps dropping and reconnecting",
            3,
            format!("{where_}: reconnect storm"),
            "An unstable gateway, a rejected handshake, or a keepalive the exchange dislikes",
            &[
                "Look at the close codes in the journal (stream notes)",
                "Watch the connection-rate limit: a storm can get this IP banned",
            ],
        ),
        AlertKind::BookInvalid => d(
            "book_invalid",
            "the streamed order book missed an update (gap or checksum) and is being resynced",
            2,
            format!("{where_}: order book broken, resyncing"),
            "A dropped message on the exchange's side or a slow consumer; trading systems \
             with the same feed may hold a stitched book",
            &[
                "Make sure consumers of this feed rebuilt their books from a snapshot",
                "If it repeats, look for lag (slow consumer) or a faulty exchange feed",
            ],
        ),
        AlertKind::BookCrossed => d(
            "book_crossed",
            "the streamed order book is locked or crossed while every integrity check passes",
            3,
            format!("{where_}: order book crossed"),
            "The exchange's own feed is wrong (a matching or publishing fault), or a level \
             the exchange never deleted; a snapshot would carry the same data",
            &[
                "Stop trusting this exchange's book for pricing until it uncrosses",
                "Compare with the REST book and the other exchanges (price_outlier)",
            ],
        ),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_stream_kind_has_a_rule_and_only_those() {
        for kind in AlertKind::SIMPLE {
            let d = decide(&kind, "okx/okx-ws");
            assert_eq!(
                d.is_some(),
                crate::detect::stream::raises(&kind),
                "{}",
                kind.name()
            );
            if let Some(d) = d {
                assert_eq!(d.rule, kind.name());
            }
        }
    }
}
