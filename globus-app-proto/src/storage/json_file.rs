//! The JSON token file, byte-compatible with the Python SDK's
//! `JSONTokenStorage` (format 2.0, reading 1.0).

use serde_json::{Map, Value};

use super::python_json::to_python_json;
use super::{StorageCodecError, TOKEN_FILE_WRITER_VERSION};
use crate::token::TokenData;

/// The format version this codec writes.
pub const JSON_FORMAT_VERSION: &str = "2.0";

/// A token file's content: namespaces of token records.
///
/// The document is kept as parsed, so keys, records this process does not
/// touch, and fields it does not know are written back exactly as they were
/// read; only the records it stores are re-encoded. Output is byte-for-byte
/// what the Python SDK writes for the same operations.
///
/// ```
/// use globus_app_proto::storage::JsonTokenFile;
///
/// let bytes = br#"{"by_rs": {"auth.globus.org": {"scope": "openid", "access_token": "A", "refresh_token": null, "token_type": "Bearer", "expires_at_seconds": 1700000000, "resource_server": "auth.globus.org"}}, "format_version": "1.0", "globus-sdk.version": "4.9.0"}"#;
/// let mut file = JsonTokenFile::parse(bytes)?; // a v1 file, upgraded in memory
/// let auth = file.get("DEFAULT", "auth.globus.org")?.unwrap();
/// assert_eq!(auth.scope, "openid");
/// file.remove("DEFAULT", "auth.globus.org");
/// assert_eq!(
///     file.to_bytes(),
///     br#"{"data": {"DEFAULT": {}}, "format_version": "2.0", "globus-sdk.version": "4.10.0"}"#
/// );
/// # Ok::<(), globus_app_proto::storage::StorageCodecError>(())
/// ```
#[derive(Clone, PartialEq)]
pub struct JsonTokenFile {
    root: Map<String, Value>,
}

impl std::fmt::Debug for JsonTokenFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The records hold tokens: show the shape only.
        let mut debug = f.debug_map();
        for namespace in self.namespaces() {
            debug.entry(
                &namespace,
                &self.resource_servers(namespace).collect::<Vec<_>>(),
            );
        }
        debug.finish()
    }
}

impl Default for JsonTokenFile {
    fn default() -> Self {
        Self::new()
    }
}

impl JsonTokenFile {
    /// The content of a token file that does not exist yet.
    pub fn new() -> Self {
        let mut root = Map::new();
        root.insert("data".into(), Value::Object(Map::new()));
        root.insert("format_version".into(), JSON_FORMAT_VERSION.into());
        root.insert(
            "globus-sdk.version".into(),
            TOKEN_FILE_WRITER_VERSION.into(),
        );
        Self { root }
    }

