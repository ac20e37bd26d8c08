//! Time as an input: the core never reads a clock.
//!
//! Every decision that depends on time takes a [`UnixTime`] supplied by the
//! caller, so that tests can step time deterministically and adapters decide
//! where time comes from.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A point in time, as whole seconds since the Unix epoch (UTC).
///
/// This is the unit the token files use (`expires_at_seconds`).
///
/// ```
/// use globus_app_proto::UnixTime;
/// let t = UnixTime::from_secs(1_700_000_000);
/// assert_eq!(t.saturating_add_secs(60).as_secs(), 1_700_000_060);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UnixTime(i64);

impl UnixTime {
    /// The Unix epoch.
    pub const EPOCH: Self = Self(0);

    /// A time from whole seconds since the epoch.
    pub const fn from_secs(secs: i64) -> Self {
        Self(secs)
    }

    /// Whole seconds since the epoch.
    pub const fn as_secs(self) -> i64 {
        self.0
    }

    /// This time plus `secs` seconds, saturating instead of overflowing.
    #[must_use]
    pub const fn saturating_add_secs(self, secs: i64) -> Self {
        Self(self.0.saturating_add(secs))
    }

    /// This time minus `secs` seconds, saturating instead of overflowing.
    #[must_use]
    pub const fn saturating_sub_secs(self, secs: i64) -> Self {
        Self(self.0.saturating_sub(secs))
    }
}

impl UnixTime {
    /// The same instant as a [`SystemTime`] (saturating at the limits
    /// `SystemTime` can represent).
    pub fn to_system_time(self) -> SystemTime {
        let magnitude = Duration::from_secs(self.0.unsigned_abs());
        let shifted = if self.0 >= 0 {
            UNIX_EPOCH.checked_add(magnitude)
        } else {
            UNIX_EPOCH.checked_sub(magnitude)
        };
        shifted.unwrap_or(UNIX_EPOCH)
    }
}

/// Whole seconds, rounded down (towards the past), saturating at the range
/// of `i64`.
impl From<SystemTime> for UnixTime {
    fn from(time: SystemTime) -> Self {
        let secs = match time.duration_since(UNIX_EPOCH) {
            Ok(after) => i64::try_from(after.as_secs()).unwrap_or(i64::MAX),
            Err(before) => {
                let before = before.duration();
                let whole = i64::try_from(before.as_secs()).unwrap_or(i64::MAX);
                // 1.5 s before the epoch is -2 s, rounded towards the past.
                whole
                    .saturating_add(i64::from(before.subsec_nanos() > 0))
                    .saturating_neg()
            }
        };
        Self(secs)
    }
}

impl From<UnixTime> for SystemTime {
    fn from(time: UnixTime) -> Self {
        time.to_system_time()
    }
}

/// RFC 3339 in UTC, e.g. `2023-11-14T22:13:20Z`.
///
/// ```
/// use globus_app_proto::UnixTime;
/// assert_eq!(UnixTime::from_secs(1_700_000_000).to_string(), "2023-11-14T22:13:20Z");
/// assert_eq!(UnixTime::EPOCH.to_string(), "1970-01-01T00:00:00Z");
/// ```
impl fmt::Display for UnixTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let days = self.0.div_euclid(86_400);
        let secs_of_day = self.0.rem_euclid(86_400);
        let (year, month, day) = civil_from_days(days);
        write!(
            f,
            "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
            secs_of_day / 3600,
            secs_of_day / 60 % 60,
            secs_of_day % 60
        )
    }
}

/// The proleptic Gregorian date of a day count since 1970-01-01 (Howard
/// Hinnant's `civil_from_days`, valid for the whole `i64` second range).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * shifted_month + 2) / 5 + 1;
    let month = if shifted_month < 10 {
        shifted_month + 3
    } else {
        shifted_month - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    // Both are in range by construction (1..=31 and 1..=12).
    (
        year,
        u32::try_from(month).unwrap_or(1),
        u32::try_from(day).unwrap_or(1),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn displays_rfc3339_across_leap_years_and_before_the_epoch() {
        for (secs, text) in [
            (0, "1970-01-01T00:00:00Z"),
            (951_782_400, "2000-02-29T00:00:00Z"),
            (1_709_251_199, "2024-02-29T23:59:59Z"),
            (4_107_542_400, "2100-03-01T00:00:00Z"),
            (-1, "1969-12-31T23:59:59Z"),
            (-86_400 * 365, "1969-01-01T00:00:00Z"),
        ] {
            assert_eq!(UnixTime::from_secs(secs).to_string(), text, "{secs}");
        }
        // The extremes format without overflow.
        assert!(UnixTime::from_secs(i64::MAX).to_string().ends_with('Z'));
        assert!(UnixTime::from_secs(i64::MIN).to_string().ends_with('Z'));
    }

    #[test]
    fn converts_to_and_from_system_time() {
        let time = UnixTime::from_secs(1_700_000_000);
        assert_eq!(UnixTime::from(time.to_system_time()), time);
        assert_eq!(
            UnixTime::from(SystemTime::from(UnixTime::from_secs(-5))).as_secs(),
            -5
        );
        let before = UNIX_EPOCH - Duration::from_millis(1500);
        assert_eq!(UnixTime::from(before).as_secs(), -2);
        let after = UNIX_EPOCH + Duration::from_millis(1500);
        assert_eq!(UnixTime::from(after).as_secs(), 1);
    }
}
