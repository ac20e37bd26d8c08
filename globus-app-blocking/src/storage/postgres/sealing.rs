//! Rows to records and back: the token files' record JSON, sealed with
//! AES-256-GCM when sealing keys are given.

use globus_app_proto::storage::sqlite::{decode_record, encode_record};
use globus_app_proto::token::TokenData;

use super::{PostgresTokenStorage, StorageError};

impl PostgresTokenStorage {
    /// The record of a row (`stored`, sealed with `key_id` if given).
    pub(super) fn decode(
        &self,
        resource_server: &str,
        stored: &str,
        key_id: Option<&str>,
    ) -> Result<TokenData, StorageError> {
        let inner = &self.inner;
        let corrupt = |reason: String| StorageError::CorruptRow {
            table: inner.table.display.clone(),
            namespace: inner.namespace.clone(),
            resource_server: resource_server.to_owned(),
            reason,
        };
        let opened;
        let json = match (key_id, &inner.keys) {
            (None, _) => stored,
            (Some(key_id), Some(keys)) => {
                opened = keys
                    .open(key_id, &inner.namespace, resource_server, stored)
                    .map_err(|e| corrupt(e.to_string()))?;
                &opened
            }
            (Some(key_id), None) => {
                return Err(corrupt(format!(
                    "the record is sealed with key {key_id:?}, and no sealing keys were given"
                )));
            }
        };
        decode_record(resource_server, json).map_err(|e| corrupt(e.to_string()))
    }

    /// The row text and key id for `record`.
    pub(super) fn encode(
        &self,
        record: &TokenData,
    ) -> Result<(String, Option<String>), StorageError> {
        let json = encode_record(record);
        let Some(keys) = &self.inner.keys else {
            return Ok((json, None));
        };
        let mut nonce = [0u8; 12];
        getrandom::fill(&mut nonce).map_err(|e| StorageError::Randomness {
            reason: e.to_string(),
        })?;
        let sealed = keys.seal(&self.inner.namespace, &record.resource_server, &json, nonce);
        Ok((sealed.text, Some(sealed.key_id)))
    }
}
