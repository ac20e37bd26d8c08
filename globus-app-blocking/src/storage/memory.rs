//! Tokens kept in memory, lost when the process exits.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use globus_app_proto::app::TokenSet;
use globus_app_proto::token::TokenData;

use super::locks::{RenewalGuard, RenewalLocks};
use super::{StorageError, TokenStorage};

/// Tokens in memory (one namespace per instance). Clones share the tokens.
///
/// ```
/// use globus_app_blocking::storage::{MemoryTokenStorage, TokenStorage};
/// let storage = MemoryTokenStorage::new();
/// assert!(storage.load()?.is_empty());
/// # Ok::<(), globus_app_blocking::storage::StorageError>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct MemoryTokenStorage {
    tokens: Arc<Mutex<TokenSet>>,
    /// Advanced on every change, before it can be seen.
    version: Arc<AtomicU64>,
    renewals: Arc<RenewalLocks>,
}

impl MemoryTokenStorage {
    /// An empty storage.
    pub fn new() -> Self {
        Self::default()
    }

    fn update(&self, change: impl FnOnce(&mut Vec<TokenData>)) {
        let mut tokens = self.tokens.lock().unwrap_or_else(PoisonError::into_inner);
        let mut records = tokens.records().to_vec();
        change(&mut records);
        self.version.fetch_add(1, Ordering::AcqRel);
        *tokens = TokenSet::new(records);
    }
}

impl TokenStorage for MemoryTokenStorage {
    fn load(&self) -> Result<TokenSet, StorageError> {
        Ok(self
            .tokens
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone())
    }

    fn store(&self, records: &[TokenData]) -> Result<(), StorageError> {
        self.update(|stored| merge(stored, records));
        Ok(())
    }

    fn remove(&self, resource_servers: &[String]) -> Result<(), StorageError> {
        self.update(|stored| stored.retain(|t| !resource_servers.contains(&t.resource_server)));
        Ok(())
    }

    fn load_cached(&self) -> Option<TokenSet> {
        self.load().ok()
    }

    fn snapshot_version(&self, _now: std::time::Instant) -> Option<u64> {
        Some(self.version.load(Ordering::Acquire))
    }

    fn wait_for_renewal(&self, resource_server: &str) -> Result<(), StorageError> {
        self.renewals.lock(resource_server).map(drop)
    }

    fn lock_renewal(&self, resource_server: &str) -> Result<RenewalGuard, StorageError> {
        Ok(RenewalGuard::new(
            self.renewals.lock(resource_server)?,
            None,
        ))
    }

    fn try_lock_renewal(
        &self,
        resource_server: &str,
    ) -> Result<Option<RenewalGuard>, StorageError> {
        Ok(self
            .renewals
            .try_lock(resource_server)
            .map(|in_process| RenewalGuard::new(in_process, None)))
    }
}

/// Replaces or appends each record by resource server.
pub(crate) fn merge(stored: &mut Vec<TokenData>, records: &[TokenData]) {
    for record in records {
        match stored
            .iter_mut()
            .find(|t| t.resource_server == record.resource_server)
        {
            Some(slot) => slot.clone_from(record),
            None => stored.push(record.clone()),
        }
    }
}
