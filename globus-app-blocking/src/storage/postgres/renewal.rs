//! The renewal lease across machines: a row in `<table>_leases` naming
//! its holder and when it expires, taken and committed before the grant is
//! sent; and the renewal's result written with a compare-and-set on the
//! token row's version.
//!
//! Nothing here holds a connection or relies on session state between
//! statements (every statement commits on its own), so a dropped
//! connection does not end a lease, and the same design works through a
//! pooler in transaction mode.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use postgres::types::Type;

use super::connection::off_this_thread;
use super::{PostgresTokenStorage, RenewalGuard, SharedRenewalLock, StorageError};

/// What the holder of a lease read of its row: the compare-and-set
/// compares against it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum SeenVersion {
    /// The row has not been read under the lease.
    NotRead,
    /// There was no row.
    Absent,
    /// The row's version.
    Version(i64),
}

/// This storage's live leases: resource server to what was read under it.
pub(super) type Leases = Mutex<HashMap<String, SeenVersion>>;

/// The first and longest pause between two attempts to take a lease.
const FIRST_POLL: Duration = Duration::from_millis(20);
const LONGEST_POLL: Duration = Duration::from_millis(250);

impl PostgresTokenStorage {
    /// Takes this process's renewal lock of `resource_server`, then the
    /// lease every machine on the table shares. With `wait`, waits while
    /// another holder's lease is live (up to the lock timeout); without,
    /// returns `None` at once when this process or another machine holds
    /// it. A lease that expired is taken over.
    ///
    /// A waiter watches the token row too: once it has moved past the
    /// version this storage last read (the one the caller found due), or
    /// past the one when the lease was first found held, another machine
    /// has renewed, and the waiter needs no lease of its own. It gets a
    /// guard without one, under which the row is read again (the fresh
    /// token) and any write is still a compare-and-set against what it
    /// read; so an expiry costs one lease take, not one per waiter, late
    /// ones included.
    pub(super) fn lock_renewal_across_machines(
        &self,
        resource_server: &str,
        wait: bool,
    ) -> Result<Option<RenewalGuard>, StorageError> {
        let inner = &self.inner;
        let in_process = if wait {
            inner.renewals.lock(resource_server)?
        } else {
            let Some(in_process) = inner.renewals.try_lock(resource_server) else {
                return Ok(None);
            };
            in_process
        };
        let holder = holder_id();
        let started = Instant::now();
        let mut pause = FIRST_POLL;
        let mut attempts = 0u32;
        // The row's version the caller's decision rests on: the last read
        // (what it found due), else the one when the lease was first found
        // held. Once the row is past it, someone else renewed.
        let mut baseline = self
            .inner
            .last_read
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(resource_server)
            .map_or(SeenVersion::NotRead, |version| {
                SeenVersion::Version(*version)
            });
        let previous = loop {
            attempts += 1;
            // Looked at before trying the lease: a holder that wrote and
            // released since the last look leaves nothing to take.
            if baseline != SeenVersion::NotRead && self.row_version(resource_server)? != baseline {
                crate::trace::lease("renewed elsewhere", resource_server, started.elapsed());
                return Ok(Some(self.renewed_elsewhere(in_process, resource_server)));
            }
            if let Some(previous) = self.try_take_lease(resource_server, &holder, baseline)? {
                break previous;
            }
            if !wait {
                return Ok(None);
            }
            if baseline == SeenVersion::NotRead {
                baseline = self.row_version(resource_server)?;
            }
            if started.elapsed() + pause > inner.lock_timeout {
                crate::trace::lease("lease wait timed out", resource_server, started.elapsed());
                return Err(StorageError::LockTimeout {
                    lock: format!(
                        "renewal lease of {}/{} in {}",
                        inner.namespace, resource_server, inner.table.display
                    ),
                });
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(LONGEST_POLL);
        };
        // On a table upgraded from schema 1, the previous release's
        // processes may still renew under their advisory lock: hold it too.
        let legacy = if inner.legacy_lock.load(Ordering::Relaxed) {
            let remaining = inner.lock_timeout.saturating_sub(started.elapsed());
            match self.take_legacy_lock(resource_server, wait.then_some(remaining)) {
                Ok(Some(legacy)) => Some(legacy),
                Ok(None) => {
                    self.release_lease(resource_server, &holder);
                    return Ok(None);
                }
                Err(error) => {
                    self.release_lease(resource_server, &holder);
                    return Err(error);
                }
            }
        } else {
            None
        };
        let waited = started.elapsed();
        match previous {
            Previous::None => crate::trace::lease("lease taken", resource_server, waited),
            Previous::Expired => {
                crate::trace::lease("expired lease taken over", resource_server, waited);
            }
        }
        if attempts > 1 {
            crate::trace::lease("lease waited for", resource_server, waited);
        }
        inner
            .leases
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(resource_server.to_owned(), SeenVersion::NotRead);
        // From here on the row must be read again, not served from cache.
        self.mark_cache_stale();
        let heartbeat = inner
            .lease_heartbeat
            .then(|| Heartbeat::start(self.clone(), resource_server, &holder));
        Ok(Some(RenewalGuard::with_holder(
            in_process,
            Box::new(Lease {
                storage: self.clone(),
                resource_server: resource_server.to_owned(),
                holder: Some(holder),
                heartbeat,
                legacy,
            }),
        )))
    }

    /// The schema-1 release's renewal lock of `resource_server` (a
    /// session advisory lock, keyed as it keys it), on a pooled connection
    /// held until released: waited for up to `wait`, or, without, tried
    /// once (`None`: one of its processes is renewing).
    fn take_legacy_lock(
        &self,
        resource_server: &str,
        wait: Option<Duration>,
    ) -> Result<Option<LegacyLock>, StorageError> {
        let inner = &self.inner;
        let key = lock_key(&[&inner.table.display, &inner.namespace, resource_server]);
        let name = format!(
            "{} advisory lock of {}/{} (the schema-1 release's)",
            inner.table.display, inner.namespace, resource_server
        );
        let mut connection = self.connection()?;
        let taken = match wait {
            // One round trip; the session-level lock outlives the
            // transaction, which only scopes the timeout. Only integers
            // are spliced in.
            Some(timeout) => connection
                .batch_execute(&format!(
                    "BEGIN; SET LOCAL lock_timeout = {}; SELECT pg_advisory_lock({key}); COMMIT;",
                    timeout.as_millis().max(1)
                ))
                .map(|()| true),
            None => connection
                .query_one(&format!("SELECT pg_try_advisory_lock({key})"), &[])
                .map(|row| row.get::<_, bool>(0)),
        };
        match taken {
            Ok(true) => Ok(Some(LegacyLock {
                connection: Mutex::new(Some(connection)),
                key,
            })),
            Ok(false) => Ok(None),
            Err(error) => {
                // Leave no aborted transaction on a pooled connection.
                let _ = connection.batch_execute("ROLLBACK");
                Err(super::connection::classify(error, &name))
            }
        }
    }

    /// The version of `resource_server`'s row now.
    fn row_version(&self, resource_server: &str) -> Result<SeenVersion, StorageError> {
        let inner = &self.inner;
        let sql = format!(
            "SELECT version FROM {} WHERE namespace = $1 AND resource_server = $2",
            inner.table.quoted
        );
        let rows = self.run(&inner.table.display, |connection| {
            connection.query_typed(
                &sql,
                &[
                    (&inner.namespace, Type::TEXT),
                    (&resource_server, Type::TEXT),
                ],
            )
        })?;
        Ok(rows
            .first()
            .map_or(SeenVersion::Absent, |row| SeenVersion::Version(row.get(0))))
    }

    /// The guard of a waiter whose holder wrote the row: this process's
    /// lock and no lease. The row is read again under it, and a write
    /// under it compares with what that read found, as under a lease.
    fn renewed_elsewhere(
        &self,
        in_process: super::super::locks::InProcessGuard,
        resource_server: &str,
    ) -> RenewalGuard {
        self.inner
            .leases
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(resource_server.to_owned(), SeenVersion::NotRead);
        self.mark_cache_stale();
        RenewalGuard::with_holder(
            in_process,
            Box::new(Lease {
                storage: self.clone(),
                resource_server: resource_server.to_owned(),
                holder: None,
                heartbeat: None,
                legacy: None,
            }),
        )
    }

    /// Extends this holder's lease by `lease_duration` from now; `false`
    /// if it is no longer this holder's (it lapsed and was taken over).
    fn extend_lease(&self, resource_server: &str, holder: &str) -> Result<bool, StorageError> {
        let inner = &self.inner;
        let sql = format!(
            "UPDATE {} SET expires_at = clock_timestamp() + make_interval(secs => $4)
             WHERE namespace = $1 AND resource_server = $2 AND holder = $3",
            inner.table.quoted_leases
        );
        let seconds = inner.lease_duration.as_secs_f64();
        let updated = self.run(&inner.table.display, |connection| {
            connection.execute_typed(
                &sql,
                &[
                    (&inner.namespace, Type::TEXT),
                    (&resource_server, Type::TEXT),
                    (&holder, Type::TEXT),
                    (&seconds, Type::FLOAT8),
                ],
            )
        })?;
        Ok(updated > 0)
    }

    /// One attempt: `Some` if the lease is now ours (free, expired, or
    /// already ours: a retried statement), `None` while another holder's
    /// is live. The expiry is the server's clock, so machines' clocks do
    /// not matter.
    ///
    /// With a `row_version` read (the token row's version the caller's
    /// decision rests on), the lease is taken only while the row is still
    /// at it, in the same statement: a holder that wrote the
    /// row and released its lease since the caller last looked leaves
    /// nothing to take (it commits its write before its release, so a
    /// snapshot that finds the lease free finds the write too).
    fn try_take_lease(
        &self,
        resource_server: &str,
        holder: &str,
        row_version: SeenVersion,
    ) -> Result<Option<Previous>, StorageError> {
        let inner = &self.inner;
        let sql = format!(
            "WITH previous AS (
                 SELECT holder FROM {leases} WHERE namespace = $1 AND resource_server = $2
             )
             INSERT INTO {leases} AS lease (namespace, resource_server, holder, expires_at)
             SELECT $1, $2, $3, clock_timestamp() + make_interval(secs => $4)
             WHERE NOT $5 OR (
                 SELECT version FROM {table} WHERE namespace = $1 AND resource_server = $2
             ) IS NOT DISTINCT FROM $6
             ON CONFLICT (namespace, resource_server) DO UPDATE
             SET holder = EXCLUDED.holder, expires_at = EXCLUDED.expires_at
             WHERE lease.expires_at <= clock_timestamp() OR lease.holder = EXCLUDED.holder
             RETURNING (SELECT holder FROM previous)",
            leases = inner.table.quoted_leases,
            table = inner.table.quoted,
        );
        let seconds = inner.lease_duration.as_secs_f64();
        let (compare, expected) = match row_version {
            SeenVersion::NotRead => (false, None),
            SeenVersion::Absent => (true, None),
            SeenVersion::Version(version) => (true, Some(version)),
        };
        let rows = self.run(&inner.table.display, |connection| {
            connection.query_typed(
                &sql,
                &[
                    (&inner.namespace, Type::TEXT),
                    (&resource_server, Type::TEXT),
                    (&holder, Type::TEXT),
                    (&seconds, Type::FLOAT8),
                    (&compare, Type::BOOL),
                    (&expected, Type::INT8),
                ],
            )
        })?;
        Ok(rows.first().map(|row| {
            let previous: Option<String> = row.get(0);
            match previous {
                Some(previous) if previous != holder => Previous::Expired,
                _ => Previous::None,
            }
        }))
    }

