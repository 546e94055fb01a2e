//! Serde pieces the five protocol parsers share: array-shaped levels, "any
//! value was present" markers, ids that arrive as numbers or strings, and
//! the parse error.

use std::fmt;

use serde::de::{self, Deserializer, IgnoredAny, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};

use super::decimal::Dec;
use super::message::{Level, Side};

/// Why a frame could not be turned into messages. Never a panic: garbage,
/// truncated or unknown frames are values of this type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// Not JSON, or JSON whose fields have the wrong types.
    #[error("malformed frame: {0}")]
    Malformed(String),
    /// Valid JSON the protocol does not define (or that exwatch does not
    /// read): the text's first 80 characters.
    #[error("unknown frame: {0}")]
    Unknown(String),
    /// A known message missing a field it needs.
    #[error("{what} without {field}")]
    Missing {
        /// The message kind.
        what: &'static str,
        /// The missing field.
        field: &'static str,
    },
    /// A field whose value the protocol does not allow.
    #[error("bad {field}: {detail}")]
    Bad {
        /// The field.
        field: &'static str,
        /// What was wrong, with an excerpt of the value.
        detail: String,
    },
}

impl From<serde_json::Error> for ParseError {
    fn from(e: serde_json::Error) -> Self {
        ParseError::Malformed(e.to_string())
    }
}

/// The first 80 characters of a frame, for [`ParseError::Unknown`].
pub fn excerpt(text: &str) -> String {
    let mut s: String = text.chars().take(80).collect();
    if text.chars().nth(80).is_some() {
        s.push('…');
    }
    s
}

/// [`ParseError::Missing`].
pub fn missing(what: &'static str, field: &'static str) -> ParseError {
    ParseError::Missing { what, field }
}

/// Parse a decimal field that arrived as text.
pub fn dec(field: &'static str, text: &str) -> Result<Dec, ParseError> {
    Dec::parse(text).map_err(|e| ParseError::Bad {
        field,
        detail: format!("{e}: {}", excerpt(text)),
    })
}

/// Parse an optional decimal field; absent or `""` is `None`.
pub fn opt_dec(field: &'static str, text: Option<&str>) -> Result<Option<Dec>, ParseError> {
    match text {
        None | Some("") => Ok(None),
        Some(t) => dec(field, t).map(Some),
    }
}

/// Parse an integer field that arrived as text (OKX `ts`, `tradeId`).
pub fn int_text<T: std::str::FromStr>(field: &'static str, text: &str) -> Result<T, ParseError> {
    text.parse().map_err(|_| ParseError::Bad {
        field,
        detail: excerpt(text),
    })
}

/// An RFC 3339 time (`2022-10-19T23:28:22.061769Z`, Coinbase and Kraken) as
/// unix ms.
pub fn rfc3339_ms(field: &'static str, text: &str) -> Result<i64, ParseError> {
    let t = time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .map_err(|_| ParseError::Bad {
            field,
            detail: excerpt(text),
        })?;
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).map_err(|_| ParseError::Bad {
        field,
        detail: excerpt(text),
    })
}

/// A field that may be `null`: present at all? (`{"result": null}` is
/// Binance's subscribe ack, which `Option` cannot tell from absence.)
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Seen(pub bool);

impl<'de> Deserialize<'de> for Seen {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        IgnoredAny::deserialize(d)?;
        Ok(Seen(true))
    }
}

/// An id that arrives as a JSON number or string, kept as text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IdText(pub String);

