//! Durations as people write them in rules, channels and configuration: `30s`, `15m`, `1h`,
//! `3d`, `2w`, or negative (`-7d`).

use std::fmt;
use std::str::FromStr;

use jiff::SignedDuration;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A duration written as a whole number and a unit: `30s`, `15m`, `1h`, `3d`, `2w`; negative
/// with a leading `-` (`-7d`: 7 days before). Shown in its largest whole unit up to days.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Duration(pub SignedDuration);

impl FromStr for Duration {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let bad = || format!("`{text}` is not a duration like 30s, 15m, 1h, 3d, 2w or -7d");
        let (negative, rest) = match text.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        let split = rest.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
        let (digits, unit) = rest.split_at(split);
        let amount: i64 = digits.parse().map_err(|_| bad())?;
        let seconds = match unit {
            "s" => 1,
            "m" => 60,
            "h" => 3600,
            "d" => 86_400,
            "w" => 7 * 86_400,
            _ => return Err(bad()),
        };
        let seconds = amount.checked_mul(seconds).filter(|s| *s <= 100 * 366 * 86_400).ok_or_else(bad)?;
        Ok(Duration(SignedDuration::from_secs(if negative { -seconds } else { seconds })))
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let seconds = self.0.as_secs();
        let (amount, unit) = [(86_400, "d"), (3600, "h"), (60, "m")]
            .into_iter()
            .find(|(size, _)| seconds % size == 0 && seconds != 0)
            .map_or((seconds, "s"), |(size, unit)| (seconds / size, unit));
        write!(f, "{amount}{unit}")
    }
}

impl Serialize for Duration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_and_write() {
        for (text, seconds, shown) in [
            ("30s", 30, "30s"),
            ("90m", 5400, "90m"),
            ("1h", 3600, "1h"),
            ("3d", 259_200, "3d"),
            ("-7d", -604_800, "-7d"),
            ("2w", 1_209_600, "14d"),
        ] {
            let d: Duration = text.parse().unwrap();
            assert_eq!(d.0.as_secs(), seconds);
            assert_eq!(d.to_string(), shown, "shown in its largest whole unit up to days");
        }
        for bad in ["", "7", "d", "7x", "1.5h", "--1d", "99999999999w"] {
            assert!(bad.parse::<Duration>().is_err(), "{bad}");
        }
    }
}
