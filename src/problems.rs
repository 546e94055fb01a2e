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

pub fn check_duration(p: &mut Problems, at: &str, d: Duration) {
    if d.is_zero() {
        p.push(at, "must be greater than zero, e.g. \"500ms\" or \"2s\"");
    } else if d > Duration::from_secs(7 * 24 * 3600) {
        p.push(at, "must be at most a week");
    }
}

pub fn check_bucket(p: &mut Problems, at: &str, capacity: f64, refill: f64) {
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

pub fn check_url(p: &mut Problems, at: &str, u: &str) {
    match url::Url::parse(u) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => {}
        Ok(_) => p.push(
            at,
            format!("{u:?} is not an http(s) URL with a host, e.g. \"https://api.example.com\""),
        ),
        Err(e) => p.push(
            at,
            format!("{u:?} is not a valid URL ({e}); expected e.g. \"https://api.example.com\""),
        ),
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
