//! Cross-checks of prices: two sources that should agree, compared.
//!
//! | kind | alert on | fires when | severity |
//! | --- | --- | --- | --- |
//! | `stream_diverges` | the REST ticker endpoint (`binance/ticker`) | on one exchange, a stream row's mid (ticker or book) and the REST ticker's price of the same symbol, read within `max_skew` of each other, are more than `max_divergence_bps` apart for `for` | warning |
//! | `price_outlier` | `<exchange>/mid:<BASE>-<QUOTE>` (`okx/mid:BTC-USD`) | an exchange's mid is more than `outlier_bps` from the median of every exchange quoting the same market (at least three, all fresh) for `for` | warning; critical from `outlier_critical_bps` |
//!
//! **Symbols** are read by [`Pair`]: `BTCUSDT`, `BTC-USDT`, `BTC/USD`
//! (`BTC-USD` in a stream row id), Kraken's `XBTUSDT` are one pair each.
//! `stream_diverges` compares one exchange's stream and REST figures of
//! the same pair only (`BTC/USD` is not `BTC/USDT`); `price_outlier` puts
//! dollar quotes (USD, USDT, USDC) in one market (`BTC/USD`), since
//! venues' USD and USDT books stay a few basis points apart, well inside
//! `outlier_bps`.
//!
//! **Freshness.** A stream figure counts only from a live row (a book row
//! only while its book is valid) whose last data message is at most
//! `max_skew` old; its time is the status time minus that age. A REST
//! figure counts only from an answer the validator accepted (`ok`): a
//! refused one (a price jump, another instrument) already has its own
//! `payload:` alert. `stream_diverges` compares a REST answer with stream
//! figures at most `max_skew` apart in time; `price_outlier` uses figures
//! at most `max_age` old, an exchange's streams first (its REST figures
//! only when no stream is fresh), the median of them as its mid.
//!
//! **Clearing.** Fires after `for` beyond the threshold, clears after
//! `clear_for` within half of it (between the two it holds: no flapping).
//! When nothing can be compared for `forget_after` (the stream died, the
//! REST endpoint fails, fewer than three exchanges are fresh), a firing
//! check clears and a pending one starts over: its sources' own alerts
//! (`stream_zombie`, `error_rate`, `no_data`...) then say what is wrong.
//!
//! The REST endpoints' symbols are not in their events: the config gives
//! them ([`CrossSettings::rest_symbols`], filled by `config::parse`).

use super::latency::median;
use super::{Finding, Firing, Gate, Step};
use crate::clock::ms;
use crate::model::{
    AlertKind, BookState, EndpointId, Outcome, Pair, Sample, Severity, StreamState, StreamStatus,
};
use crate::problems::Problems;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

/// `[alerts.detect.cross]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CrossSettings {
    /// Turn both cross-checks off.
    pub enabled: bool,
    /// `stream_diverges`: stream mid vs REST ticker of the same symbol, in
    /// basis points of the REST price. Default 25: a healthy stream and
    /// REST ticker of one exchange differ by the spread plus what the
    /// market moved between the two reads (BTC: 1 to 3 bp a second in a
    /// normal market, and the reads are at most `max_skew` apart); a
    /// source that lies (a cache serving an old ticker, a stream stuck on
    /// a mis-built book) is usually off by far more, for far longer.
    pub max_divergence_bps: f64,
    /// `price_outlier`: an exchange's mid vs the median of the market, in
    /// basis points of the median. Default 50: major venues quote BTC
    /// within a few bp of each other, USD and USDT books within the
    /// stablecoin's basis (usually under 10 to 20 bp); 0.5% is a venue
    /// whose price nobody should trade on.
    pub outlier_bps: f64,
    /// `price_outlier` is critical from this far off. Default 300 (3%):
    /// that far from every other venue the data lies (a severity-policy
    /// "critical"), whatever the cause.
    pub outlier_critical_bps: f64,
    /// Stream and REST figures further apart in time than this are not
    /// compared, and a stream figure older than this is stale. Default
    /// 3 s: a second of market move, plus REST latency.
    #[serde(with = "humantime_serde")]
    pub max_skew: Duration,
    /// `price_outlier` uses figures at most this old. Default 10 s: two
    /// REST polls at the default 5 s interval (streams are fresher).
    #[serde(with = "humantime_serde")]
    pub max_age: Duration,
    /// A divergence must hold this long to fire. Default 20 s: four REST
    /// polls at the default interval, longer than a fast market's spike.
    #[serde(rename = "for", with = "humantime_serde")]
    pub fire_for: Duration,
    /// Within half the threshold this long to clear. Default 10 s.
    #[serde(with = "humantime_serde")]
    pub clear_for: Duration,
    /// Nothing to compare for this long: a firing check clears, a pending
    /// one starts over. Default 60 s (longer than `for`, so REST polls up
    /// to that far apart can still fire).
    #[serde(with = "humantime_serde")]
    pub forget_after: Duration,
    /// The symbol of each REST ticker endpoint, as configured (the config
    /// fills it; not a config key).
    #[serde(skip)]
    pub rest_symbols: BTreeMap<EndpointId, String>,
}

