//! Property: no public type that holds a secret shows it in `Debug` or
//! `Display`, whatever the secret is. (The secret newtypes themselves have
//! no `Display`; a `compile_fail` doctest in [`crate::secret`] keeps it so.)

use proptest::prelude::*;
use serde_json::json;

use crate::UnixTime;
use crate::authorize::{OAuthState, Pkce, parse_redirect_query};
use crate::id_token::{IdTokenExpectations, Jwks, OidcConfiguration, verify_id_token};
use crate::request::LoginClient;
use crate::response::parse_token_response;
use crate::secret::{
    AccessToken, AuthorizationCode, ClientSecret, IdToken, PkceVerifier, RefreshToken,
};
use crate::storage::{DEFAULT_NAMESPACE, JsonTokenFile, sqlite};
use crate::token::TokenData;

fn assert_hidden(secret: &str, shown: &str) -> Result<(), TestCaseError> {
    prop_assert!(!shown.contains(secret), "secret shown in {shown:?}");
    Ok(())
}

fn shown<T: std::fmt::Debug>(value: &T) -> String {
    format!("{value:?}")
}

fn response(status: u16, body: &serde_json::Value) -> http::Response<Vec<u8>> {
    http::Response::builder()
        .status(status)
        .body(serde_json::to_vec(body).unwrap())
        .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn secrets_never_print(secret in "SECRET[A-Za-z0-9_-]{37,60}") {
        let s = secret.as_str();
        // The secret newtypes (which have no Display at all).
        for debug in [
            shown(&AccessToken::new(s)),
            shown(&RefreshToken::new(s)),
            shown(&IdToken::new(s)),
            shown(&AuthorizationCode::new(s)),
            shown(&ClientSecret::new(s)),
            shown(&PkceVerifier::new(s)),
        ] {
            assert_hidden(s, &debug)?;
        }

        // Token records, responses and files.
        let record = TokenData {
            resource_server: "rs".into(),
            identity_id: None,
            scope: "scope".into(),
            access_token: AccessToken::new(s),
            refresh_token: Some(RefreshToken::new(s)),
            expires_at: UnixTime::from_secs(1),
            token_type: None,
            extra: [("unknown".to_owned(), json!(s))].into_iter().collect(),
        };
        assert_hidden(s, &shown(&record))?;
        let mut file = JsonTokenFile::new();
        file.store(DEFAULT_NAMESPACE, [&record]);
        assert_hidden(s, &shown(&file))?;
        let parsed = parse_token_response(
            &response(200, &json!({"access_token": s, "refresh_token": s, "id_token": s, "scope": "x",
                                   "resource_server": "rs", "expires_in": 1})),
            UnixTime::EPOCH,
        ).unwrap();
        assert_hidden(s, &shown(&parsed))?;

        // Errors built from inputs that carry the secret.
        let bad_response = parse_token_response(
            &response(200, &json!({"access_token": s, "scope": 1, "resource_server": "rs"})),
            UnixTime::EPOCH,
        ).unwrap_err();
        assert_hidden(s, &shown(&bad_response))?;
        assert_hidden(s, &bad_response.to_string())?;
        let bad_record = sqlite::decode_record("rs", &json!({"resource_server": "rs", "scope": "x",
            "access_token": s, "refresh_token": 5, "expires_at_seconds": 1}).to_string()).unwrap_err();
        assert_hidden(s, &shown(&bad_record))?;
        assert_hidden(s, &bad_record.to_string())?;
        let state = OAuthState::from_random_bytes(&[5; 32]);
        assert_hidden(state.as_str(), &shown(&state))?;
        let redirect = parse_redirect_query(&format!("code={s}&state=wrong"), &state).unwrap_err();
        assert_hidden(s, &shown(&redirect))?;
        assert_hidden(s, &redirect.to_string())?;
        let configuration = OidcConfiguration { issuer: "i".into(), jwks_uri: "u".into(), id_token_signing_alg_values_supported: vec![] };
        let expectations = IdTokenExpectations { configuration: &configuration, client_id: "c", leeway_secs: 0 };
        let id_error = verify_id_token(&IdToken::new(format!("{s}.{s}.{s}")), &Jwks::default(), &expectations, UnixTime::EPOCH).unwrap_err();
        assert_hidden(s, &shown(&id_error))?;
        assert_hidden(s, &id_error.to_string())?;

        // Requests and clients.
        let base = url::Url::parse("https://auth.globus.org/").unwrap();
        let client = LoginClient::confidential("cid", ClientSecret::new(s), base.clone());
        assert_hidden(s, &shown(&client))?;
        for request in [
            client.exchange_code(&AuthorizationCode::new(s), None, "r").unwrap(),
            client.refresh(&RefreshToken::new(s)).unwrap(),
            client.revoke(s).unwrap(),
            client.consents("id", false, &AccessToken::new(s)).unwrap(),
            LoginClient::native("cid", base.clone())
                .exchange_code(&AuthorizationCode::new("c"), Some(&PkceVerifier::new(s)), "r")
                .unwrap(),
        ] {
            assert_hidden(s, &shown(&request))?;
        }
        let pkce = Pkce::from_verifier(&s[..43]).unwrap();
        assert_hidden(&s[..43], &shown(&pkce))?;
    }
}

