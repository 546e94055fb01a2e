//! Exact decimals for book prices and quantities.
//!
//! Exchanges send prices and quantities as decimal text (`"16493.50"`) or, in
//! Kraken's v2 protocol, as JSON numbers (`0.5666`). An `f64` is not enough
//! for either job the stream layer has: a book keyed by price needs an exact,
//! totally ordered key, and Kraken's checksum renders each number at the
//! instrument's precision, digit for digit (docs.kraken.com
//! `guides/websockets/book-checksum-v2`). [`Dec`] keeps the number as an
//! unsigned integer mantissa and a decimal scale, parsed from the text without
//! a detour through binary floating point.

use std::cmp::Ordering;
use std::fmt;

use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize, Serializer};
use serde_json::value::RawValue;

/// Most fractional digits a [`Dec`] keeps (no exchange quotes more than 18).
pub const MAX_SCALE: u8 = 18;

/// Powers of ten that fit in a `u64` (10^0 ..= 10^19).
const POW10: [u64; 20] = {
    let mut t = [1u64; 20];
    let mut i = 1;
    while i < 20 {
        t[i] = t[i - 1] * 10;
        i += 1;
    }
    t
};

/// A non-negative decimal: `mantissa / 10^scale`, normalised so the mantissa
/// has no trailing zero digit (`"16493.50"` is `1649350 / 10^2` → stored as
/// `164935 / 10^1`), which makes derived equality and hashing exact value
/// equality. Zero is `0 / 10^0`.
///
/// Limits: at most 19 significant digits (the mantissa is a `u64`) and at
/// most [`MAX_SCALE`] fractional digits; longer numbers are a parse error, not
/// a rounding.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Dec {
    mantissa: u64,
    scale: u8,
}

/// Why a text is not a [`Dec`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecError {
    /// Not digits with an optional fraction and exponent (a sign, spaces,
    /// `NaN`, a word).
    #[error("not a plain non-negative decimal")]
    Syntax,
    /// More digits than a [`Dec`] holds.
    #[error("more than 19 significant digits or 18 decimals")]
    TooLong,
}

impl Dec {
    /// Zero.
    pub const ZERO: Dec = Dec {
        mantissa: 0,
        scale: 0,
    };

    /// `mantissa / 10^scale`, normalised. `None` if `scale` > [`MAX_SCALE`].
    pub fn new(mantissa: u64, scale: u8) -> Option<Dec> {
        (scale <= MAX_SCALE).then(|| Self::normalised(mantissa, scale))
    }

    fn normalised(mut mantissa: u64, mut scale: u8) -> Dec {
        if mantissa == 0 {
            return Dec::ZERO;
        }
        while scale > 0 && mantissa % 10 == 0 {
            mantissa /= 10;
            scale -= 1;
        }
        Dec { mantissa, scale }
    }

    /// The integer mantissa (after normalisation).
    pub fn mantissa(self) -> u64 {
        self.mantissa
    }

    /// Number of fractional digits (after normalisation).
    pub fn scale(self) -> u8 {
        self.scale
    }

    /// Whether the value is zero (a quantity of zero deletes a level).
    pub fn is_zero(self) -> bool {
        self.mantissa == 0
    }

    /// Parse plain decimal text: digits with an optional fraction
    /// (`"0.5666"`, `"8477"`, `".5"` is refused), optionally in exponent
    /// notation as JSON numbers allow (`"1e-05"`, `"4.5E+2"`). A leading `-`,
    /// `+`, spaces, `NaN` or `inf` are errors.
    pub fn parse(text: &str) -> Result<Dec, DecError> {
        match Self::parse_plain(text.as_bytes()) {
            Some(d) => Ok(d),
            None => Self::parse_general(text),
        }
    }

