//! Small, width-stable formatters shared by the panels.

use super::theme::Theme;

/// A stream lag, measured in whole ms (exchange event times carry ms):
/// `<1ms` from -49 to 0 ms (below the resolution, or a clock offset a
/// little over-corrected), `42ms`, `1.25s`, and a larger negative lag as it
/// is (`-320ms`: the exchange's clock, or the offset, is off).
pub fn lag_ms(ms: i64) -> String {
    match ms {
        -49..=0 => "<1ms".to_string(),
        1..=999 | -999..=-50 => format!("{ms}ms"),
        _ => format!("{:.2}s", ms as f64 / 1_000.0),
    }
}

/// `850µs`, `12ms`, `1.25s`.
pub fn latency_us(us: u64, theme: &Theme) -> String {
    if us < 1_000 {
        if theme.ascii {
            format!("{us}us")
        } else {
            format!("{us}µs")
        }
    } else if us < 10_000 {
        format!("{:.1}ms", us as f64 / 1_000.0)
    } else if us < 1_000_000 {
        format!("{}ms", us / 1_000)
    } else {
        format!("{:.2}s", us as f64 / 1_000_000.0)
    }
}

/// `0.4s`, `12s`, `5m`, `3h`, `2d`: an age or a wait, compact.
pub fn duration_ms(ms: i64) -> String {
    let ms = ms.max(0);
    if ms < 10_000 {
        format!("{:.1}s", ms as f64 / 1_000.0)
    } else if ms < 120_000 {
        format!("{}s", ms / 1_000)
    } else if ms < 7_200_000 {
        format!("{}m", ms / 60_000)
    } else if ms < 172_800_000 {
        format!("{}h", ms / 3_600_000)
    } else {
        format!("{}d", ms / 86_400_000)
    }
}

/// A poll interval: `500ms`, `1s`, `1.5s`, `2m`.
pub fn interval_ms(ms: u64) -> String {
    if ms < 1_000 {
        format!("{ms}ms")
    } else if ms % 1_000 == 0 && ms < 120_000 {
        format!("{}s", ms / 1_000)
    } else if ms < 120_000 {
        format!("{:.1}s", ms as f64 / 1_000.0)
    } else {
        format!("{}m", ms / 60_000)
    }
}

/// `HH:MM:SS` UTC of a unix-ms time ([`crate::clock::hms`]).
pub fn clock(ms: i64) -> String {
    crate::clock::hms(ms)
}

/// `YYYY-MM-DD HH:MM:SS` UTC of a unix-ms time, for timelines.
pub fn timestamp(ms: i64) -> String {
    let fmt = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");
    time::OffsetDateTime::from_unix_timestamp(ms.div_euclid(1_000))
        .ok()
        .and_then(|t| t.format(&fmt).ok())
        .unwrap_or_else(|| format!("@{ms}"))
}

/// Cut `s` to at most `width` columns, marking the cut.
pub fn truncate(s: &str, width: usize, theme: &Theme) -> String {
    let count = s.chars().count();
    if count <= width {
        return s.to_string();
    }
    if width == 0 {
        return String::new();
    }
    let mut out: String = s.chars().take(width - 1).collect();
    out.push_str(if theme.ascii { "~" } else { "…" });
    out
}

/// A sparkline of the last `width` values, scaled from zero to their max, so
/// a millisecond of jitter on a steady endpoint stays flat and a spike stands out.
pub fn sparkline(values: &[u64], width: usize, theme: &Theme) -> String {
    let levels = theme.spark_levels();
    let tail = &values[values.len().saturating_sub(width)..];
    let Some(&max) = tail.iter().max() else {
        return String::new();
    };
    let span = max as f64;
    let mut out = String::with_capacity(width * 3);
    for v in tail {
        let idx = if span <= 0.0 {
            0
        } else {
            ((*v as f64 / span) * (levels.len() - 1) as f64).round() as usize
        };
        out.push(levels[idx.min(levels.len() - 1)]);
    }
    out
}

/// An alert's figure with its unit, from the name's suffix: `_until_ms`
/// and `_at_ms` are times (`14:03:12 UTC`), other `_ms` are durations
/// (`250 ms`, `12s`), rates and shares are per cent, `ratio` is a factor
/// (`3.2x`), whole numbers are counts; anything else keeps 3 decimals.
pub fn metric(name: &str, v: f64) -> String {
    if !v.is_finite() {
        return v.to_string();
    }
    if name.ends_with("_until_ms") || name.ends_with("_at_ms") {
        return format!("{} UTC", clock(v as i64));
    }
    if name.ends_with("_ms") {
        return if v.abs() < 10.0 {
            format!("{v:.1} ms")
        } else if v.abs() < 10_000.0 {
            format!("{v:.0} ms")
        } else {
            duration_ms(v as i64)
        };
    }
    if name.ends_with("rate") || name.ends_with("share") || name == "usage" {
        return format!("{:.1}%", v * 100.0);
    }
    if name == "ratio" {
        return format!("{v:.1}x");
    }
    if v.fract() == 0.0 && v.abs() < 1e15 {
        return format!("{}", v as i64);
    }
    format!("{v:.3}")
}

#[cfg(test)]
mod tests {

    #[test]
    fn stream_lags_show_their_millisecond_resolution() {
        assert_eq!(lag_ms(0), "<1ms");
        assert_eq!(lag_ms(-3), "<1ms");
        assert_eq!(lag_ms(-320), "-320ms");
        assert_eq!(lag_ms(-2_500), "-2.50s");
        assert_eq!(lag_ms(42), "42ms");
        assert_eq!(lag_ms(1_250), "1.25s");
    }

    use super::*;

    #[test]
    fn formats_are_compact() {
        let t = Theme::default();
        assert_eq!(latency_us(850, &t), "850µs");
        assert_eq!(latency_us(12_400, &t), "12ms");
        assert_eq!(latency_us(1_250_000, &t), "1.25s");
        assert_eq!(duration_ms(400), "0.4s");
        assert_eq!(duration_ms(95_000), "95s");
        assert_eq!(duration_ms(600_000), "10m");
        assert_eq!(interval_ms(1_000), "1s");
        assert_eq!(clock(3_723_000), "01:02:03");
        assert_eq!(timestamp(0), "1970-01-01 00:00:00");
    }

    #[test]
    fn metrics_carry_their_units() {
        assert_eq!(metric("polls", 99.0), "99");
        assert_eq!(metric("latency_ms", 250.4), "250 ms");
        assert_eq!(metric("mad_ms", 1.25), "1.2 ms");
        assert_eq!(metric("open_for_ms", 95_000.0), "95s");
        assert_eq!(metric("held_until_ms", 3_723_000.0), "01:02:03 UTC");
        assert_eq!(metric("error_rate", 0.25), "25.0%");
        assert_eq!(metric("ratio", 3.17), "3.2x");
        assert_eq!(metric("z_score", 4.5678), "4.568");
    }

    #[test]
    fn sparkline_scales_to_the_window() {
        let t = Theme {
            color: true,
            ascii: true,
        };
        assert_eq!(sparkline(&[1, 2, 3, 100, 200], 3, &t), "_=#");
        assert_eq!(sparkline(&[5, 5], 10, &t), "##");
        assert_eq!(sparkline(&[0, 0], 10, &t), "__");
        assert_eq!(sparkline(&[], 10, &t), "");
    }
}
