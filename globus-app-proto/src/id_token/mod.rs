//! OpenID Connect: the OpenID configuration, the JWKS, and id_token
//! verification against an injected `now`.
//!
//! Checks made (OIDC Core §3.1.3.7), improving on the Python SDK where it
//! checks less:
//! - the algorithm is on an allow-list (RS256/384/512, PS256/384/512,
//!   ES256/384) and, when the OpenID configuration lists algorithms, also
//!   on that list; `none` and HMAC algorithms are always rejected;
//! - the key is chosen by `kid`; a token without `kid` is tried against
//!   each key of a matching type (Globus's JWKS has one key and no `kid`);
//!   an unknown `kid` is [`IdTokenError::UnknownKeyId`], so the caller can
//!   refetch the JWKS once (key rotation);
//! - `iss` equals the configuration's issuer; `aud` contains the client id
//!   (and `azp`, when present with several audiences, is the client id);
//! - `exp`, `iat` and `nbf` hold against `now` with a leeway (300 s, as
//!   the Python SDK uses);
//!
//! [`check_at_hash`] binds a token to its access token; it is not applied
//! by [`verify_id_token`] because Globus Auth's `at_hash` could not be
//! checked against a real access token here (the fixtures' access tokens
//! are placeholders).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::signature::{self, RsaPublicKeyComponents, UnparsedPublicKey};
use serde_json::{Map, Value};

use crate::UnixTime;
use crate::secret::{AccessToken, IdToken};

/// The clock-skew allowance for `exp`, `iat` and `nbf`, in seconds.
pub const DEFAULT_LEEWAY_SECS: i64 = 300;

/// The parts of `/.well-known/openid-configuration` this crate uses.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct OidcConfiguration {
    /// `issuer`: the expected `iss` of id_tokens.
    pub issuer: String,
    /// `jwks_uri`: where the signing keys are.
    pub jwks_uri: String,
    /// `id_token_signing_alg_values_supported` (may be empty).
    pub id_token_signing_alg_values_supported: Vec<String>,
}

impl OidcConfiguration {
    /// Reads the configuration document.
    pub fn from_json(value: &Value) -> Result<Self, IdTokenError> {
        let text = |key: &'static str| {
            value
                .get(key)
                .and_then(Value::as_str)
                .map(str::to_owned)
                .ok_or(IdTokenError::InvalidDocument(key))
        };
        let algorithms = match value.get("id_token_signing_alg_values_supported") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| v.as_str().map(str::to_owned))
                .collect::<Option<_>>()
                .ok_or(IdTokenError::InvalidDocument(
                    "id_token_signing_alg_values_supported",
                ))?,
            Some(_) => {
                return Err(IdTokenError::InvalidDocument(
                    "id_token_signing_alg_values_supported",
                ));
            }
        };
        Ok(Self {
            issuer: text("issuer")?,
            jwks_uri: text("jwks_uri")?,
            id_token_signing_alg_values_supported: algorithms,
        })
    }
}

/// A JSON Web Key Set.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Jwks {
    keys: Vec<Jwk>,
}

/// One public key of a JWKS.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Jwk {
    /// `kid`, if the key has one.
    pub kid: Option<String>,
    /// `alg`, if the key names one.
    pub alg: Option<String>,
    key: PublicKey,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum PublicKey {
    Rsa { n: Vec<u8>, e: Vec<u8> },
    Ec { curve: String, point: Vec<u8> },
    Unsupported,
}

impl Jwks {
    /// Reads a JWKS document (`{"keys": [...]}`). Keys of unsupported types
    /// are kept but never match.
    pub fn from_json(value: &Value) -> Result<Self, IdTokenError> {
        let keys = value
            .get("keys")
            .and_then(Value::as_array)
            .ok_or(IdTokenError::InvalidDocument("keys"))?;
        let keys = keys.iter().map(Jwk::from_json).collect::<Result<_, _>>()?;
        Ok(Self { keys })
    }

    /// The keys.
    pub fn keys(&self) -> &[Jwk] {
        &self.keys
    }
}

fn b64(value: &Map<String, Value>, key: &'static str) -> Result<Vec<u8>, IdTokenError> {
    value
        .get(key)
        .and_then(Value::as_str)
        .and_then(|s| URL_SAFE_NO_PAD.decode(s.trim_end_matches('=')).ok())
        .ok_or(IdTokenError::InvalidDocument(key))
}