    /// The common case, fast: digits, an optional `.` and more digits, at
    /// most 19 digits in all (leading zeros included) and [`MAX_SCALE`]
    /// decimals. `None` sends anything else (exponents, long numbers,
    /// errors) to the general path.
    #[inline]
    fn parse_plain(b: &[u8]) -> Option<Dec> {
        let n = b.len();
        let mut i = 0;
        let mut mantissa: u64 = 0;
        // 19 decimal digits always fit a u64 (10^19 - 1 < 2^64).
        if n == 0 || n > 20 {
            return None;
        }
        while i < n {
            let d = b[i].wrapping_sub(b'0');
            if d > 9 {
                break;
            }
            // Wrapping: a 20-digit text may overflow; it is refused below.
            mantissa = mantissa.wrapping_mul(10).wrapping_add(u64::from(d));
            i += 1;
        }
        let int_len = i;
        if int_len == 0 {
            return None;
        }
        let mut frac = 0usize;
        if i < n {
            if b[i] != b'.' {
                return None;
            }
            i += 1;
            let start = i;
            while i < n {
                let d = b[i].wrapping_sub(b'0');
                if d > 9 {
                    return None;
                }
                mantissa = mantissa.wrapping_mul(10).wrapping_add(u64::from(d));
                i += 1;
            }
            frac = i - start;
            if frac == 0 {
                return None;
            }
        }
        if int_len + frac > 19 || frac > usize::from(MAX_SCALE) {
            return None;
        }
        if mantissa == 0 {
            return Some(Dec::ZERO);
        }
        let mut scale = frac as u8; // <= 18, checked above
        while scale > 0 && mantissa % 10 == 0 {
            mantissa /= 10;
            scale -= 1;
        }
        Some(Dec { mantissa, scale })
    }

    fn parse_general(text: &str) -> Result<Dec, DecError> {
        let b = text.as_bytes();
        let mut i = 0;
        let mut acc = Digits::default();
        let int_start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            acc.push(b[i])?;
            i += 1;
        }
        if i == int_start {
            return Err(DecError::Syntax);
        }
        let mut frac: i32 = 0;
        if i < b.len() && b[i] == b'.' {
            i += 1;
            let start = i;
            while i < b.len() && b[i].is_ascii_digit() {
                acc.push(b[i])?;
                frac += 1;
                i += 1;
            }
            if i == start {
                return Err(DecError::Syntax);
            }
        }
        let mut exp: i32 = 0;
        if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
            i += 1;
            let neg = match b.get(i) {
                Some(b'-') => {
                    i += 1;
                    true
                }
                Some(b'+') => {
                    i += 1;
                    false
                }
                _ => false,
            };
            let start = i;
            while i < b.len() && b[i].is_ascii_digit() {
                exp = exp
                    .checked_mul(10)
                    .and_then(|e| e.checked_add(i32::from(b[i] - b'0')))
                    .filter(|e| *e < 1000)
                    .ok_or(DecError::TooLong)?;
                i += 1;
            }
            if i == start {
                return Err(DecError::Syntax);
            }
            if neg {
                exp = -exp;
            }
        }
        if i != b.len() {
            return Err(DecError::Syntax);
        }
        if acc.mantissa == 0 {
            return Ok(Dec::ZERO);
        }
        // The mantissa ends in a non-zero digit; the zeros after it only
        // shift the scale.
        let mut mantissa = acc.mantissa;
        let mut scale = frac - exp - acc.pending_zeros;
        if scale < 0 {
            let up = usize::try_from(-scale).map_err(|_| DecError::TooLong)?;
            let factor = POW10.get(up).ok_or(DecError::TooLong)?;
            mantissa = mantissa.checked_mul(*factor).ok_or(DecError::TooLong)?;
            scale = 0;
        }
        let scale = u8::try_from(scale)
            .ok()
            .filter(|s| *s <= MAX_SCALE)
            .ok_or(DecError::TooLong)?;
        Ok(Dec { mantissa, scale })
    }

    /// The value scaled to `precision` fractional digits as an integer
    /// (`0.5666` at 4 → `5666`, `0.566` at 4 → `5660`, `18097.1547` at 8 →
    /// `1809715470000`): Kraken's checksum digits, which are the number
    /// printed with `precision` decimals, the point removed and leading zeros
    /// stripped. `None` if the number has more decimals than `precision`
    /// (the instrument's precision is wrong) or the result overflows.
    pub fn scaled_to(self, precision: u8) -> Option<u64> {
        if self.scale > precision {
            return None;
        }
        let up = usize::from(precision - self.scale);
        self.mantissa.checked_mul(*POW10.get(up)?)
    }

    /// An approximate `f64`, for display and arithmetic that tolerates
    /// rounding (spreads, cross-checks). Never use it as a key.
    pub fn to_f64(self) -> f64 {
        // Exact for mantissas below 2^53; the division is correctly rounded.
        self.mantissa as f64 / 10f64.powi(i32::from(self.scale))
    }
}