impl Default for CrossSettings {
    fn default() -> Self {
        CrossSettings {
            enabled: true,
            max_divergence_bps: 25.0,
            outlier_bps: 50.0,
            outlier_critical_bps: 300.0,
            max_skew: Duration::from_secs(3),
            max_age: Duration::from_secs(10),
            fire_for: Duration::from_secs(20),
            clear_for: Duration::from_secs(10),
            forget_after: Duration::from_secs(60),
            rest_symbols: BTreeMap::new(),
        }
    }
}

impl CrossSettings {
    /// Problems under `at` (`alerts.detect.cross`).
    pub fn validate(&self, at: &str, p: &mut Problems) {
        use crate::problems::{DAY, check_at_most, check_duration, check_positive, ms};
        for (field, d, min) in [
            ("max_skew", self.max_skew, ms(100)),
            ("max_age", self.max_age, ms(100)),
            ("for", self.fire_for, Duration::ZERO),
            ("clear_for", self.clear_for, Duration::ZERO),
            ("forget_after", self.forget_after, ms(1000)),
        ] {
            check_duration(p, &format!("{at}.{field}"), d, min, DAY);
        }
        for (field, v) in [
            ("max_divergence_bps", self.max_divergence_bps),
            ("outlier_bps", self.outlier_bps),
            ("outlier_critical_bps", self.outlier_critical_bps),
        ] {
            check_positive(p, &format!("{at}.{field}"), v);
            check_at_most(p, &format!("{at}.{field}"), v, 10_000.0);
        }
        if self.outlier_critical_bps < self.outlier_bps {
            p.push(
                format!("{at}.outlier_critical_bps"),
                "must be at least outlier_bps",
            );
        }
    }
}

/// The kinds this module raises.
pub const KINDS: [AlertKind; 2] = [AlertKind::StreamDiverges, AlertKind::PriceOutlier];

/// Whether this module raises `kind`.
pub fn raises(kind: &AlertKind) -> bool {
    KINDS.contains(kind)
}

/// One source's last usable mid.
#[derive(Debug, Clone)]
struct Quote {
    pair: Pair,
    mid: f64,
    /// When the figure was true, ms.
    at_ms: i64,
    /// How it reads in an alert (`bid 97000.1 ask 97000.3`).
    words: String,
}

/// A gate and when it was last fed a comparison.
#[derive(Debug, Clone, Default)]
struct Check {
    gate: Gate,
    last_ms: Option<i64>,
}

/// One market's fresh figures: exchange → (stream mids, REST mids).
type Sources = BTreeMap<String, (Vec<f64>, Vec<f64>)>;