    /// Keeps the last-read versions true to the cache after this storage's
    /// own write of `resource_server` (the cache now holds what was
    /// written): its new version, or, not known, none (the next renewal
    /// then takes its baseline when it finds the lease held). Without it,
    /// a renewal within `max_staleness` of this storage's own write would
    /// take that write for another machine's and renew without a lease.
    pub(super) fn note_own_write(&self, resource_server: &str, version: Option<i64>) {
        let mut last_read = self
            .inner
            .last_read
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        match version {
            Some(version) => last_read.insert(resource_server.to_owned(), version),
            None => last_read.remove(resource_server),
        };
    }

    /// Records the versions of leased rows read by a query (`rows`: each
    /// resource server read and its version).
    pub(super) fn note_versions_read<'a>(&self, rows: impl Iterator<Item = (&'a str, i64)>) {
        let rows: Vec<(&str, i64)> = rows.collect();
        *self
            .inner
            .last_read
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = rows
            .iter()
            .map(|(resource_server, version)| ((*resource_server).to_owned(), *version))
            .collect();
        let mut leases = self
            .inner
            .leases
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if leases.is_empty() {
            return;
        }
        for seen in leases.values_mut() {
            *seen = SeenVersion::Absent;
        }
        for (resource_server, version) in rows {
            if let Some(seen) = leases.get_mut(resource_server) {
                *seen = SeenVersion::Version(version);
            }
        }
    }

    /// What the lease of `resource_server`, if this storage holds it, read.
    pub(super) fn seen_under_lease(&self, resource_server: &str) -> Option<SeenVersion> {
        self.inner
            .leases
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(resource_server)
            .copied()
    }

    /// Writes a renewal's record if the row is still the one read under
    /// the lease (or already holds this very record: a retried
    /// statement); with no row read, inserts it unless a row appeared.
    /// Returns the row's new version, or `None`: someone wrote a newer row,
    /// which is kept.
    pub(super) fn compare_and_set(
        &self,
        resource_server: &str,
        seen: SeenVersion,
        text: &str,
        key_id: Option<&str>,
    ) -> Result<Option<i64>, StorageError> {
        let inner = &self.inner;
        let mut params: Vec<(&(dyn postgres::types::ToSql + Sync), Type)> = vec![
            (&inner.namespace, Type::TEXT),
            (&resource_server, Type::TEXT),
            (&text, Type::TEXT),
            (&key_id, Type::TEXT),
        ];
        let sql = match &seen {
            SeenVersion::Version(version) => {
                params.push((version, Type::INT8));
                format!(
                    "UPDATE {} SET record = $3, key_id = $4, version = version + 1, updated_at = now()
                     WHERE namespace = $1 AND resource_server = $2 AND (version = $5 OR record = $3)
                     RETURNING version",
                    inner.table.quoted
                )
            }
            SeenVersion::Absent | SeenVersion::NotRead => format!(
                "INSERT INTO {} AS t (namespace, resource_server, record, key_id)
                 VALUES ($1, $2, $3, $4)
                 ON CONFLICT (namespace, resource_server) DO UPDATE SET updated_at = now()
                 WHERE t.record = EXCLUDED.record
                 RETURNING t.version",
                inner.table.quoted
            ),
        };
        let rows = self.run(&inner.table.display, |connection| {
            connection.query_typed(&sql, &params)
        })?;
        Ok(rows.first().map(|row| row.get(0)))
    }

    /// Forgets what was read under a guard of `resource_server`.
    fn forget_lease(&self, resource_server: &str) {
        self.inner
            .leases
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(resource_server);
    }

    /// Ends a lease: forgets it here, then deletes its row if it is still
    /// this holder's.
    fn release_lease(&self, resource_server: &str, holder: &str) {
        let inner = &self.inner;
        self.forget_lease(resource_server);
        let sql = format!(
            "DELETE FROM {} WHERE namespace = $1 AND resource_server = $2 AND holder = $3 RETURNING 1",
            inner.table.quoted_leases
        );
        let deleted = self.run(&inner.table.display, |connection| {
            connection.query_typed(
                &sql,
                &[
                    (&inner.namespace, Type::TEXT),
                    (&resource_server, Type::TEXT),
                    (&holder, Type::TEXT),
                ],
            )
        });
        match deleted {
            Ok(rows) if rows.is_empty() => {
                crate::trace::lease("own lease had expired", resource_server, Duration::ZERO);
            }
            Ok(_) => {}
            // It expires on its own.
            Err(error) => drop(self.failed(error)),
        }
    }
}