/// Digits read so far: the mantissa up to its last non-zero digit, and the
/// zeros seen after it (pushed only when another non-zero digit follows, so
/// `1.000000000000000000000` does not overflow).
#[derive(Default)]
struct Digits {
    mantissa: u64,
    pending_zeros: i32,
}

impl Digits {
    fn push(&mut self, c: u8) -> Result<(), DecError> {
        let d = u64::from(c - b'0');
        if d == 0 {
            if self.mantissa != 0 {
                self.pending_zeros += 1;
            }
            return Ok(());
        }
        let shift = usize::try_from(self.pending_zeros + 1).map_err(|_| DecError::TooLong)?;
        self.mantissa = POW10
            .get(shift)
            .and_then(|p| self.mantissa.checked_mul(*p))
            .and_then(|m| m.checked_add(d))
            .ok_or(DecError::TooLong)?;
        self.pending_zeros = 0;
        Ok(())
    }
}

impl Ord for Dec {
    fn cmp(&self, other: &Self) -> Ordering {
        if self.scale == other.scale {
            return self.mantissa.cmp(&other.mantissa);
        }
        // Bring both to the larger scale in u128: 10^18 * u64::MAX < 2^128.
        let s = self.scale.max(other.scale);
        let a = u128::from(self.mantissa) * u128::from(POW10[usize::from(s - self.scale)]);
        let b = u128::from(other.mantissa) * u128::from(POW10[usize::from(s - other.scale)]);
        a.cmp(&b)
    }
}

impl PartialOrd for Dec {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for Dec {
    /// The shortest exact decimal text: `0.566`, `8477`, `0.00000304`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.scale == 0 {
            return write!(f, "{}", self.mantissa);
        }
        let p = POW10[usize::from(self.scale)];
        let width = usize::from(self.scale);
        write!(f, "{}.{:0width$}", self.mantissa / p, self.mantissa % p)
    }
}

impl fmt::Debug for Dec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl std::str::FromStr for Dec {
    type Err = DecError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Dec::parse(s)
    }
}

impl Serialize for Dec {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Dec {
    /// A JSON string holding a decimal (`"0.5666"`: Binance, Bybit, OKX,
    /// Coinbase, and [`Dec`]'s own serialisation) or a JSON integer. JSON
    /// numbers with a fraction are refused: read them with [`RawDec`], which
    /// keeps their digits.
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl de::Visitor<'_> for V {
            type Value = Dec;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a decimal string")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Dec, E> {
                Dec::parse(v).map_err(|e| E::custom(format_args!("{e}: {v:.40}")))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Dec, E> {
                Ok(Dec::normalised(v, 0))
            }
        }
        d.deserialize_any(V)
    }
}

/// A [`Dec`] read from a JSON number or string through its raw text, so
/// `36304.0847022` keeps every digit (Kraken v2 sends prices and quantities
/// as JSON numbers; an `f64` detour would not be exact). Only works with
/// `serde_json` readers of text (`from_str`, `from_slice`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawDec(pub Dec);

