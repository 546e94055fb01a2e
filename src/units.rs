//! Figures in alert text, scaled to their unit so a value is never printed
//! as `0 ms` when it is 400 µs, or as `12000 ms` when it is 12 s. Alert
//! titles and descriptions (detectors, the engine) use these; the dashboard
//! has its own width-stable, spaceless variants in `ui::fmt`.

/// A latency or a short duration given in milliseconds (may be fractional),
/// with a unit that fits: `450 µs`, `4.2 ms`, `120 ms`, `1.25 s`, `95 s`.
/// Negative and non-finite values print as `0 µs` and `?` respectively.
pub fn latency_ms(ms: f64) -> String {
    if !ms.is_finite() {
        return "?".into();
    }
    let ms = ms.max(0.0);
    if ms < 1.0 {
        format!("{:.0} µs", ms * 1_000.0)
    } else if ms < 10.0 {
        format!("{ms:.1} ms")
    } else if ms < 1_000.0 {
        format!("{ms:.0} ms")
    } else if ms < 10_000.0 {
        format!("{:.2} s", ms / 1_000.0)
    } else {
        format!("{:.0} s", ms / 1_000.0)
    }
}

/// A share (0..1) as a percentage with the precision that keeps small and
/// near-total shares honest: `0.4%`, `2%`, `99.6%`, `100%`.
pub fn percent(share: f64) -> String {
    if !share.is_finite() {
        return "?".into();
    }
    let pct = share.clamp(0.0, 1.0) * 100.0;
    if pct == 0.0 || pct == 100.0 || (5.0..=95.0).contains(&pct) {
        format!("{pct:.0}%")
    } else {
        format!("{pct:.1}%")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_scales_its_unit() {
        assert_eq!(latency_ms(0.4), "400 µs");
        assert_eq!(latency_ms(0.0), "0 µs");
        assert_eq!(latency_ms(4.25), "4.2 ms");
        assert_eq!(latency_ms(120.4), "120 ms");
        assert_eq!(latency_ms(1_250.0), "1.25 s");
        assert_eq!(latency_ms(95_000.0), "95 s");
        assert_eq!(latency_ms(-3.0), "0 µs");
        assert_eq!(latency_ms(f64::NAN), "?");
    }

    #[test]
    fn percent_keeps_small_and_near_total_shares_honest() {
        assert_eq!(percent(0.004), "0.4%");
        assert_eq!(percent(0.02), "2.0%");
        assert_eq!(percent(0.5), "50%");
        assert_eq!(percent(0.996), "99.6%");
        assert_eq!(percent(1.0), "100%");
        assert_eq!(percent(0.0), "0%");
    }
}
