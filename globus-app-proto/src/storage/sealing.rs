//! Token records sealed at rest with AES-256-GCM, for shared stores (the
//! PostgreSQL storage of `globus-app-blocking`).
//!
//! A sealed record is `base64(nonce ‖ ciphertext ‖ tag)` of the record's
//! JSON, with the namespace and resource server as associated data: a row
//! copied to another namespace or resource server does not open. Each key
//! has an id, stored beside the row, so that keys can be rotated: rows are
//! read with any known key and written with the current one. The 12-byte
//! nonce is an input (the caller draws it from a secure source), as every
//! random value of this crate is.
//!
//! ```
//! use globus_app_proto::storage::sealing::{SealingKey, SealingKeys};
//!
//! let keys = SealingKeys::new(SealingKey::new("2026-11", [7; 32]));
//! let sealed = keys.seal("DEFAULT", "transfer.api.globus.org", r#"{"scope":"x"}"#, [1; 12]);
//! assert!(!sealed.text.contains("scope"));
//! let opened = keys.open(&sealed.key_id, "DEFAULT", "transfer.api.globus.org", &sealed.text)?;
//! assert_eq!(opened, r#"{"scope":"x"}"#);
//! // Moved to another resource server's slot: refused.
//! assert!(keys.open(&sealed.key_id, "DEFAULT", "auth.globus.org", &sealed.text).is_err());
//! # Ok::<(), globus_app_proto::storage::sealing::SealingError>(())
//! ```

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};

/// What the associated data starts with; the version lets the format change.
const CONTEXT: &str = "globus-app sealed record v1";

/// One AES-256 key and its id. `Debug` shows the id only.
pub struct SealingKey {
    id: String,
    key: LessSafeKey,
}

impl SealingKey {
    /// A key named `id` (kept beside each row it seals; not secret) from 32
    /// secret bytes.
    pub fn new(id: impl Into<String>, bytes: [u8; 32]) -> Self {
        let key = UnboundKey::new(&AES_256_GCM, &bytes).map_or_else(
            |_| unreachable!("AES-256-GCM takes any 32 bytes"),
            LessSafeKey::new,
        );
        Self { id: id.into(), key }
    }

    /// The key's id.
    pub fn id(&self) -> &str {
        &self.id
    }
}

impl std::fmt::Debug for SealingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SealingKey({:?}, [redacted])", self.id)
    }
}

/// The current key, which seals, and older ones, which only open.
#[derive(Debug)]
pub struct SealingKeys {
    current: SealingKey,
    previous: Vec<SealingKey>,
}

/// A sealed record and the id of the key that sealed it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Sealed {
    /// The id of the sealing key.
    pub key_id: String,
    /// `base64(nonce ‖ ciphertext ‖ tag)`.
    pub text: String,
}

/// A sealed record that could not be opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SealingError {
    /// No key with the row's key id.
    #[error("the record is sealed with key {0:?}, which was not given")]
    UnknownKey(String),
    /// Not base64, or too short to hold a nonce and a tag.
    #[error("the sealed record is malformed")]
    Malformed,
    /// The tag did not verify: the wrong key under this id, a record moved
    /// from another namespace or resource server, or a tampered row.
    #[error("the sealed record does not open with key {0:?} in this slot")]
    Rejected(String),
}

impl SealingKeys {
    /// Seal with `current`.
    pub fn new(current: SealingKey) -> Self {
        Self {
            current,
            previous: Vec::new(),
        }
    }

    /// Also open rows sealed with `key` (an older key, during rotation).
    #[must_use]
    pub fn with_previous(mut self, key: SealingKey) -> Self {
        self.previous.push(key);
        self
    }

    /// The id of the key that seals.
    pub fn current_id(&self) -> &str {
        &self.current.id
    }

