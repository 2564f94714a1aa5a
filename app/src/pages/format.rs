//! How numbers read on the pages: tensor values, durations, shapes, rates. Pure functions shared by
//! the calculator and the stats page, so the same quantity always looks the same.

/// Placeholder shown before data arrives (and rendered by the server).
pub const NO_DATA: &str = "—";

/// A tensor value: whole numbers without decimals (`19`), others with up to four decimals and no
/// trailing zeros (`0.3333`), very large or small ones in exponent form (`1.234e-7`), and the
/// non-finite values as `NaN`, `∞`, `-∞`.
pub fn value(v: f32) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "∞".into() } else { "-∞".into() };
    }
    let magnitude = v.abs();
    if magnitude == 0.0 {
        return "0".into();
    }
    if !(1e-3..1e7).contains(&magnitude) {
        return format!("{v:.3e}");
    }
    trim_decimals(format!("{v:.4}"))
}

/// Drops trailing zeros after a decimal point, and the point itself when nothing follows.
fn trim_decimals(text: String) -> String {
    if !text.contains('.') {
        return text;
    }
    let trimmed = text.trim_end_matches('0').trim_end_matches('.');
    match trimmed {
        "-0" => "0".into(),
        other => other.into(),
    }
}

/// A duration in milliseconds: `0.12 ms`, `3.1 ms`, `412 ms`, `2.35 s`.
pub fn millis(ms: f64) -> String {
    if !ms.is_finite() || ms < 0.0 {
        return NO_DATA.into();
    }
    if ms == 0.0 {
        "0 ms".into()
    } else if ms >= 1000.0 {
        format!("{:.2} s", ms / 1000.0)
    } else if ms >= 100.0 {
        format!("{ms:.0} ms")
    } else if ms >= 1.0 {
        format!("{ms:.1} ms")
    } else {
        format!("{ms:.2} ms")
    }
}

/// A duration given in seconds, shown as [`millis`].
pub fn seconds_as_millis(seconds: f64) -> String {
    millis(seconds * 1000.0)
}

/// An ETA in whole milliseconds as seconds with one decimal: `600` → `0.6`.
pub fn eta_seconds(eta_ms: u64) -> String {
    format!("{:.1}", eta_ms as f64 / 1000.0)
}

/// A shape for people: `2 × 3`, or `scalar` for `[]`.
pub fn shape(dims: &[usize]) -> String {
    if dims.is_empty() {
        return "scalar".into();
    }
    dims.iter()
        .map(|d| d.to_string())
        .collect::<Vec<_>>()
        .join(" × ")
}

/// A rate with two decimals: `3.25`.
pub fn rate(per_second: f64) -> String {
    if per_second.is_finite() {
        format!("{per_second:.2}")
    } else {
        NO_DATA.into()
    }
}

/// A whole number with thin grouping: `1 048 576`.
pub fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push('\u{202f}');
        }
        out.push(c);
    }
    out
}

/// An uptime: `45 s`, `12 min 5 s`, `3 h 4 min`.
pub fn uptime(seconds: u64) -> String {
    match seconds {
        s if s < 60 => format!("{s} s"),
        s if s < 3600 => format!("{} min {} s", s / 60, s % 60),
        s => format!("{} h {} min", s / 3600, (s % 3600) / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_read_naturally() {
        assert_eq!(value(19.0), "19");
        assert_eq!(value(-3.0), "-3");
        assert_eq!(value(0.5), "0.5");
        assert_eq!(value(1.0 / 3.0), "0.3333");
        assert_eq!(value(19.000002), "19");
        assert_eq!(value(-0.0), "0");
        assert_eq!(value(1.5e-7), "1.500e-7");
        assert_eq!(value(f32::NAN), "NaN");
        assert_eq!(value(f32::INFINITY), "∞");
        assert_eq!(value(f32::NEG_INFINITY), "-∞");
    }

    #[test]
    fn durations_and_counts() {
        assert_eq!(millis(0.0), "0 ms");
        assert_eq!(millis(0.123), "0.12 ms");
        assert_eq!(millis(3.12), "3.1 ms");
        assert_eq!(millis(412.0), "412 ms");
        assert_eq!(millis(2345.0), "2.35 s");
        assert_eq!(seconds_as_millis(0.0031), "3.1 ms");
        assert_eq!(eta_seconds(600), "0.6");
        assert_eq!(eta_seconds(1260), "1.3");
        assert_eq!(shape(&[2, 3]), "2 × 3");
        assert_eq!(shape(&[]), "scalar");
        assert_eq!(count(1048576), "1\u{202f}048\u{202f}576");
        assert_eq!(count(12), "12");
        assert_eq!(uptime(725), "12 min 5 s");
    }
}