/// Both cross-checks, over every exchange.
#[derive(Debug, Clone)]
pub struct CrossDetector {
    s: CrossSettings,
    /// Stream subscription rows' last fresh figures.
    streams: BTreeMap<EndpointId, Quote>,
    /// REST tickers' last accepted figures.
    rest: BTreeMap<EndpointId, Quote>,
    /// Keyed by the alert's kind and (exchange, endpoint).
    checks: BTreeMap<(AlertKind, EndpointId), Check>,
}

impl CrossDetector {
    pub fn new(s: CrossSettings) -> Self {
        CrossDetector {
            s,
            streams: BTreeMap::new(),
            rest: BTreeMap::new(),
            checks: BTreeMap::new(),
        }
    }

    /// Take back an alert restored after a restart; false if not a kind of
    /// this module.
    pub fn assume_firing(&mut self, kind: &AlertKind, exchange: &str, endpoint: &str) -> bool {
        if !raises(kind) {
            return false;
        }
        let key = (kind.clone(), EndpointId::new(exchange, endpoint));
        self.checks.entry(key).or_default().gate.assume_firing();
        true
    }

    /// A stream row's status: keep its figure while it is fresh.
    pub fn on_status(&mut self, st: &StreamStatus) {
        if !self.s.enabled {
            return;
        }
        match self.stream_quote(st) {
            Some(q) => {
                self.streams.insert(st.id.clone(), q);
            }
            None => {
                self.streams.remove(&st.id);
            }
        }
    }

    fn stream_quote(&self, st: &StreamStatus) -> Option<Quote> {
        let rest = st.id.endpoint.strip_prefix("ws:")?;
        let (_feed, symbol) = rest.split_once(':')?;
        let pair = Pair::parse(symbol)?;
        let book_ok = st.book.is_none_or(|b| b == BookState::Valid);
        let age = st.age_ms?;
        if st.state != StreamState::Live || !book_ok || age > ms(self.s.max_skew) {
            return None;
        }
        let bid: f64 = st.bid.as_deref()?.parse().ok()?;
        let ask: f64 = st.ask.as_deref()?.parse().ok()?;
        if !(bid.is_finite() && ask.is_finite() && bid > 0.0 && ask >= bid) {
            return None;
        }
        Some(Quote {
            pair,
            mid: (bid + ask) / 2.0,
            at_ms: st.at_ms - age,
            words: format!(
                "bid {} ask {}",
                st.bid.as_deref().unwrap_or("-"),
                st.ask.as_deref().unwrap_or("-")
            ),
        })
    }

    /// A REST answer: keep a ticker's accepted price and compare it with
    /// the exchange's streams of the same symbol.
    pub fn on_sample(&mut self, s: &Sample) -> Vec<Finding> {
        if !self.s.enabled {
            return Vec::new();
        }
        let Some(symbol) = self.s.rest_symbols.get(&s.id) else {
            return Vec::new();
        };
        let (Some(pair), Outcome::Ok, Some(price)) = (Pair::parse(symbol), &s.outcome, s.price)
        else {
            self.rest.remove(&s.id);
            return Vec::new();
        };
        if !(price.is_finite() && price > 0.0) {
            self.rest.remove(&s.id);
            return Vec::new();
        }
        let skew = ms(self.s.max_skew);
        // The stream row furthest from the REST price among the fresh ones.
        let worst = self
            .streams
            .iter()
            .filter(|(id, q)| {
                id.exchange == s.id.exchange && q.pair == pair && (q.at_ms - s.at_ms).abs() <= skew
            })
            .map(|(id, q)| (bps(q.mid, price), id, q))
            .max_by(|a, b| a.0.total_cmp(&b.0));
        let rest_words = format!("{price}");
        self.rest.insert(
            s.id.clone(),
            Quote {
                pair: pair.clone(),
                mid: price,
                at_ms: s.at_ms,
                words: rest_words,
            },
        );
        let Some((div, row, q)) = worst else {
            return Vec::new();
        };
        let max = self.s.max_divergence_bps;
        let title = format!(
            "{} {}: stream {} mid {} vs REST {} {} ({div:.1} bp apart)",
            s.id.exchange,
            pair,
            row.endpoint,
            fmt_price(q.mid),
            s.id.endpoint,
            fmt_price(price),
        );
        let description = format!(
            "On {ex}, the stream row {row} ({words}, mid {mid}) and the REST endpoint {rest} \
             (price {price}) quote {pair} {div:.1} bp apart, read within {skew_s:.1} s of each \
             other (threshold {max} bp for {for_s} s): one of the two is lying. Look at \
             price_outlier and the other exchanges to tell which.",
            ex = s.id.exchange,
            row = row.endpoint,
            words = q.words,
            mid = fmt_price(q.mid),
            rest = s.id.endpoint,
            price = fmt_price(price),
            skew_s = (q.at_ms - s.at_ms).abs() as f64 / 1000.0,
            for_s = self.s.fire_for.as_secs(),
        );
        let mut metrics = BTreeMap::new();
        metrics.insert("divergence_bps".into(), div);
        metrics.insert("stream_mid".into(), q.mid);
        metrics.insert("rest_price".into(), price);
        let firing = Firing {
            exchange: s.id.exchange.clone(),
            endpoint: Some(s.id.endpoint.clone()),
            kind: AlertKind::StreamDiverges,
            severity: Severity::Warning,
            title,
            description,
            metrics,
        };
        self.step(firing, div > max, div <= max / 2.0, s.at_ms)
            .into_iter()
            .collect()
    }

