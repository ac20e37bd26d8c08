//! The SQLite token database of the Python SDK's `SQLiteTokenStorage`
//! (schema version 2): the statements and the record encoding. The blocking
//! adapter runs the statements.

use serde_json::Value;

use super::StorageCodecError;
use super::python_json::to_python_json;
use crate::token::TokenData;

/// The schema version this crate writes and reads.
pub const SCHEMA_VERSION: &str = "2";

/// The schema versions this crate reads (1 is the legacy `SQLiteAdapter`,
/// whose extra `config_storage` table is ignored).
pub const READABLE_SCHEMA_VERSIONS: [&str; 2] = ["1", "2"];

/// Creates the tables, as the Python SDK does for a new database.
pub const CREATE_SCHEMA: &str = "CREATE TABLE token_storage (
    namespace VARCHAR NOT NULL,
    resource_server VARCHAR NOT NULL,
    token_data_json VARCHAR NOT NULL,
    PRIMARY KEY (namespace, resource_server)
);
CREATE TABLE sdk_storage_adapter_internal (
    attribute VARCHAR NOT NULL,
    value VARCHAR NOT NULL,
    PRIMARY KEY (attribute)
);";

/// Inserts one `(attribute, value)` row of `sdk_storage_adapter_internal`.
pub const INSERT_INTERNAL_ATTRIBUTE: &str =
    "INSERT INTO sdk_storage_adapter_internal(attribute, value) VALUES (?, ?)";

/// The rows a new database gets in `sdk_storage_adapter_internal`.
pub const INITIAL_INTERNAL_ATTRIBUTES: [(&str, &str); 2] = [
    ("globus-sdk.version", super::TOKEN_FILE_WRITER_VERSION),
    ("globus-sdk.database_schema_version", SCHEMA_VERSION),
];

/// Reads the schema version.
pub const SELECT_SCHEMA_VERSION: &str = "SELECT value FROM sdk_storage_adapter_internal WHERE attribute = 'globus-sdk.database_schema_version'";

/// Stores one record: parameters namespace, resource server, record JSON.
pub const REPLACE_RECORD: &str =
    "REPLACE INTO token_storage(namespace, resource_server, token_data_json) VALUES(?, ?, ?)";

/// Reads a namespace: parameter namespace; columns resource server, JSON.
pub const SELECT_NAMESPACE: &str =
    "SELECT resource_server, token_data_json FROM token_storage WHERE namespace=?";

/// Removes one record: parameters namespace, resource server.
pub const DELETE_RECORD: &str = "DELETE FROM token_storage WHERE namespace=? AND resource_server=?";

/// Lists the namespaces.
pub const SELECT_NAMESPACES: &str = "SELECT DISTINCT namespace FROM token_storage";

/// The `token_data_json` column for a record, byte-identical to the Python
/// SDK's `json.dumps(token_data.to_dict())` (plus any extra fields).
pub fn encode_record(record: &TokenData) -> String {
    // Python-style JSON is ASCII-only, so always valid UTF-8.
    String::from_utf8(to_python_json(&record.to_json())).unwrap_or_default()
}

/// Reads a `token_data_json` column.
pub fn decode_record(resource_server: &str, json: &str) -> Result<TokenData, StorageCodecError> {
    let value: Value = serde_json::from_str(json).map_err(|e| StorageCodecError::NotJson {
        line: e.line(),
        column: e.column(),
    })?;
    TokenData::from_json(&value).map_err(|source| StorageCodecError::InvalidRecord {
        resource_server: resource_server.to_owned(),
        source,
    })
}
