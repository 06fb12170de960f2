//! Go-style duration strings (`10s`, `1m30s`, `1.5s`, `250ms`): the apiserver's `?timeout=`
//! query uses them, and so do our own duration flags. A bare number means seconds.

use std::time::Duration;

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid duration {0:?}: expected e.g. 10s, 1m30s, 250ms")]
pub(crate) struct DurationError(pub String);

/// Parses a Go duration (units ns, us, µs, ms, s, m, h; fractions allowed; no sign).
pub fn parse(text: &str) -> Result<Duration, DurationError> {
    let err = || DurationError(text.to_string());
    let s = text.trim();
    if s.is_empty() {
        return Err(err());
    }
    if let Ok(secs) = s.parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    let mut rest = s;
    let mut total = 0f64;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(err)?;
        let (num, tail) = rest.split_at(num_len);
        let value: f64 = num.parse().map_err(|_| err())?;
        let unit_len = tail
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_len);
        let scale = match unit {
            "ns" => 1e-9,
            "us" | "µs" | "μs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(err()),
        };
        total += value * scale;
        rest = tail;
    }
    Duration::try_from_secs_f64(total).map_err(|_| err())
}

/// Parses a byte size: a plain number of bytes or one with a `KiB`/`MiB`/`Ki`/`Mi`/`K`/`M` suffix.
pub(crate) fn parse_size(text: &str) -> Result<usize, String> {
    let s = text.trim();
    let digits = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(digits);
    let n: usize = num.parse().map_err(|_| format!("invalid size {text:?}"))?;
    let scale: usize = match unit.trim() {
        "" | "B" => 1,
        "K" | "Ki" | "KiB" | "k" | "kB" => 1024,
        "M" | "Mi" | "MiB" | "MB" => 1024 * 1024,
        _ => {
            return Err(format!(
                "invalid size unit in {text:?}: use bytes, KiB or MiB"
            ));
        }
    };
    n.checked_mul(scale)
        .filter(|&v| v > 0)
        .ok_or_else(|| format!("invalid size {text:?}"))
}

/// [`parse_size`], where 0 is allowed too (it turns something off).
pub(crate) fn parse_size_or_zero(text: &str) -> Result<usize, String> {
    if text.trim() == "0" {
        Ok(0)
    } else {
        parse_size(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_go_durations_like_the_apiserver_sends() {
        let cases = [
            ("10s", Duration::from_secs(10)),
            ("1m30s", Duration::from_secs(90)),
            ("1.5s", Duration::from_millis(1500)),
            ("250ms", Duration::from_millis(250)),
            ("20", Duration::from_secs(20)),
            ("1h", Duration::from_secs(3600)),
        ];
        for (text, want) in cases {
            assert_eq!(parse(text), Ok(want), "{text}");
        }
    }

    #[test]
    fn rejects_malformed_durations() {
        for text in ["", "s", "10x", "-5s", "1..2s", "ten"] {
            assert!(parse(text).is_err(), "{text}");
        }
    }

    #[test]
    fn parses_sizes_with_binary_suffixes() {
        assert_eq!(parse_size("7MiB"), Ok(7 * 1024 * 1024));
        assert_eq!(parse_size("7340032"), Ok(7_340_032));
        assert_eq!(parse_size("64KiB"), Ok(65536));
        assert!(parse_size("0").is_err());
        assert_eq!(parse_size_or_zero("0"), Ok(0));
        assert_eq!(parse_size_or_zero("64KiB"), Ok(65536));
        assert!(parse_size_or_zero("-1").is_err());
        assert!(parse_size("7GB").is_err());
    }
}
