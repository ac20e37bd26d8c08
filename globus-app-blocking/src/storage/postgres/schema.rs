//! The tables (`CREATE TABLE IF NOT EXISTS`, under an advisory lock), the
//! schema version and its upgrade, and table names checked and quoted.
//!
//! Schema 2 (this release) adds the token rows' `version`, which renewals
//! compare and set, and the `<table>_leases` table of renewal leases.
//! Schema 1 tables are upgraded in place, once, by the first machine that
//! builds a storage on them; machines still running a release that writes
//! schema 1 then refuse the table (`UnsupportedTableSchema`) when they next
//! build one. Those already running keep renewing under their advisory
//! lock: an upgraded table is marked (`legacy_lock` in `<table>_schema`),
//! and on it this release takes that lock too, for as long as the mark
//! stays (see `PostgresTokenStorage`'s rolling upgrades).

use super::renewal::lock_key;
use super::{PostgresTokenStorage, StorageError};

/// The schema version this library writes and reads.
const SCHEMA_VERSION: i32 = 2;

/// A table name, checked and quoted: `name` or `schema.name`.
#[derive(Debug, Clone)]
pub(super) struct QualifiedTable {
    /// As given, for messages.
    pub(super) display: String,
    /// Quoted for SQL.
    pub(super) quoted: String,
    /// The schema-version table beside it, quoted.
    pub(super) quoted_schema_table: String,
    /// The renewal-lease table beside it, quoted.
    pub(super) quoted_leases: String,
}

impl QualifiedTable {
    pub(super) fn parse(name: &str) -> Result<Self, StorageError> {
        let parts: Vec<&str> = name.split('.').collect();
        let valid = |part: &&str| {
            let mut chars = part.chars();
            chars
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
                && part.len() <= 55
        };
        if parts.is_empty() || parts.len() > 2 || !parts.iter().all(valid) {
            return Err(StorageError::InvalidTableName(name.to_owned()));
        }
        let quote = |parts: &[&str]| {
            parts
                .iter()
                .map(|part| format!("\"{part}\""))
                .collect::<Vec<_>>()
                .join(".")
        };
        let beside = |suffix: &str| {
            let mut parts = parts.clone();
            let last = format!("{}_{suffix}", parts[parts.len() - 1]);
            let len = parts.len();
            parts[len - 1] = &last;
            quote(&parts)
        };
        Ok(Self {
            display: name.to_owned(),
            quoted: quote(&parts),
            quoted_schema_table: beside("schema"),
            quoted_leases: beside("leases"),
        })
    }
}

impl PostgresTokenStorage {
    /// Creates or upgrades the tables and checks their version; notes
    /// whether the table still honours the schema-1 release's lock.
    pub(super) fn ensure_schema(&self) -> Result<(), StorageError> {
        let table = &self.inner.table;
        let lock = lock_key(&["globus-app schema", &table.display]);
        // One transaction of simple statements (no prepared statement
        // outlives it: safe through a pooler in transaction mode), under a
        // transaction-scoped advisory lock so that many machines starting
        // at once do not race.
        let sql = format!(
            "BEGIN;
             SELECT pg_advisory_xact_lock({lock});
             CREATE TABLE IF NOT EXISTS {table} (
                 namespace text NOT NULL,
                 resource_server text NOT NULL,
                 record text NOT NULL,
                 key_id text,
                 updated_at timestamptz NOT NULL DEFAULT now(),
                 version bigint NOT NULL DEFAULT 1,
                 PRIMARY KEY (namespace, resource_server)
             );
             CREATE TABLE IF NOT EXISTS {schema} (version integer NOT NULL);
             INSERT INTO {schema} (version)
                 SELECT {SCHEMA_VERSION} WHERE NOT EXISTS (SELECT 1 FROM {schema});
             ALTER TABLE {table} ADD COLUMN IF NOT EXISTS version bigint NOT NULL DEFAULT 1;
             CREATE TABLE IF NOT EXISTS {leases} (
                 namespace text NOT NULL,
                 resource_server text NOT NULL,
                 holder text NOT NULL,
                 expires_at timestamptz NOT NULL,
                 PRIMARY KEY (namespace, resource_server)
             );
             ALTER TABLE {schema} ADD COLUMN IF NOT EXISTS legacy_lock boolean NOT NULL DEFAULT false;
             UPDATE {schema} SET version = {SCHEMA_VERSION}, legacy_lock = true WHERE version = 1;
             SELECT version, legacy_lock FROM {schema};
             COMMIT;",
            table = table.quoted,
            schema = table.quoted_schema_table,
            leases = table.quoted_leases,
        );
        let messages = self.run(&table.display, |connection| {
            let result = connection.simple_query(&sql);
            if result.is_err() {
                // Leave no aborted transaction on a pooled connection.
                let _ = connection.batch_execute("ROLLBACK");
            }
            result
        })?;
        let rows: Vec<&postgres::SimpleQueryRow> = messages
            .iter()
            .filter_map(|message| match message {
                postgres::SimpleQueryMessage::Row(row) => Some(row),
                _ => None,
            })
            .collect();
        let versions: Vec<i32> = rows
            .iter()
            .filter_map(|row| row.try_get("version").ok().flatten())
            .filter_map(|version| version.parse().ok())
            .collect();
        if versions != [SCHEMA_VERSION] {
            return Err(StorageError::UnsupportedTableSchema {
                table: table.display.clone(),
                versions,
            });
        }
        let legacy = rows
            .iter()
            .any(|row| row.try_get("legacy_lock").ok().flatten() == Some("t"));
        self.inner
            .legacy_lock
            .store(legacy, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_names_are_checked_and_quoted() {
        let table = QualifiedTable::parse("globus_app_tokens").unwrap();
        assert_eq!(table.quoted, "\"globus_app_tokens\"");
        assert_eq!(table.quoted_schema_table, "\"globus_app_tokens_schema\"");
        let qualified = QualifiedTable::parse("run_1.tokens").unwrap();
        assert_eq!(qualified.quoted, "\"run_1\".\"tokens\"");
        assert_eq!(qualified.quoted_schema_table, "\"run_1\".\"tokens_schema\"");
        assert_eq!(qualified.quoted_leases, "\"run_1\".\"tokens_leases\"");
        for bad in [
            "",
            "a.b.c",
            "1abc",
            "a-b",
            "tokens\"; DROP TABLE x; --",
            "a.",
            &"x".repeat(56),
        ] {
            assert!(QualifiedTable::parse(bad).is_err(), "{bad}");
        }
    }
}