    /// Feed one comparison to its check's gate.
    fn step(&mut self, f: Firing, bad: bool, good: bool, now_ms: i64) -> Option<Finding> {
        let id = EndpointId::new(&f.exchange, f.endpoint.as_deref().unwrap_or("*"));
        let check = self.checks.entry((f.kind.clone(), id)).or_default();
        check.last_ms = Some(now_ms);
        let (fire_for, clear_for) = (ms(self.s.fire_for), ms(self.s.clear_for));
        match check.gate.step(bad, good, now_ms, fire_for, clear_for) {
            Step::Fired | Step::Firing => Some(Finding::Firing(f)),
            Step::Cleared => Some(Finding::Cleared {
                exchange: f.exchange,
                endpoint: f.endpoint,
                kind: f.kind,
            }),
            Step::Quiet => None,
        }
    }

    /// Once a second: the outlier check over every market, and checks
    /// with nothing to compare for `forget_after` forgotten.
    pub fn tick(&mut self, now_ms: i64) -> Vec<Finding> {
        if !self.s.enabled {
            return Vec::new();
        }
        let mut out = self.outliers(now_ms);
        let forget = ms(self.s.forget_after);
        for ((kind, id), check) in self.checks.iter_mut() {
            let last = *check.last_ms.get_or_insert(now_ms);
            if now_ms - last < forget {
                continue;
            }
            if check.gate.is_firing() {
                out.push(Finding::Cleared {
                    exchange: id.exchange.clone(),
                    endpoint: Some(id.endpoint.clone()),
                    kind: kind.clone(),
                });
            }
            check.gate.reset();
            check.last_ms = Some(now_ms);
        }
        out
    }

