//! Durations as people write them in hoist.toml and on the command line: "250ms", "30s", "5m", "1h".

use std::time::Duration;

/// What every duration error says, so that the config file and the CLI flags read alike.
pub(crate) const EXPECTED_DURATION: &str = "expected a duration like 30s, 5m, 250ms";

/// The longest duration hoist accepts: 30 days. Anything longer is a typo, and bounding it here
/// means no wait, timeout or deadline computed from a duration can overflow a clock.
pub const MAX_DURATION: Duration = Duration::from_secs(30 * 24 * 3600);

/// Parses a duration such as `"250ms"`, `"30s"`, `"5m"`, `"1h"` or a sum of them, `"1m30s"`.
///
/// Units are `ms`, `s`, `m` and `h`; every number needs a unit, so that `"30"` (seconds? minutes?)
/// is refused rather than guessed. Used for hoist.toml and for CLI flags such as `--lock-wait 5m`.
///
/// # Errors
///
/// A message naming the input, e.g. `invalid duration "5 minutes": expected a duration like 30s,
/// 5m, 250ms`; a duration longer than [`MAX_DURATION`] is refused too.
pub fn parse_duration(s: &str) -> Result<Duration, DurationError> {
    match parse_parts(s) {
        None => Err(DurationError::Invalid(s.to_string())),
        Some(d) if d > MAX_DURATION => Err(DurationError::TooLong(s.to_string())),
        Some(d) => Ok(d),
    }
}

/// Why [`parse_duration`] refused its input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    #[error("invalid duration {0:?}: {EXPECTED_DURATION}")]
    Invalid(String),
    #[error("duration {0:?} is too long: at most 720h (30 days)")]
    TooLong(String),
}

fn parse_parts(s: &str) -> Option<Duration> {
    let mut rest = s;
    if rest.is_empty() {
        return None;
    }
    let mut total = Duration::ZERO;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        let number: u64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit_len = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
        let part = match &rest[..unit_len] {
            "ms" => Duration::from_millis(number),
            "s" => Duration::from_secs(number),
            "m" => Duration::from_secs(number.checked_mul(60)?),
            "h" => Duration::from_secs(number.checked_mul(3600)?),
            _ => return None,
        };
        rest = &rest[unit_len..];
        total = total.checked_add(part)?;
    }
    Some(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_each_unit() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
    }

    #[test]
    fn adds_up_compound_durations() {
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(
            parse_duration("1h1m1s1ms"),
            Ok(Duration::from_millis(3_661_001))
        );
    }

    #[test]
    fn refuses_what_it_would_have_to_guess() {
        for bad in [
            "", "30", "s", "5 m", "5min", "1.5s", "-1s", "30S", " 30s", "1d", "m5",
        ] {
            assert_eq!(
                parse_duration(bad).map_err(|e| e.to_string()),
                Err(format!(
                    "invalid duration {bad:?}: expected a duration like 30s, 5m, 250ms"
                )),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn refuses_overflow_instead_of_wrapping() {
        assert!(parse_duration("99999999999999999999s").is_err());
        assert!(parse_duration(&format!("{}h", u64::MAX / 60)).is_err());
    }

    #[test]
    fn refuses_durations_longer_than_thirty_days() {
        assert_eq!(parse_duration("720h"), Ok(MAX_DURATION));
        assert_eq!(
            parse_duration("721h").unwrap_err().to_string(),
            "duration \"721h\" is too long: at most 720h (30 days)"
        );
        assert_eq!(
            parse_duration("18446744073709551615s"),
            Err(DurationError::TooLong("18446744073709551615s".into()))
        );
        assert!(parse_duration("720h1ms").is_err());
    }
}