/// Whose lease a taken lease replaced.
enum Previous {
    /// No one's (or this holder's own).
    None,
    /// Another holder's, expired: it died, or lost its way.
    Expired,
}

/// A lease holder's id: unique per lease taken, on any machine.
fn holder_id() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    format!(
        "{}/{}/{nanos}/{}",
        gethostname::gethostname().to_string_lossy(),
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// A held lease (or, with no holder, a waiter's guard after the holder
/// wrote: see [`PostgresTokenStorage::renewed_elsewhere`]).
/// [`release`](SharedRenewalLock::release) ends it on the calling thread;
/// dropping it unreleased ends it off the dropping thread (the postgres
/// client must not block an executor's thread), which may not finish if
/// the process exits first (the lease then expires).
struct Lease {
    storage: PostgresTokenStorage,
    resource_server: String,
    holder: Option<String>,
    heartbeat: Option<Heartbeat>,
    /// The schema-1 release's lock, held beside the lease on an upgraded
    /// table; released (on its own connection) when this drops.
    legacy: Option<LegacyLock>,
}

impl SharedRenewalLock for Lease {
    fn release(mut self: Box<Self>) {
        if let Some(heartbeat) = self.heartbeat.take() {
            heartbeat.stop();
        }
        if let Some(legacy) = self.legacy.take() {
            legacy.unlock();
        }
        match self.holder.take() {
            Some(holder) => self.storage.release_lease(&self.resource_server, &holder),
            None => self.storage.forget_lease(&self.resource_server),
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        // Its thread ends as its sender drops, without a statement.
        drop(self.heartbeat.take());
        let Some(holder) = self.holder.take() else {
            // Released already, or a guard without a lease: nothing in
            // PostgreSQL to end.
            self.storage.forget_lease(&self.resource_server);
            return;
        };
        let storage = self.storage.clone();
        let resource_server = std::mem::take(&mut self.resource_server);
        off_this_thread(move || storage.release_lease(&resource_server, &holder));
    }
}

impl std::fmt::Debug for Lease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lease")
            .field("resource_server", &self.resource_server)
            .finish_non_exhaustive()
    }
}