impl Jwk {
    fn from_json(value: &Value) -> Result<Self, IdTokenError> {
        let map = value
            .as_object()
            .ok_or(IdTokenError::InvalidDocument("keys"))?;
        let text = |key: &str| map.get(key).and_then(Value::as_str).map(str::to_owned);
        let key = match text("kty").as_deref() {
            Some("RSA") => {
                let mut n = b64(map, "n")?;
                let leading = n.iter().take_while(|b| **b == 0).count();
                n.drain(..leading);
                PublicKey::Rsa {
                    n,
                    e: b64(map, "e")?,
                }
            }
            Some("EC") => {
                let mut point = vec![0x04];
                point.extend(b64(map, "x")?);
                point.extend(b64(map, "y")?);
                PublicKey::Ec {
                    curve: text("crv").unwrap_or_default(),
                    point,
                }
            }
            _ => PublicKey::Unsupported,
        };
        Ok(Self {
            kid: text("kid"),
            alg: text("alg"),
            key,
        })
    }
}

/// The id_token signing algorithms this crate accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Algorithm {
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    Rs256,
    /// RSASSA-PKCS1-v1_5 with SHA-384.
    Rs384,
    /// RSASSA-PKCS1-v1_5 with SHA-512 (what Globus Auth uses).
    Rs512,
    /// RSASSA-PSS with SHA-256.
    Ps256,
    /// RSASSA-PSS with SHA-384.
    Ps384,
    /// RSASSA-PSS with SHA-512.
    Ps512,
    /// ECDSA P-256 with SHA-256.
    Es256,
    /// ECDSA P-384 with SHA-384.
    Es384,
}

impl Algorithm {
    /// The algorithm named `name` (a JWS `alg` value), if allowed.
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "RS256" => Self::Rs256,
            "RS384" => Self::Rs384,
            "RS512" => Self::Rs512,
            "PS256" => Self::Ps256,
            "PS384" => Self::Ps384,
            "PS512" => Self::Ps512,
            "ES256" => Self::Es256,
            "ES384" => Self::Es384,
            _ => return None,
        })
    }

    /// The JWS `alg` value.
    pub fn name(self) -> &'static str {
        match self {
            Self::Rs256 => "RS256",
            Self::Rs384 => "RS384",
            Self::Rs512 => "RS512",
            Self::Ps256 => "PS256",
            Self::Ps384 => "PS384",
            Self::Ps512 => "PS512",
            Self::Es256 => "ES256",
            Self::Es384 => "ES384",
        }
    }

    fn hash(self) -> &'static ring::digest::Algorithm {
        match self {
            Self::Rs256 | Self::Ps256 | Self::Es256 => &ring::digest::SHA256,
            Self::Rs384 | Self::Ps384 | Self::Es384 => &ring::digest::SHA384,
            Self::Rs512 | Self::Ps512 => &ring::digest::SHA512,
        }
    }

    fn verify(self, key: &PublicKey, message: &[u8], signature: &[u8]) -> bool {
        match (self, key) {
            (
                Self::Rs256 | Self::Rs384 | Self::Rs512 | Self::Ps256 | Self::Ps384 | Self::Ps512,
                PublicKey::Rsa { n, e },
            ) => {
                let params: &signature::RsaParameters = match self {
                    Self::Rs256 => &signature::RSA_PKCS1_2048_8192_SHA256,
                    Self::Rs384 => &signature::RSA_PKCS1_2048_8192_SHA384,
                    Self::Rs512 => &signature::RSA_PKCS1_2048_8192_SHA512,
                    Self::Ps256 => &signature::RSA_PSS_2048_8192_SHA256,
                    Self::Ps384 => &signature::RSA_PSS_2048_8192_SHA384,
                    _ => &signature::RSA_PSS_2048_8192_SHA512,
                };
                RsaPublicKeyComponents { n, e }
                    .verify(params, message, signature)
                    .is_ok()
            }
            (Self::Es256, PublicKey::Ec { curve, point }) if curve == "P-256" => {
                UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, point)
                    .verify(message, signature)
                    .is_ok()
            }
            (Self::Es384, PublicKey::Ec { curve, point }) if curve == "P-384" => {
                UnparsedPublicKey::new(&signature::ECDSA_P384_SHA384_FIXED, point)
                    .verify(message, signature)
                    .is_ok()
            }
            _ => false,
        }
    }
}

