//! The rule-based triage of price cross-check alerts (see `detect::cross`):
//! two sources of one price that disagree, and what to check first.

use super::decision::Decision;
use crate::model::{AlertKind, Severity};

/// The decision for a cross-check alert, `None` for any other kind.
pub fn decide(kind: &AlertKind, severity: Severity, where_: &str) -> Option<Decision> {
    let d = |rule, why: &str, escalation, summary: String, cause: &str, actions: &[&str]| {
        Some(Decision::by_escalation(
            rule, why, escalation, summary, cause, actions,
        ))
    };
    match kind {
        AlertKind::StreamDiverges => d(
            "stream_diverges",
            "the stream's best bid/ask and the REST ticker of the same symbol disagree beyond the threshold",
            3,
            format!("{where_}: stream and REST prices disagree"),
            "One of the two lies: a REST answer served from a stale cache or another \
             instrument, or a stream stuck on an old or mis-built book (a missed update \
             the sequence check could not see)",
            &[
                "Look at price_outlier and the other exchanges: the source that departs from \
                 the market is the liar",
                "Tell the desk which source to distrust; a stream reconnect rebuilds its book",
            ],
        ),
        AlertKind::PriceOutlier => {
            let critical = severity >= Severity::Critical;
            d(
                "price_outlier",
                if critical {
                    "this exchange's mid is far from every other exchange's"
                } else {
                    "this exchange's mid departs from the median of the exchanges quoting the same market"
                },
                if critical { 4 } else { 3 },
                format!("{where_}: price off the market"),
                "The exchange's feed lies (a stuck stream, a cached ticker), or the venue really \
                 trades away from the market (a halted or thin book, a stablecoin quote off its peg)",
                &[
                    "If stream_diverges fires on the same exchange, one of its sources lies: \
                     distrust it",
                    "Otherwise check the exchange's status page and book: a real dislocation \
                     is a risk for anyone quoting from it",
                ],
            )
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_cross_kind_has_a_rule_and_only_those() {
        for kind in AlertKind::SIMPLE {
            let d = decide(&kind, Severity::Warning, "okx/ticker");
            assert_eq!(
                d.is_some(),
                crate::detect::cross::raises(&kind),
                "{}",
                kind.name()
            );
            if let Some(d) = d {
                assert_eq!(d.rule, kind.name());
            }
        }
        let d = decide(
            &AlertKind::PriceOutlier,
            Severity::Critical,
            "okx/mid:BTC-USD",
        );
        assert!(d.is_some_and(|d| d.requires_human));
    }
}