/// The schema-1 release's renewal lock, held on its own pooled
/// connection: [`unlock`](Self::unlock) releases it on this thread;
/// dropping it releases it off the dropping thread (a connection that died
/// took the lock with it).
struct LegacyLock {
    /// Behind a mutex only to be `Sync`, as a renewal lock must be (a
    /// connection is `Send` alone); never contended.
    connection: Mutex<Option<super::connection::Connection>>,
    key: i64,
}

impl LegacyLock {
    fn take_connection(&mut self) -> Option<super::connection::Connection> {
        self.connection
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }

    fn unlock(mut self) {
        if let Some(connection) = self.take_connection() {
            unlock_advisory(connection, self.key);
        }
    }
}

impl Drop for LegacyLock {
    fn drop(&mut self) {
        if let Some(connection) = self.take_connection() {
            let key = self.key;
            off_this_thread(move || unlock_advisory(connection, key));
        }
    }
}

fn unlock_advisory(mut connection: super::connection::Connection, key: i64) {
    let unlocked = connection.batch_execute(&format!("SELECT pg_advisory_unlock({key})"));
    if unlocked.is_err() {
        // Never return a connection to the pool still holding a lock.
        let _ = connection.batch_execute("SELECT pg_advisory_unlock_all()");
    }
}

/// A lease holder's heartbeat: a thread that extends the lease every
/// quarter of `lease_duration` until its sender drops or it finds the lease
/// no longer its holder's.
struct Heartbeat {
    stop: std::sync::mpsc::Sender<()>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Heartbeat {
    fn start(storage: PostgresTokenStorage, resource_server: &str, holder: &str) -> Self {
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let period = storage.inner.lease_duration / 4;
        let (resource_server, holder) = (resource_server.to_owned(), holder.to_owned());
        let thread = std::thread::Builder::new()
            .name("globus-app-lease".to_owned())
            .spawn(move || {
                while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
                    stopped.recv_timeout(period)
                {
                    match storage.extend_lease(&resource_server, &holder) {
                        Ok(true) => {}
                        Ok(false) => {
                            crate::trace::lease("lease lost: taken over", &resource_server, period);
                            return;
                        }
                        // PostgreSQL unreachable: tried again next beat; the
                        // lease lapses if it stays so.
                        Err(error) => drop(storage.failed(error)),
                    }
                }
            })
            .ok();
        Self { stop, thread }
    }

    /// Stops the heartbeat and waits for its thread (at most one
    /// statement in flight).
    fn stop(self) {
        let Self { stop, thread } = self;
        drop(stop);
        if let Some(thread) = thread {
            let _ = thread.join();
        }
    }
}

/// FNV-1a, 64 bits: a stable advisory-lock key (the schema's creation
/// takes one), the same on every machine and platform.
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

    #[test]
    fn holder_ids_are_unique() {
        assert_ne!(holder_id(), holder_id());
    }
}
