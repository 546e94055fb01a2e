//! The one place the core's edges read the wall clock, and the one
//! `HH:MM:SS` every view and alert writes a time of day in.

/// Unix time in milliseconds.
pub fn wall_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// A duration in whole milliseconds, saturating at `i64::MAX`.
pub fn ms(d: std::time::Duration) -> i64 {
    d.as_millis().min(i64::MAX as u128) as i64
}

/// `HH:MM:SS` UTC of a unix-ms time (the dashboard's clock, headless lines,
/// `check` and alert text all say a time of day this way).
pub fn hms(ms: i64) -> String {
    let secs = ms.div_euclid(1_000);
    let day = secs.rem_euclid(86_400);
    format!(
        "{:02}:{:02}:{:02}",
        day / 3_600,
        (day % 3_600) / 60,
        day % 60
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn hms_is_the_utc_time_of_day() {
        assert_eq!(super::hms(3_723_000), "01:02:03");
        assert_eq!(super::hms(86_400_000 + 59_999), "00:00:59");
        assert_eq!(super::hms(-1_000), "23:59:59");
    }
}
