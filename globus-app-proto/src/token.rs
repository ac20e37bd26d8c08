//! Token data: one record per resource server, as stored in token files.

use std::fmt;

use serde_json::{Map, Value};

use crate::UnixTime;
use crate::secret::{AccessToken, RefreshToken};

/// The token data for one resource server (the Python SDK's
/// `TokenStorageData`).
///
/// Field order is the serialisation order of the token files. Fields this
/// version does not know are kept in [`extra`](Self::extra) and written back,
/// so a newer writer's data survives a round trip through this one.
#[derive(Clone, PartialEq)]
#[non_exhaustive]
pub struct TokenData {
    /// The resource server the token is for, e.g. `transfer.api.globus.org`.
    pub resource_server: String,
    /// The identity (id_token `sub`) the token was issued to; `None` for
    /// dependent tokens or when no id_token was seen.
    pub identity_id: Option<String>,
    /// The granted scopes, space-separated.
    pub scope: String,
    /// The bearer token.
    pub access_token: AccessToken,
    /// The refresh token, when refresh tokens were requested.
    pub refresh_token: Option<RefreshToken>,
    /// When the access token expires (`expires_at_seconds`).
    pub expires_at: UnixTime,
    /// The token type, `Bearer` in practice.
    pub token_type: Option<String>,
    /// Record fields this version does not know, kept in their order.
    pub extra: Map<String, Value>,
}

/// A stored record that does not have the fields and types a token record
/// needs. The messages are the Python SDK's `ValidationError` messages.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenDataError {
    /// The record is not a JSON object.
    #[error("token data must be a JSON object")]
    NotAnObject,
    /// A required string field is missing or not a string.
    #[error("'{0}' must be a string")]
    NotAString(&'static str),
    /// An optional string field is neither a string nor null.
    #[error("'{0}' must be a string or null")]
    NotAStringOrNull(&'static str),
    /// `expires_at_seconds` is missing or not an integer.
    #[error("'expires_at_seconds' must be an int")]
    ExpiresAtNotAnInt,
}

/// The record keys in serialisation order.
const FIELDS: [&str; 7] = [
    "resource_server",
    "identity_id",
    "scope",
    "access_token",
    "refresh_token",
    "expires_at_seconds",
    "token_type",
];

impl TokenData {
    /// A record of `resource_server`'s `access_token`, for `scope` (space
    /// separated), expiring at `expires_at`, a `Bearer` token with no
    /// identity, refresh token or other field; set those on it.
    pub fn new(
        resource_server: impl Into<String>,
        scope: impl Into<String>,
        access_token: AccessToken,
        expires_at: UnixTime,
    ) -> Self {
        Self {
            resource_server: resource_server.into(),
            identity_id: None,
            scope: scope.into(),
            access_token,
            refresh_token: None,
            expires_at,
            token_type: Some("Bearer".to_owned()),
            extra: Map::new(),
        }
    }

    /// Whether the access token has expired at `now` (expiry time included).
    pub fn is_expired(&self, now: UnixTime) -> bool {
        self.expires_at <= now
    }

    /// Whether the access token expires within `margin_secs` of `now`, the
    /// test for refreshing ahead of expiry.
    pub fn expires_within(&self, now: UnixTime, margin_secs: i64) -> bool {
        self.expires_at <= now.saturating_add_secs(margin_secs)
    }

    /// The granted scope names.
    pub fn scopes(&self) -> impl Iterator<Item = &str> {
        self.scope.split(' ').filter(|s| !s.is_empty())
    }

    /// The record as the JSON object the token files hold: known fields in
    /// order, `None` fields omitted, then the extra fields.
    pub fn to_json(&self) -> Map<String, Value> {
        let mut map = Map::with_capacity(FIELDS.len() + self.extra.len());
        map.insert(
            "resource_server".into(),
            self.resource_server.clone().into(),
        );
        if let Some(identity_id) = &self.identity_id {
            map.insert("identity_id".into(), identity_id.clone().into());
        }
        map.insert("scope".into(), self.scope.clone().into());
        map.insert("access_token".into(), self.access_token.secret().into());
        if let Some(refresh_token) = &self.refresh_token {
            map.insert("refresh_token".into(), refresh_token.secret().into());
        }
        map.insert(
            "expires_at_seconds".into(),
            self.expires_at.as_secs().into(),
        );
        if let Some(token_type) = &self.token_type {
            map.insert("token_type".into(), token_type.clone().into());
        }
        for (key, value) in &self.extra {
            if !FIELDS.contains(&key.as_str()) {
                map.insert(key.clone(), value.clone());
            }
        }
        map
    }

    /// Reads a stored record, with the Python SDK's type rules: the required
    /// fields must be present with the right type, optional ones may be null
    /// or absent, and unknown fields go to [`extra`](Self::extra).
    pub fn from_json(value: &Value) -> Result<Self, TokenDataError> {
        let map = value.as_object().ok_or(TokenDataError::NotAnObject)?;
        let required = |key: &'static str| {
            map.get(key)
                .and_then(Value::as_str)
                .map(str::to_owned)
                .ok_or(TokenDataError::NotAString(key))
        };
        let optional = |key: &'static str| match map.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(TokenDataError::NotAStringOrNull(key)),
        };
        // Checked in the Python SDK's order, so the first error is the same.
        let resource_server = required("resource_server")?;
        let identity_id = optional("identity_id")?;
        let scope = required("scope")?;
        let access_token = AccessToken::new(required("access_token")?);
        let refresh_token = optional("refresh_token")?.map(RefreshToken::new);
        let expires_at = map
            .get("expires_at_seconds")
            .and_then(Value::as_i64)
            .ok_or(TokenDataError::ExpiresAtNotAnInt)?;
        Ok(Self {
            resource_server,
            identity_id,
            scope,
            access_token,
            refresh_token,
            expires_at: UnixTime::from_secs(expires_at),
            token_type: optional("token_type")?,
            extra: map
                .iter()
                .filter(|(k, _)| !FIELDS.contains(&k.as_str()))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        })
    }

    /// The record to store after a refresh of `self`: the refreshed tokens,
    /// keeping this record's refresh token when the response carried none
    /// (a refresh token is never lost) and its identity (refresh responses
    /// carry no usable id_token).
    #[must_use]
    pub fn refreshed_with(&self, mut refreshed: TokenData) -> TokenData {
        if refreshed.refresh_token.is_none() {
            refreshed.refresh_token.clone_from(&self.refresh_token);
        }
        if refreshed.identity_id.is_none() {
            refreshed.identity_id.clone_from(&self.identity_id);
        }
        refreshed
    }
}

