//! Token storage formats: the JSON token file, the SQLite record encoding,
//! and the default token-file location, all compatible with the Python SDK
//! so that a Python tool and a Rust tool can share one token file.
//!
//! This module only encodes and decodes; reading and writing files (with
//! locking and atomic replacement) is the adapters' job.

mod json_file;
mod paths;
mod python_json;
pub mod sealing;
pub mod sqlite;

pub use json_file::{JSON_FORMAT_VERSION, JsonTokenFile};
pub use paths::{
    AppNameError, TokenFileFormat, default_token_file_relative_path, slugify_app_name,
};

use crate::token::TokenDataError;

/// The namespace the Python SDK's apps always use, and this crate's default.
pub const DEFAULT_NAMESPACE: &str = "DEFAULT";

/// The `globus-sdk.version` value written into token files: the Python SDK
/// version whose formats this crate writes byte for byte. The Python SDK
/// reads any string here; it is informational.
pub const TOKEN_FILE_WRITER_VERSION: &str = "4.10.0";

/// A token file or record that cannot be decoded. The adapters add the path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StorageCodecError {
    /// The content is not JSON (an empty or truncated file, say).
    #[error("token data is not valid JSON (line {line}, column {column})")]
    NotJson {
        /// The line of the syntax error.
        line: usize,
        /// The column of the syntax error.
        column: usize,
    },
    /// The JSON root is not an object.
    #[error("the token file's root is not a JSON object")]
    NotAnObject,
    /// `format_version` is missing or not a version this crate reads.
    #[error("existing data file is in an unknown format (format_version={})", .0.as_deref().unwrap_or("None"))]
    UnknownFormatVersion(Option<String>),
    /// The document's structure is wrong.
    #[error("existing data file is malformed: {0}")]
    Malformed(&'static str),
    /// A namespace's value is not an object.
    #[error("existing data file is malformed: namespace '{0}' is not an object")]
    InvalidNamespace(String),
    /// A record lacks a field or has one of the wrong type.
    #[error("invalid token data for resource server '{resource_server}': {source}")]
    InvalidRecord {
        /// The resource server the record is stored under.
        resource_server: String,
        /// What is wrong with it.
        source: TokenDataError,
    },
}

#[cfg(test)]
mod tests;