/// Every invisible or direction-changing character a server can write
/// into an error: none reaches the error's `Display` or `Debug`.
#[test]
fn server_text_never_shows_an_invisible_or_direction_changing_character() {
    use crate::auth_error::AuthApiError;
    use crate::authorize::RedirectError;
    use crate::service::ServiceError;

    let hidden = crate::testing::hidden_characters();
    assert!(hidden.chars().count() > 150);
    // In small pieces, so that the cut at MAX_SERVER_TEXT_CHARS keeps them.
    let chunks: Vec<String> = hidden
        .chars()
        .collect::<Vec<_>>()
        .chunks(40)
        .map(|chunk| format!("a{}b", chunk.iter().collect::<String>()))
        .collect();
    let visible = |shown: &str| !shown.chars().any(crate::redaction::is_hidden);
    for chunk in &chunks {
        let body = json!({
            "error": chunk, "error_description": chunk,
            "errors": [{"code": chunk, "title": chunk, "detail": chunk, "id": chunk}],
        });
        let auth = AuthApiError::from_json(400, Some(&body));
        let service = ServiceError::from_http(&response(
            400,
            &json!({"code": chunk, "message": chunk, "request_id": chunk}),
        ));
        let state = OAuthState::from_random_bytes(&[7; 32]);
        let query = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("error", chunk)
            .append_pair("error_description", chunk)
            .append_pair("state", state.as_str())
            .finish();
        let denied = parse_redirect_query(&query, &state).unwrap_err();
        assert!(matches!(denied, RedirectError::Denied { .. }));
        for shown in [
            auth.to_string(),
            format!("{auth:?}"),
            service.to_string(),
            format!("{service:?}"),
            denied.to_string(),
            format!("{denied:?}"),
        ] {
            assert!(visible(&shown), "{shown:?}");
            assert!(shown.contains("ab"), "the visible text stays: {shown:?}");
        }
    }
}

/// Each kind of secret, in each encoding a server may echo it in, in one
/// field or split between two: struck from both, and no piece of it (or
/// of its encoding) of [`SECRET_PIECE`](crate::redaction::SECRET_PIECE)
/// characters stays.
#[test]
fn secrets_are_struck_in_every_encoding_and_across_fields() {
    use crate::redaction::{SECRET_PIECE, SentSecrets, bounded};
    use crate::testing::SecretEcho;

    let kinds = [
        (
            "refresh token",
            "AgQpV7d1y3zYkR0bnQx8Wm2sLtE5oJhGcUfIaKvBNe9rDg",
        ),
        ("client secret", "k3y/With+Slash=And?Query&Amp%Pct"),
        ("authorization code", "Ux9Rt6lvXwGz2AqPjH4nBsYc8KdMfE"),
        (
            "PKCE verifier",
            "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk",
        ),
        ("unicode secret", "sécret-ünïcødé-value-1234567890"),
        // Its base64 has `+` or `/` every few characters: base64url differs.
        ("symbol secret", "??>>~?>?~~??>>?>?~??>~?>?~>~?>"),
    ];
    for (kind, secret) in kinds {
        let sent = SentSecrets::of(&[secret]);
        for echo in SecretEcho::ALL {
            let (first, second) = echo.write(secret);
            let mut description = bounded(&format!("bad request: {first}; try again"));
            let mut detail = bounded(&format!("sent {second}."));
            sent.redact(&mut description);
            sent.redact(&mut detail);
            let both = format!("{description}\n{detail}");
            assert!(both.contains("[redacted]"), "{kind} {echo:?}: {both}");
            assert!(
                both.contains("bad request: ") && both.contains("; try again"),
                "{kind} {echo:?}: {both}"
            );
            // Pieces as long as SECRET_PIECE characters of the secret become.
            let (whole, _) = SecretEcho::Raw.write(secret);
            let (encoded, _) = echo.write(&whole);
            let piece_len = (SECRET_PIECE * encoded.len())
                .div_ceil(secret.len())
                .max(SECRET_PIECE);
            for shown in [&first, &second] {
                for piece in shown.as_bytes().windows(piece_len.min(shown.len())) {
                    let piece = String::from_utf8_lossy(piece);
                    assert!(
                        !both.contains(&*piece),
                        "{kind} {echo:?}: {piece:?} in {both}"
                    );
                }
            }
            assert!(
                !both.to_lowercase().contains(&secret.to_lowercase()),
                "{kind} {echo:?}"
            );
        }
    }
}
