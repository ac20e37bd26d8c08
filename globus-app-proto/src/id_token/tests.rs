use proptest::prelude::*;
use serde_json::json;

use super::*;

fn fixture(name: &str) -> Value {
    let text = match name {
        "config" => include_str!("../../fixtures/oidc_openid_configuration.json"),
        "jwks" => include_str!("../../fixtures/oidc_jwks.json"),
        _ => include_str!("../../fixtures/token_authorization_code_with_real_id_token.json"),
    };
    serde_json::from_str::<Value>(text).unwrap()["body"].clone()
}

const CLIENT_ID: &str = "7fb58e00-839d-44e3-8047-10a502612dca";
const IAT: i64 = 1_621_481_011;
const EXP: i64 = 1_621_653_811;

struct Setup {
    configuration: OidcConfiguration,
    jwks: Jwks,
    token: IdToken,
    access_token: AccessToken,
}

fn setup() -> Setup {
    let response = fixture("token");
    Setup {
        configuration: OidcConfiguration::from_json(&fixture("config")).unwrap(),
        jwks: Jwks::from_json(&fixture("jwks")).unwrap(),
        token: IdToken::new(response["id_token"].as_str().unwrap()),
        access_token: AccessToken::new(response["access_token"].as_str().unwrap()),
    }
}

fn verify_at(
    s: &Setup,
    token: &IdToken,
    client_id: &str,
    now: i64,
) -> Result<IdTokenClaims, IdTokenError> {
    let expectations = IdTokenExpectations {
        configuration: &s.configuration,
        client_id,
        leeway_secs: DEFAULT_LEEWAY_SECS,
    };
    verify_id_token(token, &s.jwks, &expectations, UnixTime::from_secs(now))
}

/// The token with its header replaced (the signature then no longer matters
/// for checks made before signature verification).
fn with_header(token: &IdToken, header: &Value) -> IdToken {
    let rest = token.secret().split_once('.').unwrap().1;
    IdToken::new(format!(
        "{}.{rest}",
        URL_SAFE_NO_PAD.encode(header.to_string())
    ))
}

#[test]
fn the_real_globus_token_verifies_inside_its_lifetime() {
    let s = setup();
    let claims = verify_at(&s, &s.token, CLIENT_ID, IAT + 10).unwrap();
    assert_eq!(claims.sub, "c8aad43e-d274-11e5-bf98-8b02896cf782");
    assert_eq!(claims.iss, "https://auth.globus.org");
    assert_eq!(claims.all["preferred_username"], "sirosen2@globusid.org");
    // Within the leeway on both ends.
    assert!(verify_at(&s, &s.token, CLIENT_ID, EXP + DEFAULT_LEEWAY_SECS - 1).is_ok());
    assert!(verify_at(&s, &s.token, CLIENT_ID, IAT - DEFAULT_LEEWAY_SECS).is_ok());
}

#[test]
fn the_real_token_fails_after_its_lifetime_and_before_issue() {
    let s = setup();
    assert_eq!(
        verify_at(&s, &s.token, CLIENT_ID, EXP + DEFAULT_LEEWAY_SECS),
        Err(IdTokenError::Expired {
            exp: EXP,
            now: EXP + DEFAULT_LEEWAY_SECS
        })
    );
    assert!(matches!(
        verify_at(&s, &s.token, CLIENT_ID, IAT - DEFAULT_LEEWAY_SECS - 1),
        Err(IdTokenError::NotYetValid { .. })
    ));
}

#[test]
fn audience_and_issuer_are_checked() {
    let mut s = setup();
    assert_eq!(
        verify_at(&s, &s.token, "another-client", IAT),
        Err(IdTokenError::WrongAudience)
    );
    s.configuration.issuer = "https://auth.example.org".into();
    assert!(matches!(
        verify_at(&s, &s.token, CLIENT_ID, IAT),
        Err(IdTokenError::WrongIssuer { .. })
    ));
}

#[test]
fn tampering_breaks_the_signature() {
    let s = setup();
    let parts: Vec<&str> = s.token.secret().split('.').collect();
    let mut claims = decode_part(parts[1]).unwrap();
    claims.insert("sub".into(), json!("someone-else"));
    let forged = IdToken::new(format!(
        "{}.{}.{}",
        parts[0],
        URL_SAFE_NO_PAD.encode(Value::Object(claims).to_string()),
        parts[2]
    ));
    assert_eq!(
        verify_at(&s, &forged, CLIENT_ID, IAT),
        Err(IdTokenError::BadSignature)
    );
    assert!(IdTokenError::BadSignature.may_need_new_keys());
}

#[test]
fn none_hmac_and_unlisted_algorithms_are_rejected() {
    let s = setup();
    for alg in ["none", "HS256", "HS512", "RS1"] {
        let token = with_header(&s.token, &json!({"typ": "JWT", "alg": alg}));
        assert_eq!(
            verify_at(&s, &token, CLIENT_ID, IAT),
            Err(IdTokenError::AlgorithmNotAllowed(alg.into())),
            "{alg}"
        );
    }
    let no_alg = with_header(&s.token, &json!({"typ": "JWT"}));
    assert!(matches!(
        verify_at(&s, &no_alg, CLIENT_ID, IAT),
        Err(IdTokenError::AlgorithmNotAllowed(_))
    ));
    // RS256 is on our list but not on the server's.
    let rs256 = with_header(&s.token, &json!({"alg": "RS256"}));
    assert!(matches!(
        verify_at(&s, &rs256, CLIENT_ID, IAT),
        Err(IdTokenError::AlgorithmNotAllowed(_))
    ));
}

