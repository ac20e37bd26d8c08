//! Time as an input: the core never reads a clock.
//!
//! Every decision that depends on time takes a [`UnixTime`] supplied by the
//! caller, so that tests can step time deterministically and adapters decide
//! where time comes from.

use std::fmt;

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

impl fmt::Display for UnixTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}s after the Unix epoch", self.0)
    }
}
