//! The level-1 cache: loads served from memory for `max_staleness`, and
//! from the last rows read while PostgreSQL is unreachable. Its age and
//! version are atomics (`Inner::freshness`), which
//! [`snapshot_version`](crate::storage::TokenStorage::snapshot_version)
//! reads without the cache's lock.

use std::sync::PoisonError;
use std::sync::atomic::Ordering;

use globus_app_proto::app::TokenSet;
use globus_app_proto::token::TokenData;

use super::{PostgresTokenStorage, StorageError};

pub(super) struct Cached {
    tokens: TokenSet,
    /// A renewal lock was taken since: read the rows again. (When the rows
    /// were last read, or a read last failed, is `Inner::freshness`.)
    stale: bool,
}

impl PostgresTokenStorage {
    /// The cached tokens, while they are not older than `max_staleness`
    /// and no renewal lock was taken since they were read.
    pub(super) fn fresh_cache(&self) -> Option<TokenSet> {
        let inner = &self.inner;
        // A renewal lock expires the freshness too.
        if !inner.freshness.is_fresh() {
            return None;
        }
        let cache = inner.cache.read().unwrap_or_else(PoisonError::into_inner);
        cache
            .as_ref()
            .filter(|cached| !cached.stale)
            .map(|cached| cached.tokens.clone())
    }

    /// Reads the rows and caches them; when PostgreSQL is unreachable,
    /// serves the cached tokens (unless a renewal lock was taken since).
    pub(super) fn load_through_cache(&self) -> Result<TokenSet, StorageError> {
        let inner = &self.inner;
        let result = self.query();
        let mut cache = inner.cache.write().unwrap_or_else(PoisonError::into_inner);
        match result {
            Ok(tokens) => {
                if inner.unreachable.swap(false, Ordering::Relaxed) {
                    crate::trace::shared_store(&inner.table.display, true);
                }
                inner.freshness.replaced();
                *cache = Some(Cached {
                    tokens: tokens.clone(),
                    stale: false,
                });
                inner.freshness.confirm();
                Ok(tokens)
            }
            // Unreachable: keep serving what was read last, and try the
            // server again after another interval. Under a renewal lock
            // (`stale`) the row must be read, so the error stands.
            Err(
                error @ (StorageError::Unavailable { .. } | StorageError::PoolExhausted { .. }),
            ) => {
                if !inner.unreachable.swap(true, Ordering::Relaxed) {
                    crate::trace::shared_store(&inner.table.display, false);
                }
                match cache.as_mut() {
                    Some(cached) if !cached.stale => {
                        inner.freshness.confirm();
                        let tokens = cached.tokens.clone();
                        drop(cache);
                        self.failed(error);
                        Ok(tokens)
                    }
                    _ => Err(self.failed(error)),
                }
            }
            Err(error) => Err(error),
        }
    }

    /// From now on (a renewal lock was taken) the rows must be read again,
    /// not served from the cache.
    pub(super) fn mark_cache_stale(&self) {
        self.inner.freshness.expire();
        if let Some(cached) = self
            .inner
            .cache
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .as_mut()
        {
            cached.stale = true;
        }
    }

    /// Applies `change` to the cached records, if any (the cache's age is
    /// kept: rows other machines wrote are still re-read in time).
    pub(super) fn update_cache(&self, change: impl FnOnce(&mut Vec<TokenData>)) {
        let mut cache = self
            .inner
            .cache
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(cached) = cache.as_mut() {
            let mut records = cached.tokens.records().to_vec();
            change(&mut records);
            self.inner.freshness.replaced();
            cached.tokens = TokenSet::new(records);
        }
    }
}
