//! Durations, as every flag takes them (`--timeout`, `--interval`, `--remote-timeout`, ...):
//! one parser, `humantime`'s, under one rule for a plain number.

use std::time::Duration;

/// A hundred years is forever for a pipeline, and keeps every date computable.
const LONGEST: Duration = Duration::from_secs(100 * 365 * 86400);

/// A duration as a number of seconds (`600`, what every duration flag has always taken) or in
/// `humantime`'s units, which may be combined (`90m`, `4h`, `1h30m`, `1d`, `500ms`).
/// The error is one line saying what is wrong; clap puts the flag and the value before it
/// (`invalid value '4x' for '--timeout <DURATION>': unknown unit `x` ...`).
pub fn parse(s: &str) -> Result<Duration, String> {
    const FORMS: &str = "seconds alone, or with units: 600, 90m, 4h, 1h30m, 1d";
    let d = if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        s.parse::<u64>().ok().map(Duration::from_secs)
    } else {
        match humantime::parse_duration(s) {
            Ok(d) => Some(d),
            // Too many digits either way: a fraction under a nanosecond, or past the longest.
            Err(humantime::DurationError::NumberOverflow) if s.contains('.') => {
                return Err("a fraction finer than a nanosecond".into())
            }
            Err(humantime::DurationError::NumberOverflow) => None,
            Err(humantime::DurationError::UnknownUnit { unit, value, .. }) if unit.is_empty() => {
                return Err(format!("`{value}` has no unit ({FORMS})"))
            }
            Err(humantime::DurationError::UnknownUnit { unit, .. }) => {
                return Err(format!("unknown unit `{unit}` ({FORMS})"))
            }
            Err(_) => return Err(format!("not a duration ({FORMS})")),
        }
    };
    d.filter(|d| *d <= LONGEST)
        .ok_or_else(|| "longer than 100 years".to_string())
}

/// A time limit from its flag: zero means none.
pub fn limit(d: Duration) -> Option<Duration> {
    (!d.is_zero()).then_some(d)
}

/// A duration as messages show it, in the flags' own units (`2s`, `1m 30s`, `4h`).
pub fn show(d: Duration) -> String {
    humantime::format_duration(d).to_string()
}

#[cfg(test)]
mod tests {
    use super::{limit, parse as p, show};
    use std::time::Duration;

    #[test]
    fn plain_numbers_are_seconds() {
        assert_eq!(p("600").unwrap().as_secs(), 600);
        assert_eq!(p("90").unwrap().as_secs(), 90);
        assert_eq!(p("0").unwrap(), Duration::ZERO);
    }

    #[test]
    fn units_and_their_combinations() {
        assert_eq!(p("4h").unwrap().as_secs(), 4 * 3600);
        assert_eq!(p("90m").unwrap().as_secs(), 5400);
        assert_eq!(p("1h30m").unwrap().as_secs(), 5400);
        assert_eq!(p("1h 30m").unwrap().as_secs(), 5400);
        assert_eq!(p("120s").unwrap().as_secs(), 120);
        assert_eq!(p("6h").unwrap().as_secs(), 21600);
        assert_eq!(p("1d").unwrap().as_secs(), 86400);
        assert_eq!(p("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(p("1.5h").unwrap().as_secs(), 5400);
    }

    #[test]
    fn bad_values_are_refused_in_one_line() {
        for bad in [
            "",
            "6x",
            "h",
            "-5",
            "4 hours later",
            "1h30",
            "0x10",
            "1h-30m",
        ] {
            let e = p(bad).expect_err(bad);
            assert!(!e.contains('\n') && !e.is_empty(), "{bad}: {e}");
        }
        assert!(p("6x").unwrap_err().starts_with("unknown unit `x`"));
        assert!(p("1h30").unwrap_err().starts_with("`30` has no unit"));
        assert!(p("-5").unwrap_err().starts_with("not a duration"));
        // Longer than a hundred years, or past any number: refused, not wrapped.
        for long in [
            "100000000000000",
            "36501d",
            "99999999999999999999999",
            "999999999999y",
        ] {
            assert_eq!(p(long).unwrap_err(), "longer than 100 years", "{long}");
        }
    }

    #[test]
    fn zero_is_no_limit_and_durations_show_in_units() {
        assert_eq!(limit(Duration::ZERO), None);
        assert_eq!(limit(Duration::from_secs(3)), Some(Duration::from_secs(3)));
        assert_eq!(show(Duration::from_secs(2)), "2s");
        assert_eq!(show(Duration::from_secs(5400)), "1h 30m");
        assert_eq!(show(Duration::from_secs(14400)), "4h");
    }
}
