//! Instrument names across exchanges read as one pair: Binance and Bybit
//! `BTCUSDT`, OKX `BTC-USDT`, Coinbase `BTC-USD`, Kraken `XBTUSDT` (REST),
//! `XXBTZUSD` (REST result keys) and `BTC/USD` (streams, written `BTC-USD`
//! in stream row ids) are all [`Pair`]s of a base and a quote asset, so
//! the price of one symbol can be compared across sources and exchanges.

/// Quote assets recognised at the end of a symbol without a separator,
/// longest first where one ends another (`FDUSD` before `USD`). `BUSD`
/// and `TUSD` are left out on purpose: `BNBUSD` would read as `BN`/`BUSD`.
const QUOTES: [&str; 10] = [
    "FDUSD", "USDT", "USDC", "USD", "EUR", "GBP", "JPY", "TRY", "BTC", "ETH",
];

/// Quotes worth one US dollar (give or take a few basis points): prices in
/// them are comparable across exchanges (`BTC-USD` on Coinbase, `BTCUSDT`
/// on Binance).
const DOLLARS: [&str; 5] = ["USD", "USDT", "USDC", "FDUSD", "DAI"];

/// A base and a quote asset in their common names (`BTC`, not Kraken's
/// `XBT`), upper case.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Pair {
    pub base: String,
    pub quote: String,
}

impl Pair {
    /// Read a symbol in any exchange's spelling; `None` when no quote asset
    /// can be told apart (an unknown concatenated symbol).
    ///
    /// `BTCUSDT`, `btcusdt`, `BTC-USDT`, `BTC/USDT`, `BTC_USDT`, `XBTUSDT`
    /// and legacy Kraken result keys (`XXBTZUSD`) all read as
    /// `BTC`/`USDT` (or `USD`). A third part (`BTC-USDT-SWAP`) stays in
    /// the quote, so a derivative never matches the spot pair.
    pub fn parse(symbol: &str) -> Option<Pair> {
        let s = symbol.trim().to_ascii_uppercase();
        if let Some(i) = s.find(['-', '/', '_', ':']) {
            let (base, quote) = (&s[..i], &s[i + 1..]);
            if base.is_empty() || quote.is_empty() {
                return None;
            }
            return Some(Pair::new(base, quote));
        }
        // Kraken's legacy result keys: X + 3-letter base, X or Z + 3-letter quote.
        let b = s.as_bytes();
        if b.len() == 8 && b[0] == b'X' && matches!(b[4], b'X' | b'Z') {
            return Some(Pair::new(&s[1..4], &s[5..]));
        }
        QUOTES.iter().find_map(|q| {
            let base = s.strip_suffix(q)?;
            (!base.is_empty()).then(|| Pair::new(base, q))
        })
    }

    fn new(base: &str, quote: &str) -> Pair {
        Pair {
            base: alias(base).to_string(),
            quote: alias(quote).to_string(),
        }
    }

    /// The group whose prices are comparable across exchanges: the base
    /// with the quote, dollar quotes (`USD`, `USDT`, `USDC`...) as `USD`.
    /// `BTC/USD` for `BTCUSDT` and `BTC-USD` alike.
    pub fn market(&self) -> String {
        let quote = if DOLLARS.contains(&self.quote.as_str()) {
            "USD"
        } else {
            self.quote.as_str()
        };
        format!("{}/{quote}", self.base)
    }
}

impl std::fmt::Display for Pair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.base, self.quote)
    }
}

/// Kraken's (and a few others') names for common assets.
fn alias(asset: &str) -> &str {
    match asset {
        "XBT" => "BTC",
        "XDG" => "DOGE",
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Option<String> {
        Pair::parse(s).map(|p| p.to_string())
    }

    #[test]
    fn every_exchange_spelling_reads_as_one_pair() {
        for s in [
            "BTCUSDT", "btcusdt", "BTC-USDT", "BTC/USDT", "BTC_USDT", "XBTUSDT", "XBT/USDT",
        ] {
            assert_eq!(p(s).as_deref(), Some("BTC/USDT"), "{s}");
        }
        assert_eq!(p("XXBTZUSD").as_deref(), Some("BTC/USD"));
        assert_eq!(p("XETHZUSD").as_deref(), Some("ETH/USD"));
        assert_eq!(p("BTC-USD").as_deref(), Some("BTC/USD"));
        assert_eq!(p("ETHBTC").as_deref(), Some("ETH/BTC"));
        assert_eq!(p("BTCFDUSD").as_deref(), Some("BTC/FDUSD"));
        assert_eq!(p("BTC-USDT-SWAP").as_deref(), Some("BTC/USDT-SWAP"));
        assert_eq!(p("BNBUSD").as_deref(), Some("BNB/USD"));
        assert_eq!(p("WHATEVER"), None);
        assert_eq!(p("-USD"), None);
        assert_eq!(p("USDT"), None);
    }

    #[test]
    fn dollar_quotes_are_one_market() {
        let m = |s: &str| Pair::parse(s).map(|p| p.market());
        assert_eq!(m("BTCUSDT"), m("BTC-USD"));
        assert_eq!(m("XBTUSDC").as_deref(), Some("BTC/USD"));
        assert_eq!(m("BTC-EUR").as_deref(), Some("BTC/EUR"));
        assert_ne!(m("ETHUSDT"), m("BTCUSDT"));
    }
}