    /// Each exchange's mid per market (streams first, REST when no stream
    /// is fresh), then each against the market's median.
    fn outliers(&mut self, now_ms: i64) -> Vec<Finding> {
        let oldest = now_ms - ms(self.s.max_age);
        let mut markets: BTreeMap<String, Sources> = BTreeMap::new();
        for (from_stream, map) in [(true, &self.streams), (false, &self.rest)] {
            for (id, q) in map.iter().filter(|(_, q)| q.at_ms >= oldest) {
                let e = markets
                    .entry(q.pair.market())
                    .or_default()
                    .entry(id.exchange.clone())
                    .or_default();
                if from_stream { &mut e.0 } else { &mut e.1 }.push(q.mid);
            }
        }
        let mut out = Vec::new();
        for (market, exchanges) in markets {
            let mids: Vec<(String, f64)> = exchanges
                .into_iter()
                .filter_map(|(ex, (streamed, polled))| {
                    let m = if streamed.is_empty() {
                        median(&polled)
                    } else {
                        median(&streamed)
                    };
                    Some((ex, m?))
                })
                .collect();
            // With two others, "the median of the others" would be their
            // mean, which one liar drags: the median of all, from three.
            if mids.len() < 3 {
                continue;
            }
            let all: Vec<f64> = mids.iter().map(|m| m.1).collect();
            let Some(reference) = median(&all) else {
                continue;
            };
            let others = mids
                .iter()
                .map(|(ex, m)| format!("{ex} {}", fmt_price(*m)))
                .collect::<Vec<_>>()
                .join(", ");
            for (ex, mid) in &mids {
                let dev = bps(*mid, reference);
                out.extend(self.outlier(ex, &market, *mid, reference, dev, &others, now_ms));
            }
        }
        out
    }

    #[allow(clippy::too_many_arguments)]
    fn outlier(
        &mut self,
        exchange: &str,
        market: &str,
        mid: f64,
        reference: f64,
        dev: f64,
        all: &str,
        now_ms: i64,
    ) -> Option<Finding> {
        let (warn, crit) = (self.s.outlier_bps, self.s.outlier_critical_bps);
        let severity = if dev >= crit {
            Severity::Critical
        } else {
            Severity::Warning
        };
        let side = if mid > reference { "above" } else { "below" };
        let mut metrics = BTreeMap::new();
        metrics.insert("deviation_bps".into(), dev);
        metrics.insert("mid".into(), mid);
        metrics.insert("median".into(), reference);
        let f = Firing {
            exchange: exchange.to_string(),
            endpoint: Some(format!("mid:{}", market.replace('/', "-"))),
            kind: AlertKind::PriceOutlier,
            severity,
            title: format!(
                "{exchange} {market}: mid {} is {dev:.1} bp {side} the market's median {}",
                fmt_price(mid),
                fmt_price(reference)
            ),
            description: format!(
                "{exchange}'s mid for {market} departs from the median of every exchange \
                 quoting it by {dev:.1} bp (threshold {warn} bp, critical from {crit} bp, for \
                 {for_s} s). Mids: {all}. If this exchange's stream and REST agree \
                 (no stream_diverges), the exchange itself is off the market.",
                for_s = self.s.fire_for.as_secs(),
            ),
            metrics,
        };
        self.step(f, dev > warn, dev <= warn / 2.0, now_ms)
    }
}

/// How far `a` is from `reference`, in basis points of `reference`.
fn bps(a: f64, reference: f64) -> f64 {
    ((a - reference) / reference).abs() * 10_000.0
}