impl<'de> Deserialize<'de> for IdText {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = IdText;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an id (number or string)")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<IdText, E> {
                Ok(IdText(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<IdText, E> {
                Ok(IdText(v.to_string()))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<IdText, E> {
                Ok(IdText(v.to_string()))
            }
        }
        d.deserialize_any(V)
    }
}

/// An integer that arrives as a JSON number or a numeric string (OKX
/// `seqId` is a number, `ts` a string; OKX `code` was a number in 2021).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlexInt(pub i64);

impl<'de> Deserialize<'de> for FlexInt {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = FlexInt;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an integer (number or string)")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<FlexInt, E> {
                i64::try_from(v)
                    .map(FlexInt)
                    .map_err(|_| E::custom("integer too large"))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<FlexInt, E> {
                Ok(FlexInt(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<FlexInt, E> {
                v.parse().map(FlexInt).map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

/// `[price, qty, ...]` level arrays (Binance, Bybit, OKX, Coinbase
/// snapshots): the first two elements, exact; any further elements (OKX's
/// deprecated `"0"` and order count) are skipped.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Levels(pub Vec<Level>);

impl<'de> Deserialize<'de> for Levels {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Levels;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an array of [price, qty] arrays")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Levels, A::Error> {
                // serde_json gives no size hint; 16 covers most deltas in one allocation.
                let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(16).min(1024));
                while let Some(ArrLevel(l)) = seq.next_element()? {
                    out.push(l);
                }
                Ok(Levels(out))
            }
        }
        d.deserialize_seq(V)
    }
}

struct ArrLevel(Level);

impl<'de> Deserialize<'de> for ArrLevel {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = ArrLevel;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a [price, qty, ...] array")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<ArrLevel, A::Error> {
                let price: Dec = seq
                    .next_element()?
                    .ok_or_else(|| de::Error::invalid_length(0, &self))?;
                let qty: Dec = seq
                    .next_element()?
                    .ok_or_else(|| de::Error::invalid_length(1, &self))?;
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(ArrLevel(Level::new(price, qty)))
            }
        }
        d.deserialize_seq(V)
    }
}

/// Coinbase `l2update` changes: `[side, price, size]` with side `buy` or
/// `sell`, split into bids and asks.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct SidedLevels {
    /// `buy` changes.
    pub bids: Vec<Level>,
    /// `sell` changes.
    pub asks: Vec<Level>,
}

impl<'de> Deserialize<'de> for SidedLevels {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = SidedLevels;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an array of [side, price, size] arrays")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<SidedLevels, A::Error> {
                let mut out = SidedLevels::default();
                while let Some(SidedLevel(side, l)) = seq.next_element()? {
                    match side {
                        Side::Buy => out.bids.push(l),
                        Side::Sell => out.asks.push(l),
                    }
                }
                Ok(out)
            }
        }
        d.deserialize_seq(V)
    }
}

struct SidedLevel(Side, Level);

impl<'de> Deserialize<'de> for SidedLevel {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = SidedLevel;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a [side, price, size] array")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<SidedLevel, A::Error> {
                let side: Side = seq
                    .next_element()?
                    .ok_or_else(|| de::Error::invalid_length(0, &self))?;
                let price: Dec = seq
                    .next_element()?
                    .ok_or_else(|| de::Error::invalid_length(1, &self))?;
                let qty: Dec = seq
                    .next_element()?
                    .ok_or_else(|| de::Error::invalid_length(2, &self))?;
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(SidedLevel(side, Level::new(price, qty)))
            }
        }
        d.deserialize_seq(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn array_levels_take_two_and_skip_the_rest() {
        let v: Levels =
            serde_json::from_str(r#"[["8476.98", "415", "0", "13"], ["1", "2"]]"#).unwrap();
        assert_eq!(v.0.len(), 2);
        assert_eq!(v.0[0].price.to_string(), "8476.98");
        assert!(serde_json::from_str::<Levels>(r#"[["1"]]"#).is_err());
        assert!(serde_json::from_str::<Levels>(r#"[["x", "1"]]"#).is_err());
    }

    #[test]
    fn sided_levels_split_by_side() {
        let v: SidedLevels =
            serde_json::from_str(r#"[["buy", "1.5", "0"], ["sell", "2", "3"]]"#).unwrap();
        assert_eq!((v.bids.len(), v.asks.len()), (1, 1));
        assert!(serde_json::from_str::<SidedLevels>(r#"[["up", "1", "1"]]"#).is_err());
    }

    #[test]
    fn flexible_ids() {
        assert_eq!(
            serde_json::from_str::<FlexInt>("\"-1\"").unwrap(),
            FlexInt(-1)
        );
        assert_eq!(serde_json::from_str::<FlexInt>("42").unwrap(), FlexInt(42));
        assert!(serde_json::from_str::<FlexInt>("true").is_err());
        assert_eq!(serde_json::from_str::<IdText>("7").unwrap().0, "7");
        assert_eq!(
            rfc3339_ms("t", "2014-11-07T08:19:28.464459Z").unwrap(),
            1_415_348_368_464
        );
    }
}
