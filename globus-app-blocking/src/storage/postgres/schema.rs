//! The table (`CREATE TABLE IF NOT EXISTS`, under an advisory lock) and
//! its schema version, and table names checked and quoted.

use super::renewal::lock_key;
use super::{PostgresTokenStorage, StorageError, classify};

/// The schema version this library writes and reads.
const SCHEMA_VERSION: i32 = 1;

/// A table name, checked and quoted: `name` or `schema.name`.
#[derive(Debug, Clone)]
pub(super) struct QualifiedTable {
    /// As given, for messages.
    pub(super) display: String,
    /// Quoted for SQL.
    pub(super) quoted: String,
    /// The schema-version table beside it, quoted.
    pub(super) quoted_schema_table: String,
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
        let mut schema_table = parts.clone();
        let last = format!("{}_schema", parts[parts.len() - 1]);
        let len = schema_table.len();
        schema_table[len - 1] = &last;
        Ok(Self {
            display: name.to_owned(),
            quoted: quote(&parts),
            quoted_schema_table: quote(&schema_table),
        })
    }
}

impl PostgresTokenStorage {
    pub(super) fn ensure_schema(&self) -> Result<(), StorageError> {
        let table = &self.inner.table;
        let lock = lock_key(&["globus-app schema", &table.display]);
        let mut connection = self.connection()?;
        let mut transaction = connection
            .transaction()
            .map_err(|e| classify(e, &table.display))?;
        let sql = format!(
            "SELECT pg_advisory_xact_lock({lock});
             CREATE TABLE IF NOT EXISTS {table} (
                 namespace text NOT NULL,
                 resource_server text NOT NULL,
                 record text NOT NULL,
                 key_id text,
                 updated_at timestamptz NOT NULL DEFAULT now(),
                 PRIMARY KEY (namespace, resource_server)
             );
             CREATE TABLE IF NOT EXISTS {schema} (version integer NOT NULL);
             INSERT INTO {schema} (version)
                 SELECT {SCHEMA_VERSION} WHERE NOT EXISTS (SELECT 1 FROM {schema});",
            table = table.quoted,
            schema = table.quoted_schema_table,
        );
        transaction
            .batch_execute(&sql)
            .map_err(|e| classify(e, &table.display))?;
        let versions: Vec<i32> = transaction
            .query(
                &format!("SELECT version FROM {}", table.quoted_schema_table),
                &[],
            )
            .map_err(|e| classify(e, &table.display))?
            .iter()
            .map(|row| row.get(0))
            .collect();
        transaction
            .commit()
            .map_err(|e| classify(e, &table.display))?;
        if versions != [SCHEMA_VERSION] {
            return Err(StorageError::UnsupportedTableSchema {
                table: table.display.clone(),
                versions,
            });
        }
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