    /// Seals `record` for the slot (`namespace`, `resource_server`) with
    /// the current key and a fresh random `nonce` (never reuse one).
    pub fn seal(
        &self,
        namespace: &str,
        resource_server: &str,
        record: &str,
        nonce: [u8; NONCE_LEN],
    ) -> Sealed {
        let mut buffer = record.as_bytes().to_vec();
        let aad = associated_data(namespace, resource_server);
        self.current
            .key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad.as_bytes()),
                &mut buffer,
            )
            .unwrap_or_else(|_| unreachable!("records are far below AES-GCM's size limit"));
        let mut out = Vec::with_capacity(NONCE_LEN + buffer.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&buffer);
        Sealed {
            key_id: self.current.id.clone(),
            text: STANDARD.encode(out),
        }
    }

    /// Opens a record sealed with key `key_id` for the slot (`namespace`,
    /// `resource_server`).
    pub fn open(
        &self,
        key_id: &str,
        namespace: &str,
        resource_server: &str,
        sealed: &str,
    ) -> Result<String, SealingError> {
        let key = std::iter::once(&self.current)
            .chain(&self.previous)
            .find(|key| key.id == key_id)
            .ok_or_else(|| SealingError::UnknownKey(key_id.to_owned()))?;
        let bytes = STANDARD
            .decode(sealed)
            .map_err(|_| SealingError::Malformed)?;
        if bytes.len() < NONCE_LEN + AES_256_GCM.tag_len() {
            return Err(SealingError::Malformed);
        }
        let (nonce, ciphertext) = bytes.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| SealingError::Malformed)?;
        let mut buffer = ciphertext.to_vec();
        let aad = associated_data(namespace, resource_server);
        let plain = key
            .key
            .open_in_place(nonce, Aad::from(aad.as_bytes()), &mut buffer)
            .map_err(|_| SealingError::Rejected(key_id.to_owned()))?;
        String::from_utf8(plain.to_vec()).map_err(|_| SealingError::Malformed)
    }
}

fn associated_data(namespace: &str, resource_server: &str) -> String {
    format!("{CONTEXT}\0{namespace}\0{resource_server}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotation_wrong_keys_swaps_and_tampering() {
        let old = SealingKeys::new(SealingKey::new("old", [1; 32]));
        let sealed = old.seal("ns", "rs", "{}", [9; 12]);
        assert_eq!(sealed.key_id, "old");

        // Rotated: the new key seals, the old one still opens.
        let rotated = SealingKeys::new(SealingKey::new("new", [2; 32]))
            .with_previous(SealingKey::new("old", [1; 32]));
        assert_eq!(rotated.open("old", "ns", "rs", &sealed.text).unwrap(), "{}");
        assert_eq!(rotated.seal("ns", "rs", "{}", [3; 12]).key_id, "new");

        // Without the old key; the wrong bytes under its id; another slot.
        let new_only = SealingKeys::new(SealingKey::new("new", [2; 32]));
        assert_eq!(
            new_only.open("old", "ns", "rs", &sealed.text),
            Err(SealingError::UnknownKey("old".into()))
        );
        let impostor = SealingKeys::new(SealingKey::new("old", [5; 32]));
        assert_eq!(
            impostor.open("old", "ns", "rs", &sealed.text),
            Err(SealingError::Rejected("old".into()))
        );
        for (namespace, resource_server) in [("other", "rs"), ("ns", "other"), ("ns\0rs", "")] {
            assert!(
                old.open("old", namespace, resource_server, &sealed.text)
                    .is_err()
            );
        }

        // Tampered or truncated text.
        let mut bytes = STANDARD.decode(&sealed.text).unwrap();
        bytes[NONCE_LEN] ^= 1;
        let tampered = STANDARD.encode(&bytes);
        assert!(matches!(
            old.open("old", "ns", "rs", &tampered),
            Err(SealingError::Rejected(_))
        ));
        assert_eq!(
            old.open("old", "ns", "rs", "AAAA"),
            Err(SealingError::Malformed)
        );
        assert_eq!(
            old.open("old", "ns", "rs", "not base64!"),
            Err(SealingError::Malformed)
        );
        // Debug never shows key bytes.
        assert_eq!(
            format!("{:?}", SealingKey::new("k", [0xab; 32])),
            "SealingKey(\"k\", [redacted])"
        );
    }

    #[test]
    fn equal_records_seal_differently_under_different_nonces() {
        let keys = SealingKeys::new(SealingKey::new("k", [1; 32]));
        let a = keys.seal("ns", "rs", "same", [1; 12]);
        let b = keys.seal("ns", "rs", "same", [2; 12]);
        assert_ne!(a.text, b.text);
    }
}