impl fmt::Debug for TokenData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Extra fields may hold anything, secrets included: show their keys only.
        f.debug_struct("TokenData")
            .field("resource_server", &self.resource_server)
            .field("identity_id", &self.identity_id)
            .field("scope", &self.scope)
            .field("access_token", &self.access_token)
            .field("refresh_token", &self.refresh_token)
            .field("expires_at", &self.expires_at)
            .field("token_type", &self.token_type)
            .field("extra_keys", &self.extra.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// The longest lifetime accepted from `expires_in`; larger values are
/// clamped to it (100 years).
pub const MAX_EXPIRES_IN_SECS: i64 = 100 * 365 * 24 * 3600;

/// Turns a token response's `expires_in` into an expiry time.
///
/// The rule, documented because servers vary:
/// - absent or `null`: the token counts as already expired (`now`), as in
///   the Python SDK, so it is refreshed or renewed before use;
/// - a negative number: also `now`;
/// - a number with a fraction: rounded down to whole seconds;
/// - a number above [`MAX_EXPIRES_IN_SECS`]: clamped to it;
/// - anything else (a string, a boolean, ...): `None`, which the response
///   parser reports as a malformed field.
///
/// ```
/// use globus_app_proto::{UnixTime, token::expiry_from_expires_in};
/// use serde_json::json;
/// let now = UnixTime::from_secs(1000);
/// assert_eq!(expiry_from_expires_in(Some(&json!(3600)), now), Some(UnixTime::from_secs(4600)));
/// assert_eq!(expiry_from_expires_in(None, now), Some(now));
/// assert_eq!(expiry_from_expires_in(Some(&json!(-5)), now), Some(now));
/// assert_eq!(expiry_from_expires_in(Some(&json!("3600")), now), None);
/// ```
pub fn expiry_from_expires_in(expires_in: Option<&Value>, now: UnixTime) -> Option<UnixTime> {
    let secs = match expires_in {
        None | Some(Value::Null) => 0,
        Some(Value::Number(n)) => {
            if let Some(i) = n.as_i64() {
                i
            } else if n.is_u64() {
                MAX_EXPIRES_IN_SECS
            } else {
                let f = n.as_f64()?.floor();
                // Float to integer casts saturate in Rust; the clamp below
                // bounds the result either way.
                #[allow(clippy::cast_possible_truncation)]
                let i = f as i64;
                i
            }
        }
        Some(_) => return None,
    };
    Some(now.saturating_add_secs(secs.clamp(0, MAX_EXPIRES_IN_SECS)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sample() -> TokenData {
        TokenData::from_json(&json!({
            "resource_server": "transfer.api.globus.org",
            "identity_id": "id-1",
            "scope": "urn:globus:auth:scope:transfer.api.globus.org:all",
            "access_token": "AT",
            "refresh_token": "RT",
            "expires_at_seconds": 1_700_000_000,
            "token_type": "Bearer",
        }))
        .unwrap()
    }

    #[test]
    fn to_json_keeps_field_order_and_omits_nones() {
        let mut data = sample();
        data.refresh_token = None;
        data.identity_id = None;
        let keys: Vec<_> = data.to_json().keys().cloned().collect();
        assert_eq!(
            keys,
            [
                "resource_server",
                "scope",
                "access_token",
                "expires_at_seconds",
                "token_type"
            ]
        );
    }

    #[test]
    fn unknown_fields_survive_a_round_trip_in_order() {
        let value = json!({
            "resource_server": "rs", "scope": "s", "access_token": "a",
            "expires_at_seconds": 5, "zeta": {"nested": [1, 2]}, "alpha": null,
        });
        let data = TokenData::from_json(&value).unwrap();
        assert_eq!(data.extra.keys().collect::<Vec<_>>(), ["zeta", "alpha"]);
        let back = Value::Object(data.to_json());
        assert_eq!(back["zeta"], json!({"nested": [1, 2]}));
        assert_eq!(TokenData::from_json(&back).unwrap(), data);
    }

    #[test]
    fn invalid_records_give_the_reference_messages() {
        let base = sample().to_json();
        let with = |key: &str, value: Value| {
            let mut m = base.clone();
            m.insert(key.into(), value);
            TokenData::from_json(&Value::Object(m))
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            with("resource_server", json!(1)),
            "'resource_server' must be a string"
        );
        assert_eq!(
            with("refresh_token", json!(1)),
            "'refresh_token' must be a string or null"
        );
        assert_eq!(
            with("expires_at_seconds", json!("1")),
            "'expires_at_seconds' must be an int"
        );
        assert_eq!(
            with("expires_at_seconds", json!(1.5)),
            "'expires_at_seconds' must be an int"
        );
        assert_eq!(
            with("expires_at_seconds", json!(true)),
            "'expires_at_seconds' must be an int"
        );
        let mut missing = base.clone();
        missing.remove("access_token");
        assert_eq!(
            TokenData::from_json(&Value::Object(missing)),
            Err(TokenDataError::NotAString("access_token"))
        );
        assert_eq!(
            TokenData::from_json(&json!([])),
            Err(TokenDataError::NotAnObject)
        );
    }

    #[test]
    fn a_refresh_without_a_refresh_token_keeps_the_old_one() {
        let old = sample();
        let mut new = sample();
        new.access_token = AccessToken::new("AT2");
        new.refresh_token = None;
        new.identity_id = None;
        let merged = old.refreshed_with(new);
        assert_eq!(merged.refresh_token, old.refresh_token);
        assert_eq!(merged.identity_id, old.identity_id);
        assert_eq!(merged.access_token.secret(), "AT2");

        let mut rotated = sample();
        rotated.refresh_token = Some(RefreshToken::new("RT2"));
        assert_eq!(
            old.refreshed_with(rotated).refresh_token.unwrap().secret(),
            "RT2"
        );
    }

    #[test]
    fn expiry_checks_use_the_given_time() {
        let data = sample();
        let at = data.expires_at;
        assert!(!data.is_expired(at.saturating_sub_secs(1)));
        assert!(data.is_expired(at));
        assert!(data.expires_within(at.saturating_sub_secs(60), 60));
        assert!(!data.expires_within(at.saturating_sub_secs(61), 60));
    }

    #[test]
    fn expires_in_rule_covers_every_shape() {
        let now = UnixTime::from_secs(1_000);
        let e = |v: Value| expiry_from_expires_in(Some(&v), now).map(UnixTime::as_secs);
        assert_eq!(e(json!(10)), Some(1_010));
        assert_eq!(e(json!(10.9)), Some(1_010));
        assert_eq!(e(json!(-10)), Some(1_000));
        assert_eq!(e(json!(null)), Some(1_000));
        assert_eq!(e(json!(u64::MAX)), Some(1_000 + MAX_EXPIRES_IN_SECS));
        assert_eq!(e(json!(1e300)), Some(1_000 + MAX_EXPIRES_IN_SECS));
        assert_eq!(e(json!(i64::MAX)), Some(1_000 + MAX_EXPIRES_IN_SECS));
        assert_eq!(e(json!("10")), None);
        assert_eq!(e(json!(true)), None);
        assert_eq!(e(json!({})), None);
    }

    #[test]
    fn debug_hides_tokens_and_extra_values() {
        let mut data = sample();
        data.extra.insert("hidden".into(), json!("EXTRA_SECRET"));
        let debug = format!("{data:?}");
        assert!(!debug.contains("AT\""), "{debug}");
        assert!(!debug.contains("RT\""), "{debug}");
        assert!(!debug.contains("EXTRA_SECRET"), "{debug}");
        assert!(debug.contains("hidden"));
    }
}
