//! The renewal lock across machines: a PostgreSQL advisory lock held on
//! one pooled connection for the renewal, released on unlock or when the
//! connection dies.

use super::connection::{Connection, off_this_thread};
use super::{PostgresTokenStorage, RenewalGuard, StorageError, classify};

impl PostgresTokenStorage {
    /// Takes this process's renewal lock of `resource_server`, then the
    /// advisory lock every machine on the table shares.
    pub(super) fn lock_renewal_across_machines(
        &self,
        resource_server: &str,
    ) -> Result<RenewalGuard, StorageError> {
        let inner = &self.inner;
        let in_process = inner.renewals.lock(resource_server)?;
        let name = format!(
            "{} advisory lock of {}/{}",
            inner.table.display, inner.namespace, resource_server
        );
        let key = lock_key(&[&inner.table.display, &inner.namespace, resource_server]);
        let mut connection = self.connection()?;
        let timeout_ms = inner.lock_timeout.as_millis().max(1);
        // One round trip; the session-level lock outlives the transaction,
        // which only scopes the timeout. Only integers are spliced in.
        let taken = connection.batch_execute(&format!(
            "BEGIN; SET LOCAL lock_timeout = {timeout_ms}; SELECT pg_advisory_lock({key}); COMMIT;"
        ));
        if let Err(error) = taken {
            // Leave no aborted transaction on a pooled connection.
            let _ = connection.batch_execute("ROLLBACK");
            return Err(classify(error, &name));
        }
        // From here on the row must be read again, not served from cache.
        self.mark_cache_stale();
        Ok(RenewalGuard::with_holder(
            in_process,
            Box::new(AdvisoryLock {
                connection: Some(connection),
                key,
            }),
        ))
    }
}

/// FNV-1a, 64 bits: a stable advisory-lock key for a renewal, the same on
/// every machine and platform.
pub(super) fn lock_key(parts: &[&str]) -> i64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for byte in part.bytes().chain([0]) {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    }
    i64::from_ne_bytes(hash.to_ne_bytes())
}

/// A held advisory lock and the connection that holds it; dropping it
/// unlocks, off the dropping thread (a connection that died took the lock
/// with it).
struct AdvisoryLock {
    connection: Option<Connection>,
    key: i64,
}

impl Drop for AdvisoryLock {
    fn drop(&mut self) {
        let (Some(mut connection), key) = (self.connection.take(), self.key) else {
            return;
        };
        off_this_thread(move || {
            let unlocked = connection.batch_execute(&format!("SELECT pg_advisory_unlock({key})"));
            if unlocked.is_err() {
                // Never return a connection to the pool still holding a lock.
                let _ = connection.batch_execute("SELECT pg_advisory_unlock_all()");
            }
        });
    }
}

impl std::fmt::Debug for AdvisoryLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdvisoryLock")
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_keys_are_stable_and_distinct() {
        // Pinned: every machine, and every version of this library that
        // shares a table, must compute the same key.
        assert_eq!(
            lock_key(&["t", "DEFAULT", "auth.globus.org"]),
            -2_756_847_563_967_208_400
        );
        assert_ne!(lock_key(&["t", "ab", "c"]), lock_key(&["t", "a", "bc"]));
    }
}