impl<'de> Deserialize<'de> for RawDec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw: &'de RawValue = Deserialize::deserialize(d)?;
        let text = raw.get();
        let text = text
            .strip_prefix('"')
            .and_then(|t| t.strip_suffix('"'))
            .unwrap_or(text);
        Dec::parse(text)
            .map(RawDec)
            .map_err(|e| de::Error::custom(format_args!("{e}: {text:.40}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Dec {
        Dec::parse(s).unwrap()
    }

    #[test]
    fn parses_and_normalises() {
        assert_eq!(d("16493.50"), d("16493.5"));
        assert_eq!(d("16493.50").scale(), 1);
        assert_eq!(d("8477").scale(), 0);
        assert_eq!(d("0.00000000"), Dec::ZERO);
        assert_eq!(d("000.10"), d("0.1"));
        assert_eq!(d("1e-05"), d("0.00001"));
        assert_eq!(d("4.5E+2"), d("450"));
        assert_eq!(d("1.000000000000000000000000"), d("1"));
        assert_eq!(d("0.5666").to_string(), "0.5666");
        assert_eq!(d("8477.00").to_string(), "8477");
        assert_eq!(d("0.00000304").to_string(), "0.00000304");
    }

    #[test]
    fn refuses_what_is_not_a_plain_decimal() {
        for bad in [
            "", "-1", "+1", ".5", "1.", "1e", "NaN", "inf", " 1", "1 ", "1,5", "0x10", "1.2.3",
        ] {
            assert_eq!(Dec::parse(bad), Err(DecError::Syntax), "{bad:?}");
        }
        assert_eq!(Dec::parse("123456789012345678901"), Err(DecError::TooLong));
        assert_eq!(Dec::parse("0.0000000000000000001"), Err(DecError::TooLong));
        assert_eq!(Dec::parse("1e999999"), Err(DecError::TooLong));
    }

    #[test]
    fn orders_across_scales() {
        assert!(d("8477") > d("8476.98"));
        assert!(d("0.5657") < d("0.566"));
        assert!(d("10") > d("9.999999999999999999"));
        assert_eq!(d("1.10").cmp(&d("1.1")), Ordering::Equal);
    }

    #[test]
    fn renders_at_a_precision() {
        assert_eq!(d("0.5666").scaled_to(4), Some(5666));
        assert_eq!(d("0.566").scaled_to(4), Some(5660));
        assert_eq!(d("18097.1547").scaled_to(8), Some(1_809_715_470_000));
        assert_eq!(d("0.12345").scaled_to(4), None);
    }

    #[test]
    fn deserialises_strings_and_numbers_exactly() {
        let v: Vec<RawDec> = serde_json::from_str(r#"["0.5666", 36304.0847022, 1e-05]"#).unwrap();
        let v: Vec<Dec> = v.into_iter().map(|r| r.0).collect();
        assert_eq!(v, vec![d("0.5666"), d("36304.0847022"), d("0.00001")]);
        assert!(serde_json::from_str::<RawDec>("-1").is_err());
        let v: Vec<Dec> = serde_json::from_str(r#"["0.5666", 12]"#).unwrap();
        assert_eq!(v, vec![d("0.5666"), d("12")]);
        assert!(serde_json::from_str::<Dec>("\"abc\"").is_err());
        assert!(
            serde_json::from_str::<Dec>("0.5").is_err(),
            "floats need RawDec"
        );
        assert!(serde_json::from_str::<Dec>("-1").is_err());
        assert!(serde_json::from_str::<Dec>("null").is_err());
    }

    proptest::proptest! {
        #[test]
        fn text_round_trips(m in 0u64..u64::MAX, s in 0u8..=18) {
            let x = Dec::new(m, s).unwrap();
            proptest::prop_assert_eq!(Dec::parse(&x.to_string()).unwrap(), x);
        }

        #[test]
        fn fast_and_general_paths_agree(text in "[0-9]{1,20}(\\.[0-9]{1,20})?") {
            let general = Dec::parse_general(&text);
            match Dec::parse_plain(text.as_bytes()) {
                Some(fast) => proptest::prop_assert_eq!(Ok(fast), general),
                None => proptest::prop_assert!(text.len() > 19 || general.is_err()),
            }
        }

        #[test]
        fn order_matches_u128_value(a in 0u64..1_000_000_000, sa in 0u8..10, b in 0u64..1_000_000_000, sb in 0u8..10) {
            let (x, y) = (Dec::new(a, sa).unwrap(), Dec::new(b, sb).unwrap());
            let va = u128::from(a) * 10u128.pow(u32::from(18 - sa));
            let vb = u128::from(b) * 10u128.pow(u32::from(18 - sb));
            proptest::prop_assert_eq!(x.cmp(&y), va.cmp(&vb));
            proptest::prop_assert_eq!(x == y, va == vb);
        }
    }
}