#[test]
fn keys_are_chosen_by_kid() {
    let mut s = setup();
    let with_kid = with_header(&s.token, &json!({"alg": "RS512", "kid": "k2"}));
    assert_eq!(
        verify_at(&s, &with_kid, CLIENT_ID, IAT),
        Err(IdTokenError::UnknownKeyId("k2".into()))
    );
    // The same key published under that kid, plus a decoy: the header
    // changed, so the signature no longer verifies, but the key is found.
    let mut jwks = fixture("jwks");
    jwks["keys"][0]["kid"] = json!("k2");
    let mut decoy = jwks["keys"][0].clone();
    decoy["kid"] = json!("k1");
    jwks["keys"].as_array_mut().unwrap().push(decoy);
    s.jwks = Jwks::from_json(&jwks).unwrap();
    assert_eq!(
        verify_at(&s, &with_kid, CLIENT_ID, IAT),
        Err(IdTokenError::BadSignature)
    );
    // A token without kid is tried against every key.
    assert!(verify_at(&s, &s.token, CLIENT_ID, IAT).is_ok());
    // No keys: nothing verifies.
    s.jwks = Jwks::default();
    assert_eq!(
        verify_at(&s, &s.token, CLIENT_ID, IAT),
        Err(IdTokenError::BadSignature)
    );
}

#[test]
fn at_hash_binds_the_token_to_its_access_token() {
    let s = setup();
    let mut claims = verify_at(&s, &s.token, CLIENT_ID, IAT).unwrap();
    assert_eq!(claims.algorithm, Some(Algorithm::Rs512));
    // The fixture's access tokens are placeholders, so they do not match.
    assert_eq!(
        check_at_hash(&claims, &s.access_token),
        Err(IdTokenError::AccessTokenHashMismatch)
    );
    // base64url(left half of SHA-512("auth_access_token")), computed with Python's hashlib.
    claims.all.insert(
        "at_hash".into(),
        json!("W9ZvqHONiCNZ8bQk5EjDdSKnNLmPc-eaPdJ8aze_1V0"),
    );
    assert_eq!(check_at_hash(&claims, &s.access_token), Ok(()));
    claims.all.remove("at_hash");
    assert_eq!(
        check_at_hash(&claims, &AccessToken::new("anything")),
        Ok(())
    );
}

#[test]
fn malformed_tokens_are_typed_errors() {
    let s = setup();
    for bad in ["", "a.b", "a.b.c.d", "!!.??.**", "e30.e30.%%"] {
        assert_eq!(
            verify_at(&s, &IdToken::new(bad), CLIENT_ID, IAT),
            Err(IdTokenError::Malformed),
            "{bad:?}"
        );
    }
}

#[test]
fn claim_rules_cover_lists_azp_and_nbf() {
    let configuration = OidcConfiguration {
        issuer: "iss".into(),
        jwks_uri: "u".into(),
        id_token_signing_alg_values_supported: vec![],
    };
    let expectations = IdTokenExpectations {
        configuration: &configuration,
        client_id: "me",
        leeway_secs: 0,
    };
    let claims = |extra: Value| {
        let mut base = json!({"iss": "iss", "sub": "s", "aud": "me", "exp": 100, "iat": 10});
        base.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        base.as_object().unwrap().clone()
    };
    let now = UnixTime::from_secs(50);
    assert!(check_claims(claims(json!({"aud": ["x", "me"]})), &expectations, now).is_ok());
    assert_eq!(
        check_claims(
            claims(json!({"aud": ["x", "me"], "azp": "x"})),
            &expectations,
            now
        ),
        Err(IdTokenError::WrongAudience)
    );
    assert!(matches!(
        check_claims(claims(json!({"nbf": 60})), &expectations, now),
        Err(IdTokenError::NotYetValid { .. })
    ));
    assert_eq!(
        check_claims(claims(json!({"exp": "soon"})), &expectations, now),
        Err(IdTokenError::InvalidClaim("exp"))
    );
    assert_eq!(
        check_claims(claims(json!({"sub": null})), &expectations, now),
        Err(IdTokenError::InvalidClaim("sub"))
    );
    assert_eq!(
        check_claims(claims(json!({"aud": 5})), &expectations, now),
        Err(IdTokenError::InvalidClaim("aud"))
    );
}

#[test]
fn errors_never_contain_the_token() {
    let s = setup();
    let err = verify_at(&s, &s.token, "x", IAT).unwrap_err();
    assert!(!format!("{err} {err:?}").contains(s.token.secret()));
}

proptest! {
    #[test]
    fn verification_never_panics(token in "[A-Za-z0-9_.-]{0,120}") {
        let s = setup();
        let _ = verify_at(&s, &IdToken::new(token), CLIENT_ID, IAT);
    }
}
