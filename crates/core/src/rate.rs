//! A rate as people write it: `60/min`, `1000/hour`, `10/15min`.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// `count` requests per `period`. Bursts of up to `count` pass at once; after that, one request
/// per `period / count` (GCRA, the "leaky bucket as a meter").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    count: u32,
    period: Duration,
}

/// Large enough for any sane limit, small enough that every computation stays exact in a Lua
/// double (microseconds since the epoch need 51 bits).
const MAX_COUNT: u32 = 1_000_000;
const MAX_PERIOD: Duration = Duration::from_secs(366 * 86_400);

const UNITS: &[(&[&str], u64)] = &[
    (&["s", "sec", "second", "seconds"], 1),
    (&["m", "min", "minute", "minutes"], 60),
    (&["h", "hour", "hours"], 3_600),
    (&["d", "day", "days"], 86_400),
];

impl Rate {
    pub fn new(count: u32, period: Duration) -> Result<Self, String> {
        if count == 0 || count > MAX_COUNT {
            return Err(format!("a rate allows 1 to {MAX_COUNT} requests"));
        }
        if period < Duration::from_secs(1) || period > MAX_PERIOD {
            return Err("a rate's period is between a second and a year".to_owned());
        }
        // Whole-microsecond emission intervals stay within 1% of the asked rate up to here.
        if u128::from(count) * 100 > period.as_micros() {
            return Err("a rate allows at most 10000 requests per second".to_owned());
        }
        Ok(Self { count, period })
    }

    /// A rate for constants: `count` per `secs` seconds, checked where the constant is evaluated
    /// (at compile time, for a `const`).
    pub const fn fixed(count: u32, secs: u64) -> Self {
        assert!(count > 0 && count <= MAX_COUNT && secs >= 1 && secs <= MAX_PERIOD.as_secs());
        Self {
            count,
            period: Duration::from_secs(secs),
        }
    }

    /// Parses `N/unit` or `N/Kunit`: units are second, minute, hour, day (or s, sec, m, min, h,
    /// d, and plurals).
    pub fn parse(text: &str) -> Result<Self, String> {
        let invalid = || {
            format!(
                "'{text}' is not a rate: write it as requests/period, such as '60/min' or '1000/hour'"
            )
        };
        let (count, per) = text.trim().split_once('/').ok_or_else(invalid)?;
        let count: u32 = count.trim().parse().map_err(|_| invalid())?;
        let per = per.trim();
        let digits = per.bytes().take_while(u8::is_ascii_digit).count();
        let (multiple, unit) = per.split_at(digits);
        let multiple: u64 = if multiple.is_empty() {
            1
        } else {
            multiple.parse().map_err(|_| invalid())?
        };
        let seconds = UNITS
            .iter()
            .find(|(names, _)| names.contains(&unit.trim()))
            .map(|(_, secs)| *secs)
            .ok_or_else(invalid)?;
        let period = multiple
            .checked_mul(seconds)
            .map(Duration::from_secs)
            .ok_or_else(invalid)?;
        Self::new(count, period)
    }

    pub fn count(&self) -> u32 {
        self.count
    }

    pub fn period(&self) -> Duration {
        self.period
    }

    /// The time one request occupies, in microseconds (at least one).
    pub fn emission_us(&self) -> u64 {
        (self.period.as_micros() as u64 / u64::from(self.count)).max(1)
    }

    /// The burst a full bucket allows, in microseconds: exactly `count` emissions.
    pub fn window_us(&self) -> u64 {
        self.emission_us() * u64::from(self.count)
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self.period.as_secs();
        let (amount, unit) = [(86_400, "day"), (3_600, "hour"), (60, "min"), (1, "s")]
            .into_iter()
            .find(|(unit, _)| secs.is_multiple_of(*unit))
            .map(|(unit, name)| (secs / unit, name))
            .unwrap_or((secs, "s"));
        if amount == 1 {
            write!(f, "{}/{unit}", self.count)
        } else {
            write!(f, "{}/{amount}{unit}", self.count)
        }
    }
}

impl Serialize for Rate {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Rate {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_parse_in_every_unit() {
        let cases = [
            ("60/min", 60, 60),
            ("60/minute", 60, 60),
            ("1000/hour", 1000, 3_600),
            ("5/s", 5, 1),
            ("2/second", 2, 1),
            ("10000/day", 10_000, 86_400),
            ("10/15min", 10, 900),
            (" 3 / 2h ", 3, 7_200),
        ];
        for (text, count, secs) in cases {
            let rate = Rate::parse(text).unwrap();
            assert_eq!(
                (rate.count(), rate.period().as_secs()),
                (count, secs),
                "{text}"
            );
        }
    }

    #[test]
    fn bad_rates_are_refused() {
        for text in [
            "",
            "60",
            "/min",
            "x/min",
            "0/min",
            "60/fortnight",
            "60/0min",
            "-1/min",
            "60/min/s",
            "1/999999999999999999999d",
            "10001/s",
            "2000000/day",
        ] {
            assert!(Rate::parse(text).is_err(), "{text:?} should be refused");
        }
    }

    #[test]
    fn rates_print_as_they_parse() {
        for text in [
            "60/min",
            "1000/hour",
            "10/15min",
            "3/2hour",
            "7/day",
            "5/s",
            "9/90s",
        ] {
            let rate = Rate::parse(text).unwrap();
            assert_eq!(Rate::parse(&rate.to_string()), Ok(rate), "{text} -> {rate}");
        }
        assert_eq!(
            Rate::parse("10/15min").map(|r| r.to_string()),
            Ok("10/15min".into())
        );
    }

    #[test]
    fn a_full_bucket_holds_exactly_count_requests() {
        // Emission intervals are whole microseconds; the window is built from them, so the
        // burst is exactly `count` even when the division is not exact.
        for (count, secs) in [
            (3, 60),
            (7, 60),
            (9_999, 1),
            (10_000, 1),
            (1, 1),
            (999_999, 86_400),
        ] {
            let rate = Rate::new(count, Duration::from_secs(secs)).unwrap();
            assert_eq!(rate.window_us() / rate.emission_us(), u64::from(count));
        }
    }
}
