//! How long a file-backed storage trusts its in-memory snapshot before
//! looking at the file again: the warm path makes no system call.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How long a snapshot is served without looking at the file, by default.
pub const DEFAULT_RECHECK_INTERVAL: Duration = Duration::from_secs(1);

/// When the snapshot was last confirmed against the file, and for how long
/// a confirmation holds. Lock-free: read on every `load`.
#[derive(Debug)]
pub(crate) struct Freshness {
    origin: Instant,
    /// Nanoseconds after `origin` of the last confirmation, plus one; 0
    /// when the snapshot must be confirmed before its next use.
    confirmed: AtomicU64,
    interval_nanos: AtomicU64,
    /// Advanced whenever the snapshot is replaced.
    version: AtomicU64,
}

impl Default for Freshness {
    fn default() -> Self {
        Self {
            origin: Instant::now(),
            confirmed: AtomicU64::new(0),
            interval_nanos: AtomicU64::new(nanos(DEFAULT_RECHECK_INTERVAL)),
            version: AtomicU64::new(0),
        }
    }
}

fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

impl Freshness {
    pub(crate) fn set_interval(&self, interval: Duration) {
        self.interval_nanos
            .store(nanos(interval), Ordering::Relaxed);
    }

    fn elapsed(&self) -> u64 {
        nanos(self.origin.elapsed())
    }

    /// Whether the snapshot was confirmed less than the interval ago.
    pub(crate) fn is_fresh(&self) -> bool {
        self.is_fresh_at(Instant::now())
    }

    /// Whether the snapshot was confirmed less than the interval before
    /// `now`.
    fn is_fresh_at(&self, now: Instant) -> bool {
        let confirmed = self.confirmed.load(Ordering::Acquire);
        let elapsed = nanos(now.saturating_duration_since(self.origin));
        confirmed != 0
            && elapsed.saturating_add(1).saturating_sub(confirmed)
                < self.interval_nanos.load(Ordering::Relaxed)
    }

    /// The snapshot matches the file now.
    pub(crate) fn confirm(&self) {
        self.confirmed
            .store(self.elapsed().saturating_add(1), Ordering::Release);
    }

    /// The snapshot was replaced (its content may differ): stamps taken
    /// before no longer match. Called before the new snapshot is visible.
    pub(crate) fn replaced(&self) {
        self.version.fetch_add(1, Ordering::AcqRel);
    }

    /// [`TokenStorage::snapshot_version`](super::TokenStorage::snapshot_version):
    /// the version of a fresh snapshot; loads and compares only.
    pub(crate) fn fresh_version(&self, now: Instant) -> Option<u64> {
        let version = self.version.load(Ordering::Acquire);
        self.is_fresh_at(now).then_some(version)
    }

    /// The next use must look at the file (before a renewal, after a
    /// failure).
    pub(crate) fn expire(&self) {
        self.confirmed.store(0, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_confirmation_holds_for_the_interval_and_expire_ends_it() {
        let freshness = Freshness::default();
        assert!(!freshness.is_fresh(), "never confirmed");
        freshness.confirm();
        assert!(freshness.is_fresh());
        freshness.expire();
        assert!(!freshness.is_fresh());
        freshness.set_interval(Duration::ZERO);
        freshness.confirm();
        assert!(!freshness.is_fresh(), "a zero interval always looks");
        assert_eq!(freshness.fresh_version(Instant::now()), None);
    }

    #[test]
    fn the_version_changes_with_the_snapshot_and_shows_only_when_fresh() {
        let freshness = Freshness::default();
        assert_eq!(freshness.fresh_version(Instant::now()), None);
        freshness.confirm();
        let first = freshness.fresh_version(Instant::now()).unwrap();
        freshness.confirm();
        assert_eq!(
            freshness.fresh_version(Instant::now()),
            Some(first),
            "confirmed, unchanged"
        );
        freshness.replaced();
        assert_ne!(freshness.fresh_version(Instant::now()), Some(first));
        freshness.expire();
        assert_eq!(freshness.fresh_version(Instant::now()), None);
        freshness.set_interval(Duration::from_millis(20));
        freshness.confirm();
        std::thread::sleep(Duration::from_millis(40));
        assert!(!freshness.is_fresh(), "the interval has passed");
    }
}