    /// Reads a token file. Format 1.0 (`by_rs`, no namespaces) is upgraded in
    /// memory into namespace `DEFAULT`, as the Python SDK does; it is written
    /// as 2.0 on the next [`to_bytes`](Self::to_bytes).
    pub fn parse(bytes: &[u8]) -> Result<Self, StorageCodecError> {
        let value: Value =
            serde_json::from_slice(bytes).map_err(|e| StorageCodecError::NotJson {
                line: e.line(),
                column: e.column(),
            })?;
        let Value::Object(mut root) = value else {
            return Err(StorageCodecError::NotAnObject);
        };
        let version = match root.get("format_version") {
            Some(Value::String(v)) if v == "1.0" || v == "2.0" => v.clone(),
            other => {
                return Err(StorageCodecError::UnknownFormatVersion(
                    other.map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned)),
                ));
            }
        };
        if version == "1.0" {
            let by_rs = root.remove("by_rs").ok_or(StorageCodecError::Malformed(
                "Invalid v1.0 data (missing 'by_rs')",
            ))?;
            let mut data = Map::new();
            data.insert(super::DEFAULT_NAMESPACE.into(), by_rs);
            root = Map::new();
            root.insert("data".into(), Value::Object(data));
            root.insert("format_version".into(), JSON_FORMAT_VERSION.into());
            root.insert(
                "globus-sdk.version".into(),
                TOKEN_FILE_WRITER_VERSION.into(),
            );
        }
        match root.get("data") {
            Some(Value::Object(namespaces)) => {
                if let Some((name, _)) = namespaces.iter().find(|(_, v)| !v.is_object()) {
                    return Err(StorageCodecError::InvalidNamespace(name.clone()));
                }
            }
            _ => return Err(StorageCodecError::Malformed("'data' must be an object")),
        }
        if !matches!(root.get("globus-sdk.version"), Some(Value::String(_))) {
            return Err(StorageCodecError::Malformed("Invalid 'globus-sdk.version'"));
        }
        Ok(Self { root })
    }

    /// The file content, as the Python SDK's `json.dump` writes it (no
    /// trailing newline).
    pub fn to_bytes(&self) -> Vec<u8> {
        to_python_json(&self.root)
    }

    fn data(&self) -> &Map<String, Value> {
        match self.root.get("data") {
            Some(Value::Object(data)) => data,
            // `parse` and `new` guarantee an object; an empty view otherwise.
            _ => empty_map(),
        }
    }

    fn namespace_mut(&mut self, namespace: &str) -> &mut Map<String, Value> {
        object_entry(object_entry(&mut self.root, "data"), namespace)
    }

    /// The namespaces in the file, in file order.
    pub fn namespaces(&self) -> impl Iterator<Item = &str> {
        self.data().keys().map(String::as_str)
    }

    /// The resource servers stored under `namespace`, in file order.
    pub fn resource_servers(&self, namespace: &str) -> impl Iterator<Item = &str> {
        self.namespace(namespace)
            .into_iter()
            .flat_map(|ns| ns.keys().map(String::as_str))
    }

    fn namespace(&self, namespace: &str) -> Option<&Map<String, Value>> {
        self.data().get(namespace).and_then(Value::as_object)
    }

    /// The record stored under key `resource_server` in `namespace`, if any.
    pub fn get(
        &self,
        namespace: &str,
        resource_server: &str,
    ) -> Result<Option<TokenData>, StorageCodecError> {
        let Some(value) = self
            .namespace(namespace)
            .and_then(|ns| ns.get(resource_server))
        else {
            return Ok(None);
        };
        decode_record(resource_server, value).map(Some)
    }

    /// Every record in `namespace`, in file order.
    pub fn get_all(&self, namespace: &str) -> Result<Vec<TokenData>, StorageCodecError> {
        self.namespace(namespace)
            .into_iter()
            .flatten()
            .map(|(rs, value)| decode_record(rs, value))
            .collect()
    }

    /// Stores records in `namespace`, replacing whole records per resource
    /// server and creating the namespace if needed; stamps the writer
    /// version, as the Python SDK does on every store.
    pub fn store<'a>(&mut self, namespace: &str, records: impl IntoIterator<Item = &'a TokenData>) {
        let ns = self.namespace_mut(namespace);
        for record in records {
            ns.insert(
                record.resource_server.clone(),
                Value::Object(record.to_json()),
            );
        }
        self.root.insert(
            "globus-sdk.version".into(),
            TOKEN_FILE_WRITER_VERSION.into(),
        );
    }

    /// Removes the record for `resource_server` from `namespace`; true if
    /// there was one.
    pub fn remove(&mut self, namespace: &str, resource_server: &str) -> bool {
        let Some(Value::Object(data)) = self.root.get_mut("data") else {
            return false;
        };
        data.get_mut(namespace)
            .and_then(Value::as_object_mut)
            .and_then(|ns| ns.shift_remove(resource_server))
            .is_some()
    }
}

fn decode_record(resource_server: &str, value: &Value) -> Result<TokenData, StorageCodecError> {
    // Like the Python SDK, the record keeps its own `resource_server` field;
    // the map key only locates it.
    TokenData::from_json(value).map_err(|source| StorageCodecError::InvalidRecord {
        resource_server: resource_server.to_owned(),
        source,
    })
}

/// The object under `key`, created (or replacing a non-object) if needed.
fn object_entry<'m>(map: &'m mut Map<String, Value>, key: &str) -> &'m mut Map<String, Value> {
    let slot = map.entry(key).or_insert_with(|| Value::Object(Map::new()));
    if !slot.is_object() {
        *slot = Value::Object(Map::new());
    }
    match slot {
        Value::Object(object) => object,
        _ => unreachable!("the slot was made an object above"),
    }
}

fn empty_map() -> &'static Map<String, Value> {
    static EMPTY: std::sync::OnceLock<Map<String, Value>> = std::sync::OnceLock::new();
    EMPTY.get_or_init(Map::new)
}