/// Why an id_token was not accepted. Messages never include the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IdTokenError {
    /// An OpenID configuration or JWKS document lacks a field.
    #[error("the OpenID configuration or JWKS document has a missing or invalid '{0}'")]
    InvalidDocument(&'static str),
    /// Not three base64url parts with JSON header and claims.
    #[error("the id_token is not a well-formed JWT")]
    Malformed,
    /// `alg` is `none`, an HMAC algorithm, or otherwise not allowed.
    #[error("the id_token uses the algorithm {0:?}, which is not allowed")]
    AlgorithmNotAllowed(String),
    /// No key of the JWKS has the token's `kid`: refetch the JWKS once.
    #[error("no key in the JWKS has the id_token's key id {0:?}")]
    UnknownKeyId(String),
    /// No key verifies the signature.
    #[error("the id_token's signature does not verify")]
    BadSignature,
    /// A required claim is missing or has the wrong type.
    #[error("the id_token's claim '{0}' is missing or invalid")]
    InvalidClaim(&'static str),
    /// `iss` is not the expected issuer.
    #[error("the id_token was issued by {found:?}, not {expected:?}")]
    WrongIssuer {
        /// The expected issuer.
        expected: String,
        /// The token's `iss`.
        found: String,
    },
    /// `aud` does not contain the client id (or `azp` names another client).
    #[error("the id_token is not for this client")]
    WrongAudience,
    /// `exp` has passed (beyond the leeway).
    #[error("the id_token expired at {exp} (now {now})")]
    Expired {
        /// The token's `exp`.
        exp: i64,
        /// The time used.
        now: i64,
    },
    /// `iat` or `nbf` is in the future (beyond the leeway).
    #[error("the id_token is not valid yet (iat/nbf {at}, now {now})")]
    NotYetValid {
        /// The token's `iat` or `nbf`.
        at: i64,
        /// The time used.
        now: i64,
    },
    /// `at_hash` does not match the access token.
    #[error("the id_token's at_hash does not match the access token")]
    AccessTokenHashMismatch,
}

impl IdTokenError {
    /// Whether refetching the JWKS may help (an unknown `kid`, or a
    /// signature that no cached key verifies after a key rotation).
    pub fn may_need_new_keys(&self) -> bool {
        matches!(self, Self::UnknownKeyId(_) | Self::BadSignature)
    }
}

/// What an id_token must satisfy.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct IdTokenExpectations<'a> {
    /// The OpenID configuration (issuer and allowed algorithms).
    pub configuration: &'a OidcConfiguration,
    /// The client id the token must be for.
    pub client_id: &'a str,
    /// The leeway for time claims, in seconds.
    pub leeway_secs: i64,
}

impl<'a> IdTokenExpectations<'a> {
    /// An id_token of `configuration`'s issuer for `client_id`, its time
    /// claims allowed [`DEFAULT_LEEWAY_SECS`] of clock skew (set
    /// `leeway_secs` on it for another).
    pub fn new(configuration: &'a OidcConfiguration, client_id: &'a str) -> Self {
        Self {
            configuration,
            client_id,
            leeway_secs: DEFAULT_LEEWAY_SECS,
        }
    }
}

/// The verified claims of an id_token.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct IdTokenClaims {
    /// `sub`: the identity id.
    pub sub: String,
    /// `iss`.
    pub iss: String,
    /// `exp`.
    pub exp: i64,
    /// `iat`.
    pub iat: i64,
    /// Every claim, as sent (email, preferred_username, identity_set, ...).
    pub all: Map<String, Value>,
    /// The algorithm the signature was verified with (`None` when only the
    /// claims were checked).
    pub algorithm: Option<Algorithm>,
}

struct DecodedJwt<'t> {
    header: Map<String, Value>,
    claims: Map<String, Value>,
    signed_part: &'t [u8],
    signature: Vec<u8>,
}

fn decode_part(part: &str) -> Result<Map<String, Value>, IdTokenError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| IdTokenError::Malformed)?;
    match serde_json::from_slice(&bytes) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(IdTokenError::Malformed),
    }
}

fn decode(token: &str) -> Result<DecodedJwt<'_>, IdTokenError> {
    let mut parts = token.split('.');
    let (Some(header), Some(claims), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(IdTokenError::Malformed);
    };
    Ok(DecodedJwt {
        header: decode_part(header)?,
        claims: decode_part(claims)?,
        signed_part: &token.as_bytes()[..header.len() + 1 + claims.len()],
        signature: URL_SAFE_NO_PAD
            .decode(signature)
            .map_err(|_| IdTokenError::Malformed)?,
    })
}