/// A price as alerts show it: two decimals, fewer digits lost than `{}`
/// of a mid would show.
fn fmt_price(p: f64) -> String {
    if p >= 1.0 {
        format!("{p:.2}")
    } else {
        format!("{p:.6}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::testutil::{cleared, fired};

    fn settings() -> CrossSettings {
        let mut s = CrossSettings::default();
        for (ex, sym) in [
            ("binance", "BTCUSDT"),
            ("okx", "BTC-USDT"),
            ("kraken", "XBTUSDT"),
            ("coinbase", "BTC-USD"),
        ] {
            s.rest_symbols
                .insert(EndpointId::new(ex, "ticker"), sym.to_string());
        }
        s
    }

    fn status(ex: &str, row: &str, at_ms: i64, mid: f64) -> StreamStatus {
        StreamStatus {
            id: EndpointId::new(ex, row),
            connection: format!("{ex}-ws"),
            at_ms,
            state: StreamState::Live,
            expected: false,
            age_ms: Some(100),
            threshold_ms: 30_000,
            msgs_per_s: 10.0,
            messages: 100,
            lag_p50_ms: None,
            lag_p99_ms: None,
            gaps: 0,
            resyncs: 0,
            reconnects: 0,
            storm: None,
            book: row.starts_with("ws:book").then_some(BookState::Valid),
            bid: Some(format!("{:.1}", mid - 0.1)),
            ask: Some(format!("{:.1}", mid + 0.1)),
            crossed: None,
            connection_wide: false,
            detail: String::new(),
        }
    }

    fn rest(ex: &str, at_ms: i64, price: f64) -> Sample {
        let mut s = crate::detect::testutil::sample(at_ms, 20, Outcome::Ok);
        s.id = EndpointId::new(ex, "ticker");
        s.price = Some(price);
        s
    }

    /// One second of binance: its book stream at `stream`, its REST ticker at `polled`.
    fn second(d: &mut CrossDetector, t: i64, stream: f64, polled: f64) -> Vec<Finding> {
        d.on_status(&status("binance", "ws:book:BTCUSDT", t, stream));
        let mut out = d.on_sample(&rest("binance", t, polled));
        out.extend(d.tick(t));
        out
    }

    #[test]
    fn a_stream_that_stays_off_its_rest_ticker_fires_after_for_and_clears() {
        let mut d = CrossDetector::new(settings());
        // Agreeing: nothing.
        for t in 0..30 {
            assert!(second(&mut d, t * 1000, 97_000.0, 97_001.0).is_empty());
        }
        // 1% off from 30 s: quiet for `for` (20 s), then fires.
        for t in 30..50 {
            let f = second(&mut d, t * 1000, 97_970.0, 97_000.0);
            assert!(!fired(&f, AlertKind::StreamDiverges), "at {t}");
        }
        let f = second(&mut d, 50_000, 97_970.0, 97_000.0);
        assert!(fired(&f, AlertKind::StreamDiverges), "{f:?}");
        let Some(Finding::Firing(x)) = f.first() else {
            panic!("{f:?}")
        };
        assert_eq!(x.endpoint.as_deref(), Some("ticker"));
        assert_eq!(x.severity, Severity::Warning);
        assert!(
            x.title.contains("97970.00") && x.title.contains("97000.00"),
            "{}",
            x.title
        );
        assert!(x.title.contains("ws:book:BTCUSDT"), "{}", x.title);
        // Between the thresholds (20 bp, over half of 25): holds, no clear.
        for t in 51..80 {
            let f = second(&mut d, t * 1000, 97_194.0, 97_000.0);
            assert!(fired(&f, AlertKind::StreamDiverges), "at {t}");
        }
        // Agreeing again: clears after clear_for (10 s), once.
        let mut clears = 0;
        for t in 80..100 {
            let f = second(&mut d, t * 1000, 97_000.0, 97_000.0);
            clears += usize::from(cleared(&f, AlertKind::StreamDiverges));
        }
        assert_eq!(clears, 1);
    }

    #[test]
    fn a_divergence_that_flickers_never_fires() {
        let mut d = CrossDetector::new(settings());
        for t in 0..200 {
            let off = if t % 10 < 5 { 97_970.0 } else { 97_000.0 };
            let f = second(&mut d, t * 1000, off, 97_000.0);
            assert!(!fired(&f, AlertKind::StreamDiverges), "at {t}");
        }
    }

    #[test]
    fn stale_or_broken_figures_are_not_compared() {
        let mut d = CrossDetector::new(settings());
        for t in 0..60 {
            let now = t * 1000;
            // A stream figure 5 s old, a zombie row, an invalid book, a
            // refused REST answer: none is compared.
            let old = StreamStatus {
                age_ms: Some(5_000),
                ..status("binance", "ws:ticker:BTCUSDT", now, 99_000.0)
            };
            let zombie = StreamStatus {
                state: StreamState::Zombie,
                ..status("binance", "ws:book:BTCUSDT", now, 99_000.0)
            };
            let invalid = StreamStatus {
                book: Some(BookState::Invalid),
                ..status("binance", "ws:book:BTCUSDT", now, 99_000.0)
            };
            d.on_status(&old);
            d.on_status(if t % 2 == 0 { &zombie } else { &invalid });
            let mut f = d.on_sample(&rest("binance", now, 97_000.0));
            let mut refused = rest("binance", now + 500, 150_000.0);
            refused.outcome = Outcome::Invalid {
                reason: crate::model::InvalidReason::PriceJump {
                    from: 97_000.0,
                    to: 150_000.0,
                    pct: 54.0,
                },
            };
            d.on_status(&status("binance", "ws:book:BTCUSDT", now + 500, 97_000.0));
            f.extend(d.on_sample(&refused));
            d.on_status(&invalid);
            f.extend(d.tick(now + 900));
            assert!(f.is_empty(), "at {t}: {f:?}");
        }
        // A REST answer 5 s away from the stream's figure is not compared either.
        let mut d = CrossDetector::new(settings());
        for t in 0..60 {
            d.on_status(&status("binance", "ws:book:BTCUSDT", t * 10_000, 99_000.0));
            let f = d.on_sample(&rest("binance", t * 10_000 + 5_000, 97_000.0));
            assert!(f.is_empty(), "at {t}: {f:?}");
        }
    }

    #[test]
    fn a_firing_check_with_nothing_left_to_compare_clears_after_forget_after() {
        let mut d = CrossDetector::new(settings());
        let mut fired_at = None;
        for t in 0..40 {
            if fired(
                &second(&mut d, t * 1000, 98_000.0, 97_000.0),
                AlertKind::StreamDiverges,
            ) {
                fired_at.get_or_insert(t);
            }
        }
        assert_eq!(fired_at, Some(20));
        // The stream dies: nothing to compare.
        let mut clears = Vec::new();
        for t in 40..120 {
            let f = d.tick(t * 1000);
            if cleared(&f, AlertKind::StreamDiverges) {
                clears.push(t);
            }
        }
        assert_eq!(clears, [99]);
    }

    #[test]
    fn symbols_are_normalised_and_others_are_not_compared() {
        let mut d = CrossDetector::new(settings());
        for t in 0..40 {
            let now = t * 1000;
            // Kraken: REST XBTUSDT, stream BTC/USDT (row BTC-USDT): compared.
            d.on_status(&status("kraken", "ws:ticker:BTC-USDT", now, 98_000.0));
            // Another symbol and another exchange: not compared.
            d.on_status(&status("okx", "ws:book:ETH-USDT", now, 3_000.0));
            d.on_status(&status("binance", "ws:book:BTCUSDT", now, 50_000.0));
            let mut f = d.on_sample(&rest("kraken", now, 97_000.0));
            f.extend(d.on_sample(&rest("okx", now, 97_000.0)));
            if t == 20 {
                assert!(fired(&f, AlertKind::StreamDiverges), "{f:?}");
                let Some(Finding::Firing(x)) = f.first() else {
                    panic!()
                };
                assert_eq!(x.exchange, "kraken");
                assert!(x.title.contains("BTC/USDT"), "{}", x.title);
            }
            assert!(
                f.iter().all(|x| match x {
                    Finding::Firing(x) => x.exchange == "kraken",
                    _ => true,
                }),
                "{f:?}"
            );
        }
    }

    /// One second of a market: each exchange's book stream at its mid.
    fn market(d: &mut CrossDetector, t: i64, mids: &[(&str, &str, f64)]) -> Vec<Finding> {
        for (ex, row, mid) in mids {
            d.on_status(&status(ex, row, t, *mid));
        }
        d.tick(t)
    }

    #[test]
    fn an_exchange_off_the_market_median_is_an_outlier() {
        let mut d = CrossDetector::new(settings());
        let healthy = |okx: f64| {
            [
                ("binance", "ws:book:BTCUSDT", 97_000.0),
                ("coinbase", "ws:book:BTC-USD", 96_985.0),
                ("kraken", "ws:book:BTC-USDT", 97_010.0),
                ("okx", "ws:book:BTC-USDT", okx),
            ]
        };
        for t in 0..60 {
            let f = market(&mut d, t * 1000, &healthy(97_004.0));
            assert!(f.is_empty(), "{f:?}");
        }
        // OKX 1% above from 60 s: fires at 80 s, only OKX.
        let mut fired_at = Vec::new();
        for t in 60..90 {
            let f = market(&mut d, t * 1000, &healthy(97_970.0));
            for x in &f {
                let Finding::Firing(x) = x else {
                    panic!("{x:?}")
                };
                assert_eq!(x.exchange, "okx");
                assert_eq!(x.endpoint.as_deref(), Some("mid:BTC-USD"));
                assert_eq!(x.severity, Severity::Warning);
                fired_at.push(t);
            }
        }
        assert_eq!(fired_at.first(), Some(&80));
        // 5% off: critical.
        let f = market(&mut d, 90_000, &healthy(101_850.0));
        let Some(Finding::Firing(x)) = f.first() else {
            panic!("{f:?}")
        };
        assert_eq!(x.severity, Severity::Critical);
        assert!(x.title.contains("above"), "{}", x.title);
        // Only two exchanges left: the others' figures are stale after
        // max_age (10 s, from 100 s), then nothing is compared and the
        // alert clears 60 s after the last comparison (99 s).
        let mut clears = Vec::new();
        for t in 91..200 {
            let f = market(
                &mut d,
                t * 1000,
                &[
                    ("binance", "ws:book:BTCUSDT", 97_000.0),
                    ("okx", "ws:book:BTC-USDT", 101_850.0),
                ],
            );
            if cleared(&f, AlertKind::PriceOutlier) {
                clears.push(t);
            }
            assert!(t < 100 || !fired(&f, AlertKind::PriceOutlier), "at {t}");
        }
        assert_eq!(clears, [159]);
    }

    #[test]
    fn streams_first_rest_when_no_stream_is_fresh() {
        let mut d = CrossDetector::new(settings());
        for t in 0..40 {
            let now = t * 1000;
            // binance's REST lies but its stream is fresh: not an outlier.
            d.on_sample(&rest("binance", now, 99_000.0));
            // coinbase has only REST: its REST is its mid.
            d.on_sample(&rest("coinbase", now, 97_010.0));
            let f = market(
                &mut d,
                now,
                &[
                    ("binance", "ws:book:BTCUSDT", 97_000.0),
                    ("kraken", "ws:book:BTC-USDT", 97_005.0),
                ],
            );
            assert!(!fired(&f, AlertKind::PriceOutlier), "at {t}: {f:?}");
        }
    }

    #[test]
    fn restored_alerts_are_taken_back() {
        let mut d = CrossDetector::new(settings());
        assert!(d.assume_firing(&AlertKind::StreamDiverges, "binance", "ticker"));
        assert!(!d.assume_firing(&AlertKind::StreamZombie, "binance", "ticker"));
        let f = second(&mut d, 0, 97_000.0, 97_000.0);
        assert!(fired(&f, AlertKind::StreamDiverges), "{f:?}");
        let mut f = Vec::new();
        for t in 1..=10 {
            f = second(&mut d, t * 1000, 97_000.0, 97_000.0);
        }
        assert!(cleared(&f, AlertKind::StreamDiverges), "{f:?}");
    }

    #[test]
    fn settings_validate() {
        let mut p = Problems::default();
        CrossSettings::default().validate("c", &mut p);
        assert!(p.0.is_empty());
        let bad = CrossSettings {
            outlier_critical_bps: 10.0,
            max_divergence_bps: -1.0,
            ..CrossSettings::default()
        };
        bad.validate("c", &mut p);
        let paths: Vec<&str> = p.0.iter().map(|x| x.0.as_str()).collect();
        assert_eq!(paths, ["c.max_divergence_bps", "c.outlier_critical_bps"]);
    }
}
