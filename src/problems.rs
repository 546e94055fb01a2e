//! Semantic config problems and the shared checks that find them.
//!
//! Every settings type validates itself into a [`Problems`] list of
//! (field path, message); `config` then turns each path into `file:line`.
//! A leaf: it imports nothing else from the crate.

use std::time::Duration;

/// Semantic problems found after parsing: (field path, message).
#[derive(Default)]
pub struct Problems(pub Vec<(String, String)>);

impl Problems {
    pub fn push(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.0.push((path.into(), message.into()));
    }
}

/// `n` milliseconds, for the bounds of duration fields.
pub const fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// `n` seconds, for the bounds of duration fields.
pub const fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// One day.
pub const DAY: Duration = secs(24 * 3600);

/// A duration field must lie in `min..=max` (README, "Configuration",
/// lists each field's range). Too small a value would spin (`"1ns"`), too
/// large a one would overflow the millisecond clocks it is added to
/// (`"100000000000y"` wrapped into "now"). The message names both bounds
/// and the value given.
pub fn check_duration(p: &mut Problems, at: &str, d: Duration, min: Duration, max: Duration) {
    if d < min || d > max {
        let f = |d: Duration| humantime::format_duration(d).to_string();
        let lo = if min.is_zero() {
            "0s".to_string()
        } else {
            f(min)
        };
        p.push(
            at,
            format!("must be between {lo} and {}, not {}", f(max), f(d)),
        );
    }
}

/// A count or size must lie in `min..=max` (README, "Configuration").
/// Upper bounds keep memory and queues bounded (a window of samples is
/// kept per endpoint) and catch a unit mistake (`max_bytes` in bits).
pub fn check_count(p: &mut Problems, at: &str, v: u64, min: u64, max: u64) {
    if v < min || v > max {
        p.push(at, format!("must be between {min} and {max}, not {v}"));
    }
}

/// A number with a lower bound checked elsewhere must not exceed `max`
/// (a factor of 1e9 is a typo, not a setting).
pub fn check_at_most(p: &mut Problems, at: &str, v: f64, max: f64) {
    if v.is_finite() && v > max {
        p.push(at, format!("must be at most {max}, not {v}"));
    }
}

pub fn check_bucket(p: &mut Problems, at: &str, capacity: f64, refill: f64) {
    check_at_most(p, &format!("{at}.capacity"), capacity, 1e9);
    check_at_most(p, &format!("{at}.refill_per_sec"), refill, 1e9);
    if !(capacity.is_finite() && capacity >= 1.0) {
        p.push(
            format!("{at}.capacity"),
            "must be a number >= 1 (weight units)",
        );
    }
    if !(refill.is_finite() && refill > 0.0) {
        p.push(
            format!("{at}.refill_per_sec"),
            "must be a positive number of weight units per second",
        );
    }
}

/// An exchange's `base_url`: http(s), with a host, and no credentials
/// (exwatch sends unauthenticated GETs only; a `user:password@` would be
/// sent and echoed). The URL is never repeated with its credentials.
pub fn check_url(p: &mut Problems, at: &str, u: &str) {
    let shown = without_userinfo(u);
    match url::Url::parse(u) {
        Ok(url) if !url.username().is_empty() || url.password().is_some() => p.push(
            at,
            format!(
                "{shown:?} carries credentials (user:password@): exwatch only sends unauthenticated GETs; remove them"
            ),
        ),
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => {}
        Ok(_) => p.push(
            at,
            format!("{shown:?} is not an http(s) URL with a host, e.g. \"https://api.example.com\""),
        ),
        Err(e) => p.push(
            at,
            format!("{shown:?} is not a valid URL ({e}); expected e.g. \"https://api.example.com\""),
        ),
    }
}

/// `u` with anything between `://` and the last `@` of the authority
/// replaced by `***@`: safe to show even when the URL does not parse.
pub fn without_userinfo(u: &str) -> String {
    let Some(start) = u.find("://").map(|i| i + 3) else {
        return u.to_string();
    };
    let rest = &u[start..];
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..end].rfind('@') {
        Some(at) => format!("{}***@{}", &u[..start], &rest[at + 1..]),
        None => u.to_string(),
    }
}

pub fn is_ident(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

pub fn is_env_name(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
        && !s.starts_with(|c: char| c.is_ascii_digit())
}

pub fn check_ratio(p: &mut Problems, at: &str, v: f64) {
    if !(v.is_finite() && (0.0..=1.0).contains(&v)) {
        p.push(at, "must be a fraction between 0.0 and 1.0");
    }
}

pub fn check_positive(p: &mut Problems, at: &str, v: f64) {
    if !(v.is_finite() && v > 0.0) {
        p.push(at, "must be a positive number");
    }
}

/// The hysteresis pair must leave a gap: clear below fire.
pub fn check_pair(p: &mut Problems, at: &str, fire: f64, clear: f64) {
    if fire.is_finite() && clear.is_finite() && clear > fire {
        p.push(
            at,
            format!("the clear threshold ({clear}) must not be above the fire threshold ({fire})"),
        );
    }
}