/// Verifies an id_token's signature and claims at `now`.
///
/// ```
/// use globus_app_proto::UnixTime;
/// use globus_app_proto::id_token::{verify_id_token, IdTokenExpectations, Jwks, OidcConfiguration};
/// use globus_app_proto::secret::IdToken;
///
/// let fixture = |name: &str| -> serde_json::Value {
///     let path = format!("{}/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
///     serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
/// };
/// let configuration = OidcConfiguration::from_json(&fixture("oidc_openid_configuration.json")["body"])?;
/// let jwks = Jwks::from_json(&fixture("oidc_jwks.json")["body"])?;
/// let response = fixture("token_authorization_code_with_real_id_token.json");
/// let token = IdToken::new(response["body"]["id_token"].as_str().unwrap());
/// let expectations = IdTokenExpectations::new(&configuration, "7fb58e00-839d-44e3-8047-10a502612dca");
/// let claims = verify_id_token(&token, &jwks, &expectations, UnixTime::from_secs(1_621_500_000))?;
/// assert_eq!(claims.sub, "c8aad43e-d274-11e5-bf98-8b02896cf782");
/// # Ok::<(), globus_app_proto::id_token::IdTokenError>(())
/// ```
pub fn verify_id_token(
    token: &IdToken,
    jwks: &Jwks,
    expectations: &IdTokenExpectations<'_>,
    now: UnixTime,
) -> Result<IdTokenClaims, IdTokenError> {
    let jwt = decode(token.secret())?;
    let alg_name = jwt
        .header
        .get("alg")
        .and_then(Value::as_str)
        .unwrap_or("none");
    let listed = &expectations
        .configuration
        .id_token_signing_alg_values_supported;
    let algorithm = Algorithm::from_name(alg_name)
        .filter(|_| listed.is_empty() || listed.iter().any(|a| a == alg_name))
        .ok_or_else(|| IdTokenError::AlgorithmNotAllowed(alg_name.to_owned()))?;
    let kid = jwt.header.get("kid").and_then(Value::as_str);
    let candidates: Vec<&Jwk> = match kid {
        Some(kid) => {
            let keys: Vec<_> = jwks
                .keys
                .iter()
                .filter(|k| k.kid.as_deref() == Some(kid))
                .collect();
            if keys.is_empty() {
                return Err(IdTokenError::UnknownKeyId(kid.to_owned()));
            }
            keys
        }
        None => jwks.keys.iter().collect(),
    };
    let verified = candidates
        .iter()
        .filter(|k| k.alg.as_deref().is_none_or(|a| a == alg_name))
        .any(|k| algorithm.verify(&k.key, jwt.signed_part, &jwt.signature));
    if !verified {
        return Err(IdTokenError::BadSignature);
    }
    let mut claims = check_claims(jwt.claims, expectations, now)?;
    claims.algorithm = Some(algorithm);
    Ok(claims)
}

/// Checks `at_hash` (when the token has one) against the access token
/// issued with it: the left half of the access token's hash, with the
/// signature algorithm's hash function, base64url-encoded.
pub fn check_at_hash(
    claims: &IdTokenClaims,
    access_token: &AccessToken,
) -> Result<(), IdTokenError> {
    let (Some(at_hash), Some(algorithm)) = (claims.all.get("at_hash"), claims.algorithm) else {
        return Ok(());
    };
    let digest = ring::digest::digest(algorithm.hash(), access_token.secret().as_bytes());
    let half = &digest.as_ref()[..digest.as_ref().len() / 2];
    if at_hash.as_str() == Some(URL_SAFE_NO_PAD.encode(half).as_str()) {
        Ok(())
    } else {
        Err(IdTokenError::AccessTokenHashMismatch)
    }
}

/// Checks the claims of an already signature-verified token.
pub fn check_claims(
    claims: Map<String, Value>,
    expectations: &IdTokenExpectations<'_>,
    now: UnixTime,
) -> Result<IdTokenClaims, IdTokenError> {
    let text = |key: &'static str| {
        claims
            .get(key)
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or(IdTokenError::InvalidClaim(key))
    };
    let time = |key: &'static str| {
        claims
            .get(key)
            .and_then(Value::as_i64)
            .ok_or(IdTokenError::InvalidClaim(key))
    };
    let iss = text("iss")?;
    if iss != expectations.configuration.issuer {
        return Err(IdTokenError::WrongIssuer {
            expected: expectations.configuration.issuer.clone(),
            found: iss,
        });
    }
    let audiences: Vec<&str> = match claims.get("aud") {
        Some(Value::String(aud)) => vec![aud.as_str()],
        Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).collect(),
        _ => return Err(IdTokenError::InvalidClaim("aud")),
    };
    if !audiences.contains(&expectations.client_id) {
        return Err(IdTokenError::WrongAudience);
    }
    if let Some(azp) = claims.get("azp").and_then(Value::as_str)
        && audiences.len() > 1
        && azp != expectations.client_id
    {
        return Err(IdTokenError::WrongAudience);
    }
    let leeway = expectations.leeway_secs;
    let exp = time("exp")?;
    if now.as_secs() >= exp.saturating_add(leeway) {
        return Err(IdTokenError::Expired {
            exp,
            now: now.as_secs(),
        });
    }
    let iat = time("iat")?;
    let nbf = claims.get("nbf").map(|_| time("nbf")).transpose()?;
    for at in std::iter::once(iat).chain(nbf) {
        if at.saturating_sub(leeway) > now.as_secs() {
            return Err(IdTokenError::NotYetValid {
                at,
                now: now.as_secs(),
            });
        }
    }
    Ok(IdTokenClaims {
        sub: text("sub")?,
        iss,
        exp,
        iat,
        all: claims,
        algorithm: None,
    })
}

#[cfg(test)]
mod tests;
